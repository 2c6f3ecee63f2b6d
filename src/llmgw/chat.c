/*
 * POST /chat and POST /chat/stream: check the client, validate the body,
 * call the Messages API (retrying while nothing has been sent), and answer
 * with JSON or with SSE flushed event by event.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "store/budget.h"
#include "store/conf.h"
#include "store/dbpool.h"
#include "store/keys.h"
#include "anthropic.h"
#include "app.h"
#include "auth.h"
#include "conn.h"
#include "metrics.h"
#include "req.h"
#include "routes.h"
#include "request.h"
#include "resp.h"
#include "retry.h"
#include "route.h"
#include "upstream.h"

#define REPLY_MAX	(32L * 1024 * 1024)	/* a whole non-streamed reply */
/*
 * A reservation bounds what a request can cost: max_tokens out, and in
 * at most one token per byte of the message, plus the API's framing.
 */
#define RESERVE_SLACK	64

/* Everything about one chat request while it runs. */
struct chat {
	struct req		*rq;
	struct scratch		*w;		/* the worker's buffers */
	struct chat_req		 req;
	int			 stream;
	struct upstream_result	 res;
	struct anthropic_stream	 st;
	int			 head_sent;	/* SSE head went out */
	int			 stop_reason;	/* why we stopped the transfer */
	int64_t			 ttft_ms;	/* -1 until the first token */
	int64_t			 last_write_ms;	/* to the client, for keep-alives */
	int			 retries;
	int			 called;	/* the upstream was asked */
	struct buf		 text;		/* the reply's text */
	struct key		 key;		/* who asks; id "static" for the
						 * static token, "" for nobody */
	int			 keyed;		/* a key from the key table */
	int			 passthrough;	/* POST /v1/messages */
	const struct buf	*body;		/* what goes upstream */
	const char		*version;	/* its anthropic-version, beta */
	const char		*beta;
};

/* Why a transfer was stopped from our side. */
enum {
	STOP_NONE = 0,
	STOP_CLIENT_GONE,
	STOP_ERROR_EVENT,
	STOP_MALFORMED,
	STOP_TOO_BIG
};

/* The outcome of one attempt, as the client should see it. */
struct verdict {
	int	 ok;
	int	 retry;		/* worth another attempt */
	int	 status;	/* HTTP status for the client */
	char	 type[ANTHROPIC_ERR_TYPE_MAX];
	char	 detail[ANTHROPIC_ERR_MSG_MAX];
	char	 log[ANTHROPIC_ERR_MSG_MAX + ANTHROPIC_ERR_TYPE_MAX + 32];	/* for the operator */
};

/* The Anthropic error type for an HTTP status. */
static const char *
error_type(int status)
{
	switch (status) {
	case 400:
	case 415:
	case 422:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 504:
		return "timeout_error";
	default:
		return "api_error";
	}
}

/*
 * An error, in the shape the route's clients expect: FastAPI's
 * {"detail": ...} for /chat, the Messages API's for /v1/messages.
 */
static void
fail(struct chat *ch, int status, const char *extra, const char *detail)
{
	struct buf	*b = &ch->w->out;

	if (!ch->passthrough) {
		req_error(ch->rq, status, extra, detail);
		return;
	}
	buf_reset(b);
	b->max = 0;
	buf_addf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
	    "\"message\":", error_type(status));
	json_add_cstr(b, detail);
	buf_adds(b, "}}");
	ch->rq->status = status;
	resp_body(ch->rq->conn, status, "application/json", ch->rq->id, extra,
	    b->data, b->len, 0);
}

/*
 * Who is asking: the static api_token, or a key made with llmgw-admin.
 * Returns 0 with ch->key filled, or -1 after answering.
 */
