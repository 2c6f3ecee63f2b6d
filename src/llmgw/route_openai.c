/*
 * POST /v1/chat/completions: OpenAI's chat completions over the Messages
 * API (openai.c translates), for the OpenAI SDKs and the many tools that
 * speak it.  Every answer of this route, errors included, is in OpenAI's
 * shapes: chat.completion, chat.completion.chunk events then [DONE], and
 * {"error": {"message", "type", "param", "code"}}.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/str.h"
#include "conn.h"
#include "engine.h"
#include "openai.h"
#include "req.h"
#include "request.h"
#include "resp.h"
#include "routes.h"

static void
answer_error(struct chat *ch, int status, const char *extra,
    const char *message, const char *param)
{
	req_error_param(ch->rq, status, extra, message, param);
}

static void
oa_error(struct chat *ch, int status, const char *extra, const char *detail)
{
	answer_error(ch, status, extra, detail, NULL);
}

static int
oa_prepare(struct chat *ch)
{
	struct req		*rq = ch->rq;
	struct scratch		*w = ch->w;
	struct openai_err	 err;
	int			 usage;

	if (!request_is_json(conn_param(rq->conn, "CONTENT_TYPE"))) {
		answer_error(ch, 415, NULL, "Content-Type must be "
		    "application/json", NULL);
		return -1;
	}
	if (chat_read_body(ch) == -1)
		return -1;
	buf_reset(&w->upbody);
	if (openai_request(rq->conf, buf_str(&w->body), w->body.len, &ch->req,
	    &ch->stream, &usage, &w->upbody, &err) == -1) {
		answer_error(ch, err.status, NULL, err.message, err.param);
		return -1;
	}
	ch->req.include_usage = usage;
	memset(&ch->openai, 0, sizeof(ch->openai));
	snprintf(ch->openai.id, sizeof(ch->openai.id), "chatcmpl-%s", rq->id);
	str_copy(ch->openai.model, sizeof(ch->openai.model), ch->req.model);
	ch->openai.created = (long)time(NULL);
	ch->body = &w->upbody;
	return 0;
}

static int
oa_count_body(struct chat *ch, struct buf *b)
{
	return messages_count_body(buf_str(&ch->w->upbody),
	    ch->w->upbody.len, b);
}

/* Each Messages API event as the chunks it makes, flushed at once. */
static int
oa_event(struct chat *ch, int kind, const char *event, const char *data,
    size_t len)
{
	struct buf	*out = &ch->w->out;

	(void)kind;
	(void)event;
	buf_reset(out);
	out->max = BUF_NOCAP;
	if (openai_stream_event(&ch->openai, data, len, out) == -1)
		return -1;
	return out->len == 0 ? 0 : chat_send(ch, out->data, out->len);
}

static void
oa_stream_end(struct chat *ch)
{
	struct buf	*out = &ch->w->out;

	buf_reset(out);
	out->max = BUF_NOCAP;
	/* Queued: it goes with the end of the request, after the record. */
	if (openai_stream_end(&ch->openai, &ch->st.usage,
	    ch->req.include_usage, out) == 0)
		(void)conn_write(ch->rq->conn, out->data, out->len);
}

/* After the stream began: an error object, as OpenAI's API streams one. */
static void
oa_stream_error(struct chat *ch, const struct verdict *v)
{
	struct buf	 b;

	buf_init(&b, BUF_NOCAP);
	if (buf_adds(&b, "data: ") == 0 &&
	    openai_error(&b, v->status, v->detail, NULL) == 0 &&
	    buf_adds(&b, "\n\n") == 0)
		(void)chat_send(ch, b.data, b.len);
	buf_free(&b);
}

static int
oa_reply(struct chat *ch)
{
	struct buf	*out = &ch->w->out;

	buf_reset(out);
	out->max = BUF_NOCAP;
	if (openai_reply(ch->w->reply.data, ch->w->reply.len, ch->openai.id,
	    ch->openai.created, out) == -1) {
		answer_error(ch, 502, NULL, "the AI service sent a reply llmgw "
		    "could not translate", NULL);
		return 0;
	}
	ch->rq->status = 200;
	return resp_body(ch->rq->conn, 200, "application/json", ch->rq->id,
	    NULL, out->data, out->len, 0);
}

static void
oa_http_error(struct chat *ch, const struct verdict *v)
{
	struct anthropic_error	 ae;
	char			 extra[64];

	chat_failure_headers(ch, v, extra, sizeof(extra));
	/* The upstream's words for the client's mistakes; never what it
	 * said of llmgw's own credential (401, 403). */
	if (ch->res.outcome == UP_DONE && ch->stop == STOP_NONE &&
	    ch->res.errbody.len > 0 &&
	    ch->res.status >= 400 && ch->res.status < 500 &&
	    ch->res.status != 401 && ch->res.status != 403 &&
	    anthropic_parse_error(ch->res.errbody.data, ch->res.errbody.len,
	    &ae) == 0) {
		answer_error(ch, (int)ch->res.status, extra[0] != '\0' ? extra :
		    NULL, ae.message, NULL);
		return;
	}
	answer_error(ch, v->status, extra[0] != '\0' ? extra : NULL,
	    v->detail, NULL);
}

static const struct chat_hooks openai_hooks = {
	.token_param = NULL,
	.pass_request_id = 0,
	.stream_headers = NULL,
	.error = oa_error,
	.prepare = oa_prepare,
	.count_body = oa_count_body,
	.text = NULL,
	.event = oa_event,
	.stream_end = oa_stream_end,
	.stream_error = oa_stream_error,
	.reply = oa_reply,
	.http_error = oa_http_error,
};

void
openai_handle(struct req *rq)
{
	chat_run(rq, &openai_hooks, 0);
}
