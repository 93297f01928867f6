// This file holds the run's time series: one Point per second of the measured window (requests, errors, bytes
// each way, latency percentiles and an HdrHistogram snapshot, so that a merge of nodes is exact second by
// second), as memtier_benchmark's "Time-Serie". The once-a-second sampler of progress.go hands each interval's
// figures here; the report gets the series when the run ends.

package replay

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// minLastPoint is the shortest last point: a run that ends just after a whole second adds its last few
// requests to the second before, rather than make a point whose rate is a handful of requests over a few
// milliseconds.
const minLastPoint = 100 * time.Millisecond

// seriesState is what the sampler keeps between points: the totals at the previous point (errors and bytes are
// counted cumulatively) and the previous point's histogram, for a last point folded into it.
type seriesState struct {
	errs, out, in uint64
	last          *hdr.Histogram
}

// addPoint appends the point of the interval that just ended: ops requests completed or failed, errsTotal the
// run's errors so far, h its latencies (taken over: h must not be used after). final marks the run's end. Only
// the sampler goroutine calls it.
func (e *engine) addPoint(h *hdr.Histogram, ops, errsTotal uint64, interval time.Duration, final bool) {
	var out, in uint64
	for _, c := range e.snapshot() {
		out += c.bytesOut.Load()
		in += c.bytesIn.Load()
	}
	st := &e.sampled
	p := Point{Second: len(e.series), Seconds: interval.Seconds(), Ops: ops, Errors: errsTotal - st.errs,
		BytesSent: out - st.out, BytesReceived: in - st.in}
	st.errs, st.out, st.in = errsTotal, out, in
	if final && len(e.series) > 0 && (interval < minLastPoint || p.Ops == 0 && p.Errors == 0) {
		prev := &e.series[len(e.series)-1]
		prev.Seconds += p.Seconds
		prev.Ops += p.Ops
		prev.Errors += p.Errors
		prev.BytesSent += p.BytesSent
		prev.BytesReceived += p.BytesReceived
		st.last.Merge(h)
		prev.finish(st.last)
		return
	}
	if final && p.Ops == 0 && p.Errors == 0 {
		return // a run that measured nothing has no series
	}
	p.finish(h)
	e.series = append(e.series, p)
	st.last = h
}
