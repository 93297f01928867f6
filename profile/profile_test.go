package profile

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/mcproto"
)

// randomEvents returns n events that exercise every field: extreme values, repeated keys, the same hash with
// other sizes or namespaces, keyless events, all enums.
func randomEvents(n int, seed uint64) []Event {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	keys := make([]uint64, 50)
	for i := range keys {
		keys[i] = r.Uint64()
	}
	extremes := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40, -(1 << 40)}
	pick64 := func() int64 {
		if r.IntN(8) == 0 {
			return extremes[r.IntN(len(extremes))]
		}
		return r.Int64N(1<<50) - 1<<49
	}
	evs := make([]Event, n)
	t := int64(1_700_000_000_000_000_000)
	for i := range evs {
		t += r.Int64N(100_000) - 20_000
		ev := Event{
			Time:      t,
			Conn:      uint64(r.IntN(40)),
			Proto:     mcproto.Protocol(r.IntN(4)),
			Cmd:       mcproto.Command(r.IntN(mcproto.NumCommands)),
			Status:    mcproto.Status(r.IntN(mcproto.NumStatuses)),
			Noreply:   r.IntN(5) == 0,
			Quiet:     r.IntN(7) == 0,
			KeyHash:   keys[r.IntN(len(keys))],
			KeySize:   uint16(10 + r.IntN(3)),
			NSHash:    uint64(r.IntN(3)) * 0x1234567890abcdef,
			ValueSize: uint32(r.IntN(3) * 1000),
			Flags:     uint32(r.IntN(2)),
			TTL:       int64(r.IntN(3)) * 300,
			Latency:   r.Int64N(2_000_000),
			Upstream:  int16(r.IntN(4) - 1),
		}
		switch r.IntN(20) {
		case 0:
			ev.Time = pick64()
		case 1:
			ev.Latency = pick64()
		case 2:
			ev.Conn = r.Uint64()
		case 3:
			ev.KeyHash, ev.KeySize, ev.NSHash = 0, 0, 0
		case 4:
			ev.KeySize = math.MaxUint16
			ev.ValueSize = math.MaxUint32
			ev.Flags = math.MaxUint32
		case 5:
			ev.TTL = pick64()
		case 6:
			ev.Upstream = int16(r.IntN(1 << 16))
		case 7:
			ev.Proto, ev.Cmd, ev.Status = 255, 255, 255
		case 8:
			ev.KeyHash = r.Uint64()
			ev.NSHash = r.Uint64()
		case 9:
			ev.KeyCount = uint16(2 + r.IntN(20))
			ev.KeyIndex = uint16(r.IntN(int(ev.KeyCount)))
		case 10:
			ev.KeyCount, ev.KeyIndex = math.MaxUint16, uint16(r.IntN(2))*(math.MaxUint16-1)
		}
		evs[i] = ev
	}
	return evs
}

var exactHeader = Header{Mode: "test", Host: "h1", TimeUnit: 1, LatencyBits: ExactLatency,
	Settings: map[string]string{"sample_rate": "1", "namespace_delimiter": ":"}}

func writeStream(t testing.TB, evs []Event, h Header, opts WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if opts.FlushInterval == 0 {
		opts.FlushInterval = -1
	}
	w, err := NewStreamWriter(&buf, "test", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.BytesWritten() != int64(buf.Len()) {
		t.Fatalf("BytesWritten %d, buffer holds %d", w.BytesWritten(), buf.Len())
	}
	return buf.Bytes()
}

func readAll(t testing.TB, data []byte, opts ReaderOptions) ([]Event, *Reader, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), "test.prof", opts)
	if err != nil {
		return nil, nil, err
	}
	var evs []Event
	var ev Event
	for r.Next(&ev) {
		evs = append(evs, ev)
	}
	return evs, r, r.Err()
}

func equalEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestRoundTrip_Exact(t *testing.T) {
	evs := randomEvents(20000, 1)
	for _, c := range []Compression{CompressionZstd, CompressionNone} {
		for _, be := range []int{1, 7, 1000, 0} {
			data := writeStream(t, evs, exactHeader, WriterOptions{Compression: c, BlockEvents: be})
			got, r, err := readAll(t, data, ReaderOptions{})
			if err != nil {
				t.Fatalf("%v/%d: %v", c, be, err)
			}
			equalEvents(t, got, evs)
			if r.TruncatedBlocks() != 0 || r.CorruptBlocks() != 0 {
				t.Fatalf("truncated %d corrupt %d", r.TruncatedBlocks(), r.CorruptBlocks())
			}
			h := r.Header()
			if h.Mode != "test" || h.Host != "h1" || h.TimeUnit != 1 || h.LatencyBits != ExactLatency ||
				h.Settings["namespace_delimiter"] != ":" || len(h.Settings) != 2 || h.Created.IsZero() {
				t.Fatalf("header %+v", h)
			}
		}
	}
}

