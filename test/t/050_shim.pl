# The HTTP shim end to end: a cluster with jam, jam-shim on loopback, and
# real HTTP for every route of the design and every error status: auth,
# 413 by Content-Length, chunked and Expect, 404, 405 with Allow, 415,
# 422, 429 with Retry-After, 503 while Postgres is down and recovery,
# malformed JSON, bad hashes and pagination, HEAD, ETag and 304, trace
# ids, keep-alive, /metrics as Prometheus text, TLS, configuration, and a
# clean shutdown that finishes the request in flight.
#
# No timing is asserted: loops that wait for something (the shim starting,
# a reload reaching the backends, Postgres coming back) only bound how long
# the test waits before failing.

use strict;
use warnings;

use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::Shim;

my $max_body = 65536;
my $node = jam_node('shim',
	"log_line_prefix = '%m [%p] %a '",
	"jam.allowed_media_types = 'text/*, application/octet-stream, application/x-test'");
my $json = JSON::PP->new->canonical;
sub hash_hex { return unpack('H*', blake2b($_[0], 32)) }

# --- Who the shim is.  With capabilities (issue 4) it logs in as a member
# of jam_api and every request carries a token; the extension then
# enforces scopes, services and rate limits.  Without them (an extension
# built before jam_authenticate existed) the test stands in a
# jam_authenticate that accepts everything, so that the shim's statements
# run unchanged, and skips the auth checks.
my $has_auth = $node->safe_psql('postgres',
	q{SELECT to_regprocedure('jam.jam_authenticate(text)') IS NOT NULL}) eq 't';
my $has_metrics = $node->safe_psql('postgres',
	q{SELECT to_regproc('jam.jam_metrics') IS NOT NULL}) eq 't';
