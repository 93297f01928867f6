// This file holds Report, the result of a replay: what `membench replay --json` prints and what `membench
// report merge` adds up across nodes. Every histogram travels inside the JSON as an HdrHistogram snapshot, so a
// merge of node reports has exactly the percentiles one node replaying everything would have had.

package replay

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/membench/membench/mcproto"
)

// ReportSchemaVersion is the version of the report JSON; additions keep it, renames and changes of meaning bump
// it.
const ReportSchemaVersion = 1

// Report is the outcome of one replay, or of several merged. Its JSON schema (docs/WORKLOADS.md repeats it):
//
//	schema_version      int      ReportSchemaVersion.
//	mode                string   "trace" or "synthetic" ("warmup" for a warmup's own report).
//	source              string   The profile path or "workload:NAME".
//	targets             [string] The servers, as given.
//	shard               string   "i/n" of the node; "merged" after report merge.
//	nodes               int      Reports merged into this one (1 for a single node).
//	open_loop           bool     Requests were sent at intended times (--rate, or --speed other than max).
//	target_rate         float    --rate (requests per second, all shards); 0 when not set.
//	start_unix_ns       int      When measuring started (--start-at: that instant, unless the node was late).
//	start_late_seconds  float    How late the node reached --start-at (it then started at once); omitted when it
//	                             was on time or had no --start-at. Merged: the latest node's.
//	duration_seconds    float    Measured time: from start to the last response or failure (closed loop) or to
//	                             the last request sent or failed (open loop, so that the achieved rate is the
//	                             sending rate). Merged: the union of the nodes' windows, from the earliest start
//	                             to the latest end.
//	ops                 uint     Requests completed or failed (noreply requests count when sent).
//	ops_per_sec         float    Closed loop: ops / duration_seconds. Open loop: the sending rate, fitted as the
//	                             least-squares slope of send times against request numbers, so that a sender
//	                             drifting behind shows and one late request at the end does not. Merged: ops /
//	                             duration_seconds, the rate over the union of the windows (each node's own rate
//	                             is in node_windows).
//	errors              uint     Requests that failed: error responses, timeouts, lost connections, unreachable
//	                             targets, unframeable responses.
//	error_ratio         float    errors / ops.
//	errors_by_kind      {kind: uint}  timeout, conn_lost, unavailable, server_error, client_error, error,
//	                             protocol (only non-zero kinds).
//	skipped             uint     Recorded requests not sent: quit, shutdown, watch, lru_crawler, slabs, SASL,
//	                             unknown commands.
//	statuses            {name: uint}  Observed statuses (mcproto.Status names: hit, miss, stored, …).
//	hits, misses        uint     Retrievals answered hit / miss.
//	hit_ratio           float    hits / (hits + misses); 0 without retrievals.
//	multi_key_gets      uint     Text multi-key gets sent (get k1 k2 …, from a trace); each key also counts in ops.
//	multi_key_get_keys  uint     The keys those requests named.
//	recorded_hits, recorded_misses  uint  What the source recorded for the same retrievals.
//	recorded_hit_ratio  float    recorded_hits / (recorded_hits + recorded_misses).
//	latency_us          Latency  All commands, microseconds from the intended send time (open loop) or the
//	                             send time (closed loop) to the last byte of the response; every figure but
//	                             count is null when no latency was measured (all requests failed or noreply).
//	latency_hdr         string   The same latencies as an HdrHistogram V2 compressed snapshot (base64), 1 µs to
//	                             1 h, 2 significant digits. Merging adds these.
//	commands            {cmd: Command}  Per command (mcproto command names: get, set, mg, …).
//	warmup              {keys, errors, seconds}  The warmup pass, when --warmup ran; omitted otherwise.
//	client_cpu_seconds  float    CPU time (user + system) membench used from the start of the measured run to
//	                             its end, warmup excluded: divided by ops, the load generator's own cost per
//	                             request. Merged: the sum over nodes.
//	bytes_sent, bytes_received  uint  Bytes written to and read from the targets' sockets.
//	dial_errors         {target: {failed, first}}  Dials that failed, per target, and the first one's error;
//	                             omitted when every dial succeeded.
//	time_series         [Point]  One point per second of the measured window (memtier's "Time-Serie"). Merged:
//	                             the nodes' points added up second by second, each node's aligned to the nearest
//	                             whole second after the earliest start (exactly, with --start-at).
//	start_skew_seconds  float    Merged: how much later than the first node the last node started; 0 for a node.
//	node_windows        [NodeWindow]  Merged: each node's window and rate; omitted for a node's own report.
//	warnings            [string] Merged: what makes the merged figures misleading (node windows that differ by
//	                             more than MaxWindowSkew); omitted when there is nothing to say.
//
// Latency is {count, mean, p50, p90, p99, p999, max} in microseconds. Command is {ops, errors, hits, misses,
// hit_ratio, recorded_hits, recorded_misses, latency_us, latency_hdr}. Point is {second, seconds, ops,
// ops_per_sec, errors, bytes_sent, bytes_received, bytes_per_sec, latency_us, latency_hdr}: second i covers
// [i, i+1) seconds after start_unix_ns (the last point the rest of the run), seconds is its length, and
// bytes_per_sec counts both directions. NodeWindow is {shard, start_unix_ns, start_skew_seconds,
// duration_seconds, ops, ops_per_sec, start_late_seconds}.
type Report struct {
	SchemaVersion    int                    `json:"schema_version"`
	Mode             string                 `json:"mode"`
	Source           string                 `json:"source"`
	Targets          []string               `json:"targets"`
	Shard            string                 `json:"shard"`
	Nodes            int                    `json:"nodes"`
	OpenLoop         bool                   `json:"open_loop"`
	TargetRate       float64                `json:"target_rate"`
	StartUnixNs      int64                  `json:"start_unix_ns"`
	StartLateSeconds float64                `json:"start_late_seconds,omitempty"`
	DurationSeconds  float64                `json:"duration_seconds"`
	Ops              uint64                 `json:"ops"`
	OpsPerSec        float64                `json:"ops_per_sec"`
	Errors           uint64                 `json:"errors"`
	ErrorRatio       float64                `json:"error_ratio"`
	ErrorsByKind     map[string]uint64      `json:"errors_by_kind"`
	Skipped          uint64                 `json:"skipped"`
	Statuses         map[string]uint64      `json:"statuses"`
	Hits             uint64                 `json:"hits"`
	Misses           uint64                 `json:"misses"`
	HitRatio         float64                `json:"hit_ratio"`
	MultiKeyGets     uint64                 `json:"multi_key_gets"`
	MultiKeyGetKeys  uint64                 `json:"multi_key_get_keys"`
	RecordedHits     uint64                 `json:"recorded_hits"`
	RecordedMisses   uint64                 `json:"recorded_misses"`
	RecordedHitRatio float64                `json:"recorded_hit_ratio"`
	LatencyUs        Latency                `json:"latency_us"`
	LatencyHdr       string                 `json:"latency_hdr"`
	Commands         map[string]*Command    `json:"commands"`
	Warmup           *WarmupReport          `json:"warmup,omitempty"`
	ClientCPUSeconds float64                `json:"client_cpu_seconds"`
	BytesSent        uint64                 `json:"bytes_sent"`
	BytesReceived    uint64                 `json:"bytes_received"`
	DialErrors       map[string]*DialErrors `json:"dial_errors,omitempty"`
	TimeSeries       []Point                `json:"time_series"`
	StartSkewSeconds float64                `json:"start_skew_seconds"`
	NodeWindows      []NodeWindow           `json:"node_windows,omitempty"`
	Warnings         []string               `json:"warnings,omitempty"`

	hist *hdr.Histogram
}

