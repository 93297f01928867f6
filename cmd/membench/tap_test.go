package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
)

func TestTapConfig_Success(t *testing.T) {
	f := func(args []string, edit func(*configs.Tap)) {
		t.Helper()
		want := configs.DefaultTap()
		edit(&want)
		got, err := tapConfig(args, io.Discard)
		if err != nil {
			t.Fatalf("tapConfig(%q): %v", args, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tapConfig(%q)\n got %+v\nwant %+v", args, got, want)
		}
	}
	f([]string{"--interface", "eth0"}, func(c *configs.Tap) { c.Interface = "eth0" })
	f([]string{"--pcap", "m.pcap", "--encap", "none"}, func(c *configs.Tap) { c.Pcap, c.Encap = "m.pcap", "none" })
	f([]string{"--pcap", "m.pcap", "--encap=vxlan"}, func(c *configs.Tap) { c.Pcap, c.Encap = "m.pcap", "vxlan" })
	f([]string{"--pcap", "x.pcap", "--port", "11211,11212", "--record", "out.mbp", "--salt-file", "s.hex"},
		func(c *configs.Tap) {
			c.Pcap, c.Ports, c.Record, c.SaltFile = "x.pcap", []int{11211, 11212}, "out.mbp", "s.hex"
		})
	f([]string{"--interface=lo", "--bpf", "tcp port 1", "--promisc", "--snaplen", "2000", "--buffer-size",
		"1048576", "--duration", "30s", "--metrics-listen", "", "--max-flows", "10", "--max-flow-buffer", "70000",
		"--max-total-buffer", "80000", "--reorder-window", "1s", "--idle-timeout", "5m", "--sample-rate", "0.5",
		"--namespace-delimiter", "", "--host-label", "h1", "--queue-size", "5", "--flush-interval", "2s"},
		func(c *configs.Tap) {
			c.Interface, c.BPF, c.Promiscuous, c.SnapLen, c.BufferSize = "lo", "tcp port 1", true, 2000, 1<<20
			c.Duration, c.MetricsListen, c.MaxFlows = configs.Duration(30*time.Second), "", 10
			c.MaxFlowBuffer, c.MaxTotalBuffer = 70000, 80000
			c.ReorderWindow, c.IdleTimeout = configs.Duration(time.Second), configs.Duration(5*time.Minute)
			c.SampleRate, c.NamespaceDelimiter, c.HostLabel, c.QueueSize = 0.5, "", "h1", 5
			c.FlushInterval = configs.Duration(2 * time.Second)
		})
	// A config file, with flags winning; a flag choosing the other source replaces the file's.
	path := filepath.Join(t.TempDir(), "tap.toml")
	if err := os.WriteFile(path, []byte("interface = \"eth1\"\nports = [1234]\nrecord = \"a.mbp\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f([]string{"--config", path}, func(c *configs.Tap) { c.Interface, c.Ports, c.Record = "eth1", []int{1234}, "a.mbp" })
	f([]string{"--config", path, "--record", "b.mbp"}, func(c *configs.Tap) {
		c.Interface, c.Ports, c.Record = "eth1", []int{1234}, "b.mbp"
	})
	f([]string{"--config", path, "--pcap", "f.pcap"}, func(c *configs.Tap) {
		c.Pcap, c.Ports, c.Record = "f.pcap", []int{1234}, "a.mbp"
	})
}

func TestTapConfig_Failure(t *testing.T) {
	f := func(args []string, wants ...string) {
		t.Helper()
		_, err := tapConfig(args, io.Discard)
		if err == nil {
			t.Fatalf("tapConfig(%q): no error, want %q", args, wants)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("tapConfig(%q) = %q, want it to contain %q", args, err, w)
			}
		}
	}
	f(nil, "neither interface nor pcap", "--interface or --pcap")
	f([]string{"--interface", "lo", "--pcap", "x"}, "choose one")
	f([]string{"--interface", "lo", "--port", "http"}, "--port", "http")
	f([]string{"--interface", "lo", "--sample-rate", "2"}, "sample_rate")
	f([]string{"--interface", "lo", "stray"}, "unexpected argument")
	f([]string{"--bogus"}, "--bogus")
	f([]string{"--interface", "lo", "--encap", "geneve"}, "encap", "auto, none, vxlan or gre")
}

// TestTapConfig_Example loads configs/tap.toml through the command, as its comment tells users to.
func TestTapConfig_Example(t *testing.T) {
	cfg, err := tapConfig([]string{"--config", filepath.Join("..", "..", "configs", "tap.toml")}, io.Discard)
	if err != nil {
		t.Fatalf("configs/tap.toml: %v", err)
	}
	if cfg.Encap != "auto" || cfg.Interface != "lo" {
		t.Fatalf("configs/tap.toml decoded to %+v", cfg)
	}
}

// TestTapHelp: the help names --encap and the exit code of a damaged capture file.
func TestTapHelp(t *testing.T) {
	code, stdout, _ := runMembench("tap", "--help")
	for _, want := range []string{"--encap MODE", "4 the capture file is damaged", "busiest TCP ports"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("membench tap --help: exit %d, want %q in\n%s", code, want, stdout)
		}
	}
}

// fixturesDir is where the tap's pcap fixtures live.
var fixturesDir = filepath.Join("..", "..", "tap", "testdata")

func fixturePortString(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir, "fixtures.port"))
	if err != nil {
		t.Fatalf("cannot read the fixtures' port: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func writeSalt(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "salt.hex")
	if err := profile.WriteSaltFile(path, [profile.SaltSize]byte{9, 8, 7}); err != nil {
		t.Fatal(err)
	}
	return path
}

// readProfile returns a profile's header and events.
func readProfile(t *testing.T, path string) (profile.Header, []profile.Event) {
	t.Helper()
	r, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		t.Fatalf("cannot open profile %s: %v", path, err)
	}
	defer r.Close()
	var evs []profile.Event
	var ev profile.Event
	for r.Next(&ev) {
		evs = append(evs, ev)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("cannot read profile %s: %v", path, err)
	}
	return r.Header(), evs
}

