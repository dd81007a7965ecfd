# What upgrade tests record and compare: every row of the extension's
# tables, the rights of its functions, receipts and checkpoints; and
# comparisons that report the first differences (table, key, before,
# after) so that a failure says what changed, not only that something did.
# 060_upgrade.pl keeps its own copies of these (with its 1.0 hex/bytea
# normalisation); 062 to 069 use this module.
#
#   my $node = upgrade_node('upgrade_1_2', $db);   # a cluster preloading jam, $db created
#   my $rows = rows_snapshot($node, $db);          # { table => {columns, rows, data} }
#   restores_whole($node, $db, $restored, '1.4') or ...; # pg_dump -Fc, pg_restore, compared
#   restored_or_finish($node, $db, $restored, '1.4');  # the same, ending the test when it fails
#   my $before = state_before($node, $db, $checkpoints_query);  # rows, sequences, rights, heads
#   same_state($node, $db, $before, \@hashes, $columns_of);      # all of it compared after an update
#   updates_keeping_state($node, $db, '1.7', \@hashes);  # state_before, update, same_state
#   restored_with_heads($node, $db, $restored, '1.7');   # restored_or_finish, the same heads there
#   my ($scans, $first) = index_scans($run, 'jam_x_idx', $query); # how often $query used an index
#   my ($token, $packages, $reports) = filled_through_api($node, $db, 4);  # after install_with_refines
#   same_rows($after->{$t}{rows}, $before->{$t}{rows}, $name);
#   same_map(\%got, \%want, $name);

package JamTest::Upgrade;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(canon quote text_array ext_relations dumped_relations rows_snapshot
  sequences_snapshot same_rows same_map function_rights unverified_receipts
  checkpoints_verified upgrade_node restores_whole restored_or_finish install_with_refines
  updates_to state_before same_state submit_each submit_batch $try_functions
  $heads_query updates_keeping_state restored_with_heads index_scans filled_through_api
  $latest_version);

my $json = JSON::PP->new->canonical->allow_nonref;

# The version jam.control makes the default: every upgrade test updates to
# it, and 060_upgrade.pl checks that the installed control file agrees, so
# a release changes this line instead of each test.
our $latest_version = '1.9';

# One text per value: JSON with sorted keys.
sub canon { return $json->encode($_[0]); }

sub quote { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }
sub text_array { return 'ARRAY[' . join(',', map { quote($_) } @_) . ']::text[]'; }

# public.upgrade_try(query) runs SQL and returns "ok: <result>" or
# "<SQLSTATE>: <message>", so that refusals are asserted by their code;
# public.upgrade_answer(query) returns a query's jsonb, or the error as
# {error, message}, so that an answer lost in an update shows as a
# difference rather than ending the test.  They live in public, like a
# user's helpers, and so travel through pg_dump too.
our $try_functions = q{
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

# A started cluster preloading jam, with the empty database $db: not
# jam_node, which creates the extension at the default version, where an
# upgrade test installs an older one.
sub upgrade_node
{
	my ($name, $db) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'jam'\n");
	$node->start;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	return $node;
}

# pg_dump -Fc of $db, restored into the new database $restored with
# --exit-on-error: asserts each step, that pg_restore said nothing, and
# that the restored database has jam at $version, the same tables with the
# same rows and the sequences where $db left them; returns whether the
# restore succeeded (when not, the comparisons would only echo that).
sub restores_whole
{
	my ($node, $db, $restored, $version) = @_;
	my $src_rows = rows_snapshot($node, $db);
	my $src_seqs = sequences_snapshot($node, $db);
	my $tmp = PostgreSQL::Test::Utils::tempdir;
	my @conn = ('-h', $node->host, '-p', $node->port);
	$node->command_ok([ $node->installed_command('pg_dump'), @conn, '-Fc', '-f', "$tmp/updated.dump", $db ],
		'pg_dump of the updated database');
	$node->safe_psql('postgres', "CREATE DATABASE $restored");
	my ($stdout, $stderr) = ('', '');
	my $ok = ok(IPC::Run::run([ $node->installed_command('pg_restore'), @conn, '--exit-on-error', '-d', $restored,
				"$tmp/updated.dump" ], '>', \$stdout, '2>', \$stderr), 'pg_restore into a new database');
	is($stderr, '', 'pg_restore reports nothing');
	return 0 if !$ok;
	is($node->safe_psql($restored, q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), $version,
		"restored: jam $version");
	my $rst_rows = rows_snapshot($node, $restored);
	is(join(',', sort keys %$rst_rows), join(',', sort keys %$src_rows), 'restored: the same jam tables');
	same_rows($rst_rows->{$_}{rows}, $src_rows->{$_}{rows}, "restored: every row of $_") for sort keys %$src_rows;
	is_deeply(sequences_snapshot($node, $restored), $src_seqs, 'restored: the sequences where the source left them');
	return 1;
}

# The extension's own relations of the given relkinds, from pg_depend.
sub ext_relations
{
	my ($node, $db, $kinds) = @_;
	return split /\n/, $node->safe_psql($db,
		qq{SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
		     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'jam')
		     AND d.deptype = 'e' AND c.relkind IN ($kinds) ORDER BY 1});
}

