package tap

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// expectVXLAN is what the client in scripts/make-tap-fixtures.sh did over the VXLAN tunnel.
func expectVXLAN() []string {
	k := keyTag
	return []string{
		"c1 text set stored " + k("vx:1") + " v3",
		"c1 text set stored " + k("vx:2") + " v3000 ttl60",
		"c1 text get hit " + k("vx:1") + " v3",
		"c1 text get miss " + k("vx:nope"),
		"c1 text get hit " + k("vx:1") + " v3",
		"c1 text get hit " + k("vx:2") + " v3000",
		"c1 text get miss " + k("vx:nope"),
		"c1 text delete deleted " + k("vx:1"),
	}
}

// TestTapEncap_VXLAN decodes a kernel VXLAN tunnel captured on its underlay and, at the same time, on the
// tunnel device: the same events, with no loss.
func TestTapEncap_VXLAN(t *testing.T) {
	inner, ist := decodeFixture(t, "vxlan-inner.pcap")
	diffEvents(t, "vxlan-inner.pcap", evStrings(inner), expectVXLAN())
	outer, ost := decodeFixture(t, "vxlan.pcap")
	diffEvents(t, "vxlan.pcap", evStrings(outer), evStrings(inner))
	if ost.Gaps != [2]uint64{} || ost.Lost != 0 || ost.Flows != 1 || ost.Bytes != ist.Bytes {
		t.Fatalf("vxlan.pcap: %s; unencapsulated: %s", ost.String(), ist.String())
	}
	if ost.Tunnelled[tunnelVXLAN] != ost.Packets {
		t.Fatalf("vxlan.pcap: %d of %d packets counted as VXLAN", ost.Tunnelled[tunnelVXLAN], ost.Packets)
	}
}

// TestTapEncap_GRE decodes meta.pcap carried by GRE, ERSPAN type II and ERSPAN type III (over IPv6): the
// events are the unencapsulated capture's.
func TestTapEncap_GRE(t *testing.T) {
	want := expectMeta()
	for _, fx := range []struct {
		name string
		kind int
	}{{"gre.pcap", tunnelGRE}, {"erspan2.pcap", tunnelERSPAN}, {"erspan3.pcap", tunnelERSPAN}} {
		evs, st := decodeFixture(t, fx.name)
		diffEvents(t, fx.name, evStrings(evs), want)
		if st.Gaps != [2]uint64{} || st.Tunnelled[fx.kind] != st.Packets {
			t.Fatalf("%s: %s; tunnelled %v", fx.name, st.String(), st.Tunnelled)
		}
	}
}

// TestTapEncap_Modes: encap = none ignores tunnels (counted), vxlan and gre decode only their own.
func TestTapEncap_Modes(t *testing.T) {
	f := func(encap, fixture string, wantEvents bool) {
		t.Helper()
		cfg := testConfig(fixturePort(t))
		cfg.Encap = encap
		evs, st := runTap(t, cfg, readCapture(t, filepath.Join("testdata", fixture)))
		if got := len(evs) > 0; got != wantEvents {
			t.Fatalf("encap %s, %s: %d events: %s", encap, fixture, len(evs), st.String())
		}
		if !wantEvents && st.EncapIgnored != st.Packets {
			t.Fatalf("encap %s, %s: %d of %d packets counted as tunnelled and ignored", encap, fixture,
				st.EncapIgnored, st.Packets)
		}
	}
	f("auto", "vxlan.pcap", true)
	f("auto", "erspan3.pcap", true)
	f("none", "vxlan.pcap", false)
	f("none", "gre.pcap", false)
	f("vxlan", "vxlan.pcap", true)
	f("vxlan", "erspan2.pcap", false)
	f("gre", "gre.pcap", true)
	f("gre", "erspan2.pcap", true)
	f("gre", "vxlan.pcap", false)
	f("none", "meta.pcap", true)
}