// DialErrors counts the failed dials to one target.
type DialErrors struct {
	Failed uint64 `json:"failed"`
	First  string `json:"first"` // the first failure's error
}

// Point is one second of a run.
type Point struct {
	Second        int     `json:"second"`
	Seconds       float64 `json:"seconds"`
	Ops           uint64  `json:"ops"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	Errors        uint64  `json:"errors"`
	BytesSent     uint64  `json:"bytes_sent"`
	BytesReceived uint64  `json:"bytes_received"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	LatencyUs     Latency `json:"latency_us"`
	LatencyHdr    string  `json:"latency_hdr"`
}

// NodeWindow is one node's measured window in a merged report.
type NodeWindow struct {
	Shard            string  `json:"shard"`
	StartUnixNs      int64   `json:"start_unix_ns"`
	StartSkewSeconds float64 `json:"start_skew_seconds"` // after the earliest node's start
	DurationSeconds  float64 `json:"duration_seconds"`
	Ops              uint64  `json:"ops"`
	OpsPerSec        float64 `json:"ops_per_sec"`
	StartLateSeconds float64 `json:"start_late_seconds,omitempty"`
}

// MaxWindowSkew is how much the nodes' windows (their starts, or their ends) may differ before a merge warns
// that the nodes did not run side by side.
const MaxWindowSkew = time.Second

