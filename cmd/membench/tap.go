// The tap subcommand: flags and config file → configs.Tap → a packet source (live interface or capture file)
// and a tap.Tap, plus signals (SIGTERM/SIGINT stop and flush the profile; SIGHUP rotates it, live) and the summary
// printed at exit.
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/metricsrv"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/tap"
)

const tapUsage = `membench tap — a passive recorder: memcached traffic from packets, no proxy in the path.

Usage: membench tap --interface IF [flags]      (live capture; needs root or cap_net_raw,cap_net_admin)
       membench tap --pcap FILE [flags]         (read a pcap or pcapng file)

Both directions of every TCP connection to the memcached port(s) are reassembled (reordering,
retransmissions, overlaps, FIN/RST), framed (text, meta and binary protocols) and paired; times and
latencies come from packet timestamps. Connections already open when the capture starts, and bytes the
capture lost, are resynchronised on the next frame boundary: nothing is guessed, what cannot be paired is
counted (and requests whose response was lost are recorded with status lost). Reading the same file with
the same salt file always gives a byte-identical profile. Mirrored traffic in VXLAN (UDP 4789, as AWS VPC
Traffic Mirroring sends it), GRE or ERSPAN type I/II/III tunnels is taken out of them (--encap).

Flags (override the config file):
  --config FILE            TOML config (see configs/tap.toml)
  --interface IF           capture live on IF (e.g. lo, eth0)
  --pcap FILE              read a pcap/pcapng file instead
  --port LIST              memcached server port(s), comma-separated (default 11211)
  --bpf EXPR               capture filter (default: tcp and (port P or ...), plus the outer packets of the
                           tunnels --encap opens: or udp port 4789 or ip proto 47 or ip6 proto 47)
  --encap MODE             tunnels to open: auto (default: VXLAN on UDP 4789, GRE, ERSPAN), vxlan, gre
                           (GRE and ERSPAN) or none
  --promisc                promiscuous mode
  --snaplen BYTES          capture length per packet (default 262144: whole packets)
  --buffer-size BYTES      kernel capture buffer (default 67108864)
  --immediate-mode         deliver each packet at once instead of in blocks (default off: blocks drop far
                           fewer packets on a busy host; timestamps, so latencies, are the kernel's either way)
  --duration D             stop after D (live: wall clock; file: capture time from its first packet)
  --record FILE            write a profile here (omit to only count)
  --salt-file FILE         hashing secret from 'membench salt' (default: random, uncorrelatable)
  --host-label NAME        label stored in the profile header
  --sample-rate R          keep this fraction of keys, (0,1] (default 1)
  --namespace-delimiter C  namespace prefix delimiter ("" turns it off; default ":")
  --metrics-listen ADDR    Prometheus /metrics (default 127.0.0.1:9151; "" turns it off)
  --max-flows N            connections tracked at once (default 65536)
  --max-flow-buffer BYTES  bytes one connection may hold while segments are missing (default 4 MiB)
  --max-total-buffer BYTES the same over all connections (default 256 MiB)
  --reorder-window D       capture time a missing segment is waited for before it counts as lost (250ms)
  --idle-timeout D         forget connections idle this long, capture time (default 2m)
  --progress               reading a file: print progress (bytes read, %, ETA) on stderr every second even
                           when it is not a terminal (on a terminal it always is)

Signals: SIGTERM/SIGINT stop the capture and flush the profile; SIGHUP (live capture) closes the profile and
starts a new timestamped one beside it, as the proxy does; reading a file (--pcap) it is ignored.

Exit codes: 0 success; 1 an error (a file that cannot be opened, a link type the tap cannot decode, ...);
2 a usage error; 4 the capture file is damaged (a record with an impossible length, or a file cut in the
middle of a record): every damaged place is reported with its byte offset and everything readable is still
recorded. A run that finds traffic but no connection on --port warns and names the busiest TCP ports.

Examples:
  membench tap --interface eth0 --port 11211 --record out.mbp --salt-file salt.hex
  membench tap --interface lo --port 11211,11212 --duration 60s --record out.mbp
  membench tap --pcap traffic.pcapng --port 11211 --record out.mbp --salt-file salt.hex
  sudo setcap cap_net_raw,cap_net_admin+eip ./membench   # capture without root
`

