// This file holds one replay TCP connection: a sender goroutine that encodes requests into a buffer and writes
// them (pipelined up to the configured depth in closed loop, at their intended times in open loop), and a receiver
// goroutine that frames responses with mcproto, matches them to the requests in flight and records latency. The two
// share a single-producer single-consumer ring of requests in flight; the sender owns the connection's lifecycle
// (dial with timeout, reconnect with backoff), so a down or flapping target costs counted errors, never a hang.
//
// In closed loop the sender reads the responses itself (no receiver goroutine): it only ever waits for them, and
// a goroutine handoff per response costs a third of the throughput at depth 1. In open loop a receiver goroutine
// reads while the sender waits for intended send times.
//
// This goroutine engine serves open loop, and closed loop when asked for (--engine goroutine) or where the
// event-loop engine (evloop.go) is not available. The event loops share conn, its ring of requests in flight,
// its encoder and its matcher, but do their own I/O.

package replay

import (
	"errors"
	"math/bits"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// entry is a request in flight.
type entry struct {
	start  int64 // run clock (ns): intended send time in open loop, send time in closed loop
	opaque uint32
	key    uint32 // binary get and gat: casID of the key, whose unique the answer carries (cas.go)
	keys   uint16 // keys of a text multi-key get; 1 for every other request
	cmd    mcproto.Command
	exp    expectation
	quiet  bool
}

// inflight is a single-producer (sender) single-consumer (receiver) ring of entries.
type inflight struct {
	buf        []entry
	mask       uint64
	head, tail atomic.Uint64 // head: next to pop (receiver); tail: next to push (sender)
}

func newInflight(size int) *inflight {
	n := 1
	for n < size {
		n <<= 1
	}
	return &inflight{buf: make([]entry, n), mask: uint64(n - 1)}
}

func (q *inflight) len() int   { return int(q.tail.Load() - q.head.Load()) }
func (q *inflight) full() bool { return q.len() == len(q.buf) }

func (q *inflight) push(e entry) {
	t := q.tail.Load()
	q.buf[t&q.mask] = e
	q.tail.Store(t + 1)
}

// peek returns the oldest entry, or nil.
func (q *inflight) peek() *entry {
	h := q.head.Load()
	if h == q.tail.Load() {
		return nil
	}
	return &q.buf[h&q.mask]
}

func (q *inflight) pop() { q.head.Add(1) }

// op is one request handed to a connection: the event and its intended send time (run clock, ns; -1 in closed
// loop).
type op struct {
	ev       profile.Event
	intended int64
	wire     wire
	seq      uint64 // the request's number among those this node sends
	// more holds the further keys of a text multi-key get, sent in the same request as ev (a slice of the
	// batch's more). group names the multi-key get in the dispatcher (0: none).
	more  []profile.Event
	group uint64
}

// waits reports whether o is sent only once the answers in flight are in: a cas sends the unique of the gets
// before it (cas.go), so, as its client did, it waits for that answer.
func (o *op) waits() bool { return o.ev.Cmd == mcproto.CmdCas }

// batch is a group of ops for one connection; batches keep channel operations off the per-request path.
type batch struct {
	ops  []op
	more []profile.Event // the ops' further keys, the last op's at the end
}

const batchSize = 64

// session is one TCP connection's life; a reconnect starts a new one.
type session struct {
	nc       net.Conn
	dead     atomic.Bool
	done     chan struct{} // closed when the receiver has exited
	answered atomic.Bool   // at least one response came back: the backoff restarts from its minimum
}

// conn is one replay connection to one target, for one client and one protocol family.
type conn struct {
	e    *engine
	addr string
	in   chan *batch
	st   *stats

	q    *inflight
	loud atomic.Int64  // entries in q that expect a response
	wake chan struct{} // receiver → sender: entries were completed

	s        *session
	inline   bool   // closed loop: the sender reads responses itself, no receiver goroutine
	rd       reader // the inline reader (sender only)
	nextDial time.Time
	backoff  time.Duration
	closing  atomic.Bool // the sender has sent everything: the receiver may end once nothing is in flight

	enc    encoder
	wbuf   []byte
	wdl    time.Time // write deadline of the session
	opaque uint32

	lastDone atomic.Int64 // run clock of the latest completion or failure
	lastSend atomic.Int64 // run clock of the latest request handed to the connection, or failed as unavailable
	sends    ols          // open loop: (request number, send time) of every request sent; sender only
	// bytesOut and bytesIn count the bytes written to and read from the connection's sockets.
	bytesOut, bytesIn atomic.Uint64

	ev  evState    // the event-loop engine's state (engine.ev != nil)
	cas casUniques // the cas uniques the target gave this connection

	// Sender-side counts, added to st at each flush so that the sender takes st's lock once per write.
	recHits, recMisses, noreplies, unavailable [mcproto.NumCommands]uint64
	dirty                                      uint64 // commands with counts, bit by bit
	pending                                    int    // requests counted since the last flush
	multiGets, multiKeys                       uint64 // text multi-key gets sent, and their keys
}

// Reconnect backoff bounds.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
	// idlePoll is how often an idle receiver wakes to notice the end of the run.
	idlePoll = 100 * time.Millisecond
	// maxWriteBuffer flushes the write buffer once it holds this much.
	maxWriteBuffer = 64 << 10
	// maxResponse bounds one response frame, and so a connection's input buffer: the largest value replay sends
	// (maxValue) with room for its header. A server that claims a larger value (which replay cannot have stored)
	// fails the connection as a protocol error before the value is read, rather than have replay buffer it.
	maxResponse = maxValue + 128<<10
)

