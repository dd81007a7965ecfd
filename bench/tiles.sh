#!/usr/bin/env bash
# The logs as tiles (c2sp.org/tlog-tiles) through jam-shim, against
# civetweb serving the same bytes as static files, in one run.
#
# Starts a throwaway cluster (as the postgres user, on a free loopback
# port, preloading jam) with one service whose log holds BENCH_TILES_ENTRIES
# entries (default 65,536: 256 full level-0 tiles, a full level-1 tile),
# public, and a jam-shim in front of it; copies every full tile and entry
# bundle it serves into a folder, which bench/static_civetweb.c (civetweb,
# the shim's HTTP library, with the shim's thread count, doing nothing but
# sending files) serves under the same paths.  Then alternates, round after
# round, so that drift hits both sides alike, wrk over BENCH_SHIM_CONNS
# keep-alive connections on each side, each thread walking the same paths
# in turn:
#
#   tile      GET of the 256 full level-0 tiles (8 KiB): the shim reads
#             each from Postgres (jam_tile: 256 leaf hashes by primary key)
#   tile_304  the same GETs with If-None-Match: their ETags, as a cache
#             revalidating its copies sends them (the shim still reads the
#             tile, to compare; civetweb compares its file's time and size)
#   bundle    GET of the 256 full entry bundles (19 KiB, jam_entry_bundle)
#
# Prints each run's requests per second, each side's best round, and the
# ratio shim / static of each workload.  Every tile must have an ETag on
# each side, which a GET with If-None-Match of it turns into a 304, and
# every answer of a tile_304 run must be a 304 (counted by tiles.lua); a run
# with any answer of 4xx or 5xx, or any socket error, counts as a failure.
# The cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install and
# make (which builds shim/jam-shim).  Knobs (environment): BENCH_SECONDS
# (per run, default 10), BENCH_ROUNDS (default 2), BENCH_SHIM_CONNS
# (default 4), BENCH_JOBS (wrk threads, default 2), BENCH_TILES_ENTRIES,
# PG_CONFIG.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
conns=${BENCH_SHIM_CONNS:-4}
jobs=${BENCH_JOBS:-2}
entries=${BENCH_TILES_ENTRIES:-65536}
threads=$((conns * 2))
shim=$root/shim/jam-shim

. "$here/cluster.sh"
[ -x "$shim" ] || { echo "bench: $shim is missing (run make)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps installs it)" >&2; exit 1; }

shim_pid= static_pid=
bench_cleanup_extra() {
	local pid
	for pid in $shim_pid $static_pid; do
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			wait "$pid" 2>/dev/null || true
		fi
	done
}
http_port=$(free_port) || exit 1
static_port=$(free_port) || exit 1
bench_cluster .jam-bench-tiles 'shared_buffers = 256MB' 'max_wal_size = 4GB' \
	'checkpoint_timeout = 30min' 'jam.max_pending_packages = 100000000'
echo "== jam tiles benchmark: cluster in $work, port $port; shim on 127.0.0.1:$http_port, static civetweb on 127.0.0.1:$static_port"

psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
psql_q -c 'CREATE EXTENSION jam'
psql_q -c 'CREATE ROLE jam_bench LOGIN IN ROLE jam_api'
# The log, in batches of 10,000 entries, and public: tile clients need no token.
psql_q -c "SELECT jam.jam_submit_packages('bench',
	(SELECT array_agg(convert_to('tile bench ' || g, 'UTF8')) FROM generate_series(b, least(b + 9999, $entries)) g))
	IS NOT NULL FROM generate_series(1, $entries, 10000) b" >/dev/null
psql_q -c "SELECT jam.jam_set_log_public('bench')" >/dev/null
psql_q -c 'VACUUM ANALYZE'

# The static side: civetweb alone, built here from bench/static_civetweb.c.
cc -O2 -o "$work/static_civetweb" "$here/static_civetweb.c" -lcivetweb -lpthread

JAM_LISTEN=127.0.0.1:$http_port \
	JAM_DSN="host=127.0.0.1 port=$port dbname=postgres user=jam_bench" \
	JAM_POOL_SIZE=$conns JAM_THREADS=$threads \
	setsid "$shim" >"$work/shim.log" 2>"$work/shim.err" &
shim_pid=$!
wait_up jam-shim "$work/shim.err" curl -s -o /dev/null "http://127.0.0.1:$http_port/system/status"
base=http://127.0.0.1:$http_port/jam/logs/bench/

