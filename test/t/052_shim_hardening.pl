# The shim against hostile and careless clients, over real HTTP (issue 11):
#
#  - framing that two parsers could read differently (two Content-Length
#    headers, Content-Length with Transfer-Encoding, an encoding other than
#    chunked, a malformed length): 400 and the connection closes, so that
#    nothing after it is taken for a request of its own;
#  - a repeated member name in a JSON body, at any depth, in every JSON
#    route (batches and NDJSON lines included): 400 naming it;
#  - two Authorization (or Content-Type) headers: 400, nothing executed;
#  - request targets in absolute form and OPTIONS *: answered;
#  - slow and idle clients: a whole request within request_timeout_ms
#    (408 and close), idle connections shed when the workers are needed,
#    a limit per client address, and a well-behaved request answered
#    promptly while 1,000 slow or idle connections are open;
#  - SIGTERM with a request blocked on a row lock: after
#    shutdown_grace_ms its statement is cancelled, it is answered 503
#    shutting_down, nothing is committed, and the shim exits.
#
# Timing is asserted only as generous bounds ("within 10 s"); every wait
# is bounded.

use strict;
use warnings;

use File::Temp qw(tempfile);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use JamTest;
use JamTest::Shim;

my $node = jam_node('shim_hardening');
my $json = JSON::PP->new->canonical;

# The shim logs in as a member of jam_api; requests carry an admin token.
JamTest::Shim::prepare_database($node);
my $admin = $node->safe_psql('postgres',
	q{SELECT jam.jam_create_token('admin', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
my $reader = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('reader', ARRAY['jam:read'])});
my $auth = "Authorization: Bearer $admin\r\n";
my $dsn = sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port);

# The shim with its defaults, but for a small pool.
my $shim = JamTest::Shim->start(dsn => $dsn, token => $admin, env => { JAM_POOL_SIZE => 4 });

