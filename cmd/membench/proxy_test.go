// Tests of the proxy subcommand: the argv → configs.Proxy table (file values, flags that override them, errors
// that name the key to fix), and an end-to-end run of the built binary with SIGHUP rotation and SIGTERM.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
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

// pxConfigFile writes a proxy config file into a temporary directory.
func pxConfigFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proxy.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const pxFileBody = `
listen = "127.0.0.1:20001"
upstream = "127.0.0.1:20002"
record = "file.mbp"
host_label = "from-file"
sample_rate = 0.5
max_connections = 100
idle_timeout = "30s"
metrics_listen = "127.0.0.1:20003"
`

func TestProxyConfig_Success(t *testing.T) {
	file := pxConfigFile(t, pxFileBody)
	fromFile := func(c *configs.Proxy) {
		c.Listen, c.Upstream, c.Record, c.HostLabel = "127.0.0.1:20001", "127.0.0.1:20002", "file.mbp", "from-file"
		c.SampleRate, c.MaxConnections, c.IdleTimeout = 0.5, 100, configs.Duration(30*time.Second)
		c.MetricsListen = "127.0.0.1:20003"
	}
	f := func(args []string, edits ...func(*configs.Proxy)) {
		t.Helper()
		got, err := proxyConfig(args, io.Discard)
		if err != nil {
			t.Fatalf("proxyConfig(%q): %v", args, err)
		}
		want := configs.DefaultProxy()
		for _, e := range edits {
			e(&want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("proxyConfig(%q)\n got %+v\nwant %+v", args, got, want)
		}
	}
	f(nil)
	f([]string{"--config", file}, fromFile)
	f([]string{"--config=" + file}, fromFile)
	// Flags override the file, wherever they stand and however they are spelled.
	f([]string{"--config", file, "--listen", "127.0.0.1:30001"}, fromFile,
		func(c *configs.Proxy) { c.Listen = "127.0.0.1:30001" })
	f([]string{"--listen=127.0.0.1:30001", "--config", file}, fromFile,
		func(c *configs.Proxy) { c.Listen = "127.0.0.1:30001" })
	f([]string{"-config", file, "--sample-rate=0.25", "--max-connections", "7", "-idle-timeout=1m"}, fromFile,
		func(c *configs.Proxy) {
			c.SampleRate, c.MaxConnections, c.IdleTimeout = 0.25, 7, configs.Duration(time.Minute)
		})
	// An empty value is a value: it turns /metrics off, and namespaces.
	f([]string{"--config", file, "--metrics-listen", ""}, fromFile, func(c *configs.Proxy) { c.MetricsListen = "" })
	f([]string{"--metrics-listen="}, func(c *configs.Proxy) { c.MetricsListen = "" })
	f([]string{"--namespace-delimiter", ""}, func(c *configs.Proxy) { c.NamespaceDelimiter = "" })
	// Every flag.
	f([]string{"--listen", "127.0.0.1:1", "--unix-socket", "/tmp/mb.sock", "--upstream=10.0.0.5:11211",
		"--record", "x.mbp", "--salt-file", "salt.hex", "--host-label=h1", "--sample-rate", "1",
		"--namespace-delimiter", "/", "--metrics-listen", "127.0.0.1:2", "--event-loops", "3",
		"--max-connections=9", "--idle-timeout", "5s", "--drain-timeout", "2s", "--connect-timeout=3s",
		"--flush-interval", "250ms", "--max-item-size", "65536", "--queue-size", "10"},
		func(c *configs.Proxy) {
			c.Listen, c.UnixSocket, c.Upstream = "127.0.0.1:1", "/tmp/mb.sock", "10.0.0.5:11211"
			c.Record, c.SaltFile, c.HostLabel, c.SampleRate = "x.mbp", "salt.hex", "h1", 1
			c.NamespaceDelimiter, c.MetricsListen, c.EventLoops, c.MaxConnections = "/", "127.0.0.1:2", 3, 9
			c.IdleTimeout, c.DrainTimeout = configs.Duration(5*time.Second), configs.Duration(2*time.Second)
			c.ConnectTimeout, c.FlushInterval = configs.Duration(3*time.Second), configs.Duration(250*time.Millisecond)
			c.MaxItemSize, c.QueueSize = 65536, 10
		})
}

func TestProxyConfig_Failure(t *testing.T) {
	bad := func(body string) string { return pxConfigFile(t, body) }
	f := func(args []string, wantUsage bool, wantIn ...string) {
		t.Helper()
		_, err := proxyConfig(args, io.Discard)
		if err == nil {
			t.Fatalf("proxyConfig(%q) succeeded", args)
		}
		if errors.Is(err, errUsage) != wantUsage {
			t.Fatalf("proxyConfig(%q): usage error %v, want %v: %v", args, !wantUsage, wantUsage, err)
		}
		for _, w := range wantIn {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("proxyConfig(%q): error %q does not mention %q", args, err, w)
			}
		}
	}
	f([]string{"--nope"}, true, "unknown flag --nope")
	f([]string{"--listen"}, true, "--listen needs a value")
	f([]string{"stray"}, true, `unexpected argument "stray"`)
	f([]string{"--max-connections", "many"}, true, "max-connections")
	f([]string{"--idle-timeout", "5"}, true, "idle-timeout")
	// Invalid values name the config key to fix.
	f([]string{"--sample-rate", "2"}, false, "sample_rate")
	f([]string{"--sample-rate=0"}, false, "sample_rate")
	f([]string{"--listen", "nocolon"}, false, "listen", "nocolon")
	f([]string{"--upstream", ""}, false, "upstream")
	f([]string{"--metrics-listen", "x"}, false, "metrics_listen")
	f([]string{"--max-connections", "0"}, false, "max_connections")
	f([]string{"--idle-timeout", "-1s"}, false, "idle_timeout")
	f([]string{"--drain-timeout=0s"}, false, "drain_timeout")
	f([]string{"--connect-timeout", "0s"}, false, "connect_timeout")
	f([]string{"--flush-interval", "-1s"}, false, "flush_interval")
	f([]string{"--namespace-delimiter", "::"}, false, "namespace_delimiter")
	f([]string{"--max-item-size", "-1"}, false, "max_item_size")
	f([]string{"--request-timeout", "-1s"}, false, "request_timeout")
	f([]string{"--queue-size", "0"}, false, "queue_size")
	f([]string{"--event-loops", "-1"}, false, "event_loops")
	// Config files: unknown keys, bad values and types name the file and the key; a flag can fix a bad value.
	f([]string{"--config", bad(`upstrem = "127.0.0.1:1"`)}, false, "proxy.toml", `unknown key "upstrem"`)
	f([]string{"--config", bad(`sample_rate = 3.0`)}, false, "proxy.toml", "sample_rate")
	f([]string{"--config", bad(`max_connections = "lots"`)}, false, "proxy.toml", "max_connections")
	f([]string{"--config", bad(`idle_timeout = 5`)}, false, "proxy.toml", "idle_timeout")
	f([]string{"--config", filepath.Join(t.TempDir(), "missing.toml")}, false, "missing.toml")
	if _, err := proxyConfig([]string{"--config", bad(`sample_rate = 3.0`), "--sample-rate", "1"}, io.Discard); err != nil {
		t.Fatalf("a flag did not override a bad file value: %v", err)
	}
}

