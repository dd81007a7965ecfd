# Concurrent processing: several workers drain the queue at once while
# submitters keep adding packages that share preimages.  Every package is
# processed exactly once, nobody deadlocks, refcounts and the per-service
# verifiable logs stay exact, and a worker holding a claimed package in an
# open transaction does not make another one wait.
#
# No timing is asserted.  lock_timeout and statement_timeout only turn a
# session that would wait into a failure instead of a hang.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;

my $n_packages = 400;   # queued before the workers start
my $n_services = 8;
my $n_workers = 5;      # workers 1..4 take any service, worker 5 only svc-03
my $filtered_service = 'svc-03';
my $n_shared = 40;      # queued packages that reference the shared preimage
my $n_submitters = 2;   # submit while the workers process ...
my $n_per_submitter = 100;    # ... this many packages each, referencing A and B
my $n_total = $n_packages + $n_submitters * $n_per_submitter;

my $node = jam_node('concurrency', 'max_connections = 40');

# --- The queue: 400 packages over 8 services, some referencing a preimage.

my ($shared, @common) = split /\n/, $node->safe_psql(
	'postgres', q{
	SELECT jam.jam_put_preimage(convert_to(x, 'UTF8'))->>'hash'
	FROM unnest(ARRAY['shared preimage', 'common A', 'common B', 'common C', 'common D'])
		WITH ORDINALITY AS t(x, n)
	ORDER BY n});
like($_, qr/^[0-9a-f]{64}$/, 'stored a preimage') for $shared, @common;
my $common = "ARRAY['" . join("','", @common) . "']";

my $created = $node->safe_psql(
	'postgres', qq{
	SELECT count(*) FILTER (WHERE (r->>'created')::boolean)
	FROM generate_series(1, $n_packages) AS i,
	LATERAL jam.jam_submit_package(
		format('svc-%s', lpad((i % $n_services)::text, 2, '0')),
		convert_to('package ' || i, 'UTF8'),
		preimage_hashes => CASE WHEN i <= $n_shared THEN ARRAY['$shared'] ELSE '{}' END) AS r});
is($created, $n_packages, "submitted $n_packages new packages");

is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(service_id || '=' || pending_count, ',' ORDER BY service_id)
		FROM jam.jam_services}),
	join(',', map { sprintf('svc-%02d=%d', $_, $n_packages / $n_services) } 0 .. $n_services - 1),
	'each service counts its pending packages');

# Each worker is a procedure that drains the queue one package per
# transaction and records what it got; each submitter submits packages one
# per transaction, referencing four common preimages in rotating order, to
# the same services.  A barrier (an advisory lock the test holds) makes them
# all start together.
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE worker_log (
		worker     int NOT NULL,
		package_id text NOT NULL,
		service_id text NOT NULL,
		status     text NOT NULL);
	CREATE PROCEDURE run_worker(w int, svc text DEFAULT NULL)
	LANGUAGE plpgsql AS \$\$
	DECLARE
		r jsonb;
	BEGIN
		PERFORM pg_advisory_lock_shared(4242);
		PERFORM pg_advisory_unlock_shared(4242);
		LOOP
			r := jam.jam_process_next(svc);
			EXIT WHEN r IS NULL;
			INSERT INTO worker_log
			VALUES (w, r->>'package_id', r->>'service_id', r->>'status');
			COMMIT;
		END LOOP;
	END
	\$\$;
	CREATE PROCEDURE run_submitter(k int, n int)
	LANGUAGE plpgsql AS \$\$
	BEGIN
		PERFORM pg_advisory_lock_shared(4242);
		PERFORM pg_advisory_unlock_shared(4242);
		FOR i IN 1 .. n LOOP
			PERFORM jam.jam_submit_package(
				format('svc-%s', lpad((i % $n_services)::text, 2, '0')),
				convert_to(format('extra %s-%s', k, i), 'UTF8'),
				preimage_hashes => (SELECT array_agg(c.h ORDER BY (c.pos + i + k) % 4)
					FROM unnest($common) WITH ORDINALITY AS c(h, pos)));
			COMMIT;
		END LOOP;
	END
	\$\$;});

my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(4242)');

