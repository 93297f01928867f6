// Package tap is membench's passive recorder: it reads TCP packets to and from memcached ports (live through
// libpcap, or from a pcap/pcapng file), reassembles both directions of every connection, frames them with
// mcproto, pairs requests with responses, and hands each pair, anonymized, to a profile sink.
//
// Everything runs on one goroutine, driven by packet timestamps: flow ids, event order, gap decisions and idle
// expiry depend only on the packets, so the same capture always gives the same events, offline and live.
// Request and response times are the capture timestamps of the packets that carried each frame's last byte.
//
// This file holds the Tap itself: options, counters, the packet loop, flow lookup and expiry.
package tap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// Options are the tap's collaborators, built by the caller from its config.
type Options struct {
	// Anonymizer hashes keys. Nil uses a process-local hash that is good for pairing only (count-only runs).
	Anonymizer *profile.Anonymizer
	// Record receives each event (the *Event is valid only during the call) and reports whether it was kept.
	// Nil records nothing; events are still counted.
	Record func(*profile.Event) bool
	// Flush, when set, is called every few thousand packets, when a live capture is idle, and before Run
	// returns, so that a sink batching events hands them on without waiting for a full batch.
	Flush func()
	// Logger receives run-level messages (never per packet). Nil discards.
	Logger *slog.Logger
}

// Stats are the tap's counters. A Tap updates them on its own goroutine; Snapshot returns a copy that is at
// most a few thousand packets old while running and exact after Run returns.
type Stats struct {
	Packets         uint64             // packets read from the source
	Ignored         uint64             // not TCP, or not to or from a port in Ports
	EncapIgnored    uint64             // in a tunnel (VXLAN, GRE, ERSPAN) that the encap setting leaves closed
	CaptureDamage   uint64             // damaged records or blocks of a capture file, or a file cut short
	Tunnelled       [numTunnels]uint64 // packets taken out of VXLAN, GRE and ERSPAN tunnels
	Malformed       uint64             // headers that do not parse
	Fragments       uint64             // IP fragments (memcached traffic is not fragmented; counted and skipped)
	Truncated       uint64             // segments cut by the snap length; the missing bytes are gaps
	Bytes           [2]uint64          // payload bytes delivered in order, client→server and server→client
	Flows           uint64             // connections seen
	FlowsClosed     uint64             // connections ended (FIN, RST, idle, end of capture)
	FlowsExpired    uint64             // of those, idle longer than idle_timeout
	FlowOverflow    uint64             // packets ignored because max_flows connections were open
	Retransmits     uint64             // segments whose bytes had all been delivered already
	RetransmitBytes uint64             // bytes delivered again (retransmitted or overlapping), dropped
	Queued          uint64             // segments that arrived ahead of a missing one (or ahead of their request)
	Gaps            [2]uint64          // sequence gaps (bytes lost from the capture), per direction
	LostBytes       [2]uint64          // bytes in those gaps
	GapsInValues    uint64             // gaps that fell inside a data block: frames intact, nothing lost but value bytes
	BufferOverflows uint64             // waits ended early because max_flow_buffer or max_total_buffer was reached
	DroppedSegments uint64             // segments that did not fit in the buffers at all (they become gaps)

	Resyncs              uint64 // times a half-stream found a frame boundary after starting mid-stream or a gap
	ResyncSkippedBytes   uint64 // bytes skipped while looking for one
	SkippedBytes         uint64 // bytes not framed: answers to unseen requests, after a close-causing error
	ClientProtocolErrors uint64 // requests memcached rejects (still paired with memcached's error)
	BadResponses         uint64 // response bytes memcached never sends (the stream resynchronised)

	Requests            uint64 // requests framed (per key for multi-gets: see mcproto.PairerStats)
	Responses           uint64 // response frames
	Orphans             uint64 // responses with no request waiting
	Mismatched          uint64 // responses that did not fit the request in front
	Suppressed          uint64 // quiet requests answered by silence
	Lost                uint64 // requests whose response never came (recorded with status lost)
	PendingOverflow     uint64 // requests dropped because max_pending were waiting
	IncompleteResponses uint64 // responses whose data block never finished (dropped with their pair)

	Events        uint64 // events recorded (or counted, without a Record sink)
	EventsDropped uint64 // events the sink refused (a full queue)
	EventsSampled uint64 // events left out by sample_rate

	KernelDrops    uint64 // packets the kernel dropped (pcap stats; live only)
	InterfaceDrops uint64 // packets the interface dropped (pcap stats; live only)
}

