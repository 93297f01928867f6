package mcproto

import (
	"bytes"
	"strconv"
	"testing"
)

// fnvHasher is the allocation-free KeyHasher of the tests and benchmarks: FNVHasher, plus namespaces up
// to ':' so that the namespace path is exercised too.
type fnvHasher struct{ FNVHasher }

func (fnvHasher) HashNamespace(k []byte) uint64 {
	if i := bytes.IndexByte(k, ':'); i >= 0 {
		return FNVHasher{}.HashKey(k[:i]) ^ 1
	}
	return 0
}

func key30(i int) string {
	s := "user:profile:" + strconv.Itoa(1000000+i)
	for len(s) < 30 {
		s += "x"
	}
	return s
}

func pipelinedGets(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString("get ")
		b.WriteString(key30(i))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func valueResponses(n, size int) []byte {
	var b bytes.Buffer
	val := bytes.Repeat([]byte("v"), size)
	for i := 0; i < n; i++ {
		b.WriteString("VALUE ")
		b.WriteString(key30(i))
		b.WriteString(" 0 ")
		b.WriteString(strconv.Itoa(size))
		b.WriteString("\r\n")
		b.Write(val)
		b.WriteString("\r\nEND\r\n")
	}
	return b.Bytes()
}

func binaryGetQs(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(binReq(binGetQ, key30(i), "", "", uint32(i)))
	}
	b.WriteString(binReq(binNoop, "", "", "", uint32(n)))
	return b.Bytes()
}

// parseAll frames every request in buf and returns the count.
func parseAllRequests(p *RequestParser, r *Request, buf []byte) int {
	c := 0
	for len(buf) > 0 {
		n, err := p.Parse(buf, r)
		if n == 0 || err != nil {
			panic("BUG: benchmark input does not parse: " + err.Error())
		}
		buf = buf[n:]
		c++
	}
	return c
}

func parseAllResponses(p *ResponseParser, r *Response, buf []byte) int {
	c := 0
	for len(buf) > 0 {
		n, err := p.Parse(buf, r)
		if n == 0 || err != nil {
			panic("BUG: benchmark input does not parse")
		}
		buf = buf[n:]
		c++
	}
	return c
}

// TestZeroAllocs enforces zero allocations per frame on the request, response and pairing paths.
func TestZeroAllocs(t *testing.T) {
	f := func(name string, fn func()) {
		t.Helper()
		fn() // warm up: grow reusable buffers
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Fatalf("%s: %.1f allocations per run, want 0", name, a)
		}
	}
	var rp RequestParser
	var r Request
	text := []byte("get a b c d e f g h\r\nset k 1 2 3\r\nabc\r\nincr n 5\r\ndelete k noreply\r\ntouch k 10\r\n" +
		"gat 10 a b\r\nstats\r\nflush_all\r\nbogus\r\nset k 0 0 -1\r\n")
	f("text requests", func() {
		var p RequestParser
		for b := text; len(b) > 0; {
			n, _ := p.Parse(b, &r)
			b = b[n:]
		}
	})
	meta := []byte("mg foo v k Oab q t f s c\r\nms foo 3 T60 F7 MA q\r\nabc\r\nmd foo q\r\nma foo D5\r\nmn\r\n" +
		"mg Zm9v b v\r\nme foo\r\n")
	f("meta requests", func() {
		var p RequestParser
		for b := meta; len(b) > 0; {
			n, _ := p.Parse(b, &r)
			b = b[n:]
		}
	})
	bin := binaryGetQs(8)
	f("binary requests", func() { rp.Reset(); parseAllRequests(&rp, &r, bin) })
	var sp ResponseParser
	var s Response
	resp := []byte("VALUE a 0 3\r\nabc\r\nEND\r\nSTORED\r\n5\r\nSTAT pid 1\r\nEND\r\nVA 3 kfoo Oab f1\r\nabc\r\nHD\r\nEN\r\nMN\r\n")
	f("text and meta responses", func() { sp.Reset(); parseAllResponses(&sp, &s, resp) })
	bresp := []byte(binResp(binGetK, 0, "key", "\x00\x00\x00\x00", "val", 7))
	f("binary responses", func() { sp.Reset(); parseAllResponses(&sp, &s, bresp) })

	// Pairing: a pipelined multi-get with hits and misses, meta quiet batch, binary quiet batch.
	pairs := 0
	pr := Pairer{Hasher: fnvHasher{}, Emit: func(*Pair) { pairs++ }}
	reqs := []byte("get a b c d\r\nmg a v q O1\r\nmg b v q O2\r\nmn\r\nset k 0 0 1\r\nx\r\n")
	resps := []byte("VALUE b 0 1\r\nx\r\nVALUE d 0 1\r\ny\r\nEND\r\nVA 1 O2\r\nz\r\nMN\r\nSTORED\r\n")
	f("pairing", func() {
		var p RequestParser
		var q ResponseParser
		for b := reqs; len(b) > 0; {
			n, _ := p.Parse(b, &r)
			pr.Request(&r, 1)
			b = b[n:]
		}
		for b := resps; len(b) > 0; {
			n, _ := q.Parse(b, &s)
			pr.Response(&s, 2, true)
			b = b[n:]
		}
	})
	if pairs == 0 || pr.Pending() != 0 || pr.Stats.Orphans != 0 {
		t.Fatalf("pairing run produced %d pairs, %d pending, %+v", pairs, pr.Pending(), pr.Stats)
	}
}

func BenchmarkRequestsPipelinedGet(b *testing.B) {
	const batch = 1000
	buf := pipelinedGets(batch)
	var p RequestParser
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parseAllRequests(&p, &r, buf)
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkResponsesValue100(b *testing.B) {
	const batch = 1000
	buf := valueResponses(batch, 100)
	var p ResponseParser
	var r Response
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parseAllResponses(&p, &r, buf)
	}
	// Each response is a VALUE frame and an END frame.
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkBinaryGetQ(b *testing.B) {
	const batch = 1000
	buf := binaryGetQs(batch)
	var p RequestParser
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parseAllRequests(&p, &r, buf)
	}
	b.ReportMetric(float64(b.N)*(batch+1)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkPairingGet measures parse + pair of a get and its VALUE response, the per-request cost a recording
// proxy pays.
func BenchmarkPairingGet(b *testing.B) {
	const batch = 1000
	reqs := pipelinedGets(batch)
	resps := valueResponses(batch, 100)
	var rp RequestParser
	var sp ResponseParser
	var r Request
	var s Response
	pr := Pairer{Hasher: fnvHasher{}, Emit: func(*Pair) {}}
	b.ReportAllocs()
	b.SetBytes(int64(len(reqs) + len(resps)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for buf := reqs; len(buf) > 0; {
			n, _ := rp.Parse(buf, &r)
			pr.Request(&r, 1)
			buf = buf[n:]
		}
		for buf := resps; len(buf) > 0; {
			n, _ := sp.Parse(buf, &s)
			pr.Response(&s, 2, true)
			buf = buf[n:]
		}
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "req/s")
}