static int
check_auth(struct chat *ch)
{
	struct req	*rq = ch->rq;
	const char	*token, *hdr = "WWW-Authenticate: Bearer\r\n";
	size_t		 len;
	struct err	 err;

	token = ch->passthrough ? conn_param(rq->conn, "HTTP_X_API_KEY") : NULL;
	if (token != NULL && *token != '\0')
		len = strlen(token);
	else if (auth_bearer(conn_param(rq->conn, "HTTP_AUTHORIZATION"),
	    &token, &len) == -1) {
		fail(ch, 401, hdr, "Not authenticated");
		return -1;
	}
	if (rq->conf->api_token != NULL &&
	    auth_token_equal(token, len, rq->conf->api_token)) {
		str_copy(ch->key.id, sizeof(ch->key.id), "static");
		ch->key.budget_tokens = ch->key.rpm = -1;
		return 0;
	}
	switch (keys_lookup(rq->gen->db, token, len, &ch->key, &err)) {
	case -1:
		log_error("request %s: %s", rq->id, err.msg);
		memset(&ch->key, 0, sizeof(ch->key));
		fail(ch, 503, NULL, "the key store is unavailable");
		return -1;
	case 0:
		memset(&ch->key, 0, sizeof(ch->key));
		fail(ch, 401, hdr, "Invalid token");
		return -1;
	}
	switch (key_refused(&ch->key, rq->ts_ms)) {
	case 1:
		fail(ch, 401, hdr, "Key revoked");
		return -1;
	case 2:
		fail(ch, 401, hdr, "Key expired");
		return -1;
	}
	ch->keyed = 1;
	return 0;
}

/*
 * What the key allows: its models, its rate and its budget, of which an
 * upper bound of this request's cost is held.  0, or -1 after answering.
 */
static int
check_key(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct err	 err;
	char		 extra[64], detail[256];
	long		 after = 1;

	if (!ch->keyed)
		return 0;
	if (!key_allows_model(&ch->key, ch->req.model)) {
		snprintf(detail, sizeof(detail), "this key may not use model "
		    "%s", ch->req.model);
		fail(ch, 403, NULL, detail);
		return -1;
	}
	switch (budget_reserve(rq->gen->db, &ch->key, ch->req.max_tokens +
	    (long)ch->req.message_len + RESERVE_SLACK,
	    rq->conf->total_timeout_ms + 60000, &rq->resv, &after, &err)) {
	case BUDGET_OK:
		return 0;
	case BUDGET_RATE:
		snprintf(detail, sizeof(detail), "rate limit of %ld requests "
		    "per minute reached", ch->key.rpm);
		break;
	case BUDGET_SPENT:
		snprintf(detail, sizeof(detail), "token budget of %ld per %s "
		    "is spent (this request may need %ld)",
		    ch->key.budget_tokens, ch->key.period, ch->req.max_tokens +
		    (long)ch->req.message_len + RESERVE_SLACK);
		break;
	default:
		log_error("request %s: %s", rq->id, err.msg);
		fail(ch, 503, NULL, "the key store is unavailable");
		return -1;
	}
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", after);
	fail(ch, 429, extra, detail);
	return -1;
}

/*
 * Read the body into w->body, reading at most body_limit + 1 bytes.
 * Returns 0, or -1 after answering 413 or 400.
 */
static int
read_body(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct buf	*b = &rq->scratch->body;
	const char	*cl;
	char		 detail[128], *end, *p, eof;
	long		 limit = rq->conf->body_limit, want = -1;
	int64_t		 deadline, left;
	ssize_t		 n;
	size_t		 room;

	if ((cl = conn_param(rq->conn, "CONTENT_LENGTH")) != NULL &&
	    *cl != '\0') {
		errno = 0;
		want = strtol(cl, &end, 10);
		if (errno != 0 || *end != '\0' || want < 0)
			want = limit + 1;
	}
	if (want > limit)
		goto too_big;
	buf_reset(b);
	b->max = (size_t)limit + 1;
	/* A body that drips in must not hold a worker for ever: the whole
	 * of it has body_timeout, each read what is left of that. */
	deadline = clock_mono_ms() + rq->conf->body_timeout_ms;
	for (;;) {
		room = (size_t)limit + 1 - b->len;
		if (want >= 0 && (size_t)want - b->len < room)
			room = (size_t)want - b->len;
		if (room == 0)
			break;
		if (room > 16384)
			room = 16384;
		if ((p = buf_space(b, room)) == NULL) {
			fail(ch, 500, NULL, "out of memory");
			return -1;
		}
		/* The first read has the connection's own timeout, which is
		 * body_timeout (llmgw.c), and needs no system call to set. */
		left = deadline - clock_mono_ms();
		if (left <= 0 || (b->len > 0 &&
		    conn_read_timeout(rq->conn, left) == -1) ||
		    (n = conn_read(rq->conn, p, room)) == -1) {
			if (left <= 0)
				errno = EAGAIN;
			(void)conn_read_timeout(rq->conn, 0);
			rq->conn->unread = 1;	/* do not wait for the rest */
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				snprintf(detail, sizeof(detail), "the request "
				    "body did not arrive within %ld ms",
				    rq->conf->body_timeout_ms);
				fail(ch, 408, "Connection: close\r\n", detail);
			} else
				fail(ch, 400, NULL, "could not read the "
				    "request body");
			return -1;
		}
		if (n == 0)
			break;
		buf_commit(b, (size_t)n);
	}
	/* Take the end of the body too, so the connection can be reused. */
	if ((long)b->len <= limit && want >= 0 && (size_t)want == b->len)
		(void)conn_read(rq->conn, &eof, 1);
	(void)conn_read_timeout(rq->conn, 0);
	if ((long)b->len > limit)
		goto too_big;
	return 0;
