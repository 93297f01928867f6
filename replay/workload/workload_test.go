package workload

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
)

// fidelityEvents is the length of the workloads the fidelity tests fit and draw.
func fidelityEvents() int {
	if raceEnabled {
		return 60_000
	}
	return 300_000
}

// fidelity fits a model to evs, draws as many events from it and compares the two with analyze.Compare.
func fidelity(t *testing.T, evs []profile.Event, popularityOnly bool, seed uint64) *analyze.Comparison {
	t.Helper()
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.PopularityOnly = popularityOnly
	syn := collect(t, m.Generator(GenOptions{Seed: seed, Events: uint64(len(evs))}), len(evs))
	if len(syn) != len(evs) {
		t.Fatalf("generator stopped after %d of %d events", len(syn), len(evs))
	}
	return analyze.Compare(summarize(evs), summarize(syn))
}

// checkFidelity applies the acceptance bounds: command mix L1 ≤ 0.01, size KS ≤ 0.02, Zipf α within ±0.05,
// MRC MAE ≤ 0.02.
func checkFidelity(t *testing.T, name string, c *analyze.Comparison) {
	t.Helper()
	t.Logf("%s: mix L1 %.4f, key KS %.4f, value KS %.4f, zipf α %.3f vs %.3f, MRC MAE %.4f, hit ratio %.3f vs %.3f",
		name, c.CommandMixL1, c.KeySizeKS, c.ValueSizeKS, c.A.ZipfAlpha, c.B.ZipfAlpha, c.MRCMAE, c.A.HitRatio,
		c.B.HitRatio)
	if c.CommandMixL1 > 0.01 || c.KeySizeKS > 0.02 || c.ValueSizeKS > 0.02 || math.Abs(c.ZipfAlphaDelta) > 0.05 ||
		c.MRCMAE > 0.02 {
		t.Errorf("%s: synthetic workload out of bounds (mix L1 ≤ 0.01, KS ≤ 0.02, |Δα| ≤ 0.05, MRC MAE ≤ 0.02)", name)
	}
}

