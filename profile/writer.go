// This file holds Writer, which buffers events into columnar blocks and writes them to a profile file or
// stream, flushing at least every FlushInterval so a crash loses little.

package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/membench/membench/internal/safefile"
)

// Writer defaults.
const (
	DefaultBlockEvents   = 1 << 18
	DefaultFlushInterval = time.Second
)

// Retry back-off of a writer with WriterOptions.Retry: the first retry after retryMin, each next one twice as
// late, at most retryMax apart.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 10 * time.Second
)

// WriterOptions tune a Writer. The zero value is the recommended setting.
type WriterOptions struct {
	// BlockEvents is the most events per block (0 = DefaultBlockEvents, at most MaxBlockEvents). Larger blocks
	// compress better (keys repeat within a block) and use more memory: about 80 bytes per event of a block
	// while writing (21 MB at the default, zstd included) and 30 while reading (8 MB).
	BlockEvents int
	// FlushInterval bounds how long an event stays in memory: a partial block is written once its first event
	// is this old, even when traffic is slow. 0 = DefaultFlushInterval; negative = only full blocks, Flush and
	// Close write.
	FlushInterval time.Duration
	// Compression of block payloads (default zstd).
	Compression Compression
	// Overwrite lets NewWriter replace an existing file (or a symlink, which is replaced, never followed); by
	// default it refuses. It implies Atomic: the file is 0600, whatever was there before.
	Overwrite bool
	// Atomic writes the profile to a temporary file beside the path, which Close renames into place and Abort
	// removes: the path never holds half a profile. For outputs made in one go (merge, import, synth); a
	// recorder writes at the path itself, so that a killed recorder leaves its events there.
	Atomic bool
	// Retry keeps a file writer going after a failed write, such as a full disk: the block that failed is
	// truncated away, kept and written again with back-off (from 250ms, doubling, at most 10s apart); events
	// that arrive meanwhile are refused and counted in Dropped; writing resumes once a retry succeeds. Without
	// Retry the first write error is final. Recorders set it; offline commands, which should rather fail, do
	// not. Retries happen on the flush timer (FlushInterval > 0) and on Write.
	Retry bool
	// Logger, when set, gets one ERROR (with the file and the error) when writing starts failing and one INFO
	// when it resumes.
	Logger *slog.Logger
	// OnWriteError, when set, is called for every failed write of the file, retries included (a recorder
	// counts them in profile_write_errors_total). It runs with the writer's lock held and must not call it.
	OnWriteError func(err error)
}

// Writer writes one profile. Its methods are safe for concurrent use, but events are stored in call order,
// so one goroutine (a Queue) should normally own it. Write never allocates once the block buffers have grown.
//
// Events are counted exactly: Events is what the profile holds (or will hold once buffered events are
// written), Dropped what it never will. After Close, Events is the number of events in the file.
type Writer struct {
	mu     sync.Mutex
	name   string
	w      io.Writer
	f      *os.File       // nil for stream writers
	sf     *safefile.File // the temporary file of an Atomic writer
	hdr    Header
	opts   WriterOptions
	enc    *blockEncoder
	zenc   *zstd.Encoder
	zbuf   []byte // compressed columns of the block being written
	out    []byte // the block being written
	err    error  // final: the first write error without Retry, or one that cannot be undone
	closed bool

	blockStart time.Time // when the current block got its first event
	events     int64     // events in blocks written
	blocks     int64
	minTime    int64 // over the events written
	maxTime    int64
	bmin, bmax int64 // over the events of the current block

	// good is the size of the file's complete part: header and whole blocks. A failed write is cut back to it.
	good atomic.Int64

	// A block that could not be written (Retry), kept for the next try; nil while writing works.
	pend       []byte
	pendEvents int64
	pmin, pmax int64
	failErr    error // the last write error while pend is set
	retryAt    time.Time
	backoff    time.Duration
	failing    atomic.Bool // pend != nil, readable without the lock (Queue.TryPut)
	droppedAt  uint64      // dropped when the current failure began, for the resume message

	dropped     atomic.Uint64
	writeErrors atomic.Uint64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewWriter creates the profile file path with mode 0600 and writes its header. It refuses to replace an
// existing file (or symlink) unless opts.Overwrite is set; that error satisfies errors.Is(err, fs.ErrExist).
// A symlink at path is never followed.
func NewWriter(path string, h Header, opts WriterOptions) (*Writer, error) {
	var (
		f   *os.File
		sf  *safefile.File
		err error
	)
	if opts.Overwrite || opts.Atomic {
		sf, err = safefile.Create(path, safefile.Private, opts.Overwrite)
		if sf != nil {
			f = sf.File
		}
	} else {
		// O_EXCL never follows a symlink: one at path is an existing file.
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, existError{"cannot create profile " + path + ": it already exists; choose another path " +
				"or remove it"}
		}
		return nil, fmt.Errorf("cannot create profile: %w", err)
	}
	w, err := newWriter(f, path, h, opts)
	if err != nil {
		if sf != nil {
			sf.Abort()
		} else {
			f.Close()
			os.Remove(path)
		}
		return nil, err
	}
	w.f, w.sf = f, sf
	return w, nil
}

