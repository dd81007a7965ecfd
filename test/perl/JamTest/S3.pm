# A real S3-compatible server on loopback for the blob tier's TAP tests,
# behind a proxy that checks every request's SigV4 signature with AWS's own
# signer (test/s3/verify-proxy.js), since the server (s3rver) does not.
#
#   my $s3 = JamTest::S3->start(bucket => 'jam-test')
#     or plan skip_all => JamTest::S3->why_not;
#   $node->append_conf('postgresql.conf', $s3->conf);   # jam.blob_store_* lines
#   $s3->object_file($hash)    # where s3rver keeps the object's bytes
#   $s3->requests              # the proxy's log: {method, path, verified, status, why}
#   $s3->stop_proxy; $s3->start_proxy;   # the store down, and back
#   $s3->control('delay?ms=300')         # the proxy's test controls
#
# The npm packages come from scripts/test.sh (test/s3/package.json, npm ci
# into JAM_S3_NODE_MODULES); without node or them, start returns undef and
# why_not says why.  The credentials file is the postgres user's, mode
# 0600, as jam requires.

package JamTest::S3;

use strict;
use warnings;

use Carp;
use File::Path qw(make_path);
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

my $why_not = '';
my @harnesses;

sub why_not { return $why_not }

sub modules
{
	return $ENV{JAM_S3_NODE_MODULES} || '/var/lib/jam-test-tools/s3/node_modules';
}

sub node_binary
{
	my ($node) = grep { -x } map { ("$_/node", "$_/nodejs") } split /:/, $ENV{PATH};
	return $node;
}

# The access key the proxy accepts, and a secret with the characters that
# trip naive signers ('/', '+', '=').
our $ACCESS_KEY_ID = 'AKIDJAMTEST0000000001';
our $SECRET = 'jam/test+secret=0123456789abcdefghijklmnop';

sub start
{
	my ($class, %opt) = @_;
	my $node = node_binary();
	my $modules = modules();
	if (!$node)
	{
		$why_not = 'node is not installed (make deps installs it)';
		return undef;
	}
	if (!-d "$modules/s3rver" || !-d "$modules/\@smithy/signature-v4")
	{
		$why_not = "the npm packages of test/s3 are not in $modules (scripts/test.sh installs them)";
		return undef;
	}
	my $src = $ENV{JAM_SRC_DIR} or croak 'JAM_SRC_DIR is not set (scripts/test.sh sets it)';
	my $dir = "$PostgreSQL::Test::Utils::tmp_check/s3_" . ($opt{name} // 'store');
	make_path("$dir/data");
	my $self = bless {
		node => $node,
		modules => $modules,
		proxy_js => "$src/test/s3/verify-proxy.js",
		dir => $dir,
		bucket => $opt{bucket} // 'jam-test',
		s3_port => PostgreSQL::Test::Cluster::get_free_port(),
		proxy_port => PostgreSQL::Test::Cluster::get_free_port(),
		log => "$dir/requests.log",
		credentials => "$dir/credentials",
	}, $class;

	open my $f, '>', $self->{credentials} or croak "$self->{credentials}: $!";
	print $f "# the test store's key\n[default]\naws_access_key_id = $ACCESS_KEY_ID\n"
	  . "aws_secret_access_key = $SECRET\n";
	close $f;
	chmod 0600, $self->{credentials};

	$self->{s3rver} = IPC::Run::start(
		[ $node, "$modules/s3rver/bin/s3rver.js", '-d', "$dir/data", '-a', '127.0.0.1',
		  '-p', $self->{s3_port}, '--silent', '--configure-bucket', $self->{bucket} ],
		'<', \undef, '>', "$dir/s3rver.out", '2>', "$dir/s3rver.err");
	push @harnesses, $self->{s3rver};
	$self->wait_port($self->{s3_port}, 's3rver');
	$self->start_proxy;
	return $self;
}

sub wait_port
{
	my ($self, $port, $what) = @_;
	for (1 .. 600)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
		if ($s) { close $s; return; }
		usleep(100_000);
	}
	croak "$what did not start listening on $port:\n" . (eval { slurp_file("$self->{dir}/$what.err") } // '');
}

# The proxy jam talks to: it checks each signature, then passes the request on.
sub start_proxy
{
	my ($self) = @_;
	local $ENV{NODE_PATH} = $self->{modules};
	$self->{proxy} = IPC::Run::start(
		[ $self->{node}, $self->{proxy_js}, '--listen', $self->{proxy_port},
		  '--upstream', $self->{s3_port}, '--access-key-id', $ACCESS_KEY_ID,
		  '--secret-access-key', $SECRET, '--region', 'us-east-1', '--log', $self->{log} ],
		'<', \undef, '>>', "$self->{dir}/proxy.out", '2>>', "$self->{dir}/proxy.err");
	push @harnesses, $self->{proxy};
	$self->wait_port($self->{proxy_port}, 'proxy');
	return;
}

# The store goes away: connections to it are refused.
sub stop_proxy
{
	my ($self) = @_;
	$self->{proxy}->kill_kill;
	$self->{proxy}->finish;
	return;
}

sub endpoint { my ($self) = @_; return "127.0.0.1:$self->{proxy_port}" }
sub port { return $_[0]{proxy_port} }
sub bucket { return $_[0]{bucket} }
sub credentials_file { return $_[0]{credentials} }

# postgresql.conf lines for jam to use this store (path style, plain HTTP).
sub conf
{
	my ($self, %over) = @_;
	my %set = (
		'jam.blob_store_endpoint' => $self->endpoint,
		'jam.blob_store_bucket' => $self->{bucket},
		'jam.blob_store_uri_style' => 'path',
		'jam.blob_store_tls' => 'off',
		'jam.blob_store_credentials_file' => $self->{credentials},
		%over);
	return join('', map { "$_ = '$set{$_}'\n" } sort keys %set);
}

# Where s3rver keeps the bytes of jam's object for a hash.
sub object_file
{
	my ($self, $hash, $prefix) = @_;
	$prefix //= 'jam';
	return "$self->{dir}/data/$self->{bucket}/$prefix/" . substr($hash, 0, 2) . "/$hash._S3rver_object";
}

sub object_exists { my ($self, $hash) = @_; return -e $self->object_file($hash) }

# Every request the proxy saw, decoded, in order.
sub requests
{
	my ($self) = @_;
	return () unless -e $self->{log};
	return map { JSON::PP->new->decode($_) } grep { /^\{/ } split /\n/, slurp_file($self->{log});
}

# A test control of the proxy (delay?ms=N, fail?status=S&n=N, stats).
sub control
{
	my ($self, $what) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)
	  ->post("http://127.0.0.1:$self->{proxy_port}/__jam_test/$what");
	croak "proxy control $what: $r->{status}" unless $r->{success};
	return JSON::PP->new->decode($r->{content});
}

# The servers stop with the test; their exit must not become the test's.
END
{
	local $?;
	$_->kill_kill for grep { $_->pumpable } @harnesses;
}

1;
