# A batch of submits flushes its packages' WAL before it locks its service
# (jam_flush_before_service_lock, src/xact_rows.c), so that the commit,
# which the service's other writers wait for, has only the log's records
# left to flush; and it does not when synchronous_commit is off, nor when
# the transaction already holds a service's lock.
#
# Read from inside the batch's transaction, after the call and before the
# commit: how far the WAL is flushed past the position where the call
# began, and how much written WAL is not flushed yet.  An early flush ends
# past the packages (100 of 1 KiB) and before the log's records.  The WAL
# writer is slowed to its longest delay and autovacuum is off, so that
# nothing else flushes meanwhile; a background flush would take everything
# written, which the checks tell apart from the early flush.
use strict;
use warnings;

use JamTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = jam_node('batch_flush', 'wal_writer_delay = 10000ms', 'autovacuum = off');

# A fresh batch of 100 packages of 1 KiB for service $svc, tagged $tag.
sub batch
{
	my ($svc, $tag) = @_;
	return "SELECT count(*) FROM jam.jam_submit_packages('$svc', "
	  . "ARRAY(SELECT decode(repeat(md5('$tag-' || g), 64), 'hex') FROM generate_series(1, 100) g)) \\g /dev/null\n";
}

# Runs $before (statements of the transaction before the batch) and the
# batch in one transaction; returns (bytes flushed past the call's start,
# bytes written and not flushed), read before the commit.
sub flushed_by_batch
{
	my ($before, $svc, $tag) = @_;
	my $out = $node->safe_psql(
		'postgres', "BEGIN;\n$before"
		  . "SELECT pg_current_wal_insert_lsn() AS start \\gset\n"
		  . batch($svc, $tag)
		  . "SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), :'start'), "
		  . "pg_wal_lsn_diff(pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn());\n"
		  . "COMMIT;\n");
	my ($flushed, $unflushed) = split /\|/, $out;
	return ($flushed, $unflushed);
}

my $packages_bytes = 100 * 1024;

my ($flushed, $unflushed) = flushed_by_batch('', 'flush-on', 'a');
cmp_ok($flushed, '>', $packages_bytes, 'a batch flushes its packages before its commit');
cmp_ok($unflushed, '>', 0, '... and stops before the log records it appends under the lock');

($flushed, $unflushed) = flushed_by_batch("SET LOCAL synchronous_commit = off;\n", 'flush-off', 'b');
ok($flushed < $packages_bytes || $unflushed == 0,
	'with synchronous_commit off, a batch flushes nothing early')
  or diag("flushed $flushed, unflushed $unflushed");

($flushed, $unflushed) = flushed_by_batch(
	"SELECT 1 FROM jam.jam_submit_package('flush-held', 'held'::bytea) \\g /dev/null\n",
	'flush-held', 'c');
ok($flushed < $packages_bytes || $unflushed == 0,
	'a batch in a transaction that holds a service lock flushes nothing early')
  or diag("flushed $flushed, unflushed $unflushed");

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'flush-%'}),
	'301',
	'every batch committed whole');
is($node->safe_psql('postgres', q{SELECT jam.jam_verify_log('flush-on')->>'ok'}),
	'true', 'the log of a flushed batch verifies');

$node->stop;
done_testing();
