package profile

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

func TestQueue(t *testing.T) {
	var buf lockedBuffer
	w, err := NewStreamWriter(&buf, "q", exactHeader, WriterOptions{BlockEvents: 100, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(w, 1<<16)
	const producers, per = 8, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				ev := Event{Time: int64(i), Conn: uint64(p), KeyHash: uint64(i + 1), Upstream: -1}
				for !q.TryPut(&ev) {
					time.Sleep(time.Microsecond) // the test wants every event; recorders would drop
				}
			}
		}()
	}
	wg.Wait()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q.Written() != producers*per {
		t.Fatalf("written %d, want %d", q.Written(), producers*per)
	}
	ev := Event{}
	if q.TryPut(&ev) {
		t.Fatal("TryPut after Close accepted the event")
	}
	got, _, err := readAll(t, buf.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != producers*per {
		t.Fatalf("read %d events", len(got))
	}
	// Each producer's events stay in order.
	next := map[uint64]int64{}
	for _, e := range got {
		if e.Time != next[e.Conn] {
			t.Fatalf("conn %d: event %d out of order (want %d)", e.Conn, e.Time, next[e.Conn])
		}
		next[e.Conn]++
	}
}

// blockingWriter blocks every Write until released, so the queue fills up.
type blockingWriter struct {
	release chan struct{}
	buf     bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.buf.Write(p)
}

func TestQueue_DropsWhenFull(t *testing.T) {
	bw := &blockingWriter{release: make(chan struct{})}
	go func() { bw.release <- struct{}{} }() // the header
	w, err := NewStreamWriter(bw, "q", Header{}, WriterOptions{BlockEvents: 1, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(w, 10)
	ev := Event{KeyHash: 1}
	accepted := 0
	for range 1000 {
		if q.TryPut(&ev) {
			accepted++
		}
	}
	// The writer is stuck on its first block: at most one batch taken plus 10 waiting.
	if accepted > 21 || q.Dropped() != uint64(1000-accepted) {
		t.Fatalf("accepted %d, dropped %d", accepted, q.Dropped())
	}
	close(bw.release)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q.Written() != uint64(accepted) {
		t.Fatalf("written %d, accepted %d", q.Written(), accepted)
	}
}

func TestQueue_TryPutAllocs(t *testing.T) {
	w, _ := NewStreamWriter(discard{}, "q", Header{}, WriterOptions{FlushInterval: -1})
	q := NewQueue(w, 1<<20)
	defer q.Close()
	ev := Event{KeyHash: 1}
	if a := testing.AllocsPerRun(10000, func() { q.TryPut(&ev) }); a != 0 {
		t.Fatalf("%v allocations per TryPut", a)
	}
}

// BenchmarkQueue measures TryPut from parallel producers (think gnet event loops) with a writer draining.
func BenchmarkQueue(b *testing.B) {
	evs := benchWorkload()
	w, err := NewStreamWriter(discard{}, "q", Header{}, WriterOptions{FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	q := NewQueue(w, 1<<16)
	b.ReportAllocs()
	b.SetBytes(int64(eventSize))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			q.TryPut(&evs[i&(len(evs)-1)])
			i++
		}
	})
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	// events/s counts every TryPut; written/s only the events that reached the Writer (the producers outrun
	// one encoding goroutine, so the rest were dropped, which is what TryPut is for).
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(q.Written())/el.Seconds(), "written/s")
	b.ReportMetric(float64(q.Dropped())/float64(b.N), "dropped/event")
}
