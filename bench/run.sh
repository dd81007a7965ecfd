#!/usr/bin/env bash
# jam's benchmarks, each against a baseline measured beside it on the same
# cluster, ending with a summary of every figure against its target:
#
#   submit   jam_submit_package against a bare INSERT of the same row into
#            a table with jam_work_packages' columns and indexes (and pgmq
#            send, where the pgmq extension is installed), and against the
#            floor: the rows a submit must write, by plain SQL (floor.sql)
#   metrics  submits with jam.metrics on against off
#   batch    jam_submit_packages of 100 against a bare multi-row INSERT of
#            100, against the floor of a batch (floor_batch.sql), and
#            against single submits to one service (which it also compares
#            with sixteen)
#   proofs   proofs at 10^6 log entries against 10^3
#   auth     submits with auth and quotas on against off
#   history  claims and drains behind a 10^6-package history (history.sh)
#   txn      many submits in one transaction, 10^5 against 10^3 (txn.sh)
#   storage  bytes per package, 1.0 catalog against 1.1 (storage.sh)
#   cleanup  jam_cleanup against a plain batched DELETE (cleanup.sh, its
#            own cluster)
#   workers  processor workers draining a backlog against a plain queue's
#            consumers, and submit-to-report latency (workers.sh, its own
#            cluster)
#   shim     the HTTP shim against pgbench calling the same functions
#            (shim.sh, its own cluster and shim)
#   tiles    the logs as tlog-tiles through the shim against civetweb
#            serving the same bytes as files (tiles.sh, its own cluster)
#   blob     put and get of 1 MiB preimages inline against in an
#            S3-compatible store, and what offloading saves the database
#            (blob.sh, its own cluster and s3rver)
#
# Throughput comparisons run pgbench on both sides alternately, round after
# round, so that drift over the run affects both alike, without pgbench's
# per-transaction log on either side, and take each side's best round.
# Prints each run, name=value lines for every figure, and a summary block.
# The cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install.
# Knobs (environment): BENCH_PARTS (which of the parts above, default all),
# BENCH_SECONDS (per run, default 15), BENCH_ROUNDS (A/B pairs, default 2),
# BENCH_CLIENTS (default 4), BENCH_JOBS (pgbench threads, default 2),
# PG_CONFIG; the parts in other files name their own.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=${BENCH_SECONDS:-15}
rounds=${BENCH_ROUNDS:-2}
clients=${BENCH_CLIENTS:-4}
jobs=${BENCH_JOBS:-2}
parts=" ${BENCH_PARTS:-submit metrics batch proofs auth history txn storage cleanup workers shim tiles blob} "
part() { [[ $parts == *" $1 "* ]]; }

# Cluster commands run as postgres; clients connect over loopback TCP.  No
# rate limit, and a pending cap that stays out of the way of the backlogs
# without disabling the check.
. "$here/cluster.sh"
bench_cluster .jam-bench 'shared_buffers = 256MB' 'max_wal_size = 4GB' 'checkpoint_timeout = 30min' \
	'jam.max_pending_packages = 100000000' 'jam.rate_limit_per_minute = 0'
echo "== jam benchmark: cluster in $work, port $port"

conn=(-h 127.0.0.1 -p "$port" -U postgres -d postgres)
psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "${conn[@]}" "$@"; }
# psql_db DB ...: psql_q in another database of the cluster.
psql_db() {
	local db=$1
	shift
	psql_q -d "$db" "$@"
}

psql_q -f "$here/setup.sql"
echo "   jam $(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'jam'"), id stored as $(psql_q -c "SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = 'jam.jam_work_packages'::regclass AND attname = 'id'")"

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

