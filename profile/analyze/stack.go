// This file holds the per-key table and the LRU stack simulation behind the miss-ratio curve. They share one
// structure because the MRC needs, for each key, its last position in the recency order and its object size, and
// the popularity figures need its access count: one table lookup per event serves both.
//
// Stack distances by bytes. For byte capacity C, LRU keeps the most recently used objects whose sizes sum to at
// most C. An access to key k therefore hits iff D ≤ C, where D is k's own size plus the sizes of the distinct
// keys used since k's previous access. Positions in recency order are logical timestamps; a Fenwick tree over
// them, weighted by each key's current size at its latest timestamp, answers D as a suffix sum in O(log n).
// Timestamps are compacted (renumbered densely in order) when they run out, which costs O(n) every ≥ n/2
// accesses. D goes into a weighted histogram (and, for caller-chosen sizes, into exact per-size counters), from
// which the curve is read at the end for any cache size.
//
// SHARDS (Waldspurger et al., FAST '15), with the heaviest keys kept exact. While the table holds at most
// Options.MaxKeys keys every key is tracked and the curve is exact. When it would overflow, the heaviest keys so
// far (up to hotKeys of them, by exact count) become "hot": they stay tracked exactly for the rest of the profile.
// Every other key is spatially sampled at rate R = 2^-shift, halving each time the table fills again: only keys
// whose mixed hash has its top shift bits zero stay. A sampled key's bytes weigh 1/R in the stack and its
// retrievals count 1/R; a hot key's count once. Plain SHARDS loses most of its accuracy to whether a few very
// popular keys fall in the sample; keeping them exact removes that variance, and the remaining (sampled) stratum
// is scaled to its exact retrieval count (total retrievals minus hot retrievals), a post-stratified ratio
// estimator.

package analyze

// keyEntry is one tracked key. 24 bytes; with the table at most 3/4 full and two stack slots per key, the
// Analyzer needs about 80 bytes per tracked key.
type keyEntry struct {
	hash  uint64 // mixed key hash; 0 marks an empty slot
	count uint64 // keyed events for this key; the top bit marks a hot key
	pos   uint32 // timestamp of the key's latest access in the stack; 0 = not in the simulated cache
	size  uint32 // object size: key size + most recent value size (saturating)
}

const hotBit = 1 << 63

func (e *keyEntry) hot() bool      { return e.count&hotBit != 0 }
func (e *keyEntry) events() uint64 { return e.count &^ hotBit }

// keyTable is an open-addressing table of keyEntry indexed by the low bits of the mixed hash (the high bits are
// what SHARDS samples on).
type keyTable struct {
	slots []keyEntry
	n     int
}

func newKeyTable(size int) keyTable { return keyTable{slots: make([]keyEntry, size)} }

func (t *keyTable) find(h uint64) *keyEntry {
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &t.slots[i]
		if e.hash == h {
			return e
		}
		if e.hash == 0 {
			return nil
		}
	}
}

// insert adds h, which must be absent, and returns its zeroed entry. Entry pointers are valid until the next
// insert.
func (t *keyTable) insert(h uint64) *keyEntry {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.rehash(2 * len(t.slots))
	}
	t.n++
	return t.place(keyEntry{hash: h})
}

func (t *keyTable) place(e keyEntry) *keyEntry {
	mask := uint64(len(t.slots) - 1)
	for i := e.hash & mask; ; i = (i + 1) & mask {
		if t.slots[i].hash == 0 {
			t.slots[i] = e
			return &t.slots[i]
		}
	}
}

func (t *keyTable) rehash(size int) {
	old := t.slots
	t.slots = make([]keyEntry, size)
	for _, e := range old {
		if e.hash != 0 {
			t.place(e)
		}
	}
}

// distHist accumulates weighted stack distances of one stratum (hot or sampled keys).
type distHist struct {
	dist   [histBuckets]uint64
	cold   uint64   // retrievals of keys not in the stack: misses at every size
	weight uint64   // all retrievals (= cold + sum of dist)
	hitsAt []uint64 // hitsAt[i]: retrievals with sizes[i-1] < D ≤ sizes[i]; the last counts D > every size
}

// hitWeight returns the retrieval weight with stack distance ≤ c, exact when c is a bucket bound.
func (d *distHist) hitWeight(c uint64) uint64 {
	var w uint64
	for i := range d.dist {
		if bucketLE(i) > c {
			break
		}
		w += d.dist[i]
	}
	return w
}

// lruStack is the byte-weighted LRU stack over the tracked keys, with the distance histograms it produces.
type lruStack struct {
	keys   keyTable
	fen    []int64  // Fenwick tree over timestamps 1..len-1, weighted by object size (sampled keys: ×1/R)
	posKey []uint64 // hash of the key last accessed at each timestamp (stale once it moves or leaves)
	clock  uint32   // latest timestamp handed out
	live   int      // keys in the stack
	total  int64    // weight in the stack
	shift  uint     // sampling rate R = 2^-shift; 0 = every key, exact
	ws     uint64   // sum of sizes over sampled table entries
	wsHot  uint64   // sum of sizes over hot entries
	hotN   int      // hot entries

	sizes   []uint64 // caller-chosen cache sizes, ascending
	hot     distHist // retrievals of hot keys, weight 1
	sampled distHist // retrievals of the other tracked keys, weight 1/R
	maxDist uint64
}

