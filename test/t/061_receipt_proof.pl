# Receipts as C2SP tlog-proofs (jam_receipt_proof), checked offline by the
# transparency-log world's reference code: golang.org/x/mod/sumdb/note
# verifies the checkpoint's signature and golang.org/x/mod/sumdb/tlog the
# inclusion path (test/go/tlogproof only lays out the text for them).
# Every entry of a log proves; any single byte changed in a proof, or a
# wrong leaf, a wrong key or a wrong origin, does not.
use strict;
use warnings;

use JamTest;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;

my $gopath = '/usr/share/gocode';
plan skip_all => 'go and golang.org/x/mod (golang-go, golang-golang-x-mod-dev) are not installed'
  unless -x '/usr/bin/go' && -d "$gopath/src/golang.org/x/mod/sumdb/tlog";

my $tmp = tempdir(CLEANUP => 1);
my $verifier = "$tmp/tlogproof";
my ($out, $err);
IPC::Run::run(['go', 'build', '-o', $verifier, '.'], '>', \$out, '2>', \$err,
	init => sub {
		chdir 'test/go/tlogproof' or die "test/go/tlogproof: $!";
		$ENV{GO111MODULE} = 'off';
		$ENV{GOPATH} = $gopath;
		$ENV{GOCACHE} = "$tmp/cache";
	}) or BAIL_OUT("cannot build the Go verifier: $err");

my $node = jam_node('proofs');
# A log of 300 entries: 200 packages, then 100 reports.
$node->safe_psql('postgres', q{
	SELECT jam.jam_submit_packages('proofs', (SELECT array_agg(convert_to('p' || g, 'UTF8')) FROM generate_series(1, 200) g));
	SELECT jam.jam_process_packages('proofs', 100);
});
my $key = $node->safe_psql('postgres', q{SELECT jam.jam_status()->>'verifier_key'});
my $origin = $node->safe_psql('postgres', q{SELECT current_setting('jam.node_name') || '/proofs'});

# Each entry's hash and its 74-byte leaf, in log order.
my @entries = map { [split /\|/] } split /\n/, $node->safe_psql('postgres',
	q{SELECT encode(hash, 'hex'), encode(entry, 'hex') FROM jam.jam_log_entries
	  WHERE service_id = 'proofs' ORDER BY seq});
is(scalar @entries, 300, 'the log holds 300 entries');

sub write_file { my ($path, $bytes) = @_; open my $f, '>:raw', $path or die $!; print $f $bytes; close $f; }

sub check
{
	my ($proof, $leaf, %opt) = @_;
	write_file("$tmp/proof", $proof);
	write_file("$tmp/leaf", $leaf);
	my ($o, $e) = ('', '');
	IPC::Run::run([$verifier, $opt{key} // $key, $opt{origin} // $origin, "$tmp/proof", "$tmp/leaf"],
		'>', \$o, '2>', \$e);
	chomp $o;
	return $o;
}

sub proof_of
{
	my ($hash) = @_;
	# safe_psql takes off the newline psql adds; the proof keeps its own.
	return $node->safe_psql('postgres', "SELECT jam.jam_receipt_proof('$hash')");
}

my @bad;
for my $e (@entries)
{
	my $answer = check(proof_of($e->[0]), pack('H*', $e->[1]));
	push @bad, "$e->[0]: $answer" unless $answer eq 'ok';
}
is_deeply(\@bad, [], 'every entry\'s proof verifies with x/mod\'s note and tlog');

# One proof, every byte changed in turn.
my ($hash, $leaf_hex) = @{ $entries[137] };
my $proof = proof_of($hash);
my $leaf = pack('H*', $leaf_hex);
like($proof, qr/\Ac2sp\.org\/tlog-proof\@v1\nindex 137\n(?:[A-Za-z0-9+\/]{43}=\n){9}\n\Q$origin\E\n300\n/,
	'the proof is laid out as c2sp.org/tlog-proof@v1 says');
# A base64 character is moved 32 places along the alphabet, which changes
# its top bit, always a data bit: changing only the padding bits of a last
# character is ignored by lenient decoders such as Go's, so it would not
# test the proof.  Any other byte becomes 'A' (or 'B').
my $alphabet = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '+', '/';
my @accepted;
for my $i (0 .. length($proof) - 1)
{
	my $altered = $proof;
	my $c = substr($proof, $i, 1);
	my $k = index($alphabet, $c);
	substr($altered, $i, 1) = $k >= 0 ? substr($alphabet, ($k + 32) % 64, 1) : $c eq 'A' ? 'B' : 'A';
	push @accepted, $i if check($altered, $leaf) eq 'ok';
}
is_deeply(\@accepted, [], 'no proof with one byte changed verifies (' . length($proof) . ' tried)');

like(check($proof, pack('H*', $entries[136][1])), qr/inclusion/, 'another entry\'s leaf does not verify');
my $other_key = $node->safe_psql('postgres',
	q{SELECT jam.jam_note_verifier_key('jam', decode(repeat('11', 32), 'hex'))});
like(check($proof, $leaf, key => $other_key), qr/signature/, 'another key does not verify');
like(check($proof, $leaf, origin => 'jam/other'), qr/origin/, 'another origin does not verify');

# Proofs stay checkable as the log grows: an old proof against its own
# checkpoint, a new one against the new.
$node->safe_psql('postgres', q{SELECT jam.jam_submit_package('proofs', 'later')});
is(check($proof, $leaf), 'ok', 'a proof taken before the log grew still verifies');
is(check(proof_of($hash), $leaf), 'ok', 'and a new one against the grown log');

# The API's rules hold: unknown hashes and bad input.
my ($e1, $e2) = ('', '');
$node->psql('postgres', "SELECT jam.jam_receipt_proof(repeat('0', 64))", stderr => \$e1);
like($e1, qr/no log entry has hash/, 'an unknown hash: receipt_not_found');
$node->psql('postgres', "SELECT jam.jam_receipt_proof('zz')", stderr => \$e2);
like($e2, qr/not a valid hash/, 'a malformed hash: invalid_hash');

$node->stop;
done_testing();