too_big:
	snprintf(detail, sizeof(detail), "Request body is larger than %ld "
	    "bytes", limit);
	fail(ch, 413, "Connection: close\r\n", detail);
	return -1;
}

static int
send_stream_head(struct chat *ch)
{
	struct buf	 extra;
	int		 rc;

	buf_init(&extra, 0);
	rc = buf_adds(&extra, "Cache-Control: no-cache\r\n"
	    "X-Accel-Buffering: no\r\n");
	if (rc == 0 && ch->res.ratelimit.len > 0)
		rc = buf_add(&extra, ch->res.ratelimit.data,
		    ch->res.ratelimit.len);
	if (rc == 0 && ch->passthrough && ch->res.request_id[0] != '\0')
		rc = buf_addf(&extra, "request-id: %s\r\n",
		    ch->res.request_id);
	if (rc == 0)
		rc = resp_head(ch->rq->conn, 200, "text/event-stream",
		    ch->rq->id, buf_str(&extra), -1);
	buf_free(&extra);
	ch->rq->status = 200;
	ch->head_sent = 1;
	return rc;
}

/* A text delta for the client: one event, flushed at once. */
static int
on_text(void *arg, const char *text, size_t len)
{
	struct chat	*ch = arg;
	struct buf	*out = &ch->w->out;

	if (len == 0)
		return 0;
	if (!ch->head_sent && send_stream_head(ch) == -1)
		goto gone;
	buf_reset(out);
	if (sse_encode(out, NULL, text, len) == -1 ||
	    conn_write(ch->rq->conn, out->data, out->len) == -1 ||
	    conn_flush(ch->rq->conn) == -1)
		goto gone;
	ch->last_write_ms = clock_mono_ms();
	if (ch->ttft_ms < 0)
		ch->ttft_ms = ch->last_write_ms - ch->rq->t0_ms;
	/* The text is kept only for log_bodies; if it will not fit, the
	 * record gets what did. */
	if (ch->rq->conf->log_bodies)
		(void)buf_add(&ch->text, text, len);
	return 0;
gone:
	ch->stop_reason = STOP_CLIENT_GONE;
	return -1;
}

/* Passthrough: the event as the upstream sent it, flushed at once. */
static int
forward(struct chat *ch, const char *event, const char *data, size_t len)
{
	struct buf	*out = &ch->w->out;

	if (!ch->head_sent && send_stream_head(ch) == -1)
		goto gone;
	buf_reset(out);
	if ((event[0] != '\0' && buf_addf(out, "event: %s\n", event) == -1) ||
	    sse_encode(out, NULL, data, len) == -1 ||
	    conn_write(ch->rq->conn, out->data, out->len) == -1 ||
	    conn_flush(ch->rq->conn) == -1)
		goto gone;
	ch->last_write_ms = clock_mono_ms();
	if (ch->ttft_ms < 0 && ch->st.deltas > 0)
		ch->ttft_ms = ch->last_write_ms - ch->rq->t0_ms;
	return 0;
gone:
	ch->stop_reason = STOP_CLIENT_GONE;
	return -1;
}

/* Passthrough: text deltas are counted and, for log_bodies, kept. */
static int
on_pass_text(void *arg, const char *text, size_t len)
{
	struct chat	*ch = arg;

	if (ch->rq->conf->log_bodies)
		(void)buf_add(&ch->text, text, len);
	return 0;
}

