#!/usr/bin/env bash
# bench/replay.sh — membench replay against memcaslap (libmemcached-tools' memaslap) and, optionally,
# memtier_benchmark, closed loop, on the same memcached with the same number of connections and pipeline depth.
#
# Each configuration runs ROUNDS times (default 3), the tools alternating within a round so that they share the
# machine's moods; the table gives each one's median. Reported: requests per second (from the tool's own
# summary), the load generator's CPU time per million requests, read from /proc/PID/stat (the tool runs as the
# only child of a bash process, and once it has been waited for, that process's cutime + cstime — fields 16 and
# 17, in clock ticks — are exactly the tool's user and system time), and memcached's own CPU time per million
# requests over the same run (utime + stime deltas of its /proc/PID/stat).
#
# memaslap keeps one request in flight per connection (-c connections, no pipelining), so the comparison is at
# depth 1; both membench engines are shown there (--engine eventloop, the default; the same with --cpu-affinity,
# its loops bound to CPUs as memaslap binds its threads; and goroutine), and four extra rows (both engines at
# depths 4 and 16) show what pipelining adds (bench/engines.sh compares the engines at more depths).
# memtier_benchmark joins at depth 1 when MEMTIER points at a local build. Every tool runs the same workload
# shape: 90% get / 10% set, keys of 16 to 64 bytes and values of 64 to 1024 (membench's "uniform" preset over
# 100 000 keys, with a warmup so that gets hit; memaslap with those ranges in its configuration file, setting each
# key before it gets it; memtier_benchmark with those values, 40-byte keys, and its 100 000 keys stored once
# before the rounds).
#
# Bounded: ROUNDS × (4 or 8 runs per connection count) × DUR (default 8) seconds plus setup, about 5 minutes with
# the defaults; everything targets 127.0.0.1 and every process started here is stopped by PID on exit.
#
# Usage: bench/replay.sh            (from the repository root)
#        DUR=5 ROUNDS=5 CONNS="8 32" bench/replay.sh
set -euo pipefail

DUR=${DUR:-8}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-2}
# memtier_benchmark is not packaged in Debian 12: build it from its public source and point MEMTIER at the
# binary (or put it on PATH) to add it to the table; without it the script runs without those rows.
MEMTIER=${MEMTIER:-$(command -v memtier_benchmark || true)}
cd "$(dirname "$0")/.."

NAME=bench/replay.sh
WORK_PREFIX=membench-replay
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached memcaslap go python3

go build -o "$WORK/membench" ./cmd/membench
start_memcached -t 2 -m 512
# The same workload shape for every tool: membench's uniform preset (keys of 16 to 64 bytes, values of 64 to 1024,
# 90% get / 10% set, 100 000 keys); memaslap with the same ranges and mix (its configuration file); memtier with
# the same values and mix, and keys of 40 bytes (a 35-byte prefix and the key number), the presets' mean.
memaslap_uniform_cnf "$WORK/memaslap.cnf"
MT_PREFIX=memtier-key-padded-to-the-mean-size

# cpu_of CMD...: runs CMD as the only child of a bash, its output to $WORK/out, and prints its CPU ticks
# (cutime + cstime of that bash, from /proc/PID/stat).
cpu_of() {
	bash -c '"$@" > "'"$WORK"'/out" 2> "'"$WORK"'/err"; read -ra s < /proc/$$/stat; echo $(( s[15] + s[16] ))' _ "$@"
}
# mc_ticks: memcached's utime + stime so far.
mc_ticks() { cpu_ticks "$MC_PID"; }

