// This file holds Compare: distances between two Summaries, computed from the Summaries alone so that saved JSON
// summaries (a production profile and a replay's, say) can be compared without their profiles.

package analyze

import (
	"math"
	"slices"
)

// Comparison sets two Summaries side by side. Deltas are b − a. JSON keys:
//
//	command_mix_l1    float  Σ over commands of |share_a − share_b|, shares of all events; 0 (same mix) to 2.
//	key_size_ks       float  Kolmogorov–Smirnov distance sup_x |F_a(x) − F_b(x)| between the key-size
//	                         distributions, evaluated at every bucket bound of the shared histogram layout (exact
//	                         below 1024 bytes, 0.8% buckets above); 0 if both are empty, 1 if only one is.
//	value_size_ks     float  The same for value sizes.
//	hit_ratio_delta   float  b.hit_ratio − a.hit_ratio.
//	zipf_alpha_delta  float  b.zipf_alpha − a.zipf_alpha.
//	mrc_mae           float  Mean absolute difference of the two miss-ratio curves over the union of both
//	                         curves' cache sizes (absolute bytes), each curve interpolated linearly in log(size)
//	                         between its points and held flat beyond its first and last point; 0 if either
//	                         curve is empty. Symmetric in a and b.
//	a, b              Figures  The raw figures of each side.
type Comparison struct {
	CommandMixL1   float64 `json:"command_mix_l1"`
	KeySizeKS      float64 `json:"key_size_ks"`
	ValueSizeKS    float64 `json:"value_size_ks"`
	HitRatioDelta  float64 `json:"hit_ratio_delta"`
	ZipfAlphaDelta float64 `json:"zipf_alpha_delta"`
	MRCMAE         float64 `json:"mrc_mae"`
	A              Figures `json:"a"`
	B              Figures `json:"b"`
}

// Figures are the raw values a Comparison was computed from, for one side.
type Figures struct {
	Events          uint64             `json:"events"`
	DurationSeconds float64            `json:"duration_seconds"`
	UniqueKeys      uint64             `json:"unique_keys"`
	WorkingSetBytes uint64             `json:"working_set_bytes"`
	HitRatio        float64            `json:"hit_ratio"`
	MultiKeyGets    uint64             `json:"multi_key_gets"`     // as in Summary
	MultiKeyGetKeys uint64             `json:"multi_key_get_keys"` // as in Summary
	ZipfAlpha       float64            `json:"zipf_alpha"`
	CommandMix      map[string]float64 `json:"command_mix"` // command → share of events
	KeySize         Dist               `json:"key_size"`    // without hist
	ValueSize       Dist               `json:"value_size"`  // without hist
	MRC             []MRCPoint         `json:"mrc"`
	MRCMethod       string             `json:"mrc_method"`
}

// Compare returns the distances between a and b.
func Compare(a, b *Summary) *Comparison {
	c := &Comparison{
		A:              figures(a),
		B:              figures(b),
		KeySizeKS:      ks(a.KeySize.Hist, b.KeySize.Hist),
		ValueSizeKS:    ks(a.ValueSize.Hist, b.ValueSize.Hist),
		HitRatioDelta:  b.HitRatio - a.HitRatio,
		ZipfAlphaDelta: b.ZipfAlpha - a.ZipfAlpha,
		MRCMAE:         mrcMAE(a.MRC, b.MRC),
	}
	for name, sa := range c.A.CommandMix {
		c.CommandMixL1 += math.Abs(sa - c.B.CommandMix[name])
	}
	for name, sb := range c.B.CommandMix {
		if _, ok := c.A.CommandMix[name]; !ok {
			c.CommandMixL1 += sb
		}
	}
	return c
}

func figures(s *Summary) Figures {
	f := Figures{
		Events:          s.Events,
		DurationSeconds: s.DurationSeconds,
		UniqueKeys:      s.UniqueKeys,
		WorkingSetBytes: s.WorkingSetBytes,
		HitRatio:        s.HitRatio,
		MultiKeyGets:    s.MultiKeyGets,
		MultiKeyGetKeys: s.MultiKeyGetKeys,
		ZipfAlpha:       s.ZipfAlpha,
		CommandMix:      map[string]float64{},
		KeySize:         s.KeySize,
		ValueSize:       s.ValueSize,
		MRC:             s.MRC,
		MRCMethod:       s.MRCMethod,
	}
	f.KeySize.Hist, f.ValueSize.Hist = nil, nil
	var total uint64
	for _, n := range s.Commands {
		total += n
	}
	for name, n := range s.Commands {
		f.CommandMix[name] = float64(n) / float64(total)
	}
	return f
}

// ks is the Kolmogorov–Smirnov distance between two histograms in the shared layout ([le, count], ascending le).
func ks(a, b [][2]uint64) float64 {
	var na, nb uint64
	for _, x := range a {
		na += x[1]
	}
	for _, x := range b {
		nb += x[1]
	}
	switch {
	case na == 0 && nb == 0:
		return 0
	case na == 0 || nb == 0:
		return 1
	}
	var ca, cb uint64
	var d float64
	for i, j := 0, 0; i < len(a) || j < len(b); {
		// Advance past the next bound, taking every bucket of either side that ends there.
		le := uint64(math.MaxUint64)
		if i < len(a) {
			le = a[i][0]
		}
		if j < len(b) {
			le = min(le, b[j][0])
		}
		for ; i < len(a) && a[i][0] == le; i++ {
			ca += a[i][1]
		}
		for ; j < len(b) && b[j][0] == le; j++ {
			cb += b[j][1]
		}
		d = max(d, math.Abs(float64(ca)/float64(na)-float64(cb)/float64(nb)))
	}
	return d
}

// mrcMAE is the mean absolute difference of two curves over the union of their sizes.
func mrcMAE(a, b []MRCPoint) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	var sizes []uint64
	for _, p := range a {
		sizes = append(sizes, p.CacheBytes)
	}
	for _, p := range b {
		sizes = append(sizes, p.CacheBytes)
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	var sum float64
	for _, c := range sizes {
		sum += math.Abs(interpolateMRC(a, c) - interpolateMRC(b, c))
	}
	return sum / float64(len(sizes))
}

// interpolateMRC evaluates curve (ascending sizes) at size c, linearly in log(size), flat beyond its ends.
func interpolateMRC(curve []MRCPoint, c uint64) float64 {
	i, found := slices.BinarySearchFunc(curve, c, func(p MRCPoint, c uint64) int {
		switch {
		case p.CacheBytes < c:
			return -1
		case p.CacheBytes > c:
			return 1
		}
		return 0
	})
	switch {
	case found:
		return curve[i].MissRatio
	case i == 0:
		return curve[0].MissRatio
	case i == len(curve):
		return curve[len(curve)-1].MissRatio
	}
	lo, hi := curve[i-1], curve[i]
	f := math.Log(float64(c)/float64(lo.CacheBytes)) / math.Log(float64(hi.CacheBytes)/float64(lo.CacheBytes))
	return lo.MissRatio + f*(hi.MissRatio-lo.MissRatio)
}
