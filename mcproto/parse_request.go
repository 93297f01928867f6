// Text and meta request rules of memcached 1.6.40 and later, whose proto_text.c hands every command line to the
// shared parser of proto_parser.c (process_request) and the mcmc tokenizer. They differ from the older rules
// in request.go enough to live apart: the command is named by the bytes before the first space, a missing
// token is "CLIENT_ERROR bad command line format" rather than ERROR, and a store whose length parses swallows
// its data block whatever else is wrong with its line.
package mcproto

import "bytes"

// mcTokens fills ts as mcmc_tokenize does: space-separated tokens, at most maxTokens-1, the rest of a longer
// line dropped. With mstart >= 0, tokens from index mstart on are meta flags and must start with a letter
// between 'A' and 'z' or a digit; ok is false otherwise (memcached then sees no tokens at all).
func (ts *tokens) mcTokens(line []byte, mstart int) (ok bool) {
	ts.n = 0
	s := -1
	for i := 0; i <= len(line); i++ {
		if i < len(line) && line[i] != ' ' {
			if s < 0 {
				s = i
			}
			continue
		}
		if s < 0 {
			continue
		}
		tok := line[s:i]
		s = -1
		if mstart >= 0 && ts.n >= mstart {
			c := tok[0]
			if !(c > 64 && c < 123) && !(c >= '0' && c <= '9') {
				ts.n = 0
				return false
			}
		}
		ts.t[ts.n] = tok
		ts.n++
		if ts.n == maxTokens-1 {
			break
		}
	}
	return true
}

// lastIsNoreply is _process_request_noreply: the last token (of at most 23) is "noreply".
func (ts *tokens) lastIsNoreply() bool {
	return ts.n > 0 && string(ts.t[ts.n-1]) == "noreply"
}

// errGetKeyTooLong is what memcached 1.6.40+ answers to a get with a key over 250 bytes: the error line and,
// through a quirk of process_get_command_err that copies the line with its "\r\n" and then adds another, an
// empty line.
var errGetKeyTooLong = &ProtocolError{Text: "CLIENT_ERROR bad command line format\r\n"}

// parseRequestLine is process_request and the checks memcached makes before it touches an item.
func (p *RequestParser) parseRequestLine(buf, line []byte, r *Request) (int, error) {
	n := r.HeaderLen
	if n < 4 {
		// "min command length is 2, plus the \r\n": memcached counts the line with its "\n".
		r.Cmd = CmdOther
		return n, ErrBadFormat
	}
	name := line
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		name = line[:sp]
	}
	var ts tokens
	if len(name) == 2 && name[0] == 'm' {
		switch name[1] {
		case 'g', 's', 'd', 'a', 'n', 'e':
			r.Proto = ProtoMeta
			return p.parseMetaNew(buf, line, &ts, r)
		}
	}
	switch string(name) {
	case "get":
		return parseGetNew(&ts, line, r, CmdGet)
	case "gets":
		return parseGetNew(&ts, line, r, CmdGets)
	case "gat":
		return parseGatNew(&ts, line, r, CmdGat)
	case "gats":
		return parseGatNew(&ts, line, r, CmdGats)
	case "set":
		return p.parseStoreNew(buf, line, &ts, r, CmdSet)
	case "add":
		return p.parseStoreNew(buf, line, &ts, r, CmdAdd)
	case "replace":
		return p.parseStoreNew(buf, line, &ts, r, CmdReplace)
	case "append":
		return p.parseStoreNew(buf, line, &ts, r, CmdAppend)
	case "prepend":
		return p.parseStoreNew(buf, line, &ts, r, CmdPrepend)
	case "cas":
		return p.parseStoreNew(buf, line, &ts, r, CmdCas)
	case "delete":
		return parseKeyedNew(&ts, line, r, CmdDelete)
	case "incr":
		return parseKeyedNew(&ts, line, r, CmdIncr)
	case "decr":
		return parseKeyedNew(&ts, line, r, CmdDecr)
	case "touch":
		return parseKeyedNew(&ts, line, r, CmdTouch)
	case "quit", "version", "stats", "watch":
		// No token checks; these ignore "noreply".
		ts.mcTokens(line, -1)
		r.Cmd = keylessCommand(name)
		if ts.n > 1 {
			r.Arg = ts.t[1]
		}
		return n, nil
	}
	return parseOtherNew(&ts, line, r)
}

