# Sourced by run.sh (its cluster, psql_q, record): the time per package of N
# submits in one transaction, N = BENCH_TXN_BIG (default 10^5) against
# N = BENCH_TXN_SMALL (default 10^3), two ways:
#
#   statement   SELECT count(jam_submit_package('s', ...)) FROM
#               generate_series(1, N): one statement, timed by psql
#               (\timing: the statement and its commit)
#   statements  BEGIN; N x SELECT jam_submit_package(...); COMMIT; as a
#               psql script: N statements in one transaction, timed by the
#               server's clock from just after BEGIN to just after COMMIT
#
# Only the transaction is timed: what every run pays once, whatever its N,
# would make the small runs look dearer per package and the ratio smaller.
# So neither time counts starting psql, connecting (a new backend), or the
# service's row, and before its clock starts each run's session registers
# its service and makes one submit to it in a transaction it rolls back
# (the backend's first submit prepares jam's statements and fills its
# caches).  The commit is counted: jam writes the service's row and the
# refcounts back just before it.
#
# Each run submits to a service of its own, so that no run meets the
# packages of another (resubmits cost less), and starts on a quiet server
# (bench_settle in cluster.sh).  The small N runs before and
# after the big one, best of them counted.  A big run stops at a time cap:
# three times what the small runs' rate predicts (so a stopped run shows a
# ratio above 3), at most BENCH_TXN_CAP seconds (default 180), and is then
# reported as a lower bound; when the statements run stops, they run again
# with N = 10^4.
# shellcheck shell=bash disable=SC2154  # the variables and helpers of run.sh
small=${BENCH_TXN_SMALL:-1000}
big=${BENCH_TXN_BIG:-100000}
max_cap=${BENCH_TXN_CAP:-180}

# ready SERVICE: psql commands that ready a run's session before its clock
# starts: the service registered, and one submit to it rolled back.
ready() {
	printf '%s\n' "SELECT jam.jam_register_service('$1');" 'BEGIN;' \
		"SELECT jam.jam_submit_package('$1', convert_to('warm-up', 'UTF8'));" 'ROLLBACK;'
}

# stmt_ms SERVICE N CAP_S: milliseconds of the one statement, or "capped".
stmt_ms() {
	local out
	bench_settle jam.jam_work_packages jam.jam_log_entries jam.jam_services
	if out=$({
		ready "$1"
		echo "SET statement_timeout = '${3}s';"
		printf '%s\n' '\timing on'
		echo "SELECT count(jam.jam_submit_package('$1', convert_to(repeat(md5(g::text), 32), 'UTF8')))
		      FROM generate_series(1, $2) g;"
	} | psql_q -f - 2>&1); then
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -n 1
	elif grep -q 'statement timeout' <<<"$out"; then
		echo capped
	else
		echo "$out" >&2
		return 1
	fi
}

# stmts_ms SERVICE N CAP_S: milliseconds of the psql script of N statements
# in one transaction, or "capped": the server's clock_timestamp() read just
# after BEGIN, and again in the statement just after COMMIT (which adds one
# round trip to the time, whatever N).  psql gets a second more than the
# cap, for starting, connecting and readying, so that a stopped run's
# transaction did take longer than the cap; the server checks every second
# that psql is still there, so a stopped run ends there.
stmts_ms() {
	local file=$work/txn_$1.sql out rc=0
	bench_settle jam.jam_work_packages jam.jam_log_entries jam.jam_services
	{
		printf '%s\n' '\o /dev/null'
		ready "$1"
		echo 'BEGIN;'
		echo 'SELECT clock_timestamp() AS txn_start \gset'
		seq 1 "$2" | awk -v s="$1" '{
			printf "SELECT jam.jam_submit_package(\047%s\047, convert_to(repeat(md5(%d::text), 32), \047UTF8\047));\n", s, $1 }'
		echo 'COMMIT;'
		printf '%s\n' '\o'
		echo "SELECT round(extract(epoch FROM clock_timestamp() - :'txn_start'::timestamptz) * 1000, 1);"
	} >"$file"
	out=$(PGOPTIONS='-c client_connection_check_interval=1000' \
		timeout "$(($3 + 1))" "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "${conn[@]}" -f "$file") || rc=$?
	rm -f "$file"
	case $rc in
	0) echo "$out" ;;
	124) echo capped ;;
	*) return 1 ;;
	esac
}

