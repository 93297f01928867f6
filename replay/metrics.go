// This file holds replay's metrics: one set per run, served on --metrics-listen and pushed to --metrics-push,
// with every series created at zero before the run starts. Latency is a Prometheus histogram (`le` buckets), so
// the shards' pushes add up in PromQL:
// histogram_quantile(0.99, sum by (le) (membench_replay_latency_seconds_bucket)).

package replay

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/internal/metricset"
	"github.com/membench/membench/mcproto"
)

// replayHelp describes replay's metric families.
var replayHelp = map[string]string{
	"membench_replay_requests_total": "Requests completed, by command.",
	"membench_replay_errors_total": "Requests that failed, by kind: timeout, conn_lost, unavailable, " +
		"server_error, client_error, error, protocol.",
	"membench_replay_hits_total":     "Reads that hit.",
	"membench_replay_misses_total":   "Reads that missed.",
	"membench_replay_ops_per_second": "Requests completed per second over the last progress interval.",
	"membench_replay_latency_seconds": "Latency of answered requests, from the intended send time (open " +
		"loop) or the send time (closed loop) to the response, in seconds.",
}

// Metrics are one replay run's metrics. Run updates them once a second and once more when it ends.
type Metrics struct {
	// Set holds the series, for metricsrv and push.
	Set *metricset.Set

	requests     [mcproto.NumCommands]*metrics.Counter
	errors       [numErrKinds]*metrics.Counter
	hits, misses *metrics.Counter
	rate         *metrics.Gauge
	latency      *metrics.PrometheusHistogram
}

// NewMetrics returns a run's metrics, every series at zero: each command, each error kind.
func NewMetrics() *Metrics {
	m := &Metrics{Set: metricset.New(replayHelp)}
	for i := range m.requests {
		m.requests[i] = m.Set.NewCounter(`membench_replay_requests_total{cmd="` + mcproto.Command(i).String() + `"}`)
	}
	for k := range m.errors {
		m.errors[k] = m.Set.NewCounter(`membench_replay_errors_total{kind="` + errKindNames[k] + `"}`)
	}
	m.hits = m.Set.NewCounter(`membench_replay_hits_total`)
	m.misses = m.Set.NewCounter(`membench_replay_misses_total`)
	m.rate = m.Set.NewGauge(`membench_replay_ops_per_second`, nil)
	m.latency = m.Set.NewLatencyHistogram(`membench_replay_latency_seconds`)
	return m
}

// update sets the run's totals and adds the latencies of the last interval (h, in microseconds) to the latency
// histogram. Each HdrHistogram bucket is added at its highest equivalent value, the value the report's
// percentiles give, so that a PromQL quantile falls in the same `le` bucket as the report's.
func (m *Metrics) update(byCmd *[mcproto.NumCommands]uint64, byKind *[numErrKinds]uint64, hits, misses uint64,
	rate float64, h *hdr.Histogram) {
	for i, n := range byCmd {
		m.requests[i].Set(n)
	}
	for k, n := range byKind {
		m.errors[k].Set(n)
	}
	m.hits.Set(hits)
	m.misses.Set(misses)
	m.rate.Set(rate)
	if h.TotalCount() == 0 {
		return
	}
	for _, bar := range h.Distribution() {
		v := float64(bar.To) / 1e6
		for range bar.Count {
			m.latency.Update(v)
		}
	}
}
