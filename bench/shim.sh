#!/usr/bin/env bash
# jam's HTTP shim benchmark: jam-shim under wrk against pgbench running the
# same statements straight on Postgres, over the same number of connections.
#
# Starts a throwaway cluster (as the postgres user, on a free loopback port,
# preloading jam) and a jam-shim in front of it (pool of BENCH_SHIM_CONNS
# connections, logging to a file), then alternates, so that drift hits both
# sides alike: each round runs both sides of each workload, the shim first
# in odd rounds and the direct side first in even ones (the POST side that
# goes second inserts into a larger table), each run after a CHECKPOINT:
#
#   GET   wrk GET /jam/preimages/{hash}/meta     pgbench jam_preimage_meta()
#   POST  wrk POST /jam/packages (1 KiB, 16     pgbench jam_submit_package()
#         services, a new package each time)      with the same payloads
#   404   wrk GET of a path that is no route    (none)
#         (the same token), answered without
#         a Postgres call
#
# The 404 runs give shim_get_ratio_ceiling = 404s / (404s + direct GET): on
# a machine the runs saturate, a GET through the shim costs at least the
# CPU of an HTTP request the shim answers (the 404 run) plus that of the
# direct statement, so no shim whose own Postgres leg cost nothing could
# reach more than that ratio here.
#
# And the GET statement runs a third way, through a relay: pgbench through
# HAProxy in TCP mode (event-driven, its default threads), which forwards
# Postgres' protocol and does nothing else.  Any HTTP front of Postgres
# adds at least that hop to every request (two more sleeping processes to
# wake, and their copies), so relay_vs_direct_get_ratio is what a bare
# relay reaches here, and shim_vs_relay_get_ratio how near the shim comes
# to it.  Skipped, saying so, without haproxy (make bench installs it).
#
# wrk opens BENCH_SHIM_CONNS connections (keep-alive); pgbench runs as many
# clients, each statement exactly the one the shim sends (trace step, token
# check, API call; bench/shim_*.sql), as the same login role.  Prints each
# run's requests per second, each side's mean, the ratio shim / direct for
# GET and POST (target: at least 0.8), and p50 and p99 latency of each side
# (wrk's distribution; pgbench's per-transaction log, written only in one
# extra run per workload after the rounds, so that the runs compared carry
# no log on the direct side).  A wrk run with any answer other than 2xx or
# 3xx, or any socket error, counts as a failure, and so does a pgbench run
# with a failed transaction.  Every POST run must have created a new package
# for each request it counts: on the shim side every answer a 201 (an
# identical resubmit gets 200), counted by shim_submit.lua, and the packages
# up by that many (plus at most one a connection, for requests still in
# flight when wrk stopped counting); on the direct side the packages up by
# exactly pgbench's transaction count.  The cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install and
# make (which builds shim/jam-shim).  Knobs (environment): BENCH_SECONDS
# (per run, default 10), BENCH_ROUNDS (default 2), BENCH_SHIM_CONNS
# (default 4), BENCH_JOBS (wrk and pgbench threads, default 2), PG_CONFIG.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
conns=${BENCH_SHIM_CONNS:-4}
jobs=${BENCH_JOBS:-2}
target=0.80
shim=$root/shim/jam-shim

. "$here/cluster.sh"
[ -x "$shim" ] || { echo "bench: $shim is missing (run make)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps installs it)" >&2; exit 1; }

shim_pid=
relay_pid=
bench_cleanup_extra() {
	local pid
	for pid in "$shim_pid" "$relay_pid"; do
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			wait "$pid" 2>/dev/null || true
		fi
	done
}
http_port=$(free_port) || exit 1
bench_cluster .jam-bench-shim 'shared_buffers = 256MB' 'max_wal_size = 4GB' \
	'checkpoint_timeout = 30min' 'jam.max_pending_packages = 100000000'
echo "== jam shim benchmark: cluster in $work, port $port; shim on 127.0.0.1:$http_port"

psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
psql_q -c 'CREATE EXTENSION jam'

# Both sides log in as the same role: a member of jam_api with a token, as
# make run sets the shim up, when the extension has capabilities.
if [ "$(psql_q -c "SELECT to_regprocedure('jam.jam_authenticate(text)') IS NOT NULL")" = t ]; then
	user=jam_bench
	psql_q -c "CREATE ROLE jam_bench LOGIN IN ROLE jam_api"
	token=$(psql_q -c "SELECT jam.jam_create_token('bench', ARRAY['jam:read','jam:submit'])")
