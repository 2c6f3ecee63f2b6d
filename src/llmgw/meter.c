#include "config.h"

#include <stdio.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/budget.h"
#include "store/keys.h"
#include "store/store.h"
#include "anthropic.h"
#include "meter.h"

long
meter_running(const struct meter *m, const struct anthropic_stream *st)
{
	const struct anthropic_usage	*u = &st->usage;
	long				 out;

	out = u->output_tokens > st->deltas ? u->output_tokens : st->deltas;
	/* Until the input is final, a reserve stands for each use's. */
	return u->input_tokens + u->cache_creation_input_tokens +
	    u->cache_read_input_tokens + out +
	    (st->input_final ? 0 : st->server_tool_uses * m->tool_reserve);
}

enum meter_verdict
meter_check(struct meter *m, const struct anthropic_stream *st, char *why,
    size_t whylen)
{
	const struct anthropic_usage	*u = &st->usage;
	struct err			 err;
	long				 running, bound, uses_left;

	why[0] = '\0';
	if (m->resv == NULL || m->resv->id[0] == '\0' ||
	    m->key->budget_tokens < 0)
		return METER_OK;
	running = meter_running(m, st);
	if (running <= m->resv->tokens)
		return METER_OK;
	/* What it can still cost now that its input is known. */
	uses_left = m->tool_uses - st->server_tool_uses;
	bound = u->input_tokens + u->cache_creation_input_tokens +
	    u->cache_read_input_tokens + m->max_tokens;
	if (!st->input_final)
		bound += (st->server_tool_uses + (uses_left > 0 ? uses_left :
		    0)) * m->tool_reserve;
	if (bound < running)
		bound = running;
	switch (store_extend(m->db, m->key, m->resv, bound, running,
	    clock_mono_ms() + m->wait_ms, &err)) {
	case BUDGET_OK:
		return METER_OK;
	case BUDGET_SPENT:
		snprintf(why, whylen, "running cost %ld tokens: the budget of "
		    "key %s has no room for it", running, m->key->id);
		return METER_SPENT;
	default:
		/* Not to be asked again at every delta: the database may be
		 * down for a while.  What it holds there stays as it was. */
		m->resv->tokens = bound;
		snprintf(why, whylen, "%s", err.msg);
		return METER_OK;
	}
}
