#!/usr/bin/env bash
# Records the pcap fixtures in tap/testdata/ that the tap's tests decode: real memcached on loopback, real
# clients (pymemcache for the text protocol, raw sockets for split segments, meta and binary), captured with
# tcpdump. Run it as root from the repository root when a fixture must change:
#
#   sudo scripts/make-tap-fixtures.sh
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
#
# The tests know what each client did (tap/fixtures_test.go); change both together. Gaps, reordering and
# duplicates are derived from these files inside the tests.
set -euo pipefail

PORT=${TAP_FIXTURE_PORT:-18211}
OUT=${1:-tap/testdata}
PY=/usr/bin/python3 # Debian's python3 has python3-pymemcache; a pyenv shim in PATH may not

[[ $(id -u) == 0 ]] || { echo "make-tap-fixtures.sh: tcpdump needs root; run with sudo" >&2; exit 1; }
for p in memcached tcpdump "$PY"; do
	command -v "$p" >/dev/null || { echo "make-tap-fixtures.sh: $p not found (scripts/install-deps.sh)" >&2; exit 1; }
done
"$PY" -c 'import pymemcache' 2>/dev/null || { echo "make-tap-fixtures.sh: apt-get install python3-pymemcache" >&2; exit 1; }
# The port only has to be free; the tests read it from $OUT/fixtures.port.
while (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
mkdir -p "$OUT"
echo "$PORT" >"$OUT/fixtures.port"

memcached -l 127.0.0.1 -p "$PORT" -U 0 -t 1 -u root &
MC=$!
TD=
cleanup() {
	[[ -n $TD ]] && kill "$TD" 2>/dev/null || true
	kill "$MC" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

# capture NAME: start tcpdump on lo into $OUT/NAME.pcap and wait until it listens.
capture() {
	local log
	log=$(mktemp)
	tcpdump -i lo -s 0 -U --immediate-mode -n -w "$OUT/$1.pcap" "tcp port $PORT" 2>"$log" &
	TD=$!
	for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.05; done
	sleep 0.2
	rm -f "$log"
}
# stop: let the last packets reach tcpdump, then stop it. (--immediate-mode above matters: without it packets
# wait in the kernel for up to a second and a short capture is stopped before it sees any.)
stop() {
	sleep 0.3
	kill -INT "$TD"
	wait "$TD" 2>/dev/null || true
	TD=
}
flush() { "$PY" -c "import socket; s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(b'flush_all\r\n'); s.recv(100)"; }

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

ls -l "$OUT"/*.pcap
