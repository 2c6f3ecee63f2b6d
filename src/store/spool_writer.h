/*
 * The responder's side of the spool (see spool.h): records appended to a
 * segment file that many writes share.
 */
#ifndef SPOOL_WRITER_H
#define SPOOL_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct spool;

/*
 * Write one record, "len" bytes of JSON on one line.  Thread-safe: each
 * record is appended, with one write(2), to the open segment,
 * tmp/<id>.seg, which the closer thread syncs (if the spool syncs) 10 ms
 * after the first write it has not synced, and moves into new/ as <id>
 * 20 ms after a write that no other followed, or once it is 1 s old or
 * holds 1 MB (so a file holds one or more records, one per line, under a
 * time-ordered name).  Returns 0 once the record is in the segment, so a
 * crash of the process cannot lose it (a power loss, only if it was
 * written in the last 10 ms).
 *
 * A record that cannot be written (the disk is full, the folder gone) is
 * kept in memory, with those after it, and the closer writes them, in
 * order, once it can: it tries after 50 ms, then less and less often, down
 * to once a second.  Returns 1 then.  Up to twice the bound set with
 * spool_keep() (records), and 128 MB, are kept; past that, and if the
 * bound is 0, the record is not: -1 with "err" set.  Failed writes are
 * counted (spool_failures()).  Not across fork(): the closer is a thread.
 */
int	 spool_put(struct spool *, const char *data, size_t len,
	    struct err *);

/* Keep up to "max" records in memory before spool_backlog() says full. */
void	 spool_keep(struct spool *, size_t max);

struct spool_backlog {
	size_t		 records;	/* waiting in memory */
	size_t		 bytes;
	int		 full;		/* "max" records, or 64 MB */
	int64_t		 failing_ms;	/* writes failing for this long; 0 */
};

void	 spool_backlog(struct spool *, struct spool_backlog *);

#endif /* SPOOL_WRITER_H */
