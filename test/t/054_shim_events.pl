# The event stream end to end: the NOTIFY of each committed log entry on
# the channel jam_events, seen from psql; and GET /jam/events on a live
# shim, read over HTTP by a Server-Sent Events client (JamTest::SSE:
# "id:", "event:" and "data:" lines): the events of packages submitted,
# applied and failed with their payloads, keep-alive comments, a healthy
# stream outliving the request timeout, a reconnect with Last-Event-ID that
# resumes without gap or duplicate while entries keep committing, streams
# of every service, tenants that see nothing of each other (and 401, 403
# and 400 as for the other routes), a client that never reads dropped
# while another keeps receiving, and SIGTERM ending the streams at once.
#
# No timing is asserted: every wait is bounded, and only bounds how long
# the test waits before failing.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use JamTest;
use JamTest::SSE;
use JamTest::Shim;

my $node = jam_node('events', 'jam.events = on');
my $json = JSON::PP->new->canonical;

JamTest::Shim::prepare_database($node, 'ev_refine');

sub token
{
	my ($name, $scopes, $services, $tenant) = @_;
	return $node->safe_psql('postgres', sprintf(
		q{SELECT jam.jam_create_token('%s', ARRAY[%s]::text[], %s, %s)},
		$name, join(',', map { "'$_'" } @$scopes),
		$services ? 'ARRAY[' . join(',', map { "'$_'" } @$services) . ']' : 'NULL',
		$tenant ? "'$tenant'" : 'NULL'));
}
my $admin = token('admin', [qw(jam:read jam:submit jam:process jam:admin)]);
my $acme = token('acme', [qw(jam:read jam:submit jam:process)], undef, 'acme');
my $umbrella = token('umbrella', [qw(jam:read jam:submit jam:process)], undef, 'umbrella');
my $writer = token('writer', ['jam:submit']);
my $other_service = token('other service', ['jam:read'], ['ev-other']);

# A small queue and heartbeat, a request timeout that a stream outlives,
# and a shutdown grace the streams must not wait for.
my $shim = JamTest::Shim->start(
	dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port),
	token => $admin,
	env => {
		JAM_POOL_SIZE => 4,
		JAM_THREADS => 32,
		JAM_EVENTS_QUEUE => 16,
		JAM_EVENTS_HEARTBEAT_MS => 300,
		JAM_REQUEST_TIMEOUT_MS => 1500,
		JAM_KEEP_ALIVE_TIMEOUT_MS => 1000,
		JAM_SHUTDOWN_GRACE_MS => 600000,
	});

sub submit
{
	my ($token, $service, $payload) = @_;
	my $r = $shim->request('POST', '/jam/packages', token => $token,
		body => $json->encode({ service_id => $service, payload => encode_base64($payload, '') }));
	die "submit to $service: $r->{status} $r->{content}" unless $r->{status} == 201;
	return $r->{json}{id};
}

sub process
{
	my ($token, $service) = @_;
	my $r = $shim->request('POST', "/jam/process?service_id=$service", token => $token);
	die "process $service: $r->{status} $r->{content}" unless $r->{status} == 200;
	return $r->{json};
}

sub stream
{
	my ($path, %opt) = @_;
	return JamTest::SSE->open($shim->port, $path, %opt);
}

# The events' documents, for is_deeply.
sub docs { return [ map { $_->{json} } @_ ] }

sub event_doc
{
	my ($service, $seq, $kind, $id, $status, $package_id) = @_;
	my %doc = (service_id => $service, seq => $seq, kind => $kind, id => $id, status => $status);
	$doc{package_id} = $package_id if defined $package_id;
	return \%doc;
}

sub metric
{
	my ($line) = @_;
	my ($v) = $shim->request('GET', '/metrics')->{content} =~ /^\Q$line\E (\S+)$/m;
	return $v // -1;
}

# --- NOTIFY, seen from psql: the payload, and only once the transaction commits.

# A psql session listening on jam_events, in a database.
sub listener
{
	my ($db) = @_;
	my $psql = $node->background_psql($db);
	$psql->query_safe('LISTEN jam_events');
	return { psql => $psql, heard => '' };
}

