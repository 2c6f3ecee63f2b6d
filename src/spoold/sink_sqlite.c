/*
 * The database sink on SQLite: request_log rows, one per record, in one
 * transaction per batch.  INSERT OR IGNORE on the record id makes a redelivery (after
 * a consumer died between delivering and removing) a no-op.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/conf.h"
#include "store/db.h"
#include "store/record.h"
#include "store/record_sql.h"
#include "sink_impl.h"

struct sqlite_sink {
	sqlite3		*db;
	sqlite3_stmt	*insert;
	char		*path;
};

static const char insert_sql[] =
    "INSERT OR IGNORE INTO request_log (" RECORD_SQL_COLUMNS ", end_ts,"
    " delivered_ts, upstream, record) VALUES (" RECORD_SQL_PARAMS ", ?21, ?22,"
    " ?23, ?24)";

static void	 sqlite_close(void *);

static void *
sqlite_open(const struct conf *c, struct err *err)
{
	struct sqlite_sink	*s;
	const char		*path;

	path = c->sink_database != NULL ? c->sink_database : c->database;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(path)) == NULL) {
		free(s);
		err_set(err, "out of memory");
		return NULL;
	}
	if ((s->db = db_open(path, err)) == NULL)
		goto fail;
	if (sqlite3_prepare_v3(s->db, insert_sql, -1,
	    SQLITE_PREPARE_PERSISTENT, &s->insert, NULL) != SQLITE_OK) {
		err_set(err, "database %s: prepare: %s", path,
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	return s;
fail:
	sqlite_close(s);
	return NULL;
}

static void
sqlite_close(void *arg)
{
	struct sqlite_sink	*s = arg;

	if (s == NULL)
		return;
	sqlite3_finalize(s->insert);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

static int
insert_one(struct sqlite_sink *s, const struct delivery *d, int64_t now)
{
	const struct record	*r = d->rec;
	sqlite3_stmt		*st = s->insert;
	int			 rc;

	record_sql_bind(st, r);
	if (r->end_ms > 0)
		sqlite3_bind_int64(st, RECORD_SQL_NCOLUMNS + 1, r->end_ms);
	sqlite3_bind_int64(st, RECORD_SQL_NCOLUMNS + 2, now);
	sqlite3_bind_int(st, RECORD_SQL_NCOLUMNS + 3, r->upstream);
	sqlite3_bind_text(st, RECORD_SQL_NCOLUMNS + 4, d->json, (int)d->len,
	    SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static size_t
sqlite_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	struct sqlite_sink	*s = arg;
	int64_t			 now = clock_wall_ms();
	size_t			 i;

	if (db_exec(s->db, "BEGIN IMMEDIATE", err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (insert_one(s, &d[i], now) == -1) {
			err_set(err, "insert record %s: %s", d[i].rec->id,
			    sqlite3_errmsg(s->db));
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
	}
	if (db_exec(s->db, "COMMIT", err) == -1) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	return n;
fail:
	err_prefix(err, "database %s", s->path);
	return 0;
}

const struct sink_ops sink_sqlite_ops = {
	"database", sqlite_open, sqlite_close, sqlite_deliver, NULL
};
