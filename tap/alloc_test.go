package tap

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/membench/membench/profile"
)

// synthConn builds Ethernet/IPv4/TCP packets of one connection with correct sequence numbers.
type synthConn struct {
	cport, sport uint16
	cseq, sseq   uint32
	ts           int64
}

func (c *synthConn) packet(fromClient bool, flags uint8, payload []byte) capPacket {
	d := make([]byte, 14+20+20+len(payload))
	binary.BigEndian.PutUint16(d[12:], 0x0800)
	ip := d[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	ip[8], ip[9] = 64, 6
	copy(ip[12:16], []byte{127, 0, 0, 1})
	copy(ip[16:20], []byte{127, 0, 0, 1})
	tcp := ip[20:]
	seq, ack, src, dst := c.cseq, c.sseq, c.cport, c.sport
	if !fromClient {
		seq, ack, src, dst = c.sseq, c.cseq, c.sport, c.cport
	}
	binary.BigEndian.PutUint16(tcp[0:], src)
	binary.BigEndian.PutUint16(tcp[2:], dst)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12], tcp[13] = 5<<4, flags
	copy(tcp[20:], payload)
	n := uint32(len(payload))
	if flags&(tcpSYN|tcpFIN) != 0 {
		n++
	}
	if fromClient {
		c.cseq += n
	} else {
		c.sseq += n
	}
	c.ts += 1000
	return capPacket{data: d, ts: c.ts, lt: layers.LinkTypeEthernet}
}

// handshake returns the SYN, SYN-ACK and ACK.
func (c *synthConn) handshake() []capPacket {
	return []capPacket{c.packet(true, tcpSYN, nil), c.packet(false, tcpSYN|tcpACK, nil), c.packet(true, tcpACK, nil)}
}

// TestNoAllocs: once a connection is open, framing and pairing a request and its response allocates nothing.
func TestNoAllocs(t *testing.T) {
	cfg := testConfig(11211)
	n := 0
	tp, err := New(cfg, Options{
		Anonymizer: profile.NewAnonymizer(testSalt, ':', true),
		Record:     func(*profile.Event) bool { n++; return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &synthConn{cport: 40000, sport: 11211, cseq: 1000, sseq: 5000}
	for _, p := range c.handshake() {
		tp.packet(p.lt, p.data, p.ts)
	}
	req := c.packet(true, tcpACK, []byte("get user:1 user:2\r\n"))
	resp := c.packet(false, tcpACK, []byte("VALUE user:1 0 5\r\nalice\r\nEND\r\n"))
	reqSeq, respSeq := binary.BigEndian.Uint32(req.data[38:]), binary.BigEndian.Uint32(resp.data[38:])
	qn, rn := uint32(len(req.data)-54), uint32(len(resp.data)-54)
	step := func(i int) {
		// The same two packets, moved along the sequence space.
		binary.BigEndian.PutUint32(req.data[38:], reqSeq+uint32(i)*qn)
		binary.BigEndian.PutUint32(req.data[42:], respSeq+uint32(i)*rn)
		binary.BigEndian.PutUint32(resp.data[38:], respSeq+uint32(i)*rn)
		binary.BigEndian.PutUint32(resp.data[42:], reqSeq+uint32(i+1)*qn)
		tp.packet(req.lt, req.data, req.ts+int64(i))
		tp.packet(resp.lt, resp.data, resp.ts+int64(i))
	}
	for i := 0; i < 100; i++ {
		step(i)
	}
	i := 100
	if a := testing.AllocsPerRun(1000, func() { step(i); i++ }); a != 0 {
		t.Fatalf("%v allocations per request/response", a)
	}
	if n != 2*i || tp.st.Queued != 0 {
		t.Fatalf("%d events for %d requests of 2 keys (%s)", n, i, tp.st.String())
	}
}

// benchPackets is one connection of count pipelined-free get/set rounds.
func benchPackets(count int) ([]capPacket, int) {
	c := &synthConn{cport: 40000, sport: 11211, cseq: 1000, sseq: 5000}
	pkts := c.handshake()
	bytes := 0
	for i := 0; i < count; i++ {
		k := fmt.Sprintf("key:%d", i%1000)
		var req, resp string
		if i%4 == 0 {
			req, resp = fmt.Sprintf("set %s 0 0 100\r\n%0100d\r\n", k, i), "STORED\r\n"
		} else {
			req, resp = "get "+k+"\r\n", fmt.Sprintf("VALUE %s 0 100\r\n%0100d\r\nEND\r\n", k, i)
		}
		pkts = append(pkts, c.packet(true, tcpACK, []byte(req)), c.packet(false, tcpACK, []byte(resp)))
		bytes += len(req) + len(resp)
	}
	return pkts, bytes
}

func BenchmarkDecode(b *testing.B) {
	pkts, n := benchPackets(10000)
	cfg := testConfig(11211)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tp, _ := New(cfg, Options{Anonymizer: profile.NewAnonymizer(testSalt, ':', true),
			Record: func(*profile.Event) bool { return true }})
		if err := tp.Run(context.Background(), &sliceSource{pkts: pkts}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "requests/s")
}
