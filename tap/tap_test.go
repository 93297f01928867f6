package tap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// writePcapng writes packets as pcapng: one section, one interface with nanosecond resolution.
func writePcapng(t testing.TB, path string, pkts []capPacket) {
	t.Helper()
	var b bytes.Buffer
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		binary.Write(&b, binary.LittleEndian, typ)
		binary.Write(&b, binary.LittleEndian, n)
		b.Write(body)
		binary.Write(&b, binary.LittleEndian, n)
	}
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	shb = binary.LittleEndian.AppendUint16(shb, 1)
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := binary.LittleEndian.AppendUint16(nil, uint16(pkts[0].lt))
	idb = append(idb, 0, 0)
	idb = binary.LittleEndian.AppendUint32(idb, 262144)
	idb = append(idb, 9, 0, 1, 0, 9, 0, 0, 0) // if_tsresol = 10^-9
	idb = append(idb, 0, 0, 0, 0)             // opt_endofopt
	block(1, idb)
	for _, p := range pkts {
		e := binary.LittleEndian.AppendUint32(nil, 0)
		e = binary.LittleEndian.AppendUint32(e, uint32(uint64(p.ts)>>32))
		e = binary.LittleEndian.AppendUint32(e, uint32(uint64(p.ts)))
		e = binary.LittleEndian.AppendUint32(e, uint32(len(p.data)))
		e = binary.LittleEndian.AppendUint32(e, uint32(len(p.data)))
		block(6, append(e, p.data...))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// decodeFile runs the tap over a file through OpenFile, as the command does.
func decodeFile(t *testing.T, path, bpf string) ([]profile.Event, Stats) {
	t.Helper()
	src, err := OpenFile(path, bpf)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", path, err)
	}
	defer src.Close()
	var evs []profile.Event
	tp, err := New(testConfig(fixturePort(t)), Options{
		Anonymizer: profile.NewAnonymizer(testSalt, ':', true),
		Record:     func(ev *profile.Event) bool { evs = append(evs, *ev); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Run(context.Background(), src); err != nil {
		t.Fatalf("Run(%s): %v", path, err)
	}
	return evs, tp.Stats()
}

func TestOpenFile_Formats(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "meta.pcap"))
	dir := t.TempDir()
	ng, nano := filepath.Join(dir, "meta.pcapng"), filepath.Join(dir, "meta-ns.pcap")
	writePcapng(t, ng, pkts)
	writePcap(t, nano, pkts)
	want, _ := decodeFixture(t, "meta.pcap")
	for _, path := range []string{filepath.Join("testdata", "meta.pcap"), ng, nano} {
		got, _ := decodeFile(t, path, "")
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", path, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: event %d is %+v, want %+v", path, i, got[i], want[i])
			}
		}
	}
	// A BPF filter that excludes everything (libpcap compiles it: not in a static build).
	if !LiveCapture {
		return
	}
	if evs, st := decodeFile(t, ng, "udp"); len(evs) != 0 || st.Packets != 0 {
		t.Fatalf("filter udp let %d packets through", st.Packets)
	}
}

func TestOpenFile_Failure(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "bad.pcap")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFile(path, "")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenFile(%q) = %v, want an error naming the file and containing %q", content, err, want)
		}
	}
	f("", "too short")
	f("hello world, not a capture", "not a pcap or pcapng file")
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap"), ""); err == nil ||
		!strings.Contains(err.Error(), "--pcap") {
		t.Fatalf("missing file: %v, want an error naming --pcap", err)
	}
	if _, err := OpenFile(filepath.Join("testdata", "meta.pcap"), "tcp and ((("); err == nil ||
		!strings.Contains(err.Error(), "--bpf") {
		t.Fatalf("bad filter: %v, want an error naming --bpf", err)
	}
}

