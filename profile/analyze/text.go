// This file renders Summaries and Comparisons for people (`membench inspect` and `membench compare` without
// --json). The layout is for reading, not parsing: scripts should use the JSON.

package analyze

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// textWriter keeps the first write error so rendering code can print unconditionally.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

// table starts an aligned table section; call flush when done.
func (t *textWriter) table() *tabwriter.Writer {
	return tabwriter.NewWriter(&errTracker{t}, 0, 0, 2, ' ', tabwriter.AlignRight)
}

type errTracker struct{ t *textWriter }

func (e *errTracker) Write(p []byte) (int, error) {
	if e.t.err != nil {
		return 0, e.t.err
	}
	n, err := e.t.w.Write(p)
	e.t.err = err
	return n, err
}

func (t *textWriter) flush(tw *tabwriter.Writer) {
	if err := tw.Flush(); err != nil && t.err == nil {
		t.err = err
	}
}

// WriteText writes a readable report of s to w: overview, command mix, statuses, sizes, TTL, popularity,
// namespaces, rate, latency and the MRC as a table. It returns the first write error.
func (s *Summary) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	exact := func(ok bool) string {
		if ok {
			return "exact"
		}
		return "estimated"
	}
	t.printf("Overview\n")
	t.printf("  events          %d (%d with a key)\n", s.Events, s.KeyedEvents)
	if s.Events > 0 {
		start := time.Unix(0, s.StartUnixNs).UTC().Format(time.RFC3339Nano)
		t.printf("  time            %s for %s\n", start, time.Duration(s.DurationSeconds*1e9).Round(time.Millisecond))
	}
	t.printf("  connections     %d (%s)\n", s.Connections, exact(s.ConnectionsExact))
	t.printf("  unique keys     %d (%s)\n", s.UniqueKeys, exact(s.UniqueKeysExact))
	t.printf("  working set     %s\n", humanBytes(s.WorkingSetBytes))
	if s.Hits+s.Misses == 0 {
		t.printf("  hit ratio       n/a (no retrievals answered hit or miss)\n")
	} else {
		t.printf("  hit ratio       %.2f%% (%d hits, %d misses)\n", 100*s.HitRatio, s.Hits, s.Misses)
	}
	if s.MultiKeyGets > 0 {
		t.printf("  multi-key gets  %d, with %d keys (%.1f per get)\n", s.MultiKeyGets, s.MultiKeyGetKeys,
			float64(s.MultiKeyGetKeys)/float64(s.MultiKeyGets))
	}
	t.printf("  protocols       %s\n", countList(s.Protocols, s.Events))
	if s.TruncatedBlocks+s.CorruptBlocks > 0 {
		t.printf("  damaged blocks  %d truncated, %d corrupt (their events are missing)\n", s.TruncatedBlocks,
			s.CorruptBlocks)
	}

	t.printf("\nCommand mix\n")
	t.counts(s.Commands, s.Events)
	t.printf("\nStatuses\n")
	t.counts(s.Statuses, s.Events)

	t.printf("\nSizes (bytes) and TTL (seconds, 0 = never expires)\n")
	tw := t.table()
	fmt.Fprintf(tw, "  \tcount\tmin\tp50\tp90\tp99\tmax\tmean\t\n")
	for _, r := range []struct {
		name string
		d    *Dist
	}{{"key", &s.KeySize}, {"value", &s.ValueSize}, {"ttl", &s.TTL}} {
		d := r.d
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", r.name, d.Count, d.Min, d.P50, d.P90, d.P99, d.Max,
			d.Mean)
	}
	t.flush(tw)
	if s.TTLExpired > 0 {
		t.printf("  %d stores carried an already expired TTL\n", s.TTLExpired)
	}

	t.printf("\nPopularity (%s)\n", exact(s.TopKeysExact))
	ts, tb := s.TopKeysShare, s.TopKeysBound
	if s.TopKeysExact {
		t.printf("  zipf alpha      %.3f\n", s.ZipfAlpha)
		t.printf("  top keys share  1: %.2f%%  10: %.2f%%  100: %.2f%%  1000: %.2f%%\n", 100*ts.Top1, 100*ts.Top10,
			100*ts.Top100, 100*ts.Top1000)
	} else {
		t.printf("  zipf alpha      %.3f ± %.3f\n", s.ZipfAlpha, s.ZipfAlphaBound)
		t.printf("  top keys share  1: %.2f%% ± %.2f  10: %.2f%% ± %.2f  100: %.2f%% ± %.2f  1000: %.2f%% ± %.2f\n",
			100*ts.Top1, 100*tb.Top1, 100*ts.Top10, 100*tb.Top10, 100*ts.Top100, 100*tb.Top100, 100*ts.Top1000,
			100*tb.Top1000)
	}

	t.printf("\nNamespaces (%s)\n", exact(s.TopNamespacesExact))
	if len(s.TopNamespaces) == 0 {
		t.printf("  none recorded\n")
	} else {
		tw = t.table()
		for _, ns := range s.TopNamespaces {
			fmt.Fprintf(tw, "  %s\t%d\t%.2f%%\t\n", ns.NS, ns.Count, 100*ns.Share)
		}
		t.flush(tw)
	}

	t.printf("\nRate (%d buckets of %gs)\n", len(s.Rate), s.RateBucketSeconds)
	if len(s.Rate) > 0 {
		var peak, sum uint64
		for _, r := range s.Rate {
			peak = max(peak, r.Total)
			sum += r.Total
		}
		w := s.RateBucketSeconds
		t.printf("  events/s        mean %.1f, peak bucket %.1f\n", float64(sum)/w/float64(len(s.Rate)),
			float64(peak)/w)
	}
	if len(s.HitRatioOverTime) > 0 {
		lo, hi := 1.0, 0.0
		for _, p := range s.HitRatioOverTime {
			lo, hi = min(lo, p.HitRatio), max(hi, p.HitRatio)
		}
		t.printf("  hit ratio       %.2f%% to %.2f%% across buckets\n", 100*lo, 100*hi)
	}

	t.printf("\nLatency (µs)\n")
	if l := s.LatencyUs; l == nil {
		t.printf("  not measured\n")
	} else {
		t.printf("  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%d events)\n", l.P50, l.P90, l.P99,
			l.P999, l.Max, l.Count)
	}

	unit := cmp.Or(s.MRCUnit, UnitBytes)
	t.printf("\nLRU miss-ratio curve by %s (model %s, %s", unit, cmp.Or(s.MRCModel, ModelRecorded), s.MRCMethod)
	if s.MRCErrorBound > 0 {
		t.printf(", mean abs error ≲ %.3f", s.MRCErrorBound)
	}
	t.printf(")\n")
	if len(s.MRC) == 0 {
		t.printf("  no retrievals\n")
	} else {
		t.printf("  %d retrievals", s.MRCReads)
		if s.MRCLargestObject > 1 {
			t.printf("; largest object %s (default sizes start there; smaller caches: --mrc-sizes)",
				humanBytes(s.MRCLargestObject))
		}
		t.printf("\n")
		tw = t.table()
		fmt.Fprintf(tw, "  cache\tmiss ratio\t\n")
		for _, p := range s.MRC {
			size := humanBytes(p.CacheBytes)
			if unit == UnitObjects {
				size = fmt.Sprintf("%d objects", p.CacheObjects)
			}
			fmt.Fprintf(tw, "  %s\t%.4f\t\n", size, p.MissRatio)
		}
		t.flush(tw)
	}
	if s.Memcached != nil {
		t.memcached(s.Memcached)
	}
	return t.err
}

