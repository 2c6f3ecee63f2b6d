/*
 * Exact token budgets and request rates per key, across threads and
 * processes.
 *
 * Before a request calls the upstream, budget_reserve() holds an upper
 * bound of what it can cost against the key's budget for the current
 * period, and counts it against the key's requests per minute, in one
 * BEGIN IMMEDIATE transaction: of two requests racing for the last
 * tokens, one gets them.  When the request ends, budget_settle() turns the
 * reservation into what it really used.  Since a reservation is never
 * less than the real cost, the settled total never exceeds the budget.
 *
 * A reservation names the process that made it (pid and start time); one
 * whose process died, or that is older than it can be, is released.
 */
#ifndef BUDGET_H
#define BUDGET_H

#include <stddef.h>
#include <stdint.h>

struct dbpool;
struct err;
struct key;
struct sqlite3;

struct reservation {
	char	 id[40];		/* "": nothing held */
	char	 key_id[24];
	char	 period[12];
	long	 tokens;
};

enum budget_verdict {
	BUDGET_OK = 0,
	BUDGET_RATE,		/* requests per minute reached */
	BUDGET_SPENT,		/* the tokens are not there */
	BUDGET_ERROR
};

/*
 * Hold "tokens" of key "k"'s budget (if it has one) for at most "hold_ms",
 * and count one request against its rpm (if it has a limit).  On
 * BUDGET_RATE and BUDGET_SPENT "*retry_after" is the seconds until it may
 * work; on BUDGET_ERROR "err" says why.  "resv" is filled on BUDGET_OK.
 */
enum budget_verdict budget_reserve(struct dbpool *, const struct key *k,
	    long tokens, long hold_ms, struct reservation *resv,
	    long *retry_after, struct err *);

/*
 * Replace the reservation by "used" tokens, and empty "resv".  Returns 0,
 * or -1 with "err" set (the reservation is then released later).
 */
int	 budget_settle(struct dbpool *, struct reservation *resv, long used,
	    struct err *);

/* Release reservations of dead processes or past their time. */
long	 budget_reclaim(struct sqlite3 *, struct err *);

/*
 * The period of kind "day" or "month" holding "now_ms" (UTC), as
 * "2026-11-24" or "2026-11", and the seconds until it ends.
 */
void	 budget_period(const char *kind, int64_t now_ms, char *out,
	    size_t size, long *secs_left);

/* Tokens settled and held in key "id"'s current period: 0 or -1. */
int	 budget_spent(struct sqlite3 *, const struct key *, long *settled,
	    long *held, struct err *);

#endif /* BUDGET_H */
