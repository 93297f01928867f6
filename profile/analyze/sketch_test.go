package analyze

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestBuckets_Layout(t *testing.T) {
	f := func(v uint64, wantIndex int, wantLE uint64) {
		t.Helper()
		if i := bucketOf(v); i != wantIndex || bucketLE(i) != wantLE {
			t.Fatalf("bucketOf(%d) = %d (le %d), want %d (le %d)", v, i, bucketLE(i), wantIndex, wantLE)
		}
	}
	f(0, 0, 0)
	f(1023, 1023, 1023)
	f(1024, 1024, 1031) // 128 buckets of 8 between 1024 and 2048
	f(1031, 1024, 1031)
	f(1032, 1025, 1039)
	f(2047, 1151, 2047)
	f(2048, 1152, 2063)
	f(math.MaxUint64, histBuckets-1, math.MaxUint64)
	for i := range histBuckets - 1 {
		le := bucketLE(i)
		if bucketOf(le) != i || bucketOf(le+1) != i+1 {
			t.Fatalf("bucket %d: le %d maps to %d, le+1 to %d", i, le, bucketOf(le), bucketOf(le+1))
		}
	}
}

func TestU64Map_MatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newU64Map(16)
	ref := map[uint64]int32{}
	for i := range 200_000 {
		k := 1 + rng.Uint64N(3000) // many collisions and deletes in a small key space
		switch rng.IntN(3) {
		case 0:
			m.put(k, int32(i))
			ref[k] = int32(i)
		case 1:
			m.del(k)
			delete(ref, k)
		}
		if i%1000 == 0 {
			for k, v := range ref {
				if got, ok := m.get(k); !ok || got != v {
					t.Fatalf("step %d: get(%d) = %d %v, want %d", i, k, got, ok, v)
				}
			}
			if m.n != len(ref) {
				t.Fatalf("step %d: %d entries, want %d", i, m.n, len(ref))
			}
		}
	}
}

func TestHLL_Accuracy(t *testing.T) {
	for _, n := range []int{10, 1000, 50_000, 2_000_000} {
		var h hll
		for i := range n {
			h.add(mix64(uint64(i)))
		}
		if got := h.estimate(); math.Abs(float64(got)-float64(n))/float64(n) > 0.03 {
			t.Errorf("hll of %d ids estimates %d", n, got)
		}
	}
}

func TestSpaceSaving(t *testing.T) {
	// Exact with at most k ids.
	s := newSpaceSaving(8)
	for i := range 8 {
		for range i + 1 {
			s.addN(uint64(i+1), 1)
		}
	}
	top := s.top()
	for i, it := range top {
		if it.id != uint64(8-i) || it.count != uint64(8-i) || it.err != 0 {
			t.Fatalf("top[%d] = %+v, want id %d count %d", i, it, 8-i, 8-i)
		}
	}
	// A heavy id among many light ones is found, its count within the bound.
	s = newSpaceSaving(64)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 100_000 {
		if i%10 == 0 {
			s.addN(424242, 1)
		} else {
			s.addN(1+rng.Uint64N(50_000), 1)
		}
	}
	top = s.top()
	if top[0].id != 424242 || top[0].count-top[0].err > 10_000 || top[0].count < 10_000 {
		t.Fatalf("heavy hitter: %+v, want id 424242 with 10000 within its error", top[0])
	}
}