# run_pgbench SCRIPT LENGTH [pgbench options]: prints the TPS pgbench
# measured.  LENGTH is seconds, or xN for N transactions per client;
# options after it (a -U, a -D, a -c) override the defaults.  The database
# is $pgbench_db (default postgres), given last: pgbench's -d is --debug,
# which logs every transaction.  The WAL the run wrote per transaction,
# full-page images included (every run starts at a checkpoint), goes to
# $work/wal_per_transaction.
run_pgbench() {
	psql_q -c 'CHECKPOINT'
	local script=$1 length out wal_start
	wal_start=$(psql_q -c 'SELECT pg_current_wal_insert_lsn()')
	case $2 in
	x*) length=(-t "${2#x}") ;;
	*) length=(-T "$2") ;;
	esac
	shift 2
	out=$("$bindir/pgbench" -n -M prepared -c "$clients" -j "$jobs" "${length[@]}" \
		-h 127.0.0.1 -p "$port" -U postgres "$@" -f "$here/$script" "${pgbench_db:-postgres}" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	local failed
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -n "$failed" ] && [ "$failed" != 0 ]; then
		echo "$out" >&2
		return 1
	fi
	local n
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	psql_q -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal_start') / greatest(${n:-0}, 1))" \
		>"$work/wal_per_transaction"
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out" |
		awk '{ printf "%.1f\n", $1 }'
}

# A side's rate is its best round: on a shared machine, other work only
# ever slows a run down, so the fastest is the least disturbed.  A time's
# best is its shortest.
rate() { printf '%s\n' "$@" | sort -g | tail -n 1; }
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.0f", s / NR }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
have_function() {
	[ "$(psql_q ${2:+-d "$2"} -c "SELECT to_regprocedure('$1') IS NOT NULL")" = t ]
}

# The summary: record NAME VALUE OP TARGET adds a figure and its verdict.
# VALUE may be a lower bound (">2.1", a run stopped at its time cap) or
# "skipped: why"; OP is >=, <= or "info" (no target).
summary=()
record() {
	local verdict
	case $2 in
	skipped*) verdict=${2} ;;
	*) verdict=$(awk -v v="${2#>}" -v bound="${2:0:1}" -v op="$3" -v t="${4:-}" 'BEGIN {
		if (op == "info") { print "(no target)"; exit }
		ok = (op == ">=") ? v >= t : v <= t
		# a lower bound decides only when it is already past the target
		if (bound == ">" && ((op == ">=") != ok)) { print "unknown (lower bound)"; exit }
		print ok ? "met" : "NOT met" }') ;;
	esac
	summary+=("$(printf '%-38s %-10s %-9s %s' "$1" "${2%%:*}" "$([ "$3" = info ] || echo "$3 ${4:-}")" "$verdict")")
}

# pgmq, the reference Postgres queue, when the server has it: not packaged
# for Debian, and the npm package of that name is an unrelated Node client.
pgmq_skip=
if [ "$(psql_q -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgmq'")" = 1 ]; then
	psql_q -c 'CREATE EXTENSION pgmq' -c "SELECT pgmq.create('svc_' || s) FROM generate_series(0, 15) s" >/dev/null
	echo "   pgmq $(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'pgmq'"): 16 queues"
else
	pgmq_skip="skipped: the pgmq extension is not installed for this server (no Debian package; npm's pgmq is an unrelated Node.js client)"
fi

