package profile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/membench/membench/mcproto"
)

// TestPrivacy records distinctive keys and values the way a recorder does (Anonymizer as the Pairer's
// KeyHasher, FromPair, Writer) and checks that neither they nor the secret appear anywhere in the profile:
// not in the file bytes, and not in any decompressed column.
func TestPrivacy(t *testing.T) {
	secret := [SaltSize]byte{'S', 'E', 'C', 'R', 'E', 'T', '-', 's', 'a', 'l', 't', '-', '1', '2', '3', '4'}
	a := NewAnonymizer(secret, ':', true)
	var keys, values [][]byte
	for i := range 200 {
		keys = append(keys, fmt.Appendf(nil, "customer:%d:email=alice%d@example.com", i, i))
		values = append(values, fmt.Appendf(nil, "CREDIT-CARD-4111-1111-1111-%04d-private-value", i))
	}
	// Keys of every length, so short prefixes are covered too.
	keys = append(keys, []byte("pw:hunter2-hunter2"), []byte("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"))
	values = append(values, []byte("ssn=078-05-1120"), bytes.Repeat([]byte("V"), 300))

	for _, c := range []Compression{CompressionZstd, CompressionNone} {
		h := Header{Mode: "proxy", Host: "cache-01", SaltFingerprint: a.Fingerprint(),
			Settings: map[string]string{"namespace_delimiter": ":", "sample_rate": "1"}}
		var evs []Event
		for round := range 5 {
			for i, k := range keys {
				p := mcproto.Pair{Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet, Op: mcproto.CmdSet, Status: mcproto.StatusStored,
					HasKey: true, KeySize: uint16(len(k)), KeyHash: a.HashKey(k), NSHash: a.HashNamespace(k),
					ValueSize: uint32(len(values[i%len(values)])), HasTTL: true, Exptime: 60,
					ReqTime: int64(1e18) + int64(round*1000+i)*1000, RespTime: int64(1e18) + int64(round*1000+i)*1000 + 5000,
					Conn: uint64(i % 7)}
				if round%2 == 1 {
					p.Cmd, p.Op, p.Status = mcproto.CmdGet, mcproto.CmdGet, mcproto.StatusHit
				}
				evs = append(evs, FromPair(&p))
			}
		}
		data := writeStream(t, evs, h, WriterOptions{Compression: c, BlockEvents: 300})

		haystacks := [][]byte{data}
		haystacks = append(haystacks, decodedColumns(t, data)...)
		needles := map[string][]byte{
			"secret":         secret[:],
			"secret hex":     []byte(hex.EncodeToString(secret[:])),
			"secret HEX":     []byte(strings.ToUpper(hex.EncodeToString(secret[:]))),
			"secret k0 word": binary.BigEndian.AppendUint64(nil, binary.LittleEndian.Uint64(secret[:8])),
		}
		for i, k := range keys {
			needles[fmt.Sprintf("key %d", i)] = k
			if j := bytes.IndexByte(k, ':'); j > 0 {
				needles[fmt.Sprintf("key %d suffix", i)] = k[j+1:]
			}
		}
		for i, v := range values {
			needles[fmt.Sprintf("value %d", i)] = v
		}
		for name, n := range needles {
			for hi, hs := range haystacks {
				if bytes.Contains(hs, n) {
					t.Fatalf("%v: %s (%q) found in haystack %d", c, name, n, hi)
				}
			}
		}
		// The profile is still useful: the same key hashes equally in every round.
		got, _, err := readAll(t, data, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].KeyHash != got[len(keys)].KeyHash || got[0].KeyHash != a.HashKey(keys[0]) {
			t.Fatal("key hashes do not survive the round trip")
		}
	}
}

// decodedColumns returns every column of every events block in data, decompressed.
func decodedColumns(t *testing.T, data []byte) [][]byte {
	t.Helper()
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	var out [][]byte
	offs := blockOffsets(t, data)
	for i := 0; i+1 < len(offs); i++ {
		bh, err := parseBlockHeader(data[offs[i]:])
		if err != nil {
			t.Fatal(err)
		}
		if bh.kind != blockEvents {
			continue
		}
		payload := data[offs[i]+blockHeaderLen : offs[i]+blockHeaderLen+int(bh.storedLen)]
		var raw []byte
		cols, err := splitPayload(payload, bh.comp, int(bh.rawLen), func() (*zstd.Decoder, error) { return zd, nil }, &raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			out = append(out, bytes.Clone(c))
		}
	}
	if len(out) == 0 {
		t.Fatal("no columns found")
	}
	return out
}
