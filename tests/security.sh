#!/bin/sh
# What the source must never do, checked by reading it (TAP):
# SQL only with bound parameters, and no secret handed to a log call.
src=${LLMGW_SRCDIR:-.}/src
n=0 bad=0
point() {
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=1; fi
}

# SQLite's own formatting is how SQL injection starts: not used at all.
if grep -n 'sqlite3_[v]*[ms]*printf' "$src"/*/*.c; then
	point fail "no sqlite3_mprintf/snprintf"
else
	point ok "no sqlite3_mprintf/snprintf"
fi

# SQL text built with a format: only these three, whose arguments are a
# compile-time number and columns and conditions chosen from fixed tables.
built=$(grep -ln 'snprintf(sql\|asprintf(&sql\|buf_addf(&sql' "$src"/*/*.c |
    xargs -n1 basename | sort | tr '\n' ' ')
if [ "$built" = "admin_usage.c db.c pg.c " ]; then
	point ok "SQL built by format only in admin_usage.c and pg.c (GROUP BY column from a table) and db.c (a version number)"
else
	point fail "SQL built by format in: $built"
fi

# Every value comes in through sqlite3_bind_*: no statement text holds
# a quote-delimited %s.
if grep -n "'%s'" "$src"/*/*.c | grep -iE 'select|insert|update|delete|where|values'; then
	point fail "no '%s' in SQL text"
else
	point ok "no '%s' in SQL text"
fi

# The secrets of llmgw.conf never reach a log call.
if grep -nE 'log_[a-z_]*\(.*(api_key|api_token|webhook_header|metrics_token)[^_" ]' "$src"/*/*.c |
    grep -v '"[^"]*\(api_key\|api_token\|webhook_header\|metrics_token\)[^"]*"'; then
	point fail "no secret passed to a log call"
else
	point ok "no secret passed to a log call"
fi

echo "1..$n"
exit $bad
