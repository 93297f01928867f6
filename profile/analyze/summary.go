// This file holds the Summary (the JSON document `membench inspect` prints and `membench compare` reads) and its
// derivation from an Analyzer's state. Its field list is mirrored in SCHEMA.md; change both together and bump
// SchemaVersion when a field changes meaning.

package analyze

import (
	"fmt"
	"math"
	"strconv"

	"github.com/membench/membench/mcproto"
)

// SchemaVersion is the Summary schema version, written as "schema_version". Additions keep it; renames,
// removals and changes of meaning bump it.
const SchemaVersion = 1

// Summary is the analysis of one profile. It is a plain value, safe to marshal with encoding/json; the JSON
// schema below is stable (see SCHEMA.md for the same list with examples). "Retrievals" are get, gets, gat, gats
// and mg events answered hit or miss; "keyed events" are events of commands that name a key
// (mcproto.Command.HasKey); "storage" events are set, add, replace, append, prepend, cas and ms.
//
//	schema_version       int      SchemaVersion.
//	events               uint     All events.
//	keyed_events         uint     Events of commands that name a key.
//	connections          uint     Distinct Event.Conn values (HyperLogLog past 2^20, then connections_exact=false).
//	connections_exact    bool
//	start_unix_ns        int      Earliest event time.
//	duration_seconds     float    Latest minus earliest event time.
//	protocols            {name: count}  By mcproto.Protocol.String().
//	commands             {name: count}  By mcproto.Command.String().
//	statuses             {name: count}  By mcproto.Status.String().
//	hits, misses         uint     Retrievals answered hit / miss.
//	hit_ratio            float    hits / (hits + misses); 0 without retrievals.
//	multi_key_gets       uint     Text multi-key gets (get k1 k2 …): requests, counted once each.
//	multi_key_get_keys   uint     Events that are keys of those requests.
//	unique_keys          uint     Distinct key hashes among keyed events.
//	unique_keys_exact    bool     False once more than Options.MaxKeys keys were seen: then a HyperLogLog estimate
//	                              (standard error 0.8%).
//	working_set_bytes    uint     Sum over unique keys of key size + the key's last known value size (from its
//	                              latest store or hit, or read without a recorded outcome that names one; 0 if
//	                              never seen). When unique_keys_exact is false: the heaviest 1024 keys exactly plus
//	                              the SHARDS-sampled keys' sum / rate.
//	key_size             Dist     Key sizes of keyed events.
//	value_size           Dist     Value sizes of storage events (request value), retrieval hits (response value)
//	                              and reads without a recorded outcome that name a value size (imported traces).
//	ttl                  Dist     Exptime of storage events in seconds from the event, absolute Unix exptimes
//	                              (> 30 days) converted; 0 means "never expires".
//	ttl_expired          uint     Storage events whose exptime was already past (negative, or an absolute time
//	                              before the event); not in ttl.
//	top_namespaces       [{ns, count, share}]  The 10 most frequent namespace hashes (Event.NSHash ≠ 0) among
//	                              keyed events; ns is 16 hex digits, share = count / keyed_events.
//	top_namespaces_exact bool     False when more than 1024 namespaces were seen: counts are then Space-Saving
//	                              upper bounds.
//	top_keys_share       {top1, top10, top100, top1000}  Share of keyed events that went to the 1, 10, 100 and
//	                              1000 most frequent keys.
//	top_keys_exact       bool     False past Options.MaxKeys keys: then estimated (estimatePopularity, sketch.go)
//	                              from the keys heaviest at the overflow (exact), keys a Space-Saving sketch of 4096
//	                              counters knows to within 25%, and the SHARDS key sample, each key × 1/rate.
//	top_keys_share_error_bound {top1, top10, top100, top1000}  0 when exact; else the bound on |estimate − exact
//	                              share|: 3 standard errors plus the keys the sample may have missed and the
//	                              sketch's intervals (sketch.go).
//	zipf_alpha           float    Fitted Zipf exponent of key popularity (method on fitZipf; 0 if < 2 points).
//	zipf_alpha_error_bound float  0 when exact; else the bound on |estimate − exact α|, in the same way.
//	popularity           [{rank, count}]  Rank-frequency curve, log-binned (20 bins per decade, ≤ 200 points):
//	                              rank is the bin's geometric mean rank, count the mean keyed events per key in it.
//	                              Past MaxKeys, the estimated curve above: all keys merged by count, a sampled key
//	                              filling 1/rate ranks.
//	rate_bucket_seconds  float    Width of one bucket of rate and hit_ratio_over_time (Options.RateBucket, doubled
//	                              each time the series would exceed 1000 buckets).
//	rate                 [{t, total, by_command}]  Events per bucket; t is the bucket start in seconds since
//	                              start_unix_ns; by_command lists non-zero commands. Events earlier than the first
//	                              event (clock skew between connections) count in the first bucket.
//	hit_ratio_over_time  [{t, retrievals, hit_ratio}]  Per bucket with at least one retrieval.
//	latency_us           {count, p50, p90, p99, p999, max}  Microseconds, over events with Event.Latency > 0;
//	                              omitted when there are none. Within 0.8% (histogram buckets); max exact.
//	mrc                  [{cache_bytes | cache_objects, miss_ratio}]  LRU miss-ratio curve over the MRC's
//	                              retrievals, ascending sizes (cache_bytes, or cache_objects when mrc_unit is
//	                              objects); empty without retrievals. Model below.
//	mrc_model            string   "recorded" or "fill_on_miss" (Options.MRCModel; by default fill_on_miss when the
//	                              profile's first read has no recorded outcome, as in imported traces).
//	mrc_unit             string   "bytes" or "objects".
//	mrc_reads            uint     Retrievals the curve counts (the model's).
//	mrc_largest_object   uint     Largest object simulated, in mrc_unit; default curve sizes are not below it.
//	mrc_method           string   "exact", or "shards(rate=1/N)" when keys were sampled.
//	mrc_error_bound      float    0 when exact; else the expected bound on the mean absolute error of miss_ratio
//	                              (see shardsErrorBound).
//	memcached            {factor, chunk_size, item_size_max, slab_chunk_max, slab_classes, segmented, model,
//	                              method, retrievals, points}  Only with Options.Memcached.Sizes: memcached itself
//	                              simulated at each memory limit (memcached.go); points are {memory_bytes,
//	                              hit_ratio, miss_ratio, hits, misses, evictions, reclaimed, out_of_memory,
//	                              too_large, pages, lru_miss_ratio}, the last only where mrc has the same size.
//	truncated_blocks     uint     Filled by the caller from the profile reader.
//	corrupt_blocks       uint     Filled by the caller from the profile reader.
//
// Dist is {count, min, p50, p90, p99, max, mean, hist}: nearest-rank percentiles, exact below 1024 and within
// one bucket (< 0.8%) above; hist lists the non-empty buckets as [le, count] pairs, le being the bucket's largest
// value, in the fixed layout (one bucket per value below 1024, 128 per power of two above) that Compare relies
// on.
//
// MRC model. The simulated cache sits in front of a store of live objects. Model "recorded" follows the recorded
// outcomes: retrievals are reads answered hit or miss; a key becomes live when a store succeeds (status stored,
// none_expected, exists or unknown) or a retrieval hits, and stops being live on a delete or md (unless it failed
// with an error). A retrieval of a key that is not live (never stored in the profile, or deleted) is a miss at
// every size, so the curve flattens at that cold-miss ratio; a miss on a live key refills it, as the client's set
// after a miss would. Model "fill_on_miss" is libCacheSim's, for traces without outcomes: every read (hit, miss
// or unknown) is a retrieval and makes its key live, a miss filling the cache with the read's size (key size +
// value size). In both, every access to a live key (retrieval, store, NOT_STORED, touch, incr, decr, ma) moves
// it to the most-recently-used end of one LRU order, with its object size: key size + the latest value size (a
// store's value, append/prepend adding to it, a hit's returned value, or a fill_on_miss read's); with mrc_unit
// objects every object counts 1. A cache of C holds the most recent keys whose sizes sum to at most C, leaving
// out objects larger than C, which an LRU cache does not admit. Expiry is not modelled.
//
// Requested sizes (Options.MRCSizes) are each simulated as exactly such an evict-on-insert LRU cache. Default
// sizes are read off byte stack distances: a retrieval hits at C iff its key is live and its own size plus the
// sizes of the keys used since its previous access is ≤ C. That is the same cache at every C no smaller than the
// largest object (mrc_largest_object; below it, non-admission makes LRU no stack algorithm, so default sizes
// start there) on a trace without deletes in which each key keeps one size; a delete frees the key's bytes for
// every key behind it, so that keys it had pushed out count as cached again, which the simulated caches do not.
type Summary struct {
	SchemaVersion      int               `json:"schema_version"`
	Events             uint64            `json:"events"`
	KeyedEvents        uint64            `json:"keyed_events"`
	Connections        uint64            `json:"connections"`
	ConnectionsExact   bool              `json:"connections_exact"`
	StartUnixNs        int64             `json:"start_unix_ns"`
	DurationSeconds    float64           `json:"duration_seconds"`
	Protocols          map[string]uint64 `json:"protocols"`
	Commands           map[string]uint64 `json:"commands"`
	Statuses           map[string]uint64 `json:"statuses"`
	Hits               uint64            `json:"hits"`
	Misses             uint64            `json:"misses"`
	HitRatio           float64           `json:"hit_ratio"`
	MultiKeyGets       uint64            `json:"multi_key_gets"`
	MultiKeyGetKeys    uint64            `json:"multi_key_get_keys"`
	UniqueKeys         uint64            `json:"unique_keys"`
	UniqueKeysExact    bool              `json:"unique_keys_exact"`
	WorkingSetBytes    uint64            `json:"working_set_bytes"`
	KeySize            Dist              `json:"key_size"`
	ValueSize          Dist              `json:"value_size"`
	TTL                Dist              `json:"ttl"`
	TTLExpired         uint64            `json:"ttl_expired"`
	TopNamespaces      []Namespace       `json:"top_namespaces"`
	TopNamespacesExact bool              `json:"top_namespaces_exact"`
	TopKeysShare       TopShare          `json:"top_keys_share"`
	TopKeysExact       bool              `json:"top_keys_exact"`
	TopKeysBound       TopShare          `json:"top_keys_share_error_bound"`
	ZipfAlpha          float64           `json:"zipf_alpha"`
	ZipfAlphaBound     float64           `json:"zipf_alpha_error_bound"`
	Popularity         []RankCount       `json:"popularity"`
	RateBucketSeconds  float64           `json:"rate_bucket_seconds"`
	Rate               []RatePoint       `json:"rate"`
	HitRatioOverTime   []HitRatioPoint   `json:"hit_ratio_over_time"`
	LatencyUs          *Latency          `json:"latency_us,omitempty"`
	MRC                []MRCPoint        `json:"mrc"`
	MRCModel           string            `json:"mrc_model"`
	MRCUnit            string            `json:"mrc_unit"`
	MRCReads           uint64            `json:"mrc_reads"`
	MRCLargestObject   uint64            `json:"mrc_largest_object"`
	MRCMethod          string            `json:"mrc_method"`
	MRCErrorBound      float64           `json:"mrc_error_bound"`
	Memcached          *MemcachedSummary `json:"memcached,omitempty"`
	TruncatedBlocks    uint64            `json:"truncated_blocks"`
	CorruptBlocks      uint64            `json:"corrupt_blocks"`
}

