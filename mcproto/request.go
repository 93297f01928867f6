// Request framing for the text and meta protocols, and the per-connection RequestParser that also dispatches
// binary. Framing follows memcached's own rules so that a frame boundary here is a frame boundary there: the
// same tokenizer (spaces only), the same token-count checks, and the same choice of when a rejected storage
// command's data block is consumed and when it is not. This file holds the rules of memcached up to 1.6.39
// (proto_text.c's tokenize_command, checked against 1.6.18); parse_request.go holds those of 1.6.40 and later,
// chosen by RequestParser.Dialect.
package mcproto

import (
	"bytes"
)

// Limits memcached applies and membench mirrors.
const (
	// MaxKeyLen is memcached's KEY_MAX_LENGTH.
	MaxKeyLen = 250
	// DefaultMaxLine is how far memcached reads a non-get command line without finding "\n" before it
	// closes the connection.
	DefaultMaxLine = 2048
	// DefaultMaxGetLine bounds get/gets lines, which memcached lets grow without limit; membench stops at 1 MiB.
	DefaultMaxGetLine = 1 << 20
	// maxTokens is memcached's MAX_TOKENS; it matters for token-count checks on long lines.
	maxTokens = 24
	// metaMaxOptTokens is MFLAG_MAX_OPT_LENGTH: meta commands with more tokens are rejected.
	metaMaxOptTokens = 20
	// metaMaxOpaque is the longest O token memcached accepts.
	metaMaxOpaque = 32
)

// Request is one parsed request. It is caller-owned and reused: Parse resets it. Keys, Line, Arg and
// MetaOpaque are sub-slices of the buffer given to Parse and stay valid only while that buffer does (in gnet:
// until the next Discard).
type Request struct {
	Proto  Protocol
	Cmd    Command
	Opcode uint8 // binary opcode

	// Keys are the request's keys, in order. Multi-key gets have several; keyless commands none.
	Keys [][]byte
	// KeyBase64 reports a meta b flag: Keys hold base64 text, memcached uses the decoded bytes.
	KeyBase64 bool

	Flags      uint32 // client flags of a store (text flags token, meta F, binary extras)
	Exptime    int64  // exptime as sent
	HasExptime bool   // Exptime was present (stores, touch, gat/gats, meta T, binary extras)
	ValueLen   int    // data block length of a store, without the trailing "\r\n"
	HasValue   bool   // the request carries a data block
	Noreply    bool   // text "noreply": memcached sends no reply
	Quiet      bool   // meta q flag or binary quiet opcode
	ReturnKey  bool   // meta k flag: the response echoes the key
	HasCas     bool   // cas command, meta C, or a binary request with a cas value
	Mode       byte   // meta M token (ms: E A P R S; ma: I + D -); 0 when absent
	MetaFlags  uint64 // bit (c-'A') set for each meta flag letter present (A..z)
	MetaOpaque []byte // meta O token's value, without the 'O'
	Opaque     uint32 // binary opaque

	// Line is the command line without its "\r\n" (text and meta). Arg is its second token (the stats, slabs,
	// lru_crawler, watch sub-command), or nil.
	Line []byte
	Arg  []byte

	// HeaderLen is the length of the command line with its "\n" (text, meta) or of the binary header, extras
	// and key. FrameLen is the whole frame: header plus data block. Both are set as soon as the header is
	// parsed, also when Parse returns ErrIncomplete because the data block has not all arrived: a proxy can
	// then forward what it holds and pass FrameLen-len(buf) more bytes through without parsing them.
	HeaderLen int
	FrameLen  int
	// BodyErr is set when the header already shows that the request will be rejected after its data block is
	// consumed (ErrTooLarge, a meta flag error): it is known even while Parse still returns ErrIncomplete, so a
	// proxy can answer and swallow a large rejected value as it streams in.
	BodyErr *ProtocolError
}

// Reset clears r for reuse, keeping the capacity of Keys.
func (r *Request) Reset() {
	keys := r.Keys[:0]
	*r = Request{Keys: keys}
}

