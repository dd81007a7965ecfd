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

# One locale everywhere, so that output does not depend on the machine's.
export LANG=C.UTF-8
unset LC_ALL LC_COLLATE LC_CTYPE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME LANGUAGE
