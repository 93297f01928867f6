package replay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// writeProfile writes evs, as given, to a profile named name in a temporary directory and returns its path.
func writeProfile(t *testing.T, name string, evs []profile.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	w, err := profile.NewWriter(path, profile.Header{Mode: "test"}, profile.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTrace writes a profile holding every command replay sends, in each protocol, with noreply and quiet
// variants, on three connections (text, meta, binary), plus commands replay skips.
func writeTrace(t *testing.T) (path string, events int) {
	t.Helper()
	var evs []profile.Event
	tm := int64(1_700_000_000) * 1e9
	add := func(conn uint64, p mcproto.Protocol, c mcproto.Command, key uint64, vs uint32, quiet, noreply bool) {
		tm += 50_000
		ev := profile.Event{Time: tm, Conn: conn, Proto: p, Cmd: c, Quiet: quiet, Noreply: noreply, Upstream: -1,
			Status: mcproto.StatusOK, ValueSize: vs, TTL: 100}
		if c.HasKey() {
			ev.KeyHash, ev.KeySize = workload.Mix64(key), uint16(8+key%40)
		}
		evs = append(evs, ev)
	}
	for k := uint64(1); k <= 40; k++ {
		for _, c := range []mcproto.Command{mcproto.CmdSet, mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat,
			mcproto.CmdGats, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend,
			mcproto.CmdCas, mcproto.CmdTouch, mcproto.CmdIncr, mcproto.CmdDecr, mcproto.CmdDelete} {
			add(1, mcproto.ProtoText, c, k, uint32(k*37), false, false)
			if c.IsStorage() || c == mcproto.CmdDelete || c == mcproto.CmdIncr || c == mcproto.CmdTouch {
				add(1, mcproto.ProtoText, c, k+100, uint32(k*11), false, true)
			}
		}
		for _, c := range []mcproto.Command{mcproto.CmdMetaSet, mcproto.CmdMetaGet, mcproto.CmdMetaArithmetic,
			mcproto.CmdMetaDebug, mcproto.CmdMetaDelete, mcproto.CmdMetaGet} {
			add(2, mcproto.ProtoMeta, c, k+200, uint32(k*13), false, false)
			add(2, mcproto.ProtoMeta, c, k+300, uint32(k*5), true, false)
		}
		add(2, mcproto.ProtoMeta, mcproto.CmdMetaNoop, 0, 0, false, false)
		for _, c := range []mcproto.Command{mcproto.CmdSet, mcproto.CmdGet, mcproto.CmdAppend, mcproto.CmdIncr,
			mcproto.CmdTouch, mcproto.CmdGat, mcproto.CmdDelete, mcproto.CmdGet} {
			add(3, mcproto.ProtoBinary, c, k+400, uint32(k*17), false, false)
			add(3, mcproto.ProtoBinary, c, k+500, uint32(k*3), true, false)
		}
		add(3, mcproto.ProtoBinary, mcproto.CmdNoop, 0, 0, false, false)
	}
	add(1, mcproto.ProtoText, mcproto.CmdVersion, 0, 0, false, false)
	add(1, mcproto.ProtoText, mcproto.CmdStats, 0, 0, false, false)
	add(1, mcproto.ProtoText, mcproto.CmdVerbosity, 0, 0, false, true)
	add(3, mcproto.ProtoBinary, mcproto.CmdVersion, 0, 0, false, false)
	add(3, mcproto.ProtoBinary, mcproto.CmdStats, 0, 0, false, false)
	add(1, mcproto.ProtoText, mcproto.CmdQuit, 0, 0, false, false)     // skipped
	add(1, mcproto.ProtoText, mcproto.CmdShutdown, 0, 0, false, false) // skipped
	return writeProfile(t, "all.mbp", evs), len(evs)
}

func traceConfig(path string, targets ...string) configs.Replay {
	cfg := configs.DefaultReplay()
	cfg.Profile, cfg.Targets, cfg.Speed = path, targets, "max"
	return cfg
}

func traceOptions(path string, loops int) Options {
	return Options{SourceName: path, Open: func() (workload.Source, error) { return workload.OpenTrace(path, loops) }}
}

// TestRun_TraceEveryCommand replays every command in every protocol, and again under each --protocol: no
// request may fail to be framed or matched (a protocol error would show the matcher lost track), and each
// pipelined, quiet or noreply request is accounted once.
func TestRun_TraceEveryCommand(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	path, n := writeTrace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, proto := range []string{"", "text", "meta", "binary"} {
		for _, pipeline := range []int{1, 64} {
			for _, engine := range engines(0) {
				cfg := traceConfig(path, mc.Addr)
				cfg.Protocol, cfg.Pipeline, cfg.Loop, cfg.Engine = proto, pipeline, "2", engine
				r, err := Run(ctx, cfg, traceOptions(path, 2))
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("protocol %q pipeline %d engine %s: %d requests, %d skipped, errors %v", proto, pipeline,
					engine, r.Ops, r.Skipped, r.ErrorsByKind)
				if r.ErrorsByKind["protocol"] != 0 || r.ErrorsByKind["timeout"] != 0 || r.ErrorsByKind["conn_lost"] != 0 {
					t.Fatalf("protocol %q, engine %s: errors %v", proto, engine, r.ErrorsByKind)
				}
				if r.Ops+r.Skipped != uint64(2*n) {
					t.Fatalf("protocol %q, engine %s: %d requests + %d skipped, want %d events", proto, engine, r.Ops, r.Skipped,
						2*n)
				}
				if proto == "binary" && (r.Commands["mg"] != nil || r.Commands["ms"] != nil) {
					t.Fatalf("--protocol binary still sent meta commands: %v", r.Commands)
				}
				if proto == "meta" && r.Commands["get"] != nil {
					t.Fatalf("--protocol meta still sent get: %v", r.Commands)
				}
			}
		}
	}
}

// relay forwards a client to upstream and keeps every byte the client sent.
type relay struct {
	ln   net.Listener
	mu   sync.Mutex
	sent bytes.Buffer
	wg   sync.WaitGroup
}

func newRelay(t *testing.T, upstream string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			r.wg.Add(2)
			go func() {
				defer r.wg.Done()
				io.Copy(c, u)
				c.Close()
			}()
			go func() {
				defer r.wg.Done()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						r.mu.Lock()
						r.sent.Write(buf[:n])
						r.mu.Unlock()
						u.Write(buf[:n])
					}
					if err != nil {
						u.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *relay) bytes() []byte {
	r.ln.Close()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sent.Bytes())
}

// TestRun_SameSeedSameBytes is acceptance test 3 on the wire: a synthetic replay on one connection sends the
// same bytes for the same seed, and other bytes for another seed.
func TestRun_SameSeedSameBytes(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	capture := func(seed uint64) []byte {
		rl := newRelay(t, mc.Addr)
		cfg := syntheticConfig(rl.ln.Addr().String())
		cfg.Ops, cfg.KeysScale, cfg.Connections, cfg.Seed = 5000, 0.02, 1, seed
		if _, err := Run(ctx, cfg, presetOptions(t, "etc", seed, 0.02)); err != nil {
			t.Fatal(err)
		}
		return rl.bytes()
	}
	a, b, c := capture(11), capture(11), capture(12)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("same seed: %d and %d bytes sent, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 11 and 12 sent the same bytes")
	}
}

// TestRun_Namespaces replays gets of keys recorded in four namespaces, after a warmup: every get hits (the warmup
// stored the very keys the replay reads, prefixes included), and on the wire the keys of one recorded namespace
// share one prefix, four prefixes in all.
func TestRun_Namespaces(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	var evs []profile.Event
	tm := int64(1_700_000_000) * 1e9
	for i := uint64(0); i < 400; i++ {
		k := i % 100
		tm += 10_000
		ev := profile.Event{Time: tm, Conn: 1, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet,
			Status: mcproto.StatusHit, KeyHash: workload.Mix64(k + 1), KeySize: uint16(workload.MinNSKeyLen + k%30),
			NSHash: workload.Mix64(k%4 + 1000), ValueSize: 50, Upstream: -1}
		evs = append(evs, ev)
	}
	path := writeProfile(t, "ns.mbp", evs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rl := newRelay(t, mc.Addr)
	cfg := traceConfig(path, rl.ln.Addr().String())
	cfg.Warmup = true
	r, err := Run(ctx, cfg, traceOptions(path, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 400 || r.Errors != 0 || r.Hits != 400 {
		t.Fatalf("%d requests, %d errors, %d hits: want 400 hits (warmup and replay must synthesize the same keys)",
			r.Ops, r.Errors, r.Hits)
	}
	prefixes := map[string]int{}
	for _, line := range strings.Split(string(rl.bytes()), "\r\n") {
		if key, ok := strings.CutPrefix(line, "get "); ok {
			if len(key) < 5 || key[4] != workload.NSDelim {
				t.Fatalf("get key %q has no namespace prefix", key)
			}
			prefixes[key[:4]]++
		}
	}
	if len(prefixes) != 4 {
		t.Fatalf("namespace prefixes on the wire: %v, want 4", prefixes)
	}
	for p, n := range prefixes {
		if n != 100 {
			t.Fatalf("prefix %q on %d gets, want 100: %v", p, n, prefixes)
		}
	}
}

// writeMultiGets writes a profile of 100 sets on connection 1, then 50 four-key gets and 50 four-key gets (the
// first three keys of each were set, the fourth never was) on connection 1, with a key of one of connection 2's
// 100 four-key gets between every two keys, and a four-key get whose second key is missing (events lost). It
// returns the path, the event count and the hits a replay should see.
func writeMultiGets(t *testing.T) (path string, events int, hits uint64) {
	t.Helper()
	var evs []profile.Event
	tm := int64(1_700_000_000) * 1e9
	add := func(ev profile.Event) {
		tm += 10_000
		ev.Time, ev.Proto, ev.Upstream, ev.KeySize = tm, mcproto.ProtoText, -1, uint16(10+ev.KeyHash%30)
		ev.KeyHash = workload.Mix64(ev.KeyHash)
		evs = append(evs, ev)
	}
	for k := uint64(0); k < 100; k++ {
		add(profile.Event{Conn: 1, Cmd: mcproto.CmdSet, Status: mcproto.StatusStored, KeyHash: k, ValueSize: 40})
	}
	for j := uint64(0); j < 100; j++ {
		cmd := mcproto.CmdGet
		if j >= 50 {
			cmd = mcproto.CmdGets
		}
		keys := []uint64{3 * (j % 33), 3*(j%33) + 1, 3*(j%33) + 2, 1000 + j}
		for i, k := range keys {
			st := mcproto.StatusHit
			if k >= 1000 {
				st = mcproto.StatusMiss
			} else {
				hits++
			}
			add(profile.Event{Conn: 1, Cmd: cmd, Status: st, KeyHash: k, ValueSize: 40, KeyIndex: uint16(i),
				KeyCount: 4})
			add(profile.Event{Conn: 2, Cmd: mcproto.CmdGet, Status: mcproto.StatusMiss, KeyHash: 2000 + 4*j + uint64(i),
				KeyIndex: uint16(i), KeyCount: 4})
		}
	}
	for _, i := range []uint16{0, 2, 3} {
		add(profile.Event{Conn: 1, Cmd: mcproto.CmdGet, Status: mcproto.StatusHit, KeyHash: uint64(i), ValueSize: 40,
			KeyIndex: i, KeyCount: 4})
		hits++
	}
	return writeProfile(t, "multi.mbp", evs), len(evs), hits
}

// TestRun_MultiKeyGets replays recorded multi-key gets, two connections' interleaved: on the wire each is one
// request with all its keys, as the client sent it, the one with a lost key as one of one key and one of two; every key is counted once, hits and
// misses as recorded, under both engines and pipeline depths. With two targets each multi-key get is split by
// server, as a client library splits it, and the counts stay the same.
func TestRun_MultiKeyGets(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	path, n, hits := writeMultiGets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	check := func(what string, r *Report) {
		t.Helper()
		if r.Ops != uint64(n) || r.Errors != 0 || r.Hits != hits || r.Skipped != 0 || r.MultiKeyGetKeys > r.Ops {
			t.Fatalf("%s: %d requests, %d errors, %d hits, %d skipped; want %d requests, %d hits", what, r.Ops,
				r.Errors, r.Hits, r.Skipped, n, hits)
		}
	}
	type run struct {
		engine   string
		pipeline int
		speed    string
		rate     float64
	}
	runs := []run{{engine: configs.EngineAuto, speed: "1"}, {engine: configs.EngineAuto, speed: "max", rate: 20000}}
	for _, engine := range engines(0) {
		for _, pipeline := range []int{1, 8} {
			runs = append(runs, run{engine: engine, pipeline: pipeline, speed: "max"})
		}
	}
	for _, rn := range runs {
		engine, pipeline := rn.engine, rn.pipeline
		{
			rl := newRelay(t, mc.Addr)
			cfg := traceConfig(path, rl.ln.Addr().String())
			cfg.Pipeline, cfg.Engine, cfg.Speed, cfg.Rate = max(pipeline, 1), engine, rn.speed, rn.rate
			r, err := Run(ctx, cfg, traceOptions(path, 1))
			if err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("%+v", rn), r)
			keys := map[int]int{} // keys per get request → requests
			for _, line := range strings.Split(string(rl.bytes()), "\r\n") {
				if f := strings.Fields(line); len(f) > 0 && (f[0] == "get" || f[0] == "gets") {
					keys[len(f)-1]++
				}
			}
			if want := map[int]int{4: 200, 1: 1, 2: 1}; !reflect.DeepEqual(keys, want) {
				t.Fatalf("engine %s, pipeline %d: get requests by key count %v, want %v", engine, pipeline, keys, want)
			}
			if r.MultiKeyGets != 201 || r.MultiKeyGetKeys != 802 {
				t.Fatalf("engine %s, pipeline %d: report says %d multi-key gets with %d keys, want 201 with 802",
					engine, pipeline, r.MultiKeyGets, r.MultiKeyGetKeys)
			}
		}
	}
	mc2 := mctest.StartMemcached(t, "-m", "64")
	rl1, rl2 := newRelay(t, mc.Addr), newRelay(t, mc2.Addr)
	cfg := traceConfig(path, rl1.ln.Addr().String(), rl2.ln.Addr().String())
	r, err := Run(ctx, cfg, traceOptions(path, 1))
	if err != nil {
		t.Fatal(err)
	}
	check("two targets", r)
	keys, requests := 0, 0
	for _, b := range [][]byte{rl1.bytes(), rl2.bytes()} {
		for _, line := range strings.Split(string(b), "\r\n") {
			if f := strings.Fields(line); len(f) > 1 && (f[0] == "get" || f[0] == "gets") {
				keys += len(f) - 1
				requests++
			}
		}
	}
	if keys != 803 || requests <= 202 || requests >= 803 {
		t.Fatalf("two targets: %d keys in %d get requests; want 803 keys in more than 202 and fewer requests", keys,
			requests)
	}
}

// TestRun_Cas replays cas as its client used it: each key is set, read with gets, changed with cas (recorded
// stored), read again, overwritten by a set, and changed with cas again (recorded exists, the unique being stale).
// The replayed cas sends the unique of its connection's latest gets of the key, so the statuses come back as
// recorded, in the text protocol and converted to meta and binary.
func TestRun_Cas(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	var evs []profile.Event
	tm := int64(1_700_000_000) * 1e9
	const n = 50
	for k := uint64(1); k <= n; k++ {
		for _, s := range []struct {
			cmd mcproto.Command
			st  mcproto.Status
		}{{mcproto.CmdSet, mcproto.StatusStored}, {mcproto.CmdGets, mcproto.StatusHit},
			{mcproto.CmdCas, mcproto.StatusStored}, {mcproto.CmdGets, mcproto.StatusHit},
			{mcproto.CmdSet, mcproto.StatusStored}, {mcproto.CmdCas, mcproto.StatusExists}} {
			tm += 10_000
			evs = append(evs, profile.Event{Time: tm, Conn: k % 3, Proto: mcproto.ProtoText, Cmd: s.cmd, Status: s.st,
				KeyHash: workload.Mix64(k), KeySize: uint16(10 + k), ValueSize: uint32(20 + k), Upstream: -1})
		}
	}
	path := writeProfile(t, "cas.mbp", evs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, proto := range []string{"", "meta", "binary"} {
		for _, engine := range engines(0) {
			cfg := traceConfig(path, mc.Addr)
			cfg.Protocol, cfg.Engine = proto, engine
			r, err := Run(ctx, cfg, traceOptions(path, 1))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]uint64{"stored": 3 * n, "exists": n, "hit": 2 * n}
			if r.Errors != 0 || !reflect.DeepEqual(r.Statuses, want) {
				t.Fatalf("protocol %q, engine %s: %d errors, statuses %v, want %v", proto, engine, r.Errors,
					r.Statuses, want)
			}
		}
	}
}
