// This file holds the event-loop engine: closed-loop replay connections served by gnet v2 client event loops
// instead of a goroutine each. A loop waits for all of its connections in one epoll_wait, and for each ready one
// reads the responses, accounts them and writes the next requests from inside OnTraffic: one read and one write
// system call per round trip, with no goroutine wake-up in between. At depth 1 that is most of a load
// generator's cost, and it is how memcaslap (libevent) and memtier_benchmark work.
//
// A connection lives in two phases. Its goroutine (runEv) dials, with the same timeout and backoff as the
// goroutine engine, and while the target is down fails requests as unavailable; once a dial succeeds it enrolls
// the socket in the client and waits. From OnOpen on, the event loop owns the connection: it takes requests from
// the dispatcher's batches without blocking (a dispatcher that finds the loop starved wakes it), and when the
// session ends — lost, timed out, or done — it fails what is in flight and hands the connection back. Timeouts and
// quiet requests answered by silence are checked when a ticker wakes the connections that have requests in
// flight.

package replay

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/membench/membench/internal/gnetlog"
	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// evClient is the gnet client shared by a run's event-loop connections.
type evClient struct {
	gnet.BuiltinEventEngine
	e    *engine
	cli  *gnet.Client
	stop chan struct{}
	done chan struct{}
}

// evState is an event-loop connection's state. The fields below the atomics belong to whichever side holds the
// connection: its goroutine between sessions, its event loop during one; the handback channel orders the two.
type evState struct {
	gc      atomic.Pointer[gcBox] // the live session, for wake-ups from other goroutines
	starved atomic.Bool           // the loop found no batch to take: the dispatcher wakes it after the next
	back    chan int              // loop → goroutine: the session ended (an error kind) or all is done (-1)

	cur   *batch
	idx   int
	eof   bool // the dispatcher closed the input
	ended bool // this session has been handed back
	// inCallback is set while one of this connection's callbacks runs: a close that gnet reports from inside
	// it (a failed write) hands back only when the callback returns, so the goroutine never runs beside it.
	inCallback bool
	pending    int // hand back after the callback: an error kind, or -1

	p         mcproto.ResponseParser
	r         mcproto.Response
	m         matcher
	need      int   // bytes the partial frame at the front of the input needs
	seen      int   // bytes left in the input after the previous callback
	lastRecv  int64 // run clock of the last bytes received
	busySince int64 // run clock at which loud requests came in flight (0: none in flight)
	answered  bool  // the session got a response: the backoff restarts from its minimum
	// endKind says why the loop closed the session (handDone: all is done; errProtocol: in flight already
	// failed; errTimeout: fail in flight as timed out); endSet is false when gnet closed it (the peer did).
	endKind int
	endSet  bool
}

type gcBox struct{ gc gnet.Conn }

const handDone = -1

// evTick is how often the ticker wakes connections with requests in flight, to check timeouts and quiet requests.
const evTick = 20 * time.Millisecond

// startEvClient starts the event loops of a closed-loop run: one per CPU.
func startEvClient(e *engine, log *slog.Logger) (*evClient, error) {
	h := &evClient{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	cli, err := gnet.NewClient(h,
		gnet.WithMulticore(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetlog.Logger{L: log}),
	)
	if err != nil {
		return nil, err
	}
	if err := cli.Start(); err != nil {
		return nil, err
	}
	h.cli = cli
	go h.ticker()
	return h, nil
}

// close stops the ticker and the event loops; every connection has ended by then.
func (h *evClient) close() {
	close(h.stop)
	<-h.done
	_ = h.cli.Stop()
}

// ticker wakes every connection that has requests in flight, so that its loop checks for timeouts and for quiet
// requests answered by silence.
func (h *evClient) ticker() {
	defer close(h.done)
	t := time.NewTicker(evTick)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		for _, c := range h.e.snapshot() {
			if c.q.len() == 0 {
				continue
			}
			if b := c.ev.gc.Load(); b != nil {
				_ = b.gc.Wake(nil)
			}
		}
	}
}

// kick wakes c's loop if it is waiting for a batch. The dispatcher calls it after each batch it hands over and
// after closing the input.
func (c *conn) kick() {
	if c.ev.starved.Load() && c.ev.starved.CompareAndSwap(true, false) {
		if b := c.ev.gc.Load(); b != nil {
			_ = b.gc.Wake(nil)
		}
	}
}

// runEv is the goroutine of an event-loop connection: it dials and hands sessions to the event loop, and fails
// requests as unavailable while the target cannot be reached.
func (c *conn) runEv() {
	defer c.flushCounts()
	for {
		if c.ev.eof {
			return
		}
		if c.dialEv() {
			if kind := <-c.ev.back; kind == handDone {
				return
			}
			continue
		}
		o := c.nextOp(true)
		if o == nil {
			return
		}
		c.count(o.wire.cmd, o.ev.Status, &c.unavailable)
		c.flushCounts()
		time.Sleep(time.Millisecond) // closed loop against a down target: fail fast, but do not spin
	}
}

// dialEv dials when the backoff allows and enrolls the connection in the client. It reports whether a session
// started.
func (c *conn) dialEv() bool {
	now := time.Now()
	if now.Before(c.nextDial) {
		return false
	}
	nc, err := net.DialTimeout("tcp", c.addr, c.e.connectTimeout)
	// A connection that fails before answering waits before the next dial; one that answered resets the backoff
	// when it ends (evClient.OnClose).
	c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
	c.nextDial = now.Add(c.backoff)
	if err != nil {
		return false
	}
	c.ev.ended, c.ev.endSet, c.ev.answered = false, false, false
	c.ev.p, c.ev.m, c.ev.need, c.ev.seen = mcproto.ResponseParser{}, matcher{}, 0, 0
	c.ev.lastRecv, c.ev.busySince = c.e.now(), 0
	c.wbuf = c.wbuf[:0]
	// EnrollContext duplicates the socket and closes nc. From here the loop owns the connection, until it hands
	// it back.
	if _, err := c.e.ev.cli.EnrollContext(nc, c); err != nil {
		return false
	}
	return true
}

