# shellcheck shell=bash
#
# scripts/lib/services.sh — start throw-away Redis and MinIO servers for tests
# and benchmarks. Source it; do not run it.
#
#   source scripts/lib/services.sh
#   ensure_redis      # install redis-server from Debian's packages if missing
#   ensure_minio      # build the pinned MinIO server into the cache if missing
#   start_services    # start both on free 127.0.0.1 ports, export HUB_TEST_*,
#                     # and stop them (and delete their data) on exit
#
# Knobs (environment):
#   LICENSEHUB_CACHE  where built tools live (default ~/.cache/licensehub);
#                     the MinIO binary goes to $LICENSEHUB_CACHE/bin/minio
#   MINIO_BIN         use this MinIO binary instead of the cached build
#
# After start_services the tests find the servers through (see
# internal/testenv/testenv.go):
#   HUB_TEST_REDIS_URL, HUB_TEST_MINIO_ENDPOINT, HUB_TEST_MINIO_ACCESS_KEY,
#   HUB_TEST_MINIO_SECRET_KEY, HUB_TEST_REQUIRE_BACKENDS=1
# and the scripts find the servers' scratch folder (logs) in
# LICENSEHUB_SERVICES_DIR. (No other HUB_* variable may be exported: the hub's
# config rejects unknown HUB_* variables, all but HUB_TEST_*.)

# The one MinIO server version the project tests against. Bump it here only.
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

LICENSEHUB_CACHE="${LICENSEHUB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/licensehub}"

# Seconds to wait for each server to answer before giving up.
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-10}"
MINIO_START_TIMEOUT="${MINIO_START_TIMEOUT:-60}"

# State of the running servers (filled in by start_services).
LICENSEHUB_SERVICES_DIR=""
_redis_pid=""
_minio_pid=""

# ---------------------------------------------------------------------------
# Small helpers

# say MESSAGE... — progress line on stderr, so it never mixes into captured
# command output.
say() { printf '==> %s\n' "$*" >&2; }

# die MESSAGE... — print an error and leave the script (the EXIT trap, if
# start_services set it, still stops the servers).
die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# as_root CMD... — run CMD as root: directly when we are root, through sudo
# when it exists, otherwise fail.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run '$*' (not root, and no sudo)"
	fi
}

# ---------------------------------------------------------------------------
# Installing the servers

# ensure_redis — make sure redis-server is on PATH, installing Debian's
# package when it is not.
ensure_redis() { ensure_debian_commands redis-server:redis-server; }

