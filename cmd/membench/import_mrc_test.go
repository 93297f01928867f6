package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/replay"
)

// ogRequest is one oracleGeneral record: an object and its size.
type ogRequest struct {
	obj  uint64
	size uint32
}

// ogTrace is a small oracleGeneral trace with known answers: 40 objects of 1 to 8 KiB (two of 24 KiB, larger
// than some of the caches below), read with a skew, 3000 reads.
func ogTrace() []ogRequest {
	var reqs []ogRequest
	x := uint64(88172645463325252)
	for range 3000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		obj := (x % 40) * (x % 40) / 40 // skewed towards small ids
		size := uint32(1024 * (1 + obj%8))
		if obj == 5 || obj == 30 {
			size = 24 << 10
		}
		reqs = append(reqs, ogRequest{obj: obj + 1, size: size})
	}
	return reqs
}

func writeOracleGeneral(t *testing.T, path string, reqs []ogRequest) {
	t.Helper()
	var b []byte
	for i, r := range reqs {
		b = binary.LittleEndian.AppendUint32(b, uint32(1000+i/10))
		b = binary.LittleEndian.AppendUint64(b, r.obj)
		b = binary.LittleEndian.AppendUint32(b, r.size)
		b = binary.LittleEndian.AppendUint64(b, ^uint64(0))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lruMisses runs reqs through an LRU cache of capacity c as libCacheSim's cachesim does: a miss inserts the
// object unless it is larger than the cache, evicting the least recently used ones. With objects, every object
// counts 1.
func lruMisses(reqs []ogRequest, c uint64, objects bool) (misses int) {
	var order []uint64 // most recent first
	sizes := map[uint64]uint64{}
	var used uint64
	for _, r := range reqs {
		size := uint64(r.size)
		if objects {
			size = 1
		}
		if i := slices.Index(order, r.obj); i >= 0 {
			order = slices.Insert(slices.Delete(order, i, i+1), 0, r.obj)
			continue
		}
		misses++
		if size > c {
			continue
		}
		order = slices.Insert(order, 0, r.obj)
		sizes[r.obj] = size
		used += size
		for used > c {
			last := order[len(order)-1]
			order = order[:len(order)-1]
			used -= sizes[last]
		}
	}
	return misses
}

func importOG(t *testing.T, dir string, reqs []ogRequest) string {
	t.Helper()
	in := filepath.Join(dir, "trace.oracleGeneral.bin")
	writeOracleGeneral(t, in, reqs)
	out := filepath.Join(dir, "og.mbp")
	if code, _, errOut := runCLI(t, "import", "--format", "oracle-general", in, "-o", out, "--force"); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	return out
}

// TestImport_OracleGeneralMRC: an imported oracleGeneral trace has its sizes (working set, value sizes) and a
// miss-ratio curve that is libCacheSim's LRU at every requested size, in bytes and in objects.
func TestImport_OracleGeneralMRC(t *testing.T) {
	reqs := ogTrace()
	prof := importOG(t, t.TempDir(), reqs)

	var ws uint64
	seen := map[uint64]bool{}
	for _, r := range reqs {
		if !seen[r.obj] {
			seen[r.obj] = true
			ws += uint64(r.size)
		}
	}
	code, out, errOut := runCLI(t, "inspect", "--json", prof)
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("inspect: %d %q", code, errOut)
	}
	if got := s["working_set_bytes"].(float64); got != float64(ws) {
		t.Errorf("working_set_bytes %v, want %d", got, ws)
	}
	if mrc, _ := s["mrc"].([]any); len(mrc) == 0 {
		t.Errorf("mrc %v: an imported trace's reads must be simulated", s["mrc"])
	}
	if s["mrc_model"] != "fill_on_miss" {
		t.Errorf("mrc_model %v, want fill_on_miss", s["mrc_model"])
	}

	f := func(unit string, sizes []uint64) {
		t.Helper()
		var list []string
		for _, c := range sizes {
			list = append(list, fmt.Sprint(c))
		}
		code, out, errOut := runCLI(t, "inspect", "--json", prof, "--mrc-unit", unit, "--mrc-sizes",
			strings.Join(list, ","))
		var s struct {
			MRC []struct {
				CacheBytes   uint64  `json:"cache_bytes"`
				CacheObjects uint64  `json:"cache_objects"`
				MissRatio    float64 `json:"miss_ratio"`
			} `json:"mrc"`
			MRCUnit string `json:"mrc_unit"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil || len(s.MRC) != len(sizes) || s.MRCUnit != unit {
			t.Fatalf("inspect --mrc-unit %s: %d %q %q", unit, code, out, errOut)
		}
		for i, c := range sizes {
			got := s.MRC[i]
			size := got.CacheBytes
			if unit == "objects" {
				size = got.CacheObjects
			}
			want := lruMisses(reqs, c, unit == "objects")
			if size != c || math.Round(got.MissRatio*float64(len(reqs))) != float64(want) ||
				math.Abs(got.MissRatio*float64(len(reqs))-float64(want)) > 1e-6 {
				t.Errorf("%s %d: %+v (%.1f misses), LRU has %d misses", unit, c, got,
					got.MissRatio*float64(len(reqs)), want)
			}
		}
	}
	f("bytes", []uint64{2048, 16 << 10, 20 << 10, 32 << 10, 64 << 10, 100 << 10, 1 << 20})
	f("objects", []uint64{1, 2, 5, 10, 20, 40})
}

func TestInspect_MRCFlags(t *testing.T) {
	prof := importOG(t, t.TempDir(), ogTrace())
	// A range: 8 KiB to 64 KiB in steps of 8 KiB, and by doubling.
	f := func(arg string, want []uint64) {
		t.Helper()
		code, out, errOut := runCLI(t, "inspect", "--json", prof, "--mrc-sizes", arg)
		var s struct {
			MRC []struct {
				CacheBytes uint64 `json:"cache_bytes"`
			} `json:"mrc"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			t.Fatalf("--mrc-sizes %s: %d %q", arg, code, errOut)
		}
		var got []uint64
		for _, p := range s.MRC {
			got = append(got, p.CacheBytes)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("--mrc-sizes %s: %v, want %v", arg, got, want)
		}
	}
	f("8KiB:64KiB:8KiB", []uint64{8 << 10, 16 << 10, 24 << 10, 32 << 10, 40 << 10, 48 << 10, 56 << 10, 64 << 10})
	f("1KiB:1MiB:x4", []uint64{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20})
	f("1MiB,1000,2KB", []uint64{1000, 2000, 1 << 20})

	bad := func(want string, args ...string) {
		t.Helper()
		code, _, errOut := runCLI(t, append([]string{"inspect", prof}, args...)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Fatalf("%q: code %d, %q", args, code, errOut)
		}
	}
	bad("--mrc-sizes", "--mrc-sizes", "0")
	bad("--mrc-sizes", "--mrc-sizes", "1MiB:1KiB:1KiB")
	bad("--mrc-sizes", "--mrc-sizes", "1:100000:1")
	bad("--mrc-sizes", "--mrc-sizes", "12XB")
	bad("--mrc-sizes", "--mrc-sizes", "1KiB", "--mrc-unit", "objects")
	bad("--mrc-unit", "--mrc-unit", "pages")
	bad("--mrc-model", "--mrc-model", "arc")
}

// TestCompare_NA: figures one side lacks (an imported trace has no recorded hits or misses) are n/a, null in
// JSON, with a warning; never 0.
func TestCompare_NA(t *testing.T) {
	dir := t.TempDir()
	og := importOG(t, dir, ogTrace())
	etc := filepath.Join(dir, "etc.mbp")
	if code, _, errOut := runCLI(t, "synth", "--workload", "etc", "--keys-scale", "0.01", "--events", "3000",
		"-o", etc); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runCLI(t, "compare", "--json", og, etc)
	var c map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("compare: %d %q", code, errOut)
	}
	if v, ok := c["hit_ratio_delta"]; !ok || v != nil {
		t.Errorf("hit_ratio_delta %v, want null", v)
	}
	if v, _ := c["mrc_mae"].(float64); v == 0 {
		t.Errorf("mrc_mae %v: both sides have a curve", c["mrc_mae"])
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "hit ratio") {
		t.Errorf("no warning about the hit ratio: %q", errOut)
	}
	code, out, _ = runCLI(t, "compare", og, etc)
	if code != 0 || !strings.Contains(out, "n/a") {
		t.Errorf("text: %q", out)
	}
	// Curves in different units are not compared.
	_, js, _ := runCLI(t, "inspect", "--json", "--mrc-unit", "objects", og)
	saved := filepath.Join(dir, "og-objects.json")
	os.WriteFile(saved, []byte(js), 0o644)
	code, out, errOut = runCLI(t, "compare", "--json", saved, og)
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil || c["mrc_mae"] != nil || !strings.Contains(errOut, "unit") {
		t.Errorf("objects against bytes: mrc_mae %v, %q", c["mrc_mae"], errOut)
	}
}