func newLRUStack(sizes []uint64) *lruStack {
	s := &lruStack{
		keys:   newKeyTable(1024),
		fen:    make([]int64, 1025),
		posKey: make([]uint64, 1025),
		sizes:  sizes,
	}
	if sizes != nil {
		s.hot.hitsAt = make([]uint64, len(sizes)+1)
		s.sampled.hitsAt = make([]uint64, len(sizes)+1)
	}
	return s
}

// inSample reports whether key hash h is in the SHARDS sample.
func (s *lruStack) inSample(h uint64) bool { return h>>(64-s.shift) == 0 }

// weight returns e's stack weight at its current size.
func (s *lruStack) weight(e *keyEntry) int64 {
	if e.hot() {
		return int64(e.size)
	}
	return int64(e.size) << s.shift
}

func (s *lruStack) fenAdd(i uint32, d int64) {
	for n := uint32(len(s.fen)); i < n; i += i & -i {
		s.fen[i] += d
	}
}

func (s *lruStack) fenPrefix(i uint32) int64 {
	var sum int64
	for ; i > 0; i -= i & -i {
		sum += s.fen[i]
	}
	return sum
}

// retrieve records one retrieval of e: a cold miss if e is not in the stack, else its stack distance.
func (s *lruStack) retrieve(e *keyEntry) {
	h, w := &s.sampled, uint64(1)<<s.shift
	if e.hot() {
		h, w = &s.hot, 1
	}
	h.weight += w
	if e.pos == 0 {
		h.cold += w
		return
	}
	d := uint64(e.size) + uint64(s.total-s.fenPrefix(e.pos-1)-s.weight(e))
	h.dist[bucketOf(d)] += w
	s.maxDist = max(s.maxDist, d)
	if h.hitsAt != nil {
		lo, hi := 0, len(s.sizes)
		for lo < hi {
			m := (lo + hi) / 2
			if s.sizes[m] < d {
				lo = m + 1
			} else {
				hi = m
			}
		}
		h.hitsAt[lo] += w
	}
}

// resize sets e's object size while it is not in the stack.
func (s *lruStack) resize(e *keyEntry, size uint32) {
	if e.pos != 0 {
		panic("BUG: resize of a key in the stack")
	}
	if e.hot() {
		s.wsHot += uint64(size) - uint64(e.size)
	} else {
		s.ws += uint64(size) - uint64(e.size)
	}
	e.size = size
}

// use moves e to the top of the stack (inserting it if absent) with object size size.
func (s *lruStack) use(e *keyEntry, size uint32) {
	s.remove(e)
	s.resize(e, size)
	if int(s.clock)+1 >= len(s.fen) {
		s.compact()
	}
	s.clock++
	e.pos = s.clock
	s.posKey[s.clock] = e.hash
	w := s.weight(e)
	s.fenAdd(s.clock, w)
	s.total += w
	s.live++
}

// remove takes e out of the stack (a delete).
func (s *lruStack) remove(e *keyEntry) {
	if e.pos == 0 {
		return
	}
	w := s.weight(e)
	s.fenAdd(e.pos, -w)
	s.total -= w
	s.live--
	e.pos = 0
}

// compact renumbers the live timestamps densely (1..live, order kept) and rebuilds the tree from the entries'
// current weights, growing it when more than half of it would be live so compaction stays amortised O(1) per
// access.
func (s *lruStack) compact() {
	size := len(s.fen) - 1
	for s.live*2 > size {
		size *= 2
	}
	if size >= 1<<31 {
		panic("BUG: LRU stack timestamps overflow; Options.MaxKeys should have bounded them")
	}
	fen, posKey := s.fen, s.posKey
	if size != len(s.fen)-1 {
		fen, posKey = make([]int64, size+1), make([]uint64, size+1)
	}
	var n uint32
	s.total = 0
	for p := uint32(1); p <= s.clock; p++ {
		h := s.posKey[p]
		if e := s.keys.find(h); e != nil && e.pos == p {
			n++
			e.pos = n
			posKey[n] = h
			fen[n] = s.weight(e)
			s.total += fen[n]
		}
	}
	if int(n) != s.live {
		panic("BUG: LRU stack lost track of its live keys")
	}
	clear(fen[n+1:])
	clear(posKey[n+1:])
	for i := 1; i <= size; i++ {
		if j := i + i&-i; j <= size {
			fen[j] += fen[i]
		}
	}
	s.fen, s.posKey, s.clock = fen, posKey, n
}

// makeHot marks the n heaviest entries hot (called once, before the first halving, while counts are exact).
func (s *lruStack) makeHot(hashes []uint64) {
	for _, h := range hashes {
		e := s.keys.find(h)
		s.ws -= uint64(e.size)
		s.wsHot += uint64(e.size)
		e.count |= hotBit
		s.hotN++
	}
	s.compact() // hot weights change scale from here on
}

// halve lowers the sampling rate by half: non-hot keys whose hash leaves the sample leave the table and the
// stack; the survivors' weights double.
func (s *lruStack) halve() {
	s.shift++
	old := s.keys.slots
	s.keys = newKeyTable(len(old))
	s.live = 0
	for i := range old {
		e := &old[i]
		if e.hash == 0 {
			continue
		}
		if e.hot() || s.inSample(e.hash) {
			s.keys.n++
			s.keys.place(*e)
			if e.pos != 0 {
				s.live++
			}
			continue
		}
		s.ws -= uint64(e.size)
	}
	s.compact()
}
