package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
	"github.com/membench/membench/replay"
	"github.com/membench/membench/replay/workload"
)

func TestReplayConfig_Success(t *testing.T) {
	f := func(args []string, edit func(*configs.Replay), wantJSON bool) {
		t.Helper()
		got, ra, err := replayConfig(args, io.Discard)
		if err != nil {
			t.Fatalf("replayConfig(%q): %v", args, err)
		}
		want := configs.DefaultReplay()
		edit(&want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("replayConfig(%q)\n got %+v\nwant %+v", args, got, want)
		}
		if ra.json != wantJSON {
			t.Fatalf("replayConfig(%q): json = %v", args, ra.json)
		}
	}
	f([]string{"--profile", "p.mbp", "--target", "127.0.0.1:11211"}, func(c *configs.Replay) {
		c.Profile, c.Targets = "p.mbp", []string{"127.0.0.1:11211"}
	}, false)
	f([]string{"--profile=p.mbp", "--target", "a:1, b:2", "--speed", "max", "--connections", "8", "--pipeline", "32",
		"--protocol", "binary", "--loop", "forever", "--json"}, func(c *configs.Replay) {
		c.Profile, c.Targets, c.Speed, c.Connections, c.Pipeline = "p.mbp", []string{"a:1", "b:2"}, "max", 8, 32
		c.Protocol, c.Loop = "binary", "forever"
	}, true)
	// A preset implies synthetic mode.
	f([]string{"--workload", "etc", "--target", "h:1", "--duration", "10s", "--rate", "5000", "--seed", "7",
		"--keys-scale", "0.5", "--arrivals", "uniform"}, func(c *configs.Replay) {
		c.Mode, c.Workload, c.Targets, c.Duration, c.Rate = configs.ModeSynthetic, "etc", []string{"h:1"},
			configs.Duration(10*time.Second), 5000
		c.Seed, c.KeysScale, c.Arrivals = 7, 0.5, configs.ArrivalsUniform
	}, false)
	f([]string{"--mode", "synthetic", "--profile", "p.mbp", "--target", "h:1", "--ops", "100", "--warmup-target",
		"m:1", "--shard", "2/3", "--max-error-ratio", "0.5", "--timeout", "3s", "--metrics-push", "http://vm:8428/api/v1/import/prometheus"},
		func(c *configs.Replay) {
			c.Mode, c.Profile, c.Targets, c.Ops = configs.ModeSynthetic, "p.mbp", []string{"h:1"}, 100
			c.Warmup, c.WarmupTargets, c.Shard, c.MaxErrorRatio = true, []string{"m:1"}, "2/3", 0.5
			c.Timeout, c.MetricsPush = configs.Duration(3*time.Second), "http://vm:8428/api/v1/import/prometheus"
		}, false)
	// Flags win over the config file.
	dir := t.TempDir()
	cf := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(cf, []byte("profile = \"x.mbp\"\ntargets = [\"h:1\"]\npipeline = 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f([]string{"--config", cf, "--pipeline", "9"}, func(c *configs.Replay) {
		c.Profile, c.Targets, c.Pipeline = "x.mbp", []string{"h:1"}, 9
	}, false)
}

func TestReplayConfig_Failure(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		_, _, err := replayConfig(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("replayConfig(%q) = %v, want an error containing %q", args, err, want)
		}
	}
	f([]string{"--target", "h:1"}, "--profile")
	f([]string{"--profile", "p"}, "--target")
	f([]string{"--profile", "p", "--target", "h:1", "--speed", "fast"}, "speed")
	f([]string{"--profile", "p", "--target", "h:1", "--loop", "0"}, "loop")
	f([]string{"--profile", "p", "--target", "h:1", "--protocol", "udp"}, "protocol")
	f([]string{"--profile", "p", "--target", "h:1", "--shard", "3/3"}, "shard")
	f([]string{"--workload", "etc", "--target", "h:1"}, "--duration")
	f([]string{"--workload", "etc", "--profile", "p", "--target", "h:1", "--ops", "1"}, "exactly one")
	f([]string{"--profile", "p", "--target", "nohost"}, "targets[0]")
	f([]string{"--profile", "p", "--target", "h:1", "stray"}, "unexpected argument")
	f([]string{"--profile", "p", "--target", "h:1", "--bogus"}, "unknown flag")
}