// nextOp returns the next request to send, or nil when there is none: the input is closed, or (without block)
// no batch is waiting, in which case the dispatcher will kick the loop. Requests due after the end of the run are
// discarded.
func (c *conn) nextOp(block bool) *op {
	for {
		if b := c.ev.cur; b != nil {
			if c.ev.idx < len(b.ops) && !c.stopped() {
				o := &b.ops[c.ev.idx]
				c.ev.idx++
				return o
			}
			c.e.recycle(b)
			c.ev.cur = nil
		}
		if c.ev.eof {
			return nil
		}
		var (
			b  *batch
			ok bool
		)
		if block {
			b, ok = <-c.in
		} else {
			select {
			case b, ok = <-c.in:
			default:
				c.ev.starved.Store(true)
				select {
				case b, ok = <-c.in:
					c.ev.starved.Store(false)
				default:
					return nil
				}
			}
		}
		if !ok {
			c.ev.eof = true
			return nil
		}
		c.ev.cur, c.ev.idx = b, 0
	}
}

// stopped reports whether the run is over for new requests: cancelled, or past its duration.
func (c *conn) stopped() bool {
	return c.e.ctx.Err() != nil || (c.e.stopAt > 0 && c.e.now() >= c.e.stopAt)
}

func (h *evClient) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*conn)
	c.ev.gc.Store(&gcBox{gc: gc})
	c.ev.inCallback = true
	action := c.serve(gc, false)
	return nil, c.leave(action)
}

func (h *evClient) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	c.ev.inCallback = true
	return c.leave(c.serve(gc, true))
}

func (h *evClient) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok || c.ev.ended {
		return gnet.None
	}
	c.ev.ended = true
	c.ev.gc.Store(nil)
	kind := errConnLost
	if c.ev.endSet {
		kind = c.ev.endKind
	}
	switch kind {
	case errConnLost, errTimeout:
		c.failAll(kind)
	}
	if c.ev.answered {
		c.backoff = 0
	}
	if c.ev.inCallback {
		c.ev.pending = kind
		return gnet.None
	}
	c.ev.back <- kind
	return gnet.None
}

// end asks gnet to close the session, for the reason kind.
func (c *conn) end(kind int) gnet.Action {
	c.ev.endKind, c.ev.endSet = kind, true
	return gnet.Close
}

// leave ends a callback: a session that gnet closed during it is handed back now.
func (c *conn) leave(a gnet.Action) gnet.Action {
	c.ev.inCallback = false
	if c.ev.ended {
		c.ev.back <- c.ev.pending
		return gnet.None
	}
	return a
}

// serve accounts the responses that arrived (when read), checks the timeout and quiet requests, and sends
// requests up to the pipeline depth. It returns gnet.Close when the session should end.
func (c *conn) serve(gc gnet.Conn, read bool) gnet.Action {
	now := c.e.now()
	if in := gc.InboundBuffered(); read && in > 0 {
		if in > c.ev.seen {
			c.ev.lastRecv = now
		}
		off := 0
		if in >= c.ev.need {
			buf, _ := gc.Peek(-1)
			var ok bool
			off, ok = c.consume(buf, now)
			_, _ = gc.Discard(off)
			if !ok {
				c.failAll(errProtocol)
				return c.end(errProtocol)
			}
		}
		c.ev.seen = in - off
	}
	if c.loud.Load() > 0 {
		if now-max(c.ev.busySince, c.ev.lastRecv) >= int64(c.e.timeout) {
			return c.end(errTimeout)
		}
	} else {
		c.ev.busySince = 0
		if c.q.len() > 0 && (c.ev.eof || now-c.ev.lastRecv >= int64(idlePoll)) {
			// Only quiet requests in flight and nothing came for a while: their silence was their answer.
			c.resolveQuiet()
		}
	}
	for !c.q.full() && c.loud.Load() < int64(c.e.pipeline) {
		o := c.nextOp(false)
		if o == nil {
			break
		}
		c.enqueue(o, now)
		if len(c.wbuf) >= maxWriteBuffer {
			break
		}
	}
	if c.ev.busySince == 0 && c.loud.Load() > 0 {
		c.ev.busySince = now
	}
	c.flushCounts()
	if len(c.wbuf) > 0 {
		_, err := gc.Write(c.wbuf)
		c.wbuf = c.wbuf[:0]
		if err != nil {
			return gnet.None // gnet closed the session (OnClose ran)
		}
	}
	if c.ev.eof && c.q.len() == 0 && c.ev.cur == nil {
		return c.end(handDone)
	}
	return gnet.None
}

// consume frames and accounts the complete responses at the front of buf. It returns the bytes consumed, and
// false when a response cannot be framed or belongs to no request in flight.
func (c *conn) consume(buf []byte, now int64) (int, bool) {
	off := 0
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	c.ev.need = 0
	for off < len(buf) {
		k, err := c.ev.p.Parse(buf[off:], &c.ev.r)
		if err == mcproto.ErrIncomplete {
			c.ev.need = c.ev.r.FrameLen
			break
		}
		if err != nil {
			return off, false
		}
		off += k
		if !c.ev.m.match(c, &c.ev.r, now) {
			return off, false
		}
	}
	if off > 0 {
		c.lastDone.Store(now)
		c.ev.answered = true
	}
	return off, true
}
