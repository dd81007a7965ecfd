#!/usr/bin/env bash
# make run: a local cluster under .run/ (owned by postgres, on 127.0.0.1, a
# free port remembered in .run/port) with jam and pg_cron preloaded and the
# extension created in the database jam. A second run reuses it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

run_dir=$root/.run
data=$run_dir/pgdata
mkdir -p "$run_dir"
[ "$(id -u)" = 0 ] && chown postgres: "$run_dir"
if ! as_pg test -w "$run_dir"; then
	echo "run: the postgres user cannot write $run_dir; every folder above the project" >&2
	echo "run: must be searchable by it (chmod o+x), e.g. clone outside /root" >&2
	exit 1
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -f "$run_dir/port" ]; then
	port=$(cat "$run_dir/port")
else
	port=54329
	while ! port_free "$port"; do port=$((port + 1)); done
	echo "$port" > "$run_dir/port"
fi

if [ ! -f "$data/PG_VERSION" ]; then
	echo "run: creating a cluster in $data"
	# trust on loopback and the socket only: a development cluster for this machine's users
	as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
	cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run_dir'
shared_preload_libraries = 'jam,pg_cron'
cron.database_name = 'jam'
CONF
fi

if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	as_pg "$bindir/pg_ctl" -D "$data" -l "$run_dir/postgres.log" -w start >/dev/null
fi

psql_jam() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
if ! psql_jam -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'jam'" | grep -q 1; then
	psql_jam -d postgres -c "CREATE DATABASE jam"
fi
psql_jam -d jam <<'SQL'
CREATE EXTENSION IF NOT EXISTS jam;
CREATE EXTENSION IF NOT EXISTS pg_cron;
ALTER EXTENSION jam UPDATE;
ALTER DATABASE jam SET search_path = "$user", public, jam;
SQL

cat <<MSG
jam is running: PostgreSQL on 127.0.0.1:$port, database jam (log: $run_dir/postgres.log)

  psql "host=127.0.0.1 port=$port dbname=jam user=postgres"

  jam=# SELECT jam_hash('\\x'::bytea);
  jam=# SELECT jam_submit_package('svc-1', 'hello'::bytea);
  jam=# SELECT jam_process_next();

make stop stops it; make run starts it again with the same data.
MSG
