// This file holds Model, the description of a profile that the synthetic generator draws from, and Fit, which
// builds it from a profile in two streaming passes.
//
// The model is a key-lifetime model (in the spirit of the shot-noise model of Traverso et al., "Temporal
// locality in today's content caching: why it matters and how to model it", SIGCOMM CCR 2013): each key has a
// number of references, a start and a span in the window, and its references fall inside the span with gaps and
// a position density fitted for keys of its popularity class. Keys are templates: (count, reads, writes, key size, value
// size, start, span) of the profile's keys, drawn without replacement within each popularity class, so that
// popularity, the size distributions and their correlations come out exactly; the heaviest keys are kept one by
// one. Temporal locality is kept because each class's spans, gaps and in-span positions are the profile's, so
// each key's reuse distances (and with them, by the Che approximation for LRU, the miss-ratio curve) follow the
// profile. A popularity-only model is the special case where every span is the whole window
// (Model.PopularityOnly). Each template keeps its key's command sequence (read hit, read miss, write, other, one
// byte per reference) and value-size changes, so per-key order comes out as captured: a look-aside miss is
// followed by its set (emitted at once, taking no time of its own), a miss is followed by a set only where the
// capture shows one, and read-only, write-only and counter-like keys keep their behaviour. The kind within a
// category (get or gets, text or meta, …) follows a per-key chain on the key's previous event (hit, miss, store,
// delete, …).

package workload

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// Model constants.
const (
	// DefaultHotKeys is how many of the heaviest keys the model keeps one by one (count, sizes, start, span):
	// with heavy-tailed popularity they carry a large share of events, and drawing their sizes at random would
	// move the per-event size distributions by their share.
	DefaultHotKeys = 1024
	// DefaultFitMaxKeys bounds the per-key table of Fit (about 100 bytes per key). Past it, keys are sampled by
	// hash and the classes' key counts scaled back.
	DefaultFitMaxKeys = 1 << 22
	startBuckets      = 32  // a key starting in the first 1/32 and ending in the last is in every epoch
	posBuckets        = 128 // position density of references inside a span
	spanSubBits       = 3   // span lengths: 8 log buckets per power of two
)

// Key states for the command model: what the key's previous event was.
const (
	stFirst  = iota // no previous event
	stHit           // retrieval that hit
	stMiss          // retrieval that missed
	stStore         // storage command
	stDelete        // delete / md
	stOther         // anything else with a key
	numStates
)

// Kind is what a request looks like on the wire, without its key: protocol, command and the quiet/noreply
// flags.
type Kind struct {
	Proto   mcproto.Protocol
	Cmd     mcproto.Command
	Quiet   bool
	Noreply bool
}

func kindOf(ev *profile.Event) Kind {
	return Kind{Proto: ev.Proto, Cmd: ev.Cmd, Quiet: ev.Quiet, Noreply: ev.Noreply}
}

// Template is what the model keeps of one key: no identity, only its figures.
type Template struct {
	Count     uint32
	Reads     uint32 // retrievals among Count
	Writes    uint32 // storage commands among Count
	KeySize   uint16
	ValueSize uint32  // the key's value size (drawn from its class for keys never stored nor hit)
	Start     float32 // first reference, as a fraction of the window's keyed events
	Span      float32 // last minus first reference, in keyed events
	NS        uint32  // the key's namespace: Model.Namespaces[NS-1], 0 for none
	// Seq is the key's command sequence, one symbol (sym*) per reference (for its first maxSeq references):
	// which category each reference was and whether a read hit. It keeps per-key order (a look-aside miss is
	// followed by its set, a read-mostly key reads after its one write) and per-key hit/miss counts, which a
	// chain over global shares cannot. Nil when Fit ran out of its symbol budget.
	Seq []byte
	// Sizes are the key's value-size changes after ValueSize (its first known size): at reference At the size
	// becomes Size. At most maxSizeChanges are kept.
	Sizes []SizeChange
	// Attached is how many of the key's references are attached fills (symAttached): its timing has
	// Count−Attached references.
	Attached uint32
}

// SizeChange is a change of a key's value size at its At-th reference (0-based).
type SizeChange struct {
	At   uint32
	Size uint32
}

// Per-reference symbols of Template.Seq.
const (
	symOther    = iota // delete, touch, incr, …
	symReadHit         // retrieval that hit
	symReadMiss        // retrieval that missed
	symRead            // retrieval without an outcome (imported traces): the generator's cache decides
	symWrite           // storage command
	// symAttached marks a write that follows its key's missed read within attachGap keyed events: a
	// look-aside fill. It takes no place of its own in the key's timing (gaps, positions); the generator emits
	// it right after the miss, as the application sent it.
	symAttached = 0x80
	attachGap   = 64
)

