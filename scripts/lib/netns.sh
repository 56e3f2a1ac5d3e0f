#!/usr/bin/env bash
# The part of scripts/test.sh that runs inside the new network namespace:
# it brings up loopback, starts PostgreSQL and fauxqs on 127.0.0.1, runs
# go test with the servers' addresses in the environment, and stops every
# process it started before it exits with go test's status.
set -euo pipefail

if [[ ${TESTSH_INSIDE:-} != 1 ]]; then
	printf 'netns.sh is run by scripts/test.sh; run ./scripts/test.sh instead\n' >&2
	exit 2
fi

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PGBIN=$TESTSH_PGBIN
TMP_ROOT=""
PG_ROOT=""
PG_DATA=""
FAUXQS_PID=""
GO_PID=""
TEE_PID=""
ORIG_STDOUT=""
exec {ORIG_STDERR}>&2
CLEANED=0

# fauxqs's own command line turns its request log on whatever the
# environment says, so start it through its module API instead.
FAUXQS_MAIN='import { startFauxqs } from "fauxqs"; await startFauxqs();'

# stop_pid stops a process: SIGTERM, then SIGKILL if it is still there
# after ten seconds.
# shellcheck disable=SC2317 # called from the traps
stop_pid() {
	local pid=$1 i

	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# stop_go_test interrupts a running go test. go test runs in a process group
# of its own, whose id is its PID; SIGINT to that group stops the test
# binaries the way Ctrl-C does, and SIGKILL follows after ten seconds.
# shellcheck disable=SC2317 # called from the traps
stop_go_test() {
	local i

	[[ -n $GO_PID ]] || return 0
	kill -INT -- "-${GO_PID}" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-${GO_PID}" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-${GO_PID}" 2>/dev/null
	wait "$GO_PID" 2>/dev/null
	GO_PID=""
}

# on_signal stops a running go test and exits with the given status; the
# exit trap then stops the servers.
# shellcheck disable=SC2317 # called from the traps
on_signal() {
	# The trap may run inside a redirected command: write to the saved stderr.
	warn "interrupted: stopping go test and the test servers" 2>&"$ORIG_STDERR"
	stop_go_test || true
	exit "$1"
}

# as_postgres runs a PostgreSQL program as the postgres user, from a
# directory that user can read.
as_postgres() {
	local prog=$1
	shift
	(
		exec {ORIG_STDERR}>&-
		cd "$PG_ROOT"
		exec runuser -u postgres -- env HOME="$PG_ROOT" LC_ALL=C "${PGBIN}/${prog}" "$@"
	)
}

# cleanup stops fauxqs and PostgreSQL and removes the temporary directory.
# It runs once, on any exit.
# shellcheck disable=SC2317 # called from the exit trap
cleanup() {
	local pg_pid=""
	((CLEANED)) && return 0
	CLEANED=1
	set +e

	stop_go_test
	if [[ -n $FAUXQS_PID ]]; then
		stop_pid "$FAUXQS_PID"
		wait "$FAUXQS_PID" 2>/dev/null
	fi

	if [[ -n $PG_DATA && -f ${PG_DATA}/postmaster.pid ]]; then
		read -r pg_pid <"${PG_DATA}/postmaster.pid"
		as_postgres pg_ctl -D "$PG_DATA" -m fast -w -t 20 stop >/dev/null 2>&1
		if [[ $pg_pid =~ ^[0-9]+$ ]] && kill -0 "$pg_pid" 2>/dev/null; then
			stop_pid "$pg_pid"
		fi
	fi

	if [[ -n $TEE_PID ]]; then
		exec >&"$ORIG_STDOUT"
		wait "$TEE_PID" 2>/dev/null
	fi

	if [[ -n $TMP_ROOT ]]; then
		rm -rf "$TMP_ROOT"
	fi
}

# check_loopback_only brings loopback up and makes sure it is the only
# interface, since fauxqs listens on every address.
check_loopback_only() {
	local -a links

	ip link set lo up
	mapfile -t links < <(ip -o link show | awk -F': ' '{ print $2 }')
	if [[ ${#links[@]} -ne 1 || ${links[0]} != lo ]]; then
		die "the test namespace has interfaces other than lo: ${links[*]}"
	fi
}

# start_postgres makes a throwaway cluster in the temporary directory, starts
# it on 127.0.0.1 and creates the test database.
start_postgres() {
	local i

	PG_ROOT="${TMP_ROOT}/postgres"
	PG_DATA="${PG_ROOT}/data"
	mkdir -m 0700 "$PG_ROOT"
	chown postgres:postgres "$PG_ROOT"

	run_logged "${TMP_ROOT}/initdb.log" as_postgres initdb -D "$PG_DATA" \
		-U postgres -A trust -E UTF8 --locale=C --no-sync ||
		die "initdb failed"

	cat >>"${PG_DATA}/postgresql.conf" <<-EOF

		# Settings of scripts/test.sh: loopback only, and speed over durability.
		listen_addresses = '127.0.0.1'
		port = ${PG_PORT}
		unix_socket_directories = '${PG_ROOT}'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF

	if ! as_postgres pg_ctl -D "$PG_DATA" -l "${PG_ROOT}/server.log" -w -t 60 -s \
		start >/dev/null; then
		cat "${PG_ROOT}/server.log" >&2
		die "PostgreSQL did not start"
	fi

	for ((i = 0; i < 100; i++)); do
		"${PGBIN}/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
		sleep 0.1
	done
	"${PGBIN}/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
		die "PostgreSQL is not ready on 127.0.0.1:${PG_PORT}"

	run_logged "${TMP_ROOT}/createdb.log" "${PGBIN}/psql" -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
		-c "CREATE DATABASE ${PG_DATABASE}" ||
		die "could not create database ${PG_DATABASE}"
}

# sqs_healthy reports whether fauxqs answers its health check.
sqs_healthy() {
	(
		local line=""
		exec 3<>"/dev/tcp/127.0.0.1/${SQS_PORT}"
		printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 5 line <&3
		[[ $line == "HTTP/1."?" 200"* ]]
	) 2>/dev/null
}

# start_fauxqs starts the SQS emulator in the background and waits until it
# answers.
start_fauxqs() {
	local log="${TMP_ROOT}/fauxqs.log" i

	(
		exec {ORIG_STDERR}>&-
		cd "$TESTSH_TOOLS"
		unset FAUXQS_HOST FAUXQS_INIT FAUXQS_DEFAULT_REGION
		export FAUXQS_PORT="$SQS_PORT" FAUXQS_LOGGER=false
		# A session of its own keeps a Ctrl-C meant for the tests away from it;
		# the exit trap stops it.
		exec setsid "$TESTSH_NODE" --disable-warning=ExperimentalWarning \
			--input-type=module -e "$FAUXQS_MAIN"
	) >"$log" 2>&1 &
	FAUXQS_PID=$!

	for ((i = 0; i < 300; i++)); do
		sqs_healthy && return 0
		if ! kill -0 "$FAUXQS_PID" 2>/dev/null; then
			cat "$log" >&2
			die "fauxqs exited before it answered"
		fi
		sleep 0.1
	done
	cat "$log" >&2
	die "fauxqs did not answer on 127.0.0.1:${SQS_PORT} within 30s"
}

# PKGS, FLAGS and TAIL hold the command line split for go test: package
# patterns, flags, and whatever follows -args.
PKGS=()
FLAGS=()
TAIL=()

# split_args sorts the command line into PKGS, FLAGS and TAIL.
split_args() {
	local module arg
	module=$(go list -m)

	while (($# > 0)); do
		arg=$1
		shift
		case $arg in
		-args | --args)
			TAIL=("$arg" "$@")
			break
			;;
		. | ./* | .. | ../* | "$module" | "$module"/*) PKGS+=("$arg") ;;
		*) FLAGS+=("$arg") ;;
		esac
	done
}

# GO_LOG collects what the script prints from the first go test on, so that
# the summary can count packages.
GO_LOG=""

# log_stdout copies standard output into GO_LOG from now on.
log_stdout() {
	GO_LOG="${TMP_ROOT}/go-test.log"
	exec {ORIG_STDOUT}>&1
	# tee ignores the signals, so that what the traps print still shows.
	exec > >(
		trap '' INT TERM HUP
		exec tee "$GO_LOG"
	)
	TEE_PID=$!
}

# go_test runs go test in the background and in a session of its own, so
# that a signal reaches the trap at once and the trap can stop go test with
# all its children; it returns go test's status.
go_test() {
	local rc=0

	printf '==> go test %s\n' "$*"
	setsid --wait go test "$@" 2>&1 {ORIG_STDOUT}>&- {ORIG_STDERR}>&- &
	GO_PID=$!
	wait "$GO_PID" || rc=$?
	GO_PID=""
	return "$rc"
}

# count_passed prints how many package runs in the go test log passed
# having run at least one test.
count_passed() {
	grep -E '^ok[[:space:]]' "$GO_LOG" | grep -cv '\[no tests to run\]' || true
}

# count_failed prints how many package runs in the go test log failed.
count_failed() {
	grep -cE '^FAIL[[:space:]]+[^[:space:]]' "$GO_LOG" || true
}

main() {
	local start rc=0 race_rc=0 race_cc named_pkgs result
	local -a race_pkgs race_list

	start=$(now_us)
	# Connection settings from the caller's environment must not reach psql
	# or the drivers under test.
	unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE \
		PGSSLMODE PGOPTIONS PGPASSFILE
	check_loopback_only
	TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/domainevents-test.XXXXXX")
	chmod 0755 "$TMP_ROOT"
	trap cleanup EXIT
	trap 'on_signal 130' INT
	trap 'on_signal 143' TERM
	trap 'on_signal 129' HUP

	start_postgres
	start_fauxqs
	phase_done servers ok "$start" \
		"PostgreSQL on 127.0.0.1:${PG_PORT}, fauxqs on 127.0.0.1:${SQS_PORT}, only lo up"

	EVENTS_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:${PG_PORT}/${PG_DATABASE}"
	export EVENTS_TEST_POSTGRES_DSN="${EVENTS_TEST_POSTGRES_DSN}?sslmode=disable"
	export EVENTS_TEST_SQS_ENDPOINT="http://127.0.0.1:${SQS_PORT}"
	export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=test
	export AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
	# Every module was downloaded before entering the namespace: no proxy here,
	# and -mod=mod lets go fix up go.mod and go.sum from the module cache.
	export GOFLAGS="-mod=mod${GOFLAGS:+ ${GOFLAGS}}" GOPROXY=off
	log_stdout

	split_args "$@"
	named_pkgs=${#PKGS[@]}
	if ((named_pkgs == 0)); then
		PKGS=(./...)
	fi

	start=$(now_us)
	go_test -count=1 -timeout 20m "${FLAGS[@]}" "${PKGS[@]}" "${TAIL[@]}" || rc=$?
	if ((rc == 0)); then
		phase_done test ok "$start" "packages with tests passed: $(count_passed)"
	else
		phase_done test "FAILED (status ${rc})" "$start"
	fi

	start=$(now_us)
	if [[ -n ${RACE_PKGS+set} ]]; then
		read -ra race_pkgs <<<"$RACE_PKGS"
	elif ((named_pkgs > 0)); then
		race_pkgs=("${PKGS[@]}")
	else
		read -ra race_pkgs <<<"$DEFAULT_RACE_PKGS"
	fi
	race_list=()
	if ((${#race_pkgs[@]} > 0)); then
		mapfile -t race_list < <(go list -e "${race_pkgs[@]}" 2>/dev/null)
	fi
	race_cc=$(go env CC)

	if ((rc != 0)); then
		phase_done race skipped "$start" "the plain run failed"
	elif ((${#race_list[@]} == 0)); then
		if ((${#race_pkgs[@]} == 0)); then
			phase_done race skipped "$start" "RACE_PKGS is empty"
		else
			phase_done race skipped "$start" "no package matches ${race_pkgs[*]}"
		fi
	elif [[ $(go env CGO_ENABLED) != 1 ]] || ! command -v "${race_cc%% *}" >/dev/null; then
		phase_done race skipped "$start" "-race needs cgo and a C compiler (${race_cc:-none})"
	else
		go_test -race -count=1 -timeout 20m "${FLAGS[@]}" "${race_list[@]}" "${TAIL[@]}" ||
			race_rc=$?
		if ((race_rc == 0)); then
			phase_done race ok "$start" "packages: ${#race_list[@]}"
		else
			phase_done race "FAILED (status ${race_rc})" "$start"
		fi
	fi

	if ((rc == 0)); then
		rc=$race_rc
	fi
	result=ok
	if ((rc != 0)); then
		result="FAILED (status ${rc})"
	fi
	printf '==> total: %s in %s\n' "$result" "$(since "$TESTSH_START_US")"
	printf 'packages: %d passed, %d failed\n' "$(count_passed)" "$(count_failed)"
	exit "$rc"
}

main "$@"
