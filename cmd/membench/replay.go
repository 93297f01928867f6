// The replay subcommand: flags and config file → configs.Replay → replay.Run, plus signals (SIGINT/SIGTERM stop
// early and still report), metrics (listen, push), the progress line on a terminal, the final report and the exit
// code when errors exceed --max-error-ratio.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/metricsrv"
	"github.com/membench/membench/internal/safefile"
	"github.com/membench/membench/replay"
)

const replayUsage = `membench replay — turn a profile back into memcached traffic.

Usage: membench replay (--profile FILE | --workload NAME) --target HOST:PORT[,…] [flags]

Trace mode (default) sends the recorded sequence: the same commands, protocols, TTLs and noreply/quiet flags,
one connection per recorded connection, keys synthesized from the recorded key hashes at their recorded sizes
and values at their recorded sizes. Synthetic mode drives a seeded generator fitted to the profile (popularity,
temporal locality, sizes, command mix) or a built-in preset (etc, uniform; see docs/WORKLOADS.md).

Flags (override the config file):
  --config FILE            TOML config (see configs/replay.toml)
  --profile FILE           the profile to replay or to fit
  --workload NAME          a preset instead of a profile: etc, uniform (synthetic mode)
  --mode trace|synthetic   (default trace)
  --target LIST            servers, host:port[,host:port…]; keys are routed by ketama (--hash)
  --hash NAME              ketama key hash (default fnv1a_64), as twemproxy's hash:
  --connections N          fold onto N client connections (default: one per recorded connection; 4 synthetic)
  --pipeline N             requests in flight per connection in closed loop (default 16)
  --engine E               closed-loop client: eventloop (epoll loops, one per CPU) or goroutine (default
                           auto: eventloop on Linux, else goroutine)
  --cpu-affinity           bind each event loop to one CPU, as memcaslap binds its threads
  --sched-batch=false      event loops under normal scheduling, not SCHED_BATCH (default true)
  --protocol P             send everything as text, meta or binary (default: as recorded)
  --speed X|max            trace timing: X times the recorded speed, or max for closed loop (default 1)
  --loop N|forever         replay the trace N times (default 1)
  --rate OPS               open loop at OPS requests per second (all shards together): 50000, 50k, 1.5M
  --arrivals KIND          open-loop arrivals: poisson (default) or uniform
  --duration D             stop after D (synthetic mode needs --duration or --ops): 90s, 1m30s, or bare
                           seconds (90); --timeout and --connect-timeout take the same forms
  --ops N                  stop after the source's first N requests: 100000, 100k, 2M
  --seed S                 synthetic seed (same seed, same requests)
  --keys-scale F           multiply the number of distinct keys (synthetic)
  --warmup                 first store every key the source reads as existing before writing it
  --warmup-target LIST     send the warmup there instead (one per --target, same order)
  --timeout D              fail requests unanswered after D and reconnect (default 2s)
  --connect-timeout D      dial timeout (default 1s)
  --max-error-ratio R      exit 3 when errors/requests exceeds R (default 0.01)
  --shard I/N              replay this node's share of an N-node run (default 0/1)
  --shard-index-env NAME   read this node's I from the environment variable NAME (a Kubernetes Indexed Job's
                           JOB_COMPLETION_INDEX), with --shards N; instead of --shard
  --shards N               the N of --shard-index-env
  --start-at TIME          warm up, then wait until TIME (RFC 3339, 2026-01-02T15:04:05Z, or unix seconds) and
                           start measuring at that instant, so that every node measures the same window; a node
                           that gets there late starts at once and says how late
  --metrics-listen ADDR    serve Prometheus /metrics
  --metrics-push URL       push metrics every 10s and at the end to a VictoriaMetrics-compatible import URL
                           (http://vm:8428/api/v1/import/prometheus; not a Pushgateway); a 4xx answer is an error
  --json                   print the report as JSON (schema in docs/WORKLOADS.md), with a per-second series
  -o FILE                  also write the JSON report to FILE
  --hdr-out PREFIX         write each command's latency distribution, and all commands', in HdrHistogram's
                           percentile format (ms): PREFIX-get.hgrm, PREFIX-all.hgrm, …

A progress line is printed on stderr once a second when stderr is a terminal.

Examples:
  membench replay --profile prod.mbp --target 127.0.0.1:11211 --warmup
  membench replay --profile prod.mbp --target 127.0.0.1:11211 --speed max --connections 8 --pipeline 32
  membench replay --mode synthetic --profile prod.mbp --target 127.0.0.1:11211 --rate 50000 --duration 60s
  membench replay --mode synthetic --workload etc --target 10.0.0.1:11211,10.0.0.2:11211 --duration 30s --json
  membench replay --config configs/replay.toml --shard 1/4 -o node1.json
  membench replay --config replay.toml --shard-index-env JOB_COMPLETION_INDEX --shards 4 \
      --start-at 2026-01-02T15:04:05Z -o /reports/node-$JOB_COMPLETION_INDEX.json --hdr-out /reports/node
  MEMBENCH_TARGET=10.0.0.1:11211 MEMBENCH_SHARD=1/4 MEMBENCH_START_AT=1767366245 membench replay --workload etc \
      --rate 200k --duration 600
`

