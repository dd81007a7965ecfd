# Sourced by run.sh (its cluster, psql_q, run_pgbench, record): claims and
# drains of one service's backlog behind a long history.
# shellcheck shell=bash disable=SC2154  # the variables and helpers of run.sh
#
# Two databases, jam_hist_1k and jam_hist_1m, each with its own jam:
# a history of 10^3 or BENCH_HISTORY (default 10^6) processed packages of
# 16 other services (history_setup.sql), and the same backlog of
# BENCH_BACKLOG (default 100,000) pending packages of the service 'drain',
# submitted through the API.  Then, alternately round after round:
#
#   claim   jam_process_next('drain'), one client, in jam_hist_1k against
#           jam_hist_1m: what one claim costs with 10^6 packages of history
#           against 10^3 (claim_1m_vs_1k_ratio = time per claim 1m / 1k;
#           the claim's processing, the same in both, is part of the time)
#   list    jam_list_packages(limit 50), its first page and total, one
#           client, in jam_hist_1k against jam_hist_1m
#           (list_1m_vs_1k_ratio = time per call 1m / 1k)
#   attester the first page of an external attester's ten attestations,
#           written after the node's one per package of history
#           (attester_page_1m_vs_1k_ratio, the same way)
#   failed  the first page of 'hist-0''s ten failed packages, written
#           after its share of the history (failed_page_1m_vs_1k_ratio,
#           the same way)
#   drain   in jam_hist_1m, $clients clients: jam_process_next per
#           transaction for $seconds, against a plain queue table
#           (bench_queue, no history, the same backlog) popped with DELETE
#           ... SKIP LOCKED RETURNING, nine tenths of it in a fixed number of
#           transactions, and pgmq pop for $seconds where pgmq is installed
#   batch   jam_process_packages('drain', 100) against the plain queue
#           deleting 100 a statement: a fixed BENCH_DRAIN_ROWS (default
#           nine tenths of the backlog) rows each run, $clients clients
#   workers the backlog drained by BENCH_WORKERS (default 2) processor
#           workers in jam_hist_1m (the server restarted with them on),
#           against the plain queue popped by as many clients, or by
#           $clients (the drain's), whichever was faster
#
# Before each drain run the plain queue is emptied, refilled to
# BENCH_BACKLOG and vacuumed, and jam's backlog is topped up to it and its
# table vacuumed; a run that empties its backlog stops the benchmark.
history_rows=${BENCH_HISTORY:-1000000}
backlog=${BENCH_BACKLOG:-100000}
drain_rows=${BENCH_DRAIN_ROWS:-$((backlog * 9 / 10))}

echo "-- history: $history_rows and 1000 processed packages of 16 services, a backlog of $backlog packages of 'drain' in each"
# hist_db DB N: a database with jam, N packages of history and the backlog.
hist_db() {
	psql_q -c "CREATE DATABASE $1"
	psql_db "$1" -c 'CREATE EXTENSION jam'
	psql_db "$1" -v n="$2" -f "$here/history_setup.sql" >/dev/null
	psql_db "$1" -c "CALL bench_fill('drain', $backlog)"
	psql_db "$1" -c 'VACUUM ANALYZE'
}
# The two databases load side by side, one core each.
hist_db jam_hist_1k 1000 &
small_pid=$!
hist_db jam_hist_1m "$history_rows"
wait "$small_pid"
pending() { psql_db "$1" -c "SELECT count(*) FROM jam.jam_work_packages WHERE service_id = 'drain' AND status = 'pending'"; }
echo "   jam_hist_1k: $(psql_db jam_hist_1k -c 'SELECT count(*) FROM jam.jam_work_packages') packages, jam_hist_1m: $(psql_db jam_hist_1m -c 'SELECT count(*) FROM jam.jam_work_packages') packages"
# What the parts before wrote in the postgres database may still be vacuumed.
bench_settle

