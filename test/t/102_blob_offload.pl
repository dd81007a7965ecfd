# The blob tier's background side against a real S3-compatible server
# (s3rver behind test/s3/verify-proxy.js, which checks every signature
# with AWS's own signer): jam_offload moving inline preimages to the store
# in batches, killed with -9 in the middle of one and resumed; the blob
# worker offloading by itself and draining the queue of object deletes;
# retention deleting objects only after its transaction commits and never
# on rollback, an object put again while its delete waits being kept, a
# delete the store refuses retried; jam_fsck finding orphan objects (a put
# rolled back) and rows whose object is missing, and repairing what it
# safely can.
#
# No timing is asserted: loops only bound how long the test waits.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use JamTest;
use JamTest::Blake2b qw(blake2b);
use JamTest::S3;

my $s3 = JamTest::S3->start(name => 'offload')
  or plan skip_all => 'no S3-compatible server to test against: ' . JamTest::S3->why_not;

# The worker offloads only when told to (interval 0 at first).
my $node = jam_node('offload',
	$s3->conf('jam.blob_offload_threshold' => '1MB', 'jam.blob_offload_batch_size' => 3,
		'jam.blob_offload_interval' => 0),
	"jam.blob_worker_databases = 'postgres'",
	'jam.preimage_retention_days = 1');
my $json = JSON::PP->new->canonical;

sub hash_hex { return unpack('H*', blake2b($_[0], 32)) }
sub bytes_of { my ($seed, $n) = @_; return join '', map { chr(($_ * 7919 + $seed * 104729) % 251) } 0 .. $n - 1 }
sub sql { return $node->safe_psql('postgres', $_[0]) }
sub put { my ($bytes) = @_; return $json->decode(sql('SELECT jam.jam_put_preimage(' . sql_literal_bytea($bytes) . ')')) }
sub requests { return $s3->requests }
sub count_method { my ($m) = @_; return scalar(grep { $_->{method} eq $m && $_->{verified} } requests()) }
sub set_conf
{
	my (%set) = @_;
	sql("ALTER SYSTEM SET $_ = '$set{$_}'") for sort keys %set;
	$node->reload;
	my $cond = join ' AND ', map { "current_setting('$_') = '$set{$_}'" } sort keys %set;
	$node->poll_query_until('postgres', "SELECT $cond") or die "the reload did not take: $cond";
	return;
}
sub fsck { my ($repair) = @_; return $json->decode(sql('SELECT jam.jam_fsck(' . ($repair ? 'true' : 'false') . ")->'blob_store'")) }
sub class_of { my ($h) = @_; return sql("SELECT storage_class FROM jam.jam_preimages WHERE hash = decode('$h', 'hex')") }
sub reads_back
{
	my ($bytes) = @_;
	my $h = hash_hex($bytes);
	return sql("SELECT md5(jam.jam_get_preimage('$h'))") eq sql('SELECT md5(' . sql_literal_bytea($bytes) . ')');
}

ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jam blob worker'"),
	'the blob worker runs');

# --- jam_offload: inline preimages over the threshold, in batches; killed, resumed.

my @inline = map { bytes_of($_, 20_000 + $_) } 1 .. 10;
put($_) for @inline;
is(sql("SELECT count(*) FROM jam.jam_preimages WHERE storage_class = 'inline'"), '10',
	'ten preimages stored inline (the threshold was 1 MB)');
set_conf('jam.blob_offload_threshold' => '16kB');
my $dry = $json->decode(sql('SELECT jam.jam_offload(dry_run => true)'));
is($dry->{candidates}, 10, 'lowered to 16 kB, the dry run counts ten candidates');
is($dry->{bytes}, 200_055, 'and their bytes');
is(count_method('PUT'), 0, 'without a request to the store');

# Each upload is held back, so that the kill lands in the middle of a batch.
$s3->control('delay?ms=400');
my ($out, $err) = ('', '');
my $offload = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'), '-c', 'SELECT jam.jam_offload()' ],
	'>', \$out, '2>', \$err);
