#!/usr/bin/env bash
# Builds membench's Debian package with dpkg-deb alone (no debhelper): `make deb` runs it after `make build`.
#
#   packaging/deb/build.sh BINARY OUTDIR VERSION COMMIT
#
# BINARY is a membench built with cgo (live capture needs libpcap) and stamped by the Makefile's LDFLAGS;
# VERSION and COMMIT are what it was stamped with (git describe, git rev-parse). The package holds:
#   /usr/bin/membench
#   /etc/membench/{proxy,pool,tap,replay}.toml       the examples from configs/, as conffiles
#   /lib/systemd/system/membench-{proxy,tap}.service configs/systemd, with ExecStart=/usr/bin/membench
#   /usr/lib/sysusers.d/membench.conf                the membench account
#   /usr/lib/tmpfiles.d/membench.conf                /var/lib/membench, 0700 membench
#   /usr/share/doc/membench/                         README, operations, privacy, changelog, copyright
# postinst creates the account, the state directory and /etc/membench/salt.hex (root:membench 0640); purge
# removes the salt and /var/lib/membench. Depends: the packages that hold the libraries the binary links
# (libc, libpcap), as installed on the build machine, at their installed upstream version or later.
# DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail
umask 022 # the package's directories and files are 0755 and 0644 whatever the caller's umask

if (($# != 4)); then
	echo "usage: $0 BINARY OUTDIR VERSION COMMIT" >&2
	exit 2
fi
bin=$1 outdir=$2 version=$3 commit=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
maintainer=${DEB_MAINTAINER:-membench maintainers <maintainers@membench.invalid>}

die() {
	echo "make deb: $*" >&2
	exit 1
}

for tool in dpkg-deb dpkg-query readelf gzip; do
	command -v "$tool" >/dev/null 2>&1 || die "no $tool (packages dpkg and binutils)"
done
[[ -x $bin ]] || die "no executable at $bin (run make build first)"

# A package must say what it is: refuse an unstamped build.
if [[ -z $version || $version == dev || -z $commit || $commit == unknown ]]; then
	die "cannot stamp the package: VERSION='$version' COMMIT='$commit' (not a git checkout?); run" \
		"make deb VERSION=1.2.3 COMMIT=abc1234"
fi
stamped=$("$bin" version)
[[ $stamped == "membench $version "* ]] || die "$bin says '$stamped', not version $version: build it with make build"
[[ $stamped != *"static build"* ]] || die "$bin is a static build without live capture: build it with make build"

# The Debian version: v1.2.3 -> 1.2.3; v1.2.3-4-gabc1234 (4 commits after the tag) -> 1.2.3+git4.gabc1234; no
# tag -> 0~gitYYYYMMDDhhmmss.abc1234 (commit time: later commits sort later); a dirty tree adds +dirty.
debversion() {
	local v=$1 dirty=""
	if [[ $v == *-dirty ]]; then
		v=${v%-dirty} dirty=+dirty
	fi
	v=${v#v}
	if [[ $v =~ ^([0-9][0-9A-Za-z.~+]*)-([0-9]+)-(g[0-9a-f]+)$ ]]; then
		v="${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
	elif [[ $v =~ ^[0-9a-f]{7,40}$ ]]; then
		local when
		when=$(git -C "$root" log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S "$v" 2>/dev/null) || when=""
		v="0~git${when}${when:+.}$v"
	fi
	v+=$dirty
	[[ $v =~ ^[0-9][0-9A-Za-z.~+]*$ ]] || die "cannot make a Debian version of VERSION='$1'; pass VERSION=1.2.3"
	echo "$v"
}
debver=$(debversion "$version")
arch=$(dpkg --print-architecture)

# Depends: the package of each library the binary links, found through the loader's paths (with and without
# /usr, as merged-/usr systems list either).
depends=()
while read -r lib; do
	path=$(ldd "$bin" | awk -v l="$lib" '$1 == l && $3 ~ /^\// { print $3 }')
	[[ -n $path ]] || die "ldd does not resolve $lib for $bin"
	pkg=""
	for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
		pkg=$(dpkg-query -S "$p" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n $pkg ]] && break
	done
	[[ -n $pkg ]] || die "no Debian package holds $path (needed by $bin)"
	ver=$(dpkg-query -W -f='${Version}' "$pkg:$arch" 2>/dev/null || dpkg-query -W -f='${Version}' "$pkg")
	ver=${ver#*:}   # no epoch
	ver=${ver%-*}   # upstream version only
	ver=${ver%%+*}
	dep="$pkg (>= $ver)"
	[[ " ${depends[*]-} " == *" $dep"* ]] || depends+=("$dep")
done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
deps=$(printf '%s, ' "${depends[@]}")
deps=${deps%, }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkgroot=$stage/membench
mkdir -p "$pkgroot/DEBIAN"
install -D -m 0755 "$bin" "$pkgroot/usr/bin/membench"
for c in proxy pool tap replay; do
	install -D -m 0644 "$root/configs/$c.toml" "$pkgroot/etc/membench/$c.toml"
	echo "/etc/membench/$c.toml" >>"$pkgroot/DEBIAN/conffiles"
done
for unit in "$root"/configs/systemd/*.service; do
	dst=$pkgroot/lib/systemd/system/$(basename "$unit")
	install -D -m 0644 "$unit" "$dst"
	sed -i 's|^ExecStart=/usr/local/bin/membench |ExecStart=/usr/bin/membench |' "$dst"
	grep -q '^ExecStart=/usr/bin/membench ' "$dst" || die "$unit: no ExecStart=/usr/local/bin/membench to point at /usr/bin"
done
install -D -m 0644 "$here/sysusers.conf" "$pkgroot/usr/lib/sysusers.d/membench.conf"
install -D -m 0644 "$here/tmpfiles.conf" "$pkgroot/usr/lib/tmpfiles.d/membench.conf"
doc=$pkgroot/usr/share/doc/membench
install -D -m 0644 "$root/README.md" "$doc/README.md"
install -m 0644 "$root/docs/OPERATIONS.md" "$root/docs/PRIVACY.md" "$doc/"
gzip -9n <"$root/CHANGELOG.md" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: membench
Source: https://github.com/membench/membench

Files: *
Copyright: membench authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0;
 it is also the LICENSE file of the source.
EOF
chmod 0644 "$doc/copyright"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$pkgroot/DEBIAN/"

size=$(du -sk --exclude=DEBIAN "$pkgroot" | cut -f1)
cat >"$pkgroot/DEBIAN/control" <<EOF
Package: membench
Version: $debver
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $deps
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/membench/membench
Description: record anonymized memcached traffic and replay it
 membench records what production memcached traffic looks like (commands,
 key and value sizes, popularity, TTLs, timing, latency) as an anonymized
 profile, through an inline proxy or a passive packet tap, and replays such
 a profile against a test server or cluster. Profiles hold keyed hashes of
 keys, never key or value bytes.
 .
 Built from commit $commit. The services membench-proxy and membench-tap
 are installed but not enabled.
EOF
(cd "$pkgroot" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
	>"$pkgroot/DEBIAN/md5sums"
chmod 0644 "$pkgroot/DEBIAN/md5sums" "$pkgroot/DEBIAN/control" "$pkgroot/DEBIAN/conffiles"

mkdir -p "$outdir"
out=$outdir/membench_${debver}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkgroot" "$out" >/dev/null
echo "make deb: $out (membench $version, commit $commit; Depends: $deps)"
