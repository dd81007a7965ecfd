# Each service's log served as C2SP tlog-tiles through the shim
# (GET /jam/logs/{service_id}/checkpoint, .../tile/<L>/<N>[.p/<W>],
# .../tile/entries/<N>[.p/<W>]), read by a tile client nobody on the
# project wrote: golang.org/x/mod/sumdb/tlog's TileHashReader, which checks
# every tile against the signed tree (test/go/tiles only fetches and lays
# out), proves every entry of a log of a few thousand, and two checkpoints
# consistent.  Every tile and bundle, full and partial, of every level
# (level 2 too, in a log past 65,536 entries), is also checked byte for
# byte against tiles computed here from the entries alone.  Then: caching
# headers, ETag and 304, HEAD, the token and public-log rules, bad paths,
# and that the Go client does notice a changed byte.
use strict;
use warnings;

use Digest::SHA qw(sha256 sha256_hex);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JamTest;
use JamTest::Shim;
use PostgreSQL::Test::Utils;
use Test::More;

my $gopath = '/usr/share/gocode';
plan skip_all => 'go and golang.org/x/mod (golang-go, golang-golang-x-mod-dev) are not installed'
  unless -x '/usr/bin/go' && -d "$gopath/src/golang.org/x/mod/sumdb/tlog";

# The Go client, built offline from Debian's copy of x/mod.
my $tmp = tempdir(CLEANUP => 1);
my $client = "$tmp/tiles";
my ($out, $err) = ('', '');
IPC::Run::run(['go', 'build', '-o', $client, '.'], '>', \$out, '2>', \$err,
	init => sub {
		chdir 'test/go/tiles' or die "test/go/tiles: $!";
		$ENV{GO111MODULE} = 'off';
		$ENV{GOPROXY} = 'off';
		$ENV{GOPATH} = $gopath;
		$ENV{GOCACHE} = "$tmp/cache";
		$ENV{TMPDIR} = $tmp;
	}) or BAIL_OUT("cannot build the Go tile client: $err");

my $node = jam_node('tiles');
$node->safe_psql('postgres', q{
	CREATE ROLE jam_shim LOGIN IN ROLE jam_api;
	-- A log of a few thousand entries, packages and reports mixed.
	SELECT jam.jam_submit_packages('tiles', (SELECT array_agg(convert_to('a' || g, 'UTF8')) FROM generate_series(1, 1500) g));
	SELECT jam.jam_process_packages('tiles', 700);
	SELECT jam.jam_submit_packages('tiles', (SELECT array_agg(convert_to('b' || g, 'UTF8')) FROM generate_series(1, 900) g));
	SELECT jam.jam_register_service('other');
});
my $reader = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('reader', '{jam:read}', '{tiles}')});
my $other = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('other', '{jam:read}', '{other}')});
my $submitter = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('submitter', '{jam:submit}')});
my $acme = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('acme', '{jam:read}', NULL, 'acme')});
my $admin = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('admin', '{jam:admin}')});
my $key = $node->safe_psql('postgres', q{SELECT jam.jam_status()->>'verifier_key'});
my $node_name = $node->safe_psql('postgres', q{SELECT current_setting('jam.node_name')});

my $shim = JamTest::Shim->start(
	dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port),
	token => $reader);
my $prefix = $shim->url('/jam/logs/tiles');

sub go
{
	my (@args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ $client, @args ], '>', \$o, '2>', \$e);
	chomp $o;
	return $o . ($e ne '' ? " ($e)" : '');
}

sub write_bytes { my ($path, $bytes) = @_; open my $f, '>:raw', $path or die "$path: $!"; print $f $bytes; close $f; }

# --- The checkpoint: the node's signed note, briefly cacheable.
my $r = $shim->request('GET', '/jam/logs/tiles/checkpoint');
is($r->{status}, 200, 'GET /jam/logs/tiles/checkpoint: 200');
is($r->{headers}{'content-type'}, 'text/plain; charset=utf-8', 'as text/plain; charset=utf-8');
is($r->{headers}{'cache-control'}, 'private, max-age=1', 'cacheable for a second, by the client only');
like($r->{content}, qr/\A\Q$node_name\E\/tiles\n3100\n[A-Za-z0-9+\/]{43}=\n\n\x{e2}\x{80}\x{94} \Q$node_name\E /,
	'origin, size and root, then the signature');