# The relations registered with pg_extension_config_dump (pg_dump keeps
# their data).
sub dumped_relations
{
	my ($node, $db) = @_;
	return split /\n/, $node->safe_psql($db,
		q{SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS r(oid)
		  JOIN pg_class c ON c.oid = r.oid WHERE e.extname = 'jam' ORDER BY 1});
}

# { table => { columns => [...], rows => [sorted canonical rows], data => [rows] } }
# for every table of the extension, read with row_to_json.  With
# $columns_of ({ table => [columns] }), only those columns of a table are
# kept, so that a column an update adds is not a difference.
sub rows_snapshot
{
	my ($node, $db, $columns_of) = @_;
	my %snap;
	my @tables = ext_relations($node, $db, q{'r', 'p'});
	for (split /\n/, $node->safe_psql($db,
			q{SELECT c.relname || ' ' || string_agg(attname, ' ' ORDER BY attnum)
			  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			  WHERE c.relnamespace = 'jam'::regnamespace AND attnum > 0 AND NOT attisdropped
			  GROUP BY c.relname}))
	{
		my ($t, @cols) = split / /;
		$snap{$t} = { columns => \@cols, data => [] } if grep { $_ eq $t } @tables;
	}
	# One psql for all tables: each line is "<table> <row as JSON>".
	my $rows = $node->safe_psql($db, join(";\n", map { "SELECT '$_ ' || row_to_json(t) FROM jam.$_ t" } @tables));
	for (split /\n/, $rows)
	{
		my ($t, $row) = split / /, $_, 2;
		my $r = decode_json($row);
		if ($columns_of && $columns_of->{$t})
		{
			$r = { map { exists $r->{$_} ? ($_ => $r->{$_}) : () } @{ $columns_of->{$t} } };
		}
		push @{ $snap{$t}{data} }, $r;
	}
	$snap{$_}{rows} = [ sort map { canon($_) } @{ $snap{$_}{data} } ] for keys %snap;
	return \%snap;
}

