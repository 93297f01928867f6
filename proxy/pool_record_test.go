// Recording in pool mode: every completed operation is one event (one per key of a multi-get), nothing is lost,
// and each keyed event's Upstream is the index of the server its key lives on.
package proxy_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/membench/membench/mcproto"
)

func TestPoolRecording(t *testing.T) {
	servers := poolServers(t, 3)
	cfg := poolTestConfig(t, "md5", poolLines(servers, 2, 1, 1))
	cfg.Pool.ConnectionsPerServer = 2
	rec := newRecording(t)
	srv := poolStart(t, cfg, rec.options())
	r := poolRing(t, cfg.Pool)

	keys := poolKeys("rec", 300)
	want := 0 // events the workload must produce
	var mu sync.Mutex
	add := func(n int) { mu.Lock(); want += n; mu.Unlock() }

	// Binary, on its own connection and goroutine: quiet sets and gets across servers, each batch ended by
	// noop.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	c := dial(t, cfg.Listen)
	wg.Go(func() {
		var b []byte
		for i := range 50 {
			b = append(b, binReq{op: 0x11, key: fmt.Sprintf("bin:%d", i), extras: storeExtras(0, 0), value: "v",
				opaque: uint32(i)}.bytes()...)
		}
		b = append(b, binReq{op: 0x0a, opaque: 1000}.bytes()...)
		for i := range 60 {
			b = append(b, binReq{op: 0x0d, key: fmt.Sprintf("bin:%d", i), opaque: uint32(2000 + i)}.bytes()...)
		}
		b = append(b, binReq{op: 0x0a, opaque: 3000}.bytes()...)
		if _, err := c.Write(b); err != nil {
			errs <- err
			return
		}
		f, err := readBinResp(c)
		if err != nil || f.op != 0x0a || f.opaque != 1000 {
			errs <- fmt.Errorf("after 50 SetQ: got %v, %v; want only the noop", f, err)
			return
		}
		for i := range 50 {
			f, err := readBinResp(c)
			if err != nil || f.op != 0x0d || f.opaque != uint32(2000+i) || string(f.key) != fmt.Sprintf("bin:%d", i) {
				errs <- fmt.Errorf("GetKQ %d: got %v, %v", i, f, err)
				return
			}
		}
		if f, err := readBinResp(c); err != nil || f.op != 0x0a || f.opaque != 3000 {
			errs <- fmt.Errorf("after GetKQ: got %v, %v; want the noop", f, err)
			return
		}
		add(50 + 1 + 60 + 1)
	})
	// Text and meta on the test's goroutine.
	func() {
		tc := dialText(t, cfg.Listen)
		var b strings.Builder
		for i, k := range keys {
			if i%3 == 0 {
				fmt.Fprintf(&b, "set %s 0 0 %d noreply\r\n%s\r\n", k, len(k), k)
			} else {
				fmt.Fprintf(&b, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
			}
		}
		b.WriteString("mn\r\n")
		tc.send(b.String())
		for range 200 {
			tc.expect("STORED")
		}
		tc.expect("MN")
		add(300 + 1)
		// 30 multi-gets of 10 keys each, spanning servers, pipelined.
		b.Reset()
		for g := range 30 {
			b.WriteString("get")
			for j := range 10 {
				b.WriteString(" " + keys[(g*10+j*7)%len(keys)])
			}
			b.WriteString("\r\n")
		}
		tc.send(b.String())
		for range 30 {
			for range 10 {
				if l := tc.line(); !strings.HasPrefix(l, "VALUE ") {
					t.Fatalf("multi-get: got %q, want a VALUE line", l)
				}
				tc.line()
			}
			tc.expect("END")
		}
		add(300)
		// Deletes, arithmetic, touch, misses.
		b.Reset()
		for _, k := range keys[:50] {
			b.WriteString("delete " + k + "\r\n")
		}
		for i := range 20 {
			fmt.Fprintf(&b, "incr ctr:%d 1\r\ntouch %s 100\r\n", i, keys[100+i])
		}
		tc.send(b.String())
		for range 50 {
			tc.expect("DELETED")
		}
		for range 20 {
			tc.expect("NOT_FOUND", "TOUCHED")
		}
		add(50 + 40)
		// Meta quiet batches across servers: 30 hits asked quietly, 30 misses, 30 quiet sets, one mn each.
		b.Reset()
		for _, k := range keys[100:130] {
			b.WriteString("mg " + k + " v q\r\n")
		}
		for _, k := range keys[:30] {
			b.WriteString("mg " + k + " v q\r\n")
		}
		b.WriteString("mn\r\n")
		for i := range 30 {
			fmt.Fprintf(&b, "ms quiet:%d 2 q\r\nqq\r\n", i)
		}
		b.WriteString("mn\r\n")
		tc.send(b.String())
		for range 30 {
			if l := tc.line(); !strings.HasPrefix(l, "VA ") {
				t.Fatalf("quiet mg: got %q, want VA", l)
			}
			tc.line()
		}
		tc.expect("MN", "MN")
		add(60 + 1 + 30 + 1)
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	shutdown(t, srv)
	evs := rec.finish(t)
	if len(evs) != want {
		t.Fatalf("recorded %d events, the clients completed %d operations", len(evs), want)
	}

	// Map hashes back to keys to check each event's Upstream against the ring and against where the key is.
	all := append([]string{}, keys...)
	for i := range 60 {
		all = append(all, fmt.Sprintf("bin:%d", i))
	}
	for i := range 30 {
		all = append(all, fmt.Sprintf("quiet:%d", i))
	}
	for i := range 20 {
		all = append(all, fmt.Sprintf("ctr:%d", i))
	}
	byHash := map[uint64]string{}
	for _, k := range all {
		byHash[rec.anon.HashKey([]byte(k))] = k
	}
	where := poolWhere(t, servers, all)
	perServer := make([]int, len(servers))
	for _, ev := range evs {
		if ev.Status == mcproto.StatusLost || ev.Status == mcproto.StatusUnknown {
			t.Errorf("event %+v: status %v", ev, ev.Status)
		}
		if ev.KeySize == 0 {
			if ev.Upstream != -1 {
				t.Errorf("keyless event %v has Upstream %d, want -1", ev.Cmd, ev.Upstream)
			}
			continue
		}
		k, ok := byHash[ev.KeyHash]
		if !ok {
			t.Fatalf("event %+v: key hash of no key of the workload", ev)
		}
		if int(ev.Upstream) != r.Pick([]byte(k)) {
			t.Fatalf("event %v %q: Upstream %d, the ring says %d", ev.Cmd, k, ev.Upstream, r.Pick([]byte(k)))
		}
		if w := where[k]; w >= 0 && w != int(ev.Upstream) {
			t.Fatalf("event %v %q: Upstream %d, the key is on server %d", ev.Cmd, k, ev.Upstream, w)
		}
		perServer[ev.Upstream]++
	}
	for i, n := range perServer {
		if n == 0 {
			t.Fatalf("no event on server %d: %v", i, perServer)
		}
	}
	t.Logf("%d events, per server %v", len(evs), perServer)
}
