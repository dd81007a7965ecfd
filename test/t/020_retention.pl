# Retention under interruption and under load.
#
# A large expired data set (packages, half of them pending, with reports,
# attestations and preimages, written straight into the tables with
# consistent counts) is cleaned up in small batches, and the cleanup is
# stopped in the middle three ways: its worker terminated, its caller
# terminated, the server stopped in immediate mode.  Each time jam_fsck must
# find every refcount and service count exact and no referenced preimage
# missing, the recent rows untouched, and the next cleanup carries on from
# where the last one stopped until nothing expired is left.
#
# Then, while another large cleanup runs, clients submit packages that
# reference an old preimage the cleanup is releasing (and that recent rows
# still hold), in the services whose pending counts it lowers, and process
# them; lock_timeout turns any wait longer than a batch into a failure.
# Cancelling that cleanup stops its worker too.
use strict;
use warnings;

use JamTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = jam_node('retention');
my $host = $node->host;
my $port = $node->port;

# Writes $n expired packages tagged $tag, in services "$tag-0".."$tag-3":
# package g references its own preimage and the preimage $shared; odd packages are applied, with a report (holding the same
# references) and an attestation; even ones are pending.  Everything is
# 300 to 400 days old.  Refcounts and pending counts are raised to match.
sub fill_expired
{
	my ($tag, $n, $shared) = @_;
	my $refs = "ARRAY[decode(md5('$tag' || g) || md5('$tag:' || g), 'hex'), decode('$shared', 'hex')]";
	$node->safe_psql(
		'postgres', qq{
		INSERT INTO jam.jam_preimages (hash, data, size, media_type, refcount, created_at)
		SELECT decode(md5('$tag' || g) || md5('$tag:' || g), 'hex'), convert_to('$tag ' || g, 'UTF8'),
		       octet_length(convert_to('$tag ' || g, 'UTF8')), 'application/octet-stream',
		       1 + g % 2, now() - interval '400 days'
		FROM generate_series(1, $n) AS g;
		INSERT INTO jam.jam_work_packages (id, service_id, contract_version, weight_hint, payload,
		                                   preimage_hashes, status, submitted_at, processed_at)
		SELECT decode(md5('$tag-pkg' || g) || md5('$tag-pkg:' || g), 'hex'), '$tag-' || (g % 4), 1, 1,
		       convert_to('$tag ' || g, 'UTF8'), $refs,
		       CASE WHEN g % 2 = 1 THEN 'applied' ELSE 'pending' END,
		       now() - interval '350 days' + g * interval '1 ms',
		       CASE WHEN g % 2 = 1 THEN now() - interval '349 days' END
		FROM generate_series(1, $n) AS g;
		INSERT INTO jam.jam_work_reports (package_id, service_id, report_hash, status, contract_version,
		                                  refine, output, output_hash, preimage_hashes, created_at)
		SELECT decode(md5('$tag-pkg' || g) || md5('$tag-pkg:' || g), 'hex'), '$tag-' || (g % 4),
		       decode(md5('$tag-rep' || g) || md5('$tag-rep:' || g), 'hex'), 'applied', 1, 'builtin:v1', '\\x00'::bytea,
		       decode(md5('$tag-out' || g) || md5('$tag-out:' || g), 'hex'), $refs,
		       now() - interval '349 days' + g * interval '1 ms'
		FROM generate_series(1, $n) AS g WHERE g % 2 = 1;
		INSERT INTO jam.jam_attestations (package_id, report_hash, attester, created_at)
		SELECT package_id, report_hash, 'jam', created_at FROM jam.jam_work_reports
		WHERE service_id LIKE '$tag-%';
		INSERT INTO jam.jam_services AS s (service_id, pending_count, applied_count, applied_report_count)
		SELECT '$tag-' || (g % 4), count(*) FILTER (WHERE g % 2 = 0), count(*) FILTER (WHERE g % 2 = 1),
		       count(*) FILTER (WHERE g % 2 = 1)
		FROM generate_series(1, $n) AS g GROUP BY 1
		ON CONFLICT (service_id) DO UPDATE SET pending_count = s.pending_count + EXCLUDED.pending_count,
		  applied_count = s.applied_count + EXCLUDED.applied_count,
		  applied_report_count = s.applied_report_count + EXCLUDED.applied_report_count;
		UPDATE jam.jam_preimages SET refcount = refcount + $n + ($n + 1) / 2 WHERE hash = decode('$shared', 'hex');
		ANALYZE jam.jam_preimages, jam.jam_work_packages, jam.jam_work_reports, jam.jam_attestations;
	});
	return;
}