func TestRoundTrip_Quantized(t *testing.T) {
	evs := append(randomEvents(20000, 2), benchWorkload()[:50000]...)
	for i := 0; i < len(evs); i += 97 { // not keys of a multi-key get: stored as none
		evs[i].KeyIndex, evs[i].KeyCount = uint16(i%3+2), uint16(i%3)
	}
	for _, h := range []Header{{}, {TimeUnit: 1000, LatencyBits: 4}, {TimeUnit: 7, LatencyBits: 20},
		{TimeUnit: int64(time.Second), LatencyBits: 63}} {
		for _, c := range []Compression{CompressionZstd, CompressionNone} {
			data := writeStream(t, evs, h, WriterOptions{Compression: c, BlockEvents: 5000})
			got, r, err := readAll(t, data, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]Event, len(evs))
			copy(want, evs)
			rh := r.Header()
			for i := range want {
				rh.Quantize(&want[i])
			}
			equalEvents(t, got, want)
			// Quantizing is idempotent: re-encoding what was read changes nothing.
			data2 := writeStream(t, got, rh, WriterOptions{Compression: c, BlockEvents: 5000})
			got2, _, err := readAll(t, data2, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			equalEvents(t, got2, want)
		}
	}
}

// TestDecode_TwentyColumns reads a block laid out as the first version 1 files were, without the multi-key
// columns: its events come back with KeyIndex and KeyCount 0 and everything else as written.
func TestDecode_TwentyColumns(t *testing.T) {
	evs := randomEvents(3000, 9)
	e := newBlockEncoder(1, ExactLatency)
	for i := range evs {
		e.add(&evs[i])
	}
	payload := appendUvarint(nil, minColumns)
	raw := 0
	for _, c := range e.cols[:minColumns] {
		payload = appendUvarint(payload, uint64(len(c)))
		raw += len(c)
	}
	for _, c := range e.cols[:minColumns] {
		payload = append(payload, c...)
	}
	var buf []byte
	cols, err := splitPayload(payload, diskCompNone, raw, nil, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var d blockDecoder
	d.setPrecision(1, ExactLatency)
	d.reset(&cols, len(evs))
	want := make([]Event, len(evs))
	copy(want, evs)
	grouped := 0
	for i := range want {
		if want[i].KeyCount != 0 {
			grouped++
		}
		want[i].KeyIndex, want[i].KeyCount = 0, 0
	}
	if grouped == 0 {
		t.Fatal("no multi-key events to drop")
	}
	got := make([]Event, 0, len(evs))
	var ev Event
	for {
		ok, err := d.next(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, ev)
	}
	equalEvents(t, got, want)
	if _, err := splitPayload(appendUvarint(nil, minColumns-1), diskCompNone, 0, nil, &buf); err == nil {
		t.Fatal("a block of 19 columns was accepted")
	}
}

// TestRoundTrip_KeyDictionary takes the decoder's key dictionary past the paths the workload takes: references
// with two high bytes (over 2^14 entries), key sizes and namespace references of several bytes, new namespaces
// in the middle of a batch, and one hash seen with several sizes.
func TestRoundTrip_KeyDictionary(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	keys := make([]uint64, 40000)
	for i := range keys {
		keys[i] = r.Uint64()
	}
	nss := make([]uint64, 300)
	for i := range nss {
		nss[i] = r.Uint64() | 1
	}
	sizes := []uint16{30, 30, 30, 127, 128, 250, math.MaxUint16}
	evs := make([]Event, 120000)
	for i := range evs {
		k := r.IntN(len(keys))
		if r.IntN(2) == 0 {
			k = r.IntN(100) // some hot keys, referenced with one-byte references
		}
		ev := &evs[i]
		ev.Time = int64(i) * 1000
		ev.KeyHash, ev.KeySize = keys[k], sizes[k%len(sizes)]
		if k%5 != 0 {
			ev.NSHash = nss[k%len(nss)]
		}
		switch r.IntN(50) {
		case 0:
			ev.KeySize++ // the same hash with another size: a new entry
		case 1:
			ev.KeyHash, ev.KeySize, ev.NSHash = 0, 0, 0
		case 2:
			ev.NSHash = nss[r.IntN(len(nss))]
		}
		ev.ValueSize = uint32(k % 3 * 100)
		ev.Upstream = -1
	}
	for _, c := range []Compression{CompressionZstd, CompressionNone} {
		for _, be := range []int{3, 1000, 0} {
			data := writeStream(t, evs, exactHeader, WriterOptions{Compression: c, BlockEvents: be})
			got, _, err := readAll(t, data, ReaderOptions{})
			if err != nil {
				t.Fatalf("%v/%d: %v", c, be, err)
			}
			equalEvents(t, got, evs)
		}
	}
}

func TestLatencyPrecision(t *testing.T) {
	for _, m := range []uint8{2, 4, 8, 12, 30} {
		for l := int64(1); l > 0 && l < math.MaxInt64/3; l = l*3 + 1 {
			q := latencyDecode(latencyEncode(l, m), m)
			if err := math.Abs(float64(q-l)) / float64(l); err > math.Ldexp(1, -int(m)) {
				t.Fatalf("m=%d: %d → %d, relative error %g", m, l, q, err)
			}
			if l < 1<<m && q != l {
				t.Fatalf("m=%d: %d below 2^m → %d", m, l, q)
			}
			if c := latencyEncode(q, m); c != latencyEncode(l, m) {
				t.Fatalf("m=%d: re-encoding %d changed the code", m, q)
			}
		}
		if c := latencyEncode(math.MaxInt64, m); latencyDecode(c, m) <= 0 {
			t.Fatalf("m=%d: MaxInt64 overflowed", m)
		}
	}
}

func TestWriter_FileModeAndExcl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.prof")
	w, err := NewWriter(path, Header{}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Time: 1, KeyHash: 2, Upstream: -1}
	if err := w.Write(&ev); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Write(&ev); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", st.Mode().Perm())
	}
	if _, err := NewWriter(path, Header{}, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second NewWriter: %v", err)
	}
	w, err = NewWriter(path, Header{}, WriterOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Next(&ev) || r.Err() != nil {
		t.Fatalf("overwritten profile has events or error %v", r.Err())
	}
}

