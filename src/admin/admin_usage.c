/*
 * llmgw-admin usage: requests, errors, tokens, latency and time to first
 * token from the usage table, grouped by key, model, day or route; with
 * --log, from the request log (sink_database), which on PostgreSQL holds
 * every host's.
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
#include "store/pg.h"
#include "admin.h"

static int	usage_report(struct admin *, int, char *[]);

const struct admin_cmd admin_usage_cmds[] = {
	{ "usage", "", "[--since T] [--until T] [--key NAME] "
	    "[--by key|model|day|route] [--format table|csv|json] [--log]",
	    "Requests, errors, tokens, p50/p95 latency and time to first "
	    "token; with --log, of every host writing the request log.",
	    usage_report },
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

/* One request, from whichever table. */
struct usage_row {
	const char	*name;		/* its group */
	int		 status;
	long		 input, output;
	long		 total_ms;
	long		 ttft_ms;	/* -1: no first token */
};

static int
add_row(struct group *g, const struct usage_row *row)
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
	if (row->status >= 400)
		g->errors++;
	g->input += row->input;
	g->output += row->output;
	g->total[g->ntotal++] = row->total_ms;
	if (row->ttft_ms >= 0)
		g->ttft[g->nttft++] = row->ttft_ms;
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
	int		 by_kind;	/* ... as enum pg_group */
	char		 by_name[16];	/* its header, "KEY" */
	int		 format;	/* enum table_format */
	int		 log;		/* from the request log of every host
					 * that writes it (sink_database) */
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
			r->by_kind = (int)i;	/* bys[] is in enum pg_group's
						 * order */
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
		{ "log",	no_argument,		NULL, 'l' },
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
		case 'l':
			r->log = 1;
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
			    "reached the upstream count.\n--log reads the "
			    "request log of sink_database: on PostgreSQL, "
			    "every host's, keys by id.\n", c->help);
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

/* The rows of a report, added up as they come, in order of their group:
 * a table row per group (and a total for the text format). */
struct totals {
	const struct report	*r;
	struct table		*t;
	struct group		 g, all;
};

/* Add "row": 0, or -1 out of memory. */
static int
totals_add(void *arg, const struct usage_row *row)
{
	struct totals	*tt = arg;
	const char	*name = row->name != NULL ? row->name : "-";

	if (tt->g.requests > 0 && strcmp(tt->g.name, name) != 0 &&
	    emit(tt->t, &tt->g) == -1)
		return -1;
	if (tt->g.requests == 0 || strcmp(tt->g.name, name) != 0)
		group_reset(&tt->g, name);
	return add_row(&tt->g, row) == -1 || add_row(&tt->all, row) == -1 ?
	    -1 : 0;
}

/* The last group, and the total: 0, or -1 out of memory. */
static int
totals_end(struct totals *tt)
{
	return (tt->g.requests > 0 && emit(tt->t, &tt->g) == -1) ||
	    (tt->r->format == TABLE_TEXT && tt->all.requests > 0 &&
	    emit(tt->t, &tt->all) == -1) ? -1 : 0;
}

static void
totals_free(struct totals *tt)
{
	free(tt->g.total);
	free(tt->g.ttft);
	free(tt->all.total);
	free(tt->all.ttft);
}

/* The rows of prepared statement "st" into "tt": 0, -1 out of memory, or
 * the SQLite code of a failed step. */
static int
sqlite_rows(sqlite3_stmt *st, struct totals *tt)
{
	struct usage_row	 row;
	int			 step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row.name = (const char *)sqlite3_column_text(st, 0);
		row.status = sqlite3_column_int(st, 1);
		row.input = (long)sqlite3_column_int64(st, 2);
		row.output = (long)sqlite3_column_int64(st, 3);
		row.total_ms = (long)sqlite3_column_int64(st, 4);
		row.ttft_ms = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 :
		    (long)sqlite3_column_int64(st, 5);
		if (totals_add(tt, &row) == -1)
			return -1;
	}
	return step == SQLITE_DONE ? 0 : step;
}