if part submit; then
	echo "-- warm-up (5s each, not counted)"
	run_pgbench insert.sql 5 >/dev/null
	run_pgbench floor.sql 5 >/dev/null
	run_pgbench submit.sql 5 >/dev/null
	[ -n "$pgmq_skip" ] || run_pgbench pgmq_send.sql 5 >/dev/null

	insert_tps=()
	floor_tps=()
	submit_tps=()
	pgmq_tps=()
	insert_wal=()
	submit_wal=()
	for round in $(seq 1 "$rounds"); do
		tps=$(run_pgbench insert.sql "$seconds")
		insert_tps+=("$tps")
		insert_wal+=("$(cat "$work/wal_per_transaction")")
		printf '   round %d  baseline INSERT       tps=%s WAL=%sB\n' "$round" "$tps" "${insert_wal[-1]}"
		tps=$(run_pgbench floor.sql "$seconds")
		floor_tps+=("$tps")
		printf '   round %d  floor (plain SQL)     tps=%s WAL=%sB\n' "$round" "$tps" "$(cat "$work/wal_per_transaction")"
		tps=$(run_pgbench submit.sql "$seconds")
		submit_tps+=("$tps")
		submit_wal+=("$(cat "$work/wal_per_transaction")")
		printf '   round %d  jam_submit_package    tps=%s WAL=%sB\n' "$round" "$tps" "${submit_wal[-1]}"
		if [ -z "$pgmq_skip" ]; then
			tps=$(run_pgbench pgmq_send.sql "$seconds")
			pgmq_tps+=("$tps")
			printf '   round %d  pgmq send             tps=%s\n' "$round" "$tps"
		fi
	done

	insert_rate=$(rate "${insert_tps[@]}")
	submit_rate=$(rate "${submit_tps[@]}")
	submit_ratio=$(ratio "$submit_rate" "$insert_rate")
	stored=$(psql_q -c "SELECT count(*) FROM jam.jam_work_packages")
	echo "== results (1 KiB payloads, 16 services, $clients clients; jam stored $stored packages)"
	echo "baseline_insert_tps=$insert_rate"
	echo "jam_submit_tps=$submit_rate"
	echo "submit_vs_insert_ratio=$submit_ratio"
	record submit_vs_insert_ratio "$submit_ratio" '>=' 0.80
	# The floor bounds the ratio above: no implementation of a submit's
	# write set reaches more than floor/insert here, and submit/floor is
	# what jam's own work (checks, hashing, receipts, metrics, events)
	# costs on top of its writes.
	floor_rate=$(rate "${floor_tps[@]}")
	floor_ratio=$(ratio "$floor_rate" "$insert_rate")
	over_floor=$(ratio "$submit_rate" "$floor_rate")
	echo "floor_tps=$floor_rate"
	echo "submit_floor_vs_insert_ratio=$floor_ratio"
	echo "submit_vs_floor_ratio=$over_floor"
	record submit_floor_vs_insert_ratio "$floor_ratio" info
	record submit_vs_floor_ratio "$over_floor" info
	# What each side wrote to the WAL, per row, the rounds' mean: both
	# sides wait for its flush at every commit.
	insert_wal_mean=$(mean "${insert_wal[@]}")
	submit_wal_mean=$(mean "${submit_wal[@]}")
	echo "insert_wal_bytes_per_row=$insert_wal_mean"
	echo "submit_wal_bytes_per_package=$submit_wal_mean"
	record insert_wal_bytes_per_row "$insert_wal_mean" info
	record submit_wal_bytes_per_package "$submit_wal_mean" info
	if [ -z "$pgmq_skip" ]; then
		pgmq_rate=$(rate "${pgmq_tps[@]}")
		echo "pgmq_send_tps=$pgmq_rate"
		echo "submit_vs_pgmq_send_ratio=$(ratio "$submit_rate" "$pgmq_rate")"
		record submit_vs_pgmq_send_ratio "$(ratio "$submit_rate" "$pgmq_rate")" '>=' 1.0
	else
		echo "submit_vs_pgmq_send_ratio: $pgmq_skip"
		record submit_vs_pgmq_send_ratio "$pgmq_skip" '>=' 1.0
	fi
fi

# What the metrics cost, two ways.  Submits with jam.metrics off and on
# (PGOPTIONS reaches every pgbench connection), alternately and in
# alternating order, so that drift hits both alike; on a busy machine this
# ratio carries the noise of concurrent commits.  Then the cost per call
# without that noise: 100,000 jam_preimage_meta calls in one statement,
# off and on alternately, best of seven each (the best run is the one the
# machine disturbed least).
if part metrics; then
	bench_settle
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
	metrics_off_rate=$(rate "${metrics_off_tps[@]}")
	metrics_on_rate=$(rate "${metrics_on_tps[@]}")
	metrics_ratio=$(awk -v a="$metrics_on_rate" -v b="$metrics_off_rate" 'BEGIN { printf "%.3f", a / b }')
	echo "submit_tps_metrics_off=$metrics_off_rate"
	echo "submit_tps_metrics_on=$metrics_on_rate"
	echo "metrics_on_vs_off_ratio=$metrics_ratio"
	record metrics_on_vs_off_ratio "$metrics_ratio" '>=' 0.95

	calls=100000
	psql_q -c "SELECT jam.jam_put_preimage('bench metrics'::bytea)" >/dev/null
	# calls_ms on|off: milliseconds of $calls jam_preimage_meta calls in one statement.
	calls_ms() {
		psql_q -c "SET jam.metrics = $1" -c '\timing on' \
			-c "SELECT count(jam.jam_preimage_meta(x.h)) FROM generate_series(1, $calls),
			    (SELECT jam.jam_hash('bench metrics'::bytea) AS h) x" |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
	}
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
fi

