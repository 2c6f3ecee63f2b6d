#!/bin/sh
# Run every test of llmgw on a machine that may be brand new: install the
# Debian packages it needs, build with ASan and UBSan, run "make check"
# (unit tests and integration tests against real servers), check the
# release tarball (tests/dist.sh), run each fuzz target for 60 s, run the
# threaded tests again under ThreadSanitizer and the suite again under
# valgrind memcheck, and print
# one last line "N passed, N failed" counting every test point of all.
#
# usage: tests/run-all.sh        (as root, or with sudo available)
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
export DEBIAN_FRONTEND=noninteractive

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
packages="build-essential autoconf automake libtool pkg-config
    libfcgi-dev libfcgi-bin libcurl4-openssl-dev libcjson-dev libsqlite3-dev
    sqlite3 lighttpd nodejs mandoc systemd spawn-fcgi logrotate
    apache2 libapache2-mod-fcgid nginx chromium clang valgrind wrk
    python3-fastapi python3-uvicorn python3-httpx debhelper lintian
    libpq-dev"
echo "== installing packages"
$sudo apt-get update -q >/dev/null || echo "apt-get update failed; trying anyway"
# shellcheck disable=SC2086
$sudo apt-get install -y -q $packages >/dev/null || {
	echo "apt-get install failed"; exit 1; }
# The server the PostgreSQL tests start themselves (initdb, pg_ctl): its
# package's own cluster may fail to start where there is no init; the
# tests then still find the programs, or say they were skipped.
$sudo apt-get install -y -q postgresql >/dev/null ||
	echo "apt-get install postgresql failed: the PostgreSQL tests will say they were skipped"

echo "== installing the tests' npm packages, as pinned in tests/package-lock.json (the SDKs, the OpenAPI tools, playwright-core)"
(cd tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
	echo "npm ci failed: the tests that need those packages will say they were skipped"

echo "== building with sanitizers"
autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; exit 1; }
./configure --enable-sanitizers --enable-werror -q || {
	echo "configure failed"; exit 1; }
make -j2 >/dev/null || { make; echo "build failed"; exit 1; }

echo "== make check"
make -j2 check > check.out 2>&1
check_rc=$?
if [ $check_rc -ne 0 ] && [ ! -f test-suite.log ]; then
	tail -40 check.out	# it did not get as far as running tests
fi
grep -E '^(FAIL|ERROR|SKIP)' test-suite.log 2>/dev/null | head -50
grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' test-suite.log 2>/dev/null

echo "== the release tarball (tests/dist.sh)"
sh tests/dist.sh > dist.out 2>&1
dist_rc=$?
grep -vE '^ok ' dist.out | tail -40
dist_passed=$(grep -c '^ok ' dist.out)
dist_failed=$(grep -c '^not ok ' dist.out)
[ $dist_rc -eq 0 ] || [ "$dist_failed" -gt 0 ] || dist_failed=1

# The Debian package, built, checked with lintian, installed, run behind
# Apache, purged (as root only: it installs into this system).
echo "== the Debian package (make deb, tests/package.js)"
pkg_passed=0 pkg_failed=0 pkg_skipped=0
if [ "$(id -u)" -ne 0 ]; then
	echo "not root: the package is not installed here"
	pkg_skipped=1
elif make deb > deb.out 2>&1; then
	node tests/package.js llmgw_*.deb > package.out 2>&1
	pkg_rc=$?
	grep -vE '^ok ' package.out | tail -40
	pkg_passed=$(grep -c '^ok ' package.out)
	pkg_failed=$(grep -c '^not ok ' package.out)
	[ $pkg_rc -eq 0 ] || [ "$pkg_failed" -gt 0 ] || pkg_failed=1
else
	tail -30 deb.out
	echo "make deb failed"
	pkg_failed=1
fi

echo "== fuzzing each target for 60 s (make fuzz)"
make fuzz FUZZ_TIME=60 > fuzz.out 2>&1
grep -E '^fuzz_' fuzz.out || tail -20 fuzz.out
fuzz_passed=$(grep -c '^fuzz_.*: ok' fuzz.out)
fuzz_targets=$(sed -n 's/^FUZZ_TARGETS = //p' Makefile.am | wc -w)
fuzz_failed=$((fuzz_targets - fuzz_passed))

echo "== gcc -fanalyzer over every source file (make analyze)"
make analyze > analyze.out 2>&1
analyze_rc=$?
grep -E 'warning|error' analyze.out | head -20
if [ $analyze_rc -eq 0 ]; then
	echo "analyzer: no finding"
else
	echo "analyzer: findings above"
fi

