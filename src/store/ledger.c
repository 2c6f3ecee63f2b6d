#include "config.h"

#include <time.h>

#include <sqlite3.h>

#include "core/err.h"
#include "budget.h"
#include "db.h"
#include "dbpool.h"
#include "ledger.h"
#include "record.h"
#include "record_sql.h"

static const char insert_sql[] =
    "INSERT OR IGNORE INTO usage (" RECORD_SQL_COLUMNS ") VALUES ("
    RECORD_SQL_PARAMS ")";
static const char health_sql[] =
    "INSERT OR REPLACE INTO health (id, ts) VALUES (1, ?1)";

/* One row, and if it is new, what it settles: 1 new, 0 there, -1. */
static int
add_row(struct dbconn *c, const struct record *r, struct err *err)
{
	sqlite3_stmt	*st;
	int		 added;

	if ((st = dbconn_stmt(c, DBS_USAGE_INSERT, insert_sql, err)) == NULL)
		return -1;
	record_sql_bind(st, r);
	if (sqlite3_step(st) != SQLITE_DONE) {
		err_set(err, "usage row %s: %s", r->id, sqlite3_errmsg(c->db));
		return -1;
	}
	added = sqlite3_changes(c->db) > 0;
	sqlite3_reset(st);
	if (r->key[0] == '\0')
		return added;
	/* Whatever the request held goes, whoever wrote the row. */
	if (budget_unreserve(c, r->id, err) == -1 ||
	    (added && budget_charge(c, r->key, r->ts_ms, r->input_tokens +
	    r->output_tokens + r->cache_creation_input_tokens +
	    r->cache_read_input_tokens, err) == -1)) {
		err_prefix(err, "usage row %s", r->id);
		return -1;
	}
	return added;
}

long
ledger_write(struct dbpool *p, const struct record *rows, size_t n,
    int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;
	size_t		 i;
	long		 added = 0;
	int		 rc;

	if ((c = dbpool_get_writer(p, deadline_ms, err)) == NULL)
		return -1;
	if (db_exec(c->db, "BEGIN IMMEDIATE", err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (!rows[i].upstream)
			continue;
		if ((rc = add_row(c, &rows[i], err)) == -1)
			goto fail;
		added += rc;
	}
	if (db_exec(c->db, "COMMIT", err) == -1)
		goto fail;
	dbpool_put(p, c, 0);
	return added;
fail:
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	dbpool_put(p, c, 1);
	err_prefix(err, "database %s", dbpool_path(p));
	return -1;
}

int
ledger_probe(struct dbpool *p, int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;
	sqlite3_stmt	*st;
	int		 rc = -1;

	if ((c = dbpool_get(p, deadline_ms, err)) == NULL)
		return -1;
	if ((st = dbconn_stmt(c, DBS_HEALTH, health_sql, err)) != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
		else
			err_set(err, "%s (SQLite code %d)",
			    sqlite3_errmsg(c->db),
			    sqlite3_extended_errcode(c->db));
	}
	dbpool_put(p, c, rc == -1);
	if (rc == -1)
		err_prefix(err, "database %s", dbpool_path(p));
	return rc;
}
