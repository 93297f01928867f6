// The inspect subcommand: one pass of profile/analyze over a profile, printed for people, as JSON, or as an
// HTML report. This file also holds summarize, which compare shares.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/membench/membench/internal/safefile"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
	"github.com/membench/membench/profile/report"
)

const inspectUsage = `membench inspect — summarize a profile: mix, sizes, TTLs, popularity (Zipf fit), rate,
latency percentiles and the LRU miss-ratio curve.

Usage: membench inspect FILE [--json] [--html REPORT] [--salvage] [--mrc-sizes LIST|RANGE]
                        [--memcached LIST|RANGE]

The text output starts with the profile header (recorder, host label, salt fingerprint, precision,
settings). --json prints only the summary document (schema: profile/analyze/SCHEMA.md), which
'membench compare' also accepts in place of a profile. A profile cut short by a recorder that died or is
still writing is read up to its last complete block, with a warning.

The miss-ratio curve is an LRU cache's. By default its 32 sizes are read off stack distances (exact at
those sizes, from the largest object up); --mrc-sizes simulates a cache of each size given instead (exact
at any size, objects larger than the cache not admitted, as in memcached and libCacheSim). Its model is
"recorded" (hits and misses as recorded) or "fill_on_miss" (libCacheSim's: every read hits iff cached, a
miss fills the cache), by default fill_on_miss when reads have no recorded outcome (imported traces).

--memcached simulates memcached itself at each memory limit (-m) given: slab classes with one LRU each,
pages given to classes first come and never moved, the segmented HOT/WARM/COLD LRU of memcached 1.6
(or, with --memcached-segmented=false, the flat LRU that moves an item at most once per 60 s), chunked
large items, expiry, timed by the events. It predicts the hit ratio (and misses, evictions) that
memcached would have, which can differ from an LRU's by points. Reads follow the curve's model, a miss
filling the cache as a look-aside client's set would when the model is fill_on_miss or the recorded
read hit. The model is in profile/analyze/memcached.go; how well it predicts, in docs/WORKLOADS.md.

Flags:
  --json             print the summary as JSON
  --html REPORT      also write a self-contained HTML report to REPORT (overwritten)
  --salvage          skip corrupt blocks instead of failing (counted in the summary)
  --max-keys N       keys tracked exactly before figures become estimates (default 1048576, ~80 B each)
  --rate-bucket D    width of the rate and hit-ratio-over-time buckets (default 1s)
  --mrc-sizes SIZES  simulate these cache sizes: a list (64MiB,1GiB,1500000) or a range START:STOP:STEP
                     (128MiB:1GiB:128MiB) or START:STOP:xF (1MiB:1GiB:x2); at most 64 sizes. Units B,
                     KiB, MiB, GiB, TiB, and KB, MB, GB, TB (powers of 1000); plain numbers with
                     --mrc-unit objects
  --mrc-unit UNIT    bytes (default) or objects: caches hold a number of objects, whatever their sizes
  --mrc-model MODEL  recorded or fill_on_miss (default: by what the profile holds, see above)
  --memcached SIZES  simulate memcached with these memory limits (-m), in the --mrc-sizes syntax with
                     byte units (64MiB,256MiB or 64MiB:1GiB:x2); at most 16 sizes, ~24 B per key each
  --memcached-factor F        slab growth factor, memcached -f (default 1.25)
  --memcached-chunk-size N    minimum space for key, flags and value, memcached -n (default 48)
  --memcached-item-max SIZE   largest item, memcached -I (default 1MiB; a multiple of 512KiB)
  --memcached-segmented       segmented LRU, as memcached 1.6 runs by default (default true);
                              --memcached-segmented=false models memcached -o no_lru_maintainer

Examples:
  membench inspect prod.mbp
  membench inspect prod.mbp --json > prod.json
  membench inspect prod.mbp --html prod.html
  membench inspect crashed.mbp --salvage
  membench inspect trace.mbp --mrc-sizes 128MiB:1GiB:128MiB
  membench inspect trace.mbp --mrc-unit objects --mrc-sizes 1000,10000,100000
  membench inspect prod.mbp --memcached 1GiB,2GiB,4GiB --mrc-sizes 1GiB,2GiB,4GiB
`

