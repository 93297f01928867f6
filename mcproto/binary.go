// The binary protocol: 24-byte headers, opcodes (including the quiet variants) and statuses, for requests and
// responses. A binary frame is its header plus bodylen bytes: extras, then key, then value.
package mcproto

import "encoding/binary"

// Binary magic bytes.
const (
	binReqMagic  = 0x80
	binRespMagic = 0x81
	binHeaderLen = 24
)

// Binary opcodes (memcached's protocol_binary.h).
const (
	binGet       = 0x00
	binSet       = 0x01
	binAdd       = 0x02
	binReplace   = 0x03
	binDelete    = 0x04
	binIncr      = 0x05
	binDecr      = 0x06
	binQuit      = 0x07
	binFlush     = 0x08
	binGetQ      = 0x09
	binNoop      = 0x0a
	binVersion   = 0x0b
	binGetK      = 0x0c
	binGetKQ     = 0x0d
	binAppend    = 0x0e
	binPrepend   = 0x0f
	binStat      = 0x10
	binSetQ      = 0x11
	binAddQ      = 0x12
	binReplaceQ  = 0x13
	binDeleteQ   = 0x14
	binIncrQ     = 0x15
	binDecrQ     = 0x16
	binQuitQ     = 0x17
	binFlushQ    = 0x18
	binAppendQ   = 0x19
	binPrependQ  = 0x1a
	binVerbosity = 0x1b
	binTouch     = 0x1c
	binGAT       = 0x1d
	binGATQ      = 0x1e
	binSASLList  = 0x20
	binSASLAuth  = 0x21
	binSASLStep  = 0x22
	binGATK      = 0x23
	binGATKQ     = 0x24
)

// Binary response statuses.
const (
	BinStatusSuccess        = 0x0000
	BinStatusKeyNotFound    = 0x0001
	BinStatusKeyExists      = 0x0002
	BinStatusTooLarge       = 0x0003
	BinStatusInvalid        = 0x0004
	BinStatusNotStored      = 0x0005
	BinStatusDeltaBadValue  = 0x0006
	BinStatusAuthError      = 0x0020
	BinStatusAuthContinue   = 0x0021
	BinStatusUnknownCommand = 0x0081
	BinStatusOutOfMemory    = 0x0082
)

// binOp describes an opcode: its command, whether it is quiet, and whether its response echoes the key.
type binOp struct {
	cmd     Command
	quiet   bool
	withKey bool // GetK, GetKQ, GATK, GATKQ responses carry the key
}

var binOps = func() (t [256]binOp) {
	for i := range t {
		t[i] = binOp{cmd: CmdOther}
	}
	set := func(op uint8, c Command, quiet, withKey bool) { t[op] = binOp{c, quiet, withKey} }
	set(binGet, CmdGet, false, false)
	set(binGetQ, CmdGet, true, false)
	set(binGetK, CmdGet, false, true)
	set(binGetKQ, CmdGet, true, true)
	set(binSet, CmdSet, false, false)
	set(binSetQ, CmdSet, true, false)
	set(binAdd, CmdAdd, false, false)
	set(binAddQ, CmdAdd, true, false)
	set(binReplace, CmdReplace, false, false)
	set(binReplaceQ, CmdReplace, true, false)
	set(binDelete, CmdDelete, false, false)
	set(binDeleteQ, CmdDelete, true, false)
	set(binIncr, CmdIncr, false, false)
	set(binIncrQ, CmdIncr, true, false)
	set(binDecr, CmdDecr, false, false)
	set(binDecrQ, CmdDecr, true, false)
	set(binQuit, CmdQuit, false, false)
	set(binQuitQ, CmdQuit, true, false)
	set(binFlush, CmdFlushAll, false, false)
	set(binFlushQ, CmdFlushAll, true, false)
	set(binNoop, CmdNoop, false, false)
	set(binVersion, CmdVersion, false, false)
	set(binAppend, CmdAppend, false, false)
	set(binAppendQ, CmdAppend, true, false)
	set(binPrepend, CmdPrepend, false, false)
	set(binPrependQ, CmdPrepend, true, false)
	set(binStat, CmdStats, false, false)
	set(binVerbosity, CmdVerbosity, false, false)
	set(binTouch, CmdTouch, false, false)
	set(binGAT, CmdGat, false, false)
	set(binGATQ, CmdGat, true, false)
	set(binGATK, CmdGat, false, true)
	set(binGATKQ, CmdGat, true, true)
	set(binSASLList, CmdSASLList, false, false)
	set(binSASLAuth, CmdSASLAuth, false, false)
	set(binSASLStep, CmdSASLStep, false, false)
	return t
}()

