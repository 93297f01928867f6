// Conformance against a real memcached 1.6. Each session plays a script against a memcached started by
// internal/mctest and records both byte streams exactly; the recordings are then fed back through
// RequestParser, ResponseParser (whole and in small chunks) and Pairer, and every frame boundary, protocol
// error, response frame and pair must be the one the script was written for. The script states what
// memcached 1.6.18 answers, so a failure here is a place where mcproto and memcached disagree.
package mcproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// confPair is an expected pair.
type confPair struct {
	cmd   Command
	st    Status
	key   string // "" for a keyless pair; "?" when the key's hash is not checked (undecodable base64 key)
	vsize int
}

// confStep is one request frame of a script.
type confStep struct {
	req   string // the request's exact bytes; "$CAS" is replaced by the cas of the last gets/gats hit
	err   string // the *ProtocolError text the RequestParser must return, "" for none
	close bool   // the parser's error closes the connection (and memcached closes it)
	// unparsed is how many bytes at the end of req the parser leaves when its error closes the connection.
	unparsed int
	// resp lists the response frames memcached answers with: RespKind names for text and meta ("VALUE",
	// "END", "HD", "line", …), "op/status" in hex for binary ("00/0001"). A "*" suffix means one or more such
	// frames (for binary: with a key or value; the stat group's empty terminator is listed after it).
	resp  string
	pairs []confPair
	more  bool // pipelined: written in one write with the next step, no barrier in between
	eof   bool // memcached closes the connection after this step
	// stream: the connection turns into a one-way stream after this step (metadump); the group ends when the
	// response ends with "END\r\n" and no barrier is sent.
	stream bool
}

// confRec is a played session: the steps as sent (barriers added, placeholders filled) and both streams.
type confRec struct {
	bin     bool
	dialect Dialect // the server's, from its VERSION answer
	steps   []confStep
	reqs    []byte
	resps   []byte
	groups  []confGroup
}

// confGroup is steps [first, last] written together; their responses are resps[respStart:respEnd].
type confGroup struct {
	first, last        int
	respStart, respEnd int
}

var (
	confTextBarrier = confStep{req: "mn\r\n", resp: "MN", pairs: []confPair{{CmdMetaNoop, StatusOK, "", 0}}}
	confCasRE       = regexp.MustCompile(`VALUE \S+ \d+ \d+ (\d+)\r\n`)
)

// confBin builds a binary request.
func confBin(op uint8, key, ext, val string, opaque uint32) string {
	var h [24]byte
	h[0] = binReqMagic
	h[1] = op
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	h[4] = uint8(len(ext))
	binary.BigEndian.PutUint32(h[8:12], uint32(len(ext)+len(key)+len(val)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return string(h[:]) + ext + key + val
}

// confU32 and confU64 are big-endian extras.
func confU32(vs ...uint32) string {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return string(b)
}

func confU64(v uint64) string { return string(binary.BigEndian.AppendUint64(nil, v)) }

// confBinBarrier is a noop whose response ends a binary group.
func confBinBarrier(opaque uint32) (confStep, []byte) {
	s := confStep{req: confBin(binNoop, "", "", "", opaque), resp: "0a/0000",
		pairs: []confPair{{CmdNoop, StatusOK, "", 0}}}
	var h [24]byte
	h[0], h[1] = binRespMagic, binNoop
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return s, h[:]
}

// confPlay plays script against addr. Steps are written group by group, each group in one write: a run of
// steps with more set, the step ending it, and a barrier (a noop, or an mn unless the group ends with one;
// none when the connection ends or turns into a stream). A group's responses are read until the barrier's
// answer, EOF or the end of the stream, within a deadline.
func confPlay(t *testing.T, addr string, bin bool, script []confStep) *confRec {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot connect to memcached on %s: %v", addr, err)
	}
	defer c.Close()
	rec := &confRec{bin: bin, dialect: confDialect(t, addr)}
	cas := ""
	barrierOpaque := uint32(0xB0000000)
	rbuf := make([]byte, 64<<10)
	for i := 0; i < len(script); {
		g := confGroup{first: len(rec.steps), respStart: len(rec.resps)}
		var out []byte
		last := script[i]
		for ; i < len(script); i++ {
			s := script[i]
			s.req = strings.ReplaceAll(s.req, "$CAS", cas)
			rec.steps = append(rec.steps, s)
			out = append(out, s.req...)
			last = s
			if !s.more {
				i++
				break
			}
		}
		// The group's answers end with the barrier's: a noop with an opaque of its own, or the last of as many
		// MN as the group sent mn (memcached flushes its answers at each).
		var suffix []byte
		switch {
		case last.eof:
		case last.stream:
			suffix = []byte("END\r\n")
		case bin:
			barrierOpaque++
			s, resp := confBinBarrier(barrierOpaque)
			rec.steps = append(rec.steps, s)
			out = append(out, s.req...)
			suffix = resp
		default:
			if last.req != confTextBarrier.req {
				rec.steps = append(rec.steps, confTextBarrier)
				out = append(out, confTextBarrier.req...)
			}
			suffix = []byte("MN\r\n")
		}
		g.last = len(rec.steps) - 1
		mns := 0
		for _, s := range rec.steps[g.first:] {
			if !bin && s.req == confTextBarrier.req {
				mns++
			}
		}
		rec.reqs = append(rec.reqs, out...)
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(out)
			werr <- err
		}()
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatalf("cannot set a read deadline: %v", err)
		}
		for {
			n, err := c.Read(rbuf)
			rec.resps = append(rec.resps, rbuf[:n]...)
			got := rec.resps[g.respStart:]
			if suffix != nil && bytes.HasSuffix(got, suffix) &&
				(mns == 0 || bytes.Count(append([]byte("\n"), got...), []byte("\nMN\r\n")) >= mns) {
				break
			}
			if last.eof && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
				break
			}
			if err != nil {
				t.Fatalf("reading the answers to %q: %v; read so far: %q", confShort(out), err, confShort(got))
			}
		}
		if err := <-werr; err != nil && !last.eof {
			t.Fatalf("cannot write %q: %v", confShort(out), err)
		}
		g.respEnd = len(rec.resps)
		rec.groups = append(rec.groups, g)
		if m := confCasRE.FindAllSubmatch(rec.resps[g.respStart:], -1); len(m) > 0 {
			cas = string(m[len(m)-1][1])
		}
		if last.eof {
			break
		}
	}
	return rec
}

// confShort quotes at most 120 bytes of b.
func confShort[T string | []byte](b T) string {
	if len(b) > 120 {
		return fmt.Sprintf("%q…(%d bytes)", string(b[:120]), len(b))
	}
	return fmt.Sprintf("%q", string(b))
}

// confFrame is one frame found in a stream.
type confFrame struct {
	off, n int
	err    string // *ProtocolError text
	close  bool
	kind   string     // RespKind name, "op/status" for binary responses, Command name for requests
	detail confDetail // everything else the frame parsed to
}

// confDetail is what a request or response frame parsed to, comparable and cheap to build (the fuzz targets
// build one per frame).
type confDetail struct {
	proto                                 Protocol
	op                                    uint8
	nkeys                                 int
	keys, metaOpaque, line                string
	b64, hasValue, noreply, quiet, hasCas bool
	hasExp                                bool
	vlen, hdr, frame                      int
	flags, opaque                         uint32
	exp                                   int64
	mode                                  byte
	metaFlags                             uint64
	status                                uint16
}

