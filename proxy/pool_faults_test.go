// Faults in pool mode, under a bounded load loop: a server killed and restarted (with and without
// auto_eject_hosts), a reload of the server list, and a server paused with SIGSTOP until the pool timeout
// answers for it. Keys of healthy servers must never see an error, and no client connection may be lost.
// Every wait has a deadline; nothing asserts how long anything took.
package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/ring"
)

// poolLoad runs text clients that set a key and get it back, over keys spread across the servers, until stopped.
// Answers are counted per server of the key (by the ring given at start, so per "home" server), and every error
// answer and connection failure is kept.
type poolLoad struct {
	t      testing.TB
	addr   string
	home   *ring.Ring
	strict bool // a get right after a successful set must hit (false while routing changes: reloads)

	mu      sync.Mutex
	ok      []int
	errs    []int
	texts   map[string]int
	wrong   []string // answers that are neither right nor a SERVER_ERROR
	connErr []error

	stop chan struct{}
	wg   sync.WaitGroup
}

func startPoolLoad(t testing.TB, addr string, home *ring.Ring, clients int, strict bool) *poolLoad {
	t.Helper()
	n := len(home.Servers())
	l := &poolLoad{t: t, addr: addr, home: home, strict: strict, ok: make([]int, n), errs: make([]int, n),
		texts: map[string]int{}, stop: make(chan struct{})}
	for c := range clients {
		conn, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatalf("load client %d: %v", c, err)
		}
		keys := poolKeys(fmt.Sprintf("load%d", c), 60)
		l.wg.Go(func() { l.client(conn, keys) })
	}
	t.Cleanup(l.finish)
	return l
}

func (l *poolLoad) client(c net.Conn, keys []string) {
	defer c.Close()
	r := bufio.NewReader(c)
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		k := keys[i%len(keys)]
		v := fmt.Sprintf("%s=%d", k, i)
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k); err != nil {
			l.connFailed(fmt.Errorf("write: %w", err))
			return
		}
		set, err := r.ReadString('\n')
		if err != nil {
			l.connFailed(fmt.Errorf("read set answer: %w", err))
			return
		}
		get, err := r.ReadString('\n')
		if err != nil {
			l.connFailed(fmt.Errorf("read get answer: %w", err))
			return
		}
		var val string
		if strings.HasPrefix(get, "VALUE ") {
			b := make([]byte, len(v)+2+len("END\r\n"))
			if _, err := io.ReadFull(r, b); err != nil {
				l.connFailed(fmt.Errorf("read value: %w", err))
				return
			}
			val = string(b)
		}
		l.count(l.home.Pick([]byte(k)), k, v, set, get, val)
	}
}

func (l *poolLoad) count(srv int, k, v, set, get, val string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	isErr := func(s string) bool { return strings.HasPrefix(s, "SERVER_ERROR ") }
	switch {
	case isErr(set) || isErr(get):
		l.errs[srv]++
		if isErr(set) {
			l.texts[strings.TrimSpace(set)]++
		}
		if isErr(get) {
			l.texts[strings.TrimSpace(get)]++
		}
		return
	case set != "STORED\r\n":
		l.wrong = append(l.wrong, fmt.Sprintf("set %s: %q", k, set))
		return
	case get == "END\r\n" && !l.strict:
	case get != fmt.Sprintf("VALUE %s 0 %d\r\n", k, len(v)) || val != v+"\r\nEND\r\n":
		l.wrong = append(l.wrong, fmt.Sprintf("get %s after set %q: %q %q", k, v, get, val))
		return
	}
	l.ok[srv]++
}

func (l *poolLoad) connFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connErr = append(l.connErr, err)
}

// snapshot returns copies of the counters.
func (l *poolLoad) snapshot() (ok, errs []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int{}, l.ok...), append([]int{}, l.errs...)
}

