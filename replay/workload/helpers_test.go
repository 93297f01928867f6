package workload

import (
	"math"
	"sort"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
)

// sliceSource replays events held in memory.
type sliceSource struct {
	evs []profile.Event
	i   int
}

func (s *sliceSource) Next(ev *profile.Event) bool {
	if s.i >= len(s.evs) {
		return false
	}
	*ev = s.evs[s.i]
	s.i++
	return true
}
func (s *sliceSource) Err() error   { return nil }
func (s *sliceSource) Close() error { return nil }

func opener(evs []profile.Event) func() (Source, error) {
	return func() (Source, error) { return &sliceSource{evs: evs}, nil }
}

// collect draws n events from src.
func collect(t testing.TB, src Source, n int) []profile.Event {
	t.Helper()
	out := make([]profile.Event, 0, n)
	var ev profile.Event
	for len(out) < n && src.Next(&ev) {
		out = append(out, ev)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func summarize(evs []profile.Event) *analyze.Summary {
	a := analyze.New(analyze.Options{})
	for i := range evs {
		a.Add(&evs[i])
	}
	return a.Summary()
}

// shotNoise is a workload with strong temporal locality: keys are born at a steady rate, each with a
// heavy-tailed number of requests spread over a short lifetime, so that most reuse happens soon after a key
// appears. Each key is set at birth, then read (with a set after every miss a cache would see).
func shotNoise(n int, seed uint64) []profile.Event {
	r := NewRand(seed)
	type ref struct {
		t   float64
		key uint64
	}
	var refs []ref
	var t float64
	key := uint64(0)
	for len(refs) < n*11/10 {
		t += r.Exp() * 20 // a new key every 20 events on average
		key++
		// Volume: Zipf-like (Pareto with α≈1), lifetime: exponential, mean 2000 events.
		vol := int(math.Min(math.Floor(1/math.Pow(r.Open01(), 1.0)), 20000))
		life := r.Exp() * 2000 * math.Sqrt(float64(vol))
		for range vol {
			refs = append(refs, ref{t + r.Float64()*life, key})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].t < refs[j].t })
	refs = refs[:n]
	seen := map[uint64]bool{}
	evs := make([]profile.Event, 0, n)
	for i, rf := range refs {
		h := Mix64(rf.key)
		ev := profile.Event{Time: int64(i) * 1000, Conn: rf.key % 8, Proto: mcproto.ProtoText, KeyHash: h,
			KeySize: uint16(10 + h%40), ValueSize: uint32(100 + (h>>8)%900), Upstream: -1}
		if !seen[rf.key] {
			seen[rf.key] = true
			ev.Cmd, ev.Status = mcproto.CmdSet, mcproto.StatusStored
		} else {
			ev.Cmd, ev.Status = mcproto.CmdGet, mcproto.StatusHit
		}
		evs = append(evs, ev)
	}
	return evs
}

// lruStack is a workload drawn from the LRU stack model: each request reuses the key at a random recency
// depth (heavy-tailed) or, with probability 0.05, a new key.
func lruStack(n int, seed uint64) []profile.Event {
	r := NewRand(seed)
	var stack []uint64
	next := uint64(0)
	evs := make([]profile.Event, 0, n)
	for i := range n {
		var key uint64
		var st mcproto.Status
		cmd := mcproto.CmdGet
		if len(stack) == 0 || r.Float64() < 0.05 {
			next++
			key = next
			cmd, st = mcproto.CmdSet, mcproto.StatusStored
		} else {
			d := int(math.Min(math.Floor(math.Pow(r.Open01(), -1.2)), float64(len(stack)))) - 1
			j := len(stack) - 1 - d
			key = stack[j]
			stack = append(stack[:j], stack[j+1:]...)
			st = mcproto.StatusHit
		}
		stack = append(stack, key)
		if len(stack) > 20000 {
			stack = stack[1:]
		}
		h := Mix64(key)
		evs = append(evs, profile.Event{Time: int64(i) * 1000, Conn: key % 8, Proto: mcproto.ProtoText,
			Cmd: cmd, Status: st, KeyHash: h, KeySize: uint16(10 + h%40), ValueSize: uint32(100 + (h>>8)%900),
			Upstream: -1})
	}
	return evs
}
