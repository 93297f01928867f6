// This file holds the on-disk vocabulary of a profile: magic, version, the file header and its encoding, the
// block header, limits, and the precision rules (Quantize) the writer applies. docs/FORMAT.md is the prose
// description of the same layout; keep the two in step.

package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"sort"
	"time"
)

// Magic starts every profile file; the byte after it is the format version.
const Magic = "MBPROF\x00"

// Version is the format version this package writes and reads.
const Version = 1

// Precision defaults. A profile stores times in ticks of TimeUnit and latencies with LatencyBits significant
// bits; both are recorded in the header, so readers always know what they got.
const (
	DefaultTimeUnit    = 1000 // ns: event times are kept to the microsecond
	DefaultLatencyBits = 8    // relative error ≤ 2^-8 (0.4%), exact below 256 ns
	ExactLatency       = 64   // LatencyBits value that stores latencies exactly
	minLatencyBits     = 2
)

// Limits that keep a reader's memory bounded whatever the input claims.
const (
	MaxBlockEvents   = 1 << 20               // events in one block
	maxRawPayload    = 64 << 20              // uncompressed block payload bytes
	maxStoredPayload = maxRawPayload         // compressed block payload bytes
	maxHeaderLen     = 1 << 20               // file header body bytes
	writerRawLimit   = maxRawPayload - 8<<20 // the writer ends a block before its payload can pass maxRawPayload
)

// Compression is how a block's payload is stored.
type Compression uint8

// Compressions.
const (
	CompressionZstd Compression = iota // the default; stored as 1
	CompressionNone
)

// On-disk codec bytes (block header byte 9).
const (
	diskCompNone = 0 // columns stored raw
	diskCompZstd = 1 // each column is a zstd frame or raw, as its table entry says
)

