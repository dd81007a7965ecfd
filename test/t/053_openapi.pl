# The OpenAPI document (docs/openapi.json) against the code, so that it
# cannot drift from it:
#
# - it is valid OpenAPI 3.1, by @readme/openapi-parser, and every schema in
#   it compiles under Ajv's strict mode (test/openapi/validate.js; the npm
#   packages come from scripts/test.sh, pinned by test/openapi/package-lock.json);
# - its paths and methods are exactly the routes of shim/routes.c (each
#   with OPTIONS), and jam-shim serves it, byte for byte, at
#   GET /jam/openapi.json;
# - its error codes are exactly jam's error table (jam_error_codes(), each
#   under its status) and the codes the shim's sources answer with;
# - every answer of a live shim to a request for every route and method,
#   successes and errors (400, 401, 403, 404, 405, 413, 415, 422, 429, 503,
#   505; 204 and 304), has a status the document gives for that path and
#   method, the headers it says are required, a documented Content-Type,
#   and a body its JSON Schema (draft 2020-12, Ajv) accepts; and every
#   documented operation was answered with success at least once.
#
# No timing is asserted: loops only bound how long the test waits.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::SSE;
use JamTest::Shim;

my $src = $ENV{JAM_SRC_DIR} or BAIL_OUT('JAM_SRC_DIR is not set (scripts/test.sh sets it)');
my $json = JSON::PP->new->canonical;
my $tmp = tempdir(CLEANUP => 1);

sub read_bytes
{
	my ($path) = @_;
	open my $f, '<:raw', $path or die "$path: $!";
	local $/;
	my $bytes = <$f>;
	close $f;
	return $bytes;
}

sub write_bytes
{
	my ($path, $bytes) = @_;
	open my $f, '>:raw', $path or die "$path: $!";
	print $f $bytes;
	close $f;
}

my $doc_path = "$src/docs/openapi.json";
my $doc_bytes = read_bytes($doc_path);
my $doc = JSON::PP->new->decode($doc_bytes);
like($doc->{openapi}, qr/^3\.1\.\d+$/, 'docs/openapi.json is an OpenAPI 3.1 document');

# --- The validators: node and the npm packages scripts/test.sh installed.
# Under make test (JAM_OPENAPI_NODE_MODULES set) they must be there; run by
# hand without them, the checks that need them skip.

my $modules = $ENV{JAM_OPENAPI_NODE_MODULES};
my $modules_required = defined $modules && $modules ne '';
$modules = '/var/lib/jam-test-tools/openapi/node_modules' unless $modules_required;
my ($node_bin) = grep { -x } map { ("$_/node", "$_/nodejs") } split /:/, $ENV{PATH};
my $have_tools = $node_bin && -d "$modules/\@readme/openapi-parser" && -d "$modules/ajv" && -d "$modules/ajv-formats";
if (!$have_tools)
{
	my $why = $node_bin ? "the npm packages are not in $modules" : 'node is not installed';
	if ($modules_required) { fail("the OpenAPI validators: $why (scripts/test.sh installs them)") }
	else { note("the OpenAPI validators are missing ($why): the checks that need them skip") }
}
my $validate_js = 'test/openapi/validate.js';

