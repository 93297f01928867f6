package analyze

import (
	"encoding/json"
	"math"
	"testing"
)

func TestCompare_IdenticalIsZero(t *testing.T) {
	s := analyze(randomTrace(3, 20000, 500, false), Options{})
	// Through JSON, as `membench compare` reads saved summaries.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	c := Compare(s, &back)
	if c.CommandMixL1 != 0 || c.KeySizeKS != 0 || c.ValueSizeKS != 0 || c.HitRatioDelta != 0 ||
		c.ZipfAlphaDelta != 0 || c.MRCMAE != 0 {
		t.Fatalf("identical summaries differ: %+v", c)
	}
	if c.A.Events != s.Events || c.B.HitRatio != s.HitRatio {
		t.Fatalf("raw figures not carried: %+v", c)
	}
}

func TestCompare_KnownAnswers(t *testing.T) {
	a := &Summary{
		Commands:  map[string]uint64{"get": 75, "set": 25},
		KeySize:   Dist{Hist: [][2]uint64{{10, 1}, {20, 1}, {30, 2}}}, // F: .25 .5 1
		ValueSize: Dist{Hist: [][2]uint64{{100, 4}}},                  // all at 100
		Hits:      9, Misses: 1, HitRatio: 0.9, ZipfAlpha: 1.0, Popularity: []RankCount{{1, 10}, {2, 5}},
		MRC: []MRCPoint{{CacheBytes: 100, MissRatio: 0.8}, {CacheBytes: 1000, MissRatio: 0.4},
			{CacheBytes: 10000, MissRatio: 0.1}},
	}
	b := &Summary{
		Commands:  map[string]uint64{"get": 50, "set": 25, "delete": 25},
		KeySize:   Dist{Hist: [][2]uint64{{20, 3}, {40, 1}}},                 // F at 10,20,30,40: 0 .75 .75 1
		ValueSize: Dist{Hist: [][2]uint64{{100, 1}, {200, 1}, {1 << 20, 2}}}, // F at 100: .25
		Hits:      8, Misses: 2, HitRatio: 0.8, ZipfAlpha: 0.7, Popularity: []RankCount{{1, 10}, {2, 5}},
		MRC: []MRCPoint{{CacheBytes: 100, MissRatio: 0.9}, {CacheBytes: 10000, MissRatio: 0.3}},
	}
	c := Compare(a, b)
	// Shares a: get .75 set .25; b: get .5 set .25 delete .25 → |.25| + 0 + |.25|.
	// Key KS: |.25-0| at 10, |.5-.75| at 20, |1-.75| at 30 → .25. Value KS: |1-.25| at 100 → .75.
	// MRC over sizes 100, 1000, 10000: b at 1000 interpolates half way in log(size): .6.
	// |.8-.9| + |.4-.6| + |.1-.3| = .5 over 3 points.
	want := Comparison{CommandMixL1: 0.5, KeySizeKS: 0.25, ValueSizeKS: 0.75, HitRatioDelta: -0.1,
		ZipfAlphaDelta: -0.3, MRCMAE: 0.5 / 3}
	for _, p := range [][3]any{
		{"command_mix_l1", c.CommandMixL1, want.CommandMixL1},
		{"key_size_ks", c.KeySizeKS, want.KeySizeKS},
		{"value_size_ks", c.ValueSizeKS, want.ValueSizeKS},
		{"hit_ratio_delta", c.HitRatioDelta, want.HitRatioDelta},
		{"zipf_alpha_delta", c.ZipfAlphaDelta, want.ZipfAlphaDelta},
		{"mrc_mae", c.MRCMAE, want.MRCMAE},
	} {
		if math.Abs(p[1].(float64)-p[2].(float64)) > 1e-12 {
			t.Errorf("%s = %v, want %v", p[0], p[1], p[2])
		}
	}
	if r := Compare(b, a); math.Abs(r.MRCMAE-c.MRCMAE) > 1e-12 || math.Abs(r.KeySizeKS-c.KeySizeKS) > 1e-12 ||
		math.Abs(r.CommandMixL1-c.CommandMixL1) > 1e-12 {
		t.Errorf("distances not symmetric: %+v vs %+v", r, c)
	}
}

func TestKS_Edges(t *testing.T) {
	f := func(a, b [][2]uint64, want float64) {
		t.Helper()
		if got := ks(a, b); math.Abs(got-want) > 1e-12 {
			t.Fatalf("ks(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
	f(nil, nil, 0)
	f(nil, [][2]uint64{{1, 1}}, 1)
	f([][2]uint64{{1, 5}}, [][2]uint64{{2, 5}}, 1) // disjoint
	f([][2]uint64{{1, 1}, {3, 1}}, [][2]uint64{{2, 1}, {4, 1}}, 0.5)
}

// TestCompare_NotAvailable: a figure one side lacks gives NaN (JSON null) and a warning, never 0; an imported
// trace has no recorded hit ratio, and curves in different units are not compared.
func TestCompare_NotAvailable(t *testing.T) {
	imported := analyze(importedTrace(41, 5000, 300), Options{})
	recorded := analyze(randomTrace(42, 5000, 300, false), Options{})
	c := Compare(imported, recorded)
	if !NA(c.HitRatioDelta) || !NA(c.A.HitRatio) || NA(c.B.HitRatio) || NA(c.MRCMAE) || NA(c.KeySizeKS) ||
		len(c.Warnings) != 2 { // the hit ratio, and the models differ
		t.Fatalf("%+v", c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if v, ok := m["hit_ratio_delta"]; !ok || v != nil || m["a"].(map[string]any)["hit_ratio"] != nil {
		t.Fatalf("JSON: %s", b)
	}
	var back Comparison
	if err := json.Unmarshal(b, &back); err != nil || !NA(back.HitRatioDelta) || !NA(back.A.HitRatio) ||
		back.MRCMAE != c.MRCMAE || back.A.Events != c.A.Events {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	objects := analyze(importedTrace(41, 5000, 300), Options{MRCUnit: UnitObjects})
	if c := Compare(objects, imported); !NA(c.MRCMAE) || len(c.Warnings) != 2 { // and the hit ratio
		t.Fatalf("objects against bytes: %+v", c)
	}
	if c := Compare(&Summary{}, &Summary{}); !NA(c.CommandMixL1) || !NA(c.KeySizeKS) || !NA(c.MRCMAE) {
		t.Fatalf("empty summaries: %+v", c)
	}
}
