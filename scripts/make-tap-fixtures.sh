#!/usr/bin/env bash
# Records the pcap fixtures in tap/testdata/ that the tap's tests decode: real memcached on loopback (or in two
# network namespaces joined by a VXLAN tunnel), real clients (pymemcache for the text protocol, raw sockets for
# split segments, meta and binary), captured with tcpdump. Run it as root from the repository root when a
# fixture must change:
#
#   sudo scripts/make-tap-fixtures.sh                          # every fixture
#   sudo scripts/make-tap-fixtures.sh tap/testdata vxlan encap # only these (they keep fixtures.port's port)
#
# Fixtures (each well under 200 KB):
#   text.pcap       pymemcache session (set/get/gets/multi-get/delete/incr/decr/add/replace/touch/noreply,
#                   a 100 KB value that spans segments) + a raw socket that splits a command line and a value
#                   across segments on purpose
#   meta.pcap       meta commands: ms/mg/md/ma/mn, pipelined, quiet batches ended by mn, opaque and k flags
#   binary.pcap     binary protocol: set, get hit/miss, getk, a quiet getq/getkq batch ended by noop, delete,
#                   incr, version, quit
#   midstream.pcap  tcpdump started while a client was already busy on an open connection, stopped before it
#                   finished: no SYN, no FIN, requests cut at the start and the end
#   lostresponse.pcap  100 sets of lr:0..lr:99, one at a time 0.5 ms apart; tap/testdata/fixturegen then removes
#                   the segment carrying the 10th STORED (lr:9's), as a capture that lost one packet
#   vxlan.pcap, vxlan-inner.pcap  one pymemcache session between two network namespaces over a kernel VXLAN
#                   tunnel (VNI 42, UDP 4789, 192.0.2.1 <-> 192.0.2.2 outside, 198.51.100.1 -> .2 inside):
#                   tcpdump on the outer veth (what a VXLAN mirror target such as AWS VPC Traffic Mirroring
#                   receives) and, at the same time, on the tunnel device (the same packets unencapsulated)
#   gre.pcap, erspan2.pcap, erspan3.pcap  meta.pcap's packets wrapped by tap/testdata/fixturegen (this kernel
#                   may lack GRE; the headers follow RFC 2784/2890 and the ERSPAN draft): GRE over IPv4 with
#                   checksum and key carrying IPv4; ERSPAN type II over IPv4; ERSPAN type III over IPv6 with
#                   the platform-specific subheader
#
# The tests know what each client did (tap/fixtures_test.go, tap/encap_test.go); change both together. Gaps,
# reordering, duplicates, damaged files and foreign link types are derived from these files inside the tests.
set -euo pipefail

PORT=${TAP_FIXTURE_PORT:-18211}
OUT=${1:-tap/testdata}
shift || true
ALL="text meta binary midstream lostresponse vxlan encap"
WANT=" ${*:-$ALL} "
want() { [[ $WANT == *" $1 "* ]]; }
for w in $WANT; do
	[[ " $ALL " == *" $w "* ]] || { echo "make-tap-fixtures.sh: unknown fixture $w (want some of: $ALL)" >&2; exit 1; }
done
PY=/usr/bin/python3 # Debian's python3 has python3-pymemcache; a pyenv shim in PATH may not

[[ $(id -u) == 0 ]] || { echo "make-tap-fixtures.sh: tcpdump needs root; run with sudo" >&2; exit 1; }
for p in memcached tcpdump ip go "$PY"; do
	command -v "$p" >/dev/null || { echo "make-tap-fixtures.sh: $p not found (scripts/install-deps.sh; go: keep PATH with sudo env PATH=\"\$PATH\")" >&2; exit 1; }
