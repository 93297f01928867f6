// Command membench records anonymized memcached traffic (proxy, tap) and replays it (replay, synth), with
// tools to inspect and compare the resulting profiles.
//
// This file is the dispatcher only: each subcommand lives in its own file and registers itself in init.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// command is one subcommand. run receives the arguments after the subcommand name and returns the process exit
// code; errors are printed by run itself or returned as an error for main to print.
type command struct {
	name    string
	summary string // one line for `membench help`
	usage   string // full help with examples, for `membench CMD --help`
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("BUG: subcommand registered twice: " + c.name)
	}
	commands[c.name] = c
}

// exitError carries a specific exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errUsage marks an error caused by how the command was called; main prints the subcommand's usage hint.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		name = "help"
	case "--version", "-version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "membench: unknown command %q; run 'membench help' for the list\n", name)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "membench %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "membench %s: %s\n", name, strings.TrimSuffix(err.Error(), ": "+errUsage.Error()))
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "run 'membench %s --help' for usage\n", name)
		return 2
	}
	return 1
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "membench: record anonymized memcached traffic and replay it.")
	fmt.Fprintln(w, "\nUsage: membench COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'membench COMMAND --help' for a command's flags and examples.")
}

const helpUsage = "membench help [COMMAND]\n\nExamples:\n  membench help\n  membench help inspect\n"

func init() {
	register(&command{
		name:    "help",
		summary: "show this list, or a command's help: membench help COMMAND",
		usage:   helpUsage,
		run: func(args []string, stdout, stderr io.Writer) error {
			// parseArgs so that `membench help --help`, which the usage hint below suggests, prints the usage.
			args, err := parseArgs(flag.NewFlagSet("help", flag.ContinueOnError), helpUsage, args, stdout)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				c, ok := commands[args[0]]
				if !ok {
					return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
				}
				fmt.Fprint(stdout, c.usage+usageEnvHelp(c.usage))
				return nil
			}
			printHelp(stdout)
			return nil
		},
	})
}

// parseArgs parses flags and positional arguments in any order, as people type them: `inspect FILE --json` and
// `inspect --json FILE` both work, as do `--flag value` and `--flag=value`. A lone `--` ends flag parsing.
// It returns the positional arguments. On -h/--help it prints usage to stdout and returns flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, usage string, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "h" || name == "help" {
			fmt.Fprint(stdout, usage+envHelp(fs))
			return nil, flag.ErrHelp
		}
		flags = append(flags, a)
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, fmt.Errorf("unknown flag %s: %w", a, errUsage)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("flag %s needs a value: %w", a, errUsage)
		}
		i++
		flags = append(flags, args[i])
	}
	if err := fs.Parse(flags); err != nil {
		return nil, fmt.Errorf("%v: %w", err, errUsage)
	}
	if err := flagsFromEnv(fs); err != nil {
		return nil, err
	}
	return pos, nil
}

// envPrefix starts the environment variable of every flag: --shard is MEMBENCH_SHARD, --connect-timeout is
// MEMBENCH_CONNECT_TIMEOUT. Containers and job schedulers hand settings over as environment variables.
const envPrefix = "MEMBENCH_"

// envName returns the environment variable of the flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagsFromEnv sets each flag the command line did not give from its environment variable, when that is set
// (to anything, empty included): the command line wins over the environment, and both, being flags, over a
// config file. Variables naming no flag of the command are ignored, since one environment may serve several
// commands.
func flagsFromEnv(fs *flag.FlagSet) error {
	given := flagsSet(fs)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment variable %s=%q: invalid value for -%s: %v: %w", envName(f.Name), v, f.Name,
				serr, errUsage)
		}
	})
	return err
}

// envHelp is the paragraph every command's help ends with when the command has flags, with one of the
// command's own flags as the example.
func envHelp(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return envHelpFor(names)
}

// usageEnvHelp is envHelp for `membench help CMD`, which has the command's usage but not its flag set: the
// example is a flag the usage lists.
func usageEnvHelp(usage string) string {
	var names []string
	for _, m := range usageFlagRE.FindAllStringSubmatch(usage, -1) {
		names = append(names, m[1])
	}
	return envHelpFor(names)
}

// envHelpFor returns the paragraph with the first of the flag names that has a dash as the example (else the
// first), or nothing without flags.
func envHelpFor(names []string) string {
	if len(names) == 0 {
		return ""
	}
	example := names[0]
	for _, n := range names {
		if strings.Contains(n, "-") {
			example = n
			break
		}
	}
	return fmt.Sprintf("\nEnvironment: every flag can also be set as %s<FLAG>, the flag's name in upper case with "+
		"dashes as\nunderscores (--%s: %s). When both are given, the command line wins.\n",
		envPrefix, example, envName(example))
}

// usageFlagRE finds the flags a usage text lists, one per line: "  --name …" or "  -o, --output …".
var usageFlagRE = regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z][a-z0-9-]*)`)

// flagsSet returns the names of the flags given on the command line, so that flags override config files only
// where the user set them.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// apply sets *dst to v when the flag name is in set: a flag given on the command line overrides the config file.
func apply[T any](set map[string]bool, name string, dst *T, v T) {
	if set[name] {
		*dst = v
	}
}
