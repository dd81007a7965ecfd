#!/usr/bin/env bash
# jam's benchmarks: jam_submit_package against a bare INSERT of the same row,
# submits with metrics on against off, submits to one service against
# sixteen, proofs at 10^6 entries against 10^3, submits with auth and
# quotas on against off, cleanup against a plain batched DELETE
# (bench/cleanup.sh), and the HTTP shim against pgbench calling the same
# functions (bench/shim.sh).
#
# Starts a throwaway cluster (as the postgres user, on a free loopback port,
# preloading jam), then runs pgbench alternately on bench/insert.sql (the
# baseline: a plain table with jam_work_packages' columns and indexes) and
# bench/submit.sql (jam_submit_package), so that drift over the run affects
# both alike.  Prints each run's TPS, each side's mean, and the ratio
# submit_vs_insert_ratio = jam / baseline.  The cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install.
# Knobs (environment): BENCH_SECONDS (per run, default 15), BENCH_ROUNDS
# (baseline+jam pairs, default 2), BENCH_CLIENTS (default 4), BENCH_JOBS
# (pgbench threads, default 2), PG_CONFIG.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=${BENCH_SECONDS:-15}
rounds=${BENCH_ROUNDS:-2}
clients=${BENCH_CLIENTS:-4}
jobs=${BENCH_JOBS:-2}
target=0.80

# Cluster commands run as postgres; clients connect over loopback TCP.
. "$here/cluster.sh"
# The pending cap stays out of the way of a long run without disabling the check.
bench_cluster .jam-bench 'shared_buffers = 256MB' 'max_wal_size = 4GB' 'checkpoint_timeout = 30min' \
	'jam.max_pending_packages = 100000000'
echo "== jam benchmark: cluster in $work, port $port"

conn=(-h 127.0.0.1 -p "$port" -U postgres -d postgres)
psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "${conn[@]}" "$@"; }

psql_q -f "$here/setup.sql"

# The baseline must carry the same indexes as the table jam writes.
index_set() {
	psql_q -c "SELECT string_agg(d, '; ' ORDER BY d) FROM (
	             SELECT regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') AS d
	             FROM pg_index WHERE indrelid = '$1'::regclass) i"
}
if [ "$(index_set jam.jam_work_packages)" != "$(index_set bench_insert)" ]; then
	echo "bench: the baseline table's indexes differ from jam.jam_work_packages'" >&2
	exit 1
fi
echo "   baseline table: same columns and $(psql_q -c "SELECT count(*) FROM pg_index WHERE indrelid = 'bench_insert'::regclass") indexes as jam.jam_work_packages"
echo "   pgbench: $clients clients, $jobs threads, ${seconds}s per run, $rounds rounds, synchronous_commit=$(psql_q -c 'SHOW synchronous_commit')"

# run_pgbench SCRIPT SECONDS [pgbench options]: prints the TPS pgbench
# measured; options after SECONDS (a -U, a -D) come after the defaults.
run_pgbench() {
	psql_q -c 'CHECKPOINT'
	local script=$1 secs=$2 out
	shift 2
	out=$("$bindir/pgbench" -n -M prepared -c "$clients" -j "$jobs" -T "$secs" "${conn[@]}" "$@" \
		-f "$here/$script" 2>&1) || { echo "$out" >&2; return 1; }
	local failed
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -n "$failed" ] && [ "$failed" != 0 ]; then
		echo "$out" >&2
		return 1
	fi
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out" |
		awk '{ printf "%.1f\n", $1 }'
}

echo "-- warm-up (5s each, not counted)"
run_pgbench insert.sql 5 >/dev/null
run_pgbench submit.sql 5 >/dev/null

insert_tps=()
submit_tps=()
for round in $(seq 1 "$rounds"); do
	tps=$(run_pgbench insert.sql "$seconds")
	insert_tps+=("$tps")
	printf '   round %d  baseline INSERT       tps=%s\n' "$round" "$tps"
	tps=$(run_pgbench submit.sql "$seconds")
	submit_tps+=("$tps")
	printf '   round %d  jam_submit_package    tps=%s\n' "$round" "$tps"
done

mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
insert_mean=$(mean "${insert_tps[@]}")
submit_mean=$(mean "${submit_tps[@]}")
ratio=$(awk -v a="$submit_mean" -v b="$insert_mean" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "met" : "NOT met" }')

