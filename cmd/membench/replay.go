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
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/metricsrv"
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
  --rate OPS               open loop at OPS requests per second (all shards together)
  --arrivals KIND          open-loop arrivals: poisson (default) or uniform
  --duration D             stop after D (synthetic mode needs --duration or --ops)
  --ops N                  stop after the source's first N requests
  --seed S                 synthetic seed (same seed, same requests)
  --keys-scale F           multiply the number of distinct keys (synthetic)
  --warmup                 first store every key the source reads as existing before writing it
  --warmup-target LIST     send the warmup there instead (one per --target, same order)
  --timeout D              fail requests unanswered after D and reconnect (default 2s)
  --connect-timeout D      dial timeout (default 1s)
  --max-error-ratio R      exit 3 when errors/requests exceeds R (default 0.01)
  --shard I/N              replay this node's share of an N-node run (default 0/1)
  --metrics-listen ADDR    serve Prometheus /metrics
  --metrics-push URL       push metrics (VictoriaMetrics /api/v1/import/prometheus) every 10s and at the end
  --json                   print the report as JSON (schema in docs/WORKLOADS.md)
  -o FILE                  also write the JSON report to FILE

A progress line is printed on stderr once a second when stderr is a terminal.

Examples:
  membench replay --profile prod.mbp --target 127.0.0.1:11211 --warmup
  membench replay --profile prod.mbp --target 127.0.0.1:11211 --speed max --connections 8 --pipeline 32
  membench replay --mode synthetic --profile prod.mbp --target 127.0.0.1:11211 --rate 50000 --duration 60s
  membench replay --mode synthetic --workload etc --target 10.0.0.1:11211,10.0.0.2:11211 --duration 30s --json
  membench replay --config configs/replay.toml --shard 1/4 -o node1.json
`

// replayArgs are the replay's settings that are not part of configs.Replay.
type replayArgs struct {
	json   bool
	output string
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
		rate       = fs.Float64("rate", 0, "")
		arrivals   = fs.String("arrivals", "", "")
		duration   = fs.Duration("duration", 0, "")
		ops        = fs.Uint64("ops", 0, "")
		seed       = fs.Uint64("seed", 0, "")
		keysScale  = fs.Float64("keys-scale", 0, "")
		warm       = fs.Bool("warmup", false, "")
		warmTarget = fs.String("warmup-target", "", "")
		timeout    = fs.Duration("timeout", 0, "")
		connectTO  = fs.Duration("connect-timeout", 0, "")
		maxErr     = fs.Float64("max-error-ratio", 0, "")
		shard      = fs.String("shard", "", "")
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
	apply(set, "rate", &cfg.Rate, *rate)
	apply(set, "duration", &cfg.Duration, configs.Duration(*duration))
	apply(set, "ops", &cfg.Ops, *ops)
	apply(set, "seed", &cfg.Seed, *seed)
	apply(set, "keys-scale", &cfg.KeysScale, *keysScale)
	apply(set, "warmup", &cfg.Warmup, *warm)
	apply(set, "timeout", &cfg.Timeout, configs.Duration(*timeout))
	apply(set, "connect-timeout", &cfg.ConnectTimeout, configs.Duration(*connectTO))
	apply(set, "max-error-ratio", &cfg.MaxErrorRatio, *maxErr)
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
	return cfg, replayArgs{json: *jsonOut, output: *output}, nil
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

// startReplayMetrics serves and pushes the replay's metrics as configured, and returns what stops them (after
// a last push).
func startReplayMetrics(cfg configs.Replay, opts *replay.Options, log *slog.Logger) (func(), error) {
	if cfg.MetricsListen == "" && cfg.MetricsPush == "" {
		return func() {}, nil
	}
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	opts.Metrics = set
	var stops []func()
	stops = append(stops, func() { metrics.UnregisterSet(set, true) })
	if cfg.MetricsListen != "" {
		srv, err := metricsrv.Start(cfg.MetricsListen)
		if err != nil {
			metrics.UnregisterSet(set, true)
			return nil, err
		}
		stops = append([]func(){func() { srv.Close() }}, stops...)
	}
	if cfg.MetricsPush != "" {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		popts := &metrics.PushOptions{
			ExtraLabels: fmt.Sprintf(`shard=%q`, cfg.Shard),
			WaitGroup:   &wg,
			LogErr:      func(format string, v ...any) { log.Warn("metrics push failed", "err", fmt.Sprintf(format, v...)) },
		}
		if err := metrics.InitPushWithOptions(ctx, cfg.MetricsPush, cfg.MetricsPushInterval.D(), false, popts); err != nil {
			cancel()
			metrics.UnregisterSet(set, true)
			return nil, fmt.Errorf("cannot push metrics (--metrics-push): %w", err)
		}
		stops = append([]func(){func() {
			cancel()
			wg.Wait()
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer pcancel()
			if err := metrics.PushMetrics(pctx, cfg.MetricsPush, false, popts); err != nil {
				log.Warn("final metrics push failed", "url", cfg.MetricsPush, "err", err)
			}
		}}, stops...)
	}
	return func() {
		for _, f := range stops {
			f()
		}
	}, nil
}

func writeReportFile(path string, r *replay.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write the report (-o): %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write the report %s: %w", path, err)
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
	fmt.Fprintf(w, "  requests   %d in %.2fs = %.0f ops/s (%d skipped)\n", r.Ops, r.DurationSeconds, r.OpsPerSec,
		r.Skipped)
	if r.MultiKeyGets > 0 {
		fmt.Fprintf(w, "  multi-get  %d of those were keys of %d multi-key gets\n", r.MultiKeyGetKeys, r.MultiKeyGets)
	}
	fmt.Fprintf(w, "  errors     %d (%.2f%%)%s\n", r.Errors, 100*r.ErrorRatio, kinds(r.ErrorsByKind))
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

func latencyLine(l replay.Latency) string {
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
