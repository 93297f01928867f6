package tap

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// The expected events of each fixture, from what scripts/make-tap-fixtures.sh makes its clients do.

func expectText() []string {
	k := keyTag
	return []string{
		"c1 text set stored " + k("user:1") + " v5",
		"c1 text set stored " + k("user:2") + " v3 ttl300",
		"c1 text set stored " + k("user:3") + " v5 f3",
		"c1 text get hit " + k("user:1") + " v5",
		"c1 text get miss " + k("missing:1"),
		// multi-get: one event per key, hits and misses in request order
		"c1 text get hit " + k("user:1") + " v5",
		"c1 text get miss " + k("missing:2"),
		"c1 text get hit " + k("user:2") + " v3",
		"c1 text get hit " + k("user:3") + " v5 f3",
		"c1 text get miss " + k("missing:3"),
		"c1 text gets hit " + k("user:2") + " v3",
		"c1 text add not_stored " + k("user:1") + " v5",
		"c1 text add stored " + k("user:4") + " v4",
		"c1 text replace not_stored " + k("missing:4") + " v1",
		"c1 text replace stored " + k("user:4") + " v5",
		"c1 text set stored " + k("counter") + " v2",
		"c1 text incr ok " + k("counter"),
		"c1 text decr ok " + k("counter"),
		"c1 text incr not_found " + k("missing:5"),
		"c1 text touch touched " + k("user:2") + " ttl600",
		"c1 text delete deleted " + k("user:3"),
		"c1 text delete not_found " + k("missing:6"),
		"c1 text set none_expected " + k("quiet:1") + " v1 noreply",
		"c1 text set stored " + k("big") + " v70000",
		"c1 text get hit " + k("big") + " v70000",
		"c1 text get miss " + k("user:3"),
		// the raw client: a command line and values split across segments
		"c2 text set stored " + k("split:1") + " v12",
		"c2 text get hit " + k("split:1") + " v12",
		"c2 text get hit " + k("user:4") + " v5",
		"c2 text set stored " + k("split:2") + " v3000",
		"c2 text get hit " + k("split:2") + " v3000",
		"c2 text quit none_expected",
	}
}

func expectMeta() []string {
	k := keyTag
	return []string{
		"c1 meta ms stored " + k("m:a") + " v3 f5",
		"c1 meta ms stored " + k("m:b") + " v2",
		"c1 meta append not_stored " + k("m:c") + " v1", // ms in append mode (MA): recorded as the append it is
		"c1 meta mg hit " + k("m:a") + " v3 f5",
		"c1 meta mg miss " + k("m:nope"),
		"c1 meta mg hit " + k("m:b") + " v2",
		// quiet batch: misses were answered by silence, inferred when a later answer (or MN) arrived
		"c1 meta mg hit " + k("m:a") + " v3 q",
		"c1 meta mg miss " + k("m:nope1") + " q",
		"c1 meta mg hit " + k("m:b") + " v2 q",
		"c1 meta mg miss " + k("m:nope2") + " q",
		"c1 meta mn ok",
		"c1 meta ms stored " + k("m:q1") + " v1 q",
		"c1 meta ms stored " + k("m:q2") + " v1 q",
		"c1 meta ms stored " + k("m:q3") + " v1 q",
		"c1 meta mn ok",
		"c1 meta md deleted " + k("m:q1") + " q",
		"c1 meta md not_found " + k("m:nope3") + " q",
		"c1 meta mn ok",
		"c1 meta ms stored " + k("m:n") + " v2",
		"c1 meta ma ok " + k("m:n"),
		"c1 meta ma ok " + k("m:n"),
		"c1 meta ma not_found " + k("m:nope4"),
		"c1 meta mn ok",
	}
}

