// The replay's configuration: `membench replay` (a profile or preset turned back into traffic) and the cluster
// it targets. `membench synth` uses the source, seed and scale fields of the same struct.
package configs

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/ring"
)

// Replay modes.
const (
	ModeTrace     = "trace"
	ModeSynthetic = "synthetic"
)

// Arrival processes of an open-loop replay.
const (
	ArrivalsPoisson  = "poisson"
	ArrivalsUniform  = "uniform"
	ArrivalsRecorded = "recorded"
)

// Client engines of a closed-loop replay.
const (
	EngineAuto      = "auto"
	EngineEventLoop = "eventloop"
	EngineGoroutine = "goroutine"
)

// Replay configures `membench replay`. TOML keys are the snake_case names in the tags.
type Replay struct {
	// Profile is the recorded profile to replay or to fit the synthetic model to.
	Profile string `toml:"profile"`
	// Workload is a built-in preset (etc, uniform) used instead of a profile; synthetic mode only.
	Workload string `toml:"workload"`
	// Mode is "trace" (the recorded sequence) or "synthetic" (a seeded generator fitted to the source).
	Mode string `toml:"mode"`

	// Targets are the memcached servers, "host:port" (weight 1) or twemproxy lines "host:port:weight [name]".
	// Keys are routed over a ketama ring (package ring) with Hash and HashTag. At most MaxTargets (1024) lines.
	Targets []string `toml:"targets"`
	Hash    string   `toml:"hash"`
	HashTag string   `toml:"hash_tag"`

	// Connections folds the replay onto this many client connections (each with one TCP connection per target
	// and protocol). 0 means one per recorded connection in trace mode and 4 in synthetic mode. At most
	// MaxReplayConnections (100000), and connections × pipeline at most MaxInFlight (4194304).
	Connections int `toml:"connections"`
	// Pipeline is the most requests in flight per TCP connection in closed loop, 1 to MaxPipeline (65536).
	Pipeline int `toml:"pipeline"`
	// Engine is how closed-loop connections are served: "eventloop" (event loops, one OS thread per CPU, each
	// waiting in epoll_wait for its connections; Linux), "goroutine" (one goroutine per connection), or "auto"
	// (event loops on Linux, goroutines elsewhere; see docs/WORKLOADS.md). Open-loop runs always use goroutines,
	// which sleep until each request's intended time.
	Engine string `toml:"engine"`
	// CPUAffinity binds each event loop's thread to one CPU, as memcaslap binds its threads. Off by default:
	// on the benchmark machine it was ahead in some runs and behind in others (docs/BENCHMARKS.md), and a bound
	// loop cannot move away from a CPU that other work needs.
	CPUAffinity bool `toml:"cpu_affinity"`
	// SchedBatch runs the event loops' threads under SCHED_BATCH (Linux), so that a loop woken by a response does
	// not preempt the thread it wakes on, which on a machine shared with the server is often the server's. On by
	// default: on the benchmark machine it cut CPU per request by about a tenth at depth 1 (docs/BENCHMARKS.md).
	SchedBatch bool `toml:"sched_batch"`
	// Protocol overrides the recorded protocol: "", "text", "meta" or "binary". Presets default to text.
	Protocol string `toml:"protocol"`

	// Speed scales recorded inter-arrival times in trace mode ("2" replays twice as fast); "max" sends as fast
	// as the pipeline allows (closed loop).
	Speed string `toml:"speed"`
	// Loop replays a trace this many times (at most MaxLoops, 1000000), or "forever".
	Loop string `toml:"loop"`
	// Rate, when > 0, makes the replay open loop at this many requests per second (all shards together), with
	// Arrivals "poisson" (default) or "uniform"; latency counts from each request's intended send time. At most
	// MaxRate (1e9).
	Rate     float64 `toml:"rate"`
	Arrivals string  `toml:"arrivals"`
	// Duration stops the replay after this long (0: until the source ends, which a synthetic source never
	// does without Ops).
	Duration Duration `toml:"duration"`
	// Ops stops the replay after this many requests (0: no limit; at most MaxOps, 2^50).
	Ops uint64 `toml:"ops"`

	// Seed fixes the synthetic sequence.
	Seed uint64 `toml:"seed"`
	// KeysScale multiplies the number of distinct keys of a synthetic workload; at most MaxKeysScale (100).
	KeysScale float64 `toml:"keys_scale"`

	// Warmup stores, before measuring, every key the source reads as existing before any write to it, at its
	// recorded value size. WarmupTargets, when set, receive those stores instead of Targets (for example the
	// memcached behind a recording proxy, so the warmup is not recorded).
	Warmup        bool     `toml:"warmup"`
	WarmupTargets []string `toml:"warmup_targets"`

	// Timeout fails requests whose response has not arrived after this long; the connection is then reopened.
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds each dial.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// MaxErrorRatio makes membench exit non-zero when errors/requests exceeds it.
	MaxErrorRatio float64 `toml:"max_error_ratio"`

	// Shard is "i/n": this node replays its share (connections in trace mode, keys in synthetic mode) of an
	// n-node run (n at most MaxShards, 10000). Every node gets the same config but its own i.
	Shard string `toml:"shard"`
	// ShardIndexEnv, when set, names the environment variable that holds this node's i (a Kubernetes Indexed
	// Job sets JOB_COMPLETION_INDEX) and Shards is n: ResolveShard turns the two into Shard, so that every node
	// of a run is started with the same arguments. Shards is at most MaxShards.
	ShardIndexEnv string `toml:"shard_index_env"`
	Shards        int    `toml:"shards"`

	// StartAt, when set, is the instant at which every node of a run starts measuring: RFC 3339
	// ("2026-01-02T15:04:05Z") or unix seconds ("1767366245", fractions allowed). A node warms up first, waits
	// until then and starts its measured window at that instant; a node that gets there late starts at once
	// and says how late.
	StartAt string `toml:"start_at"`

	// MetricsListen serves Prometheus /metrics; empty disables it.
	MetricsListen string `toml:"metrics_listen"`
	// MetricsPush pushes metrics to this URL (VictoriaMetrics import endpoint) every MetricsPushInterval.
	MetricsPush         string   `toml:"metrics_push"`
	MetricsPushInterval Duration `toml:"metrics_push_interval"`
}

