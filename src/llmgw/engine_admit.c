/*
 * The engine's admission of a request (engine_impl.h): who asks, whether
 * its records can be kept, what its key allows, and the hold of its
 * budget.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/budget.h"
#include "store/conf.h"
#include "store/keys.h"
#include "store/store.h"
#include "store/spool_writer.h"
#include "app.h"
#include "auth.h"
#include "conn.h"
#include "engine.h"
#include "engine_impl.h"
#include "req.h"
#include "route.h"
#include "usage.h"

/*
 * A reservation bounds what a request can cost: max_tokens out, and in
 * at most one token per byte of the message, plus the API's framing.
 */
#define RESERVE_SLACK	64

int
chat_check_auth(struct chat *ch)
{
	struct req	*rq = ch->rq;
	const char	*token = NULL, *hdr = "WWW-Authenticate: Bearer\r\n";
	size_t		 len;
	struct err	 err;

	if (ch->hooks->token_param != NULL)
		token = conn_param(rq->conn, ch->hooks->token_param);
	if (token != NULL && *token != '\0')
		len = strlen(token);
	else if (auth_bearer(conn_param(rq->conn, "HTTP_AUTHORIZATION"),
	    &token, &len) == -1) {
		ch->hooks->error(ch, 401, hdr, "Not authenticated");
		return -1;
	}
	if (rq->conf->api_token != NULL &&
	    auth_token_equal(token, len, rq->conf->api_token)) {
		str_copy(ch->key.id, sizeof(ch->key.id), "static");
		ch->key.budget_tokens = ch->key.rpm = -1;
		return 0;
	}
	ch->db_deadline = clock_mono_ms() + rq->conf->database_wait_ms;
	switch (store_key_lookup(rq->gen->db, token, len, ch->db_deadline,
	    &ch->key, &err)) {
	case -1:
		log_error("request %s: %s", rq->id, err.msg);
		memset(&ch->key, 0, sizeof(ch->key));
		ch->hooks->error(ch, 503, NULL, "the key store is unavailable");
		return -1;
	case 0:
		memset(&ch->key, 0, sizeof(ch->key));
		ch->hooks->error(ch, 401, hdr, "Invalid token");
		return -1;
	}
	switch (key_state(&ch->key, rq->ts_ms)) {
	case KEY_REVOKED:
		ch->hooks->error(ch, 401, hdr, "Key revoked");
		return -1;
	case KEY_EXPIRED:
		ch->hooks->error(ch, 401, hdr, "Key expired");
		return -1;
	case KEY_ACTIVE:
		break;
	}
	ch->keyed = 1;
	return 0;
}

/*
 * Whether this request's records can be kept: with usage rows or spool
 * records waiting in memory up to backlog_max, llmgw refuses rather than
 * answer without them, unless on_record_failure is serve.  0, or -1
 * after answering.
 */
static int
check_records(struct chat *ch)
{
	struct req		*rq = ch->rq;
	struct usage_state	 us;
	struct spool_backlog	 sb;
	char			 detail[ERR_MAX + 128];

	if (rq->conf->serve_unrecorded)
		return 0;
	usage_state(rq->gen->usage, &us);
	spool_backlog(rq->gen->spool, &sb);
	if (!us.full && !sb.full)
		return 0;
	if (us.full)
		snprintf(detail, sizeof(detail), "llmgw cannot record usage "
		    "now: %zu rows wait for the database", us.backlog);
	else
		snprintf(detail, sizeof(detail), "llmgw cannot record "
		    "requests now: %zu records wait for the spool",
		    sb.records);
	ch->hooks->error(ch, 503, "Retry-After: 5\r\n", detail);
	return -1;
}

/*
 * The most this request's input can cost: what the API counts, for a key
 * with a budget (budget_count_tokens); else, or if counting fails, a
 * token per byte of what goes upstream, which plain text never passes.
 */
static long
input_bound(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct buf	*b = &ch->w->out;
	long		 tokens;

	if (ch->key.budget_tokens >= 0 && rq->conf->budget_count_tokens) {
		buf_reset(b);
		b->max = BUF_NOCAP;
		if (ch->hooks->count_body(ch, b) == 0 &&
		    upstream_count(ch->w->up, rq->conf, b->data, b->len,
		    ch->version, ch->beta, &ch->res, &tokens) == 0)
			return tokens;
		log_warn("request %s: its input could not be counted (%s); "
		    "its hold assumes a token per byte", rq->id,
		    ch->res.detail[0] != '\0' ? ch->res.detail :
		    "out of memory");
	}
	return (long)ch->req.message_len + RESERVE_SLACK;
}

/* "secs" as OpenAI's reset headers write it: "1s", "6m0s", "20h3m9s". */
static void
duration(char *out, size_t size, long secs)
{
	if (secs >= 3600)
		snprintf(out, size, "%ldh%ldm%lds", secs / 3600, secs / 60 %
		    60, secs % 60);
	else if (secs >= 60)
		snprintf(out, size, "%ldm%lds", secs / 60, secs % 60);
	else
		snprintf(out, size, "%lds", secs);
}