// HasMetaFlag reports whether the meta flag letter c was present.
func (r *Request) HasMetaFlag(c byte) bool {
	if c < 'A' || c > 'z' {
		return false
	}
	return r.MetaFlags&(1<<(c-'A')) != 0
}

// IsStream reports whether the request turns the connection into a one-way stream (watch, lru_crawler
// metadump): responses after it are log lines, not replies.
func (r *Request) IsStream() bool {
	return r.Cmd == CmdWatch || (r.Cmd == CmdLruCrawler && bytes.Equal(r.Arg, []byte("metadump")))
}

// ExpectsResponse reports whether memcached answers this request when it succeeds.
func (r *Request) ExpectsResponse() bool {
	if r.Noreply {
		return false
	}
	if r.Proto == ProtoBinary && r.Opcode == binQuitQ {
		return false
	}
	return true
}

// RequestParser frames the requests of one connection. The first byte decides the protocol for the life of the
// connection, as in memcached: 0x80 is binary, anything else text (which includes meta commands). The zero
// value is ready to use with memcached's default limits.
type RequestParser struct {
	// MaxLine is the longest non-get command line (default DefaultMaxLine).
	MaxLine int
	// MaxGetLine is the longest get/gets line (default DefaultMaxGetLine).
	MaxGetLine int
	// MaxValue, when > 0, rejects stores with a larger data block with ErrTooLarge (consuming the block, as
	// memcached does). 0 leaves the check to the server, which is exact where this is not (see ErrTooLarge).
	MaxValue int
	// Dialect is the memcached release whose rules apply (zero: the newest; see Dialect). Set it before the
	// first Parse; it may change between requests.
	Dialect Dialect
	// Force, when ProtoText or ProtoBinary, fixes the connection's protocol whatever its first byte, as
	// memcached's -B ascii and -B binary do: under -B binary a first byte other than 0x80 is ErrBadMagic.
	Force Protocol

	proto Protocol
}

// Protocol returns the connection's protocol: ProtoUnknown before the first byte, then ProtoText or
// ProtoBinary.
func (p *RequestParser) Protocol() Protocol { return p.proto }

// Reset forgets the connection's protocol.
func (p *RequestParser) Reset() { p.proto = ProtoUnknown }

// Parse frames the first request in buf and fills r.
//
//   - n > 0, err == nil: a complete request of n bytes.
//   - n == 0, err == ErrIncomplete: more bytes are needed (r.FrameLen > 0 if the header was parsed).
//   - err is a *ProtocolError: memcached would answer with err.Text. n bytes belong to the rejected request
//     (forward or skip them; memcached consumes them too). If err.Close, the connection must end; n may be 0.
//
// Parse never returns n > len(buf) and never allocates once r.Keys has grown to the largest multi-get seen.
func (p *RequestParser) Parse(buf []byte, r *Request) (n int, err error) {
	r.Reset()
	if len(buf) == 0 {
		return 0, ErrIncomplete
	}
	if p.proto == ProtoUnknown {
		switch {
		case p.Force == ProtoText || p.Force == ProtoBinary:
			p.proto = p.Force
		case buf[0] == binReqMagic:
			p.proto = ProtoBinary
		default:
			p.proto = ProtoText
		}
	}
	if p.proto == ProtoBinary {
		return parseBinaryRequest(buf, r, p.MaxValue, p.Dialect)
	}
	return p.parseText(buf, r)
}

