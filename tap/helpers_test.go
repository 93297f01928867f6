package tap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
)

// testSalt is a fixed secret so that key hashes are stable across runs.
var testSalt = [profile.SaltSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// capPacket is one packet of a capture held in memory.
type capPacket struct {
	data []byte
	ts   int64
	lt   LinkType
}

// readCapture loads every packet of a pcap or pcapng file.
func readCapture(t testing.TB, path string) []capPacket {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("cannot open fixture: %v (regenerate with sudo scripts/make-tap-fixtures.sh)", err)
	}
	defer f.Close()
	r, err := newCaptureReader(bufio.NewReader(f), nil)
	if err != nil {
		t.Fatalf("cannot read %s: %v", path, err)
	}
	var out []capPacket
	for {
		data, ts, lt, err := r.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("cannot read %s: %v", path, err)
		}
		out = append(out, capPacket{data: append([]byte(nil), data...), ts: ts, lt: lt})
	}
}

// writePcap writes packets as a nanosecond pcap file (all of the first packet's link type).
func writePcap(t testing.TB, path string, pkts []capPacket) {
	t.Helper()
	var b bytes.Buffer
	lt := layers.LinkTypeEthernet
	if len(pkts) > 0 {
		lt = pkts[0].lt
	}
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], uint32(lt))
	b.Write(h)
	for _, p := range pkts {
		var r [16]byte
		binary.LittleEndian.PutUint32(r[0:], uint32(p.ts/1e9))
		binary.LittleEndian.PutUint32(r[4:], uint32(p.ts%1e9))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(p.data)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(p.data)))
		b.Write(r[:])
		b.Write(p.data)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sliceSource feeds packets from memory.
type sliceSource struct {
	pkts []capPacket
	i    int
}

func (s *sliceSource) ReadPacket() ([]byte, int64, LinkType, error) {
	if s.i >= len(s.pkts) {
		return nil, 0, 0, io.EOF
	}
	p := s.pkts[s.i]
	s.i++
	return p.data, p.ts, p.lt, nil
}
func (s *sliceSource) Live() bool              { return false }
func (s *sliceSource) Drops() (uint64, uint64) { return 0, 0 }
func (s *sliceSource) Close() error            { return nil }

// fixturePort is the memcached port the fixtures were recorded against.
func fixturePort(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures.port"))
	if err != nil {
		t.Fatalf("cannot read the fixtures' port: %v (regenerate with sudo scripts/make-tap-fixtures.sh)", err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("testdata/fixtures.port: %v", err)
	}
	return p
}

func testConfig(port int) configs.Tap {
	cfg := configs.DefaultTap()
	cfg.Pcap = "test"
	cfg.Ports = []int{port}
	cfg.MetricsListen = ""
	return cfg
}

// runTap decodes pkts with cfg and returns the events and counters.
func runTap(t testing.TB, cfg configs.Tap, pkts []capPacket) ([]profile.Event, Stats) {
	t.Helper()
	var evs []profile.Event
	tp, err := New(cfg, Options{
		Anonymizer: profile.NewAnonymizer(testSalt, ':', true),
		Record:     func(ev *profile.Event) bool { evs = append(evs, *ev); return true },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := tp.Run(context.Background(), &sliceSource{pkts: pkts}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if tp.buffered != 0 {
		t.Fatalf("BUG: %d bytes still accounted as buffered after Run", tp.buffered)
	}
	return evs, tp.Stats()
}

// decodeFixture decodes testdata/name with the fixtures' port.
func decodeFixture(t testing.TB, name string) ([]profile.Event, Stats) {
	t.Helper()
	return runTap(t, testConfig(fixturePort(t)), readCapture(t, filepath.Join("testdata", name)))
}

// evString is an event without its times, for comparisons: conn cmd status key(size) value flags ttl q/nr.
func evString(ev *profile.Event) string {
	s := fmt.Sprintf("c%d %s %s %s", ev.Conn, ev.Proto, ev.Cmd, ev.Status)
	if ev.KeySize > 0 {
		s += fmt.Sprintf(" k%d:%04x", ev.KeySize, ev.KeyHash&0xffff)
	}
	if ev.ValueSize > 0 {
		s += fmt.Sprintf(" v%d", ev.ValueSize)
	}
	if ev.Flags != 0 {
		s += fmt.Sprintf(" f%d", ev.Flags)
	}
	if ev.TTL != 0 {
		s += fmt.Sprintf(" ttl%d", ev.TTL)
	}
	if ev.Quiet {
		s += " q"
	}
	if ev.Noreply {
		s += " noreply"
	}
	return s
}

// evStrings returns the events in request order per connection (sorted by connection, then time): the order
// in which a tap emits them can differ between captures of the same traffic, since a noreply request is
// emitted when it is framed and a paired one when its response is, and waiting for a missing segment delays
// both.
func evStrings(evs []profile.Event) []string {
	evs = append([]profile.Event(nil), evs...)
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].Conn != evs[j].Conn {
			return evs[i].Conn < evs[j].Conn
		}
		return evs[i].Time < evs[j].Time
	})
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evString(&evs[i])
	}
	return out
}

// keyTag is how evString shows the hash of key.
func keyTag(key string) string {
	a := profile.NewAnonymizer(testSalt, ':', true)
	return fmt.Sprintf("k%d:%04x", len(key), a.HashKey([]byte(key))&0xffff)
}

// tcpPayloadLen returns the TCP payload length of a captured packet, or -1 if it is not TCP.
func tcpPayloadLen(p capPacket) int {
	var s tcpSegment
	if decodePacket(p.lt, p.data, &s) != decodeOK {
		return -1
	}
	return len(s.payload)
}

// segmentOf decodes a packet's TCP header, failing the test if it is not TCP.
func segmentOf(t testing.TB, p capPacket) tcpSegment {
	t.Helper()
	var s tcpSegment
	if decodePacket(p.lt, p.data, &s) != decodeOK {
		t.Fatalf("packet is not TCP")
	}
	return s
}

// countBy counts events per "cmd status".
func countBy(evs []profile.Event) map[string]int {
	m := map[string]int{}
	for _, ev := range evs {
		m[ev.Cmd.String()+" "+ev.Status.String()]++
	}
	return m
}
