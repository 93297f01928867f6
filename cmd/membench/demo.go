// The demo subcommand: membench's whole job in under a minute on one machine. It starts a memcached, puts a
// recording proxy in front of it, drives the built-in etc workload through it, inspects the capture, replays it
// in trace mode (warm-up straight to memcached, the replay itself through a second recording proxy), compares
// the two profiles and writes HTML reports. Every process it starts is stopped at the end, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
	"github.com/membench/membench/profile/report"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/replay"
)

const demoUsage = `membench demo — record, inspect, replay and compare, on this machine, in under a minute.

Usage: membench demo [--dir DIR] [--duration D]

It starts memcached on a free loopback port (installing the Debian package first when run as root and it is
missing), records the built-in etc workload through 'membench proxy' for --duration, inspects the profile,
replays it in trace mode with warm-up through a second recording proxy, compares the two profiles, and writes:

  DIR/salt.hex        the hashing secret of this demo (0600)
  DIR/capture.mbp     the recorded profile           DIR/capture.html   its report
  DIR/replay.mbp      the replay's recording         DIR/compare.html   capture vs replay
  DIR/replay.json     the replay's report

Flags:
  --dir DIR          output directory (default demo-out; created; files in it are replaced)
  --duration D       how long to drive the etc workload (default 10s)

Example:
  membench demo
  membench demo --dir /tmp/demo --duration 5s
`

func init() {
	register(&command{name: "demo", summary: "record, inspect, replay and compare on this machine in under a minute",
		usage: demoUsage, run: runDemo})
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "demo-out", "")
	dur := fs.Duration("duration", 10*time.Second, "")
	pos, err := parseArgs(fs, demoUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q: %w", pos[0], errUsage)
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return fmt.Errorf("--duration %s: give a duration from 1s to 10m: %w", *dur, errUsage)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	d := &demo{dir: *dir, dur: *dur, out: stdout, errw: stderr, ctx: ctx}
	defer d.cleanup()
	err = d.run()
	if ctx.Err() != nil {
		return errors.New("interrupted; every process the demo started has been stopped")
	}
	return err
}

type demo struct {
	dir      string
	dur      time.Duration
	out      io.Writer
	errw     io.Writer
	ctx      context.Context
	memcache *exec.Cmd
	mcAddr   string
	stops    []func()
}

func (d *demo) cleanup() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	d.stops = nil
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> "+format+"\n", args...)
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }

