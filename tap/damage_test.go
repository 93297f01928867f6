package tap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// runFile runs the tap over a capture file through OpenFile, as the command does, and returns Run's error too.
func runFile(t *testing.T, path string) ([]profile.Event, Stats, error) {
	t.Helper()
	src, err := OpenFile(path, "")
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
	err = tp.Run(context.Background(), src)
	return evs, tp.Stats(), err
}

// pcapRecords returns the byte offset of every record header in a classic pcap file.
func pcapRecords(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := 24; off+16 <= len(b); {
		offs = append(offs, off)
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
	}
	return offs
}

// damaged writes a copy of testdata/name edited by edit into a temporary file.
func damaged(t *testing.T, name string, edit func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "damaged-"+name)
	if err := os.WriteFile(path, edit(append([]byte(nil), b...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTapDamaged_OversizedRecord: a record header claiming 300 000 bytes (more than any snap length) used to
// swallow the rest of the file silently. It is reported with its byte offset, Run says the input was damaged,
// and every packet after it is still read.
func TestTapDamaged_OversizedRecord(t *testing.T) {
	want, _ := decodeFixture(t, "text.pcap")
	var at int
	path := damaged(t, "text.pcap", func(b []byte) []byte {
		at = pcapRecords(t, b)[20]
		binary.LittleEndian.PutUint32(b[at+8:], 300000)
		return b
	})
	evs, st, err := runFile(t, path)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), fmt.Sprintf("byte %d", at)) ||
		!strings.Contains(err.Error(), "300000") {
		t.Fatalf("Run = %v, want ErrDamaged naming byte %d and the 300000-byte record", err, at)
	}
	if st.Packets != 89 || st.CaptureDamage != 1 {
		t.Fatalf("%d packets read, %d damage reports; want all 89 and 1: %s", st.Packets, st.CaptureDamage,
			st.String())
	}
	diffEvents(t, "text.pcap with an oversized record", evStrings(evs), evStrings(want))
}

// TestTapDamaged_Garbage: a record header that is garbage through and through (lengths and time) is skipped up
// to the next record that parses; what was lost with it is a gap, never invented bytes.
func TestTapDamaged_Garbage(t *testing.T) {
	var at int
	path := damaged(t, "text.pcap", func(b []byte) []byte {
		at = pcapRecords(t, b)[30]
		copy(b[at:at+16], strings.Repeat("\xee", 16))
		return b
	})
	evs, st, err := runFile(t, path)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), fmt.Sprintf("byte %d", at)) {
		t.Fatalf("Run = %v, want ErrDamaged naming byte %d", err, at)
	}
	if st.Packets != 88 {
		t.Fatalf("%d packets read, want every one but the damaged record's 88: %s", st.Packets, st.String())
	}
	if got := withoutConn(recorded(evs)); !isSubsequence(got, withoutConn(expectText())) {
		diffEvents(t, "text.pcap with a garbage record header", got, withoutConn(expectText()))
	}
}

// TestTapDamaged_Cut: a file cut in the middle of a record (or of a record header) used to end without a word.
// It is reported with the offset of the cut record, and everything before it is recorded.
func TestTapDamaged_Cut(t *testing.T) {
	full, _ := decodeFixture(t, "binary.pcap")
	for _, keep := range []int{5, 16 + 30} { // inside the header; inside the data
		var at int
		path := damaged(t, "binary.pcap", func(b []byte) []byte {
			offs := pcapRecords(t, b)
			at = offs[len(offs)-3]
			return b[:at+keep]
		})
		evs, st, err := runFile(t, path)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), fmt.Sprintf("byte %d", at)) ||
			!strings.Contains(err.Error(), "cut") {
			t.Fatalf("cut %d bytes into a record: Run = %v, want ErrDamaged naming the cut at byte %d", keep, err, at)
		}
		if st.Packets != 26 || st.CaptureDamage != 1 {
			t.Fatalf("cut %d bytes into a record: %s", keep, st.String())
		}
		if got := evStrings(evs); !isSubsequence(withoutConn(recorded(evs)), withoutConn(evStrings(full))) ||
			len(recorded(evs)) < len(full)-2 {
			diffEvents(t, "binary.pcap cut", got, evStrings(full))
		}
	}
	// A whole file has no damage.
	if _, st, err := runFile(t, filepath.Join("testdata", "binary.pcap")); err != nil || st.CaptureDamage != 0 {
		t.Fatalf("binary.pcap: %v, %s", err, st.String())
	}
}

// TestTapDamaged_Pcapng: a pcapng block with a corrupt length is reported, and reading goes on at the next
// block.
func TestTapDamaged_Pcapng(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "meta.pcap"))
	dir := t.TempDir()
	ng := filepath.Join(dir, "meta.pcapng")
	writePcapng(t, ng, pkts)
	b, err := os.ReadFile(ng)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks: section header, interface, then one enhanced packet block per packet.
	off := 0
	var blocks []int
	for off+8 <= len(b) {
		blocks = append(blocks, off)
		off += int(binary.LittleEndian.Uint32(b[off+4:]))
	}
	at := blocks[2+10]
	binary.LittleEndian.PutUint32(b[at+4:], 0x00fffff0) // a length far past the end of the file
	bad := filepath.Join(dir, "bad.pcapng")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, st, err := runFile(t, bad)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), fmt.Sprintf("byte %d", at)) {
		t.Fatalf("Run = %v, want ErrDamaged naming byte %d", err, at)
	}
	if st.Packets != uint64(len(pkts)-1) {
		t.Fatalf("%d packets read, want %d: %s", st.Packets, len(pkts)-1, st.String())
	}
	// Cut inside the last block.
	cut := filepath.Join(dir, "cut.pcapng")
	if err := os.WriteFile(cut, b[:len(b)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runFile(t, cut); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "cut") {
		t.Fatalf("cut pcapng: Run = %v, want ErrDamaged saying it was cut", err)
	}
}

