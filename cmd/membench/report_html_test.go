package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// hdrSnapshot is the latency_hdr of n latencies spread over 10–10000 µs.
func hdrSnapshot(t *testing.T, n int) string {
	t.Helper()
	h := hdr.New(1, 3_600_000_000, 2)
	for i := 0; i < n; i++ {
		h.RecordValue(int64(10 + (i*7919)%10000))
	}
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReport_HTML draws a replay report whose run ended 0.3 s into its last second: the spectrum of every command
// and of get, p50/p99 per second, and a flat rate (the partial second is scaled to its length).
func TestReport_HTML(t *testing.T) {
	snap := hdrSnapshot(t, 2300)
	var pts []string
	for i, sec := range []float64{1, 1, 0.3} {
		ops := int(1000 * sec)
		pts = append(pts, fmt.Sprintf(`{"second": %d, "seconds": %g, "ops": %d, "ops_per_sec": 1000,
"latency_us": {"count": %d, "mean": 500, "p50": 400, "p90": 800, "p99": 900, "p999": 990, "max": 1000}}`,
			i, sec, ops, ops))
	}
	js := fmt.Sprintf(`{"schema_version": 1, "mode": "trace", "source": "a.mbp", "targets": ["h:1"], "shard": "0/1",
"nodes": 1, "duration_seconds": 2.3, "ops": 2300, "ops_per_sec": 1000,
"latency_us": {"count": 2300, "mean": 500, "p50": 400, "p90": 800, "p99": 900, "p999": 990, "max": 1000},
"latency_hdr": %q, "commands": {"get": {"ops": 2300, "latency_us": {"count": 2300}, "latency_hdr": %q}},
"time_series": [%s]}`, snap, snap, strings.Join(pts, ","))
	files := writeNodeReports(t, js)
	out := filepath.Join(t.TempDir(), "r.html")
	code, _, errOut := runCLI(t, "report", "html", files[0], "-o", out)
	if code != 0 {
		t.Fatalf("report html: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"Latency by percentile", ">all<", ">get<", ">99.9%<", "Latency over time", ">p50<",
		">p99<", "Throughput", "scaled to its length"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<polyline"); n != 5 { // 2 spectra, p50, p99, rate
		t.Errorf("%d lines, want 5", n)
	}

	f := func(want string, args ...string) {
		t.Helper()
		code, _, errOut := runCLI(t, append([]string{"report", "html"}, args...)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("report html %q: exit %d, %q; want 2 and %q", args, code, errOut, want)
		}
	}
	f("-o OUT.html", files[0])
	f("one report", files[0], files[0], "-o", out)
}
