// Correctness through a pool of three: scripted text, meta and binary sessions whose keys span the three servers
// (pipelined multi-gets, noreply, meta quiet batches, binary quiet opcodes ended by noop) are played against one
// memcached directly and through the pool; the answers must be byte-identical once cas uniques are masked.
// Keyless administrative commands are left out: the pool answers those itself.
package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/ring"
)

// poolSess is one scripted connection; every exchange ends with a sentinel whose answer marks the end.
type poolSess struct {
	t      testing.TB
	c      net.Conn
	r      *bufio.Reader
	binary bool
	names  map[string]string // script key "p:NN" → the key really sent (see poolKeyNames)
	out    bytes.Buffer
}

const (
	poolTextSentinel     = "set zz_pool_sentinel 0 0 8\r\nSENTINEL\r\nget zz_pool_sentinel\r\n"
	poolTextSentinelResp = "STORED\r\nVALUE zz_pool_sentinel 0 8\r\nSENTINEL\r\nEND\r\n"
	poolBinSentinel      = 0xFEEDF00D
)

func newPoolSess(t testing.TB, addr string, binary bool, names map[string]string) *poolSess {
	t.Helper()
	c := dial(t, addr)
	return &poolSess{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10), binary: binary, names: names}
}

// poolKeyRE matches the script's placeholder keys.
var poolKeyRE = regexp.MustCompile(`p:\d\d`)

// poolKeyNames maps the placeholders p:00 … p:39 to keys of the same length (so value and frame lengths stay
// right) that the ring places on server i%3: placement of similar short keys under fnv1a_64 depends on the
// servers' random ports, and the scripts must span all three servers whatever the ports.
func poolKeyNames(t testing.TB, r *ring.Ring) map[string]string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	names := map[string]string{}
	used := map[string]bool{}
	next := 0
	for i := range 40 {
		found := false
		for ; next < len(alphabet)*len(alphabet)*len(alphabet) && !found; next++ {
			k := "q" + string(alphabet[next/1296]) + string(alphabet[next/36%36]) + string(alphabet[next%36])
			if used[k] || r.Pick([]byte(k)) != i%r.Live() {
				continue
			}
			used[k] = true
			names[fmt.Sprintf("p:%02d", i)] = k
			found = true
		}
		if !found {
			t.Fatalf("no 4-byte key lands on server %d", i%r.Live())
		}
		next = 0
	}
	return names
}

// name returns the key really sent for a script key.
func (s *poolSess) name(k string) string {
	if n, ok := s.names[k]; ok {
		return n
	}
	return k
}

// exchange writes req and the sentinel (from a goroutine, so big pipelines cannot deadlock) and returns the
// answers before the sentinel's.
func (s *poolSess) exchange(req []byte) []byte {
	s.t.Helper()
	_ = s.c.SetDeadline(time.Now().Add(ioTimeout))
	if s.names != nil {
		req = poolKeyRE.ReplaceAllFunc(req, func(k []byte) []byte { return []byte(s.name(string(k))) })
	}
	sentinel := []byte(poolTextSentinel)
	if s.binary {
		sentinel = binReq{op: 0x0a, opaque: poolBinSentinel}.bytes()
	}
	werr := make(chan error, 1)
	go func() {
		_, err := s.c.Write(append(req[:len(req):len(req)], sentinel...))
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
			if f.op == 0x0a && f.opaque == poolBinSentinel {
				break
			}
			got = append(got, f.raw...)
		}
	} else {
		buf := make([]byte, 64<<10)
		for !bytes.HasSuffix(got, []byte(poolTextSentinelResp)) {
			var n int
			n, err = s.r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		got = bytes.TrimSuffix(got, []byte(poolTextSentinelResp))
	}
	if err != nil {
		s.t.Fatalf("reading the answers to %.120q: %v (got %d bytes, ending %q)", req, err, len(got),
			got[max(0, len(got)-200):])
	}
	if err := <-werr; err != nil {
		s.t.Fatalf("writing %.80q: %v", req, err)
	}
	s.out.Write(got)
	return got
}

var (
	poolCasValueRE = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)
	poolCasMetaRE  = regexp.MustCompile(`(?m)^((?:VA|HD|EN|NS|EX|NF)\b[^\r]*?) c\d+`)
)

