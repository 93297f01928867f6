// Reloads that take servers out of the pool: the proxy's connections to a removed server, primary or shadow,
// close once nothing is in flight on them, without a client request failing and without further client
// traffic to prompt it; and a removed server that was down is no longer probed, nor brought back by a probe.
// Connections are counted on the servers themselves (memcached's curr_connections, or accepts on a listener the
// test owns). Every wait has a deadline; nothing asserts how long anything took.
package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/ring"
)

// poolConnsBack waits until memcached at addr has no more connections than base (its curr_connections before
// the proxy connected).
func poolConnsBack(t testing.TB, addr string, base uint64, what string) {
	t.Helper()
	waitFor(t, what, func() bool { return memcachedStat(t, addr, "curr_connections") <= base })
}

// TestPoolReloadClosesRemovedServer removes a server by a reload while one request waits on it (the server is
// paused) and the other connections to it are idle, on both event loops and for both protocols. The waiting
// request gets its real answer, and then every connection to the removed server closes, though no client sends
// anything after the reload.
func TestPoolReloadClosesRemovedServer(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.Pool.ConnectionsPerServer = 3
	srv := poolStart(t, cfg, proxy.Options{})
	r := poolRing(t, cfg.Pool)
	gone := servers[2]
	base := memcachedStat(t, gone.Addr, "curr_connections")

	key := poolKeyOn(t, r, 2, "removed")
	if set, get := poolTry(t, cfg.Listen, key, "before"); set != "STORED" || get != "before" {
		t.Fatalf("set and get of %q: %q %q", key, set, get)
	}
	// Enough clients that each loop holds several text connections and a binary one to the server.
	var texts []*textConn
	for range 8 {
		tc := dialText(t, cfg.Listen)
		tc.roundTrip("get "+key+"\r\n", "VALUE "+key+" 0 6", "before", "END")
		texts = append(texts, tc)
	}
	var bins []net.Conn
	for i := range 4 {
		c := dial(t, cfg.Listen)
		if _, err := c.Write(binReq{op: 0x00, key: key, opaque: uint32(i)}.bytes()); err != nil {
			t.Fatal(err)
		}
		if f, err := readBinResp(c); err != nil || f.status != 0 || string(f.value) != "before" {
			t.Fatalf("binary get of %q: %v %v", key, f, err)
		}
		bins = append(bins, c)
	}
	if n := memcachedStat(t, gone.Addr, "curr_connections"); n < base+4 {
		t.Fatalf("server 2 has %d connections, %d before the clients; want the proxy's connections to it", n, base)
	}

	// One request waits on the paused server while the reload removes it.
	if err := gone.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = gone.Signal(syscall.SIGCONT)
		}
	}()
	texts[0].send("get " + key + "\r\n")
	waitFor(t, "the request to the paused server in flight", func() bool { return srv.InFlight() > 0 })
	p := cfg.Pool
	p.Servers = poolLines(servers[:2])
	if err := srv.Reload(p); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := gone.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	texts[0].expect("VALUE "+key+" 0 6", "before", "END")
	poolConnsBack(t, gone.Addr, base, "the connections to the removed server to close")

	// Every client connection still works, on the servers that remain.
	r2 := poolRing(t, p)
	for i, tc := range texts {
		k := poolKeyOn(t, r2, i%2, fmt.Sprintf("after%d", i))
		tc.roundTrip(fmt.Sprintf("set %s 0 0 1\r\nx\r\nget %s\r\n", k, k), "STORED", "VALUE "+k+" 0 1", "x", "END")
	}
	for i, c := range bins {
		if _, err := c.Write(binReq{op: 0x0a, opaque: uint32(i)}.bytes()); err != nil {
			t.Fatal(err)
		}
		if f, err := readBinResp(c); err != nil || f.op != 0x0a || f.opaque != uint32(i) {
			t.Fatalf("binary noop after the reload: %v %v", f, err)
		}
	}
}

