# The rate limiter under concurrency: 8 clients submitting to one service at
# ten times its limit for a few seconds are admitted what the limit allows
# (within one burst), and every refusal carries a retry time that holds;
# another service, submitted to at the same time, is not limited by it.
# Revoking a token and changing a quota in one session reach a session that
# already cached them.
#
# The bounds are computed from the times the attempts were made, so a slow
# machine changes the numbers, not the verdict.

use strict;
use warnings;

use IPC::Run;
use POSIX qw(ceil floor);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;

my $rate = 30;          # packages per minute: one every 2 s
my $burst = 3;
my $clients = 8;
my $seconds = 6;
my $attempts_per_s = 10 * $rate / 60;    # ten times the limit

my $node = jam_node('rate_limit', "jam.rate_limit_burst = $burst", 'max_connections = 30');

$node->safe_psql(
	'postgres', qq{
	SELECT jam.jam_set_quota(service_id => 'svc-limited', rate_limit_per_minute => $rate);
	CREATE TABLE attempts (client int, service text, at timestamptz, ok boolean, retry_after int);
	-- One attempt: admitted, or refused with the seconds it was told to wait.
	CREATE FUNCTION try_submit(c int, svc text) RETURNS void LANGUAGE plpgsql AS \$\$
	DECLARE
		detail text;
	BEGIN
		PERFORM jam.jam_submit_package(svc,
			convert_to(svc || ':' || c || ':' || clock_timestamp() || ':' || random(), 'UTF8'));
		INSERT INTO attempts VALUES (c, svc, clock_timestamp(), true, NULL);
	EXCEPTION WHEN SQLSTATE 'JM028' THEN
		GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
		INSERT INTO attempts
		VALUES (c, svc, clock_timestamp(), false, substring(detail FROM '^Retry after (\\d+) seconds\\.\$')::int);
	END
	\$\$;});

my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/limited.sql",
	"SELECT try_submit(:client_id, 'svc-limited');\n");
PostgreSQL::Test::Utils::append_to_file("$dir/free.sql",
	"SELECT try_submit(:client_id + 100, 'svc-free');\n");

sub start_pgbench
{
	my ($name, @args) = @_;
	my %h = (name => $name, out => '', err => '');
	$h{run} = IPC::Run::start(
		[ $node->installed_command('pgbench'), '-n', @args, '-d', $node->connstr('postgres') ],
		'>', \$h{out}, '2>', \$h{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%h;
}

# Both loads at once: the limited service at ten times its rate, the other
# as fast as two clients go.
my @runs = (
	start_pgbench('limited', '-c', $clients, '-j', 4, '-T', $seconds, '-R', $attempts_per_s,
		'-f', "$dir/limited.sql"),
	start_pgbench('free', '-c', 2, '-j', 1, '-t', 100, '-f', "$dir/free.sql"));
for my $r (@runs)
{
	$r->{run}->finish;
	is($r->{run}->result(0), 0, "pgbench ($r->{name}) ran to the end") or diag($r->{err});
}

my ($attempts, $admitted, $refused, $elapsed, $retry_min, $retry_max, $unparsed) = split /\|/,
  $node->safe_psql(
	'postgres', q{
	SELECT count(*), count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok),
	       extract(epoch FROM max(at) - min(at)),
	       min(retry_after), max(retry_after),
	       count(*) FILTER (WHERE NOT ok AND retry_after IS NULL)
	FROM attempts WHERE service = 'svc-limited'});
note("svc-limited: $attempts attempts in ${elapsed}s, $admitted admitted, $refused refused");

cmp_ok($attempts, '>=', $attempts_per_s * $seconds / 2, 'the clients made their attempts');
cmp_ok($refused, '>', 0, 'attempts over the limit are refused');
my $allowed = $burst + ceil($rate / 60 * $elapsed) + 1;
cmp_ok($admitted, '<=', $allowed, "admitted at most one burst plus the rate over ${elapsed}s ($allowed)");
my $expected = $burst + floor($rate / 60 * ($elapsed - 2));
cmp_ok($admitted, '>=', $expected, "admitted at least what the rate refilled ($expected)");
is($unparsed, 0, 'every refusal says when to retry');
cmp_ok($retry_min, '>=', 1, 'retry times are at least 1 s');
cmp_ok($retry_max, '<=', ceil(60 / $rate), 'retry times are at most one emission interval');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id = 'svc-limited'}),
	$admitted, 'exactly the admitted packages are stored');

is( $node->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE ok) || '/' || count(*) FROM attempts WHERE service = 'svc-free'}),
	'200/200', 'the other service was admitted every package meanwhile');

# A refusal's retry time holds: refused now, admitted after waiting it.
my $probe = $node->background_psql('postgres', on_error_stop => 0);
my $wait;
for my $i (1 .. $burst + 1)
{
	$probe->query_safe("SELECT try_submit(900 + $i, 'svc-limited')");
	$wait = $probe->query_safe(
		"SELECT retry_after FROM attempts WHERE client = 900 + $i AND NOT ok");
	last if $wait ne '';
}
like($wait, qr/^\d+$/, 'a probe is refused once the burst is spent');
sleep($wait);
$probe->query_safe("SELECT try_submit(999, 'svc-limited')");
is($probe->query_safe('SELECT ok FROM attempts WHERE client = 999'),
	't', "after waiting the ${wait}s it was told, the next submit is admitted");

# Another session's changes reach a session that cached them: a revoked
# token, and a new quota.
my $token = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('probe', '{jam:read,jam:submit}')});
my $token_id = substr($token, 4, 16);
is($probe->query_safe("SELECT jam.jam_authenticate('$token')->>'token_id'"),
	$token_id, 'the probe session authenticates (and caches the token)');
is($probe->query_safe(q{SELECT jam.jam_submit_package('svc-late', '\x01')->>'created'}),
	'true', 'the probe session submits to a service without a limit');
$node->safe_psql('postgres', qq{
	SELECT jam.jam_revoke_token('$token_id');
	SELECT jam.jam_set_quota(service_id => 'svc-late', rate_limit_per_minute => 1);});
my ($out, $failed) = $probe->query("SELECT jam.jam_authenticate('$token')");
ok($failed && $probe->{stderr} =~ /revoked/, 'the revocation reaches the session that cached the token')
  or diag($probe->{stderr});
$probe->{stderr} = '';
is($probe->query_safe(q{SELECT jam.jam_submit_package('svc-late', '\x02', weight_hint => 3)->>'created'}),
	'true', 'the new quota admits one burst');
($out, $failed) = $probe->query(q{SELECT jam.jam_submit_package('svc-late', '\x03')});
ok($failed && $probe->{stderr} =~ /rate limit reached/, 'and refuses the next: the session saw the new quota')
  or diag($probe->{stderr});
$probe->quit;

$node->stop;
done_testing();
