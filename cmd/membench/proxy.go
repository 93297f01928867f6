// The proxy subcommand: flags and config file → configs.Proxy → proxy.Server, plus signals (SIGTERM/SIGINT
// drain and stop, SIGHUP rotates the profile) and the summary printed at exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/metricsrv"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/proxy"
)

const proxyUsage = `membench proxy — an inline memcached proxy that records anonymized traffic.

Usage: membench proxy [--config proxy.toml] [flags]

Every byte is forwarded unchanged between clients and the upstream memcached (text, meta and binary
protocols). With --record, each request/response pair is written to a profile as keyed hashes and sizes:
never key or value bytes.

Flags (override the config file):
  --config FILE            TOML config (see configs/proxy.toml)
  --check                  validate the config (file and flags) and exit 0, or print what is wrong and exit 1
  --listen ADDR            client address (default 127.0.0.1:11311)
  --unix-socket PATH       also listen on a unix socket
  --upstream ADDR          memcached to forward to (default 127.0.0.1:11211)
  --record FILE            write a profile here (omit for a plain proxy)
  --salt-file FILE         hashing secret from 'membench salt' (default: random, uncorrelatable)
  --host-label NAME        label stored in the profile header
  --sample-rate R          keep this fraction of keys, (0,1] (default 1)
  --metrics-listen ADDR    Prometheus /metrics (default 127.0.0.1:9150; "" turns it off)
  --event-loops N          gnet event loops (default: one per CPU)
  --max-connections N      refuse clients beyond N (default 4096)
  --idle-timeout D         close idle clients after D (default off)
  --request-timeout D      close a client whose one request takes longer than D to arrive (default 30s; 0 = off)
  --drain-timeout D        on SIGTERM, wait up to D for in-flight requests (default 5s)
  --max-item-size BYTES    pool mode: answer larger values like memcached (default: memcached's -I)
  --connect-timeout D      dial timeout to the upstream (default 1s)
  --namespace-delimiter C  a key's namespace ends at C (default ":"; "" turns namespaces off)
  --flush-interval D       write a profile block at least this often (default 1s)
  --queue-size N           events waiting for the writer before new ones are dropped (default 65536)

Pool mode (several upstreams, routed like twemproxy's ketama; see configs/pool.toml):
  --upstream A,B,C         comma-separated servers switch to pool mode (weight 1 each)
  --hash NAME              key hash: fnv1a_64 (default), md5, crc32, one_at_a_time, …
  --hash-tag XY            hash only the part of the key between X and Y, e.g. "{}"
  --auto-eject             move a failing server's keys to the others (default: fail fast)
  --connections-per-server N   shared upstream connections per server and event loop (default 1)
  --pool-timeout D         fail a request not answered within D (default 1s)

Signals: SIGTERM/SIGINT drain and stop, flushing the profile; SIGHUP starts a new timestamped profile
and, in pool mode with --config, reloads the pool (servers, weights, shadow) without dropping clients.

Examples:
  membench proxy --upstream 127.0.0.1:11211 --listen 127.0.0.1:11311 --record out.mbp --salt-file salt.hex
  membench proxy --config configs/proxy.toml --sample-rate 0.1
  membench proxy --upstream 10.0.0.5:11211 --metrics-listen ""
  membench proxy --listen 127.0.0.1:22121 --upstream 127.0.0.1:11211,127.0.0.1:11212 --hash md5
  membench proxy --config configs/pool.toml --record pool.mbp
`

// proxyConfig maps command-line flags onto a configs.Proxy. Only flags the user set override the file.
func proxyConfig(args []string, stdout io.Writer) (configs.Proxy, error) {
	cfg, _, err := proxyConfigAndFile(args, stdout)
	return cfg, err
}

func proxyConfigAndFile(args []string, stdout io.Writer) (configs.Proxy, string, error) {
	cfg, file, _, err := proxyConfigInner(args, stdout)
	return cfg, file, err
}