# One service: batches of 100 (jam_submit_packages) against a bare
# multi-row INSERT of 100 rows into the baseline table, and against single
# submits to the same one service, whose row serializes the log appends.
# The three alternate within each round.
if part batch; then
	bench_settle
	batch_skip=
	have_function 'jam.jam_submit_packages(text,bytea[],integer,integer)' ||
		batch_skip="skipped: jam.jam_submit_packages not installed"
	if [ -z "$batch_skip" ]; then
		run_pgbench insert_batch.sql 5 >/dev/null
		run_pgbench floor_batch.sql 5 >/dev/null
		run_pgbench submit_batch.sql 5 >/dev/null
	fi
	run_pgbench submit_one_service.sql 5 >/dev/null
	insert_batch_tps=()
	floor_batch_tps=()
	submit_batch_tps=()
	one_tps=()
	for round in $(seq 1 "$rounds"); do
		if [ -z "$batch_skip" ]; then
			tps=$(run_pgbench insert_batch.sql "$seconds")
			insert_batch_tps+=("$tps")
			printf '   round %d  baseline INSERT of 100  rows/s=%.0f\n' "$round" "$(awk -v t="$tps" 'BEGIN { print t * 100 }')"
			tps=$(run_pgbench floor_batch.sql "$seconds")
			floor_batch_tps+=("$tps")
			printf '   round %d  floor of 100            rows/s=%.0f\n' "$round" "$(awk -v t="$tps" 'BEGIN { print t * 100 }')"
			tps=$(run_pgbench submit_batch.sql "$seconds")
			submit_batch_tps+=("$tps")
			printf '   round %d  jam batch of 100        rows/s=%.0f\n' "$round" "$(awk -v t="$tps" 'BEGIN { print t * 100 }')"
		fi
		tps=$(run_pgbench submit_one_service.sql "$seconds")
		one_tps+=("$tps")
		printf '   round %d  submit, one service     tps=%s\n' "$round" "$tps"
	done
	one_rate=$(rate "${one_tps[@]}")
	echo "one_service_submit_tps=$one_rate"
	if [ -n "${submit_rate:-}" ]; then
		echo "one_service_vs_16_services_ratio=$(ratio "$one_rate" "$submit_rate")"
	fi
	if [ -z "$batch_skip" ]; then
		insert_rows=$(awk -v t="$(rate "${insert_batch_tps[@]}")" 'BEGIN { printf "%.0f", t * 100 }')
		batch_rows=$(awk -v t="$(rate "${submit_batch_tps[@]}")" 'BEGIN { printf "%.0f", t * 100 }')
		echo "baseline_insert_100_rows_per_s=$insert_rows"
		echo "jam_batch_100_rows_per_s=$batch_rows"
		echo "batch_vs_insert_ratio=$(ratio "$batch_rows" "$insert_rows")"
		echo "batch_vs_single_one_service_ratio=$(ratio "$batch_rows" "$one_rate")"
		floor_rows=$(awk -v t="$(rate "${floor_batch_tps[@]}")" 'BEGIN { printf "%.0f", t * 100 }')
		floor_ratio=$(ratio "$floor_rows" "$insert_rows")
		over_floor=$(ratio "$batch_rows" "$floor_rows")
		echo "floor_100_rows_per_s=$floor_rows"
		echo "batch_floor_vs_insert_ratio=$floor_ratio"
		echo "batch_vs_floor_ratio=$over_floor"
		record batch_vs_insert_ratio "$(ratio "$batch_rows" "$insert_rows")" '>=' 0.80
		record batch_floor_vs_insert_ratio "$floor_ratio" info
		record batch_vs_floor_ratio "$over_floor" info
		record batch_vs_single_one_service_ratio "$(ratio "$batch_rows" "$one_rate")" '>=' 10
	else
		echo "batch_vs_insert_ratio: $batch_skip"
		echo "batch_vs_single_one_service_ratio: $batch_skip"
		record batch_vs_insert_ratio "$batch_skip" '>=' 0.80
		record batch_floor_vs_insert_ratio "$batch_skip" info
		record batch_vs_floor_ratio "$batch_skip" info
		record batch_vs_single_one_service_ratio "$batch_skip" '>=' 10
	fi