// Dist summarises one distribution; see Summary for the definitions.
type Dist struct {
	Count uint64      `json:"count"`
	Min   uint64      `json:"min"`
	P50   uint64      `json:"p50"`
	P90   uint64      `json:"p90"`
	P99   uint64      `json:"p99"`
	Max   uint64      `json:"max"`
	Mean  float64     `json:"mean"`
	Hist  [][2]uint64 `json:"hist"` // non-empty buckets as [largest value in bucket, count], ascending
}

// Namespace is one entry of Summary.TopNamespaces.
type Namespace struct {
	NS    string  `json:"ns"` // Event.NSHash as 16 hex digits
	Count uint64  `json:"count"`
	Share float64 `json:"share"`
}

// TopShare is the share of keyed events that went to the N most frequent keys.
type TopShare struct {
	Top1    float64 `json:"top1"`
	Top10   float64 `json:"top10"`
	Top100  float64 `json:"top100"`
	Top1000 float64 `json:"top1000"`
}

// RankCount is one point of the log-binned rank-frequency curve.
type RankCount struct {
	Rank  float64 `json:"rank"`
	Count float64 `json:"count"`
}

// RatePoint is one bucket of Summary.Rate.
type RatePoint struct {
	T         float64           `json:"t"`
	Total     uint64            `json:"total"`
	ByCommand map[string]uint64 `json:"by_command"`
}

