// Isolation between clients, tested as an attacker would: a client that closes with most of a large answer
// unsent while another client connects at once (so the kernel hands it, or its upstream dial, the closed
// client's fd number), in inline and pool mode. No byte of one client's answer may reach another client or
// another upstream connection, and the proxy must not panic.
package proxy_test

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
)

// isolationRounds is how many close-and-reconnect rounds each mode runs; the bug this guards against showed in
// about one round in twelve.
const isolationRounds = 200

func TestIsolation_ClosedClientFdReuse(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	// Two large values: one made of a command that would store a key if its bytes reached an upstream
	// connection as requests, and one with no line end at all.
	inject := strings.Repeat("set injected 0 0 5\r\nPWNED\r\n", 1_000_000/27)
	plain := strings.Repeat("x", 1_000_000)
	d := poolDial(t, mc.Addr)
	for key, val := range map[string]string{"biginject": inject, "bigplain": plain} {
		_ = d.c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(d.c, "set "+key+" 0 0 "+strconv.Itoa(len(val))+"\r\n"+val+"\r\n"); err != nil {
			t.Fatal(err)
		}
		if l, err := d.r.ReadString('\n'); err != nil || l != "STORED\r\n" {
			t.Fatalf("storing %s directly: %q %v", key, l, err)
		}
	}

	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			var cfg configs.Proxy
			if mode == "inline" {
				cfg = testConfig(t, mc.Addr)
			} else {
				cfg = poolTestConfig(t, "fnv1a_64", []string{mc.Addr + ":1"})
			}
			cfg.EventLoops = 1 // one loop: every fd number freed is the next one handed out
			rec := newRecording(t)
			srv := startProxy(t, cfg, rec.options())
			foreign := 0
			for i := range isolationRounds {
				key := "biginject"
				if i%2 == 1 {
					key = "bigplain"
				}
				closeEarly(t, cfg.Listen, key)
				if got := versionRound(t, cfg.Listen); got != "" {
					foreign++
					if foreign <= 3 {
						t.Errorf("round %d: a fresh client received foreign bytes: %.120q", i, got)
					}
				}
			}
			if foreign > 0 {
				t.Errorf("%d of %d rounds leaked a closed client's answer into another client", foreign, isolationRounds)
			}
			if has := d.has([]string{"injected"}); has["injected"] {
				t.Errorf("a closed client's answer reached an upstream connection as requests: key \"injected\" exists")
			}
			// The proxy still serves.
			tc := dialText(t, cfg.Listen)
			tc.roundTrip("set after 0 0 2\r\nok\r\n", "STORED")
			shutdown(t, srv)
			rec.finish(t)
		})
	}
}

// closeEarly asks for a large value with a tiny receive buffer, reads a little of it and closes, so that the
// proxy learns of the close (a reset) with most of the answer still to forward.
func closeEarly(t *testing.T, addr, key string) {
	t.Helper()
	dl := net.Dialer{Timeout: ioTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, "get "+key+"\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(c, make([]byte, 100)); err != nil {
		t.Fatalf("reading the start of %s: %v", key, err)
	}
}

// versionRound connects at once, asks for the version and reads for a short while; it returns whatever arrived
// besides the one VERSION line ("" when nothing else did).
func versionRound(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "version\r\n"); err != nil {
		return "write failed: " + err.Error()
	}
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(ioTimeout)
	tail := time.Time{} // once the VERSION line is in, read a little longer for bytes that follow it
	for {
		until := deadline
		if !tail.IsZero() {
			until = tail
		}
		_ = c.SetReadDeadline(until)
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
		if tail.IsZero() && bytes.Contains(got, []byte("\r\n")) {
			tail = time.Now().Add(30 * time.Millisecond)
		}
	}
	if i := bytes.Index(got, []byte("\r\n")); i >= 0 && bytes.HasPrefix(got, []byte("VERSION ")) && i+2 == len(got) {
		return ""
	}
	if len(got) == 0 {
		return "no answer to version"
	}
	return string(got)
}

// converse sends payload on a fresh connection, half-closes it when asked, and returns everything that arrives
// until the peer closes (closed), the bytes received end with until (when given), or nothing has come for three
// seconds (generous: a loaded machine running the race detector).
func converse(t *testing.T, addr string, payload []byte, halfClose bool, until ...[]byte) (got []byte, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if halfClose {
		if _, err := c.Write(payload); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("shutdown(SHUT_WR): %v", err)
		}
	} else {
		go func() { _, _ = c.Write(payload) }() // large payloads: read while writing
	}
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF || (err != nil && isReset(err)) {
			return got, true
		}
		if err != nil {
			return got, false
		}
		if len(until) > 0 && bytes.HasSuffix(got, until[0]) {
			return got, false
		}
	}
}

// TestIsolation_AnswerBeforeClose: a client that half-closes after its requests, and a client whose binary noop
// is followed by text, get exactly the bytes memcached gives them, and the connection closes when memcached's
// would, through both modes.
func TestIsolation_AnswerBeforeClose(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	noop := binReq{op: 0x0a, opaque: 7}.bytes()
	cases := []struct {
		name      string
		payload   []byte
		halfClose bool
		tries     int
	}{
		{"half-close after set and get", []byte("set hc 0 0 2\r\nhi\r\nget hc\r\n"), true, 20},
		{"half-close after noreply and get", []byte("set hq 0 0 2 noreply\r\nho\r\nget hq hc\r\n"), true, 20},
		{"binary noop then a short text line", append(noop, "version\r\n"...), false, 1},
		{"binary noop then a header's worth of text", append(noop, "version\r\nversion\r\nversion\r\n"...), false, 3},
	}
	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			var cfg configs.Proxy
			if mode == "inline" {
				cfg = testConfig(t, mc.Addr)
			} else {
				cfg = poolTestConfig(t, "fnv1a_64", []string{mc.Addr + ":1"})
			}
			startProxy(t, cfg, newRecording(t).options())
			for _, tc := range cases {
				want, wantClosed := converse(t, mc.Addr, tc.payload, tc.halfClose)
				for i := range tc.tries {
					got, closed := converse(t, cfg.Listen, tc.payload, tc.halfClose)
					if !bytes.Equal(got, want) || closed != wantClosed {
						t.Fatalf("%s, try %d: proxy answered %q (closed: %v), memcached %q (closed: %v)",
							tc.name, i, got, closed, want, wantClosed)
					}
				}
			}
		})
	}
}