func (d *demo) run() error {
	start := time.Now()
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create --dir %s: %w", d.dir, err)
	}
	for _, f := range []string{"salt.hex", "capture.mbp", "replay.mbp", "capture.html", "compare.html", "replay.json"} {
		_ = os.Remove(d.path(f))
	}
	if err := d.startMemcached(); err != nil {
		return err
	}

	// The capture: a recording proxy in front of memcached, fed the etc workload.
	secret := profile.GenerateSalt()
	if err := profile.WriteSaltFile(d.path("salt.hex"), secret); err != nil {
		return err
	}
	d.step("recording the etc workload through membench proxy for %s", d.dur)
	captureAddr, stopCapture, err := d.startProxy("capture.mbp")
	if err != nil {
		return err
	}
	drive := configs.DefaultReplay()
	drive.Mode, drive.Workload, drive.Targets = configs.ModeSynthetic, "etc", []string{captureAddr}
	drive.Duration, drive.Seed, drive.Connections = configs.Duration(d.dur), 1, 4
	drive.Rate = 20000 // open loop: a steady, realistic rate rather than whatever two cores can push
	driveReport, err := d.replay(drive, "etc workload")
	if err != nil {
		stopCapture()
		return err
	}
	events, err := stopCapture()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    %d requests sent, %d errors; %d events recorded to %s\n", driveReport.Ops,
		driveReport.Errors, events, d.path("capture.mbp"))

	d.step("inspecting %s", d.path("capture.mbp"))
	capture, err := summarize(d.path("capture.mbp"), false, analyze.Options{}, d.errw)
	if err != nil {
		return err
	}
	c := capture.sum
	fmt.Fprintf(d.out, "    %d events over %.1fs, %d connections, %d unique keys, hit ratio %.1f%%, Zipf α %.2f\n",
		c.Events, c.DurationSeconds, c.Connections, c.UniqueKeys, 100*c.HitRatio, c.ZipfAlpha)
	fmt.Fprintf(d.out, "    key size p50 %d B, value size p50 %d B / p99 %d B, working set %s\n", c.KeySize.P50,
		c.ValueSize.P50, c.ValueSize.P99, humanSize(c.WorkingSetBytes))
	if err := writeReport(d.path("capture.html"), "membench inspect capture.mbp",
		[]report.Input{{Label: "capture.mbp", Summary: c}}, nil); err != nil {
		return err
	}

	// The replay: trace mode, warm-up straight to memcached, the replay itself recorded by a second proxy.
	d.step("replaying capture.mbp in trace mode (warm-up straight to memcached, replay through a recording proxy)")
	if err := d.flushMemcached(); err != nil {
		return err
	}
	replayAddr, stopReplay, err := d.startProxy("replay.mbp")
	if err != nil {
		return err
	}
	tr := configs.DefaultReplay()
	tr.Mode, tr.Profile, tr.Targets = configs.ModeTrace, d.path("capture.mbp"), []string{replayAddr}
	tr.Warmup, tr.WarmupTargets, tr.Speed = true, []string{d.mcAddr}, "max"
	trReport, err := d.replay(tr, "trace replay")
	if err != nil {
		stopReplay()
		return err
	}
	if _, err := stopReplay(); err != nil {
		return err
	}
	if err := writeReportFile(d.path("replay.json"), trReport); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    %d requests in %.1fs (%.0f ops/s), %d errors, hit ratio %.1f%%\n", trReport.Ops,
		trReport.DurationSeconds, trReport.OpsPerSec, trReport.Errors, 100*trReport.HitRatio)

	d.step("comparing capture.mbp with the replay's recording")
	rep, err := summarize(d.path("replay.mbp"), false, analyze.Options{}, d.errw)
	if err != nil {
		return err
	}
	cmp := analyze.Compare(c, rep.sum)
	fmt.Fprintf(d.out, "    command mix L1 %.4f, key size KS %.4f, value size KS %.4f\n", cmp.CommandMixL1,
		cmp.KeySizeKS, cmp.ValueSizeKS)
	fmt.Fprintf(d.out, "    hit ratio %.1f%% → %.1f%%, unique keys %d → %d, MRC mean abs. error %.4f\n",
		100*c.HitRatio, 100*rep.sum.HitRatio, c.UniqueKeys, rep.sum.UniqueKeys, cmp.MRCMAE)
	if err := writeReport(d.path("compare.html"), "membench compare capture.mbp replay.mbp",
		[]report.Input{{Label: "capture.mbp", Summary: c}, {Label: "replay.mbp", Summary: rep.sum}}, cmp); err != nil {
		return err
	}

	d.step("done in %.0fs; files:", time.Since(start).Seconds())
	for _, f := range []string{"capture.mbp", "capture.html", "replay.mbp", "replay.json", "compare.html", "salt.hex"} {
		fmt.Fprintf(d.out, "    %s\n", d.path(f))
	}
	fmt.Fprintf(d.out, "    open %s in a browser to see the capture and its replay side by side\n", d.path("compare.html"))
	return nil
}

