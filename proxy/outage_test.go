package proxy_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/proxy"
)

// TestOutage_SlowFirstRequest: during an outage, a client whose first request comes after the proxy's dial was
// refused still gets memcached-style answers, not a reset (a refused dial is faster than most clients' first
// write; CI saw the reset).
func TestOutage_SlowFirstRequest(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:"+strconv.Itoa(mctest.FreePort(t)))
	srv := startProxy(t, cfg, proxy.Options{})
	defer shutdown(t, srv)
	c := dialText(t, cfg.Listen)
	time.Sleep(300 * time.Millisecond) // the dial has long been refused
	c.send("get k\r\n")
	c.expect("SERVER_ERROR upstream unavailable")
}