func (p *RequestParser) parseText(buf []byte, r *Request) (int, error) {
	maxLine := p.MaxLine
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) <= maxLine {
			return 0, ErrIncomplete
		}
		// memcached keeps reading only get/gets lines (after at most 100 leading spaces).
		s := 0
		for s < len(buf) && buf[s] == ' ' {
			s++
		}
		rest := buf[s:]
		if s <= 100 && (bytes.HasPrefix(rest, []byte("get ")) || bytes.HasPrefix(rest, []byte("gets "))) {
			maxGet := p.MaxGetLine
			if maxGet <= 0 {
				maxGet = DefaultMaxGetLine
			}
			if len(buf) <= maxGet {
				return 0, ErrIncomplete
			}
		}
		return 0, ErrLineTooLong
	}
	line := buf[:nl]
	if len(line) > 1 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	r.Line = line
	r.HeaderLen = nl + 1
	r.FrameLen = nl + 1
	r.Proto = ProtoText
	if p.Dialect.protoParser() {
		return p.parseRequestLine(buf, line, r)
	}
	return p.parseTextLine(buf, line, r)
}

// tokens is memcached's tokenizer: space-separated, empty tokens skipped, at most maxTokens-1 tokens with the
// last one holding the rest of the line. It is a value type on the stack: no allocation.
type tokens struct {
	t [maxTokens][]byte
	n int
}

func (ts *tokens) split(line []byte) {
	ts.n = 0
	s := 0
	for i := 0; i < len(line); i++ {
		if line[i] == ' ' {
			if i > s {
				ts.t[ts.n] = line[s:i]
				ts.n++
				if ts.n == maxTokens-1 {
					// memcached stops here; the rest of the line is one more token (used by get to continue).
					rest := line[i+1:]
					if len(rest) > 0 {
						ts.t[ts.n] = rest
					} else {
						ts.t[ts.n] = nil
					}
					return
				}
			}
			s = i + 1
		}
	}
	if s < len(line) {
		ts.t[ts.n] = line[s:]
		ts.n++
	}
}

// count returns memcached's ntokens: the real tokens plus its terminating empty token.
func (ts *tokens) count() int { return ts.n + 1 }

func (p *RequestParser) parseTextLine(buf, line []byte, r *Request) (int, error) {
	n := r.HeaderLen
	var ts tokens
	ts.split(line)
	nt := ts.count()
	if nt < 2 || len(ts.t[0]) < 2 {
		r.Cmd = CmdOther
		return n, ErrUnknownCommand
	}
	cmd := ts.t[0]
	if nt > 2 {
		r.Arg = ts.t[1]
	}
	if len(cmd) == 2 && cmd[0] == 'm' {
		r.Proto = ProtoMeta
		return p.parseMeta(buf, &ts, r)
	}
	switch string(cmd) {
	case "get":
		return parseGet(&ts, r, CmdGet)
	case "gets":
		return parseGet(&ts, r, CmdGets)
	case "gat":
		return parseGat(&ts, r, CmdGat)
	case "gats":
		return parseGat(&ts, r, CmdGats)
	case "set":
		return p.parseStore(buf, &ts, r, CmdSet)
	case "add":
		return p.parseStore(buf, &ts, r, CmdAdd)
	case "replace":
		return p.parseStore(buf, &ts, r, CmdReplace)
	case "append":
		return p.parseStore(buf, &ts, r, CmdAppend)
	case "prepend":
		return p.parseStore(buf, &ts, r, CmdPrepend)
	case "cas":
		return p.parseStore(buf, &ts, r, CmdCas)
	case "delete":
		return parseDelete(&ts, r)
	case "incr":
		return parseArith(&ts, r, CmdIncr)
	case "decr":
		return parseArith(&ts, r, CmdDecr)
	case "touch":
		return parseTouch(&ts, r)
	}
	r.Cmd = keylessCommand(cmd)
	nt = ts.count()
	switch r.Cmd {
	case CmdOther:
		// An unknown command whose first letter memcached does not branch on and whose last token starts with
		// "HTTP/" closes the connection without a reply.
		switch cmd[0] {
		case 'g', 's', 'a', 'c', 'i', 'd', 't':
		default:
			if bytes.HasPrefix(ts.t[ts.n-1], []byte("HTTP/")) {
				return n, errHTTP
			}
		}
		return n, ErrUnknownCommand
	case CmdFlushAll:
		if nt > 4 {
			return n, ErrUnknownCommand
		}
	case CmdVerbosity, CmdCacheMemlimit:
		if nt != 3 && nt != 4 {
			return n, ErrUnknownCommand
		}
	case CmdLru:
		if nt < 3 {
			return n, ErrUnknownCommand
		}
	}
	// Only these commands read a trailing "noreply"; the others answer regardless.
	switch r.Cmd {
	case CmdFlushAll, CmdVerbosity, CmdCacheMemlimit, CmdLru, CmdWatch:
		setNoreply(&ts, r)
	case CmdSlabs:
		if nt >= 4 && string(r.Arg) == "automove" {
			setNoreply(&ts, r)
		}
	}
	return n, nil
}