// TestTapOffline_Deterministic records the same pcap twice with the same salt: byte-identical profiles, whose
// creation time is the capture's first packet.
func TestTapOffline_Deterministic(t *testing.T) {
	salt, dir, port := writeSalt(t), t.TempDir(), fixturePortString(t)
	for _, name := range []string{"text.pcap", "meta.pcap", "binary.pcap", "midstream.pcap"} {
		var files [2][]byte
		for i := range files {
			out := filepath.Join(dir, fmt.Sprintf("%s-%d.mbp", name, i))
			code, stdout, stderr := runMembench("tap", "--pcap", filepath.Join(fixturesDir, name), "--port", port,
				"--record", out, "--salt-file", salt, "--metrics-listen", "")
			if code != 0 {
				t.Fatalf("membench tap --pcap %s: exit %d\n%s%s", name, code, stdout, stderr)
			}
			if !strings.Contains(stdout, "events recorded") {
				t.Fatalf("membench tap --pcap %s printed %q", name, stdout)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			files[i] = b
			if i == 0 {
				h, evs := readProfile(t, out)
				if h.Mode != "tap" || len(evs) == 0 || h.Created.After(time.Unix(0, evs[0].Time)) ||
					time.Unix(0, evs[0].Time).Sub(h.Created) > time.Minute {
					t.Fatalf("%s: header %+v with %d events (first at %v)", name, h, len(evs), time.Unix(0, evs[0].Time))
				}
			}
		}
		if !bytes.Equal(files[0], files[1]) {
			t.Fatalf("%s: two recordings of the same pcap differ", name)
		}
	}
}

func TestTapOffline_Failure(t *testing.T) {
	code, _, stderr := runMembench("tap", "--pcap", filepath.Join(t.TempDir(), "none.pcap"), "--metrics-listen", "")
	if code != 1 || !strings.Contains(stderr, "--pcap") {
		t.Fatalf("missing pcap: exit %d, %q", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "x.mbp")
	code, _, stderr = runMembench("tap", "--pcap", filepath.Join(fixturesDir, "meta.pcap"), "--record", out,
		"--salt-file", filepath.Join(t.TempDir(), "nosalt"), "--metrics-listen", "")
	if code != 1 || !strings.Contains(stderr, "--salt-file") {
		t.Fatalf("missing salt file: exit %d, %q", code, stderr)
	}
}

// TestTapVsProxy records one session twice: through `membench proxy` (the built binary, so the tap's tests
// never link the proxy) and by tcpdump on the proxy's client side, decoded afterwards by `membench tap`. The
// two profiles must hold the same events, times and latencies aside.
func TestTapVsProxy(t *testing.T) {
	if os.Geteuid() != 0 {
		mctest.Missing(t, "tcpdump needs root to capture on lo")
	}
	tcpdump := mctest.Require(t, "tcpdump")
	mc := mctest.StartMemcached(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "membench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	salt := writeSalt(t)
	listen := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	proxyProfile, tapProfile, pcap := filepath.Join(dir, "proxy.mbp"), filepath.Join(dir, "tap.mbp"),
		filepath.Join(dir, "client.pcap")
	proxy := exec.Command(bin, "proxy", "--listen", listen, "--upstream", mc.Addr, "--record", proxyProfile,
		"--salt-file", salt, "--metrics-listen", "")
	proxy.Stdout, proxy.Stderr = os.Stderr, os.Stderr
	proxy.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Process.Kill()
	waitListening(t, listen)

	_, port, _ := net.SplitHostPort(listen)
	var tdErr lockedBuffer
	td := exec.Command(tcpdump, "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-n", "-w", pcap, "tcp port "+port)
	td.Stderr = &tdErr
	td.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	defer td.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(tdErr.String(), "listening on"); {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", tdErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// "listening on" can come before packets are captured: knock (connect and close, no requests) until the
	// capture file shows packets.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
		}
		time.Sleep(50 * time.Millisecond)
		if st, err := os.Stat(pcap); err == nil && st.Size() > 24 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump captured nothing within 10s: %s", tdErr.String())
		}
	}

	if err := proxySession(listen); err != nil {
		t.Fatal(err)
	}
	// Let tcpdump write the last packets before it is stopped: on a loaded machine it lags behind, so wait until
	// the capture file has stopped growing for a second (at most 15s).
	for last, stable, deadline := int64(-1), time.Now(), time.Now().Add(15*time.Second); time.Now().Before(deadline); {
		st, err := os.Stat(pcap)
		if err == nil && st.Size() != last {
			last, stable = st.Size(), time.Now()
		} else if time.Since(stable) > time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = td.Process.Signal(syscall.SIGINT)
	_ = td.Wait()
	_ = proxy.Process.Signal(syscall.SIGTERM)
	if err := proxy.Wait(); err != nil {
		t.Fatalf("membench proxy: %v", err)
	}
	code, stdout, stderr := runMembench("tap", "--pcap", pcap, "--port", port, "--record", tapProfile,
		"--salt-file", salt, "--metrics-listen", "")
	if code != 0 {
		t.Fatalf("membench tap: exit %d\n%s%s", code, stdout, stderr)
	}
	_, pe := readProfile(t, proxyProfile)
	_, te := readProfile(t, tapProfile)
	got, want := comparable(te), comparable(pe)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tap and proxy profiles differ:\ntap   %d events %q\nproxy %d events %q\n%s", len(got), got,
			len(want), want, stdout)
	}
	if len(want) < 30 {
		t.Fatalf("only %d events recorded", len(want))
	}
}

