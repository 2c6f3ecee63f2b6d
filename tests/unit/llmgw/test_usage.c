#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/db.h"
#include "store/store.h"
#include "store/ledger.h"
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
	r.upstream = 1;
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

static void
row(struct record *r, const char *id)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	strcpy(r->request_id, "req-1");
	strcpy(r->route, "/chat/stream");
	strcpy(r->model, "m");
	r->status = 200;
	r->upstream = 1;
	r->input_tokens = 11;
	r->output_tokens = 22;
	r->cache_read_input_tokens = 3;
	r->ttft_ms = -1;
	r->total_ms = 5;
}

/* Another process holds the database's write lock for a while: the rows
 * wait in memory, then go in, none lost. */
static void
locked_database(const char *path)
{
	struct store		*db;
	struct usage		*u;
	struct usage_state	 st;
	struct record		 r;
	struct err		 err;
	sqlite3			*other;
	int			 i;

	db = store_new(path, "test", 1, &err);
	u = usage_open(db, NULL, 100, &err);
	sqlite3_open(path, &other);
	ok(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) ==
	    SQLITE_OK, "another connection holds the database");
	for (i = 0; i < 5; i++) {
		char id[32];

		snprintf(id, sizeof(id), "locked-%d", i);
		row(&r, id);
		usage_add(u, &r);
	}
	/* The default wait is DB_BUSY_TIMEOUT_MS; the lock outlasts it. */
	ok(usage_sync(u) == -1, "the rows are not written while it is held");
	usage_state(u, &st);
	is_int(st.backlog, 5, "they wait in memory");
	ok(st.failing_ms > 0 && strstr(st.error, "locked") != NULL,
	    "the writer says why: %s", st.error);
	ok(!st.full, "five rows: not at the bound of 100");
	sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(other);
	for (i = 0; i < 300; i++) {	/* retries back off to 1 s */
		usage_state(u, &st);
		if (st.backlog == 0)
			break;
		usleep(10000);
	}
	is_int(st.backlog, 0, "the lock gone, they are written");
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE id LIKE "
	    "'locked-%'"), 5, "all five, once");
	usage_close(u);
	store_free(db);
}

/* A database that cannot be opened: rows wait up to twice the bound. */
static void
bounded(void)
{
	struct store		*db;
	struct usage		*u;
	struct usage_state	 st;
	struct record		 r;
	struct err		 err;
	int			 i;

	db = store_new("/nonexistent-dir/x.db", "test", 1, &err);
	u = usage_open(db, NULL, 2, &err);
	for (i = 0; i < 5; i++) {
		row(&r, "unwritable");
		usage_add(u, &r);
	}
	for (i = 0; i < 500; i++) {
		usage_state(u, &st);
		if (st.failing_ms > 0)
			break;
		usleep(10000);
	}
	is_int(st.backlog, 4, "twice the bound kept; past it, to the log");
	ok(st.full, "at the bound: full");
	ok(strstr(st.error, "/nonexistent-dir/x.db") != NULL,
	    "naming the file: %s", st.error);
	usage_close(u);
	ok(1, "closing logs what waits, no crash");
	store_free(db);
}

int
main(void)
{
	char			 path[512], sql[1024];
	struct store		*db;
	struct usage		*u;
	struct record		 r;
	struct err		 err;
	int			 i;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-usage.%ld.db",
	    (long)getpid());
	unlink(path);
	db = store_new(path, "test", 1, &err);
	u = usage_open(db, NULL, ADDERS * PER_ADDER, &err);
	ok(u != NULL, "its writer starts");
	ok(store_probe(db, 0, &err) == 0, "a new database is created and "
	    "writable");
	is_int(scalar(path, "PRAGMA user_version"), db_schema_version(),
	    "schema at the current version");
	is_int(scalar(path, "SELECT count(*) FROM pragma_journal_mode WHERE "
	    "journal_mode = 'wal'"), 0, "a rollback journal: no WAL, nothing "
	    "mapped");

	for (i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "id-%d", i);
		row(&r, sql);
		usage_add(u, &r);
	}
	ok(usage_sync(u) == 0, "written");
	is_int(scalar(path, "SELECT count(*) FROM usage"), 3, "three rows");
	is_int(scalar(path, "SELECT sum(output_tokens) FROM usage"), 66,
	    "tokens stored");
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE ttft_ms IS "
	    "NULL AND upstream_error IS NULL"), 3, "absent values are NULL");
	/* A row written again (by llmgw-spoold, from the spool) is one. */
	usage_add(u, &r);
	row(&r, "id-3");
	usage_add(u, &r);
	usage_sync(u);
	is_int(scalar(path, "SELECT count(*) FROM usage"), 4,
	    "a row written twice is there once, the row with it too");
	row(&r, "no-upstream");
	r.upstream = 0;
	usage_add(u, &r);
	usage_sync(u);
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE id = "
	    "'no-upstream'"), 0, "no row for a request that did not reach "
	    "the upstream");
	rows_at_once(u, path);
	usage_close(u);
	store_free(db);

	db = store_new(path, "test", 1, &err);
	u = usage_open(db, NULL, 100, &err);
	row(&r, "id-after-reopen");
	usage_add(u, &r);
	usage_close(u);		/* writes what is queued */
	is_int(scalar(path, "SELECT count(*) FROM usage WHERE id = "
	    "'id-after-reopen'"), 1, "reopening keeps the schema; closing "
	    "writes what is queued");
	store_free(db);

	locked_database(path);
	bounded();

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    db_schema_version() + 1);
	{
		sqlite3 *raw;

		sqlite3_open(path, &raw);
		sqlite3_exec(raw, sql, NULL, NULL, NULL);
		sqlite3_close(raw);
	}
	db = store_new(path, "test", 1, &err);
	ok(store_probe(db, 0, &err) == -1, "a newer schema is refused");
	ok(strstr(err.msg, "newer than this llmgw") != NULL, "%s", err.msg);
	store_free(db);
	unlink(path);
	snprintf(sql, sizeof(sql), "%s-journal", path);
	unlink(sql);

	return done_testing();
}