# The payloads the listener's psql has printed so far ("Asynchronous notification ...").
sub heard
{
	my ($l) = @_;
	$l->{heard} .= $l->{psql}->query_safe('SELECT 1');
	return map { $json->decode($_) }
	  $l->{heard} =~ /Asynchronous notification "jam_events" with payload "(.*)" received from server process/g;
}

# The payloads, once one satisfies $pred (or a minute has passed).
sub hear_until
{
	my ($l, $pred) = @_;
	for (1 .. 600)
	{
		my @p = heard($l);
		return @p if grep { $pred->($_) } @p;
		usleep(100_000);
	}
	return heard($l);
}

my $listener = listener('postgres');

my $session = $node->background_psql('postgres');
$session->query_safe('BEGIN');
my $first = $session->query_safe(q{SELECT jam.jam_submit_package('ev-psql', '\x01')->>'id'});
is(scalar(grep { $_->{service_id} eq 'ev-psql' } heard($listener)), 0, 'nothing is announced before the commit');
$session->query_safe('COMMIT');
my @payloads = hear_until($listener, sub { $_[0]{id} eq $first });
is_deeply([ grep { $_->{service_id} eq 'ev-psql' } @payloads ],
	[ event_doc('ev-psql', 0, 'package', $first, 'pending') ],
	'at commit, LISTEN jam_events hears the entry as JSON: service_id, seq, kind, id, status');
is($json->encode((grep { $_->{id} eq $first } @payloads)[0]),
	$json->encode($json->decode($node->safe_psql('postgres', q{SELECT jam.jam_log_events('ev-psql')->'events'->0}))),
	'the payload is the event jam_log_events reads back');

$session->query_safe('BEGIN');
my $rolled_back = $session->query_safe(q{SELECT jam.jam_submit_package('ev-psql', '\x02')->>'id'});
$session->query_safe('ROLLBACK');
my $second = $node->safe_psql('postgres', q{SELECT jam.jam_submit_package('ev-psql', '\x03')->>'id'});
@payloads = hear_until($listener, sub { $_[0]{id} eq $second });
is_deeply([ grep { $_->{service_id} eq 'ev-psql' } @payloads ],
	[ event_doc('ev-psql', 0, 'package', $first, 'pending'), event_doc('ev-psql', 1, 'package', $second, 'pending') ],
	'a rolled-back submit is never announced; the next commit takes its place in the log');
$session->quit;
$listener->{psql}->quit;

# --- One service's stream: submitted, applied and failed, as they commit.

