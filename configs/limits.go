// The maximum of every size and count in the recording, replay and pool configs, in one place. Each bounds what
// membench allocates for the key (or what a key multiplies), so an absurd value is refused by Validate, naming
// the key, instead of ending in a panic or "fatal error: out of memory". The proxy's own keys have their
// maxima in the table of Proxy.Validate; docs/OPERATIONS.md lists them all.
package configs

// Recording (proxy and tap).
const (
	// MaxQueueSize is the most events queue_size may let wait for the profile writer. The queue holds up to
	// twice that many events of 80 bytes (those waiting and a batch being written): 640 MiB at the maximum,
	// 10 MiB at the default 65536.
	MaxQueueSize = 1 << 22
	// MaxHostLabel is the longest host_label, in bytes (it is stored in every profile's header).
	MaxHostLabel = 255
)

// Pool mode ([pool] of a proxy config).
const (
	// MaxPoolServers is the most lines in pool.servers, and in pool.shadow.servers.
	MaxPoolServers = 4096
	// MaxFailureLimit is the largest pool.server_failure_limit.
	MaxFailureLimit = 1 << 20
	// MaxShadowBuffer is the largest pool.shadow.max_buffer, in bytes per shadow connection.
	MaxShadowBuffer = 1 << 30
)

// Replay.
const (
	// MaxReplayConnections is the largest connections: client connections, each with one TCP connection per
	// target and protocol.
	MaxReplayConnections = 100_000
	// MaxPipeline is the largest pipeline (requests in flight per TCP connection).
	MaxPipeline = 65536
	// MaxInFlight bounds connections × pipeline, the requests in flight at once (each holds a slot of the
	// connection's in-flight ring, sized at twice the pipeline): 4194304 slots take about 256 MiB per target.
	MaxInFlight = 1 << 22
	// MaxTargets is the most lines in targets, and in warmup_targets.
	MaxTargets = 1024
	// MaxOps is the largest ops (about 10^15 requests: 35 years at a million per second).
	MaxOps = uint64(1) << 50
	// MaxLoops is the largest loop count; "forever" has no limit.
	MaxLoops = 1_000_000
	// MaxRate is the largest rate, in requests per second.
	MaxRate = 1e9
	// MaxKeysScale is the largest keys_scale. A synthetic workload fitted to a profile keeps every key
	// instance of an epoch in memory (about 400 bytes each), so memory grows with the profile's keys times
	// keys_scale: 0.8 GB at 100 for a profile of 200000 events with 20000 keys.
	MaxKeysScale = 100
	// MaxShards is the most nodes a run may be split over: n of shard = "i/n", and shards.
	MaxShards = 10_000
)
