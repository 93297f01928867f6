// The report subcommand: operations on replay reports (`membench replay --json` / -o). Only merge for now: the
// reports of the nodes of a sharded run added up exactly, histograms included.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/membench/membench/replay"
)

const reportUsage = `membench report — work with replay reports.

Usage: membench report merge REPORT.json… [-o OUT] [--text] [--hdr-out PREFIX]

merge adds up the JSON reports of the nodes of a sharded replay (--shard i/n): request, error, status and hit
counts add, latency percentiles are recomputed from the merged HdrHistograms (exactly as if one node had
measured everything), and so is the per-second series. The merged window is the union of the nodes' windows,
from the earliest start to the latest end, and ops_per_sec is the requests over it; each node's start skew,
window and rate are listed (node_windows). When the windows differ by more than a second the nodes did not run
side by side, and merge warns (on stderr and in "warnings"): start them with --start-at. The merged report is
printed as JSON.

Flags:
  -o FILE           also write the merged report to FILE
  --text            print the merged report for people instead of JSON
  --hdr-out PREFIX  write the merged latency distributions in HdrHistogram's percentile format (ms):
                    PREFIX-all.hgrm, PREFIX-get.hgrm, …

Examples:
  membench report merge node0.json node1.json node2.json > all.json
  membench report merge --text node*.json
  membench report merge /reports/node-*.json -o all.json --hdr-out all
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
	if len(pos) == 0 || pos[0] != "merge" {
		return fmt.Errorf("want a subcommand: merge: %w", errUsage)
	}
	files := pos[1:]
	if len(files) == 0 {
		return fmt.Errorf("merge needs at least one report file: %w", errUsage)
	}
	var reports []*replay.Report
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("cannot open report: %w", err)
		}
		r, err := replay.ReadReport(f, path)
		f.Close()
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

func init() {
	register(&command{
		name:    "report",
		summary: "merge the JSON reports of a sharded replay: membench report merge A.json B.json …",
		usage:   reportUsage,
		run:     runReport,
	})
}
