// The report subcommand: operations on replay reports (`membench replay --json` / -o): merge, the reports of the
// nodes of a sharded run added up exactly, histograms included; html, a report drawn as a self-contained page.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/membench/membench/internal/safefile"
	"github.com/membench/membench/profile/report"
	"github.com/membench/membench/replay"
)

const reportUsage = `membench report — work with replay reports.

Usage: membench report merge REPORT.json… [-o OUT] [--text] [--hdr-out PREFIX]
       membench report html REPORT.json -o OUT.html

merge adds up the JSON reports of the nodes of a sharded replay (--shard i/n): request, error, status and hit
counts add, latency percentiles are recomputed from the merged HdrHistograms (exactly as if one node had
measured everything), and so is the per-second series. The merged window is the union of the nodes' windows,
from the earliest start to the latest end, and ops_per_sec is the requests over it; each node's start skew,
window and rate are listed (node_windows). When the windows differ by more than a second the nodes did not run
side by side, and merge warns (on stderr and in "warnings"): start them with --start-at. The merged report is
printed as JSON.

html draws one report (a node's or a merged one) as a self-contained HTML page, inline SVG and no script: the
latency by percentile from the HdrHistograms, on HdrHistogram's 1/(1-p) axis (90%, 99%, 99.9% … evenly spaced),
for every command and each command, and the run second by second: p50 and p99 latency, and the request rate
(the last, partial second scaled to its length; left out when under a quarter of a second).

Flags:
  -o FILE           merge: also write the merged report to FILE; html: the page to write (required)
  --text            print the merged report for people instead of JSON
  --hdr-out PREFIX  write the merged latency distributions in HdrHistogram's percentile format (ms):
                    PREFIX-all.hgrm, PREFIX-get.hgrm, …

Examples:
  membench report merge node0.json node1.json node2.json > all.json
  membench report merge --text node*.json
  membench report merge /reports/node-*.json -o all.json --hdr-out all
  membench report html all.json -o all.html
`

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	output := fs.String("o", "", "")
	text := fs.Bool("text", false, "")
	hdrOut := fs.String("hdr-out", "", "")
	pos, err := parseArgs(fs, reportUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 && pos[0] == "html" {
		return runReportHTML(pos[1:], *output, stderr)
	}
	if len(pos) == 0 || pos[0] != "merge" {
		return fmt.Errorf("want a subcommand: merge or html: %w", errUsage)
	}
	files := pos[1:]
	if len(files) == 0 {
		return fmt.Errorf("merge needs at least one report file: %w", errUsage)
	}
	var reports []*replay.Report
	for _, path := range files {
		r, err := readReportFile(path)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	m, err := replay.Merge(reports)
	if err != nil {
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(stderr, "membench report: warning: %s\n", w)
	}
	if *hdrOut != "" {
		if err := writePercentiles(*hdrOut, m, stderr); err != nil {
			return err
		}
	}
	if *output != "" {
		if err := writeReportFile(*output, m); err != nil {
			return err
		}
	}
	if *text {
		printReport(stdout, m)
		return nil
	}
	return m.WriteJSON(stdout)
}

func readReportFile(path string) (*replay.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open report: %w", err)
	}
	defer f.Close()
	return replay.ReadReport(f, path)
}

// runReportHTML is `membench report html REPORT.json -o OUT.html`.
func runReportHTML(files []string, out string, stderr io.Writer) error {
	if len(files) != 1 {
		return fmt.Errorf("html draws one report, got %d files: %w", len(files), errUsage)
	}
	if out == "" || out == "-" {
		return fmt.Errorf("html needs -o OUT.html: %w", errUsage)
	}
	r, err := readReportFile(files[0])
	if err != nil {
		return err
	}
	err = safefile.Write(out, safefile.Public, true, func(w io.Writer) error {
		return report.WriteReplayHTML(w, replayPage(files[0], r))
	})
	if err != nil {
		return fmt.Errorf("cannot write the page (-o %s): %w", out, err)
	}
	fmt.Fprintf(stderr, "membench report: wrote %s\n", out)
	return nil
}

// replayPage turns a replay report into what profile/report draws.
func replayPage(name string, r *replay.Report) report.Replay {
	p := report.Replay{Title: "membench replay: " + name}
	fact := func(k, v string) { p.Facts = append(p.Facts, [2]string{k, v}) }
	fact("mode", r.Mode)
	fact("source", r.Source)
	fact("targets", strings.Join(r.Targets, ", "))
	if r.Nodes > 1 {
		fact("nodes", fmt.Sprint(r.Nodes))
	}
	fact("duration", fmt.Sprintf("%.2f s", r.DurationSeconds))
	fact("requests", fmt.Sprintf("%d (%.0f/s%s)", r.Ops, r.OpsPerSec, map[bool]string{true: ", open loop"}[r.OpenLoop]))
	fact("errors", fmt.Sprintf("%d (%.3f%%)", r.Errors, 100*r.ErrorRatio))
	if r.Hits+r.Misses > 0 {
		fact("hit ratio", fmt.Sprintf("%.2f%%", 100*r.HitRatio))
	}
	if l := r.LatencyUs; l.Count > 0 {
		fact("latency p50 / p99 / p99.9 / max", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f µs", l.P50, l.P99, l.P999, l.Max))
	}
	for _, w := range r.Warnings {
		fact("warning", w)
	}
	names := r.PercentileNames() // "all" first, then the commands, sorted
	for _, n := range names {
		pct, us := r.LatencySpectrum(n)
		count := r.LatencyUs.Count
		if c := r.Commands[n]; n != "all" && c != nil {
			count = c.LatencyUs.Count
		}
		p.Spectra = append(p.Spectra, report.Spectrum{Name: n, Count: count, Percentiles: pct, Us: us})
	}
	for _, pt := range r.TimeSeries {
		p.Seconds = append(p.Seconds, report.Second{Start: float64(pt.Second), Length: pt.Seconds, Ops: pt.Ops,
			Measured: pt.LatencyUs.Count > 0, P50: pt.LatencyUs.P50, P99: pt.LatencyUs.P99})
	}
	return p
}

func init() {
	register(&command{
		name:    "report",
		summary: "merge the JSON reports of a sharded replay, or draw one as HTML: membench report merge|html …",
		usage:   reportUsage,
		run:     runReport,
	})
}
