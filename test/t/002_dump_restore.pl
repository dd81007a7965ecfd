# pg_dump and pg_restore keep every jam table's data and sequences, and the
# API works on the restored database.
#
# The source database holds preimages (empty, binary with NUL bytes, every
# byte value, a multi-megabyte one), packages of three services (the
# built-in refine, a registered IMMUTABLE refine function in public, and a
# registered one that always raises), some processed and some pending.  It
# is dumped in custom format (restored with pg_restore) and in plain format
# (restored with psql), and each restored database is compared with the
# source table by table, then used.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;

my $node = jam_node('dump');
my $src = 'jamsrc';
$node->safe_psql('postgres', "CREATE DATABASE $src");
$node->safe_psql($src, 'CREATE EXTENSION jam');

sub sql { my ($db, $query) = @_; return $node->safe_psql($db, $query); }

# --- Preimages.

my $big_mb = 3;
my %pre;    # name => hash
my %pre_sql = (
	empty => q{''::bytea},
	nul_bytes => q{'\x00006a616d00ff0000'::bytea},
	all_bytes => q{(SELECT string_agg(set_byte('\x00'::bytea, 0, b), ''::bytea ORDER BY b)
		FROM generate_series(0, 255) b)},
	text => q{convert_to('hello, jam', 'UTF8')},
	big => qq{(SELECT decode(string_agg(md5(i::text) || '00', '' ORDER BY i), 'hex')
		FROM generate_series(1, $big_mb * 1024 * 1024 / 17) i)},
	unused => q{'\xdeadbeef00'::bytea},);
my %pre_md5;
for my $name (sort keys %pre_sql)
{
	my $media = $name eq 'text' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
	my ($hash, $created, $md5, $size) = split /\|/,
	  sql($src, qq{
		WITH b AS (SELECT $pre_sql{$name} AS data)
		SELECT r->>'hash', r->>'created', md5(b.data), octet_length(b.data)
		FROM b, jam.jam_put_preimage(b.data, '$media') r});
	is($created, 'true', "stored preimage '$name' ($size bytes)");
	$pre{$name} = $hash;
	$pre_md5{$name} = $md5;
}
cmp_ok(sql($src, "SELECT size FROM jam.jam_preimages WHERE hash = decode('$pre{big}', 'hex')"),
	'>=', $big_mb * 1000 * 1000, 'the big preimage is multi-megabyte');
is(sql($src, "SELECT position('\\x00'::bytea IN jam.jam_get_preimage('$pre{nul_bytes}')) > 0"),
	't', 'a stored preimage contains NUL bytes');

# --- Services: built-in refine, a registered one, and one that fails.

