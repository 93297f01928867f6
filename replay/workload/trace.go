// This file holds Trace, the source that reads a profile back in order, as many times as asked.

package workload

import (
	"fmt"

	"github.com/membench/membench/profile"
)

// Trace reads the events of a profile in order. With Loops > 1 (or < 0: forever) it starts again at the end,
// shifting event times so that each pass follows the previous one.
type Trace struct {
	path  string
	loops int // passes left after the current one; < 0 forever
	r     *profile.Reader
	hdr   profile.Header
	err   error

	first, last int64 // event times of the current pass
	shift       int64 // added to event times of the current pass
	n           int64 // events of the current pass
	started     bool
}

// OpenTrace opens the profile at path for loops passes (0 or 1: once; < 0: forever).
func OpenTrace(path string, loops int) (*Trace, error) {
	r, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		return nil, err
	}
	if loops == 0 {
		loops = 1
	}
	if loops > 0 {
		loops--
	}
	return &Trace{path: path, loops: loops, r: r, hdr: r.Header()}, nil
}

// Header returns the profile's header.
func (t *Trace) Header() profile.Header { return t.hdr }

// Next implements Source.
func (t *Trace) Next(ev *profile.Event) bool {
	for {
		if t.r == nil {
			return false
		}
		if t.r.Next(ev) {
			if !t.started {
				t.first, t.last, t.started = ev.Time, ev.Time, true
			}
			t.last = max(t.last, ev.Time)
			t.n++
			ev.Time += t.shift
			return true
		}
		if err := t.r.Err(); err != nil {
			t.err = err
			t.r.Close()
			t.r = nil
			return false
		}
		t.r.Close()
		t.r = nil
		if t.loops == 0 || !t.started {
			return false
		}
		if t.loops > 0 {
			t.loops--
		}
		r, err := profile.Open(t.path, profile.ReaderOptions{})
		if err != nil {
			t.err = fmt.Errorf("cannot reopen profile for the next --loop pass: %w", err)
			return false
		}
		t.r = r
		// The next pass starts one mean gap after this one ended.
		span := t.last - t.first
		t.shift += span + span/max(t.n, 1) + 1
		t.started, t.n = false, 0
	}
}

// Err implements Source.
func (t *Trace) Err() error { return t.err }

// Close implements Source.
func (t *Trace) Close() error {
	if t.r != nil {
		err := t.r.Close()
		t.r = nil
		return err
	}
	return nil
}