static int
on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct chat	*ch = arg;
	int		 ev;

	ev = anthropic_stream_event(&ch->st, data, len, ch->passthrough ?
	    on_pass_text : on_text, ch);
	switch (ev) {
	case -1:
		return -1;	/* on_text said why */
	case AEV_ERROR:
		/* Passed on once the stream has begun; before, retried. */
		if (ch->passthrough && ch->head_sent)
			(void)forward(ch, event, data, len);
		ch->stop_reason = STOP_ERROR_EVENT;
		return -1;
	case AEV_MALFORMED:
		ch->stop_reason = STOP_MALFORMED;
		return -1;
	default:
		return ch->passthrough ? forward(ch, event, data, len) : 0;
	}
}

static int
on_stream_data(void *arg, const char *p, size_t n)
{
	struct chat	*ch = arg;

	switch (sse_parser_feed(&ch->w->sse, p, n, on_event, ch)) {
	case SSE_OK:
		return 0;
	case SSE_ETOOBIG:
		ch->stop_reason = STOP_TOO_BIG;
		return -1;
	case SSE_ESTOPPED:
	default:
		return -1;
	}
}

/*
 * About once a second while waiting for the upstream.  Under plain CGI,
 * SIGTERM from the web server means the client left.  For streams, after
 * keepalive_interval of silence towards the client, an SSE comment.
 * It keeps proxies' idle timers from firing, and a client that has gone
 * is noticed here and its upstream transfer stopped.  It commits the
 * response to 200, so a later failure is an error event.
 */
static int
on_tick(void *arg)
{
	struct chat	*ch = arg;
	int64_t		 now = clock_mono_ms();

	if (ch->rq->app->cgi_gone != NULL && *ch->rq->app->cgi_gone) {
		ch->stop_reason = STOP_CLIENT_GONE;
		return -1;
	}
	if (!ch->stream || ch->rq->conf->keepalive_ms == 0 ||
	    now - ch->last_write_ms < ch->rq->conf->keepalive_ms)
		return 0;
	if ((!ch->head_sent && send_stream_head(ch) == -1) ||
	    conn_puts(ch->rq->conn, ": keep-alive\n\n") == -1 ||
	    conn_flush(ch->rq->conn) == -1) {
		ch->stop_reason = STOP_CLIENT_GONE;
		return -1;
	}
	ch->last_write_ms = now;
	return 0;
}

static int
on_reply_data(void *arg, const char *p, size_t n)
{
	struct chat	*ch = arg;

	if (buf_add(&ch->w->reply, p, n) == -1) {
		ch->stop_reason = STOP_TOO_BIG;
		return -1;
	}
	return 0;
}

static void
verdict_set(struct verdict *v, int status, int retry, const char *type,
    const char *detail)
{
	v->status = status;
	v->retry = retry;
	str_copy(v->type, sizeof(v->type), type);
	str_copy(v->detail, sizeof(v->detail), detail);
}

/* Map an upstream HTTP error to what the client gets. */
static void
judge_http_error(struct chat *ch, struct verdict *v)
{
	struct anthropic_error	 ae;
	long			 st = ch->res.status;
	int			 retry;

	anthropic_parse_error(ch->res.errbody.data != NULL ?
	    ch->res.errbody.data : "", ch->res.errbody.len, &ae);
	retry = retry_worth(st, &ae);
	snprintf(v->log, sizeof(v->log), "HTTP %ld %s: %s", st, ae.type,
	    ae.message);
	if (st == 529)
		verdict_set(v, 503, retry, ae.type,
		    "AI service temporarily unavailable");
	else if (st == 429)
		verdict_set(v, 429, retry, ae.type,
		    "AI service rate limit reached; retry later");
	else if (st == 400 || st == 404 || st == 413) {
		verdict_set(v, st == 404 ? 400 : (int)st, 0, ae.type, "");
		str_copy(v->detail, sizeof(v->detail), ae.message[0] !=
		    '\0' ? ae.message : "the AI service rejected the request");
	} else if (st == 401 || st == 403)
		verdict_set(v, 502, 0, ae.type,
		    "the AI service rejected the gateway's credentials");
	else
		verdict_set(v, 502, retry, ae.type, "AI service error");
}

