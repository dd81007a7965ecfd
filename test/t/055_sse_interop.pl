# GET /jam/events read by a Server-Sent Events client nobody on the project
# wrote: the npm package eventsource, the WHATWG EventSource for Node.js
# (test/sse/follow.js, pinned by test/sse/package-lock.json and installed by
# scripts/test.sh), with its bearer token added through its fetch option and
# nothing else changed.  Two clients, one on a stream of one service and
# one on a stream of every service the token sees:
#
# - the events of packages submitted, applied and failed arrive with the
#   event types, ids and data jam_log_events reads back, exactly;
# - the shim is stopped (SIGTERM ends the streams) and started again on the
#   same port while packages keep committing; EventSource reconnects by
#   itself, sends the last id it saw as Last-Event-ID, and each client ends
#   with every entry of its logs exactly once, in order, without a gap or a
#   duplicate, through a burst of a hundred reports committed at once.
#
# Without node or the package the test skips, saying why.  No timing is
# asserted: every wait is bounded, and only bounds how long the test waits
# before failing.

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
use JamTest::Shim;

# --- The client: node and the eventsource package scripts/test.sh installed.

my $modules = $ENV{JAM_SSE_NODE_MODULES} || '/var/lib/jam-test-tools/sse/node_modules';
my ($node_bin) = grep { -x } map { ("$_/node", "$_/nodejs") } split /:/, $ENV{PATH};
plan skip_all => 'node is not installed (make deps installs it): no EventSource client to run'
  unless $node_bin;
my $node_version = `"$node_bin" -p process.versions.node`;
chomp $node_version;
plan skip_all => "node $node_version is older than 20, which the eventsource package needs"
  unless $node_version =~ /^(\d+)\./ && $1 >= 20;
plan skip_all => "the eventsource package is not in $modules (scripts/test.sh installs "
  . 'test/sse/package.json with npm ci: is npm installed, and was the registry reachable once?)'
  unless -f "$modules/eventsource/package.json";

my $json = JSON::PP->new->canonical;
my $follow_js = 'test/sse/follow.js';

sub read_json
{
	my ($path) = @_;
	return $json->decode(slurp_file($path));
}

my $locked = read_json('test/sse/package-lock.json')->{packages}{'node_modules/eventsource'}{version};
is(read_json("$modules/eventsource/package.json")->{version}, $locked,
	"the client is eventsource $locked, the version test/sse/package-lock.json pins");

# --- A cluster, and a shim on a port it will come back to.

my $node = jam_node('sse_interop', 'jam.events = on');
JamTest::Shim::prepare_database($node, 'interop_refine');

sub token
{
	my ($name, @scopes) = @_;
	return $node->safe_psql('postgres', sprintf(
		q{SELECT jam.jam_create_token('%s', ARRAY[%s]::text[], NULL, 'interop')},
		$name, join(',', map { "'$_'" } @scopes)));
}
my $writer = token('interop writer', qw(jam:read jam:submit jam:process));
my $reader = token('interop reader', 'jam:read');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my %shim_options = (
	dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port),
	token => $writer,
	port => $port,
	env => { JAM_POOL_SIZE => 4, JAM_THREADS => 16, JAM_SHUTDOWN_GRACE_MS => 5000 });
my $shim = JamTest::Shim->start(%shim_options);

sub submit
{
	my ($service, $payload) = @_;
	my $r = $shim->request('POST', '/jam/packages',
		body => $json->encode({ service_id => $service, payload => encode_base64($payload, '') }));
	die "submit to $service: $r->{status} $r->{content}" unless $r->{status} == 201;
	return $r->{json}{id};
}

sub process
{
	my ($service) = @_;
	my $r = $shim->request('POST', "/jam/process?service_id=$service");
	die "process $service: $r->{status} $r->{content}" unless $r->{status} == 200;
	return $r->{json};
}

# --- Running follow.js, and reading what it prints as it goes.

# Starts a client on $path that exits after $count events (or 180 s).
# What it prints is also kept in the test's log folder, sse_client_N.out.
my $clients = 0;
sub follow
{
	my ($path, $count) = @_;
	my $f = { path => $path, out => '', err => '', lines => [],
		log => "$PostgreSQL::Test::Utils::log_path/sse_client_" . (++$clients) . '.out' };
	local $ENV{NODE_PATH} = $modules;
	local $ENV{JAM_TOKEN} = $reader;
	$f->{h} = IPC::Run::start([ $node_bin, $follow_js, "http://127.0.0.1:$port$path", $count, 180 ],
		'<', \undef, '>', \$f->{out}, '2>', \$f->{err}, IPC::Run::timeout(240));
	return $f;
}