// TestPoolReloadClosesRemovedShadow removes one shadow server, then the whole shadow pool, by reloads: the
// connections to each removed shadow server close without further client traffic, and the primary answers all
// along.
func TestPoolReloadClosesRemovedShadow(t *testing.T) {
	primary := poolServers(t, 1)
	shadow := poolServers(t, 2)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(primary))
	cfg.Pool.ConnectionsPerServer = 3
	cfg.Pool.Shadow.Servers = poolLines(shadow)
	cfg.Pool.Shadow.Hash = "fnv1a_64"
	cfg.Pool.Shadow.Fraction = 1
	srv := poolStart(t, cfg, proxy.Options{})
	shadowServers, err := cfg.Pool.ShadowServers()
	if err != nil {
		t.Fatal(err)
	}
	sr, err := ring.New(shadowServers, "fnv1a_64", ring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := []uint64{
		memcachedStat(t, shadow[0].Addr, "curr_connections"),
		memcachedStat(t, shadow[1].Addr, "curr_connections"),
	}

	// Every client sets a key of each shadow server, text or binary, so each loop holds several connections
	// of both protocols to both.
	var keys []string
	var texts []*textConn
	var bins []net.Conn
	for i := range 12 {
		for s := range 2 {
			k := poolKeyOn(t, sr, s, fmt.Sprintf("shadowed%d", i))
			keys = append(keys, k)
			if i < 8 {
				if s == 0 {
					texts = append(texts, dialText(t, cfg.Listen))
				}
				texts[i].roundTrip(fmt.Sprintf("set %s 0 0 1\r\nv\r\n", k), "STORED")
				continue
			}
			if s == 0 {
				bins = append(bins, dial(t, cfg.Listen))
			}
			c := bins[i-8]
			if _, err := c.Write(binReq{op: 0x01, key: k, extras: storeExtras(0, 0), value: "v"}.bytes()); err != nil {
				t.Fatal(err)
			}
			if f, err := readBinResp(c); err != nil || f.status != 0 {
				t.Fatalf("binary set of %q: %v %v", k, f, err)
			}
		}
	}
	waitFor(t, "every key copied to its shadow server", func() bool {
		where := poolWhere(t, shadow, keys)
		for _, k := range keys {
			if where[k] != sr.Pick([]byte(k)) {
				return false
			}
		}
		return true
	})
	for s := range 2 {
		if n := memcachedStat(t, shadow[s].Addr, "curr_connections"); n < base[s]+4 {
			t.Fatalf("shadow server %d has %d connections, %d before the clients; want the proxy's copies", s, n, base[s])
		}
	}

	p := cfg.Pool
	p.Shadow.Servers = poolLines(shadow[:1])
	if err := srv.Reload(p); err != nil {
		t.Fatal(err)
	}
	poolConnsBack(t, shadow[1].Addr, base[1], "the connections to the removed shadow server to close")
	// The remaining shadow server still gets copies, now of every key.
	k := poolKeyOn(t, sr, 1, "after-shadow-reload")
	texts[0].roundTrip(fmt.Sprintf("set %s 0 0 1\r\nw\r\nget %s\r\n", k, k), "STORED", "VALUE "+k+" 0 1", "w", "END")
	waitFor(t, "a copy on the remaining shadow server", func() bool {
		return poolWhere(t, shadow[:1], []string{k})[k] == 0
	})

	p.Shadow = configs.DefaultPool().Shadow
	if err := srv.Reload(p); err != nil {
		t.Fatal(err)
	}
	poolConnsBack(t, shadow[0].Addr, base[0], "the connections to the last shadow server to close")
	for i, tc := range texts {
		k := fmt.Sprintf("unshadowed%d", i)
		tc.roundTrip(fmt.Sprintf("set %s 0 0 1\r\nu\r\nget %s\r\n", k, k), "STORED", "VALUE "+k+" 0 1", "u", "END")
	}
	for i, c := range bins {
		if _, err := c.Write(binReq{op: 0x0a, opaque: uint32(i)}.bytes()); err != nil {
			t.Fatal(err)
		}
		if f, err := readBinResp(c); err != nil || f.op != 0x0a || f.opaque != uint32(i) {
			t.Fatalf("binary noop after the reloads: %v %v", f, err)
		}
	}
}