func newConn(e *engine, addr string) *conn {
	depth := e.inflightCap
	c := &conn{
		e:    e,
		addr: addr,
		in:   make(chan *batch, 16),
		st:   newStats(),
		q:    newInflight(depth),
		wake: make(chan struct{}, 1),
		enc:  encoder{values: e.values},
		wbuf: make([]byte, 0, 16<<10),
		// In closed loop the sender only waits for responses, so it reads them itself: no goroutine handoff
		// per response (worth a third more requests per second at depth 1).
		inline: !e.open,
	}
	c.enc.cas = &c.cas
	return c
}

// run is the sender goroutine. It returns when its input is closed and everything in flight is answered or
// failed.
func (c *conn) run() {
	defer c.finish()
	for {
		var b *batch
		select {
		case b = <-c.in:
		default:
			// Inline, nobody reads responses while the sender waits for work: read them all first, so that
			// their latency is not the dispatcher's.
			c.drain()
			b = <-c.in
		}
		if b == nil {
			return
		}
		stopped := c.e.ctx.Err() != nil
		for i := range b.ops {
			if stopped {
				break
			}
			c.send(&b.ops[i])
			if c.e.ctx.Err() != nil || (c.e.stopAt > 0 && c.e.now() >= c.e.stopAt) {
				stopped = true
			}
		}
		c.flush()
		c.flushCounts()
		c.e.recycle(b)
	}
}

// send encodes and queues one request, waiting for its intended time (open loop) or for room in the pipeline
// (closed loop).
func (c *conn) send(o *op) {
	w := o.wire
	if o.intended >= 0 {
		if d := o.intended - c.e.now(); d > 0 {
			c.flush()
			time.Sleep(time.Duration(d))
		}
	}
	if !c.ensure() {
		c.failUnavailable(o)
		if o.intended < 0 {
			time.Sleep(time.Millisecond) // closed loop against a down target: fail fast, but do not spin
		}
		return
	}
	loud := !w.quiet
	for c.q.full() || (loud && o.intended < 0 && c.loud.Load() >= int64(c.e.pipeline)) ||
		(o.waits() && c.loud.Load() > 0) {
		c.flush()
		if c.s.dead.Load() {
			if !c.ensure() {
				c.failUnavailable(o)
				return
			}
			continue
		}
		if c.inline {
			c.step(c.s, &c.rd)
			continue
		}
		// No timer here: a request that is never answered is failed by the receiver's timeout, which wakes us.
		select {
		case <-c.wake:
		case <-c.s.done:
		}
	}
	c.enqueue(o, c.e.now())
	if len(c.wbuf) >= maxWriteBuffer {
		c.flush()
	}
}

