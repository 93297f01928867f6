// This file holds Reader, which streams the events of a profile back with memory bounded by one block,
// reporting a truncated last block and, on request, skipping corrupt blocks.

package profile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"os"

	"github.com/klauspost/compress/zstd"
)

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// Salvage skips corrupt blocks instead of failing: the reader scans for the next block sync marker and
	// goes on. CorruptBlocks counts what was skipped.
	Salvage bool
}

// Reader streams a profile's events. It is not safe for concurrent use. Next never allocates once the
// reader's buffers have grown to the largest block.
type Reader struct {
	name string
	f    *os.File // closed by Close; nil for NewReader
	br   *bufio.Reader
	off  int64 // file offset of the next byte br returns
	hdr  Header
	opts ReaderOptions

	dec      blockDecoder
	blockOff int64 // offset of the block being decoded
	zdec     *zstd.Decoder
	stored   []byte
	raw      []byte // decompressed columns

	events    int64
	truncated int
	corrupt   int
	err       error
	eof       bool
}

// Open opens the profile at path and reads its header.
func Open(path string, opts ReaderOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open profile: %w", err)
	}
	r, err := NewReader(f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// NewReader reads a profile from src; name is used in errors. It reads the header before returning.
func NewReader(src io.Reader, name string, opts ReaderOptions) (*Reader, error) {
	r := &Reader{name: name, br: bufio.NewReaderSize(src, 256<<10), opts: opts}
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	r.dec.setPrecision(r.hdr.TimeUnit, r.hdr.LatencyBits)
	return r, nil
}

func (r *Reader) readHeader() error {
	var pre [12]byte
	n, err := io.ReadFull(r.br, pre[:])
	r.off += int64(n)
	if n < len(Magic) || string(pre[:len(Magic)]) != Magic {
		if n < len(Magic) && string(pre[:n]) == Magic[:n] {
			return fmt.Errorf("cannot read profile %s: file is empty or cut short (%d bytes)", r.name, n)
		}
		return fmt.Errorf("cannot read profile %s: not a membench profile (wrong magic at offset 0)", r.name)
	}
	if n < 8 || err != nil {
		return fmt.Errorf("cannot read profile %s: header cut short at offset %d", r.name, n)
	}
	if v := pre[len(Magic)]; v != Version {
		return fmt.Errorf("cannot read profile %s: format version %d at offset %d, this membench reads "+
			"version %d; use a matching membench release", r.name, v, len(Magic), Version)
	}
	hl := binary.LittleEndian.Uint32(pre[8:])
	if hl > maxHeaderLen {
		return fmt.Errorf("cannot read profile %s: header at offset 12 claims %d bytes, more than the limit %d",
			r.name, hl, maxHeaderLen)
	}
	body := make([]byte, hl+4)
	n, err = io.ReadFull(r.br, body)
	r.off += int64(n)
	if err != nil {
		return fmt.Errorf("cannot read profile %s: header cut short at offset %d", r.name, r.off)
	}
	if crc32.Checksum(body[:hl], castagnoli) != binary.LittleEndian.Uint32(body[hl:]) {
		return fmt.Errorf("cannot read profile %s: header at offset 12 is corrupt (checksum mismatch)", r.name)
	}
	h, err := parseHeaderBody(body[:hl])
	if err != nil {
		return fmt.Errorf("cannot read profile %s: header at offset 12 is malformed: %w", r.name, err)
	}
	r.hdr = h
	return nil
}

// Header returns the profile's header.
func (r *Reader) Header() Header { return r.hdr }

// Name returns the name given to NewReader or the path given to Open.
func (r *Reader) Name() string { return r.name }

// Next decodes the next event into ev and reports whether there was one. At the end, check Err.
func (r *Reader) Next(ev *Event) bool {
	for {
		if r.dec.bi < r.dec.bn {
			*ev = r.dec.batch[r.dec.bi]
			r.dec.bi++
			r.events++
			return true
		}
		if r.dec.remaining > 0 {
			ok, err := r.dec.next(ev)
			if ok {
				r.events++
				return true
			}
			if err != nil {
				if !r.blockFailed(r.blockOff, err) {
					return false
				}
			}
		}
		if r.err != nil || r.eof {
			return false
		}
		r.loadBlock()
	}
}

// All returns an iterator over the remaining events, for range loops; it yields pointers into the reader's
// decoded batch instead of copying each event. The *Event is valid until the next iteration: copy it to keep
// it. Check Err after the loop.
func (r *Reader) All() iter.Seq[*Event] {
	return func(yield func(*Event) bool) {
		var first Event
		for {
			for r.dec.bi < r.dec.bn {
				ev := &r.dec.batch[r.dec.bi]
				r.dec.bi++
				r.events++
				if !yield(ev) {
					return
				}
			}
			if !r.Next(&first) { // decodes the next batch and copies out its first event
				return
			}
			if !yield(&first) {
				return
			}
		}
	}
}

// Err returns the error that stopped Next, or nil at a clean end (including a truncated last block).
func (r *Reader) Err() error { return r.err }

// Events returns the number of events Next has returned.
func (r *Reader) Events() int64 { return r.events }

// TruncatedBlocks returns 1 if the profile ends inside a block (a recorder that died or is still writing),
// else 0. The events of that block are lost; everything before it was returned.
func (r *Reader) TruncatedBlocks() int { return r.truncated }

// CorruptBlocks returns the number of corrupt regions skipped in salvage mode.
func (r *Reader) CorruptBlocks() int { return r.corrupt }

// Offset returns the file offset the reader has consumed up to.
func (r *Reader) Offset() int64 { return r.off }

// Close releases the reader's decoder and closes the file if Open opened it.
func (r *Reader) Close() error {
	if r.zdec != nil {
		r.zdec.Close()
		r.zdec = nil
	}
	if r.f != nil {
		f := r.f
		r.f = nil
		if err := f.Close(); err != nil {
			return fmt.Errorf("cannot close profile %s: %w", r.name, err)
		}
	}
	return nil
}

// blockFailed handles a corrupt block at off: in salvage mode it counts it and reports true (go on, the
// reader is positioned after the block or at the next sync marker); otherwise it sets the error.
func (r *Reader) blockFailed(off int64, cause error) bool {
	if !r.opts.Salvage {
		r.err = fmt.Errorf("cannot read block at offset %d in %s: %w (rerun with --salvage to skip corrupt blocks)",
			off, r.name, cause)
		return false
	}
	r.corrupt++
	return true
}

func (r *Reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.off += int64(d)
}

// resync skips at least one byte and then everything up to the next block sync marker or EOF.
func (r *Reader) resync() {
	r.discard(1)
	for {
		buf, err := r.br.Peek(r.br.Size())
		if i := bytes.Index(buf, blockSync[:]); i >= 0 {
			r.discard(i)
			return
		}
		if err != nil {
			r.discard(len(buf))
			r.eof = true
			return
		}
		r.discard(len(buf) - (len(blockSync) - 1))
	}
}

// loadBlock reads the next block and prepares its events, handling the end of the file, truncation and
// corruption.
func (r *Reader) loadBlock() {
	off := r.off
	hb, err := r.br.Peek(blockHeaderLen)
	if len(hb) < blockHeaderLen {
		if err != nil && err != io.EOF {
			r.err = fmt.Errorf("cannot read block at offset %d in %s: %w", off, r.name, err)
			return
		}
		if len(hb) > 0 {
			if r.opts.Salvage && !bytes.HasPrefix(blockSync[:], hb[:min(len(hb), len(blockSync))]) {
				r.corrupt++ // trailing garbage, not the start of a block
			} else {
				r.truncated++
			}
		}
		r.discard(len(hb))
		r.eof = true
		return
	}
	bh, perr := parseBlockHeader(hb)
	if perr != nil {
		if r.blockFailed(off, perr) {
			r.resync()
		}
		return
	}
	r.discard(blockHeaderLen)
	stored, complete, rerr := r.readPayload(int(bh.storedLen))
	if rerr != nil {
		r.err = fmt.Errorf("cannot read block at offset %d in %s: %w", off, r.name, rerr)
		return
	}
	if !complete {
		r.truncated++
		r.eof = true
		return
	}
	if crc32.Checksum(stored, castagnoli) != bh.payloadCRC {
		r.blockFailed(off, errors.New("block payload checksum mismatch"))
		return
	}
	if bh.kind == blockTrailer {
		return
	}
	cols, err := splitPayload(stored, bh.comp, int(bh.rawLen), r.decoder, &r.raw)
	if err != nil {
		r.blockFailed(off, err)
		return
	}
	r.dec.reset(&cols, int(bh.events))
	r.blockOff = off
}

// decoder returns the reader's zstd decoder, creating it on first use.
func (r *Reader) decoder() (*zstd.Decoder, error) {
	if r.zdec == nil {
		zd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRawPayload),
			zstd.WithDecodeAllCapLimit(true), zstd.IgnoreChecksum(true))
		if err != nil {
			return nil, fmt.Errorf("cannot set up zstd: %w", err)
		}
		r.zdec = zd
	}
	return r.zdec, nil
}

// readPayload reads n bytes into the reader's buffer, growing it only as data actually arrives, so a header
// that lies about its length cannot make the reader allocate more than the file holds. complete is false when
// the input ends first.
func (r *Reader) readPayload(n int) (b []byte, complete bool, err error) {
	buf := r.stored[:0]
	for len(buf) < n {
		want := min(n-len(buf), max(len(buf), 1<<20))
		if cap(buf)-len(buf) < want {
			nb := make([]byte, len(buf), len(buf)+want)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r.br, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+m]
		r.off += int64(m)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.stored = buf
			return buf, false, nil
		}
		if err != nil {
			r.stored = buf
			return buf, false, err
		}
	}
	r.stored = buf
	return buf, true, nil
}
