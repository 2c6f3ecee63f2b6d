/*
 * POST /chat and POST /chat/stream, the reference service's routes:
 * {"message", "model", "max_tokens", "include_usage"} in, and out a JSON
 * {"reply", "input_tokens", "output_tokens"} or SSE "data: <text>"
 * events, then "data: [DONE]".  Errors are FastAPI's {"detail": ...}.
 * The engine (engine.c) does the rest.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "store/conf.h"
#include "anthropic.h"
#include "conn.h"
#include "engine.h"
#include "req.h"
#include "request.h"
#include "resp.h"
#include "routes.h"

static void
chat_error(struct chat *ch, int status, const char *extra, const char *detail)
{
	req_error(ch->rq, status, extra, detail);
}

static int
chat_prepare(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct scratch	*w = ch->w;

	if (!request_is_json_lax(conn_param(rq->conn, "CONTENT_TYPE"))) {
		chat_error(ch, 415, NULL, "Content-Type must be "
		    "application/json");
		return -1;
	}
	if (chat_read_body(ch) == -1)
		return -1;
	buf_reset(&w->out);
	if (chat_req_parse(rq->conf, buf_str(&w->body), w->body.len, &ch->req,
	    &w->out) == -1) {
		req_unprocessable(rq, &w->out);
		return -1;
	}
	buf_reset(&w->upbody);
	if (anthropic_request(&w->upbody, ch->req.model, ch->req.max_tokens,
	    ch->req.message, ch->req.message_len, ch->stream) == -1) {
		chat_error(ch, 500, NULL, "out of memory");
		return -1;
	}
	ch->body = &w->upbody;
	return 0;
}

static int
chat_count_body(struct chat *ch, struct buf *b)
{
	return anthropic_request(b, ch->req.model, 0, ch->req.message,
	    ch->req.message_len, 0);
}

/*
 * Where to cut "len" bytes of text so that no line of an event is exactly
 * "[DONE]", which every client reads as the end: just inside the first
 * such line ("[DON" ends one event, "E]" begins the next), else "len".
 */
static size_t
done_cut(const char *text, size_t len)
{
	size_t	 s, e;

	for (s = 0; s < len; s = e + 1) {
		for (e = s; e < len && text[e] != '\n' && text[e] != '\r'; e++)
			;
		if (e - s == 6 && memcmp(text + s, "[DONE]", 6) == 0)
			return s + 4;
	}
	return len;
}

/* A text delta for the client: one event (or more, see done_cut()),
 * flushed at once. */
static int
chat_text(struct chat *ch, const char *text, size_t len)
{
	size_t	 cut;

	for (; len > 0; text += cut, len -= cut) {
		cut = done_cut(text, len);
		if (chat_event(ch, NULL, text, cut) == -1)
			return -1;
	}
	return 0;
}

static void
chat_stream_end(struct chat *ch)
{
	char	 usage[128];

	if (ch->req.include_usage) {
		snprintf(usage, sizeof(usage), "event: usage\ndata: "
		    "{\"input_tokens\":%ld,\"output_tokens\":%ld}\n\n",
		    ch->st.usage.input_tokens, ch->st.usage.output_tokens);
		(void)conn_puts(ch->rq->conn, usage);
	}
	(void)conn_puts(ch->rq->conn, "data: [DONE]\n\n");
}

/* After the stream began: event: error {"type", "detail"}, the end. */
static void
chat_stream_error(struct chat *ch, const struct verdict *v)
{
	static const char	 oom[] = "{\"type\":\"internal\","
	    "\"detail\":\"out of memory\"}";
	struct buf		 data;

	buf_init(&data, BUF_NOCAP);
	if (buf_adds(&data, "{\"type\":") == -1 ||
	    json_add_cstr(&data, v->type) == -1 ||
	    buf_adds(&data, ",\"detail\":") == -1 ||
	    json_add_cstr(&data, v->detail) == -1 || buf_addc(&data, '}') == -1)
		(void)chat_event(ch, "error", oom, sizeof(oom) - 1);
	else
		(void)chat_event(ch, "error", data.data, data.len);
	buf_free(&data);
}

static int
chat_reply(struct chat *ch)
{
	struct buf	*out = &ch->w->out;

	buf_reset(out);
	if (buf_adds(out, "{\"reply\":") == -1 ||
	    json_add_str(out, buf_str(&ch->text), ch->text.len) == -1 ||
	    buf_addf(out, ",\"input_tokens\":%ld,\"output_tokens\":%ld}",
	    ch->st.usage.input_tokens, ch->st.usage.output_tokens) == -1) {
		req_error(ch->rq, 500, NULL, "out of memory");
		return 0;
	}
	return resp_body(ch->rq->conn, 200, "application/json", ch->rq->id,
	    ch->res.ratelimit.len > 0 ? ch->res.ratelimit.data : NULL,
	    out->data, out->len, 0);
}

static void
chat_http_error(struct chat *ch, const struct verdict *v)
{
	char	 extra[96];

	chat_failure_headers(ch, v, extra, sizeof(extra));
	chat_error(ch, v->status, extra[0] != '\0' ? extra : NULL, v->detail);
}

static const struct chat_hooks chat_hooks = {
	.token_param = NULL,
	.pass_request_id = 0,
	.error = chat_error,
	.prepare = chat_prepare,
	.count_body = chat_count_body,
	.text = chat_text,
	.event = NULL,
	.stream_end = chat_stream_end,
	.stream_error = chat_stream_error,
	.reply = chat_reply,
	.http_error = chat_http_error,
};

void
chat_handle(struct req *rq, int stream)
{
	chat_run(rq, &chat_hooks, stream);
}