/*
 * The key's own limits and what is left of them, on every answer to the
 * request from here on (OpenAI's names, which clients of both APIs
 * read); nothing for a limit the key does not have.
 */
static void
limit_headers(struct chat *ch, const struct budget_left *bl)
{
	char	 rs[32], ts[32];
	int	 n = 0;

	ch->limits[0] = '\0';
	duration(rs, sizeof(rs), bl->requests_reset);
	duration(ts, sizeof(ts), bl->tokens_reset);
	if (bl->requests_limit >= 0)
		n = snprintf(ch->limits, sizeof(ch->limits),
		    "x-ratelimit-limit-requests: %ld\r\n"
		    "x-ratelimit-remaining-requests: %ld\r\n"
		    "x-ratelimit-reset-requests: %s\r\n", bl->requests_limit,
		    bl->requests_left, rs);
	if (bl->tokens_limit >= 0 && n >= 0 && (size_t)n < sizeof(ch->limits))
		snprintf(ch->limits + n, sizeof(ch->limits) - (size_t)n,
		    "x-ratelimit-limit-tokens: %ld\r\n"
		    "x-ratelimit-remaining-tokens: %ld\r\n"
		    "x-ratelimit-reset-tokens: %s\r\n", bl->tokens_limit,
		    bl->tokens_left, ts);
	if (ch->limits[0] != '\0')
		ch->rq->conn->headers = ch->limits;
}

/*
 * What the key allows: its models, its rate and its budget, of which an
 * upper bound of this request's cost is held (see meter.h).  0, or -1
 * after answering.
 */
static int
check_key(struct chat *ch)
{
	struct req		*rq = ch->rq;
	const struct conf	*conf = rq->conf;
	struct budget_claim	 claim;
	struct budget_left	 left;
	enum budget_verdict	 verdict;
	struct err		 err;
	char			 extra[64], detail[256];
	long			 after = 1, input;

	if (!ch->keyed)
		return 0;
	if (!key_allows_model(&ch->key, ch->req.model)) {
		snprintf(detail, sizeof(detail), "this key may not use model "
		    "%s", ch->req.model);
		ch->hooks->error(ch, 403, NULL, detail);
		return -1;
	}
	if (ch->key.budget_tokens >= 0 && ch->req.server_tools > 0 &&
	    conf->server_tool_reserve == 0) {
		ch->hooks->error(ch, 400, NULL, "server tools (web search, web "
		    "fetch, code execution) bring in tokens no request can "
		    "bound: this key has a budget, and llmgw has no "
		    "server_tool_reserve set for them");
		return -1;
	}
	memset(&claim, 0, sizeof(claim));
	claim.id = rq->rec.id;
	claim.ts_ms = rq->ts_ms;
	claim.route = rq->route->path;
	claim.model = ch->req.model != NULL ? ch->req.model : "";
	claim.tokens = ch->req.max_tokens + ch->req.server_tool_uses *
	    conf->server_tool_reserve;
	/*
	 * A stream may hold less than its bound when that is all the room
	 * left (a large default max_tokens on a small budget): the meter ends
	 * it there.  A whole reply cannot be cut, so it holds its bound.
	 */
	if (ch->key.budget_tokens >= 0) {
		input = input_bound(ch);
		claim.tokens += input;
		if (ch->stream)
			claim.min_tokens = input + 1;
	}
	claim.hold_ms = conf->total_timeout_ms + 60000;
	claim.deadline_ms = ch->db_deadline;
	verdict = store_reserve(rq->gen->db, &ch->key, &claim, &rq->resv,
	    &left, &after, &err);
	if (verdict != BUDGET_ERROR)
		limit_headers(ch, &left);
	switch (verdict) {
	case BUDGET_OK:
		ch->meter.db = rq->gen->db;
		ch->meter.key = &ch->key;
		ch->meter.resv = &rq->resv;
		ch->meter.max_tokens = ch->req.max_tokens;
		ch->meter.tool_reserve = conf->server_tool_reserve;
		ch->meter.tool_uses = ch->req.server_tool_uses;
		ch->meter.wait_ms = conf->database_wait_ms;
		return 0;
	case BUDGET_RATE:
		snprintf(detail, sizeof(detail), "rate limit of %ld requests "
		    "per minute reached", ch->key.rpm);
		break;
	case BUDGET_SPENT:
		snprintf(detail, sizeof(detail), "token budget of %ld per %s "
		    "is spent (this request may need %ld)",
		    ch->key.budget_tokens, ch->key.period, claim.tokens);
		break;
	case BUDGET_ERROR:
		log_error("request %s: %s", rq->id, err.msg);
		ch->hooks->error(ch, 503, NULL, "the key store is unavailable");
		return -1;
	}
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", after);
	ch->hooks->error(ch, 429, extra, detail);
	return -1;
}

int
chat_check_admission(struct chat *ch)
{
	return check_records(ch) == 0 && check_key(ch) == 0 ? 0 : -1;
}