// replayArgs are the replay's settings that are not part of configs.Replay.
type replayArgs struct {
	json   bool
	output string
	hdrOut string // --hdr-out PREFIX
}

func replayConfig(args []string, stdout io.Writer) (configs.Replay, replayArgs, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var (
		configFile = fs.String("config", "", "")
		prof       = fs.String("profile", "", "")
		work       = fs.String("workload", "", "")
		mode       = fs.String("mode", "", "")
		target     = fs.String("target", "", "")
		hash       = fs.String("hash", "", "")
		hashTag    = fs.String("hash-tag", "", "")
		conns      = fs.Int("connections", 0, "")
		pipeline   = fs.Int("pipeline", 0, "")
		engine     = fs.String("engine", "", "")
		affinity   = fs.Bool("cpu-affinity", false, "")
		batch      = fs.Bool("sched-batch", true, "")
		protocol   = fs.String("protocol", "", "")
		speed      = fs.String("speed", "", "")
		loop       = fs.String("loop", "", "")
		rate       = scaledFlag(fs, "rate", false)
		arrivals   = fs.String("arrivals", "", "")
		duration   = durationFlag(fs, "duration")
		ops        = scaledFlag(fs, "ops", true)
		seed       = fs.Uint64("seed", 0, "")
		keysScale  = fs.Float64("keys-scale", 0, "")
		warm       = fs.Bool("warmup", false, "")
		warmTarget = fs.String("warmup-target", "", "")
		timeout    = durationFlag(fs, "timeout")
		connectTO  = durationFlag(fs, "connect-timeout")
		maxErr     = fs.Float64("max-error-ratio", 0, "")
		shard      = fs.String("shard", "", "")
		shardEnv   = fs.String("shard-index-env", "", "")
		shards     = fs.Int("shards", 0, "")
		startAt    = fs.String("start-at", "", "")
		hdrOut     = fs.String("hdr-out", "", "")
		metricsL   = fs.String("metrics-listen", "", "")
		metricsP   = fs.String("metrics-push", "", "")
		jsonOut    = fs.Bool("json", false, "")
		output     = fs.String("o", "", "")
	)
	pos, err := parseArgs(fs, replayUsage, args, stdout)
	if err != nil {
		return configs.Replay{}, replayArgs{}, err
	}
	if len(pos) > 0 {
		return configs.Replay{}, replayArgs{}, fmt.Errorf("unexpected argument %q (the profile goes after --profile): %w",
			pos[0], errUsage)
	}
	cfg, err := configs.LoadReplay(*configFile)
	if err != nil {
		return cfg, replayArgs{}, err
	}
	set := flagsSet(fs)
	apply(set, "profile", &cfg.Profile, *prof)
	apply(set, "workload", &cfg.Workload, *work)
	apply(set, "mode", &cfg.Mode, *mode)
	if set["target"] {
		cfg.Targets = splitList(*target)
	}
	apply(set, "hash", &cfg.Hash, *hash)
	apply(set, "hash-tag", &cfg.HashTag, *hashTag)
	apply(set, "protocol", &cfg.Protocol, *protocol)
	apply(set, "engine", &cfg.Engine, *engine)
	apply(set, "cpu-affinity", &cfg.CPUAffinity, *affinity)
	apply(set, "sched-batch", &cfg.SchedBatch, *batch)
	apply(set, "speed", &cfg.Speed, *speed)
	apply(set, "loop", &cfg.Loop, *loop)
	apply(set, "arrivals", &cfg.Arrivals, *arrivals)
	apply(set, "shard", &cfg.Shard, *shard)
	apply(set, "metrics-listen", &cfg.MetricsListen, *metricsL)
	apply(set, "metrics-push", &cfg.MetricsPush, *metricsP)
	if set["warmup-target"] {
		cfg.WarmupTargets = splitList(*warmTarget)
		cfg.Warmup = true
	}
	apply(set, "connections", &cfg.Connections, *conns)
	apply(set, "pipeline", &cfg.Pipeline, *pipeline)
	apply(set, "rate", &cfg.Rate, float64(*rate))
	apply(set, "duration", &cfg.Duration, configs.Duration(*duration))
	apply(set, "ops", &cfg.Ops, uint64(*ops))
	apply(set, "seed", &cfg.Seed, *seed)
	apply(set, "keys-scale", &cfg.KeysScale, *keysScale)
	apply(set, "warmup", &cfg.Warmup, *warm)
	apply(set, "timeout", &cfg.Timeout, configs.Duration(*timeout))
	apply(set, "connect-timeout", &cfg.ConnectTimeout, configs.Duration(*connectTO))
	apply(set, "max-error-ratio", &cfg.MaxErrorRatio, *maxErr)
	apply(set, "shard-index-env", &cfg.ShardIndexEnv, *shardEnv)
	apply(set, "shards", &cfg.Shards, *shards)
	apply(set, "start-at", &cfg.StartAt, *startAt)
	if cfg.ShardIndexEnv != "" && set["shard"] {
		return cfg, replayArgs{}, fmt.Errorf("give --shard or --shard-index-env, not both: %w", errUsage)
	}
	if err := cfg.ResolveShard(os.LookupEnv); err != nil {
		return cfg, replayArgs{}, err
	}
	// A preset can only be synthetic: say so once instead of making every user type --mode synthetic.
	if cfg.Workload != "" && !set["mode"] && cfg.Mode == configs.ModeTrace {
		cfg.Mode = configs.ModeSynthetic
	}
	if err := cfg.Validate(); err != nil {
		if *configFile != "" {
			return cfg, replayArgs{}, fmt.Errorf("%s: %w", *configFile, err)
		}
		return cfg, replayArgs{}, err
	}
	return cfg, replayArgs{json: *jsonOut, output: *output, hdrOut: *hdrOut}, nil
}

