// This file holds trace interchange: exporting profiles to the Twitter cache-trace CSV, libCacheSim's
// oracleGeneral binary and a plain CSV of every field, and importing the first two as profiles. Imports hash
// whatever key text or object id a trace has with the Anonymizer, so public traces become replayable profiles
// that carry no more than a recorded one.

package profile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/membench/membench/mcproto"
)

// Interchange format names, as the export and import subcommands take them.
const (
	FormatTwitter       = "twitter"
	FormatOracleGeneral = "oracle-general"
	FormatCSV           = "csv"
)

// ExportStats counts what an export did.
type ExportStats struct {
	Events  int64 // events written
	Skipped int64 // events the format cannot express (see each exporter)
}

// twitterOps maps commands to Twitter trace operations. Commands missing here (touch, keyless commands, …)
// are skipped by ExportTwitter.
var twitterOps = func() (m [mcproto.NumCommands]string) {
	m[mcproto.CmdGet], m[mcproto.CmdGat], m[mcproto.CmdMetaGet] = "get", "get", "get"
	m[mcproto.CmdGets], m[mcproto.CmdGats] = "gets", "gets"
	m[mcproto.CmdSet], m[mcproto.CmdMetaSet] = "set", "set"
	m[mcproto.CmdAdd] = "add"
	m[mcproto.CmdReplace] = "replace"
	m[mcproto.CmdCas] = "cas"
	m[mcproto.CmdAppend] = "append"
	m[mcproto.CmdPrepend] = "prepend"
	m[mcproto.CmdDelete], m[mcproto.CmdMetaDelete] = "delete", "delete"
	m[mcproto.CmdIncr], m[mcproto.CmdMetaArithmetic] = "incr", "incr"
	m[mcproto.CmdDecr] = "decr"
	return m
}()

// ExportTwitter writes r's events as Twitter cache-trace lines, without a header row:
//
//	timestamp,key,key_size,value_size,client_id,operation,ttl
//
// timestamp is whole seconds since the Unix epoch; key is the key hash as 16 hex digits, prefixed with the
// namespace hash and ':' when the event has one; client_id is the connection id; ttl is the TTL of storage
// commands and 0 otherwise. Meta and gat commands map to their classic equivalents (mg and gat → get, gats →
// gets, ms → set, md → delete, ma → incr); touch and keyless commands have no Twitter operation and are skipped.
func ExportTwitter(dst io.Writer, r *Reader) (ExportStats, error) {
	var st ExportStats
	bw := bufio.NewWriterSize(dst, 256<<10)
	var line []byte
	var ev Event
	for r.Next(&ev) {
		op := ""
		if int(ev.Cmd) < len(twitterOps) {
			op = twitterOps[ev.Cmd]
		}
		if op == "" || ev.KeyHash == 0 {
			st.Skipped++
			continue
		}
		line = strconv.AppendInt(line[:0], floorDiv(ev.Time, 1e9), 10)
		line = append(line, ',')
		if ev.NSHash != 0 {
			line = appendHex64(line, ev.NSHash)
			line = append(line, ':')
		}
		line = appendHex64(line, ev.KeyHash)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.KeySize), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.ValueSize), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, ev.Conn, 10)
		line = append(line, ',')
		line = append(line, op...)
		line = append(line, ',')
		ttl := int64(0)
		if ev.Cmd.IsStorage() {
			ttl = ev.TTL
		}
		line = strconv.AppendInt(line, ttl, 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return st, fmt.Errorf("cannot write twitter trace: %w", err)
		}
		st.Events++
	}
	if err := r.Err(); err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("cannot write twitter trace: %w", err)
	}
	return st, nil
}

func appendHex64(b []byte, v uint64) []byte {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], v)
	return hex.AppendEncode(b, raw[:])
}

// CSVHeader is the header row ExportCSV writes: every Event field.
const CSVHeader = "time_ns,conn,proto,cmd,status,noreply,quiet,key_hash,key_size,ns_hash,value_size,flags,ttl," +
	"latency_ns,upstream,key_index,key_count"