// lockedBuffer is a bytes.Buffer that a child process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// comparable renders events without times and latencies, connections renumbered by first appearance and
// events in request order within each.
func comparable(evs []profile.Event) []string {
	evs = append([]profile.Event(nil), evs...)
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].Conn != evs[j].Conn {
			return evs[i].Conn < evs[j].Conn
		}
		return evs[i].Time < evs[j].Time
	})
	conns := map[uint64]int{}
	out := make([]string, len(evs))
	for i, ev := range evs {
		if _, ok := conns[ev.Conn]; !ok {
			conns[ev.Conn] = len(conns) + 1
		}
		ev.Conn, ev.Time, ev.Latency = uint64(conns[ev.Conn]), 0, 0
		out[i] = fmt.Sprintf("%+v", ev)
	}
	return out
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxySession is a client session through the proxy: text, meta and binary, one connection after another.
func proxySession(addr string) error {
	big := strings.Repeat("x", 200000)
	text := [][2]string{
		{"set a:1 5 0 3\r\none\r\n", "STORED\r\n"},
		{"set a:2 0 100 3\r\ntwo\r\n", "STORED\r\n"},
		{"get a:1\r\n", "END\r\n"},
		{"get a:1 a:nope a:2\r\n", "END\r\n"},
		{"gets a:2\r\n", "END\r\n"},
		{"add a:1 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		{"incr a:n 1\r\n", "NOT_FOUND\r\n"},
		{"set a:n 0 0 1\r\n5\r\n", "STORED\r\n"},
		{"incr a:n 10\r\n", "15\r\n"},
		{"touch a:1 60\r\n", "TOUCHED\r\n"},
		{"set a:q 0 0 1 noreply\r\nq\r\nget a:q\r\n", "END\r\n"},
		{"set a:big 0 0 200000\r\n" + big + "\r\n", "STORED\r\n"},
		{"get a:big\r\n", "END\r\n"},
		{"delete a:1\r\n", "DELETED\r\n"},
		{"delete a:1\r\n", "NOT_FOUND\r\n"},
		{"bogus command\r\n", "ERROR\r\n"},
	}
	meta := [][2]string{
		{"ms m:1 2 T0\r\nhi\r\nms m:2 2 q\r\nyo\r\nmn\r\n", "MN\r\n"},
		{"mg m:1 v k q\r\nmg m:x v k q\r\nmg m:2 v k q\r\nmn\r\n", "MN\r\n"},
		{"md m:1 q O9\r\nmd m:1 q O10\r\nmn\r\n", "MN\r\n"},
		{"ma m:c N0 J13 v\r\n", "\r\n13\r\n"},
	}
	for _, steps := range [][][2]string{text, meta} {
		if err := converse(addr, steps); err != nil {
			return err
		}
	}
	return binarySession(addr)
}

func converse(addr string, steps [][2]string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, s := range steps {
		if _, err := c.Write([]byte(s[0])); err != nil {
			return err
		}
		var got strings.Builder
		for !strings.HasSuffix(got.String(), s[1]) {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%.40q: %w after %.200q", s[0], err, got.String())
			}
			got.WriteString(line)
		}
	}
	_, err = c.Write([]byte("quit\r\n"))
	return err
}

