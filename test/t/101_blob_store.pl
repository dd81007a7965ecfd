# The blob tier against a real S3-compatible server (s3rver on loopback),
# every request checked by a proxy that verifies its SigV4 signature with
# AWS's own signer (test/s3/verify-proxy.js), since s3rver does not: puts
# below and above the threshold, identical bytes stored once, read-through
# returning only verified bytes, HEAD and meta never touching the store, an
# object altered behind jam's back (integrity_error, 502), the store down
# (blob_store_unavailable, 503 with Retry-After, nothing half-written) and
# back, bounded retries, a wrong secret refused by the verifier, the
# credentials file's mode and a reload to another file, processing and
# replay reading through the store, status and metrics, and host-style
# URIs.
#
# No timing is asserted: loops only bound how long the test waits.
use strict;
use warnings;

use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::S3;
use JamTest::Shim;

my $s3 = JamTest::S3->start(name => 'store')
  or plan skip_all => 'no S3-compatible server to test against: ' . JamTest::S3->why_not;

my $threshold = 4096;
my $node = jam_node('blob',
	$s3->conf('jam.blob_offload_threshold' => $threshold,
		'jam.blob_store_replication' => 'none: a test bucket',
		'jam.blob_store_retries' => 2),
	"jam.allowed_media_types = '*'");
my $json = JSON::PP->new->canonical;

sub hash_hex { return unpack('H*', blake2b($_[0], 32)) }
sub bytes_of { my ($seed, $n) = @_; return join '', map { chr(($_ * 7919 + $seed * 104729) % 251) } 0 .. $n - 1 }
sub sql { return $node->safe_psql('postgres', $_[0]) }
sub put_sql { my ($bytes) = @_; return $json->decode(sql('SELECT jam.jam_put_preimage(' . sql_literal_bytea($bytes) . ')')) }

# A statement's error as "SQLSTATE: message".
sub sql_error
{
	my ($query) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$query");
	return $ret == 0 ? 'no error' : ($err =~ /ERROR:\s+(\w{5}): ([^\n]*)/ ? "$1: $2" : $err);
}

sub requests { return $s3->requests }
sub n_requests { return scalar(my @r = requests()) }

# Counter values from jam_metrics(), by name and labels (a JSON object).
sub metric
{
	my ($name, $labels) = @_;
	return sql("SELECT coalesce(sum(value), 0) FROM jam.jam_metrics() WHERE name = '$name' AND labels @> '$labels'");
}

# --- Status: the store, where it is, never its credentials.

my $status = $json->decode(sql('SELECT jam.jam_status()'));
my $store = $status->{blob_store};
is($store->{type}, 's3', 'jam_status shows the store type');
is($store->{endpoint}, $s3->endpoint, 'and its endpoint');
is($store->{bucket}, 'jam-test', 'its bucket');
is($store->{url}, 'http://' . $s3->endpoint . '/jam-test/', 'the bucket URL (path style, no TLS)');
is($store->{replication}, 'none: a test bucket', 'the replication policy the operator declared');
is($store->{offload_threshold}, $threshold, 'and the threshold');
my $everything = sql('SELECT jam.jam_status()::text') . sql('SELECT string_agg(setting, \' \') FROM pg_settings');
ok(index($everything, $JamTest::S3::SECRET) < 0 && index($everything, $JamTest::S3::ACCESS_KEY_ID) < 0,
	'neither the status nor any setting shows the credentials');

# --- Puts: below the threshold inline, at or above it in the store.

my $before = n_requests();
my $small = bytes_of(1, $threshold - 1);
my $meta = put_sql($small);
is($meta->{storage_class}, 'inline', 'a preimage below the threshold stays inline');
is(n_requests(), $before, 'without a request to the store');

my $big = bytes_of(2, 100_000);
my $big_hash = hash_hex($big);
$meta = put_sql($big);
is($meta->{storage_class}, 's3', 'a preimage above the threshold goes to the store');
is($meta->{size}, 100_000, 'with its size');
ok($meta->{created}, 'created');
is(sql("SELECT data IS NULL FROM jam.jam_preimages WHERE hash = decode('$big_hash', 'hex')"), 't',
	'its row holds no bytes');
ok($s3->object_exists($big_hash), 'the object is in the bucket under jam/<xx>/<hash>');
is(slurp_file($s3->object_file($big_hash)), $big, 'holding exactly the bytes');
my @put = grep { $_->{method} eq 'PUT' } requests();
is(scalar(@put), 1, 'one PUT');
is($put[0]{path}, '/jam-test/jam/' . substr($big_hash, 0, 2) . "/$big_hash", 'to the key of the hash');

