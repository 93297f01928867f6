// Command fixturegen derives tap fixtures from real captures, for scripts/make-tap-fixtures.sh. It reads and
// writes classic pcap (Ethernet) and changes nothing but what its mode says:
//
//	wrap -mode gre|erspan2|erspan3 -in meta.pcap -out gre.pcap
//	    puts every packet in a tunnel, as a remote-SPAN or GRE collector receives it:
//	      gre      IPv4, GRE with checksum and key bits, protocol IPv4: the inner IP packet (an L3 GRE tunnel)
//	      erspan2  IPv4, GRE with a sequence number, ERSPAN type II (0x88be): the inner Ethernet frame
//	      erspan3  IPv6, GRE with a sequence number, ERSPAN type III (0x22eb) with the optional 8-byte
//	               platform-specific subheader: the inner Ethernet frame
//	drop -in full.pcap -out lost.pcap -port P -payload 'STORED\r\n' -nth N
//	    removes the Nth (from 1) server→client segment (source port P) whose TCP payload is exactly the
//	    payload (Go escapes allowed), as if the capture had lost it
//
// It lives under testdata so `go build ./...` and the deps test skip it.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

type packet struct {
	hdr  [16]byte // the record header as read; lengths are rewritten on output
	data []byte
}

type capture struct {
	hdr  [24]byte
	bo   binary.ByteOrder
	pkts []packet
}

func readPcap(path string) (*capture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, errors.New("too short for a pcap header")
	}
	c := &capture{}
	copy(c.hdr[:], b)
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		c.bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		c.bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s is not a classic pcap file", path)
	}
	if lt := c.bo.Uint32(b[20:24]) & 0xffff; lt != 1 {
		return nil, fmt.Errorf("%s has link type %d; fixturegen reads Ethernet (1) only", path, lt)
	}
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, fmt.Errorf("%s: record header cut at byte %d", path, off)
		}
		var p packet
		copy(p.hdr[:], b[off:])
		n := int(c.bo.Uint32(p.hdr[8:12]))
		if off+16+n > len(b) {
			return nil, fmt.Errorf("%s: record cut at byte %d", path, off)
		}
		p.data = b[off+16 : off+16+n]
		c.pkts = append(c.pkts, p)
		off += 16 + n
	}
	return c, nil
}

