// This file holds the columnar block codec: blockEncoder turns events into one block payload, blockDecoder
// turns a payload back into events, a batch at a time. It knows nothing of files or checksums (see writer.go
// and reader.go); docs/FORMAT.md describes the columns.

package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/klauspost/compress/zstd"
	"github.com/membench/membench/mcproto"
)

// Column indexes of a version 1 events block, in payload order. Dictionary references use 0 for "a new entry
// follows" and i+1 for entry i, so the frequent "new" case stays a one-byte symbol. Columns marked (split)
// hold the first byte of each value's uvarint; the rest of that uvarint (value>>7, itself a uvarint) goes to
// the column's Hi companion only when the first byte's top bit is set. Keeping the low bytes apart from the
// high bytes lets the entropy coder give each its own statistics.
const (
	colTime      = iota // (split) zigzag delta of S = ticks(Time) + latencyTicks(stored latency), see add
	colTimeHi           //
	colConnRef          // (split) connection dictionary reference
	colConnRefHi        //
	colConnNew          // uvarint connection id, one per new dictionary entry
	colEnumRef          // uvarint enum dictionary reference
	colEnumNew          // uvarint packed enums (packEnums), one per new dictionary entry
	colKeyRef           // (split) key dictionary reference
	colKeyRefHi         //
	colKeyHash          // 8 bytes little-endian key hash, one per new key entry
	colKeySize          // uvarint key size, one per new key entry
	colNSRef            // uvarint namespace reference, one per new key entry: 0 = none, 1 = new, i+2 = entry i
	colNSHash           // 8 bytes little-endian namespace hash, one per new namespace entry
	colValue            // (split) 0 = same as the key's last non-zero value size in this block, else size+1
	colValueHi          //
	colFlags            // uvarint: 0 = same as the key's last non-zero flags in this block, else flags+1
	colTTL              // zigzag varint TTL
	colLatency          // (split) latency code (latencyEncode)
	colLatencyHi        //
	colUpstream         // uvarint uint16(upstream+1)
	colKeyCount         // uvarint KeyCount: keys of the text multi-key get the event is one key of, 0 otherwise
	colKeyIndex         // uvarint KeyIndex, one per event with a non-zero KeyCount
	numColumns
)

// minColumns is the column count of the first version 1 files, written before the multi-key columns existed;
// their events decode with KeyIndex and KeyCount 0.
const minColumns = colKeyCount

// packEnums packs the small per-event fields into one dictionary key.
func packEnums(ev *Event) uint64 {
	v := uint64(ev.Proto) | uint64(ev.Cmd)<<8 | uint64(ev.Status)<<16
	if ev.Noreply {
		v |= 1 << 24
	}
	if ev.Quiet {
		v |= 1 << 25
	}
	return v
}

const enumMask = 1<<26 - 1

func unpackEnums(v uint64, ev *Event) {
	ev.Proto = mcproto.Protocol(v)
	ev.Cmd = mcproto.Command(v >> 8)
	ev.Status = mcproto.Status(v >> 16)
	ev.Noreply = v&(1<<24) != 0
	ev.Quiet = v&(1<<25) != 0
}

// keyEntry is one entry of the decoder's key dictionary. An entry is a (hash, size, namespace) triple: the
// same hash seen with another size gets a new entry, so every field round-trips exactly.
type keyEntry struct {
	hash  uint64
	ns    uint64
	size  uint16
	lastV uint32 // last non-zero value size seen for this entry in the block
	lastF uint32 // last non-zero flags
}

// dict maps uint64 keys to int32 values with open addressing. Slots carry a generation, so reset is O(1): the
// table is reused block after block without clearing or allocating.
type dict struct {
	slots []dslot
	shift uint8
	gen   uint32
	n     int
}

type dslot struct {
	key uint64
	val int32
	gen uint32
}

func (d *dict) init(logSize uint8) {
	d.slots = make([]dslot, 1<<logSize)
	d.shift = 64 - logSize
	d.gen = 1
	d.n = 0
}

func (d *dict) reset() {
	d.gen++
	d.n = 0
	if d.gen == 0 { // wrapped: stale slots could look current
		clear(d.slots)
		d.gen = 1
	}
}

