// Unit tests of the ring: known answers of the hashes, point counts, lookup, hash tags, ejection, distribution
// and the zero-allocation Pick. Placement against a live twemproxy is in parity_test.go.
package ring

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
)

// katKeys are the inputs of TestHashKnownAnswers: every tail length of the 4- and 12-byte block hashes, and
// bytes of 0x80 and more, which twemproxy sign-extends in some hashes.
var katKeys = []string{
	"", "a", "ab", "abc", "abcd", "abcde", "hello world", "foo:bar:1234567", "{user1}:profile", "caf\xc3\xa9",
	"\xff\x80\x7f", "\xe2\x82\xac\xe2\x82\xac\xe2", "The quick brown fox jumps over the lazy dog",
}

// TestHashKnownAnswers checks each hash against the values twemproxy v0.5.0 gives: they were computed by
// compiling its src/hashkit/nc_*.c with gcc on amd64 and hashing katKeys (from aligned and unaligned buffers,
// which agree).
func TestHashKnownAnswers(t *testing.T) {
	f := func(name string, want ...uint32) {
		t.Helper()
		h, err := HashByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(katKeys) {
			t.Fatalf("BUG: %s: %d answers for %d keys", name, len(want), len(katKeys))
		}
		for i, k := range katKeys {
			if got := h([]byte(k)); got != want[i] {
				t.Errorf("%s(%q) = %#08x, want %#08x", name, k, got, want[i])
			}
		}
	}
	f("one_at_a_time", 0x00000000, 0xca2e9442, 0x45e61e58, 0xed131f5b, 0xcd8b6206, 0xb98559fc, 0x3e4a5a57,
		0xc70f431f, 0x60992297, 0xd99c709e, 0xde102744, 0x4dacbae4, 0x519e91f5)
	f("md5", 0xd98c1dd4, 0xb975c10c, 0x43f47e18, 0x98500190, 0x4c71fce2, 0xd9b456ab, 0xbb3bb65e,
		0xe650aaec, 0xf0c75205, 0xe47f1107, 0x3bf244dd, 0xf536e550, 0x9d7d109e)
	f("crc16", 0x00000000, 0x00007c87, 0x007c74ff, 0x7c749dd6, 0x749da836, 0x9da83ee1, 0xf2063be4,
		0xe965e8b7, 0x97271c86, 0xf6269667, 0x1e925b83, 0x40043fe8, 0x22a3f0c8)
	f("crc32", 0x00000000, 0x000068b7, 0x00001e83, 0x00003524, 0x00006d82, 0x00000587, 0x00000d4a,
		0x00000b69, 0x00007edd, 0x000018ad, 0x00003ae0, 0x00003d8d, 0x0000414f)
	f("crc32a", 0x00000000, 0xe8b7be43, 0x9e83486d, 0x352441c2, 0xed82cd11, 0x8587d865, 0x0d4a1185,
		0x8b692a97, 0xfeddb5bd, 0x98ad42b5, 0xbae01919, 0x3d8d99e8, 0x414fa339)
	f("fnv1_64", 0x84222325, 0x8601b7be, 0xb4eb37b8, 0x6bafadcb, 0xfb844f95, 0x61d33a4a, 0xb1910e6f,
		0x759b1c54, 0xa5952f32, 0x8a06fef1, 0x6c127fdf, 0x9bd1e91d, 0x7de37ace)
	f("fnv1a_64", 0x84222325, 0x8601ec8c, 0xb545986a, 0x0541574b, 0xee0724dd, 0x762364a8, 0x023cd2e7,
		0x82e37e7a, 0xb4c216fc, 0xcef6bb89, 0x720040af, 0x2bd34e45, 0xe7e47110)
	f("fnv1_32", 0x811c9dc5, 0x050c5d7e, 0x70772d38, 0x439c2f4b, 0xb9de7375, 0x0e2fc14a, 0x548da96f,
		0x756c2c14, 0x08d02dd2, 0xd682f171, 0x30b30d1f, 0x37fcac9d, 0xe9c86c6e)
	f("fnv1a_32", 0x811c9dc5, 0xe40c292c, 0x4d2505ca, 0x1a47e90b, 0xce3479bd, 0x749bcf08, 0xd58b3fa7,
		0x4504dada, 0x9d5e35bc, 0x7572c049, 0x9cdced6f, 0xfd596745, 0x048fff90)
	f("hsieh", 0x00000000, 0x93642e87, 0x5b8c0ec3, 0xe5186b3a, 0x3ab452d8, 0x84786722, 0x4f799873,
		0x6d3e15f5, 0x1efd653d, 0xde3f8855, 0xcb8cbd91, 0xe7aa1caa, 0x1c19ee97)
	f("murmur", 0x00000000, 0x4b41757c, 0xe3b54dfb, 0x7b0cc428, 0xef6a86af, 0x9a263eda, 0x5e19153b,
		0x91d43382, 0xeac1b6e1, 0xda11981f, 0xd95850af, 0xee786e12, 0x30c79125)
	f("jenkins", 0xdeadbefc, 0xe0a38690, 0xc1b5695b, 0x8f415600, 0xd512151a, 0x5cff335b, 0x153343fb,
		0xeb171c3c, 0x5028dc6b, 0xcb6225ad, 0x1964a2b8, 0x0c4864a7, 0x12b8163c)
}

