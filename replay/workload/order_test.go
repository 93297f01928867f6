package workload

import (
	"container/list"
	"math"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
)

// cacheForm turns the key order of evs into what a client in front of an LRU cache of items objects sends. With
// aside (look-aside), every reference is a get answered hit or miss, and a miss is followed by a set at once;
// each set's value size changes with the number of sets of the key so far. Without it (read/write), references
// keep their command (and one in 8 becomes a set, so that sizes change), a get's miss admits the key silently (no set on the wire) and a hit returns the size of
// the latest set.
func cacheForm(evs []profile.Event, items int, aside bool) []profile.Event {
	lru := list.New()
	where := map[uint64]*list.Element{}
	sets := map[uint64]uint32{}
	size := func(h uint64) uint32 { return 100 + uint32(h>>8)%900 + 37*sets[h]%300 }
	out := make([]profile.Event, 0, len(evs)*2)
	admit := func(h uint64) {
		if e := where[h]; e != nil {
			lru.MoveToFront(e)
			return
		}
		where[h] = lru.PushFront(h)
		if lru.Len() > items {
			delete(where, lru.Remove(lru.Back()).(uint64))
		}
	}
	for i, ev := range evs {
		h := ev.KeyHash
		ev.Time = int64(len(out)) * 1000
		if !aside && (ev.Cmd.IsStorage() || Mix64(uint64(i))%8 == 0) {
			ev.Cmd, ev.Status = mcproto.CmdSet, mcproto.StatusStored
			sets[h]++
			ev.ValueSize = size(h)
			out = append(out, ev)
			admit(h)
			continue
		}
		ev.Cmd, ev.Status, ev.ValueSize = mcproto.CmdGet, mcproto.StatusMiss, 0
		if where[h] != nil {
			ev.Status, ev.ValueSize = mcproto.StatusHit, size(h)
			out = append(out, ev)
			admit(h)
			continue
		}
		out = append(out, ev)
		if aside {
			sets[h]++
			set := ev
			set.Time += 500
			set.Cmd, set.Status, set.ValueSize = mcproto.CmdSet, mcproto.StatusStored, size(h)
			out = append(out, set)
		}
		admit(h)
	}
	return out
}

// orderStats is what the order tests count in a stream.
type orderStats struct {
	getAfterMiss uint64 // gets of a key whose previous event was its missed get
	missNoSet    uint64 // missed gets not followed by a set of the key as its next event
	misses       uint64
	sizeChanges  uint64 // a key's value size differs from its previous one
	// gets and sets per popularity class of the key (classOf its count)
	gets, sets map[int]uint64
}

func countOrder(evs []profile.Event) orderStats {
	type key struct {
		count    uint64
		gets     uint64
		sets     uint64
		lastMiss bool
		size     uint32
	}
	keys := map[uint64]*key{}
	st := orderStats{gets: map[int]uint64{}, sets: map[int]uint64{}}
	for i := range evs {
		ev := &evs[i]
		k := keys[ev.KeyHash]
		if k == nil {
			k = &key{}
			keys[ev.KeyHash] = k
		}
		k.count++
		if k.lastMiss {
			if ev.Cmd == mcproto.CmdGet {
				st.getAfterMiss++
			}
			if ev.Cmd != mcproto.CmdSet {
				st.missNoSet++
			}
		}
		k.lastMiss = ev.Cmd == mcproto.CmdGet && ev.Status == mcproto.StatusMiss
		if k.lastMiss {
			st.misses++
		}
		switch ev.Cmd {
		case mcproto.CmdGet:
			k.gets++
		case mcproto.CmdSet:
			k.sets++
		}
		if ev.Cmd == mcproto.CmdSet || ev.Status == mcproto.StatusHit {
			if k.size != 0 && k.size != ev.ValueSize {
				st.sizeChanges++
			}
			k.size = ev.ValueSize
		}
	}
	for _, k := range keys {
		if k.lastMiss {
			st.missNoSet++
		}
		st.gets[classOf(k.count)] += k.gets
		st.sets[classOf(k.count)] += k.sets
	}
	return st
}

func orderEvents() int {
	if raceEnabled {
		return 20_000
	}
	return 60_000
}

// synthOf fits evs and draws as many events, with the full model or the popularity-only baseline.
func synthOf(t *testing.T, evs []profile.Event, popularityOnly bool) []profile.Event {
	t.Helper()
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.PopularityOnly = popularityOnly
	return collect(t, m.Generator(GenOptions{Seed: 3, Events: uint64(len(evs))}), len(evs))
}

