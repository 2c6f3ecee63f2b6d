#!/bin/sh
# mandoc -Tlint on every man page: quiet at warning level.  TAP.
builddir=${LLMGW_BUILDDIR:-.}
if ! command -v mandoc >/dev/null 2>&1; then
	echo "1..0 # SKIP mandoc is not installed (Debian package mandoc)"
	exit 0
fi
n=0
fail=0
for page in llmgw.8 llmgw-spoold.8 llmgw-admin.8 llmgw.conf.5; do
	n=$((n + 1))
	out=$(mandoc -Tlint -W warning "$builddir/man/$page" 2>&1)
	if [ -z "$out" ]; then
		echo "ok $n - mandoc -Tlint $page"
	else
		echo "not ok $n - mandoc -Tlint $page"
		echo "$out" | sed 's/^/#   /'
		fail=1
	fi
done
echo "1..$n"
exit $fail
