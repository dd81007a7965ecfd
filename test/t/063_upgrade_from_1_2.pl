# ALTER EXTENSION jam UPDATE from 1.2 to the default version, on a
# database that 1.2 made itself (CREATE EXTENSION jam VERSION '1.2') and
# filled through the API: services with shares and a refine, a tenant,
# preimages, single and batched packages, reports applied and failed,
# signed attestations, tokens and quotas, events read back.
#
# 1.3 adds jam_log_entries.package_id, where a report's entry keeps its
# package (outside what the leaf commits to) for its event, and fills it
# for the reports already logged.  So after the update every row must be
# as before on 1.2's columns, every sequence, every function's rights,
# every receipt and checkpoint; the log must still refuse changes; the
# events of the reports logged before the update must now name their
# packages, in a new session, in one connected across the update (its
# cached answer is dropped when the column appears) and in the
# announcements of new reports; then pg_dump and restore at the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest::Upgrade qw(unverified_receipts upgrade_node install_with_refines updates_to submit_each
  submit_batch state_before same_state restored_or_finish $latest_version);

my $db = 'jam_from_1_2';
my $node = upgrade_node('upgrade_1_2', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# The events of a service's log, as jam_log_events reads them.
sub events { my ($service, $dbname) = @_; return jsql("SELECT jam.jam_log_events('$service')->'events'", $dbname); }

# "<report events naming their package>/<report events>" of a service's
# log, each checked against jam_work_reports.
sub reports_named
{
	my ($service, $dbname) = @_;
	my %package_of = map { split /\|/ } split /\n/,
	  sql("SELECT encode(report_hash, 'hex') || '|' || encode(package_id, 'hex') FROM jam.jam_work_reports", $dbname);
	my @reports = grep { $_->{kind} eq 'report' } @{ events($service, $dbname) };
	my $named = grep { ($_->{package_id} // '') eq ($package_of{ $_->{id} } // 'none') } @reports;
	return "$named/" . scalar(@reports);
}

# --- 1. Install 1.2 and fill it through the API ----------------------------

install_with_refines($node, $db, '1.2', 'u12');
sql(q{
	SELECT jam.jam_register_service('u-tenant', NULL, 'acme');});
my $admin = sql(q{SELECT jam.jam_create_token('u-admin', '{jam:admin}')});
my $acme = sql(q{SELECT jam.jam_create_token('acme', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
my $shared = sql(q{SELECT jam.jam_put_preimage(convert_to('shared bytes', 'UTF8'), 'text/plain')->>'hash'});

my @packages = submit_each($node, $db, $shared, [ 'u-refine', 'r1' ], [ 'u-refine', 'r2' ], [ 'u-fails', 'f1' ],
	[ 'u-builtin', 'b1' ], [ 'u-builtin', 'b2' ]);
push @packages, submit_batch($node, $db, 'u-batch', qw(x1 x2 x3));
push @packages, sql(as_token(q{jam.jam_submit_package('u-tenant', convert_to('t1', 'UTF8'))->>'id'}, $acme));
is(scalar(grep { /^[0-9a-f]{64}$/ } @packages), 9, 'submitted 9 packages, 3 of them in a batch');

# Reports: some processed one by one, a batch together, one left pending per service.
my @report_hashes;
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-refine')})->{report_hash};
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-fails')})->{report_hash};
push @report_hashes, map { $_->{report_hash} } @{ jsql(q{SELECT jam.jam_process_packages('u-batch', 2)->'reports'}) };
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-builtin')})->{report_hash};
push @report_hashes, jsql(as_token(q{jam.jam_process_next('u-tenant')}, $acme))->{report_hash};
is(scalar(grep { /^[0-9a-f]{64}$/ } @report_hashes), 6, 'six reports, one of them failed');

# On 1.2 a report's event names no package: the catalog cannot find it.
is(scalar(grep { exists $_->{package_id} } @{ events('u-batch') }), 0, '1.2: no event names a package');

my $session = $node->background_psql($db, on_error_stop => 0);
is($session->query(q{SELECT count(*) FROM jsonb_array_elements(jam.jam_log_events('u-refine')->'events') e
	WHERE e ? 'package_id'}), '0', 'a long-lived session reads the 1.2 events too');

my $checkpoints = q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services};
my $before = state_before($node, $db, $checkpoints);
my $events_before = { map { $_ => events($_) } qw(u-refine u-fails u-batch u-builtin u-tenant) };

# --- 2. Update --------------------------------------------------------------

updates_to($node, $db, $latest_version);

# --- 3. Everything as before ------------------------------------------------

# On 1.2's columns: 1.3 adds jam_log_entries.package_id.
my %columns_1_2 = map { $_ => $before->{rows}{$_}{columns} } keys %{ $before->{rows} };
same_state($node, $db, $before, [ @packages, @report_hashes ], \%columns_1_2);

# --- 4. What 1.3 adds: report events name their packages --------------------

is(sql(q{SELECT count(*) FILTER (WHERE e.package_id = r.package_id) || '/' || count(r.*) || '/'
	        || count(*) FILTER (WHERE e.package_id IS NULL AND e.kind = 'package') || '/' || count(*)
	      FROM jam.jam_log_entries e
	      LEFT JOIN jam.jam_work_reports r ON e.kind = 'report' AND r.report_hash = e.hash}),
	'6/6/9/15', 'jam_log_entries.package_id: filled for each of the 6 reports\' entries, null for the 9 packages\'');
my ($update_rc, undef, $update_err) = $node->psql($db, q{UPDATE jam.jam_log_entries SET status = 'failed' WHERE kind = 'report'});
ok($update_rc != 0 && $update_err =~ /append-only/, 'the log still refuses changes after the update filled it')
  or diag($update_err);
for my $service (qw(u-refine u-fails u-batch u-builtin u-tenant))
{
	my $n = grep { $_->{kind} eq 'report' } @{ $events_before->{$service} };
	is(reports_named($service), "$n/$n", "$service: each report stored before the update names its package");
	is_deeply([ map { my %e = %$_; delete $e{package_id}; \%e } @{ events($service) } ], $events_before->{$service},
		"$service: and the events are otherwise as before");
}
is($session->query(q{SELECT count(*) FROM jsonb_array_elements(jam.jam_log_events('u-refine')->'events') e
	WHERE e ? 'package_id'}), '1', 'the session connected across the update reads them too');
$session->quit;

# New work: a report announced live names its package.
my $listener = $node->background_psql($db, on_error_stop => 0);
$listener->query_safe('LISTEN jam_events');
my $p = sql(q{SELECT jam.jam_submit_package('u-refine', convert_to('after', 'UTF8'))->>'id'});
my $r = jsql(q{SELECT jam.jam_process_next('u-refine')});
my $heard;
for (1 .. 100)
{
	my $got = $listener->query('SELECT 1');
	($heard) = grep { $_->{kind} eq 'report' && $_->{id} eq $r->{report_hash} }
	  map { decode_json($_) } ($got =~ /Asynchronous notification "jam_events" with payload "(.*?)" received/g);
	last if $heard;
	usleep(100_000);
}
is($heard && $heard->{package_id}, $r->{package_id}, 'a new report is announced naming its package');
$listener->quit;
is(unverified_receipts($node, $db, $p, $r->{report_hash}), '0/2', 'and its receipts verify');

# --- 5. pg_dump of the updated database, restored into a new one -----------

my $src_checkpoints = jsql($checkpoints);
my $rdb = 'jam_restored';
restored_or_finish($node, $db, $rdb, $latest_version);
is_deeply(jsql($checkpoints, $rdb), $src_checkpoints, 'restored: the same signed checkpoints');
my $n = grep { $_->{kind} eq 'report' } @{ events('u-batch', $rdb) };
is(reports_named('u-batch', $rdb), "$n/$n", 'restored: report events name their packages');

$node->stop;
done_testing();
