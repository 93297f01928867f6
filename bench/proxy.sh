#!/usr/bin/env bash
# Inline proxy overhead: one memcached on loopback, reached directly, through nutcracker (twemproxy: one server,
# ketama, fnv1a_64, no ejection), and through `membench proxy` with recording off and on. Each target gets the
# same two clients: memcaslap (get/set 9:1, -T 1 -c 32) and bench/pipeload (pipelined get/set 9:1, 4
# connections × 32 requests per batch). Prints a markdown table of ops/s and of the proxy's CPU seconds
# (utime+stime from /proc/PID/stat) per million requests; memcached's own CPU is shown for comparison.
#
#   bench/proxy.sh                  # from anywhere in the repository; about 2 minutes
#   DURATION=20s bench/proxy.sh     # longer runs
#
# Everything listens on 127.0.0.1 on free ports, every run is bounded (timeout), and every process started here
# is killed by PID on exit. Clients, proxies and memcached share the machine's cores: on a 2-core machine the
# client competes with the proxy for CPU, so compare the rows with each other, not with other machines.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONCURRENCY=${CONCURRENCY:-32}
PIPE_CONNS=${PIPE_CONNS:-4}
PIPE_DEPTH=${PIPE_DEPTH:-32}

cd "$(dirname "$0")/.."
NAME=proxy.sh WORK_PREFIX=membench-proxy-bench
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached nutcracker memcaslap go python3
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)

echo "building membench and pipeload…" >&2
go build -o "$WORK/membench" ./cmd/membench
go build -o "$WORK/pipeload" ./bench/pipeload

MC_PORT=$(free_port)
memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -t 2 -m 256 -c 4096 -u "$(id -un)" &
MC_PID=$!
PIDS+=($MC_PID)
wait_port "$MC_PORT"

NC_PORT=$(free_port)
NC_STATS=$(free_port)
cat >"$WORK/nutcracker.yml" <<EOF
inline:
  listen: 127.0.0.1:$NC_PORT
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  timeout: 2000
  servers:
    - 127.0.0.1:$MC_PORT:1
EOF
"$NUTCRACKER" -c "$WORK/nutcracker.yml" -s "$NC_STATS" -a 127.0.0.1 -o "$WORK/nutcracker.log" \
	-p "$WORK/nutcracker.pid" &
NC_PID=$!
PIDS+=($NC_PID)
wait_port "$NC_PORT"

OFF_PORT=$(free_port)
"$WORK/membench" proxy --listen "127.0.0.1:$OFF_PORT" --upstream "127.0.0.1:$MC_PORT" --metrics-listen "" \
	>"$WORK/membench-off.out" 2>"$WORK/membench-off.log" &
OFF_PID=$!
PIDS+=($OFF_PID)
wait_port "$OFF_PORT"

ON_PORT=$(free_port)
"$WORK/membench" proxy --listen "127.0.0.1:$ON_PORT" --upstream "127.0.0.1:$MC_PORT" --metrics-listen "" \
	--record "$WORK/bench.mbp" >"$WORK/membench-on.out" 2>"$WORK/membench-on.log" &
ON_PID=$!
PIDS+=($ON_PID)
wait_port "$ON_PORT"

ROWS=()
# run NAME PID PORT CLIENT: one client run against 127.0.0.1:PORT, measuring PID's CPU (PID 0: no proxy) and
# memcached's.
run() {
	local name=$1 pid=$2 port=$3 client=$4
	local before=0 after=0 mc_before mc_after out ops tps
	[[ $pid -ne 0 ]] && before=$(cpu_ticks "$pid")
	mc_before=$(cpu_ticks "$MC_PID")
	case $client in
	memcaslap)
		out=$(timeout 60 memcaslap -s "127.0.0.1:$port" -T "$THREADS" -c "$CONCURRENCY" -t "$DURATION" 2>&1)
		ops=$(sed -n 's/.*Ops: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
		tps=$(sed -n 's/.*TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
		;;
	pipeload)
		out=$(timeout 60 "$WORK/pipeload" -addr "127.0.0.1:$port" -conns "$PIPE_CONNS" -depth "$PIPE_DEPTH" \
			-duration "$DURATION" 2>&1)
		ops=$(sed -n 's/.*ops=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
		tps=$(sed -n 's/.*ops_per_sec=\([0-9]*\).*/\1/p' <<<"$out" | tail -1)
		;;
	esac
	[[ $pid -ne 0 ]] && after=$(cpu_ticks "$pid")
	mc_after=$(cpu_ticks "$MC_PID")
	if [[ -z ${ops:-} || $ops -eq 0 ]]; then
		echo "proxy.sh: $client against $name did no operation:" >&2
		echo "$out" >&2
		exit 1
	fi
	ROWS+=("$(awk -v n="$name" -v c="$client" -v ops="$ops" -v tps="$tps" -v p="$pid" -v t=$((after - before)) \
		-v m=$((mc_after - mc_before)) -v hz="$HZ" 'BEGIN {
			proxy = p == 0 ? "–" : sprintf("%.2f", t / hz / ops * 1e6)
			printf "| %s | %s | %d | %d | %s | %.2f |", n, c, tps, ops, proxy, m / hz / ops * 1e6 }')")
}

for client in memcaslap pipeload; do
	run "direct" 0 "$MC_PORT" "$client"
	run "nutcracker 0.5.0" "$NC_PID" "$NC_PORT" "$client"
	run "membench proxy (record off)" "$OFF_PID" "$OFF_PORT" "$client"
	run "membench proxy (record on)" "$ON_PID" "$ON_PORT" "$client"
done

# Stop the recording proxy cleanly so its profile is complete, and report what it recorded.
kill -TERM "$ON_PID"
wait "$ON_PID" || true
RECORDED=$(grep -o '[0-9]* events recorded, [0-9]* dropped, [0-9]* bytes' "$WORK/membench-on.out" ||
	echo "no summary")

echo
echo "memcaslap -T $THREADS -c $CONCURRENCY -t $DURATION (get/set 9:1); pipeload -conns $PIPE_CONNS -depth $PIPE_DEPTH" \
	"-duration $DURATION (get/set 9:1, 100-byte values); memcached -t 2;" \
	"$(nproc) CPUs shared by the client, the proxy and memcached"
echo
echo "| target | client | ops/s | ops | proxy CPU s per 1M ops | memcached CPU s per 1M ops |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "membench (record on) profile: $RECORDED"
