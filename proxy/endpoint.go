// Endpoints: the one place where the proxy writes to and closes client connections, so that "closed" is a
// state every write checks.
//
// gnet's Conn.Write writes to the connection's fd number even after gnet has closed the connection, and by
// then the kernel may have handed that number to a newly accepted client or a new upstream dial: a write to a
// stale Conn lands in another client's socket or upstream connection (docs/gnet-notes.md). An endpoint learns of
// the close in OnClose, before gnet closes the fd, and from then on drops every write and close.
//
// A client that half-closes its connection (shutdown(SHUT_WR), `nc -N`) still gets the answers to what it
// sent, as memcached gives them: gnet closes a connection when a read returns 0, so in OnClose the endpoint
// keeps a duplicate of the fd and a drainer goroutine writes the answers still owed, then closes it.
package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

var (
	halfCloses     = Metrics.NewCounter(`membench_proxy_half_closed_connections_total`)
	staleWritesCut = Metrics.NewCounter(`membench_proxy_writes_after_close_total`)
)

// endpoint is a client connection as the proxy writes to it. Only its event loop touches it; c never changes,
// so other goroutines may call c.Close() (gnet's Close is safe from any goroutine and ignores a connection it
// has already closed).
type endpoint struct {
	c      gnet.Conn
	closed bool     // gnet closed the connection (OnClose ran): c's fd may be someone else's now
	drain  *drainer // after a half-close: the answers still owed go here
}

// live reports whether bytes written now reach the client.
func (e *endpoint) live() bool { return !e.closed || e.drain != nil }

// write sends b to the client (gnet copies what it cannot write at once; so does the drainer). After the close
// it writes nothing: the fd may belong to another connection.
func (e *endpoint) write(b []byte) {
	switch {
	case len(b) == 0:
	case !e.closed:
		_, _ = e.c.Write(b)
	case e.drain != nil:
		e.drain.write(b)
	default:
		staleWritesCut.Inc()
	}
}

// close closes the connection once what was written has gone out.
func (e *endpoint) close() {
	switch {
	case !e.closed:
		_ = e.c.Close()
	case e.drain != nil:
		e.drain.finish()
		e.drain = nil
	}
}

// buffered returns the bytes written but not yet sent.
func (e *endpoint) buffered() int {
	switch {
	case !e.closed:
		return e.c.OutboundBuffered()
	case e.drain != nil:
		return e.drain.buffered()
	}
	return 0
}

// observeClose runs in OnClose, before gnet closes the fd. When the client ended its side of the stream (a
// FIN, not a reset) and answers are still owed, it keeps a duplicate of the fd for them and reports true.
func (e *endpoint) observeClose(err error, owed bool, limit int, timeout time.Duration) bool {
	if e.closed {
		return false
	}
	e.closed = true
	// With answers still in gnet's outbound buffer, gnet writes what the socket takes at the close and drops the
	// rest: the drainer could not continue the stream where it stopped, so such a client is not drained.
	if !owed || !errors.Is(err, io.EOF) || e.c.OutboundBuffered() > 0 {
		return false
	}
	d, derr := newDrainer(e.c, limit, timeout)
	if derr != nil {
		return false
	}
	halfCloses.Inc()
	e.drain = d
	return true
}

// drainer writes, from its own goroutine, the answers owed to a client that half-closed its connection, on a
// duplicate of the client's fd; finish closes it once everything is written. Writes past limit bytes
// outstanding, or a client that does not read for timeout, end it.
type drainer struct {
	mu      sync.Mutex
	buf     []byte
	done    bool // no more answers will come
	failed  bool // the client is gone or over a limit: drop everything
	wake    chan struct{}
	nc      net.Conn
	limit   int
	timeout time.Duration
}

func newDrainer(c gnet.Conn, limit int, timeout time.Duration) (*drainer, error) {
	fd, err := c.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "half-closed client")
	nc, err := net.FileConn(f) // dups again, non-blocking, in the runtime's poller
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	d := &drainer{nc: nc, limit: limit, timeout: timeout, wake: make(chan struct{}, 1)}
	go d.run()
	return d, nil
}

func (d *drainer) write(b []byte) {
	d.mu.Lock()
	switch {
	case d.failed || d.done:
	case len(d.buf)+len(b) > d.limit:
		connsOverflow.Inc()
		d.failed = true
		d.buf = nil
	default:
		d.buf = append(d.buf, b...)
	}
	d.mu.Unlock()
	d.poke()
}

func (d *drainer) finish() {
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	d.poke()
}

func (d *drainer) buffered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.buf)
}

func (d *drainer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *drainer) run() {
	defer d.nc.Close()
	var out []byte
	for {
		d.mu.Lock()
		out, d.buf = d.buf, out[:0]
		done, failed := d.done, d.failed
		d.mu.Unlock()
		if failed {
			return
		}
		if len(out) > 0 {
			_ = d.nc.SetWriteDeadline(time.Now().Add(d.timeout))
			if _, err := d.nc.Write(out); err != nil {
				d.mu.Lock()
				d.failed, d.buf = true, nil
				d.mu.Unlock()
				return
			}
			continue
		}
		if done {
			return
		}
		select {
		case <-d.wake:
		case <-time.After(d.timeout):
			// No answer for the whole timeout: the upstream side is stuck; give up on this client.
			d.mu.Lock()
			stuck := len(d.buf) == 0 && !d.done
			if stuck {
				d.failed = true
			}
			d.mu.Unlock()
			if stuck {
				return
			}
		}
	}
}
