# ALTER EXTENSION jam UPDATE from 1.3 to the default version (1.4), on a
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
# exactly its own services; then pg_dump and restore at 1.4.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(text_array rows_snapshot sequences_snapshot same_rows function_rights
  dumped_relations unverified_receipts checkpoints_verified upgrade_node restores_whole);

my $db = 'jam_from_1_3';
my $node = upgrade_node('upgrade_1_3', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# How many times a statement run with a token used the tenant index ('no
# index' before there is one), read in the same transaction from the
# backend's own counters, and the statement's answer.
sub with_index_scans
{
	my ($run, $query) = @_;
	my $out = $run->(qq{BEGIN;
		$query;
		SELECT coalesce((SELECT pg_stat_get_xact_numscans(c.oid)::text FROM pg_class c
		  WHERE c.relname = 'jam_services_tenant_idx' AND c.relnamespace = 'jam'::regnamespace), 'no index');
		COMMIT;});
	my @lines = grep { $_ ne '' && !/^(BEGIN|COMMIT)$/ } split /\n/, $out;
	return ($lines[-1], $lines[0]);
}

# --- 1. Install 1.3 and fill it through the API ----------------------------

sql("CREATE EXTENSION jam VERSION '1.3'");
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), '1.3', 'jam is installed at 1.3');

sql(q{
	CREATE FUNCTION public.u13_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.sha256(payload) $$;
	CREATE FUNCTION public.u13_refine_fails(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'refine refused'; END $$;
	SELECT jam.jam_register_service('u-refine', 'public.u13_refine(bytea, bytea[])', NULL, 3);
	SELECT jam.jam_register_service('u-fails', 'public.u13_refine_fails(bytea, bytea[])');
	SELECT jam.jam_register_service('acme-a', NULL, 'acme');
	SELECT jam.jam_register_service('acme-b', NULL, 'acme');
	SELECT count(jam.jam_register_service('big-' || g, NULL, 'big')) FROM generate_series(1, 1000) g;
	SELECT jam.jam_set_quota('u-refine', max_pending_packages => 50);});
my $acme = sql(q{SELECT jam.jam_create_token('acme', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
sql(q{SELECT jam.jam_create_token('u-admin', '{jam:admin}')});
my $shared = sql(q{SELECT jam.jam_put_preimage(convert_to('shared bytes', 'UTF8'), 'text/plain')->>'hash'});

my @packages;
for my $p ([ 'u-refine', 'r1' ], [ 'u-refine', 'r2' ], [ 'u-fails', 'f1' ], [ 'big-7', 'b1' ], [ 'big-8', 'b2' ])
{
	push @packages, sql("SELECT jam.jam_submit_package('$p->[0]', convert_to('$p->[1]', 'UTF8'), "
		  . 'preimage_hashes => ' . text_array($shared) . ")->>'id'");
}
push @packages, map { $_->{id} } @{ jsql(q{SELECT jam.jam_submit_packages('u-batch',
	ARRAY[convert_to('x1', 'UTF8'), convert_to('x2', 'UTF8'), convert_to('x3', 'UTF8')])->'packages'}) };
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

my $rows_before = rows_snapshot($node, $db);
my $seqs_before = sequences_snapshot($node, $db);
my $rights_before = function_rights($node, $db);
my @dumped_before = dumped_relations($node, $db);
my $checkpoints = q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services WHERE log_size > 0};
my $checkpoints_before = jsql($checkpoints);
my $verifier_key = jsql('SELECT jam.jam_status()')->{verifier_key};

# --- 2. Update --------------------------------------------------------------

my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION jam UPDATE');
is($rc, 0, 'ALTER EXTENSION jam UPDATE succeeds') or diag($err);
is(sql(q{SELECT extversion || ' ' || default_version FROM pg_extension, pg_available_extensions
	     WHERE extname = 'jam' AND name = 'jam'}), '1.4 1.4', 'jam is at the default version, 1.4');

# --- 3. Everything as before ------------------------------------------------

my $rows_after = rows_snapshot($node, $db);
is(join(',', sort keys %$rows_after), join(',', sort keys %$rows_before), 'the same tables');
same_rows($rows_after->{$_}{rows}, $rows_before->{$_}{rows}, "$_: every row is as before")
  for sort keys %$rows_before;
is_deeply(sequences_snapshot($node, $db), $seqs_before, 'every sequence where it was');
is_deeply(function_rights($node, $db), $rights_before,
	'every function keeps its grants, SECURITY DEFINER and pinned search_path');
is(join(',', dumped_relations($node, $db)), join(',', @dumped_before), 'the same relations registered for pg_dump');
is(unverified_receipts($node, $db, @packages, @report_hashes), '0/' . (@packages + @report_hashes),
	'every receipt made before the update verifies against the current root');
my $n_notes = keys %$checkpoints_before;
is(checkpoints_verified($node, $db, $checkpoints_before, $verifier_key), "$n_notes/$n_notes",
	'every checkpoint signed before the update verifies with the key pinned before');
is_deeply(jsql($checkpoints), $checkpoints_before, 'and the heads are the same: nothing was appended');

# --- 4. What 1.4 adds: a tenant's services through an index ----------------

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

# --- 5. pg_dump of the updated database, restored into a new one -----------

my $src_checkpoints = jsql($checkpoints);
my $rdb = 'jam_restored';
if (!restores_whole($node, $db, $rdb, '1.4'))
{
	# The restored database is not whole: what follows would only echo that.
	$node->stop;
	done_testing();
	exit;
}
is_deeply(jsql($checkpoints, $rdb), $src_checkpoints, 'restored: the same signed checkpoints');
is(sql(q{SELECT count(*) FROM pg_index WHERE indexrelid = 'jam.jam_services_tenant_idx'::regclass AND indisvalid}, $rdb),
	'1', 'restored: the tenant index is there');

$node->stop;
done_testing();