// progress waits until every server in srvs answered n more requests successfully.
func (l *poolLoad) progress(what string, n int, srvs ...int) {
	l.t.Helper()
	before, _ := l.snapshot()
	waitFor(l.t, what, func() bool {
		ok, _ := l.snapshot()
		for _, s := range srvs {
			if ok[s] < before[s]+n {
				return false
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.connErr) == 0 // stop waiting at once when a client died
	})
}

// finish stops the clients and waits for them.
func (l *poolLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check stops the load and fails on connection errors, wrong answers, or errors for keys of healthy servers.
func (l *poolLoad) check(healthy ...int) {
	l.t.Helper()
	l.finish()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.connErr) > 0 {
		l.t.Fatalf("%d load connections failed, first: %v", len(l.connErr), l.connErr[0])
	}
	if len(l.wrong) > 0 {
		l.t.Fatalf("%d wrong answers, first: %s", len(l.wrong), l.wrong[0])
	}
	for _, s := range healthy {
		if l.errs[s] > 0 {
			l.t.Fatalf("%d errors for keys of healthy server %d (errors by text: %v)", l.errs[s], s, l.texts)
		}
	}
	l.t.Logf("load: ok per server %v, errors per server %v, error texts %v", l.ok, l.errs, l.texts)
}

// poolFaultConfig is a pool over servers with a short retry interval, so a restarted server comes back soon.
func poolFaultConfig(t testing.TB, servers []*mctest.Server, autoEject bool) configs.Proxy {
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.Pool.AutoEject = autoEject
	cfg.Pool.FailureLimit = 2
	cfg.Pool.RetryTimeout = configs.Duration(200 * time.Millisecond)
	cfg.Pool.Timeout = configs.Duration(2 * time.Second)
	cfg.ConnectTimeout = configs.Duration(time.Second)
	return cfg
}

// poolKeyOn returns a fresh key (with prefix) that r places on server idx.
func poolKeyOn(t testing.TB, r *ring.Ring, idx int, prefix string) string {
	t.Helper()
	for i := range 100000 {
		k := fmt.Sprintf("%s:%d", prefix, i)
		if r.Pick([]byte(k)) == idx {
			return k
		}
	}
	t.Fatalf("no key with prefix %q lands on server %d", prefix, idx)
	return ""
}

// poolTry sends a set and a get of key on a fresh connection and returns both answer lines ("" past an error).
func poolTry(t testing.TB, addr, key, val string) (set, get string) {
	t.Helper()
	tc := dialText(t, addr)
	defer tc.c.Close()
	tc.send(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(val), val, key))
	set = tc.line()
	get = tc.line()
	if strings.HasPrefix(get, "VALUE ") {
		get = tc.line()
		tc.expect("END")
	}
	return set, get
}

func TestPoolFaults_NoEject(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolFaultConfig(t, servers, false)
	poolStart(t, cfg, proxy.Options{})
	r := poolRing(t, cfg.Pool)
	load := startPoolLoad(t, cfg.Listen, r, 4, true)
	load.progress("load on every server", 50, 0, 1, 2)

	servers[1].Stop()
	// Its keys fail with SERVER_ERROR (no hang: the read has a deadline), the others keep working.
	waitFor(t, "errors for the stopped server's keys", func() bool {
		_, errs := load.snapshot()
		return errs[1] >= 20
	})
	dead := poolKeyOn(t, r, 1, "dead")
	for range 5 {
		set, get := poolTry(t, cfg.Listen, dead, "x")
		if !strings.HasPrefix(set, "SERVER_ERROR ") || !strings.HasPrefix(get, "SERVER_ERROR ") {
			t.Fatalf("key of a stopped server, auto_eject_hosts off: got %q, %q; want SERVER_ERROR", set, get)
		}
	}
	load.progress("load on the live servers while one is down", 100, 0, 2)

	servers[1].Restart()
	// The probe (every server_retry_timeout) brings it back: its keys succeed again, and land on it.
	load.progress("load on the restarted server", 100, 1)
	back := poolKeyOn(t, r, 1, "back")
	if set, get := poolTry(t, cfg.Listen, back, "b"); set != "STORED" || get != "b" {
		t.Fatalf("key of the restarted server: got %q, %q", set, get)
	}
	if where := poolWhere(t, servers, []string{back}); where[back] != 1 {
		t.Fatalf("key %q of the restarted server landed on server %d", back, where[back])
	}
	load.check(0, 2)
}

