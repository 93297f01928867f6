// Recording glue shared by the recorders (proxy, tap): salt, anonymizer, profile writer and queue, rotation.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
)

// recordSettings are what a recorder needs to open a profile: the recording config, the recorder's mode
// ("proxy", "tap") and the header's creation time.
type recordSettings struct {
	configs.Recording
	mode string
	// created is the profile header's creation time; zero means now. The tap passes the first packet's
	// timestamp when reading a file, so that the header, like the events, depends only on the capture.
	created time.Time
	// countWriteError counts a failed write of the profile in the mode's profile_write_errors_total
	// (proxy.CountProfileWriteError, tap.CountProfileWriteError: each mode's metric set, served by its /metrics).
	countWriteError func()
}

// recordingFlags are the command-line flags of configs.Recording, shared by the recorders.
type recordingFlags struct {
	record, saltFile, hostLabel, nsDelim *string
	sampleRate                           *float64
	queueSize                            *int
	flushInterval                        *time.Duration
}

func addRecordingFlags(fs *flag.FlagSet) recordingFlags {
	return recordingFlags{
		record:        fs.String("record", "", ""),
		saltFile:      fs.String("salt-file", "", ""),
		hostLabel:     fs.String("host-label", "", ""),
		nsDelim:       fs.String("namespace-delimiter", "", ""),
		sampleRate:    fs.Float64("sample-rate", 0, ""),
		queueSize:     fs.Int("queue-size", 0, ""),
		flushInterval: fs.Duration("flush-interval", 0, ""),
	}
}

// apply sets the recording flags given on the command line (set) over r.
func (f recordingFlags) apply(set map[string]bool, r *configs.Recording) {
	apply(set, "record", &r.Record, *f.record)
	apply(set, "salt-file", &r.SaltFile, *f.saltFile)
	apply(set, "host-label", &r.HostLabel, *f.hostLabel)
	apply(set, "namespace-delimiter", &r.NamespaceDelimiter, *f.nsDelim)
	apply(set, "sample-rate", &r.SampleRate, *f.sampleRate)
	apply(set, "queue-size", &r.QueueSize, *f.queueSize)
	apply(set, "flush-interval", &r.FlushInterval, configs.Duration(*f.flushInterval))
}

// recorder is an open profile: the anonymizer that hashes keys and the queue that writes events.
type recorder struct {
	set    recordSettings
	anon   *profile.Anonymizer
	queue  *profile.Queue
	writer *profile.Writer // the writer behind queue
	path   string          // the file being written now
	// bytesBefore is what rotated-away files held, so BytesWritten counts every file of the run.
	bytesBefore int64
	// writtenBefore and droppedBefore count the events of rotated-away files.
	writtenBefore, droppedBefore uint64
	files                        []string
	// log gets the writer's ERROR when the profile cannot be written and INFO when it can again.
	log *slog.Logger
}

// openRecorder loads (or makes up) the salt and opens the profile. Warnings go to stderr.
func openRecorder(set recordSettings, stderr io.Writer) (*recorder, error) {
	nsOn := set.NamespaceDelimiter != ""
	var delim byte = profile.DefaultNSDelim
	if nsOn {
		delim = set.NamespaceDelimiter[0]
	}
	var anon *profile.Anonymizer
	if set.SaltFile != "" {
		secret, err := profile.LoadSaltFile(set.SaltFile)
		if err != nil {
			return nil, fmt.Errorf("cannot use --salt-file: %w", err)
		}
		anon = profile.NewAnonymizer(secret, delim, nsOn)
	} else {
		anon = profile.RandomAnonymizer(delim, nsOn)
		fmt.Fprintln(stderr, "membench:", profile.RandomSaltWarning)
	}
	if set.countWriteError == nil {
		panic("BUG: a recorder without its mode's profile_write_errors_total (recordSettings.countWriteError)")
	}
	r := &recorder{set: set, anon: anon,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	q, err := r.open(set.Record)
	if err != nil {
		return nil, err
	}
	r.queue = q
	r.bytesBefore = 0
	return r, nil
}

func (r *recorder) open(path string) (*profile.Queue, error) {
	host := r.set.HostLabel
	created := r.set.created
	if created.IsZero() || len(r.files) > 0 {
		created = time.Now() // rotated files start now
	}
	h := profile.Header{
		Created:         created,
		Mode:            r.set.mode,
		Host:            host,
		SaltFingerprint: r.anon.Fingerprint(),
		Settings: map[string]string{
			"sample_rate":         strconv.FormatFloat(r.set.SampleRate, 'g', -1, 64),
			"namespace_delimiter": r.set.NamespaceDelimiter,
			"membench_version":    version,
		},
	}
	comp := profile.CompressionZstd
	if !r.set.Compress {
		comp = profile.CompressionNone
	}
	// Retry: a full disk drops events (counted) until space returns, then recording resumes by itself.
	w, err := profile.NewWriter(path, h, profile.WriterOptions{FlushInterval: time.Duration(r.set.FlushInterval),
		Compression: comp, Retry: true, Logger: r.log, OnWriteError: func(error) { r.set.countWriteError() }})
	if err != nil {
		return nil, fmt.Errorf("cannot open the profile (--record): %w", err)
	}
	r.path = path
	r.writer = w
	r.files = append(r.files, path)
	return profile.NewQueue(w, r.set.QueueSize), nil
}

// rotatedName returns base with a UTC timestamp before its extension: out.mbp → out-20261126T235959Z.mbp.
func rotatedName(base string, t time.Time) string {
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	name := fmt.Sprintf("%s-%s%s", stem, t.UTC().Format("20060102T150405Z"), ext)
	for i := 1; ; i++ {
		if _, err := os.Stat(name); os.IsNotExist(err) {
			return name
		}
		name = fmt.Sprintf("%s-%s-%d%s", stem, t.UTC().Format("20060102T150405Z"), i, ext)
	}
}

// rotate opens a new timestamped profile, hands it to swap (which installs it and returns the old queue), and
// closes the old one.
func (r *recorder) rotate(swap func(*profile.Queue) *profile.Queue) (closed string, err error) {
	oldWriter := r.writer
	q, err := r.open(rotatedName(r.set.Record, time.Now()))
	if err != nil {
		return "", err
	}
	old := swap(q)
	prev := r.files[len(r.files)-2]
	r.queue = q
	if old != nil {
		err = old.Close()
		r.writtenBefore += old.Written()
		r.droppedBefore += old.Dropped()
	}
	r.bytesBefore += oldWriter.BytesWritten()
	if err != nil {
		return prev, fmt.Errorf("cannot close profile %s: %w", prev, err)
	}
	return prev, nil
}

// bytesWritten returns the profile bytes written in this run, over all rotated files.
func (r *recorder) bytesWritten() int64 { return r.bytesBefore + r.writer.BytesWritten() }

// dropped returns the events of this run that no profile holds and that the recorder's queue or writer counted
// (queue full, profile not writable), over all rotated files.
func (r *recorder) dropped() uint64 { return r.droppedBefore + r.queue.Dropped() }

// abort undoes a recorder whose start failed: the profile it created (header only) is removed, so that the next
// start with the same --record does not find it "already exists". Nil-safe.
func (r *recorder) abort() {
	if r != nil {
		r.queue.Abort()
	}
}