# Every error is {"error": text, "code": code} as JSON, with that status.
sub is_error
{
	my ($r, $status, $code, $name) = @_;
	subtest $name => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
		is_deeply([ sort keys %{ $r->{json} // {} } ], [ 'code', 'error' ], 'exactly error and code');
		is($r->{json}{code}, $code, "code $code") or diag $r->{content};
	};
}

# Reads from a socket until it closes or $wait seconds pass: (bytes, closed).
sub read_all
{
	my ($sock, $wait) = @_;
	my ($data, $eof) = ('', 0);
	my $deadline = time + $wait;
	my $sel = IO::Select->new($sock);
	while ((my $left = $deadline - time) > 0)
	{
		last unless $sel->can_read($left);
		my $n = sysread($sock, my $chunk, 65536);
		if (!$n)
		{
			# 0: the end of the stream; undef: reset, which ends it too.
			$eof = 1;
			last;
		}
		$data .= $chunk;
	}
	return ($data, $eof);
}

# A raw connection to a port, from the address $opt{local} if given.
sub connect_to
{
	my ($port, %opt) = @_;
	return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 10,
		$opt{local} ? (LocalAddr => $opt{local}) : ()) // die "connect: $!";
}

# Sends bytes on a new connection and reads until the shim closes it (or
# $opt{wait} seconds, 10 by default): {data, eof, seconds}.
sub raw
{
	my ($port, $bytes, %opt) = @_;
	my $sock = connect_to($port, %opt);
	my $t0 = time;
	syswrite($sock, $bytes) if length $bytes;
	my ($data, $eof) = read_all($sock, $opt{wait} // 10);
	close $sock;
	return { data => $data, eof => $eof, seconds => time - $t0 };
}

# The answers in a byte stream, in order: {status, headers, body, json}.
sub answers
{
	my ($data) = @_;
	my @out;
	while ($data =~ s{^HTTP/1\.1 (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n}{})
	{
		my ($status, $head) = ($1, $2);
		my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head;
		my $body = substr($data, 0, $h{'content-length'} // 0, '');
		my $decoded = $body =~ /^[\[{]/ ? eval { decode_json($body) } : undef;
		push @out, { status => $status, headers => \%h, body => $body, json => $decoded };
	}
	return @out;
}

# The error code of an answer, or undef when it is not a JSON error.
sub code_of
{
	my ($answer) = @_;
	return ref($answer) eq 'HASH' && ref($answer->{json}) eq 'HASH' ? $answer->{json}{code} : undef;
}

sub package_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM jam.jam_work_packages');
}

# --- Framing (defect 2): one answer, 400, and the connection closes.

my $port = $shim->port;
my $smuggled = "GET /system/status HTTP/1.1\r\nHost: x\r\n\r\n";
is(length $smuggled, 40, 'the smuggled request is 40 bytes');

# The method sees a second answer when there is one.
my $r = raw($port, "GET /system/status HTTP/1.1\r\nHost: x\r\n\r\n"
	  . "GET /system/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
is(scalar(my @two = answers($r->{data})), 2, 'two pipelined requests: two answers');

my $body = $json->encode({ service_id => 'svc-frame', payload => encode_base64('framed', '') });
my %ambiguous = (
	'Content-Length: 0 then Content-Length: 40 (the issue\'s desync)' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 0\r\nContent-Length: 40\r\n\r\n$smuggled",
	'two equal Content-Length headers' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: " . length($body)
	  . "\r\nContent-Length: " . length($body) . "\r\n\r\n$body$smuggled",
	'Content-Length with Transfer-Encoding: chunked' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	  . "0\r\n\r\n$smuggled",
	'Transfer-Encoding: identity' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: identity\r\n\r\n$smuggled",
	'Transfer-Encoding: gzip, chunked' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n$smuggled",
	'Transfer-Encoding twice' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
	  . "0\r\n\r\n$smuggled",
	'Transfer-Encoding in HTTP/1.0' =>
	  "POST /jam/packages HTTP/1.0\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n$smuggled",
	'Content-Length: 5abc' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5abc\r\n\r\nhello$smuggled",
	'Content-Length: -5' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: -5\r\n\r\n$smuggled",
	'Content-Length: +5' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: +5\r\n\r\nhello$smuggled",
	'Content-Length: 5, 5' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5, 5\r\n\r\nhello$smuggled",
	'Content-Length past int64' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 99999999999999999999\r\n\r\n$smuggled",
	'Content-Length: abc' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: abc\r\n\r\n$smuggled",
	'white space before a header\'s colon' =>
	  "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length : 5\r\n\r\nhello$smuggled",
	'two Host headers' =>
	  "GET /jam/roots HTTP/1.1\r\nHost: a\r\nHost: b\r\n$auth\r\n$smuggled",
	'a folded header line hiding a Content-Length' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth} Folded: y\r\nContent-Length: 40\r\n\r\n$smuggled",
	'a header line starting outside ASCII hiding a Content-Length' =>
	  "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}\x80X: y\r\nContent-Length: 40\r\n\r\n$smuggled",
	'a CORS preflight with Content-Length and Transfer-Encoding (civetweb would answer it itself)' =>
	  "OPTIONS /jam/roots HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\nAccess-Control-Request-Method: GET\r\n"
	  . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$smuggled",
);
my $before = package_count();
for my $name (sort keys %ambiguous)
{
	my $res = raw($port, $ambiguous{$name});
	my @a = answers($res->{data});
	subtest "ambiguous framing: $name" => sub {
		is(scalar @a, 1, 'exactly one answer: the smuggled request gets none') or diag $res->{data};
		is($a[0]{status}, 400, 'status 400');
		is(code_of($a[0]), 'bad_request', 'bad_request, as JSON');
		is($a[0]{headers}{connection}, 'close', 'Connection: close');
		ok($res->{eof}, 'and the connection really closes');
	};
}
is(package_count(), $before, 'no ambiguous request wrote anything');

# 64 header lines: civetweb keeps 64 and drops the rest unseen, so the shim refuses.
$r = raw($port, "GET /system/status HTTP/1.1\r\nHost: x\r\n"
	  . join('', map { "X-H$_: v\r\n" } 1 .. 70) . "Content-Length: 40\r\n\r\n$smuggled");
my @a = answers($r->{data});
ok(@a == 1 && $a[0]{status} == 400 && $r->{eof}, 'more header lines than civetweb keeps: 400 and close')
  or diag $r->{data};

# With no header line civetweb read at all, nothing shows what it skipped:
# the answer is given and the connection closes.
$r = raw($port, "POST /jam/packages HTTP/1.1\r\n\x80X: y\r\nContent-Length: 40\r\n\r\n$smuggled");
@a = answers($r->{data});
ok(@a == 1 && $r->{eof}, 'no header line read: one answer, then the connection closes') or diag $r->{data};

# Lines ending in a bare LF are still read, pipelining included.
$r = raw($port, "GET /system/status HTTP/1.1\nHost: x\n\nGET /system/status HTTP/1.1\nHost: x\nConnection: close\n\n");
is_deeply([ map { $_->{status} } answers($r->{data}) ], [ 200, 200 ], 'bare LF line ends: two answers');

# A valid chunked body still works, and so do keep-alive requests after it.
my $chunked_text = 'chunky';
$r = raw($port, "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: Chunked\r\n\r\n"
	  . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $chunked_text, $chunked_text)
	  . "GET /system/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
@a = answers($r->{data});
is_deeply([ map { $_->{status} } @a ], [ 201, 200 ], 'Transfer-Encoding: chunked (any case): stored, and the connection goes on');

# --- Duplicate JSON member names (defect 5)

$before = package_count();
$r = $shim->request('POST', '/jam/packages',
	body => '{"service_id":"dup-a","service_id":"dup-b","payload":"aGk="}');
is_error($r, 400, 'invalid_argument', 'a repeated field: 400');
like($r->{json}{error}, qr/"service_id"/, 'naming it');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id":"dup-a","servic\u0065_id":"dup-b","payload":"aGk="}'),
	400, 'invalid_argument', 'a repeated field spelled with an escape: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id":"dup-a","payload":"aGk=","payload":"aGk="}'),
	400, 'invalid_argument', 'a repeated field with the same value: 400');
is_error($shim->request('POST', '/jam/process', body => '{"service_id":"dup-a","service_id":"dup-b"}'),
	400, 'invalid_argument', 'POST /jam/process: 400');
$r = $shim->request('POST', '/jam/packages/batch',
	body => '[{"service_id":"dup-a","payload":"aGk="},{"service_id":"dup-a","payload":"aGk=","payload":"aGV5"}]',
	headers => { 'Content-Type' => 'application/json' });
is_error($r, 400, 'invalid_argument', 'a batch with a repeated field in its second package: 400');
like($r->{json}{error}, qr/^packages\[1\]: .*"payload"/, 'naming the package and the field');
$r = $shim->request('POST', '/jam/packages/batch?service_id=dup-a',
	body => qq({"payload":"aGk="}\n{"payload":"aGk=","weight_hint":1,"weight_hint":2}\n),
	headers => { 'Content-Type' => 'application/x-ndjson' });
is_error($r, 400, 'invalid_argument', 'NDJSON with a repeated field on line 2: 400');
like($r->{json}{error}, qr/^line 2: .*"weight_hint"/, 'naming the line and the field');
$r = $shim->request('POST', '/jam/packages/batch',
	body => '[{"service_id":"dup-a","payload":"aGk=","declared_hash":null,"x":{"k":1,"k":2}}]',
	headers => { 'Content-Type' => 'application/json' });
is_error($r, 400, 'invalid_argument', 'a repeated name in a nested object: 400');
like($r->{json}{error}, qr/"k"/, 'naming it');
is(package_count(), $before, 'nothing was written');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_services WHERE service_id IN ('dup-a', 'dup-b')}),
	0, 'not even a service');