# Each run appends "tool conns depth ops ops_per_sec tool_ticks memcached_ticks measured_cpu_seconds" to $WORK/runs
# (the last only for membench: its report's client_cpu_seconds, the measured run without the warmup).
run_memcaslap() {
	local c=$1 m0 t
	m0=$(mc_ticks)
	t=$(cpu_of timeout $((DUR + 30)) memcaslap -s "$ADDR" -T "$THREADS" -c "$c" -F "$WORK/memaslap.cnf" -t "${DUR}s")
	awk -v c="$c" -v t="$t" -v m="$(( $(mc_ticks) - m0 ))" '/^Run time:/ {
		for (i = 1; i <= NF; i++) { if ($i == "Ops:") ops = $(i+1); if ($i == "TPS:") tps = $(i+1) }
		print "memcaslap", c, 1, ops, tps, t, m, "-" }' "$WORK/out" >> "$WORK/runs"
}
run_memtier() {
	local c=$1 m0 t
	m0=$(mc_ticks)
	t=$(cpu_of timeout $((DUR + 30)) "$MEMTIER" -s 127.0.0.1 -p "$PORT" -P memcache_text -t "$THREADS" \
		-c $((c / THREADS)) --pipeline=1 --ratio=1:9 --data-size-range=64-1024 --key-prefix="$MT_PREFIX" \
		--key-pattern=R:R --key-minimum=1 --key-maximum=100000 \
		--test-time="$DUR" --hide-histogram --json-out-file="$WORK/memtier.json")
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["ALL STATS"]["Totals"]; print("memtier_benchmark", sys.argv[2], 1, a["Count"], a["Ops/sec"], sys.argv[3], sys.argv[4], "-")' \
		"$WORK/memtier.json" "$c" "$t" "$(( $(mc_ticks) - m0 ))" >> "$WORK/runs"
}
run_membench() {
	local engine=$1 c=$2 d=$3 name=membench-$1 m0 t
	local args=(--engine "$engine")
	if [ "$engine" = eventloop-bound ]; then args=(--engine eventloop --cpu-affinity); fi
	m0=$(mc_ticks)
	t=$(cpu_of timeout $((DUR + 60)) "$WORK/membench" replay --workload uniform --target "$ADDR" "${args[@]}" \
		--connections "$c" --pipeline "$d" --duration "${DUR}s" --warmup --max-error-ratio 1 --json)
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], sys.argv[4], r["ops"], r["ops_per_sec"], sys.argv[5], sys.argv[6], r["client_cpu_seconds"])' \
		"$WORK/out" "$name" "$c" "$d" "$t" "$(( $(mc_ticks) - m0 ))" >> "$WORK/runs"
}

if [ -n "$MEMTIER" ]; then
	# memtier's keys (memtier-1 … memtier-100000) stored once, so that its gets hit as the others' do.
	"$MEMTIER" -s 127.0.0.1 -p "$PORT" -P memcache_text -t 1 -c 1 --pipeline=32 --ratio=1:0 --data-size-range=64-1024 \
		--key-prefix="$MT_PREFIX" --key-pattern=P:P \
		--key-minimum=1 --key-maximum=100000 -n allkeys --hide-histogram > /dev/null 2>&1
fi
first=$(echo "$CONNS" | awk '{ print $1 }')
for r in $(seq "$ROUNDS"); do
	for C in $CONNS; do
		echo "round $r/$ROUNDS, $C connections…" >&2
		run_memcaslap "$C"
		if [ -n "$MEMTIER" ]; then run_memtier "$C"; fi
		run_membench eventloop "$C" 1
		run_membench eventloop-bound "$C" 1
		run_membench goroutine "$C" 1
		if [ "$C" = "$first" ]; then
			for D in 4 16; do
				run_membench eventloop "$C" "$D"
				run_membench goroutine "$C" "$D"
			done
		fi
	done
done

python3 - "$WORK/runs" "$HZ" "$ROUNDS" "$DUR" <<'EOF'
import statistics, sys
runs, hz, rounds, dur = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
groups = {}
for line in open(runs):
    tool, c, d, ops, rate, t, m, mc = line.split()
    g = groups.setdefault((int(c), tool, int(d)), [])
    mops = float(ops) / 1e6
    g.append((float(rate), float(t) / hz / mops, float(m) / hz / mops, float(mc) / mops if mc != "-" else None))
print("| tool | connections | depth | ops/s | tool CPU s per 1M ops | same, measured run only | memcached CPU s per 1M ops |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
order = {"memcaslap": 0, "memtier_benchmark": 0.5, "membench-eventloop": 1, "membench-eventloop-bound": 2, "membench-goroutine": 3}
for (c, tool, d) in sorted(groups, key=lambda k: (k[0], k[2], order.get(k[1], 9))):
    g = groups[(c, tool, d)]
    med = lambda i: statistics.median(x[i] for x in g)
    measured = f"{med(3):.2f}" if g[0][3] is not None else "—"
    print(f"| {tool} | {c} | {d} | {med(0):.0f} | {med(1):.2f} | {measured} | {med(2):.2f} |")
print(f"\n(medians of {rounds} rounds of {dur} s; same memcached for every run. Tool CPU is the whole process: "
      "membench's includes start-up and its warmup of 100 000 keys, memaslap's its start-up and the sets that fill "
      "its windows, which count as operations; memtier_benchmark's its start-up (its keys were stored once before "
      "the rounds). 'Measured run only' is membench's client_cpu_seconds: start-up and "
      "warmup excluded.)")
EOF
