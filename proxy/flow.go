// Flow control: bounded memory per connection and for the whole proxy, by back-pressure rather than resets.
//
//   - A client whose upstream does not take its requests (memcached stopped reading) stops being read, so TCP
//     holds it back as memcached itself would; so does a client that does not read its answers (no new requests
//     are taken from it).
//   - In inline mode, an upstream whose client does not read its answers stops being read too, so memcached's
//     answers wait in the kernel instead of the proxy's heap.
//   - Reading resumes below half of backpressure_bytes. gnet tells nobody when a buffer drains, so while any
//     connection is paused a checker asks each event loop to look again every millisecond.
//   - The bytes held in all connection buffers are counted; past max_buffered_bytes, clients holding more than
//     backpressure_bytes of unread answers are closed (counted in
//     membench_proxy_connections_buffer_closed_total{reason="budget"}).
package proxy

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

var (
	pausesClient   = Metrics.NewCounter(`membench_proxy_read_pauses_total{side="client"}`)
	pausesUpstream = Metrics.NewCounter(`membench_proxy_read_pauses_total{side="upstream"}`)
	budgetClosed   = Metrics.NewCounter(`membench_proxy_connections_buffer_closed_total{reason="budget"}`)

	bufferedBytes atomic.Int64 // bytes in every connection buffer of every Server, as last seen
	_             = Metrics.NewGauge(`membench_proxy_buffered_bytes`, func() float64 {
		return float64(bufferedBytes.Load())
	})
)

// BufferedBytes returns the bytes the proxy's connection buffers held when last looked at.
func BufferedBytes() int64 { return bufferedBytes.Load() }

// arriving notes whether a request is partly in (started at now, unless it already had begun) for
// request_timeout.
func arriving(start *atomic.Int64, partial bool, now int64) {
	switch {
	case !partial:
		if start.Load() != 0 {
			start.Store(0)
		}
	case start.Load() == 0:
		start.Store(now)
	}
}

// valve is one connection's read switch. Only the connection's event loop uses it.
type valve struct {
	paused bool
	broken bool // pausing failed once: this connection is not paused again
}

// set pauses or resumes reading of the live connection c; it reports whether c is now paused.
func (v *valve) set(c gnet.Conn, pause bool) bool {
	switch {
	case pause && !v.broken:
		if !setReading(c, false) {
			v.broken = true
			v.paused = false
			return false
		}
		v.paused = true
	case !pause && v.paused:
		v.paused = false
		_ = setReading(c, true)
		_ = c.Wake(nil) // bytes read before the pause wait in gnet's inbound buffer
	}
	return v.paused
}

// account replaces a connection's share of bufferedBytes (*last) by now.
func account(last *int64, now int64) {
	if d := now - *last; d != 0 {
		bufferedBytes.Add(d)
		*last = now
	}
}

// flowLoop is one event loop's list of paused connections; only the loop's goroutine touches it.
type flowLoop struct {
	links   map[*link]struct{}
	clients map[*pclient]struct{}
	check   gnet.RunnableFunc
}

// flowState is a Server's part of flow control.
type flowState struct {
	loops  sync.Map // gnet.EventLoop → *flowLoop
	paused atomic.Int64
	wake   chan struct{}
}

func (s *Server) flowLoop(el gnet.EventLoop) *flowLoop {
	if v, ok := s.flow.loops.Load(el); ok {
		return v.(*flowLoop)
	}
	fl := &flowLoop{links: map[*link]struct{}{}, clients: map[*pclient]struct{}{}}
	fl.check = func(context.Context) error {
		for l := range fl.links {
			l.balance()
		}
		for cl := range fl.clients {
			cl.balance()
		}
		return nil
	}
	v, _ := s.flow.loops.LoadOrStore(el, fl)
	return v.(*flowLoop)
}

// watchPaused has the checker look at a loop's paused connections until they resume.
func (s *Server) watchPaused(fl *flowLoop, l *link, cl *pclient, paused bool) {
	var had bool
	if l != nil {
		_, had = fl.links[l]
		if paused {
			fl.links[l] = struct{}{}
		} else {
			delete(fl.links, l)
		}
	} else {
		_, had = fl.clients[cl]
		if paused {
			fl.clients[cl] = struct{}{}
		} else {
			delete(fl.clients, cl)
		}
	}
	switch {
	case paused && !had:
		if s.flow.paused.Add(1) == 1 {
			select {
			case s.flow.wake <- struct{}{}:
			default:
			}
		}
	case !paused && had:
		s.flow.paused.Add(-1)
	}
}

