// This file turns a recorded event back into request bytes: the command in the recorded protocol (or the one
// --protocol asks for), the key synthesized from its hash and size, the value at its recorded size, its TTL and
// flags, and its noreply or quiet flag. It also says what the response will look like, for the matcher.

package replay

import (
	"encoding/binary"
	"strconv"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// expectation is the shape of the response a request gets.
type expectation uint8

const (
	expNone     expectation = iota // noreply: nothing comes back
	expGet                         // text get/gets/gat/gats of one key: VALUE… END, or END
	expLine                        // one text line
	expMulti                       // text lines up to END (stats)
	expMeta                        // one meta response; none for a quiet request that succeeded
	expBinary                      // one binary response; none for a quiet request that succeeded
	expBinMulti                    // binary stat: responses up to one with an empty key
)

// wire is a request as it will be sent.
type wire struct {
	proto mcproto.Protocol
	cmd   mcproto.Command
	quiet bool // text noreply, meta q, binary quiet opcode
}

// family returns the connection family of a protocol: text and meta share connections, binary has its own.
func family(p mcproto.Protocol) int {
	if p == mcproto.ProtoBinary {
		return 1
	}
	return 0
}

// toWire decides how ev is sent under override (ProtoUnknown: as recorded). ok is false for requests replay
// does not send.
func toWire(ev *profile.Event, override mcproto.Protocol) (w wire, ok bool) {
	p := ev.Proto
	if p == mcproto.ProtoUnknown {
		p = mcproto.ProtoText
	}
	if override != mcproto.ProtoUnknown {
		p = override
	}
	cmd := ev.Cmd
	quiet := ev.Quiet || ev.Noreply
	switch p {
	case mcproto.ProtoMeta:
		switch cmd {
		case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats, mcproto.CmdTouch:
			cmd = mcproto.CmdMetaGet
		case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend,
			mcproto.CmdCas:
			cmd = mcproto.CmdMetaSet
		case mcproto.CmdDelete:
			cmd = mcproto.CmdMetaDelete
		case mcproto.CmdIncr, mcproto.CmdDecr:
			cmd = mcproto.CmdMetaArithmetic
		case mcproto.CmdNoop:
			cmd = mcproto.CmdMetaNoop
		}
	case mcproto.ProtoText, mcproto.ProtoBinary:
		switch cmd {
		case mcproto.CmdMetaGet:
			cmd = mcproto.CmdGet
			if ev.TTL != 0 {
				cmd = mcproto.CmdGat
			}
		case mcproto.CmdMetaSet:
			cmd = mcproto.CmdSet
		case mcproto.CmdMetaDelete:
			cmd = mcproto.CmdDelete
		case mcproto.CmdMetaArithmetic:
			cmd = mcproto.CmdIncr
		case mcproto.CmdMetaNoop:
			cmd = mcproto.CmdNoop
		case mcproto.CmdMetaDebug:
			if p == mcproto.ProtoBinary {
				return w, false
			}
		}
		if p == mcproto.ProtoText && cmd == mcproto.CmdNoop {
			return w, false // the text protocol has no noop
		}
	}
	switch cmd {
	case mcproto.CmdQuit, mcproto.CmdShutdown, mcproto.CmdWatch, mcproto.CmdLruCrawler, mcproto.CmdSlabs,
		mcproto.CmdCacheMemlimit, mcproto.CmdLru, mcproto.CmdSASLList, mcproto.CmdSASLAuth, mcproto.CmdSASLStep,
		mcproto.CmdOther, mcproto.CmdUnknown:
		return w, false
	}
	if cmd.HasKey() && ev.KeySize == 0 {
		return w, false
	}
	// Meta commands recorded on a text connection keep the meta protocol.
	if p == mcproto.ProtoText && isMeta(cmd) {
		p = mcproto.ProtoMeta
	}
	switch {
	case p == mcproto.ProtoBinary:
		if _, ok := binOpcode(cmd, false); !ok {
			return w, false
		}
		// Name the command as the wire (and a recorder) sees it: binary has no gets, gats or cas opcode.
		switch cmd {
		case mcproto.CmdGets:
			cmd = mcproto.CmdGet
		case mcproto.CmdGats:
			cmd = mcproto.CmdGat
		case mcproto.CmdCas:
			cmd = mcproto.CmdSet
		}
		_, ok := binOpcode(cmd, true)
		quiet = quiet && ok
	case isMeta(cmd):
		quiet = quiet && cmd != mcproto.CmdMetaNoop && cmd != mcproto.CmdMetaDebug
	default:
		if !textCommand(cmd) {
			return w, false
		}
		quiet = quiet && textNoreply(cmd)
	}
	return wire{proto: p, cmd: cmd, quiet: quiet}, true
}

func isMeta(c mcproto.Command) bool {
	switch c {
	case mcproto.CmdMetaGet, mcproto.CmdMetaSet, mcproto.CmdMetaDelete, mcproto.CmdMetaArithmetic,
		mcproto.CmdMetaNoop, mcproto.CmdMetaDebug:
		return true
	}
	return false
}

// textCommand reports whether encodeText knows cmd.
func textCommand(c mcproto.Command) bool {
	switch c {
	case mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats, mcproto.CmdVersion, mcproto.CmdStats:
		return true
	}
	return textNoreply(c)
}

// textNoreply reports whether the text command takes "noreply".
func textNoreply(c mcproto.Command) bool {
	switch c {
	case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas,
		mcproto.CmdDelete, mcproto.CmdIncr, mcproto.CmdDecr, mcproto.CmdTouch, mcproto.CmdFlushAll,
		mcproto.CmdVerbosity:
		return true
	}
	return false
}

// binOpcode returns the binary opcode for cmd, loud or quiet.
func binOpcode(c mcproto.Command, quiet bool) (uint8, bool) {
	type pair struct{ loud, quiet int }
	var p pair
	switch c {
	case mcproto.CmdGet, mcproto.CmdGets:
		p = pair{0x00, 0x09}
	case mcproto.CmdSet, mcproto.CmdCas:
		p = pair{0x01, 0x11}
	case mcproto.CmdAdd:
		p = pair{0x02, 0x12}
	case mcproto.CmdReplace:
		p = pair{0x03, 0x13}
	case mcproto.CmdDelete:
		p = pair{0x04, 0x14}
	case mcproto.CmdIncr:
		p = pair{0x05, 0x15}
	case mcproto.CmdDecr:
		p = pair{0x06, 0x16}
	case mcproto.CmdFlushAll:
		p = pair{0x08, 0x18}
	case mcproto.CmdAppend:
		p = pair{0x0e, 0x19}
	case mcproto.CmdPrepend:
		p = pair{0x0f, 0x1a}
	case mcproto.CmdGat, mcproto.CmdGats:
		p = pair{0x1d, 0x1e}
	case mcproto.CmdNoop:
		p = pair{0x0a, -1}
	case mcproto.CmdVersion:
		p = pair{0x0b, -1}
	case mcproto.CmdStats:
		p = pair{0x10, -1}
	case mcproto.CmdTouch:
		p = pair{0x1c, -1}
	default:
		return 0, false
	}
	if quiet {
		if p.quiet < 0 {
			return 0, false
		}
		return uint8(p.quiet), true
	}
	return uint8(p.loud), true
}

// encoder appends requests to a connection's write buffer. Not safe for concurrent use.
type encoder struct {
	values *workload.Values
	cas    *casUniques // the connection's cas uniques (nil: every cas sends 1)
	// id is the casID of the key of the last request encoded when it was a binary get or gat (whose answer
	// carries a unique but not the key), else 0.
	id uint32
}

// casFor returns the unique to send with a cas of key.
func (e *encoder) casFor(key []byte) uint64 {
	if e.cas == nil {
		return 1
	}
	return e.cas.get(casID(key))
}

// encode appends the request for ev sent as w, with opaque (binary opaque, meta O token of quiet requests),
// and returns what its response looks like. more are the further keys of a text multi-key get (the dispatcher
// only groups those).
func (e *encoder) encode(dst []byte, ev *profile.Event, more []profile.Event, w wire,
	opaque uint32) ([]byte, expectation) {
	switch w.proto {
	case mcproto.ProtoBinary:
		return e.encodeBinary(dst, ev, w, opaque)
	case mcproto.ProtoMeta:
		if isMeta(w.cmd) {
			return e.encodeMeta(dst, ev, w, opaque)
		}
	}
	return e.encodeText(dst, ev, more, w)
}

func (e *encoder) key(dst []byte, ev *profile.Event) []byte {
	return workload.AppendKeyNS(dst, ev.NSHash, ev.KeyHash, int(ev.KeySize))
}

// keys appends ev's key and those of more, each after a space.
func (e *encoder) keys(dst []byte, ev *profile.Event, more []profile.Event) []byte {
	dst = append(dst, ' ')
	dst = e.key(dst, ev)
	for i := range more {
		dst = append(dst, ' ')
		dst = e.key(dst, &more[i])
	}
	return dst
}

func (e *encoder) encodeText(dst []byte, ev *profile.Event, more []profile.Event, w wire) ([]byte, expectation) {
	exp := expLine
	noreply := func(dst []byte) []byte {
		if w.quiet {
			exp = expNone
			return append(dst, " noreply\r\n"...)
		}
		return append(dst, "\r\n"...)
	}
	switch w.cmd {
	case mcproto.CmdGet, mcproto.CmdGets:
		dst = append(dst, w.cmd.String()...)
		dst = e.keys(dst, ev, more)
		return append(dst, "\r\n"...), expGet
	case mcproto.CmdGat, mcproto.CmdGats:
		dst = append(dst, w.cmd.String()...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ev.TTL, 10)
		dst = e.keys(dst, ev, more)
		return append(dst, "\r\n"...), expGet
	case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas:
		dst = append(dst, w.cmd.String()...)
		dst = append(dst, ' ')
		keyAt := len(dst)
		dst = e.key(dst, ev)
		keyEnd := len(dst)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(ev.Flags), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ev.TTL, 10)
		dst = append(dst, ' ')
		v := e.values.Get(int(ev.ValueSize))
		dst = strconv.AppendInt(dst, int64(len(v)), 10)
		if w.cmd == mcproto.CmdCas {
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, e.casFor(dst[keyAt:keyEnd]), 10)
		}
		dst = noreply(dst)
		dst = append(dst, v...)
		return append(dst, "\r\n"...), exp
	case mcproto.CmdDelete:
		dst = append(dst, "delete "...)
		dst = e.key(dst, ev)
		return noreply(dst), exp
	case mcproto.CmdIncr, mcproto.CmdDecr:
		dst = append(dst, w.cmd.String()...)
		dst = append(dst, ' ')
		dst = e.key(dst, ev)
		dst = append(dst, " 1"...)
		return noreply(dst), exp
	case mcproto.CmdTouch:
		dst = append(dst, "touch "...)
		dst = e.key(dst, ev)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, ev.TTL, 10)
		return noreply(dst), exp
	case mcproto.CmdFlushAll:
		dst = append(dst, "flush_all"...)
		return noreply(dst), exp
	case mcproto.CmdVerbosity:
		dst = append(dst, "verbosity 0"...)
		return noreply(dst), exp
	case mcproto.CmdVersion:
		return append(dst, "version\r\n"...), expLine
	case mcproto.CmdStats:
		return append(dst, "stats\r\n"...), expMulti
	}
	panic("BUG: no text encoding for " + w.cmd.String())
}

