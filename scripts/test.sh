#!/usr/bin/env bash
# Runs every test of the module against real servers.
#
# Usage: ./scripts/test.sh [go test flags] [packages]
#
# It installs what is missing (PostgreSQL, iproute2, util-linux and npm from
# apt; Node.js and fauxqs from npm into a cache directory), builds and vets
# the module while the network is still there, then enters a new network
# namespace that has only loopback. There it starts a throwaway PostgreSQL
# cluster and the fauxqs SQS emulator, runs go test (and go test -race on
# RACE_PKGS), stops both servers and exits with go test's status.
#
# Arguments go to go test: flags as they are, and package patterns written
# as ./dir, ./dir/... or an import path of this module. Without a package
# pattern it tests ./...
#
# Environment:
#   RACE_PKGS                packages for the -race run; empty skips it.
#                            Defaults to the packages named on the command
#                            line, else to the packages that hold hooks,
#                            middleware and workers.
#   DOMAINEVENTS_TEST_CACHE  where Node.js and fauxqs are installed.
#                            Defaults to $XDG_CACHE_HOME/domainevents-test
#                            or ~/.cache/domainevents-test.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "${SCRIPT_DIR}/.." && pwd)

# shellcheck source=scripts/lib/common.sh
source "${SCRIPT_DIR}/lib/common.sh"
# shellcheck source=scripts/lib/deps.sh
source "${SCRIPT_DIR}/lib/deps.sh"

BUILD_TMP=""

# cleanup removes what this part of the script made before it hands over
# to the namespace.
cleanup() {
	cleanup_deps
	if [[ -n $BUILD_TMP ]]; then
		rm -rf "$BUILD_TMP"
		BUILD_TMP=""
	fi
}

# setup_phase installs whatever is missing and checks that a network
# namespace can be made.
setup_phase() {
	local start node pg_version
	start=$(now_us)

	ensure_system_packages
	ensure_postgres_user
	ensure_node_tools
	check_netns

	node="$(tools_dir)/node_modules/$(node_package)/bin/node"
	pg_version=$("${PGBIN}/postgres" --version | awk '{ print $3 }')
	phase_done setup ok "$start" \
		"PostgreSQL ${pg_version}, Node.js $("$node" --version), fauxqs ${FAUXQS_VERSION}"
}

# build_step runs one command of the build phase and stops the script with
# the command's status when it fails.
build_step() {
	local start=$1 rc=0
	shift

	run_logged "${BUILD_TMP}/step.log" "$@" || rc=$?
	if ((rc != 0)); then
		phase_done build "FAILED (status ${rc})" "$start" "$*"
		exit "$rc"
	fi
}

# build_phase fetches modules and compiles everything, test binaries
# included, so that nothing needs the network inside the namespace.
build_phase() {
	local start
	start=$(now_us)
	BUILD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/domainevents-build.XXXXXX")

	build_step "$start" go mod download
	build_step "$start" go build ./...
	build_step "$start" go vet ./...
	# -exec true links every test binary without running it, so no test
	# (nor TestMain) runs outside the namespace.
	build_step "$start" go test -count=1 -run XXX_NONE -exec true ./...

	rm -rf "$BUILD_TMP"
	BUILD_TMP=""
	phase_done build ok "$start" "go mod download, go build, go vet, test binaries"
}

main() {
	local start
	start=$(now_us)

	require_root
	ensure_env
	cd "$REPO_DIR"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	setup_phase
	build_phase

	cleanup
	trap - EXIT INT TERM
	export TESTSH_INSIDE=1 TESTSH_START_US="$start" TESTSH_PGBIN="$PGBIN"
	TESTSH_TOOLS=$(tools_dir)
	TESTSH_NODE="${TESTSH_TOOLS}/node_modules/$(node_package)/bin/node"
	export TESTSH_TOOLS TESTSH_NODE
	exec unshare --net -- bash "${SCRIPT_DIR}/lib/netns.sh" "$@"
}

main "$@"
