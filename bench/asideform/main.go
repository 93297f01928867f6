// Command asideform turns a profile (an imported trace, a recording) into a stream with outcomes, as a capture in
// front of a simulated LRU cache of -size bytes (key + value per item) would show it. Keyless events are dropped.
//
//   - -mode aside (look-aside): each keyed event becomes a get of its key, answered hit or miss, and each miss is
//     followed by a set of the key's value size, as a cache-aside application fills the cache after reading the
//     database. A hit returns the size that was set.
//   - -mode rw (read/write): the trace's own commands: storage commands become sets, everything else a get
//     answered hit (with the event's own value size, which may change from one reference to the next) or miss.
//     The cache admits a missed object without any set on the wire, as a trace simulator (libCacheSim) does, so
//     a miss is not followed by a set.
//
// The output keeps the source's header (salt fingerprint, clock), so 'membench compare' and 'membench synth
// --profile' work on it as on a capture.
//
// It exists to check the synthetic model on a stream with strict per-key order (docs/WORKLOADS.md, "Synthetic
// fidelity on real traces"); bench/synth-fidelity.sh drives it.
//
//	go run ./bench/asideform -profile trace.mbp -size 268435456 -o aside.mbp
package main

import (
	"container/list"
	"flag"
	"fmt"
	"os"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

func main() {
	path := flag.String("profile", "", "profile to turn into a look-aside stream (membench import makes one of a trace)")
	out := flag.String("o", "", "profile to write (replaced if it exists)")
	size := flag.Int64("size", 256<<20, "simulated LRU cache size in bytes (key + value per item)")
	mode := flag.String("mode", "aside", "aside: get, and a set after each miss; rw: the trace's own gets and sets")
	value := flag.Uint("value-size", 4096, "value size for events that name none (traces without object sizes)")
	flag.Parse()
	if *path == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "asideform: -profile and -o are required")
		os.Exit(2)
	}
	if *mode != "aside" && *mode != "rw" {
		fmt.Fprintf(os.Stderr, "asideform: -mode %q: want aside or rw\n", *mode)
		os.Exit(2)
	}
	if *size <= 0 || *value == 0 || *value > 1<<30 {
		fmt.Fprintln(os.Stderr, "asideform: -size must be positive and -value-size in 1..2^30")
		os.Exit(2)
	}
	gets, hits, err := run(*path, *out, *mode == "aside", *size, uint32(*value))
	if err != nil {
		fmt.Fprintln(os.Stderr, "asideform:", err)
		os.Exit(1)
	}
	fmt.Printf("gets %d hits %d misses %d hit_ratio %.4f\n", gets, hits, gets-hits, float64(hits)/float64(max(gets, 1)))
}

type item struct {
	key  uint64
	size int64
}

func run(path, outPath string, aside bool, capacity int64, defValue uint32) (gets, hits uint64, err error) {
	in, err := profile.Open(path, profile.ReaderOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	w, err := profile.NewWriter(outPath, in.Header(), profile.WriterOptions{Overwrite: true, Atomic: true,
		FlushInterval: -1})
	if err != nil {
		return 0, 0, err
	}
	defer w.Abort()
	lru := list.New()
	where := map[uint64]*list.Element{}
	var used int64
	for ev := range in.All() {
		if !ev.Cmd.HasKey() || ev.KeyHash == 0 {
			continue
		}
		vs := ev.ValueSize
		if vs == 0 {
			vs = defValue
		}
		get := profile.Event{Time: ev.Time, Conn: ev.Conn, Proto: mcproto.ProtoText, Cmd: mcproto.CmdGet,
			KeyHash: ev.KeyHash, KeySize: ev.KeySize, NSHash: ev.NSHash, Upstream: -1, Status: mcproto.StatusMiss}
		if !aside && ev.Cmd.IsStorage() {
			set := get
			set.Cmd, set.Status, set.ValueSize = mcproto.CmdSet, mcproto.StatusStored, vs
			if err := w.Write(&set); err != nil {
				return 0, 0, err
			}
			used += admit(lru, where, ev.KeyHash, int64(ev.KeySize)+int64(vs), capacity)
			continue
		}
		gets++
		if e := where[ev.KeyHash]; e != nil {
			hits++
			lru.MoveToFront(e)
			it := e.Value.(*item)
			get.Status, get.ValueSize = mcproto.StatusHit, uint32(it.size-int64(ev.KeySize))
			if !aside {
				get.ValueSize = vs
				used += int64(ev.KeySize) + int64(vs) - it.size
				it.size = int64(ev.KeySize) + int64(vs)
			}
			if err := w.Write(&get); err != nil {
				return 0, 0, err
			}
		} else {
			if err := w.Write(&get); err != nil {
				return 0, 0, err
			}
			if aside {
				set := get
				set.Cmd, set.Status, set.ValueSize = mcproto.CmdSet, mcproto.StatusStored, vs
				if err := w.Write(&set); err != nil {
					return 0, 0, err
				}
			}
			used += admit(lru, where, ev.KeyHash, int64(ev.KeySize)+int64(vs), capacity)
		}
		for used > capacity {
			old := lru.Remove(lru.Back()).(*item)
			delete(where, old.key)
			used -= old.size
		}
	}
	if err := in.Err(); err != nil {
		return 0, 0, err
	}
	return gets, hits, w.Close()
}

// admit stores key at the front of the LRU (replacing what was there) and returns the change in bytes used; an
// object larger than the cache is not stored. The caller evicts.
func admit(lru *list.List, where map[uint64]*list.Element, key uint64, size, capacity int64) int64 {
	var d int64
	if e := where[key]; e != nil {
		d -= e.Value.(*item).size
		lru.Remove(e)
		delete(where, key)
	}
	if size > capacity {
		return d
	}
	where[key] = lru.PushFront(&item{key: key, size: size})
	return d + size
}
