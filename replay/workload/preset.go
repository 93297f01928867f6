// This file holds the built-in presets: workloads defined by published parameters rather than by a profile.
// docs/WORKLOADS.md cites their sources.

package workload

import (
	"fmt"
	"math"
	"strings"

	"github.com/membench/membench/mcproto"
	"github.com/membench/membench/profile"
)

// PresetNames lists the presets NewPreset knows.
var PresetNames = []string{"etc", "uniform"}

// presetStart is the time of a preset's first event: fixed, so that a synthesized profile is the same file for
// the same seed.
const presetStart = int64(1_700_000_000) * 1e9

// etcValueTable is the published probability of each value size from 0 to 14 bytes in Facebook's ETC pool
// (Atikoglu et al., SIGMETRICS 2012), as mutilate's createFacebookValue lists it; larger values follow
// GPareto(θ=15, σ=214.476, k=0.348238).
var etcValueTable = [15]float64{0.00536, 0.00047, 0.17820, 0.09239, 0.00018, 0.02740, 0.00065, 0.00606,
	0.00023, 0.00837, 0.00837, 0.08989, 0.00092, 0.00326, 0.01980}

var (
	etcKeySize   = GEV{Mu: 30.7984, Sigma: 8.20449, K: 0.078688}
	etcValueTail = GPareto{Theta: 15, Sigma: 214.476, K: 0.348238}
)

// Preset parameters.
const (
	etcKeys     = 100_000
	etcZipf     = 0.99 // YCSB's and MICA's skew for "Zipf-like" key popularity
	etcGetRatio = 30.0 / 31
	uniformKeys = 100_000
	uniformGets = 0.9
	// maxPresetValue keeps preset values under memcached's default 1 MiB item size.
	maxPresetValue = 512 << 10
)

// PresetOptions tune a preset generator.
type PresetOptions struct {
	Seed      uint64
	KeysScale float64 // multiplies the preset's number of keys; 0 means 1
	Events    uint64  // 0: endless
	// Connections spreads events over this many connection ids (default 16).
	Connections uint64
	// RatePerSec sets event times (default 100000 events per second).
	RatePerSec float64
}

// Preset is an independent-reference generator with a fixed key population: each key has one key size and
// one value size for its whole life (drawn from the key's identity, not from the seed), and every event picks
// its key from the popularity distribution.
type Preset struct {
	name    string
	keys    uint64
	zipf    *Zipf // nil: uniform
	gets    float64
	opts    PresetOptions
	r       *Rand
	emitted uint64
	gap     float64
}

// NewPreset returns the generator of the named preset.
func NewPreset(name string, opts PresetOptions) (*Preset, error) {
	if opts.KeysScale <= 0 {
		opts.KeysScale = 1
	}
	if opts.Connections == 0 {
		opts.Connections = 16
	}
	if opts.RatePerSec <= 0 {
		opts.RatePerSec = 100_000
	}
	p := &Preset{name: name, opts: opts, r: NewRand(Mix64(opts.Seed ^ 0xbb67ae8584caa73b)), gap: 1e9 / opts.RatePerSec}
	switch name {
	case "etc":
		p.keys = uint64(max(1, math.Round(etcKeys*opts.KeysScale)))
		p.zipf = NewZipf(p.keys, etcZipf)
		p.gets = etcGetRatio
	case "uniform":
		p.keys = uint64(max(1, math.Round(uniformKeys*opts.KeysScale)))
		p.gets = uniformGets
	default:
		return nil, fmt.Errorf("unknown workload %q: choose one of %s (--workload)", name,
			strings.Join(PresetNames, ", "))
	}
	return p, nil
}

// Keys returns the number of keys of the preset.
func (p *Preset) Keys() uint64 { return p.keys }

// Key returns the identity, key size and value size of key i (0 ≤ i < Keys).
func (p *Preset) Key(i uint64) (hash uint64, keySize uint16, valueSize uint32) {
	hash = Mix64(i ^ Mix64(uint64(len(p.name))<<56|0x5eed))
	if hash == 0 {
		hash = 1
	}
	u1 := (float64(Mix64(hash^1)>>11) + 0.5) / (1 << 53)
	u2 := (float64(Mix64(hash^2)>>11) + 0.5) / (1 << 53)
	u3 := (float64(Mix64(hash^3)>>11) + 0.5) / (1 << 53)
	switch p.name {
	case "etc":
		keySize = uint16(min(max(math.Round(etcKeySize.Quantile(u1)), 1), MaxKeyLen))
		valueSize = etcValue(u2, u3)
	default:
		keySize = uint16(16 + uint64(u1*49))    // 16..64
		valueSize = uint32(64 + uint64(u2*961)) // 64..1024
	}
	return hash, keySize, valueSize
}

func etcValue(u, tail float64) uint32 {
	var cum float64
	for size, p := range etcValueTable {
		cum += p
		if u < cum {
			return uint32(size)
		}
	}
	return uint32(min(etcValueTail.Quantile(tail), maxPresetValue))
}

// Next implements Source.
func (p *Preset) Next(ev *profile.Event) bool {
	if p.opts.Events > 0 && p.emitted >= p.opts.Events {
		return false
	}
	var i uint64
	if p.zipf != nil {
		i = p.zipf.Next(p.r)
	} else {
		i = p.r.Uint64n(p.keys)
	}
	hash, ks, vs := p.Key(i)
	*ev = profile.Event{Time: presetStart + int64(float64(p.emitted)*p.gap), Proto: mcproto.ProtoText,
		KeyHash: hash, KeySize: ks, Upstream: -1, ValueSize: vs}
	ev.Conn = p.r.Uint64n(p.opts.Connections)
	if p.r.Float64() < p.gets {
		ev.Cmd, ev.Status = mcproto.CmdGet, mcproto.StatusHit // the preset's cache holds every key (warm)
	} else {
		ev.Cmd, ev.Status = mcproto.CmdSet, mcproto.StatusStored
	}
	p.emitted++
	return true
}

// Err implements Source.
func (p *Preset) Err() error { return nil }

// Close implements Source.
func (p *Preset) Close() error { return nil }
