#!/usr/bin/env bash
# bench/replay.sh — membench replay against memcaslap (libmemcached-tools' memaslap), closed loop, on the same
# memcached with the same number of connections and the same pipeline depth, each run for DUR seconds.
#
# Reported per run: requests per second (from the tool's own summary) and the load generator's CPU time per
# million requests, read from /proc/PID/stat: the tool runs as the only child of a bash process, and once it has
# been waited for, that process's cutime + cstime (fields 16 and 17, in clock ticks) are exactly the tool's user
# and system time.
#
# memaslap keeps one request in flight per connection (-c connections, no pipelining), so the comparison is at
# depth 1; one extra membench row shows what its pipelining adds. memaslap's workload is 90% get / 10% set, 64-byte
# keys and, here, 544-byte values (-X 544); membench replays its "uniform" preset: 90% get / 10% set, keys of 16 to
# 64 bytes, values of 64 to 1024 bytes (mean 544), with a warmup so that gets hit as memaslap's do.
#
# Bounded: 4 runs of DUR (default 10) seconds plus setup, well under 4 minutes; everything targets 127.0.0.1 and
# every process started here is stopped by PID on exit.
#
# Usage: bench/replay.sh            (from the repository root)
#        DUR=5 CONNS="8 32" bench/replay.sh
set -euo pipefail

DUR=${DUR:-10}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-2}
cd "$(dirname "$0")/.."

for p in memcached memcaslap go; do
	command -v "$p" >/dev/null || { echo "bench/replay.sh: $p not found (install it: sudo scripts/install-deps.sh)" >&2; exit 1; }
done

TMP=$(mktemp -d)
MC_PID=""
cleanup() {
	if [ -n "$MC_PID" ]; then kill "$MC_PID" 2>/dev/null || true; wait "$MC_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

go build -o "$TMP/membench" ./cmd/membench

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
memcached -l 127.0.0.1 -p "$PORT" -U 0 -t 2 -m 512 "${USER_ARGS[@]}" &
MC_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
ADDR=127.0.0.1:$PORT

# cpu_of CMD...: runs CMD as the only child of a bash, prints its output to $TMP/out and its CPU seconds
# (cutime + cstime of that bash, from /proc/PID/stat) on stdout.
cpu_of() {
	bash -c '"$@" > "'"$TMP"'/out" 2> "'"$TMP"'/err"; read -ra s < /proc/$$/stat; echo $(( s[15] + s[16] ))' _ "$@" |
		awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", $1 / hz }'
}

printf '%-10s %6s %6s %12s %18s\n' tool conns depth "ops/s" "CPU s / M ops"
row() { printf '%-10s %6s %6s %12.0f %18.2f\n' "$@"; }

for C in $CONNS; do
	cpu=$(cpu_of timeout $((DUR + 30)) memcaslap -s "$ADDR" -T "$THREADS" -c "$C" -X 544 -t "${DUR}s")
	ops=$(awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "Ops:") print $(i+1) }' "$TMP/out")
	tps=$(awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i+1) }' "$TMP/out")
	row memcaslap "$C" 1 "$tps" "$(echo "$cpu $ops" | awk '{ print $1 / ($2 / 1e6) }')"

	for D in 1 $([ "$C" = "$(echo "$CONNS" | awk '{ print $1 }')" ] && echo 16); do
		cpu=$(cpu_of timeout $((DUR + 60)) "$TMP/membench" replay --workload uniform --target "$ADDR" \
			--connections "$C" --pipeline "$D" --duration "${DUR}s" --warmup --max-error-ratio 1 --json)
		read -r ops rate < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ops"], r["ops_per_sec"])' "$TMP/out")
		row membench "$C" "$D" "$rate" "$(echo "$cpu $ops" | awk '{ print $1 / ($2 / 1e6) }')"
	done
done
echo "(membench CPU includes its warmup of 100000 keys; same memcached for every run; $DUR s per run)"