// existError says a file exists; errors.Is(err, fs.ErrExist) holds, so callers can offer an overwrite flag.
type existError struct{ msg string }

func (e existError) Error() string { return e.msg }
func (e existError) Unwrap() error { return os.ErrExist }

// NewStreamWriter writes a profile to dst, for pipes and tests. Close does not close dst. A stream cannot be
// cut back, so its first write error is final even with Retry.
func NewStreamWriter(dst io.Writer, name string, h Header, opts WriterOptions) (*Writer, error) {
	return newWriter(dst, name, h, opts)
}

func newWriter(dst io.Writer, name string, h Header, opts WriterOptions) (*Writer, error) {
	if err := h.normalize(); err != nil {
		return nil, fmt.Errorf("cannot write profile %s: %w", name, err)
	}
	if opts.BlockEvents == 0 {
		opts.BlockEvents = DefaultBlockEvents
	}
	if opts.BlockEvents < 1 || opts.BlockEvents > MaxBlockEvents {
		return nil, fmt.Errorf("cannot write profile %s: block size %d events is out of range [1, %d]",
			name, opts.BlockEvents, MaxBlockEvents)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Compression != CompressionZstd && opts.Compression != CompressionNone {
		return nil, fmt.Errorf("cannot write profile %s: unknown compression %v", name, opts.Compression)
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	w := &Writer{name: name, w: dst, hdr: h, opts: opts, enc: newBlockEncoder(h.TimeUnit, h.LatencyBits)}
	if opts.Compression == CompressionZstd {
		zenc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
			zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true),
			zstd.WithWindowSize(1<<20))
		if err != nil {
			return nil, fmt.Errorf("cannot set up zstd for %s: %w", name, err)
		}
		w.zenc = zenc
	}
	hb := appendHeader(nil, &w.hdr)
	if _, err := dst.Write(hb); err != nil {
		return nil, fmt.Errorf("cannot write profile %s: %w", name, err)
	}
	w.good.Store(int64(len(hb)))
	if opts.FlushInterval > 0 {
		w.stop = make(chan struct{})
		w.done = make(chan struct{})
		go w.flushLoop(opts.FlushInterval)
	}
	return w, nil
}

// Header returns the header as written, with defaults filled in.
func (w *Writer) Header() Header { return w.hdr }

// BytesWritten returns the size of the profile's complete part: the header and every block written whole.
// Safe to call at any time.
func (w *Writer) BytesWritten() int64 { return w.good.Load() }

// Events returns the events the profile holds: those written, those buffered, and those of a block waiting for
// a retry. After Close it is the number of events in the file.
func (w *Writer) Events() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events + int64(w.enc.n) + w.pendEvents
}

// Dropped returns the events the profile will not hold: refused by Write (or by a Queue's TryPut) while writing
// failed or after the writer closed, or in blocks that could not be written.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// WriteErrors returns the number of failed writes, retries included.
func (w *Writer) WriteErrors() uint64 { return w.writeErrors.Load() }

// Failing reports whether writing is failing (Retry): Write refuses events until a retry succeeds. Safe to call
// at any time without blocking.
func (w *Writer) Failing() bool { return w.failing.Load() }

// errFailing wraps the error that made a Retry writer refuse an event.
type errFailing struct {
	name string
	err  error
}

func (e errFailing) Error() string {
	return "profile " + e.name + " cannot be written, event dropped: " + e.err.Error()
}
func (e errFailing) Unwrap() error { return e.err }

// Write adds ev to the current block, writing the block when it is full. ev is copied; the caller keeps it.
// It returns an error, and counts the event in Dropped, when it refuses ev: while a Retry writer's writing
// fails, after a final write error, or after Close.
func (w *Writer) Write(ev *Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.dropped.Add(1)
		return w.err
	}
	if w.closed {
		w.dropped.Add(1)
		return fmt.Errorf("cannot write to profile %s: writer is closed", w.name)
	}
	if w.pend != nil && !w.retryLocked(time.Now(), false) {
		w.dropped.Add(1)
		if w.err != nil {
			return w.err
		}
		return errFailing{w.name, w.failErr}
	}
	e := w.enc
	if e.n == 0 {
		if w.stop != nil {
			w.blockStart = time.Now()
		}
		w.bmin, w.bmax = ev.Time, ev.Time
	}
	w.bmin = min(w.bmin, ev.Time)
	w.bmax = max(w.bmax, ev.Time)
	e.add(ev)
	if e.n >= w.opts.BlockEvents || (e.n&1023 == 0 && e.rawSize() > writerRawLimit) {
		// ev is in the block: kept for a retry if the block cannot be written now, so not refused.
		if err := w.flushLocked(); err != nil && w.err != nil {
			return err
		}
	}
	return nil
}

