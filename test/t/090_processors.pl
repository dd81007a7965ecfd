# Processor workers (src/processor.c): packages are processed by background
# workers, woken when a submit commits, taking turns between services by
# share; each exactly once, also when a worker is killed in the middle of a
# refine or told to stop; on a standby the workers wait, and start once it
# is promoted.
use strict;
use warnings;

use JamTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

# A primary that a standby can stream from (jam_node makes one that cannot).
my $node = PostgreSQL::Test::Cluster->new('proc');
$node->init(allows_streaming => 1);
# The standby is made late from an early backup, so the primary keeps the
# WAL written between them (the floods below are several segments).
$node->append_conf('postgresql.conf', join("\n", "shared_preload_libraries = 'jam'",
	"jam.processor_workers = 2", "jam.processor_databases = 'postgres'",
	"wal_keep_size = '1GB'", "track_commit_timestamp = on") . "\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION jam');
$node->backup('base');

# The workers are up, and idle on their latch.
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jam processor'"),
	'two processor workers run');

sub pending
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM jam.jam_work_packages WHERE status = 'pending'");
}

# A batch is processed by the workers alone, each package once.  They are
# woken by the commit: far sooner than their idle wake-up of a minute.
my $t0 = time;
$node->safe_psql('postgres',
	"SELECT jam.jam_submit_packages('w', (SELECT array_agg(convert_to('w' || g, 'UTF8')) FROM generate_series(1, 200) g))");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM jam.jam_work_packages WHERE status = 'pending'"),
	'the workers process every package');
ok(time - $t0 < 30, 'woken by the submit, not by their idle wake-up');
is($node->safe_psql('postgres',
		"SELECT count(*), count(DISTINCT package_id) FROM jam.jam_work_reports WHERE service_id = 'w'"),
	'200|200', 'one report per package');
is($node->safe_psql('postgres', "SELECT jam.jam_verify_log('w')->>'ok'"), 'true', 'the log verifies');
is($node->safe_psql('postgres', "SELECT jam.jam_fsck()->>'drift_count'"), '0', 'no count drifted');
is($node->safe_psql('postgres',
		"SELECT sum(value)::int FROM jam.jam_metrics() WHERE name = 'jam_processor_applied_total'"),
	'200', 'the workers\' metrics count them');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM jam.jam_metrics() WHERE name = 'jam_processor_queue_wait_seconds_total'"),
	'2', 'and their queue wait, per worker');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jam processor' AND wait_event = 'Extension'"),
	'idle again, they wait on their latch');

# The workers take turns between services by share (fair.c): two backlogs
# arriving in one commit, shares 3:1, and the first 400 packages processed
# split 300:100, within 5% of 3:1 (two workers choosing at once may each
# take one package out of turn).  Waiting for 420 lets any transaction that
# started before the 400th commit.
$node->safe_psql('postgres', q{
	SELECT jam.jam_register_service('fair-a', share => 3), jam.jam_register_service('fair-b', share => 1);
	BEGIN;
	SELECT jam.jam_submit_packages('fair-a', (SELECT array_agg(convert_to('a' || g, 'UTF8')) FROM generate_series(1, 600) g));
	SELECT jam.jam_submit_packages('fair-b', (SELECT array_agg(convert_to('b' || g, 'UTF8')) FROM generate_series(1, 600) g));
	COMMIT;
});
ok($node->poll_query_until('postgres',
		"SELECT count(*) >= 420 FROM jam.jam_work_packages WHERE service_id LIKE 'fair-%' AND status <> 'pending'"),
	'the workers process both backlogs');
my ($fair_a, $fair_b) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE service_id = 'fair-a'), count(*) FILTER (WHERE service_id = 'fair-b')
	FROM (SELECT service_id FROM jam.jam_work_packages
	      WHERE service_id LIKE 'fair-%' AND status <> 'pending' ORDER BY processed_at, seq LIMIT 400) first});
ok($fair_b > 0 && abs($fair_a / $fair_b - 3) <= 0.15,
	"shares 3:1 give the first 400 packages 3:1 within 5% ($fair_a:$fair_b)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM jam.jam_work_packages WHERE service_id LIKE 'fair-%' AND status = 'pending'"),
	'and then the rest');

# A service that gets its first package while the workers drain another is
# served at once, although each worker keeps its list of backlogged services
# between claims (fair.c): the submit's commit tells them the list grew.
# Fair order interleaves its 5 with about as many of the flood's, plus what
# the workers hold; with the list kept stale until its 64-claim bound, each
# worker would take up to 64 of the flood first (measured 19 and 80).
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_packages('flood-x', (SELECT array_agg(convert_to('f' || g, 'UTF8')) FROM generate_series(1, 6000) g));
});
ok($node->poll_query_until('postgres',
		"SELECT count(*) >= 200 FROM jam.jam_work_packages WHERE service_id = 'flood-x' AND status <> 'pending'"),
	'the workers drain a flood');
# The window opens when the submit commits (the commit timestamp of its
# transaction, which wrote late_mark's row), and counts the flood's
# packages whose processing began after it (processed_at is the start of
# the worker's transaction): the ones processed while the submit ran, or
# before its session got the CPU back from the busy workers to commit,
# are a matter of this machine's speed, not of the scheduling this checks.
$node->safe_psql('postgres', q{
	CREATE TABLE late_mark (t timestamptz);
	BEGIN;
	SELECT jam.jam_submit_packages('late-x', (SELECT array_agg(convert_to('l' || g, 'UTF8')) FROM generate_series(1, 5) g));
	INSERT INTO late_mark VALUES (NULL);
	COMMIT;
	UPDATE late_mark SET t = pg_xact_commit_timestamp(xmin);
});
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 5 FROM jam.jam_work_packages WHERE service_id = 'late-x' AND status <> 'pending'"),
	'a service that arrives during the flood is processed');
