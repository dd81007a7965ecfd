# ALTER EXTENSION jam UPDATE from 1.3 to the default version, on a
# database that 1.3 made itself (CREATE EXTENSION jam VERSION '1.3') and
# filled through the API: services with shares and a refine, two tenants
# (one holding a thousand services), preimages, single and batched
# packages, reports applied and failed, tokens and quotas, events.
#
# 1.4 adds jam_services_tenant_idx, through which a tenant's token finds
# its tenant's services instead of reading every service.  So after the
# update every row must be as before, every sequence, every function's
# rights, every receipt and checkpoint; a tenant's calls must find its
# services through the index, in a new session and in one connected
# across the update (whose cached plans predate the index), and still see
# exactly its own services; then pg_dump and restore at the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines submit_each submit_batch
  updates_keeping_state restored_with_heads index_scans $latest_version);

my $db = 'jam_from_1_3';
my $node = upgrade_node('upgrade_1_3', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# How many times a statement run with a token used the tenant index, and its answer.
sub with_index_scans { my ($run, $query) = @_; return index_scans($run, 'jam_services_tenant_idx', $query); }

# --- 1. Install 1.3 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.3', 'u13');
sql(q{
	SELECT jam.jam_register_service('acme-a', NULL, 'acme');
	SELECT jam.jam_register_service('acme-b', NULL, 'acme');
	SELECT count(jam.jam_register_service('big-' || g, NULL, 'big')) FROM generate_series(1, 1000) g;});
my $acme = sql(q{SELECT jam.jam_create_token('acme', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
sql(q{SELECT jam.jam_create_token('u-admin', '{jam:admin}')});
my $shared = sql(q{SELECT jam.jam_put_preimage(convert_to('shared bytes', 'UTF8'), 'text/plain')->>'hash'});

my @packages = submit_each($node, $db, $shared, [ 'u-refine', 'r1' ], [ 'u-refine', 'r2' ], [ 'u-fails', 'f1' ],
	[ 'big-7', 'b1' ], [ 'big-8', 'b2' ]);
push @packages, submit_batch($node, $db, 'u-batch', qw(x1 x2 x3));
push @packages, sql(as_token(q{jam.jam_submit_package('acme-a', convert_to('a1', 'UTF8'))->>'id'}, $acme));
push @packages, sql(as_token(q{jam.jam_submit_package('acme-b', convert_to('a2', 'UTF8'))->>'id'}, $acme));
is(scalar(grep { /^[0-9a-f]{64}$/ } @packages), 10, 'submitted 10 packages, 3 of them in a batch');

my @report_hashes;
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-refine')})->{report_hash};
push @report_hashes, jsql(q{SELECT jam.jam_process_next('u-fails')})->{report_hash};
push @report_hashes, map { $_->{report_hash} } @{ jsql(q{SELECT jam.jam_process_packages('u-batch', 2)->'reports'}) };
push @report_hashes, jsql(as_token(q{jam.jam_process_next('acme-a')}, $acme))->{report_hash};
is(scalar(grep { /^[0-9a-f]{64}$/ } @report_hashes), 5, 'five reports, one of them failed');
sql('ANALYZE jam.jam_services');

# A session that makes a tenant's calls before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
my $in_session = sub { return $session->query($_[0]); };
my ($scans, $total) = with_index_scans($in_session, as_token(q{jam.jam_list_packages()->>'total'}, $acme));
is("$total $scans", '2 no index', "1.3: acme's token lists its 2 packages, without a tenant index");

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);

# --- 3. What 1.4 adds: a tenant's services through an index -----------------

is(sql(q{SELECT pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid FROM pg_index i
	      WHERE i.indexrelid = 'jam.jam_services_tenant_idx'::regclass}),
	'CREATE INDEX jam_services_tenant_idx ON jam.jam_services USING btree (tenant, service_id) WHERE (tenant IS NOT NULL) true',
	'jam_services_tenant_idx: (tenant, service_id) of the services with a tenant, valid');
my $in_new = sub { return sql($_[0]); };
($scans, $total) = with_index_scans($in_new, as_token(q{jam.jam_list_packages()->>'total'}, $acme));
ok($scans > 0 && $total eq '2', "a new session: acme's list reads its services through the index ($scans scans), 2 packages");
($scans, $total) = with_index_scans($in_session, as_token(q{jam.jam_list_packages()->>'total'}, $acme));
ok($scans > 0 && $total eq '2',
	"the session connected across the update: its plan made again, through the index ($scans scans)");
$session->quit;

# Still exactly its own: acme sees its services' packages and claims only
# them; the 1,000 services of 'big', one of them pending, stay out of reach.
is(join(',', sort map { $_->{service_id} } @{ jsql(as_token(q{jam.jam_list_packages()->'items'}, $acme)) }),
	'acme-a,acme-b', 'acme lists the packages of acme-a and acme-b only');
is(jsql(as_token(q{jam.jam_process_next()}, $acme))->{service_id}, 'acme-b', 'and processes its own pending package');
is(sql(as_token(q{jam.jam_process_next() IS NULL}, $acme)), 't', 'then finds nothing, with big-7 and big-8 pending');
is(sql(q{SELECT count(*) FROM jam.jam_work_packages WHERE status = 'pending' AND service_id LIKE 'big-%'}), '2',
	'which nobody took');

# --- 4. pg_dump of the updated database, restored into a new one ------------

my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is(sql(q{SELECT count(*) FROM pg_index WHERE indexrelid = 'jam.jam_services_tenant_idx'::regclass AND indisvalid}, $rdb),
	'1', 'restored: the tenant index is there');

$node->stop;
done_testing();
