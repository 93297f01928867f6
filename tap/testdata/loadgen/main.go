// Command loadgen is bench/tap.sh's pipelined memcached client: C connections, each writing batches of B
// requests (90% get, 10% set of 100-byte values) in one write and reading every response before the next
// batch, for D. It prints the number of operations completed, which a tap capturing the traffic must record
// exactly. It lives under testdata so `go build ./...` and the deps test skip it:
//
//	go run ./tap/testdata/loadgen -addr 127.0.0.1:11211 -conns 4 -batch 64 -duration 10s
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "memcached address")
	conns := flag.Int("conns", 4, "connections")
	batch := flag.Int("batch", 64, "requests per write")
	duration := flag.Duration("duration", 10*time.Second, "how long to run")
	flag.Parse()
	var ops atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(*duration)
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			if err := run(*addr, c, *batch, end, &ops); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				os.Exit(1)
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("ops %d seconds %.2f ops/s %.0f\n", ops.Load(), el, float64(ops.Load())/el)
}

func run(addr string, c, batch int, end time.Time, ops *atomic.Int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1<<16)
	value := bytes.Repeat([]byte("v"), 100)
	var buf []byte
	x := uint64(c + 1)
	for time.Now().Before(end) {
		buf = buf[:0]
		sets := 0
		for i := 0; i < batch; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			key := "lg:" + strconv.Itoa(int(x%10000))
			if x%10 == 0 {
				buf = append(append(append(buf, "set "...), key...), " 0 0 100\r\n"...)
				buf = append(append(buf, value...), "\r\n"...)
				sets++
			} else {
				buf = append(append(append(buf, "get "...), key...), "\r\n"...)
			}
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
		// Every get ends with END, every set with STORED.
		for done := 0; done < batch; {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return err
			}
			switch {
			case bytes.HasPrefix(line, []byte("END")), bytes.HasPrefix(line, []byte("STORED")):
				done++
			case bytes.HasPrefix(line, []byte("VALUE")):
				if _, err := r.Discard(len(value) + 2); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unexpected reply %q", line)
			}
		}
		ops.Add(int64(batch))
	}
	return nil
}
