# A transaction that appended to a service's log lets go of the service's
# row lock before its commit's flush and waits for that flush (and for
# synchronous standbys) after (src/commit_flush.c); jam's readers wait for
# what they saw to be as durable.
#
# A synchronous standby that never connects makes every commit that asks
# for one wait at its end for as long as the test likes, which shows, with
# no timing, what the commit holds while it waits: the submit that waits
# must not keep the service's next submit waiting, must not return before
# the standby would have confirmed, and a reader must wait for the
# standby too before it hands out that submit's package.  Each wait is
# ended by cancelling it, as an operator would.
use strict;
use warnings;

use JamTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = jam_node('commit_flush', 'wal_level = replica', 'max_wal_senders = 2', 'autovacuum = off');
$node->append_conf('postgresql.conf', "synchronous_standby_names = 'absent'\n");
$node->reload;

# Starts psql running $sql in the background; returns the harness and its output.
sub start_psql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# The pid of the backend that runs a statement containing $marker and waits
# for the synchronous standby, once it does (at most 60 s).
sub waiting_for_standby
{
	my ($marker) = @_;
	for (1 .. 600)
	{
		my $pid = $node->safe_psql('postgres', qq{SELECT pid FROM pg_stat_activity
			WHERE wait_event = 'SyncRep' AND query LIKE '%$marker%' AND pid <> pg_backend_pid()});
		return $pid if $pid ne '';
		usleep(100_000);
	}
	return '';
}

my $local = "SET synchronous_commit = local; SET statement_timeout = '60s';";

# The first package of the service, so that the next ones find its row.
$node->safe_psql('postgres', "$local SELECT jam.jam_submit_package('flush-a', 'zero'::bytea)");

my ($first, $first_out, $first_err) =
  start_psql(q{SELECT jam.jam_submit_package('flush-a', 'first'::bytea)->'receipt'->>'seq' /* first_submit */});
my $first_pid = waiting_for_standby('first_submit');
ok($first_pid ne "", "a submit waits for the synchronous standby at its commit") or diag("out: $$first_out err: $$first_err");
is($$first_out, '', '... and has not returned');

my $second = $node->safe_psql('postgres',
	"$local SELECT jam.jam_submit_package('flush-a', 'second'::bytea)->'receipt'->>'seq'");
is($second, '2', "the service's next submit is not kept waiting by it: its log position follows");

my ($reader, $reader_out) = start_psql(
	q{SELECT jam.jam_get_package(jam.jam_package_id('flush-a', 'first'::bytea))->>'status' /* waiting_reader */});
my $reader_pid = waiting_for_standby('waiting_reader');
ok($reader_pid ne '', 'a reader that saw that package waits for the standby before it answers');
is($$reader_out, '', '... and has not answered');

is( $node->safe_psql(
		'postgres',
		"$local SELECT jam.jam_get_package(jam.jam_package_id('flush-a', 'first'::bytea))->>'status'"),
	'pending',
	'a reader that asks for no standby answers');

$node->safe_psql('postgres', "SELECT pg_cancel_backend($_)") for ($first_pid, $reader_pid);
$first->finish;
$reader->finish;
chomp($$first_out, $$reader_out);
is($$first_out, '1', 'once its wait is cancelled, the first submit returns its receipt');
like($$first_err, qr/already committed locally/, '... with the warning of a cancelled wait');
is($$reader_out, 'pending', 'and the reader its answer');

is($node->safe_psql('postgres', "$local SELECT count(*) FROM jam.jam_work_packages WHERE service_id = 'flush-a'"),
	'3', 'the three submits are stored');
is($node->safe_psql('postgres', q{SELECT jam.jam_verify_log('flush-a')->>'ok'}),
	'true', 'the log of the three submits verifies');

# A session that asks for no wait gets none, as before.
is( $node->safe_psql(
		'postgres',
		"SET synchronous_commit = off; SET statement_timeout = '60s'; "
		  . "SELECT jam.jam_submit_package('flush-a', 'third'::bytea)->'receipt'->>'seq'"),
	'3', 'with synchronous_commit off, a submit does not wait');

# A crash right after: what was acknowledged is there.
my $last = $node->safe_psql('postgres',
	"$local SELECT jam.jam_submit_package('flush-b', 'acknowledged'::bytea)->>'id'");
$node->stop('immediate');
$node->start;
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM jam.jam_work_packages WHERE id = decode('$last', 'hex')"),
	'1', 'an acknowledged submit survives an immediate shutdown');

# A processor worker does not wait for its own flush, nor for the standby:
# nobody waits for its commit.  Jam's readers wait for them instead.
$node->append_conf('postgresql.conf',
	"jam.processor_workers = 1\njam.processor_databases = 'postgres'\nwal_writer_delay = '10s'\n");
$node->restart;
$node->safe_psql('postgres',
	"$local SELECT jam.jam_submit_package('flush-w', convert_to('work ' || g, 'UTF8')) FROM generate_series(1, 20) g");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 20 FROM jam.jam_work_packages WHERE service_id = 'flush-w' AND status = 'applied'"),
	'a worker processes package after package while the synchronous standby never confirms');

my ($worker_reader, $worker_reader_out) = start_psql(
	q{SELECT jam.jam_get_package(jam.jam_package_id('flush-w', 'work 20'::bytea))->>'status' /* worker_reader */});
my $worker_reader_pid = waiting_for_standby('worker_reader');
ok($worker_reader_pid ne '', 'a reader of what the worker processed waits for the standby');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($worker_reader_pid)");
$worker_reader->finish;
chomp($$worker_reader_out);
is($$worker_reader_out, 'applied', '... and answers once its wait is cancelled');

# Before it sleeps, the worker flushes what it processed: an immediate
# shutdown then (the WAL writer asleep for 10 s) keeps every report.
$node->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$node->reload;
$node->safe_psql('postgres',
	"$local SELECT jam.jam_submit_package('flush-v', convert_to('work ' || g, 'UTF8')) FROM generate_series(1, 20) g");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 20 FROM jam.jam_work_packages WHERE service_id = 'flush-v' AND status = 'applied'"),
	'without a standby named, the worker processes the next packages');
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'Extension' FROM pg_stat_activity WHERE backend_type = 'jam processor'"),
	'... and goes to sleep');
$node->stop('immediate');
$node->start;
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM jam.jam_work_packages WHERE service_id = 'flush-v' AND status = 'applied'"),
	'20', 'what the worker processed before it slept survives an immediate shutdown');
is($node->safe_psql('postgres', q{SELECT jam.jam_verify_log('flush-v')->>'ok'}),
	'true', "... and the service's log verifies");

$node->stop;
done_testing();