// checker runs until ctx ends: while connections are paused it has their loops look at them every millisecond;
// after a burst of buffered bytes it hands the freed memory back to the operating system.
func (s *Server) checker(ctx context.Context) {
	peak, lastFree := int64(0), time.Time{}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if s.flow.paused.Load() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.flow.wake:
			case <-time.After(time.Second):
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s.flow.loops.Range(func(k, v any) bool {
				fl := v.(*flowLoop)
				_ = k.(gnet.EventLoop).Execute(context.Background(), fl.check)
				return true
			})
		}
		b := bufferedBytes.Load()
		peak = max(peak, b)
		if peak > 64<<20 && b < peak/8 && time.Since(lastFree) > 10*time.Second {
			// gnet keeps freed buffers in sync.Pools, which survive one collection in their victim cache; an idle
			// proxy may not collect for a long time after a burst. Two collections free them for good.
			runtime.GC()
			debug.FreeOSMemory()
			peak, lastFree = b, time.Now()
		}
	}
}

// balance applies back-pressure to a link: run after every event on either side and by the checker.
func (l *link) balance() {
	if l.retired || l.up == nil || l.client.closed {
		if l.clientValve.paused || l.upValve.paused {
			l.clientValve.paused, l.upValve.paused = false, false
			l.s.watchPaused(l.s.flowLoop(l.client.c.EventLoop()), l, nil, false)
		}
		return
	}
	hi := l.s.cfg.PauseBytes()
	lo := hi / 2
	upOut := l.up.OutboundBuffered()
	clOut := l.client.c.OutboundBuffered()
	account(&l.acctClient, int64(clOut+l.client.c.InboundBuffered()))
	account(&l.acctUp, int64(upOut+l.up.InboundBuffered()))
	if clOut > hi && bufferedBytes.Load() > l.s.cfg.MaxBufferedBytes {
		budgetClosed.Inc()
		l.client.close()
		return
	}
	limit := hi
	if l.clientValve.paused {
		limit = lo
	}
	pauseClient := upOut > limit || clOut > limit
	limit = hi
	if l.upValve.paused {
		limit = lo
	}
	pauseUp := clOut > limit
	was := l.clientValve.paused || l.upValve.paused
	if pauseClient != l.clientValve.paused || (pauseClient && !l.clientValve.broken) {
		if pauseClient && !l.clientValve.paused {
			pausesClient.Inc()
		}
		l.clientValve.set(l.client.c, pauseClient)
	}
	if pauseUp != l.upValve.paused || (pauseUp && !l.upValve.broken) {
		if pauseUp && !l.upValve.paused {
			pausesUpstream.Inc()
		}
		l.upValve.set(l.up, pauseUp)
	}
	if now := l.clientValve.paused || l.upValve.paused; now != was {
		l.s.watchPaused(l.s.flowLoop(l.client.c.EventLoop()), l, nil, now)
	}
}

// balance applies back-pressure to a pool client: it is not read while it does not read its answers or while an
// upstream connection it uses holds more than backpressure_bytes unsent. Shared upstream connections are never
// paused for one client.
func (cl *pclient) balance() {
	if cl.retired || cl.ep.closed {
		if cl.valve.paused {
			cl.valve.paused = false
			cl.s.watchPaused(cl.s.flowLoop(cl.c.EventLoop()), nil, cl, false)
		}
		return
	}
	hi := cl.s.cfg.PauseBytes()
	limit := hi
	if cl.valve.paused {
		limit = hi / 2
	}
	out := cl.c.OutboundBuffered()
	account(&cl.acct, int64(out+cl.c.InboundBuffered()))
	if out > hi && bufferedBytes.Load() > cl.s.cfg.MaxBufferedBytes {
		budgetClosed.Inc()
		cl.ep.close()
		return
	}
	pause := out > limit
	for _, uc := range cl.pins {
		if uc != nil && !uc.dead && uc.unsent() > limit {
			pause = true
		}
	}
	was := cl.valve.paused
	if pause && !was {
		pausesClient.Inc()
	}
	if pause != was || pause {
		cl.valve.set(cl.c, pause)
	}
	if cl.valve.paused != was {
		cl.s.watchPaused(cl.s.flowLoop(cl.c.EventLoop()), nil, cl, cl.valve.paused)
	}
}
