# jam's content addresses against public BLAKE2b-256 test vectors.
#
# Reads the vectors from $JAM_VECTORS_DIR (the runner points it at
# shared/vectors); nothing is copied into the repository.
#
#  - hash_kat.json: every BLAKE2b-256 known answer through jam.jam_hash and
#    jam.jam_put_preimage, including RFC 7693 Appendix E's self-test grand
#    hash.  That self-test also needs keyed hashes and 20/48/64-byte
#    digests, which jam_hash does not offer; those come from a small Perl
#    BLAKE2b (test/perl/JamTest/Blake2b.pm) that is first checked against
#    the file's BLAKE2b-512 answers and against jam_hash itself, while
#    jam_hash computes every unkeyed 32-byte part and the grand hash.
#  - jam/preimage_blake2b256_pairs.json: Polkadot JAM's own preimages and
#    hashes, through jam_hash, jam_put_preimage, jam_get_preimage and
#    jam_preimage_meta.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest;
use JamTest::Blake2b qw(blake2b rfc7693_selftest_input);

my $dir = $ENV{JAM_VECTORS_DIR};
if (!defined $dir || $dir eq '' || !-d $dir)
{
	plan skip_all => 'shared/vectors not found (set JAM_VECTORS_DIR to the vectors folder)';
}

sub read_json
{
	my ($path) = @_;
	return JSON::PP->new->decode(slurp_file($path));
}

my $kat = read_json("$dir/hash_kat.json");
my $pairs = read_json("$dir/jam/preimage_blake2b256_pairs.json");

my $node = jam_node('vectors');

sub jam_hash_of
{
	my ($bytes) = @_;
	return $node->safe_psql('postgres',
		'SELECT jam.jam_hash(' . sql_literal_bytea($bytes) . ')');
}

sub put_preimage
{
	my ($bytes) = @_;
	my $json = $node->safe_psql('postgres',
		'SELECT jam.jam_put_preimage(' . sql_literal_bytea($bytes) . ')');
	return decode_json($json);
}

# --- The Perl reference BLAKE2b, checked before it is relied on.

my %b512_inputs = ('abc (RFC 7693 Appendix A)' => 'abc', 'empty' => '');
my $b512 = $kat->{blake2b_512} // {};
my $b512_checked = 0;
for my $key (sort keys %$b512)
{
	next unless $b512->{$key} =~ /^[0-9a-f]{128}$/;
	ok(exists $b512_inputs{$key}, "blake2b_512 entry '$key' has a known input")
	  or next;
	is(unpack('H*', blake2b($b512_inputs{$key}, 64)),
		$b512->{$key}, "Perl reference BLAKE2b-512 of '$key'");
	$b512_checked++;
}
ok($b512_checked >= 1, 'the Perl reference was checked against BLAKE2b-512 answers');

# --- hash_kat.json: BLAKE2b-256 known answers.

my $b256 = $kat->{blake2b_256};
ok(ref $b256 eq 'HASH', 'hash_kat.json has a blake2b_256 section');

