#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/batch.h"
#include "core/clock.h"
#include "core/err.h"
#include "db.h"
#include "dbpool.h"

/*
 * Idle connections kept open.  One made afresh reads the schema first,
 * and readers waiting out a commit each hold one: with 16 kept, 50 keyed
 * requests at once opened about 40 a second.
 */
#define POOL_KEEP	64

struct dbpool {
	pthread_mutex_t	 lock;
	pthread_mutex_t	 write_lock;	/* one writer of this process at a time */
	char		*path;
	struct dbconn	*idle;
	int		 nidle;
	struct batch	*batch;		/* dbpool_batch()'s jobs */
	/* This process's writer in its transaction, under "lock": */
	int		 in_tx;
	pthread_t	 writer;
	uint64_t	 tx_ended;	/* transactions ended so far */
	int		 tx_waiters;
	pthread_cond_t	 tx_end;	/* monotonic */
};

static batch_run_fn	 run_batch;

struct dbpool *
dbpool_new(const char *path)
{
	struct dbpool	*p;
	pthread_condattr_t attr;
	char		 name[PATH_MAX + 16];

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	snprintf(name, sizeof(name), "database %s", path);
	if ((p->path = strdup(path)) == NULL ||
	    (p->batch = batch_new(name, run_batch, p)) == NULL) {
		free(p->path);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->write_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->tx_end, &attr);
	pthread_condattr_destroy(&attr);
	return p;
}