// find returns the slot for k: either the slot holding k (ok) or the empty slot where k belongs.
func (d *dict) find(k uint64) (slot int, ok bool) {
	mask := len(d.slots) - 1
	i := int((k * 0x9E3779B97F4A7C15) >> d.shift)
	for {
		s := &d.slots[i]
		if s.gen != d.gen {
			return i, false
		}
		if s.key == k {
			return i, true
		}
		i = (i + 1) & mask
	}
}

// set stores v for k in slot (as returned by find for k) and grows the table when it is half full. A slot
// index is invalid after set.
func (d *dict) set(slot int, k uint64, v int32, isNew bool) {
	d.slots[slot] = dslot{key: k, val: v, gen: d.gen}
	if !isNew {
		return
	}
	d.n++
	if 2*d.n > len(d.slots) {
		old := d.slots
		gen := d.gen
		d.init(uint8(64-d.shift) + 1)
		for _, s := range old {
			if s.gen == gen {
				i, _ := d.find(s.key)
				d.slots[i] = dslot{key: s.key, val: s.val, gen: d.gen}
				d.n++
			}
		}
	}
}

// keySlot is one slot of the encoder's key table. It holds the whole dictionary entry, so an event costs one
// cache miss for its key, not two.
type keySlot struct {
	hash  uint64
	ns    uint64
	lastV uint32 // last non-zero value size seen for this entry in the block
	lastF uint32 // last non-zero flags
	idx   int32  // dictionary index
	gen   uint32
	size  uint16
}

// keyTable is the encoder's key dictionary: open addressing on the key hash, generation-stamped like dict.
type keyTable struct {
	slots []keySlot
	shift uint8
	gen   uint32
	n     int32 // entries this block
}

func (t *keyTable) init(logSize uint8) {
	t.slots = make([]keySlot, 1<<logSize)
	t.shift = 64 - logSize
	t.gen = 1
	t.n = 0
}

func (t *keyTable) reset() {
	t.gen++
	t.n = 0
	if t.gen == 0 {
		clear(t.slots)
		t.gen = 1
	}
}

// find returns the slot holding h, or the empty slot where h belongs.
func (t *keyTable) find(h uint64) (*keySlot, bool) {
	mask := len(t.slots) - 1
	i := int((h * 0x9E3779B97F4A7C15) >> t.shift)
	for {
		s := &t.slots[i]
		if s.gen != t.gen {
			return s, false
		}
		if s.hash == h {
			return s, true
		}
		i = (i + 1) & mask
	}
}

// grow doubles the table when it is more than half full. Slot pointers are invalid afterwards.
func (t *keyTable) grow() {
	if 2*int(t.n) <= len(t.slots) {
		return
	}
	old, gen, n := t.slots, t.gen, t.n
	t.init(uint8(64-t.shift) + 1)
	for i := range old {
		if old[i].gen == gen {
			s, _ := t.find(old[i].hash)
			*s = old[i]
			s.gen = t.gen
		}
	}
	t.n = n
}

// blockEncoder accumulates events into columns. Appending an event never allocates once the column buffers
// and dictionaries have grown to the block's size.
type blockEncoder struct {
	unit  int64
	recip uint64 // latencyTicks multiplier for unit
	lbits uint8

	cols  [numColumns][]byte
	n     int   // events in the block
	prevS int64 // S of the previous event

	conns dict
	nConn int32
	enums dict
	nEnum int32
	keys  keyTable
	nss   dict
	nNS   int32
}

func newBlockEncoder(unit int64, lbits uint8) *blockEncoder {
	e := &blockEncoder{unit: unit, recip: latencyRecip(unit), lbits: lbits}
	e.conns.init(10)
	e.enums.init(6)
	e.keys.init(12)
	e.nss.init(6)
	e.reset()
	return e
}

func (e *blockEncoder) reset() {
	for i := range e.cols {
		e.cols[i] = e.cols[i][:0]
	}
	e.n = 0
	e.prevS = 0
	e.conns.reset()
	e.nConn = 0
	e.enums.reset()
	e.nEnum = 0
	e.keys.reset()
	e.nss.reset()
	e.nNS = 0
}

// latencyRecip returns M = floor(2^32 / unit), the multiplier of latencyTicks.
func latencyRecip(unit int64) uint64 {
	if unit <= 0 || unit > 1<<32 {
		return 0
	}
	return (1 << 32) / uint64(unit)
}

