// Native fuzz targets for the parsers and the Pairer. The parsers must never panic, never claim more bytes
// than they were given, and frame a stream the same way however its bytes arrive; the Pairer must never
// panic, never yield more pairs than the requests it was given can produce, and drain on Close. Seeds live in
// testdata/fuzz/<target>; the conformance scripts are added as seeds too.
package mcproto

import (
	"errors"
	"strings"
	"testing"
)

// Inputs up to fuzzMaxBytewise bytes are also fed one byte at a time, up to fuzzMaxSevens seven bytes at a
// time; both cost a parse per step, which slows the fuzzer (and its minimizer) down on long inputs.
const (
	fuzzMaxBytewise = 256
	fuzzMaxSevens   = 1024
)

// fuzzCut is a split point of data that depends only on data.
func fuzzCut(data []byte) int {
	if len(data) == 0 {
		return 0
	}
	return int((FNVHasher{}).HashKey(data) % uint64(len(data)+1))
}

// fuzzSplits checks a stream framed by the parser mk builds: the contract on every call, and the same frames
// read whole, in two pieces at a data-dependent point, and (for short inputs) byte by byte. Line limits are
// lifted for the comparison, since how far memcached reads a line without "\n" depends on its reads too.
func fuzzSplits(t *testing.T, data []byte, mk func(lifted bool) func([]byte) (int, error, string, confDetail)) {
	t.Helper()
	if _, _, bad := confSplit(data, confEvery(0), mk(false)); bad != nil {
		t.Fatalf("default limits, %q: %v", data, bad)
	}
	whole, rest, bad := confSplit(data, confEvery(0), mk(true))
	if bad != nil {
		t.Fatalf("%q: %v", data, bad)
	}
	cut := fuzzCut(data)
	check := func(how string, next func(int) int) {
		t.Helper()
		frames, r, bad := confSplit(data, next, mk(true))
		if bad != nil {
			t.Fatalf("%q read %s: %v", data, how, bad)
		}
		for i := 0; i < len(whole) || i < len(frames); i++ {
			if i >= len(whole) || i >= len(frames) || whole[i] != frames[i] {
				var w, g confFrame
				if i < len(whole) {
					w = whole[i]
				}
				if i < len(frames) {
					g = frames[i]
				}
				t.Fatalf("%q read %s: frame %d is %+v; read whole it is %+v", data, how, i, g, w)
			}
		}
		if r != rest {
			t.Fatalf("%q read %s: %d bytes left; read whole %d", data, how, r, rest)
		}
	}
	check("in two pieces", func(fed int) int {
		if fed < cut {
			return cut
		}
		return len(data)
	})
	if len(data) <= fuzzMaxBytewise {
		check("byte by byte", confEvery(1))
	}
	if len(data) <= fuzzMaxSevens {
		check("7 bytes at a time", confEvery(7))
	}
}

// fuzzRequestParse parses with the invariants a request frame must hold.
func fuzzRequestParse(t *testing.T, data []byte, lifted bool, d Dialect) func([]byte) (int, error, string, confDetail) {
	p := &RequestParser{Dialect: d}
	if lifted {
		p.MaxLine, p.MaxGetLine = len(data)+1, len(data)+1
	}
	var r Request
	return func(buf []byte) (int, error, string, confDetail) {
		n, err := p.Parse(buf, &r)
		if err == ErrIncomplete {
			return n, err, "", confDetail{}
		}
		detail := confReqDetail(&r)
		var pe *ProtocolError
		switch {
		case err == nil:
			if n != r.FrameLen || r.HeaderLen <= 0 || r.HeaderLen > r.FrameLen || r.ValueLen < 0 {
				t.Fatalf("%q: n=%d for %s", buf, n, detail)
			}
			for _, k := range r.Keys {
				if len(k) == 0 || len(k) > MaxKeyLen {
					t.Fatalf("%q: accepted a key of %d bytes: %s", buf, len(k), detail)
				}
			}
		case errors.As(err, &pe):
			if n > 0 && n != r.FrameLen {
				t.Fatalf("%q: rejected %d bytes, frame %d: %v, %s", buf, n, r.FrameLen, err, detail)
			}
		}
		return n, err, r.Cmd.String(), detail
	}
}

// fuzzResponseParse parses with the invariants a response frame must hold.
func fuzzResponseParse(t *testing.T, data []byte, lifted bool) func([]byte) (int, error, string, confDetail) {
	p := &ResponseParser{}
	if lifted {
		p.MaxLine = len(data) + 1
	}
	var r Response
	return func(buf []byte) (int, error, string, confDetail) {
		n, err := p.Parse(buf, &r)
		if err == ErrIncomplete {
			return n, err, "", confDetail{}
		}
		detail := confRespDetail(&r)
		if err == nil {
			if n != r.FrameLen || r.HeaderLen <= 0 || r.HeaderLen > r.FrameLen || r.ValueLen < 0 {
				t.Fatalf("%q: n=%d for %s", buf, n, detail)
			}
			if r.Proto != ProtoBinary && r.HasValue && r.FrameLen != r.HeaderLen+r.ValueLen+2 {
				t.Fatalf("%q: value of %d bytes in a frame of %d: %s", buf, r.ValueLen, r.FrameLen, detail)
			}
			if r.Proto == ProtoBinary && r.FrameLen != r.HeaderLen+r.ValueLen {
				t.Fatalf("%q: binary value of %d bytes in a frame of %d: %s", buf, r.ValueLen, r.FrameLen, detail)
			}
		}
		return n, err, confRespKind(&r), detail
	}
}

