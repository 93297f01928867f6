// What the proxy learns about a memcached before it frames requests for it: its release (mcproto.Dialect:
// which rules decide how a malformed request is answered and framed) and whether it speaks only the binary
// protocol (memcached -B binary). It is asked on a connection of its own, so that no client connection ever
// carries the question's bytes.
package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/membench/membench/mcproto"
)

// upstreamInfo is what askUpstream learned.
type upstreamInfo struct {
	dialect    mcproto.Dialect
	version    string // as the server said it ("" when it would not say: binary-only, auth required)
	binaryOnly bool   // memcached -B binary: text requests are never framed as text
	authWanted bool   // answered "CLIENT_ERROR unauthenticated" (memcached -Y)
	itemMax    int    // memcached's item_size_max (-I), 0 when it would not say
}

// errNotMemcached: the server answered something memcached never says to "version".
var errNotMemcached = errors.New("the server's answer to version is not memcached's")

// askUpstream asks the memcached at addr for its version, in text, then (if the text question got no answer)
// in binary.
func askUpstream(ctx context.Context, network, addr string, timeout time.Duration) (upstreamInfo, error) {
	ans, err := askOnce(ctx, network, addr, timeout, []byte("version\r\nstats settings\r\n"), readVersionAndSettings)
	if err == nil {
		line, settings, _ := bytes.Cut(ans, []byte("\n"))
		switch {
		case bytes.HasPrefix(line, []byte("VERSION ")):
			d, perr := mcproto.ParseVersion(line)
			if perr != nil {
				d = mcproto.DialectNewest
			}
			info := upstreamInfo{dialect: d, version: string(bytes.TrimSpace(line[len("VERSION "):]))}
			if n, serr := mcproto.ParseItemSizeMax(settings); serr == nil {
				info.itemMax = n
			}
			return info, nil
		case bytes.HasPrefix(line, []byte("CLIENT_ERROR unauthenticated")):
			return upstreamInfo{authWanted: true}, nil
		}
		return upstreamInfo{}, fmt.Errorf("%w: %q", errNotMemcached, bytes.TrimSpace(line))
	}
	if ctx.Err() != nil {
		return upstreamInfo{}, err
	}
	var dial *net.OpError
	if errors.As(err, &dial) && dial.Op == "dial" {
		return upstreamInfo{}, err
	}
	// No answer in text: a binary-only server waits for a 24-byte header (or closes).
	req := mcproto.AppendBinaryError(nil, 0x0b, 0, 0, "") // a VERSION request: same layout, request magic below
	req[0] = 0x80
	frame, berr := askOnce(ctx, network, addr, timeout, req, readBinaryFrame)
	if berr != nil || len(frame) < 24 || frame[0] != 0x81 || frame[1] != 0x0b {
		return upstreamInfo{}, err
	}
	info := upstreamInfo{binaryOnly: true, dialect: mcproto.DialectNewest}
	if binary.BigEndian.Uint16(frame[6:]) == 0 {
		info.version = string(frame[24:])
		if d, perr := mcproto.ParseVersion([]byte("VERSION " + info.version)); perr == nil {
			info.dialect = d
		}
	} else {
		info.authWanted = true
	}
	return info, nil
}

func askOnce(ctx context.Context, network, addr string, timeout time.Duration, q []byte,
	read func(io.Reader) ([]byte, error)) ([]byte, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	return read(c)
}

// readVersionAndSettings reads the answers to "version" and "stats settings": up to the END of the stats, or
// (an unauthenticated or odd server) the first line, whatever follows it within a moment.
func readVersionAndSettings(r io.Reader) ([]byte, error) {
	b := make([]byte, 0, 8192)
	for len(b) < 64<<10 {
		if len(b) == cap(b) {
			b = append(b, make([]byte, len(b))...)[:len(b)]
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok && !bytes.HasPrefix(line, []byte("VERSION ")) {
			return b, nil // not memcached's version line: the caller decides on the first line alone
		}
		if bytes.HasSuffix(b, []byte("END\r\n")) || bytes.Contains(b, []byte("\nERROR\r\n")) ||
			bytes.Contains(b, []byte("\nCLIENT_ERROR")) {
			return b, nil
		}
		if err != nil {
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				return b, nil
			}
			return nil, err
		}
	}
	return nil, errors.New("no end of the stats settings answer in the first 64 KiB")
}