func binarySession(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := func(op byte, key, extras, value []byte, opaque uint32) []byte {
		h := make([]byte, 24)
		h[0], h[1] = 0x80, op
		binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
		h[4] = byte(len(extras))
		binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(value)))
		binary.BigEndian.PutUint32(h[12:], opaque)
		return append(append(append(h, extras...), key...), value...)
	}
	readN := func(n int) error {
		for ; n > 0; n-- {
			h := make([]byte, 24)
			if _, err := io.ReadFull(c, h); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(h[8:]))); err != nil {
				return err
			}
		}
		return nil
	}
	flags := []byte{0, 0, 0, 3, 0, 0, 0, 0}
	steps := []struct {
		b []byte
		n int
	}{
		{req(0x01, []byte("b:1"), flags, []byte("value"), 1), 1},
		{req(0x00, []byte("b:1"), nil, nil, 2), 1},
		{req(0x00, []byte("b:none"), nil, nil, 3), 1},
		{append(append(req(0x09, []byte("b:1"), nil, nil, 4), req(0x0d, []byte("b:none"), nil, nil, 5)...),
			req(0x0a, nil, nil, nil, 6)...), 2},
		{req(0x04, []byte("b:1"), nil, nil, 7), 1},
		{req(0x0b, nil, nil, nil, 8), 1},
	}
	for _, s := range steps {
		if _, err := c.Write(s.b); err != nil {
			return err
		}
		if err := readN(s.n); err != nil {
			return fmt.Errorf("binary opcode %#x: %w", s.b[1], err)
		}
	}
	_, err = c.Write(req(0x07, nil, nil, nil, 9))
	if err == nil {
		err = readN(1)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// tapProfile runs membench tap over a capture file and returns the exit code, stderr and the recorded events
// (nil when no profile was written).
func tapProfile(t *testing.T, pcap string, args ...string) (int, string, []profile.Event) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.mbp")
	args = append([]string{"tap", "--pcap", pcap, "--record", out, "--salt-file", writeSalt(t),
		"--metrics-listen", ""}, args...)
	code, _, stderr := runMembench(args...)
	if _, err := os.Stat(out); err != nil {
		return code, stderr, nil
	}
	_, evs := readProfile(t, out)
	return code, stderr, evs
}

// TestTapOffline_Encap: a VXLAN capture (what AWS VPC Traffic Mirroring delivers) used to give 0 events and
// exit 0, even with --bpf udp; it gives the events of the same traffic captured inside the tunnel.
func TestTapOffline_Encap(t *testing.T) {
	port := fixturePortString(t)
	code, stderr, inner := tapProfile(t, filepath.Join(fixturesDir, "vxlan-inner.pcap"), "--port", port)
	if code != 0 || len(inner) != 8 {
		t.Fatalf("vxlan-inner.pcap: exit %d, %d events\n%s", code, len(inner), stderr)
	}
	for _, args := range [][]string{{}, {"--bpf", "udp"}, {"--encap", "vxlan"}} {
		code, stderr, evs := tapProfile(t, filepath.Join(fixturesDir, "vxlan.pcap"), append(args, "--port", port)...)
		if code != 0 || !reflect.DeepEqual(comparable(evs), comparable(inner)) {
			t.Fatalf("vxlan.pcap %q: exit %d, events\n%s\nwant\n%s\n%s", args, code,
				strings.Join(comparable(evs), "\n"), strings.Join(comparable(inner), "\n"), stderr)
		}
	}
	code, stderr, evs := tapProfile(t, filepath.Join(fixturesDir, "vxlan.pcap"), "--port", port, "--encap", "none")
	if code != 0 || len(evs) != 0 || !strings.Contains(stderr, "--encap auto") {
		t.Fatalf("vxlan.pcap --encap none: exit %d, %d events, stderr %q; want a warning naming --encap", code,
			len(evs), stderr)
	}
	_, _, meta := tapProfile(t, filepath.Join(fixturesDir, "meta.pcap"), "--port", port)
	for _, name := range []string{"gre.pcap", "erspan2.pcap", "erspan3.pcap"} {
		code, stderr, evs := tapProfile(t, filepath.Join(fixturesDir, name), "--port", port)
		if code != 0 || !reflect.DeepEqual(comparable(evs), comparable(meta)) {
			t.Fatalf("%s: exit %d, %d events, want meta.pcap's %d\n%s", name, code, len(evs), len(meta), stderr)
		}
	}
}