// HitRatioPoint is one bucket of Summary.HitRatioOverTime.
type HitRatioPoint struct {
	T          float64 `json:"t"`
	Retrievals uint64  `json:"retrievals"`
	HitRatio   float64 `json:"hit_ratio"`
}

// Latency holds latency percentiles in microseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// MRCPoint is one point of the miss-ratio curve: the cache size is in CacheBytes or, when the summary's
// mrc_unit is objects, in CacheObjects.
type MRCPoint struct {
	CacheBytes   uint64  `json:"cache_bytes,omitempty"`
	CacheObjects uint64  `json:"cache_objects,omitempty"`
	MissRatio    float64 `json:"miss_ratio"`
}

// Size returns the point's cache size in its unit.
func (p MRCPoint) Size() uint64 { return p.CacheBytes + p.CacheObjects }

// mrcPoint is a point of a curve in unit.
func mrcPoint(unit string, size uint64, missRatio float64) MRCPoint {
	if unit == UnitObjects {
		return MRCPoint{CacheObjects: size, MissRatio: missRatio}
	}
	return MRCPoint{CacheBytes: size, MissRatio: missRatio}
}

// Summary derives the figures from everything added so far. It does not change the Analyzer: Add may go on and
// Summary be called again.
func (a *Analyzer) Summary() *Summary {
	s := &Summary{
		SchemaVersion:     SchemaVersion,
		Events:            a.events,
		KeyedEvents:       a.keyed,
		Protocols:         map[string]uint64{},
		Commands:          map[string]uint64{},
		Statuses:          map[string]uint64{},
		Hits:              a.hits,
		Misses:            a.misses,
		MultiKeyGets:      a.multiGets,
		MultiKeyGetKeys:   a.multiKeys,
		KeySize:           a.keySize.dist(),
		ValueSize:         a.valueSize.dist(),
		TTL:               a.ttl.dist(),
		TTLExpired:        a.ttlExpired,
		RateBucketSeconds: float64(a.width) / 1e9,
		Rate:              []RatePoint{},
		HitRatioOverTime:  []HitRatioPoint{},
	}
	s.Connections, s.ConnectionsExact = a.conns.count()
	if a.events > 0 {
		s.StartUnixNs = a.minTime
		s.DurationSeconds = float64(a.maxTime-a.minTime) / 1e9
	}
	for i, n := range a.protos {
		if n != 0 {
			s.Protocols[mcproto.Protocol(i).String()] += n
		}
	}
	for i, n := range a.cmds {
		if n != 0 {
			s.Commands[mcproto.Command(i).String()] += n
		}
	}
	for i, n := range a.statuses {
		if n != 0 {
			s.Statuses[mcproto.Status(i).String()] += n
		}
	}
	if r := a.hits + a.misses; r > 0 {
		s.HitRatio = float64(a.hits) / float64(r)
	}
	a.summarizeKeys(s)
	a.summarizeNamespaces(s)
	a.summarizeRate(s)
	if a.latency.n > 0 {
		h := &a.latency
		s.LatencyUs = &Latency{
			Count: h.n,
			P50:   float64(h.quantile(0.50)) / 1e3,
			P90:   float64(h.quantile(0.90)) / 1e3,
			P99:   float64(h.quantile(0.99)) / 1e3,
			P999:  float64(h.quantile(0.999)) / 1e3,
			Max:   float64(h.max) / 1e3,
		}
	}
	a.summarizeMRC(s)
	if a.mc != nil {
		s.Memcached = a.mc.summary(a.mrcReads, s.MRCModel, s.MRC, s.MRCUnit)
	}
	return s
}

