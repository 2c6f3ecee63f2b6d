/*
 * Group commit.  Threads hand in jobs; the oldest waiting job's thread
 * runs every job waiting by then (up to BATCH_MAX) as one batch, through
 * the function the batch was made with, while those that come meanwhile
 * wait for the next.  One transaction, and one commit, for all of them:
 * what a database charges per commit (syncs, a lock held across a round
 * trip) is paid once per batch instead of once per job.
 */
#ifndef BATCH_H
#define BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_MAX	64

struct err;

/* A job handed in: what "run" reads and sets. */
struct batch_job {
	void		*arg;		/* the submitter's */
	struct err	*err;		/* ... where its error goes */
	int		 rc;		/* set by "run": -1 with "err" set */
};

/* Runs "n" jobs, in the order they came, by "deadline_ms" (monotonic). */
typedef void	 batch_run_fn(void *ctx, struct batch_job *const *jobs,
		    size_t n, int64_t deadline_ms);

/* For a "run" that kept nothing of any of them: each fails with "err". */
void		 batch_fail_all(struct batch_job *const *jobs, size_t n,
		    const struct err *err);

/* NULL if out of memory.  "name" (copied) begins its messages. */
struct batch	*batch_new(const char *name, batch_run_fn *run, void *ctx);
void		 batch_free(struct batch *);	/* NULL is fine */

/*
 * Hand in "arg" and wait for its batch to run: its "rc", or -1 with
 * "err" set if it was still waiting at "deadline_ms" (monotonic; then
 * it was not run).
 */
int		 batch_submit(struct batch *, void *arg, int64_t deadline_ms,
		    struct err *);

#endif /* BATCH_H */
