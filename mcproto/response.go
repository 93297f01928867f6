// Response framing for the text, meta and binary protocols. Every text response is framed line by line
// (VALUE and VA lines together with their data block), so the framer needs no knowledge of the request:
// assembling "VALUE … END" or "STAT … END" into one answer is the Pairer's job.
package mcproto

import "bytes"

// RespKind is the shape of one response frame.
type RespKind uint8

// Response kinds.
const (
	RespUnknown     RespKind = iota
	RespValue                // VALUE <key> <flags> <bytes> [<cas>] + data
	RespEnd                  // END
	RespStored               // STORED
	RespNotStored            // NOT_STORED
	RespExists               // EXISTS
	RespNotFound             // NOT_FOUND
	RespDeleted              // DELETED
	RespTouched              // TOUCHED
	RespOK                   // OK
	RespNumber               // incr/decr result
	RespStat                 // STAT <name> <value>
	RespVersion              // VERSION <v>
	RespError                // ERROR [...]
	RespClientError          // CLIENT_ERROR ...
	RespServerError          // SERVER_ERROR ...
	RespLine                 // any other line (RESET, BUSY, ITEM, PREFIX, metadump and watch lines, …)
	RespMetaVA               // VA <size> <flags>* + data
	RespMetaHD               // HD <flags>*
	RespMetaEN               // EN
	RespMetaNF               // NF <flags>*
	RespMetaNS               // NS <flags>*
	RespMetaEX               // EX <flags>*
	RespMetaMN               // MN
	RespMetaME               // ME <key> <k>=<v>*
	RespBinary               // a binary response; see BinStatus
)

var respKindNames = [...]string{"unknown", "VALUE", "END", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND",
	"DELETED", "TOUCHED", "OK", "number", "STAT", "VERSION", "ERROR", "CLIENT_ERROR", "SERVER_ERROR", "line",
	"VA", "HD", "EN", "NF", "NS", "EX", "MN", "ME", "binary"}

func (k RespKind) String() string {
	if int(k) < len(respKindNames) {
		return respKindNames[k]
	}
	return "unknown"
}

// Response is one parsed response frame, caller-owned and reused (Parse resets it). Key, Line and MetaOpaque
// are sub-slices of the parsed buffer.
type Response struct {
	Proto     Protocol
	Kind      RespKind
	Key       []byte // VALUE key, meta k echo, ME key, binary key (GetK)
	KeyBase64 bool   // meta b flag in the response: Key is base64
	Flags     uint32 // client flags of a VALUE line, meta f, or binary extras
	ValueLen  int    // data block length without "\r\n" (VALUE, VA, binary body value)
	HasValue  bool   // the frame carries a data block
	HasCas    bool
	Cas       uint64 // the cas unique (text gets VALUE, meta c flag, binary header) when HasCas
	// MetaOpaque is the O flag echoed by a meta response.
	MetaOpaque []byte
	Opcode     uint8  // binary
	BinStatus  uint16 // binary
	Opaque     uint32 // binary
	Line       []byte // the response line without "\r\n" (text, meta)
	HeaderLen  int
	FrameLen   int
}

// Reset clears r for reuse.
func (r *Response) Reset() { *r = Response{} }

// IsError reports whether the response is ERROR, CLIENT_ERROR or SERVER_ERROR (any protocol).
func (r *Response) IsError() bool {
	switch r.Kind {
	case RespError, RespClientError, RespServerError:
		return true
	case RespBinary:
		return r.BinStatus == BinStatusInvalid || r.BinStatus == BinStatusUnknownCommand ||
			r.BinStatus == BinStatusOutOfMemory || r.BinStatus == BinStatusTooLarge ||
			r.BinStatus == BinStatusAuthError || r.BinStatus == BinStatusDeltaBadValue
	}
	return false
}

// ResponseParser frames the responses of one connection. The first byte decides binary (0x81) or text.
type ResponseParser struct {
	// MaxLine bounds a response line (default 64 KiB); longer lines are ErrBadResponse.
	MaxLine int
	proto   Protocol
}

// Protocol returns the connection's protocol, ProtoUnknown before the first byte.
func (p *ResponseParser) Protocol() Protocol { return p.proto }

// Reset forgets the connection's protocol.
func (p *ResponseParser) Reset() { p.proto = ProtoUnknown }

// DefaultMaxResponseLine bounds response lines.
const DefaultMaxResponseLine = 64 << 10

