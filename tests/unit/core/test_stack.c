/* A thread's stack pages given back below its frame, and nothing above. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/stack.h"
#include "../tap.h"

#define DEEP	(64 * 1024)	/* touched by a call, then left */

struct seen {
	int	 marked;
	size_t	 before;	/* resident pages below the frame */
	size_t	 after;		/* ... once given back */
	size_t	 again;		/* ... after the deep call once more */
	int	 kept;		/* a local above survived */
	int	 zeroed;	/* the deep call found its pages usable */
};

static uintptr_t	 low;	/* the thread's stack's lowest address */

/*
 * Touch DEEP bytes of stack; their sum, which must be DEEP.  alloca(), as
 * a sanitizer may move a local array to a stack of its own.
 */
static __attribute__((noinline)) long
deep_call(void)
{
	volatile char	*a = __builtin_alloca(DEEP);
	long		 sum = 0;
	size_t		 i;

	for (i = 0; i < DEEP; i++)
		a[i] = 1;
	for (i = 0; i < DEEP; i++)
		sum += a[i];
	return sum;
}

/* Resident pages from the stack's lowest address to "end". */
static size_t
resident(uintptr_t end)
{
	unsigned char	 vec[4096];
	size_t		 page = (size_t)sysconf(_SC_PAGESIZE), n, i, count = 0;

	n = (end - low) / page;
	if (n > sizeof(vec) || mincore((void *)low, n * page, vec) == -1)
		return (size_t)-1;
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	return count;
}

static __attribute__((noinline)) void
release_and_count(struct seen *s, uintptr_t end)
{
	stack_release();
	s->after = resident(end);
}

static void *
thread_main(void *arg)
{
	struct seen	*s = arg;
	volatile char	 mine[64];
	pthread_attr_t	 attr;
	void		*addr;
	size_t		 size, page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t	 end;

	memset((char *)mine, 'x', sizeof(mine));
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return NULL;
	pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	low = (uintptr_t)addr;
	/* Well below this frame and the two calls under it. */
	end = ((uintptr_t)__builtin_frame_address(0) - 4 * page) &
	    ~(page - 1);
	s->marked = stack_mark() == 0;
	if (deep_call() != DEEP)
		return NULL;
	s->before = resident(end);
	release_and_count(s, end);
	s->kept = mine[0] == 'x' && mine[sizeof(mine) - 1] == 'x';
	s->zeroed = deep_call() == DEEP;
	s->again = resident(end);
	return NULL;
}

int
main(void)
{
	pthread_attr_t	 attr;
	pthread_t	 t;
	struct seen	 s;

	memset(&s, 0, sizeof(s));
	stack_release();
	ok(1, "an unmarked thread (main) releases nothing, and goes on");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	ok(pthread_create(&t, &attr, thread_main, &s) == 0, "thread started");
	pthread_attr_destroy(&attr);
	pthread_join(t, NULL);
	ok(s.marked, "a thread's stack is marked");
	ok(s.before >= 8 && s.before != (size_t)-1,
	    "a deep call leaves pages resident below the frame (%zu)",
	    s.before);
	is_int(s.after, 0, "stack_release() gives them all back");
	ok(s.kept, "the frames above are untouched");
	ok(s.zeroed, "a deep call works on the given-back pages");
	ok(s.again >= 8 && s.again != (size_t)-1,
	    "... and they are resident again (%zu)", s.again);
	return done_testing();
}
