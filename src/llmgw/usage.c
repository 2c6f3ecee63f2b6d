#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/db.h"
#include "store/dbpool.h"
#include "store/record.h"
#include "store/record_sql.h"
#include "metrics.h"
#include "usage.h"

#define QUEUE_MAX	4096	/* rows waiting; past it, callers wait */
#define COMMIT_GAP_MS	10	/* under load, a commit at most this often */

struct usage {
	struct dbpool	*db;
	struct metrics	*metrics;	/* may be NULL */
	pthread_t	 writer;
	pthread_mutex_t	 lock;
	pthread_cond_t	 more;		/* rows came, or stop */
	pthread_cond_t	 taken;		/* the writer took the queue */
	struct buf	 queue;		/* struct records, one after another */
	unsigned long	 added;		/* rows handed in */
	unsigned long	 handled;	/* ... and written or given up on */
	int		 waiting;	/* the writer waits for rows */
	int		 stop;
	int64_t		 committed_ms;	/* when the last commit began */
};

static const char insert_sql[] =
    "INSERT INTO usage (" RECORD_SQL_COLUMNS ") VALUES (" RECORD_SQL_PARAMS
    ")";

static const char health_sql[] =
    "INSERT OR REPLACE INTO health (id, ts) VALUES (1, ?1)";

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

/* Rows "data", struct records one after another, in one transaction. */
static int
write_rows(struct usage *u, const char *data, size_t len, struct err *err)
{
	struct dbconn	*c;
	struct record	 r;
	sqlite3_stmt	*st;
	size_t		 off;
	int		 rc = -1, many = len > sizeof(r);

	if ((c = dbpool_get_writer(u->db, err)) == NULL)
		return -1;
	if (many && db_exec(c->db, "BEGIN IMMEDIATE", err) == -1)
		goto out;
	for (off = 0; off + sizeof(r) <= len; off += sizeof(r)) {
		memcpy(&r, data + off, sizeof(r));
		if ((st = dbconn_stmt(c, DBS_USAGE_INSERT, insert_sql,
		    err)) == NULL)
			goto out;
		record_sql_bind(st, &r);
		if (step_done(u->db, c, st, err) == -1)
			goto out;
	}
	if (many && db_exec(c->db, "COMMIT", err) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1 && many && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	dbpool_put(u->db, c, rc == -1);
	return rc;
}

/* A row that could not be stored: counted, and whole in the log. */
static void
lost(struct usage *u, const struct record *r, const struct err *err)
{
	struct buf	 b;
	char		 what[ERR_MAX + 128];

	if (u->metrics != NULL)
		metrics_usage_failure(u->metrics);
	buf_init(&b, 0);
	record_to_json(r, &b);
	snprintf(what, sizeof(what), "usage row for request %s not stored: "
	    "%s; record", r->request_id, err->msg);
	log_error_blob(what, buf_str(&b), b.len);
	buf_free(&b);
}

/*
 * Write a batch; if it fails as a whole, row by row, so that one bad row
 * costs only itself.
 */
static void
write_batch(struct usage *u, const char *data, size_t len)
{
	struct record	 r;
	struct err	 err;
	size_t		 off;

	if (write_rows(u, data, len, &err) == 0)
		return;
	for (off = 0; off + sizeof(r) <= len; off += sizeof(r)) {
		memcpy(&r, data + off, sizeof(r));
		if (len == sizeof(r) || write_rows(u, data + off, sizeof(r),
		    &err) == -1)
			lost(u, &r, &err);
	}
}

/*
 * Whether rows should gather longer: under load, until COMMIT_GAP_MS after
 * the last commit began, since a commit costs per transaction (locks, WAL
 * frames), not per row.  Rows after a pause are written at once.  With
 * the lock held; waits unlocked, on "more" (rung only to stop).
 */
static int
gathered_too_briefly(struct usage *u)
{
	struct timespec	 until;
	int64_t		 left;

	left = u->committed_ms + COMMIT_GAP_MS - clock_mono_ms();
	if (u->stop || left <= 0)
		return 0;
	until = clock_after_ms(CLOCK_MONOTONIC, left);
	pthread_cond_timedwait(&u->more, &u->lock, &until);
	return 1;
}

/*
 * The writer: whatever rows wait, in one transaction, then again.  While
 * it commits, the next batch gathers.
 */
static void *
writer_main(void *arg)
{
	struct usage	*u = arg;
	struct buf	 batch;
	size_t		 rows;

	(void)pthread_setname_np(pthread_self(), "llmgw-usage");
	buf_init(&batch, 0);
	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (u->queue.len == 0 && !u->stop) {
			u->waiting = 1;
			pthread_cond_wait(&u->more, &u->lock);
			u->waiting = 0;
		}
		if (u->queue.len == 0)
			break;		/* stopping, all written */
		if (gathered_too_briefly(u))
			continue;
		u->committed_ms = clock_mono_ms();
		buf_reset(&batch);
		{
			struct buf t = batch;

			batch = u->queue;
			u->queue = t;
		}
		pthread_cond_broadcast(&u->taken);
		pthread_mutex_unlock(&u->lock);

		write_batch(u, batch.data, batch.len);
		rows = batch.len / sizeof(struct record);

		pthread_mutex_lock(&u->lock);
		u->handled += rows;
		pthread_cond_broadcast(&u->taken);
	}
	pthread_mutex_unlock(&u->lock);
	buf_free(&batch);
	return NULL;
}

struct usage *
usage_open(struct dbpool *db, struct metrics *metrics, struct err *err)
{
	struct usage	*u;
	pthread_condattr_t attr;
	int		 rc;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(err, "usage: out of memory");
		return NULL;
	}
	u->db = db;
	u->metrics = metrics;
	buf_init(&u->queue, 0);
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&u->more, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&u->taken, NULL);
	if ((rc = pthread_create(&u->writer, NULL, writer_main, u)) != 0) {
		err_set(err, "usage: cannot start its writer: %s",
		    strerror(rc));
		pthread_mutex_destroy(&u->lock);
		pthread_cond_destroy(&u->more);
		pthread_cond_destroy(&u->taken);
		free(u);
		return NULL;
	}
	return u;
}

void
usage_close(struct usage *u)
{
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->lock);
	u->stop = 1;
	pthread_cond_signal(&u->more);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->writer, NULL);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->more);
	pthread_cond_destroy(&u->taken);
	buf_free(&u->queue);
	free(u);
}

void
usage_add(struct usage *u, const struct record *r)
{
	struct record	 row = *r;
	struct err	 err;
	int		 rc;

	row.prompt = row.reply = NULL;	/* not stored; gone by the write */
	pthread_mutex_lock(&u->lock);
	while (u->queue.len >= QUEUE_MAX * sizeof(row))
		pthread_cond_wait(&u->taken, &u->lock);
	rc = buf_add(&u->queue, &row, sizeof(row));
	if (rc == 0) {
		u->added++;
		if (u->waiting)
			pthread_cond_signal(&u->more);
	}
	pthread_mutex_unlock(&u->lock);
	if (rc == -1) {
		err_set(&err, "out of memory queueing it");
		lost(u, &row, &err);
	}
}

void
usage_sync(struct usage *u)
{
	unsigned long	 upto;

	pthread_mutex_lock(&u->lock);
	upto = u->added;
	while (u->handled < upto)
		pthread_cond_wait(&u->taken, &u->lock);
	pthread_mutex_unlock(&u->lock);
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
