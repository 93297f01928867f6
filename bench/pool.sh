#!/usr/bin/env bash
# Pool mode against twemproxy: three memcached servers on loopback, nutcracker (ketama, fnv1a_64) and
# `membench proxy` in pool mode (same servers, same hash, recording ON) in front of them, each driven by the
# same memcaslap runs. Prints a markdown table of ops/s and CPU seconds (utime+stime from /proc/PID/stat) per
# million requests of the proxy, of memcaslap and of the three servers together: the machine's whole budget, so
# that what a cheaper proxy could gain is visible.
#
#   bench/pool.sh                 # from the repository root; about 1 minute
#   DURATION=20s bench/pool.sh    # longer runs
#   MB_ARGS="--event-loops 1" bench/pool.sh   # extra flags for membench proxy
#
# Everything listens on 127.0.0.1 on free ports and is killed by PID on exit. The clients, the proxies and the
# servers share the machine's cores: compare the rows with each other, not with other machines.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONCURRENCY=${CONCURRENCY:-32}

cd "$(dirname "$0")/.."
NAME=pool.sh WORK_PREFIX=membench-pool-bench
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached nutcracker memcaslap go python3
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)

echo "building membench…" >&2
go build -o "$WORK/membench" ./cmd/membench

# Three memcached servers.
SERVERS=()
SERVER_PIDS=()
for i in 1 2 3; do
	port=$(free_port)
	memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 -m 256 -u "$(id -un)" &
	PIDS+=($!)
	SERVER_PIDS+=($!)
	wait_port "$port"
	SERVERS+=("127.0.0.1:$port")
done

# nutcracker: ketama, fnv1a_64, no ejection.
NC_PORT=$(free_port)
NC_STATS=$(free_port)
{
	echo "pool:"
	echo "  listen: 127.0.0.1:$NC_PORT"
	echo "  hash: fnv1a_64"
	echo "  distribution: ketama"
	echo "  auto_eject_hosts: false"
	echo "  timeout: 1000"
	echo "  servers:"
	for s in "${SERVERS[@]}"; do
		echo "    - $s:1"
	done
} >"$WORK/nutcracker.yml"
"$NUTCRACKER" -c "$WORK/nutcracker.yml" -s "$NC_STATS" -a 127.0.0.1 -o "$WORK/nutcracker.log" \
	-p "$WORK/nutcracker.pid" &
NC_PID=$!
PIDS+=($NC_PID)
wait_port "$NC_PORT"

# membench proxy in pool mode, recording.
MB_PORT=$(free_port)
UPSTREAMS=$(
	IFS=,
	echo "${SERVERS[*]}"
)
"$WORK/membench" proxy --listen "127.0.0.1:$MB_PORT" --upstream "$UPSTREAMS" --hash fnv1a_64 \
	--record "$WORK/pool.mbp" --metrics-listen "" ${MB_ARGS:-} >"$WORK/membench.out" 2>"$WORK/membench.log" &
MB_PID=$!
PIDS+=($MB_PID)
wait_port "$MB_PORT"

ROWS=()
# servers_ticks: CPU ticks of the three memcached so far.
servers_ticks() {
	local t=0 pid
	for pid in "${SERVER_PIDS[@]}"; do
		t=$((t + $(cpu_ticks "$pid")))
	done
	echo "$t"
}
# run NAME PID PORT WORKLOAD ARGS…: one memcaslap run against 127.0.0.1:PORT, measuring PID's, memcaslap's and the
# servers' CPU. memcaslap runs as the only child of a bash, whose cutime + cstime (fields 16 and 17 of
# /proc/PID/stat) are memcaslap's CPU once it has been waited for.
run() {
	local name=$1 pid=$2 port=$3 workload=$4
	shift 4
	local before after sbefore safter client out ops tps
	before=$(cpu_ticks "$pid")
	sbefore=$(servers_ticks)
	client=$(bash -c 'timeout 60 memcaslap "$@" > "'"$WORK"'/memcaslap.out" 2>&1; read -ra s < /proc/$$/stat; echo $(( s[15] + s[16] ))' \
		_ -s "127.0.0.1:$port" -T "$THREADS" -c "$CONCURRENCY" -t "$DURATION" "$@")
	after=$(cpu_ticks "$pid")
	safter=$(servers_ticks)
	out=$(cat "$WORK/memcaslap.out")
	ops=$(sed -n 's/.*Ops: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
	tps=$(sed -n 's/.*TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
	if [[ -z $ops || $ops -eq 0 ]]; then
		echo "pool.sh: memcaslap against $name did no operation:" >&2
		echo "$out" >&2
		exit 1
	fi
	ROWS+=("$(awk -v n="$name" -v w="$workload" -v ops="$ops" -v tps="$tps" -v t=$((after - before)) -v hz="$HZ" \
		-v c="$client" -v sv=$((safter - sbefore)) 'BEGIN {
			m = ops / 1e6; p = t / hz / m; cl = c / hz / m; s = sv / hz / m
			printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f |", n, w, tps, p, cl, s, p + cl + s }')")
}

for workload in "get/set 9:1" "multi-get 10 keys"; do
	args=()
	if [[ $workload == multi-get* ]]; then
		args=(-d 10)
	fi
	run "nutcracker 0.5.0" "$NC_PID" "$NC_PORT" "$workload" "${args[@]}"
	run "membench pool (recording)" "$MB_PID" "$MB_PORT" "$workload" "${args[@]}"
done

# Stop membench cleanly so the profile is complete, and report what it recorded.
kill -TERM "$MB_PID"
wait "$MB_PID" || true
RECORDED=$(grep -o '[0-9]* events recorded, [0-9]* dropped' "$WORK/membench.out" || echo "no summary")

echo
echo "memcaslap -T $THREADS -c $CONCURRENCY -t $DURATION; 3 memcached -t 1; $(nproc) CPUs shared by clients, proxies and servers"
echo "(CPU columns: CPU seconds per million requests)"
echo
echo "| proxy | workload | ops/s | proxy | memcaslap | 3 servers | all |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "membench profile: $RECORDED"
