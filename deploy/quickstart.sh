#!/bin/sh
# Set up and run llmgw on this machine with its embedded defaults:
# lighttpd on http://127.0.0.1:8080 spawning llmgw, the API under /api/v1,
# database and spool under ./var.  With ANTHROPIC_API_KEY set it talks to
# the real Anthropic API; without, to the project's stub, whose replies are
# canned.  Stop it with Ctrl-C.
#
# usage: deploy/quickstart.sh [PORT]
# The state folder is ./var unless LLMGW_VAR names another; LLMGW names an
# llmgw binary to use instead of building src/llmgw/llmgw.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
port=${1:-8080}
var=${LLMGW_VAR:-$top/var}
bin=${LLMGW:-$top/src/llmgw/llmgw}

need="lighttpd sqlite3 node autoreconf pkg-config cc make"
missing=
for cmd in $need; do
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
done
if [ -n "$missing" ] || ! pkg-config --exists libcurl sqlite3 libcjson fcgi; then
	echo "quickstart: installing Debian packages (missing:$missing)"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -q
	$sudo apt-get install -y -q build-essential autoconf automake libtool \
	    pkg-config libfcgi-dev libcurl4-openssl-dev libcjson-dev \
	    libsqlite3-dev sqlite3 lighttpd nodejs
fi

if [ ! -x "$bin" ]; then
	[ -x configure ] || autoreconf -fi
	[ -f Makefile ] || ./configure -q
	make -s -j"$(nproc 2>/dev/null || echo 2)"
fi

mkdir -p "$var/run" "$var/spool" "$var/www"
[ -s "$var/api-token" ] || (
	umask 077
	od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$var/api-token"
)
token=$(cat "$var/api-token")
[ -f deploy/www/index.html ] && docroot=$top/deploy/www || docroot=$var/www

stub_pid=
cleanup() { [ -z "$stub_pid" ] || kill "$stub_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
	upstream=${ANTHROPIC_BASE_URL:-https://api.anthropic.com}
	key=$ANTHROPIC_API_KEY
else
	node tests/stub/upstream.js 0 > "$var/run/stub.port" &
	stub_pid=$!
	i=0
	until grep -q listening "$var/run/stub.port" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "quickstart: stub did not start"; exit 1; }
		sleep 0.1
	done
	upstream=http://127.0.0.1:$(awk '{print $2}' "$var/run/stub.port")
	key=stub-key
	cat <<BANNER
************************************************************************
*  ANTHROPIC_API_KEY is not set: llmgw talks to the project's STUB     *
*  upstream ($upstream).  REPLIES ARE CANNED ("tok0 tok1 ...").
*  Set ANTHROPIC_API_KEY and run this again for real answers.          *
************************************************************************
BANNER
fi

# The llmgw part: deploy/lighttpd/llmgw-spawn.conf, with this folder's
# paths and llmgw's settings in its environment.
: > "$var/llmgw.conf"	# empty: the embedded defaults
env_pairs="\"LLMGW_CONFIG\" => \"$var/llmgw.conf\", \"LLMGW_DB\" => \"$var/llmgw.db\",
		\"LLMGW_SPOOL_DIR\" => \"$var/spool\", \"LLMGW_API_TOKEN\" => \"$token\",
		\"ANTHROPIC_BASE_URL\" => \"$upstream\", \"ANTHROPIC_API_KEY\" => \"$key\""
# llmgw refuses root unless told; this is a local trial on 127.0.0.1.
if [ "$(id -u)" -eq 0 ]; then
	echo "quickstart: running as root, so llmgw is told allow_root=yes;" \
	    "in production run it as its own user"
	env_pairs="$env_pairs, \"LLMGW_ALLOW_ROOT\" => \"yes\""
fi
awk -v bin="$bin" -v sock="$var/run/llmgw.sock" -v envs="$env_pairs" '{
	gsub(/\/usr\/local\/sbin\/llmgw/, bin);
	gsub(/\/run\/lighttpd\/llmgw.sock/, sock);
	if ($0 ~ /"bin-environment"/) { print "    \"bin-environment\" => ( " envs " ),"; next }
	print }' deploy/lighttpd/llmgw-spawn.conf > "$var/run/llmgw.conf"
awk -v port="$port" -v root="$docroot" -v run="$var/run" '{
	gsub(/@PORT@/, port); gsub(/@BIND@/, "127.0.0.1");
	gsub(/@DOCROOT@/, root); gsub(/@RUNDIR@/, run);
	print }' deploy/lighttpd/lighttpd.conf.in > "$var/lighttpd.conf"
chmod 600 "$var/lighttpd.conf" "$var/run/llmgw.conf"

cat <<EOF2

llmgw is up behind lighttpd on http://127.0.0.1:$port/ (API under /api/v1).
Token: $token   (in $var/api-token)

  curl -N http://127.0.0.1:$port/api/v1/chat/stream \\
    -H "Authorization: Bearer \$(cat $var/api-token)" \\
    -H 'Content-Type: application/json' -d '{"message": "Hello"}'

Docs: http://127.0.0.1:$port/api/v1/docs   Usage: sqlite3 $var/llmgw.db 'SELECT * FROM usage'
Logs: $var/run/lighttpd.log and this terminal.  Ctrl-C stops it.

EOF2
lighttpd -D -f "$var/lighttpd.conf"
