// Requests on which memcached 1.6.18 and 1.6.45 answer differently, with both servers' exact bytes: the parser
// must frame each as the server of its Dialect does and answer what it rejects in that server's words. Found by
// running memcached's t/ suite through the pool proxy and by reading proto_text.c and proto_parser.c.
package mcproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// dialectCase is one request stream and what each server answers to it, whole.
type dialectCase struct {
	name     string
	in       string
	old, new string // memcached 1.6.18's and 1.6.45's answers
	eof      bool   // both close the connection after their answer
}

func dialectCases() []dialectCase {
	const bad = "CLIENT_ERROR bad command line format\r\n"
	k251 := strings.Repeat("k", 251)
	return []dialectCase{
		// P1: a store line rejected after its length parses: 1.6.45 swallows the data block, 1.6.18 reads it as a
		// command; a cas without its unique is a token count error (ERROR) for 1.6.18 only.
		{name: "P1/cas-without-unique", in: "cas p1a 0 0 6\r\nbarva2\r\nset p1a1 0 0 1\r\n1\r\n",
			old: "ERROR\r\nERROR\r\nSTORED\r\n", new: bad + "STORED\r\n"},
		{name: "P1/cas-bad-unique", in: "cas p1b 0 0 6 abc\r\nbarva2\r\nset p1b1 0 0 1\r\n1\r\n",
			old: bad + "ERROR\r\nSTORED\r\n", new: bad + "STORED\r\n"},
		{name: "P1/set-bad-flags", in: "set p1c bar 0 6\r\nbarva2\r\nset p1c1 0 0 1\r\n1\r\n",
			old: bad + "ERROR\r\nSTORED\r\n", new: bad + "STORED\r\n"},
		{name: "P1/cas-empty", in: "cas p1d 0 0 6 \r\nbarva2\r\nmn\r\n", old: "ERROR\r\nERROR\r\nMN\r\n", new: bad + "MN\r\n"},
		{name: "P1/key-251", in: "set " + k251 + " 0 0 1\r\nx\r\nmn\r\n", old: bad + "ERROR\r\nMN\r\n", new: bad + "MN\r\n"},
		{name: "P1/flags-negative", in: "set p1f 4294967296 0 1\r\nx\r\nset p1f -1 0 1\r\nx\r\nmn\r\n",
			old: "STORED\r\n" + bad + "ERROR\r\nMN\r\n", new: "STORED\r\n" + bad + "MN\r\n"},
		{name: "P1/exptime-over-int32", in: "set p1g 0 99999999999 1\r\nx\r\nmn\r\n",
			old: "STORED\r\nMN\r\n", new: "STORED\r\nMN\r\n"},
		// 1.6.18 reads numbers with strtol and truncates them to 32 bits; 1.6.45's mcmc refuses them.
		{name: "P1/length-over-32-bits", in: "set p1j 0 0 4294967297\r\nx\r\ntouch p1j 4294967297\r\nmn\r\n",
			old: "STORED\r\nTOUCHED\r\nMN\r\n", new: bad + bad + "CLIENT_ERROR invalid exptime argument\r\nMN\r\n"},
		{name: "P1/extra-tokens", in: "set p1h 0 0 1 2 3\r\nx\r\nmn\r\n", old: "ERROR\r\nERROR\r\nMN\r\n", new: "STORED\r\nMN\r\n"},
		{name: "P1/bad-data-chunk", in: "set p1i 0 0 3\r\nabcde\r\nmn\r\n",
			old: "CLIENT_ERROR bad data chunk\r\nERROR\r\nMN\r\n", new: "CLIENT_ERROR bad data chunk\r\n" + bad + "MN\r\n"},
		// P2/P3: meta flags E and x are 1.6.27's.
		{name: "P2/E-and-x", in: "ms p2 2 E973\r\nhi\r\nmg p2 c E5\r\nmd p2 E80\r\nma p2 E77\r\nmd p2 x\r\nms p2 2 x\r\nhi\r\nmn\r\n",
			old: "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n" +
				"CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid flag\r\nMN\r\n",
			new: "HD\r\nHD c973\r\nHD\r\nNF\r\nNF\r\nHD\r\nMN\r\n"},
		// Meta flag tokens must start with a letter or digit for 1.6.45's tokenizer; md names its error.
		{name: "P2/meta-flag-chars", in: "md p2b zz\r\nma p2b zz\r\nmg p2b !\r\nms p2b 2 !\r\nhi\r\nmg p2b 5\r\nmg p2b [\r\nme p2b zz\r\nme p2b\r\nmn\r\n",
			old: "CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid flag\r\n" +
				"CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid flag\r\nEN\r\nEN\r\nMN\r\n",
			new: "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n" + bad + bad + "ERROR\r\n" +
				"CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid flag\r\nEN\r\nEN\r\nMN\r\n"},
		{name: "P2/M-and-plus", in: "ms p2c 2 Mxx\r\nhi\r\nmg p2c N+5\r\nmn\r\n",
			old: "CLIENT_ERROR incorrect length for M token\r\nHD W\r\nMN\r\n",
			new: "CLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR bad token in command line format\r\nMN\r\n"},
		{name: "P2/me-b", in: "me zz b\r\nmn\r\n", old: bad + "MN\r\n", new: "EN\r\nMN\r\n"},
		// P4: missing tokens and lines under 4 bytes.
		{name: "P4/missing-tokens", in: " \nincr p4 \r\nget\r\ntouch p4\r\nmn\r\n",
			old: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nMN\r\n", new: bad + bad + bad + bad + "MN\r\n"},
		{name: "P4/short-lines", in: "\r\n\nab\nmn\nab\r\nmn\r\n",
			old: "ERROR\r\nERROR\r\nERROR\r\nMN\r\nERROR\r\nMN\r\n", new: bad + bad + bad + bad + "ERROR\r\nMN\r\n"},
		{name: "P4/token-minimums", in: "gat 100\r\ngets\r\ndecr p4\r\ndelete\r\nmg\r\nms p4\r\nmd\r\nma\r\nme\r\nmn\r\n",
			old: "END\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\n" + bad + "ERROR\r\nERROR\r\n" + bad + "MN\r\n",
			new: strings.Repeat(bad, 9) + "MN\r\n"},
		{name: "P4/leading-spaces", in: " get p4\r\n delete p4\r\n verbosity 0\r\nmn\r\n",
			old: "END\r\nNOT_FOUND\r\nOK\r\nMN\r\n", new: "ERROR\r\nERROR\r\nOK\r\nMN\r\n"},
		{name: "P4/delete-extra-tokens", in: "delete p4d 5\r\ndelete p4d 0\r\ndelete p4d 5 noreply\r\ndelete p4d y z w\r\nmn\r\n",
			old: errDeleteUsage.Text + "\r\nNOT_FOUND\r\nERROR\r\nMN\r\n", new: "NOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\nMN\r\n"},
		{name: "P4/admin-tokens", in: "verbosity\r\ncache_memlimit\r\nlru\r\nflush_all 0 noreply extra\r\nmn\r\n",
			old: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nMN\r\n", new: bad + "ERROR\r\nERROR\r\nOK\r\nMN\r\n"},
		{name: "P4/noreply", in: "bogus noreply\r\nverbosity noreply\r\nincr p4n noreply\r\nset p4n 0 0 x noreply\r\ncas p4n 0 0 1 noreply\r\nx\r\nmg p4n zz q\r\nmn\r\n",
			old: "ERROR\r\nERROR\r\nCLIENT_ERROR invalid flag\r\nMN\r\n", new: bad + "CLIENT_ERROR invalid flag\r\nMN\r\n"},
		{name: "P4/numbers", in: "set p4x 0 0 +3\r\nabc\r\nset p4x +0 +0 3\r\nabc\r\nset p4x 0 0 -0\r\n\r\nincr p4x +1\r\ntouch p4x +1\r\nincr p4y -0\r\nincr p4y -1\r\nmn\r\n",
			old: "STORED\r\nSTORED\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nTOUCHED\r\nNOT_FOUND\r\n" +
				"CLIENT_ERROR invalid numeric delta argument\r\nMN\r\n",
			new: bad + "ERROR\r\nSTORED\r\nSTORED\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid exptime argument\r\n" +
				"CLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\nMN\r\n"},
		// A get with a key over 250 bytes: 1.6.45 follows its error line with an empty one.
		{name: "P4/get-key-251", in: "get a " + k251 + " b\r\nmn\r\n", old: bad + "MN\r\n", new: bad + "\r\nMN\r\n"},
		// A3: a line over 2048 bytes without "\n" that is not a get: both close without a word.
		{name: "A3/line-too-long", in: "incr " + strings.Repeat(" ", 2048) + " manyspaces 1", eof: true},
		{name: "A3/http", in: "xyz foo HTTP/1.1\r\nmn\r\n", eof: true},
	}
}

// dialectTranscript replays in through a RequestParser of dialect d as a proxy answering locally would: an
// error frame adds the parser's reply (ProtocolError.AppendReply), a frame it passes on adds the next response
// taken from the server's answer srv. The result must be srv itself.
func dialectTranscript(t *testing.T, d Dialect, in, srv string) (string, bool) {
	t.Helper()
	p := RequestParser{Dialect: d}
	var sp ResponseParser
	var r Request
	var resp Response
	var out []byte
	buf, answers := []byte(in), []byte(srv)
	for len(buf) > 0 {
		n, err := p.Parse(buf, &r)
		var pe *ProtocolError
		switch {
		case err == ErrIncomplete:
			t.Fatalf("dialect %v: %q left incomplete", d, buf)
		case errors.As(err, &pe):
			out = pe.AppendReply(out, &r)
			if pe.Close {
				return string(out), true
			}
		case err != nil:
			t.Fatalf("dialect %v: %q: %v", d, buf, err)
		case r.ExpectsResponse() && !r.Quiet:
			// One response, a VALUE's data block and its END included.
			for {
				m, err := sp.Parse(answers, &resp)
				if err != nil {
					t.Fatalf("dialect %v: no response left for %q in %q: %v", d, buf[:n], answers, err)
				}
				out = append(out, answers[:m]...)
				answers = answers[m:]
				if resp.Kind != RespValue {
					break
				}
			}
		}
		if len(out) > len(srv) || srv[:len(out)] != string(out) {
			t.Fatalf("dialect %v: after %q the parser's transcript is\n%q, want a prefix of\n%q", d, buf[:n], out, srv)
		}
		answers = []byte(srv[len(out):])
		buf = buf[n:]
	}
	return string(out), false
}

func TestDialectDivergences(t *testing.T) {
	f := func(c dialectCase) {
		t.Helper()
		for _, v := range []struct {
			d   Dialect
			srv string
		}{{Dialect1_6_18, c.old}, {DialectNewest, c.new}, {NewDialect(1, 6, 45), c.new}} {
			got, closed := dialectTranscript(t, v.d, c.in, v.srv)
			if got != v.srv || closed != c.eof {
				t.Errorf("%s with dialect %v: transcript %q closed=%v, want %q closed=%v", c.name, v.d, got, closed, v.srv, c.eof)
			}
		}
	}
	for _, c := range dialectCases() {
		f(c)
	}
}

// dialectPlayAll plays every case against the memcached at addr and checks its bytes.
func dialectPlayAll(t *testing.T, addr string, want func(dialectCase) string) {
	t.Helper()
	for _, c := range dialectCases() {
		got, eof := dialectPlay(t, addr, c.in)
		if got != want(c) || eof != c.eof {
			t.Errorf("%s: memcached on %s answered %q eof=%v, want %q eof=%v", c.name, addr, got, eof, want(c), c.eof)
		}
	}
}

// TestDialectServers plays every case against memcached 1.6.18 (the memcached in PATH, when it is that
// version) and checks its bytes. The same cases against a current build: dialect_current_test.go.
func TestDialectServers(t *testing.T) {
	srv := mctest.StartMemcached(t)
	if d := confDialect(t, srv.Addr); d != Dialect1_6_18 {
		mctest.Missing(t, fmt.Sprintf("the memcached in PATH is %v; these bytes are 1.6.18's (Debian 12's)", d))
	}
	dialectPlayAll(t, srv.Addr, func(c dialectCase) string { return c.old })
}

// dialectStart runs the memcached binary bin on a free loopback port until the test ends.
func dialectStart(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	port := mctest.FreePort(t)
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "2"}, extra...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s %v: %v", bin, args, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s did not accept connections within 5s: %v", bin, addr, err)
		}
	}
}

