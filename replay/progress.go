// This file holds what a replay shows while it runs: one progress line per second (ops/s, p99 and errors of the
// last second, hit ratio so far) and the same figures as metrics for /metrics and push.

package replay

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/membench/membench/mcproto"
)

// startProgress starts the once-a-second reporter and returns the function that stops it (after one last
// metrics update). It always runs: each second is also a point of the report's time series (series.go).
func startProgress(e *engine, w io.Writer, set *Metrics) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				e.tick(nil, set, time.Since(last), true)
				return
			case now := <-t.C:
				e.tick(w, set, now.Sub(last), false)
				last = now
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// tick gathers the last interval's figures from every connection, prints the progress line, updates the
// metrics and adds the interval to the time series; final marks the last interval of the run.
func (e *engine) tick(w io.Writer, set *Metrics, interval time.Duration, final bool) {
	h := newHist()
	var ops, hits, misses, errs uint64
	var byCmd [mcproto.NumCommands]uint64
	var byKind [numErrKinds]uint64
	for _, c := range e.snapshot() {
		s := c.st
		s.mu.Lock()
		h.Merge(s.interval)
		s.interval.Reset()
		ops += s.intervalOps
		s.intervalOps = 0
		for i, cs := range s.cmds {
			if cs != nil {
				hits += cs.hits
				misses += cs.misses
				errs += cs.errors
				byCmd[i] += cs.ops
			}
		}
		for k, n := range s.errs {
			byKind[k] += n
		}
		s.mu.Unlock()
	}
	rate := float64(ops) / max(interval.Seconds(), 1e-3)
	p99 := float64(h.ValueAtQuantile(99)) / 1000
	if w != nil {
		var total uint64
		for _, n := range byCmd {
			total += n
		}
		fmt.Fprintf(w, "membench replay: %6.0fs  %9.0f ops/s  p99 %8.3f ms  hit %5.1f%%  errors %d (%.2f%%)\n",
			time.Duration(e.now()).Seconds(), rate, p99, 100*ratio(hits, hits+misses), errs,
			100*ratio(errs, total))
	}
	if set != nil {
		set.update(&byCmd, &byKind, hits, misses, rate, h)
	}
	e.addPoint(h, ops, errs, interval, final)
}
