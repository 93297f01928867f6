// Pool mode, client side: parse each request, route it by key, rewrite it into the loud form the shared
// connection needs, and keep one slot per request so answers go back in the client's order. Recording sees
// exactly the bytes the client sent and received: the client's requests and the answers written back.
package proxy

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/panjf2000/gnet/v2"
)

// pclient is a client connection in pool mode.
type pclient struct {
	s  *Server
	p  *pool
	pl *poolLoop
	c  gnet.Conn // the client connection; written and closed only through ep
	ep endpoint
	id uint64

	reqP   mcproto.RequestParser
	req    mcproto.Request
	respP  mcproto.ResponseParser // frames what we write back, for the recorder
	resp   mcproto.Response
	pairer mcproto.Pairer

	slots   []*slot
	head    int
	free    []*slot // written slots kept for reuse
	written []*slot // scratch: the slots one flush writes
	out     []byte  // scratch: several slots' answers written together
	// pins is the upstream connection this client uses for each server (by index in the loop's current
	// generation): all of a client's requests to one server share a connection, so they reach memcached in the
	// client's order even with connections_per_server > 1.
	pins     []*upConn
	scratch  []byte
	picks    []int       // scratch: the server of each key of a multi-get
	subs     []serverSub // scratch: a split multi-get's sub-request per server
	quitting bool        // close once every answer owed is written (quit, a request memcached closes on, a half-close)
	retired  bool        // out of the server's books
	valve    valve       // read back-pressure (flow.go)
	swallow  int         // bytes still to drop of a value too large for memcached
	acct     int64       // bytes in bufferedBytes
	auth     clientAuth  // login to the proxy, with pool.client_auth_file (auth.go)

	inflight   atomic.Int64
	lastActive atomic.Int64
	reqStart   atomic.Int64 // unix ns when the request still arriving began (0: none), for request_timeout
}

// serverSub is a split multi-get's sub-request to the server at idx.
type serverSub struct {
	idx int
	sr  *subReq
}

// slot is one client request's place in the answer order.
type slot struct {
	cl      *pclient
	buf     []byte // the answer, complete when waiting == 0
	waiting int    // forwarded parts still unanswered
	// merge state
	merge   slotMerge
	vals    [][]byte // split multi-get: VALUE frame per client key (empty: miss); reused with the slot
	errText []byte   // first error frame of a split get or fan-out
	binary  bool
	op      uint8
	opaque  uint32
	noreply bool
}

type slotMerge uint8

const (
	mergeNone   slotMerge = iota
	mergeGet              // concatenate vals in key order, then END
	mergeFanout           // OK, or the first error
)

func (s *Server) newPoolClient(c gnet.Conn) *pclient {
	cl := &pclient{s: s, p: s.pool, c: c, ep: endpoint{c: c}, id: s.seq.Add(1)}
	cl.pl = s.pool.loop(c.EventLoop())
	cl.reqP.MaxLine = s.cfg.MaxLine
	s.poolInfo.apply(&cl.reqP)
	cl.reqP.MaxValue = s.maxItemSize()
	cl.pairer.Hasher = s.hasher
	cl.pairer.Conn = cl.id
	cl.pairer.Emit = s.record
	cl.pairer.Route = func(key []byte) int { return cl.pl.st.ring.Pick(key) }
	cl.lastActive.Store(time.Now().UnixNano())
	return cl
}

func (cl *pclient) newSlot() *slot {
	var sl *slot
	if n := len(cl.free); n > 0 {
		sl = cl.free[n-1]
		cl.free = cl.free[:n-1]
		*sl = slot{cl: cl, buf: sl.buf[:0], vals: sl.vals[:0]}
	} else {
		sl = &slot{cl: cl}
	}
	cl.slots = append(cl.slots, sl)
	return sl
}

// recycle keeps a written slot, with its buffer, for the next request (bounded, so a burst of large values
// does not pin memory).
func (cl *pclient) recycle(sl *slot) {
	if len(cl.free) < 64 && cap(sl.buf) <= 64<<10 {
		sl.errText = nil
		// Keep the value buffers of a split multi-get, unless they hold large values.
		held := 0
		for _, v := range sl.vals[:cap(sl.vals)] {
			held += cap(v)
		}
		if held > 64<<10 || cap(sl.vals) > 1024 {
			sl.vals = nil
		}
		cl.free = append(cl.free, sl)
	}
}

