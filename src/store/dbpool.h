/*
 * A pool of SQLite connections to one database, shared by all threads.
 * A thread takes a connection for the length of one job (a usage row, a
 * key lookup, a budget reservation), so no connection is used by two
 * threads at once, and the pool is only as large as the jobs that ran at
 * the same moment.  Each connection prepares a statement the first time
 * it is asked for it, in the slot named by enum db_slot, and keeps it.
 *
 * If the database cannot be opened, every call tries again, so one that
 * comes back is used without a restart; one deleted or replaced is opened
 * (made) afresh.
 *
 * A job has a deadline: it waits for other writers of this process and
 * for other processes' locks until then, and no longer (SQLITE_BUSY).
 */
#ifndef DBPOOL_H
#define DBPOOL_H

#include <stdint.h>
#include <sys/types.h>

struct err;
struct dbpool;
struct sqlite3;
struct sqlite3_stmt;

/* One slot per statement; each module owns its own. */
enum db_slot {
	DBS_USAGE_INSERT,
	DBS_HEALTH,
	DBS_KEY_BY_HASH,
	DBS_BUDGET_USED,
	DBS_BUDGET_RESERVED,
	DBS_RESERVE,
	DBS_RPM_COUNT,
	DBS_RPM_HIT,
	DBS_RPM_PRUNE,
	DBS_UNRESERVE,
	DBS_KEY_PERIOD,
	DBS_CHARGE,
	DBS_CHARGE_HOLD,
	DBS_EXTEND,
	DBS_HOLD_ROW,
	DBS_DROP_ROW,
	DBS_HELD_OF,
	DBS_OVERSHOOT,
	DBS_BEGIN,
	DBS_COMMIT,
	DBS_SAVEPOINT,
	DBS_ROLLBACK_TO,
	DBS_RELEASE,
	DBS_NSLOTS
};

struct dbconn {
	struct dbconn		*next;
	struct sqlite3		*db;
	struct sqlite3_stmt	*st[DBS_NSLOTS];
	struct dbpool		*pool;
	int			 writing;	/* holds the pool's write lock */
	int64_t			 deadline_ms;	/* monotonic: the job's */
	dev_t			 dev;		/* the file it opened */
	ino_t			 ino;
};

/* Never fails but for memory: the database is opened on first use. */
struct dbpool	*dbpool_new(const char *path);
void		 dbpool_free(struct dbpool *);	/* NULL is fine */
const char	*dbpool_path(const struct dbpool *);

/*
 * A connection for this thread's job, due by "deadline_ms" (monotonic;
 * 0: DB_BUSY_TIMEOUT_MS from now): NULL with "err" set.
 */
struct dbconn	*dbpool_get(struct dbpool *, int64_t deadline_ms,
		    struct err *);
/*
 * As dbpool_get(), for a job that writes: the threads of this process
 * then take turns, and SQLite's busy handler, which sleeps a millisecond
 * and more at a time, is left for other processes.
 */
struct dbconn	*dbpool_get_writer(struct dbpool *, int64_t deadline_ms,
		    struct err *);
/* Give it back; one that "failed" is closed, not reused. */
void		 dbpool_put(struct dbpool *, struct dbconn *, int failed);

/*
 * Run "job" on a writer's connection inside a transaction that the jobs
 * of this process's other threads, queued meanwhile, share: one commit
 * (and its syncs) for all of them, each in a savepoint of its own, in
 * the order they came.  "job" returns 0 (kept), -1 with "err" set, or
 * another number (a refusal); all but 0 roll back what it did.  Returns
 * what "job" returned, or -1 with "err" set (beginning with the
 * database's path) if the job failed, the transaction did not commit or
 * the job was not run by "deadline_ms" (monotonic).
 */
int		 dbpool_batch(struct dbpool *, int64_t deadline_ms,
		    int (*job)(struct dbconn *, void *, struct err *),
		    void *arg, struct err *);

/*
 * The statement in "slot", prepared from "sql" the first time; reset and
 * with bindings cleared.  NULL with "err" set.
 */
struct sqlite3_stmt *dbconn_stmt(struct dbconn *, enum db_slot,
		    const char *sql, struct err *);
/*
 * BEGIN IMMEDIATE on a writer's connection: 0, or -1 with "err" set.
 * Until the connection is put back, readers of this process that its
 * lock keeps out wait for it to end rather than sleep.
 */
int		 dbconn_begin(struct dbconn *, struct err *);
/* COMMIT, prepared once: 0, or -1 with "err" set. */
int		 dbconn_commit(struct dbconn *, struct err *);
/*
 * Run the statement in "slot" (one without parameters or rows, such as
 * BEGIN or COMMIT), prepared once: 0, or -1 with "err" set.
 */
int		 dbconn_exec(struct dbconn *, enum db_slot, const char *sql,
		    struct err *);

#endif /* DBPOOL_H */
