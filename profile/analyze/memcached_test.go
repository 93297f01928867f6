package analyze

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// TestMemcachedModel_SlabClasses: the chunk sizes are memcached's own, as `memcached -vv` (1.6.18) prints them.
func TestMemcachedModel_SlabClasses(t *testing.T) {
	f := func(o MemcachedOptions, want []uint64, perslab map[int]uint64) {
		t.Helper()
		m := newMCModel(o, 1024)
		if got := m.chunk[1:]; !slices.Equal(got, want) {
			t.Fatalf("%+v: chunk sizes\n%v\nwant\n%v", o, got, want)
		}
		for c, n := range perslab {
			if m.perslab[c] != n {
				t.Fatalf("%+v: class %d has %d chunks per page, want %d", o, c, m.perslab[c], n)
			}
		}
	}
	f(MemcachedOptions{}, []uint64{96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480, 1856, 2320, 2904,
		3632, 4544, 5680, 7104, 8880, 11104, 13880, 17352, 21696, 27120, 33904, 42384, 52984, 66232, 82792, 103496,
		129376, 161720, 202152, 252696, 315872, 394840, 524288}, map[int]uint64{1: 10922, 12: 885, 38: 2, 39: 2})
	// memcached -n 100 -f 2
	f(MemcachedOptions{ChunkSize: 100, Factor: 2}, []uint64{152, 304, 608, 1216, 2432, 4864, 9728, 19456, 38912,
		77824, 155648, 524288}, map[int]uint64{1: 6898, 11: 6})
}

// TestMemcachedModel_ItemSizes: an item takes ITEM_ntotal bytes (48 + key + 1 + flags 4 if set + value + 2 +
// CAS 8) in the smallest class that holds it.
func TestMemcachedModel_ItemSizes(t *testing.T) {
	m := newMCModel(MemcachedOptions{}, 1024)
	f := func(nkey uint16, flags bool, value uint64, wantTotal uint64, wantClass int) {
		t.Helper()
		n := ntotal(nkey, flags, value+2)
		if n != wantTotal || m.clsid(n) != wantClass {
			t.Fatalf("key %d, flags %v, value %d: ntotal %d in class %d, want %d in %d", nkey, flags, value, n,
				m.clsid(n), wantTotal, wantClass)
		}
	}
	f(10, false, 10, 79, 1)
	f(10, false, 27, 96, 1) // exactly one 96-byte chunk
	f(10, false, 28, 97, 2)
	f(10, true, 23, 96, 1)
	f(16, false, 69616, 69691, 31)
	f(10, false, 1<<20-70, 1<<20-1, 39) // chunked, still under -I
	f(10, false, 1<<20, 1<<20+69, 0)    // over -I: refused
}

// mcScript builds events for the model tests: one connection, text protocol, times in seconds from t0.
type mcScript struct{ evs []profile.Event }

func (s *mcScript) ev(sec float64, cmd mcproto.Command, st mcproto.Status, key int, value uint32, ttl int64) {
	s.evs = append(s.evs, profile.Event{Time: t0 + int64(sec*1e9), Conn: 1, Proto: mcproto.ProtoText, Cmd: cmd,
		Status: st, KeyHash: keyHash(key), KeySize: 10, ValueSize: value, TTL: ttl, Upstream: -1})
}
func (s *mcScript) set(sec float64, key int, value uint32) {
	s.ev(sec, mcproto.CmdSet, mcproto.StatusStored, key, value, 0)
}
func (s *mcScript) get(sec float64, key int) {
	s.ev(sec, mcproto.CmdGet, mcproto.StatusMiss, key, 0, 0)
}

// run simulates the script at one size and returns the point, and the hit of each get in order.
func (s *mcScript) run(t *testing.T, o MemcachedOptions) MemcachedPoint {
	t.Helper()
	a := New(Options{MRCModel: ModelRecorded, Memcached: o})
	for i := range s.evs {
		a.Add(&s.evs[i])
	}
	return a.Summary().Memcached.Points[0]
}