# { sequence => "last_value/is_called" } of the extension's sequences.
sub sequences_snapshot
{
	my ($node, $db) = @_;
	return { map { $_ => $node->safe_psql($db, "SELECT last_value || '/' || is_called FROM jam.$_") }
		  ext_relations($node, $db, q{'S'}) };
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
	return $ok if $ok;
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
	diag('only after:  ' . substr($_, 0, 700)) for @new[ 0 .. ($#new < 2 ? $#new : 2) ];
	return $ok;
}

# Fails listing the first keys whose values differ or exist on one side;
# an empty comparison fails too.
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

# { "<function>(<argument types>)" => "jam_api=..,jam_operator=..,jam_reader=..,public=..
# definer=.. pinned=.." } for every function of the schema jam: who may
# execute it, whether it is SECURITY DEFINER, and, for a definer, whether
# its search_path is pinned to pg_catalog, jam, pg_temp.
sub function_rights
{
	my ($node, $db) = @_;
	return {
		map { split /\|/, $_, 2 } split /\n/, $node->safe_psql($db,
			q{SELECT p.oid::regprocedure,
			         string_agg(r || '=' || has_function_privilege(r, p.oid, 'EXECUTE'), ',' ORDER BY r)
			         || ' definer=' || bool_and(prosecdef)
			         || ' pinned=' || bool_and(NOT prosecdef OR coalesce('search_path=pg_catalog, jam, pg_temp' = ANY (proconfig), false))
			  FROM pg_proc p, unnest(ARRAY['jam_api', 'jam_operator', 'jam_reader', 'public']) r
			  WHERE pronamespace = 'jam'::regnamespace AND prokind = 'f'
			  GROUP BY p.oid})
	};
}

# "<receipts that do not verify>/<receipts>": each receipt of the hashes
# (package ids, report hashes) checked with jam_verify_inclusion against
# the root jam_roots gives its service now.
sub unverified_receipts
{
	my ($node, $db, @hashes) = @_;
	return $node->safe_psql($db,
		q{SELECT count(*) FILTER (WHERE NOT coalesce(jam.jam_verify_inclusion(r->>'leaf_hash', (r->>'seq')::bigint,
		           (r->'inclusion'->>'tree_size')::bigint,
		           ARRAY(SELECT jsonb_array_elements_text(r->'inclusion'->'proof')), h.root), false)
		       OR h.root IS DISTINCT FROM r->'inclusion'->>'root') || '/' || count(*)
		 FROM unnest(} . text_array(@hashes) . q{) x, jam.jam_receipt(x) r
		 LEFT JOIN LATERAL (SELECT e->>'root' AS root FROM jsonb_array_elements(jam.jam_roots()) e
		                    WHERE e->>'service_id' = r->>'service_id') h ON true});
}

# "<verified>/<notes>" of a { service => checkpoint note } map, with a
# verifier key.
sub checkpoints_verified
{
	my ($node, $db, $notes, $key) = @_;
	return $node->safe_psql($db,
		q{SELECT count(*) FILTER (WHERE jam.jam_verify_checkpoint(note, } . quote($key) . q{)) || '/' || count(*)
		  FROM jsonb_each_text(} . quote(canon($notes)) . q{::jsonb) AS n(service_id, note)});
}

# restores_whole, and when the restored database is not whole, the end of
# the test: what would follow would only echo that.
sub restored_or_finish
{
	my ($node, $db, $restored, $version) = @_;
	return if restores_whole($node, $db, $restored, $version);
	$node->stop;
	done_testing();
	exit;
}

# jam at $version in $db, asserted; then public.<prefix>_refine (sha256 of
# the payload) and public.<prefix>_refine_fails (raises), registered for
# the services 'u-refine' (share 3, at most 50 pending) and 'u-fails'.
sub install_with_refines
{
	my ($node, $db, $version, $prefix) = @_;
	$node->safe_psql($db, "CREATE EXTENSION jam VERSION '$version'");
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}), $version,
		"jam is installed at $version");
	$node->safe_psql($db, qq{
		CREATE FUNCTION public.${prefix}_refine(payload bytea, preimages bytea[]) RETURNS bytea
		LANGUAGE sql IMMUTABLE STRICT AS \$\$ SELECT pg_catalog.sha256(payload) \$\$;
		CREATE FUNCTION public.${prefix}_refine_fails(payload bytea, preimages bytea[]) RETURNS bytea
		LANGUAGE plpgsql IMMUTABLE AS \$\$ BEGIN RAISE EXCEPTION 'refine refused'; END \$\$;
		SELECT jam.jam_register_service('u-refine', 'public.${prefix}_refine(bytea, bytea[])', NULL, 3);
		SELECT jam.jam_register_service('u-fails', 'public.${prefix}_refine_fails(bytea, bytea[])');
		SELECT jam.jam_set_quota('u-refine', max_pending_packages => 50);});
}

# ALTER EXTENSION jam UPDATE in $db, asserted to succeed and to reach
# $version, the default version.
sub updates_to
{
	my ($node, $db, $version) = @_;
	my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION jam UPDATE');
	is($rc, 0, 'ALTER EXTENSION jam UPDATE succeeds') or diag($err);
	is($node->safe_psql($db, q{SELECT extversion || ' ' || default_version FROM pg_extension, pg_available_extensions
	                           WHERE extname = 'jam' AND name = 'jam'}),
		"$version $version", "jam is at the default version, $version");
}

