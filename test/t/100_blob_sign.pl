# jam's SigV4 signer (src/s3_sign.c, libcurl's CURLOPT_AWS_SIGV4 with the
# parts libcurl leaves to its caller) against the AWS Signature Version 4
# test suite: test/unit/s3_sign_test.c, built here against the source
# tree's s3_sign.c and libcurl, sends each case's request to a listener of
# its own and prints the Authorization header that arrived, which must be
# the case's .authz byte for byte.  get-vanilla is the plain case;
# get-vanilla-query-order-key-case has its query parameters out of order,
# which s3_canonical_query must sort (libcurl signs the query as given).
# Then the canonical query string itself: sorting by encoded name then
# value, and SigV4's percent-encoding.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run qw(run);
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{JAM_SRC_DIR} or BAIL_OUT('JAM_SRC_DIR is not set (scripts/test.sh sets it)');
my $suite = "$src/test/unit/aws-sig-v4-test-suite";

my ($cc) = grep { -x } map { "$_/cc" } split /:/, $ENV{PATH};
plan skip_all => 'no C compiler (make deps installs build-essential)' unless $cc;
my ($cflags, $libs) = ('', '');
run([ 'pkg-config', '--cflags', 'libcurl' ], '>', \$cflags) and
  run([ 'pkg-config', '--libs', 'libcurl' ], '>', \$libs)
  or plan skip_all => 'libcurl development files are missing (make deps installs libcurl4-openssl-dev)';

my $tmp = tempdir(CLEANUP => 1);
my $bin = "$tmp/s3_sign_test";
my $err = '';
ok(run([ $cc, '-D_GNU_SOURCE', '-Wall', '-Werror', "-I$src/src", split(' ', $cflags),
		 '-o', $bin, "$src/test/unit/s3_sign_test.c", "$src/src/s3_sign.c",
		 split(' ', $libs), '-lpthread' ], '>', \$err, '2>&1'),
	'the unit test builds against src/s3_sign.c and libcurl')
  or BAIL_OUT("cannot build the signer's unit test:\n$err");

sub slurp_trimmed { my $s = slurp_file($_[0]); $s =~ s/\s+\z//; return $s }

for my $case ('get-vanilla', 'get-vanilla-query-order-key-case')
{
	my ($out, $log) = ('', '');
	my $ok = run([ $bin, "$suite/$case/$case.req", 'us-east-1', 'service', 'AKIDEXAMPLE',
				   'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' ], '>', \$out, '2>', \$log);
	ok($ok, "$case: the request was sent") or diag $log;
	chomp $out;
	is($out, slurp_trimmed("$suite/$case/$case.authz"),
		"$case: the Authorization header is the suite's, byte for byte");
}

# The canonical query string: names and values encoded as SigV4 asks (only
# A-Z a-z 0-9 - _ . ~ kept), sorted by name, then value, as encoded bytes.
my $out = '';
run([ $bin, '--canonical-query', 'prefix=jam/', 'list-type=2', 'continuation-token=1+a/b=c d',
	  'A=upper', 'a=b', 'a=a', 'e~=x.y_z-' ], '>', \$out);
chomp $out;
is($out, 'A=upper&a=a&a=b&continuation-token=1%2Ba%2Fb%3Dc%20d&e~=x.y_z-&list-type=2&prefix=jam%2F',
	'the canonical query string is sorted and percent-encoded as SigV4 requires');

done_testing();
