package analyze

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

const t0 = int64(1_700_000_000) * int64(time.Second)

// knownWorkload is small enough to work every figure out by hand (see TestSummary_KnownWorkload).
func knownWorkload() []profile.Event {
	ms := int64(time.Millisecond)
	sec := int64(time.Second)
	set := func(dt int64, key int, ks uint16, vs uint32, ttl int64, ns uint64, conn uint64) profile.Event {
		ev := setEv(t0+dt, key, ks, vs)
		ev.TTL, ev.NSHash, ev.Conn = ttl, ns, conn
		return ev
	}
	get := func(dt int64, key int, ks uint16, hit bool, vs uint32, ns uint64, latUs int64) profile.Event {
		ev := getEv(t0+dt, key, ks, hit, vs)
		ev.NSHash, ev.Latency, ev.Conn = ns, latUs*1000, 2
		return ev
	}
	del := keyEv(t0+3*sec+200*ms, 4, 40, mcproto.CmdDelete, mcproto.StatusDeleted)
	del.Proto, del.Conn = mcproto.ProtoBinary, 3
	// The gets of keys 1, 2 and 3 are one multi-key get.
	multi := func(ev profile.Event, i uint16) profile.Event {
		ev.KeyIndex, ev.KeyCount = i, 3
		return ev
	}
	return []profile.Event{
		set(0, 1, 10, 100, 0, 0xAA, 1),
		set(1*ms, 2, 20, 200, 60, 0xAA, 1),
		set(2*ms, 3, 30, 300, t0/sec+3600, 0xBB, 1),
		set(3*ms, 4, 40, 400, -1, 0, 1),
		multi(get(1*sec, 1, 10, true, 100, 0xAA, 100), 0),
		multi(get(1*sec+1*ms, 2, 20, true, 200, 0xAA, 200), 1),
		multi(get(1*sec+2*ms, 3, 30, true, 300, 0xBB, 300), 2),
		get(1*sec+3*ms, 5, 50, false, 0, 0, 400),
		{Time: t0 + 2*sec + 500*ms, Conn: 2, Proto: mcproto.ProtoText, Cmd: mcproto.CmdStats,
			Status: mcproto.StatusOK, Upstream: -1},
		del,
	}
}