# Every line it printed so far, decoded.
sub lines
{
	my ($f) = @_;
	$f->{h}->pump_nb if $f->{h}->pumpable;
	while ($f->{out} =~ s/^([^\n]*)\n//)
	{
		my $line = $1;
		append_to_file($f->{log}, "$line\n");
		my $doc = eval { $json->decode($line) };
		push @{ $f->{lines} }, $doc // { status => 'unreadable', text => $line };
	}
	return @{ $f->{lines} };
}

sub events { return grep { !exists $_->{status} } lines($_[0]) }
sub statuses { my ($f, $status) = @_; return grep { ($_->{status} // '') eq $status } lines($f) }

# Waits (up to $seconds) until $pred holds of the lines; returns whether it did.
sub wait_for
{
	my ($f, $seconds, $pred) = @_;
	my $until = time + $seconds;
	for (;;)
	{
		my @l = lines($f);
		return 1 if $pred->(@l);
		return 0 if time >= $until || !$f->{h}->pumpable;
		usleep(50_000);
	}
}

# Waits for the client to exit; returns its exit code.
sub finish
{
	my ($f) = @_;
	eval { $f->{h}->finish };
	diag("$f->{path}: $@") if $@;
	lines($f);
	return $f->{h}->result(0);
}

# What the client should have received: the log's events, read back with
# jam_log_events, as EventSource types them ("submitted" for a package's
# entry, the report's status for a report's).
sub log_events
{
	my ($service) = @_;
	return @{ $json->decode($node->safe_psql('postgres',
		"SELECT jam.jam_log_events('$service', -1, 1000)->'events'")) };
}
sub type_of { return $_[0]{kind} eq 'package' ? 'submitted' : $_[0]{status} }

# The client's events as {id, type, data}, data decoded (jsonb's text form
# orders keys its own way: documents are compared, not their text).
sub received
{
	return [ map { { id => $_->{id}, type => $_->{type}, data => eval { $json->decode($_->{data}) } // $_->{data} } } @_ ];
}

# A stream of one service: each event's id is its seq.
sub expected_one
{
	return [ map { { id => "$_->{seq}", type => type_of($_), data => $_ } } @_ ];
}

# A stream of every service: the events of each service are its log's, in
# order, and each id is the position in every log seen so far,
# "service:seq" joined by commas in service id order.
sub per_service
{
	my %by;
	push @{ $by{ $_->{data}{service_id} // '?' } }, $_ for @{ received(@_) };
	return \%by;
}
sub positions
{
	my %pos;
	my @ids;
	for my $e (@{ received(@_) })
	{
		$pos{ $e->{data}{service_id} // '?' } = $e->{data}{seq} // '?';
		push @ids, join(',', map { "$_:$pos{$_}" } sort keys %pos);
	}
	return \@ids;
}

# --- Both clients connect before anything is in the logs: they start where
# the logs stand, at the beginning.

# Planned entries: phase one, 4 in ia-a and 2 in ia-b; then, while the shim
# is away, 3 and 1; a writer's 100 submits to each; 1 more to each after
# the reconnect; and the reports of every pending package (1 over HTTP, the
# rest in one transaction per service): 102 in ia-a, 102 in ia-b.
my $bulk = 100;
my %planned = ('ia-a' => 4 + 3 + $bulk + 1 + 102, 'ia-b' => 2 + 1 + $bulk + 1 + 102);
my $one = follow('/jam/events?service_id=ia-a', $planned{'ia-a'});
my $all = follow('/jam/events', $planned{'ia-a'} + $planned{'ia-b'});
for my $f ($one, $all)
{
	ok(wait_for($f, 60, sub { grep { ($_->{status} // '') eq 'open' } @_ }), "$f->{path}: EventSource opens the stream")
	  or diag(explain([ lines($f) ]), $f->{err});
}

# --- Submitted, applied, failed: as jam_log_events reads them back.

my $a0 = submit('ia-a', 'one');
$node->safe_psql('postgres', q{SELECT jam.jam_register_service('ia-a', 'public.interop_refine(bytea,bytea[])')});
my $a1 = submit('ia-a', 'fail');
my $b0 = submit('ia-b', 'b one');
$node->safe_psql('postgres', q{SELECT jam.jam_register_service('ia-b', 'public.interop_refine(bytea,bytea[])')});
my $applied = process('ia-a');
my $failed = process('ia-a');
my $b_applied = process('ia-b');
is_deeply([ map { $_->{status} } $applied, $failed, $b_applied ], [qw(applied failed applied)],
	'the packages are processed: one applied, one failed, one applied');

ok(wait_for($one, 60, sub { grep({ !exists $_->{status} } @_) >= 4 }), 'the one-service client receives 4 events');
ok(wait_for($all, 60, sub { grep({ !exists $_->{status} } @_) >= 6 }), 'the every-service client receives 6 events');
my @log_a = log_events('ia-a');
my @log_b = log_events('ia-b');
is_deeply([ map { [ $_->{kind}, $_->{id}, $_->{status} ] } @log_a, @log_b ], [
	[ 'package', $a0, 'pending' ], [ 'package', $a1, 'pending' ],
	[ 'report', $applied->{report_hash}, 'applied' ], [ 'report', $failed->{report_hash}, 'failed' ],
	[ 'package', $b0, 'pending' ], [ 'report', $b_applied->{report_hash}, 'applied' ] ],
	'the logs hold what was submitted and processed');

my @got = events($one);
is_deeply(received(@got), expected_one(@log_a),
	'one service: EventSource hands over each entry of the log once, in order, with the id, type and data jam_log_events reads back');
is_deeply([ map { $_->{type} } @got ], [qw(submitted submitted applied failed)],
	'its types: submitted, submitted, applied, failed');
is_deeply([ map { $_->{id} } @got ], [qw(0 1 2 3)], 'its lastEventId: each entry\'s seq');

@got = events($all);
my $by = per_service(@got);
is_deeply([ sort keys %$by ], [qw(ia-a ia-b)], 'every service: the entries of ia-a and ia-b');
is_deeply([ map { { type => $_->{type}, data => $_->{data} } } @{ $by->{'ia-a'} } ],
	[ map { { type => $_->{type}, data => $_->{data} } } @{ expected_one(@log_a) } ],
	'every service: ia-a\'s entries as its log holds them, in order');
is_deeply([ map { { type => $_->{type}, data => $_->{data} } } @{ $by->{'ia-b'} } ],
	[ map { { type => $_->{type}, data => $_->{data} } } @{ expected_one(@log_b) } ],
	'every service: ia-b\'s entries as its log holds them, in order');
is_deeply([ map { $_->{id} } @got ], positions(@got),
	'every service: each lastEventId is the position in every log seen (ia-a:N,ia-b:N)');
is($got[-1]{id}, 'ia-a:3,ia-b:1', 'the last of them: ia-a:3,ia-b:1');

# --- The shim goes away and comes back while packages commit.

# SIGTERM ends the streams at once; the shim stops listening a moment
# later, well within the second (retry: 1000) EventSource waits before it
# asks again.  (An answer other than 200 would end EventSource for good, as
# the standard says: the test would fail, showing it.)
my %before = map { $_->{path} => (events($_))[-1]{id} } $one, $all;
is($shim->stop, 0, 'the shim stops on SIGTERM, ending the streams');
for my $f ($one, $all)
{
	ok(wait_for($f, 60, sub { grep { ($_->{status} // '') eq 'error' && $_->{ready_state} == 0 } @_ }),
		"$f->{path}: EventSource sees the stream end and is reconnecting (readyState CONNECTING)")
	  or diag(explain([ lines($f) ]));
}

# While it is away: entries the clients can only get by resuming.
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_package('ia-a', 'down 1');
	SELECT jam.jam_submit_package('ia-a', 'down 2');
	SELECT jam.jam_submit_package('ia-b', 'down b');
	SELECT jam.jam_process_next('ia-a');
});
# And a writer that keeps committing, one entry a transaction, across the
# restart and the clients' catching up.
my ($w_out, $w_err) = ('', '');
my $writes = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c',
	  qq{DO \$\$ BEGIN FOR i IN 1..$bulk LOOP
		PERFORM jam.jam_submit_package('ia-a', convert_to('bulk a ' || i, 'UTF8')); COMMIT;
		PERFORM jam.jam_submit_package('ia-b', convert_to('bulk b ' || i, 'UTF8')); COMMIT;
		PERFORM pg_sleep(0.01);
	  END LOOP; END \$\$} ],
	'>', \$w_out, '2>', \$w_err);
for (1 .. 600)
{
	last if $node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_log_entries WHERE service_id = 'ia-b'}) >= 13;
	usleep(50_000);
}

$shim = JamTest::Shim->start(%shim_options);
is($shim->request('GET', '/jam/status')->{status}, 200, "a new shim answers on the same port, $port");
for my $f ($one, $all)
{
	ok(wait_for($f, 60, sub { grep({ ($_->{status} // '') eq 'open' } @_) >= 2 }),
		"$f->{path}: EventSource reconnects by itself and opens a new stream")
	  or diag(explain([ lines($f) ]));
}
my $a_after = submit('ia-a', 'after');
my $b_after = submit('ia-b', 'after b');
$writes->finish;
is($writes->result(0), 0, "the writer committed its $bulk entries to each service") or diag $w_err;
process('ia-b');
# A burst: every pending package's report, in one transaction per service.
$node->safe_psql('postgres', q{
	SELECT jam.jam_process_packages('ia-a', 1000);
	SELECT jam.jam_process_packages('ia-b', 1000);
});
@log_a = log_events('ia-a');
@log_b = log_events('ia-b');
is_deeply([ scalar(@log_a), scalar(@log_b) ], [ $planned{'ia-a'}, $planned{'ia-b'} ],
	"the logs now hold $planned{'ia-a'} and $planned{'ia-b'} entries, as planned");
is($node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id IN ('ia-a', 'ia-b') AND status = 'pending'}),
	0, 'nothing is left pending');

# --- Each client ends with every entry once, in order.

is(finish($one), 0, 'the one-service client exits once it has every event') or diag($one->{err});
is(finish($all), 0, 'the every-service client exits once it has every event') or diag($all->{err});
is_deeply([ map { $_->{status} } (statuses($one, 'done'), statuses($all, 'done')) ], [qw(done done)],
	'both say done, after the number of events asked for');

@got = events($one);
is_deeply([ map { $_->{id} } @got ], [ map { "$_" } 0 .. $#log_a ],
	'one service: ids 0 to ' . $#log_a . ', each once, in order, across the reconnect: no gap, no duplicate');
is_deeply(received(@got), expected_one(@log_a), 'one service: every event is the log\'s, exactly');

@got = events($all);
$by = per_service(@got);
is_deeply([ sort keys %$by ], [qw(ia-a ia-b)], 'every service: the entries of ia-a and ia-b, nothing else');
is_deeply([ map { $_->{data}{seq} } @{ $by->{'ia-a'} } ], [ 0 .. $#log_a ],
	'every service: ia-a\'s seqs 0 to ' . $#log_a . ', each once, in order');
is_deeply([ map { $_->{data}{seq} } @{ $by->{'ia-b'} } ], [ 0 .. $#log_b ],
	'every service: ia-b\'s seqs 0 to ' . $#log_b . ', each once, in order');
is_deeply([ map { { type => $_->{type}, data => $_->{data} } } @{ $by->{'ia-a'} } ],
	[ map { { type => $_->{type}, data => $_->{data} } } @{ expected_one(@log_a) } ],
	'every service: ia-a\'s events are its log\'s, exactly');
is_deeply([ map { { type => $_->{type}, data => $_->{data} } } @{ $by->{'ia-b'} } ],
	[ map { { type => $_->{type}, data => $_->{data} } } @{ expected_one(@log_b) } ],
	'every service: ia-b\'s events are its log\'s, exactly');
is_deeply([ map { $_->{id} } @got ], positions(@got),
	'every service: each lastEventId is the position in every log seen, across the reconnect too');

# --- How it resumed: EventSource's own Last-Event-ID.

for my $f ($one, $all)
{
	my @connects = statuses($f, 'connect');
	my @lines = lines($f);
	ok(@connects >= 2, "$f->{path}: EventSource asked again after the stream ended (" . scalar(@connects) . ' requests)');
	is($connects[0]{last_event_id}, undef, "$f->{path}: its first request had no Last-Event-ID");
	is_deeply([ map { $_->{last_event_id} } @connects[ 1 .. $#connects ] ],
		[ ($before{ $f->{path} }) x $#connects ],
		"$f->{path}: each later request sent Last-Event-ID: $before{ $f->{path} }, the last id it had seen");
	is(scalar(statuses($f, 'open')), 2, "$f->{path}: two streams in all, one each side of the restart");
	# The new stream starts, in each log, with the first entry the client had not seen.
	my @opens = grep { ($lines[$_]{status} // '') eq 'open' } 0 .. $#lines;
	my %first;
	for my $e (grep { !exists $_->{status} } @lines[ ($opens[1] // $#lines) + 1 .. $#lines ])
	{
		my $d = eval { $json->decode($e->{data}) } or next;
		$first{ $d->{service_id} } //= $d->{seq};
	}
	my %expect = $f == $one ? ('ia-a' => 4) : ('ia-a' => 4, 'ia-b' => 2);
	is_deeply(\%first, \%expect,
		"$f->{path}: after the reconnect, each log resumes right after what was seen (ia-a at 4"
		  . ($f == $one ? '' : ', ia-b at 2') . '), with what committed while the shim was away');
}

$shim->stop;
done_testing();
