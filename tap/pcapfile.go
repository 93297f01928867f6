// Capture file reading: classic pcap (micro- or nanosecond, either byte order) and pcapng (enhanced and
// obsolete packet blocks, several interfaces and sections, if_tsresol and if_tsoffset). It is written here
// rather than taken from gopacket/pcapgo because pcapgo pulls in golang.org/x/net, which this module does not
// otherwise need, and because the tap wants one reused buffer per file and no allocation per packet. Damage (a
// record or block whose lengths cannot be right, a file cut short) is reported with its byte offset, and reading
// goes on at the next record that parses (DamageError), where libpcap stops or swallows what follows.
package tap

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// maxCaptureRecord bounds one packet record, so a corrupt length cannot make the reader allocate gigabytes.
const maxCaptureRecord = 16 << 20

// maxSnapLen is libpcap's largest snap length for ordinary link types (MAXIMUM_SNAPLEN): a classic pcap record
// claiming more than this (or than the file's own larger snap length) is damaged, as libpcap itself decides.
const maxSnapLen = 262144

// DamageError reports a damaged part of a capture file: a record or block whose lengths cannot be right, or a
// file cut short in the middle of one. A file source returns it in place of a packet and reads on from the next
// record that parses, so everything readable is still read; a Tap counts these and its Run ends with
// ErrDamaged.
type DamageError struct {
	File   string // the capture file
	Offset int64  // byte offset of the damaged record or block, or of the record the file ends in
	What   string // what was wrong, and what the reader did about it
	Cut    bool   // the file ends there
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("capture file %s is damaged at byte %d: %s", e.File, e.Offset, e.What)
}

type captureReader interface {
	next() (data []byte, ts int64, lt LinkType, err error)
}

// newCaptureReader recognises the file by its first four bytes. size, when not nil, returns the file's current
// length in bytes (-1 when unknown); it lets a length that runs past the end be told from a file that was cut,
// and is asked again when the file may have grown (a capture still being written).
func newCaptureReader(br *bufio.Reader, size func() int64) (captureReader, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("too short for a capture file header: %w", err)
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		return &ngReader{fileReader: newFileReader(br, size, 0), bo: binary.LittleEndian}, nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return newPcapReader(br, size)
	}
	return nil, fmt.Errorf("not a pcap or pcapng file (magic %x)", magic)
}

// fileReader is what both formats share: the buffered file, the offset of the next unread byte, and the
// damage bookkeeping.
type fileReader struct {
	r      *bufio.Reader
	sizeFn func() int64
	size   int64 // the file's length when last asked; -1: unknown
	off    int64
	done   bool // cut short or unreadable to the end: nothing more to read
}

func newFileReader(r *bufio.Reader, size func() int64, off int64) fileReader {
	f := fileReader{r: r, sizeFn: size, size: -1, off: off}
	if size != nil {
		f.size = size()
	}
	return f
}

// discard skips n bytes.
func (f *fileReader) discard(n int) error {
	k, err := f.r.Discard(n)
	f.off += int64(k)
	return err
}

// toEnd skips what is left of the file: nothing more will be read.
func (f *fileReader) toEnd() {
	for {
		k, err := f.r.Discard(1 << 16)
		f.off += int64(k)
		if err != nil {
			break
		}
	}
	f.done = true
}

// pastEnd reports whether n bytes from the current offset run past the end of the file (false when its size
// is unknown).
func (f *fileReader) pastEnd(n int64) bool {
	if f.size < 0 || f.off+n <= f.size {
		return false
	}
	f.size = f.sizeFn() // it may have grown since
	return f.size >= 0 && f.off+n > f.size
}

// cut reports the file ending have bytes into a record or block of want bytes that started at at.
func (f *fileReader) cut(at int64, have, want int64, what string) *DamageError {
	f.toEnd()
	return &DamageError{Offset: at, Cut: true, What: fmt.Sprintf("the file was cut %d bytes into %s of %d bytes "+
		"(a capture still being written, or an incomplete copy); everything before it was read", have, what, want)}
}

// cutOrDamage turns d, the report of a record at at whose length ran past the end of the file, into the report
// of a cut file when nothing after it parsed either.
func (f *fileReader) cutOrDamage(d *DamageError, at, want int64, what string) *DamageError {
	if !f.done {
		return d
	}
	return f.cut(at, f.size-at, want, what)
}

