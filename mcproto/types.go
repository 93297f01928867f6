// Package mcproto is membench's memcached wire protocol engine: bytes in, frames out.
//
// It never touches a socket, a file, a metric or a log. Callers (the proxy's event loop, the tap's reassembled
// TCP streams, replay's response reader) feed it the bytes they hold; it answers with one complete frame and its
// length, "incomplete, give me more", or a *ProtocolError carrying the exact text memcached would send.
//
// This file holds the vocabulary shared by every other package: protocols, commands and pairing statuses.
package mcproto

// Protocol is the wire protocol of a frame. Text and meta commands share one connection; binary is chosen per
// connection by its first byte (0x80).
type Protocol uint8

// Protocols.
const (
	ProtoUnknown Protocol = iota
	ProtoText
	ProtoMeta
	ProtoBinary
)

var protocolNames = [...]string{"unknown", "text", "meta", "binary"}

func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "unknown"
}

// ParseProtocol returns the protocol named s (as printed by String) and whether it exists.
func ParseProtocol(s string) (Protocol, bool) {
	for i, n := range protocolNames {
		if n == s {
			return Protocol(i), true
		}
	}
	return ProtoUnknown, false
}

// Command is what a request asks for. Binary opcodes map onto the text command with the same meaning (GetQ and
// GetKQ are CmdGet with Quiet set); meta commands have their own values.
type Command uint8

// Commands. The numeric values are stored in profiles: append new ones at the end, never reorder.
const (
	CmdUnknown Command = iota
	CmdGet
	CmdGets
	CmdGat
	CmdGats
	CmdSet
	CmdAdd
	CmdReplace
	CmdAppend
	CmdPrepend
	CmdCas
	CmdDelete
	CmdIncr
	CmdDecr
	CmdTouch
	CmdFlushAll
	CmdStats
	CmdVersion
	CmdVerbosity
	CmdQuit
	CmdShutdown
	CmdCacheMemlimit
	CmdSlabs
	CmdLruCrawler
	CmdWatch
	CmdOther // any command membench does not know, framed by its line
	CmdMetaGet
	CmdMetaSet
	CmdMetaDelete
	CmdMetaArithmetic
	CmdMetaNoop
	CmdMetaDebug
	CmdNoop // binary noop
	CmdSASLList
	CmdSASLAuth
	CmdSASLStep
	CmdLru // "lru" tuning command
	cmdCount
)

var commandNames = [...]string{
	"unknown", "get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas", "delete",
	"incr", "decr", "touch", "flush_all", "stats", "version", "verbosity", "quit", "shutdown",
	"cache_memlimit", "slabs", "lru_crawler", "watch", "other", "mg", "ms", "md", "ma", "mn", "me", "noop",
	"sasl_list_mechs", "sasl_auth", "sasl_step", "lru",
}

func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return "unknown"
}

// NumCommands is one more than the largest Command value, for callers that keep per-command arrays.
const NumCommands = int(cmdCount)

// ParseCommand returns the command named s (as printed by String) and whether it exists.
func ParseCommand(s string) (Command, bool) {
	for i, n := range commandNames {
		if n == s {
			return Command(i), true
		}
	}
	return CmdUnknown, false
}

// IsRetrieval reports whether c reads items (its pairs are hits or misses).
func (c Command) IsRetrieval() bool {
	switch c {
	case CmdGet, CmdGets, CmdGat, CmdGats, CmdMetaGet:
		return true
	}
	return false
}

// IsStorage reports whether c carries a value in the request.
func (c Command) IsStorage() bool {
	switch c {
	case CmdSet, CmdAdd, CmdReplace, CmdAppend, CmdPrepend, CmdCas, CmdMetaSet:
		return true
	}
	return false
}

// HasKey reports whether requests of c name a key (and so produce one pair per key).
func (c Command) HasKey() bool {
	switch c {
	case CmdGet, CmdGets, CmdGat, CmdGats, CmdSet, CmdAdd, CmdReplace, CmdAppend, CmdPrepend, CmdCas,
		CmdDelete, CmdIncr, CmdDecr, CmdTouch, CmdMetaGet, CmdMetaSet, CmdMetaDelete, CmdMetaArithmetic,
		CmdMetaDebug:
		return true
	}
	return false
}

// Status is the outcome of one (request, response) pair, as recorded in profiles.
type Status uint8

