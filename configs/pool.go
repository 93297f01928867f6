// Pool mode: the proxy in front of several memcached servers, routing keys by a twemproxy-compatible ketama
// ring. It is the [pool] table of a proxy config (configs/pool.toml), or --upstream a,b,c on the command line.
package configs

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
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

	// UpstreamAuthFile holds one "user:password" line: the proxy's own login on every shared upstream
	// connection (an ascii auth token on text connections, SASL PLAIN on binary ones), for servers started with
	// memcached -Y or -S. Empty: the proxy has no credentials, and a server that asks for them gets no request.
	UpstreamAuthFile string `toml:"upstream_auth_file"`
	// ClientAuthFile lists "user:password" lines (memcached's -Y authfile format). When set, a client must log
	// in to the proxy (ascii auth token, or binary SASL PLAIN) before any of its requests is routed.
	ClientAuthFile string `toml:"client_auth_file"`

	// auth is what Validate read from the two files above.
	auth *PoolAuth
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

// Validate checks the pool table and names the key to fix. It reads upstream_auth_file and client_auth_file
// (refusing files that group or others may read) and keeps what it read for Auth: a reload validates again and
// so reads them again.
func (p *Pool) Validate() error {
	if !p.Enabled() {
		return nil
	}
	if len(p.Servers) > MaxPoolServers || len(p.Shadow.Servers) > MaxPoolServers {
		return fmt.Errorf("pool.servers and pool.shadow.servers hold %d and %d lines: at most %d each",
			len(p.Servers), len(p.Shadow.Servers), MaxPoolServers)
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
	if p.FailureLimit < 1 || p.FailureLimit > MaxFailureLimit {
		return fmt.Errorf("pool.server_failure_limit = %d: must be from 1 to %d", p.FailureLimit, MaxFailureLimit)
	}
	if p.RetryTimeout <= 0 {
		return fmt.Errorf("pool.server_retry_timeout = %s: must be positive", time.Duration(p.RetryTimeout))
	}
	auth, err := loadPoolAuth(p.UpstreamAuthFile, p.ClientAuthFile)
	if err != nil {
		return err
	}
	p.auth = auth
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
		if p.Shadow.MaxBuffer < 4096 || p.Shadow.MaxBuffer > MaxShadowBuffer {
			return fmt.Errorf("pool.shadow.max_buffer = %d: must be from 4096 to %d", p.Shadow.MaxBuffer,
				MaxShadowBuffer)
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

// Auth file limits. memcached reads at most 8 entries of at most 255 bytes from its -Y authfile and ignores
// the rest; the proxy takes up to MaxAuthEntries lines and refuses longer files instead of cutting them.
const (
	MaxAuthEntries   = 1024
	MaxAuthLineBytes = 255
)

// PoolAuth holds the credentials Validate read from pool.upstream_auth_file and pool.client_auth_file. No field
// is exported and String shows no secret, so printing a config cannot leak them. A nil *PoolAuth has no
// credentials of either kind.
type PoolAuth struct {
	upUser, upPass string
	hasUpstream    bool
	upstreamFile   string
	clients        []authDigest // client_auth_file entries; nil without client authentication
}

// authDigest is one client entry as SHA-256 digests of the user and the password, so that checking a login
// takes the same time whatever the lengths and contents.
type authDigest struct{ user, pass [sha256.Size]byte }

// Auth returns the credentials the last Validate read, or nil when neither auth key is set (or Validate has
// not run).
func (p *Pool) Auth() *PoolAuth { return p.auth }

// Upstream returns the proxy's own login for upstream servers (pool.upstream_auth_file).
func (a *PoolAuth) Upstream() (user, password string, ok bool) {
	if a == nil || !a.hasUpstream {
		return "", "", false
	}
	return a.upUser, a.upPass, true
}

// UpstreamFile returns the path of pool.upstream_auth_file, for messages ("" when not set).
func (a *PoolAuth) UpstreamFile() string {
	if a == nil {
		return ""
	}
	return a.upstreamFile
}

// ClientAuth reports whether clients must log in (pool.client_auth_file is set).
func (a *PoolAuth) ClientAuth() bool { return a != nil && a.clients != nil }

// CheckClient reports whether user and password match an entry of pool.client_auth_file. It compares digests
// of every entry in constant time and never stops early, so its time tells nothing about which part was wrong.
func (a *PoolAuth) CheckClient(user, password []byte) bool {
	if !a.ClientAuth() {
		return false
	}
	u, pw := sha256.Sum256(user), sha256.Sum256(password)
	match := 0
	for i := range a.clients {
		e := &a.clients[i]
		match |= subtle.ConstantTimeCompare(u[:], e.user[:]) & subtle.ConstantTimeCompare(pw[:], e.pass[:])
	}
	return match == 1
}

// String describes the credentials without showing any of them.
func (a *PoolAuth) String() string {
	if a == nil {
		return "no pool authentication"
	}
	return fmt.Sprintf("pool authentication (upstream login: %v, client entries: %d)", a.hasUpstream, len(a.clients))
}

// loadPoolAuth reads the two auth files; nil when neither is set.
func loadPoolAuth(upstreamFile, clientFile string) (*PoolAuth, error) {
	if upstreamFile == "" && clientFile == "" {
		return nil, nil
	}
	a := &PoolAuth{upstreamFile: upstreamFile}
	if upstreamFile != "" {
		entries, err := readAuthFile("pool.upstream_auth_file", upstreamFile)
		if err != nil {
			return nil, err
		}
		if len(entries) != 1 {
			return nil, fmt.Errorf("pool.upstream_auth_file = %q: holds %d lines, want one \"user:password\"",
				upstreamFile, len(entries))
		}
		e := entries[0]
		// memcached splits an ascii auth token at its first space; SASL PLAIN separates with NUL bytes.
		if len(e.user) == 0 || bytes.ContainsAny(e.user, " \x00") || bytes.IndexByte(e.pass, 0) >= 0 {
			return nil, fmt.Errorf("pool.upstream_auth_file = %q: the user must be non-empty and hold no space, "+
				"and neither user nor password a NUL byte", upstreamFile)
		}
		a.upUser, a.upPass, a.hasUpstream = string(e.user), string(e.pass), true
	}
	if clientFile != "" {
		entries, err := readAuthFile("pool.client_auth_file", clientFile)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("pool.client_auth_file = %q: no \"user:password\" line: no client could log in",
				clientFile)
		}
		a.clients = make([]authDigest, len(entries))
		for i, e := range entries {
			a.clients[i] = authDigest{user: sha256.Sum256(e.user), pass: sha256.Sum256(e.pass)}
		}
	}
	return a, nil
}

type authEntry struct{ user, pass []byte }

// readAuthFile reads "user:password" lines as memcached reads its -Y authfile: the user ends at the first ':',
// the password at the end of the line (or a '\r' or NUL). A file that group or others may read is refused, as
// the salt file is. Errors name key and the line number, never a line's content.
func readAuthFile(key, path string) ([]authEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s = %q: not a regular file", key, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s = %q: mode %04o lets group or others read the passwords; run 'chmod 600 %s'",
			key, path, st.Mode().Perm(), path)
	}
	const limit = MaxAuthEntries * (MaxAuthLineBytes + 1)
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s = %q: larger than %d bytes (at most %d lines of %d bytes)", key, path, limit,
			MaxAuthEntries, MaxAuthLineBytes)
	}
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // the newline ending the last line
	}
	if len(lines) > MaxAuthEntries {
		return nil, fmt.Errorf("%s = %q: %d lines, at most %d", key, path, len(lines), MaxAuthEntries)
	}
	out := make([]authEntry, 0, len(lines))
	for i, line := range lines {
		if len(line) > MaxAuthLineBytes {
			return nil, fmt.Errorf("%s = %q: line %d is longer than %d bytes", key, path, i+1, MaxAuthLineBytes)
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || bytes.IndexByte(line[:colon], 0) >= 0 {
			return nil, fmt.Errorf("%s = %q: line %d is not \"user:password\"", key, path, i+1)
		}
		pass := line[colon+1:]
		if end := bytes.IndexAny(pass, "\r\x00"); end >= 0 {
			pass = pass[:end]
		}
		out = append(out, authEntry{user: line[:colon], pass: pass})
	}
	return out, nil
}