# jam_fsck's verdict: "ok" when every count is exact and nothing is missing.
sub fsck
{
	my $f = decode_json($node->safe_psql('postgres', 'SELECT jam.jam_fsck()'));
	return 'ok'
	  if $f->{drift_count} == 0
	  && $f->{pending_drift_count} == 0
	  && $f->{count_drift_count} == 0
	  && $f->{missing_count} == 0;
	return encode_json($f);
}

# Starts SELECT jam.jam_cleanup() in the background, in batches of $batch,
# as application "cleanup-caller".
sub start_cleanup
{
	my ($batch, $out, $err) = @_;
	return IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t', '-h', $host, '-p', $port, '-d', 'postgres',
			'-c', "SET application_name = 'cleanup-caller'",
			'-c', "SET jam.retention_batch_size = $batch",
			'-c', 'SELECT jam.jam_cleanup()'
		],
		'>', $out, '2>', $err);
}

# Waits until the cleanup's worker runs and the condition holds.
sub wait_for
{
	my ($what, $condition) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'jam cleanup')
			       AND ($condition)}),
		"cleanup under way: $what");
	return;
}

# The recent rows, which no cleanup may touch: packages, a report, and
# the preimages they hold, one of which ($old_shared) is older than the
# expired data (its refcount, which the expired rows raise, is checked on
# its own).
$node->safe_psql(
	'postgres', q{
	SELECT jam.jam_put_preimage('recent preimage'::bytea);
	SELECT jam.jam_put_preimage('old shared preimage'::bytea);
	UPDATE jam.jam_preimages SET created_at = now() - interval '500 days'
	WHERE hash = decode(jam.jam_hash('old shared preimage'::bytea), 'hex');
	SELECT jam.jam_submit_package('kept', 'recent'::bytea, preimage_hashes =>
	    ARRAY[jam.jam_hash('recent preimage'::bytea), jam.jam_hash('old shared preimage'::bytea)]);
	SELECT jam.jam_process_next('kept');
	SELECT jam.jam_submit_package('kept', 'recent, pending'::bytea, preimage_hashes =>
	    ARRAY[jam.jam_hash('old shared preimage'::bytea)]);
});
my $old_shared = $node->safe_psql('postgres', q{SELECT jam.jam_hash('old shared preimage'::bytea)});
my $recent_rows = sub {
	return $node->safe_psql(
		'postgres', q{
		SELECT string_agg(t::text, ' | ' ORDER BY t::text) FROM (
		  SELECT encode(id, 'hex'), status, jam.jam_hex_array(preimage_hashes) FROM jam.jam_work_packages
		    WHERE service_id = 'kept'
		  UNION ALL SELECT encode(package_id, 'hex'), status, jam.jam_hex_array(preimage_hashes)
		    FROM jam.jam_work_reports WHERE service_id = 'kept'
		  UNION ALL SELECT encode(hash, 'hex'), refcount::text, NULL FROM jam.jam_preimages
		    WHERE hash = decode(jam.jam_hash('recent preimage'::bytea), 'hex')
		  UNION ALL SELECT encode(hash, 'hex'), created_at::text, NULL FROM jam.jam_preimages
		    WHERE hash = decode(jam.jam_hash('old shared preimage'::bytea), 'hex')
		  UNION ALL SELECT service_id, pending_count::text, NULL FROM jam.jam_services WHERE service_id = 'kept') t});
};

my $recent_before = $recent_rows->();
my $n = 60000;
fill_expired('exp', $n, $old_shared);
is(fsck(), 'ok', 'the generated data is consistent');
my $log_before = $node->safe_psql('postgres', 'SELECT count(*) FROM jam.jam_log_entries');

my $expired = q{
	SELECT (SELECT count(*) FROM jam.jam_work_reports WHERE service_id LIKE 'exp-%') || ' '
	    || (SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'exp-%') || ' '
	    || (SELECT count(*) FROM jam.jam_preimages WHERE created_at < now() - interval '300 days'
	          AND hash <> decode(jam.jam_hash('old shared preimage'::bytea), 'hex'))};
is($node->safe_psql('postgres', $expired), ($n / 2) . " $n $n", 'expired: reports, packages, preimages');

# 1. The worker is terminated while it deletes reports.
my ($out, $err) = ('', '');
my $h = start_cleanup(20, \$out, \$err);
wait_for('reports', q{(SELECT count(*) FROM jam.jam_work_reports WHERE service_id LIKE 'exp-%') < 29000});
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'jam cleanup'});
$h->finish;
like($err, qr/the jam cleanup worker stopped before it finished/, 'the caller says the worker stopped');
is(fsck(), 'ok', 'worker terminated: counts exact, nothing missing');
my ($reports) = split / /, $node->safe_psql('postgres', $expired);
cmp_ok($reports, '>', 0, 'worker terminated: it stopped in the middle');

