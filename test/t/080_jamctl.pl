# jamctl, the command-line client, end to end: every verb against a live
# jam-shim on loopback (success paths, every exit code, --json parsed,
# --all across pages, a 429 waited out with --retry, a 503 while Postgres
# is stopped, binary-safe preimage get), human output on a terminal (a
# pty), and offline verification of receipts: good and tampered proof
# files, every byte of one changed in turn, cross-checked with the Go
# reference code (test/go/tlogproof, as 061 builds it) and with the
# transparency-dev inclusion vectors.  What the shim does not serve yet
# (token and quota administration; the proof route before it lands), and
# a server that lies, are played by a small fake server in this file.
#
# No timing is asserted beyond "waited at least as Retry-After said".

use strict;
use warnings;

use Digest::SHA qw(sha256);
use File::Find;
use File::Temp qw(tempdir);
use IO::Pty;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::Shim;

my $jamctl = ($ENV{JAM_SRC_DIR} // '') . '/cli/jamctl';
BAIL_OUT("$jamctl is missing: run make (JAM_SRC_DIR is set by scripts/test.sh)") unless -x $jamctl;

my $tmp = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical->allow_nonref;
sub hash_hex { return unpack('H*', blake2b($_[0], 32)) }
sub write_file { my ($path, $bytes) = @_; open my $f, '>:raw', $path or die "$path: $!"; print $f $bytes; close $f; }
sub read_bytes { my ($path) = @_; open my $f, '<:raw', $path or return undef; local $/; my $b = <$f>; close $f; return $b; }

# --- The cluster and the shim, as make run sets them up.

my $node = jam_node('jamctl', "jam.allowed_media_types = 'text/*, application/octet-stream'");
JamTest::Shim::prepare_database($node);
my $admin = $node->safe_psql('postgres',
	q{SELECT jam.jam_create_token('admin', ARRAY['jam:read','jam:submit','jam:process','jam:admin'])});
my $reader = $node->safe_psql('postgres', q{SELECT jam.jam_create_token('reader', ARRAY['jam:read'])});
# A time zone with a half-hour offset, so that jamctl reads timestamps as
# Postgres writes them anywhere (receipt --entry rebuilds processed_at).
my $dsn = sprintf(q{host=%s port=%d dbname=postgres user=jam_shim options='-c TimeZone=Asia/Kolkata'},
	$node->host, $node->port);
my $shim = JamTest::Shim->start(dsn => $dsn, token => $admin, env => { JAM_POOL_SIZE => 4, JAM_THREADS => 16 });
my $url = 'http://127.0.0.1:' . $shim->port;

my $admin_file = "$tmp/admin.token";
my $reader_file = "$tmp/reader.token";
write_file($admin_file, "$admin\n");
write_file($reader_file, $reader);
chmod 0600, $admin_file, $reader_file;

# Runs jamctl with stdout and stderr captured (not terminals).  Options:
# in (stdin bytes), env (more variables; undef deletes), url, token_file
# (undef: none), args_only (no --url).  Returns {rc, out, err, json}.
sub jc
{
	my ($args, %opt) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	delete @ENV{qw(JAM_URL JAM_TOKEN JAM_TOKEN_FILE)};
	$ENV{JAM_URL} = $opt{url} // $url;
	my $tf = exists $opt{token_file} ? $opt{token_file} : $admin_file;
	$ENV{JAM_TOKEN_FILE} = $tf if defined $tf;
	for my $k (keys %{ $opt{env} // {} })
	{
		if (defined $opt{env}{$k}) { $ENV{$k} = $opt{env}{$k} }
		else { delete $ENV{$k} }
	}
	# Standard input comes from a file, not a pipe: a jamctl that refuses
	# its arguments exits without reading it, and IPC::Run dies of the
	# EPIPE its write into the pipe then gets.
	my $in = "$tmp/stdin";
	open(my $fh, '>', $in) or die "$in: $!";
	binmode($fh);
	print $fh $opt{in} // '';
	close($fh) or die "$in: $!";
	IPC::Run::run([ $jamctl, @$args ], '<', $in, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	my $rc = $? >> 8;
	my $doc = eval { $json->decode($out) } if length $out;
	return { rc => $rc, out => $out, err => $err, json => $doc };
}

# Runs jamctl with stdout (and, unless stderr_file, stderr) on a pty: what
# a person at a terminal sees.  Returns {rc, out}, with the pty's CRLF as LF.
sub jc_tty
{
	my ($args, %opt) = @_;
	my $pty = IO::Pty->new;
	my $slave = $pty->slave;
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		close $pty;
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>&', $slave or die;
		if ($opt{stderr_file}) { open STDERR, '>', $opt{stderr_file} or die }
		else { open STDERR, '>&', $slave or die }
		delete @ENV{qw(JAM_TOKEN JAM_TOKEN_FILE)};
		$ENV{JAM_URL} = $url;
		$ENV{JAM_TOKEN_FILE} = $admin_file;
		{ no warnings 'exec'; exec $jamctl, @$args; }
		POSIX::_exit(127);
	}
	close $slave;
	my $out = '';
	while (1)
	{
		my $n = sysread($pty, my $buf, 65536);
		last unless $n;    # EIO once the child has closed the pty
		$out .= $buf;
	}
	waitpid($pid, 0);
	my $rc = $? >> 8;
	$out =~ s/\r\n/\n/g;
	return { rc => $rc, out => $out };
}

# The stable code of a jamctl error line on stderr.
sub code_of { my ($r) = @_; return $r->{err} =~ /^jamctl: ([a-z_0-9]+): /m ? $1 : '' }

# Asserts an exit code and an error code, with the output on failure.
sub fails_with
{
	my ($r, $rc, $code, $name) = @_;
	my $ok = $r->{rc} == $rc && code_of($r) eq $code;
	ok($ok, "$name: exit $rc, $code") or diag("exit $r->{rc}; stderr: $r->{err}; stdout: $r->{out}");
	return $ok;
}

sub succeeds
{
	my ($r, $name) = @_;
	ok($r->{rc} == 0, $name) or diag("exit $r->{rc}; stderr: $r->{err}; stdout: $r->{out}");
	return $r;
}

# --- help, usage, exit code 1

{
	my $r = jc(['help']);
	is($r->{rc}, 0, 'jamctl help: exit 0');
	for my $verb (qw(preimage package packages reports process report receipt roots checkpoint status quota tokens verify))
	{
		like($r->{out}, qr/^  \Q$verb\E\b/m, "jamctl help lists $verb");
		my $h = jc([ $verb, '--help' ]);
		ok($h->{rc} == 0 && $h->{out} =~ /^usage: jamctl \Q$verb\E/m, "jamctl $verb --help");
	}
	for my $sub ('preimage put', 'preimage get', 'preimage stat', 'preimage hash', 'package submit', 'package id')
	{
		my $h = jc([ split(/ /, $sub), '--help' ]);
		ok($h->{rc} == 0 && $h->{out} =~ /^usage: jamctl \Q$sub\E/m, "jamctl $sub --help");
	}
	like(jc([ 'tokens', 'create', '--help' ])->{out}, qr/^ +jamctl tokens create NAME --scope/m, 'jamctl tokens create --help');
	like($r->{out}, qr/0 ok.*1 usage.*2 not found.*3 unauthenticated.*4 rate limited.*5 server unavailable.*6 verification failed.*7 nothing pending/s,
		'the help documents the exit codes');
	$r = jc([]);
	is($r->{rc}, 1, 'no verb: exit 1');
	like($r->{err}, qr/^usage: jamctl/m, 'with the usage on stderr');
	like(jc(['--version'])->{out}, qr/^jamctl \d+\.\d+\.\d+$/, '--version');
	fails_with(jc(['frobnicate']), 1, 'usage', 'an unknown verb');
	fails_with(jc([ 'packages', '--frob' ]), 1, 'usage', 'an unknown option');
	fails_with(jc([ 'packages', '--limit' ]), 1, 'usage', 'an option without its value');
	fails_with(jc([ 'packages', '--offset', '2', '--all' ]), 1, 'usage', '--offset with --all');
	fails_with(jc([ 'preimage', 'get', 'XYZ' ]), 1, 'usage', 'a malformed hash, refused before any request');
	fails_with(jc([ 'package', 'submit', '-' ], in => 'x'), 1, 'usage', 'submit without --service');
	$r = jc([ '--token', $admin, 'status' ]);
	fails_with($r, 1, 'usage', 'a token on the command line is refused');
	like($r->{err}, qr/--token-file.*JAM_TOKEN/, 'saying where a token goes');
	fails_with(jc([ 'status', "--token=$admin" ]), 1, 'usage', 'after the verb too');
	fails_with(jc([ 'status' ], token_file => "$tmp/no-such-file"), 1, 'token_file', 'an unreadable token file');
}

# --- Output: JSON when stdout is not a terminal, text on a terminal

{
	my $r = succeeds(jc(['status']), 'status');
	is(ref $r->{json}, 'HASH', 'piped, the output is one JSON document');
	like($r->{json}{verifier_key} // '', qr/^jam\+[0-9a-f]{8}\+/, 'jam_status() with the verifier key');
	$r = succeeds(jc([ '--human', 'status' ]), 'status --human');
	like($r->{out}, qr/^verifier key\s+jam\+[0-9a-f]{8}\+/m, '--human: aligned text');
	ok(!defined $r->{json}, 'not JSON');
	my $t = jc_tty(['status']);
	is($t->{rc}, 0, 'status on a terminal');
	like($t->{out}, qr/^node name\s+jam$/m, 'on a terminal the output is text');
	$t = jc_tty([ 'status', '--json' ]);
	ok(eval { $json->decode($t->{out}) }, '--json on a terminal: JSON');
	$r = succeeds(jc([ 'status', '--json', '--human' ]), 'the last of --json and --human wins');
	ok(!defined $r->{json}, 'text');
	$r = jc(['status'], token_file => undef);
	is($r->{rc}, 0, 'status without a token: the public part');
	ok(!exists $r->{json}{counts}, 'without counts');
}

# --- Preimages

my $text = "hello, jamctl\n";
my $text_hash = hash_hex($text);
write_file("$tmp/text.txt", $text);
{
	my $r = succeeds(jc([ 'preimage', 'put', "$tmp/text.txt", '--media-type', 'text/plain' ]), 'preimage put');
	is($r->{json}{hash}, $text_hash, 'its hash is BLAKE2b-256 of the bytes');
	is($r->{json}{created}, JSON::PP::true, 'created');
	$r = succeeds(jc([ '--human', 'preimage', 'put', '-' ], in => $text), 'the same bytes from stdin');
	is($r->{out}, "$text_hash  existing\n", 'the hash and "existing"');
	$r = succeeds(jc([ '--human', 'preimage', 'hash', "$tmp/text.txt" ]), 'preimage hash (offline)');
	is($r->{out}, "$text_hash\n", 'the same hash, computed locally');

	$r = succeeds(jc([ 'preimage', 'stat', $text_hash ]), 'preimage stat');
	is_deeply([ @{ $r->{json} }{qw(hash size media_type refcount storage_class)} ],
		[ $text_hash, length($text), 'text/plain', 0, 'inline' ], 'the meta');
	$r = succeeds(jc([ 'preimage', '--stat', '--hash', $text_hash, '--meta' ]), 'the prototype\'s spelling');
	is($r->{json}{hash}, $text_hash, 'the same meta');
	$r = succeeds(jc([ '--human', 'preimage', 'stat', $text_hash ]), 'stat --human');
	like($r->{out}, qr/^storage class\s+inline$/m, 'as text');
	fails_with(jc([ 'preimage', 'stat', '0' x 64 ]), 2, 'preimage_not_found', 'stat of an unknown hash');
	fails_with(jc([ 'preimage', 'get', '0' x 64 ]), 2, 'preimage_not_found', 'get of an unknown hash');

	# Binary-safe: every byte value, and more than the progress bar's 1 MiB.
	my $blob = join('', map { chr($_ % 256) } 0 .. 1_200_000) . "\0\r\n\x1b[2J";
	my $blob_hash = hash_hex($blob);
	write_file("$tmp/blob.bin", $blob);
	$r = succeeds(jc([ 'preimage', 'put', "$tmp/blob.bin" ]), 'put 1.2 MB of binary');
	is($r->{json}{hash}, $blob_hash, 'its hash');
	is($r->{json}{media_type}, 'application/octet-stream', 'the default media type');
	$r = succeeds(jc([ 'preimage', 'get', $blob_hash ]), 'get to a pipe');
	ok($r->{out} eq $blob, 'the same bytes, byte for byte');
	$r = succeeds(jc([ 'preimage', 'get', $blob_hash, '-o', "$tmp/got.bin" ]), 'get -o FILE');
	ok((read_bytes("$tmp/got.bin") // '') eq $blob, 'the file holds the same bytes');
	is($r->{out}, '', 'and nothing is written to stdout');
	my @left = glob("$tmp/got.bin.jamctl-*");
	is(scalar @left, 0, 'no temporary file is left behind');

	my $t = jc_tty([ 'preimage', 'get', $blob_hash ]);
	is($t->{rc}, 1, 'binary bytes to a terminal: refused, exit 1');
	like($t->{out}, qr/jamctl: binary_output: .*-o FILE/, 'saying how to get them');
	unlike($t->{out}, qr/\x1b\[2J/, 'none of the bytes reached the terminal');
	$t = jc_tty([ 'preimage', 'get', $text_hash ]);
	is($t->{rc}, 0, 'text to a terminal is fine');
	is($t->{out}, $text, 'and printed');
	$t = jc_tty([ 'preimage', 'get', $blob_hash, '-o', "$tmp/got2.bin" ]);
	is($t->{rc}, 0, 'get -o with stderr on a terminal');
	like($t->{out}, qr/download \[#+\] 100% 1\.1 MiB \/ 1\.1 MiB/, 'shows a progress bar over 1 MiB');
	$t = jc_tty([ 'preimage', 'put', "$tmp/blob.bin", '-q' ]);
	unlike($t->{out}, qr/upload \[/, '-q: no progress bar');
	$t = jc_tty([ 'preimage', 'put', "$tmp/text.txt" ]);
	unlike($t->{out}, qr/\[#/, 'nor for small transfers');
	$t = jc_tty([ 'preimage', 'put', "$tmp/blob.bin" ]);
	like($t->{out}, qr/upload \[#+\] 100%/, 'an upload over 1 MiB has one');
}

# --- Packages: ids computed locally, as README documents them

{
	# README's test vectors.
	my @vectors = (
		[ [ '--service', 'svc-1' ], '', '1aa72b0aa1e552fc4cf245f560eba91d4a60981b12d99536257e1b62b48aa6ac' ],
		[ [ '--service', 'svc-1' ], 'hello', '9a01a7d142053abe975174e27b221056e59f8fbc42e796540a676c531ed67bfa' ],
		[ [ '--service', 'svc-1', '--weight', '7', '--preimage', hash_hex('hello'), '--preimage', hash_hex('') ],
		  'payload', 'be42a13aeccb3663b489a34417e169bc2e8de4ec47738246a24826edaa3996a3' ]);
	for my $v (@vectors)
	{
		my $r = jc([ 'package', 'id', @{ $v->[0] }, '-' ], in => $v->[1]);
		is($r->{json}{id}, $v->[2], "package id of README's vector for \"$v->[1]\"");
	}

	my $r = succeeds(jc([ 'package', 'submit', '--service', 'svc-a', '--preimage', $text_hash, '--weight', '3',
		'--contract-version', '1', '--with-receipt', '-' ], in => "job 1"), 'package submit');
	my $id = $r->{json}{id};
	is($id, $node->safe_psql('postgres',
		"SELECT jam.jam_package_id('svc-a', 'job 1'::bytea, 1, 3, ARRAY['$text_hash'])"),
		'the id is the one jam_package_id gives');
	is($r->{json}{created}, JSON::PP::true, 'created');
	is($r->{json}{receipt}{hash}, $id, '--with-receipt: its receipt');
	$r = succeeds(jc([ '--human', 'package', 'submit', '--service', 'svc-a', '--preimage', $text_hash, '--weight', '3', '-' ],
		in => "job 1"), 'the same package again');
	like($r->{out}, qr/^\Q$id\E  existing  pending$/m, 'is the existing one');
	$r = succeeds(jc([ 'package', 'get', $id ]), 'package get');
	is(decode_base64($r->{json}{payload}), 'job 1', 'its payload');

	$r = jc([ 'package', 'submit', '--service', 'svc-a', '--declared-hash', 'f' x 64, '-' ], in => 'job 2');
	fails_with($r, 6, 'hash_mismatch', 'a declared hash the server computes otherwise');
	$r = jc([ 'package', 'submit', '--service', 'svc-a', '--preimage', 'e' x 64, '-' ], in => 'job 3');
	fails_with($r, 8, 'missing_preimage', 'a package referencing a missing preimage (422)');
	fails_with(jc([ 'package', 'get', 'a' x 64 ]), 2, 'package_not_found', 'package get of an unknown id');
}

# --- Lists: --json envelopes, --all across pages, streamed text

my @page_ids;
{
	for my $i (1 .. 7)
	{
		my $r = jc([ 'package', 'submit', '--service', 'svc-page', '-' ], in => "page item $i");
		push @page_ids, $r->{json}{id};
	}
	my $r = succeeds(jc([ 'packages', '--service', 'svc-page', '--limit', '3' ]), 'packages --limit 3');
	is(scalar @{ $r->{json}{items} }, 3, 'one page of 3');
	is($r->{json}{total}, 7, 'total 7');
	is($r->{json}{next_offset}, 3, 'next_offset');
	$r = succeeds(jc([ 'packages', '--service', 'svc-page', '--limit', '3', '--offset', '6' ]), '--offset 6');
	is_deeply([ map { $_->{id} } @{ $r->{json}{items} } ], [ $page_ids[6] ], 'the last item');
	$r = succeeds(jc([ 'packages', '--service', 'svc-page', '--limit', '2', '--all' ]), 'packages --all --limit 2');
	is_deeply([ map { $_->{id} } @{ $r->{json}{items} // [] } ], \@page_ids, 'every item, in order, across 4 pages');
	is($r->{json}{count}, 7, 'count 7');
	$r = succeeds(jc([ 'packages', '--service', 'svc-page', '--limit', '2', '--after', '0' ]), '--after 0');
	ok(defined $r->{json}{next_after}, 'keyset paging: next_after');
	$r = succeeds(jc([ '--human', 'packages', '--service', 'svc-page', '--limit', '2', '--all' ]), '--all --human');
	my @lines = split /\n/, $r->{out};
	is(scalar @lines, 8, 'a header and 7 rows');
	like($lines[0], qr/^ID\s+SERVICE\s+STATUS\s+WEIGHT\s+SIZE\s+SUBMITTED$/, 'the header');
	my @starts = map { index($_, 'svc-page') } @lines[ 1 .. 7 ];
	is_deeply(\@starts, [ (66) x 7 ], 'the columns line up across pages');
	$r = succeeds(jc([ '--human', 'packages', '--service', 'svc-page', '--limit', '3' ]), 'one page --human');
	like($r->{out}, qr/^\(7 in all; more: --offset 3, or --all\)$/m, 'says how to get more');
	$r = succeeds(jc([ '--human', 'packages', '--service', 'svc-none' ]), 'an empty list');
	is($r->{out}, "(none)\n", 'says (none)');
	$r = succeeds(jc([ 'packages', '--status', 'pending', '--all' ]), '--status pending --all');
	ok(!grep({ $_->{status} ne 'pending' } @{ $r->{json}{items} }), 'only pending packages');
	fails_with(jc([ 'packages', '--status', 'bogus' ]), 8, 'invalid_status', 'an unknown status (400)');
	fails_with(jc([ 'packages', '--limit', '5000' ]), 1, 'usage', '--limit over 1000');
}

# --- Processing and reports; exit 7 when nothing is pending

my $report;
{
	my $r = succeeds(jc([ 'process', '--service', 'svc-page' ]), 'process');
	is($r->{json}{package_id}, $page_ids[0], 'the oldest pending package of the service');
	is($r->{json}{status}, 'applied', 'applied');
	$report = $r->{json};
	$r = succeeds(jc([ 'process', '--service', 'svc-page', '--max', '3' ]), 'process --max 3');
	is($r->{json}{processed}, 3, 'three in one transaction');
	$r = succeeds(jc([ '--human', 'process', '--service', 'svc-page', '--max', '10' ]), 'process --max 10 --human');
	like($r->{out}, qr/^processed 3$/m, 'the rest');
	$r = jc([ 'process', '--service', 'svc-page' ]);
	is($r->{rc}, 7, 'nothing pending: exit 7');
	is($r->{out}, '', 'nothing on stdout');
	like($r->{err}, qr/^jamctl: nothing_pending: /, 'and a note on stderr');
	is(jc([ 'process', '--service', 'svc-page', '-q' ])->{err}, '', '-q: not even that');

	$r = succeeds(jc([ 'report', '--package', $page_ids[0] ]), 'report --package');
	is($r->{json}{report_hash}, $report->{report_hash}, 'the report');
	$r = succeeds(jc([ 'report', $page_ids[0], '--with-receipt' ]), 'report ID --with-receipt');
	is($r->{json}{receipt}{kind}, 'report', 'with the report\'s receipt');
	is($r->{json}{receipt}{hash}, $report->{report_hash}, 'of its hash');
	my $pending = jc([ 'package', 'submit', '--service', 'svc-b', '-' ], in => 'pending one')->{json}{id};
	fails_with(jc([ 'report', '--package', $pending ]), 2, 'report_not_found', 'the report of a pending package');

	$r = succeeds(jc([ 'reports', '--service', 'svc-page', '--all', '--limit', '3' ]), 'reports --all');
	is_deeply([ map { $_->{package_id} } @{ $r->{json}{items} } ], \@page_ids, 'every report, in order');
	$r = succeeds(jc([ '--human', 'reports', '--service', 'svc-page' ]), 'reports --human');
	like($r->{out}, qr/^PACKAGE\s+SERVICE\s+STATUS\s+REFINE/, 'a table');
}

# --- Receipts, roots, checkpoints

{
	my $r = succeeds(jc([ 'receipt', $page_ids[0] ]), 'receipt');
	is($r->{json}{kind}, 'package', 'a package\'s receipt');
	ok(ref $r->{json}{inclusion}{proof} eq 'ARRAY', 'with its inclusion proof');
	fails_with(jc([ 'receipt', 'c' x 64 ]), 2, 'receipt_not_found', 'no receipt for an unknown hash');

	$r = succeeds(jc(['roots']), 'roots');
	my %roots = map { $_->{service_id} => $_ } @{ $r->{json} };
	is($roots{'svc-page'}{tree_size}, 14, 'svc-page: 7 packages and 7 reports');
	$r = succeeds(jc([ '--human', 'roots' ]), 'roots --human');
	like($r->{out}, qr/^svc-page\s+14\s+[0-9a-f]{64}$/m, 'a table');

	$r = succeeds(jc([ 'checkpoint', '--service', 'svc-page' ]), 'checkpoint');
	like($r->{out}, qr/\Ajam\/svc-page\n14\n[A-Za-z0-9+\/]{43}=\n\n\x{e2}\x{80}\x{94} jam [A-Za-z0-9+\/]+=*\n\z/,
		'the signed note, as it is (even piped)');
	$r = succeeds(jc([ 'checkpoint', 'svc-page', '--json' ]), 'checkpoint --json');
	is_deeply([ @{ $r->{json} }{qw(origin tree_size)} ], [ 'jam/svc-page', 14 ], 'described');
	fails_with(jc([ 'checkpoint', 'no-such-service' ]), 2, 'service_not_found', 'an unknown service');
}

# --- Authentication: exit 3

{
	my $r = jc(['roots'], token_file => undef);
	fails_with($r, 3, 'unauthenticated', 'no token');
	like($r->{err}, qr/no token given: use --token-file/, 'saying where a token goes');
	fails_with(jc(['roots'], token_file => undef, env => { JAM_TOKEN => 'jam_0000000000000000_nope' }), 3,
		'unauthenticated', 'an unknown token from JAM_TOKEN');
	succeeds(jc(['roots'], token_file => undef, env => { JAM_TOKEN => $admin }), 'JAM_TOKEN');
	succeeds(jc([ '--token-file', $admin_file, 'roots' ], token_file => undef), '--token-file');
	succeeds(jc([ 'package', 'submit', '--service', 'svc-a', '-' ], in => 'by JAM_TOKEN', token_file => $reader_file,
		env => { JAM_TOKEN => $admin }), 'JAM_TOKEN wins over JAM_TOKEN_FILE');
	my $both = jc([ '--token-file', $reader_file, 'package', 'submit', '--service', 'svc-a', '-' ],
		in => 'x', env => { JAM_TOKEN => $admin });
	fails_with($both, 3, 'forbidden', '--token-file wins over JAM_TOKEN, and a reader may not submit (403)');
	write_file("$tmp/bad.token", "jam_x\nsecond line\n");
	fails_with(jc(['roots'], token_file => "$tmp/bad.token"), 1, 'token_file',
		'a token file of two lines (it would inject a header)');
}

# --- Rate limits: exit 4, and --retry waits as Retry-After says

{
	# 60 a minute with a burst of 60: one package of weight 60 spends it, and
	# the next waits a second.
	$node->safe_psql('postgres', q{SELECT jam.jam_set_quota(service_id => 'svc-rate', rate_limit_per_minute => 60)});
	succeeds(jc([ 'package', 'submit', '--service', 'svc-rate', '--weight', '60', '-' ], in => 'heavy'),
		'a submit that spends the burst');
	my $r = jc([ 'package', 'submit', '--service', 'svc-rate', '-' ], in => 'light 1');
	fails_with($r, 4, 'rate_limited', 'the next one: 429');
	# Empty the bucket again (it refills one a second: a package of weight 1
	# is let through until one is refused), then wait it out.
	my $n = 0;
	$n++ while $n < 100 && jc([ 'package', 'submit', '--service', 'svc-rate', '-' ], in => "drain $n")->{rc} == 0;
	my $t0 = time;
	$r = jc([ '--retry', '5', 'package', 'submit', '--service', 'svc-rate', '-' ], in => 'light 2');
	my $waited = time - $t0;
	is($r->{rc}, 0, '--retry 5: waited out') or diag($r->{err});
	like($r->{err}, qr/^jamctl: rate_limited \(HTTP 429\); retrying in [1-9]\d* s \(1 of 5\)$/m, 'saying so');
	cmp_ok($waited, '>=', 0.9, 'for the second Retry-After asked for');
	is($r->{json}{created}, JSON::PP::true, 'and the package was stored');
	$r = jc([ '-q', '--retry', '0', 'package', 'submit', '--service', 'svc-rate', '--weight', '61', '-' ], in => 'too heavy');
	fails_with($r, 4, 'quota_exceeded', 'a weight over the burst: quota_exceeded');
}

# --- The offline proof: receipt --proof and verify

my $key = $node->safe_psql('postgres', q{SELECT jam.jam_status()->>'verifier_key'});
# A log of 40 entries: 30 packages, then 10 reports.
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_packages('proofs', (SELECT array_agg(convert_to('p' || g, 'UTF8')) FROM generate_series(1, 30) g));
	SELECT jam.jam_process_packages('proofs', 10);
});
# Each entry's hash, its 74 bytes, and for a report its package, in log order.
my @entries = map { [ split /\|/, $_, -1 ] } split /\n/, $node->safe_psql('postgres',
	q{SELECT encode(e.hash, 'hex'), encode(e.entry, 'hex'), coalesce(encode(r.package_id, 'hex'), '')
	  FROM jam.jam_log_entries e LEFT JOIN jam.jam_work_reports r ON r.report_hash = e.hash
	  WHERE e.service_id = 'proofs' ORDER BY e.seq});
my %proofs;
sub proof_of
{
	# safe_psql takes off the newline psql adds; the proof keeps its own.
	return $proofs{ $_[0] } //= $node->safe_psql('postgres', "SELECT jam.jam_receipt_proof('$_[0]')");
}

my ($hash, $leaf_hex) = @{ $entries[27] };
my @altered_rc;    # jamctl's exit code for the proof with byte i changed
my $proof = proof_of($hash);
my $leaf = pack('H*', $leaf_hex);
write_file("$tmp/proof", $proof);
write_file("$tmp/leaf", $leaf);

# receipt --proof: from the shim's route once it is there; until then from
# a stand-in serving jam_receipt_proof()'s text on the same contract.
{
	my $live = $shim->request('GET', "/jam/receipts/$hash/proof");
	my ($target, $fake);
	if ($live->{status} == 200)
	{
		$target = $url;
		note('the shim serves GET /jam/receipts/{hash}/proof');
	}
	else
	{
		$fake = fake_server({ "GET /jam/receipts/$hash/proof" => [ 200, 'text/plain; charset=utf-8', $proof ] });
		$target = "http://127.0.0.1:$fake->{port}";
		note('the shim does not serve GET /jam/receipts/{hash}/proof yet: a stand-in serves jam_receipt_proof()');
	}
	my $r = succeeds(jc([ 'receipt', $hash, '--proof' ], url => $target), 'receipt --proof');
	is($r->{out}, $proof, 'writes the proof as it came');
	$r = succeeds(jc([ 'receipt', $hash, '--proof', '-o', "$tmp/proof.got" ], url => $target), 'receipt --proof -o');
	is(read_bytes("$tmp/proof.got"), $proof, 'into the file');
	$r = succeeds(jc([ 'receipt', $hash, '--proof', '--json' ], url => $target), 'receipt --proof --json');
	is_deeply([ @{ $r->{json} }{qw(hash index proof)} ], [ $hash, 27, $proof ], 'wrapped, when asked');
	if ($fake)
	{
		my @seen = fake_requests($fake);
		is($seen[0]{headers}{authorization}, "Bearer $admin", 'with the bearer token');
		fake_stop($fake);
	}
}

{
	my $r = succeeds(jc([ 'verify', "$tmp/proof", '--key', $key, '--leaf-data', "$tmp/leaf", '--hash', $hash,
		'--origin', 'jam/proofs' ], token_file => undef, url => 'http://127.0.0.1:1'),
		'verify: a good proof, offline (no token, no server)');
	is($r->{json}{ok}, JSON::PP::true, 'ok');
	is_deeply($r->{json}{checks}, { format => 'ok', signature => 'ok', origin => 'ok', inclusion => 'ok', leaf => 'ok' },
		'every check passed');
	is_deeply([ @{ $r->{json} }{qw(index tree_size origin)} ], [ 27, 40, 'jam/proofs' ], 'what it proves');
	is($r->{json}{entry}{hash}, $hash, 'the entry is of the package');
	is($r->{json}{entry}{kind}, 'package', 'a package entry');
	$r = succeeds(jc([ '--human', 'verify', "$tmp/proof", '--key', $key, '--leaf-data', "$tmp/leaf" ]), 'verify --human');
	like($r->{out}, qr/^ok: entry 27 of jam\/proofs \(size 40\)/, 'says what it proved');
	$r = succeeds(jc([ 'verify', '-', '--key', $key, '--leaf-hash', unpack('H*', sha256("\0$leaf")) ], in => $proof),
		'from stdin, with --leaf-hash');
	$r = succeeds(jc([ 'verify', "$tmp/proof", '--key', $key ]), 'without a leaf');
	like($r->{json}{checks}{inclusion}, qr/^shape only/, 'only the path\'s shape is checked, and it says so');

	write_file("$tmp/leaf26", pack('H*', $entries[26][1]));
	my $v = jc([ 'verify', "$tmp/proof", '--key', $key, '--leaf-data', "$tmp/leaf26" ]);
	fails_with($v, 6, 'verification_failed', 'another entry\'s leaf');
	like($v->{err}, qr/: inclusion: /, 'fails the inclusion check');
	is($v->{json}{failed}, 'inclusion', 'and the JSON says which');
	my $other_key = $node->safe_psql('postgres',
		q{SELECT jam.jam_note_verifier_key('jam', decode(repeat('11', 32), 'hex'))});
	$v = jc([ 'verify', "$tmp/proof", '--key', $other_key, '--leaf-data', "$tmp/leaf" ]);
	fails_with($v, 6, 'verification_failed', 'another key');
	like($v->{err}, qr/: signature: /, 'fails the signature check');
	$v = jc([ 'verify', "$tmp/proof", '--key', $key, '--leaf-data', "$tmp/leaf", '--origin', 'jam/other' ]);
	like($v->{err}, qr/: origin: /, 'another origin fails the origin check');
	$v = jc([ 'verify', "$tmp/proof", '--key', $key, '--leaf-data', "$tmp/leaf", '--hash', $entries[26][0] ]);
	like($v->{err}, qr/: leaf: /, 'another package\'s hash fails the leaf check');
	is($v->{rc}, 6, 'exit 6');
	(my $bad_key = $key) =~ s/\+([0-9a-f]{8})\+/'+' . ($1 eq '00000000' ? '11111111' : '00000000') . '+'/e;
	fails_with(jc([ 'verify', "$tmp/proof", '--key', $bad_key ]), 1, 'invalid_key', 'a key whose id does not match it');
	fails_with(jc([ 'verify', "$tmp/proof" ]), 1, 'usage', 'verify without --key');
	write_file("$tmp/proof.nl", "$proof\n");
	fails_with(jc([ 'verify', "$tmp/proof.nl", '--key', $key, '--leaf-data', "$tmp/leaf" ]), 6,
		'verification_failed', 'a newline appended');

	# Every byte of the proof changed in turn (the files are kept for the Go cross-check below).
	my (@accepted, %checks);
	for my $i (0 .. length($proof) - 1)
	{
		my $altered = $proof;
		substr($altered, $i, 1) = substr($proof, $i, 1) eq 'A' ? 'B' : 'A';
		write_file("$tmp/altered.$i", $altered);
		my $t = jc([ 'verify', "$tmp/altered.$i", '--key', $key, '--leaf-data', "$tmp/leaf" ]);
		$altered_rc[$i] = $t->{rc};
		if ($t->{rc} != 6) { push @accepted, "$i: exit $t->{rc}"; next }
		my ($check) = $t->{err} =~ /^jamctl: verification_failed: [^:]+: (\w+): /m;
		$checks{ $check // 'unnamed' }++;
	}
	is_deeply(\@accepted, [], 'no proof with one byte changed passes: exit 6 for each of ' . length($proof));
	ok(!$checks{unnamed}, 'each failure names its check');
	note('checks that caught them: ' . join(', ', map { "$_ $checks{$_}" } sort keys %checks));
	ok($checks{format} && $checks{signature} && $checks{inclusion}, 'format, signature and inclusion all caught some');
}

# receipt --entry rebuilds every entry from the receipt and its package or
# report, byte for byte, and the proof then verifies from it with --hash:
# the whole offline check with nothing but what jamctl fetched and the key.
{
	my (@wrong, @unverified);
	for my $e (@entries)
	{
		my ($h, $bytes_hex, $package) = @$e;
		my $r = jc([ 'receipt', $h, '--entry', '-o', "$tmp/entry", $package ? ('--package', $package) : () ]);
		my $got = $r->{rc} == 0 ? unpack('H*', read_bytes("$tmp/entry")) : "exit $r->{rc}: $r->{err}";
		push @wrong, "$h: $got" unless $got eq $bytes_hex;
		write_file("$tmp/p", proof_of($h));
		my $v = jc([ 'verify', "$tmp/p", '--key', $key, '--leaf-data', "$tmp/entry", '--hash', $h, '--origin', 'jam/proofs' ]);
		push @unverified, "$h: $v->{err}" unless $v->{rc} == 0 && $v->{json}{checks}{leaf} eq 'ok';
	}
	is_deeply(\@wrong, [], 'receipt --entry rebuilds each of the 40 entries (30 packages, 10 reports) byte for byte');
	is_deeply(\@unverified, [], 'and each proof verifies from it, naming its package or report');
	my ($report_hash, $its_package) = map { @$_[ 0, 2 ] } grep { $_->[2] } @entries;
	my ($other_package) = grep { $_ ne $its_package } map { $_->[2] } grep { $_->[2] } @entries;
	fails_with(jc([ 'receipt', $report_hash, '--entry' ]), 1, 'usage', '--entry of a report needs its --package');
	fails_with(jc([ 'receipt', $report_hash, '--entry', '--package', $other_package, '-o', "$tmp/e2" ]), 6,
		'verification_failed', 'and the right one');
	my $t = jc_tty([ 'receipt', $entries[0][0], '--entry' ]);
	is($t->{rc}, 1, '--entry refuses to write its binary bytes to a terminal');
}

# A proof jamctl accepts, the Go reference accepts (golang.org/x/mod's note and tlog).
SKIP:
{
	my $gopath = '/usr/share/gocode';
	skip 'go and golang.org/x/mod are not installed', 3
	  unless -x '/usr/bin/go' && -d "$gopath/src/golang.org/x/mod/sumdb/tlog";
	my $verifier = "$tmp/tlogproof";
	my ($o, $e);
	IPC::Run::run([ 'go', 'build', '-o', $verifier, '.' ], '>', \$o, '2>', \$e,
		init => sub {
			chdir 'test/go/tlogproof' or die "test/go/tlogproof: $!";
			$ENV{GO111MODULE} = 'off';
			$ENV{GOPATH} = $gopath;
			$ENV{GOCACHE} = "$tmp/gocache";
		}) or BAIL_OUT("cannot build the Go verifier: $e");
	my $go = sub {
		my ($proof_file, $leaf_file) = @_;
		my ($out, $err) = ('', '');
		IPC::Run::run([ $verifier, $key, 'jam/proofs', $proof_file, $leaf_file ], '>', \$out, '2>', \$err);
		chomp $out;
		return $out;
	};
	my @disagree;
	for my $e (@entries)
	{
		write_file("$tmp/p", proof_of($e->[0]));
		write_file("$tmp/l", pack('H*', $e->[1]));
		my $theirs = $go->("$tmp/p", "$tmp/l");
		push @disagree, "$e->[0]: go $theirs" unless $theirs eq 'ok';
	}
	is_deeply(\@disagree, [], 'every entry\'s proof, which jamctl accepted above, Go accepts too');
	# Go's note package decodes signatures with lax base64, so it takes a
	# change of the unused low bits of the signature's last base64 digit
	# (another spelling of the same bytes) that jamctl refuses; any other
	# change Go must refuse too.
	my $sig_at;
	$sig_at = $-[0] if $proof =~ /^(?:\x{e2}\x{80}\x{94}|\x{2014}) jam \K[A-Za-z0-9+\/=]+$/m;
	ok(defined $sig_at, 'the proof has a signature by jam');
	my $sig_line = substr($proof, $sig_at // 0) =~ s/\n.*//sr;
	my (@only_mine, @go_accepts_other);
	my $go_same_bytes = 0;
	for my $i (0 .. length($proof) - 1)
	{
		my $mine = $altered_rc[$i];
		my $theirs = $go->("$tmp/altered.$i", "$tmp/leaf");
		push @only_mine, $i if $mine == 0 && $theirs ne 'ok';
		next unless $theirs eq 'ok';
		my $altered_sig = substr(read_bytes("$tmp/altered.$i"), $sig_at // 0, length $sig_line);
		if (defined $sig_at && $i >= $sig_at && decode_base64($altered_sig) eq decode_base64($sig_line)) { $go_same_bytes++ }
		else { push @go_accepts_other, $i }
	}
	is_deeply(\@only_mine, [], 'no changed proof that jamctl accepts is refused by Go');
	is_deeply(\@go_accepts_other, [], 'Go refuses every changed proof too, but lax spellings of the signature\'s bytes');
	note("Go accepted $go_same_bytes changed proofs that spell the same signature bytes; jamctl refused them")
	  if $go_same_bytes;
}

# The transparency-dev inclusion vectors, each laid out as a tlog-proof
# with a checkpoint signed by a test key: jamctl agrees with every file.
SKIP:
{
	my $vectors = $ENV{JAM_VECTORS_DIR} // '';
	my $suite = "$vectors/transparency-dev-merkle/testdata/inclusion";
	skip "shared/vectors not found (JAM_VECTORS_DIR is '$vectors')", 2 unless $vectors ne '' && -d $suite;
	my $seed = "decode(repeat('22', 32), 'hex')";
	my $vkey = $node->safe_psql('postgres', "SELECT jam.jam_note_verifier_key('test', $seed)");
	my @files;
	File::Find::find(sub { push @files, $File::Find::name if /\.json$/ }, $suite);
	my ($n, @wrong) = (0);
	my $big = JSON::PP->new->allow_bignum;
	for my $path (sort @files)
	{
		my $v = $big->decode(read_bytes($path));
		my $root_b64 = encode_base64(decode_base64($v->{root} // ''), '');
		my $body = "test/vectors\n$v->{treeSize}\n$root_b64\n";
		my $note = $node->safe_psql('postgres', "SELECT jam.jam_sign_note(\$b\$$body\$b\$, 'test', $seed)");
		my $text = "c2sp.org/tlog-proof\@v1\nindex $v->{leafIdx}\n"
		  . join('', map { encode_base64(decode_base64($_), '') . "\n" } @{ $v->{proof} // [] })
		  . "\n$note";    # safe_psql takes off psql's newline, the note keeps its own
		write_file("$tmp/vector", $text);
		my $r = jc([ 'verify', "$tmp/vector", '--key', $vkey, '--leaf-hash', unpack('H*', decode_base64($v->{leafHash} // '')) ]);
		my $got = $r->{rc} == 0 ? 'accepted' : ($r->{rc} == 6 || $r->{rc} == 1) ? 'refused' : "exit $r->{rc}";
		my $want = $v->{wantErr} ? 'refused' : 'accepted';
		$n++;
		push @wrong, "$path: jamctl $got, the suite wants $want ($r->{err})" if $got ne $want;
	}
	cmp_ok($n, '>=', 98, "read the transparency-dev inclusion suite ($n files)");
	is_deeply(\@wrong, [], 'jamctl verify agrees with every file');
}

# --- A server that lies, and routes the shim does not have (yet): a stand-in

# A small HTTP/1.1 server in a child process: routes maps "METHOD /path" to
# [status, content type, body, {headers}] or a list of them (served in
# turn, the last one repeated).  Every request is logged, as JSON lines.
sub fake_server
{
	my ($routes) = @_;
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
	  or die "listen: $!";
	my $port = $listen->sockport;
	my $log = "$tmp/fake_$port.log";
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		my %turn;
		while (my $c = $listen->accept)
		{
			$c->autoflush(1);
			while (defined(my $line = <$c>))
			{
				$line =~ s/\r?\n\z//;
				my ($method, $target) = split / /, $line;
				my %h;
				while (defined(my $hl = <$c>))
				{
					$hl =~ s/\r?\n\z//;
					last if $hl eq '';
					my ($k, $val) = split /:\s*/, $hl, 2;
					$h{ lc $k } = $val;
				}
				print $c "HTTP/1.1 100 Continue\r\n\r\n" if lc($h{expect} // '') eq '100-continue';
				my $body = '';
				read($c, $body, $h{'content-length'}) if $h{'content-length'};
				open my $lf, '>>', $log or die;
				print $lf JSON::PP->new->canonical->encode({ method => $method, target => $target, headers => \%h, body => $body }), "\n";
				close $lf;
				my $spec = $routes->{"$method $target"} // [ 404, 'application/json', '{"error": "no such route", "code": "not_found"}' ];
				if (ref $spec->[0] eq 'ARRAY')
				{
					my $i = $turn{"$method $target"}++;
					$spec = $spec->[ $i < @$spec ? $i : $#$spec ];
				}
				my ($status, $type, $content, $extra) = @$spec;
				my $head = "HTTP/1.1 $status X\r\nContent-Type: $type\r\nContent-Length: " . length($content) . "\r\n";
				$head .= "$_: $extra->{$_}\r\n" for sort keys %{ $extra // {} };
				print $c "$head\r\n$content";
			}
			close $c;
		}
		POSIX::_exit(0);
	}
	close $listen;
	return { port => $port, pid => $pid, log => $log };
}

sub fake_requests
{
	my ($fake) = @_;
	my $text = read_bytes($fake->{log}) // '';
	return map { JSON::PP->new->decode($_) } split /\n/, $text;
}

sub fake_stop
{
	my ($fake) = @_;
	kill 'TERM', $fake->{pid};
	waitpid($fake->{pid}, 0);
}

{
	# A server whose package id is not the one the fields encode to.
	my $fake = fake_server({ 'POST /jam/packages' =>
		  [ 201, 'application/json', $json->encode({ id => 'd' x 64, status => 'pending', created => JSON::PP::true }) ] });
	my $furl = "http://127.0.0.1:$fake->{port}";
	my $r = jc([ 'package', 'submit', '--service', 'svc-x', '-' ], in => 'lie', url => $furl);
	fails_with($r, 6, 'verification_failed', 'a server that answers another package id');
	my ($req) = fake_requests($fake);
	my $sent = $json->decode($req->{body});
	is($sent->{declared_hash}, jc([ 'package', 'id', '--service', 'svc-x', '-' ], in => 'lie')->{json}{id},
		'submit declares the id it computed');
	is(decode_base64($sent->{payload}), 'lie', 'and sends the payload in base64');
	fake_stop($fake);

	# A server that sends other bytes than the hash names, or stores them under another.
	my $h = hash_hex('the real bytes');
	$fake = fake_server({
		"GET /jam/preimages/$h" => [ 200, 'application/octet-stream', 'other bytes' ],
		'POST /jam/preimages' => [ 201, 'application/json', $json->encode({ hash => $h, created => JSON::PP::true }) ] });
	$furl = "http://127.0.0.1:$fake->{port}";
	$r = jc([ 'preimage', 'get', $h, '-o', "$tmp/lie.bin" ], url => $furl);
	fails_with($r, 6, 'verification_failed', 'preimage get of bytes that do not hash to the hash');
	ok(!-e "$tmp/lie.bin", 'nothing was written');
	ok(!glob("$tmp/lie.bin.jamctl-*"), 'not even a temporary file');
	$r = jc([ 'preimage', 'get', $h ], url => $furl);
	is($r->{out}, '', 'nor to stdout');
	$r = jc([ 'preimage', 'put', '-' ], in => 'what I sent', url => $furl);
	fails_with($r, 6, 'verification_failed', 'preimage put answered with another hash');
	fake_stop($fake);

	# 503 with Retry-After, then success; and a 503 past the retries.
	$fake = fake_server({ 'GET /jam/roots' => [
		[ 503, 'application/json', '{"error": "down", "code": "database_unavailable"}', { 'Retry-After' => 1 } ],
		[ 503, 'application/json', '{"error": "down", "code": "database_unavailable"}', { 'Retry-After' => 1 } ],
		[ 200, 'application/json', '[]' ] ] });
	$furl = "http://127.0.0.1:$fake->{port}";
	my $t0 = time;
	$r = jc([ '--retry', '3', 'roots' ], url => $furl);
	is($r->{rc}, 0, 'two 503s waited out with --retry 3');
	cmp_ok(time - $t0, '>=', 1.9, 'waiting Retry-After each time');
	is(scalar(() = $r->{err} =~ /retrying in 1 s/g), 2, 'saying so twice');
	fake_stop($fake);

	# Token administration and quotas, on the routes jamctl expects.
	my $shim_has = $shim->request('GET', '/jam/tokens')->{status} != 404;
	note($shim_has ? 'the shim serves /jam/tokens' : 'the shim does not serve /jam/tokens yet: a stand-in does');
	fails_with(jc([ 'tokens', 'list' ]), 2, 'not_found', 'tokens list against a shim without the route: exit 2')
	  unless $shim_has;
	$fake = fake_server({
		'GET /jam/tokens' => [ 200, 'application/json', $node->safe_psql('postgres', 'SELECT jam.jam_list_tokens()') ],
		'POST /jam/tokens' => [ 201, 'application/json', '{"token": "jam_0123456789abcdef_c2VjcmV0"}' ],
		'POST /jam/tokens/0123456789abcdef/revoke' => [ 200, 'application/json', '{"revoked": true}' ],
		'GET /jam/quota?service_id=svc-rate' => [ 200, 'application/json',
			$node->safe_psql('postgres', q{SELECT jam.jam_quota_usage(service_id => 'svc-rate')}) ],
		'GET /jam/quota' => [ 200, 'application/json', '{"token_id": "0123456789abcdef", "pending_packages": 0}' ] });
	$furl = "http://127.0.0.1:$fake->{port}";
	$r = succeeds(jc([ 'tokens', 'list' ], url => $furl), 'tokens list');
	ok((grep { $_->{name} eq 'admin' } @{ $r->{json} }), 'the tokens');
	$r = succeeds(jc([ '--human', 'tokens', 'list' ], url => $furl), 'tokens list --human');
	like($r->{out}, qr/^ID\s+NAME\s+SCOPES.*\n[0-9a-f]{16}\s+admin\s+jam:read, jam:submit/m, 'a table');
	$r = succeeds(jc([ '--human', 'tokens', 'create', 'ci', '--scope', 'jam:read', '--scope', 'jam:submit',
		'--service', 'svc-a', '--expires', '2030-01-01T00:00:00Z' ], url => $furl), 'tokens create');
	is($r->{out}, "jam_0123456789abcdef_c2VjcmV0\n", 'prints the token alone');
	$r = succeeds(jc([ 'tokens', 'revoke', '0123456789abcdef' ], url => $furl), 'tokens revoke');
	is($r->{json}{revoked}, JSON::PP::true, 'revoked');
	fails_with(jc([ 'tokens', 'revoke', 'jam_0123456789abcdef_c2VjcmV0' ], url => $furl), 1, 'usage',
		'revoke takes an id, not a token');
	$r = succeeds(jc([ 'quota', '--service', 'svc-rate' ], url => $furl), 'quota --service');
	is($r->{json}{rate}{limit_per_minute}, 60, 'the service\'s rate');
	$r = succeeds(jc([ '--human', 'quota', '--service', 'svc-rate' ], url => $furl), 'quota --human');
	like($r->{out}, qr/^rate\n\s+burst\s+60$/m, 'as text');
	succeeds(jc(['quota'], url => $furl), 'quota: the presented token\'s');
	fails_with(jc([ 'quota', '--token', $admin ], url => $furl), 1, 'usage', 'quota --token refuses a token secret');
	my @seen = fake_requests($fake);
	my ($create) = grep { $_->{method} eq 'POST' && $_->{target} eq '/jam/tokens' } @seen;
	is_deeply($json->decode($create->{body}),
		{ name => 'ci', scopes => [ 'jam:read', 'jam:submit' ], services => ['svc-a'], expires_at => '2030-01-01T00:00:00Z' },
		'create sends name, scopes, services, expires_at');
	ok(!grep({ ($_->{headers}{authorization} // '') ne "Bearer $admin" } @seen), 'every request with the token');
	fake_stop($fake);

	# The same verbs against the live shim, now that it serves the routes.
	if ($shim_has)
	{
		$r = succeeds(jc([ 'tokens', 'list' ]), 'tokens list, live');
		ok((grep { $_->{name} eq 'admin' } @{ $r->{json} }), 'the real tokens');
		$r = succeeds(jc([ '--human', 'tokens', 'create', 'live', '--scope', 'jam:read' ]), 'tokens create, live');
		my ($id) = $r->{out} =~ /^jam_([0-9a-f]{16})_/;
		ok($id, 'a real token, printed alone');
		$r = succeeds(jc([ 'tokens', 'revoke', $id ]), 'tokens revoke, live');
		is($r->{json}{revoked}, JSON::PP::true, 'revoked');
		is($node->safe_psql('postgres', "SELECT revoked_at IS NOT NULL FROM jam.jam_tokens WHERE id = '$id'"),
			't', 'in jam_tokens too');
		$r = succeeds(jc([ 'quota', '--service', 'svc-rate' ]), 'quota --service, live');
		is($r->{json}{rate}{limit_per_minute}, 60, 'the service\'s rate, live');
	}
}

# --- Server unavailable: exit 5

{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $r = jc(['roots'], url => "http://127.0.0.1:$port");
	fails_with($r, 5, 'connection_failed', 'nothing listening');
	$r = jc([ '--retry', '1', 'roots' ], url => "http://127.0.0.1:$port");
	fails_with($r, 5, 'connection_failed', 'still nothing after a retry');
	like($r->{err}, qr/retrying in 1 s \(1 of 1\)/, 'which it said it made');

	$node->stop('fast');
	$r = jc(['roots']);
	fails_with($r, 5, 'database_unavailable', 'Postgres stopped: 503');
	$r = jc([ 'package', 'submit', '--service', 'svc-a', '-' ], in => 'while down');
	fails_with($r, 5, 'database_unavailable', 'a submit too');
	# A client retrying while Postgres comes back.
	my ($out, $err) = ('', '');
	my $h;
	{
		local %ENV = %ENV;
		$ENV{JAM_URL} = $url;
		$ENV{JAM_TOKEN_FILE} = $admin_file;
		delete $ENV{JAM_TOKEN};
		$h = IPC::Run::start([ $jamctl, '--retry', '30', 'roots' ], '<', \undef, '>', \$out, '2>', \$err);
	}
	sleep 1;
	$node->start;
	$h->finish;
	is($h->result(0), 0, '--retry 30 waits until Postgres is back');
	like($err, qr/database_unavailable \(HTTP 503\); retrying in/, 'retrying on 503');
	ok(eval { ref $json->decode($out) eq 'ARRAY' }, 'then answers');
}

$shim->stop;
$node->stop;
done_testing();