// loudTwin maps each quiet binary opcode to the opcode that answers the same request out loud.
var loudTwin = func() (t [256]uint8) {
	for q, l := range map[uint8]uint8{binGetQ: binGet, binGetKQ: binGetK, binSetQ: binSet, binAddQ: binAdd,
		binReplaceQ: binReplace, binDeleteQ: binDelete, binIncrQ: binIncr, binDecrQ: binDecr, binQuitQ: binQuit,
		binFlushQ: binFlush, binAppendQ: binAppend, binPrependQ: binPrepend, binGATQ: binGAT, binGATKQ: binGATK} {
		t[q] = l + 1 // 0 means "no twin"; binGet is 0x00
	}
	return t
}()

// LoudOpcode returns the opcode that answers what the quiet opcode op asks, and false when op is not quiet. A
// proxy that shares a connection forwards the loud form, so that every request gets exactly one answer, and drops
// the answer the quiet form would not have had.
func LoudOpcode(op uint8) (uint8, bool) {
	l := loudTwin[op]
	return l - 1, l != 0
}

// BinaryOpcodeCommand returns the command and quietness of a binary opcode.
func BinaryOpcodeCommand(op uint8) (Command, bool) {
	o := binOps[op]
	return o.cmd, o.quiet
}

func parseBinaryRequest(buf []byte, r *Request, maxValue int, d Dialect) (int, error) {
	r.Proto = ProtoBinary
	if len(buf) < binHeaderLen {
		// memcached reads a whole header before it looks at the magic byte.
		return 0, ErrIncomplete
	}
	if buf[0] != binReqMagic {
		return 0, ErrBadMagic
	}
	op := buf[1]
	keyLen := int(binary.BigEndian.Uint16(buf[2:4]))
	extLen := int(buf[4])
	bodyLen := int(binary.BigEndian.Uint32(buf[8:12]))
	r.Opcode = op
	r.Opaque = binary.BigEndian.Uint32(buf[12:16])
	r.HasCas = binary.BigEndian.Uint64(buf[16:24]) != 0
	o := binOps[op]
	r.Cmd, r.Quiet = o.cmd, o.quiet
	r.HeaderLen = binHeaderLen + extLen + keyLen
	r.FrameLen = binHeaderLen + bodyLen
	if keyLen > bodyLen || keyLen+extLen > bodyLen {
		// memcached answers 0x81 and closes; nothing more of this connection can be framed.
		r.FrameLen = binHeaderLen
		return binHeaderLen, ErrBinaryBodyTooLong
	}
	valueLen := bodyLen - extLen - keyLen
	if len(buf) < r.HeaderLen {
		return 0, ErrIncomplete
	}
	if bodyLen > binMaxBody && d.binBodyLimit() {
		r.FrameLen = r.HeaderLen
		return r.HeaderLen, ErrBinaryInvalid
	}
	// memcached reads the header, extras and key, then checks them: a key over 250 bytes or a shape its
	// opcode does not allow is answered 0x0004 and the connection closed.
	if keyLen > MaxKeyLen || !binShapeOK(op, extLen, keyLen, bodyLen) {
		r.FrameLen = r.HeaderLen
		return r.HeaderLen, ErrBinaryInvalid
	}
	if !binKnown(op) {
		// memcached answers 0x0081 and then skips bodylen more bytes after the extras and key (not bodylen
		// minus them): frame it the same way so that the next request starts where memcached's does.
		r.FrameLen = r.HeaderLen + bodyLen
	}
	ext := buf[binHeaderLen : binHeaderLen+extLen]
	if keyLen > 0 {
		r.Keys = append(r.Keys, buf[binHeaderLen+extLen:r.HeaderLen])
	}
	switch r.Cmd {
	case CmdSet, CmdAdd, CmdReplace:
		if extLen == 8 {
			r.Flags = binary.BigEndian.Uint32(ext[0:4])
			r.Exptime, r.HasExptime = int64(int32(binary.BigEndian.Uint32(ext[4:8]))), true
		}
		r.ValueLen, r.HasValue = valueLen, true
	case CmdAppend, CmdPrepend:
		r.ValueLen, r.HasValue = valueLen, true
	case CmdIncr, CmdDecr:
		if extLen == 20 {
			r.Exptime, r.HasExptime = int64(int32(binary.BigEndian.Uint32(ext[16:20]))), true
		}
	case CmdTouch, CmdGat:
		if extLen == 4 {
			r.Exptime, r.HasExptime = int64(int32(binary.BigEndian.Uint32(ext[0:4]))), true
		}
	}
	if r.HasValue && maxValue > 0 && valueLen > maxValue {
		r.BodyErr = BinTooLarge
		if len(buf) < r.FrameLen {
			return 0, ErrIncomplete
		}
		return r.FrameLen, BinTooLarge
	}
	if len(buf) < r.FrameLen {
		return 0, ErrIncomplete
	}
	return r.FrameLen, nil
}

