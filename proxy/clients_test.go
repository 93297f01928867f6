// Real clients through a recording proxy: memcslap (libmemcached), pymemcache and gomemcache each run a bounded
// workload without errors, and the profile then holds exactly one event per operation they completed (one per
// key for multi-gets).
package proxy_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/proxy"
)

// clientRig is a fresh memcached behind a recording proxy.
type clientRig struct {
	mc  *mctest.Server
	cfg struct{ Listen string }
	srv *proxy.Server
	rec *recording
}

func newClientRig(t *testing.T) *clientRig {
	t.Helper()
	r := &clientRig{mc: mctest.StartMemcached(t), rec: newRecording(t)}
	cfg := testConfig(t, r.mc.Addr)
	r.cfg.Listen = cfg.Listen
	r.srv = startProxy(t, cfg, r.rec.options())
	return r
}

// events shuts the proxy down and returns the recorded events.
func (r *clientRig) events(t *testing.T) []profile.Event {
	t.Helper()
	shutdown(t, r.srv)
	return r.rec.finish(t)
}

// countByCmd summarises events for failure messages.
func countByCmd(evs []profile.Event) string {
	m := map[string]int{}
	for _, ev := range evs {
		m[ev.Cmd.String()+"/"+ev.Status.String()]++
	}
	return fmt.Sprint(m)
}

// opStats are the memcached counters that count one per operation and key: cmd_get counts every key of a
// multi-get, cmd_set every store (set/add/replace/append/prepend/cas), and deletes, arithmetic and touches
// count as hits plus misses.
var opStats = []string{"cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses", "incr_hits",
	"incr_misses", "decr_hits", "decr_misses"}

func opCount(st map[string]uint64) uint64 {
	var n uint64
	for _, k := range opStats {
		n += st[k]
	}
	return n
}

// TestMemcslap runs memcslap's set, get and mget tests (text protocol) through the proxy. Expected events come
// from memcached's own counters on a server nobody else uses: memcslap's preload sets and its gets show up in
// cmd_set and cmd_get (per key for mget), and the printed "N keys" lines are checked against them.
func TestMemcslap(t *testing.T) {
	bin := mctest.Require(t, "memcslap")
	r := newClientRig(t)
	before := memcachedStats(t, r.mc.Addr)
	const threads, perThread = 2, 500
	printed := 0 // keys memcslap reports it loaded or fetched
	for _, test := range []string{"set", "get", "mget"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "--servers="+r.cfg.Listen, "--concurrency="+strconv.Itoa(threads),
			"--execute-number="+strconv.Itoa(perThread), "--test="+test)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("memcslap --test=%s: %v\n%s", test, err, out)
		}
		if strings.Contains(strings.ToLower(string(out)), "error") || strings.Contains(string(out), "fail") {
			t.Fatalf("memcslap --test=%s reported errors:\n%s", test, out)
		}
		for _, m := range regexp.MustCompile(`Time to (?:set|get|mget)\s+(\d+) keys`).FindAllStringSubmatch(string(out), -1) {
			n, _ := strconv.Atoi(m[1])
			printed += n
		}
	}
	after := memcachedStats(t, r.mc.Addr)
	ops := opCount(after) - opCount(before)
	if ops != uint64(printed) {
		t.Errorf("memcached counted %d operations, memcslap printed %d keys", ops, printed)
	}
	// Every memcslap worker thread ends its connection with "quit"; the connection that preloads keys for the
	// get and mget tests just closes.
	checkClientEvents(t, r.events(t), int(ops), threads*3)
}

// checkClientEvents checks that the profile holds exactly the keyed events memcached counted and the quits the
// client sent (memcached counts quits nowhere), and that none of them failed.
func checkClientEvents(t *testing.T, evs []profile.Event, keyed, quits int) {
	t.Helper()
	gotKeyed, gotQuits := 0, 0
	for _, ev := range evs {
		switch {
		case ev.Cmd.HasKey():
			gotKeyed++
			if ev.KeyHash == 0 || ev.KeySize == 0 {
				t.Errorf("keyed event without a key hash: %+v", ev)
			}
		case ev.Cmd == mcproto.CmdQuit:
			gotQuits++
		}
		switch ev.Status {
		case mcproto.StatusLost, mcproto.StatusUnknown, mcproto.StatusError, mcproto.StatusClientError,
			mcproto.StatusServerError:
			t.Errorf("unexpected event status: %+v", ev)
		}
	}
	if gotKeyed != keyed || gotQuits != quits || len(evs) != keyed+quits {
		t.Fatalf("recorded %d events (%d keyed, %d quit), want %d keyed + %d quit: %s",
			len(evs), gotKeyed, gotQuits, keyed, quits, countByCmd(evs))
	}
}