// parseOtherNew: a command process_request does not know goes to proto_text.c's table of admin commands by its
// first token (leading spaces skipped), else it is ERROR, or a silent close for a last token starting "HTTP/".
func parseOtherNew(ts *tokens, line []byte, r *Request) (int, error) {
	n := r.HeaderLen
	ts.mcTokens(line, -1)
	// The answer honours a trailing "noreply", ERROR included.
	r.Noreply = ts.lastIsNoreply()
	r.Cmd = CmdOther
	if ts.n > 0 {
		if ts.n > 1 {
			r.Arg = ts.t[1]
		}
		switch string(ts.t[0]) {
		case "shutdown", "slabs", "cache_memlimit", "flush_all", "lru_crawler", "lru":
			r.Cmd = keylessCommand(ts.t[0])
			return n, nil
		case "verbosity":
			r.Cmd = CmdVerbosity
			if _, ok := mcTokU32(r.Arg); ts.n < 2 || !ok {
				return n, ErrBadFormat
			}
			return n, nil
		case "extstore", "refresh_certs":
			// Known to memcached builds with extstore or TLS; the server answers (ERROR without them).
			return n, nil
		}
	}
	r.Arg = nil
	if ts.n > 1 && bytes.HasPrefix(ts.t[ts.n-1], []byte("HTTP/")) {
		r.Noreply = false
		return n, errHTTP
	}
	return n, ErrUnknownCommand
}

func parseGetNew(ts *tokens, line []byte, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	ts.mcTokens(line, -1)
	if ts.n < 2 {
		return n, ErrBadFormat
	}
	if err := appendKeys(r, line, ts.t[1]); err != nil {
		return n, errGetKeyTooLong
	}
	return n, nil
}

func parseGatNew(ts *tokens, line []byte, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	ts.mcTokens(line, -1)
	if ts.n < 3 {
		return n, ErrBadFormat
	}
	exp, ok := mcTok32(ts.t[1])
	if !ok {
		return n, errInvalidExptime
	}
	r.Exptime, r.HasExptime = exp, true
	if err := appendKeys(r, line, ts.t[2]); err != nil {
		return n, errGetKeyTooLong
	}
	return n, nil
}

// parseKeyedNew: delete, incr, decr and touch (_process_request_simple, then process_*_cmd's checks).
func parseKeyedNew(ts *tokens, line []byte, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	ts.mcTokens(line, -1)
	minTokens := 3
	if cmd == CmdDelete {
		minTokens = 2 // and no maximum: "delete k 0" and "delete k x y" delete k
	}
	if ts.n < minTokens {
		return n, ErrBadFormat
	}
	r.Noreply = ts.lastIsNoreply()
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	switch cmd {
	case CmdIncr, CmdDecr:
		if _, ok := mcTokU64(ts.t[2]); !ok {
			return n, errInvalidDelta
		}
	case CmdTouch:
		exp, ok := mcTok32(ts.t[2])
		if !ok {
			return n, errInvalidExptime
		}
		r.Exptime, r.HasExptime = exp, true
	}
	return n, nil
}

// parseStoreNew: a store line needs five tokens and a length; then its data block is read or swallowed
// whatever else is wrong (key, flags, exptime, cas), and memcached answers after it.
func (p *RequestParser) parseStoreNew(buf, line []byte, ts *tokens, r *Request, cmd Command) (int, error) {
	r.Cmd = cmd
	n := r.HeaderLen
	ts.mcTokens(line, -1)
	if ts.n < 5 {
		return n, ErrBadFormat
	}
	vlen, ok := mcTok32(ts.t[4])
	if !ok || vlen < 0 || vlen > maxInt32-2 {
		return n, ErrBadFormat
	}
	r.Noreply = ts.lastIsNoreply()
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	var lineErr error
	flags, okF := strtoul(ts.t[2])
	exp, okE := strtol(ts.t[3])
	switch {
	case len(key) > MaxKeyLen, !okF, !okE:
		lineErr = ErrBadFormat
	case cmd == CmdCas:
		if _, ok := mcTokU64(ts.t[5]); ts.n < 6 || !ok {
			lineErr = ErrBadFormat
		}
	}
	if lineErr == nil {
		r.Flags, r.Exptime, r.HasExptime, r.HasCas = uint32(flags), int64(int32(exp)), true, cmd == CmdCas
	}
	return p.dataBlock(buf, r, int(vlen), lineErr)
}