// buildMembench builds the binary once per test that needs it.
func buildMembench(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "membench")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// rpProxy runs `membench proxy --record` in front of upstream until stop, which ends it with SIGTERM so the
// profile is complete.
func rpProxy(t *testing.T, bin, upstream, record, salt string) (addr string, stop func()) {
	t.Helper()
	addr = "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	cmd := exec.Command(bin, "proxy", "--listen", addr, "--upstream", upstream, "--record", record,
		"--salt-file", salt, "--metrics-listen", "", "--flush-interval", "100ms", "--drain-timeout", "2s")
	var stderr bytes.Buffer
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			mu.Lock()
			t.Fatalf("membench proxy exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("membench proxy does not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				mu.Lock()
				t.Errorf("membench proxy: %v\n%s", err, stderr.String())
				mu.Unlock()
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("membench proxy did not stop within 20s of SIGTERM")
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// rpSession is a scripted client: one text, one meta and one binary connection, each on its own keys (so that
// any interleaving of the connections keeps every key's history), with Zipf-like key popularity and a mix of
// reads, writes, noreply and quiet requests. It returns the number of requests sent.
func rpSession(t *testing.T, addr string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, proto := range []string{"text", "meta", "binary"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rpClient(addr, proto, n); err != nil {
				errs <- fmt.Errorf("%s client: %w", proto, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// rpConn is one scripted connection.
type rpConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (c *rpConn) line() (string, error) {
	l, err := c.r.ReadString('\n')
	return strings.TrimSuffix(l, "\r\n"), err
}

// untilLine reads lines until one equal to end, skipping a data line after each VALUE/VA line.
func (c *rpConn) untilLine(end string) error {
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		if strings.HasPrefix(l, "VALUE ") || strings.HasPrefix(l, "VA ") {
			if _, err := c.line(); err != nil {
				return err
			}
			continue
		}
		if l == end {
			return nil
		}
		if strings.HasPrefix(l, "CLIENT_ERROR") || strings.HasPrefix(l, "SERVER_ERROR") || l == "ERROR" {
			return fmt.Errorf("unexpected %q", l)
		}
	}
}

func rpClient(addr, proto string, n int) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	c := &rpConn{c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	r := workload.NewRand(uint64(len(proto)) * 7919)
	zipf := workload.NewZipf(1500, 0.9)
	keySize := func(i uint64) int { return 5 + int(workload.Mix64(i)%50) }
	key := func(i uint64) string {
		k := fmt.Sprintf("%s-%d-", proto, i)
		for len(k) < keySize(i) {
			k += "k"
		}
		return k
	}
	// Each key keeps one value size, as most caches' keys do (appends go to log keys that are never read).
	value := func(k string) string {
		return strings.Repeat("v", int(workload.Mix64(uint64(len(k))*31+uint64(k[len(k)-1])+uint64(k[0]))%2000))
	}
	logKey := func(i uint64) string { return fmt.Sprintf("%s-log-%d", proto, i%50) }
	counter := func(i uint64) string { return fmt.Sprintf("%s-counter-%d", proto, i%10) }
	for i := 0; i < n; i++ {
		k := key(zipf.Next(r))
		p := r.Float64()
		var err error
		switch proto {
		case "text":
			switch {
			case p < 0.5:
				fmt.Fprintf(c.w, "get %s\r\n", k)
				c.w.Flush()
				err = c.untilLine("END")
			case p < 0.55:
				// A multi-key get, as client libraries send for a page's keys.
				fmt.Fprintf(c.w, "get %s %s %s\r\n", k, key(zipf.Next(r)), key(zipf.Next(r)))
				c.w.Flush()
				err = c.untilLine("END")
			case p < 0.62:
				fmt.Fprintf(c.w, "gat 300 %s\r\n", k)
				c.w.Flush()
				err = c.untilLine("END")
			case p < 0.8:
				v := value(k)
				fmt.Fprintf(c.w, "set %s 5 600 %d\r\n%s\r\n", k, len(v), v)
				c.w.Flush()
				err = c.untilLine("STORED")
			case p < 0.85:
				v := value(k)
				fmt.Fprintf(c.w, "set %s 0 0 %d noreply\r\n%s\r\n", k, len(v), v)
			case p < 0.88:
				v := value(k)
				fmt.Fprintf(c.w, "add %s 0 0 %d\r\n%s\r\n", k, len(v), v)
				c.w.Flush()
				var l string
				if l, err = c.line(); err == nil && l != "STORED" && l != "NOT_STORED" {
					err = fmt.Errorf("add: %q", l)
				}
			case p < 0.91:
				fmt.Fprintf(c.w, "delete %s\r\n", k)
				c.w.Flush()
				_, err = c.line()
			case p < 0.93:
				fmt.Fprintf(c.w, "append %s 0 0 4\r\nmore\r\n", logKey(uint64(i)))
				c.w.Flush()
				_, err = c.line()
			case p < 0.96:
				fmt.Fprintf(c.w, "touch %s 100\r\n", k)
				c.w.Flush()
				_, err = c.line()
			case p < 0.98:
				fmt.Fprintf(c.w, "set %s 0 0 2\r\n10\r\n", counter(uint64(i)))
				c.w.Flush()
				err = c.untilLine("STORED")
			default:
				fmt.Fprintf(c.w, "incr %s 1\r\n", counter(uint64(i)))
				c.w.Flush()
				_, err = c.line()
			}
		case "meta":
			switch {
			case p < 0.5:
				fmt.Fprintf(c.w, "mg %s v f\r\n", k)
				c.w.Flush()
				var l string
				if l, err = c.line(); err == nil && strings.HasPrefix(l, "VA ") {
					_, err = c.line()
				}
			case p < 0.65:
				// A quiet batch: misses are silent, mn ends it; opaque tokens say which request a hit answers.
				k2 := key(zipf.Next(r))
				fmt.Fprintf(c.w, "mg %s v q O1\r\nmg %s v q O2\r\nmn\r\n", k, k2)
				c.w.Flush()
				err = c.untilLine("MN")
			case p < 0.85:
				v := value(k)
				fmt.Fprintf(c.w, "ms %s %d T600 F3\r\n%s\r\n", k, len(v), v)
				c.w.Flush()
				err = c.untilLine("HD")
			case p < 0.9:
				v := value(k)
				fmt.Fprintf(c.w, "ms %s %d q O3\r\n%s\r\nmn\r\n", k, len(v), v)
				c.w.Flush()
				err = c.untilLine("MN")
			case p < 0.94:
				// Compare and swap in meta: mg with c (recorded as a gets), then ms with C (a cas).
				fmt.Fprintf(c.w, "mg %s c v\r\n", k)
				c.w.Flush()
				var l string
				if l, err = c.line(); err != nil || !strings.HasPrefix(l, "VA ") {
					break
				}
				if _, err = c.line(); err != nil {
					break
				}
				var size int
				var cas string
				if _, err = fmt.Sscanf(l, "VA %d c%s", &size, &cas); err != nil {
					break
				}
				v := value(k)
				fmt.Fprintf(c.w, "ms %s %d C%s\r\n%s\r\n", k, len(v), cas, v)
				c.w.Flush()
				_, err = c.line()
			case p < 0.96:
				fmt.Fprintf(c.w, "ms %s 4 MA\r\nmore\r\n", logKey(uint64(i))) // append mode
				c.w.Flush()
				_, err = c.line()
			default:
				fmt.Fprintf(c.w, "md %s\r\n", k)
				c.w.Flush()
				_, err = c.line()
			}
		case "binary":
			switch {
			case p < 0.5:
				err = rpBinary(c, 0x00, k, nil, 0, 0, 0x00)
			case p < 0.65:
				// getq: a miss is silent; noop ends the batch.
				if err = rpBinaryWrite(c, 0x09, k, nil, 0, 0, 1); err == nil {
					err = rpBinary(c, 0x0a, "", nil, 0, 0, 0x0a)
				}
			case p < 0.85:
				err = rpBinary(c, 0x01, k, []byte(value(k)), 7, 600, 0x01)
			case p < 0.9:
				if err = rpBinaryWrite(c, 0x11, k, []byte(value(k)), 0, 0, 1); err == nil {
					err = rpBinary(c, 0x0a, "", nil, 0, 0, 0x0a)
				}
			default:
				err = rpBinary(c, 0x04, k, nil, 0, 0, 0x04)
			}
		}
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
	}
	return c.w.Flush()
}

// rpBinaryWrite writes one binary request.
func rpBinaryWrite(c *rpConn, op byte, key string, value []byte, flags, exp uint32, opaque uint32) error {
	var ext []byte
	if op == 0x01 || op == 0x11 {
		ext = make([]byte, 8)
		binary.BigEndian.PutUint32(ext, flags)
		binary.BigEndian.PutUint32(ext[4:], exp)
	}
	h := make([]byte, 24)
	h[0], h[1] = 0x80, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(ext))
	binary.BigEndian.PutUint32(h[8:], uint32(len(ext)+len(key)+len(value)))
	binary.BigEndian.PutUint32(h[12:], opaque)
	c.w.Write(h)
	c.w.Write(ext)
	c.w.WriteString(key)
	c.w.Write(value)
	return nil
}

// rpBinary writes a request and reads responses until the one whose opcode is until.
func rpBinary(c *rpConn, op byte, key string, value []byte, flags, exp uint32, until byte) error {
	if err := rpBinaryWrite(c, op, key, value, flags, exp, 2); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	for {
		h := make([]byte, 24)
		if _, err := io.ReadFull(c.r, h); err != nil {
			return err
		}
		body := make([]byte, binary.BigEndian.Uint32(h[8:]))
		if _, err := io.ReadFull(c.r, body); err != nil {
			return err
		}
		if h[1] == until {
			return nil
		}
	}
}

func summarizeProfile(t *testing.T, path string) *analyze.Summary {
	t.Helper()
	r, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := analyze.New(analyze.Options{})
	var ev profile.Event
	for r.Next(&ev) {
		a.Add(&ev)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return a.Summary()
}

// TestReplay_TraceFidelity is acceptance test 1: a scripted session (text, meta with quiet batches, binary with
// quiet opcodes) is recorded by `membench proxy --record` in front of memcached; the profile is replayed in trace
// mode through a second recording proxy in front of a fresh memcached, with the warmup sent straight to that
// memcached. The second profile has the same command mix, the same key- and value-size distributions and the
// same number of unique keys and multi-key gets, and its hit ratio is within 0.5 points of the first.
//
// It then runs acceptance test 2 on the recorded profile: `membench synth` fitted to it keeps the command mix,
// the size distributions, the popularity and the miss-ratio curve.
func TestReplay_TraceFidelity(t *testing.T) {
	bin := buildMembench(t)
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt.hex")
	if err := profile.WriteSaltFile(salt, profile.GenerateSalt()); err != nil {
		t.Fatal(err)
	}
	mc1 := mctest.StartMemcached(t, "-m", "64")
	a := filepath.Join(dir, "a.mbp")
	p1, stop1 := rpProxy(t, bin, mc1.Addr, a, salt)
	rpSession(t, p1, 4000)
	stop1()

	mc2 := mctest.StartMemcached(t, "-m", "64")
	b := filepath.Join(dir, "b.mbp")
	p2, stop2 := rpProxy(t, bin, mc2.Addr, b, salt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rj := filepath.Join(dir, "replay.json")
	out, err := exec.CommandContext(ctx, bin, "replay", "--profile", a, "--target", p2, "--speed", "max",
		"--warmup-target", mc2.Addr, "--max-error-ratio", "0", "-o", rj).CombinedOutput()
	if err != nil {
		t.Fatalf("membench replay: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	stop2()

	sa, sb := summarizeProfile(t, a), summarizeProfile(t, b)
	t.Logf("recorded: %d events, %d keys, hit ratio %.4f, commands %v, protocols %v", sa.Events, sa.UniqueKeys,
		sa.HitRatio, sa.Commands, sa.Protocols)
	t.Logf("replayed: %d events, %d keys, hit ratio %.4f, commands %v, protocols %v", sb.Events, sb.UniqueKeys,
		sb.HitRatio, sb.Commands, sb.Protocols)
	if !reflect.DeepEqual(sa.Commands, sb.Commands) {
		t.Errorf("command mix differs:\n%v\n%v", sa.Commands, sb.Commands)
	}
	// The meta session's mg with c and ms with C are recorded as gets and cas (only that session sends those).
	if sa.Commands["gets"] == 0 || sa.Commands["cas"] == 0 || sa.Statuses["exists"] != sb.Statuses["exists"] {
		t.Errorf("gets %d, cas %d recorded; %d cas exists, replayed %d", sa.Commands["gets"], sa.Commands["cas"],
			sa.Statuses["exists"], sb.Statuses["exists"])
	}
	if !reflect.DeepEqual(sa.Protocols, sb.Protocols) {
		t.Errorf("protocols differ:\n%v\n%v", sa.Protocols, sb.Protocols)
	}
	if !reflect.DeepEqual(sa.KeySize.Hist, sb.KeySize.Hist) {
		t.Errorf("key size distributions differ")
	}
	if !reflect.DeepEqual(sa.ValueSize.Hist, sb.ValueSize.Hist) {
		c := analyze.Compare(sa, sb)
		t.Errorf("value size distributions differ (KS %.4f)", c.ValueSizeKS)
	}
	if sa.MultiKeyGets == 0 || sa.MultiKeyGets != sb.MultiKeyGets || sa.MultiKeyGetKeys != sb.MultiKeyGetKeys {
		t.Errorf("multi-key gets %d (%d keys), replayed %d (%d keys)", sa.MultiKeyGets, sa.MultiKeyGetKeys,
			sb.MultiKeyGets, sb.MultiKeyGetKeys)
	}
	if sa.UniqueKeys != sb.UniqueKeys {
		t.Errorf("unique keys %d, replayed %d", sa.UniqueKeys, sb.UniqueKeys)
	}
	if d := math.Abs(sa.HitRatio - sb.HitRatio); d > 0.005 {
		t.Errorf("hit ratio %.4f, replayed %.4f (Δ %.4f > 0.005)", sa.HitRatio, sb.HitRatio, d)
	}
	f, err := os.Open(rj)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.ReadReport(f, rj)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ops != sa.Events || rep.Errors != 0 || math.Abs(rep.HitRatio-rep.RecordedHitRatio) > 0.005 {
		t.Errorf("report: %d ops (profile %d), %d errors, hit ratio %.4f recorded %.4f", rep.Ops, sa.Events,
			rep.Errors, rep.HitRatio, rep.RecordedHitRatio)
	}

	// Acceptance test 2 on the recorded profile.
	s := filepath.Join(dir, "synth.mbp")
	if out, err := exec.CommandContext(ctx, bin, "synth", "--profile", a, "--events", strconv.FormatUint(sa.Events, 10),
		"--seed", "3", "-o", s).CombinedOutput(); err != nil {
		t.Fatalf("membench synth: %v\n%s", err, out)
	}
	c := analyze.Compare(sa, summarizeProfile(t, s))
	t.Logf("commands: recorded %v, synthetic %v", c.A.CommandMix, c.B.CommandMix)
	t.Logf("synth of the recorded profile: mix L1 %.4f, key KS %.4f, value KS %.4f, zipf α %.3f vs %.3f, MRC MAE %.4f",
		c.CommandMixL1, c.KeySizeKS, c.ValueSizeKS, c.A.ZipfAlpha, c.B.ZipfAlpha, c.MRCMAE)
	if c.CommandMixL1 > 0.01 || c.KeySizeKS > 0.02 || c.ValueSizeKS > 0.02 || math.Abs(c.ZipfAlphaDelta) > 0.05 ||
		c.MRCMAE > 0.02 {
		t.Errorf("synthetic workload of the recorded profile out of bounds")
	}
}

// TestReplayConfig_Units: --rate takes k and M suffixes, --duration, --timeout and --connect-timeout bare seconds,
// --ops k and M; a value in no such form names the forms it wants.
func TestReplayConfig_Units(t *testing.T) {
	base := []string{"--workload", "etc", "--target", "h:1"}
	f := func(args []string, check func(c configs.Replay) bool) {
		t.Helper()
		c, _, err := replayConfig(append(base, args...), io.Discard)
		if err != nil || !check(c) {
			t.Fatalf("replayConfig(%q): %+v, %v", args, c, err)
		}
	}
	f([]string{"--rate", "5k", "--duration", "2"}, func(c configs.Replay) bool {
		return c.Rate == 5000 && c.Duration.D() == 2*time.Second
	})
	f([]string{"--rate", "1.5M", "--duration", "0.5"}, func(c configs.Replay) bool {
		return c.Rate == 1.5e6 && c.Duration.D() == 500*time.Millisecond
	})
	f([]string{"--rate", "2500", "--duration", "1m", "--timeout", "3", "--connect-timeout", "250ms"},
		func(c configs.Replay) bool {
			return c.Rate == 2500 && c.Duration.D() == time.Minute && c.Timeout.D() == 3*time.Second &&
				c.ConnectTimeout.D() == 250*time.Millisecond
		})
	f([]string{"--ops", "10k"}, func(c configs.Replay) bool { return c.Ops == 10_000 })
	f([]string{"--ops", "2M"}, func(c configs.Replay) bool { return c.Ops == 2_000_000 })
	fail := func(args []string, wants ...string) {
		t.Helper()
		_, _, err := replayConfig(append(base, args...), io.Discard)
		for _, w := range wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("replayConfig(%q) = %v, want an error containing %q", args, err, w)
			}
		}
	}
	fail([]string{"--rate", "fast", "--ops", "1"}, "-rate", "5k")
	fail([]string{"--rate", "5x", "--ops", "1"}, "-rate", "5k")
	fail([]string{"--duration", "soon"}, "-duration", "30s", "bare seconds")
	fail([]string{"--duration", "-2"}, "-duration")
	fail([]string{"--ops", "2.5"}, "-ops", "whole")
	f([]string{"--ops", "1.5k"}, func(c configs.Replay) bool { return c.Ops == 1500 })
}

// TestReplay_DeadTarget: against a target nobody listens on, replay prints the first dial error, the real
// duration of the run and no latency (n/a, JSON null) instead of "0 ops/s" and "p50 0.000ms" with no reason.
func TestReplay_DeadTarget(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	args := []string{"replay", "--workload", "etc", "--keys-scale", "0.01", "--target", addr, "--ops", "300"}
	code, out, errOut := runCLI(t, args...)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "connection refused") || !strings.Contains(errOut, addr) {
		t.Errorf("stderr names no dial error:\n%s", errOut)
	}
	if !strings.Contains(out, "connection refused") || !strings.Contains(out, "latency    n/a") ||
		strings.Contains(out, "0.000ms") || strings.Contains(out, " 0 ops/s") || strings.Contains(out, "in 0.00s") {
		t.Errorf("report:\n%s", out)
	}
	code, out, _ = runCLI(t, append(args, "--json")...)
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); code != 3 || err != nil {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if d, _ := r["duration_seconds"].(float64); d <= 0 {
		t.Errorf("duration_seconds %v", r["duration_seconds"])
	}
	if p50 := r["latency_us"].(map[string]any)["p50"]; p50 != nil {
		t.Errorf("latency_us.p50 = %v, want null", p50)
	}
	de, _ := r["dial_errors"].(map[string]any)
	if e, _ := de[addr].(map[string]any); e == nil || !strings.Contains(e["first"].(string), "connection refused") {
		t.Errorf("dial_errors = %v", r["dial_errors"])
	}
}

// TestReplay_StartAt: --start-at makes a node warm up, wait, and start its measured window at that instant; a
// node that arrives late says by how much and still runs.
func TestReplay_StartAt(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	at := time.Now().Add(1500 * time.Millisecond).Truncate(time.Millisecond)
	code, out, errOut := runCLI(t, "replay", "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr,
		"--ops", "2000", "--warmup", "--json", "--start-at", at.Format(time.RFC3339Nano))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var r struct {
		StartUnixNs      int64                `json:"start_unix_ns"`
		StartLateSeconds float64              `json:"start_late_seconds"`
		Warmup           *replay.WarmupReport `json:"warmup"`
		Ops              uint64               `json:"ops"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.StartUnixNs != at.UnixNano() || r.StartLateSeconds != 0 || r.Warmup == nil || r.Ops != 2000 {
		t.Fatalf("start %d, want %d (start_at); late %v; warmup %+v; ops %d", r.StartUnixNs, at.UnixNano(),
			r.StartLateSeconds, r.Warmup, r.Ops)
	}

	// Five seconds late, as unix seconds.
	late := time.Now().Add(-5 * time.Second)
	code, out, errOut = runCLI(t, "replay", "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr,
		"--ops", "500", "--start-at", strconv.FormatInt(late.Unix(), 10))
	if code != 0 || !strings.Contains(errOut, "late") || !strings.Contains(out, "late for --start-at") {
		t.Fatalf("late node: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "replay", "--workload", "etc", "--target", mc.Addr, "--ops", "1", "--start-at", "noon")
	if code == 0 || !strings.Contains(errOut, "start_at") || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("bad --start-at: exit %d: %s", code, errOut)
	}
}

// TestReplay_TimeSeries: the JSON report has a per-second series (ops/s, percentiles, bytes/s, errors) that adds
// up to the run, and --hdr-out writes each command's latency distribution in HdrHistogram's .hgrm format.
func TestReplay_TimeSeries(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	dir := t.TempDir()
	prefix := filepath.Join(dir, "run")
	code, out, errOut := runCLI(t, "replay", "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr,
		"--rate", "1k", "--duration", "2.5", "--json", "--hdr-out", prefix)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var r struct {
		Ops        uint64 `json:"ops"`
		BytesSent  uint64 `json:"bytes_sent"`
		Commands   map[string]any
		TimeSeries []struct {
			Second        int     `json:"second"`
			Seconds       float64 `json:"seconds"`
			Ops           uint64  `json:"ops"`
			OpsPerSec     float64 `json:"ops_per_sec"`
			Errors        uint64  `json:"errors"`
			BytesSent     uint64  `json:"bytes_sent"`
			BytesReceived uint64  `json:"bytes_received"`
			BytesPerSec   float64 `json:"bytes_per_sec"`
			LatencyUs     struct {
				P50, P99, P999 *float64
			} `json:"latency_us"`
		} `json:"time_series"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.TimeSeries) < 2 {
		t.Fatalf("time_series has %d points for a run of 2.5 s", len(r.TimeSeries))
	}
	var ops, sent uint64
	for i, p := range r.TimeSeries {
		ops += p.Ops
		sent += p.BytesSent
		if p.Second != i || p.Seconds <= 0 || p.Seconds > 1.5 {
			t.Errorf("point %d: second %d over %v s", i, p.Second, p.Seconds)
		}
		if p.Ops > 0 && (p.OpsPerSec <= 0 || p.BytesPerSec <= 0 || p.BytesReceived == 0 || p.LatencyUs.P50 == nil ||
			p.LatencyUs.P99 == nil || p.LatencyUs.P999 == nil) {
			t.Errorf("point %d: %+v", i, p)
		}
	}
	if ops != r.Ops || sent != r.BytesSent || sent == 0 {
		t.Errorf("the series adds up to %d ops and %d bytes sent; the run has %d and %d", ops, sent, r.Ops,
			r.BytesSent)
	}
	for _, name := range append([]string{"all"}, mapKeys(r.Commands)...) {
		b, err := os.ReadFile(prefix + "-" + name + ".hgrm")
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "Value") || !strings.Contains(s, "Percentile") || !strings.Contains(s, "TotalCount") ||
			!strings.Contains(s, "1/(1-Percentile)") || !strings.Contains(s, "#[Mean") ||
			!strings.Contains(s, "#[Max") || !strings.Contains(s, "#[Buckets") {
			t.Errorf("%s is not a percentile distribution:\n%s", name, s)
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
