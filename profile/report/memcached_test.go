package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/membench/membench/profile/analyze"
)

// TestWriteHTML_Memcached: the memcached model's predictions are a table of the profile and points on the LRU
// miss-ratio chart.
func TestWriteHTML_Memcached(t *testing.T) {
	s := summary(t, 1, false)
	lru := 0.25
	s.Memcached = &analyze.MemcachedSummary{Segmented: true, Retrievals: 100, Points: []analyze.MemcachedPoint{
		{MemoryBytes: 64 << 20, HitRatio: 0.8, MissRatio: 0.2, Misses: 20, Evictions: 7, LRUMissRatio: &lru},
		{MemoryBytes: 256 << 20, HitRatio: 0.9, MissRatio: 0.1, Misses: 10},
	}}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, "mc", []Input{{"a.mbp", s}}, nil); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{"<th>memcached model</th>", "<td>-m 64.0 MiB</td><td>80.00%</td><td>20</td><td>7</td><td>75.00%</td>",
		"<td>-m 256.0 MiB</td><td>90.00%</td><td>10</td><td>0</td><td>–</td>", "a.mbp memcached -m (predicted)",
		"points: memcached with this memory limit"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
