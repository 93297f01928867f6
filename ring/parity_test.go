package ring

// This file checks placement against a real twemproxy: keys written through nutcracker are looked up on each
// memcached directly, and every one must sit where Pick puts it. Runs with named servers are also kept in
// testdata/twemproxy_placement.txt (refreshed with -update) so that placement is checked without nutcracker.

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

var update = flag.Bool("update", false, "rewrite testdata/twemproxy_placement.txt from nutcracker's placements")

const goldenPath = "testdata/twemproxy_placement.txt"

// parityCase is one nutcracker pool: its hash, a weight per server, optional server names, optional hash tag.
type parityCase struct {
	hash    string
	weights []int
	names   []string // nil: twemproxy derives "127.0.0.1:PORT"
	tag     string
}

func (c parityCase) String() string {
	return fmt.Sprintf("hash=%s weights=%v names=%v tag=%q", c.hash, c.weights, c.names, c.tag)
}

// parityCases cover every hash with equal weights, both with twemproxy's default names and with given ones,
// unequal weights (1/29/30 is where float32 arithmetic matters), and hash tags.
func parityCases() []parityCase {
	named := []string{"alpha", "beta", "gamma"}
	var cases []parityCase
	for _, h := range HashNames() {
		cases = append(cases, parityCase{hash: h, weights: []int{1, 1, 1}})
		cases = append(cases, parityCase{hash: h, weights: []int{1, 1, 1}, names: named})
	}
	return append(cases,
		parityCase{hash: "fnv1a_64", weights: []int{1, 2, 3}},
		parityCase{hash: "md5", weights: []int{1, 2, 3}, names: named},
		parityCase{hash: "one_at_a_time", weights: []int{1, 29, 30}, names: []string{"s1", "s2", "s3"}},
		parityCase{hash: "murmur", weights: []int{5, 1, 1}, names: []string{"cache-a", "b", "cache-c"}},
		parityCase{hash: "fnv1a_64", weights: []int{1, 1, 1}, names: named, tag: "{}"},
		parityCase{hash: "md5", weights: []int{2, 1, 1}, tag: "{}"},
		parityCase{hash: "crc32a", weights: []int{1, 1, 1}, names: named, tag: "$$"},
	)
}

// parityKeys returns about 2000 distinct memcached keys of varied shapes: short and 250 bytes long, every
// printable byte, hash tags well and badly formed, and (where twemproxy reads char as signed, like this
// package) bytes of 0x80 and more.
func parityKeys() [][]byte {
	rng := rand.New(rand.NewPCG(42, 43))
	seen := map[string]bool{}
	var keys [][]byte
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, []byte(k))
		}
	}
	printable := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x21 + rng.IntN(0x7f-0x21))
		}
		return string(b)
	}
	for c := byte(0x21); c < 0x7f; c++ {
		add(string(c))
	}
	for i := range 400 {
		add(fmt.Sprintf("key:%d", i))
	}
	for i := range 100 {
		add(strconv.Itoa(i * 7919))
	}
	for range 500 {
		add(printable(1 + rng.IntN(60)))
	}
	for range 50 {
		add(printable(200 + rng.IntN(51))) // up to memcached's 250
	}
	for i := range 150 {
		add(fmt.Sprintf("{user%d}:profile", i))
		add(fmt.Sprintf("session:{user%d}:%d", i, rng.IntN(1000)))
	}
	for i := range 50 {
		for _, form := range []string{"{}x%d", "a{b%d", "x}{%d}", "{{%d}}", "$%d$tail", "$$%d", "%d$a$", "{%d"} {
			add(fmt.Sprintf(form, i))
		}
	}
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
		for range 200 {
			b := []byte(printable(5 + rng.IntN(30)))
			for j := range 1 + rng.IntN(4) {
				b[(j*7+rng.IntN(len(b)))%len(b)] = byte(0x80 + rng.IntN(0x80))
			}
			add(string(b))
		}
		add("caf\xc3\xa9")
		add("{\xff}x")
		add("\xe2\x82\xac")
	}
	return keys
}