// tapConfig maps command-line flags onto a configs.Tap. Only flags the user set override the file.
func tapConfig(args []string, stdout io.Writer) (configs.Tap, error) {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	recFlags := addRecordingFlags(fs)
	var (
		configFile = fs.String("config", "", "")
		iface      = fs.String("interface", "", "")
		pcapFile   = fs.String("pcap", "", "")
		ports      = fs.String("port", "", "")
		bpf        = fs.String("bpf", "", "")
		encap      = fs.String("encap", "", "")
		promisc    = fs.Bool("promisc", false, "")
		immediate  = fs.Bool("immediate-mode", false, "")
		snaplen    = fs.Int("snaplen", 0, "")
		bufSize    = fs.Int("buffer-size", 0, "")
		duration   = fs.Duration("duration", 0, "")
		metricsL   = fs.String("metrics-listen", "", "")
		maxFlows   = fs.Int("max-flows", 0, "")
		maxFlowBuf = fs.Int("max-flow-buffer", 0, "")
		maxTotBuf  = fs.Int("max-total-buffer", 0, "")
		reorder    = fs.Duration("reorder-window", 0, "")
		idle       = fs.Duration("idle-timeout", 0, "")
	)
	pos, err := parseArgs(fs, tapUsage, args, stdout)
	if err != nil {
		return configs.Tap{}, err
	}
	if len(pos) > 0 {
		return configs.Tap{}, fmt.Errorf("unexpected argument %q: %w", pos[0], errUsage)
	}
	cfg, err := configs.LoadTap(*configFile)
	if err != nil {
		return cfg, err
	}
	set := flagsSet(fs)
	apply(set, "interface", &cfg.Interface, *iface)
	apply(set, "pcap", &cfg.Pcap, *pcapFile)
	apply(set, "bpf", &cfg.BPF, *bpf)
	apply(set, "encap", &cfg.Encap, *encap)
	recFlags.apply(set, &cfg.Recording)
	apply(set, "metrics-listen", &cfg.MetricsListen, *metricsL)
	if set["interface"] && !set["pcap"] {
		cfg.Pcap = "" // a flag chooses the source even when the file named the other one
	}
	if set["pcap"] && !set["interface"] {
		cfg.Interface = ""
	}
	if set["port"] {
		p, err := configs.ParsePorts(*ports)
		if err != nil {
			return cfg, fmt.Errorf("--port: %v: %w", err, errUsage)
		}
		cfg.Ports = p
	}
	apply(set, "promisc", &cfg.Promiscuous, *promisc)
	apply(set, "immediate-mode", &cfg.ImmediateMode, *immediate)
	apply(set, "snaplen", &cfg.SnapLen, *snaplen)
	apply(set, "buffer-size", &cfg.BufferSize, *bufSize)
	apply(set, "max-flows", &cfg.MaxFlows, *maxFlows)
	apply(set, "max-flow-buffer", &cfg.MaxFlowBuffer, *maxFlowBuf)
	apply(set, "max-total-buffer", &cfg.MaxTotalBuffer, *maxTotBuf)
	apply(set, "duration", &cfg.Duration, configs.Duration(*duration))
	apply(set, "reorder-window", &cfg.ReorderWindow, configs.Duration(*reorder))
	apply(set, "idle-timeout", &cfg.IdleTimeout, configs.Duration(*idle))
	if err := cfg.Validate(); err != nil {
		if *configFile != "" {
			return cfg, fmt.Errorf("%s: %w", *configFile, err)
		}
		return cfg, fmt.Errorf("%v (use --interface or --pcap, see --help): %w", err, errUsage)
	}
	return cfg, nil
}

// exitDamaged is the exit code of a tap whose capture file was damaged; everything readable was recorded.
const exitDamaged = 4

// peekedSource hands out what was read ahead (to learn the capture's start time: damage reports, then the
// first packet or error) before the rest.
type peekedSource struct {
	tap.Source
	ahead []peeked
}

type peeked struct {
	data []byte
	ts   int64
	lt   tap.LinkType
	err  error
}

// peek reads up to the first packet (or the first error that is not a damage report) and returns it.
func (p *peekedSource) peek() peeked {
	for {
		var r peeked
		r.data, r.ts, r.lt, r.err = p.Source.ReadPacket()
		r.data = append([]byte(nil), r.data...)
		p.ahead = append(p.ahead, r)
		var d *tap.DamageError
		if !errors.As(r.err, &d) {
			return r
		}
	}
}