// Tap is a passive recorder for one packet source. It is not safe for concurrent use, except Snapshot.
type Tap struct {
	cfg         configs.Tap
	opts        Options
	log         *slog.Logger
	hasher      mcproto.KeyHasher
	sampleBound uint64
	ports       [1024]uint64 // bitmap of server ports
	tunnels     uint8        // tunnels opened (bits 1<<tunnelVXLAN, …), from cfg.Encap
	emitFn      func(*mcproto.Pair)

	// otherPorts counts TCP packets that are not to or from Ports, by their likely server port, so that a run
	// that found nothing can say where the traffic was. Allocated at the first such packet.
	otherPorts *[1 << 16]uint64
	lastLink   LinkType
	linkOK     bool
	damage     []string // the first damage reports, for the error Run returns

	flows       map[flowKey]*flow
	active      []*flow // in creation (id) order; closed flows are removed at the next sweep
	nextID      uint64
	freePairers []*mcproto.Pairer
	buffered    int // bytes held in wait queues and partial frames, all flows

	now        int64 // capture clock: the latest packet timestamp (ns)
	first      int64 // first packet's timestamp
	started    bool
	nextSweep  int64
	sweepEvery int64

	seg                     tcpSegment
	ev                      profile.Event
	req, scratchReq         mcproto.Request
	resp, scratchResp       mcproto.Response
	st                      Stats
	pubMu                   sync.Mutex
	pub, published          Stats // last snapshot; counts already added to the metrics
	publishedAt             int64 // capture time of the last publish from the packet path
	lastDropsK, lastDropsIf uint64
}

// New checks cfg and prepares a tap.
func New(cfg configs.Tap, opts Options) (*Tap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tap{cfg: cfg, opts: opts, log: opts.Logger, flows: map[flowKey]*flow{}, tunnels: tunnelsFor(cfg.Encap)}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if opts.Anonymizer != nil {
		t.hasher = opts.Anonymizer
	} else {
		t.hasher = mcproto.FNVHasher{}
	}
	t.sampleBound = math.MaxUint64
	if cfg.SampleRate < 1 {
		t.sampleBound = uint64(cfg.SampleRate * (1 << 64))
	}
	for _, p := range cfg.Ports {
		t.ports[p>>6] |= 1 << (p & 63)
	}
	t.emitFn = t.emit
	t.sweepEvery = int64(min(cfg.ReorderWindow, cfg.IdleTimeout) / 2)
	t.sweepEvery = max(t.sweepEvery, int64(time.Millisecond))
	return t, nil
}

func (t *Tap) isPort(p uint16) bool { return t.ports[p>>6]&(1<<(p&63)) != 0 }

// ErrDamaged is wrapped by the error Run returns when the capture file was damaged (records with impossible
// lengths, or a file cut short): everything readable was still read and recorded.
var ErrDamaged = errors.New("the capture file is damaged")

// maxDamageReports bounds the damage reports logged and kept for Run's error; the rest are only counted.
const maxDamageReports = 10

// Run reads src until it ends, ctx is done, or the configured duration has passed, then ends every open
// connection (their waiting requests are recorded as lost) and returns. The source is not closed. A packet of a
// link type the tap cannot decode ends the run with an error naming it. Damaged parts of a capture file are
// logged and counted, reading goes on, and the error returned at the end wraps ErrDamaged.
func (t *Tap) Run(ctx context.Context, src Source) error {
	var wallDeadline time.Time
	if t.cfg.Duration > 0 && src.Live() {
		wallDeadline = time.Now().Add(t.cfg.Duration.D())
	}
	var err error
	for {
		if ctx.Err() != nil {
			break
		}
		if !wallDeadline.IsZero() && time.Now().After(wallDeadline) {
			break
		}
		data, ts, lt, rerr := src.ReadPacket()
		if rerr == ErrTimeout {
			// Live and quiet: the capture clock follows the wall clock, so waits and idle flows still end.
			t.advance(time.Now().UnixNano())
			t.publish(src)
			continue
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			var d *DamageError
			if errors.As(rerr, &d) {
				t.damaged(d)
				continue
			}
			err = rerr
			break
		}
		if lt != t.lastLink || !t.linkOK {
			if !linkSupported(lt) {
				err = fmt.Errorf("cannot decode packet %d: %w", t.st.Packets+1, linkTypeError(lt))
				break
			}
			t.lastLink, t.linkOK = lt, true
		}
		if !t.started {
			t.started, t.first = true, ts
		}
		if t.cfg.Duration > 0 && !src.Live() && ts-t.first >= int64(t.cfg.Duration) {
			break
		}
		t.packet(lt, data, ts)
		// Publish every 4096 packets, and at least once a second of capture time so that a trickle of traffic
		// that never leaves the wire quiet for a read timeout still shows in the metrics.
		if t.st.Packets&4095 == 0 || ts-t.publishedAt >= int64(time.Second) {
			t.publishedAt = ts
			t.publish(src)
		}
	}
	t.finish()
	t.publish(src)
	if err == nil && t.st.CaptureDamage > 0 {
		err = fmt.Errorf("%w: %d damaged part(s), everything readable was recorded; first: %s", ErrDamaged,
			t.st.CaptureDamage, t.damage[0])
	}
	return err
}

