package main

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
)

// The manifests in configs/kubernetes are read here with a small line-based reader, not a YAML library (go.mod
// has none, and the test needs only a few shapes): each container ("- name: X" followed by "image:"), its
// command and args (a flow list ["a", "b"] or a block list of "- item" lines) and the names of its env
// entries, and the files a ConfigMap embeds ("name.toml: |" blocks).

const k8sDir = "../../configs/kubernetes"

// k8sContainer is one container of a manifest.
type k8sContainer struct {
	file, name string
	argv       []string // command, then args
	env        []string // names
	indexed    bool     // in an Indexed Job's document: JOB_COMPLETION_INDEX is set
}

var (
	containerRE = regexp.MustCompile(`^(\s*)- name: (\S+)\s*$`)
	keyRE       = regexp.MustCompile(`^(\s*)(command|args|env):\s*(.*)$`)
	blockFileRE = regexp.MustCompile(`^(\s*)([\w.-]+\.toml): \|\s*$`)
)

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func isBlank(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// blockList returns the items of the block list starting after line i, and the index of the line after it.
// Items are "- value" lines at one indent; deeper lines belong to the item before (env's valueFrom).
func blockList(lines []string, i int) (items []string, next int) {
	itemIndent := -1
	for j := i + 1; j < len(lines); j++ {
		l := lines[j]
		if isBlank(l) {
			continue
		}
		in := indentOf(l)
		item := strings.HasPrefix(strings.TrimSpace(l), "- ")
		if itemIndent < 0 {
			if !item {
				return items, j
			}
			itemIndent = in
		}
		switch {
		case in == itemIndent && item:
			items = append(items, strings.TrimSpace(l)[2:])
		case in > itemIndent:
		default:
			return items, j
		}
	}
	return items, len(lines)
}

// parseManifest returns the containers of a manifest file and the files its ConfigMaps embed.
func parseManifest(t *testing.T, path string) ([]k8sContainer, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []k8sContainer
	files := map[string]string{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		lines := strings.Split(doc, "\n")
		indexed := strings.Contains(doc, "completionMode: Indexed")
		var cur *k8sContainer
		curIndent := 0
		for i := 0; i < len(lines); i++ {
			l := lines[i]
			if isBlank(l) {
				continue
			}
			if cur != nil && indentOf(l) <= curIndent {
				cur = nil
			}
			if m := containerRE.FindStringSubmatch(l); m != nil {
				for j := i + 1; j < len(lines); j++ {
					if !isBlank(lines[j]) {
						if strings.HasPrefix(strings.TrimSpace(lines[j]), "image:") {
							out = append(out, k8sContainer{file: filepath.Base(path), name: m[2], indexed: indexed})
							cur, curIndent = &out[len(out)-1], len(m[1])
						}
						break
					}
				}
				continue
			}
			if m := blockFileRE.FindStringSubmatch(l); m != nil {
				var body []string
				j := i + 1
				for ; j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indentOf(lines[j]) > len(m[1])); j++ {
					body = append(body, strings.TrimPrefix(lines[j], strings.Repeat(" ", len(m[1])+2)))
				}
				files[m[2]] = strings.Join(body, "\n")
				i = j - 1
				continue
			}
			m := keyRE.FindStringSubmatch(l)
			if m == nil || cur == nil {
				continue
			}
			var items []string
			if flow := strings.TrimSpace(m[3]); flow != "" {
				if !strings.HasPrefix(flow, "[") || !strings.HasSuffix(flow, "]") {
					t.Fatalf("%s: %q: want a flow list [\"a\", \"b\"] or a block list", path, l)
				}
				for _, it := range strings.Split(flow[1:len(flow)-1], ",") {
					items = append(items, unquote(it))
				}
			} else {
				var next int
				items, next = blockList(lines, i)
				i = next - 1
			}
			switch m[2] {
			case "env":
				for _, it := range items {
					if name, ok := strings.CutPrefix(it, "name: "); ok {
						cur.env = append(cur.env, unquote(name))
					}
				}
			default:
				for _, it := range items {
					cur.argv = append(cur.argv, unquote(it))
				}
			}
		}
	}
	return out, files
}

// shellWords splits a shell command line on blanks outside double quotes, keeping "…" together.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// membenchCall returns the subcommand and the flag names of the membench command a container runs, directly
// or through `sh -c`; ok is false when it runs no membench.
func membenchCall(argv []string) (sub string, flags []string, ok bool) {
	words := argv
	if len(argv) == 3 && strings.HasSuffix(argv[0], "sh") && argv[1] == "-c" {
		words = shellWords(argv[2])
	}
	for i, w := range words {
		if (w == "membench" || strings.HasSuffix(w, "/membench")) && i+1 < len(words) {
			for _, f := range words[i+2:] {
				if strings.HasPrefix(f, "-") {
					name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
					flags = append(flags, name)
				}
			}
			return words[i+1], flags, true
		}
	}
	return "", nil, false
}

// flagExists reports whether `membench sub` has the flag: it is parsed (with a dummy value) before --help.
func flagExists(t *testing.T, sub, name string) bool {
	t.Helper()
	code, _, errOut := runCLI(t, sub, "--"+name, "x", "--help")
	if code != 0 && !strings.Contains(errOut, "unknown flag") {
		t.Fatalf("membench %s --%s x --help: exit %d: %s", sub, name, code, errOut)
	}
	return code == 0
}

