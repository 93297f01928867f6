#!/usr/bin/env bash
# Renders a report with headless Chromium (Debian's chromium package) and saves a PNG, as docs/report.png
# was made:
#   bin/membench demo --dir /tmp/demo && scripts/screenshot-report.sh /tmp/demo/compare.html docs/report.png
# Chromium runs without network access to anything: the report is self-contained.
set -euo pipefail
html=${1:?usage: screenshot-report.sh REPORT.html OUT.png}
out=${2:?usage: screenshot-report.sh REPORT.html OUT.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
	echo "screenshot-report.sh: chromium not found (sudo apt-get install chromium)" >&2
	exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
	--disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
	--window-size=1400,${HEIGHT:-1900} --screenshot="$(realpath -m "$out")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $out"
