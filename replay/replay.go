// Package replay turns a source of events (a recorded profile read back in order, or a seeded synthetic
// generator from package workload) into memcached traffic against test servers, and reports what came back:
// throughput, latency per command from HdrHistograms, hit ratio observed against recorded, and errors by kind.
//
// A dispatcher goroutine reads the source, decides each request's connection (one per recorded connection, or
// folded onto --connections; in synthetic mode by key), its target (ketama over package ring) and, in open loop,
// its intended send time, and hands requests to connections in batches. Each connection (conn.go) pipelines them
// over one TCP connection. Latency is measured from the intended send time in open loop, so a stalled server shows
// up as the queueing it causes instead of slowing the sender down (no coordinated omission).
//
// This file holds Run, the engine and the dispatcher; the progress line and metrics are in progress.go and the
// warmup in warmup.go.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
	"github.com/membench/membench/ring"
)

// Options are Run's collaborators, built by the caller from its config.
type Options struct {
	// Open returns a fresh source at its first event. Run calls it once for the replay and, with warmup, once
	// more before that to find the keys to store.
	Open func() (workload.Source, error)
	// SourceName names the source in the report ("path.mbp", "workload:etc").
	SourceName string
	// WarmKeys, when set, lists the keys a warmup stores instead of scanning the source (a preset's keys).
	WarmKeys func(yield func(hash uint64, keySize uint16, valueSize uint32) bool)
	// WarmScanLimit bounds the events a warmup scan reads from a source that does not end by itself (0: 10M).
	WarmScanLimit uint64
	// Progress receives one line per second while the replay runs; nil prints nothing.
	Progress io.Writer
	// Logger receives run-level messages; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives the replay's figures once per second and at the end (the caller serves or
	// pushes Metrics.Set).
	Metrics *Metrics
}

// Defaults of the engine.
const (
	// DefaultSyntheticConnections is the number of client connections of a synthetic replay without
	// --connections.
	DefaultSyntheticConnections = 4
	// maxValue is the largest value replay sends; larger recorded values are cut to it.
	maxValue = 16 << 20
	// lookahead is how far ahead of time the dispatcher hands open-loop requests to connections, so that its
	// own scheduling delays never make a request late; each connection then waits for the intended time.
	lookahead = 20 * time.Millisecond
	// ttlRelativeMax is memcached's boundary between relative and absolute exptimes.
	ttlRelativeMax = 30 * 24 * 3600
	// openLoopInflight bounds requests in flight per connection in open loop (24 bytes each); past it the
	// sender waits, and the wait counts in the latency of the requests it delays.
	openLoopInflight = 1 << 12
)

// connKey identifies one TCP connection: client connection, protocol family, target.
type connKey struct {
	client, fam, server int
}

// engine is one replay run.
type engine struct {
	ctx            context.Context
	base           time.Time
	pipeline       int
	timeout        time.Duration
	connectTimeout time.Duration
	values         *workload.Values
	inflightCap    int
	override       mcproto.Protocol
	ring           *ring.Ring
	addrs          []string
	stopAt         int64     // run clock at which closed-loop senders stop (0: none)
	open           bool      // open loop: the measured duration ends at the last send, not the last response
	ev             *evClient // closed loop on event loops; nil: a goroutine per connection
	pin            bool      // bind each event loop to a CPU
	batch          bool      // run event loops under SCHED_BATCH

	mu    sync.Mutex
	conns map[connKey]*conn
	all   []*conn
	wg    sync.WaitGroup

	pool    sync.Pool
	skipped atomic.Uint64
	turns   []*dialTurns // by target: the order of event-loop connections' first dials (dialturn.go)
	dials   dialLog      // failed dials, logged once per outage (dialerr.go)
	series  []Point      // the run's time series, written by the sampler (series.go)
	sampled seriesState  // the sampler's state between points
}

func (e *engine) now() int64 { return int64(time.Since(e.base)) }

func (e *engine) recycle(b *batch) {
	clear(b.ops) // the ops' more slices
	b.ops, b.more = b.ops[:0], b.more[:0]
	e.pool.Put(b)
}

func (e *engine) newBatch() *batch {
	if b, ok := e.pool.Get().(*batch); ok {
		return b
	}
	return &batch{ops: make([]op, 0, batchSize)}
}

