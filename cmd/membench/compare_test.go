package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membench/membench/profile/analyze"
)

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	a := importSample(t, dir, "", "a")
	b := importSample(t, dir, "", "b") // another random salt: compare does not need one

	code, out, errOut := runCLI(t, "compare", a, b)
	if code != 0 || !strings.Contains(out, "A = "+a) {
		t.Fatalf("text: %d %q %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, "compare", a, b, "--json")
	var c analyze.Comparison
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil || c.A.Events != 5 || c.CommandMixL1 != 0 {
		t.Fatalf("json: %d %q", code, out)
	}

	// A saved summary stands in for a profile.
	_, js, _ := runCLI(t, "inspect", "--json", a)
	saved := filepath.Join(dir, "a.json")
	os.WriteFile(saved, []byte(js), 0o644)
	code, out, errOut = runCLI(t, "compare", saved, b, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil || c.A.Events != 5 {
		t.Fatalf("saved summary: %d %q %q", code, out, errOut)
	}

	code, _, errOut = runCLI(t, "compare", a)
	if code != 2 || !strings.Contains(errOut, "two profiles") {
		t.Fatalf("one arg: %d %q", code, errOut)
	}
}
