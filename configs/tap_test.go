package configs

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestTapExample loads and validates configs/tap.toml, so the example never rots.
func TestTapExample(t *testing.T) {
	c, err := LoadTap(filepath.Join(".", "tap.toml"))
	if err != nil {
		t.Fatalf("LoadTap(tap.toml): %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("tap.toml does not validate: %v", err)
	}
	if c.Interface != "lo" || !reflect.DeepEqual(c.Ports, []int{11211}) || c.Record != "tap.mbp" ||
		c.ReorderWindow.D() != 250*time.Millisecond || c.Encap != "auto" {
		t.Fatalf("tap.toml decoded to %+v", c)
	}
}

func TestTapValidate_Failure(t *testing.T) {
	f := func(edit func(*Tap), want string) {
		t.Helper()
		c := DefaultTap()
		c.Interface = "lo"
		edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v, want an error containing %q", err, want)
		}
	}
	f(func(c *Tap) { c.Interface = "" }, "neither interface nor pcap")
	f(func(c *Tap) { c.Pcap = "x.pcap" }, "choose one")
	f(func(c *Tap) { c.Ports = nil }, "ports is empty")
	f(func(c *Tap) { c.Ports = []int{0} }, "ports: 0")
	f(func(c *Tap) { c.Ports = []int{11211, 11211} }, "listed twice")
	f(func(c *Tap) { c.SampleRate = 0 }, "sample_rate")
	f(func(c *Tap) { c.NamespaceDelimiter = "::" }, "namespace_delimiter")
	f(func(c *Tap) { c.SnapLen = 10 }, "snaplen")
	f(func(c *Tap) { c.MaxFlows = 0 }, "max_flows")
	f(func(c *Tap) { c.MaxTotalBuffer = 1 << 16; c.MaxFlowBuffer = 1 << 20 }, "max_total_buffer")
	f(func(c *Tap) { c.ReorderWindow = 0 }, "reorder_window")
	f(func(c *Tap) { c.Duration = -1 }, "duration")
	f(func(c *Tap) { c.MetricsListen = "nohost" }, "metrics_listen")
	f(func(c *Tap) { c.Encap = "geneve" }, "encap")
	f(func(c *Tap) { c.Encap = "" }, "encap")
}

func TestTapLoad_UnknownKey(t *testing.T) {
	path := writeConfig(t, "tap.toml", "interface = \"lo\"\nreorder_windw = \"1s\"\n")
	if _, err := LoadTap(path); err == nil || !strings.Contains(err.Error(), `unknown key "reorder_windw"`) {
		t.Fatalf("LoadTap: %v, want the unknown key named", err)
	}
}

func TestParsePorts(t *testing.T) {
	f := func(in string, want []int) {
		t.Helper()
		got, err := ParsePorts(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParsePorts(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("11211", []int{11211})
	f("11211,11212", []int{11211, 11212})
	f(" 1 , 65535 ,", []int{1, 65535})
	for _, bad := range []string{"", ",", "x", "0", "65536", "11211;11212", "-1"} {
		if _, err := ParsePorts(bad); err == nil || !strings.Contains(err.Error(), "port") {
			t.Fatalf("ParsePorts(%q) = %v, want an error", bad, err)
		}
	}
}
