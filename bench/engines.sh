#!/usr/bin/env bash
# bench/engines.sh — membench replay's closed-loop engines against each other, pipelined: event loops (the default,
# under SCHED_BATCH), event loops with --sched-batch=false, and a goroutine per connection, at each pipeline depth
# in DEPTHS and connection count in CONNS, on one memcached (-t 2). This is what `--engine auto` is decided on.
#
# Each run is `membench replay --workload uniform --warmup --duration DUR` (90% get / 10% set, keys of 16 to 64
# bytes, values of 64 to 1024, 100 000 keys); its JSON report gives requests per second and client_cpu_seconds
# (the measured run, warmup excluded). The variants alternate within each round; the table gives medians and
# every run.
#
# Bounded: ROUNDS (default 3) × CONNS × DEPTHS × 3 runs of DUR (default 5) seconds plus each warmup, about 4
# minutes with the defaults; everything targets 127.0.0.1 and every process started here is stopped by PID on exit.
#
# Usage: bench/engines.sh                         (from the repository root)
#        CONNS="4 64" DEPTHS="16 64" ROUNDS=5 bench/engines.sh
set -Eeuo pipefail

DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-16}
DEPTHS=${DEPTHS:-8 16 64 128}
cd "$(dirname "$0")/.."

NAME=bench/engines.sh
WORK_PREFIX=membench-engines
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached go python3

go build -o "$WORK/membench" ./cmd/membench
start_memcached -t 2 -m 512

# run NAME CONNS DEPTH ARGS...: one replay; appends "NAME conns depth ops_per_sec cpu_us_per_request" to runs.
run() {
	local name=$1 c=$2 d=$3
	shift 3
	timeout $((DUR + 60)) "$WORK/membench" replay --workload uniform --target "$ADDR" --connections "$c" \
		--pipeline "$d" --duration "${DUR}s" --warmup --max-error-ratio 1 -o "$WORK/report.json" "$@" > /dev/null
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], sys.argv[3], sys.argv[4], r["ops_per_sec"], r["client_cpu_seconds"] / r["ops"] * 1e6)' \
		"$WORK/report.json" "$name" "$c" "$d" >> "$WORK/runs"
}

for r in $(seq "$ROUNDS"); do
	for c in $CONNS; do
		for d in $DEPTHS; do
			echo "round $r/$ROUNDS, $c connections, depth $d…" >&2
			run eventloop "$c" "$d" --engine eventloop
			run eventloop-normal "$c" "$d" --engine eventloop --sched-batch=false
			run goroutine "$c" "$d" --engine goroutine
		done
	done
done

python3 - "$WORK/runs" "$ROUNDS" "$DUR" <<'EOF'
import statistics, sys
runs, rounds, dur = sys.argv[1], sys.argv[2], sys.argv[3]
g = {}
for line in open(runs):
    name, c, d, rate, us = line.split()
    g.setdefault((int(c), int(d), name), []).append((float(rate), float(us)))
print("| connections | depth | engine | ops/s | CPU µs per request | runs (ops/s / µs) |")
print("| ---: | ---: | --- | ---: | ---: | --- |")
order = {"eventloop": 0, "eventloop-normal": 1, "goroutine": 2}
for k in sorted(g, key=lambda k: (k[0], k[1], order[k[2]])):
    v = g[k]
    each = ", ".join(f"{r:.0f} / {u:.2f}" for r, u in v)
    print(f"| {k[0]} | {k[1]} | {k[2]} | {statistics.median(r for r, _ in v):.0f} | "
          f"{statistics.median(u for _, u in v):.2f} | {each} |")
print(f"\n(medians of {rounds} rounds of {dur} s; CPU is membench's client_cpu_seconds, the measured run without "
      "its warmup; eventloop-normal is --engine eventloop --sched-batch=false)")
EOF