// latencyTicks approximates l in time ticks without a division: floor(l × M / 2^32) on l's unsigned 64-bit
// pattern, truncated to 64 bits. It is exact (l) when the unit is 1 ns. Encoder and decoder compute it the same
// way, so the approximation only affects how small the time deltas are, never what is decoded.
func latencyTicks(l int64, recip uint64) int64 {
	hi, lo := bits.Mul64(uint64(l), recip)
	return int64(hi<<32 | lo>>32)
}

// rawSize is the bytes in all columns so far.
func (e *blockEncoder) rawSize() int {
	n := 0
	for i := range e.cols {
		n += len(e.cols[i])
	}
	return n
}

func appendUvarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return binary.AppendUvarint(b, v)
}

// putSplit writes v to a split column pair (see the column list).
func (e *blockEncoder) putSplit(col int, v uint64) {
	if v < 0x80 {
		e.cols[col] = append(e.cols[col], byte(v))
		return
	}
	e.cols[col] = append(e.cols[col], byte(v)|0x80)
	e.cols[col+1] = appendUvarint(e.cols[col+1], v>>7)
}

// add appends ev to the block.
//
// Time is not stored directly: events are written in completion order, so request times jump back and forth
// by up to a latency. S = ticks(Time) + latencyTicks(latency) is about the completion time, nearly monotonic,
// so its deltas are small; the decoder reads the latency first and subtracts it again.
func (e *blockEncoder) add(ev *Event) {
	lc := latencyEncode(ev.Latency, e.lbits)
	s := timeTicks(ev.Time, e.unit) + latencyTicks(latencyDecode(lc, e.lbits), e.recip)
	e.putSplit(colLatency, lc)
	e.putSplit(colTime, zigzag(s-e.prevS))
	e.prevS = s

	// Connection.
	slot, ok := e.conns.find(ev.Conn)
	if ok {
		e.putSplit(colConnRef, uint64(e.conns.slots[slot].val)+1)
	} else {
		e.putSplit(colConnRef, 0)
		e.cols[colConnNew] = appendUvarint(e.cols[colConnNew], ev.Conn)
		e.conns.set(slot, ev.Conn, e.nConn, true)
		e.nConn++
	}

	// Enums.
	pk := packEnums(ev)
	slot, ok = e.enums.find(pk)
	if ok {
		e.cols[colEnumRef] = appendUvarint(e.cols[colEnumRef], uint64(e.enums.slots[slot].val)+1)
	} else {
		e.cols[colEnumRef] = append(e.cols[colEnumRef], 0)
		e.cols[colEnumNew] = appendUvarint(e.cols[colEnumNew], pk)
		e.enums.set(slot, pk, e.nEnum, true)
		e.nEnum++
	}

	// Key. The same hash with another size or namespace gets a new entry, which replaces the old one in the
	// table; the old entry stays valid for the decoder but is never referenced again.
	ks, ok := e.keys.find(ev.KeyHash)
	if ok && ks.size == ev.KeySize && ks.ns == ev.NSHash {
		e.putSplit(colKeyRef, uint64(ks.idx)+1)
	} else {
		e.putSplit(colKeyRef, 0)
		e.cols[colKeyHash] = binary.LittleEndian.AppendUint64(e.cols[colKeyHash], ev.KeyHash)
		e.cols[colKeySize] = appendUvarint(e.cols[colKeySize], uint64(ev.KeySize))
		e.addNS(ev.NSHash)
		*ks = keySlot{hash: ev.KeyHash, ns: ev.NSHash, size: ev.KeySize, idx: e.keys.n, gen: e.keys.gen}
		e.keys.n++
	}

	// Value size and flags: "same as last time for this key" is one byte.
	if ev.ValueSize != 0 && ev.ValueSize == ks.lastV {
		e.cols[colValue] = append(e.cols[colValue], 0)
	} else {
		e.putSplit(colValue, uint64(ev.ValueSize)+1)
		if ev.ValueSize != 0 {
			ks.lastV = ev.ValueSize
		}
	}
	if ev.Flags != 0 && ev.Flags == ks.lastF {
		e.cols[colFlags] = append(e.cols[colFlags], 0)
	} else {
		e.cols[colFlags] = appendUvarint(e.cols[colFlags], uint64(ev.Flags)+1)
		if ev.Flags != 0 {
			ks.lastF = ev.Flags
		}
	}
	if !ok {
		e.keys.grow() // last: it invalidates ks
	}

	e.cols[colTTL] = appendUvarint(e.cols[colTTL], zigzag(ev.TTL))
	e.cols[colUpstream] = appendUvarint(e.cols[colUpstream], uint64(uint16(ev.Upstream+1)))
	if ev.KeyIndex < ev.KeyCount { // else not a key of a multi-key get (Header.Quantize)
		e.cols[colKeyCount] = appendUvarint(e.cols[colKeyCount], uint64(ev.KeyCount))
		e.cols[colKeyIndex] = appendUvarint(e.cols[colKeyIndex], uint64(ev.KeyIndex))
	} else {
		e.cols[colKeyCount] = append(e.cols[colKeyCount], 0)
	}
	e.n++
}