// blockOffsets returns the offsets where each block of data starts, and the end.
func blockOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for i := 0; i+len(blockSync) <= len(data); i++ {
		if bytes.Equal(data[i:i+len(blockSync)], blockSync[:]) {
			offs = append(offs, i)
		}
	}
	return append(offs, len(data))
}

func TestReader_TruncatedAtEveryOffset(t *testing.T) {
	evs := randomEvents(60, 3)
	for _, c := range []Compression{CompressionZstd, CompressionNone} {
		data := writeStream(t, evs, exactHeader, WriterOptions{Compression: c, BlockEvents: 10})
		offs := blockOffsets(t, data)
		if len(offs) != 8 { // 6 event blocks, the trailer, the end
			t.Fatalf("found %d block starts", len(offs)-1)
		}
		for cut := 0; cut <= len(data); cut++ {
			got, r, err := readAll(t, data[:cut], ReaderOptions{})
			if cut < offs[0] {
				if err == nil {
					t.Fatalf("cut %d inside the file header: no error", cut)
				}
				continue
			}
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			complete, truncated := 0, 0
			for i := 0; i+1 < len(offs); i++ {
				if offs[i+1] <= cut {
					complete = min(10*(i+1), len(evs))
				} else if offs[i] < cut {
					truncated = 1
				}
			}
			equalEvents(t, got, evs[:complete])
			if r.TruncatedBlocks() != truncated {
				t.Fatalf("cut %d: truncated %d, want %d", cut, r.TruncatedBlocks(), truncated)
			}
		}
	}
}

func TestReader_CorruptBlock(t *testing.T) {
	evs := randomEvents(50, 4)
	data := writeStream(t, evs, exactHeader, WriterOptions{BlockEvents: 10})
	offs := blockOffsets(t, data)
	f := func(name string, corrupt func(b []byte), wantEvents []Event, wantOffset int) {
		t.Helper()
		b := bytes.Clone(data)
		corrupt(b)
		_, _, err := readAll(t, b, ReaderOptions{})
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for _, s := range []string{"test.prof", "offset " + strconv.Itoa(wantOffset), "--salvage"} {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("%s: error %q does not mention %q", name, err, s)
			}
		}
		got, r, err := readAll(t, b, ReaderOptions{Salvage: true})
		if err != nil {
			t.Fatalf("%s: salvage: %v", name, err)
		}
		equalEvents(t, got, wantEvents)
		if r.CorruptBlocks() != 1 {
			t.Fatalf("%s: corrupt blocks %d, want 1", name, r.CorruptBlocks())
		}
	}
	without := func(i int) []Event { return append(append([]Event{}, evs[:10*i]...), evs[10*i+10:]...) }
	f("payload byte", func(b []byte) { b[offs[1]+blockHeaderLen+3] ^= 0x40 }, without(1), offs[1])
	f("header count", func(b []byte) { b[offs[2]+12] ^= 1 }, without(2), offs[2])
	f("sync marker", func(b []byte) { b[offs[3]] = 0 }, without(3), offs[3])
	f("last payload byte", func(b []byte) { b[offs[5]-1] ^= 0xff }, without(4), offs[4])
	f("garbage between blocks", func(b []byte) {
		copy(b[offs[1]:], []byte("garbage!"))
	}, without(1), offs[1])
}

