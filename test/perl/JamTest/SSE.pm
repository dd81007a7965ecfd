# A Server-Sent Events client over a plain socket, for GET /jam/events.
#
#   my $s = JamTest::SSE->open($port, '/jam/events?service_id=svc',
#       token => $t, last_event_id => '3', method => 'GET', rcvbuf => 2048);
#   $s->{status}, $s->{headers}{'content-type'}, $s->{json} (an error's body)
#   my $e = $s->next_event(30);   # {id, event, data, json}; undef: none in 30 s, or the end
#   $s->{comments}                # comment lines seen (": keep-alive")
#   $s->{raw}                     # every byte of the body read so far
#   $s->{retry}, $s->{last_id}    # as an EventSource keeps them
#   $s->wait_eof(30)              # 1 once the server closed the stream
#   $s->close
#
# Lines are parsed as the HTML standard's event stream interpretation says:
# "field: value" (one space after the colon dropped), data lines joined
# with "\n", a blank line dispatches, a line starting with ":" is a
# comment, an event without data is not dispatched, and the last event id
# carries over to later events.  Every wait is bounded by its argument.

package JamTest::SSE;

use strict;
use warnings;

use Carp;
use IO::Handle;
use IO::Select;
use JSON::PP;
use Socket qw(AF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_aton sockaddr_in);
use Time::HiRes qw(time);

# Connects, sends the request and reads the answer's head (waiting up to
# 60 s).  Options: token, last_event_id, method, rcvbuf (the socket's
# receive buffer, set before connecting: a small one makes a client that
# does not read fall behind quickly), headers (more header lines).
sub open
{
	my ($class, $port, $path, %opt) = @_;
	my $sock;
	socket($sock, AF_INET, SOCK_STREAM, 0) or croak "socket: $!";
	setsockopt($sock, SOL_SOCKET, SO_RCVBUF, $opt{rcvbuf}) or croak "SO_RCVBUF: $!"
	  if $opt{rcvbuf};
	connect($sock, sockaddr_in($port, inet_aton('127.0.0.1'))) or croak "connect: $!";
	$sock->autoflush(1);
	my $method = $opt{method} // 'GET';
	my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
	$req .= "Authorization: Bearer $opt{token}\r\n" if defined $opt{token};
	$req .= "Last-Event-ID: $opt{last_event_id}\r\n" if defined $opt{last_event_id};
	$req .= "$_: $opt{headers}{$_}\r\n" for sort keys %{ $opt{headers} // {} };
	syswrite($sock, "$req\r\n") or croak "send: $!";
	my $self = bless { sock => $sock, buf => '', comments => 0, events => [],
		last_id => '', eof => 0, method => $method }, $class;
	$self->_read_head(60);
	return $self;
}

# Reads more bytes, waiting up to $seconds; 0 on timeout, -1 at the end.
sub _fill
{
	my ($self, $seconds) = @_;
	return -1 if $self->{eof};
	return 0 unless IO::Select->new($self->{sock})->can_read($seconds < 0 ? 0 : $seconds);
	my $n = sysread($self->{sock}, my $chunk, 65536);
	if (!$n)
	{
		$self->{eof} = 1;
		return -1;
	}
	$self->{buf} .= $chunk;
	$self->{raw} .= $chunk if defined $self->{status};
	return 1;
}

sub _read_head
{
	my ($self, $seconds) = @_;
	my $until = time + $seconds;
	while ($self->{buf} !~ /\r\n\r\n/)
	{
		croak 'no answer head' if $self->_fill($until - time) <= 0 && (time >= $until || $self->{eof});
	}
	my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
	my ($status_line, @lines) = split /\r\n/, $head;
	($self->{status}) = $status_line =~ m{^HTTP/1\.[01] (\d{3})};
	$self->{headers} = { map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } @lines };
	$self->{buf} = $rest // '';
	$self->{raw} = $self->{buf};
	if (($self->{status} // 0) != 200 && $self->{method} ne 'HEAD')
	{
		# An error: a JSON body of Content-Length bytes.
		my $len = $self->{headers}{'content-length'} // 0;
		while (length($self->{buf}) < $len && $self->_fill($until - time) > 0) { }
		$self->{body} = substr($self->{buf}, 0, $len);
		$self->{json} = eval { JSON::PP->new->decode($self->{body}) };
	}
}

# Parses whole lines out of the buffer into events.
sub _parse
{
	my ($self) = @_;
	while ($self->{buf} =~ s/^([^\r\n]*)(?:\r\n|\n|\r(?!$))//)
	{
		my $line = $1;
		my $cur = $self->{current} //= { data => [] };
		if ($line eq '')
		{
			if (@{ $cur->{data} })
			{
				my $e = { id => $self->{last_id}, event => $cur->{event} // 'message',
					data => join("\n", @{ $cur->{data} }) };
				$e->{json} = eval { JSON::PP->new->decode($e->{data}) };
				push @{ $self->{events} }, $e;
			}
			delete $self->{current};
			next;
		}
		if ($line =~ /^:/)
		{
			$self->{comments}++;
			next;
		}
		my ($field, $value) = $line =~ /^([^:]*)(?::\s?(.*))?$/;
		$value //= '';
		if ($field eq 'data') { push @{ $cur->{data} }, $value }
		elsif ($field eq 'event') { $cur->{event} = $value }
		elsif ($field eq 'id') { $self->{last_id} = $value unless $value =~ /\0/ }
		elsif ($field eq 'retry') { $self->{retry} = $value if $value =~ /^\d+$/ }
	}
}

# The next event, waiting up to $seconds; undef when none came, or the stream ended.
sub next_event
{
	my ($self, $seconds) = @_;
	my $until = time + ($seconds // 30);
	for (;;)
	{
		$self->_parse;
		return shift @{ $self->{events} } if @{ $self->{events} };
		return undef if time >= $until || $self->_fill($until - time) < 0;
	}
}

# Events until one satisfies $pred (or $seconds pass): all of them, that one last.
sub events_until
{
	my ($self, $seconds, $pred) = @_;
	my $until = time + $seconds;
	my @got;
	while (defined(my $e = $self->next_event($until - time)))
	{
		push @got, $e;
		return @got if $pred->($e);
	}
	return @got;
}

# Reads until $pred() holds, or $seconds pass; returns whether it held.
sub wait_for
{
	my ($self, $seconds, $pred) = @_;
	my $until = time + $seconds;
	for (;;)
	{
		$self->_parse;
		return 1 if $pred->($self);
		return 0 if time >= $until || $self->_fill($until - time) < 0 && !$pred->($self);
	}
}

# Reads (and keeps) everything until the server closes the stream; 1 when it did within $seconds.
sub wait_eof
{
	my ($self, $seconds) = @_;
	my $until = time + $seconds;
	while (!$self->{eof})
	{
		last if time >= $until;
		$self->_fill($until - time);
	}
	$self->_parse;
	return $self->{eof};
}

sub close
{
	my ($self) = @_;
	close($self->{sock}) if $self->{sock};
	delete $self->{sock};
}

sub DESTROY { $_[0]->close }

1;