func (d confDetail) String() string {
	return fmt.Sprintf("proto=%v op=%#x keys=%d:%q b64=%v vlen=%d/%v noreply=%v quiet=%v cas=%v flags=%d exp=%d/%v "+
		"opaque=%d/%q mode=%q meta=%#x status=%#x line=%q hdr=%d frame=%d", d.proto, d.op, d.nkeys, d.keys, d.b64,
		d.vlen, d.hasValue, d.noreply, d.quiet, d.hasCas, d.flags, d.exp, d.hasExp, d.opaque, d.metaOpaque, d.mode,
		d.metaFlags, d.status, d.line, d.hdr, d.frame)
}

// confEvery feeds chunk bytes at a time to confSplit (0: all at once).
func confEvery(chunk int) func(fed int) int {
	return func(fed int) int {
		if chunk <= 0 {
			return math.MaxInt
		}
		return fed + chunk
	}
}

// confSplit frames stream as a connection reader does: next(fed) says how far the bytes received reach after
// fed, and the parser sees the bytes received and not yet consumed. parse frames one frame of buf. It returns
// the frames, the bytes left unconsumed, and a broken parser contract (n out of range, success with n == 0,
// an error that is neither ErrIncomplete nor a *ProtocolError, or a non-closing error that consumes nothing).
func confSplit(stream []byte, next func(fed int) int, parse func(buf []byte) (int, error, string, confDetail)) (
	frames []confFrame, rest int, bad error) {
	off, fed := 0, 0
	for fed < len(stream) {
		fed = min(len(stream), max(fed+1, next(fed)))
		for off < fed {
			buf := stream[off:fed:fed]
			n, err, kind, detail := parse(buf)
			if n < 0 || n > len(buf) {
				return frames, len(stream) - off, fmt.Errorf("at offset %d: n=%d with %d bytes given", off, n, len(buf))
			}
			if err == ErrIncomplete {
				if n != 0 {
					return frames, len(stream) - off, fmt.Errorf("at offset %d: n=%d with ErrIncomplete", off, n)
				}
				break
			}
			f := confFrame{off: off, n: n, kind: kind, detail: detail}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					return frames, len(stream) - off, fmt.Errorf("at offset %d: error %v is not a *ProtocolError", off, err)
				}
				f.err, f.close = pe.Text, pe.Close
			} else if n == 0 {
				return frames, len(stream) - off, fmt.Errorf("at offset %d: success with n=0", off)
			}
			frames = append(frames, f)
			off += n
			if f.close {
				return frames, len(stream) - off, nil
			}
			if n == 0 {
				return frames, len(stream) - off, fmt.Errorf("at offset %d: error %q consumed nothing but does not close", off, f.err)
			}
		}
	}
	return frames, len(stream) - off, nil
}

// confParseRequest and confParseResponse adapt the parsers to confSplit.
func confParseRequest(p *RequestParser, r *Request) func([]byte) (int, error, string, confDetail) {
	return func(buf []byte) (int, error, string, confDetail) {
		n, err := p.Parse(buf, r)
		if err == ErrIncomplete {
			return n, err, "", confDetail{}
		}
		return n, err, r.Cmd.String(), confReqDetail(r)
	}
}

func confReqDetail(r *Request) confDetail {
	var keys []byte
	for i, k := range r.Keys {
		if i > 0 {
			keys = append(keys, ' ')
		}
		keys = append(keys, k...)
	}
	return confDetail{proto: r.Proto, op: r.Opcode, nkeys: len(r.Keys), keys: string(keys), b64: r.KeyBase64,
		vlen: r.ValueLen, hasValue: r.HasValue, noreply: r.Noreply, quiet: r.Quiet, hasCas: r.HasCas, flags: r.Flags,
		exp: r.Exptime, hasExp: r.HasExptime, opaque: r.Opaque, metaOpaque: string(r.MetaOpaque), mode: r.Mode,
		metaFlags: r.MetaFlags, hdr: r.HeaderLen, frame: r.FrameLen}
}

func confParseResponse(p *ResponseParser, r *Response) func([]byte) (int, error, string, confDetail) {
	return func(buf []byte) (int, error, string, confDetail) {
		n, err := p.Parse(buf, r)
		if err == ErrIncomplete {
			return n, err, "", confDetail{}
		}
		return n, err, confRespKind(r), confRespDetail(r)
	}
}

func confRespKind(r *Response) string {
	if r.Kind == RespBinary {
		const hex = "0123456789abcdef"
		s := r.BinStatus
		return string([]byte{hex[r.Opcode>>4], hex[r.Opcode&15], '/', hex[s>>12], hex[s>>8&15], hex[s>>4&15], hex[s&15]})
	}
	return r.Kind.String()
}

func confRespDetail(r *Response) confDetail {
	return confDetail{proto: r.Proto, op: r.Opcode, keys: string(r.Key), b64: r.KeyBase64, flags: r.Flags,
		vlen: r.ValueLen, hasValue: r.HasValue, hasCas: r.HasCas, opaque: r.Opaque, metaOpaque: string(r.MetaOpaque),
		status: r.BinStatus, line: string(r.Line), hdr: r.HeaderLen, frame: r.FrameLen}
}

// confChunks are the read sizes the recordings are replayed with (0: all at once).
func confChunks(stream []byte) []int {
	if len(stream) > 1<<20 {
		return []int{0, 7, 4096} // byte by byte through megabytes only costs time
	}
	return []int{0, 1, 7, 4096}
}