sql(
	$src, q{
	CREATE FUNCTION public.jam_test_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT
	AS $$ SELECT sha256(payload || coalesce(array_to_string(
		ARRAY(SELECT encode(p, 'hex') FROM unnest(preimages) p), ','), '')::bytea) $$;
	CREATE FUNCTION public.jam_test_refine_fails(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RAISE EXCEPTION 'refine refused %', encode(payload, 'escape'); END $$;
	SELECT jam.jam_register_service('svc-refine', 'public.jam_test_refine(bytea, bytea[])');
	SELECT jam.jam_register_service('svc-fails', 'public.jam_test_refine_fails(bytea, bytea[])');});

# --- Packages: 8 per service, some referencing preimages.

my @services = ('svc-builtin', 'svc-refine', 'svc-fails');
my @refs = ([], [ $pre{text} ], [ $pre{nul_bytes}, $pre{big} ], [ $pre{all_bytes}, $pre{empty}, $pre{text} ]);
for my $svc (@services)
{
	for my $i (1 .. 8)
	{
		my $refs = $refs[ $i % @refs ];
		my $arr = @$refs ? "ARRAY['" . join("','", @$refs) . "']" : q{'{}'::text[]};
		my $created = sql($src,
			"SELECT jam.jam_submit_package('$svc', '\\x00'::bytea || convert_to('$svc #$i', 'UTF8'), "
			  . "weight_hint => $i, preimage_hashes => $arr)->>'created'");
		is($created, 'true', "submitted package $i of $svc") if $i == 1;
	}
}
is(sql($src, 'SELECT count(*) FROM jam.jam_work_packages'), '24', 'submitted 24 packages');

# Process the 5 oldest of each service; 3 of each stay pending.
for my $svc (@services)
{
	my $n = 0;
	for (1 .. 5)
	{
		$n++ if sql($src, "SELECT jam.jam_process_next('$svc') IS NOT NULL") eq 't';
	}
	is($n, 5, "processed 5 packages of $svc");
}
is( sql(
		$src,
		q{SELECT string_agg(service_id || ':' || status || '=' || n, ',' ORDER BY service_id, status)
		  FROM (SELECT service_id, status, count(*) n FROM jam.jam_work_packages GROUP BY 1, 2) s}
	),
	'svc-builtin:applied=5,svc-builtin:pending=3,svc-fails:failed=5,svc-fails:pending=3,'
	  . 'svc-refine:applied=5,svc-refine:pending=3',
	'processed 5 packages of each service: the failing refine failed them, the others applied');
like(
	sql($src, q{SELECT min(failure_reason) FROM jam.jam_work_reports WHERE service_id = 'svc-fails'}),
	qr/refine refused/,
	'a failed report records the refine error');
my $refine_name = sql($src,
	q{SELECT string_agg(DISTINCT refine, ',') FROM jam.jam_work_reports WHERE service_id = 'svc-refine'});
like($refine_name, qr/^public\.jam_test_refine\(/, 'the registered refine function ran');

# Signed checkpoints of every service log (this makes the node key).
sub checkpoints
{
	my ($db) = @_;
	return sql($db,
		q{SELECT string_agg(jam.jam_checkpoint(service_id), E'\n--\n' ORDER BY service_id) FROM jam.jam_services});
}
sub logs_verify
{
	my ($db) = @_;
	return sql($db,
		q{SELECT string_agg(service_id || ':' || (jam.jam_verify_log(service_id)->>'ok'), ',' ORDER BY service_id)
		  FROM jam.jam_services});
}
my $all_logs_ok = join ',', map { "$_:true" } sort @services;
my $src_checkpoints = checkpoints($src);
like($src_checkpoints, qr/svc-builtin/, 'the source signs checkpoints of its service logs');
is(sql($src, 'SELECT count(*) FROM jam.jam_node_keys'), '1', 'the source has its node key');
is(logs_verify($src), $all_logs_ok, 'the source logs verify');

my @tables = jam_config_tables($node, $src);
note 'jam tables kept by pg_dump: ' . join(', ', @tables);
for my $t (qw(jam_preimages jam_services jam_work_packages jam_work_reports jam_attestations))
{
	ok((grep { $_ eq $t } @tables), "$t is registered for pg_dump");
}
my $src_fp = table_fingerprints($node, $src, @tables);
for my $t (qw(jam_preimages jam_services jam_work_packages jam_work_reports jam_attestations))
{
	unlike($src_fp->{$t}, qr/^0:/, "the source's $t has rows");
}

my @seqs = split /\n/, sql(
	$src, q{
	SELECT c.relname
	FROM pg_extension e, unnest(e.extconfig) AS r(oid)
	JOIN pg_class c ON c.oid = r.oid
	WHERE e.extname = 'jam' AND c.relkind = 'S' ORDER BY 1});
ok(scalar @seqs >= 3, 'the sequences are registered for pg_dump: ' . join(', ', @seqs));
sub seq_state
{
	my ($db) = @_;
	return join ',', map { sql($db, "SELECT '$_=' || last_value || '/' || is_called FROM jam.$_") } @seqs;
}
my $src_seqs = seq_state($src);

my %src_refcount = split /[|\n]/, sql($src, q{SELECT encode(hash, 'hex'), refcount FROM jam.jam_preimages ORDER BY hash});
my %src_log = map { my ($s, $n, $r) = split /\|/; ($s => { size => $n, root => $r }) } split /\n/,
  sql($src, q{SELECT service_id, log_size, encode(log_root, 'hex') FROM jam.jam_services ORDER BY 1});
my $src_max_seq = sql($src, 'SELECT max(seq) FROM jam.jam_work_packages');
my $src_max_report_seq = sql($src, 'SELECT max(seq) FROM jam.jam_work_reports');
my $src_max_attestation = sql($src, 'SELECT max(id) FROM jam.jam_attestations');

# --- Dump, restore, compare.

my $tmp = PostgreSQL::Test::Utils::tempdir;
my @conn = ('-h', $node->host, '-p', $node->port);

$node->command_ok([ $node->installed_command('pg_dump'), @conn, '-Fc', '-f', "$tmp/jam.dump", $src ],
	'pg_dump, custom format');
$node->command_ok([ $node->installed_command('pg_dump'), @conn, '-Fp', '-f', "$tmp/jam.sql", $src ],
	'pg_dump, plain format');

$node->safe_psql('postgres', 'CREATE DATABASE jam_custom');
my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[ $node->installed_command('pg_restore'), @conn, '--exit-on-error', '-d', 'jam_custom', "$tmp/jam.dump" ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore into a new database succeeds');
is($stderr, '', 'pg_restore reports no error or warning');

$node->safe_psql('postgres', 'CREATE DATABASE jam_plain');
$ok = IPC::Run::run(
	[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', @conn, '-d', 'jam_plain', '-f', "$tmp/jam.sql" ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'the plain dump restores through psql');
is($stderr, '', 'psql reports no error or warning while restoring');

my %replay;    # what processing the next svc-refine package gives on the source

for my $db ('jam_custom', 'jam_plain')
{
	is_deeply([ jam_config_tables($node, $db) ], \@tables, "$db: the same jam tables");
	my $fp = table_fingerprints($node, $db, @tables);
	for my $t (@tables)
	{
		is($fp->{$t}, $src_fp->{$t}, "$db: $t is identical to the source");
	}
	is(seq_state($db), $src_seqs, "$db: the sequences are where the source left them");
	is(checkpoints($db), $src_checkpoints,
		"$db: the signed checkpoints are the source's, byte for byte (same key, same heads)");
	is(logs_verify($db), $all_logs_ok, "$db: jam_verify_log recomputes every restored log");

	# The bytes come back exactly.
	for my $name (sort keys %pre)
	{
		is( sql($db,
				"SELECT md5(d) || ':' || (jam.jam_hash(d) = '$pre{$name}') FROM jam.jam_get_preimage('$pre{$name}') d"),
			"$pre_md5{$name}:true",
			"$db: jam_get_preimage returns the exact bytes of '$name'");
	}
	is(sql($db, "SELECT encode(jam.jam_get_preimage('$pre{nul_bytes}'), 'hex')"),
		'00006a616d00ff0000', "$db: the NUL-byte preimage is byte for byte the same");
	my %refcount = split /[|\n]/, sql($db, q{SELECT encode(hash, 'hex'), refcount FROM jam.jam_preimages ORDER BY hash});
	is_deeply(\%refcount, \%src_refcount, "$db: refcounts unchanged");
	is(sql($db, "SELECT jam.jam_preimage_meta('$pre{big}')->>'refcount'"),
		$src_refcount{ $pre{big} }, "$db: jam_preimage_meta reports the big preimage's refcount");

	# An identical package is recognised; a new one continues the sequence.
	is( sql($db,
			q{SELECT jam.jam_submit_package('svc-builtin', '\x00'::bytea || convert_to('svc-builtin #1', 'UTF8'), weight_hint => 1, preimage_hashes => ARRAY['}
			  . $refs[1][0] . q{'])->>'created'}),
		'false',
		"$db: resubmitting a stored package finds it");
	my $new = decode_json(sql($db,
		"SELECT jam.jam_submit_package('svc-builtin', convert_to('after restore', 'UTF8'), "
		  . "preimage_hashes => ARRAY['$pre{text}'])"));
	is($new->{created}, JSON::PP::true, "$db: a new submit works");
	is($new->{receipt}{seq}, $src_log{'svc-builtin'}{size},
		"$db: the new package's log entry continues the restored log");
	is($new->{receipt}{prev_root}, $src_log{'svc-builtin'}{root},
		"$db: and extends the restored log's root");
	cmp_ok(sql($db, "SELECT seq FROM jam.jam_work_packages WHERE id = decode('$new->{id}', 'hex')"),
		'>', $src_max_seq, "$db: the new package's seq follows the restored ones");
	is(sql($db, "SELECT jam.jam_preimage_meta('$pre{text}')->>'refcount'"),
		$src_refcount{ $pre{text} } + 1, "$db: the new package took a reference");

	# Still-pending packages process, with the restored refine functions.
	my $r = decode_json(sql($db, "SELECT jam.jam_process_next('svc-refine')"));
	is($r->{status}, 'applied', "$db: a still-pending package of svc-refine is processed");
	is($r->{refine}, $refine_name, "$db: by the restored refine function");
	$replay{$db} = join ',', map { $r->{$_} // '' } qw(package_id report_hash output_hash status);
	cmp_ok(sql($db, "SELECT seq FROM jam.jam_work_reports WHERE package_id = decode('$r->{package_id}', 'hex')"),
		'>', $src_max_report_seq, "$db: the new report's seq follows the restored ones");
	cmp_ok(sql($db, "SELECT max(id) FROM jam.jam_attestations"),
		'>', $src_max_attestation, "$db: the new attestation's id follows the restored ones");

	my $f = decode_json(sql($db, "SELECT jam.jam_process_next('svc-fails')"));
	is($f->{status}, 'failed', "$db: a still-pending package of svc-fails fails as before");

	my $built = decode_json(sql($db, "SELECT jam.jam_process_next('svc-builtin')"));
	is($built->{status}, 'applied', "$db: a still-pending package of svc-builtin is processed");
	is( sql($db,
			"SELECT status FROM jam.jam_work_packages WHERE id = decode('$built->{package_id}', 'hex')"),
		'applied', "$db: the package left the pending state");
	is(logs_verify($db), $all_logs_ok, "$db: the logs still verify after appending to them");
}

# Processing the same package on the source gives the same report: the
# restored copy replays deterministically.
my $r = decode_json(sql($src, "SELECT jam.jam_process_next('svc-refine')"));
my $src_replay = join ',', map { $r->{$_} // '' } qw(package_id report_hash output_hash status);
is($replay{jam_custom}, $src_replay, 'jam_custom: the replayed report equals the source one');
is($replay{jam_plain}, $src_replay, 'jam_plain: the replayed report equals the source one');

$node->stop;
done_testing();
