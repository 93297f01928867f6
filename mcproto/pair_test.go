package mcproto

import (
	"fmt"
	"strings"
	"testing"
)

// keyNames maps test hashes back to keys so expectations read naturally.
func keyName(h uint64, keys []string) string {
	for _, k := range keys {
		if (fnvHasher{}).HashKey([]byte(k)) == h {
			return k
		}
	}
	if h == 0 {
		return "-"
	}
	return "?"
}

// runPairs parses the request and response streams, feeds them to a Pairer in the order given by order ('q':
// next request, 'r': next response, '*': all remaining requests then all responses) and returns the pairs as
// "cmd key status vsize" strings.
func runPairs(t *testing.T, reqs, resps string, keys []string) ([]string, PairerStats) {
	t.Helper()
	var out []string
	pr := Pairer{Hasher: fnvHasher{}, Emit: func(p *Pair) {
		k := "-"
		if p.HasKey {
			k = keyName(p.KeyHash, keys)
		}
		s := fmt.Sprintf("%s %s %s %d", p.Cmd, k, p.Status, p.ValueSize)
		if p.KeyCount != 0 {
			s += fmt.Sprintf(" %d/%d", p.KeyIndex, p.KeyCount) // a key of a multi-key get
		}
		if p.Op != p.Cmd {
			s += " op=" + p.Op.String() // the operation a meta or binary request performs
		}
		out = append(out, s)
	}}
	rp := RequestParser{Dialect: Dialect1_6_18}
	var sp ResponseParser
	var rq Request
	var rs Response
	rb, sb := []byte(reqs), []byte(resps)
	for len(rb) > 0 {
		n, err := rp.Parse(rb, &rq)
		if err == ErrIncomplete {
			t.Fatalf("request stream incomplete at %q", rb)
		}
		if n == 0 {
			t.Fatalf("request parse error %v at %q", err, rb)
		}
		pr.Request(&rq, 1)
		rb = rb[n:]
	}
	for len(sb) > 0 {
		n, err := sp.Parse(sb, &rs)
		if err != nil {
			t.Fatalf("response parse error %v at %q", err, sb)
		}
		pr.Response(&rs, 2, true)
		sb = sb[n:]
	}
	pr.Close(3)
	return out, pr.Stats
}

