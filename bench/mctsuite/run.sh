#!/usr/bin/env bash
# Runs memcached's own test suite (t/*.t) through `membench proxy`, one prove per file with a per-file timeout,
# and prints pass/fail/hang/skip counts per mode. See bench/mctsuite/README.md for getting and building
# memcached's source. Not part of `make test`: it needs that source tree.
#
#   bench/mctsuite/run.sh MEMCACHED_SRC MEMBENCH_BIN MODES [OUT_DIR]
#   bench/mctsuite/run.sh /tmp/memcached-src /tmp/mb-head/membench direct,direct-tcp,inline,pool /tmp/mct-out
#
# MODES is a comma-separated list of:
#   direct      the suite as memcached runs it (unix socket unless a test asks for TCP); the patch is inert
#   direct-tcp  memcached on TCP, no proxy: the control for the two proxy modes
#   inline      membench proxy --upstream MEMCACHED in front of every memcached a test starts
#   pool        membench proxy --config with a [pool] of that one memcached
# Environment:
#   TIMEOUT=90             seconds per test file; a file still running then is counted as a hang
#   FILES="t/a.t t/b.t"    run only these (paths relative to MEMCACHED_SRC); default t/*.t
#   MEMCACHED_BIN=PATH     test this memcached binary instead of the tree's memcached-debug
#   MEMBENCH_PROXY_ARGS    extra flags for membench proxy, e.g. "--max-item-size 4194304"
#
# For each mode, OUT_DIR/MODE/ receives results.tsv (file, result, seconds), logs/FILE.txt (prove -v output) and
# proxy/FILE/ (the proxies' configs, logs, summaries and recordings), and recordings.tsv: for every recording,
# the events the proxy said it wrote, the events `membench inspect --json` reads back, and a verdict.
# The source tree is copied to OUT_DIR/src (without .git) and patched there; MEMCACHED_SRC is not changed.
set -euo pipefail

if [[ $# -lt 3 ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
SRC=$(realpath "$1")
MEMBENCH=$(realpath "$2")
IFS=, read -r -a MODES <<<"$3"
OUT=${4:-$(mktemp -d /tmp/mctsuite.XXXXXX)}
TIMEOUT=${TIMEOUT:-90}
PATCH=$(realpath "$(dirname "$0")/MemcachedTest.pm.patch")

for m in "${MODES[@]}"; do
	case $m in direct | direct-tcp | inline | pool) ;; *)
		echo "run.sh: unknown mode $m (modes: direct, direct-tcp, inline, pool)" >&2
		exit 2
		;;
	esac
done
[[ -x $SRC/memcached-debug && -x $SRC/timedrun ]] || {
	echo "run.sh: $SRC/memcached-debug or timedrun missing: build memcached first (see README.md)" >&2
	exit 1
}
command -v prove >/dev/null || { echo "run.sh: prove not found (apt-get install perl)" >&2; exit 1; }
"$MEMBENCH" version >/dev/null 2>&1 || { echo "run.sh: $MEMBENCH does not run" >&2; exit 1; }

mkdir -p "$OUT"
OUT=$(realpath "$OUT")
rm -rf "$OUT/src"
mkdir "$OUT/src"
tar -C "$SRC" --exclude=.git -cf - . | tar -C "$OUT/src" -xf -
patch -s -d "$OUT/src" -p1 <"$PATCH"
if [[ -n ${MEMCACHED_BIN:-} ]]; then
	ln -sf "$(realpath "$MEMCACHED_BIN")" "$OUT/src/memcached-debug"
fi
SALT=$OUT/salt.hex
[[ -e $SALT ]] || "$MEMBENCH" salt -o "$SALT" >/dev/null

if [[ -n ${FILES:-} ]]; then
	read -r -a TESTS <<<"$FILES"
else
	TESTS=()
	for f in "$OUT"/src/t/*.t; do TESTS+=("t/${f##*/}"); done
fi

# alive PID…: prints the PIDs that still run.
alive() {
	for pid in "$@"; do
		if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
	done
}