# ensure_debian_commands CMD:PACKAGE... — install from Debian's packages
# every command that is missing (the tests need redis-server, and jq and
# openssl for the signature interoperability tests).
ensure_debian_commands() {
	local want=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
	done
	((${#want[@]} == 0)) && return 0
	command -v apt-get >/dev/null 2>&1 ||
		die "${want[*]} not installed and there is no apt-get to install them"

	say "installing Debian packages: ${want[*]}"
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}")
	if ! as_root "${apt[@]}"; then
		# The package lists may be missing or stale: refresh them and retry.
		say "apt-get install failed: running apt-get update and retrying"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update ||
			die "apt-get update failed"
		as_root "${apt[@]}" || die "apt-get install ${want[*]} failed"
	fi
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 ||
			die "${pair%%:*} is still not on PATH after installing ${pair#*:}"
	done
}

# _minio_build_version BIN — the minio module version BIN was built from
# (empty when it cannot be told).
_minio_build_version() {
	go version -m "$1" 2>/dev/null |
		awk -v mod="$MINIO_MODULE" '$1 == "mod" && $2 == mod { print $3; exit }'
}

# ensure_minio — make sure the pinned MinIO server binary exists; sets
# MINIO_BIN and puts the cache's bin folder first on PATH.
ensure_minio() {
	if [[ -n ${MINIO_BIN:-} ]]; then
		[[ -x $MINIO_BIN ]] || die "MINIO_BIN=$MINIO_BIN is not an executable file"
		return 0
	fi

	local bindir="$LICENSEHUB_CACHE/bin"
	local bin="$bindir/minio"
	export PATH="$bindir:$PATH"

	# Already built, and from the pinned version? Then nothing to do.
	if [[ -x $bin && $(_minio_build_version "$bin") == "$MINIO_VERSION" ]]; then
		MINIO_BIN="$bin"
		return 0
	fi

	command -v go >/dev/null 2>&1 || die "go is not on PATH: cannot build MinIO"
	mkdir -p "$bindir"

	# Several checkouts may share the cache: let only one of them build at a
	# time (the others wait, then find the binary ready).
	local lock_fd
	if command -v flock >/dev/null 2>&1; then
		exec {lock_fd}>"$bindir/.minio.lock"
		flock "$lock_fd"
	fi

	if [[ -x $bin && $(_minio_build_version "$bin") == "$MINIO_VERSION" ]]; then
		say "MinIO was built by another process meanwhile: $bin"
	else
		if [[ -e $bin ]]; then
			# go install refuses to overwrite a file that is not a Go binary.
			say "$bin is not MinIO $MINIO_VERSION: rebuilding it"
			rm -f -- "$bin"
		fi
		say "building the MinIO server $MINIO_VERSION into $bindir"
		say "(a one-time build: it takes about 4 minutes on 2 cores; later runs reuse it)"
		if ! GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "$MINIO_MODULE@$MINIO_VERSION"; then
			die "building MinIO failed (go install $MINIO_MODULE@$MINIO_VERSION)"
		fi
	fi
	if [[ -n ${lock_fd:-} ]]; then exec {lock_fd}>&-; fi

	[[ -x $bin ]] || die "go install succeeded but $bin is missing"
	MINIO_BIN="$bin"
}

# ---------------------------------------------------------------------------
# Ports and readiness probes

# free_port — print a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
		return
	fi
	# Fallback: random high ports until one refuses connections.
	local port tries
	for ((tries = 0; tries < 100; tries++)); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "could not find a free TCP port"
}

# _redis_ping PORT — succeed when Redis on PORT answers PONG.
_redis_ping() {
	local port=$1 reply
	if command -v redis-cli >/dev/null 2>&1; then
		reply=$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) || return 1
	else
		# Speak the inline protocol by hand over bash's /dev/tcp.
		reply=$(
			exec 2>/dev/null # no "connection refused" noise while waiting
			exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
			printf 'PING\r\n' >&3
			IFS= read -r -t 2 line <&3 || exit 1
			printf '%s' "${line%$'\r'}"
		) || return 1
	fi
	[[ $reply == PONG || $reply == +PONG ]]
}

# _minio_ready PORT — succeed when MinIO on PORT reports itself ready.
_minio_ready() {
	local port=$1 status
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null
		return
	fi
	status=$(
		exec 2>/dev/null # no "connection refused" noise while waiting
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'GET /minio/health/ready HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$port" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		printf '%s' "$line"
	) || return 1
	[[ $status == "HTTP/1."[01]" 200"* ]]
}

# _wait_for NAME PID TIMEOUT LOG PROBE ARGS... — poll PROBE ARGS every 0.2 s
# until it succeeds; fail (printing LOG's tail) when the process PID dies or
# TIMEOUT seconds pass.
_wait_for() {
	local name=$1 pid=$2 timeout=$3 log=$4
	shift 4
	local deadline=$((SECONDS + timeout))
	while ! "$@"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			_start_failed "$name" "$log" "it exited before answering"
		fi
		if ((SECONDS >= deadline)); then
			_start_failed "$name" "$log" "it did not answer within ${timeout}s"
		fi
		sleep 0.2
	done
}

# _start_failed NAME LOG REASON — report a server that did not come up and
# leave (the EXIT trap stops whatever did start).
_start_failed() {
	local name=$1 log=$2 reason=$3
	{
		printf 'ERROR: %s failed to start: %s\n' "$name" "$reason"
		printf -- '---- last lines of %s ----\n' "$log"
		tail -n 40 "$log" 2>/dev/null || echo "(no log)"
		printf -- '---- end of %s ----\n' "$log"
	} >&2
	exit 1
}

# _random_hex N — N random hex digits.
_random_hex() {
	od -An -N"$(((${1} + 1) / 2))" -tx1 /dev/urandom | tr -d ' \n' | cut -c1-"$1"
}

# ---------------------------------------------------------------------------
# Starting and stopping

