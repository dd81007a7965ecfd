# Running jam-shim beside a test cluster, and talking HTTP to it.
#
#   my $shim = JamTest::Shim->start($node, dsn => ..., env => {JAM_...});
#   my $r = $shim->request('GET', '/jam/status', token => $t);
#   $r->{status}, $r->{headers}{etag}, $r->{content}, $r->{json}
#   $shim->stop;          # SIGTERM, then waits; returns the exit code
#
# The shim binary is the one the build made in the source tree
# (JAM_SRC_DIR, set by scripts/test.sh).  It listens on a free loopback
# port; its stdout (one JSON line per request) and stderr go to files in
# the test's log folder.

package JamTest::Shim;

use strict;
use warnings;

use Carp;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

my $seq = 0;
my @harnesses;    # every shim started; at exit, those still running are killed

# The role the shim logs in as, a member of jam_api, whose statements'
# parameters (tokens among them) stay out of the server log; and, with
# $refine, a refine function public.$refine that returns its payload and
# refuses the payload 'fail' (a report applied, a report failed).
sub prepare_database
{
	my ($node, $refine) = @_;
	$node->safe_psql('postgres', q{
		CREATE ROLE jam_shim LOGIN IN ROLE jam_api;
		ALTER ROLE jam_shim SET log_parameter_max_length = 0;
		ALTER ROLE jam_shim SET log_parameter_max_length_on_error = 0;});
	return if !defined $refine;
	$node->safe_psql('postgres', qq{
		CREATE FUNCTION public.$refine(payload bytea, preimages bytea[]) RETURNS bytea
		LANGUAGE plpgsql IMMUTABLE AS \$\$
		BEGIN
			IF payload = 'fail'::bytea THEN
				RAISE EXCEPTION 'this refine refuses fail';
			END IF;
			RETURN payload;
		END
		\$\$;});
}

# The jam-shim binary of this source tree.
sub binary
{
	my $src = $ENV{JAM_SRC_DIR} or croak 'JAM_SRC_DIR is not set (scripts/test.sh sets it)';
	my $bin = "$src/shim/jam-shim";
	croak "$bin is missing: run make (make test builds it)" unless -x $bin;
	return $bin;
}

# Starts a shim and waits until it answers.  Options: dsn (libpq conninfo),
# env (more JAM_* variables), args (command-line arguments), port.
sub start
{
	my ($class, %opt) = @_;
	my $port = $opt{port} // PostgreSQL::Test::Cluster::get_free_port();
	my $name = 'shim_' . (++$seq);
	my $self = bless {
		port => $port,
		name => $name,
		scheme => $opt{scheme} // 'http',
		stdout => "$PostgreSQL::Test::Utils::log_path/$name.out",
		stderr => "$PostgreSQL::Test::Utils::log_path/$name.err",
		default_token => $opt{token},
	}, $class;
	local %ENV = %ENV;
	$ENV{JAM_LISTEN} = "127.0.0.1:$port";
	$ENV{JAM_DSN} = $opt{dsn} if defined $opt{dsn};
	$ENV{$_} = $opt{env}{$_} for keys %{ $opt{env} // {} };
	$self->{handle} = IPC::Run::start([ binary(), @{ $opt{args} // [] } ],
		'<', \undef, '>', $self->{stdout}, '2>', $self->{stderr});
	push @harnesses, $self->{handle};
	$self->{http} = HTTP::Tiny->new(timeout => 60, keep_alive => 1);
	return $self if $opt{no_wait};
	$self->wait_ready;
	return $self;
}

sub port { return $_[0]{port} }
sub url { my ($self, $path) = @_; return "$self->{scheme}://127.0.0.1:$self->{port}$path" }

# Waits (up to three minutes) until /system/status answers at all.
sub wait_ready
{
	my ($self) = @_;
	for (1 .. 1800)
	{
		croak "jam-shim exited early:\n" . slurp_file($self->{stderr})
		  unless $self->{handle}->pumpable;
		my $r = HTTP::Tiny->new(timeout => 5)->get($self->url('/system/status'));
		return if $r->{status} != 599;
		usleep(100_000);
	}
	croak 'jam-shim did not start answering';
}

# One HTTP request.  Options: body, headers (hashref), token (undef: the
# default token; '' : none).  Returns {status, headers, content, json}.
sub request
{
	my ($self, $method, $path, %opt) = @_;
	my %headers = %{ $opt{headers} // {} };
	my $token = exists $opt{token} ? $opt{token} : $self->{default_token};
	$headers{Authorization} = "Bearer $token"
	  if defined $token && $token ne '' && !exists $headers{Authorization};
	my $r = $self->{http}->request($method, $self->url($path),
		{ headers => \%headers, defined $opt{body} ? (content => $opt{body}) : () });
	$r->{content} //= '';
	my $json;
	if (($r->{headers}{'content-type'} // '') =~ m{^application/json} && length($r->{content} // ''))
	{
		$json = eval { JSON::PP->new->decode($r->{content}) };
	}
	return { %$r, json => $json };
}

# The request log lines so far, decoded.
sub log_lines
{
	my ($self) = @_;
	return map { JSON::PP->new->decode($_) } grep { /^\{/ } split /\n/, slurp_file($self->{stdout});
}

sub stderr_text { return slurp_file($_[0]{stderr}) }

# Sends SIGTERM.
sub term
{
	my ($self) = @_;
	$self->{handle}->signal('TERM');
}

# Waits for the process to exit; returns its exit code.
sub wait_exit
{
	my ($self) = @_;
	return $self->{exit} if defined $self->{exit};
	$self->{handle}->finish;
	$self->{exit} = $self->{handle}->result(0);
	return $self->{exit};
}

# Sends SIGTERM and waits for the process; returns its exit code.
sub stop
{
	my ($self) = @_;
	return $self->{exit} if defined $self->{exit};
	$self->term;
	return $self->wait_exit;
}

# A test that dies before stopping its shims must not leave them running.
END
{
	$_->kill_kill for grep { $_->pumpable } @harnesses;
}

sub DESTROY
{
	my ($self) = @_;
	$self->{handle}->kill_kill if $self->{handle} && $self->{handle}->pumpable;
}

1;
