// This file holds Compare: distances between two Summaries, computed from the Summaries alone so that saved JSON
// summaries (a production profile and a replay's, say) can be compared without their profiles.

package analyze

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Comparison sets two Summaries side by side. Deltas are b − a. A distance that needs a figure one side lacks is
// NaN here and null in JSON (never 0, which would read as a perfect match), and Warnings says why. JSON keys:
//
//	command_mix_l1    float  Σ over commands of |share_a − share_b|, shares of all events; 0 (same mix) to 2.
//	                         null if a side has no events.
//	key_size_ks       float  Kolmogorov–Smirnov distance sup_x |F_a(x) − F_b(x)| between the key-size
//	                         distributions, evaluated at every bucket bound of the shared histogram layout (exact
//	                         below 1024 bytes, 0.8% buckets above); null if a side has no keyed events.
//	value_size_ks     float  The same for value sizes; null if a side has none.
//	hit_ratio_delta   float  b.hit_ratio − a.hit_ratio; null if a side has no retrievals answered hit or miss
//	                         (an imported trace records no outcomes).
//	zipf_alpha_delta  float  b.zipf_alpha − a.zipf_alpha; null if a side has fewer than 2 popularity points.
//	mrc_mae           float  Mean absolute difference of the two miss-ratio curves over the union of both
//	                         curves' cache sizes, each curve interpolated linearly in log(size) between its points
//	                         and held flat beyond its first and last point. Symmetric in a and b. null if a curve
//	                         is empty or the two are in different units (mrc_unit).
//	warnings          [string]  One line per null distance, and when the curves follow different models.
//	a, b              Figures  The raw figures of each side (hit_ratio and zipf_alpha null when lacking).
type Comparison struct {
	CommandMixL1   float64  `json:"command_mix_l1"`
	KeySizeKS      float64  `json:"key_size_ks"`
	ValueSizeKS    float64  `json:"value_size_ks"`
	HitRatioDelta  float64  `json:"hit_ratio_delta"`
	ZipfAlphaDelta float64  `json:"zipf_alpha_delta"`
	MRCMAE         float64  `json:"mrc_mae"`
	Warnings       []string `json:"warnings"`
	A              Figures  `json:"a"`
	B              Figures  `json:"b"`
}

// Figures are the raw values a Comparison was computed from, for one side. HitRatio and ZipfAlpha are NaN (JSON
// null) when the side lacks them.
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
	MRCModel        string             `json:"mrc_model"`
	MRCUnit         string             `json:"mrc_unit"`
	MRCMethod       string             `json:"mrc_method"`
}

// NA reports whether a figure or distance is not available (NaN).
func NA(x float64) bool { return math.IsNaN(x) }