func expectBinary() []string {
	k := keyTag
	return []string{
		"c1 binary set stored " + k("b:1") + " v3 f7",
		"c1 binary set stored " + k("b:2") + " v4 ttl60",
		"c1 binary get hit " + k("b:1") + " v3 f7",
		"c1 binary get miss " + k("b:nope"),
		"c1 binary get hit " + k("b:2") + " v4",
		"c1 binary get hit " + k("b:1") + " v3 f7 q",
		"c1 binary get miss " + k("b:nope") + " q",
		"c1 binary get hit " + k("b:2") + " v4 q",
		"c1 binary noop ok",
		"c1 binary delete deleted " + k("b:1"),
		"c1 binary delete not_found " + k("b:1"),
		"c1 binary incr ok " + k("b:n"),
		"c1 binary incr ok " + k("b:n"),
		"c1 binary version ok",
		"c1 binary quit ok",
	}
}

var fixtures = []struct {
	name   string
	expect func() []string
}{
	{"text.pcap", expectText},
	{"meta.pcap", expectMeta},
	{"binary.pcap", expectBinary},
}

func diffEvents(t *testing.T, what string, got, want []string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s%-50s | %s\n", mark, g, w)
	}
	t.Fatalf("%s: events differ (got | want):\n%s", what, b.String())
}

func TestFixtures(t *testing.T) {
	for _, fx := range fixtures {
		evs, st := decodeFixture(t, fx.name)
		diffEvents(t, fx.name, evStrings(evs), fx.expect())
		if st.Gaps != [2]uint64{} || st.Resyncs != 0 || st.Orphans != 0 || st.Mismatched != 0 || st.Lost != 0 {
			t.Fatalf("%s: a clean capture gave %s", fx.name, st.String())
		}
		if st.FlowsClosed != st.Flows {
			t.Fatalf("%s: %d flows seen but %d closed; every client ended its connection", fx.name, st.Flows,
				st.FlowsClosed)
		}
		// Latency comes from packet timestamps: every answered request has one.
		for _, ev := range evs {
			if ev.Status != mcproto.StatusNoneExpected && ev.Latency <= 0 {
				t.Fatalf("%s: event %s has no latency", fx.name, evString(&ev))
			}
		}
	}
}

// TestFixtures_Times checks the tap times requests and responses by the packets that carried their last
// bytes: the split value's request ends in the third of its segments.
func TestFixtures_Times(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "text.pcap"))
	evs, _ := decodeFixture(t, "text.pcap")
	var split *profile.Event
	for i := range evs {
		if evs[i].KeyHash&0xffff == profile.NewAnonymizer(testSalt, ':', true).HashKey([]byte("split:2"))&0xffff &&
			evs[i].Cmd == mcproto.CmdSet {
			split = &evs[i]
		}
	}
	if split == nil {
		t.Fatalf("no set of split:2 in text.pcap")
	}
	// Find the packet ending with the value's "\r\n" after the run of c's.
	var last int64
	for _, p := range pkts {
		var s tcpSegment
		if decodePacket(p.lt, p.data, &s) == decodeOK && strings.HasSuffix(string(s.payload), "ccc\r\n") {
			last = p.ts
		}
	}
	if last == 0 {
		t.Fatalf("no packet ends the split value")
	}
	if want := last / 1000 * 1000; split.Time/1000*1000 != want {
		t.Fatalf("set split:2 timed at %d, want the last segment's %d", split.Time, last)
	}
}

// withoutConn strips the connection number, for comparisons across captures where flows may vanish.
func withoutConn(evs []string) []string {
	out := make([]string, len(evs))
	for i, s := range evs {
		out[i] = s[strings.IndexByte(s, ' ')+1:]
	}
	return out
}

// isSubsequence reports whether every element of sub appears in full in order.
func isSubsequence(sub, full []string) bool {
	j := 0
	for _, s := range sub {
		for j < len(full) && full[j] != s {
			j++
		}
		if j == len(full) {
			return false
		}
		j++
	}
	return true
}

// recorded drops lost events: they stand for requests, not pairs, and are checked separately.
func recorded(evs []profile.Event) []string {
	var kept []profile.Event
	for i := range evs {
		if evs[i].Status != mcproto.StatusLost {
			kept = append(kept, evs[i])
		}
	}
	return evStrings(kept)
}

