/*
 * The pool's batches: jobs queued while a batch runs share the next
 * commit; a job's refusal or error rolls back its own work only; a job
 * that waits past its deadline is not run.
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
	is_str(fs[1].job.err.msg, "this job fails", "... with its message");
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

	dbpool_free(pool);
	sqlite3_close(db);
	unlink(path);
	return done_testing();
}
