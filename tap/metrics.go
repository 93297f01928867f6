// The tap's metrics: one set (Metrics) of membench_tap_* series that only a tap process serves. The packet
// loop keeps plain counters (Stats) and publishes their growth here every few thousand packets, so counting
// costs nothing per packet. Keys and values never reach a metric.
package tap

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/internal/metricset"
	"github.com/membench/membench/mcproto"
)

// Metrics is the tap's metric set, for the tap's /metrics (internal/metricsrv). Every series is created at zero
// when the package loads.
var Metrics = metricset.New(map[string]string{
	"membench_tap_packets_total": "Packets read from the source.",
	"membench_tap_packets_ignored_total": "Packets skipped, by reason: not_memcached (not TCP to or from a " +
		"memcached port), malformed, fragment, max_flows, encap_closed (in a tunnel the encap setting leaves " +
		"closed).",
	"membench_tap_tunnelled_packets_total": "Packets decoded inside a tunnel, by encapsulation: vxlan, gre, erspan.",
	"membench_tap_capture_damage_total": "Damaged places in a pcap/pcapng file (records with impossible " +
		"lengths, a cut file).",
	"membench_tap_packets_truncated_total": "Segments cut by the snap length; the missing bytes are gaps.",
	"membench_tap_bytes_total": "Payload bytes delivered in order, by direction: client_to_server, " +
		"server_to_client.",
	"membench_tap_flows":               "TCP connections being followed.",
	"membench_tap_flows_total":         "TCP connections seen.",
	"membench_tap_flows_closed_total":  "TCP connections ended (FIN, RST, idle, end of capture).",
	"membench_tap_flows_expired_total": "TCP connections ended after idle_timeout without packets.",
	"membench_tap_retransmitted_segments_total": "Segments whose bytes had all been delivered already " +
		"(retransmissions).",
	"membench_tap_reordered_segments_total": "Segments that arrived ahead of a missing one, or ahead of their request.",
	"membench_tap_gaps_total": "Sequence gaps (segments the capture lost) by direction: client_to_server, " +
		"server_to_client.",
	"membench_tap_lost_bytes_total": "Bytes missing in sequence gaps, by direction.",
	"membench_tap_buffered_bytes":   "Bytes held for reassembly in all flows.",
	"membench_tap_buffer_overflows_total": "Waits for missing segments ended early because max_flow_buffer or " +
		"max_total_buffer was reached.",
	"membench_tap_resyncs_total": "Times a half-stream found a frame boundary after starting mid-stream or " +
		"after a gap.",
	"membench_tap_skipped_bytes_total": "Stream bytes not framed, by reason: resync (looking for a frame " +
		"boundary), unpaired (answers to unseen requests).",
	"membench_tap_requests_total":  "Requests framed (per key for multi-key gets).",
	"membench_tap_responses_total": "Response frames.",
	"membench_tap_unpaired_total": "Requests or responses without their pair, by kind: orphan_response, " +
		"mismatched_response, lost_request, pending_overflow.",
	"membench_tap_events_total":          "Request/response pairs by status (hit, miss, stored, ..., lost).",
	"membench_tap_events_recorded_total": "Events recorded.",
	"membench_tap_events_dropped_total": "Events dropped: the recording could not keep up, or the profile could " +
		"not be written.",
	"membench_tap_events_sampled_out_total": "Events left out by sample_rate.",
	"membench_tap_drops_total": "Packets the capture lost before the tap saw them (libpcap statistics), by where: " +
		"kernel, interface.",
	"membench_tap_profile_write_errors_total": "Failed writes of the profile (a full disk), retries included; " +
		"events are dropped while they last.",
	"membench_tap_profile_written_bytes_total": "Bytes written to the profile in this run, over all rotated " +
		"files.",
})

// counterDef ties one Stats field to one counter.
type counterDef struct {
	c   *metrics.Counter
	get func(*Stats) uint64
}

