// A link is one client connection and its upstream connection. Both sides live on one event loop, so the
// link's fields are only touched from that loop (except the atomics read by Shutdown and OnTick).
//
// Bytes are forwarded exactly as received. The framers only decide where frames end, so that a value whose
// header has arrived can be passed on as it streams in, requests can be paired with responses, and the few
// requests the proxy must answer itself (a value over max_item_size, a line over max_line) are answered in
// order.
package proxy

import (
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// upside is the upstream connection's gnet context, pointing back at its link.
type upside struct{ l *link }

type link struct {
	s      *Server
	id     uint64
	client gnet.Conn
	up     gnet.Conn // nil until the dial completes

	reqP   mcproto.RequestParser
	respP  mcproto.ResponseParser
	req    mcproto.Request
	resp   mcproto.Response
	pairer mcproto.Pairer

	reqBody   int  // bytes of a streamed request body still to forward
	swallow   int  // bytes of a rejected request body still to drop
	respBody  int  // bytes of a streamed response body still to forward
	waitDrain bool // a local answer waits until every earlier response has been forwarded
	rawUp     bool // the upstream became a stream (watch) or sent something unparseable: pass bytes through
	dead      bool // the client sent a request after which memcached closes: ignore the rest
	closed    bool
	failed    bool // the upstream dial failed

	inflight   atomic.Int64 // responses still expected, for Shutdown
	lastActive atomic.Int64 // unix ns of the last traffic, for the idle timeout
}

func (s *Server) newLink(c gnet.Conn) *link {
	l := &link{s: s, id: s.seq.Add(1), client: c}
	l.reqP.MaxLine = s.cfg.MaxLine
	l.reqP.MaxValue = s.cfg.MaxItemSize
	l.pairer.Hasher = s.hasher
	l.pairer.Conn = l.id
	l.pairer.Emit = s.record
	l.lastActive.Store(time.Now().UnixNano())
	return l
}

func (s *Server) upstreamOpened(l *link, c gnet.Conn) gnet.Action {
	if l.closed {
		return gnet.Close
	}
	l.up = c
	// Requests may already be waiting in the client's inbound buffer.
	_ = l.client.Wake(nil)
	return gnet.None
}

// upstreamFailed runs on the loop when the dial failed: every request the client already sent is answered
// with SERVER_ERROR and the client is closed; the next client dials again.
func (s *Server) upstreamFailed(l *link, err error) {
	if l.closed {
		return
	}
	l.failed = true
	s.log.Warn("cannot connect to upstream", "upstream", s.cfg.Upstream, "err", err)
	buf, _ := l.client.Peek(-1)
	var p mcproto.RequestParser
	var r mcproto.Request
	var out []byte
	for len(buf) > 0 {
		n, perr := p.Parse(buf, &r)
		if n == 0 || (perr != nil && perr != mcproto.ErrIncomplete && n == 0) {
			break
		}
		out = l.appendUpstreamError(out, &r, "SERVER_ERROR upstream unavailable")
		buf = buf[n:]
	}
	if len(out) > 0 {
		_, _ = l.client.Write(out)
	}
	_ = l.client.Close()
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

// upstreamClosed runs when memcached closed the connection (quit, shutdown, crash, protocol error): requests
// still waiting get SERVER_ERROR and the client is closed.
func (l *link) upstreamClosed(c gnet.Conn) {
	if l.up != c {
		return
	}
	l.up = nil
	if l.closed {
		return
	}
	if l.pairer.PendingLoud() > 0 {
		upClosedErrors.Inc()
		var out []byte
		if l.respP.Protocol() == mcproto.ProtoBinary || l.reqP.Protocol() == mcproto.ProtoBinary {
			l.pairer.EachPending(func(p *mcproto.Pair) {
				if !p.Quiet {
					out = mcproto.AppendBinaryError(out, p.Opcode, p.Opaque, binStatusTemporaryFailure,
						"upstream connection closed")
				}
			})
		} else {
			out = append(out, "SERVER_ERROR upstream connection closed\r\n"...)
		}
		_, _ = l.client.Write(out)
	}
	_ = l.client.Close()
}

// fromClient forwards client bytes upstream frame by frame.
func (l *link) fromClient() gnet.Action {
	c := l.client
	now := time.Now().UnixNano()
	l.lastActive.Store(now)
	if l.up == nil {
		if l.failed {
			return gnet.Close
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
	buf, _ := c.Peek(-1)
	if l.dead {
		_, _ = c.Discard(len(buf))
		return gnet.None
	}
	if l.waitDrain {
		if l.pairer.PendingLoud() > 0 {
			return gnet.None
		}
		l.waitDrain = false
	}
	pos, fwdStart := 0, 0 // buf[fwdStart:pos] is waiting to be forwarded
	flush := func() {
		if pos > fwdStart {
			_, _ = l.up.Write(buf[fwdStart:pos])
			upBytesOut.Add(pos - fwdStart)
		}
		fwdStart = pos
	}
	var local []byte // answers the proxy gives itself, written after the forwarded bytes
	action := gnet.None
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
		if l.swallow > 0 {
			flush()
			k := min(len(rest), l.swallow)
			pos += k
			fwdStart = pos
			l.swallow -= k
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
				// memcached closes after quit and never reads what follows: forwarding it would only earn the
				// client "upstream connection closed" errors that memcached itself never sends.
				l.dead = true
				flush()
				pos = len(buf)
				fwdStart = pos
				break loop
			}
		case err == mcproto.ErrIncomplete:
			if r.FrameLen == 0 || r.HeaderLen > len(rest) {
				break loop // wait for the rest of the header
			}
			if r.BodyErr == mcproto.ErrTooLarge || r.BodyErr == mcproto.BinTooLarge {
				// A value over max_item_size: answer it here and drop its body as it arrives.
				if l.pairer.PendingLoud() > 0 {
					l.waitDrain = true
					break loop
				}
				flush()
				local = l.localAnswer(local, r, r.BodyErr)
				requestsByCmd[r.Cmd].Inc()
				pos += len(rest)
				fwdStart = pos
				l.swallow = r.FrameLen - len(rest)
				break loop
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
			if pe == mcproto.ErrTooLarge || pe == mcproto.BinTooLarge {
				if l.pairer.PendingLoud() > 0 {
					l.waitDrain = true
					break loop
				}
				flush()
				local = l.localAnswer(local, r, pe)
				requestsByCmd[r.Cmd].Inc()
				pos += n
				fwdStart = pos
				continue
			}
			if n == 0 {
				// Nothing memcached could frame (a line too long, bad binary magic): answer and close.
				flush()
				if pe.Text != "" && r.Proto != mcproto.ProtoBinary {
					local = append(local, pe.Text...)
					local = append(local, '\r', '\n')
				}
				pos = len(buf)
				fwdStart = pos
				action = gnet.Close
				break loop
			}
			// memcached answers this one itself: forward it and pair its error response.
			requestsByCmd[r.Cmd].Inc()
			l.pairer.Request(r, now)
			pos += n
			if pe.Close {
				// memcached closes after answering; ignore whatever the client sends next.
				l.dead = true
				flush()
				pos = len(buf)
				fwdStart = pos
				break loop
			}
		}
	}
	flush()
	if pos > 0 {
		// gnet's Discard(0) empties the whole inbound buffer: a partial request must stay for the next read.
		_, _ = c.Discard(pos)
	}
	clientBytesIn.Add(pos)
	if len(local) > 0 {
		localAnswers.Inc()
		_, _ = c.Write(local)
		clientBytesOut.Add(len(local))
	}
	l.inflight.Store(int64(l.pairer.PendingLoud()))
	if action == gnet.None && c.InboundBuffered() > l.s.cfg.MaxClientBuffer {
		connsOverflow.Inc()
		action = gnet.Close
	}
	if action == gnet.None && l.up.OutboundBuffered() > l.s.cfg.MaxClientBuffer {
		// memcached is not reading: bound memory rather than buffer without limit.
		connsOverflow.Inc()
		action = gnet.Close
	}
	return action
}

// localAnswer appends the proxy's own answer to a request it rejects, in memcached's words.
func (l *link) localAnswer(out []byte, r *mcproto.Request, pe *mcproto.ProtocolError) []byte {
	if r.Proto == mcproto.ProtoBinary {
		return mcproto.AppendBinaryError(out, r.Opcode, r.Opaque, pe.BinStatus, "Too large.")
	}
	if r.Noreply {
		return out // memcached's out_string honours noreply for this error too
	}
	out = append(out, pe.Text...)
	return append(out, '\r', '\n')
}

// fromUpstream forwards upstream bytes to the client, pairing each response frame.
func (l *link) fromUpstream() gnet.Action {
	up := l.up
	if up == nil {
		return gnet.None
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
		// Something memcached never sends: stop interpreting, keep forwarding faithfully.
		upBadResponses.Inc()
		l.s.log.Warn("unparseable response from upstream; passing bytes through unpaired", "upstream", l.s.cfg.Upstream)
		l.rawUp = true
	}
	if l.rawUp {
		pos = len(buf)
	}
	if pos > 0 {
		_, _ = l.client.Write(buf[:pos])
		clientBytesOut.Add(pos)
		_, _ = up.Discard(pos)
	}
	if o := l.pairer.Stats.Orphans; o > 0 {
		orphans.Add(int(o))
		l.pairer.Stats.Orphans = 0
	}
	l.inflight.Store(int64(l.pairer.PendingLoud()))
	if l.waitDrain && l.pairer.PendingLoud() == 0 {
		_ = l.client.Wake(nil)
	}
	if l.client.OutboundBuffered() > l.s.cfg.MaxClientBuffer {
		// The client does not read its responses: close it rather than buffer without bound.
		connsOverflow.Inc()
		_ = l.client.Close()
	}
	return gnet.None
}
