package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membench/membench/profile/analyze"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	prof := importSample(t, dir, "", "a")

	code, out, errOut := runCLI(t, "inspect", prof)
	if code != 0 || !strings.Contains(out, "recorded by     import") || !strings.Contains(out, "fingerprint") {
		t.Fatalf("text: %d %q %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, "inspect", "--json", prof)
	var s analyze.Summary
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Events != 5 || s.SchemaVersion != analyze.SchemaVersion {
		t.Fatalf("json: %d %q", code, out)
	}

	html := filepath.Join(dir, "a.html")
	if code, _, errOut = runCLI(t, "inspect", prof, "--html", html); code != 0 {
		t.Fatalf("html: %q", errOut)
	}
	if data, _ := os.ReadFile(html); !strings.Contains(string(data), "<html") {
		t.Fatal("no HTML report")
	}

	// A profile cut inside its last block: read up to it, with a warning.
	data, _ := os.ReadFile(prof)
	cut := filepath.Join(dir, "cut.mbp")
	os.WriteFile(cut, data[:len(data)-3], 0o600)
	code, out, errOut = runCLI(t, "inspect", cut, "--json")
	if code != 0 || !strings.Contains(errOut, "ends inside a block") {
		t.Fatalf("cut: %d %q", code, errOut)
	}
	json.Unmarshal([]byte(out), &s)
	if s.TruncatedBlocks != 1 {
		t.Fatalf("truncated_blocks %d", s.TruncatedBlocks)
	}

	code, _, errOut = runCLI(t, "inspect")
	if code != 2 || !strings.Contains(errOut, "one profile") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
}
