/*
 * When a failed upstream call is worth another attempt, and how long to
 * wait first.  Only the caller knows whether the client has been sent
 * anything yet; once it has, nothing is retried.
 */
#ifndef RETRY_H
#define RETRY_H

#include <stdint.h>

struct anthropic_error;

/*
 * 1 if an upstream answer with HTTP "status" (0: no answer, a connection
 * failure) and error "err" (may be NULL) may succeed when tried again:
 * 429 unless a spend limit was reached, 500, 502, 503, 504, 529, and
 * overloaded or API errors.  400, 401, 402, 403, 404 and 413 never.
 */
int	 retry_worth(long status, const struct anthropic_error *err);

/*
 * Milliseconds to wait before retry number "attempt" (1 for the first):
 * exponential from "base_ms" with jitter drawn from "rnd", capped at
 * "max_ms".  A "retry_after_ms" the server sent (-1: none) is honoured as
 * the least wait; if it exceeds "max_ms", returns -1: do not retry.
 */
long	 retry_delay_ms(long base_ms, long max_ms, int attempt,
	    long retry_after_ms, uint64_t rnd);

#endif /* RETRY_H */