// TestHashReferenceDefinitions checks the hashes against independent definitions from the standard library, on
// ASCII keys (where twemproxy's sign extension does not matter), plus published check values.
func TestHashReferenceDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		key := make([]byte, rng.IntN(64))
		for i := range key {
			key[i] = byte(0x21 + rng.IntN(0x7f-0x21))
		}
		sum := md5.Sum(key)
		f32, f32a, f64 := fnv.New32(), fnv.New32a(), fnv.New64()
		f32.Write(key)
		f32a.Write(key)
		f64.Write(key)
		f := func(name string, want uint32) {
			t.Helper()
			if got := mustHash(t, name)(key); got != want {
				t.Fatalf("%s(%q) = %#08x, want %#08x", name, key, got, want)
			}
		}
		f("md5", binary.LittleEndian.Uint32(sum[:]))
		f("crc32a", crc32.ChecksumIEEE(key))
		f("crc32", crc32.ChecksumIEEE(key)>>16&0x7fff)
		f("fnv1_32", f32.Sum32())
		f("fnv1a_32", f32a.Sum32())
		f("fnv1_64", uint32(f64.Sum64()))
	}
	// CRC-16/XMODEM's check value is in the low 16 bits; twemproxy keeps the bits above.
	if got := crc16([]byte("123456789")); got&0xffff != 0x31c3 {
		t.Fatalf("crc16(\"123456789\") = %#x, want low 16 bits 0x31c3", got)
	}
	// lookup3's hashlittle of the empty key is 0xdeadbeef plus initval (13 in twemproxy).
	if got := jenkins(nil); got != 0xdeadbeef+13 {
		t.Fatalf("jenkins(\"\") = %#x, want %#x", got, 0xdeadbeef+13)
	}
}

