// Pairing: the per-connection state machine that matches responses to requests and yields one Pair per
// (request, key). It understands pipelining, noreply, multi-key gets (one pair per key, hit or miss), meta quiet
// mode (suppressed responses inferred when a later response or MN arrives), meta opaque and k echo, binary
// opaque and quiet opcodes ended by noop, quit, and responses with no request (counted, never a crash).
package mcproto

import "hash/maphash"

// Default bounds of a Pairer.
const (
	// DefaultMaxPending bounds the requests waiting for a response on one connection; older ones are dropped
	// (counted in Overflow) so a client that never ends a quiet batch cannot grow memory without limit.
	DefaultMaxPending = 1 << 16
)

// respClass is what a pending request waits for.
type respClass uint8

const (
	classSingle   respClass = iota // one response frame
	classGetKey                    // one key of a text multi-get: VALUE for hits, END closes the group
	classMulti                     // lines until END (stats, cachedump, metadump)
	classWatch                     // OK, then the connection becomes a log stream
	classBinMulti                  // binary stat: responses until one with an empty key and body
)

// pending is one request (or one key of a multi-get) waiting for its response.
type pending struct {
	pair      Pair // prefilled; Status, RespTime and response fields are set on emission
	class     respClass
	lastInGrp bool   // last key of a text multi-get
	returnKey bool   // meta k: the response echoes the key
	opaqueSum uint64 // hash of the meta O token; 0 when none
	hasOpaque bool
}

// PairerStats counts what the Pairer could not pair cleanly.
type PairerStats struct {
	Requests   uint64 // requests registered
	Pairs      uint64 // pairs emitted
	Orphans    uint64 // responses with no request waiting for them
	Mismatched uint64 // responses that did not fit the request in front (pairing resynchronised)
	Suppressed uint64 // quiet requests whose response was inferred as suppressed
	Lost       uint64 // requests still waiting when the connection closed
	Overflow   uint64 // requests dropped because MaxPending were waiting
	StreamResp uint64 // response frames after watch / metadump, not paired
}

// Pairer matches the requests and responses of one connection. Feed it every request frame, in order, with
// Request and every response frame with Response; it calls Emit once per pair. Not safe for concurrent use: one
// Pairer per connection, used from the goroutine (event loop) that owns the connection.
type Pairer struct {
	Hasher KeyHasher
	// Emit receives each pair; the *Pair is valid only during the call.
	Emit func(*Pair)
	// Conn is copied into every Pair.
	Conn uint64
	// MaxPending bounds waiting requests (default DefaultMaxPending).
	MaxPending int
	// Route, when set, names the upstream server of each request key (Pair.Upstream); keyless requests and a
	// nil Route give -1.
	Route func(key []byte) int

	Stats PairerStats

	q       []pending // ring buffer
	head, n int
	loud    int // waiting requests that are not quiet
	// lastQueued reports that the latest Request call queued an entry (RequestDone retimes it).
	lastQueued bool
	stream     bool // the connection turned into a watch/metadump stream
	awaitEnd   bool // a text multi-get's keys all hit; its END comes next
	out        Pair // the pair handed to Emit
	holding    bool
	held       Pair
	heldValid  bool
	seed       maphash.Seed
	seeded     bool
	scratch    [MaxKeyLen]byte
}

// Reset forgets all state (for reuse on a new connection), keeping buffers and configuration.
func (p *Pairer) Reset() {
	p.head, p.n, p.loud = 0, 0, 0
	p.stream, p.holding, p.heldValid, p.awaitEnd = false, false, false, false
	p.Stats = PairerStats{}
}

// Pending returns the number of requests (keys, for multi-gets) waiting for a response.
func (p *Pairer) Pending() int { return p.n }

// PendingLoud returns the number of waiting requests that are not quiet: responses that must still arrive.
func (p *Pairer) PendingLoud() int { return p.loud }

// EachPending calls fn for every waiting request, oldest first, without removing it. Multi-gets appear once
// per key.
func (p *Pairer) EachPending(fn func(*Pair)) {
	for i := 0; i < p.n; i++ {
		fn(&p.at(i).pair)
	}
}

// Streaming reports whether the connection became a watch or metadump stream.
func (p *Pairer) Streaming() bool { return p.stream }

