// The proxy's metrics, registered once per process in VictoriaMetrics/metrics' default set. Keys and values
// never reach a metric: labels are commands, statuses and directions only.
package proxy

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/mcproto"
)

var (
	requestsByCmd   [mcproto.NumCommands]*metrics.Counter
	responsesByStat [mcproto.NumStatuses]*metrics.Counter

	clientBytesIn  = metrics.NewCounter(`membench_proxy_bytes_total{dir="client_to_proxy"}`)
	clientBytesOut = metrics.NewCounter(`membench_proxy_bytes_total{dir="proxy_to_client"}`)
	upBytesOut     = metrics.NewCounter(`membench_proxy_bytes_total{dir="proxy_to_upstream"}`)
	upBytesIn      = metrics.NewCounter(`membench_proxy_bytes_total{dir="upstream_to_proxy"}`)

	connsAccepted   = metrics.NewCounter(`membench_proxy_connections_total`)
	connsRefused    = metrics.NewCounter(`membench_proxy_connections_refused_total`)
	connsIdleClosed = metrics.NewCounter(`membench_proxy_connections_idle_closed_total`)
	connsOverflow   = metrics.NewCounter(`membench_proxy_connections_buffer_closed_total{reason="client_limit"}`)
	connsSlowClosed = metrics.NewCounter(`membench_proxy_connections_request_timeout_closed_total`)
	upConnectErrors = metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="connect"}`)
	upClosedErrors  = metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="closed"}`)
	upBadResponses  = metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="bad_response"}`)
	upSkipped       = metrics.NewCounter(`membench_proxy_upstream_unparsed_bytes_total`)
	clientErrors    = metrics.NewCounter(`membench_proxy_client_protocol_errors_total`)
	localAnswers    = metrics.NewCounter(`membench_proxy_local_answers_total`)

	latency = metrics.NewHistogram(`membench_proxy_latency_seconds`)

	eventsRecorded = metrics.NewCounter(`membench_proxy_events_recorded_total`)
	eventsDropped  = metrics.NewCounter(`membench_proxy_events_dropped_total`)
	eventsSampled  = metrics.NewCounter(`membench_proxy_events_sampled_out_total`)
	orphans        = metrics.NewCounter(`membench_proxy_unpaired_responses_total`)

	openConns atomic.Int64 // client connections of every Server in the process
	_         = metrics.NewGauge(`membench_proxy_connections`, func() float64 { return float64(openConns.Load()) })

	profileBytes atomic.Int64
	_            = metrics.NewGauge(`membench_proxy_profile_bytes_written`, func() float64 {
		return float64(profileBytes.Load())
	})
)

func init() {
	for i := range requestsByCmd {
		requestsByCmd[i] = metrics.NewCounter(`membench_proxy_requests_total{cmd="` + mcproto.Command(i).String() + `"}`)
	}
	for i := range responsesByStat {
		responsesByStat[i] = metrics.NewCounter(`membench_proxy_responses_total{status="` +
			mcproto.Status(i).String() + `"}`)
	}
}

// ReportProfileBytes sets the profile-bytes gauge; the recorder's owner calls it periodically.
func ReportProfileBytes(n int64) { profileBytes.Store(n) }