my $s = stream('/jam/events?service_id=ev-a', token => $acme);
is($s->{status}, 200, 'GET /jam/events?service_id=: 200');
like($s->{headers}{'content-type'} // '', qr{^text/event-stream}, 'as text/event-stream');
is($s->{headers}{'cache-control'}, 'no-store', 'not cached');
ok(!defined $s->{headers}{'content-length'}, 'without a Content-Length: it lasts');

my $p1 = submit($acme, 'ev-a', 'one');
$node->safe_psql('postgres', q{SELECT jam.jam_register_service('ev-a', 'public.ev_refine(bytea,bytea[])')});
my $p2 = submit($acme, 'ev-a', 'fail');
my $applied = process($acme, 'ev-a');
my $failed = process($acme, 'ev-a');
is($failed->{status}, 'failed', 'the second package fails its refine');
my @events = map { $s->next_event(60) } 1 .. 4;
is_deeply(docs(@events), [
	event_doc('ev-a', 0, 'package', $p1, 'pending'),
	event_doc('ev-a', 1, 'package', $p2, 'pending'),
	event_doc('ev-a', 2, 'report', $applied->{report_hash}, 'applied', $p1),
	event_doc('ev-a', 3, 'report', $failed->{report_hash}, 'failed', $p2) ],
	'the stream sends each entry as it commits: package submitted, report applied, report failed, '
	  . 'a report naming its package');
is_deeply([ map { $_->{event} } @events ], [qw(submitted submitted applied failed)], 'event: by what happened');
is_deeply([ map { $_->{id} } @events ], [qw(0 1 2 3)], 'id: the position in the service\'s log');
is($s->{retry}, 1000, 'retry: tells EventSource to come back after a second');
is_deeply(docs(@events), $json->decode($node->safe_psql('postgres', q{SELECT jam.jam_log_events('ev-a')->'events'})),
	'the events are the log\'s, as jam_log_events reads them back');
is(scalar(grep { $_->{data} !~ /^\{"service_id": "ev-a", "seq": \d+, "kind": "(?:package|report)", "id": "[0-9a-f]{64}", "status": "(?:pending|applied|failed)"(?:, "package_id": "[0-9a-f]{64}")?\}$/ } @events),
	0, 'data: the very document the extension announces');

# Idle: keep-alive comments, for longer than JAM_REQUEST_TIMEOUT_MS (1.5 s at
# 300 ms a beat), and the watchdog leaves the stream alone.
ok($s->wait_for(60, sub { $_[0]{comments} >= 8 }), 'an idle stream sends ": keep-alive" comments');
my $p3 = submit($acme, 'ev-a', 'three');
my $e = $s->next_event(60);
is_deeply([ $e->{id}, $e->{json}{id} ], [ 4, $p3 ], 'past the request timeout, the stream still delivers');
$s->close;

# --- Last-Event-ID: a reconnect resumes exactly, while entries keep committing.

my $p4 = submit($acme, 'ev-a', 'four');
my $p5 = submit($acme, 'ev-a', 'five');
my $writes = 200;
my ($w_out, $w_err) = ('', '');
my $bulk = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c',
	  qq{DO \$\$ BEGIN FOR i IN 1..$writes LOOP PERFORM jam.jam_submit_package('ev-a', convert_to('bulk ' || i, 'UTF8')); COMMIT; END LOOP; END \$\$} ],
	'>', \$w_out, '2>', \$w_err);
# Reconnect while the writes go on.
for (1 .. 600)
{
	last if $node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_log_entries WHERE service_id = 'ev-a'}) >= 20;
	usleep(50_000);
}
$s = stream('/jam/events?service_id=ev-a', token => $acme, last_event_id => '4');
is($s->{status}, 200, 'a reconnect with Last-Event-ID: 4');
$bulk->finish;
is($bulk->result(0), 0, 'the writes committed') or diag $w_err;
my $last = $node->safe_psql('postgres', q{SELECT max(seq) FROM jam.jam_log_entries WHERE service_id = 'ev-a'});
is($last, 6 + $writes, "the log now ends at $last");
@events = $s->events_until(120, sub { $_[0]{id} eq $last });
is_deeply([ map { $_->{id} } @events ], [ 5 .. $last ],
	'it resumes right after 4: every entry once, in order, the replayed ones and the live ones');
is(scalar(grep { $_->{id} ne $_->{json}{seq} } @events), 0, 'each id is its event\'s seq');
is_deeply([ map { $_->{json}{id} } @events[0, 1] ], [ $p4, $p5 ], 'starting with what committed while it was away');
$s->close;

# Past the log's end, malformed, twice, or an unknown parameter: 400.
my $bad = stream('/jam/events?service_id=ev-a', token => $acme, last_event_id => $last + 1);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_tree_size' ],
	'a Last-Event-ID past the log\'s end: 400 invalid_tree_size');
$bad = stream('/jam/events?service_id=ev-a', token => $acme, last_event_id => 'ev-a:3');
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_argument' ],
	'a one-service stream takes a seq as Last-Event-ID: 400 invalid_argument');
$bad = stream('/jam/events', token => $acme, last_event_id => '3');
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_argument' ],
	'a stream of every service takes service:seq positions: 400 invalid_argument');
$bad = stream('/jam/events?service_id=ev-a', token => $acme, headers => { 'Last-Event-ID' => '1', 'last-event-id' => '2' });
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_argument' ], 'two Last-Event-ID headers: 400');
$bad = stream('/jam/events?service=ev-a', token => $acme);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_argument' ], 'an unknown parameter: 400');
$bad = stream('/jam/events?service_id=ev%20a', token => $acme);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 400, 'invalid_service_id' ], 'a malformed service id: 400');