// Compare returns the distances between a and b.
func Compare(a, b *Summary) *Comparison {
	c := &Comparison{A: figures(a), B: figures(b), Warnings: []string{}}
	lacks := func(what string, inA, inB bool, why string) bool {
		switch {
		case inA && inB:
			return false
		case inA:
			c.Warnings = append(c.Warnings, what+": n/a, B has "+why)
		case inB:
			c.Warnings = append(c.Warnings, what+": n/a, A has "+why)
		default:
			c.Warnings = append(c.Warnings, what+": n/a, both sides have "+why)
		}
		return true
	}
	nan := math.NaN()

	c.CommandMixL1 = nan
	if !lacks("command mix", len(c.A.CommandMix) > 0, len(c.B.CommandMix) > 0, "no events") {
		c.CommandMixL1 = 0
		for name, sa := range c.A.CommandMix {
			c.CommandMixL1 += math.Abs(sa - c.B.CommandMix[name])
		}
		for name, sb := range c.B.CommandMix {
			if _, ok := c.A.CommandMix[name]; !ok {
				c.CommandMixL1 += sb
			}
		}
	}
	c.KeySizeKS = nan
	if !lacks("key size KS", histCount(a.KeySize.Hist) > 0, histCount(b.KeySize.Hist) > 0, "no keyed events") {
		c.KeySizeKS = ks(a.KeySize.Hist, b.KeySize.Hist)
	}
	c.ValueSizeKS = nan
	if !lacks("value size KS", histCount(a.ValueSize.Hist) > 0, histCount(b.ValueSize.Hist) > 0,
		"no value sizes") {
		c.ValueSizeKS = ks(a.ValueSize.Hist, b.ValueSize.Hist)
	}
	c.HitRatioDelta = nan
	if !lacks("hit ratio", !NA(c.A.HitRatio), !NA(c.B.HitRatio),
		"no retrievals answered hit or miss (an imported trace records no outcomes; see the miss-ratio curve)") {
		c.HitRatioDelta = c.B.HitRatio - c.A.HitRatio
	}
	c.ZipfAlphaDelta = nan
	if !lacks("zipf alpha", !NA(c.A.ZipfAlpha), !NA(c.B.ZipfAlpha), "too few keys for a fit") {
		c.ZipfAlphaDelta = c.B.ZipfAlpha - c.A.ZipfAlpha
	}
	c.MRCMAE = nan
	ua, ub := cmp.Or(a.MRCUnit, UnitBytes), cmp.Or(b.MRCUnit, UnitBytes)
	switch {
	case lacks("miss-ratio curve", len(a.MRC) > 0, len(b.MRC) > 0, "no retrievals for it"):
	case ua != ub:
		c.Warnings = append(c.Warnings, fmt.Sprintf("miss-ratio curve: n/a, A's is in %s and B's in %s "+
			"(--mrc-unit)", ua, ub))
	default:
		c.MRCMAE = mrcMAE(a.MRC, b.MRC)
		if ma, mb := cmp.Or(a.MRCModel, ModelRecorded), cmp.Or(b.MRCModel, ModelRecorded); ma != mb {
			c.Warnings = append(c.Warnings, fmt.Sprintf("miss-ratio curve: A's model is %s and B's %s "+
				"(--mrc-model)", ma, mb))
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
		MRCModel:        cmp.Or(s.MRCModel, ModelRecorded),
		MRCUnit:         cmp.Or(s.MRCUnit, UnitBytes),
		MRCMethod:       s.MRCMethod,
	}
	if s.Hits+s.Misses == 0 {
		f.HitRatio = math.NaN()
	}
	if len(s.Popularity) < 2 {
		f.ZipfAlpha = math.NaN()
	}
	f.KeySize.Hist, f.ValueSize.Hist = nil, nil
	var total uint64
	for _, n := range s.Commands {
		total += n
	}
	for name, n := range s.Commands {
		if total > 0 {
			f.CommandMix[name] = float64(n) / float64(total)
		}
	}
	return f
}

func histCount(h [][2]uint64) (n uint64) {
	for _, x := range h {
		n += x[1]
	}
	return n
}

// jsonFloat is a float64 that marshals NaN as null and null back as NaN.
type jsonFloat float64

func (x jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(x)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}

func (x *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = jsonFloat(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(x))
}

// comparisonJSON is Comparison with its distances as jsonFloat: the outer fields hide the embedded ones.
type comparisonJSON struct {
	*plainComparison
	CommandMixL1   jsonFloat `json:"command_mix_l1"`
	KeySizeKS      jsonFloat `json:"key_size_ks"`
	ValueSizeKS    jsonFloat `json:"value_size_ks"`
	HitRatioDelta  jsonFloat `json:"hit_ratio_delta"`
	ZipfAlphaDelta jsonFloat `json:"zipf_alpha_delta"`
	MRCMAE         jsonFloat `json:"mrc_mae"`
}

type plainComparison Comparison

// MarshalJSON writes NaN distances as null.
func (c Comparison) MarshalJSON() ([]byte, error) {
	return json.Marshal(comparisonJSON{plainComparison: (*plainComparison)(&c),
		CommandMixL1: jsonFloat(c.CommandMixL1), KeySizeKS: jsonFloat(c.KeySizeKS),
		ValueSizeKS: jsonFloat(c.ValueSizeKS), HitRatioDelta: jsonFloat(c.HitRatioDelta),
		ZipfAlphaDelta: jsonFloat(c.ZipfAlphaDelta), MRCMAE: jsonFloat(c.MRCMAE)})
}

// UnmarshalJSON reads null distances as NaN.
func (c *Comparison) UnmarshalJSON(b []byte) error {
	j := comparisonJSON{plainComparison: (*plainComparison)(c)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c.CommandMixL1, c.KeySizeKS, c.ValueSizeKS = float64(j.CommandMixL1), float64(j.KeySizeKS),
		float64(j.ValueSizeKS)
	c.HitRatioDelta, c.ZipfAlphaDelta, c.MRCMAE = float64(j.HitRatioDelta), float64(j.ZipfAlphaDelta),
		float64(j.MRCMAE)
	return nil
}

type figuresJSON struct {
	*plainFigures
	HitRatio  jsonFloat `json:"hit_ratio"`
	ZipfAlpha jsonFloat `json:"zipf_alpha"`
}

type plainFigures Figures

// MarshalJSON writes NaN figures as null.
func (f Figures) MarshalJSON() ([]byte, error) {
	return json.Marshal(figuresJSON{plainFigures: (*plainFigures)(&f), HitRatio: jsonFloat(f.HitRatio),
		ZipfAlpha: jsonFloat(f.ZipfAlpha)})
}

// UnmarshalJSON reads null figures as NaN.
func (f *Figures) UnmarshalJSON(b []byte) error {
	j := figuresJSON{plainFigures: (*plainFigures)(f)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	f.HitRatio, f.ZipfAlpha = float64(j.HitRatio), float64(j.ZipfAlpha)
	return nil
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

// mrcMAE is the mean absolute difference of two curves (in the same unit) over the union of their sizes; NaN if
// either is empty.
func mrcMAE(a, b []MRCPoint) float64 {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN()
	}
	var sizes []uint64
	for _, p := range a {
		sizes = append(sizes, p.Size())
	}
	for _, p := range b {
		sizes = append(sizes, p.Size())
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
		case p.Size() < c:
			return -1
		case p.Size() > c:
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
	f := math.Log(float64(c)/float64(lo.Size())) / math.Log(float64(hi.Size())/float64(lo.Size()))
	return lo.MissRatio + f*(hi.MissRatio-lo.MissRatio)
}