// Statuses. The numeric values are stored in profiles: append new ones at the end, never reorder.
const (
	StatusUnknown      Status = iota
	StatusHit                 // retrieval found the key
	StatusMiss                // retrieval did not find the key
	StatusStored              // STORED, HD after ms, binary success on a store
	StatusNotStored           // NOT_STORED, NS
	StatusExists              // EXISTS, EX, binary key exists
	StatusNotFound            // NOT_FOUND, NF
	StatusDeleted             // DELETED, HD after md
	StatusTouched             // TOUCHED, HD after a touch
	StatusOK                  // OK, numeric incr/decr result, VERSION, STAT…END, MN, binary success otherwise
	StatusError               // ERROR (unknown command)
	StatusClientError         // CLIENT_ERROR …, binary invalid arguments
	StatusServerError         // SERVER_ERROR …, binary out of memory / too large
	StatusNoneExpected        // noreply: no response was expected
	StatusLost                // the connection ended before the response arrived
	statusCount
)

var statusNames = [...]string{
	"unknown", "hit", "miss", "stored", "not_stored", "exists", "not_found", "deleted", "touched", "ok",
	"error", "client_error", "server_error", "none_expected", "lost",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// NumStatuses is one more than the largest Status value.
const NumStatuses = int(statusCount)

// ParseStatus returns the status named s (as printed by String) and whether it exists.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), true
		}
	}
	return StatusUnknown, false
}

// Pair is one request matched with its response, per key for multi-key gets. It holds no key bytes: KeyHash is
// whatever the Pairer's hash function returned for the key (the recorder's keyed SipHash).
type Pair struct {
	Proto Protocol
	Cmd   Command
	// Op is the operation the request performs, in the command that names it in the text protocol, where that
	// differs from Cmd: a meta ms with a C flag is a cas, with mode E, A, P or R an add, append, prepend or replace;
	// a meta mg with a c flag is a gets (a gats with a T flag); a binary set or replace that carries a cas value is
	// a cas. Otherwise Op is Cmd. Recordings keep Op (profile.FromPair), so that a replay sends the same operation;
	// pairing itself goes by Cmd.
	Op      Command
	Opcode  uint8 // binary opcode, 0 otherwise
	Status  Status
	Quiet   bool   // meta q flag or binary quiet opcode
	Noreply bool   // text noreply
	HasKey  bool   // KeyHash and KeySize are meaningful
	KeySize uint16 // key length in bytes (decoded length for meta base64 keys)
	KeyHash uint64
	NSHash  uint64 // KeyHasher.HashNamespace of the key (0 when namespaces are off)
	// ValueSize is the request's value length for storage commands and the response's value length for hits.
	ValueSize uint32
	Flags     uint32 // client flags: from the request for stores, from the response for hits
	Exptime   int64  // TTL as sent (seconds or absolute unix time, as memcached reads it); 0 = none
	HasTTL    bool   // the request carried an exptime (stores, touch, gat, meta T flag)
	Opaque    uint32 // binary opaque
	// ReqTime and RespTime are the caller's timestamps (ns) for the request's last byte and the response's last
	// byte; RespTime equals ReqTime for noreply pairs.
	ReqTime  int64
	RespTime int64
	Conn     uint64 // caller's connection id, copied from the Pairer
	// Upstream is the server the key was routed to (Pairer.Route), or -1.
	Upstream int16
	// KeyIndex and KeyCount place the pair in a text multi-key get (get k1 k2 …): the key's position, from 0, and
	// the request's number of keys. Both are 0 for every other request, single-key gets included, and for the
	// rare get of more than MaxGroupKeys keys.
	KeyIndex uint16
	KeyCount uint16
}

// MaxGroupKeys is the largest multi-key get whose keys Pair.KeyIndex and KeyCount can place.
const MaxGroupKeys = 1<<16 - 1

// Latency is RespTime-ReqTime, or 0 when no response was timed.
func (p *Pair) Latency() int64 {
	if p.RespTime > p.ReqTime {
		return p.RespTime - p.ReqTime
	}
	return 0
}

// KeyHasher turns key bytes into the identities a Pair carries. The recorder's keyed SipHash anonymizer
// implements it; the Pairer also uses HashKey to match response keys (VALUE lines, meta k echo, binary GetK) to
// request keys, so it must be deterministic for the life of a Pairer. Key bytes never leave the call.
type KeyHasher interface {
	HashKey(key []byte) uint64
	// HashNamespace hashes the key's namespace (its prefix up to a delimiter); 0 when namespaces are off.
	HashNamespace(key []byte) uint64
}

// FNVHasher is an unkeyed KeyHasher (64-bit FNV-1a, no namespaces) for pairing when nothing is recorded: its
// values must never leave the process, since anyone can recompute them from a key.
type FNVHasher struct{}

// HashKey returns the 64-bit FNV-1a hash of key.
func (FNVHasher) HashKey(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// HashNamespace returns 0: FNVHasher has no namespaces.
func (FNVHasher) HashNamespace([]byte) uint64 { return 0 }