// confCheck replays rec through the parsers and the Pairer.
func confCheck(t *testing.T, rec *confRec) {
	t.Helper()
	stepAt := make(map[int]int) // request offset → step
	off := 0
	for i, s := range rec.steps {
		stepAt[off] = i
		off += len(s.req)
	}
	if off != len(rec.reqs) {
		t.Fatalf("BUG: steps hold %d bytes, the recording %d", off, len(rec.reqs))
	}

	// Requests: one frame per step, with the step's error, whatever the read size.
	var whole []confFrame
	for _, chunk := range confChunks(rec.reqs) {
		var r Request
		frames, rest, bad := confSplit(rec.reqs, confEvery(chunk), confParseRequest(&RequestParser{Dialect: rec.dialect}, &r))
		if bad != nil {
			t.Errorf("requests read %d bytes at a time: %v", chunk, bad)
		}
		if chunk == 0 {
			whole = frames
			if rest != 0 && (len(frames) == 0 || !frames[len(frames)-1].close) {
				t.Errorf("requests: %d bytes left over after %d frames", rest, len(frames))
			}
		} else {
			confSameFrames(t, "requests", chunk, whole, frames)
		}
	}
	off = 0
	for i, s := range rec.steps {
		if i >= len(whole) {
			t.Errorf("step %d %s: no request frame (parser stopped after %d frames)", i, confShort(s.req), len(whole))
			break
		}
		f := whole[i]
		wantN := len(s.req) - s.unparsed
		if f.off != off || f.n != wantN || f.err != s.err || f.close != s.close {
			t.Errorf("step %d %s: request frame at %d of %d bytes, error %q close=%v; want at %d, %d bytes, error %q "+
				"close=%v (%s %s)", i, confShort(s.req), f.off, f.n, f.err, f.close, off, wantN, s.err, s.close, f.kind,
				f.detail)
			if f.off != off {
				return // the boundaries went astray; everything after would fail too
			}
		}
		off += len(s.req)
		if f.close {
			break
		}
	}

	// Responses: the same frames whatever the read size, then matched against the script.
	var resps []confFrame
	for _, chunk := range confChunks(rec.resps) {
		var r Response
		frames, rest, bad := confSplit(rec.resps, confEvery(chunk), confParseResponse(&ResponseParser{}, &r))
		if bad != nil {
			t.Errorf("responses read %d bytes at a time: %v", chunk, bad)
		}
		if chunk == 0 {
			resps = frames
			if rest != 0 {
				t.Errorf("responses: %d bytes left over after %d frames: %s", rest, len(frames),
					confShort(rec.resps[len(rec.resps)-rest:]))
			}
		} else {
			confSameFrames(t, "responses", chunk, resps, frames)
		}
	}
	for _, f := range resps {
		if f.err != "" || f.close {
			t.Errorf("response frame at %d: error %q close=%v: %s", f.off, f.err, f.close, f.detail)
		}
	}
	// Each group's frames answer its steps, in order.
	fi := 0
	for _, g := range rec.groups {
		for i := g.first; i <= g.last; i++ {
			s := rec.steps[i]
			first := fi
			next, why := confMatch(s.resp, resps, fi, g.respEnd)
			if why != "" {
				t.Errorf("step %d %s: responses %q: %s", i, confShort(s.req), s.resp, why)
			}
			fi = next
			// A protocol error the parser reports is the line memcached answers with.
			if why == "" && s.err != "" && !s.close && next > first && !rec.bin {
				if got := confLine(rec.resps, resps[first]); got != s.err {
					t.Errorf("step %d %s: parser error %q, memcached answered %q", i, confShort(s.req), s.err, got)
				}
			}
		}
		for ; fi < len(resps) && resps[fi].off < g.respEnd; fi++ {
			t.Errorf("steps %d-%d: response frame no step asked for: %s %s", g.first, g.last, resps[fi].kind,
				resps[fi].detail)
		}
	}

	// Pairs: fed group by group (a pipelining client) and all requests first (a tap that sees the requests
	// of a whole recording before its answers). A recording that ends in a closing parser error is left out:
	// its caller drops the connection instead of registering the request.
	for _, s := range rec.steps {
		if s.close {
			return
		}
	}
	for _, mode := range []string{"group", "all"} {
		confCheckPairs(t, rec, mode)
	}
}

// confLine returns the first line of frame f without "\r\n".
func confLine(stream []byte, f confFrame) string {
	b := stream[f.off : f.off+f.n]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimSuffix(b, []byte("\r")))
}

func confSameFrames(t *testing.T, what string, chunk int, want, got []confFrame) bool {
	t.Helper()
	for i := 0; i < len(want) || i < len(got); i++ {
		if i >= len(want) || i >= len(got) || want[i] != got[i] {
			var w, g confFrame
			if i < len(want) {
				w = want[i]
			}
			if i < len(got) {
				g = got[i]
			}
			t.Errorf("%s read %d bytes at a time: frame %d is %+v, read whole it is %+v", what, chunk, i, g, w)
			return false
		}
	}
	return true
}

// confMatch matches the response spec of one step against the frames from index i that start before
// offset end, and returns the index after them, or why they do not match (skipping the group's frames then).
func confMatch(spec string, frames []confFrame, i, end int) (int, string) {
	skip := func() int {
		for i < len(frames) && frames[i].off < end {
			i++
		}
		return i
	}
	for _, tok := range strings.Fields(spec) {
		many := strings.HasSuffix(tok, "*")
		tok = strings.TrimSuffix(tok, "*")
		n := 0
		for i < len(frames) && frames[i].off < end && frames[i].kind == tok && (n == 0 || many) {
			if many && strings.Contains(tok, "/") && frames[i].n <= binHeaderLen {
				break // the empty terminator of a binary stat group
			}
			i++
			n++
		}
		if n == 0 {
			if i >= len(frames) || frames[i].off >= end {
				return skip(), fmt.Sprintf("want %s, the group's answers ended", tok)
			}
			why := fmt.Sprintf("want %s, got %s (%s)", tok, frames[i].kind, frames[i].detail)
			return skip(), why
		}
	}
	return i, ""
}

// confCheckPairs feeds the recording to a Pairer and compares its pairs with the script's.
func confCheckPairs(t *testing.T, rec *confRec, mode string) {
	t.Helper()
	var got []Pair
	pr := &Pairer{Hasher: FNVHasher{}, Emit: func(p *Pair) { got = append(got, *p) }}
	rp, sp := &RequestParser{Dialect: rec.dialect}, &ResponseParser{}
	var req Request
	var resp Response
	reqOff := 0
	feedReqs := func(g confGroup) {
		for i := g.first; i <= g.last; i++ {
			n, err := rp.Parse(rec.reqs[reqOff:], &req)
			var pe *ProtocolError
			if err != nil && (!errors.As(err, &pe) || pe.Close) {
				return
			}
			pr.Request(&req, int64(i))
			reqOff += n
		}
	}
	feedResps := func(g confGroup) {
		b := rec.resps[g.respStart:g.respEnd]
		for len(b) > 0 {
			n, err := sp.Parse(b, &resp)
			if err != nil {
				t.Errorf("%s: response at %d: %v", mode, g.respEnd-len(b), err)
				return
			}
			pr.Response(&resp, int64(g.last), true)
			b = b[n:]
		}
	}
	if mode == "all" {
		for _, g := range rec.groups {
			feedReqs(g)
		}
		for _, g := range rec.groups {
			feedResps(g)
		}
	} else {
		for _, g := range rec.groups {
			feedReqs(g)
			feedResps(g)
		}
	}
	pr.Close(int64(len(rec.steps)))
	// Pairs carry their step as ReqTime; within a step they keep their order (the keys of a multi-get).
	sort.SliceStable(got, func(i, j int) bool { return got[i].ReqTime < got[j].ReqTime })
	gi := 0
	for i, s := range rec.steps {
		for _, w := range s.pairs {
			if gi >= len(got) || got[gi].ReqTime != int64(i) {
				t.Errorf("%s: step %d %s: no pair for %v %v %q", mode, i, confShort(s.req), w.cmd, w.st, confShort(w.key))
				continue
			}
			if why := confPairDiff(&got[gi], w); why != "" {
				t.Errorf("%s: step %d %s: %s", mode, i, confShort(s.req), why)
			}
			gi++
		}
		for gi < len(got) && got[gi].ReqTime == int64(i) {
			t.Errorf("%s: step %d %s: unexpected pair %v %v key=%v vsize=%d", mode, i, confShort(s.req), got[gi].Cmd,
				got[gi].Status, got[gi].HasKey, got[gi].ValueSize)
			gi++
		}
	}
	for ; gi < len(got); gi++ {
		t.Errorf("%s: pair for no step: %+v", mode, got[gi])
	}
	st := pr.Stats
	if st.Orphans != 0 || st.Mismatched != 0 || st.Lost != 0 || st.Overflow != 0 || pr.Pending() != 0 {
		t.Errorf("%s: pairer stats %+v, pending %d; want no orphans, mismatches, lost or pending", mode, st, pr.Pending())
	}
}

