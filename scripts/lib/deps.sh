# shellcheck shell=bash
# shellcheck disable=SC2034 # PGBIN is read by the script that sources this
# Installs what scripts/test.sh needs on a Debian machine: PostgreSQL,
# iproute2, util-linux and npm from apt; Node.js and fauxqs from npm into a
# cache directory. Each step does nothing when its tools are already there.

# PGBIN is the directory holding initdb, pg_ctl, postgres, pg_isready and
# psql; find_pg_bin sets it.
PGBIN=""

# POLICY_RC_ADDED is 1 while a policy-rc.d made by install_apt_packages
# exists; cleanup_deps removes it.
POLICY_RC_ADDED=0
POLICY_RC=/usr/sbin/policy-rc.d

# require_root exits unless the script runs as root.
require_root() {
	if [[ $(id -u) -ne 0 ]]; then
		cat >&2 <<-'EOF'
			test.sh: error: must run as root.
			It creates a network namespace that holds the test servers, runs
			PostgreSQL as the "postgres" user and installs missing packages.
			Run it as root, for example: sudo ./scripts/test.sh
		EOF
		exit 1
	fi
}

# ensure_env fills in HOME and PATH entries that a bare environment (cron,
# CI, sudo) may lack.
ensure_env() {
	if [[ -z ${HOME:-} ]]; then
		HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
		export HOME
	fi

	local dir
	for dir in /usr/local/sbin /usr/sbin /sbin; do
		case ":${PATH}:" in
		*":${dir}:"*) ;;
		*) PATH="${PATH}:${dir}" ;;
		esac
	done
	if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
		PATH="/usr/local/go/bin:${PATH}"
	fi
	export PATH

	command -v go >/dev/null ||
		die "go not found: install the Go toolchain named in go.mod and put it on PATH"
}

# pg_bin_ok reports whether a directory holds every PostgreSQL program the
# tests use.
pg_bin_ok() {
	local prog
	for prog in initdb pg_ctl postgres pg_isready psql; do
		[[ -x $1/$prog ]] || return 1
	done
}

# find_pg_bin sets PGBIN to PostgreSQL 15 when installed, else to the
# directory of the initdb on PATH, else to the newest Debian install.
find_pg_bin() {
	local -a candidates=(/usr/lib/postgresql/15/bin)
	local dir

	if command -v initdb >/dev/null; then
		candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
	fi
	mapfile -t -O "${#candidates[@]}" candidates < <(
		printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV
	)

	for dir in "${candidates[@]}"; do
		if pg_bin_ok "$dir"; then
			PGBIN=$dir
			return 0
		fi
	done
	return 1
}

# install_apt_packages installs Debian packages without starting any service
# they bring (a policy-rc.d that says no is in place meanwhile).
install_apt_packages() {
	local log rc=0
	log=$(mktemp)

	command -v apt-get >/dev/null ||
		die "missing packages ($*) and no apt-get to install them: install them by hand"

	say "installing $* with apt-get"
	if [[ ! -e $POLICY_RC ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 0755 "$POLICY_RC"
		POLICY_RC_ADDED=1
	fi

	export DEBIAN_FRONTEND=noninteractive
	run_logged "$log" apt-get update -q || rc=$?
	if ((rc == 0)); then
		run_logged "$log" apt-get install -y -q --no-install-recommends "$@" || rc=$?
	fi

	rm -f "$log"
	cleanup_deps
	((rc == 0)) || die "apt-get could not install: $*"
}

# cleanup_deps removes the policy-rc.d that install_apt_packages added.
cleanup_deps() {
	if ((POLICY_RC_ADDED)); then
		rm -f "$POLICY_RC"
		POLICY_RC_ADDED=0
	fi
}

# ensure_system_packages installs, with one apt-get update, whichever of
# PostgreSQL, iproute2, util-linux and npm is missing.
ensure_system_packages() {
	local -a missing=()

	find_pg_bin || missing+=(postgresql)
	command -v ip >/dev/null || missing+=(iproute2)
	if ! command -v unshare >/dev/null || ! command -v runuser >/dev/null ||
		! command -v flock >/dev/null; then
		missing+=(util-linux)
	fi
	command -v npm >/dev/null || missing+=(npm)

	if ((${#missing[@]} > 0)); then
		install_apt_packages "${missing[@]}"
	fi
	find_pg_bin || die "no PostgreSQL programs found after installing postgresql"
}

# ensure_postgres_user creates the "postgres" system user when missing.
ensure_postgres_user() {
	getent passwd postgres >/dev/null && return 0

	say "creating the postgres system user"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin postgres ||
		die "could not create the postgres user"
}

# tools_dir prints the cache directory that holds Node.js and fauxqs.
tools_dir() {
	printf '%s' "${DOMAINEVENTS_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/domainevents-test}"
}

# node_tools_ok reports whether a tools directory holds Node.js of the
# wanted major version and the wanted fauxqs.
node_tools_ok() {
	local dir=$1 node version
	node="${dir}/node_modules/$(node_package)/bin/node"

	[[ -x $node ]] || return 1
	[[ $("$node" --version 2>/dev/null) == "v${NODE_MAJOR}."* ]] || return 1
	[[ -f ${dir}/node_modules/fauxqs/package.json ]] || return 1

	version=$("$node" -p 'require(process.argv[1]).version' \
		"${dir}/node_modules/fauxqs/package.json" 2>/dev/null) || return 1
	[[ $version == "$FAUXQS_VERSION" ]]
}

# ensure_node_tools installs Node.js and fauxqs with npm into the tools
# directory unless they are there already. A lock keeps two runs from
# installing at once.
ensure_node_tools() {
	local dir
	dir=$(tools_dir)
	mkdir -p "$dir"

	(
		flock 9
		node_tools_ok "$dir" && exit 0

		say "installing Node.js ${NODE_MAJOR} and fauxqs ${FAUXQS_VERSION} into ${dir}"
		if [[ ! -f ${dir}/package.json ]]; then
			printf '{\n  "name": "domainevents-test-tools",\n  "private": true\n}\n' \
				>"${dir}/package.json"
		fi
		run_logged "${dir}/npm-install.log" npm install --prefix "$dir" \
			--no-audit --no-fund --no-update-notifier --loglevel=error \
			"$(node_package)@${NODE_MAJOR}" "fauxqs@${FAUXQS_VERSION}" ||
			die "npm could not install Node.js and fauxqs"
		node_tools_ok "$dir" || die "Node.js or fauxqs missing from ${dir} after npm install"
	) 9>"${dir}/.lock"
}

# check_netns exits unless this machine lets root make a network namespace.
check_netns() {
	unshare --net true 2>/dev/null ||
		die "cannot create a network namespace (unshare --net failed);" \
			"inside a container this needs CAP_SYS_ADMIN"
}
