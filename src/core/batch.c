#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "err.h"

/*
 * A job and its place in the queue; on its submitter's stack.  Each has
 * its own wake-up: a batch's end wakes the jobs it ran and the one that
 * runs the next, not every job that waits.
 */
struct waiting {
	struct batch_job job;
	struct waiting	*next;
	pthread_cond_t	 wake;
	int		 taken;		/* in the batch that runs */
	int		 done;
};

struct batch {
	char		*name;
	batch_run_fn	*run;
	void		*ctx;
	pthread_mutex_t	 lock;
	pthread_condattr_t monotonic;	/* for each job's wake-up */
	struct waiting	*queue;		/* oldest first */
	int		 running;
};

void
batch_fail_all(struct batch_job *const *jobs, size_t n, const struct err *err)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		jobs[i]->rc = -1;
		*jobs[i]->err = *err;
	}
}

struct batch *
batch_new(const char *name, batch_run_fn *run, void *ctx)
{
	struct batch	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if ((b->name = strdup(name)) == NULL) {
		free(b);
		return NULL;
	}
	b->run = run;
	b->ctx = ctx;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&b->monotonic);
	pthread_condattr_setclock(&b->monotonic, CLOCK_MONOTONIC);
	return b;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_condattr_destroy(&b->monotonic);
	free(b->name);
	free(b);
}

/* With the lock held: take "w" out of the queue. */
static void
leave_locked(struct batch *b, struct waiting *w)
{
	struct waiting	**pp;

	for (pp = &b->queue; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

int
batch_submit(struct batch *b, void *arg, int64_t deadline_ms,
    struct err *err)
{
	struct waiting	 self = { { arg, err, -1 }, NULL,
			    PTHREAD_COND_INITIALIZER, 0, 0 };
	struct waiting	*taken[BATCH_MAX], **pp;
	struct batch_job *jobs[BATCH_MAX];
	struct timespec	 until;
	size_t		 n, i;
	int		 timedout = 0;

	until = clock_after_ms(CLOCK_MONOTONIC, deadline_ms - clock_mono_ms());
	pthread_cond_init(&self.wake, &b->monotonic);
	pthread_mutex_lock(&b->lock);
	for (pp = &b->queue; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = &self;
	while (!self.done && (b->running || b->queue != &self)) {
		if (self.taken) {
			/* Its batch runs: the end is what we wait for, and
			 * the batch ends by its own deadline. */
			pthread_cond_wait(&self.wake, &b->lock);
			continue;
		}
		if (pthread_cond_timedwait(&self.wake, &b->lock, &until) ==
		    ETIMEDOUT && !self.taken) {
			leave_locked(b, &self);
			timedout = 1;
			break;
		}
	}
	if (self.done || timedout) {
		pthread_mutex_unlock(&b->lock);
		pthread_cond_destroy(&self.wake);
		if (timedout)
			err_set(err, "%s: this process's other writers held "
			    "it past the deadline", b->name);
		return self.job.rc;
	}
	/* The oldest waiting: ours is the next batch. */
	for (n = 0; n < BATCH_MAX && b->queue != NULL; n++) {
		taken[n] = b->queue;
		b->queue = taken[n]->next;
		taken[n]->taken = 1;
		jobs[n] = &taken[n]->job;
	}
	b->running = 1;
	pthread_mutex_unlock(&b->lock);

	b->run(b->ctx, jobs, n, deadline_ms);

	/* Each waits for the lock to leave the wait: its wake-up, on its
	 * stack, is there until we let go. */
	pthread_mutex_lock(&b->lock);
	for (i = 0; i < n; i++) {
		taken[i]->done = 1;
		pthread_cond_signal(&taken[i]->wake);
	}
	b->running = 0;
	if (b->queue != NULL)
		pthread_cond_signal(&b->queue->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_cond_destroy(&self.wake);
	return self.job.rc;
}
