#!/usr/bin/env bash
# Installs the Debian packages membench's build and tests need, and only those that are missing.
#
# Idempotent: when everything is present it says so and changes nothing. As root it runs `apt-get update` once
# (only if something is missing) and installs the missing packages; as another user it prints the exact
# `sudo apt-get install` line and exits 1. It never downloads a Go toolchain: a missing `go` is an error.
#
# The memcached package may start its own server on port 11211 (and the prometheus and victoria-metrics packages
# theirs on 9090 and 8428); that is harmless, since every test starts its own servers on free loopback ports with
# temporary data directories. Nothing here stops or starts a service.
set -euo pipefail

missing=()  # Debian packages to install, in the order found
problems=() # what is missing, one line each, for the user

need() { # need PACKAGE WHAT: record that PACKAGE is needed for WHAT
	local p
	for p in "${missing[@]+"${missing[@]}"}"; do
		[[ $p == "$1" ]] && return 0
	done
	missing+=("$1")
	problems+=("  $1: $2")
}

# have_cmd reports whether a program exists, also in sbin directories that a non-root PATH often lacks.
have_cmd() {
	command -v "$1" >/dev/null 2>&1 && return 0
	local d
	for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
		[[ -x $d/$1 ]] && return 0
	done
	return 1
}

check_cmd() { # check_cmd PROGRAM PACKAGE WHY
	have_cmd "$1" || need "$2" "no $1 ($3)"
}

check_cmd memcached memcached "integration tests run a real memcached"
check_cmd tcpdump tcpdump "records the pcap test fixtures"
check_cmd tshark tshark "cross-checks the tap's decoding of captures"
check_cmd nutcracker nutcracker "twemproxy, a reference proxy to compare against"
if ! have_cmd memcslap && ! have_cmd memcaslap; then
	need libmemcached-tools "no memcslap/memcaslap (load generator for tests and benchmarks)"
fi
check_cmd gcc gcc "cgo, to link libpcap"
check_cmd systemd-analyze systemd "verifies the systemd units of the Debian package (packaging tests)"
check_cmd make make "the Makefile"
check_cmd ps procps "tests look at processes they started"
# The pool-mode SASL tests run memcached -S with a Cyrus SASL database of their own: saslpasswd2 builds it, and
# memcached loads the PLAIN mechanism and the sasldb password check as plugins.
check_cmd saslpasswd2 sasl2-bin "builds the SASL database of the memcached -S tests"
compgen -G '/usr/lib/*/sasl2/libplain.so*' >/dev/null ||
	need libsasl2-modules "no Cyrus SASL PLAIN plugin (memcached -S tests)"
compgen -G '/usr/lib/*/sasl2/libsasldb.so*' >/dev/null ||
	need libsasl2-modules-db "no Cyrus SASL sasldb plugin (memcached -S tests)"
# Metrics tests: promtool judges the /metrics text and the alert rules, a real Prometheus scrapes a proxy, and a
# real VictoriaMetrics receives replay's pushes (both started by the tests on free loopback ports).
check_cmd promtool prometheus "checks /metrics output and configs/monitoring alert rules"
check_cmd prometheus prometheus "scrapes a proxy in the metrics tests"
check_cmd victoria-metrics victoria-metrics "receives replay's metrics pushes in the metrics tests"
[[ -f /usr/include/pcap.h ]] || need libpcap-dev "no /usr/include/pcap.h (the tap links libpcap through cgo)"
# pymemcache is checked with the system Python, which is what the Debian package installs into.
if [[ ! -x /usr/bin/python3 ]]; then
	need python3 "no /usr/bin/python3 (runs the pymemcache client in integration tests)"
	need python3-pymemcache "no pymemcache for /usr/bin/python3 (a second real client in integration tests)"
elif ! /usr/bin/python3 -c 'import pymemcache' >/dev/null 2>&1; then
	need python3-pymemcache "no pymemcache for /usr/bin/python3 (a second real client in integration tests)"
fi

go_missing=0
if ! command -v go >/dev/null 2>&1; then
	go_missing=1
fi
go_error() {
	echo "install-deps: the go command is not in PATH. membench needs Go 1.26 or newer (see go.mod);" >&2
	echo "install-deps: install it from https://go.dev/dl/ and add its bin directory to PATH (this script does not download toolchains)." >&2
}

if ((${#missing[@]} == 0)); then
	if ((go_missing)); then
		go_error
		exit 1
	fi
	echo "install-deps: all dependencies are present."
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing:" >&2
	printf '%s\n' "${problems[@]}" >&2
	echo "install-deps: not root; install them with:" >&2
	echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
	((go_missing)) && go_error
	exit 1
fi

echo "install-deps: installing: ${missing[*]}"
printf '%s\n' "${problems[@]}"
for p in "${missing[@]}"; do
	if [[ $p == tshark ]]; then
		# tshark pulls in wireshark-common, which asks whether non-root users may capture; answer no, unasked.
		echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
	fi
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

if ((go_missing)); then
	go_error
	exit 1
fi
echo "install-deps: done."
