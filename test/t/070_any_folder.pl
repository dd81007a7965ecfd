# make test from any folder: the suites run as the postgres user, from the
# copies scripts/test.sh makes in its scratch folder (the tests, the source
# tree with its built shim in JAM_SRC_DIR, the public test vectors), never
# from the project, which may sit where that user cannot go (a clone under
# /root, mode 700).  scripts/test.sh runs this test a second time from a
# copy of the project in a folder only root may enter, with
# JAM_PROJECT_HIDDEN=1: there it is proved that nothing needs the project.
#
# Quick and bounded: one cluster, two short-lived shims.

use strict;
use warnings;

use Cwd qw(abs_path getcwd);
use File::Find;
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest;
use JamTest::Shim;

my $project = $ENV{JAM_PROJECT_DIR} // '';
my $src = $ENV{JAM_SRC_DIR} // '';
my $vectors = $ENV{JAM_VECTORS_DIR} // '';

# Whether a path is the folder or lies in it.  The project is given as an
# absolute physical path (it may be out of reach, so it is not resolved).
sub inside
{
	my ($path, $dir) = @_;
	return 0 if $dir eq '';
	$path = File::Spec->canonpath(abs_path($path) // $path);
	$dir = File::Spec->canonpath($dir);
	return $path eq $dir || index($path, "$dir/") == 0;
}

# --- What the tests are given lies outside the project.

isnt($project, '', 'JAM_PROJECT_DIR names the project (scripts/test.sh sets it)');
ok($src ne '' && -d $src && -x $src, "JAM_SRC_DIR ($src) is a folder this user can enter");
ok(!inside($src, $project), 'JAM_SRC_DIR is a copy outside the project');
ok(!inside(getcwd(), $project), 'the tests run from a folder outside the project');
ok(!inside(__FILE__, $project), 'this test is a copy outside the project');
ok(!inside($INC{'JamTest.pm'}, $project), 'so are the test modules');
SKIP:
{
	skip 'no test vectors', 2 if $vectors eq '';
	ok(!inside($vectors, $project), 'JAM_VECTORS_DIR is outside the project');
	ok(-r "$vectors/." && -x $vectors, 'and readable');
}

# Everything in the copies can be read (and every folder entered), so a test
# that reads a file of the tree never finds it out of reach.
my @unreadable;
find(
	{
		no_chdir => 1,
		wanted => sub {
			push @unreadable, $_ if !-l $_ && (!-r $_ || (-d $_ && !-x $_));
		}
	},
	grep { -d } ($src, File::Spec->catdir(getcwd(), 'test')));
is_deeply(\@unreadable, [], 'every file of the copies is readable by this user');

if ($ENV{JAM_PROJECT_HIDDEN})
{
	ok(!-e "$project/Makefile" && !opendir(my $dh, $project), "the project ($project) is out of this user's reach");
}
else
{
	note 'the project may be readable by this user here; the any-folder suite of '
	  . 'scripts/test.sh runs this test with the project out of its reach';
}

# --- The shim runs from the copy: its binary, and the library it loads from
# beside itself for HTTPS.

my $bin = "$src/shim/jam-shim";
ok(-x $bin, "the shim's binary is executable by this user: $bin");
ok(-r "$src/shim/libjam-tls-compat.so", 'with libjam-tls-compat.so beside it');
my $help = `$bin --help 2>&1`;
is($?, 0, 'jam-shim --help runs');
like($help, qr/^usage: /m, 'and prints its usage');

# Both at once, HTTP and HTTPS, and stopped together: a shim takes a
# moment to exit.
my $node = jam_node('any_folder');
my $dsn = sprintf('host=%s port=%d dbname=postgres user=postgres', $node->host, $node->port);
my %small = (JAM_POOL_SIZE => 1, JAM_THREADS => 2);
my $tls;
my $have_tls = system('command -v openssl >/dev/null && command -v curl >/dev/null') == 0;
if ($have_tls)
{
	my $pem = "$PostgreSQL::Test::Utils::tmp_check/any_folder.pem";
	system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 2 "
		  . "-keyout $pem.key -out $pem.crt >/dev/null 2>&1") == 0 or die 'openssl failed';
	system("cat $pem.crt $pem.key > $pem") == 0 or die;
	$tls = JamTest::Shim->start(dsn => $dsn, scheme => 'https', no_wait => 1,
		env => { %small, JAM_TLS_CERT => $pem });
}
my $shim = JamTest::Shim->start(dsn => $dsn, env => \%small);
my $r = $shim->request('GET', '/system/status');
is($r->{status}, 200, 'the copied shim serves HTTP');
ok($r->{json} && $r->{json}{database}{reachable}, 'and reaches the database');
SKIP:
{
	skip 'openssl or curl is missing', 1 unless $have_tls;
	my $status = '';
	for (1 .. 300)
	{
		$status = `curl -sk -o /dev/null -w '%{http_code}' ${\ $tls->url('/system/status')}`;
		last if $status eq '200';
		usleep(100_000);
	}
	is($status, '200', 'and HTTPS: it found the library beside it');
}
$_->term for grep { defined } $shim, $tls;
is($_->wait_exit, 0, "the $_->{scheme} shim stops cleanly") for grep { defined } $shim, $tls;

$node->stop;
done_testing();
