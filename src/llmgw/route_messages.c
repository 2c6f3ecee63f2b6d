/*
 * POST /v1/messages: the Messages API passed through.  The client's body
 * goes upstream as it is (llmgw checks only the model and max_tokens it
 * must), and the upstream's answer comes back as it was: a whole reply,
 * its error body, or its stream, event by event.  Keys come in x-api-key
 * as the Anthropic SDKs send them, or in Authorization: Bearer.  Errors
 * of llmgw's own are in the Messages API's shape.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "engine.h"
#include "req.h"
#include "request.h"
#include "resp.h"
#include "routes.h"

/* The error event when even it will not fit in memory. */
static const char oom_event[] = "{\"type\":\"error\",\"error\":{\"type\":"
    "\"api_error\",\"message\":\"out of memory\"}}";

static void
messages_error(struct chat *ch, int status, const char *extra,
    const char *detail)
{
	req_error(ch->rq, status, extra, detail);
}

static int
messages_prepare(struct chat *ch)
{
	struct req	*rq = ch->rq;
	char		 why[256];

	ch->version = conn_param(rq->conn, "HTTP_ANTHROPIC_VERSION");
	ch->beta = conn_param(rq->conn, "HTTP_ANTHROPIC_BETA");
	if (ch->version != NULL && *ch->version == '\0')
		ch->version = NULL;
	if (ch->beta != NULL && *ch->beta == '\0')
		ch->beta = NULL;
	if (!request_header_ok(ch->version) || !request_header_ok(ch->beta)) {
		messages_error(ch, 400, NULL, "anthropic-version or "
		    "anthropic-beta is not a plain header value");
		return -1;
	}
	if (!request_is_json(conn_param(rq->conn, "CONTENT_TYPE"))) {
		messages_error(ch, 400, NULL, "Content-Type must be "
		    "application/json");
		return -1;
	}
	if (chat_read_body(ch) == -1)
		return -1;
	if (messages_req_parse(rq->conf, buf_str(&ch->w->body),
	    ch->w->body.len, &ch->req, &ch->stream, why, sizeof(why)) == -1) {
		messages_error(ch, 400, NULL, why);
		return -1;
	}
	ch->body = &ch->w->body;
	return 0;
}

static int
messages_count(struct chat *ch, struct buf *b)
{
	return messages_count_body(buf_str(&ch->w->body), ch->w->body.len, b);
}

/* Each event as the upstream sent it, flushed at once. */
static int
messages_event(struct chat *ch, int kind, const char *event,
    const char *data, size_t len)
{
	(void)kind;
	return chat_event(ch, event[0] != '\0' ? event : NULL, data, len);
}

static void
messages_stream_end(struct chat *ch)
{
	(void)ch;	/* message_stop went out as it came */
}

/* After the stream began: the Messages API's error event. */
static void
messages_stream_error(struct chat *ch, const struct verdict *v)
{
	struct buf	 data;

	if (ch->stop == STOP_ERROR_EVENT)
		return;		/* the upstream's went out already */
	buf_init(&data, BUF_NOCAP);
	if (anthropic_error_body(&data, v->status, v->detail) == 0)
		(void)chat_event(ch, "error", data.data, data.len);
	else
		(void)chat_event(ch, "error", oom_event, sizeof(oom_event) - 1);
	buf_free(&data);
}

/* The headers of the upstream's answer that the client sees. */
static void
pass_headers(const struct chat *ch, char *extra, size_t size)
{
	int	 n = 0;

	extra[0] = '\0';
	if (ch->res.request_id[0] != '\0')
		n = snprintf(extra, size, "request-id: %s\r\n",
		    ch->res.request_id);
	if (n >= 0 && (size_t)n < size && ch->res.retry_after_ms >= 0)
		n += snprintf(extra + n, size - (size_t)n,
		    "Retry-After: %ld\r\n", (ch->res.retry_after_ms + 999) /
		    1000);
	if (n >= 0 && (size_t)n < size && ch->res.ratelimit.len > 0)
		snprintf(extra + n, size - (size_t)n, "%s",
		    buf_str(&ch->res.ratelimit));
}

static int
messages_reply(struct chat *ch)
{
	char	 extra[2048];

	pass_headers(ch, extra, sizeof(extra));
	return resp_body(ch->rq->conn, 200, "application/json", ch->rq->id,
	    extra, ch->w->reply.data, ch->w->reply.len, 0);
}

static void
messages_http_error(struct chat *ch, const struct verdict *v)
{
	char	 extra[2048];

	/*
	 * The upstream's own answer, as it was; but not what it said of
	 * llmgw's own credential (401, 403), which is the operator's to read
	 * in the log, not the client's.
	 */
	if (ch->res.outcome == UP_DONE && ch->res.status >= 400 &&
	    ch->res.status != 401 && ch->res.status != 403 &&
	    ch->res.errbody.len > 0 && ch->stop == STOP_NONE) {
		pass_headers(ch, extra, sizeof(extra));
		/* llmgw's retries are spent: the client's would multiply. */
		if (strlen(extra) + 24 < sizeof(extra))
			strcat(extra, "x-should-retry: false\r\n");
		ch->rq->status = (int)ch->res.status;
		resp_body(ch->rq->conn, (int)ch->res.status,
		    "application/json", ch->rq->id, extra,
		    ch->res.errbody.data, ch->res.errbody.len, 0);
		return;
	}
	chat_failure_headers(ch, v, extra, sizeof(extra));
	messages_error(ch, v->status, extra[0] != '\0' ? extra : NULL,
	    v->detail);
}

static const struct chat_hooks messages_hooks = {
	.token_param = "HTTP_X_API_KEY",
	.pass_request_id = 1,
	.error = messages_error,
	.prepare = messages_prepare,
	.count_body = messages_count,
	.text = NULL,
	.event = messages_event,
	.stream_end = messages_stream_end,
	.stream_error = messages_stream_error,
	.reply = messages_reply,
	.http_error = messages_http_error,
};

void
messages_handle(struct req *rq)
{
	chat_run(rq, &messages_hooks, 0);
}