my $put_seen = 0;
for (1 .. 600)
{
	$put_seen = count_method('PUT');
	last if $put_seen >= 5;
	usleep(50_000);
}
ok($put_seen >= 5, 'the offload is past its first batch of three (' . $put_seen . ' uploads)');
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'jam offload'");
like($pid, qr/^\d+$/, 'its task worker runs');
kill 'KILL', $pid;
$offload->finish;
my $postmaster = $node->{_pid};
for (1 .. 300) { last unless kill 0, $postmaster; usleep(100_000); }
ok(!kill(0, $postmaster), 'kill -9 of the task worker took the server down');
$node->_update_pid(0);
$node->start;
$s3->control('delay?ms=0');

my $moved = sql("SELECT count(*) FROM jam.jam_preimages WHERE storage_class = 's3'");
ok($moved >= 3 && $moved < 10 && $moved % 3 == 0, "only whole batches were committed ($moved of 10)");
is(sql("SELECT count(*) FROM jam.jam_preimages WHERE storage_class = 's3' AND data IS NOT NULL"), '0',
	'no row of the store holds bytes');
my $uploads = count_method('PUT');
ok($uploads > $moved, "the interrupted batch had uploaded ($uploads uploads for $moved rows)");
my $check = fsck(0);
ok($check->{orphan_count} >= 1, "its uploads are orphans that jam_fsck finds ($check->{orphan_count})");
is($check->{missing_count}, 0, 'and no row lacks its object');

my $resumed = $json->decode(sql('SELECT jam.jam_offload()'));
is($resumed->{offloaded}, 10 - $moved, 'jam_offload again moves the rest');
is(sql("SELECT count(*) FROM jam.jam_preimages WHERE storage_class = 'inline'"), '0', 'none is inline now');
$check = fsck(0);
is($check->{orphan_count}, 0, 'the orphans are named by rows again');
is($check->{missing_count}, 0, 'no row lacks its object');
is($check->{rows_in_store}, 10, 'ten rows in the store');
is(scalar(grep { !reads_back($_) } @inline), 0, 'every offloaded preimage reads back, verified');
is(sql("SELECT sum(value) FROM jam.jam_metrics() WHERE name = 'jam_blob_offloaded_total'"), 10 - $moved,
	'jam_blob_offloaded_total counts the committed moves since the restart');

# --- The blob worker offloads by itself, every jam.blob_offload_interval.

set_conf('jam.blob_offload_threshold' => '1MB');
my @later = map { bytes_of(100 + $_, 30_000) } 1 .. 4;
put($_) for @later;
is(class_of(hash_hex($later[0])), 'inline', 'new preimages under a high threshold are inline');
set_conf('jam.blob_offload_threshold' => '16kB', 'jam.blob_offload_interval' => '1s');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM jam.jam_preimages WHERE storage_class = 'inline'"),
	'the worker offloads them');
is(scalar(grep { !reads_back($_) } @later), 0, 'and they read back');
set_conf('jam.blob_offload_interval' => '0');

# --- Deletes: only after the deleting transaction commits.

my $victim = $inline[0];
my $victim_hash = hash_hex($victim);
ok($s3->object_exists($victim_hash), 'a preimage in the store has its object');
my $session = $node->background_psql('postgres');
$session->query_safe('BEGIN');
$session->query_safe("DELETE FROM jam.jam_preimages WHERE hash = decode('$victim_hash', 'hex')");
my $drained = $json->decode(sql('SELECT jam.jam_drain_blob_deletes()'));
is($drained->{deleted}, 0, 'while the deleting transaction is open, nothing can be drained');
ok($s3->object_exists($victim_hash), 'and the object stays');
$session->query_safe('ROLLBACK');
is(sql('SELECT count(*) FROM jam.jam_blob_deletes'), '0', 'rolled back: nothing is queued');
$drained = $json->decode(sql('SELECT jam.jam_drain_blob_deletes()'));
is($drained->{deleted}, 0, 'nothing to drain');
ok($s3->object_exists($victim_hash), 'the object of the row that stays is still there');
ok(reads_back($victim), 'and reads');

# Retention: an old unreferenced preimage of the store goes; after the
# cleanup's batch commits, the worker deletes its object.
sql("UPDATE jam.jam_preimages SET created_at = now() - interval '3 days' WHERE hash = decode('$victim_hash', 'hex')");
my $cleanup = $json->decode(sql('SELECT jam.jam_cleanup()'));
is($cleanup->{preimages_deleted}, 1, 'jam_cleanup deletes the expired preimage');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM jam.jam_blob_deletes'),
	'after its commit, the worker drains the queued delete');