my ($admin, $reader, $svc1_only);
my $shim_user = 'postgres';
if ($has_auth)
{
	# As README advises: statements logged with their duration, parameters
	# (the bearer token among them) never.
	$node->safe_psql('postgres', q{
		CREATE ROLE jam_shim LOGIN IN ROLE jam_api;
		ALTER ROLE jam_shim SET log_parameter_max_length = 0;
		ALTER ROLE jam_shim SET log_parameter_max_length_on_error = 0;
		ALTER ROLE jam_shim SET log_min_duration_statement = 0;
	});
	$shim_user = 'jam_shim';
	$admin = $node->safe_psql('postgres',
		q{SELECT jam.jam_create_token('admin', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
	$reader = $node->safe_psql('postgres',
		q{SELECT jam.jam_create_token('reader', ARRAY['jam:read'])});
	$svc1_only = $node->safe_psql('postgres',
		q{SELECT jam.jam_create_token('svc1', ARRAY['jam:read','jam:submit'], ARRAY['svc-1'])});
}
else
{
	$node->safe_psql('postgres', q{
		CREATE FUNCTION jam.jam_authenticate(token text) RETURNS jsonb
		LANGUAGE sql AS 'SELECT NULL::jsonb'});
	note 'jam_authenticate is not in this build: auth checks skip';
}
# The header raw requests carry.
my $auth = $has_auth ? "Authorization: Bearer $admin\r\n" : '';
my $dsn = sprintf('host=%s port=%d dbname=postgres user=%s', $node->host, $node->port, $shim_user);

my $shim = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_MAX_BODY_BYTES => $max_body, JAM_POOL_SIZE => 4, JAM_THREADS => 8 });

# Every error is {"error": text, "code": code} as JSON, with that status.
sub is_error
{
	my ($r, $status, $code, $name) = @_;
	subtest $name => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
		ok(ref $r->{json} eq 'HASH', 'a JSON object') or diag $r->{content};
		is_deeply([ sort keys %{ $r->{json} // {} } ], [ 'code', 'error' ], 'exactly error and code');
		is($r->{json}{code}, $code, "code $code");
		ok(length($r->{json}{error} // '') > 0, 'a message for a person');
		is($r->{headers}{'content-length'}, length($r->{content}), 'Content-Length');
	};
}

# --- /system/status and /jam/status

my $r = $shim->request('GET', '/system/status');
is($r->{status}, 200, 'GET /system/status');
is($r->{json}{database}{reachable}, JSON::PP::true, 'the database is reachable');
is($r->{json}{pool}{size}, 4, 'the pool has JAM_POOL_SIZE connections');
ok($r->{json}{database}{error_codes_loaded} >= 25, 'the error table came from jam_error_codes()');
like($r->{json}{version}, qr/^\d+\.\d+\.\d+$/, 'a version');
ok($r->{json}{uptime_seconds} >= 0, 'an uptime');

$r = $shim->request('GET', '/jam/status');
is($r->{status}, 200, 'GET /jam/status');
is($r->{json}{enabled}, JSON::PP::true, 'jam_status() through the shim');
like($r->{json}{verifier_key}, qr/^jam\+[0-9a-f]{8}\+/, 'with the verifier key');
is($r->{headers}{'cache-control'}, 'no-store', 'JSON answers are not cached');

# --- Preimages

my $text = "hello, shim\n";
my $h = hash_hex($text);
$r = $shim->request('POST', '/jam/preimages', body => $text,
	headers => { 'Content-Type' => 'text/plain; charset=utf-8' });
is($r->{status}, 201, 'POST /jam/preimages stores a new preimage: 201');
is($r->{json}{hash}, $h, 'its hash is BLAKE2b-256 of the bytes');
is($r->{json}{created}, JSON::PP::true, 'created');
is($r->{headers}{location}, "/jam/preimages/$h", 'Location');
$r = $shim->request('POST', '/jam/preimages', body => $text,
	headers => { 'Content-Type' => 'text/plain; charset=utf-8' });
is($r->{status}, 200, 'the same bytes again: 200');
is($r->{json}{created}, JSON::PP::false, 'not created');

my $blob = join '', map { chr(($_ * 7) % 256) } 0 .. 4999;
my $bh = hash_hex($blob);
$r = $shim->request('POST', '/jam/preimages', body => $blob);
is($r->{status}, 201, 'binary bytes without a Content-Type');
is($r->{json}{media_type}, 'application/octet-stream', 'default media type');

$r = $shim->request('GET', "/jam/preimages/$bh");
is($r->{status}, 200, 'GET a preimage');
ok($r->{content} eq $blob, 'the same bytes back');
is($r->{headers}{etag}, qq{"$bh"}, 'ETag is the quoted hash');
is($r->{headers}{'content-length'}, 5000, 'Content-Length');
is($r->{headers}{'content-type'}, 'application/octet-stream', 'Content-Type is its media type');
is($r->{headers}{'x-content-type-options'}, 'nosniff', 'nosniff');

$r = $shim->request('GET', "/jam/preimages/$h");
is($r->{headers}{'content-type'}, 'text/plain; charset=utf-8', 'the stored media type');

$r = $shim->request('HEAD', "/jam/preimages/$bh");
is($r->{status}, 200, 'HEAD a preimage');
is($r->{content}, '', 'no body');
is($r->{headers}{'content-length'}, 5000, 'the length of the body GET would send');
is($r->{headers}{etag}, qq{"$bh"}, 'and its ETag');

$r = $shim->request('GET', "/jam/preimages/$bh", headers => { 'If-None-Match' => qq{"$bh"} });
is($r->{status}, 304, 'If-None-Match with its ETag: 304');
is($r->{content}, '', '304 has no body');
is($r->{headers}{etag}, qq{"$bh"}, '304 repeats the ETag');
$r = $shim->request('GET', "/jam/preimages/$bh",
	headers => { 'If-None-Match' => qq{"abc", W/"$bh"} });
is($r->{status}, 304, 'a weak tag in a list matches too');
$r = $shim->request('GET', "/jam/preimages/$bh", headers => { 'If-None-Match' => qq{"$h"} });
is($r->{status}, 200, 'another tag: the bytes');
$r = $shim->request('GET', '/jam/preimages/' . ('ab' x 32), headers => { 'If-None-Match' => '*' });
is_error($r, 404, 'preimage_not_found', 'If-None-Match: * of a missing preimage is still 404');

$r = $shim->request('GET', "/jam/preimages/$bh/meta");
is($r->{status}, 200, 'GET meta');
is_deeply([ @{ $r->{json} }{qw(hash size media_type refcount storage_class)} ],
	[ $bh, 5000, 'application/octet-stream', 0, 'inline' ], 'the stat fields');
ok(defined $r->{json}{created_at}, 'created_at');

is_error($shim->request('GET', '/jam/preimages/XYZ'), 400, 'invalid_hash', 'a malformed hash: 400');
is_error($shim->request('GET', '/jam/preimages/' . uc($bh) . '/meta'), 400, 'invalid_hash',
	'an uppercase hash: 400');
is_error($shim->request('GET', '/jam/preimages/' . ('0' x 64)), 404, 'preimage_not_found',
	'an unknown hash: 404');
is_error($shim->request('GET', '/jam/preimages/%zz'), 400, 'invalid_argument',
	'a malformed percent escape: 400');
is_error($shim->request('GET', '/jam/preimages/a%00b'), 400, 'invalid_argument',
	'an encoded NUL: 400');
is_error($shim->request('POST', '/jam/preimages', body => 'x',
		headers => { 'Content-Type' => 'image/png' }),
	415, 'media_type_not_allowed', 'a media type outside jam.allowed_media_types: 415');
is_error($shim->request('POST', '/jam/preimages', body => 'x',
		headers => { 'Content-Type' => 'nonsense' }),
	400, 'invalid_media_type', 'a malformed media type: 400');

# --- Packages

my %pkg = (service_id => 'svc-1', payload => encode_base64('payload one', ''));
$r = $shim->request('POST', '/jam/packages', body => $json->encode(\%pkg),
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 201, 'POST /jam/packages: 201');
my $pid = $r->{json}{id};
like($pid, qr/^[0-9a-f]{64}$/, 'a package id');
is($r->{json}{status}, 'pending', 'pending');
ok(!exists $r->{json}{receipt}, 'no receipt unless asked for');
is($r->{headers}{location}, "/jam/packages/$pid", 'Location');
is($pid, $node->safe_psql('postgres',
		q{SELECT jam.jam_package_id('svc-1', convert_to('payload one', 'UTF8'))}),
	'the id jam_package_id computes');

$r = $shim->request('POST', '/jam/packages?include_receipt=true', body => $json->encode(\%pkg));
is($r->{status}, 200, 'the same package again: 200');
is($r->{json}{created}, JSON::PP::false, 'not created');
is($r->{json}{receipt}{hash}, $pid, 'include_receipt=true: the receipt');
is($r->{json}{receipt}{tree_size}, 1, 'its log position');

$r = $shim->request('POST', '/jam/packages?include_receipt=true', body => $json->encode({
	service_id => 'svc-1', payload => encode_base64('with refs', ''),
	contract_version => 1, weight_hint => 2, preimage_hashes => [ $h, $bh ],
	declared_hash => $node->safe_psql('postgres',
		qq{SELECT jam.jam_package_id('svc-1', convert_to('with refs', 'UTF8'), 1, 2, ARRAY['$h', '$bh'])}) }));
is($r->{status}, 201, 'a package with every field');
is($r->{json}{weight_hint}, 2, 'weight_hint passed');
is_deeply($r->{json}{preimage_hashes}, [ $h, $bh ], 'preimage_hashes passed in order');
ok(exists $r->{json}{receipt}, 'include_receipt=true on a new package');
my $pid2 = $r->{json}{id};

is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "svc-1", "payload": '),
	400, 'invalid_json', 'truncated JSON: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "svc-1",}'),
	400, 'invalid_json', 'a trailing comma: 400');
is_error($shim->request('POST', '/jam/packages', body => '[1, 2]'),
	400, 'invalid_json', 'not an object: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": ""} x'),
	400, 'invalid_json', 'data after the JSON: 400');
is_error($shim->request('POST', '/jam/packages', body => ''),
	400, 'invalid_json', 'an empty body: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "a*b="}'),
	400, 'invalid_argument', 'a payload that is not base64: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"payload": ""}'),
	400, 'invalid_argument', 'no service_id: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "weight": 1}'),
	400, 'invalid_argument', 'an unknown field: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "weight_hint": "2"}'),
	400, 'invalid_argument', 'a weight_hint that is a string: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "weight_hint": 1e99}'),
	400, 'invalid_argument', 'a weight_hint that is not an integer: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "preimage_hashes": [1]}'),
	400, 'invalid_argument', 'preimage_hashes with a number: 400');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "bad id!", "payload": ""}'),
	400, 'invalid_service_id', 'a bad service id: 400 from the extension');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "weight_hint": 0}'),
	400, 'invalid_weight', 'weight_hint 0: 400 from the extension');