func mustHash(t testing.TB, name string) Hash {
	t.Helper()
	h, err := HashByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashByName_Failure(t *testing.T) {
	f := func(name string) {
		t.Helper()
		_, err := HashByName(name)
		if err == nil {
			t.Fatalf("HashByName(%q): no error", name)
		}
		for _, valid := range HashNames() {
			if !strings.Contains(err.Error(), valid) {
				t.Fatalf("HashByName(%q): error %q does not name %q", name, err, valid)
			}
		}
	}
	f("")
	f("FNV1A_64")
	f("fnv1a-64")
	f("ketama")
	if n := len(HashNames()); n != 12 {
		t.Fatalf("HashNames() has %d names, want twemproxy's 12", n)
	}
}

func TestDefaultName(t *testing.T) {
	f := func(addr, want string) {
		t.Helper()
		if got := DefaultName(addr); got != want {
			t.Fatalf("DefaultName(%q) = %q, want %q", addr, got, want)
		}
	}
	f("127.0.0.1:11211", "127.0.0.1")
	f("127.0.0.1:011211", "127.0.0.1")
	f("127.0.0.1:11212", "127.0.0.1:11212")
	f("cache-1.example:11211", "cache-1.example")
	f("::1:11211", "::1")
	f("::1:22122", "::1:22122")
	f("/var/run/memcached.sock", "/var/run/memcached.sock:")
}

func TestParseServer_Success(t *testing.T) {
	f := func(line string, want Server) {
		t.Helper()
		got, err := ParseServer(line)
		if err != nil {
			t.Fatalf("ParseServer(%q): %v", line, err)
		}
		if got != want {
			t.Fatalf("ParseServer(%q) = %+v, want %+v", line, got, want)
		}
	}
	f("127.0.0.1:11211:1", Server{Addr: "127.0.0.1:11211", Weight: 1})
	f("127.0.0.1:11212:3 server1", Server{Addr: "127.0.0.1:11212", Name: "server1", Weight: 3})
	f("cache-1.example:11211:10", Server{Addr: "cache-1.example:11211", Weight: 10})
	f("::1:11211:1", Server{Addr: "::1:11211", Weight: 1})
	f("/tmp/memcached.sock:2", Server{Addr: "/tmp/memcached.sock", Weight: 2})
	f("/tmp/memcached.sock:2 local", Server{Addr: "/tmp/memcached.sock", Name: "local", Weight: 2})
}

func TestParseServer_Failure(t *testing.T) {
	f := func(line, wantErr string) {
		t.Helper()
		_, err := ParseServer(line)
		if err == nil {
			t.Fatalf("ParseServer(%q): no error", line)
		}
		if !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "host:port:weight [name]") {
			t.Fatalf("ParseServer(%q): error %q, want it to contain %q and the format", line, err, wantErr)
		}
	}
	f("", "no :weight")
	f("127.0.0.1", "no :weight")
	f("127.0.0.1:11211", "no host:port")
	f("127.0.0.1:11211:0", `weight "0"`)
	f("127.0.0.1:11211:-1", `weight "-1"`)
	f("127.0.0.1:11211:+1", `weight "+1"`)
	f("127.0.0.1:11211:x", `weight "x"`)
	f("127.0.0.1:11211:", `weight ""`)
	f("127.0.0.1:0:1", `port "0"`)
	f("127.0.0.1:65536:1", `port "65536"`)
	f("127.0.0.1:http:1", `port "http"`)
	f(":11211:1", "no host:port")
	f("127.0.0.1:11211:1 ", "name after the space is empty")
	f("127.0.0.1:11211:1 my server", `weight "1 my"`)
}

func servers(weights ...int) []Server {
	s := make([]Server, len(weights))
	for i, w := range weights {
		s[i] = Server{Addr: fmt.Sprintf("10.0.0.%d:11211", i+1), Weight: w}
	}
	return s
}

