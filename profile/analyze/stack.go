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
//
// Caches of requested sizes (Options.MRCSizes) are simulated, not read off the stack distances: an LRU cache that
// does not admit an object larger than itself is not a stack algorithm (A of 100 B, B of 1000 B, A again hits in
// a 500 B cache, misses in a 1000 B one), and a real cache does not bring back keys that a delete's freed bytes
// would make room for. Each simulated cache holds exactly the live keys at or above its boundary timestamp whose
// size fits it (an LRU cache's content is always the most recent objects that fit, up to its capacity), so it
// costs two numbers: the boundary and the bytes it holds. Eviction moves the boundary up over the stack's
// timestamps, each passed at most once between compactions, so a cache costs O(1) amortised per access.

package analyze

import (
	"cmp"
	"slices"
)

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

	objects bool     // sizes count objects (each key 1), not bytes; ws and wsHot stay in bytes
	maxSize uint32   // largest object size (in the stack's unit) ever put in the stack
	sims    []simLRU // simulated caches of the caller-chosen sizes, ascending
	posInfo []uint64 // with sims: the unit size, hot bit and valid bit of the key at each timestamp
	hot     distHist // retrievals of hot keys, weight 1
	sampled distHist // retrievals of the other tracked keys, weight 1/R
	maxDist uint64
}

// simLRU is one simulated LRU cache: the live keys with timestamps ≥ b and sizes ≤ capacity (see the file
// comment). used is the weight they hold.
type simLRU struct {
	capacity uint64
	b        uint32
	used     int64
}

// posInfo bits.
const (
	infoHot   = 1 << 32
	infoValid = 1 << 33
)

// newLRUStack returns an empty stack. sizes (ascending, distinct) are the caches to simulate; objects makes every
// key's size 1 for the stack and the simulated caches.
func newLRUStack(sizes []uint64, objects bool) *lruStack {
	s := &lruStack{
		keys:    newKeyTable(1024),
		fen:     make([]int64, 1025),
		posKey:  make([]uint64, 1025),
		objects: objects,
	}
	if len(sizes) > 0 {
		s.posInfo = make([]uint64, 1025)
		for _, c := range sizes {
			s.sims = append(s.sims, simLRU{capacity: c, b: 1})
		}
		s.hot.hitsAt = make([]uint64, len(sizes))
		s.sampled.hitsAt = make([]uint64, len(sizes))
	}
	return s
}

// unit returns e's size in the stack's unit: its object size in bytes, or 1.
func (s *lruStack) unit(e *keyEntry) uint32 {
	if s.objects {
		return 1
	}
	return e.size
}

// inSample reports whether key hash h is in the SHARDS sample.
func (s *lruStack) inSample(h uint64) bool { return h>>(64-s.shift) == 0 }

// weight returns e's stack weight at its current size.
func (s *lruStack) weight(e *keyEntry) int64 {
	if e.hot() {
		return int64(s.unit(e))
	}
	return int64(s.unit(e)) << s.shift
}

// info is e's posInfo entry at its current size.
func (s *lruStack) info(e *keyEntry) uint64 {
	x := uint64(s.unit(e)) | infoValid
	if e.hot() {
		x |= infoHot
	}
	return x
}

// infoWeight is the stack weight of a posInfo entry.
func (s *lruStack) infoWeight(x uint64) int64 {
	if x&infoHot != 0 {
		return int64(uint32(x))
	}
	return int64(uint32(x)) << s.shift
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
	d := uint64(s.unit(e)) + uint64(s.total-s.fenPrefix(e.pos-1)-s.weight(e))
	h.dist[bucketOf(d)] += w
	s.maxDist = max(s.maxDist, d)
	for i := range s.sims {
		if c := &s.sims[i]; e.pos >= c.b && uint64(s.unit(e)) <= c.capacity {
			h.hitsAt[i] += w
		}
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
	u := s.unit(e)
	s.maxSize = max(s.maxSize, u)
	if s.sims != nil {
		s.posInfo[s.clock] = s.info(e)
		for i := range s.sims {
			if c := &s.sims[i]; uint64(u) <= c.capacity {
				c.used += w
				s.evict(c)
			}
		}
	}
}

// evict moves c's boundary up past its least recently used keys until it holds no more than its capacity. It
// never passes the newest timestamp: in sampled mode one key's weight may exceed a cache on its own.
func (s *lruStack) evict(c *simLRU) {
	for c.used > int64(c.capacity) && c.b < s.clock {
		if x := s.posInfo[c.b]; x&infoValid != 0 && uint64(uint32(x)) <= c.capacity {
			c.used -= s.infoWeight(x)
		}
		c.b++
	}
}

// remove takes e out of the stack (a delete, or before it moves).
func (s *lruStack) remove(e *keyEntry) {
	if e.pos == 0 {
		return
	}
	w := s.weight(e)
	s.fenAdd(e.pos, -w)
	s.total -= w
	s.live--
	if s.sims != nil {
		u := uint64(s.unit(e))
		for i := range s.sims {
			if c := &s.sims[i]; e.pos >= c.b && u <= c.capacity {
				c.used -= w
			}
		}
		s.posInfo[e.pos] = 0
	}
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
	fen, posKey, posInfo := s.fen, s.posKey, s.posInfo
	if size != len(s.fen)-1 {
		fen, posKey = make([]int64, size+1), make([]uint64, size+1)
		if s.sims != nil {
			posInfo = make([]uint64, size+1)
		}
	}
	// The simulated caches' boundaries move to the first renumbered timestamp at or above them: walk them in
	// the order of their boundaries (a larger cache may have the higher one, when it admits a large object the
	// smaller one does not).
	byB := make([]*simLRU, len(s.sims))
	for i := range s.sims {
		byB[i] = &s.sims[i]
	}
	slices.SortFunc(byB, func(x, y *simLRU) int { return cmp.Compare(x.b, y.b) })
	next := 0
	var n uint32
	s.total = 0
	for p := uint32(1); p <= s.clock; p++ {
		for ; next < len(byB) && byB[next].b <= p; next++ {
			byB[next].b = n + 1
		}
		h := s.posKey[p]
		if e := s.keys.find(h); e != nil && e.pos == p {
			n++
			e.pos = n
			posKey[n] = h
			fen[n] = s.weight(e)
			s.total += fen[n]
			if posInfo != nil {
				posInfo[n] = s.info(e)
			}
		}
	}
	for ; next < len(byB); next++ {
		byB[next].b = n + 1
	}
	if int(n) != s.live {
		panic("BUG: LRU stack lost track of its live keys")
	}
	clear(fen[n+1:])
	clear(posKey[n+1:])
	if posInfo != nil {
		clear(posInfo[n+1:])
	}
	for i := 1; i <= size; i++ {
		if j := i + i&-i; j <= size {
			fen[j] += fen[i]
		}
	}
	s.fen, s.posKey, s.posInfo, s.clock = fen, posKey, posInfo, n
}

// resyncSims recounts what each simulated cache holds after weights changed (hot keys chosen, sampling rate
// halved) and evicts what no longer fits.
func (s *lruStack) resyncSims() {
	for i := range s.sims {
		c := &s.sims[i]
		c.used = 0
		for p := c.b; p <= s.clock; p++ {
			if x := s.posInfo[p]; x&infoValid != 0 && uint64(uint32(x)) <= c.capacity {
				c.used += s.infoWeight(x)
			}
		}
		s.evict(c)
	}
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
	s.resyncSims()
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
	s.resyncSims()
}
