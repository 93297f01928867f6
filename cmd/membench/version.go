// The version subcommand: membench's version, the commit it was built from, the Go toolchain, and whether this
// build can capture live (a static build cannot).
package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/membench/membench/tap"
)

// version is set at link time by the Makefile (-X main.version=…), which make deb and the Containerfile build
// through; "dev" otherwise, unless the Go toolchain recorded a module version (go install …@v1.2.3).
var version = "dev"

// buildVersion returns version, or the module version the toolchain stamped when the linker set none.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

func buildCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if commit != "" {
		rev = commit
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// commit may be set at link time when VCS stamping is off (GOFLAGS=-buildvcs=false).
var commit = ""

func init() {
	register(&command{
		name:    "version",
		summary: "print version, commit and Go version",
		usage:   "membench version\n\nExample:\n  membench version\n",
		run: func(args []string, stdout, stderr io.Writer) error {
			fs := flag.NewFlagSet("version", flag.ContinueOnError)
			pos, err := parseArgs(fs, "membench version\n\nPrints the version, the commit it was built from and the Go version.\n\nExample:\n  membench version\n", args, stdout)
			if err != nil {
				return err
			}
			if len(pos) > 0 {
				return fmt.Errorf("unexpected argument %q: %w", pos[0], errUsage)
			}
			static := ""
			if !tap.LiveCapture {
				static = "; static build: no live capture (tap --interface), capture files only"
			}
			fmt.Fprintf(stdout, "membench %s (commit %s, %s %s/%s%s)\n", buildVersion(), buildCommit(),
				runtime.Version(), runtime.GOOS, runtime.GOARCH, static)
			return nil
		},
	})
}
