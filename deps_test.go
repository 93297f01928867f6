// Package membench_test holds repository-wide tests. This file enforces the layering (docs/ARCHITECTURE.md) with
// `go list -deps`: mcproto uses only the standard library, a mode (proxy, tap, replay) never imports another
// mode, the proxy never pulls in gopacket nor the tap gnet, and the shared packages never import a mode.
package membench_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/membench/membench"

// modes are the three transports; none may import another.
var modes = []string{"proxy", "tap", "replay"}

// shared are the packages modes build on; they may not import a mode. ring is the shared key-hashing ring.
var shared = []string{"mcproto", "profile", "configs", "ring"}

// depRule says what one package of this module must not depend on, directly or through others.
type depRule struct {
	pkg       string   // directory relative to the module root, e.g. "proxy"
	stdOnly   bool     // only the standard library (and pkg's own subpackages)
	forbidden []string // import paths; each also forbids the packages below it
	why       string   // said in the failure, so the reader knows what the rule protects
}

func depRules() []depRule {
	rules := []depRule{{
		pkg: "mcproto", stdOnly: true,
		why: "mcproto is bytes in, frames out: no sockets, files, metrics or logs, so standard library only",
	}}
	for _, m := range modes {
		var others []string
		for _, o := range modes {
			if o != m {
				others = append(others, module+"/"+o)
			}
		}
		rules = append(rules, depRule{pkg: m, forbidden: others,
			why: "a mode never imports another mode; move what both need into a shared package"})
	}
	rules = append(rules,
		depRule{pkg: "proxy", forbidden: []string{"github.com/gopacket/gopacket"},
			why: "the proxy must not link libpcap; packet capture is the tap's"},
		depRule{pkg: "tap", forbidden: []string{"github.com/panjf2000/gnet"},
			why: "the tap only listens to packets; gnet event loops are the proxy's"},
	)
	for _, s := range shared {
		var all []string
		for _, m := range modes {
			all = append(all, module+"/"+m)
		}
		rules = append(rules, depRule{pkg: s, forbidden: all,
			why: "layers only look down: shared packages never import a mode"})
	}
	return rules
}

