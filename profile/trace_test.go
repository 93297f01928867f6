package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
)

// twitterSample follows the published format (github.com/twitter/cache-trace): namespaced anonymized keys,
// integer seconds, numeric client ids. One key contains commas.
const twitterSample = `0,nz:u:eeW511W3dcH3de3d15ec,22,0,9,get,0
0,nz:u:eeW511W3dcH3de3d15ec,22,342,9,set,3600
1,nz:u:eeW511W3dcH3de3d15ec,22,342,17,get,0
1,nz:t:ZZZ0aBCd,13,1200,17,gets,0
2,weird,key,with,commas,20,10,3,add,60
5,nokeyns,7,0,3,delete,0
5,nz:u:eeW511W3dcH3de3d15ec,22,0,9,incr,0
`

func importTwitter(t *testing.T, in string, a *Anonymizer) ([]Event, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewStreamWriter(&buf, "out", Header{Mode: "import", SaltFingerprint: a.Fingerprint()}, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportTwitter(strings.NewReader(in), "sample.csv", a, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, _, err := readAll(t, buf.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return evs, buf.Bytes()
}

func TestImportExportTwitter(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', true)
	evs, prof := importTwitter(t, twitterSample, a)
	if len(evs) != 7 {
		t.Fatalf("%d events", len(evs))
	}
	k := a.HashKey([]byte("nz:u:eeW511W3dcH3de3d15ec"))
	nz := a.HashNamespace([]byte("nz:u:eeW511W3dcH3de3d15ec"))
	want := []Event{
		{Time: 0, Conn: 9, Cmd: mcproto.CmdGet, KeyHash: k, KeySize: 22, NSHash: nz},
		{Time: 0, Conn: 9, Cmd: mcproto.CmdSet, KeyHash: k, KeySize: 22, NSHash: nz, ValueSize: 342, TTL: 3600},
		{Time: 1e9, Conn: 17, Cmd: mcproto.CmdGet, KeyHash: k, KeySize: 22, NSHash: nz, ValueSize: 342},
		{Time: 1e9, Conn: 17, Cmd: mcproto.CmdGets, KeyHash: a.HashKey([]byte("nz:t:ZZZ0aBCd")), KeySize: 13, NSHash: nz, ValueSize: 1200},
		{Time: 2e9, Conn: 3, Cmd: mcproto.CmdAdd, KeyHash: a.HashKey([]byte("weird,key,with,commas")), KeySize: 20, ValueSize: 10, TTL: 60},
		{Time: 5e9, Conn: 3, Cmd: mcproto.CmdDelete, KeyHash: a.HashKey([]byte("nokeyns")), KeySize: 7},
		{Time: 5e9, Conn: 9, Cmd: mcproto.CmdIncr, KeyHash: k, KeySize: 22, NSHash: nz},
	}
	for i := range want {
		want[i].Proto, want[i].Upstream = mcproto.ProtoText, -1
	}
	equalEvents(t, evs, want)
	if bytes.Contains(prof, []byte("eeW511W3dcH3de3d15ec")) || bytes.Contains(prof, []byte("weird")) {
		t.Fatal("imported key text in the profile")
	}

	r, err := NewReader(bytes.NewReader(prof), "p", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := ExportTwitter(&out, r)
	if err != nil || st.Events != 7 || st.Skipped != 0 {
		t.Fatalf("export: %+v %v", st, err)
	}
	kk := fmt.Sprintf("%016x:%016x", nz, k)
	wantOut := fmt.Sprintf(`0,%[1]s,22,0,9,get,0
0,%[1]s,22,342,9,set,3600
1,%[1]s,22,342,17,get,0
1,%016[2]x:%016[3]x,13,1200,17,gets,0
2,%016[4]x,20,10,3,add,60
5,%016[5]x,7,0,3,delete,0
5,%[1]s,22,0,9,incr,0
`, kk, nz, a.HashKey([]byte("nz:t:ZZZ0aBCd")), a.HashKey([]byte("weird,key,with,commas")), a.HashKey([]byte("nokeyns")))
	if out.String() != wantOut {
		t.Fatalf("export:\n%s\nwant:\n%s", out.String(), wantOut)
	}

	// Re-importing the export keeps the structure: equal keys stay equal, namespaces stay grouped.
	again, _ := importTwitter(t, out.String(), a)
	if again[0].KeyHash != again[1].KeyHash || again[0].KeyHash == again[3].KeyHash ||
		again[0].NSHash != again[3].NSHash || again[4].NSHash != 0 {
		t.Fatal("re-import lost key or namespace structure")
	}
}

func TestImportTwitter_Failure(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', true)
	f := func(in, want string) {
		t.Helper()
		w, _ := NewStreamWriter(discard{}, "x", Header{}, WriterOptions{FlushInterval: -1})
		defer w.Close()
		_, err := ImportTwitter(strings.NewReader(in), "t.csv", a, w)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "t.csv") {
			t.Fatalf("%q: error %v, want %q", in, err, want)
		}
	}
	f("0,k,1,2,3,fetch,0\n", "unknown operation")
	f("0,k,1,2,3,get,0\nx,k,1,2,3,get,0\n", "line 2")
	f("0,k,1,2,get,0\n", "7 comma-separated")
	f("0,k,70000,2,3,get,0\n", "key_size")
	f("0,k,1,-2,3,get,0\n", "value_size")
	f("0,k,1,2,3,get,never\n", "ttl")
}

func TestImportTwitter_HeaderAndFractions(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', false)
	evs, _ := importTwitter(t, "timestamp,key,key_size,value_size,client_id,operation,ttl\r\n\r\n1.5,k,1,2,web-7,get,0\r\n", a)
	if len(evs) != 1 || evs[0].Time != 1.5e9 || evs[0].Conn != a.HashKey([]byte("web-7")) || evs[0].NSHash != 0 {
		t.Fatalf("%+v", evs)
	}
}

func TestExportTwitter_Skips(t *testing.T) {
	evs := []Event{
		{Cmd: mcproto.CmdGet, KeyHash: 1, Upstream: -1},
		{Cmd: mcproto.CmdTouch, KeyHash: 1, TTL: 5, Upstream: -1},
		{Cmd: mcproto.CmdStats, Upstream: -1},
		{Cmd: mcproto.CmdMetaSet, KeyHash: 2, TTL: 30, ValueSize: 4, Upstream: -1},
		{Cmd: mcproto.CmdGat, KeyHash: 2, TTL: 30, Upstream: -1},
	}
	data := writeStream(t, evs, exactHeader, WriterOptions{})
	r, _ := NewReader(bytes.NewReader(data), "p", ReaderOptions{})
	var out bytes.Buffer
	st, err := ExportTwitter(&out, r)
	if err != nil || st.Events != 3 || st.Skipped != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	want := "0,0000000000000001,0,0,0,get,0\n0,0000000000000002,0,4,0,set,30\n0,0000000000000002,0,0,0,get,0\n"
	if out.String() != want {
		t.Fatalf("got\n%s", out.String())
	}
}

func ogRecord(ts uint32, obj uint64, size uint32, next int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, ts)
	b = binary.LittleEndian.AppendUint64(b, obj)
	b = binary.LittleEndian.AppendUint32(b, size)
	return binary.LittleEndian.AppendUint64(b, uint64(next))
}

func TestImportExportOracleGeneral(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', true)
	// A libCacheSim oracleGeneral trace by hand: objects 7, 8, 9; next_access_vtime is the 1-based position
	// of the next request for the object, -1 for none (libCacheSim's traceConv).
	var in []byte
	in = append(in, ogRecord(100, 7, 116, 3)...)
	in = append(in, ogRecord(100, 8, 216, 5)...)
	in = append(in, ogRecord(101, 7, 116, 6)...)
	in = append(in, ogRecord(102, 9, 10, -1)...)
	in = append(in, ogRecord(103, 8, 216, -1)...)
	in = append(in, ogRecord(103, 7, 116, -1)...)

	var prof bytes.Buffer
	w, _ := NewStreamWriter(&prof, "p", Header{Mode: "import"}, WriterOptions{FlushInterval: -1})
	n, err := ImportOracleGeneral(bytes.NewReader(in), "trace.og", a, ImportOptions{}, w)
	if err != nil || n != 6 {
		t.Fatalf("import: %d %v", n, err)
	}
	w.Close()
	evs, _, err := readAll(t, prof.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj := func(id uint64) uint64 { return a.HashKey(binary.LittleEndian.AppendUint64(nil, id)) }
	if evs[0].KeyHash != obj(7) || evs[0].KeySize != 16 || evs[0].ValueSize != 100 || evs[0].Time != 100e9 ||
		evs[0].Cmd != mcproto.CmdGet || evs[3].KeySize != 10 || evs[3].ValueSize != 0 {
		t.Fatalf("imported %+v / %+v", evs[0], evs[3])
	}

	r, _ := NewReader(bytes.NewReader(prof.Bytes()), "p", ReaderOptions{})
	f, err := os.Create(filepath.Join(t.TempDir(), "out.og"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := ExportOracleGeneral(f, r)
	if err != nil || st.Events != 6 {
		t.Fatalf("export: %+v %v", st, err)
	}
	got, _ := os.ReadFile(f.Name())
	var want []byte
	want = append(want, ogRecord(100, obj(7), 116, 3)...)
	want = append(want, ogRecord(100, obj(8), 216, 5)...)
	want = append(want, ogRecord(101, obj(7), 116, 6)...)
	want = append(want, ogRecord(102, obj(9), 10, -1)...)
	want = append(want, ogRecord(103, obj(8), 216, -1)...)
	want = append(want, ogRecord(103, obj(7), 116, -1)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("export:\n% x\nwant:\n% x", got, want)
	}

	// A partial record is an error naming the file and offset.
	w2, _ := NewStreamWriter(discard{}, "p", Header{}, WriterOptions{FlushInterval: -1})
	defer w2.Close()
	if _, err := ImportOracleGeneral(bytes.NewReader(in[:30]), "cut.og", a, ImportOptions{}, w2); err == nil ||
		!strings.Contains(err.Error(), "cut.og") || !strings.Contains(err.Error(), "offset 24") {
		t.Fatalf("partial record: %v", err)
	}
}

func TestExportOracleGeneral_MissSizes(t *testing.T) {
	// A miss (value 0) takes the size of the next request for the key that has one; keyless events are
	// skipped; many records cross the reverse pass's chunks.
	var evs []Event
	for i := range 70000 {
		evs = append(evs,
			Event{Time: int64(i) * 1e9, Cmd: mcproto.CmdGet, Status: mcproto.StatusMiss, KeyHash: uint64(i%1000 + 1), KeySize: 10, Upstream: -1},
			Event{Time: int64(i) * 1e9, Cmd: mcproto.CmdVersion, Upstream: -1},
			Event{Time: int64(i) * 1e9, Cmd: mcproto.CmdSet, KeyHash: uint64(i%1000 + 1), KeySize: 10, ValueSize: uint32(i%1000 + 5), Upstream: -1})
	}
	data := writeStream(t, evs, exactHeader, WriterOptions{})
	r, _ := NewReader(bytes.NewReader(data), "p", ReaderOptions{})
	f, _ := os.Create(filepath.Join(t.TempDir(), "out.og"))
	defer f.Close()
	st, err := ExportOracleGeneral(f, r)
	if err != nil || st.Events != 140000 || st.Skipped != 70000 {
		t.Fatalf("%+v %v", st, err)
	}
	got, _ := os.ReadFile(f.Name())
	for j := range 140000 {
		rec := got[j*24:]
		i := j / 2
		size := binary.LittleEndian.Uint32(rec[12:])
		next := int64(binary.LittleEndian.Uint64(rec[16:]))
		if size != uint32(10+i%1000+5) {
			t.Fatalf("record %d: size %d", j, size)
		}
		wantNext := int64(j + 2)
		if j%2 == 0 {
			wantNext = int64(j + 2) // the set right after
		} else if i+1000 < 70000 {
			wantNext = int64(2*(i+1000) + 1)
		} else {
			wantNext = -1
		}
		if next != wantNext {
			t.Fatalf("record %d: next %d, want %d", j, next, wantNext)
		}
	}
}

func TestExportCSV(t *testing.T) {
	evs := []Event{{Time: 1234, Conn: 7, Proto: mcproto.ProtoMeta, Cmd: mcproto.CmdMetaGet, Status: mcproto.StatusHit,
		Quiet: true, KeyHash: 0xabc, KeySize: 5, NSHash: 0xdef, ValueSize: 99, Flags: 3, TTL: -1, Latency: 150000, Upstream: 2,
		KeyIndex: 1, KeyCount: 3}}
	data := writeStream(t, evs, exactHeader, WriterOptions{})
	r, _ := NewReader(bytes.NewReader(data), "p", ReaderOptions{})
	var out bytes.Buffer
	if _, err := ExportCSV(&out, r); err != nil {
		t.Fatal(err)
	}
	want := CSVHeader + "\n1234,7,meta,mg,hit,0,1,0000000000000abc,5,0000000000000def,99,3,-1,150000,2,1,3\n"
	if out.String() != want {
		t.Fatalf("got\n%s", out.String())
	}
	if n, f := strings.Count(CSVHeader, ",")+1, reflect.TypeOf(Event{}).NumField(); n != f {
		t.Fatalf("CSV header has %d fields, Event has %d", n, f)
	}
}