# HEAD: the stream's head, no body.
my $head = stream('/jam/events?service_id=ev-a', token => $acme, method => 'HEAD');
is($head->{status}, 200, 'HEAD /jam/events: 200');
like($head->{headers}{'content-type'} // '', qr{^text/event-stream}, 'with the stream\'s Content-Type');
ok($head->wait_eof(60) && $head->{buf} eq '', 'and no body');

# --- Tokens: the rules of the other routes.

$bad = stream('/jam/events?service_id=ev-a');
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 401, 'unauthenticated' ], 'no token: 401');
like($bad->{headers}{'www-authenticate'} // '', qr/^Bearer/, 'with WWW-Authenticate');
$bad = stream('/jam/events?service_id=ev-a', token => $writer);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 403, 'forbidden' ], 'a token without jam:read: 403');
$bad = stream('/jam/events?service_id=ev-a', token => $other_service);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 403, 'forbidden' ], 'a token for other services: 403');
$bad = stream('/jam/events?service_id=ev-a', token => $umbrella);
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 403, 'forbidden' ], 'another tenant\'s token naming the service: 403');
$bad = stream('/jam/events?service_id=ev-a', token => 'jam_0000000000000000_nope');
is_deeply([ $bad->{status}, $bad->{json}{code} ], [ 401, 'unauthenticated' ], 'an unknown token: 401');

# --- Streams of every service the token sees: another tenant's are not there.

my $for_acme = stream('/jam/events', token => $acme);
my $for_umbrella = stream('/jam/events', token => $umbrella);
my $for_admin = stream('/jam/events', token => $admin);
is_deeply([ map { $_->{status} } $for_acme, $for_umbrella, $for_admin ], [ 200, 200, 200 ],
	'GET /jam/events without service_id: 200 for each');
my $u0 = submit($umbrella, 'ev-u', 'u zero');
my $a_next = submit($acme, 'ev-a', 'for acme');
my $u1 = submit($umbrella, 'ev-u', 'u one');
my $a_last = submit($acme, 'ev-a', 'acme again');
my $a1 = $last + 1;
my $a2 = $last + 2;
@events = $for_umbrella->events_until(60, sub { $_[0]{json}{id} eq $u1 });
is_deeply(docs(@events), [ event_doc('ev-u', 0, 'package', $u0, 'pending'), event_doc('ev-u', 1, 'package', $u1, 'pending') ],
	'umbrella\'s stream: its own service only, nothing of acme\'s');
is_deeply([ map { $_->{id} } @events ], [ 'ev-u:0', 'ev-u:1' ], 'ids: service:seq of each service it has seen');
@events = $for_acme->events_until(60, sub { $_[0]{json}{id} eq $a_last });
is_deeply(docs(@events), [ event_doc('ev-a', $a1, 'package', $a_next, 'pending'), event_doc('ev-a', $a2, 'package', $a_last, 'pending') ],
	'acme\'s stream: its own service only, nothing of umbrella\'s');
is_deeply([ map { $_->{id} } @events ], [ "ev-a:$a1", "ev-a:$a2" ], 'from where the log stood when it connected');
@events = $for_admin->events_until(60, sub { $_[0]{json}{id} eq $a_last });
is_deeply([ sort map { "$_->{json}{service_id}:$_->{json}{seq}" } @events ], [ "ev-a:$a1", "ev-a:$a2", 'ev-u:0', 'ev-u:1' ],
	'a token without a tenant sees both tenants\' entries');

# The position after each event, as ids say it: every log seen, in service id order.
sub positions
{
	my ($start, @seen) = @_;
	my %at = %$start;
	my @ids;
	for my $ev (@seen)
	{
		$at{ $ev->{json}{service_id} } = $ev->{json}{seq};
		push @ids, join(',', map { "$_:$at{$_}" } sort keys %at);
	}
	return \@ids;
}
is_deeply([ map { $_->{id} } @events ], positions({ 'ev-a' => $last, 'ev-psql' => 1 }, @events),
	'its ids are its position in every log: ev-a:N,ev-psql:N,ev-u:N');
