// Package proxy is membench's inline memcached proxy: gnet v2 event loops that forward every byte between
// clients and memcached unchanged, frame both directions with mcproto, pair requests with responses, and hand
// each pair, anonymized, to a profile queue that never blocks the loop.
//
// Each client connection gets its own upstream connection, dialed with a timeout off the loop and enrolled
// into the client's own event loop, so both sides of a link are only ever touched by one goroutine: ordering,
// quiet mode and opaque semantics hold exactly, and no locks are needed on the hot path.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/panjf2000/gnet/v2"
)

// Options are the proxy's collaborators, built by the caller from its config.
type Options struct {
	// Anonymizer hashes keys for recording. Nil with a nil Queue means a plain proxy.
	Anonymizer *profile.Anonymizer
	// Queue receives recorded events; nil records nothing.
	Queue *profile.Queue
	// Logger receives connection-level events (never per request). Nil discards.
	Logger *slog.Logger
}

// Server is a running proxy.
type Server struct {
	cfg  configs.Proxy
	log  *slog.Logger
	anon *profile.Anonymizer
	// hasher is the anonymizer, or a cheap non-recording hash so that multi-get pairing still works when
	// nothing is recorded.
	hasher      mcproto.KeyHasher
	queue       atomic.Pointer[profile.Queue]
	sampleBound uint64 // events with KeyHash >= sampleBound are sampled out (math.MaxUint64: keep all)

	eng      gnet.Engine
	booted   chan struct{}
	done     chan error
	draining atomic.Bool
	stopped  atomic.Bool

	mu          sync.Mutex
	links       map[uint64]*link
	poolClients map[uint64]*pclient
	pool        *pool // nil in inline mode
	seq         atomic.Uint64

	upNet, upAddr string
	up            *upstreamBook // inline mode: what the upstream is
	poolInfo      upstreamInfo  // pool mode: what the servers said at start (rules, item_size_max)
	outage        outage        // inline mode: failed dials, logged once per outage
	conns         atomic.Int64  // open client connections, for max_connections

	flow     flowState
	stopFlow context.CancelFunc
}

// New checks cfg and prepares a proxy; Start runs it.
func New(cfg configs.Proxy, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    opts.Logger,
		anon:   opts.Anonymizer,
		booted: make(chan struct{}),
		flow:   flowState{wake: make(chan struct{}, 1)},
		done:   make(chan error, 1),
		links:  map[uint64]*link{},

		poolClients: map[uint64]*pclient{},
		upNet:       "tcp",
		upAddr:      cfg.Upstream,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Queue != nil {
		if opts.Anonymizer == nil {
			return nil, errors.New("BUG: proxy recording needs an anonymizer")
		}
		s.queue.Store(opts.Queue)
	}
	if s.anon != nil {
		s.hasher = s.anon
	} else {
		s.hasher = mcproto.FNVHasher{}
	}
	s.up = &upstreamBook{network: s.upNet, addr: s.upAddr, timeout: time.Duration(cfg.ConnectTimeout)}
	if cfg.Pool.Enabled() {
		p, err := newPool(s, cfg.Pool)
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	s.sampleBound = math.MaxUint64
	if cfg.SampleRate < 1 {
		s.sampleBound = uint64(cfg.SampleRate * (1 << 64))
	}
	return s, nil
}

// Start runs the event loops in the background and returns once the listeners are up.
func (s *Server) Start() error {
	s.learnUpstreams()
	addrs := []string{"tcp://" + s.cfg.Listen}
	if s.cfg.UnixSocket != "" {
		addrs = append(addrs, "unix://"+s.cfg.UnixSocket)
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{l: s.log}),
	}
	if s.cfg.EventLoops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(s.cfg.EventLoops))
	}
	go func() {
		var err error
		if len(addrs) == 1 {
			err = gnet.Run(s, addrs[0], opts...)
		} else {
			err = gnet.Rotate(s, addrs, opts...)
		}
		s.done <- err
	}()
	select {
	case <-s.booted:
		ctx, cancel := context.WithCancel(context.Background())
		s.stopFlow = cancel
		go s.checker(ctx)
		return nil
	case err := <-s.done:
		return fmt.Errorf("cannot start proxy on %s (set listen / --listen): %w", s.cfg.Listen, err)
	}
}