sub start_psql
{
	my ($name, $sql) = @_;
	my %h = (name => $name, out => '', err => '');
	$h{run} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', $sql
		],
		'>', \$h{out}, '2>', \$h{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%h;
}

my @sessions;
for my $w (1 .. $n_workers)
{
	push @sessions,
	  start_psql("worker $w",
		$w == $n_workers
		? "CALL run_worker($w, '$filtered_service')"
		: "CALL run_worker($w)");
}
for my $k (1 .. $n_submitters)
{
	push @sessions, start_psql("submitter $k", "CALL run_submitter($k, $n_per_submitter)");
}

ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted},
		scalar @sessions),
	"all $n_workers workers and $n_submitters submitters are waiting at the barrier");
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
$gate->quit;

for my $h (@sessions)
{
	my $ok = eval { $h->{run}->finish };
	ok($ok, "$h->{name} finished without error (no deadlock, no duplicate)")
	  or diag("$h->{name}: " . ($@ || $h->{err}));
}

# The workers may have emptied the queue before the submitters were done:
# what is left is drained here, as worker 0.
$node->safe_psql('postgres', 'CALL run_worker(0)');

# --- Every package processed exactly once.

my $stored = $node->safe_psql('postgres', 'SELECT count(*) FROM jam.jam_work_packages');
is($stored, $n_total, "$n_total packages were submitted in all");
is($node->safe_psql('postgres', 'SELECT count(*) FROM worker_log'),
	$stored, 'as many packages were processed as were submitted');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT package_id) FROM worker_log'),
	$stored, 'no two workers (nor one worker twice) got the same package');

my %per_worker = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres',
	'SELECT worker, count(*) FROM worker_log GROUP BY worker ORDER BY worker');
note 'packages per worker: ' . join(', ', map { "$_=$per_worker{$_}" } sort keys %per_worker);
my $sum = 0;
$sum += $_ for values %per_worker;
is($sum, $stored, 'the per-worker counts add up to the number of packages');
is(scalar(grep { $_ >= 1 && $per_worker{$_} > 0 } keys %per_worker),
	$n_workers, 'every concurrent worker processed packages');

is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM worker_log WHERE worker = $n_workers AND service_id <> '$filtered_service'"
	),
	'0',
	"the worker filtered on $filtered_service processed only that service");

is($node->safe_psql('postgres', 'SELECT count(*) FROM jam.jam_work_reports'),
	$stored, 'one report per package');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM jam.jam_work_packages p
		FULL JOIN jam.jam_work_reports r ON r.package_id = p.id
		WHERE p.id IS NULL OR r.package_id IS NULL}),
	'0',
	'the reports are exactly the packages');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM worker_log w
		JOIN jam.jam_work_reports r ON r.package_id = decode(w.package_id, 'hex')
		WHERE r.status = w.status AND r.service_id = w.service_id}),
	$stored,
	'each worker got the report that was stored');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM jam.jam_work_packages WHERE status = 'pending'"),
	'0',
	'no package is still pending');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM jam.jam_work_packages WHERE status = 'applied' AND processed_at IS NOT NULL"
	),
	$stored,
	'every package is applied');
is( $node->safe_psql('postgres',
		'SELECT count(*), count(DISTINCT package_id) FROM jam.jam_attestations'),
	"$stored|$stored",
	'one attestation per package');
is($node->safe_psql('postgres', 'SELECT coalesce(sum(pending_count), -1) FROM jam.jam_services'),
	'0', 'the services count no pending packages');
is($node->safe_psql('postgres', 'SELECT jam.jam_process_next() IS NULL'),
	't', 'jam_process_next returns NULL on an empty queue');
is( $node->safe_psql(
		'postgres', qq{
		SELECT string_agg(((jam.jam_preimage_meta(h)->>'refcount')::bigint
				= 2 * (SELECT count(*) FROM jam.jam_work_packages WHERE decode(h, 'hex') = ANY(preimage_hashes)))::text,
			',' ORDER BY n)
		FROM unnest(ARRAY['$shared'] || $common) WITH ORDINALITY AS t(h, n)}),
	join(',', ('true') x (1 + @common)),
	'refcounts count one reference per package and per report (no lost update)');

