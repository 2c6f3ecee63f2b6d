/*
 * A thread's stack pages given back while it waits (stack.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stack.h"

/*
 * Kept below the caller's frame: stack_release()'s own frame and
 * madvise()'s, which are far smaller.
 */
#define STACK_SLACK	1024

/* The lowest usable address of this thread's stack; 0: not marked. */
static _Thread_local uintptr_t	 stack_low;

int
stack_mark(void)
{
	pthread_attr_t	 attr;
	void		*addr;
	size_t		 size;
	int		 rc;

	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return -1;
	rc = pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -1;
	stack_low = (uintptr_t)addr;
	return 0;
}

void
stack_release(void)
{
	uintptr_t	 page, end;

	if (stack_low == 0)
		return;
	/* The frame's address, not a local's: a sanitizer may keep locals
	 * on a stack of its own, elsewhere. */
	page = (uintptr_t)sysconf(_SC_PAGESIZE);
	end = ((uintptr_t)__builtin_frame_address(0) - STACK_SLACK) &
	    ~(page - 1);
	/* Unused pages are zeroed on the next touch; an error changes
	 * nothing, and there is nothing to be done about it. */
	if (end > stack_low)
		(void)madvise((void *)stack_low, end - stack_low,
		    MADV_DONTNEED);
}
