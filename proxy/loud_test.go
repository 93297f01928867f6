// Failures that must be visible, not silent: an outage shows in the profile, and garbage from the upstream
// costs only the answers it replaced.
package proxy_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/proxy"
)

// TestRecording_Outage: requests refused with "SERVER_ERROR upstream unavailable" (nothing listens upstream) are
// recorded with status server_error, so a profile shows the outage.
func TestRecording_Outage(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:"+strconv.Itoa(mctest.FreePort(t)))
	rec := newRecording(t)
	srv := startProxy(t, cfg, rec.options())
	c := dialText(t, cfg.Listen)
	c.send("get k\r\nset k 0 0 1\r\nx\r\n")
	c.expect("SERVER_ERROR upstream unavailable", "SERVER_ERROR upstream unavailable")
	shutdown(t, srv)
	evs := rec.finish(t)
	if len(evs) != 2 {
		t.Fatalf("recorded %d events, want 2", len(evs))
	}
	for i, want := range []mcproto.Command{mcproto.CmdGet, mcproto.CmdSet} {
		if evs[i].Cmd != want || evs[i].Status != mcproto.StatusServerError {
			t.Errorf("event %d: %v %v, want %v server_error", i, evs[i].Cmd, evs[i].Status, want)
		}
	}
}

// TestRecording_UpstreamGarbage: an upstream (not memcached) that sends a line no memcached sends between valid
// answers: the client gets every byte unchanged, and every set is still recorded as stored.
func TestRecording_UpstreamGarbage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const sets = 50
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for i := 0; ; {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.HasPrefix(line, "version"):
						_, _ = c.Write([]byte("VERSION 1.6.18\r\n"))
					case strings.HasPrefix(line, "stats"):
						_, _ = c.Write([]byte("END\r\n"))
					case strings.HasPrefix(line, "set "):
						_, _ = r.ReadString('\n') // the value
						out := "STORED\r\n"
						if i == 3 {
							out = "GARBAGE THAT NO MEMCACHED SENDS\r\n" + out
						}
						i++
						_, _ = c.Write([]byte(out))
					}
				}
			}()
		}
	}()
	cfg := testConfig(t, ln.Addr().String())
	rec := newRecording(t)
	srv := startProxy(t, cfg, rec.options())
	c := dialText(t, cfg.Listen)
	for i := range sets {
		c.send("set k" + strconv.Itoa(i) + " 0 0 1\r\nx\r\n")
		if i == 3 {
			c.expect("GARBAGE THAT NO MEMCACHED SENDS")
		}
		c.expect("STORED")
	}
	shutdown(t, srv)
	stored := 0
	for _, ev := range rec.finish(t) {
		if ev.Status == mcproto.StatusStored {
			stored++
		}
	}
	if stored != sets {
		t.Errorf("%d of %d sets recorded as stored after one garbage line", stored, sets)
	}
}

// TestCounting_ClientGarbage: input on which memcached closes the connection is counted as the client's error,
// not as memcached closing on the proxy.
func TestCounting_ClientGarbage(t *testing.T) {
	mc := mctest.StartMemcached(t)
	cfg := testConfig(t, mc.Addr)
	startProxy(t, cfg, newRecording(t).options())
	for _, in := range []string{"GET / HTTP/1.0\r\n", "incr " + strings.Repeat(" ", 2048) + " x 1"} {
		client0, closed0 := proxy.ProtocolErrors()
		got, closed := converse(t, cfg.Listen, []byte(in), false)
		client1, closed1 := proxy.ProtocolErrors()
		if !closed {
			t.Fatalf("%.20q: the connection stayed open (got %q)", in, got)
		}
		if client1 == client0 {
			t.Errorf("%.20q: not counted as a client protocol error", in)
		}
		if closed1 != closed0 {
			t.Errorf("%.20q: counted as memcached closing on the proxy (upstream_errors_total{kind=\"closed\"})", in)
		}
	}
}
