#!/usr/bin/env bash
# make run: a development cluster with jam and pg_cron preloaded and the
# extension created in the database jam, and the HTTP shim beside it.  The
# cluster is owned by postgres and kept, with the copy of the shim it runs, in
# the folder run_state_dir (scripts/common.sh) names: as root, one of the
# postgres user's own outside the project, so that the project may be
# anywhere root can write.  It listens on 127.0.0.1 only, on the first free
# port from 54329.  What is root's stays in the project's .run/: the ports,
# the API token, the shim's pid and log.  A second run reuses it all: starts
# the cluster if stopped, restarts it when the installed jam.so changed (a
# preloaded library is only read at start), and updates the extension when
# its version changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
. "$root/scripts/common.sh"
# The server's programs run as postgres, which may not be able to enter the project.
cd /

run_dir=$root/.run
state=$(run_state_dir "$root")
data=$state/pgdata
log=$state/postgres.log

if [ ! -f "$sharedir/extension/jam.control" ]; then
	echo "run: jam is not installed for $pg_config; run make run (or make install) as root" >&2
	exit 1
fi

mkdir -p "$run_dir"
if [ "$state" != "$run_dir" ]; then
	chmod 700 "$run_dir"    # the token is root's alone
	# Made by postgres where it may (under its home), so that it owns each level.
	as_pg mkdir -p "$state" 2>/dev/null || mkdir -p "$state"
fi
if [ "$(id -u)" = 0 ]; then chown postgres: "$state"; fi
chmod 700 "$state"
if ! as_pg test -w "$state" -a -x "$state"; then
	echo "run: the postgres user cannot write $state; set JAM_RUN_DIR to a folder it can" >&2
	exit 1
