// The merge subcommand: several profiles recorded with the same salt into one, in time order.
package main

import (
	"flag"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/membench/membench/profile"
)

const mergeUsage = `membench merge — combine profiles recorded with the same salt into one, in time order.

Usage: membench merge A B [C …] -o OUT

The inputs must share a salt (the same --salt-file when recording), or their key hashes would not match:
merge refuses otherwise and names the two files. Events are interleaved by time, streaming (one event per
input in memory). Connection ids are renumbered 0, 1, 2, … in order of first appearance so that
connections of different inputs stay apart. The result has mode "merge", the inputs' host labels, the
finest time and latency precision among them, and the settings they all agree on.

Flags:
  -o, --output FILE  the merged profile (must not exist)
  --force            replace OUT if it exists (a symlink there is replaced, never followed)
  --salvage          skip corrupt blocks of the inputs instead of failing
  --progress         print progress (bytes of the inputs read, %, ETA) on stderr every second even when it is
                     not a terminal (on a terminal it always is)

Examples:
  membench merge web1.mbp web2.mbp web3.mbp -o web.mbp
  membench merge tap-*.mbp -o all.mbp --salvage
`

func init() {
	register(&command{
		name:    "merge",
		summary: "combine profiles recorded with the same salt, in time order",
		usage:   mergeUsage,
		run:     runMerge,
	})
}

func runMerge(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	var out string
	fs.StringVar(&out, "o", "", "")
	fs.StringVar(&out, "output", "", "")
	force := fs.Bool("force", false, "")
	salvage := fs.Bool("salvage", false, "")
	progress := fs.Bool("progress", false, "")
	pos, err := parseArgs(fs, mergeUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("want input profiles: %w", errUsage)
	}
	if out == "" || out == "-" {
		return fmt.Errorf("missing -o OUT (a profile file): %w", errUsage)
	}
	var rs []*profile.Reader
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var read atomic.Int64
	var total int64
	for _, p := range pos {
		if p == out {
			return fmt.Errorf("output %s is also an input: %w", out, errUsage)
		}
		r, size, closeIn, err := openProfileCounted(p, profile.ReaderOptions{Salvage: *salvage}, &read)
		if err != nil {
			return err
		}
		rs, closers, total = append(rs, r), append(closers, closeIn), total+size
	}
	h, err := profile.MergeHeader(rs)
	if err != nil {
		return err
	}
	w, err := newProfileWriter(out, h, *force)
	if err != nil {
		return err
	}
	finish := progressMeter(stderr, *progress, fmt.Sprintf("merge %d profiles", len(rs)), total, "bytes", read.Load)
	n, err := profile.Merge(w, rs)
	if err != nil {
		finish(false)
		w.Abort() // OUT keeps what it had
		return err
	}
	err = w.Close()
	finish(err == nil)
	if err != nil {
		return err
	}
	for _, r := range rs {
		warnDamage(stderr, r)
	}
	fmt.Fprintf(stderr, "merged %d events from %d profiles into %s\n", n, len(rs), out)
	return nil
}
