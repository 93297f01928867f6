package analyze

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// modelLRU is the brute-force form of the MRC model documented on Summary: an explicit recency list, and for a
// retrieval a linear scan summing sizes from the top down to the key (the stack distances of the default sizes).
// Beside it, the same sequence of accesses drives one real LRU cache per size (cacheLRU), which is what the
// requested sizes simulate. fill selects the fill_on_miss model, objects the object unit.
type modelLRU struct {
	order   []uint64          // present keys, most recent first
	size    map[uint64]uint64 // latest object size of every key seen
	caps    []uint64
	hits    []uint64 // per cap, stack distances
	sims    []*cacheLRU
	simHits []uint64 // per cap, simulated caches
	n       uint64   // retrievals
	fill    bool
	objects bool
}

func newModelLRU(caps []uint64) *modelLRU {
	m := &modelLRU{size: map[uint64]uint64{}, caps: caps, hits: make([]uint64, len(caps)),
		simHits: make([]uint64, len(caps))}
	for _, c := range caps {
		m.sims = append(m.sims, newCacheLRU(c, false))
	}
	return m
}

func (m *modelLRU) index(k uint64) int { return slices.Index(m.order, k) }

func (m *modelLRU) unit(k uint64) uint64 {
	if m.objects {
		return 1
	}
	return m.size[k]
}

func (m *modelLRU) toFront(k uint64) {
	if i := m.index(k); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	}
	m.order = slices.Insert(m.order, 0, k)
	for _, c := range m.sims {
		c.objects = m.objects
		c.put(k, m.size[k])
	}
}

func (m *modelLRU) drop(k uint64) {
	m.order = slices.Delete(m.order, m.index(k), m.index(k)+1)
	for _, c := range m.sims {
		c.drop(k)
	}
}

// retrieve counts one retrieval of k at every size, before the access moves it.
func (m *modelLRU) retrieve(k uint64) {
	m.n++
	for i, c := range m.sims {
		if c.has(k) {
			m.simHits[i]++
		}
	}
	if m.index(k) < 0 {
		return
	}
	var d uint64
	for _, o := range m.order {
		d += m.unit(o)
		if o == k {
			break
		}
	}
	for i, c := range m.caps {
		if d <= c {
			m.hits[i]++
		}
	}
}

func (m *modelLRU) add(ev *profile.Event) {
	if !ev.Cmd.HasKey() {
		return
	}
	k := ev.KeyHash
	if _, ok := m.size[k]; !ok {
		m.size[k] = uint64(ev.KeySize)
	}
	present := m.index(k) >= 0
	obj := uint64(ev.KeySize) + uint64(ev.ValueSize)
	read := ev.Cmd.IsRetrieval()
	switch {
	case m.fill && read && (ev.Status == mcproto.StatusHit || ev.Status == mcproto.StatusMiss ||
		ev.Status == mcproto.StatusUnknown):
		m.retrieve(k)
		if ev.ValueSize > 0 {
			m.size[k] = obj
		}
		m.toFront(k)
	case read && (ev.Status == mcproto.StatusHit || ev.Status == mcproto.StatusMiss):
		m.retrieve(k)
		if ev.Status == mcproto.StatusHit {
			m.size[k] = obj
			m.toFront(k)
		} else if present {
			m.toFront(k)
		}
	case ev.Cmd.IsStorage():
		switch ev.Status {
		case mcproto.StatusStored, mcproto.StatusNoneExpected, mcproto.StatusExists, mcproto.StatusUnknown:
			if ev.Cmd == mcproto.CmdAppend || ev.Cmd == mcproto.CmdPrepend {
				m.size[k] += uint64(ev.ValueSize)
			} else {
				m.size[k] = obj
			}
			m.toFront(k)
		case mcproto.StatusNotStored:
			if present {
				m.toFront(k)
			}
		}
	case ev.Cmd == mcproto.CmdDelete || ev.Cmd == mcproto.CmdMetaDelete:
		if ev.Status != mcproto.StatusError && ev.Status != mcproto.StatusClientError &&
			ev.Status != mcproto.StatusServerError && present {
			m.drop(k)
		}
	case ev.Cmd == mcproto.CmdTouch || ev.Cmd == mcproto.CmdIncr || ev.Cmd == mcproto.CmdDecr ||
		ev.Cmd == mcproto.CmdMetaArithmetic:
		if present {
			m.toFront(k)
		}
	}
}

func (m *modelLRU) missRatio(i int) float64 { return float64(m.n-m.hits[i]) / float64(m.n) }

func (m *modelLRU) simMissRatio(i int) float64 { return float64(m.n-m.simHits[i]) / float64(m.n) }

