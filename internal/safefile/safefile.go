// Package safefile writes output files the one way membench writes them (STYLE.md, "Files"): into a
// temporary file beside the target, renamed into place once complete, so that the target never holds half a
// file; a symlink at the target is never followed (it is replaced, or counts as an existing file); and the
// file gets the mode asked for whatever was there before, because a replaced file's mode is not inherited.
//
// Recorders (proxy, tap) do not use it: a profile being recorded lives at its own path from the start, so that
// a killed recorder leaves a readable file there. They create it with O_EXCL, which never follows a symlink
// either.
package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Modes for Create.
const (
	// Private is the mode of files holding events (profiles, exported traces) and secrets: owner only,
	// whatever existed at the target before.
	Private fs.FileMode = 0o600
	// Public is the widest mode of reports (HTML, JSON); the umask may narrow it.
	Public fs.FileMode = 0o644
)

// File is an output being written: an *os.File on the temporary file. Commit puts it in place; Abort (or a
// failed Commit) removes it. Exactly one of them must be called.
type File struct {
	*os.File
	path    string
	perm    fs.FileMode
	replace bool
	done    bool
}

// Create starts writing path. perm is Private or Public: a Private file is made exactly 0600; a Public one
// is created 0644 less the umask. Without replace, Create refuses a path where anything exists, a symlink
// (dangling or not) included, with an error satisfying errors.Is(err, fs.ErrExist); Commit checks again. With
// replace, Commit replaces whatever is at path, a symlink itself rather than the file it points to.
func Create(path string, perm fs.FileMode, replace bool) (*File, error) {
	if perm != Private && perm != Public {
		panic(fmt.Sprintf("BUG: safefile.Create with mode %04o", perm))
	}
	if !replace {
		if err := checkAbsent(path); err != nil {
			return nil, err
		}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for range 100 {
		var r [6]byte
		_, _ = rand.Read(r[:])
		tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot create %s: %w", path, err)
		}
		if perm == Private {
			// The umask can only have narrowed the mode; make it exactly 0600 anyway.
			if err := f.Chmod(Private); err != nil {
				f.Close()
				os.Remove(tmp)
				return nil, fmt.Errorf("cannot create %s: %w", path, err)
			}
		}
		return &File{File: f, path: path, perm: perm, replace: replace}, nil
	}
	return nil, fmt.Errorf("cannot create a temporary file beside %s", path)
}

// existError says the target exists; errors.Is(err, fs.ErrExist) holds, so callers can offer --force.
type existError struct{ path string }

func (e existError) Error() string { return "cannot create " + e.path + ": it already exists" }
func (e existError) Unwrap() error { return fs.ErrExist }

func checkAbsent(path string) error {
	_, err := os.Lstat(path)
	if err == nil {
		return existError{path}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return nil
}

// Path returns the target path.
func (f *File) Path() string { return f.path }

// Commit syncs and closes the temporary file and puts it at the target path. On error the temporary file is
// removed and the target is as it was.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("cannot commit %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.File.Name()
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", f.path, err)
	}
	if f.replace {
		// rename(2) replaces a symlink at the target, never the file it points to.
		err = os.Rename(tmp, f.path)
	} else {
		err = linkNoReplace(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return existError{f.path}
		}
		return fmt.Errorf("cannot write %s: %w", f.path, err)
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// linkNoReplace puts tmp at path only if nothing is there: link(2) fails with EEXIST when path exists, and does
// not follow a symlink there. On a file system without hard links it falls back to a check and a rename.
func linkNoReplace(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	var le *os.LinkError
	if errors.As(err, &le) && (errors.Is(le.Err, syscall.EPERM) || errors.Is(le.Err, syscall.ENOTSUP) ||
		errors.Is(le.Err, syscall.EOPNOTSUPP) || errors.Is(le.Err, syscall.EXDEV)) {
		if err := checkAbsent(path); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	return err
}

// syncDir makes a rename durable; file systems that cannot sync a directory are not an error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Abort closes and removes the temporary file; the target is untouched. It does nothing after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// Write writes path through a temporary file with what fill writes to it, and commits it when fill succeeds.
func Write(path string, perm fs.FileMode, replace bool, fill func(w io.Writer) error) error {
	f, err := Create(path, perm, replace)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
