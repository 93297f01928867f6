// Package workload produces the request sequences replay sends and synth writes: a recorded profile read back in
// order (Trace), a model fitted from a profile driving a seeded generator (Fit, Model.Generator), and the built-in
// presets (Preset). It is pure computation over profile.Events: no sockets and no clock, so that a sequence can be
// generated, written to a profile and compared without a network, and so that the same seed gives the same
// sequence byte for byte.
//
// Keys and values never exist in a profile; AppendKey turns a key hash and size back into key bytes and Values
// gives value bytes, the same way everywhere.
//
// This file holds the Source interface every producer implements.
package workload

import (
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// Source yields events to replay, one at a time, in order.
type Source interface {
	// Next fills ev with the next event and reports whether there was one; at the end, check Err.
	Next(ev *profile.Event) bool
	// Err returns what stopped Next early, or nil at a clean end.
	Err() error
	// Close releases files the source holds.
	Close() error
}

// Existence reports whether an event's status shows that its key existed in the cache before the event: a hit,
// or a success that needs an existing item (incr, touch, delete, replace, append, …). Warmup stores such keys
// when no write to them came first. An imported trace records no outcomes: there a read that names a value size
// read an existing object (the trace's object size; a Twitter get that missed has value size 0), and counts
// too.
func Existence(ev *profile.Event) bool {
	switch ev.Status {
	case mcproto.StatusUnknown:
		return ev.Cmd.IsRetrieval() && ev.ValueSize > 0
	case mcproto.StatusHit, mcproto.StatusTouched, mcproto.StatusDeleted:
		return true
	case mcproto.StatusStored:
		switch ev.Cmd {
		case mcproto.CmdReplace, mcproto.CmdAppend, mcproto.CmdPrepend, mcproto.CmdCas:
			return true
		}
	case mcproto.StatusOK:
		switch ev.Cmd {
		case mcproto.CmdIncr, mcproto.CmdDecr, mcproto.CmdMetaArithmetic:
			return true
		}
	case mcproto.StatusExists:
		return ev.Cmd == mcproto.CmdCas
	}
	return false
}

// IsWrite reports whether ev creates or replaces its key's value whatever was there (set, add that stored, ms,
// …): after it, the key exists without a warmup.
func IsWrite(ev *profile.Event) bool {
	switch ev.Cmd {
	case mcproto.CmdSet, mcproto.CmdMetaSet:
		return true
	case mcproto.CmdAdd:
		return ev.Status == mcproto.StatusStored || ev.Status == mcproto.StatusNoneExpected
	}
	return false
}