is_error($shim->request('POST', '/jam/packages', body => '{"service_id": "s", "payload": "", "preimage_hashes": ["nope"]}'),
	400, 'invalid_hash', 'a malformed preimage hash: 400');
is_error($shim->request('POST', '/jam/packages?include_receipt=maybe', body => $json->encode(\%pkg)),
	400, 'invalid_argument', 'include_receipt must be a boolean');
is_error($shim->request('POST', '/jam/packages', body => $json->encode({ %pkg, declared_hash => 'ab' x 32 })),
	422, 'hash_mismatch', 'a wrong declared hash: 422');
is_error($shim->request('POST', '/jam/packages', body => $json->encode({ %pkg, contract_version => 99 })),
	422, 'unsupported_contract_version', 'an unknown contract version: 422');
is_error($shim->request('POST', '/jam/packages', body => $json->encode({ %pkg, preimage_hashes => [ 'cd' x 32 ] })),
	422, 'missing_preimage', 'a reference to a missing preimage: 422');
# A quote or backslash inside an array element stays inside it.
is_error($shim->request('POST', '/jam/packages', body => $json->encode({ %pkg, preimage_hashes => [ 'a","b', 'c\\' ] })),
	400, 'invalid_hash', 'array elements are quoted, not spliced');

$r = $shim->request('GET', "/jam/packages/$pid");
is($r->{status}, 200, 'GET /jam/packages/{id}');
is($r->{json}{payload}, encode_base64('payload one', ''), 'with its payload in base64');
is_error($shim->request('GET', '/jam/packages/' . ('ef' x 32)), 404, 'package_not_found', 'an unknown package: 404');
is_error($shim->request('GET', "/jam/packages/$pid/report"), 404, 'report_not_found',
	'no report before processing: 404');

# --- Lists

$r = $shim->request('GET', '/jam/packages?service_id=svc-1&limit=1');
is($r->{status}, 200, 'GET /jam/packages');
is_deeply([ sort keys %{ $r->{json} } ], [qw(items limit next_offset offset total)], 'the paginated envelope');
is(scalar @{ $r->{json}{items} }, 1, 'limit=1: one item');
is($r->{json}{total}, 2, 'total');
is($r->{json}{next_offset}, 1, 'next_offset');
$r = $shim->request('GET', '/jam/packages?service_id=svc-1&limit=1&offset=1');
is($r->{json}{next_offset}, undef, 'the last page has no next_offset');
$r = $shim->request('GET', '/jam/packages?status=pending&service_id=');
is($r->{json}{total}, 2, 'an empty parameter counts as absent');

is_error($shim->request('GET', '/jam/packages?limit=1000000'), 400, 'invalid_pagination', 'limit above 1000: 400');
is_error($shim->request('GET', '/jam/packages?limit=99999999999999999999'), 400, 'invalid_pagination',
	'a limit beyond any integer: 400');
is_error($shim->request('GET', '/jam/packages?limit=-1'), 400, 'invalid_pagination', 'a negative limit: 400');
is_error($shim->request('GET', '/jam/packages?offset=-5'), 400, 'invalid_pagination', 'a negative offset: 400');
is_error($shim->request('GET', '/jam/packages?offset=1.5'), 400, 'invalid_pagination', 'a fractional offset: 400');
is_error($shim->request('GET', '/jam/packages?status=bogus'), 400, 'invalid_status', 'an unknown status: 400');
is_error($shim->request('GET', '/jam/packages?colour=red'), 400, 'invalid_argument', 'an unknown parameter: 400');
is_error($shim->request('GET', '/jam/packages?limit=1&limit=2'), 400, 'invalid_argument',
	'a parameter given twice: 400');

# The legacy array, when jam.legacy_list_response is on.  A reload reaches
# the pooled sessions at their next statement; wait until one has it.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jam.legacy_list_response = on');
$node->reload;
my $legacy;
for (1 .. 300)
{
	$r = $shim->request('GET', '/jam/packages?service_id=svc-1');
	if (ref $r->{json} eq 'ARRAY') { $legacy = $r; last }
	usleep(100_000);
}
ok($legacy && @{ $legacy->{json} } == 2, 'jam.legacy_list_response: the plain array');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jam.legacy_list_response');
$node->reload;
for (1 .. 300)
{
	last if ref $shim->request('GET', '/jam/packages?service_id=svc-1')->{json} eq 'HASH';
	usleep(100_000);
}

