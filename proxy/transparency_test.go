// Transparency: the same scripted sessions (text and meta on one connection, binary on another) played against
// memcached directly and through the proxy must get byte-identical answers, apart from values that
// legitimately differ between two servers (STAT values, cas uniques, TTL and last-access meta flags).
package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
)

const (
	mib = 1 << 20
	// underMiB is a value that fits memcached's default 1 MiB items with its item header.
	underMiB = mib - 512
)

// session plays a scripted conversation one exchange at a time and keeps the transcript of every response
// byte. Each exchange is written by a goroutine while the responses are read, so large pipelined writes cannot
// deadlock against large responses.
type session struct {
	t      *testing.T
	c      net.Conn
	r      *bufio.Reader
	binary bool
	out    bytes.Buffer
}

func newSession(t *testing.T, addr string, binary bool) *session {
	c := dial(t, addr)
	return &session{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10), binary: binary}
}

// Sentinels end each exchange with a response that appears nowhere else in the scripts.
const (
	textSentinel     = "set zz_sentinel 0 0 8\r\nSENTINEL\r\nget zz_sentinel\r\n"
	textSentinelResp = "VALUE zz_sentinel 0 8\r\nSENTINEL\r\nEND\r\n"
	binSentinel      = 0xFEEDF00D
)

