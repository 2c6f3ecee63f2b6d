#!/bin/sh
# The benchmark in one command: build llmgw without sanitizers if need be,
# then run bench/bench.js (see there).  Not part of CI except as a smoke
# run (--smoke).
#
# usage: bench/run.sh [--smoke] [--save] [--store | --chat]
set -eu
cd "$(dirname "$0")/.."
for cmd in wrk lighttpd nginx node; do
	command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || {
		echo "bench: $cmd is missing: apt-get install wrk lighttpd nginx nodejs" \
		    "python3-fastapi python3-uvicorn python3-httpx"; exit 1; }
done
# A sanitizer build is several times slower: measure a plain one.
if [ ! -x src/llmgw/llmgw ] || ldd src/llmgw/llmgw | grep -q libasan; then
	echo "bench: building llmgw without sanitizers"
	[ -x configure ] || autoreconf -fi
	./configure -q
	make -s clean
	make -s -j"$(nproc)"
fi
# The floor of the upstream side: libcurl alone (bench/curl_floor.c).
cc -O2 -o bench/curl_floor bench/curl_floor.c \
    $(pkg-config --cflags --libs libcurl) || {
	echo "bench: cannot build bench/curl_floor"; exit 1; }
# 5,000 streams hold 10,000 descriptors in llmgw and as many in the web
# server: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node bench/bench.js "$@"
