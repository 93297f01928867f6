// This file holds what a replay says about dials that fail: without it a target that cannot be reached shows
// only as "unavailable" counts, with no reason. Each target's first failed dial of an outage is logged with its
// error (connection refused, no such host, timeout), the recovery once, and the report keeps, per target, the
// count of failed dials and the first error. Dials are rare (backoff), so one lock per engine is enough.

package replay

import (
	"log/slog"
	"maps"
	"sync"
)

// dialLog collects the failed dials of one engine.
type dialLog struct {
	what string // "replay" or "warmup", for the log
	log  *slog.Logger

	mu     sync.Mutex
	byAddr map[string]*dialState
}

type dialState struct {
	DialErrors
	down  bool   // the latest dial failed
	since uint64 // failed dials since the outage began
}

// failed notes a failed dial of addr.
func (d *dialLog) failed(addr string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byAddr == nil {
		d.byAddr = map[string]*dialState{}
	}
	s := d.byAddr[addr]
	if s == nil {
		s = &dialState{DialErrors: DialErrors{First: err.Error()}}
		d.byAddr[addr] = s
	}
	s.Failed++
	s.since++
	if !s.down {
		s.down = true
		d.log.Warn("cannot connect to a target; its requests fail as unavailable until it answers "+
			"(check --target, --connect-timeout)", "target", addr, "err", err, "during", d.what)
	}
}

// ok notes a successful dial of addr.
func (d *dialLog) ok(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.byAddr[addr]; s != nil && s.down {
		s.down = false
		d.log.Warn("connected to the target again", "target", addr, "failed_dials", s.since, "during", d.what)
		s.since = 0
	}
}

// report returns the failed dials per target, or nil when none failed.
func (d *dialLog) report() map[string]*DialErrors {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.byAddr) == 0 {
		return nil
	}
	out := make(map[string]*DialErrors, len(d.byAddr))
	for addr, s := range maps.All(d.byAddr) {
		e := s.DialErrors
		out[addr] = &e
	}
	return out
}