func TestSummary_KnownWorkload(t *testing.T) {
	s := analyze(knownWorkload(), Options{})
	check := func(name string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s = %s, want %s", name, g, w)
		}
	}
	check("events", s.Events, 10)
	check("keyed_events", s.KeyedEvents, 9)
	check("connections", []any{s.Connections, s.ConnectionsExact}, []any{3, true})
	check("start_unix_ns", s.StartUnixNs, t0)
	check("duration_seconds", s.DurationSeconds, 3.2)
	check("protocols", s.Protocols, map[string]uint64{"text": 9, "binary": 1})
	check("commands", s.Commands, map[string]uint64{"set": 4, "get": 4, "stats": 1, "delete": 1})
	check("statuses", s.Statuses, map[string]uint64{"stored": 4, "hit": 3, "miss": 1, "ok": 1, "deleted": 1})
	check("hits/misses/ratio", []any{s.Hits, s.Misses, s.HitRatio}, []any{3, 1, 0.75})
	check("multi_key_gets/keys", []any{s.MultiKeyGets, s.MultiKeyGetKeys}, []any{1, 3})
	check("unique_keys", []any{s.UniqueKeys, s.UniqueKeysExact}, []any{5, true})
	// key+last value: 110 + 220 + 330 + 440 (deleted, still a key of the profile) + 50 (miss only).
	check("working_set_bytes", s.WorkingSetBytes, 1150)
	// Key sizes 10,20,30,40 (sets) 10,20,30,50 (gets) 40 (delete): sorted 10 10 20 20 30 30 40 40 50.
	check("key_size", []any{s.KeySize.Count, s.KeySize.Min, s.KeySize.P50, s.KeySize.P90, s.KeySize.P99,
		s.KeySize.Max}, []any{9, 10, 30, 50, 50, 50})
	check("key_size.mean", math.Round(s.KeySize.Mean*1000), math.Round(250.0/9*1000))
	check("key_size.hist", s.KeySize.Hist, [][2]uint64{{10, 2}, {20, 2}, {30, 2}, {40, 2}, {50, 1}})
	// Values 100 200 300 400 (sets) 100 200 300 (hits).
	check("value_size", []any{s.ValueSize.Count, s.ValueSize.Min, s.ValueSize.P50, s.ValueSize.P90,
		s.ValueSize.Max, s.ValueSize.Mean}, []any{7, 100, 200, 400, 400, 1600.0 / 7})
	// TTLs 0 (never), 60, absolute now+3600 → 3600; -1 is already expired.
	check("ttl", []any{s.TTL.Count, s.TTL.Min, s.TTL.P50, s.TTL.Max, s.TTLExpired}, []any{3, 0, 60, 3600, 1})
	check("top_namespaces", s.TopNamespaces, []Namespace{
		{NS: "00000000000000aa", Count: 4, Share: 4.0 / 9}, {NS: "00000000000000bb", Count: 2, Share: 2.0 / 9}})
	check("top_keys_share", s.TopKeysShare, TopShare{Top1: 2.0 / 9, Top10: 1, Top100: 1, Top1000: 1})
	check("rate_bucket_seconds", s.RateBucketSeconds, 1)
	check("rate", s.Rate, []RatePoint{
		{T: 0, Total: 4, ByCommand: map[string]uint64{"set": 4}},
		{T: 1, Total: 4, ByCommand: map[string]uint64{"get": 4}},
		{T: 2, Total: 1, ByCommand: map[string]uint64{"stats": 1}},
		{T: 3, Total: 1, ByCommand: map[string]uint64{"delete": 1}},
	})
	check("hit_ratio_over_time", s.HitRatioOverTime, []HitRatioPoint{{T: 1, Retrievals: 4, HitRatio: 0.75}})
	if l := s.LatencyUs; l == nil || l.Count != 4 || l.Max != 400 || math.Abs(l.P50-200)/200 > 0.008 ||
		math.Abs(l.P99-400)/400 > 0.008 {
		t.Errorf("latency_us = %+v, want count 4, p50 ≈ 200, p99 ≈ 400, max 400", l)
	}
	if s.MRCMethod != "exact" || len(s.MRC) < 10 {
		t.Errorf("mrc: method %q with %d points, want exact with ≥ 10", s.MRCMethod, len(s.MRC))
	}

	// Without latencies the field is omitted.
	evs := knownWorkload()
	for i := range evs {
		evs[i].Latency = 0
	}
	b, err := json.Marshal(analyze(evs, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("latency_us")) {
		t.Errorf("latency_us present without latencies: %s", b)
	}
}

