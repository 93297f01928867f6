//go:build !cgo

// A static build (CGO_ENABLED=0) has no libpcap: no live capture and no --bpf compiler. Capture files are still
// read, by the tap's own pure-Go reader; only filtering them with --bpf needs libpcap.
package tap

import (
	"errors"
	"fmt"

	"github.com/membench/membench/configs"
)

// LiveCapture reports whether this build can capture from interfaces (--interface). It is false in a static
// build (CGO_ENABLED=0), which has no libpcap.
const LiveCapture = false

// errNoLibpcap is wrapped by what needs libpcap in a build without it (CGO_ENABLED=0): live capture
// (--interface) and compiling --bpf.
var errNoLibpcap = errors.New("this membench is a static build (CGO_ENABLED=0) without libpcap")

// OpenLive fails in a static build: live capture needs libpcap. The error names --interface and what works
// instead.
func OpenLive(cfg *configs.Tap) (Source, error) {
	return nil, fmt.Errorf("cannot capture on interface %q (--interface / interface): %w, so it has no live "+
		"capture support; read a capture file with --pcap FILE (e.g. from 'tcpdump -w'), or run a build with "+
		"libpcap (make build, or the Debian package from make deb)", cfg.Interface, errNoLibpcap)
}

// compileFilter fails in a static build: compiling a BPF expression needs libpcap.
func compileFilter(lt LinkType, snaplen int, expr string) (packetFilter, error) {
	return nil, fmt.Errorf("%w, which compiles filters: leave --bpf / bpf unset (the tap keeps only TCP on "+
		"--port) or use a build with libpcap", errNoLibpcap)
}