// TestTwemproxyParity writes keys through nutcracker and checks that each sits on the memcached Pick names.
func TestTwemproxyParity(t *testing.T) {
	nutcracker := mctest.Require(t, "nutcracker")
	mcs := []*mctest.Server{mctest.StartMemcached(t), mctest.StartMemcached(t), mctest.StartMemcached(t)}
	keys := parityKeys()
	golden := &strings.Builder{}
	golden.WriteString("# Key placements recorded from nutcracker by `go test ./ring -run TestTwemproxyParity -update`.\n")
	golden.WriteString("# Do not edit. Lines: `case HASH TAG|- NAME:WEIGHT ...`, then `\"KEY\" NAME` (Go-quoted).\n")
	for _, c := range parityCases() {
		t.Run(c.String(), func(t *testing.T) {
			var lines []string
			for i, mc := range mcs {
				line := fmt.Sprintf("%s:%d", mc.Addr, c.weights[i])
				if c.names != nil {
					line += " " + c.names[i]
				}
				lines = append(lines, line)
			}
			var srv []Server
			for _, l := range lines {
				s, err := ParseServer(l)
				if err != nil {
					t.Fatal(err)
				}
				srv = append(srv, s)
			}
			r := mustNew(t, srv, c.hash, Options{HashTag: c.tag})

			for _, mc := range mcs {
				mcCommand(t, mc.Addr, "flush_all\r\n", "OK\r\n")
			}
			addr := startNutcracker(t, nutcracker, c, lines)
			setThrough(t, addr, keys)
			where := whereAre(t, mcs, keys)

			wrong := 0
			for i, k := range keys {
				if want := r.Pick(k); where[i] != want {
					if wrong++; wrong <= 10 {
						t.Errorf("key %q: nutcracker put it on server %d (%s), Pick says %d", k, where[i],
							lines[max(where[i], 0)], want)
					}
				}
			}
			if wrong > 0 {
				t.Fatalf("%d of %d keys placed differently from nutcracker", wrong, len(keys))
			}
			if c.names != nil {
				fmt.Fprintf(golden, "case %s %s", c.hash, cmp.Or(c.tag, "-"))
				for i, n := range c.names {
					fmt.Fprintf(golden, " %s:%d", n, c.weights[i])
				}
				golden.WriteString("\n")
				for i := 0; i < len(keys); i += 10 {
					fmt.Fprintf(golden, "%s %s\n", strconv.Quote(string(keys[i])), c.names[where[i]])
				}
			}
		})
	}
	if *update && !t.Failed() {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwemproxyPlacementGolden checks Pick against placements recorded from nutcracker, without nutcracker.
func TestTwemproxyPlacementGolden(t *testing.T) {
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("cannot read the recorded placements (make them with -update): %v", err)
	}
	var r *Ring
	var cases, checked int
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "case "):
			f := strings.Fields(line)
			if len(f) < 4 {
				t.Fatalf("%s:%d: cannot parse %q", goldenPath, n+1, line)
			}
			tag := f[2]
			if tag == "-" {
				tag = ""
			}
			var srv []Server
			for _, nw := range f[3:] {
				name, w, _ := strings.Cut(nw, ":")
				weight, err := strconv.Atoi(w)
				if err != nil {
					t.Fatalf("%s:%d: cannot parse server %q: %v", goldenPath, n+1, nw, err)
				}
				// The address does not matter: a named server's points depend on its name only.
				srv = append(srv, Server{Addr: fmt.Sprintf("192.0.2.%d:11211", len(srv)+1), Name: name, Weight: weight})
			}
			r = mustNew(t, srv, f[1], Options{HashTag: tag})
			cases++
		default:
			quoted, err := strconv.QuotedPrefix(line)
			if err != nil || r == nil {
				t.Fatalf("%s:%d: cannot parse %q: %v", goldenPath, n+1, line, err)
			}
			key, _ := strconv.Unquote(quoted)
			want := strings.TrimPrefix(line[len(quoted):], " ")
			if got := r.servers[r.Pick([]byte(key))].Name; got != want {
				t.Errorf("%s:%d: %s puts %q on %s, nutcracker put it on %s", goldenPath, n+1, r.HashName(), key,
					got, want)
			}
			checked++
		}
	}
	if cases < 12 || checked < 12*100 {
		t.Fatalf("%s has %d cases and %d keys, want at least 12 and 1200", goldenPath, cases, checked)
	}
}