static void
conn_close(struct dbconn *c)
{
	int	 i;

	if (c == NULL)
		return;
	for (i = 0; i < DBS_NSLOTS; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

void
dbpool_free(struct dbpool *p)
{
	struct dbconn	*c;

	if (p == NULL)
		return;
	while ((c = p->idle) != NULL) {
		p->idle = c->next;
		conn_close(c);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->write_lock);
	pthread_cond_destroy(&p->tx_end);
	batch_free(p->batch);
	free(p->path);
	free(p);
}

const char *
dbpool_path(const struct dbpool *p)
{
	return p->path;
}

static int64_t
deadline_or_default(int64_t deadline_ms)
{
	return deadline_ms > 0 ? deadline_ms :
	    clock_mono_ms() + DB_BUSY_TIMEOUT_MS;
}

/*
 * Whether "c" still has the file at the pool's path: a database deleted
 * or replaced since it was opened would take rows that nobody will see.
 */
static int
same_file(const struct dbpool *p, const struct dbconn *c)
{
	struct stat	 st;

	return stat(p->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino;
}

/*
 * The busy handler of the pool's connections.  A reader that this
 * process's own writer keeps out (its commit holds the lock readers
 * need) waits for that transaction to end and tries again at once:
 * with SQLite's sleeps, which grow to 100 ms, a reader among writers
 * committing back to back kept missing the moments between commits
 * (50 keyed requests at once: p99 about a second).  Any other lock is
 * another process's, and SQLite's sleeps leave it the CPU.  Only a
 * connection that holds no lock waits so (SQLite asks one that holds a
 * lock only at its commit, which the writer may be waiting for); one
 * being opened ("db" not set yet) only reads, holding nothing.
 */
static int
pool_busy(void *arg, int count)
{
	struct dbconn	*c = arg;
	struct dbpool	*p = c->pool;
	struct timespec	 until;
	uint64_t	 ended;

	if (c->writing || (c->db != NULL &&
	    sqlite3_txn_state(c->db, NULL) != SQLITE_TXN_NONE))
		return db_busy_sleep(&c->deadline_ms, count);
	pthread_mutex_lock(&p->lock);
	if (!p->in_tx || pthread_equal(p->writer, pthread_self())) {
		pthread_mutex_unlock(&p->lock);
		return db_busy_sleep(&c->deadline_ms, count);
	}
	until = clock_after_ms(CLOCK_MONOTONIC, c->deadline_ms -
	    clock_mono_ms());
	ended = p->tx_ended;
	p->tx_waiters++;
	while (p->tx_ended == ended && pthread_cond_timedwait(&p->tx_end,
	    &p->lock, &until) == 0)
		;
	p->tx_waiters--;
	pthread_mutex_unlock(&p->lock);
	return clock_mono_ms() < c->deadline_ms;
}

struct dbconn *
dbpool_get(struct dbpool *p, int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;
	struct stat	 st;

	deadline_ms = deadline_or_default(deadline_ms);
	pthread_mutex_lock(&p->lock);
	if ((c = p->idle) != NULL) {
		p->idle = c->next;
		p->nidle--;
	}
	pthread_mutex_unlock(&p->lock);
	if (c != NULL && !same_file(p, c)) {
		conn_close(c);
		c = NULL;
	}
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			err_set(err, "database %s: out of memory", p->path);
			return NULL;
		}
		c->deadline_ms = deadline_ms;
		c->pool = p;
		if ((c->db = db_open_until(p->path, pool_busy, c,
		    err)) == NULL) {
			free(c);
			return NULL;
		}
		if (stat(p->path, &st) == 0) {
			c->dev = st.st_dev;
			c->ino = st.st_ino;
		}
	}
	c->deadline_ms = deadline_ms;
	return c;
}

struct dbconn *
dbpool_get_writer(struct dbpool *p, int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;
	struct timespec	 until;
	int		 rc;

	deadline_ms = deadline_or_default(deadline_ms);
	/* pthread_mutex_timedlock() counts on the wall clock (and, unlike
	 * pthread_mutex_clocklock(), ThreadSanitizer knows it). */
	until = clock_after_ms(CLOCK_REALTIME, deadline_ms - clock_mono_ms());
	if ((rc = pthread_mutex_timedlock(&p->write_lock, &until)) != 0) {
		err_set(err, "database %s: %s", p->path, rc == ETIMEDOUT ?
		    "this process's other writers held it past the deadline" :
		    strerror(rc));
		return NULL;
	}
	if ((c = dbpool_get(p, deadline_ms, err)) == NULL) {
		pthread_mutex_unlock(&p->write_lock);
		return NULL;
	}
	c->writing = 1;
	return c;
}

void
dbpool_put(struct dbpool *p, struct dbconn *c, int failed)
{
	int	 i;

	if (c == NULL)
		return;
	if (c->writing) {
		c->writing = 0;
		pthread_mutex_lock(&p->lock);
		if (p->in_tx) {
			p->in_tx = 0;
			p->tx_ended++;
			if (p->tx_waiters > 0)
				pthread_cond_broadcast(&p->tx_end);
		}
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&p->write_lock);
	}
	/*
	 * A statement stepped to a row and left there holds a read
	 * transaction; the next write on this connection would then be
	 * refused at once (SQLITE_BUSY_SNAPSHOT, no busy wait) whenever
	 * another connection has written since.  Nothing is held between
	 * uses.
	 */
	for (i = 0; i < DBS_NSLOTS; i++)
		if (c->st[i] != NULL)
			sqlite3_reset(c->st[i]);
	if (!sqlite3_get_autocommit(c->db))
		failed = 1;	/* a transaction left open: start afresh */
	if (!failed) {
		pthread_mutex_lock(&p->lock);
		if (p->nidle < POOL_KEEP) {
			c->next = p->idle;
			p->idle = c;
			p->nidle++;
			c = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	conn_close(c);
}

struct sqlite3_stmt *
dbconn_stmt(struct dbconn *c, enum db_slot slot, const char *sql,
    struct err *err)
{
	if (c->st[slot] == NULL &&
	    sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &c->st[slot], NULL) != SQLITE_OK) {
		err_set(err, "prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	sqlite3_reset(c->st[slot]);
	sqlite3_clear_bindings(c->st[slot]);
	return c->st[slot];
}

int
dbconn_exec(struct dbconn *c, enum db_slot slot, const char *sql,
    struct err *err)
{
	struct sqlite3_stmt *st;
	int		 rc;

	if ((st = dbconn_stmt(c, slot, sql, err)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		err_set(err, "%s: %s (SQLite code %d)", sql,
		    sqlite3_errmsg(c->db), sqlite3_extended_errcode(c->db));
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int
dbconn_begin(struct dbconn *c, struct err *err)
{
	struct dbpool	*p = c->pool;

	if (dbconn_exec(c, DBS_BEGIN, "BEGIN IMMEDIATE", err) == -1)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->in_tx = 1;
	p->writer = pthread_self();
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
dbconn_commit(struct dbconn *c, struct err *err)
{
	return dbconn_exec(c, DBS_COMMIT, "COMMIT", err);
}

/* A job of dbpool_batch(). */
struct pool_job {
	int		(*fn)(struct dbconn *, void *, struct err *);
	void		*arg;
};

/*
 * The jobs in one transaction, each in a savepoint.  A savepoint that
 * cannot be rolled back, or a commit that fails, fails them all: nothing
 * of theirs was kept.
 */
static void
run_batch(void *ctx, struct batch_job *const *jobs, size_t n,
    int64_t deadline_ms)
{
	struct dbpool	*p = ctx;
	struct pool_job	*j;
	struct dbconn	*c;
	struct err	 err;
	size_t		 i;

	if ((c = dbpool_get_writer(p, deadline_ms, &err)) == NULL) {
		batch_fail_all(jobs, n, &err);
		return;
	}
	if (dbconn_begin(c, &err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		j = jobs[i]->arg;
		if (dbconn_exec(c, DBS_SAVEPOINT, "SAVEPOINT job", &err) == -1)
			goto fail;
		if ((jobs[i]->rc = j->fn(c, j->arg, jobs[i]->err)) == -1)
			err_prefix(jobs[i]->err, "database %s", p->path);
		if ((jobs[i]->rc != 0 && dbconn_exec(c, DBS_ROLLBACK_TO,
		    "ROLLBACK TO job", &err) == -1) ||
		    dbconn_exec(c, DBS_RELEASE, "RELEASE job", &err) == -1)
			goto fail;
	}
	if (dbconn_commit(c, &err) == -1)
		goto fail;
	dbpool_put(p, c, 0);
	return;
fail:
	err_prefix(&err, "database %s", p->path);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	batch_fail_all(jobs, n, &err);
	dbpool_put(p, c, 1);
}

int
dbpool_batch(struct dbpool *p, int64_t deadline_ms,
    int (*fn)(struct dbconn *, void *, struct err *), void *arg,
    struct err *err)
{
	struct pool_job	 job = { fn, arg };

	return batch_submit(p->batch, &job, deadline_or_default(deadline_ms),
	    err);
}
