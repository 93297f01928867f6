package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// doneLine matches the last line of a forced progress meter: everything read, on a line of its own.
var doneLine = regexp.MustCompile(`(?m)^[^\r\n]*: [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B, 100% \(\d+s\)\n`)

func TestProgressMeter(t *testing.T) {
	var b bytes.Buffer
	var n int64
	finish := progressMeter(&b, false, "x", 100, "bytes", func() int64 { return n })
	n = 100
	finish(true)
	if b.Len() != 0 {
		t.Fatalf("not forced, not a terminal: printed %q", b.String())
	}
	finish = progressMeter(&b, true, "x", 2048, "bytes", func() int64 { return n })
	n = 2048
	finish(true)
	finish(false) // only the first call counts
	if b.String() != "x: 2.0 KiB of 2.0 KiB, 100% (0s)\n" {
		t.Fatalf("forced: %q", b.String())
	}
	b.Reset()
	finish = progressMeter(&b, true, "x", 2048, "bytes", func() int64 { return 1 })
	finish(false)
	if b.Len() != 0 {
		t.Fatalf("failed, not a terminal: printed %q", b.String())
	}
	if got, ok := takeProgressFlag([]string{"--pcap", "a", "--progress", "--", "--progress"}); !ok ||
		strings.Join(got, " ") != "--pcap a -- --progress" {
		t.Fatalf("takeProgressFlag: %q %v", got, ok)
	}
}

func TestProgress_Export(t *testing.T) {
	dir := t.TempDir()
	prof := importSample(t, dir, "", "a")
	code, _, errOut := runCLI(t, "export", "--format", "csv", prof, "-o", filepath.Join(dir, "out.csv"), "--progress")
	if code != 0 || !doneLine.MatchString(errOut) || !strings.HasPrefix(errOut, "export "+prof+": ") {
		t.Fatalf("export --progress: %d %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "export", "--format", "csv", prof, "-o", "-"); code != 0 ||
		strings.Contains(errOut, "100%") {
		t.Fatalf("export without --progress, off a terminal: %d %q", code, errOut)
	}
}

func TestProgress_Merge(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt.hex")
	runCLI(t, "salt", "-o", salt)
	a := importSample(t, dir, salt, "a")
	b := importSample(t, dir, salt, "b")
	code, _, errOut := runCLI(t, "merge", a, b, "-o", filepath.Join(dir, "ab.mbp"), "--progress")
	if code != 0 || !doneLine.MatchString(errOut) || !strings.HasPrefix(errOut, "merge 2 profiles: ") {
		t.Fatalf("merge --progress: %d %q", code, errOut)
	}
}

func TestProgress_TapPcap(t *testing.T) {
	code, stdout, stderr := runMembench("tap", "--pcap", filepath.Join(fixturesDir, "text.pcap"), "--port",
		fixturePortString(t), "--metrics-listen", "", "--progress")
	if code != 0 || !doneLine.MatchString(stderr) || !strings.Contains(stderr, "tap "+filepath.Join(fixturesDir, "text.pcap")+": ") {
		t.Fatalf("tap --pcap --progress: exit %d\n%s%s", code, stdout, stderr)
	}
}