// TestSynthetic_LookAsideOrder: on a look-aside stream (every reference a get, a set right after each miss) the
// synthetic stream keeps per-key order: no get follows a missed get of its key, every miss is followed by its
// set, #get and #set per popularity class match the source, value sizes change as often; and it meets the
// fidelity bounds with a hit ratio within 0.01, and a miss-ratio curve no worse than the popularity-only
// baseline's.
func TestSynthetic_LookAsideOrder(t *testing.T) {
	src := cacheForm(shotNoise(orderEvents(), 1), 200, true)
	syn := synthOf(t, src, false)
	a, b := countOrder(src), countOrder(syn)
	t.Logf("source: %d misses, %d size changes; synthetic: %d misses, %d size changes", a.misses, a.sizeChanges,
		b.misses, b.sizeChanges)
	if a.getAfterMiss != 0 || a.missNoSet != 0 || a.sizeChanges == 0 {
		t.Fatalf("BUG: the look-aside source has %d get→get after a miss, %d misses without a set, %d size changes",
			a.getAfterMiss, a.missNoSet, a.sizeChanges)
	}
	if b.getAfterMiss != 0 || b.missNoSet != 0 {
		t.Errorf("synthetic stream: %d gets after a missed get of the key, %d misses not followed by their set",
			b.getAfterMiss, b.missNoSet)
	}
	for c, n := range a.gets {
		if d := math.Abs(float64(b.gets[c]) - float64(n)); d > 0.02*float64(n)+5 {
			t.Errorf("class %d: %d gets, source %d", c, b.gets[c], n)
		}
		if d := math.Abs(float64(b.sets[c]) - float64(a.sets[c])); d > 0.02*float64(a.sets[c])+5 {
			t.Errorf("class %d: %d sets, source %d", c, b.sets[c], a.sets[c])
		}
	}
	if d := math.Abs(float64(b.sizeChanges) - float64(a.sizeChanges)); d > 0.05*float64(a.sizeChanges) {
		t.Errorf("%d value-size changes, source %d", b.sizeChanges, a.sizeChanges)
	}
	sa := summarize(src)
	c := analyze.Compare(sa, summarize(syn))
	checkFidelity(t, "look-aside", c)
	if math.Abs(c.HitRatioDelta) > 0.01 {
		t.Errorf("hit ratio %.3f, source %.3f", c.B.HitRatio, c.A.HitRatio)
	}
	base := analyze.Compare(sa, summarize(synthOf(t, src, true)))
	t.Logf("popularity-only baseline: MRC MAE %.4f", base.MRCMAE)
	if c.MRCMAE > base.MRCMAE {
		t.Errorf("MRC MAE %.4f, worse than the popularity-only baseline's %.4f", c.MRCMAE, base.MRCMAE)
	}
}

// TestSynthetic_NoFillOnMiss: in a read/write stream whose misses are not followed by a set (the cache admits
// on its own, or the application does not fill), the synthetic stream does not invent fills, and keeps the
// source's hit ratio.
func TestSynthetic_NoFillOnMiss(t *testing.T) {
	src := cacheForm(lruStack(orderEvents(), 2), 500, false)
	syn := synthOf(t, src, false)
	a, b := countOrder(src), countOrder(syn)
	fill := func(s orderStats) float64 { return 1 - float64(s.missNoSet)/float64(max(s.misses, 1)) }
	t.Logf("misses followed by a set: source %.3f of %d, synthetic %.3f of %d; size changes: source %d, synthetic %d",
		fill(a), a.misses, fill(b), b.misses, a.sizeChanges, b.sizeChanges)
	if a.misses == 0 || a.sizeChanges == 0 {
		t.Fatalf("BUG: the read/write source has %d misses, %d size changes", a.misses, a.sizeChanges)
	}
	if math.Abs(fill(a)-fill(b)) > 0.01 {
		t.Errorf("share of misses followed by a set: %.3f, source %.3f", fill(b), fill(a))
	}
	c := analyze.Compare(summarize(src), summarize(syn))
	checkFidelity(t, "read/write", c)
	if math.Abs(c.HitRatioDelta) > 0.01 {
		t.Errorf("hit ratio %.3f, source %.3f", c.B.HitRatio, c.A.HitRatio)
	}
}
