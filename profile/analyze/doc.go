// Package analyze turns a stream of profile events into the figures behind `membench inspect` and
// `membench compare`: counts and mixes, size and TTL distributions, key popularity and its fitted Zipf exponent,
// request rate and hit ratio over time, latency percentiles, and an LRU miss-ratio curve (MRC) by bytes.
//
// It is separate from package profile because it is pure computation over Events: no files, no format, no
// anonymization. Profiles can hold hundreds of millions of events and tens of millions of keys, so everything here
// streams in bounded memory:
//
//   - An Analyzer sees each Event once (Add) and keeps only fixed-size arrays, log-bucketed histograms, a rate
//     series that merges neighbouring buckets past a bound, and one per-key table capped at Options.MaxKeys.
//   - Up to MaxKeys unique keys every figure is exact, including the MRC (stack distances over a Fenwick tree).
//     Past it the 1024 heaviest keys stay exact and the others become a SHARDS spatial sample (keys whose hash
//     falls under a threshold that halves each time the table fills); unique keys come from a HyperLogLog and
//     keys that become heavy later from a Space-Saving sketch. The Summary says which figures are estimates.
//   - Summary derives everything else at the end (curve points, percentiles, the Zipf fit), so the cache sizes of
//     the MRC can be chosen once the working set is known. Cache sizes the caller names instead are each simulated
//     as an LRU cache during the pass (exact where stack distances are not: objects larger than a cache are not
//     admitted), at O(1) amortised per access and size.
//   - Reads without a recorded outcome (imported traces) are simulated as libCacheSim does, a miss filling the
//     cache (the fill_on_miss model); profiles with outcomes follow them (recorded).
//
// Compare sets two Summaries side by side with distances (L1 over the command mix, Kolmogorov–Smirnov over size
// distributions, mean absolute error between miss-ratio curves), computed from the Summaries alone so that saved
// JSON summaries can be compared without the profiles.
package analyze
