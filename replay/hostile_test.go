package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// hostile is a TCP server on loopback that answers every connection with handle, as no memcached would.
type hostile struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	quit  chan struct{} // closed when the test ends
}

// startHostile starts a hostile server; the test's cleanup stops it and its connections. A handler that waits
// without reading waits for quit.
func startHostile(t *testing.T, handle func(c *net.TCPConn, quit <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{ln: ln, quit: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer c.Close()
				// No handler may outlive the test by much, whatever the client does.
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c.(*net.TCPConn), h.quit)
			}()
		}
	}()
	t.Cleanup(func() {
		close(h.quit)
		ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return ln.Addr().String()
}

// readSome waits for the client's first bytes and then discards what it sends, in the background.
func readSome(c net.Conn) bool {
	buf := make([]byte, 64<<10)
	if _, err := c.Read(buf); err != nil {
		return false
	}
	go func() { _, _ = io.Copy(io.Discard, c) }()
	return true
}

// stream writes head, then filler bytes until limit bytes in all or the client goes away.
func stream(c net.Conn, head []byte, filler byte, limit int) {
	if _, err := c.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{filler}, 64<<10)
	for n := len(head); n < limit; n += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// binHeader is a binary response header with the given key length and body length.
func binHeader(keyLen uint16, bodyLen uint32) []byte {
	h := make([]byte, 24)
	h[0] = 0x81
	binary.BigEndian.PutUint16(h[2:4], keyLen)
	binary.BigEndian.PutUint32(h[8:12], bodyLen)
	return h
}

// runBounded runs a replay that must end by itself before ctx's deadline. A run that cancelling ctx does not end
// either is left behind: the test fails at once instead of hanging.
func runBounded(t *testing.T, ctx context.Context, cfg configs.Replay, opts Options) *Report {
	t.Helper()
	type result struct {
		r   *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Run(ctx, cfg, opts)
		done <- result{r, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		select {
		case res = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the run did not end, even cancelled")
		}
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run did not end by itself")
	}
	return res.r
}

// hostileEngines are the ways a run reads responses: event loops, goroutines inline (closed loop), and a
// receiver goroutine (open loop).
var hostileEngines = []struct {
	name   string
	engine string
	rate   float64
}{
	{"eventloop", configs.EngineEventLoop, 0},
	{"goroutine", configs.EngineGoroutine, 0},
	{"open", configs.EngineAuto, 2000},
}

// TestRun_HostileServer replays against servers that send garbage, close or reset in the middle of a response,
// stream a line or a value without end, or claim a value larger than any replay sends. Every run ends by itself
// within its bound and counts the failures as the kind the server caused; a server that sends or claims more
// than a response may hold (maxResponse) costs no buffer of that size.
func TestRun_HostileServer(t *testing.T) {
	const endless = 48 << 20 // what an "endless" server sends before it gives up
	cases := []struct {
		name   string
		handle func(c *net.TCPConn, _ <-chan struct{})
		want   string // the error kind the server causes
		small  bool   // the server sends or claims more than a response may hold: replay buffers none of it
	}{
		{"bad VALUE line", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				_, _ = c.Write([]byte("VALUE k\r\n"))
				time.Sleep(time.Second)
			}
		}, "protocol", false},
		{"bad binary header", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				_, _ = c.Write(binHeader(10, 0))
				time.Sleep(time.Second)
			}
		}, "protocol", false},
		{"line without end", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				stream(c, nil, 'A', endless)
			}
		}, "protocol", true},
		{"text value too large", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				stream(c, []byte("VALUE k 0 2000000000\r\n"), 0, endless)
			}
		}, "protocol", true},
		{"binary value too large", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				stream(c, binHeader(0, 1<<30), 0, endless)
			}
		}, "protocol", true},
		{"close mid-value", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				stream(c, binHeader(0, 8<<20), 0, 4<<20)
			}
		}, "conn_lost", false},
		{"drip without end", func(c *net.TCPConn, quit <-chan struct{}) {
			if !readSome(c) {
				return
			}
			// One byte of a value that never completes, well within every timeout.
			_, _ = c.Write([]byte("VALUE k 0 1000000\r\n"))
			for {
				select {
				case <-quit:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}, "timeout", false},
		{"close mid-response", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				_, _ = c.Write([]byte("VALUE k 0 100\r\nabc"))
			}
		}, "conn_lost", false},
		{"reset mid-response", func(c *net.TCPConn, _ <-chan struct{}) {
			if readSome(c) {
				_, _ = c.Write([]byte("VALUE k 0 100\r\nabc"))
				_ = c.SetLinger(0)
			}
		}, "conn_lost", false},
		{"reset at once", func(c *net.TCPConn, _ <-chan struct{}) {
			_ = c.SetLinger(0)
		}, "", false},
	}
	for _, tc := range cases {
		for _, eng := range hostileEngines {
			t.Run(tc.name+"/"+eng.name, func(t *testing.T) {
				addr := startHostile(t, tc.handle)
				cfg := syntheticConfig(addr)
				cfg.Ops, cfg.KeysScale, cfg.Connections = 300, 0.01, 2
				cfg.Engine, cfg.Rate = eng.engine, eng.rate
				cfg.Timeout = configs.Duration(500 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				r := runBounded(t, ctx, cfg, presetOptions(t, "etc", 1, 0.01))
				runtime.ReadMemStats(&after)
				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("%d requests, %d errors %v, %d MiB allocated", r.Ops, r.Errors, r.ErrorsByKind, alloc>>20)
				if r.Errors != r.Ops {
					t.Fatalf("%d of %d requests failed: every request should", r.Errors, r.Ops)
				}
				if tc.want != "" && r.ErrorsByKind[tc.want] == 0 {
					t.Fatalf("errors %v: want %s", r.ErrorsByKind, tc.want)
				}
				// The server sent or claimed more than a response may hold (maxResponse): the connection
				// fails on the header or at the parser's line limit, before it buffers much.
				if tc.small && alloc > 32<<20 {
					t.Fatalf("%d MiB allocated: a connection buffered what no response may hold (%d MiB)",
						alloc>>20, maxResponse>>20)
				}
			})
		}
	}
}