// poolMask replaces cas uniques, which differ between servers, with a placeholder.
func poolMask(b []byte, binaryProto bool) []byte {
	if binaryProto {
		out := append([]byte{}, b...)
		for off := 0; off+24 <= len(out); {
			for i := 16; i < 24; i++ {
				out[off+i] = 0
			}
			off += 24 + int(binary.BigEndian.Uint32(out[off+8:]))
		}
		return out
	}
	b = poolCasValueRE.ReplaceAll(b, []byte("$1 CAS"))
	return poolCasMetaRE.ReplaceAll(b, []byte("$1 cCAS"))
}

// poolCasOf returns the cas unique of "VALUE key f n cas" in a text answer.
func poolCasOf(t testing.TB, resp []byte, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^VALUE ` + regexp.QuoteMeta(key) + ` \d+ \d+ (\d+)\r$`).FindSubmatch(resp)
	if m == nil {
		t.Fatalf("no gets answer for %q in %.300q", key, resp)
	}
	return string(m[1])
}

// poolTextKeys are the keys of the text and meta scripts: placeholders p:00 … p:23, one in three per server.
func poolTextKeys() []string {
	keys := make([]string, 24)
	for i := range keys {
		keys[i] = fmt.Sprintf("p:%02d", i)
	}
	return keys
}

// poolTextScript is the text session.
func poolTextScript(s *poolSess) {
	keys := poolTextKeys()
	var b strings.Builder
	for i, k := range keys {
		if i%3 == 2 {
			fmt.Fprintf(&b, "set %s %d 0 %d noreply\r\n%s\r\n", k, i, len(k)+1, k+"!")
		} else {
			fmt.Fprintf(&b, "set %s %d 0 %d\r\n%s\r\n", k, i, len(k), k)
		}
	}
	s.exchange([]byte(b.String()))
	// Pipelined multi-gets spanning servers, with misses, a repeated key and stores in between.
	all := strings.Join(keys, " ")
	s.exchange([]byte("get " + all + "\r\n" +
		"get p:05 p:missing1 p:01 p:missing2 p:17\r\n" +
		"set p:01 7 0 3\r\nnew\r\n" +
		"get p:17 p:01 p:09 p:22 p:03\r\n" +
		"get p:missing1 p:missing2 p:missing3 p:missing4\r\n" +
		"get p:02 p:04 p:02\r\n" +
		"gets p:00 p:10 p:20\r\n" +
		"gat 100 p:01 p:02 p:03 p:missing1\r\n" +
		"gats 200 p:04 p:05 p:06\r\n" +
		"get p:08\r\n"))
	// Storage variants, arithmetic, deletion and touch across servers.
	s.exchange([]byte("add p:00 0 0 1\r\nx\r\n" +
		"add p:new 3 0 3\r\nbar\r\n" +
		"replace p:missing 0 0 1\r\nx\r\n" +
		"replace p:new 4 0 4\r\nbarr\r\n" +
		"append p:03 0 0 2\r\n+a\r\n" +
		"prepend p:04 0 0 2\r\np-\r\n" +
		"append p:missing 0 0 1\r\nx\r\n" +
		"set p:n1 0 0 2\r\n10\r\n" +
		"set p:n2 0 0 1\r\n5\r\n" +
		"incr p:n1 5\r\n" +
		"decr p:n2 20\r\n" +
		"incr p:n1 18446744073709551615\r\n" +
		"incr p:missing 1\r\n" +
		"decr p:05 1\r\n" +
		"incr p:n2 1 noreply\r\n" +
		"incr p:07 1 noreply\r\n" +
		"add p:00 0 0 1 noreply\r\nz\r\n" +
		"delete p:06\r\n" +
		"delete p:06\r\n" +
		"delete p:07 noreply\r\n" +
		"delete p:missing noreply\r\n" +
		"touch p:08 100\r\n" +
		"touch p:missing 100\r\n" +
		"touch p:09 0 noreply\r\n" +
		"get p:00 p:new p:03 p:04 p:n1 p:n2 p:05 p:06 p:07 p:08 p:09\r\n"))
	// cas needs the unique from a gets answer.
	casA := poolCasOf(s.t, s.exchange([]byte("gets p:10\r\n")), s.name("p:10"))
	casB := poolCasOf(s.t, s.exchange([]byte("gets p:11\r\n")), s.name("p:11"))
	s.exchange([]byte("cas p:10 9 0 1 " + casA + "\r\nC\r\n" +
		"cas p:10 9 0 1 " + casA + "\r\nD\r\n" +
		"cas p:missing 0 0 1 1\r\nE\r\n" +
		"cas p:11 0 0 1 " + casB + " noreply\r\nF\r\n" +
		"cas p:12 0 0 1 1 noreply\r\nG\r\n" +
		"get p:10 p:11 p:12\r\n"))
	// Big values across servers in one pipelined multi-get.
	b.Reset()
	for i := range 6 {
		v := strings.Repeat(string(rune('a'+i)), 100_000+i)
		fmt.Fprintf(&b, "set p:%d 0 0 %d\r\n%s\r\n", 30+i, len(v), v)
	}
	b.WriteString("get p:30 p:31 p:32 p:33 p:34 p:35 p:00\r\n")
	s.exchange([]byte(b.String()))
}

// poolMetaScript is the meta session.
func poolMetaScript(s *poolSess) {
	keys := poolTextKeys()
	var b strings.Builder
	for i, k := range keys {
		fmt.Fprintf(&b, "ms %s %d F%d T0\r\n%s\r\n", k, len(k), i, k)
	}
	s.exchange([]byte(b.String()))
	// Loud meta commands.
	s.exchange([]byte("mg p:00 v f k O1\r\n" +
		"mg p:01 v c\r\n" +
		"mg p:missing v\r\n" +
		"mg p:02 s k\r\n" +
		"ms p:03 2 ME\r\nxx\r\n" +
		"ms p:missing 2 MR\r\nxx\r\n" +
		"ms p:04 2 MA\r\n+a\r\n" +
		"ms cDowNQ== 2 b\r\nb5\r\n" +
		"mg cDowNQ== b v k\r\n" +
		"md p:06\r\n" +
		"md p:06\r\n" +
		"ma p:missing\r\n" +
		"ms p:n 1\r\n7\r\n" +
		"ma p:n v\r\n" +
		"ma p:n MD D3 v\r\n" +
		"mn\r\n" +
		"mg p:04 v\r\n"))
	// Quiet batches spanning servers, each ended by mn: only what memcached would send comes back.
	s.exchange([]byte("mg p:00 v q k\r\n" +
		"mg p:missing q v\r\n" +
		"mg p:01 v q k O7\r\n" +
		"mg p:missing2 q v k O8\r\n" +
		"mg p:02 v q\r\n" +
		"mg p:03 v q\r\n" +
		"mg p:04 v q\r\n" +
		"mg p:05 v q\r\n" +
		"mn\r\n"))
	b.Reset()
	for i, k := range keys[8:20] {
		fmt.Fprintf(&b, "ms %s 3 q F%d\r\nq%02d\r\n", k, i, i)
	}
	b.WriteString("ms p:00 2 q ME\r\nzz\r\n" + // exists already: NS is not suppressed
		"ms p:missing 2 q MR\r\nzz\r\n" +
		"mn\r\n")
	for _, k := range keys[8:20] {
		fmt.Fprintf(&b, "mg %s v f q k\r\n", k)
	}
	b.WriteString("mn\r\n")
	s.exchange([]byte(b.String()))
	s.exchange([]byte("md p:08 q\r\n" +
		"md p:09 q\r\n" +
		"md p:missing q\r\n" +
		"md p:10 q O5\r\n" +
		"ma p:n q\r\n" +
		"ma p:missing q\r\n" +
		"ma p:00 q\r\n" +
		"mn\r\n" +
		"mg p:08 v\r\n" +
		"mg p:10 v\r\n" +
		"mg p:n v\r\n"))
	// A quiet batch with noreply text commands and a multi-get mixed in.
	s.exchange([]byte("mg p:11 v q\r\n" +
		"set p:12 0 0 2 noreply\r\nnr\r\n" +
		"get p:12 p:13 p:14 p:15\r\n" +
		"mg p:missing v q\r\n" +
		"ms p:16 2 q\r\nqq\r\n" +
		"mn\r\n" +
		"mg p:16 v\r\n"))
}

// binary opcodes used by the binary script.
const (
	pbGet, pbSet, pbAdd, pbReplace, pbDelete, pbIncr, pbDecr  = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
	pbGetQ, pbNoop, pbGetK, pbGetKQ, pbAppend, pbPrepend      = 0x09, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f
	pbSetQ, pbAddQ, pbReplaceQ, pbDeleteQ, pbIncrQ, pbAppendQ = 0x11, 0x12, 0x13, 0x14, 0x15, 0x19
	pbTouch, pbGAT, pbGATQ                                    = 0x1c, 0x1d, 0x1e
)

// poolBinaryScript is the binary session; opaques are distinct so a mixed-up answer shows.
func poolBinaryScript(s *poolSess) {
	keys := poolTextKeys()
	var b []byte
	op := uint32(100)
	next := func() uint32 { op++; return op }
	for i, k := range keys {
		code := byte(pbSet)
		if i%2 == 1 {
			code = pbSetQ
		}
		b = append(b, binReq{op: code, key: k, extras: storeExtras(uint32(i), 0), value: k, opaque: next()}.bytes()...)
	}
	s.exchange(b)
	// Quiet gets across servers, hits and misses, ended by noop.
	b = b[:0]
	for _, k := range append(keys[:10:10], "p:missing1", "p:missing2") {
		b = append(b, binReq{op: pbGetKQ, key: k, opaque: next()}.bytes()...)
		b = append(b, binReq{op: pbGetQ, key: k, opaque: next()}.bytes()...)
	}
	b = append(b, binReq{op: pbNoop, opaque: next()}.bytes()...)
	for _, k := range []string{"p:11", "p:missing", "p:12"} {
		b = append(b, binReq{op: pbGet, key: k, opaque: next()}.bytes()...)
		b = append(b, binReq{op: pbGetK, key: k, opaque: next()}.bytes()...)
	}
	s.exchange(b)
	// Quiet stores and deletes: successes suppressed, failures answered.
	b = b[:0]
	b = append(b, binReq{op: pbAddQ, key: "p:00", extras: storeExtras(0, 0), value: "x", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbAddQ, key: "p:newq", extras: storeExtras(0, 0), value: "x", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbReplaceQ, key: "p:missing", extras: storeExtras(0, 0), value: "x", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbReplaceQ, key: "p:01", extras: storeExtras(5, 0), value: "rq", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbAppendQ, key: "p:02", value: "+aq", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbDeleteQ, key: "p:03", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbDeleteQ, key: "p:missing", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbSet, key: "p:n", extras: storeExtras(0, 0), value: "10", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbIncrQ, key: "p:n", extras: arithExtras(5, 0, 0), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbIncrQ, key: "p:missing", extras: arithExtras(1, 0, 0xffffffff), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbNoop, opaque: next()}.bytes()...)
	for _, k := range []string{"p:00", "p:newq", "p:01", "p:02", "p:03", "p:n"} {
		b = append(b, binReq{op: pbGetK, key: k, opaque: next()}.bytes()...)
	}
	s.exchange(b)
	// Loud commands of every kind.
	b = b[:0]
	b = append(b, binReq{op: pbAdd, key: "p:04", extras: storeExtras(0, 0), value: "x", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbReplace, key: "p:05", extras: storeExtras(9, 0), value: "r", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbAppend, key: "p:06", value: "+", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbPrepend, key: "p:07", value: "-", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbDelete, key: "p:08", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbDelete, key: "p:08", opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbIncr, key: "p:n", extras: arithExtras(1, 0, 0), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbDecr, key: "p:n", extras: arithExtras(100, 0, 0), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbIncr, key: "p:ctr", extras: arithExtras(1, 42, 0), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbIncr, key: "p:09", extras: arithExtras(1, 0, 0), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbTouch, key: "p:10", extras: u32(100), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbTouch, key: "p:missing", extras: u32(100), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbGAT, key: "p:11", extras: u32(100), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbGATQ, key: "p:missing", extras: u32(100), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbGATQ, key: "p:12", extras: u32(100), opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbNoop, opaque: next()}.bytes()...)
	for _, k := range []string{"p:04", "p:05", "p:06", "p:07", "p:08"} {
		b = append(b, binReq{op: pbGet, key: k, opaque: next()}.bytes()...)
	}
	s.exchange(b)
	// cas: a set with the right unique succeeds, a stale one fails.
	got := s.exchange(binReq{op: pbGet, key: "p:13", opaque: next()}.bytes())
	f, err := readBinResp(bytes.NewReader(got))
	if err != nil || f.status != 0 {
		s.t.Fatalf("binary get p:13: %v %v", f, err)
	}
	b = b[:0]
	b = append(b, binReq{op: pbSet, key: "p:13", extras: storeExtras(0, 0), value: "c1", cas: f.cas, opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbSet, key: "p:13", extras: storeExtras(0, 0), value: "c2", cas: f.cas, opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbSetQ, key: "p:14", extras: storeExtras(0, 0), value: "c3", cas: 1, opaque: next()}.bytes()...)
	b = append(b, binReq{op: pbGet, key: "p:13", opaque: next()}.bytes()...)
	s.exchange(b)
}

// poolPlay runs script on a fresh connection to addr and returns the masked transcript.
func poolPlay(t testing.TB, addr string, binaryProto bool, names map[string]string, script func(*poolSess)) []byte {
	t.Helper()
	s := newPoolSess(t, addr, binaryProto, names)
	script(s)
	s.c.Close()
	return poolMask(s.out.Bytes(), binaryProto)
}

// poolDiff fails with the first differing line of two transcripts.
func poolDiff(t testing.TB, name string, want, got []byte) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			from := max(0, i-4)
			t.Logf("context (memcached):\n%s", strings.Join(wl[from:min(i+3, len(wl))], "\n"))
			t.Fatalf("%s: transcripts differ at line %d:\n memcached: %.200q\n pool:      %.200q\n(%d vs %d bytes)",
				name, i+1, w, g, len(want), len(got))
		}
	}
	t.Fatalf("%s: transcripts differ", name)
}

func TestPoolSessions(t *testing.T) {
	servers := poolServers(t, 3)
	single := poolServers(t, 1)[0]
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(servers))
	r := poolRing(t, cfg.Pool)
	names := poolKeyNames(t, r)
	var keys []string
	for _, k := range names {
		keys = append(keys, k)
	}
	keys = append(keys, "p:n", "p:new", "p:newq", "p:ctr", "p:n1", "p:n2")
	poolStart(t, cfg, proxy.Options{})

	for _, sc := range []struct {
		name   string
		binary bool
		script func(*poolSess)
	}{
		{"text", false, poolTextScript},
		{"meta", false, poolMetaScript},
		{"binary", true, poolBinaryScript},
	} {
		t.Run(sc.name, func(t *testing.T) {
			poolFlush(t, append(servers, single))
			want := poolPlay(t, single.Addr, sc.binary, names, sc.script)
			poolFlush(t, append(servers, single))
			got := poolPlay(t, cfg.Listen, sc.binary, names, sc.script)
			poolDiff(t, sc.name, want, got)
			// Every key the script left behind is on the server the ring names.
			where := poolWhere(t, servers, keys)
			for k, i := range where {
				if i >= 0 && i != r.Pick([]byte(k)) {
					t.Fatalf("key %q is on server %d, the ring says %d", k, i, r.Pick([]byte(k)))
				}
			}
		})
	}
}

// TestPoolSessionsHashTag repeats the text session with a hash tag, so that multi-gets of tagged keys go whole
// to one server and untagged ones are split.
func TestPoolSessionsHashTag(t *testing.T) {
	servers := poolServers(t, 3)
	single := poolServers(t, 1)[0]
	cfg := poolTestConfig(t, "md5", poolLines(servers, 1, 2, 1))
	cfg.Pool.HashTag = "{}"
	cfg.Pool.ConnectionsPerServer = 3
	poolStart(t, cfg, proxy.Options{})
	script := func(s *poolSess) {
		var b strings.Builder
		for i := range 30 {
			k := fmt.Sprintf("{user%d}:f%d", i%3, i)
			fmt.Fprintf(&b, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
		}
		s.exchange([]byte(b.String()))
		s.exchange([]byte("get {user0}:f0 {user0}:f3 {user0}:f6 {user0}:missing\r\n" +
			"get {user1}:f1 {user0}:f0 {user2}:f2 {user1}:f4 {nope}:x\r\n" +
			"mg {user2}:f5 v q\r\nmg {user2}:f8 v q k\r\nmn\r\n"))
	}
	want := poolPlay(t, single.Addr, false, nil, script)
	got := poolPlay(t, cfg.Listen, false, nil, script)
	poolDiff(t, "hash tag", want, got)
	r := poolRing(t, cfg.Pool)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("{user%d}:f%d", i%3, i))
	}
	where := poolWhere(t, servers, keys)
	for _, k := range keys {
		tagged := k[1:strings.IndexByte(k, '}')]
		if where[k] != r.Pick([]byte(tagged)) {
			t.Fatalf("key %q is on server %d, its tag %q hashes to server %d", k, where[k], tagged,
				r.Pick([]byte(tagged)))
		}
	}
	_ = configs.Pool{}
}
