// This file makes a target's event-loop connections open in the order they were created. memcached hands the
// connections it accepts to its worker threads in turn, and a target's connection j is served by event loop
// j mod loops: when the connections are accepted in that same order, each loop talks to the same memcached
// workers (to exactly one when the server has as many worker threads as replay has loops), so that a loop and
// its workers wake each other on one CPU instead of all of them waking each other across CPUs. Dialed all at
// once, the connections reach the server in a random order. bench/steady.sh at depth 1 against a co-located
// memcached -t 2 (docs/BENCHMARKS.md): 72–100 k requests per second at 11.4–15.2 µs each became 95–123 k at
// 9.8–12.2 µs.

package replay

import (
	"sync"
	"time"
)

// dialTurnWait bounds how long a connection waits for the one before it to finish dialing: past it (a target
// that drops SYNs, say) it dials anyway, so that a slow dial delays the next ones by at most this much each.
const dialTurnWait = 20 * time.Millisecond

// dialTurns orders the first dials of one target's connections.
type dialTurns struct {
	mu     sync.Mutex
	ready  []chan struct{} // ready[i] closes when connections 0 … i-1 have dialed (or given their turn up)
	done   []bool
	passed int // connections 0 … passed-1 are done
}

// enroll gives the next connection its turn number.
func (t *dialTurns) enroll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := len(t.ready)
	ch := make(chan struct{})
	if i == t.passed {
		close(ch)
	}
	t.ready = append(t.ready, ch)
	t.done = append(t.done, false)
	return i
}

// wait returns when turn i has come, or after limit.
func (t *dialTurns) wait(i int, limit time.Duration) {
	t.mu.Lock()
	ch := t.ready[i]
	t.mu.Unlock()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}

// pass ends turn i: its connection dialed, or will not. Calling it again does nothing.
func (t *dialTurns) pass(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done[i] {
		return
	}
	t.done[i] = true
	for t.passed < len(t.done) && t.done[t.passed] {
		t.passed++
		if t.passed < len(t.ready) {
			close(t.ready[t.passed])
		}
	}
}