// startNutcracker runs nutcracker with one pool over the server lines and returns its listen address once it
// accepts connections. It is killed by PID when the test ends.
func startNutcracker(t *testing.T, bin string, c parityCase, lines []string) string {
	t.Helper()
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	var conf strings.Builder
	fmt.Fprintf(&conf, "pool:\n  listen: %s\n  hash: %s\n  distribution: ketama\n", listen, c.hash)
	if c.tag != "" {
		fmt.Fprintf(&conf, "  hash_tag: %q\n", c.tag)
	}
	conf.WriteString("  timeout: 2000\n  auto_eject_hosts: false\n  servers:\n")
	for _, l := range lines {
		fmt.Fprintf(&conf, "    - %s\n", l)
	}
	confPath, logPath := filepath.Join(dir, "nutcracker.yml"), filepath.Join(dir, "nutcracker.log")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath, "-o", logPath, "-a", "127.0.0.1",
		"-s", strconv.Itoa(mctest.FreePort(t)), "-p", filepath.Join(dir, "nutcracker.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start nutcracker: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	showLog := func() string {
		b, _ := os.ReadFile(logPath)
		return fmt.Sprintf("config:\n%s\nlog:\n%s", conf.String(), b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nutcracker exited (%v)\n%s", err, showLog())
		default:
		}
		c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("nutcracker did not accept connections on %s within 5s: %v\n%s", listen, err, showLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dial opens a text-protocol connection with a deadline that bounds the whole exchange.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader, *bufio.Writer) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn), bufio.NewWriter(conn)
}

// mcCommand sends one command and wants exactly the reply want.
func mcCommand(t *testing.T, addr, cmd, want string) {
	t.Helper()
	_, br, bw := dial(t, addr)
	bw.WriteString(cmd)
	if err := bw.Flush(); err != nil {
		t.Fatalf("%s: cannot send %q: %v", addr, cmd, err)
	}
	got, err := br.ReadString('\n')
	if err != nil || got != want {
		t.Fatalf("%s: %q answered %q (%v), want %q", addr, cmd, got, err, want)
	}
}

// setThrough stores every key through the proxy at addr, 100 pipelined sets at a time; the value is the key.
func setThrough(t *testing.T, addr string, keys [][]byte) {
	t.Helper()
	_, br, bw := dial(t, addr)
	for start := 0; start < len(keys); start += 100 {
		batch := keys[start:min(start+100, len(keys))]
		for _, k := range batch {
			fmt.Fprintf(bw, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
		}
		if err := bw.Flush(); err != nil {
			t.Fatalf("cannot send sets to nutcracker: %v", err)
		}
		for _, k := range batch {
			line, err := br.ReadString('\n')
			if err != nil || line != "STORED\r\n" {
				t.Fatalf("set %q through nutcracker: got %q (%v), want STORED", k, line, err)
			}
		}
	}
}

// whereAre returns, for every key, the index of the memcached that holds it, or -1 when none does. A key on
// two servers fails the test.
func whereAre(t *testing.T, mcs []*mctest.Server, keys [][]byte) []int {
	t.Helper()
	index := make(map[string]int, len(keys))
	where := make([]int, len(keys))
	for i, k := range keys {
		index[string(k)] = i
		where[i] = -1
	}
	for s, mc := range mcs {
		_, br, bw := dial(t, mc.Addr)
		for start := 0; start < len(keys); {
			// One get of up to 100 keys and about 2 KB, well within memcached's limits for a command line.
			bw.WriteString("get")
			for count, n := 0, 0; start < len(keys) && count < 100 && n < 2048; start, count = start+1, count+1 {
				bw.WriteString(" ")
				bw.Write(keys[start])
				n += 1 + len(keys[start])
			}
			bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				t.Fatalf("%s: cannot send get: %v", mc.Addr, err)
			}
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					t.Fatalf("%s: cannot read get reply: %v", mc.Addr, err)
				}
				if string(line) == "END\r\n" {
					break
				}
				// VALUE <key> <flags> <bytes>
				f := bytes.Fields(line)
				if len(f) != 4 || string(f[0]) != "VALUE" {
					t.Fatalf("%s: unexpected get reply %q", mc.Addr, line)
				}
				n, err := strconv.Atoi(string(f[3]))
				if err != nil {
					t.Fatalf("%s: bad length in %q", mc.Addr, line)
				}
				data := make([]byte, n+2)
				if _, err := io.ReadFull(br, data); err != nil {
					t.Fatalf("%s: cannot read value: %v", mc.Addr, err)
				}
				i, ok := index[string(f[1])]
				if !ok || !bytes.Equal(data[:n], f[1]) {
					t.Fatalf("%s: got key %q with value %q, which was not set", mc.Addr, f[1], data[:n])
				}
				if where[i] >= 0 {
					t.Fatalf("key %q is on servers %d and %d", f[1], where[i], s)
				}
				where[i] = s
			}
		}
	}
	for i, w := range where {
		if w < 0 {
			t.Fatalf("key %q is on no server after a STORED set through nutcracker", keys[i])
		}
	}
	return where
}
