package replay

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
)

// TestRun_DownTarget replays against a port nobody listens on: every request fails as unavailable, and the run
// ends by itself.
func TestRun_DownTarget(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rate := range []float64{0, 2000} {
		cfg := syntheticConfig(addr)
		cfg.Ops, cfg.Rate, cfg.KeysScale = 500, rate, 0.01
		r, err := Run(ctx, cfg, presetOptions(t, "etc", 1, 0.01))
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops != 500 || r.Errors != 500 || r.ErrorsByKind["unavailable"] != 500 {
			t.Fatalf("rate %v: %d requests, %d errors %v", rate, r.Ops, r.Errors, r.ErrorsByKind)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the run against a down target did not end by itself")
	}
}

// TestRun_FlappingTarget stops memcached in the middle of an open-loop run and starts it again: the requests in
// between fail and are counted, the connections come back with backoff, and the requests after succeed.
func TestRun_FlappingTarget(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	cfg := syntheticConfig(mc.Addr)
	cfg.Rate, cfg.Duration, cfg.KeysScale = 2000, configs.Duration(3*time.Second), 0.01
	cfg.Arrivals = configs.ArrivalsUniform
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
// connection is reopened, and the run goes on.
func TestRun_Timeout(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	cfg := syntheticConfig(mc.Addr)
	cfg.Rate, cfg.Duration, cfg.KeysScale = 1000, configs.Duration(2500*time.Millisecond), 0.01
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
