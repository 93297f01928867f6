// Pool mode, per event loop: the shared upstream connections and the FIFO of forwarded requests on each. Only
// the loop's own goroutine touches these structures.
package proxy

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// poolLoop is one event loop's view of the pool.
type poolLoop struct {
	p       *pool
	el      gnet.EventLoop
	version uint64
	st      *poolState
	servers []*upServer // index = server index in st
	byAddr  map[string]*upServer
	shadows []*upServer
	// shadowByAddr keeps shadow connections across generations.
	shadowByAddr map[string]*upServer
	// oldest is the send time (ns) of the oldest request waiting on any connection of this loop, 0 if none;
	// approximate (updated when requests are sent and answered), read by the timeout ticker.
	oldest atomic.Int64
	free   []*subReq
	// dirty lists connections with bytes in out; flushScheduled means a flush task is queued on the loop.
	// Requests of all clients that arrive in one poll round go upstream in one write per connection, as
	// twemproxy coalesces them, instead of one write per request.
	dirty          []*upConn
	flushScheduled bool
	flushFn        gnet.RunnableFunc // flushDirty, made once
}

// flushDirty writes every connection's queued bytes; it runs as a loop task after the current poll round.
func (pl *poolLoop) flushDirty(context.Context) error {
	pl.flushScheduled = false
	for i, uc := range pl.dirty {
		pl.dirty[i] = nil
		uc.isDirty = false
		if uc.c == nil || uc.dead || len(uc.out) == 0 || !uc.hs.done { // auth.go: handshakeDone writes
			continue
		}
		_, _ = uc.c.Write(uc.out)
		upBytesOut.Add(len(uc.out))
		uc.out = uc.out[:0]
	}
	pl.dirty = pl.dirty[:0]
	return nil
}

// upServer is one server's connections in one loop.
type upServer struct {
	addr    string
	h       *health // nil for shadow servers
	conns   []*upConn
	rr      int
	shadow  bool
	retired bool
	lastErr time.Time // shadow: last dial failure, to redial at most once a second
	version string    // the server's version, as the latest handshake reported it (auth.go)
}

// upConn is one shared upstream connection.
type upConn struct {
	pl   *poolLoop
	srv  *upServer
	c    gnet.Conn // nil while dialing
	out  []byte    // bytes queued while dialing
	fifo []*subReq
	head int
	// binary: carries binary-protocol requests only (memcached fixes the protocol at the first byte)
	binary bool
	// response framing
	respP   mcproto.ResponseParser
	resp    mcproto.Response
	dead    bool
	isDirty bool // listed in pl.dirty
	need    int  // bytes the answer at the head of the inbound buffer needs before it can be framed (0: unknown)

	// hs is the login handshake (auth.go): no client byte is written before hs.done.
	hs upHandshake
}

// subKind is how a forwarded request's answer is consumed.
type subKind uint8

const (
	subSingle subKind = iota // one frame
	subGet                   // VALUE frames until END (or an error)
	subFanout                // one frame per server of a flush_all/verbosity fan-out; merged by the slot
)

// subReq is one request forwarded to one upstream connection on behalf of a client slot.
type subReq struct {
	sl       *slot
	kind     subKind
	suppress suppressFn // drops the answer a quiet/noreply request would not have received
	// restoreOp, when not 0, is the client's original binary opcode + 1, written back into the answer.
	restoreOp uint8
	// split marks a part of a split multi-get; keyHashes and keyIdx map its keys to the client's key positions,
	// and line is the request sent for them. The three are reused with the subReq.
	split     bool
	keyHashes []uint64
	keyIdx    []int
	line      []byte
	sent      int64
}

// suppressFn reports whether memcached would have sent nothing for this answer.
type suppressFn func(r *mcproto.Response) bool

// refresh updates the loop's view to the current pool generation. It runs when a client of the loop sends
// requests and, after a reload, as a task on every loop, so that connections to removed servers close even on a
// loop whose clients are quiet.
func (pl *poolLoop) refresh() *poolState {
	st := pl.p.state.Load()
	if st.version == pl.version {
		return st
	}
	pl.version, pl.st = st.version, st
	live := map[string]bool{}
	pl.servers = pl.servers[:0]
	for i, sv := range st.servers {
		us := pl.byAddr[sv.Addr]
		if us == nil {
			us = &upServer{addr: sv.Addr}
			pl.byAddr[sv.Addr] = us
		}
		us.h = st.health[i]
		us.retired = false
		live[sv.Addr] = true
		pl.servers = append(pl.servers, us)
	}
	pl.retire(pl.byAddr, live)
	clear(live)
	pl.shadows = pl.shadows[:0]
	for _, sv := range st.shadowServers {
		us := pl.shadowByAddr[sv.Addr]
		if us == nil {
			us = &upServer{addr: sv.Addr, shadow: true}
			pl.shadowByAddr[sv.Addr] = us
		}
		us.retired = false
		live[sv.Addr] = true
		pl.shadows = append(pl.shadows, us)
	}
	pl.retire(pl.shadowByAddr, live)
	return st
}