func init() {
	register(&command{
		name:    "inspect",
		summary: "summarize a profile (mix, sizes, popularity, latency, miss-ratio curve)",
		usage:   inspectUsage,
		run:     runInspect,
	})
}

// analysisFlags are the flags inspect and compare share.
type analysisFlags struct {
	json       *bool
	html       *string
	salvage    *bool
	maxKeys    *int
	rateBucket *time.Duration
	mrcSizes   *string
	mrcUnit    *string
	mrcModel   *string
}

func addAnalysisFlags(fs *flag.FlagSet) analysisFlags {
	return analysisFlags{
		json:       fs.Bool("json", false, ""),
		html:       fs.String("html", "", ""),
		salvage:    fs.Bool("salvage", false, ""),
		maxKeys:    fs.Int("max-keys", 0, ""),
		rateBucket: fs.Duration("rate-bucket", 0, ""),
		mrcSizes:   fs.String("mrc-sizes", "", ""),
		mrcUnit:    fs.String("mrc-unit", analyze.UnitBytes, ""),
		mrcModel:   fs.String("mrc-model", "", ""),
	}
}

func (f analysisFlags) options() (analyze.Options, error) {
	o := analyze.Options{MaxKeys: *f.maxKeys, RateBucket: *f.rateBucket, MRCUnit: *f.mrcUnit, MRCModel: *f.mrcModel}
	switch o.MRCUnit {
	case analyze.UnitBytes, analyze.UnitObjects:
	default:
		return o, fmt.Errorf("unknown --mrc-unit %q (want bytes or objects): %w", o.MRCUnit, errUsage)
	}
	switch o.MRCModel {
	case "", analyze.ModelRecorded, analyze.ModelFillOnMiss:
	default:
		return o, fmt.Errorf("unknown --mrc-model %q (want recorded or fill_on_miss): %w", o.MRCModel, errUsage)
	}
	if *f.mrcSizes != "" {
		sizes, err := parseMRCSizes(*f.mrcSizes, o.MRCUnit == analyze.UnitObjects)
		if err != nil {
			return o, fmt.Errorf("--mrc-sizes %q: %v: %w", *f.mrcSizes, err, errUsage)
		}
		o.MRCSizes = sizes
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--max-keys, --rate-bucket or --mrc-sizes: %v: %w", err, errUsage)
	}
	return o, nil
}

// memcachedFlags are inspect's flags of the memcached model (analyze.MemcachedOptions).
type memcachedFlags struct {
	sizes     *string
	factor    *float64
	chunkSize *int
	itemMax   *string
	segmented *bool
}

func addMemcachedFlags(fs *flag.FlagSet) memcachedFlags {
	return memcachedFlags{
		sizes:     fs.String("memcached", "", ""),
		factor:    fs.Float64("memcached-factor", analyze.DefaultMemcachedFactor, ""),
		chunkSize: fs.Int("memcached-chunk-size", analyze.DefaultMemcachedChunkSize, ""),
		itemMax:   fs.String("memcached-item-max", "1MiB", ""),
		segmented: fs.Bool("memcached-segmented", true, ""),
	}
}

// options returns the model's options; without --memcached, none (the other flags are then ignored).
func (f memcachedFlags) options() (analyze.MemcachedOptions, error) {
	var o analyze.MemcachedOptions
	if *f.sizes == "" {
		return o, nil
	}
	sizes, err := parseMRCSizes(*f.sizes, false)
	if err != nil {
		return o, fmt.Errorf("--memcached %q: %v: %w", *f.sizes, err, errUsage)
	}
	itemMax, err := parseSize(*f.itemMax, false)
	if err != nil || itemMax > math.MaxInt32 {
		return o, fmt.Errorf("--memcached-item-max %q: want a size such as 1MiB or 2MiB: %w", *f.itemMax, errUsage)
	}
	o = analyze.MemcachedOptions{Sizes: sizes, Factor: *f.factor, ChunkSize: *f.chunkSize, ItemMax: int(itemMax),
		Flat: !*f.segmented}
	if *f.chunkSize <= 0 {
		return o, fmt.Errorf("--memcached-chunk-size %d: want a positive number of bytes: %w", *f.chunkSize, errUsage)
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--memcached, --memcached-factor, --memcached-chunk-size or --memcached-item-max: "+
			"%v: %w", err, errUsage)
	}
	return o, nil
}