else
	# An extension from before capabilities: a stand-in that accepts anyone.
	user=postgres
	psql_q -c "CREATE FUNCTION jam.jam_authenticate(token text) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'"
	token=none
fi
hash=$(psql_q -c "SELECT jam.jam_put_preimage(convert_to('bench preimage', 'UTF8'), 'text/plain')->>'hash'")

# The shim runs in a session of its own, as a service would: with the
# kernel's autogroup scheduling it then gets its own share of the CPU
# instead of splitting the load generator's.
JAM_LISTEN=127.0.0.1:$http_port \
	JAM_DSN="host=127.0.0.1 port=$port dbname=postgres user=$user" \
	JAM_POOL_SIZE=$conns JAM_THREADS=$((conns * 2)) \
	setsid "$shim" >"$work/shim.log" 2>"$work/shim.err" &
shim_pid=$!
wait_up jam-shim "$work/shim.err" curl -s -o /dev/null "http://127.0.0.1:$http_port/system/status"
base=http://127.0.0.1:$http_port
echo "   $conns connections each side, $jobs threads, ${seconds}s per run, $rounds rounds, login role $user"

# The relay: HAProxy forwarding TCP to the cluster, in a session of its own
# like the shim, with timeouts far beyond a run.
relay_port=
relay_skip=
if command -v haproxy >/dev/null; then
	relay_port=$(free_port) || exit 1
	cat >"$work/haproxy.cfg" <<-EOF
	defaults
	    mode tcp
	    timeout connect 5s
	    timeout client 10m
	    timeout server 10m
	listen postgres
	    bind 127.0.0.1:$relay_port
	    server cluster 127.0.0.1:$port
	EOF
	setsid haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
	relay_pid=$!
	wait_up haproxy "$work/haproxy.log" tcp_open "$relay_port"
	echo "   relay: $(haproxy -v | head -n 1 | cut -d' ' -f1-3) (TCP mode) on 127.0.0.1:$relay_port"
else
	relay_skip="skipped: haproxy is not installed (make bench installs it)"
fi

# packages: how many packages the cluster holds, once the shim has answered
# every request it took (wrk stops counting with requests still in flight,
# which the shim goes on to run).  /system/status counts itself in flight.
packages() {
	local i
	for i in $(seq 1 100); do
		curl -s "http://127.0.0.1:$http_port/system/status" | grep -q '"in_flight": 1,' && break
		[ "$i" -lt 100 ] || { echo "bench: the shim still has requests in flight after 10s" >&2; return 1; }
		sleep 0.1
	done
	psql_q -c 'SELECT count(*) FROM jam.jam_work_packages'
}

# run_failed MESSAGE OUTPUT [shim]: says why a run does not count, with the
# tool's output (and the shim's last log lines); returns 1.
run_failed() {
	echo "bench: $1" >&2
	echo "$2" >&2
	[ -z "${3:-}" ] || tail -n 3 "$work/shim.log" >&2
	return 1
}

# run_wrk NAME URL SCRIPT SECONDS: a CHECKPOINT, then wrk; prints "rps
# p50_ms p99_ms requests".  With shim_submit.lua, every answer must be a 201
# and the packages must be up by as many (plus at most one a connection).
run_wrk() {
	local out before after requests created
	[ "$3" != shim_submit.lua ] || before=$(packages) || return 1
	psql_q -c 'CHECKPOINT' || return 1
	out=$(BENCH_TOKEN=$token wrk -t "$jobs" -c "$conns" -d "${4}s" --latency -s "$here/$3" "$2" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$out")
	if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
		run_failed "$1: wrk completed no requests:" "$out"
		return
	fi
	# The 404 run must get nothing but errors (wrk counts them), the others none.
	local errors
	errors=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
	if grep -q 'Socket errors' <<<"$out" ||
		{ [ "$1" = 404 ] && [ "${errors:-0}" != "$requests" ]; } ||
		{ [ "$1" != 404 ] && [ -n "$errors" ]; }; then
		run_failed "$1: the shim answered otherwise than expected, or connections failed:" "$out" shim
		return
	fi
	if [ "$3" = shim_submit.lua ]; then
		created=$(sed -n 's/^created: \([0-9]*\)$/\1/p' <<<"$out")
		after=$(packages) || return 1
		if [ "$created" != "$requests" ] || [ $((after - before)) -lt "$requests" ] ||
			[ $((after - before)) -gt $((requests + conns)) ]; then
			run_failed "$1: $requests requests, ${created:-no} answers 201 (a new package), packages up by $((after - before)):" \
				"$out" shim
			return
		fi
	fi
	awk -v n="$requests" '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1000
			return v
		}
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%.1f %.2f %.2f %d\n", rps, p50, p99, n }' <<<"$out"
}

