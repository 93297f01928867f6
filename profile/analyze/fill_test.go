package analyze

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// cacheLRU is a real evict-on-insert LRU cache of a fixed capacity, as libCacheSim's LRU and memcached run one:
// an object larger than the cache is not admitted (and a cached copy of it is dropped), a hit moves the object
// to the most-recently-used end, an admitted insert evicts from the least-recently-used end until it fits.
// Capacity and sizes are in bytes, or in objects (every object counts 1) when objects is set.
type cacheLRU struct {
	cap     uint64
	objects bool
	order   []uint64 // cached keys, most recent first
	size    map[uint64]uint64
	used    uint64
}

func newCacheLRU(c uint64, objects bool) *cacheLRU {
	return &cacheLRU{cap: c, objects: objects, size: map[uint64]uint64{}}
}

func (c *cacheLRU) has(k uint64) bool { return slices.Contains(c.order, k) }

func (c *cacheLRU) drop(k uint64) {
	if i := slices.Index(c.order, k); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
		c.used -= c.size[k]
		delete(c.size, k)
	}
}

// put makes k the most recent object with the given size, if it fits at all.
func (c *cacheLRU) put(k, size uint64) {
	if c.objects {
		size = 1
	}
	c.drop(k)
	if size > c.cap {
		return
	}
	c.order = slices.Insert(c.order, 0, k)
	c.size[k] = size
	c.used += size
	for c.used > c.cap {
		last := c.order[len(c.order)-1]
		c.drop(last)
	}
}

// fillOnMissLRU runs evs through a cacheLRU the way libCacheSim runs a trace of reads: a read hits iff its
// object is cached, and a miss inserts it with the read's size. It returns the misses among reads.
func fillOnMissLRU(evs []profile.Event, c uint64, objects bool) (reads, misses uint64) {
	lru := newCacheLRU(c, objects)
	for i := range evs {
		ev := &evs[i]
		size := uint64(ev.KeySize) + uint64(ev.ValueSize)
		reads++
		if lru.has(ev.KeyHash) {
			lru.put(ev.KeyHash, lru.size[ev.KeyHash])
			continue
		}
		misses++
		lru.put(ev.KeyHash, size)
	}
	return reads, misses
}

// readEv is a get whose outcome was not recorded, as an imported trace has: the size is the object's.
func readEv(t int64, key int, size uint32) profile.Event {
	ks := uint16(min(size, 16))
	return profile.Event{Time: t, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet, Status: mcproto.StatusUnknown,
		KeyHash: keyHash(key), KeySize: ks, ValueSize: size - uint32(ks), Upstream: -1}
}

// importedTrace is an oracleGeneral-like trace: reads only, each object with one size, some of them larger than
// the smaller caches the tests use.
func importedTrace(seed uint64, n, keys int) []profile.Event {
	rng := rand.New(rand.NewPCG(seed, 5))
	sizes := make([]uint32, keys+1)
	for i := range sizes {
		sizes[i] = uint32(512 * (1 + rng.IntN(16)))
		if rng.IntN(50) == 0 {
			sizes[i] = uint32(64<<10 + rng.IntN(64<<10)) // a few large objects
		}
	}
	z := newZipfGen(keys, 0.8, seed)
	evs := make([]profile.Event, n)
	for i := range evs {
		k := z.next()
		evs[i] = readEv(int64(i)*1e6, k, sizes[k])
	}
	return evs
}

// TestMRC_UnknownReadsFillOnMiss: reads whose outcome was not recorded (imported traces) are simulated as
// libCacheSim does, a miss filling the cache, and the curve at the requested sizes is the real LRU cache's.
func TestMRC_UnknownReadsFillOnMiss(t *testing.T) {
	evs := importedTrace(1, 20000, 2000)
	caps := []uint64{4 << 10, 20 << 10, 64 << 10, 100 << 10, 256 << 10, 1 << 20, 4 << 20, 1 << 30}
	s := analyze(evs, Options{MRCSizes: caps})
	if len(s.MRC) != len(caps) {
		t.Fatalf("mrc %+v, want %d points", s.MRC, len(caps))
	}
	for i, c := range caps {
		reads, misses := fillOnMissLRU(evs, c, false)
		if want := float64(misses) / float64(reads); s.MRC[i].MissRatio != want {
			t.Fatalf("miss ratio at %d B = %v, LRU with fill on miss %v (%d of %d)", c, s.MRC[i].MissRatio, want,
				misses, reads)
		}
	}
	if d := analyze(evs, Options{}); len(d.MRC) < 10 {
		t.Fatalf("default curve of an imported trace: %+v", d.MRC)
	}
}

// TestMRC_LargerThanCacheNotAdmitted is the case: A (100 B), B (1000 B), A (100 B) in a 500 B cache.
// B does not fit, so it is not admitted and A stays: one hit in three reads, as libCacheSim and memcached have it.
func TestMRC_LargerThanCacheNotAdmitted(t *testing.T) {
	evs := []profile.Event{readEv(1, 1, 100), readEv(2, 2, 1000), readEv(3, 1, 100)}
	s := analyze(evs, Options{MRCSizes: []uint64{500}})
	if len(s.MRC) != 1 || s.MRC[0].MissRatio != 2.0/3 {
		t.Errorf("mrc %+v, want miss ratio 2/3 at 500 B", s.MRC)
	}
	// The same with recorded outcomes: A stored and read, B stored, A read again.
	evs = []profile.Event{setEv(1, 1, 20, 80), getEv(2, 1, 20, true, 80), setEv(3, 2, 20, 980),
		getEv(4, 1, 20, true, 80)}
	s = analyze(evs, Options{MRCSizes: []uint64{500}})
	if len(s.MRC) != 1 || s.MRC[0].MissRatio != 0 {
		t.Fatalf("recorded: mrc %+v, want miss ratio 0 at 500 B", s.MRC)
	}
}

