// The proxy's configuration: `membench proxy`, inline in front of one memcached (pool mode adds [pool]).
package configs

import (
	"fmt"
	"net"
	"time"
)

// Proxy configures `membench proxy`. TOML keys are the snake_case names in the tags.
type Proxy struct {
	// Listen is the TCP address clients connect to.
	Listen string `toml:"listen"`
	// UnixSocket, when set, also listens on this unix socket path.
	UnixSocket string `toml:"unix_socket"`
	// Upstream is the memcached server every client connection is forwarded to.
	Upstream string `toml:"upstream"`

	// Recording: record, salt_file, host_label, sample_rate, namespace_delimiter, queue_size, flush_interval,
	// compress.
	Recording

	// MetricsListen serves Prometheus /metrics; empty disables it. Loopback by default.
	MetricsListen string `toml:"metrics_listen"`

	// EventLoops is the number of gnet event loops; 0 means one per CPU.
	EventLoops int `toml:"event_loops"`
	// MaxConnections bounds client connections; more are refused with memcached's error text.
	MaxConnections int `toml:"max_connections"`
	// IdleTimeout closes client connections idle this long; 0 disables it.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ConnectTimeout bounds the dial to the upstream.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// DrainTimeout bounds how long SIGTERM waits for in-flight requests.
	DrainTimeout Duration `toml:"drain_timeout"`
	// MaxLine is the longest non-get command line (memcached: 2048).
	MaxLine int `toml:"max_line"`
	// MaxItemSize, in pool mode, answers larger values with "SERVER_ERROR object too large for cache" without
	// forwarding them (pool mode holds each request whole); 0 takes memcached's own item_size_max, asked at
	// start. Inline mode streams every value to memcached, which applies its own -I limit.
	MaxItemSize int `toml:"max_item_size"`
	// MaxClientBuffer closes a client whose unread responses (or unsent requests) pass this many bytes.
	MaxClientBuffer int `toml:"max_client_buffer"`
	// BackpressureBytes pauses reading a client while the upstream it feeds holds more unsent bytes than this,
	// and reading an upstream while the client it answers holds more unread bytes than this (TCP flow control
	// then holds the sender back, as memcached's own would); reading resumes below half of it. At most half of
	// max_client_buffer is used.
	BackpressureBytes int `toml:"backpressure_bytes"`
	// MaxBufferedBytes bounds the bytes the whole proxy holds in connection buffers; past it the clients
	// holding the most unread answers are closed.
	MaxBufferedBytes int64 `toml:"max_buffered_bytes"`
	// RequestTimeout closes a client whose request has been arriving for longer than this (a slow-loris
	// client trickling bytes); 0 disables it.
	RequestTimeout Duration `toml:"request_timeout"`

	// Pool, when it lists servers, puts the proxy in pool mode: keys are routed over a ketama ring and Upstream
	// is ignored.
	Pool Pool `toml:"pool"`
}

// DefaultProxy returns the proxy defaults.
func DefaultProxy() Proxy {
	return Proxy{
		Listen:          "127.0.0.1:11311",
		Upstream:        "127.0.0.1:11211",
		Recording:       DefaultRecording(),
		MetricsListen:   "127.0.0.1:9150",
		MaxConnections:  4096,
		ConnectTimeout:  Duration(time.Second),
		DrainTimeout:    Duration(5 * time.Second),
		MaxLine:         2048,
		MaxClientBuffer: 64 << 20,

		BackpressureBytes: 4 << 20,
		MaxBufferedBytes:  256 << 20,
		RequestTimeout:    Duration(30 * time.Second),
		Pool:              DefaultPool(),
	}
}

// LoadProxy reads a proxy config file over the defaults.
func LoadProxy(path string) (Proxy, error) {
	c := DefaultProxy()
	if path == "" {
		return c, nil
	}
	err := Load(path, &c)
	return c, err
}

// Validate checks every field and names the key to fix.
func (c *Proxy) Validate() error {
	if err := checkHostPort("listen", c.Listen); err != nil {
		return err
	}
	if c.Pool.Enabled() {
		if err := c.Pool.Validate(); err != nil {
			return err
		}
	} else if err := checkHostPort("upstream", c.Upstream); err != nil {
		return err
	}
	if c.MetricsListen != "" {
		if err := checkHostPort("metrics_listen", c.MetricsListen); err != nil {
			return err
		}
	}
	if err := c.Recording.Validate(); err != nil {
		return err
	}
	for _, f := range []struct {
		key      string
		v        int64
		min, max int64
	}{
		{"event_loops", int64(c.EventLoops), 0, 1024},
		{"max_connections", int64(c.MaxConnections), 1, 1 << 20},
		{"max_line", int64(c.MaxLine), 64, 1 << 20},
		{"max_item_size", int64(c.MaxItemSize), 0, 1 << 30},
		{"max_client_buffer", int64(c.MaxClientBuffer), 4096, 1 << 32},
		{"backpressure_bytes", int64(c.BackpressureBytes), 4096, 1 << 32},
		{"max_buffered_bytes", c.MaxBufferedBytes, 1 << 20, 1 << 40},
	} {
		if f.v < f.min || f.v > f.max {
			return fmt.Errorf("%s = %d: must be from %d to %d", f.key, f.v, f.min, f.max)
		}
	}
	for _, f := range []struct {
		key string
		v   Duration
	}{
		{"connect_timeout", c.ConnectTimeout},
		{"drain_timeout", c.DrainTimeout},
	} {
		if f.v <= 0 {
			return fmt.Errorf("%s = %s: must be positive", f.key, time.Duration(f.v))
		}
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout = %s: must be 0 (off) or positive", time.Duration(c.IdleTimeout))
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("request_timeout = %s: must be 0 (off) or positive", time.Duration(c.RequestTimeout))
	}
	return nil
}

func checkHostPort(key, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s is empty: give host:port", key)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s = %q: %v (want host:port)", key, addr, err)
	}
	return nil
}

// PauseBytes is the back-pressure threshold in force: backpressure_bytes, but at most half of max_client_buffer.
func (c *Proxy) PauseBytes() int { return min(c.BackpressureBytes, c.MaxClientBuffer/2) }