// proxyConfigInner also reports --check.
func proxyConfigInner(args []string, stdout io.Writer) (configs.Proxy, string, bool, error) {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	recFlags := addRecordingFlags(fs)
	var (
		configFile = fs.String("config", "", "")
		check      = fs.Bool("check", false, "")
		listen     = fs.String("listen", "", "")
		unixSock   = fs.String("unix-socket", "", "")
		upstream   = fs.String("upstream", "", "")
		metricsL   = fs.String("metrics-listen", "", "")
		loops      = fs.Int("event-loops", 0, "")
		maxConns   = fs.Int("max-connections", 0, "")
		idle       = fs.Duration("idle-timeout", 0, "")
		reqTO      = fs.Duration("request-timeout", 0, "")
		drain      = fs.Duration("drain-timeout", 0, "")
		connectTO  = fs.Duration("connect-timeout", 0, "")
		maxItem    = fs.Int("max-item-size", 0, "")
		hash       = fs.String("hash", "", "")
		hashTag    = fs.String("hash-tag", "", "")
		autoEject  = fs.Bool("auto-eject", false, "")
		perServer  = fs.Int("connections-per-server", 0, "")
		poolTO     = fs.Duration("pool-timeout", 0, "")
	)
	pos, err := parseArgs(fs, proxyUsage, args, stdout)
	if err != nil {
		return configs.Proxy{}, "", false, err
	}
	if len(pos) > 0 {
		return configs.Proxy{}, "", false, fmt.Errorf("unexpected argument %q: %w", pos[0], errUsage)
	}
	cfg, err := configs.LoadProxy(*configFile)
	if err != nil {
		return cfg, *configFile, false, err
	}
	set := flagsSet(fs)
	apply(set, "listen", &cfg.Listen, *listen)
	apply(set, "unix-socket", &cfg.UnixSocket, *unixSock)
	if set["upstream"] {
		single, servers := configs.UpstreamList(*upstream)
		cfg.Upstream, cfg.Pool.Servers = single, servers
	}
	apply(set, "hash", &cfg.Pool.Hash, *hash)
	apply(set, "hash-tag", &cfg.Pool.HashTag, *hashTag)
	apply(set, "auto-eject", &cfg.Pool.AutoEject, *autoEject)
	apply(set, "connections-per-server", &cfg.Pool.ConnectionsPerServer, *perServer)
	apply(set, "pool-timeout", &cfg.Pool.Timeout, configs.Duration(*poolTO))
	recFlags.apply(set, &cfg.Recording)
	apply(set, "metrics-listen", &cfg.MetricsListen, *metricsL)
	apply(set, "event-loops", &cfg.EventLoops, *loops)
	apply(set, "max-connections", &cfg.MaxConnections, *maxConns)
	apply(set, "idle-timeout", &cfg.IdleTimeout, configs.Duration(*idle))
	apply(set, "request-timeout", &cfg.RequestTimeout, configs.Duration(*reqTO))
	apply(set, "drain-timeout", &cfg.DrainTimeout, configs.Duration(*drain))
	apply(set, "connect-timeout", &cfg.ConnectTimeout, configs.Duration(*connectTO))
	apply(set, "max-item-size", &cfg.MaxItemSize, *maxItem)
	if err := cfg.Validate(); err != nil {
		if *configFile != "" {
			return cfg, *configFile, false, fmt.Errorf("%s: %w", *configFile, err)
		}
		return cfg, *configFile, false, err
	}
	return cfg, *configFile, *check, nil
}

