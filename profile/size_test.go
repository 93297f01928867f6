package profile

import "testing"

// TestCompactness guards the encoding's size on the benchmark workload (deterministic: fixed seed, pinned
// zstd). The target is 8 bytes per event at default settings; libCacheSim's oracleGeneral takes 24.
func TestCompactness(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 1 Mi-event workload")
	}
	evs := benchWorkload()
	var cw countingWriter
	w, err := NewStreamWriter(&cw, "size", Header{}, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	perEvent := float64(cw.n) / float64(len(evs))
	t.Logf("%.3f bytes/event", perEvent)
	if perEvent > 8 {
		t.Fatalf("%.3f bytes per event, want at most 8", perEvent)
	}
}