// summarizeKeys fills the per-key figures: unique keys, working set, top shares, popularity and Zipf fit.
func (a *Analyzer) summarizeKeys(s *Summary) {
	st := a.stack
	s.UniqueKeysExact, s.TopKeysExact = a.exact, a.exact
	s.WorkingSetBytes = st.wsHot + st.ws<<st.shift
	if !a.exact {
		s.UniqueKeys = a.uniq.estimate()
		est := estimatePopularity(st, a.heavy, a.keyed)
		s.setPopularity(est.popFigures)
		b := est.shareBound
		s.TopKeysBound = TopShare{Top1: b[0], Top10: b[1], Top100: b[2], Top1000: b[3]}
		s.ZipfAlphaBound = est.alphaBound
		return
	}
	s.UniqueKeys = uint64(st.keys.n)
	items := make([]popItem, 0, st.keys.n)
	for _, e := range st.keys.slots {
		if e.hash != 0 {
			c := e.events()
			items = append(items, popItem{count: c, lo: c, hi: c, weight: 1, group: -1})
		}
	}
	sortByCount(items)
	s.setPopularity(figuresOf(items, a.keyed))
}

// setPopularity fills top_keys_share, popularity and zipf_alpha.
func (s *Summary) setPopularity(f popFigures) {
	s.TopKeysShare = TopShare{Top1: f.shares[0], Top10: f.shares[1], Top100: f.shares[2], Top1000: f.shares[3]}
	s.Popularity = f.pop
	s.ZipfAlpha = f.alpha
}

