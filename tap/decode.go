// Packet decoding: link layer, IPv4/IPv6 and TCP headers, by hand. The tap needs a handful of header fields
// per packet and nothing else, so it reads them in place instead of building gopacket layers: no allocation,
// no per-layer interface calls, and every link type a capture of memcached traffic plausibly has (Ethernet with
// VLAN tags, Linux cooked v1/v2, BSD loopback, raw IP). Mirrored traffic often arrives in a tunnel (VXLAN from
// cloud traffic mirroring, GRE and ERSPAN from switches' remote SPAN): those are opened here too, and the
// packet inside is decoded like a captured one.
package tap

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"

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
	tunnels  uint8  // bits 1<<tunnelVXLAN, … of the tunnels the segment was carried in
}

// Tunnels the tap can take packets out of: indexes into Stats.Tunnelled, and bits of tcpSegment.tunnels and of
// the set a Tap decodes (configs.Tap.Encap).
const (
	tunnelVXLAN  = iota // UDP port 4789, RFC 7348: what AWS VPC Traffic Mirroring delivers
	tunnelGRE           // GRE (RFC 2784, 2890) carrying IP or, as gretap, Ethernet
	tunnelERSPAN        // remote SPAN in GRE: ERSPAN type I, II (0x88be) and III (0x22eb)
	numTunnels

	tunnelsAll uint8 = 1<<tunnelVXLAN | 1<<tunnelGRE | 1<<tunnelERSPAN
)

// vxlanPort is VXLAN's IANA port. Linux's own default (8472) predates it; mirror targets use 4789.
const vxlanPort = 4789

// maxEncapDepth bounds tunnels inside tunnels, so a crafted packet cannot make decoding recurse for long.
const maxEncapDepth = 3

// tunnelsFor returns the tunnels decoded in encap mode name (configs.Tap.Encap, already validated).
func tunnelsFor(name string) uint8 {
	switch name {
	case "none":
		return 0
	case "vxlan":
		return 1 << tunnelVXLAN
	case "gre":
		return 1<<tunnelGRE | 1<<tunnelERSPAN
	}
	return tunnelsAll
}

// decodeResult says why a packet was not a usable TCP segment.
type decodeResult uint8

const (
	decodeOK decodeResult = iota
	decodeNotTCP
	decodeFragment
	decodeMalformed
	decodeUnsupportedLink
	decodeTunnelIgnored // a tunnel the encap setting leaves closed
)

// linkSupported reports whether decodePacket reads frames of link type lt.
func linkSupported(lt LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeLoop, layers.LinkTypeLinuxSLL,
		linkTypeLinuxSLL2, layers.LinkTypeRaw, linkTypeIPv4, linkTypeIPv6, linkTypeRawAlt1, linkTypeRawAlt2:
		return true
	}
	return false
}

// linkTypeError is the error for a capture of a link type the tap cannot decode.
func linkTypeError(lt LinkType) error {
	name := ""
	if s := lt.String(); s != "" && !strings.HasPrefix(s, "Unknown") {
		name = " (" + s + ")"
	}
	return fmt.Errorf("link type %d%s is not one the tap decodes (Ethernet, Linux cooked v1/v2, BSD loopback, "+
		"raw IP): capture on an interface that has one of them, or on all with tcpdump -i any (Linux cooked)",
		uint16(lt), name)
}

// decodePacket fills s from one captured frame of link type lt, taking it out of any tunnel.
func decodePacket(lt LinkType, data []byte, s *tcpSegment) decodeResult {
	return decodeFrame(lt, data, s, tunnelsAll)
}

