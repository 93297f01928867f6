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

Usage: membench report merge REPORT.json… [-o OUT] [--text]

merge adds up the JSON reports of the nodes of a sharded replay (--shard i/n): request, error, status and hit
counts add, latency percentiles are recomputed from the merged HdrHistograms (exactly as if one node had
measured everything), and ops_per_sec is the sum of the nodes' rates. The merged report is printed as JSON.

Flags:
  -o FILE     also write the merged report to FILE
  --text      print the merged report for people instead of JSON

Examples:
  membench report merge node0.json node1.json node2.json > all.json
  membench report merge --text node*.json
`

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	output := fs.String("o", "", "")
	text := fs.Bool("text", false, "")
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
