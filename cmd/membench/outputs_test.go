package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
)

// outputCase is one writing command: how to run it with its output at out, what it writes and how it treats
// what is already there.
type outputCase struct {
	name string
	// args returns the command line writing out (with --force when force is set and the command has it).
	args func(t *testing.T, dir, out string, force bool) []string
	// events: the output holds events (mode 0600 whatever existed before); otherwise it is a report (at most
	// 0644).
	events bool
	// replaces: the command replaces an existing output without --force (reports); otherwise it refuses
	// without --force and replaces with it.
	replaces bool
}

func outputCases(t *testing.T) []outputCase {
	var mc *mctest.Server
	return []outputCase{
		{name: "inspect --html", args: func(t *testing.T, dir, out string, _ bool) []string {
			return []string{"inspect", importSample(t, dir, "", "in"), "--html", out}
		}, replaces: true},
		{name: "compare --html", args: func(t *testing.T, dir, out string, _ bool) []string {
			a, b := importSample(t, dir, "", "a"), importSample(t, dir, "", "b")
			return []string{"compare", a, b, "--html", out}
		}, replaces: true},
		{name: "replay -o", args: func(t *testing.T, dir, out string, _ bool) []string {
			if mc == nil {
				mc = mctest.StartMemcached(t)
			}
			return []string{"replay", "--profile", importSample(t, dir, "", "in"), "--target", mc.Addr, "-o", out}
		}, replaces: true},
		{name: "report merge -o", args: func(t *testing.T, dir, out string, _ bool) []string {
			in := filepath.Join(dir, "node.json")
			if err := os.WriteFile(in, []byte(sampleReportJSON(t, dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"report", "merge", in, "-o", out}
		}, replaces: true},
		{name: "export csv", args: func(t *testing.T, dir, out string, force bool) []string {
			return withForce([]string{"export", "--format", "csv", importSample(t, dir, "", "in"), "-o", out}, force)
		}, events: true},
		{name: "export oracle-general", args: func(t *testing.T, dir, out string, force bool) []string {
			return withForce([]string{"export", "--format", "oracle-general", importSample(t, dir, "", "in"), "-o",
				out}, force)
		}, events: true},
		{name: "merge", args: func(t *testing.T, dir, out string, force bool) []string {
			return withForce([]string{"merge", importSample(t, dir, "", "in"), "-o", out}, force)
		}, events: true},
		{name: "synth", args: func(t *testing.T, dir, out string, force bool) []string {
			return withForce([]string{"synth", "--workload", "etc", "--events", "1000", "-o", out}, force)
		}, events: true},
		{name: "import", args: func(t *testing.T, dir, out string, force bool) []string {
			in := filepath.Join(dir, "in.csv")
			os.WriteFile(in, []byte(twitterLines), 0o644)
			return withForce([]string{"import", "--format", "twitter", in, "-o", out}, force)
		}, events: true},
	}
}

func withForce(args []string, force bool) []string {
	if force {
		return append(args, "--force")
	}
	return args
}

// sampleReportJSON returns a replay report, from a replay of the Twitter sample against a real memcached.
func sampleReportJSON(t *testing.T, dir string) string {
	t.Helper()
	mc := mctest.StartMemcached(t)
	code, out, errOut := runCLI(t, "replay", "--profile", importSample(t, dir, "", "rep"), "--target", mc.Addr,
		"--json")
	if code != 0 {
		t.Fatalf("replay --json: exit %d: %s", code, errOut)
	}
	return out
}

// TestOutputFiles: every writing command writes through a temporary file renamed into place. A symlink at the
// output is never followed: the file it points to is untouched, and the link is replaced (reports, and event
// files with --force) or refused (event files without --force). Event files are 0600 even over an existing
// 0644 file; reports are at most 0644 even over an existing 0666 file. No temporary file is left behind.
func TestOutputFiles(t *testing.T) {
	for _, c := range outputCases(t) {
		t.Run(c.name, func(t *testing.T) {
			forces := []bool{false}
			if !c.replaces {
				forces = []bool{false, true}
			}
			for _, force := range forces {
				// A symlink at the output pointing to a file the user owns.
				dir := t.TempDir()
				victim := filepath.Join(dir, "victim")
				if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "out")
				if err := os.Symlink(victim, out); err != nil {
					t.Fatal(err)
				}
				code, _, errOut := runCLI(t, c.args(t, dir, out, force)...)
				if b, err := os.ReadFile(victim); err != nil || string(b) != "precious\n" {
					t.Fatalf("force=%v: the symlink's target was written (%d bytes, %v; exit %d)", force, len(b),
						err, code)
				}
				st, err := os.Lstat(out)
				if err != nil {
					t.Fatal(err)
				}
				if c.replaces || force {
					if code != 0 || !st.Mode().IsRegular() {
						t.Fatalf("force=%v: exit %d, output %v (want the link replaced by a file): %s", force,
							code, st.Mode(), errOut)
					}
					checkMode(t, out, c.events)
				} else if code == 0 || st.Mode()&fs.ModeSymlink == 0 || !strings.Contains(errOut, "already exists") {
					t.Fatalf("force=%v: exit %d, output %v (want a refusal naming --force, link kept): %s", force,
						code, st.Mode(), errOut)
				}
				checkNoTemp(t, dir)
			}

			// An existing file with a wider mode.
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			old := os.FileMode(0o644)
			if !c.events {
				old = 0o666
			}
			if err := os.WriteFile(out, []byte("old\n"), old); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(out, old); err != nil { // past the umask
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, c.args(t, dir, out, true)...)
			if code != 0 {
				t.Fatalf("over an existing file: exit %d: %s", code, errOut)
			}
			checkMode(t, out, c.events)
			checkNoTemp(t, dir)
		})
	}
}

func checkMode(t *testing.T, path string, events bool) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	perm := st.Mode().Perm()
	if events && perm != 0o600 {
		t.Fatalf("%s holds events and has mode %04o, want 0600", path, perm)
	}
	if !events && perm&^0o644 != 0 {
		t.Fatalf("report %s has mode %04o, want at most 0644", path, perm)
	}
}

// checkNoTemp fails if a temporary output file was left in dir.
func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}