$r = $shim->request('POST', '/jam/packages', body => '{"service_id":"dup-a","payload":"aGk=","Payload":"aGk="}');
is_error($r, 400, 'invalid_argument', 'names that differ in case are not repeats (an unknown field instead)');
like($r->{json}{error}, qr/unknown field "Payload"/, 'as the unknown field it is');
is($shim->request('POST', '/jam/packages', body => '{"service_id":"dup-a","payload":"aGk="}')->{status}, 201,
	'the same package without the repeat is stored');

# --- Repeated Authorization and Content-Type headers (issue 11's decision)

$before = package_count();
$r = $shim->request('POST', '/jam/packages',
	body => $json->encode({ service_id => 'dup-auth', payload => encode_base64('two callers', '') }),
	headers => { Authorization => [ "Bearer $admin", "Bearer $reader" ] });
is_error($r, 400, 'invalid_argument', 'two Authorization headers: 400');
like($r->{json}{error}, qr/Authorization/, 'saying which header');
$r = $shim->request('POST', '/jam/packages',
	body => $json->encode({ service_id => 'dup-auth', payload => encode_base64('two callers', '') }),
	headers => { Authorization => [ "Bearer $admin", "Bearer $admin" ] });
is_error($r, 400, 'invalid_argument', 'even the same token twice: 400');
is(package_count(), $before, 'and nothing was executed');
is_error($shim->request('POST', '/jam/preimages', body => '<b>x</b>',
		headers => { 'Content-Type' => [ 'text/plain', 'text/html' ] }),
	400, 'invalid_argument', 'two Content-Type headers: 400');