// resync skips from at (the damaged record, not yet consumed) to the next offset, in steps of step bytes, where
// ok says a record starts; it returns the damage report. The record found is left unread.
func (f *fileReader) resync(at int64, step int, what string, ok func() bool) *DamageError {
	for {
		err := f.discard(step)
		if b, _ := f.r.Peek(16); err != nil || len(b) < 16 {
			f.toEnd()
			return &DamageError{Offset: at, What: what + fmt.Sprintf("; nothing after it parses (%d bytes skipped to "+
				"the end of the file)", f.off-at)}
		}
		if ok() {
			return &DamageError{Offset: at, What: what + fmt.Sprintf("; skipped %d bytes to the next record that "+
				"parses, at byte %d", f.off-at, f.off)}
		}
	}
}

// pcapReader reads classic pcap.
type pcapReader struct {
	fileReader
	bo      binary.ByteOrder
	nano    bool
	lt      LinkType
	buf     []byte
	snap    uint32
	maxRec  uint32 // the largest captured length a record may have
	lastSec uint32 // the latest good record's seconds, for judging candidates after damage
	seen    bool
	fixLen  uint32 // > 0: the record at off has this captured length (its header's was damaged)
}

func newPcapReader(r *bufio.Reader, size func() int64) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("cannot read pcap header: %w", err)
	}
	p := &pcapReader{fileReader: newFileReader(r, size, 24)}
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case 0xa1b2c3d4:
		p.bo = binary.LittleEndian
	case 0xa1b23c4d:
		p.bo, p.nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		p.bo = binary.BigEndian
	case 0x4d3cb2a1:
		p.bo, p.nano = binary.BigEndian, true
	}
	p.snap = p.bo.Uint32(h[16:20])
	p.lt = LinkType(p.bo.Uint32(h[20:24]) & 0xffff)
	p.maxRec = min(max(p.snap, maxSnapLen), maxCaptureRecord)
	return p, nil
}

func (p *pcapReader) next() ([]byte, int64, LinkType, error) {
	if p.done {
		return nil, 0, p.lt, io.EOF
	}
	h, err := p.r.Peek(16)
	if len(h) < 16 {
		if len(h) == 0 && err == io.EOF {
			return nil, 0, p.lt, io.EOF
		}
		if err != io.EOF {
			return nil, 0, p.lt, err
		}
		return nil, 0, p.lt, p.cut(p.off, int64(len(h)), 16, "a packet record header")
	}
	at := p.off
	sec := p.bo.Uint32(h[0:4])
	frac := int64(p.bo.Uint32(h[4:8]))
	n := p.bo.Uint32(h[8:12])
	switch {
	case p.fixLen > 0:
		n, p.fixLen = p.fixLen, 0
	case n > p.maxRec:
		return nil, 0, p.lt, p.recover(fmt.Sprintf("a packet record of %d bytes, more than the %d its snap length "+
			"allows", n, p.maxRec))
	case p.pastEnd(16 + int64(n)):
		d := p.recover(fmt.Sprintf("a packet record of %d bytes runs past the end of the file", n))
		return nil, 0, p.lt, p.cutOrDamage(d, at, 16+int64(n), "a packet record")
	}
	p.discard(16)
	if cap(p.buf) < int(n) {
		p.buf = make([]byte, n, max(int(n), 65536))
	}
	data := p.buf[:n]
	k, err := io.ReadFull(p.r, data)
	p.off += int64(k)
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, 0, p.lt, p.cut(at, 16+int64(k), 16+int64(n), "a packet record")
		}
		return nil, 0, p.lt, err
	}
	p.lastSec, p.seen = sec, true
	if !p.nano {
		frac *= 1000
	}
	return data, int64(sec)*1e9 + frac, p.lt, nil
}

// recover handles the damaged record header at the current offset. The captured length is the usual
// casualty: when the record's original length is one it could have and a record (or the end of the file)
// follows at that distance, that is its length. Otherwise the reader skips to the next offset where a plausible
// record starts and another one follows it, or to the end (done).
func (p *pcapReader) recover(what string) *DamageError {
	at := p.off
	h, _ := p.r.Peek(16)
	if orig := p.bo.Uint32(h[12:16]); orig > 0 && orig <= p.maxRec && p.followed(orig) {
		p.fixLen = orig
		return &DamageError{Offset: at, What: what + fmt.Sprintf("; read with its original length, %d bytes, "+
			"at which the next record starts", orig)}
	}
	return p.resync(at, 1, what, func() bool {
		h, _ := p.r.Peek(16)
		return p.plausible(h) && p.followed(p.bo.Uint32(h[8:12]))
	})
}

