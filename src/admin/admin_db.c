/*
 * llmgw-admin db check | migrate | vacuum
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/conf.h"
#include "store/db.h"
#include "store/pg.h"
#include "admin.h"

static int	db_check(struct admin *, int, char *[]);
static int	db_migrate_cmd(struct admin *, int, char *[]);
static int	db_vacuum(struct admin *, int, char *[]);

const struct admin_cmd admin_db_cmds[] = {
	{ "db", "check", "",
	    "Integrity check and schema version (and the request log's, on "
	    "PostgreSQL); exit 1 on a problem.", db_check },
	{ "db", "migrate", "",
	    "Bring the schema up to this llmgw's version (the request log's "
	    "too, on PostgreSQL); leave WAL mode.", db_migrate_cmd },
	{ "db", "vacuum", "",
	    "Compact the database and truncate its write-ahead log.",
	    db_vacuum },
	{ NULL, NULL, NULL, NULL, NULL }
};

static int
pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Print how schema version "v" compares with "want": 1 if current. */
static int
schema_verdict(int v, int want)
{
	if (v == want) {
		printf("schema: version %d (current)\n", v);
		return 1;
	}
	if (v < want)
		printf("schema: version %d, older than this llmgw's %d: run "
		    "llmgw-admin db migrate\n", v, want);
	else
		printf("schema: version %d, newer than this llmgw knows (%d)\n",
		    v, want);
	return 0;
}

/* A database on PostgreSQL, "what" (the state, or the request log): 1
 * if all is well. */
static int
pg_check(const char *what, const char *uri)
{
	struct err	 err;
	struct pg	*p;
	int		 v, ok;

	if ((p = pg_open(uri, "llmgw-admin", 0, &err)) == NULL) {
		printf("%s: %s\n", what, err.msg);
		return 0;
	}
	printf("%s: %s\n", what, pg_name(p));
	if (pg_version(p, &v, &err) == -1) {
		printf("schema: %s\n", err.msg);
		ok = 0;
	} else
		ok = schema_verdict(v, pg_schema_version());
	pg_close(p);
	return ok;
}

/* Migrate database "what" on PostgreSQL: 0, or -1 after saying why. */
static int
pg_migrate_db(const char *what, const char *uri)
{
	struct err	 err;
	struct pg	*p;
	int		 before, rc = -1;

	if ((p = pg_open(uri, "llmgw-admin", 0, &err)) == NULL) {
		admin_fail("%s", err.msg);
		return -1;
	}
	if (pg_version(p, &before, &err) == -1 || pg_migrate(p, &err) == -1)
		admin_fail("%s", err.msg);
	else {
		printf("%s: %s\n", what, pg_name(p));
		if (before == pg_schema_version())
			printf("schema: version %d, already current\n", before);
		else
			printf("schema: version %d -> %d\n", before,
			    pg_schema_version());
		rc = 0;
	}
	pg_close(p);
	return rc;
}

/* 1 if the request log is on PostgreSQL, apart from the database. */
static int
log_on_pg(const struct conf *c)
{
	return c->sink_database != NULL && pg_is_uri(c->sink_database) &&
	    strcmp(c->sink_database, c->database) != 0;
}

static int
db_check(struct admin *a, int argc, char *argv[])
{
	sqlite3_stmt	*st;
	struct err	 err;
	sqlite3		*db;
	const char	*msg;
	int		 rc, v, ok = 1;

	if ((rc = admin_no_options(&admin_db_cmds[0], argc, argv)) != -1)
		return rc;
	if (pg_is_uri(a->conf->database)) {
		ok = pg_check("database", a->conf->database);
		if (log_on_pg(a->conf))
			ok &= pg_check("request log", a->conf->sink_database);
		return ok ? ADMIN_OK : ADMIN_FAIL;
	}
	if ((db = db_open_existing(a->conf->database, 1, &err)) == NULL)
		return admin_fail("%s", err.msg);
	printf("database: %s\n", a->conf->database);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		admin_fail("%s", sqlite3_errmsg(db));
		sqlite3_close(db);
		return ADMIN_FAIL;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		msg = (const char *)sqlite3_column_text(st, 0);
		if (msg != NULL && strcmp(msg, "ok") != 0)
			ok = 0;
		printf("integrity: %s\n", msg != NULL ? msg : "?");
	}
	sqlite3_finalize(st);
	v = pragma_int(db, "PRAGMA user_version");
	ok &= schema_verdict(v, db_schema_version());
	sqlite3_close(db);
	if (log_on_pg(a->conf))
		ok &= pg_check("request log", a->conf->sink_database);
	return ok ? ADMIN_OK : ADMIN_FAIL;
}

static int
db_migrate_cmd(struct admin *a, int argc, char *argv[])
{
	struct err	 err;
	sqlite3		*db;
	int		 rc, before;

	if ((rc = admin_no_options(&admin_db_cmds[1], argc, argv)) != -1)
		return rc;
	if (pg_is_uri(a->conf->database))
		return pg_migrate_db("database", a->conf->database) == 0 &&
		    (!log_on_pg(a->conf) || pg_migrate_db("request log",
		    a->conf->sink_database) == 0) ? ADMIN_OK : ADMIN_FAIL;
	if ((db = db_open_existing(a->conf->database, 0, &err)) == NULL)
		return admin_fail("%s", err.msg);
	if (db_journal(db, DB_BUSY_TIMEOUT_MS, &err) == -1) {
		sqlite3_close(db);
		return admin_fail("database %s: %s", a->conf->database,
		    err.msg);
	}
	before = pragma_int(db, "PRAGMA user_version");
	if (db_migrate(db, a->conf->database, &err) == -1) {
		sqlite3_close(db);
		return admin_fail("%s", err.msg);
	}
	sqlite3_close(db);
	if (before == db_schema_version())
		printf("schema: version %d, already current\n", before);
	else
		printf("schema: version %d -> %d\n", before,
		    db_schema_version());
	if (log_on_pg(a->conf) &&
	    pg_migrate_db("request log", a->conf->sink_database) == -1)
		return ADMIN_FAIL;
	return ADMIN_OK;
}

static long long
file_size(const char *path, const char *suffix)
{
	struct stat	 st;
	char		 p[4096];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static int
db_vacuum(struct admin *a, int argc, char *argv[])
{
	struct err	 err;
	sqlite3		*db;
	long long	 before, after;
	int		 rc;

	if ((rc = admin_no_options(&admin_db_cmds[2], argc, argv)) != -1)
		return rc;
	if (pg_is_uri(a->conf->database)) {
		printf("database on PostgreSQL: its autovacuum compacts it; "
		    "nothing to do\n");
		return ADMIN_OK;
	}
	if ((db = db_open_existing(a->conf->database, 0, &err)) == NULL)
		return admin_fail("%s", err.msg);
	before = file_size(a->conf->database, "") +
	    file_size(a->conf->database, "-wal");
	if (db_exec(db, "VACUUM", &err) == -1 ||
	    db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", &err) == -1) {
		sqlite3_close(db);
		return admin_fail("database %s: %s", a->conf->database,
		    err.msg);
	}
	sqlite3_close(db);
	after = file_size(a->conf->database, "") +
	    file_size(a->conf->database, "-wal");
	printf("%s: %lld bytes -> %lld bytes\n", a->conf->database, before,
	    after);
	return ADMIN_OK;
}