// dialectPlay writes in and reads the answer until the connection ends or stays quiet after an answer
// ending in "MN\r\n" (or 300ms when none).
func dialectPlay(t *testing.T, addr, in string) (string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(in)); err != nil {
		t.Fatalf("cannot write to %s: %v", addr, err)
	}
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for {
		wait := 300 * time.Millisecond
		if bytes.HasSuffix(out, []byte("MN\r\n")) {
			wait = 50 * time.Millisecond
		}
		until := time.Now().Add(wait)
		if until.After(deadline) {
			until = deadline
		}
		_ = c.SetReadDeadline(until)
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
			return string(out), true
		}
		if err != nil {
			return string(out), false
		}
	}
}

// TestDialectBinary: binary rules, the same in both releases except the 1 GiB body limit of 1.6.42.
func TestDialectBinary(t *testing.T) {
	f := func(d Dialect, force Protocol, in string, wantN int, wantReply string, wantClose bool) {
		t.Helper()
		p := RequestParser{Dialect: d, Force: force}
		var r Request
		n, err := p.Parse([]byte(in), &r)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("dialect %v: Parse(%q) = %d, %v; want a protocol error", d, confShort(in), n, err)
		}
		if got := string(pe.AppendReply(nil, &r)); n != wantN || got != wantReply || pe.Close != wantClose {
			t.Fatalf("dialect %v: Parse(%q) = %d, reply %q close=%v; want %d, %q close=%v", d, confShort(in), n, got,
				pe.Close, wantN, wantReply, wantClose)
		}
	}
	resp := func(op uint8, status uint16, body string, opaque uint32) string {
		var h [24]byte
		h[0], h[1] = binRespMagic, op
		binary.BigEndian.PutUint16(h[6:8], status)
		binary.BigEndian.PutUint32(h[8:12], uint32(len(body)))
		binary.BigEndian.PutUint32(h[12:16], opaque)
		return string(h[:]) + body
	}
	k365 := strings.Repeat("k", 365)
	for _, d := range []Dialect{Dialect1_6_18, DialectNewest} {
		// P6: a get with a 365-byte key: status 0x0004 "Invalid arguments", then close (bytes from both servers).
		f(d, 0, confBin(binGet, k365, "", "", 7), 24+365, resp(binGet, BinStatusInvalid, "Invalid arguments", 7), true)
		// Key longer than the body: 0x0081 "Unknown command", then close.
		bad := confBin(binGet, "0123456789", "", "", 1)
		bad = bad[:8] + "\x00\x00\x00\x05" + bad[12:]
		f(d, 0, bad, 24, resp(binGet, BinStatusUnknownCommand, "Unknown command", 1), true)
		// A4: 24 bytes that are not a binary header on a -B binary server: closed without a word.
		f(d, ProtoBinary, "GARBAGEGARBAGEGARBAGE123", 0, "", true)
		// A1 with a MaxValue: 0x0003 "Too large.", the body swallowed.
		p := RequestParser{Dialect: d, MaxValue: 4}
		var r Request
		in := confBin(binSet, "k", confU32(0, 0), "hello", 9)
		if n, err := p.Parse([]byte(in), &r); n != len(in) || err != BinTooLarge ||
			string(BinTooLarge.AppendReply(nil, &r)) != resp(binSet, BinStatusTooLarge, "Too large.", 9) {
			t.Fatalf("dialect %v: binary set over MaxValue: %d, %v", d, n, err)
		}
	}
	// A body over 1 GiB: 1.6.42 and later answer 0x0004 and close once the extras and key are in.
	huge := confBin(binSet, "k", confU32(0, 0), "", 3)
	huge = huge[:8] + "\x40\x00\x00\x0a" + huge[12:]
	f(DialectNewest, 0, huge, 33, resp(binSet, BinStatusInvalid, "Invalid arguments", 3), true)
	var r Request
	if n, err := (&RequestParser{Dialect: Dialect1_6_18}).Parse([]byte(huge), &r); n != 0 || err != ErrIncomplete {
		t.Fatalf("dialect 1.6.18: a 1 GiB body: %d, %v; want ErrIncomplete", n, err)
	}
}