/* The report from a SQLite table, "usage" or "request_log", of "path":
 * an ADMIN_ status. */
static int
sqlite_report(const char *path, const char *table, struct totals *tt)
{
	const struct report	*r = tt->r;
	struct err		 err;
	sqlite3			*db;
	sqlite3_stmt		*st = NULL;
	char			 sql[1024];
	int			 rc = ADMIN_FAIL;

	snprintf(sql, sizeof(sql), "SELECT %s, u.status, u.input_tokens,"
	    " u.output_tokens, u.total_ms, u.ttft_ms FROM %s u"
	    " LEFT JOIN keys k ON k.id = u.key_id"
	    " WHERE u.ts >= ?1 AND u.ts < ?2%s %s ORDER BY 1", r->by, table,
	    strcmp(table, "request_log") == 0 ? " AND u.upstream" : "",
	    r->key != NULL ? "AND (k.name = ?3 OR u.key_id = ?3)" : "");
	if ((db = db_open_existing(path, 1, &err)) == NULL)
		return admin_fail("%s", err.msg);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		admin_fail("database %s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, r->since);
	sqlite3_bind_int64(st, 2, r->until);
	if (r->key != NULL)
		sqlite3_bind_text(st, 3, r->key, -1, SQLITE_STATIC);
	switch (sqlite_rows(st, tt)) {
	case 0:
		rc = ADMIN_OK;
		break;
	case -1:
		admin_fail("out of memory");
		break;
	default:
		admin_fail("database %s: %s", path, sqlite3_errmsg(db));
		break;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int
pg_row(void *arg, const struct pg_log_row *p)
{
	struct usage_row	 row = { p->group, p->status, p->input_tokens,
				    p->output_tokens, p->total_ms, p->ttft_ms };

	return totals_add(arg, &row);
}

/* The report from PostgreSQL's rows "from": an ADMIN_ status. */
static int
pg_report(const char *uri, enum pg_rows from, struct totals *tt)
{
	struct err	 err;
	struct pg	*p;
	int		 rc;

	if ((p = pg_open(uri, "llmgw-admin", 0, &err)) == NULL)
		return admin_fail("%s", err.msg);
	rc = pg_log_report(p, from, (enum pg_group)tt->r->by_kind,
	    tt->r->since, tt->r->until, tt->r->key, pg_row, tt, &err) == 0 ?
	    ADMIN_OK :
	    admin_fail("%s", err.msg);
	pg_close(p);
	return rc;
}

static int
usage_report(struct admin *a, int argc, char *argv[])
{
	struct report	 r;
	const char	*header[9] = { NULL, "REQUESTS", "ERRORS",
	    "INPUT_TOKENS", "OUTPUT_TOKENS", "P50_MS", "P95_MS",
	    "P50_TTFT_MS", "P95_TTFT_MS" };
	const char	*log;
	struct totals	 tt;
	int		 rc;

	if ((rc = report_options(&r, argc, argv)) != -1)
		return rc;
	header[0] = r.by_name;
	memset(&tt, 0, sizeof(tt));
	tt.r = &r;
	group_reset(&tt.all, "total");
	if ((tt.t = table_new(9, header)) == NULL)
		return admin_fail("out of memory");
	log = a->conf->sink_database != NULL ? a->conf->sink_database :
	    a->conf->database;
	if (!r.log && pg_is_uri(a->conf->database))
		rc = pg_report(a->conf->database, PG_USAGE, &tt);
	else if (!r.log)
		rc = sqlite_report(a->conf->database, "usage", &tt);
	else if (pg_is_uri(log))
		rc = pg_report(log, PG_REQUEST_LOG, &tt);
	else
		rc = sqlite_report(log, "request_log", &tt);
	if (rc == ADMIN_OK && (totals_end(&tt) == -1 ||
	    table_print(tt.t, (enum table_format)r.format, stdout) == -1))
		rc = admin_fail("out of memory");
	totals_free(&tt);
	table_free(tt.t);
	return rc;
}