# start_services — start Redis and MinIO on free loopback ports in a fresh
# temp folder, wait until both answer, export the HUB_TEST_* variables, and
# arrange for stop_services to run however the script ends. It owns the EXIT,
# INT and TERM traps: a caller that needs its own clean-up calls
# stop_services from it.
start_services() {
	[[ -z $LICENSEHUB_SERVICES_DIR ]] || die "start_services: services already started"
	local minio=${MINIO_BIN:-minio}
	command -v redis-server >/dev/null 2>&1 || die "redis-server not on PATH (call ensure_redis)"
	command -v "$minio" >/dev/null 2>&1 || die "MinIO binary not found (call ensure_minio)"

	# Clean up on every way out. INT/TERM leave through exit, so the EXIT
	# trap runs exactly once and the exit status tells how we ended.
	trap stop_services EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	LICENSEHUB_SERVICES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/licensehub-services.XXXXXX")
	export LICENSEHUB_SERVICES_DIR

	# Three distinct free ports: Redis, MinIO's API, MinIO's console.
	local redis_port minio_port console_port
	redis_port=$(free_port)
	minio_port=$(free_port)
	while [[ $minio_port == "$redis_port" ]]; do minio_port=$(free_port); done
	console_port=$(free_port)
	while [[ $console_port == "$redis_port" || $console_port == "$minio_port" ]]; do
		console_port=$(free_port)
	done

	# Redis: in-memory only, in the foreground of a background job.
	local redis_log="$LICENSEHUB_SERVICES_DIR/redis.log"
	redis-server --bind 127.0.0.1 --port "$redis_port" \
		--save '' --appendonly no --dir "$LICENSEHUB_SERVICES_DIR" \
		--daemonize no --logfile '' >"$redis_log" 2>&1 &
	_redis_pid=$!

	# MinIO: one drive in the temp folder, throw-away credentials, no web
	# console, no update checks.
	local minio_log="$LICENSEHUB_SERVICES_DIR/minio.log"
	local access_key secret_key
	access_key="hubtest$(_random_hex 8)"
	secret_key="$(_random_hex 32)"
	mkdir -p "$LICENSEHUB_SERVICES_DIR/minio"
	MINIO_ROOT_USER="$access_key" \
		MINIO_ROOT_PASSWORD="$secret_key" \
		MINIO_BROWSER=off \
		MINIO_UPDATE=off \
		"$minio" server --address "127.0.0.1:$minio_port" \
		--console-address "127.0.0.1:$console_port" \
		"$LICENSEHUB_SERVICES_DIR/minio" >"$minio_log" 2>&1 &
	_minio_pid=$!

	_wait_for Redis "$_redis_pid" "$REDIS_START_TIMEOUT" "$redis_log" _redis_ping "$redis_port"
	_wait_for MinIO "$_minio_pid" "$MINIO_START_TIMEOUT" "$minio_log" _minio_ready "$minio_port"

	export HUB_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
	export HUB_TEST_MINIO_ENDPOINT="127.0.0.1:$minio_port"
	export HUB_TEST_MINIO_ACCESS_KEY="$access_key"
	export HUB_TEST_MINIO_SECRET_KEY="$secret_key"
	export HUB_TEST_REQUIRE_BACKENDS=1
}

# _stop_pids PID... — TERM the processes, KILL those still there after 5 s,
# and reap them.
_stop_pids() {
	local pid alive i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "$@"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "$@"; do
		if kill -0 "$pid" 2>/dev/null; then
			say "process $pid ignored SIGTERM for 5s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

# stop_services — stop both servers and delete their temp folder. Safe to
# call more than once; keeps the exit status it was called with.
stop_services() {
	local rc=$?
	# Let nothing interrupt the clean-up half-way.
	trap '' INT TERM
	trap - EXIT
	local pids=()
	if [[ -n $_redis_pid ]]; then pids+=("$_redis_pid"); fi
	if [[ -n $_minio_pid ]]; then pids+=("$_minio_pid"); fi
	if ((${#pids[@]})); then _stop_pids "${pids[@]}"; fi
	_redis_pid=""
	_minio_pid=""
	if [[ -n $LICENSEHUB_SERVICES_DIR && -d $LICENSEHUB_SERVICES_DIR ]]; then
		rm -rf -- "$LICENSEHUB_SERVICES_DIR"
	fi
	LICENSEHUB_SERVICES_DIR=""
	trap - INT TERM
	return "$rc"
}