func writePcap(path string, c *capture) error {
	var out bytes.Buffer
	hdr := c.hdr
	if c.bo.Uint32(hdr[16:20]) < 262144 {
		c.bo.PutUint32(hdr[16:20], 262144) // wrapping makes packets longer than the original snap length
	}
	out.Write(hdr[:])
	for _, p := range c.pkts {
		h := p.hdr
		wrapped := uint32(len(p.data)) - c.bo.Uint32(p.hdr[8:12])
		c.bo.PutUint32(h[8:12], uint32(len(p.data)))
		c.bo.PutUint32(h[12:16], c.bo.Uint32(p.hdr[12:16])+wrapped)
		out.Write(h[:])
		out.Write(p.data)
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// Outer addresses: documentation ranges, as a collector on a mirror session would see them.
var (
	outerMACs = []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01}
	outer4Src = []byte{192, 0, 2, 1}
	outer4Dst = []byte{192, 0, 2, 2}
	outer6Src = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	outer6Dst = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
)

func ipv4(payload []byte, proto byte, id uint16) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	h[8], h[9] = 64, proto
	copy(h[12:], outer4Src)
	copy(h[16:], outer4Dst)
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

func ipv6(payload []byte, next byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	copy(h[8:], outer6Src)
	copy(h[24:], outer6Dst)
	return append(h, payload...)
}

func ethernet(payload []byte, etype uint16) []byte {
	h := append([]byte(nil), outerMACs...)
	h = binary.BigEndian.AppendUint16(h, etype)
	return append(h, payload...)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// wrap returns the outer frame carrying inner (an Ethernet frame), packet number i of the session.
func wrap(mode string, inner []byte, i int) ([]byte, error) {
	seq := uint32(i + 1)
	switch mode {
	case "gre":
		if len(inner) < 14 || binary.BigEndian.Uint16(inner[12:14]) != 0x0800 {
			return nil, errors.New("gre mode wants IPv4 over Ethernet inside")
		}
		// C and K bits: checksum (over GRE header and payload) + reserved, then the key.
		g := []byte{0xa0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0x30, 0x39}
		g = append(g, inner[14:]...)
		binary.BigEndian.PutUint16(g[4:], checksum(g))
		return ethernet(ipv4(g, 47, uint16(i)), 0x0800), nil
	case "erspan2":
		g := []byte{0x10, 0x00, 0x88, 0xbe}
		g = binary.BigEndian.AppendUint32(g, seq)
		// ERSPAN II: version 1, VLAN 0, COS 0, En 3 (frames kept as received), T 0, session 123; index 7.
		g = append(g, 0x10, 0x00, 0x18, 123, 0x00, 0x00, 0x00, 0x07)
		g = append(g, inner...)
		return ethernet(ipv4(g, 47, uint16(i)), 0x0800), nil
	case "erspan3":
		g := []byte{0x10, 0x00, 0x22, 0xeb}
		g = binary.BigEndian.AppendUint32(g, seq)
		// ERSPAN III: version 2, VLAN 0, session 77, a timestamp, SGT 0, then P=0 FT=0 (Ethernet) HW ID 5
		// D=0 Gra=3 O=1: an 8-byte platform-specific subheader follows.
		g = append(g, 0x20, 0x00, 0x00, 77)
		g = binary.BigEndian.AppendUint32(g, uint32(i)*1000)
		g = append(g, 0x00, 0x00, 0x00, 5<<4|3<<1|1)
		g = append(g, 0x0c, 0, 0, 0, 0, 0, 0, byte(i)) // platform ID 3 with a port/timestamp word
		g = append(g, inner...)
		return ethernet(ipv6(g, 47), 0x86dd), nil
	}
	return nil, fmt.Errorf("unknown wrap mode %q (want gre, erspan2 or erspan3)", mode)
}

// payloadOf returns the TCP source port and payload of an IPv4-over-Ethernet packet (ok false otherwise).
func payloadOf(d []byte) (sport uint16, payload []byte, ok bool) {
	if len(d) < 34 || binary.BigEndian.Uint16(d[12:14]) != 0x0800 || d[23] != 6 {
		return 0, nil, false
	}
	ip := d[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total > len(ip) || len(ip) < ihl+20 {
		return 0, nil, false
	}
	tcp := ip[ihl:total]
	doff := int(tcp[12]>>4) * 4
	return binary.BigEndian.Uint16(tcp[0:2]), tcp[doff:], true
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: fixturegen wrap|drop [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	in := fs.String("in", "", "input pcap")
	out := fs.String("out", "", "output pcap")
	mode := fs.String("mode", "", "wrap: gre, erspan2 or erspan3")
	port := fs.Int("port", 0, "drop: the server's TCP port")
	payload := fs.String("payload", "", "drop: the exact payload of the segment to remove (Go escapes)")
	nth := fs.Int("nth", 1, "drop: which matching segment, from 1")
	fs.Parse(os.Args[2:])
	c, err := readPcap(*in)
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "wrap":
		for i := range c.pkts {
			if c.pkts[i].data, err = wrap(*mode, c.pkts[i].data, i); err != nil {
				fail(fmt.Errorf("packet %d: %w", i, err))
			}
		}
	case "drop":
		want, err := strconv.Unquote(`"` + *payload + `"`)
		if err != nil {
			fail(fmt.Errorf("-payload %q: %w", *payload, err))
		}
		seen, at := 0, -1
		for i, p := range c.pkts {
			if sp, pl, ok := payloadOf(p.data); ok && int(sp) == *port && string(pl) == want {
				if seen++; seen == *nth {
					at = i
					break
				}
			}
		}
		if at < 0 {
			fail(fmt.Errorf("%s: only %d segments from port %d carry %q, want the %dth", *in, seen, *port, want,
				*nth))
		}
		c.pkts = append(c.pkts[:at], c.pkts[at+1:]...)
	default:
		fail(fmt.Errorf("unknown command %q: want wrap or drop", os.Args[1]))
	}
	if err := writePcap(*out, c); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fixturegen:", err)
	os.Exit(1)
}
