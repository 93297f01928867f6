package analyze

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// zipfGen draws ranks 1..n with P(r) ∝ r^-alpha by inverting the cumulative distribution (math/rand's Zipf
// needs alpha > 1).
type zipfGen struct {
	cdf []float64
	rng *rand.Rand
}

func newZipfGen(n int, alpha float64, seed uint64) *zipfGen {
	cdf := make([]float64, n)
	var sum float64
	for i := range n {
		sum += math.Pow(float64(i+1), -alpha)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipfGen{cdf: cdf, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// next returns a rank in 1..n.
func (z *zipfGen) next() int {
	u := z.rng.Float64()
	return sort.SearchFloat64s(z.cdf, u) + 1
}

// keyHash is the hash a recorder would give the key of rank r (any injective map will do; the analyzer mixes).
func keyHash(r int) uint64 { return uint64(r)*0x2545F4914F6CDD1D + 12345 }

func getEv(t int64, key int, ks uint16, hit bool, vs uint32) profile.Event {
	st := mcproto.StatusMiss
	if hit {
		st = mcproto.StatusHit
	} else {
		vs = 0
	}
	return profile.Event{Time: t, Conn: 1, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet, Status: st,
		KeyHash: keyHash(key), KeySize: ks, ValueSize: vs, Upstream: -1}
}

func setEv(t int64, key int, ks uint16, vs uint32) profile.Event {
	return profile.Event{Time: t, Conn: 1, Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet,
		Status: mcproto.StatusStored, KeyHash: keyHash(key), KeySize: ks, ValueSize: vs, Upstream: -1}
}

func keyEv(t int64, key int, ks uint16, cmd mcproto.Command, st mcproto.Status) profile.Event {
	return profile.Event{Time: t, Conn: 1, Proto: mcproto.ProtoText, Cmd: cmd, Status: st,
		KeyHash: keyHash(key), KeySize: ks, Upstream: -1}
}

// fullScale reports whether the statistical tests run every case. Under -race or -short they keep one case each
// (same assertions, same sizes): the race detector makes them take minutes and finds nothing in this
// single-goroutine package.
func fullScale() bool { return !raceEnabled && !testing.Short() }