// Command holds the figures of one command.
type Command struct {
	Ops            uint64  `json:"ops"`
	Errors         uint64  `json:"errors"`
	Hits           uint64  `json:"hits"`
	Misses         uint64  `json:"misses"`
	HitRatio       float64 `json:"hit_ratio"`
	RecordedHits   uint64  `json:"recorded_hits"`
	RecordedMisses uint64  `json:"recorded_misses"`
	LatencyUs      Latency `json:"latency_us"`
	LatencyHdr     string  `json:"latency_hdr"`

	hist *hdr.Histogram
}

// Latency holds latency figures in microseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// MarshalJSON writes null for every figure but the count when nothing was measured: a latency of 0 would read
// as a very fast server.
func (l Latency) MarshalJSON() ([]byte, error) {
	if l.Count == 0 {
		return []byte(`{"count":0,"mean":null,"p50":null,"p90":null,"p99":null,"p999":null,"max":null}`), nil
	}
	type plain Latency
	return json.Marshal(plain(l))
}

// WarmupReport describes the warmup pass.
type WarmupReport struct {
	Keys    uint64  `json:"keys"`
	Errors  uint64  `json:"errors"`
	Seconds float64 `json:"seconds"`
}

func latencyOf(h *hdr.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: uint64(h.TotalCount()),
		Mean:  h.Mean(),
		P50:   float64(h.ValueAtQuantile(50)),
		P90:   float64(h.ValueAtQuantile(90)),
		P99:   float64(h.ValueAtQuantile(99)),
		P999:  float64(h.ValueAtQuantile(99.9)),
		Max:   float64(h.Max()),
	}
}

func encodeHist(h *hdr.Histogram) string {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		panic("BUG: cannot encode a latency histogram: " + err.Error())
	}
	return string(b)
}

func decodeHist(s string) (*hdr.Histogram, error) {
	if s == "" {
		return newHist(), nil
	}
	return hdr.Decode([]byte(s))
}

// buildReport adds up the statistics of every connection.
func buildReport(all []*stats) *Report {
	r := &Report{SchemaVersion: ReportSchemaVersion, Nodes: 1, Commands: map[string]*Command{}, hist: newHist()}
	var errs [numErrKinds]uint64
	var statuses [mcproto.NumStatuses]uint64
	for _, s := range all {
		s.mu.Lock()
		for i, cs := range s.cmds {
			if cs == nil {
				continue
			}
			name := mcproto.Command(i).String()
			c := r.Commands[name]
			if c == nil {
				c = &Command{hist: newHist()}
				r.Commands[name] = c
			}
			c.Ops += cs.ops
			c.Errors += cs.errors
			c.Hits += cs.hits
			c.Misses += cs.misses
			c.RecordedHits += cs.recHits
			c.RecordedMisses += cs.recMis
			c.hist.Merge(cs.lat)
		}
		for i, n := range s.errs {
			errs[i] += n
		}
		for i, n := range s.statuses {
			statuses[i] += n
		}
		r.MultiKeyGets += s.multiGets
		r.MultiKeyGetKeys += s.multiKeys
		s.mu.Unlock()
	}
	r.ErrorsByKind = map[string]uint64{}
	for i, n := range errs {
		if n > 0 {
			r.ErrorsByKind[errKindNames[i]] = n
		}
	}
	r.Statuses = map[string]uint64{}
	for i, n := range statuses {
		if n > 0 {
			r.Statuses[mcproto.Status(i).String()] = n
		}
	}
	r.finish()
	return r
}

