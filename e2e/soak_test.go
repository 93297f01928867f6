package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// soakDuration is MEMBENCH_SOAK (e.g. 5m locally), 30s by default so that CI runs a short version.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if s := os.Getenv("MEMBENCH_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("MEMBENCH_SOAK=%q: want a duration such as 5m", s)
		}
		return d
	}
	return 30 * time.Second
}

// rssKiB reads VmRSS of a process.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("cannot read the RSS of pid %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// TestSoak runs mixed load through a recording proxy with a tap capturing the proxy's upstream traffic at the
// same time, for MEMBENCH_SOAK (30s by default): no client error, and the proxy's memory stays flat.
func TestSoak(t *testing.T) {
	if os.Geteuid() != 0 {
		mctest.Missing(t, "the soak's tap captures on lo and needs root")
	}
	mctest.Require(t, "memcached")
	dur := soakDuration(t)
	mc := mctest.StartMemcached(t, "-m", "64")
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	proxyProf, tapProf := filepath.Join(dir, "proxy.mbp"), filepath.Join(dir, "tap.mbp")
	px := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", proxyProf, "--metrics-listen", "")
	waitListening(t, listen, px)
	tp := start(t, "tap", "--interface", "lo", "--port", strconv.Itoa(mc.Port), "--record", tapProf,
		"--metrics-listen", "", "--immediate-mode=false")
	// Give the capture a moment to open before load starts; events before it would only be missing from the
	// tap's profile, which this test does not compare exactly.
	time.Sleep(time.Second)

	l := startLoad(listen, 8, 20000)
	warm := time.Now().Add(min(5*time.Second, dur/4))
	for time.Now().Before(warm) && l.errors.Load() == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	rssStart := rssKiB(t, px.cmd.Process.Pid)
	end := time.Now().Add(dur)
	for time.Now().Before(end) && l.errors.Load() == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	rssEnd := rssKiB(t, px.cmd.Process.Pid)
	l.halt()
	t.Logf("soak %s: %d operations, %d errors; proxy RSS %d KiB after warm-up, %d KiB at the end", dur,
		l.completed.Load(), l.errors.Load(), rssStart, rssEnd)
	if l.errors.Load() != 0 {
		t.Fatalf("%d client errors during the soak; proxy stderr:\n%s", l.errors.Load(), px.stderr.String())
	}
	// Flat: the steady state after warm-up may wobble (GC, buffers), but must not grow with the run's length.
	if rssEnd > rssStart*3/2+32*1024 {
		t.Fatalf("proxy RSS grew from %d KiB to %d KiB during the soak", rssStart, rssEnd)
	}
	_ = px.cmd.Process.Signal(syscall.SIGTERM)
	if err := px.wait(t, 30*time.Second); err != nil {
		t.Fatalf("proxy: %v\n%s", err, px.stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // the last packets reach the tap
	_ = tp.cmd.Process.Signal(syscall.SIGTERM)
	if err := tp.wait(t, 30*time.Second); err != nil {
		t.Fatalf("tap: %v\n%s", err, tp.stderr.String())
	}
	pev, _ := readEvents(t, proxyProf)
	tev, _ := readEvents(t, tapProf)
	t.Logf("proxy recorded %d events, the tap %d; tap summary: %s", len(pev), len(tev), strings.TrimSpace(tp.stdout.String()))
	if countAnswered(pev) != int(l.completed.Load()) {
		t.Fatalf("proxy recorded %d answered events for %d completed operations", countAnswered(pev), l.completed.Load())
	}
	// The tap sees the proxy's upstream side; drops would be reported, so require nearly all of it.
	if len(tev) < len(pev)*95/100 {
		t.Fatalf("the tap recorded %d events of the proxy's %d; tap stderr:\n%s", len(tev), len(pev), tp.stderr.String())
	}
}
