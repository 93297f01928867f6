// Package ring routes memcached keys to servers with a ketama consistent-hash ring that puts every key on the
// server twemproxy (nutcracker) puts it on with `distribution: ketama`, for any of twemproxy's key hashes and
// with its `hash_tag:`. The proxy's pool mode and replay both route through it, so a pool moved from twemproxy
// to membench, or a trace replayed against the same servers, moves no keys. It has no sockets and no state
// beyond the ring, so that neither mode has to import the other to agree on placement.
//
// The ring is built as twemproxy's ketama_update (src/hashkit/nc_ketama.c, v0.5.0) builds its continuum:
//
//   - Each live server gets floor(w/W * 160/4 * n) * 4 points, with w its weight, W the total weight of the n
//     live servers, computed in float32 as twemproxy does (so weights 1/2/3 give 80, 160 and 240 points).
//   - The points of a server come four at a time from the MD5 digest of "NAME-i", i = 0, 1, …: each 4-byte
//     quarter of the digest, little-endian, is one point. NAME is the server's name (see Server.Name).
//   - A key goes to the owner of the first point at or after the key's hash, wrapping past the last point.
//
// libmemcached's weighted ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, or ketama with a server weight above 1)
// builds the same ring (src/libmemcached/hosts.cc): same point counts, same "host-i" or "host:port-i" names,
// same MD5 quarters, same lookup, and the same key hashes under the same names. KETAMA_WEIGHTED also sets the
// key hash to MD5, so use "md5" unless the client sets another. Not offered: libmemcached's unweighted ketama
// (100 points per server, each hashed with the key hash), its SPY mode ("/host:port-i") and its hashing of a
// namespace prefix with the key; libmemcached has no custom server names. When points of two servers share a value (about one ring in 50,000
// for three servers) libmemcached orders them by server index and twemproxy by its own server order (names
// sorted by length, then bytes); this package does what twemproxy does.
package ring

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

const (
	pointsPerServer = 160     // KETAMA_POINTS_PER_SERVER: points of an average-weight server
	pointsPerDigest = 4       // one MD5 digest gives four 32-bit points
	maxPointName    = 273 - 1 // KETAMA_MAX_HOSTLEN less the NUL: twemproxy cuts "NAME-i" to this many bytes
	defaultPort     = 11211   // the port twemproxy and libmemcached leave out of a server's default name
)

// Server is one memcached server of a pool.
type Server struct {
	// Addr is where to connect: "host:port", or the path of a unix socket (starting with "/"). Written as in
	// twemproxy's server line, because the default Name is derived from this text, not from a resolved address.
	Addr string
	// Name is the server's identity on the ring: the points depend on it and not on Addr, so a server can move
	// to another address and keep its keys. Empty means twemproxy's default: Addr's host alone when the port is
	// 11211, else Addr as written ("10.0.0.1:11212"); for a unix socket, the path followed by ":" (twemproxy
	// takes the byte after the path too). It is the optional last word of twemproxy's
	// "host:port:weight name". Names must be unique within a ring.
	Name string
	// Weight is the server's share of the keys relative to the others, at least 1 (twemproxy's :weight).
	Weight int
}

// Options are the ring's optional settings.
type Options struct {
	// HashTag is empty or two bytes, like twemproxy's `hash_tag: "{}"`. When a key has the first byte and, after
	// it, the second with at least one byte between, only the bytes between are hashed, so "{user1}:a" and
	// "{user1}:b" land together. Otherwise, as for "{}x" or "a{b", the whole key is hashed.
	HashTag string
}

// Ring is an immutable ketama ring over a list of servers. All its methods are safe for concurrent use; to
// change the servers or eject some, build another Ring (New, Without) and swap the pointer.
type Ring struct {
	servers  []Server // as given, with every Name filled in; shared between a ring and the rings made Without
	rank     []int    // rank[i] is server i's place in twemproxy's server order, for ties between points
	hashName string
	hash     Hash
	tag      [2]byte
	hasTag   bool
	live     int      // servers with points; 0 only in a ring from Without that ejected all
	values   []uint32 // point values, ascending
	owners   []uint32 // owners[i] is the server index of point values[i]
}