my $admin_id = $events[1]{id};
my %admin_at = map { split /:/ } split /,/, $admin_id;
$for_acme->close;
$for_admin->close;

# Resumed from a position in every log: exactly what came after it, in each.
my $u2 = submit($umbrella, 'ev-u', 'u two');
submit($acme, 'ev-a', 'acme three');
$for_admin = stream('/jam/events', token => $admin, last_event_id => $admin_id);
my @expected = sort((map { "ev-a:$_" } $admin_at{'ev-a'} + 1 .. $a2 + 1), (map { "ev-u:$_" } $admin_at{'ev-u'} + 1 .. 2));
@events = grep { defined } map { $for_admin->next_event(60) } @expected;
is_deeply([ sort map { "$_->{json}{service_id}:$_->{json}{seq}" } @events ], \@expected,
	"resumed from $admin_id: each log's entries after its position, none before");
is_deeply([ map { $_->{id} } @events ], positions(\%admin_at, @events), 'its ids go on from there');
is($for_admin->next_event(1), undef, 'and nothing more');
$for_admin->close;

# A tenant resuming with another tenant's position learns nothing of it.
$for_umbrella->close;
$for_umbrella = stream('/jam/events', token => $umbrella, last_event_id => 'ev-a:0,ev-u:1');
is($for_umbrella->{status}, 200, 'another tenant\'s service in Last-Event-ID is not an error');
@events = $for_umbrella->events_until(60, sub { $_[0]{json}{id} eq $u2 });
is_deeply([ map { $_->{id} } @events ], [ 'ev-u:2' ], 'its events, and nothing of the service it may not see');
$for_umbrella->close;

# --- A client that never reads is dropped; another on the same service keeps receiving.

my $fast = stream('/jam/events?service_id=ev-slow', token => $admin);
my $slow = stream('/jam/events?service_id=ev-slow', token => $admin, rcvbuf => 1024);
is_deeply([ $fast->{status}, $slow->{status} ], [ 200, 200 ], 'two streams of one service');
my $slow_before = metric('jam_shim_events_streams_ended_total{reason="slow"}');
my ($seq, $batches, @fast_ids) = (-1, 0);
for my $batch (1 .. 400)
{
	$node->safe_psql('postgres', qq{
		SELECT jam.jam_submit_packages('ev-slow',
			ARRAY(SELECT convert_to('slow $batch ' || i, 'UTF8') FROM generate_series(1, 10) AS i))});
	$seq += 10;
	my $target = $seq;
	push @fast_ids, map { $_->{id} } $fast->events_until(60, sub { $_[0]{id} == $target });
	$batches = $batch;
	last if metric('jam_shim_events_streams_ended_total{reason="slow"}') > $slow_before;
}
ok(metric('jam_shim_events_streams_ended_total{reason="slow"}') > $slow_before,
	"the client that never reads is dropped (after $batches batches of 10)");
ok($slow->wait_eof(60), 'its stream is closed');
my $slow_got = scalar @{ $slow->{events} };
ok($slow_got < $seq + 1, "it had taken only part ($slow_got of " . ($seq + 1) . ' events)');
is_deeply(\@fast_ids, [ 0 .. $seq ], 'the other received every event, in order');
submit($admin, 'ev-slow', 'after the drop');
$e = $fast->next_event(60);
is($e->{id}, $seq + 1, 'and keeps receiving');
$seq++;

# A burst larger than the queue (16 here) does not drop a client that
# reads: what did not fit is read from the log.
my $before = $seq;
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_packages('ev-slow',
		ARRAY(SELECT convert_to('burst ' || i, 'UTF8') FROM generate_series(1, 300) AS i))});
$seq += 300;
my $burst_end = $seq;
@events = $fast->events_until(60, sub { $_[0]{id} == $burst_end });
is_deeply([ map { $_->{id} } @events ], [ $before + 1 .. $burst_end ],
	'a burst of 300 in one transaction: every event once, in order, to a client that reads');

# --- The listening connection lost (Postgres restarted): streams end, and
# their clients resume where they were.