done
"$PY" -c 'import pymemcache' 2>/dev/null || { echo "make-tap-fixtures.sh: apt-get install python3-pymemcache" >&2; exit 1; }
mkdir -p "$OUT"
if [[ $# -gt 0 && -f $OUT/fixtures.port ]]; then
	# A partial run keeps the port the other fixtures were recorded with: the tests read one port.
	PORT=$(cat "$OUT/fixtures.port")
	if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
		echo "make-tap-fixtures.sh: port $PORT ($OUT/fixtures.port) is busy; free it or regenerate every fixture" >&2
		exit 1
	fi
else
	# The port only has to be free; the tests read it from $OUT/fixtures.port.
	while (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
	echo "$PORT" >"$OUT/fixtures.port"
fi

memcached -l 127.0.0.1 -p "$PORT" -U 0 -t 1 -u root &
MC=$!
TDS=()
NSC=mbtap-c$$
NSS=mbtap-s$$
NSMC=
cleanup() {
	for p in "${TDS[@]}"; do kill "$p" 2>/dev/null || true; done
	kill "$MC" 2>/dev/null || true
	[[ -n $NSMC ]] && kill "$NSMC" 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del "$NSC" 2>/dev/null || true
	ip netns del "$NSS" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

# capture NAME [IFACE FILTER NETNS]: start tcpdump (default: on lo, the memcached port) into $OUT/NAME.pcap and
# wait until it listens. Several may run at once; stop ends them all.
capture() {
	local log iface=${2:-lo} filter=${3:-tcp port $PORT} ns=${4:-}
	local -a pre=()
	[[ -n $ns ]] && pre=(ip netns exec "$ns")
	log=$(mktemp)
	"${pre[@]}" tcpdump -i "$iface" -s 0 -U --immediate-mode -n -w "$OUT/$1.pcap" "$filter" 2>"$log" &
	TDS+=($!)
	for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.05; done
	sleep 0.2
	rm -f "$log"
}
# stop: let the last packets reach tcpdump, then stop it. (--immediate-mode above matters: without it packets
# wait in the kernel for up to a second and a short capture is stopped before it sees any.)
stop() {
	sleep 0.3
	for p in "${TDS[@]}"; do kill -INT "$p"; done
	for p in "${TDS[@]}"; do wait "$p" 2>/dev/null || true; done
	TDS=()
}
flush() { "$PY" -c "import socket; s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(b'flush_all\r\n'); s.recv(100)"; }

if want text; then
flush
capture text
PORT=$PORT "$PY" - <<'EOF'
import os, socket, time
from pymemcache.client.base import Client
port = int(os.environ["PORT"])
c = Client(("127.0.0.1", port), no_delay=True, default_noreply=False)
c.set("user:1", b"alice", expire=0)
c.set("user:2", b"bob", expire=300)
c.set("user:3", b"carol", flags=3)
print(c.get("user:1"), c.get("missing:1"))
c.get_many(["user:1", "missing:2", "user:2", "user:3", "missing:3"])
c.gets("user:2")
c.add("user:1", b"again")            # NOT_STORED
c.add("user:4", b"dave")             # STORED
c.replace("missing:4", b"x")         # NOT_STORED
c.replace("user:4", b"david")        # STORED
c.set("counter", b"10")
c.incr("counter", 5)
c.decr("counter", 3)
c.incr("missing:5", 1)               # NOT_FOUND
c.touch("user:2", 600)
c.delete("user:3")                   # DELETED
c.delete("missing:6")                # NOT_FOUND
c.set("quiet:1", b"q", noreply=True)
c.set("big", b"v" * 70000)           # spans segments (loopback MTU 64 KiB)
c.get("big")
c.get("user:3")                      # deleted: miss
c.close()

# A raw client that splits a command line and a value across segments.
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def send(b):
    s.sendall(b); time.sleep(0.05)
def recv_until(tail):
    buf = b""
    while not buf.endswith(tail):
        buf += s.recv(65536)
    return buf
send(b"se"); send(b"t split:1 0 0 12\r\nhello"); send(b" world!\r\n"); recv_until(b"STORED\r\n")
send(b"get split:1 us"); send(b"er:4\r\n"); recv_until(b"END\r\n")
send(b"set split:2 0 0 3000\r\n" + b"a" * 1000); send(b"b" * 1000); send(b"c" * 1000 + b"\r\n"); recv_until(b"STORED\r\n")
send(b"get split:2\r\n"); recv_until(b"END\r\n")
send(b"quit\r\n")
s.close()
EOF
stop
fi

if want meta; then
flush
capture meta
PORT=$PORT "$PY" - <<'EOF'
import os, socket, time
port = int(os.environ["PORT"])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def xfer(req, tail):
    s.sendall(req)
    buf = b""
    while not buf.endswith(tail):
        buf += s.recv(65536)
    return buf
xfer(b"ms m:a 3 T0 F5\r\nabc\r\n", b"HD\r\n")
xfer(b"ms m:b 2\r\nxy\r\nms m:c 1 MA\r\nz\r\n", b"NS\r\n")    # pipelined; append to a missing key: NS
xfer(b"mg m:a v f t\r\nmg m:nope v\r\nmg m:b s v k O123\r\n", b"xy\r\n")
# quiet get batch: hits answered, misses suppressed, mn ends it. Every request carries k (or O below), as
# real clients' quiet batches do: without it an answer cannot be told from a suppressed one.
xfer(b"mg m:a v q k\r\nmg m:nope1 v q k\r\nmg m:b v q k\r\nmg m:nope2 v q k\r\nmn\r\n", b"MN\r\n")
# quiet set batch: successes suppressed
xfer(b"ms m:q1 1 q\r\n1\r\nms m:q2 1 q\r\n2\r\nms m:q3 1 q\r\n3\r\nmn\r\n", b"MN\r\n")
xfer(b"md m:q1 q O1\r\nmd m:nope3 q O2\r\nmn\r\n", b"MN\r\n")           # delete hit suppressed, miss answered NF
xfer(b"ms m:n 2\r\n10\r\nma m:n\r\nma m:n MD D3 v\r\nma m:nope4\r\n", b"NF\r\n")
xfer(b"mn\r\n", b"MN\r\n")
s.close()
EOF
stop
fi

if want binary; then
flush
capture binary
PORT=$PORT "$PY" - <<'EOF'
import os, socket, struct
port = int(os.environ["PORT"])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def req(op, key=b"", extras=b"", value=b"", opaque=0, cas=0):
    body = len(extras) + len(key) + len(value)
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, body, opaque, cas) + extras + key + value
def read_resp(n):
    out = []
    buf = b""
    while len(out) < n:
        while len(buf) < 24:
            buf += s.recv(65536)
        body = struct.unpack(">I", buf[8:12])[0]
        while len(buf) < 24 + body:
            buf += s.recv(65536)
        out.append(buf[:24 + body]); buf = buf[24 + body:]
    return out
SET, GET, GETQ, GETK, GETKQ, DELETE, INCR, NOOP, VERSION, QUIT = 0x01, 0x00, 0x09, 0x0c, 0x0d, 0x04, 0x05, 0x0a, 0x0b, 0x07
s.sendall(req(SET, b"b:1", struct.pack(">II", 7, 0), b"one", opaque=1)); read_resp(1)
s.sendall(req(SET, b"b:2", struct.pack(">II", 0, 60), b"two!", opaque=2)); read_resp(1)
s.sendall(req(GET, b"b:1", opaque=3)); read_resp(1)
s.sendall(req(GET, b"b:nope", opaque=4)); read_resp(1)
s.sendall(req(GETK, b"b:2", opaque=5)); read_resp(1)
# quiet batch: hits answered, misses suppressed, noop ends it
s.sendall(req(GETQ, b"b:1", opaque=6) + req(GETKQ, b"b:nope", opaque=7) + req(GETKQ, b"b:2", opaque=8) + req(NOOP, opaque=9)); read_resp(3)
s.sendall(req(DELETE, b"b:1", opaque=10)); read_resp(1)
s.sendall(req(DELETE, b"b:1", opaque=11)); read_resp(1)
s.sendall(req(INCR, b"b:n", struct.pack(">QQI", 1, 5, 0), opaque=12)); read_resp(1)
s.sendall(req(INCR, b"b:n", struct.pack(">QQI", 2, 0, 0), opaque=13)); read_resp(1)
s.sendall(req(VERSION, opaque=14)); read_resp(1)
s.sendall(req(QUIT, opaque=15)); read_resp(1)
s.close()
EOF
stop
fi

if want midstream; then
flush
# midstream: the client is already busy when tcpdump starts, and still busy when it stops.
PORT=$PORT "$PY" - <<'EOF' &
import os, socket, time
port = int(os.environ["PORT"])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
end = time.time() + 2.0
i = 0
while time.time() < end:
    k = b"mid:%d" % (i % 50)
    v = b"x" * (100 + i % 300)
    # a pipelined pair: a set split in two segments, then a get
    s.sendall(b"set " + k + b" 0 0 %d\r\n" % len(v) + v[:50])
    time.sleep(0.002)
    s.sendall(v[50:] + b"\r\nget " + k + b"\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(65536)
    i += 1
    time.sleep(0.004)
s.close()
EOF
CLIENT=$!
sleep 0.6
capture midstream
sleep 0.5
stop
wait "$CLIENT"
fi

if want lostresponse; then
flush
capture lostresponse-full
PORT=$PORT "$PY" - <<'EOF'
import os, socket, time
port = int(os.environ["PORT"])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(100):
    s.sendall(b"set lr:%d 0 0 4\r\nvvvv\r\n" % i)
    buf = b""
    while not buf.endswith(b"STORED\r\n"):
        buf += s.recv(100)
    time.sleep(0.0005)
s.close()
EOF
stop
# The capture lost lr:9's answer; the client got it, so its later requests acknowledge it.
go run ./tap/testdata/fixturegen drop -in "$OUT/lostresponse-full.pcap" -out "$OUT/lostresponse.pcap" \
	-port "$PORT" -payload 'STORED\r\n' -nth 10
rm -f "$OUT/lostresponse-full.pcap"
fi

if want vxlan; then
# Two namespaces joined by a veth pair (the underlay) and a VXLAN tunnel over it; memcached listens on the
# server's tunnel address only.
ip netns add "$NSC"
ip netns add "$NSS"
ip link add mbtap0 netns "$NSC" type veth peer name mbtap1 netns "$NSS"
for side in "$NSC mbtap0 192.0.2.1 192.0.2.2 198.51.100.1" "$NSS mbtap1 192.0.2.2 192.0.2.1 198.51.100.2"; do
	read -r ns dev local remote inner <<<"$side"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$local/24" dev "$dev"
	ip -n "$ns" link set "$dev" up
	ip -n "$ns" link add vx0 type vxlan id 42 dstport 4789 local "$local" remote "$remote" dev "$dev"
	ip -n "$ns" addr add "$inner/24" dev vx0
	ip -n "$ns" link set vx0 up
done
ip netns exec "$NSS" memcached -l 198.51.100.2 -p "$PORT" -U 0 -t 1 -u root &
NSMC=$!
for _ in $(seq 50); do
	ip netns exec "$NSC" bash -c "(exec 3<>/dev/tcp/198.51.100.2/$PORT)" 2>/dev/null && break
	sleep 0.1
done
capture vxlan mbtap0 "udp port 4789" "$NSC"
capture vxlan-inner vx0 "tcp port $PORT" "$NSC"
PORT=$PORT ip netns exec "$NSC" "$PY" - <<'EOF'
import os
from pymemcache.client.base import Client
c = Client(("198.51.100.2", int(os.environ["PORT"])), no_delay=True, default_noreply=False)
c.set("vx:1", b"one")
c.set("vx:2", b"x" * 3000, expire=60)  # spans segments: the tunnel's MTU is 1450
c.get("vx:1")
c.get("vx:nope")
c.get_many(["vx:1", "vx:2", "vx:nope"])
c.delete("vx:1")
c.close()
EOF
stop
kill "$NSMC"
wait "$NSMC" 2>/dev/null || true
NSMC=
fi

if want encap; then
for mode in gre erspan2 erspan3; do
	go run ./tap/testdata/fixturegen wrap -mode "$mode" -in "$OUT/meta.pcap" -out "$OUT/$mode.pcap"
done
fi

ls -l "$OUT"/*.pcap
