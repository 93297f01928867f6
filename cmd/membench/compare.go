// The compare subcommand: two profiles (or saved summaries) side by side with distances, e.g. production
// against its replay.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"

	"github.com/membench/membench/profile/analyze"
	"github.com/membench/membench/profile/report"
)

const compareUsage = `membench compare — set two profiles side by side: command mix, size distributions, hit ratio,
popularity (Zipf) and miss-ratio curves, with distances.

Usage: membench compare A B [--json] [--html REPORT]

A and B are profiles or summaries saved with 'membench inspect --json', in any mix, so a production
summary can be kept and compared with later replays. The comparison uses distributions only, so the two
need not share a salt. Deltas are B − A.

Flags:
  --json             print the comparison as JSON
  --html REPORT      also write a self-contained HTML report with both profiles overlaid (overwritten)
  --salvage          skip corrupt blocks instead of failing
  --max-keys N       keys tracked exactly per profile before figures become estimates (default 1048576)
  --rate-bucket D    width of the rate buckets (default 1s)
  --mrc-sizes SIZES  simulate these cache sizes for both curves (as 'membench inspect --help' says)
  --mrc-unit UNIT    bytes (default) or objects
  --mrc-model MODEL  recorded or fill_on_miss (default: by what each profile holds)

A figure one side lacks (the hit ratio of an imported trace, which records no outcomes; a curve in another
unit) makes its distance n/a (null in JSON), with a warning, never 0.

Examples:
  membench compare prod.mbp replay.mbp
  membench compare prod.json replay.mbp --json
  membench compare prod.mbp replay.mbp --html diff.html
`

func init() {
	register(&command{
		name:    "compare",
		summary: "compare two profiles or saved summaries (mix, sizes, hit ratio, MRC)",
		usage:   compareUsage,
		run:     runCompare,
	})
}

func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	af := addAnalysisFlags(fs)
	pos, err := parseArgs(fs, compareUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("want two profiles or summaries, got %d arguments: %w", len(pos), errUsage)
	}
	opts, err := af.options()
	if err != nil {
		return err
	}
	var ins [2]summarized
	for i, p := range pos {
		if ins[i], err = summarize(p, *af.salvage, opts, stderr); err != nil {
			return err
		}
	}
	c := analyze.Compare(ins[0].sum, ins[1].sum)
	if *af.json || *af.html != "" {
		// The text report lists them as notes.
		for _, w := range c.Warnings {
			fmt.Fprintln(stderr, "warning: "+w)
		}
	}
	if *af.html != "" {
		in := []report.Input{{Label: pos[0], Summary: ins[0].sum}, {Label: pos[1], Summary: ins[1].sum}}
		if err := writeReport(*af.html, "membench compare "+pos[0]+" "+pos[1], in, c); err != nil {
			return err
		}
	}
	if *af.json {
		return writeJSON(stdout, c)
	}
	bw := bufio.NewWriter(stdout)
	fmt.Fprintf(bw, "A = %s\nB = %s\n\n", pos[0], pos[1])
	if err := c.WriteText(bw); err != nil {
		return err
	}
	return bw.Flush()
}
