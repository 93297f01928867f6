package replay

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/replay/workload"
)

// presetOptions returns Options replaying the named preset with seed.
func presetOptions(t testing.TB, name string, seed uint64, scale float64) Options {
	t.Helper()
	p, err := workload.NewPreset(name, workload.PresetOptions{Seed: seed, KeysScale: scale})
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		SourceName: "workload:" + name,
		Open: func() (workload.Source, error) {
			return workload.NewPreset(name, workload.PresetOptions{Seed: seed, KeysScale: scale})
		},
		WarmKeys: func(yield func(uint64, uint16, uint32) bool) {
			for i := range p.Keys() {
				if !yield(p.Key(i)) {
					return
				}
			}
		},
	}
}

func syntheticConfig(targets ...string) configs.Replay {
	cfg := configs.DefaultReplay()
	cfg.Mode = configs.ModeSynthetic
	cfg.Workload = "etc"
	cfg.Targets = targets
	return cfg
}

// TestRun_ClosedLoopPreset replays the etc preset closed loop, after a warmup, on each engine at depths 1 and 16:
// every request is answered and, warmed, nearly every get hits.
func TestRun_ClosedLoopPreset(t *testing.T) {
	for _, engine := range engines(0) {
		for _, depth := range []int{1, 16} {
			t.Run(fmt.Sprintf("%s/%d", engine, depth), func(t *testing.T) { testClosedLoopPreset(t, engine, depth) })
		}
	}
}

func testClosedLoopPreset(t *testing.T, engine string, depth int) {
	mc := mctest.StartMemcached(t, "-m", "64")
	cfg := syntheticConfig(mc.Addr)
	cfg.Ops = 50_000
	cfg.Warmup = true
	cfg.KeysScale = 0.1
	cfg.Engine, cfg.Pipeline = engine, depth
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := presetOptions(t, "etc", 1, 0.1)
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	r, err := Run(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ops %d, %.0f ops/s, errors %d %v, hit ratio %.3f, p99 %.0f µs, warmup %+v", r.Ops, r.OpsPerSec,
		r.Errors, r.ErrorsByKind, r.HitRatio, r.LatencyUs.P99, r.Warmup)
	if r.Ops != 50_000 || r.Errors != 0 {
		t.Fatalf("ops %d errors %d %v", r.Ops, r.Errors, r.ErrorsByKind)
	}
	if r.HitRatio < 0.99 {
		t.Fatalf("hit ratio %.3f after warmup, want ≥ 0.99", r.HitRatio)
	}
	if r.Warmup == nil || r.Warmup.Keys != 10_000 || r.Warmup.Errors != 0 {
		t.Fatalf("warmup %+v", r.Warmup)
	}
	// The run's own CPU time: some, and no more than two CPUs per CPU the process may use could spend in the
	// measured time plus a second of slack (the clock's and the scheduler's granularity).
	if most := float64(2*runtime.NumCPU())*r.DurationSeconds + 1; r.ClientCPUSeconds <= 0 || r.ClientCPUSeconds > most {
		t.Fatalf("client CPU %.3f s over %.3f s measured", r.ClientCPUSeconds, r.DurationSeconds)
	}
}

// TestRun_OpenLoopAccuracy runs at a fixed rate below saturation, once undisturbed and once with memcached
// paused for 100 ms (SIGSTOP). The achieved rate must be the asked rate within 1%, and since latency counts from
// each request's intended send time, the pause must show up as queueing in the recorded percentiles instead of
// slowing the sender down. Only recorded figures are asserted, never how long the test took.
//
// On a machine busy with other work the OS alone can stall both processes for longer than the pause, which
// neither the rate nor the latencies of that run can tell apart from a bug; such a run (a stall of more than
// 20 ms in the undisturbed run, or a rate off by more than 1%) is repeated, up to three times.
func TestRun_OpenLoopAccuracy(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	rate := 4000.0
	if raceEnabled {
		rate = 2000
	}
	run := func(pause bool) *Report {
		t.Helper()
		cfg := syntheticConfig(mc.Addr)
		cfg.Rate = rate
		cfg.Arrivals = configs.ArrivalsUniform
		cfg.Duration = configs.Duration(4 * time.Second)
		cfg.KeysScale = 0.05
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped := make(chan error, 1)
		if pause {
			go func() {
				if err := waitTraffic(t, mc.Addr, 2000); err != nil {
					stopped <- err
					return
				}
				time.Sleep(time.Second)
				if err := mc.Signal(syscall.SIGSTOP); err != nil {
					stopped <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
				stopped <- mc.Signal(syscall.SIGCONT)
			}()
		}
		r, err := Run(ctx, cfg, presetOptions(t, "etc", 3, 0.05))
		if err != nil {
			t.Fatal(err)
		}
		if pause {
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("pause=%v: %d ops in %.3fs, achieved %.1f ops/s (asked %.0f), errors %d, latency µs %+v", pause,
			r.Ops, r.DurationSeconds, r.OpsPerSec, rate, r.Errors, r.LatencyUs)
		if r.Errors != 0 {
			t.Fatalf("errors: %v", r.ErrorsByKind)
		}
		return r
	}
	accurate := func(r *Report) bool { return math.Abs(r.OpsPerSec-rate)/rate <= 0.01 }
	clean := func(r *Report) bool { return r.LatencyUs.P99 < 20_000 }
	var calm, paused *Report
	for try := 0; try < 3; try++ {
		if calm = run(false); clean(calm) && accurate(calm) {
			break
		}
		t.Logf("the undisturbed run was stalled by the machine; running it again")
	}
	for try := 0; try < 3; try++ {
		if paused = run(true); accurate(paused) {
			break
		}
		t.Logf("the paused run's sender was stalled by the machine; running it again")
	}
	if !accurate(calm) || !accurate(paused) {
		t.Fatalf("achieved %.1f and %.1f ops/s, want %.0f within 1%%", calm.OpsPerSec, paused.OpsPerSec, rate)
	}
	if paused.LatencyUs.P99 < 50_000 {
		t.Fatalf("p99 with a 100 ms pause is %.0f µs, want ≥ 50 ms: the pause must show as queueing", paused.LatencyUs.P99)
	}
	if paused.LatencyUs.Max < 90_000 {
		t.Fatalf("max with a 100 ms pause is %.0f µs, want ≥ 90 ms", paused.LatencyUs.Max)
	}
	if !clean(calm) {
		t.Logf("no undisturbed run was free of machine stalls: not comparing its p99 with the paused run's")
		return
	}
	if calm.LatencyUs.P99 >= paused.LatencyUs.P99 {
		t.Fatalf("p99 without pause %.0f µs is not below p99 with pause %.0f µs", calm.LatencyUs.P99,
			paused.LatencyUs.P99)
	}
}
