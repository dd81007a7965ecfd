# ALTER EXTENSION jam UPDATE from 1.0 to the default version keeps
# everything a client or an operator holds: every row, every answer of the
# API, every receipt and proof, the node key; and leaves a database that
# works, dumps and restores.
#
# The test installs 1.0 with the library that is installed now (which is
# the point: the new library must run a 1.0 catalog until the update),
# fills it through the API only, records every row and every answer, runs
# the update, and compares.  1.1 stores hashes as 32 raw bytes where 1.0
# stored 64 hex characters, so rows are compared after one normalisation
# of representation only ("\x<hex>" of a bytea and the <hex> text are the
# same value); API answers are compared verbatim, as the API keeps
# speaking hex.
#
# Beyond rows and answers: the hash columns really are 32-byte bytea, the
# grants, SECURITY DEFINER and search_path of every function survive, every
# relation stays registered for pg_dump, receipts verify against the roots,
# checkpoints signed before and after verify with the key pinned before.
#
# Then the updated database must work: new packages (single and batched),
# processing (one and several), the packages left pending before the
# update, tokens and quotas made before it, keyset paging, retention over
# 1.0's rows, a session that was connected across the update (a pooled
# shim connection), and the shim's role.  Last, pg_dump of the updated
# database restores into a new one at that version with the same rows,
# and that one works too.
#
# Every comparison reports the first few differences (table, key, before,
# after) so that a failure says what changed, not only that something did.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::Upgrade qw($latest_version);

my $json = JSON::PP->new->canonical->allow_nonref;
sub canon { return $json->encode($_[0]); }

# Not jam_node: that creates the extension at the default version.
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'jam'\n");
$node->start;

my $db = 'jam_upgrade';
$node->safe_psql('postgres', "CREATE DATABASE $db");

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }

sub jsql
{
	my ($query, $dbname) = @_;
	my $out = sql($query, $dbname);
	return $out eq '' ? undef : decode_json($out);
}

sub quote { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }
sub text_array { return 'ARRAY[' . join(',', map { quote($_) } @_) . ']::text[]'; }

# upgrade_try runs SQL and returns "ok: <result>" or "<SQLSTATE>:
# <message>", so that refusals are asserted by their code; upgrade_answer
# returns a query's jsonb, or the error as {error, message}, so that an
# answer lost in the update shows as a difference rather than ending the
# test.  They live in public, like a user's helpers, and so travel through
# pg_dump too.
sub try_sql
{
	my ($query, $dbname) = @_;
	return sql('SELECT public.upgrade_try(' . quote($query) . ')', $dbname);
}

my $try_fn = q{
	CREATE FUNCTION public.upgrade_try(query text) RETURNS text
	LANGUAGE plpgsql AS $$
	DECLARE
	    result text;
	BEGIN
	    EXECUTE query INTO result;
	    RETURN 'ok: ' || coalesce(result, '(null)');
	EXCEPTION WHEN OTHERS THEN
	    RETURN SQLSTATE || ': ' || SQLERRM;
	END
	$$;
	CREATE FUNCTION public.upgrade_answer(query text) RETURNS jsonb
	LANGUAGE plpgsql AS $$
	DECLARE
	    result jsonb;
	BEGIN
	    EXECUTE query INTO result;
	    RETURN result;
	EXCEPTION WHEN OTHERS THEN
	    RETURN jsonb_build_object('error', SQLSTATE, 'message', SQLERRM);
	END
	$$;};

# --- 1. Install 1.0 -------------------------------------------------------

$node->safe_psql($db, "CREATE EXTENSION jam VERSION '1.0'");
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), '1.0', 'jam is installed at 1.0');
sql($try_fn);

# --- 2. Fill 1.0 through the API -------------------------------------------

# Preimages: text, binary with NUL bytes, empty, one only reports end up
# holding, one nobody references (refcount 0).
my %pre;
for my $p (
	[ shared => q{convert_to('shared by packages of several services', 'UTF8')}, 'text/plain; charset=utf-8' ],
	[ nul => q{'\x00ff00'::bytea}, 'application/octet-stream' ],
	[ empty => q{''::bytea}, 'application/octet-stream' ],
	[ reported => q{convert_to('referenced by processed packages', 'UTF8')}, 'text/plain' ],
	[ lonely => q{convert_to('referenced by nothing', 'UTF8')}, 'text/plain' ])
{
	my ($name, $data, $media) = @$p;
	$pre{$name} = sql("SELECT jam.jam_put_preimage($data, '$media')->>'hash'");
}

