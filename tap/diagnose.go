// End-of-run diagnosis: when a capture held traffic but the tap recorded nothing, say why in terms the user can
// act on (the TCP ports the traffic was on, tunnels left closed), instead of a bare "0 flows".
package tap

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// serverPortGuess returns the port of s most likely to be the server's: a SYN's destination, a SYN-ACK's source,
// otherwise the lower port (servers listen on low or registered ports, clients use ephemeral ones).
func serverPortGuess(s *tcpSegment) uint16 {
	switch {
	case s.flags&(tcpSYN|tcpACK) == tcpSYN:
		return s.dport
	case s.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		return s.sport
	}
	return min(s.sport, s.dport)
}

// PortCount is a TCP port and the packets seen on it.
type PortCount struct {
	Port    uint16
	Packets uint64
}

// BusiestPorts returns up to n TCP ports, not among Ports, that carried the most packets (by each packet's
// likely server port), busiest first. Call it after Run.
func (t *Tap) BusiestPorts(n int) []PortCount {
	if t.otherPorts == nil {
		return nil
	}
	var all []PortCount
	for p, c := range t.otherPorts {
		if c > 0 {
			all = append(all, PortCount{Port: uint16(p), Packets: c})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Packets != all[j].Packets {
			return all[i].Packets > all[j].Packets
		}
		return all[i].Port < all[j].Port
	})
	return all[:min(n, len(all))]
}

// Warnings returns what a finished run should tell its user: traffic but no connection on the memcached ports
// (with the busiest TCP ports seen), and tunnelled packets the encap setting left closed. Call it after Run.
func (t *Tap) Warnings() []string {
	var w []string
	st := &t.st
	if st.EncapIgnored > 0 {
		w = append(w, fmt.Sprintf("%d of %d packets are in VXLAN, GRE or ERSPAN tunnels, which encap = %q leaves "+
			"closed: set --encap auto (or encap in the config) to record the traffic inside them", st.EncapIgnored,
			st.Packets, t.cfg.Encap))
	}
	if st.Flows > 0 || st.Packets == 0 {
		return w
	}
	ports := make([]string, len(t.cfg.Ports))
	for i, p := range t.cfg.Ports {
		ports[i] = strconv.Itoa(p)
	}
	msg := fmt.Sprintf("no TCP connection to port %s among %d packets (--port / ports)", strings.Join(ports, ","),
		st.Packets)
	if busy := t.BusiestPorts(5); len(busy) > 0 {
		list := make([]string, len(busy))
		for i, b := range busy {
			list[i] = fmt.Sprintf("%d (%d packets)", b.Port, b.Packets)
		}
		msg += "; the busiest TCP ports in the capture: " + strings.Join(list, ", ")
	} else {
		msg += "; the capture holds no TCP packets the tap could decode (check --bpf and --encap)"
	}
	return append(w, msg)
}