// TestTapCaptureFilter: the default live filter lets the tunnels of the encap mode through, and only them.
func TestTapCaptureFilter(t *testing.T) {
	if !LiveCapture {
		t.Skip("a static build (CGO_ENABLED=0) has no libpcap to compile filters")
	}
	port := fixturePort(t)
	first := func(name string) capPacket {
		t.Helper()
		return readCapture(t, filepath.Join("testdata", name))[0]
	}
	vx, gre, e3, plain := first("vxlan.pcap"), first("gre.pcap"), first("erspan3.pcap"), first("meta.pcap")
	f := func(encap string, want map[string]bool) {
		t.Helper()
		cfg := testConfig(port)
		cfg.Encap = encap
		expr := CaptureFilter(&cfg)
		b, err := compileFilter(layers.LinkTypeEthernet, 65535, expr)
		if err != nil {
			t.Fatalf("encap %s: filter %q does not compile: %v", encap, expr, err)
		}
		for name, p := range map[string]capPacket{"vxlan": vx, "gre": gre, "erspan3": e3, "plain": plain} {
			if got := b.Matches(captureInfo(p.ts, len(p.data)), p.data); got != want[name] {
				t.Fatalf("encap %s: filter %q matches a %s packet: %v, want %v", encap, expr, name, got, want[name])
			}
		}
	}
	f("auto", map[string]bool{"vxlan": true, "gre": true, "erspan3": true, "plain": true})
	f("none", map[string]bool{"plain": true})
	f("vxlan", map[string]bool{"vxlan": true, "plain": true})
	f("gre", map[string]bool{"gre": true, "erspan3": true, "plain": true})
	cfg := testConfig(port)
	cfg.BPF = "udp"
	if got := CaptureFilter(&cfg); got != "udp" {
		t.Fatalf("bpf set: CaptureFilter = %q", got)
	}
}

