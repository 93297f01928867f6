package ring

// This file holds the key hash functions twemproxy offers for `hash:` (its src/hashkit/nc_*.c), written anew
// from their definitions and checked bit for bit against the C code (see the known answers in ring_test.go).
// They are separate from the ring because replay and analysis want a key hash without a server list.

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"strings"
)

// Hash maps a key to a position on the ring. A Hash is a pure function: safe for concurrent use, it does not
// allocate and does not keep key.
type Hash func(key []byte) uint32

// hashes lists the functions by twemproxy's names, in twemproxy's order (HASH_CODEC in nc_hashkit.h).
var hashes = []struct {
	name string
	fn   Hash
}{
	{"one_at_a_time", oneAtATime},
	{"md5", md5Hash},
	{"crc16", crc16},
	{"crc32", crc32Memcached},
	{"crc32a", crc32.ChecksumIEEE},
	{"fnv1_64", fnv1_64},
	{"fnv1a_64", fnv1a_64},
	{"fnv1_32", fnv1_32},
	{"fnv1a_32", fnv1a_32},
	{"hsieh", hsieh},
	{"murmur", murmur},
	{"jenkins", jenkins},
}

// HashNames returns the names HashByName accepts, in twemproxy's order.
func HashNames() []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.name
	}
	return names
}

// HashByName returns the key hash that twemproxy calls name (its `hash:` setting, spelt the same, lower case).
//
// Each function gives exactly twemproxy's value on amd64, including two inherited quirks: fnv1a_64 works on 32
// bits (the 64-bit basis and prime truncated, as twemproxy and libmemcached do), and crc32 is libmemcached's
// 15-bit variant, so under ketama nearly every key lands on one server (in twemproxy too); crc32a is the
// standard CRC-32. Keys are read as C reads a plain `char` on x86: a byte of 0x80
// or more is sign-extended in one_at_a_time, the four fnv functions and hsieh, so keys with such bytes hash as
// on an x86 twemproxy (an arm64 build of twemproxy, where char is unsigned, places them differently).
func HashByName(name string) (Hash, error) {
	for _, h := range hashes {
		if h.name == name {
			return h.fn, nil
		}
	}
	return nil, fmt.Errorf("unknown hash %q: valid names are %s", name, strings.Join(HashNames(), ", "))
}

// sx32 and sx64 widen a key byte as C widens a signed char (twemproxy reads keys through `const char *`).
func sx32(b byte) uint32 { return uint32(int32(int8(b))) }
func sx64(b byte) uint64 { return uint64(int64(int8(b))) }

// oneAtATime is Bob Jenkins' one-at-a-time hash (nc_one_at_a_time.c).
func oneAtATime(key []byte) uint32 {
	var v uint32
	for _, b := range key {
		v += sx32(b)
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}

// md5Hash is the first four bytes of the MD5 digest, little-endian (hash_md5 in nc_md5.c).
func md5Hash(key []byte) uint32 {
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint32(sum[:4])
}

// crc16Table is CRC-16/XMODEM's table (polynomial 0x1021, not reflected).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc16 is twemproxy's hash_crc16: CRC-16/XMODEM kept in a 32-bit register that is never masked, so the bits
// shifted past 16 stay in the result (the low 16 bits are the real CRC).
func crc16(key []byte) uint32 {
	var c uint32
	for _, b := range key {
		c = c<<8 ^ uint32(crc16Table[byte(c>>8)^b])
	}
	return c
}

// crc32Memcached is libmemcached's "crc32": bits 16..30 of the standard CRC-32 (hash_crc32 in nc_crc32.c).
func crc32Memcached(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

const (
	fnv64Basis = 0xcbf29ce484222325
	fnv64Prime = 0x100000001b3
	fnv32Basis = 2166136261
	fnv32Prime = 16777619
)

// fnv1_64 is 64-bit FNV-1 truncated to its low 32 bits.
func fnv1_64(key []byte) uint32 {
	h := uint64(fnv64Basis)
	for _, b := range key {
		h *= fnv64Prime
		h ^= sx64(b)
	}
	return uint32(h)
}

// fnv1a_64 is FNV-1a computed in 32 bits with the 64-bit basis and prime truncated to 32 bits.
func fnv1a_64(key []byte) uint32 {
	h := uint32(fnv64Basis & 0xffffffff)
	for _, b := range key {
		h ^= sx32(b)
		h *= fnv64Prime & 0xffffffff
	}
	return h
}

// fnv1_32 is 32-bit FNV-1.
func fnv1_32(key []byte) uint32 {
	h := uint32(fnv32Basis)
	for _, b := range key {
		h *= fnv32Prime
		h ^= sx32(b)
	}
	return h
}

// fnv1a_32 is 32-bit FNV-1a.
func fnv1a_32(key []byte) uint32 {
	h := uint32(fnv32Basis)
	for _, b := range key {
		h ^= sx32(b)
		h *= fnv32Prime
	}
	return h
}

// hsieh is Paul Hsieh's SuperFastHash (nc_hsieh.c); the empty key hashes to 0.
func hsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	le16 := func(p []byte) uint32 { return uint32(p[0]) | uint32(p[1])<<8 }
	var h uint32
	for ; len(key) >= 4; key = key[4:] {
		h += le16(key)
		tmp := le16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		h += h >> 11
	}
	switch len(key) {
	case 3:
		h += le16(key)
		h ^= h << 16
		h ^= sx32(key[2]) << 18
		h += h >> 11
	case 2:
		h += le16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// murmur is MurmurHash2 seeded with 0xdeadbeef*len(key), as in nc_murmur.c and libmemcached.
func murmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	for ; len(key) >= 4; key = key[4:] {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// jenkins is Bob Jenkins' lookup3 hashlittle with initval 13 (nc_jenkins.c). Its word-at-a-time paths for
// aligned keys give the same value as this byte-wise form on little-endian machines.
func jenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + 13
	b, c := a, a
	if len(key) == 0 {
		return c
	}
	rot := bits.RotateLeft32
	for ; len(key) > 12; key = key[12:] {
		a += binary.LittleEndian.Uint32(key)
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		// mix
		a -= c
		a ^= rot(c, 4)
		c += b
		b -= a
		b ^= rot(a, 6)
		a += c
		c -= b
		c ^= rot(b, 8)
		b += a
		a -= c
		a ^= rot(c, 16)
		c += b
		b -= a
		b ^= rot(a, 19)
		a += c
		c -= b
		c ^= rot(b, 4)
		b += a
	}
	// The last 1..12 bytes, zero-padded.
	var last [12]byte
	copy(last[:], key)
	a += binary.LittleEndian.Uint32(last[:])
	b += binary.LittleEndian.Uint32(last[4:])
	c += binary.LittleEndian.Uint32(last[8:])
	// final
	c ^= b
	c -= rot(b, 14)
	a ^= c
	a -= rot(c, 11)
	b ^= a
	b -= rot(a, 25)
	c ^= b
	c -= rot(b, 16)
	a ^= c
	a -= rot(c, 4)
	b ^= a
	b -= rot(a, 14)
	c ^= b
	c -= rot(b, 24)
	return c
}
