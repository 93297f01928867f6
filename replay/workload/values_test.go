package workload

import (
	"bytes"
	"sync"
	"testing"
)

// checkValue reports an error unless v is n bytes of a decimal "1" padded with spaces. It may run on any
// goroutine (Errorf, not Fatalf).
func checkValue(t *testing.T, v []byte, n int) {
	t.Helper()
	if len(v) != n {
		t.Errorf("value of %d bytes, want %d", len(v), n)
		return
	}
	if n > 0 && (v[0] != valueFill || !bytes.Equal(v[1:], bytes.Repeat([]byte(" "), n-1))) {
		t.Errorf("value of %d bytes is not \"1\" and spaces: %q…", n, v[:min(n, 16)])
	}
}

// TestValues asks a value source for lengths below, across and beyond its buffer's growth steps and its size,
// from several goroutines at once: every answer is the asked length (cut to the size) of the same bytes.
func TestValues(t *testing.T) {
	const max = 1 << 20
	v := NewValues(max)
	if v.Max() != max {
		t.Fatalf("Max %d, want %d", v.Max(), max)
	}
	sizes := []int{0, 1, 10, minValues - 1, minValues, minValues + 1, 100_000, max - 1, max, max + 1, 2 * max}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sizes {
				n := sizes[(i+g)%len(sizes)]
				checkValue(t, v.Get(n), min(n, max))
			}
		}()
	}
	wg.Wait()
	if got := len(*v.buf.Load()); got != max {
		t.Fatalf("buffer of %d bytes after asking for %d, want %d", got, 2*max, max)
	}
	// A source whose values stay small keeps a small buffer.
	small := NewValues(16 << 20)
	checkValue(t, small.Get(1000), 1000)
	if got := len(*small.buf.Load()); got != minValues {
		t.Fatalf("buffer of %d bytes for values of 1000, want %d", got, minValues)
	}
}