sub node_validate
{
	my @args = @_;
	my ($out, $err) = ('', '');
	local $ENV{NODE_PATH} = $modules;
	IPC::Run::run([ $node_bin, $validate_js, @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($out, $err);
}

SKIP:
{
	skip 'no OpenAPI validator', 1 unless $have_tools;
	my ($out, $err) = node_validate('lint', $doc_path);
	is($out, "ok\n", 'the document is valid OpenAPI 3.1 (@readme/openapi-parser) and its schemas compile (Ajv, strict)')
	  or diag($out, $err);
}

# --- The routes of shim/routes.c are the document's paths, with the same methods.

my $routes_c = read_bytes("$src/shim/routes.c");
my %routes;
my %rest_routes;
while ($routes_c =~ /\[ROUTE_\w+\]\s*=\s*\{\s*"([^"]+)"\s*,\s*([^}]+)\}/g)
{
	my ($template, $expr) = ($1, $2);
	# ROUTE_REST: the last parameter is the rest of the path (x-jam-rest-parameter).
	$rest_routes{$template} = 1 if $expr =~ s/\s*,\s*ROUTE_REST\s*$//;
	my %m = (OPTIONS => 1);
	for my $bit (split /\s*\|\s*/, $expr)
	{
		$bit =~ s/^\s+|\s+$//g;
		if ($bit eq 'GET_HEAD') { $m{GET} = $m{HEAD} = 1 }
		elsif ($bit =~ /^METHOD_(GET|HEAD|POST|OPTIONS)$/) { $m{$1} = 1 }
		else { fail("routes.c: a method expression this test does not know: $bit") }
	}
	$routes{$template} = [ sort keys %m ];
}
ok(scalar(keys %routes) >= 19, 'shim/routes.c holds the route table (' . scalar(keys %routes) . ' routes)');
ok(exists $routes{'/jam/openapi.json'}, 'among them GET /jam/openapi.json');
is_deeply([ sort keys %{ $doc->{paths} } ], [ sort keys %routes ],
	'the document has a path for every route of shim/routes.c, and no other');
my @http_methods = qw(get put post delete options head patch trace);
for my $template (sort keys %routes)
{
	my $item = $doc->{paths}{$template} or next;
	is_deeply([ sort map { uc } grep { exists $item->{$_} } @http_methods ], $routes{$template},
		"$template: the document's methods are the route's (with OPTIONS)");
	my ($last) = $template =~ /\{(\w+)\}$/;
	is($item->{'x-jam-rest-parameter'}, $rest_routes{$template} ? $last : undef,
		"$template: x-jam-rest-parameter names its last parameter exactly when the route takes the rest of the path");
}

# --- The shim serves the document it was built with.

my $node = jam_node('openapi',
	"jam.allowed_media_types = 'text/*, application/octet-stream, application/x-test'");
JamTest::Shim::prepare_database($node);
my $admin = $node->safe_psql('postgres',
	q{SELECT jam.jam_create_token('admin', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
my $reader = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('reader', ARRAY['jam:read'])});
my $tenant = $node->safe_psql('postgres',
	q{SELECT jam.jam_create_token('acme', ARRAY['jam:read','jam:submit'], NULL, 'acme')});
my $max_body = 65536;
my $shim = JamTest::Shim->start(
	dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port),
	token => $admin,
	env => { JAM_MAX_BODY_BYTES => $max_body, JAM_POOL_SIZE => 4, JAM_THREADS => 16 });

# --- Every route, with the answers the document must describe.  Each
# answer is kept as a case for validate.js: the route's template, the
# path, the method, the status, the headers and the body.

my @cases;

sub keep_case
{
	my ($template, $method, $path, $r) = @_;
	my %headers;
	for my $k (keys %{ $r->{headers} // {} })
	{
		my $v = $r->{headers}{$k};
		$headers{ lc $k } = ref $v eq 'ARRAY' ? join(', ', @$v) : $v;
	}
	push @cases, {
		template => $template,
		path => $path,
		method => $method,
		status => $r->{status},
		headers => \%headers,
		body_base64 => encode_base64($r->{content} // '', ''),
	};
	return $r;
}

# One request through HTTP::Tiny; options as JamTest::Shim's request.
sub call
{
	my ($template, $method, $path, %opt) = @_;
	my $r = $shim->request($method, $path, %opt);
	BAIL_OUT("$method $path: no answer: $r->{content}") if $r->{status} == 599;
	return keep_case($template, $method, $path, $r);
}

# GET, HEAD and OPTIONS of a read route, each answered as expected.
sub read_route
{
	my ($template, $path, $status, $what, %opt) = @_;
	my $r = call($template, 'GET', $path, %opt);
	is($r->{status}, $status, "GET $path: $status ($what)");
	my $h = call($template, 'HEAD', $path, %opt);
	is($h->{status}, $status, "HEAD $path: $status");
	return $r;
}

sub options_of
{
	my ($template, $path) = @_;
	my $r = call($template, 'OPTIONS', $path);
	is($r->{status}, 204, "OPTIONS $path: 204");
}

sub is_code
{
	my ($r, $status, $code, $what) = @_;
	ok($r->{status} == $status && ($r->{json}{code} // '') eq $code, "$what: $status $code")
	  or diag("got $r->{status}: $r->{content}");
}

sub hash_hex { return unpack('H*', blake2b($_[0], 32)) }

# Status and the shim's own routes.
read_route('/system/status', '/system/status', 200, 'the shim');
options_of('/system/status', '/system/status');
is_code(call('/system/status', 'GET', '/system/status?x=1'), 400, 'invalid_argument', 'an unknown query parameter');
my $r = call('/system/status', 'GET', '/system/status', headers => { Authorization => 'Basic eDp5' });
is_code($r, 401, 'unauthenticated', 'an Authorization header that is not Bearer');
read_route('/metrics', '/metrics', 200, 'Prometheus text');
options_of('/metrics', '/metrics');
read_route('/jam/status', '/jam/status', 200, 'jam_status() for a token');
$r = read_route('/jam/status', '/jam/status', 200, 'the health view without a token', token => '');
ok(exists $r->{json}{auth}{authenticated}, 'without a token: the health view');
options_of('/jam/status', '/jam/status');

$r = read_route('/jam/openapi.json', '/jam/openapi.json', 200, 'the document');
ok($r->{content} eq $doc_bytes, 'GET /jam/openapi.json serves docs/openapi.json byte for byte (the shim is built from it)');
like($r->{headers}{'content-type'}, qr{^application/json$}, 'as application/json');
$r = call('/jam/openapi.json', 'GET', '/jam/openapi.json', token => '');
is($r->{status}, 200, 'no token needed');
is_code(call('/jam/openapi.json', 'GET', '/jam/openapi.json?v=2'), 400, 'invalid_argument',
	'an unknown query parameter');
options_of('/jam/openapi.json', '/jam/openapi.json');
my $system = $shim->request('GET', '/system/status')->{json};
is($doc->{info}{version}, $system->{version}, "the document's version is the shim's ($system->{version})");

# Preimages.
my $text = "hello, openapi\n";
my $h = hash_hex($text);
$r = call('/jam/preimages', 'POST', '/jam/preimages', body => $text,
	headers => { 'Content-Type' => 'text/plain; charset=utf-8' });
is($r->{status}, 201, 'POST /jam/preimages: 201');
$r = call('/jam/preimages', 'POST', '/jam/preimages', body => $text,
	headers => { 'Content-Type' => 'text/plain; charset=utf-8' });
is($r->{status}, 200, 'the same bytes again: 200');
my $blob = join '', map { chr(($_ * 13) % 256) } 0 .. 999;
my $bh = hash_hex($blob);
is(call('/jam/preimages', 'POST', '/jam/preimages', body => $blob)->{status}, 201, 'binary bytes: 201');
is_code(call('/jam/preimages', 'POST', '/jam/preimages', body => 'x', headers => { 'Content-Type' => 'image/png' }),
	415, 'media_type_not_allowed', 'a media type not allowed');
is_code(call('/jam/preimages', 'POST', '/jam/preimages', body => 'x', headers => { 'Content-Type' => 'nonsense' }),
	400, 'invalid_media_type', 'a malformed media type');
is_code(call('/jam/preimages', 'POST', '/jam/preimages', body => 'z' x ($max_body + 10)),
	413, 'payload_too_large', 'a body over JAM_MAX_BODY_BYTES');
is_code(call('/jam/preimages', 'POST', '/jam/preimages', body => 'r', token => $reader),
	403, 'forbidden', 'a token without jam:submit');
is_code(call('/jam/preimages', 'POST', '/jam/preimages', body => 'n', token => ''),
	401, 'unauthenticated', 'no token');
$r = call('/jam/preimages', 'POST', '/jam/preimages', body => $text, token => $tenant,
	headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 201, "a tenant's put of bytes another stored: 201");
ok(exists $r->{json}{refcount} && !defined $r->{json}{refcount}, 'with a null refcount');
options_of('/jam/preimages', '/jam/preimages');

read_route('/jam/preimages/{hash}', "/jam/preimages/$bh", 200, 'the bytes');
read_route('/jam/preimages/{hash}', "/jam/preimages/$h", 200, 'text bytes');
read_route('/jam/preimages/{hash}', "/jam/preimages/$bh", 304, 'If-None-Match',
	headers => { 'If-None-Match' => qq{"$bh"} });
read_route('/jam/preimages/{hash}', '/jam/preimages/XYZ', 400, 'a malformed hash');
read_route('/jam/preimages/{hash}', '/jam/preimages/' . ('0' x 64), 404, 'an unknown hash');
is_code(call('/jam/preimages/{hash}', 'GET', '/jam/preimages/%zz'), 400, 'invalid_argument', 'a bad escape');
options_of('/jam/preimages/{hash}', "/jam/preimages/$h");
read_route('/jam/preimages/{hash}/meta', "/jam/preimages/$h/meta", 200, 'the meta');
read_route('/jam/preimages/{hash}/meta', "/jam/preimages/$h/meta", 200, "a tenant's meta", token => $tenant);
read_route('/jam/preimages/{hash}/meta', '/jam/preimages/' . ('1' x 64) . '/meta', 404, 'an unknown hash');
options_of('/jam/preimages/{hash}/meta', "/jam/preimages/$h/meta");

# Packages.
my %pkg = (service_id => 'svc-1', payload => encode_base64('payload one', ''), preimage_hashes => [ $h, $bh ]);
$r = call('/jam/packages', 'POST', '/jam/packages', body => $json->encode(\%pkg),
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 201, 'POST /jam/packages: 201');
my $pid = $r->{json}{id};
$r = call('/jam/packages', 'POST', '/jam/packages?include_receipt=true', body => $json->encode(\%pkg));
is($r->{status}, 200, 'the same package, with its receipt: 200');
is(call('/jam/packages', 'POST', '/jam/packages', body => $json->encode({
	service_id => 'svc-1', payload => encode_base64('payload two', ''), weight_hint => 2,
	contract_version => 1, declared_hash => undef }))->{status}, 201, 'a second package');
is_code(call('/jam/packages', 'POST', '/jam/packages', body => '{"service_id": "svc-1", "payload": '),
	400, 'invalid_json', 'truncated JSON');
is_code(call('/jam/packages', 'POST', '/jam/packages', body => '{"service_id": "svc-1", "payload": "", "x": 1}'),
	400, 'invalid_argument', 'an unknown field');
is_code(call('/jam/packages', 'POST', '/jam/packages', body => $json->encode({ %pkg, declared_hash => 'ab' x 32 })),
	422, 'hash_mismatch', 'a wrong declared hash');
is_code(call('/jam/packages', 'POST', '/jam/packages', body => $json->encode({ %pkg, preimage_hashes => [ 'cd' x 32 ] })),
	422, 'missing_preimage', 'a missing preimage');
is_code(call('/jam/packages', 'POST', '/jam/packages', body => $json->encode(\%pkg), token => $reader),
	403, 'forbidden', 'a token without jam:submit');
$node->safe_psql('postgres', q{SELECT jam.jam_set_quota(service_id => 'svc-rl', rate_limit_per_minute => 1)});
is(call('/jam/packages', 'POST', '/jam/packages',
	body => $json->encode({ service_id => 'svc-rl', payload => encode_base64('one', '') }))->{status},
	201, 'the rate allows one package a minute');
$r = call('/jam/packages', 'POST', '/jam/packages',
	body => $json->encode({ service_id => 'svc-rl', payload => encode_base64('two', '') }));
is_code($r, 429, 'rate_limited', 'the next one in the same minute');
ok(($r->{headers}{'retry-after'} // 0) >= 1, 'with Retry-After');
options_of('/jam/packages', '/jam/packages');

read_route('/jam/packages', '/jam/packages?service_id=svc-1&limit=1', 200, 'the envelope');
read_route('/jam/packages', '/jam/packages?after=0', 200, 'the keyset envelope');
read_route('/jam/packages', '/jam/packages?limit=x', 400, 'a limit that is not an integer');
read_route('/jam/packages', '/jam/packages?status=bogus', 400, 'an unknown status');
is_code(call('/jam/packages', 'GET', '/jam/packages?after=1&offset=1'), 400, 'invalid_pagination',
	'after with an offset');

$r = call('/jam/packages/batch', 'POST', '/jam/packages/batch?service_id=svc-b',
	body => $json->encode([ map { { payload => encode_base64("b$_", '') } } 1 .. 3 ]),
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 201, 'POST /jam/packages/batch (a JSON array): 201');
is(call('/jam/packages/batch', 'POST', '/jam/packages/batch?service_id=svc-b',
	body => $json->encode([ map { { payload => encode_base64("b$_", '') } } 1 .. 3 ]))->{status},
	200, 'the same batch again: 200');
is(call('/jam/packages/batch', 'POST', '/jam/packages/batch?include_receipt=true',
	body => join("\n", map { $json->encode({ service_id => 'svc-b', payload => encode_base64("n$_", '') }) } 1 .. 2) . "\n",
	headers => { 'Content-Type' => 'application/x-ndjson' })->{status}, 201, 'NDJSON, with receipts: 201');
is_code(call('/jam/packages/batch', 'POST', '/jam/packages/batch', body => '[]'), 400, 'invalid_argument',
	'an empty batch');
is_code(call('/jam/packages/batch', 'POST', '/jam/packages/batch',
		body => $json->encode([ { service_id => 'svc-b', payload => encode_base64('ok', '') },
			{ service_id => 'svc-b', payload => encode_base64('bad', ''), declared_hash => 'ab' x 32 } ])),
	422, 'hash_mismatch', 'a batch with a bad package');
options_of('/jam/packages/batch', '/jam/packages/batch');

read_route('/jam/packages/{id}', "/jam/packages/$pid", 200, 'the package');
read_route('/jam/packages/{id}', '/jam/packages/' . ('ef' x 32), 404, 'an unknown package');
options_of('/jam/packages/{id}', "/jam/packages/$pid");
read_route('/jam/packages/{id}/report', "/jam/packages/$pid/report", 404, 'no report before processing');

# Processing: reports, a failed refine, batches, nothing pending.
$r = call('/jam/process', 'POST', '/jam/process', body => '{"service_id": "svc-1"}');
is($r->{status}, 200, 'POST /jam/process: the report');
is($r->{json}{package_id}, $pid, 'of the oldest package');
is(call('/jam/process', 'POST', '/jam/process?max_packages=10')->{status}, 200, 'max_packages: a batch of reports');
is(call('/jam/process', 'POST', '/jam/process?max_packages=10')->{status}, 204, 'max_packages, nothing pending: 204');
is(call('/jam/process', 'POST', '/jam/process')->{status}, 204, 'nothing pending: 204');
is_code(call('/jam/process', 'POST', '/jam/process', body => '{"max_packages": 0}'), 400, 'invalid_argument',
	'max_packages 0');
is_code(call('/jam/process', 'POST', '/jam/process', token => $reader), 403, 'forbidden',
	'a token without jam:process');
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.refuse_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'this refine refuses'; END $$;
	SELECT jam.jam_register_service('svc-fail', 'public.refuse_refine(bytea,bytea[])');
});
$r = call('/jam/packages', 'POST', '/jam/packages',
	body => $json->encode({ service_id => 'svc-fail', payload => encode_base64('doomed', '') }));
my $failed_pid = $r->{json}{id};
$r = call('/jam/process', 'POST', '/jam/process?service_id=svc-fail');
is($r->{json}{status}, 'failed', 'a refine that raises: a failed report');
options_of('/jam/process', '/jam/process');

read_route('/jam/packages/{id}/report', "/jam/packages/$pid/report", 200, 'the report');
read_route('/jam/packages/{id}/report', "/jam/packages/$failed_pid/report", 200, 'a failed report');
options_of('/jam/packages/{id}/report', "/jam/packages/$pid/report");
read_route('/jam/packages/{id}/attestations', "/jam/packages/$pid/attestations", 200, 'its attestations');
read_route('/jam/packages/{id}/attestations', '/jam/packages/' . ('ef' x 32) . '/attestations', 404,
	'an unknown package');
options_of('/jam/packages/{id}/attestations', "/jam/packages/$pid/attestations");
read_route('/jam/packages/{id}/replay', "/jam/packages/$pid/replay", 200, 'a replay that matches');
read_route('/jam/packages/{id}/replay', "/jam/packages/$failed_pid/replay", 200, 'a failed refine replayed');
read_route('/jam/packages/{id}/replay', '/jam/packages/' . ('ef' x 32) . '/replay', 404, 'no report to replay');
$node->safe_psql('postgres', q{
	CREATE OR REPLACE FUNCTION public.refuse_refine(payload bytea, preimages bytea[]) RETURNS bytea
	LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'this refine refuses, differently'; END $$;
});
$r = read_route('/jam/packages/{id}/replay', "/jam/packages/$failed_pid/replay", 200, 'a changed refine');
is($r->{json}{result}, 'contract_changed', 'a changed refine is not replayed: contract_changed');
options_of('/jam/packages/{id}/replay', "/jam/packages/$pid/replay");
read_route('/jam/reports', '/jam/reports', 200, 'the envelope');
read_route('/jam/reports', '/jam/reports?after=0&limit=2', 200, 'the keyset envelope');
read_route('/jam/reports', '/jam/reports?status=pending', 400, 'a status reports do not have');
options_of('/jam/reports', '/jam/reports');
read_route('/jam/attestations', '/jam/attestations', 200, 'the list');
read_route('/jam/attestations', "/jam/attestations?package_id=$pid&after=0", 200, 'filtered, by keyset');
read_route('/jam/attestations', '/jam/attestations?limit=0', 400, 'limit 0');
options_of('/jam/attestations', '/jam/attestations');

# The event stream, read as far as its first lines (it does not end by
# itself), and its refusals.
sub events_call
{
	my ($method, $path, %opt) = @_;
	my $s = JamTest::SSE->open($shim->port, $path, method => $method,
		token => exists $opt{token} ? $opt{token} : $admin, %{ $opt{sse} // {} });
	$s->wait_for(60, sub { defined $_[0]{retry} }) if $method eq 'GET' && $s->{status} == 200;
	$s->wait_eof(60) if $method eq 'HEAD';
	my $r = { status => $s->{status}, headers => $s->{headers}, json => $s->{json},
		content => $s->{status} == 200 ? $s->{raw} : $s->{body} };
	$s->close;
	return keep_case('/jam/events', $method, $path, $r);
}
for my $m ('GET', 'HEAD')
{
	is(events_call($m, '/jam/events')->{status}, 200, "$m /jam/events: 200 (every service)");
	is(events_call($m, '/jam/events?service_id=svc-1', sse => { last_event_id => 0 })->{status}, 200,
		"$m /jam/events?service_id=svc-1 after Last-Event-ID 0: 200");
	# HEAD answers have no body: their status says it.
	my $refused = $m eq 'GET' ? \&is_code : sub { is($_[0]{status}, $_[1], "$_[3]: $_[1]") };
	$refused->(events_call($m, '/jam/events?service_id=svc-1', sse => { last_event_id => 'x' }), 400, 'invalid_argument',
		"$m with a malformed Last-Event-ID");
	$refused->(events_call($m, '/jam/events?service_id=svc-1', sse => { last_event_id => 999999 }), 400,
		'invalid_tree_size', "$m with a Last-Event-ID past the log");
	$refused->(events_call($m, '/jam/events', token => undef), 401, 'unauthenticated', "$m without a token");
	$refused->(events_call($m, '/jam/events?service_id=svc-1', token => $tenant), 403, 'forbidden',
		"$m of a service of no tenant, with a tenant's token");
}
options_of('/jam/events', '/jam/events');

# Token administration (jam:admin) and quota usage.
read_route('/jam/tokens', '/jam/tokens', 200, 'the tokens');
is_code(call('/jam/tokens', 'GET', '/jam/tokens', token => $reader), 403, 'forbidden', 'a reader lists no tokens');
$r = call('/jam/tokens', 'POST', '/jam/tokens', body => $json->encode({ name => 'over http', scopes => ['jam:read'],
	services => ['svc-1'], expires_at => '2100-01-01T00:00:00Z' }));
is($r->{status}, 201, 'POST /jam/tokens: 201');
my ($made_id) = ($r->{json}{token} // '') =~ /^jam_([0-9a-f]{16})_/;
ok($made_id, 'with the new token, shown once');
is_code(call('/jam/tokens', 'POST', '/jam/tokens', body => '{"name": "no scopes"}'), 400, 'invalid_argument',
	'a token needs scopes');
is_code(call('/jam/tokens', 'POST', '/jam/tokens', body => '{"name": "x", "scopes": ["jam:write"]}'), 400,
	'invalid_argument', 'an unknown scope');
is_code(call('/jam/tokens', 'POST', '/jam/tokens', body => $json->encode({ name => 'x', scopes => ['jam:read'] }),
	token => $reader), 403, 'forbidden', 'a reader makes no token');
$r = call('/jam/tokens/{id}/revoke', 'POST', "/jam/tokens/$made_id/revoke");
is($r->{status}, 200, 'POST /jam/tokens/{id}/revoke: 200');
ok($r->{json}{revoked}, 'the token is revoked');
is_code(call('/jam/tokens/{id}/revoke', 'POST', '/jam/tokens/0123456789abcdef/revoke'), 404, 'token_not_found',
	'an unknown token');
options_of('/jam/tokens', '/jam/tokens');
options_of('/jam/tokens/{id}/revoke', "/jam/tokens/$made_id/revoke");
read_route('/jam/quota', '/jam/quota?service_id=svc-1', 200, 'a service\'s quota usage');
read_route('/jam/quota', "/jam/quota?token_id=$made_id", 200, 'a token\'s quota usage');
read_route('/jam/quota', '/jam/quota?service_id=svc-1&token_id=' . $made_id, 400, 'not both');
options_of('/jam/quota', '/jam/quota');

# The verifiable log.
read_route('/jam/receipts/{hash}', "/jam/receipts/$pid", 200, 'a receipt');
read_route('/jam/receipts/{hash}', '/jam/receipts/' . ('ab' x 32), 404, 'no such entry');
options_of('/jam/receipts/{hash}', "/jam/receipts/$pid");
read_route('/jam/receipts/{hash}/proof', "/jam/receipts/$pid/proof", 200, 'a tlog-proof');
read_route('/jam/receipts/{hash}/proof', '/jam/receipts/zz/proof', 400, 'a malformed hash');
options_of('/jam/receipts/{hash}/proof', "/jam/receipts/$pid/proof");
read_route('/jam/roots', '/jam/roots', 200, 'every head');
is_code(call('/jam/roots', 'GET', '/jam/roots', token => 'jam_0000000000000000_nope'), 401, 'unauthenticated',
	'an unknown token');
options_of('/jam/roots', '/jam/roots');
read_route('/jam/services/{id}/checkpoint', '/jam/services/svc-1/checkpoint', 200, 'a signed note');
read_route('/jam/services/{id}/checkpoint', '/jam/services/nosuch/checkpoint', 404, 'an unknown service');
options_of('/jam/services/{id}/checkpoint', '/jam/services/svc-1/checkpoint');

# The logs as tlog-tiles.  svc-1's log is a few entries long: one partial
# tile of each kind; svc-b's is made public.
my $log_size = $shim->request('GET', '/jam/logs/svc-1/checkpoint')->{content} =~ /\A[^\n]*\n(\d+)\n/ ? $1 : 0;
ok($log_size > 0 && $log_size < 256, "svc-1's log has $log_size entries");
$node->safe_psql('postgres', q{SELECT jam.jam_set_log_public('svc-b')});
read_route('/jam/logs/{service_id}/checkpoint', '/jam/logs/svc-1/checkpoint', 200, 'a signed note');
read_route('/jam/logs/{service_id}/checkpoint', '/jam/logs/svc-b/checkpoint', 200, 'a public log, no token', token => '');
read_route('/jam/logs/{service_id}/checkpoint', '/jam/logs/svc-1/checkpoint', 401, 'no token', token => '');
read_route('/jam/logs/{service_id}/checkpoint', '/jam/logs/svc-1/checkpoint', 403, 'another tenant', token => $tenant);
read_route('/jam/logs/{service_id}/checkpoint', '/jam/logs/nosuch/checkpoint', 404, 'an unknown service');
options_of('/jam/logs/{service_id}/checkpoint', '/jam/logs/svc-1/checkpoint');
my $tile = read_route('/jam/logs/{service_id}/tile/{tile_path}', "/jam/logs/svc-1/tile/0/000.p/$log_size", 200, 'a partial tile');
read_route('/jam/logs/{service_id}/tile/{tile_path}', "/jam/logs/svc-1/tile/0/000.p/$log_size", 304, 'If-None-Match',
	headers => { 'If-None-Match' => $tile->{headers}{etag} // '' });
read_route('/jam/logs/{service_id}/tile/{tile_path}', '/jam/logs/svc-b/tile/0/000.p/1', 200, 'a public log, no token',
	token => '');
read_route('/jam/logs/{service_id}/tile/{tile_path}', '/jam/logs/svc-1/tile/0/000', 404, 'past the log');
read_route('/jam/logs/{service_id}/tile/{tile_path}', '/jam/logs/svc-1/tile/0/x000/000', 400, 'not a tile path');
read_route('/jam/logs/{service_id}/tile/{tile_path}', '/jam/logs/svc-1/tile/0/000', 401, 'no token', token => '');
options_of('/jam/logs/{service_id}/tile/{tile_path}', '/jam/logs/svc-1/tile/0/x001/000.p/3');
my $bundle = read_route('/jam/logs/{service_id}/tile/entries/{tile_path}', "/jam/logs/svc-1/tile/entries/000.p/$log_size",
	200, 'a partial entry bundle');
read_route('/jam/logs/{service_id}/tile/entries/{tile_path}', "/jam/logs/svc-1/tile/entries/000.p/$log_size", 304,
	'If-None-Match', headers => { 'If-None-Match' => $bundle->{headers}{etag} // '' });
read_route('/jam/logs/{service_id}/tile/entries/{tile_path}', '/jam/logs/svc-1/tile/entries/001', 404, 'past the log');
read_route('/jam/logs/{service_id}/tile/entries/{tile_path}', '/jam/logs/svc-1/tile/entries/1', 400, 'not a tile path');
options_of('/jam/logs/{service_id}/tile/entries/{tile_path}', '/jam/logs/svc-1/tile/entries/000');

# This node as a witness of a log signed with a key made here.
$node->safe_psql('postgres', q{SELECT jam.jam_add_witnessed_log('example.org/log',
	jam.jam_note_verifier_key('example.org/log', decode(repeat('07', 32), 'hex')))});
sub witness_request
{
	my ($old, $size, $seed) = @_;
	return "old $old\n\n" . $node->safe_psql('postgres', sprintf(q{SELECT jam.jam_sign_note(
		'example.org/log' || E'\n%d\n' || encode(sha256('%d'), 'base64') || E'\n', 'example.org/log',
		decode(repeat('%s', 32), 'hex'))}, $size, $size, $seed // '07'));
}
my $wt = '/jam/witness/add-checkpoint';
is(call($wt, 'POST', $wt, body => witness_request(0, 1), token => '')->{status}, 200, "POST $wt: 200, a cosignature");
$r = call($wt, 'POST', $wt, body => witness_request(0, 2), token => '');
ok($r->{status} == 409 && $r->{content} eq "1\n", "POST $wt: 409, the size held");
is_code(call($wt, 'POST', $wt, body => "old 1\n" . ('A' x 43) . "=\n\n" . substr(witness_request(1, 2), 7)), 422,
	'inconsistent_checkpoint', 'a proof that does not verify');
is_code(call($wt, 'POST', $wt, body => witness_request(1, 2, '08')), 403, 'invalid_checkpoint_signature', 'another key');
is_code(call($wt, 'POST', $wt, body => witness_request(1, 2) =~ s{example\.org/log\n}{example.org/other\n}r), 404,
	'log_not_witnessed', 'an origin not witnessed');
is_code(call($wt, 'POST', $wt, body => 'nonsense'), 400, 'invalid_argument', 'not a request');
options_of($wt, $wt);

# Methods a route does not take, and paths no route has.
for my $m ([ '/jam/roots', 'DELETE', '/jam/roots' ], [ '/jam/roots', 'POST', '/jam/roots' ],
	[ '/jam/process', 'GET', '/jam/process' ], [ '/jam/preimages', 'PUT', '/jam/preimages' ],
	[ '/jam/openapi.json', 'POST', '/jam/openapi.json' ])
{
	$r = call(@$m);
	is_code($r, 405, 'method_not_allowed', "$m->[1] $m->[2]");
	ok(defined $r->{headers}{allow}, 'with Allow');
}
is_code(call(undef, 'GET', '/jam/nope'), 404, 'not_found', 'a path no route has');
is_code(call(undef, 'OPTIONS', '/jam'), 404, 'not_found', 'OPTIONS of a path no route has');

# Every operation takes exactly the query parameters, and every JSON body
# exactly the fields, the document gives it.  Each name the document or the
# code knows is tried on each operation with the value "x" (which no write
# can go through with): the shim refuses a name it does not take with 400
# `unknown query parameter "name"` or `unknown field "name"`, and anything
# else means it took the name.
sub deref
{
	my ($obj) = @_;
	for (1 .. 16)
	{
		last unless ref $obj eq 'HASH' && defined $obj->{'$ref'};
		my $v = $doc;
		$v = $v->{$_} for map { s/~1/\//gr =~ s/~0/~/gr } grep { length } split m{/}, substr($obj->{'$ref'}, 1);
		$obj = $v;
	}
	return $obj;
}
my %names;
for my $file ("$src/shim/plan.c", "$src/src/batch.c")
{
	my $c = read_bytes($file);
	$names{$1} = 1 while $c =~ /"([a-z][a-z_]{1,30})"/g;
}
my (@param_drift, @field_drift);
for my $template (sort keys %{ $doc->{paths} })
{
	my $item = $doc->{paths}{$template};
	for my $method (grep { exists $item->{$_} } qw(get post))
	{
		my $op = $item->{$method};
		my %query = map { $_->{name} => 1 } grep { $_->{in} eq 'query' }
		  map { deref($_) } @{ $item->{parameters} // [] }, @{ $op->{parameters} // [] };
		$names{$_} = 1 for keys %query;
		my $path = $template =~ s/\{hash\}|\{id\}/$pid/gr;
		$path =~ s{/jam/services/$pid/}{/jam/services/svc-1/};
		$path =~ s/\{service_id\}/svc-1/g;
		$path =~ s/\{tile_path\}/000/g;
		for my $name (sort keys %names)
		{
			# An event stream that starts does not end: its head is all it takes.
			my $r = $template eq '/jam/events' ? do {
				my $s = JamTest::SSE->open($shim->port, "$path?$name=x", token => $admin);
				$s->close;
				{ status => $s->{status}, json => $s->{json} } } :
			  $shim->request(uc $method, "$path?$name=x", $method eq 'post' ? (body => '') : ());
			my $taken = !($r->{status} == 400 && ($r->{json}{error} // '') =~ /unknown query parameter "\Q$name\E"/);
			push @param_drift, uc($method) . " $template ?$name: " . ($taken ? 'taken, not documented' : 'documented, refused')
			  if $taken != !!$query{$name};
		}
		my $body = deref($op->{requestBody}) or next;
		my $schema = deref($body->{content}{'application/json'}{schema}) or next;
		my $array = ($schema->{type} // '') eq 'array';
		$schema = deref($schema->{items}) if $array;
		my %fields = map { $_ => 1 } keys %{ $schema->{properties} // {} };
		$names{$_} = 1 for keys %fields;
		for my $name (sort keys %names)
		{
			next if $array && $name eq 'payload';
			my $doc_body = $array ? [ { payload => '', $name => 'x' } ] : { $name => 'x' };
			my $r = $shim->request('POST', $array ? "$template?service_id=probe-b" : $template,
				body => $json->encode($doc_body));
			my $taken = !($r->{status} == 400 && ($r->{json}{error} // '') =~ /unknown field "\Q$name\E"/);
			push @field_drift, "POST $template {$name}: " . ($taken ? 'taken, not documented' : 'documented, refused')
			  if $taken != !!$fields{$name};
		}
	}
}
is_deeply(\@param_drift, [], 'every operation takes exactly its documented query parameters (' . scalar(keys %names) . ' names tried)');
is_deeply(\@field_drift, [], 'and every JSON body exactly its documented fields');
is($shim->request('GET', '/jam/packages?service_id=probe-b')->{json}{total}, 0, 'no probe wrote a package');

# The plain arrays of jam.legacy_list_response.  A reload reaches the
# pooled sessions at their next statement: wait until one has it.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jam.legacy_list_response = on');
$node->reload;
my $legacy;
for (1 .. 300)
{
	$legacy = $shim->request('GET', '/jam/packages');
	last if ref $legacy->{json} eq 'ARRAY';
	usleep(100_000);
}
is(ref $legacy->{json}, 'ARRAY', 'jam.legacy_list_response: a plain array');
keep_case('/jam/packages', 'GET', '/jam/packages', $legacy);
for my $path ('/jam/packages?after=0', '/jam/reports', '/jam/reports?after=1')
{
	my $template = $path =~ m{^/jam/packages} ? '/jam/packages' : '/jam/reports';
	is(ref call($template, 'GET', $path)->{json}, 'ARRAY', "$path: a plain array");
}
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jam.legacy_list_response');

# jam.enabled off: 503 disabled.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jam.enabled = off');
$node->reload;
my $disabled;
for (1 .. 300)
{
	$disabled = $shim->request('GET', '/jam/roots');
	last if $disabled->{status} == 503;
	usleep(100_000);
}
is_code($disabled, 503, 'disabled', 'jam.enabled = off');
keep_case('/jam/roots', 'GET', '/jam/roots', $disabled);
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jam.enabled');
$node->reload;
for (1 .. 300)
{
	last if $shim->request('GET', '/jam/roots')->{status} == 200;
	usleep(100_000);
}

# Answers whatever the route: framing in doubt and another HTTP version,
# through a raw connection.
sub raw_request
{
	my ($template, $method, $path, $bytes) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->port, Timeout => 30)
	  or die "connect: $!";
	print $sock $bytes;
	my $all = '';
	my $sel = IO::Select->new($sock);
	while ($sel->can_read(30))
	{
		my $n = sysread($sock, my $chunk, 65536);
		last unless $n;
		$all .= $chunk;
	}
	close $sock;
	my ($head, $body) = split /\r\n\r\n/, $all, 2;
	my ($status_line, @lines) = split /\r\n/, $head // '';
	my ($status) = ($status_line // '') =~ m{^HTTP/1\.[01] (\d{3})};
	my %headers = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } @lines;
	my $r = { status => $status // 0, headers => \%headers, content => $body // '' };
	$r->{json} = eval { JSON::PP->new->decode($r->{content}) };
	return keep_case($template, $method, $path, $r);
}
is_code(raw_request('/jam/roots', 'GET', '/jam/roots', "GET /jam/roots HTTP/2.0\r\nHost: t\r\n\r\n"),
	505, 'http_version_not_supported', 'HTTP/2.0 in the request line');
is_code(raw_request('/jam/packages', 'POST', '/jam/packages',
		"POST /jam/packages HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
	400, 'bad_request', 'two Content-Length headers');

# Postgres stopped: 503 database_unavailable with Retry-After, and the
# shim's own status says degraded.
$node->stop('fast');
$r = call('/jam/roots', 'GET', '/jam/roots');
is_code($r, 503, 'database_unavailable', 'Postgres stopped');
ok(($r->{headers}{'retry-after'} // 0) >= 1, 'with Retry-After');
$r = call('/system/status', 'GET', '/system/status');
is($r->{json}{status}, 'degraded', '/system/status: degraded');
is($shim->stop, 0, 'the shim stops cleanly');

# --- Every documented operation was answered with success at least once.

my %served;
for my $c (@cases)
{
	next unless defined $c->{template};
	$served{"$c->{method} $c->{template}"} = 1 if $c->{status} < 300 || $c->{status} == 304;
}
my @unserved;
for my $template (sort keys %{ $doc->{paths} })
{
	for my $m (@http_methods)
	{
		push @unserved, uc($m) . " $template"
		  if exists $doc->{paths}{$template}{$m} && !$served{ uc($m) . " $template" };
	}
}
is_deeply(\@unserved, [], 'every documented path and method was served (answered with success)');

# --- Every answer is as the document says.

SKIP:
{
	skip 'no OpenAPI validator', scalar @cases unless $have_tools;
	write_bytes("$tmp/cases.json", $json->encode(\@cases));
	my ($out, $err) = node_validate('check', $doc_path, "$tmp/cases.json");
	my %verdict = map { /^(?:not )?ok (\d+)/ ? ($1 => $_) : () } split /\n/, $out;
	for my $i (0 .. $#cases)
	{
		my $c = $cases[$i];
		my $v = $verdict{$i} // "no verdict: $out $err";
		ok($v =~ /^ok /, "$c->{method} $c->{path} $c->{status}: as documented")
		  or diag($v);
	}
}

# --- And the checker is no rubber stamp: answers the document does not
# describe are refused, each for its reason.

SKIP:
{
	my @forged = (
		[ 'an undocumented status', { template => '/jam/roots', path => '/jam/roots', method => 'GET', status => 404,
			headers => { 'content-type' => 'application/json' }, body => '{"error": "x", "code": "not_found"}' }, qr/not documented/ ],
		[ 'a body its schema refuses', { template => '/jam/roots', path => '/jam/roots', method => 'GET', status => 200,
			headers => { 'content-type' => 'application/json', 'cache-control' => 'no-store', traceparent => '00-' . ('1' x 32) . '-' . ('2' x 16) . '-01' },
			body => '[{"service_id": "s", "tree_size": 1, "root": "nope"}]' }, qr/pattern/ ],
		[ 'a code not under its status', { template => '/jam/roots', path => '/jam/roots', method => 'GET', status => 400,
			headers => { 'content-type' => 'application/json', 'cache-control' => 'no-store', traceparent => '00-' . ('1' x 32) . '-' . ('2' x 16) . '-01' },
			body => '{"error": "x", "code": "forbidden"}' }, qr/allowed values|enum/ ],
		[ 'a 401 without WWW-Authenticate', { template => '/jam/roots', path => '/jam/roots', method => 'GET', status => 401,
			headers => { 'content-type' => 'application/json', 'cache-control' => 'no-store', traceparent => '00-' . ('1' x 32) . '-' . ('2' x 16) . '-01' },
			body => '{"error": "x", "code": "unauthenticated"}' }, qr/WWW-Authenticate/ ],
		[ 'an undocumented media type', { template => '/jam/status', path => '/jam/status', method => 'GET', status => 200,
			headers => { 'content-type' => 'text/html', 'cache-control' => 'no-store', traceparent => '00-' . ('1' x 32) . '-' . ('2' x 16) . '-01' },
			body => '<p>' }, qr/Content-Type/ ],
		[ 'a path under the wrong template', { template => '/jam/packages/{id}', path => '/jam/packages/batch', method => 'POST', status => 405,
			headers => {}, body => '' }, qr/matches \/jam\/packages\/batch/ ],
	);
	skip 'no OpenAPI validator', scalar @forged unless $have_tools;
	write_bytes("$tmp/forged.json", $json->encode([ map {
		my %c = %{ $_->[1] };
		$c{body_base64} = encode_base64(delete $c{body}, '');
		\%c } @forged ]));
	my ($out, $err) = node_validate('check', $doc_path, "$tmp/forged.json");
	my %verdict = map { /^(?:not )?ok (\d+)/ ? ($1 => $_) : () } split /\n/, $out;
	for my $i (0 .. $#forged)
	{
		like($verdict{$i} // "no verdict: $err", qr/^not ok $i: .*$forged[$i][2]/, "the checker refuses $forged[$i][0]");
	}
}

# --- The error codes: jam's table and the shim's own, each under its status.

my $codes = $doc->{components}{schemas}{ErrorCode}{enum};
my %documented = map { $_ => 1 } @$codes;
my %by_status;
for my $name (keys %{ $doc->{components}{schemas} })
{
	next unless $name =~ /^Error(\d{3})$/;
	$by_status{$1} = { map { $_ => 1 } @{ $doc->{components}{schemas}{$name}{properties}{code}{enum} // [] } };
}

# jam_error_codes(), from a running server again.
$node->start;
my %jam_pairs;
for my $row (split /\n/, $node->safe_psql('postgres', 'SELECT code, http_status FROM jam.jam_error_codes()'))
{
	my ($code, $status) = split /\|/, $row;
	$jam_pairs{"$status $code"} = 1;
}
ok(scalar(keys %jam_pairs) >= 30, 'jam_error_codes() lists jam\'s codes');

# The codes the shim's sources answer with, with their statuses.
my %shim_pairs;
my %shim_codes_without_status;
for my $file (glob("$src/shim/*.c"))
{
	my $c = read_bytes($file);
	while ($c =~ /\b(?:refuse|answer_error|fail|set)\s*\(\s*[^,()]+,\s*(\d{3}),\s*"([a-z_]+)"/g)
	{
		$shim_pairs{"$1 $2"} = 1;
	}
	while ($c =~ /case (\d{3}):\s*return "([a-z_]+)";/g)
	{
		$shim_pairs{"$1 $2"} = 1;
	}
	while ($c =~ /\\"code\\": \\"([a-z_]+)\\"/g)
	{
		$shim_codes_without_status{$1} = 1;
	}
}
# civetweb says 411 for a Content-Length it cannot read; handler.c answers 400 then.
my $handler = read_bytes("$src/shim/handler.c");
if (delete $shim_pairs{'411 length_required'})
{
	like($handler, qr/if \(status == 411\)\s*\{\s*status = 400;/,
		'handler.c answers civetweb\'s 411 as 400 (so length_required never goes out)');
}
ok(scalar(keys %shim_pairs) >= 15, 'the shim\'s sources answer with their own codes (' . scalar(keys %shim_pairs) . ' pairs)');

my @missing;
for my $pair (sort(keys %jam_pairs), sort(keys %shim_pairs))
{
	my ($status, $code) = split / /, $pair;
	push @missing, $pair unless $by_status{$status} && $by_status{$status}{$code} && $documented{$code};
}
push @missing, grep { !$documented{$_} } sort keys %shim_codes_without_status;
is_deeply(\@missing, [], 'every code of jam\'s table and of the shim is documented under its status');

my %known = map { (split / /)[1] => 1 } keys %jam_pairs, keys %shim_pairs;
$known{$_} = 1 for keys %shim_codes_without_status;
is_deeply([ grep { !$known{$_} } sort @$codes ], [], 'the document has no code that neither jam nor the shim has');
my @stale;
for my $status (sort keys %by_status)
{
	for my $code (sort keys %{ $by_status{$status} })
	{
		push @stale, "$status $code"
		  unless $jam_pairs{"$status $code"} || $shim_pairs{"$status $code"} || $shim_codes_without_status{$code};
	}
}
is_deeply(\@stale, [], 'and no code under a status it is never answered with');

$node->stop;
done_testing();