// TestTapOffline_LinkType: a capture of a link type the tap cannot decode used to end "0 flows, 0 events"
// with exit 0; it fails, naming the link type, and leaves no profile.
func TestTapOffline_LinkType(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(fixturesDir, "meta.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range []uint32{147, 9999} {
		path := filepath.Join(t.TempDir(), "lt.pcap")
		binary.LittleEndian.PutUint32(b[20:], lt)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, stderr, evs := tapProfile(t, path, "--port", fixturePortString(t))
		if code != 1 || !strings.Contains(stderr, fmt.Sprintf("link type %d", lt)) || evs != nil {
			t.Fatalf("link type %d: exit %d, profile %v, stderr %q; want exit 1 naming the link type", lt, code,
				evs != nil, stderr)
		}
	}
}

// TestTapOffline_WrongPort: traffic, but none on --port: a warning names the busiest TCP ports.
func TestTapOffline_WrongPort(t *testing.T) {
	code, stderr, evs := tapProfile(t, filepath.Join(fixturesDir, "text.pcap"), "--port", "11211")
	want := "busiest TCP ports in the capture: " + fixturePortString(t) + " (89 packets)"
	if code != 0 || len(evs) != 0 || !strings.Contains(stderr, "no TCP connection to port 11211") ||
		!strings.Contains(stderr, want) || !strings.Contains(stderr, "--port") {
		t.Fatalf("text.pcap --port 11211: exit %d, %d events, stderr %q; want a warning with %q", code, len(evs),
			stderr, want)
	}
	if _, stderr, _ := tapProfile(t, filepath.Join(fixturesDir, "text.pcap"), "--port",
		fixturePortString(t)); strings.Contains(stderr, "busiest") {
		t.Fatalf("the right port warned: %q", stderr)
	}
}

// TestTapOffline_Damaged: a record claiming 300 000 bytes used to swallow the rest of the file (exit 0), and a
// file cut in a record ended without a word. Both are reported with their byte offsets and exit 4, and the
// profile holds everything readable.
func TestTapOffline_Damaged(t *testing.T) {
	port := fixturePortString(t)
	path := filepath.Join(fixturesDir, "text.pcap")
	_, _, whole := tapProfile(t, path, "--port", port)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 24; off+16 <= len(b); off += 16 + int(binary.LittleEndian.Uint32(b[off+8:])) {
		offs = append(offs, off)
	}
	dir := t.TempDir()
	big := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(big[offs[50]+8:], 300000)
	bigPath := filepath.Join(dir, "big.pcap")
	cutPath := filepath.Join(dir, "cut.pcap")
	if os.WriteFile(bigPath, big, 0o644) != nil || os.WriteFile(cutPath, b[:offs[len(offs)-1]+20], 0o644) != nil {
		t.Fatal("cannot write the damaged captures")
	}
	code, stderr, evs := tapProfile(t, bigPath, "--port", port)
	if code != exitDamaged || !strings.Contains(stderr, fmt.Sprintf("byte %d", offs[50])) ||
		!reflect.DeepEqual(comparable(evs), comparable(whole)) {
		t.Fatalf("a 300000-byte record: exit %d, %d of %d events, stderr %q", code, len(evs), len(whole), stderr)
	}
	code, stderr, evs = tapProfile(t, cutPath, "--port", port)
	if code != exitDamaged || !strings.Contains(stderr, fmt.Sprintf("byte %d", offs[len(offs)-1])) ||
		!strings.Contains(stderr, "cut") || len(evs) < len(whole)-1 {
		t.Fatalf("a cut file: exit %d, %d of %d events, stderr %q", code, len(evs), len(whole), stderr)
	}
}