# reap GROUP DIR: after a test file, gives its proxies up to 5 s to finish their recordings (they were sent
# SIGINT by the test's handles, or SIGTERM by timeout), then stops what is left of the file's process group
# (timeout's group: prove, perl, timedrun, memcached, membench) and any proxy whose pid file is in DIR.
reap() {
	local group=$1 dir=$2 pids=() left
	for f in "$dir"/*.pid; do
		[[ -e $f ]] && pids+=("$(cat "$f")")
	done
	for _ in $(seq 50); do
		left=$(alive "${pids[@]}")
		[[ -z $left ]] && break
		sleep 0.1
	done
	kill -INT -- "-$group" 2>/dev/null || true
	for pid in $(alive "${pids[@]}"); do kill -INT "$pid" 2>/dev/null || true; done
	sleep 1
	kill -KILL -- "-$group" 2>/dev/null || true
	for pid in $(alive "${pids[@]}"); do kill -KILL "$pid" 2>/dev/null || true; done
}

# check_recordings DIR: one recordings.tsv line per proxy of the mode.
check_recordings() {
	local out said got verdict
	for out in "$1"/proxy/*/*.out; do
		[[ -e $out ]] || continue
		local mbp=${out%.out}.mbp
		said=$(sed -n 's/^membench proxy: \([0-9]*\) events recorded.*/\1/p' "$out")
		got=$("$MEMBENCH" inspect "$mbp" --json 2>/dev/null | grep -o '"events": *[0-9]*' | head -1 | grep -o '[0-9]*$' || true)
		if grep -q 'cannot start proxy' "${out%.out}.log"; then
			verdict=not-started # bind failed; the patch started another proxy
		elif [[ -z $said ]]; then
			verdict=no-summary # the proxy did not finish (killed)
		elif [[ -z $got ]]; then
			verdict=unreadable
		elif [[ $said == "$got" ]]; then
			verdict=ok
		else
			verdict=mismatch
		fi
		printf '%s\t%s\t%s\t%s\n' "${mbp#"$1"/proxy/}" "${said:--}" "${got:--}" "$verdict"
	done
}

SUMMARY=()
for mode in "${MODES[@]}"; do
	dir=$OUT/$mode
	rm -rf "$dir"
	mkdir -p "$dir/logs" "$dir/proxy"
	: >"$dir/results.tsv"
	declare -A count=([pass]=0 [fail]=0 [hang]=0 [skip]=0)
	for t in "${TESTS[@]}"; do
		name=${t##*/}
		pdir=$dir/proxy/$name
		mkdir -p "$pdir"
		env_mode=()
		[[ $mode != direct ]] && env_mode=(MEMBENCH_PROXY_MODE="$mode")
		# TAP::Formatter::Console: prove's default when not on a terminal holds a file's output until it ends,
		# so a file killed by the timeout would leave an empty log.
		start=$SECONDS
		set +e
		(cd "$OUT/src" && exec env "${env_mode[@]}" MEMBENCH_BIN="$MEMBENCH" MEMBENCH_OUT="$pdir" \
			MEMBENCH_SALT="$SALT" timeout -k 5 "$TIMEOUT" prove -v --formatter TAP::Formatter::Console "$t") >"$dir/logs/$name.txt" 2>&1 &
		group=$!
		wait "$group"
		rc=$?
		set -e
		reap "$group" "$pdir"
		log=$dir/logs/$name.txt
		if [[ $rc == 124 || $rc == 137 ]]; then
			result=hang
		elif grep -q '^Result: NOTESTS' "$log"; then # "1..0 # SKIP reason"
			result=skip
		elif [[ $rc == 0 ]] && grep -q '^Result: PASS' "$log"; then
			result=pass
		else
			result=fail
		fi
		count[$result]=$((count[$result] + 1))
		printf '%s\t%s\t%s\n' "$name" "$result" $((SECONDS - start)) | tee -a "$dir/results.tsv" >&2
		rmdir "$pdir" 2>/dev/null || true
	done
	check_recordings "$dir" >"$dir/recordings.tsv"
	rec_total=$(awk -F'\t' '$4 != "not-started"' "$dir/recordings.tsv" | wc -l)
	rec_ok=$(awk -F'\t' '$4 == "ok"' "$dir/recordings.tsv" | wc -l)
	SUMMARY+=("$(printf '%-11s %5d %5d %5d %5d %5d   %d of %d' "$mode" "${count[pass]}" "${count[fail]}" \
		"${count[hang]}" "${count[skip]}" "${#TESTS[@]}" "$rec_ok" "$rec_total")")
	unset count
done

echo "memcached $("$OUT/src/memcached-debug" -V 2>&1 | awk '{ print $2 }'), membench $("$MEMBENCH" version 2>&1 | head -1), timeout ${TIMEOUT}s; results in $OUT"
printf '%-11s %5s %5s %5s %5s %5s   %s\n' mode pass fail hang skip files "recordings read back (events match)"
printf '%s\n' "${SUMMARY[@]}"
