/*
 * Exact token budgets and request rates per key, across threads and
 * processes.
 *
 * Before a request calls the upstream, budget_reserve() holds an upper
 * bound of what it can cost against the key's budget for the current
 * period, and counts it against the key's requests per minute, in one
 * BEGIN IMMEDIATE transaction: of two requests racing for the last
 * tokens, one gets them.  The holds that this process's threads ask for
 * meanwhile share that transaction, one after another, each in a
 * savepoint of its own (dbpool_batch()): one commit for all of them.  The reservation is named by the request's
 * record id; the usage row of that record (ledger.h) replaces it by what
 * the request really used, in one transaction.  Since a reservation is
 * never less than the real cost, the settled total never exceeds the
 * budget.
 *
 * A reservation names the process that made it (pid and start time); one
 * whose process died, or that is older than it can be, is released.
 */
#ifndef BUDGET_H
#define BUDGET_H

#include <stddef.h>
#include <stdint.h>

struct dbconn;
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

/* What a request asks for. */
struct budget_claim {
	const char	*id;		/* its record id: the reservation's */
	const char	*route;		/* for the row of a hold charged */
	const char	*model;		/* ... "" if not known */
	int64_t		 ts_ms;		/* when it came (Unix ms): its period */
	long		 tokens;	/* the most it can cost */
	long		 min_tokens;	/* if that is not there, the least
					 * worth holding (0: all or nothing) */
	long		 hold_ms;	/* how long they may be held at most */
	int64_t		 deadline_ms;	/* monotonic: no waiting past it */
};

/* What a key has left, as the x-ratelimit-* headers tell its client. */
struct budget_left {
	long	 requests_limit;	/* its rpm; -1: no limit (the rest
					 * of these three unset) */
	long	 requests_left;		/* after this request */
	long	 requests_reset;	/* seconds until the oldest request
					 * of the minute leaves it */
	long	 tokens_limit;		/* its budget; -1: none (likewise) */
	long	 tokens_left;		/* after this request's hold */
	long	 tokens_reset;		/* seconds until the period ends */
};

/* What a store read of a key, in the transaction that decides. */
struct budget_seen {
	int64_t	 used;		/* tokens settled in the claim's period */
	int64_t	 held;		/* ... and held by running requests */
	long	 period_left;	/* seconds until the period ends */
	int64_t	 count;		/* requests in the minute before now */
	int64_t	 oldest;	/* the first of them (Unix ms) */
};

/*
 * Empty "resv" and "left" for a reservation of key "k": 1 if the key has
 * nothing to hold or count (no budget, no rate), 0 if it does.
 */
int	 budget_start(const struct key *k, struct reservation *resv,
	    struct budget_left *left);

/*
 * The verdict on "claim" of key "k", from what its store "seen" at "now"
 * (Unix ms), the same for every store: 0 hold "*tokens" of its budget
 * (if it has one) and count the request; 1 its requests per minute are
 * reached; 2 the tokens are not there.  "left" is filled; on 1 and 2,
 * "*retry_after" says when to come back.
 */
int	 budget_decide(const struct key *k, const struct budget_claim *claim,
	    const struct budget_seen *seen, int64_t now,
	    struct budget_left *left, long *retry_after, long *tokens);

/*
 * Hold the claim's tokens of key "k"'s budget (if it has one), and count
 * one request against its rpm (if it has a limit).  On BUDGET_RATE and
 * BUDGET_SPENT "*retry_after" is the seconds until it may work; on
 * BUDGET_ERROR "err" says why.  "resv" is filled on BUDGET_OK ("" id if
 * nothing is held), and "left" on every verdict but BUDGET_ERROR.
 */
enum budget_verdict budget_reserve(struct dbpool *, const struct key *k,
	    const struct budget_claim *, struct reservation *resv,
	    struct budget_left *left, long *retry_after, struct err *);

/*
 * Let go of what "resv" holds, for a request that will have no usage
 * row, and empty it.  0, or -1 with "err" set (it is then released once
 * its time is up).
 */
int	 budget_release(struct dbpool *, struct reservation *resv,
	    struct err *);

/*
 * Within a transaction on "c": drop reservation "id" (if there is one),
 * and add "tokens" to key "key_id"'s budget use in the period that holds
 * "ts_ms" (if the key has a budget).  0, or -1 with "err" set.
 */
int	 budget_unreserve(struct dbconn *c, const char *id, struct err *);
int	 budget_charge(struct dbconn *c, const char *key_id, int64_t ts_ms,
	    long tokens, struct err *);

/*
 * Grow hold "resv" of key "k", for a request whose running cost has
 * passed it: to "want" tokens if the budget has room, else to all the
 * room there is if that is at least "need".  BUDGET_OK (resv->tokens
 * then says how much), BUDGET_SPENT if there is not even "need", or
 * BUDGET_ERROR with "err" set.  Waits for the database until
 * "deadline_ms".
 */
enum budget_verdict budget_extend(struct dbpool *, const struct key *k,
	    struct reservation *resv, long want, long need,
	    int64_t deadline_ms, struct err *);

/*
 * Settle the holds of requests whose process died, as usage rows marked
 * hold_charged (their hold as input tokens: at least what they used), and
 * release those of live processes past their time.  In one transaction
 * on "c".  Returns how many went, or -1 with "err" set.
 */
long	 budget_reclaim(struct dbconn *c, struct err *);

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
