package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// testConfig stands in for a mode's config until those exist.
type testConfig struct {
	Upstream string   `toml:"upstream"`
	Listen   string   `toml:"listen"`
	Timeout  Duration `toml:"timeout"`
	Metrics  struct {
		Listen string `toml:"listen"`
		Port   int    `toml:"port"`
	} `toml:"metrics"`
}

// writeConfig writes body to dir/name and returns the path.
func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad_Success(t *testing.T) {
	path := writeConfig(t, "proxy.toml", `
upstream = "127.0.0.1:11211"
timeout = "1500ms"

[metrics]
listen = "127.0.0.1:9100"
port = 9100
`)
	var c testConfig
	c.Listen = "default-listen" // absent from the file: must survive
	if err := Load(path, &c); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Upstream != "127.0.0.1:11211" || c.Listen != "default-listen" || c.Timeout.D() != 1500*time.Millisecond ||
		c.Metrics.Listen != "127.0.0.1:9100" || c.Metrics.Port != 9100 {
		t.Fatalf("decoded %+v", c)
	}
}

func TestLoad_Failure(t *testing.T) {
	// f loads body from a file named proxy.toml and wants an error containing every one of wants.
	f := func(body string, wants ...string) {
		t.Helper()
		path := writeConfig(t, "proxy.toml", body)
		var c testConfig
		err := Load(path, &c)
		if err == nil {
			t.Fatalf("Load(%q): no error, want one containing %q", body, wants)
		}
		for _, w := range append([]string{path}, wants...) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("Load(%q) error %q does not contain %q", body, err, w)
			}
		}
	}
	// Unknown keys, top level and nested; the whole error for the brief's example.
	f(`upstrem = "x"`, `proxy.toml: unknown key "upstrem"`)
	f("[metrics]\nlistn = \":9100\"\n", `unknown key "metrics.listn"`)
	f("upstream = \"x\"\nlistn = 1\nupstrem = 2\n", `unknown keys "listn", "upstrem"`)
	// An unknown table is reported once, not once per key inside it.
	f("[metrix]\nlisten = \"x\"\nport = 1\n", `unknown key "metrix"`)
	// A dotted key defines no table of its own, so the full key is named.
	f("metrix.listen = \"x\"\n", `unknown key "metrix.listen"`)
	// Type errors name the line and the key.
	f("[metrics]\nport = \"9100\"\n", `:2: incompatible types`, `(key "metrics.port")`)
	f("upstream = 5\n", `:1:`, `(key "upstream")`)
	f("timeout = 5\n", `timeout`, `cannot parse duration "5"`)
	f("timeout = \"soon\"\n", `:1:`, `timeout`, `cannot parse duration "soon"`)
	// Syntax errors name the line.
	f("upstream = \"x\"\nlisten = \n", `:2:`)
	f("upstream = \"x\"\n[metrics x]\n", `:2:`)
	f("upstream = \"x\"\nupstream = \"y\"\n", `:2:`, `upstream`)
}

func TestLoad_ErrorsUnwrap(t *testing.T) {
	path := writeConfig(t, "proxy.toml", "listen = \n")
	err := Load(path, &testConfig{})
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("syntax error %q does not unwrap to toml.ParseError", err)
	}

	missing := filepath.Join(t.TempDir(), "nope.toml")
	err = Load(missing, &testConfig{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: got %v, want fs.ErrNotExist naming %s", err, missing)
	}
}

func TestDuration(t *testing.T) {
	f := func(text string, want time.Duration) {
		t.Helper()
		var d Duration
		if err := d.UnmarshalText([]byte(text)); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", text, err)
		}
		if d.D() != want {
			t.Fatalf("UnmarshalText(%q) = %v, want %v", text, d.D(), want)
		}
		// The text form round-trips.
		out, err := d.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v): %v", d, err)
		}
		var back Duration
		if err := back.UnmarshalText(out); err != nil || back != d {
			t.Fatalf("round trip of %q through %q gave %v, %v", text, out, back, err)
		}
	}
	f("1s", time.Second)
	f("250ms", 250*time.Millisecond)
	f("1m30s", 90*time.Second)
	f("0", 0)
	f("0s", 0)

	for _, bad := range []string{"", "5", "1 s", "soon", "1x"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Fatalf("UnmarshalText(%q) = %v, want an error", bad, d)
		}
	}
}

func TestDuration_TOMLRoundTrip(t *testing.T) {
	in := struct {
		Timeout Duration `toml:"timeout"`
	}{Duration(2500 * time.Millisecond)}
	var buf strings.Builder
	if err := toml.NewEncoder(&buf).Encode(in); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(buf.String()), `timeout = "2.5s"`; got != want {
		t.Fatalf("encoded %q, want %q", got, want)
	}
	out := in
	out.Timeout = 0
	if _, err := toml.Decode(buf.String(), &out); err != nil || out != in {
		t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
	}
}
