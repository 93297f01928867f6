// This file holds Merge, which interleaves several profiles recorded with the same salt into one, in time
// order, streaming.

package profile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MergeHeader checks that the profiles read by rs can be merged and returns the header for the result: mode
// "merge", the inputs' common salt fingerprint, the earliest creation time, the finest time unit and latency
// precision among them, their host labels joined by commas, and the settings on which all inputs agree.
func MergeHeader(rs []*Reader) (Header, error) {
	if len(rs) == 0 {
		return Header{}, fmt.Errorf("cannot merge: no input profiles")
	}
	first := rs[0].Header()
	h := Header{Mode: "merge", Created: first.Created, SaltFingerprint: first.SaltFingerprint,
		TimeUnit: first.TimeUnit, LatencyBits: first.LatencyBits, Settings: map[string]string{}}
	var hosts []string
	for k, v := range first.Settings {
		h.Settings[k] = v
	}
	for i, r := range rs {
		rh := r.Header()
		if rh.SaltFingerprint != first.SaltFingerprint {
			return Header{}, fmt.Errorf("cannot merge %s and %s: they were recorded with different salts "+
				"(fingerprints %016x and %016x), so their key hashes cannot be compared; record both with the "+
				"same --salt-file", rs[0].Name(), r.Name(), first.SaltFingerprint, rh.SaltFingerprint)
		}
		if i > 0 && rh.Created.Before(h.Created) {
			h.Created = rh.Created
		}
		h.TimeUnit = min(h.TimeUnit, rh.TimeUnit)
		h.LatencyBits = max(h.LatencyBits, rh.LatencyBits)
		if rh.Host != "" && !slices.Contains(hosts, rh.Host) {
			hosts = append(hosts, rh.Host)
		}
		for k, v := range h.Settings {
			if rv, ok := rh.Settings[k]; !ok || rv != v {
				delete(h.Settings, k)
			}
		}
	}
	h.Host = strings.Join(hosts, ",")
	h.Settings["merge_inputs"] = strconv.Itoa(len(rs))
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	return h, nil
}

// Merge writes the events of every reader to w, ordered by Time (ties keep input order), and returns how many
// it wrote. It reads each input once, holding one event per input: a k-way merge with a heap.
//
// Each input is expected to be in time order, as recorders write (completion order, which is time order up to
// one latency); events that are out of order within an input stay in that input's order.
//
// Connection ids are renumbered densely in order of first appearance (0, 1, 2, …), so connections of different
// inputs never collide. This keeps a map of one entry per distinct (input, connection) pair.
func Merge(w *Writer, rs []*Reader) (int64, error) {
	heads := make([]Event, len(rs))
	h := mergeHeap{heads: heads}
	for i, r := range rs {
		if r.Next(&heads[i]) {
			h.idx = append(h.idx, i)
		} else if err := r.Err(); err != nil {
			return 0, err
		}
	}
	h.init()
	type connKey struct {
		src  int
		conn uint64
	}
	conns := map[connKey]uint64{}
	var n int64
	for len(h.idx) > 0 {
		i := h.idx[0]
		ev := heads[i]
		k := connKey{i, ev.Conn}
		c, ok := conns[k]
		if !ok {
			c = uint64(len(conns))
			conns[k] = c
		}
		ev.Conn = c
		if err := w.Write(&ev); err != nil {
			return n, err
		}
		n++
		if rs[i].Next(&heads[i]) {
			h.down(0)
			continue
		}
		if err := rs[i].Err(); err != nil {
			return n, err
		}
		h.pop()
	}
	return n, nil
}

// mergeHeap is a min-heap of input indexes ordered by their head event's time, then index.
type mergeHeap struct {
	heads []Event
	idx   []int
}

func (h *mergeHeap) less(a, b int) bool {
	ta, tb := h.heads[h.idx[a]].Time, h.heads[h.idx[b]].Time
	return ta < tb || ta == tb && h.idx[a] < h.idx[b]
}

func (h *mergeHeap) init() {
	for i := len(h.idx)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h.idx) {
			return
		}
		m := l
		if r := l + 1; r < len(h.idx) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.idx[i], h.idx[m] = h.idx[m], h.idx[i]
		i = m
	}
}

func (h *mergeHeap) pop() {
	last := len(h.idx) - 1
	h.idx[0] = h.idx[last]
	h.idx = h.idx[:last]
	if last > 0 {
		h.down(0)
	}
}
