// This file holds the deterministic synthetic workload the benchmarks and size tests use: Zipf(α=1.0)
// popularity over 1 M keys, GEV key sizes around 30 bytes, heavy-tailed value sizes, ~30:1 get:set with ~90%
// hits, lognormal latencies clipped to 50–500 µs, 400 connections, events in completion order.

package profile

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"

	"github.com/membench/membench/mcproto"
)

const (
	wlKeys       = 1_000_000
	wlConns      = 400
	wlNamespaces = 20
	wlRate       = 200_000 // requests per second
)

type workloadKeys struct {
	hash  []uint64
	ns    []uint64
	ksize []uint16
	vsize []uint32
	cdf   []float64
}

func newWorkloadKeys(r *rand.Rand, nkeys int) *workloadKeys {
	k := &workloadKeys{
		hash:  make([]uint64, nkeys),
		ns:    make([]uint64, nkeys),
		ksize: make([]uint16, nkeys),
		vsize: make([]uint32, nkeys),
		cdf:   make([]float64, nkeys),
	}
	var nsHash [wlNamespaces]uint64
	for i := range nsHash {
		nsHash[i] = r.Uint64() | 1
	}
	sum := 0.0
	for i := range nkeys {
		k.hash[i] = r.Uint64() | 1
		k.ns[i] = nsHash[r.IntN(wlNamespaces)]
		// GEV(μ=30, σ=8, ξ=0.1) key sizes, clipped to memcached's 1..250.
		u := r.Float64()
		x := 30 + 8*(math.Pow(-math.Log(u), -0.1)-1)/0.1
		k.ksize[i] = uint16(min(max(math.Round(x), 1), 250))
		// Lognormal values, median 300 bytes, heavy tail, clipped to 1 MiB.
		v := math.Exp(math.Log(300) + 1.4*r.NormFloat64())
		k.vsize[i] = uint32(min(max(math.Round(v), 1), 1<<20))
		sum += 1 / float64(i+1) // Zipf α=1.0: rank i+1 has weight 1/(i+1)
		k.cdf[i] = sum
	}
	for i := range k.cdf {
		k.cdf[i] /= sum
	}
	return k
}

func (k *workloadKeys) pick(r *rand.Rand) int {
	return min(sort.SearchFloat64s(k.cdf, r.Float64()), len(k.cdf)-1)
}

// genWorkload returns n events over nkeys keys; the same arguments give the same events.
func genWorkload(n, nkeys int, seed uint64) []Event {
	r := rand.New(rand.NewPCG(seed, 0x6d656d62656e6368))
	keys := newWorkloadKeys(r, nkeys)
	ttls := [...]int64{0, 300, 3600, 86400}
	evs := make([]Event, n)
	t := int64(1_760_000_000) * 1e9
	for i := range evs {
		t += int64(r.ExpFloat64() * 1e9 / wlRate)
		k := keys.pick(r)
		ev := Event{
			Time:     t,
			Conn:     uint64(r.IntN(wlConns)) + 1,
			Proto:    mcproto.ProtoText,
			KeyHash:  keys.hash[k],
			KeySize:  keys.ksize[k],
			NSHash:   keys.ns[k],
			Upstream: -1,
		}
		lat := math.Exp(math.Log(120e3) + 0.6*r.NormFloat64())
		ev.Latency = int64(min(max(lat, 50e3), 500e3))
		if r.IntN(31) == 0 {
			ev.Cmd, ev.Status = mcproto.CmdSet, mcproto.StatusStored
			if r.IntN(20) == 0 { // some sets change the value's size
				keys.vsize[k] = uint32(min(max(math.Round(math.Exp(math.Log(300)+1.4*r.NormFloat64())), 1), 1<<20))
			}
			ev.ValueSize = keys.vsize[k]
			ev.TTL = ttls[keys.ns[k]%uint64(len(ttls))]
		} else {
			ev.Cmd = mcproto.CmdGet
			if r.IntN(10) != 0 {
				ev.Status, ev.ValueSize = mcproto.StatusHit, keys.vsize[k]
			} else {
				ev.Status = mcproto.StatusMiss
			}
		}
		evs[i] = ev
	}
	// Recorders emit events when the response completes.
	slices.SortStableFunc(evs, func(a, b Event) int {
		ea, eb := a.Time+a.Latency, b.Time+b.Latency
		switch {
		case ea < eb:
			return -1
		case ea > eb:
			return 1
		}
		return 0
	})
	return evs
}

var (
	benchOnce   sync.Once
	benchEvents []Event
)

// benchWorkload returns the shared 1 Mi-event workload (generated once per test binary).
func benchWorkload() []Event {
	benchOnce.Do(func() { benchEvents = genWorkload(1<<20, wlKeys, 1) })
	return benchEvents
}
