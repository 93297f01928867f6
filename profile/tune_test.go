package profile

import (
	"bytes"
	"testing"
	"time"
)

func TestTuneBlocks(t *testing.T) {
	evs := benchWorkload()
	data := writeStream(t, evs, Header{}, WriterOptions{})
	const blk = DefaultBlockEvents
	best := time.Hour
	for round := 0; round < 15; round++ {
		r, _ := NewReader(bytes.NewReader(data), "x", ReaderOptions{})
		var ev Event
		for {
			st := time.Now()
			n := 0
			for n < blk && r.Next(&ev) {
				n++
			}
			if n < blk {
				break
			}
			if d := time.Since(st); d < best {
				best = d
			}
		}
	}
	t.Logf("decode best block %.1f ns/event (%.2f M/s)", float64(best.Nanoseconds())/blk, blk/best.Seconds()/1e6)
	bestE := time.Hour
	for round := 0; round < 8; round++ {
		w, _ := NewStreamWriter(discard{}, "x", Header{}, WriterOptions{FlushInterval: -1})
		for base := 0; base+blk <= len(evs); base += blk {
			st := time.Now()
			for i := base; i < base+blk; i++ {
				w.Write(&evs[i])
			}
			if d := time.Since(st); d < bestE && base > 0 {
				bestE = d
			}
		}
		w.Close()
	}
	t.Logf("encode best block %.1f ns/event (%.2f M/s)", float64(bestE.Nanoseconds())/blk, blk/bestE.Seconds()/1e6)
}