// Sequence bounds: per key, and for the whole model (one byte per keyed event of the profile). Past them a
// key's commands come from the chain (Model.Next) and its read outcomes from HitLive, which keeps shares but not
// per-key order.
const (
	maxSeq         = 1 << 30
	maxSeqTotal    = 1 << 28
	maxSizeChanges = 1 << 8
)

// symOf returns the Seq symbol of a keyed event.
func symOf(ev *profile.Event) byte {
	switch catOf(ev.Cmd) {
	case catWrite:
		return symWrite
	case catRead:
		switch ev.Status {
		case mcproto.StatusHit:
			return symReadHit
		case mcproto.StatusMiss:
			return symReadMiss
		}
		return symRead
	}
	return symOther
}

// Class describes the keys of one popularity class (counts within a factor of √2), other than the hot keys.
type Class struct {
	Keys float64 // keys in the class (scaled back when Fit sampled keys)
	// Templates are the class's keys (those sampled, when Fit sampled keys), in a fixed order.
	Templates []Template
	// Pos is the cumulative density of reference positions inside spans (first and last excluded), at
	// posBuckets+1 evenly spaced points from 0 to 1.
	Pos [posBuckets + 1]float64
	// Gaps is the distribution of normalized gaps between a key's consecutive references (the gap divided by
	// the key's mean gap, span/(count−1)), as gap buckets (gapValue); GapMean is its mean.
	Gaps    *Discrete
	GapMean float64
}

// Normalized gaps are kept in log buckets, 8 per power of two, centred on 1.
const (
	gapSub    = 8
	gapOffset = 40 * gapSub
	gapMaxB   = 2*gapOffset - 1
)

func gapBucket(ng float64) uint64 {
	if ng <= 0 {
		return 0
	}
	return uint64(min(max(math.Round(math.Log2(ng)*gapSub)+gapOffset, 0), gapMaxB))
}

func gapValue(b uint64) float64 { return math.Exp2((float64(b) - gapOffset) / gapSub) }

// Model is a fitted workload. Build one with Fit (from a profile) and draw events with Generator.
type Model struct {
	Keyed       uint64 // keyed events of the window
	Keyless     uint64 // keyless events (stats, version, mn, noop, …)
	Keys        uint64 // distinct keys (estimated when sampled)
	StartNs     int64  // first event time
	DurationNs  int64  // last minus first event time
	Connections uint64 // distinct connections
	Fingerprint uint64 // salt fingerprint of the source profile

	Hot     []Template
	Classes map[int]*Class
	// Namespaces are the profile's namespace hashes (Event.NSHash) that templates name, so that the synthetic
	// keys of a namespace share its prefix on the wire as the recorded ones did.
	Namespaces []uint64

	Kinds []Kind
	// First and Next choose commands: First[c] is the kind index of a key's first event, Next[s][c] the kind
	// after an event that left the key in state s; c is the command's category (catOf).
	First        [numCats]*Discrete
	Next         [numStates][numCats]*Discrete
	KeylessKinds *Discrete         // kind index of keyless events
	TTL          map[int]*Discrete // TTL values by kind index
	Flags        *Discrete         // client flags per key
	HitLive      float64           // share of retrievals of live keys that hit
	PreLive      float64           // share of keys first seen by a non-write whose first event shows they existed

	// PopularityOnly makes the generator ignore spans: every key's references spread over the whole window
	// (independent references with the profile's popularity). It exists to show what temporal locality adds.
	PopularityOnly bool
}

// FitOptions tune Fit.
type FitOptions struct {
	// HotKeys is how many of the heaviest keys are kept exactly (0: DefaultHotKeys; negative: none).
	HotKeys int
	// MaxKeys bounds the per-key table (0: DefaultFitMaxKeys).
	MaxKeys int
}

// keyStat is what Fit keeps per key.
type keyStat struct {
	count       uint64
	reads       uint64
	writes      uint64
	first, last uint64 // keyed event indexes
	keySize     uint16
	ns          uint64 // namespace hash (Event.NSHash) of the key's first event
	valueSize   uint32 // first known value size
	lastSize    uint32
	hasValue    bool // a store or a hit told the key's value size
	seq         []byte
	sizes       []SizeChange
	flags       uint32
	state       uint8
	live        bool
	class       int32  // -1 hot, else class index (set between the passes)
	prev        uint64 // pass 2: previous timed reference
	lastRef     uint64 // previous reference, attached or not
	lastMiss    bool   // the previous reference was a missed read
	attached    uint64 // attached fills (symAttached)
	pass2       bool   // pass 2 has seen the key
}