# --- Request targets in absolute form, and OPTIONS * (defect 6)

my @roots = @{ $shim->request('GET', '/jam/roots')->{json} };
for my $target ("http://127.0.0.1/jam/roots", "http://jam.example/jam/roots", "HTTP://127.0.0.1:$port/jam/roots")
{
	$r = raw($port, "GET $target HTTP/1.1\r\nHost: elsewhere\r\n${auth}Connection: close\r\n\r\n");
	@a = answers($r->{data});
	subtest "GET $target" => sub {
		is(scalar @a, 1, 'an answer, not a silent close') or diag $r->{data};
		is($a[0]{status}, 200, 'status 200');
		is_deeply($a[0]{json}, \@roots, 'the roots, as GET /jam/roots gives them');
	};
}
$r = raw($port, "GET http://jam.example/jam/packages?limit=1&service_id=dup-a HTTP/1.1\r\n${auth}\r\n");
@a = answers($r->{data});
is($a[0]{status}, 200, 'the absolute form with a query');
is($a[0]{json}{limit}, 1, 'the query is read');
is($a[0]{json}{total}, 1, 'and filters');
$r = raw($port, "GET http://jam.example/jam/packages?limit=abc HTTP/1.1\r\n${auth}\r\n");
@a = answers($r->{data});
is(code_of($a[0]), 'invalid_pagination', 'its query is checked as any other');
my $abs_body = $json->encode({ service_id => 'svc-abs', payload => encode_base64('absolute', '') });
$r = raw($port, "POST http://jam.example/jam/packages HTTP/1.1\r\n${auth}Content-Type: application/json\r\n"
	  . "Content-Length: " . length($abs_body) . "\r\n\r\n$abs_body");
@a = answers($r->{data});
is($a[0]{status}, 201, 'a POST in absolute form reads its body and submits');
is($a[0]{json}{service_id}, 'svc-abs', 'the package');
$r = raw($port, "GET http://user:pw\@jam.example/jam/roots HTTP/1.1\r\n$auth\r\n");
@a = answers($r->{data});
ok(@a == 1 && $a[0]{status} == 400 && code_of($a[0]) eq 'bad_request', 'userinfo in the target: 400');
$r = raw($port, "GET http://127.0.0.1/jam/nothing HTTP/1.1\r\n$auth\r\n");
@a = answers($r->{data});
is(code_of($a[0]), 'not_found', 'an unknown path in absolute form: 404 as usual');