func TestSyntheticFidelity_ETC(t *testing.T) {
	p, err := NewPreset("etc", PresetOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkFidelity(t, "etc", fidelity(t, collect(t, p, fidelityEvents()), false, 7))
}

// TestSyntheticFidelity_TemporalLocality is the workload where popularity alone is not enough: keys are
// referenced in short bursts after they appear. The fitted model keeps the miss-ratio curve; a model with the
// same popularity and no temporal locality (independent references) misses it by far.
func TestSyntheticFidelity_TemporalLocality(t *testing.T) {
	evs := shotNoise(fidelityEvents(), 1)
	checkFidelity(t, "shot noise", fidelity(t, evs, false, 7))
	pop := fidelity(t, evs, true, 7)
	t.Logf("popularity-only: zipf α %.3f vs %.3f, MRC MAE %.4f", pop.A.ZipfAlpha, pop.B.ZipfAlpha, pop.MRCMAE)
	if math.Abs(pop.ZipfAlphaDelta) > 0.05 {
		t.Errorf("popularity-only model lost popularity too: Δα = %.3f", pop.ZipfAlphaDelta)
	}
	if pop.MRCMAE < 0.05 {
		t.Errorf("popularity-only model kept the MRC (MAE %.4f, want > 0.05, the bound being 0.02): the workload "+
			"does not show temporal locality", pop.MRCMAE)
	}
}

// TestSyntheticFidelity_LRUStack uses the LRU stack model, the hardest case for a per-key model: reuse comes in
// bursts at the start of a key's life. Held to the same bounds.
func TestSyntheticFidelity_LRUStack(t *testing.T) {
	evs := lruStack(fidelityEvents(), 2)
	checkFidelity(t, "lru stack", fidelity(t, evs, false, 11))
	if pop := fidelity(t, evs, true, 11); pop.MRCMAE < 0.05 {
		t.Errorf("popularity-only model kept the MRC of the LRU stack model (MAE %.4f)", pop.MRCMAE)
	}
}

// TestSyntheticFidelity_Namespaces gives the shot-noise workload's keys namespaces (60% one, 30% another, 10%
// none, by key): the synthetic keys keep them, with the same shares of keyed events.
func TestSyntheticFidelity_Namespaces(t *testing.T) {
	evs := shotNoise(fidelityEvents(), 5)
	for i := range evs {
		if evs[i].KeyHash == 0 {
			continue
		}
		switch Mix64(evs[i].KeyHash) % 10 {
		case 0, 1, 2, 3, 4, 5:
			evs[i].NSHash = 0xaaaa
		case 6, 7, 8:
			evs[i].NSHash = 0xbbbb
		}
	}
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	syn := collect(t, m.Generator(GenOptions{Seed: 3, Events: uint64(len(evs))}), len(evs))
	a, b := summarize(evs), summarize(syn)
	checkFidelity(t, "namespaces", analyze.Compare(a, b))
	share := func(s *analyze.Summary) map[string]float64 {
		out := map[string]float64{}
		for _, n := range s.TopNamespaces {
			out[n.NS] = n.Share
		}
		return out
	}
	sa, sb := share(a), share(b)
	t.Logf("namespace shares: recorded %v, synthetic %v", sa, sb)
	if len(sa) != 2 || len(sb) != 2 {
		t.Fatalf("namespaces: recorded %v, synthetic %v, want the same two", sa, sb)
	}
	for ns, x := range sa {
		if y, ok := sb[ns]; !ok || math.Abs(x-y) > 0.02 {
			t.Fatalf("namespace %s: share %.4f recorded, %.4f synthetic", ns, x, y)
		}
	}
}

func TestGenerator_Deterministic(t *testing.T) {
	evs := shotNoise(50_000, 3)
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	draw := func(seed uint64) []profile.Event {
		return collect(t, m.Generator(GenOptions{Seed: seed, Events: 120_000}), 120_000) // two epochs and more
	}
	a, b, c := draw(5), draw(5), draw(6)
	if len(a) != 120_000 {
		t.Fatalf("drew %d events", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different event %d:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same > len(a)/10 {
		t.Fatalf("seeds 5 and 6 agree on %d of %d events", same, len(a))
	}
	p1, _ := NewPreset("etc", PresetOptions{Seed: 9, Events: 1000})
	p2, _ := NewPreset("etc", PresetOptions{Seed: 9, Events: 1000})
	x, y := collect(t, p1, 1000), collect(t, p2, 1000)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("preset: same seed, different event %d", i)
		}
	}
}

func TestGenerator_KeysScale(t *testing.T) {
	evs := shotNoise(100_000, 4)
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one := summarize(collect(t, m.Generator(GenOptions{Seed: 1, Events: 100_000}), 100_000))
	two := summarize(collect(t, m.Generator(GenOptions{Seed: 1, Events: 200_000, KeysScale: 2}), 200_000))
	ratio := float64(two.UniqueKeys) / float64(one.UniqueKeys)
	if ratio < 1.8 || ratio > 2.2 {
		t.Fatalf("--keys-scale 2 gave %d keys against %d (ratio %.2f)", two.UniqueKeys, one.UniqueKeys, ratio)
	}
}

// TestAppendKey_Stable pins the keys synthesized for 3000 hashes at 16 sizes, with and without namespaces: a
// replay node, a warmup and a later version must send the same key for the same recorded hash and size.
func TestAppendKey_Stable(t *testing.T) {
	h := sha256.New()
	var buf []byte
	for i := uint64(0); i < 3000; i++ {
		for _, size := range []int{0, 1, 5, 9, 10, 11, 15, 16, 17, 24, 40, 63, 64, 200, 250, 300} {
			buf = AppendKey(buf[:0], Mix64(i), size)
			h.Write(buf)
			buf = AppendKeyNS(buf[:0], Mix64(i+7)*(i%2), Mix64(i), size)
			h.Write(buf)
		}
	}
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), "24d6e1560dd4d1a9b7643cde30ce004cbe54a2dbb590cb4729afabb6d52ac965"; got != want {
		t.Fatalf("synthesized keys changed: digest %s, want %s", got, want)
	}
}