# --- Processing, reports, the log

$r = $shim->request('POST', '/jam/process', body => '{"service_id": "svc-1"}');
is($r->{status}, 200, 'POST /jam/process with a JSON body');
is($r->{json}{package_id}, $pid, 'the oldest pending package of the service');
is($r->{json}{status}, 'applied', 'applied');
my $report_hash = $r->{json}{report_hash};
$r = $shim->request('POST', '/jam/process?service_id=svc-1');
is($r->{status}, 200, 'POST /jam/process?service_id=');
is($r->{json}{package_id}, $pid2, 'the next one');
$r = $shim->request('POST', '/jam/process?service_id=svc-1');
is($r->{status}, 204, 'nothing pending: 204');
is($r->{content}, '', '204 has no body');
$r = $shim->request('POST', '/jam/process');
is($r->{status}, 204, 'nothing pending anywhere: 204');
is_error($shim->request('POST', '/jam/process?service_id=a', body => '{"service_id": "b"}'),
	400, 'invalid_argument', 'two different services: 400');
is_error($shim->request('POST', '/jam/process', body => '{"service": "b"}'),
	400, 'invalid_argument', 'an unknown field: 400');
is_error($shim->request('POST', '/jam/process', body => 'nope'), 400, 'invalid_json', 'not JSON: 400');

$r = $shim->request('GET', "/jam/packages/$pid/report");
is($r->{status}, 200, 'GET /jam/packages/{id}/report');
is($r->{json}{report_hash}, $report_hash, 'the report');
$r = $shim->request('GET', "/jam/packages/$pid/attestations");
is($r->{status}, 200, 'GET /jam/packages/{id}/attestations');
ok(ref $r->{json} eq 'ARRAY' && @{ $r->{json} } >= 1, 'its attestations');

$r = $shim->request('GET', '/jam/reports?service_id=svc-1&status=applied&limit=10');
is($r->{status}, 200, 'GET /jam/reports');
is($r->{json}{total}, 2, 'both reports');
is_error($shim->request('GET', '/jam/reports?limit=0'), 400, 'invalid_pagination', 'limit 0: 400');

$r = $shim->request('GET', "/jam/receipts/$pid");
is($r->{status}, 200, 'GET /jam/receipts/{hash}');
is($r->{json}{seq}, 0, 'the receipt of the first entry');
ok(ref $r->{json}{inclusion}{proof} eq 'ARRAY', 'with its inclusion proof');
is($node->safe_psql('postgres', sprintf(q{SELECT jam.jam_verify_inclusion('%s', %d, %d, '%s'::text[], '%s')},
			$r->{json}{leaf_hash}, $r->{json}{seq}, $r->{json}{inclusion}{tree_size},
			'{' . join(',', @{ $r->{json}{inclusion}{proof} }) . '}', $r->{json}{inclusion}{root})),
	't', 'the proof verifies');
is_error($shim->request('GET', '/jam/receipts/' . ('12' x 32)), 404, 'receipt_not_found', 'no such entry: 404');

$r = $shim->request('GET', '/jam/roots');
is($r->{status}, 200, 'GET /jam/roots');
my ($svc1_head) = grep { $_->{service_id} eq 'svc-1' } @{ $r->{json} };
is($svc1_head->{tree_size}, 4, 'svc-1: two packages and two reports');

$r = $shim->request('GET', '/jam/services/svc-1/checkpoint');
is($r->{status}, 200, 'GET /jam/services/{id}/checkpoint');
like($r->{headers}{'content-type'}, qr{^text/plain}, 'text/plain');
like($r->{content}, qr{^jam/svc-1\n4\n[A-Za-z0-9+/=]{44}\n\n\xe2\x80\x94 jam }, 'a signed checkpoint note')
  or diag $r->{content};
my $verifier = $node->safe_psql('postgres', q{SELECT jam.jam_status()->>'verifier_key'});
my $note = $r->{content};
$note =~ s/'/''/g;
is($node->safe_psql('postgres', "SELECT jam.jam_verify_checkpoint('$note', '$verifier')"), 't',
	'the note verifies with the node key');
is_error($shim->request('GET', '/jam/services/nope/checkpoint'), 404, 'service_not_found', 'an unknown service: 404');
is_error($shim->request('GET', '/jam/services/bad%20id/checkpoint'), 400, 'invalid_service_id',
	'a bad service id in the path: 400');

# --- Routing

is_error($shim->request('GET', '/jam/nothing'), 404, 'not_found', 'an unknown path: 404');
is_error($shim->request('GET', '/'), 404, 'not_found', '/: 404');
is_error($shim->request('GET', '/jam/status/'), 404, 'not_found', 'a trailing slash: 404');
is_error($shim->request('GET', '/jam/preimages/a%2Fb/meta/x'), 404, 'not_found', 'an extra segment: 404');
$r = $shim->request('DELETE', '/jam/packages');
is_error($r, 405, 'method_not_allowed', 'DELETE /jam/packages: 405');
is($r->{headers}{allow}, 'GET, HEAD, POST, OPTIONS', 'Allow lists the methods');
$r = $shim->request('GET', '/jam/process');
is_error($r, 405, 'method_not_allowed', 'GET /jam/process: 405');
is($r->{headers}{allow}, 'POST, OPTIONS', 'Allow: POST, OPTIONS');
$r = $shim->request('POST', '/jam/roots', body => '{}');
is_error($r, 405, 'method_not_allowed', 'POST /jam/roots: 405');
is($r->{headers}{allow}, 'GET, HEAD, OPTIONS', 'Allow: GET, HEAD, OPTIONS');
$r = $shim->request('OPTIONS', '/jam/preimages');
is($r->{status}, 204, 'OPTIONS: 204');
is($r->{headers}{allow}, 'POST, OPTIONS', 'with Allow');
$r = $shim->request('HEAD', '/jam/roots');
is($r->{status}, 200, 'HEAD of a JSON route');
is($r->{content}, '', 'without the body');
ok($r->{headers}{'content-length'} > 2, 'but with its length');

