// This file holds the distributions the generators sample: the parametric ones of the built-in presets (GEV,
// generalized Pareto, Zipf) and the empirical ones fitted from a profile (histograms and discrete tables).

package workload

import (
	"math"
	"slices"
	"sort"
)

// GEV is the generalized extreme value distribution with location Mu, scale Sigma and shape K, sampled by
// inversion: x = μ + σ((−ln U)^−k − 1)/k (μ − σ ln(−ln U) when k = 0). This is mutilate's GEV generator.
type GEV struct{ Mu, Sigma, K float64 }

// Quantile returns the value at u in (0, 1).
func (g GEV) Quantile(u float64) float64 {
	if g.K == 0 {
		return g.Mu - g.Sigma*math.Log(-math.Log(u))
	}
	return g.Mu + g.Sigma*(math.Pow(-math.Log(u), -g.K)-1)/g.K
}

// GPareto is the generalized Pareto distribution with location Theta, scale Sigma and shape K, sampled by
// inversion: x = θ + σ(U^−k − 1)/k. This is mutilate's GPareto generator.
type GPareto struct{ Theta, Sigma, K float64 }

// Quantile returns the value at u in (0, 1) (u is the upper-tail probability, as in mutilate).
func (g GPareto) Quantile(u float64) float64 {
	if g.K == 0 {
		return g.Theta - g.Sigma*math.Log(u)
	}
	return g.Theta + g.Sigma*(math.Pow(u, -g.K)-1)/g.K
}

// Zipf draws ranks 0..n-1 with P(rank i) ∝ (i+1)^−s, by Hörmann and Derflinger's rejection-inversion method
// ("Rejection-inversion to generate variates from monotone discrete distributions", ACM TOMACS 1996), which
// needs O(1) memory and time for any n and any s > 0 (including s ≤ 1, which math/rand's Zipf refuses).
type Zipf struct {
	n                     float64
	s                     float64
	hIntegralX1, hIntegrN float64
	sConst                float64
}

// NewZipf returns a Zipf sampler over n ranks with exponent s > 0.
func NewZipf(n uint64, s float64) *Zipf {
	z := &Zipf{n: float64(n), s: s}
	z.hIntegralX1 = z.hIntegral(1.5) - 1
	z.hIntegrN = z.hIntegral(z.n + 0.5)
	z.sConst = 2 - z.hIntegralInv(z.hIntegral(2.5)-z.h(2))
	return z
}

// Next returns a rank in [0, n).
func (z *Zipf) Next(r *Rand) uint64 {
	for {
		u := z.hIntegrN + r.Float64()*(z.hIntegralX1-z.hIntegrN)
		x := z.hIntegralInv(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > z.n {
			k = z.n
		}
		if k-x <= z.sConst || u >= z.hIntegral(k+0.5)-z.h(k) {
			return uint64(k) - 1
		}
	}
}

func (z *Zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

func (z *Zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return helper2((1-z.s)*lx) * lx
}

func (z *Zipf) hIntegralInv(x float64) float64 {
	t := x * (1 - z.s)
	if t < -1 {
		t = -1
	}
	return math.Exp(helper1(t) * x)
}

// helper1 is log1p(x)/x, helper2 is expm1(x)/x, both continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x*(1.0/3)*(1+0.25*x))
}

// Discrete is a table of values with weights, sampled by binary search over the cumulative weights.
type Discrete struct {
	Values []uint64
	cum    []float64
}

// NewDiscrete builds a table from (value, weight) pairs; zero weights are dropped. An empty table returns 0.
func NewDiscrete(values []uint64, weights []float64) *Discrete {
	d := &Discrete{}
	var sum float64
	for i, v := range values {
		if weights[i] <= 0 {
			continue
		}
		sum += weights[i]
		d.Values = append(d.Values, v)
		d.cum = append(d.cum, sum)
	}
	for i := range d.cum {
		d.cum[i] /= sum
	}
	return d
}

// Len returns the number of values with a positive weight.
func (d *Discrete) Len() int { return len(d.Values) }

// Quantile returns the value at cumulative probability u in [0, 1).
func (d *Discrete) Quantile(u float64) uint64 {
	if len(d.Values) == 0 {
		return 0
	}
	i := sort.SearchFloat64s(d.cum, u)
	if i < len(d.cum) && d.cum[i] == u {
		i++
	}
	return d.Values[min(i, len(d.Values)-1)]
}

// Sample returns a random value.
func (d *Discrete) Sample(r *Rand) uint64 { return d.Quantile(r.Float64()) }

// counter accumulates the exact distribution of a small-valued quantity (sizes, counts, TTLs) as value → count.
type counter map[uint64]uint64

func (c counter) add(v uint64) { c[v]++ }

// discrete turns the counts into a sampling table with values in ascending order (deterministic).
func (c counter) discrete() *Discrete {
	vals := make([]uint64, 0, len(c))
	for v := range c {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	w := make([]float64, len(vals))
	for i, v := range vals {
		w[i] = float64(c[v])
	}
	return NewDiscrete(vals, w)
}
