package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/fulldisk"
	"github.com/membench/membench/internal/mctest"
)

// scrape returns the value of an unlabelled metric on addr's /metrics (-1 when it is absent).
func scrape(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("cannot read metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, sc.Text())
			}
			return f
		}
	}
	return -1
}

// waitFor polls cond every 50 ms for up to d; it fails the test with what when cond never held.
func waitFor(t *testing.T, d time.Duration, p *proc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s; proxy stderr:\n%s", what, d, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var exitLineRE = regexp.MustCompile(`membench proxy: (\d+) events recorded, (\d+) dropped, (\d+) bytes`)

// TestDiskFull records through the proxy onto a small tmpfs, fills it up, and frees it again. While it is full:
// one ERROR names the file and the error, profile_write_errors_total counts, events count as dropped and no
// longer as recorded. Once space is back the recording resumes by itself, and at exit every event the exit line
// claims is in the file, whose size is the bytes the line claims.
func TestDiskFull(t *testing.T) {
	dir := fulldisk.Mount(t, 4<<20)
	mc := mctest.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	prof := filepath.Join(dir, "full.mbp")
	p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", prof, "--metrics-listen",
		metricsAddr, "--flush-interval", "100ms")
	waitListening(t, listen, p)
	const (
		recorded = "membench_proxy_events_recorded_total"
		dropped  = "membench_proxy_events_dropped_total"
		errors   = "membench_proxy_profile_write_errors_total"
	)
	if v := scrape(t, metricsAddr, errors); v != 0 {
		t.Fatalf("%s = %v before any failure, want 0 (created at zero)", errors, v)
	}

	free := fulldisk.Fill(t, dir, 0)
	l := startLoad(listen, 4, 300)
	defer func() {
		select {
		case <-l.stop:
		default:
			l.halt()
		}
	}()
	waitFor(t, 20*time.Second, p, "an ERROR naming the profile", func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "level=ERROR") && strings.Contains(s, prof) &&
			strings.Contains(s, "no space left on device")
	})
	waitFor(t, 5*time.Second, p, errors+" > 0", func() bool { return scrape(t, metricsAddr, errors) > 0 })
	// While the disk stays full, events are dropped, not recorded.
	rec0, drop0 := scrape(t, metricsAddr, recorded), scrape(t, metricsAddr, dropped)
	waitFor(t, 10*time.Second, p, dropped+" rising", func() bool { return scrape(t, metricsAddr, dropped) > drop0+100 })
	if rec1 := scrape(t, metricsAddr, recorded); rec1 != rec0 {
		t.Fatalf("%s rose from %v to %v while the disk was full", recorded, rec0, rec1)
	}
	if l.errors.Load() > 0 {
		t.Fatalf("clients saw errors while the profile could not be written")
	}

	// Space returns: the recording resumes without help.
	free()
	waitFor(t, 30*time.Second, p, "the recording to resume", func() bool {
		return scrape(t, metricsAddr, recorded) > rec0+1000
	})
	l.halt()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("proxy exit: %v; stderr:\n%s", err, p.stderr.String())
	}
	if n := strings.Count(p.stderr.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d ERROR lines for one episode, want 1:\n%s", n, p.stderr.String())
	}
	m := exitLineRE.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no exit line in %q", p.stdout.String())
	}
	claimed, _ := strconv.Atoi(m[1])
	claimedDropped, _ := strconv.Atoi(m[2])
	claimedBytes, _ := strconv.ParseInt(m[3], 10, 64)
	evs, truncated := readEvents(t, prof)
	if len(evs) != claimed || truncated != 0 {
		t.Fatalf("exit line claims %d events, the file holds %d (%d truncated blocks): %s", claimed, len(evs),
			truncated, p.stdout.String())
	}
	if claimedDropped == 0 || float64(claimedDropped) < scrape0(drop0) {
		t.Fatalf("exit line claims %d dropped; the metric counted %v while the disk was full", claimedDropped, drop0)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() != claimedBytes {
		t.Fatalf("exit line claims %d bytes, the file has %v (%v)", claimedBytes, st.Size(), err)
	}
	// The events recorded after the resume are there, after those of before the failure.
	if float64(claimed) <= rec0 {
		t.Fatalf("the file holds %d events, no more than the %v recorded before the disk filled up", claimed, rec0)
	}
}

func scrape0(v float64) float64 { return max(v, 0) }