is($r->{content}, $node->safe_psql('postgres', q{SELECT jam.jam_checkpoint('tiles')}),
	'the checkpoint jam_checkpoint signs');
my $old_checkpoint = $r->{content};
write_bytes("$tmp/old_checkpoint", $old_checkpoint);

# The log grows; the new checkpoint covers more.
$node->safe_psql('postgres', q{
	SELECT jam.jam_process_packages('tiles', 617);
});
my $checkpoint = $shim->request('GET', '/jam/logs/tiles/checkpoint')->{content};
my ($size) = $checkpoint =~ /\A[^\n]+\n(\d+)\n/;
is($size, 3717, 'the log has grown to 3717 entries');

# --- x/mod's tile client proves every entry and the two checkpoints consistent.
my $origin = "$node_name/tiles";
like(go('-token', $reader, $prefix, $key, $origin, 'prove'), qr/^ok 3717 entries proved in a tree of 3717,/,
	'tlog.TileHashReader reads the tiles, and every entry of the bundles proves (ProveRecord, CheckRecord)');
like(go('-token', $reader, $prefix, $key, $origin, 'consistency', "$tmp/old_checkpoint"),
	qr/^ok 3100 is consistent with 3717,/, 'the old checkpoint is consistent with the new (ProveTree, CheckTree)');
my $other_key = $node->safe_psql('postgres', q{SELECT jam.jam_note_verifier_key('jam', decode(repeat('11', 32), 'hex'))});
like(go('-token', $reader, $prefix, $other_key, $origin, 'prove'), qr/signature/, 'under another key: refused');
like(go('-token', $reader, $prefix, $key, 'jam/other', 'prove'), qr/origin/, 'another origin: refused');

# --- Every tile and bundle, byte for byte, against tiles computed here
# from the entries alone: SHA-256(0x00 || entry) leaves, and RFC 9162
# subtree hashes (0x01 || left || right) over full tiles.

my @entries = map { pack('H*', $_) } split /\n/, $node->safe_psql('postgres',
	q{SELECT encode(entry, 'hex') FROM jam.jam_log_entries WHERE service_id = 'tiles' AND seq < 3717 ORDER BY seq});
is(scalar @entries, 3717, 'the entries, read from the table');

# The root of 2^k hashes.
sub mth
{
	my (@h) = @_;
	while (@h > 1)
	{
		my @up;
		push @up, sha256("\x01" . $h[ 2 * $_ ] . $h[ 2 * $_ + 1 ]) for 0 .. @h / 2 - 1;
		@h = @up;
	}
	return $h[0];
}

# The tlog-tiles path of tile index n.
sub index_path
{
	my ($n) = @_;
	my $s = sprintf('%03d', $n % 1000);
	for ($n = int($n / 1000); $n > 0; $n = int($n / 1000))
	{
		$s = sprintf('x%03d/', $n % 1000) . $s;
	}
	return $s;
}

# Every tile and bundle of a tree of the given entries: { path => bytes }.
sub expected_tiles
{
	my (@leaves) = @_;
	my $n = @leaves;
	my %tiles;
	for my $i (0 .. int(($n + 255) / 256) - 1)
	{
		my @part = @leaves[ $i * 256 .. ($i * 256 + 255 < $n ? $i * 256 + 255 : $n - 1) ];
		my $w = @part == 256 ? '' : '.p/' . scalar(@part);
		$tiles{ 'tile/entries/' . index_path($i) . $w } = join '', map { pack('n', length $_) . $_ } @part;
	}
	my @level = map { sha256("\x00" . $_) } @leaves;
	for (my $l = 0; @level; $l++)
	{
		my @up;
		for my $i (0 .. int((@level + 255) / 256) - 1)
		{
			my $last = $i * 256 + 255 < @level ? $i * 256 + 255 : $#level;
			my @part = @level[ $i * 256 .. $last ];
			my $w = @part == 256 ? '' : '.p/' . scalar(@part);
			$tiles{ "tile/$l/" . index_path($i) . $w } = join '', @part;
			push @up, mth(@part) if @part == 256;
		}
		@level = @up;
	}
	return \%tiles;
}