# fresh_queue: the plain queue refilled to the backlog from empty and
# vacuumed, so that no pop walks past the rows an earlier run deleted (the
# strongest baseline: a queue nobody has drained yet).
fresh_queue() {
	psql_db jam_hist_1m -c 'TRUNCATE bench_queue' -c "CALL bench_queue_fill($backlog)" \
		-c 'VACUUM ANALYZE bench_queue' >/dev/null
}
# jam_backlog: the backlog of 'drain' topped up, and the table vacuumed as
# the queue is (jam's claims step over dead entries on their own, see
# src/claim_hint.c; the vacuum only makes both sides start alike).
jam_backlog() {
	psql_db jam_hist_1m -c "CALL bench_fill('drain', $backlog)" -c 'VACUUM ANALYZE jam.jam_work_packages' >/dev/null
}

# A run that emptied a backlog would have timed empty claims.
check_backlog() {
	if [ "$1" -le 0 ]; then
		echo "bench: $2 ran out of backlog; raise BENCH_BACKLOG" >&2
		exit 1
	fi
}

# per_call SCRIPT WHAT: the time one call of SCRIPT takes, with one client
# (so that the rate is the inverse of the time per call), in jam_hist_1k
# against jam_hist_1m, after a warm-up of each, the two alternating round
# after round; prints each round (with what round_note DB says), and sets
# ms_1k and ms_1m from each side's best round.
one=(-c 1 -j 1)
round_note() { :; }
per_call() {
	local tps db round
	local -A best=()
	for db in jam_hist_1k jam_hist_1m; do
		pgbench_db=$db run_pgbench "$1" 3 "${one[@]}" >/dev/null
	done
	for round in $(seq 1 "$rounds"); do
		for db in jam_hist_1k jam_hist_1m; do
			tps=$(pgbench_db=$db run_pgbench "$1" "$seconds" "${one[@]}")
			best[$db]=$(rate "${best[$db]:-0}" "$tps")
			printf '   round %d  %s, 10^%s history   per s=%s%s\n' "$round" "$2" \
				"$([ "$db" = jam_hist_1k ] && echo 3 || echo 6)" "$tps" "$(round_note "$db")"
		done
	done
	ms_1k=$(awk -v t="${best[jam_hist_1k]}" 'BEGIN { printf "%.3f", 1000 / t }')
	ms_1m=$(awk -v t="${best[jam_hist_1m]}" 'BEGIN { printf "%.3f", 1000 / t }')
}

# growth NAME: prints NAME's time per call in both databases (per_call's
# ms_1k and ms_1m) and records their ratio, whose target is 1.2 for every
# cost that must not grow with history.
growth() {
	echo "${1}_ms_1k=$ms_1k"
	echo "${1}_ms_1m=$ms_1m"
	echo "${1}_1m_vs_1k_ratio=$(ratio "$ms_1m" "$ms_1k")"
	record "${1}_1m_vs_1k_ratio" "$(ratio "$ms_1m" "$ms_1k")" '<=' 1.2
}

# One claim (and its processing, the same in both).
round_note() { echo " ($(pending "$1") pending left)"; }
per_call process_next.sql claim
round_note() { :; }
check_backlog "$(pending jam_hist_1k)" jam_hist_1k
check_backlog "$(pending jam_hist_1m)" jam_hist_1m
growth claim

# The first page of the package list, with its total.
per_call list_first_page.sql 'list page 1'
growth list

# The first page of one attester's attestations, behind the node's one
# per report of history (1.6: through the attester's index).
per_call attester_page.sql 'attester page 1'
growth attester_page

# The first page of one service's failed packages, behind its applied
# ones (1.7: through the partial index of the failed packages).
per_call failed_page.sql 'failed page 1'
growth failed_page

# Draining one per transaction.
psql_db jam_hist_1m -c "CALL bench_queue_fill($backlog)"
if [ -z "$pgmq_skip" ]; then
	psql_db jam_hist_1m -c 'CREATE EXTENSION IF NOT EXISTS pgmq' -c "SELECT pgmq.create('drain')" >/dev/null
	pgmq_fill() {
		psql_db jam_hist_1m -c "SELECT count(*) FROM pgmq.send_batch('drain', ARRAY(
		                          SELECT jsonb_build_object('payload', encode(decode(repeat(md5(random()::text), 64), 'hex'), 'base64'))
		                          FROM generate_series(1, $backlog - (SELECT count(*) FROM pgmq.q_drain))))" >/dev/null
	}
	pgmq_fill
