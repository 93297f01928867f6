// The proxy's metrics: one set (Metrics) that only a proxy process serves, with a help text for every family.
// Keys and values never reach a metric: labels are commands, statuses, directions and pool server addresses.
package proxy

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/internal/metricset"
	"github.com/membench/membench/mcproto"
)

// Metrics is the proxy's metric set, for the proxy's /metrics (internal/metricsrv). Every series is created
// at zero when the package loads, except the per-server pool series, created when a pool takes the server up.
var Metrics = metricset.New(map[string]string{
	"membench_proxy_requests_total":  "Client requests by command.",
	"membench_proxy_responses_total": "Request/response pairs by status (hit, miss, stored, ..., lost).",
	"membench_proxy_bytes_total": "Bytes by direction: client_to_proxy, proxy_to_upstream, upstream_to_proxy, " +
		"proxy_to_client.",
	"membench_proxy_connections":       "Open client connections.",
	"membench_proxy_connections_total": "Client connections accepted.",
	"membench_proxy_connections_refused_total": "Client connections refused: max_connections reached, or the " +
		"proxy draining.",
	"membench_proxy_connections_idle_closed_total": "Client connections closed after idle_timeout without traffic.",
	"membench_proxy_connections_request_timeout_closed_total": "Client connections closed because a request " +
		"took longer than request_timeout to arrive.",
	"membench_proxy_connections_buffer_closed_total": "Client connections closed for buffering too much: reason " +
		"client_limit (max_client_buffer) or budget (max_buffered_bytes).",
	"membench_proxy_buffered_bytes": "Bytes held in all connection buffers, as last seen.",
	"membench_proxy_read_pauses_total": "Times reading was paused for back-pressure, on client or upstream " +
		"connections.",
	"membench_proxy_half_closed_connections_total": "Clients answered after they half-closed their connection.",
	"membench_proxy_writes_after_close_total":      "Writes dropped because their connection had already closed.",
	"membench_proxy_upstream_errors_total": "Upstream errors by kind: connect, closed, bad_response, timeout " +
		"(pool mode), auth (pool mode).",
	"membench_proxy_upstream_unparsed_bytes_total": "Upstream bytes skipped: lines no memcached sends.",
	"membench_proxy_client_auth_total": "Pool-mode client logins (client_auth_file): ok, failed, and requests " +
		"refused before a login (unauthenticated).",
	"membench_proxy_client_protocol_errors_total": "Client requests the proxy could not parse.",
	"membench_proxy_local_answers_total":          "Answers the proxy gave itself instead of an upstream.",
	"membench_proxy_unpaired_responses_total":     "Upstream responses that answered no request.",
	"membench_proxy_latency_seconds": "Latency from a request's last byte sent upstream to its response's " +
		"last byte received, in seconds.",
	"membench_proxy_events_recorded_total":    "Events queued for the profile.",
	"membench_proxy_events_dropped_total":     "Events dropped: the recording queue was full, or the profile could not be written.",
	"membench_proxy_events_sampled_out_total": "Events left out by sample_rate.",
	"membench_proxy_profile_write_errors_total": "Failed writes of the profile (a full disk), retries " +
		"included; events are dropped while they last.",
	"membench_proxy_profile_written_bytes_total": "Bytes written to the profile in this run, over all rotated " +
		"files.",
	"membench_proxy_pool_requests_total": "Pool mode: requests sent to each server.",
	"membench_proxy_pool_errors_total":   "Pool mode: failures (connect, timeout, closed) of each server.",
	"membench_proxy_pool_ejections_total": "Pool mode: times each server was taken down after failure_limit " +
		"failures in a row.",
	"membench_proxy_shadow_requests_total": "Pool mode shadowing: requests copied to the shadow pool (sent) " +
		"or not (dropped).",
})

var (
	requestsByCmd   [mcproto.NumCommands]*metrics.Counter
	responsesByStat [mcproto.NumStatuses]*metrics.Counter

	clientBytesIn  = Metrics.NewCounter(`membench_proxy_bytes_total{dir="client_to_proxy"}`)
	clientBytesOut = Metrics.NewCounter(`membench_proxy_bytes_total{dir="proxy_to_client"}`)
	upBytesOut     = Metrics.NewCounter(`membench_proxy_bytes_total{dir="proxy_to_upstream"}`)
	upBytesIn      = Metrics.NewCounter(`membench_proxy_bytes_total{dir="upstream_to_proxy"}`)

	connsAccepted   = Metrics.NewCounter(`membench_proxy_connections_total`)
	connsRefused    = Metrics.NewCounter(`membench_proxy_connections_refused_total`)
	connsIdleClosed = Metrics.NewCounter(`membench_proxy_connections_idle_closed_total`)
	connsOverflow   = Metrics.NewCounter(`membench_proxy_connections_buffer_closed_total{reason="client_limit"}`)
	connsSlowClosed = Metrics.NewCounter(`membench_proxy_connections_request_timeout_closed_total`)
	upConnectErrors = Metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="connect"}`)
	upClosedErrors  = Metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="closed"}`)
	upBadResponses  = Metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="bad_response"}`)
	upSkipped       = Metrics.NewCounter(`membench_proxy_upstream_unparsed_bytes_total`)
	clientErrors    = Metrics.NewCounter(`membench_proxy_client_protocol_errors_total`)
	localAnswers    = Metrics.NewCounter(`membench_proxy_local_answers_total`)

	latency = Metrics.NewLatencyHistogram(`membench_proxy_latency_seconds`)

	eventsRecorded = Metrics.NewCounter(`membench_proxy_events_recorded_total`)
	eventsDropped  = Metrics.NewCounter(`membench_proxy_events_dropped_total`)
	eventsSampled  = Metrics.NewCounter(`membench_proxy_events_sampled_out_total`)
	orphans        = Metrics.NewCounter(`membench_proxy_unpaired_responses_total`)

	// Failed writes of the profile (a full disk), retries included; see CountProfileWriteError.
	profileWriteErrors = Metrics.NewCounter(`membench_proxy_profile_write_errors_total`)

	openConns atomic.Int64 // client connections of every Server in the process
	_         = Metrics.NewGauge(`membench_proxy_connections`, func() float64 { return float64(openConns.Load()) })

	// profileBytes only grows within a run (rotated files included), so it is a counter.
	profileBytes = Metrics.NewCounter(`membench_proxy_profile_written_bytes_total`)
)

func init() {
	for i := range requestsByCmd {
		requestsByCmd[i] = Metrics.NewCounter(`membench_proxy_requests_total{cmd="` + mcproto.Command(i).String() + `"}`)
	}
	for i := range responsesByStat {
		responsesByStat[i] = Metrics.NewCounter(`membench_proxy_responses_total{status="` +
			mcproto.Status(i).String() + `"}`)
	}
}

// CountProfileWriteError counts a failed write of the profile; the recorder's writer calls it (the profile is
// written by the recorder's owner, not by the proxy).
func CountProfileWriteError() { profileWriteErrors.Inc() }

// ReportProfileBytes sets the profile-bytes counter to the bytes written so far in this run; the recorder's
// owner calls it periodically.
func ReportProfileBytes(n int64) { profileBytes.Set(uint64(max(n, 0))) }
