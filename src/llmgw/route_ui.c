/*
 * POST /chat/ui: the Vercel AI SDK's chat protocol, so that useChat with
 * its DefaultChatTransport talks to llmgw unchanged.  In: the whole
 * conversation as UI messages (request_ui.c).  Out: the UI message
 * stream as the `ai` package (7.x) defines it: Server-Sent Events, each a
 * JSON chunk on one data line, under the header
 * x-vercel-ai-ui-message-stream: v1:
 *
 *   {"type":"start","messageId":..}   {"type":"text-start","id":"text-0"}
 *   {"type":"text-delta","id":"text-0","delta":..}   (one per delta)
 *   {"type":"text-end","id":"text-0"}
 *   {"type":"finish","finishReason":..,"messageMetadata":{"usage":..}}
 *   [DONE]
 *
 * A failure once the stream began is {"type":"error","errorText":..}
 * then [DONE]; before, an HTTP error with FastAPI's {"detail": ...}, as
 * on /chat.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "conn.h"
#include "engine.h"
#include "req.h"
#include "request.h"
#include "routes.h"

#define TEXT_ID	"text-0"

static void
ui_error(struct chat *ch, int status, const char *extra, const char *detail)
{
	req_error(ch->rq, status, extra, detail);
}

static int
ui_prepare(struct chat *ch)
{
	struct req	*rq = ch->rq;
	struct scratch	*w = ch->w;

	if (!request_is_json_lax(conn_param(rq->conn, "CONTENT_TYPE"))) {
		ui_error(ch, 415, NULL, "Content-Type must be application/json");
		return -1;
	}
	if (chat_read_body(ch) == -1)
		return -1;
	buf_reset(&w->out);
	buf_reset(&w->upbody);
	if (ui_req_parse(rq->conf, buf_str(&w->body), w->body.len, &ch->req,
	    &w->upbody, &w->out) == -1) {
		req_unprocessable(rq, &w->out);
		return -1;
	}
	ch->body = &w->upbody;
	return 0;
}

static int
ui_count_body(struct chat *ch, struct buf *b)
{
	return messages_count_body(buf_str(&ch->w->upbody), ch->w->upbody.len,
	    b);
}

/*
 * Send chunks "json" (one or more "data: ...\n\n" lines already framed,
 * or a bare JSON chunk when "framed" is 0), after the start of the message
 * and of its text if this is the first.  0, or -1 if the client is gone.
 */
static int
ui_send(struct chat *ch, const char *json, size_t len, int framed)
{
	struct buf	*out = &ch->w->out;
	int		 rc = 0;

	buf_reset(out);
	out->max = BUF_NOCAP;
	if (!ch->began) {
		rc |= buf_adds(out, "data: {\"type\":\"start\",\"messageId\":");
		rc |= json_add_cstr(out, ch->rq->id);
		rc |= buf_adds(out, "}\n\ndata: {\"type\":\"text-start\","
		    "\"id\":\"" TEXT_ID "\"}\n\n");
		ch->began = 1;
	}
	if (!framed)
		rc |= buf_adds(out, "data: ");
	rc |= buf_add(out, json, len);
	if (!framed)
		rc |= buf_adds(out, "\n\n");
	if (rc != 0)
		return -1;
	return chat_send(ch, out->data, out->len);
}

static int
ui_text(struct chat *ch, const char *text, size_t len)
{
	struct buf	 chunk;
	int		 rc;

	if (len == 0)
		return 0;
	buf_init(&chunk, BUF_NOCAP);
	rc = buf_adds(&chunk, "{\"type\":\"text-delta\",\"id\":\"" TEXT_ID
	    "\",\"delta\":") == -1 || json_add_str(&chunk, text, len) == -1 ||
	    buf_addc(&chunk, '}') == -1 ? -1 :
	    ui_send(ch, chunk.data, chunk.len, 0);
	buf_free(&chunk);
	return rc;
}

/* The AI SDK's finish reason for the Messages API's stop reason. */
static const char *
finish_reason(const char *stop)
{
	if (stop[0] == '\0' || strcmp(stop, "end_turn") == 0 ||
	    strcmp(stop, "stop_sequence") == 0 || strcmp(stop, "pause_turn") ==
	    0)
		return "stop";
	if (strcmp(stop, "max_tokens") == 0)
		return "length";
	if (strcmp(stop, "tool_use") == 0)
		return "tool-calls";
	if (strcmp(stop, "refusal") == 0)
		return "content-filter";
	return "other";
}

static void
ui_stream_end(struct chat *ch)
{
	const struct anthropic_usage	*u = &ch->st.usage;
	struct buf			*out = &ch->w->out;
	char				 chunks[512];
	int				 n;

	/* An empty reply still has its start. */
	if (!ch->began && ui_send(ch, "", 0, 1) == -1)
		return;

	n = snprintf(chunks, sizeof(chunks), "data: {\"type\":\"text-end\","
	    "\"id\":\"" TEXT_ID "\"}\n\ndata: {\"type\":\"finish\","
	    "\"finishReason\":\"%s\",\"messageMetadata\":{\"usage\":"
	    "{\"inputTokens\":%ld,\"outputTokens\":%ld,\"totalTokens\":%ld,"
	    "\"cachedInputTokens\":%ld}}}\n\ndata: [DONE]\n\n",
	    finish_reason(ch->st.stop_reason), u->input_tokens,
	    u->output_tokens, u->input_tokens + u->output_tokens,
	    u->cache_read_input_tokens);
	/* Queued, not flushed: it goes with the end of the request, after
	 * the record. */
	buf_reset(out);
	if (n > 0 && (size_t)n < sizeof(chunks) &&
	    buf_add(out, chunks, (size_t)n) == 0)
		(void)conn_write(ch->rq->conn, out->data, out->len);
}

/* After the stream began: an error chunk the user may read, the end. */
static void
ui_stream_error(struct chat *ch, const struct verdict *v)
{
	struct buf	 chunks;

	buf_init(&chunks, BUF_NOCAP);
	if (buf_adds(&chunks, "data: {\"type\":\"error\",\"errorText\":") ==
	    0 && json_add_cstr(&chunks, v->detail) == 0 &&
	    buf_adds(&chunks, "}\n\ndata: [DONE]\n\n") == 0)
		(void)ui_send(ch, chunks.data, chunks.len, 1);
	buf_free(&chunks);
}

static void
ui_http_error(struct chat *ch, const struct verdict *v)
{
	char	 extra[96];

	chat_failure_headers(ch, v, extra, sizeof(extra));
	ui_error(ch, v->status, extra[0] != '\0' ? extra : NULL, v->detail);
}

static const struct chat_hooks ui_hooks = {
	.token_param = NULL,
	.pass_request_id = 0,
	.stream_headers = "x-vercel-ai-ui-message-stream: v1\r\n",
	.error = ui_error,
	.prepare = ui_prepare,
	.count_body = ui_count_body,
	.text = ui_text,
	.event = NULL,
	.stream_end = ui_stream_end,
	.stream_error = ui_stream_error,
	.reply = NULL,
	.http_error = ui_http_error,
};

void
ui_handle(struct req *rq)
{
	chat_run(rq, &ui_hooks, 1);
}