// payloadPackets returns the indexes of packets that carry TCP payload.
func payloadPackets(pkts []capPacket) []int {
	var idx []int
	for i, p := range pkts {
		if tcpPayloadLen(p) > 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// TestDerived_Reorder swaps every pair of adjacent packets in turn: reassembly must give the same events.
func TestDerived_Reorder(t *testing.T) {
	port := fixturePort(t)
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		want := fx.expect()
		for i := 0; i+1 < len(pkts); i++ {
			edited := append([]capPacket(nil), pkts...)
			edited[i], edited[i+1] = edited[i+1], edited[i]
			evs, st := runTap(t, testConfig(port), edited)
			diffEvents(t, fmt.Sprintf("%s with packets %d and %d swapped", fx.name, i, i+1), evStrings(evs), want)
			if st.Gaps != [2]uint64{} {
				t.Fatalf("%s with packets %d and %d swapped: %s", fx.name, i, i+1, st.String())
			}
		}
	}
}

// TestDerived_Duplicate repeats every packet in turn (a retransmission the capture saw twice).
func TestDerived_Duplicate(t *testing.T) {
	port := fixturePort(t)
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		want := fx.expect()
		for i := range pkts {
			edited := append(append(append([]capPacket(nil), pkts[:i+1]...), pkts[i]), pkts[i+1:]...)
			evs, st := runTap(t, testConfig(port), edited)
			what := fmt.Sprintf("%s with packet %d duplicated", fx.name, i)
			diffEvents(t, what, evStrings(evs), want)
			if tcpPayloadLen(pkts[i]) > 0 && st.Retransmits == 0 {
				t.Fatalf("%s: the duplicate was not counted: %s", what, st.String())
			}
		}
	}
}

// TestDerived_Overlap splits every payload packet into three overlapping segments sent last-first: the
// overlapping bytes are delivered once.
func TestDerived_Overlap(t *testing.T) {
	port := fixturePort(t)
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		var edited []capPacket
		for _, p := range pkts {
			n := tcpPayloadLen(p)
			if n < 3 {
				edited = append(edited, p)
				continue
			}
			a, b := n/3, 2*n/3
			third := resegment(t, p, max(a-1, 0), n-max(a-1, 0))
			second := resegment(t, p, 0, b)
			first := resegment(t, p, 0, a)
			edited = append(edited, third, second, first)
		}
		evs, st := runTap(t, testConfig(port), edited)
		diffEvents(t, fx.name+" resegmented with overlaps", evStrings(evs), fx.expect())
		if st.Gaps != [2]uint64{} || st.RetransmitBytes == 0 {
			t.Fatalf("%s resegmented with overlaps: %s", fx.name, st.String())
		}
	}
}

// resegment returns a copy of p carrying only payload bytes [off, off+n) (IPv4 over Ethernet only).
func resegment(t testing.TB, p capPacket, off, n int) capPacket {
	t.Helper()
	d := append([]byte(nil), p.data...)
	if binary.BigEndian.Uint16(d[12:14]) != 0x0800 {
		t.Fatalf("resegment: not IPv4 over Ethernet")
	}
	ip := d[14:]
	ihl := int(ip[0]&0x0f) * 4
	tcp := ip[ihl:]
	doff := int(tcp[12]>>4) * 4
	payload := tcp[doff:]
	seq := binary.BigEndian.Uint32(tcp[4:8])
	binary.BigEndian.PutUint32(tcp[4:8], seq+uint32(off))
	copy(payload, payload[off:off+n])
	binary.BigEndian.PutUint16(ip[2:4], uint16(ihl+doff+n))
	return capPacket{data: d[:14+ihl+doff+n], ts: p.ts, lt: p.lt}
}

