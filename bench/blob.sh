#!/usr/bin/env bash
# The blob tier: 1 MiB preimages inline against in an S3-compatible store,
# in one run, and what offloading saves the database.
#
# Starts a throwaway cluster (as the postgres user, on a free loopback port,
# preloading jam) and s3rver (test/s3's npm package, an S3-compatible
# server, installed as make test installs it) on loopback, with jam's store
# pointed at it.  Then alternates, round after round, so that drift hits
# both sides alike (inline first in odd rounds, store first in even ones),
# pgbench (BENCH_CLIENTS clients) on each side:
#
#   put   jam_put_preimage of a new 1 MiB preimage a transaction,
#         BENCH_BLOB_PUTS (default 50) a client and a run, with
#         jam.blob_offload_threshold above 1 MiB (inline: its bytes in
#         jam_preimages' TOAST table, and in the WAL) or at 1 MiB (the
#         object uploaded to the store first, the row without bytes)
#   get   jam_get_preimage of one of the side's preimages, at random (the
#         store's read back and its BLAKE2b-256 checked)
#
# Then stores BENCH_BLOB_OFFLOAD_MIB more inline, offloads them all with
# jam_offload(), and compares jam_preimages' size (with TOAST and indexes)
# before and after VACUUM FULL: the bytes the database gives back per GiB
# offloaded.  Prints each run, each side's best round, the ratios store /
# inline, and the saving.  The cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install.
# Knobs (environment): BENCH_SECONDS (per get run, default 10),
# BENCH_ROUNDS (default 2), BENCH_CLIENTS (default 4), BENCH_JOBS
# (default 2), BENCH_BLOB_PUTS, BENCH_BLOB_OFFLOAD_MIB (default 256),
# JAM_S3_NODE_MODULES, PG_CONFIG.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
clients=${BENCH_CLIENTS:-4}
jobs=${BENCH_JOBS:-2}
offload_mib=${BENCH_BLOB_OFFLOAD_MIB:-256}
puts=${BENCH_BLOB_PUTS:-50}

. "$here/cluster.sh"
. "$root/scripts/common.sh"

# s3rver, from test/s3's npm packages (npm_tools installs them when missing).
modules=${JAM_S3_NODE_MODULES:-}
[ -n "$modules" ] || modules=$(npm_tools s3) || true
node=$(command -v node || command -v nodejs || true)
if [ -z "$node" ] || [ ! -f "$modules/s3rver/bin/s3rver.js" ]; then
	echo "blob benchmark skipped: node or the npm packages of test/s3 are missing (make deps; $modules)"
	exit 0
fi

# s3rver runs in a process group of its own (setsid), ended whole: as root
# it runs under runuser, which would outlive a plain kill of its parent.
s3_pid=
bench_cleanup_extra() {
	if [ -n "$s3_pid" ] && kill -0 "$s3_pid" 2>/dev/null; then
		kill -- "-$s3_pid" 2>/dev/null || true
		wait "$s3_pid" 2>/dev/null || true
	fi
}
s3_port=$(free_port) || exit 1
bench_cluster .jam-bench-blob 'shared_buffers = 256MB' 'max_wal_size = 8GB' 'checkpoint_timeout = 30min'

# The store: s3rver in the cluster's folder, knowing its own key only.
mkdir -p "$work/s3"
printf 'access_key_id = S3RVER\nsecret_access_key = S3RVER\n' >"$work/credentials"
chmod 600 "$work/credentials"
if [ "$(id -u)" = 0 ]; then chown -R postgres: "$work/s3" "$work/credentials"; fi
as_postgres=()
if [ "$(id -u)" = 0 ]; then as_postgres=(runuser -u postgres --); fi
setsid "${as_postgres[@]}" "$node" "$modules/s3rver/bin/s3rver.js" -d "$work/s3" -a 127.0.0.1 -p "$s3_port" \
	--silent --configure-bucket jam-bench >"$work/s3rver.log" 2>&1 &
s3_pid=$!
wait_up s3rver "$work/s3rver.log" tcp_open "$s3_port"
cat >>"$data/postgresql.conf" <<EOF
jam.blob_store_endpoint = '127.0.0.1:$s3_port'
jam.blob_store_bucket = 'jam-bench'
jam.blob_store_uri_style = 'path'
jam.blob_store_tls = off
jam.blob_store_credentials_file = '$work/credentials'
jam.blob_offload_threshold = '256MB'
EOF
as_pg "$bindir/pg_ctl" -D "$data" -w reload >/dev/null
echo "== jam blob benchmark: cluster in $work, port $port; s3rver on 127.0.0.1:$s3_port"

psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
psql_q -c 'CREATE EXTENSION jam'
psql_q -f "$here/blob_setup.sql"

