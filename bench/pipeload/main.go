// Command pipeload is bench/proxy.sh's pipelined load generator (memtier is not packaged here): each connection
// writes a batch of text-protocol requests (get:set 9:1 over a fixed key space, every key preloaded), then reads
// all their answers, for a fixed duration. It prints one line: ops, seconds, ops/s.
//
//	go run ./bench/pipeload -addr 127.0.0.1:11211 -conns 4 -depth 32 -duration 10s
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "memcached or proxy address (host:port)")
	conns := flag.Int("conns", 4, "connections, one goroutine each")
	depth := flag.Int("depth", 32, "requests per pipelined batch")
	duration := flag.Duration("duration", 10*time.Second, "how long to run")
	keys := flag.Int("keys", 10000, "key space")
	valueSize := flag.Int("value", 100, "value size in bytes")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline for each batch's write and reads")
	flag.Parse()
	if err := run(*addr, *conns, *depth, *duration, *keys, *valueSize, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "pipeload:", err)
		os.Exit(1)
	}
}

func run(addr string, conns, depth int, duration time.Duration, keys, valueSize int, timeout time.Duration) error {
	if conns < 1 || depth < 1 || keys < 1 || valueSize < 1 {
		return errors.New("-conns, -depth, -keys and -value must be positive")
	}
	value := strings.Repeat("v", valueSize)
	// Preload every key so that gets hit and answers have the same size everywhere.
	c, err := dial(addr, timeout)
	if err != nil {
		return err
	}
	for i := 0; i < keys; i += depth {
		var batch []op
		for k := i; k < min(i+depth, keys); k++ {
			batch = append(batch, op{set: true, key: k})
		}
		if err := c.do(batch, value); err != nil {
			return fmt.Errorf("preloading: %w", err)
		}
	}
	c.Close()

	var ops atomic.Int64
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(duration)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr, timeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			batch := make([]op, depth)
			n := uint64(w)*0x9E3779B97F4A7C15 + 1
			for time.Now().Before(stop) {
				for i := range batch {
					n ^= n << 13
					n ^= n >> 7
					n ^= n << 17
					batch[i] = op{set: n%10 == 0, key: int(n>>8) % keys}
				}
				if err := c.do(batch, value); err != nil {
					errs <- err
					return
				}
				ops.Add(int64(len(batch)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Printf("pipeload: ops=%d seconds=%.2f ops_per_sec=%.0f conns=%d depth=%d\n", ops.Load(), elapsed,
		float64(ops.Load())/elapsed, conns, depth)
	return nil
}

type op struct {
	set bool
	key int
}

type conn struct {
	net.Conn
	r       *bufio.Reader
	w       []byte
	timeout time.Duration
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	return &conn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), timeout: timeout}, nil
}

// do writes the batch in one write and reads every answer.
func (c *conn) do(batch []op, value string) error {
	_ = c.SetDeadline(time.Now().Add(c.timeout))
	c.w = c.w[:0]
	for _, o := range batch {
		if o.set {
			c.w = append(c.w, "set pl:"...)
			c.w = strconv.AppendInt(c.w, int64(o.key), 10)
			c.w = append(c.w, " 0 0 "...)
			c.w = strconv.AppendInt(c.w, int64(len(value)), 10)
			c.w = append(c.w, "\r\n"...)
			c.w = append(c.w, value...)
			c.w = append(c.w, "\r\n"...)
		} else {
			c.w = append(c.w, "get pl:"...)
			c.w = strconv.AppendInt(c.w, int64(o.key), 10)
			c.w = append(c.w, "\r\n"...)
		}
	}
	if _, err := c.Write(c.w); err != nil {
		return err
	}
	for _, o := range batch {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		s := string(line)
		switch {
		case o.set && s == "STORED\r\n":
		case !o.set && s == "END\r\n":
		case !o.set && strings.HasPrefix(s, "VALUE "):
			f := strings.Fields(s)
			n, err := strconv.Atoi(f[len(f)-1])
			if len(f) != 4 || err != nil {
				return fmt.Errorf("bad answer %q", s)
			}
			if _, err := c.r.Discard(n + 2); err != nil {
				return err
			}
			if end, err := c.r.ReadSlice('\n'); err != nil || string(end) != "END\r\n" {
				return fmt.Errorf("bad answer end %q: %v", end, err)
			}
		default:
			return fmt.Errorf("unexpected answer %q", s)
		}
	}
	return nil
}
