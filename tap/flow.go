// TCP reassembly: one flow per connection to a memcached port, two half-streams per flow, each delivering its
// bytes in sequence order exactly once to the framer (frame.go).
//
// Why not gopacket/reassembly: the tap needs (1) a deterministic order of everything it emits, and the
// library's FlushAll/FlushCloseOlderThan walk a Go map; (2) cross-direction ordering: a response may only be
// paired once the request bytes the server acknowledged before sending it have been framed, which the
// library's per-direction streams do not offer; (3) exact lost-byte counts and the capture timestamp of the
// packet that carried each byte; (4) an in-order fast path that frames straight out of the capture buffer with
// no copy and no allocation. The rules below are the library's (RFC 793 sequence arithmetic, first copy wins on
// overlaps) plus those three.
//
// Rules:
//   - A half-stream delivers bytes from its next expected sequence number. Earlier bytes are retransmissions
//     or duplicates and are dropped (counted); later segments wait, copied, in a per-half queue.
//   - A segment also waits while the other half has not yet delivered up to the segment's acknowledgement
//     number. A server→client segment: the server had received those request bytes before it answered, so they
//     come first (this repairs captures whose packets were reordered between the two directions). A
//     client→server segment: the client had received those response bytes before it sent it, so when the
//     capture lost a response the requests sent after the client got it stay unframed until the loss is
//     declared, and only the requests framed before it can have been answered by the lost bytes.
//   - A wait ends when the missing bytes arrive, or it is declared packet loss (a gap) when the capture clock
//     (packet timestamps, never the wall clock) passes reorder_window, when the flow or the tap would exceed its
//     buffer bound, or when the flow ends. Gaps are handled by the framer: resynchronisation and pairing
//     barriers, never invented bytes.
package tap

import (
	"github.com/membench/membench/mcproto"
)

// Directions, as indexes into flow.h.
const (
	c2s = 0 // client → server: requests
	s2c = 1 // server → client: responses
)

var dirNames = [2]string{"client_to_server", "server_to_client"}

// flowKey identifies a connection: the server side first, so both directions map to the same key.
type flowKey struct {
	server, client [16]byte
	sport, cport   uint16
	v6             bool
}

// queued is a segment waiting for earlier bytes (or for the other direction), with its own copy of the data.
type queued struct {
	seq    uint32
	n      uint32 // payload length on the wire; len(data) may be shorter when the snap length cut it
	data   []byte
	ts     int64
	ack    uint32
	hasAck bool
	fin    bool
}

// half is one direction of a flow: reassembly state, then framing state.
type half struct {
	init     bool   // next is known
	next     uint32 // next sequence number to deliver
	start    uint32 // the first sequence number of the stream the tap saw (or inferred)
	q        []queued
	qBytes   int
	qSince   int64 // capture time the queue last made progress (or started)
	finDone  bool  // the FIN was delivered in order
	hadBytes bool  // some payload was delivered

	buf    []byte // bytes of a frame whose header is not complete yet (or a resync candidate)
	body   int    // bytes of a streamed data block still to pass
	synced bool   // at a known frame boundary; false: resynchronise before parsing
	dead   bool   // memcached closes after what was seen: nothing more is framed in this direction
	proto  mcproto.Protocol
	// target is the Pairer that the frame being parsed (or streamed) belongs to; nil when it was retired.
	target *mcproto.Pairer
	reqP   mcproto.RequestParser
	respP  mcproto.ResponseParser
}

