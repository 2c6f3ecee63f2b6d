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
static const char hold_row_sql[] =
    "SELECT input_tokens FROM usage WHERE id = ?1 AND hold_charged = 1";
static const char drop_row_sql[] = "DELETE FROM usage WHERE id = ?1";
static const char held_of_sql[] =
    "SELECT tokens FROM reservations WHERE id = ?1";
static const char overshoot_sql[] =
    "UPDATE keys SET max_overshoot = max(max_overshoot, ?2) WHERE id = ?1";
static const char health_sql[] =
    "INSERT OR REPLACE INTO health (id, ts) VALUES (1, ?1)";

/*
 * One integer from a statement on text "id" (and "n" as ?2, if it has
 * one): 1 with "*v" set, 0 if no row, -1 with "err" set.
 */
static int
one_int(struct dbconn *c, enum db_slot slot, const char *sql,
    const char *id, int64_t n, int64_t *v, struct err *err)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = dbconn_stmt(c, slot, sql, err)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, n);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err_set(err, "%s", sqlite3_errmsg(c->db));
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* Insert the row unless one of its id is there: 1 inserted, 0, -1. */
static int
insert_row(struct dbconn *c, const struct record *r, struct err *err)
{
	sqlite3_stmt	*st;

	if ((st = dbconn_stmt(c, DBS_USAGE_INSERT, insert_sql, err)) == NULL)
		return -1;
	record_sql_bind(st, r);
	if (sqlite3_step(st) != SQLITE_DONE) {
		err_set(err, "%s", sqlite3_errmsg(c->db));
		return -1;
	}
	return sqlite3_changes(c->db) > 0;
}

/*
 * One row, and if it is new, what it settles: 1 new, 0 there, -1.  A row
 * there already that charged a dead process's hold (budget.h) is the
 * estimate this one replaces, and the budget is set right.
 */
static int
add_row(struct dbconn *c, const struct record *r, struct err *err)
{
	int64_t		 charged = 0, held = -1;
	long		 used;
	int		 added, rc;

	used = r->input_tokens + r->output_tokens +
	    r->cache_creation_input_tokens + r->cache_read_input_tokens;
	if ((added = insert_row(c, r, err)) == -1)
		goto fail;
	if (!added && r->key[0] != '\0') {
		if ((rc = one_int(c, DBS_HOLD_ROW, hold_row_sql, r->id, 0,
		    &charged, err)) == -1)
			goto fail;
		if (rc == 1 && (one_int(c, DBS_DROP_ROW, drop_row_sql, r->id,
		    0, &charged, err) == -1 ||
		    (added = insert_row(c, r, err)) == -1))
			goto fail;
	}
	if (r->key[0] == '\0')
		return added;
	/* Whatever the request held goes, whoever wrote the row. */
	if (one_int(c, DBS_HELD_OF, held_of_sql, r->id, 0, &held, err) ==
	    -1 || budget_unreserve(c, r->id, err) == -1 ||
	    (added && budget_charge(c, r->key, r->ts_ms, used - (long)charged,
	    err) == -1))
		goto fail;
	if (held >= 0 && used > held && one_int(c, DBS_OVERSHOOT,
	    overshoot_sql, r->key, used - held, &held, err) == -1)
		goto fail;
	return added;
fail:
	err_prefix(err, "usage row %s", r->id);
	return -1;
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
	if (dbconn_begin(c, err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (!rows[i].upstream)
			continue;
		if ((rc = add_row(c, &rows[i], err)) == -1)
			goto fail;
		added += rc;
	}
	if (dbconn_commit(c, err) == -1)
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
