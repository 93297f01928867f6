#!/usr/bin/env bash
# Checks membench's miss-ratio curve against libCacheSim's LRU on an oracleGeneral trace: `membench import`,
# then `membench inspect --mrc-sizes` must give the same miss counts as libCacheSim at every size, in bytes and in
# objects. Results are in docs/WORKLOADS.md ("Checked against libCacheSim").
#
# Usage: bench/libcachesim.sh TRACE.oracleGeneral.bin [LIBCACHESIM_DIR]
#
# TRACE is a libCacheSim oracleGeneral trace; the one libCacheSim's own tests use is
# data/cloudPhysicsIO.oracleGeneral.bin in https://github.com/1a1a11a/libCacheSim (2.7 MB, 113 872 requests;
# `git clone --depth 1` the repository, or download that one file). It is third-party data: keep it out of this
# repository.
#
# LIBCACHESIM_DIR (default /tmp/libCacheSim) is a libCacheSim checkout built as its README says, into _build:
#   apt-get install -y cmake libglib2.0-dev libzstd-dev
#   cd LIBCACHESIM_DIR && mkdir -p _build && cd _build && cmake -DCMAKE_BUILD_TYPE=Release .. && make -j2 cachesim
# cachesim prints miss ratios with four decimals only, so the exact miss counts come from a 30-line driver that
# this script compiles against the same build (libCacheSim's LRU_init and cache->get, as cachesim's simulate
# calls them); cachesim's own ratio is shown beside them.
#
# SIZES_BYTES and SIZES_OBJECTS (comma-separated, plain numbers) override the sizes.
set -euo pipefail

trace=${1:?usage: bench/libcachesim.sh TRACE.oracleGeneral.bin [LIBCACHESIM_DIR]}
lcs=${2:-/tmp/libCacheSim}
build=$lcs/_build
sizes_bytes=${SIZES_BYTES:-512,4096,65536,1048576,16777216,134217728,268435456,402653184,536870912,671088640,805306368,939524096,1073741824,2147483648}
sizes_objects=${SIZES_OBJECTS:-1,10,100,1000,5000,10000,20000,40000,50000}

[[ -x $build/bin/cachesim ]] || { echo "no $build/bin/cachesim: build libCacheSim first (see the top of $0)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The driver: exact LRU miss counts, one cache per size, as cachesim runs them (no warmup, no TTL, no metadata).
cat >"$work/lrumiss.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libCacheSim.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: lrumiss TRACE bytes|objects SIZE...\n");
    return 2;
  }
  bool objects = strcmp(argv[2], "objects") == 0;
  for (int i = 3; i < argc; i++) {
    reader_init_param_t p = {.ignore_obj_size = objects};
    reader_t *r = setup_reader(argv[1], ORACLE_GENERAL_TRACE, &p);
    common_cache_params_t cp = {.cache_size = strtoull(argv[i], NULL, 10), .hashpower = 20};
    cache_t *c = LRU_init(cp, NULL);
    request_t *req = new_request();
    unsigned long n = 0, miss = 0;
    while (read_one_req(r, req) == 0) {
      n++;
      if (!c->get(c, req)) miss++;
    }
    printf("%s %lu %lu\n", argv[i], n, miss);
    free_request(req);
    c->cache_free(c);
    close_reader(r);
  }
  return 0;
}
EOF
# shellcheck disable=SC2046
gcc -O2 -w -o "$work/lrumiss" "$work/lrumiss.c" -I"$lcs/libCacheSim/include" $(pkg-config --cflags glib-2.0) \
	-Wl,--start-group $(find "$build/libCacheSim" -name '*.a') -Wl,--end-group \
	$(pkg-config --libs glib-2.0) -lzstd -lm -lpthread -lstdc++

(cd "$root" && go build -o "$work/membench" ./cmd/membench)
"$work/membench" import --format oracle-general "$trace" -o "$work/trace.mbp" 2>/dev/null

compare() { # unit sizes cachesim-flags...
	local unit=$1 sizes=$2
	shift 2
	"$work/lrumiss" "$trace" "$unit" ${sizes//,/ } >"$work/lcs.$unit" 2>/dev/null
	(cd "$work" && "$build/bin/cachesim" "$trace" oracleGeneral LRU "$sizes" --num-thread=2 "$@" 2>/dev/null) |
		grep 'cache size' | sed -E 's/.*cache size +([^,]+),.*miss ratio ([0-9.]+),.*/\1 \2/' >"$work/cachesim.$unit" || true
	"$work/membench" inspect "$work/trace.mbp" --json --mrc-unit "$unit" --mrc-sizes "$sizes" >"$work/mb.$unit.json"
	python3 - "$unit" "$work/lcs.$unit" "$work/cachesim.$unit" "$work/mb.$unit.json" <<'EOF'
import json, sys
unit, lcs, cs, mb = sys.argv[1:]
ref = [l.split() for l in open(lcs)]
ratios = [l.split()[1] for l in open(cs)]  # in the order cachesim printed them: by size
s = json.load(open(mb))
key = "cache_objects" if unit == "objects" else "cache_bytes"
got = {p[key]: p["miss_ratio"] * s["mrc_reads"] for p in s["mrc"]}
bad = 0
print(f"| {unit} | requests | libCacheSim LRU misses | cachesim miss ratio | membench misses | same |")
print("| ---: | ---: | ---: | ---: | ---: | --- |")
for i, (size, n, miss) in enumerate(ref):
    m = got.get(int(size))
    same = m is not None and abs(m - int(miss)) < 1e-6 and int(n) == s["mrc_reads"]
    bad += not same
    cr = ratios[i] if i < len(ratios) else "?"
    print(f"| {size} | {n} | {miss} | {cr} | {m:.0f} | {'yes' if same else 'NO'} |")
sys.exit(1 if bad else 0)
EOF
}

status=0
compare bytes "$sizes_bytes" || status=1
echo
compare objects "$sizes_objects" --ignore-obj-size=true || status=1
exit $status
