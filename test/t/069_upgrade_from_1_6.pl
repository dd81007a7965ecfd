# ALTER EXTENSION jam UPDATE from 1.6 to the default version, on a
# database that 1.6 made itself (CREATE EXTENSION jam VERSION '1.6') and
# filled through the API: packages single and batched, 300 more in a
# service whose refine fails them all, 300 applied in another, some left
# pending, reports applied and failed, a tenant's token.
#
# 1.7 adds partial indexes of the failed packages and failed reports by
# (service_id, seq), through which a page of one service's failed rows is
# found instead of walking the service's rows or every failed row, and an
# index of the attestations by (service_id, attester, id).  So
# after the update every row must be as before, every sequence, every
# function's rights, every receipt and checkpoint; every page by service
# and status must answer as before; a page of a service's failed packages
# must read the new index, in a new session and in one connected across
# the update (whose cached plans predate it); then pg_dump and restore at
# the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines filled_through_api
  updates_keeping_state restored_with_heads index_scans $latest_version);

my $db = 'jam_from_1_6';
my $node = upgrade_node('upgrade_1_6', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# Every page by service and status a client may ask for, of packages and
# reports, by offset and a keyset page after the first, each service's
# attestations by the node, and the tenant's failed packages and its
# attestations by the node; { name => ids }.
sub all_lists
{
	my ($run, $token) = @_;
	my %lists;
	for my $service (q{'u-refine'}, q{'u-fails'}, q{'u-batch'}) {
		for my $status (q{'pending'}, q{'applied'}, q{'failed'}) {
			$lists{"packages $service $status"} = $run->(qq{SELECT string_agg(i->>'id', ',') || ' '
				|| (l->>'total') FROM (SELECT jam.jam_list_packages($status, $service, 100) l) x,
				LATERAL jsonb_array_elements(l->'items') i GROUP BY l->>'total'});
			$lists{"keyset packages $service $status"} = $run->(qq{SELECT string_agg(i->>'id', ',')
				FROM jsonb_array_elements(jam.jam_list_packages($status, $service, 50,
				  after => (jam.jam_list_packages($status, $service, 3, after => 0)->>'next_after')::bigint)->'items') i});
			$lists{"attestations $service"} = $run->(qq{SELECT string_agg(i->>'id', ',')
				FROM jsonb_array_elements(jam.jam_list_attestations($service, current_setting('jam.node_name'))->'items') i});
			next if $status eq q{'pending'};
			$lists{"reports $service $status"} = $run->(qq{SELECT string_agg(i->>'package_id', ',')
				FROM jsonb_array_elements(jam.jam_list_reports($service, $status, 100)->'items') i});
		}
	}
	$lists{'tenant failed'} = $run->(as_token(q{(SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(
		jam.jam_list_packages('failed')->'items') i)}, $token));
	$lists{'tenant attestations'} = $run->(as_token(q{(SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(
		jam.jam_list_attestations(attester => current_setting('jam.node_name'))->'items') i)}, $token));
	return \%lists;
}

# How many times a page used jam_work_packages_service_failed_idx, and the page's ids.
sub with_index_scans { my ($run) = @_; return index_scans($run, 'jam_work_packages_service_failed_idx',
	q{SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(jam.jam_list_packages('failed', 'u-fails', 20)->'items') i}); }

# --- 1. Install 1.6 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.6', 'u16');
my ($acme, $packages, $reports) = filled_through_api($node, $db, 2);
my @packages = @$packages;
my @report_hashes = @$reports;

# A history: 300 failed packages of u-fails among 300 applied of u-bulk,
# so that walking either would be the slow way; the tenant's own failed one.
is(sql(q{SELECT count(jam.jam_submit_package(CASE WHEN g % 2 = 0 THEN 'u-fails' ELSE 'u-bulk' END,
	convert_to('h ' || g, 'UTF8'))) FROM generate_series(1, 600) g}), '600', '600 more packages');
is(sql(q{SELECT (jam.jam_process_packages('u-fails', 300)->>'processed') || ' '
	|| (jam.jam_process_packages('u-bulk', 300)->>'processed')}), '300 300', 'all processed');
sql(q{SELECT jam.jam_register_service('acme-f', 'public.u16_refine_fails(bytea, bytea[])', 'acme')});
sql(as_token(q{jam.jam_submit_package('acme-f', convert_to('af', 'UTF8'))}, $acme));
sql(as_token(q{jam.jam_process_next('acme-f')}, $acme));
sql('VACUUM ANALYZE jam.jam_work_packages');
is(sql(q{SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM
	(SELECT status, count(*) AS n FROM jam.jam_work_packages GROUP BY status) s}),
	'applied 305, failed 302, pending 2', '1.6: 305 applied, 302 failed, 2 pending');

my $in_db = sub { return sql($_[0]); };
my $lists_before = all_lists($in_db, $acme);
like($lists_before->{"packages 'u-fails' 'failed'"}, qr/ 301$/, "1.6: u-fails's failed page totals 301");
is($lists_before->{'tenant failed'} =~ tr/,//, 0, "1.6: the tenant's failed page holds its one package");

# A session that lists before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
my $in_session = sub { return $session->query($_[0]); };
my ($scans, $page) = with_index_scans($in_session);
my $failed_page = $page;
is($scans, 'no index', '1.6: the session lists u-fails\'s failed page, without the index');

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);
is_deeply(all_lists($in_db, $acme), $lists_before, 'every page by service and status answers as before');

# --- 3. What 1.7 adds: a service's failed rows through partial indexes ------

is(sql(q{SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid, E'\n' ORDER BY pg_get_indexdef(i.indexrelid)) FROM pg_index i
	      WHERE i.indexrelid IN ('jam.jam_work_packages_service_failed_idx'::regclass,
	                             'jam.jam_work_reports_service_failed_idx'::regclass,
	                             'jam.jam_attestations_service_attester_idx'::regclass)}),
	"CREATE INDEX jam_attestations_service_attester_idx ON jam.jam_attestations USING btree (service_id, attester, id) true\n"
	  . "CREATE INDEX jam_work_packages_service_failed_idx ON jam.jam_work_packages USING btree (service_id, seq) WHERE (status = 'failed'::text) true\n"
	  . "CREATE INDEX jam_work_reports_service_failed_idx ON jam.jam_work_reports USING btree (service_id, seq) WHERE (status = 'failed'::text) true",
	'the failed packages and reports by (service_id, seq), the attestations by (service_id, attester, id), valid');
