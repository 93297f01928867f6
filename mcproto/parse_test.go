package mcproto

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// reqWant describes the expected frame of one request.
type reqWant struct {
	n        int
	cmd      Command
	proto    Protocol
	keys     []string
	vlen     int
	noreply  bool
	quiet    bool
	exptime  int64
	flags    uint32
	errText  string // "" for success
	errClose bool
}

func checkReq(t *testing.T, p *RequestParser, in string, w reqWant) {
	t.Helper()
	var r Request
	n, err := p.Parse([]byte(in), &r)
	if w.errText != "" || w.errClose {
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q): want protocol error %q, got n=%d err=%v", in, w.errText, n, err)
		}
		if pe.Text != w.errText || pe.Close != w.errClose {
			t.Fatalf("Parse(%q): want error %q close=%v, got %q close=%v", in, w.errText, w.errClose, pe.Text, pe.Close)
		}
	} else if err != nil {
		t.Fatalf("Parse(%q): unexpected error %v", in, err)
	}
	if n != w.n {
		t.Fatalf("Parse(%q): n=%d, want %d", in, n, w.n)
	}
	if w.cmd != CmdUnknown && r.Cmd != w.cmd {
		t.Fatalf("Parse(%q): cmd=%v, want %v", in, r.Cmd, w.cmd)
	}
	if w.proto != ProtoUnknown && r.Proto != w.proto {
		t.Fatalf("Parse(%q): proto=%v, want %v", in, r.Proto, w.proto)
	}
	if w.keys != nil {
		if len(r.Keys) != len(w.keys) {
			t.Fatalf("Parse(%q): keys=%q, want %q", in, r.Keys, w.keys)
		}
		for i := range w.keys {
			if string(r.Keys[i]) != w.keys[i] {
				t.Fatalf("Parse(%q): key %d=%q, want %q", in, i, r.Keys[i], w.keys[i])
			}
		}
	}
	if r.ValueLen != w.vlen || r.Noreply != w.noreply || r.Quiet != w.quiet {
		t.Fatalf("Parse(%q): vlen=%d noreply=%v quiet=%v, want %d %v %v", in, r.ValueLen, r.Noreply, r.Quiet, w.vlen,
			w.noreply, w.quiet)
	}
	if w.exptime != 0 && r.Exptime != w.exptime {
		t.Fatalf("Parse(%q): exptime=%d, want %d", in, r.Exptime, w.exptime)
	}
	if w.flags != 0 && r.Flags != w.flags {
		t.Fatalf("Parse(%q): flags=%d, want %d", in, r.Flags, w.flags)
	}
}

