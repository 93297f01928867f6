// A link is one client connection and its upstream connection. Both sides live on one event loop, so the
// link's fields are only touched from that loop (except the atomics read by Shutdown and OnTick).
//
// Bytes are forwarded exactly as received, and memcached answers every request itself. The framers only decide
// where frames end, so that a value whose header has arrived can be passed on as it streams in, requests can be
// paired with responses, and the conversation ends where memcached would end it (a line it cannot frame, quit,
// a half-close). Every write to the client goes through its endpoint (endpoint.go); the upstream connection is
// nil from the moment gnet closed it.
package proxy

import (
	"bytes"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// upside is the upstream connection's gnet context, pointing back at its link.
type upside struct {
	l    *link
	info upstreamInfo // the rules the link's requests are framed by
}

type link struct {
	s      *Server
	id     uint64
	client endpoint
	up     gnet.Conn // nil until the dial completes, and again once gnet closed it (upstreamClosed)

	reqP   mcproto.RequestParser
	respP  mcproto.ResponseParser
	req    mcproto.Request
	resp   mcproto.Response
	pairer mcproto.Pairer

	reqBody  int  // bytes of a streamed request body still to forward
	respBody int  // bytes of a streamed response body still to forward
	rawUp    bool // the upstream became a stream (watch) or sent something unparseable: pass bytes through
	dead     bool // the client sent a request after which memcached closes: ignore the rest
	failed   bool // the upstream dial failed
	retired  bool // both sides are done with: the link is out of the server's books
	// closeAfter closes the client once every answer it is owed has been forwarded, then writes lastWords (the
	// error text of a request memcached would have closed the connection on).
	closeAfter bool
	lastWords  []byte
	// rest holds requests that arrived before the client half-closed its connection while the upstream was
	// still dialing: gnet frees the inbound buffer at the close, so they are kept here and forwarded once the
	// upstream is there.
	rest   []byte
	upShut bool // the client's half-close was passed on to the upstream

	clientValve, upValve valve // read back-pressure (flow.go)
	acctClient, acctUp   int64 // each side's bytes in bufferedBytes

	inflight   atomic.Int64 // responses still expected, for Shutdown
	lastActive atomic.Int64 // unix ns of the last traffic, for the idle timeout
	reqStart   atomic.Int64 // unix ns when the request still arriving began (0: none), for request_timeout
}

func (s *Server) newLink(c gnet.Conn) *link {
	l := &link{s: s, id: s.seq.Add(1), client: endpoint{c: c}}
	l.reqP.MaxLine = s.cfg.MaxLine
	l.pairer.Hasher = s.hasher
	l.pairer.Conn = l.id
	l.pairer.Emit = s.record
	l.lastActive.Store(time.Now().UnixNano())
	return l
}

func (s *Server) upstreamOpened(u *upside, c gnet.Conn) gnet.Action {
	l := u.l
	if l.retired || !l.client.live() {
		return gnet.Close
	}
	u.info.apply(&l.reqP)
	l.up = c
	if l.client.closed {
		// The client half-closed while we dialed: forward what it had sent.
		l.forwardRest()
		return gnet.None
	}
	// Requests may already be waiting in the client's inbound buffer.
	_ = l.client.c.Wake(nil)
	return gnet.None
}

// upstreamFailed runs on the loop when the dial failed: every request the client already sent is answered
// with SERVER_ERROR and the client is closed; the next client dials again.
func (s *Server) upstreamFailed(l *link, err error) {
	if l.retired || !l.client.live() {
		return
	}
	l.failed = true
	s.outage.failed(s.log, s.cfg.Upstream, err)
	l.refuse()
}

// refuse answers every whole request the client sent with SERVER_ERROR upstream unavailable, then closes the
// client. A client that has not sent a whole request yet (a refused dial is faster than most clients' first
// write) stays open until it does, so that it gets the answer rather than a reset.
func (l *link) refuse() {
	buf := l.rest
	if !l.client.closed {
		buf, _ = l.client.c.Peek(-1)
	}
	now := time.Now().UnixNano()
	var out []byte
	asked := false
	for len(buf) > 0 {
		n, perr := l.reqP.Parse(buf, &l.req)
		if n == 0 {
			break
		}
		asked = true
		r := &l.req
		requestsByCmd[r.Cmd].Inc()
		l.pairer.Request(r, now)
		if perr == nil {
			out = l.appendUpstreamError(out, r, "SERVER_ERROR upstream unavailable")
		}
		buf = buf[n:]
	}
	if !asked && !l.client.closed {
		return
	}
	// The answers are recorded as the client gets them: a profile shows the outage (status server_error).
	var rp mcproto.ResponseParser
	for b := out; len(b) > 0; {
		n, perr := rp.Parse(b, &l.resp)
		if n == 0 || perr != nil {
			break
		}
		l.pairer.Response(&l.resp, now, true)
		b = b[n:]
	}
	l.client.write(out)
	l.client.close()
	l.retire()
}

// appendUpstreamError appends the error answer for one request the upstream cannot answer.
func (l *link) appendUpstreamError(out []byte, r *mcproto.Request, text string) []byte {
	if r.Proto == mcproto.ProtoBinary {
		if r.Quiet && r.Cmd == mcproto.CmdGet {
			return out
		}
		return mcproto.AppendBinaryError(out, r.Opcode, r.Opaque, binStatusTemporaryFailure, text)
	}
	if r.Noreply {
		return out
	}
	out = append(out, text...)
	return append(out, '\r', '\n')
}

// binStatusTemporaryFailure is the binary status for "upstream unavailable" (0x0086 in the binary protocol
// specification; memcached itself never sends it).
const binStatusTemporaryFailure = 0x0086

// upstreamClosed runs when memcached closed the connection (quit, shutdown, crash, a request it closes on):
// the client gets every byte memcached sent, then the close, as it would talking to memcached directly.
func (l *link) upstreamClosed(c gnet.Conn) {
	if l.up != c {
		return
	}
	l.up = nil
	if l.pairer.PendingLoud() > 0 && !l.dead && !l.upShut {
		upClosedErrors.Inc() // memcached closed with answers owed: it died, or was stopped
		l.s.up.forget()
	}
	if !l.retired && l.client.live() {
		l.client.close()
	}
	l.retire()
}

// fromClient forwards client bytes upstream frame by frame.
func (l *link) fromClient() gnet.Action {
	c := l.client.c
	now := time.Now().UnixNano()
	l.lastActive.Store(now)
	if l.retired {
		return gnet.Close
	}
	if l.up == nil {
		if l.failed {
			l.refuse()
			return gnet.None
		}
		// Still dialing: leave the bytes buffered; upstreamOpened wakes us.
		if c.InboundBuffered() > l.s.cfg.MaxClientBuffer {
			connsOverflow.Inc()
			return gnet.Close
		}
		return gnet.None
	}
	if l.s.draining.Load() {
		// Shutting down: take no new requests, let the ones in flight finish (Shutdown waits for them).
		return gnet.None
	}
	if l.clientValve.paused {
		if l.balance(); l.clientValve.paused {
			return gnet.None // gnet read anyway (it re-enables reading after writes): keep the bytes for later
		}
	}
	buf, _ := c.Peek(-1)
	if n := l.consume(buf, now); n > 0 {
		// gnet's Discard(0) empties the whole inbound buffer: a partial request must stay for the next read.
		_, _ = c.Discard(n)
	}
	switch {
	case l.retired || l.client.closed:
		return gnet.Close
	case c.InboundBuffered() > l.s.cfg.MaxClientBuffer:
		connsOverflow.Inc()
		return gnet.Close
	case l.up != nil && l.up.OutboundBuffered() > l.s.cfg.MaxClientBuffer:
		// memcached is not reading and pausing the client did not hold it back: bound memory.
		connsOverflow.Inc()
		return gnet.Close
	}
	l.balance()
	return gnet.None
}

// forwardRest forwards what a half-closed client left in l.rest, as far as it can go now. Once everything it
// sent is upstream, its half-close is passed on (shutdown(SHUT_WR)), as if it had talked to memcached directly:
// memcached answers what it read, then closes, and a request cut short by the client's end of stream gets no
// answer from either.
func (l *link) forwardRest() {
	if l.up == nil || l.retired {
		return
	}
	if len(l.rest) > 0 {
		n := l.consume(l.rest, time.Now().UnixNano())
		l.rest = l.rest[n:]
	}
	l.rest = nil // an incomplete request at the end of the stream: memcached would never see it complete either
	if !l.upShut && l.up != nil {
		l.upShut = true
		_ = unix.Shutdown(l.up.Fd(), unix.SHUT_WR)
	}
	l.closeIfDone()
}

// closeIfDone ends a conversation marked closeAfter once the client has every answer it is owed: the last words
// go out, the client is closed, and a half-closed client's link is retired.
func (l *link) closeIfDone() {
	if !l.closeAfter || l.retired || l.pairer.PendingLoud() > 0 || len(l.rest) > 0 {
		return
	}
	l.closeAfter = false
	l.client.write(l.lastWords)
	l.lastWords = nil
	l.client.close()
	if l.client.closed {
		l.retire()
	}
}

// consume forwards the complete (or streaming) requests at the start of buf and returns how many bytes it
// used; an incomplete request header waits for more bytes. Every request goes to memcached, which answers it
// (errors included) in its own words: only what memcached cannot frame at all ends the conversation here.
func (l *link) consume(buf []byte, now int64) int {
	if l.dead {
		return len(buf)
	}
	pos, fwdStart := 0, 0 // buf[fwdStart:pos] is waiting to be forwarded
loop:
	for pos < len(buf) {
		rest := buf[pos:]
		if l.reqBody > 0 {
			k := min(len(rest), l.reqBody)
			pos += k
			l.reqBody -= k
			if l.reqBody == 0 {
				l.pairer.RequestDone(now)
			}
			continue
		}
		n, err := l.reqP.Parse(rest, &l.req)
		r := &l.req
		switch {
		case err == nil:
			requestsByCmd[r.Cmd].Inc()
			l.pairer.Request(r, now)
			pos += n
			if r.Cmd == mcproto.CmdQuit {
				// memcached closes after quit and never reads what follows.
				l.dead = true
				break loop
			}
		case err == mcproto.ErrIncomplete:
			if r.FrameLen == 0 || r.HeaderLen > len(rest) {
				break loop // wait for the rest of the header
			}
			// A large frame: forward what we have, stream the rest.
			requestsByCmd[r.Cmd].Inc()
			l.pairer.Request(r, now)
			pos += len(rest)
			l.reqBody = r.FrameLen - len(rest)
			break loop
		default:
			pe := err.(*mcproto.ProtocolError)
			clientErrors.Inc()
			if n == 0 {
				// Nothing memcached could frame (a line too long, bad binary magic): memcached answers what came
				// before, then says why, if it says anything, and closes.
				l.lastWords = pe.AppendReply(l.lastWords, r)
				l.dead, l.closeAfter = true, true
				break loop
			}
			// memcached answers this one itself: forward it and pair its error response.
			requestsByCmd[r.Cmd].Inc()
			l.pairer.Request(r, now)
			pos += n
			if pe.Close {
				// memcached closes after answering; it never reads what the client sends next.
				l.dead = true
				break loop
			}
		}
	}
	if pos > fwdStart {
		l.toUpstream(buf[fwdStart:pos])
	}
	if l.dead {
		pos = len(buf)
	}
	clientBytesIn.Add(pos)
	arriving(&l.reqStart, pos < len(buf) || l.reqBody > 0, now)
	l.inflight.Store(int64(l.pairer.PendingLoud()))
	l.closeIfDone()
	return pos
}

// toUpstream forwards b. A failed write closes the upstream at once (gnet calls OnClose from inside Write), so
// l.up is checked before every write and never used after it went nil.
func (l *link) toUpstream(b []byte) {
	if l.up == nil || l.retired {
		return
	}
	_, _ = l.up.Write(b)
	upBytesOut.Add(len(b))
}

// fromUpstream forwards upstream bytes to the client, pairing each response frame.
func (l *link) fromUpstream(up gnet.Conn) gnet.Action {
	if up != l.up || l.retired || !l.client.live() {
		// Nobody to answer: never write to a closed client, whose fd number may be another connection's now.
		return gnet.Close
	}
	if l.upValve.paused {
		if l.balance(); l.upValve.paused {
			return gnet.None // the client is not reading: leave memcached's answers where they are
		}
	}
	now := time.Now().UnixNano()
	l.lastActive.Store(now)
	buf, _ := up.Peek(-1)
	upBytesIn.Add(len(buf))
	pos := 0
	for pos < len(buf) && !l.rawUp {
		rest := buf[pos:]
		if l.respBody > 0 {
			k := min(len(rest), l.respBody)
			pos += k
			l.respBody -= k
			if l.respBody == 0 {
				l.pairer.ResponseDone(now)
			}
			continue
		}
		if l.pairer.Streaming() {
			l.rawUp = true
			break
		}
		n, err := l.respP.Parse(rest, &l.resp)
		if err == nil {
			l.pairer.Response(&l.resp, now, true)
			pos += n
			continue
		}
		if err == mcproto.ErrIncomplete {
			if l.resp.FrameLen > 0 && l.resp.HeaderLen <= len(rest) {
				l.pairer.Response(&l.resp, now, false)
				l.respBody = l.resp.FrameLen - len(rest)
				pos += len(rest)
			}
			break
		}
		// Something memcached never sends: forward it faithfully, unpaired. A text stream resynchronises at the
		// next line end, so the answers after it pair again; a binary one cannot, and passes through unpaired.
		upBadResponses.Inc()
		if l.respP.Protocol() == mcproto.ProtoBinary {
			l.s.log.Warn("unparseable binary response from upstream; passing bytes through unpaired",
				"upstream", l.s.cfg.Upstream)
			l.rawUp = true
			break
		}
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // the rest of the bad line has not arrived
		}
		pos += nl + 1
		upSkipped.Add(nl + 1)
	}
	if l.rawUp {
		pos = len(buf)
	}
	if pos > 0 {
		l.client.write(buf[:pos])
		clientBytesOut.Add(pos)
		_, _ = up.Discard(pos)
	}
	if o := l.pairer.Stats.Orphans; o > 0 {
		orphans.Add(int(o))
		l.pairer.Stats.Orphans = 0
	}
	l.inflight.Store(int64(l.pairer.PendingLoud()))
	if l.retired || !l.client.live() {
		return gnet.Close // the write found the client gone
	}
	l.closeIfDone()
	if !l.client.closed && l.client.buffered() > l.s.cfg.MaxClientBuffer {
		// The client does not read its responses: close it rather than buffer without bound.
		connsOverflow.Inc()
		l.client.close()
	}
	if l.retired {
		return gnet.Close
	}
	l.balance()
	return gnet.None
}

