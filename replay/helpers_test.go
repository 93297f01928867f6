package replay

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requestsServed returns memcached's cmd_get + cmd_set + cmd_touch (its count of requests served), or -1 when
// it cannot be asked.
func requestsServed(addr string) int64 {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return -1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(c, "stats\r\n"); err != nil {
		return -1
	}
	r := bufio.NewReader(c)
	var n int64
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return -1
		}
		l = strings.TrimSpace(l)
		if l == "END" {
			return n
		}
		f := strings.Fields(l)
		if len(f) == 3 && (f[1] == "cmd_get" || f[1] == "cmd_set" || f[1] == "cmd_touch") {
			v, _ := strconv.ParseInt(f[2], 10, 64)
			n += v
		}
	}
}

// waitTraffic waits until memcached at addr has served n more requests than when it was first asked, so that a
// test disturbs a replay while it runs, however long the replay took to start on a busy machine.
func waitTraffic(t *testing.T, addr string, n int64) error {
	start := requestsServed(addr)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := requestsServed(addr); s >= 0 && start >= 0 && s-start >= n {
			return nil
		}
	}
	return fmt.Errorf("memcached on %s did not see %d requests within 30s", addr, n)
}