func TestPoolFaults_AutoEject(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolFaultConfig(t, servers, true)
	poolStart(t, cfg, proxy.Options{})
	r := poolRing(t, cfg.Pool)
	load := startPoolLoad(t, cfg.Listen, r, 4, true)
	load.progress("load on every server", 50, 0, 1, 2)

	servers[1].Stop()
	// Once ejected, its keys move to the live servers and succeed.
	load.progress("the stopped server's keys re-routed", 100, 1)
	moved := poolKeyOn(t, r, 1, "moved")
	if set, get := poolTry(t, cfg.Listen, moved, "m"); set != "STORED" || get != "m" {
		t.Fatalf("key of an ejected server: got %q, %q; want it re-routed", set, get)
	}
	if where := poolWhere(t, []*mctest.Server{servers[0], servers[2]}, []string{moved}); where[moved] < 0 {
		t.Fatalf("re-routed key %q is on no live server", moved)
	}
	load.progress("load on the live servers after the ejection", 100, 0, 2)

	servers[1].Restart()
	attempt := 0
	waitFor(t, "the restarted server back in the ring", func() bool {
		attempt++
		back := poolKeyOn(t, r, 1, fmt.Sprintf("back%d", attempt)) // fresh: earlier attempts went elsewhere
		if set, _ := poolTry(t, cfg.Listen, back, "b"); set != "STORED" {
			t.Fatalf("set %q: %q", back, set)
		}
		d := poolDial(t, servers[1].Addr)
		defer d.c.Close()
		return d.has([]string{back})[back]
	})
	load.progress("load after the return", 100, 0, 1, 2)
	// Errors are allowed only for the stopped server's keys, before its ejection.
	load.check(0, 2)
}

func TestPoolReloadUnderLoad(t *testing.T) {
	servers := poolServers(t, 4)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers[:3]))
	srv := poolStart(t, cfg, proxy.Options{})
	// Counted by the first ring; keys move with each reload, so a get right after its set may miss.
	load := startPoolLoad(t, cfg.Listen, poolRing(t, cfg.Pool), 6, false)
	load.progress("load on every server", 50, 0, 1, 2)

	reload := func(p configs.Pool) {
		t.Helper()
		if err := srv.Reload(p); err != nil {
			t.Fatalf("Reload %v: %v", p.Servers, err)
		}
		load.progress(fmt.Sprintf("load after reload to %v", p.Servers), 200, 0, 1, 2)
	}
	p := cfg.Pool
	p.Servers = poolLines(servers[:3], 1, 3, 1) // weights
	reload(p)
	p.Servers = poolLines(servers, 1, 1, 1, 1) // a server added
	reload(p)
	p.Servers = poolLines(servers[1:]) // one removed
	reload(p)
	p.Hash, p.ConnectionsPerServer = "md5", 3
	reload(p)
	bad := p
	bad.Hash = "nope"
	if err := srv.Reload(bad); err == nil || !strings.Contains(err.Error(), "pool.hash") {
		t.Fatalf("Reload with a bad hash: %v, want an error naming pool.hash", err)
	}
	load.progress("load after a refused reload", 100, 0, 1, 2)
	final := cfg.Pool
	final.Servers = poolLines(servers[1:], 2, 1, 1)
	reload(final)
	load.check(0, 1, 2)

	// Fresh keys land where the last ring says.
	r := poolRing(t, final)
	keys := poolKeys("after-reload", 200)
	poolSetAll(t, cfg.Listen, keys)
	where := poolWhere(t, servers[1:], keys)
	for _, k := range keys {
		if where[k] != r.Pick([]byte(k)) {
			t.Fatalf("after the reloads key %q is on server %d, the new ring says %d", k, where[k], r.Pick([]byte(k)))
		}
	}
}