func TestLiveError(t *testing.T) {
	f := func(cause string, wants ...string) {
		t.Helper()
		err := liveError("eth7", errors.New(cause))
		for _, w := range append(wants, "eth7", cause) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("liveError(%q) = %q, want it to contain %q", cause, err, w)
			}
		}
	}
	f("Permission Denied", "run as root", "setcap cap_net_raw,cap_net_admin+eip")
	f("socket: Operation not permitted", "run as root", "setcap cap_net_raw,cap_net_admin+eip")
	f("No Such Device", "--interface", "ip link")
	f("something else", "--interface")
}

// TestBounds_MaxFlows runs two overlapping connections with max_flows = 1: the second is counted and ignored.
func TestBounds_MaxFlows(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "binary.pcap"))
	port := uint16(fixturePort(t))
	var merged []capPacket
	for _, p := range pkts {
		q := capPacket{data: append([]byte(nil), p.data...), ts: p.ts + 1, lt: p.lt}
		tcp := q.data[14+int(q.data[14]&0x0f)*4:]
		for _, off := range []int{0, 2} { // move the client's port
			if binary.BigEndian.Uint16(tcp[off:]) != port {
				binary.BigEndian.PutUint16(tcp[off:], binary.BigEndian.Uint16(tcp[off:])+1)
			}
		}
		merged = append(merged, p, q)
	}
	cfg := testConfig(int(port))
	cfg.MaxFlows = 1
	evs, st := runTap(t, cfg, merged)
	diffEvents(t, "two connections, max_flows 1", evStrings(evs), expectBinary())
	if st.FlowOverflow == 0 || st.Flows != 1 {
		t.Fatalf("the second connection was not refused: %s", st.String())
	}
	cfg.MaxFlows = 2
	evs, st = runTap(t, cfg, merged)
	if len(evs) != 2*len(expectBinary()) || st.FlowOverflow != 0 {
		t.Fatalf("max_flows 2: %d events: %s", len(evs), st.String())
	}
}

// TestBounds_Buffer loses the first request of a connection so that everything after it waits, with a buffer
// bound smaller than what follows: waits end early (counted) and nothing is invented.
func TestBounds_Buffer(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "text.pcap"))
	first := payloadPackets(pkts)[0]
	edited := append(append([]capPacket(nil), pkts[:first]...), pkts[first+1:]...)
	cfg := testConfig(fixturePort(t))
	cfg.MaxFlowBuffer, cfg.MaxTotalBuffer = 1<<16, 1<<16
	evs, st := runTap(t, cfg, edited)
	if st.BufferOverflows == 0 {
		t.Fatalf("no buffer overflow: %s", st.String())
	}
	if !isSubsequence(withoutConn(recorded(evs)), withoutConn(expectText())) {
		diffEvents(t, "buffer overflow", withoutConn(recorded(evs)), withoutConn(expectText()))
	}
}

// TestIdleExpiry: a connection whose last response was not captured is forgotten once the capture clock (not
// the wall clock) passes idle_timeout; its waiting request is recorded as lost at that point.
func TestIdleExpiry(t *testing.T) {
	bin := readCapture(t, filepath.Join("testdata", "binary.pcap"))
	cut := len(bin) - 1 // without the QUIT response and what follows
	for payloadLenAt := tcpPayloadLen(bin[cut]); payloadLenAt == 0; payloadLenAt = tcpPayloadLen(bin[cut]) {
		cut--
	}
	text := readCapture(t, filepath.Join("testdata", "text.pcap"))
	later := text[0]
	later.ts = bin[cut-1].ts + int64(10*60e9)
	pkts := append(append([]capPacket(nil), bin[:cut]...), later)
	cfg := testConfig(fixturePort(t))
	evs, st := runTap(t, cfg, pkts)
	if st.FlowsExpired != 1 || st.Lost != 1 {
		t.Fatalf("want the binary connection expired with its QUIT lost: %s", st.String())
	}
	if last := evs[len(evs)-1]; last.Cmd != mcproto.CmdQuit || last.Status != mcproto.StatusLost {
		t.Fatalf("last event %s, want the QUIT lost", evString(&last))
	}
}