$r = raw($port, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
@a = answers($r->{data});
subtest 'OPTIONS *' => sub {
	is(scalar @a, 1, 'an answer') or diag $r->{data};
	is($a[0]{status}, 200, 'status 200');
	is($a[0]{headers}{allow}, 'GET, HEAD, POST, OPTIONS', 'Allow: every method the shim serves');
	like($a[0]{headers}{'content-type'}, qr{^application/json}, 'JSON');
	is_deeply($a[0]{json}, { methods => [qw(GET HEAD POST OPTIONS)] }, 'the same methods in the body');
};
$r = raw($port, "GET * HTTP/1.1\r\nHost: x\r\n\r\n");
@a = answers($r->{data});
ok(@a == 1 && $a[0]{status} == 400 && code_of($a[0]) eq 'bad_request', 'GET *: 400 as JSON');

# --- Slow clients (defect 3): a whole request within request_timeout_ms.

my $slow = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_REQUEST_TIMEOUT_MS => 3000, JAM_POOL_SIZE => 2, JAM_MAX_BODY_BYTES => 1000,
		JAM_MAX_BATCH_BODY_BYTES => 1000, JAM_MAX_BODY_MEMORY_BYTES => 1500 });

# With a thread per connection, bodies held at once have a budget of their
# own: a body that does not fit is refused before it is read.  The first
# request holds 1,000 of the 1,500 bytes once it says 100 Continue.
my $holder = connect_to($slow->port);
my $held_body = 'h' x 1000;
syswrite($holder, "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 1000\r\n"
	  . "Expect: 100-continue\r\n\r\n");
my ($continue) = read_all($holder, 0.5);
for (1 .. 20)
{
	last if $continue =~ /^HTTP\/1\.1 100 /;
	my ($more) = read_all($holder, 0.5);
	$continue .= $more;
}
like($continue, qr{^HTTP/1\.1 100 Continue}, 'a body of 1,000 bytes takes its share of the budget');
$r = raw($slow->port, "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 1000\r\n\r\n");
@a = answers($r->{data});
subtest 'a second body of 1,000 bytes does not fit' => sub {
	is(scalar @a, 1, 'an answer before any of it is sent') or diag $r->{data};
	is($a[0]{status}, 503, 'status 503');
	is(code_of($a[0]), 'server_busy', 'server_busy');
	like($a[0]{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'Retry-After');
	ok($r->{eof}, 'and the connection closes');
};
syswrite($holder, $held_body);
my ($held_answer) = read_all($holder, 10);
like($held_answer, qr{^HTTP/1\.1 201 }, 'the first is stored');
close $holder;
$r = raw($slow->port, "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\nContent-Length: 1000\r\n\r\n"
	  . ('g' x 1000));
like($r->{data}, qr{^HTTP/1\.1 201 }, 'and gives its share back');

# Sends $first, then one byte of $trickle every half second, until the
# shim closes the connection (at most 20 s): {data, eof, seconds, sent}.
sub trickle
{
	my ($target, $first, $trickle) = @_;
	my $sock = connect_to($target->port);
	my $t0 = time;
	my ($data, $sent) = ('', 0);
	local $SIG{PIPE} = 'IGNORE';
	syswrite($sock, $first) if length $first;
	while (time - $t0 < 20)
	{
		my ($more, $eof) = read_all($sock, 0.5);
		$data .= $more;
		return { data => $data, eof => 1, seconds => time - $t0, sent => $sent } if $eof;
		$sent += syswrite($sock, substr($trickle, $sent, 1)) // 0 if $sent < length $trickle;
	}
	return { data => $data, eof => 0, seconds => time - $t0, sent => $sent };
}

my %trickled = (
	'a body trickled a byte every half second' =>
	  [ "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 100\r\n\r\n", 'b' x 100 ],
	'a request head trickled a byte every half second' =>
	  [ "GET /system/status HTTP/1.1\r\nHost: x\r\nX-Slow: ", 'a' x 100 ],
	'a body that stops' =>
	  [ "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 100\r\n\r\nabc", '' ],
	'a chunked body trickled' =>
	  [ "POST /jam/preimages HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n64\r\n", 'c' x 100 ],
);
for my $name (sort keys %trickled)
{
	my $res = trickle($slow, @{ $trickled{$name} });
	my @ans = answers($res->{data});
	subtest "JAM_REQUEST_TIMEOUT_MS=3000, $name" => sub {
		ok($res->{eof}, 'the shim closes the connection');
		cmp_ok($res->{seconds}, '<', 10, 'well before 10 s');
		is(scalar @ans, 1, 'after one answer') or diag $res->{data};
		is($ans[0]{status}, 408, 'status 408');
		is(code_of($ans[0]), 'request_timeout', 'request_timeout');
		is($ans[0]{headers}{connection}, 'close', 'Connection: close');
	};
}
$r = raw($slow->port, '', wait => 20);
ok($r->{eof} && $r->{seconds} < 10, 'a connection that sends nothing is closed well before 10 s');
is($r->{data}, '', 'without an answer (there was no request)');
my $status = $slow->request('GET', '/system/status')->{json};
ok($status->{http}{connections}{timed_out} >= 5, '/system/status counts the timeouts');
is($status->{http}{request_timeout_ms}, 3000, 'and shows the timeout');
is($slow->stop, 0, 'that shim stops');

# --- Idle connections are shed when every worker is taken.

my $small = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_THREADS => 4, JAM_POOL_SIZE => 2, JAM_KEEP_ALIVE_TIMEOUT_MS => 60000,
		JAM_MAX_CONNECTIONS_PER_CLIENT => 0 });

