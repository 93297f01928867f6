// What a recorder writes and how: the profile settings the proxy and the tap share.
package configs

import (
	"fmt"
	"time"
)

// Recording configures a recorder's profile. Proxy and Tap embed it, so its keys sit at the top level of their
// files.
type Recording struct {
	// Record is the profile file to write; empty means nothing is recorded (a plain proxy, a tap that only
	// counts).
	Record string `toml:"record"`
	// SaltFile holds the hashing secret (membench salt -o FILE); empty means a random secret for this run.
	SaltFile string `toml:"salt_file"`
	// HostLabel is stored in the profile header to tell recorders apart; at most MaxHostLabel (255) bytes.
	HostLabel string `toml:"host_label"`
	// SampleRate keeps this fraction of keys (by key hash: every access of a kept key is recorded), in (0, 1].
	SampleRate float64 `toml:"sample_rate"`
	// NamespaceDelimiter ends a key's namespace prefix; empty turns namespace hashing off.
	NamespaceDelimiter string `toml:"namespace_delimiter"`
	// QueueSize is how many events may wait for the profile writer before new ones are dropped, 1 to
	// MaxQueueSize (4194304). A tap reading a file writes every event and never drops.
	QueueSize int `toml:"queue_size"`
	// FlushInterval bounds what a crash can lose: a profile block is written at least this often. A tap reading
	// a file writes whole blocks only, so the same file always gives the same profile.
	FlushInterval Duration `toml:"flush_interval"`
	// Compress the profile's blocks with zstd (default true).
	Compress bool `toml:"compress"`
}

// DefaultRecording returns the recording defaults.
func DefaultRecording() Recording {
	return Recording{
		SampleRate:         1,
		NamespaceDelimiter: ":",
		QueueSize:          1 << 16,
		FlushInterval:      Duration(time.Second),
		Compress:           true,
	}
}

// Validate checks the recording keys and names the key to fix.
func (r *Recording) Validate() error {
	if !(r.SampleRate > 0 && r.SampleRate <= 1) {
		return fmt.Errorf("sample_rate = %v: must be in (0, 1]", r.SampleRate)
	}
	if len(r.NamespaceDelimiter) > 1 {
		return fmt.Errorf("namespace_delimiter = %q: must be one byte, or empty to turn namespaces off",
			r.NamespaceDelimiter)
	}
	if r.QueueSize < 1 || r.QueueSize > MaxQueueSize {
		return fmt.Errorf("queue_size = %d: must be from 1 to %d (each waiting event takes up to 160 bytes)",
			r.QueueSize, MaxQueueSize)
	}
	if len(r.HostLabel) > MaxHostLabel {
		return fmt.Errorf("host_label = %.20q…: %d bytes, at most %d", r.HostLabel, len(r.HostLabel), MaxHostLabel)
	}
	if r.FlushInterval <= 0 {
		return fmt.Errorf("flush_interval = %s: must be positive", time.Duration(r.FlushInterval))
	}
	return nil
}
