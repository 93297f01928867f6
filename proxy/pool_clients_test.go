// Real clients through a pool of three: gomemcache, pymemcache (through /usr/bin/python3) and libmemcached's
// memcslap and memcaslap, each bounded in operations and time, must finish without a single error, and what
// they wrote must sit on the servers the ring names. Also: pipelined read-your-writes with several upstream
// connections per server, text and binary clients at once.
package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
)

func TestPoolGomemcache(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	rec := newRecording(t)
	srv := poolStart(t, cfg, rec.options())
	r := poolRing(t, cfg.Pool)

	mc := memcache.New(cfg.Listen)
	mc.Timeout = ioTimeout
	mc.MaxIdleConns = 8
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var ops sync.Map // worker → operations completed
	for w := range 4 {
		wg.Go(func() {
			n := 0
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{w}, args...)...)
			}
			keys := poolKeys(fmt.Sprintf("gm%d", w), 120)
			for _, k := range keys {
				if err := mc.Set(&memcache.Item{Key: k, Value: []byte("v:" + k), Flags: 7}); err != nil {
					fail("Set %q: %v", k, err)
					return
				}
				n++
			}
			for i := 0; i < len(keys); i += 30 {
				got, err := mc.GetMulti(keys[i : i+30])
				if err != nil {
					fail("GetMulti: %v", err)
					return
				}
				n += 30
				for _, k := range keys[i : i+30] {
					if it := got[k]; it == nil || string(it.Value) != "v:"+k || it.Flags != 7 {
						fail("GetMulti %q: %+v", k, it)
						return
					}
				}
			}
			for _, k := range keys[:20] {
				it, err := mc.Get(k)
				if err != nil || string(it.Value) != "v:"+k {
					fail("Get %q: %v %+v", k, err, it)
					return
				}
				it.Value = []byte("cas:" + k)
				if err := mc.CompareAndSwap(it); err != nil {
					fail("CompareAndSwap %q: %v", k, err)
					return
				}
				if err := mc.CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
					fail("stale CompareAndSwap %q: %v, want ErrCASConflict", k, err)
					return
				}
				if err := mc.Touch(k, 100); err != nil {
					fail("Touch %q: %v", k, err)
					return
				}
				if err := mc.Delete(k); err != nil {
					fail("Delete %q: %v", k, err)
					return
				}
				if _, err := mc.Get(k); !errors.Is(err, memcache.ErrCacheMiss) {
					fail("Get deleted %q: %v, want ErrCacheMiss", k, err)
					return
				}
				n += 6
			}
			ctr := fmt.Sprintf("gm%d:ctr", w)
			if err := mc.Set(&memcache.Item{Key: ctr, Value: []byte("0")}); err != nil {
				fail("Set counter: %v", err)
				return
			}
			for i := 1; i <= 50; i++ {
				v, err := mc.Increment(ctr, 2)
				if err != nil || v != uint64(2*i) {
					fail("Increment: %d, %v; want %d", v, err, 2*i)
					return
				}
			}
			if _, err := mc.Increment(ctr+":missing", 1); !errors.Is(err, memcache.ErrCacheMiss) {
				fail("Increment missing: %v", err)
				return
			}
			n += 52
			ops.Store(w, n)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mc.Close()
	total := 0
	ops.Range(func(_, v any) bool { total += v.(int); return true })

	// The counters and surviving keys are where the ring says.
	var check []string
	for w := range 4 {
		check = append(check, poolKeys(fmt.Sprintf("gm%d", w), 120)[20:]...)
		check = append(check, fmt.Sprintf("gm%d:ctr", w))
	}
	for k, i := range poolWhere(t, servers, check) {
		if i != r.Pick([]byte(k)) {
			t.Fatalf("key %q on server %d, the ring says %d", k, i, r.Pick([]byte(k)))
		}
	}
	shutdown(t, srv)
	evs := rec.finish(t)
	if len(evs) != total {
		t.Fatalf("recorded %d events, gomemcache completed %d operations", len(evs), total)
	}
}

