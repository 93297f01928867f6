// Shared fixtures for the pool-mode tests: three (or more) memcached servers, a proxy in pool mode in front of
// them, twemproxy (nutcracker) in front of the same servers, and direct reads of a server to learn where a key
// landed. Every network wait has a deadline; nothing here measures time.
package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/ring"
)

// poolServers starts n memcached servers.
func poolServers(t testing.TB, n int) []*mctest.Server {
	t.Helper()
	out := make([]*mctest.Server, n)
	for i := range out {
		out[i] = mctest.StartMemcached(t, "-m", "64")
	}
	return out
}

// poolLines returns twemproxy server lines "127.0.0.1:port:weight" for servers (weights default to 1).
func poolLines(servers []*mctest.Server, weights ...int) []string {
	lines := make([]string, len(servers))
	for i, s := range servers {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		lines[i] = s.Addr + ":" + strconv.Itoa(w)
	}
	return lines
}

// poolTestConfig returns a proxy config in pool mode over lines, on a free loopback port, with short timeouts
// and two event loops (so shared upstream connections are exercised from more than one loop).
func poolTestConfig(t testing.TB, hash string, lines []string) configs.Proxy {
	t.Helper()
	cfg := configs.DefaultProxy()
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	cfg.MetricsListen = ""
	cfg.EventLoops = 2
	cfg.DrainTimeout = configs.Duration(2 * time.Second)
	cfg.ConnectTimeout = configs.Duration(2 * time.Second)
	cfg.Pool.Servers = lines
	cfg.Pool.Hash = hash
	cfg.Pool.Timeout = configs.Duration(5 * time.Second)
	return cfg
}

// poolRing builds the ring the proxy should route by, for checking placement from the test.
func poolRing(t testing.TB, cfg configs.Pool) *ring.Ring {
	t.Helper()
	servers, err := cfg.RingServers()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ring.New(servers, cfg.Hash, ring.Options{HashTag: cfg.HashTag})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// poolStart starts a pool-mode proxy and returns it with its address.
func poolStart(t testing.TB, cfg configs.Proxy, opts proxy.Options) *proxy.Server {
	t.Helper()
	return startProxy(t, cfg, opts)
}

// poolDirect is a plain text connection to one memcached, for checking what landed where.
type poolDirect struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func poolDial(t testing.TB, addr string) *poolDirect {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &poolDirect{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// has reports, for each key, whether the server holds it (one pipelined multi-get per 100 keys).
func (d *poolDirect) has(keys []string) map[string]bool {
	d.t.Helper()
	out := map[string]bool{}
	for start := 0; start < len(keys); start += 100 {
		end := min(start+100, len(keys))
		_ = d.c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := fmt.Fprintf(d.c, "get %s\r\n", strings.Join(keys[start:end], " ")); err != nil {
			d.t.Fatalf("get: %v", err)
		}
		for {
			l, err := d.r.ReadString('\n')
			if err != nil {
				d.t.Fatalf("reading get answer: %v", err)
			}
			l = strings.TrimSuffix(l, "\r\n")
			if l == "END" {
				break
			}
			f := strings.Fields(l)
			if len(f) != 4 || f[0] != "VALUE" {
				d.t.Fatalf("unexpected get answer line %q", l)
			}
			n, _ := strconv.Atoi(f[3])
			if _, err := d.r.Discard(n + 2); err != nil {
				d.t.Fatalf("reading value: %v", err)
			}
			out[f[1]] = true
		}
	}
	return out
}

// poolWhere returns, per key, the index of the one server among servers that holds it (-1: none). A key on two
// servers fails the test.
func poolWhere(t testing.TB, servers []*mctest.Server, keys []string) map[string]int {
	t.Helper()
	where := map[string]int{}
	for _, k := range keys {
		where[k] = -1
	}
	for i, s := range servers {
		d := poolDial(t, s.Addr)
		for k := range d.has(keys) {
			if where[k] >= 0 {
				t.Fatalf("key %q is on servers %d and %d", k, where[k], i)
			}
			where[k] = i
		}
		d.c.Close()
	}
	return where
}

// poolFlush empties every server.
func poolFlush(t testing.TB, servers []*mctest.Server) {
	t.Helper()
	for _, s := range servers {
		tc := dialText(t, s.Addr)
		tc.roundTrip("flush_all\r\n", "OK")
		tc.c.Close()
	}
}

// poolKeys returns n distinct keys of varied shapes.
func poolKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		switch i % 4 {
		case 0:
			keys[i] = fmt.Sprintf("%s:%d", prefix, i)
		case 1:
			keys[i] = fmt.Sprintf("user:%d:%s:profile", i*7919, prefix)
		case 2:
			keys[i] = fmt.Sprintf("%s_%x_session", prefix, i*104729)
		default:
			keys[i] = fmt.Sprintf("k%d%s%s", i, prefix, strings.Repeat("x", i%40))
		}
	}
	return keys
}

// poolSetAll writes every key (value = key) through addr in pipelined batches of plain sets (twemproxy knows no
// meta commands), reading every STORED, so all writes are done by the time it returns.
func poolSetAll(t testing.TB, addr string, keys []string) {
	t.Helper()
	tc := dialText(t, addr)
	defer tc.c.Close()
	for start := 0; start < len(keys); start += 200 {
		end := min(start+200, len(keys))
		var b strings.Builder
		for _, k := range keys[start:end] {
			fmt.Fprintf(&b, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
		}
		tc.send(b.String())
		for range end - start {
			tc.expect("STORED")
		}
	}
}

// nutcracker is a twemproxy process started by a test.
type nutcracker struct {
	Addr string
	cmd  *exec.Cmd
	once sync.Once
}

// startNutcracker runs twemproxy in front of lines with the given hash (ketama, no auto-eject) on free ports,
// waits until it accepts connections, and kills it by PID when the test ends.
func startNutcracker(t testing.TB, hash string, lines []string) *nutcracker {
	t.Helper()
	bin := mctest.Require(t, "nutcracker")
	dir := t.TempDir()
	port := mctest.FreePort(t)
	statsPort := mctest.FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "pool:\n  listen: 127.0.0.1:%d\n  hash: %s\n  distribution: ketama\n", port, hash)
	b.WriteString("  auto_eject_hosts: false\n  timeout: 2000\n  preconnect: true\n  servers:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "    - %s\n", l)
	}
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1",
		"-o", filepath.Join(dir, "nutcracker.log"), "-p", filepath.Join(dir, "nutcracker.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start nutcracker: %v", err)
	}
	n := &nutcracker{Addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	t.Cleanup(n.stop)
	deadline := time.Now().Add(ioTimeout)
	for {
		c, err := net.DialTimeout("tcp", n.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "nutcracker.log"))
			t.Fatalf("nutcracker on %s did not accept connections within %s: %v\nconfig:\n%s\nlog:\n%s",
				n.Addr, ioTimeout, err, b.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills nutcracker by PID and waits for it.
func (n *nutcracker) stop() {
	n.once.Do(func() {
		_ = n.cmd.Process.Kill()
		_, _ = n.cmd.Process.Wait()
	})
}