// ExportCSV writes every event with every field, one row each, after CSVHeader. Hashes are 16 hex digits,
// enums their names (mcproto's String), booleans 0 or 1. Nothing is skipped.
func ExportCSV(dst io.Writer, r *Reader) (ExportStats, error) {
	var st ExportStats
	bw := bufio.NewWriterSize(dst, 256<<10)
	bw.WriteString(CSVHeader + "\n")
	var line []byte
	var ev Event
	b01 := func(b []byte, v bool) []byte {
		if v {
			return append(b, '1', ',')
		}
		return append(b, '0', ',')
	}
	for r.Next(&ev) {
		line = strconv.AppendInt(line[:0], ev.Time, 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, ev.Conn, 10)
		line = append(line, ',')
		line = append(line, ev.Proto.String()...)
		line = append(line, ',')
		line = append(line, ev.Cmd.String()...)
		line = append(line, ',')
		line = append(line, ev.Status.String()...)
		line = append(line, ',')
		line = b01(line, ev.Noreply)
		line = b01(line, ev.Quiet)
		line = appendHex64(line, ev.KeyHash)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.KeySize), 10)
		line = append(line, ',')
		line = appendHex64(line, ev.NSHash)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.ValueSize), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.Flags), 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, ev.TTL, 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, ev.Latency, 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(ev.Upstream), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.KeyIndex), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, uint64(ev.KeyCount), 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return st, fmt.Errorf("cannot write csv: %w", err)
		}
		st.Events++
	}
	if err := r.Err(); err != nil {
		return st, err
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("cannot write csv: %w", err)
	}
	return st, nil
}

// OracleGeneralRecordSize is the size of one libCacheSim oracleGeneral record.
const OracleGeneralRecordSize = 24

// OracleGeneralFile is where ExportOracleGeneral writes: it writes the records forward, then reads them back
// and patches them in a reverse pass. *os.File implements it.
type OracleGeneralFile interface {
	io.ReaderAt
	io.WriterAt
}

// ExportOracleGeneral writes r's keyed events as libCacheSim oracleGeneral records (packed little-endian):
//
//	uint32 clock_time   whole seconds since the Unix epoch
//	uint64 obj_id       the key hash
//	uint32 obj_size     key size + value size (see below)
//	int64  next_access_vtime
//
// next_access_vtime is, as libCacheSim's traceConv writes it, the 1-based position in the trace of the next
// request for the same object, or -1 when there is none. obj_size is the event's key size plus value size;
// when the value size is 0 (a miss, a delete) it uses the value size of the next request for the key that has
// one, so a miss followed by a set inserts an object of the size the set stores. oracleGeneral has no
// operation: every keyed event is a request; keyless events are skipped.
//
// The reverse pass keeps one map entry per distinct key (about 50 bytes each: 1 M keys ≈ 50 MB) and reads
// and rewrites the output in 1.5 MB chunks.
func ExportOracleGeneral(dst OracleGeneralFile, r *Reader) (ExportStats, error) {
	var st ExportStats
	const chunkRecords = 1 << 16
	buf := make([]byte, 0, chunkRecords*OracleGeneralRecordSize)
	var off int64
	flush := func() error {
		if _, err := dst.WriteAt(buf, off); err != nil {
			return fmt.Errorf("cannot write oracleGeneral trace: %w", err)
		}
		off += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	// Forward pass: records with the value size in obj_size and, temporarily, the key size in
	// next_access_vtime.
	var ev Event
	for r.Next(&ev) {
		if ev.KeyHash == 0 {
			st.Skipped++
			continue
		}
		sec := min(max(floorDiv(ev.Time, 1e9), 0), math.MaxUint32)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(sec))
		buf = binary.LittleEndian.AppendUint64(buf, ev.KeyHash)
		buf = binary.LittleEndian.AppendUint32(buf, ev.ValueSize)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(ev.KeySize))
		st.Events++
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	if err := r.Err(); err != nil {
		return st, err
	}
	if err := flush(); err != nil {
		return st, err
	}

	// Reverse pass.
	type later struct {
		pos   int64  // 1-based position of the next request for the object
		value uint32 // value size of the nearest later request that had one
	}
	next := make(map[uint64]later)
	n := st.Events
	for end := n; end > 0; {
		start := max(end-chunkRecords, 0)
		chunk := buf[:(end-start)*OracleGeneralRecordSize]
		if _, err := dst.ReadAt(chunk, start*OracleGeneralRecordSize); err != nil {
			return st, fmt.Errorf("cannot read back oracleGeneral trace: %w", err)
		}
		for i := end - 1; i >= start; i-- {
			rec := chunk[(i-start)*OracleGeneralRecordSize:][:OracleGeneralRecordSize]
			obj := binary.LittleEndian.Uint64(rec[4:])
			value := binary.LittleEndian.Uint32(rec[12:])
			keySize := binary.LittleEndian.Uint64(rec[16:])
			l, seen := next[obj] // the zero later when unseen
			if value == 0 {
				value = l.value
			}
			binary.LittleEndian.PutUint32(rec[12:], uint32(min(keySize+uint64(value), math.MaxUint32)))
			nextPos := int64(-1)
			if seen {
				nextPos = l.pos
			}
			binary.LittleEndian.PutUint64(rec[16:], uint64(nextPos))
			next[obj] = later{pos: i + 1, value: value}
		}
		if _, err := dst.WriteAt(chunk, start*OracleGeneralRecordSize); err != nil {
			return st, fmt.Errorf("cannot write oracleGeneral trace: %w", err)
		}
		end = start
	}
	return st, nil
}