// Flush writes the buffered events as a block now. It returns the error of a failed write even when the
// block is kept for a retry.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.pend != nil && !w.retryLocked(time.Now(), true) {
		if w.err != nil {
			return w.err
		}
		return fmt.Errorf("cannot write profile %s: %w", w.name, w.failErr)
	}
	return w.flushLocked()
}

func (w *Writer) flushLoop(interval time.Duration) {
	defer close(w.done)
	half := interval / 2
	if half <= 0 {
		half = interval
	}
	t := time.NewTicker(half)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			switch {
			case w.err != nil || w.closed:
			case w.pend != nil:
				w.retryLocked(now, false)
			case w.enc.n > 0 && now.Sub(w.blockStart) >= half:
				_ = w.flushLocked() // a failure is logged, counted and retried; a final one is sticky
			}
			w.mu.Unlock()
		}
	}
}

// flushLocked writes the current block, if it has events.
func (w *Writer) flushLocked() error {
	e := w.enc
	if e.n == 0 {
		return nil
	}
	bh := blockHeader{kind: blockEvents, comp: diskCompNone, events: uint32(e.n)}
	if w.zenc != nil {
		bh.comp = diskCompZstd
	}
	n := int64(e.n)
	out := append(w.out[:0], make([]byte, blockHeaderLen)...)
	out, raw := e.finish(out, w.zenc, &w.zbuf)
	bh.rawLen = uint32(raw)
	e.reset()
	w.out = out
	sealBlock(&bh, out)
	if err := w.writeRaw(out); err != nil {
		return w.failed(out, n, w.bmin, w.bmax, err)
	}
	w.committed(n, w.bmin, w.bmax)
	return nil
}

// committed counts a block of n events between tmin and tmax as written.
func (w *Writer) committed(n, tmin, tmax int64) {
	if w.events == 0 {
		w.minTime, w.maxTime = tmin, tmax
	}
	w.minTime = min(w.minTime, tmin)
	w.maxTime = max(w.maxTime, tmax)
	w.events += n
	w.blocks++
}

// failed handles a block of n events that could not be written: with Retry, the file is cut back to its
// complete part and the block kept for a retry; otherwise (or when the file cannot be cut back) the error is
// final and the block's events are dropped.
func (w *Writer) failed(block []byte, n, tmin, tmax int64, err error) error {
	w.writeErrors.Add(1)
	if w.opts.OnWriteError != nil {
		w.opts.OnWriteError(err)
	}
	if !w.opts.Retry || w.f == nil {
		w.dropped.Add(uint64(n))
		w.err = fmt.Errorf("cannot write profile %s: %w", w.name, err)
		w.logFailure(err)
		return w.err
	}
	if rerr := w.rewind(); rerr != nil {
		w.dropped.Add(uint64(n))
		w.err = fmt.Errorf("cannot write profile %s: %w; and cannot cut the partial block off: %v", w.name,
			err, rerr)
		w.logFailure(w.err)
		return w.err
	}
	if w.pend == nil {
		// Keep the block; the next one is built in a new buffer until this one is written.
		w.pend, w.out = block, nil
		w.pendEvents, w.pmin, w.pmax = n, tmin, tmax
		w.droppedAt = w.dropped.Load()
		w.backoff = retryMin
		w.logFailure(err)
		w.failing.Store(true)
	} else {
		w.backoff = min(2*w.backoff, retryMax)
	}
	w.failErr = err
	w.retryAt = time.Now().Add(w.backoff)
	return fmt.Errorf("cannot write profile %s: %w", w.name, err)
}

func (w *Writer) logFailure(err error) {
	if w.opts.Logger != nil {
		w.opts.Logger.Error("cannot write the profile; events are dropped until it can be written again "+
			"(free space on its file system, or record elsewhere with --record)", "file", w.name, "err", err,
			"retry", w.opts.Retry && w.err == nil)
	}
}

// retryLocked writes the pending block again if its time has come (or now, with force). It reports whether
// writing works again.
func (w *Writer) retryLocked(now time.Time, force bool) bool {
	if !force && now.Before(w.retryAt) {
		return false
	}
	if err := w.writeRaw(w.pend); err != nil {
		w.failed(w.pend, w.pendEvents, w.pmin, w.pmax, err)
		if w.err != nil { // final: failed has counted the kept block's events as dropped
			w.pend, w.pendEvents = nil, 0
			w.failing.Store(false)
		}
		return false
	}
	w.committed(w.pendEvents, w.pmin, w.pmax)
	if w.opts.Logger != nil {
		w.opts.Logger.Info("the profile can be written again; recording resumed", "file", w.name,
			"dropped", w.dropped.Load()-w.droppedAt)
	}
	w.out = w.pend[:0]
	w.pend, w.pendEvents, w.failErr = nil, 0, nil
	w.failing.Store(false)
	return true
}