// DefaultReplay returns the replay defaults.
func DefaultReplay() Replay {
	return Replay{
		Mode:                ModeTrace,
		Hash:                "fnv1a_64",
		Pipeline:            16,
		Engine:              EngineAuto,
		SchedBatch:          true,
		Speed:               "1",
		Loop:                "1",
		Arrivals:            ArrivalsPoisson,
		KeysScale:           1,
		Timeout:             Duration(2 * time.Second),
		ConnectTimeout:      Duration(time.Second),
		MaxErrorRatio:       0.01,
		Shard:               "0/1",
		MetricsPushInterval: Duration(10 * time.Second),
	}
}

// LoadReplay reads a replay config file over the defaults.
func LoadReplay(path string) (Replay, error) {
	c := DefaultReplay()
	if path == "" {
		return c, nil
	}
	err := Load(path, &c)
	return c, err
}

// Validate checks every field and names the key to fix.
func (c *Replay) Validate() error {
	switch c.Mode {
	case ModeTrace:
		if c.Profile == "" {
			return fmt.Errorf("profile is empty: trace mode replays a recorded profile (--profile FILE)")
		}
		if c.Workload != "" {
			return fmt.Errorf("workload = %q: presets have no recorded sequence; use mode = \"synthetic\" "+
				"(--mode synthetic)", c.Workload)
		}
	case ModeSynthetic:
		if (c.Profile == "") == (c.Workload == "") {
			return fmt.Errorf("give exactly one of profile and workload (--profile FILE or --workload NAME)")
		}
	default:
		return fmt.Errorf("mode = %q: must be %q or %q", c.Mode, ModeTrace, ModeSynthetic)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("targets is empty: give the memcached servers (--target host:port[,host:port…])")
	}
	if len(c.Targets) > MaxTargets {
		return fmt.Errorf("targets has %d servers, at most %d", len(c.Targets), MaxTargets)
	}
	if len(c.WarmupTargets) > MaxTargets {
		return fmt.Errorf("warmup_targets has %d servers, at most %d", len(c.WarmupTargets), MaxTargets)
	}
	if _, err := c.RingServers(); err != nil {
		return err
	}
	if _, err := ring.HashByName(c.Hash); err != nil {
		return fmt.Errorf("hash = %q: %v", c.Hash, err)
	}
	for i, t := range c.WarmupTargets {
		if err := checkHostPort(fmt.Sprintf("warmup_targets[%d]", i), t); err != nil {
			return err
		}
	}
	if c.Connections < 0 || c.Connections > MaxReplayConnections {
		return fmt.Errorf("connections = %d: must be 0 (default) to %d", c.Connections, MaxReplayConnections)
	}
	if c.Pipeline < 1 || c.Pipeline > MaxPipeline {
		return fmt.Errorf("pipeline = %d: must be 1 to %d", c.Pipeline, MaxPipeline)
	}
	if int64(c.Connections)*int64(c.Pipeline) > MaxInFlight {
		return fmt.Errorf("connections × pipeline = %d × %d: at most %d requests in flight; lower connections or "+
			"pipeline", c.Connections, c.Pipeline, MaxInFlight)
	}
	if c.Ops > MaxOps {
		return fmt.Errorf("ops = %d: at most %d (0: no limit)", c.Ops, MaxOps)
	}
	if _, err := c.ProtocolOverride(); err != nil {
		return err
	}
	if _, err := c.SpeedFactor(); err != nil {
		return err
	}
	if _, err := c.Loops(); err != nil {
		return err
	}
	if !(c.Rate >= 0 && c.Rate <= MaxRate) {
		return fmt.Errorf("rate = %v: must be 0 (closed loop) or a positive number of requests per second, at "+
			"most %g", c.Rate, float64(MaxRate))
	}
	switch c.Engine {
	case EngineAuto, EngineEventLoop, EngineGoroutine:
	default:
		return fmt.Errorf("engine = %q: must be %q, %q or %q", c.Engine, EngineAuto, EngineEventLoop, EngineGoroutine)
	}
	switch c.Arrivals {
	case ArrivalsPoisson, ArrivalsUniform:
	default:
		return fmt.Errorf("arrivals = %q: must be %q or %q", c.Arrivals, ArrivalsPoisson, ArrivalsUniform)
	}
	if c.Duration < 0 {
		return fmt.Errorf("duration = %s: must be 0 (no limit) or positive", time.Duration(c.Duration))
	}
	if c.Mode == ModeSynthetic && c.Duration == 0 && c.Ops == 0 {
		return fmt.Errorf("a synthetic workload never ends by itself: set duration or ops (--duration, --ops)")
	}
	if !(c.KeysScale > 0 && c.KeysScale <= MaxKeysScale) {
		return fmt.Errorf("keys_scale = %v: must be positive, at most %d", c.KeysScale, MaxKeysScale)
	}
	if c.Timeout <= 0 || c.ConnectTimeout <= 0 {
		return fmt.Errorf("timeout and connect_timeout must be positive (got %s, %s)", time.Duration(c.Timeout),
			time.Duration(c.ConnectTimeout))
	}
	if !(c.MaxErrorRatio >= 0 && c.MaxErrorRatio <= 1) {
		return fmt.Errorf("max_error_ratio = %v: must be in [0, 1]", c.MaxErrorRatio)
	}
	_, n, err := c.ShardIndex()
	if err != nil {
		return err
	}
	switch {
	case c.ShardIndexEnv == "" && c.Shards != 0:
		return fmt.Errorf("shards = %d is used only with shard_index_env (--shard-index-env NAME --shards N); "+
			"for a fixed index give shard = \"i/n\" (--shard)", c.Shards)
	case c.ShardIndexEnv != "" && (c.Shards < 1 || c.Shards > MaxShards):
		return fmt.Errorf("shards = %d: shard_index_env needs the number of nodes, 1 to %d (--shards N)", c.Shards,
			MaxShards)
	case c.ShardIndexEnv != "" && n != c.Shards:
		return fmt.Errorf("shard = %q but shards = %d: the shard was not read from %s (ResolveShard)", c.Shard,
			c.Shards, c.ShardIndexEnv)
	}
	if _, err := c.StartTime(); err != nil {
		return err
	}
	if c.MetricsListen != "" {
		if err := checkHostPort("metrics_listen", c.MetricsListen); err != nil {
			return err
		}
	}
	if c.MetricsPush != "" && !(strings.HasPrefix(c.MetricsPush, "http://") ||
		strings.HasPrefix(c.MetricsPush, "https://")) {
		return fmt.Errorf("metrics_push = %q: must be an http:// or https:// URL", c.MetricsPush)
	}
	if c.MetricsPush != "" && c.MetricsPushInterval <= 0 {
		return fmt.Errorf("metrics_push_interval = %s: must be positive", time.Duration(c.MetricsPushInterval))
	}
	return nil
}