// pkgDep is one line of `go list -deps`.
type pkgDep struct {
	path    string
	std     bool
	imports []string
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// checkDeps returns one message per dependency of r.pkg (listed in deps, as `go list -deps` gives them) that
// breaks r, with the import chain that brings it in.
func checkDeps(r depRule, deps []pkgDep) []string {
	root := module + "/" + r.pkg
	var bad []string
	for _, d := range deps {
		if d.path == root {
			continue
		}
		broken := false
		if r.stdOnly && !d.std && !under(d.path, root) {
			broken = true
		}
		for _, f := range r.forbidden {
			if under(d.path, f) {
				broken = true
			}
		}
		if broken {
			bad = append(bad, fmt.Sprintf("%s depends on %s (%s): %s",
				r.pkg, d.path, strings.Join(importChain(root, d.path, deps), " -> "), r.why))
		}
	}
	return bad
}

// importChain returns the shortest chain of imports from one package to another, both ends included, or just
// the two ends if deps does not show one.
func importChain(from, to string, deps []pkgDep) []string {
	imports := map[string][]string{}
	for _, d := range deps {
		imports[d.path] = d.imports
	}
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, next := range imports[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{from, to}
}

// hasGoFiles reports whether dir holds a non-test Go file; `go list` on a directory without one fails.
func hasGoFiles(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

// listDeps runs `go list -deps` on ./pkg and parses its output.
func listDeps(t *testing.T, pkg string) []pkgDep {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{.Standard}} {{join .Imports " "}}`, "./"+pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v\n%s", pkg, err, stderr.Bytes())
	}
	var deps []pkgDep
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("go list -deps ./%s: cannot parse line %q", pkg, line)
		}
		deps = append(deps, pkgDep{path: fields[0], std: fields[1] == "true", imports: fields[2:]})
	}
	return deps
}

func TestDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	cache := map[string][]pkgDep{}
	for _, r := range depRules() {
		deps, ok := cache[r.pkg]
		if !ok {
			if st, err := os.Stat(r.pkg); err != nil || !st.IsDir() || !hasGoFiles(r.pkg) {
				t.Logf("%s: no Go files yet, not checked", r.pkg)
				cache[r.pkg] = nil
				continue
			}
			deps = listDeps(t, r.pkg)
			cache[r.pkg] = deps
		}
		for _, msg := range checkDeps(r, deps) {
			t.Error(msg)
		}
	}
}

// TestCheckDeps feeds checkDeps made-up dependency lists, so that TestDeps is known to be able to fail.
func TestCheckDeps(t *testing.T) {
	rule := func(pkg string) []depRule {
		var rs []depRule
		for _, r := range depRules() {
			if r.pkg == pkg {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			t.Fatalf("BUG: no rule for %s", pkg)
		}
		return rs
	}
	m := func(p string) string { return module + "/" + p }
	std := func(p string, imports ...string) pkgDep { return pkgDep{path: p, std: true, imports: imports} }
	dep := func(p string, imports ...string) pkgDep { return pkgDep{path: p, imports: imports} }

	// f checks pkg against all its rules with deps and wants one message per entry of wants, each containing it.
	f := func(pkg string, deps []pkgDep, wants ...string) {
		t.Helper()
		var got []string
		for _, r := range rule(pkg) {
			got = append(got, checkDeps(r, deps)...)
		}
		if len(got) != len(wants) {
			t.Fatalf("%s: got %d violations %q, want %d containing %q", pkg, len(got), got, len(wants), wants)
		}
		for i, w := range wants {
			if !strings.Contains(got[i], w) {
				t.Fatalf("%s: violation %q does not contain %q", pkg, got[i], w)
			}
		}
	}

	// Allowed.
	f("mcproto", []pkgDep{dep(m("mcproto"), "bytes"), std("bytes", "io"), std("io")})
	f("mcproto", []pkgDep{dep(m("mcproto"), m("mcproto/internal/x")), dep(m("mcproto/internal/x"))})
	f("proxy", []pkgDep{dep(m("proxy"), m("mcproto"), "github.com/panjf2000/gnet/v2", m("ring")),
		dep(m("mcproto")), dep("github.com/panjf2000/gnet/v2"), dep(m("ring"))})
	f("tap", []pkgDep{dep(m("tap"), "github.com/gopacket/gopacket/pcap"), dep("github.com/gopacket/gopacket/pcap")})
	// A package whose name merely starts like a mode's is not that mode.
	f("proxy", []pkgDep{dep(m("proxy"), m("tapestry")), dep(m("tapestry"))})
	f("configs", []pkgDep{dep(m("configs"), m("proxyconf")), dep(m("proxyconf"))})

	// Broken, with the chain that breaks it.
	f("mcproto", []pkgDep{dep(m("mcproto"), "fmt", "github.com/dchest/siphash"), std("fmt"),
		dep("github.com/dchest/siphash")},
		"mcproto depends on github.com/dchest/siphash ("+m("mcproto")+" -> github.com/dchest/siphash)")
	f("mcproto", []pkgDep{dep(m("mcproto"), m("profile")), dep(m("profile"))}, "depends on "+m("profile"))
	f("proxy", []pkgDep{dep(m("proxy"), m("profile")), dep(m("profile"), m("tap/stream")), dep(m("tap/stream"))},
		m("proxy")+" -> "+m("profile")+" -> "+m("tap/stream"))
	f("proxy", []pkgDep{dep(m("proxy"), "github.com/gopacket/gopacket/layers"),
		dep("github.com/gopacket/gopacket/layers", "github.com/gopacket/gopacket"),
		dep("github.com/gopacket/gopacket")},
		"proxy depends on github.com/gopacket/gopacket/layers", "proxy depends on github.com/gopacket/gopacket (")
	f("tap", []pkgDep{dep(m("tap"), "github.com/panjf2000/gnet/v2"), dep("github.com/panjf2000/gnet/v2")},
		"gnet event loops are the proxy's")
	f("replay", []pkgDep{dep(m("replay"), m("proxy"), m("tap")), dep(m("proxy")), dep(m("tap"))},
		"replay depends on "+m("proxy"), "replay depends on "+m("tap"))
	f("configs", []pkgDep{dep(m("configs"), m("replay")), dep(m("replay"))}, "shared packages never import a mode")
	f("profile", []pkgDep{dep(m("profile"), m("proxy")), dep(m("proxy"))}, "profile depends on "+m("proxy"))
}
