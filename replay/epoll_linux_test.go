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

// boundThreads counts the process's threads allowed on exactly one CPU.
func boundThreads(t *testing.T) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				v = strings.TrimSpace(v)
				if !strings.ContainsAny(v, ",-") {
					n++
				}
			}
		}
	}
	return n
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

// TestEvClient_CPUAffinity starts the event loops with and without --cpu-affinity: bound, each loop's thread is
// allowed on one CPU only; unbound, no thread is; and either way the threads outlive the loops, unbound.
func TestEvClient_CPUAffinity(t *testing.T) {
	if len(allowedCPUs()) < 2 {
		t.Skip("binding is only visible with at least two CPUs")
	}
	if n := boundThreads(t); n != 0 {
		t.Fatalf("%d threads bound before the test", n)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, pin := range []bool{false, true} {
		h, err := startEvClient(&engine{pin: pin}, log)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if pin {
			want = len(h.loops)
		}
		got := boundThreads(t)
		for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); got = boundThreads(t) {
			time.Sleep(10 * time.Millisecond)
		}
		during := threads(t)
		h.close()
		if got != want {
			t.Fatalf("pin %v: %d threads bound to one CPU, want %d", pin, got, want)
		}
		// The loops' threads go back to the runtime instead of ending: a thread's end would kill the children
		// started from it with a parent-death signal (such as the tests' memcached).
		if after := threads(t); after < during {
			t.Fatalf("pin %v: %d threads while the loops ran, %d after: loop threads ended", pin, during, after)
		}
	}
	// The loops' threads go back to the runtime with their CPU sets restored.
	got := boundThreads(t)
	for deadline := time.Now().Add(5 * time.Second); got != 0 && time.Now().Before(deadline); got = boundThreads(t) {
		time.Sleep(10 * time.Millisecond)
	}
	if got != 0 {
		t.Fatalf("%d threads still bound after the loops stopped", got)
	}
}

// batchThreads counts the process's threads under SCHED_BATCH (policy 3, field 41 of /proc/PID/task/TID/stat).
func batchThreads(t *testing.T) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		// Fields after the ")" that ends the command name start at field 3.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 39 {
			t.Fatalf("%s: %d fields", p, len(f)+2)
		}
		if f[41-3] == "3" {
			n++
		}
	}
	return n
}

// TestEvClient_SchedBatch starts the event loops with and without sched_batch: with it, each loop's thread runs
// under SCHED_BATCH while the loops run, and goes back to the runtime under its previous policy.
func TestEvClient_SchedBatch(t *testing.T) {
	if n := batchThreads(t); n != 0 {
		t.Fatalf("%d threads under SCHED_BATCH before the test", n)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, batch := range []bool{false, true} {
		h, err := startEvClient(&engine{batch: batch}, log)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if batch {
			want = len(h.loops)
		}
		got := batchThreads(t)
		for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); got = batchThreads(t) {
			time.Sleep(10 * time.Millisecond)
		}
		during := threads(t)
		h.close()
		if got != want {
			t.Fatalf("batch %v: %d threads under SCHED_BATCH, want %d", batch, got, want)
		}
		if after := threads(t); after < during {
			t.Fatalf("batch %v: %d threads while the loops ran, %d after: loop threads ended", batch, during, after)
		}
	}
	got := batchThreads(t)
	for deadline := time.Now().Add(5 * time.Second); got != 0 && time.Now().Before(deadline); got = batchThreads(t) {
		time.Sleep(10 * time.Millisecond)
	}
	if got != 0 {
		t.Fatalf("%d threads still under SCHED_BATCH after the loops stopped", got)
	}
}