# run_pgbench SCRIPT SECONDS [latency]: a CHECKPOINT, then pgbench (to
# $pgbench_port, the cluster's unless set: the relay's); prints
# "tps p50_ms p99_ms transactions".  The percentiles need pgbench's
# per-transaction log, which slows the client side: only a run asked for
# "latency" writes it (and then its tps is not used); the others print "tps
# - - transactions".  With shim_submit.sql, the packages must be up by
# exactly the transactions pgbench counts.  The database goes last:
# pgbench's -d is --debug, which logs every transaction too.
run_pgbench() {
	local out log=() before after n
	[ "${3:-}" = latency ] && log=(-l)
	[ "$1" != shim_submit.sql ] || before=$(packages) || return 1
	psql_q -c 'CHECKPOINT' || return 1
	rm -rf "$work/pgbench_log" && mkdir "$work/pgbench_log"
	out=$(cd "$work/pgbench_log" && "$bindir/pgbench" -n -M prepared -c "$conns" -j "$jobs" -T "$2" \
		-h 127.0.0.1 -p "${pgbench_port:-$port}" -U "$user" "${log[@]}" \
		-D hash="$hash" -D token="$token" -f "$here/$1" postgres 2>&1) || { echo "$out" >&2; return 1; }
	local failed
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -n "$failed" ] && [ "$failed" != 0 ]; then
		run_failed "$1: $failed transactions failed:" "$out"
		return
	fi
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	if [ -z "$n" ] || [ "$n" -eq 0 ]; then
		run_failed "$1: pgbench processed no transactions:" "$out"
		return
	fi
	if [ "$1" = shim_submit.sql ]; then
		after=$(packages) || return 1
		if [ $((after - before)) -ne "$n" ]; then
			run_failed "$1: $n transactions, but packages up by $((after - before))" "$out"
			return
		fi
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
	if [ ${#log[@]} = 0 ]; then
		printf '%.1f - - %d\n' "$tps" "$n"
		return
	fi
	# Log lines: client_id transaction_no time_us script_no epoch epoch_us
	cat "$work"/pgbench_log/pgbench_log.* | awk '{ print $3 / 1000 }' | sort -n >"$work/latencies"
	local lines
	lines=$(wc -l <"$work/latencies")
	awk -v tps="$tps" -v n="$lines" -v t="$n" '
		NR == int(n * 0.50) + 1 { p50 = $1 }
		NR == int(n * 0.99) + 1 { p99 = $1 }
		END { printf "%.1f %.2f %.2f %d\n", tps, p50, p99, t }' "$work/latencies"
}

echo "-- warm-up (3s each, not counted)"
run_wrk GET "$base/jam/preimages/$hash/meta" shim_meta.lua 3 >/dev/null
run_pgbench shim_meta.sql 3 >/dev/null
[ -n "$relay_skip" ] || pgbench_port=$relay_port run_pgbench shim_meta.sql 3 >/dev/null
# The 404 runs count every answer as an error: they must be the 404 of no route.
no_route=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/jam/no-such-route")
[ "$no_route" = 404 ] || { echo "bench: a path that is no route got $no_route, not 404" >&2; exit 1; }
run_wrk 404 "$base/jam/no-such-route" shim_meta.lua 3 >/dev/null
run_wrk POST "$base/jam/packages" shim_submit.lua 3 >/dev/null
run_pgbench shim_submit.sql 3 >/dev/null

declare -a get_shim get_direct get_relay http_only post_shim post_direct
# measure WORKLOAD SIDE ROUND: one counted run (each starts with a CHECKPOINT).
measure() {
	local r rate p50 p99 n
	case $1,$2 in
	GET,shim) r=$(run_wrk GET "$base/jam/preimages/$hash/meta" shim_meta.lua "$seconds") ;;
	GET,direct) r=$(run_pgbench shim_meta.sql "$seconds") ;;
	GET,relay) r=$(pgbench_port=$relay_port run_pgbench shim_meta.sql "$seconds") ;;
	HTTP,shim) r=$(run_wrk 404 "$base/jam/no-such-route" shim_meta.lua "$seconds") ;;
	POST,shim) r=$(run_wrk POST "$base/jam/packages" shim_submit.lua "$seconds") ;;
	POST,direct) r=$(run_pgbench shim_submit.sql "$seconds") ;;
	esac
	read -r rate p50 p99 n <<<"$r"
	case $1,$2 in
	GET,shim) get_shim+=("$r") && printf '   round %d  GET meta   shim    rps=%s p50=%sms p99=%sms\n' "$3" "$rate" "$p50" "$p99" ;;
	GET,direct) get_direct+=("$r") && printf '   round %d  GET meta   direct  tps=%s\n' "$3" "$rate" ;;
	GET,relay) get_relay+=("$r") && printf '   round %d  GET meta   relay   tps=%s (pgbench through HAProxy)\n' "$3" "$rate" ;;
	HTTP,shim) http_only+=("$r") && printf '   round %d  404        shim    rps=%s (no Postgres call)\n' "$3" "$rate" ;;
	POST,shim) post_shim+=("$r") && printf '   round %d  POST pkg   shim    rps=%s p50=%sms p99=%sms (%d new packages, all 201)\n' "$3" "$rate" "$p50" "$p99" "$n" ;;
	POST,direct) post_direct+=("$r") && printf '   round %d  POST pkg   direct  tps=%s (%d new packages)\n' "$3" "$rate" "$n" ;;
	esac
}
for round in $(seq 1 "$rounds"); do
	order=(shim direct)
	[ $((round % 2)) -eq 1 ] || order=(direct shim)
	for side in "${order[@]}"; do measure GET "$side" "$round"; done
	[ -n "$relay_skip" ] || measure GET relay "$round"
	measure HTTP shim "$round"
	for side in "${order[@]}"; do measure POST "$side" "$round"; done
