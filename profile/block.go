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
	numColumns
)

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
	if c.failed() || ncols < numColumns || ncols > 256 {
		return cols, fmt.Errorf("block payload has %d columns, want at least %d", ncols, numColumns)
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
	for i := range numColumns {
		if storedLens[i] != 0 {
			need += int(rawLens[i])
		}
	}
	if cap(*rawBuf) < need {
		*rawBuf = make([]byte, 0, need)
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

// split reads a value from a split column pair (see the column list).
func split(lo, hi *cursor) uint64 {
	if lo.p < len(lo.b) {
		b := lo.b[lo.p]
		lo.p++
		if b < 0x80 {
			return uint64(b)
		}
		h := hi.uvarint()
		if h < 1<<57 {
			return uint64(b&0x7f) | h<<7
		}
	}
	lo.p = len(lo.b) + 1
	return 0
}

var errColumn = errors.New("column ends early or holds a malformed value")

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
	remaining int // events not yet decoded
	prevS     int64

	conns []uint64
	enums []uint64
	keys  []keyEntry
	nss   []uint64

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
	d.remaining = events
	d.prevS = 0
	d.conns = d.conns[:0]
	d.enums = d.enums[:0]
	d.keys = d.keys[:0]
	d.nss = d.nss[:0]
	d.bn, d.bi = 0, 0
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

// fill decodes the next batch, one column at a time. Cursors are copied into locals for each loop so that
// the compiler keeps them in registers, and written back after.
func (d *blockDecoder) fill() error {
	n := min(d.remaining, decodeBatch)
	evs := d.batch[:n]
	cols := &d.cols

	lo, hi := cols[colLatency], cols[colLatencyHi]
	tlo, thi := cols[colTime], cols[colTimeHi]
	s, unit, recip, m := d.prevS, d.unit, d.recip, d.lbits
	if m >= ExactLatency {
		for i := range evs {
			lat := unzigzag(split(&lo, &hi))
			s += unzigzag(split(&tlo, &thi))
			evs[i].Latency = lat
			evs[i].Time = (s - latencyTicks(lat, recip)) * unit
		}
	} else {
		for i := range evs {
			lat := latencyDecode(split(&lo, &hi), m)
			s += unzigzag(split(&tlo, &thi))
			evs[i].Latency = lat
			evs[i].Time = (s - latencyTicks(lat, recip)) * unit
		}
	}
	d.prevS = s
	cols[colLatency], cols[colLatencyHi], cols[colTime], cols[colTimeHi] = lo, hi, tlo, thi

	lo, hi = cols[colConnRef], cols[colConnRefHi]
	conns := d.conns
	for i := range evs {
		ci := split(&lo, &hi)
		switch {
		case ci-1 < uint64(len(conns)):
			evs[i].Conn = conns[ci-1]
		case ci == 0:
			c := cols[colConnNew].uvarint()
			conns = append(conns, c)
			evs[i].Conn = c
		default:
			return fmt.Errorf("connection reference %d past dictionary of %d", ci, len(conns))
		}
	}
	d.conns = conns
	cols[colConnRef], cols[colConnRefHi] = lo, hi

	c := cols[colEnumRef]
	enums := d.enums
	for i := range evs {
		ei := c.uvarint()
		var pk uint64
		switch {
		case ei-1 < uint64(len(enums)):
			pk = enums[ei-1]
		case ei == 0:
			pk = cols[colEnumNew].uvarint()
			if pk > enumMask {
				return fmt.Errorf("enum value %#x out of range", pk)
			}
			enums = append(enums, pk)
		default:
			return fmt.Errorf("enum reference %d past dictionary of %d", ei, len(enums))
		}
		unpackEnums(pk, &evs[i])
	}
	d.enums = enums
	cols[colEnumRef] = c

	klo, khi := cols[colKeyRef], cols[colKeyRefHi]
	lo, hi = cols[colValue], cols[colValueHi]
	fc := cols[colFlags]
	for i := range evs {
		ki := split(&klo, &khi)
		if ki-1 >= uint64(len(d.keys)) {
			if ki != 0 {
				return fmt.Errorf("key reference %d past dictionary of %d", ki, len(d.keys))
			}
			if err := d.newKey(); err != nil {
				return err
			}
			ki = uint64(len(d.keys))
		}
		ke := &d.keys[ki-1]
		evs[i].KeyHash, evs[i].KeySize, evs[i].NSHash = ke.hash, ke.size, ke.ns
		if v := split(&lo, &hi); v == 0 {
			evs[i].ValueSize = ke.lastV
		} else {
			if v-1 > math.MaxUint32 {
				return fmt.Errorf("value size %d out of range", v-1)
			}
			evs[i].ValueSize = uint32(v - 1)
			if v > 1 {
				ke.lastV = uint32(v - 1)
			}
		}
		if f := fc.uvarint(); f == 0 {
			evs[i].Flags = ke.lastF
		} else {
			if f-1 > math.MaxUint32 {
				return fmt.Errorf("flags %d out of range", f-1)
			}
			evs[i].Flags = uint32(f - 1)
			if f > 1 {
				ke.lastF = uint32(f - 1)
			}
		}
	}
	cols[colKeyRef], cols[colKeyRefHi] = klo, khi
	cols[colValue], cols[colValueHi], cols[colFlags] = lo, hi, fc

	c, u := cols[colTTL], cols[colUpstream]
	for i := range evs {
		evs[i].TTL = unzigzag(c.uvarint())
		up := u.uvarint()
		if up > math.MaxUint16 {
			return fmt.Errorf("upstream %d out of range", up)
		}
		evs[i].Upstream = int16(uint16(up) - 1)
	}
	cols[colTTL], cols[colUpstream] = c, u

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

// newKey reads a new key dictionary entry.
func (d *blockDecoder) newKey() error {
	cols := &d.cols
	h := cols[colKeyHash].u64le()
	sz := cols[colKeySize].uvarint()
	if sz > math.MaxUint16 {
		return fmt.Errorf("key size %d out of range", sz)
	}
	var ns uint64
	switch ni := cols[colNSRef].uvarint(); {
	case ni == 0:
	case ni == 1:
		ns = cols[colNSHash].u64le()
		d.nss = append(d.nss, ns)
	case ni-2 < uint64(len(d.nss)):
		ns = d.nss[ni-2]
	default:
		return fmt.Errorf("namespace reference %d past dictionary of %d", ni, len(d.nss))
	}
	d.keys = append(d.keys, keyEntry{hash: h, ns: ns, size: uint16(sz)})
	return nil
}
