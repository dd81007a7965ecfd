# ALTER EXTENSION jam UPDATE from 1.4 to the default version, on a
# database that 1.4 made itself (CREATE EXTENSION jam VERSION '1.4') and
# filled through the API: single and batched packages, reports applied and
# failed, a tenant's services, preimages, and a cleanup that deleted some
# packages and reports before the update.
#
# 1.5 keeps, in each service row, the counts of its packages and reports by
# outcome, from which the lists' totals are read instead of counting every
# row.  So after the update every row must be as before (on the columns it
# had), and the new counts must be exactly what the rows say; every total
# must equal the count of its rows, for the operator and for a tenant's
# token; a session connected across the update must switch to the counts
# and keep them exact as it submits and processes; processing and cleanup
# after the update must keep them exact; then pg_dump and restore at the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines submit_each submit_batch
  updates_keeping_state restored_with_heads index_scans $latest_version);

my $db = 'jam_from_1_4';
my $node = upgrade_node('upgrade_1_4', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# Every service's counts against its rows, as "service: stored = expected"
# for each that differs; empty when all agree.
my $counts_off = q{
	SELECT coalesce(string_agg(format('%s: %s %s', s.service_id,
	         ARRAY[s.pending_count, s.applied_count, s.failed_count, s.applied_report_count, s.failed_report_count],
	         ARRAY[coalesce(p.pending, 0), coalesce(p.applied, 0), coalesce(p.failed, 0),
	               coalesce(r.applied, 0), coalesce(r.failed, 0)]), '; ' ORDER BY s.service_id), '')
	FROM jam.jam_services s
	LEFT JOIN (SELECT service_id, count(*) FILTER (WHERE status = 'pending') AS pending,
	                  count(*) FILTER (WHERE status = 'applied') AS applied,
	                  count(*) FILTER (WHERE status = 'failed') AS failed
	           FROM jam.jam_work_packages GROUP BY service_id) p USING (service_id)
	LEFT JOIN (SELECT service_id, count(*) FILTER (WHERE status = 'applied') AS applied,
	                  count(*) FILTER (WHERE status = 'failed') AS failed
	           FROM jam.jam_work_reports GROUP BY service_id) r USING (service_id)
	WHERE ARRAY[s.pending_count, s.applied_count, s.failed_count, s.applied_report_count, s.failed_report_count]
	   <> ARRAY[coalesce(p.pending, 0), coalesce(p.applied, 0), coalesce(p.failed, 0),
	            coalesce(r.applied, 0), coalesce(r.failed, 0)]};

# Every filter of both lists whose total is not the count of its rows,
# with how many filters were compared: "0 of N".
my $totals_off = q{
	WITH f AS (
	    SELECT l, s, st
	    FROM (VALUES ('packages'), ('reports')) AS a(l),
	         (SELECT NULL::text UNION ALL SELECT service_id FROM jam.jam_services) AS b(s),
	         (VALUES (NULL::text), ('pending'), ('applied'), ('failed')) AS c(st)
	    WHERE l = 'packages' OR st IS DISTINCT FROM 'pending')
	SELECT count(*) FILTER (WHERE total <> counted) || ' of ' || count(*) FROM (
	    SELECT CASE l WHEN 'packages' THEN (jam.jam_list_packages(st, s, 1)->>'total')::bigint
	                  ELSE (jam.jam_list_reports(s, st, 1)->>'total')::bigint END AS total,
	           CASE l WHEN 'packages' THEN (SELECT count(*) FROM jam.jam_work_packages p
	                                        WHERE (s IS NULL OR p.service_id = s) AND (st IS NULL OR p.status = st))
	                  ELSE (SELECT count(*) FROM jam.jam_work_reports r
	                        WHERE (s IS NULL OR r.service_id = s) AND (st IS NULL OR r.status = st)) END AS counted
	    FROM f) x};

# --- 1. Install 1.4 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.4', 'u14');
sql(q{SELECT jam.jam_register_service('acme-a', 'public.u14_refine(bytea, bytea[])', 'acme')});
my $acme = sql(q{SELECT jam.jam_create_token('acme', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
my $shared = sql(q{SELECT jam.jam_put_preimage(convert_to('shared bytes', 'UTF8'), 'text/plain')->>'hash'});

my @packages = submit_each($node, $db, $shared, [ 'u-refine', 'r1' ], [ 'u-refine', 'r2' ], [ 'u-refine', 'r3' ],
	[ 'u-fails', 'f1' ], [ 'u-fails', 'f2' ], [ 'u-old', 'o1' ], [ 'u-old', 'o2' ]);
push @packages, submit_batch($node, $db, 'u-batch', qw(x1 x2 x3 x4));
push @packages, sql(as_token(q{jam.jam_submit_package('acme-a', convert_to('a1', 'UTF8'))->>'id'}, $acme));
push @packages, sql(as_token(q{jam.jam_submit_package('acme-a', convert_to('a2', 'UTF8'))->>'id'}, $acme));
is(scalar(grep { /^[0-9a-f]{64}$/ } @packages), 13, 'submitted 13 packages, 4 of them in a batch');

my @report_hashes;
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-refine')})->{report_hash};
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-fails')})->{report_hash};
push @report_hashes, map { $_->{report_hash} } @{ jsql(q{SELECT jam.jam_process_packages('u-batch', 3)->'reports'}) };
push @report_hashes, map { $_->{report_hash} } @{ jsql(q{SELECT jam.jam_process_packages('u-old', 2)->'reports'}) };
push @report_hashes, jsql(as_token(q{jam.jam_process_next('acme-a')}, $acme))->{report_hash};
is(scalar(grep { /^[0-9a-f]{64}$/ } @report_hashes), 8, 'eight reports, one of them failed');

# A cleanup at 1.4: u-old's packages and one of its reports are past the cutoff.
sql(q{UPDATE jam.jam_work_packages SET submitted_at = submitted_at - interval '100 days' WHERE service_id = 'u-old';
	  UPDATE jam.jam_work_reports SET created_at = created_at - interval '100 days'
	  WHERE service_id = 'u-old' AND seq = (SELECT min(seq) FROM jam.jam_work_reports WHERE service_id = 'u-old')});
my $cleaned = jsql(q{SELECT jam.jam_cleanup()});
is("$cleaned->{packages_deleted} $cleaned->{reports_deleted}", '2 1', '1.4: a cleanup deleted 2 packages and 1 report');
@packages = grep { sql("SELECT count(*) FROM jam.jam_work_packages WHERE id = decode('$_', 'hex')") } @packages;
@report_hashes = grep { sql("SELECT count(*) FROM jam.jam_work_reports WHERE report_hash = decode('$_', 'hex')") }
  @report_hashes;

# A session that lists before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
is($session->query(q{SELECT jam.jam_list_packages()->>'total'}), '11', '1.4: the session lists 11 packages');

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);

# --- 3. What 1.5 adds: counts by outcome, and the totals read from them -----

is(sql(q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull, ', ' ORDER BY attnum)
	      FROM pg_attribute WHERE attrelid = 'jam.jam_services'::regclass AND attname LIKE '%\_count'}),
	'pending_count bigint true, applied_count bigint true, failed_count bigint true, '
	  . 'applied_report_count bigint true, failed_report_count bigint true', 'jam_services has the four new counts, beside pending_count');
is(sql(q{SELECT string_agg(conname, ' ' ORDER BY conname) FROM pg_constraint
	      WHERE conrelid = 'jam.jam_services'::regclass AND contype = 'c'}),
	'jam_services_row_check',
	'one check of the whole row (1.8), all its counts among them');
is(sql($counts_off), '', 'every service\'s counts are what its rows say');
is(sql(q{SELECT applied_count || '/' || failed_count || ' ' || applied_report_count || '/' || failed_report_count
	      FROM jam.jam_services WHERE service_id = 'u-old'}), '0/0 1/0',
	'u-old: its packages gone, one applied report left');
is(sql($totals_off), '0 of 42', 'every total of both lists is the count of its rows');
my $fsck = jsql(q{SELECT jam.jam_fsck()});
is("$fsck->{count_drift_count} $fsck->{pending_drift_count} $fsck->{drift_count}", '0 0 0', 'jam_fsck finds no drift');
is(sql(as_token(q{(jam.jam_list_packages()->>'total') || ' ' || (jam.jam_list_reports()->>'total')}, $acme)), '2 1',
	"acme's token: the totals of its service only");

# The session connected across the update reads the counts and keeps them.
is($session->query(q{SELECT jam.jam_list_packages()->>'total'}), '11', 'the session connected across the update lists 11');
$session->query(q{SELECT jam.jam_submit_package('u-fails', convert_to('f3', 'UTF8'))});
$session->query(q{SELECT jam.jam_process_packages('u-fails', 10)});
$session->query(q{SELECT jam.jam_process_next('u-refine')});
is($session->query(q{SELECT jam.jam_list_packages('failed', 'u-fails')->>'total'}), '3',
	'and, having submitted and processed, counts u-fails\' 3 failed packages');
$session->quit;
is(sql($counts_off), '', 'its submits and outcomes kept every count exact');

# Processing and cleanup after the update.
sql(as_token(q{jam.jam_process_next()}, $acme));
sql(q{SELECT jam.jam_process_packages('u-batch', 10)});
sql(q{UPDATE jam.jam_work_packages SET submitted_at = submitted_at - interval '100 days' WHERE service_id = 'u-batch';
	  UPDATE jam.jam_work_reports SET created_at = created_at - interval '100 days' WHERE service_id IN ('u-batch', 'u-old')});
$cleaned = jsql(q{SELECT jam.jam_cleanup()});
is("$cleaned->{packages_deleted} $cleaned->{reports_deleted}", '4 5', 'after the update: a cleanup deletes 4 packages and 5 reports');
is(sql($counts_off), '', 'processing and cleanup after the update keep every count exact');
is(sql($totals_off), '0 of 42', 'and every total');

# --- 4. pg_dump of the updated database, restored into a new one ------------

my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is(sql($counts_off, $rdb), '', 'restored: every count exact');
is(sql($totals_off, $rdb), '0 of 42', 'restored: every total');

$node->stop;
done_testing();