// learnUpstreams asks the upstream (each pool server) what it is before any client is accepted, so that the
// first requests are framed by its release's rules; one that does not answer now is asked again when a
// connection to it opens (inline mode) and is framed by the newest rules meanwhile.
func (s *Server) learnUpstreams() {
	if s.pool != nil {
		var servers []string
		for _, sv := range s.pool.state.Load().servers {
			servers = append(servers, sv.Addr)
		}
		info, ok := askPool(servers, time.Duration(s.cfg.ConnectTimeout))
		if !ok {
			s.log.Warn("no pool server answers; their requests fail until they do (set pool.servers / --upstream)")
		}
		s.poolInfo = info
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Duration(s.cfg.ConnectTimeout))
		info, ok := s.up.info(ctx)
		cancel()
		if !ok {
			s.log.Warn("the upstream does not answer; clients get SERVER_ERROR upstream unavailable until it does (set upstream / --upstream)",
				"upstream", s.cfg.Upstream)
		} else {
			s.log.Info("upstream", "upstream", s.cfg.Upstream, "version", info.version, "rules", info.dialect.String(),
				"binary_only", info.binaryOnly, "auth", info.authWanted)
		}
	}
}

// SetQueue swaps the profile queue (profile rotation) and returns the previous one, which the caller closes.
// Events already handed to the old queue are written to the old file.
func (s *Server) SetQueue(q *profile.Queue) *profile.Queue {
	return s.queue.Swap(q)
}

// Shutdown stops accepting connections, waits until no request is waiting for its response (at most
// drain_timeout or until ctx ends), then stops the event loops and closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	deadline := time.Now().Add(time.Duration(s.cfg.DrainTimeout))
	for time.Now().Before(deadline) && ctx.Err() == nil && s.InFlight() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if s.stopped.Swap(true) {
		return nil
	}
	if s.stopFlow != nil {
		defer s.stopFlow()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.eng.Stop(stopCtx)
	if runErr := <-s.done; runErr != nil && err == nil {
		err = runErr
	}
	return err
}

// InFlight returns the number of requests forwarded upstream whose response has not come back yet.
func (s *Server) InFlight() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.links {
		n += l.inflight.Load()
	}
	for _, cl := range s.poolClients {
		n += cl.inflight.Load()
	}
	return n
}

// Reload replaces the pool configuration (servers, weights, hash, shadow) without dropping client
// connections. An invalid configuration is refused and the running one stays.
func (s *Server) Reload(cfg configs.Pool) error {
	if s.pool == nil {
		return errors.New("not in pool mode: nothing to reload (configure [pool] servers)")
	}
	if !cfg.Enabled() {
		return errors.New("the new config has no pool servers; keeping the running pool")
	}
	return s.pool.reload(cfg)
}

// Connections returns the number of open client connections.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// connClosed counts a client connection out (this Server's, for max_connections, and the process's metric).
func (s *Server) connClosed() {
	s.conns.Add(-1)
	openConns.Add(-1)
}

// record is the Pairer's Emit: it anonymizes nothing itself (keys were hashed by the Pairer through the
// anonymizer) and never blocks.
func (s *Server) record(p *mcproto.Pair) {
	responsesByStat[p.Status].Inc()
	if p.RespTime > p.ReqTime && p.Status != mcproto.StatusLost {
		latency.Update(float64(p.RespTime-p.ReqTime) / 1e9)
	}
	q := s.queue.Load()
	if q == nil {
		return
	}
	switch p.Cmd {
	case mcproto.CmdWatch, mcproto.CmdLruCrawler:
		return // streams are forwarded, not recorded
	}
	if p.HasKey && p.KeyHash >= s.sampleBound {
		eventsSampled.Inc()
		return
	}
	ev := profile.FromPair(p)
	if q.TryPut(&ev) {
		eventsRecorded.Inc()
	} else {
		eventsDropped.Inc()
	}
}

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