// finish derives totals, ratios, percentiles and snapshots from the per-command figures and histograms.
func (r *Report) finish() {
	r.Ops, r.Errors, r.Hits, r.Misses, r.RecordedHits, r.RecordedMisses = 0, 0, 0, 0, 0, 0
	r.hist = newHist()
	names := make([]string, 0, len(r.Commands))
	for n := range r.Commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := r.Commands[n]
		r.Ops += c.Ops
		r.Errors += c.Errors
		r.Hits += c.Hits
		r.Misses += c.Misses
		r.RecordedHits += c.RecordedHits
		r.RecordedMisses += c.RecordedMisses
		c.HitRatio = ratio(c.Hits, c.Hits+c.Misses)
		c.LatencyUs = latencyOf(c.hist)
		c.LatencyHdr = encodeHist(c.hist)
		r.hist.Merge(c.hist)
	}
	r.HitRatio = ratio(r.Hits, r.Hits+r.Misses)
	r.RecordedHitRatio = ratio(r.RecordedHits, r.RecordedHits+r.RecordedMisses)
	r.ErrorRatio = ratio(r.Errors, r.Ops)
	r.LatencyUs = latencyOf(r.hist)
	r.LatencyHdr = encodeHist(r.hist)
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport decodes a report written by WriteJSON, histograms included.
func ReadReport(rd io.Reader, name string) (*Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("cannot read report %s: %w", name, err)
	}
	if r.SchemaVersion != ReportSchemaVersion {
		return nil, fmt.Errorf("cannot read report %s: schema_version %d, this membench reads %d", name,
			r.SchemaVersion, ReportSchemaVersion)
	}
	var err error
	if r.hist, err = decodeHist(r.LatencyHdr); err != nil {
		return nil, fmt.Errorf("cannot read report %s: latency_hdr: %w", name, err)
	}
	for n, c := range r.Commands {
		if c == nil {
			return nil, fmt.Errorf("cannot read report %s: commands.%s is null", name, n)
		}
		if c.hist, err = decodeHist(c.LatencyHdr); err != nil {
			return nil, fmt.Errorf("cannot read report %s: commands.%s.latency_hdr: %w", name, n, err)
		}
	}
	if r.Nodes < 1 {
		r.Nodes = 1
	}
	return &r, nil
}

