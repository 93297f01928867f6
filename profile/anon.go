// This file holds the anonymizer: the keyed SipHash that turns keys into the only identities a profile ever
// stores, and the salt files that hold its secret. It is separate from the format because recorders (through
// mcproto's Pairer) and importers use it without touching a profile file.

package profile

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/dchest/siphash"
	"github.com/membench/membench/internal/safefile"
)

// SaltSize is the length in bytes of an anonymizer secret (a SipHash-2-4 key).
const SaltSize = 16

// DefaultNSDelim is the namespace delimiter used when none is configured: "user:42" has namespace "user".
const DefaultNSDelim = ':'

// RandomSaltWarning is what a recorder should tell the user when it runs without a salt file and so uses
// RandomAnonymizer.
const RandomSaltWarning = "no salt file given (--salt-file): using a random salt for this run only; " +
	"this profile's key hashes cannot be correlated with any other profile (merge, compare); " +
	"create a shared salt with 'membench salt -o FILE' and pass --salt-file FILE"

// ErrInsecureSaltFile is wrapped by LoadSaltFile's error when every user may read the file (any permission
// bit for others) or its group may rewrite it. Reading by the file's group is allowed: that is how a service
// account gets the secret (root:membench 0640) and how a Kubernetes Secret volume hands it over (defaultMode
// 0440 with the pod's fsGroup).
var ErrInsecureSaltFile = errors.New("salt file is open to other users")

// Domain strings for the keys derived from the secret. Each keyed function gets its own SipHash key, so a
// namespace hash or the fingerprint is never the key hash of the same bytes.
const (
	nsKeyDomain          = "membench/v1/namespace-key"
	fingerprintKeyDomain = "membench/v1/fingerprint-key"
	fingerprintMessage   = "membench/v1/salt-fingerprint"
)

// Anonymizer hashes memcached keys with keyed SipHash-2-4. It implements mcproto.KeyHasher. It is immutable
// after construction and safe for concurrent use; no method allocates.
//
// Without the secret a hash cannot be inverted or tested against a guessed key; with the same secret, two
// recordings hash equal keys equally, which is what merge and compare rely on. The secret never leaves the
// Anonymizer: profiles carry only Fingerprint, a keyed hash of a fixed string.
type Anonymizer struct {
	k0, k1  uint64 // key hashes
	n0, n1  uint64 // namespace hashes, derived from the secret
	fp      uint64
	nsDelim byte
	nsOn    bool
}

// NewAnonymizer returns an Anonymizer keyed by secret. When nsOn is set, HashNamespace hashes the key's prefix
// up to the first nsDelim byte (DefaultNSDelim is ':').
func NewAnonymizer(secret [SaltSize]byte, nsDelim byte, nsOn bool) *Anonymizer {
	a := &Anonymizer{
		k0:      binary.LittleEndian.Uint64(secret[0:8]),
		k1:      binary.LittleEndian.Uint64(secret[8:16]),
		nsDelim: nsDelim,
		nsOn:    nsOn,
	}
	a.n0, a.n1 = siphash.Hash128(a.k0, a.k1, []byte(nsKeyDomain))
	f0, f1 := siphash.Hash128(a.k0, a.k1, []byte(fingerprintKeyDomain))
	a.fp = siphash.Hash(f0, f1, []byte(fingerprintMessage))
	return a
}

// RandomAnonymizer returns an Anonymizer with a fresh random secret that is never stored. Profiles recorded
// with it cannot be correlated with any other profile; tell the user so with RandomSaltWarning.
func RandomAnonymizer(nsDelim byte, nsOn bool) *Anonymizer {
	return NewAnonymizer(GenerateSalt(), nsDelim, nsOn)
}

// HashKey returns the keyed SipHash-2-4 of key. It never returns 0, which profiles reserve for keyless events.
func (a *Anonymizer) HashKey(key []byte) uint64 {
	h := siphash.Hash(a.k0, a.k1, key)
	if h == 0 {
		h = 1
	}
	return h
}