sub compare_tiles
{
	my ($base, $tiles, $what, %opt) = @_;
	my @bad;
	for my $path (sort keys %$tiles)
	{
		my $got = $shim->request('GET', "$base/$path", %opt);
		push @bad, "$path: $got->{status} " . ($got->{status} == 200 ? 'different bytes' : $got->{content})
		  unless $got->{status} == 200 && $got->{content} eq $tiles->{$path};
	}
	is_deeply(\@bad, [], "$what: every tile and bundle as computed here (" . scalar(keys %$tiles) . ')');
}

my $expected = expected_tiles(@entries[ 0 .. 3716 ]);
ok(exists $expected->{'tile/0/014.p/133'} && exists $expected->{'tile/1/000.p/14'}
	  && exists $expected->{'tile/entries/014.p/133'}, 'of 3717 entries: 14 full level-0 tiles, partial ones of 133 and 14');
compare_tiles('/jam/logs/tiles', $expected, 'a tree of 3717');
# The partial tiles of the older checkpoint are still served.
my $older = expected_tiles(@entries[ 0 .. 3099 ]);
compare_tiles('/jam/logs/tiles', { map { $_ => $older->{$_} } grep { /\.p\// } keys %$older },
	'the partial tiles of the tree of 3100');

# --- Caching: full and partial tiles are immutable; strong ETag, 304.
for my $path ('tile/0/003', 'tile/0/014.p/133', 'tile/entries/002', 'tile/1/000.p/14')
{
	my $t = $shim->request('GET', "/jam/logs/tiles/$path");
	is($t->{headers}{'content-type'}, 'application/octet-stream', "$path: application/octet-stream");
	is($t->{headers}{'cache-control'}, 'private, max-age=31536000, immutable', "$path: immutable, private with a token");
	my $etag = '"' . sha256_hex($t->{content}) . '"';
	is($t->{headers}{etag}, $etag, "$path: a strong ETag, the SHA-256 of the bytes");
	is($t->{headers}{'x-content-type-options'}, 'nosniff', "$path: nosniff");
	my $nm = $shim->request('GET', "/jam/logs/tiles/$path", headers => { 'If-None-Match' => $etag });
	ok($nm->{status} == 304 && $nm->{content} eq '' && $nm->{headers}{etag} eq $etag,
		"$path: If-None-Match with its ETag: 304, no body, the ETag");
	is($shim->request('GET', "/jam/logs/tiles/$path", headers => { 'If-None-Match' => qq{"x", W/$etag} })->{status},
		304, "$path: a list with the weak form of it: 304");
	is($shim->request('GET', "/jam/logs/tiles/$path", headers => { 'If-None-Match' => '"' . ('0' x 64) . '"' })->{status},
		200, "$path: another ETag: 200");
	my $head = $shim->request('HEAD', "/jam/logs/tiles/$path");
	ok($head->{status} == 200 && $head->{content} eq '' && $head->{headers}{'content-length'} == length($t->{content})
		  && $head->{headers}{etag} eq $etag, "$path: HEAD: the headers, the length, no body");
	is($shim->request('HEAD', "/jam/logs/tiles/$path", headers => { 'If-None-Match' => $etag })->{status}, 304,
		"$path: HEAD with its ETag: 304");
}
is($shim->request('GET', '/jam/logs/tiles/tile/0/000', headers => { 'If-None-Match' => '*' })->{status}, 304,
	'If-None-Match: * on a tile that exists: 304');

# --- Who may read: jam:read on the service, as its receipts.
sub is_code
{
	my ($r, $status, $code, $what) = @_;
	ok($r->{status} == $status && ($r->{json}{code} // '') eq $code, "$what: $status $code")
	  or diag("got $r->{status}: $r->{content}");
}
for my $path ('checkpoint', 'tile/0/000', 'tile/entries/000')
{
	is_code($shim->request('GET', "/jam/logs/tiles/$path", token => ''), 401, 'unauthenticated', "$path without a token");
	is_code($shim->request('GET', "/jam/logs/tiles/$path", token => $other), 403, 'forbidden', "$path with another service's token");
	is_code($shim->request('GET', "/jam/logs/tiles/$path", token => $submitter), 403, 'forbidden', "$path without jam:read");
	is_code($shim->request('GET', "/jam/logs/tiles/$path", token => $acme), 403, 'forbidden', "$path with another tenant's token");
	is_code($shim->request('GET', "/jam/logs/tiles/$path", token => 'jam_0000000000000000_' . ('0' x 43)), 401,
		'unauthenticated', "$path with an unknown token");
	is($shim->request('GET', "/jam/logs/tiles/$path", token => $admin)->{status}, 200, "$path with an admin token: 200");
}
is_code($shim->request('GET', '/jam/logs/nothing-here/checkpoint', token => $admin), 404, 'service_not_found',
	'an unknown service');
is_code($shim->request('GET', '/jam/logs/nothing-here/tile/0/000', token => ''), 401, 'unauthenticated',
	'an unknown service, without a token: nothing told');
unlike(go($prefix, $key, $origin, 'prove'), qr/^ok/, 'the Go client without a token is refused');

# A public log: anyone reads it, and shared caches may keep it.
$node->safe_psql('postgres', q{SELECT jam.jam_set_log_public('tiles')});
$r = $shim->request('GET', '/jam/logs/tiles/checkpoint', token => '');
ok($r->{status} == 200 && $r->{headers}{'cache-control'} eq 'public, max-age=1', 'a public log\'s checkpoint: 200 without a token, public');
$r = $shim->request('GET', '/jam/logs/tiles/tile/0/014.p/133', token => '');
ok($r->{status} == 200 && $r->{headers}{'cache-control'} eq 'public, max-age=31536000, immutable',
	'its tiles: 200 without a token, public and immutable');
is($shim->request('GET', '/jam/logs/tiles/tile/0/014.p/133', token => $acme)->{headers}{'cache-control'},
	'private, max-age=31536000, immutable', 'with a token, private still');
like(go($prefix, $key, $origin, 'prove'), qr/^ok 3717 entries/, 'the Go client proves every entry without a token');
compare_tiles('/jam/logs/tiles', $expected, 'without a token', token => '');
is_code($shim->request('GET', '/jam/logs/other/tile/0/000', token => ''), 401, 'unauthenticated',
	'another service\'s log stays closed');
is_code($shim->request('GET', '/jam/receipts/' . ('ab' x 32), token => ''), 401, 'unauthenticated',
	'and the receipts API too');

# --- What is not in the log, and what is not a tile path.
for my $path ('tile/0/015', 'tile/0/014', 'tile/0/014.p/134', 'tile/1/000', 'tile/1/000.p/15', 'tile/2/000.p/1',
	'tile/0/x001/000', 'tile/entries/015.p/1', 'tile/entries/014')
{
	is_code($shim->request('GET', "/jam/logs/tiles/$path"), 404, 'tile_not_found', "$path: past the log");
}
for my $path ('tile/00/000', 'tile/64/000', 'tile/-1/000', 'tile/0/0', 'tile/0/0000', 'tile/0/x000/001',
	'tile/0/001/002', 'tile/0/x1/002', 'tile/0/000.p/0', 'tile/0/000.p/256', 'tile/0/000.p/01',
	'tile/0/000.q/1', 'tile/0/000.p/1/2', 'tile/0/%30%30%30', 'tile/entries/x000/000', 'tile/entries/00',
	'tile/0', 'tile/entries/0/000', 'tile/0/x009/x223/x372/x036/x854/x775/x808/000')
{
	is_code($shim->request('GET', "/jam/logs/tiles/$path"), 400, 'invalid_argument', "$path: not a tile path");
}
for my $path ('tile/0/000/', 'tile/0/000.p/', 'tile/0//000', 'tile/', 'tile')
{
	is_code($shim->request('GET', "/jam/logs/tiles/$path"), 404, 'not_found', "$path: no route");
}
is_code($shim->request('GET', '/jam/logs/tiles/tile/0/000?x=1'), 400, 'invalid_argument', 'a query parameter');
is_code($shim->request('POST', '/jam/logs/tiles/tile/0/000', body => ''), 405, 'method_not_allowed', 'POST');
is_code($shim->request('GET', '/jam/logs/bad%20id/tile/0/000'), 400, 'invalid_service_id', 'a malformed service id');
$r = $shim->request('OPTIONS', '/jam/logs/tiles/tile/entries/000');
ok($r->{status} == 204 && $r->{headers}{allow} eq 'GET, HEAD, OPTIONS', 'OPTIONS: 204, GET and HEAD');

# --- The Go client is no rubber stamp: a copy of the log's files proves,
# and one changed byte in a tile or a bundle does not.
my $copy = "$tmp/copy";
for my $path ('checkpoint', keys %$expected)
{
	my $dir = "$copy/$path";
	$dir =~ s{/[^/]+$}{};
	make_path($dir);
	write_bytes("$copy/$path", $shim->request('GET', "/jam/logs/tiles/$path")->{content});
}
like(go($copy, $key, $origin, 'prove'), qr/^ok 3717 entries/, 'a copy of the files in a folder proves');
sub altered
{
	my ($path, $offset) = @_;
	my $bytes = $expected->{$path};
	my $altered = $bytes;
	substr($altered, $offset, 1) = chr(ord(substr($bytes, $offset, 1)) ^ 1);
	write_bytes("$copy/$path", $altered);
	my $answer = go($copy, $key, $origin, 'prove');
	write_bytes("$copy/$path", $bytes);
	return $answer;
}
like(altered('tile/0/005', 1000), qr/inconsistent|entry|tile/, 'a changed byte in a level-0 tile is noticed');
like(altered('tile/1/000.p/14', 40), qr/inconsistent|entry|tile/, 'in a level-1 tile');
like(altered('tile/entries/007', 500), qr/entry 1\d\d\d/, 'in an entry bundle');

# --- Level 2: a log past 65,536 entries, its tiles of every level.
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_packages('big', (SELECT array_agg(convert_to('c' || g, 'UTF8')) FROM generate_series(b, b + 9999) g))
	FROM generate_series(1, 60001, 10000) b;
	SELECT jam.jam_submit_packages('big', (SELECT array_agg(convert_to('c' || g, 'UTF8')) FROM generate_series(70001, 70300) g));
	SELECT jam.jam_set_log_public('big');
});
@entries = map { pack('H*', $_) } split /\n/, $node->safe_psql('postgres',
	q{SELECT encode(entry, 'hex') FROM jam.jam_log_entries WHERE service_id = 'big' ORDER BY seq});
is(scalar @entries, 70300, 'a log of 70,300 entries');
my %big = %{ expected_tiles(@entries) };
ok(exists $big{'tile/2/000.p/1'} && exists $big{'tile/1/000'} && exists $big{'tile/1/001.p/18'}
	  && exists $big{'tile/0/274.p/156'}, 'of 70,300 entries: a partial level-2 tile of 1');
my %sample = map { $_ => $big{$_} } grep { !m{^tile/(?:0|entries)/} || m{/(?:000|137|273|274\.p/156)$} } keys %big;
compare_tiles('/jam/logs/big', \%sample, 'levels 1 and 2, and level-0 tiles at the ends, of 70,300 entries');
like(go($shim->url('/jam/logs/big'), $key, "$node_name/big", 'consistency', "$tmp/old_checkpoint"),
	qr/origin/, 'another log\'s checkpoint is not taken as an old one of this log');
$node->safe_psql('postgres', q{SELECT jam.jam_submit_packages('big', ARRAY['\x01'::bytea, '\x02'::bytea])});
write_bytes("$tmp/big_old", $shim->request('GET', '/jam/logs/big/checkpoint', token => '')->{content});
$node->safe_psql('postgres', q{SELECT jam.jam_submit_packages('big', (SELECT array_agg(convert_to('d' || g, 'UTF8')) FROM generate_series(1, 500) g))});
like(go($shim->url('/jam/logs/big'), $key, "$node_name/big", 'consistency', "$tmp/big_old"),
	qr/^ok 70302 is consistent with 70802,/, 'consistency across a level-2 tree, without a token');

is($shim->stop, 0, 'the shim stops cleanly');
$node->stop;
done_testing();
