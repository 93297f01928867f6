package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodeReportJSON is a node's replay report with only what report merge reads: its window and its gets.
func nodeReportJSON(shard string, startNs int64, seconds float64, ops int) string {
	return fmt.Sprintf(`{"schema_version": 1, "mode": "synthetic", "source": "workload:etc", "targets": ["h:1"],
"shard": %q, "nodes": 1, "start_unix_ns": %d, "duration_seconds": %g, "ops": %d, "ops_per_sec": %g,
"commands": {"get": {"ops": %d}}}`, shard, startNs, seconds, ops, float64(ops)/seconds, ops)
}

func writeNodeReports(t *testing.T, reports ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, r := range reports {
		p := filepath.Join(dir, fmt.Sprintf("node%d.json", i))
		if err := os.WriteFile(p, []byte(r), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestReport_MergeSkewedWindows reproduces a merge of two shards started 4.5 s apart, which printed
// "15893 in 8.51s = 3974 ops/s" (the sum of the nodes' rates) while the cluster saw about 1870 requests a second,
// and warned of nothing. The merged rate is the requests over the union of the windows, the merge warns that the
// windows differ by more than a second, and each node's start skew is shown, in text and in JSON.
func TestReport_MergeSkewedWindows(t *testing.T) {
	const t0 = int64(1_767_366_245_000_000_000)
	files := writeNodeReports(t, nodeReportJSON("0/2", t0, 4.01, 7950),
		nodeReportJSON("1/2", t0+4_500_000_000, 4.01, 7943))

	code, out, errOut := runCLI(t, append([]string{"report", "merge", "--text"}, files...)...)
	if code != 0 {
		t.Fatalf("report merge --text: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"15893 in 8.51s = 1868 ops/s", "0/2", "start +0.000s", "1/2", "start +4.500s",
		"windows differ by 4.50s"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "4.50s") {
		t.Errorf("no warning on stderr: %q", errOut)
	}

	code, out, errOut = runCLI(t, append([]string{"report", "merge"}, files...)...)
	if code != 0 {
		t.Fatalf("report merge: exit %d: %s", code, errOut)
	}
	var m struct {
		Ops              uint64   `json:"ops"`
		OpsPerSec        float64  `json:"ops_per_sec"`
		DurationSeconds  float64  `json:"duration_seconds"`
		StartSkewSeconds *float64 `json:"start_skew_seconds"`
		Warnings         []string `json:"warnings"`
		NodeWindows      []struct {
			Shard            string  `json:"shard"`
			StartSkewSeconds float64 `json:"start_skew_seconds"`
			OpsPerSec        float64 `json:"ops_per_sec"`
		} `json:"node_windows"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Ops != 15893 || math.Abs(m.DurationSeconds-8.51) > 1e-9 || math.Abs(m.OpsPerSec-15893/8.51) > 1e-6 {
		t.Errorf("merged %d ops in %v s = %v ops/s, want 15893 in 8.51 s = %.1f", m.Ops, m.DurationSeconds,
			m.OpsPerSec, 15893/8.51)
	}
	if m.StartSkewSeconds == nil || *m.StartSkewSeconds != 4.5 || len(m.Warnings) != 1 || len(m.NodeWindows) != 2 ||
		m.NodeWindows[1].Shard != "1/2" || m.NodeWindows[1].StartSkewSeconds != 4.5 ||
		math.Abs(m.NodeWindows[0].OpsPerSec-7950/4.01) > 1e-6 {
		t.Errorf("skew, warnings or node windows wrong: %s", out)
	}

	// Nodes that ran side by side (0.3 s apart): no warning, and the rate is still over the union.
	files = writeNodeReports(t, nodeReportJSON("0/2", t0, 4.01, 7950), nodeReportJSON("1/2", t0+300_000_000, 4.01, 7943))
	code, out, errOut = runCLI(t, append([]string{"report", "merge", "--text"}, files...)...)
	if code != 0 || strings.Contains(errOut, "warning") || !strings.Contains(out, "15893 in 4.31s = 3687 ops/s") {
		t.Errorf("side by side: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestReport_MergeNoLatency: a merge of reports that measured no latency says so (JSON null, text n/a) instead
// of a latency of 0.
func TestReport_MergeNoLatency(t *testing.T) {
	files := writeNodeReports(t, nodeReportJSON("0/1", 1e18, 1, 10))
	code, out, errOut := runCLI(t, "report", "merge", files[0])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	lat := m["latency_us"].(map[string]any)
	for _, k := range []string{"mean", "p50", "p99", "p999", "max"} {
		if v, ok := lat[k]; !ok || v != nil {
			t.Errorf("latency_us.%s = %v, want null", k, v)
		}
	}
	code, out, _ = runCLI(t, "report", "merge", "--text", files[0])
	if code != 0 || !strings.Contains(out, "latency    n/a") || strings.Contains(out, "0.000ms") {
		t.Errorf("text: %s", out)
	}
}
