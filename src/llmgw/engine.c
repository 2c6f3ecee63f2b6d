/*
 * The chat engine (engine.h): a chat request from its token to its
 * record, the route's hooks called where the routes differ.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/budget.h"
#include "store/conf.h"
#include "store/keys.h"
#include "store/spool_writer.h"
#include "app.h"
#include "auth.h"
#include "conn.h"
#include "engine.h"
#include "engine_impl.h"
#include "metrics.h"
#include "req.h"
#include "resp.h"
#include "retry.h"
#include "route.h"
#include "traceparent.h"
#include "usage.h"

#define REPLY_MAX	(32L * 1024 * 1024)	/* a whole non-streamed reply */
#define READ_CHUNK	16384			/* a read of the body */
/* The body's length as the web server gave it: -1 if none, or past
 * "limit" if it is not a number. */
static long
content_length(struct conn *conn, long limit)
{
	const char	*cl = conn_param(conn, "CONTENT_LENGTH");
	char		*end;
	long		 want;

	if (cl == NULL || *cl == '\0')
		return -1;
	errno = 0;
	want = strtol(cl, &end, 10);
	if (errno != 0 || *end != '\0' || want < 0)
		return limit + 1;
	return want;
}

/* A read of the body failed (errno says how): answer it.  Always -1. */
static int
read_failed(struct chat *ch, long limit)
{
	char	 detail[128];

	switch (errno) {
	case ETIMEDOUT:
		snprintf(detail, sizeof(detail), "the request body did not "
		    "arrive within %ld ms", ch->rq->conf->body_timeout_ms);
		ch->hooks->error(ch, 408, "Connection: close\r\n", detail);
		break;
	case EFBIG:
		snprintf(detail, sizeof(detail), "Request body is larger "
		    "than %ld bytes", limit);
		ch->hooks->error(ch, 413, "Connection: close\r\n", detail);
		break;
	default:
		ch->hooks->error(ch, 400, NULL, "could not read the request "
		    "body");
		break;
	}
	return -1;
}

int
chat_read_body(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct buf	*b = &ch->w->body;
	char		*p;
	long		 limit = rq->conf->body_limit, want;
	int64_t		 deadline;
	ssize_t		 n;
	size_t		 room;

	if ((want = content_length(rq->conn, limit)) > limit) {
		errno = EFBIG;
		return read_failed(ch, limit);
	}
	buf_reset(b);
	b->max = (size_t)limit + 1;
	/*
	 * Under FastCGI the body came whole before the request was served
	 * (fcgi.c): these reads take it from memory.  Under CGI they wait
	 * on the web server's pipe, which times them out; the deadline is
	 * checked between them.
	 */
	deadline = clock_mono_ms() + rq->conf->body_timeout_ms;
	for (;;) {
		room = (size_t)limit + 1 - b->len;
		if (want >= 0 && (size_t)want - b->len < room)
			room = (size_t)want - b->len;
		if (room == 0)
			break;
		if (room > READ_CHUNK)
			room = READ_CHUNK;
		if ((p = buf_space(b, room)) == NULL) {
			ch->hooks->error(ch, 500, NULL, "out of memory");
			return -1;
		}
		if (clock_mono_ms() > deadline) {
			errno = ETIMEDOUT;
			return read_failed(ch, limit);
		}
		if ((n = conn_read(rq->conn, p, room)) == -1)
			return read_failed(ch, limit);
		if (n == 0)
			break;
		buf_commit(b, (size_t)n);
	}
	if ((long)b->len <= limit)
		return 0;
	errno = EFBIG;
	return read_failed(ch, limit);
}

