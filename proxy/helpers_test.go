// Shared fixtures for the proxy's integration tests: an in-process proxy on a free loopback port in front of a
// real memcached, a recording (anonymizer, writer, queue) in t.TempDir, and connections whose every read and
// write is bounded by a deadline.
package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/proxy"
)

// ioTimeout bounds every single network wait in these tests.
const ioTimeout = 10 * time.Second

// testSecret is the anonymizer secret of recording tests; privacy tests check its bytes never leak.
var testSecret = [profile.SaltSize]byte{0x5e, 0xc2, 0xe7, 0x00, 0x11, 0xab, 0xcd, 0xef,
	0x42, 0x42, 0x13, 0x37, 0xfe, 0xed, 0xfa, 0xce}

// testConfig returns proxy defaults on a free loopback port in front of upstream, with short timeouts.
func testConfig(t testing.TB, upstream string) configs.Proxy {
	cfg := configs.DefaultProxy()
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	cfg.Upstream = upstream
	cfg.MetricsListen = ""
	cfg.DrainTimeout = configs.Duration(2 * time.Second)
	cfg.ConnectTimeout = configs.Duration(2 * time.Second)
	return cfg
}

// startProxy starts a proxy with cfg and opts and shuts it down when the test ends (Shutdown is idempotent,
// so tests may shut it down earlier themselves).
func startProxy(t testing.TB, cfg configs.Proxy, opts proxy.Options) *proxy.Server {
	t.Helper()
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("proxy Start: %v", err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	return srv
}

func shutdown(t testing.TB, srv *proxy.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("proxy Shutdown: %v", err)
	}
}

// recording is a profile being written by a proxy.
type recording struct {
	anon  *profile.Anonymizer
	queue *profile.Queue
	path  string
}

func newRecording(t testing.TB) *recording {
	t.Helper()
	anon := profile.NewAnonymizer(testSecret, profile.DefaultNSDelim, true)
	path := filepath.Join(t.TempDir(), "proxy.mbp")
	w, err := profile.NewWriter(path, profile.Header{Created: time.Now(), Mode: "proxy",
		SaltFingerprint: anon.Fingerprint()}, profile.WriterOptions{})
	if err != nil {
		t.Fatalf("profile.NewWriter: %v", err)
	}
	q := profile.NewQueue(w, 1<<16)
	t.Cleanup(func() { _ = q.Close() })
	return &recording{anon: anon, queue: q, path: path}
}

func (r *recording) options() proxy.Options {
	return proxy.Options{Anonymizer: r.anon, Queue: r.queue}
}

// finish closes the queue (the proxy must be shut down first) and returns every event of the profile.
func (r *recording) finish(t testing.TB) []profile.Event {
	t.Helper()
	if err := r.queue.Close(); err != nil {
		t.Fatalf("closing the profile queue: %v", err)
	}
	if d := r.queue.Dropped(); d != 0 {
		t.Errorf("the profile queue dropped %d events", d)
	}
	return readProfile(t, r.path)
}

func readProfile(t testing.TB, path string) []profile.Event {
	t.Helper()
	rd, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		t.Fatalf("profile.Open: %v", err)
	}
	defer rd.Close()
	var evs []profile.Event
	var ev profile.Event
	for rd.Next(&ev) {
		evs = append(evs, ev)
	}
	if err := rd.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if n := rd.TruncatedBlocks(); n != 0 {
		t.Fatalf("%s: %d truncated blocks after a clean close", path, n)
	}
	return evs
}