func TestAppendKey(t *testing.T) {
	f := func(hash uint64, size int, wantLen int) {
		t.Helper()
		k := AppendKey(nil, hash, size)
		if len(k) != wantLen {
			t.Fatalf("AppendKey(%x, %d) has length %d, want %d", hash, size, len(k), wantLen)
		}
		for _, c := range k {
			if c <= ' ' || c >= 0x7f || c == ':' {
				t.Fatalf("AppendKey(%x, %d) = %q holds byte %q", hash, size, k, c)
			}
		}
		if !bytes.Equal(k, AppendKey(nil, hash, size)) {
			t.Fatalf("AppendKey(%x, %d) is not deterministic", hash, size)
		}
	}
	f(0, 0, 1)
	f(1, 1, 1)
	f(12345, 10, 10)
	f(^uint64(0), 250, 250)
	f(^uint64(0), 251, 250)
	f(42, 1000, 250)
	// Distinct hashes give distinct keys from 10 bytes on.
	seen := map[string]uint64{}
	r := NewRand(1)
	for range 100_000 {
		h := r.Uint64()
		k := string(AppendKey(nil, h, 10))
		if prev, dup := seen[k]; dup && prev != h {
			t.Fatalf("hashes %x and %x share key %q", prev, h, k)
		}
		seen[k] = h
	}
	if n := testing.AllocsPerRun(100, func() { AppendKey(make([]byte, 0, 0), 7, 0) }); n > 1 {
		t.Fatalf("AppendKey allocates %v times", n)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], 7, 200) }); n != 0 {
		t.Fatalf("AppendKey into a large enough buffer allocates %v times", n)
	}
}

func TestZipf(t *testing.T) {
	// Frequencies of the first ranks follow (i+1)^-s within sampling error.
	for _, s := range []float64{0.6, 0.99, 1.2} {
		z := NewZipf(1000, s)
		r := NewRand(3)
		counts := make([]float64, 1000)
		n := 1_000_000
		if raceEnabled {
			n = 200_000
		}
		for range n {
			counts[z.Next(r)]++
		}
		var h float64
		for i := range 1000 {
			h += math.Pow(float64(i+1), -s)
		}
		for _, i := range []int{0, 1, 9, 99} {
			want := float64(n) * math.Pow(float64(i+1), -s) / h
			if math.Abs(counts[i]-want) > 5*math.Sqrt(want)+0.01*want {
				t.Fatalf("s=%v rank %d: %v draws, want about %.0f", s, i, counts[i], want)
			}
		}
	}
}