// enqueue encodes o into the write buffer and puts it in flight; now is the run clock.
func (c *conn) enqueue(o *op, now int64) {
	ev, w := &o.ev, o.wire
	c.opaque++
	var exp expectation
	c.wbuf, exp = c.enc.encode(c.wbuf, ev, o.more, w, c.opaque)
	key := c.enc.id
	c.enc.id = 0
	c.lastSend.Store(now)
	if c.e.open {
		c.sends.add(float64(o.seq), float64(now)/1e9)
	}
	start := o.intended
	if start < 0 {
		start = now
	}
	if exp == expNone {
		c.countOp(o, &c.noreplies)
		c.lastDone.Store(start)
		return
	}
	if !w.quiet {
		c.loud.Add(1)
	}
	c.q.push(entry{start: start, cmd: w.cmd, exp: exp, quiet: w.quiet, keys: uint16(1 + len(o.more)),
		opaque: c.opaque, key: key})
	if len(o.more) > 0 {
		c.multiGets++
		c.multiKeys += uint64(1 + len(o.more))
	}
	c.countOp(o, nil)
}

// failUnavailable counts o as failed because its target cannot be reached now. It ends at once, so it moves the
// end of the measured window as a completion (closed loop) or a send (open loop) would: a run against a target
// that is down lasts as long as it ran, not 0 s.
func (c *conn) failUnavailable(o *op) {
	c.countOp(o, &c.unavailable)
	now := c.e.now()
	c.lastDone.Store(now)
	c.lastSend.Store(now)
	if c.e.open {
		c.sends.add(float64(o.seq), float64(now)/1e9)
	}
}

// conn.dirty has a bit per command.
var _ [64 - mcproto.NumCommands]struct{}

// countOp notes every key of o on the sender side (see count).
func (c *conn) countOp(o *op, to *[mcproto.NumCommands]uint64) {
	c.count(o.wire.cmd, o.ev.Status, to)
	for i := range o.more {
		c.count(o.wire.cmd, o.more[i].Status, to)
	}
}

// count notes a request on the sender side: its recorded status and, when to is not nil, an outcome
// (noreply sent, target unavailable).
func (c *conn) count(cmd mcproto.Command, recorded mcproto.Status, to *[mcproto.NumCommands]uint64) {
	if int(cmd) >= mcproto.NumCommands {
		cmd = mcproto.CmdUnknown
	}
	if cmd.IsRetrieval() {
		switch recorded {
		case mcproto.StatusHit:
			c.recHits[cmd]++
		case mcproto.StatusMiss:
			c.recMisses[cmd]++
		}
	}
	if to != nil {
		to[cmd]++
	}
	c.dirty |= 1 << cmd
	c.pending++
}

// drain reads responses until nothing loud is in flight (inline only).
func (c *conn) drain() {
	if !c.inline || c.s == nil {
		return
	}
	c.flush()
	for c.loud.Load() > 0 && !c.s.dead.Load() && c.step(c.s, &c.rd) {
	}
}

// flushCounts adds the sender-side counts to st.
func (c *conn) flushCounts() {
	if c.dirty == 0 {
		return
	}
	dirty := c.dirty
	c.dirty, c.pending = 0, 0
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	c.st.multiGets += c.multiGets
	c.st.multiKeys += c.multiKeys
	c.multiGets, c.multiKeys = 0, 0
	for ; dirty != 0; dirty &= dirty - 1 {
		i := bits.TrailingZeros64(dirty)
		cmd := mcproto.Command(i)
		if n := c.recHits[i] + c.recMisses[i]; n > 0 {
			cs := c.st.cmd(cmd)
			cs.recHits += c.recHits[i]
			cs.recMis += c.recMisses[i]
			c.recHits[i], c.recMisses[i] = 0, 0
		}
		for ; c.noreplies[i] > 0; c.noreplies[i]-- {
			c.st.done(cmd, mcproto.StatusNoneExpected, -1)
		}
		for ; c.unavailable[i] > 0; c.unavailable[i]-- {
			c.st.fail(cmd, errUnavailable)
		}
	}
}

