package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// parsed is what a test flag set ends up holding after parseArgs.
type parsed struct {
	pos  []string
	out  string
	n    int
	json bool
	set  []string // names from flagsSet, sorted
}

const testUsage = "membench test [flags] FILE...\n"

func parseTestArgs(args []string) (parsed, string, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	out := fs.String("out", "default.out", "")
	n := fs.Int("n", 1, "")
	js := fs.Bool("json", false, "")
	var stdout bytes.Buffer
	pos, err := parseArgs(fs, testUsage, args, &stdout)
	var set []string
	for _, name := range []string{"json", "n", "out"} {
		if flagsSet(fs)[name] {
			set = append(set, name)
		}
	}
	return parsed{pos: pos, out: *out, n: *n, json: *js, set: set}, stdout.String(), err
}

func TestParseArgs_Success(t *testing.T) {
	f := func(args []string, want parsed) {
		t.Helper()
		got, stdout, err := parseTestArgs(args)
		if err != nil {
			t.Fatalf("parseArgs(%q): %v", args, err)
		}
		if stdout != "" {
			t.Fatalf("parseArgs(%q) printed %q", args, stdout)
		}
		if len(got.pos) == 0 {
			got.pos = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseArgs(%q)\n got %+v\nwant %+v", args, got, want)
		}
	}
	def := func(pos ...string) parsed { return parsed{pos: pos, out: "default.out", n: 1} }
	with := func(p parsed, edit func(*parsed)) parsed { edit(&p); return p }

	f(nil, def())
	f([]string{"a", "b"}, def("a", "b"))
	// Flags before, after and between positionals.
	f([]string{"--out", "x", "a"}, with(def("a"), func(p *parsed) { p.out = "x"; p.set = []string{"out"} }))
	f([]string{"a", "--out", "x"}, with(def("a"), func(p *parsed) { p.out = "x"; p.set = []string{"out"} }))
	f([]string{"a", "--out", "x", "b"}, with(def("a", "b"), func(p *parsed) { p.out = "x"; p.set = []string{"out"} }))
	f([]string{"a", "--json", "b", "-n", "7"}, with(def("a", "b"), func(p *parsed) {
		p.json, p.n, p.set = true, 7, []string{"json", "n"}
	}))
	// --flag=value and -flag value, one or two dashes.
	f([]string{"--out=x", "a"}, with(def("a"), func(p *parsed) { p.out = "x"; p.set = []string{"out"} }))
	f([]string{"-out=x=y"}, with(def(), func(p *parsed) { p.out = "x=y"; p.set = []string{"out"} }))
	f([]string{"-out", "x"}, with(def(), func(p *parsed) { p.out = "x"; p.set = []string{"out"} }))
	f([]string{"-n", "3", "--n", "4"}, with(def(), func(p *parsed) { p.n = 4; p.set = []string{"n"} }))
	// A value may look like a flag or be empty.
	f([]string{"-n", "-3"}, with(def(), func(p *parsed) { p.n = -3; p.set = []string{"n"} }))
	f([]string{"--out", "--json"}, with(def(), func(p *parsed) { p.out = "--json"; p.set = []string{"out"} }))
	f([]string{"--out", ""}, with(def(), func(p *parsed) { p.out = ""; p.set = []string{"out"} }))
	// Bool flags take no separate value; an explicit one needs '='.
	f([]string{"--json", "a"}, with(def("a"), func(p *parsed) { p.json = true; p.set = []string{"json"} }))
	f([]string{"--json=false", "a"}, with(def("a"), func(p *parsed) { p.set = []string{"json"} }))
	f([]string{"a", "--json"}, with(def("a"), func(p *parsed) { p.json = true; p.set = []string{"json"} }))
	// "--" ends flags; a lone "-" is a positional (stdin).
	f([]string{"--json", "--", "--out", "-n"}, with(def("--out", "-n"), func(p *parsed) {
		p.json = true
		p.set = []string{"json"}
	}))
	f([]string{"--"}, def())
	f([]string{"-", "a"}, def("-", "a"))
}

func TestParseArgs_Failure(t *testing.T) {
	f := func(args []string, wants ...string) {
		t.Helper()
		_, stdout, err := parseTestArgs(args)
		if err == nil {
			t.Fatalf("parseArgs(%q): no error, want one containing %q", args, wants)
		}
		if !errors.Is(err, errUsage) {
			t.Fatalf("parseArgs(%q) error %q does not wrap errUsage", args, err)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("parseArgs(%q) error %q does not contain %q", args, err, w)
			}
		}
		if stdout != "" {
			t.Fatalf("parseArgs(%q) printed %q", args, stdout)
		}
	}
	f([]string{"--bogus"}, "--bogus")
	f([]string{"a", "-bogus", "x"}, "-bogus")
	f([]string{"--bogus=1"}, "bogus")
	f([]string{"--out"}, "--out", "needs a value")
	f([]string{"a", "-n"}, "-n", "needs a value")
	f([]string{"-n", "many"}, "many", "-n")
	f([]string{"--json=maybe"}, "maybe", "json")
}

