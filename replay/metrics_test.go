package replay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
)

// TestMetrics_ZeroAtStart: every command and every error kind has its series before the first request.
func TestMetrics_ZeroAtStart(t *testing.T) {
	var b bytes.Buffer
	NewMetrics().Set.WritePrometheus(&b)
	text := b.String()
	for i := range mcproto.NumCommands {
		want := `membench_replay_requests_total{cmd="` + mcproto.Command(i).String() + `"} 0` + "\n"
		if !strings.Contains(text, want) {
			t.Fatalf("no %q:\n%s", want, text)
		}
	}
	for _, k := range errKindNames {
		if want := `membench_replay_errors_total{kind="` + k + `"} 0` + "\n"; !strings.Contains(text, want) {
			t.Fatalf("no %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"# TYPE membench_replay_latency_seconds histogram\n",
		`membench_replay_latency_seconds_bucket{le="+Inf"} 0` + "\n", "membench_replay_hits_total 0\n"} {
		if !strings.Contains(text, want) {
			t.Fatalf("no %q:\n%s", want, text)
		}
	}
}

// TestMetrics_LatencyBuckets: the interval histogram's latencies land in the `le` bucket of their value, a value
// on a bound included, and accumulate over intervals.
func TestMetrics_LatencyBuckets(t *testing.T) {
	m := NewMetrics()
	var byCmd [mcproto.NumCommands]uint64
	var byKind [numErrKinds]uint64
	h := newHist()
	for _, us := range []int64{7, 100, 100, 101, 250, 4000} {
		_ = h.RecordValue(us)
	}
	m.update(&byCmd, &byKind, 0, 0, 0, h)
	h.Reset()
	_ = h.RecordValue(100)
	m.update(&byCmd, &byKind, 0, 0, 0, h)
	var b bytes.Buffer
	m.Set.WritePrometheus(&b)
	for _, want := range []string{
		`membench_replay_latency_seconds_bucket{le="5e-06"} 0`,
		`membench_replay_latency_seconds_bucket{le="1e-05"} 1`,
		`membench_replay_latency_seconds_bucket{le="0.0001"} 4`, // 7 µs and three 100 µs
		`membench_replay_latency_seconds_bucket{le="0.00015"} 5`,
		`membench_replay_latency_seconds_bucket{le="0.0003"} 6`,
		`membench_replay_latency_seconds_bucket{le="0.005"} 7`,
		`membench_replay_latency_seconds_count 7`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Fatalf("no %q:\n%s", want, b.String())
		}
	}
}