# Each service's verifiable log got one entry per submit and per report,
# numbered without gaps or duplicates, and its head agrees.
my $logs = $node->safe_psql(
	'postgres', q{
	SELECT string_agg(format('%s:%s', s.service_id,
			(s.log_size = 2 * p.n AND l.n = 2 * p.n AND l.max_seq + 1 = l.n
			 AND l.reports = p.n AND l.distinct_hashes = l.n)),
		',' ORDER BY s.service_id)
	FROM jam.jam_services s
	LEFT JOIN (SELECT service_id, count(*) AS n FROM jam.jam_work_packages GROUP BY 1) p
		USING (service_id)
	LEFT JOIN (SELECT service_id, count(*) AS n, max(seq) AS max_seq,
			count(*) FILTER (WHERE kind = 'report') AS reports,
			count(DISTINCT (kind, hash)) AS distinct_hashes
		FROM jam.jam_log_entries GROUP BY 1) l USING (service_id)});
is($logs,
	join(',', map { sprintf('svc-%02d:t', $_) } 0 .. $n_services - 1),
	'each service log holds every package and report once, numbered contiguously');
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(service_id || ':' || (jam.jam_verify_log(service_id)->>'ok'), ','
			ORDER BY service_id)
		FROM jam.jam_services}),
	join(',', map { sprintf('svc-%02d:true', $_) } 0 .. $n_services - 1),
	'jam_verify_log recomputes every service log from its leaves after the concurrent run');

# --- A claimed package in an open transaction blocks no one.
#
# P1 and P3 belong to svc-a, P2 to svc-b.  The holder claims P1 and keeps
# its transaction open; the other session must get on with P2 (and P3)
# without waiting, and P1 must come back when the holder rolls back.

sub submit
{
	my ($svc, $payload) = @_;
	return $node->safe_psql('postgres',
		"SELECT jam.jam_submit_package('$svc', convert_to('$payload', 'UTF8'))->>'id'");
}
my $p1 = submit('svc-a', 'held one');
my $p2 = submit('svc-b', 'other service');
my $p3 = submit('svc-a', 'same service, next');

my $holder = $node->background_psql('postgres');
my $other = $node->background_psql('postgres', on_error_stop => 0);
$other->query_safe("SET lock_timeout = '2s'");
$other->query_safe("SET statement_timeout = '10s'");

$holder->query_safe('BEGIN');
is($holder->query_safe(q{SELECT jam.jam_process_next()->>'package_id'}),
	$p1, 'the holder claims the oldest pending package and keeps its transaction open');

my ($got, $failed) = $other->query(q{SELECT jam.jam_process_next()->>'package_id'});
ok(!$failed, 'another session processes the next package without waiting')
  or diag($other->{stderr});
is($got, $p2, 'another session gets a different package (of another service)');
$other->{stderr} = '';

is($other->query_safe(qq{SELECT status FROM jam.jam_work_packages WHERE id = decode('$p1', 'hex')}),
	'pending', 'the claimed package still reads as pending outside the open transaction');

# The next package of the same service is claimed without waiting, but its
# report goes into the same service log as the holder's, whose row lock
# serializes appends until commit: that call queues (here, until its
# lock_timeout), and giving up leaves P3 pending with nothing written.
my ($got3, $failed3) = $other->query(q{SELECT jam.jam_process_next()->>'package_id'});
ok($failed3 && $other->{stderr} =~ /lock timeout/,
	'the next package of the same service queues behind the open append of its service log')
  or diag("got '$got3', stderr: $other->{stderr}");
$other->{stderr} = '';
is($other->query_safe(qq{SELECT status || ':' || (SELECT count(*) FROM jam.jam_work_reports
		WHERE package_id = decode('$p3', 'hex')) FROM jam.jam_work_packages WHERE id = decode('$p3', 'hex')}),
	'pending:0', 'the call that gave up left that package pending with no report');

$holder->query_safe('ROLLBACK');

is($other->query_safe(qq{SELECT status FROM jam.jam_work_packages WHERE id = decode('$p1', 'hex')}),
	'pending', 'after the rollback the claimed package is pending again');
is($other->query_safe(qq{SELECT count(*) FROM jam.jam_work_reports WHERE package_id = decode('$p1', 'hex')}),
	'0', 'and the rollback left no report for it');