my ($flood_between, $flood_left) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE f.processed_at > l.submitted AND f.processed_at <= l.done),
	       count(*) FILTER (WHERE f.status = 'pending')
	FROM jam.jam_work_packages f,
	     (SELECT (SELECT t FROM late_mark) AS submitted, max(processed_at) AS done
	      FROM jam.jam_work_packages WHERE service_id = 'late-x') l
	WHERE f.service_id = 'flood-x'});
ok($flood_between < 16 && $flood_left > 0,
	"its 5 packages come out within $flood_between of the flood's ($flood_left still pending)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM jam.jam_work_packages WHERE service_id = 'flood-x' AND status = 'pending'"),
	'and the flood drains');

# jam.processor_batch_size: a backlog is taken up to n packages per
# transaction (one xmin per transaction), each package still once, the log
# still whole; set back to 1 for what follows.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jam.processor_batch_size = 25');
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jam processor' AND wait_event = 'Extension'"),
	'the workers are idle before the batched backlog');
my $applied_before = $node->safe_psql('postgres',
	"SELECT sum(value)::int FROM jam.jam_metrics() WHERE name = 'jam_processor_applied_total'");
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT jam.jam_submit_packages('batched-' || s, (SELECT array_agg(convert_to(s || '/' || g, 'UTF8'))
	                                                 FROM generate_series(1, 100) g))
	FROM generate_series(1, 3) s;
	COMMIT;
});
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM jam.jam_work_packages WHERE service_id LIKE 'batched-%' AND status = 'pending'"),
	'batched workers process the backlog');
is($node->safe_psql('postgres',
		"SELECT count(*), count(DISTINCT package_id) FROM jam.jam_work_reports WHERE service_id LIKE 'batched-%'"),
	'300|300', 'batched: one report per package');
my ($transactions, $largest) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), max(n) FROM (SELECT count(*) AS n FROM jam.jam_work_reports
	                              WHERE service_id LIKE 'batched-%' GROUP BY xmin::text) t});
ok($transactions < 300 && $largest > 1 && $largest <= 25,
	"several packages per transaction, at most 25 ($transactions transactions, the largest $largest)");
is($node->safe_psql('postgres',
		"SELECT bool_and((jam.jam_verify_log(s))->>'ok' = 'true') FROM (VALUES ('batched-1'), ('batched-2'), ('batched-3')) v(s)"),
	't', 'batched: every log verifies');
is($node->safe_psql('postgres',
		"SELECT sum(value)::int FROM jam.jam_metrics() WHERE name = 'jam_processor_applied_total'"),
	$applied_before + 300, 'batched: the workers\' metrics count each package');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jam.processor_batch_size');
$node->reload;

# A refine that takes a while, to catch a worker in the middle of it.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.slow_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_catalog.pg_sleep(2); RETURN payload; END $$;
	SELECT jam.jam_register_service('slow', 'public.slow_refine(bytea,bytea[])');
});

sub busy_worker
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jam processor' AND wait_event = 'PgSleep'")
	  or return undef;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'jam processor' AND wait_event = 'PgSleep'");
}

# SIGTERM: the worker finishes the package in hand, then stops (and is
# started again).
$node->safe_psql('postgres', "SELECT jam.jam_submit_package('slow', 'in hand')");
my $pid = busy_worker();
ok($pid, 'a worker is in the middle of a refine');
kill 'TERM', $pid;
ok($node->poll_query_until('postgres',
		"SELECT status = 'applied' FROM jam.jam_work_packages WHERE service_id = 'slow' AND payload = 'in hand'"),
	'after SIGTERM it finishes the package in hand');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"), 'then stops');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jam processor'"),
	'and the postmaster starts it again');

# kill -9 in the middle of a refine: the server restarts, the package is
# still pending, and is then processed once.
$node->safe_psql('postgres', "SELECT jam.jam_submit_package('slow', 'killed')");
$pid = busy_worker();
ok($pid, 'a worker is in the middle of another refine');
kill 'KILL', $pid;
# The test cluster does not restart after a crash by itself: wait for the
# postmaster to shut down, then start it, as an operator (or
# restart_after_crash) would.
my $postmaster = $node->{_pid};
for (1 .. 300) { last unless kill 0, $postmaster; sleep 0.1; }
ok(!kill(0, $postmaster), 'the killed worker took the server down');
$node->_update_pid(0);
$node->start;
ok($node->poll_query_until('postgres',
		"SELECT status = 'applied' FROM jam.jam_work_packages WHERE service_id = 'slow' AND payload = 'killed'"),
	'after the crash the package is processed');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM jam.jam_work_reports r JOIN jam.jam_work_packages p ON p.id = r.package_id WHERE p.service_id = 'slow'"),
	'2', 'each slow package has one report');
is($node->safe_psql('postgres', "SELECT jam.jam_verify_log('slow')->>'ok'"), 'true', 'the log verifies');

# A standby: its workers wait; promoted, it processes.
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
ok($standby->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jam processor'"),
	'the standby runs its workers');
ok(scalar(slurp_file($standby->logfile) =~ /jam processor \d waits: this server is a standby/),
	'which wait while it is a standby');
$node->stop;
$standby->promote;
$standby->safe_psql('postgres', "SELECT jam.jam_submit_package('after', 'promotion')");
ok($standby->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM jam.jam_work_packages WHERE status = 'pending'"),
	'promoted, its workers process');

$standby->stop;
done_testing();
