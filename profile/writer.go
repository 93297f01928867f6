// This file holds Writer, which buffers events into columnar blocks and writes them to a profile file or
// stream, flushing at least every FlushInterval so a crash loses little.

package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Writer defaults.
const (
	DefaultBlockEvents   = 1 << 18
	DefaultFlushInterval = time.Second
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
	// Overwrite lets NewWriter replace an existing file; by default it refuses.
	Overwrite bool
}

// Writer writes one profile. Its methods are safe for concurrent use, but events are stored in call order,
// so one goroutine (a Queue) should normally own it. Write never allocates once the block buffers have grown.
type Writer struct {
	mu     sync.Mutex
	name   string
	w      io.Writer
	f      *os.File // nil for stream writers
	hdr    Header
	opts   WriterOptions
	enc    *blockEncoder
	zenc   *zstd.Encoder
	zbuf   []byte // compressed columns of the block being written
	out    []byte // the block being written
	err    error  // sticky: the first write error
	closed bool

	blockStart time.Time // when the current block got its first event
	events     int64
	blocks     int64
	minTime    int64
	maxTime    int64

	written atomic.Int64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewWriter creates the profile file path with mode 0600 and writes its header. It refuses to replace an
// existing file unless opts.Overwrite is set; that error satisfies errors.Is(err, fs.ErrExist).
func NewWriter(path string, h Header, opts WriterOptions) (*Writer, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if opts.Overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, existError{"cannot create profile " + path + ": it already exists; choose another path " +
				"or remove it"}
		}
		return nil, fmt.Errorf("cannot create profile: %w", err)
	}
	w, err := newWriter(f, path, h, opts)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.f = f
	return w, nil
}

// existError says a file exists; errors.Is(err, fs.ErrExist) holds, so callers can offer an overwrite flag.
type existError struct{ msg string }

func (e existError) Error() string { return e.msg }
func (e existError) Unwrap() error { return os.ErrExist }

// NewStreamWriter writes a profile to dst, for pipes and tests. Close does not close dst.
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
	if err := w.writeRaw(appendHeader(nil, &w.hdr)); err != nil {
		return nil, err
	}
	if opts.FlushInterval > 0 {
		w.stop = make(chan struct{})
		w.done = make(chan struct{})
		go w.flushLoop(opts.FlushInterval)
	}
	return w, nil
}

// Header returns the header as written, with defaults filled in.
func (w *Writer) Header() Header { return w.hdr }

// BytesWritten returns the bytes handed to the file or stream so far. Safe to call at any time.
func (w *Writer) BytesWritten() int64 { return w.written.Load() }

// Events returns the number of events written so far, including buffered ones.
func (w *Writer) Events() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events
}

// Write adds ev to the current block, writing the block when it is full. ev is copied; the caller keeps it.
// After a write error every call returns that error.
func (w *Writer) Write(ev *Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return fmt.Errorf("cannot write to profile %s: writer is closed", w.name)
	}
	e := w.enc
	if e.n == 0 && w.stop != nil {
		w.blockStart = time.Now()
	}
	if w.events == 0 {
		w.minTime, w.maxTime = ev.Time, ev.Time
	}
	w.minTime = min(w.minTime, ev.Time)
	w.maxTime = max(w.maxTime, ev.Time)
	w.events++
	e.add(ev)
	if e.n >= w.opts.BlockEvents || (e.n&1023 == 0 && e.rawSize() > writerRawLimit) {
		return w.flushLocked()
	}
	return nil
}

// Flush writes the buffered events as a block now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
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
			if w.err == nil && !w.closed && w.enc.n > 0 && now.Sub(w.blockStart) >= half {
				_ = w.flushLocked() // the error is sticky; the next Write or Close reports it
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
	out := append(w.out[:0], make([]byte, blockHeaderLen)...)
	out, raw := e.finish(out, w.zenc, &w.zbuf)
	bh.rawLen = uint32(raw)
	e.reset()
	w.out = out
	w.blocks++
	return w.writeBlock(&bh, out)
}

// writeBlock fills in the header at the start of buf (header space followed by the payload) and writes it in
// one call, so a concurrent reader sees either nothing or a prefix of the block (reported as truncated).
func (w *Writer) writeBlock(bh *blockHeader, buf []byte) error {
	stored := buf[blockHeaderLen:]
	bh.storedLen = uint32(len(stored))
	bh.payloadCRC = crc32.Checksum(stored, castagnoli)
	bh.put(buf[:blockHeaderLen])
	return w.writeRaw(buf)
}

func (w *Writer) writeRaw(b []byte) error {
	n, err := w.w.Write(b)
	w.written.Add(int64(n))
	if err != nil {
		w.err = fmt.Errorf("cannot write profile %s: %w", w.name, err)
		return w.err
	}
	return nil
}

// Close writes the last block and a trailer, syncs and closes the file (a stream writer's destination stays
// open). Close is idempotent and returns the first error the writer met.
func (w *Writer) Close() error {
	if w.stop != nil {
		w.stopOnce.Do(func() { close(w.stop) })
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.flushLocked()
	}
	if w.err == nil {
		p := make([]byte, blockHeaderLen, blockHeaderLen+40)
		p = binary.AppendUvarint(p, uint64(w.events))
		p = binary.AppendUvarint(p, uint64(w.blocks))
		unit := w.hdr.TimeUnit
		p = binary.AppendVarint(p, timeTicks(w.minTime, unit)*unit)
		p = binary.AppendVarint(p, timeTicks(w.maxTime, unit)*unit)
		bh := blockHeader{kind: blockTrailer, rawLen: uint32(len(p) - blockHeaderLen)}
		w.writeBlock(&bh, p)
	}
	if w.zenc != nil {
		w.zenc.Close()
	}
	if w.f != nil {
		if w.err == nil {
			if err := w.f.Sync(); err != nil {
				w.err = fmt.Errorf("cannot sync profile %s: %w", w.name, err)
			}
		}
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("cannot close profile %s: %w", w.name, err)
		}
	}
	return w.err
}
