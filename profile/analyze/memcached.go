// This file holds the memcached model behind `membench inspect --memcached`: memcached's own memory management
// simulated at given memory limits (-m), so that an operator can read the hit ratio a real server would have
// instead of a textbook LRU's. It is separate from the LRU stack (stack.go) because memcached is not one LRU, and
// its rules are memcached's own, taken from its source (slabs.c, items.c, memcached.c; the same in 1.6.18 and
// 1.6.45):
//
//   - Slab classes. Memory comes in 1 MiB pages; each page belongs to one slab class and is cut into chunks of
//     that class's size. Sizes are computed as slabs_init does: 48 + -n (default 48) bytes, times -f (1.25),
//     truncated and rounded up to 8, until slab_chunk_max (512 KiB) / -f, then slab_chunk_max itself. An item
//     takes one chunk of the smallest class that holds ITEM_ntotal: 48 bytes of header, the key and a NUL, 4
//     bytes of client flags when they are not 0, the value and its "\r\n", and 8 bytes of CAS.
//   - Pages are assigned first come, first served, while total_malloced + 1 MiB stays within -m; a class that
//     has no page yet gets its first one even past -m. Pages are never moved between classes. memcached's
//     slab_automove (on by default) moves one page at a time from the class with the oldest items to one that
//     keeps evicting younger ones, once a window of one-second samples has filled (30 in 1.6.18, 10 in 1.6.45),
//     and gives a page of a class with more than 2.5 pages free and no activity back to a global pool: not
//     modelled, so a long run whose sizes shift can differ.
//   - Each class has its own LRU, and an allocation that finds no free chunk and no new page evicts from its own
//     class only (do_item_alloc_pull: up to 10 tries, each evicting the tail of COLD, or moving the tail of HOT
//     to COLD when COLD is empty). An allocation that still fails is an out-of-memory error.
//   - Segmented LRU (the default since 1.5; -o no_lru_maintainer turns it off). New items enter HOT. A fetch
//     marks an item FETCHED, a second one ACTIVE (later fetches do nothing until the mark is cleared). The LRU
//     maintainer thread moves the tail of HOT to WARM when ACTIVE, else to COLD once HOT holds more than 20% of
//     the class's bytes or the item is older than 0.2 × the age of COLD's tail; the tail of WARM back to WARM's
//     head when ACTIVE, else to COLD past 40% or 2 × COLD's age; an ACTIVE item of COLD (a fetch of a FETCHED
//     item there) goes to WARM's head. Evictions take COLD's tail. The maintainer thread runs asynchronously
//     (every millisecond under load); here it runs at each event, for the classes the event touches, so HOT
//     and WARM never overshoot their limits.
//   - Flat LRU (-o no_lru_maintainer): one LRU per class; a fetch moves the item to the head only if it was last
//     moved more than 60 s ago (ITEM_UPDATE_INTERVAL), so a trace replayed faster than recorded behaves like
//     FIFO.
//   - Stores allocate before they look at the key (process_update_command), so an add of an existing key or a
//     failing cas can still evict; a replaced item is freed after its successor is linked; append and prepend
//     allocate the combined item a second time. A set that fails (too large, out of memory) unlinks the old
//     value, as memcached does. An item larger than slab_chunk_max is chunked: a header chunk in the class of
//     its header, chunks of slab_chunk_max and a last chunk of the class that fits the rest (falling back to
//     slab_chunk_max), each allocated as memcached does while reading the value, and the item in the LRU of the
//     largest class. Items over -I are refused.
//   - Time is the events' own: memcached's clock ticks in seconds, from 62 at the first event. Items expire as
//     memcached expires them lazily: on access, and when an LRU's tail is pulled. The LRU crawler, which also
//     reclaims expired items in the background, is not modelled, nor are flush_all with a delay, the meta
//     protocol's flags (no-bump, vivify, stale), extstore and temporary (-o temp_lru) LRUs.
//
// Each memory limit is one simulated server. Its per-key state (24 bytes per key and limit, the limits' items of
// one key side by side) is indexed by a key table shared by all limits (24 bytes per slot). Past Options.MaxKeys
// keys, keys are sampled as the MRC's are (stack.go): the 1024 heaviest stay exact, the others are sampled by
// hash at a rate halving each time the table fills, and a sampled key's chunks weigh 1/rate, so that a class of
// P pages holds P × chunks-per-page weight, page by page as in memcached. A class whose pages hold fewer chunks
// than a sampled key weighs (large classes, at low rates) holds fewer such keys than it should; the hit ratio's
// sampled stratum is scaled to its exact retrieval count.

package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// Defaults and bounds of MemcachedOptions.
const (
	DefaultMemcachedFactor    = 1.25    // memcached -f
	DefaultMemcachedChunkSize = 48      // memcached -n
	DefaultMemcachedItemMax   = 1 << 20 // memcached -I
	// MaxMemcachedSizes bounds MemcachedOptions.Sizes: each size is a simulated server with 24 bytes per key.
	MaxMemcachedSizes = 16
)