# Sends a request on a connection that stays open; returns the answer's status.
sub ask
{
	my ($sock) = @_;
	my $data = '';
	my $sel = IO::Select->new($sock);
	syswrite($sock, "GET /system/status HTTP/1.1\r\nHost: x\r\n\r\n");
	while ($sel->can_read(10))
	{
		last unless sysread($sock, my $chunk, 65536);
		$data .= $chunk;
		my @ans = answers($data);
		return $ans[0]{status} if @ans;
	}
	return undef;
}

# Waits (up to 10 s) until a shim holds no connection but the one asking,
# which comes from another address: earlier clients' closes have landed.
sub settle
{
	my ($target) = @_;
	for (1 .. 100)
	{
		my $res = raw($target->port, "GET /system/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			local => '127.0.0.99');
		my @ans = answers($res->{data});
		return 1 if @ans && $ans[0]{json} && $ans[0]{json}{http}{connections}{open} == 1;
		usleep(100_000);
	}
	return 0;
}

# Whether the shim has closed a connection (within $wait seconds).
sub closed_by_shim
{
	my ($sock, $wait) = @_;
	my (undef, $eof) = read_all($sock, $wait);
	return $eof;
}

ok(settle($small), 'the small shim holds no connection');
my @kept = map { connect_to($small->port) } 1 .. 4;
is_deeply([ map { ask($_) } @kept ], [ (200) x 4 ], 'four kept-alive connections take the four workers');
my $t0 = time;
$r = HTTP::Tiny->new(timeout => 10)->get($small->url('/system/status'));
is($r->{status}, 200, 'a fifth client is still answered');
cmp_ok(time - $t0, '<', 5, 'within 5 s (the idle ones may keep their workers for a minute)');
is(scalar(grep { closed_by_shim($_, 2) } @kept), 1, 'by shedding the connection idle the longest');

my @fresh = map { connect_to($small->port) } 1 .. 4;
usleep(1_500_000);
$t0 = time;
$r = HTTP::Tiny->new(timeout => 10)->get($small->url('/system/status'));
is($r->{status}, 200, 'with four connections that never sent a request, a new client is answered');
cmp_ok(time - $t0, '<', 5, 'within 5 s');
ok((grep { closed_by_shim($_, 2) } @fresh) >= 1, 'by shedding one that waited over a second');
close $_ for @kept, @fresh;
$status = $small->request('GET', '/system/status')->{json}{http}{connections};
ok($status->{shed} >= 2, '/system/status counts the shed connections');
is($status->{capacity}, 4, 'and the capacity');
is($small->stop, 0, 'that shim stops');

# --- At most JAM_MAX_CONNECTIONS_PER_CLIENT connections per address.

my $limited = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_MAX_CONNECTIONS_PER_CLIENT => 3, JAM_POOL_SIZE => 2 });
ok(settle($limited), 'the limited shim holds no connection');
my @three = map { connect_to($limited->port) } 1 .. 3;
$r = raw($limited->port, '', wait => 10);
@a = answers($r->{data});
subtest 'a fourth connection from the same address' => sub {
	is(scalar @a, 1, 'gets an answer without sending anything') or diag $r->{data};
	is($a[0]{status}, 429, 'status 429');
	is(code_of($a[0]), 'too_many_connections', 'too_many_connections');
	like($a[0]{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'Retry-After');
	ok($r->{eof}, 'and is closed');
	cmp_ok($r->{seconds}, '<', 5, 'at once');
};
$r = raw($limited->port, "GET /system/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", local => '127.0.0.2');
@a = answers($r->{data});
is($a[0]{status}, 200, 'another address is served meanwhile');
close $three[0];
my $again;
for (1 .. 50)
{
	$r = raw($limited->port, "GET /system/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	@a = answers($r->{data});
	if (@a && $a[0]{status} == 200) { $again = $a[0]; last }
	usleep(100_000);
}
ok($again, 'once one of the three closes, the address is served again');
ok($again && $again->{json}{http}{connections}{refused_per_client} >= 1, '/system/status counts the refusal');
is($again && $again->{json}{http}{connections}{max_per_client}, 3, 'and shows the limit');
close $_ for @three;
is($limited->stop, 0, 'that shim stops');

# --- 1,000 slow and idle connections, and a well-behaved request.
#
# The connections come from 20 loopback addresses (50 each, under the
# default limit of 64 per address), half of them idle, half trickling a
# request head a byte every 2 s.  They are opened by a helper process whose
# descriptor limit a shell raises (the postgres user's soft limit is often
# 1024).  The helper gives up by itself after 30 s.

my $helper_code = <<'HELPER';
use strict;
use warnings;
use IO::Socket::INET;
use IO::Handle;
use Time::HiRes qw(time sleep);
my ($port, $addresses, $per_address, $life) = @ARGV;
$SIG{PIPE} = 'IGNORE';
alarm($life + 5);
my (@idle, @trickle);
# A server that stops accepting makes connect wait: keep what is open, and go on.
OPEN: for my $a (0 .. $addresses - 1)
{
	for my $k (1 .. $per_address)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
			LocalAddr => '127.0.0.' . (2 + $a), Timeout => 5);
		if (!$s)
		{
			warn "connect: $!\n";
			last OPEN;
		}
		if ($k % 2) { push @trickle, [ $s, 0 ] } else { push @idle, $s }
	}
}
my $head = "GET /system/status HTTP/1.1\r\nHost: x\r\nX-Slow: " . ('s' x 1000);
print 'ready ', scalar(@idle) + scalar(@trickle), "\n";
STDOUT->flush;
my $end = time + $life;
while (time < $end)
{
	for my $t (@trickle)
	{
		syswrite($t->[0], substr($head, $t->[1]++, 1)) if $t->[1] < length $head;
	}
	sleep 2;
}
HELPER
my ($hfh, $helper_file) = tempfile('slow_clients_XXXX', DIR => $PostgreSQL::Test::Utils::tmp_check, SUFFIX => '.pl');
print $hfh $helper_code;
close $hfh;

