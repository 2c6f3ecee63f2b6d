#!/bin/sh
# The release tarball: "make distcheck" passes (with the unit tests only
# inside it: tests/run-all.sh runs the whole suite itself), and configure,
# run from the tarball with a dependency missing, stops and names the
# Debian package to install.  Prints TAP.
#
# usage: tests/dist.sh      (from a configured build tree)
set -u
n=0 bad=0
point() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi
}

units=$(ls tests/unit/*/test_*.c | sed 's/\.c$//' | tr '\n' ' ')
make distcheck TESTS="$units" > distcheck.out 2>&1
rc=$?
[ $rc -eq 0 ] || tail -30 distcheck.out
point $rc "make distcheck (unit tests inside)"

tarball=$(ls llmgw-*.tar.gz 2>/dev/null | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$tarball" ] && tar -xzf "$tarball" -C "$tmp"; then
	src=$(echo "$tmp"/llmgw-*)
	# No .pc file to be found: libcurl is the first it looks for.
	out=$(cd "$src" && PKG_CONFIG_LIBDIR=/nonexistent ./configure 2>&1)
	rc=$?
	echo "$out" | grep -q 'install the Debian package libcurl4-openssl-dev'
	point $(( rc == 0 || $? != 0 )) "no libcurl: configure stops, naming libcurl4-openssl-dev"
	# No fastcgi.h (the cache variable stands in for the missing header).
	out=$(cd "$src" && ac_cv_header_fastcgi_h=no ./configure 2>&1)
	rc=$?
	echo "$out" | grep -q 'install the Debian package libfcgi-dev'
	point $(( rc == 0 || $? != 0 )) "no fastcgi.h: configure stops, naming libfcgi-dev"
else
	point 1 "no libcurl: configure stops (no tarball to try it on)"
	point 1 "no fastcgi.h: configure stops (no tarball to try it on)"
fi
echo "1..$n"
exit $bad