// startMemcached finds (or, as root, installs) memcached and starts it on a free loopback port.
func (d *demo) startMemcached() error {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/memcached"); statErr == nil {
			bin = "/usr/bin/memcached"
		} else if os.Geteuid() == 0 {
			d.step("installing memcached (apt-get install memcached)")
			for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "memcached"}} {
				cmd := exec.CommandContext(d.ctx, "apt-get", args...)
				cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
				cmd.Stdout, cmd.Stderr = d.errw, d.errw
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("cannot install memcached with apt-get: %w", err)
				}
			}
			bin = "/usr/bin/memcached"
		} else {
			return errors.New("memcached is not installed; install it with: sudo apt-get install memcached " +
				"(or run sudo scripts/install-deps.sh)")
		}
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	d.mcAddr = "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = d.errw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start memcached: %w", err)
	}
	d.memcache = cmd
	d.stops = append(d.stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitAccept(d.ctx, d.mcAddr); err != nil {
		return fmt.Errorf("memcached did not start on %s: %w", d.mcAddr, err)
	}
	d.step("memcached %s (pid %d) on %s", bin, cmd.Process.Pid, d.mcAddr)
	return nil
}

// startProxy starts a recording proxy in front of the demo's memcached; stop shuts it down, closes the profile
// and returns the events written.
func (d *demo) startProxy(file string) (addr string, stop func() (uint64, error), err error) {
	secret, err := profile.LoadSaltFile(d.path("salt.hex"))
	if err != nil {
		return "", nil, err
	}
	anon := profile.NewAnonymizer(secret, profile.DefaultNSDelim, true)
	port, err := freeLoopbackPort()
	if err != nil {
		return "", nil, err
	}
	cfg := configs.DefaultProxy()
	cfg.Listen, cfg.Upstream, cfg.MetricsListen = "127.0.0.1:"+strconv.Itoa(port), d.mcAddr, ""
	cfg.Record = d.path(file)
	w, err := profile.NewWriter(cfg.Record, profile.Header{Created: time.Now(), Mode: "proxy", Host: "demo",
		SaltFingerprint: anon.Fingerprint(), Settings: map[string]string{"membench_version": version}},
		profile.WriterOptions{})
	if err != nil {
		return "", nil, err
	}
	q := profile.NewQueue(w, cfg.QueueSize)
	srv, err := proxy.New(cfg, proxy.Options{Anonymizer: anon, Queue: q})
	if err != nil {
		_ = q.Close()
		return "", nil, err
	}
	if err := srv.Start(); err != nil {
		_ = q.Close()
		return "", nil, err
	}
	stopped := false
	stop = func() (uint64, error) {
		if stopped {
			return q.Written(), nil
		}
		stopped = true
		shutdownErr := srv.Shutdown(context.Background())
		closeErr := q.Close()
		if closeErr != nil {
			return q.Written(), fmt.Errorf("cannot finish %s: %w", cfg.Record, closeErr)
		}
		if q.Dropped() > 0 {
			fmt.Fprintf(d.errw, "membench demo: %d events dropped while recording %s\n", q.Dropped(), cfg.Record)
		}
		return q.Written(), shutdownErr
	}
	d.stops = append(d.stops, func() { _, _ = stop() })
	return cfg.Listen, stop, nil
}

// replay runs one replay with a progress line on a terminal.
func (d *demo) replay(cfg configs.Replay, what string) (*replay.Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("BUG: demo replay config: %w", err)
	}
	src, err := replay.NewSource(cfg, 0)
	if err != nil {
		return nil, err
	}
	opts := replay.Options{Open: src.Open, SourceName: src.Name, WarmKeys: src.WarmKeys}
	if f, ok := d.out.(*os.File); ok && isTerminal(f) {
		opts.Progress = f
	}
	r, err := replay.Run(d.ctx, cfg, opts)
	if err != nil {
		return r, fmt.Errorf("%s: %w", what, err)
	}
	if r.Ops == 0 {
		return r, fmt.Errorf("%s sent no request", what)
	}
	return r, nil
}

// flushMemcached empties the cache between the capture and the replay.
func (d *demo) flushMemcached() error {
	c, err := net.DialTimeout("tcp", d.mcAddr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("flush_all\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "OK\r\n" {
		return fmt.Errorf("flush_all on %s: %q %v", d.mcAddr, buf[:n], err)
	}
	return nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitAccept(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func humanSize(v uint64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%d B", v)
}
