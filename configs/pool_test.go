package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPoolExample(t *testing.T) {
	c, err := LoadProxy("pool.toml")
	if err != nil {
		t.Fatalf("cannot load the example: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	p := c.Pool
	if !p.Enabled() {
		t.Fatalf("the pool example is not in pool mode: %+v", p)
	}
	want := []string{"127.0.0.1:11211:1", "127.0.0.1:11212:1", "127.0.0.1:11213:2 cache-c"}
	if !reflect.DeepEqual(p.Servers, want) {
		t.Fatalf("servers %q, want %q", p.Servers, want)
	}
	if p.Hash != "fnv1a_64" || p.HashTag != "{}" || p.ConnectionsPerServer != 1 || p.Timeout.D() != time.Second ||
		p.AutoEject || p.FailureLimit != 2 || p.RetryTimeout.D() != 30*time.Second {
		t.Fatalf("unexpected pool values: %+v", p)
	}
	srv, err := p.RingServers()
	if err != nil || len(srv) != 3 || srv[2].Name != "cache-c" || srv[2].Weight != 2 {
		t.Fatalf("RingServers: %+v, %v", srv, err)
	}
	// The shadow pool is written out but off: the example must not copy traffic anywhere by default.
	if len(p.Shadow.Servers) != 2 || p.Shadow.Fraction != 0 || p.Shadow.MaxBuffer != 4<<20 {
		t.Fatalf("unexpected shadow values: %+v", p.Shadow)
	}
	if _, err := p.ShadowServers(); err != nil {
		t.Fatalf("ShadowServers: %v", err)
	}
}

// poolExampleWith returns the pool example with edit applied to its text, written to a temporary file.
func poolExampleWith(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile("pool.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pool.toml")
	if err := os.WriteFile(path, []byte(edit(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPoolConfig_Failure(t *testing.T) {
	// f edits the example and wants Load or Validate to fail with an error containing every one of wants.
	f := func(edit func(string) string, wants ...string) {
		t.Helper()
		path := poolExampleWith(t, edit)
		c, err := LoadProxy(path)
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			t.Fatalf("no error, want one containing %q", wants)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not contain %q", err, w)
			}
		}
	}
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("the example has no %q to edit", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	// Unknown keys are named with their table, with the file.
	f(replace("hash_tag =", "hash_tg ="), "pool.toml", `unknown key "pool.hash_tg"`)
	f(replace("auto_eject_hosts =", "auto_eject ="), `unknown key "pool.auto_eject"`)
	f(replace("max_buffer =", "max_bufer ="), `unknown key "pool.shadow.max_bufer"`)
	f(replace("[pool.shadow]", "[pool.shadw]"), `unknown key "pool.shadw"`)
	// A bad hash name names pool.hash and lists the valid names.
	f(replace(`hash = "fnv1a_64"            #`, `hash = "fnv1a64" #`), "pool.hash", `unknown hash "fnv1a64"`, "md5")
	f(replace("hash = \"fnv1a_64\"\nfraction", "hash = \"nope\"\nfraction"), "pool.shadow", `unknown hash "nope"`)
	// Other values name their key.
	f(replace(`"127.0.0.1:11212:1"`, `"127.0.0.1:11212"`), "pool.servers[1]")
	f(replace(`"127.0.0.1:11212:1"`, `"127.0.0.1:11212:0"`), "pool.servers[1]")
	f(replace(`hash_tag = "{}"`, `hash_tag = "{"`), "pool.hash_tag")
	f(replace("connections_per_server = 1", "connections_per_server = 65"), "pool.connections_per_server")
	f(replace("\ntimeout = \"1s\"", "\ntimeout = \"-1s\""), "pool.timeout")
	f(replace("server_failure_limit = 2", "server_failure_limit = 0"), "pool.server_failure_limit")
	f(replace(`server_retry_timeout = "30s"`, `server_retry_timeout = "0s"`), "pool.server_retry_timeout")
	f(replace(`server_retry_timeout = "30s"`, `server_retry_timeout = 30`), "server_retry_timeout")
	f(replace("fraction = 0.0", "fraction = 1.5"), "pool.shadow.fraction")
	f(replace("max_buffer = 4194304", "max_buffer = 10"), "pool.shadow.max_buffer")
	f(replace(`"127.0.0.1:11312:1"`, `"127.0.0.1:11312"`), "pool.shadow.servers[1]")
	// Two servers with the same ring name would share points: refused.
	f(replace(`"127.0.0.1:11212:1"`, `"127.0.0.1:11212:1 cache-c"`), "cache-c")
}

func TestPoolConfig_Success(t *testing.T) {
	// Turning the shadow on, a named server list without the shadow table, and twemproxy's other hashes.
	f := func(edit func(string) string, check func(Pool) bool) {
		t.Helper()
		c, err := LoadProxy(poolExampleWith(t, edit))
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			t.Fatalf("edited example: %v", err)
		}
		if !check(c.Pool) {
			t.Fatalf("edited example decoded as %+v", c.Pool)
		}
	}
	f(func(s string) string { return strings.Replace(s, "fraction = 0.0", "fraction = 0.5", 1) },
		func(p Pool) bool { return p.Shadow.Fraction == 0.5 })
	f(func(s string) string { return s[:strings.Index(s, "[pool.shadow]")] },
		func(p Pool) bool { return len(p.Shadow.Servers) == 0 && p.Shadow.Hash == "fnv1a_64" })
	for _, h := range []string{"md5", "crc32", "one_at_a_time", "murmur", "fnv1_64", "hsieh", "jenkins"} {
		f(func(s string) string {
			return strings.Replace(s, `hash = "fnv1a_64"            #`, `hash = "`+h+`" #`, 1)
		},
			func(p Pool) bool { return p.Hash == h })
	}
}

// authFile writes body to a file with mode perm and returns its path.
func authFile(t *testing.T, body string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// withAuth returns an edit of the pool example that sets key to path.
func withAuth(key, path string) func(string) string {
	return func(s string) string {
		return strings.Replace(s, "# "+key+" = ", key+" = "+strconv.Quote(path)+" # ", 1)
	}
}

func TestPoolAuthConfig_Failure(t *testing.T) {
	f := func(key, body string, perm os.FileMode, wants ...string) {
		t.Helper()
		path := authFile(t, body, perm)
		c, err := LoadProxy(poolExampleWith(t, withAuth(key, path)))
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			t.Fatalf("%s with %q (mode %04o): no error, want one containing %q", key, body, perm, wants)
		}
		for _, w := range append(wants, "pool."+key) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not contain %q", err, w)
			}
		}
		// An error never shows a file's content.
		for _, secret := range []string{"s3cret", "hunter2"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q shows the password", err)
			}
		}
	}
	for _, key := range []string{"upstream_auth_file", "client_auth_file"} {
		// Readable by group or others: refused, as the salt file is, with the fix.
		f(key, "u:s3cret\n", 0o644, "chmod 600")
		f(key, "u:s3cret\n", 0o640, "chmod 600")
		f(key, "u:s3cret\n", 0o604, "chmod 600")
		// Malformed lines are named by number only.
		f(key, "no colon s3cret\n", 0o600, "line 1")
		f(key, "u:s3cret\n\nv:hunter2\n", 0o600, "line 2")
		f(key, "u:"+strings.Repeat("s3cret", 50)+"\n", 0o600, "line 1", "255")
	}
	f("upstream_auth_file", "", 0o600, "holds 0 lines")
	f("upstream_auth_file", "u:s3cret\nv:hunter2\n", 0o600, "holds 2 lines")
	f("upstream_auth_file", ":s3cret\n", 0o600, "non-empty")
	f("upstream_auth_file", "a user:s3cret\n", 0o600, "no space")
	f("client_auth_file", "", 0o600, "no \"user:password\" line")
	f("client_auth_file", strings.Repeat("u:hunter2\n", MaxAuthEntries+1), 0o600, "1025 lines")
	// A missing file names the key.
	c, err := LoadProxy(poolExampleWith(t, withAuth("client_auth_file", "/nonexistent/auth")))
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "pool.client_auth_file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPoolAuthConfig_Success(t *testing.T) {
	up := authFile(t, "proxy:s3cret:with:colons\n", 0o600)
	clients := authFile(t, "alice:hunter2\r\nbob:\n:empty-user\nalice:second", 0o400)
	c, err := LoadProxy(poolExampleWith(t, func(s string) string {
		return withAuth("client_auth_file", clients)(withAuth("upstream_auth_file", up)(s))
	}))
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	a := c.Pool.Auth()
	if u, p, ok := a.Upstream(); !ok || u != "proxy" || p != "s3cret:with:colons" {
		t.Fatalf("Upstream() = %q, %q, %v", u, p, ok)
	}
	if a.UpstreamFile() != up || !a.ClientAuth() {
		t.Fatalf("UpstreamFile %q, ClientAuth %v", a.UpstreamFile(), a.ClientAuth())
	}
	f := func(user, pass string, want bool) {
		t.Helper()
		if got := a.CheckClient([]byte(user), []byte(pass)); got != want {
			t.Fatalf("CheckClient(%q, %q) = %v, want %v", user, pass, got, want)
		}
	}
	f("alice", "hunter2", true) // "\r\n" line ends, as memcached reads them
	f("alice", "second", true)  // the last line needs no newline
	f("bob", "", true)
	f("", "empty-user", true)
	f("alice", "hunter", false)
	f("alice", "hunter2\r", false)
	f("alic", "hunter2", false)
	f("bob", "x", false)
	f("carol", "hunter2", false)
	// Printing the config shows no secret.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", a, c, c), a.String()} {
		for _, secret := range []string{"s3cret", "hunter2", "second"} {
			if strings.Contains(s, secret) {
				t.Fatalf("printing the config shows %q: %s", secret, s)
			}
		}
	}
	// Without the keys there is no authentication of either kind, and a nil *PoolAuth says so.
	c, err = LoadProxy("pool.toml")
	if err == nil {
		err = c.Validate()
	}
	if err != nil || c.Pool.Auth() != nil {
		t.Fatalf("the example: %v, %v", c.Pool.Auth(), err)
	}
	var none *PoolAuth
	if _, _, ok := none.Upstream(); ok || none.ClientAuth() || none.CheckClient(nil, nil) {
		t.Fatal("a nil PoolAuth has credentials")
	}
}
