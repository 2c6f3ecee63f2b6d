/*
 * Group commit.  Threads hand in items to be written; one of them at a
 * time writes, in one call, every item handed in since the last write,
 * while the others wait for theirs.  For work that costs per write rather
 * than per item (an fsync, a transaction): alone, an item is written at
 * once; under load, the items per write grow and the cost per item falls.
 */
#ifndef GROUP_H
#define GROUP_H

#include <stddef.h>
#include <sys/uio.h>

struct err;
struct group;

/*
 * Write "len" bytes of items, as handed in, one after another: 0, or -1
 * with "err" set, which every item of the write then reports.
 */
typedef int	(*group_write_fn)(void *arg, const char *data, size_t len,
		    struct err *);

/*
 * Called, with the turn to write still held, when a write ends and no
 * item waits for the next: the moment to finish what writes left open.
 */
typedef void	(*group_quiet_fn)(void *arg);

/* "quiet" may be NULL.  NULL if out of memory. */
struct group	*group_new(group_write_fn, group_quiet_fn quiet, void *arg);
void		 group_free(struct group *);	/* NULL is fine */

/*
 * Hand in one item, the "n" pieces of "iov" one after another, and return
 * once it is written: 0, or -1 with "err" set.  Thread-safe.
 */
int	 group_add(struct group *, const struct iovec *iov, int n,
	    struct err *);

#endif /* GROUP_H */
