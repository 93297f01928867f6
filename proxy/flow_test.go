// Flow control, tested as a careless client and a stalled server would: bounded memory by back-pressure rather
// than resets, a process-wide budget, and slow-loris clients closed by request_timeout.
package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
)

// flowConfig returns an inline or pool config in front of mc.
func flowConfig(t *testing.T, mode string, mc *mctest.Server) configs.Proxy {
	t.Helper()
	if mode == "inline" {
		return testConfig(t, mc.Addr)
	}
	cfg := poolTestConfig(t, "fnv1a_64", []string{mc.Addr + ":1"})
	cfg.Pool.Timeout = configs.Duration(time.Minute) // the stopped server must not fail the requests
	return cfg
}

// TestFlow_StoppedUpstream: while memcached does not read (SIGSTOP), a client pipelining large noreply sets is
// held back by TCP flow control, as it would be talking to memcached directly, instead of the proxy buffering
// what it sends and resetting it; after SIGCONT every set completes.
func TestFlow_StoppedUpstream(t *testing.T) {
	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			mc := mctest.StartMemcached(t, "-m", "256")
			cfg := flowConfig(t, mode, mc)
			startProxy(t, cfg, proxy.Options{})
			c := dial(t, cfg.Listen)
			c.(*net.TCPConn).SetWriteBuffer(64 << 10)
			// One warm-up round trip, so the upstream connection exists before memcached stops.
			r := bufio.NewReader(c)
			if _, err := io.WriteString(c, "set warm 0 0 1\r\nw\r\n"); err != nil {
				t.Fatal(err)
			}
			if l, err := r.ReadString('\n'); err != nil || l != "STORED\r\n" {
				t.Fatalf("warm-up: %q %v", l, err)
			}
			if err := mc.Pause(); err != nil {
				t.Fatal(err)
			}
			const sets, size = 1200, 64 << 10 // 75 MiB in all, more than max_client_buffer
			value := strings.Repeat("v", size)
			var sent atomic.Int64
			writeErr := make(chan error, 1)
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
				for i := range sets {
					n, err := fmt.Fprintf(c, "set k%d 0 0 %d noreply\r\n%s\r\n", i, size, value)
					sent.Add(int64(n))
					if err != nil {
						writeErr <- err
						return
					}
				}
				_, err := io.WriteString(c, "get k1199\r\n")
				writeErr <- err
			}()
			time.Sleep(3 * time.Second)
			held, buffered := sent.Load(), proxy.BufferedBytes()
			if err := mc.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			// Held back: what the client could send is bounded by the kernel's socket buffers on both hops and the
			// proxy's backpressure_bytes (4 MiB), not by max_client_buffer (64 MiB).
			if held > 24<<20 {
				t.Errorf("the client sent %d MiB while memcached was stopped: the proxy did not hold it back", held>>20)
			}
			if buffered > 16<<20 {
				t.Errorf("the proxy buffered %d MiB while memcached was stopped", buffered>>20)
			}
			if err := <-writeErr; err != nil {
				t.Fatalf("the client could not finish its sets after SIGCONT (sent %d MiB): %v", sent.Load()>>20, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			if l, err := r.ReadString('\n'); err != nil || l != fmt.Sprintf("VALUE k1199 0 %d\r\n", size) {
				t.Fatalf("get after the sets: %q %v", l, err)
			}
			t.Logf("sent while stopped: %d KiB; proxy buffered: %d KiB", held>>10, buffered>>10)
		})
	}
}

