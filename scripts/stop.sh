#!/usr/bin/env bash
# make stop: stops the cluster of make run if it is running; safe to repeat.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

data=$root/.run/pgdata
pid_file=$root/.run/shim.pid
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
	pid=$(cat "$pid_file")
	kill "$pid"
	# SIGTERM: the shim finishes the requests in flight, then exits.
	for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	rm -f "$pid_file"
	echo "stop: stopped jam-shim (pid $pid)"
else
	rm -f "$pid_file"
	echo "stop: jam-shim is not running"
fi
if [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	echo "stop: stopped the cluster in $data"
else
	echo "stop: no cluster is running in $data"
fi
