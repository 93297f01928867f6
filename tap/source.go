// Packet sources: live capture through libpcap (whole packets, a BPF filter, optional immediate mode) and
// pcap/pcapng files read in pure Go. They are separate from the Tap so tests can feed packets from anywhere and
// so the privilege error, which every operator meets once, is worded in one place. What needs libpcap (live
// capture, compiling --bpf) lives in live_pcap.go, built with cgo; a static build (CGO_ENABLED=0) gets
// live_nopcap.go instead, which says so, and still reads capture files.
package tap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/membench/membench/configs"
)

// LinkType is a capture's link-layer header type.
type LinkType = layers.LinkType

// Source yields captured packets in capture order.
type Source interface {
	// ReadPacket returns the next packet, its capture timestamp (ns since the epoch) and link type. data is
	// valid until the next call. A live source returns ErrTimeout when nothing arrived for a while, a file io.EOF
	// at its end, and a *DamageError, in place of a packet, for each damaged part it read past (reading goes on).
	ReadPacket() (data []byte, ts int64, lt LinkType, err error)
	// Live reports whether packets come from an interface (timestamps follow the wall clock).
	Live() bool
	// Drops returns the kernel's and the interface's drop counts so far (live sources; zeros otherwise).
	Drops() (kernel, iface uint64)
	Close() error
}

// CaptureFilter returns the BPF expression for cfg: its bpf key, or TCP to or from any of its ports, plus the
// outer packets of the tunnels its encap key opens (UDP port 4789 for VXLAN, IP protocol 47 for GRE and ERSPAN):
// a filter cannot look inside them, so the tap sorts their packets itself.
func CaptureFilter(cfg *configs.Tap) string {
	if cfg.BPF != "" {
		return cfg.BPF
	}
	parts := make([]string, len(cfg.Ports))
	for i, p := range cfg.Ports {
		parts[i] = "port " + strconv.Itoa(p)
	}
	f := "tcp and (" + strings.Join(parts, " or ") + ")"
	tunnels := tunnelsFor(cfg.Encap)
	if tunnels == 0 {
		return f
	}
	f = "(" + f + ")"
	if tunnels&(1<<tunnelVXLAN) != 0 {
		f += " or udp port " + strconv.Itoa(vxlanPort)
	}
	if tunnels&(1<<tunnelGRE|1<<tunnelERSPAN) != 0 {
		f += " or ip proto 47 or ip6 proto 47"
	}
	return f
}

// liveError words a failure to open an interface, naming the fix for the common causes.
func liveError(iface string, err error) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "permission") || strings.Contains(low, "not permitted") ||
		strings.Contains(low, "eperm") || strings.Contains(low, "denied"):
		exe, _ := os.Executable()
		if exe == "" {
			exe = "membench"
		}
		return fmt.Errorf("cannot capture on interface %q: %v: capturing packets needs privileges: run as root, "+
			"or grant them to the binary once with 'sudo setcap cap_net_raw,cap_net_admin+eip %s'", iface, err, exe)
	case strings.Contains(low, "no such device") || strings.Contains(low, "doesn't exist"):
		return fmt.Errorf("cannot capture on interface %q (--interface / interface): %v; list interfaces "+
			"with 'ip link'", iface, err)
	}
	return fmt.Errorf("cannot capture on interface %q (--interface / interface): %w", iface, err)
}

// packetFilter is a compiled capture filter (--bpf) applied to the packets of a file.
type packetFilter interface {
	Matches(ci gopacket.CaptureInfo, data []byte) bool
}

// fileSource reads pcap or pcapng.
type fileSource struct {
	f    *os.File
	name string
	r    captureReader
	expr string
	bpf  map[LinkType]packetFilter // compiled per link type, as pcapng interfaces may differ
	lt   LinkType                  // the last packet's link type, known to be supported
	ltOK bool
	read *atomic.Int64 // bytes read from f, for Progress
	size int64         // f's size when opened; -1: not a regular file
}

// countingFile counts the bytes read from a capture file.
type countingFile struct {
	f *os.File
	n *atomic.Int64
}

func (c countingFile) Read(p []byte) (int, error) {
	k, err := c.f.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// Progress returns how many bytes of the file have been read (buffered ahead of the packets returned, by up
// to 1 MiB) and its size (-1 when unknown). Unlike the rest of a Source it may be called from any goroutine.
func (s *fileSource) Progress() (read, size int64) { return s.read.Load(), s.size }

// OpenFile opens a pcap or pcapng file (told apart by its magic). A non-empty bpf filters its packets like a
// live capture filter would; the tap itself already ignores everything but TCP to and from its ports.
func OpenFile(path, bpf string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open capture file (--pcap): %w", err)
	}
	size := func() int64 {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size()
		}
		return -1
	}
	read := new(atomic.Int64)
	r, err := newCaptureReader(bufio.NewReaderSize(countingFile{f, read}, 1<<20), size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read capture file %s (--pcap): %w", path, err)
	}
	s := &fileSource{f: f, name: path, r: r, expr: bpf, bpf: map[LinkType]packetFilter{}, read: read, size: size()}
	if pr, ok := r.(*pcapReader); ok {
		if !linkSupported(pr.lt) {
			f.Close()
			return nil, fmt.Errorf("cannot read capture file %s (--pcap): %w", path, linkTypeError(pr.lt))
		}
		if bpf != "" {
			if _, err := s.filter(pr.lt); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return s, nil
}

// filter returns the compiled filter for link type lt.
func (s *fileSource) filter(lt LinkType) (packetFilter, error) {
	if b, ok := s.bpf[lt]; ok {
		return b, nil
	}
	b, err := compileFilter(lt, 262144, s.expr)
	if err != nil {
		return nil, fmt.Errorf("cannot compile filter %q (--bpf / bpf) for %s: %w", s.expr, s.name, err)
	}
	s.bpf[lt] = b
	return b, nil
}

func (s *fileSource) ReadPacket() ([]byte, int64, LinkType, error) {
	for {
		data, ts, lt, err := s.r.next()
		if err != nil {
			var d *DamageError
			if errors.As(err, &d) {
				d.File = s.name
				return nil, 0, lt, d
			}
			if err == io.EOF {
				return nil, 0, lt, io.EOF
			}
			return nil, 0, lt, fmt.Errorf("cannot read capture file %s: %w", s.name, err)
		}
		if lt != s.lt || !s.ltOK {
			// pcapng gives each interface its own link type.
			if !linkSupported(lt) {
				return nil, 0, lt, fmt.Errorf("cannot read capture file %s (--pcap): %w", s.name, linkTypeError(lt))
			}
			s.lt, s.ltOK = lt, true
		}
		if s.expr != "" {
			b, err := s.filter(lt)
			if err != nil {
				return nil, 0, lt, err
			}
			if !b.Matches(captureInfo(ts, len(data)), data) {
				continue
			}
		}
		return data, ts, lt, nil
	}
}

func (s *fileSource) Live() bool              { return false }
func (s *fileSource) Drops() (uint64, uint64) { return 0, 0 }
func (s *fileSource) Close() error            { return s.f.Close() }

func captureInfo(ts int64, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: n, Length: n}
}
