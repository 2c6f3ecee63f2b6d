/* The mapping of an upstream attempt's outcome to the client's answer. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "llmgw/upstream.h"
#include "llmgw/verdict.h"
#include "../tap.h"

static struct upstream_result	 res;
static struct anthropic_stream	 st;

/* An attempt that got a whole HTTP answer with "status" and "body". */
static void
answered(long status, const char *body)
{
	upstream_result_free(&res);
	upstream_result_init(&res);
	memset(&st, 0, sizeof(st));
	res.outcome = UP_DONE;
	res.status = status;
	if (body != NULL && buf_adds(&res.errbody, body) == -1)
		abort();
}

static void
judge(int stream, enum stop_reason stop, struct verdict *v)
{
	struct attempt	 a = { &res, stop, stream, &st };

	verdict_judge(&a, v);
}

static void
http_errors(void)
{
	struct verdict	 v;

	answered(529, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}");
	judge(1, STOP_NONE, &v);
	ok(!v.ok && v.status == 503 && v.retry, "529 is a 503, retried");
	is_str(v.detail, "AI service temporarily unavailable",
	    "as the reference service says it");
	is_str(v.type, "overloaded_error", "with the upstream's type");
	is_str(v.log, "HTTP 529 overloaded_error: Overloaded",
	    "the operator reads what the upstream said");

	answered(429, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"rate_limit_error\",\"message\":\"slow down\"}}");
	judge(0, STOP_NONE, &v);
	ok(v.status == 429 && v.retry, "429 stays 429, retried");
	answered(429, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"rate_limit_error\",\"message\":\"You reached your spend "
	    "limit\"}}");
	judge(0, STOP_NONE, &v);
	ok(v.status == 429 && !v.retry, "a spend limit is not retried");

	answered(400, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"invalid_request_error\",\"message\":\"max_tokens: too big\"}}");
	judge(0, STOP_NONE, &v);
	ok(v.status == 400 && !v.retry, "400 is the client's, not retried");
	is_str(v.detail, "max_tokens: too big", "with the upstream's message");
	answered(404, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"not_found_error\",\"message\":\"\"}}");
	judge(0, STOP_NONE, &v);
	is_int(v.status, 400, "404 (an unknown model) is the client's 400");
	is_str(v.detail, "the AI service rejected the request",
	    "a generic detail when the upstream gave none");
	answered(404, "not json");
	judge(0, STOP_NONE, &v);
	is_str(v.detail, "unrecognised error body",
	    "and says so when its body is not an error");
	answered(413, NULL);
	judge(0, STOP_NONE, &v);
	is_int(v.status, 413, "413 stays 413");

	answered(401, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"authentication_error\",\"message\":\"invalid x-api-key\"}}");
	judge(0, STOP_NONE, &v);
	ok(v.status == 502 && !v.retry, "401 is the gateway's problem: 502");
	ok(strstr(v.detail, "x-api-key") == NULL,
	    "the client does not read what the upstream said of our key");
	answered(403, NULL);
	judge(0, STOP_NONE, &v);
	is_int(v.status, 502, "403 too");
	answered(500, NULL);
	judge(0, STOP_NONE, &v);
	ok(v.status == 502 && v.retry, "500 is a 502, retried");
}

static void
stream_endings(void)
{
	struct verdict	 v;

	answered(200, NULL);
	st.stopped = 1;
	judge(1, STOP_NONE, &v);
	ok(v.ok, "a stream that reached message_stop is good");
	answered(200, NULL);
	st.deltas = 3;
	judge(1, STOP_NONE, &v);
	ok(!v.ok && v.status == 502 && v.retry, "one cut short is a 502");
	is_str(v.type, "upstream_cut", "of type upstream_cut");
	is_str(v.log, "stream ended without message_stop after 3 deltas",
	    "the log says how far it got");
	answered(200, NULL);
	judge(0, STOP_NONE, &v);
	ok(v.ok, "a whole reply's 200 is for the caller to read");

	answered(200, NULL);
	strcpy(st.err.type, "overloaded_error");
	judge(1, STOP_ERROR_EVENT, &v);
	ok(v.status == 503 && v.retry, "an overloaded event is a 503");
	strcpy(st.err.type, "rate_limit_error");
	judge(1, STOP_ERROR_EVENT, &v);
	is_int(v.status, 429, "a rate-limit event a 429");
	strcpy(st.err.type, "invalid_request_error");
	judge(1, STOP_ERROR_EVENT, &v);
	ok(v.status == 502 && !v.retry, "another event a 502, not retried");

	judge(1, STOP_MALFORMED, &v);
	ok(v.status == 502 && !v.retry, "a malformed event: 502");
	is_str(v.type, "upstream_malformed", "of its own type");
	judge(1, STOP_TOO_BIG, &v);
	is_str(v.type, "upstream_too_big", "too much: its own type");
	judge(1, STOP_CLIENT_GONE, &v);
	ok(v.status == 499 && !v.retry, "the client left: 499");
}

static void
outcomes(void)
{
	static const struct {
		enum upstream_outcome	 outcome;
		int			 status, retry;
		const char		*type;
	} cases[] = {
		{ UP_ECONNECT, 502, 1, "upstream_unreachable" },
		{ UP_ETIMEOUT, 504, 0, "upstream_timeout" },
		{ UP_ECUT, 502, 1, "upstream_cut" },
		{ UP_EABORTED, 503, 0, "shutting_down" },
		{ UP_EOTHER, 502, 0, "upstream_error" },
	};
	struct verdict	 v;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answered(0, NULL);
		res.outcome = cases[i].outcome;
		strcpy(res.detail, "what libcurl said");
		judge(1, STOP_NONE, &v);
		ok(!v.ok && v.status == cases[i].status &&
		    v.retry == cases[i].retry && strcmp(v.type,
		    cases[i].type) == 0, "%s: %d, %sretried", cases[i].type,
		    cases[i].status, cases[i].retry ? "" : "not ");
		is_str(v.log, "what libcurl said", "the log has the detail");
	}
}

int
main(void)
{
	upstream_result_init(&res);
	http_errors();
	stream_endings();
	outcomes();
	upstream_result_free(&res);
	return done_testing();
}
