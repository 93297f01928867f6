#!/usr/bin/env bash
# Benchmarks `membench tap`, bounded to a few minutes. Run from the repository root, as root (live capture):
#
#   sudo bench/tap.sh [REQUESTS] [LIVE_SECONDS]      (defaults: 1000000 requests, 10 s)
#
# 1. Offline decode rate: a synthetic pcap of REQUESTS text requests over 64 connections (written by
#    tap/testdata/pcapgen) decoded by `membench tap --pcap … --record …` and by `tshark -r … -Y memcache`, on the
#    same file in the same run. Target: membench ≥ 20× tshark.
#    Both wall-clock and CPU (user+sys) seconds are printed: on a shared machine the wall clock of either
#    tool moves with the load, CPU time much less.
# 2. Live capture on lo: `membench tap --interface lo` while tap/testdata/loadgen (pipelined, 4 connections)
#    drives a memcached on a free port for LIVE_SECONDS, twice: with --immediate-mode=false (the default;
#    TPACKET_V3, the ring packs packets) and with immediate mode (TPACKET_V2, one snaplen-sized ring slot per
#    packet). Target: ≥ 50 k ops/s with zero kernel drops and recorded events equal to the client's operations.
set -euo pipefail

REQUESTS=${1:-1000000}
LIVE=${2:-10}
[[ $(id -u) == 0 ]] || { echo "bench/tap.sh: live capture needs root; run with sudo" >&2; exit 1; }
for p in go tshark memcached; do
	command -v "$p" >/dev/null || { echo "bench/tap.sh: $p not found (scripts/install-deps.sh)" >&2; exit 1; }
done
WORK=$(mktemp -d)
MC=
cleanup() {
	[[ -n $MC ]] && kill "$MC" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/membench" ./cmd/membench
go build -o "$WORK/pcapgen" ./tap/testdata/pcapgen
go build -o "$WORK/loadgen" ./tap/testdata/loadgen
"$WORK/membench" salt -o "$WORK/salt.hex" >/dev/null 2>&1 || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/salt.hex"
chmod 600 "$WORK/salt.hex"
echo >>"$WORK/salt.hex"

# timed CMD...: runs CMD, its output to $WORK/out; sets WALL and CPU (user+sys) seconds.
timed() {
	/usr/bin/time -f "%e %U %S" -o "$WORK/time" "$@" >"$WORK/out" 2>&1
	read -r WALL user sys <"$WORK/time"
	CPU=$(echo "$user + $sys" | bc -l)
}

echo "== offline: $REQUESTS requests"
"$WORK/pcapgen" -o "$WORK/big.pcap" -requests "$REQUESTS" -conns 64 -port 11211
ls -l "$WORK/big.pcap" | awk '{printf "pcap: %d bytes\n", $5}'
cat "$WORK/big.pcap" >/dev/null # both tools read it from the page cache
timed "$WORK/membench" tap --pcap "$WORK/big.pcap" --port 11211 --record "$WORK/off.mbp" \
	--salt-file "$WORK/salt.hex" --metrics-listen ""
grep "membench tap:" "$WORK/out"
mw=$WALL mc=$CPU
timed tshark -r "$WORK/big.pcap" -d tcp.port==11211,memcache -Y memcache
tw=$WALL tc=$CPU
printf "membench tap:       %6.2f s wall %6.2f s cpu (%.0f requests/s wall)\n" "$mw" "$mc" "$(echo "$REQUESTS / $mw" | bc -l)"
printf "tshark -Y memcache: %6.2f s wall %6.2f s cpu (%.0f requests/s wall, %d lines)\n" "$tw" "$tc" \
	"$(echo "$REQUESTS / $tw" | bc -l)" "$(wc -l <"$WORK/out")"
printf "speedup: %.1fx wall, %.1fx cpu (target >= 20x)\n" "$(echo "$tw / $mw" | bc -l)" "$(echo "$tc / $mc" | bc -l)"
rm -f "$WORK/big.pcap"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
memcached -l 127.0.0.1 -p "$PORT" -U 0 -t 2 -u root &
MC=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

# live MODE-FLAG: one live run; prints the result and returns 1 on a mismatch.
live() {
	rm -f "$WORK/live.mbp"
	"$WORK/membench" tap --interface lo --port "$PORT" --record "$WORK/live.mbp" --salt-file "$WORK/salt.hex" \
		--metrics-listen "" "$1" >"$WORK/tap.out" 2>&1 &
	local tap=$!
	sleep 1
	"$WORK/loadgen" -addr "127.0.0.1:$PORT" -conns 4 -batch 64 -duration "${LIVE}s" | tee "$WORK/load.out"
	sleep 1
	kill -INT "$tap"
	wait "$tap"
	grep "membench tap:" "$WORK/tap.out" | head -1
	local ops events lost drops
	ops=$(awk '{print $2}' "$WORK/load.out")
	events=$(grep -o '[0-9]* events (' "$WORK/tap.out" | head -1 | awk '{print $1}')
	lost=$(grep -o '[0-9]* lost)' "$WORK/tap.out" | head -1 | awk '{print $1}')
	drops=$(grep -o 'kernel drops [0-9]*' "$WORK/tap.out" | awk '{print $3}')
	echo "client ops: $ops, tap events: $events (lost $lost), kernel drops: $drops"
	if [[ $events == "$ops" && $lost == 0 && $drops == 0 ]]; then
		echo "live $1: OK (events == operations, no drops)"
	else
		echo "live $1: MISMATCH"
		return 1
	fi
}
echo "== live: lo, ${LIVE}s of pipelined load, --immediate-mode=false"
live --immediate-mode=false
echo "== live: lo, ${LIVE}s of pipelined load, --immediate-mode=true"
live --immediate-mode=true || true # reported, not required: see the header