// flush writes the buffered requests. The write deadline is moved at most every half timeout: a write only
// blocks when the target stopped reading, and then the deadline ends it within 1.5 timeouts.
func (c *conn) flush() {
	if len(c.wbuf) == 0 || c.s == nil {
		c.wbuf = c.wbuf[:0]
		return
	}
	s := c.s
	if !s.dead.Load() {
		if now := time.Now(); now.After(c.wdl.Add(-c.e.timeout / 2)) {
			c.wdl = now.Add(c.e.timeout)
			_ = s.nc.SetWriteDeadline(c.wdl)
		}
		n, err := s.nc.Write(c.wbuf)
		c.bytesOut.Add(uint64(n))
		if err != nil {
			// The receiver fails what is in flight when the closed connection ends its read.
			c.broken(s, errConnLost)
		}
	}
	c.wbuf = c.wbuf[:0]
}

// ensure makes sure a live session exists, dialing when the backoff allows. It reports false when the target
// is unavailable now.
func (c *conn) ensure() bool {
	if c.s != nil && !c.s.dead.Load() {
		return true
	}
	if c.s != nil {
		<-c.s.done
		c.failLeftovers(errConnLost)
		if c.s.answered.Load() {
			c.backoff = 0
		}
		c.s = nil
		c.wbuf = c.wbuf[:0]
	}
	now := time.Now()
	if now.Before(c.nextDial) {
		return false
	}
	nc, err := net.DialTimeout("tcp", c.addr, c.e.connectTimeout)
	if err != nil {
		c.e.dials.failed(c.addr, err)
		c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
		c.nextDial = now.Add(c.backoff)
		return false
	}
	c.e.dials.ok(c.addr)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	// A connection that fails before answering waits before the next dial; one that answered resets the
	// backoff when it ends (above).
	c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
	c.nextDial = now.Add(c.backoff)
	c.s = &session{nc: nc, done: make(chan struct{})}
	c.wdl = time.Time{}
	if c.inline {
		c.rd = reader{buf: c.rd.buf[:0]}
	} else {
		go c.receive(c.s)
	}
	return true
}

// failLeftovers fails entries pushed after the receiver exited. Only the sender may call it, after s.done.
func (c *conn) failLeftovers(kind int) {
	if c.q.len() > 0 {
		c.failQueued(kind)
	}
}

// failQueued fails every entry in flight as kind.
func (c *conn) failQueued(kind int) {
	if c.q.len() > 0 {
		c.lastDone.Store(c.e.now())
	}
	c.st.mu.Lock()
	for e := c.q.peek(); e != nil; e = c.q.peek() {
		for range e.keys {
			c.st.fail(e.cmd, kind)
		}
		if !e.quiet {
			c.loud.Add(-1)
		}
		c.q.pop()
	}
	c.st.mu.Unlock()
}

// finish waits for everything in flight, then closes the connection.
func (c *conn) finish() {
	c.flush()
	c.flushCounts()
	c.closing.Store(true)
	if c.s != nil && c.inline {
		c.drain()
		if s := c.s; !s.dead.Swap(true) {
			c.resolveQuiet()
			s.nc.Close()
			close(s.done)
		}
	}
	if c.s != nil {
		// Interrupt the receiver's read so that it sees closing now rather than at its next deadline.
		_ = c.s.nc.SetReadDeadline(time.Now())
		<-c.s.done
		c.failLeftovers(errConnLost)
		c.s.nc.Close()
	}
}

// broken ends session s after an error of kind: the receiver (or, inline, this call) fails what is in flight.
func (c *conn) broken(s *session, kind int) {
	if s.dead.Swap(true) {
		return
	}
	s.nc.Close()
	if c.inline {
		c.failAll(kind)
		close(s.done)
	}
}