# threshold SIDE: inline keeps 1 MiB preimages in the table, store sends them out.
threshold() {
	local t=256MB
	[ "$1" = store ] && t=1MB
	psql_q -c "ALTER SYSTEM SET jam.blob_offload_threshold = '$t'" -c 'SELECT pg_reload_conf()' >/dev/null
	for _ in $(seq 1 50); do
		[ "$(psql_q -c 'SHOW jam.blob_offload_threshold')" = "$t" ] && return
		sleep 0.1
	done
	echo "bench: the threshold did not reach $t" >&2
	exit 1
}

# run_pgbench SCRIPT SIDE LENGTH: prints the transactions per second;
# LENGTH is pgbench's -T SECONDS or -t TRANSACTIONS.
run_pgbench() {
	local out failed
	psql_q -c 'CHECKPOINT'
	out=$("$bindir/pgbench" -n -M prepared -c "$clients" -j "$jobs" $3 -D side="$2" \
		-h 127.0.0.1 -p "$port" -U postgres -f "$here/$1" postgres 2>&1) || { echo "$out" >&2; return 1; }
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -n "$failed" ] && [ "$failed" != 0 ]; then
		echo "$out" >&2
		return 1
	fi
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out" | awk '{ printf "%.1f\n", $1 }'
}

echo "   1 MiB preimages, $clients clients, $jobs threads, $puts puts a client, ${seconds}s of gets, $rounds rounds"
declare -A best
for w in put get; do best[$w,inline]=0 best[$w,store]=0; done
for round in $(seq 1 "$rounds"); do
	# The side that goes first alternates: the second runs against a
	# jam_preimages grown by the first's puts.
	sides=(inline store)
	[ $((round % 2)) -eq 1 ] || sides=(store inline)
	for w in put get; do
		for side in "${sides[@]}"; do
			threshold "$side"
			length="-T $seconds"
			[ "$w" = put ] && length="-t $puts"
			r=$(run_pgbench "blob_$w.sql" "$side" "$length")
			printf '   round %d  %-3s %-6s tps=%s (MiB/s)\n' "$round" "$w" "$side" "$r"
			best[$w,$side]=$(awk -v a="${best[$w,$side]}" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
		done
	done
done
# Every preimage the store side put is in the store, and reads back.
psql_q -c "SELECT count(*) FROM bench_blob_puts p JOIN jam.jam_preimages i ON i.hash = decode(p.hash, 'hex')
           WHERE p.side = 'store' AND i.storage_class <> 's3'" | grep -qx 0 ||
	{ echo "bench: a preimage of the store side is not in the store" >&2; exit 1; }

# What offloading gives back: more inline preimages, then jam_offload().
threshold inline
psql_q -c "SELECT count(jam.jam_put_preimage(overlay(b.bytes placing int8send(nextval('bench_blob_seq')) from 1 for 8)))
           FROM bench_blob_base b, generate_series(1, $offload_mib)" >/dev/null
psql_q -c 'VACUUM FULL jam.jam_preimages' -c 'CHECKPOINT'
size_query="SELECT pg_total_relation_size('jam.jam_preimages')"
inline_bytes=$(psql_q -c "SELECT coalesce(sum(size), 0) FROM jam.jam_preimages WHERE storage_class = 'inline'")
before=$(psql_q -c "$size_query")
db_before=$(psql_q -c 'SELECT pg_database_size(current_database())')
threshold store
offload=$(psql_q -c 'SELECT jam.jam_offload()')
offloaded_bytes=$(psql_q -c "SELECT ('$offload'::jsonb->>'bytes')::bigint")
psql_q -c 'VACUUM FULL jam.jam_preimages' -c 'CHECKPOINT'
after=$(psql_q -c "$size_query")
db_after=$(psql_q -c 'SELECT pg_database_size(current_database())')
echo "   jam_offload(): $offload"
echo "   jam_preimages with TOAST and indexes: $before bytes before, $after after (inline bytes before: $inline_bytes)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
gib=1073741824
echo "== results (best round of each side; 1 MiB preimages, $clients clients)"
for w in put get; do
	echo "blob_${w}_inline_tps=${best[$w,inline]} blob_${w}_store_tps=${best[$w,store]} (a transaction is 1 MiB: tps = MiB/s)"
	echo "blob_${w}_store_vs_inline_ratio=$(ratio "${best[$w,store]}" "${best[$w,inline]}")"
done
echo "table_bytes_saved_per_gib_offloaded=$(awk -v s="$((before - after))" -v o="$offloaded_bytes" -v g="$gib" 'BEGIN { printf "%.0f", s / (o / g) }') ($(awk -v s="$((before - after))" -v o="$offloaded_bytes" 'BEGIN { printf "%.3f", s / o }') bytes a byte offloaded)"
echo "database_bytes_saved_per_gib_offloaded=$(awk -v s="$((db_before - db_after))" -v o="$offloaded_bytes" -v g="$gib" 'BEGIN { printf "%.0f", s / (o / g) }')"
