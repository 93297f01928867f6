// This file holds the small bounded-memory structures the Analyzer falls back to once exact tracking would grow
// without bound: a hash map of uint64 (used as a set and as an index), HyperLogLog for distinct counts and
// Space-Saving for heavy hitters. They are generic over uint64 identities and know nothing of memcached.

package analyze

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// mix64 is a bijective finalizer (MurmurHash3 fmix64) applied to every key hash before use, so that sampling,
// table slots and HyperLogLog stay uniform even when a profile's key hashes are not (a trace converted from
// sequential key ids, say). It never returns 0, which the tables use to mark an empty slot; the one input that
// would map to 0 shares a value with another key, a 2^-64 chance.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb93fe53e87d9
	x ^= x >> 33
	if x == 0 {
		x = 1
	}
	return x
}

// u64map maps non-zero uint64 keys to int32 values with linear probing and backward-shift deletion, so that a
// steady mix of inserts and deletes never allocates.
type u64map struct {
	keys  []uint64
	vals  []int32
	n     int
	shift uint // 64 - log2(len(keys))
}

func newU64Map(capacity int) *u64map {
	size := 16
	for size*3 < capacity*4 {
		size *= 2
	}
	return &u64map{keys: make([]uint64, size), vals: make([]int32, size), shift: uint(64 - bits.Len(uint(size-1)))}
}

func (m *u64map) slot(k uint64) int { return int((k * 0x9E3779B97F4A7C15) >> m.shift) }

// get returns k's value and whether k is present.
func (m *u64map) get(k uint64) (int32, bool) {
	mask := len(m.keys) - 1
	for i := m.slot(k); ; i = (i + 1) & mask {
		switch m.keys[i] {
		case k:
			return m.vals[i], true
		case 0:
			return 0, false
		}
	}
}

// put sets k's value and reports whether k was new. The map grows past 3/4 load.
func (m *u64map) put(k uint64, v int32) bool {
	if k == 0 {
		panic("BUG: u64map key 0 is reserved for empty slots")
	}
	mask := len(m.keys) - 1
	for i := m.slot(k); ; i = (i + 1) & mask {
		switch m.keys[i] {
		case k:
			m.vals[i] = v
			return false
		case 0:
			m.keys[i], m.vals[i] = k, v
			m.n++
			if m.n*4 > len(m.keys)*3 {
				m.grow()
			}
			return true
		}
	}
}