// realLRU is an ordinary evict-on-insert LRU cache of a fixed byte capacity in front of a store of live objects
// (stored and not deleted): an access to a live object that misses brings it in, as the client's refill would,
// unless it is larger than the cache. For traces where each key keeps one size the MRC model must agree with it
// exactly: at requested sizes always, at default sizes (stack distances) from the largest object up.
type realLRU struct {
	cap, used uint64
	order     []uint64 // cached keys, most recent first
	size      map[uint64]uint64
	live      map[uint64]bool
	hits, n   uint64
}

func (c *realLRU) index(k uint64) int { return slices.Index(c.order, k) }

func (c *realLRU) insert(k, size uint64) {
	if i := c.index(k); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
		c.used -= c.size[k]
	}
	c.size[k] = size
	if size > c.cap {
		return // not admitted
	}
	c.order = slices.Insert(c.order, 0, k)
	c.used += size
	for c.used > c.cap {
		last := c.order[len(c.order)-1]
		c.order = c.order[:len(c.order)-1]
		c.used -= c.size[last]
	}
}

func (c *realLRU) add(ev *profile.Event) {
	k := ev.KeyHash
	cached := c.index(k) >= 0
	obj := uint64(ev.KeySize) + uint64(ev.ValueSize)
	switch ev.Cmd {
	case mcproto.CmdGet:
		c.n++
		switch {
		case cached:
			c.hits++
			c.insert(k, c.size[k])
		case ev.Status == mcproto.StatusHit:
			c.live[k] = true
			c.insert(k, obj)
		case c.live[k]:
			c.insert(k, c.size[k])
		}
	case mcproto.CmdSet:
		c.live[k] = true
		c.insert(k, obj)
	case mcproto.CmdTouch:
		if c.live[k] {
			c.insert(k, c.size[k])
		}
	case mcproto.CmdDelete:
		c.live[k] = false
		if cached {
			i := c.index(k)
			c.order = slices.Delete(c.order, i, i+1)
			c.used -= c.size[k]
		}
	}
}

// randomTrace builds n events over keys chosen with a skew, each key with its own key size and (if fixed) value
// size. With fixed=false values change size, and appends and deletes occur; with fixed=true the trace is one a
// real LRU must agree with the model on (no deletes: removing a key from the stack lets keys it pushed out count
// as cached again, which a real cache does not do).
func randomTrace(seed uint64, n, keys int, fixed bool) []profile.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	ks := make([]uint16, keys+1)
	vs := make([]uint32, keys+1)
	for i := range ks {
		ks[i] = uint16(1 + rng.IntN(250))
		vs[i] = uint32(math.Exp(rng.Float64() * math.Log(100000)))
	}
	value := func(k int) uint32 {
		if fixed {
			return vs[k]
		}
		return uint32(rng.IntN(int(vs[k]) + 1))
	}
	zipf := newZipfGen(keys, 0.9, seed)
	evs := make([]profile.Event, 0, n)
	for i := range n {
		t := int64(i) * 1e6
		k := zipf.next()
		var ev profile.Event
		switch r := rng.IntN(100); {
		case r < 55:
			ev = getEv(t, k, ks[k], rng.IntN(10) < 7, value(k))
		case r < 80:
			ev = setEv(t, k, ks[k], value(k))
		case r < 85 && fixed:
			ev = getEv(t, k, ks[k], false, 0)
		case r < 85:
			ev = keyEv(t, k, ks[k], mcproto.CmdDelete, mcproto.StatusDeleted)
		case r < 90:
			ev = keyEv(t, k, ks[k], mcproto.CmdTouch, mcproto.StatusTouched)
		case r < 93:
			ev = profile.Event{Time: t, Cmd: mcproto.CmdStats, Status: mcproto.StatusOK, Upstream: -1}
		case fixed:
			ev = getEv(t, k, ks[k], true, value(k))
		case r < 96:
			ev = setEv(t, k, ks[k], value(k))
			ev.Cmd = mcproto.CmdAppend
		case r < 98:
			ev = setEv(t, k, ks[k], value(k))
			ev.Cmd, ev.Status = mcproto.CmdAdd, mcproto.StatusNotStored
		default:
			ev = keyEv(t, k, ks[k], mcproto.CmdIncr, mcproto.StatusOK)
		}
		evs = append(evs, ev)
	}
	return evs
}

func analyze(evs []profile.Event, opts Options) *Summary {
	a := New(opts)
	for i := range evs {
		a.Add(&evs[i])
	}
	return a.Summary()
}