func (e *blockEncoder) addNS(ns uint64) {
	if ns == 0 {
		e.cols[colNSRef] = append(e.cols[colNSRef], 0)
		return
	}
	slot, ok := e.nss.find(ns)
	if ok {
		e.cols[colNSRef] = appendUvarint(e.cols[colNSRef], uint64(e.nss.slots[slot].val)+2)
		return
	}
	e.cols[colNSRef] = append(e.cols[colNSRef], 1)
	e.cols[colNSHash] = binary.LittleEndian.AppendUint64(e.cols[colNSHash], ns)
	e.nss.set(slot, ns, e.nNS, true)
	e.nNS++
}

// minCompressColumn is the smallest column worth a zstd frame; smaller ones are stored raw.
const minCompressColumn = 64

// finish appends the block payload to dst and returns it with the columns' total raw size. With a zstd
// encoder, each column is compressed on its own (so each gets its own entropy tables) and kept raw when that
// does not make it smaller; scratch is reused for the compressed frames.
//
// Payload: uvarint column count, then per column uvarint raw length and uvarint stored length (0 = stored raw;
// codec none has no stored lengths), then the columns' stored bytes in order.
func (e *blockEncoder) finish(dst []byte, zenc *zstd.Encoder, scratch *[]byte) (payload []byte, raw int) {
	dst = appendUvarint(dst, numColumns)
	if zenc == nil {
		for i := range e.cols {
			dst = appendUvarint(dst, uint64(len(e.cols[i])))
			raw += len(e.cols[i])
		}
		for i := range e.cols {
			dst = append(dst, e.cols[i]...)
		}
		return dst, raw
	}
	z := (*scratch)[:0]
	var stored [numColumns]int
	for i, c := range e.cols {
		raw += len(c)
		if len(c) < minCompressColumn {
			continue
		}
		start := len(z)
		z = zenc.EncodeAll(c, z)
		if len(z)-start >= len(c) {
			z = z[:start]
			continue
		}
		stored[i] = len(z) - start
	}
	for i, c := range e.cols {
		dst = appendUvarint(dst, uint64(len(c)))
		dst = appendUvarint(dst, uint64(stored[i]))
	}
	zp := 0
	for i, c := range e.cols {
		if stored[i] == 0 {
			dst = append(dst, c...)
		} else {
			dst = append(dst, z[zp:zp+stored[i]]...)
			zp += stored[i]
		}
	}
	*scratch = z
	return dst, raw
}