func TestParseArgs_Help(t *testing.T) {
	for _, h := range []string{"-h", "--h", "-help", "--help"} {
		for _, args := range [][]string{{h}, {"a", h}, {"--out", "x", h, "--bogus"}} {
			_, stdout, err := parseTestArgs(args)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("parseArgs(%q) = %v, want flag.ErrHelp", args, err)
			}
			if want := testUsage + envHelpFor([]string{"json", "n", "out"}); stdout != want {
				t.Fatalf("parseArgs(%q) printed %q, want the usage %q", args, stdout, want)
			}
		}
	}
}

// runMembench runs the dispatcher as main would and returns the exit code and output.
func runMembench(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestRun(t *testing.T) {
	// Commands that exercise each way a subcommand can end.
	testCommands := []*command{
		{name: "t-ok", summary: "test: succeeds", usage: "membench t-ok\n",
			run: func(args []string, stdout, stderr io.Writer) error {
				io.WriteString(stdout, "ok "+strings.Join(args, ","))
				return nil
			}},
		{name: "t-fail", summary: "test: fails", usage: "membench t-fail\n",
			run: func([]string, io.Writer, io.Writer) error { return errors.New("boom") }},
		{name: "t-usage", summary: "test: misused", usage: "membench t-usage --n N\n",
			run: func(args []string, stdout, stderr io.Writer) error {
				fs := flag.NewFlagSet("t-usage", flag.ContinueOnError)
				fs.Int("n", 0, "")
				_, err := parseArgs(fs, "membench t-usage --n N\n", args, stdout)
				return err
			}},
		{name: "t-exit", summary: "test: exit code", usage: "membench t-exit\n",
			run: func([]string, io.Writer, io.Writer) error { return &exitError{code: 3, err: errors.New("differs")} }},
		{name: "t-quiet", summary: "test: silent exit code", usage: "membench t-quiet\n",
			run: func([]string, io.Writer, io.Writer) error { return &exitError{code: 4, err: errors.New("")} }},
	}
	for _, c := range testCommands {
		register(c)
	}
	t.Cleanup(func() {
		for _, c := range testCommands {
			delete(commands, c.name)
		}
	})

	// f runs membench with args and checks the exit code and that each output contains the wanted text
	// ("" wants that output empty).
	f := func(args []string, wantCode int, wantStdout, wantStderr string) {
		t.Helper()
		code, stdout, stderr := runMembench(args...)
		if code != wantCode {
			t.Fatalf("membench %q exited %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, stdout, stderr)
		}
		check := func(what, got, want string) {
			t.Helper()
			if want == "" && got != "" || !strings.Contains(got, want) {
				t.Fatalf("membench %q %s = %q, want it to contain %q", args, what, got, want)
			}
		}
		check("stdout", stdout, wantStdout)
		check("stderr", stderr, wantStderr)
	}
	goVersion := runtime.Version()

	f(nil, 2, "", "Usage: membench COMMAND")
	f([]string{"bogus"}, 2, "", `membench: unknown command "bogus"; run 'membench help' for the list`)
	f([]string{"--bogus"}, 2, "", `unknown command "--bogus"`)

	f([]string{"help"}, 0, "Usage: membench COMMAND", "")
	f([]string{"help"}, 0, "  version    print version", "")
	f([]string{"-h"}, 0, "Usage: membench COMMAND", "")
	f([]string{"--help"}, 0, "Usage: membench COMMAND", "")
	f([]string{"help", "version"}, 0, "membench version\n", "")
	f([]string{"help", "--help"}, 0, "membench help [COMMAND]", "")
	f([]string{"help", "bogus"}, 2, "", `membench help: unknown command "bogus"`)

	f([]string{"version"}, 0, "membench ", "")
	f([]string{"version"}, 0, goVersion, "")
	f([]string{"--version"}, 0, "membench "+version+" (commit ", "")

	f([]string{"t-ok", "a", "b"}, 0, "ok a,b", "")
	f([]string{"t-fail"}, 1, "", "membench t-fail: boom\n")
	f([]string{"t-usage", "--n"}, 2, "", "run 'membench t-usage --help' for usage")
	f([]string{"t-usage", "--x"}, 2, "", "membench t-usage: unknown flag --x")
	f([]string{"t-usage", "--help"}, 0, "membench t-usage --n N\n", "")
	f([]string{"t-exit"}, 3, "", "membench t-exit: differs\n")
	f([]string{"t-quiet"}, 4, "", "")
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "BUG:") {
			t.Fatalf("registering a command twice: recover() = %v, want a BUG panic", r)
		}
	}()
	register(&command{name: "help"})
}
