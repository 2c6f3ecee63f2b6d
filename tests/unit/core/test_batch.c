/*
 * Group commit: a job alone runs alone; jobs handed in while a batch
 * runs make the next one, in the order they came, at most BATCH_MAX;
 * a job still waiting at its deadline fails, saying so, and never runs.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/batch.h"
#include "core/clock.h"
#include "core/err.h"
#include "../tap.h"

#define THREADS		(BATCH_MAX + 6)

static atomic_int	 entered;	/* threads about to hand in */
static int		 runs, largest, in_order = 1, ran[THREADS];
static int		 hold_first = 1;	/* the first run waits */

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Jobs are ints: their number; each returns it.  Runs one at a time. */
static void
run(void *ctx, struct batch_job *const *jobs, size_t n, int64_t deadline_ms)
{
	size_t	 i;
	int	 waited;

	(void)ctx;
	(void)deadline_ms;
	if (hold_first) {
		hold_first = 0;
		for (waited = 0; atomic_load(&entered) < THREADS &&
		    waited < 20000; waited += 10)
			sleep_ms(10);
		sleep_ms(300);	/* ... and for them to be queued */
	}
	runs++;
	if ((int)n > largest)
		largest = (int)n;
	for (i = 0; i < n; i++) {
		int	 v = *(int *)jobs[i]->arg;

		if (i > 0 && v != -1 && *(int *)jobs[i - 1]->arg > v)
			in_order = 0;
		if (v >= 0)
			ran[v]++;
		jobs[i]->rc = v;
	}
}

struct hand_in {
	struct batch	*b;
	int		 v;
	long		 wait_ms;
	int		 rc;
	struct err	 err;
};

static void *
hand_in(void *arg)
{
	struct hand_in	*h = arg;

	atomic_fetch_add(&entered, 1);
	h->rc = batch_submit(h->b, &h->v, clock_mono_ms() + h->wait_ms,
	    &h->err);
	return NULL;
}

int
main(void)
{
	struct hand_in	 first, hs[THREADS];
	pthread_t	 ft, ts[THREADS];
	struct batch	*b;
	struct err	 err;
	int		 i, v = 7, kept;

	b = batch_new("test", run, NULL);
	ok(b != NULL, "made");

	hold_first = 0;
	is_int(batch_submit(b, &v, clock_mono_ms() + 1000, &err), 7,
	    "a job alone runs, its rc returned");
	is_int(runs, 1, "... in a batch of its own");
	is_int(largest, 1, "... of one");

	/* The first holds its batch while the others queue: one of them
	 * (number 2) gives up after 100 ms. */
	runs = largest = 0;
	memset(ran, 0, sizeof(ran));
	hold_first = 1;
	atomic_store(&entered, 0);
	first.b = b;
	first.v = -1;
	first.wait_ms = 10000;
	pthread_create(&ft, NULL, hand_in, &first);
	while (atomic_load(&entered) < 1)
		sleep_ms(1);
	sleep_ms(50);
	atomic_store(&entered, 0);
	for (i = 0; i < THREADS; i++) {
		hs[i].b = b;
		hs[i].v = i;
		hs[i].wait_ms = i == 2 ? 100 : 10000;
		pthread_create(&ts[i], NULL, hand_in, &hs[i]);
		/* One after another, so that their order is known. */
		while (atomic_load(&entered) < i + 1)
			sleep_ms(1);
		sleep_ms(2);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(ts[i], NULL);
	pthread_join(ft, NULL);

	is_int(first.rc, -1, "the first ran");
	is_int(hs[2].rc, -1, "a job waiting past its deadline fails");
	ok(strcmp(hs[2].err.msg, "test: this process's other writers held it "
	    "past the deadline") == 0, "... saying so: %s", hs[2].err.msg);
	is_int(ran[2], 0, "... and never ran");
	for (i = kept = 0; i < THREADS; i++)
		kept += i != 2 && hs[i].rc == i && ran[i] == 1;
	is_int(kept, THREADS - 1, "every other job ran once, its rc returned");
	is_int(largest, BATCH_MAX, "jobs that came meanwhile ran together, "
	    "at most BATCH_MAX at once");
	is_int(runs, 3, "in three batches: the first, %d, the rest",
	    BATCH_MAX);
	ok(in_order, "in the order they came");

	batch_free(b);
	batch_free(NULL);
	return done_testing();
}