// splitPayload parses a payload written by finish into its columns. Compressed columns are decoded into
// *rawBuf (grown as needed, at most rawLen bytes, which the caller has checked against the limits); the
// returned columns alias payload and *rawBuf.
func splitPayload(payload []byte, codec byte, rawLen int, zdec func() (*zstd.Decoder, error),
	rawBuf *[]byte) (cols [numColumns][]byte, err error) {
	c := cursor{b: payload}
	ncols := c.uvarint()
	if c.failed() || ncols < minColumns || ncols > 256 {
		return cols, fmt.Errorf("block payload has %d columns, want at least %d", ncols, minColumns)
	}
	var rawLens, storedLens [256]uint64
	total := uint64(0)
	for i := range ncols {
		rawLens[i] = c.uvarint()
		if codec == diskCompZstd {
			storedLens[i] = c.uvarint()
		}
		total += rawLens[i]
		if c.failed() || rawLens[i] > maxRawPayload || total > maxRawPayload {
			return cols, errors.New("block column table is malformed")
		}
	}
	if total != uint64(rawLen) {
		return cols, fmt.Errorf("block columns hold %d bytes, header says %d", total, rawLen)
	}
	need := 0
	for i := range min(ncols, numColumns) {
		if storedLens[i] != 0 {
			need += int(rawLens[i])
		}
	}
	if cap(*rawBuf) < need {
		// A quarter more than this block needs, so that slightly larger blocks later do not allocate again.
		*rawBuf = make([]byte, 0, min(need+need/4, maxRawPayload))
	}
	buf := (*rawBuf)[:0]
	p := c.p
	for i := range ncols {
		sl := storedLens[i]
		if sl == 0 {
			sl = rawLens[i]
		}
		if sl > uint64(len(payload)-p) {
			return cols, fmt.Errorf("block column %d claims %d bytes, only %d left", i, sl, len(payload)-p)
		}
		data := payload[p : p+int(sl)]
		p += int(sl)
		if i >= numColumns {
			continue // a later minor version's column: skipped
		}
		if storedLens[i] == 0 {
			cols[i] = data
			continue
		}
		d, err := zdec()
		if err != nil {
			return cols, err
		}
		start := len(buf)
		out, err := d.DecodeAll(data, buf[start:start:start+int(rawLens[i])])
		if err != nil {
			return cols, fmt.Errorf("cannot decompress column %d: %w", i, err)
		}
		if len(out) != int(rawLens[i]) {
			return cols, fmt.Errorf("column %d decompresses to %d bytes, table says %d", i, len(out), rawLens[i])
		}
		buf = buf[:start+len(out)]
		cols[i] = buf[start:]
	}
	*rawBuf = buf
	return cols, nil
}

// cursor reads one column. A failed read leaves p past the end, where every later read fails too; the decoder
// checks for that once per batch.
type cursor struct {
	b []byte
	p int
}

func (c *cursor) uvarint() uint64 {
	if c.p < len(c.b) {
		if b := c.b[c.p]; b < 0x80 {
			c.p++
			return uint64(b)
		}
	}
	return c.uvarintSlow()
}

func (c *cursor) uvarintSlow() uint64 {
	v, n := binary.Uvarint(c.b[min(c.p, len(c.b)):])
	if n <= 0 {
		c.p = len(c.b) + 1
		return 0
	}
	c.p += n
	return v
}

func (c *cursor) u64le() uint64 {
	if c.p+8 > len(c.b) {
		c.p = len(c.b) + 1
		return 0
	}
	v := binary.LittleEndian.Uint64(c.b[c.p:])
	c.p += 8
	return v
}

func (c *cursor) failed() bool { return c.p > len(c.b) }