int
chat_stream_head(struct chat *ch)
{
	struct buf	 extra;
	int		 rc;

	if (ch->head_sent)
		return ch->rq->conn->gone ? -1 : 0;
	buf_init(&extra, 0);
	rc = buf_adds(&extra, "Cache-Control: no-cache\r\n"
	    "X-Accel-Buffering: no\r\n");
	if (rc == 0 && ch->res.ratelimit.len > 0)
		rc = buf_add(&extra, ch->res.ratelimit.data,
		    ch->res.ratelimit.len);
	if (rc == 0 && ch->hooks->stream_headers != NULL)
		rc = buf_adds(&extra, ch->hooks->stream_headers);
	if (rc == 0 && ch->hooks->pass_request_id &&
	    ch->res.request_id[0] != '\0')
		rc = buf_addf(&extra, "request-id: %s\r\n",
		    ch->res.request_id);
	if (rc == 0)
		rc = resp_head(ch->rq->conn, 200, "text/event-stream",
		    ch->rq->id, buf_str(&extra), -1);
	buf_free(&extra);
	ch->rq->status = 200;
	ch->head_sent = 1;
	if (rc == -1)
		ch->stop = STOP_CLIENT_GONE;
	return rc;
}

int
chat_send(struct chat *ch, const char *p, size_t n)
{
	if (chat_stream_head(ch) == -1 || conn_write(ch->rq->conn, p, n) ==
	    -1 || (!ch->batching && conn_flush(ch->rq->conn) == -1)) {
		ch->stop = STOP_CLIENT_GONE;
		return -1;
	}
	ch->unsent = ch->batching;
	ch->last_write_ms = clock_mono_ms();
	if (ch->ttft_ms < 0 && ch->st.deltas > 0)
		ch->ttft_ms = ch->last_write_ms - ch->rq->t0_ms;
	return 0;
}

int
chat_event(struct chat *ch, const char *event, const char *data,
    size_t len)
{
	struct buf	*out = &ch->w->out;

	buf_reset(out);
	if (sse_encode(out, event, data, len) == -1) {
		ch->stop = STOP_TOO_BIG;
		return -1;
	}
	return chat_send(ch, out->data, out->len);
}

void
chat_keep_text(struct chat *ch, const char *text, size_t len)
{
	ch->text_bytes += (long)len;
	/* If it will not fit, the record gets what did. */
	if (ch->rq->conf->content == LOG_CONTENT_FULL && !ch->text_cut &&
	    buf_add(&ch->text, text, len) == -1) {
		ch->text_cut = 1;
		log_info("request %s: reply text past %zu bytes not kept for "
		    "its record", ch->rq->id, ch->text.len);
	}
}

void
chat_failure_headers(const struct chat *ch, const struct verdict *v,
    char *extra, size_t size)
{
	int	 n = 0;

	/* llmgw has made the attempts it would: a client that retries on
	 * top multiplies them (the official SDKs honour this header). */
	if (ch->called)
		n = snprintf(extra, size, "x-should-retry: false\r\n");
	else
		extra[0] = '\0';
	if (n >= 0 && (size_t)n < size && v->status == 429 &&
	    ch->res.retry_after_ms >= 0)
		snprintf(extra + n, size - (size_t)n, "Retry-After: %ld\r\n",
		    (ch->res.retry_after_ms + 999) / 1000);
}

/* A text delta, from anthropic_stream_event(). */
static int
on_text(void *arg, const char *text, size_t len)
{
	struct chat	*ch = arg;

	if (ch->hooks->text != NULL && ch->hooks->text(ch, text, len) == -1)
		return -1;
	chat_keep_text(ch, text, len);
	return 0;
}

/*
 * The reply's running cost against its hold (meter.h): with no room left
 * in the key's budget, the stream ends here, before this event goes on.
 */
static int
metered(struct chat *ch)
{
	char	 why[256];
	long	 left;

	switch (meter_check(&ch->meter, &ch->st, why, sizeof(why))) {
	case METER_OK:
		if (why[0] != '\0')
			log_warn("request %s: %s", ch->rq->id, why);
		return 0;
	case METER_SPENT:
		break;
	}
	log_info("request %s: %s; ended", ch->rq->id, why);
	budget_period(ch->key.period, clock_wall_ms(), why, sizeof(why), &left);
	ch->res.retry_after_ms = left * 1000;
	ch->stop = STOP_BUDGET;
	return -1;
}

