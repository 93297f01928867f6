// Package configs holds membench's configuration: typed config structs with their defaults, and for each a
// Load (from a TOML file) and a Validate whose errors name the key to fix. Example *.toml files live beside the
// structs, and a test loads and validates every one of them, so examples never rot.
//
// Only cmd/membench reads flags; it builds one of these structs from a file plus flags (flags win) and hands it
// to the mode's package.
//
// This file holds what every mode's config shares: the strict loader and the Duration value type.
package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load decodes the TOML file at path into dst, which must be a pointer to a struct. Keys in the file that dst
// has no field for are an error naming the file and the key (`proxy.toml: unknown key "upstrem"`), so a typo
// never silently leaves a default in place. Syntax and type errors name the file, the line and the key.
//
// Load only decodes: fields absent from the file keep the values dst had, so callers fill in defaults first and
// call Validate after.
func Load(path string, dst any) error {
	md, err := toml.DecodeFile(path, dst)
	if err != nil {
		return decodeError(path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return unknownKeys(path, undecoded)
	}
	return nil
}

// loadError is an error with membench's wording that still unwraps to the error toml or os returned.
type loadError struct {
	msg string
	err error
}

func (e *loadError) Error() string { return e.msg }
func (e *loadError) Unwrap() error { return e.err }

func decodeError(path string, err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return fmt.Errorf("cannot read config file: %w", err)
	}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		if pe.LastKey != "" {
			msg += fmt.Sprintf(" (key %q)", pe.LastKey)
		}
		return &loadError{msg: msg, err: err}
	}
	// Type mismatches are plain errors worded `toml: line 2 (last key "metrics.port"): incompatible types: …`;
	// reword them like the rest, or at least name the file if the wording ever changes.
	if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
		return &loadError{msg: fmt.Sprintf("%s:%s: %s (key %s)", path, m[1], m[3], m[2]), err: err}
	}
	return &loadError{msg: path + ": " + strings.TrimPrefix(err.Error(), "toml: "), err: err}
}

var typeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key ("[^"]*")\): (.*)$`)

// unknownKeys reports the undecoded keys, leaving out those inside an unknown table: for a misspelled [metrix]
// table the user needs to hear about "metrix", not about each key in it.
func unknownKeys(path string, keys []toml.Key) error {
	unknown := map[string]bool{}
	var names []string
	for _, k := range keys {
		inUnknown := false
		for i := 1; i < len(k); i++ {
			if unknown[k[:i].String()] {
				inUnknown = true
				break
			}
		}
		unknown[k.String()] = true
		if !inUnknown {
			names = append(names, fmt.Sprintf("%q", k.String()))
		}
	}
	if len(names) == 1 {
		return fmt.Errorf("%s: unknown key %s", path, names[0])
	}
	return fmt.Errorf("%s: unknown keys %s", path, strings.Join(names, ", "))
}

// Duration is a time.Duration written in config files as a Go duration string: "1s", "250ms", "1m30s".
// A bare number is rejected rather than guessed to be nanoseconds or seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in time.Duration's notation, which UnmarshalText accepts back.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("cannot parse duration %q: want a number with a unit, such as \"1s\" or \"250ms\"", text)
	}
	*d = Duration(v)
	return nil
}