// RingServers parses Targets: "host:port" gets weight 1, anything else is a twemproxy server line.
func (c *Replay) RingServers() ([]ring.Server, error) {
	out := make([]ring.Server, 0, len(c.Targets))
	for i, t := range c.Targets {
		t = strings.TrimSpace(t)
		if host, port, err := net.SplitHostPort(t); err == nil && host != "" && !strings.Contains(t, " ") {
			if p, perr := strconv.ParseUint(port, 10, 16); perr == nil && p > 0 {
				out = append(out, ring.Server{Addr: t, Weight: 1})
				continue
			}
			// One colon (or a bracketed IPv6 host): host:port with a bad port, not a host:port:weight line.
			return nil, fmt.Errorf("targets[%d] = %q: port %q is not a number from 1 to 65535; want host:port, "+
				"for example %s (--target)", i, t, port, net.JoinHostPort(host, "11211"))
		}
		if t != "" && !strings.ContainsAny(t, ": ") && !strings.HasPrefix(t, "/") {
			return nil, fmt.Errorf("targets[%d] = %q: the port is missing; want host:port, for example %s:11211, "+
				"or a twemproxy line \"host:port:weight [name]\" (--target)", i, t, t)
		}
		s, err := ring.ParseServer(t)
		if err != nil {
			return nil, fmt.Errorf("targets[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// ProtocolOverride returns the protocol to send every request in, or ProtoUnknown to keep the recorded one.
func (c *Replay) ProtocolOverride() (mcproto.Protocol, error) {
	switch c.Protocol {
	case "":
		return mcproto.ProtoUnknown, nil
	case "text", "meta", "binary":
		p, _ := mcproto.ParseProtocol(c.Protocol)
		return p, nil
	}
	return mcproto.ProtoUnknown, fmt.Errorf("protocol = %q: must be text, meta, binary or empty (as recorded)",
		c.Protocol)
}

// SpeedFactor returns the speed as a factor, or 0 for "max".
func (c *Replay) SpeedFactor() (float64, error) {
	if c.Speed == "max" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(c.Speed, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("speed = %q: must be a positive factor (1 = recorded timing) or \"max\"", c.Speed)
	}
	return v, nil
}

// Loops returns the number of passes over a trace, or -1 for "forever".
func (c *Replay) Loops() (int, error) {
	if c.Loop == "forever" {
		return -1, nil
	}
	v, err := strconv.Atoi(c.Loop)
	if err != nil || v < 1 || v > MaxLoops {
		return 0, fmt.Errorf("loop = %q: must be a count from 1 to %d, or \"forever\"", c.Loop, MaxLoops)
	}
	return v, nil
}

// ShardIndex parses Shard "i/n".
func (c *Replay) ShardIndex() (i, n int, err error) {
	a, b, ok := strings.Cut(c.Shard, "/")
	if ok {
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil && n >= 1 && n <= MaxShards && i >= 0 && i < n {
			return i, n, nil
		}
	}
	return 0, 0, fmt.Errorf("shard = %q: must be i/n with 0 ≤ i < n ≤ %d, for example 0/3", c.Shard, MaxShards)
}

// ResolveShard sets Shard from ShardIndexEnv and Shards: the index is the value of the environment variable
// named ShardIndexEnv, which lookup (os.LookupEnv) returns. Without ShardIndexEnv it does nothing.
func (c *Replay) ResolveShard(lookup func(string) (string, bool)) error {
	if c.ShardIndexEnv == "" {
		return nil
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		return fmt.Errorf("shard_index_env = %q needs the number of nodes: shards = %d must be 1 to %d (--shards N)",
			c.ShardIndexEnv, c.Shards, MaxShards)
	}
	v, ok := lookup(c.ShardIndexEnv)
	if !ok {
		return fmt.Errorf("shard_index_env = %q: the environment variable %s is not set; a Kubernetes Indexed Job "+
			"sets JOB_COMPLETION_INDEX, elsewhere give the index with --shard i/%d (--shard-index-env)",
			c.ShardIndexEnv, c.ShardIndexEnv, c.Shards)
	}
	i, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || i < 0 || i >= c.Shards {
		return fmt.Errorf("shard_index_env = %q: %s = %q is not a shard index, a whole number in [0,%d) "+
			"(--shard-index-env, --shards %d)", c.ShardIndexEnv, c.ShardIndexEnv, v, c.Shards, c.Shards)
	}
	c.Shard = fmt.Sprintf("%d/%d", i, c.Shards)
	return nil
}

// StartTime parses StartAt: RFC 3339 (fractions of a second allowed) or unix seconds. It returns the zero time
// when StartAt is empty.
func (c *Replay) StartTime() (time.Time, error) {
	s := strings.TrimSpace(c.StartAt)
	if s == "" {
		return time.Time{}, nil
	}
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("start_at = %q: want an RFC 3339 time such as \"2026-01-02T15:04:05Z\" or "+
			"unix seconds such as \"1767366245\" (--start-at)", c.StartAt)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec < 0 || whole[0] == '+' || (hasFrac && (frac == "" || len(frac) > 9)) {
		return bad()
	}
	if sec >= 1e11 {
		return time.Time{}, fmt.Errorf("start_at = %q: unix seconds after the year 5000; milliseconds? "+
			"(--start-at takes seconds)", c.StartAt)
	}
	var ns int64
	if hasFrac {
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return bad()
		}
		ns = int64(n)
		for range 9 - len(frac) {
			ns *= 10
		}
	}
	return time.Unix(sec, ns), nil
}
