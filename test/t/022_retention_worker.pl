# The retention worker (src/retention_worker.c), for clusters without
# pg_cron: with jam.retention_worker on, it cleans up
# jam.retention_database every jam.retention_interval (1 s here).  It skips
# quietly, saying so once, while the extension is not installed or
# retention is off; a reload changes its settings; a round that fails is
# logged and the next one carries on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'jam'
jam.retention_worker = on
jam.retention_interval = 1
jam.retention_database = 'postgres'
});
$node->start;

sub log_text { return slurp_file($node->logfile); }

my $not_installed =
  qr/jam retention worker: skipping cleanup in database "postgres": the extension jam is not installed/;
ok($node->wait_for_log(qr/jam retention worker started for database "postgres", every 1 s/) > 0,
	'the worker starts');
ok($node->wait_for_log($not_installed) > 0, 'without the extension, it says it skips');
my $worker_pid_query = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'jam retention worker'};
my $worker_pid = $node->safe_psql('postgres', $worker_pid_query);
like($worker_pid, qr/^\d+$/, 'the worker runs');
# A few more rounds go by before the extension comes.
sleep(3);
$node->safe_psql('postgres', 'CREATE EXTENSION jam');

# Expired rows: a pending package holding a preimage, and a recent one.
sub add_expired
{
	my ($label) = @_;
	$node->safe_psql(
		'postgres', qq{
		SELECT jam.jam_put_preimage('$label'::bytea);
		SELECT jam.jam_submit_package('worker', '$label'::bytea,
		                              preimage_hashes => ARRAY[jam.jam_hash('$label'::bytea)]);
		UPDATE jam.jam_work_packages SET submitted_at = now() - interval '90 days'
		WHERE payload = '$label'::bytea;
		UPDATE jam.jam_preimages SET created_at = now() - interval '90 days'
		WHERE hash = decode(jam.jam_hash('$label'::bytea), 'hex');
	});
	return;
}
my $gone = sub {
	my ($label) = @_;
	return qq{SELECT NOT EXISTS (SELECT 1 FROM jam.jam_work_packages WHERE payload = '$label'::bytea)
	          AND NOT EXISTS (SELECT 1 FROM jam.jam_preimages WHERE hash = decode(jam.jam_hash('$label'::bytea), 'hex'))};
};
$node->safe_psql('postgres',
	q{SELECT jam.jam_submit_package('worker', 'recent'::bytea)});
add_expired('first');
ok($node->poll_query_until('postgres', $gone->('first')), 'the worker cleaned up');
ok($node->wait_for_log(qr/LOG:  jam cleanup: \{"disabled": false, "dry_run": false.*"packages_deleted": 1/) > 0,
	'and logged its line');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_work_packages}), '1', 'the recent package stays');
is($node->safe_psql('postgres', q{SELECT pending_count FROM jam.jam_services WHERE service_id = 'worker'}),
	'1', 'the pending count is right');
my @skips = (log_text() =~ /$not_installed/g);
is(scalar @skips, 1, 'it said it skipped once only');

# Retention off, by a reload: it skips, says so once, and deletes nothing.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jam.retention_days = 0');
$node->reload;
ok($node->wait_for_log(qr/skipping cleanup in database "postgres": jam.retention_days is 0 or less/) > 0,
	'retention off: it says it skips');
add_expired('second');
my $offset = length(log_text());
sleep(3);
is($node->safe_psql('postgres', $gone->('second')), 'f', 'retention off: nothing deleted');
unlike(substr(log_text(), $offset), qr/skipping cleanup/, 'and said so once');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jam.retention_days');
$node->reload;
ok($node->poll_query_until('postgres', $gone->('second')), 'retention on again: cleaned up');

# A round that fails (a refcount that drifted too low) is logged; once it is
# repaired, the next round cleans up.
add_expired('third');
$node->safe_psql('postgres',
	q{UPDATE jam.jam_preimages SET refcount = 0 WHERE hash = decode(jam.jam_hash('third'::bytea), 'hex')});
ok($node->wait_for_log(qr/ERROR:  new row for relation "jam_preimages" violates check constraint/) > 0,
	'a failing round is logged');
is($node->safe_psql('postgres', q{SELECT jam.jam_fsck(repair => true)->>'drift_count'}), '1', 'repaired');
ok($node->poll_query_until('postgres', $gone->('third')), 'the next round cleans up');
is($node->safe_psql('postgres', $worker_pid_query), $worker_pid, 'the same worker runs on');
is( $node->safe_psql(
		'postgres',
		q{SELECT (f->>'drift_count') || (f->>'pending_drift_count') || (f->>'missing_count') FROM jam.jam_fsck() AS f}),
	'000',
	'counts exact');

$node->stop;
done_testing();
