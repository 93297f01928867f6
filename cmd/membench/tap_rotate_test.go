package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// TestTapRotateLive captures memcached's port on lo with `membench tap --record`, rotates the profile with SIGHUP
// between two client sessions and stops with SIGTERM: the rotated file and the new one are both complete
// profiles, and together they hold every request of both sessions — none lost at the switch.
func TestTapRotateLive(t *testing.T) {
	if os.Geteuid() != 0 {
		mctest.Missing(t, "a live capture on lo needs root (or CAP_NET_RAW)")
	}
	mc := mctest.StartMemcached(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "membench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(mc.Addr)
	metrics := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	out := filepath.Join(dir, "tap.mbp")
	var stderr lockedBuffer
	cmd := exec.Command(bin, "tap", "--interface", "lo", "--port", port, "--record", out, "--salt-file",
		writeSalt(t), "--metrics-listen", metrics)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// The capture is running once packets of a connection to memcached show up.
	for deadline := time.Now().Add(15 * time.Second); tapMetric(metrics, "membench_tap_packets_total") < 1; {
		if c, err := net.Dial("tcp", mc.Addr); err == nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tap saw no connection within 15s:\n%s", stderr.String())
		}
		time.Sleep(200 * time.Millisecond) // quiet for longer than a live read's timeout: the tap publishes

	}
	const perSession = 100 // 50 sets and 50 gets
	waitEvents := func(n float64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); tapMetric(metrics, "membench_tap_events_recorded_total") < n; {
			if time.Now().After(deadline) {
				resp, _ := http.Get("http://" + metrics + "/metrics")
				var b []byte
				if resp != nil {
					b, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				t.Fatalf("the tap paired fewer than %v requests within 15s:\n%s\n%s", n, stderr.String(), b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := setGetSession(mc.Addr, "first", perSession/2); err != nil {
		t.Fatal(err)
	}
	waitEvents(perSession)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "profile rotated"); {
		if time.Now().After(deadline) {
			t.Fatalf("no rotation after SIGHUP:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := setGetSession(mc.Addr, "second", perSession/2); err != nil {
		t.Fatal(err)
	}
	waitEvents(2 * perSession)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("membench tap: %v\n%s", err, stderr.String())
	}

	files, _ := filepath.Glob(filepath.Join(dir, "tap*.mbp"))
	if len(files) != 2 {
		t.Fatalf("profiles %v, want the first and the rotated one", files)
	}
	total := 0
	for _, f := range files {
		if f != out && !regexp.MustCompile(`tap-\d{8}T\d{6}Z(-\d+)?\.mbp$`).MatchString(f) {
			t.Fatalf("unexpected profile name %s", f)
		}
		h, evs := readProfile(t, f)
		if h.Mode != "tap" {
			t.Fatalf("%s: mode %q", f, h.Mode)
		}
		total += len(evs)
		t.Logf("%s: %d events", filepath.Base(f), len(evs))
	}
	if total != 2*perSession {
		t.Fatalf("%d events in both profiles, want %d:\n%s", total, 2*perSession, stderr.String())
	}
}

// setGetSession stores and reads back n keys on one connection.
func setGetSession(addr, prefix string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(c)
	for i := range n {
		key := fmt.Sprintf("%s:%d", prefix, i)
		if _, err := fmt.Fprintf(c, "set %s 0 0 5\r\nhello\r\nget %s\r\n", key, key); err != nil {
			return err
		}
		for _, want := range []string{"STORED", "VALUE", "hello", "END"} {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(l, want) {
				return fmt.Errorf("%s: got %q, want %s", key, l, want)
			}
		}
	}
	return nil
}

// tapMetric reads one counter from the tap's /metrics, or -1.
func tapMetric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