/* Map an error event (inside a 200 stream) to what the client gets. */
static void
judge_error_event(struct chat *ch, struct verdict *v)
{
	const struct anthropic_error *ae = &ch->st.err;
	int	 retry = retry_worth(200, ae);

	snprintf(v->log, sizeof(v->log), "error event %s: %s", ae->type,
	    ae->message);
	if (strcmp(ae->type, "overloaded_error") == 0)
		verdict_set(v, 503, retry, ae->type,
		    "AI service temporarily unavailable");
	else if (strcmp(ae->type, "rate_limit_error") == 0)
		verdict_set(v, 429, retry, ae->type,
		    "AI service rate limit reached; retry later");
	else
		verdict_set(v, 502, retry, ae->type, "AI service error");
}

/* We stopped the transfer: our reason says more than its outcome. */
static int
judge_stopped(struct chat *ch, struct verdict *v)
{
	switch (ch->stop_reason) {
	case STOP_NONE:
		return 0;
	case STOP_ERROR_EVENT:
		judge_error_event(ch, v);
		return 1;
	case STOP_MALFORMED:
		verdict_set(v, 502, 0, "upstream_malformed",
		    "the AI service sent a malformed event");
		break;
	case STOP_TOO_BIG:
		verdict_set(v, 502, 0, "upstream_too_big",
		    "the AI service sent more than llmgw accepts");
		break;
	default:
		verdict_set(v, 499, 0, "client_gone", "the client went away");
		break;
	}
	str_copy(v->log, sizeof(v->log), v->detail);
	return 1;
}

static void
judge(struct chat *ch, struct verdict *v)
{
	struct upstream_result	*res = &ch->res;

	memset(v, 0, sizeof(*v));
	if (judge_stopped(ch, v))
		return;
	switch (res->outcome) {
	case UP_DONE:
		if (res->status < 200 || res->status > 299) {
			judge_http_error(ch, v);
			return;
		}
		if (ch->stream && !ch->st.stopped) {
			verdict_set(v, 502, 1, "upstream_cut",
			    "the AI service ended the stream early");
			snprintf(v->log, sizeof(v->log), "stream ended "
			    "without message_stop after %ld deltas",
			    ch->st.deltas);
			return;
		}
		if (!ch->stream) {
			buf_reset(&ch->text);
			if (anthropic_parse_reply(buf_str(&ch->w->reply),
			    ch->w->reply.len, &ch->text, &ch->st.usage,
			    ch->st.stop_reason, sizeof(ch->st.stop_reason)) ==
			    -1) {
				verdict_set(v, 502, 0, "upstream_malformed",
				    "the AI service sent a malformed reply");
				snprintf(v->log, sizeof(v->log), "reply of "
				    "%zu bytes is not a message",
				    ch->w->reply.len);
				return;
			}
			ch->st.stopped = 1;
		}
		v->ok = 1;
		return;
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
	case UP_EOTHER:
		verdict_set(v, 502, 0, "upstream_error", "AI service error");
		break;
	}
	str_copy(v->log, sizeof(v->log), res->detail[0] != '\0' ?
	    res->detail : v->detail);
}

/* After an error once the stream has begun: an error event, then the end. */
static void
stream_fail(struct chat *ch, const struct verdict *v)
{
	struct buf	*out = &ch->w->out;
	struct buf	 data;

	buf_init(&data, 0);
	if (ch->passthrough) {
		if (ch->stop_reason == STOP_ERROR_EVENT)
			return;		/* the upstream's went out already */
		buf_addf(&data, "{\"type\":\"error\",\"error\":{\"type\":"
		    "\"%s\",\"message\":", error_type(v->status));
		json_add_cstr(&data, v->detail);
		buf_adds(&data, "}}");
	} else {
		buf_adds(&data, "{\"type\":");
		json_add_cstr(&data, v->type);
		buf_adds(&data, ",\"detail\":");
		json_add_cstr(&data, v->detail);
		buf_addc(&data, '}');
	}
	buf_reset(out);
	if (sse_encode(out, "error", data.data, data.len) == 0 &&
	    conn_write(ch->rq->conn, out->data, out->len) == 0)
		conn_flush(ch->rq->conn);
	buf_free(&data);
}