// flow is one TCP connection to a memcached port.
type flow struct {
	id     uint64
	key    flowKey
	h      [2]half
	synSeq uint32
	syn    bool
	lastTs int64
	closed bool

	// cur pairs requests framed now. After a gap in the request stream, old keeps the requests framed before
	// it: responses sent before the server acknowledged barSeq go to old (or, when old is nil, are skipped:
	// they answer requests the tap never saw or gave up on), later ones to cur.
	cur, old *mcproto.Pairer
	bar      bool
	barSeq   uint32
	// probation is set after a resynchronisation: until a response fits the command of the request in front,
	// text responses that do not fit are skipped (they answer requests the tap did not see) instead of being
	// paired with the wrong request.
	probation bool
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// newFlow registers a flow, or returns nil (counted) when max_flows are open.
func (t *Tap) newFlow(k flowKey, ts int64) *flow {
	if len(t.flows) >= t.cfg.MaxFlows {
		t.st.FlowOverflow++
		return nil
	}
	t.nextID++
	f := &flow{id: t.nextID, key: k, lastTs: ts}
	f.h[c2s].reqP.MaxLine = t.cfg.MaxLine
	f.cur = t.newPairer(f)
	t.flows[k] = f
	t.active = append(t.active, f)
	t.st.Flows++
	return f
}

// onSegment handles one TCP segment with payload or FIN for half d of f.
func (t *Tap) onSegment(f *flow, d int, s *tcpSegment, ts int64) {
	h := &f.h[d]
	hasAck := s.flags&tcpACK != 0
	fin := s.flags&tcpFIN != 0
	if d == s2c && !f.h[c2s].init && hasAck {
		// Mid-stream: the server has received the client's bytes up to ack; what it sends now answers
		// requests the capture never saw.
		c := &f.h[c2s]
		c.init, c.next, c.start = true, s.ack, s.ack
		f.bar, f.barSeq = true, s.ack
	}
	if !h.init {
		h.init, h.next, h.start = true, s.seq, s.seq
		if d == c2s {
			f.bar, f.barSeq = true, s.seq
		}
	}
	seq, n, data := s.seq, uint32(s.wireLen), s.payload
	if seqLT(seq, h.next) {
		over := h.next - seq
		if over >= n {
			if n > 0 || (fin && h.finDone) {
				t.st.Retransmits++
			}
			if !(fin && over == n && !h.finDone) {
				return
			}
		}
		over = min(over, n)
		t.st.RetransmitBytes += uint64(over)
		seq, n = seq+over, n-over
		data = data[min(int(over), len(data)):]
	}
	if seq == h.next && len(h.q) == 0 && !t.blocked(f, d, s.ack, hasAck) {
		t.deliver(f, d, data, int(n), ts, s.ack, hasAck, fin)
	} else {
		t.enqueue(f, d, queued{seq: seq, n: n, data: data, ts: ts, ack: s.ack, hasAck: hasAck, fin: fin})
	}
	if len(f.h[c2s].q) > 0 || len(f.h[s2c].q) > 0 {
		t.drainBoth(f)
	}
}

// blocked reports whether a segment of half d acknowledging ack must wait for bytes of the other half that are
// not framed yet.
func (t *Tap) blocked(f *flow, d int, ack uint32, hasAck bool) bool {
	if !hasAck {
		return false
	}
	o := &f.h[1-d]
	return o.init && seqLT(o.next, ack)
}

// deliver passes n bytes at h.next (data holds the captured ones) to the framer.
func (t *Tap) deliver(f *flow, d int, data []byte, n int, ts int64, ack uint32, hasAck, fin bool) {
	h := &f.h[d]
	h.next += uint32(n)
	if len(data) > 0 {
		h.hadBytes = true
		t.st.Bytes[d] += uint64(len(data))
		t.feed(f, d, data, ts, ack, hasAck)
	}
	if n > len(data) {
		t.st.Truncated++
		t.gap(f, d, n-len(data), ts)
	}
	if fin && !h.finDone {
		h.next++
		h.finDone = true
	}
}

// enqueue copies a segment into half d's wait queue, sorted by sequence number. Over the flow's or the tap's
// buffer bound, the flow's waits are declared lost first; if the segment still does not fit it is dropped
// and becomes part of a gap.
func (t *Tap) enqueue(f *flow, d int, s queued) {
	h := &f.h[d]
	size := len(s.data)
	if h.qBytes+size+len(h.buf) > t.cfg.MaxFlowBuffer || t.buffered+size > t.cfg.MaxTotalBuffer {
		t.st.BufferOverflows++
		t.forceWaits(f)
		if s.seq == h.next && !t.blocked(f, d, s.ack, s.hasAck) {
			t.deliver(f, d, s.data, int(s.n), s.ts, s.ack, s.hasAck, s.fin)
			return
		}
		if h.qBytes+size > t.cfg.MaxFlowBuffer || t.buffered+size > t.cfg.MaxTotalBuffer {
			t.st.DroppedSegments++
			return
		}
	}
	s.data = append([]byte(nil), s.data...)
	if len(h.q) == 0 {
		h.qSince = s.ts
	}
	i := len(h.q)
	for i > 0 && seqGT(h.q[i-1].seq, s.seq) {
		i--
	}
	h.q = append(h.q, queued{})
	copy(h.q[i+1:], h.q[i:])
	h.q[i] = s
	h.qBytes += size
	t.buffered += size
	t.st.Queued++
}

// drainBoth delivers what has become deliverable in either half until neither moves: framing requests can
// unblock responses, and responses requests.
func (t *Tap) drainBoth(f *flow) {
	for {
		a := len(f.h[c2s].q) > 0 && t.drain(f, c2s)
		b := len(f.h[s2c].q) > 0 && t.drain(f, s2c)
		if !a && !b {
			return
		}
	}
}

// drain delivers queued segments of half d that have become contiguous (and unblocked), and reports whether it
// delivered any.
func (t *Tap) drain(f *flow, d int) bool {
	h := &f.h[d]
	progressed := false
	for len(h.q) > 0 {
		s := &h.q[0]
		if seqLT(s.seq, h.next) {
			over := h.next - s.seq
			if over >= s.n {
				if over > s.n || !s.fin || h.finDone {
					t.st.Retransmits++
					t.dequeue(h)
					continue
				}
			}
			over = min(over, s.n)
			t.st.RetransmitBytes += uint64(over)
			t.buffered -= min(int(over), len(s.data))
			h.qBytes -= min(int(over), len(s.data))
			s.seq, s.n = s.seq+over, s.n-over
			s.data = s.data[min(int(over), len(s.data)):]
		}
		if s.seq != h.next || t.blocked(f, d, s.ack, s.hasAck) {
			break
		}
		seg := *s
		t.dequeue(h)
		t.deliver(f, d, seg.data, int(seg.n), seg.ts, seg.ack, seg.hasAck, seg.fin)
		progressed = true
	}
	if progressed && len(h.q) > 0 {
		h.qSince = t.now
	}
	return progressed
}

func (t *Tap) dequeue(h *half) {
	t.buffered -= len(h.q[0].data)
	h.qBytes -= len(h.q[0].data)
	h.q[0] = queued{}
	h.q = h.q[1:]
	if len(h.q) == 0 {
		h.q = nil
	}
}

// forceWaits ends every wait of f: holes become gaps, and segments blocked on the other half stop waiting for
// bytes the capture lost. Holes in the requests are resolved first, since responses may be waiting on them;
// then holes in the responses, before the requests sent after them are framed.
func (t *Tap) forceWaits(f *flow) {
	c, r := &f.h[c2s], &f.h[s2c]
	for {
		t.drainBoth(f)
		switch {
		case len(c.q) == 0 && len(r.q) == 0:
			return
		case len(c.q) > 0 && c.q[0].seq != c.next:
			t.hole(f, c2s)
		case len(r.q) > 0 && r.q[0].seq != r.next:
			t.hole(f, s2c)
		case len(r.q) == 0:
			// Requests blocked on responses the capture lost: the client acknowledged them.
			q := &c.q[0]
			lost := int(q.ack - r.next)
			r.next = q.ack
			if lost == 1 && !r.finDone {
				r.finDone = true // only the server's FIN was lost: no response bytes
				continue
			}
			t.gap(f, s2c, lost, q.ts)
		case len(c.q) == 0:
			// Responses blocked on requests the capture lost: the server acknowledged them.
			q := &r.q[0]
			lost := int(q.ack - c.next)
			c.next = q.ack
			t.gap(f, c2s, lost, q.ts)
		default:
			// Each half's next segment acknowledges bytes of the other's that wait behind it, which only a
			// capture that lost or rewrote segments shows: the requests go first.
			q := c.q[0]
			t.dequeue(c)
			t.deliver(f, c2s, q.data, int(q.n), q.ts, q.ack, q.hasAck, q.fin)
		}
	}
}

// hole declares the bytes missing before half d's first queued segment lost. They are timed by that segment:
// the best bound the capture has.
func (t *Tap) hole(f *flow, d int) {
	h := &f.h[d]
	q := &h.q[0]
	lost := int(q.seq - h.next)
	h.next = q.seq
	t.gap(f, d, lost, q.ts)
}

// closeFlow ends f: waits become gaps, pending requests are emitted as lost, and the flow is forgotten.
func (t *Tap) closeFlow(f *flow) {
	if f.closed {
		return
	}
	t.forceWaits(f)
	if f.h[s2c].body > 0 && f.h[s2c].target != nil {
		// A response whose data block never finished: its pair is held inside the Pairer and lost with it.
		t.st.IncompleteResponses++
	}
	t.retire(f, f.old)
	t.retire(f, f.cur)
	f.old, f.cur = nil, nil
	for d := range f.h {
		t.buffered -= len(f.h[d].buf)
		f.h[d].buf = nil
	}
	f.closed = true
	delete(t.flows, f.key)
	t.st.FlowsClosed++
}
