# Sourced by the benchmarks: the PostgreSQL to use, and a throwaway cluster
# preloading jam on a free loopback port, removed when the script exits.
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing script
#
# After sourcing: $pg_config, $bindir and as_pg (run as the postgres user
# when root).  bench_cluster SUFFIX [postgresql.conf lines...] then sets
# $work, $data and $port and starts the cluster; a script that starts more
# (a shim) defines bench_cleanup_extra, called first on exit.

pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pg_config" ] || pg_config=$(command -v pg_config) || {
	echo "bench: pg_config not found" >&2
	exit 1
}
bindir=$("$pg_config" --bindir)
if [ ! -f "$("$pg_config" --sharedir)/extension/jam.control" ]; then
	echo "bench: jam is not installed for $pg_config (run make install first)" >&2
	exit 1
fi

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

# A loopback TCP port nobody listens on.
free_port() {
	local candidate
	for candidate in $(shuf -i 20000-60000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
			echo "$candidate"
			return
		fi
	done
	echo "bench: no free port found" >&2
	exit 1
}

bench_cleanup_extra() { :; }

# wait_up NAME LOG COMMAND...: waits up to 10 s for COMMAND to succeed (a
# server the script started answering); if it never does, says so with the
# end of the server's LOG and exits.
wait_up() {
	local name=$1 log=$2
	shift 2
	for _ in $(seq 1 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: $name did not answer within 10 s; the end of $log:" >&2
	tail -n 20 "$log" >&2
	exit 1
}
# tcp_open PORT: whether something listens on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

bench_cleanup() {
	bench_cleanup_extra
	if [ -n "${data:-}" ] && [ -f "$data/postmaster.pid" ]; then
		as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ -n "${work:-}" ] && rm -rf "$work"
}

# bench_cluster SUFFIX [conf lines...]: initdb, configure and start.
bench_cluster() {
	local suffix=$1
	shift
	port=$(free_port) || exit 1
	work=$(mktemp -d --suffix="$suffix")
	chmod 755 "$work"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; fi
	data=$work/data
	trap bench_cleanup EXIT INT TERM

	as_pg "$bindir/initdb" -D "$data" -U postgres -A trust --no-sync >"$work/initdb.log" 2>&1 ||
		{ cat "$work/initdb.log" >&2; exit 1; }
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$work'"
		echo "shared_preload_libraries = 'jam'"
		printf '%s\n' "$@"
	} | as_pg tee -a "$data/postgresql.conf" >/dev/null
	as_pg "$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null ||
		{ cat "$work/server.log" >&2; exit 1; }
}

# bench_settle [TABLE...]: VACUUM ANALYZE the tables (the whole database
# when none), then waits, at most a minute, until nothing else in the
# cluster is active, and says so when it never is.  What a run commits
# leaves work behind it (autovacuum of the tables it filled, the
# announcer's NOTIFYs of its log entries), and a run timed while that work
# keeps the other CPU busy is not comparable with one timed on a quiet
# machine: on this kind of virtual machine a statement's round trip between
# a client and its backend wakes an idle CPU each time, unless another
# process keeps it awake, and is twice as fast when one does.
bench_settle() {
	local psql=("$bindir/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d postgres)
	local tables quiet=0
	tables=$(IFS=,; echo "$*")
	"${psql[@]}" -c "VACUUM ANALYZE $tables" >/dev/null
	for _ in $(seq 1 300); do
		if [ "$("${psql[@]}" -c "SELECT count(*) FROM pg_stat_activity
		                         WHERE pid <> pg_backend_pid() AND state = 'active'
		                            OR backend_type = 'autovacuum worker'")" = 0 ]; then
			quiet=$((quiet + 1))
			[ "$quiet" -ge 5 ] && return 0
		else
			quiet=0
		fi
		sleep 0.2
	done
	echo "   (the server was still busy after a minute; timing anyway)" >&2
}

# workers_drain_rate COUNT BACKLOG SECONDS START [ARGS...]: processor
# workers' drain rate.  COUNT prints how many packages are pending; START
# ARGS starts the workers (a restart).  Readings every 0.2 s from the
# first fall of the count until SECONDS later or a tenth of BACKLOG is
# left; prints the fall per second.
workers_drain_rate() {
	local count=$1 backlog=$2 seconds=$3 p0 p t start_p start_t
	shift 3
	p0=$("$count")
	"$@"
	for _ in $(seq 1 600); do
		p=$("$count")
		[ "$p" -lt "$p0" ] && break
		sleep 0.05
	done
	if [ "$p" -ge "$p0" ]; then
		echo "bench: the processor workers did not start (see $work/server.log)" >&2
		return 1
	fi
	start_p=$p start_t=$(date +%s.%N)
	while :; do
		sleep 0.2
		p=$("$count")
		t=$(date +%s.%N)
		[ "$p" -le $((backlog / 10)) ] && break
		awk -v a="$t" -v b="$start_t" -v s="$seconds" 'BEGIN { exit !(a - b >= s) }' && break
	done
	awk -v p0="$start_p" -v p1="$p" -v t0="$start_t" -v t1="$t" 'BEGIN { printf "%.1f\n", (p0 - p1) / (t1 - t0) }'
}