func (sl *slot) setErr(frame []byte) {
	if sl.errText == nil {
		sl.errText = append([]byte{}, frame...)
	}
}

func (sl *slot) fail(text string) {
	if sl.binary {
		sl.errText = mcproto.AppendBinaryError(nil, sl.op, sl.opaque, binStatusTemporaryFailure, text)
		return
	}
	sl.setErr([]byte(text + "\r\n"))
}

// subDone is called when one forwarded part has its answer.
func (sl *slot) subDone(int64) {
	sl.waiting--
	if sl.waiting > 0 {
		return
	}
	switch {
	case sl.errText != nil && (sl.merge != mergeNone || len(sl.buf) == 0):
		sl.buf = append(sl.buf[:0], sl.errText...)
	case sl.errText != nil:
		// A single forwarded request failed after part of its answer: replace it.
		sl.buf = append(sl.buf[:0], sl.errText...)
	case sl.merge == mergeGet:
		for _, v := range sl.vals {
			sl.buf = append(sl.buf, v...)
		}
		sl.buf = append(sl.buf, "END\r\n"...)
	case sl.merge == mergeFanout:
		sl.buf = append(sl.buf, "OK\r\n"...)
	}
	if sl.noreply {
		sl.buf = sl.buf[:0]
	}
}

// flush writes every complete slot at the head of the queue, in order, and records the answers.
func (cl *pclient) flush(now int64) {
	if cl.retired {
		return
	}
	var out []byte
	shared := false // out is cl.out, not a slot's own buffer
	written := cl.written[:0]
	for cl.head < len(cl.slots) && cl.slots[cl.head].waiting == 0 {
		sl := cl.slots[cl.head]
		cl.slots[cl.head] = nil
		cl.head++
		written = append(written, sl)
		if len(sl.buf) > 0 {
			cl.recordAnswers(sl.buf, now)
			switch {
			case out == nil && cl.head == len(cl.slots):
				out = sl.buf // common case: one slot, write it directly
			case !shared:
				out, shared = append(cl.out[:0], out...), true
				out = append(out, sl.buf...)
			default:
				out = append(out, sl.buf...)
			}
		}
	}
	if cl.head == len(cl.slots) {
		cl.slots, cl.head = cl.slots[:0], 0
	}
	if len(out) > 0 {
		cl.ep.write(out) // gnet (or the drainer) copies what it cannot write now: the buffers are free again after this
		clientBytesOut.Add(len(out))
	}
	if shared && cap(out) <= 1<<20 {
		cl.out = out[:0]
	}
	for i, sl := range written {
		cl.recycle(sl)
		written[i] = nil
	}
	cl.written = written[:0]
	cl.inflight.Store(int64(len(cl.slots) - cl.head))
	if cl.quitting && cl.head == len(cl.slots) {
		cl.ep.close()
		if cl.ep.closed {
			cl.retire() // a half-closed client has all its answers
		}
		return
	}
	if !cl.ep.closed && cl.ep.buffered() > cl.s.cfg.MaxClientBuffer {
		connsOverflow.Inc()
		cl.ep.close()
	}
	cl.balance()
}

// recordAnswers feeds the bytes written back to the client to its pairer.
func (cl *pclient) recordAnswers(b []byte, now int64) {
	for len(b) > 0 {
		n, err := cl.respP.Parse(b, &cl.resp)
		if n == 0 || err != nil {
			return
		}
		cl.pairer.Response(&cl.resp, now, true)
		b = b[n:]
	}
}

// local queues an answer the proxy gives itself, in order.
func (cl *pclient) local(b []byte) {
	sl := cl.newSlot()
	sl.buf = append(sl.buf, b...)
	localAnswers.Inc()
}

func (cl *pclient) localText(r *mcproto.Request, text string) {
	if r.Proto == mcproto.ProtoBinary {
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, binStatusTemporaryFailure, text))
		return
	}
	if r.Noreply {
		return
	}
	cl.local([]byte(text + "\r\n"))
}

