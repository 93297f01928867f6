package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
)

// busyPort returns a loopback address something listens on until the test ends.
func busyPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// startFails runs a recorder's start that must fail with an error containing want, twice: neither run may
// leave a profile behind, so the second fails for the same reason and not because the profile "already
// exists".
func startFails(t *testing.T, record, want string, args ...string) {
	t.Helper()
	for run := range 2 {
		code, stdout, stderr := runMembench(args...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Fatalf("run %d of %q: exit %d, want a failure naming %q:\n%s%s", run+1, args, code, want, stdout, stderr)
		}
		if _, err := os.Lstat(record); !os.IsNotExist(err) {
			t.Fatalf("run %d of %q: a failed start left %s behind (%v)", run+1, args, record, err)
		}
	}
}

// TestProxyStartFailure: a proxy whose start fails (a queue size it cannot allocate, a busy metrics or
// client port) leaves no profile.
func TestProxyStartFailure(t *testing.T) {
	mc := mctest.StartMemcached(t)
	dir := t.TempDir()
	record := filepath.Join(dir, "p.mbp")
	listen := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	base := []string{"proxy", "--upstream", mc.Addr, "--record", record}
	startFails(t, record, "queue_size", append(base, "--listen", listen, "--metrics-listen", "",
		"--queue-size", "9223372036854775807")...)
	startFails(t, record, "queue_size", append(base, "--listen", listen, "--metrics-listen", "",
		"--queue-size", strconv.Itoa(1<<40))...)
	startFails(t, record, "address already in use", append(base, "--listen", listen, "--metrics-listen",
		busyPort(t))...)
	startFails(t, record, "address already in use", append(base, "--listen", busyPort(t), "--metrics-listen",
		"")...)
}

// TestTapStartFailure: a tap whose start fails (a queue size it cannot allocate, a busy metrics port) leaves
// no profile.
func TestTapStartFailure(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "t.mbp")
	base := []string{"tap", "--pcap", filepath.Join(fixturesDir, "text.pcap"), "--port", fixturePortString(t),
		"--record", record}
	startFails(t, record, "queue_size", append(base, "--metrics-listen", "", "--queue-size",
		"9223372036854775807")...)
	startFails(t, record, "address already in use", append(base, "--metrics-listen", busyPort(t))...)
}