// conn returns the connection for k, starting it on first use.
func (e *engine) conn(k connKey) *conn {
	if c := e.conns[k]; c != nil {
		return c
	}
	c := newConn(e, e.addrs[k.server])
	e.mu.Lock()
	e.conns[k] = c
	e.all = append(e.all, c)
	e.mu.Unlock()
	e.wg.Add(1)
	if e.ev != nil {
		c.ev.back = make(chan int, 1)
		if e.turns[k.server] == nil {
			e.turns[k.server] = &dialTurns{}
		}
		c.ev.turns = e.turns[k.server]
		c.ev.turn = c.ev.turns.enroll()
		// The target's j-th connection goes to loop j mod loops, and is accepted j-th (dialturn.go).
		c.ev.lp, c.ev.slot, c.ev.fd = e.ev.pick(c.ev.turn), -1, -1
		go func() {
			defer e.wg.Done()
			c.runEv()
		}()
		return c
	}
	go func() {
		defer e.wg.Done()
		c.run()
	}()
	return c
}

// snapshot returns the connections started so far.
func (e *engine) snapshot() []*conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*conn(nil), e.all...)
}

// ols fits a least-squares line to (request number, send time) pairs, streaming and mergeable (Welford's
// update and Chan's combination), so that the achieved rate of an open-loop run is the slope of its sends: a
// sender that drifts behind shows, a single late request at the end of a run does not.
type ols struct {
	n        float64
	mx, my   float64
	sxx, sxy float64
}

func (o *ols) add(x, y float64) {
	o.n++
	dx := x - o.mx
	o.mx += dx / o.n
	o.my += (y - o.my) / o.n
	o.sxx += dx * (x - o.mx)
	o.sxy += dx * (y - o.my)
}

func (o *ols) merge(b *ols) {
	if b.n == 0 {
		return
	}
	if o.n == 0 {
		*o = *b
		return
	}
	n := o.n + b.n
	dx, dy := b.mx-o.mx, b.my-o.my
	o.sxx += b.sxx + dx*dx*o.n*b.n/n
	o.sxy += b.sxy + dx*dy*o.n*b.n/n
	o.mx += dx * b.n / n
	o.my += dy * b.n / n
	o.n = n
}

// rate returns requests per second: the inverse of the fitted seconds per request. 0 when it cannot be fitted.
func (o *ols) rate() float64 {
	if o.n < 2 || o.sxx == 0 || o.sxy <= 0 {
		return 0
	}
	return 1 / (o.sxy / o.sxx)
}

// plan is how the dispatcher schedules and routes a run.
type plan struct {
	trace       bool    // trace mode: connections follow recorded connections
	speed       float64 // trace: factor on recorded times; 0 = closed loop
	rate        float64 // open loop at this rate (overrides speed)
	uniform     bool    // uniform instead of Poisson arrivals
	connections int     // fold onto this many client connections (0: one per recorded connection)
	ops         uint64
	duration    time.Duration
	shard       int
	shards      int
	seed        uint64
}

func (p *plan) openLoop() bool { return p.rate > 0 || p.speed > 0 }