// TestTapLinkType_Unsupported: a capture of a link type the tap cannot decode used to give "0 flows, 0 events"
// and success; it is an error naming the link type.
func TestTapLinkType_Unsupported(t *testing.T) {
	for _, lt := range []uint32{147, 9999} {
		path := damaged(t, "meta.pcap", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[20:], lt)
			return b
		})
		_, err := OpenFile(path, "")
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("link type %d", lt)) ||
			!strings.Contains(err.Error(), path) {
			t.Fatalf("link type %d: OpenFile = %v, want an error naming the file and the link type", lt, err)
		}
	}
	// pcapng: the link type is per interface, so the error comes from Run.
	pkts := readCapture(t, filepath.Join("testdata", "meta.pcap"))
	for i := range pkts {
		pkts[i].lt = 147
	}
	ng := filepath.Join(t.TempDir(), "user0.pcapng")
	writePcapng(t, ng, pkts)
	if _, _, err := runFile(t, ng); err == nil || !strings.Contains(err.Error(), "link type 147") ||
		!strings.Contains(err.Error(), ng) {
		t.Fatalf("pcapng of link type 147: Run = %v, want an error naming the file and the link type", err)
	}
	// Any other source: Run itself refuses the packet.
	tp, err := New(testConfig(fixturePort(t)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Run(context.Background(), &sliceSource{pkts: pkts}); err == nil ||
		!strings.Contains(err.Error(), "link type 147") {
		t.Fatalf("packets of link type 147: Run = %v, want an error naming it", err)
	}
}

// TestTapLostResponse: the capture lost the 8-byte STORED answering lr:9, one of 100 sets sent one at a time
// 0.5 ms apart. Only that set is lost: the requests after it, sent once the client had the missing answer,
// pair with their own responses (before, every request within reorder_window of the gap was lost).
func TestTapLostResponse(t *testing.T) {
	evs, st := decodeFixture(t, "lostresponse.pcap")
	var want []string
	for i := 0; i < 100; i++ {
		status := "stored"
		if i == 9 {
			status = "lost"
		}
		want = append(want, fmt.Sprintf("c1 text set %s %s v4", status, keyTag(fmt.Sprintf("lr:%d", i))))
	}
	diffEvents(t, "lostresponse.pcap", evStrings(evs), want)
	if st.Lost != 1 || st.Gaps != [2]uint64{0, 1} || st.LostBytes != [2]uint64{0, 8} || st.Orphans != 0 ||
		st.Mismatched != 0 {
		t.Fatalf("want one lost request and one 8-byte response gap: %s", st.String())
	}
	for _, ev := range evs {
		if ev.Status == mcproto.StatusStored && ev.Latency <= 0 {
			t.Fatalf("event %s has no latency", evString(&ev))
		}
	}
}

// TestTapLostResponse_EveryOne drops each response segment of lostresponse.pcap's first sets in turn: exactly
// the request it answered is lost, whichever it was.
func TestTapLostResponse_EveryOne(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "lostresponse.pcap"))
	port := uint16(fixturePort(t))
	dropped := 0
	for i := 0; i < len(pkts) && dropped < 8; i++ {
		s := segmentOf(t, pkts[i])
		if s.sport != port || string(s.payload) != "STORED\r\n" {
			continue
		}
		dropped++
		edited := append(append([]capPacket(nil), pkts[:i]...), pkts[i+1:]...)
		evs, st := runTap(t, testConfig(int(port)), edited)
		if st.Lost != 2 || len(evs) != 100 { // lr:9 is missing from the fixture already
			t.Fatalf("without packet %d: %d events: %s", i, len(evs), st.String())
		}
		for _, ev := range evs {
			if ev.Status != mcproto.StatusStored && ev.Status != mcproto.StatusLost {
				t.Fatalf("without packet %d: event %s", i, evString(&ev))
			}
		}
	}
}

// TestTapNoFlowOnPort: a capture with traffic on other ports names the busiest ones.
func TestTapNoFlowOnPort(t *testing.T) {
	cfg := testConfig(11211)
	tp, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Run(context.Background(), &sliceSource{pkts: readCapture(t, filepath.Join("testdata",
		"text.pcap"))}); err != nil {
		t.Fatal(err)
	}
	ports := tp.BusiestPorts(3)
	if len(ports) == 0 || ports[0].Port != uint16(fixturePort(t)) || ports[0].Packets != 89 {
		t.Fatalf("BusiestPorts = %+v, want %d first with all 89 packets", ports, fixturePort(t))
	}
	warn := tp.Warnings()
	if len(warn) != 1 || !strings.Contains(warn[0], "--port") ||
		!strings.Contains(warn[0], fmt.Sprintf("%d (89 packets)", fixturePort(t))) {
		t.Fatalf("Warnings = %q", warn)
	}
	// With the right port there is nothing to warn about.
	tp, _ = New(testConfig(fixturePort(t)), Options{})
	tp.Run(context.Background(), &sliceSource{pkts: readCapture(t, filepath.Join("testdata", "text.pcap"))})
	if w := tp.Warnings(); len(w) != 0 {
		t.Fatalf("Warnings = %q on a capture of the right port", w)
	}
}
