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

/* What the command line asks for. */
struct report {
	long long	 since, until;	/* Unix ms */
	const char	*key;		/* a key's name or id, or NULL */
	const char	*by;		/* the SQL of the group's column */
	char		 by_name[16];	/* its header, "KEY" */
	int		 format;	/* enum table_format */
};

static const char *const bys[][2] = {
	{ "key", "coalesce(k.name, u.key_id, '-')" },
	{ "model", "coalesce(u.model, '-')" },
	{ "day", "strftime('%Y-%m-%d', u.ts / 1000, 'unixepoch')" },
	{ "route", "u.route" },
};

/* The group column called "name", into "r": 0, or -1 if none is. */
static int
report_by(struct report *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(bys) / sizeof(bys[0]); i++)
		if (strcmp(name, bys[i][0]) == 0) {
			r->by = bys[i][1];
			for (i = 0; name[i] != '\0' && i < sizeof(r->by_name) -
			    1; i++)
				r->by_name[i] = (char)(name[i] - 'a' + 'A');
			r->by_name[i] = '\0';
			return 0;
		}
	return -1;
}

/* Read the options: -1 to go on, or the status to exit with. */
static int
report_options(struct report *r, int argc, char *argv[])
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
	const struct admin_cmd	*c = &admin_usage_cmds[0];
	int			 ch;

	memset(r, 0, sizeof(*r));
	r->format = TABLE_TEXT;
	(void)report_by(r, "key");
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'u':
			if (admin_parse_time(optarg, ch == 's' ? &r->since :
			    &r->until) == -1)
				return admin_usage_error(c, "--%s: \"%s\" is "
				    "not a time (2026-11-24, 2026-11-24T09:30Z "
				    "or 7d for a week ago)", ch == 's' ?
				    "since" : "until", optarg);
			break;
		case 'k':
			r->key = optarg;
			break;
		case 'b':
			if (report_by(r, optarg) == -1)
				return admin_usage_error(c, "--by: \"%s\" is "
				    "not key, model, day or route", optarg);
			break;
		case 'f':
			if ((r->format = table_format_parse(optarg)) == -1)
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
	if (r->until == 0)
		r->until = clock_wall_ms() + 1000;
	return -1;
}

/*
 * The usage rows "r" asks for, in order of their group, added up into a
 * table row per group (and a total for the text format).  "st" is
 * prepared; 0, -1 out of memory, or the SQLite code of a failed step.
 */
static int
report_rows(const struct report *r, sqlite3_stmt *st, struct table *t)
{
	struct group	 g, all;
	const char	*name;
	int		 step, rc = -1;

	memset(&g, 0, sizeof(g));
	memset(&all, 0, sizeof(all));
	group_reset(&all, "total");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if (name == NULL)
			name = "-";
		if (g.requests > 0 && strcmp(g.name, name) != 0 &&
		    emit(t, &g) == -1)
			goto out;
		if (g.requests == 0 || strcmp(g.name, name) != 0)
			group_reset(&g, name);
		if (add_row(&g, st) == -1 || add_row(&all, st) == -1)
			goto out;
	}
	if (step != SQLITE_DONE) {
		rc = step;
		goto out;
	}
	if ((g.requests > 0 && emit(t, &g) == -1) || (r->format ==
	    TABLE_TEXT && all.requests > 0 && emit(t, &all) == -1))
		goto out;
	rc = 0;
out:
	free(g.total);
	free(g.ttft);
	free(all.total);
	free(all.ttft);
	return rc;
}

static int
usage_report(struct admin *a, int argc, char *argv[])
{
	struct report	 r;
	const char	*header[9] = { NULL, "REQUESTS", "ERRORS",
	    "INPUT_TOKENS", "OUTPUT_TOKENS", "P50_MS", "P95_MS",
	    "P50_TTFT_MS", "P95_TTFT_MS" };
	struct table	*t = NULL;
	struct err	 err;
	sqlite3		*db;
	sqlite3_stmt	*st = NULL;
	char		 sql[1024];
	int		 rc;

	if ((rc = report_options(&r, argc, argv)) != -1)
		return rc;
	header[0] = r.by_name;
	snprintf(sql, sizeof(sql), "SELECT %s, u.status, u.input_tokens,"
	    " u.output_tokens, u.total_ms, u.ttft_ms FROM usage u"
	    " LEFT JOIN keys k ON k.id = u.key_id"
	    " WHERE u.ts >= ?1 AND u.ts < ?2 %s ORDER BY 1", r.by,
	    r.key != NULL ? "AND (k.name = ?3 OR u.key_id = ?3)" : "");
	if ((db = db_open_existing(a->conf->database, 1, &err)) == NULL)
		return admin_fail("%s", err.msg);
	rc = ADMIN_FAIL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		admin_fail("database %s: %s", a->conf->database,
		    sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, r.since);
	sqlite3_bind_int64(st, 2, r.until);
	if (r.key != NULL)
		sqlite3_bind_text(st, 3, r.key, -1, SQLITE_STATIC);
	if ((t = table_new(9, header)) == NULL) {
		admin_fail("out of memory");
		goto out;
	}
	switch (report_rows(&r, st, t)) {
	case 0:
		if (table_print(t, (enum table_format)r.format, stdout) == 0) {
			rc = ADMIN_OK;
			break;
		}
		/* FALLTHROUGH */
	case -1:
		admin_fail("out of memory");
		break;
	default:
		admin_fail("database %s: %s", a->conf->database,
		    sqlite3_errmsg(db));
		break;
	}
out:
	table_free(t);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
