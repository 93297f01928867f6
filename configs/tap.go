// The tap's configuration: `membench tap`, a passive recorder that reassembles memcached traffic from a live
// interface (libpcap) or a pcap/pcapng file.
package configs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tap configures `membench tap`. TOML keys are the snake_case names in the tags.
type Tap struct {
	// Interface captures live on this network interface ("lo", "eth0"). Exactly one of Interface and Pcap.
	Interface string `toml:"interface"`
	// Pcap reads a pcap or pcapng file instead of capturing.
	Pcap string `toml:"pcap"`
	// Ports are the memcached server ports: traffic to them is requests, from them responses.
	Ports []int `toml:"ports"`
	// BPF overrides the capture filter built from Ports (and Encap). Offline, it is applied to the file's
	// packets too, before any tunnel is opened.
	BPF string `toml:"bpf"`
	// Encap says which tunnels mirrored traffic is taken out of: "auto" (the default: VXLAN on UDP 4789, as AWS
	// VPC Traffic Mirroring sends it, and GRE with ERSPAN type I/II/III remote SPAN), "vxlan", "gre" (GRE and
	// ERSPAN) or "none". The default capture filter lets the chosen tunnels through.
	Encap string `toml:"encap"`
	// Promiscuous puts the interface in promiscuous mode (to see traffic between other hosts).
	Promiscuous bool `toml:"promiscuous"`
	// SnapLen is the capture length per packet; the default captures whole packets.
	SnapLen int `toml:"snaplen"`
	// BufferSize is the kernel capture buffer in bytes: larger survives longer bursts without drops.
	BufferSize int `toml:"buffer_size"`
	// ImmediateMode delivers each packet as it arrives. libpcap then uses TPACKET_V2, whose ring has one
	// snaplen-sized slot per packet: with whole-packet snap lengths a 64 MiB buffer holds only a few hundred
	// packets, and a busy host drops (bench/tap.sh: 144k kernel drops at 124k ops/s on loopback). Off (the
	// default), packets are packed into the ring (TPACKET_V3) and delivered in blocks at most 100ms late:
	// drop-free at 184k ops/s in the same script. Timestamps, and so latencies, are the kernel's either way, so a
	// recorder loses nothing by waiting.
	ImmediateMode bool `toml:"immediate_mode"`
	// Duration stops the tap after this long (wall clock live; capture time from the first packet offline);
	// 0 runs until the file ends or SIGINT/SIGTERM.
	Duration Duration `toml:"duration"`

	// Recording: record, salt_file, host_label, sample_rate, namespace_delimiter, queue_size, flush_interval,
	// compress.
	Recording
	// MetricsListen serves Prometheus /metrics; empty disables it.
	MetricsListen string `toml:"metrics_listen"`

	// MaxFlows bounds the connections tracked at once; packets of further connections are counted and ignored.
	MaxFlows int `toml:"max_flows"`
	// MaxFlowBuffer bounds the bytes one connection may hold while waiting for missing or reordered segments.
	MaxFlowBuffer int `toml:"max_flow_buffer"`
	// MaxTotalBuffer bounds those bytes over all connections.
	MaxTotalBuffer int `toml:"max_total_buffer"`
	// MaxPending bounds the requests one connection may have waiting for responses.
	MaxPending int `toml:"max_pending"`
	// MaxLine is the longest non-get command line (memcached: 2048).
	MaxLine int `toml:"max_line"`
	// ReorderWindow is how long (capture time) a missing segment is waited for before it counts as lost.
	ReorderWindow Duration `toml:"reorder_window"`
	// IdleTimeout forgets connections without packets for this long (capture time); their waiting requests
	// are recorded as lost.
	IdleTimeout Duration `toml:"idle_timeout"`
}

// DefaultTap returns the tap defaults.
func DefaultTap() Tap {
	return Tap{
		Ports:          []int{11211},
		Encap:          "auto",
		SnapLen:        262144,
		BufferSize:     64 << 20,
		ImmediateMode:  false,
		Recording:      DefaultRecording(),
		MetricsListen:  "127.0.0.1:9151",
		MaxFlows:       65536,
		MaxFlowBuffer:  4 << 20,
		MaxTotalBuffer: 256 << 20,
		MaxPending:     1 << 16,
		MaxLine:        2048,
		ReorderWindow:  Duration(250 * time.Millisecond),
		IdleTimeout:    Duration(2 * time.Minute),
	}
}

// LoadTap reads a tap config file over the defaults.
func LoadTap(path string) (Tap, error) {
	c := DefaultTap()
	if path == "" {
		return c, nil
	}
	err := Load(path, &c)
	return c, err
}

// ParsePorts parses a comma-separated port list ("11211,11212") as given to --port.
func ParsePorts(s string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("cannot parse port %q in %q: want numbers in [1, 65535] separated by commas", f, s)
		}
		ports = append(ports, p)
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("cannot parse ports %q: no port given", s)
	}
	return ports, nil
}

// Validate checks every field and names the key to fix.
func (c *Tap) Validate() error {
	switch {
	case c.Interface == "" && c.Pcap == "":
		return fmt.Errorf("neither interface nor pcap is set: give an interface to capture on or a file to read")
	case c.Interface != "" && c.Pcap != "":
		return fmt.Errorf("interface = %q and pcap = %q are both set: choose one", c.Interface, c.Pcap)
	}
	if len(c.Ports) == 0 {
		return fmt.Errorf("ports is empty: give the memcached server port(s), e.g. [11211]")
	}
	seen := map[int]bool{}
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("ports: %d is not a TCP port (want 1..65535)", p)
		}
		if seen[p] {
			return fmt.Errorf("ports: %d is listed twice", p)
		}
		seen[p] = true
	}
	switch c.Encap {
	case "auto", "none", "vxlan", "gre":
	default:
		return fmt.Errorf("encap = %q: want auto, none, vxlan or gre", c.Encap)
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
		key string
		v   int
		min int
	}{
		{"snaplen", c.SnapLen, 128},
		{"buffer_size", c.BufferSize, 1 << 16},
		{"max_flows", c.MaxFlows, 1},
		{"max_flow_buffer", c.MaxFlowBuffer, 1 << 16},
		{"max_total_buffer", c.MaxTotalBuffer, 1 << 16},
		{"max_pending", c.MaxPending, 1},
		{"max_line", c.MaxLine, 64},
	} {
		if f.v < f.min {
			return fmt.Errorf("%s = %d: must be at least %d", f.key, f.v, f.min)
		}
	}
	if c.MaxTotalBuffer < c.MaxFlowBuffer {
		return fmt.Errorf("max_total_buffer = %d is smaller than max_flow_buffer = %d: raise it", c.MaxTotalBuffer,
			c.MaxFlowBuffer)
	}
	for _, f := range []struct {
		key string
		v   Duration
	}{
		{"reorder_window", c.ReorderWindow}, {"idle_timeout", c.IdleTimeout},
	} {
		if f.v <= 0 {
			return fmt.Errorf("%s = %s: must be positive", f.key, time.Duration(f.v))
		}
	}
	if c.Duration < 0 {
		return fmt.Errorf("duration = %s: must be 0 (until stopped) or positive", time.Duration(c.Duration))
	}
	return nil
}