var (
	statusCounts [mcproto.NumStatuses]*metrics.Counter

	counterDefs = []counterDef{
		{Metrics.NewCounter(`membench_tap_packets_total`), func(s *Stats) uint64 { return s.Packets }},
		{Metrics.NewCounter(`membench_tap_packets_ignored_total{reason="not_memcached"}`), func(s *Stats) uint64 { return s.Ignored }},
		{Metrics.NewCounter(`membench_tap_packets_ignored_total{reason="malformed"}`), func(s *Stats) uint64 { return s.Malformed }},
		{Metrics.NewCounter(`membench_tap_packets_ignored_total{reason="fragment"}`), func(s *Stats) uint64 { return s.Fragments }},
		{Metrics.NewCounter(`membench_tap_packets_ignored_total{reason="max_flows"}`), func(s *Stats) uint64 { return s.FlowOverflow }},
		{Metrics.NewCounter(`membench_tap_packets_ignored_total{reason="encap_closed"}`), func(s *Stats) uint64 { return s.EncapIgnored }},
		{Metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="vxlan"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelVXLAN] }},
		{Metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="gre"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelGRE] }},
		{Metrics.NewCounter(`membench_tap_tunnelled_packets_total{encap="erspan"}`), func(s *Stats) uint64 { return s.Tunnelled[tunnelERSPAN] }},
		{Metrics.NewCounter(`membench_tap_capture_damage_total`), func(s *Stats) uint64 { return s.CaptureDamage }},
		{Metrics.NewCounter(`membench_tap_packets_truncated_total`), func(s *Stats) uint64 { return s.Truncated }},
		{Metrics.NewCounter(`membench_tap_bytes_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.Bytes[c2s] }},
		{Metrics.NewCounter(`membench_tap_bytes_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.Bytes[s2c] }},
		{Metrics.NewCounter(`membench_tap_flows_total`), func(s *Stats) uint64 { return s.Flows }},
		{Metrics.NewCounter(`membench_tap_flows_closed_total`), func(s *Stats) uint64 { return s.FlowsClosed }},
		{Metrics.NewCounter(`membench_tap_flows_expired_total`), func(s *Stats) uint64 { return s.FlowsExpired }},
		{Metrics.NewCounter(`membench_tap_retransmitted_segments_total`), func(s *Stats) uint64 { return s.Retransmits }},
		{Metrics.NewCounter(`membench_tap_reordered_segments_total`), func(s *Stats) uint64 { return s.Queued }},
		{Metrics.NewCounter(`membench_tap_gaps_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.Gaps[c2s] }},
		{Metrics.NewCounter(`membench_tap_gaps_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.Gaps[s2c] }},
		{Metrics.NewCounter(`membench_tap_lost_bytes_total{dir="client_to_server"}`), func(s *Stats) uint64 { return s.LostBytes[c2s] }},
		{Metrics.NewCounter(`membench_tap_lost_bytes_total{dir="server_to_client"}`), func(s *Stats) uint64 { return s.LostBytes[s2c] }},
		{Metrics.NewCounter(`membench_tap_buffer_overflows_total`), func(s *Stats) uint64 { return s.BufferOverflows }},
		{Metrics.NewCounter(`membench_tap_resyncs_total`), func(s *Stats) uint64 { return s.Resyncs }},
		{Metrics.NewCounter(`membench_tap_skipped_bytes_total{reason="resync"}`), func(s *Stats) uint64 { return s.ResyncSkippedBytes }},
		{Metrics.NewCounter(`membench_tap_skipped_bytes_total{reason="unpaired"}`), func(s *Stats) uint64 { return s.SkippedBytes }},
		{Metrics.NewCounter(`membench_tap_requests_total`), func(s *Stats) uint64 { return s.Requests }},
		{Metrics.NewCounter(`membench_tap_responses_total`), func(s *Stats) uint64 { return s.Responses }},
		{Metrics.NewCounter(`membench_tap_unpaired_total{kind="orphan_response"}`), func(s *Stats) uint64 { return s.Orphans }},
		{Metrics.NewCounter(`membench_tap_unpaired_total{kind="mismatched_response"}`), func(s *Stats) uint64 { return s.Mismatched }},
		{Metrics.NewCounter(`membench_tap_unpaired_total{kind="lost_request"}`), func(s *Stats) uint64 { return s.Lost }},
		{Metrics.NewCounter(`membench_tap_unpaired_total{kind="pending_overflow"}`), func(s *Stats) uint64 { return s.PendingOverflow }},
		{Metrics.NewCounter(`membench_tap_events_recorded_total`), func(s *Stats) uint64 { return s.Events }},
		{Metrics.NewCounter(`membench_tap_events_dropped_total`), func(s *Stats) uint64 { return s.EventsDropped }},
		{Metrics.NewCounter(`membench_tap_events_sampled_out_total`), func(s *Stats) uint64 { return s.EventsSampled }},
		{Metrics.NewCounter(`membench_tap_drops_total{where="kernel"}`), func(s *Stats) uint64 { return s.KernelDrops }},
		{Metrics.NewCounter(`membench_tap_drops_total{where="interface"}`), func(s *Stats) uint64 { return s.InterfaceDrops }},
	}

	activeFlows atomic.Int64
	bufferedNow atomic.Int64
	_           = Metrics.NewGauge(`membench_tap_flows`, func() float64 { return float64(activeFlows.Load()) })
	_           = Metrics.NewGauge(`membench_tap_buffered_bytes`, func() float64 { return float64(bufferedNow.Load()) })
	// profileBytes only grows within a run (rotated files included), so it is a counter.
	profileBytes       = Metrics.NewCounter(`membench_tap_profile_written_bytes_total`)
	profileWriteErrors = Metrics.NewCounter(`membench_tap_profile_write_errors_total`)
)

func init() {
	for i := range statusCounts {
		statusCounts[i] = Metrics.NewCounter(`membench_tap_events_total{status="` + mcproto.Status(i).String() + `"}`)
	}
}

// ReportProfileBytes sets the profile-bytes counter to the bytes written so far in this run; the recorder's
// owner calls it periodically.
func ReportProfileBytes(n int64) { profileBytes.Set(uint64(max(n, 0))) }

// CountProfileWriteError counts a failed write of the profile; the recorder's writer calls it (the profile is
// written by the recorder's owner, not by the tap).
func CountProfileWriteError() { profileWriteErrors.Inc() }

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