// fromClient parses and routes every complete request.
func (cl *pclient) fromClient() gnet.Action {
	c := cl.c
	now := time.Now().UnixNano()
	cl.lastActive.Store(now)
	if cl.s.draining.Load() {
		return gnet.None // shutting down: no new requests; those in flight finish
	}
	if cl.valve.paused {
		if cl.balance(); cl.valve.paused {
			return gnet.None // gnet read anyway: keep the bytes for later
		}
	}
	st := cl.pl.refresh()
	buf, _ := c.Peek(-1)
	pos := 0
	action := gnet.None
	for pos < len(buf) && !cl.quitting {
		if cl.swallow > 0 {
			// The rest of a value too large for memcached: dropped as it arrives, as memcached drops it.
			k := min(len(buf)-pos, cl.swallow)
			pos += k
			cl.swallow -= k
			continue
		}
		if n, ok := cl.loginText(st, buf[pos:], now); ok { // auth.go: a text client's login, before any parsing
			if n == 0 {
				break
			}
			pos += n
			continue
		}
		n, err := cl.reqP.Parse(buf[pos:], &cl.req)
		r := &cl.req
		if err == mcproto.ErrIncomplete {
			if tooLarge(r.BodyErr) && r.HeaderLen <= len(buf)-pos {
				// Answer now and drop the value as it streams in, instead of holding it whole.
				clientErrors.Inc()
				requestsByCmd[r.Cmd].Inc()
				cl.pairer.Request(r, now)
				cl.tooLarge(st, r, r.BodyErr.AppendReply(nil, r), now)
				cl.swallow = r.FrameLen - (len(buf) - pos)
				pos = len(buf)
				continue
			}
			break
		}
		if pe, ok := err.(*mcproto.ProtocolError); ok {
			clientErrors.Inc()
			if n == 0 || pe.Close {
				// memcached answers (if at all) and closes.
				if reply := pe.AppendReply(nil, r); len(reply) > 0 {
					cl.local(reply)
				}
				cl.quitting = true
				pos = len(buf)
				break
			}
			if r.Proto == mcproto.ProtoBinary && cl.interceptBinary(st, r, buf[pos:pos+n]) { // auth.go
				pos += n
				continue
			}
			requestsByCmd[r.Cmd].Inc()
			cl.pairer.Request(r, now)
			// memcached would answer this itself; mcproto knows its exact words for the upstream's release.
			if tooLarge(pe) {
				cl.tooLarge(st, r, pe.AppendReply(nil, r), now)
			} else if reply := pe.AppendReply(nil, r); len(reply) > 0 {
				cl.local(reply)
			}
			pos += n
			continue
		}
		frame := buf[pos : pos+n]
		pos += n
		if r.Proto == mcproto.ProtoBinary && cl.interceptBinary(st, r, frame) { // auth.go: SASL, unauthenticated
			continue
		}
		requestsByCmd[r.Cmd].Inc()
		cl.pairer.Request(r, now)
		cl.route(st, r, frame, now)
	}
	if pos > 0 {
		// gnet's Discard(0) empties the whole inbound buffer: never call it with nothing consumed.
		_, _ = c.Discard(pos)
	}
	clientBytesIn.Add(pos)
	arriving(&cl.reqStart, pos < len(buf) && !cl.quitting, now)
	cl.flush(now)
	if c.InboundBuffered() > cl.s.cfg.MaxClientBuffer {
		connsOverflow.Inc()
		action = gnet.Close
	}
	cl.balance()
	return action
}

// route sends one request to its server(s) or answers it locally.
func (cl *pclient) route(st *poolState, r *mcproto.Request, frame []byte, now int64) {
	if r.Proto == mcproto.ProtoBinary {
		cl.routeBinary(st, r, frame, now)
		return
	}
	switch r.Cmd {
	case mcproto.CmdVersion:
		cl.local([]byte("VERSION " + versionString + "\r\n"))
		return
	case mcproto.CmdQuit:
		cl.quitting = true
		return
	case mcproto.CmdMetaNoop:
		cl.local([]byte("MN\r\n"))
		return
	case mcproto.CmdFlushAll, mcproto.CmdVerbosity:
		cl.fanout(st, r, frame, now)
		return
	case mcproto.CmdStats:
		cl.local(cl.stats())
		return
	case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats:
		cl.routeGet(st, r, frame, now)
		return
	}
	if !r.Cmd.HasKey() || len(r.Keys) == 0 {
		cl.localText(r, "SERVER_ERROR "+r.Cmd.String()+" is not supported in pool mode")
		return
	}
	key, ok := mcproto.DecodeKey(r.Keys[0], r.KeyBase64, cl.keyScratch())
	if !ok {
		key = r.Keys[0]
	}
	idx := st.ring.Pick(key)
	us := cl.serverFor(st, idx)
	if us == nil {
		cl.localText(r, "SERVER_ERROR no server available for the key")
		return
	}
	sl := cl.newSlot()
	sr := cl.pl.newSub(sl, subSingle)
	out := frame
	switch {
	case r.Noreply:
		out = cl.stripToken(frame, r, []byte(" noreply"))
		sl.noreply = true
	case r.Quiet:
		out = cl.stripMetaFlag(frame, r, 'q')
		sr.suppress = metaSuppress(r.Cmd)
	}
	cl.connFor(idx, us).send(out, sr, now)
	cl.shadow(st, key, frame)
}