SKIP:
{
	my $hard = `sh -c 'ulimit -Hn'`;
	chomp $hard;
	skip "the descriptor limit ($hard) is below 1,100", 4 if $hard ne 'unlimited' && $hard < 1100;
	my ($out, $err) = ('', '');
	my $helper = IPC::Run::start(
		[ 'sh', '-c', 'ulimit -n 1100 && exec "$0" "$@"', $^X, $helper_file, $port, 20, 50, 30 ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my $deadline = time + 60;
	$helper->pump while $out !~ /ready \d+/ && $helper->pumpable && time < $deadline;
	my ($opened) = $out =~ /ready (\d+)/;
	is($opened, 1000, 'the helper holds 1,000 connections open') or diag $err;
	sleep 5;    # two rounds of trickling

	$t0 = time;
	$r = HTTP::Tiny->new(timeout => 30)->get($shim->url('/system/status'));
	my $took = time - $t0;
	is($r->{status}, 200, 'a well-behaved GET /system/status is answered');
	cmp_ok($took, '<', 5, 'within 5 s');
	my $open = $r->{status} == 200 ? decode_json($r->{content})->{http}{connections}{open} : 0;
	cmp_ok($open, '>=', 1000, 'while the shim holds the 1,000 slow and idle connections open');
	$helper->kill_kill;
}

# --- SIGTERM with a request blocked in Postgres (defect 4)

my $grace_ms = 1000;
my $stopping = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_SHUTDOWN_GRACE_MS => $grace_ms, JAM_POOL_SIZE => 2 });
$node->safe_psql('postgres', q{SELECT jam.jam_submit_package('svc-lock', 'first'::bytea)});
my $count_lock = q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id = 'svc-lock'};
is($node->safe_psql('postgres', $count_lock), 1, 'svc-lock has one package');

