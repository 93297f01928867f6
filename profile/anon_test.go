package profile

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membench/membench/mcproto"
)

var _ mcproto.KeyHasher = (*Anonymizer)(nil)

var testSecret = [SaltSize]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}

func TestAnonymizer(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', true)
	b := NewAnonymizer(testSecret, ':', true)
	other := NewAnonymizer([SaltSize]byte{1}, ':', true)

	k := []byte("user:42:profile")
	if a.HashKey(k) != b.HashKey(k) {
		t.Fatal("same secret, different key hashes")
	}
	if a.HashKey(k) == other.HashKey(k) {
		t.Fatal("different secrets, same key hash")
	}
	if a.HashKey(k) == a.HashKey([]byte("user:43:profile")) {
		t.Fatal("different keys, same hash")
	}
	if a.Fingerprint() != b.Fingerprint() || a.Fingerprint() == other.Fingerprint() {
		t.Fatal("fingerprint does not follow the secret")
	}

	f := func(key string, wantNS bool) {
		t.Helper()
		ns := a.HashNamespace([]byte(key))
		if (ns != 0) != wantNS {
			t.Fatalf("HashNamespace(%q) = %x, want namespace %v", key, ns, wantNS)
		}
	}
	f("user:42", true)
	f(":42", true)
	f("plainkey", false)
	f("", false)

	// The namespace of "user:1" and "user:2" is the same, and is not the key hash of "user".
	if a.HashNamespace([]byte("user:1")) != a.HashNamespace([]byte("user:2")) {
		t.Fatal("same prefix, different namespace hashes")
	}
	if a.HashNamespace([]byte("user:1")) == a.HashKey([]byte("user")) {
		t.Fatal("namespace hash equals the key hash of the prefix")
	}
	if a.HashNamespace([]byte("user:1")) == a.HashNamespace([]byte("item:1")) {
		t.Fatal("different prefixes, same namespace hash")
	}

	off := NewAnonymizer(testSecret, ':', false)
	if off.HashNamespace(k) != 0 {
		t.Fatal("namespaces off, hash not 0")
	}
	slash := NewAnonymizer(testSecret, '/', true)
	if slash.HashNamespace([]byte("a/b")) != a.HashNamespace([]byte("a:b")) {
		t.Fatal("namespace hash depends on the delimiter, not just the prefix")
	}
	if r1, r2 := RandomAnonymizer(':', true), RandomAnonymizer(':', true); r1.Fingerprint() == r2.Fingerprint() {
		t.Fatal("two random anonymizers share a secret")
	}
}

func TestAnonymizer_ZeroAllocs(t *testing.T) {
	a := NewAnonymizer(testSecret, ':', true)
	key := []byte("session:0123456789abcdef0123456789abcdef")
	var sink uint64
	allocs := testing.AllocsPerRun(1000, func() {
		sink += a.HashKey(key)
		sink += a.HashNamespace(key)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per key", allocs)
	}
	_ = sink
}

func BenchmarkHashKey(b *testing.B) {
	a := NewAnonymizer(testSecret, ':', true)
	key := []byte("session:0123456789abcdef01234")
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	var sink uint64
	for b.Loop() {
		sink += a.HashKey(key) + a.HashNamespace(key)
	}
	_ = sink
}

func TestSaltFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "salt")
	s := GenerateSalt()
	if s == ([SaltSize]byte{}) || s == GenerateSalt() {
		t.Fatal("GenerateSalt is not random")
	}
	if err := WriteSaltFile(path, s); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("salt file mode %o, want 600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if string(data) != hex.EncodeToString(s[:])+"\n" {
		t.Fatalf("salt file holds %q", data)
	}
	got, err := LoadSaltFile(path)
	if err != nil || got != s {
		t.Fatalf("LoadSaltFile: %x, %v", got, err)
	}
	if err := WriteSaltFile(path, GenerateSalt()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}
	if again, _ := LoadSaltFile(path); again != s {
		t.Fatal("refused overwrite changed the file")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSaltFile(path)
	if !errors.Is(err, ErrInsecureSaltFile) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("world-readable salt: %v", err)
	}

	bad := func(name, content, want string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSaltFile(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v, want an error naming the file and %q", name, err, want)
		}
	}
	bad("short", "abcd\n", "32 hex digits")
	bad("long", strings.Repeat("ab", 17)+"\n", "32 hex digits")
	bad("nothex", strings.Repeat("zz", 16)+"\n", "not hex")
	bad("empty", "", "32 hex digits")
	if _, err := LoadSaltFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "--salt-file") {
		t.Fatalf("missing: %v", err)
	}
	// Surrounding whitespace is fine.
	p := filepath.Join(dir, "spaces")
	os.WriteFile(p, []byte("  "+hex.EncodeToString(s[:])+"\r\n\n"), 0o600)
	if got, err := LoadSaltFile(p); err != nil || got != s {
		t.Fatalf("whitespace: %x %v", got, err)
	}
}
