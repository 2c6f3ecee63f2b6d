#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"
#include "store/record.h"
#include "metrics.h"
#include "usage.h"

/*
 * Under load, a commit at most this often.  A commit costs its syncs (two
 * fdatasync on SQLite), whatever its rows: 10 ms cost about 16 us of CPU
 * per /chat request at 6,000 a second, 50 ms about 6.  The rows are not
 * the durable copy (the spool record is, synced within 10 ms), so they
 * may wait this long.
 */
#define COMMIT_GAP_MS	50
#define RETRY_FIRST_MS	50	/* a failed write: again after this, */
#define RETRY_MAX_MS	1000	/* ... doubling up to this */
#define REMIND_MS	60000	/* while failing, a log line this often */

struct usage {
	struct store	*db;
	struct metrics	*metrics;	/* may be NULL */
	size_t		 max;		/* rows waiting: the bound */
	pthread_t	 writer;
	pthread_mutex_t	 lock;
	pthread_cond_t	 more;		/* rows came, or stop */
	pthread_cond_t	 taken;		/* the writer wrote, or failed */
	struct buf	 queue;		/* struct records, one after another */
	size_t		 writing;	/* rows the writer has taken */
	unsigned long	 added;		/* rows handed in */
	unsigned long	 handled;	/* ... and written or logged */
	int		 waiting;	/* the writer waits for rows */
	int		 stop;
	int64_t		 committed_ms;	/* when the last commit began */
	int64_t		 failing_since;	/* monotonic ms; 0: not failing */
	int64_t		 reminded_ms;	/* the last log line about it */
	char		 error[ERR_MAX];	/* why, while failing */
};

#define ROWS(len)	((len) / sizeof(struct record))

/* A row not kept: counted, and whole in the log. */
static void
lost(struct usage *u, const struct record *r, const char *why)
{
	struct buf	 b;
	char		 what[ERR_MAX + 128];

	if (u->metrics != NULL)
		metrics_usage_lost(u->metrics);
	buf_init(&b, 0);
	snprintf(what, sizeof(what), "usage row for request %s not stored: "
	    "%s; record", r->request_id, why);
	if (record_to_json(r, &b) == 0)
		log_error_blob(what, buf_str(&b), b.len);
	else
		log_error("%s %s: out of memory", what, r->id);
	buf_free(&b);
}

/*
 * Whether rows should gather longer: under load, until COMMIT_GAP_MS after
 * the last commit began, since a commit costs per transaction (locks,
 * syncs), not per row.  Rows after a pause are written at once.  With the
 * lock held; waits unlocked, on "more" (rung only to stop).
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

/* With the lock held: the batch failed; its rows go back to the front. */
static void
requeue(struct usage *u, struct buf *batch, const struct err *err)
{
	int64_t		 now = clock_mono_ms();
	size_t		 i;

	if (u->metrics != NULL)
		metrics_usage_failure(u->metrics);
	snprintf(u->error, sizeof(u->error), "%s", err->msg);
	if (u->failing_since == 0 || now - u->reminded_ms >= REMIND_MS) {
		log_error("usage rows wait in memory (%zu): %s",
		    ROWS(batch->len + u->queue.len), err->msg);
		u->reminded_ms = now;
	}
	if (u->failing_since == 0)
		u->failing_since = now;
	if (buf_add(batch, u->queue.data, u->queue.len) == 0) {
		struct buf t = u->queue;

		u->queue = *batch;
		*batch = t;
		return;
	}
	/* No memory to put them back together: the failed ones go. */
	for (i = 0; i < ROWS(batch->len); i++)
		lost(u, (const struct record *)(void *)batch->data + i,
		    "out of memory keeping it");
	u->handled += ROWS(batch->len);
}

/* With the lock held: wait "ms" before trying again, unless stopping. */
static void
pause_writer(struct usage *u, long ms)
{
	struct timespec	 until = clock_after_ms(CLOCK_MONOTONIC, ms);

	if (!u->stop)
		pthread_cond_timedwait(&u->more, &u->lock, &until);
}

/*
 * The writer: whatever rows wait, in one transaction, then again.  While
 * it commits, the next batch gathers.  Once stopping, one last try.
 */