$meta = put_sql(bytes_of(3, $threshold));
is($meta->{storage_class}, 's3', 'a preimage of exactly the threshold goes to the store');

$before = scalar(grep { $_->{method} eq 'PUT' } requests());
$meta = put_sql($big);
ok(!$meta->{created}, 'the same bytes again: not created');
is(scalar(grep { $_->{method} eq 'PUT' } requests()), $before, 'and not uploaded again (the object is there)');

# --- Read-through: the bytes come back only once verified.

is(sql("SELECT md5(jam.jam_get_preimage('$big_hash'))"), sql('SELECT md5(' . sql_literal_bytea($big) . ')'),
	'jam_get_preimage reads the object back');
is((grep { $_->{method} eq 'GET' } requests())[-1]{path}, '/jam-test/jam/' . substr($big_hash, 0, 2) . "/$big_hash",
	'with a GET of its key');
is(metric('jam_blob_store_reads_total', '{"outcome": "hit"}'), '1', 'counted as a hit');

# --- Through the shim.

JamTest::Shim::prepare_database($node);
my $token = sql(q{SELECT jam.jam_create_token('blob', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
my $shim = JamTest::Shim->start(
	dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port),
	token => $token, env => { JAM_POOL_SIZE => 2, JAM_THREADS => 8 });

my $web = bytes_of(4, 50_000);
my $web_hash = hash_hex($web);
my $r = $shim->request('POST', '/jam/preimages', body => $web);
is($r->{status}, 201, 'POST /jam/preimages of a large preimage: 201');
is($r->{json}{storage_class}, 's3', 'in the store');
$r = $shim->request('GET', "/jam/preimages/$web_hash");
is($r->{status}, 200, 'GET of it: 200');
ok($r->{content} eq $web, 'the same bytes back');
is($r->{headers}{etag}, qq{"$web_hash"}, 'with its ETag');

# A preimage of several chunks: streamed as jam_read_preimage's rows arrive.
my $large = bytes_of(9, 1_100_000);
my $large_hash = hash_hex($large);
$r = $shim->request('POST', '/jam/preimages', body => $large, headers => { 'Content-Type' => 'application/x-jam-test' });
is($r->{status}, 201, 'a 1.1 MB preimage is stored');
$r = $shim->request('GET', "/jam/preimages/$large_hash");
is($r->{status}, 200, 'GET of it: 200');
is($r->{headers}{'content-length'}, 1_100_000, 'Content-Length is its size');
is($r->{headers}{'content-type'}, 'application/x-jam-test', 'Content-Type its media type');
ok($r->{content} eq $large, 'every byte, in order, across five chunks');
is(sql("SELECT count(*) FROM jam.jam_read_preimage('$large_hash')"), '5', 'which jam_read_preimage cuts it into');
$r = $shim->request('POST', '/jam/preimages', body => '');
$r = $shim->request('GET', '/jam/preimages/' . hash_hex(''));
ok($r->{status} == 200 && $r->{headers}{'content-length'} == 0 && $r->{content} eq '', 'an empty preimage streams as no bytes');

# A client that goes away in the middle: the statement is cancelled, the
# connection goes back to the pool, and the next request is served.  The
# preimage is far larger than what the sockets buffer, so the shim is still
# writing when the client closes.
my $huge = bytes_of(10, 1_000_003) x 15;
my $huge_hash = hash_hex($huge);
$r = $shim->request('POST', '/jam/preimages', body => $huge);
is($r->{status}, 201, 'a 15 MB preimage is stored');
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->port) or die "connect: $!";
print $sock "GET /jam/preimages/$huge_hash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $token\r\n\r\n";
my $got = '';
while (length($got) < 300_000) { my $n = sysread($sock, $got, 65536, length($got)); last unless $n; }
like($got, qr{^HTTP/1.1 200 }, 'a client reads the first chunks of a large preimage');
close $sock;
my $cut;
for (1 .. 300)
{
	($cut) = grep { ($_->{error_detail} // '') =~ /went away/ } $shim->log_lines;
	last if $cut;
	usleep(100_000);
}
ok($cut, 'then goes away: the shim stops the statement and logs the request it cut short')
  or diag explain [ $shim->log_lines ];
for my $i (1 .. 3)
{
	$r = $shim->request('GET', "/jam/preimages/$large_hash");
	ok($r->{status} == 200 && $r->{content} eq $large, "request $i after it is served whole (the pool is sound)");
}
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'jam_shim' AND state = 'active'}), '0',
	'and no statement of the shim is left running');

