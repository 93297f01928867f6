// Command synthbase writes the popularity-only baseline of 'membench synth --profile': the same fitted model
// with Model.PopularityOnly set, so that every key's references spread over the whole window. bench/
// synth-fidelity.sh compares the full model and this baseline against their source; the CLI does not offer the
// baseline because it is only a yardstick.
//
//	go run ./bench/synthbase -profile src.mbp -events N -seed 1 -o base.mbp
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

func main() {
	path := flag.String("profile", "", "profile to fit")
	out := flag.String("o", "", "profile to write (replaced if it exists)")
	events := flag.Uint64("events", 0, "events to write (0: as many as the profile has keyed and keyless)")
	seed := flag.Uint64("seed", 0, "generator seed")
	flag.Parse()
	if *path == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "synthbase: -profile and -o are required")
		os.Exit(2)
	}
	if err := run(*path, *out, *events, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synthbase:", err)
		os.Exit(1)
	}
}

func run(path, out string, events, seed uint64) error {
	var hdr profile.Header
	open := func() (workload.Source, error) {
		t, err := workload.OpenTrace(path, 1)
		if err == nil {
			hdr = t.Header()
		}
		return t, err
	}
	m, err := workload.Fit(open, workload.FitOptions{})
	if err != nil {
		return err
	}
	m.PopularityOnly = true
	if events == 0 {
		events = m.Keyed + m.Keyless
	}
	h := profile.Header{Created: time.Unix(0, m.StartNs).UTC(), Mode: "synth", SaltFingerprint: hdr.SaltFingerprint,
		TimeUnit: hdr.TimeUnit, LatencyBits: hdr.LatencyBits,
		Settings: map[string]string{"source": path, "popularity_only": "true"}}
	w, err := profile.NewWriter(out, h, profile.WriterOptions{FlushInterval: -1, Overwrite: true, Atomic: true})
	if err != nil {
		return err
	}
	defer w.Abort()
	g := m.Generator(workload.GenOptions{Seed: seed, Events: events})
	var ev profile.Event
	for g.Next(&ev) {
		if err := w.Write(&ev); err != nil {
			return err
		}
	}
	return w.Close()
}