// skipZeros skips the next n bytes and reports true when they are all there and all 0 (n uvarints of value 0);
// otherwise it reports false and moves nothing.
func (c *cursor) skipZeros(n int) bool {
	if c.p+n > len(c.b) {
		return false
	}
	b := c.b[c.p : c.p+n]
	var or uint64
	for len(b) >= 8 {
		or |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, x := range b {
		or |= uint64(x)
	}
	if or != 0 {
		return false
	}
	c.p += n
	return true
}

var errColumn = errors.New("column ends early or holds a malformed value")

// splitN decodes len(out) values of a split column pair (see the column list) into out. It reports false, with
// lo failed, when either column ends early or holds a malformed value.
//
// This is the decoder's hottest loop, so it is written for the branch predictor: whether a value has a high part
// is close to a coin toss for dictionary references, so the loop reads the next high byte whenever there is one,
// masks it in or out, and advances the high cursor by the low byte's top bit. Only high parts of two bytes or
// more (values of 2^14 and more) and the end of the high column take branches that depend on the data.
func splitN(lo, hi *cursor, out []uint64) bool {
	if lo.p > len(lo.b) || len(lo.b)-lo.p < len(out) || hi.p > len(hi.b) {
		lo.p = len(lo.b) + 1
		return false
	}
	lb := lo.b[lo.p : lo.p+len(out)]
	hb, hp := hi.b, hi.p
	out = out[:len(lb)]
	for i, b := range lb {
		if hp < len(hb) {
			h := hb[hp]
			if b&h < 0x80 {
				m := uint64(b >> 7)
				out[i] = uint64(b&0x7f) | uint64(h)<<7&-m
				hp += int(m)
				continue
			}
		} else if b < 0x80 {
			out[i] = uint64(b)
			continue
		}
		v, k := binary.Uvarint(hb[min(hp, len(hb)):])
		if k <= 0 || v >= 1<<57 {
			lo.p = len(lo.b) + 1
			return false
		}
		out[i] = uint64(b&0x7f) | v<<7
		hp += k
	}
	lo.p += len(lb)
	hi.p = hp
	return true
}

// uvarintN decodes len(out) uvarints of c into out. It reports false, with c failed, when c ends early or holds
// a malformed value. Most columns hold one-byte values only, so it takes eight at a time when it can.
func uvarintN(c *cursor, out []uint64) bool {
	b, p := c.b, c.p
	if p > len(b) {
		return false
	}
	for i := 0; i < len(out); {
		if len(out)-i >= 8 && len(b)-p >= 8 {
			if x := binary.LittleEndian.Uint64(b[p:]); x&0x8080808080808080 == 0 {
				unpack8(x, out[i:i+8])
				i += 8
				p += 8
				continue
			}
		}
		if p < len(b) && b[p] < 0x80 {
			out[i] = uint64(b[p])
			p++
			i++
			continue
		}
		v, k := binary.Uvarint(b[min(p, len(b)):])
		if k <= 0 {
			c.p = len(b) + 1
			return false
		}
		out[i] = v
		p += k
		i++
	}
	c.p = p
	return true
}

// unpack8 stores the bytes of x, low first, in out[:8].
func unpack8(x uint64, out []uint64) {
	out = out[:8]
	out[0] = x & 0xff
	out[1] = x >> 8 & 0xff
	out[2] = x >> 16 & 0xff
	out[3] = x >> 24 & 0xff
	out[4] = x >> 32 & 0xff
	out[5] = x >> 40 & 0xff
	out[6] = x >> 48 & 0xff
	out[7] = x >> 56
}

// decodeBatch is how many events blockDecoder decodes at a time, column by column: tight loops over a few
// columns at a time decode faster than one event at a time.
const decodeBatch = 256

// blockDecoder returns the events of one block. It never allocates once its dictionaries have grown to the
// block's size.
type blockDecoder struct {
	unit  int64
	recip uint64
	lbits uint8

	cols      [numColumns]cursor
	grouped   bool // the block has the multi-key columns (colKeyCount and on)
	remaining int  // events not yet decoded
	prevS     int64

	conns []uint64
	enums []uint64
	keys  []keyEntry
	nss   []uint64 // by NSRef value: [0] = 0 (no namespace), [1] unused (1 = new entry), entry i at [i+2]

	// vals holds the raw column values of the batch being decoded, so that each column is read in a loop of
	// its own and the loops that build events do no byte parsing.
	vals [4][decodeBatch]uint64

	batch [decodeBatch]Event
	bn    int // events in batch
	bi    int // next event of batch to return
}

func (d *blockDecoder) setPrecision(unit int64, lbits uint8) {
	d.unit, d.recip, d.lbits = unit, latencyRecip(unit), lbits
}

// reset starts decoding the columns of a block of events events.
func (d *blockDecoder) reset(cols *[numColumns][]byte, events int) {
	for i := range cols {
		d.cols[i] = cursor{b: cols[i]}
	}
	// A column splitPayload found no entry for is nil (one it found is never nil, even when empty).
	d.grouped = cols[colKeyCount] != nil
	d.remaining = events
	d.prevS = 0
	// Size the dictionaries for the block up front, so that appending to them never copies. Each new entry
	// takes at least one byte of its column (8 for hashes), so the sizes are bounded by the columns actually
	// read, not only by the event count the block claims.
	d.conns = reserve(d.conns, min(len(cols[colConnNew]), events))
	d.enums = reserve(d.enums, min(len(cols[colEnumNew]), events))
	d.keys = reserve(d.keys, min(len(cols[colKeyHash])/8, events))
	d.nss = append(reserve(d.nss, min(len(cols[colNSHash])/8, events)+2), 0, 0)
	d.bn, d.bi = 0, 0
}

// reserve returns s emptied, with room for at least n elements (and a quarter more when it allocates, so that
// slightly larger blocks later do not allocate again).
func reserve[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n+n/4)
	}
	return s[:0]
}

