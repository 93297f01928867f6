// Framing of reassembled bytes: mcproto parsers on each half-stream, the flow's Pairers, resynchronisation
// after a capture that started mid-connection or lost bytes, and the pairing barriers that keep responses from
// being matched with the wrong requests after a gap. It mirrors proxy/link.go frame for frame (the same
// parsers, the same streaming of data blocks, the same Pairer calls), so that a connection seen by both
// produces the same events.
package tap

import (
	"bytes"
	"encoding/binary"

	"github.com/membench/membench/mcproto"
)

// resyncMaxLine is the longest line resynchronisation accepts as a frame start; a command or response line
// memcached sends or accepts (other than a long multi-get) is shorter.
const resyncMaxLine = 2048

// maxBinaryBody bounds the body length of a binary header that resynchronisation accepts as plausible.
const maxBinaryBody = 1 << 28

func (t *Tap) newPairer(f *flow) *mcproto.Pairer {
	var p *mcproto.Pairer
	if n := len(t.freePairers); n > 0 {
		p = t.freePairers[n-1]
		t.freePairers = t.freePairers[:n-1]
		p.Reset()
	} else {
		p = &mcproto.Pairer{Hasher: t.hasher, Emit: t.emitFn, MaxPending: t.cfg.MaxPending}
	}
	p.Conn = f.id
	return p
}

// retire closes p: requests still waiting are emitted as lost. Its counts join the tap's.
func (t *Tap) retire(f *flow, p *mcproto.Pairer) {
	if p == nil {
		return
	}
	p.Close(t.now)
	s := &p.Stats
	t.st.Requests += s.Requests
	t.st.Orphans += s.Orphans
	t.st.Mismatched += s.Mismatched
	t.st.Suppressed += s.Suppressed
	t.st.Lost += s.Lost
	t.st.PendingOverflow += s.Overflow
	for d := range f.h {
		if f.h[d].target == p {
			f.h[d].target = nil
		}
	}
	p.Stats = mcproto.PairerStats{}
	t.freePairers = append(t.freePairers, p)
}

// feed frames data, the next bytes of half d, captured at ts (in a segment acknowledging ack).
func (t *Tap) feed(f *flow, d int, data []byte, ts int64, ack uint32, hasAck bool) {
	h := &f.h[d]
	if h.dead {
		t.st.SkippedBytes += uint64(len(data))
		return
	}
	view := data
	old := len(h.buf)
	if old > 0 {
		h.buf = append(h.buf, data...)
		view = h.buf
	}
	pos := 0
	for pos < len(view) {
		if h.body > 0 {
			k := min(len(view)-pos, h.body)
			pos += k
			h.body -= k
			if h.body == 0 {
				t.bodyDone(h, d, ts)
			}
			continue
		}
		if h.dead {
			t.st.SkippedBytes += uint64(len(view) - pos)
			pos = len(view)
			break
		}
		if d == s2c && pos >= old && !t.responseTarget(f, h, ack, hasAck) {
			t.st.SkippedBytes += uint64(len(view) - pos)
			pos = len(view)
			break
		}
		if !h.synced {
			skip, ok := t.resync(h, d, view[pos:], h.target)
			t.st.ResyncSkippedBytes += uint64(skip)
			pos += skip
			if !ok {
				break
			}
			h.synced = true
			f.probation = true
			t.st.Resyncs++
			if d == c2s {
				h.reqP.Reset()
			} else {
				h.respP.Reset()
			}
		}
		n, more := t.parseFrame(f, h, d, view[pos:], ts)
		pos += n
		if more {
			break
		}
	}
	rest := view[pos:]
	switch {
	case len(rest) == 0:
		h.buf = h.buf[:0]
	case old > 0:
		h.buf = h.buf[:copy(h.buf, rest)]
	default:
		h.buf = append(h.buf[:0], rest...)
	}
	t.buffered += len(h.buf) - old
}

