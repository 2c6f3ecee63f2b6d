/*
 * What a chat request costs as its reply streams, against what it holds
 * of its key's budget (store/budget.h).  The hold was an upper bound when
 * it was taken: the input counted by the API (or a token per byte), the
 * output's max_tokens, and a reserve for each server tool use it may
 * make.  As the reply's usage arrives (the input at message_start, a
 * token at least per text delta, a reserve per server tool use begun, the
 * numbers of message_delta) the running cost is checked against it; once
 * past, the hold grows, to the new upper bound if the budget has room,
 * else to what room there is; with none left, the reply must end there
 * (budget exhausted).  So every request in flight holds at least what it
 * has cost, and admission, which counts holds, counts running costs.
 */
#ifndef METER_H
#define METER_H

#include <stdint.h>

struct anthropic_stream;
struct store;
struct key;
struct reservation;

struct meter {
	struct store		*db;
	const struct key	*key;
	struct reservation	*resv;		/* "" id: nothing held */
	long			 max_tokens;
	long			 tool_reserve;	/* tokens per server tool use */
	long			 tool_uses;	/* ... uses held for */
	long			 wait_ms;	/* the database, at each growth */
};

enum meter_verdict {
	METER_OK = 0,
	METER_SPENT		/* the budget has no room for what it costs */
};

/* The running cost of the reply in "st" so far. */
long	 meter_running(const struct meter *, const struct anthropic_stream *);

/*
 * Check the running cost against the hold, growing it if need be.  A
 * database that cannot be reached keeps the hold as it is (logged by the
 * caller through "why", 256 bytes; "" if all went well).
 */
enum meter_verdict meter_check(struct meter *,
	    const struct anthropic_stream *, char *why, size_t whylen);

#endif /* METER_H */