// TestFlow_NonReadingClients: 40 clients ask for a 1 MB value 50 times each and never read. The proxy's buffers
// and its live heap stay within max_buffered_bytes, and its heap falls back by itself once they leave.
func TestFlow_NonReadingClients(t *testing.T) {
	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			mc := mctest.StartMemcached(t, "-m", "64")
			d := poolDial(t, mc.Addr)
			big := strings.Repeat("b", 1_000_000)
			fmt.Fprintf(d.c, "set big 0 0 %d\r\n%s\r\n", len(big), big)
			if l, err := d.r.ReadString('\n'); err != nil || l != "STORED\r\n" {
				t.Fatalf("storing big: %q %v", l, err)
			}
			cfg := flowConfig(t, mode, mc)
			cfg.MaxBufferedBytes = 128 << 20
			startProxy(t, cfg, proxy.Options{})
			base := liveHeap()
			const clients = 40
			var conns []net.Conn
			for range clients {
				c, err := net.DialTimeout("tcp", cfg.Listen, ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				c.(*net.TCPConn).SetReadBuffer(4096)
				conns = append(conns, c)
				if _, err := io.WriteString(c, strings.Repeat("get big\r\n", 50)); err != nil {
					t.Fatal(err)
				}
			}
			var peakBuf int64
			var peakHeap uint64
			for range 30 {
				time.Sleep(100 * time.Millisecond)
				peakBuf = max(peakBuf, proxy.BufferedBytes())
				peakHeap = max(peakHeap, liveHeap())
			}
			for _, c := range conns {
				c.Close()
			}
			slack := uint64(64 << 20) // read buffers, answers being copied, the test's own allocations
			if mode == "pool" {
				// Pool mode assembles each answer whole before it is queued for its client (twemproxy does too):
				// per client, one answer being assembled and one being copied into its buffer may be held besides
				// the budget.
				slack += uint64(2 * clients * len(big))
			}
			if peakBuf > cfg.MaxBufferedBytes+int64(slack) {
				t.Errorf("the proxy buffered %d MiB, budget %d MiB", peakBuf>>20, cfg.MaxBufferedBytes>>20)
			}
			if peakHeap > base+uint64(cfg.MaxBufferedBytes)+slack {
				t.Errorf("live heap went from %d MiB to %d MiB, budget %d MiB", base>>20, peakHeap>>20,
					cfg.MaxBufferedBytes>>20)
			}
			var after uint64
			deadline := time.Now().Add(20 * time.Second)
			for after = heapInuse(); after > base+32<<20 && time.Now().Before(deadline); after = heapInuse() {
				time.Sleep(100 * time.Millisecond)
			}
			if after > base+32<<20 {
				t.Errorf("heap in use stayed at %d MiB after the clients left (baseline %d MiB)", after>>20, base>>20)
			}
			c, b := proxy.ReadPauses()
			t.Logf("baseline %d MiB, peak heap %d MiB, peak buffered %d MiB, after %d MiB; pauses client %d upstream %d, budget closes %d",
				base>>20, peakHeap>>20, peakBuf>>20, after>>20, c, b, proxy.BudgetClosed())
		})
	}
}

// liveHeap returns the heap bytes still in use after two collections: what the proxy holds, not garbage waiting
// for the collector nor freed buffers in sync.Pools (which survive one collection).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return heapInuse()
}

// heapInuse returns the heap bytes in use, without forcing a collection (the proxy must give memory back by
// itself).
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestFlow_Slowloris: clients trickling one byte a second hold no slot past request_timeout, in both modes, while
// a client that sends whole requests is served.
func TestFlow_Slowloris(t *testing.T) {
	for _, mode := range []string{"inline", "pool"} {
		t.Run(mode, func(t *testing.T) {
			mc := mctest.StartMemcached(t)
			cfg := flowConfig(t, mode, mc)
			cfg.MaxConnections = 10
			cfg.IdleTimeout = configs.Duration(3 * time.Second)
			cfg.RequestTimeout = configs.Duration(2 * time.Second)
			startProxy(t, cfg, proxy.Options{})
			before := proxy.SlowClosed()
			var wg sync.WaitGroup
			closed := make(chan struct{}, 10)
			for range 10 {
				c, err := net.DialTimeout("tcp", cfg.Listen, ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := "set slow 0 0 10\r\n0123456789\r\n"
					for i := 0; i < len(msg); i++ {
						if _, err := c.Write([]byte{msg[i]}); err != nil {
							closed <- struct{}{}
							return
						}
						_ = c.SetReadDeadline(time.Now().Add(time.Second))
						if _, err := c.Read(make([]byte, 64)); err != nil && !isTimeout(err) {
							closed <- struct{}{}
							return
						}
					}
				}()
			}
			wg.Wait()
			if n := len(closed); n != 10 {
				t.Errorf("%d of 10 trickling clients were closed", n)
			}
			if proxy.SlowClosed()-before < 10 {
				t.Errorf("request_timeout closed %d clients, want 10", proxy.SlowClosed()-before)
			}
			tc := dialText(t, cfg.Listen)
			tc.roundTrip("set fast 0 0 1\r\nf\r\n", "STORED")
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