// TestMemcachedModel_ClassesKeepTheirPages: pages go to the classes that ask first and stay there; a class with
// no page gets one past -m, and evicts only its own items. An LRU of the same size would evict the oldest items
// of any size.
func TestMemcachedModel_ClassesKeepTheirPages(t *testing.T) {
	var s mcScript
	const small = 2 * 10922 // two pages of class 1 (10-byte keys, 10-byte values: 79 bytes)
	for k := range small {
		s.set(0, k, 10)
	}
	for k := range 1000 { // class 12 (900-byte values: 969 bytes, 885 per page): its first page, past -m
		s.set(1, small+k, 900)
	}
	for k := range small {
		s.get(2, k)
	}
	p := s.run(t, MemcachedOptions{Sizes: []uint64{2 << 20}})
	if p.Pages != 3 || p.Evictions != 1000-885 || p.Hits != small || p.Misses != 0 {
		t.Fatalf("got %+v, want 3 pages, %d evictions, %d hits", p, 1000-885, small)
	}
}

// TestMemcachedModel_Eviction: which of two items, one read once and one never, survives a full class: in the
// segmented LRU an item needs two reads to leave COLD; in the flat LRU a read moves an item only 60 s after its
// last move, so a replay compressed in time evicts in FIFO order.
func TestMemcachedModel_Eviction(t *testing.T) {
	const full = 2 * 885 // class 12 in 2 MiB: two pages
	f := func(flat bool, reads int, gap float64, wantHit bool) {
		t.Helper()
		var s mcScript
		for k := range full {
			s.set(0, k, 900)
		}
		for range reads {
			s.get(gap, 0)
		}
		s.set(gap, full, 900) // evicts the tail
		s.get(gap, 0)
		p := s.run(t, MemcachedOptions{Sizes: []uint64{2 << 20}, Flat: flat})
		if p.Evictions != 1 || (p.Hits == uint64(reads)+1) != wantHit {
			t.Fatalf("flat %v, %d reads %gs later: %+v; want the last read to hit: %v", flat, reads, gap, p, wantHit)
		}
	}
	f(false, 1, 0, false)   // FETCHED only: still COLD's tail
	f(false, 2, 0, true)    // ACTIVE: moved to WARM
	f(false, 2, 120, true)  // the same later
	f(true, 1, 0, false)    // flat: no move within 60 s of the set
	f(true, 1, 61, true)    // flat: moved to the head
	f(true, 3, 30, false)   // flat: 30 s is not enough
	f(false, 0, 0, false)   // never read: evicted
	f(true, 0, 1000, false) // never read: evicted
}

// TestMemcachedModel_StoresAndExpiry: chunked items, items over -I, failed sets dropping the old value, adds
// that evict although the key exists, expiry on access and at the tail.
func TestMemcachedModel_StoresAndExpiry(t *testing.T) {
	var s mcScript
	s.set(0, 1, 600<<10) // chunked: header in class 2, one 512 KiB chunk, the rest in class 32
	s.get(0, 1)
	s.set(0, 2, 10)
	s.set(0, 2, 2<<20) // over -I: SERVER_ERROR, and the old value is gone
	s.get(0, 2)
	p := s.run(t, MemcachedOptions{Sizes: []uint64{4 << 20}})
	if p.Pages != 4 || p.Hits != 1 || p.Misses != 1 || p.TooLarge != 1 {
		t.Fatalf("chunked and too large: %+v, want 4 pages (classes 2, 39, 32, 1), 1 hit, 1 miss, 1 too large", p)
	}

	s = mcScript{}
	const full = 2 * 885
	for k := range full {
		s.set(0, k, 900)
	}
	s.ev(0, mcproto.CmdAdd, mcproto.StatusNotStored, 5, 900, 0) // allocates first: evicts key 0
	s.get(0, 5)
	s.get(0, 0)
	p = s.run(t, MemcachedOptions{Sizes: []uint64{2 << 20}})
	if p.Evictions != 1 || p.Hits != 1 || p.Misses != 1 {
		t.Fatalf("add of an existing key: %+v, want 1 eviction, key 5 kept, key 0 gone", p)
	}

	s = mcScript{}
	s.ev(0, mcproto.CmdSet, mcproto.StatusStored, 1, 900, 10)
	s.get(5, 1)
	s.get(11, 1)
	for k := range full {
		s.ev(11, mcproto.CmdSet, mcproto.StatusStored, 100+k, 900, 1)
	}
	s.set(20, 5000, 900) // the tail expired: reclaimed, not evicted
	p = s.run(t, MemcachedOptions{Sizes: []uint64{2 << 20}})
	if p.Hits != 1 || p.Misses != 1 || p.Evictions != 0 || p.Reclaimed == 0 {
		t.Fatalf("expiry: %+v, want a hit at 5 s, a miss at 11 s, reclaims and no eviction", p)
	}
}