// retire marks the servers of byAddr that are not live as removed by a reload and closes their connections once
// their answers are in (a shadow connection has none to wait for). A removed server leaves byAddr with its last
// connection (see detach); until then updateOldest and checkTimeouts still cover its waiting requests.
func (pl *poolLoop) retire(byAddr map[string]*upServer, live map[string]bool) {
	for addr, us := range byAddr {
		if live[addr] {
			continue
		}
		us.retired = true
		// closeIfIdle removes the connection from us.conns: walk a copy.
		for _, uc := range append([]*upConn(nil), us.conns...) {
			uc.closeIfIdle()
		}
		if len(us.conns) == 0 {
			delete(byAddr, addr)
		}
	}
}

// conn returns a connection to server us for text (meta included) or binary requests, dialing one if the loop
// has fewer than connections_per_server of that protocol. memcached fixes a connection's protocol at its first
// byte, so text and binary requests never share an upstream connection.
func (pl *poolLoop) conn(us *upServer, binary bool) *upConn {
	want := pl.st.cfg.ConnectionsPerServer
	have := 0
	for _, uc := range us.conns {
		if uc.binary == binary {
			have++
		}
	}
	if have < want {
		uc := &upConn{pl: pl, srv: us, binary: binary}
		us.conns = append(us.conns, uc)
		pl.dial(uc)
		return uc
	}
	for range us.conns {
		us.rr = (us.rr + 1) % len(us.conns)
		if uc := us.conns[us.rr]; uc.binary == binary {
			return uc
		}
	}
	panic("BUG: no upstream connection of the wanted protocol after counting one")
}

func (pl *poolLoop) dial(uc *upConn) {
	timeout := time.Duration(pl.p.s.cfg.ConnectTimeout)
	addr := uc.srv.addr
	go func() {
		nc, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			_, err = pl.el.Enroll(gnet.NewContext(context.Background(), uc), nc)
			if err != nil {
				nc.Close()
			}
		}
		if err != nil {
			upConnectErrors.Inc()
			_ = pl.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				uc.failAll("SERVER_ERROR upstream unavailable", true)
				return nil
			}))
		}
	}()
}

// opened runs when the dial completed.
func (uc *upConn) opened(c gnet.Conn) gnet.Action {
	if uc.dead {
		return gnet.Close
	}
	uc.c = c
	uc.startHandshake() // auth.go: the bytes queued in out go when it is done
	if uc.srv.retired {
		uc.closeIfIdle() // a shadow copy that waited for this dial is written: nothing else will come
	}
	return gnet.None
}

// send forwards b (copied) and, for primary connections, queues sr for the answer.
func (uc *upConn) send(b []byte, sr *subReq, now int64) {
	if uc.hs.refusal != "" && uc.refused(sr, now) { // auth.go: a connection that could not log in forwards nothing
		return
	}
	if sr != nil {
		sr.sent = now
		uc.fifo = append(uc.fifo, sr)
		if uc.pl.oldest.Load() == 0 {
			uc.pl.oldest.Store(now)
		}
		if uc.srv.h != nil {
			uc.srv.h.requests.Inc()
		}
	}
	uc.out = append(uc.out, b...)
	if uc.c == nil || uc.isDirty || !uc.hs.done {
		return // written when the handshake is done (auth.go), or by the flush already scheduled
	}
	uc.isDirty = true
	pl := uc.pl
	pl.dirty = append(pl.dirty, uc)
	if !pl.flushScheduled {
		pl.flushScheduled = true
		if err := pl.el.Execute(context.Background(), pl.flushFn); err != nil {
			_ = pl.flushDirty(context.Background()) // the loop is stopping: write now
		}
	}
}

func (uc *upConn) pending() int { return len(uc.fifo) - uc.head }

// unsent returns the bytes queued for the server and not yet written to its socket.
func (uc *upConn) unsent() int {
	n := len(uc.out)
	if uc.c != nil {
		n += uc.c.OutboundBuffered()
	}
	return n
}