fi
pgbench_db=jam_hist_1m run_pgbench queue_pop.sql 3 >/dev/null
pgbench_db=jam_hist_1m run_pgbench process_next.sql 3 >/dev/null
[ -z "$pgmq_skip" ] && pgbench_db=jam_hist_1m run_pgbench pgmq_pop.sql 3 >/dev/null
queue_tps=()
drain_tps=()
pgmq_pop_tps=()
for round in $(seq 1 "$rounds"); do
	fresh_queue
	# A fixed number of pops, nine tenths of the queue, so that none finds
	# it empty however fast this machine drains it.
	tps=$(pgbench_db=jam_hist_1m run_pgbench queue_pop.sql "x$((backlog * 9 / 10 / clients))")
	queue_tps+=("$tps")
	left=$(psql_db jam_hist_1m -c 'SELECT count(*) FROM bench_queue')
	check_backlog "$left" bench_queue
	printf '   round %d  plain queue DELETE     rows/s=%s (%s left)\n' "$round" "$tps" "$left"
	jam_backlog
	tps=$(pgbench_db=jam_hist_1m run_pgbench process_next.sql "$seconds")
	drain_tps+=("$tps")
	left=$(pending jam_hist_1m)
	check_backlog "$left" jam_hist_1m
	printf '   round %d  jam_process_next       rows/s=%s (%s left)\n' "$round" "$tps" "$left"
	if [ -z "$pgmq_skip" ]; then
		pgmq_fill
		tps=$(pgbench_db=jam_hist_1m run_pgbench pgmq_pop.sql "$seconds")
		pgmq_pop_tps+=("$tps")
		left=$(psql_db jam_hist_1m -c 'SELECT count(*) FROM pgmq.q_drain')
		check_backlog "$left" pgmq.q_drain
		printf '   round %d  pgmq pop               rows/s=%s (%s left)\n' "$round" "$tps" "$left"
	fi
done
queue_rate=$(rate "${queue_tps[@]}")
pop_rate_clients=$queue_rate
drain_rate=$(rate "${drain_tps[@]}")
echo "drain_queue_rows_per_s=$queue_rate"
echo "drain_jam_rows_per_s=$drain_rate"
echo "drain_jam_vs_queue_ratio=$(ratio "$drain_rate" "$queue_rate")"
record drain_jam_vs_queue_ratio "$(ratio "$drain_rate" "$queue_rate")" '>=' 1.0
if [ -z "$pgmq_skip" ]; then
	echo "drain_pgmq_pop_rows_per_s=$(rate "${pgmq_pop_tps[@]}")"
	echo "drain_jam_vs_pgmq_pop_ratio=$(ratio "$drain_rate" "$(rate "${pgmq_pop_tps[@]}")")"
	record drain_jam_vs_pgmq_pop_ratio "$(ratio "$drain_rate" "$(rate "${pgmq_pop_tps[@]}")")" '>=' 1.0
else
	echo "drain_jam_vs_pgmq_pop_ratio: $pgmq_skip"
	record drain_jam_vs_pgmq_pop_ratio "$pgmq_skip" '>=' 1.0
fi

