/*
 * The pool's batches: jobs queued while a batch runs share the next
 * commit; a job's refusal or error rolls back its own work only; a job
 * that waits past its deadline is not run.  A reader that this process's
 * writer keeps out gets in as that writer's transaction ends; a write on
 * a reader's connection never holds up the writer's commit.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/db.h"
#include "store/dbpool.h"
#include "../tap.h"
#include "scalar.h"

#define FOLLOWERS	7

static char		 path[256];
static atomic_int	 entered;	/* followers about to queue */

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * A job: insert a row, then say how many rows of this transaction the
 * file does not have yet (its own included), as another connection
 * sees it.  "mode": 0 keep, 1 refuse, -1 fail, 2 also wait for the
 * followers to queue (the leader).
 */
struct job {
	int		 mode;
	int		 uncommitted;
	int		 rc;
	struct err	 err;
};

static int
job_run(struct dbconn *c, void *arg, struct err *err)
{
	struct job	*j = arg;
	sqlite3		*other;
	long long	 inside, outside;
	int		 waited;

	if (sqlite3_exec(c->db, "INSERT INTO t VALUES (1)", NULL, NULL,
	    NULL) != SQLITE_OK) {
		err_set(err, "insert: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	if (j->mode == 2) {
		for (waited = 0; atomic_load(&entered) < FOLLOWERS &&
		    waited < 5000; waited += 10)
			sleep_ms(10);
		sleep_ms(300);	/* ... and to be in the queue */
	}
	inside = scalar(c->db, "SELECT count(*) FROM t");
	if (sqlite3_open(path, &other) != SQLITE_OK)
		return -1;
	outside = scalar(other, "SELECT count(*) FROM t");
	sqlite3_close(other);
	j->uncommitted = (int)(inside - outside);
	if (j->mode == -1) {
		err_set(err, "this job fails");
		return -1;
	}
	return j->mode == 1 ? 1 : 0;
}

struct follower {
	struct dbpool	*pool;
	struct job	 job;
	long		 deadline_after_ms;
};

static void *
follow(void *arg)
{
	struct follower	*f = arg;

	atomic_fetch_add(&entered, 1);
	f->job.rc = dbpool_batch(f->pool, clock_mono_ms() +
	    f->deadline_after_ms, job_run, &f->job, &f->job.err);
	return NULL;
}

/* A reader or a writer on a connection of the pool, on its own thread. */
struct other {
	struct dbpool	*pool;
	const char	*sql;		/* a write; NULL: count the rows */
	int64_t		 done_ms;
	long long	 rows;
	int		 rc;
};

static void *
other_run(void *arg)
{
	struct other	*o = arg;
	struct dbconn	*c;
	struct err	 err;

	if ((c = dbpool_get(o->pool, clock_mono_ms() + 5000, &err)) == NULL)
		return NULL;
	if (o->sql == NULL)
		o->rows = scalar(c->db, "SELECT count(*) FROM t");
	else
		o->rc = sqlite3_exec(c->db, o->sql, NULL, NULL, NULL);
	o->done_ms = clock_mono_ms();
	dbpool_put(o->pool, c, 0);
	return NULL;
}

/* A writer in its transaction, with a row written: NULL on failure. */
static struct dbconn *
writer_in(struct dbpool *pool, int64_t deadline_ms, const char *sql)
{
	struct dbconn	*c;
	struct err	 err;

	if ((c = dbpool_get_writer(pool, deadline_ms, &err)) == NULL)
		return NULL;
	if (dbconn_begin(c, &err) == -1 ||
	    sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		dbpool_put(pool, c, 1);
		return NULL;
	}
	return c;
}

static void
readers_and_writer(struct dbpool *pool, sqlite3 *db)
{
	struct other	 o;
	struct dbconn	*c;
	struct err	 err;
	pthread_t	 t;
	int64_t		 put_ms;
	long long	 before = scalar(db, "SELECT count(*) FROM t");

	/*
	 * A transaction larger than its cache writes to the file before
	 * its commit, under the lock that keeps readers out.  SQLite's
	 * sleeps, 100 ms each by then, would let the reader in at 528 ms,
	 * about 90 ms after the writer's end at 430 ms and its commit.
	 */
	c = writer_in(pool, clock_mono_ms() + 5000, "PRAGMA cache_size = 10;"
	    " INSERT INTO t VALUES (3); CREATE TABLE big (b BLOB);"
	    " INSERT INTO big VALUES (zeroblob(100000))");
	ok(c != NULL, "a writer's transaction, written past its cache");
	sqlite3_busy_timeout(db, 0);
	ok(scalar(db, "SELECT count(*) FROM t") == -1,
	    "... keeps readers out");
	memset(&o, 0, sizeof(o));
	o.pool = pool;
	pthread_create(&t, NULL, other_run, &o);
	sleep_ms(430);
	is_int(c != NULL ? dbconn_commit(c, &err) : -1, 0,
	    "the writer commits");
	put_ms = clock_mono_ms();
	dbpool_put(pool, c, 1);
	pthread_join(t, NULL);
	is_int(o.rows, before + 1, "a reader waiting meanwhile reads what it "
	    "wrote");
	ok(o.done_ms >= put_ms && o.done_ms - put_ms < 80, "... as its "
	    "transaction ends (%lld ms after)", (long long)(o.done_ms - put_ms));

	/* A write on a reader's connection while the writer's transaction
	 * is open: neither waits for the other past its deadline. */
	c = writer_in(pool, clock_mono_ms() + 1500, "INSERT INTO t VALUES (4)");
	memset(&o, 0, sizeof(o));
	o.pool = pool;
	o.sql = "INSERT INTO t VALUES (5)";
	pthread_create(&t, NULL, other_run, &o);
	sleep_ms(200);
	is_int(c != NULL ? dbconn_commit(c, &err) : -1, 0,
	    "a write on a reader's connection meanwhile does not hold up "
	    "the writer's commit");
	dbpool_put(pool, c, 0);
	pthread_join(t, NULL);
	is_int(o.rc, SQLITE_OK, "... and goes in after it");
	is_int(scalar(db, "SELECT count(*) FROM t WHERE v IN (4, 5)"), 2,
	    "... both rows kept");
	sqlite3_exec(db, "DROP TABLE big", NULL, NULL, NULL);
}

int
main(void)
{
	struct follower	 fs[FOLLOWERS];
	pthread_t	 ts[FOLLOWERS];
	struct dbpool	*pool;
	struct job	 leader, one;
	struct err	 err;
	sqlite3		*db;
	int		 i, kept, shared;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-dbpool.%ld.db",
	    (long)getpid());
	unlink(path);
	if ((db = db_open(path, &err)) == NULL) {
		printf("Bail out! %s\n", err.msg);
		return 1;
	}
	ok(sqlite3_exec(db, "CREATE TABLE t (v INTEGER)", NULL, NULL, NULL) ==
	    SQLITE_OK, "a table for the jobs");
	pool = dbpool_new(path);

	/* One job alone: its own commit. */
	memset(&one, 0, sizeof(one));
	is_int(dbpool_batch(pool, 0, job_run, &one, &one.err), 0,
	    "a job alone is kept");
	is_int(one.uncommitted, 1, "... in a transaction of its own");
	is_int(scalar(db, "SELECT count(*) FROM t"), 1, "... committed");

	/*
	 * A leader whose job waits while followers queue: a refusing one, a
	 * failing one, one that gives up after 100 ms, four that keep.
	 */
	memset(&leader, 0, sizeof(leader));
	leader.mode = 2;
	memset(fs, 0, sizeof(fs));
	for (i = 0; i < FOLLOWERS; i++) {
		fs[i].pool = pool;
		fs[i].job.mode = i == 0 ? 1 : i == 1 ? -1 : 0;
		fs[i].deadline_after_ms = i == 2 ? 100 : 10000;
	}
	atomic_store(&entered, 0);
	{
		pthread_t	 lt;
		struct follower	 lf = { pool, { 2, 0, 0, { "" } }, 10000 };

		pthread_create(&lt, NULL, follow, &lf);
		/* The leader first, alone in its batch. */
		while (atomic_load(&entered) < 1)
			sleep_ms(1);
		sleep_ms(50);
		atomic_store(&entered, 0);
		for (i = 0; i < FOLLOWERS; i++)
			pthread_create(&ts[i], NULL, follow, &fs[i]);
		for (i = 0; i < FOLLOWERS; i++)
			pthread_join(ts[i], NULL);
		pthread_join(lt, NULL);
		leader = lf.job;
	}
	is_int(leader.rc, 0, "the leader's job is kept");
	is_int(fs[0].job.rc, 1, "a refusal is returned");
	is_int(fs[1].job.rc, -1, "a job's error is returned");
	ok(strstr(fs[1].job.err.msg, ".db: this job fails") != NULL,
	    "... with its message, after the database's: %s",
	    fs[1].job.err.msg);
	is_int(fs[2].job.rc, -1, "a job queued past its deadline fails");
	ok(strstr(fs[2].job.err.msg, "past the deadline") != NULL,
	    "... saying so: %s", fs[2].job.err.msg);
	is_int(fs[2].job.uncommitted, 0, "... and never ran");
	kept = shared = 0;
	for (i = 3; i < FOLLOWERS; i++) {
		kept += fs[i].job.rc == 0;
		if (fs[i].job.uncommitted > shared)
			shared = fs[i].job.uncommitted;
	}
	is_int(kept, FOLLOWERS - 3, "the other jobs are kept");
	ok(shared >= 2, "jobs that queued meanwhile share a commit (up to %d "
	    "rows in one)", shared);
	is_int(scalar(db, "SELECT count(*) FROM t"), 2 + FOLLOWERS - 3,
	    "the refused and the failed rows were rolled back, no others");

	readers_and_writer(pool, db);

	dbpool_free(pool);
	sqlite3_close(db);
	unlink(path);
	return done_testing();
}
