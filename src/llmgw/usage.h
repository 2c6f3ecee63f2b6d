/*
 * Token usage in SQLite: one row per request that reached the upstream.
 * Rows are written by a thread of their own, as many as wait in one
 * transaction, so a request pays for a copy, not a commit.  A row that
 * cannot be stored is counted (llmgw_usage_write_failures_total) and goes,
 * whole, to the log; the spool record of the request has it too.
 */
#ifndef USAGE_H
#define USAGE_H

struct dbpool;
struct err;
struct metrics;
struct record;
struct usage;

/*
 * The usage rows of database "db", failures counted in "metrics" (both
 * borrowed; "metrics" may be NULL).  NULL with "err" set if its thread
 * cannot start.
 */
struct usage	*usage_open(struct dbpool *db, struct metrics *metrics,
		    struct err *);
/* Write what is queued, then stop.  NULL is fine. */
void		 usage_close(struct usage *);

/* Queue one row ("rec" is copied).  Thread-safe; waits only if 4,096 rows
 * are queued already. */
void	 usage_add(struct usage *, const struct record *rec);

/* Wait until the rows queued so far are written (or given up on). */
void	 usage_sync(struct usage *);

/* A real write to prove the database is usable: 0, or -1 with "err". */
int	 usage_check(struct dbpool *, struct err *);

#endif /* USAGE_H */