// Run replays the source that opts.Open returns against cfg's targets and returns the report. It returns an
// error only when the run could not start or the source failed; failed requests are counted in the report.
// Cancelling ctx stops the replay early; what was measured so far is reported. With cfg.StartAt it warms up,
// then waits until that instant and measures from it (waitStart).
func Run(ctx context.Context, cfg configs.Replay, opts Options) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Open == nil {
		return nil, errors.New("BUG: replay.Run without a source")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	servers, _ := cfg.RingServers()
	rg, err := ring.New(servers, cfg.Hash, ring.Options{HashTag: cfg.HashTag})
	if err != nil {
		return nil, fmt.Errorf("cannot route keys over targets: %w", err)
	}
	override, _ := cfg.ProtocolOverride()
	speed, _ := cfg.SpeedFactor()
	shard, shards, _ := cfg.ShardIndex()
	p := plan{
		trace:       cfg.Mode == configs.ModeTrace,
		speed:       speed,
		rate:        cfg.Rate,
		uniform:     cfg.Arrivals == configs.ArrivalsUniform,
		connections: cfg.Connections,
		ops:         cfg.Ops,
		duration:    cfg.Duration.D(),
		shard:       shard,
		shards:      shards,
		seed:        cfg.Seed,
	}
	if !p.trace {
		p.speed = 0
		if p.connections == 0 {
			p.connections = DefaultSyntheticConnections
		}
	}
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr
	}
	values := workload.NewValues(maxValue)

	var warm *WarmupReport
	if cfg.Warmup {
		wAddrs := addrs
		if len(cfg.WarmupTargets) > 0 {
			if len(cfg.WarmupTargets) != len(addrs) {
				return nil, fmt.Errorf("warmup_targets lists %d servers for %d targets: give one per target, "+
					"in the same order (--warmup-target)", len(cfg.WarmupTargets), len(addrs))
			}
			wAddrs = cfg.WarmupTargets
		}
		warm, err = warmup(ctx, cfg, opts, p, rg, wAddrs, values, log)
		if err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	src, err := opts.Open()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	base, late, err := waitStart(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	cpu0 := processCPU()
	e, err := newEngine(ctx, cfg, override, rg, addrs, values, p.openLoop(), base, "replay", log)
	if err != nil {
		return nil, err
	}
	stopProgress := startProgress(e, opts.Progress, opts.Metrics)
	derr := e.dispatch(src, p)
	e.wait()
	stopProgress()
	r := e.report()
	r.ClientCPUSeconds = processCPU() - cpu0
	r.Mode, r.Source, r.Shard = cfg.Mode, opts.SourceName, cfg.Shard
	r.Targets = append([]string(nil), cfg.Targets...)
	r.OpenLoop, r.TargetRate = p.openLoop(), cfg.Rate
	r.StartLateSeconds = late.Seconds()
	r.TimeSeries = e.series
	r.Warmup = warm
	log.Info("replay finished", "ops", r.Ops, "ops_per_sec", r.OpsPerSec, "errors", r.Errors)
	if derr != nil {
		return r, derr
	}
	if err := src.Err(); err != nil {
		return r, fmt.Errorf("cannot read the source: %w", err)
	}
	return r, nil
}

// waitStart waits until cfg.StartAt, when set, and returns the start of the measured window: StartAt itself, so
// that every node of a run measures from the same instant, or now, with how late that is, for a node that got
// there late (its warmup or its start took too long). Without StartAt the window starts now.
func waitStart(ctx context.Context, cfg configs.Replay, log *slog.Logger) (time.Time, time.Duration, error) {
	at, err := cfg.StartTime()
	if err != nil || at.IsZero() {
		return time.Now(), 0, err
	}
	wait := time.Until(at)
	if wait <= 0 {
		log.Warn("late for --start-at: measuring starts now instead", "start_at", at.Format(time.RFC3339Nano),
			"late", (-wait).Round(time.Millisecond))
		return time.Now(), -wait, nil
	}
	log.Info("waiting for --start-at", "start_at", at.Format(time.RFC3339Nano), "wait", wait.Round(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		// at itself has no monotonic clock reading, and the run clock must not jump with the wall clock: the
		// same instant, taken from now.
		now := time.Now()
		return now.Add(at.Sub(now)), 0, nil
	case <-ctx.Done():
		return time.Time{}, 0, ctx.Err()
	}
}

// processCPU returns the user and system CPU time the process has used, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// newEngine returns an engine whose run clock counts from base. what names the run in logs ("replay", "warmup").
func newEngine(ctx context.Context, cfg configs.Replay, override mcproto.Protocol, rg *ring.Ring, addrs []string,
	values *workload.Values, open bool, base time.Time, what string, log *slog.Logger) (*engine, error) {
	e := &engine{
		ctx:            ctx,
		base:           base,
		dials:          dialLog{what: what, log: log},
		pipeline:       cfg.Pipeline,
		timeout:        cfg.Timeout.D(),
		connectTimeout: cfg.ConnectTimeout.D(),
		values:         values,
		inflightCap:    max(cfg.Pipeline*2, 64),
		override:       override,
		ring:           rg,
		addrs:          addrs,
		conns:          map[connKey]*conn{},
		pin:            cfg.CPUAffinity,
		batch:          cfg.SchedBatch,
		turns:          make([]*dialTurns, len(addrs)),
	}
	if open {
		e.inflightCap = openLoopInflight
		e.open = true
		return e, nil
	}
	if useEventLoop(cfg) {
		ev, err := startEvClient(e, log)
		if err != nil {
			return nil, fmt.Errorf("cannot start the client event loops: %w", err)
		}
		e.ev = ev
	}
	return e, nil
}

// useEventLoop reports whether a closed-loop run with cfg uses event loops: when asked for, or with "auto" on
// Linux. Before the loops ran under SCHED_BATCH, goroutines were ahead of them from a pipeline depth of about 16
// and "auto" switched there; since, the loops have been ahead at every depth measured, 1 to 128, with 4, 16 and 64
// connections (docs/BENCHMARKS.md).
func useEventLoop(cfg configs.Replay) bool {
	switch cfg.Engine {
	case configs.EngineEventLoop:
		return true
	case configs.EngineAuto:
		return haveEventLoops
	}
	return false
}

// wait waits for every connection to finish, then stops the event loops.
func (e *engine) wait() {
	e.wg.Wait()
	if e.ev != nil {
		e.ev.close()
	}
}

// report adds up every connection's figures.
func (e *engine) report() *Report {
	conns := e.snapshot()
	all := make([]*stats, len(conns))
	var last int64
	for i, c := range conns {
		all[i] = c.st
		if e.open {
			last = max(last, c.lastSend.Load())
		} else {
			last = max(last, c.lastDone.Load())
		}
	}
	r := buildReport(all)
	r.Skipped += e.skipped.Load()
	r.DialErrors = e.dials.report()
	for _, c := range conns {
		r.BytesSent += c.bytesOut.Load()
		r.BytesReceived += c.bytesIn.Load()
	}
	r.StartUnixNs = e.base.UnixNano()
	r.DurationSeconds = float64(last) / 1e9
	if r.DurationSeconds > 0 {
		r.OpsPerSec = float64(r.Ops) / r.DurationSeconds
	}
	if e.open {
		var fit ols
		for _, c := range conns {
			fit.merge(&c.sends)
		}
		if rate := fit.rate(); rate > 0 {
			r.OpsPerSec = rate
		}
	}
	return r
}

// group is a text multi-key get whose keys the dispatcher is reading: its id (the index of its first key in the
// source, plus one), the KeyIndex it expects next and its KeyCount.
type group struct {
	id          uint64
	next, count uint16
}

// dispatch reads src and hands each request to its connection, then closes every connection's input.
func (e *engine) dispatch(src workload.Source, p plan) error {
	defer func() {
		for _, c := range e.snapshot() {
			close(c.in)
			c.kick()
		}
	}()
	var (
		ev        profile.Event
		pending   = map[*conn]*batch{}
		clients   = map[uint64]int{} // recorded connection → client connection
		arrivals  = workload.NewRand(workload.Mix64(p.seed ^ 0x3c6ef372fe94f82b))
		t0        int64
		ttlShift  int64
		started   bool
		next      float64 // open loop at a rate: next intended time, ns
		index     uint64  // requests read from the source
		handed    uint64  // requests handed to this node's connections
		rr        int
		keyBuf    = make([]byte, 0, workload.MaxKeyLen)
		groups    = map[uint64]group{} // recorded connection → the multi-key get whose keys are being read
		closed    = p.speed == 0 && p.rate == 0
		durNs     = int64(p.duration)
		stopCheck int
	)
	if closed && durNs > 0 {
		e.stopAt = durNs
	}
	// open reports whether o is a multi-key get that may still get keys: its batch is not handed yet.
	open := func(o *op) bool { return o.group != 0 && groups[o.ev.Conn].id == o.group }
	// flushAll hands every pending batch whose connection can take it now, but those ending in an open multi-key
	// get: its further keys come soon in the source (the dispatcher is about to wait for a connection or for the
	// time to send, and the keys of one request were recorded together).
	flushAll := func() {
		for c, b := range pending {
			if len(b.ops) > 0 {
				if open(&b.ops[len(b.ops)-1]) {
					continue
				}
				select {
				case c.in <- b:
					delete(pending, c)
					c.kick()
				default:
				}
			}
		}
	}
	hand := func(c *conn, b *batch) bool {
		select {
		case c.in <- b:
			c.kick()
			return true
		default:
		}
		flushAll()
		select {
		case c.in <- b:
			c.kick()
			return true
		case <-e.ctx.Done():
			return false
		}
	}
	for src.Next(&ev) {
		if e.ctx.Err() != nil {
			break
		}
		// --ops and the arrival schedule count the source's requests before sharding, so that every node
		// of a sharded run agrees on them.
		if p.ops > 0 && index >= p.ops {
			break
		}
		idx := index
		index++
		if !started {
			started = true
			t0 = ev.Time
			ttlShift = time.Now().Unix() - ev.Time/int64(time.Second)
		}
		intended := int64(-1)
		switch {
		case p.rate > 0:
			if idx > 0 {
				if p.uniform {
					next += 1e9 / p.rate
				} else {
					next += arrivals.Exp() * 1e9 / p.rate
				}
			}
			intended = int64(next)
		case p.speed > 0:
			intended = int64(float64(ev.Time-t0) / p.speed)
		}
		if durNs > 0 {
			if intended >= durNs {
				break
			}
			if closed {
				if stopCheck++; stopCheck%256 == 0 && e.now() >= durNs {
					break
				}
			}
		}
		// This node's share.
		if p.shards > 1 {
			var h uint64
			switch {
			case p.trace:
				h = workload.Mix64(ev.Conn)
			case ev.Cmd.HasKey():
				h = workload.Mix64(ev.KeyHash ^ 0x51ed270b27e3a9f1)
			default:
				h = idx
			}
			if int(h%uint64(p.shards)) != p.shard {
				continue
			}
		}
		w, ok := toWire(&ev, e.override)
		if !ok {
			e.skipped.Add(1)
			continue
		}
		if ev.TTL > ttlRelativeMax {
			ev.TTL += ttlShift // absolute exptimes move with the replay
		}
		// Client connection.
		var client int
		switch {
		case p.trace:
			ci, ok := clients[ev.Conn]
			if !ok {
				ci = len(clients)
				clients[ev.Conn] = ci
			}
			client = ci
			if p.connections > 0 {
				client = ci % p.connections
			}
		case ev.Cmd.HasKey():
			client = int(workload.Mix64(ev.KeyHash) % uint64(p.connections))
		default:
			client = rr % p.connections
			rr++
		}
		// Target.
		server := 0
		if len(e.addrs) > 1 {
			if w.cmd.HasKey() {
				keyBuf = workload.AppendKeyNS(keyBuf[:0], ev.NSHash, ev.KeyHash, int(ev.KeySize))
				server = e.ring.Pick(keyBuf)
			} else {
				server = client % len(e.addrs)
			}
			if server < 0 {
				server = 0
			}
		}
		c := e.conn(connKey{client: client, fam: family(w.proto), server: server})
		// A text multi-key get goes out as one request, as its client sent it (one per server when its keys
		// route to several): its further keys join the op of its first key on that connection, and are sent
		// at that op's time.
		gid := uint64(0)
		if p.trace && ev.KeyCount > 1 && w.proto == mcproto.ProtoText && w.cmd.IsRetrieval() {
			g := groups[ev.Conn]
			if g.id != 0 && g.next == ev.KeyIndex && g.count == ev.KeyCount {
				g.next++
			} else {
				// The first key, or a key out of place (events were lost): the keys from here on go together.
				g = group{id: idx + 1, next: ev.KeyIndex + 1, count: ev.KeyCount}
			}
			gid = g.id
			if g.next < g.count {
				groups[ev.Conn] = g
			} else {
				delete(groups, ev.Conn)
			}
		} else if len(groups) > 0 {
			delete(groups, ev.Conn) // another request: a multi-key get that lost its last keys is over
		}
		b := pending[c]
		if gid != 0 && b != nil && len(b.ops) > 0 {
			if last := &b.ops[len(b.ops)-1]; last.group == gid && last.wire == w {
				start := len(b.more) - len(last.more)
				b.more = append(b.more, ev)
				last.more = b.more[start:]
				handed++
				if len(b.ops) >= batchSize && !open(last) {
					delete(pending, c)
					if !hand(c, b) {
						break
					}
				}
				continue
			}
		}
		if intended >= 0 {
			if wait := time.Duration(intended-e.now()) - lookahead; wait > 0 {
				flushAll()
				select {
				case <-time.After(wait):
				case <-e.ctx.Done():
				}
			}
		}
		b = pending[c]
		if b == nil {
			b = e.newBatch()
			pending[c] = b
		}
		b.ops = append(b.ops, op{ev: ev, intended: intended, wire: w, seq: handed, group: gid})
		handed++
		if len(b.ops) >= batchSize && !open(&b.ops[len(b.ops)-1]) {
			delete(pending, c)
			if !hand(c, b) {
				break
			}
		}
	}
	for c, b := range pending {
		delete(pending, c) // before hand: its flushAll must not hand b a second time
		if len(b.ops) > 0 && !hand(c, b) {
			break
		}
	}
	return nil
}