func (e *encoder) encodeMeta(dst []byte, ev *profile.Event, w wire, opaque uint32) ([]byte, expectation) {
	switch w.cmd {
	case mcproto.CmdMetaNoop:
		return append(dst, "mn\r\n"...), expMeta
	case mcproto.CmdMetaDebug:
		dst = append(dst, "me "...)
		dst = e.key(dst, ev)
		return append(dst, "\r\n"...), expMeta
	}
	dst = append(dst, 'm')
	switch w.cmd {
	case mcproto.CmdMetaGet:
		dst = append(dst, "g "...)
		dst = e.key(dst, ev)
		// A recorded hit without a value asked for none (HD); otherwise ask for the value and its flags.
		touchOnly := ev.Cmd == mcproto.CmdTouch
		if !touchOnly && !(ev.Status == mcproto.StatusHit && ev.ValueSize == 0 && ev.Proto == mcproto.ProtoMeta) {
			dst = append(dst, " v f"...)
		}
		if ev.TTL != 0 || ev.Cmd == mcproto.CmdGat || ev.Cmd == mcproto.CmdGats || touchOnly {
			dst = append(dst, " T"...)
			dst = strconv.AppendInt(dst, ev.TTL, 10)
		}
		if ev.Cmd == mcproto.CmdGets || ev.Cmd == mcproto.CmdGats {
			dst = append(dst, " c k"...) // the unique, and the key it belongs to, for a later cas
		}
	case mcproto.CmdMetaSet:
		dst = append(dst, "s "...)
		keyAt := len(dst)
		dst = e.key(dst, ev)
		keyEnd := len(dst)
		dst = append(dst, ' ')
		v := e.values.Get(int(ev.ValueSize))
		dst = strconv.AppendInt(dst, int64(len(v)), 10)
		if ev.Cmd == mcproto.CmdCas {
			dst = append(dst, " C"...)
			dst = strconv.AppendUint(dst, e.casFor(dst[keyAt:keyEnd]), 10)
		}
		if ev.TTL != 0 {
			dst = append(dst, " T"...)
			dst = strconv.AppendInt(dst, ev.TTL, 10)
		}
		if ev.Flags != 0 {
			dst = append(dst, " F"...)
			dst = strconv.AppendUint(dst, uint64(ev.Flags), 10)
		}
		switch ev.Cmd {
		case mcproto.CmdAdd:
			dst = append(dst, " ME"...)
		case mcproto.CmdReplace:
			dst = append(dst, " MR"...)
		case mcproto.CmdAppend:
			dst = append(dst, " MA"...)
		case mcproto.CmdPrepend:
			dst = append(dst, " MP"...)
		}
		dst = metaQuiet(dst, w, opaque)
		dst = append(dst, v...)
		return append(dst, "\r\n"...), expMeta
	case mcproto.CmdMetaDelete:
		dst = append(dst, "d "...)
		dst = e.key(dst, ev)
	case mcproto.CmdMetaArithmetic:
		dst = append(dst, "a "...)
		dst = e.key(dst, ev)
		if ev.Cmd == mcproto.CmdDecr {
			dst = append(dst, " MD"...)
		}
	default:
		panic("BUG: no meta encoding for " + w.cmd.String())
	}
	return metaQuiet(dst, w, opaque), expMeta
}

