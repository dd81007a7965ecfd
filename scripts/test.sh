#!/usr/bin/env bash
# make test: every suite against the installed extension, as the postgres
# user, in a scratch folder under /tmp (kept when something fails).  The last
# line sums all suites: "N passed, N failed" (", N skipped" when some were).
#   pg_regress  test/sql, test/expected              (a temporary instance)
#   isolation   test/isolation/specs, .../expected    (when there are specs)
#   TAP         test/t/*.pl, PostgreSQL::Test::Cluster through prove
#   any-folder  make test and make run from a project postgres cannot read
#   fuzz        the shim's request parsing and routing under libFuzzer
# With arguments (test/sql/NAME.sql, test/isolation/specs/NAME.spec,
# test/t/NAME.pl), only those tests run, and neither any-folder nor fuzz.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
. "$root/scripts/common.sh"

only=()
for arg in "$@"; do
	case $arg in
	*.sql) dir=test/sql ;;
	*.spec) dir=test/isolation/specs ;;
	*.pl) dir=test/t ;;
	*) dir= ;;
	esac
	if [ -z "$dir" ] || [ ! -f "$root/$dir/$(basename "$arg")" ]; then
		echo "test: $arg: not one of test/sql/*.sql, test/isolation/specs/*.spec, test/t/*.pl" >&2
		exit 2
	fi
	only+=("$(basename "$arg")")
done

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

# The suites run as the postgres user, which may not be able to read the
# project (a clone under /root, mode 700): they get copies, in the scratch
# folder, of all they read or run.  The tests in test/; the source tree with
# its built shim (and the library the shim loads from beside itself) in src/,
# which the TAP tests know as JAM_SRC_DIR; the public test vectors that sit
# next to the project in vectors/.
copy_tree() {
	mkdir -p "$2"
	tar -C "$1" --exclude=./.git --exclude=./.run --exclude=tmp_check --exclude=./results \
		--exclude='*.o' --exclude='*.bc' --exclude=./jam.so --exclude=./shim/fuzz/fuzz-request \
		"${@:3}" -cf - . | tar -C "$2" -xf -
}
work=$(mktemp -d --suffix=.jam-test)
chmod 755 "$work"
cp -r "$root/test" "$work/test"
copy_tree "$root" "$work/src" --exclude=./test
ln -s ../test "$work/src/test"
vectors=
if [ -d "$root/../shared/vectors" ]; then
	cp -rL "$root/../shared/vectors" "$work/vectors" && vectors=$work/vectors
