# A small pure-Perl BLAKE2b (RFC 7693), for tests only.
#
# jam_hash exposes unkeyed BLAKE2b with a 32-byte digest.  RFC 7693's
# self-test (Appendix E) also needs keyed hashes and digests of 20, 48 and
# 64 bytes; this module computes those so that the self-test's grand hash
# can still be checked with jam_hash doing every part it can express.  The
# module is itself checked against published known answers (003_vectors.pl)
# before it is relied on.
#
# 64-bit words are Perl UVs.  Additions are done in 32-bit halves, because
# Perl turns an overflowing UV addition into a floating-point number.

package JamTest::Blake2b;

use strict;
use warnings;
no warnings 'portable';    # 64-bit hex constants

use Config;

BEGIN
{
	die "JamTest::Blake2b needs 64-bit Perl integers\n" if $Config{ivsize} < 8;
}

use Exporter 'import';
our @EXPORT_OK = qw(blake2b rfc7693_selftest_seq rfc7693_selftest_input);

use constant M32 => 0xFFFFFFFF;
use constant M64 => 0xFFFFFFFFFFFFFFFF;

my @IV = (
	0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b,
	0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f,
	0x1f83d9abfb41bd6b, 0x5be0cd19137e2179);

my @SIGMA = (
	[ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 ],
	[ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 ],
	[ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 ],
	[ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 ],
	[ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 ],
	[ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 ],
	[ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 ],
	[ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 ],
	[ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 ],
	[ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 ],
	[ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 ],
	[ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 ]);

sub _add
{
	my $lo = 0;
	my $hi = 0;
	for (@_)
	{
		$lo += $_ & M32;
		$hi += $_ >> 32;
	}
	$hi += $lo >> 32;
	return (($hi & M32) << 32) | ($lo & M32);
}

sub _rotr { my ($x, $n) = @_; return (($x >> $n) | ($x << (64 - $n))) & M64; }

sub _compress
{
	my ($h, $block, $t, $last) = @_;
	my @m = unpack('Q<16', $block);
	my @v = (@$h, @IV);
	$v[12] ^= $t & M64;    # inputs here are far shorter than 2**64 bytes
	$v[14] ^= M64 if $last;

	for my $r (0 .. 11)
	{
		my $s = $SIGMA[$r];
		my @x = map { $m[ $s->[$_] ] } 0 .. 15;
		_g(\@v, 0, 4, 8,  12, $x[0],  $x[1]);
		_g(\@v, 1, 5, 9,  13, $x[2],  $x[3]);
		_g(\@v, 2, 6, 10, 14, $x[4],  $x[5]);
		_g(\@v, 3, 7, 11, 15, $x[6],  $x[7]);
		_g(\@v, 0, 5, 10, 15, $x[8],  $x[9]);
		_g(\@v, 1, 6, 11, 12, $x[10], $x[11]);
		_g(\@v, 2, 7, 8,  13, $x[12], $x[13]);
		_g(\@v, 3, 4, 9,  14, $x[14], $x[15]);
	}
	$h->[$_] ^= $v[$_] ^ $v[ $_ + 8 ] for 0 .. 7;
	return;
}

sub _g
{
	my ($v, $a, $b, $c, $d, $x, $y) = @_;
	$v->[$a] = _add($v->[$a], $v->[$b], $x);
	$v->[$d] = _rotr($v->[$d] ^ $v->[$a], 32);
	$v->[$c] = _add($v->[$c], $v->[$d]);
	$v->[$b] = _rotr($v->[$b] ^ $v->[$c], 24);
	$v->[$a] = _add($v->[$a], $v->[$b], $y);
	$v->[$d] = _rotr($v->[$d] ^ $v->[$a], 16);
	$v->[$c] = _add($v->[$c], $v->[$d]);
	$v->[$b] = _rotr($v->[$b] ^ $v->[$c], 63);
	return;
}

# blake2b($data, $outlen = 32, $key = '') returns the raw digest bytes.
sub blake2b
{
	my ($data, $outlen, $key) = @_;
	$outlen //= 32;
	$key //= '';
	die "BLAKE2b digest length must be 1..64" if $outlen < 1 || $outlen > 64;
	die "BLAKE2b key length must be 0..64" if length($key) > 64;

	my @h = @IV;
	$h[0] ^= 0x01010000 ^ (length($key) << 8) ^ $outlen;

	my $input = $data;
	$input = $key . ("\0" x (128 - length($key))) . $input if length $key;

	my $t = 0;
	my $len = length $input;
	my $off = 0;
	while ($len - $off > 128)
	{
		$t += 128;
		_compress(\@h, substr($input, $off, 128), $t, 0);
		$off += 128;
	}
	my $rest = substr($input, $off);
	$t += length $rest;
	_compress(\@h, $rest . ("\0" x (128 - length $rest)), $t, 1);

	return substr(pack('Q<8', @h), 0, $outlen);
}

# RFC 7693 Appendix E: selftest_seq(len, seed), a deterministic byte string.
sub rfc7693_selftest_seq
{
	my ($len, $seed) = @_;
	my $a = (0xDEAD4BAD * $seed) & M32;
	my $b = 1;
	my $out = '';
	for (1 .. $len)
	{
		my $t = ($a + $b) & M32;
		$a = $b;
		$b = $t;
		$out .= chr(($t >> 24) & 0xFF);
	}
	return $out;
}

# The list of hashes whose concatenation RFC 7693's self-test hashes into
# its grand hash, in order, as [outlen, key, input] triples.
sub rfc7693_selftest_input
{
	my @steps;
	for my $outlen (20, 32, 48, 64)
	{
		for my $inlen (0, 3, 128, 129, 255, 1024)
		{
			my $in = rfc7693_selftest_seq($inlen, $inlen);
			push @steps, [ $outlen, '', $in ];
			push @steps, [ $outlen, rfc7693_selftest_seq($outlen, $outlen), $in ];
		}
	}
	return @steps;
}

1;