stored=$(psql_q -c "SELECT count(*) FROM jam.jam_work_packages")
echo "== results (1 KiB payloads, 16 services, $clients clients)"
echo "baseline_insert_tps=$insert_mean"
echo "jam_submit_tps=$submit_mean"
echo "submit_vs_insert_ratio=$ratio"
echo "target: ratio >= $target ($met); jam stored $stored packages"

# What the metrics cost, two ways.  Submits with jam.metrics off and on
# (PGOPTIONS reaches every pgbench connection), alternately and in
# alternating order, so that drift hits both alike; on a busy machine this
# ratio carries the noise of concurrent commits.  Then the cost per call
# without that noise: 100,000 jam_preimage_meta calls in one statement,
# off and on alternately, best of seven each (the best run is the one the
# machine disturbed least).
metrics_run() {
	local tps
	tps=$(PGOPTIONS="-c jam.metrics=$1" run_pgbench submit.sql "$seconds")
	printf '   round %d  submit, metrics %-3s  tps=%s\n' "$2" "$1" "$tps" >&2
	echo "$tps"
}
metrics_off_tps=()
metrics_on_tps=()
for round in $(seq 1 "$rounds"); do
	if [ $((round % 2)) -eq 1 ]; then
		metrics_off_tps+=("$(metrics_run off "$round")")
		metrics_on_tps+=("$(metrics_run on "$round")")
	else
		metrics_on_tps+=("$(metrics_run on "$round")")
		metrics_off_tps+=("$(metrics_run off "$round")")
	fi
done
metrics_off_mean=$(mean "${metrics_off_tps[@]}")
metrics_on_mean=$(mean "${metrics_on_tps[@]}")
metrics_ratio=$(awk -v a="$metrics_on_mean" -v b="$metrics_off_mean" 'BEGIN { printf "%.3f", a / b }')
echo "submit_tps_metrics_off=$metrics_off_mean"
echo "submit_tps_metrics_on=$metrics_on_mean"
echo "metrics_on_vs_off_ratio=$metrics_ratio"
echo "target: ratio >= 0.95 ($(awk -v r="$metrics_ratio" 'BEGIN { print (r >= 0.95) ? "met" : "NOT met" }'))"