// TestSummary_ImportedSizes: an imported trace's reads carry their object's size, so the working set and the
// value sizes are the trace's.
func TestSummary_ImportedSizes(t *testing.T) {
	evs := []profile.Event{readEv(1, 1, 600), readEv(2, 2, 70000), readEv(3, 1, 600)}
	s := analyze(evs, Options{})
	if s.WorkingSetBytes != 70600 || s.ValueSize.Count != 3 || s.ValueSize.Max != 70000-16 {
		t.Fatalf("working set %d, value size %+v", s.WorkingSetBytes, s.ValueSize)
	}
}

// TestMRC_Models: the model follows what the profile holds unless chosen, and each model's curve is its brute-force
// form's, at requested sizes (simulated caches) and at default sizes (stack distances), in bytes and in objects.
func TestMRC_Models(t *testing.T) {
	f := func(name string, evs []profile.Event, opts Options, wantModel string) {
		t.Helper()
		caps := []uint64{1, 3, 10, 50, 100, 1000, 5000, 20000, 100000, 1 << 20, 1 << 30}
		opts.MRCSizes = caps
		s := analyze(evs, opts)
		if s.MRCModel != wantModel || s.MRCUnit != cmpOr(opts.MRCUnit, UnitBytes) {
			t.Fatalf("%s: model %q unit %q, want %q", name, s.MRCModel, s.MRCUnit, wantModel)
		}
		m := newModelLRU(caps)
		m.fill, m.objects = wantModel == ModelFillOnMiss, opts.MRCUnit == UnitObjects
		for i := range evs {
			m.add(&evs[i])
		}
		if s.MRCReads != m.n {
			t.Fatalf("%s: mrc_reads %d, want %d", name, s.MRCReads, m.n)
		}
		for i, p := range s.MRC {
			if p.Size() != caps[i] || p.MissRatio != m.simMissRatio(i) {
				t.Fatalf("%s: mrc[%d] = %+v, want {%d %v}", name, i, p, caps[i], m.simMissRatio(i))
			}
		}
		opts.MRCSizes = nil
		d := analyze(evs, opts)
		if len(d.MRC) == 0 || d.MRC[0].Size() < d.MRCLargestObject {
			t.Fatalf("%s: default curve %+v starts below the largest object %d", name, d.MRC, d.MRCLargestObject)
		}
		var dcaps []uint64
		for _, p := range d.MRC {
			dcaps = append(dcaps, p.Size())
		}
		m = newModelLRU(dcaps)
		m.fill, m.objects = wantModel == ModelFillOnMiss, opts.MRCUnit == UnitObjects
		for i := range evs {
			m.add(&evs[i])
		}
		for i, p := range d.MRC {
			if p.MissRatio != m.missRatio(i) {
				t.Fatalf("%s: default mrc[%d] = %+v, want %v", name, i, p, m.missRatio(i))
			}
		}
	}
	recorded := randomTrace(21, 6000, 600, false)
	imported := importedTrace(22, 6000, 600)
	f("recorded", recorded, Options{}, ModelRecorded)
	f("recorded, objects", recorded, Options{MRCUnit: UnitObjects}, ModelRecorded)
	f("recorded as fill_on_miss", recorded, Options{MRCModel: ModelFillOnMiss}, ModelFillOnMiss)
	f("imported", imported, Options{}, ModelFillOnMiss)
	f("imported, objects", imported, Options{MRCUnit: UnitObjects}, ModelFillOnMiss)
	// A trace with stores, deletes and unknown outcomes (a Twitter import): fill on miss, stores and deletes as
	// recorded.
	mixed := randomTrace(23, 6000, 600, false)
	for i := range mixed {
		mixed[i].Status = mcproto.StatusUnknown
	}
	f("twitter-like", mixed, Options{}, ModelFillOnMiss)
	if s := analyze(imported, Options{MRCModel: ModelRecorded}); len(s.MRC) != 0 || s.MRCReads != 0 {
		t.Fatalf("recorded model of an imported trace: %+v", s.MRC)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestMRC_SimulatedSharded: requested sizes on a sampled profile stay within the stated bound of the exact
// simulation (the caches then hold sampled keys at 1/rate weight).
func TestMRC_SimulatedSharded(t *testing.T) {
	evs := importedTrace(31, 300_000, 60_000)
	caps := []uint64{64 << 10, 1 << 20, 8 << 20, 32 << 20, 128 << 20, 512 << 20}
	exact := analyze(evs, Options{MRCSizes: caps})
	s := analyze(evs, Options{MRCSizes: caps, MaxKeys: 4096})
	if s.MRCMethod == "exact" {
		t.Fatalf("not sampled: %s", s.MRCMethod)
	}
	mae := mrcMAE(exact.MRC, s.MRC)
	t.Logf("%s: MAE %.4f, bound %.4f", s.MRCMethod, mae, s.MRCErrorBound)
	if mae > s.MRCErrorBound {
		t.Fatalf("MAE %.4f over the stated bound %.4f: %+v vs %+v", mae, s.MRCErrorBound, s.MRC, exact.MRC)
	}
}
