/*
 * llmgw-admin usage: requests, errors, tokens, latency and time to first
 * token from the usage table, grouped by key, model, day or route.
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/str.h"
#include "store/conf.h"
#include "store/db.h"
#include "admin.h"

static int	usage_report(struct admin *, int, char *[]);

const struct admin_cmd admin_usage_cmds[] = {
	{ "usage", "", "[--since T] [--until T] [--key NAME] "
	    "[--by key|model|day|route] [--format table|csv|json]",
	    "Requests, errors, tokens, p50/p95 latency and time to first "
	    "token.", usage_report },
	{ NULL, NULL, NULL, NULL, NULL }
};

/* What one group adds up to. */
struct group {
	char	 name[160];
	long	 requests;
	long	 errors;
	long	 input;
	long	 output;
	long	*total;		/* total_ms of each request */
	long	*ttft;		/* ttft_ms of those that had a first token */
	size_t	 ntotal, nttft, cap;
};

static int
cmp_long(const void *a, const void *b)
{
	long	 x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile "p" of "n" values, as text ("-" if none). */
static void
pct(long *v, size_t n, double p, char *out, size_t size)
{
	size_t	 i;

	if (n == 0) {
		snprintf(out, size, "-");
		return;
	}
	qsort(v, n, sizeof(*v), cmp_long);
	i = (size_t)ceil(p * (double)n);
	snprintf(out, size, "%ld", v[i > 0 ? i - 1 : 0]);
}

static int
emit(struct table *t, struct group *g)
{
	char		 c[8][32];
	const char	*cells[9];
	int		 i;

	snprintf(c[0], sizeof(c[0]), "%ld", g->requests);
	snprintf(c[1], sizeof(c[1]), "%ld", g->errors);
	snprintf(c[2], sizeof(c[2]), "%ld", g->input);
	snprintf(c[3], sizeof(c[3]), "%ld", g->output);
	pct(g->total, g->ntotal, 0.50, c[4], sizeof(c[4]));
	pct(g->total, g->ntotal, 0.95, c[5], sizeof(c[5]));
	pct(g->ttft, g->nttft, 0.50, c[6], sizeof(c[6]));
	pct(g->ttft, g->nttft, 0.95, c[7], sizeof(c[7]));
	cells[0] = g->name;
	for (i = 0; i < 8; i++)
		cells[i + 1] = c[i];
	return table_add(t, cells);
}

static int
add_row(struct group *g, sqlite3_stmt *st)
{
	long	*n;

	if (g->ntotal == g->cap) {
		g->cap = g->cap == 0 ? 64 : g->cap * 2;
		if ((n = realloc(g->total, g->cap * sizeof(*n))) == NULL)
			return -1;
		g->total = n;
		if ((n = realloc(g->ttft, g->cap * sizeof(*n))) == NULL)
			return -1;
		g->ttft = n;
	}
	g->requests++;
	if (sqlite3_column_int(st, 1) >= 400)
		g->errors++;
	g->input += (long)sqlite3_column_int64(st, 2);
	g->output += (long)sqlite3_column_int64(st, 3);
	g->total[g->ntotal++] = (long)sqlite3_column_int64(st, 4);
	if (sqlite3_column_type(st, 5) != SQLITE_NULL)
		g->ttft[g->nttft++] = (long)sqlite3_column_int64(st, 5);
	return 0;
}

static void
group_reset(struct group *g, const char *name)
{
	long	*total = g->total, *ttft = g->ttft;
	size_t	 cap = g->cap;

	memset(g, 0, sizeof(*g));
	g->total = total;
	g->ttft = ttft;
	g->cap = cap;
	str_copy(g->name, sizeof(g->name), name);
}

static int
usage_report(struct admin *a, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "since",	required_argument,	NULL, 's' },
		{ "until",	required_argument,	NULL, 'u' },
		{ "key",	required_argument,	NULL, 'k' },
		{ "by",		required_argument,	NULL, 'b' },
		{ "format",	required_argument,	NULL, 'f' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	static const char *const bys[][2] = {
		{ "key", "coalesce(k.name, u.key_id, '-')" },
		{ "model", "coalesce(u.model, '-')" },
		{ "day", "strftime('%Y-%m-%d', u.ts / 1000, 'unixepoch')" },
		{ "route", "u.route" },
	};
	const struct admin_cmd	*c = &admin_usage_cmds[0];
	const char		*by = NULL, *header[9] = { NULL, "REQUESTS",
	    "ERRORS", "INPUT_TOKENS", "OUTPUT_TOKENS", "P50_MS", "P95_MS",
	    "P50_TTFT_MS", "P95_TTFT_MS" }, *key = NULL, *name;
	struct group		 g, all;
	struct table		*t = NULL;
	struct err		 err;
	sqlite3			*db = NULL;
	sqlite3_stmt		*st = NULL;
	char			 sql[1024], upper[16];
	long long		 since = 0, until = 0;
	size_t			 i;
	int			 ch, format = TABLE_TEXT, rc = ADMIN_FAIL, step;

	memset(&g, 0, sizeof(g));
	memset(&all, 0, sizeof(all));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'u':
			if (admin_parse_time(optarg, ch == 's' ? &since :
			    &until) == -1)
				return admin_usage_error(c, "--%s: \"%s\" is "
				    "not a time (2026-11-24, 2026-11-24T09:30Z "
				    "or 7d for a week ago)", ch == 's' ?
				    "since" : "until", optarg);
			break;
		case 'k':
			key = optarg;
			break;
		case 'b':
			for (i = 0; i < 4; i++)
				if (strcmp(optarg, bys[i][0]) == 0)
					by = bys[i][1];
			if (by == NULL)
				return admin_usage_error(c, "--by: \"%s\" is "
				    "not key, model, day or route", optarg);
			header[0] = optarg;
			break;
		case 'f':
			if ((format = table_format_parse(optarg)) == -1)
				return admin_usage_error(c, "--format: \"%s\" "
				    "is not table, csv or json", optarg);
			break;
		case 'h':
			admin_usage(stdout, c);
			printf("%s\nT is a date (2026-11-24), a time "
			    "(2026-11-24T09:30Z) or a duration ago (7d, 12h).\n"
			    "Latencies are in milliseconds; only requests that "
			    "reached the upstream count.\n", c->help);
			return ADMIN_OK;
		default:
			admin_usage(stderr, c);
			return ADMIN_USAGE;
		}
	}
	if (optind < argc)
		return admin_usage_error(c, "unexpected argument \"%s\"",
		    argv[optind]);
	if (by == NULL) {
		by = bys[0][1];
		header[0] = "key";
	}
	if (until == 0)
		until = clock_wall_ms() + 1000;
	for (i = 0; header[0][i] != '\0' && i < sizeof(upper) - 1; i++)
		upper[i] = (char)(header[0][i] - 'a' + 'A');
	upper[i] = '\0';
	header[0] = upper;
	snprintf(sql, sizeof(sql), "SELECT %s, u.status, u.input_tokens,"
	    " u.output_tokens, u.total_ms, u.ttft_ms FROM usage u"
	    " LEFT JOIN keys k ON k.id = u.key_id"
	    " WHERE u.ts >= ?1 AND u.ts < ?2 %s ORDER BY 1", by,
	    key != NULL ? "AND (k.name = ?3 OR u.key_id = ?3)" : "");
	if ((db = db_open_existing(a->conf->database, 1, &err)) == NULL)
		return admin_fail("%s", err.msg);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		admin_fail("database %s: %s", a->conf->database,
		    sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	if (key != NULL)
		sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	if ((t = table_new(9, header)) == NULL)
		goto nomem;
	group_reset(&all, "total");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if (name == NULL)
			name = "-";
		if (g.requests > 0 && strcmp(g.name, name) != 0) {
			if (emit(t, &g) == -1)
				goto nomem;
		}
		if (g.requests == 0 || strcmp(g.name, name) != 0)
			group_reset(&g, name);
		if (add_row(&g, st) == -1 || add_row(&all, st) == -1)
			goto nomem;
	}
	if (step != SQLITE_DONE) {
		admin_fail("database %s: %s", a->conf->database,
		    sqlite3_errmsg(db));
		goto out;
	}
	if (g.requests > 0 && emit(t, &g) == -1)
		goto nomem;
	if (format == TABLE_TEXT && all.requests > 0 && emit(t, &all) == -1)
		goto nomem;
	table_print(t, (enum table_format)format, stdout);
	rc = ADMIN_OK;
	goto out;
nomem:
	admin_fail("out of memory");
out:
	free(g.total);
	free(g.ttft);
	free(all.total);
	free(all.ttft);
	table_free(t);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