// isAttached reports whether the event at idx with symbol sym is an attached fill (symAttached) of key s.
func (s *keyStat) isAttached(idx uint64, sym byte) bool {
	return sym == symWrite && s.lastMiss && idx-s.lastRef <= attachGap
}

// classOf returns the popularity class of a count: 0 for 1, then two classes per power of two.
func classOf(count uint64) int {
	if count <= 1 {
		return 0
	}
	return 1 + int(2*math.Log2(float64(count)))
}

// Fit reads the profile that open returns twice (once for per-key figures, once for reference positions and
// gaps inside spans) and returns its model.
func Fit(open func() (Source, error), opts FitOptions) (*Model, error) {
	hotN := opts.HotKeys
	if hotN == 0 {
		hotN = DefaultHotKeys
	}
	hotN = max(hotN, 0)
	maxKeys := cmp.Or(opts.MaxKeys, DefaultFitMaxKeys)

	m := &Model{Classes: map[int]*Class{}, TTL: map[int]*Discrete{}}
	kindIdx := map[Kind]int{}
	kind := func(ev *profile.Event) int {
		k := kindOf(ev)
		i, ok := kindIdx[k]
		if !ok {
			i = len(m.Kinds)
			kindIdx[k] = i
			m.Kinds = append(m.Kinds, k)
		}
		return i
	}
	var (
		next      [numStates][numCats]counter
		first     = [numCats]counter{{}, {}, {}}
		keyless   = counter{}
		ttl       = map[int]counter{}
		keys      = map[uint64]*keyStat{}
		conns     = map[uint64]struct{}{}
		shift     uint // keys are sampled when Mix64(hash)>>(64-shift) == 0
		keyed     uint64
		liveRet   uint64
		liveHits  uint64
		firstSeen uint64
		preLive   uint64
		minT      int64
		maxT      int64
		nEvents   uint64
		seqTotal  uint64
	)
	for i := range next {
		next[i] = [numCats]counter{{}, {}, {}}
	}
	src, err := open()
	if err != nil {
		return nil, err
	}
	var ev profile.Event
	for src.Next(&ev) {
		if nEvents == 0 {
			minT, maxT = ev.Time, ev.Time
		}
		nEvents++
		minT, maxT = min(minT, ev.Time), max(maxT, ev.Time)
		if len(conns) < 1<<20 {
			conns[ev.Conn] = struct{}{}
		}
		k := kind(&ev)
		if c := ttl[k]; c == nil {
			ttl[k] = counter{}
		}
		ttl[k].add(uint64(ev.TTL))
		if !ev.Cmd.HasKey() {
			m.Keyless++
			keyless.add(uint64(k))
			continue
		}
		idx := keyed
		keyed++
		if shift > 0 && Mix64(ev.KeyHash)>>(64-shift) != 0 {
			continue
		}
		s := keys[ev.KeyHash]
		if s == nil {
			for len(keys) >= maxKeys {
				shift++
				for h := range keys {
					if Mix64(h)>>(64-shift) != 0 {
						delete(keys, h)
					}
				}
			}
			if shift > 0 && Mix64(ev.KeyHash)>>(64-shift) != 0 {
				continue
			}
			s = &keyStat{first: idx, keySize: ev.KeySize, ns: ev.NSHash}
			keys[ev.KeyHash] = s
			first[catOf(ev.Cmd)].add(uint64(k))
			if !IsWrite(&ev) {
				firstSeen++
				if Existence(&ev) {
					preLive++
				}
			}
		} else {
			next[s.state][catOf(ev.Cmd)].add(uint64(k))
		}
		s.count++
		switch catOf(ev.Cmd) {
		case catRead:
			s.reads++
		case catWrite:
			s.writes++
		}
		s.last = idx
		sym := symOf(&ev)
		if s.isAttached(idx, sym) {
			sym |= symAttached
		}
		s.lastRef, s.lastMiss = idx, sym == symReadMiss
		if s.count <= maxSeq && seqTotal < maxSeqTotal {
			s.seq = append(s.seq, sym)
			seqTotal++
			if sym&symAttached != 0 {
				s.attached++
			}
		}
		if ev.Cmd.IsStorage() || ev.Status == mcproto.StatusHit || Existence(&ev) {
			switch {
			case !s.hasValue:
				s.valueSize, s.lastSize, s.hasValue = ev.ValueSize, ev.ValueSize, true
			case ev.ValueSize != s.lastSize && len(s.sizes) < maxSizeChanges && s.count <= math.MaxUint32:
				s.sizes = append(s.sizes, SizeChange{At: uint32(s.count - 1), Size: ev.ValueSize})
				s.lastSize = ev.ValueSize
			}
		}
		if ev.Cmd.IsStorage() && ev.Flags != 0 {
			s.flags = ev.Flags
		}
		// A read without an outcome (imported traces) that shows its key existed counts as a hit, as for warmup.
		retrieval := ev.Cmd.IsRetrieval() && (ev.Status == mcproto.StatusHit || ev.Status == mcproto.StatusMiss ||
			ev.Status == mcproto.StatusUnknown)
		if retrieval && s.live {
			liveRet++
			if ev.Status == mcproto.StatusHit || Existence(&ev) {
				liveHits++
			}
		}
		s.state = stateAfter(&ev)
		switch {
		case ev.Cmd == mcproto.CmdDelete || ev.Cmd == mcproto.CmdMetaDelete:
			s.live = false
		case ev.Status == mcproto.StatusHit || Existence(&ev):
			s.live = true
		case ev.Cmd.IsStorage() && (ev.Status == mcproto.StatusStored || ev.Status == mcproto.StatusNoneExpected):
			s.live = true
		}
	}
	err = src.Err()
	src.Close()
	if err != nil {
		return nil, err
	}
	if keyed == 0 {
		return nil, errors.New("cannot fit a model: the profile has no events with a key")
	}
	m.Keyed = keyed
	m.StartNs, m.DurationNs = minT, maxT-minT
	m.Connections = uint64(len(conns))
	rate := math.Ldexp(1, -int(shift))
	m.Keys = uint64(math.Round(float64(len(keys)) / rate))
	for r := range numCats {
		m.First[r] = first[r].discrete()
		for i := range next {
			m.Next[i][r] = next[i][r].discrete()
		}
	}
	m.KeylessKinds = keyless.discrete()
	for k, c := range ttl {
		m.TTL[k] = c.discrete()
	}
	if liveRet > 0 {
		m.HitLive = float64(liveHits) / float64(liveRet)
	}
	if firstSeen > 0 {
		m.PreLive = float64(preLive) / float64(firstSeen)
	}

	// Hot keys: the heaviest, by count (ties by first reference, for determinism).
	stats := make([]*keyStat, 0, len(keys))
	flags := counter{}
	for _, s := range keys {
		stats = append(stats, s)
		flags.add(uint64(s.flags))
	}
	m.Flags = flags.discrete()
	slices.SortFunc(stats, func(a, b *keyStat) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.first, b.first))
	})
	if shift > 0 {
		hotN = 0 // with sampled keys, counts per key are exact but which keys are heaviest is not known
	}
	W := float64(keyed)
	type classAcc struct {
		keys   float64
		tmpl   []Template
		pos    [posBuckets]uint64
		posN   uint64
		gaps   counter
		gapSum float64
		gapN   uint64
	}
	acc := map[int]*classAcc{}
	getAcc := func(c int) *classAcc {
		a := acc[c]
		if a == nil {
			a = &classAcc{gaps: counter{}}
			acc[c] = a
		}
		return a
	}
	// Keys never stored nor hit have no value size; they get one drawn from the keys that have one (they may
	// be stored in the synthetic sequence). The draw is seeded, so a model is a function of its profile.
	withValue := counter{}
	for _, s := range stats {
		if s.hasValue {
			withValue.add(uint64(s.valueSize))
		}
	}
	vsDist := withValue.discrete()
	vr := NewRand(keyed)
	nsIdx := map[uint64]uint32{}
	for i, s := range stats {
		c := classOf(s.count)
		s.class = int32(c)
		a := getAcc(c)
		vs := s.valueSize
		if !s.hasValue {
			vs = uint32(vsDist.Sample(vr))
		}
		t := Template{Count: uint32(min(s.count, math.MaxUint32)), Reads: uint32(min(s.reads, math.MaxUint32)),
			Writes:  uint32(min(s.writes, math.MaxUint32)),
			KeySize: s.keySize, ValueSize: vs, Start: float32(float64(s.first) / W), Span: float32(s.last - s.first),
			Sizes: s.sizes, Attached: uint32(s.attached)}
		if uint64(len(s.seq)) == min(s.count, maxSeq) {
			t.Seq = s.seq
		} else {
			t.Attached, s.attached = 0, 0
		}
		s.seq, s.sizes = nil, nil
		if s.ns != 0 {
			if t.NS = nsIdx[s.ns]; t.NS == 0 {
				m.Namespaces = append(m.Namespaces, s.ns)
				t.NS = uint32(len(m.Namespaces))
				nsIdx[s.ns] = t.NS
			}
		}
		if i < hotN {
			m.Hot = append(m.Hot, t)
			continue
		}
		a.keys += 1 / rate
		a.tmpl = append(a.tmpl, t)
	}

	// Pass 2, by class (hot keys included): positions of middle references inside their key's span, and gaps
	// between consecutive references divided by the key's mean gap. Gaps are measured on raw positions: drawing
	// them in the warped coordinate that the generator maps through the position density (see advanceInSpan)
	// counts the density's trend twice, and on the LRU stack model that keeps reuse bursts together at the start
	// of a key's life better than measuring them after the warp (MRC error 0.017 against 0.036).
	err = scanKeyed(open, func(idx uint64, ev *profile.Event) {
		s := keys[ev.KeyHash]
		if s == nil {
			return
		}
		// The key's attached fills, found as in pass 1, take no place in its timing.
		sym := symOf(ev)
		att := s.pass2 && s.attached > 0 && s.isAttached(idx, sym)
		s.pass2, s.lastRef, s.lastMiss = true, idx, sym == symReadMiss
		if att {
			return
		}
		if timed := s.count - s.attached; timed < 3 {
			return
		}
		a := getAcc(int(s.class))
		if idx != s.first {
			ng := float64(idx-s.prev) * float64(s.count-s.attached-1) / float64(s.last-s.first)
			a.gaps.add(gapBucket(ng))
			a.gapSum += ng
			a.gapN++
		}
		s.prev = idx
		if idx == s.first || idx == s.last {
			return
		}
		p := float64(idx-s.first) / float64(s.last-s.first)
		a.pos[min(int(p*posBuckets), posBuckets-1)]++
		a.posN++
	})
	if err != nil {
		return nil, err
	}
	for c, a := range acc {
		cl := &Class{Keys: a.keys, Templates: a.tmpl, Gaps: a.gaps.discrete(), GapMean: 1}
		if a.gapN > 0 {
			cl.GapMean = a.gapSum / float64(a.gapN)
		}
		var cum uint64
		for i := range posBuckets {
			cum += a.pos[i]
			if a.posN == 0 {
				cl.Pos[i+1] = float64(i+1) / posBuckets
			} else {
				cl.Pos[i+1] = float64(cum) / float64(a.posN)
			}
		}
		m.Classes[c] = cl
	}
	return m, nil
}