my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe(q{SELECT 1 FROM jam.jam_services WHERE service_id = 'svc-lock' FOR UPDATE});

my $locked_body = $json->encode({ service_id => 'svc-lock', payload => encode_base64('blocked', '') });
my $sock = connect_to($stopping->port);
syswrite($sock, "POST /jam/packages HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\n"
	  . "Content-Length: " . length($locked_body) . "\r\n\r\n$locked_body");
my $waiting;
for (1 .. 300)
{
	$waiting = $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		WHERE application_name LIKE 'jam-shim trace=%' AND wait_event_type = 'Lock'});
	last if $waiting;
	usleep(50_000);
}
is($waiting, 1, 'the submit waits for the row lock in Postgres');

$t0 = time;
$stopping->term;
my ($data, $eof) = read_all($sock, $grace_ms / 1000 + 10);
my $took = time - $t0;
@a = answers($data);
subtest 'SIGTERM: the blocked request' => sub {
	is(scalar @a, 1, 'is answered (not EOF)') or diag $data;
	is($a[0]{status}, 503, 'status 503');
	is(code_of($a[0]), 'shutting_down', 'shutting_down');
	like($a[0]{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'Retry-After');
	is($a[0]{headers}{connection}, 'close', 'Connection: close');
	cmp_ok($took, '<', $grace_ms / 1000 + 10, 'within the grace period and a margin');
};
# Its last log line comes just before it returns from main().
my $stopped;
for (1 .. 150)
{
	if ($stopping->stderr_text =~ /"msg":"stopped"/) { $stopped = 1; last }
	usleep(100_000);
}
ok($stopped, 'the shim stops without waiting for the lock');
is($stopping->wait_exit, 0, 'and exits 0') if $stopped;
like($stopping->stderr_text, qr/grace period over: cancelled 1 statements/, 'its log says it cancelled the statement');

$locker->query_safe('ROLLBACK');
$locker->quit;
is($node->safe_psql('postgres', $count_lock), 1, 'the cancelled package was not committed');

# --- The main shim's metrics show the connections; it stops cleanly.

$r = $shim->request('GET', '/metrics');
like($r->{content}, qr/^jam_shim_http_connections_open \d+$/m, '/metrics: open connections');
like($r->{content}, qr/^jam_shim_http_connections_refused_total\{reason="per_client"\} \d+$/m, 'refusals');
like($r->{content}, qr/^jam_shim_http_connections_cut_total\{reason="timeout"\} \d+$/m, 'cuts');
is($shim->stop, 0, 'the shim stops cleanly');

$node->stop;
done_testing();
