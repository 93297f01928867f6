// Package metricset holds one mode's metrics: a VictoriaMetrics/metrics Set whose every family has a help text,
// written as Prometheus text that `promtool check metrics` accepts (HELP and TYPE lines, `le` histograms,
// counters ending in _total). Each mode (proxy, tap, replay) owns one Set and only its own process writes it,
// so a proxy never exposes a tap's series and a replay pushes only its own.
//
// It is separate from internal/metricsrv (the HTTP endpoint) so that the modes can define their metrics
// without linking an HTTP server.
package metricset

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

func init() {
	// HELP and TYPE lines on every family: Prometheus needs TYPE to tell a counter from a gauge, and
	// `promtool check metrics` fails without them.
	metrics.ExposeMetadata(true)
}

// LatencyBuckets are the upper bounds, in seconds, of every latency histogram's `le` buckets: 5 µs, then
// 1, 1.5, 2, 3, 5 and 7 per decade from 10 µs to 7 s, then 10 s. A quantile is exact to its bucket: PromQL's
// histogram_quantile interpolates linearly inside it.
var LatencyBuckets = func() []float64 {
	b := []float64{5e-6}
	for exp := -5; exp <= 0; exp++ {
		for _, m := range []string{"1", "1.5", "2", "3", "5", "7"} {
			// Parsed from decimal text, so that the `le` labels read 1.5e-05, not 1.5000000000000002e-05.
			v, err := strconv.ParseFloat(fmt.Sprintf("%se%d", m, exp), 64)
			if err != nil {
				panic("BUG: " + err.Error())
			}
			b = append(b, v)
		}
	}
	return append(b, 10)
}()

// Set is one mode's metrics. Every family is described once in the help table given to New; registering a
// series of an undescribed family, a counter without _total or a latency histogram without _seconds is a BUG.
type Set struct {
	set  *metrics.Set
	help map[string]string // family → help text
}

// New returns an empty Set whose families are described by help (family name → one-line help text).
func New(help map[string]string) *Set {
	return &Set{set: metrics.NewSet(), help: help}
}

// Help returns the help text of a family ("" when it is not described).
func (s *Set) Help(family string) string { return s.help[family] }

// family returns the family name of a series name: the part before `{`.
func family(name string) string {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		return name[:i]
	}
	return name
}

func (s *Set) check(name string) {
	if s.help[family(name)] == "" {
		panic("BUG: metric " + name + " has no help text in its mode's help table")
	}
}

// NewCounter registers a counter series at zero (name may carry labels: `x_total{cmd="get"}`).
func (s *Set) NewCounter(name string) *metrics.Counter {
	s.check(name)
	if !strings.HasSuffix(family(name), "_total") {
		panic("BUG: counter " + name + " must end in _total")
	}
	return s.set.NewCounter(name)
}

// GetOrCreateCounter returns the counter series of that name, registering it at zero the first time (series
// whose label values are only known at run time, such as a pool's servers).
func (s *Set) GetOrCreateCounter(name string) *metrics.Counter {
	s.check(name)
	if !strings.HasSuffix(family(name), "_total") {
		panic("BUG: counter " + name + " must end in _total")
	}
	return s.set.GetOrCreateCounter(name)
}

// NewGauge registers a gauge; f computes its value at each scrape, or is nil for a gauge set with Set.
func (s *Set) NewGauge(name string, f func() float64) *metrics.Gauge {
	s.check(name)
	if strings.HasSuffix(family(name), "_total") {
		panic("BUG: gauge " + name + " must not end in _total")
	}
	return s.set.NewGauge(name, f)
}

// NewLatencyHistogram registers a Prometheus histogram with LatencyBuckets (`le` buckets, _sum and _count), in
// seconds.
func (s *Set) NewLatencyHistogram(name string) *metrics.PrometheusHistogram {
	s.check(name)
	if !strings.HasSuffix(family(name), "_seconds") {
		panic("BUG: latency histogram " + name + " must end in _seconds")
	}
	return s.set.NewPrometheusHistogramExt(name, LatencyBuckets)
}

