// This file holds what a report's HTML rendering needs from its histograms: the latency spectrum.

package replay

// LatencySpectrum returns the latency distribution of a command ("all" for every command) as HdrHistogram's
// percentile plots draw it: percentiles (0 to 100) and the latency in µs at each, with 5 points per halving of
// the distance to 100%, so that the tail is as finely drawn as the body. Nil when no latency was measured.
func (r *Report) LatencySpectrum(name string) (pct, us []float64) {
	h := r.hist
	if name != "all" {
		c := r.Commands[name]
		if c == nil {
			return nil, nil
		}
		h = c.hist
	}
	if h == nil || h.TotalCount() == 0 {
		return nil, nil
	}
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		pct = append(pct, b.Quantile)
		us = append(us, float64(b.ValueAt))
	}
	return pct, us
}
