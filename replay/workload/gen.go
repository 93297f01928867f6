// This file holds Generator, which draws an endless, seeded event sequence from a Model: epochs of key
// instances whose references are merged in time order through a heap, with commands and statuses from the
// model's per-key command chain and an infinite-cache simulation of which keys exist.

package workload

import (
	"cmp"
	"container/heap"
	"math"
	"slices"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// GenOptions tune a Generator.
type GenOptions struct {
	// Seed fixes the sequence: the same model, options and seed give the same events.
	Seed uint64
	// KeysScale multiplies the number of keys (and with it the working set and the epoch length); 0 means 1.
	KeysScale float64
	// Events stops the generator after this many events; 0 is endless.
	Events uint64
}

// inst is one key of the current epoch.
type inst struct {
	id         uint64
	start, end float64 // virtual times (keyed events) of the span
	next       float64 // virtual time of the next reference
	x          float64 // last sorted uniform of the in-span positions
	left       uint32  // references still to come, next included
	total      uint32  // references in all
	reads      uint32  // retrievals still to come
	writes     uint32  // storage commands still to come
	mid        uint32  // popularity-only: references still to place
	class      int32
	keySize    uint16
	ns         uint64 // namespace hash, 0 for none
	valueSize  uint32
	seq        []byte       // the template's command sequence
	ref        uint32       // references emitted, attached ones included
	sizes      []SizeChange // the template's value-size changes still to come
	flags      uint32
	state      uint8
	live       bool
	seen       bool
	gaps       []float64
}

// Generator draws events from a Model. Not safe for concurrent use.
type Generator struct {
	m       *Model
	opts    GenOptions
	r       *Rand // event-loop randomness
	epoch   uint64
	insts   []inst
	order   []int32 // instances by first reference time
	pos     int
	active  instHeap
	emitted uint64
	follow  int32 // instance whose attached fill (symAttached) goes next, or -1

	// seq holds low-discrepancy sequences for the choices whose shares must come out right in short runs: the
	// command after each key state (stFirst: a key's first command), keyless commands, whether an event is
	// keyless, whether a retrieval of a live key hits. With independent draws the command mix of n events is
	// off by about √(p/n) per command (an L1 of 0.015 at 14k events); these make it off by O(log n / n).
	seq [numCats*numStates + 3]goldenSeq

	keylessP float64
	gap      float64 // ns between events
	hitKinds []bool  // by kind index: retrieval
}

// Generator returns a generator over m.
func (m *Model) Generator(opts GenOptions) *Generator {
	if opts.KeysScale <= 0 {
		opts.KeysScale = 1
	}
	g := &Generator{m: m, opts: opts, r: NewRand(Mix64(opts.Seed ^ 0x6a09e667f3bcc908))}
	total := float64(m.Keyed + m.Keyless)
	if total > 0 {
		g.keylessP = float64(m.Keyless) / total
		g.gap = float64(m.DurationNs) / total
	}
	for i := range g.seq {
		g.seq[i] = goldenSeq(g.r.Float64())
	}
	g.active.g = g
	g.follow = -1
	g.buildEpoch()
	return g
}

// goldenSeq is the additive recurrence x ← frac(x + 1/φ) from a random start: the most evenly spread sequence
// of its kind, so that choosing by x through a cumulative distribution hits every choice in its share.
type goldenSeq float64

func (s *goldenSeq) next() float64 {
	x := float64(*s) + 0.6180339887498949
	if x >= 1 {
		x--
	}
	*s = goldenSeq(x)
	return x
}

// Next implements Source.
func (g *Generator) Next(ev *profile.Event) bool {
	if g.opts.Events > 0 && g.emitted >= g.opts.Events {
		return false
	}
	*ev = profile.Event{Time: g.m.StartNs + int64(float64(g.emitted)*g.gap), Upstream: -1}
	g.emitted++
	if i := g.follow; i >= 0 {
		g.follow = -1
		g.emit(&g.insts[i], ev)
		g.attach(i)
		return true
	}
	if g.keylessP > 0 && g.seq[numCats*numStates+1].next() < g.keylessP && g.m.KeylessKinds.Len() > 0 {
		k := g.m.Kinds[g.m.KeylessKinds.Quantile(g.seq[numCats*numStates].next())]
		ev.Proto, ev.Cmd, ev.Quiet, ev.Noreply = k.Proto, k.Cmd, k.Quiet, k.Noreply
		ev.Status = mcproto.StatusOK
		if k.Noreply {
			ev.Status = mcproto.StatusNoneExpected
		}
		ev.Conn = g.r.Uint64n(max(g.m.Connections, 1))
		return true
	}
	for {
		i, ok := g.nextRef()
		if ok {
			g.emit(&g.insts[i], ev)
			g.attach(i)
			return true
		}
		g.epoch++
		g.buildEpoch()
	}
}

// attach makes instance i's next reference go next when its sequence marks it an attached fill.
func (g *Generator) attach(i int32) {
	if in := &g.insts[i]; int(in.ref) < len(in.seq) && in.seq[in.ref]&symAttached != 0 {
		g.follow = i
	}
}

// Err implements Source.
func (g *Generator) Err() error { return nil }

// Close implements Source.
func (g *Generator) Close() error { return nil }

// nextRef returns the instance with the earliest next reference and advances it, or false at the end of the
// epoch.
func (g *Generator) nextRef() (int32, bool) {
	var i int32 = -1
	if g.pos < len(g.order) {
		c := g.order[g.pos]
		if len(g.active.ids) == 0 || g.insts[c].next <= g.insts[g.active.ids[0]].next {
			i = c
			g.pos++
			if g.advance(&g.insts[i]) {
				heap.Push(&g.active, i)
			}
			return i, true
		}
	}
	if len(g.active.ids) == 0 {
		return -1, false
	}
	i = g.active.ids[0]
	if g.advance(&g.insts[i]) {
		heap.Fix(&g.active, 0)
	} else {
		heap.Pop(&g.active)
	}
	return i, true
}

// advance moves in past the reference at in.next and reports whether another follows. The reference's time is
// not needed by the caller: events are emitted in order.
func (g *Generator) advance(in *inst) bool {
	in.left--
	if in.left == 0 {
		return false
	}
	if !g.m.PopularityOnly {
		return g.advanceInSpan(in)
	}
	if in.mid > 0 {
		// The smallest of mid uniforms on (x, 1): x + (1−x)(1 − U^(1/mid)).
		in.x += (1 - in.x) * (1 - math.Pow(g.r.Open01(), 1/float64(in.mid)))
		in.mid--
		in.next = max(in.next, in.x*(in.end-in.start))
		return true
	}
	panic("BUG: popularity-only instance advanced past its references")
}

// maxGapVector bounds the gaps drawn ahead for one key. Keys with more references draw each gap as it comes,
// scaled by the class's mean, and rely on the law of large numbers to end near their span's end.
const maxGapVector = 4096

// advanceInSpan places the next reference of in: gaps drawn from the class's normalized gap distribution,
// scaled so that they add up to the span (exactly for keys with at most maxGapVector references), in the
// density-warped coordinate x, then mapped back through the class's position density.
func (g *Generator) advanceInSpan(in *inst) bool {
	if in.left == 1 {
		in.next, in.gaps = in.end, nil
		return true
	}
	cl := g.m.Classes[int(in.class)]
	var gap float64
	switch {
	case in.gaps != nil:
		gap = in.gaps[len(in.gaps)-int(in.left)]
	case in.left <= maxGapVector && in.x == 0:
		in.gaps = make([]float64, in.left)
		var sum float64
		for i := range in.gaps {
			in.gaps[i] = gapValue(cl.Gaps.Sample(g.r))
			sum += in.gaps[i]
		}
		for i := range in.gaps {
			in.gaps[i] /= sum
		}
		gap = in.gaps[0]
	default:
		gap = gapValue(cl.Gaps.Sample(g.r)) / (cl.GapMean * float64(in.total-1))
	}
	in.x = min(in.x+gap, 1)
	p := posQuantile(&cl.Pos, in.x)
	in.next = max(in.next, in.start+p*(in.end-in.start))
	return true
}

// posQuantile inverts a cumulative density given at posBuckets+1 evenly spaced points.
func posQuantile(cdf *[posBuckets + 1]float64, u float64) float64 {
	i := 0
	for i < posBuckets-1 && cdf[i+1] < u {
		i++
	}
	lo, hi := cdf[i], cdf[i+1]
	f := 0.5
	if hi > lo {
		f = (u - lo) / (hi - lo)
	}
	return (float64(i) + min(max(f, 0), 1)) / posBuckets
}

// emit fills ev with the reference of in: command from the key's state, status from whether the key exists.
func (g *Generator) emit(in *inst, ev *profile.Event) {
	m := g.m
	// The category: the key's remaining reads, writes and others among its remaining references, drawn without
	// replacement. The instance was already advanced past this reference, so in.left does not count it.
	left := uint64(in.left) + 1
	others := left - min(left, uint64(in.reads)+uint64(in.writes))
	idx := uint64(in.ref) // this reference's index among the key's
	in.ref++
	for len(in.sizes) > 0 && uint64(in.sizes[0].At) <= idx {
		in.valueSize, in.sizes = in.sizes[0].Size, in.sizes[1:]
	}
	sym := -1
	if idx < uint64(len(in.seq)) {
		sym = int(in.seq[idx] &^ symAttached)
	}
	cat := catOther
	switch x := g.r.Uint64n(left); {
	case sym >= 0:
		cat = symCat(sym)
	case x < uint64(in.reads):
		cat = catRead
	case x < uint64(in.reads)+uint64(in.writes):
		cat = catWrite
	}
	first := !in.seen
	state := int(in.state)
	if first {
		state = stFirst
	}
	choices := func(cat int) *Discrete {
		if d := m.Next[state][cat]; !first && d.Len() > 0 {
			return d
		}
		if d := m.First[cat]; d.Len() > 0 || sym < 0 {
			return d
		}
		// The key's sequence names this category where the profile never showed it: any state's kinds.
		for s := range numStates {
			if d := m.Next[s][cat]; d.Len() > 0 {
				return d
			}
		}
		return m.First[cat]
	}
	// A state after which the profile never shows this category (no read ever comes first in a write-first
	// workload) takes another one that is left, keeping the first for later.
	if choices(cat).Len() == 0 {
		for _, c := range [...]int{catWrite, catRead, catOther} {
			if choices(c).Len() > 0 && (c == catRead && in.reads > 0 || c == catWrite && in.writes > 0 ||
				c == catOther && others > 0) {
				cat = c
				break
			}
		}
	}
	if choices(cat).Len() == 0 {
		for c := range numCats {
			if choices(c).Len() > 0 {
				cat = c
				break
			}
		}
	}
	switch {
	case cat == catRead && in.reads > 0:
		in.reads--
	case cat == catWrite && in.writes > 0:
		in.writes--
	}
	d, seq := choices(cat), &g.seq[numCats*state+cat]
	ki := int(d.Quantile(seq.next()))
	k := m.Kinds[ki]
	if first {
		in.seen = true
		if !in.live && !isWriteCmd(k.Cmd) && g.r.Float64() < m.PreLive {
			in.live = true
		}
	}
	ev.Proto, ev.Cmd, ev.Quiet, ev.Noreply = k.Proto, k.Cmd, k.Quiet, k.Noreply
	ev.KeyHash, ev.KeySize, ev.NSHash = in.id, in.keySize, in.ns
	ev.Conn = Mix64(in.id) % max(m.Connections, 1)
	if t := m.TTL[ki]; t != nil && t.Len() > 0 {
		ev.TTL = int64(t.Sample(g.r))
	}
	var st mcproto.Status
	switch {
	case sym == symReadHit && k.Cmd.IsRetrieval():
		st, in.live = mcproto.StatusHit, true
	case sym == symReadMiss && k.Cmd.IsRetrieval():
		st, in.live = mcproto.StatusMiss, false
	default:
		st = g.status(in, k.Cmd)
	}
	if k.Cmd.IsStorage() || st == mcproto.StatusHit {
		ev.ValueSize, ev.Flags = in.valueSize, in.flags
	}
	in.state = stateAfter(&profile.Event{Cmd: k.Cmd, Status: st})
	if k.Noreply {
		st = mcproto.StatusNoneExpected
	}
	ev.Status = st
}

// symCat returns the command category of a Seq symbol.
func symCat(sym int) int {
	switch sym {
	case symReadHit, symReadMiss, symRead:
		return catRead
	case symWrite:
		return catWrite
	}
	return catOther
}

func isWriteCmd(c mcproto.Command) bool {
	return c == mcproto.CmdSet || c == mcproto.CmdMetaSet || c == mcproto.CmdAdd
}

// status simulates an infinite cache: what memcached answers to cmd given whether the key exists, and how
// the key's existence changes. Retrievals of existing keys hit with the profile's share (the rest were
// capacity misses in the recorded cache).
func (g *Generator) status(in *inst, cmd mcproto.Command) mcproto.Status {
	switch {
	case cmd.IsRetrieval():
		if in.live && g.seq[numCats*numStates+2].next() < g.m.HitLive {
			return mcproto.StatusHit
		}
		return mcproto.StatusMiss
	}
	switch cmd {
	case mcproto.CmdSet, mcproto.CmdMetaSet:
		in.live = true
		return mcproto.StatusStored
	case mcproto.CmdAdd:
		if in.live {
			return mcproto.StatusNotStored
		}
		in.live = true
		return mcproto.StatusStored
	case mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend:
		if in.live {
			return mcproto.StatusStored
		}
		return mcproto.StatusNotStored
	case mcproto.CmdCas:
		if in.live {
			return mcproto.StatusStored
		}
		return mcproto.StatusNotFound
	case mcproto.CmdDelete, mcproto.CmdMetaDelete:
		if in.live {
			in.live = false
			return mcproto.StatusDeleted
		}
		return mcproto.StatusNotFound
	case mcproto.CmdTouch:
		if in.live {
			return mcproto.StatusTouched
		}
		return mcproto.StatusNotFound
	case mcproto.CmdIncr, mcproto.CmdDecr, mcproto.CmdMetaArithmetic:
		if in.live {
			return mcproto.StatusOK
		}
		return mcproto.StatusNotFound
	case mcproto.CmdMetaDebug:
		if in.live {
			return mcproto.StatusHit
		}
		return mcproto.StatusMiss
	}
	return mcproto.StatusOK
}

// buildEpoch lays out the key instances of the current epoch.
func (g *Generator) buildEpoch() {
	m, s := g.m, g.opts.KeysScale
	r := NewRand(Mix64(g.opts.Seed) ^ Mix64(g.epoch+1))
	// Keys that live on into this epoch keep what the cache knows about them.
	type carried struct {
		state      uint8
		live, seen bool
	}
	prev := map[uint64]carried{}
	for i := range g.insts {
		if in := &g.insts[i]; in.seen {
			prev[in.id] = carried{in.state, in.live, in.seen}
		}
	}
	type proto struct {
		t     *Template
		class int32
		ident uint64 // identity before the epoch is mixed in
	}
	var protos []proto
	round := func(x float64) int {
		n := int(x)
		if r.Float64() < x-float64(n) {
			n++
		}
		return n
	}
	for h := range m.Hot {
		t := &m.Hot[h]
		for c := range round(s) {
			protos = append(protos, proto{t: t, class: int32(classOf(uint64(t.Count))),
				ident: uint64(1)<<62 | uint64(h)<<20 | uint64(c)})
		}
	}
	classes := make([]int, 0, len(m.Classes))
	for c := range m.Classes {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		cl := m.Classes[c]
		n := round(cl.Keys * s)
		if n == 0 || len(cl.Templates) == 0 {
			continue
		}
		// Templates without replacement: each pass over the class's keys uses every one once, in a new order.
		perm := make([]int, len(cl.Templates))
		for i := range n {
			j := i % len(perm)
			if j == 0 {
				for k := range perm {
					perm[k] = k
				}
				for k := len(perm) - 1; k > 0; k-- {
					x := int(r.Uint64n(uint64(k + 1)))
					perm[k], perm[x] = perm[x], perm[k]
				}
			}
			protos = append(protos, proto{t: &cl.Templates[perm[j]], class: int32(c), ident: uint64(c)<<40 | uint64(i)})
		}
	}
	var W float64
	for _, p := range protos {
		W += float64(p.t.Count)
	}
	g.insts = make([]inst, len(protos))
	g.order = make([]int32, len(protos))
	for i, p := range protos {
		in := &g.insts[i]
		span := float64(p.t.Span) * s
		start := float64(p.t.Start) * W
		if start+span > W {
			start = max(0, W-span)
		}
		end := min(start+span, W)
		// A key whose span covers the whole window is the same key in every epoch.
		persistent := float64(p.t.Start) < 1.0/startBuckets && end >= W*(1-1.0/startBuckets)
		id := Mix64(Mix64(p.ident^g.opts.Seed*0x9e3779b97f4a7c15) ^ 0xc2b2ae3d27d4eb4f)
		if !persistent {
			id = Mix64(id ^ Mix64(g.epoch+0x1234567))
		}
		timed := p.t.Count - min(p.t.Attached, p.t.Count)
		*in = inst{id: id, start: start, end: end, left: timed, total: timed, reads: p.t.Reads, writes: p.t.Writes,
			class: p.class, keySize: max(p.t.KeySize, 1), valueSize: p.t.ValueSize, seq: p.t.Seq, sizes: p.t.Sizes,
			flags: uint32(m.Flags.Sample(r))}
		if p.t.NS != 0 {
			in.ns = m.Namespaces[p.t.NS-1]
		}
		if c, ok := prev[id]; ok {
			in.live, in.state, in.seen = c.live, c.state, c.seen
		}
		switch {
		case m.PopularityOnly:
			in.start, in.end = 0, W
			in.mid = in.left
			in.left++ // advance consumes one before the first in-span reference
			in.next = 0
			g.advance(in)
		default:
			in.next = start
		}
		if in.left == 0 {
			in.left, in.total = 1, 1
		}
		g.order[i] = int32(i)
	}
	slices.SortStableFunc(g.order, func(a, b int32) int { return cmp.Compare(g.insts[a].next, g.insts[b].next) })
	g.pos = 0
	g.active.ids = g.active.ids[:0]
}

// instHeap orders active instances by their next reference time (ties by index, for determinism).
type instHeap struct {
	g   *Generator
	ids []int32
}

func (h *instHeap) Len() int { return len(h.ids) }
func (h *instHeap) Less(a, b int) bool {
	x, y := &h.g.insts[h.ids[a]], &h.g.insts[h.ids[b]]
	if x.next != y.next {
		return x.next < y.next
	}
	return h.ids[a] < h.ids[b]
}
func (h *instHeap) Swap(a, b int) { h.ids[a], h.ids[b] = h.ids[b], h.ids[a] }
func (h *instHeap) Push(x any)    { h.ids = append(h.ids, x.(int32)) }
func (h *instHeap) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}
