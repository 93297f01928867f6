// Meta protocol requests (mg, ms, md, ma, mn, me), with memcached 1.6's flag rules: one letter per token,
// optional argument glued to it, duplicates rejected, and ms's data block swallowed after a flag error.
package mcproto

import "encoding/base64"

func (p *RequestParser) parseMeta(buf []byte, ts *tokens, r *Request) (int, error) {
	n := r.HeaderLen
	switch ts.t[0][1] {
	case 'g':
		r.Cmd = CmdMetaGet
	case 's':
		r.Cmd = CmdMetaSet
	case 'd':
		r.Cmd = CmdMetaDelete
	case 'a':
		r.Cmd = CmdMetaArithmetic
	case 'n':
		r.Cmd = CmdMetaNoop
		return n, nil
	case 'e':
		r.Cmd = CmdMetaDebug
	default:
		r.Cmd = CmdOther
		r.Proto = ProtoText
		return n, ErrUnknownCommand
	}
	nt := ts.count()
	if nt < 3 {
		if r.Cmd == CmdMetaDebug {
			return n, ErrBadFormat // me checks its own token count
		}
		return n, ErrUnknownCommand
	}
	key := ts.t[1]
	r.Keys = append(r.Keys, key)
	if len(key) > MaxKeyLen {
		return n, ErrBadFormat
	}
	if r.Cmd == CmdMetaDebug {
		// me <key> [b]: the only flag is b, a token of its own.
		if nt > 3 && len(ts.t[2]) == 1 && ts.t[2][0] == 'b' {
			r.KeyBase64 = true
			r.MetaFlags |= 1 << ('b' - 'A')
			if _, ok := base64DecodedLen(key); !ok {
				return n, ErrBadFormat
			}
		}
		return n, nil
	}
	first := 2
	if r.Cmd == CmdMetaSet {
		if nt == 3 {
			return n, ErrBadFormat
		}
		if nt > metaMaxOptTokens {
			return n, errMetaSetFlagsTooLong
		}
		vlen, ok := parseInt32(ts.t[2])
		if !ok || vlen < 0 || vlen > maxInt32-2 {
			return n, ErrBadFormat
		}
		first = 3
		ferr, late := r.metaFlags(ts, first, p.Dialect.metaFlagsEx(), false)
		if ferr == nil {
			ferr = late
		}
		return p.dataBlock(buf, r, int(vlen), ferr)
	}
	if nt > metaMaxOptTokens {
		if r.Cmd == CmdMetaGet {
			return n, ErrMetaFlagsTooLong
		}
		return n, errMetaSetFlagsTooLong
	}
	ferr, late := r.metaFlags(ts, first, p.Dialect.metaFlagsEx(), false)
	if ferr != nil && r.Cmd != CmdMetaGet {
		// memcached 1.6's md and ma answer every flag error with one text (proto_text.c).
		ferr = errMetaInvalidOrDuplicate
	}
	if ferr == nil {
		ferr = late
	}
	return n, ferr
}

var errMetaInvalidOrDuplicate = &ProtocolError{Text: "CLIENT_ERROR invalid or duplicate flag"}

var errMetaSetFlagsTooLong = &ProtocolError{Text: "CLIENT_ERROR options flags too long"}