// next copies the next event into ev. It returns false at the end of the block or on a malformed payload
// (err then says what is wrong; the events of the failed batch are not returned).
func (d *blockDecoder) next(ev *Event) (bool, error) {
	if d.bi >= d.bn {
		if d.remaining <= 0 {
			return false, nil
		}
		if err := d.fill(); err != nil {
			d.remaining, d.bn, d.bi = 0, 0, 0
			return false, err
		}
	}
	*ev = d.batch[d.bi]
	d.bi++
	return true, nil
}

func columnError(col int) error { return fmt.Errorf("column %d: %w", col, errColumn) }

// fill decodes the next batch. Each column (or split pair) is first decoded into d.vals by splitN or uvarintN,
// then a loop per field group turns the values into event fields; a dictionary lookup is then one load from an
// index computed in an earlier loop, so the cache misses of a batch's lookups overlap.
func (d *blockDecoder) fill() error {
	n := min(d.remaining, decodeBatch)
	evs := d.batch[:n]
	cols := &d.cols
	va, vb, vc, vd := d.vals[0][:n], d.vals[1][:n], d.vals[2][:n], d.vals[3][:n]

	// Latency, then time.
	if !splitN(&cols[colLatency], &cols[colLatencyHi], va) {
		return columnError(colLatency)
	}
	if !splitN(&cols[colTime], &cols[colTimeHi], vb) {
		return columnError(colTime)
	}
	s, unit, recip, m := d.prevS, d.unit, d.recip, d.lbits
	if m >= ExactLatency {
		for i := range evs {
			lat := unzigzag(va[i])
			s += unzigzag(vb[i])
			evs[i].Latency = lat
			evs[i].Time = (s - latencyTicks(lat, recip)) * unit
		}
	} else {
		for i := range evs {
			lat := latencyDecode(va[i], m)
			s += unzigzag(vb[i])
			evs[i].Latency = lat
			evs[i].Time = (s - latencyTicks(lat, recip)) * unit
		}
	}
	d.prevS = s

	// Connection.
	if !splitN(&cols[colConnRef], &cols[colConnRefHi], va) {
		return columnError(colConnRef)
	}
	conns := d.conns
	for i := range evs {
		ci := va[i]
		switch {
		case ci-1 < uint64(len(conns)):
			evs[i].Conn = conns[ci-1]
		case ci == 0:
			c := cols[colConnNew].uvarint()
			conns = append(conns, c)
			evs[i].Conn = c
		default:
			d.conns = conns
			return fmt.Errorf("connection reference %d past dictionary of %d", ci, len(conns))
		}
	}
	d.conns = conns

	// Enums.
	if !uvarintN(&cols[colEnumRef], va) {
		return columnError(colEnumRef)
	}
	enums := d.enums
	for i := range evs {
		ei := va[i]
		var pk uint64
		switch {
		case ei-1 < uint64(len(enums)):
			pk = enums[ei-1]
		case ei == 0:
			pk = cols[colEnumNew].uvarint()
			if pk > enumMask {
				d.enums = enums
				return fmt.Errorf("enum value %#x out of range", pk)
			}
			enums = append(enums, pk)
		default:
			d.enums = enums
			return fmt.Errorf("enum reference %d past dictionary of %d", ei, len(enums))
		}
		unpackEnums(pk, &evs[i])
	}
	d.enums = enums

	// Keys: first turn references into dictionary indexes, adding new entries, then look them up.
	if !splitN(&cols[colKeyRef], &cols[colKeyRefHi], va) {
		return columnError(colKeyRef)
	}
	if err := d.keyIndexes(va, vd); err != nil {
		return err
	}
	if !splitN(&cols[colValue], &cols[colValueHi], vb) {
		return columnError(colValue)
	}
	if !uvarintN(&cols[colFlags], vc) {
		return columnError(colFlags)
	}
	keys := d.keys
	for i := range evs {
		ke := &keys[vd[i]]
		ev := &evs[i]
		ev.KeyHash, ev.KeySize, ev.NSHash = ke.hash, ke.size, ke.ns
		// Value and flags: 0 = the entry's last non-zero one, else value+1. Written with selects rather than
		// branches: the cases alternate unpredictably.
		v, f := vb[i], vc[i]
		if v > math.MaxUint32+1 {
			return fmt.Errorf("value size %d out of range", v-1)
		}
		if f > math.MaxUint32+1 {
			return fmt.Errorf("flags %d out of range", f-1)
		}
		lv, lf := ke.lastV, ke.lastF
		vs, fs := uint32(v-1), uint32(f-1)
		if v == 0 {
			vs = lv
		}
		if f == 0 {
			fs = lf
		}
		if v > 1 {
			lv = vs
		}
		if f > 1 {
			lf = fs
		}
		ev.ValueSize, ev.Flags = vs, fs
		ke.lastV, ke.lastF = lv, lf
	}

	// TTL and upstream.
	if !uvarintN(&cols[colTTL], va) {
		return columnError(colTTL)
	}
	if !uvarintN(&cols[colUpstream], vb) {
		return columnError(colUpstream)
	}
	for i := range evs {
		up := vb[i]
		if up > math.MaxUint16 {
			return fmt.Errorf("upstream %d out of range", up)
		}
		evs[i].TTL = unzigzag(va[i])
		evs[i].Upstream = int16(uint16(up) - 1)
		evs[i].KeyIndex, evs[i].KeyCount = 0, 0
	}

	// Multi-key gets: almost every event is none, a 0 byte in KeyCount.
	if d.grouped && !cols[colKeyCount].skipZeros(n) {
		if !uvarintN(&cols[colKeyCount], va) {
			return columnError(colKeyCount)
		}
		for i := range evs {
			if kc := va[i]; kc != 0 {
				ki := cols[colKeyIndex].uvarint()
				if kc > math.MaxUint16 || ki >= kc {
					return fmt.Errorf("key index %d of %d keys out of range", ki, kc)
				}
				evs[i].KeyIndex, evs[i].KeyCount = uint16(ki), uint16(kc)
			}
		}
	}

	d.remaining -= n
	for i := range cols {
		if cols[i].failed() {
			return fmt.Errorf("column %d: %w", i, errColumn)
		}
	}
	if d.remaining == 0 {
		for i := range cols {
			if cols[i].p != len(cols[i].b) {
				return fmt.Errorf("column %d has %d bytes left after the last event", i, len(cols[i].b)-cols[i].p)
			}
		}
	}
	d.bn, d.bi = n, 0
	return nil
}