func (p *peekedSource) ReadPacket() ([]byte, int64, tap.LinkType, error) {
	if len(p.ahead) > 0 {
		r := p.ahead[0]
		p.ahead = p.ahead[1:]
		return r.data, r.ts, r.lt, r.err
	}
	return p.Source.ReadPacket()
}

func runTap(args []string, stdout, stderr io.Writer) error {
	args, forceProgress := takeProgressFlag(args) // not a config setting: taken off before tapConfig
	cfg, err := tapConfig(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var src tap.Source
	created := time.Now()
	finishProgress := func(bool) {}
	if cfg.Pcap != "" {
		if src, err = tap.OpenFile(cfg.Pcap, cfg.BPF); err != nil {
			return err
		}
		if p, ok := src.(interface{ Progress() (int64, int64) }); ok {
			_, size := p.Progress()
			finishProgress = progressMeter(stderr, forceProgress, "tap "+cfg.Pcap, size, "bytes",
				func() int64 { n, _ := p.Progress(); return n })
		}
		defer finishProgress(false) // an early return; after Run it was already finished
		// The profile's creation time is the capture's, so the same file always gives the same profile.
		ps := &peekedSource{Source: src}
		if first := ps.peek(); first.err == nil {
			created = time.Unix(0, first.ts)
		} else {
			created = time.Unix(0, 0)
		}
		src = ps
	} else if src, err = tap.OpenLive(&cfg); err != nil {
		return err
	}
	defer src.Close()

	offline := cfg.Pcap != ""
	var rec *recorder
	var sink *batchSink
	var opts tap.Options
	opts.Logger = log
	if cfg.Record != "" {
		set := recordSettings{Recording: cfg.Recording, mode: "tap", created: created,
			countWriteError: tap.CountProfileWriteError}
		if offline {
			// Whole blocks only and no queue: block boundaries and events must not depend on timing.
			set.FlushInterval, set.QueueSize = -1, 1
		}
		if rec, err = openRecorder(set, stderr); err != nil {
			return err
		}
		opts.Anonymizer = rec.anon
		sink = newBatchSink(rec.writer, offline)
		opts.Record, opts.Flush = sink.put, sink.flush
	}
	tp, err := tap.New(cfg, opts)
	if err != nil {
		rec.abort() // no half-made profile is left behind
		return err
	}
	if cfg.MetricsListen != "" {
		msrv, err := metricsrv.Start(cfg.MetricsListen, tap.Metrics)
		if err != nil {
			rec.abort()
			return err
		}
		defer msrv.Close()
	}
	source := cfg.Pcap
	if !offline {
		source = "interface " + cfg.Interface
	}
	log.Info("tap started", "source", source, "filter", tap.CaptureFilter(&cfg), "record", cfg.Record,
		"metrics", cfg.MetricsListen)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	var side sync.WaitGroup
	if rec != nil {
		// One goroutine reports the profile's size and, live, rotates the profile on SIGHUP, so the recorder is
		// only touched here until the capture ends.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		side.Add(1)
		go func() {
			defer side.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					tap.ReportProfileBytes(rec.bytesWritten())
				case <-hup:
					if offline {
						log.Info("SIGHUP ignored: a profile read from a file is not rotated")
						continue
					}
					closed, err := rec.rotate(func(*profile.Queue) *profile.Queue {
						sink.switchTo(rec.writer) // rotate has opened the new file: rec.writer is its writer
						return rec.queue
					})
					if err != nil {
						log.Error("SIGHUP: profile not rotated", "err", err)
						continue
					}
					log.Info("profile rotated", "closed", closed, "new", rec.path)
				}
			}
		}()
	}
	runErr := tp.Run(ctx, src)
	finishProgress(runErr == nil || errors.Is(runErr, tap.ErrDamaged))
	close(done)
	side.Wait()
	st := tp.Stats()
	var closeErr error
	if rec != nil {
		closeErr = sink.close()
		if err := rec.queue.Close(); closeErr == nil {
			closeErr = err
		}
		tap.ReportProfileBytes(rec.bytesWritten())
		d := sink.dropped.Load() + rec.dropped() // batches dropped live, events the writer refused
		st.Events -= d
		st.EventsDropped += d
	}
	fmt.Fprintf(stdout, "membench tap: %s\n", st.String())
	if rec != nil {
		fmt.Fprintf(stdout, "membench tap: %d events recorded, %d bytes; profile: %s\n", st.Events,
			rec.bytesWritten(), rec.path)
	}
	if runErr == nil || errors.Is(runErr, tap.ErrDamaged) {
		for _, w := range tp.Warnings() {
			log.Warn(w)
		}
	}
	if runErr != nil && !errors.Is(runErr, tap.ErrDamaged) {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("cannot finish profile %s: %w", rec.path, closeErr)
	}
	if runErr != nil {
		return &exitError{code: exitDamaged, err: runErr}
	}
	return nil
}