func confPairDiff(p *Pair, w confPair) string {
	var diffs []string
	if p.Cmd != w.cmd {
		diffs = append(diffs, fmt.Sprintf("cmd %v, want %v", p.Cmd, w.cmd))
	}
	if p.Status != w.st {
		diffs = append(diffs, fmt.Sprintf("status %v, want %v", p.Status, w.st))
	}
	switch {
	case w.key == "":
		if p.HasKey {
			diffs = append(diffs, "has a key, want none")
		}
	case w.key == "?":
		if !p.HasKey {
			diffs = append(diffs, "has no key")
		}
	default:
		if !p.HasKey || p.KeyHash != (FNVHasher{}).HashKey([]byte(w.key)) || int(p.KeySize) != len(w.key) {
			diffs = append(diffs, fmt.Sprintf("key hash %#x size %d (has %v), want key %s", p.KeyHash, p.KeySize, p.HasKey,
				confShort(w.key)))
		}
	}
	if int(p.ValueSize) != w.vsize {
		diffs = append(diffs, fmt.Sprintf("value size %d, want %d", p.ValueSize, w.vsize))
	}
	return strings.Join(diffs, "; ")
}

// confDialect asks the memcached at addr for its version, on a connection of its own.
func confDialect(t *testing.T, addr string) Dialect {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot connect to memcached on %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatalf("cannot ask memcached on %s for its version: %v", addr, err)
	}
	buf := make([]byte, 128)
	n, err := io.ReadAtLeast(c, buf, len("VERSION 1.6.0\r\n"))
	if err != nil {
		t.Fatalf("cannot read memcached's version from %s: %v", addr, err)
	}
	d, err := ParseVersion(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConformance plays text, meta and binary sessions against memcached and checks parsers and Pairer
// against what it answered.
func TestConformance(t *testing.T) {
	srv := mctest.StartMemcached(t)
	f := func(name string, bin bool, script []confStep) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			rec := confPlay(t, srv.Addr, bin, script)
			confCheck(t, rec)
		})
	}
	f("text", false, confTextScript())
	f("meta", false, confMetaScript())
	f("big", false, confBigScript())
	f("binary", true, confBinaryScript())
	f("metadump", false, []confStep{
		{req: "set md1 0 0 1\r\nx\r\n", resp: "STORED", pairs: []confPair{{CmdSet, StatusStored, "md1", 1}}},
		// The crawler takes the connection over: key=… lines ending in "\n" only, then END.
		{req: "lru_crawler metadump all\r\n", resp: "line* END", pairs: []confPair{{CmdLruCrawler, StatusOK, "", 0}},
			stream: true},
	})
	// memcached 1.6 has no binary verbosity: like any opcode it does not know, it answers 0x0081 and then
	// skips bodylen bytes past the extras and key, here the 4 bytes after the extras.
	f("binary-unknown-opcode", true, []confStep{
		{req: confBin(binVerbosity, "", confU32(0), "", 1) + "XXXX", resp: "1b/0081",
			pairs: []confPair{{CmdVerbosity, StatusError, "", 0}}},
		{req: confBin(0x42, "k", "", "v", 2) + "X", resp: "42/0081", pairs: []confPair{{CmdOther, StatusError, "", 0}}},
	})
	// Requests after which memcached closes the connection.
	k251 := strings.Repeat("k", 251)
	f("close/binary-bad-magic", true, []confStep{
		{req: confBin(binNoop, "", "", "", 1), resp: "0a/0000", pairs: []confPair{{CmdNoop, StatusOK, "", 0}}, more: true},
		{req: "\x00" + confBin(binNoop, "", "", "", 2)[1:], close: true, unparsed: 24, eof: true},
	})
	f("close/binary-key-251", true, []confStep{
		{req: confBin(binGet, k251, "", "", 1), close: true, resp: "00/0004", eof: true},
	})
	keyBeyondBody := confBin(binGet, "0123456789", "", "", 1)
	keyBeyondBody = keyBeyondBody[:8] + "\x00\x00\x00\x05" + keyBeyondBody[12:] // key length 10, body length 5
	f("close/binary-key-beyond-body", true, []confStep{
		{req: keyBeyondBody, close: true, unparsed: 10, resp: "00/0081", eof: true},
	})
	// memcached checks each opcode's extras, key and body lengths and closes on a mismatch (invalid
	// arguments): here an incr without its 20 bytes of extras.
	f("close/binary-incr-without-extras", true, []confStep{
		{req: confBin(binIncr, "ctr", "", "", 1), err: "", close: true, resp: "05/0004", eof: true},
	})
	f("close/text-line-too-long", false, []confStep{
		{req: "set " + strings.Repeat("a", 3000), err: ErrLineTooLong.Text, close: true, unparsed: 3004, eof: true},
	})
	f("close/text-http", false, []confStep{
		// memcached closes without a word when an unknown command's last token starts with "HTTP/".
		{req: "GET / HTTP/1.1\r\n", close: true, eof: true},
	})
}