# Count every test point of every test file (automake's summary counts
# files that crashed as one ERROR; here a crash counts as a failure).
passed=0 failed=0 skipped=0
count_results() {
	for trs in $(find tests -name '*.trs'); do
		p=$(grep -c '^:test-result: PASS' "$trs")
		f=$(grep -cE '^:test-result: (FAIL|ERROR|XPASS)' "$trs")
		s=$(grep -c '^:test-result: SKIP' "$trs")
		passed=$((passed + p)); failed=$((failed + f))
		skipped=$((skipped + s))
	done
}
count_results
[ $check_rc -eq 0 ] || [ $failed -gt 0 ] || failed=$((failed + 1))
skipped=$((skipped + pkg_skipped))
passed=$((passed + fuzz_passed + dist_passed + pkg_passed + (analyze_rc == 0)))
failed=$((failed + fuzz_failed + dist_failed + pkg_failed + (analyze_rc != 0)))

# The tests that work llmgw's threads hardest (the worker pool, the
# upstream loop and its wake-ups, group commit, the usage writer) again,
# built with ThreadSanitizer.  A kernel whose address layout TSan cannot
# use gets the tests run without address randomisation; if even that
# fails, the pass is skipped, and says so.
echo "== the threaded tests again under ThreadSanitizer"
tsan_tests="tests/unit/llmgw/test_usage tests/unit/store/test_spool
    tests/unit/core/test_batch tests/unit/store/test_dbpool
    tests/integration/pool.js tests/integration/chat.js
    tests/integration/stream.js tests/integration/ops.js
    tests/integration/faults.js tests/integration/deploy_nginx.js
    tests/integration/hostile.js tests/integration/spool.js"
tsan_flags="-g -O1 -fsanitize=thread"
tsan_run=
printf 'int main(void){return 0;}\n' > tsan-probe.c
if ! cc $tsan_flags -o tsan-probe tsan-probe.c 2>/dev/null; then
	tsan_run=none
elif ! ./tsan-probe 2>/dev/null; then
	tsan_run="setarch $(uname -m) -R"
	$tsan_run ./tsan-probe 2>/dev/null || tsan_run=none
fi
rm -f tsan-probe tsan-probe.c
if [ "$tsan_run" = none ]; then
	echo "ThreadSanitizer does not run here: pass skipped"
	skipped=$((skipped + 1))
elif ./configure --enable-werror -q CFLAGS="$tsan_flags" \
    LDFLAGS="-fsanitize=thread" && make clean >/dev/null &&
    make -j2 >/dev/null; then
	# shellcheck disable=SC2086
	LLMGW_SLOW=2 $tsan_run make -j2 check TESTS="$tsan_tests" \
	    > check-tsan.out 2>&1
	ts_rc=$?
	grep -E '^(FAIL|ERROR)' test-suite.log 2>/dev/null | head -50
	grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' test-suite.log 2>/dev/null
	count_results
	[ $ts_rc -eq 0 ] || failed=$((failed + 1))
else
	echo "the ThreadSanitizer build failed"
	failed=$((failed + 1))
fi

# The same suite again, built without sanitizers, with every C program
# (unit tests, llmgw, llmgw-spoold, llmgw-admin) under valgrind memcheck,
# with the options of tests/valgrind.sh.
echo "== the suite again under valgrind memcheck"
vg="sh $top/tests/valgrind.sh"
rm -rf tests/valgrind-logs tests/valgrind-bin
if ./configure --enable-werror -q && make clean >/dev/null &&
    make -j2 >/dev/null; then
	LLMGW_VALGRIND=1 make -j2 check LOG_COMPILER="$vg" > check-valgrind.out 2>&1
	vg_rc=$?
	grep -E '^(FAIL|ERROR)' test-suite.log 2>/dev/null | head -50
	grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' test-suite.log 2>/dev/null
	count_results
	[ $vg_rc -eq 0 ] || failed=$((failed + 1))
	# One point per llmgw, llmgw-spoold or llmgw-admin process: valgrind
	# wrote a log only if it found an error or a leak.
	logs=$(find tests/valgrind-logs -type f 2>/dev/null | wc -l)
	bad=$(find tests/valgrind-logs -type f -size +0 2>/dev/null)
	for f in $bad; do echo "== $f"; head -60 "$f"; done
	nbad=$(echo "$bad" | grep -c . || true)
	echo "valgrind: $logs processes, $nbad with errors or leaks"
	passed=$((passed + logs - nbad)); failed=$((failed + nbad))
else
	echo "the build without sanitizers failed"
	failed=$((failed + 1))
fi

# The benchmark, briefly, so that it cannot rot (bench/run.sh --smoke).
echo "== benchmark smoke run"
sh bench/run.sh --smoke > bench.out 2>&1
bench_rc=$?
grep -vE '^(ok|not ok|1\.\.)' bench.out | tail -40
b_ok=$(grep -c '^ok ' bench.out)
b_bad=$(grep -c '^not ok ' bench.out)
[ $bench_rc -eq 0 ] || [ "$b_bad" -gt 0 ] || b_bad=1
passed=$((passed + b_ok)); failed=$((failed + b_bad))

echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