// responseTarget chooses the Pairer for a response frame that starts in a segment acknowledging ack, applying
// the flow's barrier. It returns false when the bytes are to be skipped.
func (t *Tap) responseTarget(f *flow, h *half, ack uint32, hasAck bool) bool {
	if f.bar {
		if !hasAck || !seqGT(ack, f.barSeq) {
			if f.old == nil {
				// Answers to requests never seen (capture start) or given up on (a gap): skip them, and
				// resynchronise once real answers begin.
				h.synced = false
				return false
			}
			h.target = f.old
			return true
		}
		// The server had received bytes after the barrier: responses from here on answer cur's requests.
		if f.old != nil {
			t.retire(f, f.old)
			f.old = nil
		}
		f.bar = false
	}
	h.target = f.cur
	return true
}

// parseFrame frames and pairs the frame at the start of buf. It returns the bytes consumed, and more = true
// when the rest of buf is either kept for more bytes (consumed 0) or swallowed by a streamed data block.
func (t *Tap) parseFrame(f *flow, h *half, d int, buf []byte, ts int64) (n int, more bool) {
	if d == c2s {
		r := &t.req
		n, err := h.reqP.Parse(buf, r)
		switch {
		case err == nil:
			t.request(f, h, r, ts)
			return n, false
		case err == mcproto.ErrIncomplete:
			if r.FrameLen == 0 || r.HeaderLen > len(buf) {
				return 0, true // wait for the rest of the header
			}
			t.request(f, h, r, ts)
			h.body = r.FrameLen - len(buf)
			return len(buf), true
		}
		pe := err.(*mcproto.ProtocolError)
		t.st.ClientProtocolErrors++
		if n == 0 {
			// Nothing memcached could frame (a line too long, a bad binary magic): it closes the connection.
			h.dead = true
			t.st.SkippedBytes += uint64(len(buf))
			return len(buf), true
		}
		t.request(f, h, r, ts)
		if pe.Close {
			h.dead = true
			t.st.SkippedBytes += uint64(len(buf) - n)
			return len(buf), true
		}
		return n, false
	}
	p := h.target
	if p == nil {
		// Only reachable for the tail of a stream whose Pairer was retired mid-frame: resynchronise.
		h.synced = false
		return 0, false
	}
	if p.Streaming() {
		// watch / lru_crawler metadump: the rest of the connection is a log stream, never paired.
		h.dead = true
		t.st.SkippedBytes += uint64(len(buf))
		return len(buf), true
	}
	r := &t.resp
	n, err := h.respP.Parse(buf, r)
	switch {
	case err == nil:
		h.proto = r.Proto
		t.st.Responses++
		if f.probation && !t.fitsFront(f, p, r) {
			return n, false
		}
		p.Response(r, ts, true)
		return n, false
	case err == mcproto.ErrIncomplete:
		if r.FrameLen > 0 && r.HeaderLen <= len(buf) {
			t.st.Responses++
			h.body = r.FrameLen - len(buf)
			if f.probation && !t.fitsFront(f, p, r) {
				h.target = nil // stream the data block past, unpaired
				return len(buf), true
			}
			p.Response(r, ts, false)
			return len(buf), true
		}
		return 0, true
	}
	// Something memcached never sends: a desynchronised stream. Skip a byte and look for the next frame.
	t.st.BadResponses++
	h.synced = false
	return 1, false
}

// fitsFront reports whether r can answer the request p waits on first, ending f's probation when it does.
// Misfits are counted as orphans and skipped. Binary responses carry opcode and opaque, which the Pairer
// matches itself.
func (t *Tap) fitsFront(f *flow, p *mcproto.Pairer, r *mcproto.Response) bool {
	if r.Proto == mcproto.ProtoBinary {
		f.probation = false
		return true
	}
	front, ok := frontCommand(p)
	if !ok {
		return true // the Pairer counts it as an orphan
	}
	if responseFits(front, r.Kind) {
		f.probation = false
		return true
	}
	t.st.Orphans++
	return false
}

