// This file holds the Analyzer: its options and the per-event path (Add), which must stay cheap and
// allocation-free because `membench inspect` runs it over every event of a profile.

package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// Defaults for zero Options fields.
const (
	// DefaultMaxKeys bounds the per-key table: about 80 MB at this size. Up to it every figure is exact.
	DefaultMaxKeys = 1 << 20
	// DefaultRateBucket is the width of one rate and hit-ratio-over-time bucket.
	DefaultRateBucket = time.Second
	// DefaultMRCPoints is how many cache sizes the MRC gets when Options.MRCSizes is empty.
	DefaultMRCPoints = 32
	// MaxMRCSizes bounds Options.MRCSizes: each requested size is a simulated cache that every access visits.
	MaxMRCSizes = 64
	// MaxRateBuckets bounds the rate series: past it, neighbouring buckets merge and the width doubles.
	MaxRateBuckets = 1000
	// minMaxKeys keeps the SHARDS sample large enough to mean something.
	minMaxKeys = 256
	// maxConnections is how many connection ids are counted exactly before a HyperLogLog takes over.
	maxConnections = 1 << 20
	// hotKeys is how many of the heaviest keys stay exact in the MRC once keys are sampled (at most MaxKeys/4).
	hotKeys = 1024
	// heavyHitters is the Space-Saving size for keys once they outgrow MaxKeys; top_keys_share needs the top 1000.
	heavyHitters = 4096
	// topNamespaceSlots is the Space-Saving size for namespaces (exact up to this many distinct namespaces).
	topNamespaceSlots = 1024
	// ttlRelativeMax is memcached's boundary: larger exptimes are absolute Unix times.
	ttlRelativeMax = 30 * 24 * 3600
)

// MRC models (Options.MRCModel, Summary.MRCModel): how retrievals drive the simulated cache.
const (
	// ModelRecorded follows the recorded outcomes: retrievals are the reads answered hit or miss, a key is live
	// once stored or hit, and a read of a key that is not live misses at every size.
	ModelRecorded = "recorded"
	// ModelFillOnMiss ignores outcomes, as libCacheSim does: every read (answered hit or miss, or with no
	// recorded outcome) is a retrieval, hits iff its key is in the simulated cache, and a miss inserts the key
	// with the read's size.
	ModelFillOnMiss = "fill_on_miss"
)

// MRC units (Options.MRCUnit, Summary.MRCUnit).
const (
	UnitBytes   = "bytes"   // caches hold bytes; an object is its key size + value size
	UnitObjects = "objects" // caches hold a number of objects, whatever their sizes
)

// Options configures an Analyzer. The zero value is ready to use.
type Options struct {
	// MRCSizes are the cache sizes (in MRCUnit) at which the miss-ratio curve is reported, at most MaxMRCSizes.
	// Each is simulated as an LRU cache of that size (exact in exact mode, whatever the trace: objects larger
	// than the cache are not admitted, deletes do not bring evicted keys back). Empty: DefaultMRCPoints sizes
	// log-spaced up to the largest stack distance seen, chosen at Summary time, read off the stack distances at
	// histogram bucket bounds and no smaller than the largest object, where the two agree.
	MRCSizes []uint64
	// MRCModel is ModelRecorded or ModelFillOnMiss; empty chooses by what the profile holds: fill_on_miss when
	// its first read has no recorded outcome (an imported trace), recorded otherwise.
	MRCModel string
	// MRCUnit is UnitBytes (empty means bytes) or UnitObjects.
	MRCUnit string
	// MaxKeys is how many distinct keys are tracked exactly (0: DefaultMaxKeys, at least 256). It bounds memory
	// at about 80 bytes per key. Beyond it, key figures switch to estimates (see Summary).
	MaxKeys int
	// RateBucket is the width of the rate and hit-ratio-over-time buckets (0: DefaultRateBucket).
	RateBucket time.Duration
	// Memcached, when it has sizes, simulates memcached itself at each (memcached.go; Summary.Memcached).
	Memcached MemcachedOptions
}