// ImportOptions say how to turn a trace into events.
type ImportOptions struct {
	// KeySize is the part of an oracleGeneral obj_size taken as the key (default 16); the rest is the value.
	KeySize uint16
}

// ImportTwitter reads Twitter cache-trace lines (timestamp,key,key_size,value_size,client_id,operation,ttl)
// and writes one event per line to w. Keys are hashed with a (HashKey, HashNamespace), so the key text never
// reaches the profile; keys may contain commas. Timestamps are seconds (fractions allowed); a first line that
// does not start with a number is taken as a header row and skipped, as are empty lines.
//
// Synthesized fields: Proto text, Status unknown (traces do not record outcomes), Latency 0, Upstream -1; a
// client_id that is not a number becomes the keyed hash of its text.
func ImportTwitter(src io.Reader, name string, a *Anonymizer, w *Writer) (int64, error) {
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var n int64
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := parseTwitterLine(line, a)
		if err != nil {
			if lineNo == 1 && (len(line) == 0 || line[0] < '0' || line[0] > '9') {
				continue // header row
			}
			return n, fmt.Errorf("cannot import %s line %d %q: %w", name, lineNo, truncate(line, 80), err)
		}
		if err := w.Write(&ev); err != nil {
			return n, err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("cannot read %s after line %d: %w", name, lineNo, err)
	}
	return n, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

var twitterCommands = map[string]mcproto.Command{
	"get": mcproto.CmdGet, "gets": mcproto.CmdGets, "set": mcproto.CmdSet, "add": mcproto.CmdAdd,
	"replace": mcproto.CmdReplace, "cas": mcproto.CmdCas, "append": mcproto.CmdAppend,
	"prepend": mcproto.CmdPrepend, "delete": mcproto.CmdDelete, "incr": mcproto.CmdIncr, "decr": mcproto.CmdDecr,
}

func parseTwitterLine(line []byte, a *Anonymizer) (Event, error) {
	ev := Event{Proto: mcproto.ProtoText, Status: mcproto.StatusUnknown, Upstream: -1}
	first := bytes.IndexByte(line, ',')
	if first < 0 {
		return ev, fmt.Errorf("want 7 comma-separated fields")
	}
	var f [5][]byte // key_size, value_size, client_id, operation, ttl: split from the right
	rest := line[first+1:]
	for i := 4; i >= 0; i-- {
		j := bytes.LastIndexByte(rest, ',')
		if j < 0 {
			return ev, fmt.Errorf("want 7 comma-separated fields")
		}
		f[i] = rest[j+1:]
		rest = rest[:j]
	}
	key := rest
	tsText := string(bytes.TrimSpace(line[:first]))
	if ts, err := strconv.ParseInt(tsText, 10, 64); err == nil && ts > -9e9 && ts < 9e9 {
		ev.Time = ts * 1e9
	} else if ts, err := strconv.ParseFloat(tsText, 64); err == nil && ts > -9e9 && ts < 9e9 {
		ev.Time = int64(math.Round(ts * 1e9))
	} else {
		return ev, fmt.Errorf("timestamp is not a number of seconds")
	}
	ks, err := strconv.ParseUint(string(bytes.TrimSpace(f[0])), 10, 16)
	if err != nil {
		return ev, fmt.Errorf("key_size is not a number up to 65535")
	}
	vs, err := strconv.ParseUint(string(bytes.TrimSpace(f[1])), 10, 32)
	if err != nil {
		return ev, fmt.Errorf("value_size is not a number up to 4294967295")
	}
	client := bytes.TrimSpace(f[2])
	if c, err := strconv.ParseUint(string(client), 10, 64); err == nil {
		ev.Conn = c
	} else {
		ev.Conn = a.HashKey(client)
	}
	cmd, ok := twitterCommands[string(bytes.TrimSpace(f[3]))]
	if !ok {
		return ev, fmt.Errorf("unknown operation %q (want get, gets, set, add, replace, cas, append, prepend, "+
			"delete, incr or decr)", bytes.TrimSpace(f[3]))
	}
	ttl, err := strconv.ParseInt(string(bytes.TrimSpace(f[4])), 10, 64)
	if err != nil {
		return ev, fmt.Errorf("ttl is not a number")
	}
	ev.Cmd = cmd
	ev.KeyHash = a.HashKey(key)
	ev.NSHash = a.HashNamespace(key)
	ev.KeySize = uint16(ks)
	ev.ValueSize = uint32(vs)
	ev.TTL = ttl
	return ev, nil
}

// ImportOracleGeneral reads libCacheSim oracleGeneral records and writes one event per record to w. The
// object id's 8 little-endian bytes are hashed with a.HashKey; next_access_vtime is ignored.
//
// Synthesized fields, since oracleGeneral records only time, object and size: Cmd get, Status unknown, Proto
// text, Conn 0, Latency 0, Upstream -1, no namespace. obj_size (key plus value, as ExportOracleGeneral and
// libCacheSim's converters write it) is split into KeySize = min(opts.KeySize, obj_size), default 16, and
// ValueSize = the rest, so exporting the profile again gives the same obj_size, and the analyzer (which takes a
// read without an outcome that names a value size as its object's size) and replay's warmup see the object's
// size.
func ImportOracleGeneral(src io.Reader, name string, a *Anonymizer, opts ImportOptions, w *Writer) (int64, error) {
	keySize := opts.KeySize
	if keySize == 0 {
		keySize = 16
	}
	br := bufio.NewReaderSize(src, 256<<10)
	var rec [OracleGeneralRecordSize]byte
	var n int64
	for {
		m, err := io.ReadFull(br, rec[:])
		if err == io.EOF {
			return n, nil
		}
		if err == io.ErrUnexpectedEOF {
			return n, fmt.Errorf("cannot import %s: it ends with a partial record of %d bytes at offset %d "+
				"(records are %d bytes; is it really oracleGeneral?)", name, m, n*OracleGeneralRecordSize,
				OracleGeneralRecordSize)
		}
		if err != nil {
			return n, fmt.Errorf("cannot read %s at offset %d: %w", name, n*OracleGeneralRecordSize, err)
		}
		size := binary.LittleEndian.Uint32(rec[12:])
		ks := min(uint32(keySize), size)
		ev := Event{
			Time:      int64(binary.LittleEndian.Uint32(rec[0:])) * 1e9,
			Proto:     mcproto.ProtoText,
			Cmd:       mcproto.CmdGet,
			Status:    mcproto.StatusUnknown,
			KeyHash:   a.HashKey(rec[4:12]),
			KeySize:   uint16(ks),
			ValueSize: size - ks,
			Upstream:  -1,
		}
		if err := w.Write(&ev); err != nil {
			return n, err
		}
		n++
	}
}
