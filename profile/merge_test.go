package profile

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func mergeInput(t *testing.T, name string, h Header, evs []Event) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(writeStream(t, evs, h, WriterOptions{BlockEvents: 7})), name, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMerge(t *testing.T) {
	h1 := Header{Mode: "proxy", Host: "a", SaltFingerprint: 42, TimeUnit: 1000, LatencyBits: 8,
		Created: time.Unix(200, 0), Settings: map[string]string{"namespace_delimiter": ":", "sample_rate": "1"}}
	h2 := Header{Mode: "tap", Host: "b", SaltFingerprint: 42, TimeUnit: 1, LatencyBits: 12,
		Created: time.Unix(100, 0), Settings: map[string]string{"namespace_delimiter": ":", "sample_rate": "0.5"}}
	var e1, e2 []Event
	for i := range 50 {
		e1 = append(e1, Event{Time: int64(i) * 2000, Conn: uint64(i % 3), KeyHash: uint64(i + 1), Upstream: -1})
		e2 = append(e2, Event{Time: int64(i)*3000 + 1000, Conn: uint64(i % 2), KeyHash: uint64(i + 1000), Upstream: -1})
	}
	rs := []*Reader{mergeInput(t, "a.prof", h1, e1), mergeInput(t, "b.prof", h2, e2)}
	h, err := MergeHeader(rs)
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode != "merge" || h.Host != "a,b" || h.SaltFingerprint != 42 || h.TimeUnit != 1 || h.LatencyBits != 12 ||
		!h.Created.Equal(time.Unix(100, 0)) || h.Settings["namespace_delimiter"] != ":" || h.Settings["sample_rate"] != "" ||
		h.Settings["merge_inputs"] != "2" {
		t.Fatalf("header %+v", h)
	}
	var buf bytes.Buffer
	w, _ := NewStreamWriter(&buf, "out", h, WriterOptions{FlushInterval: -1})
	n, err := Merge(w, rs)
	if err != nil || n != 100 {
		t.Fatalf("merge: %d %v", n, err)
	}
	w.Close()
	got, _, err := readAll(t, buf.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Fatalf("%d events", len(got))
	}
	type origin struct {
		fromB bool
		conn  uint64
	}
	conns := map[uint64]origin{}
	for i, ev := range got {
		if i > 0 && ev.Time < got[i-1].Time {
			t.Fatalf("event %d out of time order", i)
		}
		o := origin{ev.KeyHash >= 1000, ev.KeyHash % 3}
		if o.fromB {
			o.conn = (ev.KeyHash - 1000) % 2
		} else {
			o.conn = (ev.KeyHash - 1) % 3
		}
		if prev, ok := conns[ev.Conn]; ok && prev != o {
			t.Fatalf("merged connection %d holds events of %v and %v", ev.Conn, prev, o)
		}
		conns[ev.Conn] = o
	}
	if len(conns) != 5 {
		t.Fatalf("%d connections, want 3+2", len(conns))
	}
	for c := range conns {
		if c >= 5 {
			t.Fatalf("connection id %d not dense", c)
		}
	}
}

func TestMerge_DifferentSalts(t *testing.T) {
	rs := []*Reader{
		mergeInput(t, "a.prof", Header{SaltFingerprint: 1}, nil),
		mergeInput(t, "b.prof", Header{SaltFingerprint: 1}, nil),
		mergeInput(t, "c.prof", Header{SaltFingerprint: 2}, nil),
	}
	_, err := MergeHeader(rs)
	if err == nil || !strings.Contains(err.Error(), "a.prof") || !strings.Contains(err.Error(), "c.prof") ||
		!strings.Contains(err.Error(), "--salt-file") {
		t.Fatalf("error %v", err)
	}
}