// scaledValue is a number flag that takes a k (thousand) or M (million) suffix: --rate 5k, --ops 2M. A count
// (--ops) must come out whole.
type scaledValue struct {
	v     *float64
	count bool
}

func scaledFlag(fs *flag.FlagSet, name string, count bool) *float64 {
	v := new(float64)
	fs.Var(&scaledValue{v: v, count: count}, name, "")
	return v
}

func (s *scaledValue) String() string {
	if s.v == nil {
		return "0"
	}
	return strconv.FormatFloat(*s.v, 'g', -1, 64)
}

func (s *scaledValue) Set(text string) error {
	want := "want requests per second: a number, optionally with k or M (5000, 5k, 1.5M)"
	if s.count {
		want = "want a whole number of requests, optionally with k or M (100000, 100k, 2M)"
	}
	t, mul := strings.TrimSpace(text), 1.0
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		t, mul = t[:len(t)-1], 1e3
	case strings.HasSuffix(t, "M"):
		t, mul = t[:len(t)-1], 1e6
	}
	f, err := strconv.ParseFloat(t, 64)
	f *= mul
	if err != nil || !(f >= 0) || math.IsInf(f, 0) || s.count && (f != math.Trunc(f) || f >= 1<<63) {
		return errors.New(want)
	}
	*s.v = f
	return nil
}

