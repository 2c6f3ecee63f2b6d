#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/db.h"
#include "store/dbpool.h"
#include "store/record.h"
#include "llmgw/usage.h"
#include "../tap.h"

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

#define ADDERS		8
#define PER_ADDER	50

struct adder {
	struct usage	*u;
	int		 n;
};

static void *
add_rows(void *arg)
{
	struct adder	*a = arg;
	struct record	 r;
	int		 i;

	memset(&r, 0, sizeof(r));
	strcpy(r.request_id, "req-many");
	strcpy(r.route, "/chat");
	r.status = 200;
	r.output_tokens = 1;
	r.ttft_ms = -1;
	for (i = 0; i < PER_ADDER; i++) {
		snprintf(r.id, sizeof(r.id), "many-%d-%d", a->n, i);
		usage_add(a->u, &r);
	}
	return NULL;
}

/* Threads at once: every row stored once (in shared transactions). */
static void
rows_at_once(struct usage *u, const char *path)
{
	struct adder	 a[ADDERS];
	pthread_t	 t[ADDERS];
	int		 i;

	for (i = 0; i < ADDERS; i++) {
		a[i].u = u;
		a[i].n = i;
		pthread_create(&t[i], NULL, add_rows, &a[i]);
	}
	for (i = 0; i < ADDERS; i++)
		pthread_join(t[i], NULL);
	usage_sync(u);
	is_int(scalar(path, "SELECT count(DISTINCT id) FROM usage WHERE "
	    "request_id = 'req-many'"), ADDERS * PER_ADDER,
	    "every row stored once");
}

int
main(void)
{
	char			 path[512], sql[1024];
	struct dbpool		*db;
	struct usage		*u;
	struct record		 r;
	struct err		 err;
	int			 i;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-usage.%ld.db",
	    (long)getpid());
	unlink(path);
	db = dbpool_new(path);
	u = usage_open(db, NULL, &err);
	ok(u != NULL, "its writer starts");
	ok(usage_check(db, &err) == 0, "a new database is created and "
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
		usage_add(u, &r);
	}
	usage_sync(u);
	is_int(scalar(path, "SELECT count(*) FROM usage"), 3, "three rows");
	is_int(scalar(path, "SELECT sum(output_tokens) FROM usage"), 66,
	    "tokens stored");
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE ttft_ms IS "
	    "NULL AND upstream_error IS NULL"), 3, "absent values are NULL");
	/* A duplicate id among good rows: only it is refused (and logged). */
	usage_add(u, &r);
	snprintf(r.id, sizeof(r.id), "id-3");
	usage_add(u, &r);
	usage_sync(u);
	is_int(scalar(path, "SELECT count(*) FROM usage"), 4,
	    "a duplicate id is refused, the row with it is not");
	rows_at_once(u, path);
	usage_close(u);
	dbpool_free(db);

	db = dbpool_new(path);
	u = usage_open(db, NULL, &err);
	snprintf(r.id, sizeof(r.id), "id-after-reopen");
	usage_add(u, &r);
	usage_close(u);		/* writes what is queued */
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE id = "
	    "'id-after-reopen'"), 1, "reopening keeps the schema; closing "
	    "writes what is queued");
	dbpool_free(db);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    db_schema_version() + 1);
	{
		sqlite3 *raw;

		sqlite3_open(path, &raw);
		sqlite3_exec(raw, sql, NULL, NULL, NULL);
		sqlite3_close(raw);
	}
	db = dbpool_new(path);
	ok(usage_check(db, &err) == -1, "a newer schema is refused");
	ok(strstr(err.msg, "newer than this llmgw") != NULL, "%s", err.msg);
	dbpool_free(db);

	db = dbpool_new("/nonexistent-dir/x.db");
	u = usage_open(db, NULL, &err);
	ok(usage_check(db, &err) == -1, "an unopenable database fails");
	ok(strstr(err.msg, "/nonexistent-dir/x.db") != NULL,
	    "naming the file: %s", err.msg);
	usage_add(u, &r);
	usage_sync(u);
	ok(1, "and rows fail (to the log), not crash");
	usage_close(u);
	dbpool_free(db);
	unlink(path);
	snprintf(sql, sizeof(sql), "%s-wal", path);
	unlink(sql);
	snprintf(sql, sizeof(sql), "%s-shm", path);
	unlink(sql);

	return done_testing();
}
