# Retention scheduled with pg_cron (src/schedule.c).
#
# A cluster preloads jam and pg_cron, with cron.database_name = 'postgres'.
# jam_schedule_retention() registers the job "jam-retention" running
# SELECT jam.jam_cleanup(): from the database postgres with cron.schedule,
# from another database (appdb, as another role, since pg_cron keys jobs by
# name and role) through a worker in postgres with cron.schedule_in_database.
# Both jobs get a per-minute schedule, and pg_cron must really run them:
# the expired rows of both databases disappear, and pg_cron records the
# runs as succeeded.  Then jam_unschedule_retention() removes them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'jam,pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION jam');
$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('appdb', 'CREATE EXTENSION jam');
$node->safe_psql('postgres', 'CREATE ROLE ops SUPERUSER LOGIN');

# pg_cron loaded but not created in its database: a clear error, from
# either database.
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT jam.jam_schedule_retention()');
like($err, qr/pg_cron is not installed in database "postgres"/, 'same database: pg_cron not installed');
like($err, qr/HINT:  Run CREATE EXTENSION pg_cron in database "postgres"/, 'with a hint');
($ret, $out, $err) = $node->psql('appdb', 'SELECT jam.jam_schedule_retention()');
like($err, qr/pg_cron is not installed in database "postgres"/, 'other database: pg_cron not installed');

$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');

# From the cron database: cron.schedule.  Scheduling again replaces the
# schedule of the same job.
my $doc = decode_json($node->safe_psql('postgres', 'SELECT jam.jam_schedule_retention()'));
is_deeply(
	[ @$doc{qw(job_name schedule command database cron_database)} ],
	[ 'jam-retention', '17 3 * * *', 'SELECT jam.jam_cleanup()', 'postgres', 'postgres' ],
	'scheduled in postgres, daily by default');
my $job = $doc->{job_id};
$doc = decode_json($node->safe_psql('postgres', q{SELECT jam.jam_schedule_retention('* * * * *')}));
is($doc->{job_id}, $job, 'scheduling again keeps the job');
($ret, $out, $err) = $node->psql('postgres', q{SELECT jam.jam_schedule_retention('every day')});
like($err, qr/invalid schedule/, 'pg_cron refuses a bad schedule');

# From another database: cron.schedule_in_database, through a worker.
$doc = decode_json(
	$node->safe_psql(
		'appdb', q{SELECT jam.jam_schedule_retention('* * * * *')},
		extra_params => [ '-U', 'ops' ]));
is_deeply([ @$doc{qw(database cron_database)} ], [ 'appdb', 'postgres' ], 'scheduled in appdb');
($ret, $out, $err) =
  $node->psql('appdb', q{SELECT jam.jam_schedule_retention('bogus')}, extra_params => [ '-U', 'ops' ]);
like($err, qr/invalid schedule.*\n.*CONTEXT:  background worker "jam cron"/s,
	'pg_cron\'s error comes back from the worker');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(format('%s %s %s %s %s', jobname, username, database, schedule, command), E'\n'
		  ORDER BY username) FROM cron.job}),
	"jam-retention ops appdb * * * * * SELECT jam.jam_cleanup()\n"
	  . "jam-retention postgres postgres * * * * * SELECT jam.jam_cleanup()",
	'cron.job holds both jobs');

# Expired rows in both databases: a package holding a preimage, both old.
for my $db ('postgres', 'appdb')
{
	$node->safe_psql(
		$db, q{
		SELECT jam.jam_put_preimage('cron preimage'::bytea);
		SELECT jam.jam_submit_package('cron', 'expired'::bytea,
		                              preimage_hashes => ARRAY[jam.jam_hash('cron preimage'::bytea)]);
		UPDATE jam.jam_work_packages SET submitted_at = now() - interval '90 days';
		UPDATE jam.jam_preimages SET created_at = now() - interval '90 days';
	});
}

# pg_cron runs the jobs at the next minute.
for my $db ('postgres', 'appdb')
{
	ok( $node->poll_query_until(
			$db, q{SELECT NOT EXISTS (SELECT 1 FROM jam.jam_work_packages)
			       AND NOT EXISTS (SELECT 1 FROM jam.jam_preimages)}),
		"pg_cron ran the cleanup in $db");
}
ok( $node->poll_query_until(
		'postgres', q{SELECT count(DISTINCT database) = 2 FROM cron.job_run_details
		              WHERE command = 'SELECT jam.jam_cleanup()' AND status = 'succeeded'}),
	'pg_cron records both runs as succeeded');
ok($node->log_contains(qr/jam cleanup: \{"disabled": false, "dry_run": false.*"packages_deleted": 1/),
	'the cleanup logged its line');
for my $db ('postgres', 'appdb')
{
	is( $node->safe_psql(
			$db, q{SELECT (f->>'drift_count') || (f->>'pending_drift_count') FROM jam.jam_fsck() AS f}),
		'00', "no drift in $db");
}

# Unscheduling removes this database's job, once.
is($node->safe_psql('appdb', 'SELECT jam.jam_unschedule_retention()', extra_params => [ '-U', 'ops' ]),
	't', 'unscheduled in appdb');
is($node->safe_psql('appdb', 'SELECT jam.jam_unschedule_retention()', extra_params => [ '-U', 'ops' ]),
	'f', 'nothing left to unschedule in appdb');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '1', 'the job of postgres stays');
is($node->safe_psql('postgres', 'SELECT jam.jam_unschedule_retention()'), 't', 'unscheduled in postgres');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'no job left');

$node->stop;
done_testing();