// TestDerived_Gap drops every payload packet in turn: the lost bytes are counted exactly, and every recorded
// pair is one of the complete capture's pairs (nothing is invented); what could not be paired is counted.
func TestDerived_Gap(t *testing.T) {
	port := fixturePort(t)
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		full := withoutConn(fx.expect())
		for _, i := range payloadPackets(pkts) {
			edited := append(append([]capPacket(nil), pkts[:i]...), pkts[i+1:]...)
			evs, st := runTap(t, testConfig(port), edited)
			what := fmt.Sprintf("%s without packet %d (%d payload bytes)", fx.name, i, tcpPayloadLen(pkts[i]))
			got := withoutConn(recorded(evs))
			if !isSubsequence(got, full) {
				diffEvents(t, what+": recorded pairs that the full capture does not have", got, full)
			}
			if i == len(pkts)-1 {
				// Nothing after the capture's last packet shows that it existed.
				continue
			}
			if lost := st.LostBytes[c2s] + st.LostBytes[s2c]; lost != uint64(tcpPayloadLen(pkts[i])) {
				t.Fatalf("%s: %d bytes counted lost: %s", what, lost, st.String())
			}
			if st.Gaps[c2s]+st.Gaps[s2c] != 1 {
				t.Fatalf("%s: want one gap: %s", what, st.String())
			}
		}
	}
}

// TestDerived_GapInValue drops a segment inside a value: framing survives, so every event is still recorded.
func TestDerived_GapInValue(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "text.pcap"))
	dropped := -1
	for i, p := range pkts {
		var s tcpSegment
		if decodePacket(p.lt, p.data, &s) == decodeOK && len(s.payload) == 1000 && s.payload[0] == 'b' {
			dropped = i
		}
	}
	if dropped < 0 {
		t.Fatalf("text.pcap has no 1000-byte segment of b's (split:2's middle)")
	}
	edited := append(append([]capPacket(nil), pkts[:dropped]...), pkts[dropped+1:]...)
	evs, st := runTap(t, testConfig(fixturePort(t)), edited)
	diffEvents(t, "text.pcap without the middle of split:2's value", evStrings(evs), expectText())
	if st.GapsInValues != 1 || st.LostBytes[c2s] != 1000 {
		t.Fatalf("want one gap of 1000 bytes inside a value: %s", st.String())
	}
}

// TestDerived_MidStream starts the capture at every packet in turn, so connections are already open and
// frames are cut: every recorded pair must be one the complete capture has.
func TestDerived_MidStream(t *testing.T) {
	port := fixturePort(t)
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		full := withoutConn(fx.expect())
		for i := 1; i < len(pkts); i++ {
			evs, st := runTap(t, testConfig(port), pkts[i:])
			got := withoutConn(recorded(evs))
			if !isSubsequence(got, full) {
				diffEvents(t, fmt.Sprintf("%s from packet %d: %s", fx.name, i, st.String()), got, full)
			}
		}
	}
	// Cutting inside a frame: start with the second half of a packet's payload.
	pkts := readCapture(t, filepath.Join("testdata", "text.pcap"))
	full := withoutConn(expectText())
	for _, i := range payloadPackets(pkts) {
		n := tcpPayloadLen(pkts[i])
		if n < 2 {
			continue
		}
		edited := append([]capPacket{resegment(t, pkts[i], n/2, n-n/2)}, pkts[i+1:]...)
		evs, st := runTap(t, testConfig(port), edited)
		got := withoutConn(recorded(evs))
		if !isSubsequence(got, full) {
			diffEvents(t, fmt.Sprintf("text.pcap from the middle of packet %d: %s", i, st.String()), got, full)
		}
	}
}

