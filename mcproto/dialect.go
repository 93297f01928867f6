// Dialects: which memcached release's request rules a RequestParser follows, learned from the server's
// "VERSION x.y.z" answer, and the item size limit learned from "stats settings". They live apart from the
// parsers because the proxy asks the server once per upstream and hands the result to every connection.
package mcproto

import (
	"bytes"
	"fmt"
	"strconv"
)

// Dialect selects the request rules of one memcached release where releases differ: how a malformed command
// line is answered, whether a rejected storage command's data block is swallowed, which meta flags exist. The
// zero value follows the newest release membench knows (memcached 1.6.45, whose text commands go through
// proto_parser.c); use ParseVersion on the upstream's VERSION line, or Dialect1_6_18, to follow an older one.
//
// The rules are keyed by the release that introduced each change (from memcached's git history):
//   - 1.6.27: meta flags E (set the new item's CAS) and x (md: remove the value, keep the item).
//   - 1.6.40: the shared request parser (proto_parser.c): command names matched before any space (a line with
//     leading spaces is unknown), token minimums answered with "CLIENT_ERROR bad command line format" instead
//     of ERROR, no maximum token count for stores, delete and flush_all, a rejected store line whose length
//     parses swallows its data block, a command line under 4 bytes rejected, "noreply" honoured by unknown
//     commands, md naming the flag error it found, mcmc's strict numbers (no '+').
//   - 1.6.42: a binary request whose body is over 1 GiB is answered "Invalid arguments" and closed.
//
// Only 1.6.18 and 1.6.45 were checked against running servers; releases in between follow these keys.
type Dialect struct {
	v uint32 // major<<20 | minor<<10 | patch; 0 = newest
}

// NewDialect returns the dialect of memcached major.minor.patch.
func NewDialect(major, minor, patch int) Dialect {
	clamp := func(x int) uint32 { return uint32(min(max(x, 0), 1023)) }
	v := clamp(major)<<20 | clamp(minor)<<10 | clamp(patch)
	if v == 0 {
		v = 1 // 0.0.0 is a real (if absurd) version, not "newest"
	}
	return Dialect{v}
}

// Dialect1_6_18 is memcached 1.6.18 (Debian 12's), the release mcproto's first rules were written against.
var Dialect1_6_18 = NewDialect(1, 6, 18)

// DialectNewest is the newest release membench knows, the zero Dialect.
var DialectNewest = Dialect{}

// String returns "x.y.z", or "newest" for the zero value.
func (d Dialect) String() string {
	if d.v == 0 {
		return "newest"
	}
	return fmt.Sprintf("%d.%d.%d", d.v>>20, d.v>>10&1023, d.v&1023)
}

// atLeast reports whether d is release major.minor.patch or later (the newest dialect is later than all).
func (d Dialect) atLeast(major, minor, patch uint32) bool {
	return d.v == 0 || d.v >= major<<20|minor<<10|patch
}

// metaFlagsEx: meta flags E and x (1.6.27).
func (d Dialect) metaFlagsEx() bool { return d.atLeast(1, 6, 27) }

// protoParser: text requests framed and judged by proto_parser.c (1.6.40).
func (d Dialect) protoParser() bool { return d.atLeast(1, 6, 40) }

// binBodyLimit: binary bodies over 1 GiB are rejected (1.6.42).
func (d Dialect) binBodyLimit() bool { return d.atLeast(1, 6, 42) }

// ParseVersion returns the dialect of the server that answered line to "version" (text: "VERSION 1.6.18",
// with or without "\r\n"). A suffix after the patch number ("1.6.45-12-gabcdef", "1.6.9-rc1") is ignored. A
// version with fewer than three numbers is an error.
func ParseVersion(line []byte) (Dialect, error) {
	s := bytes.TrimRight(line, "\r\n")
	v, ok := bytes.CutPrefix(s, []byte("VERSION "))
	if !ok {
		return Dialect{}, fmt.Errorf("cannot parse %q as memcached's answer to version: it does not start with \"VERSION \"", line)
	}
	var nums [3]int
	for i := range nums {
		j := 0
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(v[:j]))
		if err != nil || j > 4 {
			return Dialect{}, fmt.Errorf("cannot parse %q as memcached's answer to version: want VERSION major.minor.patch", line)
		}
		nums[i] = n
		v = v[j:]
		if i < 2 {
			if len(v) == 0 || v[0] != '.' {
				return Dialect{}, fmt.Errorf("cannot parse %q as memcached's answer to version: want VERSION major.minor.patch", line)
			}
			v = v[1:]
		}
	}
	return NewDialect(nums[0], nums[1], nums[2]), nil
}

// ParseItemSizeMax returns item_size_max from memcached's answer to "stats settings" (the STAT lines, with or
// without the final END). memcached rejects a store whose item (key, header, value and "\r\n") does not fit
// it: the limit on the value alone is somewhat lower, by an amount that depends on the key and on slab
// settings, so a proxy cannot judge values near the limit exactly (see ErrTooLarge).
func ParseItemSizeMax(stats []byte) (int, error) {
	rest := stats
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		v, ok := bytes.CutPrefix(line, []byte("STAT item_size_max "))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("cannot parse %q from stats settings as a size in bytes", line)
		}
		return n, nil
	}
	return 0, fmt.Errorf("cannot find item_size_max in the answer to stats settings (%d bytes)", len(stats))
}