// Parse frames the first response in buf and fills r, with the same contract as RequestParser.Parse. A
// *ProtocolError here means the upstream sent something memcached never sends; the connection cannot go on.
func (p *ResponseParser) Parse(buf []byte, r *Response) (int, error) {
	r.Reset()
	if len(buf) == 0 {
		return 0, ErrIncomplete
	}
	if p.proto == ProtoUnknown {
		if buf[0] == binRespMagic {
			p.proto = ProtoBinary
		} else {
			p.proto = ProtoText
		}
	}
	if p.proto == ProtoBinary {
		return parseBinaryResponse(buf, r)
	}
	maxLine := p.MaxLine
	if maxLine <= 0 {
		maxLine = DefaultMaxResponseLine
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > maxLine {
			return 0, ErrBadResponse
		}
		return 0, ErrIncomplete
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	r.Proto = ProtoText
	r.Line = line
	r.HeaderLen = nl + 1
	r.FrameLen = nl + 1
	if err := parseResponseLine(line, r); err != nil {
		return 0, err
	}
	if !r.HasValue {
		return r.FrameLen, nil
	}
	r.FrameLen = r.HeaderLen + r.ValueLen + 2
	if len(buf) < r.FrameLen {
		return 0, ErrIncomplete
	}
	if buf[r.FrameLen-2] != '\r' || buf[r.FrameLen-1] != '\n' {
		return 0, ErrBadResponse
	}
	return r.FrameLen, nil
}

func parseResponseLine(line []byte, r *Response) error {
	if len(line) == 0 {
		r.Kind = RespLine
		return nil
	}
	word := line
	rest := []byte(nil)
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		word, rest = line[:sp], line[sp+1:]
	}
	if len(word) == 2 && word[0] >= 'A' && word[0] <= 'Z' && word[1] >= 'A' && word[1] <= 'Z' {
		if parseMetaResponse(word, rest, r) {
			return nil
		}
	}
	switch string(word) {
	case "VALUE":
		return parseValueLine(rest, r)
	case "END":
		r.Kind = RespEnd
	case "STORED":
		r.Kind = RespStored
	case "NOT_STORED":
		r.Kind = RespNotStored
	case "EXISTS":
		r.Kind = RespExists
	case "NOT_FOUND":
		r.Kind = RespNotFound
	case "DELETED":
		r.Kind = RespDeleted
	case "TOUCHED":
		r.Kind = RespTouched
	case "OK":
		r.Kind = RespOK
	case "STAT":
		r.Kind = RespStat
	case "VERSION":
		r.Kind = RespVersion
	case "ERROR", "ERROR:":
		r.Kind = RespError
	case "CLIENT_ERROR":
		r.Kind = RespClientError
	case "SERVER_ERROR", "SERVER_ERROR:":
		r.Kind = RespServerError
	default:
		if _, ok := parseUint64(line); ok {
			r.Kind = RespNumber
		} else {
			r.Kind = RespLine
		}
	}
	return nil
}

func parseValueLine(rest []byte, r *Response) error {
	r.Kind = RespValue
	var ts tokens
	ts.split(rest)
	if ts.n < 3 || ts.n > 4 {
		return ErrBadResponse
	}
	flags, ok1 := parseUint32(ts.t[1])
	vlen, ok2 := parseUint64(ts.t[2])
	if !ok1 || !ok2 || vlen > maxInt32 {
		return ErrBadResponse
	}
	r.Key, r.Flags, r.ValueLen, r.HasValue = ts.t[0], flags, int(vlen), true
	if ts.n == 4 {
		r.HasCas = true
		r.Cas, _ = parseUint64(ts.t[3]) // 0 when malformed: framing does not depend on it
	}
	return nil
}

// parseMetaResponse handles the two-letter meta codes; it reports false for a two-letter word that is not one.
func parseMetaResponse(word, rest []byte, r *Response) bool {
	r.Proto = ProtoMeta
	switch string(word) {
	case "VA":
		r.Kind = RespMetaVA
		sp := bytes.IndexByte(rest, ' ')
		num := rest
		if sp >= 0 {
			num, rest = rest[:sp], rest[sp+1:]
		} else {
			rest = nil
		}
		v, ok := parseUint64(num)
		if !ok || v > maxInt32 {
			r.Kind = RespLine
			r.Proto = ProtoText
			return false
		}
		r.ValueLen, r.HasValue = int(v), true
	case "HD":
		r.Kind = RespMetaHD
	case "EN":
		r.Kind = RespMetaEN
	case "NF":
		r.Kind = RespMetaNF
	case "NS":
		r.Kind = RespMetaNS
	case "EX":
		r.Kind = RespMetaEX
	case "MN":
		r.Kind = RespMetaMN
		return true
	case "ME":
		r.Kind = RespMetaME
		key := rest
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			key = rest[:sp]
		}
		r.Key = key
		return true
	default:
		r.Proto = ProtoText
		return false
	}
	// Return flags: k<key>, O<opaque>, b, f<flags>, c<cas>, …
	for len(rest) > 0 {
		tok := rest
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			tok, rest = rest[:sp], rest[sp+1:]
		} else {
			rest = nil
		}
		if len(tok) == 0 {
			continue
		}
		switch tok[0] {
		case 'k':
			r.Key = tok[1:]
		case 'O':
			r.MetaOpaque = tok[1:]
		case 'b':
			r.KeyBase64 = true
		case 'c':
			r.HasCas = true
			r.Cas, _ = parseUint64(tok[1:])
		case 'f':
			if v, ok := parseUint32(tok[1:]); ok {
				r.Flags = v
			}
		}
	}
	return true
}