// TestMidstreamFixture decodes a capture tcpdump started while a client was busy: sets of one key followed by
// gets of it, some cut at either end.
func TestMidstreamFixture(t *testing.T) {
	evs, st := decodeFixture(t, "midstream.pcap")
	if st.Flows != 1 || st.Resyncs == 0 {
		t.Fatalf("want one flow found mid-stream: %s", st.String())
	}
	if st.Mismatched != 0 {
		t.Fatalf("mismatched responses: %s", st.String())
	}
	if len(evs) < 100 {
		t.Fatalf("only %d events: %s", len(evs), st.String())
	}
	var lastSet *profile.Event
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Status == mcproto.StatusLost:
			if i < len(evs)-2 {
				t.Fatalf("event %d of %d is lost; only the last requests may be", i, len(evs))
			}
		case ev.Cmd == mcproto.CmdSet && ev.Status == mcproto.StatusStored:
			lastSet = ev
		case ev.Cmd == mcproto.CmdGet && ev.Status == mcproto.StatusHit:
			if lastSet != nil && (lastSet.KeyHash != ev.KeyHash || lastSet.ValueSize != ev.ValueSize) {
				t.Fatalf("event %d: get hit %s after set %s", i, evString(ev), evString(lastSet))
			}
		default:
			t.Fatalf("event %d: %s; the client only sets and gets hits", i, evString(ev))
		}
	}
}

// TestDerived_Truncated cuts every payload packet's capture short (a small snap length): the missing bytes
// are gaps, never parsed.
func TestDerived_Truncated(t *testing.T) {
	port := fixturePort(t)
	pkts := readCapture(t, filepath.Join("testdata", "text.pcap"))
	full := withoutConn(expectText())
	var edited []capPacket
	var cut uint64
	for _, p := range pkts {
		n := tcpPayloadLen(p)
		if n > 2000 {
			q := p
			q.data = p.data[:len(p.data)-(n-2000)]
			cut += uint64(n - 2000)
			edited = append(edited, q)
			continue
		}
		edited = append(edited, p)
	}
	evs, st := runTap(t, testConfig(port), edited)
	if !isSubsequence(withoutConn(recorded(evs)), full) {
		diffEvents(t, "text.pcap cut at 2000 payload bytes", withoutConn(recorded(evs)), full)
	}
	if st.Truncated == 0 || st.LostBytes[c2s]+st.LostBytes[s2c] != cut {
		t.Fatalf("want %d bytes lost to truncation: %s", cut, st.String())
	}
}

// TestDerived_LostResponse ends the capture after the binary VERSION request: it is recorded as lost.
func TestDerived_LostResponse(t *testing.T) {
	pkts := readCapture(t, filepath.Join("testdata", "binary.pcap"))
	cut := -1
	for i, p := range pkts {
		var s tcpSegment
		if decodePacket(p.lt, p.data, &s) == decodeOK && len(s.payload) == 24 && s.payload[0] == 0x80 &&
			s.payload[1] == 0x0b {
			cut = i + 1
		}
	}
	if cut < 0 {
		t.Fatalf("binary.pcap has no VERSION request")
	}
	evs, st := runTap(t, testConfig(fixturePort(t)), pkts[:cut])
	got := evStrings(evs)
	want := append(expectBinary()[:13], "c1 binary version lost")
	diffEvents(t, "binary.pcap cut after VERSION", got, want)
	if st.Lost != 1 {
		t.Fatalf("want 1 lost request: %s", st.String())
	}
}

// TestDerived_Shuffle reorders packets within small windows (bounded reordering, as on a multi-queue NIC).
func TestDerived_Shuffle(t *testing.T) {
	port := fixturePort(t)
	rng := rand.New(rand.NewSource(1))
	for _, fx := range fixtures {
		pkts := readCapture(t, filepath.Join("testdata", fx.name))
		for round := 0; round < 20; round++ {
			edited := append([]capPacket(nil), pkts...)
			for i := 0; i+4 <= len(edited); i += 4 {
				w := edited[i : i+4]
				rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			}
			evs, st := runTap(t, testConfig(port), edited)
			diffEvents(t, fmt.Sprintf("%s shuffled (round %d): %s", fx.name, round, st.String()), evStrings(evs),
				fx.expect())
		}
	}
}

// TestDeterministic decodes every fixture twice: the same events in the same order, times included.
func TestDeterministic(t *testing.T) {
	for _, name := range []string{"text.pcap", "meta.pcap", "binary.pcap", "midstream.pcap"} {
		a, _ := decodeFixture(t, name)
		b, _ := decodeFixture(t, name)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: two decodes differ", name)
		}
	}
}