static void *
writer_main(void *arg)
{
	struct usage	*u = arg;
	struct buf	 batch;
	struct err	 err;
	long		 retry_ms = RETRY_FIRST_MS;
	size_t		 i;
	int		 failed, last = 0;

	(void)pthread_setname_np(pthread_self(), "llmgw-usage");
	buf_init(&batch, 0);
	pthread_mutex_lock(&u->lock);
	while (!last) {
		while (u->queue.len == 0 && !u->stop) {
			u->waiting = 1;
			pthread_cond_wait(&u->more, &u->lock);
			u->waiting = 0;
		}
		if (u->queue.len == 0)
			break;		/* stopping, all written */
		if (u->failing_since == 0 && gathered_too_briefly(u))
			continue;
		last = u->stop;
		u->committed_ms = clock_mono_ms();
		buf_reset(&batch);
		{
			struct buf t = batch;

			batch = u->queue;
			u->queue = t;
		}
		u->writing = ROWS(batch.len);
		pthread_mutex_unlock(&u->lock);

		failed = store_ledger_write(u->db, (const struct record *)(void *)
		    batch.data, ROWS(batch.len), 0, &err) == -1;

		pthread_mutex_lock(&u->lock);
		u->writing = 0;
		if (failed) {
			requeue(u, &batch, &err);
			pthread_cond_broadcast(&u->taken);
			pause_writer(u, retry_ms);
			retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS :
			    retry_ms * 2;
			continue;
		}
		if (u->failing_since != 0)
			log_info("usage rows written again, after %lld ms",
			    (long long)(clock_mono_ms() - u->failing_since));
		u->failing_since = 0;
		retry_ms = RETRY_FIRST_MS;
		u->handled += ROWS(batch.len);
		pthread_cond_broadcast(&u->taken);
	}
	/* Stopped with rows the database would not take. */
	for (i = 0; i < ROWS(u->queue.len); i++)
		lost(u, (const struct record *)(void *)u->queue.data + i,
		    u->error);
	u->handled += ROWS(u->queue.len);
	buf_reset(&u->queue);
	pthread_cond_broadcast(&u->taken);
	pthread_mutex_unlock(&u->lock);
	buf_free(&batch);
	return NULL;
}

struct usage *
usage_open(struct store *db, struct metrics *metrics, size_t max,
    struct err *err)
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
	u->max = max;
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
	char		 why[ERR_MAX + 64] = "";
	size_t		 rows;

	row.prompt = row.reply = NULL;	/* not stored; gone by the write */
	pthread_mutex_lock(&u->lock);
	rows = ROWS(u->queue.len) + u->writing;
	if (u->stop)
		snprintf(why, sizeof(why), "llmgw is stopping");
	else if (rows >= 2 * u->max)
		snprintf(why, sizeof(why), "%zu rows wait already (%s)", rows,
		    u->failing_since != 0 ? u->error : "the writer is behind");
	else if (buf_add(&u->queue, &row, sizeof(row)) == -1)
		snprintf(why, sizeof(why), "out of memory queueing it");
	u->added++;
	if (why[0] != '\0')
		u->handled++;
	else if (u->waiting)
		pthread_cond_signal(&u->more);
	pthread_mutex_unlock(&u->lock);
	if (why[0] != '\0')
		lost(u, &row, why);
}

int
usage_sync(struct usage *u)
{
	unsigned long	 upto;
	int		 rc;

	pthread_mutex_lock(&u->lock);
	upto = u->added;
	while (u->handled < upto && u->failing_since == 0)
		pthread_cond_wait(&u->taken, &u->lock);
	rc = u->handled < upto ? -1 : 0;
	pthread_mutex_unlock(&u->lock);
	return rc;
}

void
usage_state(struct usage *u, struct usage_state *st)
{
	pthread_mutex_lock(&u->lock);
	st->backlog = ROWS(u->queue.len) + u->writing;
	st->full = st->backlog >= u->max;
	st->failing_ms = u->failing_since == 0 ? 0 :
	    clock_mono_ms() - u->failing_since;
	if (st->failing_ms == 0 && u->failing_since != 0)
		st->failing_ms = 1;
	snprintf(st->error, sizeof(st->error), "%s", u->failing_since != 0 ?
	    u->error : "");
	pthread_mutex_unlock(&u->lock);
}