// connFor returns the client's connection to server us (index idx), pinning one on first use. A pin is
// dropped when its connection dies or the index now names another server (after a reload).
func (cl *pclient) connFor(idx int, us *upServer) *upConn {
	if idx < len(cl.pins) {
		if uc := cl.pins[idx]; uc != nil && !uc.dead && uc.srv == us {
			return uc
		}
	}
	uc := cl.pl.conn(us, cl.reqP.Protocol() == mcproto.ProtoBinary)
	for len(cl.pins) <= idx {
		cl.pins = append(cl.pins, nil)
	}
	cl.pins[idx] = uc
	return uc
}

var versionString = "membench-pool"

var pid = os.Getpid()

// serverFor returns the loop's server for ring index idx, or nil when it is failing fast.
func (cl *pclient) serverFor(st *poolState, idx int) *upServer {
	if idx < 0 || idx >= len(cl.pl.servers) {
		return nil
	}
	if st.down[idx] && !st.cfg.AutoEject {
		return nil // fail fast until the probe brings it back
	}
	return cl.pl.servers[idx]
}

func (cl *pclient) keyScratch() []byte {
	if cap(cl.scratch) < mcproto.MaxKeyLen {
		cl.scratch = make([]byte, mcproto.MaxKeyLen)
	}
	return cl.scratch[:mcproto.MaxKeyLen]
}

// metaSuppress returns the answer a quiet meta command leaves out (memcached 1.6: mg's EN, the HD of ms and
// md, ma's success).
func metaSuppress(cmd mcproto.Command) suppressFn {
	switch cmd {
	case mcproto.CmdMetaGet:
		return func(r *mcproto.Response) bool { return r.Kind == mcproto.RespMetaEN }
	case mcproto.CmdMetaSet, mcproto.CmdMetaDelete:
		return func(r *mcproto.Response) bool { return r.Kind == mcproto.RespMetaHD }
	case mcproto.CmdMetaArithmetic:
		return func(r *mcproto.Response) bool {
			return r.Kind == mcproto.RespMetaHD || r.Kind == mcproto.RespMetaVA
		}
	}
	return nil
}

// stripToken returns frame with the first occurrence of tok in its command line removed.
func (cl *pclient) stripToken(frame []byte, r *mcproto.Request, tok []byte) []byte {
	line := frame[:len(r.Line)]
	i := bytes.LastIndex(line, tok)
	if i < 0 {
		return frame
	}
	out := make([]byte, 0, len(frame))
	out = append(out, frame[:i]...)
	return append(out, frame[i+len(tok):]...)
}

// stripMetaFlag removes the single-letter meta flag f (a token equal to f) from the command line.
func (cl *pclient) stripMetaFlag(frame []byte, r *mcproto.Request, f byte) []byte {
	line := frame[:len(r.Line)]
	for i := 0; i+1 < len(line); i++ {
		if line[i] == ' ' && line[i+1] == f && (i+2 == len(line) || line[i+2] == ' ') {
			out := make([]byte, 0, len(frame))
			out = append(out, frame[:i]...)
			return append(out, frame[i+2:]...)
		}
	}
	return frame
}

