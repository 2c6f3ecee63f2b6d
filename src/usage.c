#include "config.h"

#include <time.h>

#include <sqlite3.h>

#include "dbpool.h"
#include "err.h"
#include "record.h"
#include "usage.h"

static const char insert_sql[] =
    "INSERT INTO usage (id, request_id, ts, route, model, status,"
    " input_tokens, output_tokens, cache_creation_input_tokens,"
    " cache_read_input_tokens, ttft_ms, total_ms, disconnected, partial,"
    " retries, upstream_status, upstream_error, upstream_request_id, key_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18, ?19)";

static const char health_sql[] =
    "INSERT OR REPLACE INTO health (id, ts) VALUES (1, ?1)";

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Step a write to its end; 0, or -1 with "err" set. */
static int
step_done(struct dbpool *p, struct dbconn *c, sqlite3_stmt *st,
    struct err *err)
{
	if (sqlite3_step(st) == SQLITE_DONE)
		return 0;
	err_set(err, "database %s: %s (SQLite code %d)", dbpool_path(p),
	    sqlite3_errmsg(c->db), sqlite3_extended_errcode(c->db));
	return -1;
}

int
usage_add(struct dbpool *p, const struct record *r, struct err *err)
{
	struct dbconn	*c;
	sqlite3_stmt	*st;
	int		 rc = -1;

	if ((c = dbpool_get_writer(p, err)) == NULL)
		return -1;
	if ((st = dbconn_stmt(c, DBS_USAGE_INSERT, insert_sql, err)) == NULL)
		goto out;
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->request_id);
	sqlite3_bind_int64(st, 3, r->ts_ms);
	bind_text(st, 4, r->route);
	bind_text(st, 5, r->model);
	sqlite3_bind_int(st, 6, r->status);
	sqlite3_bind_int64(st, 7, r->input_tokens);
	sqlite3_bind_int64(st, 8, r->output_tokens);
	sqlite3_bind_int64(st, 9, r->cache_creation_input_tokens);
	sqlite3_bind_int64(st, 10, r->cache_read_input_tokens);
	if (r->ttft_ms >= 0)
		sqlite3_bind_int64(st, 11, r->ttft_ms);
	sqlite3_bind_int64(st, 12, r->total_ms);
	sqlite3_bind_int(st, 13, r->disconnected);
	sqlite3_bind_int(st, 14, r->partial);
	sqlite3_bind_int(st, 15, r->retries);
	if (r->upstream_status > 0)
		sqlite3_bind_int64(st, 16, r->upstream_status);
	bind_text(st, 17, r->upstream_error);
	bind_text(st, 18, r->upstream_request_id);
	bind_text(st, 19, r->key);
	rc = step_done(p, c, st, err);
out:
	dbpool_put(p, c, rc == -1);
	return rc;
}

int
usage_check(struct dbpool *p, struct err *err)
{
	struct dbconn	*c;
	sqlite3_stmt	*st;
	int		 rc = -1;

	if ((c = dbpool_get_writer(p, err)) == NULL)
		return -1;
	if ((st = dbconn_stmt(c, DBS_HEALTH, health_sql, err)) != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
		rc = step_done(p, c, st, err);
	}
	dbpool_put(p, c, rc == -1);
	return rc;
}
