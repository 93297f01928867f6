// The tap's metrics, registered once per process in VictoriaMetrics/metrics' default set with membench_tap_*
// names. The packet loop keeps plain counters (Stats) and publishes their growth here every few thousand
// packets, so counting costs nothing per packet. Keys and values never reach a metric.
package tap

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/mcproto"
)

// counterDef ties one Stats field to one counter.
type counterDef struct {
	c   *metrics.Counter
	get func(*Stats) uint64
}

var (
	statusCounts [mcproto.NumStatuses]*metrics.Counter

	counterDefs = []counterDef{
		{metrics.NewCounter(`membench_tap_packets_total`), func(s *Stats) uint64 { return s.Packets }},
		{metrics.NewCounter(`membench_tap_packets_ignored_total{reason="not_memcached"}`), func(s *Stats) uint64 { return s.Ignored }},
		{metrics.NewCounter(`membench_tap_packets_ignored_total{reason="malformed"}`), func(s *Stats) uint64 { return s.Malformed }},
		{metrics.NewCounter(`membench_tap_packets_ignored_total{reason="fragment"}`), func(s *Stats) uint64 { return s.Fragments }},
		{metrics.NewCounter(`membench_tap_packets_ignored_total{reason="max_flows"}`), func(s *Stats) uint64 { return s.FlowOverflow }},
		{metrics.NewCounter(`membench_tap_packets_ignored_total{reason="encap_closed"}`), func(s *Stats) uint64 { return s.EncapIgnored }},
		{metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="vxlan"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelVXLAN] }},
		{metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="gre"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelGRE] }},
		{metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="erspan"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelERSPAN] }},
		{metrics.NewCounter(`membench_tap_capture_damage_total`), func(s *Stats) uint64 { return s.CaptureDamage }},
		{metrics.NewCounter(`membench_tap_packets_truncated_total`), func(s *Stats) uint64 { return s.Truncated }},
		{metrics.NewCounter(`membench_tap_bytes_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.Bytes[c2s] }},
		{metrics.NewCounter(`membench_tap_bytes_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.Bytes[s2c] }},
		{metrics.NewCounter(`membench_tap_flows_total`), func(s *Stats) uint64 { return s.Flows }},
		{metrics.NewCounter(`membench_tap_flows_closed_total`), func(s *Stats) uint64 { return s.FlowsClosed }},
		{metrics.NewCounter(`membench_tap_flows_expired_total`), func(s *Stats) uint64 { return s.FlowsExpired }},
		{metrics.NewCounter(`membench_tap_retransmitted_segments_total`), func(s *Stats) uint64 { return s.Retransmits }},
		{metrics.NewCounter(`membench_tap_reordered_segments_total`), func(s *Stats) uint64 { return s.Queued }},
		{metrics.NewCounter(`membench_tap_gaps_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.Gaps[c2s] }},
		{metrics.NewCounter(`membench_tap_gaps_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.Gaps[s2c] }},
		{metrics.NewCounter(`membench_tap_lost_bytes_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.LostBytes[c2s] }},
		{metrics.NewCounter(`membench_tap_lost_bytes_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.LostBytes[s2c] }},
		{metrics.NewCounter(`membench_tap_buffer_overflows_total`), func(s *Stats) uint64 { return s.BufferOverflows }},
		{metrics.NewCounter(`membench_tap_resyncs_total`), func(s *Stats) uint64 { return s.Resyncs }},
		{metrics.NewCounter(`membench_tap_skipped_bytes_total{reason="resync"}`), func(s *Stats) uint64 { return s.ResyncSkippedBytes }},
		{metrics.NewCounter(`membench_tap_skipped_bytes_total{reason="unpaired"}`), func(s *Stats) uint64 { return s.SkippedBytes }},
		{metrics.NewCounter(`membench_tap_requests_total`), func(s *Stats) uint64 { return s.Requests }},
		{metrics.NewCounter(`membench_tap_responses_total`), func(s *Stats) uint64 { return s.Responses }},
		{metrics.NewCounter(`membench_tap_unpaired_total{kind="orphan_response"}`), func(s *Stats) uint64 { return s.Orphans }},
		{metrics.NewCounter(`membench_tap_unpaired_total{kind="mismatched_response"}`), func(s *Stats) uint64 { return s.Mismatched }},
		{metrics.NewCounter(`membench_tap_unpaired_total{kind="lost_request"}`), func(s *Stats) uint64 { return s.Lost }},
		{metrics.NewCounter(`membench_tap_unpaired_total{kind="pending_overflow"}`), func(s *Stats) uint64 { return s.PendingOverflow }},
		{metrics.NewCounter(`membench_tap_events_recorded_total`), func(s *Stats) uint64 { return s.Events }},
		{metrics.NewCounter(`membench_tap_events_dropped_total`), func(s *Stats) uint64 { return s.EventsDropped }},
		{metrics.NewCounter(`membench_tap_events_sampled_out_total`), func(s *Stats) uint64 { return s.EventsSampled }},
		{metrics.NewCounter(`membench_tap_drops_total{where="kernel"}`), func(s *Stats) uint64 { return s.KernelDrops }},
		{metrics.NewCounter(`membench_tap_drops_total{where="interface"}`), func(s *Stats) uint64 { return s.InterfaceDrops }},
	}

	activeFlows  atomic.Int64
	bufferedNow  atomic.Int64
	_            = metrics.NewGauge(`membench_tap_flows`, func() float64 { return float64(activeFlows.Load()) })
	_            = metrics.NewGauge(`membench_tap_buffered_bytes`, func() float64 { return float64(bufferedNow.Load()) })
	profileBytes atomic.Int64
	_            = metrics.NewGauge(`membench_tap_profile_bytes_written`, func() float64 {
		return float64(profileBytes.Load())
	})
)

func init() {
	for i := range statusCounts {
		statusCounts[i] = metrics.NewCounter(`membench_tap_events_total{status="` + mcproto.Status(i).String() + `"}`)
	}
}

// ReportProfileBytes sets the profile-bytes gauge; the recorder's owner calls it periodically.
func ReportProfileBytes(n int64) { profileBytes.Store(n) }

// publish adds the counters' growth since the last call to the metrics and refreshes the snapshot.
func (t *Tap) publish(src Source) {
	if t.opts.Flush != nil {
		t.opts.Flush()
	}
	if src != nil && src.Live() {
		t.st.KernelDrops, t.st.InterfaceDrops = src.Drops()
	}
	for _, d := range counterDefs {
		if now, before := d.get(&t.st), d.get(&t.published); now > before {
			d.c.AddInt64(int64(now - before))
		}
	}
	t.published = t.st
	activeFlows.Store(int64(len(t.flows)))
	bufferedNow.Store(int64(t.buffered))
	t.pubMu.Lock()
	t.pub = t.st
	t.pubMu.Unlock()
}