func TestPresetETC(t *testing.T) {
	p, err := NewPreset("etc", PresetOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(collect(t, p, 200_000))
	gets, sets := float64(s.Commands["get"]), float64(s.Commands["set"])
	if r := gets / sets; r < 27 || r > 33 {
		t.Fatalf("get:set = %.1f:1, want about 30:1", r)
	}
	// Key sizes: GEV(30.8, 8.2, 0.079) has its median near μ − σ ln(ln 2)·… ≈ 33.
	if s.KeySize.P50 < 30 || s.KeySize.P50 > 36 {
		t.Fatalf("key size median %d", s.KeySize.P50)
	}
	if math.Abs(s.ZipfAlpha-0.99) > 0.05 {
		t.Fatalf("zipf α %.3f, want about 0.99", s.ZipfAlpha)
	}
	if _, err := NewPreset("nope", PresetOptions{}); err == nil {
		t.Fatal("unknown preset accepted")
	}
	// Small values follow the published table: 2-byte values are the most frequent size below 15.
	small := map[uint64]uint64{}
	for _, b := range s.ValueSize.Hist {
		if b[0] < 15 {
			small[b[0]] = b[1]
		}
	}
	for v, n := range small {
		if v != 2 && n > small[2] {
			t.Fatalf("value size %d (%d) more frequent than 2 (%d)", v, n, small[2])
		}
	}
}

func TestExistence(t *testing.T) {
	f := func(cmd mcproto.Command, st mcproto.Status, want bool) {
		t.Helper()
		if got := Existence(&profile.Event{Cmd: cmd, Status: st}); got != want {
			t.Fatalf("Existence(%v, %v) = %v", cmd, st, got)
		}
	}
	f(mcproto.CmdGet, mcproto.StatusHit, true)
	f(mcproto.CmdGet, mcproto.StatusMiss, false)
	f(mcproto.CmdSet, mcproto.StatusStored, false)
	f(mcproto.CmdReplace, mcproto.StatusStored, true)
	f(mcproto.CmdIncr, mcproto.StatusOK, true)
	f(mcproto.CmdIncr, mcproto.StatusNotFound, false)
	f(mcproto.CmdDelete, mcproto.StatusDeleted, true)
	f(mcproto.CmdTouch, mcproto.StatusTouched, true)
}

// TestExistence_UnknownRead: an imported trace records no outcomes; a read that names a value size there read an
// object that existed (a Twitter get miss has value size 0), so warmup stores it and the replay hits.
func TestExistence_UnknownRead(t *testing.T) {
	f := func(cmd mcproto.Command, vs uint32, want bool) {
		t.Helper()
		ev := profile.Event{Cmd: cmd, Status: mcproto.StatusUnknown, KeySize: 16, ValueSize: vs}
		if got := Existence(&ev); got != want {
			t.Fatalf("Existence(%v, unknown, value %d) = %v", cmd, vs, got)
		}
	}
	f(mcproto.CmdGet, 4080, true)
	f(mcproto.CmdGets, 1, true)
	f(mcproto.CmdGet, 0, false)
	f(mcproto.CmdSet, 100, false)
	f(mcproto.CmdDelete, 0, false)
}

// TestFit_ImportedTrace: a model fitted to an imported trace (reads without outcomes) draws reads of existing
// keys as hits, as the trace's reads were served, so a synthetic replay's warmup stores them; before, every read
// came out a miss.
func TestFit_ImportedTrace(t *testing.T) {
	evs := make([]profile.Event, 20000)
	r := NewRand(5)
	for i := range evs {
		k := r.Uint64() % 500
		evs[i] = profile.Event{Time: int64(i) * 1e6, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet,
			Status: mcproto.StatusUnknown, KeyHash: k + 1, KeySize: 16, ValueSize: uint32(512 + k), Upstream: -1}
	}
	m, err := Fit(opener(evs), FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var hits, reads int
	for _, ev := range collect(t, m.Generator(GenOptions{Seed: 1, Events: 20000}), 20000) {
		if ev.Cmd.IsRetrieval() {
			reads++
			if ev.Status == mcproto.StatusHit {
				hits++
			}
		}
	}
	if reads == 0 || hits < reads*9/10 {
		t.Fatalf("%d hits of %d reads (pre-live %.2f, hit-live %.2f)", hits, reads, m.PreLive, m.HitLive)
	}
}

// TestAppendKeyNS: keys of a recorded namespace share a 4-byte prefix and the delimiter, keep their length and
// their distinctness; without a namespace, or too short for one, they are AppendKey's keys.
func TestAppendKeyNS(t *testing.T) {
	for _, size := range []int{1, MinNSKeyLen - 1, 40} {
		if got, want := AppendKeyNS(nil, 0, 99, size), AppendKey(nil, 99, size); !bytes.Equal(got, want) {
			t.Fatalf("no namespace, size %d: %q, want AppendKey's %q", size, got, want)
		}
	}
	if got, want := AppendKeyNS(nil, 5, 99, MinNSKeyLen-1), AppendKey(nil, 99, MinNSKeyLen-1); !bytes.Equal(got, want) {
		t.Fatalf("too short for a prefix: %q, want %q", got, want)
	}
	prefixes := map[string]uint64{}
	seen := map[string]bool{}
	r := NewRand(2)
	for i := range 20_000 {
		ns := uint64(i%50) + 1
		h := r.Uint64()
		size := MinNSKeyLen + int(r.Uint64()%300) // up to past MaxKeyLen
		k := AppendKeyNS(nil, ns, h, size)
		if want := min(size, MaxKeyLen); len(k) != want {
			t.Fatalf("AppendKeyNS(%d, %x, %d) has length %d, want %d", ns, h, size, len(k), want)
		}
		if bytes.IndexByte(k, NSDelim) != nsPrefixLen || bytes.Count(k, []byte{NSDelim}) != 1 {
			t.Fatalf("AppendKeyNS(%d, %x, %d) = %q: want one %q after %d bytes", ns, h, size, k, NSDelim, nsPrefixLen)
		}
		for _, c := range k {
			if c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("AppendKeyNS(%d, %x, %d) = %q holds byte %q", ns, h, size, k, c)
			}
		}
		p := string(k[:nsPrefixLen])
		if prev, ok := prefixes[p]; ok && prev != ns {
			t.Fatalf("namespaces %d and %d share prefix %q", prev, ns, p)
		}
		prefixes[p] = ns
		if seen[string(k)] {
			t.Fatalf("key %q synthesized twice for different hashes", k)
		}
		seen[string(k)] = true
		if !bytes.Equal(k, AppendKeyNS(nil, ns, h, size)) {
			t.Fatalf("AppendKeyNS(%d, %x, %d) is not deterministic", ns, h, size)
		}
	}
	if len(prefixes) != 50 {
		t.Fatalf("%d prefixes for 50 namespaces", len(prefixes))
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKeyNS(buf[:0], 3, 7, 200) }); n != 0 {
		t.Fatalf("AppendKeyNS into a large enough buffer allocates %v times", n)
	}
}