// TestRun_ServerNeverReads replays noreply sets to a server that accepts and never reads: nothing is ever in
// flight, yet the writes stall; the run must still end, the stalled connection given up after --timeout.
func TestRun_ServerNeverReads(t *testing.T) {
	addr := startHostile(t, func(c *net.TCPConn, quit <-chan struct{}) {
		_ = c.SetReadBuffer(4 << 10)
		<-quit
	})
	path := noreplySets(t, 2000, 32<<10)
	for _, eng := range hostileEngines {
		t.Run(eng.name, func(t *testing.T) {
			cfg := traceConfig(path, addr)
			cfg.Engine, cfg.Rate, cfg.Timeout = eng.engine, eng.rate, configs.Duration(300*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			r := runBounded(t, ctx, cfg, traceOptions(path, 1))
			t.Logf("%d requests, %d errors %v", r.Ops, r.Errors, r.ErrorsByKind)
		})
	}
}

// noreplySets writes a profile of n noreply sets of size bytes each on one connection.
func noreplySets(t *testing.T, n int, size uint32) string {
	t.Helper()
	evs := make([]profile.Event, 0, n)
	tm := int64(1_700_000_000) * 1e9
	for k := range uint64(n) {
		tm += 1000
		evs = append(evs, profile.Event{Time: tm, Conn: 1, Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet,
			Noreply: true, Upstream: -1, Status: mcproto.StatusStored, ValueSize: size, TTL: 100,
			KeyHash: workload.Mix64(k), KeySize: 16})
	}
	return writeProfile(t, "noreply.mbp", evs)
}

// TestRun_NoreplyOnly replays noreply sets only, more than one write buffer's worth, against memcached: nothing
// is ever in flight, so no response wakes the connection; every request must still go out and the run end.
func TestRun_NoreplyOnly(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	path := noreplySets(t, 2000, 1000)
	for _, engine := range engines(0) {
		t.Run(engine, func(t *testing.T) {
			cfg := traceConfig(path, mc.Addr)
			cfg.Engine = engine
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := runBounded(t, ctx, cfg, traceOptions(path, 1))
			t.Logf("%d requests, %d errors %v, statuses %v", r.Ops, r.Errors, r.ErrorsByKind, r.Statuses)
			if r.Ops != 2000 || r.Errors != 0 {
				t.Fatalf("%d requests, %d errors: want 2000 noreply sets, none failed", r.Ops, r.Errors)
			}
		})
	}
}

// killer relays clients to memcached and kills each relayed connection after a random number of request bytes,
// by a reset (unread data and all) or a close. It parses every client's byte stream as requests and checks
// that each keyed request carries a key of the recorded connection that the stream's first key belongs to:
// bytes written on another connection's descriptor (a closed one whose number was reused by a redial) show as
// a foreign key, or as a torn request that does not parse.
type killer struct {
	ln       net.Listener
	upstream string
	owner    map[string]int // key → the recorded connection that sends it
	wg       sync.WaitGroup

	mu                    sync.Mutex
	rng                   uint64
	kills, foreign, torn  int
	firstForeign, badTorn string
}

func (k *killer) budget() (int, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rng = workload.Mix64(k.rng + 1)
	return int(k.rng % (48 << 10)), k.rng&(1<<40) != 0
}

func (k *killer) serve() {
	for {
		c, err := k.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", k.upstream)
		if err != nil {
			c.Close()
			continue
		}
		k.wg.Add(2)
		go func() {
			defer k.wg.Done()
			_, _ = io.Copy(c, u)
			c.Close()
		}()
		go func() {
			defer k.wg.Done()
			defer u.Close()
			defer c.Close()
			k.relay(c.(*net.TCPConn), u)
		}()
	}
}

// relay forwards c's requests to u, checking them, until the kill budget is spent.
func (k *killer) relay(c *net.TCPConn, u net.Conn) {
	budget, reset := k.budget()
	var (
		p     mcproto.RequestParser
		r     mcproto.Request
		in    []byte
		owner = -1
		total int
	)
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			in = append(in, buf[:n]...)
			off := 0
			for off < len(in) {
				m, perr := p.Parse(in[off:], &r)
				if perr == mcproto.ErrIncomplete {
					break
				}
				if perr != nil || m == 0 {
					k.note(&k.torn, &k.badTorn, string(in[off:min(len(in), off+64)]))
					return
				}
				for _, key := range r.Keys {
					o, ok := k.owner[string(key)]
					if owner < 0 {
						owner = o
					}
					if !ok || o != owner {
						k.note(&k.foreign, &k.firstForeign, string(key))
						return
					}
				}
				off += m
			}
			in = in[:copy(in, in[off:])]
			if _, err := u.Write(buf[:n]); err != nil {
				return
			}
			if total += n; total >= budget {
				if reset {
					_ = c.SetLinger(0)
				}
				k.mu.Lock()
				k.kills++
				k.mu.Unlock()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (k *killer) note(count *int, first *string, what string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if *count++; *count == 1 {
		*first = what
	}
}

// TestRun_KilledConnections replays many recorded connections, each with its own keys and in text, meta or
// binary, through a relay that kills every connection after a few kilobytes, often by a reset with responses
// unread: each redial is likely to get the descriptor number of a connection just closed. No request may reach
// memcached on another connection's socket (the relay checks every key), no response may be read from another
// connection's socket (the matcher would count a protocol error), and the run ends by itself.
func TestRun_KilledConnections(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	const conns, keys = 24, 40
	owner := map[string]int{}
	var evs []profile.Event
	tm := int64(1_700_000_000) * 1e9
	protos := []mcproto.Protocol{mcproto.ProtoText, mcproto.ProtoBinary, mcproto.ProtoMeta}
	cmds := map[mcproto.Protocol][]mcproto.Command{
		mcproto.ProtoText:   {mcproto.CmdSet, mcproto.CmdGet, mcproto.CmdDelete, mcproto.CmdSet},
		mcproto.ProtoBinary: {mcproto.CmdSet, mcproto.CmdGet, mcproto.CmdDelete, mcproto.CmdSet},
		mcproto.ProtoMeta:   {mcproto.CmdMetaSet, mcproto.CmdMetaGet, mcproto.CmdMetaDelete, mcproto.CmdMetaSet},
	}
	for k := range uint64(keys) {
		for i := range 4 {
			for j := range uint64(conns) {
				p := protos[j%3]
				hash := workload.Mix64(j<<32 | k)
				owner[string(workload.AppendKey(nil, hash, 24))] = int(j)
				tm += 1000
				evs = append(evs, profile.Event{Time: tm, Conn: j + 1, Proto: p, Cmd: cmds[p][i],
					Noreply: p == mcproto.ProtoText && i == 3, Upstream: -1, Status: mcproto.StatusOK,
					ValueSize: uint32(100 + k*400), TTL: 100, KeyHash: hash, KeySize: 24})
			}
		}
	}
	path := writeProfile(t, "conns.mbp", evs)
	const loops = 12
	for _, engine := range engines(0) {
		t.Run(engine, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			k := &killer{ln: ln, upstream: mc.Addr, owner: owner, rng: 1}
			k.wg.Add(1)
			go func() {
				defer k.wg.Done()
				k.serve()
			}()
			defer k.wg.Wait()
			defer ln.Close()
			cfg := traceConfig(path, ln.Addr().String())
			cfg.Engine, cfg.Pipeline, cfg.Loop = engine, 8, "12"
			cfg.Timeout = configs.Duration(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r := runBounded(t, ctx, cfg, traceOptions(path, loops))
			k.mu.Lock()
			defer k.mu.Unlock()
			t.Logf("%d requests, %d errors %v, statuses %v; %d connections killed", r.Ops, r.Errors,
				r.ErrorsByKind, r.Statuses, k.kills)
			if k.foreign > 0 || k.torn > 0 {
				t.Fatalf("%d streams carried another connection's key (first %q), %d a torn request (first %q)",
					k.foreign, k.firstForeign, k.torn, k.badTorn)
			}
			if r.ErrorsByKind["protocol"] > 0 {
				t.Fatalf("errors %v: a connection read responses that were not its own", r.ErrorsByKind)
			}
			if want := uint64(len(evs) * loops); r.Ops != want {
				t.Fatalf("%d requests, want %d", r.Ops, want)
			}
			if k.kills < 50 || r.ErrorsByKind["conn_lost"] == 0 {
				t.Fatalf("%d connections killed, errors %v: the relay did not kill enough", k.kills, r.ErrorsByKind)
			}
		})
	}
}