// scanKeyed calls fn for every keyed event of the profile open returns, with its index among keyed events.
func scanKeyed(open func() (Source, error), fn func(idx uint64, ev *profile.Event)) error {
	src, err := open()
	if err != nil {
		return err
	}
	var ev profile.Event
	var idx uint64
	for src.Next(&ev) {
		if !ev.Cmd.HasKey() {
			continue
		}
		fn(idx, &ev)
		idx++
	}
	err = src.Err()
	src.Close()
	return err
}

// Command categories: the command model keeps each key's number of reads and writes.
const (
	catOther = iota // delete, touch, incr, …
	catRead         // retrievals
	catWrite        // storage commands
	numCats
)

func catOf(c mcproto.Command) int {
	switch {
	case c.IsRetrieval():
		return catRead
	case c.IsStorage():
		return catWrite
	}
	return catOther
}

// stateAfter returns the key state an event leaves behind for the command model.
func stateAfter(ev *profile.Event) uint8 {
	switch {
	case ev.Cmd.IsRetrieval():
		if ev.Status == mcproto.StatusHit {
			return stHit
		}
		return stMiss
	case ev.Cmd.IsStorage():
		return stStore
	case ev.Cmd == mcproto.CmdDelete || ev.Cmd == mcproto.CmdMetaDelete:
		return stDelete
	}
	return stOther
}

// Describe returns a one-line description of the model, for logs.
func (m *Model) Describe() string {
	return fmt.Sprintf("%d keyed + %d keyless events, %d keys (%d hot), %d popularity classes, %d request kinds, "+
		"%d namespaces", m.Keyed, m.Keyless, m.Keys, len(m.Hot), len(m.Classes), len(m.Kinds), len(m.Namespaces))
}
