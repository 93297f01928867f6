// This file holds the warmup: before measuring, store every key the source reads as existing before any write
// to it, at the value size it was read with, so that the replay's hits are hits for the same reasons the
// recording's were. The stores go through their own short closed-loop run, which is not measured.

package replay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
	"github.com/membench/membench/ring"
)

// defaultWarmScan bounds the events a warmup reads from a source that does not end by itself.
const defaultWarmScan = 10_000_000

type warmKey struct {
	ns        uint64 // namespace hash (Event.NSHash): part of the synthesized key
	hash      uint64
	keySize   uint16
	valueSize uint32
}

// warmKeys scans the source for the keys to store, in the order they are first read.
func warmKeys(opts Options, p plan, limit uint64) ([]warmKey, error) {
	var keys []warmKey
	if opts.WarmKeys != nil {
		opts.WarmKeys(func(hash uint64, keySize uint16, valueSize uint32) bool {
			if p.shards > 1 && int(workload.Mix64(hash^0x51ed270b27e3a9f1)%uint64(p.shards)) != p.shard {
				return true
			}
			keys = append(keys, warmKey{hash: hash, keySize: keySize, valueSize: valueSize})
			return true
		})
		return keys, nil
	}
	src, err := opts.Open()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	const (
		written = 1
		warmed  = 2
	)
	state := map[uint64]uint8{}
	var ev profile.Event
	for n := uint64(0); n < limit && src.Next(&ev); n++ {
		if !ev.Cmd.HasKey() || ev.KeySize == 0 {
			continue
		}
		if p.shards > 1 {
			h := workload.Mix64(ev.KeyHash ^ 0x51ed270b27e3a9f1)
			if p.trace {
				h = workload.Mix64(ev.Conn)
			}
			if int(h%uint64(p.shards)) != p.shard {
				continue
			}
		}
		if state[ev.KeyHash] != 0 {
			continue
		}
		switch {
		case workload.IsWrite(&ev):
			state[ev.KeyHash] = written
		case workload.Existence(&ev):
			state[ev.KeyHash] = warmed
			// A hit tells the value's size (0 included); other events (touch, delete, incr) do not: a
			// one-byte "1" also serves incr and decr.
			vs := ev.ValueSize
			if ev.Status != mcproto.StatusHit {
				vs = max(vs, 1)
			}
			keys = append(keys, warmKey{ns: ev.NSHash, hash: ev.KeyHash, keySize: ev.KeySize, valueSize: vs})
		}
	}
	if err := src.Err(); err != nil {
		return nil, fmt.Errorf("cannot scan the source for warmup: %w", err)
	}
	return keys, nil
}

// warmKeySource turns the keys into set events.
type warmKeySource struct {
	keys []warmKey
	i    int
}

func (s *warmKeySource) Next(ev *profile.Event) bool {
	if s.i >= len(s.keys) {
		return false
	}
	k := s.keys[s.i]
	s.i++
	*ev = profile.Event{Proto: mcproto.ProtoText, Cmd: mcproto.CmdSet, Status: mcproto.StatusStored,
		KeyHash: k.hash, NSHash: k.ns, KeySize: k.keySize, ValueSize: k.valueSize, Upstream: -1}
	return true
}
func (s *warmKeySource) Err() error   { return nil }
func (s *warmKeySource) Close() error { return nil }

// warmup stores the keys the replay will read as existing. Keys are routed over rg, the replay's own ring, and
// sent to addrs (the targets, or warmup_targets in the same order).
func warmup(ctx context.Context, cfg configs.Replay, opts Options, p plan, rg *ring.Ring, addrs []string,
	values *workload.Values, log *slog.Logger) (*WarmupReport, error) {
	start := time.Now()
	limit := opts.WarmScanLimit
	if limit == 0 {
		limit = defaultWarmScan
	}
	if p.ops > 0 {
		limit = min(limit, p.ops)
	}
	keys, err := warmKeys(opts, p, limit)
	if err != nil {
		return nil, err
	}
	wcfg := cfg
	wcfg.Pipeline = 64
	wcfg.Timeout = configs.Duration(max(cfg.Timeout.D(), 5*time.Second))
	e, err := newEngine(ctx, wcfg, mcproto.ProtoText, rg, addrs, values, false, time.Now(), "warmup", log)
	if err != nil {
		return nil, err
	}
	derr := e.dispatch(&warmKeySource{keys: keys}, plan{connections: 4, shards: 1})
	e.wait()
	r := e.report()
	wr := &WarmupReport{Keys: uint64(len(keys)), Errors: r.Errors, Seconds: time.Since(start).Seconds()}
	log.Info("warmup finished", "keys", wr.Keys, "errors", wr.Errors, "kinds", r.ErrorsByKind, "statuses", r.Statuses, "seconds", wr.Seconds)
	return wr, derr
}
