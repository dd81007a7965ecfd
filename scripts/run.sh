#!/usr/bin/env bash
# make run: a development cluster under .run/ with jam and pg_cron preloaded
# and the extension created in the database jam.  It is owned by postgres,
# listens on 127.0.0.1 only, on the first free port from 54329 (remembered in
# .run/port).  A second run reuses it: starts it if stopped, restarts it when
# the installed jam.so changed (a preloaded library is only read at start),
# and updates the extension when its version changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

run_dir=$root/.run
data=$run_dir/pgdata
log=$run_dir/postgres.log

if [ ! -f "$sharedir/extension/jam.control" ]; then
	echo "run: jam is not installed for $pg_config; run make run (or make install) as root" >&2
	exit 1
fi

if ! as_pg test -x "$root"; then
	echo "run: the postgres user cannot reach $root: a folder above it is not searchable" >&2
	echo "run: (e.g. /root is mode 700).  Clone the project where every user can read it," >&2
	echo "run: such as /srv/jam, or make each parent folder searchable (chmod o+x)." >&2
	exit 1
fi
mkdir -p "$run_dir"
give_to_pg "$run_dir"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
first_free_port() {
	local p=54329
	while port_in_use "$p"; do p=$((p + 1)); done
	echo "$p"
}
running() { [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

port=$(cat "$run_dir/port" 2>/dev/null || true)
# Keep the remembered port unless the cluster is down and something else took it.
if [ -z "$port" ] || { ! running && port_in_use "$port"; }; then
	port=$(first_free_port)
	echo "$port" > "$run_dir/port"
fi
socket=$run_dir/.s.PGSQL.$port
if [ ${#socket} -gt 100 ]; then
	echo "run: $socket is too long for a unix socket path; use a shorter project path" >&2
	exit 1
fi

if [ ! -f "$data/PG_VERSION" ]; then
	echo "run: creating a cluster in $data"
	# Trust authentication: the cluster is for development and only listens
	# on the loopback address and on a socket inside the project folder.
	as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
	echo "include 'jam_run.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
fi
# Rewritten every time, so that a new port or project path takes effect.
as_pg tee "$data/jam_run.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run_dir'
shared_preload_libraries = 'jam,pg_cron'
cron.database_name = 'jam'
CONF

so_sum=$(sha256sum "$pkglibdir/jam.so" | cut -d' ' -f1)
if running && [ "$so_sum" != "$(cat "$run_dir/jam.so.sha256" 2>/dev/null)" ]; then
	echo "run: jam.so changed; restarting the cluster"
	as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
if ! running; then
	if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w start >/dev/null; then
		echo "run: the server did not start; the end of $log:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	echo "$so_sum" > "$run_dir/jam.so.sha256"
fi

psql_run() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$run_dir" -p "$port" -U postgres "$@"; }
if [ -z "$(psql_run -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'jam'")" ]; then
	psql_run -d postgres -c "CREATE DATABASE jam"
fi
psql_run -d jam <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS jam CASCADE;
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT 'ALTER EXTENSION jam UPDATE'
FROM pg_available_extensions
WHERE name = 'jam' AND installed_version IS DISTINCT FROM default_version \gexec
ALTER DATABASE jam SET search_path = "$user", public, jam;
SQL

cat <<MSG
jam is running: PostgreSQL on 127.0.0.1:$port, database jam (log: $log)

  psql "host=127.0.0.1 port=$port dbname=jam user=postgres"

  jam=# SELECT jam_hash('\\x'::bytea);

make stop stops it; make run starts it again with the same data.
MSG