func TestReader_BadHeaders(t *testing.T) {
	good := writeStream(t, randomEvents(5, 5), exactHeader, WriterOptions{})
	f := func(name string, data []byte, want string) {
		t.Helper()
		_, err := NewReader(bytes.NewReader(data), "x.prof", ReaderOptions{Salvage: true})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.prof") {
			t.Fatalf("%s: error %v, want one mentioning %q and the file", name, err, want)
		}
	}
	f("empty", nil, "cut short")
	f("text", []byte("hello world, not a profile"), "wrong magic")
	v2 := bytes.Clone(good)
	v2[7] = 2
	f("version", v2, "version 2")
	crc := bytes.Clone(good)
	crc[14] ^= 1
	f("header crc", crc, "offset 12")
	f("cut header", good[:15], "cut short")
}

func TestWriter_FlushInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.prof")
	w, err := NewWriter(path, Header{}, WriterOptions{FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs := randomEvents(100, 6)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Without Flush or Close, the events must reach the file within the interval. Poll rather than assume a
	// schedule; the test only fails if they never arrive.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := Open(path, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var ev Event
		for r.Next(&ev) {
			n++
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		r.Close()
		if n == len(evs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s only %d of %d events reached the file", n, len(evs))
		}
		time.Sleep(60 * time.Millisecond)
	}
}

func TestWriter_ConcurrentFlushRace(t *testing.T) {
	var buf lockedBuffer
	w, err := NewStreamWriter(&buf, "race", Header{}, WriterOptions{FlushInterval: time.Millisecond, BlockEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	evs := randomEvents(3000, 7)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
		if i%300 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(t, buf.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Event, len(evs))
	copy(want, evs)
	h := w.Header()
	for i := range want {
		h.Quantize(&want[i])
	}
	equalEvents(t, got, want)
}

func TestWriter_StickyError(t *testing.T) {
	w, err := NewStreamWriter(&failWriter{after: 100}, "fail", Header{}, WriterOptions{BlockEvents: 2, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	evs := randomEvents(100, 8)
	var werr error
	for i := range evs {
		if werr = w.Write(&evs[i]); werr != nil {
			break
		}
	}
	if werr == nil || !strings.Contains(werr.Error(), "fail") {
		t.Fatalf("write error %v", werr)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close: %v", err)
	}
}

var errDiskFull = errors.New("disk full")

type failWriter struct{ after int }

func (f *failWriter) Write(b []byte) (int, error) {
	if len(b) > f.after {
		n := f.after
		f.after = 0
		return n, errDiskFull
	}
	f.after -= len(b)
	return len(b), nil
}

func TestDecodeAllocs(t *testing.T) {
	data := writeStream(t, benchWorkload()[:100000], Header{}, WriterOptions{BlockEvents: 10000})
	r, err := NewReader(bytes.NewReader(data), "x", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	for range 30000 { // grow buffers over a few blocks
		r.Next(&ev)
	}
	allocs := testing.AllocsPerRun(20000, func() {
		if !r.Next(&ev) {
			t.Fatal("ran out of events")
		}
	})
	// Per event: none. A block boundary (every 10000 events) may allocate inside zstd; 20000 runs cross two.
	if allocs > 0.01 {
		t.Fatalf("%.4f allocations per event", allocs)
	}
}

func TestEncodeAllocs(t *testing.T) {
	evs := benchWorkload()
	w, err := NewStreamWriter(discard{}, "x", Header{}, WriterOptions{BlockEvents: 10000, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	i := 0
	write := func() {
		if err := w.Write(&evs[i%len(evs)]); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 300000 {
		write()
	}
	if allocs := testing.AllocsPerRun(50000, write); allocs > 0.01 {
		t.Fatalf("%.4f allocations per event", allocs)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestReader_All(t *testing.T) {
	evs := randomEvents(1000, 9)
	r, err := NewReader(bytes.NewReader(writeStream(t, evs, exactHeader, WriterOptions{BlockEvents: 300})), "x", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	for ev := range r.All() {
		got = append(got, *ev)
		if len(got) == 500 {
			break
		}
	}
	for ev := range r.All() {
		got = append(got, *ev)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	equalEvents(t, got, evs)
}