static void
stream_done(struct chat *ch)
{
	struct buf	*out = &ch->w->out;

	if (!ch->head_sent && send_stream_head(ch) == -1)
		return;
	if (ch->passthrough)
		return;		/* message_stop went out as it came */
	buf_reset(out);
	if (ch->req.include_usage)
		buf_addf(out, "event: usage\ndata: {\"input_tokens\":%ld,"
		    "\"output_tokens\":%ld}\n\n", ch->st.usage.input_tokens,
		    ch->st.usage.output_tokens);
	buf_adds(out, "data: [DONE]\n\n");
	/* Not flushed: it goes out with the end of the request, after the
	 * record is written, in one write. */
	conn_write(ch->rq->conn, out->data, out->len);
}

/* The headers of the upstream's answer that a passthrough client sees. */
static void
pass_headers(struct chat *ch, char *extra, size_t size)
{
	int	 n = 0;

	extra[0] = '\0';
	if (ch->res.request_id[0] != '\0')
		n = snprintf(extra, size, "request-id: %s\r\n",
		    ch->res.request_id);
	if (n >= 0 && (size_t)n < size && ch->res.retry_after_ms >= 0)
		n += snprintf(extra + n, size - (size_t)n, "Retry-After: %ld\r\n",
		    (ch->res.retry_after_ms + 999) / 1000);
	if (n >= 0 && (size_t)n < size && ch->res.ratelimit.len > 0)
		snprintf(extra + n, size - (size_t)n, "%s",
		    buf_str(&ch->res.ratelimit));
}

static void
reply_done(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct buf	*out = &ch->w->out;
	char		 extra[2048];

	if (ch->passthrough) {
		pass_headers(ch, extra, sizeof(extra));
		rq->status = 200;
		ch->ttft_ms = clock_mono_ms() - rq->t0_ms;
		if (resp_body(rq->conn, 200, "application/json", rq->id,
		    extra, ch->w->reply.data, ch->w->reply.len, 0) == -1)
			ch->stop_reason = STOP_CLIENT_GONE;
		return;
	}
	buf_reset(out);
	buf_adds(out, "{\"reply\":");
	json_add_str(out, buf_str(&ch->text), ch->text.len);
	buf_addf(out, ",\"input_tokens\":%ld,\"output_tokens\":%ld}",
	    ch->st.usage.input_tokens, ch->st.usage.output_tokens);
	rq->status = 200;
	ch->ttft_ms = clock_mono_ms() - rq->t0_ms;
	if (resp_body(rq->conn, 200, "application/json", rq->id,
	    ch->res.ratelimit.len > 0 ? ch->res.ratelimit.data : NULL,
	    out->data, out->len, 0) == -1)
		ch->stop_reason = STOP_CLIENT_GONE;
}

static void
http_fail(struct chat *ch, const struct verdict *v)
{
	char	 extra[2048];

	if (ch->passthrough && ch->res.outcome == UP_DONE &&
	    ch->res.status >= 400 && ch->res.errbody.len > 0 &&
	    ch->stop_reason == STOP_NONE) {
		/* The upstream's own answer, as it was. */
		pass_headers(ch, extra, sizeof(extra));
		ch->rq->status = (int)ch->res.status;
		resp_body(ch->rq->conn, (int)ch->res.status,
		    "application/json", ch->rq->id, extra,
		    ch->res.errbody.data, ch->res.errbody.len, 0);
		return;
	}
	if (ch->passthrough) {
		extra[0] = '\0';
		if (v->status == 429 && ch->res.retry_after_ms >= 0)
			snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n",
			    (ch->res.retry_after_ms + 999) / 1000);
		fail(ch, v->status, extra[0] != '\0' ? extra : NULL,
		    v->detail);
		return;
	}

	extra[0] = '\0';
	if (v->status == 429 && ch->res.retry_after_ms >= 0)
		snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n",
		    (ch->res.retry_after_ms + 999) / 1000);
	req_error(ch->rq, v->status, extra[0] != '\0' ? extra : NULL,
	    v->detail);
}

