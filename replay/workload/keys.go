// This file turns the anonymized identities a profile keeps (a 64-bit key hash and a key length) back into key
// bytes memcached accepts, and gives values of any length. The mapping is deterministic and depends on nothing
// else, so a key replayed twice, by two nodes, or by a warmup pass is the same key.

package workload

import (
	"slices"
	"sync"
	"sync/atomic"
)

// keyAlphabet holds the bytes synthesized keys are made of: printable ASCII without space, without ':' (so that
// a synthesized key has a namespace prefix only when AppendKeyNS gives it one) and without '\\'. 92 symbols: an
// array indexed modulo a constant, so that picking a symbol is a multiplication rather than a division.
const alphabetLen = 92

var keyAlphabet = func() (a [alphabetLen]byte) {
	i := 0
	for c := byte('!'); c <= '~'; c++ {
		if c == ':' || c == '\\' {
			continue
		}
		a[i] = c
		i++
	}
	if i != alphabetLen {
		panic("BUG: key alphabet has the wrong length")
	}
	return a
}()

// MaxKeyLen is the longest key memcached accepts; longer recorded sizes are cut to it.
const MaxKeyLen = 250

// hashDigits is how many leading key bytes carry the hash: 92^10 > 2^64, so keys of this length or more are
// distinct for distinct hashes.
const hashDigits = 10

// AppendKey appends the key for (hash, size) to dst: size bytes (at least 1, at most MaxKeyLen) from
// keyAlphabet. The first min(size, 10) bytes are the hash in base 92, so two different hashes give two
// different keys whenever size ≥ 10 (shorter keys keep hash mod 92^size, as short keys collide in any key
// space); the rest is filler derived from the hash. It does not allocate when dst has room.
func AppendKey(dst []byte, hash uint64, size int) []byte {
	size = min(max(size, 1), MaxKeyLen)
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	k := dst[start:]
	h := hash
	for i := range min(size, hashDigits) {
		k[i] = keyAlphabet[h%alphabetLen]
		h /= alphabetLen
	}
	f := Mix64(hash ^ 0x5bd1e995)
	for i := hashDigits; i < size; i++ {
		if i%8 == 0 {
			f = Mix64(f)
		}
		k[i] = keyAlphabet[(f>>((i%8)*8))%alphabetLen]
	}
	return dst
}

// NSDelim is the namespace delimiter of synthesized keys (membench's default, --namespace-delimiter ':').
const NSDelim = ':'

// nsPrefixLen is the length of a synthesized namespace prefix: 92^4 (about 72 M) namespaces stay apart.
const nsPrefixLen = 4

// MinNSKeyLen is the shortest key AppendKeyNS gives a namespace prefix: the prefix and its delimiter, plus the
// hashDigits that keep distinct keys distinct.
const MinNSKeyLen = nsPrefixLen + 1 + hashDigits

// AppendKeyNS is AppendKey for a key recorded in namespace ns (Event.NSHash; 0 for none): when ns is set and size
// is at least MinNSKeyLen, the key starts with a 4-byte prefix derived from ns and NSDelim, so that the keys of
// one recorded namespace share a prefix again (which a recorder with --namespace-delimiter ':' sees as one
// namespace), followed by AppendKey(hash, size-5). Shorter keys get no prefix, so that they keep all the hash
// digits their length allows. The original prefix's length is not recorded; all synthesized prefixes have 4
// bytes.
func AppendKeyNS(dst []byte, ns, hash uint64, size int) []byte {
	if ns == 0 || size < MinNSKeyLen {
		return AppendKey(dst, hash, size)
	}
	size = min(size, MaxKeyLen)
	h := Mix64(ns ^ 0x2545f4914f6cdd1d)
	for range nsPrefixLen {
		dst = append(dst, keyAlphabet[h%alphabetLen])
		h /= alphabetLen
	}
	dst = append(dst, NSDelim)
	return AppendKey(dst, hash, size-nsPrefixLen-1)
}

// valueFill is what every synthesized value is made of: a decimal "1" padded with spaces, which memcached's
// incr/decr accept as a number, so a replayed incr on a replayed set succeeds as it did when recorded (and
// memcached keeps the item's length, padding the new number with spaces).
const valueFill = '1'

// Values is a read-only source of value bytes of any length up to its size, safe for concurrent use. Its buffer
// grows on demand, in powers of two, to the longest value asked for: a run whose values are small never builds
// (and never makes the garbage collector wait for the copy of) a buffer of the largest size.
type Values struct {
	max int
	mu  sync.Mutex
	buf atomic.Pointer[[]byte]
}

// minValues is the size a value source starts with.
const minValues = 4 << 10

// NewValues returns a value source for values up to max bytes.
func NewValues(max int) *Values {
	v := &Values{max: max}
	v.grow(min(max, minValues))
	return v
}

// grow makes the buffer at least n bytes long (n ≤ max) and returns it.
func (v *Values) grow(n int) []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := v.buf.Load(); p != nil && len(*p) >= n {
		return *p
	}
	size := minValues
	for size < n {
		size *= 2
	}
	b := make([]byte, min(size, v.max))
	if len(b) > 0 {
		b[0] = ' '
		for k := 1; k < len(b); k *= 2 {
			copy(b[k:], b[:k])
		}
		b[0] = valueFill
	}
	v.buf.Store(&b)
	return b
}

// Get returns n bytes of value; the slice is shared and must not be modified. n beyond the source's size is
// cut to it.
func (v *Values) Get(n int) []byte {
	b := *v.buf.Load()
	if n > len(b) && len(b) < v.max {
		b = v.grow(min(n, v.max))
	}
	return b[:min(n, len(b))]
}

// Max returns the largest value length Get returns in full.
func (v *Values) Max() int { return v.max }
