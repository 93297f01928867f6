// Pool mode: the proxy in front of several memcached servers, as twemproxy or mcrouter would sit on an
// application host. Keys are routed by a ketama ring (package ring) that places them where twemproxy does.
//
// Upstream connections are shared by the clients of an event loop (connections_per_server each) and carry
// many clients' requests pipelined. Every forwarded request gets exactly one answer, so each upstream
// connection matches answers to requests in plain FIFO order: requests whose answer memcached may leave out
// (text noreply, meta q, binary quiet opcodes) are forwarded in their loud form and the answer the client
// would not have received is dropped here. Answers go back to each client in its own request order through
// per-client slots. This file holds the pool-wide state: the ring, server health and ejection, shadowing, and
// reload.
package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/configs"
	"github.com/membench/membench/ring"
	"github.com/panjf2000/gnet/v2"
)

// poolState is one immutable generation of the pool configuration; a reload or an ejection publishes a new one.
type poolState struct {
	version uint64
	cfg     configs.Pool
	servers []ring.Server
	ring    *ring.Ring // without ejected servers when auto_eject_hosts is on
	down    []bool     // per server: failing (ejected, or failing fast)
	health  []*health  // per server, shared across generations by address

	shadowServers []ring.Server
	shadow        *ring.Ring // nil without shadowing
	shadowBound   uint64     // copy keys whose shadow-selection hash is below this
}

// health tracks one server's failures. failures is touched on event loops; transitions take pool.mu.
type health struct {
	addr string
	// ctx ends when a reload removes the server (or the proxy stops): its probe stops, and it can no longer go
	// down or come back. A server added again gets a new health.
	ctx       context.Context
	cancel    context.CancelFunc
	failures  atomic.Int32
	down      atomic.Bool
	probing   atomic.Bool
	requests  *metrics.Counter
	errors    *metrics.Counter
	ejections *metrics.Counter
}

type pool struct {
	s       *Server
	mu      sync.Mutex // serialises health transitions and reloads
	state   atomic.Pointer[poolState]
	health  map[string]*health
	version uint64
	loops   sync.Map // gnet.EventLoop → *poolLoop
}

var (
	shadowCopied  = Metrics.NewCounter(`membench_proxy_shadow_requests_total{result="sent"}`)
	shadowDropped = Metrics.NewCounter(`membench_proxy_shadow_requests_total{result="dropped"}`)
	poolTimeouts  = Metrics.NewCounter(`membench_proxy_upstream_errors_total{kind="timeout"}`)
)

func newPool(s *Server, cfg configs.Pool) (*pool, error) {
	p := &pool{s: s, health: map[string]*health{}}
	if err := p.reload(cfg); err != nil {
		return nil, err
	}
	go p.timeoutTicker()
	return p, nil
}

func (p *pool) healthFor(addr string) *health {
	h := p.health[addr]
	if h == nil {
		h = &health{
			addr:      addr,
			requests:  Metrics.GetOrCreateCounter(`membench_proxy_pool_requests_total{server="` + addr + `"}`),
			errors:    Metrics.GetOrCreateCounter(`membench_proxy_pool_errors_total{server="` + addr + `"}`),
			ejections: Metrics.GetOrCreateCounter(`membench_proxy_pool_ejections_total{server="` + addr + `"}`),
		}
		h.ctx, h.cancel = context.WithCancel(context.Background())
		p.health[addr] = h
	}
	return h
}

// reload validates cfg and publishes it as a new generation, then has every event loop take it up. On error
// the old generation stays.
func (p *pool) reload(cfg configs.Pool) error {
	if err := p.publishConfig(cfg); err != nil {
		return err
	}
	// A loop takes up a new generation when its clients send requests; a quiet loop would keep its connections
	// to removed servers open, so ask every loop now.
	p.loops.Range(func(_, v any) bool {
		pl := v.(*poolLoop)
		_ = pl.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			pl.refresh()
			return nil
		}))
		return true
	})
	return nil
}

// publishConfig builds the generation for cfg, publishes it and forgets the servers cfg no longer names.
func (p *pool) publishConfig(cfg configs.Pool) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	servers, err := cfg.RingServers()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &poolState{cfg: cfg, servers: servers}
	live := map[string]bool{}
	for _, sv := range servers {
		st.health = append(st.health, p.healthFor(sv.Addr))
		live[sv.Addr] = true
	}
	if len(cfg.Shadow.Servers) > 0 && cfg.Shadow.Fraction > 0 {
		st.shadowServers, _ = cfg.ShadowServers()
		if st.shadow, err = ring.New(st.shadowServers, cfg.Shadow.Hash, ring.Options{}); err != nil {
			return err
		}
		st.shadowBound = uint64(cfg.Shadow.Fraction * (1 << 64))
		if cfg.Shadow.Fraction >= 1 {
			st.shadowBound = ^uint64(0)
		}
	}
	if err := p.publishLocked(st); err != nil {
		return err
	}
	// Removed servers: stop their probes; a late probe cannot bring them back (readmit checks ctx).
	for addr, h := range p.health {
		if !live[addr] {
			h.cancel()
			delete(p.health, addr)
		}
	}
	return nil
}

