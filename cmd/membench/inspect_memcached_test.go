package main

import (
	"encoding/json"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/membench/membench/profile/analyze"
)

// TestInspect_MemcachedFlags: the argv of inspect's memcached flags maps to analyze.MemcachedOptions, and a value
// memcached (or the model) would refuse fails with the flag's name.
func TestInspect_MemcachedFlags(t *testing.T) {
	parse := func(args []string) (analyze.MemcachedOptions, error) {
		fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
		mf := addMemcachedFlags(fs)
		if _, err := parseArgs(fs, inspectUsage, args, nil); err != nil {
			return analyze.MemcachedOptions{}, err
		}
		return mf.options()
	}
	f := func(args []string, want analyze.MemcachedOptions) {
		t.Helper()
		got, err := parse(args)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v, %v; want %+v", args, got, err, want)
		}
	}
	const mib = 1 << 20
	f(nil, analyze.MemcachedOptions{})
	f([]string{"--memcached-factor", "2"}, analyze.MemcachedOptions{}) // nothing to simulate without sizes
	f([]string{"--memcached", "256MiB,64MiB"}, analyze.MemcachedOptions{Sizes: []uint64{64 * mib, 256 * mib},
		Factor: 1.25, ChunkSize: 48, ItemMax: mib})
	f([]string{"--memcached", "16MiB:64MiB:x2", "--memcached-factor", "1.08", "--memcached-chunk-size", "32",
		"--memcached-item-max", "2MiB", "--memcached-segmented=false"},
		analyze.MemcachedOptions{Sizes: []uint64{16 * mib, 32 * mib, 64 * mib}, Factor: 1.08, ChunkSize: 32,
			ItemMax: 2 * mib, Flat: true})

	bad := func(args []string, flagName string) {
		t.Helper()
		if _, err := parse(args); err == nil || !strings.Contains(err.Error(), flagName) {
			t.Fatalf("%q: error %v, want one naming %s", args, err, flagName)
		}
	}
	bad([]string{"--memcached", "0"}, "--memcached")
	bad([]string{"--memcached", "64MiB", "--memcached-factor", "1"}, "--memcached-factor")
	bad([]string{"--memcached", "64MiB", "--memcached-item-max", "256KiB"}, "--memcached-item-max")
	bad([]string{"--memcached", "64MiB", "--memcached-item-max", "lots"}, "--memcached-item-max")
	bad([]string{"--memcached", "64MiB", "--memcached-chunk-size", "0"}, "--memcached-chunk-size")
	bad([]string{"--memcached", "1MiB"}, "--memcached") // -I 1m wants at least 2 MiB
	bad([]string{"--memcached", "1MiB:17MiB:1MiB"}, "--memcached")
}

// TestInspect_Memcached: the model's prediction is in the JSON summary (with the LRU's miss ratio where
// --mrc-sizes has the same size), in the text report and in the help.
func TestInspect_Memcached(t *testing.T) {
	prof := importSample(t, t.TempDir(), "", "a")
	code, out, errOut := runCLI(t, "inspect", prof, "--json", "--memcached", "64MiB,16MiB", "--mrc-sizes", "16MiB")
	var s analyze.Summary
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("json: %d %q %q", code, out, errOut)
	}
	m := s.Memcached
	if m == nil || len(m.Points) != 2 || m.Points[0].MemoryBytes != 16<<20 || m.Points[0].LRUMissRatio == nil ||
		m.Points[1].LRUMissRatio != nil || !m.Segmented || m.SlabClasses != 39 || m.Retrievals != s.MRCReads {
		t.Fatalf("memcached: %+v", m)
	}
	code, out, errOut = runCLI(t, "inspect", prof, "--memcached", "64MiB", "--memcached-segmented=false")
	if code != 0 || !strings.Contains(out, "memcached model (flat LRU") || !strings.Contains(out, "64.0 MiB") {
		t.Fatalf("text: %d %q %q", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "inspect", prof, "--json"); code != 0 || strings.Contains(out, `"memcached"`) {
		t.Fatalf("without --memcached the summary has a memcached section: %q", out)
	}
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	addMemcachedFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(inspectUsage, "--"+f.Name+" ") {
			t.Errorf("inspect help lacks --%s", f.Name)
		}
	})
}