func TestParseRequestText_Success(t *testing.T) {
	f := func(in string, w reqWant) {
		t.Helper()
		checkReq(t, &RequestParser{Dialect: Dialect1_6_18}, in, w)
	}
	f("get foo\r\n", reqWant{n: 9, cmd: CmdGet, proto: ProtoText, keys: []string{"foo"}})
	f("get foo\n", reqWant{n: 8, cmd: CmdGet, keys: []string{"foo"}})
	f("get a b  c\r\nget x\r\n", reqWant{n: 12, cmd: CmdGet, keys: []string{"a", "b", "c"}})
	f("  gets a b \r\n", reqWant{n: 13, cmd: CmdGets, keys: []string{"a", "b"}})
	f("gat 100 a b\r\n", reqWant{n: 13, cmd: CmdGat, keys: []string{"a", "b"}, exptime: 100})
	f("gats -1 a\r\n", reqWant{n: 11, cmd: CmdGats, keys: []string{"a"}, exptime: -1})
	f("set k 5 60 3\r\nabc\r\n", reqWant{n: 19, cmd: CmdSet, keys: []string{"k"}, vlen: 3, flags: 5, exptime: 60})
	f("set k 0 0 0\r\n\r\n", reqWant{n: 15, cmd: CmdSet, keys: []string{"k"}})
	f("add k 0 0 1 noreply\r\nx\r\n", reqWant{n: 24, cmd: CmdAdd, keys: []string{"k"}, vlen: 1, noreply: true})
	f("replace k 0 0 1\r\nx\r\n", reqWant{n: 20, cmd: CmdReplace, keys: []string{"k"}, vlen: 1})
	f("append k 0 0 1\r\nx\r\n", reqWant{n: 19, cmd: CmdAppend, keys: []string{"k"}, vlen: 1})
	f("prepend k 0 0 1\r\nx\r\n", reqWant{n: 20, cmd: CmdPrepend, keys: []string{"k"}, vlen: 1})
	f("cas k 0 0 1 99\r\nx\r\n", reqWant{n: 19, cmd: CmdCas, keys: []string{"k"}, vlen: 1})
	f("cas k 0 0 1 99 noreply\r\nx\r\n", reqWant{n: 27, cmd: CmdCas, keys: []string{"k"}, vlen: 1, noreply: true})
	f("delete k\r\n", reqWant{n: 10, cmd: CmdDelete, keys: []string{"k"}})
	f("delete k noreply\r\n", reqWant{n: 18, cmd: CmdDelete, keys: []string{"k"}, noreply: true})
	f("delete k 0\r\n", reqWant{n: 12, cmd: CmdDelete, keys: []string{"k"}})
	f("delete k 0 noreply\r\n", reqWant{n: 20, cmd: CmdDelete, keys: []string{"k"}, noreply: true})
	f("incr k 5\r\n", reqWant{n: 10, cmd: CmdIncr, keys: []string{"k"}})
	f("decr k 18446744073709551615 noreply\r\n", reqWant{n: 37, cmd: CmdDecr, keys: []string{"k"}, noreply: true})
	f("touch k 10\r\n", reqWant{n: 12, cmd: CmdTouch, keys: []string{"k"}, exptime: 10})
	f("flush_all\r\n", reqWant{n: 11, cmd: CmdFlushAll})
	f("flush_all 10 noreply\r\n", reqWant{n: 22, cmd: CmdFlushAll, noreply: true})
	f("stats\r\n", reqWant{n: 7, cmd: CmdStats})
	f("stats slabs\r\n", reqWant{n: 13, cmd: CmdStats})
	f("stats cachedump 1 10\r\n", reqWant{n: 22, cmd: CmdStats})
	f("version\r\n", reqWant{n: 9, cmd: CmdVersion})
	f("verbosity 1 noreply\r\n", reqWant{n: 21, cmd: CmdVerbosity, noreply: true})
	f("quit\r\n", reqWant{n: 6, cmd: CmdQuit})
	f("shutdown\r\n", reqWant{n: 10, cmd: CmdShutdown})
	f("cache_memlimit 100\r\n", reqWant{n: 20, cmd: CmdCacheMemlimit})
	f("slabs automove 1\r\n", reqWant{n: 18, cmd: CmdSlabs})
	f("lru_crawler metadump all\r\n", reqWant{n: 26, cmd: CmdLruCrawler})
	f("watch fetchers mutations\r\n", reqWant{n: 26, cmd: CmdWatch})
	f("lru mode flat\r\n", reqWant{n: 15, cmd: CmdLru})
	// A 250-byte key is fine.
	k250 := strings.Repeat("k", 250)
	f("get "+k250+"\r\n", reqWant{n: 256, cmd: CmdGet, keys: []string{k250}})
	f("set "+k250+" 0 0 1\r\nx\r\n", reqWant{n: 265, cmd: CmdSet, keys: []string{k250}, vlen: 1})
	// A long multi-get line beyond 2048 bytes is accepted (memcached keeps reading get lines).
	long := "get" + strings.Repeat(" abcdefghij", 300) + "\r\n"
	var r Request
	p := RequestParser{Dialect: Dialect1_6_18}
	if n, err := p.Parse([]byte(long), &r); err != nil || n != len(long) || len(r.Keys) != 300 {
		t.Fatalf("long multi-get: n=%d err=%v keys=%d", n, err, len(r.Keys))
	}
}

