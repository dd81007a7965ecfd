# ALTER EXTENSION jam UPDATE from 1.7 to the default version, on a
# database that 1.7 made itself (CREATE EXTENSION jam VERSION '1.7') and
# filled through the API: packages single and batched, reports applied and
# failed, pending packages, a tenant's token.
#
# 1.8 replaces the eighteen column checks of jam_work_packages,
# jam_log_entries, jam_services and jam_work_reports by one check a table,
# a C function of the columns (src/row_checks.c), which PostgreSQL reads
# and plans at a third of the cost at every statement that writes the
# table.  So after the update every row must be as before, every sequence,
# every function's rights, every receipt and checkpoint; each table must
# hold exactly its one check, validated against the rows 1.7 wrote; a
# broken row must be refused by it, also in a session connected across the
# update; submits and processing must go on, in that session too; then
# pg_dump and restore at the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines filled_through_api
  updates_keeping_state restored_with_heads $latest_version);

my $db = 'jam_from_1_7';
my $node = upgrade_node('upgrade_1_7', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }

# The check constraints of the four tables, one line each: table, name,
# validated, definition.
my $checks_query = q{SELECT string_agg(conrelid::regclass || ' ' || conname || ' ' || convalidated
	|| ' ' || pg_get_constraintdef(oid), E'\n' ORDER BY conrelid::regclass::text, conname)
	FROM pg_constraint WHERE contype = 'c' AND conrelid IN ('jam.jam_work_packages'::regclass,
	  'jam.jam_log_entries'::regclass, 'jam.jam_services'::regclass, 'jam.jam_work_reports'::regclass)};

# Writes that break a rule of each table, each rolled back; the constraint
# that refused each, or 'accepted'.
my @broken = (
	q{UPDATE jam.jam_work_packages SET weight_hint = 0 WHERE service_id = 'u-refine'},
	q{INSERT INTO jam.jam_log_entries SELECT service_id, 1000, 'preimage', hash, status, processed_at,
	  entry, leaf_hash, prev_root, new_root, nodes, package_id FROM jam.jam_log_entries WHERE seq = 0 LIMIT 1},
	q{UPDATE jam.jam_services SET pending_count = -1 WHERE service_id = 'u-refine'},
	q{UPDATE jam.jam_work_reports SET failure_reason = 'no' WHERE status = 'applied'},
);
my $refused_by = join("\n", map { my $s = $_; $s =~ s/'/''/g; qq{SELECT pg_temp.refused('$s');} } @broken);
my $refused_function = q{CREATE FUNCTION pg_temp.refused(sql text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE name text;
	BEGIN
	    EXECUTE sql;
	    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'accepted';
	EXCEPTION
	    WHEN check_violation THEN GET STACKED DIAGNOSTICS name = CONSTRAINT_NAME; RETURN name;
	    WHEN raise_exception THEN RETURN SQLERRM;
	END $$;};

# --- 1. Install 1.7 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.7', 'u17');
my ($acme, $packages, $reports) = filled_through_api($node, $db, 2);
my @packages = @$packages;
my @report_hashes = @$reports;
is(sql(q{SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid IN ('jam.jam_work_packages'::regclass,
	'jam.jam_log_entries'::regclass, 'jam.jam_services'::regclass, 'jam.jam_work_reports'::regclass)}),
	'18', '1.7: the four tables hold eighteen column checks');

# A session that writes before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
$session->query_safe($refused_function);
is($session->query($refused_by),
	join("\n", qw(jam_work_packages_weight_hint_check jam_log_entries_kind_check
	  jam_services_counts_check jam_work_reports_check1)),
	'1.7: the session sees broken rows refused by the column checks');
is($session->query(q{SELECT jam.jam_submit_package('u-batch', convert_to('s-before', 'UTF8'))->>'created'}),
	'true', '1.7: the session submits');

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);

# --- 3. What 1.8 changes: one check a table ---------------------------------

is(sql($checks_query), join("\n",
	'jam.jam_log_entries jam_log_entries_row_check true CHECK (jam.jam_log_entry_row_valid(seq, kind, status, package_id))',
	'jam.jam_services jam_services_row_check true CHECK (jam.jam_service_row_valid(service_id, log_root, share, log_size, '
	  . 'pending_count, applied_count, failed_count, applied_report_count, failed_report_count))',
	'jam.jam_work_packages jam_work_packages_row_check true CHECK (jam.jam_package_row_valid(id, weight_hint, status))',
	'jam.jam_work_reports jam_work_reports_row_check true CHECK (jam.jam_report_row_valid(package_id, report_hash, '
	  . 'output_hash, refine_hash, status, output, failure_reason))'),
	'each table holds one check, validated against the rows 1.7 wrote');
my @row_checks = qw(jam_work_packages_row_check jam_log_entries_row_check
	jam_services_row_check jam_work_reports_row_check);
is($session->query($refused_by), join("\n", @row_checks),
	'the session connected across the update: the same broken rows, refused by the new checks');
is(sql("$refused_function $refused_by"), join("\n", @row_checks), 'and in a new session');

# Writing goes on, in the session across the update and in a new one.
is($session->query(q{SELECT jam.jam_submit_package('u-batch', convert_to('s-after', 'UTF8'))->>'created'}),
	'true', 'the session submits after the update');
is($session->query(q{SELECT jam.jam_process_packages('u-batch', 10)->>'processed'}), '4',
	'and processes u-batch\'s pending packages, its own two among them');
$session->quit;
sql(q{SELECT jam.jam_submit_package('u-fails', convert_to('f-after', 'UTF8'))});
is(jsql(q{SELECT jam.jam_process_next('u-fails')})->{status}, 'failed', 'a new session: a package of u-fails fails');
is(sql(q{SELECT string_agg(service_id || ' ' || pending_count || ' ' || applied_count || ' ' || failed_count
	|| ' ' || log_size, ', ' ORDER BY service_id) FROM jam.jam_services}),
	'acme-a 0 1 0 2, u-batch 0 6 0 12, u-fails 0 0 2 4, u-refine 0 2 0 4',
	'every service\'s counts and log size add up');

# --- 4. pg_dump of the updated database, restored into a new one ------------

my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is(sql($checks_query, $rdb), sql($checks_query), 'restored: the same four checks');

$node->stop;
done_testing();
