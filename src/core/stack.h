/*
 * A thread's stack pages given back while it waits.
 *
 * A worker that holds a stream sleeps for most of its life a few frames
 * deep, but its stack keeps every page its deepest call ever touched
 * (parsing the request, the database): with ten thousand open streams,
 * ten thousand such pages.  stack_release() hands the kernel the pages
 * below the caller's frame; the next deep call finds them again, zeroed,
 * at the cost of a page fault each.
 */
#ifndef STACK_H
#define STACK_H

/*
 * Note where the calling thread's stack ends, for stack_release(): 0, or
 * -1 if it cannot be told (then stack_release() does nothing for it).
 * For threads whose stacks were made by pthread_create(), not the main
 * thread's, which grows on demand.
 */
int	 stack_mark(void);

/* Give back the calling thread's stack pages below the caller's frame. */
void	 stack_release(void);

#endif /* STACK_H */
