package replay

import (
	"testing"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// TestEncode_Frames encodes every command in every protocol and frames the result with mcproto's request
// parser: each request is one whole, valid frame with the key and value sizes of its event.
func TestEncode_Frames(t *testing.T) {
	enc := encoder{values: workload.NewValues(1 << 20)}
	cmds := []mcproto.Command{mcproto.CmdGet, mcproto.CmdGets, mcproto.CmdGat, mcproto.CmdGats, mcproto.CmdSet,
		mcproto.CmdAdd, mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas, mcproto.CmdDelete,
		mcproto.CmdIncr, mcproto.CmdDecr, mcproto.CmdTouch, mcproto.CmdMetaGet, mcproto.CmdMetaSet,
		mcproto.CmdMetaDelete, mcproto.CmdMetaArithmetic, mcproto.CmdMetaNoop, mcproto.CmdMetaDebug, mcproto.CmdNoop,
		mcproto.CmdVersion, mcproto.CmdStats, mcproto.CmdFlushAll, mcproto.CmdVerbosity}
	protos := []mcproto.Protocol{mcproto.ProtoText, mcproto.ProtoMeta, mcproto.ProtoBinary}
	for _, recorded := range protos {
		for _, override := range append([]mcproto.Protocol{mcproto.ProtoUnknown}, protos...) {
			for _, c := range cmds {
				for _, quiet := range []bool{false, true} {
					ev := profile.Event{Proto: recorded, Cmd: c, Quiet: quiet && recorded != mcproto.ProtoText,
						Noreply: quiet && recorded == mcproto.ProtoText, TTL: 60, Flags: 7, ValueSize: 321}
					if c.HasKey() {
						ev.KeyHash, ev.KeySize = 0xfeedface, 33
					}
					w, ok := toWire(&ev, override)
					if !ok {
						continue
					}
					buf, exp := enc.encode(nil, &ev, nil, w, 77)
					var p mcproto.RequestParser
					var r mcproto.Request
					n, err := p.Parse(buf, &r)
					if err != nil || n != len(buf) {
						t.Fatalf("%v %v as %v (quiet %v): %q framed as %d of %d bytes: %v", recorded, c, w.proto,
							quiet, buf, n, len(buf), err)
					}
					if r.Cmd != w.cmd {
						t.Fatalf("%v %v sent as %v, parsed as %v: %q", recorded, c, w.cmd, r.Cmd, buf)
					}
					if w.cmd.HasKey() && (len(r.Keys) != 1 || len(r.Keys[0]) != 33) {
						t.Fatalf("%v %v: keys %q", recorded, c, r.Keys)
					}
					if r.HasValue && r.ValueLen != 321 {
						t.Fatalf("%v %v: value of %d bytes", recorded, c, r.ValueLen)
					}
					if (exp == expNone) != (w.quiet && w.proto != mcproto.ProtoBinary && !isMeta(w.cmd)) {
						t.Fatalf("%v %v: expectation %v for quiet %v", recorded, c, exp, w.quiet)
					}
					if w.quiet && (r.Noreply || r.Quiet) != true {
						t.Fatalf("%v %v: quiet request %q parsed as loud", recorded, c, buf)
					}
				}
			}
		}
	}
}

// TestEncode_NoAlloc proves the request path does not allocate once the write buffer has grown.
func TestEncode_NoAlloc(t *testing.T) {
	enc := encoder{values: workload.NewValues(1 << 16)}
	buf := make([]byte, 0, 1<<20)
	for _, ev := range []profile.Event{
		{Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet, KeyHash: 1, KeySize: 40},
		{Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet, KeyHash: 1, KeySize: 40, ValueSize: 4000, TTL: 30},
		{Proto: mcproto.ProtoMeta, Cmd: mcproto.CmdMetaGet, KeyHash: 1, KeySize: 40, Quiet: true},
		{Proto: mcproto.ProtoBinary, Cmd: mcproto.CmdSet, KeyHash: 1, KeySize: 40, ValueSize: 100},
	} {
		w, _ := toWire(&ev, mcproto.ProtoUnknown)
		if n := testing.AllocsPerRun(1000, func() { buf, _ = enc.encode(buf[:0], &ev, nil, w, 9) }); n != 0 {
			t.Fatalf("encoding %v %v allocates %v times", ev.Proto, ev.Cmd, n)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	enc := encoder{values: workload.NewValues(1 << 16)}
	ev := profile.Event{Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet, KeyHash: 1, KeySize: 40, ValueSize: 500, TTL: 30}
	w, _ := toWire(&ev, mcproto.ProtoUnknown)
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(func() []byte { x, _ := enc.encode(nil, &ev, nil, w, 1); return x }())))
	for b.Loop() {
		buf, _ = enc.encode(buf[:0], &ev, nil, w, 1)
	}
}