fi

# Proof cost at 10^3 and 10^6 entries (an inclusion and a consistency proof
# per transaction), measured alternately; O(log n) reads keep them close.
if part proofs; then
	echo "-- building synthetic logs of 10^3 and 10^6 entries"
	psql_q -f "$here/proofs_setup.sql"
	# The parts before leave autovacuum work behind (bench_settle, cluster.sh).
	bench_settle
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
	small_rate=$(rate "${small_tps[@]}")
	large_rate=$(rate "${large_tps[@]}")
	proof_ratio=$(ratio "$small_rate" "$large_rate")
	echo "proof_tps_1k=$small_rate"
	echo "proof_tps_1m=$large_rate"
	echo "proof_cost_1m_vs_1k=$proof_ratio"
	record proof_cost_1m_vs_1k "$proof_ratio" '<=' 2
fi

# Auth and quotas: the same submits by a jam_api login presenting a token,
# with jam.auth_required on and a service rate limit and a token rate limit
# that are checked on every submit but never refuse ("on"), against a
# jam_api login with auth and limits off ("off").
if part auth; then
	psql_q <<'SQL'
CREATE ROLE bench_on LOGIN IN ROLE jam_api;
CREATE ROLE bench_off LOGIN IN ROLE jam_api;
ALTER ROLE bench_on SET jam.rate_limit_per_minute = 100000000;
ALTER ROLE bench_off SET jam.auth_required = off;
SQL
	bench_settle
	token=$(psql_q -c "SELECT jam.jam_create_token('bench', '{jam:submit}')")
	psql_q -c "SELECT jam.jam_set_quota(token_id => '${token:4:16}', rate_limit_per_minute => 100000000)" >/dev/null
	run_pgbench submit_auth.sql 5 -U bench_on -D "token=$token" >/dev/null
	run_pgbench submit.sql 5 -U bench_off >/dev/null
	# Two costs a few percent apart: twice the rounds of the other comparisons.
	off_tps=()
	on_tps=()
	# Each run adds to the table the next one writes into: the order of the
	# two sides alternates, so neither always meets the larger table.
	auth_off() {
		tps=$(run_pgbench submit.sql "$seconds" -U bench_off)
		off_tps+=("$tps")
		printf '   round %d  auth and quotas off  tps=%s\n' "$round" "$tps"
	}
	auth_on() {
		tps=$(run_pgbench submit_auth.sql "$seconds" -U bench_on -D "token=$token")
		on_tps+=("$tps")
		printf '   round %d  auth and quotas on   tps=%s\n' "$round" "$tps"
	}
	for round in $(seq 1 $((rounds * 2))); do
		if [ $((round % 2)) = 1 ]; then
			auth_off
			auth_on
		else
			auth_on
			auth_off
		fi
	done
	off_rate=$(rate "${off_tps[@]}")
	on_rate=$(rate "${on_tps[@]}")
	auth_ratio=$(ratio "$on_rate" "$off_rate")
	with_token=$(psql_q -c "SELECT count(*) FROM jam.jam_work_packages WHERE token_id = '${token:4:16}'")
	echo "auth_off_submit_tps=$off_rate"
	echo "auth_on_submit_tps=$on_rate"
	echo "auth_on_vs_off_ratio=$auth_ratio ($with_token packages carry the token)"
	record auth_on_vs_off_ratio "$auth_ratio" '>=' 0.95
fi

# Claims and drains behind a long history, in databases of their own.
if part history; then . "$here/history.sh"; fi

# Many submits in one transaction.
if part txn; then . "$here/txn.sh"; fi

# Bytes per package in a 1.0 catalog and in the default version's.
if part storage; then . "$here/storage.sh"; fi