// routeGet sends a text multi-get: whole to one server when all its keys live there, else split per server and
// merged back in key order.
func (cl *pclient) routeGet(st *poolState, r *mcproto.Request, frame []byte, now int64) {
	if len(r.Keys) == 0 {
		cl.local([]byte("ERROR\r\n"))
		return
	}
	picks := cl.picks[:0]
	for _, k := range r.Keys {
		picks = append(picks, st.ring.Pick(k))
	}
	cl.picks = picks
	first := picks[0]
	same := true
	for _, idx := range picks[1:] {
		if idx != first {
			same = false
			break
		}
	}
	if same {
		us := cl.serverFor(st, first)
		if us == nil {
			cl.local([]byte("SERVER_ERROR no server available for the key\r\n"))
			return
		}
		sl := cl.newSlot()
		sr := cl.pl.newSub(sl, subGet)
		cl.connFor(first, us).send(frame, sr, now)
		if st.shadow != nil {
			cl.shadowFrame(st, r.Keys, frame)
		}
		return
	}
	sl := cl.newSlot()
	sl.merge = mergeGet
	// Reuse the recycled slot's value buffers: an empty entry is a key not (yet) answered.
	if cap(sl.vals) < len(r.Keys) {
		sl.vals = append(sl.vals[:cap(sl.vals)], make([][]byte, len(r.Keys)-cap(sl.vals))...)
	}
	sl.vals = sl.vals[:len(r.Keys)]
	for i := range sl.vals {
		sl.vals[i] = sl.vals[i][:0]
	}
	// The command word and, for gat/gats, the exptime token precede the keys.
	prefixEnd := bytes.IndexByte(r.Line, ' ')
	prefix := r.Line[:prefixEnd]
	if r.Cmd == mcproto.CmdGat || r.Cmd == mcproto.CmdGats {
		prefix = append(append(append([]byte{}, prefix...), ' '), strconv.FormatInt(r.Exptime, 10)...)
	}
	// One sub-request per server, in the order the servers first appear; a pool has few servers, so a linear
	// search of the scratch list beats a map.
	subs := cl.subs[:0]
	for i, k := range r.Keys {
		idx := picks[i]
		var sr *subReq
		for _, s := range subs {
			if s.idx == idx {
				sr = s.sr
				break
			}
		}
		if sr == nil {
			sr = cl.pl.newSub(sl, subGet)
			sr.split = true
			sr.line = append(sr.line, prefix...)
			subs = append(subs, serverSub{idx: idx, sr: sr})
		}
		sr.keyHashes = append(sr.keyHashes, mcproto.FNVHasher{}.HashKey(k))
		sr.keyIdx = append(sr.keyIdx, i)
		sr.line = append(append(sr.line, ' '), k...)
	}
	for i, s := range subs {
		subs[i] = serverSub{}
		sr := s.sr
		us := cl.serverFor(st, s.idx)
		if us == nil {
			sl.fail("SERVER_ERROR no server available for the key")
			sl.subDone(now)
			cl.pl.release(sr)
			continue
		}
		sr.line = append(sr.line, '\r', '\n')
		cl.connFor(s.idx, us).send(sr.line, sr, now) // send copies the bytes
	}
	cl.subs = subs[:0]
	if st.shadow != nil {
		cl.shadowFrame(st, r.Keys, frame)
	}
}

// fanout sends flush_all or verbosity to every live server; the answer is OK or the first error.
func (cl *pclient) fanout(st *poolState, r *mcproto.Request, frame []byte, now int64) {
	sl := cl.newSlot()
	sl.merge = mergeFanout
	out := frame
	if r.Noreply {
		out = cl.stripToken(frame, r, []byte(" noreply"))
		sl.noreply = true
	}
	sent := 0
	for idx := range cl.pl.servers {
		us := cl.serverFor(st, idx)
		if us == nil || st.down[idx] {
			continue
		}
		sr := cl.pl.newSub(sl, subFanout)
		cl.connFor(idx, us).send(out, sr, now)
		sent++
	}
	if sent == 0 {
		sl.waiting = 1
		sl.fail("SERVER_ERROR no server available")
		sl.subDone(now)
	}
}

// stats answers the stats command with the proxy's own figures (pool mode does not forward it: which server's
// stats would be the answer?).
func (cl *pclient) stats() []byte {
	st := cl.pl.st
	var b []byte
	b = append(b, "STAT pid "...)
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "\r\nSTAT version "+versionString+"\r\nSTAT curr_connections "...)
	b = strconv.AppendInt(b, cl.s.conns.Load(), 10)
	b = append(b, "\r\nSTAT pool_servers "...)
	b = strconv.AppendInt(b, int64(len(st.servers)), 10)
	down := 0
	for _, d := range st.down {
		if d {
			down++
		}
	}
	b = append(b, "\r\nSTAT pool_servers_down "...)
	b = strconv.AppendInt(b, int64(down), 10)
	b = append(b, "\r\nEND\r\n"...)
	return b
}