my @rest;
for (1 .. 3)
{
	my $id = $other->query_safe(
		q{SELECT coalesce(jam.jam_process_next()->>'package_id', 'none')});
	last if $id eq 'none';
	push @rest, $id;
}
ok((grep { $_ eq $p1 } @rest), 'the rolled-back package is processed afterwards');
is( $other->query_safe(
		q{SELECT string_agg(encode(package_id, 'hex'), ',' ORDER BY package_id) FROM jam.jam_work_reports
		  WHERE package_id IN (decode('} . join("', 'hex'), decode('", $p1, $p2, $p3) . q{', 'hex'))}),
	join(',', sort($p1, $p2, $p3)),
	'the three packages have one report each');
is($other->query_safe(qq{SELECT status FROM jam.jam_work_packages WHERE id = decode('$p1', 'hex')}),
	'applied', 'the rolled-back package ends applied');
is($other->query_safe(qq{SELECT count(*) FROM jam.jam_attestations WHERE package_id = decode('$p1', 'hex')}),
	'1', 'the rolled-back attempt left no attestation behind');

# Q is the only pending package.  While the holder has it, nothing else is
# there to take: the other session gets NULL at once rather than waiting,
# and after the holder commits, Q is done.
my $q = submit('svc-c', 'only one');
$holder->query_safe('BEGIN');
is($holder->query_safe(q{SELECT jam.jam_process_next()->>'package_id'}),
	$q, 'the holder claims the only pending package');
($got, $failed) = $other->query(q{SELECT jam.jam_process_next('svc-c') IS NULL});
ok(!$failed && $got eq 't',
	'asking for its service skips the claimed package and returns NULL without waiting')
  or diag($other->{stderr});
$other->{stderr} = '';
($got, $failed) = $other->query(q{SELECT jam.jam_process_next() IS NULL});
ok(!$failed && $got eq 't', 'asking for any service returns NULL without waiting')
  or diag($other->{stderr});
$other->{stderr} = '';
$holder->query_safe('COMMIT');
$holder->quit;
is( $other->query_safe(
		qq{SELECT status || ':' || (SELECT count(*) FROM jam.jam_work_reports WHERE package_id = decode('$q', 'hex'))
		   FROM jam.jam_work_packages WHERE id = decode('$q', 'hex')}),
	'applied:1',
	'after the holder commits the package is applied with one report');
is($other->query_safe('SELECT jam.jam_process_next() IS NULL'),
	't', 'and nothing is left to process');

is( $other->query_safe(
		q{SELECT string_agg(format('%s:%s/%s', service_id, count, max_seq + 1), ',' ORDER BY service_id)
		  FROM (SELECT service_id, count(*), max(seq) AS max_seq FROM jam.jam_log_entries
			    WHERE service_id IN ('svc-a', 'svc-b', 'svc-c') GROUP BY service_id) l}),
	'svc-a:4/4,svc-b:2/2,svc-c:2/2',
	'the rolled-back report left no entry in the service log');
$other->quit;

# --- A package whose submit commits late is not passed over.
#
# Claims start where the claims before them left off (src/claim_hint.c).
# L takes a seq and keeps its transaction open; E takes a later one and
# commits, and is processed, by a claim whose snapshot cannot see L's
# package, and claims that find nothing follow.  When L commits, its
# package, below every seq those claims reached, must still be claimed.
# fifo: every claim reads the one 'pending' range of the status index.
my $late = $node->background_psql('postgres');
my $claimer = $node->background_psql('postgres');
$claimer->query_safe("SET jam.scheduling = 'fifo'");
$late->query_safe('BEGIN');
my $late_id = $late->query_safe(
	q{SELECT jam.jam_submit_package('hint-late', convert_to('late', 'UTF8'))->>'id'});
my $early_id = submit('hint-early', 'early');
is($claimer->query_safe(q{SELECT jam.jam_process_next()->>'package_id'}),
	$early_id, 'a claim takes the package committed first, the late one still invisible');
is($claimer->query_safe(q{SELECT count(*) FROM generate_series(1, 3) WHERE jam.jam_process_next() IS NOT NULL}),
	'0', 'and then finds nothing, three times');
