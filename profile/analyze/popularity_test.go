package analyze

import (
	"math/rand/v2"
	"testing"
)

// TestPopularity_WithinBound checks that past MaxKeys the popularity estimates (top_keys_share, zipf_alpha) stay
// within their stated error bounds of the exact figures, on Zipf traces and on traces that are not Zipf: two
// populations of different α, a Zipf head with a heavy flat tail (as block I/O traces such as libCacheSim's
// cloudPhysicsIO have), and keys whose popularity changes after the key table overflowed.
func TestPopularity_WithinBound(t *testing.T) {
	type gen func(rng *rand.Rand, i, n int) int
	zipf := func(keys int, alpha float64, seed uint64) gen {
		z := newZipfGen(keys, alpha, seed)
		return func(_ *rand.Rand, _, _ int) int { return z.next() }
	}
	cases := []struct {
		name string
		next gen
	}{
		{"zipf 0.8", zipf(40_000, 0.8, 1)},
		{"zipf 1.1", zipf(40_000, 1.1, 2)},
		{"two populations", func() gen {
			head, tail := newZipfGen(2_000, 1.3, 3), newZipfGen(40_000, 0.5, 4)
			return func(rng *rand.Rand, _, _ int) int {
				if rng.IntN(10) < 4 {
					return head.next()
				}
				return 10_000_000 + tail.next()
			}
		}()},
		{"flat tail", func() gen {
			head := newZipfGen(1_000, 1.0, 5)
			return func(rng *rand.Rand, _, _ int) int {
				if rng.IntN(2) == 0 {
					return head.next()
				}
				return 10_000_000 + rng.IntN(60_000)
			}
		}()},
		{"popularity shifts", func() gen {
			z := newZipfGen(40_000, 1.0, 6)
			return func(_ *rand.Rand, i, n int) int {
				if r := z.next(); i < n/4 {
					return r
				} else {
					return 20_000_000 + r // the heavy keys of the rest arrive after the overflow
				}
			}
		}()},
	}
	if !fullScale() {
		cases = cases[2:4]
	}
	const events = 300_000
	for i, c := range cases {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		exact, est := New(Options{}), New(Options{MaxKeys: 4096})
		for j := range events {
			ev := getEv(int64(j), c.next(rng, j, events), 20, true, 100)
			exact.Add(&ev)
			est.Add(&ev)
		}
		a, b := exact.Summary(), est.Summary()
		if !a.TopKeysExact || b.TopKeysExact {
			t.Fatalf("%s: exactness flags %v %v", c.name, a.TopKeysExact, b.TopKeysExact)
		}
		if a.ZipfAlphaBound != 0 || a.TopKeysBound != (TopShare{}) {
			t.Errorf("%s: exact run reports bounds %v %+v", c.name, a.ZipfAlphaBound, a.TopKeysBound)
		}
		t.Logf("%s (%d keys, %s): α exact %.4f, estimated %.4f ± %.4f", c.name, a.UniqueKeys, b.MRCMethod,
			a.ZipfAlpha, b.ZipfAlpha, b.ZipfAlphaBound)
		if d := b.ZipfAlpha - a.ZipfAlpha; d > b.ZipfAlphaBound || -d > b.ZipfAlphaBound {
			t.Errorf("%s: α %.4f, exact %.4f: off by more than the bound %.4f", c.name, b.ZipfAlpha, a.ZipfAlpha,
				b.ZipfAlphaBound)
		}
		for k, p := range [][3]float64{
			{a.TopKeysShare.Top1, b.TopKeysShare.Top1, b.TopKeysBound.Top1},
			{a.TopKeysShare.Top10, b.TopKeysShare.Top10, b.TopKeysBound.Top10},
			{a.TopKeysShare.Top100, b.TopKeysShare.Top100, b.TopKeysBound.Top100},
			{a.TopKeysShare.Top1000, b.TopKeysShare.Top1000, b.TopKeysBound.Top1000},
		} {
			t.Logf("  top %d: exact %.4f, estimated %.4f ± %.4f", topKs[k], p[0], p[1], p[2])
			if d := p[1] - p[0]; d > p[2]+1e-12 || -d > p[2]+1e-12 {
				t.Errorf("%s: top %d share %.4f, exact %.4f: off by more than the bound %.4f", c.name, topKs[k],
					p[1], p[0], p[2])
			}
		}
	}
}

// TestLogBin_Weighted checks that a key standing for several ranks is split among the bins it spans exactly as
// the same number of keys of weight 1 would be.
func TestLogBin_Weighted(t *testing.T) {
	var ones, runs []popItem
	for c := uint64(500); c > 0; c-- {
		w := 1 + c%37
		runs = append(runs, popItem{count: c, weight: w})
		for range w {
			ones = append(ones, popItem{count: c, weight: 1})
		}
	}
	x, y := logBin(ones), logBin(runs)
	if len(x) != len(y) {
		t.Fatalf("%d bins from unit items, %d from runs", len(x), len(y))
	}
	for i := range x {
		if d := x[i].Rank/y[i].Rank - 1; d > 1e-9 || d < -1e-9 || x[i].Count != y[i].Count {
			t.Fatalf("bin %d: %+v from unit items, %+v from runs", i, x[i], y[i])
		}
	}
}
