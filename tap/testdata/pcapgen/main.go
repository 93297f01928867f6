// Command pcapgen writes a large synthetic pcap of memcached text traffic for bench/tap.sh: C connections
// (handshake, then request/response rounds, then FIN), round-robin, with correct TCP sequence and ACK numbers
// and microsecond timestamps. Gets (a quarter of them 3-key multi-gets) hit or miss, sets carry 100-byte
// values, deletes hit or miss. It lives under testdata so `go build ./...` and the deps test skip it:
//
//	go run ./tap/testdata/pcapgen -o big.pcap -requests 1000000 -conns 64 -port 11211
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strconv"
)

type conn struct {
	cport      uint16
	cseq, sseq uint32
}

type gen struct {
	w    *bufio.Writer
	ts   int64 // µs
	port uint16
	buf  []byte
}

func (g *gen) packet(c *conn, fromClient bool, flags byte, payload []byte) {
	n := 54 + len(payload)
	d := g.buf[:0]
	d = append(d, make([]byte, n)...)
	binary.BigEndian.PutUint16(d[12:], 0x0800)
	ip := d[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	ip[8], ip[9] = 64, 6
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	tcp := ip[20:]
	seq, ack, src, dst := c.cseq, c.sseq, c.cport, g.port
	if !fromClient {
		seq, ack, src, dst = c.sseq, c.cseq, g.port, c.cport
	}
	binary.BigEndian.PutUint16(tcp[0:], src)
	binary.BigEndian.PutUint16(tcp[2:], dst)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], payload)
	adv := uint32(len(payload))
	if flags&0x03 != 0 { // SYN or FIN
		adv++
	}
	if fromClient {
		c.cseq += adv
	} else {
		c.sseq += adv
	}
	g.ts += 3
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(1700000000+g.ts/1e6))
	binary.LittleEndian.PutUint32(h[4:], uint32(g.ts%1e6))
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	binary.LittleEndian.PutUint32(h[12:], uint32(n))
	g.w.Write(h[:])
	g.w.Write(d)
	g.buf = d
}

func main() {
	out := flag.String("o", "big.pcap", "output pcap")
	requests := flag.Int("requests", 1000000, "requests to generate")
	conns := flag.Int("conns", 64, "connections")
	port := flag.Int("port", 11211, "memcached port")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapgen:", err)
		os.Exit(1)
	}
	g := &gen{w: bufio.NewWriterSize(f, 1<<20), port: uint16(*port)}
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], 1)
	g.w.Write(h)
	cs := make([]*conn, *conns)
	for i := range cs {
		c := &conn{cport: uint16(20000 + i), cseq: uint32(i) * 7919, sseq: uint32(i) * 104729}
		cs[i] = c
		g.packet(c, true, 0x02, nil)
		g.packet(c, false, 0x12, nil)
		g.packet(c, true, 0x10, nil)
	}
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	x := uint64(88172645463325252)
	var req, resp []byte
	for i := 0; i < *requests; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		c := cs[i%len(cs)]
		key := "key:" + strconv.Itoa(int(x>>20)%100000)
		hit := x%3 != 0
		req, resp = req[:0], resp[:0]
		switch r := x % 20; {
		case r < 12: // get
			req = append(append(append(req, "get "...), key...), "\r\n"...)
			if hit {
				resp = append(append(append(resp, "VALUE "...), key...), " 0 100\r\n"...)
				resp = append(append(resp, value...), "\r\n"...)
			}
			resp = append(resp, "END\r\n"...)
		case r < 16: // multi-get of 3 keys; the first two hit
			req = append(append(append(append(append(req, "get "...), key...), " "...), key...), ":b "...)
			req = append(append(req, key...), ":c\r\n"...)
			for _, k := range []string{key, key + ":b"} {
				resp = append(append(append(resp, "VALUE "...), k...), " 0 100\r\n"...)
				resp = append(append(resp, value...), "\r\n"...)
			}
			resp = append(resp, "END\r\n"...)
		case r < 19: // set
			req = append(append(append(req, "set "...), key...), " 0 0 100\r\n"...)
			req = append(append(req, value...), "\r\n"...)
			resp = append(resp, "STORED\r\n"...)
		default: // delete
			req = append(append(append(req, "delete "...), key...), "\r\n"...)
			if hit {
				resp = append(resp, "DELETED\r\n"...)
			} else {
				resp = append(resp, "NOT_FOUND\r\n"...)
			}
		}
		g.packet(c, true, 0x18, req)
		g.packet(c, false, 0x18, resp)
	}
	for _, c := range cs {
		g.packet(c, true, 0x11, nil)
		g.packet(c, false, 0x11, nil)
		g.packet(c, true, 0x10, nil)
	}
	if err := g.w.Flush(); err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapgen:", err)
		os.Exit(1)
	}
}
