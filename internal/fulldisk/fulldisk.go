// Package fulldisk gives tests a real file system that runs out of space: a small tmpfs mounted for the test,
// and a filler file that takes what is left. Mounting needs root (CI runs the tests as root); elsewhere the
// test is skipped with the reason, and under CI=true it fails instead, as for any missing test dependency.
package fulldisk

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/membench/membench/internal/mctest"
)

// Mount mounts a tmpfs of size bytes on a new directory and returns it; it is unmounted when the test ends.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	opts := "size=" + strconv.FormatInt(size, 10) + ",mode=0700"
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		mctest.Missing(t, "cannot mount a tmpfs to fill up (needs root): "+err.Error())
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("cannot unmount the test tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full, then gives back leave bytes (whole pages: tmpfs
// counts pages), and returns a function that removes the file.
func Fill(t testing.TB, dir string, leave int64) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// Whatever is left is less than a page: take it byte by byte.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	if leave > 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(st.Size()-(leave+4095)/4096*4096, 0)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("cannot free %s: %v", dir, err)
		}
	}
}