// TestMemcachedModel_RecordedFill: under the recorded model a read that hit when recorded but misses in the
// model is filled (its client did not set it again); one that missed when recorded is not (its client's set is
// in the profile).
func TestMemcachedModel_RecordedFill(t *testing.T) {
	var s mcScript
	s.ev(0, mcproto.CmdGet, mcproto.StatusHit, 1, 100, 0)
	s.ev(1, mcproto.CmdGet, mcproto.StatusHit, 1, 100, 0)
	s.get(2, 2)
	s.get(3, 2)
	p := s.run(t, MemcachedOptions{Sizes: []uint64{64 << 20}})
	if p.Hits != 1 || p.Misses != 3 {
		t.Fatalf("got %+v, want 1 hit (the filled key) and 3 misses", p)
	}
}

// TestMemcachedModel_Sampled: past MaxKeys keys the model samples keys by hash; its hit ratio stays close to the
// exact one.
func TestMemcachedModel_Sampled(t *testing.T) {
	n := 400_000
	if !fullScale() {
		n = 100_000
	}
	evs := lookasideTrace(n, 7)
	sizes := []uint64{16 << 20, 64 << 20}
	exact := analyze(evs, Options{Memcached: MemcachedOptions{Sizes: sizes}}).Memcached
	sampled := analyze(evs, Options{MaxKeys: 8192, Memcached: MemcachedOptions{Sizes: sizes}}).Memcached
	if exact.Method != "exact" || !strings.HasPrefix(sampled.Method, "shards") {
		t.Fatalf("methods %q and %q", exact.Method, sampled.Method)
	}
	for i, p := range exact.Points {
		q := sampled.Points[i]
		t.Logf("%s: exact %.4f, %s %.4f", humanBytes(p.MemoryBytes), p.HitRatio, sampled.Method, q.HitRatio)
		if math.Abs(p.HitRatio-q.HitRatio) > 0.015 {
			t.Errorf("%s: sampled hit ratio %.4f, exact %.4f", humanBytes(p.MemoryBytes), q.HitRatio, p.HitRatio)
		}
	}
}

// lookasideTrace is n reads (no recorded outcome, as in an imported trace) of Zipf(0.9) keys over n/4 keys, each
// key with its own key size (16 to 63 bytes) and value size: log-uniform from 10 B to 40 KB, so spanning the slab
// classes up to 64 KB, and one key in 500 with a value of 520 KB to 900 KB (chunked items).
func lookasideTrace(n int, seed uint64) []profile.Event {
	keys := max(n/4, 10)
	z := newZipfGen(keys, 0.9, seed)
	evs := make([]profile.Event, n)
	for i := range evs {
		k := z.next()
		h := mix64(uint64(k) ^ seed<<32)
		vs := uint32(10 * math.Pow(4000, float64(h%10007)/10007))
		if h%500 == 0 {
			vs = 520<<10 + uint32(h>>20)%(380<<10)
		}
		evs[i] = profile.Event{Time: t0 + int64(i)*10_000, Conn: 1, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet,
			KeyHash: keyHash(k), KeySize: uint16(16 + (h>>40)%48), ValueSize: vs, Upstream: -1}
	}
	return evs
}