fi
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
# With arguments, only the tests they name.
names() {
	(cd "$1" 2>/dev/null && ls -- *"$2" 2>/dev/null) | sed "s/$2\$//" | LC_ALL=C sort |
		if [ ${#only[@]} -eq 0 ]; then cat; else grep -Fxf <(printf '%s\n' "${only[@]}" | sed -n "s/$2\$//p"); fi
}

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
	openapi_modules=$(npm_tools openapi)
	s3_modules=$(npm_tools s3)
	sse_modules=$(npm_tools sse)
	# The public test vectors sit next to the project; tests skip without them.
	[ -n "$vectors" ] || echo "TAP: no ../shared/vectors; the tests that need it skip"
	# PostgreSQL::Test::Utils puts its clusters and logs under $TESTDIR/tmp_check.
	# The screen shows prove's verdicts and the tests' diagnostics (stderr);
	# tap.log keeps every TAP line, for counting.
	mkdir -p "$work/tap"
	give_to_pg "$work/tap"
	as_pg env PATH="$bindir:$PATH" PG_REGRESS="$pgxs_dir/src/test/regress/pg_regress" \
		TESTDIR="$work/tap" TESTDATADIR="$work/tap/data" \
		JAM_VECTORS_DIR="$vectors" JAM_SRC_DIR="$work/src" JAM_PROJECT_DIR="$root" \
		JAM_OPENAPI_NODE_MODULES="$openapi_modules" JAM_S3_NODE_MODULES="$s3_modules" \
		JAM_SSE_NODE_MODULES="$sse_modules" \
		JAM_PROJECT_HIDDEN="${JAM_PROJECT_HIDDEN:-}" \
		prove -v --timer -I "$pgxs_dir/src/test/perl" -I test/perl "${tap[@]}" \
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

# make test and make run from any folder.  The suites above ran from copies;
# prove that neither make test nor make run needs the postgres user to read
# the project, with a copy of it in a folder only root may enter (as a clone
# under /root is): its scripts/test.sh runs test/t/070_any_folder.pl, which
# checks that the project is out of its reach; its make run must start the
# cluster and the shim, answer the psql and curl commands it prints, keep the
# cluster and the token on a second run, and its make stop stop both.  The
# copy's cluster is removed afterwards.  Only as root: for any other user the
# server's user is that user.  Bounded: a few seconds, at most a few minutes.
any_folder() {
	local hidden=$work/any-folder copy state out token pid ok=0 bad=0
	check() { # what, then a command that succeeds when it holds
		local what=$1
		shift
		if "$@"; then
			ok=$((ok + 1))
			echo "any-folder: ok: $what"
		else
			bad=$((bad + 1))
			echo "any-folder: FAILED: $what"
		fi
	}
	hidden_from_pg() { [ -f "$copy/Makefile" ] && ! as_pg test -r "$copy/Makefile"; }
	passed_all() { grep -qE '^[1-9][0-9]* passed, 0 failed(, [0-9]+ skipped)?$' <(tail -n 1 "$1"); }
	printed() { grep -m 1 "$1" <<<"$out" | sed 's/^  //'; }
	psql_works() { # the printed command, the statement the message shows it with on its input
		timeout 30 bash -c "$(printed '^  psql "')" <<<"SELECT jam_hash('\\x'::bytea);" 2>&1 |
			grep -q 0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8
	}
	curl_works() { # the printed command; only its status code is looked at
		local cmd
		cmd=$(printed "^  curl -s -H 'Authorization: Bearer .*/jam/status\$")
		[ -n "$cmd" ] && [ "$(timeout 30 bash -c "$cmd -o /dev/null -w %{http_code}")" = 200 ]
	}
	reused() {
		grep -q '^jam is running' <<<"$out" && ! grep -q 'creating a cluster' <<<"$out" &&
			[ -n "$token" ] && grep -qF "  $token" <<<"$out"
	}
	stopped() {
		grep -q 'stopped jam-shim' <<<"$out" && grep -q 'stopped the cluster' <<<"$out" &&
			! kill -0 "$pid" 2>/dev/null && ! as_pg "$bindir/pg_ctl" -D "$state/pgdata" status >/dev/null 2>&1
	}
	run_copy() { # scripts/NAME.sh of the copy, bounded, its output kept
		out=$(env -u JAM_RUN_DIR timeout 120 bash "$copy/scripts/$1.sh" 2>&1)
		printf '%s\n' "$out" >>"$work/any-folder-run.log"
	}

	mkdir -m 700 "$hidden"
	copy=$hidden/jam
	copy_tree "$root" "$copy"
	state=$(JAM_RUN_DIR='' run_state_dir "$(cd "$copy" && pwd -P)")
	check "the postgres user cannot read the copy of the project in $copy" hidden_from_pg

	env -u JAM_RUN_DIR JAM_PROJECT_HIDDEN=1 timeout 300 \
		bash "$copy/scripts/test.sh" test/t/070_any_folder.pl >"$work/any-folder.log" 2>&1
	check "make test there, with test/t/070_any_folder.pl: $(tail -n 1 "$work/any-folder.log")" \
		passed_all "$work/any-folder.log"

	run_copy run
	check "make run there starts jam, its cluster in $state" grep -q '^jam is running' <<<"$out"
	check "the psql command it prints works" psql_works
	check "the curl command it prints works" curl_works
	token=$(cat "$copy/.run/shim.token" 2>/dev/null)
	run_copy run
	check "a second make run keeps the cluster and the token" reused
	pid=$(cat "$copy/.run/shim.pid" 2>/dev/null)
	run_copy stop
	check "make stop stops both" stopped

	if [ "$bad" -gt 0 ]; then
		echo "== any-folder: $work/any-folder.log"
		cat "$work/any-folder.log"
		echo "== any-folder: $work/any-folder-run.log"
		cat "$work/any-folder-run.log"
	fi
	# Whatever happened, nothing of the copy's make run is left behind.
	run_copy stop
	case $state in */jam/jam-*) rm -rf "$state" ;; esac
	add any-folder "$ok" "$bad" 0
}
if [ ${#only[@]} -gt 0 ]; then
	: # only the tests named
elif [ "$(id -u)" != 0 ]; then
	echo "== any-folder: skipped (only as root: for any other user, the server's user is that user)"
	add any-folder 0 0 1
else
	echo "== any-folder"
	any_folder
fi

# libFuzzer over the shim's request parsing and routing: first every seed
# of shim/fuzz/corpus once, then a short fuzzing run from a copy of it
# (libFuzzer adds what it finds to its corpus folder; the repository's stays
# as it is).  FUZZ_SECONDS sets the run's length.
fuzz=$root/shim/fuzz/fuzz-request
if [ ${#only[@]} -gt 0 ]; then
	: # only the tests named
elif [ ! -x "$fuzz" ]; then
	echo "== fuzz"
	echo "fuzz: $fuzz was not built (it needs clang with libFuzzer)"
	add fuzz 0 1 0
else
	echo "== fuzz"
	mkdir -p "$work/fuzz/corpus"
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