func mustNew(t testing.TB, s []Server, hash string, opts Options) *Ring {
	t.Helper()
	r, err := New(s, hash, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNew_Failure(t *testing.T) {
	f := func(s []Server, hash string, opts Options, wantErr string) {
		t.Helper()
		_, err := New(s, hash, opts)
		if err == nil {
			t.Fatalf("New(%+v, %q, %+v): no error", s, hash, opts)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("New(%+v, %q, %+v): error %q does not contain %q", s, hash, opts, err, wantErr)
		}
	}
	f(nil, "md5", Options{}, "without servers")
	f(servers(1), "sha1", Options{}, "valid names are one_at_a_time, md5")
	f(servers(1), "md5", Options{HashTag: "{"}, `hash tag "{"`)
	f(servers(1), "md5", Options{HashTag: "{}}"}, "hash_tag")
	f(servers(1, 0), "md5", Options{}, "server 1 (10.0.0.2:11211) has weight 0")
	f(servers(-1), "md5", Options{}, "weight -1")
	f([]Server{{Weight: 1}}, "md5", Options{}, "server 0 has no address")
	f([]Server{{Addr: "10.0.0.1:11211", Weight: 1}, {Addr: "10.0.0.1:11211", Weight: 2}}, "md5", Options{},
		`same name "10.0.0.1"`)
	f([]Server{{Addr: "10.0.0.1:11211", Weight: 1}, {Addr: "10.0.0.2:11211", Name: "10.0.0.1", Weight: 1}}, "md5",
		Options{}, "same name")
	f(servers(1<<31, 1<<31), "md5", Options{}, "weights add up to 4294967296")
}

// TestPointsPerServer checks the point counts against twemproxy's float32 formula, as computed by C
// (floorf((float)(pct*160/4*(float)n + 0.0000000001))*4 with gcc on amd64). Weights 1/29/30 are where float32 and
// float64 disagree: float64 would give the weight-29 server 232 points.
func TestPointsPerServer(t *testing.T) {
	f := func(weights []int, want ...int) {
		t.Helper()
		r := mustNew(t, servers(weights...), "fnv1a_64", Options{})
		for i := range weights {
			if got := r.Points(i); got != want[i] {
				t.Fatalf("weights %v: server %d has %d points, want %d", weights, i, got, want[i])
			}
		}
	}
	f([]int{1}, 160)
	f([]int{1, 1, 1}, 160, 160, 160)
	f([]int{1, 2, 3}, 80, 160, 240)
	f([]int{1, 1}, 160, 160)
	f([]int{5, 1, 1}, 340, 68, 68)
	f([]int{1, 2, 3, 4}, 64, 128, 192, 256)
	f([]int{3, 3, 3, 1}, 192, 192, 192, 64)
	f([]int{100, 1}, 316, 0)
	f([]int{1000, 1}, 316, 0)
	f([]int{1, 1, 1, 1, 1, 1, 1}, 160, 160, 160, 160, 160, 160, 160)
	f([]int{1, 1, 1, 1, 1}, 160, 160, 160, 160, 160)
	f([]int{7, 7, 7, 7, 7, 7, 7, 7}, 160, 160, 160, 160, 160, 160, 160, 160)
	f([]int{1, 29, 30}, 8, 228, 240)
}

// TestRingPoints checks the continuum itself for one server: the MD5 quarters of "NAME-i", little-endian.
func TestRingPoints(t *testing.T) {
	r := mustNew(t, []Server{{Addr: "127.0.0.1:11211", Weight: 1}}, "md5", Options{})
	want := map[uint32]bool{}
	for i := range 40 {
		sum := md5.Sum([]byte(fmt.Sprintf("127.0.0.1-%d", i)))
		for q := range 4 {
			want[binary.LittleEndian.Uint32(sum[q*4:])] = true
		}
	}
	if len(r.values) != 160 {
		t.Fatalf("%d points, want 160", len(r.values))
	}
	for i, v := range r.values {
		if !want[v] {
			t.Fatalf("point %d = %#x is not an MD5 quarter of 127.0.0.1-0..39", i, v)
		}
		if i > 0 && r.values[i-1] > v {
			t.Fatalf("points not sorted at %d", i)
		}
	}
}

// pickRef is Pick written the slow, obvious way: the smallest point at or after h, else the smallest point.
func pickRef(r *Ring, key []byte) int {
	h := uint32(0)
	if len(key) > 0 {
		h = r.hash(key)
	}
	best, first := -1, 0
	for i, v := range r.values {
		if v >= h && (best < 0 || v < r.values[best]) {
			best = i
		}
		if v < r.values[first] {
			first = i
		}
	}
	if best < 0 {
		best = first
	}
	return int(r.owners[best])
}

func TestPickMatchesLinearSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range HashNames() {
		r := mustNew(t, servers(1, 2, 3, 1, 5), name, Options{})
		for range 2000 {
			key := randomKey(rng, 1+rng.IntN(40))
			if got, want := r.Pick(key), pickRef(r, key); got != want {
				t.Fatalf("%s: Pick(%q) = %d, linear search says %d", name, key, got, want)
			}
		}
	}
}

func TestPickEdges(t *testing.T) {
	// One server: 0 without hashing, whatever the key.
	one := mustNew(t, servers(7), "md5", Options{})
	for _, k := range []string{"", "a", "{x}"} {
		if got := one.Pick([]byte(k)); got != 0 {
			t.Fatalf("one server: Pick(%q) = %d, want 0", k, got)
		}
	}
	// The empty key hashes to 0: the owner of the smallest point.
	r := mustNew(t, servers(1, 1, 1), "jenkins", Options{})
	if got, want := r.Pick(nil), int(r.owners[0]); got != want {
		t.Fatalf("Pick(empty) = %d, want %d, the owner of the first point", got, want)
	}
	// A hash past the last point wraps to the first.
	last := r.values[len(r.values)-1]
	rng := rand.New(rand.NewPCG(5, 6))
	found := false
	for range 1_000_000 {
		key := randomKey(rng, 8)
		if r.hash(key) > last {
			if got, want := r.Pick(key), int(r.owners[0]); got != want {
				t.Fatalf("Pick(%q) past the last point = %d, want %d", key, got, want)
			}
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("no key hashed past the last point %#x", last)
	}
}

func randomKey(rng *rand.Rand, n int) []byte {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-."
	key := make([]byte, n)
	for i := range key {
		key[i] = chars[rng.IntN(len(chars))]
	}
	return key
}

// distributionKeys returns n random keys of 10 to 39 bytes.
func distributionKeys(n int) [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = randomKey(rng, 10+rng.IntN(30))
	}
	return keys
}

// shares returns the fraction of keys that each server of r gets.
func shares(r *Ring, keys [][]byte) []float64 {
	counts := make([]int, len(r.servers))
	for _, k := range keys {
		counts[r.Pick(k)]++
	}
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = float64(c) / float64(len(keys))
	}
	return out
}