// rewind cuts the file back to its complete part after a failed write, so the next write follows the last
// whole block.
func (w *Writer) rewind() error {
	good := w.good.Load()
	if err := w.f.Truncate(good); err != nil {
		return err
	}
	_, err := w.f.Seek(good, io.SeekStart)
	return err
}

// sealBlock fills in the header at the start of buf (header space followed by the payload), so that the block
// is written in one call and a concurrent reader sees either nothing or a prefix of it (reported as truncated).
func sealBlock(bh *blockHeader, buf []byte) {
	stored := buf[blockHeaderLen:]
	bh.storedLen = uint32(len(stored))
	bh.payloadCRC = crc32.Checksum(stored, castagnoli)
	bh.put(buf[:blockHeaderLen])
}

// writeRaw writes b whole, or reports why not; only a whole write grows the complete part.
func (w *Writer) writeRaw(b []byte) error {
	n, err := w.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return err
	}
	w.good.Add(int64(n))
	return nil
}

// Close writes the last block and a trailer, syncs and closes the file (a stream writer's destination stays
// open); an Atomic writer's file is then renamed into place. A block waiting for a retry gets one last try;
// if it fails, its events are dropped, the file keeps its complete part (readable, without a trailer), and
// Close returns the error. Close is idempotent and returns the first final error.
func (w *Writer) Close() error {
	w.stopLoop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	var lastErr error
	if w.pend != nil && w.err == nil && !w.retryLocked(time.Now(), true) && w.err == nil {
		lastErr = fmt.Errorf("cannot write profile %s: %w", w.name, w.failErr)
		w.dropped.Add(uint64(w.pendEvents))
		w.pend, w.pendEvents = nil, 0
		w.failing.Store(false)
	}
	if w.err == nil && lastErr == nil {
		if err := w.flushLocked(); err != nil && w.err == nil {
			lastErr = err
			w.dropped.Add(uint64(w.pendEvents))
			w.pend, w.pendEvents = nil, 0
			w.failing.Store(false)
		}
	}
	if w.err == nil && lastErr == nil {
		p := make([]byte, blockHeaderLen, blockHeaderLen+40)
		p = binary.AppendUvarint(p, uint64(w.events))
		p = binary.AppendUvarint(p, uint64(w.blocks))
		unit := w.hdr.TimeUnit
		p = binary.AppendVarint(p, timeTicks(w.minTime, unit)*unit)
		p = binary.AppendVarint(p, timeTicks(w.maxTime, unit)*unit)
		bh := blockHeader{kind: blockTrailer, rawLen: uint32(len(p) - blockHeaderLen)}
		sealBlock(&bh, p)
		if err := w.writeRaw(p); err != nil {
			w.writeErrors.Add(1)
			if w.opts.OnWriteError != nil {
				w.opts.OnWriteError(err)
			}
			lastErr = fmt.Errorf("cannot write the trailer of profile %s: %w", w.name, err)
			if w.f != nil {
				_ = w.rewind() // the events stay readable; a missing trailer is allowed
			}
		}
	}
	if w.err == nil {
		w.err = lastErr
	}
	if w.zenc != nil {
		w.zenc.Close()
	}
	switch {
	case w.sf != nil && w.err == nil:
		if err := w.sf.Commit(); err != nil {
			w.err = fmt.Errorf("cannot finish profile %s: %w", w.name, err)
		}
	case w.sf != nil:
		w.sf.Abort()
	case w.f != nil:
		if err := w.f.Sync(); err != nil && w.err == nil {
			w.err = fmt.Errorf("cannot sync profile %s: %w", w.name, err)
		}
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("cannot close profile %s: %w", w.name, err)
		}
	}
	return w.err
}

// Abort stops the writer and removes what it wrote: an Atomic writer's temporary file (the path keeps what it
// had), or the file NewWriter created. For a command that fails before its output is complete, or a recorder
// whose start fails. A stream writer's destination is left as it is. Abort after Close does nothing.
func (w *Writer) Abort() {
	w.stopLoop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if w.err == nil {
		w.err = fmt.Errorf("profile %s was aborted", w.name)
	}
	if w.zenc != nil {
		w.zenc.Close()
	}
	switch {
	case w.sf != nil:
		w.sf.Abort()
	case w.f != nil:
		w.f.Close()
		os.Remove(w.name)
	}
}

func (w *Writer) stopLoop() {
	if w.stop != nil {
		w.stopOnce.Do(func() { close(w.stop) })
		<-w.done
	}
}
