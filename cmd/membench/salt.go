// The salt subcommand: creates the secret that keys the anonymizer's SipHash, shared by every recorder whose
// profiles should be comparable.
package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/membench/membench/profile"
)

const saltUsage = `membench salt — create a salt file: the secret that keys the hashing of memcached keys.

Usage: membench salt -o FILE

Profiles never hold keys, only keyed SipHash-2-4 hashes of them. Profiles recorded with the same salt file
hash equal keys equally, so they can be merged and compared key by key; without the salt a hash cannot be
tested against a guessed key. The file holds 32 hex digits and is created with mode 0600; an existing file
is never overwritten. Keep it as secret as the keys themselves, and pass it to recorders with --salt-file.

Flags:
  -o, --output FILE   where to write the salt (required; must not exist)

Examples:
  membench salt -o /etc/membench/salt.hex
  membench proxy --listen :11311 --upstream 127.0.0.1:11211 --record a.mbp --salt-file /etc/membench/salt.hex
`

func init() {
	register(&command{
		name:    "salt",
		summary: "create a salt file for --salt-file (keys the anonymizing hash)",
		usage:   saltUsage,
		run:     runSalt,
	})
}

func runSalt(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("salt", flag.ContinueOnError)
	var out string
	fs.StringVar(&out, "o", "", "")
	fs.StringVar(&out, "output", "", "")
	pos, err := parseArgs(fs, saltUsage, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (the file goes after -o): %w", pos[0], errUsage)
	}
	if out == "" {
		return fmt.Errorf("missing -o FILE: %w", errUsage)
	}
	secret := profile.GenerateSalt()
	if err := profile.WriteSaltFile(out, secret); err != nil {
		return err
	}
	a := profile.NewAnonymizer(secret, profile.DefaultNSDelim, true)
	fmt.Fprintf(stdout, "wrote salt to %s (mode 0600, fingerprint %016x); pass --salt-file %s to every recorder "+
		"whose profiles you want to merge or compare\n", out, a.Fingerprint(), out)
	return nil
}