// TestImport_WarmupReplayHits: replay --warmup of an imported trace stores its objects, so the replay's gets
// hit (they all read objects the traced cache served).
func TestImport_WarmupReplayHits(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	reqs := ogTrace()
	prof := importOG(t, t.TempDir(), reqs)
	code, out, errOut := runCLI(t, "replay", "--profile", prof, "--target", mc.Addr, "--speed", "max", "--warmup",
		"--json")
	var r replay.Report
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	objs := map[uint64]bool{}
	for _, q := range reqs {
		objs[q.obj] = true
	}
	if r.Warmup == nil || r.Warmup.Keys != uint64(len(objs)) || r.Hits != uint64(len(reqs)) || r.Errors != 0 {
		t.Fatalf("warmup %+v, %d hits of %d gets, %d errors", r.Warmup, r.Hits, len(reqs), r.Errors)
	}
}

// TestInspect_HelpListsFlags: every flag inspect and compare share appears in both commands' help.
func TestInspect_HelpListsFlags(t *testing.T) {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	addAnalysisFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		for name, usage := range map[string]string{"inspect": inspectUsage, "compare": compareUsage} {
			if !strings.Contains(usage, "--"+f.Name+" ") {
				t.Errorf("%s help lacks --%s", name, f.Name)
			}
		}
	})
}
