package profile

import (
	"bytes"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// cpuTime returns the CPU time (user+system) this process has used. Benchmarks report events per CPU-second
// beside events per wall-second, because shared CI machines and laptops under load distort the latter.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, wall time.Duration, cpu time.Duration, bytes int64, events int) {
	b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
	b.ReportMetric(float64(bytes)/float64(events), "bytes/event")
}

// eventSize is what SetBytes counts per event: the in-memory Event a recorder hands over or a reader fills.
const eventSize = unsafe.Sizeof(Event{})

// BenchmarkEncode writes the synthetic workload (workload_test.go) with default options. One op is one event.
func BenchmarkEncode(b *testing.B) {
	evs := benchWorkload()
	span := evs[len(evs)-1].Time - evs[0].Time + 1
	var cw countingWriter
	w, err := NewStreamWriter(&cw, "bench", Header{}, WriterOptions{FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(eventSize))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		ev := evs[i&(len(evs)-1)]
		ev.Time += int64(i/len(evs)) * span
		if err := w.Write(&ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	reportRates(b, el, cpu, cw.n, b.N)
}

// BenchmarkDecode reads the workload back from memory. One op is one event.
func BenchmarkDecode(b *testing.B) {
	data, n := benchProfile(b)
	b.ReportAllocs()
	b.SetBytes(int64(eventSize))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var ev Event
	var r *Reader
	for i := 0; i < b.N; i++ {
		if r == nil || !r.Next(&ev) {
			if r != nil && r.Err() != nil {
				b.Fatal(r.Err())
			}
			var err error
			if r, err = NewReader(bytes.NewReader(data), "bench", ReaderOptions{}); err != nil {
				b.Fatal(err)
			}
			if !r.Next(&ev) {
				b.Fatal("no events")
			}
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	reportRates(b, el, cpu, int64(len(data)), n)
}

var (
	benchProfileData []byte
	benchProfileN    int
)

// benchProfile returns the workload written four times over (4 Mi events, time shifted each round), so the
// decode benchmark measures steady-state reading rather than opening readers.
func benchProfile(b *testing.B) ([]byte, int) {
	if benchProfileData == nil {
		evs := benchWorkload()
		span := evs[len(evs)-1].Time - evs[0].Time + 1
		var buf bytes.Buffer
		w, err := NewStreamWriter(&buf, "bench", Header{}, WriterOptions{FlushInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		for round := range 4 {
			for i := range evs {
				ev := evs[i]
				ev.Time += int64(round) * span
				if err := w.Write(&ev); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		benchProfileData, benchProfileN = buf.Bytes(), 4*len(evs)
	}
	return benchProfileData, benchProfileN
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
