package replay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// BenchmarkServe is the event loop's work per request at depth 1 without the system calls: account one get's
// answer (a 500-byte hit) and encode the next get, as conn.serve does after each read.
func BenchmarkServe(b *testing.B) {
	e := &engine{ctx: context.Background(), base: time.Now(), pipeline: 1, timeout: time.Minute,
		values: workload.NewValues(1 << 20), inflightCap: 64}
	c := newConn(e, "127.0.0.1:1")
	tmpl := make([]op, batchSize)
	for i := range tmpl {
		tmpl[i] = op{ev: profile.Event{Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet, Status: mcproto.StatusHit,
			KeyHash: workload.Mix64(uint64(i)), KeySize: 40, ValueSize: 500, Upstream: -1}, intended: -1,
			wire: wire{proto: mcproto.ProtoText, cmd: mcproto.CmdGet}}
	}
	feed := func() {
		if len(c.in) == 0 {
			c.in <- &batch{ops: append([]op(nil), tmpl...)}
		}
	}
	resp := []byte("VALUE " + strings.Repeat("k", 40) + " 0 500\r\n" + strings.Repeat("v", 500) + "\r\nEND\r\n")
	c.ev.rbuf = make([]byte, 16<<10)
	feed()
	if _, end := c.serve(false); end || c.loud.Load() != 1 {
		b.Fatal("no request in flight")
	}
	c.wbuf = c.wbuf[:0]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		feed()
		c.ev.rn = copy(c.ev.rbuf, resp)
		if _, end := c.serve(true); end {
			b.Fatal("session ended")
		}
		c.wbuf = c.wbuf[:0]
	}
}