// TestCorrupt flips bytes of every fixture at random: the tap must neither panic nor leak buffer accounting.
func TestCorrupt(t *testing.T) {
	port := fixturePort(t)
	for _, name := range []string{"text.pcap", "meta.pcap", "binary.pcap", "midstream.pcap"} {
		pkts := readCapture(t, filepath.Join("testdata", name))
		for seed := 0; seed < 30; seed++ {
			edited := make([]capPacket, len(pkts))
			x := uint64(seed)*2654435761 + 1
			for i, p := range pkts {
				d := append([]byte(nil), p.data...)
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				if x%3 == 0 && len(d) > 0 {
					d[int(x>>8)%len(d)] ^= byte(x >> 32)
				}
				edited[i] = capPacket{data: d, ts: p.ts, lt: p.lt}
			}
			runTap(t, testConfig(port), edited)
		}
	}
}

func TestDecodePacket_LinkTypes(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "meta.pcap"))
	var p capPacket
	for _, q := range pkts {
		if tcpPayloadLen(q) > 0 {
			p = q
			break
		}
	}
	ip := p.data[14:]
	want := segmentOf(t, p)
	f := func(lt layers.LinkType, frame []byte) {
		t.Helper()
		var s tcpSegment
		if r := decodePacket(lt, frame, &s); r != decodeOK {
			t.Fatalf("link type %v: result %d", lt, r)
		}
		if s.seq != want.seq || !bytes.Equal(s.payload, want.payload) || s.sport != want.sport {
			t.Fatalf("link type %v: decoded %+v", lt, s)
		}
	}
	f(layers.LinkTypeRaw, ip)
	f(layers.LinkTypeNull, append([]byte{2, 0, 0, 0}, ip...))
	sll := make([]byte, 16)
	binary.BigEndian.PutUint16(sll[14:], 0x0800)
	f(layers.LinkTypeLinuxSLL, append(sll, ip...))
	sll2 := make([]byte, 20)
	binary.BigEndian.PutUint16(sll2[0:], 0x0800)
	f(linkTypeLinuxSLL2, append(sll2, ip...))
	vlan := append(append(append([]byte(nil), p.data[:12]...), 0x81, 0x00, 0x00, 0x07), p.data[12:]...)
	f(layers.LinkTypeEthernet, vlan)
	// Ethernet padding after a short IP packet is not payload.
	f(layers.LinkTypeEthernet, append(append([]byte(nil), p.data...), 0, 0, 0, 0))
	var s tcpSegment
	frag := append([]byte(nil), p.data...)
	frag[14+6] |= 0x20 // more fragments
	if decodePacket(layers.LinkTypeEthernet, frag, &s) != decodeFragment {
		t.Fatalf("a fragment was not recognised")
	}
	if decodePacket(layers.LinkTypeEthernet, p.data[:30], &s) != decodeMalformed {
		t.Fatalf("a cut header was not malformed")
	}
}

// TestMetrics: a run publishes its counters under membench_tap_* names.
func TestMetrics(t *testing.T) {
	before := metricValue(t, `membench_tap_events_recorded_total`)
	evs, _ := decodeFixture(t, "meta.pcap")
	after := metricValue(t, `membench_tap_events_recorded_total`)
	if after-before != float64(len(evs)) {
		t.Fatalf("membench_tap_events_recorded_total grew by %v, want %d", after-before, len(evs))
	}
	for _, name := range []string{"membench_tap_packets_total", `membench_tap_gaps_total{dir="client_to_server"}`,
		`membench_tap_drops_total{where="kernel"}`, "membench_tap_flows_total", "membench_tap_flows"} {
		metricValue(t, name)
	}
}

func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	var b bytes.Buffer
	Metrics.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s = %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return 0
}
