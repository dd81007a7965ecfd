# Two jam nodes on loopback witness each other's logs over HTTP
# (c2sp.org/tlog-witness): each registers the other's log and the other as
# its witness, jam_witness_checkpoints sends checkpoints with consistency
# proofs through the witness's shim (POST /jam/witness/add-checkpoint),
# and the cosignatures come back into the served checkpoints.  A witness
# that lost track is caught up through 409; a forked log (the same origin
# and key, another history) is refused, at a larger size (422) and at the
# same size (409), and the witness's record does not move.  Then every
# status the spec gives, through the shim, with its media type.
use strict;
use warnings;

use JamTest;
use JamTest::Shim;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Utils;
use Test::More;

my $json = JSON::PP->new;

sub node_with_shim
{
	my ($name, $node_name) = @_;
	my $node = jam_node($name, "jam.node_name = '$node_name'");
	$node->safe_psql('postgres', 'CREATE ROLE jam_shim LOGIN IN ROLE jam_api');
	my $shim = JamTest::Shim->start(
		dsn => sprintf('host=%s port=%d dbname=postgres user=jam_shim', $node->host, $node->port));
	return ($node, $shim);
}

my ($alpha, $alpha_shim) = node_with_shim('alpha', 'alpha.example');
my ($beta, $beta_shim) = node_with_shim('beta', 'beta.example');
sub q1 { my ($node, $sql, $db) = @_; return $node->safe_psql($db // 'postgres', $sql); }

my $alpha_key = q1($alpha, q{SELECT jam.jam_status()->>'verifier_key'});
my $beta_key = q1($beta, q{SELECT jam.jam_status()->>'verifier_key'});
my $alpha_cosigner = q1($alpha, q{SELECT jam.jam_cosigner_key()});
my $beta_cosigner = q1($beta, q{SELECT jam.jam_cosigner_key()});
like($beta_cosigner, qr/^beta\.example\+[0-9a-f]{8}\+/, "beta's cosigner key: $beta_cosigner");

# Alpha's log svc, witnessed by beta; beta's log bsvc, witnessed by alpha.
q1($alpha, q{SELECT jam.jam_submit_packages('svc', (SELECT array_agg(convert_to('a' || g, 'UTF8')) FROM generate_series(1, 100) g))});
q1($beta, q{SELECT jam.jam_submit_packages('bsvc', (SELECT array_agg(convert_to('b' || g, 'UTF8')) FROM generate_series(1, 40) g))});
q1($beta, "SELECT jam.jam_add_witnessed_log('alpha.example/svc', '$alpha_key')");
q1($alpha, "SELECT jam.jam_add_witnessed_log('beta.example/bsvc', '$beta_key')");
q1($alpha, sprintf("SELECT jam.jam_add_witness('beta.example', '%s', '%s')", $beta_cosigner, $beta_shim->url('/jam/witness')));
q1($beta, sprintf("SELECT jam.jam_add_witness('alpha.example', '%s', '%s')", $alpha_cosigner, $alpha_shim->url('/jam/witness')));

sub witness_all
{
	my ($node, $db) = @_;
	return $json->decode(q1($node, 'SELECT jam.jam_witness_checkpoints()', $db));
}

my $r = witness_all($alpha);
is(scalar @$r, 1, 'alpha asks one witness about one log');
is_deeply([ @{ $r->[0] }{qw(witness service_id tree_size outcome http_status)} ],
	[ 'beta.example', 'svc', 100, 'cosigned', 200 ], 'beta cosigns alpha\'s checkpoint of 100')
  or diag(explain $r);
is(q1($beta, q{SELECT tree_size || ' ' || encode(root, 'hex') FROM jam.jam_witnessed_logs WHERE origin = 'alpha.example/svc'}),
	'100 ' . q1($alpha, q{SELECT encode(log_root, 'hex') FROM jam.jam_services WHERE service_id = 'svc'}),
	'beta recorded size 100 and alpha\'s root');
$r = witness_all($beta);
is($r->[0]{outcome}, 'cosigned', 'alpha cosigns beta\'s checkpoint of 40: they witness each other');

# The served checkpoints carry the cosignature.
my $cp = q1($alpha, q{SELECT jam.jam_log_checkpoint('svc')});
like($cp, qr/\n\n\x{e2}\x{80}\x{94} alpha\.example [^\n]+\n\x{e2}\x{80}\x{94} beta\.example [^\n]+\n\z/,
	'alpha\'s checkpoint: its signature, then beta\'s cosignature');
ok(q1($alpha, "SELECT jam.jam_verify_cosignature(jam.jam_log_checkpoint('svc'), '$beta_cosigner') IS NOT NULL"),
	'the cosignature verifies with beta\'s cosigner key');
ok(q1($alpha, "SELECT jam.jam_verify_checkpoint(jam.jam_log_checkpoint('svc'), '$alpha_key')"),
	'and the checkpoint with alpha\'s key still');
is(q1($alpha, q{SELECT jam.jam_witnessed_checkpoint('svc')->>'witnessed'}), 'true', 'jam_witnessed_checkpoint: witnessed');
is(q1($alpha, q{SELECT jam.jam_checkpoint('svc')}), $cp, 'jam_checkpoint carries it too');
$r = witness_all($alpha);
is($r->[0]{outcome}, 'up_to_date', 'asked again at the same size: up to date, nothing sent');

# The log grows: a consistency proof from 100 convinces beta.
q1($alpha, q{SELECT jam.jam_submit_packages('svc', (SELECT array_agg(convert_to('c' || g, 'UTF8')) FROM generate_series(1, 50) g))});
$r = witness_all($alpha);
is_deeply([ @{ $r->[0] }{qw(tree_size outcome)} ], [ 150, 'cosigned' ], 'grown to 150, cosigned from 100');
is(q1($beta, q{SELECT tree_size FROM jam.jam_witnessed_logs WHERE origin = 'alpha.example/svc'}), 150,
	'beta holds 150');

# Alpha forgets what beta holds: beta's 409 names 150, and alpha goes on from there.
q1($alpha, q{DELETE FROM jam.jam_witness_sizes; DELETE FROM jam.jam_cosignatures});
$r = witness_all($alpha);
is_deeply([ @{ $r->[0] }{qw(tree_size outcome http_status)} ], [ 150, 'cosigned', 200 ],
	'a 409 tells the size beta holds, and the second request is cosigned');
is(q1($alpha, q{SELECT tree_size FROM jam.jam_witness_sizes}), 150, 'alpha knows beta holds 150');

# A fork: another database on alpha's server with alpha's key and name,
# so the same origin and signatures, but another history.
sub fork_log
{
	my ($db, $n) = @_;
	q1($alpha, "CREATE DATABASE $db");
	q1($alpha, 'CREATE EXTENSION jam', $db);
	my ($seed, $public) = split /\|/, q1($alpha, q{SELECT encode(seed, 'hex'), encode(public_key, 'hex') FROM jam.jam_node_keys});
	q1($alpha, "INSERT INTO jam.jam_node_keys (name, seed, public_key) VALUES ('alpha.example', decode('$seed', 'hex'), decode('$public', 'hex'))", $db);
	q1($alpha, "SELECT jam.jam_submit_packages('svc', (SELECT array_agg(convert_to('fork' || g, 'UTF8')) FROM generate_series(1, $n) g))", $db);
	q1($alpha, sprintf("SELECT jam.jam_add_witness('beta.example', '%s', '%s')", $beta_cosigner, $beta_shim->url('/jam/witness')), $db);
	is(q1($alpha, q{SELECT jam.jam_status()->>'verifier_key'}, $db), $alpha_key, "$db: the fork signs with alpha's key");
}
fork_log('fork_larger', 200);
$r = witness_all($alpha, 'fork_larger');
is_deeply([ @{ $r->[0] }{qw(tree_size outcome http_status)} ], [ 200, 'failed', 422 ],
	'a fork of 200 entries: beta refuses it, 422 (its proof does not lead from what beta cosigned)')
  or diag(explain $r);
fork_log('fork_same', 150);
$r = witness_all($alpha, 'fork_same');
is_deeply([ @{ $r->[0] }{qw(tree_size outcome http_status)} ], [ 150, 'failed', 409 ],
	'a fork of 150 entries: the same size with another root, 409')
  or diag(explain $r);
is(q1($beta, q{SELECT tree_size || ' ' || encode(root, 'hex') FROM jam.jam_witnessed_logs WHERE origin = 'alpha.example/svc'}),
	'150 ' . q1($alpha, q{SELECT encode(log_root, 'hex') FROM jam.jam_services WHERE service_id = 'svc'}),
	'beta\'s record of alpha\'s log did not move');
is(q1($alpha, q{SELECT count(*) FROM jam.jam_cosignatures}, 'fork_larger') + q1($alpha, q{SELECT count(*) FROM jam.jam_cosignatures}, 'fork_same'),
	0, 'the forks got no cosignature');
like(q1($alpha, q{SELECT last_error FROM jam.jam_witness_sizes}, 'fork_larger'), qr/^HTTP 422: .*consistency proof/,
	'the refusal is recorded with the witness\'s reason');

# --- The spec's statuses through beta's shim.
q1($alpha, q{SELECT jam.jam_submit_package('svc', 'one more')});
my $head = q1($alpha, q{SELECT log_size FROM jam.jam_services WHERE service_id = 'svc'});
my $checkpoint = q1($alpha, q{SELECT jam.jam_checkpoint('svc')});
sub proof_lines
{
	my ($first, $second) = @_;
	return join '', map { encode_base64(pack('H*', $_), '') . "\n" }
	  grep { length } split /\n/, q1($alpha, "SELECT unnest(jam.jam_consistency_proof('svc', $first, $second))");
}
sub add_checkpoint
{
	my ($body) = @_;
	return $beta_shim->request('POST', '/jam/witness/add-checkpoint', body => $body,
		headers => { 'Content-Type' => 'text/plain' });
}
sub is_code
{
	my ($r, $status, $code, $what) = @_;
	ok($r->{status} == $status && ($r->{json}{code} // '') eq $code, "$what: $status $code")
	  or diag("got $r->{status}: $r->{content}");
}
my $good = "old 150\n" . proof_lines(150, $head) . "\n$checkpoint";

$r = add_checkpoint("old 100\n" . proof_lines(100, $head) . "\n$checkpoint");
is($r->{status}, 409, 'a stale old size: 409');
is($r->{headers}{'content-type'}, 'text/x.tlog.size', 'as text/x.tlog.size');
is($r->{content}, "150\n", 'with the size beta holds, and a newline');
is_code(add_checkpoint("old 150\n" . proof_lines(150, $head) . "\n" . ($checkpoint =~ s/alpha\.example\/svc/alpha.example\/other/r)),
	404, 'log_not_witnessed', 'an origin beta does not witness');
is_code(add_checkpoint("old 150\n" . proof_lines(150, $head) . "\n" . ($checkpoint =~ s/^(— alpha\.example \S{10})(\S)/$1 . ($2 eq 'A' ? 'B' : 'A')/mer)),
	403, 'invalid_checkpoint_signature', 'a signature that does not verify');
is_code(add_checkpoint("old 150\n\n" . q1($beta, q{SELECT jam.jam_checkpoint('bsvc')}) . "\n"), 404, 'log_not_witnessed',
	'beta\'s own log, which it does not witness');
is_code(add_checkpoint("old 9999\n\n$checkpoint"), 400, 'invalid_argument', 'an old size larger than the checkpoint');
is_code(add_checkpoint("old 150\n$checkpoint"), 400, 'invalid_argument', 'no blank line after the proof');
is_code(add_checkpoint(''), 400, 'invalid_argument', 'an empty body');
is_code(add_checkpoint("old 150\n" . ('A' x 43) . "=\n" . "\n$checkpoint"), 422, 'inconsistent_checkpoint',
	'a proof that does not verify');
is_code($beta_shim->request('GET', '/jam/witness/add-checkpoint'), 405, 'method_not_allowed', 'GET');
is_code($beta_shim->request('POST', '/jam/witness/add-checkpoint?x=1', body => $good), 400, 'invalid_argument',
	'a query parameter');
is_code($beta_shim->request('POST', '/jam/witness/add-checkpoint', body => $good, token => 'jam_0000000000000000_nope'),
	401, 'unauthenticated', 'a malformed token is still refused');
is(q1($beta, q{SELECT tree_size FROM jam.jam_witnessed_logs WHERE origin = 'alpha.example/svc'}), 150,
	'no refused request moved beta\'s record');
$r = add_checkpoint($good);
is($r->{status}, 200, 'the right request: 200 without a token');
like($r->{headers}{'content-type'}, qr{^text/plain; charset=utf-8$}, 'as text/plain');
like($r->{content}, qr/\A\x{e2}\x{80}\x{94} beta\.example [A-Za-z0-9+\/]{102}==\n\z/, 'one cosignature line');
ok(q1($alpha, sprintf("SELECT jam.jam_verify_cosignature(%s || %s, '%s') IS NOT NULL",
	"jam.jam_checkpoint('svc')", "'" . $r->{content} . "'", $beta_cosigner)),
	'which verifies over alpha\'s checkpoint with beta\'s cosigner key');
is(q1($beta, q{SELECT tree_size FROM jam.jam_witnessed_logs WHERE origin = 'alpha.example/svc'}), $head,
	"beta holds $head");
my ($tlog_lines) = grep { $_->{path} eq '/jam/witness/add-checkpoint' } $beta_shim->log_lines;
is($tlog_lines->{route}, '/jam/witness/add-checkpoint', 'the shim logs the route');

# --- Receipts as tlog-proofs carry the cosignatures (jam_receipt_proof),
# and jamctl verify requires k of n witnesses offline.
my $jamctl = "$ENV{JAM_SRC_DIR}/cli/jamctl";
my $tmp = PostgreSQL::Test::Utils::tempdir();
sub write_file { my ($path, $bytes) = @_; open my $f, '>:raw', $path or die "$path: $!"; print $f $bytes; close $f; }
sub jamctl
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $jamctl, @args ], '<', \undef, '>', \$out, '2>', \$err);
	return { rc => $? >> 8, out => $out, err => $err };
}
my ($first_id, $first_entry) = split /\|/, q1($alpha, q{SELECT encode(hash, 'hex'), encode(entry, 'hex')
	FROM jam.jam_log_entries WHERE service_id = 'svc' AND seq = 7});
my ($last_id) = q1($alpha, q{SELECT encode(hash, 'hex') FROM jam.jam_log_entries WHERE service_id = 'svc' ORDER BY seq DESC LIMIT 1});
my $proof = q1($alpha, "SELECT jam.jam_receipt_proof('$first_id')");
like($proof, qr/\n\n\Qalpha.example\/svc\E\n150\n[^\n]+\n\n\x{e2}\x{80}\x{94} alpha\.example [^\n]+\n\x{e2}\x{80}\x{94} beta\.example [^\n]+\n\z/,
	'an entry the witnessed tree holds is proved against it, with beta\'s cosignature');
my $late = q1($alpha, "SELECT jam.jam_receipt_proof('$last_id')");
like($late, qr/\n\n\Qalpha.example\/svc\E\n$head\n[^\n]+\n\n\x{e2}\x{80}\x{94} alpha\.example [^\n]+\n\z/,
	'a later entry against the head, without cosignatures');
write_file("$tmp/proof", $proof);
write_file("$tmp/late", $late);
write_file("$tmp/entry", pack('H*', $first_entry));
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--leaf-data', "$tmp/entry", '--witness', $beta_cosigner);
is($r->{rc}, 0, 'jamctl verify --witness beta: ok') or diag($r->{err});
my $v = eval { JSON::PP->new->decode($r->{out}) } // {};
ok(($v->{checks}{witnesses} // '') eq 'ok' && $v->{witnesses}[0]{key} =~ /^beta\.example\+[0-9a-f]{8}$/
	  && ($v->{witnesses}[0]{cosigned_at} // '') =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
	'naming who cosigned, and when (piped: JSON)') or diag($r->{out});
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--witness', $beta_cosigner, '--witness', $alpha_cosigner);
ok($r->{rc} == 6 && $r->{err} =~ /witnesses: 1 of the 2 witnesses cosigned the checkpoint; 2 needed/,
	'two witnesses required, one cosigned: refused (exit 6)') or diag("$r->{rc} $r->{err}");
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--witness', $beta_cosigner, '--witness', $alpha_cosigner,
	'--min-witnesses', '1', '--json');
is($r->{rc}, 0, '1 of 2 with --min-witnesses 1: ok');
my $doc = eval { JSON::PP->new->decode($r->{out}) } // {};
ok(defined $doc->{witnesses}[0]{cosigned_at} && !defined $doc->{witnesses}[1]{cosigned_at} && $doc->{witnesses_needed} == 1,
	'--json lists each witness, cosigned_at null for the one that did not');
$r = jamctl('verify', "$tmp/late", '--key', $alpha_key, '--witness', $beta_cosigner);
ok($r->{rc} == 6 && $r->{err} =~ /witnesses: 0 of the 1/, 'a proof against an unwitnessed head: refused');
(my $forged = $proof) =~ s/^(\x{e2}\x{80}\x{94} beta\.example \S{30})(\S)/$1 . ($2 eq 'A' ? 'B' : 'A')/me;
write_file("$tmp/forged", $forged);
$r = jamctl('verify', "$tmp/forged", '--key', $alpha_key, '--witness', $beta_cosigner);
ok($r->{rc} == 6 && $r->{err} =~ /witnesses: 0 of the 1/, 'a cosignature with one byte changed does not count');
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--witness', $beta_key);
ok($r->{rc} == 6 && $r->{err} =~ /witnesses: 0 of the 1/,
	'beta\'s log key is not its cosigner key (a key of its own, derived from it): refused');
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--min-witnesses', '1');
ok($r->{rc} == 1 && $r->{err} =~ /--min-witnesses K needs/, '--min-witnesses without --witness: a usage error');
$r = jamctl('verify', "$tmp/proof", '--key', $alpha_key, '--witness', $beta_cosigner, '--witness', $beta_cosigner);
ok($r->{rc} == 1 && $r->{err} =~ /given twice/, 'the same witness twice: a usage error');

# x/mod's note and tlog still check such a proof: the cosignature lines
# are signatures by keys they do not know, which signed-note skips.
SKIP:
{
	my $gopath = '/usr/share/gocode';
	skip 'go and golang.org/x/mod (golang-go, golang-golang-x-mod-dev) are not installed', 1
	  unless -x '/usr/bin/go' && -d "$gopath/src/golang.org/x/mod/sumdb/tlog";
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'go', 'build', '-o', "$tmp/tlogproof", '.' ], '>', \$o, '2>', \$e,
		init => sub {
			chdir 'test/go/tlogproof' or die "test/go/tlogproof: $!";
			$ENV{GO111MODULE} = 'off';
			$ENV{GOPROXY} = 'off';
			$ENV{GOPATH} = $gopath;
			$ENV{GOCACHE} = "$tmp/gocache";
			$ENV{TMPDIR} = $tmp;
		}) or BAIL_OUT("cannot build the Go verifier: $e");
	IPC::Run::run([ "$tmp/tlogproof", $alpha_key, 'alpha.example/svc', "$tmp/proof", "$tmp/entry" ], '>', \$o, '2>', \$e);
	chomp $o;
	is($o, 'ok', 'x/mod\'s note and tlog verify the cosigned proof');
}

is($alpha_shim->stop, 0, 'alpha\'s shim stops');
is($beta_shim->stop, 0, 'beta\'s shim stops');
$alpha->stop;
$beta->stop;
done_testing();
