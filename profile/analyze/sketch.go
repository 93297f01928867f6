// This file holds the small bounded-memory structures the Analyzer falls back to once exact tracking would grow
// without bound: a hash map of uint64 (used as a set and as an index), HyperLogLog for distinct counts and
// Space-Saving for heavy hitters. They are generic over uint64 identities and know nothing of memcached. It also
// holds the popularity estimate built from them and the key sample once keys are sampled, with its error bounds.

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
	// unseeded bounds the count of any id before the sketch was seeded with the heaviest exact counts (0 when
	// every id was seeded); set by the seeder.
	unseeded uint64
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

// Popularity past MaxKeys: top_keys_share, popularity and zipf_alpha estimated from three strata of keys, with a
// stated error bound.
//
//   - Hot keys (stack.go: the heaviest when the key table overflowed) have exact counts; weight 1.
//   - Certified keys: the other keys that Space-Saving monitors with a count known to within popCertifyRel of its
//     lower bound (popCertified). Their count is the interval's midpoint, or the exact one when the key is also
//     in the SHARDS sample; weight 1. Which keys qualify depends on the sketch, not on the sampling hash.
//   - Every other key is represented by the SHARDS sample (exact counts of the keys whose hash is in it), each
//     sampled key standing for 1/R keys. Since sampling is by hash, independent of counts and of the two strata
//     above, the sample is a uniform 1/R sample of that stratum: for every c, (sampled keys with ≥ c events)/R is
//     an unbiased estimate of the stratum's keys with ≥ c events, i.e. of its rank-frequency curve.
//
// The three are merged by count into one estimated rank-frequency curve, from which the figures are read exactly
// as in exact mode. The Space-Saving heavy hitters alone, as used before, lose the tail: a key entering the sketch
// late inherits the smallest count, so on traces with a heavy flat tail the midpoints of hundreds of light keys
// pushed the top-1000 share up (0.234 for 0.189) and the curve's head/tail junction bent α down (0.83 for 1.07).
//
// Error bounds (top_keys_share_error_bound, zipf_alpha_error_bound) add three terms, each at popBoundZ = 3 sigmas:
//
//   - Sampling variance. A top-k share is Σ_c min(N(≥c), k) / events, N(≥c) being the keys with ≥ c events; to
//     first order its error is Σ_i (Z_i/R − 1)(c_i − c_k)₊ over the sampled stratum (Z_i: key i sampled, c_k: the
//     count at rank k), whose Horvitz–Thompson variance estimate is Σ_sampled (1−R)/R² (c_i − c_k)₊². For α,
//     random groups (Wolter, Introduction to Variance Estimation, ch. 2): further hash bits split the sample into
//     popGroups groups, each a uniform sample at rate R/popGroups of the same stratum, each giving α_g from the
//     hot and certified keys and its own sampled keys (weight popGroups/R); Var(α̂) ≈ Σ(α_g − ᾱ)²/(G(G−1)).
//   - Keys the sample may have missed: neither estimate sees keys heavier than every sampled one. Above the
//     largest sampled count the curve gains as many keys as may exist there unseen (unseenKeys: at most
//     popUnseen/R, and no more than Space-Saving allows), and the figures' change is added.
//   - The certified keys' intervals: the figures are recomputed with every certified count at its lower and at its
//     upper bound, and the larger change is added.
//
// For the shares the first term is a standard error and the other two are worst cases (the shares grow with every
// count); for α, whose fit is not monotone in the counts, the last two are sensitivities, not proofs. The tests
// check the bounds on Zipf traces and on traces that are not Zipf.

const (
	// popGroups is how many random groups the sample is split into for α's standard error.
	popGroups = 16
	// popBoundZ is how many standard errors the bound spans.
	popBoundZ = 3
	// popCertifyRel: a Space-Saving key is certified when its count interval is at most this fraction of its
	// lower bound.
	popCertifyRel = 0.25
	// popUnseen is −ln(0.00135): the most keys per 1/R that a sample may miss altogether, at popBoundZ sigmas.
	popUnseen = 6.61
)