my $lost_before = metric('jam_shim_events_streams_ended_total{reason="database"}');
$node->restart;
ok($fast->wait_eof(60), 'a restart of Postgres ends the streams');
ok(metric('jam_shim_events_streams_ended_total{reason="database"}') > $lost_before, 'counted as the database\'s loss');
# The shim's pool answers 503 until it has reconnected.
my $after_restart;
for (1 .. 300)
{
	$after_restart = eval { submit($admin, 'ev-slow', 'after the restart') } and last;
	usleep(100_000);
}
ok($after_restart, 'a submit after the restart');
my $resumed;
for (1 .. 300)
{
	$resumed = stream('/jam/events?service_id=ev-slow', token => $admin, last_event_id => $seq);
	last if $resumed->{status} == 200;
	$resumed->close;
	usleep(100_000);
}
is($resumed->{status}, 200, 'once the shim listens again, a stream resumes');
$e = $resumed->next_event(60);
is_deeply([ $e->{id}, $e->{json}{id} ], [ $seq + 1, $after_restart ], 'with what committed meanwhile');
$resumed->close;

# --- SIGTERM ends the streams at once: the shim does not wait out its
# grace period (ten minutes here) for them.

my $open = stream('/jam/events', token => $admin);
is($open->{status}, 200, 'a stream is open');
$shim->term;
ok($open->wait_eof(60), 'SIGTERM ends it');
my $exited = 0;
for (1 .. 600)
{
	if ($shim->stderr_text =~ /"msg":"stopped"/) { $exited = 1; last }
	usleep(100_000);
}
ok($exited, 'the shim stops without waiting for its streams');
is($shim->wait_exit, 0, 'cleanly');

# --- Older catalogs: the library announces on a 1.0 or 1.1 catalog before
# ALTER EXTENSION UPDATE, and its jam_log_events reads them too (declared
# here by hand: the SQL function comes with 1.2); the update keeps it all.

for my $version ('1.0', '1.1')
{
	my $db = 'events_' . ($version =~ s/\./_/r);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION jam VERSION '$version'");
	my $l = listener($db);
	my $id = $node->safe_psql($db, q{SELECT jam.jam_submit_package('ev-old', '\x01')->>'id'});
	is_deeply([ grep { $_->{id} eq $id } hear_until($l, sub { $_[0]{id} eq $id }) ],
		[ event_doc('ev-old', 0, 'package', $id, 'pending') ], "$version catalog: the entry is announced");
	$l->{psql}->quit;

	# The shim on that database: the stream needs jam_log_events, which the
	# catalog has not got yet; 503 with what the operator must do, not 500.
	my $old_token = $node->safe_psql($db, q{SELECT jam.jam_create_token('old', ARRAY['jam:read']::text[])});
	my $old_shim = JamTest::Shim->start(
		dsn => sprintf('host=%s port=%d dbname=%s user=jam_shim', $node->host, $node->port, $db),
		token => $old_token);
	my $r = $old_shim->request('GET', '/jam/events?service_id=ev-old');
	is($r->{status}, 503, "$version catalog: GET /jam/events answers 503");
	is($r->{json}{code}, 'extension_update_required', "$version catalog: saying the extension needs its update");
	ok(($r->{headers}{'retry-after'} // 0) > 0, "$version catalog: with a Retry-After");
	is($old_shim->stop, 0, "$version catalog: the shim stops cleanly");

	$node->safe_psql($db, q{CREATE FUNCTION public.log_events(text, bigint, integer) RETURNS jsonb
		AS '$libdir/jam', 'jam_log_events' LANGUAGE C STABLE});
	is_deeply($json->decode($node->safe_psql($db, q{SELECT public.log_events('ev-old', -1, 10)->'events'})),
		[ event_doc('ev-old', 0, 'package', $id, 'pending') ], "$version catalog: the library reads it back");
	$node->safe_psql($db, 'ALTER EXTENSION jam UPDATE');
	is_deeply($json->decode($node->safe_psql($db, q{SELECT jam.jam_log_events('ev-old')->'events'})),
		[ event_doc('ev-old', 0, 'package', $id, 'pending') ], "$version catalog updated: jam_log_events reads it");
}

$node->stop;
done_testing();
