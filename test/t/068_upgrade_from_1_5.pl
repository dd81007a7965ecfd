# ALTER EXTENSION jam UPDATE from 1.5 to the default version, on a
# database that 1.5 made itself (CREATE EXTENSION jam VERSION '1.5') and
# filled through the API: packages single and batched (2,000 more in one
# service), reports applied and failed, each attested by the node, an external attester's attestations,
# a tenant's token.
#
# 1.6 adds jam_attestations_attester_idx, through which a page of one
# attester's attestations is found instead of walking every attestation the
# node signed.  So after the update every row must be as before, every
# sequence, every function's rights, every receipt and checkpoint; every
# list of attestations must answer as before; a page by attester must read
# the index, in a new session and in one connected across the update (whose
# cached plans predate it); then pg_dump and restore at the default version.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines filled_through_api
  updates_keeping_state restored_with_heads index_scans $latest_version);

my $db = 'jam_from_1_5';
my $node = upgrade_node('upgrade_1_5', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# Every list of attestations a client may ask for: by service, attester and
# package, alone and together, keyset pages of two, and a tenant's own;
# { name => [ids] }.
my $attester_seed = "decode(repeat('a5', 32), 'hex')";
sub all_lists
{
	my ($run, $token) = @_;
	my %lists;
	for my $service ('NULL', q{'u-refine'}, q{'u-batch'}) {
		for my $attester ('NULL', q{'auditor'}, q{current_setting('jam.node_name')}) {
			my $ids = $run->(qq{SELECT string_agg(i->>'id', ',' ORDER BY (i->>'id')::bigint)
				FROM jsonb_array_elements(jam.jam_list_attestations($service, $attester, NULL, 100)->'items') i});
			$lists{"$service $attester"} = $ids;
		}
	}
	$lists{'second page of two'} = $run->(q{SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(
		jam.jam_list_attestations("limit" => 2, after => (jam.jam_list_attestations("limit" => 2)->>'next_after')::bigint)
		->'items') i});
	$lists{'tenant'} = $run->(as_token(q{(SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(
		jam.jam_list_attestations()->'items') i)}, $token));
	return \%lists;
}

# How many times a page used jam_attestations_attester_idx, and the page's ids.
sub with_index_scans { my ($run) = @_; return index_scans($run, 'jam_attestations_attester_idx',
	q{SELECT string_agg(i->>'id', ',') FROM jsonb_array_elements(jam.jam_list_attestations(attester => 'auditor')->'items') i}); }

# --- 1. Install 1.5 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.5', 'u15');
my ($acme, $packages, $reports) = filled_through_api($node, $db, 4);
my @packages = @$packages;
my @report_hashes = @$reports;

# An external auditor attests u-refine's first package and two of u-batch's.
sql(qq{SELECT jam.jam_register_attester('auditor', jam.jam_note_verifier_key('auditor', $attester_seed))});
is(sql(qq{SELECT count(jam.jam_attest(a->>'package_id', 'auditor', jam.jam_sign_attestation(a, 'auditor', $attester_seed)))
	FROM (SELECT jam.jam_attestations(encode(id, 'hex'))->0 AS a FROM jam.jam_work_packages
	      WHERE (service_id = 'u-refine' AND seq = (SELECT min(seq) FROM jam.jam_work_packages WHERE service_id = 'u-refine'))
	         OR (service_id = 'u-batch' AND seq % 2 = 0)) s}), '3', 'the auditor attested three packages');
# A history the node attested, so that walking it would be the slow way.
is(sql(q{SELECT jsonb_array_length(jam.jam_submit_packages('u-bulk', ARRAY(
	SELECT convert_to('bulk ' || g, 'UTF8') FROM generate_series(1, 2000) g))->'packages') || ' '
	|| (jam.jam_process_packages('u-bulk', 2000)->>'processed')}), '2000 2000', 'and 2,000 more packages processed');
sql('ANALYZE jam.jam_attestations');
is(sql(q{SELECT count(*) FILTER (WHERE attester = current_setting('jam.node_name')) || ' ' || count(*)
	FROM jam.jam_attestations}), '2008 2011', '1.5: 2,008 attestations by the node, 2,011 in all');

my $in_db = sub { return sql($_[0]); };
my $lists_before = all_lists($in_db, $acme);
is($lists_before->{"NULL 'auditor'"} =~ tr/,//, 2, "1.5: the auditor's list holds its 3 attestations");

# A session that lists by attester before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
my $in_session = sub { return $session->query($_[0]); };
my ($scans, $page) = with_index_scans($in_session);
is("$page $scans", "$lists_before->{q{NULL 'auditor'}} no index", "1.5: the session lists the auditor's page, without the index");

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);
is_deeply(all_lists($in_db, $acme), $lists_before, 'every list of attestations answers as before');

# --- 3. What 1.6 adds: an attester's attestations through an index ----------

is(sql(q{SELECT pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid FROM pg_index i
	      WHERE i.indexrelid = 'jam.jam_attestations_attester_idx'::regclass}),
	'CREATE INDEX jam_attestations_attester_idx ON jam.jam_attestations USING btree (attester, id) true',
	'jam_attestations_attester_idx: (attester, id), valid');
($scans, $page) = with_index_scans($in_session);
ok($scans > 0 && $page eq $lists_before->{"NULL 'auditor'"},
	"the session connected across the update: its plan made again, through the index ($scans scans)");
$session->quit;
($scans, $page) = with_index_scans($in_db);
ok($scans > 0 && $page eq $lists_before->{"NULL 'auditor'"}, "a new session: through the index ($scans scans)");

# Processing and attesting after the update go on into the same lists.
jsql(q{SELECT jam.jam_submit_package('u-refine', convert_to('r3', 'UTF8'))});
my $new = jsql(q{SELECT jam.jam_process_next('u-refine')});
is(sql(qq{SELECT jam.jam_attest('$new->{package_id}', 'auditor',
	jam.jam_sign_attestation(jam.jam_attestations('$new->{package_id}')->0, 'auditor', $attester_seed))->>'attester'}),
	'auditor', 'the auditor attests a report written after the update');
is(sql(q{SELECT jsonb_array_length(jam.jam_list_attestations(attester => 'auditor')->'items') || ' '
	|| jsonb_array_length(jam.jam_list_attestations('u-refine', 'auditor')->'items')}), '4 2',
	"the auditor's list holds 4, 2 of them of u-refine");

# --- 4. pg_dump of the updated database, restored into a new one ------------

my $src_lists = all_lists($in_db, $acme);
my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is_deeply(all_lists(sub { return sql($_[0], $rdb); }, $acme), $src_lists, 'restored: every list of attestations');
is(sql(q{SELECT count(*) FROM pg_index WHERE indexrelid = 'jam.jam_attestations_attester_idx'::regclass AND indisvalid},
		$rdb), '1', 'restored: the attester index is there');

$node->stop;
done_testing();