# --- Bodies over the cap, raw: the 413 comes before the body is read.

# Opens a connection, sends $head (and then $body, if given), and returns
# everything the shim sends until it closes the connection.
sub raw_exchange
{
	my ($head, $body, $read_first) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->port, Timeout => 60)
	  or die "connect: $!";
	print $sock $head;
	my $first = '';
	if ($read_first)
	{
		# Read the interim or final answer before deciding to send a body.
		my $sel = IO::Select->new($sock);
		while ($first !~ /\r\n\r\n/ && $sel->can_read(60))
		{
			my $n = sysread($sock, my $chunk, 65536);
			last unless $n;
			$first .= $chunk;
		}
		return ($first, undef) if $first !~ /^HTTP\/1\.1 100 /;
	}
	print $sock $body if defined $body;
	my $all = '';
	my $sel = IO::Select->new($sock);
	while ($sel->can_read(60))
	{
		my $n = sysread($sock, my $chunk, 65536);
		last unless $n;
		$all .= $chunk;
	}
	close $sock;
	return ($first, $all);
}

my ($first, $rest) = raw_exchange(
	"POST /jam/preimages HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n", undef);
like($rest, qr{^HTTP/1\.1 413 }, 'Content-Length of 10 GB: 413 without sending a byte of body');
like($rest, qr{"code": "payload_too_large"}, 'payload_too_large');
like($rest, qr{\r\nConnection: close\r\n}i, 'and the connection closes (no draining of the body)');

($first, $rest) = raw_exchange(
	"POST /jam/packages HTTP/1.1\r\nHost: t\r\nContent-Length: " . ($max_body + 1)
	  . "\r\nExpect: 100-continue\r\n\r\n", 'x' x ($max_body + 1), 1);
like($first, qr{^HTTP/1\.1 413 }, 'Expect: 100-continue over the cap: 413 instead of 100 Continue');

my $ok_body = 'y' x 1000;
($first, $rest) = raw_exchange(
	"POST /jam/preimages HTTP/1.1\r\nHost: t\r\n${auth}Connection: close\r\nContent-Length: 1000\r\n"
	  . "Expect: 100-continue\r\n\r\n", $ok_body, 1);
like($first, qr{^HTTP/1\.1 100 Continue\r\n\r\n}, 'Expect: 100-continue under the cap: 100 Continue');
like($rest, qr{^HTTP/1\.1 201 }, 'then the body is read and stored');

