package replay

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
)

// engines lists the engines a run at rate can use: both in closed loop, goroutines in open loop.
func engines(rate float64) []string {
	if rate > 0 {
		return []string{configs.EngineAuto}
	}
	return []string{configs.EngineEventLoop, configs.EngineGoroutine}
}

// TestRun_DownTarget replays against a port nobody listens on: every request fails as unavailable, and the run
// ends by itself.
func TestRun_DownTarget(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rate := range []float64{0, 2000} {
		for _, engine := range engines(rate) {
			cfg := syntheticConfig(addr)
			cfg.Ops, cfg.Rate, cfg.KeysScale, cfg.Engine = 500, rate, 0.01, engine
			r, err := Run(ctx, cfg, presetOptions(t, "etc", 1, 0.01))
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops != 500 || r.Errors != 500 || r.ErrorsByKind["unavailable"] != 500 {
				t.Fatalf("rate %v, engine %s: %d requests, %d errors %v", rate, engine, r.Ops, r.Errors,
					r.ErrorsByKind)
			}
			// The report says why, and how long the run took (not 0 s).
			if d := r.DialErrors[addr]; d == nil || d.Failed == 0 || !strings.Contains(d.First, "refused") ||
				r.DurationSeconds <= 0 || r.OpsPerSec <= 0 || r.LatencyUs.Count != 0 {
				t.Fatalf("rate %v, engine %s: dial errors %+v, %v s, %v ops/s, latency %+v", rate, engine,
					r.DialErrors[addr], r.DurationSeconds, r.OpsPerSec, r.LatencyUs)
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the run against a down target did not end by itself")
	}
}

// TestRun_FlappingTarget stops memcached in the middle of a run and starts it again: the requests in between
// fail and are counted, the connections come back with backoff, and the requests after succeed. It runs open
// loop, and closed loop on each engine.
func TestRun_FlappingTarget(t *testing.T) {
	for _, engine := range []string{"open", configs.EngineEventLoop, configs.EngineGoroutine} {
		t.Run(engine, func(t *testing.T) {
			cfg := configs.DefaultReplay()
			if engine == "open" {
				cfg.Rate, cfg.Arrivals = 2000, configs.ArrivalsUniform
			} else {
				cfg.Engine, cfg.Pipeline = engine, 1
			}
			testFlapping(t, cfg)
		})
	}
}

func testFlapping(t *testing.T, base configs.Replay) {
	mc := mctest.StartMemcached(t, "-m", "64")
	cfg := syntheticConfig(mc.Addr)
	cfg.Rate, cfg.Arrivals, cfg.Engine, cfg.Pipeline = base.Rate, base.Arrivals, base.Engine, base.Pipeline
	cfg.Duration, cfg.KeysScale = configs.Duration(3*time.Second), 0.01
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		if err := waitTraffic(t, mc.Addr, 500); err != nil {
			done <- err
			return
		}
		time.Sleep(300 * time.Millisecond)
		mc.Stop()
		time.Sleep(500 * time.Millisecond)
		mc.Restart()
		done <- nil
	}()
	r, err := Run(ctx, cfg, presetOptions(t, "etc", 1, 0.01))
	if e := <-done; e != nil {
		t.Fatal(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d errors %v, statuses %v", r.Ops, r.Errors, r.ErrorsByKind, r.Statuses)
	if r.Errors == 0 || r.Errors > r.Ops/2 {
		t.Fatalf("%d errors in %d requests: want the outage, and only the outage, to fail", r.Errors, r.Ops)
	}
	if r.ErrorsByKind["unavailable"]+r.ErrorsByKind["conn_lost"] == 0 {
		t.Fatalf("errors by kind %v: want unavailable or conn_lost", r.ErrorsByKind)
	}
	if r.Statuses["hit"]+r.Statuses["miss"]+r.Statuses["stored"] < r.Ops/2 {
		t.Fatalf("statuses %v: too few answered requests", r.Statuses)
	}
}

// TestRun_Timeout pauses memcached for longer than --timeout: the requests in flight fail as timeouts, the
// connection is reopened, and the run goes on. It runs open loop, and closed loop on each engine.
func TestRun_Timeout(t *testing.T) {
	for _, engine := range []string{"open", configs.EngineEventLoop, configs.EngineGoroutine} {
		t.Run(engine, func(t *testing.T) {
			rate := 1000.0
			if engine != "open" {
				rate = 0
			}
			testTimeout(t, rate, engine)
		})
	}
}

func testTimeout(t *testing.T, rate float64, engine string) {
	mc := mctest.StartMemcached(t, "-m", "64")
	cfg := syntheticConfig(mc.Addr)
	cfg.Rate, cfg.Duration, cfg.KeysScale = rate, configs.Duration(2500*time.Millisecond), 0.01
	if rate == 0 {
		cfg.Engine, cfg.Pipeline = engine, 1
	}
	cfg.Timeout = configs.Duration(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		if err := waitTraffic(t, mc.Addr, 300); err != nil {
			errc <- err
			return
		}
		time.Sleep(200 * time.Millisecond)
		if err := mc.Signal(syscall.SIGSTOP); err != nil {
			errc <- err
			return
		}
		time.Sleep(time.Second)
		errc <- mc.Signal(syscall.SIGCONT)
	}()
	r, err := Run(ctx, cfg, presetOptions(t, "etc", 1, 0.01))
	if e := <-errc; e != nil {
		t.Fatal(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d errors %v", r.Ops, r.Errors, r.ErrorsByKind)
	if r.ErrorsByKind["timeout"] == 0 {
		t.Fatalf("errors %v: want timeouts", r.ErrorsByKind)
	}
	if r.Errors >= r.Ops {
		t.Fatalf("every request failed")
	}
}