// b2u is 1 for true and 0 for false, without a branch.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// keyIndexes turns the key references refs into indexes into d.keys in idx, reading a new entry for each 0.
//
// About a third of the references are 0 in a typical block, in no predictable order, so the references are
// resolved first without branching on that (a new entry's index is the count of entries so far), and the new
// entries are read after, in a loop of their own whose branches all go the same way on well-formed input.
func (d *blockDecoder) keyIndexes(refs, idx []uint64) error {
	keys, nss := d.keys, d.nss
	nk := uint64(len(keys))
	bad := uint64(0)
	idx = idx[:len(refs)]
	for i, ki := range refs {
		bad |= b2u(ki > nk)
		x := ki - 1
		if ki == 0 {
			x = nk
		}
		idx[i] = x
		nk += b2u(ki == 0)
	}
	if bad != 0 {
		nk = uint64(len(keys))
		for _, ki := range refs {
			if ki > nk {
				return fmt.Errorf("key reference %d past dictionary of %d", ki, nk)
			}
			nk += b2u(ki == 0)
		}
		panic("BUG: no bad key reference found")
	}
	cols := &d.cols
	hc, sc, nc := cols[colKeyHash], cols[colKeySize], cols[colNSRef]
	var err error
	for range nk - uint64(len(keys)) {
		h := hc.u64le()
		sz := sc.uvarint()
		if sz > math.MaxUint16 {
			err = fmt.Errorf("key size %d out of range", sz)
			break
		}
		ni := nc.uvarint()
		if ni == 1 {
			nss = append(nss, cols[colNSHash].u64le())
			ni = uint64(len(nss) - 1)
		}
		if ni >= uint64(len(nss)) {
			err = fmt.Errorf("namespace reference %d past dictionary of %d", ni, len(nss)-2)
			break
		}
		keys = append(keys, keyEntry{hash: h, ns: nss[ni], size: uint16(sz)})
	}
	d.keys, d.nss = keys, nss
	cols[colKeyHash], cols[colKeySize], cols[colNSRef] = hc, sc, nc
	return err
}