func TestParseRequestText_Failure(t *testing.T) {
	f := func(in string, w reqWant) {
		t.Helper()
		checkReq(t, &RequestParser{Dialect: Dialect1_6_18}, in, w)
	}
	bad := "CLIENT_ERROR bad command line format"
	k251 := strings.Repeat("k", 251)
	// Key of 251 bytes: the line is consumed, the data block is NOT (memcached parses it as the next command).
	f("set "+k251+" 0 0 1\r\nx\r\n", reqWant{n: 263, cmd: CmdSet, keys: []string{k251}, errText: bad})
	f("get "+k251+"\r\n", reqWant{n: 257, cmd: CmdGet, keys: []string{}, errText: bad})
	f("get a "+k251+" b\r\n", reqWant{n: 261, cmd: CmdGet, keys: []string{"a"}, errText: bad})
	f("delete "+k251+"\r\n", reqWant{n: 260, cmd: CmdDelete, errText: bad})
	// Negative, overflowing and non-numeric lengths.
	f("set k 0 0 -1\r\n", reqWant{n: 14, cmd: CmdSet, keys: []string{"k"}, errText: bad})
	f("set k 0 0 2147483648\r\n", reqWant{n: 22, cmd: CmdSet, keys: []string{"k"}, errText: bad})
	f("set k 0 0 99999999999999999999999\r\n", reqWant{n: 35, cmd: CmdSet, keys: []string{"k"}, errText: bad})
	f("set k 0 0 x\r\n", reqWant{n: 13, cmd: CmdSet, keys: []string{"k"}, errText: bad})
	// Flags are read as memcached's safe_strtoul does: 64 bits, truncated to 32 (1.6.18 stores flags 0 here).
	f("set k 4294967296 0 1\r\nx\r\n", reqWant{n: 25, cmd: CmdSet, keys: []string{"k"}, vlen: 1})
	f("set k -1 0 1\r\n", reqWant{n: 14, cmd: CmdSet, keys: []string{"k"}, errText: bad})
	// noreply suppresses the reply but the frame is still rejected.
	f("set k 0 0 -1 noreply\r\n", reqWant{n: 22, cmd: CmdSet, keys: []string{"k"}, noreply: true, errText: bad})
	// Wrong token counts answer ERROR.
	f("set k 0 0\r\n", reqWant{n: 11, cmd: CmdSet, errText: "ERROR"})
	f("set k 0 0 1 noreply extra\r\n", reqWant{n: 27, cmd: CmdSet, errText: "ERROR"})
	f("get\r\n", reqWant{n: 5, cmd: CmdGet, errText: "ERROR"})
	f("cas k 0 0 1\r\nx\r\n", reqWant{n: 13, cmd: CmdCas, errText: "ERROR"})
	f("incr k\r\n", reqWant{n: 8, cmd: CmdIncr, errText: "ERROR"})
	f("incr k abc\r\n", reqWant{n: 12, cmd: CmdIncr, keys: []string{"k"}, errText: "CLIENT_ERROR invalid numeric delta argument"})
	f("touch k x\r\n", reqWant{n: 11, cmd: CmdTouch, keys: []string{"k"}, errText: "CLIENT_ERROR invalid exptime argument"})
	f("delete k 5\r\n", reqWant{n: 12, cmd: CmdDelete, keys: []string{"k"}, errText: errDeleteUsage.Text})
	f("bogus\r\n", reqWant{n: 7, cmd: CmdOther, errText: "ERROR"})
	f("x\r\n", reqWant{n: 3, cmd: CmdOther, errText: "ERROR"})
	f("\r\n", reqWant{n: 2, cmd: CmdOther, errText: "ERROR"})
	// Data block without its "\r\n": the block is consumed, memcached answers bad data chunk.
	f("set k 0 0 3\r\nabcde\r\n", reqWant{n: 18, cmd: CmdSet, keys: []string{"k"}, vlen: 3, errText: "CLIENT_ERROR bad data chunk"})
	// A non-get line longer than 2048 bytes without "\n" closes the connection without a word.
	f("set "+strings.Repeat("x", 3000), reqWant{n: 0, errClose: true})
	// Too large for the configured limit: the block is swallowed.
	p := RequestParser{Dialect: Dialect1_6_18}
	p.MaxValue = 10
	checkReq(t, &p, "set k 0 0 11\r\nhello world\r\n", reqWant{n: 27, cmd: CmdSet, keys: []string{"k"}, vlen: 11,
		errText: "SERVER_ERROR object too large for cache"})
}

