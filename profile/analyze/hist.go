// This file holds the one histogram layout every distribution here uses (sizes, TTLs, latencies, stack
// distances): exact below 1 KiB, then 128 buckets per power of two. It is fixed so that two Summaries written by
// different runs can be compared bucket by bucket (Compare's KS distances) without carrying raw samples.

package analyze

import (
	"math"
	"math/bits"
)

const (
	histExactBits = 10 // values below 1<<histExactBits get a bucket each
	histSubBits   = 7  // above, each power of two is split into 1<<histSubBits buckets (width < 0.8%)
	histBuckets   = 1<<histExactBits + (64-histExactBits)<<histSubBits
)

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	if v < 1<<histExactBits {
		return int(v)
	}
	l := uint(bits.Len64(v))
	shift := l - histSubBits - 1
	top := v >> shift // in [1<<histSubBits, 1<<(histSubBits+1))
	return 1<<histExactBits + int(l-histExactBits-1)<<histSubBits + int(top-1<<histSubBits)
}

// bucketLE returns the largest value bucket i holds (its inclusive upper bound).
func bucketLE(i int) uint64 {
	if i < 1<<histExactBits {
		return uint64(i)
	}
	j := i - 1<<histExactBits
	l := uint(j>>histSubBits) + histExactBits + 1
	top := uint64(j&(1<<histSubBits-1)) + 1<<histSubBits
	shift := l - histSubBits - 1
	return (top+1)<<shift - 1 // wraps to MaxUint64 for the last bucket, which is its true bound
}

// hist is a streaming distribution of unsigned values in the fixed bucket layout.
type hist struct {
	n        uint64
	sum      float64
	min, max uint64
	counts   [histBuckets]uint64
}

func (h *hist) add(v uint64) {
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[bucketOf(v)]++
}

// quantile returns the nearest-rank q-quantile: the smallest bucket bound with at least q·n values at or below
// it, clamped to [min, max]. Exact below 1 KiB, within one bucket (< 0.8%) above.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return min(max(bucketLE(i), h.min), h.max)
		}
	}
	return h.max
}

// dist renders h as a Dist, with its non-empty buckets.
func (h *hist) dist() Dist {
	d := Dist{Count: h.n, Hist: [][2]uint64{}}
	if h.n == 0 {
		return d
	}
	d.Min, d.Max = h.min, h.max
	d.Mean = h.sum / float64(h.n)
	d.P50, d.P90, d.P99 = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	for i, c := range h.counts {
		if c != 0 {
			d.Hist = append(d.Hist, [2]uint64{bucketLE(i), c})
		}
	}
	return d
}
