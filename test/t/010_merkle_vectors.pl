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

# jam's verdict on one file: "accepted" (true) or "refused" (false).  A
# position beyond bigint cannot be passed through the SQL signature at
# all, which counts as a refusal.  jam compares values that are hex but
# not 32 bytes as bytes (false, not an error), so that it agrees with the
# suite's equal-size cases; should a value ever raise invalid_hash
# (SQLSTATE JM002) instead, that too is a refusal, and is counted; any
# other error fails the test.
my $bigint_max = Math::BigInt->new('9223372036854775807');
my $invalid_hash_refusals = 0;
sub verdict
{
	my ($sql, $numbers) = @_;
	return 'refused' if grep { Math::BigInt->new("$_") > $bigint_max } @$numbers;
	my ($ret, $out, $err) =
	  $node->psql('postgres', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	if ($ret != 0)
	{
		die "unexpected failure of $sql: $err" unless $err =~ /ERROR:\s+JM002:/;
		$invalid_hash_refusals++;
		return 'refused';
	}
	return $out eq 't' ? 'accepted' : 'refused';
}

my $suite = "$vectors/transparency-dev-merkle/testdata";
my ($files, $agree) = (0, 0);
my %wanted = (accepted => 0, refused => 0);
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
	$wanted{$want}++;
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
	$wanted{$want}++;
	$files++;
	$agree++ if $got eq $want;
	diag("consistency $path: jam $got, the suite wants $want") if $got ne $want;
}
cmp_ok($files, '>=', 196, "read the whole transparency-dev suite ($files files)");
cmp_ok($wanted{accepted}, '>=', 12, "the suite has proofs to accept ($wanted{accepted})");
cmp_ok($wanted{refused}, '>=', 180, "and proofs to refuse ($wanted{refused})");
is($agree, $files, 'jam agrees with every file of the transparency-dev suite');
note("$invalid_hash_refusals refusals were invalid_hash errors");

# --- signed notes: every known answer in the file verifies with its key;
# where the file gives the seed, jam derives the same key and signs the
# same note byte for byte.
my $notes = read_json("$vectors/signed_note_vectors.json");
sub lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }
sub verifies { return q1("SELECT jam.jam_verify_checkpoint(" . lit($_[0]) . ", " . lit($_[1]) . ")"); }

my @known = grep { ref $notes->{$_} eq 'HASH' && defined $notes->{$_}{signed_note} } sort keys %$notes;
cmp_ok(scalar @known, '>=', 2, 'the file has signed notes (' . join(', ', @known) . ')');
for my $name (@known)
{
	my $v = $notes->{$name};
	is(verifies($v->{signed_note}, $v->{vkey}), 't', "$name: the note verifies with its key");
	is(verifies($v->{signed_note} =~ s/\A(.)/$1 eq 'X' ? 'Y' : 'X'/er, $v->{vkey}), 'f',
		"$name: with its first character changed it does not");
	if (defined $v->{key_id_hex})
	{
		like($v->{vkey}, qr/\+\Q$v->{key_id_hex}\E\+/, "$name: the key carries the file's key id");
	}
	next unless defined $v->{seed_hex};
	my ($key_name) = $v->{vkey} =~ /\A([^+]+)\+/;
	is(q1("SELECT jam.jam_note_verifier_key(" . lit($key_name) . ", '\\x$v->{seed_hex}')"),
		$v->{vkey}, "$name: the verifier key made from the seed is the file's");
	is( decode_utf8(q1("SELECT jam.jam_sign_note(" . lit($v->{note_text}) . ", " . lit($key_name)
			  . ", '\\x$v->{seed_hex}')")),
		$v->{signed_note}, "$name: signing the text with the seed reproduces the note byte for byte");
}

my $c2sp = $notes->{c2sp_example};
my $go = $notes->{go_x_mod_note_test};
my $two = $go->{signed_note} . $go->{second_signer_sigline};
is(verifies($two, $go->{vkey}), 't', 'a second, unrelated signature line does not stop verification');
is(verifies($go->{signed_note}, $go->{second_signer_vkey}), 'f',
	'a note is not verified by a key that did not sign it');
is(verifies($go->{signed_note} =~ s/answer/ANSWER/r, $go->{vkey}), 'f', 'an altered text is not verified');
is(verifies($c2sp->{signed_note}, $go->{vkey}), 'f', "C2SP's note is not verified by Go's key");
is(verifies($go->{signed_note}, $c2sp->{vkey}), 'f', "Go's note is not verified by C2SP's key");
if (defined $notes->{go_sumdb_vkey})
{
	is(verifies($go->{signed_note}, $notes->{go_sumdb_vkey}{vkey}), 'f',
		"sum.golang.org's key does not verify Go's example note");
}

done_testing();
