// Package e2e holds the end-to-end reliability suite: the built membench binary, a real memcached and real
// clients, with signals and kills as an operator would send them. Every test is bounded in time; the soak's
// length comes from MEMBENCH_SOAK (default 30s).
package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "membench-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "membench")
	out, err := exec.Command("go", "build", "-o", binPath, "../cmd/membench").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build membench: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a membench process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), done: make(chan error, 1)}
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start membench %v: %v", args, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(d):
		t.Fatalf("membench did not exit within %s; stderr:\n%s", d, p.stderr.String())
		return nil
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := dial(addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("membench exited early (%v); stderr:\n%s", err, p.stderr.String())
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s; stderr:\n%s", addr, p.stderr.String())
}

// load runs closed-loop gomemcache clients until stop is closed or their first error; it returns the
// operations that completed (a get that misses is a completed operation) and the completion times.
type load struct {
	completed atomic.Int64
	errors    atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	times     []int64 // completion time of each operation, ns
}

func startLoad(addr string, clients, keys int) *load {
	l := &load{stop: make(chan struct{})}
	for c := 0; c < clients; c++ {
		l.wg.Add(1)
		go func(c int) {
			defer l.wg.Done()
			mc := memcache.New(addr)
			mc.Timeout = 2 * time.Second
			mc.MaxIdleConns = 1
			val := bytes.Repeat([]byte{'v'}, 100+c)
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("e2e:%d:%d", c, i%keys)
				var err error
				if i%4 == 0 {
					err = mc.Set(&memcache.Item{Key: key, Value: val})
				} else {
					_, err = mc.Get(key)
					if errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
					}
				}
				if err != nil {
					l.errors.Add(1)
					return
				}
				now := time.Now().UnixNano()
				l.completed.Add(1)
				l.mu.Lock()
				l.times = append(l.times, now)
				l.mu.Unlock()
			}
		}(c)
	}
	return l
}

func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
}

// readEvents reads a profile and returns its events and reader counters.
func readEvents(t *testing.T, path string) (evs []profile.Event, truncated int) {
	t.Helper()
	r, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		t.Fatalf("cannot open profile: %v", err)
	}
	defer r.Close()
	var ev profile.Event
	for r.Next(&ev) {
		evs = append(evs, ev)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return evs, r.TruncatedBlocks()
}

func countAnswered(evs []profile.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Status != mcproto.StatusLost {
			n++
		}
	}
	return n
}

// TestSIGTERMLosesNoEvent: SIGTERM during load; every operation a client completed is in the profile.
func TestSIGTERMLosesNoEvent(t *testing.T) {
	mc := mctest.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	prof := filepath.Join(t.TempDir(), "term.mbp")
	p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", prof, "--metrics-listen", "")
	waitListening(t, listen, p)
	l := startLoad(listen, 8, 500)
	for l.completed.Load() < 5000 {
		if l.errors.Load() > 0 {
			t.Fatalf("client errors before SIGTERM; proxy stderr:\n%s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("proxy exit: %v; stderr:\n%s", err, p.stderr.String())
	}
	l.halt()
	evs, _ := readEvents(t, prof)
	got, want := countAnswered(evs), int(l.completed.Load())
	if got != want {
		t.Fatalf("profile has %d answered events, clients completed %d operations (summary: %s)", got, want,
			p.stdout.String())
	}
	if !strings.Contains(p.stdout.String(), strconv.Itoa(len(evs))+" events recorded, 0 dropped") {
		t.Fatalf("summary does not report the %d events: %q", len(evs), p.stdout.String())
	}
	st, err := os.Stat(prof)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("profile mode: %v %v, want 0600", st.Mode(), err)
	}
}

// TestKill9KeepsFlushedEvents: kill -9 during load; the profile is readable and holds every operation
// completed more than a flush interval (plus margin) before the kill.
func TestKill9KeepsFlushedEvents(t *testing.T) {
	mc := mctest.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	prof := filepath.Join(t.TempDir(), "kill.mbp")
	const flush = 200 * time.Millisecond
	p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", prof, "--metrics-listen", "",
		"--flush-interval", flush.String())
	waitListening(t, listen, p)
	l := startLoad(listen, 4, 300)
	// Run long enough that operations exist before the cutoff (flush interval plus margin) on a fast machine,
	// and enough of them on a slow one.
	loadStart := time.Now()
	for l.completed.Load() < 20000 || time.Since(loadStart) < 3*time.Second {
		if l.errors.Load() > 0 {
			t.Fatalf("client errors before the kill; proxy stderr:\n%s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	killAt := time.Now().UnixNano()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t, 10*time.Second)
	l.halt()
	// Operations completed well before the kill must have been written: the writer flushes a block at least
	// every flush interval; one more second of margin covers the queue hand-off on a loaded machine.
	cutoff := killAt - int64(flush) - int64(time.Second)
	l.mu.Lock()
	mustHave := 0
	for _, ts := range l.times {
		if ts < cutoff {
			mustHave++
		}
	}
	l.mu.Unlock()
	evs, truncated := readEvents(t, prof)
	if got := countAnswered(evs); got < mustHave {
		t.Fatalf("after kill -9 the profile has %d events; %d operations completed before the last flush "+
			"interval (truncated blocks: %d)", got, mustHave, truncated)
	}
	if mustHave == 0 {
		t.Fatalf("the load completed no operation before the cutoff: the test checked nothing")
	}
}

// TestSaltAndProfileModes: salt files and profiles are 0600; metrics listen on loopback by default.
func TestSaltAndProfileModes(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt.hex")
	p := start(t, "salt", "-o", salt)
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("membench salt: %v: %s", err, p.stderr.String())
	}
	st, err := os.Stat(salt)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("salt file mode %v (%v), want 0600", st.Mode(), err)
	}
	// A recorder refuses a salt file others can read.
	if err := os.Chmod(salt, 0o644); err != nil {
		t.Fatal(err)
	}
	mc := mctest.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	p = start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", filepath.Join(dir, "x.mbp"),
		"--salt-file", salt, "--metrics-listen", "")
	err = p.wait(t, 10*time.Second)
	if err == nil || !strings.Contains(p.stderr.String(), "salt") {
		t.Fatalf("proxy accepted a world-readable salt file (err %v); stderr:\n%s", err, p.stderr.String())
	}
	// The default metrics address is loopback.
	if h, _, _ := net.SplitHostPort(configs.DefaultProxy().MetricsListen); h != "127.0.0.1" {
		t.Fatalf("the proxy's default metrics_listen is %q, not loopback", configs.DefaultProxy().MetricsListen)
	}
	_ = os.Chmod(salt, 0o600)
	p = start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", filepath.Join(dir, "y.mbp"),
		"--salt-file", salt, "--metrics-listen", "")
	waitListening(t, listen, p)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.wait(t, 20*time.Second)
	st, err = os.Stat(filepath.Join(dir, "y.mbp"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("profile mode %v (%v), want 0600", st.Mode(), err)
	}
}

func dial(addr string) (io.Closer, error) {
	return net.DialTimeout("tcp", addr, time.Second)
}