func TestPoolTimeout(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.Pool.Timeout = configs.Duration(300 * time.Millisecond)
	cfg.Pool.FailureLimit = 5 // two timeouts below must not take the server down
	cfg.Pool.RetryTimeout = configs.Duration(200 * time.Millisecond)
	poolStart(t, cfg, proxy.Options{})
	r := poolRing(t, cfg.Pool)
	stuck, live0, live2 := poolKeyOn(t, r, 1, "stuck"), poolKeyOn(t, r, 0, "live"), poolKeyOn(t, r, 2, "live")
	for _, k := range []string{stuck, live0, live2} {
		if set, get := poolTry(t, cfg.Listen, k, "v"); set != "STORED" || get != "v" {
			t.Fatalf("before the pause, %q: %q %q", k, set, get)
		}
	}
	if err := servers[1].Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := servers[1].Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		}
	}
	defer resume()

	// Text: the paused server's key gets the timeout error; a pipelined request behind it still gets its answer.
	tc := dialText(t, cfg.Listen)
	tc.send("get " + stuck + "\r\nget " + live0 + "\r\n")
	tc.expect("SERVER_ERROR upstream timeout", "VALUE "+live0+" 0 1", "v", "END")
	// Binary: the same, as a binary error with the request's opcode and opaque.
	c := dial(t, cfg.Listen)
	if _, err := c.Write(binReq{op: 0x00, key: stuck, opaque: 77}.bytes()); err != nil {
		t.Fatal(err)
	}
	f, err := readBinResp(c)
	if err != nil || f.op != 0x00 || f.opaque != 77 || f.status == 0 || !strings.Contains(string(f.value), "timeout") {
		t.Fatalf("binary get of a paused server's key: %v, %v; want an error naming the timeout", f, err)
	}
	// Meanwhile the other servers answer.
	for _, k := range []string{live0, live2} {
		if set, get := poolTry(t, cfg.Listen, k, "w"); set != "STORED" || get != "w" {
			t.Fatalf("while server 1 is paused, %q: %q %q", k, set, get)
		}
	}
	resume()
	waitFor(t, "the resumed server's key", func() bool {
		set, get := poolTry(t, cfg.Listen, stuck, "again")
		return set == "STORED" && get == "again"
	})
}

// TestPoolTimeoutAfterRemoval pauses a server, removes it by a reload while a request waits on it, and checks the
// request still gets the timeout error: a server taken out of the list keeps its waiting requests under the pool
// timeout.
func TestPoolTimeoutAfterRemoval(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.EventLoops = 1 // the reload below must be seen by the loop that holds the waiting request
	cfg.Pool.Timeout = configs.Duration(300 * time.Millisecond)
	srv := poolStart(t, cfg, proxy.Options{})
	r := poolRing(t, cfg.Pool)
	stuck, live := poolKeyOn(t, r, 1, "stuck"), poolKeyOn(t, r, 0, "live")
	if err := servers[1].Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = servers[1].Signal(syscall.SIGCONT) }()
	tc := dialText(t, cfg.Listen)
	tc.send("get " + stuck + "\r\n")
	waitFor(t, "the request to the paused server in flight", func() bool { return srv.InFlight() > 0 })
	p := cfg.Pool
	p.Servers = poolLines([]*mctest.Server{servers[0], servers[2]})
	if err := srv.Reload(p); err != nil {
		t.Fatal(err)
	}
	// This request makes the loop take up the new server list; its answer queues behind the stuck one.
	tc.send("get " + live + "\r\n")
	tc.expect("SERVER_ERROR upstream timeout", "END")
}