// Validate reports the first invalid field, naming it.
func (o *Options) Validate() error {
	if o.MaxKeys < 0 || (o.MaxKeys > 0 && o.MaxKeys < minMaxKeys) || o.MaxKeys > 1<<30 {
		return fmt.Errorf("cannot use max keys %d: want 0 (default %d) or %d..%d", o.MaxKeys, DefaultMaxKeys,
			minMaxKeys, 1<<30)
	}
	if o.RateBucket < 0 {
		return fmt.Errorf("cannot use rate bucket %s: want a positive duration or 0 (default %s)", o.RateBucket,
			DefaultRateBucket)
	}
	for _, s := range o.MRCSizes {
		if s == 0 {
			return fmt.Errorf("cannot use MRC cache size 0 in %v: sizes must be positive", o.MRCSizes)
		}
	}
	if len(o.MRCSizes) > MaxMRCSizes {
		return fmt.Errorf("cannot simulate %d MRC cache sizes: at most %d", len(o.MRCSizes), MaxMRCSizes)
	}
	switch o.MRCModel {
	case "", ModelRecorded, ModelFillOnMiss:
	default:
		return fmt.Errorf("unknown MRC model %q: want %s or %s", o.MRCModel, ModelRecorded, ModelFillOnMiss)
	}
	switch o.MRCUnit {
	case "", UnitBytes, UnitObjects:
	default:
		return fmt.Errorf("unknown MRC unit %q: want %s or %s", o.MRCUnit, UnitBytes, UnitObjects)
	}
	return o.Memcached.Validate()
}

// Analyzer accumulates the figures of one profile, event by event, in bounded memory. It is not safe for
// concurrent use. The zero value is not usable; call New.
type Analyzer struct {
	opts    Options
	maxKeys int

	events, keyed    uint64
	minTime, maxTime int64
	protos           [256]uint64 // by mcproto.Protocol
	cmds             [256]uint64 // by mcproto.Command
	statuses         [256]uint64 // by mcproto.Status
	hits, misses     uint64      // retrievals answered hit / miss
	model            mrcModel    // the MRC model; undecided until the first read when Options.MRCModel is empty
	mrcReads         uint64      // retrievals the MRC counts (all, sampled or not)
	multiGets        uint64      // text multi-key gets (events of their first key)
	multiKeys        uint64      // events that are keys of multi-key gets
	ttlExpired       uint64      // stores whose exptime was already in the past
	conns            *distinct

	keySize, valueSize, ttl, latency hist

	// Rate series: bucket i covers [origin + i·width, origin + (i+1)·width).
	origin, width int64
	rate          []rateBucket

	stack   *lruStack
	exact   bool         // no key has been dropped from the table yet
	uniq    *hll         // distinct keys once not exact
	heavy   *spaceSaving // key heavy hitters once not exact
	hotSet  *u64map      // keys tracked exactly once not exact (see stack.go)
	nsHeavy *spaceSaving // namespaces, always
	mc      *mcModel     // the memcached model; nil unless Options.Memcached has sizes
}

type mrcModel uint8

const (
	modelUndecided mrcModel = iota
	modelRecorded
	modelFillOnMiss
)

type rateBucket struct {
	total, hits, misses uint64
	byCmd               [mcproto.NumCommands]uint64
}

// New returns an Analyzer for opts. Zero fields take the documented defaults; opts must pass Validate (New
// panics otherwise, which is a bug in the caller).
func New(opts Options) *Analyzer {
	if err := opts.Validate(); err != nil {
		panic("BUG: analyze.New with unvalidated options: " + err.Error())
	}
	if opts.RateBucket == 0 {
		opts.RateBucket = DefaultRateBucket
	}
	a := &Analyzer{
		opts:    opts,
		maxKeys: cmp.Or(opts.MaxKeys, DefaultMaxKeys),
		width:   int64(opts.RateBucket),
		rate:    make([]rateBucket, 0, MaxRateBuckets),
		conns:   newDistinct(maxConnections),
		exact:   true,
		nsHeavy: newSpaceSaving(topNamespaceSlots),
	}
	var sizes []uint64
	if len(opts.MRCSizes) > 0 {
		sizes = slices.Clone(opts.MRCSizes)
		slices.Sort(sizes)
		sizes = slices.Compact(sizes)
	}
	switch opts.MRCModel {
	case ModelRecorded:
		a.model = modelRecorded
	case ModelFillOnMiss:
		a.model = modelFillOnMiss
	}
	a.stack = newLRUStack(sizes, opts.MRCUnit == UnitObjects)
	if len(opts.Memcached.Sizes) > 0 {
		a.mc = newMCModel(opts.Memcached, a.maxKeys)
	}
	return a
}

