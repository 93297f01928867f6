#!/usr/bin/env bash
# bench/steady.sh — load generators' CPU per request in their steady state, without start-up or warmup.
#
# bench/replay.sh charges each tool its whole process: memaslap's start-up (about 1.2 s of wall time and half a
# CPU second here) and membench's warmup both land in its "tool CPU" column. This script looks only at the middle
# of each run: it starts the tool for DUR seconds (default 12), waits SKIP seconds (default 5), then reads the
# tool's utime + stime from /proc/PID/stat and memcached's cmd_get + cmd_set, and reads both again WINDOW seconds
# later (default 4). Requests per second (over the time that actually passed between the reads) and CPU
# microseconds per request come from those two deltas. The same
# workload shape as bench/replay.sh (90% get / 10% set, keys 16–64 bytes, values 64–1024; membench's uniform
# preset with a warmup, memaslap with its configuration file), depth 1, same connections.
#
# Bounded: ROUNDS (default 3) × 3 runs × DUR seconds, about 2 minutes with the defaults; everything targets
# 127.0.0.1 and every process started here is stopped by PID on exit.
#
# Usage: bench/steady.sh                (from the repository root)
#        ROUNDS=5 CONNS=64 bench/steady.sh
set -Eeuo pipefail
trap 'echo "bench/steady.sh: line $LINENO failed (status $?); memcached $(kill -0 "$MC_PID" 2>/dev/null && echo alive || echo gone)" >&2' ERR

DUR=${DUR:-12}
SKIP=${SKIP:-5}
WINDOW=${WINDOW:-4}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
MC_PID=""
cd "$(dirname "$0")/.."

NAME=bench/steady.sh
WORK_PREFIX=membench-steady
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached memcaslap go python3
if [ $((SKIP + WINDOW + 1)) -gt "$DUR" ]; then
	echo "bench/steady.sh: DUR must exceed SKIP + WINDOW by a second at least" >&2
	exit 1
fi

go build -o "$WORK/membench" ./cmd/membench
start_memcached -t 2 -m 512
memaslap_uniform_cnf "$WORK/memaslap.cnf"

# served: memcached's cmd_get + cmd_set so far (three tries). Read over bash's /dev/tcp: a python3 doing the same
# took 1.2–1.5 s to start on the loaded machine, which stretched the window and could push its end past the tool's.
served() {
	local try line get set
	for try in 1 2 3; do
		get="" set=""
		if exec 3<>"/dev/tcp/127.0.0.1/$PORT"; then
			printf 'stats\r\n' >&3
			while IFS= read -r -t 5 line <&3; do
				line=${line%$'\r'}
				case $line in
				"STAT cmd_get "*) get=${line#STAT cmd_get } ;;
				"STAT cmd_set "*) set=${line#STAT cmd_set } ;;
				END) break ;;
				esac
			done
			exec 3<&-
			if [ "$line" = END ] && [ -n "$get" ] && [ -n "$set" ]; then
				echo $((get + set))
				return 0
			fi
		fi
		sleep 0.2
	done
	echo "bench/steady.sh: no stats from memcached on port $PORT" >&2
	return 1
}
# ticks PID: cpu_ticks of the tool, or nothing once it has ended.
ticks() { cpu_ticks "$1" 2>/dev/null || true; }

# measure NAME CMD...: runs CMD, samples the middle of its run, appends "NAME ops_per_sec cpu_us_per_op".
measure() {
	local name=$1 t0 t1 o0 o1 w0 w1
	shift
	"$@" > "$WORK/out" 2>&1 &
	TOOL_PID=$!
	PIDS=("$MC_PID" "$TOOL_PID")
	sleep "$SKIP"
	o0=$(served); t0=$(ticks "$TOOL_PID"); w0=$EPOCHREALTIME
	sleep "$WINDOW"
	o1=$(served); t1=$(ticks "$TOOL_PID"); w1=$EPOCHREALTIME
	local rc=0
	wait "$TOOL_PID" || rc=$?
	PIDS=("$MC_PID")
	if [ -z "$t0" ] || [ -z "$t1" ] || [ "$o1" -le "$o0" ]; then
		echo "bench/steady.sh: $name ended (status $rc) or stalled before its window; its output:" >&2
		tail -5 "$WORK/out" >&2
		return
	fi
	python3 -c 'import sys, os
n, o, t, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), os.sysconf("SC_CLK_TCK")
w = float(sys.argv[5]) - float(sys.argv[4])  # the window as it was, not as asked for
print(n, o / w, t / hz * 1e6 / o)' "$name" $((o1 - o0)) $((t1 - t0)) "$w0" "$w1" >> "$WORK/runs"
}

MB=("$WORK/membench" replay --workload uniform --target "$ADDR" --connections "$CONNS" --pipeline 1
	--duration "${DUR}s" --warmup --max-error-ratio 1)
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS…" >&2
	measure memcaslap memcaslap -s "$ADDR" -T "$THREADS" -c "$CONNS" -F "$WORK/memaslap.cnf" -t "${DUR}s"
	measure membench-eventloop "${MB[@]}" --engine eventloop
	measure membench-eventloop-bound "${MB[@]}" --engine eventloop --cpu-affinity
done

python3 - "$WORK/runs" "$ROUNDS" "$CONNS" <<'EOF'
import statistics, sys
runs, rounds, conns = sys.argv[1], sys.argv[2], sys.argv[3]
g = {}
for line in open(runs):
    name, rate, us = line.split()
    g.setdefault(name, []).append((float(rate), float(us)))
print(f"| tool ({conns} connections, depth 1) | ops/s | CPU µs per request | runs (ops/s / µs) |")
print("| --- | ---: | ---: | --- |")
for name, v in g.items():
    runs = ", ".join(f"{r:.0f} / {u:.2f}" for r, u in v)
    print(f"| {name} | {statistics.median(r for r, _ in v):.0f} | {statistics.median(u for _, u in v):.2f} | {runs} |")
print(f"\n(medians of {rounds} rounds; each figure is the middle of a run, start-up and warmup excluded)")
EOF