// publishLocked fills st's ring from the servers' health and makes it current. p.mu is held.
func (p *pool) publishLocked(st *poolState) error {
	full, err := ring.New(st.servers, st.cfg.Hash, ring.Options{HashTag: st.cfg.HashTag})
	if err != nil {
		return err
	}
	st.down = make([]bool, len(st.servers))
	for i, h := range st.health {
		st.down[i] = h.down.Load()
	}
	st.ring = full
	if st.cfg.AutoEject {
		if st.ring, err = full.Without(st.down); err != nil {
			return err
		}
	}
	p.version++
	st.version = p.version
	p.state.Store(st)
	return nil
}

// republishLocked rebuilds the current generation after a health change. p.mu is held.
func (p *pool) republishLocked() {
	st := *p.state.Load()
	_ = p.publishLocked(&st)
}

// ok records a successful answer from a server.
func (h *health) ok() {
	if h.failures.Load() != 0 {
		h.failures.Store(0)
	}
}

// fail records a failure (connect error, timeout, closed connection); enough in a row take the server down for
// server_retry_timeout, after which a probe decides whether it returns. A server a reload removed (its
// connections may still fail the requests they carried) is not taken down.
func (p *pool) fail(h *health) {
	h.errors.Inc()
	n := h.failures.Add(1)
	st := p.state.Load()
	if int(n) < st.cfg.FailureLimit || h.down.Load() || h.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if h.ctx.Err() != nil || !h.down.CompareAndSwap(false, true) {
		return
	}
	h.ejections.Inc()
	st = p.state.Load()
	p.s.log.Warn("pool server down", "server", h.addr, "failures", n, "auto_eject", st.cfg.AutoEject,
		"retry_in", time.Duration(st.cfg.RetryTimeout))
	p.republishLocked()
	p.scheduleProbe(h)
}

// scheduleProbe starts h's probe loop unless it runs already.
func (p *pool) scheduleProbe(h *health) {
	if !h.probing.CompareAndSwap(false, true) {
		return
	}
	go p.probeLoop(h)
}

// probeLoop waits server_retry_timeout, then checks the server with a version command, until the server
// answers; it stops early when a reload removes the server or the proxy stops.
func (p *pool) probeLoop(h *health) {
	defer h.probing.Store(false)
	for {
		wait := time.NewTimer(time.Duration(p.state.Load().cfg.RetryTimeout))
		select {
		case <-h.ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		if p.s.stopped.Load() {
			return
		}
		if probe(h.ctx, h.addr, time.Duration(p.s.cfg.ConnectTimeout)) == nil {
			p.readmit(h)
			return
		}
	}
}

// readmit brings a server back after its probe answered, unless a reload removed it meanwhile.
func (p *pool) readmit(h *health) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h.ctx.Err() != nil {
		return
	}
	h.failures.Store(0)
	h.down.Store(false)
	p.s.log.Info("pool server back", "server", h.addr)
	p.republishLocked()
}

// stopProbes ends every probe loop when the proxy stops.
func (p *pool) stopProbes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.health {
		h.cancel()
	}
}

// probe asks a server whether it is back (askUpstream: a server that wants a login, or speaks only the binary
// protocol, counts as answering); ctx ending (the server removed by a reload) abandons it.
func probe(ctx context.Context, addr string, timeout time.Duration) error {
	_, err := askUpstream(ctx, "tcp", addr, timeout)
	return err
}

// timeoutTicker asks every event loop to fail requests older than the pool timeout.
func (p *pool) timeoutTicker() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if p.s.stopped.Load() {
			p.stopProbes()
			return
		}
		st := p.state.Load()
		if st.cfg.Timeout <= 0 {
			continue
		}
		p.loops.Range(func(_, v any) bool {
			pl := v.(*poolLoop)
			if pl.oldest.Load() != 0 && time.Now().UnixNano()-pl.oldest.Load() > int64(st.cfg.Timeout) {
				_ = pl.el.Execute(context.Background(), gnet.RunnableFunc(pl.checkTimeouts))
			}
			return true
		})
	}
}

// loop returns the per-event-loop state of el, creating it on first use.
func (p *pool) loop(el gnet.EventLoop) *poolLoop {
	if v, ok := p.loops.Load(el); ok {
		return v.(*poolLoop)
	}
	pl := &poolLoop{p: p, el: el, byAddr: map[string]*upServer{}, shadowByAddr: map[string]*upServer{}}
	pl.flushFn = pl.flushDirty
	v, _ := p.loops.LoadOrStore(el, pl)
	return v.(*poolLoop)
}
