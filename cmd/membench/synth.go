// The synth subcommand: a synthetic workload (a model fitted to a profile, or a preset) written to a profile,
// without any network. The same source, seed and scale give the same file, byte for byte.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay"
)

const synthUsage = `membench synth — write a synthetic workload to a profile, without any network.

Usage: membench synth (--profile FILE | --workload NAME) --events N [--seed S] [--keys-scale F] -o OUT

With --profile, a model is fitted to the profile (popularity, temporal locality, key and value sizes, command
mix; see docs/WORKLOADS.md) and N events are drawn from it; the output keeps the source's salt fingerprint, so
'membench compare SOURCE OUT' compares like with like. With --workload (etc, uniform) the preset is drawn
instead, under a fixed public salt fingerprint. The same inputs and seed give the same file.

Flags:
  --profile FILE      fit the model to this profile
  --workload NAME     a preset instead: etc, uniform
  --events N          events to write (required)
  --seed S            generator seed (default 0)
  --keys-scale F      multiply the number of distinct keys (default 1)
  -o FILE             the profile to write (required; refuses to overwrite unless --force)
  --force             replace FILE (a symlink there is replaced, never followed)
  --no-compress       write uncompressed blocks

Examples:
  membench synth --profile prod.mbp --events 1000000 --seed 1 -o synth.mbp
  membench synth --workload etc --events 500000 -o etc.mbp
`

type synthArgs struct {
	cfg      configs.Replay
	events   uint64
	output   string
	force    bool
	compress bool
}

func synthConfig(args []string, stdout io.Writer) (synthArgs, error) {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	var (
		prof      = fs.String("profile", "", "")
		work      = fs.String("workload", "", "")
		events    = fs.Uint64("events", 0, "")
		seed      = fs.Uint64("seed", 0, "")
		keysScale = fs.Float64("keys-scale", 1, "")
		output    = fs.String("o", "", "")
		force     = fs.Bool("force", false, "")
		noComp    = fs.Bool("no-compress", false, "")
	)
	pos, err := parseArgs(fs, synthUsage, args, stdout)
	if err != nil {
		return synthArgs{}, err
	}
	if len(pos) > 0 {
		return synthArgs{}, fmt.Errorf("unexpected argument %q: %w", pos[0], errUsage)
	}
	if (*prof == "") == (*work == "") {
		return synthArgs{}, fmt.Errorf("give exactly one of --profile FILE and --workload NAME: %w", errUsage)
	}
	if *events == 0 {
		return synthArgs{}, fmt.Errorf("--events N is required (and must be positive): %w", errUsage)
	}
	if *output == "" {
		return synthArgs{}, fmt.Errorf("-o FILE is required: %w", errUsage)
	}
	if !(*keysScale > 0) {
		return synthArgs{}, fmt.Errorf("--keys-scale %v: must be positive: %w", *keysScale, errUsage)
	}
	cfg := configs.DefaultReplay()
	cfg.Mode, cfg.Profile, cfg.Workload = configs.ModeSynthetic, *prof, *work
	cfg.Seed, cfg.KeysScale = *seed, *keysScale
	return synthArgs{cfg: cfg, events: *events, output: *output, force: *force, compress: !*noComp}, nil
}

func runSynth(args []string, stdout, stderr io.Writer) error {
	sa, err := synthConfig(args, stdout)
	if err != nil {
		return err
	}
	src, err := replay.NewSource(sa.cfg, sa.events)
	if err != nil {
		return err
	}
	gen, err := src.Open()
	if err != nil {
		return err
	}
	defer gen.Close()
	var ev profile.Event
	if !gen.Next(&ev) {
		if err := gen.Err(); err != nil {
			return err
		}
		return fmt.Errorf("the source produced no events")
	}
	// Everything in the header comes from the inputs, so that the file is the same on every run.
	h := profile.Header{
		Created:         time.Unix(0, ev.Time).UTC(),
		Mode:            "synth",
		SaltFingerprint: src.Fingerprint,
		TimeUnit:        src.Header.TimeUnit,
		LatencyBits:     src.Header.LatencyBits,
		Settings: map[string]string{
			"source":     src.Name,
			"seed":       strconv.FormatUint(sa.cfg.Seed, 10),
			"keys_scale": strconv.FormatFloat(sa.cfg.KeysScale, 'g', -1, 64),
			"events":     strconv.FormatUint(sa.events, 10),
		},
	}
	comp := profile.CompressionZstd
	if !sa.compress {
		comp = profile.CompressionNone
	}
	w, err := profile.NewWriter(sa.output, h, profile.WriterOptions{FlushInterval: -1, Compression: comp,
		Overwrite: sa.force, Atomic: true})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot write -o %s: %w, or pass --force to replace it", sa.output, err)
	}
	if err != nil {
		return fmt.Errorf("cannot write -o %s: %w", sa.output, err)
	}
	var n uint64
	var shown atomic.Uint64
	stop := progressLine(stderr, func() string { return fmt.Sprintf("synth: %d events written", shown.Load()) })
	for ok := true; ok; ok = gen.Next(&ev) {
		if err := w.Write(&ev); err != nil {
			stop()
			w.Abort()
			return err
		}
		n++
		if n&1023 == 0 {
			shown.Store(n)
		}
	}
	stop()
	if err := gen.Err(); err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	desc := src.Name
	if src.Model != nil {
		desc += " (" + src.Model.Describe() + ")"
	}
	fmt.Fprintf(stdout, "membench synth: %d events from %s, seed %d → %s\n", n, desc, sa.cfg.Seed, sa.output)
	return nil
}

func init() {
	register(&command{
		name:    "synth",
		summary: "write a synthetic workload (fitted to a profile, or a preset) to a profile",
		usage:   synthUsage,
		run:     runSynth,
	})
}
