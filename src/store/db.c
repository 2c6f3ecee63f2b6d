#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "db.h"
#include "perm.h"

/*
 * Migration N takes the schema from version N to N + 1.  Never edit one
 * that has shipped; add the next.
 */
static const char *const migrations[] = {
	/* 0 -> 1: token usage, one row per request that reached the API. */
	"CREATE TABLE usage ("
	"  id TEXT NOT NULL UNIQUE,"
	"  request_id TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"		/* Unix milliseconds */
	"  route TEXT NOT NULL,"
	"  model TEXT,"
	"  status INTEGER NOT NULL,"
	"  input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  output_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  ttft_ms INTEGER,"
	"  total_ms INTEGER NOT NULL,"
	"  disconnected INTEGER NOT NULL DEFAULT 0,"
	"  partial INTEGER NOT NULL DEFAULT 0,"
	"  retries INTEGER NOT NULL DEFAULT 0,"
	"  upstream_status INTEGER,"
	"  upstream_error TEXT,"
	"  upstream_request_id TEXT,"
	"  key_id TEXT"
	");"
	"CREATE INDEX usage_ts ON usage(ts);"
	"CREATE TABLE health (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL);",

	/* 1 -> 2: records delivered by llmgw-spoold's SQLite sink. */
	"CREATE TABLE request_log ("
	"  id TEXT PRIMARY KEY,"
	"  request_id TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  end_ts INTEGER,"
	"  delivered_ts INTEGER NOT NULL,"
	"  key_id TEXT,"
	"  route TEXT NOT NULL,"
	"  model TEXT,"
	"  status INTEGER NOT NULL,"
	"  input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  output_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,"
	"  ttft_ms INTEGER,"
	"  total_ms INTEGER NOT NULL DEFAULT 0,"
	"  disconnected INTEGER NOT NULL DEFAULT 0,"
	"  partial INTEGER NOT NULL DEFAULT 0,"
	"  retries INTEGER NOT NULL DEFAULT 0,"
	"  upstream INTEGER NOT NULL DEFAULT 0,"
	"  upstream_status INTEGER,"
	"  upstream_error TEXT,"
	"  upstream_request_id TEXT,"
	"  record TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX request_log_ts ON request_log(ts);"
	"CREATE INDEX request_log_request_id ON request_log(request_id);",

	/* 2 -> 3: API keys, their budgets and request rates. */
	"CREATE TABLE keys ("
	"  id TEXT PRIMARY KEY,"			/* shown and logged */
	"  name TEXT NOT NULL UNIQUE,"
	"  hash TEXT NOT NULL UNIQUE,"		/* SHA-256 of the secret */
	"  prefix TEXT NOT NULL,"			/* the secret's start */
	"  created INTEGER NOT NULL,"		/* Unix ms */
	"  expires INTEGER,"
	"  revoked INTEGER,"
	"  budget_tokens INTEGER,"
	"  budget_period TEXT CHECK (budget_period IN ('day', 'month')),"
	"  rpm INTEGER,"
	"  models TEXT"				/* comma list; NULL: any */
	");"
	"CREATE TABLE budget_use ("		/* settled tokens per period */
	"  key_id TEXT NOT NULL,"
	"  period TEXT NOT NULL,"			/* 2026-11-24 or 2026-11 */
	"  tokens INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (key_id, period)"
	") WITHOUT ROWID;"
	"CREATE TABLE reservations ("		/* tokens held by requests */
	"  id TEXT PRIMARY KEY,"
	"  key_id TEXT NOT NULL,"
	"  period TEXT NOT NULL,"
	"  tokens INTEGER NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  start INTEGER NOT NULL,"		/* the process's start time */
	"  expires INTEGER NOT NULL"
	");"
	"CREATE INDEX reservations_key ON reservations(key_id, period);"
	"CREATE TABLE rate_hits (key_id TEXT NOT NULL, ts INTEGER NOT NULL);"
	"CREATE INDEX rate_hits_key ON rate_hits(key_id, ts);",

	/*
	 * 3 -> 4: holds that say whose they are, so that a dead process's
	 * can be charged as a usage row; rows that say a stream was ended
	 * for the budget, or that a hold was charged; the largest overshoot
	 * of each key.
	 */
	"ALTER TABLE reservations ADD COLUMN ts INTEGER;"
	"ALTER TABLE reservations ADD COLUMN route TEXT;"
	"ALTER TABLE reservations ADD COLUMN model TEXT;"
	"ALTER TABLE usage ADD COLUMN budget_exhausted INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE usage ADD COLUMN hold_charged INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE request_log ADD COLUMN budget_exhausted INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE keys ADD COLUMN max_overshoot INTEGER NOT NULL"
	"  DEFAULT 0;",
};

#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

int
db_schema_version(void)
{
	return NMIGRATIONS;
}

