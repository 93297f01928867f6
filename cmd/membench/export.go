// The export subcommand: a profile to the Twitter cache-trace CSV, libCacheSim's oracleGeneral binary or a CSV
// of every field. This file also holds the small helpers the profile-reading subcommands share.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"

	"github.com/membench/membench/internal/safefile"
	"github.com/membench/membench/profile"
)

const exportUsage = `membench export — write a profile in another trace format.

Usage: membench export --format twitter|oracle-general|csv IN -o OUT

Formats:
  twitter         Twitter cache-trace CSV, no header row:
                  timestamp,key,key_size,value_size,client_id,operation,ttl
                  timestamp in Unix seconds; key = the key hash in hex (namespace hash and ':' first when
                  there is one); client_id = connection id. touch and keyless commands are skipped; meta and
                  gat commands become get/gets/set/delete/incr.
  oracle-general  libCacheSim oracleGeneral binary: 24-byte little-endian records
                  {uint32 time (s), uint64 obj_id (key hash), uint32 obj_size (key+value size),
                  int64 next_access_vtime (1-based position of the next request for the key, -1 if none)}.
                  A miss takes the size of the key's next stored value. Keyless events are skipped. Needs a
                  file for OUT (it is patched in a second, reverse pass) and ~50 bytes of memory per key.
  csv             every event field, with a header row; hashes in hex, enums by name.

Flags:
  --format NAME      twitter, oracle-general or csv (required)
  -o, --output FILE  where to write ("-" = standard output, not for oracle-general); must not exist
  --force            replace OUT if it exists (a symlink there is replaced, never followed)
  --salvage          skip corrupt blocks of IN instead of failing
  --progress         print progress (bytes of IN read, %, ETA) on stderr every second even when it is not a
                     terminal (on a terminal it always is)

Examples:
  membench export --format twitter a.mbp -o a.csv
  membench export --format oracle-general a.mbp -o a.oracleGeneral.bin
  membench export --format csv a.mbp -o - | head
`

func init() {
	register(&command{
		name:    "export",
		summary: "write a profile as a Twitter, libCacheSim oracleGeneral or plain CSV trace",
		usage:   exportUsage,
		run:     runExport,
	})
}

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var out string
	fs.StringVar(&out, "o", "", "")
	fs.StringVar(&out, "output", "", "")
	format := fs.String("format", "", "")
	force := fs.Bool("force", false, "")
	salvage := fs.Bool("salvage", false, "")
	progress := fs.Bool("progress", false, "")
	pos, err := parseArgs(fs, exportUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one input profile, got %d arguments: %w", len(pos), errUsage)
	}
	if out == "" {
		return fmt.Errorf("missing -o OUT: %w", errUsage)
	}
	switch *format {
	case profile.FormatTwitter, profile.FormatCSV:
	case profile.FormatOracleGeneral:
		if out == "-" {
			return fmt.Errorf("--format oracle-general needs a file for -o (it is rewritten in place): %w", errUsage)
		}
	case "":
		return fmt.Errorf("missing --format (twitter, oracle-general or csv): %w", errUsage)
	default:
		return fmt.Errorf("unknown --format %q (want twitter, oracle-general or csv): %w", *format, errUsage)
	}

	var read atomic.Int64
	r, size, closeIn, err := openProfileCounted(pos[0], profile.ReaderOptions{Salvage: *salvage}, &read)
	if err != nil {
		return err
	}
	defer closeIn()
	var dst io.Writer = stdout
	var f *safefile.File
	if out != "-" {
		if f, err = createOutput(out, *force); err != nil {
			return err
		}
		defer f.Abort() // after Commit it does nothing
		dst = f
	}
	var st profile.ExportStats
	finish := progressMeter(stderr, *progress, "export "+pos[0], size, "bytes", read.Load)
	switch *format {
	case profile.FormatTwitter:
		st, err = profile.ExportTwitter(dst, r)
	case profile.FormatCSV:
		st, err = profile.ExportCSV(dst, r)
	case profile.FormatOracleGeneral:
		st, err = profile.ExportOracleGeneral(f.File, r)
	}
	if err == nil && f != nil {
		err = f.Commit()
	}
	finish(err == nil)
	if err != nil {
		return err
	}
	warnDamage(stderr, r)
	fmt.Fprintf(stderr, "exported %d events from %s to %s (%s)", st.Events, pos[0], out, *format)
	if st.Skipped > 0 {
		fmt.Fprintf(stderr, "; skipped %d events the format cannot express", st.Skipped)
	}
	fmt.Fprintln(stderr)
	return nil
}

// createOutput starts an output holding events (mode 0600) through a temporary file beside path, refusing to
// replace an existing file (or symlink) unless force is set; Commit puts it in place.
func createOutput(path string, force bool) (*safefile.File, error) {
	f, err := safefile.Create(path, safefile.Private, force)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cannot create %s: it already exists; pass --force to replace it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create output: %w", err)
	}
	return f, nil
}

// newProfileWriter creates the profile out through a temporary file (Close puts it in place, Abort discards
// it), offering --force when it exists. No timer flushes: the offline subcommands write as fast as they read.
func newProfileWriter(out string, h profile.Header, force bool) (*profile.Writer, error) {
	w, err := profile.NewWriter(out, h, profile.WriterOptions{Overwrite: force, Atomic: true, FlushInterval: -1})
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w, or pass --force to replace it", err)
	}
	return w, err
}

// warnDamage tells the user about blocks of r that were lost.
func warnDamage(stderr io.Writer, r *profile.Reader) {
	if n := r.TruncatedBlocks(); n > 0 {
		fmt.Fprintf(stderr, "warning: %s ends inside a block (a recorder that died or is still writing); "+
			"the events of that last block are not included\n", r.Name())
	}
	if n := r.CorruptBlocks(); n > 0 {
		fmt.Fprintf(stderr, "warning: %s: skipped %d corrupt block(s) (--salvage); their events are not included\n",
			r.Name(), n)
	}
}