func (p *Pairer) push(e *pending) {
	max := p.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	if p.n >= max {
		p.pop()
		p.Stats.Overflow++
	}
	if p.n == len(p.q) {
		nq := make([]pending, max64(16, 2*len(p.q)))
		for i := 0; i < p.n; i++ {
			nq[i] = p.q[(p.head+i)%len(p.q)]
		}
		p.q, p.head = nq, 0
	}
	p.q[(p.head+p.n)%len(p.q)] = *e
	p.n++
	p.lastQueued = true
	if !e.pair.Quiet {
		p.loud++
	}
}

func max64(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func (p *Pairer) front() *pending { return &p.q[p.head] }

func (p *Pairer) at(i int) *pending { return &p.q[(p.head+i)%len(p.q)] }

func (p *Pairer) pop() {
	if !p.q[p.head].pair.Quiet {
		p.loud--
	}
	p.head = (p.head + 1) % len(p.q)
	p.n--
}

func (p *Pairer) emit(pr *Pair) {
	p.Stats.Pairs++
	if p.holding {
		// The frame's own pair is emitted last in a Response call; pairs before it (misses, suppressed quiet
		// requests) go out at once.
		if p.heldValid && p.Emit != nil {
			p.Emit(&p.held)
		}
		p.held, p.heldValid = *pr, true
		return
	}
	if p.Emit != nil {
		// Copy into the Pairer so that pr (often on the caller's stack) never escapes through Emit.
		p.out = *pr
		p.Emit(&p.out)
	}
}

func (p *Pairer) hashKey(tok []byte, b64 bool) (h, ns uint64, key []byte) {
	key, ok := DecodeKey(tok, b64, p.scratch[:])
	if !ok {
		key = tok
	}
	if p.Hasher == nil {
		return 0, 0, key
	}
	return p.Hasher.HashKey(key), p.Hasher.HashNamespace(key), key
}

func (p *Pairer) hashOnly(tok []byte, b64 bool) uint64 {
	key, ok := DecodeKey(tok, b64, p.scratch[:])
	if !ok || p.Hasher == nil {
		return 0
	}
	return p.Hasher.HashKey(key)
}

func (p *Pairer) opaqueSum(b []byte) uint64 {
	if !p.seeded {
		p.seed, p.seeded = maphash.MakeSeed(), true
	}
	return maphash.Bytes(p.seed, b)
}

// Request registers a request frame that was sent at time t (ns; the request's last byte). Requests the
// parser rejected (a *ProtocolError without Close) are registered too: memcached answers them with an error.
func (p *Pairer) Request(r *Request, t int64) {
	if p.stream {
		return
	}
	p.Stats.Requests++
	p.lastQueued = false // set by push below; a request paired at once (noreply) has nothing to retime
	var e pending
	pr := &e.pair
	pr.Proto, pr.Cmd, pr.Opcode = r.Proto, r.Cmd, r.Opcode
	pr.Op = opOf(r)
	pr.Quiet, pr.Noreply = r.Quiet, r.Noreply
	pr.Flags, pr.Opaque, pr.Conn, pr.ReqTime = r.Flags, r.Opaque, p.Conn, t
	pr.Upstream = -1
	if r.HasExptime {
		pr.Exptime, pr.HasTTL = r.Exptime, true
	}
	if r.HasValue {
		pr.ValueSize = uint32(r.ValueLen)
	}
	e.returnKey = r.ReturnKey
	if r.MetaOpaque != nil {
		e.opaqueSum, e.hasOpaque = p.opaqueSum(r.MetaOpaque), true
	}
	switch {
	case r.Proto == ProtoBinary && r.Cmd == CmdStats:
		e.class = classBinMulti
	case r.Cmd == CmdWatch:
		e.class = classWatch
	case r.Proto == ProtoText && isMultiLine(r):
		e.class = classMulti
	}
	noResponse := !r.ExpectsResponse() || (r.Proto != ProtoBinary && r.Cmd == CmdQuit) ||
		(r.Proto == ProtoBinary && r.Opcode == binQuitQ)
	textGet := r.Proto == ProtoText && r.Cmd.IsRetrieval()
	if len(r.Keys) == 0 || !r.Cmd.HasKey() {
		if noResponse {
			pr.Status, pr.RespTime = StatusNoneExpected, t
			p.emit(pr)
			return
		}
		p.push(&e)
		return
	}
	for i, k := range r.Keys {
		h, ns, key := p.hashKey(k, r.KeyBase64)
		pr.HasKey, pr.KeyHash, pr.NSHash, pr.KeySize = true, h, ns, uint16(len(key))
		if p.Route != nil {
			pr.Upstream = int16(p.Route(key))
		}
		if noResponse {
			pr.Status, pr.RespTime = StatusNoneExpected, t
			p.emit(pr)
			continue
		}
		if textGet {
			e.class = classGetKey
			e.lastInGrp = i == len(r.Keys)-1
			if n := len(r.Keys); n > 1 && n <= MaxGroupKeys {
				pr.KeyIndex, pr.KeyCount = uint16(i), uint16(n)
			}
		}
		p.push(&e)
	}
}

// opOf returns the operation r performs (Pair.Op).
func opOf(r *Request) Command {
	switch r.Proto {
	case ProtoMeta:
		switch r.Cmd {
		case CmdMetaSet:
			if r.HasCas {
				return CmdCas
			}
			switch r.Mode { // memcached takes either case
			case 'E', 'e':
				return CmdAdd
			case 'A', 'a':
				return CmdAppend
			case 'P', 'p':
				return CmdPrepend
			case 'R', 'r':
				return CmdReplace
			}
		case CmdMetaGet:
			if r.HasMetaFlag('c') {
				if r.HasMetaFlag('T') {
					return CmdGats
				}
				return CmdGets
			}
		}
	case ProtoBinary:
		if r.HasCas && (r.Cmd == CmdSet || r.Cmd == CmdReplace) {
			return CmdCas
		}
	}
	return r.Cmd
}

func isMultiLine(r *Request) bool {
	switch r.Cmd {
	case CmdStats:
		switch string(r.Arg) {
		case "reset":
			return false
		case "detail":
			// "stats detail dump" lists lines then END; "on"/"off" answer OK.
			return len(r.Line) >= 4 && string(r.Line[len(r.Line)-4:]) == "dump"
		}
		return true
	case CmdLruCrawler:
		return string(r.Arg) == "metadump"
	}
	return false
}

// RequestDone updates the time of the most recent request whose data block was streamed: call it with the
// time its last byte was sent.
func (p *Pairer) RequestDone(t int64) {
	if p.lastQueued && p.n > 0 {
		p.at(p.n - 1).pair.ReqTime = t
	}
}

// Response registers a response frame received at time t (ns; its last byte). When complete is false the
// frame's data block is still streaming: pairs are computed now and emitted by ResponseDone.
func (p *Pairer) Response(r *Response, t int64, complete bool) {
	if p.stream {
		p.Stats.StreamResp++
		return
	}
	p.holding = !complete
	defer func() { p.holding = false }()
	switch r.Proto {
	case ProtoBinary:
		p.binaryResponse(r, t)
	default:
		p.textResponse(r, t)
	}
}

// ResponseDone emits the pair held back by Response(…, complete=false), timed at t.
func (p *Pairer) ResponseDone(t int64) {
	if !p.heldValid {
		return
	}
	p.heldValid = false
	p.held.RespTime = t
	if p.Emit != nil {
		p.Emit(&p.held)
	}
}

// Close ends the connection at time t: requests still waiting are emitted with StatusLost (quiet ones whose
// batch was never ended included) and counted.
func (p *Pairer) Close(t int64) {
	p.holding = false
	if p.heldValid {
		// A response whose value never finished arriving: its request is lost, not answered.
		p.heldValid = false
		p.held.Status, p.held.RespTime = StatusLost, 0
		p.Stats.Lost++
		if p.Emit != nil {
			p.Emit(&p.held)
		}
	}
	for p.n > 0 {
		e := p.front()
		e.pair.Status, e.pair.RespTime = StatusLost, 0
		p.Stats.Lost++
		p.emit(&e.pair)
		p.pop()
	}
}

func (p *Pairer) finish(e *pending, st Status, t int64) {
	e.pair.Status, e.pair.RespTime = st, t
	p.emit(&e.pair)
	p.pop()
}

// suppressedStatus is what a quiet request's missing response means.
func suppressedStatus(pr *Pair) Status {
	switch pr.Cmd {
	case CmdGet, CmdGets, CmdGat, CmdGats, CmdMetaGet:
		return StatusMiss
	case CmdSet, CmdAdd, CmdReplace, CmdAppend, CmdPrepend, CmdCas, CmdMetaSet:
		return StatusStored
	case CmdDelete, CmdMetaDelete:
		return StatusDeleted
	}
	return StatusOK
}

func (p *Pairer) textResponse(r *Response, t int64) {
	if p.n == 0 && !p.awaitEnd {
		p.Stats.Orphans++
		return
	}
	if p.awaitEnd {
		// The END closing a multi-get whose keys were all hits.
		p.awaitEnd = false
		if r.Kind == RespEnd {
			return
		}
		p.Stats.Mismatched++
	}
	// Meta quiet requests in front whose response this is not were answered by silence.
	if !p.skipSuppressedMeta(r, t) {
		p.Stats.Orphans++
		return
	}
	e := p.front()
	switch e.class {
	case classGetKey:
		p.getResponse(r, t)
	case classMulti:
		switch r.Kind {
		case RespStat, RespLine, RespValue:
			return // more lines follow
		}
		p.finish(e, textStatus(&e.pair, r), t)
	case classWatch:
		st := textStatus(&e.pair, r)
		p.finish(e, st, t)
		if r.Kind == RespOK {
			p.stream = true
		}
	default:
		if r.Kind == RespLine && e.pair.Cmd.HasKey() {
			// No keyed command is answered by a line memcached has no word for: something else sent it (not
			// memcached, or a corrupted stream). The request keeps waiting for its own answer.
			p.Stats.Orphans++
			return
		}
		st := textStatus(&e.pair, r)
		if r.Kind == RespValue && e.pair.Cmd.IsRetrieval() {
			st = StatusHit
		}
		if st == StatusHit {
			e.pair.ValueSize = uint32(r.ValueLen)
			if r.Kind == RespValue || r.Flags != 0 {
				e.pair.Flags = r.Flags
			}
		}
		if e.pair.Cmd == CmdMetaNoop && r.Kind != RespMetaMN {
			p.Stats.Mismatched++
		}
		p.finish(e, st, t)
	}
}

// skipSuppressedMeta pops quiet meta requests in front that r does not answer, emitting them with their
// suppressed status. It returns false when nothing is left waiting.
func (p *Pairer) skipSuppressedMeta(r *Response, t int64) bool {
	for p.n > 0 {
		e := p.front()
		if e.pair.Proto != ProtoMeta || !e.pair.Quiet || p.metaAnswers(e, r) {
			return true
		}
		p.Stats.Suppressed++
		p.finish(e, suppressedStatus(&e.pair), t)
	}
	return false
}

// metaAnswers reports whether r can be the (unsuppressed) answer of the quiet meta request e.
func (p *Pairer) metaAnswers(e *pending, r *Response) bool {
	if r.IsError() {
		return true
	}
	// memcached echoes O and k in every answer of a request that carried them, and only then: an answer whose
	// echoes differ from e's belongs to another request.
	if e.hasOpaque != (r.MetaOpaque != nil) || (r.Kind != RespMetaME && e.returnKey != (r.Key != nil)) {
		return false
	}
	if e.hasOpaque {
		return p.opaqueSum(r.MetaOpaque) == e.opaqueSum
	}
	if r.Key != nil && e.returnKey && e.pair.HasKey {
		return p.hashOnly(r.Key, r.KeyBase64) == e.pair.KeyHash
	}
	switch e.pair.Cmd {
	case CmdMetaGet:
		return r.Kind == RespMetaVA || r.Kind == RespMetaHD
	case CmdMetaSet:
		return r.Kind == RespMetaNS || r.Kind == RespMetaEX || r.Kind == RespMetaNF
	case CmdMetaDelete:
		return r.Kind == RespMetaNF || r.Kind == RespMetaEX
	case CmdMetaArithmetic:
		return r.Kind == RespMetaNF || r.Kind == RespMetaNS || r.Kind == RespMetaEX
	case CmdMetaDebug:
		return r.Kind == RespMetaME || r.Kind == RespMetaEN
	}
	return r.Kind != RespMetaMN
}

// getResponse handles a frame answering a text multi-get whose first waiting key is in front.
func (p *Pairer) getResponse(r *Response, t int64) {
	switch r.Kind {
	case RespValue:
		h := p.hashOnly(r.Key, false)
		// Find the key in the current group; keys before it were misses.
		match := -1
		for i := 0; i < p.n; i++ {
			e := p.at(i)
			if e.class != classGetKey {
				break
			}
			if e.pair.KeyHash == h {
				match = i
				break
			}
			if e.lastInGrp {
				break
			}
		}
		if match < 0 {
			p.Stats.Mismatched++
			return
		}
		for i := 0; i < match; i++ {
			p.finish(p.front(), StatusMiss, t)
		}
		e := p.front()
		e.pair.ValueSize, e.pair.Flags = uint32(r.ValueLen), r.Flags
		last := e.lastInGrp
		p.finish(e, StatusHit, t)
		// Every key of the group has its answer but END has not arrived yet: expect it next.
		p.awaitEnd = last
	default:
		st := StatusMiss
		if r.Kind != RespEnd {
			st = textStatus(&p.front().pair, r)
			if r.Kind != RespClientError && r.Kind != RespServerError && r.Kind != RespError {
				p.Stats.Mismatched++
			}
		}
		for p.n > 0 {
			e := p.front()
			if e.class != classGetKey {
				break
			}
			last := e.lastInGrp
			p.finish(e, st, t)
			if last {
				break
			}
		}
	}
}

// textStatus maps a text or meta response to the pair status for the request in front.
func textStatus(pr *Pair, r *Response) Status {
	switch r.Kind {
	case RespValue, RespMetaVA:
		if pr.Cmd.IsRetrieval() {
			return StatusHit
		}
		return StatusOK
	case RespEnd, RespMetaEN:
		if pr.Cmd.IsRetrieval() || pr.Cmd == CmdMetaDebug {
			return StatusMiss
		}
		return StatusOK
	case RespStored:
		return StatusStored
	case RespNotStored, RespMetaNS:
		return StatusNotStored
	case RespExists, RespMetaEX:
		return StatusExists
	case RespNotFound, RespMetaNF:
		return StatusNotFound
	case RespDeleted:
		return StatusDeleted
	case RespTouched:
		return StatusTouched
	case RespMetaHD:
		switch pr.Cmd {
		case CmdMetaGet:
			return StatusHit
		case CmdMetaSet:
			return StatusStored
		case CmdMetaDelete:
			return StatusDeleted
		}
		return StatusOK
	case RespMetaME:
		return StatusHit
	case RespError:
		return StatusError
	case RespClientError:
		return StatusClientError
	case RespServerError:
		return StatusServerError
	}
	return StatusOK
}

func (p *Pairer) binaryResponse(r *Response, t int64) {
	// Find the request this response answers: quiet requests before it were answered by silence.
	match := -1
	for i := 0; i < p.n; i++ {
		e := p.at(i)
		if e.pair.Proto == ProtoBinary && e.pair.Opcode == r.Opcode && e.pair.Opaque == r.Opaque {
			match = i
			break
		}
		if !e.pair.Quiet {
			break
		}
	}
	if match < 0 {
		// Not in order: look further (a desynchronised stream), else it is an orphan.
		for i := 0; i < p.n && i < 64; i++ {
			e := p.at(i)
			if e.pair.Proto == ProtoBinary && e.pair.Opcode == r.Opcode && e.pair.Opaque == r.Opaque {
				match = i
				p.Stats.Mismatched++
				break
			}
		}
		if match < 0 {
			p.Stats.Orphans++
			return
		}
	}
	for i := 0; i < match; i++ {
		e := p.front()
		st := suppressedStatus(&e.pair)
		if !e.pair.Quiet {
			st = StatusUnknown
		} else {
			p.Stats.Suppressed++
		}
		p.finish(e, st, t)
	}
	e := p.front()
	if e.class == classBinMulti && (r.ValueLen > 0 || len(r.Key) > 0) && r.BinStatus == BinStatusSuccess {
		return // more stat responses follow
	}
	st := binaryStatus(&e.pair, r.BinStatus)
	if st == StatusHit {
		e.pair.ValueSize, e.pair.Flags = uint32(r.ValueLen), r.Flags
	}
	p.finish(e, st, t)
}

func binaryStatus(pr *Pair, s uint16) Status {
	switch s {
	case BinStatusSuccess:
		switch pr.Cmd {
		case CmdGet, CmdGat:
			return StatusHit
		case CmdSet, CmdAdd, CmdReplace, CmdAppend, CmdPrepend:
			return StatusStored
		case CmdDelete:
			return StatusDeleted
		case CmdTouch:
			return StatusTouched
		}
		return StatusOK
	case BinStatusKeyNotFound:
		if pr.Cmd.IsRetrieval() {
			return StatusMiss
		}
		return StatusNotFound
	case BinStatusKeyExists:
		return StatusExists
	case BinStatusNotStored:
		return StatusNotStored
	case BinStatusTooLarge, BinStatusOutOfMemory:
		return StatusServerError
	case BinStatusInvalid, BinStatusDeltaBadValue, BinStatusAuthError:
		return StatusClientError
	case BinStatusUnknownCommand:
		return StatusError
	}
	return StatusOK
}
