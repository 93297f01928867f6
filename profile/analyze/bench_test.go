package analyze

import (
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// benchEvents is a get-heavy Zipf(1.0) workload over keys with varied sizes, as `membench inspect` sees it.
func benchEvents(keys int) []profile.Event {
	z := newZipfGen(keys, 1.0, 9)
	evs := make([]profile.Event, 1<<20)
	for i := range evs {
		k := z.next()
		t := t0 + int64(i)*10_000 // 100k events/s
		vs := uint32(keyHash(k) % 4096)
		switch i % 10 {
		case 0:
			evs[i] = setEv(t, k, uint16(20+k%40), vs)
			evs[i].TTL = 3600
		case 1:
			evs[i] = keyEv(t, k, uint16(20+k%40), mcproto.CmdDelete, mcproto.StatusDeleted)
		default:
			evs[i] = getEv(t, k, uint16(20+k%40), i%7 != 0, vs)
		}
		evs[i].Conn, evs[i].NSHash, evs[i].Latency = uint64(i%64), uint64(k%50+1), int64(50_000+i%1000)
	}
	return evs
}

// BenchmarkAnalyzerAdd measures Add over 1M pre-built events, cycling. The exact cases track every key (100k
// keys; and about 600k distinct keys out of a 10M universe, where the key table and Fenwick tree outgrow the CPU
// caches); the sampled case caps MaxKeys so the SHARDS path (sampling, HyperLogLog, Space-Saving) runs; the sizes
// cases simulate requested cache sizes (inspect --mrc-sizes).
func BenchmarkAnalyzerAdd(b *testing.B) {
	for _, bc := range []struct {
		name    string
		keys    int
		maxKeys int
		exact   bool
		sizes   int // simulated cache sizes (Options.MRCSizes), log-spaced from 64 KiB
	}{
		{"exact/keys=100k", 100_000, 0, true, 0},
		{"exact/keys=10M", 10_000_000, 0, true, 0},
		{"sampled/keys=10M", 10_000_000, 1 << 16, false, 0},
		{"exact/keys=100k/sizes=16", 100_000, 0, true, 16},
		{"exact/keys=100k/sizes=64", 100_000, 0, true, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			evs := benchEvents(bc.keys)
			var sizes []uint64
			for i := range bc.sizes {
				sizes = append(sizes, 64<<10<<(i*12/bc.sizes)) // 64 KiB to 256 MiB
			}
			a := New(Options{MaxKeys: bc.maxKeys, MRCSizes: sizes})
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				a.Add(&evs[i&(len(evs)-1)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// On a shared machine wall time includes waiting for a CPU; CPU time does not.
			b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
			if b.N >= len(evs) && a.exact != bc.exact {
				b.Fatalf("exact mode %v, want %v", a.exact, bc.exact)
			}
		})
	}
}

func BenchmarkSummary(b *testing.B) {
	evs := benchEvents(100_000)
	a := New(Options{})
	for i := range evs {
		a.Add(&evs[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Summary()
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
