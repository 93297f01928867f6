// This file holds what a replay counts while it runs: per-connection statistics (requests, errors by kind,
// statuses, hit/miss, latency histograms per command) that the connection's goroutines update under their own
// lock, batch by batch, and that the progress line and the final report merge.

package replay

import (
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/membench/membench/mcproto"
)

// Histogram range: latencies are recorded in microseconds from 1 µs to 1 hour with 2 significant digits
// (buckets within 1%), which keeps each histogram at about 22 KB.
const (
	histMinUs = 1
	histMaxUs = 3600 * 1_000_000
	histSig   = 2
)

func newHist() *hdr.Histogram { return hdr.New(histMinUs, histMaxUs, histSig) }

// Error kinds.
const (
	errTimeout     = iota // no response within --timeout
	errConnLost           // the connection ended with the request in flight
	errUnavailable        // the target could not be reached when the request was due
	errServer             // SERVER_ERROR, binary out of memory / too large
	errClient             // CLIENT_ERROR, binary invalid arguments
	errError              // ERROR (unknown command)
	errProtocol           // a response membench could not frame or match
	numErrKinds
)

var errKindNames = [numErrKinds]string{"timeout", "conn_lost", "unavailable", "server_error", "client_error",
	"error", "protocol"}

// cmdStats are the figures of one command.
type cmdStats struct {
	ops, errors     uint64
	hits, misses    uint64
	recHits, recMis uint64 // recorded statuses of the same requests
	lat             *hdr.Histogram
}

// stats are one connection's figures. The owner goroutines hold mu while updating a batch.
type stats struct {
	mu       sync.Mutex
	cmds     [mcproto.NumCommands]*cmdStats
	errs     [numErrKinds]uint64
	statuses [mcproto.NumStatuses]uint64
	interval *hdr.Histogram // latencies since the last progress line, all commands
	// intervalOps counts completed requests since the last progress line.
	intervalOps uint64
	// multiGets and multiKeys count the text multi-key gets sent and their keys.
	multiGets, multiKeys uint64
}

func newStats() *stats { return &stats{interval: newHist()} }

func (s *stats) cmd(c mcproto.Command) *cmdStats {
	if int(c) >= len(s.cmds) {
		c = mcproto.CmdUnknown
	}
	cs := s.cmds[c]
	if cs == nil {
		cs = &cmdStats{lat: newHist()}
		s.cmds[c] = cs
	}
	return cs
}

// errKind maps an error status to its kind.
func errKind(st mcproto.Status) (int, bool) {
	switch st {
	case mcproto.StatusError:
		return errError, true
	case mcproto.StatusClientError:
		return errClient, true
	case mcproto.StatusServerError:
		return errServer, true
	}
	return 0, false
}

// done records a completed request with the status the target answered. latNs < 0 means no latency was
// measured (noreply, a quiet request whose silence was its answer).
func (s *stats) done(c mcproto.Command, st mcproto.Status, latNs int64) {
	cs := s.cmd(c)
	cs.ops++
	s.intervalOps++
	if int(st) < len(s.statuses) {
		s.statuses[st]++
	}
	if k, bad := errKind(st); bad {
		cs.errors++
		s.errs[k]++
		return
	}
	if c.IsRetrieval() {
		switch st {
		case mcproto.StatusHit:
			cs.hits++
		case mcproto.StatusMiss:
			cs.misses++
		}
	}
	if latNs >= 0 {
		us := min(max(latNs/1000, histMinUs), histMaxUs)
		_ = cs.lat.RecordValue(us)
		_ = s.interval.RecordValue(us)
	}
}

// fail records a request that ended without an answer, in an error of kind k.
func (s *stats) fail(c mcproto.Command, k int) {
	cs := s.cmd(c)
	cs.ops++
	cs.errors++
	s.intervalOps++
	s.errs[k]++
}

// recorded counts the status the source recorded for a retrieval that is being sent.
func (s *stats) recorded(c mcproto.Command, st mcproto.Status) {
	if !c.IsRetrieval() {
		return
	}
	cs := s.cmd(c)
	switch st {
	case mcproto.StatusHit:
		cs.recHits++
	case mcproto.StatusMiss:
		cs.recMis++
	}
}
