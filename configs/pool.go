// Pool mode: the proxy in front of several memcached servers, routing keys by a twemproxy-compatible ketama
// ring. It is the [pool] table of a proxy config (configs/pool.toml), or --upstream a,b,c on the command line.
package configs

import (
	"fmt"
	"strings"
	"time"

	"github.com/membench/membench/ring"
)

// Pool configures pool mode. It is active when Servers is not empty.
type Pool struct {
	// Servers are twemproxy server lines: "host:port:weight [name]".
	Servers []string `toml:"servers"`
	// Hash is the key hash (ring.HashNames: fnv1a_64, md5, crc32, one_at_a_time, …), as twemproxy's hash:.
	Hash string `toml:"hash"`
	// HashTag is empty or two characters, as twemproxy's hash_tag: ("{}").
	HashTag string `toml:"hash_tag"`
	// ConnectionsPerServer is the number of upstream connections per server in each event loop.
	ConnectionsPerServer int `toml:"connections_per_server"`
	// Timeout fails a request whose response has not arrived in this time (0: no timeout).
	Timeout Duration `toml:"timeout"`
	// AutoEject takes a failing server out of the ring so its keys move to the others (twemproxy's
	// auto_eject_hosts); when false its requests fail fast with SERVER_ERROR until it is back.
	AutoEject bool `toml:"auto_eject_hosts"`
	// FailureLimit is how many consecutive failures mark a server down (server_failure_limit).
	FailureLimit int `toml:"server_failure_limit"`
	// RetryTimeout is how long a down server stays down before it is probed (server_retry_timeout).
	RetryTimeout Duration `toml:"server_retry_timeout"`
	// Shadow copies a fraction of the traffic to a second pool.
	Shadow Shadow `toml:"shadow"`
}

// Shadow is a second pool that receives a copy of some requests, fire-and-forget: its answers are read and
// thrown away, and it can never slow or change the primary response.
type Shadow struct {
	Servers []string `toml:"servers"`
	Hash    string   `toml:"hash"`
	// Fraction of keys (chosen by key hash, so every access of a chosen key is copied), in [0, 1].
	Fraction float64 `toml:"fraction"`
	// MaxBuffer drops copies while a shadow connection has this many bytes unsent.
	MaxBuffer int `toml:"max_buffer"`
}

// DefaultPool returns pool defaults (twemproxy's where it has them).
func DefaultPool() Pool {
	return Pool{
		Hash:                 "fnv1a_64",
		ConnectionsPerServer: 1,
		Timeout:              Duration(time.Second),
		FailureLimit:         2,
		RetryTimeout:         Duration(30 * time.Second),
		Shadow:               Shadow{Hash: "fnv1a_64", MaxBuffer: 4 << 20},
	}
}

// Enabled reports whether pool mode is configured.
func (p *Pool) Enabled() bool { return len(p.Servers) > 0 }

// RingServers parses Servers for the ring.
func parseServers(key string, lines []string) ([]ring.Server, error) {
	out := make([]ring.Server, 0, len(lines))
	for i, line := range lines {
		s, err := ring.ParseServer(line)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// RingServers returns the primary servers parsed for ring.New.
func (p *Pool) RingServers() ([]ring.Server, error) { return parseServers("pool.servers", p.Servers) }

// ShadowServers returns the shadow servers parsed for ring.New.
func (p *Pool) ShadowServers() ([]ring.Server, error) {
	return parseServers("pool.shadow.servers", p.Shadow.Servers)
}

// Validate checks the pool table and names the key to fix.
func (p *Pool) Validate() error {
	if !p.Enabled() {
		return nil
	}
	srv, err := p.RingServers()
	if err != nil {
		return err
	}
	if _, err := ring.New(srv, p.Hash, ring.Options{HashTag: p.HashTag}); err != nil {
		return fmt.Errorf("pool: %w (keys: pool.servers, pool.hash, pool.hash_tag)", err)
	}
	if p.ConnectionsPerServer < 1 || p.ConnectionsPerServer > 64 {
		return fmt.Errorf("pool.connections_per_server = %d: must be 1 to 64", p.ConnectionsPerServer)
	}
	if p.Timeout < 0 {
		return fmt.Errorf("pool.timeout = %s: must be 0 (off) or positive", time.Duration(p.Timeout))
	}
	if p.FailureLimit < 1 {
		return fmt.Errorf("pool.server_failure_limit = %d: must be at least 1", p.FailureLimit)
	}
	if p.RetryTimeout <= 0 {
		return fmt.Errorf("pool.server_retry_timeout = %s: must be positive", time.Duration(p.RetryTimeout))
	}
	if len(p.Shadow.Servers) > 0 {
		sh, err := p.ShadowServers()
		if err != nil {
			return err
		}
		if _, err := ring.New(sh, p.Shadow.Hash, ring.Options{}); err != nil {
			return fmt.Errorf("pool.shadow: %w", err)
		}
		if !(p.Shadow.Fraction >= 0 && p.Shadow.Fraction <= 1) {
			return fmt.Errorf("pool.shadow.fraction = %v: must be in [0, 1]", p.Shadow.Fraction)
		}
		if p.Shadow.MaxBuffer < 4096 {
			return fmt.Errorf("pool.shadow.max_buffer = %d: must be at least 4096", p.Shadow.MaxBuffer)
		}
	}
	return nil
}

// UpstreamList turns --upstream a,b,c into pool server lines of weight 1; one address stays inline mode.
func UpstreamList(s string) (single string, pool []string) {
	parts := strings.Split(s, ",")
	if len(parts) == 1 {
		return strings.TrimSpace(s), nil
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "" {
			pool = append(pool, p+":1")
		}
	}
	return "", pool
}
