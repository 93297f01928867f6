// Packet decoding: link layer, IPv4/IPv6 and TCP headers, by hand. The tap needs a handful of header fields
// per packet and nothing else, so it reads them in place instead of building gopacket layers: no allocation,
// no per-layer interface calls, and every link type a capture of memcached traffic plausibly has (Ethernet with
// VLAN tags, Linux cooked v1/v2, BSD loopback, raw IP).
package tap

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// TCP flags the tap looks at.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Link types not named in gopacket/layers.
const (
	linkTypeLinuxSLL2 layers.LinkType = 276
	linkTypeIPv4      layers.LinkType = 228
	linkTypeIPv6      layers.LinkType = 229
	linkTypeRawAlt1   layers.LinkType = 12 // DLT_RAW on OpenBSD
	linkTypeRawAlt2   layers.LinkType = 14 // DLT_RAW on BSD/OS
)

// segment is one decoded TCP segment. payload aliases the capture buffer and is valid only until the next
// packet is read.
type tcpSegment struct {
	v6       bool
	src, dst [16]byte
	sport    uint16
	dport    uint16
	seq, ack uint32
	flags    uint8
	payload  []byte // captured payload bytes
	wireLen  int    // payload length on the wire; > len(payload) when the snap length cut the packet
}

// decodeResult says why a packet was not a usable TCP segment.
type decodeResult uint8

const (
	decodeOK decodeResult = iota
	decodeNotTCP
	decodeFragment
	decodeMalformed
	decodeUnsupportedLink
)

// decodePacket fills s from one captured frame of link type lt.
func decodePacket(lt layers.LinkType, data []byte, s *tcpSegment) decodeResult {
	var etype uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return decodeMalformed
		}
		etype = binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		for etype == 0x8100 || etype == 0x88a8 || etype == 0x9100 {
			if len(data) < 4 {
				return decodeMalformed
			}
			etype = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		}
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return decodeMalformed
		}
		data = data[4:]
		etype = ipVersionEtype(data)
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return decodeMalformed
		}
		etype = binary.BigEndian.Uint16(data[14:16])
		data = data[16:]
	case linkTypeLinuxSLL2:
		if len(data) < 20 {
			return decodeMalformed
		}
		etype = binary.BigEndian.Uint16(data[0:2])
		data = data[20:]
	case layers.LinkTypeRaw, linkTypeIPv4, linkTypeIPv6, linkTypeRawAlt1, linkTypeRawAlt2:
		etype = ipVersionEtype(data)
	default:
		return decodeUnsupportedLink
	}
	var tcp []byte
	var tcpWire int
	switch etype {
	case 0x0800:
		if len(data) < 20 || data[0]>>4 != 4 {
			return decodeMalformed
		}
		ihl := int(data[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(data[2:4]))
		if ihl < 20 || total < ihl || len(data) < ihl {
			return decodeMalformed
		}
		if binary.BigEndian.Uint16(data[6:8])&0x3fff != 0 {
			return decodeFragment // more-fragments set or a non-zero offset
		}
		if data[9] != 6 {
			return decodeNotTCP
		}
		s.v6 = false
		s.src, s.dst = [16]byte{}, [16]byte{}
		copy(s.src[:4], data[12:16])
		copy(s.dst[:4], data[16:20])
		// total may be 0 with TSO on some captures; then the captured length is all there is.
		if total == 0 {
			total = len(data)
		}
		tcp = data[ihl:min(total, len(data))]
		tcpWire = total - ihl
	case 0x86dd:
		if len(data) < 40 || data[0]>>4 != 6 {
			return decodeMalformed
		}
		plen := int(binary.BigEndian.Uint16(data[4:6]))
		next := data[6]
		s.v6 = true
		copy(s.src[:], data[8:24])
		copy(s.dst[:], data[24:40])
		rest := data[40:]
		if plen == 0 {
			plen = len(rest) // jumbogram or TSO: trust the capture
		}
		wire := plen
		if len(rest) > plen {
			rest = rest[:plen]
		}
		for next != 6 {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return decodeMalformed
				}
				l := (int(rest[1]) + 1) * 8
				if len(rest) < l {
					return decodeMalformed
				}
				next, rest, wire = rest[0], rest[l:], wire-l
			case 51: // authentication header
				if len(rest) < 8 {
					return decodeMalformed
				}
				l := (int(rest[1]) + 2) * 4
				if len(rest) < l {
					return decodeMalformed
				}
				next, rest, wire = rest[0], rest[l:], wire-l
			case 44:
				return decodeFragment
			default:
				return decodeNotTCP
			}
		}
		tcp, tcpWire = rest, wire
	default:
		return decodeNotTCP
	}
	if len(tcp) < 20 {
		return decodeMalformed
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || len(tcp) < doff || tcpWire < doff {
		return decodeMalformed
	}
	s.sport = binary.BigEndian.Uint16(tcp[0:2])
	s.dport = binary.BigEndian.Uint16(tcp[2:4])
	s.seq = binary.BigEndian.Uint32(tcp[4:8])
	s.ack = binary.BigEndian.Uint32(tcp[8:12])
	s.flags = tcp[13]
	s.payload = tcp[doff:]
	s.wireLen = tcpWire - doff
	if s.wireLen < len(s.payload) {
		// Link-layer padding after a short IP packet: the IP length is the truth.
		s.payload = s.payload[:s.wireLen]
	}
	return decodeOK
}

// ipVersionEtype maps a raw IP packet's version nibble to its EtherType.
func ipVersionEtype(data []byte) uint16 {
	if len(data) == 0 {
		return 0
	}
	switch data[0] >> 4 {
	case 4:
		return 0x0800
	case 6:
		return 0x86dd
	}
	return 0
}
