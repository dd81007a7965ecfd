# ALTER EXTENSION jam UPDATE from 1.1 to the default version keeps
# every row, every answer of the API, every receipt and checkpoint and the
# node key, and leaves a database that works, dumps and restores.  060
# does the same from 1.0 through the whole chain; this one starts from a
# database that 1.1 made itself (CREATE EXTENSION jam VERSION '1.1'), with
# what only 1.1 writes: batches, signed attestations and an external
# attester, tenants' preimage holders, reports with a refine hash.
#
# 1.2 adds jam_services.share (1 for every existing service) and replaces
# jam_register_service(text, regprocedure, text) with a four-argument form
# (share); the rest of the catalog and every answer must be as before.
# After the update: new packages, the packages left pending (by service and
# by fair scheduling), shares 3:1 giving 30 of 40 claims to one service (in
# a new session and in one connected since before the update), the tokens
# and quotas made before, jam_log_events when it exists; then pg_dump and
# restore at the default version.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(canon quote text_array ext_relations dumped_relations rows_snapshot
  sequences_snapshot same_rows same_map function_rights unverified_receipts
  checkpoints_verified upgrade_node restored_or_finish $try_functions $latest_version);

my $db = 'jam_from_1_1';
my $node = upgrade_node('upgrade_1_1', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }
sub jsql { my $out = sql(@_); return $out eq '' ? undef : decode_json($out); }
sub try_sql { my ($query, $dbname) = @_; return sql('SELECT public.upgrade_try(' . quote($query) . ')', $dbname); }
sub bool_of { my ($v) = @_; return defined $v ? canon($v) : '(absent)'; }
sub as_token { my ($call, $token) = @_; return "SELECT $call FROM jam.jam_authenticate('$token')"; }

# --- 1. Install 1.1 and fill it through the API ----------------------------

sql("CREATE EXTENSION jam VERSION '1.1'");
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), '1.1', 'jam is installed at 1.1');
sql($try_functions);

# A session that stays connected across the update, as a pooled shim
# connection would.  Its first claim with no service named, while nothing
# is pending, has it read whether jam_services has a share (it has not yet).
my $session = $node->background_psql($db, on_error_stop => 0);
is($session->query('SELECT jam.jam_process_next() IS NULL'), 't', 'a long-lived session finds nothing pending');

my $shared_text = 'shared by packages of several services';
my %pre;
for my $p ([ shared => "convert_to('$shared_text', 'UTF8')", 'text/plain; charset=utf-8' ],
	[ nul => q{'\x00ff00'::bytea}, 'application/octet-stream' ], [ empty => q{''::bytea}, 'application/octet-stream' ])
{
	$pre{ $p->[0] } = sql("SELECT jam.jam_put_preimage($p->[1], '$p->[2]')->>'hash'");
}
my %bytes = (shared => $shared_text, nul => "\x00\xff\x00", empty => '');

