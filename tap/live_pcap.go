//go:build cgo

// Live capture through libpcap, and libpcap's filter compiler for --bpf on capture files. This is the only
// file of the tap that needs cgo: a static build (CGO_ENABLED=0) gets live_nopcap.go instead.
package tap

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/pcap"
	"github.com/membench/membench/configs"
)

// LiveCapture reports whether this build can capture from interfaces (--interface). It is false in a static
// build (CGO_ENABLED=0), which has no libpcap.
const LiveCapture = true

// liveReadTimeout is how long a live read waits before returning ErrTimeout, so the tap notices signals and
// moves its clock while the wire is quiet.
const liveReadTimeout = 100 * time.Millisecond

type liveSource struct {
	h    *pcap.Handle
	lt   LinkType
	name string
}

// OpenLive starts capturing on cfg.Interface with cfg's snap length, buffer size, promiscuous setting, filter
// and immediate mode (see configs.Tap.ImmediateMode).
func OpenLive(cfg *configs.Tap) (Source, error) {
	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, liveError(cfg.Interface, err)
	}
	defer in.CleanUp()
	for _, set := range []func() error{
		func() error { return in.SetSnapLen(cfg.SnapLen) },
		func() error { return in.SetPromisc(cfg.Promiscuous) },
		func() error { return in.SetTimeout(liveReadTimeout) },
		func() error { return in.SetImmediateMode(cfg.ImmediateMode) },
		func() error { return in.SetBufferSize(cfg.BufferSize) },
	} {
		if err := set(); err != nil {
			return nil, liveError(cfg.Interface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, liveError(cfg.Interface, err)
	}
	if lt := h.LinkType(); !linkSupported(lt) {
		h.Close()
		return nil, fmt.Errorf("cannot capture on interface %q (--interface / interface): %w", cfg.Interface,
			linkTypeError(lt))
	}
	filter := CaptureFilter(cfg)
	if err := h.SetBPFFilter(filter); err != nil {
		h.Close()
		return nil, fmt.Errorf("cannot set capture filter %q (--bpf / bpf): %w", filter, err)
	}
	return &liveSource{h: h, lt: h.LinkType(), name: cfg.Interface}, nil
}

func (s *liveSource) ReadPacket() ([]byte, int64, LinkType, error) {
	data, ci, err := s.h.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, pcap.NextErrorTimeoutExpired) {
			return nil, 0, s.lt, ErrTimeout
		}
		if err == io.EOF {
			return nil, 0, s.lt, io.EOF
		}
		return nil, 0, s.lt, fmt.Errorf("cannot read packets from interface %q: %w", s.name, err)
	}
	return data, ci.Timestamp.UnixNano(), s.lt, nil
}

func (s *liveSource) Live() bool { return true }

func (s *liveSource) Drops() (uint64, uint64) {
	st, err := s.h.Stats()
	if err != nil {
		return 0, 0
	}
	return uint64(st.PacketsDropped), uint64(st.PacketsIfDropped)
}

func (s *liveSource) Close() error {
	s.h.Close()
	return nil
}

// compileFilter compiles a BPF expression for packets of link type lt with libpcap.
func compileFilter(lt LinkType, snaplen int, expr string) (packetFilter, error) {
	return pcap.NewBPF(lt, snaplen, expr)
}