// shadow copies a keyed request to the shadow pool when the key is selected; frame nil means the caller copies
// the whole frame itself (multi-gets).
func (cl *pclient) shadow(st *poolState, key, frame []byte) {
	if st.shadow == nil || frame == nil {
		return
	}
	if shadowHash(key) >= st.shadowBound {
		return
	}
	cl.sendShadow(st, st.shadow.Pick(key), frame)
}

// shadowHash selects keys for shadowing: 64-bit FNV-1a of the key finished with murmur3's fmix64, so that
// sequential key names spread evenly (plain FNV-1a's high bits do not) and the selection is unrelated to the
// recorder's keyed sampling. A key is copied when shadowHash(key) < fraction·2^64.
func shadowHash(key []byte) uint64 {
	h := mcproto.FNVHasher{}.HashKey(key)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// shadowFrame copies a multi-get to the shadow server of its first selected key.
func (cl *pclient) shadowFrame(st *poolState, keys [][]byte, frame []byte) {
	for _, k := range keys {
		if shadowHash(k) < st.shadowBound {
			cl.sendShadow(st, st.shadow.Pick(k), frame)
			return
		}
	}
}

func (cl *pclient) sendShadow(st *poolState, idx int, frame []byte) {
	if idx < 0 || idx >= len(cl.pl.shadows) {
		return
	}
	us := cl.pl.shadows[idx]
	if len(us.conns) == 0 && time.Since(us.lastErr) < time.Second {
		shadowDropped.Inc()
		return
	}
	uc := cl.pl.conn(us, cl.reqP.Protocol() == mcproto.ProtoBinary)
	buffered := len(uc.out)
	if uc.c != nil {
		buffered += uc.c.OutboundBuffered()
	}
	if buffered > st.cfg.Shadow.MaxBuffer {
		shadowDropped.Inc()
		return
	}
	uc.send(frame, nil, 0)
	shadowCopied.Inc()
}

// routeBinary routes a binary request by key; quiet opcodes go out loud and their suppressed answers are
// dropped here.
func (cl *pclient) routeBinary(st *poolState, r *mcproto.Request, frame []byte, now int64) {
	switch r.Cmd {
	case mcproto.CmdNoop:
		cl.local(binAnswer(r.Opcode, r.Opaque, 0, ""))
		return
	case mcproto.CmdVersion:
		cl.local(binAnswer(r.Opcode, r.Opaque, 0, versionString))
		return
	case mcproto.CmdQuit:
		if !r.Quiet {
			cl.local(binAnswer(r.Opcode, r.Opaque, 0, ""))
		}
		cl.quitting = true
		return
	case mcproto.CmdStats:
		cl.local(binAnswer(r.Opcode, r.Opaque, 0, ""))
		return
	}
	if len(r.Keys) == 0 || !r.Cmd.HasKey() {
		if r.Cmd == mcproto.CmdFlushAll || r.Cmd == mcproto.CmdVerbosity {
			cl.binaryFanout(st, r, frame, now)
			return
		}
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, mcproto.BinStatusUnknownCommand,
			"Unknown command"))
		return
	}
	idx := st.ring.Pick(r.Keys[0])
	us := cl.serverFor(st, idx)
	if us == nil {
		cl.local(mcproto.AppendBinaryError(nil, r.Opcode, r.Opaque, binStatusTemporaryFailure,
			"no server available for the key"))
		return
	}
	sl := cl.newSlot()
	sl.binary, sl.op, sl.opaque = true, r.Opcode, r.Opaque
	sr := cl.pl.newSub(sl, subSingle)
	out := frame
	if r.Quiet {
		loud, ok := mcproto.LoudOpcode(r.Opcode)
		if ok {
			out = append([]byte{}, frame...)
			out[1] = loud
			sr.restoreOp = r.Opcode + 1
			if r.Cmd == mcproto.CmdGet || r.Cmd == mcproto.CmdGat {
				sr.suppress = func(x *mcproto.Response) bool { return x.BinStatus == mcproto.BinStatusKeyNotFound }
			} else {
				sr.suppress = func(x *mcproto.Response) bool { return x.BinStatus == mcproto.BinStatusSuccess }
			}
		}
	}
	cl.connFor(idx, us).send(out, sr, now)
	cl.shadow(st, r.Keys[0], frame)
}

