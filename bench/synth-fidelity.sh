#!/usr/bin/env bash
# synth-fidelity.sh: how close 'membench synth --profile' comes to its source, against the popularity-only
# baseline (bench/synthbase), on the profiles given. For each SOURCE it draws as many events as the source has
# (seed 1), runs 'membench compare --json' for model and baseline, and prints one row per metric. With --form
# aside or rw, each source is first turned into that form in front of a --size-byte LRU (bench/asideform) and
# that is the source. See docs/WORKLOADS.md, "Synthetic fidelity on real traces".
#
#   bench/synth-fidelity.sh [--form aside|rw] [--size BYTES] [--membench BIN] SOURCE.mbp...
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MEMBENCH:-}
form=
size=$((256 << 20))
while [[ $# -gt 0 ]]; do
	case $1 in
	--form) form=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--membench) bin=$2; shift 2 ;;
	*) break ;;
	esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--form aside|rw] [--size BYTES] [--membench BIN] SOURCE.mbp..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z $bin ]]; then
	go build -o "$work/membench" ./cmd/membench
	bin=$work/membench
fi
go build -o "$work/asideform" ./bench/asideform
go build -o "$work/synthbase" ./bench/synthbase
for src in "$@"; do
	name=$(basename "$src" .mbp)
	if [[ -n $form ]]; then
		"$work/asideform" -profile "$src" -mode "$form" -size "$size" -o "$work/$name-$form.mbp" >&2
		src=$work/$name-$form.mbp
		name=$name-$form
	fi
	n=$("$bin" inspect --json "$src" | jq '.events')
	"$bin" synth --profile "$src" --events "$n" --seed 1 -o "$work/$name-syn.mbp" --force >/dev/null
	"$work/synthbase" -profile "$src" -events "$n" -seed 1 -o "$work/$name-base.mbp"
	"$bin" compare --json "$src" "$work/$name-syn.mbp" >"$work/syn.json" 2>/dev/null
	"$bin" compare --json "$src" "$work/$name-base.mbp" >"$work/base.json" 2>/dev/null
	echo "== $name ($n events)"
	printf '%-18s %10s %10s\n' metric model baseline
	for m in command_mix_l1 key_size_ks value_size_ks zipf_alpha_delta mrc_mae hit_ratio_delta; do
		printf '%-18s %10s %10s\n' "$m" "$(jq -r ".$m" "$work/syn.json")" "$(jq -r ".$m" "$work/base.json")"
	done
done
