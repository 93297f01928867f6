// Package packaging holds the tests of how membench is built and installed: the static build (CGO_ENABLED=0,
// what the Containerfile ships) and the Debian package (make deb). They build real binaries and packages, so
// they live apart from the code they build.
package packaging

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/profile"
)

// repoRoot is the module root, relative to this package.
const repoRoot = ".."

// run runs bin with args for at most a minute and returns its exit code and output.
func run(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v\n%s%s", bin, args, err, out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

// fixturePort is the memcached port of the tap's pcap fixtures.
func fixturePort(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "tap", "testdata", "fixtures.port"))
	if err != nil {
		t.Fatalf("cannot read the fixtures' port: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// TestStaticBuild: CGO_ENABLED=0 builds (no libpcap); live capture then fails with a message that says so and
// names what works instead, and capture files are still read.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "membench")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/membench")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/membench: %v\n%s", err, out)
	}

	code, stdout, stderr := run(t, bin, "version")
	if code != 0 || !strings.Contains(stdout, "static build: no live capture") {
		t.Fatalf("membench version: exit %d, %q %q; want it to say the build has no live capture", code, stdout,
			stderr)
	}

	// Live capture: a clear error (exit 1) naming the flag and the way out, and no profile left behind.
	rec := filepath.Join(dir, "live.mbp")
	code, stdout, stderr = run(t, bin, "tap", "--interface", "lo", "--port", "11211", "--record", rec,
		"--metrics-listen", "")
	for _, want := range []string{`interface "lo" (--interface`, "static build (CGO_ENABLED=0) without libpcap",
		"no live capture support", "--pcap FILE"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("static tap --interface lo: exit %d, want 1 and %q in stderr:\n%s%s", code, want, stdout, stderr)
		}
	}
	if _, err := os.Lstat(rec); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("static tap --interface lo left %s behind (%v)", rec, err)
	}

	// A capture file is read by the tap's own reader and recorded.
	salt := filepath.Join(dir, "salt.hex")
	if code, stdout, stderr = run(t, bin, "salt", "-o", salt); code != 0 {
		t.Fatalf("static salt: exit %d\n%s%s", code, stdout, stderr)
	}
	pcap := filepath.Join(repoRoot, "tap", "testdata", "text.pcap")
	rec = filepath.Join(dir, "file.mbp")
	code, stdout, stderr = run(t, bin, "tap", "--pcap", pcap, "--port", fixturePort(t), "--record", rec,
		"--salt-file", salt, "--metrics-listen", "")
	if code != 0 || !strings.Contains(stdout, "events recorded") {
		t.Fatalf("static tap --pcap: exit %d\n%s%s", code, stdout, stderr)
	}
	r, err := profile.Open(rec, profile.ReaderOptions{})
	if err != nil {
		t.Fatalf("static tap --pcap wrote an unreadable profile: %v", err)
	}
	defer r.Close()
	n := 0
	var ev profile.Event
	for r.Next(&ev) {
		n++
	}
	if err := r.Err(); err != nil || n == 0 || r.Header().Mode != "tap" {
		t.Fatalf("static tap --pcap: %d events, mode %q, err %v", n, r.Header().Mode, err)
	}

	// --bpf needs libpcap's compiler: an error naming the flag, not a silent unfiltered run.
	code, _, stderr = run(t, bin, "tap", "--pcap", pcap, "--port", fixturePort(t), "--bpf", "tcp",
		"--metrics-listen", "")
	if code != 1 || !strings.Contains(stderr, "--bpf") || !strings.Contains(stderr, "without libpcap") {
		t.Fatalf("static tap --pcap --bpf: exit %d, want 1 and an error naming --bpf:\n%s", code, stderr)
	}
}
