package profile

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var updateFuzzSeeds = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// fuzzSeedProfiles returns small valid profiles in both codecs and precisions.
func fuzzSeedProfiles(t testing.TB) [][]byte {
	evs := randomEvents(40, 11)
	var out [][]byte
	for _, c := range []Compression{CompressionZstd, CompressionNone} {
		out = append(out, writeStream(t, evs, exactHeader, WriterOptions{Compression: c, BlockEvents: 8}))
		out = append(out, writeStream(t, genWorkload(300, 1000, 2), Header{}, WriterOptions{Compression: c, BlockEvents: 100}))
	}
	out = append(out, writeStream(t, nil, Header{}, WriterOptions{}))
	return out
}

// TestFuzzCorpus refreshes testdata/fuzz with -update; without it, it checks the corpus is there.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if *updateFuzzSeeds {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range fuzzSeedProfiles(t) {
			for _, salvage := range []bool{false, true} {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", p, salvage)
				name := filepath.Join(dir, fmt.Sprintf("seed-%d-%v", i, salvage))
				if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "seed-*")); len(m) == 0 {
		t.Fatalf("no seeds in %s; run go test ./profile -run TestFuzzCorpus -update", dir)
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it must never panic, and it must end. Run it with a short
// -fuzzminimizetime (go test -run=^$ -fuzz=FuzzReader -fuzzminimizetime=2s ./profile/): minimizing each new
// multi-kilobyte input for the default 60s otherwise takes most of the fuzzing time.
func FuzzReader(f *testing.F) {
	for _, p := range fuzzSeedProfiles(f) {
		f.Add(p, false)
		f.Add(p, true)
		// Corrupt and truncated variants, so the fuzzer starts near the interesting paths.
		c := bytes.Clone(p)
		c[len(c)/2] ^= 0x55
		f.Add(c, true)
		f.Add(p[:len(p)*2/3], false)
	}
	f.Fuzz(func(t *testing.T, data []byte, salvage bool) {
		r, err := NewReader(bytes.NewReader(data), "fuzz", ReaderOptions{Salvage: salvage})
		if err != nil {
			return
		}
		defer r.Close()
		var ev Event
		n := 0
		for r.Next(&ev) {
			n++
		}
		if r.Err() == nil && r.Offset() != int64(len(data)) {
			t.Fatalf("clean end at offset %d of %d", r.Offset(), len(data))
		}
		if salvage && r.Err() != nil {
			t.Fatalf("salvage mode failed: %v", r.Err())
		}
	})
}

// FuzzDecodeBlock feeds arbitrary payloads straight to the column decoder, past the checksums that keep
// FuzzReader's mutations out of it.
func FuzzDecodeBlock(f *testing.F) {
	evs := randomEvents(30, 12)
	zenc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	for _, z := range []*zstd.Encoder{nil, zenc} {
		e := newBlockEncoder(1, ExactLatency)
		for i := range evs {
			e.add(&evs[i])
		}
		var scratch []byte
		p, raw := e.finish(nil, z, &scratch)
		codec := byte(diskCompNone)
		if z != nil {
			codec = diskCompZstd
		}
		f.Add(p, uint32(raw), uint16(len(evs)), codec)
	}
	zd, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRawPayload),
		zstd.WithDecodeAllCapLimit(true))
	getZ := func() (*zstd.Decoder, error) { return zd, nil }
	f.Fuzz(func(t *testing.T, payload []byte, rawLen uint32, events uint16, codec byte) {
		if rawLen > 1<<20 {
			return
		}
		var raw []byte
		cols, err := splitPayload(payload, codec%2, int(rawLen), getZ, &raw)
		if err != nil {
			return
		}
		var d blockDecoder
		d.setPrecision(1+int64(codec>>1)%1000, minLatencyBits+(codec>>1)%63)
		d.reset(&cols, int(events))
		var ev Event
		for {
			ok, err := d.next(&ev)
			if !ok || err != nil {
				break
			}
		}
	})
}