// damaged counts and logs one damage report.
func (t *Tap) damaged(d *DamageError) {
	t.st.CaptureDamage++
	if len(t.damage) < maxDamageReports {
		t.damage = append(t.damage, d.Error())
		t.log.Warn(d.Error())
		if len(t.damage) == maxDamageReports {
			t.log.Warn("further damage in the capture file is counted, not logged")
		}
	}
}

// FirstTimestamp returns the first packet's timestamp (ns) and whether one was read.
func (t *Tap) FirstTimestamp() (int64, bool) { return t.first, t.started }

// Snapshot returns the counters as last published. Safe to call from any goroutine.
func (t *Tap) Snapshot() Stats {
	t.pubMu.Lock()
	defer t.pubMu.Unlock()
	return t.pub
}

// Stats returns the live counters; call it only from Run's goroutine or after Run returned.
func (t *Tap) Stats() Stats { return t.st }

// ActiveFlows returns the number of connections being tracked.
func (t *Tap) ActiveFlows() int { return len(t.flows) }

// ErrTimeout is returned by a live Source's ReadPacket when no packet arrived within its read timeout.
var ErrTimeout = errors.New("tap: read timeout")

// advance moves the capture clock forward to ts and runs the periodic sweep when it is due.
func (t *Tap) advance(ts int64) {
	if ts > t.now {
		t.now = ts
	}
	if t.now >= t.nextSweep {
		if t.nextSweep != 0 {
			t.sweep()
		}
		t.nextSweep = t.now + t.sweepEvery
	}
}

// sweep ends waits older than reorder_window and flows idle longer than idle_timeout, in flow id order.
func (t *Tap) sweep() {
	window, idle := int64(t.cfg.ReorderWindow), int64(t.cfg.IdleTimeout)
	j := 0
	for _, f := range t.active {
		if f.closed {
			continue
		}
		if t.now-f.lastTs > idle {
			t.st.FlowsExpired++
			t.closeFlow(f)
			continue
		}
		if (len(f.h[c2s].q) > 0 && t.now-f.h[c2s].qSince > window) ||
			(len(f.h[s2c].q) > 0 && t.now-f.h[s2c].qSince > window) {
			t.forceWaits(f)
		}
		t.active[j] = f
		j++
	}
	clear(t.active[j:])
	t.active = t.active[:j]
}

// finish ends every open flow in id order.
func (t *Tap) finish() {
	for _, f := range t.active {
		t.closeFlow(f)
	}
	t.active = t.active[:0]
}

// packet handles one captured frame.
func (t *Tap) packet(lt LinkType, data []byte, ts int64) {
	t.st.Packets++
	s := &t.seg
	switch decodeFrame(lt, data, s, t.tunnels) {
	case decodeOK:
	case decodeFragment:
		t.st.Fragments++
		return
	case decodeMalformed:
		t.st.Malformed++
		return
	case decodeTunnelIgnored:
		t.st.EncapIgnored++
		return
	default:
		t.st.Ignored++
		return
	}
	if s.tunnels != 0 {
		for k := range t.st.Tunnelled {
			if s.tunnels&(1<<k) != 0 {
				t.st.Tunnelled[k]++
			}
		}
	}
	var d int
	var k flowKey
	switch {
	case t.isPort(s.dport):
		d = c2s
		k = flowKey{server: s.dst, client: s.src, sport: s.dport, cport: s.sport, v6: s.v6}
	case t.isPort(s.sport):
		d = s2c
		k = flowKey{server: s.src, client: s.dst, sport: s.sport, cport: s.dport, v6: s.v6}
	default:
		t.st.Ignored++
		if t.otherPorts == nil {
			t.otherPorts = new([1 << 16]uint64)
		}
		t.otherPorts[serverPortGuess(s)]++
		return
	}
	t.advance(ts)
	f := t.flows[k]
	if s.flags&tcpSYN != 0 {
		t.syn(f, k, d, s, ts)
		return
	}
	if f == nil {
		if len(s.payload) == 0 && s.wireLen == 0 {
			return // an ACK, FIN or RST of a connection already ended or never seen
		}
		if s.flags&tcpRST != 0 {
			return
		}
		if f = t.newFlow(k, ts); f == nil {
			return
		}
	}
	f.lastTs = ts
	if s.wireLen > 0 || s.flags&tcpFIN != 0 {
		t.onSegment(f, d, s, ts)
	}
	if s.flags&tcpRST != 0 || (f.h[c2s].finDone && f.h[s2c].finDone) {
		t.closeFlow(f)
	}
}

