package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt.hex")
	runCLI(t, "salt", "-o", salt)
	a := importSample(t, dir, salt, "a")
	b := importSample(t, dir, salt, "b")
	out := filepath.Join(dir, "ab.mbp")
	code, _, errOut := runCLI(t, "merge", a, b, "-o", out)
	if code != 0 || !strings.Contains(errOut, "merged 10 events from 2 profiles") {
		t.Fatalf("merge: %d %q", code, errOut)
	}
	h, evs := loadProfile(t, out)
	if h.Mode != "merge" || len(evs) != 10 {
		t.Fatalf("header %+v, %d events", h, len(evs))
	}
	conns := map[uint64]bool{}
	for i, ev := range evs {
		if i > 0 && ev.Time < evs[i-1].Time {
			t.Fatal("merged profile out of time order")
		}
		conns[ev.Conn] = true
	}
	if len(conns) != 6 { // 3 clients in each input, kept apart
		t.Fatalf("%d connections", len(conns))
	}

	// A profile with another salt is refused, naming both files.
	c := importSample(t, dir, "", "c")
	code, _, errOut = runCLI(t, "merge", a, c, "-o", filepath.Join(dir, "ac.mbp"))
	if code != 1 || !strings.Contains(errOut, a) || !strings.Contains(errOut, c) || !strings.Contains(errOut, "salt") {
		t.Fatalf("different salts: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "merge", a, out, "-o", out)
	if code != 2 || !strings.Contains(errOut, "also an input") {
		t.Fatalf("output as input: %d %q", code, errOut)
	}
}
