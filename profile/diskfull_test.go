package profile

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/fulldisk"
)

// syncLog is a log destination safe for the writer's timer goroutine and the test.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// diskFullWriter opens a Retry writer on a fresh, small tmpfs.
func diskFullWriter(t *testing.T) (w *Writer, dir, path string, log *syncLog, errs *atomic.Int64) {
	t.Helper()
	dir = fulldisk.Mount(t, 1<<20)
	path = filepath.Join(dir, "p.mbp")
	log, errs = &syncLog{}, &atomic.Int64{}
	w, err := NewWriter(path, exactHeader, WriterOptions{BlockEvents: 256, FlushInterval: 20 * time.Millisecond,
		Compression: CompressionNone, Retry: true, Logger: slog.New(slog.NewTextHandler(log, nil)),
		OnWriteError: func(error) { errs.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	return w, dir, path, log, errs
}

// TestWriter_DiskFull: a write that fails for lack of space is logged once, counted, and retried; events
// arriving meanwhile are refused and counted as dropped; once space is freed writing resumes by itself; the
// file then holds exactly the events the writer says it holds, in order.
func TestWriter_DiskFull(t *testing.T) {
	w, dir, path, log, errs := diskFullWriter(t)
	var accepted []int64
	next := int64(0)
	put := func() error {
		ev := Event{Time: next, Conn: 1, KeyHash: uint64(next + 1), Upstream: -1}
		next++
		err := w.Write(&ev)
		if err == nil {
			accepted = append(accepted, ev.Time)
		}
		return err
	}
	for range 1000 {
		if err := put(); err != nil {
			t.Fatalf("before the disk filled up: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	free := fulldisk.Fill(t, dir, 0)

	// Write until the writer notices; the block that failed is kept.
	deadline := time.Now().Add(10 * time.Second)
	for !w.Failing() {
		if time.Now().After(deadline) {
			t.Fatal("the writer never noticed the full disk")
		}
		if err := put(); err != nil {
			t.Fatalf("an event was refused before the writer failed: %v", err)
		}
	}
	held := w.Events()
	refused := 0
	for range 500 {
		if err := put(); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("refused with %v, want ENOSPC", err)
			}
			refused++
		}
	}
	if refused != 500 || w.Dropped() != 500 || w.Events() != held {
		t.Fatalf("while full: refused %d of 500, Dropped %d, Events %d → %d", refused, w.Dropped(), held, w.Events())
	}
	if errs.Load() < 1 || w.WriteErrors() != uint64(errs.Load()) {
		t.Fatalf("write errors: hook %d, WriteErrors %d", errs.Load(), w.WriteErrors())
	}
	time.Sleep(600 * time.Millisecond) // a few retries, all failing
	if n := strings.Count(log.String(), "level=ERROR"); n != 1 || !strings.Contains(log.String(), path) ||
		!strings.Contains(log.String(), "no space left on device") {
		t.Fatalf("want one ERROR naming %s and the error, got %d:\n%s", path, n, log.String())
	}

	free()
	deadline = time.Now().Add(30 * time.Second)
	for w.Failing() {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not resume after space was freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "recording resumed") {
		t.Fatalf("no resume message:\n%s", log.String())
	}
	for range 1000 {
		if err := put(); err != nil {
			t.Fatalf("after the resume: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after the resume: %v", err)
	}
	checkHolds(t, w, path, accepted)
}

// TestWriter_DiskFullAtClose: a disk still full at Close: the kept block's events are dropped, Close says so,
// and the file holds exactly what Events says, readable without a trailer.
func TestWriter_DiskFullAtClose(t *testing.T) {
	w, dir, path, _, _ := diskFullWriter(t)
	var accepted []int64
	for i := range int64(600) {
		ev := Event{Time: i, Conn: 1, KeyHash: uint64(i + 1), Upstream: -1}
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fulldisk.Fill(t, dir, 0)
	for i := int64(600); !w.Failing(); i++ {
		ev := Event{Time: i, Conn: 1, KeyHash: uint64(i + 1), Upstream: -1}
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, i)
		if i > 1e6 {
			t.Fatal("the writer never noticed the full disk")
		}
	}
	err := w.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close on a full disk: %v, want ENOSPC", err)
	}
	if w.Dropped() == 0 {
		t.Fatal("the kept block's events were not counted as dropped")
	}
	checkHolds(t, w, path, accepted[:w.Events()])
}

// checkHolds reads path back: its events are want (by time), as many as w.Events(), and its size is
// w.BytesWritten().
func checkHolds(t *testing.T, w *Writer, path string, want []int64) {
	t.Helper()
	if int64(len(want)) != w.Events() {
		t.Fatalf("Events %d, %d accepted", w.Events(), len(want))
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []int64
	var ev Event
	for r.Next(&ev) {
		got = append(got, ev.Time)
	}
	if r.Err() != nil || r.TruncatedBlocks() != 0 || r.CorruptBlocks() != 0 {
		t.Fatalf("reading back: %v, %d truncated, %d corrupt", r.Err(), r.TruncatedBlocks(), r.CorruptBlocks())
	}
	if len(got) != len(want) {
		t.Fatalf("the file holds %d events, the writer says %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d: time %d, want %d", i, got[i], want[i])
		}
	}
	if st, err := os.Stat(path); err != nil || st.Size() != w.BytesWritten() {
		t.Fatalf("file size %d, BytesWritten %d (%v)", st.Size(), w.BytesWritten(), err)
	}
}