($scans, $page) = with_index_scans($in_session);
ok($scans > 0 && $page eq $failed_page,
	"the session connected across the update: its plan made again, through the index ($scans scans)");
my $node_page = q{SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(
	jam.jam_list_attestations('u-refine', current_setting('jam.node_name'))->'items') i};
($scans, $page) = index_scans($in_session, 'jam_attestations_service_attester_idx', $node_page);
ok($scans > 0 && $page eq $lists_before->{"attestations 'u-refine'"},
	"and its page of u-refine's attestations by the node, through the attestations' new index ($scans scans)");
$session->quit;
($scans, $page) = with_index_scans($in_db);
ok($scans > 0 && $page eq $failed_page, "a new session: through the index ($scans scans)");

# Processing after the update goes on into the same lists and counts.
jsql(q{SELECT jam.jam_submit_package('u-fails', convert_to('f-after', 'UTF8'))});
my $new = jsql(q{SELECT jam.jam_process_next('u-fails')});
is($new->{status}, 'failed', 'a package of u-fails fails after the update');
is(sql(q{SELECT (jam.jam_list_packages('failed', 'u-fails', 1, after => (SELECT max(seq) - 1 FROM jam.jam_work_packages))->'items'->0->>'id')
	|| ' ' || (jam.jam_list_packages('failed', 'u-fails')->>'total')}), "$new->{package_id} 302",
	"it is the last of u-fails's failed page, whose total is 302");

# --- 4. pg_dump of the updated database, restored into a new one ------------

my $src_lists = all_lists($in_db, $acme);
my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is_deeply(all_lists(sub { return sql($_[0], $rdb); }, $acme), $src_lists, 'restored: every page by service and status');
is(sql(q{SELECT count(*) FROM pg_index WHERE indexrelid IN ('jam.jam_work_packages_service_failed_idx'::regclass,
		'jam.jam_work_reports_service_failed_idx'::regclass, 'jam.jam_attestations_service_attester_idx'::regclass)
		AND indisvalid}, $rdb), '3',
	'restored: the three indexes are there');

$node->stop;
done_testing();