func TestPairing(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "user:1", "k"}
	f := func(reqs, resps string, want ...string) {
		t.Helper()
		got, st := runPairs(t, reqs, resps, keys)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("pairs for %q / %q:\ngot:\n  %s\nwant:\n  %s", reqs, resps, strings.Join(got, "\n  "),
				strings.Join(want, "\n  "))
		}
		if st.Orphans != 0 || st.Lost != 0 {
			t.Fatalf("pairs for %q / %q: unexpected stats %+v", reqs, resps, st)
		}
	}
	// Text: multi-get with hits and misses, one pair per key.
	f("get a b c d\r\n", "VALUE b 0 3\r\nxyz\r\nVALUE d 1 1\r\nq\r\nEND\r\n",
		"get a miss 0 0/4", "get b hit 3 1/4", "get c miss 0 2/4", "get d hit 1 3/4")
	// All keys hit: END still closes the group and the next request pairs correctly.
	f("get a b\r\nget c\r\n", "VALUE a 0 1\r\n1\r\nVALUE b 0 2\r\n22\r\nEND\r\nEND\r\n",
		"get a hit 1 0/2", "get b hit 2 1/2", "get c miss 0")
	// Pipelined stores, noreply (paired at once), delete, incr, touch.
	f("set a 0 0 2\r\nhi\r\nset b 0 0 1 noreply\r\nx\r\ndelete c\r\nincr k 1\r\ntouch a 10\r\n",
		"STORED\r\nNOT_FOUND\r\n5\r\nTOUCHED\r\n",
		"set b none_expected 1", "set a stored 2", "delete c not_found 0", "incr k ok 0", "touch a touched 0")
	// Stats: many lines, one pair.
	f("stats\r\nversion\r\n", "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\nVERSION 1.6.18\r\n", "stats - ok 0",
		"version - ok 0")
	// Errors pair with the request that caused them.
	f("bogus\r\nset k 0 0 -1\r\n", "ERROR\r\nCLIENT_ERROR bad command line format\r\n", "other - error 0",
		"set k client_error 0")
	// A multi-get interrupted by CLIENT_ERROR (key too long): keys after the hit get the error.
	f("get a "+strings.Repeat("z", 251)+"\r\n", "CLIENT_ERROR bad command line format\r\n", "get a client_error 0")
	// Meta: quiet batch ended by mn; misses suppressed, hits answered.
	f("mg a v q\r\nmg b v q\r\nmg c v q\r\nmn\r\n", "VA 2\r\nhi\r\nMN\r\n",
		"mg a hit 2", "mg b miss 0", "mg c miss 0", "mn - ok 0")
	// Meta with opaque: the VA belongs to the second request; the first was suppressed.
	f("mg a v q O1\r\nmg b v q O2\r\nmn\r\n", "VA 1 O2\r\nx\r\nMN\r\n", "mg a miss 0", "mg b hit 1", "mn - ok 0")
	// Meta with k echo.
	f("mg a v q k\r\nmg b v q k\r\nmn\r\n", "VA 1 kb\r\nx\r\nMN\r\n", "mg a miss 0", "mg b hit 1", "mn - ok 0")
	// Quiet sets: HD suppressed, NS returned.
	f("ms a 1 q O1\r\nx\r\nms b 1 q ME O2\r\ny\r\nmn\r\n", "NS O2\r\nMN\r\n", "ms a stored 1",
		"ms b not_stored 1 op=add", "mn - ok 0")
	// Without opaque or k the answer goes to the first quiet request that could have sent it.
	f("ms a 1 q\r\nx\r\nms b 1 q ME\r\ny\r\nmn\r\n", "NS\r\nMN\r\n", "ms a not_stored 1",
		"ms b stored 1 op=add", "mn - ok 0")
	// Meta requests that perform a classic operation carry it in Op: ms with C is a cas, with a mode an add,
	// append, prepend or replace (either case); mg with c is a gets, with c and T a gats.
	f("ms a 1 C5\r\nx\r\nms a 1 MA\r\ny\r\nms a 1 Mp\r\nz\r\nms a 1 MR C6\r\nw\r\nms a 1 MS\r\nv\r\n"+
		"mg a c v\r\nmg a v c T10\r\nmg a v T10\r\n",
		"EX\r\nHD\r\nHD\r\nNF\r\nHD\r\nVA 1 c7\r\nx\r\nVA 1 c7\r\nx\r\nVA 1\r\nx\r\n",
		"ms a exists 1 op=cas", "ms a stored 1 op=append", "ms a stored 1 op=prepend", "ms a not_found 1 op=cas",
		"ms a stored 1", "mg a hit 1 op=gets", "mg a hit 1 op=gats", "mg a hit 1")
	// Non-quiet meta.
	f("ms a 1 T0\r\nx\r\nmg a s v\r\nmd a\r\nmd a\r\nma k\r\nme a\r\n",
		"HD\r\nVA 1 s1\r\nx\r\nHD\r\nNF\r\nNF\r\nEN\r\n",
		"ms a stored 1", "mg a hit 1", "md a deleted 0", "md a not_found 0", "ma k not_found 0", "me a miss 0")
	// Mixed text and meta on one connection.
	f("get a\r\nmg b v\r\n", "END\r\nEN\r\n", "get a miss 0", "mg b miss 0")
	// Binary: quiet gets ended by noop; GetKQ hit, GetQ miss suppressed.
	f(binReq(binGetQ, "a", "", "", 1)+binReq(binGetKQ, "b", "", "", 2)+binReq(binNoop, "", "", "", 3),
		binResp(binGetKQ, 0, "b", "\x00\x00\x00\x00", "val", 2)+binResp(binNoop, 0, "", "", "", 3),
		"get a miss 0", "get b hit 3", "noop - ok 0")
	// Binary: quiet set suppressed on success, error returned.
	setExt := "\x00\x00\x00\x00\x00\x00\x00\x00"
	f(binReq(binSetQ, "a", setExt, "xx", 1)+binReq(binAddQ, "b", setExt, "y", 2)+binReq(binNoop, "", "", "", 3),
		binResp(binAddQ, BinStatusKeyExists, "", "", "", 2)+binResp(binNoop, 0, "", "", "", 3),
		"set a stored 2", "add b exists 1", "noop - ok 0")
	// Binary set and replace with a cas value are cas operations; without one, and add with one, they are not.
	f(binCas(binReq(binSet, "a", setExt, "xx", 4), 9)+binCas(binReq(binReplace, "b", setExt, "y", 5), 9)+
		binReq(binSet, "c", setExt, "z", 6)+binCas(binReq(binAdd, "d", setExt, "z", 7), 9),
		binResp(binSet, BinStatusKeyExists, "", "", "", 4)+binResp(binReplace, 0, "", "", "", 5)+
			binResp(binSet, 0, "", "", "", 6)+binResp(binAdd, BinStatusKeyExists, "", "", "", 7),
		"set a exists 2 op=cas", "replace b stored 1 op=cas", "set c stored 1", "add d exists 1")
	// Binary stat: several responses, one pair.
	f(binReq(binStat, "", "", "", 9)+binReq(binGet, "c", "", "", 10),
		binResp(binStat, 0, "pid", "", "1", 9)+binResp(binStat, 0, "uptime", "", "2", 9)+binResp(binStat, 0, "", "", "", 9)+
			binResp(binGet, BinStatusKeyNotFound, "", "", "Not found", 10),
		"stats - ok 0", "get c miss 0")
	// QuitQ expects nothing.
	f(binReq(binQuitQ, "", "", "", 1), "", "quit - none_expected 0")
	// Namespaces are hashed from the request key.
	var ns uint64
	pr := Pairer{Hasher: fnvHasher{}, Emit: func(p *Pair) { ns = p.NSHash }}
	var rq Request
	rp := RequestParser{Dialect: Dialect1_6_18}
	rp.Parse([]byte("delete user:1 noreply\r\n"), &rq)
	pr.Request(&rq, 0)
	if ns != (fnvHasher{}).HashNamespace([]byte("user:1")) || ns == 0 {
		t.Fatalf("namespace hash not set: %x", ns)
	}
}