func TestSummary_Empty(t *testing.T) {
	s := New(Options{}).Summary()
	if s.Events != 0 || s.HitRatio != 0 || len(s.MRC) != 0 || s.LatencyUs != nil || s.ZipfAlpha != 0 {
		t.Fatalf("empty summary has figures: %+v", s)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatalf("cannot marshal empty summary: %s", err)
	}
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestRate_MergesPastBound(t *testing.T) {
	a := New(Options{})
	for i := range 5000 {
		ev := getEv(t0+int64(i)*int64(time.Second), i%10, 10, true, 10)
		a.Add(&ev)
	}
	s := a.Summary()
	if s.RateBucketSeconds != 8 || len(s.Rate) != 625 {
		t.Fatalf("rate: %d buckets of %gs, want 625 of 8s", len(s.Rate), s.RateBucketSeconds)
	}
	for i, p := range s.Rate {
		if p.Total != 8 || p.ByCommand["get"] != 8 || p.T != float64(8*i) {
			t.Fatalf("rate[%d] = %+v, want 8 gets at t=%d", i, p, 8*i)
		}
	}
	if len(s.HitRatioOverTime) != 625 || s.HitRatioOverTime[3].HitRatio != 1 {
		t.Fatalf("hit_ratio_over_time has %d points, want 625 at 1", len(s.HitRatioOverTime))
	}
}

func TestZipfAlpha(t *testing.T) {
	alphas := []float64{0.6, 0.8, 1.0, 1.2}
	if !fullScale() {
		alphas = alphas[2:3]
	}
	for i, alpha := range alphas {
		z := newZipfGen(100_000, alpha, uint64(i+1))
		exact, sampled := New(Options{}), New(Options{MaxKeys: 8192})
		for j := range 2_000_000 {
			ev := getEv(int64(j), z.next(), 20, true, 100)
			exact.Add(&ev)
			sampled.Add(&ev)
		}
		s := exact.Summary()
		if !s.UniqueKeysExact || math.Abs(s.ZipfAlpha-alpha) > 0.03 {
			t.Errorf("alpha %.1f: fitted %.4f (exact %v), want within ±0.03", alpha, s.ZipfAlpha, s.UniqueKeysExact)
		}
		if len(s.Popularity) > 200 || len(s.Popularity) < 20 || s.Popularity[0].Rank != 1 {
			t.Errorf("alpha %.1f: %d popularity points starting at %+v", alpha, len(s.Popularity), s.Popularity[0])
		}
		// Past MaxKeys the head comes from Space-Saving and the tail from the key sample: a looser fit.
		ss := sampled.Summary()
		t.Logf("alpha %.1f: exact fit %.4f, sampled fit %.4f", alpha, s.ZipfAlpha, ss.ZipfAlpha)
		if ss.UniqueKeysExact || math.Abs(ss.ZipfAlpha-alpha) > 0.1 {
			t.Errorf("alpha %.1f: sampled fit %.4f, want within ±0.1", alpha, ss.ZipfAlpha)
		}
	}
}

// TestEstimates_PastMaxKeys compares the figures that become estimates past MaxKeys with the exact ones.
func TestEstimates_PastMaxKeys(t *testing.T) {
	z := newZipfGen(200_000, 1.0, 42)
	exact, est := New(Options{}), New(Options{MaxKeys: 4096})
	for j := range 1_000_000 {
		k := z.next()
		ev := getEv(int64(j), k, uint16(10+k%100), true, uint32(100+k%1000))
		ev.NSHash = uint64(1 + k%3000)
		exact.Add(&ev)
		est.Add(&ev)
	}
	a, b := exact.Summary(), est.Summary()
	if !a.UniqueKeysExact || b.UniqueKeysExact || b.TopKeysExact || b.MRCMethod == "exact" {
		t.Fatalf("exactness flags: exact run %v, estimated run %v %v %q", a.UniqueKeysExact, b.UniqueKeysExact,
			b.TopKeysExact, b.MRCMethod)
	}
	rel := func(x, y uint64) float64 { return math.Abs(float64(x)-float64(y)) / float64(y) }
	if r := rel(b.UniqueKeys, a.UniqueKeys); r > 0.03 {
		t.Errorf("unique_keys estimate %d vs exact %d: off by %.2f%%", b.UniqueKeys, a.UniqueKeys, 100*r)
	}
	if r := rel(b.WorkingSetBytes, a.WorkingSetBytes); r > 0.1 {
		t.Errorf("working_set_bytes estimate %d vs exact %d: off by %.2f%%", b.WorkingSetBytes, a.WorkingSetBytes,
			100*r)
	}
	for _, p := range [][2]float64{{a.TopKeysShare.Top1, b.TopKeysShare.Top1},
		{a.TopKeysShare.Top10, b.TopKeysShare.Top10}, {a.TopKeysShare.Top100, b.TopKeysShare.Top100},
		{a.TopKeysShare.Top1000, b.TopKeysShare.Top1000}} {
		if math.Abs(p[0]-p[1]) > 0.01 {
			t.Errorf("top_keys_share exact %+v vs estimated %+v", a.TopKeysShare, b.TopKeysShare)
			break
		}
	}
	// 3000 namespaces overflow the 1024-slot sketch; the top ones must still come out right.
	if b.TopNamespacesExact || a.TopNamespaces[0] != b.TopNamespaces[0] {
		t.Errorf("top namespace exact %+v vs sketched %+v (exact flag %v)", a.TopNamespaces[0], b.TopNamespaces[0],
			b.TopNamespacesExact)
	}
	if math.Abs(a.ZipfAlpha-b.ZipfAlpha) > 0.1 {
		t.Errorf("zipf_alpha exact %.3f vs estimated %.3f", a.ZipfAlpha, b.ZipfAlpha)
	}
}

func TestAdd_NoAllocs(t *testing.T) {
	f := func(name string, opts Options, keys int) {
		t.Helper()
		a := New(opts)
		z := newZipfGen(keys, 1.0, 5)
		evs := make([]profile.Event, 20_000)
		for i := range evs {
			k := z.next()
			switch i % 10 {
			case 0:
				evs[i] = setEv(t0, k, 20, uint32(k%5000))
			case 1:
				evs[i] = keyEv(t0, k, 20, mcproto.CmdDelete, mcproto.StatusDeleted)
			default:
				evs[i] = getEv(t0, k, 20, i%3 != 0, uint32(k%5000))
			}
			evs[i].Conn, evs[i].NSHash, evs[i].Latency = uint64(i%50), uint64(k%20+1), 1000
		}
		for i := range evs { // grow every table to this key set
			a.Add(&evs[i])
		}
		allocs := testing.AllocsPerRun(5, func() {
			for i := range evs {
				a.Add(&evs[i])
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per %d events, want 0", name, allocs, len(evs))
		}
	}
	f("exact", Options{}, 5000)
	f("sampled", Options{MaxKeys: 256}, 50_000)
	f("explicit sizes", Options{MRCSizes: []uint64{1000, 1e6}}, 5000)
}

func TestOptions_Validate(t *testing.T) {
	f := func(o Options, wantErr string) {
		t.Helper()
		err := o.Validate()
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("Validate(%+v) = %v, want error containing %q", o, err, wantErr)
		}
	}
	// Success.
	f(Options{}, "")
	f(Options{MaxKeys: 256, RateBucket: time.Millisecond, MRCSizes: []uint64{1, 2}}, "")
	// Failure.
	f(Options{MaxKeys: -1}, "max keys")
	f(Options{MaxKeys: 10}, "max keys")
	f(Options{RateBucket: -time.Second}, "rate bucket")
	f(Options{MRCSizes: []uint64{0}}, "MRC cache size 0")
}

// TestSchema_Documented keeps SCHEMA.md and the Summary doc comment in step with the JSON the code writes.
func TestSchema_Documented(t *testing.T) {
	doc, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatalf("cannot read SCHEMA.md: %s", err)
	}
	src, err := os.ReadFile("summary.go")
	if err != nil {
		t.Fatalf("cannot read summary.go: %s", err)
	}
	b, err := json.Marshal(analyze(knownWorkload(), Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k := range m {
		if !bytes.Contains(doc, []byte("`"+k+"`")) {
			t.Errorf("SCHEMA.md does not document %q", k)
		}
		if !regexp.MustCompile(`(?m)^//\s+`+k+`\b`).Match(src) &&
			!regexp.MustCompile(`(?m)^//\s+\S+, `+k+`\b`).Match(src) {
			t.Errorf("the Summary doc comment does not list %q", k)
		}
	}
}

func TestWriteText_Sections(t *testing.T) {
	s := analyze(knownWorkload(), Options{})
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Overview", "Command mix", "Statuses", "Sizes", "Popularity", "Namespaces",
		"Rate", "Latency", "miss-ratio curve", "hit ratio       75.00%", "00000000000000aa",
		"multi-key gets  1, with 3 keys (3.0 per get)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := Compare(s, s).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "MAE 0.0000") || !strings.Contains(buf.String(), "multi-key gets (keys)") {
		t.Errorf("comparison report:\n%s", buf.String())
	}
}