// simulated reports whether ev is a retrieval for the MRC, deciding the model at the first read when it is open:
// reads answered hit or miss mean a recorded profile, a read without an outcome an imported trace.
func (a *Analyzer) simulated(ev *profile.Event) bool {
	if !ev.Cmd.IsRetrieval() {
		return false
	}
	switch ev.Status {
	case mcproto.StatusHit, mcproto.StatusMiss:
		if a.model == modelUndecided {
			a.model = modelRecorded
		}
		return true
	case mcproto.StatusUnknown:
		if a.model == modelUndecided {
			a.model = modelFillOnMiss
		}
		return a.model == modelFillOnMiss
	}
	return false
}

// Add accounts one event. It does not keep ev. In the steady state (tables grown to the profile's key count) it
// does not allocate.
func (a *Analyzer) Add(ev *profile.Event) {
	if a.events == 0 {
		a.minTime, a.maxTime, a.origin = ev.Time, ev.Time, ev.Time
	}
	a.events++
	a.minTime = min(a.minTime, ev.Time)
	a.maxTime = max(a.maxTime, ev.Time)
	a.protos[ev.Proto]++
	a.cmds[ev.Cmd]++
	a.statuses[ev.Status]++
	a.conns.add(ev.Conn)
	if ev.KeyCount > 1 {
		a.multiKeys++
		if ev.KeyIndex == 0 {
			a.multiGets++
		}
	}

	cmd := ev.Cmd
	retrieval := cmd.IsRetrieval() && (ev.Status == mcproto.StatusHit || ev.Status == mcproto.StatusMiss)
	b := a.bucket(ev.Time)
	b.total++
	if int(cmd) < mcproto.NumCommands {
		b.byCmd[cmd]++
	} else {
		b.byCmd[mcproto.CmdUnknown]++
	}
	if retrieval {
		if ev.Status == mcproto.StatusHit {
			a.hits++
			b.hits++
		} else {
			a.misses++
			b.misses++
		}
	}
	if ev.Latency > 0 {
		a.latency.add(uint64(ev.Latency))
	}
	storage := cmd.IsStorage()
	if storage {
		a.addTTL(ev)
	}
	if storage || (retrieval && ev.Status == mcproto.StatusHit) || unknownRead(ev) {
		a.valueSize.add(uint64(ev.ValueSize))
	}
	if !cmd.HasKey() {
		if a.mc != nil {
			a.mc.keyless(ev)
		}
		return
	}
	a.keyed++
	a.keySize.add(uint64(ev.KeySize))
	if ev.NSHash != 0 {
		a.nsHeavy.addN(ev.NSHash, 1)
	}
	sim := a.simulated(ev)
	if sim {
		a.mrcReads++
	}
	h := mix64(ev.KeyHash)
	if a.mc != nil {
		a.mc.add(ev, h, sim, a.model == modelFillOnMiss)
	}
	if a.stack.inSample(h) {
		a.track(h, ev, sim) // may end exact mode: the estimators below are seeded without this event
	} else if a.hotSet != nil {
		if _, ok := a.hotSet.get(h); ok {
			a.track(h, ev, sim)
		}
	}
	if !a.exact {
		a.uniq.add(h)
		a.heavy.addN(h, 1)
	}
}

// addTTL records a store's exptime as seconds from the event (0 = never expires).
func (a *Analyzer) addTTL(ev *profile.Event) {
	ttl := ev.TTL
	if ttl > ttlRelativeMax {
		ttl -= ev.Time / int64(time.Second)
		if ttl <= 0 {
			ttl = -1
		}
	}
	if ttl < 0 {
		a.ttlExpired++
		return
	}
	a.ttl.add(uint64(ttl))
}

// bucket returns the rate bucket for time t, merging buckets when t lies past the bound. Events before the first
// event's time count in bucket 0.
func (a *Analyzer) bucket(t int64) *rateBucket {
	d := t - a.origin
	if d < 0 {
		d = 0
	}
	i := d / a.width
	for i >= MaxRateBuckets {
		a.mergeBuckets()
		i = d / a.width
	}
	for int64(len(a.rate)) <= i {
		a.rate = append(a.rate, rateBucket{})
	}
	return &a.rate[i]
}

func (a *Analyzer) mergeBuckets() {
	n := (len(a.rate) + 1) / 2
	for i := range n {
		m := a.rate[2*i]
		if j := 2*i + 1; j < len(a.rate) {
			o := &a.rate[j]
			m.total += o.total
			m.hits += o.hits
			m.misses += o.misses
			for c := range m.byCmd {
				m.byCmd[c] += o.byCmd[c]
			}
		}
		a.rate[i] = m
	}
	a.rate = a.rate[:n]
	a.width *= 2
}

