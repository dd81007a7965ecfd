#!/usr/bin/env bash
# jam's cleanup benchmark: jam_cleanup() against a plain batched DELETE of
# the same rows.
#
# Starts a throwaway cluster (as the postgres user, on a free loopback port,
# preloading jam) and fills jam's tables with expired data written straight
# into them with INSERT ... SELECT generate_series: BENCH_CLEANUP_PACKAGES
# packages (default 1,000,000) of 16 services, half of them pending,
# submitted 300 days ago, each referencing a preimage of its own and its
# service's shared one (all preimages 400 days old), with the refcounts,
# pending counts and (1.5) counts by outcome those rows make.
# Then, on a fresh copy of the same data each time:
#
#   plain  a procedure deleting the same packages, then the same preimages,
#          the way jam_cleanup walks them (src/retention.c): oldest first,
#          jam.retention_batch_size rows per transaction, each batch read
#          from the timestamp's index starting at the newest timestamp the
#          batch before it deleted, and deleted by ctid; with nothing else
#          (no refcounts, no pending counts, no row locks, no SKIP LOCKED);
#   jam    SELECT jam_cleanup(), same batch size, which also lowers every
#          refcount and service count the deleted packages held.
#
# BENCH_CLEANUP_ROUNDS rounds (default 3) of one run each, plain first in
# odd rounds and jam first in even ones, so that drift hits both alike;
# each side's shortest run counts (on a shared machine, other work only
# ever slows a run down), as in run.sh.  Prints every run, both times and
# cleanup_vs_plain_delete_ratio = jam / plain (target: at most 1.5).  The
# cluster is removed at the end.
#
# Run as root (make bench) or as the postgres user, after make install.
# Knobs (environment): BENCH_CLEANUP_PACKAGES, BENCH_CLEANUP_BATCH (default
# 1000), BENCH_CLEANUP_ROUNDS, PG_CONFIG.
set -euo pipefail

packages=${BENCH_CLEANUP_PACKAGES:-1000000}
batch=${BENCH_CLEANUP_BATCH:-1000}
rounds=${BENCH_CLEANUP_ROUNDS:-3}
target=1.5

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"
bench_cluster .jam-bench-cleanup 'shared_buffers = 512MB' 'max_wal_size = 8GB' \
	'checkpoint_timeout = 30min' "jam.retention_batch_size = $batch"
echo "== jam cleanup benchmark: cluster in $work, port $port"

conn=(-h 127.0.0.1 -p "$port" -U postgres -d postgres)
psql_q() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 "${conn[@]}" "$@"; }
psql_q -c "CREATE EXTENSION jam"

# The baseline: the same rows, oldest first, one batch per transaction,
# walked as jam_cleanup walks them.  Each batch takes the oldest rows from
# the resume point on (a range scan of the timestamp's index, so that no
# batch walks again past the index entries of the rows earlier batches
# deleted) and deletes them by the ctids that scan returned (no second
# lookup through the primary key); the resume point moves to the newest
# timestamp the batch deleted.  Ties: the next batch starts at that
# timestamp itself (>=), where the rows the batch deleted are gone and the
# ones sharing it that its LIMIT left out are still there, so no row is
# skipped or deleted twice.  A batch deleting fewer rows than the batch
# size found all that was left.
# delete_loop TABLE COLUMN: the procedure's loop over one table, in PL/pgSQL
# (static SQL, planned once like jam's statements).
delete_loop() {
	cat <<SQL
    resume := '-infinity';
    LOOP
        WITH d AS (
            DELETE FROM $1 WHERE ctid = ANY (ARRAY(
                SELECT ctid FROM $1
                WHERE $2 < cutoff AND $2 >= resume
                ORDER BY $2 LIMIT batch))
            RETURNING $2)
        SELECT count(*), max($2) INTO n, newest FROM d;
        COMMIT;
        EXIT WHEN n < batch;
        resume := newest;
    END LOOP;
SQL
}
psql_q <<SQL
CREATE PROCEDURE plain_delete(cutoff timestamptz, batch integer)
LANGUAGE plpgsql AS \$\$
DECLARE
    resume timestamptz;
    newest timestamptz;
    n bigint;
BEGIN
$(delete_loop jam.jam_work_packages submitted_at)
$(delete_loop jam.jam_preimages created_at)
END
\$\$;
SQL

# A fresh copy of the same data: emptied tables, refilled, vacuumed,
# analyzed and checkpointed, so that both sides start from the same state.
fill() {
	psql_q -v n="$packages" <<'SQL'
TRUNCATE jam.jam_work_packages, jam.jam_preimages, jam.jam_services,
         jam.jam_work_reports, jam.jam_attestations;
-- hashes the way the installed version stores them: hex (1.0) or bytes (1.1)
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'jam.jam_preimages'::regclass AND attname = 'hash') = 'bytea'::regtype THEN
        CREATE FUNCTION pg_temp.stored(hex text) RETURNS bytea
        LANGUAGE sql IMMUTABLE AS $f$SELECT decode(hex, 'hex')$f$;
    ELSE
        CREATE FUNCTION pg_temp.stored(hex text) RETURNS text
        LANGUAGE sql IMMUTABLE AS 'SELECT hex';
    END IF;
