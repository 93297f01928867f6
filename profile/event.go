// Package profile holds what membench records and replays: anonymized events, the keyed-hash anonymizer, the
// on-disk profile format (writer and reader), and trace interchange. Analysis lives in profile/analyze.
//
// This file defines Event, the one record every recorder writes and every reader returns.
package profile

import "github.com/membench/membench/mcproto"

// Event is one (request, response) pair, per key for multi-key gets. It never holds key or value bytes: keys
// appear only as keyed SipHash values, values only as sizes.
type Event struct {
	Time      int64            // capture time, ns since the Unix epoch (request's last byte)
	Conn      uint64           // connection id, unique within a profile
	Proto     mcproto.Protocol // text, meta or binary
	Cmd       mcproto.Command
	Status    mcproto.Status
	Noreply   bool   // text noreply: no response expected
	Quiet     bool   // meta q flag or binary quiet opcode
	KeyHash   uint64 // keyed SipHash-2-4 of the key; 0 for keyless commands
	KeySize   uint16 // key length in bytes; 0 for keyless commands
	NSHash    uint64 // keyed hash of the key's namespace prefix; 0 when off or no delimiter
	ValueSize uint32 // request value for stores, response value for hits
	Flags     uint32 // client flags
	TTL       int64  // exptime as sent (seconds, or absolute unix time when > 30 days); 0 = none
	Latency   int64  // ns from request's last byte to response's last byte; 0 = not measured
	Upstream  int16  // upstream server index in pool mode; -1 = not applicable
	// A text multi-key get (get k1 k2 …) is one event per key, consecutive on its connection: KeyIndex is the
	// key's position, from 0, and KeyCount the request's number of keys. Both are 0 for every other request.
	KeyIndex uint16
	KeyCount uint16
}

// FromPair converts a pairing result into an Event. The pair's KeyHash and NSHash must come from the
// Anonymizer (mcproto's Pairer calls it as its KeyHasher). The event's command is the operation (Pair.Op): a
// meta cas is recorded as a cas, with the meta protocol.
func FromPair(p *mcproto.Pair) Event {
	ev := Event{
		Time:      p.ReqTime,
		Conn:      p.Conn,
		Proto:     p.Proto,
		Cmd:       p.Op,
		Status:    p.Status,
		Noreply:   p.Noreply,
		Quiet:     p.Quiet,
		ValueSize: p.ValueSize,
		Flags:     p.Flags,
		Latency:   p.Latency(),
		Upstream:  p.Upstream,
		KeyIndex:  p.KeyIndex,
		KeyCount:  p.KeyCount,
	}
	if p.HasKey {
		ev.KeyHash, ev.KeySize, ev.NSHash = p.KeyHash, p.KeySize, p.NSHash
	}
	if p.HasTTL {
		ev.TTL = p.Exptime
	}
	return ev
}