# Refine functions run as their owner with a pinned search_path: qualify.
sql(q{
	CREATE FUNCTION public.upgrade_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT
	AS $$ SELECT pg_catalog.sha256(payload || coalesce((SELECT pg_catalog.string_agg(p, '\x00'::bytea ORDER BY o)
	                                                   FROM pg_catalog.unnest(preimages) WITH ORDINALITY u(p, o)), ''::bytea)) $$;
	CREATE FUNCTION public.upgrade_refine_fails(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RAISE EXCEPTION 'refine refused %', pg_catalog.encode(payload, 'escape'); END $$;
	SELECT jam.jam_register_service('up-refine', 'public.upgrade_refine(bytea, bytea[])');
	SELECT jam.jam_register_service('up-fails', 'public.upgrade_refine_fails(bytea, bytea[])');
	SELECT jam.jam_register_service('up-empty');});

# Tokens: an admin, a tenant's worker, a reader limited to two services
# with an expiry, one revoked, one with a rate quota (which spends nothing
# before the update, so that its bucket reads the same before and after).
my %tok;
$tok{admin} = sql(q{SELECT jam.jam_create_token('upgrade-admin', '{jam:admin}')});
$tok{acme} = sql(q{SELECT jam.jam_create_token('acme-worker', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
$tok{reader} = sql(q{SELECT jam.jam_create_token('reader', '{jam:read}', '{up-builtin,up-refine}', NULL,
	now() + interval '30 days')});
$tok{revoked} = sql(q{SELECT jam.jam_create_token('revoked', '{jam:read,jam:submit}')});
$tok{limited} = sql(q{SELECT jam.jam_create_token('limited', '{jam:read,jam:submit}', '{up-builtin}')});
my %tok_id = map { $_ => substr($tok{$_}, 4, 16) } keys %tok;
is(sql("SELECT jam.jam_revoke_token('$tok_id{revoked}')"), 't', 'revoked a token');

# Packages: [service, payload, weight, preimage refs, token].  Duplicate
# references and weights above 1 are part of what a conversion must keep.
my @packages = (
	[ 'up-builtin', 'b1', 1, [] ],
	[ 'up-builtin', 'b2', 1, [ $pre{shared}, $pre{reported} ] ],
	[ 'up-builtin', 'b3', 3, [ $pre{nul}, $pre{empty}, $pre{shared} ] ],
	[ 'up-builtin', 'b4', 1, [ $pre{shared} ] ],
	[ 'up-builtin', 'b5', 1, [] ],
	[ 'up-refine', 'r1', 1, [ $pre{reported} ] ],
	[ 'up-refine', 'r2', 2, [ $pre{shared}, $pre{reported}, $pre{shared} ] ],
	[ 'up-refine', 'r3', 1, [] ],
	[ 'up-refine', 'r4', 1, [ $pre{nul} ] ],
	[ 'up-fails', 'f1', 1, [ $pre{shared} ] ],
	[ 'up-fails', 'f2', 1, [] ],
	[ 'up-fails', 'f3', 1, [ $pre{reported} ] ],
	[ 'up-tenant', 't1', 1, [ $pre{shared} ], 'acme' ],
	[ 'up-tenant', 't2', 1, [], 'acme' ],
	[ 'up-quota', 'q1', 1, [] ],
	[ 'up-quota', 'q2', 1, [ $pre{nul} ] ],);
my %pkg;    # payload => id
for my $p (@packages)
{
	my ($svc, $payload, $weight, $refs, $token) = @$p;
	my $call = "jam.jam_submit_package('$svc', convert_to('$payload', 'UTF8'), weight_hint => $weight, "
	  . 'preimage_hashes => ' . text_array(@$refs) . ')';
	$call .= " FROM jam.jam_authenticate('$tok{$token}')" if $token;
	my $r = jsql("SELECT $call");
	$pkg{$payload} = $r->{id};
}
is(scalar(grep { ($_ // '') =~ /^[0-9a-f]{64}$/ } values %pkg), scalar(@packages), 'submitted every package');

# Processing, oldest first: b1-b3 and r1-r2 apply, f1-f2 fail, t1 applies
# through the tenant's token; b4, b5, r3, r4, f3, t2, q1, q2 stay pending.
my @processed;
for my $step ([ 'up-builtin', 3 ], [ 'up-refine', 2 ], [ 'up-fails', 2 ], [ 'up-tenant', 1, 'acme' ])
{
	my ($svc, $n, $token) = @$step;
	for (1 .. $n)
	{
		my $call = "jam.jam_process_next('$svc')";
		$call .= " FROM jam.jam_authenticate('$tok{$token}')" if $token;
		push @processed, jsql("SELECT $call");
	}
}
is( join(',', map { "$_->{service_id}:$_->{status}" } @processed),
	'up-builtin:applied,up-builtin:applied,up-builtin:applied,up-refine:applied,up-refine:applied,'
	  . 'up-fails:failed,up-fails:failed,up-tenant:applied',
	'processed packages: the built-in and registered refines applied, the raising one failed');

# Quotas: the pending cap of up-quota is what it holds, so that any new
# package there must be refused; a byte cap on up-refine; a rate of one
# package a minute for the limited token.
sql(q{SELECT jam.jam_set_quota(service_id => 'up-quota', max_pending_packages => 2, rate_limit_per_minute => 600)});
sql(q{SELECT jam.jam_set_quota(service_id => 'up-refine', max_preimage_bytes => 100000)});
sql("SELECT jam.jam_set_quota(token_id => '$tok_id{limited}', rate_limit_per_minute => 1, max_pending_packages => 10)");

# A session that stays connected across the update, as a pooled shim
# connection would: it uses the API now, and again after the update.
my $session = $node->background_psql($db, on_error_stop => 0);
my $session_pkg = decode_json($session->query(
	q{SELECT jam.jam_submit_package('up-session', convert_to('s1', 'UTF8'), preimage_hashes => ARRAY['}
	  . $pre{shared} . q{'])}));
is($session->query(q{SELECT jam.jam_process_next('up-session')->>'status'}),
	'applied', 'a long-lived session submits and processes before the update');
is($session->query(qq{SELECT jam.jam_get_package('$session_pkg->{id}')->>'status'}), 'applied',
	'and reads (each kind of statement has run in this backend)');

# The shim's way in: a login role in jam_api that presents tokens.
sql(q{CREATE ROLE upgrade_shim LOGIN IN ROLE jam_api});

# Checkpoints of every log, signed by the node key (made on first use).
my %checkpoint_before = %{ jsql(q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services}) };
my $verifier_key = jsql('SELECT jam.jam_status()')->{verifier_key};
like($verifier_key, qr/^jam\+[0-9a-f]{8}\+/, "the node's verifier key: $verifier_key");

# --- 3. Record everything ---------------------------------------------------

# The extension's own relations, from pg_depend: what the update must carry.
sub ext_relations
{
	my ($dbname, $kinds) = @_;
	return split /\n/, sql(
		qq{SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
		     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'jam')
		     AND d.deptype = 'e' AND c.relkind IN ($kinds) ORDER BY 1}, $dbname);
}

# The relations registered with pg_extension_config_dump (pg_dump keeps
# their data).
sub dumped_relations
{
	my ($dbname) = @_;
	return split /\n/, sql(
		q{SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS r(oid)
		  JOIN pg_class c ON c.oid = r.oid WHERE e.extname = 'jam' ORDER BY 1}, $dbname);
}

# One representation for a value of either version: a bytea's "\x<hex>"
# becomes <hex>, in arrays and nested values too.  Every other value is
# left alone, so any change of content still shows.
sub norm
{
	my ($v) = @_;
	return { map { $_ => norm($v->{$_}) } keys %$v } if ref $v eq 'HASH';
	return [ map { norm($_) } @$v ] if ref $v eq 'ARRAY';
	return $1 if defined $v && !ref $v && $v =~ /^\\x([0-9a-f]*)$/;
	return $v;
}

# { table => { columns => [...], rows => [sorted canonical rows], data => [rows] } }
# for every table of the extension; row_to_json is the one query that reads
# either version's columns alike.  With $columns_of, only those columns
# (a table's 1.0 columns) are kept, so that a column 1.1 adds is not a
# difference (it is noted instead).
sub rows_snapshot
{
	my ($dbname, $columns_of) = @_;
	my %snap;
	my @tables = ext_relations($dbname, q{'r', 'p'});
	for (split /\n/, sql(
			q{SELECT c.relname || ' ' || string_agg(attname, ' ' ORDER BY attnum)
			  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			  WHERE c.relnamespace = 'jam'::regnamespace AND attnum > 0 AND NOT attisdropped
			  GROUP BY c.relname}, $dbname))
	{
		my ($t, @cols) = split / /;
		$snap{$t} = { columns => \@cols, data => [] } if grep { $_ eq $t } @tables;
	}
	# One psql for all tables: each line is "<table> <row as JSON>".
	my $rows = sql(join(";\n", map { "SELECT '$_ ' || row_to_json(t) FROM jam.$_ t" } @tables), $dbname);
	for (split /\n/, $rows)
	{
		my ($t, $row) = split / /, $_, 2;
		my $r = norm(decode_json($row));
		if ($columns_of && $columns_of->{$t})
		{
			$r = { map { exists $r->{$_} ? ($_ => $r->{$_}) : () } @{ $columns_of->{$t} } };
		}
		push @{ $snap{$t}{data} }, $r;
	}
	$snap{$_}{rows} = [ sort map { canon($_) } @{ $snap{$_}{data} } ] for keys %snap;
	return \%snap;
}

sub sequences_snapshot
{
	my ($dbname) = @_;
	return { map { $_ => sql("SELECT last_value || '/' || is_called FROM jam.$_", $dbname) }
		  ext_relations($dbname, q{'S'}) };
}

# Fails listing what only one side has (a multiset comparison).  Each row
# only before is shown beside the row after that is most like it, as the
# fields that differ, so that a changed value shows even in a long row.
sub same_rows
{
	my ($got, $want, $name) = @_;
	my %count;
	$count{$_}++ for @$want;
	$count{$_}-- for @$got;
	my @lost = grep { $count{$_} > 0 } sort keys %count;
	my @new = grep { $count{$_} < 0 } sort keys %count;
	my $ok = ok(!@lost && !@new, $name);
	if (!$ok)
	{
		diag(scalar(@$want) . ' rows before, ' . scalar(@$got) . ' after; '
			  . scalar(@lost) . ' only before, ' . scalar(@new) . ' only after');
		my @new_rows = map { decode_json($_) } @new;
		for my $l (@lost[ 0 .. ($#lost < 2 ? $#lost : 2) ])
		{
			my $was = decode_json($l);
			my ($best, $same) = (undef, -1);
			for my $n (@new_rows)
			{
				my $k = grep { canon($was->{$_}) eq canon($n->{$_}) } keys %$was;
				($best, $same) = ($n, $k) if $k > $same;
			}
			if (!$best)
			{
				diag('only before: ' . substr($l, 0, 700));
				next;
			}
			my %fields = map { $_ => 1 } keys %$was, keys %$best;
			my @who = map { "$_=" . canon($was->{$_}) } grep { exists $was->{$_} }
			  qw(service_id seq id hash package_id name token_id);
			diag("row @who:");
			for my $f (sort grep { canon($was->{$_}) ne canon($best->{$_}) } keys %fields)
			{
				diag("  $f before: " . substr(canon($was->{$f}), 0, 300));
				diag("  $f after:  " . substr(canon($best->{$f}), 0, 300));
			}
		}
		if (!@lost)
		{
			diag('only after:  ' . substr($_, 0, 700)) for @new[ 0 .. ($#new < 2 ? $#new : 2) ];
		}
	}
	return $ok;
}

# Fails listing the first keys whose values differ or exist on one side.
sub same_map
{
	my ($got, $want, $name) = @_;
	my %keys = map { $_ => 1 } keys %$got, keys %$want;
	my @diff = grep { !defined $got->{$_} || !defined $want->{$_} || $got->{$_} ne $want->{$_} } sort keys %keys;
	my $ok = ok(!@diff && %keys, $name);
	if (!$ok)
	{
		diag(scalar(@diff) . ' of ' . scalar(keys %keys) . ' differ' . (%keys ? '' : ' (nothing was compared)'));
		for my $k (@diff[ 0 .. ($#diff < 2 ? $#diff : 2) ])
		{
			diag("$k\n  before: " . substr($want->{$k} // '(absent)', 0, 700)
				  . "\n  after:  " . substr($got->{$k} // '(absent)', 0, 700));
		}
	}
	return $ok;
}

my $rows_before = rows_snapshot($db);
my $seqs_before = sequences_snapshot($db);
my %columns_1_0 = map { $_ => $rows_before->{$_}{columns} } keys %$rows_before;
my @dumped_before = dumped_relations($db);
note 'jam tables at 1.0: ' . join(', ', sort keys %$rows_before);

# What the comparisons stand on: every kind of row is there.
my %n_status;
$n_status{ $_->{status} }++ for @{ $rows_before->{jam_work_packages}{data} };
is(join(',', map { "$_=" . ($n_status{$_} // 0) } qw(applied failed pending)),
	'applied=7,failed=2,pending=8', 'before: applied, failed and pending packages');
for my $t (qw(jam_preimages jam_services jam_work_packages jam_work_reports jam_attestations
	jam_log_entries jam_node_keys jam_tokens jam_quotas))
{
	cmp_ok(scalar @{ $rows_before->{$t}{rows} // [] }, '>', 0, "before: $t has rows");
}

# The ids the API is asked about, from the recorded rows.
my @all_packages = sort map { $_->{id} } @{ $rows_before->{jam_work_packages}{data} };
my @reported = sort map { $_->{package_id} } @{ $rows_before->{jam_work_reports}{data} };
my @report_hashes = sort map { $_->{report_hash} } @{ $rows_before->{jam_work_reports}{data} };
my @preimages = sort map { $_->{hash} } @{ $rows_before->{jam_preimages}{data} };
my @services = sort map { $_->{service_id} } @{ $rows_before->{jam_services}{data} };
my @tokens = sort map { $_->{id} } @{ $rows_before->{jam_tokens}{data} };
is(scalar(@all_packages), scalar(@packages) + 1, 'the recorded packages are the ones submitted');

# { "<function> <argument>" => canonical answer } for every question the
# API answers about the recorded data.  Only API functions, with the same
# arguments on both versions.  $run, when given, runs the SQL instead of a
# new psql (to ask through a given session).
sub api_snapshot
{
	my ($dbname, $run) = @_;
	my @queries;
	# Each query answers one JSON object { argument => answer }; all of them
	# go through one psql, a line "<function>\t<object>" each.
	my $add = sub {
		my ($what, $query) = @_;
		push @queries, "SELECT '$what' || E'\\t' || coalesce(($query), '{}'::jsonb)::text";
	};
	my ($pk, $rp, $hashes, $pre, $svc, $tk) = (
		text_array(@all_packages), text_array(@reported),
		text_array(@all_packages, @report_hashes), text_array(@preimages),
		text_array(@services), text_array(@tokens));

	# A call of an API function in upgrade_answer, as SQL: "%L" in
	# $call are the SQL expressions that follow it.
	my $guard = sub {
		my ($call, @args) = @_;
		return "public.upgrade_answer(format('SELECT to_jsonb($call)', " . join(', ', @args) . '))';
	};
	$add->('jam_get_package', 'SELECT jsonb_object_agg(i, ' . $guard->('jam.jam_get_package(%L)', 'i') . ") FROM unnest($pk) i");
	$add->('jam_get_report', 'SELECT jsonb_object_agg(i, ' . $guard->('jam.jam_get_report(%L)', 'i') . ") FROM unnest($rp) i");
	$add->('jam_attestations', 'SELECT jsonb_object_agg(i, ' . $guard->('jam.jam_attestations(%L)', 'i') . ") FROM unnest($rp) i");
	$add->('jam_receipt', 'SELECT jsonb_object_agg(i, ' . $guard->('jam.jam_receipt(%L)', 'i') . ") FROM unnest($hashes) i");
	$add->('jam_preimage_meta', 'SELECT jsonb_object_agg(i, ' . $guard->('jam.jam_preimage_meta(%L)', 'i') . ") FROM unnest($pre) i");
	$add->('jam_get_preimage',
		'SELECT jsonb_object_agg(i, ' . $guard->(q{encode(jam.jam_get_preimage(%L), ''hex'')}, 'i') . ") FROM unnest($pre) i");
	$add->('jam_verify_log', 'SELECT jsonb_object_agg(s, ' . $guard->('jam.jam_verify_log(%L)', 's') . ") FROM unnest($svc) s");
	$add->('jam_checkpoint', 'SELECT jsonb_object_agg(s, ' . $guard->('jam.jam_checkpoint(%L)', 's') . ") FROM unnest($svc) s");
	$add->('jam_quota_usage(service)',
		'SELECT jsonb_object_agg(s, ' . $guard->('jam.jam_quota_usage(service_id => %L)', 's') . ") FROM unnest($svc) s");
	$add->('jam_quota_usage(token)',
		'SELECT jsonb_object_agg(t, ' . $guard->('jam.jam_quota_usage(token_id => %L)', 't') . ") FROM unnest($tk) t");
	# Every leaf against the current size, every root, every pair of sizes.
	$add->('jam_inclusion_proof', q{
		SELECT jsonb_object_agg(r->>'service_id' || ' ' || seq, }
		  . $guard->('jam.jam_inclusion_proof(%L, %s, %s)', q{r->>'service_id'}, 'seq', q{r->>'tree_size'}) . q{)
		FROM jsonb_array_elements(jam.jam_roots()) r, generate_series(0, (r->>'tree_size')::bigint - 1) seq});
	$add->('jam_root', q{
		SELECT jsonb_object_agg(r->>'service_id' || ' ' || n, }
		  . $guard->('jam.jam_root(%L, %s)', q{r->>'service_id'}, 'n') . q{)
		FROM jsonb_array_elements(jam.jam_roots()) r, generate_series(1, (r->>'tree_size')::bigint) n});
	$add->('jam_consistency_proof', q{
		SELECT jsonb_object_agg(r->>'service_id' || ' ' || a || '..' || b, }
		  . $guard->('jam.jam_consistency_proof(%L, %s, %s)', q{r->>'service_id'}, 'a', 'b') . q{)
		FROM jsonb_array_elements(jam.jam_roots()) r,
		     generate_series(1, (r->>'tree_size')::bigint) b, generate_series(1, b) a});
	# Lists: per service, per status, and a middle page.  Called with the
	# named arguments of 1.0, as existing clients do.
	for my $f (qw(jam_list_packages jam_list_reports))
	{
		$add->($f, q{SELECT jsonb_object_agg('service ' || s, }
			  . $guard->("jam.$f(service_id => %L, \"limit\" => 1000)", 's') . ") FROM unnest($svc) s");
		$add->($f, q{SELECT jsonb_object_agg('status ' || coalesce(st, 'any'), }
			  . $guard->("jam.$f(status => %L, \"limit\" => 1000)", 'st') . q{)
			FROM unnest(ARRAY[NULL, 'pending', 'applied', 'failed']) st
			WHERE '} . $f . q{' = 'jam_list_packages' OR st IS DISTINCT FROM 'pending'});
		$add->($f, q{SELECT jsonb_build_object('page 4+3', }
			  . $guard->("jam.$f(\"limit\" => 4, \"offset\" => 3)", "'-'") . ')');
	}
	# Answers about everything at once.  jam_status less what it may not
	# keep: the version (it changes) and the planner's row estimates (a
	# table rewrite resets them); jam_fsck less the drift of the counts 1.5
	# adds (which 067 checks).
	$add->('whole', q{
		SELECT jsonb_build_object(
		    'jam_roots', } . $guard->('jam.jam_roots()', "'-'") . q{,
		    'jam_list_tokens', } . $guard->('jam.jam_list_tokens()', "'-'") . q{,
		    'jam_fsck', } . $guard->('jam.jam_fsck()', "'-'") . q{ - 'count_drift' - 'count_drift_count',
		    'jam_status', } . $guard->('jam.jam_status()', "'-'") . q{ - 'version' #- '{counts,preimages_estimate}'
		                  #- '{blob_store,catalog}' #- '{blob_store,delete_queue}'
		                  #- '{counts,packages_estimate}' #- '{counts,reports_estimate}')});
	my %api;
	my $all = join(";\n", @queries);
	for (split /\n/, $run ? $run->($all) : sql($all, $dbname))
	{
		my ($what, $doc) = split /\t/, $_, 2;
		$doc = decode_json($doc);
		$api{"$what $_"} = canon($doc->{$_}) for keys %$doc;
	}
	return \%api;
}

# Who may call what, per function name: the grants to PUBLIC and jam's
# roles, SECURITY DEFINER, and the pinned search_path of definers.
sub function_rights
{
	my ($dbname) = @_;
	return {
		map { split /\|/, $_, 2 } split /\n/, sql(
			q{SELECT proname, string_agg(DISTINCT r || '=' || has_function_privilege(r, p.oid, 'EXECUTE'), ','
			                             ORDER BY r || '=' || has_function_privilege(r, p.oid, 'EXECUTE'))
			         || ' definer=' || bool_and(prosecdef)
			         || ' pinned=' || bool_and(NOT prosecdef OR 'search_path=pg_catalog, jam, pg_temp' = ANY (proconfig))
			  FROM pg_proc p, unnest(ARRAY['public', 'jam_api', 'jam_reader', 'jam_operator']) r
			  WHERE pronamespace = 'jam'::regnamespace AND prokind = 'f'
			  GROUP BY proname}, $dbname)
	};
}
my %rights_before = %{ function_rights($db) };

my $api_before = api_snapshot($db);
# The long-lived session asks every question too, so that each kind of
# statement has run in that backend before the update.
sub through_session { return scalar $session->query($_[0]); }
same_map(api_snapshot($db, \&through_session), $api_before, 'the long-lived session gets the same answers');
cmp_ok(scalar(keys %$api_before), '>', 200, 'recorded ' . scalar(keys %$api_before) . ' answers of the API');
# An error recorded as an answer would compare equal to the same error after.
my @refused = grep { $api_before->{$_} =~ /^\{"error":/ } sort keys %$api_before;
is(scalar(@refused), 0, 'every recorded call answered') or diag("refused: @refused[0 .. ($#refused < 4 ? $#refused : 4)]");

# Recording twice must give the same: a difference after the update is
# then the update's doing, not the clock's.
my $rows_again = rows_snapshot($db);
same_rows($rows_again->{$_}{rows}, $rows_before->{$_}{rows}, "recording $_ twice gives the same rows")
  for sort keys %$rows_before;
same_map(api_snapshot($db), $api_before, 'recording the API twice gives the same answers');

my $fsck_before = jsql('SELECT jam.jam_fsck()');
is($fsck_before->{drift_count} + $fsck_before->{missing_count} + $fsck_before->{pending_drift_count},
	0, 'before: jam_fsck finds no drift');

# --- 4. Update --------------------------------------------------------------

my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION jam UPDATE');
my $updated = is($rc, 0, 'ALTER EXTENSION jam UPDATE succeeds');
diag("ALTER EXTENSION jam UPDATE: $err") if !$updated;
my $default_version = sql(q{SELECT default_version FROM pg_available_extensions WHERE name = 'jam'});
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), $default_version,
	'the update went to the default version');
$updated = is($default_version, $latest_version, "and the default version is $latest_version") && $updated;
if (!$updated)
{
	# Nothing after this point means anything without the update.
	diag('jam versions available: '
		  . sql(q{SELECT string_agg(version, ', ' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'jam'}));
	$session->quit;
	$node->stop;
	done_testing();
	exit;
}
is(jsql('SELECT jam.jam_status()')->{version}, $latest_version, "jam_status reports version $latest_version");

# --- 5. Compare -------------------------------------------------------------

# The representation did change: hashes are 32 bytes now.  octet_length
# reads text and bytea alike, so this fails (64) on an unconverted column.
my @hash_columns = (
	[ jam_preimages => 'hash' ], [ jam_services => 'log_root' ],
	[ jam_work_packages => 'id' ], [ jam_work_packages => 'preimage_hashes', 1 ],
	[ jam_work_reports => 'package_id' ], [ jam_work_reports => 'report_hash' ],
	[ jam_work_reports => 'output_hash' ], [ jam_work_reports => 'preimage_hashes', 1 ],
	[ jam_attestations => 'package_id' ], [ jam_attestations => 'report_hash' ],
	[ jam_log_entries => 'hash' ], [ jam_log_entries => 'leaf_hash' ],
	[ jam_log_entries => 'prev_root' ], [ jam_log_entries => 'new_root' ],);

sub check_hash_columns
{
	my ($dbname, $label) = @_;
	# One psql: a line "<table>.<column> <type> <values of 32 bytes>/<values>" each.
	my %found = map { my ($c, $rest) = split / /, $_, 2; ($c => $rest) } split /\n/, sql(
		join(";\n", map {
			my ($t, $col, $is_array) = @$_;
			my $values = $is_array
			  ? "SELECT octet_length(h) AS n FROM jam.$t, unnest($col) h"
			  : "SELECT octet_length($col) AS n FROM jam.$t WHERE $col IS NOT NULL";
			qq{SELECT '$t.$col ' || (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			                          WHERE attrelid = 'jam.$t'::regclass AND attname = '$col')
			          || ' ' || count(*) FILTER (WHERE n = 32) || '/' || count(*) FROM ($values) v}
		} @hash_columns), $dbname);
	for my $c (@hash_columns)
	{
		my ($t, $col, $is_array) = @$c;
		my ($type, $counts) = split / /, $found{"$t.$col"} // '(missing) 0/0';
		my ($ok32, $all) = split /\//, $counts;
		is($type, $is_array ? 'bytea[]' : 'bytea', "$label: $t.$col is " . ($is_array ? 'bytea[]' : 'bytea'));
		# Not vacuous: each column holds values here.
		ok($all > 0 && $ok32 == $all, "$label: every value of $t.$col has 32 bytes ($ok32 of $all)");
	}
}
check_hash_columns($db, 'after the update');

# Every row of every 1.0 table, normalised, on its 1.0 columns.
my $rows_after = rows_snapshot($db, \%columns_1_0);
for my $t (sort keys %$rows_before)
{
	if (!$rows_after->{$t})
	{
		fail("$t still exists after the update");
		next;
	}
	same_rows($rows_after->{$t}{rows}, $rows_before->{$t}{rows}, "$t: every row is as before (normalised)");
	my @lost = grep { my $c = $_; !grep { $_ eq $c } @{ $rows_after->{$t}{columns} } } @{ $columns_1_0{$t} };
	is(join(',', @lost), '', "$t keeps every 1.0 column");
	my @added = grep { my $c = $_; !grep { $_ eq $c } @{ $columns_1_0{$t} } } @{ $rows_after->{$t}{columns} };
	note "$t: columns added by the update: @added" if @added;
}
note 'tables added by the update: ' . join(', ', grep { !$rows_before->{$_} } sort keys %$rows_after);
my $seqs_after = sequences_snapshot($db);
is_deeply({ map { $_ => $seqs_after->{$_} } keys %$seqs_before }, $seqs_before, 'the sequences are where they were');
is(join(',', map { "$_=$seqs_after->{$_}" } grep { !exists $seqs_before->{$_} } sort keys %$seqs_after),
	'jam_blob_deletes_id_seq=1/false', 'the sequence the update adds starts afresh');
is(jsql("SELECT jam.jam_status()->'blob_store'")->{catalog}, JSON::PP::true,
	'jam_status says the catalog has the blob tier now');

# pg_dump keeps the data of registered relations only; a table the update
# re-creates must be registered again (pgmq lost queues to this).
my @dumped_after = dumped_relations($db);
my %dumped_after = map { $_ => 1 } @dumped_after;
is(join(',', grep { !$dumped_after{$_} } @dumped_before), '',
	'every relation registered for pg_dump at 1.0 still is');
is(join(',', grep { !$dumped_after{$_} } ext_relations($db, q{'r', 'p', 'S'})), '',
	'every table and sequence of the extension is registered for pg_dump');
is(sql(q{SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i
	     JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'jam'::regnamespace
	       AND NOT (i.indisvalid AND i.indisready)}), '', 'every index of jam is valid');

# Every answer of the API, verbatim, but for the members 1.1 adds to the
# documents 1.0 returned (a report's refine_hash; an attestation's version,
# service_id, report_created_at and signature): their values on what 1.0
# wrote are checked after this.
my %added_in_1_1 = (
	jam_get_report => [qw(refine_hash)],
	jam_list_reports => [qw(refine_hash)],
	jam_attestations => [qw(version service_id report_created_at signature)]);

sub without_members
{
	my ($doc, $names) = @_;
	if (ref $doc eq 'HASH')
	{
		delete @{$doc}{@$names};
		without_members($_, $names) for values %$doc;
	}
	elsif (ref $doc eq 'ARRAY')
	{
		without_members($_, $names) for @$doc;
	}
	return $doc;
}

sub as_1_0
{
	my ($function, $text) = @_;
	my $names = $added_in_1_1{$function} or return $text;
	return $json->encode(without_members($json->decode($text), $names));
}

my $api_after = api_snapshot($db);
for my $f (sort { $a cmp $b } keys %{ { map { (split / /)[0] => 1 } keys %$api_before } })
{
	my %want = map { $_ => as_1_0($f, $api_before->{$_}) } grep { (split / /)[0] eq $f } keys %$api_before;
	my %got = map { $_ => as_1_0($f, $api_after->{$_}) } grep { (split / /)[0] eq $f } keys %$api_after;
	same_map(\%got, \%want, "$f answers as before the update");
}
is(sql(q{SELECT count(*) FILTER (WHERE refine_hash IS NOT NULL) FROM jam.jam_work_reports}), '0',
	'reports written by 1.0 record no refine definition');
is(sql(q{SELECT count(*) FILTER (WHERE a.signature IS NOT NULL OR a.service_id IS DISTINCT FROM r.service_id
	                                  OR a.report_created_at IS DISTINCT FROM r.created_at)
	     FROM jam.jam_attestations a JOIN jam.jam_work_reports r USING (package_id)}), '0',
	'attestations written by 1.0 are unsigned, and take their report\'s service and time');

# The functions keep their privileges, SECURITY DEFINER and pinned
# search_path (by name: an overload the update adds counts with its name),
# but for the one grant 1.1 adds: the shim's role may call the token
# functions, for HTTP token administration (they require jam:admin).
my %rights_after = %{ function_rights($db) };
my %rights_expected = %rights_before;
for my $f (qw(jam_create_token jam_revoke_token jam_list_tokens))
{
	$rights_expected{$f} =~ s/\bjam_api=false\b/jam_api=true/ if defined $rights_expected{$f};
}
same_map({ map { $_ => $rights_after{$_} } keys %rights_before }, \%rights_expected,
	'every 1.0 function keeps its grants (jam_api gains the token functions), SECURITY DEFINER and pinned search_path');
for my $f (qw(jam_submit_packages jam_process_packages))
{
	is($rights_after{$f} // '(missing)',
		'jam_api=true,jam_operator=true,jam_reader=false,public=false definer=true pinned=true',
		"$f: for the shim and operators, SECURITY DEFINER with a pinned search_path");
}

# Receipts: each verifies against the root the log has now.
sub unverified_receipts
{
	my ($dbname, @hashes) = @_;
	return sql(
		'SELECT count(*) FILTER (WHERE NOT coalesce(jam.jam_verify_inclusion(r->>\'leaf_hash\', (r->>\'seq\')::bigint,
		           (r->\'inclusion\'->>\'tree_size\')::bigint,
		           ARRAY(SELECT jsonb_array_elements_text(r->\'inclusion\'->\'proof\')), h.root), false)
		       OR h.root IS DISTINCT FROM r->\'inclusion\'->>\'root\') || \'/\' || count(*)
		 FROM unnest(' . text_array(@hashes) . ') x, jam.jam_receipt(x) r
		 LEFT JOIN LATERAL (SELECT e->>\'root\' AS root FROM jsonb_array_elements(jam.jam_roots()) e
		                    WHERE e->>\'service_id\' = r->>\'service_id\') h ON true', $dbname);
}
is(unverified_receipts($db, @all_packages, @report_hashes), '0/' . (@all_packages + @report_hashes),
	'every receipt verifies with jam_verify_inclusion against its service\'s root');

# The checkpoints signed before verify with the key pinned before; a
# checkpoint signed now verifies with it too, and is the same note
# (Ed25519 is deterministic): the node key survived.
is(jsql('SELECT jam.jam_status()')->{verifier_key}, $verifier_key, 'jam_status shows the same verifier key');
my $checkpoint_after = jsql(q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services});
# "<verified>/<notes>" of a { service => note } map.
sub checkpoints_verified
{
	my ($notes) = @_;
	return sql(q{SELECT count(*) FILTER (WHERE jam.jam_verify_checkpoint(note, '} . $verifier_key . q{'))
	                    || '/' || count(*)
	             FROM jsonb_each_text(} . quote(canon($notes)) . q{::jsonb) AS n(service_id, note)});
}
my $n_notes = keys %checkpoint_before;
is(checkpoints_verified(\%checkpoint_before), "$n_notes/$n_notes",
	'every checkpoint signed before the update verifies with the pinned key');
is(checkpoints_verified($checkpoint_after), "$n_notes/$n_notes",
	'every checkpoint signed after the update verifies with the same key');
is_deeply($checkpoint_after, \%checkpoint_before, 'and the notes are byte for byte the ones signed before');
is(checkpoints_verified({ altered => $checkpoint_before{'up-builtin'} =~ s/^(.*\n)(\d+)\n/$1 . ($2 + 1) . "\n"/er }),
	'0/1', 'a checkpoint altered in its size does not verify (the check can fail)');

sub logs_ok
{
	my ($dbname) = @_;
	return sql(q{SELECT string_agg(service_id || ':' || (jam.jam_verify_log(service_id)->>'ok'), ',' ORDER BY service_id)
	             FROM jam.jam_services}, $dbname);
}
my $all_ok = join ',', map { "$_:true" } @services;
is(logs_ok($db), $all_ok, 'jam_verify_log is ok for every service');

sub fsck_clean
{
	my ($dbname) = @_;
	my $f = jsql('SELECT jam.jam_fsck()', $dbname);
	return "drift=$f->{drift_count} missing=$f->{missing_count} pending=$f->{pending_drift_count}";
}
is(fsck_clean($db), 'drift=0 missing=0 pending=0', 'jam_fsck finds no drift');

# --- 6. The API after the update ------------------------------------------

sub bool_of { my ($v) = @_; return defined $v ? canon($v) : '(absent)'; }
my $shared_text = 'shared by packages of several services';

# The log heads before the update, to check that new entries extend them.
my %head_before = map { $_->{service_id} => { size => $_->{log_size}, root => $_->{log_root} } }
  @{ $rows_before->{jam_services}{data} };

# What was stored is found by its hash: the same bytes, the same package.
my $again = jsql(qq{SELECT jam.jam_put_preimage(convert_to('$shared_text', 'UTF8'), 'text/plain')});
is(bool_of($again->{created}) . " $again->{hash}", "false $pre{shared}",
	'putting a preimage stored before the update finds it');
my $resubmit = jsql(q{SELECT jam.jam_submit_package('up-builtin', convert_to('b2', 'UTF8'), preimage_hashes => }
	  . text_array($pre{shared}, $pre{reported}) . ')');
is(bool_of($resubmit->{created}) . " $resubmit->{id} $resubmit->{status}", "false $pkg{b2} applied",
	'resubmitting a package stored before the update finds it, applied');

# A new package continues its service's log from the head left by 1.0.
my $single_id = sql(q{SELECT jam.jam_package_id('up-builtin', convert_to('after 1', 'UTF8'), preimage_hashes => }
	  . text_array($pre{shared}, $pre{lonely}) . ')');
my $single = jsql(q{SELECT jam.jam_submit_package('up-builtin', convert_to('after 1', 'UTF8'), preimage_hashes => }
	  . text_array($pre{shared}, $pre{lonely}) . ')');
is(bool_of($single->{created}) . " $single->{id}", "true $single_id",
	'a new package is stored, with the id jam_package_id computes');
is("$single->{receipt}{seq} $single->{receipt}{prev_root}",
	"$head_before{'up-builtin'}{size} $head_before{'up-builtin'}{root}",
	'its log entry follows the last entry made before the update and extends that root');
is(jsql("SELECT jam.jam_preimage_meta('$pre{lonely}')")->{refcount}, 1,
	'it took a reference on a preimage nobody referenced before');

# Batches: payloads of a new service, and a batch mixing a package stored
# before the update with a new one.
sub batch
{
	my ($call) = @_;
	my $r = jsql("SELECT $call");
	return ($r, map { $_ // {} } @{ $r->{packages} // [] });
}
my ($b1, @b1) = batch(q{jam.jam_submit_packages('up-batch', ARRAY[convert_to('x1', 'UTF8'), convert_to('x2', 'UTF8'),
	convert_to('x3', 'UTF8')]::bytea[])});
is(join(',', map { bool_of($_->{created}) } @b1), 'true,true,true', 'jam_submit_packages stores three new packages');
is(join(',', map { $_->{receipt}{seq} // '-' } @b1), '0,1,2', 'with a receipt each, in order');
is_deeply([ map { $_->{id} } @b1 ],
	[ map { sql("SELECT jam.jam_package_id('up-batch', convert_to('x$_', 'UTF8'))") } 1 .. 3 ],
	'the ids jam_package_id computes');
my ($b2, @b2) = batch(q{jam.jam_submit_packages('up-builtin', ARRAY[convert_to('b5', 'UTF8'), convert_to('after 2', 'UTF8')]::bytea[])});
is(join(',', map { bool_of($_->{created}) . ' ' . ($_->{id} // '-') } @b2),
	"false $pkg{b5},true " . sql(q{SELECT jam.jam_package_id('up-builtin', convert_to('after 2', 'UTF8'))}),
	'a batch finds the package stored before the update (created: false) and stores the new one');
is($b2[1]{receipt}{seq}, $single->{receipt}{seq} + 1, 'the new one continues the log');
my $after3 = { payload => encode_base64('after 3', ''), weight_hint => 2, preimage_hashes => [ $pre{nul}, $pre{shared} ] };
my ($b3, @b3) = batch('jam.jam_submit_packages(service_id => \'up-refine\', packages => ' . quote(canon([$after3])) . '::jsonb)');
is(bool_of($b3[0]{created}) . ' ' . ($b3[0]{id} // '-'),
	'true ' . sql(q{SELECT jam.jam_package_id('up-refine', convert_to('after 3', 'UTF8'), weight_hint => 2, preimage_hashes => }
		  . text_array($pre{nul}, $pre{shared}) . ')'),
	'jam_submit_packages with per-package fields (jsonb) stores a package with preimages');

# Processing: the oldest pending package of up-builtin is one left by 1.0.
# Its report is what the documented encodings give, computed here in Perl
# from the preimage bytes: the references survived as the right hashes.
sub b2h { return unpack('H*', blake2b($_[0], 32)); }
sub report_hash_of
{
	my ($r) = @_;
	return b2h('jam/report/v1' . pack('H*', $r->{package_id})
		  . ($r->{status} eq 'applied'
			? "\x01" . pack('H*', $r->{output_hash})
			: "\x02" . pack('V', length $r->{failure_reason}) . $r->{failure_reason}));
}
sub output_hex { return unpack('H*', decode_base64($_[0]{output} // '')); }

my $r_b4 = jsql(q{SELECT jam.jam_process_next('up-builtin')});
is("$r_b4->{package_id} $r_b4->{status}", "$pkg{b4} applied", 'jam_process_next takes the package left pending before the update');
is(output_hex($r_b4),
	b2h('jam/refine/v1' . pack('V', 2) . pack('Q<', 2) . 'b4' . pack('Q<', length $shared_text) . $shared_text),
	'the built-in refine read the preimage the package referenced before the update');
is($r_b4->{report_hash}, report_hash_of($r_b4), 'its report hash is the documented one');

my $many = jsql(q{SELECT jam.jam_process_packages('up-refine', 10)});
is($many->{processed}, 3, 'jam_process_packages processes the two packages left pending before the update and the new one');
my @rr = @{ $many->{reports} // [] };
is(join(',', map { ($_->{package_id} // '-') . ':' . ($_->{status} // '-') } @rr),
	"$pkg{r3}:applied,$pkg{r4}:applied,$b3[0]{id}:applied", 'oldest first, all applied');
is(join(',', map { output_hex($_) } @rr),
	join(',', sha256_hex('r3'), sha256_hex("r4\x00\xff\x00"), sha256_hex("after 3\x00\xff\x00\x00$shared_text")),
	'the registered refine got each package\'s preimages, in order');
is(join(',', map { $_->{report_hash} // '-' } @rr), join(',', map { report_hash_of($_) } @rr),
	'their report hashes are the documented ones');

my $r_f3 = jsql(q{SELECT jam.jam_process_next('up-fails')});
is("$r_f3->{package_id} $r_f3->{status}", "$pkg{f3} failed", 'the raising refine still fails a package left pending');
like($r_f3->{failure_reason}, qr/refine refused f3/, 'with its error as the reason');
is($r_f3->{report_hash}, report_hash_of($r_f3), 'and the documented report hash');

is(jsql(q{SELECT jam.jam_process_packages('up-batch', 2)})->{processed}, 2, 'jam_process_packages stops at max_packages');
is(jsql(q{SELECT jam.jam_process_packages('up-batch', 5)})->{processed}, 1, 'and takes what is left');
is(jsql(q{SELECT jam.jam_process_packages('up-batch', 5)})->{processed}, 0, 'and then nothing');
is(jsql(q{SELECT jam.jam_process_packages('up-builtin', 10)})->{processed}, 3,
	'up-builtin: b5 (from before) and the two new packages');

# Tokens made before the update.
my $acme = jsql("SELECT jam.jam_authenticate('$tok{acme}')");
is(join(' ', map { bool_of($_) } @$acme{qw(authenticated token_id tenant)}),
	qq{true "$tok_id{acme}" "acme"}, 'a token created before the update authenticates');
is(jsql("SELECT jam.jam_process_next('up-tenant') FROM jam.jam_authenticate('$tok{acme}')")->{package_id},
	$pkg{t2}, 'and processes its tenant\'s package left pending');
like(try_sql("SELECT jam.jam_get_package('$pkg{b1}')::text FROM jam.jam_authenticate('$tok{acme}')"),
	qr/^JM011:/, 'it still sees nothing of another tenant\'s services (package_not_found)');
like(try_sql("SELECT jam.jam_authenticate('$tok{revoked}')::text"), qr/^JM026:/,
	'the token revoked before the update is still refused (unauthenticated)');
like(try_sql("SELECT jam.jam_list_packages(service_id => 'up-refine')->>'total' FROM jam.jam_authenticate('$tok{reader}')"),
	qr/^ok: 5$/, 'the reader token still reads its services');
like(try_sql("SELECT jam.jam_list_packages(service_id => 'up-fails')::text FROM jam.jam_authenticate('$tok{reader}')"),
	qr/^JM027:/, 'and only those (forbidden)');

# Quotas set before the update.
like(try_sql(q{SELECT jam.jam_submit_package('up-quota', convert_to('q3', 'UTF8'))::text}), qr/^JM018:/,
	'the pending cap of up-quota still refuses a third package (quota_exceeded)');
like(try_sql("SELECT jam.jam_submit_package('up-builtin', convert_to('limited 1', 'UTF8'))->>'created' FROM jam.jam_authenticate('$tok{limited}')"),
	qr/^ok: true$/, 'the rate-limited token submits once');
like(try_sql("SELECT jam.jam_submit_package('up-builtin', convert_to('limited 2', 'UTF8'))::text FROM jam.jam_authenticate('$tok{limited}')"),
	qr/^JM028:/, 'and is refused the second time within the minute (rate_limited)');
is(jsql(q{SELECT jam.jam_process_packages('up-builtin', 10)})->{processed}, 1,
	'the limited token\'s package processes (nothing else is left pending in up-builtin)');
my $usage = jsql(q{SELECT jam.jam_quota_usage(service_id => 'up-quota')});
is("$usage->{max_pending_packages}{source} $usage->{max_pending_packages}{limit} $usage->{pending_packages}",
	'service 2 2', 'jam_quota_usage shows the service override and its pending packages');

# Keyset paging (new in 1.1) walks the packages and reports written before
# and after the update in the order offset paging lists them.
for my $f (qw(jam_list_packages jam_list_reports))
{
	my $key = $f eq 'jam_list_packages' ? 'id' : 'package_id';
	my ($after, @keyset) = (0);
	for (1 .. 50)
	{
		my $page = jsql(qq{SELECT jam.$f(service_id => 'up-builtin', "limit" => 2, after => $after)});
		push @keyset, map { $_->{$key} } @{ $page->{items} // [] };
		last unless defined $page->{next_after};
		$after = $page->{next_after};
	}
	my $all = jsql(qq{SELECT jam.$f(service_id => 'up-builtin', "limit" => 1000)});
	cmp_ok($all->{total}, '>', 5, "$f: up-builtin has several pages of two");
	is_deeply(\@keyset, [ map { $_->{$key} } @{ $all->{items} } ],
		"$f: keyset paging (after) lists what offset paging lists, in the same order");
}

# The shim's role, with a token, through the functions it is granted.
my $via_shim = sql(q{SET ROLE upgrade_shim;
	SELECT public.upgrade_try($q$SELECT jam.jam_submit_package('up-shim', convert_to('via shim', 'UTF8'))->>'created'
	                            FROM jam.jam_authenticate('} . $tok{admin} . q{')$q$);
	SELECT public.upgrade_try($q$SELECT jam.jam_submit_packages(service_id => 'up-shim',
	                                packages => '[{"payload": "c2hpbSAy"}]'::jsonb)->>'created'
	                            FROM jam.jam_authenticate('} . $tok{admin} . q{')$q$);
	SELECT public.upgrade_try($q$SELECT jam.jam_process_packages('up-shim', 5)->>'processed'
	                            FROM jam.jam_authenticate('} . $tok{admin} . q{')$q$);
	SELECT public.upgrade_try($q$SELECT jam.jam_process_next('up-shim')::text$q$);});
is($via_shim, "ok: true\nok: 1\nok: 2\nJM026: jam_process_next needs a token",
	'jam_api with a token: submit, batch submit, process several; without a token: refused');

# Quota usage shows rate buckets, which live in shared memory and refill
# with time: once the test has spent some (below, after the update), two
# readings a moment apart may differ.
sub without_rate_buckets
{
	my ($api) = @_;
	return { map { $_ => $api->{$_} } grep { !/^jam_quota_usage/ } keys %$api };
}

# The session connected since before the update goes on working.
sub session_try
{
	my ($query) = @_;
	return scalar $session->query('SELECT public.upgrade_try(' . quote($query) . ')');
}
my $s2 = session_try(q{SELECT jam.jam_submit_package('up-session', convert_to('s2', 'UTF8'), preimage_hashes => ARRAY['}
	  . $pre{shared} . q{'])::text});
like($s2, qr/^ok: \{.*"created": true/, 'a session connected before the update submits after it');
like(session_try(q{SELECT jam.jam_process_next('up-session')->>'status'}), qr/^ok: applied$/, 'and processes');
same_map(without_rate_buckets(api_snapshot($db, \&through_session)), without_rate_buckets(api_snapshot($db)),
	'and answers every question as a new session does');
$session->quit;

# Every receipt, old and new, verifies against the roots of the grown
# logs; each log after the update is consistent with its head before.
my @new_hashes = (
	$single->{id}, (map { $_->{id} } @b1, @b2, @b3),
	map { $_->{report_hash} } $r_b4, $r_f3, @rr);
is(unverified_receipts($db, @all_packages, @report_hashes, @new_hashes),
	'0/' . (@all_packages + @report_hashes + @new_hashes),
	'every receipt, from before and after the update, verifies against the current roots');
my %head_after = map { $_->{service_id} => $_ } @{ jsql('SELECT jam.jam_roots()') };
my @inconsistent;
for my $s (sort grep { $head_before{$_}{size} > 0 } keys %head_before)
{
	my ($m, $n) = ($head_before{$s}{size}, $head_after{$s}{tree_size});
	my $ok = sql(
		"SELECT jam.jam_verify_consistency($m, $n, jam.jam_consistency_proof('$s', $m, $n), "
		  . "'$head_before{$s}{root}', '$head_after{$s}{root}')");
	push @inconsistent, "$s ($m..$n)" unless $ok eq 't';
}
is(join(', ', @inconsistent), '', 'every log grown after the update is consistent with its head before it');
cmp_ok($head_after{'up-builtin'}{tree_size}, '>', $head_before{'up-builtin'}{size}, '(and up-builtin did grow)');

# Retention over rows written by 1.0: up-fails' packages, reports and
# attestations made to look 60 days old go, with the references they held;
# the log stays.
sql(q{UPDATE jam.jam_work_packages SET submitted_at = submitted_at - interval '60 days' WHERE service_id = 'up-fails';
      UPDATE jam.jam_work_reports SET created_at = created_at - interval '60 days' WHERE service_id = 'up-fails';
      UPDATE jam.jam_attestations a SET created_at = a.created_at - interval '60 days'
      FROM jam.jam_work_reports r WHERE r.package_id = a.package_id AND r.service_id = 'up-fails'});
my $refs_before_cleanup = jsql("SELECT jam.jam_preimage_meta('$pre{reported}')")->{refcount};
my $cleanup = jsql('SELECT jam.jam_cleanup(dry_run => false)');
is(join(' ', map { "$_=" . ($cleanup->{$_} // '-') } qw(packages_deleted reports_deleted attestations_deleted)),
	'packages_deleted=3 reports_deleted=3 attestations_deleted=3',
	'jam_cleanup deletes the aged packages of 1.0 with their reports and attestations');
is(jsql("SELECT jam.jam_preimage_meta('$pre{reported}')")->{refcount}, $refs_before_cleanup - 2,
	'and releases the references they held (f3 and its report)');
like(try_sql("SELECT jam.jam_get_package('$pkg{f1}')::text"), qr/^JM011:/, 'the aged package is gone');
is(unverified_receipts($db, $pkg{f1}), '0/1', 'and its receipt is still proven by the log');

# New writes are 32-byte hashes too, and nothing drifted.
check_hash_columns($db, 'after new writes');
my @services_now = split /\n/, sql('SELECT service_id FROM jam.jam_services ORDER BY 1');
is(logs_ok($db), join(',', map { "$_:true" } @services_now), 'jam_verify_log is ok for every service after new writes');
is(fsck_clean($db), 'drift=0 missing=0 pending=0', 'jam_fsck finds no drift after new writes');

# --- 7. pg_dump of the updated database, pg_restore into a new one ---------

my $src_rows = rows_snapshot($db);
my $src_seqs = sequences_snapshot($db);
my $src_checkpoints = jsql(q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services});
my $src_api = api_snapshot($db);

my $tmp = PostgreSQL::Test::Utils::tempdir;
my @conn = ('-h', $node->host, '-p', $node->port);
$node->command_ok([ $node->installed_command('pg_dump'), @conn, '-Fc', '-f', "$tmp/upgraded.dump", $db ],
	'pg_dump of the updated database, custom format');
$node->safe_psql('postgres', 'CREATE DATABASE jam_restored');
my ($stdout, $stderr) = ('', '');
my $restored = IPC::Run::run([ $node->installed_command('pg_restore'), @conn, '--exit-on-error', '-d', 'jam_restored', "$tmp/upgraded.dump" ],
	'>', \$stdout, '2>', \$stderr);
ok($restored, 'pg_restore into a new database succeeds');
is($stderr, '', 'pg_restore reports no error or warning');
if (!$restored)
{
	# The restored database is not whole: what follows would only echo that.
	$node->stop;
	done_testing();
	exit;
}

my $rdb = 'jam_restored';
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}, $rdb), $latest_version, "the restored database has jam $latest_version");
check_hash_columns($rdb, 'restored');
my $rst_rows = rows_snapshot($rdb);
is(join(',', sort keys %$rst_rows), join(',', sort keys %$src_rows), 'restored: the same jam tables');
same_rows($rst_rows->{$_}{rows}, $src_rows->{$_}{rows}, "restored: every row of $_ is the source's") for sort keys %$src_rows;
is_deeply(sequences_snapshot($rdb), $src_seqs, 'restored: the sequences are where the source left them');
is_deeply(jsql(q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id)) FROM jam.jam_services}, $rdb),
	$src_checkpoints, 'restored: the signed checkpoints are the source\'s, byte for byte (same key, same heads)');
same_map(without_rate_buckets(api_snapshot($rdb)), without_rate_buckets($src_api),
	'restored: the API answers as the source does');

# The restored database works.
my $rhead = { map { $_->{service_id} => $_ } @{ jsql('SELECT jam.jam_roots()', $rdb) } };
my $rs = jsql(q{SELECT jam.jam_submit_package('up-builtin', convert_to('after restore', 'UTF8'), preimage_hashes => }
	  . text_array($pre{reported}) . ')', $rdb);
is(bool_of($rs->{created}) . " $rs->{receipt}{seq} $rs->{receipt}{prev_root}",
	"true $rhead->{'up-builtin'}{tree_size} $rhead->{'up-builtin'}{root}",
	'restored: a submit continues the restored log');
my $rb_doc = jsql(q{SELECT jam.jam_submit_packages('up-batch', ARRAY[convert_to('x1', 'UTF8'), convert_to('x4', 'UTF8')]::bytea[])}, $rdb);
is(join(',', map { bool_of($_->{created}) } @{ $rb_doc->{packages} // [] }), 'false,true',
	'restored: a batch finds a restored package and stores a new one');
my $rp = jsql(q{SELECT jam.jam_process_next('up-builtin')}, $rdb);
is("$rp->{package_id} $rp->{status}", "$rs->{id} applied", 'restored: jam_process_next processes it');
is(jsql(q{SELECT jam.jam_process_packages('up-batch', 5)}, $rdb)->{processed}, 1, 'restored: jam_process_packages too');
is(unverified_receipts($rdb, $rs->{id}, $rp->{report_hash}, $pkg{b1}), '0/3', 'restored: receipts verify against the current roots');
is(logs_ok($rdb), join(',', map { "$_:true" } @services_now), 'restored: jam_verify_log is ok for every service');
is(fsck_clean($rdb), 'drift=0 missing=0 pending=0', 'restored: jam_fsck finds no drift');

$node->stop;
done_testing();
