// Authentication in pool mode, against real memcached servers that require it: ascii auth tokens (-Y) and
// binary SASL (-S). Shared upstream connections must never carry one client's login to another client.
package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
)

// writeSecret writes a credentials file readable by its owner only and returns its path.
func writeSecret(t testing.TB, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// getAnswer sends "get key" and returns the answer's lines up to END or an error line.
func getAnswer(tc *textConn, key string) []string {
	tc.t.Helper()
	tc.send("get " + key + "\r\n")
	var lines []string
	for {
		l := tc.line()
		lines = append(lines, l)
		if l == "END" || strings.Contains(l, "ERROR") {
			return lines
		}
	}
}

// TestPoolAuth_NotShared is the reported bug: behind memcached -Y, one client's ascii login on a shared upstream
// connection authenticated every other client of the event loop. Clients that never logged in must stay
// unauthenticated, whatever another client does.
func TestPoolAuth_NotShared(t *testing.T) {
	authFile := writeSecret(t, "memcached-auth", "foo:bar\n")
	mc := mctest.StartMemcached(t, "-m", "64", "-Y", authFile)
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("event_loops=%d", loops), func(t *testing.T) {
			cfg := poolTestConfig(t, "fnv1a_64", []string{mc.Addr + ":1"})
			cfg.EventLoops = loops
			startProxy(t, cfg, proxy.Options{})
			a := dialText(t, cfg.Listen)
			// gnet hands connections to loops in turn: with two loops, half the victims share A's loop.
			victims := make([]*textConn, 4)
			for i := range victims {
				victims[i] = dialText(t, cfg.Listen)
			}
			for i, v := range victims {
				if got := v.roundTripLine("set bkey 0 0 2\r\nhi\r\n"); got == "STORED" {
					t.Errorf("victim %d: set before any login answered %q", i, got)
				}
			}
			t.Logf("A's login answered %q", a.roundTripLine("set foo 0 0 7\r\nfoo bar\r\n"))
			for i, v := range victims {
				if got := v.roundTripLine("set bkey 0 0 2\r\nhi\r\n"); got == "STORED" {
					t.Errorf("victim %d: set after another client's login answered %q: the login was shared", i, got)
				}
			}
			c := dialText(t, cfg.Listen)
			if got := getAnswer(c, "bkey"); len(got) > 1 || strings.HasPrefix(got[0], "VALUE") {
				t.Errorf("a new client read bkey: %q", got)
			}
			// memcached itself never stored bkey.
			d := dialText(t, mc.Addr)
			d.roundTrip("set foo 0 0 7\r\nfoo bar\r\n", "STORED")
			if got := getAnswer(d, "bkey"); len(got) != 1 || got[0] != "END" {
				t.Errorf("memcached holds bkey: %q", got)
			}
		})
	}
}

// roundTripLine sends s and returns the one line that comes back.
func (tc *textConn) roundTripLine(s string) string {
	tc.t.Helper()
	tc.send(s)
	return tc.line()
}

// upstreamTap relays TCP connections to a server and keeps, per connection, every byte sent to the server: what
// the proxy wrote on each upstream connection, in order.
type upstreamTap struct {
	Addr string
	mu   sync.Mutex
	sent []*bytes.Buffer
}

func startUpstreamTap(t testing.TB, target string) *upstreamTap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &upstreamTap{Addr: l.Addr().String()}
	var conns sync.WaitGroup
	var open []net.Conn
	var openMu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, ioTimeout)
			if err != nil {
				c.Close()
				continue
			}
			buf := &bytes.Buffer{}
			tap.mu.Lock()
			tap.sent = append(tap.sent, buf)
			tap.mu.Unlock()
			openMu.Lock()
			open = append(open, c, up)
			openMu.Unlock()
			conns.Add(2)
			go func() {
				defer conns.Done()
				_, _ = io.Copy(up, io.TeeReader(c, tapWriter{tap, buf}))
				_ = up.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer conns.Done()
				_, _ = io.Copy(c, up)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
		conns.Wait()
	})
	return tap
}

