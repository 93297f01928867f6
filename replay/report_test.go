package replay

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
)

// fakeStats fills a stats with n requests of cmd, latencies spread from base.
func fakeStats(cmd mcproto.Command, n int, base int64, hitEvery int) *stats {
	s := newStats()
	for i := range n {
		st := mcproto.StatusStored
		if cmd.IsRetrieval() {
			st = mcproto.StatusMiss
			if i%hitEvery == 0 {
				st = mcproto.StatusHit
			}
		}
		s.done(cmd, st, base+int64(i)*1733)
		s.recorded(cmd, mcproto.StatusHit)
	}
	s.fail(cmd, errTimeout)
	return s
}

func TestMerge_Exact(t *testing.T) {
	a := []*stats{fakeStats(mcproto.CmdGet, 5000, 50_000, 3), fakeStats(mcproto.CmdSet, 700, 90_000, 1)}
	b := []*stats{fakeStats(mcproto.CmdGet, 3000, 2_000_000, 2), fakeStats(mcproto.CmdMetaGet, 100, 10_000, 5)}
	ra, rb := buildReport(a), buildReport(b)
	ra.StartUnixNs, ra.DurationSeconds, ra.OpsPerSec, ra.Mode, ra.Source = 1000, 2, float64(ra.Ops)/2, "trace", "x"
	rb.StartUnixNs, rb.DurationSeconds, rb.OpsPerSec, rb.Mode, rb.Source = 1500, 3, float64(rb.Ops)/3, "trace", "x"
	ra.ClientCPUSeconds, rb.ClientCPUSeconds = 1.25, 0.5
	ra.MultiKeyGets, ra.MultiKeyGetKeys, rb.MultiKeyGets, rb.MultiKeyGetKeys = 3, 10, 4, 9
	// Round-trip both through JSON, as `report merge` reads them.
	read := func(r *Report) *Report {
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		out, err := ReadReport(&buf, "test")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	m, err := Merge([]*Report{read(ra), read(rb)})
	if err != nil {
		t.Fatal(err)
	}
	whole := buildReport(append(append([]*stats{}, a...), b...))
	if m.Ops != whole.Ops || m.Errors != whole.Errors || m.Hits != whole.Hits || m.Misses != whole.Misses ||
		m.RecordedHits != whole.RecordedHits || !reflect.DeepEqual(m.ErrorsByKind, whole.ErrorsByKind) ||
		!reflect.DeepEqual(m.Statuses, whole.Statuses) {
		t.Fatalf("merged counts differ:\n%+v\n%+v", m, whole)
	}
	if m.LatencyUs != whole.LatencyUs || m.LatencyHdr != whole.LatencyHdr {
		t.Fatalf("merged latency %+v, one report of everything %+v", m.LatencyUs, whole.LatencyUs)
	}
	for name, c := range whole.Commands {
		mc := m.Commands[name]
		if mc == nil || mc.LatencyUs != c.LatencyUs || mc.Ops != c.Ops || mc.HitRatio != c.HitRatio {
			t.Fatalf("command %s: merged %+v, whole %+v", name, mc, c)
		}
	}
	if m.ClientCPUSeconds != 1.75 {
		t.Fatalf("merged client CPU %v s, want 1.75", m.ClientCPUSeconds)
	}
	if m.MultiKeyGets != 7 || m.MultiKeyGetKeys != 19 {
		t.Fatalf("merged multi-key gets %d with %d keys, want 7 with 19", m.MultiKeyGets, m.MultiKeyGetKeys)
	}
	// The windows are [1000 ns, 2 s + 1000 ns] and [1500 ns, 3 s + 1500 ns]: their union is 3.0000005 s.
	if m.Nodes != 2 || m.Shard != "merged" || m.OpsPerSec != float64(m.Ops)/3.0000005 || m.DurationSeconds != 3.0000005 {
		t.Fatalf("merged run figures: nodes %d shard %s ops/s %v duration %v", m.Nodes, m.Shard, m.OpsPerSec,
			m.DurationSeconds)
	}
	// Merging a merge is still exact.
	mm, err := Merge([]*Report{read(m)})
	if err != nil || mm.LatencyUs != m.LatencyUs || mm.Nodes != 2 {
		t.Fatalf("re-merge: %v %+v", err, mm.LatencyUs)
	}
	rb.Source = "y"
	if _, err := Merge([]*Report{read(ra), read(rb)}); err == nil {
		t.Fatal("merged reports of different sources")
	}
}

func TestReadReport_Failure(t *testing.T) {
	for _, in := range []string{"", "{", `{"schema_version": 9}`, `{"schema_version": 1, "latency_hdr": "xx"}`,
		`{"schema_version": 1, "commands": {"get": null}}`} {
		if _, err := ReadReport(bytes.NewBufferString(in), "bad.json"); err == nil {
			t.Fatalf("ReadReport(%q) accepted", in)
		}
	}
}

// TestRun_Shards replays one synthetic workload as one node and as three shards: the shards' requests add up
// to the single node's, key by key, and their merged report counts every request once.
func TestRun_Shards(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(shard string) *Report {
		cfg := syntheticConfig(mc.Addr)
		cfg.Ops, cfg.KeysScale, cfg.Shard, cfg.Seed = 9000, 0.05, shard, 4
		r, err := Run(ctx, cfg, presetOptions(t, "etc", 4, 0.05))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	one := run("0/1")
	var parts []*Report
	for i := range 3 {
		parts = append(parts, run(string(rune('0'+i))+"/3"))
	}
	m, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	if one.Ops != 9000 || m.Ops != one.Ops || m.Commands["get"].Ops != one.Commands["get"].Ops {
		t.Fatalf("one node %d requests (%d gets), three shards %d (%d gets)", one.Ops, one.Commands["get"].Ops,
			m.Ops, m.Commands["get"].Ops)
	}
	for _, p := range parts {
		if p.Ops == 0 || p.Ops > 4000 {
			t.Fatalf("unbalanced shard: %d of 9000 requests", p.Ops)
		}
	}
	if m.Nodes != 3 || m.LatencyUs.Count != one.LatencyUs.Count {
		t.Fatalf("merged %d nodes, %d latencies; one node %d", m.Nodes, m.LatencyUs.Count, one.LatencyUs.Count)
	}
}

// TestReport_MergeSeries: merged time series add up second by second, with nodes aligned on their starts, and
// their percentiles are those of the merged histograms.
func TestReport_MergeSeries(t *testing.T) {
	point := func(second int, ops int, base int64) (Point, *hdr.Histogram) {
		h := newHist()
		for i := range ops {
			_ = h.RecordValue(base + int64(i))
		}
		p := Point{Second: second, Seconds: 1, Ops: uint64(ops), Errors: 1, BytesSent: 100, BytesReceived: 50}
		p.finish(h)
		return p, h
	}
	node := func(shard string, start int64, bases ...int64) *Report {
		r := buildReport([]*stats{fakeStats(mcproto.CmdGet, 10, 100, 2)})
		r.Mode, r.Source, r.Shard, r.StartUnixNs, r.DurationSeconds = "trace", "x", shard, start, float64(len(bases))
		for i, b := range bases {
			p, _ := point(i, 100, b)
			r.TimeSeries = append(r.TimeSeries, p)
		}
		return r
	}
	a := node("0/2", 1e18, 1000, 2000)
	b := node("1/2", 1e18+1_100_000_000, 3000) // starts 1.1 s later: its second 0 is the merged second 1
	m, err := Merge([]*Report{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.TimeSeries) != 2 {
		t.Fatalf("merged series %+v", m.TimeSeries)
	}
	_, h1 := point(1, 100, 2000)
	_, h2 := point(0, 100, 3000)
	h1.Merge(h2)
	p := m.TimeSeries[1]
	if p.Second != 1 || p.Ops != 200 || p.Errors != 2 || p.BytesSent != 200 || p.BytesPerSec != 300 ||
		p.OpsPerSec != 200 || p.LatencyUs != latencyOf(h1) {
		t.Fatalf("merged second 1: %+v", p)
	}
	if m.TimeSeries[0].Ops != 100 || m.StartSkewSeconds != 1.1 || len(m.Warnings) != 1 {
		t.Fatalf("merged second 0 %+v, skew %v, warnings %q", m.TimeSeries[0], m.StartSkewSeconds, m.Warnings)
	}
}

// TestReport_Percentiles: WritePercentiles writes HdrHistogram's percentile distribution (.hgrm) in ms.
func TestReport_Percentiles(t *testing.T) {
	r := buildReport([]*stats{fakeStats(mcproto.CmdGet, 1000, 1000, 2), fakeStats(mcproto.CmdSet, 10, 5000, 1)})
	if names := r.PercentileNames(); !reflect.DeepEqual(names, []string{"all", "get", "set"}) {
		t.Fatalf("names %q", names)
	}
	var buf bytes.Buffer
	if err := r.WritePercentiles(&buf, "set"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, " Value\tPercentile\tTotalCount\t1/(1-Percentile)\n\n") {
		t.Fatalf("no .hgrm header:\n%s", out)
	}
	if !strings.Contains(out, "#[Max     =        0.020, Total count    =           10]") {
		t.Fatalf("max of set is not 0.020 ms (20 µs):\n%s", out)
	}
	empty := buildReport([]*stats{newStats()})
	if len(empty.PercentileNames()) != 0 || empty.WritePercentiles(&buf, "all") == nil {
		t.Fatal("percentiles of nothing")
	}
}
