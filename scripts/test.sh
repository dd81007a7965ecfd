#!/usr/bin/env bash
# make test: every suite against the installed extension, as the postgres
# user, in a scratch folder under /tmp (kept when something fails).  The last
# line sums all suites: "N passed, N failed" (", N skipped" when some were).
#   pg_regress  test/sql, test/expected              (a temporary instance)
#   isolation   test/isolation/specs, .../expected    (when there are specs)
#   TAP         test/t/*.pl, PostgreSQL::Test::Cluster through prove
#   fuzz        the shim's request parsing and routing under libFuzzer
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/common.sh"

passed=0 failed=0 skipped=0
add() {
	passed=$((passed + $2)) failed=$((failed + $3)) skipped=$((skipped + $4))
	echo "== $1: $2 passed, $3 failed, $4 skipped"
}
summary() {
	local line="$passed passed, $failed failed"
	[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
	echo "$line"
}

if [ ! -f "$sharedir/extension/jam.control" ]; then
	echo "test: jam is not installed for $pg_config; run make test (or make install) as root" >&2
	failed=1
	summary
	exit 1
fi

work=$(mktemp -d --suffix=.jam-test)
chmod 755 "$work"
cp -r "$root/test" "$work/test"
# The temporary instances preload jam as a real server would.
echo "shared_preload_libraries = 'jam'" > "$work/test.conf"
give_to_pg "$work"
cd "$work" || exit 1

# pg_regress and pg_isolation_regress (PG15) print one line per test:
# "test hash ... ok 12 ms", "... FAILED", "... failed (ignored)".
run_regress() {
	local name=$1 program=$2 inputdir=$3 rc ok bad ignored
	shift 3
	echo "== $name"
	as_pg "$program" --temp-instance="$work/$name/instance" --temp-config="$work/test.conf" \
		--inputdir="$inputdir" --outputdir="$work/$name" --load-extension=jam \
		--bindir="$bindir" "$@" 2>&1 | tee "$work/$name.log"
	rc=${PIPESTATUS[0]}
	ok=$(grep -c '\.\.\. ok' "$work/$name.log")
	bad=$(grep -c '\.\.\. FAILED' "$work/$name.log")
	ignored=$(grep -c '\.\.\. failed (ignored)' "$work/$name.log")
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "$name: did not run to the end (exit $rc)"
		bad=1
	fi
	if [ "$bad" -gt 0 ] && [ -s "$work/$name/regression.diffs" ]; then
		echo "== $name: first 300 lines of $work/$name/regression.diffs"
		head -n 300 "$work/$name/regression.diffs"
	fi
	add "$name" "$ok" "$bad" "$ignored"
}

# Test names in C order: alphabetical order is the run order.
names() { (cd "$1" 2>/dev/null && ls -- *"$2" 2>/dev/null) | sed "s/$2\$//" | LC_ALL=C sort; }

mapfile -t tests < <(names test/sql .sql)
if [ ${#tests[@]} -gt 0 ]; then
	run_regress pg_regress "$pgxs_dir/src/test/regress/pg_regress" "$work/test" "${tests[@]}"
fi

mapfile -t specs < <(names test/isolation/specs .spec)
if [ ${#specs[@]} -gt 0 ]; then
	run_regress isolation "$pgxs_dir/src/test/isolation/pg_isolation_regress" \
		"$work/test/isolation" "${specs[@]}"
fi

mapfile -t tap < <(names test/t .pl)
if [ ${#tap[@]} -gt 0 ]; then
	tap=("${tap[@]/#/test/t/}")
	tap=("${tap[@]/%/.pl}")
	echo "== TAP"
	# The public test vectors sit next to the project; tests skip without them.
	vectors=
	if [ -d "$root/../shared/vectors" ]; then
		vectors=$(cd "$root/../shared/vectors" && pwd -P)
		as_pg test -r "$vectors" -a -x "$vectors" || vectors=
	fi
	[ -n "$vectors" ] || echo "TAP: no readable ../shared/vectors; the tests that need it skip"
	# PostgreSQL::Test::Utils puts its clusters and logs under $TESTDIR/tmp_check.
	# The screen shows prove's verdicts and the tests' diagnostics (stderr);
	# tap.log keeps every TAP line, for counting.
	mkdir -p "$work/tap"
	give_to_pg "$work/tap"
	as_pg env PATH="$bindir:$PATH" PG_REGRESS="$pgxs_dir/src/test/regress/pg_regress" \
		TESTDIR="$work/tap" TESTDATADIR="$work/tap/data" \
		JAM_VECTORS_DIR="$vectors" JAM_SRC_DIR="$root" \
		prove -v -I "$pgxs_dir/src/test/perl" -I test/perl "${tap[@]}" \
		| tee "$work/tap.log" | grep --line-buffered -vE '^ *(ok [0-9]|#)'
	rc=${PIPESTATUS[0]}
	# Passes and skips from the top-level TAP lines (subtests are indented);
	# failures from prove's verdict per file, which also counts planned tests
	# that never ran, and a script that died after passing everything.
	read -r ok bad skip < <(awk '
		/^ok [0-9]/ { if (tolower($0) ~ /# skip/) s++; else p++; next }
		/^not ok [0-9]/ { if ($0 ~ /# TODO/) s++; next }
		/\.\. skipped:/ { s++; next }
		/^Failed [0-9]+\/[0-9]+ subtests/ { split($2, n, "/"); f += n[1]; next }
		/^All [0-9]+ subtests passed/ || /^No subtests run/ { f++ }
		END { print p + 0, f + 0, s + 0 }' "$work/tap.log")
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "TAP: prove did not run to the end (exit $rc)"
		bad=1
	fi
	if [ "$bad" -gt 0 ]; then
		grep -oE '^\S+\.pl +\(Wstat: [1-9]' "$work/tap.log" | cut -d' ' -f1 | while read -r t; do
			t=$work/tap/tmp_check/log/regress_log_$(basename "$t" .pl)
			[ -f "$t" ] || continue
			echo "== TAP: end of $t"
			tail -n 60 "$t"
		done
	fi
	add TAP "$ok" "$bad" "$skip"
fi

# libFuzzer over the shim's request parsing and routing: first every seed
# of shim/fuzz/corpus once, then a short fuzzing run from a copy of it
# (libFuzzer adds what it finds to its corpus folder; the repository's stays
# as it is).  FUZZ_SECONDS sets the run's length.
fuzz=$root/shim/fuzz/fuzz-request
echo "== fuzz"
mkdir -p "$work/fuzz/corpus"
if [ ! -x "$fuzz" ]; then
	echo "fuzz: $fuzz was not built (it needs clang with libFuzzer)"
	add fuzz 0 1 0
else
	ok=0 bad=0
	cp "$root"/shim/fuzz/corpus/* "$work/fuzz/corpus/"
	if (cd "$work/fuzz" && "$fuzz" "$root"/shim/fuzz/corpus/* >"$work/fuzz/replay.log" 2>&1); then
		ok=$((ok + 1))
		echo "fuzz: $(ls "$root"/shim/fuzz/corpus | wc -l) seeds replay cleanly"
	else
		bad=$((bad + 1))
		echo "fuzz: a seed fails; the end of $work/fuzz/replay.log:"
		tail -n 40 "$work/fuzz/replay.log"
	fi
	seed=$(( (RANDOM << 15) | RANDOM ))
	if (cd "$work/fuzz" && "$fuzz" -seed="$seed" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 \
		-rss_limit_mb=2048 corpus >"$work/fuzz/run.log" 2>&1); then
		ok=$((ok + 1))
		echo "fuzz: $(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/fuzz/run.log") runs (seed $seed) found nothing"
	else
		bad=$((bad + 1))
		echo "fuzz: a failure (seed $seed); the end of $work/fuzz/run.log (the input is in $work/fuzz):"
		tail -n 60 "$work/fuzz/run.log"
	fi
	add fuzz "$ok" "$bad" 0
fi

cd "$root" || exit 1
if [ "$failed" -eq 0 ]; then
	rm -rf "$work"
else
	echo "test: kept $work (logs, diffs, clusters) for inspection"
fi
summary
[ "$failed" -eq 0 ]
