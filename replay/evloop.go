// This file holds the event-loop engine: closed-loop replay connections served by a few event loops (one per CPU,
// each an OS thread waiting in epoll_wait; epoll_linux.go) instead of a goroutine each. A loop waits for all of
// its connections at once, and for each ready one reads the responses, accounts them and writes the next requests:
// one read and one write system call per round trip, with no goroutine wake-up in between. At depth 1 that is
// most of a load generator's cost, and it is how memcaslap (libevent) and memtier_benchmark work.
//
// A connection lives in two phases. Its goroutine (runEv) dials, with the same timeout and backoff as the
// goroutine engine, and while the target is down fails requests as unavailable; once a dial succeeds it hands the
// socket to its loop and waits. From then on the loop owns the connection: it takes requests from the
// dispatcher's batches without blocking (a dispatcher that finds the connection starved wakes the loop), and
// when the session ends — lost, timed out, or done — it fails what is in flight, closes the socket and hands the
// connection back. Timeouts, stalled writes and quiet requests answered by silence are checked every evTick.

package replay

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
)

// evState is an event-loop connection's state. The fields below the atomics belong to whichever side holds the
// connection: its goroutine between sessions, its loop during one; the hand-over (the loop's join queue) and the
// hand-back (the back channel) order the two.
type evState struct {
	lp      *loop       // the connection's loop, fixed when the connection starts
	turns   *dialTurns  // its target's dial order, until its first dial is over (nil after)
	turn    int         // its place in that order
	starved atomic.Bool // the loop found no batch to take: the dispatcher wakes it after the next
	back    chan int    // loop → goroutine: the session ended (an error kind) or all is done (-1)

	cur *batch
	idx int
	eof bool // the dispatcher closed the input

	fd       int    // the session's socket, non-blocking
	rbuf     []byte // bytes read and not yet consumed: rbuf[:rn]
	rn       int
	wpending bool  // a write was cut short: the rest of wbuf waits for the socket to be writable
	wsince   int64 // run clock of the last write that made progress while wpending
	slot     int   // the connection's index in its loop (-1: not in a session); the loop's own

	p         mcproto.ResponseParser
	r         mcproto.Response
	m         matcher
	need      int   // bytes the partial frame at the front of the input needs
	lastRecv  int64 // run clock of the last bytes received (the silence of quiet requests counts from it)
	lastFrame int64 // run clock of the last complete response frame (the timeout counts from it)
	busySince int64 // run clock at which loud requests came in flight (0: none in flight)
	answered  bool  // the session got a response: the backoff restarts from its minimum
}

const handDone = -1

// evTick is how often a loop looks at its connections with requests in flight, to check timeouts and quiet
// requests.
const evTick = 20 * time.Millisecond

// evFlush is how many requests a loop counts on a connection before it adds the counts to the connection's stats.
const evFlush = 64

// kick wakes c's loop if c is waiting for a batch. The dispatcher calls it after each batch it hands over and
// after closing the input.
func (c *conn) kick() {
	if c.ev.starved.Load() && c.ev.starved.CompareAndSwap(true, false) {
		c.ev.lp.wake(c)
	}
}

// runEv is the goroutine of an event-loop connection: it dials and hands sessions to the event loop, and fails
// requests as unavailable while the target cannot be reached.
func (c *conn) runEv() {
	defer c.flushCounts()
	defer c.passTurn() // a connection that ends without dialing gives its turn up
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
		o := c.nextOp(true, -1)
		if o == nil {
			return
		}
		c.failUnavailable(o)
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
	if c.ev.turns != nil {
		c.ev.turns.wait(c.ev.turn, dialTurnWait)
	}
	nc, err := net.DialTimeout("tcp", c.addr, c.e.connectTimeout)
	c.passTurn() // the server has queued the connection (or refused it): the next one may dial
	// A connection that fails before answering waits before the next dial; one that answered resets the backoff
	// when it ends (loop.end).
	c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
	c.nextDial = now.Add(c.backoff)
	if err != nil {
		c.e.dials.failed(c.addr, err)
		return false
	}
	c.e.dials.ok(c.addr)
	fd, err := detach(nc)
	if err != nil {
		return false
	}
	c.ev.fd, c.ev.rn, c.ev.wpending, c.ev.answered = fd, 0, false, false
	c.ev.p, c.ev.m, c.ev.need = mcproto.ResponseParser{}, matcher{}, 0
	c.ev.lastRecv, c.ev.lastFrame, c.ev.busySince = c.e.now(), c.e.now(), 0
	c.wbuf = c.wbuf[:0]
	// From here the loop owns the connection, until it hands it back.
	c.ev.lp.join(c)
	return true
}