// Merge adds up node reports: counts and histograms add exactly (percentiles are recomputed from the merged
// histograms). The merged window is the union of the nodes' windows, from the earliest start to the latest end,
// and ops_per_sec is the requests over it: nodes that ran one after the other do not add up to a rate none of
// them sent at. Each node's window and rate is kept in NodeWindows, and a merge of windows that differ by more
// than MaxWindowSkew says so in Warnings.
func Merge(reports []*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("nothing to merge: give at least one report")
	}
	m := &Report{SchemaVersion: ReportSchemaVersion, Shard: "merged", Commands: map[string]*Command{},
		ErrorsByKind: map[string]uint64{}, Statuses: map[string]uint64{}}
	targets := map[string]bool{}
	for i, r := range reports {
		if r.hist == nil {
			return nil, fmt.Errorf("BUG: report %d has no decoded histogram", i)
		}
		if i == 0 {
			m.Mode, m.Source, m.OpenLoop = r.Mode, r.Source, r.OpenLoop
		}
		if r.Mode != m.Mode || r.Source != m.Source {
			return nil, fmt.Errorf("cannot merge report %d (%s %s) with report 0 (%s %s): different runs",
				i, r.Mode, r.Source, m.Mode, m.Source)
		}
		m.Nodes += r.Nodes
		m.TargetRate = max(m.TargetRate, r.TargetRate)
		m.StartLateSeconds = max(m.StartLateSeconds, r.StartLateSeconds)
		m.ClientCPUSeconds += r.ClientCPUSeconds
		m.BytesSent += r.BytesSent
		m.BytesReceived += r.BytesReceived
		m.Skipped += r.Skipped
		m.MultiKeyGets += r.MultiKeyGets
		m.MultiKeyGetKeys += r.MultiKeyGetKeys
		m.NodeWindows = append(m.NodeWindows, r.windows()...)
		for _, t := range r.Targets {
			if !targets[t] {
				targets[t] = true
				m.Targets = append(m.Targets, t)
			}
		}
		for k, n := range r.ErrorsByKind {
			m.ErrorsByKind[k] += n
		}
		for k, n := range r.Statuses {
			m.Statuses[k] += n
		}
		for t, d := range r.DialErrors {
			if m.DialErrors == nil {
				m.DialErrors = map[string]*DialErrors{}
			}
			if md := m.DialErrors[t]; md != nil {
				md.Failed += d.Failed
			} else {
				m.DialErrors[t] = &DialErrors{Failed: d.Failed, First: d.First}
			}
		}
		for name, c := range r.Commands {
			mc := m.Commands[name]
			if mc == nil {
				mc = &Command{hist: newHist()}
				m.Commands[name] = mc
			}
			mc.Ops += c.Ops
			mc.Errors += c.Errors
			mc.Hits += c.Hits
			mc.Misses += c.Misses
			mc.RecordedHits += c.RecordedHits
			mc.RecordedMisses += c.RecordedMisses
			if dropped := mc.hist.Merge(c.hist); dropped != 0 {
				return nil, fmt.Errorf("cannot merge report %d: %d latencies of %s outside the histogram range",
					i, dropped, name)
			}
		}
		if r.Warmup != nil {
			if m.Warmup == nil {
				m.Warmup = &WarmupReport{}
			}
			m.Warmup.Keys += r.Warmup.Keys
			m.Warmup.Errors += r.Warmup.Errors
			m.Warmup.Seconds = max(m.Warmup.Seconds, r.Warmup.Seconds)
		}
	}
	m.mergeWindows()
	series, err := mergeSeries(reports, m.StartUnixNs)
	if err != nil {
		return nil, err
	}
	m.TimeSeries = series
	slices.SortFunc(m.Targets, cmp.Compare[string])
	m.finish()
	if m.DurationSeconds > 0 {
		m.OpsPerSec = float64(m.Ops) / m.DurationSeconds
	}
	return m, nil
}

// windows returns r's node windows: its own, or those of the nodes a merged report was made of.
func (r *Report) windows() []NodeWindow {
	if len(r.NodeWindows) > 0 {
		return slices.Clone(r.NodeWindows)
	}
	return []NodeWindow{{Shard: r.Shard, StartUnixNs: r.StartUnixNs, DurationSeconds: r.DurationSeconds,
		Ops: r.Ops, OpsPerSec: r.OpsPerSec, StartLateSeconds: r.StartLateSeconds}}
}

