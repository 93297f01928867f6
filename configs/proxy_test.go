package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProxyExample(t *testing.T) {
	c, err := LoadProxy("proxy.toml")
	if err != nil {
		t.Fatalf("cannot load the example: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if c.Upstream != "127.0.0.1:11211" || c.Pool.Enabled() {
		t.Fatalf("unexpected example values: %+v", c)
	}
}

func TestProxyValidate_Failure(t *testing.T) {
	f := func(toml, wantKey string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "p.toml")
		if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadProxy(path)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Fatalf("config %q: error %v does not name %q", toml, err, wantKey)
		}
	}
	f(`upstream = "nohost"`, "upstream")
	f(`listen = ""`, "listen")
	f(`sample_rate = 0.0`, "sample_rate")
	f(`sample_rate = 1.5`, "sample_rate")
	f(`namespace_delimiter = "::"`, "namespace_delimiter")
	f(`max_connections = 0`, "max_connections")
	f(`flush_interval = "0s"`, "flush_interval")
	f(`idle_timeout = "-1s"`, "idle_timeout")
	f(`upstrem = "127.0.0.1:1"`, "upstrem")
	f("[pool]\nservers = [\"127.0.0.1:1:1\"]\nhash = \"nope\"", "pool")
	f("[pool]\nservers = [\"127.0.0.1:1\"]", "pool.servers[0]")
	f("[pool]\nservers = [\"127.0.0.1:1:1\"]\nconnections_per_server = 0", "pool.connections_per_server")
}

func TestUpstreamList(t *testing.T) {
	single, pool := UpstreamList("127.0.0.1:11211")
	if single != "127.0.0.1:11211" || pool != nil {
		t.Fatalf("single upstream: %q %q", single, pool)
	}
	single, pool = UpstreamList("a:1, b:2")
	if single != "" || len(pool) != 2 || pool[0] != "a:1:1" || pool[1] != "b:2:1" {
		t.Fatalf("pool upstreams: %q %q", single, pool)
	}
}