// metaQuiet ends a meta command line: a quiet request carries q and an opaque token, so that its answer, when
// one comes, can be told from the silence of the requests before it.
func metaQuiet(dst []byte, w wire, opaque uint32) []byte {
	if w.quiet {
		dst = append(dst, " q O"...)
		dst = strconv.AppendUint(dst, uint64(opaque), 36)
	}
	return append(dst, "\r\n"...)
}

func (e *encoder) encodeBinary(dst []byte, ev *profile.Event, w wire, opaque uint32) ([]byte, expectation) {
	op, ok := binOpcode(w.cmd, w.quiet)
	if !ok {
		panic("BUG: no binary opcode for " + w.cmd.String())
	}
	var extras [20]byte
	ext := extras[:0]
	var v []byte
	var key bool
	switch w.cmd {
	case mcproto.CmdGet, mcproto.CmdGets:
		key = true
	case mcproto.CmdGat, mcproto.CmdGats, mcproto.CmdTouch:
		key = true
		ext = extras[:4]
		binary.BigEndian.PutUint32(ext, uint32(ev.TTL))
	case mcproto.CmdSet, mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdCas:
		key = true
		ext = extras[:8]
		binary.BigEndian.PutUint32(ext[0:4], ev.Flags)
		binary.BigEndian.PutUint32(ext[4:8], uint32(ev.TTL))
		v = e.values.Get(int(ev.ValueSize))
	case mcproto.CmdAppend, mcproto.CmdPrepend:
		key = true
		v = e.values.Get(int(ev.ValueSize))
	case mcproto.CmdDelete:
		key = true
	case mcproto.CmdIncr, mcproto.CmdDecr:
		key = true
		ext = extras[:20]
		binary.BigEndian.PutUint64(ext[0:8], 1)
		binary.BigEndian.PutUint64(ext[8:16], 0)
		exp := uint32(0xffffffff) // fail on a missing key, as text incr does
		if ev.TTL != 0 {
			exp = uint32(ev.TTL)
		}
		binary.BigEndian.PutUint32(ext[16:20], exp)
	case mcproto.CmdFlushAll:
		ext = extras[:4]
	}
	h := len(dst)
	dst = append(dst, make([]byte, 24)...)
	dst = append(dst, ext...)
	keyLen, cas := 0, uint64(0)
	if key {
		k := len(dst)
		dst = e.key(dst, ev)
		keyLen = len(dst) - k
		switch {
		case ev.Cmd == mcproto.CmdCas:
			cas = e.casFor(dst[k:])
		case w.cmd == mcproto.CmdGet || w.cmd == mcproto.CmdGat:
			e.id = casID(dst[k:])
		}
	}
	dst = append(dst, v...)
	hdr := dst[h : h+24]
	hdr[0] = 0x80
	hdr[1] = op
	binary.BigEndian.PutUint16(hdr[2:4], uint16(keyLen))
	hdr[4] = byte(len(ext))
	binary.BigEndian.PutUint32(hdr[8:12], uint32(len(ext)+keyLen+len(v)))
	binary.BigEndian.PutUint32(hdr[12:16], opaque)
	binary.BigEndian.PutUint64(hdr[16:24], cas)
	if w.cmd == mcproto.CmdStats {
		return dst, expBinMulti
	}
	return dst, expBinary
}