// memcached's own constants (memcached.h, memcached.c settings_init).
const (
	mcItemHeader     = 48         // sizeof(item) on 64-bit builds
	mcChunkHeader    = 48         // sizeof(item_chunk)
	mcCAS            = 8          // every item carries a CAS value unless memcached runs with -C
	mcFlags          = 4          // client flags, stored only when they are not 0
	mcPage           = 1 << 20    // settings.slab_page_size
	mcChunkMax       = mcPage / 2 // settings.slab_chunk_size_max
	mcAlign          = 8          // CHUNK_ALIGN_BYTES
	mcMaxClasses     = 64         // MAX_NUMBER_OF_SLAB_CLASSES
	mcUpdateInterval = 60         // ITEM_UPDATE_INTERVAL, seconds
	mcHotPct         = 20         // settings.hot_lru_pct
	mcWarmPct        = 40         // settings.warm_lru_pct
	mcHotMaxFactor   = 0.2        // settings.hot_max_factor
	mcWarmMaxFactor  = 2.0        // settings.warm_max_factor
	mcPullTries      = 5          // lru_pull_tail's tries
	mcAllocTries     = 10         // do_item_alloc_pull's tries
	mcJuggles        = 500        // lru_maintainer_juggle's rounds
	mcStartTime      = 62         // current_time at start: process_started is time(0) - ITEM_UPDATE_INTERVAL - 2
)

// MemcachedOptions configures the memcached model (Options.Memcached). The zero value simulates nothing.
type MemcachedOptions struct {
	// Sizes are the memory limits to simulate (memcached -m), in bytes, at most MaxMemcachedSizes.
	Sizes []uint64
	// Factor is the slab growth factor (-f), > 1; 0 means DefaultMemcachedFactor.
	Factor float64
	// ChunkSize is the minimum space for key, flags and value (-n); 0 means DefaultMemcachedChunkSize.
	ChunkSize int
	// ItemMax is the largest item (-I), a multiple of 512 KiB up to 1 GiB; 0 means DefaultMemcachedItemMax.
	ItemMax int
	// Flat simulates -o no_lru_maintainer: one LRU per class bumped at most once per 60 s. The default is the
	// segmented (HOT, WARM, COLD) LRU that memcached 1.6 runs.
	Flat bool
}

// withDefaults returns o with zero fields set to memcached's defaults.
func (o MemcachedOptions) withDefaults() MemcachedOptions {
	if o.Factor == 0 {
		o.Factor = DefaultMemcachedFactor
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultMemcachedChunkSize
	}
	if o.ItemMax == 0 {
		o.ItemMax = DefaultMemcachedItemMax
	}
	return o
}

// Validate reports the first setting memcached itself would refuse, or that the model cannot take.
func (o MemcachedOptions) Validate() error {
	if len(o.Sizes) > MaxMemcachedSizes {
		return fmt.Errorf("cannot simulate memcached at %d sizes: at most %d", len(o.Sizes), MaxMemcachedSizes)
	}
	d := o.withDefaults()
	if !(d.Factor > 1) || d.Factor > 64 {
		return fmt.Errorf("cannot use memcached factor %g: memcached wants a factor > 1 (and this model ≤ 64)",
			o.Factor)
	}
	if d.ChunkSize < 0 || d.ChunkSize > mcChunkMax/2 {
		return fmt.Errorf("cannot use memcached chunk size %d: want 1..%d", o.ChunkSize, mcChunkMax/2)
	}
	if d.ItemMax < mcChunkMax || d.ItemMax > 1<<30 || d.ItemMax%mcChunkMax != 0 {
		return fmt.Errorf("cannot use memcached item max %d: memcached wants a multiple of slab_chunk_max "+
			"(%d) up to 1 GiB", o.ItemMax, mcChunkMax)
	}
	for _, s := range o.Sizes {
		if s < mcPage || s > 1<<50 {
			return fmt.Errorf("cannot simulate memcached with %d bytes: want 1 MiB to 1 PiB", s)
		}
		if uint64(d.ItemMax) > s/2 {
			return fmt.Errorf("cannot simulate memcached with %d bytes and item max %d: memcached refuses an "+
				"item max above half its memory", s, d.ItemMax)
		}
	}
	return nil
}

// LRU segments, in memcached's order (HOT_LRU, WARM_LRU, COLD_LRU); flat mode uses COLD only.
const (
	lruHot = iota
	lruWarm
	lruCold
	lruCount
)

// mcItem state bits.
const (
	mcLRUMask = 3      // the segment
	mcLinked  = 1 << 2 // in the cache
	mcFetched = 1 << 3 // ITEM_FETCHED
	mcActive  = 1 << 4 // ITEM_ACTIVE
	mcCFlags  = 1 << 5 // ITEM_CFLAGS: client flags stored
	mcChunked = 1 << 6 // ITEM_CHUNKED: the layout is in mcSim.chunked
	mcHotItem = 1 << 7 // the item of a hot key: it weighs 1 when keys are sampled
)

// mcItem is one key's item in one simulated server. 24 bytes.
type mcItem struct {
	prev, next uint32 // key indices in the item's LRU; 0 = none
	time       uint32 // it->time: last link or bump, in the model's seconds
	exp        uint32 // it->exptime; 0 = never
	ntotal     uint32 // ITEM_ntotal
	cls        uint8  // the class whose LRU holds the item
	st         uint8
	_          [2]uint8
}

// mcLayout is where an item's memory is: one chunk of head, and for chunked items n chunks of the largest
// class and one of tail (0: none).
type mcLayout struct {
	head, tail uint8
	n          uint32
}

// mcClass is one slab class of one simulated server.
type mcClass struct {
	pages      uint64
	used       uint64 // chunks held, each weighing what its key stands for
	head, tail [lruCount]uint32
	bytes      [lruCount]uint64 // sizes_bytes: ntotal of the linked items of each segment
	// The last juggle's time, and whether an item moved or was marked since. A juggle of a class that has not
	// changed since one at the same time would move nothing: it is skipped.
	juggled uint32
	dirty   bool
}

