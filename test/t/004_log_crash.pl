# The verifiable log under concurrency and across a crash.
#
# Several clients submit to one shared service and to services of their
# own while a processor drains the queue.  Each client prints a receipt only
# after its COMMIT returned, i.e. once the server had promised it.  The
# server is stopped in immediate mode (a crash) in the middle of that load
# and restarted; then every promised receipt must still be in the log,
# unchanged, and provable against the current root, and every log must be
# whole: seq without gaps, packages and log entries one to one, refcounts
# and pending counts exact, and jam_verify_log agreeing.
use strict;
use warnings;

use JamTest;
use IPC::Run;
use Time::HiRes qw(sleep);
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = jam_node('crash');
my $port = $node->port;
my $host = $node->host;

$node->safe_psql('postgres',
	q{SELECT jam.jam_put_preimage('shared preimage'::bytea), jam.jam_put_preimage('second'::bytea)});

my $n_clients = 4;
my $per_client = 2000;

# One psql per client, submitting in explicit transactions and echoing the
# receipt after COMMIT; ON_ERROR_STOP ends it when the server goes away.
sub client_script
{
	my ($c) = @_;
	my $script = "\\set ON_ERROR_STOP 1\n";
	for my $i (1 .. $per_client)
	{
		my $svc = $i % 2 ? 'crash-shared' : "crash-own-$c";
		my $refs = $i % 5 == 0
		  ? q{ARRAY[jam.jam_hash('shared preimage'::bytea), jam.jam_hash('second'::bytea)]}
		  : q{'{}'::text[]};
		$script .= "BEGIN;\n"
		  . "SELECT (jam.jam_submit_package('$svc', convert_to('c$c-$i', 'UTF8'), "
		  . "preimage_hashes => $refs))->>'receipt' AS r \\gset\n"
		  . "COMMIT;\n"
		  . "\\echo RECEIPT :r\n";
	}
	return $script;
}

# Scripts go in files, not pipes: a client that stops at the crash must not
# leave a writer blocked on its stdin.
sub start_psql
{
	my ($name, $script, $out, $err) = @_;
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/$name.sql";
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $script;
	close $fh;
	return IPC::Run::start(
		[ 'psql', '-X', '-q', '-A', '-t', '-h', $host, '-p', $port, '-d', 'postgres', '-f', $file ],
		'>', $out, '2>', $err);
}

my (@handles, @outputs, @errors);
for my $c (1 .. $n_clients)
{
	my ($out, $err) = ('', '');
	push @outputs, \$out;
	push @errors, \$err;
	push @handles, start_psql("client$c", client_script($c), \$out, \$err);
}
my ($pout, $perr) = ('', '');
push @errors, \$perr;
# The processor works one package per transaction, as a worker should: a
# transaction that processes many holds every lock it took until commit.
my $processor = start_psql('processor',
	"\\set ON_ERROR_STOP 1\n" . "SELECT jam.jam_process_next() IS NULL;\n" x 5000,
	\$pout, \$perr);

# Crash once the load is well under way: after a few hundred commits.
my $deadline = time + 120;
while (time < $deadline)
{
	my $seen = 0;
	$seen += () = $$_ =~ /^RECEIPT /mg for @outputs;
	last if $seen >= 400;
	$_->pumpable and $_->pump_nb for @handles, $processor;
	sleep 0.1;
}
my $errors_before_crash = join '', map { $$_ } @errors;
is($errors_before_crash, '', 'no client or processor failed before the crash');
$node->stop('immediate');
$_->finish for @handles, $processor;

my @receipts;
for my $out (@outputs)
{
	push @receipts, map { decode_json($_) } $$out =~ /^RECEIPT (\{.*\})$/mg;
}
cmp_ok(scalar @receipts, '>=', 400, 'clients had receipts for committed submits before the crash');

$node->start;

# Every receipt a client held is in the log, unchanged.
my %by_service;
push @{ $by_service{ $_->{service_id} } }, $_ for @receipts;
my $missing = 0;
my $changed = 0;
for my $r (@receipts)
{
	my $row = $node->safe_psql(
		'postgres', qq{
		SELECT encode(hash, 'hex') || ' ' || encode(leaf_hash, 'hex') || ' ' || encode(prev_root, 'hex')
		       || ' ' || encode(new_root, 'hex') || ' ' || kind
		FROM jam.jam_log_entries WHERE service_id = '$r->{service_id}' AND seq = $r->{seq}});
	if ($row eq '')
	{
		$missing++;
		next;
	}
	$changed++
	  if $row ne join(' ', @$r{qw(hash leaf_hash prev_root new_root kind)});
}
is($missing, 0, 'every receipt a client received is still in the log after the crash');
is($changed, 0, 'and each is unchanged');