// HashNamespace returns the keyed hash of key's namespace, the bytes before the first delimiter. It returns 0
// when namespaces are off or key has no delimiter, and never 0 otherwise. It uses a key derived from the
// secret, so it differs from HashKey of the same bytes.
func (a *Anonymizer) HashNamespace(key []byte) uint64 {
	if !a.nsOn {
		return 0
	}
	i := bytes.IndexByte(key, a.nsDelim)
	if i < 0 {
		return 0
	}
	h := siphash.Hash(a.n0, a.n1, key[:i])
	if h == 0 {
		h = 1
	}
	return h
}

// Fingerprint identifies the secret without revealing it: a keyed hash of a fixed string. Profiles store it in
// their header; equal fingerprints mean the key hashes of two profiles are comparable.
func (a *Anonymizer) Fingerprint() uint64 { return a.fp }

// NamespaceDelim returns the namespace delimiter and whether namespaces are hashed.
func (a *Anonymizer) NamespaceDelim() (byte, bool) { return a.nsDelim, a.nsOn }

// GenerateSalt returns a new random secret from crypto/rand.
func GenerateSalt() [SaltSize]byte {
	var s [SaltSize]byte
	_, _ = rand.Read(s[:]) // never fails since Go 1.24: it crashes the program instead
	return s
}

// WriteSaltFile writes secret to a new file at path as 32 hex digits and a newline, with mode 0600. It refuses
// to overwrite an existing file: replacing a salt makes every profile recorded with it uncorrelatable.
func WriteSaltFile(path string, secret [SaltSize]byte) error {
	// Through a temporary file linked into place only if nothing is at path: a crash never leaves half a salt,
	// and a symlink at path counts as an existing file.
	err := safefile.Write(path, safefile.Private, false, func(w io.Writer) error {
		_, err := io.WriteString(w, hex.EncodeToString(secret[:])+"\n")
		return err
	})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot write salt file %s: it already exists; refusing to overwrite a salt "+
			"(profiles recorded with it would no longer be comparable); choose another path", path)
	}
	if err != nil {
		return fmt.Errorf("cannot write salt file: %w", err)
	}
	return nil
}

// LoadSaltFile reads a secret written by WriteSaltFile (32 hex digits; surrounding whitespace is ignored).
// The file's owner and group may read it (0600, 0640, 0440); a file others may read, or its group may write, is
// refused with an error wrapping ErrInsecureSaltFile that names the flag and the fix.
func LoadSaltFile(path string) ([SaltSize]byte, error) {
	var s [SaltSize]byte
	f, err := os.Open(path)
	if err != nil {
		return s, fmt.Errorf("cannot open salt file (--salt-file): %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s, fmt.Errorf("cannot stat salt file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return s, fmt.Errorf("cannot use salt file %s: not a regular file", path)
	}
	switch perm := st.Mode().Perm(); {
	case perm&0o007 != 0:
		return s, fmt.Errorf("cannot use salt file %s (--salt-file / salt_file): mode %04o gives every user "+
			"access to the secret; run 'chmod 640 %s' (its owner and group may read it: give the group to the service "+
			"account) or 'chmod 600 %s': %w", path, perm, path, path, ErrInsecureSaltFile)
	case perm&0o020 != 0:
		return s, fmt.Errorf("cannot use salt file %s (--salt-file / salt_file): mode %04o lets the file's group "+
			"replace the secret; run 'chmod 640 %s' or 'chmod 600 %s': %w", path, perm, path, path,
			ErrInsecureSaltFile)
	}
	buf, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return s, fmt.Errorf("cannot read salt file %s: %w", path, err)
	}
	text := strings.TrimSpace(string(buf))
	if len(text) != 2*SaltSize {
		return s, fmt.Errorf("cannot use salt file %s: want %d hex digits, found %d characters; "+
			"create a salt with 'membench salt -o FILE'", path, 2*SaltSize, len(text))
	}
	if _, err := hex.Decode(s[:], []byte(text)); err != nil {
		return [SaltSize]byte{}, fmt.Errorf("cannot use salt file %s: not hex (%v); "+
			"create a salt with 'membench salt -o FILE'", path, err)
	}
	return s, nil
}