# What an update must leave as it was: every row, sequence, function's
# rights, relation registered for pg_dump, and the heads as checkpoints
# ($checkpoints: a query of { service => note }) with the key they verify with.
sub state_before
{
	my ($node, $db, $checkpoints) = @_;
	return {
		rows => rows_snapshot($node, $db),
		sequences => sequences_snapshot($node, $db),
		rights => function_rights($node, $db),
		dumped => [ dumped_relations($node, $db) ],
		checkpoints_query => $checkpoints,
		checkpoints => decode_json($node->safe_psql($db, $checkpoints)),
		verifier_key => decode_json($node->safe_psql($db, 'SELECT jam.jam_status()'))->{verifier_key},
	};
}

# Asserts that all of state_before is as it was (rows on the columns of
# $columns_of where given, else on the columns each table had before), that
# the receipts of @$hashes verify against the current roots, and that the
# checkpoints still verify and nothing was appended.
sub same_state
{
	my ($node, $db, $before, $hashes, $columns_of) = @_;
	my $rows_before = $before->{rows};
	# Columns an update adds are checked by the test that knows them.
	$columns_of //= { map { $_ => $rows_before->{$_}{columns} } keys %$rows_before };
	my $rows_after = rows_snapshot($node, $db, $columns_of);
	is(join(',', sort keys %$rows_after), join(',', sort keys %$rows_before), 'the same tables');
	same_rows($rows_after->{$_}{rows}, $rows_before->{$_}{rows}, "$_: every row is as before")
	  for sort keys %$rows_before;
	is_deeply(sequences_snapshot($node, $db), $before->{sequences}, 'every sequence where it was');
	my $rights = function_rights($node, $db);
	my %kept = map { $_ => $rights->{$_} } grep { exists $before->{rights}{$_} } keys %$rights;
	is_deeply(\%kept, $before->{rights}, 'every function keeps its grants, SECURITY DEFINER and pinned search_path');
	my @open = grep { !exists $before->{rights}{$_} && $rights->{$_} =~ /public=true/ } sort keys %$rights;
	is("@open", '', 'no function the update adds may be executed by PUBLIC');
	is(join(',', dumped_relations($node, $db)), join(',', @{ $before->{dumped} }),
		'the same relations registered for pg_dump');
	is(unverified_receipts($node, $db, @$hashes), '0/' . @$hashes,
		'every receipt made before the update verifies against the current root');
	my $n_notes = keys %{ $before->{checkpoints} };
	is(checkpoints_verified($node, $db, $before->{checkpoints}, $before->{verifier_key}), "$n_notes/$n_notes",
		'every checkpoint signed before the update verifies with the key pinned before');
	is_deeply(decode_json($node->safe_psql($db, $before->{checkpoints_query})), $before->{checkpoints},
		'and the heads are the same: nothing was appended');
}

# The ids of packages submitted one by one, each [service, payload]
# referencing the preimage $preimage.
sub submit_each
{
	my ($node, $db, $preimage, @packages) = @_;
	return map {
		$node->safe_psql($db, "SELECT jam.jam_submit_package('$_->[0]', convert_to('$_->[1]', 'UTF8'), "
			  . 'preimage_hashes => ' . text_array($preimage) . ")->>'id'")
	} @packages;
}

# The ids of packages submitted to $service in one jam_submit_packages call.
sub submit_batch
{
	my ($node, $db, $service, @payloads) = @_;
	my $answer = $node->safe_psql($db, "SELECT jam.jam_submit_packages('$service', ARRAY["
		  . join(', ', map { "convert_to('$_', 'UTF8')" } @payloads) . "])->'packages'");
	return map { $_->{id} } @{ decode_json($answer) };
}

# Each non-empty log's head as a signed checkpoint: { service => note }.
our $heads_query = q{SELECT jsonb_object_agg(service_id, jam.jam_checkpoint(service_id))
	FROM jam.jam_services WHERE log_size > 0};