// passTurn ends c's turn in its target's dial order, once.
func (c *conn) passTurn() {
	if c.ev.turns != nil {
		c.ev.turns.pass(c.ev.turn)
		c.ev.turns = nil
	}
}

// nextOp returns the next request to send, or nil when there is none: the input is closed, or (without block)
// no batch is waiting, in which case the dispatcher will kick the loop. Requests due after the end of the run are
// discarded. now is the run clock, or -1 to read it.
func (c *conn) nextOp(block bool, now int64) *op {
	for {
		if b := c.ev.cur; b != nil {
			if c.ev.idx < len(b.ops) && !c.stopped(now) {
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

// stopped reports whether the run is over for new requests: cancelled, or past its duration (now: the run clock,
// or -1 to read it).
func (c *conn) stopped(now int64) bool {
	if c.e.stopAt > 0 {
		if now < 0 {
			now = c.e.now()
		}
		if now >= c.e.stopAt {
			return true
		}
	}
	return c.e.ctx.Err() != nil
}

// serve accounts the responses in the input buffer (when read: new bytes arrived), checks the timeout and quiet
// requests, and encodes requests up to the pipeline depth into wbuf for the loop to write. It returns why the
// session must end (errProtocol, errTimeout) and true, or false to go on.
func (c *conn) serve(read bool) (int, bool) {
	now := c.e.now()
	if read {
		c.ev.lastRecv = now
		if c.ev.rn >= c.ev.need {
			off, ok := c.consume(c.ev.rbuf[:c.ev.rn], now)
			c.ev.rn = copy(c.ev.rbuf, c.ev.rbuf[off:c.ev.rn])
			if !ok {
				c.failAll(errProtocol)
				return errProtocol, true
			}
		}
	}
	// A server that stopped reading stalls the writes even with nothing in flight (noreply requests): the
	// session ends then too, or it would never finish.
	if c.ev.wpending && now-c.ev.wsince >= int64(c.e.timeout) {
		return errTimeout, true
	}
	if c.loud.Load() > 0 {
		// Progress is a complete response, not bytes: a server dripping a response that never ends times out.
		if now-max(c.ev.busySince, c.ev.lastFrame) >= int64(c.e.timeout) {
			return errTimeout, true
		}
	} else {
		c.ev.busySince = 0
		if c.q.len() > 0 && (c.ev.eof || now-c.ev.lastRecv >= int64(idlePoll)) {
			// Only quiet requests in flight and nothing came for a while: their silence was their answer.
			c.resolveQuiet()
		}
	}
	for !c.q.full() && c.loud.Load() < int64(c.e.pipeline) && len(c.wbuf) < maxWriteBuffer {
		o := c.nextOp(false, now)
		if o == nil {
			break
		}
		if o.waits() && c.loud.Load() > 0 {
			c.ev.idx-- // next time: nextOp returned b.ops[idx-1] of the current batch
			break
		}
		c.enqueue(o, now)
	}
	if c.ev.busySince == 0 && c.loud.Load() > 0 {
		c.ev.busySince = now
	}
	// The counts go to st (under its lock) every evFlush requests, at each tick and wake-up (read false), and
	// when the session ends (runEv).
	if !read || c.pending >= evFlush {
		c.flushCounts()
	}
	return 0, false
}

// finished reports whether the session has nothing left to do: the input is closed, nothing is in flight and
// every request has been written.
func (c *conn) finished() bool {
	return c.ev.eof && c.q.len() == 0 && c.ev.cur == nil && len(c.wbuf) == 0
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
			if c.ev.r.FrameLen > maxResponse {
				return off, false
			}
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
		c.ev.lastFrame = now
		c.ev.answered = true
	}
	return off, true
}