# Tokens: an admin, a tenant's worker, a reader of two services with an
# expiry, one revoked, one limited to a package a minute (spent only after
# the update, so that its bucket reads the same before and after).
my %tok;
$tok{admin} = sql(q{SELECT jam.jam_create_token('u-admin', '{jam:admin}')});
$tok{acme} = sql(q{SELECT jam.jam_create_token('acme-worker', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
$tok{reader} = sql(q{SELECT jam.jam_create_token('reader', '{jam:read}', '{u-builtin,u-refine}', NULL, now() + interval '30 days')});
$tok{revoked} = sql(q{SELECT jam.jam_create_token('revoked', '{jam:read,jam:submit}')});
$tok{limited} = sql(q{SELECT jam.jam_create_token('limited', '{jam:read,jam:submit}', '{u-builtin}')});
my %tok_id = map { $_ => substr($tok{$_}, 4, 16) } keys %tok;
is(sql("SELECT jam.jam_revoke_token('$tok_id{revoked}')"), 't', 'revoked a token');
$pre{acme} = sql(as_token(q{jam.jam_put_preimage(convert_to('acme only', 'UTF8'), 'text/plain')->>'hash'}, $tok{acme}));
$bytes{acme} = 'acme only';

# Refine functions run as their owner with a pinned search_path: qualified.
sql(q{
	CREATE FUNCTION public.u11_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT
	AS $$ SELECT pg_catalog.sha256(payload || coalesce((SELECT pg_catalog.string_agg(p, '\x00'::bytea ORDER BY o)
	                                                   FROM pg_catalog.unnest(preimages) WITH ORDINALITY u(p, o)), ''::bytea)) $$;
	CREATE FUNCTION public.u11_refine_fails(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RAISE EXCEPTION 'refine refused %', pg_catalog.encode(payload, 'escape'); END $$;
	SELECT jam.jam_register_service('u-refine', 'public.u11_refine(bytea, bytea[])');
	SELECT jam.jam_register_service('u-fails', 'public.u11_refine_fails(bytea, bytea[])');
	SELECT jam.jam_register_service('u-builtin');
	SELECT jam.jam_register_service('u-tenant', NULL, 'acme');});

# Packages one by one: [service, payload, weight, preimages, token].
my %pkg;
for my $p ([ 'u-builtin', 'b1', 1, [] ], [ 'u-builtin', 'b2', 2, [qw(shared nul)] ],
	[ 'u-builtin', 'b3', 1, ['empty'] ], [ 'u-builtin', 'b4', 3, ['shared'] ],
	[ 'u-refine', 'r1', 1, ['shared'] ], [ 'u-refine', 'r2', 2, [qw(nul shared nul)] ],
	[ 'u-refine', 'r3', 1, [qw(nul shared)] ], [ 'u-refine', 'r4', 1, [qw(empty nul)] ],
	[ 'u-fails', 'f1', 1, ['shared'] ], [ 'u-fails', 'f2', 1, [] ], [ 'u-fails', 'f3', 2, ['nul'] ],
	[ 'u-tenant', 't1', 1, ['acme'], 'acme' ], [ 'u-tenant', 't2', 2, [], 'acme' ],
	[ 'u-quota', 'q1', 1, [] ], [ 'u-quota', 'q2', 1, ['nul'] ])
{
	my ($svc, $payload, $weight, $refs, $token) = @$p;
	my $call = "jam.jam_submit_package('$svc', convert_to('$payload', 'UTF8'), weight_hint => $weight, "
	  . 'preimage_hashes => ' . text_array(map { $pre{$_} } @$refs) . ")->>'id'";
	$pkg{$payload} = $token ? sql(as_token($call, $tok{$token})) : sql("SELECT $call");
}
# Batches, of payloads (weight 2 each) and of package objects.
my @x = @{ jsql(q{SELECT jam.jam_submit_packages('u-batch', ARRAY[convert_to('x1', 'UTF8'), convert_to('x2', 'UTF8'),
	convert_to('x3', 'UTF8')]::bytea[], 1, 2)->'packages'}) };
@pkg{qw(x1 x2 x3)} = map { $_->{id} } @x;
my $objects = canon([ { payload => encode_base64('j1', ''), weight_hint => 3, preimage_hashes => [ @pre{qw(nul shared)} ] },
	{ payload => encode_base64('j2', '') } ]);
@pkg{qw(j1 j2)} = map { $_->{id} } @{ jsql('SELECT jam.jam_submit_packages(\'u-refine\', ' . quote($objects) . '::jsonb)->\'packages\'') };
is(scalar(grep { ($pkg{$_} // '') =~ /^[0-9a-f]{64}$/ } keys %pkg), 20, 'submitted 20 packages, 5 of them in batches');

# Processing: some apply, two fail, the rest stay pending.
my @done = (
	(map { jsql(q{SELECT jam.jam_process_next('u-builtin')}) } 1 .. 2),
	@{ jsql(q{SELECT jam.jam_process_packages('u-refine', 2)})->{reports} },
	(map { jsql(q{SELECT jam.jam_process_next('u-fails')}) } 1 .. 2),
	jsql(as_token(q{jam.jam_process_next('u-tenant')}, $tok{acme})),
	@{ jsql(q{SELECT jam.jam_process_packages('u-batch', 1)})->{reports} });
is(join(',', map { "$_->{package_id}:$_->{status}" } @done),
	join(',', map { "$pkg{$_->[0]}:$_->[1]" } [qw(b1 applied)], [qw(b2 applied)], [qw(r1 applied)], [qw(r2 applied)],
		[qw(f1 failed)], [qw(f2 failed)], [qw(t1 applied)], [qw(x1 applied)]),
	'processed: the built-in and registered refines applied, the raising one failed');
my @pending_before = map { $pkg{$_} } qw(b3 b4 r3 r4 j1 j2 f3 t2 x2 x3 q1 q2);

# An external attester signs two reports in SQL with its seed.
my $auditor_key = sql(q{SELECT jam.jam_note_verifier_key('auditor', decode(repeat('a5', 32), 'hex'))});
sql("SELECT jam.jam_register_attester('auditor', '$auditor_key')");
sub attest_as_auditor
{
	my ($package_id) = @_;
	return jsql(qq{SELECT jam.jam_attest('$package_id', 'auditor',
		jam.jam_sign_attestation(jam.jam_attestations('$package_id')->0, 'auditor', decode(repeat('a5', 32), 'hex')))});
}
is(join(',', map { attest_as_auditor($pkg{$_})->{attester} // '-' } qw(b1 f1)), 'auditor,auditor',
	'an external attester attests an applied and a failed report');

# Quotas: u-quota's pending cap is what it holds; a byte cap; a rate for
# the limited token.
sql(q{SELECT jam.jam_set_quota(service_id => 'u-quota', max_pending_packages => 2)});
sql(q{SELECT jam.jam_set_quota(service_id => 'u-refine', max_preimage_bytes => 100000)});
sql("SELECT jam.jam_set_quota(token_id => '$tok_id{limited}', rate_limit_per_minute => 1, max_pending_packages => 10)");

is($session->query(q{SELECT jam.jam_submit_package('u-session', convert_to('s1', 'UTF8'))->>'created'}) . ' '
	  . $session->query(q{SELECT jam.jam_process_next('u-session')->>'status'}), 'true applied',
	'the long-lived session submits and processes');

# The shim's way in: a login role in jam_api that presents tokens.
sql(q{CREATE ROLE u11_shim LOGIN IN ROLE jam_api});

my %checkpoint_before = %{ jsql(q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services}) };
my $verifier_key = jsql('SELECT jam.jam_status()')->{verifier_key};
like($verifier_key, qr/^jam\+[0-9a-f]{8}\+/, "the node's verifier key: $verifier_key");

# --- 2. Record everything ---------------------------------------------------

my $rows_before = rows_snapshot($node, $db);
my $seqs_before = sequences_snapshot($node, $db);
my %columns_1_1 = map { $_ => $rows_before->{$_}{columns} } keys %$rows_before;
my @dumped_before = dumped_relations($node, $db);
my %n_status;
$n_status{ $_->{status} }++ for @{ $rows_before->{jam_work_packages}{data} };
is(join(',', map { "$_=" . ($n_status{$_} // 0) } qw(applied failed pending)), 'applied=7,failed=2,pending=12',
	'before: applied, failed and pending packages');
is(join(',', grep { !@{ $rows_before->{$_}{rows} } } sort keys %$rows_before), '', 'before: every jam table has rows');

sub hexes { my ($t, $col) = @_; return sort map { substr($_->{$col}, 2) } @{ $rows_before->{$t}{data} }; }
my @all_packages = hexes(qw(jam_work_packages id));
my @reported = hexes(qw(jam_work_reports package_id));
my @report_hashes = hexes(qw(jam_work_reports report_hash));
my @preimages = hexes(qw(jam_preimages hash));
my @services = sort map { $_->{service_id} } @{ $rows_before->{jam_services}{data} };
my @tokens = sort map { $_->{id} } @{ $rows_before->{jam_tokens}{data} };

# { "<function> <argument>" => canonical answer } for every question the
# API answers about the recorded data, through one psql (or $run).
sub api_snapshot
{
	my ($dbname, $run) = @_;
	my @q;
	my $guard = sub {
		my ($call, @args) = @_;
		return "public.upgrade_answer(format('SELECT to_jsonb($call)', " . join(', ', @args) . '))';
	};
	my $each = sub {    # name, call with %L, the text[] it runs over
		my ($what, $call, $over) = @_;
		push @q, "SELECT '$what' || E'\\t' || coalesce((SELECT jsonb_object_agg(i, "
		  . $guard->($call, 'i') . ") FROM unnest($over) i), '{}')::text";
	};
	my ($pk, $rp, $hashes, $pre, $svc, $tk) = (text_array(@all_packages), text_array(@reported),
		text_array(@all_packages, @report_hashes), text_array(@preimages), text_array(@services), text_array(@tokens));
	$each->('jam_get_package', 'jam.jam_get_package(%L)', $pk);
	$each->('jam_get_package(acme)', "jam.jam_get_package(%L)) FROM jam.jam_authenticate(''$tok{acme}''", $pk);
	$each->('jam_get_report', 'jam.jam_get_report(%L)', $rp);
	$each->('jam_attestations', 'jam.jam_attestations(%L)', $rp);
	$each->('jam_replay', 'jam.jam_replay(%L)', $rp);
	$each->('jam_receipt', 'jam.jam_receipt(%L)', $hashes);
	$each->('jam_receipt_proof', 'jam.jam_receipt_proof(%L)', $hashes);
	$each->('jam_preimage_meta', 'jam.jam_preimage_meta(%L)', $pre);
	$each->('jam_preimage_meta(acme)', "jam.jam_preimage_meta(%L)) FROM jam.jam_authenticate(''$tok{acme}''", $pre);
	$each->('jam_get_preimage', q{encode(jam.jam_get_preimage(%L), ''hex'')}, $pre);
	$each->('jam_verify_log', 'jam.jam_verify_log(%L)', $svc);
	$each->('jam_checkpoint', 'jam.jam_checkpoint(%L)', $svc);
	$each->('jam_quota_usage(service)', 'jam.jam_quota_usage(service_id => %L)', $svc);
	$each->('jam_quota_usage(token)', 'jam.jam_quota_usage(token_id => %L)', $tk);
	$each->('jam_list_packages', 'jam.jam_list_packages(service_id => %L, "limit" => 1000)', $svc);
	$each->('jam_list_packages', 'jam.jam_list_packages(status => %L, "limit" => 1000)', q{'{pending,applied,failed}'::text[]});
	$each->('jam_list_reports', 'jam.jam_list_reports(service_id => %L, "limit" => 1000)', $svc);
	$each->('jam_list_attestations', 'jam.jam_list_attestations(service_id => %L)', $svc);
	$each->('jam_list_attestations', 'jam.jam_list_attestations(attester => %L)', q{'{auditor,jam}'::text[]});
	$each->('pages', 'jam.%s("limit" => 4, "offset" => 3)', q{'{jam_list_packages,jam_list_reports,jam_list_attestations}'::text[]});
	$each->('keyset', 'jam.%s("limit" => 4, after => 5)', q{'{jam_list_packages,jam_list_reports,jam_list_attestations}'::text[]});
	$each->('whole', 'jam.%s()', q{'{jam_roots,jam_list_tokens}'::text[]});
	# jam_fsck less the drift of the counts 1.5 adds (which 067 checks).
	$each->('whole', q{jam.%s() - ''count_drift'' - ''count_drift_count''}, q{'{jam_fsck}'::text[]});
	# jam_status but for what changes by itself: the version, the planner's estimates.
	$each->('jam_status', q{jam.jam_status() - %L #- ''{counts,preimages_estimate}''
		#- ''{blob_store,catalog}'' #- ''{blob_store,delete_queue}''
		#- ''{counts,packages_estimate}'' #- ''{counts,reports_estimate}''}, q{'{version}'::text[]});
	# Every leaf against the current size, every root, every pair of sizes.
	my $logs = q{FROM jsonb_array_elements(jam.jam_roots()) r, generate_series(1, (r->>'tree_size')::bigint) n};
	push @q, q{SELECT 'jam_inclusion_proof' || E'\t' || jsonb_object_agg(r->>'service_id' || ' ' || n, }
	  . $guard->('jam.jam_inclusion_proof(%L, %s, %s)', q{r->>'service_id'}, 'n - 1', q{r->>'tree_size'}) . ") $logs";
	push @q, q{SELECT 'jam_root' || E'\t' || jsonb_object_agg(r->>'service_id' || ' ' || n, }
	  . $guard->('jam.jam_root(%L, %s)', q{r->>'service_id'}, 'n') . ") $logs";
	push @q, q{SELECT 'jam_consistency_proof' || E'\t' || jsonb_object_agg(r->>'service_id' || ' ' || a || '..' || n, }
	  . $guard->('jam.jam_consistency_proof(%L, %s, %s)', q{r->>'service_id'}, 'a', 'n') . ") $logs, generate_series(1, n) a";
	my %api;
	my $all = join(";\n", @q);
	for (split /\n/, $run ? $run->($all) : sql($all, $dbname))
	{
		my ($what, $doc) = split /\t/, $_, 2;
		$doc = decode_json($doc);
		$api{"$what $_"} = canon($doc->{$_}) for keys %$doc;
	}
	return \%api;
}
sub through_session { return scalar $session->query($_[0]); }

# jam_register_service again with each service's refine and tenant, as a
# deployment script re-runs it: three arguments, by position.
sub registered
{
	return { map { my $r = jsql($_); ($r->{service_id} => $r) } map {
			"SELECT jam.jam_register_service('$_->{service_id}', "
			  . (defined $_->{refine_function} ? quote($_->{refine_function}) : 'NULL') . ', '
			  . (defined $_->{tenant} ? quote($_->{tenant}) : 'NULL') . ')'
		} @{ $rows_before->{jam_services}{data} } };
}

my $registered_before = registered();
my %rights_before = %{ function_rights($node, $db) };
my $api_before = api_snapshot($db);
cmp_ok(scalar(keys %$api_before), '>', 300, 'recorded ' . scalar(keys %$api_before) . ' answers of the API');
my @refused = grep { $api_before->{$_} =~ /^\{"error":/ && !/\(acme\)/ } sort keys %$api_before;
is(join(' ', @refused), '', 'every recorded call answered (but the tenant\'s, which see only their own)');
is(scalar(grep { /\(acme\)/ && $api_before->{$_} !~ /^\{"error":/ } keys %$api_before), 3,
	'the tenant\'s token sees its two packages and its preimage');
same_map(api_snapshot($db, \&through_session), $api_before, 'the long-lived session gets the same answers');
my $rows_again = rows_snapshot($node, $db);
same_rows($rows_again->{$_}{rows}, $rows_before->{$_}{rows}, "recording $_ twice gives the same rows")
  for sort keys %$rows_before;
same_map(api_snapshot($db), $api_before, 'recording the API twice gives the same answers');

# --- 3. Update --------------------------------------------------------------

my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION jam UPDATE');
my $updated = is($rc, 0, 'ALTER EXTENSION jam UPDATE succeeds') or diag($err);
$updated = is(sql(q{SELECT extversion || ' ' || default_version FROM pg_extension, pg_available_extensions
	                WHERE extname = 'jam' AND name = 'jam'}), "$latest_version $latest_version", "jam is at the default version, $latest_version") && $updated;
if (!$updated)
{
	# Nothing after this point means anything without the update.
	$session->quit;
	$node->stop;
	done_testing();
	exit;
}

# --- 4. Compare -------------------------------------------------------------

my $rows_after = rows_snapshot($node, $db, \%columns_1_1);
for my $t (sort keys %$rows_before)
{
	same_rows($rows_after->{$t}{rows} // [], $rows_before->{$t}{rows}, "$t: every row is as before, on 1.1's columns");
	my %had = map { $_ => 1 } @{ $rows_after->{$t}{columns} // [] };
	is(join(',', grep { !$had{$_} } @{ $columns_1_1{$t} }), '', "$t keeps every 1.1 column");
}
note 'tables added by the update: ' . join(', ', grep { !$rows_before->{$_} } sort keys %$rows_after);
is(sql(q{SELECT coalesce(string_agg(service_id || '=' || share, ',') FILTER (WHERE share <> 1), 'all ' || count(*))
	     FROM jam.jam_services}), 'all ' . @services, 'every service has share 1');
my $seqs_after = sequences_snapshot($node, $db);
is_deeply({ map { $_ => $seqs_after->{$_} } keys %$seqs_before }, $seqs_before, 'the sequences are where they were');
is(join(',', map { "$_=$seqs_after->{$_}" } grep { !exists $seqs_before->{$_} } sort keys %$seqs_after),
	'jam_blob_deletes_id_seq=1/false', 'the sequence the update adds starts afresh');
is(jsql("SELECT jam.jam_status()->'blob_store'")->{catalog}, JSON::PP::true,
	'jam_status says the catalog has the blob tier now');
my %dumped_after = map { $_ => 1 } dumped_relations($node, $db);
my %registrable = map { $_ => 1 } @dumped_before, ext_relations($node, $db, q{'r', 'p', 'S'});
is(join(',', grep { !$dumped_after{$_} } sort keys %registrable), '',
	'every table and sequence is still registered for pg_dump');

my $api_after = api_snapshot($db);
for my $f (sort keys %{ { map { (split / /)[0] => 1 } keys %$api_before } })
{
	my $mine = sub { my ($m) = @_; return { map { $_ => $m->{$_} } grep { (split / /)[0] eq $f } keys %$m }; };
	same_map($mine->($api_after), $mine->($api_before), "$f answers as before the update");
}

my $registered_after = registered();
is(join(',', map { "$_=" . ($registered_after->{$_}{share} // '-') } @services), join(',', map { "$_=1" } @services),
	'jam_register_service, called with three arguments as before, answers share 1');
delete $_->{share} for values %$registered_after;
is_deeply($registered_after, $registered_before, 'and otherwise the same documents');

my %rights_after = %{ function_rights($node, $db) };
my %rights_expected = %rights_before;
delete $rights_expected{'jam.jam_register_service(text,regprocedure,text)'};
same_map({ map { $_ => $rights_after{$_} } keys %rights_expected }, \%rights_expected,
	'every 1.1 function keeps its grants, SECURITY DEFINER and pinned search_path');
is($rights_after{'jam.jam_register_service(text,regprocedure,text)'} // '(gone)', '(gone)',
	'the three-argument jam_register_service is gone');
is($rights_after{'jam.jam_register_service(text,regprocedure,text,integer)'} // '(missing)',
	'jam_api=false,jam_operator=true,jam_reader=false,public=false definer=true pinned=true',
	'jam_register_service(text, regprocedure, text, integer): jam_operator only, SECURITY DEFINER, pinned');
note 'functions added by the update: ' . join(', ', grep { !$rights_before{$_} } sort keys %rights_after);
is(sql(q{SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p WHERE pronamespace = 'jam'::regnamespace
	     AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	                     AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')}), '',
	'every function of the schema jam belongs to the extension');

is(unverified_receipts($node, $db, @all_packages, @report_hashes), '0/' . (@all_packages + @report_hashes),
	'every receipt verifies with jam_verify_inclusion against its service\'s root');
is(jsql('SELECT jam.jam_status()')->{verifier_key}, $verifier_key, 'jam_status shows the same verifier key');
my $n_notes = keys %checkpoint_before;
is(checkpoints_verified($node, $db, \%checkpoint_before, $verifier_key), "$n_notes/$n_notes",
	'every checkpoint signed before the update verifies with the key pinned before');
is(checkpoints_verified($node, $db, { x => $checkpoint_before{'u-refine'} =~ s/\n(\d+)\n/"\n" . ($1 + 1) . "\n"/er },
		$verifier_key), '0/1', '(an altered one does not)');

# --- 5. The updated database works ------------------------------------------

# The session connected across the update answers as a new one does, and
# sees the share column: its cached "no share" was dropped with the relcache.
same_map(api_snapshot($db, \&through_session), $api_after, 'the long-lived session answers as a new one does');
is($session->query(q{SELECT jam.jam_register_service('u-session', share => 2)->>'share'}), '2',
	'and registers a service with a share');

my %head_before = map { $_->{service_id} => { size => $_->{log_size}, root => substr($_->{log_root}, 2) } }
  @{ $rows_before->{jam_services}{data} };
my $single = jsql(q{SELECT jam.jam_submit_package('u-builtin', convert_to('after 1', 'UTF8'), weight_hint => 2, preimage_hashes => }
	  . text_array(@pre{qw(shared empty)}) . ')');
is(bool_of($single->{created}) . " $single->{id} $single->{receipt}{seq} $single->{receipt}{prev_root}",
	'true ' . sql(q{SELECT jam.jam_package_id('u-builtin', convert_to('after 1', 'UTF8'), 1, 2, }
		  . text_array(@pre{qw(shared empty)}) . ')') . " $head_before{'u-builtin'}{size} $head_before{'u-builtin'}{root}",
	'a new package gets the id jam_package_id computes and extends the log from its head before the update');
my $b = jsql(q{SELECT jam.jam_submit_packages('u-batch', ARRAY[convert_to('x2', 'UTF8'), convert_to('after 2', 'UTF8')]::bytea[], 1, 2)});
is(join(',', map { bool_of($_->{created}) . ' ' . $_->{id} } @{ $b->{packages} }),
	"false $pkg{x2},true " . sql(q{SELECT jam.jam_package_id('u-batch', convert_to('after 2', 'UTF8'), 1, 2)}),
	'a batch finds a package stored before the update and stores a new one');

my $r3 = jsql(q{SELECT jam.jam_process_next('u-refine')});
is("$r3->{package_id} $r3->{status} " . unpack('H*', decode_base64($r3->{output} // '')),
	"$pkg{r3} applied " . sha256_hex("r3$bytes{nul}\x00$bytes{shared}"),
	'jam_process_next(service) takes the oldest pending package; its refine reads the preimages referenced before');
is(attest_as_auditor($pkg{r3})->{attester} // '-', 'auditor', 'the attester registered before attests its report');

my $acme = jsql("SELECT jam.jam_authenticate('$tok{acme}')");
is("$acme->{token_id} $acme->{tenant}", "$tok_id{acme} acme", 'a token created before the update authenticates');
is(jsql(as_token(q{jam.jam_process_next('u-tenant')}, $tok{acme}))->{package_id}, $pkg{t2},
	'and processes its tenant\'s package left pending');
like(try_sql(as_token("jam.jam_get_package('$pkg{b1}')::text", $tok{acme})), qr/^JM011:/, 'and sees no other tenant\'s');
like(try_sql("SELECT jam.jam_authenticate('$tok{revoked}')::text"), qr/^JM026:/, 'the revoked token is still refused');
like(try_sql(as_token(q{jam.jam_list_packages(service_id => 'u-refine')->>'total'}, $tok{reader})), qr/^ok: 6$/,
	'the reader token reads its services');
like(try_sql(as_token(q{jam.jam_list_packages(service_id => 'u-fails')::text}, $tok{reader})), qr/^JM027:/, 'and only those');
is(sql(qq{SET ROLE u11_shim;
	SELECT public.upgrade_try(\$q\$SELECT jsonb_array_length(jam.jam_list_tokens()) FROM jam.jam_authenticate('$tok{admin}')\$q\$);
	SELECT public.upgrade_try(\$q\$SELECT jam.jam_register_service('x', share => 2)::text FROM jam.jam_authenticate('$tok{admin}')\$q\$)}),
	"ok: 5\n42501: permission denied for function jam_register_service",
	'the admin token lists tokens through the shim\'s role, which may not call jam_register_service');
like(try_sql(q{SELECT jam.jam_submit_package('u-quota', convert_to('q3', 'UTF8'))::text}), qr/^JM018:/,
	'the pending cap set before the update refuses a third package');
like(try_sql(as_token(q{jam.jam_submit_package('u-builtin', convert_to('limited 1', 'UTF8'))->>'created'}, $tok{limited})),
	qr/^ok: true$/, 'the rate-limited token submits once');
like(try_sql(as_token(q{jam.jam_submit_package('u-builtin', convert_to('limited 2', 'UTF8'))::text}, $tok{limited})),
	qr/^JM028:/, 'and is refused the second time within the minute');

# Shares: set, kept when not given (with three positional arguments too),
# refused out of range.
is(jsql(q{SELECT jam.jam_register_service('x', share => 3)})->{share}, 3, q{jam_register_service('x', share => 3)});
is(sql(q{SELECT (jam.jam_register_service('x')->>'share') || (jam.jam_register_service('x', NULL, NULL)->>'share')
	     || (SELECT share FROM jam.jam_services WHERE service_id = 'x')}), '333', 'a share given stays when none is');
like(try_sql(q{SELECT jam.jam_register_service('x', share => 0)::text}), qr/^JM001:/, 'share 0 is refused');

# Without a service named: the packages left pending, then nothing.
my $first = jsql(q{SELECT jam.jam_process_next()});
ok((grep { $_ eq ($first->{package_id} // '') } @pending_before), 'jam_process_next() takes a package left pending before the update');
my $rest = jsql(q{SELECT jam.jam_process_packages(NULL, 1000)});
my %left = map { $_ => 1 } @pending_before, $single->{id}, $b->{packages}[1]{id};
delete @left{ $first->{package_id}, $r3->{package_id}, $pkg{t2}, map { $_->{package_id} } @{ $rest->{reports} } };
is(join(',', sort keys %left), '', 'jam_process_packages(NULL) processes every other one');
is(sql(q{SELECT coalesce(string_agg(encode(id, 'hex'), ',') FILTER (WHERE status = 'pending'),
	                      'failed ' || count(*) FILTER (WHERE status = 'failed')) FROM jam.jam_work_packages}), 'failed 3',
	'nothing is pending; the raising refine failed f3 too');

# Fair scheduling: shares 3:1 over two backlogs, 40 claims with no service
# named give 30:10, in a new session and in the one connected since 1.1.
sql(q{SELECT jam.jam_register_service('u-fair-a', share => 3), jam.jam_register_service('u-fair-b', share => 1);
	  SELECT jam.jam_submit_packages(s, ARRAY(SELECT convert_to(s || g, 'UTF8') FROM generate_series(1, 60) g))
	  FROM unnest(ARRAY['u-fair-a', 'u-fair-b']) s});
my $claims = q{SELECT string_agg(s || '=' || n, ',' ORDER BY s) FROM (SELECT s, count(*) n
	FROM (SELECT jam.jam_process_next()->>'service_id' s FROM generate_series(1, 40)) c GROUP BY s) t};
is(sql($claims), 'u-fair-a=30,u-fair-b=10', '40 claims give 30 to share 3 and 10 to share 1');
is($session->query($claims), 'u-fair-a=30,u-fair-b=10', 'in the session connected before the update too');

SKIP:
{
	skip 'jam_log_events is not in this tree yet', 2
	  unless sql(q{SELECT to_regprocedure('jam.jam_log_events(text,bigint,integer)') IS NOT NULL}) eq 't';
	my $events = jsql(q{SELECT jam.jam_log_events('u-refine', -1, 1000)});
	is(join(',', map { "$_->{seq}:$_->{id}" } @{ $events->{events} }),
		sql(q{SELECT string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq) FROM jam.jam_log_entries
		      WHERE service_id = 'u-refine'}), 'jam_log_events reads the log, entries written by 1.1 included');
	is(function_rights($node, $db)->{'jam.jam_log_events(text,bigint,integer)'},
		'jam_api=true,jam_operator=true,jam_reader=true,public=false definer=true pinned=true',
		'jam_log_events: for the shim, readers and operators, SECURITY DEFINER, pinned');
}

# Each log now extends its head before the update (u-session's did not grow).
my @logs;
for my $r (grep { $head_before{ $_->{service_id} } } @{ jsql('SELECT jam.jam_roots()') })
{
	my ($s, $m, $n) = ($r->{service_id}, $head_before{ $r->{service_id} }{size}, $r->{tree_size});
	push @logs, "$s:" . ($n > $m ? 'grew' : 'same') . ':' . sql("SELECT jam.jam_verify_consistency($m, $n,
		jam.jam_consistency_proof('$s', $m, $n), '$head_before{$s}{root}', '$r->{root}')");
}
is(join(',', @logs), join(',', map { "$_:" . ($_ eq 'u-session' ? 'same' : 'grew') . ':t' } @services),
	'every log grew from its head before the update, consistently');
is(unverified_receipts($node, $db, @all_packages, @report_hashes, $single->{id}, $r3->{report_hash}),
	'0/' . (@all_packages + @report_hashes + 2), 'every receipt, old and new, verifies against the current roots');
is(sql(q{SELECT bool_and((jam.jam_verify_log(service_id)->>'ok')::boolean) FROM jam.jam_services}), 't',
	'jam_verify_log is ok for every service');
is(sql(q{SELECT format('%s %s %s', f->'drift_count', f->'missing_count', f->'pending_drift_count') FROM jam.jam_fsck() f}),
	'0 0 0', 'jam_fsck finds no drift');
$session->quit;

# --- 6. pg_dump of the updated database, restored into a new one -----------

my $checkpoints = q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services};
my $src_checkpoints = jsql($checkpoints);
my $rdb = 'jam_restored';
restored_or_finish($node, $db, $rdb, $latest_version);
is_deeply(jsql($checkpoints, $rdb), $src_checkpoints, 'restored: the same signed checkpoints (same key, same heads)');
my $rs = jsql(q{SELECT jam.jam_submit_package('x', convert_to('after restore', 'UTF8'), preimage_hashes => }
	  . text_array($pre{nul}) . ')', $rdb);
my $rp = jsql(q{SELECT jam.jam_process_next('x')}, $rdb);
is(bool_of($rs->{created}) . " $rp->{package_id} $rp->{status}", "true $rs->{id} applied", 'restored: a submit and a process');
is(unverified_receipts($node, $rdb, $rs->{id}, $rp->{report_hash}, $pkg{b1}), '0/3', 'restored: receipts verify');

$node->stop;
done_testing();