// arcShares returns the fraction of the ring each server owns: the arc before each of its points.
func arcShares(r *Ring) []float64 {
	out := make([]float64, len(r.servers))
	prev := uint64(r.values[len(r.values)-1]) - 1<<32 // the last point, one turn back
	for i, v := range r.values {
		out[r.owners[i]] += float64(uint64(v)-prev) / (1 << 32)
		prev = uint64(v)
	}
	return out
}

func TestDistribution(t *testing.T) {
	keys := distributionKeys(100_000)
	f := func(hash string, weights []int, tolerance float64) {
		t.Helper()
		r := mustNew(t, servers(weights...), hash, Options{})
		got := shares(r, keys)
		total := 0
		for _, w := range weights {
			total += w
		}
		for i, w := range weights {
			want := float64(w) / float64(total)
			if got[i] < want-tolerance || got[i] > want+tolerance {
				t.Errorf("%s, weights %v: server %d gets %.1f%% of the keys, want %.1f%% ± %.0f", hash, weights, i,
					100*got[i], 100*want, 100*tolerance)
			}
		}
	}
	for _, name := range HashNames() {
		if name == "crc32" {
			continue // 15 bits: every key hashes below 2^15, onto the first few points (see below)
		}
		f(name, []int{1, 1, 1}, 0.05)
		f(name, []int{1, 2, 3}, 0.05)
		f(name, []int{4, 1}, 0.05)
		// The hash spreads keys evenly over the ring: each server's share of the keys is its share of the
		// ring's length, to within a percent. (How evenly the ring itself is cut depends only on the names.)
		for _, weights := range [][]int{{1, 2, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}} {
			r := mustNew(t, servers(weights...), name, Options{})
			arcs, got := arcShares(r), shares(r, keys)
			for i := range weights {
				if d := got[i] - arcs[i]; d < -0.01 || d > 0.01 {
					t.Errorf("%s, weights %v: server %d gets %.2f%% of the keys but owns %.2f%% of the ring", name,
						weights, i, 100*got[i], 100*arcs[i])
				}
			}
		}
	}
	// libmemcached's 15-bit crc32 only reaches the start of the ring, so under ketama nearly every key lands on
	// the owner of the first point; twemproxy does the same.
	r := mustNew(t, servers(1, 1, 1), "crc32", Options{})
	got := shares(r, keys[:10_000])
	if got[r.owners[0]] < 0.9 {
		t.Errorf("crc32: the first point's owner gets %.2f of the keys, want nearly all", got[r.owners[0]])
	}
}