calls=100000
psql_q -c "SELECT jam.jam_put_preimage('bench metrics'::bytea)" >/dev/null
# calls_ms on|off: milliseconds of $calls jam_preimage_meta calls in one statement.
calls_ms() {
	psql_q -c "SET jam.metrics = $1" -c '\timing on' \
		-c "SELECT count(jam.jam_preimage_meta(x.h)) FROM generate_series(1, $calls),
		    (SELECT jam.jam_hash('bench metrics'::bytea) AS h) x" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
calls_off=()
calls_on=()
for round in 1 2 3 4 5 6 7; do
	if [ $((round % 2)) -eq 1 ]; then
		calls_off+=("$(calls_ms off)")
		calls_on+=("$(calls_ms on)")
	else
		calls_on+=("$(calls_ms on)")
		calls_off+=("$(calls_ms off)")
	fi
	printf '   round %d  %d calls  metrics off %s ms, on %s ms\n' "$round" "$calls" \
		"${calls_off[-1]}" "${calls_on[-1]}"
done
off_ms=$(best "${calls_off[@]}")
on_ms=$(best "${calls_on[@]}")
echo "metrics_overhead_ns_per_call=$(awk -v a="$on_ms" -v b="$off_ms" -v n="$calls" 'BEGIN { printf "%.0f", (a - b) * 1e6 / n }')"
echo "metrics_calls_on_vs_off_ratio=$(awk -v a="$off_ms" -v b="$on_ms" 'BEGIN { printf "%.3f", a / b }') (throughput; best of 7: off ${off_ms} ms, on ${on_ms} ms)"

# The hard case for the log: all submits to one service serialize on its row.
one_tps=()
for round in $(seq 1 "$rounds"); do
	tps=$(run_pgbench submit_one_service.sql "$seconds")
	one_tps+=("$tps")
	printf '   round %d  submit, one service  tps=%s\n' "$round" "$tps"
done
one_mean=$(mean "${one_tps[@]}")
echo "one_service_submit_tps=$one_mean"
echo "one_service_vs_16_services_ratio=$(awk -v a="$one_mean" -v b="$submit_mean" 'BEGIN { printf "%.2f", a / b }')"

# Proof cost at 10^3 and 10^6 entries (an inclusion and a consistency proof
# per transaction), measured alternately; O(log n) reads keep them close.
echo "-- building synthetic logs of 10^3 and 10^6 entries"
psql_q -f "$here/proofs_setup.sql"
run_pgbench proof_1k.sql 5 >/dev/null
run_pgbench proof_1m.sql 5 >/dev/null
small_tps=()
large_tps=()
for round in $(seq 1 "$rounds"); do
	tps=$(run_pgbench proof_1k.sql "$seconds")
	small_tps+=("$tps")
	printf '   round %d  proofs at 10^3        tps=%s\n' "$round" "$tps"
	tps=$(run_pgbench proof_1m.sql "$seconds")
	large_tps+=("$tps")
	printf '   round %d  proofs at 10^6        tps=%s\n' "$round" "$tps"
done
small_mean=$(mean "${small_tps[@]}")
large_mean=$(mean "${large_tps[@]}")
proof_ratio=$(awk -v a="$small_mean" -v b="$large_mean" 'BEGIN { printf "%.2f", a / b }')
echo "proof_tps_1k=$small_mean"
echo "proof_tps_1m=$large_mean"
echo "proof_cost_1m_vs_1k=$proof_ratio"
echo "target: proof cost at 10^6 within 2x of 10^3 ($(awk -v r="$proof_ratio" 'BEGIN { print (r <= 2) ? "met" : "NOT met" }'))"

# Auth and quotas: the same submits by a jam_api login presenting a token,
# with jam.auth_required on and a service rate limit and a token rate limit
# that are checked on every submit but never refuse ("on"), against a
# jam_api login with auth and limits off ("off").
psql_q <<'SQL'
CREATE ROLE bench_on LOGIN IN ROLE jam_api;
CREATE ROLE bench_off LOGIN IN ROLE jam_api;
ALTER ROLE bench_on SET jam.rate_limit_per_minute = 100000000;
ALTER ROLE bench_off SET jam.auth_required = off;
SQL
token=$(psql_q -c "SELECT jam.jam_create_token('bench', '{jam:submit}')")
psql_q -c "SELECT jam.jam_set_quota(token_id => '${token:4:16}', rate_limit_per_minute => 100000000)" >/dev/null
run_pgbench submit_auth.sql 5 -U bench_on -D "token=$token" >/dev/null
run_pgbench submit.sql 5 -U bench_off >/dev/null
# Two costs a few percent apart: twice the rounds of the other comparisons.
off_tps=()
on_tps=()
for round in $(seq 1 $((rounds * 2))); do
	tps=$(run_pgbench submit.sql "$seconds" -U bench_off)
	off_tps+=("$tps")
	printf '   round %d  auth and quotas off  tps=%s\n' "$round" "$tps"
	tps=$(run_pgbench submit_auth.sql "$seconds" -U bench_on -D "token=$token")
	on_tps+=("$tps")
	printf '   round %d  auth and quotas on   tps=%s\n' "$round" "$tps"
done
off_mean=$(mean "${off_tps[@]}")
on_mean=$(mean "${on_tps[@]}")
auth_ratio=$(awk -v a="$on_mean" -v b="$off_mean" 'BEGIN { printf "%.2f", a / b }')
with_token=$(psql_q -c "SELECT count(*) FROM jam.jam_work_packages WHERE token_id = '${token:4:16}'")
echo "auth_off_submit_tps=$off_mean"
echo "auth_on_submit_tps=$on_mean"
echo "auth_on_vs_off_ratio=$auth_ratio"
echo "target: ratio >= 0.95 ($(awk -v r="$auth_ratio" 'BEGIN { print (r >= 0.95) ? "met" : "NOT met" }')); $with_token packages carry the token"

# Retention: jam_cleanup() of 10^6 expired packages against a plain batched
# DELETE of the same rows (its own throwaway cluster).
bash "$here/cleanup.sh"

# The HTTP shim under wrk against pgbench running the same statements (its
# own throwaway cluster and shim).
bash "$here/shim.sh"
