# Shared helpers of the bench/*.sh scripts; source it after cd'ing to the repository root and setting NAME (the
# script's name, for messages) and WORK_PREFIX. It creates $WORK (a temporary directory), kills every PID the
# script adds to PIDS on exit, and defines require, free_port, wait_port, cpu_ticks, start_memcached,
# memaslap_uniform_cnf and HZ.

WORK=$(mktemp -d "/tmp/${WORK_PREFIX:-membench-bench}.XXXXXX")
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# require PROGRAM…: fail unless each program is in PATH or /usr/sbin.
require() {
	for bin in "$@"; do
		if ! command -v "$bin" >/dev/null && [[ ! -x /usr/sbin/$bin ]]; then
			echo "$NAME: $bin not found (install it: sudo scripts/install-deps.sh)" >&2
			exit 1
		fi
	done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT, at most 10 s.
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$NAME: nothing accepts on 127.0.0.1:$1 after 10s" >&2
	exit 1
}

# cpu_ticks PID: utime+stime of the process, in clock ticks.
cpu_ticks() {
	# Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
HZ=$(getconf CLK_TCK)

# start_memcached ARGS…: starts memcached on a free loopback port with ARGS added, and sets PORT, ADDR and MC_PID
# (added to PIDS) once it accepts.
start_memcached() {
	PORT=$(free_port)
	memcached -l 127.0.0.1 -p "$PORT" -U 0 -u "$(id -un)" "$@" &
	MC_PID=$!
	PIDS+=("$MC_PID")
	wait_port "$PORT"
	ADDR=127.0.0.1:$PORT
}

# memaslap_uniform_cnf FILE: a memaslap configuration with the shape of membench's uniform preset: keys of 16 to
# 64 bytes, values of 64 to 1024, 90% get / 10% set.
memaslap_uniform_cnf() {
	cat > "$1" <<'CNF'
key
16 64 1
value
64 1024 1
cmd
0 0.1
1 0.9
CNF
}