cmp_ok($node->safe_psql('postgres', qq{SELECT seq FROM jam.jam_work_packages WHERE id = decode('$late_id', 'hex')}),
	'<', $node->safe_psql('postgres', qq{SELECT seq FROM jam.jam_work_packages WHERE id = decode('$early_id', 'hex')}),
	'the late package has the lower seq');
$late->query_safe('COMMIT');
$late->quit;
is($claimer->query_safe(q{SELECT jam.jam_process_next()->>'package_id'}),
	$late_id, 'once committed, the late package is claimed');
is($claimer->query_safe(q{SELECT jam.jam_process_next('hint-late') IS NULL}),
	't', 'and its service has nothing left');
$claimer->quit;

# --- Preimage row locks are taken in one order, whatever the plan.
#
# Two submits referencing the same two preimages must not deadlock, even
# when one backend reaches the rows through the index (hash order) and the
# other through a sequential scan (heap order, here the reverse).  S0, a
# stand-in for any transaction holding a preimage row, locks the first row
# in hash order; S1 (index scan) and S2 (sequential scan) both wait for it.
# Since 1.1 a reference takes the rows FOR KEY SHARE, which two submits may
# hold together, and raises the refcounts at commit in hash order: both
# wait for S0 itself, then both commit, and neither deadlocks the other.

$node->safe_psql('postgres', 'CREATE DATABASE lockorder');
$node->safe_psql('lockorder', 'CREATE EXTENSION jam');
my %hash_of = map {
	$_ => $node->safe_psql('lockorder', "SELECT jam.jam_hash(convert_to('$_', 'UTF8'))")
} qw(one two);
my ($lo, $hi) = sort values %hash_of;
my %name_of = reverse %hash_of;
$node->safe_psql('lockorder',
	"SELECT jam.jam_put_preimage(convert_to('$name_of{$_}', 'UTF8'))") for $hi, $lo;
is($node->safe_psql('lockorder', 'SELECT string_agg(encode(hash, \'hex\'), \',\' ORDER BY ctid) FROM jam.jam_preimages'),
	"$hi,$lo", 'the heap holds the preimages in the reverse of hash order');

my $s0 = $node->background_psql('lockorder');
my $s1 = $node->background_psql('lockorder', on_error_stop => 0);
my $s2 = $node->background_psql('lockorder', on_error_stop => 0);
$s1->query_safe('SET enable_seqscan = off; SET enable_bitmapscan = off');
$s2->query_safe('SET enable_indexscan = off; SET enable_bitmapscan = off');

$s0->query_safe('BEGIN');
$s0->query_safe("SELECT hash FROM jam.jam_preimages WHERE hash = decode('$lo', 'hex') FOR UPDATE");
$s1->query_until(qr//,
	"SELECT jam.jam_submit_package('lock-1', 'y'::bytea, preimage_hashes => ARRAY['$lo', '$hi']);\n\\echo s1 done\n");
ok( $node->poll_query_until(
		'lockorder',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'transactionid' AND query LIKE '%lock-1%' AND pid <> pg_backend_pid()"),
	'the index-scan submit waits for the transaction holding the preimage');
$s2->query_until(qr//,
	"SELECT jam.jam_submit_package('lock-2', 'z'::bytea, preimage_hashes => ARRAY['$lo', '$hi']);\n\\echo s2 done\n");
ok( $node->poll_query_until(
		'lockorder',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'transactionid' AND query LIKE '%lock-2%' AND pid <> pg_backend_pid()"),
	'the sequential-scan submit waits for it too');
$s0->query_safe('COMMIT');
$s1->query_until(qr/s1 done/, '');
$s2->query_until(qr/s2 done/, '');
is($s1->{stderr}, '', 'the index-scan submit succeeds (no deadlock)');
is($s2->{stderr}, '', 'the sequential-scan submit succeeds (no deadlock)');
$_->quit for $s0, $s1, $s2;
is( $node->safe_psql(
		'lockorder',
		"SELECT string_agg(refcount::text, ',' ORDER BY hash) FROM jam.jam_preimages"),
	'2,2', 'and both took their references');

$node->stop;
done_testing();
