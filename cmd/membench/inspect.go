// The inspect subcommand: one pass of profile/analyze over a profile, printed for people, as JSON, or as an
// HTML report. This file also holds summarize, which compare shares.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
	"github.com/membench/membench/profile/report"
)

const inspectUsage = `membench inspect — summarize a profile: mix, sizes, TTLs, popularity (Zipf fit), rate,
latency percentiles and the LRU miss-ratio curve.

Usage: membench inspect FILE [--json] [--html REPORT] [--salvage]

The text output starts with the profile header (recorder, host label, salt fingerprint, precision,
settings). --json prints only the summary document (schema: profile/analyze/SCHEMA.md), which
'membench compare' also accepts in place of a profile. A profile cut short by a recorder that died or is
still writing is read up to its last complete block, with a warning.

Flags:
  --json             print the summary as JSON
  --html REPORT      also write a self-contained HTML report to REPORT (overwritten)
  --salvage          skip corrupt blocks instead of failing (counted in the summary)
  --max-keys N       keys tracked exactly before figures become estimates (default 1048576, ~80 B each)
  --rate-bucket D    width of the rate and hit-ratio-over-time buckets (default 1s)

Examples:
  membench inspect prod.mbp
  membench inspect prod.mbp --json > prod.json
  membench inspect prod.mbp --html prod.html
  membench inspect crashed.mbp --salvage
`

func init() {
	register(&command{
		name:    "inspect",
		summary: "summarize a profile (mix, sizes, popularity, latency, miss-ratio curve)",
		usage:   inspectUsage,
		run:     runInspect,
	})
}

// analysisFlags are the flags inspect and compare share.
type analysisFlags struct {
	json       *bool
	html       *string
	salvage    *bool
	maxKeys    *int
	rateBucket *time.Duration
}

func addAnalysisFlags(fs *flag.FlagSet) analysisFlags {
	return analysisFlags{
		json:       fs.Bool("json", false, ""),
		html:       fs.String("html", "", ""),
		salvage:    fs.Bool("salvage", false, ""),
		maxKeys:    fs.Int("max-keys", 0, ""),
		rateBucket: fs.Duration("rate-bucket", 0, ""),
	}
}

func (f analysisFlags) options() (analyze.Options, error) {
	o := analyze.Options{MaxKeys: *f.maxKeys, RateBucket: *f.rateBucket}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--max-keys or --rate-bucket: %v: %w", err, errUsage)
	}
	return o, nil
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	af := addAnalysisFlags(fs)
	pos, err := parseArgs(fs, inspectUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one profile, got %d arguments: %w", len(pos), errUsage)
	}
	opts, err := af.options()
	if err != nil {
		return err
	}
	in, err := summarize(pos[0], *af.salvage, opts, stderr)
	if err != nil {
		return err
	}
	if *af.html != "" {
		if err := writeReport(*af.html, "membench inspect "+pos[0], []report.Input{{Label: pos[0], Summary: in.sum}},
			nil); err != nil {
			return err
		}
	}
	if *af.json {
		return writeJSON(stdout, in.sum)
	}
	bw := bufio.NewWriter(stdout)
	if in.hdr != nil {
		writeHeaderText(bw, pos[0], in.hdr)
	}
	if err := in.sum.WriteText(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// summarized is a profile's summary, with its header when it came from a profile rather than a JSON file.
type summarized struct {
	sum *analyze.Summary
	hdr *profile.Header
}

// summarize analyzes the profile at path, or reads a summary saved by 'inspect --json'.
func summarize(path string, salvage bool, opts analyze.Options, stderr io.Writer) (summarized, error) {
	f, err := os.Open(path)
	if err != nil {
		return summarized{}, fmt.Errorf("cannot open profile: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if head, _ := br.Peek(len(profile.Magic)); len(head) > 0 && string(head) != profile.Magic {
		if trimmed := bytes.TrimLeft(head, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
			return readSummaryJSON(path, br)
		}
	}
	r, err := profile.NewReader(br, path, profile.ReaderOptions{Salvage: salvage})
	if err != nil {
		return summarized{}, err
	}
	defer r.Close()
	a := analyze.New(opts)
	var n atomic.Int64
	stop := progressLine(stderr, func() string { return fmt.Sprintf("inspect %s: %d events read", path, n.Load()) })
	for ev := range r.All() {
		a.Add(ev)
		n.Add(1)
	}
	stop()
	if err := r.Err(); err != nil {
		return summarized{}, err
	}
	warnDamage(stderr, r)
	s := a.Summary()
	s.TruncatedBlocks, s.CorruptBlocks = uint64(r.TruncatedBlocks()), uint64(r.CorruptBlocks())
	h := r.Header()
	return summarized{sum: s, hdr: &h}, nil
}

func readSummaryJSON(path string, r io.Reader) (summarized, error) {
	var s analyze.Summary
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return summarized{}, fmt.Errorf("cannot read summary %s (want a profile or 'membench inspect --json' "+
			"output): %w", path, err)
	}
	if s.SchemaVersion != analyze.SchemaVersion {
		return summarized{}, fmt.Errorf("cannot read summary %s: schema version %d, this membench reads %d; "+
			"rerun 'membench inspect --json' on the profile", path, s.SchemaVersion, analyze.SchemaVersion)
	}
	return summarized{sum: &s}, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeReport(path, title string, in []report.Input, cmp *analyze.Comparison) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create report (--html): %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := report.WriteHTML(bw, title, in, cmp); err != nil {
		f.Close()
		return fmt.Errorf("cannot write report %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write report %s: %w", path, err)
	}
	return f.Close()
}

// writeHeaderText prints what the profile says about its recording.
func writeHeaderText(w io.Writer, path string, h *profile.Header) {
	fmt.Fprintf(w, "profile %s\n", path)
	fmt.Fprintf(w, "  recorded by     %s", h.Mode)
	if h.Host != "" {
		fmt.Fprintf(w, " on %s", h.Host)
	}
	fmt.Fprintf(w, ", started %s\n", h.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  salt            fingerprint %016x\n", h.SaltFingerprint)
	lat := "exact"
	if h.LatencyBits < profile.ExactLatency {
		lat = fmt.Sprintf("%d significant bits (±%.2g%%)", h.LatencyBits, 100/float64(uint64(1)<<h.LatencyBits))
	}
	fmt.Fprintf(w, "  precision       times to %s, latencies %s\n", time.Duration(h.TimeUnit), lat)
	if len(h.Settings) > 0 {
		keys := make([]string, 0, len(h.Settings))
		for k := range h.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "  settings       ")
		for _, k := range keys {
			fmt.Fprintf(w, " %s=%q", k, h.Settings[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}