// pxSyncBuffer collects a child's output while the test reads it.
type pxSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *pxSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *pxSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProxyEndToEnd builds membench, runs `membench proxy --record`, sends traffic, rotates the profile with
// SIGHUP and stops with SIGTERM: the summary counts every event, and both profiles are readable and private.
func TestProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "membench")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mc := mctest.StartMemcached(t)
	salt := filepath.Join(dir, "salt.hex")
	if err := profile.WriteSaltFile(salt, profile.GenerateSalt()); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	rec := filepath.Join(dir, "out.mbp")
	cmd := exec.Command(bin, "proxy", "--listen", listen, "--upstream="+mc.Addr, "--record", rec,
		"--salt-file", salt, "--metrics-listen", "", "--flush-interval=100ms", "--drain-timeout", "2s")
	var stdout, stderr pxSyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID; a no-op once it has exited
		<-exited
	})

	// Wait until the proxy listens (or died).
	var c net.Conn
	for deadline := time.Now().Add(20 * time.Second); c == nil; {
		var err error
		if c, err = net.DialTimeout("tcp", listen, time.Second); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("membench proxy exited: %v\n%s", exitErr, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("membench proxy does not listen on %s: %v\n%s", listen, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// ops runs n set/get pairs with a multi-get of two keys: 4 events each.
	ops := func(prefix string, n int) int {
		t.Helper()
		for i := range n {
			k := prefix + strconv.Itoa(i)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "set "+k+" 0 0 1\r\nv\r\nget "+k+" "+k+"-miss\r\ndelete "+k+"\r\n"); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"STORED", "VALUE " + k + " 0 1", "v", "END", "DELETED"} {
				l, err := r.ReadString('\n')
				if err != nil || l != want+"\r\n" {
					t.Fatalf("got %q (%v), want %q", l, err, want)
				}
			}
		}
		return 4 * n
	}
	first := ops("before:", 10)

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var rotated string
	for deadline := time.Now().Add(10 * time.Second); rotated == ""; {
		m, _ := filepath.Glob(filepath.Join(dir, "out-*.mbp"))
		if len(m) == 1 && strings.Contains(stderr.String(), "profile rotated") {
			rotated = m[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotated profile after SIGHUP (files %v)\n%s", m, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !regexp.MustCompile(`out-\d{8}T\d{6}Z(-\d+)?\.mbp$`).MatchString(rotated) {
		t.Fatalf("rotated profile %s is not timestamped", rotated)
	}
	second := ops("after:", 7)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("membench proxy exited with %v\n%s", exitErr, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("membench proxy did not stop after SIGTERM\n%s", stderr.String())
	}
	summary := regexp.MustCompile(`membench proxy: (\d+) events recorded, (\d+) dropped, (\d+) bytes; profile: (.*)\n`).
		FindStringSubmatch(stdout.String())
	if summary == nil {
		t.Fatalf("no summary in stdout %q", stdout.String())
	}
	if summary[1] != strconv.Itoa(first+second) || summary[2] != "0" || summary[3] == "0" ||
		summary[4] != rec+", "+rotated {
		t.Fatalf("summary %q, want %d events, 0 dropped, some bytes, profiles %s, %s", summary[0], first+second,
			rec, rotated)
	}
	// The first profile holds what came before SIGHUP, the rotated one what came after.
	for _, p := range []struct {
		path string
		want int
	}{{rec, first}, {rotated, second}} {
		st, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p.path, st.Mode().Perm())
		}
		rd, err := profile.Open(p.path, profile.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ev profile.Event
		n := 0
		for rd.Next(&ev) {
			n++
		}
		if err := rd.Err(); err != nil || rd.TruncatedBlocks() != 0 {
			t.Fatalf("%s: %v (truncated blocks: %d)", p.path, err, rd.TruncatedBlocks())
		}
		if h := rd.Header(); h.Mode != "proxy" {
			t.Errorf("%s: header mode %q", p.path, h.Mode)
		}
		rd.Close()
		if n != p.want {
			t.Errorf("%s holds %d events, want %d", p.path, n, p.want)
		}
	}
}

// TestProxyCheck: --check validates the config file and flags like nutcracker -t, starts nothing and creates
// nothing; an invalid config exits 1 naming the key.
func TestProxyCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pool.toml")
	if err := os.WriteFile(good, []byte("listen = \"127.0.0.1:1\"\n[pool]\nservers = [\"127.0.0.1:2:1\", \"127.0.0.1:3:1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "proxy", "--config", good, "--check", "--record", filepath.Join(dir, "p.mbp"))
	if code != 0 || !strings.Contains(out, "configuration is valid (pool of 2 servers") {
		t.Fatalf("--check of a good config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "p.mbp")); !os.IsNotExist(err) {
		t.Errorf("--check created the profile (%v)", err)
	}
	code, _, errOut = runCLI(t, "proxy", "--config", good, "--check", "--max-connections", "0")
	if code != 1 || !strings.Contains(errOut, "max_connections") {
		t.Fatalf("--check of a bad value: exit %d, stderr %q", code, errOut)
	}
}
