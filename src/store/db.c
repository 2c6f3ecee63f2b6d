#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

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
 * WAL mode is a property of the file, set once.  Setting it needs the
 * file to itself and fails at once, without SQLite's busy wait, while
 * another connection has it open: as when mod_fcgid starts several
 * processes on a new database.  So ask first, and wait out the others
 * for as long as any other lock.
 */
static int
db_use_wal(struct sqlite3 *db, struct err *err)
{
	struct timespec	 pause = { 0, 20 * 1000 * 1000 };
	int		 waited;

	for (waited = 0; !db_is_wal(db); waited += 20) {
		if (sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL,
		    NULL) == SQLITE_OK && db_is_wal(db))
			return 0;
		if ((sqlite3_errcode(db) != SQLITE_BUSY &&
		    sqlite3_errcode(db) != SQLITE_OK) ||
		    waited >= DB_BUSY_TIMEOUT_MS)
			return db_exec(db, "PRAGMA journal_mode = WAL", err);
		nanosleep(&pause, NULL);
	}
	return 0;
}

static struct sqlite3 *
db_connect(const char *path, int flags, struct err *err)
{
	struct sqlite3	*db = NULL;

	if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		err_set(err, "database %s: %s", path, db != NULL ?
		    sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	if (db_exec(db, "PRAGMA foreign_keys = ON", err) == -1) {
		err_prefix(err, "database %s", path);
		goto fail;
	}
	if ((flags & SQLITE_OPEN_READWRITE) &&
	    (db_use_wal(db, err) == -1 ||
	    db_exec(db, "PRAGMA synchronous = NORMAL", err) == -1)) {
		err_prefix(err, "database %s", path);
		goto fail;
	}
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

/*
 * Make the database file if there is none, with perm.h's mode, before
 * SQLite does with the umask's: SQLite gives its WAL and SHM files the
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
	struct sqlite3	*db;

	if (db_create(path, err) == -1)
		return NULL;
	db = db_connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
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
	    SQLITE_OPEN_READWRITE, err);
}