# Draining 100 per call, a fixed number of rows per run; rows per second
# from what each run actually took off its backlog.
if have_function 'jam.jam_process_packages(text,integer)' jam_hist_1m; then
	per_client=$((drain_rows / 100 / clients))
	# rows_per_s TPS BEFORE AFTER: the run's rate in rows.
	rows_per_s() { awk -v t="$1" -v d="$(($2 - $3))" -v n="$((per_client * clients))" 'BEGIN { printf "%.0f", t * d / n }'; }
	queue_rows=()
	jam_rows=()
	for round in $(seq 1 "$rounds"); do
		fresh_queue
		tps=$(pgbench_db=jam_hist_1m run_pgbench queue_pop_batch.sql "x$per_client")
		queue_rows+=("$(rows_per_s "$tps" "$backlog" "$(psql_db jam_hist_1m -c 'SELECT count(*) FROM bench_queue')")")
		printf '   round %d  plain queue DELETE 100 rows/s=%s\n' "$round" "${queue_rows[-1]}"
		jam_backlog
		tps=$(pgbench_db=jam_hist_1m run_pgbench process_batch.sql "x$per_client")
		jam_rows+=("$(rows_per_s "$tps" "$backlog" "$(pending jam_hist_1m)")")
		printf '   round %d  jam_process_packages   rows/s=%s\n' "$round" "${jam_rows[-1]}"
	done
	queue_rate=$(rate "${queue_rows[@]}")
	jam_rate=$(rate "${jam_rows[@]}")
	echo "drain_queue_100_rows_per_s=$queue_rate"
	echo "drain_jam_100_rows_per_s=$jam_rate"
	echo "drain_100_jam_vs_queue_ratio=$(ratio "$jam_rate" "$queue_rate")"
	record drain_100_jam_vs_queue_ratio "$(ratio "$jam_rate" "$queue_rate")" '>=' 1.0
else
	echo "drain_100_jam_vs_queue_ratio: skipped: jam.jam_process_packages not installed"
	record drain_100_jam_vs_queue_ratio "skipped: jam.jam_process_packages not installed" '>=' 1.0
fi

# Draining with the processor workers behind the same history: the fall
# of the backlog with BENCH_WORKERS (default 2) workers in jam_hist_1m,
# read every 0.2 s from its first fall until $seconds later or a tenth is
# left, against the plain queue popped one per transaction by as many
# clients or by $clients, whichever drained faster (workers.sh measures
# the same without a history).
hist_workers=${BENCH_WORKERS:-2}
# restart_workers N: the server restarted with N workers for jam_hist_1m.
restart_workers() {
	psql_q -c "ALTER SYSTEM SET jam.processor_databases = 'jam_hist_1m'" \
		-c "ALTER SYSTEM SET jam.processor_workers = $1" >/dev/null
	as_pg "$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w -m fast restart >/dev/null
}
backlog_left() { psql_db jam_hist_1m -c "SELECT pending_count FROM jam.jam_services WHERE service_id = 'drain'"; }
queue_tps=()
workers_rates=()
for round in $(seq 1 "$rounds"); do
	fresh_queue
	tps=$(pgbench_db=jam_hist_1m run_pgbench queue_pop.sql "x$((backlog * 9 / 10 / hist_workers))" \
		-c "$hist_workers" -j "$hist_workers")
	queue_tps+=("$tps")
	printf '   round %d  plain queue DELETE, %d clients  rows/s=%s\n' "$round" "$hist_workers" "$tps"
	restart_workers 0
	jam_backlog
	psql_q -c 'CHECKPOINT' >/dev/null
	workers_rates+=("$(workers_drain_rate backlog_left "$backlog" "$seconds" restart_workers "$hist_workers")")
	printf '   round %d  %d processor workers       rows/s=%s\n' "$round" "$hist_workers" "${workers_rates[-1]}"
done
restart_workers 0
# The baseline is the better of the queue's rates with as many clients as
# workers and with $clients clients (the drain above).
queue_rate=$(rate "${queue_tps[@]}" "$pop_rate_clients")
workers_rate=$(rate "${workers_rates[@]}")
echo "drain_workers_queue_rows_per_s=$queue_rate"
echo "drain_workers_rows_per_s=$workers_rate"
echo "drain_workers_vs_queue_ratio=$(ratio "$workers_rate" "$queue_rate")"
record drain_workers_vs_queue_ratio "$(ratio "$workers_rate" "$queue_rate")" '>=' 1.0
psql_q -c 'ALTER SYSTEM RESET jam.processor_databases' -c 'ALTER SYSTEM RESET jam.processor_workers' >/dev/null
as_pg "$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w -m fast restart >/dev/null

# The parts after this one need neither database, nor their autovacuum
# working through a million rows under their runs.
psql_q -c 'DROP DATABASE jam_hist_1k WITH (FORCE)' -c 'DROP DATABASE jam_hist_1m WITH (FORCE)' >/dev/null