my $chunk = 'z' x 4096;
my $chunked = '';
$chunked .= sprintf("%x\r\n%s\r\n", length $chunk, $chunk) for 1 .. int($max_body / 4096) + 2;
$chunked .= "0\r\n\r\n";
($first, $rest) = raw_exchange(
	"POST /jam/preimages HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	  . $chunked . "GET /jam/roots HTTP/1.1\r\nHost: t\r\n${auth}Connection: close\r\n\r\n", undef);
like($rest, qr{^HTTP/1\.1 413 }, 'a chunked body past the cap: 413');
like($rest, qr{"code": "payload_too_large"}, 'payload_too_large');
like($rest, qr{\r\n\r\n\{"error"[^\n]*\n(HTTP/1\.1 200 OK)}, 'a small excess is dropped: the connection serves the next request');

my $small = '';
$small .= sprintf("%x\r\n%s\r\n", 100, 'c' x 100) for 1 .. 3;
($first, $rest) = raw_exchange(
	"POST /jam/preimages HTTP/1.1\r\nHost: t\r\n${auth}Connection: close\r\nTransfer-Encoding: chunked\r\n"
	  . "Content-Type: application/x-test\r\n\r\n", "${small}0\r\n\r\n");
like($rest, qr{^HTTP/1\.1 201 }, 'a chunked body under the cap is stored');
# Through the API: the table stores hashes as bytes from 1.1 on.
is($node->safe_psql('postgres', sprintf(q{SELECT jam.jam_preimage_meta('%s')->>'size'},
			hash_hex('c' x 300))), 300, 'all of its chunks');

$r = $shim->request('POST', '/jam/preimages', body => 'w' x ($max_body + 1));
is_error($r, 413, 'payload_too_large', 'HTTP::Tiny with a body over the cap: 413');

# Keep-alive: two answers on one connection, each with Content-Length.
($first, $rest) = raw_exchange(
	"GET /jam/roots HTTP/1.1\r\nHost: t\r\n$auth\r\nGET /jam/status HTTP/1.1\r\nHost: t\r\n${auth}Connection: close\r\n\r\n",
	undef);
my @answers = ($rest =~ m{(HTTP/1\.1 \d+ [^\r]*\r\n)}g);
is(scalar @answers, 2, 'keep-alive: two answers on one connection');
like($rest, qr{\r\nConnection: keep-alive\r\n.*\r\nConnection: close\r\n}s, 'keep-alive, then close as asked');
my @lengths = ($rest =~ m{\r\nContent-Length: (\d+)\r\n}gi);
is(scalar @lengths, 2, 'both carry Content-Length');

# civetweb's own errors are JSON too.
($first, $rest) = raw_exchange("GARBAGE\r\n\r\n", undef);
like($rest, qr{^HTTP/1\.1 400 }, 'a request civetweb cannot parse: 400');
like($rest, qr{\{"error": "[^"]+", "code": "bad_request"\}}, 'as {"error", "code"}');

# --- Trace context

my $incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
$r = $shim->request('GET', '/jam/roots', headers => { traceparent => $incoming });
my ($tid, $span, $flags) = ($r->{headers}{traceparent} // '') =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
is($tid, '4bf92f3577b34da6a3ce929d0e0e4736', 'a valid traceparent is continued: same trace id');
isnt($span, '00f067aa0ba902b7', 'with the shim\'s own span id');
is($flags, '01', 'and the same flags');
for my $bad ('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
	'00-00000000000000000000000000000000-00f067aa0ba902b7-01',
	'00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
	'01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
	'00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
	'00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', 'garbage')
{
	$r = $shim->request('GET', '/jam/roots', headers => { traceparent => $bad });
	my ($t) = ($r->{headers}{traceparent} // '') =~ /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
	ok(defined $t && $t ne '4bf92f3577b34da6a3ce929d0e0e4736' && $t ne '0' x 32,
		"an invalid traceparent starts a new trace: $bad");
}
$r = $shim->request('GET', '/jam/roots');
like($r->{headers}{traceparent}, qr/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'no traceparent: a new trace');

# The trace id reaches Postgres' log through application_name (%a).
my $trace = 'aaaabbbbccccddddeeeeffff00001111';
$shim->request('GET', '/jam/preimages/not-a-hash', headers => { traceparent => "00-$trace-1111222233334444-01" });
my $pglog;
for (1 .. 100)
{
	$pglog = slurp_file($node->logfile);
	last if $pglog =~ /jam-shim trace=$trace ERROR/;
	usleep(100_000);
}
like($pglog, qr/jam-shim trace=$trace ERROR: .*not a valid hash/, 'the server log line carries the trace id');

# --- Request log lines

# A line is written once its answer is sent; wait until the traced one is there.
my (@lines, $line);
for (1 .. 100)
{
	@lines = $shim->log_lines;
	($line) = grep { ($_->{trace_id} // '') eq $trace } @lines;
	last if $line;
	usleep(100_000);
}
ok(@lines > 50, 'one log line per request');
ok($line, 'the line of the traced request');
is($line->{route}, '/jam/preimages/{hash}', 'its route template');
is($line->{status}, 400, 'its status');
is($line->{code}, 'invalid_hash', 'its error code');
ok(defined $line->{duration_ms} && defined $line->{bytes} && defined $line->{time}, 'duration, bytes, time');
my ($submit_line) = grep { ($_->{route} // '') eq '/jam/packages' && $_->{method} eq 'POST' && $_->{status} == 201 } @lines;
is($submit_line->{package_id}, $pid, 'a submit logs the package id');
is($submit_line->{service_id}, 'svc-1', 'and the service id');

# --- Auth

SKIP:
{
	skip 'jam_authenticate is not in this build', 13 unless $has_auth;
	is_error($shim->request('GET', '/jam/roots', token => ''), 401, 'unauthenticated', 'no token: 401');
	is($shim->request('GET', '/jam/roots', token => '')->{headers}{'www-authenticate'}, 'Bearer realm="jam"',
		'with WWW-Authenticate');
	is_error($shim->request('GET', '/jam/roots', token => 'not-a-real-token'), 401, 'unauthenticated',
		'a bad token: 401');
	is_error($shim->request('GET', '/jam/roots', headers => { Authorization => 'Basic dXNlcjpwdw==' }),
		401, 'unauthenticated', 'not a bearer token: 401');
	is($shim->request('GET', '/jam/roots', token => $reader)->{status}, 200, 'a read token reads');
	is_error($shim->request('POST', '/jam/packages', token => $reader, body => $json->encode(\%pkg)),
		403, 'forbidden', 'a read token cannot submit: 403');
	is_error($shim->request('POST', '/jam/process', token => $reader), 403, 'forbidden',
		'nor process: 403');
	is($shim->request('POST', '/jam/packages', token => $svc1_only,
			body => $json->encode({ service_id => 'svc-1', payload => encode_base64('mine', '') }))->{status},
		201, 'a token for svc-1 submits to svc-1');
	is_error($shim->request('POST', '/jam/packages', token => $svc1_only,
			body => $json->encode({ service_id => 'svc-2', payload => encode_base64('theirs', '') })),
		403, 'forbidden', 'but not to another service: 403');
	$node->safe_psql('postgres', q{SELECT jam.jam_revoke_token(id) FROM jam.jam_tokens WHERE name = 'reader'});
	is_error($shim->request('GET', '/jam/roots', token => $reader), 401, 'unauthenticated',
		'a revoked token: 401');

	# 429: a service limited to one package a minute.
	$node->safe_psql('postgres', q{SELECT jam.jam_set_quota(service_id => 'svc-rate', rate_limit_per_minute => 1)});
	my $first_submit = $shim->request('POST', '/jam/packages',
		body => $json->encode({ service_id => 'svc-rate', payload => encode_base64('one', '') }));
	my $limited = $shim->request('POST', '/jam/packages',
		body => $json->encode({ service_id => 'svc-rate', payload => encode_base64('two', '') }));
	is_error($limited, 429, 'rate_limited', 'over the rate limit: 429');
	like($limited->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'with Retry-After in whole seconds');
	ok(($limited->{headers}{'retry-after'} // 0) <= 60, 'at most the minute one package takes to come back');
}

SKIP:
{
	skip 'jam_authenticate is not in this build', 2 unless $has_auth;
	my $log = slurp_file($node->logfile);
	like($log, qr/jam-shim trace=[0-9a-f]{32} LOG:  duration: /,
		'the shim\'s statements are in the server log with their durations and trace ids');
	my ($secret) = $admin =~ /^jam_[0-9a-f]{16}_(.+)$/;
	unlike($log, qr/\Q$secret\E/, 'but never a bearer token');
}

# --- /metrics

# Parses the Prometheus text format strictly enough to catch a malformed
# line: HELP and TYPE comments, samples with optional labels, a value.
sub parse_metrics
{
	my ($text) = @_;
	my (%samples, %types, @bad);
	for my $l (split /\n/, $text)
	{
		if ($l =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/) { next }
		if ($l =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/)
		{
			push @bad, "TYPE twice: $l" if $types{$1}++;
			next;
		}
		if ($l =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)$/)
		{
			$samples{ $1 . ($2 // '') } = $3;
			next;
		}
		push @bad, $l;
	}
	return (\%samples, \%types, \@bad);
}

$r = $shim->request('GET', '/metrics');
is($r->{status}, 200, 'GET /metrics');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'the Prometheus text format');
my ($m1, $types, $bad) = parse_metrics($r->{content});
is_deeply($bad, [], 'every line parses');
is($types->{jam_shim_http_requests_total}, 1, 'requests_total has one TYPE line');
is($types->{jam_shim_http_request_duration_seconds}, 1, 'the latency histogram too');
my $key = 'jam_shim_http_requests_total{route="/jam/roots",method="GET",status="200"}';
ok(defined $m1->{$key}, 'a counter per route, method and status');
my $hist = 'jam_shim_http_request_duration_seconds';
is($m1->{qq{${hist}_bucket{route="/jam/roots",method="GET",le="+Inf"}}},
	$m1->{qq{${hist}_count{route="/jam/roots",method="GET"}}}, 'the +Inf bucket equals the count');
my @buckets = map { $m1->{$_} } sort { ($a =~ /le="([^"]+)"/)[0] <=> ($b =~ /le="([^"]+)"/)[0] }
  grep { /^${hist}_bucket\{route="\/jam\/roots",method="GET",le="[0-9.e-]+"\}$/ } keys %$m1;
ok(@buckets > 5 && !grep({ $buckets[$_] < $buckets[ $_ - 1 ] } 1 .. $#buckets), 'buckets are cumulative');
$shim->request('GET', '/jam/roots') for 1 .. 3;
my ($m2) = parse_metrics($shim->request('GET', '/metrics')->{content});
is($m2->{$key} - $m1->{$key}, 3, 'the counter moved by three after three requests');
ok($m2->{qq{${hist}_sum{route="/jam/roots",method="GET"}}} > $m1->{qq{${hist}_sum{route="/jam/roots",method="GET"}}},
	'the latency sum grew');
is($m2->{jam_shim_db_up}, 1, 'jam_shim_db_up');
if ($has_metrics)
{
	is($m2->{jam_shim_extension_metrics_up}, 1, 'the extension\'s jam_metrics() was read');
	ok((grep { /^jam_/ && !/^jam_shim_/ } keys %$m2) > 0, 'and its metrics are on the page');
	my ($m3) = parse_metrics($shim->request('GET', '/metrics', token => '')->{content});
	is($m3->{jam_shim_extension_metrics_up}, 1, 'a scrape without a token gets them too');
}
else
{
	is($m2->{jam_shim_extension_metrics_up}, 0, 'without jam_metrics(), the shim\'s metrics alone');
}

# --- 503 while Postgres is down, and recovery

$node->stop('fast');
$r = $shim->request('GET', '/jam/roots');
is_error($r, 503, 'database_unavailable', 'Postgres stopped: 503');
like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'with Retry-After');
$r = $shim->request('POST', '/jam/packages', body => $json->encode(\%pkg));
is_error($r, 503, 'database_unavailable', 'a submit too');
$r = $shim->request('GET', '/system/status');
is($r->{status}, 200, '/system/status still answers');
is($r->{json}{database}{reachable}, JSON::PP::false, 'and says the database is unreachable');
ok($r->{json}{pool}{connect_failures} >= 1, 'counting the failed connects');
$node->start;
my $back;
for (1 .. 300)
{
	$r = $shim->request('GET', '/jam/roots');
	if ($r->{status} == 200) { $back = 1; last }
	usleep(100_000);
}
ok($back, 'the shim reconnects by itself once Postgres is back');
$r = $shim->request('POST', '/jam/packages',
	body => $json->encode({ service_id => 'svc-1', payload => encode_base64('after restart', '') }));
is($r->{status}, 201, 'and writes work again');

# --- Configuration

my $help = `${\ JamTest::Shim::binary()} --help`;
is($?, 0, '--help exits 0');
like($help, qr/JAM_LISTEN.*JAM_DSN.*JAM_POOL_SIZE.*JAM_THREADS.*JAM_MAX_BODY_BYTES.*JAM_TLS_CERT/s,
	'--help names the settings');
my $conf = "$PostgreSQL::Test::Utils::tmp_check/shim_bad.conf";
open my $fh, '>', $conf or die $!;
print $fh "# a comment\nlisten = 127.0.0.1:8080\npool_sise = 3\n";
close $fh;
my $out = `${\ JamTest::Shim::binary()} --config $conf 2>&1`;
is($? >> 8, 2, 'an unknown setting in the config file: exit 2');
like($out, qr/shim_bad\.conf:3: unknown setting "pool_sise"/, 'naming the file and line');

# A config file sets what the environment does not; the environment wins.
$conf = "$PostgreSQL::Test::Utils::tmp_check/shim.conf";
open $fh, '>', $conf or die $!;
print $fh "listen = 127.0.0.1:1\ndsn = $dsn\npool_size = 2\nmax_body_bytes = 100\n";
close $fh;
my $shim2 = JamTest::Shim->start(args => [ '--config', $conf ], token => $admin);
$r = $shim2->request('GET', '/system/status');
is($r->{status}, 200, 'JAM_LISTEN wins over the file\'s listen');
is($r->{json}{pool}{size}, 2, 'pool_size from the config file');
is($r->{json}{http}{max_body_bytes}, 100, 'max_body_bytes from the config file');
is_error($shim2->request('POST', '/jam/preimages', body => 'x' x 101), 413, 'payload_too_large',
	'and enforced');
is($shim2->stop, 0, 'SIGTERM on an idle shim: exit 0');

# HTTPS with JAM_TLS_CERT, checked with curl.
SKIP:
{
	my $have = system('command -v openssl >/dev/null && command -v curl >/dev/null') == 0;
	skip 'openssl or curl is missing', 3 unless $have;
	my $pem = "$PostgreSQL::Test::Utils::tmp_check/shim.pem";
	system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 2 "
		  . "-keyout $pem.key -out $pem.crt >/dev/null 2>&1") == 0 or die 'openssl failed';
	system("cat $pem.crt $pem.key > $pem") == 0 or die;
	my $tls = JamTest::Shim->start(dsn => $dsn, scheme => 'https', no_wait => 1,
		env => { JAM_TLS_CERT => $pem });
	my $status;
	for (1 .. 300)
	{
		$status = `curl -sk -o /dev/null -w '%{http_code}' ${\ $tls->url('/system/status')}`;
		last if $status eq '200';
		usleep(100_000);
	}
	is($status, '200', 'HTTPS with JAM_TLS_CERT');
	my $body = `curl -sk ${\ $tls->url('/jam/nothing')}`;
	like($body, qr/"code": "not_found"/, 'the same answers over TLS');
	is($tls->stop, 0, 'the TLS shim stops cleanly');
}

# --- Slow requests: a refine that takes a while (IMMUTABLE as far as jam
# can check), so that a POST /jam/process is surely in flight.

$node->safe_psql('postgres', q{
	CREATE FUNCTION slow_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(3); RETURN payload; END $$;
	SELECT jam.jam_register_service('svc-slow', 'slow_refine(bytea, bytea[])');
	SELECT jam.jam_submit_package('svc-slow', 'slow one'::bytea);
	SELECT jam.jam_submit_package('svc-slow', 'slow two'::bytea);
});

# Starts POST /jam/process?service_id=svc-slow on a raw connection to a
# shim and returns the socket once Postgres is running it.
sub start_slow_process
{
	my ($target) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $target->port, Timeout => 60)
	  or die "connect: $!";
	print $sock "POST /jam/process?service_id=svc-slow HTTP/1.1\r\nHost: t\r\n${auth}Content-Length: 0\r\n\r\n";
	for (1 .. 300)
	{
		return $sock if $node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_stat_activity
			WHERE application_name LIKE 'jam-shim trace=%' AND query LIKE '%jam_process_next%' AND state = 'active'});
		usleep(50_000);
	}
	return undef;
}

# A pool of one connection, busy: the next request waits JAM_POOL_WAIT_MS, then 503.
my $shim3 = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_POOL_SIZE => 1, JAM_POOL_WAIT_MS => 200 });
my $busy = start_slow_process($shim3);
ok($busy, 'a slow POST /jam/process holds the only connection');
$r = $shim3->request('GET', '/jam/roots');
is_error($r, 503, 'database_unavailable', 'no connection free in time: 503');
like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'with Retry-After');
my $busy_answer = '';
while (sysread($busy, my $buf, 65536)) { $busy_answer .= $buf; last if $busy_answer =~ /\r\n\r\n\{.*\}/s }
like($busy_answer, qr{^HTTP/1\.1 200 }, 'the slow request still gets its answer');
my ($m4) = parse_metrics($shim3->request('GET', '/metrics')->{content});
is($m4->{jam_shim_db_pool_wait_timeouts_total}, 1, 'the wait that timed out is counted');
is($shim3->stop, 0, 'that shim stops cleanly');

# --- Clean shutdown: SIGTERM lets the request in flight finish.

my $sock = start_slow_process($shim);
ok($sock, 'a POST /jam/process is running in Postgres');
$shim->term;
my $refused;
for (1 .. 100)
{
	$r = HTTP::Tiny->new(timeout => 10)->get($shim->url('/jam/roots'));
	if ($r->{status} == 503) { $refused = $r; last }
	usleep(20_000);
}
ok($refused, 'while stopping, a new request is refused');
like($refused->{content} // '', qr/"code": "shutting_down"/, 'with shutting_down');
is($refused->{headers}{connection}, 'close', 'and Connection: close');
is($shim->wait_exit, 0, 'SIGTERM: the shim exits 0');
my $answer = '';
while (sysread($sock, my $buf, 65536)) { $answer .= $buf }
like($answer, qr{^HTTP/1\.1 200 }, 'after answering the request in flight');
like($answer, qr{"status": "applied"}, 'which processed its package');
like($shim->stderr_text, qr/finishing the requests in flight.*"stopped"/s, 'and says so in its log');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->port, Timeout => 5),
	'then no longer listens');

$node->stop;
done_testing();
