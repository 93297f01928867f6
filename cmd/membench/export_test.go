package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importSample writes the Twitter sample as a profile in dir and returns its path.
func importSample(t *testing.T, dir, salt, name string) string {
	t.Helper()
	in := filepath.Join(dir, name+".csv")
	os.WriteFile(in, []byte(twitterLines), 0o644)
	out := filepath.Join(dir, name+".mbp")
	args := []string{"import", "--format", "twitter", in, "-o", out}
	if salt != "" {
		args = append(args, "--salt-file", salt)
	}
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	return out
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	prof := importSample(t, dir, "", "a")

	code, out, errOut := runCLI(t, "export", "--format", "twitter", prof, "-o", "-")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 || !strings.HasSuffix(lines[1], ",22,342,9,set,3600") ||
		!strings.Contains(errOut, "exported 5 events") {
		t.Fatalf("twitter: %d %q %q", code, out, errOut)
	}

	code, out, _ = runCLI(t, "export", "--format", "csv", prof, "--output", "-")
	if code != 0 || !strings.HasPrefix(out, "time_ns,conn,proto,cmd,") || strings.Count(out, "\n") != 6 {
		t.Fatalf("csv: %d %q", code, out)
	}

	og := filepath.Join(dir, "a.og")
	code, _, errOut = runCLI(t, "export", "--format", "oracle-general", prof, "-o", og)
	if st, err := os.Stat(og); code != 0 || err != nil || st.Size() != 5*24 {
		t.Fatalf("oracle-general: %d %q %v", code, errOut, err)
	}
	code, _, errOut = runCLI(t, "export", "--format", "oracle-general", prof, "-o", og)
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("existing output: %d %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "export", "--format", "oracle-general", prof, "-o", og, "--force"); code != 0 {
		t.Fatalf("--force: %q", errOut)
	}
}

func TestExport_Usage(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		code, _, errOut := runCLI(t, append([]string{"export"}, args...)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Fatalf("export %q: code %d, %q", args, code, errOut)
		}
	}
	f("--format", "a.mbp", "-o", "x")
	f("unknown --format", "a.mbp", "-o", "x", "--format", "parquet")
	f("needs a file", "a.mbp", "-o", "-", "--format", "oracle-general")
	f("missing -o", "a.mbp", "--format", "csv")
}

func TestExport_BadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, []byte("not a profile at all"), 0o644)
	code, _, errOut := runCLI(t, "export", "--format", "csv", path, "-o", "-")
	if code != 1 || !strings.Contains(errOut, "not a membench profile") || !strings.Contains(errOut, path) {
		t.Fatalf("%d %q", code, errOut)
	}
}