// inlinePyScript runs a bounded workload and prints "ops N": the number of events it expects, one per
// request and one per key of get_many. default_noreply=False makes every store answer, so failures show.
const inlinePyScript = `
import sys
from pymemcache.client.base import Client
host, port = sys.argv[1].rsplit(":", 1)
c = Client((host, int(port)), connect_timeout=5, timeout=5, default_noreply=False)
ops = 0
for i in range(int(sys.argv[2])):
    k, n = "py:%d" % i, "py:n%d" % i
    v = b"value-%d" % i
    assert c.set(k, v); ops += 1
    assert c.get(k) == v; ops += 1
    assert c.get_many([k, "py:missing%d" % i]) == {k: v}; ops += 2
    assert c.set(n, b"10"); ops += 1
    assert c.incr(n, 5) == 15; ops += 1
    got, cas = c.gets(k); ops += 1
    assert got == v
    assert c.cas(k, b"swapped", cas); ops += 1
    assert c.touch(k, 100); ops += 1
    assert c.delete(k); ops += 1
c.close()
print("ops", ops)
`

// TestPymemcache runs pymemcache (with the system python, which has it) through the proxy.
func TestPymemcache(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pymemcache").Run(); err != nil {
		mctest.Missing(t, "/usr/bin/python3 cannot import pymemcache (apt-get install python3-pymemcache)")
	}
	r := newClientRig(t)
	before := memcachedStats(t, r.mc.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", inlinePyScript, r.cfg.Listen, "50").CombinedOutput()
	if err != nil {
		t.Fatalf("pymemcache: %v\n%s", err, out)
	}
	var ops int
	if _, err := fmt.Sscanf(string(out), "ops %d", &ops); err != nil || ops != 50*10 {
		t.Fatalf("pymemcache printed %q, want ops %d", out, 50*10)
	}
	if got := opCount(memcachedStats(t, r.mc.Addr)) - opCount(before); got != uint64(ops) {
		t.Errorf("memcached counted %d operations, pymemcache completed %d", got, ops)
	}
	checkClientEvents(t, r.events(t), ops, 0)
}

// TestGomemcache runs gomemcache in-process through the proxy. gomemcache's Get and GetMulti send gets (one
// event per key), CompareAndSwap sends cas, and nothing sends quit.
func TestGomemcache(t *testing.T) {
	r := newClientRig(t)
	c := memcache.New(r.cfg.Listen)
	c.Timeout = ioTimeout
	ops := 0
	for i := range 50 {
		k, n := fmt.Sprintf("go:%d", i), fmt.Sprintf("go:n%d", i)
		v := []byte(fmt.Sprintf("value-%d", i))
		if err := c.Set(&memcache.Item{Key: k, Value: v, Flags: 3}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		ops++
		it, err := c.Get(k)
		if err != nil || string(it.Value) != string(v) || it.Flags != 3 {
			t.Fatalf("Get: %v %v", it, err)
		}
		ops++
		m, err := c.GetMulti([]string{k, "go:missing" + strconv.Itoa(i)})
		if err != nil || len(m) != 1 {
			t.Fatalf("GetMulti: %v %v", m, err)
		}
		ops += 2
		if err := c.Set(&memcache.Item{Key: n, Value: []byte("10")}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		ops++
		if nv, err := c.Increment(n, 5); err != nil || nv != 15 {
			t.Fatalf("Increment: %d %v", nv, err)
		}
		ops++
		it, err = c.Get(k)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		ops++
		it.Value = []byte("swapped")
		if err := c.CompareAndSwap(it); err != nil {
			t.Fatalf("CompareAndSwap: %v", err)
		}
		ops++
		if err := c.Touch(k, 100); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		ops++
		if err := c.Delete(k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		ops++
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkClientEvents(t, r.events(t), ops, 0)
}