func TestMRC_ExactMatchesModel(t *testing.T) {
	f := func(seed uint64, n, keys int, fixed bool) {
		t.Helper()
		evs := randomTrace(seed, n, keys, fixed)
		caps := []uint64{1, 100, 1000, 5000, 20000, 50000, 100000, 250000, 500000, 1 << 20, 4 << 20, 1 << 40}

		// Caller-chosen sizes: simulated caches.
		s := analyze(evs, Options{MRCSizes: caps})
		if s.MRCMethod != "exact" || s.MRCModel != ModelRecorded || s.MRCUnit != UnitBytes {
			t.Fatalf("seed %d: mrc_method %q model %q unit %q", seed, s.MRCMethod, s.MRCModel, s.MRCUnit)
		}
		m := newModelLRU(caps)
		for i := range evs {
			m.add(&evs[i])
		}
		for i, p := range s.MRC {
			if p.CacheBytes != caps[i] || p.MissRatio != m.simMissRatio(i) {
				t.Fatalf("seed %d: mrc[%d] = %+v, want {%d %v}", seed, i, p, caps[i], m.simMissRatio(i))
			}
		}

		// Default sizes, chosen at the end on bucket bounds.
		s = analyze(evs, Options{})
		if len(s.MRC) < 10 {
			t.Fatalf("seed %d: %d default MRC points, want ≥ 10", seed, len(s.MRC))
		}
		var dcaps []uint64
		for _, p := range s.MRC {
			dcaps = append(dcaps, p.CacheBytes)
		}
		m = newModelLRU(dcaps)
		for i := range evs {
			m.add(&evs[i])
		}
		for i, p := range s.MRC {
			if p.MissRatio != m.missRatio(i) {
				t.Fatalf("seed %d: default mrc[%d] = %+v, want miss ratio %v", seed, i, p, m.missRatio(i))
			}
		}
		for i := 1; i < len(s.MRC); i++ {
			if s.MRC[i].MissRatio > s.MRC[i-1].MissRatio {
				t.Fatalf("seed %d: curve rises at %d: %+v", seed, i, s.MRC)
			}
		}
	}
	f(1, 20000, 300, false)
	f(2, 20000, 2000, false) // more live keys than the initial stack: growth and compaction
	f(3, 5000, 50, false)
	f(4, 30000, 3000, true)
}

func TestMRC_FixedSizesMatchRealLRU(t *testing.T) {
	f := func(seed uint64, n, keys int) {
		t.Helper()
		evs := randomTrace(seed, n, keys, true)
		caps := []uint64{50, 1000, 10000, 40000, 100000, 300000, 1 << 20, 1 << 30}
		s := analyze(evs, Options{MRCSizes: caps})
		for i, c := range caps {
			lru := &realLRU{cap: c, size: map[uint64]uint64{}, live: map[uint64]bool{}}
			for j := range evs {
				lru.add(&evs[j])
			}
			want := float64(lru.n-lru.hits) / float64(lru.n)
			if got := s.MRC[i].MissRatio; got != want {
				t.Fatalf("seed %d: miss ratio at %d bytes = %v, real LRU %v", seed, c, got, want)
			}
		}
	}
	f(11, 20000, 400)
	f(12, 20000, 1500)
}

// TestMRC_ShardsWithinBound checks the sampled curve against the exact one (itself checked against brute force
// above) on traces with many more keys than MaxKeys.
func TestMRC_ShardsWithinBound(t *testing.T) {
	f := func(name string, evs []profile.Event, maxKeys int) {
		t.Helper()
		exact := analyze(evs, Options{MaxKeys: 1 << 22})
		if exact.MRCMethod != "exact" {
			t.Fatalf("%s: reference not exact: %s", name, exact.MRCMethod)
		}
		var caps []uint64
		for _, p := range exact.MRC {
			caps = append(caps, p.CacheBytes)
		}
		s := analyze(evs, Options{MaxKeys: maxKeys, MRCSizes: caps})
		if s.MRCMethod == "exact" || s.MRCErrorBound <= 0 {
			t.Fatalf("%s: mrc_method %q bound %v, want shards", name, s.MRCMethod, s.MRCErrorBound)
		}
		mae := mrcMAE(exact.MRC, s.MRC)
		t.Logf("%s: %s, MAE %.4f, stated bound %.4f", name, s.MRCMethod, mae, s.MRCErrorBound)
		if mae > s.MRCErrorBound {
			t.Fatalf("%s: MAE %.4f exceeds stated bound %.4f", name, mae, s.MRCErrorBound)
		}
	}
	alphas := []float64{0.6, 0.9, 1.2}
	if !fullScale() {
		alphas = alphas[1:2]
	}
	for i, alpha := range alphas {
		const n, keys = 500_000, 100_000
		seed := uint64(i + 1)
		rng := rand.New(rand.NewPCG(seed, 3))
		zipf := newZipfGen(keys, alpha, seed)
		vs := func(k int) uint32 { return uint32(100 + keyHash(k+i)%4000) }
		evs := make([]profile.Event, n)
		for j := range evs {
			k := zipf.next()
			if rng.IntN(10) < 8 {
				evs[j] = getEv(int64(j), k, 40, true, vs(k))
			} else {
				evs[j] = setEv(int64(j), k, 40, vs(k))
			}
			evs[j].KeyHash += seed * 0x1234567 // a different key sample per trace
		}
		f(fmt.Sprintf("zipf(%.1f)", alpha), evs, 4096)
	}
}
