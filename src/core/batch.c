#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "err.h"

/* A job and its place in the queue; on its submitter's stack. */
struct waiting {
	struct batch_job job;
	struct waiting	*next;
	int		 taken;		/* in the batch that runs */
	int		 done;
};

struct batch {
	char		*name;
	batch_run_fn	*run;
	void		*ctx;
	pthread_mutex_t	 lock;
	pthread_cond_t	 changed;	/* a batch ended, or a job left */
	struct waiting	*queue;		/* oldest first */
	int		 running;
};

struct batch *
batch_new(const char *name, batch_run_fn *run, void *ctx)
{
	struct batch	*b;
	pthread_condattr_t attr;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if ((b->name = strdup(name)) == NULL) {
		free(b);
		return NULL;
	}
	b->run = run;
	b->ctx = ctx;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&b->changed, &attr);
	pthread_condattr_destroy(&attr);
	return b;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->changed);
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
	struct waiting	 self = { { arg, err, -1 }, NULL, 0, 0 };
	struct waiting	*taken[BATCH_MAX], **pp;
	struct batch_job *jobs[BATCH_MAX];
	struct timespec	 until;
	size_t		 n, i;

	until = clock_after_ms(CLOCK_MONOTONIC, deadline_ms - clock_mono_ms());
	pthread_mutex_lock(&b->lock);
	for (pp = &b->queue; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = &self;
	while (!self.done && (b->running || b->queue != &self)) {
		if (self.taken) {
			/* Its batch runs: the end is what we wait for, and
			 * the batch ends by its own deadline. */
			pthread_cond_wait(&b->changed, &b->lock);
			continue;
		}
		if (pthread_cond_timedwait(&b->changed, &b->lock, &until) ==
		    ETIMEDOUT && !self.taken) {
			leave_locked(b, &self);
			pthread_cond_broadcast(&b->changed);
			pthread_mutex_unlock(&b->lock);
			err_set(err, "%s: this process's other writers held "
			    "it past the deadline", b->name);
			return -1;
		}
	}
	if (self.done) {
		pthread_mutex_unlock(&b->lock);
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

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < n; i++)
		taken[i]->done = 1;
	b->running = 0;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&b->lock);
	return self.job.rc;
}