$before = n_requests();
$r = $shim->request('HEAD', "/jam/preimages/$web_hash");
is($r->{status}, 200, 'HEAD: 200');
is($r->{headers}{'content-length'}, 50_000, 'with its Content-Length');
$r = $shim->request('GET', "/jam/preimages/$web_hash/meta");
is($r->{json}{storage_class}, 's3', 'meta says where it is');
$r = $shim->request('GET', "/jam/preimages/$web_hash", headers => { 'If-None-Match' => qq{"$web_hash"} });
is($r->{status}, 304, 'a conditional GET naming its ETag: 304');
is(n_requests(), $before, 'HEAD, meta and 304 never touched the store');

# --- An object altered behind jam's back: its bytes are never returned.

my $errors_before = metric('jam_errors_total', '{"code": "integrity_error"}');
my $altered = $big;
substr($altered, 5000, 1) = chr((ord(substr($big, 5000, 1)) + 1) % 256);
# Straight to s3rver, around the proxy, as another client of the bucket would.
my $direct = HTTP::Tiny->new->put('http://127.0.0.1:' . $s3->{s3_port} . '/jam-test/jam/' . substr($big_hash, 0, 2) . "/$big_hash",
	{ content => $altered });
ok($direct->{success}, 'the object is overwritten with other bytes behind jam\'s back');
like(sql_error("SELECT jam.jam_get_preimage('$big_hash')"), qr/^JM034: preimage $big_hash hashes to [0-9a-f]{64} in the blob store$/,
	'jam_get_preimage refuses with integrity_error');
is(metric('jam_errors_total', '{"code": "integrity_error"}'), $errors_before + 1, 'jam_errors_total{code=integrity_error} moves');
is(metric('jam_blob_store_integrity_errors_total', '{}'), '1', 'and so does jam_blob_store_integrity_errors_total');
$r = $shim->request('GET', "/jam/preimages/$big_hash");
is($r->{status}, 502, 'the shim answers 502');
is($r->{json}{code}, 'integrity_error', 'with the code integrity_error');
ok(index($r->{content}, substr($altered, 0, 64)) < 0, 'and none of the bytes');
# Putting the bytes again writes the object again (its ETag is not theirs).
$meta = put_sql($big);
is(slurp_file($s3->object_file($big_hash)), $big, 'putting the same bytes again restores the object');
is(sql("SELECT md5(jam.jam_get_preimage('$big_hash'))"), sql('SELECT md5(' . sql_literal_bytea($big) . ')'),
	'which reads back');

# --- A processed package reads its preimages through the store; so does replay.

my $pkg = $json->decode(sql("SELECT jam.jam_submit_package('blob-svc', 'payload'::bytea, preimage_hashes => ARRAY['$big_hash', '$web_hash'])"));
my $gets = scalar(grep { $_->{method} eq 'GET' } requests());
my $report = $json->decode(sql("SELECT jam.jam_process_next('blob-svc')"));
is($report->{status}, 'applied', 'a package referencing two preimages of the store is processed');
is(scalar(grep { $_->{method} eq 'GET' } requests()), $gets + 2, 'reading both through the store');
is(sql("SELECT jam.jam_replay('$pkg->{id}')->>'result'"), 'match', 'and replays to the same report');

# --- The store down: fail fast, 503 with Retry-After, nothing half-written; then back.

$s3->stop_proxy;
my $down = bytes_of(5, 20_000);
my $down_hash = hash_hex($down);
like(sql_error('SELECT jam.jam_put_preimage(' . sql_literal_bytea($down) . ')'),
	qr/^JM033: the blob store failed a put of jam\/..\/$down_hash: .*(?i:connect)/,
	'a put while the store is down: blob_store_unavailable');
is(sql("SELECT count(*) FROM jam.jam_preimages WHERE hash = decode('$down_hash', 'hex')"), '0', 'and no row');
$r = $shim->request('POST', '/jam/preimages', body => $down);
is($r->{status}, 503, 'the shim answers a put 503');
is($r->{json}{code}, 'blob_store_unavailable', 'with the code blob_store_unavailable');
is($r->{headers}{'retry-after'}, '5', 'and Retry-After');
$r = $shim->request('GET', "/jam/preimages/$web_hash");
is($r->{status}, 503, 'a get of a preimage in the store: 503');
$r = $shim->request('GET', "/jam/preimages/$web_hash/meta");
is($r->{status}, 200, 'its meta still answers');
$r = $shim->request('POST', '/jam/preimages', body => 'small enough');
is($r->{status}, 201, 'and small preimages are still stored inline');