// clientClosed runs in the client's OnClose, before gnet closes its fd. A client that half-closed its connection
// with answers still owed (or requests not yet forwarded) keeps the link until they are written; otherwise the
// link is retired at once.
func (l *link) clientClosed(err error) {
	if l.client.closed {
		return
	}
	var unread []byte
	if !l.dead && !l.failed && !l.retired {
		unread, _ = l.client.c.Peek(-1)
	}
	owed := !l.retired && !l.failed && (l.pairer.PendingLoud() > 0 || len(unread) > 0 || l.closeAfter)
	if !l.client.observeClose(err, owed, l.s.cfg.MaxClientBuffer, time.Duration(l.s.cfg.DrainTimeout)) {
		l.retire()
		return
	}
	l.rest = append(l.rest[:0], unread...)
	l.closeAfter = true
	if l.up != nil {
		l.forwardRest()
	}
}

// retire takes the link out of the server's books once neither side will be served again: pending requests are
// recorded as lost, and the upstream connection is closed (its late answers are dropped by fromUpstream).
func (l *link) retire() {
	if l.retired {
		return
	}
	l.retired = true
	if l.client.drain != nil {
		l.client.close()
	}
	if l.up != nil {
		_ = l.up.Close()
	}
	l.balance() // forgets a pause
	account(&l.acctClient, 0)
	account(&l.acctUp, 0)
	l.pairer.Close(time.Now().UnixNano())
	l.inflight.Store(0)
	l.s.connClosed()
	l.s.mu.Lock()
	delete(l.s.links, l.id)
	l.s.mu.Unlock()
}
