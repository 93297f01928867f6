package replay

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// countThreads counts the process's threads whose /proc/self/task/TID/<file> satisfies match.
func countThreads(t *testing.T, file string, match func(string) bool) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/self/task/*/" + file)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		if match(string(b)) {
			n++
		}
	}
	return n
}

// boundThreads counts the process's threads allowed on exactly one CPU.
func boundThreads(t *testing.T) int {
	return countThreads(t, "status", func(status string) bool {
		for _, line := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				return !strings.ContainsAny(strings.TrimSpace(v), ",-")
			}
		}
		return false
	})
}

// batchThreads counts the process's threads under SCHED_BATCH (policy 3, field 41 of /proc/PID/task/TID/stat).
func batchThreads(t *testing.T) int {
	return countThreads(t, "stat", func(stat string) bool {
		// Fields after the ")" that ends the command name start at field 3.
		f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
		return len(f) > 41-3 && f[41-3] == "3"
	})
}

// threads counts the process's threads. The Go runtime ends a thread only when a goroutine locked to it exits.
func threads(t *testing.T) int {
	t.Helper()
	d, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(d)
}

// checkLoopThreads starts the event loops of engine(false) and of engine(true) in turn: count finds no loop
// thread in the first state and every loop's thread in the second while the loops run, and none once they have
// stopped; either way the threads outlive the loops.
func checkLoopThreads(t *testing.T, what string, count func(*testing.T) int, engine func(on bool) *engine) {
	t.Helper()
	eventually := func(want int) int {
		got := count(t)
		for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); got = count(t) {
			time.Sleep(10 * time.Millisecond)
		}
		return got
	}
	if n := count(t); n != 0 {
		t.Fatalf("%d threads %s before the test", n, what)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, on := range []bool{false, true} {
		h, err := startEvClient(engine(on), log)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if on {
			want = len(h.loops)
		}
		got := eventually(want)
		during := threads(t)
		h.close()
		if got != want {
			t.Fatalf("%v: %d threads %s, want %d", on, got, what, want)
		}
		// The loops' threads go back to the runtime instead of ending: a thread's end would kill the children
		// started from it with a parent-death signal (such as the tests' memcached).
		if after := threads(t); after < during {
			t.Fatalf("%v: %d threads while the loops ran, %d after: loop threads ended", on, during, after)
		}
	}
	// The loops' threads go back to the runtime as they were.
	if got := eventually(0); got != 0 {
		t.Fatalf("%d threads still %s after the loops stopped", got, what)
	}
}

// TestEvClient_CPUAffinity starts the event loops with and without --cpu-affinity: bound, each loop's thread is
// allowed on one CPU only; unbound, no thread is; and either way the threads outlive the loops, unbound.
func TestEvClient_CPUAffinity(t *testing.T) {
	if len(allowedCPUs()) < 2 {
		t.Skip("binding is only visible with at least two CPUs")
	}
	checkLoopThreads(t, "bound to one CPU", boundThreads, func(pin bool) *engine { return &engine{pin: pin} })
}

// TestEvClient_SchedBatch starts the event loops with and without sched_batch: with it, each loop's thread runs
// under SCHED_BATCH while the loops run, and goes back to the runtime under its previous policy.
func TestEvClient_SchedBatch(t *testing.T) {
	checkLoopThreads(t, "under SCHED_BATCH", batchThreads, func(batch bool) *engine { return &engine{batch: batch} })
}