// mcSim is one simulated server.
type mcSim struct {
	limit, malloced uint64
	cls             []mcClass
	// The servers' items are interleaved by key (all of a key's items side by side, one cache line for a few
	// servers): this server's item of key idx is all[idx*stride+off]. all is the model's slice, grown by index.
	all         []mcItem
	stride, off int
	chunked     map[uint32]mcLayout
	// Counts weighted by what a key stands for (1, or 1/rate for sampled keys); hits of sampled keys [0] and of
	// hot keys [1].
	hits                                        [2]uint64
	evictions, reclaimed, outOfMemory, tooLarge uint64
}

// mcKeySlot is one entry of the model's key table: a key and what the model keeps of it across servers. 24 bytes,
// so that one cache miss finds all of it.
type mcKeySlot struct {
	hash uint64 // mixed key hash; 0 = empty
	idx  uint32 // index of the key's items (mcSim.item)
	cnt  uint32 // keyed events (saturating); mcHot marks a key kept exact when sampling
	val  uint32 // the latest known value size, for fills
	ttl  int32  // the latest store's exptime relative to its event (-1: already expired)
}

// mcHot marks a hot key in mcKeySlot.cnt.
const mcHot = 1 << 31

// weight is how many keys the key stands for: 1 for a hot key, 1/rate for a sampled one.
func (k *mcKeySlot) weight(m *mcModel) uint64 {
	if k.cnt&mcHot != 0 {
		return 1
	}
	return 1 << m.shift
}

// stratum is 1 for a hot key, 0 for a sampled one.
func (k *mcKeySlot) stratum() int { return int(k.cnt >> 31) }

// mcModel simulates memcached at each size of MemcachedOptions.Sizes over one stream of events.
type mcModel struct {
	opts    MemcachedOptions // with defaults
	chunk   []uint64         // chunk size by class, 1..largest
	perslab []uint64
	largest int
	maxKeys int
	slots   []mcKeySlot
	n       int    // keys in slots
	nIdx    uint32 // item indices handed out (1..nIdx-1; 0 is none)
	freeIdx []uint32
	shift   uint // sampling rate 2^-shift of the keys that are not hot
	sims    []mcSim
	started bool
	t0      int64
	now     uint32
	reads   [2]uint64 // retrievals counted, weighted, of sampled keys [0] and hot keys [1]
	items   []mcItem  // every server's items, by key index and server (mcSim.item)
	hot     *u64map   // the hot keys' hashes, once sampling
}

func newMCModel(o MemcachedOptions, maxKeys int) *mcModel {
	o = o.withDefaults()
	m := &mcModel{opts: o, maxKeys: maxKeys, slots: make([]mcKeySlot, 1024), nIdx: 1}
	m.chunk, m.perslab = []uint64{0}, []uint64{0}
	// slabs_init: the sizes grow as an unsigned int multiplied by a double.
	size := uint64(mcItemHeader + o.ChunkSize)
	i := 1
	for ; i < mcMaxClasses-1; i++ {
		if float64(size) >= float64(mcChunkMax)/o.Factor {
			break
		}
		if size%mcAlign != 0 {
			size += mcAlign - size%mcAlign
		}
		m.chunk = append(m.chunk, size)
		m.perslab = append(m.perslab, mcPage/size)
		size = uint64(float64(size) * o.Factor)
	}
	m.largest = i
	m.chunk = append(m.chunk, mcChunkMax)
	m.perslab = append(m.perslab, mcPage/mcChunkMax)
	sizes := slices.Clone(o.Sizes)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	m.items = make([]mcItem, len(sizes)) // key index 0, unused
	for i, s := range sizes {
		m.sims = append(m.sims, mcSim{limit: s, cls: make([]mcClass, m.largest+1), chunked: map[uint32]mcLayout{},
			all: m.items, stride: len(sizes), off: i})
	}
	return m
}

// item is this server's item of key idx.
func (s *mcSim) item(idx uint32) *mcItem { return &s.all[int(idx)*s.stride+s.off] }

