/*
 * The usage ledger: one row in the usage table per request that reached
 * the upstream, named by its record id, and what the row settles (the
 * budget the request held becomes what it used).  llmgw writes a row once
 * the client has its answer; llmgw-spoold writes it again from the spool
 * record, which is durable before the answer ends, so a row llmgw did not
 * get to write (it was killed, its database was down) is there once the
 * record is delivered.  Whichever writes first settles; the other finds
 * the row there and changes nothing.
 */
#ifndef LEDGER_H
#define LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct dbpool;
struct err;
struct record;

/*
 * The rows of "n" records "rows" (those that did not reach the upstream
 * are passed over), in one transaction, waiting for the database until
 * "deadline_ms" (monotonic; 0 for the default).  Returns how many rows
 * were new, or -1 with "err" set (then none was written).
 */
long	 ledger_write(struct dbpool *, const struct record *rows, size_t n,
	    int64_t deadline_ms, struct err *);

/*
 * A real write (the health table's one row), to prove the database takes
 * one before "deadline_ms": 0, or -1 with "err" set.
 */
int	 ledger_probe(struct dbpool *, int64_t deadline_ms, struct err *);

#endif /* LEDGER_H */