// errHTTP: memcached drops a connection that speaks HTTP.
var errHTTP = &ProtocolError{Close: true}

// keylessCommand maps the admin commands memcached knows. Anything else is CmdOther, which memcached answers
// with ERROR.
func keylessCommand(cmd []byte) Command {
	switch string(cmd) {
	case "flush_all":
		return CmdFlushAll
	case "stats":
		return CmdStats
	case "version":
		return CmdVersion
	case "verbosity":
		return CmdVerbosity
	case "quit":
		return CmdQuit
	case "shutdown":
		return CmdShutdown
	case "cache_memlimit":
		return CmdCacheMemlimit
	case "slabs":
		return CmdSlabs
	case "lru_crawler":
		return CmdLruCrawler
	case "watch":
		return CmdWatch
	case "lru":
		return CmdLru
	}
	return CmdOther
}

// setNoreply is memcached's set_noreply_maybe: the last token equal to "noreply".
func setNoreply(ts *tokens, r *Request) bool {
	if ts.n >= 2 && string(ts.t[ts.n-1]) == "noreply" {
		r.Noreply = true
	}
	return r.Noreply
}

func parseGet(ts *tokens, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	if ts.count() < 3 {
		return n, ErrUnknownCommand
	}
	// Keys are every token after the command; the tokenizer's last slot may hold the unsplit remainder.
	line := r.Line
	return n, appendKeys(r, line, ts.t[1])
}

func parseGat(ts *tokens, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	if ts.count() < 3 {
		return n, ErrUnknownCommand
	}
	exp, ok := parseInt32(ts.t[1])
	if !ok {
		return n, errInvalidExptime
	}
	r.Exptime, r.HasExptime = exp, true
	if ts.count() < 4 {
		return n, nil // no key: memcached answers END
	}
	return n, appendKeys(r, r.Line, ts.t[2])
}

var errInvalidExptime = &ProtocolError{Text: "CLIENT_ERROR invalid exptime argument"}

// appendKeys adds every space-separated token of line starting at first (a sub-slice of line) to r.Keys.
func appendKeys(r *Request, line, first []byte) error {
	start := cap(line) - cap(first) // offset of first within line
	rest := line[start:]
	var err error
	for len(rest) > 0 {
		sp := bytes.IndexByte(rest, ' ')
		var k []byte
		if sp < 0 {
			k, rest = rest, nil
		} else {
			k, rest = rest[:sp], rest[sp+1:]
		}
		if len(k) == 0 {
			continue
		}
		if len(k) > MaxKeyLen {
			// memcached answers CLIENT_ERROR instead of END; 1.6.18 also throws away every answer of this
			// connection it has not sent yet (earlier pipelined requests' included), so pairing may lose those.
			err = ErrBadFormat
			break
		}
		r.Keys = append(r.Keys, k)
	}
	return err
}

