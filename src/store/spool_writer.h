/*
 * The responder's side of the spool (see spool.h): records appended to a
 * segment file that many writes share.
 */
#ifndef SPOOL_WRITER_H
#define SPOOL_WRITER_H

#include <stddef.h>

struct err;
struct spool;

/*
 * Write one record, "len" bytes of JSON on one line.  Thread-safe: each
 * record is appended, with one write(2), to the open segment,
 * tmp/<id>.seg, which the closer thread syncs (if the spool syncs) 10 ms
 * after the first write it has not synced, and moves into new/ as <id>
 * 20 ms after a write that no other followed, or once it is 1 s old or
 * holds 1 MB (so a file holds one or more records, one per line, under a
 * time-ordered name).  Returns once the record is in the segment, so a
 * crash of the process cannot lose it (a power loss, only if it was
 * written in the last 10 ms): 0, or -1 with "err" set (counted; see
 * spool_failures()), in which case it is not there.  A failed sync is
 * counted too.  Not across fork(): the closer is a thread.
 */
int	 spool_put(struct spool *, const char *data, size_t len,
	    struct err *);

#endif /* SPOOL_WRITER_H */