// parseMetaNew: mn takes nothing; the others need a key, and flags that start with a letter or a digit.
func (p *RequestParser) parseMetaNew(buf, line []byte, ts *tokens, r *Request) (int, error) {
	n := r.HeaderLen
	mstart := 2
	switch line[1] {
	case 'n':
		r.Cmd = CmdMetaNoop
		return n, nil
	case 'g':
		r.Cmd = CmdMetaGet
	case 's':
		r.Cmd = CmdMetaSet
		mstart = 3
	case 'd':
		r.Cmd = CmdMetaDelete
	case 'a':
		r.Cmd = CmdMetaArithmetic
	case 'e':
		r.Cmd = CmdMetaDebug
	}
	if !ts.mcTokens(line, mstart) || ts.n < mstart {
		return n, ErrBadFormat
	}
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	switch r.Cmd {
	case CmdMetaDebug:
		if len(key) > MaxKeyLen {
			return n, ErrBadFormat
		}
		// "me <key> b" decodes the key only with a fourth token: mcmc counts no terminating token.
		if ts.n >= 4 && len(ts.t[2]) == 1 && ts.t[2][0] == 'b' {
			r.KeyBase64 = true
			r.MetaFlags |= 1 << ('b' - 'A')
			if _, ok := base64DecodedLen(key); !ok {
				return n, ErrBadFormat
			}
		}
		return n, nil
	case CmdMetaSet:
		vlen, ok := mcTok32(ts.t[2])
		if !ok || vlen < 0 || vlen > maxInt32-2 {
			return n, ErrBadFormat
		}
		err := r.metaPreparse(ts, mstart, true)
		return p.dataBlock(buf, r, int(vlen), err)
	}
	err := r.metaPreparse(ts, mstart, true)
	if err != nil && r.Cmd == CmdMetaArithmetic {
		err = errMetaInvalidOrDuplicate // ma answers every flag error with one text
	}
	return n, err
}

// metaPreparse is _meta_flag_preparse with the checks around it: the key's length, the token count, the
// flags, then an O token too long.
func (r *Request) metaPreparse(ts *tokens, first int, newRules bool) error {
	if len(r.Keys[0]) > MaxKeyLen {
		return ErrBadFormat
	}
	if ts.n > metaMaxOptTokens {
		return ErrMetaFlagsTooLong
	}
	err, late := r.metaFlags(ts, first, true, newRules)
	if err == nil {
		err = late
	}
	return err
}

// mcTok32, mcTokU32 and mcTokU64 are mcmc's mcmc_tokto32, mcmc_toktou32 and mcmc_toktou64: decimal digits
// only (a leading '-' for the signed one, where "-" alone is 0), at most 11 or 22 bytes, no overflow.
func mcTok32(b []byte) (int64, bool) {
	if len(b) > 11 {
		return 0, false
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v > maxInt32+1 || (!neg && v > maxInt32) {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

func mcTokU32(b []byte) (uint32, bool) {
	if len(b) > 11 {
		return 0, false
	}
	v, ok := mcTokU64(b)
	if !ok || v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

func mcTokU64(b []byte) (uint64, bool) {
	if len(b) > 22 {
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

// strtoul and strtol are memcached's safe_strtoul and safe_strtol on a whole token: C's strtoul/strtol
// (an optional sign, decimal digits, no overflow of 64 bits); safe_strtoul also refuses a '-' on a value
// that is negative as a signed number. The callers truncate as memcached does.
func strtoul(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	v, ok := mcTokU64Unbounded(b)
	if !ok {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
}

func strtol(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	v, ok := mcTokU64Unbounded(b)
	if !ok || v > 1<<63 || (!neg && v > 1<<63-1) {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// mcTokU64Unbounded is mcTokU64 without mcmc's length limit (leading zeros are fine for strtoul).
func mcTokU64Unbounded(b []byte) (uint64, bool) {
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