fi
# Which project this cluster belongs to, for whoever finds the folder.
[ "$state" = "$run_dir" ] || echo "$root" | as_pg tee "$state/project" >/dev/null

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
socket=$state/.s.PGSQL.$port
if [ ${#socket} -gt 100 ]; then
	echo "run: $socket is too long for a unix socket path; set JAM_RUN_DIR to a shorter one" >&2
	exit 1
fi

if [ ! -f "$data/PG_VERSION" ]; then
	echo "run: creating a cluster in $data"
	# Trust authentication: the cluster is for development and only listens
	# on the loopback address and on a socket in a folder only postgres enters.
	as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
	echo "include 'jam_run.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
fi
# Rewritten every time, so that a new port or project path takes effect.
as_pg tee "$data/jam_run.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$state'
shared_preload_libraries = 'jam,pg_cron'
cron.database_name = 'jam'
jam.processor_workers = 2
jam.processor_databases = 'jam'
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

psql_run() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$state" -p "$port" -U postgres "$@"; }
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

# The HTTP shim beside the cluster: a login role that is a member of
# jam_api, a token made once and kept in .run/shim.token (a new one if it no
# longer authenticates), and jam-shim in the background as the postgres
# user, logging to .run/shim.log, its pid in .run/shim.pid.  It runs a copy
# of shim/jam-shim (and of the library it loads from beside itself for HTTPS)
# in the state folder, where postgres can reach it; a new build replaces the
# copy by a rename, so that a running shim keeps its file.  A second run
# restarts it when the binary or its settings changed.
shim_built=$root/shim/jam-shim
shim=$state/bin/jam-shim
copy_for_pg() {
	cmp -s "$1" "$2" && return
	cp "$1" "$2.new"
	chmod 755 "$2.new"
	give_to_pg "$2.new"
	mv -f "$2.new" "$2"
}
shim_pid_file=$run_dir/shim.pid
shim_running() { [ -f "$shim_pid_file" ] && kill -0 "$(cat "$shim_pid_file")" 2>/dev/null; }
shim_msg=
if [ ! -x "$shim_built" ]; then
	shim_msg="The HTTP shim is not built (make builds shim/jam-shim)."
elif [ -z "$(psql_run -d jam -tAc "SELECT to_regprocedure('jam.jam_authenticate(text)')")" ]; then
	shim_msg="This jam has no jam_authenticate(); the HTTP shim needs it and was not started."
else
	as_pg mkdir -p "$state/bin"
	copy_for_pg "$shim_built" "$shim"
	if [ -f "$root/shim/libjam-tls-compat.so" ]; then
		copy_for_pg "$root/shim/libjam-tls-compat.so" "$state/bin/libjam-tls-compat.so"
	fi
	psql_run -d jam <<'SQL'
SET client_min_messages = warning;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jam_shim') THEN
        CREATE ROLE jam_shim LOGIN;
    END IF;
END
$$;
GRANT jam_api TO jam_shim;
-- Bearer tokens are statement parameters: keep them out of the server log
-- even when statement durations are logged.
ALTER ROLE jam_shim SET log_parameter_max_length = 0;
ALTER ROLE jam_shim SET log_parameter_max_length_on_error = 0;
SQL
	token=$(cat "$run_dir/shim.token" 2>/dev/null || true)
	if [ -z "$token" ] || ! psql_run -d jam -tAc "SELECT jam.jam_authenticate('$token') IS NOT NULL" >/dev/null 2>&1; then
		token=$(psql_run -d jam -tAc \
			"SELECT jam.jam_create_token('make-run', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])")
		(umask 077 && echo "$token" > "$run_dir/shim.token")
	fi

	http_port=$(cat "$run_dir/http_port" 2>/dev/null || true)
	if [ -z "$http_port" ] || { ! shim_running && port_in_use "$http_port"; }; then
		http_port=8080
		while port_in_use "$http_port"; do http_port=$((http_port + 1)); done
		echo "$http_port" > "$run_dir/http_port"
	fi
	as_pg tee "$state/shim.conf.new" >/dev/null <<CONF
# jam-shim settings of make run (rewritten by every make run)
listen = 127.0.0.1:$http_port
dsn = host=$state port=$port dbname=jam user=jam_shim
pool_size = 8
threads = 16
CONF
	stamp=$(cat "$shim" "$state/shim.conf.new" | sha256sum | cut -d' ' -f1)
	if shim_running && [ "$stamp" != "$(cat "$run_dir/shim.sha256" 2>/dev/null)" ]; then
		echo "run: jam-shim or its settings changed; restarting it"
		kill "$(cat "$shim_pid_file")"
		for _ in $(seq 1 100); do shim_running || break; sleep 0.1; done
	fi
	mv "$state/shim.conf.new" "$state/shim.conf"
	if ! shim_running; then
		# A session of its own, detached from this terminal, as the postgres user when root.
		if [ "$(id -u)" = 0 ]; then
			setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
				"$shim" --config "$state/shim.conf" >>"$run_dir/shim.log" 2>&1 </dev/null &
		else
			setsid "$shim" --config "$state/shim.conf" >>"$run_dir/shim.log" 2>&1 </dev/null &
		fi
		echo $! > "$shim_pid_file"
		echo "$stamp" > "$run_dir/shim.sha256"
		for _ in $(seq 1 100); do
			(exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && break
			shim_running || break
			sleep 0.1
		done
		if ! shim_running; then
			echo "run: jam-shim did not start; the end of $run_dir/shim.log:" >&2
			tail -n 20 "$run_dir/shim.log" >&2
			exit 1
		fi
	fi
	shim_msg="The HTTP shim listens on http://127.0.0.1:$http_port (log: $run_dir/shim.log, one JSON line per request).
Token (all scopes; also in $run_dir/shim.token):

  $token

  curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:$http_port/jam/status
  curl -s -H 'Authorization: Bearer $token' -H 'Content-Type: text/plain' --data-binary 'hello' http://127.0.0.1:$http_port/jam/preimages
  curl -s http://127.0.0.1:$http_port/metrics

  JAM_URL=http://127.0.0.1:$http_port JAM_TOKEN_FILE=$run_dir/shim.token $root/cli/jamctl status"
fi

cat <<MSG
jam is running: PostgreSQL on 127.0.0.1:$port, database jam (data: $data, log: $log)

  psql "host=127.0.0.1 port=$port dbname=jam user=postgres"

  jam=# SELECT jam_hash('\\x'::bytea);

$shim_msg

make stop stops both; make run starts them again with the same data.
MSG
