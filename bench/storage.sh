# Sourced by run.sh (its cluster, psql_q, record): table plus index bytes
# per package (heap, indexes and TOAST of jam_work_packages,
# jam_work_reports, jam_log_entries and jam_attestations) for the same
# BENCH_STORAGE_PACKAGES (default 10,000) processed packages, in a
# database created with jam VERSION '1.0' and one with the default version.
# shellcheck shell=bash disable=SC2154  # the variables and helpers of run.sh
stored=${BENCH_STORAGE_PACKAGES:-10000}
sharedir=$("$pg_config" --sharedir)
default_version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$sharedir/extension/jam.control")

if [ ! -f "$sharedir/extension/jam--1.0--1.1.sql" ]; then
	why="skipped: jam--1.0--1.1.sql is not installed, so there is no 1.1 to compare with 1.0"
	echo "storage_default_vs_1_0_ratio: $why"
	record storage_default_vs_1_0_ratio "$why" info
else
	echo "-- storage: $stored processed packages (1 KiB payloads), jam 1.0 against $default_version"
	psql_q -c 'CREATE DATABASE jam_store_old' -c 'CREATE DATABASE jam_store_new'
	psql_db jam_store_old -c "CREATE EXTENSION jam VERSION '1.0'"
	psql_db jam_store_new -c 'CREATE EXTENSION jam'
	# Side by side, one core each.
	psql_db jam_store_old -v n="$stored" -f "$here/storage_fill.sql" &
	old_pid=$!
	psql_db jam_store_new -v n="$stored" -f "$here/storage_fill.sql"
	wait "$old_pid"
	# per_package DB: bytes per package of the four tables, and each table's.
	per_package() {
		psql_db "$1" -F ' ' -c "
			SELECT round(sum(b) / $stored), string_agg(t || '=' || round(b / $stored), ' ' ORDER BY t)
			FROM (SELECT t, pg_total_relation_size(('jam.' || t)::regclass) AS b
			      FROM unnest(ARRAY['jam_work_packages', 'jam_work_reports', 'jam_log_entries',
			                        'jam_attestations']) AS t) s"
	}
	for db in jam_store_old jam_store_new; do
		applied=$(psql_db "$db" -c "SELECT count(*) FROM jam.jam_work_packages WHERE status = 'applied'")
		[ "$applied" = "$stored" ] || { echo "bench: $db holds $applied applied packages, not $stored" >&2; exit 1; }
	done
	read -r old_bytes old_tables <<<"$(per_package jam_store_old)"
	read -r new_bytes new_tables <<<"$(per_package jam_store_new)"
	new_version=$(psql_db jam_store_new -c "SELECT extversion FROM pg_extension WHERE extname = 'jam'")
	echo "   1.0: $old_tables"
	echo "   $new_version: $new_tables"
	echo "storage_bytes_per_package_1_0=$old_bytes"
	echo "storage_bytes_per_package_${new_version//./_}=$new_bytes"
	echo "storage_default_vs_1_0_ratio=$(ratio "$new_bytes" "$old_bytes")"
	record storage_default_vs_1_0_ratio "$(ratio "$new_bytes" "$old_bytes")" info
fi