# ALTER EXTENSION jam UPDATE in $db to $version, asserted to keep all of
# state_before (the heads as $heads_query has them), receipts of @$hashes
# included.
sub updates_keeping_state
{
	my ($node, $db, $version, $hashes) = @_;
	my $before = state_before($node, $db, $heads_query);
	updates_to($node, $db, $version);
	same_state($node, $db, $before, $hashes);
}

# restored_or_finish into $restored, and then the same signed heads there.
sub restored_with_heads
{
	my ($node, $db, $restored, $version) = @_;
	my $heads = decode_json($node->safe_psql($db, $heads_query));
	restored_or_finish($node, $db, $restored, $version);
	is_deeply(decode_json($node->safe_psql($restored, $heads_query)), $heads,
		'restored: the same signed checkpoints');
}

# How many times jam.$index was scanned while $query ran ('no index' where
# there is none), read in the same transaction from the backend's own
# counters, and the first line $query printed.  $run runs SQL in some
# session: a background psql that lives across an update, or a new one.
sub index_scans
{
	my ($run, $index, $query) = @_;
	my $out = $run->(qq{BEGIN;
		$query;
		SELECT coalesce((SELECT pg_stat_get_xact_numscans(c.oid)::text FROM pg_class c
		  WHERE c.relname = '$index' AND c.relnamespace = 'jam'::regnamespace), 'no index');
		COMMIT;});
	my @lines = grep { $_ ne '' && !/^(BEGIN|COMMIT)$/ } split /\n/, $out;
	return ($lines[-1], $lines[0]);
}

# After install_with_refines: the tenant acme's service acme-a and a
# token of acme's; packages r1 and r2 of u-refine and f1 of u-fails, each
# referencing one preimage, x1 to x4 of u-batch in one batch and a1 of
# acme-a through the token; then u-refine's two, u-fails's one (failed),
# $batch_processed of u-batch's and acme-a's one processed.  Returns the
# token and the package ids and report hashes (to check receipts by).
sub filled_through_api
{
	my ($node, $db, $batch_processed) = @_;
	my $sql = sub { return $node->safe_psql($db, $_[0]); };
	my $jsql = sub { return decode_json($sql->($_[0])); };
	$sql->(q{SELECT jam.jam_register_service('acme-a', NULL, 'acme')});
	my $acme = $sql->(q{SELECT jam.jam_create_token('acme', '{jam:read,jam:submit,jam:process}', NULL, 'acme')});
	my $as_acme = sub { return "SELECT $_[0] FROM jam.jam_authenticate('$acme')"; };
	my $shared = $sql->(q{SELECT jam.jam_put_preimage(convert_to('shared bytes', 'UTF8'), 'text/plain')->>'hash'});

	my @packages = submit_each($node, $db, $shared, [ 'u-refine', 'r1' ], [ 'u-refine', 'r2' ], [ 'u-fails', 'f1' ]);
	push @packages, submit_batch($node, $db, 'u-batch', qw(x1 x2 x3 x4));
	push @packages, $sql->($as_acme->(q{jam.jam_submit_package('acme-a', convert_to('a1', 'UTF8'))->>'id'}));
	is(scalar(grep { /^[0-9a-f]{64}$/ } @packages), 8, 'submitted 8 packages, 4 of them in a batch');

	my @reports = map { $_->{report_hash} } @{ $jsql->(q{SELECT jam.jam_process_packages('u-refine', 2)->'reports'}) };
	push @reports, $jsql->(q{SELECT jam.jam_process_next('u-fails')})->{report_hash};
	push @reports, map { $_->{report_hash} }
	  @{ $jsql->("SELECT jam.jam_process_packages('u-batch', $batch_processed)->'reports'") };
	push @reports, $jsql->($as_acme->(q{jam.jam_process_next('acme-a')}))->{report_hash};
	is(scalar(grep { /^[0-9a-f]{64}$/ } @reports), 4 + $batch_processed,
		(4 + $batch_processed) . ' reports, one of them failed');
	return ($acme, \@packages, \@reports);
}

1;