// unknownRead reports whether ev is a read without a recorded outcome that names a value size: an imported
// trace's read, whose size is its object's.
func unknownRead(ev *profile.Event) bool {
	return ev.Status == mcproto.StatusUnknown && ev.Cmd.IsRetrieval() && ev.ValueSize > 0
}

// objSize is key size + value size, saturated to the table's uint32.
func objSize(keySize uint16, valueSize uint64) uint32 {
	return uint32(min(uint64(keySize)+valueSize, math.MaxUint32))
}

// track updates the tracked key h: its count, size, and the LRU stack, following the MRC model documented on
// Summary ("in the stack" is "live"). retrieval says whether the MRC counts ev (Analyzer.simulated).
func (a *Analyzer) track(h uint64, ev *profile.Event, retrieval bool) {
	s := a.stack
	e := s.keys.find(h)
	if e == nil {
		for s.keys.n >= a.maxKeys {
			a.halve()
			if !s.inSample(h) {
				return
			}
		}
		e = s.keys.insert(h)
		s.resize(e, objSize(ev.KeySize, 0))
	}
	e.count++
	cmd := ev.Cmd
	switch {
	case retrieval && a.model == modelFillOnMiss:
		// A hit or a filled miss: either way the key is now the most recent, at the read's size when it
		// names one.
		s.retrieve(e)
		size := e.size
		if ev.ValueSize > 0 {
			size = objSize(ev.KeySize, uint64(ev.ValueSize))
		}
		s.use(e, size)
	case retrieval:
		s.retrieve(e)
		if ev.Status == mcproto.StatusHit {
			s.use(e, objSize(ev.KeySize, uint64(ev.ValueSize)))
		} else if e.pos != 0 {
			s.use(e, e.size)
		}
	case cmd.IsStorage():
		switch ev.Status {
		case mcproto.StatusStored, mcproto.StatusNoneExpected, mcproto.StatusExists, mcproto.StatusUnknown:
			size := objSize(ev.KeySize, uint64(ev.ValueSize))
			if cmd == mcproto.CmdAppend || cmd == mcproto.CmdPrepend {
				size = objSize(0, uint64(e.size)+uint64(ev.ValueSize))
			}
			s.use(e, size)
		case mcproto.StatusNotStored:
			if e.pos != 0 {
				s.use(e, e.size)
			}
		}
	case cmd == mcproto.CmdDelete || cmd == mcproto.CmdMetaDelete:
		switch ev.Status {
		case mcproto.StatusError, mcproto.StatusClientError, mcproto.StatusServerError:
		default:
			s.remove(e)
		}
	case cmd == mcproto.CmdTouch || cmd == mcproto.CmdIncr || cmd == mcproto.CmdDecr ||
		cmd == mcproto.CmdMetaArithmetic:
		if e.pos != 0 {
			s.use(e, e.size)
		}
	case unknownRead(ev) && e.pos == 0:
		// A read the recorded model does not count still tells the object's size, for the working set.
		s.resize(e, objSize(ev.KeySize, uint64(ev.ValueSize)))
	}
}

// halve lowers the SHARDS rate. The first time, it also seeds the estimators that take over from the exact
// table: a HyperLogLog with every key seen, Space-Saving with the heaviest exact counts, and the hot keys that the
// MRC keeps exact.
func (a *Analyzer) halve() {
	if a.exact {
		a.exact = false
		a.uniq = new(hll)
		entries := make([]keyEntry, 0, a.stack.keys.n)
		for _, e := range a.stack.keys.slots {
			if e.hash != 0 {
				a.uniq.add(e.hash)
				entries = append(entries, e)
			}
		}
		slices.SortFunc(entries, func(x, y keyEntry) int { return cmp.Compare(y.count, x.count) })
		a.heavy = newSpaceSaving(heavyHitters)
		for _, e := range entries[:min(len(entries), heavyHitters)] {
			a.heavy.addN(e.hash, e.count)
		}
		if len(entries) > heavyHitters {
			a.heavy.unseeded = entries[heavyHitters].count
		}
		hot := make([]uint64, 0, min(hotKeys, a.maxKeys/4))
		a.hotSet = newU64Map(cap(hot))
		for _, e := range entries[:min(len(entries), cap(hot))] {
			hot = append(hot, e.hash)
			a.hotSet.put(e.hash, 0)
		}
		a.stack.makeHot(hot)
	}
	a.stack.halve()
}