// New builds a ring over servers, hashing keys with the function twemproxy calls hash (HashNames lists them;
// twemproxy's default is "fnv1a_64"). Pick answers indexes into servers. The slice is copied.
func New(servers []Server, hash string, opts Options) (*Ring, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("cannot build a ring without servers: list at least one in the pool's servers")
	}
	fn, err := HashByName(hash)
	if err != nil {
		return nil, fmt.Errorf("cannot build a ring: %w (set the pool's hash)", err)
	}
	r := &Ring{servers: make([]Server, len(servers)), hashName: hash, hash: fn}
	switch len(opts.HashTag) {
	case 0:
	case 2:
		r.tag = [2]byte{opts.HashTag[0], opts.HashTag[1]}
		r.hasTag = true
	default:
		return nil, fmt.Errorf("cannot use hash tag %q: it must be two bytes, like \"{}\", or empty (set the pool's hash_tag)",
			opts.HashTag)
	}
	var total uint64
	names := make(map[string]int, len(servers))
	for i, s := range servers {
		if s.Addr == "" {
			return nil, fmt.Errorf("server %d has no address: give it as host:port or a unix socket path", i)
		}
		if s.Weight < 1 {
			return nil, fmt.Errorf("server %d (%s) has weight %d: the weight in host:port:weight must be at least 1",
				i, s.Addr, s.Weight)
		}
		if s.Name == "" {
			s.Name = DefaultName(s.Addr)
		}
		if j, dup := names[s.Name]; dup {
			return nil, fmt.Errorf("servers %d (%s) and %d (%s) have the same name %q: give one a name "+
				"(\"host:port:weight name\")", j, servers[j].Addr, i, s.Addr, s.Name)
		}
		names[s.Name] = i
		total += uint64(s.Weight)
		r.servers[i] = s
	}
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("the servers' weights add up to %d, more than twemproxy allows (%d): lower them", total,
			uint64(math.MaxUint32))
	}
	// twemproxy sorts its servers by name, shorter names first (conf_validate_server, string_compare).
	order := make([]int, len(servers))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		na, nb := r.servers[a].Name, r.servers[b].Name
		return cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb))
	})
	r.rank = make([]int, len(servers))
	for place, i := range order {
		r.rank[i] = place
	}
	r.build(nil)
	return r, nil
}

// DefaultName returns the ring name twemproxy gives a server configured without one (conf_add_server): the
// host alone when the port is 11211, the address as written otherwise, and for a unix socket path the path
// and ":".
func DefaultName(addr string) string {
	if strings.HasPrefix(addr, "/") {
		return addr + ":"
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	if port, err := strconv.Atoi(addr[i+1:]); err == nil && port == defaultPort {
		return addr[:i]
	}
	return addr
}

// ParseServer parses one of twemproxy's server lines, "host:port:weight [name]" or "/unix/path:weight [name]",
// as twemproxy's conf_add_server reads it: from the end, so an IPv6 host needs no brackets ("::1:11211:1").
// Name is left empty when the line has none, so that New derives the default.
func ParseServer(line string) (Server, error) {
	bad := func(why string) (Server, error) {
		return Server{}, fmt.Errorf("cannot parse server %q: %s; want \"host:port:weight [name]\" or "+
			"\"/unix/path:weight [name]\"", line, why)
	}
	rest, name := line, ""
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		rest, name = rest[:i], rest[i+1:]
		if name == "" {
			return bad("the name after the space is empty")
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("no :weight")
	}
	rest, weightText := rest[:i], rest[i+1:]
	weight, err := strconv.Atoi(weightText)
	if err != nil || weight < 1 || weightText[0] == '+' || weightText[0] == '-' {
		return bad(fmt.Sprintf("weight %q is not a whole number of at least 1", weightText))
	}
	if strings.HasPrefix(rest, "/") {
		return Server{Addr: rest, Name: name, Weight: weight}, nil
	}
	i = strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return bad("no host:port")
	}
	portText := rest[i+1:]
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > math.MaxUint16 || portText[0] == '+' || portText[0] == '-' {
		return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", portText))
	}
	return Server{Addr: rest, Name: name, Weight: weight}, nil
}