// summarizeNamespaces fills top_namespaces from the namespace sketch.
func (a *Analyzer) summarizeNamespaces(s *Summary) {
	s.TopNamespaces = []Namespace{}
	s.TopNamespacesExact = !a.nsHeavy.replaced
	for _, it := range a.nsHeavy.top() {
		if len(s.TopNamespaces) == 10 {
			break
		}
		s.TopNamespaces = append(s.TopNamespaces, Namespace{
			NS:    fmt.Sprintf("%016x", it.id),
			Count: it.count,
			Share: float64(it.count) / float64(a.keyed),
		})
	}
}

// summarizeRate fills rate and hit_ratio_over_time.
func (a *Analyzer) summarizeRate(s *Summary) {
	for i := range a.rate {
		b := &a.rate[i]
		t := float64(a.origin+int64(i)*a.width-a.minTime) / 1e9
		p := RatePoint{T: t, Total: b.total, ByCommand: map[string]uint64{}}
		for c, n := range b.byCmd {
			if n != 0 {
				p.ByCommand[mcproto.Command(c).String()] = n
			}
		}
		s.Rate = append(s.Rate, p)
		if r := b.hits + b.misses; r > 0 {
			s.HitRatioOverTime = append(s.HitRatioOverTime,
				HitRatioPoint{T: t, Retrievals: r, HitRatio: float64(b.hits) / float64(r)})
		}
	}
}