// plausible reports whether h is a record header this file could hold: lengths in bounds, a fraction of a
// second, and a time near the last good record's.
func (p *pcapReader) plausible(h []byte) bool {
	sec, frac := p.bo.Uint32(h[0:4]), p.bo.Uint32(h[4:8])
	incl, orig := p.bo.Uint32(h[8:12]), p.bo.Uint32(h[12:16])
	limit := uint32(1e6)
	if p.nano {
		limit = 1e9
	}
	if incl > p.maxRec || incl > orig || orig > maxCaptureRecord || frac >= limit {
		return false
	}
	return !p.seen || (int64(sec) >= int64(p.lastSec)-3600 && int64(sec) <= int64(p.lastSec)+7*86400)
}

// followed reports whether a record of n captured bytes at the current offset ends where the file does or where
// a plausible record starts.
func (p *pcapReader) followed(n uint32) bool {
	end := 16 + int(n)
	b, err := p.r.Peek(end + 16)
	switch {
	case len(b) == end+16:
		return p.plausible(b[end:])
	case err == bufio.ErrBufferFull:
		return !p.pastEnd(int64(end)) // too long to look past: its length fitting the file must do
	}
	return len(b) == end // the last record
}

// ngInterface is one pcapng interface description.
type ngInterface struct {
	lt LinkType
	// ts = (raw * mul / div) + offset ns
	mul, div uint64
	offset   int64
}

// ngReader reads pcapng.
type ngReader struct {
	fileReader
	bo     binary.ByteOrder
	ifaces []ngInterface
	buf    []byte
	lastTs int64
}

// blockTypeKnown reports whether typ is one of the block types the pcapng specification defines (the ones
// resynchronisation trusts).
func blockTypeKnown(typ uint32) bool { return typ >= 1 && typ <= 10 || typ == 0x0a0d0d0a }

func (g *ngReader) next() ([]byte, int64, LinkType, error) {
	for {
		if g.done {
			return nil, 0, 0, io.EOF
		}
		at := g.off
		h, err := g.r.Peek(12)
		if len(h) < 12 {
			if len(h) == 0 && err == io.EOF {
				return nil, 0, 0, io.EOF
			}
			if err != io.EOF {
				return nil, 0, 0, err
			}
			return nil, 0, 0, g.cut(at, int64(len(h)), 12, "a pcapng block header")
		}
		typ := binary.LittleEndian.Uint32(h[0:4])
		if typ == 0x0a0d0d0a {
			// Section header: its byte-order magic decides how everything after it is read.
			switch binary.LittleEndian.Uint32(h[8:12]) {
			case 0x1a2b3c4d:
				g.bo = binary.LittleEndian
			case 0x4d3c2b1a:
				g.bo = binary.BigEndian
			default:
				return nil, 0, 0, g.recover("a pcapng section header with an unknown byte-order magic")
			}
		}
		typ = g.bo.Uint32(h[0:4])
		total := g.bo.Uint32(h[4:8])
		if total < 12 || total > maxCaptureRecord || total%4 != 0 {
			return nil, 0, 0, g.recover(fmt.Sprintf("a pcapng block of %d bytes", total))
		}
		if g.pastEnd(int64(total)) {
			d := g.recover(fmt.Sprintf("a pcapng block of %d bytes runs past the end of the file", total))
			return nil, 0, 0, g.cutOrDamage(d, at, int64(total), "a pcapng block")
		}
		n := int(total)
		if cap(g.buf) < n {
			g.buf = make([]byte, n, max(n, 65536))
		}
		block := g.buf[:n]
		k, err := io.ReadFull(g.r, block)
		g.off += int64(k)
		if err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return nil, 0, 0, g.cut(at, int64(k), int64(total), "a pcapng block")
			}
			return nil, 0, 0, err
		}
		if trail := g.bo.Uint32(block[n-4:]); trail != total {
			return nil, 0, 0, &DamageError{Offset: at, What: fmt.Sprintf("a pcapng block of %d bytes ends with the "+
				"length %d; skipped", total, trail)}
		}
		body := block[8 : n-4]
		data, ts, lt, ok, derr := g.block(typ, body)
		if derr != "" {
			return nil, 0, 0, &DamageError{Offset: at, What: derr + "; skipped"}
		}
		if ok {
			return data, ts, lt, nil
		}
	}
}