func (cl *pclient) binaryFanout(st *poolState, r *mcproto.Request, frame []byte, now int64) {
	sl := cl.newSlot()
	sl.binary, sl.op, sl.opaque = true, r.Opcode, r.Opaque
	out := frame
	if loud, ok := mcproto.LoudOpcode(r.Opcode); ok {
		out = append([]byte{}, frame...)
		out[1] = loud
		sl.noreply = true
	}
	sent := 0
	for idx := range cl.pl.servers {
		us := cl.serverFor(st, idx)
		if us == nil || st.down[idx] {
			continue
		}
		sr := cl.pl.newSub(sl, subSingle)
		sr.suppress = func(*mcproto.Response) bool { return true }
		cl.connFor(idx, us).send(out, sr, now)
		sent++
	}
	if !sl.noreply {
		sl.buf = binAnswer(r.Opcode, r.Opaque, 0, "")
	}
	if sent == 0 {
		sl.waiting = 1
		sl.fail("no server available")
		sl.subDone(now)
	}
}

// binAnswer builds a binary response with a value.
func binAnswer(op uint8, opaque uint32, status uint16, value string) []byte {
	b := mcproto.AppendBinaryError(nil, op, opaque, status, value)
	return b
}

// closedByClient runs in the client's OnClose, before gnet closes its fd. A client that half-closed its
// connection with answers still owed keeps its slots until they are written; otherwise it is retired at once.
func (cl *pclient) closedByClient(err error) {
	if cl.ep.closed {
		return
	}
	owed := !cl.retired && cl.head < len(cl.slots)
	if !cl.ep.observeClose(err, owed, cl.s.cfg.MaxClientBuffer, time.Duration(cl.s.cfg.DrainTimeout)) {
		cl.retire()
		return
	}
	cl.quitting = true
}

// retire takes the client out of the server's books; answers still arriving for it are dropped by flush.
func (cl *pclient) retire() {
	if cl.retired {
		return
	}
	cl.retired = true
	if cl.ep.drain != nil {
		cl.ep.close()
	}
	cl.balance() // forgets a pause
	account(&cl.acct, 0)
	cl.pairer.Close(time.Now().UnixNano())
	cl.inflight.Store(0)
	cl.s.connClosed()
	cl.s.mu.Lock()
	delete(cl.s.poolClients, cl.id)
	cl.s.mu.Unlock()
}

func tooLarge(pe *mcproto.ProtocolError) bool {
	return pe == mcproto.ErrTooLarge || pe == mcproto.BinTooLarge
}

// tooLarge answers a store whose value is over memcached's item size limit with memcached's reply, and
// reproduces the rest of what memcached does: a set (text set, meta ms in set mode, binary set) that cannot be
// stored unlinks the key's old item, so the pool deletes it before the reply goes out.
func (cl *pclient) tooLarge(st *poolState, r *mcproto.Request, reply []byte, now int64) {
	set := r.Cmd == mcproto.CmdSet && !r.HasCas || r.Cmd == mcproto.CmdMetaSet && (r.Mode == 0 || r.Mode == 'S' || r.Mode == 's')
	if !set || len(r.Keys) == 0 {
		if len(reply) > 0 {
			cl.local(reply)
		}
		return
	}
	key, ok := mcproto.DecodeKey(r.Keys[0], r.KeyBase64, cl.keyScratch())
	if !ok {
		key = r.Keys[0]
	}
	idx := st.ring.Pick(key)
	us := cl.serverFor(st, idx)
	if us == nil {
		if len(reply) > 0 {
			cl.local(reply)
		}
		return
	}
	sl := cl.newSlot()
	sl.buf = append(sl.buf, reply...)
	sr := cl.pl.newSub(sl, subSingle)
	sr.suppress = func(*mcproto.Response) bool { return true }
	var del []byte
	switch {
	case r.Proto == mcproto.ProtoBinary:
		del = make([]byte, 24, 24+len(key))
		del[0], del[1] = 0x80, 0x04 // DELETE, loud
		binary.BigEndian.PutUint16(del[2:], uint16(len(key)))
		binary.BigEndian.PutUint32(del[8:], uint32(len(key)))
		del = append(del, key...)
	case r.Cmd == mcproto.CmdMetaSet:
		del = append([]byte("md "), r.Keys[0]...)
		if r.KeyBase64 {
			del = append(del, " b"...)
		}
		del = append(del, '\r', '\n')
	default:
		del = append(append([]byte("delete "), key...), '\r', '\n')
	}
	localAnswers.Inc()
	cl.connFor(idx, us).send(del, sr, now)
}
