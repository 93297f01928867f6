package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/mcproto"
)

func TestReplayExample(t *testing.T) {
	c, err := LoadReplay("replay.toml")
	if err != nil {
		t.Fatalf("cannot load the example: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if c.Mode != ModeTrace || c.Profile != "prod.mbp" || len(c.Targets) != 1 || !c.Warmup || c.Timeout.D() != 2*time.Second {
		t.Fatalf("unexpected example values: %+v", c)
	}
}

func TestReplayDefaults(t *testing.T) {
	c := DefaultReplay()
	c.Profile, c.Targets = "p.mbp", []string{"127.0.0.1:11211"}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with a profile and a target do not validate: %v", err)
	}
	if s, _ := c.SpeedFactor(); s != 1 {
		t.Fatalf("default speed %v", s)
	}
	if i, n, _ := c.ShardIndex(); i != 0 || n != 1 {
		t.Fatalf("default shard %d/%d", i, n)
	}
}

func TestReplayHelpers(t *testing.T) {
	c := DefaultReplay()
	c.Speed, c.Loop, c.Shard, c.Protocol = "max", "forever", "2/5", "meta"
	if s, err := c.SpeedFactor(); err != nil || s != 0 {
		t.Fatalf("speed max = %v, %v", s, err)
	}
	if l, err := c.Loops(); err != nil || l != -1 {
		t.Fatalf("loop forever = %v, %v", l, err)
	}
	if i, n, err := c.ShardIndex(); err != nil || i != 2 || n != 5 {
		t.Fatalf("shard 2/5 = %d/%d, %v", i, n, err)
	}
	if p, err := c.ProtocolOverride(); err != nil || p != mcproto.ProtoMeta {
		t.Fatalf("protocol meta = %v, %v", p, err)
	}
	c.Targets = []string{"10.0.0.1:11211", "10.0.0.2:11212:3 big", "[::1]:11211"}
	srv, err := c.RingServers()
	if err != nil {
		t.Fatal(err)
	}
	if len(srv) != 3 || srv[0].Weight != 1 || srv[1].Weight != 3 || srv[1].Name != "big" || srv[2].Addr != "[::1]:11211" {
		t.Fatalf("servers %+v", srv)
	}
}

func TestReplayValidate_Failure(t *testing.T) {
	f := func(toml, wantKey string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "r.toml")
		if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadReplay(path)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Fatalf("config %q: error %v does not name %q", toml, err, wantKey)
		}
	}
	const ok = "profile = \"p.mbp\"\ntargets = [\"h:1\"]\n"
	f(ok+"mode = \"live\"", "mode")
	f("targets = [\"h:1\"]", "profile")
	f("profile = \"p\"", "targets")
	f(ok+"workload = \"etc\"", "workload")
	f("mode = \"synthetic\"\ntargets = [\"h:1\"]\nworkload = \"etc\"", "duration")
	f("mode = \"synthetic\"\ntargets = [\"h:1\"]\nworkload = \"etc\"\nprofile = \"p\"\nops = 1", "exactly one")
	f("profile = \"p\"\ntargets = [\"nohost\"]", "targets[0]")
	f(ok+"hash = \"sha9\"", "hash")
	f(ok+"pipeline = 0", "pipeline")
	f(ok+"connections = -1", "connections")
	f(ok+"protocol = \"udp\"", "protocol")
	f(ok+"speed = \"-2\"", "speed")
	f(ok+"loop = \"never\"", "loop")
	f(ok+"rate = -1.0", "rate")
	f(ok+"arrivals = \"bursty\"", "arrivals")
	f(ok+"keys_scale = 0.0", "keys_scale")
	f(ok+"timeout = \"0s\"", "timeout")
	f(ok+"max_error_ratio = 2.0", "max_error_ratio")
	f(ok+"shard = \"1/1\"", "shard")
	f(ok+"shard = \"a\"", "shard")
	f(ok+"metrics_listen = \"x\"", "metrics_listen")
	f(ok+"metrics_push = \"vm:8428\"", "metrics_push")
	f(ok+"warmup_targets = [\"x\"]", "warmup_targets[0]")
	f(ok+"speeed = \"2\"", "speeed")
}
