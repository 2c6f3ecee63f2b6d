#include "config.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "group.h"

#define SPARE_MAX	(1024 * 1024)	/* batch memory kept for reuse */

/*
 * A thread waiting for its item to be written, or for its turn to write:
 * each on a semaphore of its own, so a write wakes exactly the threads it
 * concerns, without a herd that then queues on the lock.
 */
struct waiter {
	struct waiter	*next;
	sem_t		 wake;
	int		 lead;		/* woken to write the next batch */
	int		 rc;
	struct err	 err;
};

/* The items gathered for one write, and who waits for them. */
struct batch {
	struct buf	 data;
	struct waiter	*waiters;
};

struct group {
	group_write_fn	 write;
	group_quiet_fn	 quiet;
	void		*arg;
	pthread_mutex_t	 lock;
	int		 writing;	/* a thread writes, or is about to */
	struct batch	 gathering;
	struct buf	 spare;		/* the last batch's memory, reused */
};

struct group *
group_new(group_write_fn write, group_quiet_fn quiet, void *arg)
{
	struct group	*g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->write = write;
	g->quiet = quiet;
	g->arg = arg;
	pthread_mutex_init(&g->lock, NULL);
	buf_init(&g->gathering.data, 0);
	buf_init(&g->spare, 0);
	return g;
}

void
group_free(struct group *g)
{
	if (g == NULL)
		return;
	pthread_mutex_destroy(&g->lock);
	buf_free(&g->gathering.data);
	buf_free(&g->spare);
	free(g);
}

/*
 * With the lock held and "writing" ours: write what was gathered, then
 * hand the next write to one of those who gathered meanwhile, and tell
 * this write's waiters how it went ("self" among them).  Returns
 * unlocked.
 */
static void
write_batch(struct group *g, struct waiter *self)
{
	struct batch	 b = g->gathering;
	struct waiter	*w, *next, *lead;
	struct err	 err;
	int		 rc;

	g->gathering.data = g->spare;
	buf_reset(&g->gathering.data);
	g->gathering.waiters = NULL;
	pthread_mutex_unlock(&g->lock);

	rc = g->write(g->arg, b.data.data, b.data.len, &err);

	pthread_mutex_lock(&g->lock);
	if (g->gathering.waiters == NULL && g->quiet != NULL) {
		pthread_mutex_unlock(&g->lock);
		g->quiet(g->arg);	/* "writing" is still ours */
		pthread_mutex_lock(&g->lock);
	}
	if ((lead = g->gathering.waiters) != NULL)
		lead->lead = 1;		/* "writing" passes to it */
	else
		g->writing = 0;
	if (b.data.cap > SPARE_MAX)
		buf_free(&b.data);	/* a burst's worth: let it go */
	g->spare = b.data;
	pthread_mutex_unlock(&g->lock);

	for (w = b.waiters; w != NULL; w = next) {
		next = w->next;		/* "w" may be gone once woken */
		w->rc = rc;
		if (rc == -1)
			w->err = err;
		if (w != self)
			sem_post(&w->wake);
	}
	if (lead != NULL)
		sem_post(&lead->wake);
}

int
group_add(struct group *g, const struct iovec *iov, int n, struct err *err)
{
	struct waiter	 self;
	size_t		 len = 0;
	char		*p;
	int		 i, rc;

	for (i = 0; i < n; i++)
		len += iov[i].iov_len;
	memset(&self, 0, sizeof(self));
	sem_init(&self.wake, 0, 0);
	pthread_mutex_lock(&g->lock);
	if ((p = buf_space(&g->gathering.data, len)) == NULL) {
		pthread_mutex_unlock(&g->lock);
		sem_destroy(&self.wake);
		err_set(err, "out of memory gathering a write");
		return -1;
	}
	for (i = 0; i < n; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	buf_commit(&g->gathering.data, len);
	self.next = g->gathering.waiters;
	g->gathering.waiters = &self;
	/* Whoever finds no write going writes; the rest wait their turn. */
	if (g->writing) {
		pthread_mutex_unlock(&g->lock);
		while (sem_wait(&self.wake) == -1)
			;	/* EINTR */
		if (!self.lead)
			goto done;	/* written, by another */
		pthread_mutex_lock(&g->lock);
	}
	g->writing = 1;
	write_batch(g, &self);
done:
	sem_destroy(&self.wake);
	if ((rc = self.rc) == -1)
		*err = self.err;
	return rc;
}