// summarizeMRC evaluates the miss-ratio curve at the chosen cache sizes.
func (a *Analyzer) summarizeMRC(s *Summary) {
	st := a.stack
	s.MRC = []MRCPoint{}
	s.MRCModel = ModelRecorded
	if a.model == modelFillOnMiss {
		s.MRCModel = ModelFillOnMiss
	}
	s.MRCUnit = UnitBytes
	if st.objects {
		s.MRCUnit = UnitObjects
	}
	s.MRCReads = a.mrcReads
	s.MRCLargestObject = uint64(st.maxSize)
	s.MRCMethod = "exact"
	if st.shift > 0 {
		s.MRCMethod = "shards(rate=1/" + strconv.FormatUint(1<<st.shift, 10) + ")"
		s.MRCErrorBound = shardsErrorBound(st.keys.n - st.hotN)
	}
	n := a.mrcReads
	if n == 0 {
		return
	}
	// Hot keys count exactly; the sampled stratum is scaled to its exact retrieval count. In exact mode there is
	// no hot stratum and the scale is exactly 1.
	scale := 1.0
	if rest := n - min(n, st.hot.weight); st.sampled.weight != rest {
		scale = float64(rest) / float64(max(st.sampled.weight, 1))
	}
	ratio := func(hotHits, sampledHits uint64) float64 {
		misses := float64(st.hot.weight-hotHits) + float64(st.sampled.weight-sampledHits)*scale
		return min(1, max(0, misses/float64(n)))
	}
	if st.sims != nil {
		for i, c := range st.sims {
			s.MRC = append(s.MRC, mrcPoint(s.MRCUnit, c.capacity, ratio(st.hot.hitsAt[i], st.sampled.hitsAt[i])))
		}
		return
	}
	ws := s.WorkingSetBytes
	if st.objects {
		ws = s.UniqueKeys
	}
	for _, c := range defaultMRCSizes(st, ws) {
		s.MRC = append(s.MRC, mrcPoint(s.MRCUnit, c, ratio(st.hot.hitWeight(c), st.sampled.hitWeight(c))))
	}
}

// defaultMRCSizes picks DefaultMRCPoints sizes log-spaced from the smallest stack distance (but spanning 10 to 20
// powers of two, and no smaller than the largest object) up to the largest, where the curve has reached its
// floor. Each is a histogram bucket bound, at which the curve is exact.
func defaultMRCSizes(st *lruStack, workingSet uint64) []uint64 {
	lowest, highest := -1, -1
	for i := range histBuckets {
		if st.hot.dist[i]+st.sampled.dist[i] != 0 {
			if lowest < 0 {
				lowest = i
			}
			highest = i
		}
	}
	hi := workingSet
	lo := uint64(0)
	if highest >= 0 {
		hi, lo = bucketLE(highest), bucketLE(lowest)
	}
	unit := uint64(1024)
	if st.objects {
		unit = 1
	}
	hi = max(hi, unit)
	lo = max(1, min(max(lo, hi>>20), hi>>10))
	// Below the largest object an LRU cache does not admit everything the stack distances count.
	lo = max(lo, bucketLE(bucketOf(uint64(st.maxSize))))
	hi = max(hi, lo)
	sizes := make([]uint64, 0, DefaultMRCPoints)
	step := math.Log(float64(hi)/float64(lo)) / float64(DefaultMRCPoints-1)
	for i := range DefaultMRCPoints {
		v := uint64(math.Round(float64(lo) * math.Exp(step*float64(i))))
		v = bucketLE(bucketOf(min(max(v, lo), hi)))
		if len(sizes) == 0 || v > sizes[len(sizes)-1] {
			sizes = append(sizes, v)
		}
	}
	return sizes
}

// shardsErrorBound is the stated bound on the MRC's mean absolute error when n keys are sampled. SHARDS error
// shrinks roughly as 1/√(sampled keys) (Waldspurger et al. report MAE ≈ 0.006 at 8K sampled keys); the tests
// check the bound on synthetic Zipf and uniform traces.
func shardsErrorBound(n int) float64 {
	return min(0.1, 1/math.Sqrt(float64(max(n, 1))))
}