# cap N SMALL_MS: seconds a run of N may take, from the small runs' rate.
cap() { awk -v n="$1" -v s="$small" -v ms="$2" -v m="$max_cap" 'BEGIN {
	c = 3 * ms * n / s / 1000; if (c < 30) c = 30; if (c > m) c = m; printf "%d", c }'; }

# short N: 1000 as 1k, 100000 as 100k, for figure names.
short() { awk -v n="$1" 'BEGIN { if (n % 1000000 == 0) print n / 1000000 "m"; else if (n % 1000 == 0) print n / 1000 "k"; else print n }'; }

# txn_figure NAME N SMALL_MS BIG_MS CAP_S: prints and records the ratio of
# the time per package, N against $small.
txn_figure() {
	local value
	if [ "$4" = capped ]; then
		value=">$(awk -v c="$5" -v n="$2" -v s="$small" -v ms="$3" 'BEGIN { printf "%.2f", c * 1000 / n / (ms / s) }')"
		echo "$1=$value (lower bound: N=$2 did not finish in $5 s)"
	else
		value=$(awk -v b="$4" -v n="$2" -v s="$small" -v ms="$3" 'BEGIN { printf "%.2f", (b / n) / (ms / s) }')
		echo "$1=$value"
	fi
	record "$1" "$value" '<=' 1.2
}

echo "-- $big and $small submits in one transaction (1 KiB payloads, one service a run)"
small_a=$(stmt_ms txn-s-a "$small" "$max_cap")
big_cap=$(cap "$big" "$small_a")
big_ms=$(stmt_ms txn-s-big "$big" "$big_cap")
small_b=$(stmt_ms txn-s-b "$small" "$max_cap")
small_c=$(stmt_ms txn-s-c "$small" "$max_cap")
small_ms=$(best "$small_a" "$small_b" "$small_c")
echo "   one statement: N=$small ${small_a}, ${small_b}, ${small_c} ms; N=$big ${big_ms/capped/stopped at the cap,} ms (cap ${big_cap} s)"
echo "txn_statement_us_per_package_${small}=$(awk -v t="$small_ms" -v n="$small" 'BEGIN { printf "%.1f", t * 1000 / n }')"
[ "$big_ms" = capped ] ||
	echo "txn_statement_us_per_package_${big}=$(awk -v t="$big_ms" -v n="$big" 'BEGIN { printf "%.1f", t * 1000 / n }')"
txn_figure "txn_statement_$(short "$big")_vs_$(short "$small")_ratio" "$big" "$small_ms" "$big_ms" "$big_cap"

small_a=$(stmts_ms txn-m-a "$small" "$max_cap")
big_cap=$(cap "$big" "$small_a")
big_ms=$(stmts_ms txn-m-big "$big" "$big_cap")
small_b=$(stmts_ms txn-m-b "$small" "$max_cap")
small_c=$(stmts_ms txn-m-c "$small" "$max_cap")
small_ms=$(best "$small_a" "$small_b" "$small_c")
echo "   separate statements: N=$small ${small_a}, ${small_b}, ${small_c} ms; N=$big ${big_ms/capped/stopped at the cap,} ms (cap ${big_cap} s)"
echo "txn_statements_us_per_package_${small}=$(awk -v t="$small_ms" -v n="$small" 'BEGIN { printf "%.1f", t * 1000 / n }')"
[ "$big_ms" = capped ] ||
	echo "txn_statements_us_per_package_${big}=$(awk -v t="$big_ms" -v n="$big" 'BEGIN { printf "%.1f", t * 1000 / n }')"
txn_figure "txn_statements_$(short "$big")_vs_$(short "$small")_ratio" "$big" "$small_ms" "$big_ms" "$big_cap"
if [ "$big_ms" = capped ]; then
	mid=$((big / 10))
	mid_cap=$(cap "$mid" "$small_ms")
	mid_ms=$(stmts_ms txn-m-mid "$mid" "$mid_cap")
	echo "   separate statements: N=$mid ${mid_ms/capped/stopped at the cap,} ms (cap ${mid_cap} s), since N=$big did not finish"
	txn_figure "txn_statements_$(short "$mid")_vs_$(short "$small")_ratio" "$mid" "$small_ms" "$mid_ms" "$mid_cap"
fi