func TestPairingFailures(t *testing.T) {
	keys := []string{"a", "b"}
	f := func(reqs, resps string, want []string, wantStats PairerStats) {
		t.Helper()
		got, st := runPairs(t, reqs, resps, keys)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("pairs for %q / %q:\ngot:\n  %s\nwant:\n  %s", reqs, resps, strings.Join(got, "\n  "),
				strings.Join(want, "\n  "))
		}
		st.Requests, st.Pairs = 0, 0
		if st != wantStats {
			t.Fatalf("stats for %q / %q: got %+v, want %+v", reqs, resps, st, wantStats)
		}
	}
	// A response with no request is counted, never a crash.
	f("", "STORED\r\n", nil, PairerStats{Orphans: 1})
	// A request whose response never came is lost when the connection closes.
	f("get a\r\n", "", []string{"get a lost 0"}, PairerStats{Lost: 1})
	// A quiet batch that never ended: the requests are lost at close.
	f("mg a v q\r\n", "", []string{"mg a lost 0"}, PairerStats{Lost: 1})
	// A VALUE for a key nobody asked for is a mismatch; END still closes the get.
	f("get a\r\n", "VALUE b 0 1\r\nx\r\nEND\r\n", []string{"get a miss 0"}, PairerStats{Mismatched: 1})
	// quit expects no response.
	f("quit\r\n", "", []string{"quit - none_expected 0"}, PairerStats{})
	// After watch answers OK the connection is a log stream: nothing more is paired.
	f("watch\r\n", "OK\r\nts=1 gid=2 type=item_get\r\nts=2\r\n", []string{"watch - ok 0"},
		PairerStats{StreamResp: 2})
	// Binary response with an unknown opaque.
	f(binReq(binGet, "a", "", "", 1), binResp(binGet, 0, "", "\x00\x00\x00\x00", "v", 99),
		[]string{"get a lost 0"}, PairerStats{Orphans: 1, Lost: 1})
}

func TestPairingOverflow(t *testing.T) {
	pr := Pairer{Hasher: fnvHasher{}, MaxPending: 4}
	var rq Request
	rp := RequestParser{Dialect: Dialect1_6_18}
	for i := 0; i < 10; i++ {
		rp.Parse([]byte("mg a v q\r\n"), &rq)
		pr.Request(&rq, 0)
	}
	if pr.Pending() != 4 || pr.Stats.Overflow != 6 {
		t.Fatalf("pending=%d overflow=%d, want 4 and 6", pr.Pending(), pr.Stats.Overflow)
	}
}

func TestPairingStreamedResponse(t *testing.T) {
	var got []Pair
	pr := Pairer{Hasher: fnvHasher{}, Emit: func(p *Pair) { got = append(got, *p) }}
	var rq Request
	rp := RequestParser{Dialect: Dialect1_6_18}
	rp.Parse([]byte("get a b\r\n"), &rq)
	pr.Request(&rq, 100)
	var rs Response
	var sp ResponseParser
	// Only the header of b's big value has arrived.
	buf := []byte("VALUE b 0 1000\r\nxx")
	if n, err := sp.Parse(buf, &rs); n != 0 || err != ErrIncomplete || rs.FrameLen != 1018 {
		t.Fatalf("header parse: n=%d err=%v FrameLen=%d", n, err, rs.FrameLen)
	}
	pr.Response(&rs, 200, false)
	if len(got) != 1 || got[0].Status != StatusMiss {
		t.Fatalf("before the value ended: got %+v, want only a's miss", got)
	}
	pr.ResponseDone(300)
	if len(got) != 2 || got[1].Status != StatusHit || got[1].RespTime != 300 || got[1].ValueSize != 1000 ||
		got[1].Latency() != 200 {
		t.Fatalf("after the value ended: got %+v", got)
	}
}
