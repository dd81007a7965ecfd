# The shim's batch routes over real HTTP: POST /jam/packages/batch (a JSON
# array or NDJSON, created and existing packages, receipts, all or nothing
# with the first bad package named, its own body cap decided before
# reading), keyset paging of the lists with after=, and POST /jam/process
# with max_packages.
#
# As in 050_shim.pl, no timing is asserted.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;
use JamTest::Shim;

# A single body above 4 KiB is refused; a batch may be 256 KiB.
my $max_body = 4096;
my $max_batch = 262144;
my $node = jam_node('shim_batch');
my $json = JSON::PP->new->canonical;

# The shim logs in as a member of jam_api and every request carries an
# admin token, as README advises and 050_shim.pl does.
JamTest::Shim::prepare_database($node);
my $admin = $node->safe_psql('postgres',
	q{SELECT jam.jam_create_token('admin', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
my $auth = "Authorization: Bearer $admin\r\n";
my $dsn = sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port);
my $shim = JamTest::Shim->start(dsn => $dsn, token => $admin,
	env => { JAM_MAX_BODY_BYTES => $max_body, JAM_MAX_BATCH_BODY_BYTES => $max_batch });

# Every error is {"error": text, "code": code} as JSON, with that status.
sub is_error
{
	my ($r, $status, $code, $name) = @_;
	subtest $name => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
		ok(ref $r->{json} eq 'HASH', 'a JSON object') or diag $r->{content};
		is_deeply([ sort keys %{ $r->{json} // {} } ], [ 'code', 'error' ], 'exactly error and code');
		is($r->{json}{code}, $code, "code $code") or diag $r->{json}{error};
		ok(length($r->{json}{error} // '') > 0, 'a message for a person');
	};
}

# A package object as POST /jam/packages takes it.
sub pkg
{
	my ($service, $text, %more) = @_;
	return { (defined $service ? (service_id => $service) : ()), payload => encode_base64($text, ''), %more };
}

# The id jam computes for a package of default fields.
sub package_id
{
	my ($service, $text) = @_;
	return $node->safe_psql('postgres',
		"SELECT jam.jam_package_id('$service', convert_to('$text', 'UTF8'))");
}

sub batch_json
{
	my ($query, @packages) = @_;
	return $shim->request('POST', "/jam/packages/batch$query", body => $json->encode(\@packages),
		headers => { 'Content-Type' => 'application/json' });
}

sub batch_ndjson
{
	my ($query, $body) = @_;
	return $shim->request('POST', "/jam/packages/batch$query", body => $body,
		headers => { 'Content-Type' => 'application/x-ndjson' });
}

# Rows that a write would add: packages and log entries.
sub written
{
	return $node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM jam.jam_work_packages) || ' packages, '
		  || (SELECT count(*) FROM jam.jam_log_entries) || ' log entries'});
}

my $r = $shim->request('GET', '/system/status');
is($r->{json}{http}{max_batch_body_bytes}, $max_batch, '/system/status shows the batch cap');
is($r->{json}{http}{max_body_bytes}, $max_body, 'beside the single body cap');

# --- A JSON array, each package naming its service

my @three = map { pkg('svc-b', "batch $_") } 1 .. 3;
my @three_ids = map { package_id('svc-b', "batch $_") } 1 .. 3;
$r = batch_json('', @three);
is($r->{status}, 201, 'POST /jam/packages/batch, a JSON array of new packages: 201');
is($r->{json}{service_id}, 'svc-b', 'the service');
is($r->{json}{count}, 3, 'count');
is($r->{json}{created}, 3, 'all three created');
is_deeply([ map { $_->{id} } @{ $r->{json}{packages} } ], \@three_ids, 'the packages in the order sent, with their ids');
is_deeply([ map { $_->{created} } @{ $r->{json}{packages} } ], [ (JSON::PP::true) x 3 ], 'each created');
ok(!(grep { exists $_->{receipt} } @{ $r->{json}{packages} }), 'no receipts unless asked for');
is($r->{json}{packages}[0]{status}, 'pending', 'each a package summary');
is($r->{headers}{'cache-control'}, 'no-store', 'not cached');

$r = batch_json('', @three);
is($r->{status}, 200, 'the same batch again: 200');
is($r->{json}{created}, 0, 'none created');
is_deeply([ map { $_->{created} } @{ $r->{json}{packages} } ], [ (JSON::PP::false) x 3 ], 'each created: false');
is_deeply([ map { $_->{id} } @{ $r->{json}{packages} } ], \@three_ids, 'the same ids');

$r = batch_json('?include_receipt=true', @three[0, 1], pkg('svc-b', 'batch 4'));
is($r->{status}, 201, 'two stored and one new: 201');
is_deeply([ map { $_->{created} } @{ $r->{json}{packages} } ],
	[ JSON::PP::false, JSON::PP::false, JSON::PP::true ], 'created per package');
is($r->{json}{created}, 1, 'one created');
is_deeply([ map { $_->{receipt}{hash} } @{ $r->{json}{packages} } ], [ @three_ids[0, 1], package_id('svc-b', 'batch 4') ],
	'include_receipt=true: a receipt per package, stored ones included');
is_deeply([ map { $_->{receipt}{seq} } @{ $r->{json}{packages} } ], [ 0, 1, 3 ], 'with their log positions');

$r = batch_json('?include_receipt=false', pkg('svc-b', 'batch 5', weight_hint => 2, contract_version => 1));
is($r->{status}, 201, 'every field of a package passes');
ok(!exists $r->{json}{packages}[0]{receipt}, 'include_receipt=false: no receipt');
is($r->{json}{packages}[0]{weight_hint}, 2, 'weight_hint');

# --- NDJSON, the service in the query

my $nd = join '', map { $json->encode(pkg(undef, "line $_")) . "\r\n" } 1 .. 3;
$r = batch_ndjson('?service_id=svc-n', "\n$nd\n  \n");
is($r->{status}, 201, 'NDJSON with CRLF and blank lines, ?service_id=: 201');
is($r->{json}{count}, 3, 'three packages');
is_deeply([ map { $_->{id} } @{ $r->{json}{packages} } ], [ map { package_id('svc-n', "line $_") } 1 .. 3 ],
	'in line order, in the query\'s service');
$r = $shim->request('POST', '/jam/packages/batch?service_id=svc-n', body => $nd,
	headers => { 'Content-Type' => 'application/x-ndjson; charset=utf-8' });
is($r->{status}, 200, 'again, with a media type parameter: 200');
is($r->{json}{created}, 0, 'none created');

# --- All or nothing

my $before = written();
my @bad = (pkg('svc-b', 'new 1'), pkg('svc-b', 'new 2'), pkg('svc-b', 'new 3', declared_hash => 'ab' x 32),
	pkg('svc-b', 'new 4'));
$r = batch_json('', @bad);
is_error($r, 422, 'hash_mismatch', 'a wrong declared hash in the middle: 422');
like($r->{json}{error}, qr/^packages\[2\]: /, 'the error names the first bad package');
is(written(), $before, 'and nothing was written');

$r = batch_json('', pkg('svc-b', 'new 1'), pkg('svc-b', 'new 2', weight_hint => 0));
is_error($r, 400, 'invalid_weight', 'a bad weight_hint: the extension\'s code');
like($r->{json}{error}, qr/^packages\[1\]: /, 'naming packages[1]');
is(written(), $before, 'nothing written');

$r = batch_json('', pkg('svc-x', 'a'), pkg('svc-y', 'b'));
is_error($r, 400, 'invalid_argument', 'packages of two services without ?service_id=: 400');
like($r->{json}{error}, qr/^packages\[1\]: /, 'naming the one that differs');
$r = batch_json('?service_id=svc-x', pkg('svc-x', 'a'), pkg('svc-y', 'b'));
is_error($r, 400, 'invalid_argument', 'a package of another service than ?service_id=: 400');
like($r->{json}{error}, qr/^packages\[1\]: /, 'naming it');
is(written(), $before, 'nothing written');

# --- What the shim itself refuses

is_error(batch_json(''), 400, 'invalid_argument', 'an empty array: 400');
is_error(batch_ndjson('?service_id=svc-n', "\n \r\n\n"), 400, 'invalid_argument', 'NDJSON of blank lines only: 400');
is_error($shim->request('POST', '/jam/packages/batch', body => ''), 400, 'invalid_argument', 'no body: 400');
$r = batch_ndjson('?service_id=svc-n', $json->encode(pkg(undef, 'ok 1')) . "\n\n{\"payload\": \"eA==\"\n"
	  . $json->encode(pkg(undef, 'ok 2')) . "\n");
is_error($r, 400, 'invalid_argument', 'a malformed NDJSON line: 400');
like($r->{json}{error}, qr/^line 3: /, 'naming the line, blank ones counted');
$r = batch_ndjson('?service_id=svc-n', '{"payload": "eA=="}, {"payload": "eQ=="}' . "\n");
is_error($r, 400, 'invalid_argument', 'two objects on one line: 400');
like($r->{json}{error}, qr/^line 1: /, 'line 1');
$r = batch_ndjson('', "[1]\n");
like($r->{json}{error} // '', qr/^line 1: .*object/, 'a line that is not an object: named');
is(written(), $before, 'nothing written');

is_error($shim->request('POST', '/jam/packages/batch', body => '[{"service_id": "s"'), 400, 'invalid_json',
	'a truncated JSON array: 400 invalid_json');
is_error($shim->request('POST', '/jam/packages/batch', body => $json->encode(pkg('s', 'x'))), 400, 'invalid_json',
	'one object instead of an array: 400 invalid_json');
is_error($shim->request('POST', '/jam/packages/batch', body => '[] []'), 400, 'invalid_json',
	'data after the array: 400 invalid_json');
$r = $shim->request('POST', '/jam/packages/batch', body => '[{"service_id": "s", "payload": ""}, 7]');
is_error($r, 400, 'invalid_argument', 'an element that is not an object: 400');
like($r->{json}{error}, qr/^packages\[1\]: /, 'naming it');
$r = $shim->request('POST', '/jam/packages/batch', body => $nd, headers => { 'Content-Type' => 'text/plain' });
is_error($r, 400, 'invalid_json', 'NDJSON sent as another media type is taken for JSON: 400');
like($r->{json}{error}, qr{application/x-ndjson}, 'saying how to send NDJSON');
is_error($shim->request('POST', '/jam/packages/batch?include_receipt=maybe', body => '[]'), 400,
	'invalid_argument', 'include_receipt must be a boolean');
is_error($shim->request('POST', '/jam/packages/batch?status=pending', body => '[]'), 400,
	'invalid_argument', 'an unknown query parameter: 400');
$r = $shim->request('GET', '/jam/packages/batch');
is_error($r, 405, 'method_not_allowed', 'GET /jam/packages/batch: 405, not a package named "batch"');
is($r->{headers}{allow}, 'POST, OPTIONS', 'Allow: POST, OPTIONS');

# --- The batch cap: larger than a single body's, decided before reading

my @big = map { pkg('svc-big', sprintf('%04d', $_) . ('x' x 600)) } 1 .. 20;
my $big_body = $json->encode(\@big);
ok(length($big_body) > $max_body && length($big_body) < $max_batch, 'a batch between the two caps');
$r = batch_json('', @big);
is($r->{status}, 201, 'is read under the batch cap');
is($r->{json}{count}, 20, 'all of it');
is_error($shim->request('POST', '/jam/packages', body => $json->encode(pkg('svc-big', 'y' x $max_body))),
	413, 'payload_too_large', 'while a single package of that size is over JAM_MAX_BODY_BYTES');

# Opens a connection, sends $head (and then $body, if given), and returns
# everything the shim sends until it closes the connection; with
# $read_first, what it answers before the body is sent, first.
sub raw_exchange
{
	my ($head, $body, $read_first) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->port, Timeout => 60)
	  or die "connect: $!";
	print $sock $head;
	my $first = '';
	if ($read_first)
	{
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

my (undef, $rest) = raw_exchange("POST /jam/packages/batch HTTP/1.1\r\nHost: t\r\n${auth}Content-Length: "
	  . ($max_batch + 4 * 1024 * 1024) . "\r\nContent-Type: application/json\r\n\r\n", undef);
like($rest, qr{^HTTP/1\.1 413 }, 'Content-Length over the batch cap: 413 without a byte of body sent');
like($rest, qr{"code": "payload_too_large"}, 'payload_too_large');
like($rest, qr{"error": "[^"]*$max_batch}, 'naming the batch cap');

my ($first) = raw_exchange("POST /jam/packages/batch HTTP/1.1\r\nHost: t\r\n${auth}Content-Length: "
	  . ($max_batch + 1) . "\r\nExpect: 100-continue\r\n\r\n", 'x' x ($max_batch + 1), 1);
like($first, qr{^HTTP/1\.1 413 }, 'Expect: 100-continue over the batch cap: 413 instead of 100 Continue');

my $chunk = ' ' x 8192;
my $chunked = sprintf("%x\r\n%s\r\n", length $chunk, $chunk) x (int($max_batch / 8192) + 2) . "0\r\n\r\n";
(undef, $rest) = raw_exchange("POST /jam/packages/batch HTTP/1.1\r\nHost: t\r\n${auth}Connection: close\r\n"
	  . "Transfer-Encoding: chunked\r\n\r\n", $chunked);
like($rest, qr{^HTTP/1\.1 413 }, 'a chunked batch past the cap: 413');

# --- Keyset paging: 250 packages, 100 a page

my @page_texts = map { sprintf('page %03d', $_) } 1 .. 250;
$r = batch_ndjson('?service_id=svc-page', join('', map { $json->encode(pkg(undef, $_)) . "\n" } @page_texts));
is($r->{status}, 201, '250 packages in one NDJSON batch');
my @page_ids = map { $_->{id} } @{ $r->{json}{packages} // [] };
is(scalar @page_ids, 250, 'all created');

my (@seen, @sizes, $first_page);
my $after = 0;
while (defined $after && @sizes < 10)
{
	$r = $shim->request('GET', "/jam/packages?service_id=svc-page&limit=100&after=$after");
	is($r->{status}, 200, "the page after $after") or last;
	$first_page //= $r->{json};
	my @items = @{ $r->{json}{items} };
	push @sizes, scalar @items;
	push @seen, @items;
	is($r->{json}{after}, $after, 'the envelope repeats after');
	is($r->{json}{next_after}, @items == 100 ? $items[-1]{seq} : undef,
		'next_after: the last seq of a full page, null on the last');
	$after = $r->{json}{next_after};
}
is_deeply([ sort keys %$first_page ], [qw(after items limit next_after)], 'the keyset envelope');
is_deeply(\@sizes, [ 100, 100, 50 ], 'three pages');
is_deeply([ map { $_->{id} } @seen ], \@page_ids, 'every package once, in the order submitted');
ok(!(grep { $seen[$_]{seq} <= $seen[ $_ - 1 ]{seq} } 1 .. $#seen), 'seq strictly increasing');

$r = $shim->request('GET', '/jam/packages?service_id=svc-page&limit=100&after=');
ok(defined $r->{json}{total}, 'an empty after counts as absent: the offset envelope');
is_error($shim->request('GET', '/jam/packages?after=-1'), 400, 'invalid_pagination', 'after=-1: 400');
is_error($shim->request('GET', '/jam/packages?after=abc'), 400, 'invalid_pagination', 'after=abc: 400');
is_error($shim->request('GET', '/jam/packages?after=1.5'), 400, 'invalid_pagination', 'after=1.5: 400');
is_error($shim->request('GET', '/jam/packages?after=99999999999999999999'), 400, 'invalid_pagination',
	'after beyond bigint: 400');
is_error($shim->request('GET', '/jam/packages?after=5&offset=10'), 400, 'invalid_pagination',
	'after with an offset: the extension refuses');
is_error($shim->request('GET', '/jam/reports?after=x'), 400, 'invalid_pagination', 'the reports\' after too');

# --- Processing several packages in one call

$r = batch_json('?service_id=svc-proc', map { pkg(undef, "proc $_") } 1 .. 12);
is($r->{json}{created}, 12, '12 packages to process');
my @proc_ids = map { $_->{id} } @{ $r->{json}{packages} // [] };
$r = $shim->request('POST', '/jam/process?service_id=svc-proc&max_packages=10');
is($r->{status}, 200, 'POST /jam/process?max_packages=10: 200');
is($r->{json}{processed}, 10, 'ten processed');
is(scalar @{ $r->{json}{reports} // [] }, 10, 'ten reports');
is_deeply([ map { $_->{package_id} } @{ $r->{json}{reports} // [] } ], [ @proc_ids[ 0 .. 9 ] ],
	'the oldest ten, in order');
$r = $shim->request('POST', '/jam/process', body => '{"service_id": "svc-proc", "max_packages": 10}');
is($r->{status}, 200, 'max_packages in the JSON body');
is($r->{json}{processed}, 2, 'the last two');
$r = $shim->request('POST', '/jam/process?max_packages=10', body => '{"service_id": "svc-proc"}');
is($r->{status}, 204, 'nothing pending: 204');
is($r->{content}, '', 'without a body');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jam.jam_work_reports WHERE service_id = 'svc-proc'}),
	12, 'twelve reports stored');
is_error($shim->request('POST', '/jam/process?max_packages=ten'), 400, 'invalid_argument',
	'max_packages that is not an integer: 400');
is_error($shim->request('POST', '/jam/process', body => '{"max_packages": "10"}'), 400, 'invalid_argument',
	'a max_packages string in the body: 400');
is_error($shim->request('POST', '/jam/process?max_packages=5', body => '{"max_packages": 6}'), 400,
	'invalid_argument', 'max_packages differing between query and body: 400');

# The reports, walked by keyset too.
my (@reports, @report_sizes);
$after = 0;
while (defined $after && @report_sizes < 10)
{
	$r = $shim->request('GET', "/jam/reports?service_id=svc-proc&status=applied&limit=5&after=$after");
	is($r->{status}, 200, "reports after $after") or last;
	push @report_sizes, scalar @{ $r->{json}{items} };
	push @reports, @{ $r->{json}{items} };
	$after = $r->{json}{next_after};
}
is_deeply(\@report_sizes, [ 5, 5, 2 ], 'three pages of reports');
is_deeply([ map { $_->{package_id} } @reports ], \@proc_ids, 'each report once, in order');

# --- Receipts as tlog-proofs, and the list of attestations.

$r = $shim->request('GET', "/jam/receipts/$proc_ids[0]/proof");
is($r->{status}, 200, 'a receipt as a tlog-proof: 200');
like($r->{headers}{'content-type'} // '', qr{^text/plain}, 'as text/plain');
is($r->{content}, $node->safe_psql('postgres', "SELECT jam.jam_receipt_proof('$proc_ids[0]')"),
	'exactly what jam_receipt_proof returns');
like($r->{content}, qr/\Ac2sp\.org\/tlog-proof\@v1\nindex \d+\n/, 'a c2sp.org/tlog-proof@v1');
is_error($shim->request('GET', '/jam/receipts/' . ('0' x 64) . '/proof'), 404, 'receipt_not_found',
	'the proof of an unknown hash: 404');
is_error($shim->request('GET', '/jam/receipts/zz/proof'), 400, 'invalid_hash', 'of a malformed hash: 400');

$r = $shim->request('GET', "/jam/attestations?package_id=$proc_ids[0]");
is($r->{status}, 200, 'the attestations of a package: 200');
is(scalar @{ $r->{json}{items} }, 1, 'one, the node\'s');
ok(length($r->{json}{items}[0]{signature} // '') == 88, 'signed');
$r = $shim->request('GET', '/jam/attestations?service_id=svc-proc&limit=5');
is(scalar @{ $r->{json}{items} }, 5, 'the attestations of a service, a page of 5');
my $next = $r->{json}{next_after};
$r = $shim->request('GET', "/jam/attestations?service_id=svc-proc&limit=5&after=$next");
is($r->{status}, 200, 'and the next page by after');
is_error($shim->request('GET', '/jam/attestations?colour=red'), 400, 'invalid_argument',
	'an unknown parameter: 400');

$r = $shim->request('GET', "/jam/packages/$proc_ids[0]/replay");
is($r->{status}, 200, 'a replay: 200');
is($r->{json}{result}, 'match', 'the builtin refine gives the stored output again');

# --- The request log names the route and the service.

# A line is written once its answer is sent; the first batch's is long written.
my ($line) = grep { ($_->{route} // '') eq '/jam/packages/batch' && $_->{status} == 201 } $shim->log_lines;
ok($line, 'a batch has a log line under its route');
is($line->{service_id}, 'svc-b', 'with its service');

is($shim->stop, 0, 'the shim stops cleanly');
$node->stop;
done_testing();