// popItem is one entry of an estimated rank-frequency curve: weight keys of count events each, occupying the
// next weight ranks. lo and hi bound count when it is a Space-Saving estimate (certified keys).
type popItem struct {
	count, lo, hi uint64
	weight        uint64
	group         int8 // random group of a sampled key; -1 for keys in every group (hot, certified)
	ss            bool // count is a Space-Saving interval's midpoint
}

// topKs are the ranks of TopShare's fields.
var topKs = [4]uint64{1, 10, 100, 1000}

// popFigures are the popularity figures read off one estimated curve.
type popFigures struct {
	shares [4]float64 // top 1, 10, 100, 1000
	atK    [4]uint64  // the count at rank 1, 10, 100, 1000 (0 past the last key)
	pop    []RankCount
	alpha  float64
}

// figuresOf reads the figures off items sorted by count, descending; keyed is the events shares divide.
func figuresOf(items []popItem, keyed uint64) popFigures {
	var f popFigures
	var cum, ranks uint64 // events and ranks so far
	next := 0
	for _, it := range items {
		for next < len(topKs) && ranks+it.weight >= topKs[next] {
			f.shares[next] = float64(cum + (topKs[next]-ranks)*it.count)
			f.atK[next] = it.count
			next++
		}
		cum += it.weight * it.count
		ranks += it.weight
	}
	for ; next < len(topKs); next++ {
		f.shares[next] = float64(cum)
	}
	for i := range f.shares {
		f.shares[i] = min(1, f.shares[i]/float64(max(keyed, 1)))
	}
	f.pop = logBin(items)
	f.alpha = fitZipf(f.pop)
	return f
}

// popEstimate is the popularity estimate past MaxKeys with its error bounds (0 for figures known exactly).
type popEstimate struct {
	popFigures
	shareBound [4]float64
	alphaBound float64
}

// sortByCount orders items by count descending (ties: exact before sampled, for stable output).
func sortByCount(items []popItem) {
	slices.SortStableFunc(items, func(a, b popItem) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.weight, b.weight))
	})
}

// popCertified reports whether Space-Saving item it is known well enough to stand for itself, and the interval
// [lo, hi] of its true count. Space-Saving's guarantee, count − err ≤ f ≤ count for the id's frequency f in the
// stream the sketch saw, holds here with the seeding as the stream's start; an id not among the seeded may have
// had up to unseeded events before it.
func popCertified(it *ssItem, unseeded uint64) (lo, hi uint64, ok bool) {
	lo, hi = it.count-it.err, it.count
	if it.err > 0 {
		hi += unseeded
	}
	return lo, hi, lo > 0 && float64(hi-lo) <= popCertifyRel*float64(lo)
}

