package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs membench with args and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestSalt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "salt.hex")
	code, out, errOut := runCLI(t, "salt", "-o", path)
	if code != 0 || !strings.Contains(out, "fingerprint") || !strings.Contains(out, "--salt-file "+path) {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("salt file: %v %v", st, err)
	}
	data, _ := os.ReadFile(path)
	if len(strings.TrimSpace(string(data))) != 32 {
		t.Fatalf("salt file holds %q", data)
	}
	if bytes.Contains([]byte(out), bytes.TrimSpace(data)) {
		t.Fatal("salt printed to stdout")
	}
	// Never overwritten.
	code, _, errOut = runCLI(t, "salt", "--output", path)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second salt: code %d, %q", code, errOut)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("salt file changed")
	}
}

func TestSalt_Usage(t *testing.T) {
	f := func(args ...string) {
		t.Helper()
		code, _, errOut := runCLI(t, append([]string{"salt"}, args...)...)
		if code != 2 || !strings.Contains(errOut, "membench salt --help") {
			t.Fatalf("salt %q: code %d, %q", args, code, errOut)
		}
	}
	f()
	f("file.hex")
	f("-o")
	code, out, _ := runCLI(t, "salt", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") {
		t.Fatalf("help: %d %q", code, out)
	}
}
