package report

import (
	"flag"
	"os"
	"testing"

	"github.com/membench/membench/profile/analyze"
)

var sampleOut = flag.String("sample-html", "", "write a sample compare report to this file (for screenshots)")

// TestSampleReport writes a sample report when -sample-html is given (scripts/screenshot-report.sh uses it).
func TestSampleReport(t *testing.T) {
	if *sampleOut == "" {
		t.Skip("no -sample-html given")
	}
	a, b := summary(t, 1, true), summary(t, 2, true)
	f, err := os.Create(*sampleOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteHTML(f, "membench compare: capture.mbp vs replay.mbp", []Input{{"capture.mbp", a}, {"replay.mbp", b}},
		analyze.Compare(a, b)); err != nil {
		t.Fatal(err)
	}
}
