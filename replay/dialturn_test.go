package replay

import (
	"sync"
	"testing"
	"time"
)

// TestDialTurns: connections dial in the order they enrolled, whatever order their goroutines run in; one that
// gives its turn up lets the next go; one whose predecessor is stuck goes after the wait limit.
func TestDialTurns(t *testing.T) {
	var turns dialTurns
	const n = 50
	ids := make([]int, n)
	for i := range ids {
		ids[i] = turns.enroll()
	}
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := n - 1; i >= 0; i-- { // started backwards
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 7 {
				turns.pass(i) // gives its turn up without dialing
				return
			}
			turns.wait(i, time.Minute)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			turns.pass(i)
			turns.pass(i) // a second pass changes nothing
		}(ids[i])
	}
	wg.Wait()
	if len(order) != n-1 {
		t.Fatalf("%d connections dialed, want %d", len(order), n-1)
	}
	for k := 1; k < len(order); k++ {
		if order[k] <= order[k-1] {
			t.Fatalf("dial order %v", order)
		}
	}
	// A connection enrolled after every earlier one passed goes at once.
	if i := turns.enroll(); !waitsLess(&turns, i, 10*time.Second, 5*time.Second) {
		t.Fatal("the next turn did not come at once")
	}
	// One whose predecessor never dials goes after the limit.
	stuck, next := turns.enroll(), turns.enroll()
	_ = stuck
	if waitsLess(&turns, next, 50*time.Millisecond, 40*time.Millisecond) {
		t.Fatal("a turn came before its predecessor dialed")
	}
}

// waitsLess reports whether wait(i, limit) returned within d.
func waitsLess(t *dialTurns, i int, limit, d time.Duration) bool {
	start := time.Now()
	t.wait(i, limit)
	return time.Since(start) < d
}
