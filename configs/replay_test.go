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

func TestReplayTargets_Failure(t *testing.T) {
	f := func(target string, wants ...string) {
		t.Helper()
		c := DefaultReplay()
		c.Profile, c.Targets = "p.mbp", []string{target}
		err := c.Validate()
		for _, w := range wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("target %q: error %v does not contain %q", target, err, w)
			}
		}
	}
	f("localhost", `targets[0] = "localhost": the port is missing`, "localhost:11211", "--target")
	f("10.0.0.1", "the port is missing", "10.0.0.1:11211")
	f("localhost:abc", `port "abc" is not a number`, "localhost:11211")
	f("localhost:0", `port "0" is not a number`)
	f("localhost:70000", `port "70000" is not a number`)
	f("localhost:11211:x", "weight")
}

func TestReplayShardEnv(t *testing.T) {
	env := map[string]string{"JOB_COMPLETION_INDEX": "2", "BAD": "two", "NEG": "-1", "BIG": "4"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f := func(name string, shards int, want string) {
		t.Helper()
		c := DefaultReplay()
		c.Profile, c.Targets, c.ShardIndexEnv, c.Shards = "p.mbp", []string{"h:1"}, name, shards
		err := c.ResolveShard(lookup)
		if err == nil {
			err = c.Validate()
		}
		if want == "" {
			if err != nil || c.Shard != "2/4" {
				t.Fatalf("%s with %d shards: shard %q, %v", name, shards, c.Shard, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s with %d shards: error %v, want one containing %q", name, shards, err, want)
		}
	}
	f("JOB_COMPLETION_INDEX", 4, "")
	f("UNSET", 4, "UNSET is not set")
	f("BAD", 4, `BAD = "two" is not a shard index, a whole number in [0,4)`)
	f("NEG", 4, "[0,4)")
	f("BIG", 4, "[0,4)")
	f("JOB_COMPLETION_INDEX", 0, "--shards N")
	// shards without shard_index_env is a mistake, not ignored.
	c := DefaultReplay()
	c.Profile, c.Targets, c.Shards = "p.mbp", []string{"h:1"}, 4
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shard_index_env") {
		t.Fatalf("shards without shard_index_env: %v", err)
	}
}

func TestReplayStartTime(t *testing.T) {
	f := func(in string, want time.Time) {
		t.Helper()
		c := DefaultReplay()
		c.StartAt = in
		got, err := c.StartTime()
		if err != nil || !got.Equal(want) {
			t.Fatalf("start_at %q = %v, %v; want %v", in, got, err, want)
		}
	}
	f("", time.Time{})
	f("2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC))
	f("2026-01-02T16:04:05.25+01:00", time.Date(2026, 1, 2, 15, 4, 5, 250_000_000, time.UTC))
	f("1767366245", time.Unix(1767366245, 0))
	f("1767366245.5", time.Unix(1767366245, 500_000_000))
	f("1767366245.000000001", time.Unix(1767366245, 1))
	for _, bad := range []string{"now", "2026-01-02 15:04:05", "1767366245.", "-5", "+5", "1.2.3", "1767366245000"} {
		c := DefaultReplay()
		c.Profile, c.Targets, c.StartAt = "p.mbp", []string{"h:1"}, bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "start_at") {
			t.Fatalf("start_at %q: %v", bad, err)
		}
	}
}