// block interprets one block's body. ok says a packet was returned; damage describes a block that is whole but
// cannot be right.
func (g *ngReader) block(typ uint32, body []byte) (data []byte, ts int64, lt LinkType, ok bool, damage string) {
	switch typ {
	case 0x0a0d0d0a:
		g.ifaces = g.ifaces[:0]
	case 1: // interface description
		if len(body) < 8 {
			return nil, 0, 0, false, "a pcapng interface block too short to describe one"
		}
		in := ngInterface{lt: LinkType(g.bo.Uint16(body[0:2])), mul: 1000, div: 1}
		g.ifOptions(body[8:], &in)
		g.ifaces = append(g.ifaces, in)
	case 6, 2: // enhanced packet, obsolete packet
		if len(body) < 20 {
			return nil, 0, 0, false, "a pcapng packet block too short for its header"
		}
		var id uint32
		if typ == 6 {
			id = g.bo.Uint32(body[0:4])
		} else {
			id = uint32(g.bo.Uint16(body[0:2]))
		}
		if int(id) >= len(g.ifaces) {
			return nil, 0, 0, false, fmt.Sprintf("a pcapng packet for interface %d, which was not described", id)
		}
		in := &g.ifaces[id]
		raw := uint64(g.bo.Uint32(body[4:8]))<<32 | uint64(g.bo.Uint32(body[8:12]))
		capLen := int(g.bo.Uint32(body[12:16]))
		if capLen > len(body)-20 {
			return nil, 0, 0, false, fmt.Sprintf("a pcapng packet of %d bytes in a block with room for %d", capLen,
				len(body)-20)
		}
		ts := ngTime(raw, in)
		g.lastTs = ts
		return body[20 : 20+capLen], ts, in.lt, true, ""
	case 3: // simple packet: no timestamp, the previous one is the best there is
		if len(body) < 4 || len(g.ifaces) == 0 {
			return nil, 0, 0, false, ""
		}
		orig := int(g.bo.Uint32(body[0:4]))
		data := body[4:]
		if orig < len(data) {
			data = data[:orig]
		}
		return data, g.lastTs, g.ifaces[0].lt, true, ""
	}
	return nil, 0, 0, false, ""
}

// recover skips from the damaged block at the current offset to the next 4-byte-aligned offset where a whole
// block of a known type starts (its leading and trailing lengths agree), or to the end.
func (g *ngReader) recover(what string) *DamageError {
	return g.resync(g.off, 4, what, func() bool {
		h, _ := g.r.Peek(8)
		typ, total := g.bo.Uint32(h[0:4]), g.bo.Uint32(h[4:8])
		if !blockTypeKnown(typ) || total < 12 || total%4 != 0 || total > maxCaptureRecord {
			return false
		}
		b, _ := g.r.Peek(int(total))
		return len(b) == int(total) && g.bo.Uint32(b[total-4:]) == total
	})
}

// ngTime converts a raw pcapng timestamp in the interface's resolution to ns since the epoch.
func ngTime(raw uint64, in *ngInterface) int64 {
	var ns uint64
	if in.div == 1 {
		ns = raw * in.mul
	} else {
		hi, lo := raw/in.div, raw%in.div
		ns = hi*in.mul + lo*in.mul/in.div
	}
	return int64(ns) + in.offset
}

// ifOptions reads if_tsresol (9) and if_tsoffset (14).
func (g *ngReader) ifOptions(opts []byte, in *ngInterface) {
	for len(opts) >= 4 {
		code, l := g.bo.Uint16(opts[0:2]), int(g.bo.Uint16(opts[2:4]))
		if code == 0 || 4+l > len(opts) {
			return
		}
		v := opts[4 : 4+l]
		switch {
		case code == 9 && l >= 1:
			r := v[0]
			if r&0x80 == 0 {
				// 10^-r seconds per tick
				if r <= 9 {
					in.mul, in.div = uint64(math.Pow10(9-int(r))), 1
				} else {
					in.mul, in.div = 1, uint64(math.Pow10(int(r)-9))
				}
			} else {
				e := int(r & 0x7f) // 2^-e seconds per tick
				if e < 64 {
					in.mul, in.div = 1e9, uint64(1)<<e
				}
			}
		case code == 14 && l >= 8:
			in.offset = int64(g.bo.Uint64(v)) * 1e9
		}
		opts = opts[4+(l+3)&^3:]
	}
}
