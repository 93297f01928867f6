package metricset

import (
	"bytes"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
)

func TestWriteWithHelp(t *testing.T) {
	help := map[string]string{"a_total": "A thing.", "b": "Back\\slash\nand newline."}
	f := func(in, want string) {
		t.Helper()
		var b bytes.Buffer
		writeWithHelp(&b, []byte(in), func(f string) (string, bool) { h := help[f]; return h, h != "" })
		if b.String() != want {
			t.Fatalf("writeWithHelp(%q):\n%s\nwant:\n%s", in, b.String(), want)
		}
	}
	f("# HELP a_total\n# TYPE a_total counter\na_total{x=\"1\"} 0\n",
		"# HELP a_total A thing.\n# TYPE a_total counter\na_total{x=\"1\"} 0\n")
	// An undescribed family is dropped whole; the next described one is kept.
	f("# HELP go_cgo_calls_count\n# TYPE go_cgo_calls_count counter\ngo_cgo_calls_count 3\n"+
		"# HELP b\n# TYPE b gauge\nb 1\n",
		"# HELP b Back\\\\slash\\nand newline.\n# TYPE b gauge\nb 1\n")
	f("", "")
	// Without metadata (no HELP lines) everything passes through.
	f("a_total 1\n", "a_total 1\n")
}

func TestSet_Bugs(t *testing.T) {
	s := New(map[string]string{"x_total": "X.", "g": "G.", "g_total": "Bad.", "lat": "Latency.", "c": "C."})
	f := func(what string, register func()) {
		t.Helper()
		defer func() {
			if r := recover(); r == nil || !strings.HasPrefix(r.(string), "BUG: ") {
				t.Fatalf("%s: recovered %v, want a BUG panic", what, r)
			}
		}()
		register()
	}
	f("undescribed counter", func() { s.NewCounter(`y_total`) })
	f("counter without _total", func() { s.NewCounter(`c`) })
	f("gauge with _total", func() { s.NewGauge(`g_total`, nil) })
	f("latency without _seconds", func() { s.NewLatencyHistogram(`lat`) })
	f("undescribed gauge", func() { s.NewGauge(`h`, nil) })
	s.NewCounter(`x_total{a="b"}`)
	s.NewGauge(`g`, func() float64 { return 1 })
	if got := s.Families(); !slices.Equal(got, []string{"g", "x_total"}) {
		t.Fatalf("Families() = %v", got)
	}
}

func TestLatencyBuckets(t *testing.T) {
	if !slices.IsSorted(LatencyBuckets) || LatencyBuckets[0] != 5e-6 || LatencyBuckets[len(LatencyBuckets)-1] != 10 {
		t.Fatalf("LatencyBuckets = %v", LatencyBuckets)
	}
	for _, b := range LatencyBuckets {
		if s := strconv.FormatFloat(b, 'g', -1, 64); len(s) > 7 {
			t.Fatalf("bucket %v is written as le=%q: not a round decimal", b, s)
		}
	}
}

// TestPromtool: a set with every kind of series, and the process metrics, pass `promtool check metrics`.
func TestPromtool(t *testing.T) {
	promtool := mctest.Require(t, "promtool")
	s := New(map[string]string{
		"t_requests_total": "Requests.", "t_open": "Open things.", "t_latency_seconds": "Latency, in seconds.",
	})
	s.NewCounter(`t_requests_total{cmd="get"}`).Inc()
	s.NewCounter(`t_requests_total{cmd="set"}`)
	s.NewGauge(`t_open`, func() float64 { return 2 })
	s.NewLatencyHistogram(`t_latency_seconds`).Update(0.0004)
	var b bytes.Buffer
	s.WritePrometheus(&b)
	WriteProcessMetrics(&b)
	for _, want := range []string{"# HELP t_requests_total Requests.\n", "# TYPE t_latency_seconds histogram\n",
		`t_latency_seconds_bucket{le="0.0005"} 1`, "# TYPE process_cpu_seconds_total counter\n", "go_goroutines "} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, b.String())
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
