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

#define POOL_KEEP	16	/* idle connections kept open */

struct dbpool {
	pthread_mutex_t	 lock;
	pthread_mutex_t	 write_lock;	/* one writer of this process at a time */
	char		*path;
	struct dbconn	*idle;
	int		 nidle;
	struct batch	*batch;		/* dbpool_batch()'s jobs */
};

static batch_run_fn	 run_batch;

struct dbpool *
dbpool_new(const char *path)
{
	struct dbpool	*p;
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
		if ((c->db = db_open_until(p->path, &c->deadline_ms,
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

/* A job of dbpool_batch(). */
struct pool_job {
	int		(*fn)(struct dbconn *, void *, struct err *);
	void		*arg;
};

/* Every job of the batch fails with "err". */
static void
fail_all(struct batch_job *const *jobs, size_t n, const struct err *err)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		jobs[i]->rc = -1;
		*jobs[i]->err = *err;
	}
}

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
		fail_all(jobs, n, &err);
		return;
	}
	if (db_exec(c->db, "BEGIN IMMEDIATE", &err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		j = jobs[i]->arg;
		if (db_exec(c->db, "SAVEPOINT job", &err) == -1)
			goto fail;
		jobs[i]->rc = j->fn(c, j->arg, jobs[i]->err);
		if ((jobs[i]->rc != 0 && db_exec(c->db, "ROLLBACK TO job",
		    &err) == -1) || db_exec(c->db, "RELEASE job", &err) == -1)
			goto fail;
	}
	if (db_exec(c->db, "COMMIT", &err) == -1)
		goto fail;
	dbpool_put(p, c, 0);
	return;
fail:
	err_prefix(&err, "database %s", p->path);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	fail_all(jobs, n, &err);
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