func (uc *upConn) pop() *subReq {
	sr := uc.fifo[uc.head]
	uc.fifo[uc.head] = nil
	uc.head++
	if uc.head == len(uc.fifo) {
		uc.fifo, uc.head = uc.fifo[:0], 0
	}
	return sr
}

// fromUpstream consumes answers in FIFO order and hands each to its client slot.
func (uc *upConn) fromUpstream() gnet.Action {
	if !uc.hs.done {
		return uc.handshakeRead() // auth.go
	}
	c := uc.c
	if uc.need > 0 && c.InboundBuffered() < uc.need {
		// A large answer is still arriving: gnet's Peek would copy all of it again on every read.
		return gnet.None
	}
	uc.need = 0
	buf, _ := c.Peek(-1)
	if uc.srv.shadow {
		upBytesIn.Add(len(buf))
		_, _ = c.Discard(len(buf))
		return gnet.None
	}
	now := time.Now().UnixNano()
	pos := 0
	var touched [8]*pclient
	nt := 0
	for pos < len(buf) {
		if uc.pending() == 0 {
			orphans.Inc()
			pos = len(buf) // answers nobody asked for: drop them
			break
		}
		n, err := uc.respP.Parse(buf[pos:], &uc.resp)
		if err == mcproto.ErrIncomplete {
			uc.need = uc.resp.FrameLen // known once the header is in; 0 otherwise
			break
		}
		if err != nil {
			upBadResponses.Inc()
			uc.failAll("SERVER_ERROR bad response from upstream", true)
			return gnet.Close
		}
		frame := buf[pos : pos+n]
		pos += n
		sr := uc.fifo[uc.head]
		if sr.consume(&uc.resp, frame) {
			uc.pop()
			cl := sr.sl.cl
			sr.sl.subDone(now)
			uc.pl.release(sr)
			if nt < len(touched) {
				dup := false
				for _, t := range touched[:nt] {
					dup = dup || t == cl
				}
				if !dup {
					touched[nt] = cl
					nt++
				}
			} else {
				cl.flush(now)
			}
		}
	}
	if pos > 0 {
		upBytesIn.Add(pos)
		// gnet's Discard(0) empties the whole inbound buffer: a partial answer must stay for the next read.
		_, _ = c.Discard(pos)
		if uc.srv.h != nil {
			uc.srv.h.ok()
		}
	}
	for _, cl := range touched[:nt] {
		cl.flush(now)
	}
	uc.updateOldest()
	if uc.srv.retired {
		uc.closeIfIdle()
	}
	return gnet.None
}

// consume handles one answer frame and reports whether the request is complete.
func (sr *subReq) consume(r *mcproto.Response, frame []byte) bool {
	sl := sr.sl
	if sl.cl.retired {
		// Nobody will read this answer: keep none of it, only find where the request's answer ends.
		return sr.kind != subGet || r.Kind != mcproto.RespValue
	}
	switch sr.kind {
	case subGet:
		if r.Kind == mcproto.RespValue {
			if !sr.split {
				sl.buf = append(sl.buf, frame...)
				return false
			}
			h := mcproto.FNVHasher{}.HashKey(r.Key)
			for i, kh := range sr.keyHashes {
				// A key asked twice ("get a b a") is answered twice, in order: fill the first position still
				// empty.
				if kh == h && len(sl.vals[sr.keyIdx[i]]) == 0 {
					sl.vals[sr.keyIdx[i]] = append(sl.vals[sr.keyIdx[i]][:0], frame...)
					break
				}
			}
			return false
		}
		if r.Kind == mcproto.RespEnd {
			if !sr.split {
				sl.buf = append(sl.buf, frame...)
			}
			return true
		}
		// An error (or anything else) ends the get; the slot reports it for the whole request.
		sl.setErr(frame)
		return true
	case subFanout:
		if r.Kind != mcproto.RespOK {
			sl.setErr(frame)
		}
		return true
	}
	if sr.suppress != nil && sr.suppress(r) {
		return true
	}
	start := len(sl.buf)
	sl.buf = append(sl.buf, frame...)
	if sr.restoreOp != 0 && r.Proto == mcproto.ProtoBinary {
		sl.buf[start+1] = sr.restoreOp - 1
	}
	return true
}