// batchSink hands events to a goroutine that writes them to the profile, in batches and in order, so the
// profile's encoding and compression run beside the packet loop. Offline it waits when the writer is behind
// (every event is written, the profile depends only on the file); live it drops a batch instead, counted,
// because stalling the capture would make the kernel drop packets.
type batchSink struct {
	w       *profile.Writer
	wait    bool
	cur     []profile.Event
	full    chan sinkItem
	free    chan []profile.Event
	done    chan struct{}
	dropped atomic.Uint64
	// cw is the writer put checks: while it cannot write (a full disk), put refuses events and the tap counts
	// them as dropped. It follows w, for the capture goroutine.
	cw atomic.Pointer[profile.Writer]
}

const sinkBatch = 4096

// sinkItem is a batch of events, or (w set) the writer every later batch goes to; ack is closed once the sink
// has switched, so the old writer may be closed.
type sinkItem struct {
	b   []profile.Event
	w   *profile.Writer
	ack chan struct{}
}

func newBatchSink(w *profile.Writer, wait bool) *batchSink {
	s := &batchSink{w: w, wait: wait, full: make(chan sinkItem, 16), free: make(chan []profile.Event, 17),
		done: make(chan struct{})}
	s.cw.Store(w)
	for i := 0; i < 17; i++ {
		s.free <- make([]profile.Event, 0, sinkBatch)
	}
	s.cur = <-s.free
	go s.run()
	return s
}

func (s *batchSink) put(ev *profile.Event) bool {
	if s.cw.Load().Failing() {
		return false
	}
	s.cur = append(s.cur, *ev)
	if len(s.cur) == sinkBatch {
		s.flush()
	}
	return true
}

// flush hands the current batch to the writer goroutine.
func (s *batchSink) flush() {
	if len(s.cur) == 0 {
		return
	}
	if s.wait {
		s.full <- sinkItem{b: s.cur}
		s.cur = <-s.free
		return
	}
	select {
	case s.full <- sinkItem{b: s.cur}:
		select {
		case s.cur = <-s.free:
		default:
			s.cur = make([]profile.Event, 0, sinkBatch)
		}
	default:
		s.dropped.Add(uint64(len(s.cur)))
		s.cur = s.cur[:0]
	}
}

func (s *batchSink) run() {
	defer close(s.done)
	for it := range s.full {
		if it.w != nil {
			s.w = it.w
			close(it.ack)
			continue
		}
		b := it.b
		for i := range b {
			// The writer counts what it refuses (profile not writable) and retries; Close reports a failure that
			// lasted.
			_ = s.w.Write(&b[i])
		}
		select {
		case s.free <- b[:0]:
		default:
		}
	}
}

// switchTo makes the batches handed over after this call go to w, and returns once the batches before it are
// written: the previous writer is then free to close. It may run beside put and flush (the events being batched
// go to w); not after close.
func (s *batchSink) switchTo(w *profile.Writer) {
	s.cw.Store(w)
	ack := make(chan struct{})
	s.full <- sinkItem{w: w, ack: ack}
	<-ack
}

// close writes what is left and stops the goroutine. Write errors are the writer's to report, in its Close.
func (s *batchSink) close() error {
	s.wait = true
	s.flush()
	close(s.full)
	<-s.done
	return nil
}

func init() {
	register(&command{
		name:    "tap",
		summary: "passive recorder: reassemble memcached traffic from an interface or a pcap file",
		usage:   tapUsage,
		run:     runTap,
	})
}