type tapWriter struct {
	tap *upstreamTap
	buf *bytes.Buffer
}

func (w tapWriter) Write(b []byte) (int, error) {
	w.tap.mu.Lock()
	defer w.tap.mu.Unlock()
	return w.buf.Write(b)
}

// streams returns a copy of the bytes sent on each relayed connection so far.
func (tap *upstreamTap) streams() []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	out := make([]string, len(tap.sent))
	for i, b := range tap.sent {
		out[i] = b.String()
	}
	return out
}

// metricValue reads one counter of the proxy's metrics ("name{labels}").
func metricValue(t testing.TB, name string) uint64 {
	t.Helper()
	var b bytes.Buffer
	proxy.Metrics.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return n
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

const upAuthMetric = `membench_proxy_upstream_errors_total{kind="auth"}`

// authPoolConfig is a pool over one server at addr, with two event loops.
func authPoolConfig(t testing.TB, addr string) configs.Proxy {
	t.Helper()
	return poolTestConfig(t, "fnv1a_64", []string{addr + ":1"})
}

// TestPoolAuth_UpstreamCredentials: the proxy logs in with pool.upstream_auth_file on each shared connection
// before it writes any client byte there; a wrong password or none at all answers the clients with SERVER_ERROR,
// forwards nothing, and is logged once per server without the secret.
func TestPoolAuth_UpstreamCredentials(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64", "-Y", writeSecret(t, "memcached-auth", "proxyuser:proxypw\n"))
	const login = "version\r\nset auth 0 0 17\r\nproxyuser proxypw\r\nversion\r\n"

	t.Run("served", func(t *testing.T) {
		tap := startUpstreamTap(t, mc.Addr)
		cfg := authPoolConfig(t, tap.Addr)
		cfg.Pool.UpstreamAuthFile = writeSecret(t, "upstream-auth", "proxyuser:proxypw\n")
		startProxy(t, cfg, proxy.Options{})
		// Two clients (two event loops, so two upstream connections); each first request is routed while its
		// connection is still dialing and logging in.
		for i := range 2 {
			c := dialText(t, cfg.Listen)
			key := "k" + strconv.Itoa(i)
			c.send("set " + key + " 0 0 2\r\nv" + strconv.Itoa(i) + "\r\nget " + key + "\r\n")
			c.expect("STORED", "VALUE "+key+" 0 2", "v"+strconv.Itoa(i), "END")
		}
		// The tap also sees the connections on which the proxy asks each server what it is when it starts;
		// those carry no client byte either.
		logins := 0
		for i, s := range tap.streams() {
			switch {
			case strings.HasPrefix(s, login):
				logins++
			case strings.Contains(s, "set k") || strings.Contains(s, "get k"):
				t.Errorf("upstream connection %d carried client bytes without the login first: %q", i, s)
			}
		}
		if logins != 2 {
			t.Errorf("%d upstream connections logged in, want 2 (one per event loop): %q", logins, tap.streams())
		}
	})

	f := func(name, authFile, want string) {
		t.Run(name, func(t *testing.T) {
			tap := startUpstreamTap(t, mc.Addr)
			cfg := authPoolConfig(t, tap.Addr)
			cfg.EventLoops = 1
			cfg.Pool.UpstreamAuthFile = authFile
			var log logBuffer
			before := metricValue(t, upAuthMetric)
			startProxy(t, cfg, proxy.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			for range 3 {
				c := dialText(t, cfg.Listen)
				c.send("set k 0 0 1\r\nv\r\nget k\r\n")
				c.expect(want, want)
			}
			if got := metricValue(t, upAuthMetric) - before; got != 1 {
				t.Errorf("%s went up by %d, want 1 (one connection)", upAuthMetric, got)
			}
			if n := strings.Count(log.String(), "level=ERROR"); n != 1 ||
				!strings.Contains(log.String(), "pool.upstream_auth_file") {
				t.Errorf("want one ERROR naming pool.upstream_auth_file, got:\n%s", log.String())
			}
			if strings.Contains(log.String(), "wrongpw") {
				t.Errorf("the log shows the password:\n%s", log.String())
			}
			for i, s := range tap.streams() {
				if strings.Contains(s, "set k") || strings.Contains(s, "get k") {
					t.Errorf("upstream connection %d carried client bytes: %q", i, s)
				}
			}
		})
	}
	f("wrong password", writeSecret(t, "upstream-auth", "proxyuser:wrongpw\n"),
		"SERVER_ERROR upstream authentication failed")
	f("no credentials", "", "SERVER_ERROR upstream requires authentication (set pool.upstream_auth_file)")

	// A reload with the right credentials: the next request on the refusing connection dials and logs in again.
	t.Run("fixed by a reload", func(t *testing.T) {
		cfg := authPoolConfig(t, mc.Addr)
		cfg.EventLoops = 1
		cfg.Pool.UpstreamAuthFile = writeSecret(t, "upstream-auth", "proxyuser:wrongpw\n")
		srv := startProxy(t, cfg, proxy.Options{})
		c := dialText(t, cfg.Listen)
		c.roundTrip("set k 0 0 1\r\nv\r\n", "SERVER_ERROR upstream authentication failed")
		fixed := cfg.Pool
		fixed.UpstreamAuthFile = writeSecret(t, "upstream-auth", "proxyuser:proxypw\n")
		if err := srv.Reload(fixed); err != nil {
			t.Fatal(err)
		}
		c.roundTrip("set k 0 0 1\r\nv\r\n", "STORED")
		c.roundTrip("get k\r\n", "VALUE k 0 1", "v", "END")
	})
}

// TestPoolAuth_ClientAuthFile: with pool.client_auth_file a text client logs in to the proxy with memcached's
// ascii auth token, parsed and answered as memcached 1.6.45 does; no byte of it reaches upstream or the recording.
func TestPoolAuth_ClientAuthFile(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	tap := startUpstreamTap(t, mc.Addr)
	cfg := authPoolConfig(t, tap.Addr)
	cfg.Pool.ClientAuthFile = writeSecret(t, "client-auth", "alice:wonderland\nbob:builder\n")
	rec := newRecording(t)
	srv := startProxy(t, cfg, rec.options())

	a := dialText(t, cfg.Listen)
	a.roundTrip("get k\r\n", "CLIENT_ERROR unauthenticated")
	a.roundTrip("set k 0 0 1\r\nv\r\n", "CLIENT_ERROR bad authentication token format")
	a.roundTrip("set x 0 0 14\r\nalice wrongpw!\r\n", "CLIENT_ERROR authentication failure")
	a.roundTrip("set x 0 0 16\r\nalice wonderland\r\n", "STORED")
	a.roundTrip("set k 0 0 1\r\nv\r\n", "STORED")
	a.roundTrip("get k\r\n", "VALUE k 0 1", "v", "END")
	// Another client is not logged in by a's login.
	b := dialText(t, cfg.Listen)
	b.roundTrip("get k\r\n", "CLIENT_ERROR unauthenticated")
	b.roundTrip("set k 0 0 1\r\nw\r\n", "CLIENT_ERROR bad authentication token format")
	// A login and requests in one write: the requests are served, and recorded with their own answers.
	c := dialText(t, cfg.Listen)
	c.roundTrip("set x 0 0 11\r\nbob builder\r\nget k\r\n", "STORED", "VALUE k 0 1", "v", "END")
	// After the login a token is an ordinary set.
	c.roundTrip("set x 0 0 11\r\ncarol ninja\r\n", "STORED")
	c.roundTrip("get x\r\n", "VALUE x 0 11", "carol ninja", "END")

	// memcached 1.6.45's parsing of an unauthenticated connection, byte for byte (proto_text.c
	// try_read_command_asciiauth; each case checked against memcached 1.6.45 -Y, which keeps only the last
	// answer of a pipelined batch where the proxy answers each request). want "" means the connection closes
	// without an answer.
	f := func(send string, want ...string) {
		t.Helper()
		tc := dialText(t, cfg.Listen)
		tc.send(send)
		if len(want) == 1 && want[0] == "" {
			tc.expectEOF()
			return
		}
		tc.expect(want...)
		tc.c.Close()
	}
	f("quit\r\n", "")                // shorter than 6 bytes before '\n'
	f("get\r\n", "")                 // likewise
	f(strings.Repeat("x", 2049), "") // no '\n' in 2048 bytes
	f("version\r\n", "CLIENT_ERROR unauthenticated")
	f("set a 0 0\r\n", "CLIENT_ERROR unauthenticated")      // four tokens
	f("  set a 0 0 16\r\n", "CLIENT_ERROR unauthenticated") // "set" must start the line
	f("set a 0 0 -1\r\n", "CLIENT_ERROR unauthenticated")   // not a uint32
	f("set a 0 0 4294967296\r\n", "CLIENT_ERROR unauthenticated")
	f("set a 0 0 000000000016\r\n", "CLIENT_ERROR unauthenticated") // more than 11 digits
	f("set a 0 0 16385\r\n", "CLIENT_ERROR auth token too long")
	f("set a 0 0 0\r\n\r\n", "CLIENT_ERROR bad authentication token format")
	f("set a 0 0 5\r\nalice wonderland\r\n", "CLIENT_ERROR bad command line termination",
		"CLIENT_ERROR unauthenticated") // then "onderland\r\n" is a line of one token
	// A line ended by a bare "\n" loses its last byte to mcmc's tokenizer: a one-digit size token is gone, "16"
	// becomes "1" (and the data "ali" lacks its "\r\n")...
	f("set a 0 0 7\nfoo bar\r\n", "CLIENT_ERROR unauthenticated", "CLIENT_ERROR unauthenticated")
	f("set a 0 0 16\nalice wonderland\r\n", "CLIENT_ERROR bad command line termination",
		"CLIENT_ERROR unauthenticated")
	// ...unless a space follows it.
	f("set a 0 0 16 \nalice wonderland\r\n", "STORED")
	f("setx  a  b  c  16  extra\r\nalice wonderland\r\n", "STORED") // only "set" and the fifth token count
	f("set a 0 0 12\r\nalice wonder\r\n", "CLIENT_ERROR authentication failure")
	f("set a 0 0 17\r\nalice  wonderland\r\n", "CLIENT_ERROR authentication failure") // the password is " wonderland"
	f("set a 0 0 16\r\nalice wonderland\r\nget k\r\n", "STORED", "VALUE k 0 1", "v", "END")

	// Nothing of any login reached memcached: neither the key x of the tokens nor a password.
	for i, s := range tap.streams() {
		for _, secret := range []string{"wonderland", "builder", "wrongpw"} {
			if strings.Contains(s, secret) {
				t.Errorf("upstream connection %d carried %q: %q", i, secret, s)
			}
		}
	}
	d := dialText(t, mc.Addr)
	d.roundTrip("get x\r\n", "VALUE x 0 11", "carol ninja", "END") // only c's ordinary set after its login

	shutdown(t, srv)
	// Recorded: a's set and get, c's get, set and get, and the get of the last f; no login, no refused request.
	var got []string
	for _, ev := range rec.finish(t) {
		got = append(got, ev.Cmd.String()+"/"+ev.Status.String()+"/"+strconv.Itoa(int(ev.ValueSize)))
	}
	want := []string{"set/stored/1", "get/hit/1", "get/hit/1", "set/stored/11", "get/hit/11", "get/hit/1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("recorded %q, want %q", got, want)
	}
}

// startSASLMemcached starts memcached -S (binary protocol only, SASL) knowing one user, in a sasldb of its own:
// Cyrus SASL's config and database live in t.TempDir and reach this memcached only (SASL_CONF_PATH).
func startSASLMemcached(t testing.TB, user, pass string) *mctest.Server {
	t.Helper()
	bin := mctest.Require(t, "memcached")
	saslpasswd := mctest.Require(t, "saslpasswd2")
	if out, _ := exec.Command(bin, "-h").CombinedOutput(); !bytes.Contains(out, []byte("enable-sasl")) {
		mctest.Missing(t, "memcached was built without SASL support (-S)")
	}
	for _, plugin := range []string{"libplain.so", "libsasldb.so"} {
		m, _ := filepath.Glob("/usr/lib/*/sasl2/" + plugin + "*")
		m2, _ := filepath.Glob("/usr/lib/sasl2/" + plugin + "*")
		if len(m)+len(m2) == 0 {
			mctest.Missing(t, "no Cyrus SASL plugin "+plugin+
				" (install libsasl2-modules and libsasl2-modules-db: sudo scripts/install-deps.sh)")
		}
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "sasldb2")
	cmd := exec.Command(saslpasswd, "-p", "-c", "-a", "memcached", "-f", db, user)
	cmd.Stdin = strings.NewReader(pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v: %s", err, out)
	}
	conf := "mech_list: plain\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return mctest.StartMemcachedEnv(t, []string{"SASL_CONF_PATH=" + dir}, "-m", "64", "-S")
}

// binConn is a binary-protocol conversation.
type binConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialBin(t testing.TB, addr string) *binConn {
	t.Helper()
	c := dial(t, addr)
	return &binConn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends req and reads one answer.
func (b *binConn) do(req binReq) binResp {
	b.t.Helper()
	if _, err := b.c.Write(req.bytes()); err != nil {
		b.t.Fatalf("write %#x: %v", req.op, err)
	}
	resp, err := readBinResp(b.r)
	if err != nil {
		b.t.Fatalf("reading the answer to %#x: %v", req.op, err)
	}
	return resp
}

// expect sends req and checks the answer's status and value.
func (b *binConn) expect(req binReq, status uint16, value string) {
	b.t.Helper()
	if got := b.do(req); got.status != status || string(got.value) != value || got.op != req.op ||
		got.opaque != req.opaque {
		b.t.Fatalf("%#x: got %v, want status %#x value %q", req.op, got, status, value)
	}
}

// expectEOF checks that the proxy closed the connection with nothing more to say.
func (b *binConn) expectEOF() {
	b.t.Helper()
	if rest, err := io.ReadAll(b.r); (err != nil && !isReset(err)) || len(rest) > 0 {
		b.t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

// Binary opcodes and statuses of the SASL tests.
const (
	opGet, opSet, opVersion, opNoop                    = 0x00, 0x01, 0x0b, 0x0a
	opSASLList, opSASLAuth, opSASLStep                 = 0x20, 0x21, 0x22
	stAuthError, stAuthContinue, stUnknown, stUpstream = 0x20, 0x21, 0x81, 0x86
)

func saslAuth(op byte, msg string) binReq { return binReq{op: op, key: "PLAIN", value: msg, opaque: 7} }

// TestPoolAuth_SASL: behind memcached -S, binary clients are served over connections the proxy logged in with
// SASL PLAIN (pool.upstream_auth_file); a client's SASL requests are answered by the proxy, checked against
// pool.client_auth_file, and never reach memcached.
func TestPoolAuth_SASL(t *testing.T) {
	mc := startSASLMemcached(t, "alice", "secretpw")
	set := binReq{op: opSet, key: "k", extras: storeExtras(0, 0), value: "v", opaque: 1}
	get := binReq{op: opGet, key: "k", opaque: 2}
	loginPrefix := string(binReq{op: opVersion}.bytes()) + string(binReq{op: opSASLList, opaque: 1}.bytes()) +
		string(binReq{op: opSASLAuth, key: "PLAIN", value: "\x00alice\x00secretpw", opaque: 2}.bytes())
	start := func(t *testing.T, upstream, clients string) (*configs.Proxy, *upstreamTap) {
		tap := startUpstreamTap(t, mc.Addr)
		cfg := authPoolConfig(t, tap.Addr)
		if upstream != "" {
			cfg.Pool.UpstreamAuthFile = writeSecret(t, "upstream-auth", upstream)
		}
		if clients != "" {
			cfg.Pool.ClientAuthFile = writeSecret(t, "client-auth", clients)
		}
		startProxy(t, cfg, proxy.Options{})
		return &cfg, tap
	}
	// checkStreams: every upstream connection logged in as alice first, and no client login reached one.
	checkStreams := func(t *testing.T, tap *upstreamTap) {
		t.Helper()
		logins := 0
		for i, s := range tap.streams() {
			switch {
			case strings.HasPrefix(s, loginPrefix):
				logins++
			case strings.Contains(s, string(set.bytes())) || strings.Contains(s, string(get.bytes())):
				t.Errorf("upstream connection %d carried client bytes without the login first: %q", i, s)
			}
			for _, secret := range []string{"bob", "builder", "mallory"} {
				if strings.Contains(s, secret) {
					t.Errorf("upstream connection %d carried a client's SASL request (%q): %q", i, secret, s)
				}
			}
		}
		if logins == 0 {
			t.Errorf("no upstream connection logged in: %q", tap.streams())
		}
	}

	t.Run("client_auth_file", func(t *testing.T) {
		cfg, tap := start(t, "alice:secretpw\n", "bob:builder\n")
		x := dialBin(t, cfg.Listen)
		x.expect(binReq{op: opSASLList, opaque: 3}, 0, "PLAIN")
		x.expect(binReq{op: opVersion, opaque: 4}, 0, "membench-pool") // allowed before the login, as by memcached
		x.expect(get, stAuthError, "Auth failure.")
		x.expectEOF() // memcached -S closes too
		y := dialBin(t, cfg.Listen)
		y.expect(saslAuth(opSASLAuth, "\x00bob\x00wrong"), stAuthError, "Auth failure.")
		y.expect(saslAuth(opSASLAuth, "\x00alice\x00secretpw"), stAuthError, "Auth failure.") // the proxy's, not a client's
		y.expect(saslAuth(opSASLAuth, "\x00bob\x00builder"), 0, "Authenticated")
		y.expect(set, 0, "")
		y.expect(get, 0, "v")
		// PLAIN in two steps: an empty initial response, then the message in a SASL step.
		w := dialBin(t, cfg.Listen)
		w.expect(saslAuth(opSASLStep, "\x00bob\x00builder"), stAuthError, "Auth failure.") // no AUTH before
		w.expect(saslAuth(opSASLAuth, ""), stAuthContinue, "")
		w.expect(saslAuth(opSASLStep, "bob\x00bob\x00builder"), 0, "Authenticated")
		w.expect(get, 0, "v")
		// A client that never logged in is not served, whoever else did.
		z := dialBin(t, cfg.Listen)
		z.expect(binReq{op: opNoop, opaque: 5}, stAuthError, "Auth failure.")
		z.expectEOF()
		checkStreams(t, tap)
	})

	t.Run("no client_auth_file", func(t *testing.T) {
		cfg, tap := start(t, "alice:secretpw\n", "")
		c := dialBin(t, cfg.Listen)
		// As memcached without SASL answers them, and never forwarded.
		c.expect(binReq{op: opSASLList, opaque: 3}, stUnknown, "Unknown command")
		c.expect(saslAuth(opSASLAuth, "\x00mallory\x00x"), stUnknown, "Unknown command")
		c.expect(set, 0, "")
		c.expect(get, 0, "v")
		checkStreams(t, tap)
	})

	f := func(name, upstream, want string) {
		t.Run(name, func(t *testing.T) {
			cfg, tap := start(t, upstream, "")
			c := dialBin(t, cfg.Listen)
			c.expect(set, stUpstream, want)
			c.expect(get, stUpstream, want)
			for i, s := range tap.streams() {
				if strings.Contains(s, string(set.bytes())) || strings.Contains(s, string(get.bytes())) {
					t.Errorf("upstream connection %d carried client bytes: %q", i, s)
				}
			}
		})
	}
	f("wrong password", "alice:wrongpw\n", "SERVER_ERROR upstream authentication failed")
	f("no credentials", "", "SERVER_ERROR upstream requires authentication (set pool.upstream_auth_file)")
}