ok(!$s3->object_exists($victim_hash), 'the object is gone');
my ($delete) = grep { $_->{method} eq 'DELETE' } requests();
ok($delete && $delete->{verified} && $delete->{status} == 204, 'by one signed DELETE');

# Put again while its delete waits: the object stays.
set_conf('jam.blob_delete_delay' => '1h');
my $again = $inline[1];
my $again_hash = hash_hex($again);
sql("DELETE FROM jam.jam_preimages WHERE hash = decode('$again_hash', 'hex')");
is(sql('SELECT count(*) FROM jam.jam_blob_deletes'), '1', 'a deleted row waits jam.blob_delete_delay in the queue');
ok(put($again)->{created}, 'the same bytes are put again meanwhile');
set_conf('jam.blob_delete_delay' => '0');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM jam.jam_blob_deletes'),
	'once due, the entry is drained');
ok($s3->object_exists($again_hash), 'but the object is kept: a row names it again');
ok(reads_back($again), 'and it reads');
is(sql("SELECT value FROM jam.jam_metrics() WHERE name = 'jam_blob_deletes_total' AND labels->>'outcome' = 'kept'"), '1',
	'jam_blob_deletes_total{outcome=kept} says so');

# The store refuses: the delete waits and is retried.
$s3->stop_proxy;
my $third_hash = hash_hex($inline[2]);
sql("DELETE FROM jam.jam_preimages WHERE hash = decode('$third_hash', 'hex')");
ok($node->poll_query_until('postgres', 'SELECT attempts >= 1 AND last_error IS NOT NULL FROM jam.jam_blob_deletes'),
	'with the store down, the delete fails and stays queued, its error kept');
ok($s3->object_exists($third_hash), 'the object is still there');
$s3->start_proxy;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM jam.jam_blob_deletes'),
	'with the store back, the retry deletes it');
ok(!$s3->object_exists($third_hash), 'the object is gone');

# --- jam_fsck: orphans (a put rolled back) and missing objects.

my $orphan = bytes_of(200, 40_000);
my $orphan_hash = hash_hex($orphan);
$session->query_safe('BEGIN');
$session->query_safe('SELECT jam.jam_put_preimage(' . sql_literal_bytea($orphan) . ')');
$session->query_safe('ROLLBACK');
ok($s3->object_exists($orphan_hash), 'a put rolled back leaves its object behind');
$check = fsck(0);
is($check->{orphan_count}, 1, 'jam_fsck finds one orphan');
is_deeply($check->{orphans}, [$orphan_hash], 'that object');
is(count_method('DELETE'), 2, 'a check deletes nothing');
$check = fsck(1);
is($check->{orphans_queued}, 1, 'repair queues its delete');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM jam.jam_blob_deletes'), 'which the worker drains');
ok(!$s3->object_exists($orphan_hash), 'the orphan is gone');

my $lost = $inline[3];
my $lost_hash = hash_hex($lost);
unlink $s3->object_file($lost_hash) or die "cannot remove the object: $!";
$check = fsck(0);
is($check->{missing_count}, 1, 'an object removed behind jam\'s back: jam_fsck finds its row');
is_deeply($check->{missing}, [$lost_hash], 'that row');
like(scalar(($node->psql('postgres', "SELECT jam.jam_get_preimage('$lost_hash')"))[2]),
	qr/preimage $lost_hash is missing from the blob store/, 'and a read fails with integrity_error');
$check = fsck(1);
is($check->{missing_count}, 1, 'repair cannot bring it back');
ok(!put($lost)->{created}, 'putting the bytes again');
$check = fsck(0);
is($check->{missing_count} + $check->{orphan_count}, 0, 'restores it: jam_fsck finds nothing');
ok(reads_back($lost), 'and it reads');

# --- Every request the verifier saw was signed right.

my @seen = grep { defined $_->{verified} } requests();
is(scalar(grep { !$_->{verified} } @seen), 0, 'all ' . scalar(@seen) . ' requests carried signatures AWS\'s signer agrees with');

$session->quit;
$node->stop;
done_testing();