// TestTapDecodeEncap builds tunnel headers around one TCP segment of meta.pcap: every supported form decodes
// to the same segment; damaged or foreign ones do not.
func TestTapDecodeEncap(t *testing.T) {
	var p capPacket
	for _, q := range readCapture(t, filepath.Join("testdata", "meta.pcap")) {
		if tcpPayloadLen(q) > 0 {
			p = q
			break
		}
	}
	eth, ip := p.data, p.data[14:]
	want := segmentOf(t, p)
	ok := func(what string, frame []byte, tunnels uint8) {
		t.Helper()
		var s tcpSegment
		if r := decodeFrame(layers.LinkTypeEthernet, frame, &s, tunnelsAll); r != decodeOK {
			t.Fatalf("%s: result %d", what, r)
		}
		if s.seq != want.seq || s.sport != want.sport || !bytes.Equal(s.payload, want.payload) || s.tunnels != tunnels {
			t.Fatalf("%s: decoded %+v", what, s)
		}
	}
	bad := func(what string, frame []byte, wantResult decodeResult) {
		t.Helper()
		var s tcpSegment
		if r := decodeFrame(layers.LinkTypeEthernet, frame, &s, tunnelsAll); r != wantResult {
			t.Fatalf("%s: result %d, want %d", what, r, wantResult)
		}
	}
	vxlan := func(flags byte, inner []byte) []byte {
		return udp4(4789, append([]byte{flags, 0, 0, 0, 0, 0, 42, 0}, inner...))
	}
	gre := func(flags uint16, proto uint16, extra []byte, inner []byte) []byte {
		g := binary.BigEndian.AppendUint16(nil, flags)
		g = binary.BigEndian.AppendUint16(g, proto)
		return outer4(47, append(append(g, extra...), inner...))
	}
	ok("VXLAN over IPv4", vxlan(0x08, eth), 1<<tunnelVXLAN)
	ok("VXLAN over IPv6", outerEth(0x86dd, ip6(17, udpHdr(4789, append([]byte{8, 0, 0, 0, 0, 0, 42, 0}, eth...)))),
		1<<tunnelVXLAN)
	ok("VXLAN with a VLAN tag inside", vxlan(0x08, append(append(append([]byte(nil), eth[:12]...), 0x81, 0, 0, 5),
		eth[12:]...)), 1<<tunnelVXLAN)
	ok("GRE carrying IPv4", gre(0, 0x0800, nil, ip), 1<<tunnelGRE)
	ok("GRE with checksum, key and sequence", gre(0xb000, 0x0800, make([]byte, 12), ip), 1<<tunnelGRE)
	ok("GRE over IPv6", outerEth(0x86dd, ip6(47, append([]byte{0, 0, 0x08, 0}, ip...))), 1<<tunnelGRE)
	ok("gretap (transparent Ethernet bridging)", gre(0x2000, 0x6558, make([]byte, 4), eth), 1<<tunnelGRE)
	ok("ERSPAN type I", gre(0, 0x88be, nil, eth), 1<<tunnelERSPAN)
	ok("ERSPAN type II", gre(0x1000, 0x88be, append(make([]byte, 4), 0x10, 0, 0, 1, 0, 0, 0, 0), eth), 1<<tunnelERSPAN)
	ok("ERSPAN type III", gre(0x1000, 0x22eb, append(make([]byte, 4), 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), eth),
		1<<tunnelERSPAN)
	ok("ERSPAN type III with subheader", gre(0x1000, 0x22eb, append(make([]byte, 4), 0x20, 0, 0, 1, 0, 0, 0, 0, 0,
		0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 0, 0), eth), 1<<tunnelERSPAN)
	ok("VXLAN inside GRE", gre(0, 0x0800, nil, vxlan(0x08, eth)[14:]), 1<<tunnelGRE|1<<tunnelVXLAN)

	bad("VXLAN without the I flag", vxlan(0, eth), decodeMalformed)
	bad("VXLAN cut in its header", vxlan(0x08, nil)[:14+20+8+4], decodeMalformed)
	bad("GRE version 1 (PPTP)", gre(1, 0x880b, make([]byte, 4), ip), decodeNotTCP)
	bad("GRE with routing", gre(0x4000, 0x0800, make([]byte, 4), ip), decodeNotTCP)
	bad("GRE carrying something else", gre(0, 0x8847, nil, ip), decodeNotTCP)
	bad("GRE cut in its header", gre(0xb000, 0x0800, make([]byte, 6), nil), decodeMalformed)
	bad("ERSPAN II cut", gre(0x1000, 0x88be, make([]byte, 8), nil), decodeMalformed)
	bad("UDP to another port", udp4(4790, append([]byte{8, 0, 0, 0, 0, 0, 42, 0}, eth...)), decodeNotTCP)
	deep := eth
	for i := 0; i < maxEncapDepth+1; i++ {
		deep = vxlan(0x08, deep)
	}
	bad("tunnels nested too deep", deep, decodeMalformed)
	var s tcpSegment
	if r := decodeFrame(layers.LinkTypeEthernet, vxlan(0x08, eth), &s, 0); r != decodeTunnelIgnored {
		t.Fatalf("encap none: VXLAN gave result %d", r)
	}
	if r := decodeFrame(layers.LinkTypeEthernet, gre(0, 0x0800, nil, ip), &s, 1<<tunnelVXLAN); r !=
		decodeTunnelIgnored {
		t.Fatalf("encap vxlan: GRE gave result %d", r)
	}
}

func outerEth(etype uint16, payload []byte) []byte {
	h := make([]byte, 12, 14+len(payload))
	h = binary.BigEndian.AppendUint16(h, etype)
	return append(h, payload...)
}

func outer4(proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h[8], h[9] = 64, proto
	copy(h[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	return outerEth(0x0800, append(h, payload...))
}

func ip6(next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	h[23], h[39] = 1, 2
	return append(h, payload...)
}

func udpHdr(dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], 50000)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func udp4(dport uint16, payload []byte) []byte { return outer4(17, udpHdr(dport, payload)) }

// TestTapEncap_Names: every encap mode the config accepts has its tunnels.
func TestTapEncap_Names(t *testing.T) {
	f := func(name string, want uint8) {
		t.Helper()
		if got := tunnelsFor(name); got != want {
			t.Fatalf("tunnelsFor(%q) = %b, want %b", name, got, want)
		}
	}
	f("auto", tunnelsAll)
	f("", tunnelsAll)
	f("none", 0)
	f("vxlan", 1<<tunnelVXLAN)
	f("gre", 1<<tunnelGRE|1<<tunnelERSPAN)
}
