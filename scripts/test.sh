#!/usr/bin/env bash
# make test: every suite, as the postgres user, in a scratch folder; the last
# line sums them all: "N passed, N failed" (", N skipped" when some were).
#   pg_regress  test/sql, test/expected           (a temporary instance)
#   isolation   test/isolation/specs, .../expected (when there are specs)
#   TAP         test/t/*.pl with PostgreSQL::Test::Cluster, through prove
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

work=$(mktemp -d /tmp/jam-test.XXXXXX)
chmod 755 "$work"
cp -r "$root/test" "$work/test"
printf "shared_preload_libraries = 'jam'\n" > "$work/extra.conf"
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"
cd "$work" || exit 1

passed=0 failed=0 skipped=0

# Counts a pg_regress-style log: "test name ... ok" or "... FAILED".
count_regress() {
	local log=$1 rc=$2 ok bad
	ok=$(grep -cE '\.\.\. ok' "$log")
	bad=$(grep -cE '\.\.\. (FAILED|failed)' "$log")
	# A suite that could not run at all counts as one failure.
	[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
	passed=$((passed + ok))
	failed=$((failed + bad))
	echo "$3: $ok passed, $bad failed"
	if [ "$rc" -ne 0 ]; then
		cat "$log"
		[ -f "$4/regression.diffs" ] && head -n 300 "$4/regression.diffs"
	fi
}

regress_tests=$(cd test/sql && ls -- *.sql 2>/dev/null | sed 's/\.sql$//' | sort)
if [ -n "$regress_tests" ]; then
	# shellcheck disable=SC2086
	as_pg "$pgxs_dir/src/test/regress/pg_regress" --temp-instance="$work/regress/instance" \
		--temp-config="$work/extra.conf" --inputdir="$work/test" --outputdir="$work/regress" \
		--load-extension=jam --bindir="$bindir" $regress_tests > "$work/regress.log" 2>&1
	count_regress "$work/regress.log" $? pg_regress "$work/regress"
fi

specs=$(cd test/isolation/specs 2>/dev/null && ls -- *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "$specs" ]; then
	# shellcheck disable=SC2086
	as_pg "$pgxs_dir/src/test/isolation/pg_isolation_regress" --temp-instance="$work/isolation/instance" \
		--temp-config="$work/extra.conf" --inputdir="$work/test/isolation" \
		--outputdir="$work/isolation" --load-extension=jam --bindir="$bindir" $specs \
		> "$work/isolation.log" 2>&1
	count_regress "$work/isolation.log" $? isolation "$work/isolation"
fi

if ls test/t/*.pl >/dev/null 2>&1; then
	vectors=$(cd "$root/.." && pwd)/shared/vectors
	if ! as_pg test -r "$vectors/README.md"; then
		echo "TAP: $vectors is not there; tests that need the public vectors skip"
		vectors=
	fi
	mkdir -p "$work/tap"
	[ "$(id -u)" = 0 ] && chown postgres: "$work/tap"
	as_pg env PATH="$bindir:$PATH" PG_REGRESS="$pgxs_dir/src/test/regress/pg_regress" \
		TESTDIR="$work/tap" TESTDATADIR="$work/tap/tmp_check" JAM_VECTORS_DIR="$vectors" \
		JAM_SRC_DIR="$root" \
		prove -v -I "$pgxs_dir/src/test/perl" -I "$work/test/perl" test/t/*.pl > "$work/tap.log" 2>&1
	rc=$?
	# Top-level TAP lines only: subtests are indented.  A TODO that fails is expected.
	ok=$(grep -cE '^ok [0-9]+' "$work/tap.log")
	skip=$(grep -cE '^ok [0-9]+.*# (skip|SKIP)' "$work/tap.log")
	todo=$(grep -cE '^not ok [0-9]+.*# TODO' "$work/tap.log")
	bad=$(grep -E '^not ok [0-9]+' "$work/tap.log" | grep -cv '# TODO')
	skip_all=$(grep -cE '^1\.\.0 # (skip|SKIP)' "$work/tap.log")
	[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
	passed=$((passed + ok - skip + todo))
	skipped=$((skipped + skip + skip_all))
	failed=$((failed + bad))
	echo "TAP: $((ok - skip + todo)) passed, $bad failed, $((skip + skip_all)) skipped"
	if [ "$rc" -ne 0 ]; then
		grep -vE '^ok [0-9]+' "$work/tap.log" | tail -n 200
		for f in "$work"/tap/tmp_check/log/regress_log_*; do
			[ -f "$f" ] && { echo "== $f"; tail -n 60 "$f"; }
		done
	fi
fi

cd "$root" || exit 1
if [ "$failed" -eq 0 ]; then
	rm -rf "$work"
else
	echo "test: kept $work for inspection"
fi
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