// Families returns the families registered so far, sorted.
func (s *Set) Families() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range s.set.ListMetricNames() {
		if f := family(n); !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// WritePrometheus writes the Set's series to w in the Prometheus text format, with each family's HELP text.
func (s *Set) WritePrometheus(w io.Writer) {
	var b bytes.Buffer
	s.set.WritePrometheus(&b)
	writeWithHelp(w, b.Bytes(), func(f string) (string, bool) { h := s.help[f]; return h, h != "" })
}

// writeWithHelp copies text to w, filling the empty `# HELP family` lines the library writes with help(family).
// A family help does not know is dropped whole (its HELP and TYPE lines and its samples): the library's process
// metrics include names promtool rejects, and only the ones described in processHelp are kept.
func writeWithHelp(w io.Writer, text []byte, help func(family string) (string, bool)) {
	var out bytes.Buffer
	keep := true
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		if rest, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			f := strings.TrimSpace(string(rest))
			if i := strings.IndexByte(f, ' '); i >= 0 {
				f = f[:i]
			}
			var h string
			h, keep = help(f)
			if keep {
				fmt.Fprintf(&out, "# HELP %s %s\n", f, escapeHelp(h))
			}
			continue
		}
		if keep {
			out.Write(line)
		}
	}
	w.Write(out.Bytes())
}

// escapeHelp escapes a help text as the text format requires (backslash and newline).
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// processHelp describes the process and Go runtime families /metrics keeps from the library's
// WriteProcessMetrics. The others are left out: some break Prometheus' naming rules (go_cgo_calls_count is a
// counter without _total, process_io_read_bytes_total a gauge with it).
var processHelp = map[string]string{
	"process_cpu_seconds_total":        "CPU time the process used, user and system, in seconds.",
	"process_cpu_seconds_user_total":   "CPU time the process used in user space, in seconds.",
	"process_cpu_seconds_system_total": "CPU time the process used in the kernel, in seconds.",
	"process_resident_memory_bytes":    "Resident memory of the process (RSS), in bytes.",
	"process_virtual_memory_bytes":     "Virtual memory of the process, in bytes.",
	"process_start_time_seconds":       "Start time of the process, in seconds since the Unix epoch.",
	"process_num_threads":              "OS threads of the process.",
	"process_open_fds":                 "Open file descriptors of the process.",
	"process_max_fds":                  "Limit of open file descriptors of the process (RLIMIT_NOFILE).",
	"process_major_pagefaults_total":   "Page faults of the process that needed disk I/O.",
	"process_minor_pagefaults_total":   "Page faults of the process resolved without disk I/O.",
	"go_goroutines":                    "Goroutines that currently exist.",
	"go_threads":                       "OS threads created by the Go runtime.",
	"go_gomaxprocs":                    "GOMAXPROCS: CPUs the Go runtime runs goroutines on at once.",
	"go_memstats_alloc_bytes":          "Bytes of allocated heap objects.",
	"go_memstats_alloc_bytes_total":    "Bytes allocated for heap objects since the process started.",
	"go_memstats_heap_inuse_bytes":     "Bytes in in-use heap spans.",
	"go_memstats_sys_bytes":            "Bytes of memory the Go runtime obtained from the OS.",
	"go_memstats_mallocs_total":        "Heap objects allocated since the process started.",
	"go_memstats_frees_total":          "Heap objects freed since the process started.",
	"go_memstats_next_gc_bytes":        "Heap size at which the next garbage collection starts, in bytes.",
	"go_memstats_last_gc_time_seconds": "Time the last garbage collection finished, in seconds since the Unix epoch.",
	"go_gc_duration_seconds":           "Garbage collection pause durations, in seconds.",
	"go_gc_cpu_seconds_total":          "CPU time spent in garbage collection, in seconds.",
	"go_sched_latencies_seconds":       "Time goroutines spent runnable before they ran, in seconds.",
	"go_mutex_wait_seconds_total":      "Time goroutines spent blocked on sync.Mutex and sync.RWMutex, in seconds.",
}

// WriteProcessMetrics writes the process's CPU, memory, file descriptor and Go runtime metrics (the families
// of processHelp) to w with their help texts.
func WriteProcessMetrics(w io.Writer) {
	var b bytes.Buffer
	metrics.WriteProcessMetrics(&b)
	metrics.WriteFDMetrics(&b)
	writeWithHelp(w, b.Bytes(), func(f string) (string, bool) { h := processHelp[f]; return h, h != "" })
}
