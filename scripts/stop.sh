#!/usr/bin/env bash
# make stop: stops the shim and the cluster of make run if they are running;
# safe to repeat.  The cluster is the one in run_state_dir (scripts/common.sh),
# the shim's pid is in the project's .run/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
. "$root/scripts/common.sh"
# The server's programs run as postgres, which may not be able to enter the project.
cd /

data=$(run_state_dir "$root")/pgdata
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
