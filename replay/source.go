// This file builds a replay's source from its config: a trace of a profile, a model fitted to a profile, or a
// preset, so that `membench replay` and `membench synth` read sources the same way.

package replay

import (
	"crypto/sha256"
	"fmt"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/replay/workload"
)

// Source is where a replay's events come from, ready for Options.
type Source struct {
	// Name names the source in reports: the profile path, or "workload:NAME".
	Name string
	// Open returns the events from the first one; it may be called several times.
	Open func() (workload.Source, error)
	// WarmKeys lists a preset's keys for warmup; nil for profiles.
	WarmKeys func(yield func(hash uint64, keySize uint16, valueSize uint32) bool)
	// Model is the fitted model in synthetic mode with a profile.
	Model *workload.Model
	// Header is the source profile's header (zero for presets).
	Header profile.Header
	// Fingerprint is the salt fingerprint events' key hashes are comparable under: the source profile's, or
	// PresetFingerprint for presets.
	Fingerprint uint64
}

// PresetFingerprint is the salt fingerprint written into profiles synthesized from presets: that of a fixed,
// public salt, so that every synthesized preset profile is comparable with every other.
func PresetFingerprint() uint64 {
	secret := sha256.Sum256([]byte("membench/v1/preset-salt"))
	return profile.NewAnonymizer([profile.SaltSize]byte(secret[:profile.SaltSize]), profile.DefaultNSDelim, false).
		Fingerprint()
}

// NewSource builds the source cfg describes. events bounds a synthetic source (0: endless).
func NewSource(cfg configs.Replay, events uint64) (*Source, error) {
	if cfg.Workload != "" {
		if cfg.Mode != configs.ModeSynthetic {
			return nil, fmt.Errorf("workload %q is a preset: use --mode synthetic", cfg.Workload)
		}
		opts := workload.PresetOptions{Seed: cfg.Seed, KeysScale: cfg.KeysScale, Events: events}
		p, err := workload.NewPreset(cfg.Workload, opts)
		if err != nil {
			return nil, err
		}
		return &Source{
			Name:        "workload:" + cfg.Workload,
			Open:        func() (workload.Source, error) { return workload.NewPreset(cfg.Workload, opts) },
			Fingerprint: PresetFingerprint(),
			WarmKeys: func(yield func(uint64, uint16, uint32) bool) {
				for i := range p.Keys() {
					if !yield(p.Key(i)) {
						return
					}
				}
			},
		}, nil
	}
	if cfg.Profile == "" {
		return nil, fmt.Errorf("no source: give --profile FILE or --workload NAME")
	}
	r, err := profile.Open(cfg.Profile, profile.ReaderOptions{})
	if err != nil {
		return nil, err
	}
	hdr := r.Header()
	r.Close()
	src := &Source{Name: cfg.Profile, Header: hdr, Fingerprint: hdr.SaltFingerprint}
	if cfg.Mode == configs.ModeTrace {
		loops, err := cfg.Loops()
		if err != nil {
			return nil, err
		}
		src.Open = func() (workload.Source, error) { return workload.OpenTrace(cfg.Profile, loops) }
		return src, nil
	}
	m, err := workload.Fit(func() (workload.Source, error) { return workload.OpenTrace(cfg.Profile, 1) },
		workload.FitOptions{})
	if err != nil {
		return nil, fmt.Errorf("cannot fit a model to %s: %w", cfg.Profile, err)
	}
	src.Model = m
	gopts := workload.GenOptions{Seed: cfg.Seed, KeysScale: cfg.KeysScale, Events: events}
	src.Open = func() (workload.Source, error) { return m.Generator(gopts), nil }
	return src, nil
}