// dial connects to addr with a deadline for the whole conversation.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// textConn is a text-protocol conversation with line reads.
type textConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialText(t testing.TB, addr string) *textConn {
	t.Helper()
	c := dial(t, addr)
	return &textConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (tc *textConn) send(s string) {
	tc.t.Helper()
	_ = tc.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(tc.c, s); err != nil {
		tc.t.Fatalf("write %.40q: %v", s, err)
	}
}

func (tc *textConn) line() string {
	tc.t.Helper()
	_ = tc.c.SetDeadline(time.Now().Add(ioTimeout))
	l, err := tc.r.ReadString('\n')
	if err != nil {
		tc.t.Fatalf("read line (got %q): %v", l, err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line per want and compares.
func (tc *textConn) expect(want ...string) {
	tc.t.Helper()
	for _, w := range want {
		if got := tc.line(); got != w {
			tc.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// roundTrip sends s and checks the lines that come back.
func (tc *textConn) roundTrip(s string, want ...string) {
	tc.t.Helper()
	tc.send(s)
	tc.expect(want...)
}

// expectEOF reads until the peer closes and fails on data or on a timeout.
func (tc *textConn) expectEOF() {
	tc.t.Helper()
	_ = tc.c.SetDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(tc.r)
	if err != nil && !isReset(err) {
		tc.t.Fatalf("waiting for the connection to close (got %q): %v", b, err)
	}
	if len(b) > 0 {
		tc.t.Fatalf("expected the connection to close, got %q", b)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(err.Error(), "reset by peer")
}

// memcachedStat returns one counter of memcached's `stats` on a fresh direct connection.
func memcachedStat(t testing.TB, addr, name string) uint64 {
	t.Helper()
	st := memcachedStats(t, addr)
	v, ok := st[name]
	if !ok {
		t.Fatalf("memcached stats has no %q", name)
	}
	return v
}

// memcachedStats returns memcached's numeric `stats` on a fresh direct connection.
func memcachedStats(t testing.TB, addr string) map[string]uint64 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("cannot connect to memcached %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	tc := &textConn{t: t, c: c, r: bufio.NewReader(c)}
	tc.send("stats\r\n")
	st := map[string]uint64{}
	for {
		l := tc.line()
		if l == "END" {
			return st
		}
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "STAT" {
			if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				st[f[1]] = v
			}
		}
	}
}

// waitFor polls cond every few milliseconds until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", ioTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Binary protocol frames, built by hand so the tests do not lean on mcproto to check mcproto's user.
type binReq struct {
	op     byte
	key    string
	extras []byte
	value  string
	opaque uint32
	cas    uint64
}

func (r binReq) bytes() []byte {
	b := make([]byte, 24, 24+len(r.extras)+len(r.key)+len(r.value))
	b[0] = 0x80
	b[1] = r.op
	binary.BigEndian.PutUint16(b[2:], uint16(len(r.key)))
	b[4] = byte(len(r.extras))
	binary.BigEndian.PutUint32(b[8:], uint32(len(r.extras)+len(r.key)+len(r.value)))
	binary.BigEndian.PutUint32(b[12:], r.opaque)
	binary.BigEndian.PutUint64(b[16:], r.cas)
	b = append(b, r.extras...)
	b = append(b, r.key...)
	return append(b, r.value...)
}

// binResp is one binary response frame.
type binResp struct {
	op     byte
	status uint16
	opaque uint32
	cas    uint64
	extras []byte
	key    []byte
	value  []byte
	raw    []byte
}

func (r binResp) String() string {
	return fmt.Sprintf("op=%#x status=%#x opaque=%d key=%q value=%.40q", r.op, r.status, r.opaque, r.key, r.value)
}

// readBinResp reads one binary response frame.
func readBinResp(r io.Reader) (binResp, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return binResp{}, err
	}
	if h[0] != 0x81 {
		return binResp{}, fmt.Errorf("bad response magic %#x", h[0])
	}
	kl := int(binary.BigEndian.Uint16(h[2:]))
	el := int(h[4])
	bl := int(binary.BigEndian.Uint32(h[8:]))
	if kl+el > bl {
		return binResp{}, fmt.Errorf("bad response lengths key=%d extras=%d body=%d", kl, el, bl)
	}
	body := make([]byte, bl)
	if _, err := io.ReadFull(r, body); err != nil {
		return binResp{}, err
	}
	return binResp{
		op: h[1], status: binary.BigEndian.Uint16(h[6:]), opaque: binary.BigEndian.Uint32(h[12:]),
		cas: binary.BigEndian.Uint64(h[16:]), extras: body[:el], key: body[el : el+kl], value: body[el+kl:],
		raw: append(h[:], body...),
	}, nil
}

// storeExtras is the 8-byte extras of a binary set/add/replace.
func storeExtras(flags, exptime uint32) []byte {
	var e [8]byte
	binary.BigEndian.PutUint32(e[0:], flags)
	binary.BigEndian.PutUint32(e[4:], exptime)
	return e[:]
}

// arithExtras is the 20-byte extras of a binary incr/decr.
func arithExtras(delta, initial uint64, exptime uint32) []byte {
	var e [20]byte
	binary.BigEndian.PutUint64(e[0:], delta)
	binary.BigEndian.PutUint64(e[8:], initial)
	binary.BigEndian.PutUint32(e[16:], exptime)
	return e[:]
}

// u32 is a 4-byte big-endian extras field (touch and gat exptime, verbosity, flush delay).
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// repeat returns n bytes of a recognisable pattern.
func repeat(n int) string {
	return string(bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n])
}