# 2. The caller is terminated while the packages go: its worker stops too.
($out, $err) = ('', '');
$h = start_cleanup(20, \$out, \$err);
wait_for('packages',
	qq{(SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'exp-%') < $n - 2000});
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cleanup-caller'});
$h->finish;
ok( $node->poll_query_until(
		'postgres', q{SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'jam cleanup')}),
	'caller terminated: its worker stops');
is(fsck(), 'ok', 'caller terminated: counts exact, nothing missing');
my ($r2, $p2) = split / /, $node->safe_psql('postgres', $expired);
is($r2, 0, 'caller terminated: the reports were all gone');
cmp_ok($p2, '>', 0, 'caller terminated: it stopped in the middle of the packages');

# 3. The server stops in immediate mode (a crash) while the packages go.
($out, $err) = ('', '');
$h = start_cleanup(20, \$out, \$err);
wait_for('packages again',
	qq{(SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'exp-%') < $p2 - 2000});
$node->stop('immediate');
$h->finish;
$node->start;
is(fsck(), 'ok', 'crash: counts exact, nothing missing');
my (undef, $p3) = split / /, $node->safe_psql('postgres', $expired);
cmp_ok($p3, '>', 0, 'crash: it stopped in the middle of the packages');

# The next cleanup finishes the job; what is recent stays as it was.
my $doc = decode_json($node->safe_psql('postgres', 'SELECT jam.jam_cleanup()'));
is($doc->{packages_deleted}, $p3, 'the last cleanup deletes the packages left');
is($node->safe_psql('postgres', $expired), '0 0 0', 'nothing expired is left');
is(fsck(), 'ok', 'counts exact at the end');
is($recent_rows->(), $recent_before, 'the recent rows are untouched');
is($node->safe_psql('postgres', 'SELECT count(*) FROM jam.jam_log_entries'), $log_before,
	'the log is untouched');
is( $node->safe_psql(
		'postgres',
		qq{SELECT refcount FROM jam.jam_preimages WHERE hash = decode('$old_shared', 'hex')}),
	'3',
	'the old preimage the recent rows share keeps their three references');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(service_id || ':' || pending_count, ' ' ORDER BY service_id) FROM jam.jam_services
		  WHERE service_id LIKE 'exp-%'}),
	'exp-0:0 exp-1:0 exp-2:0 exp-3:0',
	'the pending counts of the expired services are 0');
ok($node->log_contains(qr/LOG:  jam cleanup: \{"disabled": false, "dry_run": false/),
	'the cleanup logs its one line');

# 4. Submits and processing go on during a large cleanup.
fill_expired('busy', 100000, $old_shared);
is(fsck(), 'ok', 'the second data set is consistent');
($out, $err) = ('', '');
$h = start_cleanup(10, \$out, \$err);
wait_for('busy packages',
	q{(SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'busy-%') < 99000});
my $submits = "SET lock_timeout = '2s';\nSET statement_timeout = '20s';\n";
for my $i (1 .. 20)
{
	$submits .=
	    "SELECT (jam.jam_submit_package('busy-" . ($i % 4) . "', 'during $i'::bytea, "
	  . "preimage_hashes => ARRAY['$old_shared'])->>'created')::boolean;\n";
	$submits .= "SELECT jam.jam_process_next('busy-" . ($i % 4) . "') IS NOT NULL;\n" if $i % 5 == 0;
}
my ($ret, $sout, $serr) = $node->psql('postgres', $submits);
is($ret, 0, 'submits and processing during the cleanup succeed without waiting long');
is($serr, '', 'no lock timeout');
is($sout =~ tr/t//, 24, 'every submit and processing happened');
ok( $node->safe_psql(
		'postgres', q{SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'jam cleanup')}) eq 't',
	'the cleanup was still running after them');

# Cancelling the cleanup stops its worker too; the next one finishes.
$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'cleanup-caller'});
$h->finish;
like($err, qr/canceling statement due to user request/, 'the cleanup was cancelled');
ok( $node->poll_query_until(
		'postgres', q{SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'jam cleanup')}),
	'cancelled: its worker stops');
is(fsck(), 'ok', 'cancelled: counts exact');
$node->safe_psql('postgres', 'SELECT jam.jam_cleanup()');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'busy-%'
		  AND submitted_at < now() - interval '30 days'}),
	'0',
	'the expired packages are gone');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM jam.jam_work_packages WHERE service_id LIKE 'busy-%'}),
	'20',
	'the packages submitted during the cleanup stay');
is( $node->safe_psql('postgres', qq{SELECT refcount FROM jam.jam_preimages WHERE hash = decode('$old_shared', 'hex')}),
	3 + 20 + 4,
	'the old shared preimage holds the references made during the cleanup');
is(fsck(), 'ok', 'counts exact after the busy cleanup');
is($recent_rows->(), $recent_before, 'the recent rows are untouched');

$node->stop;
done_testing();