// fuzzScriptRequests returns the request streams of the conformance scripts, as seeds.
func fuzzScriptRequests() [][]byte {
	var out [][]byte
	for _, script := range [][]confStep{confTextScript(), confMetaScript(), confBinaryScript()} {
		var b []byte
		for _, s := range script {
			b = append(b, strings.ReplaceAll(s.req, "$CAS", "1")...)
		}
		out = append(out, b)
	}
	return out
}

func FuzzRequest(f *testing.F) {
	for _, seed := range fuzzScriptRequests() {
		f.Add(seed)
	}
	for _, c := range dialectCases() {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []Dialect{Dialect1_6_18, DialectNewest} {
			fuzzSplits(t, data, func(lifted bool) func([]byte) (int, error, string, confDetail) {
				return fuzzRequestParse(t, data, lifted, d)
			})
		}
	})
}

func FuzzResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplits(t, data, func(lifted bool) func([]byte) (int, error, string, confDetail) {
			return fuzzResponseParse(t, data, lifted)
		})
	})
}

// FuzzPairing feeds a request stream and a response stream to a Pairer, interleaved as the bits of order
// say (1: the next request, 0: the next response), with some value-carrying responses reported before their
// data block completes.
func FuzzPairing(f *testing.F) {
	f.Fuzz(func(t *testing.T, reqs, resps []byte, order uint64) {
		var budget, emitted int
		pr := &Pairer{Hasher: FNVHasher{}, MaxPending: 32}
		pr.Emit = func(p *Pair) {
			emitted++
			if int(p.Cmd) >= NumCommands || int(p.Status) >= NumStatuses {
				t.Fatalf("pair with command %d status %d: %+v", p.Cmd, p.Status, *p)
			}
			if emitted > budget {
				t.Fatalf("%d pairs from requests that can make %d; last %+v", emitted, budget, *p)
			}
		}
		var rp RequestParser
		var sp ResponseParser
		var req Request
		var resp Response
		reqOff, respOff := 0, 0
		reqsDone, respsDone := len(reqs) == 0, len(resps) == 0
		registered := uint64(0)
		for step := 0; !reqsDone || !respsDone; step++ {
			bit := order>>(step%64)&1 == 1
			now := int64(step)
			if !reqsDone && (bit || respsDone) {
				n, err := rp.Parse(reqs[reqOff:], &req)
				var pe *ProtocolError
				if err == ErrIncomplete || (errors.As(err, &pe) && pe.Close) {
					reqsDone = true
					continue
				}
				reqOff += n
				reqsDone = reqOff == len(reqs)
				if !pr.Streaming() {
					if len(req.Keys) == 0 || !req.Cmd.HasKey() {
						budget++
					} else {
						budget += len(req.Keys)
					}
					registered++
				}
				pr.Request(&req, now)
				if step%5 == 0 {
					pr.RequestDone(now)
				}
			} else {
				n, err := sp.Parse(resps[respOff:], &resp)
				if err != nil {
					respsDone = true
					continue
				}
				respOff += n
				respsDone = respOff == len(resps)
				if resp.HasValue && order>>((step*7+3)%64)&1 == 1 {
					pr.Response(&resp, now, false)
					pr.ResponseDone(now)
				} else {
					pr.Response(&resp, now, true)
				}
			}
			if pr.Pending() < 0 || pr.Pending() > 32 || pr.PendingLoud() < 0 || pr.PendingLoud() > pr.Pending() {
				t.Fatalf("pending %d, loud %d", pr.Pending(), pr.PendingLoud())
			}
		}
		pr.Close(1 << 40)
		if pr.Pending() != 0 || pr.PendingLoud() != 0 {
			t.Fatalf("pending %d, loud %d after Close", pr.Pending(), pr.PendingLoud())
		}
		st := pr.Stats
		if st.Requests != registered || st.Pairs != uint64(emitted) {
			t.Fatalf("stats %+v; registered %d requests, %d pairs emitted", st, registered, emitted)
		}
		// Every key of every request yields exactly one pair, unless MaxPending dropped it.
		if emitted+int(st.Overflow) != budget {
			t.Fatalf("%d pairs and %d dropped from requests that make %d; stats %+v", emitted, st.Overflow, budget, st)
		}
	})
}