// metaFlags records the flags of tokens ts.t[first:], as memcached's _meta_flag_preparse. It returns the error
// the preparse fails with, or nil, and late: an error memcached finds only after a successful preparse (an
// opaque token too long). ex admits flags E and x (1.6.27); newRules are 1.6.40's: numbers as mcmc reads
// them, an M token of any length.
func (r *Request) metaFlags(ts *tokens, first int, ex, newRules bool) (err, late error) {
	i32, u32, u64 := parseInt32, strtoul32, parseUint64
	if newRules {
		i32, u32, u64 = mcTok32, mcTokU32, mcTokU64
	}
	var seen uint64
	for i := first; i < ts.n; i++ {
		tok := ts.t[i]
		if len(tok) == 0 {
			break
		}
		c := tok[0]
		if c < 'A' || c > 'z' {
			if c >= 127 {
				return ErrMetaDuplicateFlag, nil
			}
			return ErrMetaInvalidFlag, nil
		}
		bit := uint64(1) << (c - 'A')
		if seen&bit != 0 {
			return ErrMetaDuplicateFlag, nil
		}
		seen |= bit
		arg := tok[1:]
		switch c {
		case 'b':
			r.KeyBase64 = true
			if _, ok := base64DecodedLen(r.Keys[0]); !ok {
				err = ErrMetaKeyDecode
			}
		case 'N', 'R':
			if _, ok := i32(arg); !ok || len(arg) == 0 {
				err = ErrMetaBadToken
			}
		case 'T':
			if v, ok := i32(arg); !ok || len(arg) == 0 {
				err = ErrMetaBadToken
			} else {
				r.Exptime, r.HasExptime = v, true
			}
		case 'O':
			r.MetaOpaque = arg
			if len(tok) > metaMaxOpaque { // memcached counts the 'O'
				late = ErrMetaOpaqueTooLong
			}
		case 'P', 'L', 's', 't', 'c', 'f', 'v', 'h', 'u', 'l', 'I':
		case 'k':
			r.ReturnKey = true
		case 'q':
			r.Quiet = true
		case 'F':
			if v, ok := u32(arg); !ok || len(arg) == 0 {
				// memcached flags the error without a text of its own: an earlier flag's text stays.
				if err == nil {
					err = ErrBadFormat
				}
			} else {
				r.Flags = v
			}
		case 'C':
			if _, ok := u64(arg); !ok || len(arg) == 0 {
				err = ErrMetaBadToken
			} else {
				r.HasCas = true
			}
		case 'E':
			if !ex {
				return ErrMetaInvalidFlag, nil
			}
			if _, ok := u64(arg); !ok || len(arg) == 0 {
				err = ErrMetaBadToken
			}
		case 'x':
			if !ex {
				return ErrMetaInvalidFlag, nil
			}
		case 'M':
			switch {
			case len(tok) == 2:
				r.Mode = tok[1]
			case !newRules:
				err = ErrMetaBadMLength
			case len(tok) > 2:
				r.Mode = tok[1] // 1.6.40 reads the letter after M and ignores the rest
			}
		case 'J':
			if _, ok := u64(arg); !ok || len(arg) == 0 {
				err = errMetaInitial
			}
		case 'D':
			if _, ok := u64(arg); !ok || len(arg) == 0 {
				err = errMetaDelta
			}
		default:
			return ErrMetaInvalidFlag, nil
		}
		r.MetaFlags |= bit
	}
	return err, late
}

var (
	errMetaInitial = &ProtocolError{Text: "CLIENT_ERROR invalid numeric initial value"}
	errMetaDelta   = &ProtocolError{Text: "CLIENT_ERROR invalid numeric delta value"}
)

// base64DecodedLen returns the decoded length of a standard base64 token and whether it is valid.
func base64DecodedLen(s []byte) (int, bool) {
	if len(s) == 0 || len(s)%4 != 0 {
		return 0, false
	}
	var buf [MaxKeyLen]byte
	n, err := base64.StdEncoding.Decode(buf[:], s)
	if err != nil {
		return 0, false
	}
	return n, true
}

// DecodeKey returns the key memcached stores for a key token: the token itself, or for a base64 (meta b) key
// its decoding into scratch (which must hold MaxKeyLen bytes). ok is false for an undecodable token.
func DecodeKey(tok []byte, base64Key bool, scratch []byte) (key []byte, ok bool) {
	if !base64Key {
		return tok, true
	}
	if len(tok)%4 != 0 || base64.StdEncoding.DecodedLen(len(tok)) > len(scratch) {
		return nil, false
	}
	n, err := base64.StdEncoding.Decode(scratch, tok)
	if err != nil {
		return nil, false
	}
	return scratch[:n], true
}
