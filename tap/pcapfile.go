// Capture file reading: classic pcap (micro- or nanosecond, either byte order) and pcapng (enhanced and
// obsolete packet blocks, several interfaces and sections, if_tsresol and if_tsoffset). It is written here
// rather than taken from gopacket/pcapgo because pcapgo pulls in golang.org/x/net, which this module does not
// otherwise need, and because the tap wants one reused buffer per file and no allocation per packet.
package tap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// maxCaptureRecord bounds one packet record, so a corrupt length cannot make the reader allocate gigabytes.
const maxCaptureRecord = 16 << 20

type captureReader interface {
	next() (data []byte, ts int64, lt LinkType, err error)
}

// newCaptureReader recognises the file by its first four bytes.
func newCaptureReader(br *bufio.Reader) (captureReader, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("too short for a capture file header: %w", err)
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		return newNgReader(br)
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return newPcapReader(br)
	}
	return nil, fmt.Errorf("not a pcap or pcapng file (magic %x)", magic)
}

// pcapReader reads classic pcap.
type pcapReader struct {
	r     *bufio.Reader
	bo    binary.ByteOrder
	nano  bool
	lt    LinkType
	hdr   [16]byte
	buf   []byte
	snap  uint32
	first bool
}

func newPcapReader(r *bufio.Reader) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("cannot read pcap header: %w", err)
	}
	p := &pcapReader{r: r}
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
	return p, nil
}

func (p *pcapReader) next() ([]byte, int64, LinkType, error) {
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = io.EOF // a capture cut while being written ends at its last whole packet
		}
		return nil, 0, p.lt, err
	}
	sec := int64(p.bo.Uint32(p.hdr[0:4]))
	frac := int64(p.bo.Uint32(p.hdr[4:8]))
	n := p.bo.Uint32(p.hdr[8:12])
	if n > maxCaptureRecord {
		return nil, 0, p.lt, fmt.Errorf("packet record of %d bytes: the file is corrupt", n)
	}
	if cap(p.buf) < int(n) {
		p.buf = make([]byte, n, max(int(n), 65536))
	}
	data := p.buf[:n]
	if _, err := io.ReadFull(p.r, data); err != nil {
		return nil, 0, p.lt, io.EOF
	}
	if !p.nano {
		frac *= 1000
	}
	return data, sec*1e9 + frac, p.lt, nil
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
	r      *bufio.Reader
	bo     binary.ByteOrder
	ifaces []ngInterface
	buf    []byte
	lastTs int64
}

func newNgReader(r *bufio.Reader) (*ngReader, error) {
	return &ngReader{r: r, bo: binary.LittleEndian}, nil
}

func (g *ngReader) next() ([]byte, int64, LinkType, error) {
	for {
		var h [8]byte
		if _, err := io.ReadFull(g.r, h[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return nil, 0, 0, err
		}
		typ := binary.LittleEndian.Uint32(h[0:4])
		if typ == 0x0a0d0d0a {
			// Section header: its byte-order magic decides how everything after it is read.
			var bom [4]byte
			if _, err := io.ReadFull(g.r, bom[:]); err != nil {
				return nil, 0, 0, io.EOF
			}
			switch binary.LittleEndian.Uint32(bom[:]) {
			case 0x1a2b3c4d:
				g.bo = binary.LittleEndian
			case 0x4d3c2b1a:
				g.bo = binary.BigEndian
			default:
				return nil, 0, 0, errors.New("pcapng section header with an unknown byte-order magic")
			}
			g.ifaces = g.ifaces[:0]
			total := g.bo.Uint32(h[4:8])
			if total < 16 || total > maxCaptureRecord {
				return nil, 0, 0, fmt.Errorf("pcapng section header of %d bytes: the file is corrupt", total)
			}
			if _, err := g.r.Discard(int(total) - 12); err != nil {
				return nil, 0, 0, io.EOF
			}
			continue
		}
		typ = g.bo.Uint32(h[0:4])
		total := g.bo.Uint32(h[4:8])
		if total < 12 || total > maxCaptureRecord || total%4 != 0 {
			return nil, 0, 0, fmt.Errorf("pcapng block of %d bytes: the file is corrupt", total)
		}
		n := int(total) - 8
		if cap(g.buf) < n {
			g.buf = make([]byte, n, max(n, 65536))
		}
		body := g.buf[:n]
		if _, err := io.ReadFull(g.r, body); err != nil {
			return nil, 0, 0, io.EOF
		}
		body = body[:n-4] // trailing total length
		switch typ {
		case 1: // interface description
			if len(body) < 8 {
				return nil, 0, 0, errors.New("pcapng interface block too short: the file is corrupt")
			}
			in := ngInterface{lt: LinkType(g.bo.Uint16(body[0:2])), mul: 1000, div: 1}
			g.ifOptions(body[8:], &in)
			g.ifaces = append(g.ifaces, in)
		case 6, 2: // enhanced packet, obsolete packet
			if len(body) < 20 {
				return nil, 0, 0, errors.New("pcapng packet block too short: the file is corrupt")
			}
			var id uint32
			if typ == 6 {
				id = g.bo.Uint32(body[0:4])
			} else {
				id = uint32(g.bo.Uint16(body[0:2]))
			}
			if int(id) >= len(g.ifaces) {
				return nil, 0, 0, fmt.Errorf("pcapng packet for interface %d, which was not described", id)
			}
			in := &g.ifaces[id]
			raw := uint64(g.bo.Uint32(body[4:8]))<<32 | uint64(g.bo.Uint32(body[8:12]))
			capLen := int(g.bo.Uint32(body[12:16]))
			if capLen > len(body)-20 {
				return nil, 0, 0, errors.New("pcapng packet longer than its block: the file is corrupt")
			}
			ts := ngTime(raw, in)
			g.lastTs = ts
			return body[20 : 20+capLen], ts, in.lt, nil
		case 3: // simple packet: no timestamp, the previous one is the best there is
			if len(body) < 4 || len(g.ifaces) == 0 {
				continue
			}
			orig := int(g.bo.Uint32(body[0:4]))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			return data, g.lastTs, g.ifaces[0].lt, nil
		}
	}
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