func runProxy(args []string, stdout, stderr io.Writer) error {
	cfg, configFile, check, err := proxyConfigInner(args, stdout)
	if err != nil {
		return err
	}
	if check {
		// Like nutcracker -t: the config (file and flags) is valid; nothing is started, nothing is created.
		where := "flags"
		if configFile != "" {
			where = configFile
		}
		mode := "inline, upstream " + cfg.Upstream
		if cfg.Pool.Enabled() {
			mode = fmt.Sprintf("pool of %d servers", len(cfg.Pool.Servers))
		}
		fmt.Fprintf(stdout, "membench proxy: %s: configuration is valid (%s, listen %s)\n", where, mode, cfg.Listen)
		return nil
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var rec *recorder
	opts := proxy.Options{Logger: log}
	if cfg.Record != "" {
		rec, err = openRecorder(recordSettings{Recording: cfg.Recording, mode: "proxy",
			countWriteError: proxy.CountProfileWriteError}, stderr)
		if err != nil {
			return err
		}
		opts.Anonymizer, opts.Queue = rec.anon, rec.queue
	}
	// A start that fails removes the profile it created (rec.abort), so the next start can use the path.
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		rec.abort()
		return err
	}
	var msrv *metricsrv.Server
	if cfg.MetricsListen != "" {
		if msrv, err = metricsrv.Start(cfg.MetricsListen, proxy.Metrics); err != nil {
			rec.abort()
			return err
		}
		defer msrv.Close()
	}
	if err := srv.Start(); err != nil {
		rec.abort()
		return err
	}
	if cfg.Pool.Enabled() {
		log.Info("proxy started", "listen", cfg.Listen, "pool_servers", len(cfg.Pool.Servers),
			"record", cfg.Record, "metrics", cfg.MetricsListen)
	} else {
		log.Info("proxy started", "listen", cfg.Listen, "upstream", cfg.Upstream,
			"record", cfg.Record, "metrics", cfg.MetricsListen)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for stop := false; !stop; {
		select {
		case <-tick.C:
			if rec != nil {
				proxy.ReportProfileBytes(rec.bytesWritten())
			}
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				stop = true
				break
			}
			if cfg.Pool.Enabled() && configFile != "" {
				if newCfg, err := configs.LoadProxy(configFile); err != nil {
					log.Error("SIGHUP: config not reloaded, keeping the running pool", "err", err)
				} else if err := srv.Reload(newCfg.Pool); err != nil {
					log.Error("SIGHUP: pool not reloaded, keeping the running pool", "file", configFile, "err", err)
				} else {
					log.Info("SIGHUP: pool reloaded", "servers", len(newCfg.Pool.Servers))
				}
			}
			if rec == nil {
				log.Info("SIGHUP: no profile to rotate (no --record)")
				continue
			}
			closed, err := rec.rotate(func(q *profile.Queue) *profile.Queue { return srv.SetQueue(q) })
			if err != nil {
				log.Error("profile rotation failed", "err", err)
				continue
			}
			log.Info("profile rotated", "closed", closed, "new", rec.path)
		}
	}
	log.Info("draining", "in_flight", srv.InFlight())
	shutdownErr := srv.Shutdown(context.Background())
	if rec == nil {
		fmt.Fprintln(stdout, "membench proxy: stopped (no profile recorded)")
		return shutdownErr
	}
	closeErr := rec.queue.Close()
	written, dropped := rec.queue.Written(), rec.queue.Dropped()
	fmt.Fprintf(stdout, "membench proxy: %d events recorded, %d dropped, %d bytes; profile: %s\n",
		written+rec.writtenBefore, dropped+rec.droppedBefore, rec.bytesWritten(), joinFiles(rec.files))
	if closeErr != nil {
		return fmt.Errorf("cannot finish profile %s: %w", rec.path, closeErr)
	}
	return shutdownErr
}

func joinFiles(files []string) string {
	s := ""
	for i, f := range files {
		if i > 0 {
			s += ", "
		}
		s += f
	}
	return s
}

func init() {
	register(&command{
		name:    "proxy",
		summary: "inline memcached proxy that records an anonymized profile",
		usage:   proxyUsage,
		run:     runProxy,
	})
}