// pymemcacheScript exercises pymemcache 3.x's base client against one address given as argv[1].
const pymemcacheScript = `
import sys
from pymemcache.client.base import Client

host, port = sys.argv[1].rsplit(":", 1)
c = Client((host, int(port)), connect_timeout=5, timeout=5, default_noreply=False)
ops = 0
keys = ["py:%d:%s" % (i, "x" * (i % 30)) for i in range(300)]
for k in keys:
    assert c.set(k, ("v" + k).encode(), expire=0, flags=0) is True, k
    ops += 1
assert c.set_many({k + ":m": b"m" for k in keys[:50]}) == [], "set_many"
ops += 50
for i in range(0, len(keys), 25):
    got = c.get_many(keys[i:i + 25])
    ops += 25
    for k in keys[i:i + 25]:
        assert got.get(k) == ("v" + k).encode(), (k, got.get(k))
for k in keys[:40]:
    v, cas = c.gets(k)
    assert v == ("v" + k).encode(), k
    assert c.cas(k, b"new", cas) is True, k
    assert c.cas(k, b"stale", cas) is False, k
    assert c.touch(k, 100) is True, k
    assert c.get(k) == b"new", k
    ops += 5
assert c.add(keys[0], b"x") is False
assert c.replace("py:missing", b"x") is False
assert c.append(keys[1], b"+") is True
assert c.prepend(keys[2], b"-") is True
assert c.get(keys[1]) == b"new+"
ops += 5
c.set("py:ctr", b"10")
assert c.incr("py:ctr", 5) == 15
assert c.decr("py:ctr", 20) == 0
assert c.incr("py:missing", 1) is None
ops += 4
for k in keys[:100]:
    assert c.delete(k) is True, k
    ops += 1
assert c.delete("py:missing") is False
assert c.delete_many([k + ":m" for k in keys[:50]]) is True
c.set("py:nr", b"z", noreply=True)
assert c.get("py:nr") == b"z"
ops += 1 + 50 + 2
assert c.get_many(keys[:100]) == {}
ops += 100
c.close()
print("OK", ops)
`

func TestPoolPymemcache(t *testing.T) {
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		mctest.Missing(t, "/usr/bin/python3 not found")
	}
	if out, err := exec.Command(python, "-c", "import pymemcache").CombinedOutput(); err != nil {
		mctest.Missing(t, fmt.Sprintf("pymemcache is not importable by %s: %v %s", python, err, out))
	}
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "md5", poolLines(servers, 1, 1, 2))
	rec := newRecording(t)
	srv := poolStart(t, cfg, rec.options())

	script := filepath.Join(t.TempDir(), "pool_pymemcache.py")
	if err := os.WriteFile(script, []byte(pymemcacheScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, script, cfg.Listen).CombinedOutput()
	if err != nil {
		t.Fatalf("pymemcache through the pool: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^OK (\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pymemcache script did not finish: %s", out)
	}
	ops, _ := strconv.Atoi(string(m[1]))
	shutdown(t, srv)
	evs := rec.finish(t)
	// The noreply set is an event too, and py:missing incr/delete answered NOT_FOUND.
	if len(evs) != ops {
		t.Fatalf("recorded %d events, pymemcache completed %d operations", len(evs), ops)
	}
	r := poolRing(t, cfg.Pool)
	keys := []string{"py:ctr", "py:nr"}
	for i := 100; i < 300; i++ {
		keys = append(keys, fmt.Sprintf("py:%d:%s", i, strings.Repeat("x", i%30)))
	}
	for k, i := range poolWhere(t, servers, keys) {
		if i != r.Pick([]byte(k)) {
			t.Fatalf("key %q on server %d, the ring says %d", k, i, r.Pick([]byte(k)))
		}
	}
}

