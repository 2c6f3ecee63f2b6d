#!/bin/sh
# Build the fuzz targets with clang's libFuzzer and run each for a bounded
# time (make fuzz; FUZZ_TIME=seconds, FUZZ_TARGETS=names).  Crashes are
# left in tests/fuzz/regressions/<target>/ to be kept as regression tests;
# new interesting inputs grow the corpus under the build folder only.
#
# usage: run.sh SRCDIR BUILDDIR SECONDS TARGET...
# Environment: FUZZ_CC (clang), CPPFLAGS and LIBS as the Makefile passes.
set -eu
srcdir=$1 builddir=$2 seconds=$3
shift 3
cc=${FUZZ_CC:-clang}
out=$builddir/tests/fuzz/build
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"

command -v "$cc" >/dev/null 2>&1 || {
	echo "fuzz: $cc not found (Debian package clang)"; exit 1; }
mkdir -p "$out/obj"

# The libraries, instrumented: every module but the programs' main()s.
objs=
gen=
[ -f "$srcdir/src/llmgw/openapi_doc.c" ] || gen=$builddir/src/llmgw/openapi_doc.c
for c in "$srcdir"/src/core/*.c "$srcdir"/src/store/*.c \
    "$srcdir"/src/llmgw/*.c "$srcdir"/src/spoold/*.c $gen; do
	case $(basename "$c") in
	llmgw.c|spoold.c) continue ;;
	esac
	dir=$(basename "$(dirname "$c")")
	o=$out/obj/$dir-$(basename "$c" .c).o
	if [ ! -f "$o" ] || [ "$c" -nt "$o" ]; then
		# shellcheck disable=SC2086
		$cc $flags -fsanitize=fuzzer-no-link -I"$builddir" $CPPFLAGS \
		    -c "$c" -o "$o"
	fi
	objs="$objs $o"
done

status=0
for t in "$@"; do
	corpus=$out/corpus-$t
	regress=$srcdir/tests/fuzz/regressions/$t
	mkdir -p "$corpus" "$regress"
	# shellcheck disable=SC2086
	$cc $flags -fsanitize=fuzzer -I"$builddir" -I"$srcdir/tests/fuzz" \
	    $CPPFLAGS "$srcdir/tests/fuzz/fuzz_$t.c" $objs $LIBS \
	    -o "$out/fuzz_$t"
	dict=
	[ ! -f "$srcdir/tests/fuzz/$t.dict" ] ||
		dict="-dict=$srcdir/tests/fuzz/$t.dict"
	# A target's own options (a memory limit, say), one line.
	opts=
	[ ! -f "$srcdir/tests/fuzz/$t.opts" ] ||
		opts=$(cat "$srcdir/tests/fuzz/$t.opts")
	echo "== fuzz_$t for ${seconds}s"
	# New inputs go to the build folder's corpus; the seeds are read only.
	# shellcheck disable=SC2086
	if "$out/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix="$regress/" $dict $opts \
	    "$corpus" "$srcdir/tests/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		    "$out/fuzz_$t.log")
		cov=$(grep -o 'cov: [0-9]*' "$out/fuzz_$t.log" | tail -1)
		echo "fuzz_$t: ok, $runs runs in ${seconds}s, $cov"
	else
		echo "fuzz_$t: FAILED: see $out/fuzz_$t.log; the input is in $regress/"
		tail -40 "$out/fuzz_$t.log"
		status=1
	fi
done
exit $status
