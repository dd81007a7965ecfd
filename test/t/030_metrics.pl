# Metrics in shared memory (src/metrics.c) across backends: concurrent
# clients' counts add up exactly, refusals of more services than
# jam.metrics_max_services fold into "_other", the retention worker counts
# its runs, a restart starts the counters from zero, and a server that does
# not preload jam runs the API with metrics off and says so clearly when
# asked for them.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;

my $n_clients = 4;
my $n_per_client = 150;

my $node = jam_node(
	'metrics', 'jam.metrics_max_services = 2',
	'jam.retention_worker = on', 'jam.retention_interval = 1',
	"jam.retention_database = 'postgres'");

# The value of one series; labels as a jsonb literal's text.
sub metric
{
	my ($name, $labels) = @_;
	$labels //= '{}';
	return $node->safe_psql(
		'postgres', qq{
		SELECT coalesce((SELECT value FROM jam.jam_metrics()
		                 WHERE name = '$name' AND labels = '$labels'::jsonb), 0)});
}

my $created = '{"op": "package_submit", "outcome": "created"}';
my $existing = '{"op": "package_submit", "outcome": "existing"}';
my $puts = '{"op": "preimage_put", "outcome": "created"}';
my $increments = '{"direction": "increment"}';

# --- Concurrent clients: every call of every backend counted once.

$node->safe_psql('postgres', q{SELECT jam.jam_put_preimage('metrics shared')});
my %before = (
	created => metric('jam_operations_total', $created),
	existing => metric('jam_operations_total', $existing),
	puts => metric('jam_operations_total', $puts),
	increments => metric('jam_refcount_adjustments_total', $increments),
	seconds => metric('jam_operation_seconds_total', '{"op": "package_submit"}'));

# Each client, one call per transaction: a preimage of its own, then
# packages referencing it and the shared preimage, each submitted twice.
my @clients;
for my $c (1 .. $n_clients)
{
	my $sql = qq{
	DO \$\$
	BEGIN
		PERFORM jam.jam_put_preimage(convert_to('metrics client $c', 'UTF8'));
		COMMIT;
		FOR i IN 1 .. $n_per_client LOOP
			PERFORM jam.jam_submit_package(format('metrics-%s', i % 8), convert_to('c$c-' || i, 'UTF8'),
				preimage_hashes => ARRAY[jam.jam_hash('metrics shared'),
				                         jam.jam_hash(convert_to('metrics client $c', 'UTF8'))]);
			COMMIT;
			PERFORM jam.jam_submit_package(format('metrics-%s', i % 8), convert_to('c$c-' || i, 'UTF8'),
				preimage_hashes => ARRAY[jam.jam_hash('metrics shared'),
				                         jam.jam_hash(convert_to('metrics client $c', 'UTF8'))]);
			COMMIT;
		END LOOP;
	END
	\$\$;};
	my %h = (name => "client $c", out => '', err => '');
	$h{run} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', $sql
		],
		'>', \$h{out}, '2>', \$h{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	push @clients, \%h;
}
for my $h (@clients)
{
	ok(eval { $h->{run}->finish }, "$h->{name} finished")
	  or diag("$h->{name}: " . ($@ || $h->{err}));
}

my $n = $n_clients * $n_per_client;
is(metric('jam_operations_total', $created) - $before{created},
	$n, "$n_clients clients x $n_per_client new submits: created moved by exactly $n");
is(metric('jam_operations_total', $existing) - $before{existing},
	$n, "and their $n resubmits: existing moved by exactly $n");
is(metric('jam_operations_total', $puts) - $before{puts},
	$n_clients, 'one put per client');
is(metric('jam_refcount_adjustments_total', $increments) - $before{increments},
	2 * $n, 'two refcount increments per new package');
is($node->safe_psql('postgres', 'SELECT sum(refcount) FROM jam.jam_preimages'),
	2 * $n, 'which are the refcounts stored');
cmp_ok(metric('jam_operation_seconds_total', '{"op": "package_submit"}') - $before{seconds},
	'>', 0, 'submits took time');

# --- Refusals: two services counted one by one, the rest under "_other".