// durationValue is a duration flag that also takes bare seconds: --duration 90 is 90s.
type durationValue struct{ d *time.Duration }

func durationFlag(fs *flag.FlagSet, name string) *time.Duration {
	d := new(time.Duration)
	fs.Var(durationValue{d}, name, "")
	return d
}

func (v durationValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

func (v durationValue) Set(text string) error {
	t := strings.TrimSpace(text)
	d, err := time.ParseDuration(t)
	if err != nil {
		f, ferr := strconv.ParseFloat(t, 64)
		if ferr != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > math.MaxInt64/1e9 {
			return errors.New("want a duration such as 30s, 1m30s or 250ms, or bare seconds (30)")
		}
		d = time.Duration(f * 1e9)
	}
	if d < 0 {
		return errors.New("want a duration of 0 or more, such as 30s or bare seconds (30)")
	}
	*v.d = d
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runReplay(args []string, stdout, stderr io.Writer) error {
	cfg, ra, err := replayConfig(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := replay.NewSource(cfg, 0)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	opts := replay.Options{Open: src.Open, SourceName: src.Name, WarmKeys: src.WarmKeys, Logger: log}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		opts.Progress = stderr
	}
	stopMetrics, err := startReplayMetrics(cfg, &opts, log)
	if err != nil {
		return err
	}
	if at, _ := cfg.StartTime(); !at.IsZero() {
		// Said at once, so that a node's log shows a mistaken time (a wrong zone, a day off) before it waits.
		when := "in " + time.Until(at).Round(time.Millisecond).String()
		if cfg.Warmup {
			when += ", after the warmup"
		}
		if d := time.Until(at); d <= 0 {
			when = (-d).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(stderr, "membench replay: measuring starts at %s (--start-at), %s\n",
			at.UTC().Format(time.RFC3339Nano), when)
	}
	r, runErr := replay.Run(ctx, cfg, opts)
	stopMetrics()
	if r == nil {
		return runErr
	}
	if ra.output != "" {
		if err := writeReportFile(ra.output, r); err != nil {
			return err
		}
	}
	if ra.hdrOut != "" {
		if err := writePercentiles(ra.hdrOut, r, stderr); err != nil {
			return err
		}
	}
	if ra.json {
		if err := r.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		printReport(stdout, r)
	}
	if runErr != nil {
		return runErr
	}
	if r.Ops == 0 {
		return &exitError{code: 3, err: errors.New("no request was sent: check --profile, --ops and --shard")}
	}
	if r.ErrorRatio > cfg.MaxErrorRatio {
		return &exitError{code: 3, err: fmt.Errorf("%d errors in %d requests (%.2f%%) exceed --max-error-ratio %g",
			r.Errors, r.Ops, 100*r.ErrorRatio, cfg.MaxErrorRatio)}
	}
	return nil
}

// startReplayMetrics serves and pushes the replay's own metrics (replay.Metrics; no other mode's) as configured,
// and returns what stops them (after a last push). The push target must take the Prometheus text format the way
// VictoriaMetrics' /api/v1/import/prometheus does; a first push is made before the run, and a target that answers
// it with a 4xx (a Pushgateway's 405, a wrong path's 404) is an error naming --metrics-push.
func startReplayMetrics(cfg configs.Replay, opts *replay.Options, log *slog.Logger) (func(), error) {
	if cfg.MetricsListen == "" && cfg.MetricsPush == "" {
		return func() {}, nil
	}
	m := replay.NewMetrics()
	opts.Metrics = m
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	if cfg.MetricsListen != "" {
		srv, err := metricsrv.Start(cfg.MetricsListen, m.Set)
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { srv.Close() })
	}
	if cfg.MetricsPush != "" {
		popts := &metrics.PushOptions{
			ExtraLabels: fmt.Sprintf(`shard=%q`, cfg.Shard),
			LogErr:      func(format string, v ...any) { log.Warn("metrics push failed", "err", fmt.Sprintf(format, v...)) },
		}
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := metrics.PushMetricsExt(pctx, cfg.MetricsPush, m.Set.WritePrometheus, popts)
		pcancel()
		if err != nil {
			if code := pushRefused(err); code != 0 {
				stop()
				return nil, fmt.Errorf("the metrics push target %s refused a push with HTTP %d: --metrics-push must be "+
					"a VictoriaMetrics-compatible import URL that takes the Prometheus text format, such as "+
					"http://vm:8428/api/v1/import/prometheus (a Prometheus Pushgateway is not one)",
					redactURL(cfg.MetricsPush), code)
			}
			log.Warn("metrics push failed; retrying every metrics_push_interval", "url", redactURL(cfg.MetricsPush),
				"err", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		popts.WaitGroup = &wg
		if err := metrics.InitPushExtWithOptions(ctx, cfg.MetricsPush, cfg.MetricsPushInterval.D(), m.Set.WritePrometheus,
			popts); err != nil {
			cancel()
			stop()
			return nil, fmt.Errorf("cannot push metrics (--metrics-push): %w", err)
		}
		stops = append([]func(){func() {
			cancel()
			wg.Wait()
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer pcancel()
			if err := metrics.PushMetricsExt(pctx, cfg.MetricsPush, m.Set.WritePrometheus, popts); err != nil {
				log.Warn("final metrics push failed", "url", redactURL(cfg.MetricsPush), "err", err)
			}
		}}, stops...)
	}
	return stop, nil
}

// pushStatus finds the HTTP status in VictoriaMetrics/metrics' push error ("unexpected status code in response
// from URL: 405; expecting 2xx; …").
var pushStatus = regexp.MustCompile(`: (\d{3}); expecting 2xx`)

// pushRefused returns the 4xx status a push target answered with, or 0 for any other error (the target down,
// a 5xx): those may pass, a 4xx does not.
func pushRefused(err error) int {
	m := pushStatus.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	code, _ := strconv.Atoi(m[1])
	if code < 400 || code > 499 {
		return 0
	}
	return code
}

// redactURL returns u with any password replaced, for messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

// writeReportFile writes r as JSON to path (-o) through a temporary file renamed into place: an existing file
// is replaced (at most 0644, whatever its mode was), a symlink at path is replaced and never followed.
func writeReportFile(path string, r *replay.Report) error {
	err := safefile.Write(path, safefile.Public, true, func(w io.Writer) error { return r.WriteJSON(w) })
	if err != nil {
		return fmt.Errorf("cannot write the report (-o %s): %w", path, err)
	}
	return nil
}

// writePercentiles writes each latency distribution of r to PREFIX-NAME.hgrm (--hdr-out), replacing what is
// there. With no latency measured there is nothing to write, and it says so.
func writePercentiles(prefix string, r *replay.Report, stderr io.Writer) error {
	names := r.PercentileNames()
	if len(names) == 0 {
		fmt.Fprintf(stderr, "membench: no latency was measured: no .hgrm file written (--hdr-out %s)\n", prefix)
	}
	for _, name := range names {
		path := prefix + "-" + name + ".hgrm"
		err := safefile.Write(path, safefile.Public, true, func(w io.Writer) error { return r.WritePercentiles(w, name) })
		if err != nil {
			return fmt.Errorf("cannot write the latency distribution (--hdr-out %s): %w", prefix, err)
		}
	}
	return nil
}

// printReport prints the report for people.
func printReport(w io.Writer, r *replay.Report) {
	loop := "closed loop"
	if r.OpenLoop {
		loop = "open loop"
		if r.TargetRate > 0 {
			loop = fmt.Sprintf("open loop at %.0f ops/s", r.TargetRate)
		}
	}
	fmt.Fprintf(w, "membench replay: %s %s → %s (%s, shard %s)\n", r.Mode, r.Source, strings.Join(r.Targets, ","),
		loop, r.Shard)
	if r.Warmup != nil {
		fmt.Fprintf(w, "  warmup     %d keys in %.1fs, %d errors\n", r.Warmup.Keys, r.Warmup.Seconds, r.Warmup.Errors)
	}
	if r.StartLateSeconds > 0 && len(r.NodeWindows) <= 1 { // a merge's nodes each say it (printNodes)
		fmt.Fprintf(w, "  start      %.2fs late for --start-at: measured from when it got there\n", r.StartLateSeconds)
	}
	fmt.Fprintf(w, "  requests   %d in %.2fs = %.0f ops/s (%d skipped)\n", r.Ops, r.DurationSeconds, r.OpsPerSec,
		r.Skipped)
	printNodes(w, r)
	if r.MultiKeyGets > 0 {
		fmt.Fprintf(w, "  multi-get  %d of those were keys of %d multi-key gets\n", r.MultiKeyGetKeys, r.MultiKeyGets)
	}
	fmt.Fprintf(w, "  errors     %d (%.2f%%)%s\n", r.Errors, 100*r.ErrorRatio, kinds(r.ErrorsByKind))
	targets := make([]string, 0, len(r.DialErrors))
	for t := range r.DialErrors {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		d := r.DialErrors[t]
		fmt.Fprintf(w, "  dial       %s: %d failed, the first: %s\n", t, d.Failed, d.First)
	}
	fmt.Fprintf(w, "  hit ratio  %.2f%% (recorded %.2f%%)\n", 100*r.HitRatio, 100*r.RecordedHitRatio)
	fmt.Fprintf(w, "  latency    %s\n", latencyLine(r.LatencyUs))
	names := make([]string, 0, len(r.Commands))
	for n := range r.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := r.Commands[n]
		fmt.Fprintf(w, "  %-10s %d ops, %d errors", n, c.Ops, c.Errors)
		if c.Hits+c.Misses > 0 {
			fmt.Fprintf(w, ", hit %.2f%%", 100*c.HitRatio)
		}
		if c.LatencyUs.Count > 0 {
			fmt.Fprintf(w, ", %s", latencyLine(c.LatencyUs))
		}
		fmt.Fprintln(w)
	}
}

func kinds(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return ":" + b.String()
}

// printNodes prints each node's window of a merged report, and what the merge warns of.
func printNodes(w io.Writer, r *replay.Report) {
	if len(r.NodeWindows) > 1 {
		fmt.Fprintf(w, "  nodes      %d, the last started %.3fs after the first\n", len(r.NodeWindows), r.StartSkewSeconds)
		for _, n := range r.NodeWindows {
			late := ""
			if n.StartLateSeconds > 0 {
				late = fmt.Sprintf(", %.2fs late for --start-at", n.StartLateSeconds)
			}
			fmt.Fprintf(w, "    %-8s start +%.3fs, %d in %.2fs = %.0f ops/s%s\n", n.Shard, n.StartSkewSeconds, n.Ops,
				n.DurationSeconds, n.OpsPerSec, late)
		}
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning    %s\n", warn)
	}
}

// latencyLine prints l, or n/a when nothing was measured (every request failed, or none expected an answer).
func latencyLine(l replay.Latency) string {
	if l.Count == 0 {
		return "n/a (no response was timed)"
	}
	ms := func(us float64) string { return fmt.Sprintf("%.3fms", us/1000) }
	return fmt.Sprintf("p50 %s p90 %s p99 %s p99.9 %s max %s", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
}

func init() {
	register(&command{
		name:    "replay",
		summary: "replay a profile (trace or synthetic) or a preset against memcached",
		usage:   replayUsage,
		run:     runReplay,
	})
}