// TestPoolLibmemcachedTools runs memcslap (text and binary, set/get/mget) and memcaslap (text and binary, with
// verification) against the pool, bounded in operations and seconds.
func TestPoolLibmemcachedTools(t *testing.T) {
	memcslap := mctest.Require(t, "memcslap")
	memcaslap := mctest.Require(t, "memcaslap")
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.Pool.ConnectionsPerServer = 2
	poolStart(t, cfg, proxy.Options{})

	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	for _, args := range [][]string{
		{"--test=set", "--concurrency=4", "--execute-number=2000"},
		{"--test=get", "--concurrency=4", "--execute-number=2000"},
		{"--test=mget", "--concurrency=2", "--execute-number=500"},
		{"--binary", "--test=set", "--concurrency=4", "--execute-number=1000"},
		{"--binary", "--test=get", "--concurrency=4", "--execute-number=1000"},
		{"--binary", "--test=mget", "--concurrency=2", "--execute-number=300"},
	} {
		out := run(memcslap, append([]string{"--servers=" + cfg.Listen}, args...)...)
		if strings.Contains(strings.ToLower(out), "fail") || strings.Contains(out, "error") {
			t.Fatalf("memcslap %v reported a problem:\n%s", args, out)
		}
	}
	// Every server got some of memcslap's keys.
	for i, s := range servers {
		if n := memcachedStat(t, s.Addr, "curr_items"); n == 0 {
			t.Fatalf("server %d holds no item after memcslap", i)
		}
	}
	for _, args := range [][]string{
		{"-T", "2", "-c", "16", "-t", "3s", "-v", "0.2"},
		{"-T", "2", "-c", "16", "-t", "3s", "-v", "0.2", "-d", "10"},
		{"-T", "2", "-c", "8", "-t", "3s", "-v", "0.2", "-B"},
	} {
		out := run(memcaslap, append([]string{"-s", cfg.Listen}, args...)...)
		for _, stat := range []string{"verify_failed", "verify_misses", "get_misses"} {
			m := regexp.MustCompile(`(?m)^` + stat + `: (\d+)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("memcaslap %v printed no %s:\n%s", args, stat, out)
			}
			if m[1] != "0" {
				t.Fatalf("memcaslap %v: %s = %s:\n%s", args, stat, m[1], out)
			}
		}
		if !regexp.MustCompile(`Ops: [1-9]\d*`).MatchString(out) {
			t.Fatalf("memcaslap %v completed no operation:\n%s", args, out)
		}
	}
}

// TestPoolReadYourWrites pipelines "set k; get k" pairs from text and binary clients at once with several
// upstream connections per server: each client's requests to a server must stay in order.
func TestPoolReadYourWrites(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	cfg.Pool.ConnectionsPerServer = 4
	poolStart(t, cfg, proxy.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	conns := make([]net.Conn, 12)
	for i := range conns {
		conns[i] = dial(t, cfg.Listen)
	}
	for i, c := range conns {
		wg.Go(func() {
			if i%2 == 0 {
				errs <- poolRYWText(c, i)
			} else {
				errs <- poolRYWBinary(c, i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func poolRYWText(c net.Conn, id int) error {
	var b strings.Builder
	for round := range 3 {
		for i := range 100 {
			k := fmt.Sprintf("ryw:%d:%d", id, i)
			v := fmt.Sprintf("r%d", round)
			fmt.Fprintf(&b, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k)
		}
	}
	go func() { _, _ = c.Write([]byte(b.String())) }()
	want := &strings.Builder{}
	for round := range 3 {
		for i := range 100 {
			k := fmt.Sprintf("ryw:%d:%d", id, i)
			fmt.Fprintf(want, "STORED\r\nVALUE %s 0 2\r\nr%d\r\nEND\r\n", k, round)
		}
	}
	got := make([]byte, want.Len())
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := ioReadFull(c, got); err != nil {
		return fmt.Errorf("text client %d: %v (got %q)", id, err, got)
	}
	if string(got) != want.String() {
		return fmt.Errorf("text client %d: answers out of order:\n%.300q", id, firstDiff(want.String(), string(got)))
	}
	return nil
}

func poolRYWBinary(c net.Conn, id int) error {
	var b []byte
	for round := range 3 {
		for i := range 100 {
			k := fmt.Sprintf("rywb:%d:%d", id, i)
			b = append(b, binReq{op: 0x11, key: k, extras: storeExtras(0, 0), value: fmt.Sprintf("r%d", round),
				opaque: uint32(round*1000 + i)}.bytes()...)
			b = append(b, binReq{op: 0x00, key: k, opaque: uint32(round*1000 + i)}.bytes()...)
		}
	}
	go func() { _, _ = c.Write(b) }()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	for round := range 3 {
		for i := range 100 {
			f, err := readBinResp(c)
			if err != nil {
				return fmt.Errorf("binary client %d: %v", id, err)
			}
			if f.op != 0x00 || f.status != 0 || f.opaque != uint32(round*1000+i) || string(f.value) != fmt.Sprintf("r%d", round) {
				return fmt.Errorf("binary client %d round %d key %d: got %v", id, round, i, f)
			}
		}
	}
	return nil
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// firstDiff returns got from a little before its first difference with want.
func firstDiff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return got[max(0, i-60):]
}
