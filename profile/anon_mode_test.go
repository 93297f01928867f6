// The salt file's permission check: a service account reads the secret through the file's group (root:membench
// 0640, a Kubernetes Secret with defaultMode 0440 and fsGroup), every other user is kept out.
package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSaltFile_Mode(t *testing.T) {
	dir := t.TempDir()
	s := GenerateSalt()
	path := filepath.Join(dir, "salt.hex")
	if err := WriteSaltFile(path, s); err != nil {
		t.Fatal(err)
	}
	f := func(mode os.FileMode, wants ...string) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		got, err := LoadSaltFile(path)
		if len(wants) == 0 {
			if err != nil || got != s {
				t.Fatalf("mode %04o: %v, want the salt", mode, err)
			}
			return
		}
		if !errors.Is(err, ErrInsecureSaltFile) {
			t.Fatalf("mode %04o: %v, want ErrInsecureSaltFile", mode, err)
		}
		for _, w := range append(wants, "--salt-file", path, "chmod 600 "+path, "chmod 640 "+path) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("mode %04o: %q does not contain %q", mode, err, w)
			}
		}
	}
	// The owner, or the owner and the file's group, may read it.
	f(0o600)
	f(0o400)
	f(0o640)
	f(0o440)
	// Everyone else is kept out; the group may not replace the secret.
	f(0o644, "mode 0644 gives every user access")
	f(0o604, "mode 0604 gives every user access")
	f(0o602, "mode 0602 gives every user access")
	f(0o660, "mode 0660 lets the file's group replace the secret")
	f(0o666, "mode 0666 gives every user access")
}
