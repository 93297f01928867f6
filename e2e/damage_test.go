package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// run runs membench to completion and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start membench %v: %v", args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("membench %v did not finish within 2 minutes", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// recordProfile records a multi-block profile through the proxy binary and returns its path.
func recordProfile(t *testing.T, dir string) string {
	t.Helper()
	mc := mctest.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", mctest.FreePort(t))
	prof := filepath.Join(dir, "good.mbp")
	p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--record", prof, "--metrics-listen", "",
		"--flush-interval", "50ms")
	waitListening(t, listen, p)
	l := startLoad(listen, 2, 200)
	// Several flush intervals of traffic, so the profile has several blocks.
	began := time.Now()
	deadline := began.Add(20 * time.Second)
	for (l.completed.Load() < 3000 || time.Since(began) < 500*time.Millisecond) && time.Now().Before(deadline) {
		time.Sleep(60 * time.Millisecond)
	}
	l.halt()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("proxy: %v\n%s", err, p.stderr.String())
	}
	return prof
}

// TestDamagedProfiles: a truncated profile is read up to its last whole block by inspect and replay; a
// corrupt block is an error naming the file and offset, and --salvage skips it and counts it.
func TestDamagedProfiles(t *testing.T) {
	dir := t.TempDir()
	good := recordProfile(t, dir)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := readEvents(t, good)
	if len(evs) < 1000 {
		t.Fatalf("the recorded profile has only %d events", len(evs))
	}

	// Truncated in the middle of a block (the last 40% of the file gone).
	trunc := filepath.Join(dir, "truncated.mbp")
	if err := os.WriteFile(trunc, data[:len(data)*6/10], 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := run(t, "inspect", trunc, "--json")
	if code != 0 {
		t.Fatalf("inspect of a truncated profile failed (%d): %s", code, stderr)
	}
	if !strings.Contains(out, `"truncated_blocks": 1`) && !strings.Contains(out, `"truncated_blocks":1`) {
		var blocks []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "_blocks") || strings.Contains(l, `"events"`) {
				blocks = append(blocks, strings.TrimSpace(l))
			}
		}
		rt, rn := readEvents(t, trunc)
		t.Fatalf("inspect --json does not report the truncated block (file cut at %d of %d bytes; the reader "+
			"finds %d events, %d truncated blocks): %s", len(data)*6/10, len(data), len(rt), rn, blocks)
	}
	if !strings.Contains(stderr, "truncated") {
		t.Fatalf("inspect does not warn about the truncation on stderr: %q", stderr)
	}
	tevs, truncated := readEvents(t, trunc)
	if truncated != 1 || len(tevs) == 0 || len(tevs) >= len(evs) {
		t.Fatalf("reader on the truncated file: %d events (of %d), %d truncated blocks", len(tevs), len(evs), truncated)
	}
	mc := mctest.StartMemcached(t)
	out, stderr, code = run(t, "replay", "--profile", trunc, "--target", mc.Addr, "--speed", "max", "--json")
	if code != 0 {
		t.Fatalf("replay of a truncated profile failed (%d): %s\n%s", code, stderr, out)
	}
	if !strings.Contains(out, fmt.Sprintf(`"ops": %d`, len(tevs))) {
		t.Fatalf("replay of the truncated profile did not send its %d readable events:\n%.600s", len(tevs), out)
	}

	// A flipped byte in the middle of the file: a CRC error naming the file and the offset.
	corrupt := filepath.Join(dir, "corrupt.mbp")
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x55
	if err := os.WriteFile(corrupt, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "inspect", corrupt)
	if code == 0 || !strings.Contains(stderr, corrupt) || !strings.Contains(stderr, "offset") {
		t.Fatalf("inspect of a corrupt profile: exit %d, stderr %q; want an error naming the file and offset",
			code, stderr)
	}
	out, stderr, code = run(t, "inspect", corrupt, "--salvage", "--json")
	if code != 0 {
		t.Fatalf("inspect --salvage failed (%d): %s", code, stderr)
	}
	if strings.Contains(out, `"corrupt_blocks": 0`) || !strings.Contains(out, `"corrupt_blocks"`) {
		t.Fatalf("inspect --salvage does not count the corrupt block:\n%.400s", out)
	}
}

// TestDemoPrivacy runs the whole demo and scans everything it wrote — profiles, HTML reports, the replay
// report, its output — for key bytes and for the secret.
func TestDemoPrivacy(t *testing.T) {
	mctest.Require(t, "memcached")
	dir := t.TempDir()
	out, stderr, code := run(t, "demo", "--dir", dir, "--duration", "3s")
	if code != 0 {
		t.Fatalf("membench demo failed (%d):\n%s\n%s", code, out, stderr)
	}
	// The keys the demo sent: the etc preset's (seed 1, as the demo drives it) and the trace replay's keys,
	// synthesized from the capture's key hashes.
	keys := map[string]bool{}
	p, err := workload.NewPreset("etc", workload.PresetOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < p.Keys(); i++ {
		h, size, _ := p.Key(i)
		keys[string(workload.AppendKey(nil, h, int(size)))] = true
	}
	evs, _ := readEvents(t, filepath.Join(dir, "capture.mbp"))
	for _, ev := range evs {
		if ev.KeySize > 0 {
			keys[string(workload.AppendKey(nil, ev.KeyHash, int(ev.KeySize)))] = true
		}
	}
	secret, err := profile.LoadSaltFile(filepath.Join(dir, "salt.hex"))
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{secret[:], []byte(hex.EncodeToString(secret[:])), []byte(strings.ToUpper(hex.EncodeToString(secret[:])))}
	// Keys shorter than 12 bytes are too short to search for without false alarms in compressed data.
	const probe = 12
	var probes [][]byte
	for k := range keys {
		if len(k) >= probe {
			probes = append(probes, []byte(k[:probe]))
		}
	}
	if len(probes) < 1000 {
		t.Fatalf("only %d keys to look for: the scan would prove little", len(probes))
	}
	haystacks := map[string][]byte{"stdout": []byte(out), "stderr": []byte(stderr)}
	for _, f := range []string{"capture.mbp", "replay.mbp", "capture.html", "compare.html", "replay.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("the demo did not write %s: %v", f, err)
		}
		haystacks[f] = b
	}
	for name, hay := range haystacks {
		windows := map[string]bool{}
		for i := 0; i+probe <= len(hay); i++ {
			windows[string(hay[i:i+probe])] = true
		}
		for _, pr := range probes {
			if windows[string(pr)] {
				t.Fatalf("%s contains key bytes %q", name, pr)
			}
		}
		for _, n := range needles {
			if bytes.Contains(hay, n) {
				t.Fatalf("%s contains the secret", name)
			}
		}
	}
	for _, f := range []string{"salt.hex", "capture.mbp", "replay.mbp"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v (%v), want 0600", f, st.Mode(), err)
		}
	}
}
