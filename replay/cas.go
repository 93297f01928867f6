// This file keeps the cas uniques a replay connection has been given, so that a replayed cas can succeed as the
// recorded one did. Profiles do not hold cas uniques (they are the server's), but a client's cas names the unique
// of its latest gets of the key; replay does the same on the target: the hits of gets, gats, mg with c and binary
// get on a connection give uniques, and a later cas of the same key on that connection sends the latest one. A key
// with no unique seen (or pushed out of the table) gets 1, which fails as EXISTS or NOT_FOUND.

package replay

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

var casSeed = maphash.MakeSeed()

// casID identifies a key in a casTable; never 0. 32 bits keep the entries in flight small; two keys sharing an
// id and a slot cost one cas the right unique.
func casID(key []byte) uint32 { return uint32(maphash.Bytes(casSeed, key)) | 1 }

// casSlots bounds a connection's table: direct-mapped, a newer key takes an older one's slot.
const casSlots = 4096

type casTable struct {
	mu    sync.Mutex // the receiver puts and the sender gets (open loop)
	slots [casSlots]struct {
		id  uint32
		cas uint64
	}
}

// casUniques is a connection's table, allocated at its first unique.
type casUniques struct {
	t atomic.Pointer[casTable]
}

func (u *casUniques) put(id uint32, cas uint64) {
	t := u.t.Load()
	if t == nil {
		u.t.CompareAndSwap(nil, &casTable{})
		t = u.t.Load()
	}
	s := &t.slots[id%casSlots]
	t.mu.Lock()
	s.id, s.cas = id, cas
	t.mu.Unlock()
}

// get returns the latest unique seen for id, or 1.
func (u *casUniques) get(id uint32) uint64 {
	t := u.t.Load()
	if t == nil {
		return 1
	}
	s := &t.slots[id%casSlots]
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.id != id || s.cas == 0 {
		return 1
	}
	return s.cas
}
