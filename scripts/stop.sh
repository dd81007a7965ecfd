#!/usr/bin/env bash
# make stop: stops the cluster of make run if it is running; safe to repeat.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

data=$root/.run/pgdata
if [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	echo "stop: stopped the cluster in $data"
else
	echo "stop: no cluster is running in $data"
fi