func TestParseVersion_Success(t *testing.T) {
	f := func(line string, want Dialect) {
		t.Helper()
		d, err := ParseVersion([]byte(line))
		if err != nil || d != want {
			t.Fatalf("ParseVersion(%q) = %v, %v; want %v", line, d, err, want)
		}
	}
	f("VERSION 1.6.18\r\n", Dialect1_6_18)
	f("VERSION 1.6.18", Dialect1_6_18)
	f("VERSION 1.6.45\r\n", NewDialect(1, 6, 45))
	f("VERSION 1.6.45-12-gabcdef0\r\n", NewDialect(1, 6, 45))
	f("VERSION 1.4.5\r\n", NewDialect(1, 4, 5))
	f("VERSION 1.6.9-rc1\r\n", NewDialect(1, 6, 9))
}

func TestParseVersion_Failure(t *testing.T) {
	f := func(line string) {
		t.Helper()
		if d, err := ParseVersion([]byte(line)); err == nil {
			t.Fatalf("ParseVersion(%q) = %v; want an error", line, d)
		}
	}
	f("")
	f("ERROR\r\n")
	f("VERSION \r\n")
	f("VERSION 1.6\r\n")
	f("VERSION UNKNOWN\r\n")
	f("VERSION 1..6\r\n")
	f("version 1.6.18\r\n")
}