# The scripts with clusters of their own: their figures are read from
# their output for the summary.
# from_output FILE NAME: the value a script printed as "NAME=value" or "NAME = value".
from_output() { sed -n "s/^$2 *= *\([0-9.]*\).*/\1/p" "$1" | tail -n 1; }

# Retention: jam_cleanup() of 10^6 expired packages against a plain batched
# DELETE of the same rows.
if part cleanup; then
	bash "$here/cleanup.sh" | tee "$work/cleanup.out"
	record cleanup_vs_plain_delete_ratio "$(from_output "$work/cleanup.out" cleanup_vs_plain_delete_ratio)" '<=' 1.5
fi

# The processor workers: drain against a plain queue's consumers, and
# submit-to-report latency at half the queue's and half the workers' drain
# rates (its own cluster).
if part workers; then
	bash "$here/workers.sh" | tee "$work/workers.out"
	record workers_vs_queue_drain_ratio "$(from_output "$work/workers.out" workers_vs_queue_drain_ratio)" '>=' 1.0
	record workers_batched_vs_queue_drain_ratio "$(from_output "$work/workers.out" workers_batched_vs_queue_drain_ratio)" '>=' 1.0
	record workers_batched_vs_queue_batched_drain_ratio "$(from_output "$work/workers.out" workers_batched_vs_queue_batched_drain_ratio)" '>=' 1.0
	# The p99s hold only where the submitters kept up the rate offered.
	for latency in queue_rate_submit_to_report submit_to_report batched_submit_to_report; do
		record "${latency}_p99_ms" "$(from_output "$work/workers.out" "${latency}_p99_ms")" '<=' 50
		record "${latency}_rate_reached" "$(from_output "$work/workers.out" "${latency}_rate_reached")" '>=' 0.95
	done
fi

# The HTTP shim under wrk against pgbench running the same statements.
# At 4 and at 16 connections a side (the shim's pool and threads scaled alike).
if part shim; then
	for shim_conns in 4 16; do
		BENCH_SHIM_CONNS=$shim_conns bash "$here/shim.sh" | tee "$work/shim.out"
		suffix=$([ "$shim_conns" = 4 ] || echo "_$shim_conns")
		record "shim_vs_direct_get_ratio$suffix" "$(from_output "$work/shim.out" shim_vs_direct_get_ratio)" '>=' 0.80
		record "shim_get_ratio_ceiling$suffix" "$(from_output "$work/shim.out" shim_get_ratio_ceiling)" info
		relay_skip=$(sed -n 's/^relay_vs_direct_get_ratio: //p' "$work/shim.out")
		record "relay_vs_direct_get_ratio$suffix" "${relay_skip:-$(from_output "$work/shim.out" relay_vs_direct_get_ratio)}" info
		record "shim_vs_relay_get_ratio$suffix" "${relay_skip:-$(from_output "$work/shim.out" shim_vs_relay_get_ratio)}" info
		record "shim_vs_direct_post_ratio$suffix" "$(from_output "$work/shim.out" shim_vs_direct_post_ratio)" '>=' 0.80
	done
fi

# The logs as tiles: full tiles (and their 304s) and entry bundles through
# the shim, each read from Postgres, against civetweb serving the same
# bytes as static files.
if part tiles; then
	bash "$here/tiles.sh" | tee "$work/tiles.out"
	for w in tile tile_304 bundle; do
		record "shim_${w}_vs_static_ratio" "$(from_output "$work/tiles.out" "shim_${w}_vs_static_ratio")" info
	done
fi

# The blob tier: 1 MiB preimages inline against in an S3-compatible store
# (s3rver on loopback), and the bytes offloading gives back (its own cluster).
if part blob; then
	bash "$here/blob.sh" | tee "$work/blob.out"
	for w in put get; do
		record "blob_${w}_store_vs_inline_ratio" "$(from_output "$work/blob.out" "blob_${w}_store_vs_inline_ratio")" info
	done
	record table_bytes_saved_per_gib_offloaded "$(from_output "$work/blob.out" table_bytes_saved_per_gib_offloaded)" info
fi

echo "== summary (bench ran $((SECONDS / 60)) min $((SECONDS % 60)) s)"
printf '%-38s %-10s %-9s %s\n' figure value target verdict
printf '%s\n' "${summary[@]}"
