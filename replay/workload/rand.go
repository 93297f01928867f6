// This file holds the generator's random numbers: a small PRNG whose output is fixed by this file alone (not by
// the Go release), so that the same seed gives the same request sequence on every build, forever.

package workload

import (
	"math"
	"math/bits"
)

// Rand is xoshiro256** seeded through splitmix64. Not safe for concurrent use.
type Rand struct{ s [4]uint64 }

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand {
	r := &Rand{}
	r.Seed(seed)
	return r
}

// Seed resets r to the sequence of seed.
func (r *Rand) Seed(seed uint64) {
	for i := range r.s {
		seed += 0x9e3779b97f4a7c15
		r.s[i] = Mix64(seed)
	}
}

// Mix64 is splitmix64's finalizer: a bijective 64-bit mix, used to derive seeds and key identities.
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uint64 returns 64 random bits.
func (r *Rand) Uint64() uint64 {
	s := &r.s
	res := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return res
}

// Float64 returns a uniform value in [0, 1).
func (r *Rand) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Open01 returns a uniform value in (0, 1), for logarithms and negative powers.
func (r *Rand) Open01() float64 { return (float64(r.Uint64()>>12) + 0.5) / (1 << 52) }

// Uint64n returns a uniform value in [0, n); n must be > 0 (Lemire's method, unbiased).
func (r *Rand) Uint64n(n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		t := -n % n
		for lo < t {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// Exp returns an exponential value with mean 1.
func (r *Rand) Exp() float64 { return -math.Log(r.Open01()) }
