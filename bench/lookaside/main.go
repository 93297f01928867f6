// Command lookaside is bench/memcached-model.sh's client: a look-aside cache user replaying a profile's reads
// against one memcached as fast as it answers. For each keyed read (get, gets, gat, gats, mg) in profile order it
// sends a get and, when the get misses, a set of the read's value size (sent ahead of the next get, so a round
// trip per read). Keys are the recorded hashes written out (at the recorded key size, at least 17 bytes).
// Other events are not sent. At the end it prints one line: reads, the client's hits and misses, seconds, and the
// server's get_hits, get_misses and evictions from `stats`.
//
// With -timed FILE it also writes the reads it sent to a profile whose event times are the send times: the clock
// the server saw, which inspect --memcached can then use instead of the trace's own.
//
//	go run ./bench/lookaside -profile trace.mbp -addr 127.0.0.1:11211 [-timed sent.mbp]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

func main() {
	path := flag.String("profile", "", "profile whose reads are replayed (membench import makes one of a trace)")
	addr := flag.String("addr", "127.0.0.1:11211", "memcached address (host:port)")
	timed := flag.String("timed", "", "also write the reads sent, stamped with their send times, to this profile")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for each read's answers")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "lookaside: -profile is required")
		os.Exit(2)
	}
	if err := run(*path, *addr, *timed, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "lookaside:", err)
		os.Exit(1)
	}
}

// client is one connection to memcached.
type client struct {
	c       net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	value   []byte
	pending bool // a set whose STORED is still to be read
}

func run(path, addr, timed string, timeout time.Duration) error {
	in, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		return err
	}
	defer in.Close()
	var out *profile.Writer
	if timed != "" {
		h := in.Header()
		h.TimeUnit = 1000 // µs: enough for send times, and memcached's clock ticks in seconds
		if out, err = profile.NewWriter(timed, h, profile.WriterOptions{Overwrite: true, Atomic: true,
			FlushInterval: -1}); err != nil {
			return err
		}
		defer out.Abort()
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("cannot connect to memcached at %s: %w", addr, err)
	}
	defer conn.Close()
	c := &client{c: conn, r: bufio.NewReaderSize(conn, 256<<10), w: bufio.NewWriterSize(conn, 256<<10),
		timeout: timeout}
	var reads, hits uint64
	var key []byte
	start := time.Now()
	for ev := range in.All() {
		if !ev.Cmd.IsRetrieval() || ev.KeyHash == 0 {
			continue
		}
		key = appendKey(key[:0], ev.KeyHash, ev.KeySize)
		sent := *ev
		sent.Time, sent.Status, sent.Latency = time.Now().UnixNano(), mcproto.StatusUnknown, 0
		hit, err := c.get(key, ev.ValueSize)
		if err != nil {
			return err
		}
		reads++
		if hit {
			hits++
		}
		if out != nil {
			if err := out.Write(&sent); err != nil {
				return err
			}
		}
	}
	if err := in.Err(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	st, err := c.stats()
	if err != nil {
		return err
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return err
		}
	}
	fmt.Printf("reads %d hits %d misses %d seconds %.2f get_hits %d get_misses %d evictions %d\n", reads, hits,
		reads-hits, elapsed.Seconds(), st["get_hits"], st["get_misses"], st["evictions"])
	return nil
}

// appendKey writes hash as a printable key of size bytes (at least 17: 16 hex digits and a marker).
func appendKey(b []byte, hash uint64, size uint16) []byte {
	b = append(b, 'k')
	b = strconv.AppendUint(b, hash, 16)
	for len(b) < int(size) {
		b = append(b, '.')
	}
	return b
}

// get sends a get of key and, on a miss, a set of size bytes that is answered before the next get's answer.
func (c *client) get(key []byte, size uint32) (bool, error) {
	c.w.WriteString("get ")
	c.w.Write(key)
	c.w.WriteString("\r\n")
	c.c.SetDeadline(time.Now().Add(c.timeout))
	if err := c.w.Flush(); err != nil {
		return false, fmt.Errorf("cannot send: %w", err)
	}
	if c.pending {
		if err := c.expect("STORED\r\n"); err != nil {
			return false, err
		}
		c.pending = false
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("cannot read an answer: %w", err)
	}
	if f := strings.Fields(line); len(f) >= 4 && f[0] == "VALUE" {
		n, err := strconv.Atoi(f[3])
		if err != nil {
			return false, fmt.Errorf("memcached answered %q", line)
		}
		if _, err := c.r.Discard(n + 2); err != nil {
			return false, fmt.Errorf("cannot read a value: %w", err)
		}
		return true, c.expect("END\r\n")
	}
	if line != "END\r\n" {
		return false, fmt.Errorf("memcached answered %q to a get", line)
	}
	for len(c.value) < int(size) {
		c.value = append(c.value, strings.Repeat("v", 4096)...)
	}
	fmt.Fprintf(c.w, "set %s 0 0 %d\r\n", key, size)
	c.w.Write(c.value[:size])
	c.w.WriteString("\r\n")
	c.pending = true
	return false, nil
}

func (c *client) expect(want string) error {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("cannot read an answer: %w", err)
	}
	if line != want {
		return fmt.Errorf("memcached answered %q, want %q", strings.TrimSpace(line), strings.TrimSpace(want))
	}
	return nil
}

// stats reads the server's general statistics (after the last set's answer).
func (c *client) stats() (map[string]uint64, error) {
	c.w.WriteString("stats\r\n")
	c.c.SetDeadline(time.Now().Add(c.timeout))
	if err := c.w.Flush(); err != nil {
		return nil, fmt.Errorf("cannot send: %w", err)
	}
	if c.pending {
		if err := c.expect("STORED\r\n"); err != nil {
			return nil, err
		}
	}
	st := map[string]uint64{}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cannot read stats: %w", err)
		}
		if line == "END\r\n" {
			return st, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				st[f[1]] = v
			}
		}
	}
}