// fakeServer is a listener the test owns that counts the connections it accepts. It closes each at once (a
// server that fails every request and every probe) until answer is set; then it answers one version command.
type fakeServer struct {
	addr    string
	ln      net.Listener
	accepts atomic.Int64
	answer  atomic.Bool
	wg      sync.WaitGroup
}

func startFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: ln.Addr().String(), ln: ln}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepts.Add(1)
			if !f.answer.Load() {
				c.Close()
				continue
			}
			f.wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				if l, err := bufio.NewReader(c).ReadString('\n'); err == nil && l == "version\r\n" {
					_, _ = c.Write([]byte("VERSION 1.6.0\r\n"))
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
	})
	return f
}

// logBuffer collects a logger's text output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPoolReloadStopsProbe ejects two failing servers and removes one of them by a reload. The kept one is still
// probed every server_retry_timeout, as the removed one was, so its probes serve as the clock: while it takes ten
// more, the removed one sees at most the probe that was under way at the reload; then, once the removed one
// would answer a probe, it sees none and is never logged as back.
func TestPoolReloadStopsProbe(t *testing.T) {
	mc := poolServers(t, 1)[0]
	removed, kept := startFakeServer(t), startFakeServer(t)
	cfg := poolTestConfig(t, "fnv1a_64", []string{mc.Addr + ":1", removed.addr + ":1", kept.addr + ":1"})
	cfg.Pool.AutoEject = true
	cfg.Pool.FailureLimit = 1
	cfg.Pool.RetryTimeout = configs.Duration(20 * time.Millisecond)
	logs := &logBuffer{}
	srv := poolStart(t, cfg, proxy.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	r := poolRing(t, cfg.Pool)

	for idx, f := range []*fakeServer{removed, kept} {
		tc := dialText(t, cfg.Listen)
		tc.send("get " + poolKeyOn(t, r, idx+1, "fake") + "\r\n")
		if l := tc.line(); !strings.HasPrefix(l, "SERVER_ERROR ") {
			t.Fatalf("get of a key on a server that closes every connection: %q, want a SERVER_ERROR", l)
		}
		waitFor(t, fmt.Sprintf("probes of server %d", idx+1), func() bool { return f.accepts.Load() >= 3 })
	}

	p := cfg.Pool
	p.Servers = []string{mc.Addr + ":1", kept.addr + ":1"}
	if err := srv.Reload(p); err != nil {
		t.Fatal(err)
	}
	// Ten probes of the kept server take ten server_retry_timeouts: a probe loop of the removed server that
	// still ran would connect about as often. At most one probe was under way at the reload.
	before := removed.accepts.Load()
	keptBefore := kept.accepts.Load()
	waitFor(t, "ten more probes of the kept server", func() bool { return kept.accepts.Load() >= keptBefore+10 })
	if n := removed.accepts.Load() - before; n > 1 {
		t.Fatalf("the removed server was connected to %d times after the reload, want at most 1 (a probe under way)", n)
	}
	// Now a probe would succeed; none may come, and the removed server must not be logged as back.
	removed.answer.Store(true)
	keptBefore = kept.accepts.Load()
	waitFor(t, "ten more probes of the kept server", func() bool { return kept.accepts.Load() >= keptBefore+10 })
	if n := removed.accepts.Load() - before; n > 1 {
		t.Fatalf("the removed server was connected to %d times after the reload, want at most 1 (a probe under way)", n)
	}
	if strings.Contains(logs.String(), `msg="pool server back" server=`+removed.addr) {
		t.Fatalf("the removed server was brought back by a probe:\n%s", logs.String())
	}
	// The pool still serves the remaining memcached's keys.
	k := poolKeyOn(t, poolRing(t, p), 0, "live")
	if set, get := poolTry(t, cfg.Listen, k, "v"); set != "STORED" || get != "v" {
		t.Fatalf("set and get of %q after the reload: %q %q", k, set, get)
	}
}