// clsid is slabs_clsid: the smallest class whose chunks hold size bytes, the largest class for sizes above its
// chunks (chunked items), 0 for sizes over -I.
func (m *mcModel) clsid(size uint64) int {
	if size == 0 || size > uint64(m.opts.ItemMax) {
		return 0
	}
	// Binary search: chunk sizes ascend.
	lo, hi := 1, m.largest
	for lo < hi {
		mid := (lo + hi) / 2
		if m.chunk[mid] >= size {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// weight is what the item's chunks weigh: 1 for a hot key's, 1/rate for a sampled key's.
func (m *mcModel) weight(it *mcItem) uint64 {
	if it.st&mcHotItem != 0 {
		return 1
	}
	return 1 << m.shift
}

// fits reports whether class c of s has room for a chunk of weight w: its chunks weigh at most its pages'
// chunks, to the nearest sampled chunk.
func (m *mcModel) fits(s *mcSim, c int, w uint64) bool {
	return s.cls[c].used+w <= s.cls[c].pages*m.perslab[c]+w/2
}

// tick advances memcached's clock to event time t (never backwards: events of several connections interleave).
func (m *mcModel) tick(t int64) {
	if !m.started {
		m.started, m.t0, m.now = true, t, mcStartTime
	}
	if d := t - m.t0; d > 0 {
		if now := mcStartTime + uint32(min(d/int64(time.Second), math.MaxUint32-mcStartTime-1)); now > m.now {
			m.now = now
		}
	}
}

// realtime converts a relative exptime (seconds from now; see relTTL) to memcached's clock, as realtime() does.
func (m *mcModel) realtime(rel int32) uint32 {
	switch {
	case rel == 0:
		return 0
	case rel < 0:
		return 1 // already expired
	}
	return m.now + uint32(rel)
}

// relTTL is an event's exptime relative to the event: 0 never, -1 already expired.
func relTTL(ev *profile.Event) int32 {
	ttl := ev.TTL
	if ttl > ttlRelativeMax {
		ttl -= ev.Time / int64(time.Second)
		if ttl <= 0 {
			return -1
		}
	}
	if ttl < 0 {
		return -1
	}
	return int32(min(ttl, math.MaxInt32/2))
}

// ntotal is ITEM_ntotal of an item of nkey key bytes and nbytes of value with its "\r\n".
func ntotal(nkey uint16, flags bool, nbytes uint64) uint64 {
	n := mcItemHeader + uint64(nkey) + 1 + nbytes + mcCAS
	if flags {
		n += mcFlags
	}
	return n
}

// add simulates one keyed event with mixed key hash h. counted says whether the event is a retrieval of the
// analyzer's MRC model; fillOnMiss whether that model is fill_on_miss.
func (m *mcModel) add(ev *profile.Event, h uint64, counted, fillOnMiss bool) {
	m.tick(ev.Time)
	var k *mcKeySlot
	if h>>(64-m.shift) == 0 {
		k = m.index(h) // nil when the table filled and the key left the sample
	} else if m.hot != nil {
		if _, ok := m.hot.get(h); ok {
			k = m.find(h)
		}
	}
	if k == nil {
		return
	}
	if k.cnt&^mcHot != mcHot-1 {
		k.cnt++
	}
	idx := k.idx
	cmd := ev.Cmd
	switch {
	case cmd.IsRetrieval():
		m.read(ev, k, counted, fillOnMiss)
	case cmd.IsStorage():
		m.store(ev, k)
	case cmd == mcproto.CmdDelete || cmd == mcproto.CmdMetaDelete:
		if failed(ev.Status) {
			return
		}
		for i := range m.sims {
			s := &m.sims[i]
			if s.item(idx).st&mcLinked != 0 {
				s.unlink(m, idx)
			}
		}
	case cmd == mcproto.CmdTouch:
		for i := range m.sims {
			if s := &m.sims[i]; s.get(m, idx, true) {
				s.item(idx).exp = m.realtime(relTTL(ev))
			}
		}
	case cmd == mcproto.CmdIncr || cmd == mcproto.CmdDecr || cmd == mcproto.CmdMetaArithmetic:
		// do_add_delta: in place, with do_item_update.
		for i := range m.sims {
			if s := &m.sims[i]; s.get(m, idx, false) {
				s.update(m, idx)
				s.juggle(m, int(s.item(idx).cls))
			}
		}
	}
}

// keyless simulates an event without a key: flush_all (without delay) empties every server.
func (m *mcModel) keyless(ev *profile.Event) {
	m.tick(ev.Time)
	if ev.Cmd != mcproto.CmdFlushAll || failed(ev.Status) {
		return
	}
	for i := range m.sims {
		s := &m.sims[i]
		for idx := range m.nIdx {
			if s.item(idx).st&mcLinked != 0 {
				s.unlink(m, idx)
			}
		}
	}
}

// failed reports whether a recorded status says the server refused the request before touching the cache.
func failed(st mcproto.Status) bool {
	return st == mcproto.StatusError || st == mcproto.StatusClientError
}

// read simulates a retrieval in every server: a hit bumps the item; a counted miss is filled (a look-aside
// client's set) when the model is fill_on_miss or the recorded read hit, with the read's value size or else the
// key's latest known one.
func (m *mcModel) read(ev *profile.Event, k *mcKeySlot, counted, fillOnMiss bool) {
	switch ev.Status {
	case mcproto.StatusHit, mcproto.StatusMiss, mcproto.StatusUnknown:
	default:
		return
	}
	if ev.ValueSize > 0 {
		k.val = ev.ValueSize
	}
	idx, w, st := k.idx, k.weight(m), k.stratum()
	if counted {
		m.reads[st] += w
	}
	fill := counted && (fillOnMiss || ev.Status == mcproto.StatusHit)
	touch := ev.Cmd == mcproto.CmdGat || ev.Cmd == mcproto.CmdGats
	for i := range m.sims {
		s := &m.sims[i]
		hit := s.get(m, idx, true)
		if hit && touch {
			s.item(idx).exp = m.realtime(relTTL(ev))
		}
		if !counted {
			continue
		}
		if hit {
			s.hits[st] += w
			continue
		}
		if fill {
			s.set(m, k, ev.KeySize, ev.Flags != 0, uint64(k.val)+2, m.realtime(k.ttl))
		}
	}
}

// store simulates a storage command in every server.
func (m *mcModel) store(ev *profile.Event, k *mcKeySlot) {
	if failed(ev.Status) {
		return
	}
	cmd := ev.Cmd
	rel := relTTL(ev)
	if cmd != mcproto.CmdAppend && cmd != mcproto.CmdPrepend {
		k.val, k.ttl = ev.ValueSize, rel
	}
	exp := m.realtime(rel)
	nbytes := uint64(ev.ValueSize) + 2
	flags := ev.Flags != 0
	for i := range m.sims {
		s := &m.sims[i]
		switch cmd {
		case mcproto.CmdSet, mcproto.CmdMetaSet:
			s.set(m, k, ev.KeySize, flags, nbytes, exp)
		default:
			s.storeExisting(m, k, ev, flags, nbytes, exp)
		}
	}
}

// set is a set in one server: allocate, then replace whatever the key held. A failed set unlinks the old value.
func (s *mcSim) set(m *mcModel, k *mcKeySlot, nkey uint16, flags bool, nbytes uint64, exp uint32) {
	idx := k.idx
	size := ntotal(nkey, flags, nbytes)
	lay, ok := s.alloc(m, k.weight(m), size, nkey, flags, nbytes)
	if !ok {
		if s.item(idx).st&mcLinked != 0 {
			s.unlink(m, idx)
		}
		return
	}
	if s.item(idx).st&mcLinked != 0 {
		s.unlink(m, idx)
	}
	s.link(m, k, lay, size, flags, exp)
}

// storeExisting is add, replace, cas, append or prepend in one server (do_store_item after the allocation).
func (s *mcSim) storeExisting(m *mcModel, k *mcKeySlot, ev *profile.Event, flags bool, nbytes uint64, exp uint32) {
	idx, w := k.idx, k.weight(m)
	size := ntotal(ev.KeySize, flags, nbytes)
	lay, ok := s.alloc(m, w, size, ev.KeySize, flags, nbytes)
	if !ok {
		return
	}
	old := s.get(m, idx, false)
	cmd := ev.Cmd
	switch {
	case cmd == mcproto.CmdAdd && old:
		s.update(m, idx)
	case cmd == mcproto.CmdAdd, cmd == mcproto.CmdReplace && old,
		cmd == mcproto.CmdCas && old && ev.Status != mcproto.StatusExists && ev.Status != mcproto.StatusNotFound:
		if old {
			s.unlink(m, idx)
		}
		s.link(m, k, lay, size, flags, exp)
		return
	case (cmd == mcproto.CmdAppend || cmd == mcproto.CmdPrepend) && old:
		// The combined item keeps the old one's flags and exptime.
		it := s.item(idx)
		oflags := it.st&mcCFlags != 0
		oexp := it.exp
		onbytes := uint64(it.ntotal) - ntotal(ev.KeySize, oflags, 0)
		csize := ntotal(ev.KeySize, oflags, onbytes+nbytes-2)
		if clay, ok := s.alloc(m, w, csize, ev.KeySize, oflags, onbytes+nbytes-2); ok {
			if s.item(idx).st&mcLinked != 0 { // the allocation may have evicted it
				s.unlink(m, idx)
			}
			s.link(m, k, clay, csize, oflags, oexp)
		}
	}
	s.free(m, lay, w)
}

// get is do_item_get: whether the key is cached (an expired item is unlinked), bumping it when update.
func (s *mcSim) get(m *mcModel, idx uint32, update bool) bool {
	it := s.item(idx)
	if it.st&mcLinked == 0 {
		return false
	}
	if it.exp != 0 && it.exp <= m.now {
		s.unlink(m, idx)
		return false
	}
	c := int(it.cls)
	if update {
		s.juggle(m, c)
		s.bump(m, idx)
		s.juggle(m, c)
	}
	return true
}

// bump is do_item_bump, with the asynchronous move of an ACTIVE item out of COLD done at once.
func (s *mcSim) bump(m *mcModel, idx uint32) {
	it := s.item(idx)
	if m.opts.Flat {
		it.st |= mcFetched
		s.update(m, idx)
		return
	}
	switch {
	case it.st&mcActive != 0:
	case it.st&mcFetched == 0:
		it.st |= mcFetched
	default:
		it.st |= mcActive
		s.cls[it.cls].dirty = true
		if it.st&mcLRUMask != lruCold {
			it.time = m.now
		} else {
			s.update(m, idx)
		}
	}
}

// update is do_item_update.
func (s *mcSim) update(m *mcModel, idx uint32) {
	it := s.item(idx)
	if !m.opts.Flat {
		it.time = m.now
		s.cls[it.cls].dirty = true
		if it.st&mcLRUMask == lruCold && it.st&mcActive != 0 {
			it.st &^= mcActive
			s.move(idx, lruWarm)
		}
		return
	}
	if it.time+mcUpdateInterval < m.now {
		it.time = m.now
		s.move(idx, lruCold)
	}
}

// alloc is do_item_alloc's memory part: it takes the chunks of an item of size bytes (ITEM_ntotal) for a key
// of weight w, evicting as memcached does, and reports false when memcached would answer SERVER_ERROR.
func (s *mcSim) alloc(m *mcModel, w, size uint64, nkey uint16, flags bool, nbytes uint64) (mcLayout, bool) {
	id := m.clsid(size)
	if id == 0 {
		s.tooLarge += w
		return mcLayout{}, false
	}
	if size <= mcChunkMax {
		if !s.allocPull(m, id, w) {
			s.outOfMemory += w
			return mcLayout{}, false
		}
		return mcLayout{head: uint8(id)}, true
	}
	// A chunked item: its header, then its chunks as read_into_chunked_item allocates them.
	htotal := uint64(nkey) + 1 + mcItemHeader + mcChunkHeader + mcCAS
	if flags {
		htotal += mcFlags
	}
	lay := mcLayout{head: uint8(m.clsid(htotal))}
	if !s.allocPull(m, int(lay.head), w) {
		s.outOfMemory += w
		return mcLayout{}, false
	}
	for remain := nbytes; remain > 0; {
		csize := min(remain+mcChunkHeader, mcChunkMax)
		c := m.clsid(csize)
		if !s.allocPull(m, c, w) {
			c = m.largest
			if csize == mcChunkMax || !s.allocPull(m, c, w) {
				s.free(m, lay, w)
				s.outOfMemory += w
				return mcLayout{}, false
			}
			csize = mcChunkMax
		}
		if c == m.largest {
			lay.n++
		} else {
			lay.tail = uint8(c)
		}
		remain -= min(remain, csize-mcChunkHeader)
	}
	return lay, true
}

// free returns the chunks of an item of weight w to their classes.
func (s *mcSim) free(m *mcModel, lay mcLayout, w uint64) {
	s.cls[lay.head].used -= w
	s.cls[m.largest].used -= uint64(lay.n) * w
	if lay.tail != 0 {
		s.cls[lay.tail].used -= w
	}
}

// allocPull is do_item_alloc_pull: a chunk of class c, evicting from c's own LRU when there is neither a free
// chunk nor a page to be had.
func (s *mcSim) allocPull(m *mcModel, c int, w uint64) bool {
	s.juggle(m, c)
	// memcached tries 10 times; a sampled key may need several evictions of hot keys (weight 1) to fit, so
	// sampled runs go on while evictions make room.
	for i := 0; i < mcAllocTries || m.shift > 0; i++ {
		if m.opts.Flat {
			s.pullTail(m, c, lruCold, 0, false, 0)
		}
		if s.slabsAlloc(m, c, w) {
			return true
		}
		if s.pullTail(m, c, lruCold, 0, true, 0) <= 0 {
			if m.opts.Flat || s.pullTail(m, c, lruHot, 0, false, 0) == 0 && i >= mcAllocTries {
				break
			}
		}
	}
	return false
}

// slabsAlloc is do_slabs_alloc: a free chunk of class c, taking a new page when there is none and -m allows (or
// the class has no page yet).
func (s *mcSim) slabsAlloc(m *mcModel, c int, w uint64) bool {
	cl := &s.cls[c]
	for !m.fits(s, c, w) {
		if s.malloced+mcPage > s.limit && cl.pages > 0 {
			return false
		}
		cl.pages++
		s.malloced += mcPage
	}
	cl.used += w
	return true
}

// link is do_item_link: the item enters HOT (COLD in flat mode) at the head, with the chunks of lay.
func (s *mcSim) link(m *mcModel, k *mcKeySlot, lay mcLayout, size uint64, flags bool, exp uint32) {
	idx := k.idx
	c := int(lay.head)
	var st uint8 = mcLinked | lruHot
	if m.opts.Flat {
		st = mcLinked | lruCold
	}
	if size > mcChunkMax {
		c = m.largest
		st |= mcChunked
		s.chunked[idx] = lay
	}
	if flags {
		st |= mcCFlags
	}
	if k.cnt&mcHot != 0 {
		st |= mcHotItem
	}
	*s.item(idx) = mcItem{time: m.now, exp: exp, ntotal: uint32(min(size, math.MaxUint32)), cls: uint8(c), st: st}
	s.pushHead(idx)
	s.juggle(m, c)
}

// unlink takes the item out of the cache and frees its memory.
func (s *mcSim) unlink(m *mcModel, idx uint32) {
	it := s.item(idx)
	s.remove(idx)
	lay := mcLayout{head: it.cls}
	if it.st&mcChunked != 0 {
		lay = s.chunked[idx]
		delete(s.chunked, idx)
	}
	s.free(m, lay, m.weight(it))
	it.st = 0
}

// pushHead links the item at the head of its segment.
func (s *mcSim) pushHead(idx uint32) {
	it := s.item(idx)
	cl := &s.cls[it.cls]
	lru := it.st & mcLRUMask
	it.prev, it.next = 0, cl.head[lru]
	if it.next != 0 {
		s.item(it.next).prev = idx
	} else {
		cl.tail[lru] = idx
	}
	cl.head[lru] = idx
	cl.bytes[lru] += uint64(it.ntotal)
	cl.dirty = true
}

// remove unlinks the item from its segment's list.
func (s *mcSim) remove(idx uint32) {
	it := s.item(idx)
	cl := &s.cls[it.cls]
	lru := it.st & mcLRUMask
	if it.prev != 0 {
		s.item(it.prev).next = it.next
	} else {
		cl.head[lru] = it.next
	}
	if it.next != 0 {
		s.item(it.next).prev = it.prev
	} else {
		cl.tail[lru] = it.prev
	}
	it.prev, it.next = 0, 0
	cl.bytes[lru] -= uint64(it.ntotal)
	cl.dirty = true
}

// move relinks the item at the head of segment lru.
func (s *mcSim) move(idx uint32, lru uint8) {
	s.remove(idx)
	it := s.item(idx)
	it.st = it.st&^mcLRUMask | lru
	s.pushHead(idx)
}

// pullTail is lru_pull_tail: it looks at the tail of segment lru of class c, reclaiming expired items, and
// evicts (evict), moves or leaves the first live one. total and maxAge are the juggle's class bytes and age
// limit. It returns how many items it removed or moved.
func (s *mcSim) pullTail(m *mcModel, c int, lru uint8, total uint64, evict bool, maxAge uint32) int {
	cl := &s.cls[c]
	removed := 0
	search := cl.tail[lru]
	for tries := mcPullTries; tries > 0 && search != 0; tries-- {
		next := s.item(search).prev
		it := s.item(search)
		if it.exp != 0 && it.exp < m.now {
			s.reclaimed += m.weight(it)
			s.unlink(m, search)
			removed++
			search = next
			continue
		}
		switch lru {
		case lruHot, lruWarm:
			limit := total * mcWarmPct / 100
			if lru == lruHot && total*mcHotPct/100 != 0 {
				limit = total * mcHotPct / 100
			}
			switch {
			case it.st&mcActive != 0:
				it.st &^= mcActive
				removed++
				s.move(search, lruWarm)
				if lru == lruWarm {
					search = next
					continue
				}
			case cl.bytes[lru] > limit || m.now-it.time > maxAge:
				s.move(search, lruCold)
				removed++
			}
		case lruCold:
			switch {
			case evict:
				s.evictions += m.weight(it)
				s.unlink(m, search)
				removed++
			case it.st&mcActive != 0 && !m.opts.Flat:
				it.st &^= mcActive
				s.move(search, lruWarm)
				removed++
			}
		}
		break
	}
	return removed
}

// juggle is lru_maintainer_juggle for class c: HOT and WARM brought within their limits, ACTIVE items rescued
// from COLD's tail.
func (s *mcSim) juggle(m *mcModel, c int) {
	cl := &s.cls[c]
	if m.opts.Flat || !cl.dirty && cl.juggled == m.now {
		return
	}
	var coldAge uint32
	if t := cl.tail[lruCold]; t != 0 {
		coldAge = m.now - s.item(t).time
	}
	total := cl.bytes[lruHot] + cl.bytes[lruWarm] + cl.bytes[lruCold]
	hotAge := uint32(float64(coldAge) * mcHotMaxFactor)
	warmAge := uint32(float64(coldAge) * mcWarmMaxFactor)
	for range mcJuggles {
		more := 0
		if s.pullTail(m, c, lruHot, total, false, hotAge) > 0 || s.pullTail(m, c, lruWarm, total, false, warmAge) > 0 {
			more++
		}
		more += s.pullTail(m, c, lruCold, total, false, 0)
		if more == 0 {
			cl.juggled, cl.dirty = m.now, false
			return
		}
	}
}

// find returns the key's slot, or nil. The pointer is valid until the next index.
func (m *mcModel) find(h uint64) *mcKeySlot {
	mask := uint64(len(m.slots) - 1)
	for i := h & mask; m.slots[i].hash != 0; i = (i + 1) & mask {
		if m.slots[i].hash == h {
			return &m.slots[i]
		}
	}
	return nil
}

// index returns the key's slot, adding the key; nil when the table was full and the key left the sample. The
// pointer is valid until the next index.
func (m *mcModel) index(h uint64) *mcKeySlot {
	if k := m.find(h); k != nil {
		return k
	}
	for m.n >= m.maxKeys {
		m.halve()
		if h>>(64-m.shift) != 0 {
			return nil
		}
	}
	if (m.n+1)*4 > len(m.slots)*3 {
		m.rehash(2 * len(m.slots))
	}
	var idx uint32
	if k := len(m.freeIdx); k > 0 {
		idx = m.freeIdx[k-1]
		m.freeIdx = m.freeIdx[:k-1]
	} else {
		if m.nIdx == math.MaxUint32 {
			panic("BUG: memcached model key indices overflow; Options.MaxKeys should have bounded them")
		}
		idx = m.nIdx
		m.nIdx++
		var zero [MaxMemcachedSizes]mcItem
		m.items = append(m.items, zero[:len(m.sims)]...)
		for i := range m.sims {
			m.sims[i].all = m.items
		}
	}
	m.n++
	return m.place(mcKeySlot{hash: h, idx: idx})
}

func (m *mcModel) place(e mcKeySlot) *mcKeySlot {
	mask := uint64(len(m.slots) - 1)
	i := e.hash & mask
	for m.slots[i].hash != 0 {
		i = (i + 1) & mask
	}
	m.slots[i] = e
	return &m.slots[i]
}

func (m *mcModel) rehash(size int) {
	old := m.slots
	m.slots = make([]mcKeySlot, size)
	for _, e := range old {
		if e.hash != 0 {
			m.place(e)
		}
	}
}

// halve halves the sampling rate, as the analyzer's stack does (stack.go): the first time, the heaviest keys so
// far become hot and stay exact (weight 1); then the other keys whose hash leaves the sample leave every server
// (freeing their chunks, not counted as evictions), the survivors' weight doubles, and each class evicts what no
// longer fits its pages.
func (m *mcModel) halve() {
	if m.shift == 0 {
		m.makeHot(min(hotKeys, m.maxKeys/4))
	}
	m.shift++
	old := m.slots
	m.slots = make([]mcKeySlot, len(old))
	for _, k := range old {
		if k.hash == 0 {
			continue
		}
		if k.cnt&mcHot != 0 || k.hash>>(64-m.shift) == 0 {
			m.place(k)
			continue
		}
		for i := range m.sims {
			if s := &m.sims[i]; s.item(k.idx).st&mcLinked != 0 {
				s.unlink(m, k.idx)
			}
		}
		m.freeIdx = append(m.freeIdx, k.idx)
		m.n--
	}
	for i := range m.sims {
		m.sims[i].reweigh(m)
	}
}

// makeHot marks the n keys with the most events hot, and their items.
func (m *mcModel) makeHot(n int) {
	keys := make([]*mcKeySlot, 0, m.n)
	for i := range m.slots {
		if m.slots[i].hash != 0 {
			keys = append(keys, &m.slots[i])
		}
	}
	slices.SortFunc(keys, func(x, y *mcKeySlot) int { return cmp.Compare(y.cnt, x.cnt) })
	m.hot = newU64Map(n)
	for _, k := range keys[:min(n, len(keys))] {
		k.cnt |= mcHot
		m.hot.put(k.hash, 0)
		for i := range m.sims {
			m.sims[i].item(k.idx).st |= mcHotItem
		}
	}
}

// reweigh recounts what each class's chunks weigh after weights changed, and evicts (uncounted) from classes
// that no longer hold them.
func (s *mcSim) reweigh(m *mcModel) {
	for c := range s.cls {
		s.cls[c].used = 0
	}
	for idx := range m.nIdx {
		it := s.item(idx)
		if it.st&mcLinked == 0 {
			continue
		}
		w := m.weight(it)
		lay := mcLayout{head: it.cls}
		if it.st&mcChunked != 0 {
			lay = s.chunked[idx]
		}
		s.cls[lay.head].used += w
		s.cls[m.largest].used += uint64(lay.n) * w
		if lay.tail != 0 {
			s.cls[lay.tail].used += w
		}
	}
	evictions, reclaimed := s.evictions, s.reclaimed
	for c := 1; c <= m.largest; c++ {
		for s.cls[c].used > s.cls[c].pages*m.perslab[c] {
			if s.pullTail(m, c, lruCold, 0, true, 0) > 0 {
				continue
			}
			if m.opts.Flat || s.pullTail(m, c, lruHot, 0, false, 0)+s.pullTail(m, c, lruWarm, 0, false, 0) == 0 {
				break
			}
		}
	}
	s.evictions, s.reclaimed = evictions, reclaimed
}

// MemcachedSummary is the memcached model's prediction (Summary.Memcached); see SCHEMA.md.
type MemcachedSummary struct {
	Factor       float64          `json:"factor"`
	ChunkSize    int              `json:"chunk_size"`
	ItemSizeMax  int              `json:"item_size_max"`
	SlabChunkMax int              `json:"slab_chunk_max"`
	SlabClasses  int              `json:"slab_classes"`
	Segmented    bool             `json:"segmented"`
	Model        string           `json:"model"`
	Method       string           `json:"method"`
	Retrievals   uint64           `json:"retrievals"`
	Points       []MemcachedPoint `json:"points"`
}

// MemcachedPoint is the prediction for one memory limit.
type MemcachedPoint struct {
	MemoryBytes  uint64   `json:"memory_bytes"`
	HitRatio     float64  `json:"hit_ratio"`
	MissRatio    float64  `json:"miss_ratio"`
	Hits         uint64   `json:"hits"`
	Misses       uint64   `json:"misses"`
	Evictions    uint64   `json:"evictions"`
	Reclaimed    uint64   `json:"reclaimed"`
	OutOfMemory  uint64   `json:"out_of_memory"`
	TooLarge     uint64   `json:"too_large"`
	Pages        uint64   `json:"pages"`
	LRUMissRatio *float64 `json:"lru_miss_ratio,omitempty"`
}

// summary reports the model's figures. reads is the analyzer's retrieval count (mrc_reads), which the model's
// sampled ratios are scaled to; model is the MRC model's name and mrc the LRU curve, read where it has a
// point at a simulated limit (in bytes).
func (m *mcModel) summary(reads uint64, model string, mrc []MRCPoint, unit string) *MemcachedSummary {
	ms := &MemcachedSummary{Factor: m.opts.Factor, ChunkSize: m.opts.ChunkSize, ItemSizeMax: m.opts.ItemMax,
		SlabChunkMax: mcChunkMax, SlabClasses: m.largest, Segmented: !m.opts.Flat, Model: model, Method: "exact",
		Retrievals: reads, Points: []MemcachedPoint{}}
	if m.shift > 0 {
		ms.Method = "shards(rate=1/" + strconv.FormatUint(1<<m.shift, 10) + ")"
	}
	// Hot keys count exactly; the sampled stratum is scaled to its exact retrieval count (reads minus hot reads),
	// as the analyzer's MRC is. In exact mode there is no hot stratum and the scale is 1.
	scale := 1.0
	if rest := reads - min(reads, m.reads[1]); m.reads[0] != rest && m.reads[0] > 0 {
		scale = float64(rest) / float64(m.reads[0])
	}
	for i := range m.sims {
		s := &m.sims[i]
		p := MemcachedPoint{MemoryBytes: s.limit, MissRatio: 1, Pages: s.malloced / mcPage,
			Evictions: s.evictions, Reclaimed: s.reclaimed, OutOfMemory: s.outOfMemory, TooLarge: s.tooLarge}
		if reads > 0 {
			p.HitRatio = min(1, (float64(s.hits[1])+float64(s.hits[0])*scale)/float64(reads))
			p.MissRatio = 1 - p.HitRatio
		}
		p.Hits = uint64(math.Round(p.HitRatio * float64(reads)))
		p.Misses = reads - p.Hits
		if unit != UnitObjects {
			for _, q := range mrc {
				if q.CacheBytes == s.limit {
					r := q.MissRatio
					p.LRUMissRatio = &r
				}
			}
		}
		ms.Points = append(ms.Points, p)
	}
	return ms
}
