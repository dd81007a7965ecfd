# jam's Merkle trees, proofs and signed notes against public vectors, read
# from the shared vectors folder (never copied into this repository):
#  - the RFC 6962 reference tree of 8 leaves: every leaf hash, the root of
#    every prefix, every inclusion and consistency proof;
#  - every file of transparency-dev/merkle's inclusion and consistency
#    suites: the verifiers accept exactly those without wantErr;
#  - the signed-note known answers of C2SP and golang.org/x/mod/sumdb/note,
#    including signing Go's test note byte for byte from its seed.
use strict;
use warnings;

use JamTest;
use File::Find;
use Encode qw(decode_utf8 encode_utf8);
use JSON::PP;
use Math::BigInt;
use MIME::Base64;
use PostgreSQL::Test::Utils;
use Test::More;

my $vectors = $ENV{JAM_VECTORS_DIR} // '';
plan skip_all => "shared/vectors not found (JAM_VECTORS_DIR is '$vectors')"
  unless $vectors ne '' && -f "$vectors/rfc6962_sha256_8leaf_full.json";

sub read_json
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "cannot read $path: $!";
	local $/;
	return JSON::PP->new->utf8->allow_bignum->decode(<$fh>);
}

sub text_array
{
	my (@items) = @_;
	return "ARRAY[" . join(',', map { "'$_'" } @items) . "]::text[]";
}

my $node = jam_node('vectors');
# SQL goes to psql as UTF-8 bytes: the notes hold an em dash.
sub q1 { return $node->safe_psql('postgres', encode_utf8($_[0])); }

# --- RFC 6962 reference tree
my $rfc = read_json("$vectors/rfc6962_sha256_8leaf_full.json");
my @inputs = @{ $rfc->{leaf_inputs_hex} };
my $leaves_sql = "ARRAY[" . join(',', map { "'\\x$_'::bytea" } @inputs) . "]";
sub prefix_sql
{
	my ($n) = @_;
	return "ARRAY[" . join(',', map { "'\\x$_'::bytea" } @inputs[ 0 .. $n - 1 ]) . "]::bytea[]";
}