# Each promised receipt is provable against the service's current root.
my $unproven = $node->safe_psql(
	'postgres', q{
	SELECT count(*) FROM jam.jam_log_entries e
	JOIN jam.jam_services s USING (service_id)
	WHERE e.service_id LIKE 'crash-%' AND e.seq % 7 = 0
	  AND NOT jam.jam_verify_inclusion(encode(e.leaf_hash, 'hex'), e.seq, s.log_size,
	        ARRAY(SELECT jsonb_array_elements_text(
	              jam.jam_inclusion_proof(e.service_id, e.seq, s.log_size)->'proof')),
	        encode(s.log_root, 'hex'))});
is($unproven, '0', 'sampled entries are provable against the current roots');
my $unproven_receipts = 0;
for my $r (@receipts[ grep { $_ % 10 == 0 } 0 .. $#receipts ])
{
	my $ok = $node->safe_psql(
		'postgres', qq{
		SELECT jam.jam_verify_inclusion(r->>'leaf_hash', (r->>'seq')::bigint,
		         (r->'inclusion'->>'tree_size')::bigint,
		         ARRAY(SELECT jsonb_array_elements_text(r->'inclusion'->'proof')),
		         (SELECT encode(log_root, 'hex') FROM jam.jam_services WHERE service_id = r->>'service_id'))
		FROM jam.jam_receipt('$r->{hash}') r});
	$unproven_receipts++ unless $ok eq 't';
}
is($unproven_receipts, 0, 'jam_receipt proves every sampled promised receipt against the current root');

# The logs are whole.
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM jam.jam_services s
		WHERE service_id LIKE 'crash-%' AND (
		      s.log_size <> (SELECT count(*) FROM jam.jam_log_entries e WHERE e.service_id = s.service_id)
		   OR s.log_size <> (SELECT coalesce(max(seq) + 1, 0) FROM jam.jam_log_entries e
		                     WHERE e.service_id = s.service_id))}),
	'0', 'every log numbers its entries 0..size-1 without a gap or duplicate');
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(DISTINCT (jam.jam_verify_log(service_id)->>'ok'), ',')
		FROM jam.jam_services WHERE service_id LIKE 'crash-%'}),
	'true', 'jam_verify_log agrees for every service');
is( $node->safe_psql(
		'postgres', q{
		SELECT (SELECT count(*) FROM jam.jam_work_packages p
		        WHERE NOT EXISTS (SELECT 1 FROM jam.jam_log_entries e
		                          WHERE e.kind = 'package' AND e.hash = p.id))
		     + (SELECT count(*) FROM jam.jam_log_entries e
		        WHERE e.kind = 'package' AND e.service_id LIKE 'crash-%'
		          AND NOT EXISTS (SELECT 1 FROM jam.jam_work_packages p WHERE p.id = e.hash))
		     + (SELECT count(*) FROM jam.jam_work_reports r
		        WHERE NOT EXISTS (SELECT 1 FROM jam.jam_log_entries e
		                          WHERE e.kind = 'report' AND e.hash = r.report_hash))}),
	'0', 'packages and reports are in the log exactly when they are stored: all or nothing');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM jam.jam_preimages p
		WHERE p.refcount <> (SELECT count(*) FROM jam.jam_work_packages k
		                     WHERE p.hash = ANY (k.preimage_hashes))
		                  + (SELECT count(*) FROM jam.jam_work_reports r
		                     WHERE p.hash = ANY (r.preimage_hashes))}),
	'0', 'preimage refcounts match their references after the crash');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM jam.jam_services s
		WHERE pending_count <> (SELECT count(*) FROM jam.jam_work_packages p
		                        WHERE p.service_id = s.service_id AND p.status = 'pending')}),
	'0', 'pending counts match the pending packages after the crash');

# The log goes on from where it stopped.
my $size_before = $node->safe_psql('postgres',
	q{SELECT log_size FROM jam.jam_services WHERE service_id = 'crash-shared'});
is( $node->safe_psql('postgres',
		q{SELECT jam.jam_submit_package('crash-shared', 'after the crash'::bytea)->'receipt'->>'seq'}),
	$size_before, 'a submit after restart continues the log at the next seq');

done_testing();