// estimatePopularity merges the strata (see above) of the key table st (hot and sampled keys) and the
// Space-Saving sketch ss into the figures and their bounds; keyed is the events shares divide.
func estimatePopularity(st *lruStack, ss *spaceSaving, keyed uint64) popEstimate {
	m := ss.minCount()
	// bmax: the most events a key of the sampled stratum can have. One that Space-Saving does not monitor has had
	// at most m since the overflow, plus at most ss.unseeded before it.
	bmax := m + ss.unseeded
	var his []uint64 // upper bounds of the keys Space-Saving monitors without certifying them
	certified := newU64Map(len(ss.items))
	items := make([]popItem, 0, st.keys.n+len(ss.items))
	for i := range ss.items {
		it := &ss.items[i]
		lo, hi, ok := popCertified(it, ss.unseeded)
		e := st.keys.find(it.id)
		if e != nil && e.hot() {
			continue
		}
		if !ok {
			his = append(his, hi)
			continue
		}
		certified.put(it.id, 0)
		if e != nil {
			c := e.events()
			items = append(items, popItem{count: c, lo: c, hi: c, weight: 1, group: -1})
		} else {
			items = append(items, popItem{count: (lo + hi) / 2, lo: lo, hi: hi, weight: 1, group: -1, ss: true})
		}
	}
	for _, e := range st.keys.slots {
		if e.hash == 0 {
			continue
		}
		c := e.events()
		if e.hot() {
			items = append(items, popItem{count: c, lo: c, hi: c, weight: 1, group: -1})
			continue
		}
		if _, ok := certified.get(e.hash); ok {
			continue
		}
		// The group comes from the hash bits just below those the sample is drawn on: uniform, and independent
		// of sampling.
		g := int8((e.hash << st.shift >> 32) * popGroups >> 32)
		items = append(items, popItem{count: c, lo: c, hi: c, weight: 1 << st.shift, group: g})
	}
	sortByCount(items)
	est := popEstimate{popFigures: figuresOf(items, keyed)}

	// Sampling error of α from the random groups.
	var groups [popGroups]popFigures
	sub := make([]popItem, 0, len(items))
	for g := range popGroups {
		sub = sub[:0]
		for _, it := range items {
			if it.group == -1 {
				sub = append(sub, it)
			} else if int(it.group) == g {
				it.weight *= popGroups
				sub = append(sub, it)
			}
		}
		groups[g] = figuresOf(sub, keyed)
	}
	var mean, dev2 float64
	for g := range groups {
		mean += groups[g].alpha / popGroups
	}
	for g := range groups {
		dev2 += (groups[g].alpha - mean) * (groups[g].alpha - mean)
	}
	alphaSE := math.Sqrt(dev2 / (popGroups * (popGroups - 1)))
	// The certified keys' intervals.
	at := func(bound func(popItem) uint64) popFigures {
		sub = sub[:0]
		for _, it := range items {
			if it.ss {
				it.count = bound(it)
			}
			sub = append(sub, it)
		}
		sortByCount(sub)
		return figuresOf(sub, keyed)
	}
	lo := at(func(it popItem) uint64 { return it.lo })
	hi := at(func(it popItem) uint64 { return it.hi })
	// The sampled stratum: its variance, and the keys it may have missed above its largest sampled count.
	var cmax uint64
	for _, it := range items {
		if it.group >= 0 {
			cmax = max(cmax, it.count)
		}
	}
	unseen := figuresOf(unseenKeys(items, st.shift, cmax, bmax, his), keyed)
	rate := math.Ldexp(1, -int(st.shift))
	for i := range est.shares {
		var v float64 // Σ over sampled keys of (1−R)/R² (c − c_k)₊²: the HT variance estimate of the top-k events
		for _, it := range items {
			if it.group >= 0 && it.count > est.atK[i] {
				d := float64(it.count - est.atK[i])
				v += (1 - rate) / (rate * rate) * d * d
			}
		}
		est.shareBound[i] = popBoundZ*math.Sqrt(v)/float64(max(keyed, 1)) + (unseen.shares[i] - est.shares[i]) +
			max(est.shares[i]-lo.shares[i], hi.shares[i]-est.shares[i])
	}
	est.alphaBound = popBoundZ*alphaSE +
		math.Abs(unseen.alpha-est.alpha) + max(math.Abs(est.alpha-lo.alpha), math.Abs(hi.alpha-est.alpha))
	return est
}

// unseenKeys returns items (sorted by count, descending) plus the most keys of the sampled stratum that the
// sample may have missed above its largest sampled count cmax: at a count c, no more than popUnseen/R (the most
// keys a sample at rate R misses altogether, at popBoundZ sigmas) and no more than can exist there: keys that
// Space-Saving does not monitor have at most bmax events, and the ones it monitors without certifying them at
// most their upper bounds his.
func unseenKeys(items []popItem, shift uint, cmax, bmax uint64, his []uint64) []popItem {
	// None of N keys is sampled with probability (1−R)^N ≤ e^(−RN); that is the one-sided tail of popBoundZ
	// sigmas (0.135%) at RN = 6.61.
	capKeys := uint64(math.Ceil(popUnseen * math.Ldexp(1, int(shift))))
	out := slices.Clone(items)
	levels := slices.Clone(his)
	if bmax > cmax {
		levels = append(levels, bmax)
	}
	slices.SortFunc(levels, func(a, b uint64) int { return cmp.Compare(b, a) })
	var n, d uint64 // keys added, keys that may exist at the current level
	for i, c := range levels {
		if c <= cmax {
			break
		}
		d++
		if c == bmax && c > cmax {
			d = capKeys // unmonitored keys: no individual bound
		}
		if i+1 < len(levels) && levels[i+1] == c {
			continue
		}
		if w := min(d, capKeys); w > n {
			out = append(out, popItem{count: c, lo: c, hi: c, weight: w - n, group: 0})
			n = w
		}
	}
	sortByCount(out)
	return out
}