// memcached prints the memcached model's predictions, with the LRU curve's hit ratio at the same sizes.
func (t *textWriter) memcached(m *MemcachedSummary) {
	lru := "segmented LRU"
	if !m.Segmented {
		lru = "flat LRU, -o no_lru_maintainer"
	}
	t.printf("\nmemcached model (%s; -f %g -n %d -I %s: %d slab classes; model %s, %s)\n", lru, m.Factor,
		m.ChunkSize, humanBytes(uint64(m.ItemSizeMax)), m.SlabClasses, m.Model, m.Method)
	t.printf("  %d retrievals\n", m.Retrievals)
	tw := t.table()
	fmt.Fprintf(tw, "  memory (-m)\thit ratio\tmisses\tevictions\tfailed stores\tpages\tLRU hit ratio\t\n")
	missing := false
	for _, p := range m.Points {
		lruHit := "-"
		if p.LRUMissRatio != nil {
			lruHit = fmt.Sprintf("%.2f%%", 100*(1-*p.LRUMissRatio))
		} else {
			missing = true
		}
		fmt.Fprintf(tw, "  %s\t%.2f%%\t%d\t%d\t%d\t%d\t%s\t\n", humanBytes(p.MemoryBytes), 100*p.HitRatio, p.Misses,
			p.Evictions, p.OutOfMemory+p.TooLarge, p.Pages, lruHit)
	}
	t.flush(tw)
	if missing {
		t.printf("  (LRU hit ratio at the same sizes: pass them to --mrc-sizes too)\n")
	}
}