$s3->start_proxy;
$r = $shim->request('POST', '/jam/preimages', body => $down);
is($r->{status}, 201, 'the store back: the put succeeds');
$r = $shim->request('GET', "/jam/preimages/$web_hash");
ok($r->{status} == 200 && $r->{content} eq $web, 'and so does the get');

# --- Retries are bounded: two failures pass, three do not (jam.blob_store_retries = 2).

my $retries = metric('jam_blob_store_retries_total', '{}');
$s3->control('fail?status=503&n=2');
is(sql("SELECT md5(jam.jam_get_preimage('$web_hash'))"), sql('SELECT md5(' . sql_literal_bytea($web) . ')'),
	'a get the store fails twice succeeds on its third attempt');
is(metric('jam_blob_store_retries_total', '{}'), $retries + 2, 'after two retries');
$s3->control('fail?status=503&n=3');
like(sql_error("SELECT jam.jam_get_preimage('$web_hash')"), qr/^JM033: .*HTTP 503 SlowDown/,
	'three failures in a row: blob_store_unavailable');

# --- Every request jam sent carried a signature AWS's signer agrees with.

my @signed = grep { defined $_->{verified} } requests();
ok(@signed >= 10, 'the verifier saw the requests (' . scalar(@signed) . ')');
is(scalar(grep { !$_->{verified} } @signed), 0, 'and every one was signed right')
  or diag explain [ grep { !$_->{verified} } @signed ];

# A wrong secret, from another credentials file named by a reload: the
# verifier refuses, and so jam fails.
my $wrong = $s3->credentials_file . '.wrong';
open my $f, '>', $wrong or die $!;
print $f "access_key_id = $JamTest::S3::ACCESS_KEY_ID\nsecret_access_key = not-the-secret\n";
close $f;
chmod 0600, $wrong;
sql("ALTER SYSTEM SET jam.blob_store_credentials_file = '$wrong'");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT current_setting('jam.blob_store_credentials_file') = '$wrong'"),
	'a reload names another credentials file');
like(sql_error("SELECT jam.jam_get_preimage('$web_hash')"), qr/^JM033: .*HTTP 403 SignatureDoesNotMatch/,
	'signed with the wrong secret, the request is refused');
my $last = (requests())[-1];
ok(defined $last->{verified} && !$last->{verified}, 'by the verifier') or diag explain $last;
sql('ALTER SYSTEM RESET jam.blob_store_credentials_file');
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT current_setting('jam.blob_store_credentials_file') = '" . $s3->credentials_file . "'"),
	'a reload names the right file again');
is(sql("SELECT length(jam.jam_get_preimage('$web_hash'))"), '50000', 'and reads work again');

# The file must be the server user's alone.
chmod 0644, $s3->credentials_file;
like(sql_error("SELECT jam.jam_get_preimage('$web_hash')"), qr/^JM033: .*may be read by other users than the server's/,
	'a credentials file others may read is refused');
chmod 0600, $s3->credentials_file;
is(sql("SELECT length(jam.jam_get_preimage('$web_hash'))"), '50000', 'mode 0600 again: it is used');

# --- Metrics, as Prometheus reads them.

$r = $shim->request('GET', '/metrics');
like($r->{content}, qr/^jam_blob_store_requests_total\{(?=[^}]*store="s3")(?=[^}]*op="put")(?=[^}]*outcome="ok")[^}]*\} [1-9]/m,
	'/metrics counts the store\'s requests, by store, operation and outcome');
like($r->{content}, qr/^jam_blob_store_request_seconds_total\{(?=[^}]*op="get")[^}]*\} \d/m, 'their time');
like($r->{content}, qr/^jam_blob_store_bytes_total\{(?=[^}]*direction="sent")[^}]*\} [1-9]/m, 'their bytes');
like($r->{content}, qr/^jam_blob_store_reads_total\{(?=[^}]*outcome="error")[^}]*\} [1-9]/m, 'reads, by outcome');

# --- Host-style URIs: <bucket>.<endpoint>.

sql("ALTER SYSTEM SET jam.blob_store_uri_style = 'host'");
sql("ALTER SYSTEM SET jam.blob_store_endpoint = 'localhost:" . $s3->port . "'");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT current_setting('jam.blob_store_uri_style') = 'host'"),
	'host-style URIs after a reload');
is(sql("SELECT length(jam.jam_get_preimage('$web_hash'))"), '50000', 'reads work');
$last = (requests())[-1];
is($last->{host}, 'jam-test.localhost:' . $s3->port, 'addressed to <bucket>.<endpoint>');
ok($last->{verified}, 'and signed right');

$shim->stop;
$node->stop;
done_testing();