// OnOpen handles both sides: a client connection gets a link and an upstream dial; an upstream connection
// enrolled by that dial completes its link.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch v := c.Context().(type) {
	case *upside:
		return nil, s.upstreamOpened(v, c)
	case *upConn:
		return nil, v.opened(c)
	}
	if s.draining.Load() {
		connsRefused.Inc()
		return nil, gnet.Close
	}
	if s.conns.Load() >= int64(s.cfg.MaxConnections) {
		connsRefused.Inc()
		return []byte("ERROR Too many open connections\r\n"), gnet.Close
	}
	s.conns.Add(1)
	openConns.Add(1)
	connsAccepted.Inc()
	if s.pool != nil {
		cl := s.newPoolClient(c)
		c.SetContext(cl)
		s.mu.Lock()
		s.poolClients[cl.id] = cl
		s.mu.Unlock()
		return nil, gnet.None
	}
	l := s.newLink(c)
	c.SetContext(l)
	s.mu.Lock()
	s.links[l.id] = l
	s.mu.Unlock()
	s.dial(l)
	return nil, gnet.None
}

// dial connects to the upstream off the event loop, with the configured timeout, then enrolls the connection
// into the client's event loop.
func (s *Server) dial(l *link) {
	el := l.client.c.EventLoop()
	timeout := time.Duration(s.cfg.ConnectTimeout)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		info, _ := s.up.info(ctx) // unknown (the question failed): the newest release's rules
		cancel()
		nc, err := net.DialTimeout(s.upNet, s.upAddr, timeout)
		if err == nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			_, err = el.Enroll(gnet.NewContext(context.Background(), &upside{l: l, info: info}), nc)
			if err != nil {
				nc.Close()
			} else {
				s.outage.ok(s.log, s.cfg.Upstream)
			}
		}
		if err != nil {
			upConnectErrors.Inc()
			s.up.forget() // a server that comes back may be another release
			fail := err
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				s.upstreamFailed(l, fail)
				return nil
			}))
		}
	}()
}

// OnTraffic dispatches to the link's client or upstream side.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	switch v := c.Context().(type) {
	case *link:
		return v.fromClient()
	case *upside:
		return v.l.fromUpstream(c)
	case *pclient:
		return v.fromClient()
	case *upConn:
		return v.fromUpstream()
	}
	return gnet.Close
}

// OnClose tears down the other side of the link. It runs before gnet closes the fd: from here on nothing may
// write to c (endpoint.observeClose makes sure of it).
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	switch v := c.Context().(type) {
	case *link:
		v.clientClosed(err)
	case *upside:
		v.l.upstreamClosed(c)
	case *pclient:
		v.closedByClient(err)
	case *upConn:
		v.closed()
	}
	return gnet.None
}

// OnTick closes idle client connections and clients whose one request has been arriving for longer than
// request_timeout (slow-loris clients). It runs on its own goroutine: it reads only atomics and closes through
// gnet's Close, which is safe from any goroutine and ignores connections gnet already closed.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	now := time.Now()
	idleCut, reqCut := int64(math.MinInt64), int64(math.MinInt64)
	if s.cfg.IdleTimeout > 0 {
		idleCut = now.Add(-time.Duration(s.cfg.IdleTimeout)).UnixNano()
	}
	if s.cfg.RequestTimeout > 0 {
		reqCut = now.Add(-time.Duration(s.cfg.RequestTimeout)).UnixNano()
	}
	check := func(c gnet.Conn, lastActive, reqStart int64) {
		switch {
		case lastActive < idleCut:
			connsIdleClosed.Inc()
			_ = c.Close()
		case reqStart != 0 && reqStart < reqCut:
			connsSlowClosed.Inc()
			_ = c.Close()
		}
	}
	s.mu.Lock()
	for _, l := range s.links {
		check(l.client.c, l.lastActive.Load(), l.reqStart.Load())
	}
	for _, cl := range s.poolClients {
		check(cl.c, cl.lastActive.Load(), cl.reqStart.Load())
	}
	s.mu.Unlock()
	return time.Second, gnet.None
}

func (s *Server) OnShutdown(gnet.Engine) {}