static int
on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct chat	*ch = arg;
	int		 kind;

	kind = anthropic_stream_event(&ch->st, data, len, on_text, ch);
	if ((kind == AEV_START || kind == AEV_TEXT || kind == AEV_TOOL_USE ||
	    kind == AEV_USAGE) && metered(ch) == -1)
		return -1;
	switch (kind) {
	case -1:
		return -1;	/* the hook said why */
	case AEV_MALFORMED:
		ch->stop = STOP_MALFORMED;
		return -1;
	case AEV_ERROR:
		/* Passed on once the stream has begun; before, retried. */
		if (ch->hooks->event != NULL && ch->head_sent)
			(void)ch->hooks->event(ch, kind, event, data, len);
		ch->stop = STOP_ERROR_EVENT;
		return -1;
	default:
		return ch->hooks->event != NULL ?
		    ch->hooks->event(ch, kind, event, data, len) : 0;
	}
}

/*
 * What the upstream sent since the last time, every event of it: the
 * events for the client go in one write, not one each (nothing waits for
 * more: this is all there is now).
 */
static int
on_stream_data(void *arg, const char *p, size_t n)
{
	struct chat	*ch = arg;
	enum sse_status	 st;

	ch->batching = 1;
	st = sse_parser_feed(&ch->w->sse, p, n, on_event, ch);
	ch->batching = 0;
	if (ch->unsent) {
		ch->unsent = 0;
		if (conn_flush(ch->rq->conn) == -1) {
			ch->stop = STOP_CLIENT_GONE;
			return -1;
		}
	}
	switch (st) {
	case SSE_OK:
		return 0;
	case SSE_ETOOBIG:
		ch->stop = STOP_TOO_BIG;
		return -1;
	case SSE_ESTOPPED:
		break;
	}
	return -1;
}

static int
on_reply_data(void *arg, const char *p, size_t n)
{
	struct chat	*ch = arg;

	if (buf_add(&ch->w->reply, p, n) == -1) {
		ch->stop = STOP_TOO_BIG;
		return -1;
	}
	return 0;
}

/*
 * In the upstream loop thread (upstream.h): whether a piece of the stream
 * may be relayed there, which must not wait: not with a budget hold that
 * may have to grow in the database, nor with the socket to the web
 * server full (its events are smaller than the piece, or not much
 * larger).
 */
static int
can_relay(void *arg, size_t len)
{
	struct chat	*ch = arg;

	if (ch->meter.resv != NULL && ch->meter.resv->id[0] != '\0')
		return 0;
	return conn_room(ch->rq->conn, 2 * len + 1024);
}