// reader is the receiving side of a session: the response parser, the partial frame, and the timeout clock.
type reader struct {
	p   mcproto.ResponseParser
	r   mcproto.Response
	buf []byte
	m   matcher
	// The timeout counts from the later of the last complete response frame and the moment requests were first
	// seen in flight: a request fails only when its connection completed no response for that long. Bytes alone
	// are not progress, or a server that drips a response that never ends would hold the run forever. The read
	// deadline dl is armed once and moved only when it expires (setting it costs a timer update), so a busy
	// connection does not pay for it on every read. lastRecv (any bytes) times the silence of quiet requests.
	lastRecv, lastFrame, busySince, dl time.Time
}

// receive is the receiver goroutine of session s (open loop).
func (c *conn) receive(s *session) {
	defer close(s.done)
	defer s.nc.Close()
	rd := &reader{}
	for {
		if c.loud.Load() == 0 && c.closing.Load() {
			c.resolveQuiet()
			s.dead.Store(true)
			return
		}
		if !c.step(s, rd) {
			return
		}
	}
}

// step reads once from s (until data, its deadline or an error) and accounts every complete response. It
// reports false when the session ended; what was in flight has then been failed.
func (c *conn) step(s *session, rd *reader) bool {
	end := func(kind int) bool {
		if c.inline {
			c.broken(s, kind)
		} else {
			s.dead.Store(true)
			c.failAll(kind)
		}
		return false
	}
	if c.loud.Load() > 0 {
		if rd.busySince.IsZero() {
			rd.busySince = time.Now()
			if rd.dl.IsZero() || rd.dl.After(rd.busySince.Add(c.e.timeout)) {
				rd.dl = rd.busySince.Add(c.e.timeout)
				_ = s.nc.SetReadDeadline(rd.dl)
			}
		}
	} else {
		rd.busySince = time.Time{}
	}
	if rd.dl.IsZero() {
		wait := idlePoll
		if !rd.busySince.IsZero() {
			from := rd.busySince
			if rd.lastFrame.After(from) {
				from = rd.lastFrame
			}
			wait = time.Until(from.Add(c.e.timeout))
		}
		rd.dl = time.Now().Add(max(wait, time.Millisecond))
		_ = s.nc.SetReadDeadline(rd.dl)
	}
	if len(rd.buf) == cap(rd.buf) {
		if len(rd.buf) >= maxResponse {
			panic("BUG: a partial response fills the whole input buffer")
		}
		nb := make([]byte, len(rd.buf), min(max(2*cap(rd.buf), 16<<10), maxResponse))
		copy(nb, rd.buf)
		rd.buf = nb
	}
	n, err := s.nc.Read(rd.buf[len(rd.buf):cap(rd.buf)])
	rd.buf = rd.buf[:len(rd.buf)+n]
	c.bytesIn.Add(uint64(n))
	if n > 0 {
		rd.lastRecv = time.Now()
		now := int64(rd.lastRecv.Sub(c.e.base))
		off := 0
		c.st.mu.Lock()
		for off < len(rd.buf) {
			k, perr := rd.p.Parse(rd.buf[off:], &rd.r)
			if perr == mcproto.ErrIncomplete {
				need := rd.r.FrameLen
				if need > maxResponse {
					c.st.mu.Unlock()
					return end(errProtocol)
				}
				if need > cap(rd.buf) {
					nb := make([]byte, len(rd.buf), min(need+4096, maxResponse))
					copy(nb, rd.buf)
					rd.buf = nb
				}
				break
			}
			if perr != nil {
				c.st.mu.Unlock()
				return end(errProtocol)
			}
			off += k
			if !rd.m.match(c, &rd.r, now) {
				c.st.mu.Unlock()
				return end(errProtocol)
			}
		}
		c.st.mu.Unlock()
		if off > 0 {
			rd.lastFrame = rd.lastRecv
		}
		rd.buf = rd.buf[:copy(rd.buf, rd.buf[off:])]
		s.answered.Store(true)
		c.lastDone.Store(now)
		if c.loud.Load() == 0 {
			rd.busySince = time.Time{}
		}
		if !c.inline {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	if err != nil {
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)) {
			return end(errConnLost)
		}
		rd.dl = time.Time{}
		if c.loud.Load() == 0 {
			// Only quiet requests in flight and nothing came for a whole poll: their silence was their answer.
			if c.q.len() > 0 && time.Since(rd.lastRecv) >= idlePoll {
				c.resolveQuiet()
				if !c.inline {
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
			}
			return true
		}
		from := rd.busySince
		if rd.lastFrame.After(from) {
			from = rd.lastFrame
		}
		if !rd.busySince.IsZero() && time.Since(from) >= c.e.timeout {
			return end(errTimeout)
		}
	}
	return true
}

// resolveQuiet completes quiet entries that will never get an answer: their silence was the answer.
func (c *conn) resolveQuiet() {
	now := c.e.now()
	c.st.mu.Lock()
	for e := c.q.peek(); e != nil; e = c.q.peek() {
		c.st.done(e.cmd, suppressedStatus(e.cmd), -1)
		c.q.pop()
	}
	c.st.mu.Unlock()
	c.lastDone.Store(now)
}

// failAll fails every entry in flight (receiver only) and wakes the sender.
func (c *conn) failAll(kind int) {
	c.failQueued(kind)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// matcher pairs responses with the entries in flight. It holds the state of a text get between its first VALUE
// and its END.
type matcher struct {
	values uint16 // VALUE frames of the text get in front so far
}

// match accounts one response frame. It reports false when the response cannot belong to any request in flight.
// The caller holds c.st.mu.
func (m *matcher) match(c *conn, r *mcproto.Response, now int64) bool {
	// Quiet requests in front whose answer this is not were answered by silence.
	for e := c.q.peek(); e != nil && e.quiet; e = c.q.peek() {
		if answers(e, r) {
			break
		}
		c.st.done(e.cmd, suppressedStatus(e.cmd), -1)
		c.q.pop()
	}
	e := c.q.peek()
	if e == nil {
		return false
	}
	var st mcproto.Status
	switch e.exp {
	case expGet:
		switch r.Kind {
		case mcproto.RespValue:
			if m.values >= e.keys {
				return false // more values than keys asked for
			}
			m.values++
			if r.HasCas {
				c.cas.put(casID(r.Key), r.Cas)
			}
			return true
		case mcproto.RespEnd:
			// Each key asked for is a hit or a miss (which key a VALUE names does not change the counts); one
			// of them is counted below as st.
			hits, misses := m.values, e.keys-m.values
			if hits > 0 {
				st, hits = mcproto.StatusHit, hits-1
			} else {
				st, misses = mcproto.StatusMiss, misses-1
			}
			for range hits {
				c.st.done(e.cmd, mcproto.StatusHit, now-e.start)
			}
			for range misses {
				c.st.done(e.cmd, mcproto.StatusMiss, now-e.start)
			}
			m.values = 0
		default:
			if !r.IsError() {
				return false
			}
			// The error ends the request: the keys before it that hit are counted, the others get the error.
			st = lineStatus(e.cmd, r.Kind)
			hits := min(m.values, e.keys-1) // the last key takes the error below
			for range hits {
				c.st.done(e.cmd, mcproto.StatusHit, now-e.start)
			}
			for range e.keys - 1 - hits {
				c.st.done(e.cmd, st, now-e.start)
			}
			m.values = 0
		}
	case expMulti:
		switch r.Kind {
		case mcproto.RespStat, mcproto.RespLine, mcproto.RespValue:
			return true
		}
		st = lineStatus(e.cmd, r.Kind)
	case expLine, expMeta:
		if r.Proto == mcproto.ProtoBinary {
			return false
		}
		st = lineStatus(e.cmd, r.Kind)
		if r.HasCas && r.Key != nil && st == mcproto.StatusHit {
			c.cas.put(casID(r.Key), r.Cas)
		}
	case expBinary, expBinMulti:
		if r.Kind != mcproto.RespBinary || r.Opaque != e.opaque {
			return false
		}
		if e.exp == expBinMulti && r.BinStatus == mcproto.BinStatusSuccess && (len(r.Key) > 0 || r.ValueLen > 0) {
			return true
		}
		st = binStatus(e.cmd, r.BinStatus)
		if e.key != 0 && r.HasCas && st == mcproto.StatusHit {
			c.cas.put(e.key, r.Cas)
		}
	default:
		return false
	}
	c.st.done(e.cmd, st, now-e.start)
	if !e.quiet {
		c.loud.Add(-1)
	}
	c.q.pop()
	return true
}

// answers reports whether r is the answer of the quiet request e (rather than of a later request).
func answers(e *entry, r *mcproto.Response) bool {
	switch e.exp {
	case expMeta:
		if r.MetaOpaque != nil {
			v, err := strconv.ParseUint(string(r.MetaOpaque), 36, 32)
			return err == nil && uint32(v) == e.opaque
		}
		return r.IsError()
	case expBinary:
		return r.Kind == mcproto.RespBinary && r.Opaque == e.opaque
	}
	return true
}

// suppressedStatus is what the silence of a quiet request means.
func suppressedStatus(c mcproto.Command) mcproto.Status {
	switch c {
	case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats, mcproto.CmdMetaGet:
		return mcproto.StatusMiss
	case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas,
		mcproto.CmdMetaSet:
		return mcproto.StatusStored
	case mcproto.CmdDelete, mcproto.CmdMetaDelete:
		return mcproto.StatusDeleted
	}
	return mcproto.StatusOK
}

// lineStatus maps a text or meta response to the request's status.
func lineStatus(c mcproto.Command, k mcproto.RespKind) mcproto.Status {
	switch k {
	case mcproto.RespValue, mcproto.RespMetaVA, mcproto.RespMetaME:
		if c.IsRetrieval() || c == mcproto.CmdMetaDebug {
			return mcproto.StatusHit
		}
		return mcproto.StatusOK
	case mcproto.RespEnd, mcproto.RespMetaEN:
		if c.IsRetrieval() || c == mcproto.CmdMetaDebug {
			return mcproto.StatusMiss
		}
		return mcproto.StatusOK
	case mcproto.RespStored:
		return mcproto.StatusStored
	case mcproto.RespNotStored, mcproto.RespMetaNS:
		return mcproto.StatusNotStored
	case mcproto.RespExists, mcproto.RespMetaEX:
		return mcproto.StatusExists
	case mcproto.RespNotFound, mcproto.RespMetaNF:
		return mcproto.StatusNotFound
	case mcproto.RespDeleted:
		return mcproto.StatusDeleted
	case mcproto.RespTouched:
		return mcproto.StatusTouched
	case mcproto.RespMetaHD:
		switch c {
		case mcproto.CmdMetaGet:
			return mcproto.StatusHit
		case mcproto.CmdMetaSet:
			return mcproto.StatusStored
		case mcproto.CmdMetaDelete:
			return mcproto.StatusDeleted
		}
		return mcproto.StatusOK
	case mcproto.RespError:
		return mcproto.StatusError
	case mcproto.RespClientError:
		return mcproto.StatusClientError
	case mcproto.RespServerError:
		return mcproto.StatusServerError
	}
	return mcproto.StatusOK
}

// binStatus maps a binary response status to the request's status.
func binStatus(c mcproto.Command, s uint16) mcproto.Status {
	switch s {
	case mcproto.BinStatusSuccess:
		switch c {
		case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats:
			return mcproto.StatusHit
		case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend,
			mcproto.CmdCas:
			return mcproto.StatusStored
		case mcproto.CmdDelete:
			return mcproto.StatusDeleted
		case mcproto.CmdTouch:
			return mcproto.StatusTouched
		}
		return mcproto.StatusOK
	case mcproto.BinStatusKeyNotFound:
		if c.IsRetrieval() {
			return mcproto.StatusMiss
		}
		return mcproto.StatusNotFound
	case mcproto.BinStatusKeyExists:
		return mcproto.StatusExists
	case mcproto.BinStatusNotStored:
		return mcproto.StatusNotStored
	case mcproto.BinStatusTooLarge, mcproto.BinStatusOutOfMemory:
		return mcproto.StatusServerError
	case mcproto.BinStatusInvalid, mcproto.BinStatusDeltaBadValue, mcproto.BinStatusAuthError:
		return mcproto.StatusClientError
	case mcproto.BinStatusUnknownCommand:
		return mcproto.StatusError
	}
	return mcproto.StatusOK
}
