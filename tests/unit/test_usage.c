#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "err.h"
#include "record.h"
#include "dbpool.h"
#include "usage.h"
#include "tap.h"

static long long
scalar(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	long long	 v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

int
main(void)
{
	char			 path[512], sql[1024];
	struct dbpool		*u;
	struct record		 r;
	struct err		 err;
	int			 i;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-usage.%ld.db",
	    (long)getpid());
	unlink(path);
	u = dbpool_new(path);
	ok(usage_check(u, &err) == 0, "a new database is created and "
	    "writable");
	is_int(scalar(path, "PRAGMA user_version"), db_schema_version(),
	    "schema at the current version");
	is_int(scalar(path, "SELECT count(*) FROM pragma_journal_mode WHERE "
	    "journal_mode = 'wal'"), 1, "WAL mode");

	memset(&r, 0, sizeof(r));
	strcpy(r.request_id, "req-1");
	strcpy(r.route, "/chat/stream");
	strcpy(r.model, "m");
	r.status = 200;
	r.input_tokens = 11;
	r.output_tokens = 22;
	r.cache_read_input_tokens = 3;
	r.ttft_ms = -1;
	r.total_ms = 5;
	for (i = 0; i < 3; i++) {
		snprintf(r.id, sizeof(r.id), "id-%d", i);
		ok(usage_add(u, &r, &err) == 0, "row %d stored", i);
	}
	is_int(scalar(path, "SELECT count(*) FROM usage"), 3, "three rows");
	is_int(scalar(path, "SELECT sum(output_tokens) FROM usage"), 66,
	    "tokens stored");
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE ttft_ms IS "
	    "NULL AND upstream_error IS NULL"), 3, "absent values are NULL");
	ok(usage_add(u, &r, &err) == -1, "a duplicate id is refused");
	ok(strstr(err.msg, "UNIQUE") != NULL, "saying why: %s", err.msg);
	dbpool_free(u);

	u = dbpool_new(path);
	snprintf(r.id, sizeof(r.id), "id-after-reopen");
	ok(usage_add(u, &r, &err) == 0, "reopening keeps the schema");
	dbpool_free(u);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    db_schema_version() + 1);
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		sqlite3_close(db);
	}
	u = dbpool_new(path);
	ok(usage_check(u, &err) == -1, "a newer schema is refused");
	ok(strstr(err.msg, "newer than this llmgw") != NULL, "%s", err.msg);
	dbpool_free(u);

	u = dbpool_new("/nonexistent-dir/x.db");
	ok(usage_check(u, &err) == -1, "an unopenable database fails");
	ok(strstr(err.msg, "/nonexistent-dir/x.db") != NULL,
	    "naming the file: %s", err.msg);
	ok(usage_add(u, &r, &err) == -1, "and records fail, not crash");
	dbpool_free(u);
	unlink(path);
	snprintf(sql, sizeof(sql), "%s-wal", path);
	unlink(sql);
	snprintf(sql, sizeof(sql), "%s-shm", path);
	unlink(sql);

	return done_testing();
}