func TestDialectRules(t *testing.T) {
	f := func(d Dialect, ex, pp, body bool) {
		t.Helper()
		if d.metaFlagsEx() != ex || d.protoParser() != pp || d.binBodyLimit() != body {
			t.Fatalf("dialect %v: E/x %v, proto_parser %v, binary body limit %v; want %v %v %v", d, d.metaFlagsEx(),
				d.protoParser(), d.binBodyLimit(), ex, pp, body)
		}
	}
	f(Dialect1_6_18, false, false, false)
	f(NewDialect(1, 6, 26), false, false, false)
	f(NewDialect(1, 6, 27), true, false, false)
	f(NewDialect(1, 6, 39), true, false, false)
	f(NewDialect(1, 6, 40), true, true, false)
	f(NewDialect(1, 6, 42), true, true, true)
	f(NewDialect(1, 7, 0), true, true, true)
	f(DialectNewest, true, true, true)
	if DialectNewest.String() != "newest" || Dialect1_6_18.String() != "1.6.18" {
		t.Fatalf("String: %q %q", DialectNewest, Dialect1_6_18)
	}
}

func TestParseItemSizeMax(t *testing.T) {
	f := func(in string, want int, wantErr bool) {
		t.Helper()
		n, err := ParseItemSizeMax([]byte(in))
		if n != want || (err != nil) != wantErr {
			t.Fatalf("ParseItemSizeMax(%q) = %d, %v; want %d (error %v)", in, n, err, want, wantErr)
		}
	}
	f("STAT maxbytes 67108864\r\nSTAT item_size_max 1048576\r\nSTAT slab_chunk_max 524288\r\nEND\r\n", 1048576, false)
	f("STAT item_size_max 2097152\r\n", 2097152, false)
	f("STAT item_size_max 2097152", 2097152, false)
	f("STAT maxbytes 67108864\r\nEND\r\n", 0, true)
	f("STAT item_size_max big\r\nEND\r\n", 0, true)
	f("", 0, true)
}

// TestDialectZeroAllocs: both dialects parse every divergence case without allocating.
func TestDialectZeroAllocs(t *testing.T) {
	for _, d := range []Dialect{Dialect1_6_18, DialectNewest} {
		for _, c := range dialectCases() {
			p := RequestParser{Dialect: d}
			var r Request
			buf := []byte(c.in)
			parseAll := func() {
				p.Reset()
				for b := buf; len(b) > 0; {
					n, err := p.Parse(b, &r)
					if n == 0 || err == ErrIncomplete {
						return
					}
					b = b[n:]
				}
			}
			parseAll() // grow r.Keys
			if a := testing.AllocsPerRun(50, parseAll); a != 0 {
				t.Errorf("dialect %v, %s: %.1f allocations per stream", d, c.name, a)
			}
		}
	}
}
