package report

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/profile/analyze"
)

// summary analyzes a small generated workload: Zipf keys, gets and sets, latencies.
func summary(t *testing.T, seed uint64, withLatency bool) *analyze.Summary {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	z := rand.NewZipf(r, 1.1, 1, 5000)
	a := analyze.New(analyze.Options{})
	base := int64(1_700_000_000_000_000_000)
	for i := 0; i < 50000; i++ {
		k := z.Uint64()
		ev := profile.Event{Time: base + int64(i)*200_000, Conn: uint64(i % 7), Proto: mcproto.ProtoText,
			Cmd: mcproto.CmdGet, Status: mcproto.StatusHit, KeyHash: k*0x9E3779B97F4A7C15 + 1, KeySize: uint16(10 + k%30),
			ValueSize: uint32(100 + k%900), Upstream: -1}
		if i%10 == 0 {
			ev.Cmd, ev.Status = mcproto.CmdSet, mcproto.StatusStored
		} else if r.IntN(10) == 0 {
			ev.Status, ev.ValueSize = mcproto.StatusMiss, 0
		}
		if withLatency {
			ev.Latency = int64(50_000 + r.IntN(200_000))
		}
		if i%10 >= 7 && ev.Cmd == mcproto.CmdGet { // a three-key get
			ev.KeyIndex, ev.KeyCount = uint16(i%10-7), 3
		}
		a.Add(&ev)
	}
	return a.Summary()
}

func TestWriteHTML(t *testing.T) {
	a, b := summary(t, 1, true), summary(t, 2, false)
	f := func(name string, in []Input, cmp *analyze.Comparison, want ...string) {
		t.Helper()
		var buf bytes.Buffer
		if err := WriteHTML(&buf, name, in, cmp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		html := buf.String()
		for _, w := range want {
			if !strings.Contains(html, w) {
				t.Fatalf("%s: report lacks %q", name, w)
			}
		}
		// Self-contained: nothing to fetch, nothing to run.
		for _, bad := range []string{"<script", "http://", "https://", "<link", "@import", "src="} {
			if strings.Contains(html, bad) {
				t.Fatalf("%s: report is not self-contained: it contains %q", name, bad)
			}
		}
		if n := strings.Count(html, "<svg"); n != 7 {
			t.Fatalf("%s: %d charts, want 7", name, n)
		}
	}
	f("inspect", []Input{{"a.mbp", a}}, nil, "Key size CDF", "Value size CDF", "Key popularity", "Zipf α=",
		"Request rate over time", "Hit ratio over time", "LRU miss-ratio curve", "Latency percentiles", "a.mbp",
		"<polyline", "<td>multi-key gets (keys)</td><td>5,000 (15,000)</td>")
	f("compare", []Input{{"a.mbp", a}, {"b.mbp", b}}, analyze.Compare(a, b), "How alike", "command mix L1",
		"b.mbp", "#d1495b")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, "none", nil, nil); err == nil {
		t.Fatal("WriteHTML with no profile did not fail")
	}
}