// responseFits reports whether a text or meta response of kind k can answer a request for cmd.
func responseFits(cmd mcproto.Command, k mcproto.RespKind) bool {
	switch k {
	case mcproto.RespError, mcproto.RespClientError, mcproto.RespServerError:
		return true
	}
	meta := k >= mcproto.RespMetaVA && k <= mcproto.RespMetaME
	switch cmd {
	case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats:
		return k == mcproto.RespValue || k == mcproto.RespEnd
	case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas:
		return k == mcproto.RespStored || k == mcproto.RespNotStored || k == mcproto.RespExists ||
			k == mcproto.RespNotFound
	case mcproto.CmdDelete:
		return k == mcproto.RespDeleted || k == mcproto.RespNotFound
	case mcproto.CmdIncr, mcproto.CmdDecr:
		return k == mcproto.RespNumber || k == mcproto.RespNotFound
	case mcproto.CmdTouch:
		return k == mcproto.RespTouched || k == mcproto.RespNotFound
	case mcproto.CmdVersion:
		return k == mcproto.RespVersion
	case mcproto.CmdMetaGet, mcproto.CmdMetaSet, mcproto.CmdMetaDelete, mcproto.CmdMetaArithmetic,
		mcproto.CmdMetaNoop, mcproto.CmdMetaDebug:
		return meta // a quiet request in front may have been answered by silence
	}
	return true
}

func (t *Tap) request(f *flow, h *half, r *mcproto.Request, ts int64) {
	h.proto = r.Proto
	if h.proto == mcproto.ProtoMeta {
		h.proto = mcproto.ProtoText
	}
	h.target = f.cur
	f.cur.Request(r, ts)
	if !r.ExpectsResponse() {
		// RequestDone would retime the previous waiting request, not this one (noreply pairs are emitted at
		// once): leave the time at the header.
		h.target = nil
	}
}

// bodyDone ends a streamed data block at ts: the frame's last byte.
func (t *Tap) bodyDone(h *half, d int, ts int64) {
	if h.target == nil {
		return
	}
	if d == c2s {
		h.target.RequestDone(ts)
	} else {
		h.target.ResponseDone(ts)
	}
}

// gap handles lost bytes in half d, just before h.next. A gap inside a data block being streamed loses
// nothing but value bytes; any other gap may have swallowed frames, so the half resynchronises and a pairing
// barrier keeps later responses away from requests they do not answer.
func (t *Tap) gap(f *flow, d int, lost int, ts int64) {
	h := &f.h[d]
	t.st.Gaps[d]++
	t.st.LostBytes[d] += uint64(lost)
	if h.dead {
		return
	}
	if h.body > 0 {
		if lost <= h.body {
			h.body -= lost
			t.st.GapsInValues++
			if h.body == 0 {
				t.bodyDone(h, d, ts)
			}
			return
		}
		lost -= h.body
		h.body = 0
		t.bodyDone(h, d, ts)
	}
	t.st.ResyncSkippedBytes += uint64(len(h.buf))
	t.buffered -= len(h.buf)
	h.buf = h.buf[:0]
	h.synced = false
	if d == c2s {
		// Requests framed so far stay in their Pairer, which still gets the responses the server sent before
		// it acknowledged the first byte after the gap; later responses go to a fresh Pairer.
		if f.cur.Stats.Requests > 0 || f.cur.Pending() > 0 {
			if f.old != nil {
				t.retire(f, f.old)
			}
			f.old = f.cur
			f.cur = t.newPairer(f)
		}
		f.bar, f.barSeq = true, h.next
		return
	}
	// Responses were lost: which requests they answered is unknowable, so every waiting request is lost, and
	// responses the server sent before it acknowledged the next request byte are skipped.
	if f.old != nil {
		t.retire(f, f.old)
		f.old = nil
	}
	p := f.cur
	f.cur = t.newPairer(f)
	t.retire(f, p)
	f.bar, f.barSeq = true, f.h[c2s].next
}