done

# mean FIELD ROW...: the mean of one field (1 rate, 2 p50, 3 p99) over the rounds.
mean() {
	local f=$1
	shift
	printf '%s\n' "$@" | awk -v f="$f" '{ s += $f } END { printf "%.2f", s / NR }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
met() { awk -v r="$1" -v t="$target" 'BEGIN { print (r >= t) ? "met" : "NOT met" }'; }

# The direct side's latency, from a run of its own with pgbench's log.
get_latency=$(run_pgbench shim_meta.sql "$seconds" latency)
post_latency=$(run_pgbench shim_submit.sql "$seconds" latency)

gs=$(mean 1 "${get_shim[@]}") gd=$(mean 1 "${get_direct[@]}")
ps=$(mean 1 "${post_shim[@]}") pd=$(mean 1 "${post_direct[@]}")
get_ratio=$(ratio "$gs" "$gd")
post_ratio=$(ratio "$ps" "$pd")
echo "== results ($conns connections each side; shim = wrk over HTTP/1.1 keep-alive)"
echo "shim_get_meta_rps=$gs direct_get_meta_tps=$gd"
echo "shim_get_meta_p50_ms=$(mean 2 "${get_shim[@]}") shim_get_meta_p99_ms=$(mean 3 "${get_shim[@]}")"
echo "direct_get_meta_p50_ms=$(mean 2 "$get_latency") direct_get_meta_p99_ms=$(mean 3 "$get_latency") (a run with pgbench's log)"
echo "shim_vs_direct_get_ratio=$get_ratio"
# What the GET ratio could reach if the shim's own Postgres leg cost
# nothing: on a machine the runs saturate, a request through the shim
# costs at least the HTTP side's CPU (the 404 runs: wrk, parsing, routing,
# logging) plus the direct side's (pgbench and the backend), so the shim
# can reach at most http / (http + direct) of the direct rate.
hs=$(mean 1 "${http_only[@]}")
echo "shim_http_only_rps=$hs"
echo "shim_get_ratio_ceiling=$(awk -v h="$hs" -v d="$gd" 'BEGIN { printf "%.2f", h / (h + d) }')"
if [ -z "$relay_skip" ]; then
	gr=$(mean 1 "${get_relay[@]}")
	echo "relay_get_meta_tps=$gr"
	echo "relay_vs_direct_get_ratio=$(ratio "$gr" "$gd")"
	echo "shim_vs_relay_get_ratio=$(ratio "$gs" "$gr")"
else
	echo "relay_vs_direct_get_ratio: $relay_skip"
	echo "shim_vs_relay_get_ratio: $relay_skip"
fi
echo "shim_post_package_rps=$ps direct_post_package_tps=$pd"
echo "shim_post_package_p50_ms=$(mean 2 "${post_shim[@]}") shim_post_package_p99_ms=$(mean 3 "${post_shim[@]}")"
echo "direct_post_package_p50_ms=$(mean 2 "$post_latency") direct_post_package_p99_ms=$(mean 3 "$post_latency") (a run with pgbench's log)"
echo "shim_vs_direct_post_ratio=$post_ratio"
echo "target: each ratio >= $target (GET $(met "$get_ratio"), POST $(met "$post_ratio"))"