END
$$;
-- package g references preimage g and the shared preimage of its service g % 16
INSERT INTO jam.jam_preimages (hash, data, size, media_type, refcount, created_at)
SELECT pg_temp.stored(md5('pre' || i) || md5('pre:' || i)), convert_to('preimage ' || i, 'UTF8'),
       octet_length(convert_to('preimage ' || i, 'UTF8')), 'application/octet-stream', 1,
       now() - interval '400 days' + i * interval '1 ms'
FROM generate_series(1, :n) AS i;
INSERT INTO jam.jam_preimages (hash, data, size, media_type, refcount, created_at)
SELECT pg_temp.stored(md5('shared' || s) || md5('shared:' || s)), convert_to('shared ' || s, 'UTF8'),
       octet_length(convert_to('shared ' || s, 'UTF8')), 'application/octet-stream', count(*),
       now() - interval '400 days'
FROM generate_series(1, :n) AS g, LATERAL (SELECT g % 16) AS x(s) GROUP BY s;
INSERT INTO jam.jam_services (service_id, pending_count)
SELECT 'bench-' || s, count(*) FILTER (WHERE g % 2 = 0)
FROM generate_series(1, :n) AS g, LATERAL (SELECT g % 16) AS x(s) GROUP BY s;
INSERT INTO jam.jam_work_packages (id, service_id, contract_version, weight_hint, payload,
                                   preimage_hashes, status, submitted_at)
SELECT pg_temp.stored(md5('pkg' || g) || md5('pkg:' || g)), 'bench-' || (g % 16), 1, 1,
       convert_to('payload ' || g, 'UTF8'),
       ARRAY[pg_temp.stored(md5('pre' || g) || md5('pre:' || g)),
             pg_temp.stored(md5('shared' || (g % 16)) || md5('shared:' || (g % 16)))],
       CASE WHEN g % 2 = 0 THEN 'pending' ELSE 'applied' END,
       now() - interval '300 days' + g * interval '1 ms'
FROM generate_series(1, :n) AS g;
-- the counts by outcome the rows make, where the version keeps them (1.5)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'jam.jam_services'::regclass
               AND attname = 'applied_count') THEN
        UPDATE jam.jam_services s SET applied_count = c.n
        FROM (SELECT service_id, count(*) AS n FROM jam.jam_work_packages
              WHERE status = 'applied' GROUP BY service_id) c
        WHERE c.service_id = s.service_id;
    END IF;
END
$$;
SQL
	psql_q -c "VACUUM ANALYZE jam.jam_work_packages, jam.jam_preimages, jam.jam_services" \
		-c "CHECKPOINT"
}

# Milliseconds a command takes, measured by psql around the statement.
timed() {
	psql_q -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
}

# One run of each side on a fresh fill, checked: the plain delete must leave
# no row, jam_cleanup no row and no drifted count.
plain_ms=()
jam_ms=()
run_plain() {
	local ms left
	fill
	ms=$(timed "CALL plain_delete(now() - interval '30 days', $batch)")
	left=$(psql_q -c "SELECT (SELECT count(*) FROM jam.jam_work_packages) + (SELECT count(*) FROM jam.jam_preimages)")
	[ "$left" = 0 ] || { echo "bench: the plain delete left $left rows" >&2; exit 1; }
	plain_ms+=("$ms")
	printf '   round %d  plain batched DELETE  %s ms\n' "$1" "$ms"
}
run_jam() {
	local ms result
	fill
	ms=$(timed "SELECT jam.jam_cleanup(false)")
	result=$(psql_q -c "SELECT jsonb_build_object('packages', (SELECT count(*) FROM jam.jam_work_packages),
	                                              'preimages', (SELECT count(*) FROM jam.jam_preimages),
	                                              'drift', (SELECT (f->>'drift_count')::int + (f->>'pending_drift_count')::int
	                                                               + coalesce((f->>'count_drift_count')::int, 0)
	                                                        FROM jam.jam_fsck() AS f))")
	[ "$result" = '{"drift": 0, "packages": 0, "preimages": 0}' ] ||
		{ echo "bench: jam_cleanup left $result" >&2; exit 1; }
	jam_ms+=("$ms")
	printf '   round %d  jam_cleanup()         %s ms\n' "$1" "$ms"
}

echo "== $packages expired packages, $((packages + 16)) preimages, batches of $batch, $rounds rounds"
for round in $(seq 1 "$rounds"); do
	if [ $((round % 2)) -eq 1 ]; then
		run_plain "$round"
		run_jam "$round"
	else
		run_jam "$round"
		run_plain "$round"
	fi
done
grep -o 'jam cleanup: .*' "$work/server.log" | tail -n 1

best() { printf '%s\n' "$@" | sort -g | head -n 1; }
plain_best=$(best "${plain_ms[@]}")
jam_best=$(best "${jam_ms[@]}")
echo "plain batched DELETE: $plain_best ms (best of $rounds)"
echo "jam_cleanup():        $jam_best ms (best of $rounds)"
ratio=$(awk -v j="$jam_best" -v p="$plain_best" 'BEGIN { printf "%.2f", j / p }')
echo "cleanup_vs_plain_delete_ratio = $ratio (target <= $target)"