my $checked = 0;
for my $key (sort keys %$b256)
{
	my $want = $b256->{$key};
	if ($want !~ /^[0-9a-f]{64}$/)
	{
		note "blake2b_256 '$key' is a description, not a hash; nothing to check";
		next;
	}

	if ($key =~ /selftest_grand_hash/)
	{
		# RFC 7693 Appendix E.  Each step's digest comes from jam_hash when
		# jam_hash can express it (unkeyed, 32 bytes), else from the Perl
		# reference, which must then agree with jam_hash where both can.
		my $concat = '';
		my $from_jam = 0;
		for my $step (rfc7693_selftest_input())
		{
			my ($outlen, $k, $in) = @$step;
			if ($outlen == 32 && $k eq '')
			{
				my $h = jam_hash_of($in);
				is($h, unpack('H*', blake2b($in, 32)),
					'jam_hash and the Perl reference agree on a self-test input of '
					  . length($in) . ' bytes');
				$concat .= pack('H*', $h);
				$from_jam++;
			}
			else
			{
				$concat .= blake2b($in, $outlen, $k);
			}
		}
		is($from_jam, 6, 'jam_hash computed all six unkeyed 32-byte self-test digests');
		is(jam_hash_of($concat), $want,
			"RFC 7693 Appendix E self-test grand hash through jam_hash");
		$checked++;
		next;
	}

	my $input;
	if ($key eq 'empty')
	{
		$input = '';
	}
	elsif ($key =~ /^((?:[0-9a-f]{2})(?: [0-9a-f]{2})*) \(/)
	{
		($input = $1) =~ s/ //g;
		$input = pack('H*', $input);
	}
	elsif ($key =~ /^[\x20-\x7e]+$/ && $key !~ /[()]/)
	{
		$input = $key;
	}
	else
	{
		fail("blake2b_256 entry '$key': cannot tell what its input is");
		next;
	}

	is(jam_hash_of($input), $want, "jam_hash of '$key'");
	is(put_preimage($input)->{hash}, $want, "jam_put_preimage of '$key' returns its hash");
	is(unpack('H*', blake2b($input, 32)), $want, "Perl reference BLAKE2b-256 of '$key'");
	$checked++;
}
ok($checked >= 5, "checked $checked BLAKE2b-256 known answers");

# BLAKE2b-256 is its own function, not a truncated BLAKE2b-512.
if (defined $b512->{empty})
{
	isnt(jam_hash_of(''), substr($b512->{empty}, 0, 64),
		'jam_hash is not truncated BLAKE2b-512');
}

# --- JAM's own preimages.

my @pairs = @{ $pairs->{pairs} // [] };
ok(@pairs > 0, 'preimage_blake2b256_pairs.json has pairs');

for my $i (0 .. $#pairs)
{
	my $p = $pairs[$i];
	my $blob = pack('H*', $p->{blob_hex});
	my $want = $p->{blake2b_256_hex};
	my $label = "JAM pair $i ($p->{len} bytes)";

	is(length $blob, $p->{len}, "$label: blob length matches len");
	is(jam_hash_of($blob), $want, "$label: jam_hash");

	my $meta = put_preimage($blob);
	is($meta->{hash}, $want, "$label: jam_put_preimage returns the hash");
	is($meta->{size}, $p->{len}, "$label: jam_put_preimage reports the size");

	is( $node->safe_psql(
			'postgres',
			"SELECT encode(jam.jam_get_preimage('$want'), 'hex')"),
		lc $p->{blob_hex},
		"$label: jam_get_preimage returns the blob");
	is( $node->safe_psql(
			'postgres',
			"SELECT jam.jam_preimage_meta('$want')->>'hash'"),
		$want,
		"$label: jam_preimage_meta finds it under its hash");
}

# The same bytes put again are stored once, under the same hash.
if (@pairs)
{
	my $p = $pairs[0];
	my $again = put_preimage(pack('H*', $p->{blob_hex}));
	is($again->{hash}, $p->{blake2b_256_hex}, 'a repeated put returns the same hash');
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM jam.jam_preimages WHERE hash = decode('$p->{blake2b_256_hex}', 'hex')"),
		'1',
		'identical bytes are stored once');
}

# --- Differential check: jam_hash against the reference at block edges.

my @lens = (0 .. 3, 63, 64, 65, 126 .. 130, 255, 256, 257, 383, 384, 385, 1023, 1024, 1025, 4096);
my @inputs = map { my $n = $_; join('', map { chr(($_ * 131 + $n) & 0xff) } 0 .. $n - 1) } @lens;
my $values = join(",\n", map { "($_, " . sql_literal_bytea($inputs[$_]) . ")" } 0 .. $#inputs);
my @got = split /\n/,
  $node->safe_psql('postgres',
	"SELECT jam.jam_hash(b) FROM (VALUES $values) v(i, b) ORDER BY i");
is(scalar @got, scalar @inputs, 'jam_hash answered for every length');
my @mismatch = grep { ($got[$_] // '') ne unpack('H*', blake2b($inputs[$_], 32)) } 0 .. $#inputs;
is_deeply([ map { $lens[$_] } @mismatch ],
	[], 'jam_hash agrees with the reference BLAKE2b-256 at every block boundary length');

$node->stop;
done_testing();