// readBinaryFrame reads one binary response frame with a body of at most 1 KiB.
func readBinaryFrame(r io.Reader) ([]byte, error) {
	h := make([]byte, 24)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[8:])
	if n > 1024 {
		return nil, fmt.Errorf("binary answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(h, body...), nil
}

// upstreamBook keeps what was learned about one upstream address until it fails, so a restarted (perhaps
// upgraded) server is asked again.
type upstreamBook struct {
	network string
	addr    string
	timeout time.Duration
	mu      sync.Mutex // one question at a time
	known   atomic.Pointer[upstreamInfo]
	failed  atomic.Int64 // unix ns of the last question that got no answer
}

// info returns what is known, asking the server first when nothing is (it blocks: call it off the event loops).
func (b *upstreamBook) info(ctx context.Context) (upstreamInfo, bool) {
	if i := b.known.Load(); i != nil {
		return *i, true
	}
	// A server that did not answer a moment ago is not asked again by every dial waiting here: with a server
	// that swallows connections, each question would take the whole timeout, one after the other.
	if time.Since(time.Unix(0, b.failed.Load())) < time.Second {
		return upstreamInfo{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := b.known.Load(); i != nil {
		return *i, true
	}
	if time.Since(time.Unix(0, b.failed.Load())) < time.Second {
		return upstreamInfo{}, false
	}
	i, err := askUpstream(ctx, b.network, b.addr, b.timeout)
	if err != nil {
		b.failed.Store(time.Now().UnixNano())
		return upstreamInfo{}, false
	}
	b.known.Store(&i)
	return i, true
}

// peek returns what is known without asking.
func (b *upstreamBook) peek() (upstreamInfo, bool) {
	if i := b.known.Load(); i != nil {
		return *i, true
	}
	return upstreamInfo{}, false
}

// forget drops what is known (the server failed): the next connection asks again.
func (b *upstreamBook) forget() { b.known.Store(nil) }

// apply sets a request parser's rules for this upstream.
func (i upstreamInfo) apply(p *mcproto.RequestParser) {
	p.Dialect = i.dialect
	if i.binaryOnly {
		p.Force = mcproto.ProtoBinary
	}
}

// askPool asks every server of a pool at once (bounded by timeout) and returns what they agree on: the rules of
// the first that answered (a pool of mixed releases is framed by one of them) and the smallest item_size_max.
func askPool(addrs []string, timeout time.Duration) (upstreamInfo, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	answers := make(chan upstreamInfo, len(addrs))
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i, err := askUpstream(ctx, "tcp", a, timeout); err == nil {
				answers <- i
			}
		}()
	}
	wg.Wait()
	close(answers)
	var out upstreamInfo
	ok := false
	for i := range answers {
		if !ok {
			out, ok = i, true
			continue
		}
		if i.itemMax > 0 && (out.itemMax == 0 || i.itemMax < out.itemMax) {
			out.itemMax = i.itemMax
		}
		out.authWanted = out.authWanted || i.authWanted
	}
	return out, ok
}

// maxItemSize is the largest value pool mode takes (it holds each request whole before forwarding it):
// max_item_size when set, else what the servers said (memcached -I), else memcached's default of 1 MiB. A value
// over it is answered as memcached would answer it; values under it are forwarded, and memcached, whose limit
// counts the item's header and key too, answers those it still finds too large.
func (s *Server) maxItemSize() int {
	switch {
	case s.cfg.MaxItemSize > 0:
		return s.cfg.MaxItemSize
	case s.poolInfo.itemMax > 0:
		return s.poolInfo.itemMax
	}
	return 1 << 20
}

// outage logs a run of failed dials once, with its count and length when the upstream is back, instead of one
// line per dial.
type outage struct {
	mu    sync.Mutex
	since time.Time
	fails int
}

func (o *outage) failed(log *slog.Logger, upstream string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails++
	if o.fails == 1 {
		o.since = time.Now()
		log.Warn("cannot connect to upstream; clients get SERVER_ERROR upstream unavailable until it is back",
			"upstream", upstream, "err", err)
	}
}

func (o *outage) ok(log *slog.Logger, upstream string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fails > 0 {
		log.Info("upstream is back", "upstream", upstream, "failed_dials", o.fails,
			"outage", time.Since(o.since).Round(time.Millisecond).String())
		o.fails = 0
	}
}