func TestHashTags(t *testing.T) {
	tagged := mustNew(t, servers(1, 1, 1, 1, 1), "fnv1a_64", Options{HashTag: "{}"})
	plain := mustNew(t, servers(1, 1, 1, 1, 1), "fnv1a_64", Options{})
	// f checks that key goes where the plain ring sends hashed, the part the tag should select.
	f := func(key, hashed string) {
		t.Helper()
		if got, want := tagged.Pick([]byte(key)), plain.Pick([]byte(hashed)); got != want {
			t.Fatalf("Pick(%q) = %d, want %d, where %q goes", key, got, want, hashed)
		}
		if got, want := tagged.position([]byte(key)), plain.position([]byte(hashed)); got != want {
			t.Fatalf("hash of %q = %#x, want the hash of %q, %#x", key, got, hashed, want)
		}
	}
	f("{user1}:a", "user1")
	f("{user1}:b", "user1")
	f("x{user1}y", "user1")
	f("{user1}{user2}", "user1")
	f("{{user1}}", "{user1")
	f("a{b}", "b")
	f("abc", "abc")          // no tag: the whole key
	f("{}abc", "{}abc")      // empty tag: the whole key
	f("abc{", "abc{")        // no closing byte: the whole key
	f("a}b{c", "a}b{c")      // closing byte only before the opening one
	f("{a}", "a")            // one byte between
	f("}{a}", "a")           // a closing byte before the tag is not a tag
	f("user1", "user1")      // the tag's contents alone go where the tagged keys go
	f("{u}{}{v}", "u")       // the first tag wins
	f("", "")                // empty key
	f("{user1", "{user1")    // unclosed
	f("user1}", "user1}")    // unopened
	f("{ü}:x", "ü")          // bytes above 0x7f inside the tag
	f("{\xff}:\xff", "\xff") // a single high byte
	for i := range 1000 {
		a := fmt.Appendf(nil, "{user%d}:a", i)
		b := fmt.Appendf(nil, "prefix:{user%d}:b:%d", i, i*7)
		if tagged.Pick(a) != tagged.Pick(b) {
			t.Fatalf("%q and %q are on servers %d and %d, want one", a, b, tagged.Pick(a), tagged.Pick(b))
		}
	}
	// The same byte may open and close, as twemproxy allows.
	dollar := mustNew(t, servers(1, 1, 1, 1, 1), "md5", Options{HashTag: "$$"})
	plainMD5 := mustNew(t, servers(1, 1, 1, 1, 1), "md5", Options{})
	for _, c := range [][2]string{{"$abc$def", "abc"}, {"x$$y", "x$$y"}, {"a$b", "a$b"}, {"$a$b$c$", "a"}} {
		if got, want := dollar.Pick([]byte(c[0])), plainMD5.Pick([]byte(c[1])); got != want {
			t.Fatalf("tag $$: Pick(%q) = %d, want %d, where %q goes", c[0], got, want, c[1])
		}
	}
}