func (p *RequestParser) parseStore(buf []byte, ts *tokens, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	nt := ts.count()
	if cmd == CmdCas {
		if nt != 7 && nt != 8 {
			return n, ErrUnknownCommand
		}
	} else if nt != 6 && nt != 7 {
		return n, ErrUnknownCommand
	}
	setNoreply(ts, r)
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	flags, ok1 := strtoul32(ts.t[2])
	exp, ok2 := parseInt32(ts.t[3])
	vlen, ok3 := parseInt32(ts.t[4])
	if !ok1 || !ok2 || !ok3 {
		return n, ErrBadFormat
	}
	if cmd == CmdCas {
		if _, ok := parseUint64(ts.t[5]); !ok {
			return n, ErrBadFormat
		}
		r.HasCas = true
	}
	if vlen < 0 || vlen > maxInt32-2 {
		return n, ErrBadFormat
	}
	r.Flags, r.Exptime, r.HasExptime = flags, exp, true
	return p.dataBlock(buf, r, int(vlen), nil)
}

// dataBlock finishes a storage request whose line is parsed: the frame is the line plus vlen bytes plus
// "\r\n". lineErr, when not nil, is an error memcached reports after reading the length: the block is still
// consumed ("swallowed").
func (p *RequestParser) dataBlock(buf []byte, r *Request, vlen int, lineErr error) (int, error) {
	r.ValueLen, r.HasValue = vlen, true
	r.FrameLen = r.HeaderLen + vlen + 2
	if lineErr == nil && p.MaxValue > 0 && vlen > p.MaxValue {
		lineErr = ErrTooLarge
	}
	if pe, ok := lineErr.(*ProtocolError); ok {
		r.BodyErr = pe
	}
	if len(buf) < r.FrameLen {
		return 0, ErrIncomplete
	}
	if lineErr != nil {
		return r.FrameLen, lineErr
	}
	if buf[r.FrameLen-2] != '\r' || buf[r.FrameLen-1] != '\n' {
		return r.FrameLen, ErrBadDataChunk
	}
	return r.FrameLen, nil
}

var errDeleteUsage = &ProtocolError{Text: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}

func parseDelete(ts *tokens, r *Request) (int, error) {
	r.Cmd = CmdDelete
	n := r.HeaderLen
	nt := ts.count()
	if nt < 3 || nt > 5 {
		return n, ErrUnknownCommand
	}
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if nt > 3 {
		holdZero := string(ts.t[2]) == "0"
		noreply := setNoreply(ts, r)
		if !((nt == 4 && (holdZero || noreply)) || (nt == 5 && holdZero && noreply)) {
			return n, errDeleteUsage
		}
	}
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	return n, nil
}

var (
	errInvalidDelta = &ProtocolError{Text: "CLIENT_ERROR invalid numeric delta argument"}
)

func parseArith(ts *tokens, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	nt := ts.count()
	if nt != 4 && nt != 5 {
		return n, ErrUnknownCommand
	}
	setNoreply(ts, r)
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	if _, ok := strtoul(ts.t[2]); !ok { // safe_strtoull: "+1" and "-0" are deltas
		return n, errInvalidDelta
	}
	return n, nil
}

func parseTouch(ts *tokens, r *Request) (int, error) {
	r.Cmd = CmdTouch
	n := r.HeaderLen
	nt := ts.count()
	if nt != 4 && nt != 5 {
		return n, ErrUnknownCommand
	}
	setNoreply(ts, r)
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	exp, ok := parseInt32(ts.t[2])
	if !ok {
		return n, errInvalidExptime
	}
	r.Exptime, r.HasExptime = exp, true
	return n, nil
}

const maxInt32 = 1<<31 - 1

// strtoul32 is memcached's safe_strtoul into a uint32: strtoul's 64 bits, truncated.
func strtoul32(b []byte) (uint32, bool) {
	v, ok := strtoul(b)
	return uint32(v), ok
}

// parseUint32, parseInt32 and parseUint64 follow memcached's safe_strtoul/strtol/strtoull: decimal digits, an
// optional sign for signed values, and the whole token consumed.
func parseUint32(b []byte) (uint32, bool) {
	v, ok := parseUint64(b)
	if !ok || v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

func parseUint64(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func parseInt32(b []byte) (int64, bool) {
	// safe_strtol: strtol's 64 bits, truncated into an int32 ("4294967297" is 1).
	v, ok := strtol(b)
	return int64(int32(v)), ok
}