// sizeUnits are the suffixes --mrc-sizes takes in bytes.
var sizeUnits = []struct {
	name string
	mult uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// parseSize reads one cache size: a positive integer, in bytes with an optional unit unless objects.
func parseSize(text string, objects bool) (uint64, error) {
	num, mult := strings.TrimSpace(text), uint64(1)
	if !objects {
		for _, u := range sizeUnits {
			if n, ok := strings.CutSuffix(num, u.name); ok {
				num, mult = strings.TrimSpace(n), u.mult
				break
			}
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v == 0 {
		if objects {
			return 0, fmt.Errorf("size %q is not a positive number of objects", text)
		}
		return 0, fmt.Errorf("size %q is not a positive number with an optional unit (B, KiB, MiB, GiB, TiB, "+
			"KB, MB, GB, TB)", text)
	}
	if v > math.MaxUint64/mult {
		return 0, fmt.Errorf("size %q is too large", text)
	}
	return v * mult, nil
}

// parseMRCSizes reads --mrc-sizes: a comma-separated list, START:STOP:STEP (STOP included when the steps reach
// it) or START:STOP:xF (multiplying by the integer F > 1). The sizes come back ascending, without duplicates,
// at most analyze.MaxMRCSizes of them.
func parseMRCSizes(text string, objects bool) ([]uint64, error) {
	var sizes []uint64
	if parts := strings.Split(text, ":"); len(parts) > 1 {
		if len(parts) != 3 {
			return nil, fmt.Errorf("a range is START:STOP:STEP or START:STOP:xF")
		}
		start, err := parseSize(parts[0], objects)
		if err != nil {
			return nil, err
		}
		stop, err := parseSize(parts[1], objects)
		if err != nil {
			return nil, err
		}
		if stop < start {
			return nil, fmt.Errorf("range stops at %d, below its start %d", stop, start)
		}
		step := strings.TrimSpace(parts[2])
		var next func(uint64) (uint64, bool) // the size after v, and whether it did not overflow
		if f, ok := strings.CutPrefix(step, "x"); ok {
			factor, err := strconv.ParseUint(f, 10, 64)
			if err != nil || factor < 2 {
				return nil, fmt.Errorf("factor %q is not an integer ≥ 2", step)
			}
			next = func(v uint64) (uint64, bool) { return v * factor, v <= math.MaxUint64/factor }
		} else {
			d, err := parseSize(step, objects)
			if err != nil {
				return nil, err
			}
			next = func(v uint64) (uint64, bool) { return v + d, v <= math.MaxUint64-d }
		}
		for v, ok := start, true; ok && v <= stop; v, ok = next(v) {
			if len(sizes) == analyze.MaxMRCSizes {
				return nil, fmt.Errorf("the range has more than %d sizes", analyze.MaxMRCSizes)
			}
			sizes = append(sizes, v)
		}
	} else {
		for _, item := range strings.Split(text, ",") {
			v, err := parseSize(item, objects)
			if err != nil {
				return nil, err
			}
			sizes = append(sizes, v)
		}
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	if len(sizes) > analyze.MaxMRCSizes {
		return nil, fmt.Errorf("%d sizes, at most %d", len(sizes), analyze.MaxMRCSizes)
	}
	return sizes, nil
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	af := addAnalysisFlags(fs)
	mf := addMemcachedFlags(fs)
	pos, err := parseArgs(fs, inspectUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one profile, got %d arguments: %w", len(pos), errUsage)
	}
	opts, err := af.options()
	if err != nil {
		return err
	}
	if opts.Memcached, err = mf.options(); err != nil {
		return err
	}
	in, err := summarize(pos[0], *af.salvage, opts, stderr)
	if err != nil {
		return err
	}
	if len(opts.Memcached.Sizes) > 0 && in.hdr == nil {
		fmt.Fprintf(stderr, "warning: %s is a saved summary, not a profile: --memcached has no events to simulate\n",
			pos[0])
	}
	if *af.html != "" {
		if err := writeReport(*af.html, "membench inspect "+pos[0], []report.Input{{Label: pos[0], Summary: in.sum}},
			nil); err != nil {
			return err
		}
	}
	if *af.json {
		return writeJSON(stdout, in.sum)
	}
	bw := bufio.NewWriter(stdout)
	if in.hdr != nil {
		writeHeaderText(bw, pos[0], in.hdr)
	}
	if err := in.sum.WriteText(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// summarized is a profile's summary, with its header when it came from a profile rather than a JSON file.
type summarized struct {
	sum *analyze.Summary
	hdr *profile.Header
}

// summarize analyzes the profile at path, or reads a summary saved by 'inspect --json'.
func summarize(path string, salvage bool, opts analyze.Options, stderr io.Writer) (summarized, error) {
	f, err := os.Open(path)
	if err != nil {
		return summarized{}, fmt.Errorf("cannot open profile: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if head, _ := br.Peek(len(profile.Magic)); len(head) > 0 && string(head) != profile.Magic {
		if trimmed := bytes.TrimLeft(head, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
			return readSummaryJSON(path, br)
		}
	}
	r, err := profile.NewReader(br, path, profile.ReaderOptions{Salvage: salvage})
	if err != nil {
		return summarized{}, err
	}
	defer r.Close()
	a := analyze.New(opts)
	var n atomic.Int64
	stop := progressLine(stderr, func() string { return fmt.Sprintf("inspect %s: %d events read", path, n.Load()) })
	for ev := range r.All() {
		a.Add(ev)
		n.Add(1)
	}
	stop()
	if err := r.Err(); err != nil {
		return summarized{}, err
	}
	warnDamage(stderr, r)
	s := a.Summary()
	s.TruncatedBlocks, s.CorruptBlocks = uint64(r.TruncatedBlocks()), uint64(r.CorruptBlocks())
	h := r.Header()
	return summarized{sum: s, hdr: &h}, nil
}

func readSummaryJSON(path string, r io.Reader) (summarized, error) {
	var s analyze.Summary
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return summarized{}, fmt.Errorf("cannot read summary %s (want a profile or 'membench inspect --json' "+
			"output): %w", path, err)
	}
	if s.SchemaVersion != analyze.SchemaVersion {
		return summarized{}, fmt.Errorf("cannot read summary %s: schema version %d, this membench reads %d; "+
			"rerun 'membench inspect --json' on the profile", path, s.SchemaVersion, analyze.SchemaVersion)
	}
	return summarized{sum: &s}, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeReport(path, title string, in []report.Input, cmp *analyze.Comparison) error {
	// Through a temporary file renamed into place: a symlink at path is replaced, never followed.
	f, err := safefile.Create(path, safefile.Public, true)
	if err != nil {
		return fmt.Errorf("cannot create report (--html): %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := report.WriteHTML(bw, title, in, cmp); err != nil {
		f.Abort()
		return fmt.Errorf("cannot write report %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("cannot write report %s: %w", path, err)
	}
	return f.Commit()
}

// writeHeaderText prints what the profile says about its recording.
func writeHeaderText(w io.Writer, path string, h *profile.Header) {
	fmt.Fprintf(w, "profile %s\n", path)
	fmt.Fprintf(w, "  recorded by     %s", h.Mode)
	if h.Host != "" {
		fmt.Fprintf(w, " on %s", h.Host)
	}
	fmt.Fprintf(w, ", started %s\n", h.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  salt            fingerprint %016x\n", h.SaltFingerprint)
	lat := "exact"
	if h.LatencyBits < profile.ExactLatency {
		lat = fmt.Sprintf("%d significant bits (±%.2g%%)", h.LatencyBits, 100/float64(uint64(1)<<h.LatencyBits))
	}
	fmt.Fprintf(w, "  precision       times to %s, latencies %s\n", time.Duration(h.TimeUnit), lat)
	if len(h.Settings) > 0 {
		keys := make([]string, 0, len(h.Settings))
		for k := range h.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "  settings       ")
		for _, k := range keys {
			fmt.Fprintf(w, " %s=%q", k, h.Settings[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}
