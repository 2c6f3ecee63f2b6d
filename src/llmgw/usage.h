/*
 * Usage rows (store/ledger.h), written by a thread of their own: as many
 * rows as wait go in one transaction, so a request pays for a copy, not a
 * commit.  A row that cannot be written now (the database is locked, gone,
 * read-only, full) waits in memory and is written when the database
 * allows, oldest first; the writer tries again after 50 ms, then less and
 * less often, down to once a second.  Past twice the backlog bound a row
 * is not kept: it goes whole to the log, and is counted; its spool record
 * has it too, for llmgw-spoold to write.
 */
#ifndef USAGE_H
#define USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct store;
struct metrics;
struct record;
struct usage;

/*
 * The usage rows of database "db", counted in "metrics" (both borrowed;
 * "metrics" may be NULL), at most "max" waiting before usage_full() says
 * so.  NULL with "err" set if its thread cannot start.
 */
struct usage	*usage_open(struct store *db, struct metrics *metrics,
		    size_t max, struct err *);
/*
 * Write what is queued, one last try, then stop; rows that could not be
 * written go whole to the log.  NULL is fine.
 */
void		 usage_close(struct usage *);

/* Queue one row ("rec" is copied).  Thread-safe; never waits. */
void	 usage_add(struct usage *, const struct record *rec);

/*
 * Wait until the rows queued so far are written: 0, or -1 as soon as the
 * writer fails (they then wait in memory).
 */
int	 usage_sync(struct usage *);

struct usage_state {
	size_t		 backlog;	/* rows not yet written */
	int		 full;		/* backlog at the bound */
	int64_t		 failing_ms;	/* failing for this long; 0: not */
	char		 error[ERR_MAX];	/* the last failure, if failing */
};

void	 usage_state(struct usage *, struct usage_state *);

#endif /* USAGE_H */