func TestWithout(t *testing.T) {
	full := mustNew(t, servers(1, 1, 1), "fnv1a_64", Options{})
	if _, err := full.Without([]bool{true}); err == nil || !strings.Contains(err.Error(), "1 flags for 3 servers") {
		t.Fatalf("Without with too few flags: error %v", err)
	}
	ej, err := full.Without([]bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	if ej.Live() != 2 || ej.Points(1) != 0 || len(ej.Servers()) != 3 {
		t.Fatalf("after ejecting server 1: live %d, its points %d, servers %d; want 2, 0, 3", ej.Live(), ej.Points(1),
			len(ej.Servers()))
	}
	// The rebuilt ring is the ring of the live servers alone, as twemproxy rebuilds it, with the full list's
	// indexes; with equal weights the live servers keep their 160 points, so their keys stay.
	alone := mustNew(t, []Server{full.servers[0], full.servers[2]}, "fnv1a_64", Options{})
	rng := rand.New(rand.NewPCG(8, 9))
	moved := 0
	for range 20_000 {
		key := randomKey(rng, 20)
		before, after := full.Pick(key), ej.Pick(key)
		if want := []int{0, 2}[alone.Pick(key)]; after != want {
			t.Fatalf("Pick(%q) after ejecting 1 = %d, the ring of the live servers says %d", key, after, want)
		}
		if before != 1 && after != before {
			t.Fatalf("Pick(%q) moved from live server %d to %d", key, before, after)
		}
		if before == 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key was on server 1")
	}
	// Ejecting none gives the original ring; ejecting all leaves no server.
	same, err := full.Without(make([]bool, 3))
	if err != nil {
		t.Fatal(err)
	}
	none, err := full.Without([]bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		key := randomKey(rng, 20)
		if same.Pick(key) != full.Pick(key) {
			t.Fatalf("Pick(%q) differs after ejecting none", key)
		}
		if got := none.Pick(key); got != -1 {
			t.Fatalf("Pick(%q) with every server ejected = %d, want -1", key, got)
		}
	}
	if full.Live() != 3 || full.Points(1) != 160 {
		t.Fatal("Without changed the ring it was called on")
	}
}

func TestServers(t *testing.T) {
	r := mustNew(t, []Server{{Addr: "127.0.0.1:11211", Weight: 1}, {Addr: "127.0.0.1:11212", Weight: 2},
		{Addr: "127.0.0.1:11213", Name: "c", Weight: 3}}, "murmur", Options{})
	got := r.Servers()
	want := []Server{{"127.0.0.1:11211", "127.0.0.1", 1}, {"127.0.0.1:11212", "127.0.0.1:11212", 2},
		{"127.0.0.1:11213", "c", 3}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Servers()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	got[0].Name = "changed"
	if r.Servers()[0].Name != "127.0.0.1" {
		t.Fatal("Servers() returned the ring's own slice")
	}
	if r.HashName() != "murmur" {
		t.Fatalf("HashName() = %q", r.HashName())
	}
}

// TestPointTies checks that points with one value are ordered by twemproxy's server order (shorter names first,
// then bytes), not by the order servers were given in.
func TestPointTies(t *testing.T) {
	// Real collisions between MD5 quarters are too rare to construct, so check the ranks that break ties.
	r := mustNew(t, []Server{{Addr: "h:1", Name: "bb", Weight: 1}, {Addr: "h:2", Name: "a", Weight: 1},
		{Addr: "h:3", Name: "ab", Weight: 1}}, "md5", Options{})
	if r.rank[0] != 2 || r.rank[1] != 0 || r.rank[2] != 1 {
		t.Fatalf("ranks %v, want [2 0 1]: by length, then bytes", r.rank)
	}
}

func TestPickAllocs(t *testing.T) {
	key := []byte("user:1234567890:profile:{abc}")
	for _, name := range HashNames() {
		for _, tag := range []string{"", "{}"} {
			r := mustNew(t, servers(1, 2, 3), name, Options{HashTag: tag})
			if n := testing.AllocsPerRun(1000, func() { r.Pick(key) }); n != 0 {
				t.Errorf("%s, tag %q: Pick allocates %v times, want 0", name, tag, n)
			}
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 100} {
		for _, hash := range []string{"fnv1a_64", "md5", "murmur"} {
			b.Run(fmt.Sprintf("servers=%d/hash=%s", n, hash), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1
				}
				r := mustNew(b, servers(weights...), hash, Options{})
				rng := rand.New(rand.NewPCG(10, 11))
				keys := make([][]byte, 1024)
				for i := range keys {
					keys[i] = randomKey(rng, 30)
				}
				b.ReportAllocs()
				b.SetBytes(30)
				b.ResetTimer()
				i := 0
				for b.Loop() {
					r.Pick(keys[i&1023])
					i++
				}
			})
		}
	}
}