// BinTooLarge: a binary store over the value limit; memcached answers 0x0003 with body "Too large." and goes
// on (having unlinked the key's old item for a set, as for ErrTooLarge).
var BinTooLarge = &ProtocolError{Text: "SERVER_ERROR object too large for cache", BinStatus: BinStatusTooLarge,
	BinText: "Too large."}

// binMaxBody is memcached's ITEM_SIZE_MAX_UPPER_LIMIT: from 1.6.42 a larger body is answered 0x0004 and the
// connection closed.
const binMaxBody = 1 << 30

// AppendBinaryError appends a binary response header (no body except an error text) answering a request with
// opcode op and opaque with the given status; proxies use it to answer on memcached's behalf.
func AppendBinaryError(dst []byte, op uint8, opaque uint32, status uint16, msg string) []byte {
	var h [binHeaderLen]byte
	h[0] = binRespMagic
	h[1] = op
	binary.BigEndian.PutUint16(h[6:8], status)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(msg)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	dst = append(dst, h[:]...)
	return append(dst, msg...)
}

func parseBinaryResponse(buf []byte, r *Response) (int, error) {
	r.Proto = ProtoBinary
	if buf[0] != binRespMagic {
		return 0, ErrBadResponse
	}
	if len(buf) < binHeaderLen {
		return 0, ErrIncomplete
	}
	op := buf[1]
	keyLen := int(binary.BigEndian.Uint16(buf[2:4]))
	extLen := int(buf[4])
	bodyLen := int(binary.BigEndian.Uint32(buf[8:12]))
	if keyLen+extLen > bodyLen {
		return 0, ErrBadResponse
	}
	r.Opcode = op
	r.BinStatus = binary.BigEndian.Uint16(buf[6:8])
	r.Opaque = binary.BigEndian.Uint32(buf[12:16])
	r.Cas = binary.BigEndian.Uint64(buf[16:24])
	r.HasCas = r.Cas != 0
	r.Kind = RespBinary
	r.HeaderLen = binHeaderLen + extLen + keyLen
	r.FrameLen = binHeaderLen + bodyLen
	r.ValueLen = bodyLen - extLen - keyLen
	if len(buf) < r.HeaderLen {
		return 0, ErrIncomplete
	}
	if extLen == 4 {
		r.Flags = binary.BigEndian.Uint32(buf[binHeaderLen : binHeaderLen+4])
	}
	if keyLen > 0 {
		r.Key = buf[binHeaderLen+extLen : r.HeaderLen]
	}
	if len(buf) < r.FrameLen {
		return 0, ErrIncomplete
	}
	return r.FrameLen, nil
}

// binKnown reports whether memcached 1.6 handles opcode op (dispatch_bin_command); others are answered with
// "unknown command".
func binKnown(op uint8) bool {
	switch op {
	case binGet, binGetQ, binGetK, binGetKQ, binSet, binSetQ, binAdd, binAddQ, binReplace, binReplaceQ,
		binDelete, binDeleteQ, binIncr, binIncrQ, binDecr, binDecrQ, binQuit, binQuitQ, binFlush, binFlushQ,
		binNoop, binVersion, binAppend, binAppendQ, binPrepend, binPrependQ, binStat, binTouch, binGAT,
		binGATQ, binGATK, binGATKQ, binSASLList, binSASLAuth, binSASLStep:
		return true
	}
	return false
}

// binShapeOK mirrors the per-opcode length checks of memcached's dispatch_bin_command.
func binShapeOK(op uint8, ext, key, body int) bool {
	switch op {
	case binVersion, binNoop, binQuit, binQuitQ, binSASLList:
		return ext == 0 && key == 0 && body == 0
	case binFlush, binFlushQ:
		return key == 0 && body == ext && (ext == 0 || ext == 4)
	case binSet, binSetQ, binAdd, binAddQ, binReplace, binReplaceQ:
		return ext == 8 && key != 0 && body >= key+8
	case binGet, binGetQ, binGetK, binGetKQ:
		return ext == 0 && body == key && key > 0
	case binDelete, binDeleteQ:
		return key > 0 && ext == 0 && body == key
	case binIncr, binIncrQ, binDecr, binDecrQ:
		return key > 0 && ext == 20 && body == key+ext
	case binAppend, binAppendQ, binPrepend, binPrependQ:
		return key > 0 && ext == 0
	case binStat:
		return ext == 0
	case binSASLAuth, binSASLStep:
		return ext == 0 && key != 0
	case binTouch, binGAT, binGATQ, binGATK, binGATKQ:
		return ext == 4 && key != 0
	}
	return true
}