func (c Compression) String() string {
	switch c {
	case CompressionZstd:
		return "zstd"
	case CompressionNone:
		return "none"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Block kinds.
const (
	blockEvents  = 1
	blockTrailer = 2
)

// blockSync starts every block, so salvage can find block starts after a corrupt region. Its bytes are chosen
// to be unlikely in varint data: a zstd payload would have to reproduce them by chance (2^-64 per position).
var blockSync = [8]byte{0xF7, 'M', 'B', 'b', 'l', 'k', 0x1A, 0x9E}

const blockHeaderLen = 32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a profile's file header: where and how it was recorded.
type Header struct {
	Created time.Time // when recording started
	Mode    string    // recorder: "proxy", "tap", "import", "merge", …
	Host    string    // host label given by the user (never discovered automatically)
	// SaltFingerprint is Anonymizer.Fingerprint of the secret that hashed the keys. Profiles are comparable only
	// when their fingerprints are equal.
	SaltFingerprint uint64
	// TimeUnit is the resolution of Event.Time in ns; times are rounded down to a multiple of it. 0 means
	// DefaultTimeUnit; 1 keeps nanoseconds.
	TimeUnit int64
	// LatencyBits is how many significant bits of Event.Latency are kept (relative error ≤ 2^-LatencyBits).
	// 0 means DefaultLatencyBits; ExactLatency keeps every bit.
	LatencyBits uint8
	// Settings are free-form recorder settings (sample_rate, namespace_delimiter, membench_version, …), stored sorted by key.
	Settings map[string]string
}

// normalize fills defaults and checks ranges.
func (h *Header) normalize() error {
	if h.TimeUnit == 0 {
		h.TimeUnit = DefaultTimeUnit
	}
	if h.LatencyBits == 0 {
		h.LatencyBits = DefaultLatencyBits
	}
	if h.TimeUnit < 0 || h.TimeUnit > int64(time.Hour) {
		return fmt.Errorf("time unit %d ns is out of range [1, 1h]", h.TimeUnit)
	}
	if h.LatencyBits < minLatencyBits || h.LatencyBits > ExactLatency {
		return fmt.Errorf("latency bits %d is out of range [%d, %d]", h.LatencyBits, minLatencyBits, ExactLatency)
	}
	return nil
}

// Quantize rounds ev the way a writer with this header stores it: Time down to a multiple of TimeUnit, Latency
// to LatencyBits significant bits (negative latencies become 0 unless LatencyBits is ExactLatency). Reading a
// profile back returns exactly the quantized events, and quantizing twice changes nothing.
func (h *Header) Quantize(ev *Event) {
	unit, lb := h.TimeUnit, h.LatencyBits
	if unit == 0 {
		unit = DefaultTimeUnit
	}
	if lb == 0 {
		lb = DefaultLatencyBits
	}
	ev.Time = timeTicks(ev.Time, unit) * unit
	ev.Latency = latencyDecode(latencyEncode(ev.Latency, lb), lb)
	if ev.KeyIndex >= ev.KeyCount {
		ev.KeyIndex, ev.KeyCount = 0, 0 // not a key of a multi-key get: stored as none
	}
}

// timeTicks returns t in ticks of unit, rounded down, except that the result times unit never drops below
// MinInt64 (so the time a reader computes never wraps around).
func timeTicks(t, unit int64) int64 {
	return max(floorDiv(t, unit), math.MinInt64/unit)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// latencyEncode maps a latency to its stored code. With m significant bits, values below 2^m are stored as is;
// larger values keep their top m bits: code = e·2^(m-1) + (L >> e) with e = bitlen(L) - m. Codes grow with L,
// so small latencies get short varints.
func latencyEncode(l int64, m uint8) uint64 {
	if m >= ExactLatency {
		return zigzag(l)
	}
	if l <= 0 {
		return 0
	}
	v := uint64(l)
	if v < 1<<m {
		return v
	}
	e := uint64(bits.Len64(v) - int(m))
	return e<<(m-1) + v>>e
}

// latencyDecode inverts latencyEncode, returning the middle of the code's range so that re-encoding the result
// gives the same code.
func latencyDecode(c uint64, m uint8) int64 {
	if m >= ExactLatency {
		return unzigzag(c)
	}
	if c < 1<<m {
		return int64(c)
	}
	e := c>>(m-1) - 1
	if e > 63-uint64(m) {
		return math.MaxInt64 // only from corrupt or hostile input
	}
	mant := c - e<<(m-1)
	return int64(mant<<e | 1<<(e-1))
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendHeader encodes the file header: magic, version, body length, body, CRC32C of the body.
func appendHeader(dst []byte, h *Header) []byte {
	var body []byte
	body = binary.AppendVarint(body, h.Created.UnixNano())
	body = appendString(body, h.Mode)
	body = appendString(body, h.Host)
	body = binary.LittleEndian.AppendUint64(body, h.SaltFingerprint)
	body = binary.AppendUvarint(body, uint64(h.TimeUnit))
	body = append(body, h.LatencyBits)
	keys := make([]string, 0, len(h.Settings))
	for k := range h.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	body = binary.AppendUvarint(body, uint64(len(keys)))
	for _, k := range keys {
		body = appendString(body, k)
		body = appendString(body, h.Settings[k])
	}
	dst = append(dst, Magic...)
	dst = append(dst, Version)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	dst = append(dst, body...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errShortHeader = errors.New("header body ends early")

// parseHeaderBody decodes a header body; bytes after the known fields are ignored (later minor additions).
func parseHeaderBody(b []byte) (Header, error) {
	var h Header
	d := byteDecoder{b: b}
	h.Created = time.Unix(0, d.varint()).UTC()
	h.Mode = d.string()
	h.Host = d.string()
	h.SaltFingerprint = d.uint64le()
	h.TimeUnit = int64(d.uvarint())
	h.LatencyBits = d.byte()
	n := d.uvarint()
	if d.err != nil {
		return h, d.err
	}
	if n > uint64(len(b)) {
		return h, fmt.Errorf("header claims %d settings in %d bytes", n, len(b))
	}
	if n > 0 {
		h.Settings = make(map[string]string, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.string()
		h.Settings[k] = d.string()
	}
	if d.err != nil {
		return h, d.err
	}
	if h.TimeUnit < 1 || h.TimeUnit > int64(time.Hour) {
		return h, fmt.Errorf("time unit %d ns is out of range", h.TimeUnit)
	}
	if h.LatencyBits < minLatencyBits || h.LatencyBits > ExactLatency {
		return h, fmt.Errorf("latency bits %d is out of range", h.LatencyBits)
	}
	return h, nil
}

// byteDecoder reads header fields, remembering the first error.
type byteDecoder struct {
	b   []byte
	err error
}

func (d *byteDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortHeader
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *byteDecoder) varint() int64 { return unzigzag(d.uvarint()) }

func (d *byteDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errShortHeader
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *byteDecoder) uint64le() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errShortHeader
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *byteDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShortHeader
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// blockHeader is the fixed 32-byte header in front of every block:
//
//	0  sync marker (8)   8 kind (1)   9 compression (1)   10 reserved (2)
//	12 event count (4)   16 raw column bytes (4)   20 stored payload length (4)
//	24 CRC32C of the stored payload (4)   28 CRC32C of bytes 8..27 (4)
type blockHeader struct {
	kind       byte
	comp       byte
	events     uint32
	rawLen     uint32
	storedLen  uint32
	payloadCRC uint32
}

func (bh *blockHeader) put(b []byte) {
	_ = b[blockHeaderLen-1]
	copy(b[0:8], blockSync[:])
	b[8], b[9], b[10], b[11] = bh.kind, bh.comp, 0, 0
	binary.LittleEndian.PutUint32(b[12:], bh.events)
	binary.LittleEndian.PutUint32(b[16:], bh.rawLen)
	binary.LittleEndian.PutUint32(b[20:], bh.storedLen)
	binary.LittleEndian.PutUint32(b[24:], bh.payloadCRC)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[8:28], castagnoli))
}

// parseBlockHeader checks the sync marker, the header CRC and the limits. The returned error says what is
// wrong; the caller adds the file and offset.
func parseBlockHeader(b []byte) (blockHeader, error) {
	var bh blockHeader
	if [8]byte(b[0:8]) != blockSync {
		return bh, errors.New("no block sync marker")
	}
	if crc32.Checksum(b[8:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return bh, errors.New("block header checksum mismatch")
	}
	bh.kind, bh.comp = b[8], b[9]
	bh.events = binary.LittleEndian.Uint32(b[12:])
	bh.rawLen = binary.LittleEndian.Uint32(b[16:])
	bh.storedLen = binary.LittleEndian.Uint32(b[20:])
	bh.payloadCRC = binary.LittleEndian.Uint32(b[24:])
	switch {
	case bh.kind != blockEvents && bh.kind != blockTrailer:
		return bh, fmt.Errorf("unknown block kind %d", bh.kind)
	case bh.comp != diskCompNone && bh.comp != diskCompZstd:
		return bh, fmt.Errorf("unknown block compression %d", bh.comp)
	case bh.events > MaxBlockEvents:
		return bh, fmt.Errorf("block claims %d events, more than the limit %d", bh.events, MaxBlockEvents)
	case bh.rawLen > maxRawPayload || bh.storedLen > maxStoredPayload:
		return bh, fmt.Errorf("block claims a payload of %d bytes (%d stored), more than the limit %d",
			bh.rawLen, bh.storedLen, maxRawPayload)
	}
	return bh, nil
}