// na formats x with format, or "n/a" when it is not available.
func na(format string, x float64) string {
	if NA(x) {
		return "n/a"
	}
	return fmt.Sprintf(format, x)
}

// WriteText writes a readable side-by-side report of c to w and returns the first write error.
func (c *Comparison) WriteText(w io.Writer) error {
	t := &textWriter{w: w}
	tw := t.table()
	fmt.Fprintf(tw, "  \ta\tb\tdistance\t\n")
	fmt.Fprintf(tw, "  events\t%d\t%d\t\t\n", c.A.Events, c.B.Events)
	fmt.Fprintf(tw, "  unique keys\t%d\t%d\t\t\n", c.A.UniqueKeys, c.B.UniqueKeys)
	fmt.Fprintf(tw, "  working set\t%s\t%s\t\t\n", humanBytes(c.A.WorkingSetBytes), humanBytes(c.B.WorkingSetBytes))
	fmt.Fprintf(tw, "  command mix\t\t\tL1 %s\t\n", na("%.4f", c.CommandMixL1))
	fmt.Fprintf(tw, "  key size p50\t%d\t%d\tKS %s\t\n", c.A.KeySize.P50, c.B.KeySize.P50, na("%.4f", c.KeySizeKS))
	fmt.Fprintf(tw, "  value size p50\t%d\t%d\tKS %s\t\n", c.A.ValueSize.P50, c.B.ValueSize.P50,
		na("%.4f", c.ValueSizeKS))
	fmt.Fprintf(tw, "  hit ratio\t%s\t%s\tΔ %s\t\n", na("%.4f", c.A.HitRatio), na("%.4f", c.B.HitRatio),
		na("%+.4f", c.HitRatioDelta))
	if c.A.MultiKeyGets+c.B.MultiKeyGets > 0 {
		fmt.Fprintf(tw, "  multi-key gets (keys)\t%d (%d)\t%d (%d)\t\t\n", c.A.MultiKeyGets, c.A.MultiKeyGetKeys,
			c.B.MultiKeyGets, c.B.MultiKeyGetKeys)
	}
	fmt.Fprintf(tw, "  zipf alpha\t%s\t%s\tΔ %s\t\n", na("%.3f", c.A.ZipfAlpha), na("%.3f", c.B.ZipfAlpha),
		na("%+.3f", c.ZipfAlphaDelta))
	fmt.Fprintf(tw, "  miss-ratio curve\t%s %s\t%s %s\tMAE %s\t\n", c.A.MRCModel, c.A.MRCMethod, c.B.MRCModel,
		c.B.MRCMethod, na("%.4f", c.MRCMAE))
	t.flush(tw)
	for _, w := range c.Warnings {
		t.printf("  note: %s\n", w)
	}

	t.printf("\nCommand mix (share of events)\n")
	names := slices.Collect(maps.Keys(c.A.CommandMix))
	for name := range c.B.CommandMix {
		if _, ok := c.A.CommandMix[name]; !ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(cmp.Compare(c.A.CommandMix[y]+c.B.CommandMix[y], c.A.CommandMix[x]+c.B.CommandMix[x]),
			strings.Compare(x, y))
	})
	tw = t.table()
	for _, name := range names {
		fmt.Fprintf(tw, "  %s\t%.2f%%\t%.2f%%\t\n", name, 100*c.A.CommandMix[name], 100*c.B.CommandMix[name])
	}
	t.flush(tw)
	return t.err
}

// counts prints name → count with shares, largest first.
func (t *textWriter) counts(m map[string]uint64, total uint64) {
	if len(m) == 0 {
		t.printf("  none\n")
		return
	}
	tw := t.table()
	for _, name := range sortedByCount(m) {
		fmt.Fprintf(tw, "  %s\t%d\t%.2f%%\t\n", name, m[name], 100*float64(m[name])/float64(max(total, 1)))
	}
	t.flush(tw)
}

func countList(m map[string]uint64, total uint64) string {
	var parts []string
	for _, name := range sortedByCount(m) {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", name, 100*float64(m[name])/float64(max(total, 1))))
	}
	return strings.Join(parts, ", ")
}

func sortedByCount(m map[string]uint64) []string {
	names := slices.Collect(maps.Keys(m))
	slices.SortFunc(names, func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), strings.Compare(x, y)) })
	return names
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}