// syn handles the handshake: a client SYN starts a flow in sync (replacing an old one on a reused port), the
// server's SYN-ACK fixes the start of both directions.
func (t *Tap) syn(f *flow, k flowKey, d int, s *tcpSegment, ts int64) {
	if d == c2s && s.flags&tcpACK == 0 {
		if f != nil {
			if c := &f.h[c2s]; !f.syn && c.init && c.start == s.seq+1 {
				// A late SYN (the capture reordered it after data): the flow it started is this one.
				f.syn, f.synSeq = true, s.seq
				return
			}
			fresh := !f.h[c2s].hadBytes && !f.h[s2c].hadBytes
			if fresh && f.syn && f.synSeq == s.seq {
				return // a retransmitted SYN
			}
			if fresh && !f.syn && (!f.h[c2s].init || f.h[c2s].next == s.seq+1) {
				// The SYN-ACK was captured first: this SYN belongs to the flow it started.
				f.syn, f.synSeq = true, s.seq
				return
			}
			t.closeFlow(f)
		}
		if f = t.newFlow(k, ts); f == nil {
			return
		}
		f.syn, f.synSeq = true, s.seq
		c := &f.h[c2s]
		c.init, c.next, c.start, c.synced = true, s.seq+1, s.seq+1, true
		return
	}
	if d != s2c || s.flags&tcpACK == 0 {
		return
	}
	if f == nil {
		if f = t.newFlow(k, ts); f == nil {
			return
		}
	}
	f.lastTs = ts
	if c := &f.h[c2s]; !c.init {
		// The client's SYN was not captured; the SYN-ACK acknowledges exactly its first byte.
		c.init, c.next, c.start, c.synced = true, s.ack, s.ack, true
	}
	if h := &f.h[s2c]; !h.init {
		h.init, h.next, h.start, h.synced = true, s.seq+1, s.seq+1, true
	}
}

// emit is every Pairer's Emit: it filters like the proxy, anonymizes nothing itself (the Pairer hashed keys
// through the anonymizer) and hands the event to the sink.
func (t *Tap) emit(p *mcproto.Pair) {
	switch p.Cmd {
	case mcproto.CmdWatch, mcproto.CmdLruCrawler:
		return // streams are not recorded, as in the proxy
	}
	if p.HasKey && p.KeyHash >= t.sampleBound {
		t.st.EventsSampled++
		return
	}
	statusCounts[p.Status].Inc()
	if t.opts.Record == nil {
		t.st.Events++
		return
	}
	t.ev = profile.FromPair(p) // a field, not a local: a local would escape through Record
	if t.opts.Record(&t.ev) {
		t.st.Events++
	} else {
		t.st.EventsDropped++
	}
}

// String summarises s on one line for logs and the command's exit report.
func (s *Stats) String() string {
	var tunnelled uint64
	for _, n := range s.Tunnelled {
		tunnelled += n
	}
	return fmt.Sprintf("%d packets, %d flows, %d events (%d dropped, %d lost), %d+%d gaps (%d+%d bytes lost), "+
		"%d resyncs (%d bytes skipped), %d retransmits, %d reordered, %d orphan and %d mismatched responses, "+
		"%d buffer overflows, %d flow overflows, kernel drops %d, interface drops %d, %d tunnelled "+
		"(%d in closed tunnels), %d damaged parts of the capture file",
		s.Packets, s.Flows, s.Events, s.EventsDropped, s.Lost, s.Gaps[c2s], s.Gaps[s2c], s.LostBytes[c2s],
		s.LostBytes[s2c], s.Resyncs, s.ResyncSkippedBytes, s.Retransmits, s.Queued, s.Orphans, s.Mismatched,
		s.BufferOverflows, s.FlowOverflow, s.KernelDrops, s.InterfaceDrops, tunnelled, s.EncapIgnored,
		s.CaptureDamage)
}