func TestParseRequestIncomplete(t *testing.T) {
	f := func(in string, frameLen int) {
		t.Helper()
		p := RequestParser{Dialect: Dialect1_6_18}
		var r Request
		n, err := p.Parse([]byte(in), &r)
		if n != 0 || err != ErrIncomplete {
			t.Fatalf("Parse(%q): n=%d err=%v, want incomplete", in, n, err)
		}
		if r.FrameLen != frameLen {
			t.Fatalf("Parse(%q): FrameLen=%d, want %d", in, r.FrameLen, frameLen)
		}
	}
	f("get foo", 0)
	f("get foo\r", 0)
	f("set k 0 0 10\r\nabc", 26)
	f("set k 0 0 3\r\nabc", 18)
	f("set k 0 0 3\r\nabc\r", 18)
	f("ms k 3 T10\r\nab", 17)
	f("\x80\x00\x00\x03", 0)
	f("\x80\x01\x00\x01\x08\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 34)
}

func TestParseRequestMeta(t *testing.T) {
	f := func(in string, w reqWant) {
		t.Helper()
		checkReq(t, &RequestParser{Dialect: Dialect1_6_18}, in, w)
	}
	f("mg foo v k Oab12 q t f s c\r\n", reqWant{n: 28, cmd: CmdMetaGet, proto: ProtoMeta, keys: []string{"foo"}, quiet: true})
	f("mg foo\r\n", reqWant{n: 8, cmd: CmdMetaGet, keys: []string{"foo"}})
	f("mg Zm9v b v\r\n", reqWant{n: 13, cmd: CmdMetaGet, keys: []string{"Zm9v"}})
	f("mg foo N30 T60 R10\r\n", reqWant{n: 20, cmd: CmdMetaGet, keys: []string{"foo"}, exptime: 60})
	f("ms foo 3 T60 F7 MA q\r\nabc\r\n", reqWant{n: 27, cmd: CmdMetaSet, keys: []string{"foo"}, vlen: 3, quiet: true,
		exptime: 60, flags: 7})
	f("ms foo 0\r\n\r\n", reqWant{n: 12, cmd: CmdMetaSet, keys: []string{"foo"}})
	f("ms foo 2 I C99\r\nab\r\n", reqWant{n: 20, cmd: CmdMetaSet, keys: []string{"foo"}, vlen: 2})
	f("md foo q I T30\r\n", reqWant{n: 16, cmd: CmdMetaDelete, keys: []string{"foo"}, quiet: true, exptime: 30})
	f("ma foo N0 J10 D5 MD v q\r\n", reqWant{n: 25, cmd: CmdMetaArithmetic, keys: []string{"foo"}, quiet: true})
	f("mn\r\n", reqWant{n: 4, cmd: CmdMetaNoop, proto: ProtoMeta})
	f("me foo\r\n", reqWant{n: 8, cmd: CmdMetaDebug, keys: []string{"foo"}})
	f("me Zm9v b\r\n", reqWant{n: 11, cmd: CmdMetaDebug, keys: []string{"Zm9v"}})
	// Failures.
	f("mg\r\n", reqWant{n: 4, cmd: CmdMetaGet, errText: "ERROR"})
	f("mz foo\r\n", reqWant{n: 8, cmd: CmdOther, errText: "ERROR"})
	f("mg foo v v\r\n", reqWant{n: 12, cmd: CmdMetaGet, keys: []string{"foo"}, errText: "CLIENT_ERROR duplicate flag"})
	f("mg foo !\r\n", reqWant{n: 10, cmd: CmdMetaGet, keys: []string{"foo"}, errText: "CLIENT_ERROR invalid flag"})
	f("mg foo Tabc\r\n", reqWant{n: 13, cmd: CmdMetaGet, keys: []string{"foo"}, errText: "CLIENT_ERROR bad token in command line format"})
	f("mg !!! b\r\n", reqWant{n: 10, cmd: CmdMetaGet, keys: []string{"!!!"}, errText: "CLIENT_ERROR error decoding key"})
	f("mg foo O"+strings.Repeat("o", 33)+"\r\n", reqWant{n: 43, cmd: CmdMetaGet, keys: []string{"foo"},
		errText: "CLIENT_ERROR opaque token too long"})
	f("ms foo\r\n", reqWant{n: 8, cmd: CmdMetaSet, keys: []string{"foo"}, errText: "CLIENT_ERROR bad command line format"})
	f("ms foo -1\r\n", reqWant{n: 11, cmd: CmdMetaSet, keys: []string{"foo"}, errText: "CLIENT_ERROR bad command line format"})
	// A flag error after the length: memcached swallows the data block.
	f("ms foo 2 MXY\r\nab\r\n", reqWant{n: 18, cmd: CmdMetaSet, keys: []string{"foo"}, vlen: 2,
		errText: "CLIENT_ERROR incorrect length for M token"})
	// memcached 1.6 answers every md/ma flag error with one text.
	f("ma foo Dx\r\n", reqWant{n: 11, cmd: CmdMetaArithmetic, keys: []string{"foo"},
		errText: "CLIENT_ERROR invalid or duplicate flag"})
	f("md foo q q\r\n", reqWant{n: 12, cmd: CmdMetaDelete, keys: []string{"foo"}, quiet: true,
		errText: "CLIENT_ERROR invalid or duplicate flag"})
}

func binReq(op uint8, key, extras, value string, opaque uint32) string {
	h := make([]byte, 24)
	h[0] = 0x80
	h[1] = op
	h[2], h[3] = byte(len(key)>>8), byte(len(key))
	h[4] = byte(len(extras))
	body := len(extras) + len(key) + len(value)
	h[8], h[9], h[10], h[11] = byte(body>>24), byte(body>>16), byte(body>>8), byte(body)
	h[12], h[13], h[14], h[15] = byte(opaque>>24), byte(opaque>>16), byte(opaque>>8), byte(opaque)
	return string(h) + extras + key + value
}

func binResp(op uint8, status uint16, key, extras, value string, opaque uint32) string {
	b := []byte(binReq(op, key, extras, value, opaque))
	b[0] = 0x81
	b[6], b[7] = byte(status>>8), byte(status)
	return string(b)
}

// binCas sets the cas field of a binary frame.
func binCas(frame string, cas uint64) string {
	b := []byte(frame)
	binary.BigEndian.PutUint64(b[16:24], cas)
	return string(b)
}

func TestParseRequestBinary(t *testing.T) {
	f := func(in string, w reqWant) {
		t.Helper()
		checkReq(t, &RequestParser{Dialect: Dialect1_6_18}, in, w)
	}
	setExt := "\x00\x00\x00\x07\x00\x00\x00\x3c"
	f(binReq(binGet, "foo", "", "", 1), reqWant{n: 27, cmd: CmdGet, proto: ProtoBinary, keys: []string{"foo"}})
	f(binReq(binGetKQ, "foo", "", "", 1), reqWant{n: 27, cmd: CmdGet, keys: []string{"foo"}, quiet: true})
	f(binReq(binSet, "foo", setExt, "hello", 2), reqWant{n: 40, cmd: CmdSet, keys: []string{"foo"}, vlen: 5, flags: 7,
		exptime: 60})
	f(binReq(binSetQ, "foo", setExt, "hello", 2), reqWant{n: 40, cmd: CmdSet, keys: []string{"foo"}, vlen: 5,
		quiet: true})
	f(binReq(binDeleteQ, "foo", "", "", 3), reqWant{n: 27, cmd: CmdDelete, keys: []string{"foo"}, quiet: true})
	f(binReq(binNoop, "", "", "", 4), reqWant{n: 24, cmd: CmdNoop, keys: []string{}})
	f(binReq(binStat, "", "", "", 4), reqWant{n: 24, cmd: CmdStats})
	f(binReq(binVersion, "", "", "", 4), reqWant{n: 24, cmd: CmdVersion})
	f(binReq(binSASLList, "", "", "", 4), reqWant{n: 24, cmd: CmdSASLList})
	f(binReq(binIncr, "n", strings.Repeat("\x00", 20), "", 5), reqWant{n: 45, cmd: CmdIncr, keys: []string{"n"}})
	f(binReq(binTouch, "t", "\x00\x00\x00\x0a", "", 6), reqWant{n: 29, cmd: CmdTouch, keys: []string{"t"}, exptime: 10})
	f(binReq(0x77, "", "", "", 4), reqWant{n: 24, cmd: CmdOther})
	// Failures: bad magic after the connection chose binary, inconsistent lengths, key over 250.
	p := RequestParser{Dialect: Dialect1_6_18}
	checkReq(t, &p, binReq(binNoop, "", "", "", 1), reqWant{n: 24, cmd: CmdNoop})
	// memcached reads a whole 24-byte header before it looks at the magic byte.
	if n, err := p.Parse([]byte("get foo\r\n"), &Request{}); n != 0 || err != ErrIncomplete {
		t.Fatalf("Parse(9 bytes of text on a binary connection) = %d, %v; want 0, ErrIncomplete", n, err)
	}
	checkReq(t, &p, "get foo bar baz qux quux\r\n", reqWant{n: 0, errClose: true})
	bad := []byte(binReq(binGet, "foo", "", "", 1))
	bad[11] = 1 // bodylen 1 < keylen 3
	f(string(bad), reqWant{n: 24, cmd: CmdGet, errClose: true})
	f(binReq(binGet, strings.Repeat("k", 251), "", "", 1), reqWant{n: 275, cmd: CmdGet, errClose: true})
	// Shapes memcached rejects: incr without its extras, get with extras, noop with a body.
	f(binReq(binIncr, "ctr", "", "", 1), reqWant{n: 27, cmd: CmdIncr, errClose: true})
	f(binReq(binGet, "k", "\x00\x00\x00\x00", "", 1), reqWant{n: 29, cmd: CmdGet, errClose: true})
	f(binReq(binNoop, "", "", "x", 1), reqWant{n: 24, cmd: CmdNoop, errClose: true})
	// An opcode memcached does not know: it skips bodylen bytes after the extras and key.
	f(binReq(binVerbosity, "", "\x00\x00\x00\x01", "", 1)+"XXXX", reqWant{n: 32, cmd: CmdVerbosity})
}

type respWant struct {
	n     int
	kind  RespKind
	key   string
	vlen  int
	flags uint32
	cas   uint64
	err   bool
}

func TestParseResponse(t *testing.T) {
	f := func(in string, w respWant) {
		t.Helper()
		var p ResponseParser
		var r Response
		n, err := p.Parse([]byte(in), &r)
		if w.err {
			if err == nil || err == ErrIncomplete {
				t.Fatalf("Parse(%q): want protocol error, got n=%d err=%v", in, n, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse(%q): unexpected error %v", in, err)
		}
		if n != w.n || r.Kind != w.kind || string(r.Key) != w.key || r.ValueLen != w.vlen || r.Flags != w.flags ||
			r.Cas != w.cas || r.HasCas != (w.cas != 0) {
			t.Fatalf("Parse(%q): n=%d kind=%v key=%q vlen=%d flags=%d cas=%d/%v, want %+v", in, n, r.Kind, r.Key,
				r.ValueLen, r.Flags, r.Cas, r.HasCas, w)
		}
	}
	f("VALUE foo 5 3\r\nabc\r\nEND\r\n", respWant{n: 20, kind: RespValue, key: "foo", vlen: 3, flags: 5})
	f("VALUE foo 0 3 77\r\nabc\r\n", respWant{n: 23, kind: RespValue, key: "foo", vlen: 3, cas: 77})
	f("END\r\n", respWant{n: 5, kind: RespEnd})
	f("STORED\r\n", respWant{n: 8, kind: RespStored})
	f("NOT_STORED\r\n", respWant{n: 12, kind: RespNotStored})
	f("EXISTS\r\n", respWant{n: 8, kind: RespExists})
	f("NOT_FOUND\r\n", respWant{n: 11, kind: RespNotFound})
	f("DELETED\r\n", respWant{n: 9, kind: RespDeleted})
	f("TOUCHED\r\n", respWant{n: 9, kind: RespTouched})
	f("OK\r\n", respWant{n: 4, kind: RespOK})
	f("42\r\n", respWant{n: 4, kind: RespNumber})
	f("STAT pid 1\r\n", respWant{n: 12, kind: RespStat})
	f("VERSION 1.6.18\r\n", respWant{n: 16, kind: RespVersion})
	f("ERROR\r\n", respWant{n: 7, kind: RespError})
	f("ERROR: shutdown not enabled\r\n", respWant{n: 29, kind: RespError})
	f("CLIENT_ERROR bad data chunk\r\n", respWant{n: 29, kind: RespClientError})
	f("SERVER_ERROR object too large for cache\r\n", respWant{n: 41, kind: RespServerError})
	f("RESET\r\n", respWant{n: 7, kind: RespLine})
	f("VA 3 f5 kfoo Oxy\r\nabc\r\n", respWant{n: 23, kind: RespMetaVA, key: "foo", vlen: 3, flags: 5})
	f("HD kfoo\r\n", respWant{n: 9, kind: RespMetaHD, key: "foo"})
	f("VA 1 c18446744073709551615\r\nx\r\n", respWant{n: 31, kind: RespMetaVA, vlen: 1, cas: 1<<64 - 1})
	f(binCas(binResp(binGet, 0, "", "\x00\x00\x00\x00", "v", 1), 0x0102030405060708), respWant{n: 29,
		kind: RespBinary, vlen: 1, cas: 0x0102030405060708})
	f("HD\r\n", respWant{n: 4, kind: RespMetaHD})
	f("EN\r\n", respWant{n: 4, kind: RespMetaEN})
	f("NF\r\n", respWant{n: 4, kind: RespMetaNF})
	f("NS\r\n", respWant{n: 4, kind: RespMetaNS})
	f("EX\r\n", respWant{n: 4, kind: RespMetaEX})
	f("MN\r\n", respWant{n: 4, kind: RespMetaMN})
	f("ME foo exp=-1 la=1\r\n", respWant{n: 20, kind: RespMetaME, key: "foo"})
	f(binResp(binGet, 0, "", "\x00\x00\x00\x09", "val", 7), respWant{n: 31, kind: RespBinary, vlen: 3, flags: 9})
	f(binResp(binGetK, 0, "key", "\x00\x00\x00\x00", "val", 7), respWant{n: 34, kind: RespBinary, key: "key", vlen: 3})
	// Failures.
	f("VALUE foo 0 -1\r\n", respWant{err: true})
	f("VALUE foo\r\n", respWant{err: true})
	f("VALUE foo 0 3\r\nabcd\r\n", respWant{err: true})
	f(strings.Repeat("x", DefaultMaxResponseLine+1), respWant{err: true})
	// Incomplete.
	var p ResponseParser
	var r Response
	if n, err := p.Parse([]byte("VALUE foo 0 10\r\nabc"), &r); n != 0 || err != ErrIncomplete || r.FrameLen != 28 {
		t.Fatalf("incomplete VALUE: n=%d err=%v FrameLen=%d", n, err, r.FrameLen)
	}
}

func TestLoudOpcode(t *testing.T) {
	f := func(op, want uint8, wantOK bool) {
		t.Helper()
		got, ok := LoudOpcode(op)
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("LoudOpcode(%#x) = %#x, %v; want %#x, %v", op, got, ok, want, wantOK)
		}
	}
	f(0x09, 0x00, true) // getq → get
	f(0x0d, 0x0c, true) // getkq → getk
	f(0x11, 0x01, true)
	f(0x14, 0x04, true)
	f(0x18, 0x08, true)
	f(0x19, 0x0e, true) // appendq → append
	f(0x1a, 0x0f, true)
	f(0x1e, 0x1d, true)
	f(0x24, 0x23, true)
	f(0x00, 0, false) // already loud
	f(0x0a, 0, false)
	f(0xff, 0, false)
}
