// The import subcommand: a public trace (Twitter cache-trace CSV, libCacheSim oracleGeneral) to a profile,
// hashing its keys with the salt so it replays like a recorded profile.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/membench/membench/profile"
)

const importUsage = `membench import — turn a public cache trace into a profile.

Usage: membench import --format twitter|oracle-general IN -o OUT [--salt-file FILE]

Keys (Twitter key text, oracleGeneral obj_id) are hashed with the salt like recorded keys, so the profile
holds no key text and can be merged or compared with profiles recorded with the same --salt-file. IN may be
zstd-compressed (as the Twitter traces are distributed) and "-" reads standard input.

What the formats do not record is synthesized: protocol text, status unknown, no latency. Twitter: a
client_id that is not a number becomes a hash. oracleGeneral: every request is a get on connection 0, and
obj_size is split into --key-size bytes of key and the rest as value.

Flags:
  --format NAME                twitter or oracle-general (required)
  -o, --output FILE            the profile to write (must not exist)
  --salt-file FILE             hashing secret from 'membench salt' (default: random, uncorrelatable)
  --namespace-delimiter C      namespace prefix delimiter for Twitter keys ("" turns it off; default ":")
  --key-size N                 oracleGeneral: bytes of obj_size taken as the key (default 16)
  --host-label NAME            label stored in the profile header
  --force                      replace OUT if it exists (a symlink there is replaced, never followed)

Examples:
  membench import --format twitter cluster52.0.zst -o cluster52.mbp --salt-file salt.hex
  membench import --format oracle-general trace.oracleGeneral.bin -o trace.mbp --key-size 24
  zstdcat cluster17.0.zst | head -1000000 | membench import --format twitter - -o sample.mbp
`

func init() {
	register(&command{
		name:    "import",
		summary: "turn a Twitter or libCacheSim oracleGeneral trace into a profile",
		usage:   importUsage,
		run:     runImport,
	})
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var out string
	fs.StringVar(&out, "o", "", "")
	fs.StringVar(&out, "output", "", "")
	format := fs.String("format", "", "")
	saltFile := fs.String("salt-file", "", "")
	nsDelim := fs.String("namespace-delimiter", ":", "")
	keySize := fs.Int("key-size", 16, "")
	host := fs.String("host-label", "", "")
	force := fs.Bool("force", false, "")
	pos, err := parseArgs(fs, importUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one input trace, got %d arguments: %w", len(pos), errUsage)
	}
	if out == "" || out == "-" {
		return fmt.Errorf("missing -o OUT (a profile file): %w", errUsage)
	}
	switch *format {
	case profile.FormatTwitter, profile.FormatOracleGeneral:
	case "":
		return fmt.Errorf("missing --format (twitter or oracle-general): %w", errUsage)
	default:
		return fmt.Errorf("unknown --format %q (want twitter or oracle-general): %w", *format, errUsage)
	}
	if len(*nsDelim) > 1 {
		return fmt.Errorf("--namespace-delimiter %q must be one byte or empty: %w", *nsDelim, errUsage)
	}
	if *keySize < 0 || *keySize > 65535 {
		return fmt.Errorf("--key-size %d is out of range [0, 65535]: %w", *keySize, errUsage)
	}

	delim, nsOn := byte(profile.DefaultNSDelim), *nsDelim != ""
	if nsOn {
		delim = (*nsDelim)[0]
	}
	var anon *profile.Anonymizer
	if *saltFile != "" {
		secret, err := profile.LoadSaltFile(*saltFile)
		if err != nil {
			return err
		}
		anon = profile.NewAnonymizer(secret, delim, nsOn)
	} else {
		fmt.Fprintln(stderr, "warning: "+profile.RandomSaltWarning)
		anon = profile.RandomAnonymizer(delim, nsOn)
	}

	in, name, closeIn, err := openTrace(pos[0])
	if err != nil {
		return err
	}
	defer closeIn()

	settings := map[string]string{"import_format": *format, "import_source": filepath.Base(name),
		"namespace_delimiter": *nsDelim, "membench_version": version}
	if *format == profile.FormatOracleGeneral {
		settings["import_key_size"] = strconv.Itoa(*keySize)
	}
	h := profile.Header{Mode: "import", Host: *host, SaltFingerprint: anon.Fingerprint(), Settings: settings}
	w, err := newProfileWriter(out, h, *force)
	if err != nil {
		return err
	}
	var n int64
	stop := progressLine(stderr, func() string { return fmt.Sprintf("import %s: %d events written", name, w.Events()) })
	switch *format {
	case profile.FormatTwitter:
		n, err = profile.ImportTwitter(in, name, anon, w)
	case profile.FormatOracleGeneral:
		n, err = profile.ImportOracleGeneral(in, name, anon, profile.ImportOptions{KeySize: uint16(*keySize)}, w)
	}
	stop()
	if err != nil {
		w.Abort() // OUT keeps what it had
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "imported %d events from %s to %s (salt fingerprint %016x)\n", n, name, out,
		anon.Fingerprint())
	return nil
}

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// openTrace opens path ("-" = standard input), decompressing zstd transparently.
func openTrace(path string) (io.Reader, string, func(), error) {
	var src io.Reader = os.Stdin
	name, closeFn := "standard input", func() {}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", nil, fmt.Errorf("cannot open trace: %w", err)
		}
		src, name, closeFn = f, path, func() { f.Close() }
	}
	br := bufio.NewReaderSize(src, 1<<20)
	if head, _ := br.Peek(len(zstdMagic)); bytes.Equal(head, zstdMagic) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			closeFn()
			return nil, "", nil, fmt.Errorf("cannot decompress %s: %w", name, err)
		}
		inner := closeFn
		return zr, name, func() { zr.Close(); inner() }, nil
	}
	return br, name, closeFn, nil
}
