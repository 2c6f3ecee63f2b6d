#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "group.h"

#define SPARE_MAX	(1024 * 1024)	/* batch memory kept for reuse */

/* A thread waiting for its item to be written. */
struct waiter {
	struct waiter	*next;
	int		 done;
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
	void		*arg;
	pthread_mutex_t	 lock;
	pthread_cond_t	 written;
	int		 writing;	/* a thread is writing a batch */
	struct batch	 gathering;
	struct buf	 spare;		/* the last batch's memory, reused */
};

struct group *
group_new(group_write_fn write, void *arg)
{
	struct group	*g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->write = write;
	g->arg = arg;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->written, NULL);
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
	pthread_cond_destroy(&g->written);
	buf_free(&g->gathering.data);
	buf_free(&g->spare);
	free(g);
}

/*
 * With the lock held: write what was gathered, unlocked, and tell its
 * waiters.  Items handed in meanwhile gather in the spare buffer.
 */
static void
write_batch(struct group *g)
{
	struct batch	 b = g->gathering;
	struct waiter	*w;
	struct err	 err;
	int		 rc;

	g->writing = 1;
	g->gathering.data = g->spare;
	buf_reset(&g->gathering.data);
	g->gathering.waiters = NULL;
	pthread_mutex_unlock(&g->lock);

	rc = g->write(g->arg, b.data.data, b.data.len, &err);

	pthread_mutex_lock(&g->lock);
	for (w = b.waiters; w != NULL; w = w->next) {
		w->done = 1;
		if ((w->rc = rc) == -1)
			w->err = err;
	}
	if (b.data.cap > SPARE_MAX)
		buf_free(&b.data);	/* a burst's worth: let it go */
	g->spare = b.data;
	g->writing = 0;
	pthread_cond_broadcast(&g->written);
}

int
group_add(struct group *g, const struct iovec *iov, int n, struct err *err)
{
	struct waiter	 self;
	size_t		 len = 0;
	char		*p;
	int		 i;

	memset(&self, 0, sizeof(self));
	for (i = 0; i < n; i++)
		len += iov[i].iov_len;
	pthread_mutex_lock(&g->lock);
	if ((p = buf_space(&g->gathering.data, len)) == NULL) {
		pthread_mutex_unlock(&g->lock);
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
	while (!self.done) {
		if (g->writing)
			pthread_cond_wait(&g->written, &g->lock);
		else
			write_batch(g);
	}
	pthread_mutex_unlock(&g->lock);
	if (self.rc == -1)
		*err = self.err;
	return self.rc;
}