// mergeWindows sets the merged window (the union of the node windows), each node's start skew, and the warning
// when the windows differ by more than MaxWindowSkew.
func (m *Report) mergeWindows() {
	w := m.NodeWindows
	end := func(n NodeWindow) int64 { return n.StartUnixNs + int64(math.Round(n.DurationSeconds*1e9)) }
	first, last := w[0].StartUnixNs, w[0].StartUnixNs
	firstEnd, lastEnd := end(w[0]), end(w[0])
	for _, n := range w[1:] {
		first, last = min(first, n.StartUnixNs), max(last, n.StartUnixNs)
		firstEnd, lastEnd = min(firstEnd, end(n)), max(lastEnd, end(n))
	}
	m.StartUnixNs = first
	m.DurationSeconds = float64(lastEnd-first) / 1e9
	m.StartSkewSeconds = float64(last-first) / 1e9
	for i := range w {
		w[i].StartSkewSeconds = float64(w[i].StartUnixNs-first) / 1e9
	}
	if skew := max(last-first, lastEnd-firstEnd); skew > int64(MaxWindowSkew) {
		m.Warnings = append(m.Warnings, fmt.Sprintf("node windows differ by %.2fs (starts %.2fs apart, ends %.2fs "+
			"apart), more than %s: the nodes did not run side by side, so ops_per_sec is the rate over the union of "+
			"the windows (%.2fs), not what they sent together while all ran; start the nodes with --start-at",
			float64(skew)/1e9, float64(last-first)/1e9, float64(lastEnd-firstEnd)/1e9, MaxWindowSkew,
			m.DurationSeconds))
	}
}

// mergeSeries adds up the reports' time series second by second, each report's aligned to the nearest whole
// second after start (the merged start).
func mergeSeries(reports []*Report, start int64) ([]Point, error) {
	var out []Point
	var hists []*hdr.Histogram
	for i, r := range reports {
		off := int(math.Round(float64(r.StartUnixNs-start) / 1e9))
		for _, p := range r.TimeSeries {
			h, err := decodeHist(p.LatencyHdr)
			if err != nil {
				return nil, fmt.Errorf("cannot merge report %d: time_series[%d].latency_hdr: %w", i, p.Second, err)
			}
			k := off + p.Second
			if k < 0 || p.Second < 0 {
				return nil, fmt.Errorf("cannot merge report %d: time_series second %d", i, p.Second)
			}
			for len(out) <= k {
				out = append(out, Point{Second: len(out)})
				hists = append(hists, newHist())
			}
			o := &out[k]
			o.Seconds = max(o.Seconds, p.Seconds)
			o.Ops += p.Ops
			o.Errors += p.Errors
			o.BytesSent += p.BytesSent
			o.BytesReceived += p.BytesReceived
			hists[k].Merge(h)
		}
	}
	for i := range out {
		out[i].finish(hists[i])
	}
	return out, nil
}

// finish derives p's rates, percentiles and snapshot from its counts and h.
func (p *Point) finish(h *hdr.Histogram) {
	p.OpsPerSec, p.BytesPerSec = 0, 0
	if p.Seconds > 0 {
		p.OpsPerSec = float64(p.Ops) / p.Seconds
		p.BytesPerSec = float64(p.BytesSent+p.BytesReceived) / p.Seconds
	}
	p.LatencyUs = latencyOf(h)
	p.LatencyHdr = encodeHist(h)
}

// PercentileNames returns what WritePercentiles can write: "all" and each command with latencies, sorted; none
// when no latency was measured.
func (r *Report) PercentileNames() []string {
	var names []string
	for n, c := range r.Commands {
		if c.hist != nil && c.hist.TotalCount() > 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) > 0 {
		names = append([]string{"all"}, names...)
	}
	return names
}

// WritePercentiles writes the latency distribution of a command (or "all") in HdrHistogram's percentile
// distribution format (.hgrm, as HdrHistogram's HistogramLogProcessor and the plotter at
// hdrhistogram.github.io/HdrHistogram/plotFiles.html read it), values in milliseconds.
func (r *Report) WritePercentiles(w io.Writer, name string) error {
	h := r.hist
	if name != "all" {
		c := r.Commands[name]
		if c == nil {
			return fmt.Errorf("no command %q in the report", name)
		}
		h = c.hist
	}
	if h == nil || h.TotalCount() == 0 {
		return fmt.Errorf("no latency of %s was measured", name)
	}
	_, err := h.PercentilesPrint(w, 5, 1000)
	return err
}