// failAll answers every waiting request with text (binary: status 0x0086), closes the connection and, if
// health is set, counts a server failure.
func (uc *upConn) failAll(text string, countFailure bool) {
	if uc.dead {
		return
	}
	uc.dead = true
	now := time.Now().UnixNano()
	var touched []*pclient
	for uc.pending() > 0 {
		sr := uc.pop()
		sr.sl.fail(text)
		sr.sl.subDone(now)
		touched = append(touched, sr.sl.cl)
		uc.pl.release(sr)
	}
	uc.detach()
	if uc.c != nil {
		_ = uc.c.Close()
	}
	if countFailure && uc.srv.h != nil {
		uc.pl.p.fail(uc.srv.h)
	}
	if uc.srv.shadow {
		uc.srv.lastErr = time.Now()
	}
	for _, cl := range touched {
		cl.flush(now)
	}
	uc.updateOldest()
}

// detach takes a dead connection out of its server's list; a server removed by a reload leaves the loop with its
// last connection.
func (uc *upConn) detach() {
	us := uc.srv
	if i := slices.Index(us.conns, uc); i >= 0 {
		us.conns = slices.Delete(us.conns, i, i+1)
	}
	if !us.retired || len(us.conns) > 0 {
		return
	}
	byAddr := uc.pl.byAddr
	if us.shadow {
		byAddr = uc.pl.shadowByAddr
	}
	if byAddr[us.addr] == us {
		delete(byAddr, us.addr)
	}
}

// closed runs when the upstream connection closed under us.
func (uc *upConn) closed() {
	if uc.dead {
		return
	}
	stopping := uc.pl.p.s.stopped.Load()
	if !stopping {
		upClosedErrors.Inc()
	}
	uc.failAll("SERVER_ERROR upstream connection closed", !stopping && (uc.pending() > 0 || !uc.srv.retired))
}

// closeIfIdle closes a connection of a server removed by a reload once nothing is in flight on it: no answer
// awaited and no bytes waiting for the dial to complete (opened calls it again then). Bytes already queued go out
// first; gnet writes what it still holds before it closes.
func (uc *upConn) closeIfIdle() {
	// Queued bytes never go out before the handshake (auth.go): handshakeDone calls again.
	if uc.dead || uc.pending() > 0 || ((uc.c == nil || !uc.hs.done) && len(uc.out) > 0) {
		return
	}
	uc.dead = true
	uc.detach()
	if uc.c == nil {
		return // still dialing: opened closes it
	}
	if len(uc.out) > 0 {
		_, _ = uc.c.Write(uc.out)
		upBytesOut.Add(len(uc.out))
		uc.out = uc.out[:0]
	}
	_ = uc.c.Close()
}

// updateOldest recomputes the loop's oldest waiting request time (cheap: only heads matter).
func (uc *upConn) updateOldest() { uc.pl.updateOldest() }

// updateOldest looks at every server the loop still has connections to, including servers a reload removed
// whose answers are still awaited (byAddr holds those until their connections close), so the pool timeout
// covers their requests too.
func (pl *poolLoop) updateOldest() {
	var oldest int64
	for _, us := range pl.byAddr {
		for _, c := range us.conns {
			if c.pending() > 0 {
				if t := c.fifo[c.head].sent; oldest == 0 || t < oldest {
					oldest = t
				}
			}
		}
	}
	pl.oldest.Store(oldest)
}

// checkTimeouts fails the connections whose oldest request waited longer than the pool timeout.
func (pl *poolLoop) checkTimeouts(context.Context) error {
	st := pl.p.state.Load()
	if st.cfg.Timeout <= 0 {
		return nil
	}
	cutoff := time.Now().UnixNano() - int64(st.cfg.Timeout)
	for _, us := range pl.byAddr {
		for _, uc := range append([]*upConn(nil), us.conns...) {
			if uc.pending() > 0 && uc.fifo[uc.head].sent < cutoff {
				poolTimeouts.Inc()
				uc.failAll("SERVER_ERROR upstream timeout", true)
			}
		}
	}
	pl.updateOldest()
	return nil
}

func (pl *poolLoop) newSub(sl *slot, kind subKind) *subReq {
	var sr *subReq
	if n := len(pl.free); n > 0 {
		sr = pl.free[n-1]
		pl.free = pl.free[:n-1]
	} else {
		sr = &subReq{}
	}
	*sr = subReq{sl: sl, kind: kind, keyHashes: sr.keyHashes[:0], keyIdx: sr.keyIdx[:0], line: sr.line[:0]}
	sl.waiting++
	return sr
}

func (pl *poolLoop) release(sr *subReq) {
	sr.sl = nil
	sr.suppress = nil
	if len(pl.free) < 1024 && cap(sr.line) <= 64<<10 {
		pl.free = append(pl.free, sr)
	}
}
