# ALTER EXTENSION jam UPDATE from 1.8 to the default version, on a
# database that 1.8 made itself (CREATE EXTENSION jam VERSION '1.8') and
# filled through the API: packages single and batched, reports applied and
# failed, pending packages, a tenant's token, and a history of 2,000 more
# processed packages.
#
# 1.9 rebuilds jam_log_entries_hash_idx, through which a receipt is found
# by package id or report hash, as a hash index: about half the pages of
# the btree, and fewer page images in the WAL after a checkpoint.  So
# after the update every row must be as before, every sequence, every
# function's rights, every receipt and checkpoint; the index must be a
# hash index that receipts by package id and by report hash read, in a new
# session and in one connected across the update (whose cached plans name
# the dropped btree); submits, processing and their receipts must go on;
# readers must get receipts while the update waits to build the index;
# then pg_dump and restore at the default version, with the same index.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use JamTest::Upgrade qw(upgrade_node install_with_refines filled_through_api
  updates_keeping_state restored_with_heads index_scans unverified_receipts $latest_version);

my $db = 'jam_from_1_8';
my $node = upgrade_node('upgrade_1_8', $db);

sub sql { my ($query, $dbname) = @_; return $node->safe_psql($dbname // $db, $query); }

my $index_kind = q{SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam
	WHERE c.oid = 'jam.jam_log_entries_hash_idx'::regclass};

# How many times a receipt by $hash read the hash index, and the receipt's
# seq, in the session $run runs SQL in.
sub receipt_scans
{
	my ($run, $hash) = @_;
	return index_scans($run, 'jam_log_entries_hash_idx', qq{SELECT jam.jam_receipt('$hash')->>'seq'});
}

# --- 1. Install 1.8 and fill it through the API -----------------------------

install_with_refines($node, $db, '1.8', 'u18');
my ($acme, $packages, $reports) = filled_through_api($node, $db, 2);
my @packages = @$packages;
my @report_hashes = @$reports;

# A history, so that a receipt's lookup is one the planner makes through
# the index rather than by reading the whole table.
is(sql(q{SELECT jam.jam_submit_packages('u-bulk', ARRAY(SELECT convert_to('h ' || g, 'UTF8')
	FROM generate_series(1, 2000) g))->>'created'}), '2000', '1.8: 2,000 more packages in one batch');
is(sql(q{SELECT jam.jam_process_packages('u-bulk', 2000)->>'processed'}), '2000', '1.8: all processed');
sql('VACUUM ANALYZE jam.jam_log_entries');
is(sql($index_kind), 'btree', '1.8: the log entries\' hash index is a btree');

# A session that reads receipts before the update and goes on after it.
my $session = $node->background_psql($db, on_error_stop => 0);
my $in_session = sub { return $session->query($_[0]); };
my ($scans, $package_seq) = receipt_scans($in_session, $packages[0]);
ok($scans >= 1, "1.8: the session finds a package's receipt through the btree ($scans scans)");
($scans, my $report_seq) = receipt_scans($in_session, $report_hashes[0]);
ok($scans >= 1, "1.8: and a report's ($scans scans)");

# --- 2. Update: every row, right, receipt and head as before ----------------

updates_keeping_state($node, $db, $latest_version, [ @packages, @report_hashes ]);

# --- 3. What 1.9 changes: a hash index --------------------------------------

is(sql($index_kind), 'hash', 'the log entries\' hash index is a hash index');
is(sql(q{SELECT pg_get_indexdef('jam.jam_log_entries_hash_idx'::regclass)}),
	'CREATE INDEX jam_log_entries_hash_idx ON jam.jam_log_entries USING hash (hash)',
	'on the hash column alone');
is(sql(q{SELECT string_agg(indexrelid::regclass::text, ' ' ORDER BY indexrelid::regclass::text)
	FROM pg_index WHERE indrelid = 'jam.jam_log_entries'::regclass}),
	'jam.jam_log_entries_hash_idx jam.jam_log_entries_pkey', 'the log keeps its two indexes and no other');
my $in_db = sub { return sql($_[0]); };
for my $case ([ 'a new session', $in_db ], [ 'the session connected across the update', $in_session ]) {
	my ($who, $run) = @$case;
	my ($n, $s) = receipt_scans($run, $packages[0]);
	ok($n >= 1, "$who finds a package's receipt through the hash index ($n scans)");
	is($s, $package_seq, "$who: the same entry as before");
	($n, $s) = receipt_scans($run, $report_hashes[0]);
	ok($n >= 1, "$who finds a report's receipt through the hash index ($n scans)");
	is($s, $report_seq, "$who: the same entry as before");
}
$session->query_safe(q{CREATE FUNCTION pg_temp.refusal(q text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN EXECUTE q; RETURN 'accepted'; EXCEPTION WHEN OTHERS THEN RETURN SQLERRM; END $$});
like($session->query(q{SELECT pg_temp.refusal('SELECT jam.jam_receipt(''} . ('0' x 64) . q{'')')}),
	qr/^no log entry has hash 0{64}$/, 'the session: a hash no entry has is still refused');

# Writing goes on, and what it writes is found by hash.
my $new_package = $session->query(q{SELECT jam.jam_submit_package('u-batch', convert_to('s-after', 'UTF8'))->>'id'});
like($new_package, qr/^[0-9a-f]{64}$/, 'the session submits after the update');
$session->quit;
my $new_report = sql(qq{SELECT jam.jam_process_packages('u-batch', 10)->'reports'->-1->>'report_hash'});
is(sql(q{SELECT jam.jam_submit_package('u-batch', convert_to('s-after', 'UTF8'))->>'created'}), 'false',
	'a submit again of the same package finds it stored');
is(unverified_receipts($node, $db, $new_package, $new_report, @packages[0 .. 1]), '0/4',
	'the receipts of the new package and its report verify, and the older ones still do');

# --- 4. What the update holds off --------------------------------------------

# Building the index holds off the log's writers; dropping the old one
# locks out readers too, until the update commits, so the update drops it
# only after the build.  Seen through the lock queue, without timing: a
# writer's open transaction keeps the update waiting at its first lock on
# the log; a reader arriving then must get its receipt, which it could not
# if the update were already waiting for the drop's exclusive lock (the
# reader would queue behind it until its lock_timeout).
my $ldb = 'jam_locks';
sql("CREATE DATABASE $ldb");
sql(q{CREATE EXTENSION jam VERSION '1.8'}, $ldb);
my $held = sql(q{SELECT jam.jam_submit_package('u-locks', convert_to('held', 'UTF8'))->>'id'}, $ldb);
my $writer = $node->background_psql($ldb, on_error_stop => 1);
$writer->query_safe('BEGIN; LOCK TABLE jam.jam_log_entries IN ROW EXCLUSIVE MODE');
my ($update_out, $update_err) = ('', '');
my $update = IPC::Run::start(
	[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($ldb),
	  '-c', q{SET application_name = 'jam-update'}, '-c', 'ALTER EXTENSION jam UPDATE' ],
	'>', \$update_out, '2>', \$update_err);
ok($node->poll_query_until($ldb, q{SELECT EXISTS (SELECT 1 FROM pg_stat_activity
	WHERE application_name = 'jam-update' AND wait_event_type = 'Lock')}),
	'the update waits for the writer\'s transaction');
my ($rc, $seq_read, $read_err) = (undef, '', '');
$rc = $node->psql($ldb, qq{SET lock_timeout = '60s'; SELECT jam.jam_receipt('$held')->>'seq'},
	stdout => \$seq_read, stderr => \$read_err);
is("$rc $seq_read", '0 0', 'meanwhile a reader gets its receipt' . ($read_err ? ": $read_err" : ''));
$writer->query_safe('COMMIT');
$writer->quit;
$update->finish;
is($update_err, '', 'the update then completes');
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'jam'}, $ldb), $latest_version,
	"at $latest_version");

# --- 5. pg_dump of the updated database, restored into a new one ------------

my $rdb = 'jam_restored';
restored_with_heads($node, $db, $rdb, $latest_version);
is(sql($index_kind, $rdb), 'hash', 'restored: the same hash index');
is(unverified_receipts($node, $rdb, $new_package, @packages, @report_hashes), '0/' . (1 + @packages + @report_hashes),
	'restored: every receipt verifies');

$node->stop;
done_testing();
