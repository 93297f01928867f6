package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

const twitterLines = `0,nz:u:eeW511W3dcH3de3d15ec,22,0,9,get,0
0,nz:u:eeW511W3dcH3de3d15ec,22,342,9,set,3600
1,nz:u:eeW511W3dcH3de3d15ec,22,342,17,get,0
1,nz:t:ZZZ0aBCd,13,1200,17,gets,0
2,other,5,10,3,add,60
`

// readProfile returns the header and events of the profile at path.
func loadProfile(t *testing.T, path string) (profile.Header, []profile.Event) {
	t.Helper()
	r, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []profile.Event
	var ev profile.Event
	for r.Next(&ev) {
		evs = append(evs, ev)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return r.Header(), evs
}

func TestImport_Twitter(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt.hex")
	if code, _, e := runCLI(t, "salt", "-o", salt); code != 0 {
		t.Fatal(e)
	}
	in := filepath.Join(dir, "trace.csv")
	os.WriteFile(in, []byte(twitterLines), 0o644)
	out := filepath.Join(dir, "t.mbp")
	code, _, errOut := runCLI(t, "import", in, "--format", "twitter", "-o", out, "--salt-file", salt, "--host-label", "tw")
	if code != 0 || !strings.Contains(errOut, "imported 5 events") {
		t.Fatalf("import: %d %q", code, errOut)
	}
	h, evs := loadProfile(t, out)
	secret, _ := profile.LoadSaltFile(salt)
	a := profile.NewAnonymizer(secret, ':', true)
	if h.Mode != "import" || h.Host != "tw" || h.SaltFingerprint != a.Fingerprint() ||
		h.Settings["import_format"] != "twitter" || h.Settings["namespace_delimiter"] != ":" {
		t.Fatalf("header %+v", h)
	}
	if len(evs) != 5 || evs[1].Cmd != mcproto.CmdSet || evs[1].TTL != 3600 || evs[1].ValueSize != 342 ||
		evs[0].KeyHash != a.HashKey([]byte("nz:u:eeW511W3dcH3de3d15ec")) || evs[2].Conn != 17 {
		t.Fatalf("events %+v", evs)
	}
	data, _ := os.ReadFile(out)
	if bytes.Contains(data, []byte("eeW511W3dcH3de3d15ec")) {
		t.Fatal("key text in the profile")
	}

	// The same trace, zstd-compressed and from standard input is not testable here; compressed from a file is.
	zin := filepath.Join(dir, "trace.csv.zst")
	enc, _ := zstd.NewWriter(nil)
	os.WriteFile(zin, enc.EncodeAll([]byte(twitterLines), nil), 0o644)
	zout := filepath.Join(dir, "z.mbp")
	if code, _, errOut := runCLI(t, "import", "--format", "twitter", zin, "-o", zout, "--salt-file", salt); code != 0 {
		t.Fatalf("zstd import: %q", errOut)
	}
	if _, zevs := loadProfile(t, zout); len(zevs) != 5 || zevs[0].KeyHash != evs[0].KeyHash {
		t.Fatal("zstd input gives other events")
	}

	// Existing output: refused, then --force.
	code, _, errOut = runCLI(t, "import", "--format", "twitter", in, "-o", out)
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("existing output: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "import", "--format", "twitter", in, "-o", out, "--force")
	if code != 0 || !strings.Contains(errOut, "random salt") {
		t.Fatalf("--force without salt: %d %q", code, errOut)
	}
}

func TestImport_OracleGeneral(t *testing.T) {
	dir := t.TempDir()
	var in []byte
	for i, obj := range []uint64{7, 8, 7} {
		in = binary.LittleEndian.AppendUint32(in, uint32(100+i))
		in = binary.LittleEndian.AppendUint64(in, obj)
		in = binary.LittleEndian.AppendUint32(in, 100)
		in = binary.LittleEndian.AppendUint64(in, ^uint64(0))
	}
	path := filepath.Join(dir, "t.og")
	os.WriteFile(path, in, 0o644)
	out := filepath.Join(dir, "og.mbp")
	code, _, errOut := runCLI(t, "import", "--format", "oracle-general", path, "-o", out, "--key-size", "30")
	if code != 0 {
		t.Fatalf("import: %q", errOut)
	}
	_, evs := loadProfile(t, out)
	if len(evs) != 3 || evs[0].KeySize != 30 || evs[0].ValueSize != 70 || evs[0].KeyHash != evs[2].KeyHash ||
		evs[0].KeyHash == evs[1].KeyHash || evs[2].Time != 102e9 {
		t.Fatalf("events %+v", evs)
	}
}

func TestImport_Usage(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		code, _, errOut := runCLI(t, append([]string{"import"}, args...)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Fatalf("import %q: code %d, %q", args, code, errOut)
		}
	}
	f("--format", "in.csv", "-o", "out.mbp")
	f("unknown --format", "in.csv", "-o", "out.mbp", "--format", "csv")
	f("missing -o", "in.csv", "--format", "twitter")
	f("one input", "a", "b", "--format", "twitter", "-o", "x")
	f("--key-size", "a", "--format", "oracle-general", "-o", "x", "--key-size", "70000")
	f("--namespace-delimiter", "a", "--format", "twitter", "-o", "x", "--namespace-delimiter", "::")
}