// lookaside plays evs against the memcached at addr as a look-aside client: each read is a get, and a miss is
// followed by a set of the read's value size (sent with the next get). It returns the reads stamped with the
// time each was sent, which is the clock the server saw, and the server's get_hits and get_misses.
func lookaside(t *testing.T, addr string, evs []profile.Event) (sent []profile.Event, hits, misses uint64) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("cannot connect to memcached: %v", err)
	}
	defer c.Close()
	r, w := bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 64<<10)
	value := []byte(strings.Repeat("v", 1<<20))
	expect := func(want string) {
		t.Helper()
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("memcached answered %q (%v), want %q", line, err, want)
		}
	}
	var key []byte
	setPending := false
	for _, ev := range evs {
		key = append(strconv.AppendUint(key[:0], ev.KeyHash|1<<63, 16), strings.Repeat("k", 64)...)[:ev.KeySize]
		ev.Time = time.Now().UnixNano()
		sent = append(sent, ev)
		fmt.Fprintf(w, "get %s\r\n", key)
		if err := w.Flush(); err != nil {
			t.Fatalf("cannot write to memcached: %v", err)
		}
		if setPending {
			expect("STORED\r\n")
			setPending = false
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("cannot read from memcached: %v", err)
		}
		if f := strings.Fields(line); len(f) == 4 && f[0] == "VALUE" {
			n, _ := strconv.Atoi(f[3])
			if _, err := r.Discard(n + 2); err != nil {
				t.Fatalf("cannot read from memcached: %v", err)
			}
			expect("END\r\n")
			continue
		} else if line != "END\r\n" {
			t.Fatalf("memcached answered %q to a get", line)
		}
		fmt.Fprintf(w, "set %s 0 0 %d\r\n%s\r\n", key, ev.ValueSize, value[:ev.ValueSize])
		setPending = true
	}
	w.WriteString("stats\r\n")
	if err := w.Flush(); err != nil {
		t.Fatalf("cannot write to memcached: %v", err)
	}
	if setPending {
		expect("STORED\r\n")
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "END\r\n" {
			break
		}
		if f := strings.Fields(line); len(f) == 3 && f[1] == "get_hits" {
			hits, _ = strconv.ParseUint(f[2], 10, 64)
		} else if len(f) == 3 && f[1] == "get_misses" {
			misses, _ = strconv.ParseUint(f[2], 10, 64)
		}
	}
	return sent, hits, misses
}

// TestMemcachedModel_AgainstMemcached replays a look-aside trace (Zipf keys, values over most slab classes and
// some chunked) against real memcached servers and checks that the model predicts their hit ratio within one
// point: at two sizes with memcached's defaults (segmented LRU), and at one with -o no_lru_maintainer (flat). The
// model is fed the reads with the times they were sent. Plain LRU at the same size is logged for comparison.
func TestMemcachedModel_AgainstMemcached(t *testing.T) {
	mctest.Require(t, "memcached")
	evs := lookasideTrace(100_000, 1)
	var mu sync.Mutex
	var lines []string
	for _, tc := range []struct {
		mb   uint64
		flat bool
	}{{16, false}, {48, false}, {16, true}} {
		name := fmt.Sprintf("m=%d/segmented=%v", tc.mb, !tc.flat)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-m", strconv.FormatUint(tc.mb, 10)}
			if tc.flat {
				args = append(args, "-o", "no_lru_maintainer")
			}
			srv := mctest.StartMemcached(t, args...)
			sent, hits, misses := lookaside(t, srv.Addr, evs)
			srv.Stop()
			server := float64(hits) / float64(hits+misses)
			size := tc.mb << 20
			s := analyze(sent, Options{MRCSizes: []uint64{size},
				Memcached: MemcachedOptions{Sizes: []uint64{size}, Flat: tc.flat}})
			p := s.Memcached.Points[0]
			lru := 1 - s.MRC[0].MissRatio
			mu.Lock()
			lines = append(lines, fmt.Sprintf("%s: memcached %.4f (%d gets), model %.4f (%+.2f pp), LRU %.4f (%+.2f pp)",
				name, server, hits+misses, p.HitRatio, 100*(p.HitRatio-server), lru, 100*(lru-server)))
			mu.Unlock()
			if hits+misses != uint64(len(evs)) {
				t.Fatalf("memcached counted %d gets, %d were sent", hits+misses, len(evs))
			}
			if math.Abs(p.HitRatio-server) > 0.01 {
				t.Errorf("model hit ratio %.4f, memcached's %.4f: more than 1 point apart", p.HitRatio, server)
			}
		})
	}
	t.Cleanup(func() {
		slices.Sort(lines)
		for _, l := range lines {
			t.Log(l)
		}
	})
}

// BenchmarkMemcachedModel measures Add with the memcached model at 1 and 4 sizes (compare
// BenchmarkAnalyzerAdd/exact/keys=100k without it).
func BenchmarkMemcachedModel(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("sizes=%d", n), func(b *testing.B) {
			evs := benchEvents(100_000)
			var sizes []uint64
			for i := range n {
				sizes = append(sizes, 16<<20<<(2*i)) // 16 MiB to 1 GiB
			}
			a := New(Options{Memcached: MemcachedOptions{Sizes: sizes}})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a.Add(&evs[i&(len(evs)-1)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
