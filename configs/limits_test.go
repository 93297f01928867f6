package configs

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Absurd sizes and counts, as a config file or a flag may give them: each must be refused by Validate with the
// key's name, before anything is allocated for it (queue_size = 2^63-1 used to panic in makeslice, 1e9, 2^31
// and 2^40 to end in "fatal error: out of memory").
var absurd = []int64{math.MaxInt64, 1 << 40, 1 << 31, 1e9}

func TestLimits_Recording(t *testing.T) {
	f := func(mode string, edit func(*Recording), key string) {
		t.Helper()
		var err error
		switch mode {
		case "proxy":
			c := DefaultProxy()
			edit(&c.Recording)
			err = c.Validate()
		case "tap":
			c := DefaultTap()
			c.Pcap = "x.pcap"
			edit(&c.Recording)
			err = c.Validate()
		}
		if key == "" {
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), key+" = ") {
			t.Fatalf("%s: err %v, want one naming %s", mode, err, key)
		}
	}
	for _, mode := range []string{"proxy", "tap"} {
		for _, v := range absurd {
			f(mode, func(r *Recording) { r.QueueSize = int(v) }, "queue_size")
		}
		f(mode, func(r *Recording) { r.QueueSize = MaxQueueSize + 1 }, "queue_size")
		f(mode, func(r *Recording) { r.QueueSize = MaxQueueSize }, "")
		f(mode, func(r *Recording) { r.HostLabel = strings.Repeat("h", MaxHostLabel+1) }, "host_label")
		f(mode, func(r *Recording) { r.HostLabel = strings.Repeat("h", MaxHostLabel) }, "")
	}
}

func TestLimits_Proxy(t *testing.T) {
	f := func(edit func(*Proxy), key string) {
		t.Helper()
		c := DefaultProxy()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key+" = ") {
			t.Fatalf("err %v, want one naming %s", err, key)
		}
	}
	// The proxy's own maxima are above some of the absurd values (max_client_buffer goes to 4 GiB).
	for _, v := range []int64{math.MaxInt64, 1 << 41} {
		f(func(c *Proxy) { c.EventLoops = int(v) }, "event_loops")
		f(func(c *Proxy) { c.MaxConnections = int(v) }, "max_connections")
		f(func(c *Proxy) { c.MaxLine = int(v) }, "max_line")
		f(func(c *Proxy) { c.MaxItemSize = int(v) }, "max_item_size")
		f(func(c *Proxy) { c.MaxClientBuffer = int(v) }, "max_client_buffer")
		f(func(c *Proxy) { c.BackpressureBytes = int(v) }, "backpressure_bytes")
		f(func(c *Proxy) { c.MaxBufferedBytes = v }, "max_buffered_bytes")
	}
}

func TestLimits_Pool(t *testing.T) {
	f := func(edit func(*Pool), key string) {
		t.Helper()
		c := DefaultProxy()
		c.Pool.Servers = []string{"127.0.0.1:11211:1", "127.0.0.1:11212:1"}
		edit(&c.Pool)
		err := c.Validate()
		if key == "" {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Fatalf("err %v, want one naming %s", err, key)
		}
	}
	servers := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("10.0.%d.%d:11211:1", i/256, i%256)
		}
		return s
	}
	for _, v := range absurd {
		f(func(p *Pool) { p.ConnectionsPerServer = int(v) }, "pool.connections_per_server = ")
		f(func(p *Pool) { p.FailureLimit = int(v) }, "pool.server_failure_limit = ")
		if v > MaxShadowBuffer {
			f(func(p *Pool) {
				p.Shadow.Servers, p.Shadow.MaxBuffer = []string{"127.0.0.1:11213:1"}, int(v)
			}, "pool.shadow.max_buffer = ")
		}
	}
	// Weights are shares: any up to a total of 2^32-1 is fine (ring).
	f(func(p *Pool) { p.Servers = []string{"127.0.0.1:11211:" + fmt.Sprint(int64(math.MaxInt64))} }, "weight")
	f(func(p *Pool) { p.Servers = []string{"127.0.0.1:11211:" + fmt.Sprint(1<<40)} }, "weight")
	f(func(p *Pool) { p.Servers = servers(MaxPoolServers + 1) }, "pool.servers")
	f(func(p *Pool) { p.Servers = servers(MaxPoolServers) }, "")
	f(func(p *Pool) { p.Shadow.Servers = servers(MaxPoolServers + 1) }, "pool.shadow.servers")
	f(func(p *Pool) { p.FailureLimit = MaxFailureLimit }, "")
	f(func(p *Pool) { p.Shadow.Servers, p.Shadow.MaxBuffer = []string{"127.0.0.1:11213:1"}, MaxShadowBuffer }, "")
}

func TestLimits_Replay(t *testing.T) {
	f := func(edit func(*Replay), key string) {
		t.Helper()
		c := DefaultReplay()
		c.Profile, c.Targets = "p.mbp", []string{"127.0.0.1:11211"}
		edit(&c)
		err := c.Validate()
		if key == "" {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Fatalf("err %v, want one naming %s", err, key)
		}
	}
	many := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("10.0.%d.%d:11211", i/256, i%256)
		}
		return s
	}
	for _, v := range absurd {
		f(func(c *Replay) { c.Connections = int(v) }, "connections = ")
		f(func(c *Replay) { c.Pipeline = int(v) }, "pipeline = ")
		f(func(c *Replay) { c.Loop = fmt.Sprint(v) }, "loop = ")
		f(func(c *Replay) { c.Rate = 10 * float64(v) }, "rate = ")
		f(func(c *Replay) { c.KeysScale = float64(v) }, "keys_scale = ")
		f(func(c *Replay) { c.Shard = fmt.Sprintf("0/%d", v) }, "shard = ")
	}
	f(func(c *Replay) { c.Rate = math.Inf(1) }, "rate = ")
	f(func(c *Replay) { c.Rate = 1e300 }, "rate = ")
	for _, v := range []uint64{math.MaxUint64, 1 << 62, MaxOps + 1} {
		f(func(c *Replay) { c.Ops = v }, "ops = ")
	}
	f(func(c *Replay) { c.Connections, c.Pipeline = MaxReplayConnections, MaxPipeline }, "connections × pipeline")
	f(func(c *Replay) { c.Connections, c.Pipeline = 64, MaxPipeline }, "")
	f(func(c *Replay) { c.Connections, c.Pipeline = MaxReplayConnections, 16 }, "")
	f(func(c *Replay) { c.Targets = many(MaxTargets + 1) }, "targets")
	f(func(c *Replay) { c.Targets = many(MaxTargets) }, "")
	f(func(c *Replay) { c.WarmupTargets = many(MaxTargets + 1) }, "warmup_targets")
	f(func(c *Replay) { c.Ops, c.Loop, c.Rate = MaxOps, fmt.Sprint(MaxLoops), MaxRate }, "")
	f(func(c *Replay) {
		c.Mode, c.Profile, c.Workload, c.KeysScale, c.Ops = ModeSynthetic, "", "etc", MaxKeysScale, 1
	}, "")
	f(func(c *Replay) { c.Shard = fmt.Sprintf("0/%d", MaxShards) }, "")
}