// resync looks for the first plausible frame start in buf. It returns the bytes to skip before it and ok; when
// ok is false the bytes after skip are a candidate that needs more data (kept by the caller) or nothing.
func (t *Tap) resync(h *half, d int, buf []byte, p *mcproto.Pairer) (skip int, ok bool) {
	front, hasFront := frontCommand(p)
	magic := byte(0x80)
	if d == s2c {
		magic = 0x81
	}
	text, bin := h.proto != mcproto.ProtoBinary, h.proto != mcproto.ProtoText && h.proto != mcproto.ProtoMeta
	for i := 0; i < len(buf); i++ {
		isText := text && (i == 0 || buf[i-1] == '\n')
		isBin := bin && buf[i] == magic
		if !isText && !isBin {
			continue
		}
		var v verdict
		if isBin {
			v = plausibleBinary(buf[i:], d)
		} else {
			v = t.plausibleText(buf[i:], d, front, hasFront)
		}
		switch v {
		case plausible:
			return i, true
		case needMore:
			return i, false
		}
	}
	return len(buf), false
}

type verdict uint8

const (
	implausible verdict = iota
	plausible
	needMore
)

// frontCommand returns the command of the request p waits on first.
func frontCommand(p *mcproto.Pairer) (mcproto.Command, bool) {
	if p == nil || p.Pending() == 0 {
		return mcproto.CmdUnknown, false
	}
	var front mcproto.Command
	seen := false
	p.EachPending(func(pr *mcproto.Pair) {
		if !seen {
			front, seen = pr.Cmd, true
		}
	})
	return front, true
}

// plausibleText reports whether b starts with a whole command (or response) line that memcached accepts (or
// sends). A response must also fit the request waiting in front, when there is one.
func (t *Tap) plausibleText(b []byte, d int, front mcproto.Command, hasFront bool) verdict {
	nl := bytes.IndexByte(b[:min(len(b), resyncMaxLine)], '\n')
	if nl < 0 {
		if len(b) < resyncMaxLine {
			return needMore
		}
		return implausible
	}
	if d == c2s {
		var p mcproto.RequestParser
		r := &t.scratchReq
		_, err := p.Parse(b, r)
		if (err == nil || (err == mcproto.ErrIncomplete && r.FrameLen > 0)) && r.Cmd != mcproto.CmdOther &&
			r.Cmd != mcproto.CmdUnknown {
			return plausible
		}
		return implausible
	}
	var p mcproto.ResponseParser
	r := &t.scratchResp
	_, err := p.Parse(b, r)
	if err != nil && !(err == mcproto.ErrIncomplete && r.FrameLen > 0) {
		return implausible
	}
	switch r.Kind {
	case mcproto.RespUnknown, mcproto.RespLine:
		return implausible
	case mcproto.RespStat, mcproto.RespNumber:
		// Too easily found inside values, or the middle of a multi-line answer: only when the request in front
		// asks for one.
		if !hasFront || (front != mcproto.CmdIncr && front != mcproto.CmdDecr) {
			return implausible
		}
	}
	if hasFront && !responseFits(front, r.Kind) {
		return implausible
	}
	return plausible
}

// plausibleBinary reports whether b starts with a sane binary header (magic already checked), followed, when
// the frame is complete and more bytes are there, by another header's magic.
func plausibleBinary(b []byte, d int) verdict {
	if len(b) < 24 {
		return needMore
	}
	if cmd, _ := mcproto.BinaryOpcodeCommand(b[1]); cmd == mcproto.CmdOther {
		return implausible
	}
	keyLen := int(binary.BigEndian.Uint16(b[2:4]))
	extLen := int(b[4])
	body := int(binary.BigEndian.Uint32(b[8:12]))
	if b[5] != 0 || keyLen > mcproto.MaxKeyLen || extLen > 64 || keyLen+extLen > body || body > maxBinaryBody {
		return implausible
	}
	if d == s2c && binary.BigEndian.Uint16(b[6:8]) > 0xff {
		return implausible // no status that large exists
	}
	if end := 24 + body; len(b) > end && b[end] != b[0] {
		return implausible
	}
	return plausible
}