int
db_exec(struct sqlite3 *db, const char *sql, struct err *err)
{
	char	*msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, "%.40s%s: %s (SQLite code %d)", sql,
		    strlen(sql) > 40 ? "..." : "", msg != NULL ? msg :
		    sqlite3_errmsg(db), sqlite3_extended_errcode(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
user_version(struct sqlite3 *db, int *v, struct err *err)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK) {
		err_set(err, "%s", sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	else
		err_set(err, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
db_migrate(struct sqlite3 *db, const char *path, struct err *err)
{
	char	 sql[64];
	int	 v;

	if (user_version(db, &v, err) == -1)
		goto fail;
	if (v == NMIGRATIONS)
		return 0;
	if (db_exec(db, "BEGIN IMMEDIATE", err) == -1)
		goto fail;
	/* Another process may have migrated while we waited. */
	if (user_version(db, &v, err) == -1)
		goto rollback;
	if (v > NMIGRATIONS) {
		err_set(err, "schema version %d is newer than this llmgw "
		    "knows (%d)", v, NMIGRATIONS);
		goto rollback;
	}
	for (; v < NMIGRATIONS; v++) {
		if (db_exec(db, migrations[v], err) == -1) {
			err_prefix(err, "migration to version %d", v + 1);
			goto rollback;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", NMIGRATIONS);
	if (db_exec(db, sql, err) == -1 || db_exec(db, "COMMIT", err) == -1)
		goto rollback;
	return 0;
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
fail:
	err_prefix(err, "database %s", path);
	return -1;
}

static int
db_is_wal(struct sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 wal = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		wal = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0),
		    "wal") == 0;
	sqlite3_finalize(st);
	return wal;
}

/*
 * A rollback journal, and (see db_connect()) no file mapped into memory.
 * In WAL mode SQLite maps the -shm file and writes to it; once the file
 * system refuses writes (remounted read-only after an I/O error, the
 * file made immutable) such a write is a SIGBUS that kills every request
 * of the process.  With a journal every access is a read or a write
 * call, and a refusal is an error code: the job that met it fails, no
 * other.
 *
 * Leaving WAL mode, a property of the file that an earlier llmgw set,
 * needs the database to itself.  "wait_ms": how long to wait for the
 * other connections to go; if 0, the connection stays in WAL mode while
 * they are there, and the next one tries again.
 */
int
db_journal(struct sqlite3 *db, long wait_ms, struct err *err)
{
	struct timespec	 pause = { 0, 20 * 1000 * 1000 };
	long		 waited;

	/* Set per connection: only WAL mode is stored in the file. */
	for (waited = 0; ; waited += 20) {
		(void)sqlite3_exec(db, DB_JOURNAL, NULL, NULL, NULL);
		if (!db_is_wal(db))
			return 0;
		if (waited >= wait_ms)
			break;
		nanosleep(&pause, NULL);
	}
	if (wait_ms == 0)
		return 0;
	err_set(err, "still in WAL mode after %ld ms: other processes have "
	    "it open", wait_ms);
	return -1;
}

int
db_busy_sleep(const int64_t *deadline_ms, int count)
{
	static const int	 sleeps[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25,
				    50, 50, 100 };
	struct timespec		 ts;
	int64_t			 left;
	int			 ms;

	if ((left = *deadline_ms - clock_mono_ms()) <= 0)
		return 0;
	ms = count < (int)(sizeof(sleeps) / sizeof(sleeps[0])) ?
	    sleeps[count] : 100;
	if (ms > left)
		ms = (int)left;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ms * 1000000;
	nanosleep(&ts, NULL);
	return 1;
}

/* "busy", "arg": see db_open_until(); NULL for DB_BUSY_TIMEOUT_MS. */
static struct sqlite3 *
db_connect(const char *path, int flags, int (*busy)(void *, int), void *arg,
    struct err *err)
{
	struct sqlite3	*db = NULL;

	if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		err_set(err, "database %s: %s", path, db != NULL ?
		    sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	if (busy != NULL)
		sqlite3_busy_handler(db, busy, arg);
	else
		sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	/* Settings that read the schema: they fail as any first read does
	 * (locked, unreadable), which is what the message should say. */
	if (db_exec(db, "PRAGMA foreign_keys = ON", err) == -1 ||
	    db_exec(db, "PRAGMA mmap_size = 0", err) == -1 ||
	    ((flags & SQLITE_OPEN_READWRITE) &&
	    (db_journal(db, 0, err) == -1 ||
	    db_exec(db, "PRAGMA synchronous = NORMAL", err) == -1))) {
		err_set(err, "database %s: %s (SQLite code %d)", path,
		    sqlite3_errmsg(db), sqlite3_extended_errcode(db));
		goto fail;
	}
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

/*
 * Make the database file if there is none, with perm.h's mode, before
 * SQLite does with the umask's: SQLite gives its journal the
 * database's mode.  0, or -1 with "err" set.
 */
static int
db_create(const char *path, struct err *err)
{
	int	 fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    perm_file_mode())) == -1) {
		if (errno == EEXIST)
			return 0;
		err_set(err, "database %s: %s", path, strerror(errno));
		return -1;
	}
	if (perm_fix(fd, 0) == -1) {
		err_set(err, "database %s: its mode: %s", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

struct sqlite3 *
db_open(const char *path, struct err *err)
{
	return db_open_until(path, NULL, NULL, err);
}

struct sqlite3 *
db_open_until(const char *path, int (*busy)(void *, int), void *arg,
    struct err *err)
{
	struct sqlite3	*db;

	if (db_create(path, err) == -1)
		return NULL;
	db = db_connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    busy, arg, err);
	if (db == NULL)
		return NULL;
	if (db_migrate(db, path, err) == -1) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

struct sqlite3 *
db_open_existing(const char *path, int readonly, struct err *err)
{
	if (access(path, F_OK) == -1) {
		err_set(err, "database %s: %s", path, strerror(errno));
		return NULL;
	}
	return db_connect(path, readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE, NULL, NULL, err);
}