/*
 * About once a second while waiting for the upstream.  The web server
 * may have aborted the request or gone (conn_check()).  For streams, after
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

	if (conn_check(ch->rq->conn) == -1) {
		ch->stop = STOP_CLIENT_GONE;
		return -1;
	}
	if (!ch->stream || ch->rq->conf->keepalive_ms == 0 ||
	    now - ch->last_write_ms < ch->rq->conf->keepalive_ms)
		return 0;
	if (chat_stream_head(ch) == -1 ||
	    conn_puts(ch->rq->conn, ": keep-alive\n\n") == -1 ||
	    conn_flush(ch->rq->conn) == -1) {
		ch->stop = STOP_CLIENT_GONE;
		return -1;
	}
	ch->last_write_ms = now;
	return 0;
}

/* Judge an attempt; a whole reply is read here. */
static void
judge(struct chat *ch, struct verdict *v)
{
	struct attempt	 a = { &ch->res, ch->stop, ch->stream, &ch->st };

	verdict_judge(&a, v);
	if (!v->ok || ch->stream)
		return;
	buf_reset(&ch->text);
	if (anthropic_parse_reply(buf_str(&ch->w->reply), ch->w->reply.len,
	    &ch->text, &ch->st) == -1) {
		v->ok = 0;
		verdict_set(v, 502, 0, "upstream_malformed",
		    "the AI service sent a malformed reply");
		snprintf(v->log, sizeof(v->log), "reply of %zu bytes is not "
		    "a message", ch->w->reply.len);
		return;
	}
	ch->text_bytes = (long)ch->text.len;
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

/*
 * Before retry "attempt" of a failed call: wait as long as it should, and
 * say 1; or 0 if waiting would pass the request's total_timeout.
 */
static int
retry_wait(struct chat *ch, int attempt, const char *why)
{
	const struct conf	*conf = ch->rq->conf;
	long			 delay;

	delay = retry_delay_ms(conf->retry_base_ms, conf->retry_max_ms,
	    attempt, ch->res.retry_after_ms, reqid_random());
	if (delay < 0 || clock_mono_ms() - ch->rq->t0_ms + delay >
	    conf->total_timeout_ms)
		return 0;
	log_info("request %s: %s; retry %d of %ld in %ld ms", ch->rq->id, why,
	    attempt, conf->retries, delay);
	sleep_ms(delay);
	ch->retries++;
	return 1;
}

/*
 * Call the API until an attempt succeeds, the client has been sent
 * something, or a failure is not worth retrying.  "v" says how it ended.
 */
static void
call_upstream(struct chat *ch, struct verdict *v)
{
	const struct conf	*conf = ch->rq->conf;
	struct scratch		*w = ch->w;
	struct upstream_sink	 sink;
	int			 attempt;

	sink.on_data = ch->stream ? on_stream_data : on_reply_data;
	sink.on_tick = on_tick;
	sink.can_relay = ch->stream ? can_relay : NULL;
	sink.arg = ch;
	for (attempt = 1;; attempt++) {
		memset(&ch->st, 0, sizeof(ch->st));
		ch->stop = STOP_NONE;
		sse_parser_reset(&w->sse);
		buf_reset(&w->reply);
		w->reply.max = REPLY_MAX;
		upstream_post(w->up, conf, ch->body->data, ch->body->len,
		    ch->stream, ch->version, ch->beta, &sink, &ch->res);
		judge(ch, v);
		if (v->ok || ch->stop == STOP_CLIENT_GONE || ch->head_sent ||
		    !v->retry || attempt > conf->retries ||
		    !retry_wait(ch, attempt, v->log))
			return;
	}
}

int
chat_fetch(struct chat *ch, const char *url, const char *body, size_t len,
    struct buf *reply)
{
	const struct conf	*conf = ch->rq->conf;
	struct anthropic_error	 err;
	char			 why[64];
	int			 attempt, rc;

	ch->called = 1;
	for (attempt = 1;; attempt++) {
		rc = upstream_fetch(ch->w->up, conf, url, body, len,
		    ch->version, ch->beta, reply, &ch->res);
		if (rc == 0 && ch->res.status >= 200 && ch->res.status <= 299)
			return 0;
		if (rc == 0)
			anthropic_parse_error(buf_str(&ch->res.errbody),
			    ch->res.errbody.len, &err);
		if (!retry_worth(rc == 0 ? ch->res.status : 0, rc == 0 ?
		    &err : NULL) || attempt > conf->retries)
			return -1;
		snprintf(why, sizeof(why), "HTTP %ld", ch->res.status);
		if (!retry_wait(ch, attempt, rc == 0 ? why : ch->res.detail))
			return -1;
	}
}

/* The upstream's request-id for a log line. */
static const char *
upstream_id(const struct chat *ch)
{
	return ch->res.request_id[0] != '\0' ? ch->res.request_id : "-";
}

/* With the request checked and its budget held: call and answer. */
static void
serve(struct chat *ch, struct verdict *v)
{
	struct req	*rq = ch->rq;

	ch->called = 1;
	ch->last_write_ms = clock_mono_ms();
	metrics_request_begin(rq->app->metrics, ch->stream);
	call_upstream(ch, v);
	if (v->ok && ch->stream) {
		if (chat_stream_head(ch) == 0)
			ch->hooks->stream_end(ch);
	} else if (v->ok) {
		rq->status = 200;
		ch->ttft_ms = clock_mono_ms() - rq->t0_ms;
		if (ch->hooks->reply(ch) == -1)
			ch->stop = STOP_CLIENT_GONE;
	} else if (ch->stop == STOP_CLIENT_GONE) {
		log_info("request %s: client went away after %ld deltas; "
		    "upstream transfer stopped", rq->id, ch->st.deltas);
	} else if (ch->head_sent) {
		log_warn("request %s: %s (upstream request-id %s); stream "
		    "ended with an error event", rq->id, v->log,
		    upstream_id(ch));
		ch->hooks->stream_error(ch, v);
	} else {
		log_warn("request %s: %s (upstream request-id %s); answered "
		    "%d", rq->id, v->log, upstream_id(ch), v->status);
		ch->hooks->http_error(ch, v);
	}
	metrics_request_end(rq->app->metrics, ch->stream);
}

/* Fill the request's record from the chat, then spool it. */
static void
record(struct chat *ch, const struct verdict *v)
{
	struct req	*rq = ch->rq;
	struct record	*r = &rq->rec;
	long		 out = ch->st.usage.output_tokens;
	char		 id[sizeof(r->id)];
	const char	*prompt;
	size_t		 prompt_len;

	memcpy(id, r->id, sizeof(id));
	memset(r, 0, sizeof(*r));
	memcpy(r->id, id, sizeof(id));
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
	r->disconnected = ch->stop == STOP_CLIENT_GONE;
	r->budget_exhausted = ch->stop == STOP_BUDGET;
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
		if (!v->ok)
			str_copy(r->upstream_error, sizeof(r->upstream_error),
			    v->log);
		str_copy(r->upstream_request_id, sizeof(r->upstream_request_id),
		    ch->res.request_id);
	}
	r->max_tokens = ch->req.max_tokens;
	if (ch->called) {
		str_copy(r->response_id, sizeof(r->response_id),
		    ch->st.message_id);
		str_copy(r->finish_reason, sizeof(r->finish_reason),
		    ch->st.stop_reason);
	}
	traceparent_parse(conn_param(rq->conn, "HTTP_TRACEPARENT"),
	    r->trace_id, r->parent_span_id);
	r->prompt_bytes = r->reply_bytes = -1;
	if (rq->conf->content != LOG_CONTENT_NONE && ch->body != NULL) {
		/* The message alone, where the route read one. */
		prompt = ch->req.message != NULL ? ch->req.message :
		    ch->body->data;
		prompt_len = ch->req.message != NULL ?
		    ch->req.message_len : ch->body->len;
		r->prompt_bytes = (long)prompt_len;
		r->reply_bytes = ch->text_bytes;
		if (rq->conf->content == LOG_CONTENT_FULL) {
			r->prompt = prompt;
			r->prompt_len = prompt_len;
			r->reply = buf_str(&ch->text);
			r->reply_len = ch->text.len;
		}
	}
	req_spool(rq);
}

int
chat_begin(struct chat *ch, struct req *rq, const struct chat_hooks *hooks,
    int stream)
{
	memset(ch, 0, sizeof(*ch));
	ch->rq = rq;
	ch->w = rq->scratch;
	ch->hooks = hooks;
	ch->stream = stream;
	ch->ttft_ms = -1;
	upstream_result_init(&ch->res);
	buf_init(&ch->text, REPLY_MAX);
	return chat_check_auth(ch);
}

void
chat_end(struct chat *ch)
{
	ch->rq->conn->headers = NULL;	/* ch->limits ends here */
	chat_req_free(&ch->req);
	upstream_result_free(&ch->res);
	buf_free(&ch->text);
}

void
chat_run(struct req *rq, const struct chat_hooks *hooks, int stream)
{
	struct chat	 ch;
	struct verdict	 v;

	memset(&v, 0, sizeof(v));
	reqid_new(rq->rec.id);		/* what its budget is held under */
	if (chat_begin(&ch, rq, hooks, stream) == 0 &&
	    hooks->prepare(&ch) == 0 && chat_check_admission(&ch) == 0)
		serve(&ch, &v);
	record(&ch, &v);
	chat_end(&ch);
}