# tile_path N: the tlog-tiles spelling of index N (x001/x234/067).
tile_path() {
	local n=$1 s
	s=$(printf '%03d' $((n % 1000)))
	n=$((n / 1000))
	while [ "$n" -gt 0 ]; do
		s=$(printf 'x%03d/%s' $((n % 1000)) "$s")
		n=$((n / 1000))
	done
	echo "$s"
}
full=$((entries / 256))
[ "$full" -ge 1 ] || { echo "bench: BENCH_TILES_ENTRIES must be at least 256" >&2; exit 1; }
[ "$full" -le 256 ] || full=256
: >"$work/tile.paths"
: >"$work/bundle.paths"
for n in $(seq 0 $((full - 1))); do
	echo "tile/0/$(tile_path "$n")" >>"$work/tile.paths"
	echo "tile/entries/$(tile_path "$n")" >>"$work/bundle.paths"
done
mkdir -p "$work/static"
while read -r p; do
	mkdir -p "$work/static/$(dirname "$p")"
	curl -sf -o "$work/static/$p" "$base$p" || { echo "bench: GET $base$p failed" >&2; exit 1; }
done < <(cat "$work/tile.paths" "$work/bundle.paths")
echo "   $entries entries; $full full tiles and bundles copied to $work/static ($(du -sh "$work/static" | cut -f1))"

"$work/static_civetweb" "$work/static" "$static_port" "$threads" >"$work/static.log" 2>&1 &
static_pid=$!
wait_up static_civetweb "$work/static.log" curl -s -o /dev/null "http://127.0.0.1:$static_port/tile/0/000"
static=http://127.0.0.1:$static_port/

# Each side's ETags, for the 304 runs: every tile must have one, and a GET
# with If-None-Match of it must get a 304.
: >"$work/shim.etags"
: >"$work/static.etags"
while read -r p; do
	for side in shim static; do
		url=$base
		[ "$side" = static ] && url=$static
		etag=$(curl -sI "$url$p" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
		case $etag in
		\"*\" | W/\"*\") ;;
		*) echo "bench: the $side side sends no ETag for $p (${etag:-none})" >&2; exit 1 ;;
		esac
		status=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url$p")
		[ "$status" = 304 ] ||
			{ echo "bench: the $side side answers $status, not 304, to $p with If-None-Match: $etag" >&2; exit 1; }
		echo "$p $etag" >>"$work/$side.etags"
	done
done <"$work/tile.paths"
cmp -s "$work/static/tile/0/000" <(curl -s "${base}tile/0/000") ||
	{ echo "bench: the static copy differs from the shim's tile" >&2; exit 1; }
echo "   $conns connections each side, $jobs wrk threads, $threads server threads each, ${seconds}s per run, $rounds rounds"

# run_wrk NAME URL PATHS ETAGS SECONDS: prints the requests per second.
# With ETAGS, every answer must be a 304.
run_wrk() {
	local out requests
	out=$(BENCH_PATHS=$3 BENCH_ETAGS=$4 wrk -t "$jobs" -c "$conns" -d "${5}s" -s "$here/tiles.lua" "$2" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' <<<"$out"; then
		echo "bench: $1: answers other than 2xx or 3xx, or connections failed:" >&2
		echo "$out" >&2
		tail -n 3 "$work/shim.log" >&2
		return 1
	fi
	requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$out")
	if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
		echo "bench: $1: wrk completed no requests:" >&2
		echo "$out" >&2
		return 1
	fi
	if [ -n "$4" ] && [ "$(sed -n 's/^status 304: \([0-9]*\)$/\1/p' <<<"$out")" != "$requests" ]; then
		echo "bench: $1: not every answer of $requests was a 304:" >&2
		echo "$out" >&2
		return 1
	fi
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out"
}

echo "-- warm-up (3s each, not counted)"
run_wrk tile "$base" "$work/tile.paths" '' 3 >/dev/null
run_wrk tile "$static" "$work/tile.paths" '' 3 >/dev/null

# The workloads: name, paths, and each side's ETags file ('' for none).
workloads=(tile bundle tile_304)
paths_of() { case $1 in bundle) echo "$work/bundle.paths" ;; *) echo "$work/tile.paths" ;; esac; }
etags_of() { [ "$1" = tile_304 ] && echo "$work/$2.etags" || echo ''; }

declare -A best
for w in "${workloads[@]}"; do best[$w,shim]=0 best[$w,static]=0; done
for round in $(seq 1 "$rounds"); do
	for w in "${workloads[@]}"; do
		for side in shim static; do
			url=$base
			[ "$side" = static ] && url=$static
			r=$(run_wrk "$w $side" "$url" "$(paths_of "$w")" "$(etags_of "$w" "$side")" "$seconds")
			printf '   round %d  %-8s %-6s rps=%s\n' "$round" "$w" "$side" "$r"
			best[$w,$side]=$(awk -v a="${best[$w,$side]}" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
		done
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "== results (best round of each side; $conns connections each side, HTTP/1.1 keep-alive)"
for w in "${workloads[@]}"; do
	echo "shim_${w}_rps=${best[$w,shim]} static_${w}_rps=${best[$w,static]}"
	echo "shim_${w}_vs_static_ratio=$(ratio "${best[$w,shim]}" "${best[$w,static]}")"
done
