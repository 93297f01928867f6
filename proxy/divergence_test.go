// Byte-for-byte comparisons with memcached for the inputs where a proxy is most tempted to answer on
// memcached's behalf (found by running memcached's own t/ suite through the proxy): each conversation is played
// against one memcached directly and against an identical memcached behind the proxy, and both must give the
// same bytes and close (or not) alike.
package proxy_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
)

// twin is a memcached reached directly and an identical one behind a proxy.
type twin struct {
	direct, proxied string
}

func startTwin(t *testing.T, mode string, args ...string) twin {
	t.Helper()
	a := mctest.StartMemcached(t, args...)
	b := mctest.StartMemcached(t, args...)
	var cfg configs.Proxy
	if mode == "inline" {
		cfg = testConfig(t, b.Addr)
	} else {
		cfg = poolTestConfig(t, "fnv1a_64", []string{b.Addr + ":1"})
	}
	startProxy(t, cfg, newRecording(t).options())
	return twin{direct: a.Addr, proxied: cfg.Listen}
}

// same plays payload both ways; a payload that leaves the connection open ends with a request whose answer
// (until) ends the conversation.
func (tw twin) same(t *testing.T, name string, payload, until []byte) {
	t.Helper()
	want, wantClosed := converse(t, tw.direct, payload, false, until)
	got, closed := converse(t, tw.proxied, payload, false, until)
	if !bytes.Equal(got, want) || closed != wantClosed {
		t.Errorf("%s: through the proxy %.300q (closed: %v), directly %.300q (closed: %v)", name, got, closed, want,
			wantClosed)
	}
}

func TestDivergence_SameBytesAsMemcached(t *testing.T) {
	big := strings.Repeat("B", 1_049_600)
	text := []struct{ name, in string }{
		{"set over the item size drops the old item", "set big 0 0 3\r\nMOO\r\nset big 0 0 1049600\r\n" + big +
			"\r\nget big\r\n"},
		{"noreply set over the item size drops the old item", "set big2 0 0 3\r\nMOO\r\nset big2 0 0 1049600 noreply\r\n" +
			big + "\r\nget big2\r\n"},
		{"add over the item size keeps the old item", "set big3 0 0 3\r\nMOO\r\nadd big3 0 0 1049600\r\n" + big +
			"\r\nget big3\r\n"},
		{"meta set over the item size", "ms big4 3\r\nMOO\r\nms big4 1049600\r\n" + big + "\r\nmg big4 v\r\n"},
		{"HTTP request", "GET / HTTP/1.0\r\n"},
		{"line too long, no newline", "incr " + strings.Repeat(" ", 2048) + " manyspaces 1"},
		{"cas with a bad line, then a set", "cas foo 0 0 6\r\nbarva2\r\nset foo1 0 0 1\r\n1\r\nget foo1\r\n"},
		{"cas with a non-numeric unique", "cas foo 0 0 6 abc\r\nbarva2\r\n"},
		{"set with bad flags", "set foo bar 0 6\r\nbarva2\r\n"},
		{"too few tokens", "incr foo\r\nget\r\ntouch foo\r\n"},
		{"meta flags of newer releases", "ms k 2 E973\r\nhi\r\nmg k c E5\r\nmd k x\r\n"},
	}
	binSet := func(key, val string, opaque uint32) []byte {
		return binReq{op: 0x01, key: key, extras: storeExtras(0, 0), value: val, opaque: opaque}.bytes()
	}
	binary := []struct {
		name string
		in   []byte
	}{
		{"binary set over the item size drops the old item", bytes.Join([][]byte{binSet("bbig", "MOO", 1),
			binSet("bbig", big, 2), binReq{op: 0x00, key: "bbig", opaque: 3}.bytes()}, nil)},
		{"binary get with a 365-byte key", binReq{op: 0x00, key: strings.Repeat("k", 365), opaque: 4}.bytes()},
	}
	noop := binReq{op: 0x0a, opaque: 0x4e4f4f50}.bytes()
	noopAnswer := append([]byte{0x81, 0x0a}, make([]byte, 22)...)
	copy(noopAnswer[12:], noop[12:16])
	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			tw := startTwin(t, mode, "-m", "64")
			for _, c := range text {
				tw.same(t, c.name, []byte(c.in+"mn\r\n"), []byte("MN\r\n"))
			}
			for _, c := range binary {
				tw.same(t, c.name, append(c.in, noop...), noopAnswer)
			}
			t.Run("item size limit learned from memcached -I 4m", func(t *testing.T) {
				tw := startTwin(t, mode, "-m", "64", "-I", "4m")
				v := strings.Repeat("v", 2_000_000)
				tw.same(t, "2 MB value", []byte("set v2m 0 0 2000000\r\n"+v+"\r\nmg v2m s\r\nmn\r\n"), []byte("MN\r\n"))
			})
			t.Run("binary-only memcached", func(t *testing.T) {
				tw := startTwin(t, mode, "-m", "64", "-B", "binary")
				tw.same(t, "24 bytes that are not a binary header", []byte("get foo bar baz quux 12\r\n"), nil)
			})
		})
	}
}