/* Sleep "ms" milliseconds, resuming after signals. */
static void
sleep_ms(long ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Fill the request's record, then spool it. */
static void
record(struct chat *ch, const struct verdict *v)
{
	struct req	*rq = ch->rq;
	struct record	*r = &rq->rec;
	long		 out = ch->st.usage.output_tokens;

	memset(r, 0, sizeof(*r));
	reqid_new(r->id);
	str_copy(r->request_id, sizeof(r->request_id), rq->id);
	r->ts_ms = rq->ts_ms;
	str_copy(r->key, sizeof(r->key), ch->key.id);
	str_copy(r->route, sizeof(r->route), rq->route->path);
	if (ch->req.model != NULL)
		str_copy(r->model, sizeof(r->model), ch->req.model);
	r->status = rq->status != 0 ? rq->status : 499;
	r->upstream = ch->called;
	r->ttft_ms = ch->ttft_ms;
	r->total_ms = (long)(clock_mono_ms() - rq->t0_ms);
	r->disconnected = ch->stop_reason == STOP_CLIENT_GONE;
	if (ch->called) {
		r->partial = !ch->st.stopped;
		/* A cut stream never sent its final count: each delta is a
		 * token at least. */
		if (r->partial && ch->st.deltas > out)
			out = ch->st.deltas;
		r->input_tokens = ch->st.usage.input_tokens;
		r->output_tokens = out;
		r->cache_creation_input_tokens =
		    ch->st.usage.cache_creation_input_tokens;
		r->cache_read_input_tokens =
		    ch->st.usage.cache_read_input_tokens;
		r->retries = ch->retries;
		r->upstream_status = ch->res.status > 0 ? ch->res.status : 0;
		if (v != NULL && !v->ok)
			str_copy(r->upstream_error, sizeof(r->upstream_error),
			    v->log);
		str_copy(r->upstream_request_id, sizeof(r->upstream_request_id),
		    ch->res.request_id);
	}
	if (rq->conf->log_bodies && ch->passthrough && ch->body != NULL) {
		r->prompt = ch->body->data;
		r->prompt_len = ch->body->len;
		r->reply = buf_str(&ch->text);
		r->reply_len = ch->text.len;
	} else if (rq->conf->log_bodies && ch->req.message != NULL) {
		r->prompt = ch->req.message;
		r->prompt_len = ch->req.message_len;
		r->reply = buf_str(&ch->text);
		r->reply_len = ch->text.len;
	}
	req_spool(rq);
}

/* 422 with the validator's problems: {"detail": [...]}. */
static void
invalid(struct req *rq, const struct buf *problems)
{
	struct buf	*b = &rq->scratch->upbody;

	buf_reset(b);
	buf_adds(b, "{\"detail\":");
	buf_add(b, problems->data, problems->len);
	buf_addc(b, '}');
	rq->status = 422;
	resp_body(rq->conn, 422, "application/json", rq->id, NULL, b->data,
	    b->len, 0);
}

/*
 * Call the API until an attempt succeeds, the client has been sent
 * something, or a failure is not worth retrying.  "v" says how it ended.
 */
static void
call_upstream(struct chat *ch, struct verdict *v)
{
	struct req		*rq = ch->rq;
	struct scratch		*w = ch->w;
	const struct conf	*conf = rq->conf;
	struct upstream_sink	 sink;
	long			 delay;
	int			 attempt;

	sink.on_data = ch->stream ? on_stream_data : on_reply_data;
	sink.on_tick = on_tick;
	sink.arg = ch;
	for (attempt = 1;; attempt++) {
		memset(&ch->st, 0, sizeof(ch->st));
		ch->stop_reason = STOP_NONE;
		sse_parser_reset(&w->sse);
		buf_reset(&w->reply);
		w->reply.max = REPLY_MAX;
		upstream_post(w->up, conf, ch->body->data, ch->body->len,
		    ch->stream, ch->version, ch->beta, &sink, &ch->res);
		judge(ch, v);
		if (v->ok || ch->stop_reason == STOP_CLIENT_GONE ||
		    ch->head_sent || !v->retry || attempt > conf->retries)
			return;
		delay = retry_delay_ms(conf->retry_base_ms, conf->retry_max_ms,
		    attempt, ch->res.retry_after_ms, reqid_random());
		if (delay < 0 || clock_mono_ms() - rq->t0_ms + delay >
		    conf->total_timeout_ms)
			return;
		log_info("request %s: %s; retry %d of %ld in %ld ms", rq->id,
		    v->log, attempt, conf->retries, delay);
		sleep_ms(delay);
		ch->retries++;
	}
}

/* With the request checked and its budget held: call, answer, record. */
static void
serve(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct verdict	 v;

	memset(&v, 0, sizeof(v));
	ch->called = 1;
	ch->last_write_ms = clock_mono_ms();
	metrics_request_begin(rq->app->metrics, ch->stream);
	call_upstream(ch, &v);
	if (v.ok) {
		if (ch->stream)
			stream_done(ch);
		else
			reply_done(ch);
	} else if (ch->stop_reason == STOP_CLIENT_GONE) {
		log_info("request %s: client went away after %ld deltas; "
		    "upstream transfer stopped", rq->id, ch->st.deltas);
	} else if (ch->head_sent) {
		log_warn("request %s: %s (upstream request-id %s); stream "
		    "ended with an error event", rq->id, v.log,
		    ch->res.request_id[0] != '\0' ? ch->res.request_id : "-");
		stream_fail(ch, &v);
	} else {
		log_warn("request %s: %s (upstream request-id %s); answered "
		    "%d", rq->id, v.log, ch->res.request_id[0] != '\0' ?
		    ch->res.request_id : "-", v.status);
		http_fail(ch, &v);
	}
	metrics_request_end(rq->app->metrics, ch->stream);
	record(ch, &v);
}

static void
chat_init(struct chat *ch, struct req *rq)
{
	memset(ch, 0, sizeof(*ch));
	ch->rq = rq;
	ch->w = rq->scratch;
	ch->ttft_ms = -1;
	upstream_result_init(&ch->res);
	buf_init(&ch->text, REPLY_MAX);
}

static void
chat_free(struct chat *ch)
{
	chat_req_free(&ch->req);
	upstream_result_free(&ch->res);
	buf_free(&ch->text);
}

void
chat_handle(struct req *rq, int stream)
{
	struct chat	 ch;
	struct scratch	*w = rq->scratch;

	chat_init(&ch, rq);
	ch.stream = stream;
	if (check_auth(&ch) == -1)
		goto refused;
	if (!request_is_json(conn_param(rq->conn, "CONTENT_TYPE"))) {
		fail(&ch, 415, NULL, "Content-Type must be application/json");
		goto refused;
	}
	if (read_body(&ch) == -1)
		goto refused;
	buf_reset(&w->out);
	if (chat_req_parse(rq->conf, buf_str(&w->body), w->body.len, &ch.req,
	    &w->out) == -1) {
		invalid(rq, &w->out);
		goto refused;
	}
	if (check_key(&ch) == -1)
		goto refused;
	buf_reset(&w->upbody);
	if (anthropic_request(&w->upbody, ch.req.model, ch.req.max_tokens,
	    ch.req.message, ch.req.message_len, stream) == -1) {
		fail(&ch, 500, NULL, "out of memory");
		goto refused;
	}
	ch.body = &w->upbody;
	serve(&ch);
	chat_free(&ch);
	return;
refused:
	record(&ch, NULL);
	chat_free(&ch);
}


void
messages_handle(struct req *rq)
{
	struct chat	 ch;
	struct scratch	*w = rq->scratch;
	char		 why[256];

	chat_init(&ch, rq);
	ch.passthrough = 1;
	ch.version = conn_param(rq->conn, "HTTP_ANTHROPIC_VERSION");
	ch.beta = conn_param(rq->conn, "HTTP_ANTHROPIC_BETA");
	if (ch.version != NULL && *ch.version == '\0')
		ch.version = NULL;
	if (ch.beta != NULL && *ch.beta == '\0')
		ch.beta = NULL;
	if (check_auth(&ch) == -1)
		goto refused;
	if (!request_header_ok(ch.version) || !request_header_ok(ch.beta)) {
		fail(&ch, 400, NULL, "anthropic-version or anthropic-beta is "
		    "not a plain header value");
		goto refused;
	}
	if (!request_is_json(conn_param(rq->conn, "CONTENT_TYPE"))) {
		fail(&ch, 400, NULL, "Content-Type must be application/json");
		goto refused;
	}
	if (read_body(&ch) == -1)
		goto refused;
	if (messages_req_parse(rq->conf, buf_str(&w->body), w->body.len,
	    &ch.req, &ch.stream, why, sizeof(why)) == -1) {
		fail(&ch, 400, NULL, why);
		goto refused;
	}
	if (check_key(&ch) == -1)
		goto refused;
	ch.body = &w->body;
	serve(&ch);
	chat_free(&ch);
	return;
refused:
	record(&ch, NULL);
	chat_free(&ch);
}