// confTextScript exercises every text command family.
func confTextScript() []confStep {
	k250, k251 := strings.Repeat("k", 250), strings.Repeat("k", 251)
	type P = []confPair
	return []confStep{
		// Pipelined stores and multi-key gets with hits and misses; a value holding "\r\nEND\r\n".
		{req: "flush_all\r\n", resp: "OK", pairs: P{{CmdFlushAll, StatusOK, "", 0}}, more: true},
		{req: "set foo 1 0 3\r\nbar\r\n", resp: "STORED", pairs: P{{CmdSet, StatusStored, "foo", 3}}, more: true},
		{req: "set baz 0 0 5 noreply\r\nhello\r\n", pairs: P{{CmdSet, StatusNoneExpected, "baz", 5}}, more: true},
		{req: "set tricky 0 100 7\r\n\r\nEND\r\n\r\n", resp: "STORED", pairs: P{{CmdSet, StatusStored, "tricky", 7}},
			more: true},
		{req: "get foo nope baz tricky\r\n", resp: "VALUE VALUE VALUE END", pairs: P{{CmdGet, StatusHit, "foo", 3},
			{CmdGet, StatusMiss, "nope", 0}, {CmdGet, StatusHit, "baz", 5}, {CmdGet, StatusHit, "tricky", 7}},
			more: true},
		{req: "gets foo\r\n", resp: "VALUE END", pairs: P{{CmdGets, StatusHit, "foo", 3}}, more: true},
		{req: "get  nope  nope2 \r\n", resp: "END", pairs: P{{CmdGet, StatusMiss, "nope", 0},
			{CmdGet, StatusMiss, "nope2", 0}}},

		// One at a time: add, replace, append, prepend.
		{req: "add foo 0 0 1\r\nx\r\n", resp: "NOT_STORED", pairs: P{{CmdAdd, StatusNotStored, "foo", 1}}},
		{req: "add new 0 0 1\r\nx\r\n", resp: "STORED", pairs: P{{CmdAdd, StatusStored, "new", 1}}},
		{req: "replace foo 0 0 4\r\nfoo2\r\n", resp: "STORED", pairs: P{{CmdReplace, StatusStored, "foo", 4}}},
		{req: "replace nope 0 0 1\r\nx\r\n", resp: "NOT_STORED", pairs: P{{CmdReplace, StatusNotStored, "nope", 1}}},
		{req: "append foo 0 0 2\r\n++\r\n", resp: "STORED", pairs: P{{CmdAppend, StatusStored, "foo", 2}}},
		{req: "prepend foo 0 0 2\r\n--\r\n", resp: "STORED", pairs: P{{CmdPrepend, StatusStored, "foo", 2}}},
		{req: "append nope 0 0 1 noreply\r\nx\r\n", pairs: P{{CmdAppend, StatusNoneExpected, "nope", 1}}},
		{req: "prepend nope 0 0 1\r\nx\r\n", resp: "NOT_STORED", pairs: P{{CmdPrepend, StatusNotStored, "nope", 1}}},
		{req: "get foo\r\n", resp: "VALUE END", pairs: P{{CmdGet, StatusHit, "foo", 8}}},

		// cas: the unique from gets, a stale one, a missing key, noreply.
		{req: "gets foo\r\n", resp: "VALUE END", pairs: P{{CmdGets, StatusHit, "foo", 8}}},
		{req: "cas foo 0 0 3 $CAS\r\nnew\r\n", resp: "STORED", pairs: P{{CmdCas, StatusStored, "foo", 3}}, more: true},
		{req: "cas foo 0 0 1 $CAS\r\nx\r\n", resp: "EXISTS", pairs: P{{CmdCas, StatusExists, "foo", 1}}, more: true},
		{req: "cas nope 0 0 1 1\r\nx\r\n", resp: "NOT_FOUND", pairs: P{{CmdCas, StatusNotFound, "nope", 1}}, more: true},
		{req: "cas foo 0 0 1 1 noreply\r\nx\r\n", pairs: P{{CmdCas, StatusNoneExpected, "foo", 1}}, more: true},
		{req: "cas foo 0 0 1\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdCas, StatusError, "", 0}}, more: true},
		// The data line of a rejected command line is read as a command.
		{req: "x\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}},

		// delete.
		{req: "delete foo\r\n", resp: "DELETED", pairs: P{{CmdDelete, StatusDeleted, "foo", 0}}, more: true},
		{req: "delete foo\r\n", resp: "NOT_FOUND", pairs: P{{CmdDelete, StatusNotFound, "foo", 0}}, more: true},
		{req: "delete new noreply\r\n", pairs: P{{CmdDelete, StatusNoneExpected, "new", 0}}, more: true},
		{req: "delete x 0\r\n", resp: "NOT_FOUND", pairs: P{{CmdDelete, StatusNotFound, "x", 0}}, more: true},
		{req: "delete x 5\r\n", err: errDeleteUsage.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdDelete, StatusClientError, "x", 0}}, more: true},
		{req: "delete x 5 noreply\r\n", err: errDeleteUsage.Text, pairs: P{{CmdDelete, StatusNoneExpected, "x", 0}},
			more: true},
		{req: "delete\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdDelete, StatusError, "", 0}}},

		// incr and decr.
		{req: "incr ctr 1\r\n", resp: "NOT_FOUND", pairs: P{{CmdIncr, StatusNotFound, "ctr", 0}}, more: true},
		{req: "set ctr 0 0 2\r\n10\r\n", resp: "STORED", pairs: P{{CmdSet, StatusStored, "ctr", 2}}, more: true},
		{req: "incr ctr 5\r\n", resp: "number", pairs: P{{CmdIncr, StatusOK, "ctr", 0}}, more: true},
		{req: "decr ctr 100\r\n", resp: "number", pairs: P{{CmdDecr, StatusOK, "ctr", 0}}, more: true},
		{req: "incr ctr 7 noreply\r\n", pairs: P{{CmdIncr, StatusNoneExpected, "ctr", 0}}, more: true},
		{req: "incr ctr abc\r\n", err: errInvalidDelta.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdIncr, StatusClientError, "ctr", 0}}, more: true},
		{req: "incr ctr 99999999999999999999\r\n", err: errInvalidDelta.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdIncr, StatusClientError, "ctr", 0}}, more: true},
		{req: "incr baz 1\r\n", resp: "CLIENT_ERROR", pairs: P{{CmdIncr, StatusClientError, "baz", 0}}, more: true},
		{req: "decr ctr\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdDecr, StatusError, "", 0}}},

		// touch, gat, gats.
		{req: "touch baz 100\r\n", resp: "TOUCHED", pairs: P{{CmdTouch, StatusTouched, "baz", 0}}, more: true},
		{req: "touch nope 100\r\n", resp: "NOT_FOUND", pairs: P{{CmdTouch, StatusNotFound, "nope", 0}}, more: true},
		{req: "touch baz abc\r\n", err: errInvalidExptime.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdTouch, StatusClientError, "baz", 0}}, more: true},
		{req: "touch baz 0 noreply\r\n", pairs: P{{CmdTouch, StatusNoneExpected, "baz", 0}}, more: true},
		{req: "gat 100 baz nope\r\n", resp: "VALUE END", pairs: P{{CmdGat, StatusHit, "baz", 5},
			{CmdGat, StatusMiss, "nope", 0}}, more: true},
		{req: "gats 0 baz\r\n", resp: "VALUE END", pairs: P{{CmdGats, StatusHit, "baz", 5}}, more: true},
		{req: "gat abc baz\r\n", err: errInvalidExptime.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdGat, StatusClientError, "", 0}}, more: true},
		{req: "gets\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdGets, StatusError, "", 0}}},
		// gat with an exptime and no key is a get of nothing: END.
		{req: "gat 100\r\n", resp: "END", pairs: P{{CmdGat, StatusMiss, "", 0}}},

		// Malformed commands.
		{req: "\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}, more: true},
		{req: "bogus_command arg\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}, more: true},
		{req: "get\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdGet, StatusError, "", 0}}, more: true},
		{req: "set k 0 0 -1\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdSet, StatusClientError, "k", 0}}, more: true},
		{req: "set k 0 0 -1 noreply\r\n", err: ErrBadFormat.Text, pairs: P{{CmdSet, StatusNoneExpected, "k", 0}},
			more: true},
		{req: "set kk 0 0 x\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdSet, StatusClientError, "kk", 0}}, more: true},
		{req: "set k 0 0\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdSet, StatusError, "", 0}}, more: true},
		// A data block without its "\r\n": memcached reads 3+2 bytes, rejects them, and reads on from there.
		{req: "set k 0 0 3\r\nabcde", err: ErrBadDataChunk.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdSet, StatusClientError, "k", 3}}, more: true},
		{req: "\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}},

		// Keys of 250 and 251 bytes. A 251-byte key rejects the line; the data block is then a command.
		{req: "set " + k250 + " 0 0 1\r\nx\r\n", resp: "STORED", pairs: P{{CmdSet, StatusStored, k250, 1}}, more: true},
		{req: "get " + k250 + "\r\n", resp: "VALUE END", pairs: P{{CmdGet, StatusHit, k250, 1}}, more: true},
		{req: "set " + k251 + " 0 0 1\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdSet, StatusClientError, k251, 0}}, more: true},
		{req: "x\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}, more: true},
		{req: "delete " + k251 + "\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdDelete, StatusClientError, k251, 0}}, more: true},
		{req: "incr " + k251 + " 1\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdIncr, StatusClientError, k251, 0}}, more: true},
		{req: "touch " + k251 + " 1\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdTouch, StatusClientError, k251, 0}}, more: true},
		{req: "mg " + k251 + " v\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, k251, 0}}},
		// A get with a 251-byte key answers CLIENT_ERROR instead of everything not yet sent on the connection
		// (memcached culls its queued responses), so each starts a write of its own: the hit on k250 is dropped.
		{req: "get " + k250 + " " + k251 + " foo\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdGet, StatusClientError, k250, 0}}},
		{req: "gets nope " + k251 + "\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdGets, StatusClientError, "nope", 0}}},

		// Admin commands.
		{req: "version\r\n", resp: "VERSION", pairs: P{{CmdVersion, StatusOK, "", 0}}, more: true},
		{req: "verbosity 0\r\n", resp: "OK", pairs: P{{CmdVerbosity, StatusOK, "", 0}}, more: true},
		{req: "verbosity 0 noreply\r\n", pairs: P{{CmdVerbosity, StatusNoneExpected, "", 0}}, more: true},
		{req: "cache_memlimit 1024\r\n", resp: "OK", pairs: P{{CmdCacheMemlimit, StatusOK, "", 0}}, more: true},
		{req: "slabs automove 1\r\n", resp: "OK", pairs: P{{CmdSlabs, StatusOK, "", 0}}, more: true},
		{req: "slabs automove 1 noreply\r\n", pairs: P{{CmdSlabs, StatusNoneExpected, "", 0}}, more: true},
		{req: "slabs reassign 99 1\r\n", resp: "line", pairs: P{{CmdSlabs, StatusOK, "", 0}}, more: true},
		{req: "lru_crawler sleep 100\r\n", resp: "OK", pairs: P{{CmdLruCrawler, StatusOK, "", 0}}, more: true},
		{req: "lru_crawler bogus\r\n", resp: "ERROR", pairs: P{{CmdLruCrawler, StatusError, "", 0}}, more: true},
		{req: "lru bogus\r\n", resp: "ERROR", pairs: P{{CmdLru, StatusError, "", 0}}, more: true},
		{req: "stats\r\n", resp: "STAT* END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats slabs\r\n", resp: "STAT* END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats settings\r\n", resp: "STAT* END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats items\r\n", resp: "STAT* END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats sizes\r\n", resp: "STAT* END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats cachedump 1 1\r\n", resp: "line END", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "stats detail\r\n", resp: "CLIENT_ERROR", pairs: P{{CmdStats, StatusClientError, "", 0}}, more: true},
		{req: "stats bogus\r\n", resp: "ERROR", pairs: P{{CmdStats, StatusError, "", 0}}, more: true},
		{req: "stats reset\r\n", resp: "line", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: "shutdown\r\n", resp: "ERROR", pairs: P{{CmdShutdown, StatusError, "", 0}}},
		// Token counts memcached's dispatcher checks before the command runs.
		{req: "verbosity\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdVerbosity, StatusError, "", 0}}},
		{req: "cache_memlimit\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdCacheMemlimit, StatusError, "", 0}}},
		{req: "lru\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdLru, StatusError, "", 0}}},
		{req: "flush_all 0 noreply extra\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdFlushAll, StatusError, "", 0}}},
		// Commands that answer although they end in "noreply".
		{req: "version noreply\r\n", resp: "VERSION", pairs: P{{CmdVersion, StatusOK, "", 0}}},
		{req: "stats noreply\r\n", resp: "ERROR", pairs: P{{CmdStats, StatusError, "", 0}}},

		// flush_all last, then quit.
		{req: "flush_all 0\r\n", resp: "OK", pairs: P{{CmdFlushAll, StatusOK, "", 0}}, more: true},
		{req: "flush_all noreply\r\n", pairs: P{{CmdFlushAll, StatusNoneExpected, "", 0}}, more: true},
		{req: "get foo baz\r\n", resp: "END", pairs: P{{CmdGet, StatusMiss, "foo", 0}, {CmdGet, StatusMiss, "baz", 0}}},
		{req: "quit\r\n", pairs: P{{CmdQuit, StatusNoneExpected, "", 0}}, eof: true},
	}
}

// confMetaScript exercises the meta commands.
func confMetaScript() []confStep {
	type P = []confPair
	o32 := "O" + strings.Repeat("o", 32)
	return []confStep{
		// ms with F/T, mg with v/k/O/f/s/t/c, a quiet batch ended by mn.
		{req: "ms m1 3 F5 T100\r\nabc\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m1", 3}}, more: true},
		{req: "mg m1 v k O123 f s t c\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m1", 3}}, more: true},
		{req: "mg m2 v k O9 q\r\n", pairs: P{{CmdMetaGet, StatusMiss, "m2", 0}}, more: true},
		{req: "mg m1 v q k\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m1", 3}}, more: true},
		{req: "mg m1 s t\r\n", resp: "HD", pairs: P{{CmdMetaGet, StatusHit, "m1", 0}}, more: true},
		{req: "mg m2\r\n", resp: "EN", pairs: P{{CmdMetaGet, StatusMiss, "m2", 0}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},

		// Base64 keys.
		{req: "mg m1 b\r\n", err: ErrMetaKeyDecode.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "?", 0}}},
		{req: "mg bTE= b k v\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m1", 3}}},
		{req: "ms bTI= 2 b\r\nhi\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m2", 2}}},
		{req: "mg m2 s v\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m2", 2}}},

		// ms modes, invalidation, quiet; a quiet request's answer is told apart by its opaque.
		{req: "ms m1 3 MA q\r\ndef\r\n", pairs: P{{CmdMetaSet, StatusStored, "m1", 3}}, more: true},
		{req: "ms m1 2 ME O1\r\nzz\r\n", resp: "NS", pairs: P{{CmdMetaSet, StatusNotStored, "m1", 2}}, more: true},
		{req: "ms m3 2 I\r\nqq\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m3", 2}}, more: true},
		{req: "ms m1 2 MP I\r\n12\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m1", 2}}, more: true},
		{req: "ms m1 2 MR\r\nxx\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m1", 2}}, more: true},
		{req: "ms m9 2 MR q O5\r\nxx\r\n", resp: "NS", pairs: P{{CmdMetaSet, StatusNotStored, "m9", 2}}, more: true},
		{req: "ms m1 2 MS q T0\r\nxy\r\n", pairs: P{{CmdMetaSet, StatusStored, "m1", 2}}, more: true},
		{req: "mg m1 v\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m1", 2}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},

		// md with q and I.
		{req: "md m1 q\r\n", pairs: P{{CmdMetaDelete, StatusDeleted, "m1", 0}}, more: true},
		{req: "md m1 q O3\r\n", resp: "NF", pairs: P{{CmdMetaDelete, StatusNotFound, "m1", 0}}, more: true},
		{req: "md m1\r\n", resp: "NF", pairs: P{{CmdMetaDelete, StatusNotFound, "m1", 0}}, more: true},
		{req: "ms m1 2\r\nxx\r\n", resp: "HD", pairs: P{{CmdMetaSet, StatusStored, "m1", 2}}, more: true},
		{req: "md m1 I\r\n", resp: "HD", pairs: P{{CmdMetaDelete, StatusDeleted, "m1", 0}}, more: true},
		{req: "mg m1 v\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m1", 2}}, more: true},
		{req: "md m1 q k\r\n", pairs: P{{CmdMetaDelete, StatusDeleted, "m1", 0}}, more: true},
		{req: "md m1x q k\r\n", resp: "NF", pairs: P{{CmdMetaDelete, StatusNotFound, "m1x", 0}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},

		// ma with N/J/D/M/v/q.
		{req: "ma n1\r\n", resp: "NF", pairs: P{{CmdMetaArithmetic, StatusNotFound, "n1", 0}}, more: true},
		{req: "ma n1 N0 J10 v\r\n", resp: "VA", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		{req: "ma n1 v\r\n", resp: "VA", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		{req: "ma n1 MD D3 v\r\n", resp: "VA", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		{req: "ma n1 M- D100 v q O20\r\n", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		{req: "ma n1 q O21\r\n", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		{req: "ma n2 q O22\r\n", resp: "NF", pairs: P{{CmdMetaArithmetic, StatusNotFound, "n2", 0}}, more: true},
		{req: "ma n1\r\n", resp: "HD", pairs: P{{CmdMetaArithmetic, StatusOK, "n1", 0}}, more: true},
		// md and ma answer every flag error alike.
		{req: "ma n1 Jx\r\n", err: "CLIENT_ERROR invalid or duplicate flag", resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaArithmetic, StatusClientError, "n1", 0}}, more: true},
		{req: "ma n1 Dx\r\n", err: "CLIENT_ERROR invalid or duplicate flag", resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaArithmetic, StatusClientError, "n1", 0}}, more: true},
		{req: "md n1 zz\r\n", err: "CLIENT_ERROR invalid or duplicate flag", resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaDelete, StatusClientError, "n1", 0}}, more: true},
		{req: "md n1 q q\r\n", err: "CLIENT_ERROR invalid or duplicate flag", resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaDelete, StatusClientError, "n1", 0}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},

		// me, and malformed meta commands.
		{req: "me n1\r\n", resp: "ME", pairs: P{{CmdMetaDebug, StatusHit, "n1", 0}}, more: true},
		{req: "me nope\r\n", resp: "EN", pairs: P{{CmdMetaDebug, StatusMiss, "nope", 0}}, more: true},
		{req: "mx\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdOther, StatusError, "", 0}}, more: true},
		{req: "mg\r\n", err: "ERROR", resp: "ERROR", pairs: P{{CmdMetaGet, StatusError, "", 0}}, more: true},
		{req: "mg k1 zz\r\n", err: ErrMetaInvalidFlag.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "k1", 0}}, more: true},
		{req: "mg k1 v v\r\n", err: ErrMetaDuplicateFlag.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "k1", 0}}, more: true},
		{req: "mg k1 v q zz\r\n", err: ErrMetaInvalidFlag.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "k1", 0}}, more: true},
		{req: "ms k1 abc\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaSet, StatusClientError, "k1", 0}}, more: true},
		{req: "ms k1\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaSet, StatusClientError, "k1", 0}}, more: true},
		// A flag error after the length swallows the data block.
		{req: "ms k1 2 Mxx\r\nab\r\n", err: ErrMetaBadMLength.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaSet, StatusClientError, "k1", 2}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},
		// memcached's limit counts the O: "O" and 32 more bytes is too long.
		{req: "mg zz " + o32 + "\r\n", err: ErrMetaOpaqueTooLong.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "zz", 0}}},
		// A bad F leaves the error text of an earlier flag alone.
		{req: "mg zz Nx Fx\r\n", err: ErrMetaBadToken.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaGet, StatusClientError, "zz", 0}}},
		// me decodes a b key too.
		{req: "me zz b\r\n", err: ErrBadFormat.Text, resp: "CLIENT_ERROR",
			pairs: P{{CmdMetaDebug, StatusClientError, "?", 0}}},

		// A quiet batch whose answers are told apart by opaque and key echo, ended by mn.
		{req: "mg q1 v q O1\r\n", pairs: P{{CmdMetaGet, StatusMiss, "q1", 0}}, more: true},
		{req: "mg m2 v q O2 k\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "m2", 2}}, more: true},
		{req: "ms q3 1 q O3\r\nx\r\n", pairs: P{{CmdMetaSet, StatusStored, "q3", 1}}, more: true},
		{req: "md q4 q O4\r\n", resp: "NF", pairs: P{{CmdMetaDelete, StatusNotFound, "q4", 0}}, more: true},
		{req: "mg q3 v q k O5\r\n", resp: "VA", pairs: P{{CmdMetaGet, StatusHit, "q3", 1}}, more: true},
		{req: "mn\r\n", resp: "MN", pairs: P{{CmdMetaNoop, StatusOK, "", 0}}},
	}
}