// Without returns a ring over the same servers in which those with ejected[i] set own no points, as twemproxy
// rebuilds its continuum when auto_eject_hosts takes servers out: the others share all the points by their
// weights, and indexes stay those of the full list. Keys of live servers stay where they were, except where
// rounding gives a live server a few points more or fewer (never with equal weights). ejected must have one
// entry per server. When every server is ejected, Pick answers -1.
func (r *Ring) Without(ejected []bool) (*Ring, error) {
	if len(ejected) != len(r.servers) {
		return nil, fmt.Errorf("cannot eject servers: got %d flags for %d servers", len(ejected), len(r.servers))
	}
	n := *r
	n.build(ejected)
	return &n, nil
}

// build fills r.values, r.owners and r.live from the servers not ejected (ejected may be nil).
func (r *Ring) build(ejected []bool) {
	var total uint32
	r.live = 0
	for i, s := range r.servers {
		if ejected == nil || !ejected[i] {
			total += uint32(s.Weight)
			r.live++
		}
	}
	type point struct {
		value uint32
		owner uint32
	}
	points := make([]point, 0, r.live*pointsPerServer+pointsPerServer)
	name := make([]byte, 0, 64)
	for i, s := range r.servers {
		if ejected != nil && ejected[i] {
			continue
		}
		// twemproxy: floorf((float)(pct * 160 / 4 * (float)nlive + 1e-10)) * 4, every step in float32 and
		// the addition in double; the conversions keep Go from fusing or widening any step.
		pct := float32(s.Weight) / float32(total)
		x := float32(float32(float32(pct*pointsPerServer)/pointsPerDigest) * float32(r.live))
		x = float32(float64(x) + 0.0000000001)
		perServer := uint32(float32(math.Floor(float64(x))) * pointsPerDigest)
		for d := range perServer / pointsPerDigest {
			name = append(name[:0], s.Name...)
			name = append(name, '-')
			name = strconv.AppendUint(name, uint64(d), 10)
			if len(name) > maxPointName {
				name = name[:maxPointName]
			}
			sum := md5.Sum(name)
			for q := range pointsPerDigest {
				points = append(points, point{binary.LittleEndian.Uint32(sum[q*4:]), uint32(i)})
			}
		}
	}
	slices.SortFunc(points, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.value, b.value), cmp.Compare(r.rank[a.owner], r.rank[b.owner]))
	})
	r.values = make([]uint32, len(points))
	r.owners = make([]uint32, len(points))
	for i, p := range points {
		r.values[i], r.owners[i] = p.value, p.owner
	}
	if r.live > 0 && len(points) == 0 {
		panic("BUG: live servers but no points on the ring")
	}
}

// Pick returns the index in Servers of the server that owns key, or -1 when every server is ejected. It does
// not allocate and does not keep key. Keys are routed as twemproxy's server_pool_idx routes them: a ring of one
// server answers 0 without hashing, and an empty key hashes to 0.
func (r *Ring) Pick(key []byte) int {
	if r.live == 0 {
		return -1
	}
	if len(r.servers) == 1 {
		return 0
	}
	h := r.position(key)
	// The first point at or after h, wrapping to the first point of all.
	lo, hi := 0, len(r.values)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.values[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.values) {
		lo = 0
	}
	return int(r.owners[lo])
}

// position returns the ring position of key: the hash of its tagged part, or of all of it; 0 when that is empty.
func (r *Ring) position(key []byte) uint32 {
	if r.hasTag {
		key = r.tagged(key)
	}
	if len(key) == 0 {
		return 0
	}
	return r.hash(key)
}

// tagged returns the part of key that the hash tag selects, or key.
func (r *Ring) tagged(key []byte) []byte {
	i := bytes.IndexByte(key, r.tag[0])
	if i < 0 {
		return key
	}
	j := bytes.IndexByte(key[i+1:], r.tag[1])
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// Servers returns a copy of the servers, in the order given to New, with every Name filled in.
func (r *Ring) Servers() []Server { return slices.Clone(r.servers) }

// Live returns how many servers own points: all of them, less those a Without ejected.
func (r *Ring) Live() int { return r.live }

// HashName returns the name of the key hash, as given to New.
func (r *Ring) HashName() string { return r.hashName }

// Points returns how many points server i owns: 0 when ejected, otherwise about 160 times its share of the
// live weight times the number of live servers, rounded down to a multiple of 4. A server with less than
// 1/(40·live) of the weight gets none and no keys, in twemproxy too. For tests and for showing an operator.
func (r *Ring) Points(i int) int {
	n := 0
	for _, o := range r.owners {
		if int(o) == i {
			n++
		}
	}
	return n
}