is( q1("SELECT string_agg(jam.jam_merkle_leaf_hash(l), ',' ORDER BY o)
	      FROM unnest($leaves_sql) WITH ORDINALITY AS u(l, o)"),
	join(',', @{ $rfc->{leaf_hashes} }),
	'every leaf hash of the RFC 6962 tree');

for my $size (sort { $a <=> $b } keys %{ $rfc->{roots_by_size} })
{
	is(q1("SELECT jam.jam_merkle_root(" . prefix_sql($size) . ")"),
		$rfc->{roots_by_size}{$size}, "root of the first $size leaves");
}
is($rfc->{roots_by_size}{8}, '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
	'the file is the tree the issue names');

for my $case (@{ $rfc->{inclusion} })
{
	my ($m, $n, @proof) = ($case->{leaf_index}, $case->{tree_size}, @{ $case->{proof} });
	is( q1("SELECT array_to_string(jam.jam_merkle_inclusion_proof($leaves_sql, $m, $n), ',')"),
		join(',', @proof), "inclusion proof of leaf $m in size $n");
	is( q1("SELECT jam.jam_verify_inclusion('$rfc->{leaf_hashes}[$m]', $m, $n, "
			  . text_array(@proof) . ", '$rfc->{roots_by_size}{$n}')"),
		't', "and it verifies");
}
for my $case (@{ $rfc->{consistency} })
{
	my ($m, $n, @proof) = ($case->{size1}, $case->{size2}, @{ $case->{proof} });
	is( q1("SELECT array_to_string(jam.jam_merkle_consistency_proof($leaves_sql, $m, $n), ',')"),
		join(',', @proof), "consistency proof from size $m to $n");
	is( q1("SELECT jam.jam_verify_consistency($m, $n, " . text_array(@proof)
			  . ", '$rfc->{roots_by_size}{$m}', '$rfc->{roots_by_size}{$n}')"),
		't', "and it verifies");
}

# --- transparency-dev/merkle: every file, accepted exactly when wantErr is false
sub hex_of { return unpack('H*', decode_base64($_[0] // '')); }

# A position beyond bigint cannot be passed through the SQL signature at
# all, which counts as a refusal; everything else is jam's own verdict.
my $bigint_max = Math::BigInt->new('9223372036854775807');
sub verdict
{
	my ($sql, $numbers) = @_;
	return 'refused' if grep { Math::BigInt->new("$_") > $bigint_max } @$numbers;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	die "unexpected failure of $sql: $err" if $ret != 0;
	return $out eq 't' ? 'accepted' : 'refused';
}

my $suite = "$vectors/transparency-dev-merkle/testdata";
my ($files, $agree) = (0, 0);
sub json_files
{
	my ($dir) = @_;
	my @files;
	File::Find::find(sub { push @files, $File::Find::name if /\.json$/ }, $dir);
	return sort @files;
}
for my $path (json_files("$suite/inclusion"))
{
	my $v = read_json($path);
	my @proof = map { hex_of($_) } @{ $v->{proof} // [] };
	my ($leaf, $root) = (hex_of($v->{leafHash}), hex_of($v->{root}));
	my $got = verdict(
		"SELECT jam.jam_verify_inclusion('$leaf', $v->{leafIdx}, $v->{treeSize}, "
		  . text_array(@proof) . ", '$root')",
		[ $v->{leafIdx}, $v->{treeSize} ]);
	my $want = $v->{wantErr} ? 'refused' : 'accepted';
	$files++;
	$agree++ if $got eq $want;
	diag("inclusion $path: jam $got, the suite wants $want") if $got ne $want;
}
for my $path (json_files("$suite/consistency"))
{
	my $v = read_json($path);
	my @proof = map { hex_of($_) } @{ $v->{proof} // [] };
	my ($r1, $r2) = (hex_of($v->{root1}), hex_of($v->{root2}));
	my $got = verdict(
		"SELECT jam.jam_verify_consistency($v->{size1}, $v->{size2}, "
		  . text_array(@proof) . ", '$r1', '$r2')",
		[ $v->{size1}, $v->{size2} ]);
	my $want = $v->{wantErr} ? 'refused' : 'accepted';
	$files++;
	$agree++ if $got eq $want;
	diag("consistency $path: jam $got, the suite wants $want") if $got ne $want;
}
cmp_ok($files, '>=', 196, "read the whole transparency-dev suite ($files files)");
is($agree, $files, 'jam agrees with every file of the transparency-dev suite');

# --- signed notes
my $notes = read_json("$vectors/signed_note_vectors.json");
sub lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

my $c2sp = $notes->{c2sp_example};
is(q1("SELECT jam.jam_verify_checkpoint(" . lit($c2sp->{signed_note}) . ", " . lit($c2sp->{vkey}) . ")"),
	't', "C2SP's example note verifies with its key");

my $go = $notes->{go_x_mod_note_test};
is(q1("SELECT jam.jam_verify_checkpoint(" . lit($go->{signed_note}) . ", " . lit($go->{vkey}) . ")"),
	't', "Go's example note verifies with PeterNeumann's key");
is( q1("SELECT jam.jam_note_verifier_key('PeterNeumann', '\\x$go->{seed_hex}')"),
	$go->{vkey}, "the verifier key made from Go's seed is Go's");
is( decode_utf8(q1("SELECT jam.jam_sign_note(" . lit($go->{note_text}) . ", 'PeterNeumann', '\\x$go->{seed_hex}')")),
	$go->{signed_note}, "signing Go's note with its seed reproduces the signature byte for byte");

my $two = $go->{signed_note} . $go->{second_signer_sigline};
is(q1("SELECT jam.jam_verify_checkpoint(" . lit($two) . ", " . lit($go->{vkey}) . ")"),
	't', 'a second, unrelated signature line does not stop verification');
is( q1("SELECT jam.jam_verify_checkpoint(" . lit($go->{signed_note}) . ", "
		  . lit($go->{second_signer_vkey}) . ")"),
	'f', 'a note is not verified by a key that did not sign it');
is( q1("SELECT jam.jam_verify_checkpoint(" . lit($go->{signed_note} =~ s/answer/ANSWER/r) . ", "
		  . lit($go->{vkey}) . ")"),
	'f', 'an altered text is not verified');
is(q1("SELECT jam.jam_verify_checkpoint(" . lit($c2sp->{signed_note}) . ", " . lit($go->{vkey}) . ")"),
	'f', "C2SP's note is not verified by Go's key");

done_testing();
