/*
 * Mapping an upstream attempt's outcome to what the client gets.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "anthropic.h"
#include "retry.h"
#include "upstream.h"
#include "verdict.h"

void
verdict_set(struct verdict *v, int status, int retry, const char *type,
    const char *detail)
{
	v->status = status;
	v->retry = retry;
	str_copy(v->type, sizeof(v->type), type);
	str_copy(v->detail, sizeof(v->detail), detail);
	str_copy(v->log, sizeof(v->log), detail);
}

/* An upstream HTTP error. */
static void
judge_http_error(const struct upstream_result *res, struct verdict *v)
{
	struct anthropic_error	 ae;
	long			 st = res->status;
	int			 retry;

	anthropic_parse_error(res->errbody.data != NULL ? res->errbody.data :
	    "", res->errbody.len, &ae);
	retry = retry_worth(st, &ae);
	if (st == 529)
		verdict_set(v, 503, retry, ae.type,
		    "AI service temporarily unavailable");
	else if (st == 429)
		verdict_set(v, 429, retry, ae.type,
		    "AI service rate limit reached; retry later");
	else if (st == 400 || st == 404 || st == 413)
		verdict_set(v, st == 404 ? 400 : (int)st, 0, ae.type,
		    ae.message[0] != '\0' ? ae.message :
		    "the AI service rejected the request");
	else if (st == 401 || st == 403)
		verdict_set(v, 502, 0, ae.type,
		    "the AI service rejected the gateway's credentials");
	else
		verdict_set(v, 502, retry, ae.type, "AI service error");
	snprintf(v->log, sizeof(v->log), "HTTP %ld %s: %s", st, ae.type,
	    ae.message);
}

/* An error event inside a 200 stream. */
static void
judge_error_event(const struct anthropic_error *ae, struct verdict *v)
{
	int	 retry = retry_worth(200, ae);

	if (strcmp(ae->type, "overloaded_error") == 0)
		verdict_set(v, 503, retry, ae->type,
		    "AI service temporarily unavailable");
	else if (strcmp(ae->type, "rate_limit_error") == 0)
		verdict_set(v, 429, retry, ae->type,
		    "AI service rate limit reached; retry later");
	else
		verdict_set(v, 502, retry, ae->type, "AI service error");
	snprintf(v->log, sizeof(v->log), "error event %s: %s", ae->type,
	    ae->message);
}

/* We stopped the transfer: our reason says more than its outcome. */
static void
judge_stopped(const struct attempt *a, struct verdict *v)
{
	switch (a->stop) {
	case STOP_ERROR_EVENT:
		judge_error_event(&a->st->err, v);
		break;
	case STOP_MALFORMED:
		verdict_set(v, 502, 0, "upstream_malformed",
		    "the AI service sent a malformed event");
		break;
	case STOP_TOO_BIG:
		verdict_set(v, 502, 0, "upstream_too_big",
		    "the AI service sent more than llmgw accepts");
		break;
	case STOP_BUDGET:
		verdict_set(v, 429, 0, "budget_exhausted",
		    "this key's token budget has no room for what the reply "
		    "costs");
		break;
	case STOP_CLIENT_GONE:
	case STOP_NONE:
		verdict_set(v, 499, 0, "client_gone", "the client went away");
		break;
	}
}

/* A transfer that ended on its own. */
static void
judge_outcome(const struct upstream_result *res, struct verdict *v)
{
	switch (res->outcome) {
	case UP_ECONNECT:
		verdict_set(v, 502, 1, "upstream_unreachable",
		    "AI service unreachable");
		break;
	case UP_ETIMEOUT:
		verdict_set(v, 504, 0, "upstream_timeout",
		    "AI service timed out");
		break;
	case UP_ECUT:
		verdict_set(v, 502, 1, "upstream_cut",
		    "the AI service ended the stream early");
		break;
	case UP_EABORTED:
		verdict_set(v, 503, 0, "shutting_down",
		    "llmgw is shutting down");
		break;
	case UP_DONE:		/* a whole answer is judged by its status */
	case UP_EOTHER:
		verdict_set(v, 502, 0, "upstream_error", "AI service error");
		break;
	}
	if (res->detail[0] != '\0')
		str_copy(v->log, sizeof(v->log), res->detail);
}

void
verdict_judge(const struct attempt *a, struct verdict *v)
{
	const struct upstream_result	*res = a->res;

	memset(v, 0, sizeof(*v));
	if (a->stop != STOP_NONE) {
		judge_stopped(a, v);
		return;
	}
	if (res->outcome != UP_DONE) {
		judge_outcome(res, v);
		return;
	}
	if (res->status < 200 || res->status > 299) {
		judge_http_error(res, v);
		return;
	}
	if (a->stream && !a->st->stopped) {
		verdict_set(v, 502, 1, "upstream_cut",
		    "the AI service ended the stream early");
		snprintf(v->log, sizeof(v->log), "stream ended without "
		    "message_stop after %ld deltas", a->st->deltas);
		return;
	}
	v->ok = 1;
}