// del removes k if present, shifting later entries of its probe run back so lookups need no tombstones.
func (m *u64map) del(k uint64) {
	mask := len(m.keys) - 1
	i := m.slot(k)
	for m.keys[i] != k {
		if m.keys[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	m.n--
	for j := (i + 1) & mask; m.keys[j] != 0; j = (j + 1) & mask {
		home := m.slot(m.keys[j])
		// The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			m.keys[i], m.vals[i] = m.keys[j], m.vals[j]
			i = j
		}
	}
	m.keys[i], m.vals[i] = 0, 0
}

func (m *u64map) grow() {
	old, oldVals := m.keys, m.vals
	m.keys, m.vals = make([]uint64, 2*len(old)), make([]int32, 2*len(old))
	m.shift--
	m.n = 0
	for i, k := range old {
		if k != 0 {
			m.put(k, oldVals[i])
		}
	}
}

// hllBits is the HyperLogLog precision: 2^14 one-byte registers, a standard error of 1.04/√16384 ≈ 0.8%.
const hllBits = 14

// hll is a HyperLogLog distinct counter over already-mixed 64-bit hashes.
type hll struct {
	reg [1 << hllBits]uint8
}

func (h *hll) add(x uint64) {
	i := x >> (64 - hllBits)
	rho := uint8(bits.LeadingZeros64(x<<hllBits|1<<(hllBits-1))) + 1
	if rho > h.reg[i] {
		h.reg[i] = rho
	}
}

// estimate uses Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs neither bias tables nor a switch to linear counting at small cardinalities.
func (h *hll) estimate() uint64 {
	const m = 1 << hllBits
	const q = 64 - hllBits
	var c [q + 2]int
	for _, r := range h.reg {
		c[r]++
	}
	z := m * hllTau(1-float64(c[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * hllSigma(float64(c[0])/m)
	return uint64(math.Round(m * m / (2 * math.Ln2) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if prev == z {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if prev == z {
			return z / 3
		}
	}
}

// distinct counts distinct uint64 ids exactly up to a cap, then estimates with a HyperLogLog seeded from the
// exact set.
type distinct struct {
	set  *u64map
	cap  int
	hll  *hll
	last uint64 // most recent id, to skip the lookup for runs of one id
	seen bool
}

func newDistinct(capacity int) *distinct { return &distinct{set: newU64Map(64), cap: capacity} }

func (d *distinct) add(id uint64) {
	if d.seen && id == d.last {
		return
	}
	d.seen, d.last = true, id
	h := mix64(id)
	if d.hll != nil {
		d.hll.add(h)
		return
	}
	if d.set.put(h, 0) && d.set.n > d.cap {
		d.hll = new(hll)
		for _, k := range d.set.keys {
			if k != 0 {
				d.hll.add(k)
			}
		}
		d.set = nil
	}
}

// count returns the number of distinct ids and whether it is exact.
func (d *distinct) count() (uint64, bool) {
	if d.hll != nil {
		return d.hll.estimate(), false
	}
	return uint64(d.set.n), true
}

// spaceSaving is Metwally et al.'s Space-Saving heavy-hitter sketch with k counters. Every id whose true count
// exceeds the smallest monitored count is monitored, and a monitored count overestimates the truth by at most its
// err. With at most k distinct ids it is exact. Items live at fixed slots; a min-heap of slots orders them, so
// heap moves never touch the index.
type spaceSaving struct {
	k     int
	items []ssItem
	heap  []int32 // slots, min-heap by count
	index *u64map // id → slot
	// replaced is set once an item has been evicted: counts are estimates from then on.
	replaced bool
}

type ssItem struct {
	id, count, err uint64
	pos            int32 // position in heap
}

func newSpaceSaving(k int) *spaceSaving {
	return &spaceSaving{
		k:     k,
		items: make([]ssItem, 0, k),
		heap:  make([]int32, 0, k),
		index: newU64Map(k),
	}
}

// addN counts n occurrences of id (n > 1 only when seeding from exact counts).
func (s *spaceSaving) addN(id, n uint64) {
	if slot, ok := s.index.get(id); ok {
		it := &s.items[slot]
		it.count += n
		s.down(int(it.pos))
		return
	}
	if len(s.items) < s.k {
		slot := int32(len(s.items))
		s.items = append(s.items, ssItem{id: id, count: n, pos: int32(len(s.heap))})
		s.heap = append(s.heap, slot)
		s.index.put(id, slot)
		s.up(len(s.heap) - 1)
		return
	}
	s.replaced = true
	slot := s.heap[0]
	it := &s.items[slot]
	s.index.del(it.id)
	it.id, it.err = id, it.count
	it.count += n
	s.index.put(id, slot)
	s.down(0)
}

func (s *spaceSaving) less(i, j int) bool { return s.items[s.heap[i]].count < s.items[s.heap[j]].count }

func (s *spaceSaving) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.items[s.heap[i]].pos = int32(i)
	s.items[s.heap[j]].pos = int32(j)
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && s.less(r, l) {
			c = r
		}
		if !s.less(c, i) {
			return
		}
		s.swap(i, c)
		i = c
	}
}

// minCount is the smallest monitored count: every id with a larger true count is monitored.
func (s *spaceSaving) minCount() uint64 {
	if len(s.heap) < s.k {
		return 0
	}
	return s.items[s.heap[0]].count
}

// top returns the monitored items, largest count first (ties by id, for stable output).
func (s *spaceSaving) top() []ssItem {
	out := slices.Clone(s.items)
	slices.SortFunc(out, func(a, b ssItem) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}
