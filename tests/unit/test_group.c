#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "group.h"
#include "tap.h"

#define THREADS	8

/* What the writes saw: how many, and the items in each. */
static pthread_mutex_t	 seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int		 writes, items, most;
static int		 busy, quiets, overlaps;	/* writes and quiets */

/*
 * Items are single letters.  The first write dawdles so that the others
 * gather behind it; a write holding an "x" fails.
 */
static int
write_items(void *arg, const char *data, size_t len, struct err *err)
{
	int	 first;

	(void)arg;
	pthread_mutex_lock(&seen_lock);
	overlaps += busy++ > 0;
	first = writes++ == 0;
	items += (int)len;
	if ((int)len > most)
		most = (int)len;
	pthread_mutex_unlock(&seen_lock);
	if (first)
		usleep(100 * 1000);
	pthread_mutex_lock(&seen_lock);
	busy--;
	pthread_mutex_unlock(&seen_lock);
	if (memchr(data, 'x', len) != NULL) {
		err_set(err, "a write with x in it: %.*s", (int)len, data);
		return -1;
	}
	return 0;
}

/* Nothing waits: counted, and never while a write is under way. */
static void
quiet(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&seen_lock);
	overlaps += busy > 0;
	quiets++;
	pthread_mutex_unlock(&seen_lock);
}

static void
first_write_begun(void)
{
	int	 n;

	do {
		usleep(1000);
		pthread_mutex_lock(&seen_lock);
		n = writes;
		pthread_mutex_unlock(&seen_lock);
	} while (n == 0);
}

struct adder {
	struct group	*g;
	char		 item;
	int		 rc;
	struct err	 err;
};

static void *
add(void *arg)
{
	struct adder	*a = arg;
	struct iovec	 iov = { &a->item, 1 };

	a->rc = group_add(a->g, &iov, 1, &a->err);
	return NULL;
}

int
main(void)
{
	struct group	*g;
	struct adder	 a[THREADS];
	pthread_t	 t[THREADS];
	struct iovec	 iov[2];
	struct err	 err;
	int		 i, failed = 0;

	g = group_new(write_items, quiet, NULL);
	ok(g != NULL, "a group");
	iov[0].iov_base = (void *)"a";
	iov[0].iov_len = 1;
	iov[1].iov_base = (void *)"b";
	iov[1].iov_len = 1;
	ok(group_add(g, iov, 2, &err) == 0 && writes == 1 && items == 2,
	    "alone: written at once, its pieces together");
	is_int(quiets, 1, "and then nothing waits: quiet");

	/* One write under way: the rest gather and go in the next. */
	writes = items = most = quiets = 0;
	for (i = 0; i < THREADS; i++) {
		a[i].g = g;
		a[i].item = (char)('c' + i);
		pthread_create(&t[i], NULL, add, &a[i]);
		if (i == 0)
			first_write_begun();
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failed += a[i].rc != 0;
	}
	is_int(failed, 0, "%d at once: all written", THREADS);
	is_int(items, THREADS, "each once");
	ok(writes < THREADS && most > 1, "together: %d writes, up to %d items "
	    "in one", writes, most);
	ok(quiets >= 1 && quiets < writes, "quiet only when nothing waits "
	    "(%d times in %d writes)", quiets, writes);
	is_int(overlaps, 0, "one write or quiet at a time");

	/* A write that fails fails every item in it, with its reason. */
	writes = 0;
	for (i = 0; i < THREADS; i++) {
		a[i].item = i == 3 ? 'x' : (char)('c' + i);
		pthread_create(&t[i], NULL, add, &a[i]);
		if (i == 0)
			first_write_begun();
	}
	failed = 0;
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (a[i].rc == -1) {
			failed++;
			if (strstr(a[i].err.msg, "a write with x") == NULL)
				failed = -100;
		}
	}
	ok(a[3].rc == -1, "the item whose write failed: -1");
	ok(failed >= 1 && failed < THREADS, "so did the items written with it, "
	    "with the reason, and only they (%d of %d)", failed, THREADS);
	group_free(g);
	group_free(NULL);
	return done_testing();
}