$node->safe_psql(
	'postgres', q{
	SET jam.max_payload_bytes = 1;
	DO $$
	BEGIN
		FOR i IN 1 .. 5 LOOP
			BEGIN
				PERFORM jam.jam_submit_package(format('metrics-refused-%s', i), 'too long');
			EXCEPTION WHEN others THEN
				NULL;
			END;
		END LOOP;
	END
	$$;});
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg((labels->>'service_id') || '=' || value, ',' ORDER BY labels->>'service_id')
		FROM jam.jam_metrics()
		WHERE name = 'jam_refusals_total' AND labels->>'reason' = 'payload_too_large'}),
	'_other=3,metrics-refused-1=1,metrics-refused-2=1',
	'refusals of services beyond jam.metrics_max_services = 2 count under _other');
is(metric('jam_metrics_refusal_services'), 2, 'two services are tracked');
is(metric('jam_metrics_max_services'), 2, 'the cap is shown');

# After a reset, new services get the freed places.
$node->safe_psql('postgres', 'SELECT jam.jam_metrics_reset()');
$node->safe_psql(
	'postgres', q{
	SET jam.max_pending_packages = 1;
	DO $$
	BEGIN
		PERFORM jam.jam_submit_package('metrics-refused-9', 'one');
		BEGIN
			PERFORM jam.jam_submit_package('metrics-refused-9', 'two');
		EXCEPTION WHEN others THEN
			NULL;
		END;
	END
	$$;});
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg((labels->>'reason') || '/' || (labels->>'service_id') || '=' || value, ',')
		FROM jam.jam_metrics() WHERE name = 'jam_refusals_total'}),
	'quota_exceeded/metrics-refused-9=1',
	'after a reset, the table starts empty and a new service is tracked');

# --- The retention worker counts its runs and deletions.

$node->safe_psql(
	'postgres', q{
	SELECT jam.jam_submit_package('metrics-expired', 'expired');
	UPDATE jam.jam_work_packages SET submitted_at = now() - interval '90 days'
	WHERE service_id = 'metrics-expired';});
ok( $node->poll_query_until(
		'postgres', q{
		SELECT value >= 1 FROM jam.jam_metrics()
		WHERE name = 'jam_cleanup_deleted_total' AND labels->>'kind' = 'packages'}),
	'the retention worker counts the package it deleted');
cmp_ok(metric('jam_cleanup_runs_total', '{"mode": "delete"}'), '>=', 1,
	'and its runs');

# --- A restart starts from zero.

my $reset_time = metric('jam_metrics_reset_time_seconds');
$node->restart;
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM jam.jam_metrics()
		WHERE kind = 'counter' AND value <> 0 AND name NOT LIKE 'jam_cleanup%'}),
	'0',
	'after a restart every counter (but the worker\'s) is zero');
cmp_ok(metric('jam_metrics_reset_time_seconds'), '>', $reset_time, 'and the reset time is the start');
$node->stop;

# --- Without shared_preload_libraries: no shared memory, no metrics.

my $plain = PostgreSQL::Test::Cluster->new('metrics_not_preloaded');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION jam');
is( $plain->safe_psql(
		'postgres', q{
		SELECT jam.jam_put_preimage('plain')->>'created';
		SELECT jam.jam_submit_package('plain', 'plain')->>'created';
		SELECT jam.jam_process_next()->>'status';
		SELECT count(*) FROM jam.jam_error_codes() WHERE code = 'disabled'}),
	"true\ntrue\napplied\n1",
	'the API works without preloading (metrics calls are no-ops)');
my ($rc, $out, $err) = $plain->psql(
	'postgres', q{
	\set VERBOSITY verbose
	DO $$ BEGIN PERFORM jam.jam_get_preimage('00'); EXCEPTION WHEN others THEN NULL; END $$;
	SELECT * FROM jam.jam_metrics()});
isnt($rc, 0, 'jam_metrics() refuses');
like($err, qr/55000: jam metrics are not available/, 'with a clear error');
like($err, qr/HINT:  Add jam to shared_preload_libraries and restart the server/, 'and what to do');
($rc, $out, $err) = $plain->psql('postgres', 'SELECT jam.jam_metrics_reset()');
like($err, qr/jam metrics are not available/, 'so does jam_metrics_reset()');
$plain->stop;

done_testing();
