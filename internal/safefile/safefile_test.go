package safefile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	type setup int
	const (
		none setup = iota
		file0644
		symlink
		dangling
	)
	f := func(at setup, perm fs.FileMode, replace bool, wantErr bool, wantPerm fs.FileMode) {
		t.Helper()
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		switch at {
		case file0644:
			os.WriteFile(out, []byte("old"), 0o644)
			os.Chmod(out, 0o644)
		case symlink:
			os.Symlink(victim, out)
		case dangling:
			os.Symlink(filepath.Join(dir, "nowhere"), out)
		}
		err := Write(out, perm, replace, func(w io.Writer) error {
			_, err := io.WriteString(w, "new")
			return err
		})
		if b, _ := os.ReadFile(victim); string(b) != "victim" {
			t.Fatalf("setup %d: the symlink's target was written", at)
		}
		if _, serr := os.Stat(filepath.Join(dir, "nowhere")); serr == nil {
			t.Fatalf("setup %d: the dangling symlink was followed", at)
		}
		if wantErr {
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("setup %d: err %v, want an 'already exists' error", at, err)
			}
		} else {
			if err != nil {
				t.Fatalf("setup %d: %v", at, err)
			}
			st, err := os.Lstat(out)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != wantPerm {
				t.Fatalf("setup %d: %v %v, want a regular file of mode %04o", at, st.Mode(), err, wantPerm)
			}
			if b, _ := os.ReadFile(out); string(b) != "new" {
				t.Fatalf("setup %d: content %q", at, b)
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Fatalf("setup %d: temporary file %s left behind", at, e.Name())
			}
		}
	}
	f(none, Private, false, false, 0o600)
	f(none, Private, true, false, 0o600)
	f(file0644, Private, false, true, 0)
	f(file0644, Private, true, false, 0o600)
	f(symlink, Private, false, true, 0)
	f(symlink, Private, true, false, 0o600)
	f(dangling, Private, false, true, 0)
	f(dangling, Private, true, false, 0o600)
}

// TestCommitRace: a file that appears at the target after Create is not replaced without replace.
func TestCommitRace(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	f, err := Create(out, Private, false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(out, []byte("theirs"), 0o644)
	if err := f.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Commit over a file that appeared: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "theirs" {
		t.Fatalf("the file that appeared was replaced: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

// TestAbort: the target is untouched and nothing is left behind.
func TestAbort(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	os.WriteFile(out, []byte("old"), 0o644)
	f, err := Create(out, Public, true)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	f.Abort()
	f.Abort()
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatalf("Abort changed the target: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
}

// TestPublicMode: a report is at most 0644 even over a 0666 file.
func TestPublicMode(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	os.WriteFile(out, []byte("old"), 0o666)
	os.Chmod(out, 0o666)
	if err := Write(out, Public, true, func(io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm()&^0o644 != 0 {
		t.Fatalf("mode %04o, want at most 0644", st.Mode().Perm())
	}
}
