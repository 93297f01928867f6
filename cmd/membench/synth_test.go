package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay"
)

// TestSynth_Deterministic is acceptance test 3 through synth: the same source, seed and scale give the same
// profile byte for byte; another seed gives another sequence.
func TestSynth_Deterministic(t *testing.T) {
	dir := t.TempDir()
	synth := func(name string, args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, name)
		code, stdout, stderr := runMembench(append([]string{"synth", "-o", out}, args...)...)
		if code != 0 {
			t.Fatalf("membench synth %q exited %d: %s %s", args, code, stdout, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := synth("a.mbp", "--workload", "etc", "--events", "30000", "--seed", "5")
	b := synth("b.mbp", "--workload", "etc", "--events", "30000", "--seed", "5")
	c := synth("c.mbp", "--workload", "etc", "--events", "30000", "--seed", "6")
	if !bytes.Equal(a, b) {
		t.Fatal("same preset and seed, different profiles")
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 5 and 6 gave the same profile")
	}
	// A model fitted to a profile: the same again.
	src := filepath.Join(dir, "a.mbp")
	x := synth("x.mbp", "--profile", src, "--events", "40000", "--seed", "1", "--keys-scale", "1.5")
	y := synth("y.mbp", "--profile", src, "--events", "40000", "--seed", "1", "--keys-scale", "1.5")
	if !bytes.Equal(x, y) {
		t.Fatal("same profile and seed, different synthetic profiles")
	}
	r, err := profile.Open(filepath.Join(dir, "x.mbp"), profile.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ra, _ := profile.Open(src, profile.ReaderOptions{})
	defer ra.Close()
	if r.Header().SaltFingerprint != ra.Header().SaltFingerprint || ra.Header().SaltFingerprint != replay.PresetFingerprint() {
		t.Fatalf("fingerprints: synth of a profile %x, its source %x, presets %x", r.Header().SaltFingerprint,
			ra.Header().SaltFingerprint, replay.PresetFingerprint())
	}
	var ev profile.Event
	n := 0
	for r.Next(&ev) {
		n++
	}
	if n != 40000 {
		t.Fatalf("synth wrote %d events, want 40000", n)
	}
}

func TestSynth_Usage(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		code, _, stderr := runMembench(append([]string{"synth"}, args...)...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Fatalf("membench synth %q exited %d: %s (want 2 and %q)", args, code, stderr, want)
		}
	}
	f([]string{"--events", "10", "-o", "x"}, "--profile FILE and --workload NAME")
	f([]string{"--workload", "etc", "-o", "x"}, "--events")
	f([]string{"--workload", "etc", "--events", "10"}, "-o FILE")
	f([]string{"--workload", "etc", "--events", "10", "-o", "x", "--keys-scale", "0"}, "--keys-scale")
	code, _, stderr := runMembench("synth", "--workload", "nope", "--events", "10", "-o", filepath.Join(t.TempDir(), "x"))
	if code != 1 || !strings.Contains(stderr, "unknown workload") {
		t.Fatalf("unknown preset: exit %d %s", code, stderr)
	}
}

// TestReplay_ShardsAndMerge replays a preset as two shards with -o, merges the reports with `membench report
// merge`, and checks the exit code when errors pass --max-error-ratio.
func TestReplay_ShardsAndMerge(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	dir := t.TempDir()
	var files []string
	var ops uint64
	for i := range 2 {
		out := filepath.Join(dir, "node"+strconv.Itoa(i)+".json")
		code, stdout, stderr := runMembench("replay", "--workload", "uniform", "--keys-scale", "0.05", "--target",
			mc.Addr, "--ops", "4000", "--shard", strconv.Itoa(i)+"/2", "--warmup", "-o", out)
		if code != 0 {
			t.Fatalf("replay shard %d exited %d:\n%s\n%s", i, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "requests") || !strings.Contains(stdout, "hit ratio") {
			t.Fatalf("no human report:\n%s", stdout)
		}
		files = append(files, out)
		b, _ := os.ReadFile(out)
		var r struct {
			Ops uint64 `json:"ops"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		ops += r.Ops
	}
	code, stdout, stderr := runMembench(append([]string{"report", "merge"}, files...)...)
	if code != 0 {
		t.Fatalf("report merge exited %d: %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("merged report is not JSON: %v\n%s", err, stdout)
	}
	for _, k := range []string{"ops", "ops_per_sec", "errors", "hit_ratio", "latency_us", "commands", "latency_hdr"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("merged report has no %q", k)
		}
	}
	lat := m["latency_us"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Fatalf("latency_us has no %q", k)
		}
	}
	if uint64(m["ops"].(float64)) != 4000 || ops != 4000 || m["nodes"].(float64) != 2 {
		t.Fatalf("merged ops %v nodes %v (shards sent %d), want 4000 over 2 nodes", m["ops"], m["nodes"], ops)
	}
	if m["hit_ratio"].(float64) < 0.99 {
		t.Fatalf("hit ratio %v after warmup", m["hit_ratio"])
	}
	code, _, stderr = runMembench("report", "merge", "--text", files[0], files[1])
	if code != 0 {
		t.Fatalf("report merge --text exited %d: %s", code, stderr)
	}

	// A down target: every request fails, membench exits 3 and says which flag sets the bound.
	down := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	code, _, stderr = runMembench("replay", "--workload", "etc", "--keys-scale", "0.01", "--target", down, "--ops", "50",
		"--json")
	if code != 3 || !strings.Contains(stderr, "--max-error-ratio") {
		t.Fatalf("replay against a down target exited %d: %s", code, stderr)
	}
}

// TestReplay_MetricsPush checks that a replay pushes its metrics, including a last push at the end.
func TestReplay_MetricsPush(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	code, stdout, stderr := runMembench("replay", "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr,
		"--ops", "3000", "--metrics-push", srv.URL+"/api/v1/import/prometheus", "--metrics-listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("replay exited %d: %s %s", code, stdout, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(bodies, "\n")
	for _, want := range []string{`membench_replay_requests_total{shard="0/1",cmd="get"}`, "membench_replay_hits_total"} {
		if !strings.Contains(all, want) && !strings.Contains(all, strings.Replace(want, `shard="0/1",`, "", 1)) {
			t.Fatalf("pushed metrics lack %s:\n%s", want, all)
		}
	}
}