// confBigScript stores the largest value memcached takes and one over its 1 MiB item limit.
func confBigScript() []confStep {
	type P = []confPair
	const fits, over = 1<<20 - 512, 1<<20 + 1
	value := func(n int) string { return strings.Repeat("0123456789abcdef", n/16+1)[:n] }
	return []confStep{
		{req: "set big 0 0 " + strconv.Itoa(fits) + "\r\n" + value(fits) + "\r\n", resp: "STORED",
			pairs: P{{CmdSet, StatusStored, "big", fits}}, more: true},
		{req: "get big\r\n", resp: "VALUE END", pairs: P{{CmdGet, StatusHit, "big", fits}}},
		// Too large: answered at once, the data block swallowed, and the old value unlinked.
		{req: "set big 0 0 " + strconv.Itoa(over) + "\r\n" + value(over) + "\r\n", resp: "SERVER_ERROR",
			pairs: P{{CmdSet, StatusServerError, "big", over}}, more: true},
		{req: "get big\r\n", resp: "END", pairs: P{{CmdGet, StatusMiss, "big", 0}}},
	}
}

// confBinaryScript exercises the binary protocol.
func confBinaryScript() []confStep {
	type P = []confPair
	opaque := uint32(0)
	b := func(op uint8, key, ext, val string) string {
		opaque++
		return confBin(op, key, ext, val, opaque)
	}
	store := confU32(7, 0) // flags 7, no exptime
	exp := confU32(100)
	delta := func(d, initial uint64, exptime uint32) string {
		return confU64(d) + confU64(initial) + confU32(exptime)
	}
	return []confStep{
		{req: b(binFlush, "", "", ""), resp: "08/0000", pairs: P{{CmdFlushAll, StatusOK, "", 0}}, more: true},
		{req: b(binSet, "foo", store, "bar"), resp: "01/0000", pairs: P{{CmdSet, StatusStored, "foo", 3}}, more: true},
		{req: b(binGet, "foo", "", ""), resp: "00/0000", pairs: P{{CmdGet, StatusHit, "foo", 3}}, more: true},
		{req: b(binGet, "nope", "", ""), resp: "00/0001", pairs: P{{CmdGet, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGetK, "foo", "", ""), resp: "0c/0000", pairs: P{{CmdGet, StatusHit, "foo", 3}}, more: true},
		{req: b(binGetK, "nope", "", ""), resp: "0c/0001", pairs: P{{CmdGet, StatusMiss, "nope", 0}}},

		// A quiet batch: only hits and failures answer; the noop ends it.
		{req: b(binGetQ, "nope", "", ""), pairs: P{{CmdGet, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGetQ, "foo", "", ""), resp: "09/0000", pairs: P{{CmdGet, StatusHit, "foo", 3}}, more: true},
		{req: b(binGetKQ, "nope", "", ""), pairs: P{{CmdGet, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGetKQ, "foo", "", ""), resp: "0d/0000", pairs: P{{CmdGet, StatusHit, "foo", 3}}, more: true},
		{req: b(binSetQ, "q1", store, "v"), pairs: P{{CmdSet, StatusStored, "q1", 1}}, more: true},
		{req: b(binAddQ, "foo", store, "v"), resp: "12/0002", pairs: P{{CmdAdd, StatusExists, "foo", 1}}, more: true},
		{req: b(binDeleteQ, "nope", "", ""), resp: "14/0001", pairs: P{{CmdDelete, StatusNotFound, "nope", 0}},
			more: true},
		{req: b(binDeleteQ, "q1", "", ""), pairs: P{{CmdDelete, StatusDeleted, "q1", 0}}, more: true},
		{req: b(binIncrQ, "cq", delta(1, 5, 0), ""), pairs: P{{CmdIncr, StatusOK, "cq", 0}}, more: true},
		{req: b(binNoop, "", "", ""), resp: "0a/0000", pairs: P{{CmdNoop, StatusOK, "", 0}}},

		// Stores one at a time.
		{req: b(binAdd, "new", store, "x"), resp: "02/0000", pairs: P{{CmdAdd, StatusStored, "new", 1}}},
		{req: b(binAdd, "foo", store, "x"), resp: "02/0002", pairs: P{{CmdAdd, StatusExists, "foo", 1}}},
		{req: b(binReplace, "foo", store, "foo2"), resp: "03/0000", pairs: P{{CmdReplace, StatusStored, "foo", 4}}},
		{req: b(binReplace, "nope", store, "x"), resp: "03/0001", pairs: P{{CmdReplace, StatusNotFound, "nope", 1}}},
		{req: b(binAppend, "foo", "", "++"), resp: "0e/0000", pairs: P{{CmdAppend, StatusStored, "foo", 2}}},
		{req: b(binPrepend, "foo", "", "--"), resp: "0f/0000", pairs: P{{CmdPrepend, StatusStored, "foo", 2}}},
		{req: b(binAppend, "nope", "", "x"), resp: "0e/0005", pairs: P{{CmdAppend, StatusNotStored, "nope", 1}}},
		{req: b(binGet, "foo", "", ""), resp: "00/0000", pairs: P{{CmdGet, StatusHit, "foo", 8}}},

		// delete, incr, decr.
		{req: b(binDelete, "new", "", ""), resp: "04/0000", pairs: P{{CmdDelete, StatusDeleted, "new", 0}}, more: true},
		{req: b(binDelete, "new", "", ""), resp: "04/0001", pairs: P{{CmdDelete, StatusNotFound, "new", 0}},
			more: true},
		{req: b(binIncr, "ctr", delta(1, 5, 0), ""), resp: "05/0000", pairs: P{{CmdIncr, StatusOK, "ctr", 0}},
			more: true},
		{req: b(binIncr, "ctr", delta(1, 5, 0), ""), resp: "05/0000", pairs: P{{CmdIncr, StatusOK, "ctr", 0}},
			more: true},
		{req: b(binDecr, "ctr", delta(10, 5, 0), ""), resp: "06/0000", pairs: P{{CmdDecr, StatusOK, "ctr", 0}},
			more: true},
		{req: b(binIncr, "ctr2", delta(1, 5, 0xffffffff), ""), resp: "05/0001",
			pairs: P{{CmdIncr, StatusNotFound, "ctr2", 0}}, more: true},
		{req: b(binIncr, "foo", delta(1, 5, 0), ""), resp: "05/0006", pairs: P{{CmdIncr, StatusClientError, "foo", 0}}},

		// touch, gat, gatq, gatk.
		{req: b(binTouch, "foo", exp, ""), resp: "1c/0000", pairs: P{{CmdTouch, StatusTouched, "foo", 0}}, more: true},
		{req: b(binTouch, "nope", exp, ""), resp: "1c/0001", pairs: P{{CmdTouch, StatusNotFound, "nope", 0}},
			more: true},
		{req: b(binGAT, "foo", exp, ""), resp: "1d/0000", pairs: P{{CmdGat, StatusHit, "foo", 8}}, more: true},
		{req: b(binGAT, "nope", exp, ""), resp: "1d/0001", pairs: P{{CmdGat, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGATQ, "nope", exp, ""), pairs: P{{CmdGat, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGATQ, "foo", exp, ""), resp: "1e/0000", pairs: P{{CmdGat, StatusHit, "foo", 8}}, more: true},
		{req: b(binGATK, "foo", exp, ""), resp: "23/0000", pairs: P{{CmdGat, StatusHit, "foo", 8}}, more: true},
		{req: b(binGATK, "nope", exp, ""), resp: "23/0001", pairs: P{{CmdGat, StatusMiss, "nope", 0}}, more: true},
		{req: b(binGATKQ, "nope", exp, ""), pairs: P{{CmdGat, StatusMiss, "nope", 0}}, more: true},
		{req: b(binNoop, "", "", ""), resp: "0a/0000", pairs: P{{CmdNoop, StatusOK, "", 0}}},

		// stat answers with many responses ended by an empty one; version; verbosity and SASL are unknown to
		// this memcached (no SASL configured; 1.6 has no binary verbosity).
		{req: b(binStat, "", "", ""), resp: "10/0000* 10/0000", pairs: P{{CmdStats, StatusOK, "", 0}}, more: true},
		{req: b(binStat, "settings", "", ""), resp: "10/0000* 10/0000", pairs: P{{CmdStats, StatusOK, "", 0}},
			more: true},
		{req: b(binStat, "bogus", "", ""), resp: "10/0001", pairs: P{{CmdStats, StatusNotFound, "", 0}}, more: true},
		{req: b(binVersion, "", "", ""), resp: "0b/0000", pairs: P{{CmdVersion, StatusOK, "", 0}}, more: true},
		{req: b(binVerbosity, "", "", ""), resp: "1b/0081", pairs: P{{CmdVerbosity, StatusError, "", 0}}, more: true},
		{req: b(binSASLList, "", "", ""), resp: "20/0081", pairs: P{{CmdSASLList, StatusError, "", 0}}, more: true},
		{req: b(binSASLAuth, "PLAIN", "", "\x00user\x00pass"), resp: "21/0081",
			pairs: P{{CmdSASLAuth, StatusError, "", 0}}, more: true},
		{req: b(binSASLStep, "PLAIN", "", "xx"), resp: "22/0081", pairs: P{{CmdSASLStep, StatusError, "", 0}}},

		// flush (quiet and not), then quit.
		{req: b(binFlushQ, "", "", ""), pairs: P{{CmdFlushAll, StatusOK, "", 0}}, more: true},
		{req: b(binGet, "foo", "", ""), resp: "00/0001", pairs: P{{CmdGet, StatusMiss, "foo", 0}}, more: true},
		{req: b(binFlush, "", confU32(0), ""), resp: "08/0000", pairs: P{{CmdFlushAll, StatusOK, "", 0}}},
		{req: b(binQuit, "", "", ""), resp: "07/0000", pairs: P{{CmdQuit, StatusOK, "", 0}}, eof: true},
	}
}

// TestConformanceMaxValue checks RequestParser.MaxValue on the values memcached took and refused.
func TestConformanceMaxValue(t *testing.T) {
	f := func(vlen int, wantErr error) {
		t.Helper()
		in := "set big 0 0 " + strconv.Itoa(vlen) + "\r\n" + strings.Repeat("v", vlen) + "\r\n"
		p := RequestParser{MaxValue: 1 << 20}
		var r Request
		n, err := p.Parse([]byte(in), &r)
		if n != len(in) || err != wantErr {
			t.Fatalf("Parse(%s) with MaxValue 1 MiB: n=%d err=%v; want n=%d err=%v", confShort(in), n, err, len(in), wantErr)
		}
	}
	f(1<<20-512, nil)
	f(1<<20, nil)
	f(1<<20+1, ErrTooLarge)
}