// decodeFrame fills s from one captured frame of link type lt, taking it out of the tunnels in the set tunnels
// (bits 1<<tunnelVXLAN, …): the flow is the innermost TCP connection's.
func decodeFrame(lt LinkType, data []byte, s *tcpSegment, tunnels uint8) decodeResult {
	var etype uint16
	switch lt {
	case layers.LinkTypeEthernet:
		return decodeEthernet(data, s, tunnels, 0)
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
	s.tunnels = 0
	return decodeIP(etype, data, s, tunnels, 0)
}

// decodeEthernet decodes an Ethernet frame (VLAN and QinQ tags skipped): the capture's own, or one a tunnel
// carried (depth > 0).
func decodeEthernet(data []byte, s *tcpSegment, tunnels uint8, depth int) decodeResult {
	if len(data) < 14 {
		return decodeMalformed
	}
	etype := binary.BigEndian.Uint16(data[12:14])
	data = data[14:]
	for etype == 0x8100 || etype == 0x88a8 || etype == 0x9100 {
		if len(data) < 4 {
			return decodeMalformed
		}
		etype = binary.BigEndian.Uint16(data[2:4])
		data = data[4:]
	}
	if depth == 0 {
		s.tunnels = 0
	}
	return decodeIP(etype, data, s, tunnels, depth)
}

// decodeIP decodes an IPv4 or IPv6 packet down to its TCP segment, or into the tunnel it carries.
func decodeIP(etype uint16, data []byte, s *tcpSegment, tunnels uint8, depth int) decodeResult {
	var l4 []byte
	var l4Wire int
	var proto byte
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
		proto = data[9]
		if proto != 6 && proto != 17 && proto != 47 {
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
		l4 = data[ihl:min(total, len(data))]
		l4Wire = total - ihl
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
		for next != 6 && next != 17 && next != 47 {
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
		proto, l4, l4Wire = next, rest, wire
	default:
		return decodeNotTCP
	}
	switch proto {
	case 17:
		return decodeUDP(l4, s, tunnels, depth)
	case 47:
		return decodeGRE(l4, s, tunnels, depth)
	}
	return decodeTCP(l4, l4Wire, s)
}

// decodeTCP reads the TCP header of tcp, of which tcpWire bytes were on the wire.
func decodeTCP(tcp []byte, tcpWire int, s *tcpSegment) decodeResult {
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

// enter checks that tunnel kind may be opened at depth and records it in s.
func enter(kind int, s *tcpSegment, tunnels uint8, depth int) decodeResult {
	if tunnels&(1<<kind) == 0 {
		return decodeTunnelIgnored
	}
	if depth >= maxEncapDepth {
		return decodeMalformed
	}
	s.tunnels |= 1 << kind
	return decodeOK
}

// decodeUDP opens VXLAN (RFC 7348): an 8-byte header whose I flag says a VNI follows, then an Ethernet frame.
// Any other UDP is not memcached traffic the tap records.
func decodeUDP(udp []byte, s *tcpSegment, tunnels uint8, depth int) decodeResult {
	if len(udp) < 8 {
		return decodeMalformed
	}
	if binary.BigEndian.Uint16(udp[2:4]) != vxlanPort {
		return decodeNotTCP
	}
	if r := enter(tunnelVXLAN, s, tunnels, depth); r != decodeOK {
		return r
	}
	vx := udp[8:]
	if len(vx) < 8 || vx[0]&0x08 == 0 {
		return decodeMalformed
	}
	return decodeEthernet(vx[8:], s, tunnels, depth+1)
}

// decodeGRE opens GRE version 0 (RFC 2784 with RFC 2890's key and sequence number): IPv4 or IPv6 inside, an
// Ethernet frame (gretap, 0x6558), or remote SPAN: ERSPAN type I (0x88be without a sequence number) and II
// (0x88be, an 8-byte header) carry the mirrored Ethernet frame, type III (0x22eb) a 12-byte header, 8 bytes more
// when its O flag announces the platform-specific subheader, then the frame.
func decodeGRE(gre []byte, s *tcpSegment, tunnels uint8, depth int) decodeResult {
	if len(gre) < 4 {
		return decodeMalformed
	}
	flags, proto := binary.BigEndian.Uint16(gre[0:2]), binary.BigEndian.Uint16(gre[2:4])
	if flags&0x0007 != 0 || flags&0x4000 != 0 {
		return decodeNotTCP // version 1 (PPTP) or source routing (RFC 1701): not a mirror or a tunnel of ours
	}
	n := 4 + 4*bits.OnesCount16(flags&0xb000) // checksum (+ reserved), key, sequence number: 4 bytes each
	kind := tunnelGRE
	if proto == 0x88be || proto == 0x22eb {
		kind = tunnelERSPAN
	}
	switch proto {
	case 0x0800, 0x86dd, 0x6558, 0x88be, 0x22eb:
	default:
		return decodeNotTCP
	}
	if r := enter(kind, s, tunnels, depth); r != decodeOK {
		return r
	}
	if len(gre) < n {
		return decodeMalformed
	}
	inner := gre[n:]
	switch proto {
	case 0x0800, 0x86dd:
		return decodeIP(proto, inner, s, tunnels, depth+1)
	case 0x88be:
		if flags&0x1000 != 0 { // type II; type I has no sequence number and no header of its own
			if len(inner) < 8 {
				return decodeMalformed
			}
			inner = inner[8:]
		}
	case 0x22eb:
		if len(inner) < 12 {
			return decodeMalformed
		}
		h := 12
		if inner[11]&0x01 != 0 {
			h += 8
		}
		if len(inner) < h {
			return decodeMalformed
		}
		if ft := inner[10] >> 2 & 0x1f; ft != 0 {
			// Frame type 2 is a bare IP packet.
			inner = inner[h:]
			return decodeIP(ipVersionEtype(inner), inner, s, tunnels, depth+1)
		}
		inner = inner[h:]
	}
	return decodeEthernet(inner, s, tunnels, depth+1)
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