// TestKubernetes_Manifests: every membench flag the manifests use, on the command line or as a MEMBENCH_
// variable, exists in that command's flag set; every $(VAR) they use is set; the configs they embed load and
// validate; and the salt Secret is mounted the way membench accepts it.
func TestKubernetes_Manifests(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", k8sDir, err)
	}
	used := map[string]bool{} // "sub --flag" seen, for the must-haves below
	embedded := map[string]string{}
	for _, path := range paths {
		containers, files := parseManifest(t, path)
		for name, body := range files {
			embedded[name] = body
		}
		for _, c := range containers {
			sub, flags, ok := membenchCall(c.argv)
			if !ok {
				for _, e := range c.env {
					if strings.HasPrefix(e, envPrefix) {
						t.Errorf("%s: container %s sets %s but runs no membench", c.file, c.name, e)
					}
				}
				continue
			}
			for _, e := range c.env {
				if f, ok := strings.CutPrefix(e, envPrefix); ok {
					flags = append(flags, strings.ToLower(strings.ReplaceAll(f, "_", "-")))
				}
			}
			if len(flags) == 0 {
				t.Errorf("%s: container %s runs membench %s with no flag", c.file, c.name, sub)
			}
			for _, f := range flags {
				used[sub+" --"+f] = true
				if !flagExists(t, sub, f) {
					t.Errorf("%s: container %s: membench %s has no flag --%s", c.file, c.name, sub, f)
				}
			}
			// Kubernetes leaves $(VAR) as it is when the container does not set VAR.
			for _, a := range c.argv {
				for _, m := range regexp.MustCompile(`\$\((\w+)\)`).FindAllStringSubmatch(a, -1) {
					if !slices.Contains(c.env, m[1]) && !(c.indexed && m[1] == "JOB_COMPLETION_INDEX") {
						t.Errorf("%s: container %s uses $(%s), which it does not set", c.file, c.name, m[1])
					}
				}
			}
		}
	}
	for _, want := range []string{"replay --shard-index-env", "replay --shards", "replay --start-at",
		"replay --metrics-push", "replay --o", "replay --hdr-out", "report --hdr-out", "proxy --config",
		"proxy --record", "proxy --host-label"} {
		if !used[want] {
			t.Errorf("no manifest uses membench %s", want)
		}
	}

	// The embedded configs load and validate, as configs/*.toml do.
	dir := t.TempDir()
	for name, body := range embedded {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		switch name {
		case "replay.toml":
			c, err := configs.LoadReplay(p)
			if err == nil {
				err = c.Validate()
			}
			if err != nil {
				t.Errorf("embedded %s: %v", name, err)
			}
		case "proxy.toml":
			c, err := configs.LoadProxy(p)
			if err == nil {
				err = c.Validate()
			}
			if err != nil {
				t.Errorf("embedded %s: %v", name, err)
			}
		default:
			t.Errorf("embedded %s: the test does not know this config", name)
		}
	}
	if embedded["replay.toml"] == "" || embedded["proxy.toml"] == "" {
		t.Errorf("embedded configs: %v", slices.Collect(maps.Keys(embedded)))
	}

	// The salt Secret: mounted 0440 with the pod's fsGroup, which this membench accepts.
	b, err := os.ReadFile(filepath.Join(k8sDir, "proxy-sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "defaultMode: 0440") || !strings.Contains(string(b), "fsGroup:") {
		t.Errorf("proxy-sidecar.yaml: the salt Secret is not mounted with defaultMode 0440 and an fsGroup")
	}
	salt := filepath.Join(dir, "salt.hex")
	if err := profile.WriteSaltFile(salt, profile.GenerateSalt()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(salt, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadSaltFile(salt); err != nil {
		t.Errorf("a salt file of mode 0440, as the Secret volume gives it, is refused: %v", err)
	}
}

// TestKubernetes_Reader checks the manifest reader itself on the shapes it relies on.
func TestKubernetes_Reader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	doc := `kind: ConfigMap
data:
  replay.toml: |
    rate = 1.0

    duration = "1s"
---
kind: Job
spec:
  completionMode: Indexed
  template:
    spec:
      containers:
        - name: a
          image: x
          command: ["/usr/local/bin/membench", 'replay']
          args:
            # a comment
            - --shard-index-env
            - JOB_COMPLETION_INDEX
            - "-o"
          env:
            - name: MEMBENCH_START_AT
              value: "1"
            - name: POD
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
        - name: b
          image: y
          command: ["sh", "-c"]
          args:
            - exec membench proxy --config=/c.toml --record "/p/$POD-$(date -u +%s).mbp"
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, files := parseManifest(t, path)
	if len(cs) != 2 || files["replay.toml"] != "rate = 1.0\n\nduration = \"1s\"" {
		t.Fatalf("containers %+v, files %q", cs, files)
	}
	if got := strings.Join(cs[0].argv, " "); got != "/usr/local/bin/membench replay --shard-index-env JOB_COMPLETION_INDEX -o" ||
		strings.Join(cs[0].env, ",") != "MEMBENCH_START_AT,POD" || !cs[0].indexed {
		t.Fatalf("container a: %+v", cs[0])
	}
	sub, flags, ok := membenchCall(cs[1].argv)
	if !ok || sub != "proxy" || strings.Join(flags, ",") != "config,record" {
		t.Fatalf("container b: %q %q %v", sub, flags, ok)
	}
}