// exchange writes req followed by the sentinel and returns every response byte up to and including the
// sentinel's.
func (s *session) exchange(req []byte) []byte {
	s.t.Helper()
	_ = s.c.SetDeadline(time.Now().Add(ioTimeout))
	if s.binary {
		req = append(req[:len(req):len(req)], binReq{op: 0x0a, opaque: binSentinel}.bytes()...)
	} else {
		req = append(req[:len(req):len(req)], textSentinel...)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := s.c.Write(req)
		werr <- err
	}()
	var got []byte
	var err error
	if s.binary {
		for {
			var f binResp
			if f, err = readBinResp(s.r); err != nil {
				break
			}
			got = append(got, f.raw...)
			if f.op == 0x0a && f.opaque == binSentinel {
				break
			}
		}
	} else {
		buf := make([]byte, 64<<10)
		for !bytes.HasSuffix(got, []byte(textSentinelResp)) {
			var n int
			n, err = s.r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		s.t.Fatalf("reading the answers to %.80q: %v (got %d bytes, ending %q)", req, err, len(got),
			got[max(0, len(got)-120):])
	}
	if err := <-werr; err != nil {
		s.t.Fatalf("writing %.80q: %v", req, err)
	}
	s.out.Write(got)
	return got
}

// quit sends req, which must make the server close the connection, and records what comes back until EOF.
func (s *session) quit(req []byte) {
	s.t.Helper()
	_ = s.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := s.c.Write(req); err != nil {
		s.t.Fatalf("writing %q: %v", req, err)
	}
	b, err := io.ReadAll(s.r)
	if err != nil && !isReset(err) {
		s.t.Fatalf("waiting for the server to close after %q: %v", req, err)
	}
	s.out.Write(b)
}

// reopen replaces a connection the server closed.
func (s *session) reopen() {
	s.t.Helper()
	addr := s.c.RemoteAddr().String()
	s.c.Close()
	s.c = dial(s.t, addr)
	s.r.Reset(s.c)
}

// casOf returns the cas unique of the first "VALUE key …" line for key in a text answer.
func casOf(t *testing.T, resp []byte, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^VALUE ` + regexp.QuoteMeta(key) + ` \d+ \d+ (\d+)\r$`).FindSubmatch(resp)
	if m == nil {
		t.Fatalf("no gets answer for %q in %.200q", key, resp)
	}
	return string(m[1])
}

// textScript is the text and meta session. It returns nothing: the transcript is in s.out.
func textScript(s *session) {
	long := strings.Repeat("k", 251)
	// Storage, arithmetic, deletion, touch and retrieval, pipelined in one write.
	s.exchange([]byte("flush_all\r\n" +
		"set t:a 1 0 5\r\nhello\r\n" +
		"set t:b 2 0 3\r\nfoo\r\n" +
		"add t:a 0 0 1\r\nx\r\n" +
		"add t:c 3 100 3\r\nbar\r\n" +
		"replace t:missing 0 0 1\r\nx\r\n" +
		"replace t:c 4 0 4\r\nbarr\r\n" +
		"append t:a 0 0 6\r\n world\r\n" +
		"prepend t:a 0 0 2\r\n>>\r\n" +
		"append t:missing 0 0 1\r\nx\r\n" +
		"prepend t:missing 0 0 1\r\nx\r\n" +
		"set t:n 0 0 2\r\n10\r\n" +
		"incr t:n 5\r\n" +
		"decr t:n 20\r\n" +
		"incr t:n 18446744073709551615\r\n" +
		"incr t:missing 1\r\n" +
		"decr t:a 1\r\n" +
		"incr t:n 1 noreply\r\n" +
		"set t:nr 0 0 1 noreply\r\nz\r\n" +
		"add t:nr 0 0 1 noreply\r\nz\r\n" +
		"delete t:b\r\n" +
		"delete t:b\r\n" +
		"delete t:nr noreply\r\n" +
		"delete t:c 0\r\n" +
		"touch t:a 100\r\n" +
		"touch t:missing 100\r\n" +
		"touch t:n 0 noreply\r\n" +
		"set t:c 5 0 3\r\nbaz\r\n" +
		"get t:a\r\n" +
		"get t:a t:b t:c t:missing t:n t:a\r\n" +
		"gets t:a t:c t:missing\r\n" +
		"gat 200 t:a t:missing\r\n" +
		"gats 300 t:c\r\n" +
		"get t:missing\r\n"))
	// cas needs the unique from a gets answer.
	casA := casOf(s.t, s.exchange([]byte("gets t:a\r\n")), "t:a")
	s.exchange([]byte("cas t:a 9 0 1 " + casA + "\r\nC\r\n" +
		"cas t:a 9 0 1 " + casA + "\r\nD\r\n" +
		"cas t:missing 0 0 1 1\r\nE\r\n" +
		"cas t:a 0 0 1 1 noreply\r\nF\r\n" +
		"get t:a\r\n"))
	// Administrative commands.
	s.exchange([]byte("version\r\n" +
		"verbosity 0\r\n" +
		"verbosity 0 noreply\r\n" +
		"stats\r\n" +
		"stats settings\r\n" +
		"stats items\r\n" +
		"stats slabs\r\n" +
		"stats sizes\r\n" +
		"stats reset\r\n" +
		"cache_memlimit 64\r\n" +
		"slabs automove 0\r\n" +
		"lru_crawler tocrawl 100\r\n" +
		"lru mode flat\r\n" +
		"shutdown\r\n" +
		"flush_all 0\r\n" +
		"flush_all noreply\r\n"))
	// Meta commands, one at a time in one write.
	s.exchange([]byte("ms m:a 5 T0 F7\r\nhello\r\n" +
		"ms m:a 5 c\r\nhello\r\n" +
		"ms m:b 3 MA\r\nxyz\r\n" +
		"ms m:b 3 ME k O1\r\nxyz\r\n" +
		"ms m:b 1 ME\r\nq\r\n" +
		"ms m:b 2 MP\r\n<<\r\n" +
		"ms m:b 2 MS F3 T100 I\r\nab\r\n" +
		"ms bTpiOg== 2 b\r\nb6\r\n" +
		"mg m:a v f t s k O123\r\n" +
		"mg m:a c\r\n" +
		"mg m:a h l\r\n" +
		"mg m:a\r\n" +
		"mg m:missing v\r\n" +
		"mg bTpiOg== b v k\r\n" +
		"mg m:b v T30 N30\r\n" +
		"me m:a\r\n" +
		"md m:b\r\n" +
		"md m:b\r\n" +
		"md m:a I T30\r\n" +
		"mg m:a v c\r\n" +
		"ma m:n N0 J13 v\r\n" +
		"ma m:n v\r\n" +
		"ma m:n MD D20 v\r\n" +
		"ma m:n MI D7 t c\r\n" +
		"ma m:missing\r\n" +
		"ma m:a\r\n" +
		"mn\r\n"))
	// A quiet batch: successes are suppressed, failures and hits answer, mn ends the batch.
	s.exchange([]byte("ms q:1 2 q\r\naa\r\n" +
		"ms q:2 2 q\r\nbb\r\n" +
		"ms q:3 2 q MR\r\ncc\r\n" +
		"mg q:1 v q k\r\n" +
		"mg q:missing v q\r\n" +
		"mg q:2 v q O9\r\n" +
		"md q:2 q\r\n" +
		"md q:none q\r\n" +
		"ma q:1 q\r\n" +
		"mn\r\n"))
	// Errors memcached answers and goes on after.
	s.exchange([]byte("bogus_command arg\r\n" +
		"\r\n" +
		"GET t:a\r\n" +
		"set e:a 0 0 5\r\nabcdefg\r\n" +
		"set e:neg 0 0 -1\r\n" +
		"set " + long + " 0 0 1\r\nx\r\n" +
		"delete " + long + "\r\n" +
		"set e:b notanumber 0 1\r\nx\r\n" +
		"set e:c 0 0\r\n" +
		"incr t:n notanumber\r\n" +
		"touch t:a notanumber\r\n" +
		"delete t:a 5\r\n" +
		"mg m:a zz\r\n" +
		"mg m:a v v\r\n" +
		"ms m:x notanumber\r\n" +
		"get\r\n"))
	// A get with a key over 250 bytes makes memcached 1.6.18 discard every answer it had not sent yet
	// (conn_release_items in process_get_command), so what a pipeline before it gets back depends on how its
	// bytes were batched: send these first in their exchange.
	s.exchange([]byte("get " + long + "\r\n"))
	s.exchange([]byte("get t:a " + long + "\r\n"))
	// Values around memcached's 1 MiB item limit; the proxy's max_item_size is the same 1 MiB, so it answers
	// the one over the limit itself (with memcached's words) and memcached answers the exact 1 MiB one, which
	// does not fit with its item header.
	s.exchange([]byte("set big:under 0 0 " + strconv.Itoa(underMiB) + "\r\n" + repeat(underMiB) + "\r\n" +
		"get big:under\r\n" +
		"set big:exact 0 0 " + strconv.Itoa(mib) + "\r\n" + repeat(mib) + "\r\n" +
		"set big:over 0 0 " + strconv.Itoa(mib+1) + "\r\n" + repeat(mib+1) + "\r\n" +
		"set big:over 0 0 " + strconv.Itoa(mib+1) + " noreply\r\n" + repeat(mib+1) + "\r\n" +
		"ms big:meta " + strconv.Itoa(mib+1) + "\r\n" + repeat(mib+1) + "\r\n" +
		"ms big:meta " + strconv.Itoa(mib+1) + " q\r\n" + repeat(mib+1) + "\r\n" +
		"get big:exact big:over big:meta big:under\r\n" +
		"delete big:under\r\n"))
	s.quit([]byte("get t:a\r\nquit\r\nget t:a\r\n"))
}

// binScript is the binary session.
func binScript(s *session) {
	op := uint32(0)
	next := func(r binReq) []byte { op++; r.opaque = op; return r.bytes() }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	s.exchange(cat(
		next(binReq{op: 0x08}), // flush
		next(binReq{op: 0x01, key: "b:a", extras: storeExtras(1, 0), value: "hello"}),
		next(binReq{op: 0x02, key: "b:a", extras: storeExtras(0, 0), value: "x"}),     // add: exists
		next(binReq{op: 0x02, key: "b:c", extras: storeExtras(3, 100), value: "bar"}), // add
		next(binReq{op: 0x03, key: "b:missing", extras: storeExtras(0, 0), value: "x"}),
		next(binReq{op: 0x03, key: "b:c", extras: storeExtras(4, 0), value: "barr"}),
		next(binReq{op: 0x0e, key: "b:a", value: " world"}), // append
		next(binReq{op: 0x0f, key: "b:a", value: ">>"}),     // prepend
		next(binReq{op: 0x0e, key: "b:missing", value: "x"}),
		next(binReq{op: 0x00, key: "b:a"}),                                // get
		next(binReq{op: 0x0c, key: "b:a"}),                                // getk
		next(binReq{op: 0x00, key: "b:missing"}),                          // get miss
		next(binReq{op: 0x0c, key: "b:missing"}),                          // getk miss
		next(binReq{op: 0x05, key: "b:n", extras: arithExtras(5, 10, 0)}), // incr creates with 10
		next(binReq{op: 0x05, key: "b:n", extras: arithExtras(5, 10, 0)}), // 15
		next(binReq{op: 0x06, key: "b:n", extras: arithExtras(20, 0, 0)}), // decr to 0
		next(binReq{op: 0x05, key: "b:nocreate", extras: arithExtras(1, 0, 0xffffffff)}),
		next(binReq{op: 0x05, key: "b:a", extras: arithExtras(1, 0, 0)}), // non-numeric
		next(binReq{op: 0x04, key: "b:c"}),                               // delete
		next(binReq{op: 0x04, key: "b:c"}),                               // delete: not found
		next(binReq{op: 0x1c, key: "b:a", extras: u32(100)}),             // touch
		next(binReq{op: 0x1c, key: "b:missing", extras: u32(100)}),
		next(binReq{op: 0x1d, key: "b:a", extras: u32(200)}), // gat
		next(binReq{op: 0x23, key: "b:a", extras: u32(200)}), // gatk
		next(binReq{op: 0x1d, key: "b:missing", extras: u32(200)}),
		next(binReq{op: 0x0b}), // version
		next(binReq{op: 0x10}), // stat
		next(binReq{op: 0x10, key: "settings"}),
		next(binReq{op: 0x10, key: "nosuchgroup"}),
		next(binReq{op: 0x20}), // sasl list mechs (SASL off)
		// An unknown opcode without a body. With a body (or verbosity, which 1.6.18 does not know), memcached
		// swallows the body twice and desynchronises the connection, through the proxy or not.
		next(binReq{op: 0x50}),
	))
	// A quiet batch ended by noop: quiet hits and failures answer, the rest is silent.
	s.exchange(cat(
		next(binReq{op: 0x11, key: "b:q1", extras: storeExtras(0, 0), value: "aa"}), // setq
		next(binReq{op: 0x11, key: "b:q2", extras: storeExtras(0, 0), value: "bb"}),
		next(binReq{op: 0x12, key: "b:q1", extras: storeExtras(0, 0), value: "cc"}), // addq: exists
		next(binReq{op: 0x13, key: "b:q3", extras: storeExtras(0, 0), value: "dd"}), // replaceq: not found
		next(binReq{op: 0x19, key: "b:q1", value: "+"}),                             // appendq
		next(binReq{op: 0x1a, key: "b:q1", value: "-"}),                             // prependq
		next(binReq{op: 0x09, key: "b:q1"}),                                         // getq hit
		next(binReq{op: 0x09, key: "b:missing"}),                                    // getq miss: silent
		next(binReq{op: 0x0d, key: "b:q2"}),                                         // getkq hit
		next(binReq{op: 0x0d, key: "b:missing"}),
		next(binReq{op: 0x14, key: "b:q2"}),                              // deleteq
		next(binReq{op: 0x14, key: "b:q2"}),                              // deleteq: not found
		next(binReq{op: 0x15, key: "b:n", extras: arithExtras(1, 0, 0)}), // incrq
		next(binReq{op: 0x16, key: "b:n", extras: arithExtras(1, 0, 0)}), // decrq
		next(binReq{op: 0x1e, key: "b:q1", extras: u32(0)}),              // gatq hit
		next(binReq{op: 0x24, key: "b:missing", extras: u32(0)}),         // gatkq miss
		next(binReq{op: 0x18, extras: u32(0)}),                           // flushq
		next(binReq{op: 0x09, key: "b:q1"}),                              // gone
		next(binReq{op: 0x0a}),                                           // noop
		next(binReq{op: 0x01, key: "b:a", extras: storeExtras(0, 0), value: "v"}),
	))
	// cas: a wrong unique, then the one the last set returned.
	frames := parseBinFrames(s.t, s.exchange(next(binReq{op: 0x00, key: "b:a"})))
	if len(frames) < 2 || frames[0].status != 0 {
		s.t.Fatalf("binary get b:a: %v", frames)
	}
	casA := frames[0].cas
	s.exchange(cat(
		next(binReq{op: 0x01, key: "b:a", extras: storeExtras(0, 0), value: "w", cas: casA + 1000}),
		next(binReq{op: 0x01, key: "b:a", extras: storeExtras(0, 0), value: "c", cas: casA}),
		next(binReq{op: 0x04, key: "b:a", cas: casA}), // delete with a stale cas
		next(binReq{op: 0x03, key: "b:missing", extras: storeExtras(0, 0), value: "r", cas: 1}),
		next(binReq{op: 0x00, key: "b:a"}),
	))
	// Values around the 1 MiB item limit (see textScript), loud and quiet.
	s.exchange(cat(
		next(binReq{op: 0x01, key: "b:under", extras: storeExtras(0, 0), value: repeat(underMiB)}),
		next(binReq{op: 0x00, key: "b:under"}),
		next(binReq{op: 0x01, key: "b:exact", extras: storeExtras(0, 0), value: repeat(mib)}),
		next(binReq{op: 0x01, key: "b:over", extras: storeExtras(0, 0), value: repeat(mib + 1)}),
		next(binReq{op: 0x11, key: "b:overq", extras: storeExtras(0, 0), value: repeat(mib + 1)}),
		next(binReq{op: 0x0e, key: "b:under", value: repeat(mib + 1)}),
		next(binReq{op: 0x00, key: "b:over"}),
		next(binReq{op: 0x04, key: "b:under"}),
	))
	// A key over 250 bytes: "Invalid arguments", then memcached closes and ignores the noop after it.
	s.quit(cat(next(binReq{op: 0x00, key: strings.Repeat("k", 251)}), next(binReq{op: 0x0a})))
	s.reopen()
	s.quit(next(binReq{op: 0x07})) // quit: answered, then closed
}

func parseBinFrames(t *testing.T, b []byte) []binResp {
	t.Helper()
	var out []binResp
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		f, err := readBinResp(r)
		if err != nil {
			t.Fatalf("parsing binary answers: %v", err)
		}
		out = append(out, f)
	}
	return out
}

// maskText blanks what legitimately differs between two servers in a text/meta transcript: STAT values, the
// cas unique of VALUE lines, and the c (cas), t (TTL), l (last access) meta return flags and ME's la, exp and
// cas. Data blocks are copied untouched, so a value can never be mistaken for a response line.
func maskText(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			out = append(out, fmt.Sprintf("<partial line %q>", b))
			break
		}
		line := string(b[:nl+1])
		b = b[nl+1:]
		f := strings.Fields(line)
		data := -1
		switch {
		case len(f) == 0:
		case f[0] == "STAT" && len(f) >= 3:
			line = "STAT " + f[1] + " *\r\n"
		case f[0] == "VALUE" && len(f) >= 4:
			data, _ = strconv.Atoi(f[3])
			if len(f) == 5 {
				f[4] = "<cas>"
				line = strings.Join(f, " ") + "\r\n"
			}
		case f[0] == "VA" || f[0] == "HD" || f[0] == "EN" || f[0] == "NF" || f[0] == "NS" || f[0] == "EX":
			if f[0] == "VA" && len(f) >= 2 {
				data, _ = strconv.Atoi(f[1])
			}
			for i := 1; i < len(f); i++ {
				if len(f[i]) > 1 && strings.ContainsRune("ctl", rune(f[i][0])) {
					f[i] = f[i][:1] + "*"
				}
			}
			line = strings.Join(f, " ") + "\r\n"
		case f[0] == "ME":
			for i := 2; i < len(f); i++ {
				for _, p := range []string{"la=", "exp=", "cas="} {
					if strings.HasPrefix(f[i], p) {
						f[i] = p + "*"
					}
				}
			}
			line = strings.Join(f, " ") + "\r\n"
		}
		out = append(out, line)
		if data >= 0 {
			if len(b) < data+2 {
				out = append(out, fmt.Sprintf("<truncated data block of %d bytes>", data))
				break
			}
			out = append(out, string(b[:data+2]))
			b = b[data+2:]
		}
	}
	return out
}

// maskBinary zeroes the cas of every binary answer and blanks the values of stat answers.
func maskBinary(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		f, err := readBinResp(r)
		if err != nil {
			out = append(out, fmt.Sprintf("<unparseable tail: %v>", err))
			break
		}
		raw := append([]byte(nil), f.raw...)
		for i := 16; i < 24; i++ {
			raw[i] = 0
		}
		if f.op == 0x10 {
			raw = raw[:24+len(f.extras)+len(f.key)]
			raw[8], raw[9], raw[10], raw[11] = 0, 0, 0, 0
		}
		out = append(out, fmt.Sprintf("%x", raw))
	}
	return out
}

// compareTranscripts fails at the first differing masked line, showing both.
func compareTranscripts(t *testing.T, what string, direct, proxied []string) {
	t.Helper()
	for i := 0; i < max(len(direct), len(proxied)); i++ {
		var d, p string
		if i < len(direct) {
			d = direct[i]
		}
		if i < len(proxied) {
			p = proxied[i]
		}
		if d != p {
			t.Fatalf("%s: answers differ at item %d of %d/%d:\n direct: %.300q\nproxied: %.300q",
				what, i, len(direct), len(proxied), d, p)
		}
	}
}

// TestTransparency plays each script against a fresh memcached directly and another fresh memcached through
// a recording proxy, and compares the answers.
func TestTransparency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		binary bool
		script func(*session)
		mask   func(*testing.T, []byte) []string
	}{
		{"text+meta", false, textScript, maskText},
		{"binary", true, binScript, maskBinary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := mctest.StartMemcached(t)
			behind := mctest.StartMemcached(t)
			rec := newRecording(t)
			cfg := testConfig(t, behind.Addr)
			srv := startProxy(t, cfg, rec.options())

			d := newSession(t, direct.Addr, tc.binary)
			tc.script(d)
			p := newSession(t, cfg.Listen, tc.binary)
			tc.script(p)
			if d.out.Len() < mib {
				t.Fatalf("direct transcript is only %d bytes: the script did not run", d.out.Len())
			}
			compareTranscripts(t, tc.name, tc.mask(t, d.out.Bytes()), tc.mask(t, p.out.Bytes()))

			// The session was recorded; every event's key is anonymized (a non-zero hash for keyed commands).
			shutdown(t, srv)
			evs := rec.finish(t)
			if len(evs) == 0 {
				t.Fatal("the recording proxy recorded nothing")
			}
			for _, ev := range evs {
				if ev.Cmd.HasKey() && ev.KeySize > 0 && ev.KeyHash == 0 {
					t.Fatalf("event without a key hash: %+v", ev)
				}
			}
		})
	}
}

// TestStreamsLargeValues checks that a value is forwarded as it arrives: with the header and half of a value
// sent, memcached has already read more than that half, before the client sends the rest.
func TestStreamsLargeValues(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "binary"}[binary], func(t *testing.T) {
			mc := mctest.StartMemcached(t)
			cfg := testConfig(t, mc.Addr)
			startProxy(t, cfg, proxy.Options{})
			c := dial(t, cfg.Listen)

			const size = mib - 4096
			value := repeat(size)
			var req []byte
			if binary {
				req = binReq{op: 0x01, key: "stream", extras: storeExtras(0, 0), value: value, opaque: 7}.bytes()
			} else {
				req = []byte("set stream 0 0 " + strconv.Itoa(size) + "\r\n" + value + "\r\n")
			}
			half := len(req) - size/2
			readBefore := memcachedStat(t, mc.Addr, "bytes_read")
			upBefore := proxy.UpstreamBytesOut()
			if _, err := c.Write(req[:half]); err != nil {
				t.Fatal(err)
			}
			// Both sides of the proxy show the first half went through while the second is still unsent.
			waitFor(t, "the proxy to forward the first half", func() bool {
				return proxy.UpstreamBytesOut()-upBefore >= uint64(half)
			})
			waitFor(t, "memcached to read the first half", func() bool {
				return memcachedStat(t, mc.Addr, "bytes_read")-readBefore >= uint64(half)
			})
			if _, err := c.Write(req[half:]); err != nil {
				t.Fatal(err)
			}
			if binary {
				f, err := readBinResp(c)
				if err != nil || f.status != 0 || f.opaque != 7 {
					t.Fatalf("binary set: %v %v", f, err)
				}
			} else {
				tc := &textConn{t: t, c: c, r: bufio.NewReader(c)}
				tc.expect("STORED")
			}
		})
	}
}
