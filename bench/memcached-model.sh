#!/usr/bin/env bash
# bench/memcached-model.sh — how well `membench inspect --memcached` predicts a real memcached's hit ratio, next to
# plain LRU (`--mrc-sizes`). Results are in docs/WORKLOADS.md ("Predicting memcached").
#
# For each memory limit it starts memcached -m SIZE (as installed: Debian's 1.6.18, default settings) on a free
# loopback port, replays the trace's reads to it as a look-aside client as fast as it answers (bench/lookaside:
# a get, and a set of the read's size when the get missed; one connection), and reads the server's get_hits and
# get_misses. Then it runs `membench inspect TRACE --memcached SIZES --mrc-sizes SIZES --json` once on the trace
# as it is (its own timestamps: what an operator would run on a profile), and once on the reads as sent (the
# clock the server saw, written by bench/lookaside -timed), and prints the hit ratios side by side.
#
# Usage: bench/memcached-model.sh TRACE [SIZES_MIB]
#   TRACE      a libCacheSim oracleGeneral trace (*.oracleGeneral.bin; imported with `membench import`) or a
#              membench profile (*.mbp). libCacheSim's own test trace is data/cloudPhysicsIO.oracleGeneral.bin in
#              https://github.com/1a1a11a/libCacheSim (2.7 MB, 113 872 reads over 2 hours; `git clone --depth 1`
#              the repository, or download that one file from its data/ directory). It is third-party data: keep
#              it out of this repository.
#   SIZES_MIB  comma-separated memory limits in MiB (default 16,64,256,1024)
# MEMCACHED_ARGS adds arguments to every memcached (e.g. "-o no_lru_maintainer"); INSPECT_ARGS to inspect (then
# "--memcached-segmented=false"). Bounded: one replay per size (about 10 s each for the trace above).
set -Eeuo pipefail

trace=${1:?usage: bench/memcached-model.sh TRACE [SIZES_MIB]}
trace=$(realpath "$trace")
sizes_mib=${2:-16,64,256,1024}
cd "$(dirname "$0")/.."

NAME=bench/memcached-model.sh
WORK_PREFIX=membench-mcmodel
# shellcheck source=bench/lib.sh
source bench/lib.sh
require memcached go python3

go build -o "$WORK/membench" ./cmd/membench
go build -o "$WORK/lookaside" ./bench/lookaside
case $trace in
*.mbp) cp "$trace" "$WORK/trace.mbp" ;;
*) "$WORK/membench" import --format oracle-general "$trace" -o "$WORK/trace.mbp" 2>/dev/null ;;
esac

sizes=""
for mib in ${sizes_mib//,/ }; do
	start_memcached -m "$mib" ${MEMCACHED_ARGS:-}
	"$WORK/lookaside" -profile "$WORK/trace.mbp" -addr "$ADDR" -timed "$WORK/sent.$mib.mbp" >"$WORK/server.$mib"
	kill "$MC_PID"
	wait "$MC_PID" 2>/dev/null || true
	sizes+="${sizes:+,}${mib}MiB"
done

# The model on the trace's own times (once, all sizes), and on each replay's send times (its own size).
# shellcheck disable=SC2086
"$WORK/membench" inspect "$WORK/trace.mbp" --json --memcached "$sizes" --mrc-sizes "$sizes" ${INSPECT_ARGS:-} \
	>"$WORK/model.json"
for mib in ${sizes_mib//,/ }; do
	# shellcheck disable=SC2086
	"$WORK/membench" inspect "$WORK/sent.$mib.mbp" --json --memcached "${mib}MiB" ${INSPECT_ARGS:-} \
		>"$WORK/sent.$mib.json"
done

echo "memcached $(memcached -h | head -1 | cut -d' ' -f2), trace $(basename "$trace"), $(grep -o '^reads [0-9]*' "$WORK/server.${sizes_mib%%,*}")"
python3 - "$WORK" "$sizes_mib" <<'EOF'
import json, sys
work, sizes = sys.argv[1], sys.argv[2].split(",")
model = json.load(open(f"{work}/model.json"))
byte = {p["memory_bytes"]: p for p in model["memcached"]["points"]}
print("| -m (MiB) | memcached hit ratio | model, trace times | Δ pp | model, send times | Δ pp | LRU | Δ pp | "
      "evictions: memcached | model, send times | replay s |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
worst = 0.0
for mib in sizes:
    f = open(f"{work}/server.{mib}").read().split()
    kv = dict(zip(f[::2], f[1::2]))
    hits, misses = int(kv["get_hits"]), int(kv["get_misses"])
    server = hits / (hits + misses)
    p = byte[int(mib) << 20]
    sent = json.load(open(f"{work}/sent.{mib}.json"))["memcached"]["points"][0]
    lru = 1 - p["lru_miss_ratio"]
    d1, d2, d3 = (100 * (x - server) for x in (p["hit_ratio"], sent["hit_ratio"], lru))
    worst = max(worst, abs(d1), abs(d2))
    print(f"| {mib} | {server:.4f} | {p['hit_ratio']:.4f} | {d1:+.2f} | {sent['hit_ratio']:.4f} | {d2:+.2f} | "
          f"{lru:.4f} | {d3:+.2f} | {kv['evictions']} | {sent['evictions']} | {kv['seconds']} |")
print(f"\nlargest model error: {worst:.2f} pp")
EOF
