# Sourced by the scripts: which PostgreSQL to use and how to run as its user.
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing script

# The pg_config on PATH may belong to another major version; jam targets 15
# (the Makefile makes the same choice, and PG_CONFIG overrides both).
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pg_config" ] || pg_config=$(command -v pg_config) || {
	echo "$(basename "$0"): pg_config not found; run 'make deps' or set PG_CONFIG" >&2
	exit 1
}
bindir=$("$pg_config" --bindir)
pkglibdir=$("$pg_config" --pkglibdir)
pgxs_dir=$pkglibdir/pgxs
sharedir=$("$pg_config" --sharedir)

# The server refuses to run as root, so as root every cluster and test
# command runs as the postgres user (created by the postgresql package);
# any other user runs them as itself.
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
	give_to_pg() { chown -R postgres: "$@"; }
else
	as_pg() { "$@"; }
	give_to_pg() { :; }
fi

# Where make run keeps what the postgres user reads and writes: the cluster,
# its log and socket, and the copy of the shim it runs with its settings.  As
# root, a folder of the postgres user's own, outside the project, named after
# the project's absolute path (/var/lib/postgresql/jam/<name>-<hash>): the
# project may then sit where postgres cannot reach (a clone under /root, mode
# 700), and two clones never share a cluster.  As any other user, who is the
# server's user too, the project's .run/.  A cluster an earlier make run made
# in .run/ is kept there; JAM_RUN_DIR overrides all of this.
run_state_dir() {
	local project=$1 home name
	if [ -n "${JAM_RUN_DIR:-}" ]; then
		realpath -m -- "$JAM_RUN_DIR"
	elif [ "$(id -u)" != 0 ] || as_pg test -r "$project/.run/pgdata/PG_VERSION" 2>/dev/null; then
		echo "$project/.run"
	else
		home=$(getent passwd postgres | cut -d: -f6)
		name=$(basename "$project" | tr -c 'A-Za-z0-9._\n-' _ | cut -c1-32)
		echo "${home:-/var/lib/postgresql}/jam/$name-$(printf %s "$project" | sha256sum | cut -c1-12)"
	fi
}

# One locale everywhere, so that output does not depend on the machine's.
export LANG=C.UTF-8
unset LC_ALL LC_COLLATE LC_CTYPE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME LANGUAGE

# The npm packages of the TAP tests and of the benchmarks that need a
# test tool: each folder of test/ with a package.json, every version
# pinned by its package-lock.json.  test/openapi,
# the validators test/t/053_openapi.pl checks docs/openapi.json and the
# shim's answers with; test/s3, the S3-compatible server and AWS's SigV4
# signer the blob tier's tests (test/t/10*_blob*.pl) run; test/sse, the
# EventSource client test/t/055_sse_interop.pl follows the event stream
# with.  They are installed outside the project where the postgres user
# can read them: as root in /var/lib/jam-test-tools/NAME (JAM_TEST_TOOLS
# picks another folder), as another user in ~/.cache/jam-test-tools/NAME.
# npm ci runs (and needs the registry) only when the lock file changed
# since the last install; the tests themselves never touch the network.
# Prints where the modules are.  Needs $root, the project.
npm_tools() {
	local name=$1 dir lock=$root/test/$1/package-lock.json stamp
	if [ "$(id -u)" = 0 ]; then
		dir=${JAM_TEST_TOOLS:-/var/lib/jam-test-tools}/$name
	else
		dir=${JAM_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/jam-test-tools}/$name
	fi
	echo "$dir/node_modules"
	stamp=$(sha256sum <"$lock" | cut -c1-64)
	[ "$(cat "$dir/.installed" 2>/dev/null)" = "$stamp" ] && return 0
	echo "npm_tools: installing the npm packages of test/$name into $dir" >&2
	if ! command -v npm >/dev/null; then
		echo "npm_tools: npm is missing; run make deps (the tests that need test/$name's packages fail or skip)" >&2
		return 1
	fi
	rm -rf "$dir" && mkdir -p "$dir" && cp "$root/test/$name/package.json" "$lock" "$dir/" &&
		(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 &&
		chmod -R a+rX "$dir" && echo "$stamp" >"$dir/.installed" && return 0
	echo "npm_tools: could not install the npm packages of test/$name (the tests that need them fail or skip)" >&2
	return 1
}
