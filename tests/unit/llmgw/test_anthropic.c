#include "config.h"

#include <string.h>

#include "core/buf.h"
#include "llmgw/anthropic.h"
#include "../tap.h"

static struct buf	 text;

static int
on_text(void *arg, const char *s, size_t len)
{
	(void)arg;
	return buf_add(&text, s, len);
}

static int
ev(struct anthropic_stream *st, const char *json)
{
	return anthropic_stream_event(st, json, strlen(json), on_text, NULL);
}

int
main(void)
{
	struct anthropic_stream	 st;
	struct anthropic_error	 e;
	struct buf		 b;
	const char		*reply;

	buf_init(&b, 0);
	buf_init(&text, 0);
	anthropic_request(&b, "m", 10, "hi \"you\"", 8, 1);
	is_str(buf_str(&b), "{\"model\":\"m\",\"max_tokens\":10,\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"you\\\"\"}]}",
	    "streaming request body");
	buf_reset(&b);
	anthropic_request(&b, "m", 10, "x", 1, 0);
	ok(strstr(buf_str(&b), "stream") == NULL, "no stream flag for /chat");

	memset(&st, 0, sizeof(st));
	is_int(ev(&st, "{\"type\":\"message_start\",\"message\":{"
	    "\"id\":\"msg_01X\",\"usage\":"
	    "{\"input_tokens\":25,\"output_tokens\":1,"
	    "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":4}}}"),
	    AEV_START, "message_start");
	is_int(st.usage.input_tokens, 25, "input tokens from message_start");
	is_str(st.message_id, "msg_01X", "the message id from message_start");
	is_int(st.usage.cache_creation_input_tokens, 3, "cache creation");
	is_int(st.usage.cache_read_input_tokens, 4, "cache read");
	is_int(ev(&st, "{\"type\":\"ping\"}"), AEV_IGNORED, "ping");
	is_int(ev(&st, "{\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}"), AEV_TEXT,
	    "text delta");
	ev(&st, "{\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\\n\"}}");
	is_str(buf_str(&text), "Hello\n", "texts handed over in order");
	is_int(st.deltas, 2, "deltas counted");
	is_int(ev(&st, "{\"type\":\"content_block_delta\",\"index\":1,"
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}"),
	    AEV_IGNORED, "tool input deltas are not text");
	is_int(ev(&st, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"end_turn\"},\"usage\":{\"output_tokens\":42}}"), AEV_USAGE,
	    "message_delta");
	is_int(st.usage.output_tokens, 42, "cumulative output tokens");
	is_int(st.usage.input_tokens, 25, "input tokens kept");
	is_str(st.stop_reason, "end_turn", "stop reason");
	is_int(ev(&st, "{\"type\":\"message_stop\"}"), AEV_STOP, "message_stop");
	ok(st.stopped, "stream complete");
	is_int(ev(&st, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}"), AEV_ERROR,
	    "error event");
	is_str(st.err.type, "overloaded_error", "error type");
	is_str(st.err.message, "Overloaded", "error message");
	{
		/* Read without a parser: what the API writes, escapes
		 * but \u; anything else is the parser's. */
		static const struct {
			const char	*json, *text;
		} fast[] = {
			{ "{\"type\":\"content_block_delta\",\"index\":0,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":"
			    "\"a \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t caf\xc3\xa9\"}}\n",
			    "a \"q\" \\ / \b\f\n\r\t caf\xc3\xa9" },
			{ "{\"type\":\"content_block_delta\",\"index\":10,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}",
			    "" },
			{ "{\"type\":\"content_block_delta\",\"index\":0,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":"
			    "\"\\u00e9\"}}", NULL },
			{ "{\"type\":\"content_block_delta\",\"index\":,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
			    NULL },
			{ "{\"type\":\"content_block_delta\",\"index\":01,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
			    NULL },
			{ "{\"type\":\"content_block_delta\",\"index\":0,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}} y",
			    NULL },
			{ "{\"type\":\"content_block_delta\",\"index\":0,"
			    "\"delta\":{\"text\":\"x\",\"type\":\"text_delta\"}}",
			    NULL },
			{ "{\"type\":\"content_block_delta\",\"index\":0,"
			    "\"delta\":{\"type\":\"text_delta\",\"text\":\"x",
			    NULL },
		};
		char	 out[ANTHROPIC_FAST_TEXT];
		size_t	 i, n;
		int	 got;

		for (i = 0; i < sizeof(fast) / sizeof(fast[0]); i++) {
			got = anthropic_text_delta(fast[i].json,
			    strlen(fast[i].json), out, sizeof(out), &n);
			if (fast[i].text == NULL)
				ok(!got, "left to the parser: %s",
				    fast[i].json);
			else
				ok(got && n == strlen(fast[i].text) &&
				    memcmp(out, fast[i].text, n) == 0,
				    "read without a parser: %s", fast[i].json);
		}
		ok(!anthropic_text_delta(fast[0].json, strlen(fast[0].json),
		    out, 4, &n), "more text than there is room for: the "
		    "parser's");
		buf_reset(&text);
		is_int(ev(&st, fast[2].json), AEV_TEXT, "\\u: by the parser");
		is_str(buf_str(&text), "\xc3\xa9", "... the same text");
		buf_reset(&text);
		is_int(ev(&st, fast[0].json), AEV_TEXT, "escapes: without");
		is_str(buf_str(&text), fast[0].text, "... the text decoded");
	}
	is_int(ev(&st, "{not json"), AEV_MALFORMED, "not JSON");
	is_int(ev(&st, "{\"type\":\"content_block_delta\"}"), AEV_MALFORMED,
	    "a delta without its delta");
	is_int(ev(&st, "[1,2]"), AEV_MALFORMED, "not an object");
	is_int(ev(&st, "{\"type\":\"brand_new_event\"}"), AEV_IGNORED,
	    "unknown events are skipped, as the API asks");

	/* Server tools: each use begins with a block; the input they bring
	 * comes in message_delta. */
	memset(&st, 0, sizeof(st));
	ev(&st, "{\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":20,\"output_tokens\":1}}}");
	is_int(ev(&st, "{\"type\":\"content_block_start\",\"index\":0,"
	    "\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"s\","
	    "\"name\":\"web_search\",\"input\":{}}}"), AEV_TOOL_USE,
	    "a server tool use begins");
	is_int(ev(&st, "{\"type\":\"content_block_start\",\"index\":1,"
	    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"),
	    AEV_IGNORED, "a text block is not one");
	is_int(st.server_tool_uses, 1, "uses counted");
	ok(!st.input_final, "the input is not final yet");
	ev(&st, "{\"type\":\"message_delta\",\"delta\":{},\"usage\":"
	    "{\"input_tokens\":5020,\"output_tokens\":7}}");
	is_int(st.usage.input_tokens, 5020, "message_delta's input, searches "
	    "included");
	ok(st.input_final, "now it is");
	buf_reset(&b);
	ok(anthropic_request(&b, "m", 0, "x", 1, 0) == 0 &&
	    strcmp(buf_str(&b), "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}]}") == 0,
	    "the body count_tokens takes: %s", buf_str(&b));

	reply = "{\"id\":\"msg_whole\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"a\"},{\"type\":\"tool_use\",\"id\":\"x\"},{\"type\":\"text\",\"text\":\"b\"}],"
	    "\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":7,"
	    "\"output_tokens\":9}}";
	buf_reset(&b);
	memset(&st, 0, sizeof(st));
	ok(anthropic_parse_reply(reply, strlen(reply), &b, &st) == 0,
	    "a whole reply");
	is_str(buf_str(&b), "ab", "text blocks joined");
	is_int(st.usage.input_tokens, 7, "input tokens");
	is_int(st.usage.output_tokens, 9, "output tokens");
	is_str(st.stop_reason, "max_tokens", "stop reason");
	is_str(st.message_id, "msg_whole", "its id");
	ok(anthropic_parse_reply("{}", 2, &b, &st) == -1,
	    "no content is malformed");

	reply = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
	    "\"message\":\"slow down\"}}";
	ok(anthropic_parse_error(reply, strlen(reply), &e) == 0, "error body");
	is_str(e.type, "rate_limit_error", "its type");
	is_str(e.message, "slow down", "its message");
	ok(anthropic_parse_error("<html>", 6, &e) == -1, "not an error body");
	is_str(e.type, "api_error", "described generically");
	buf_free(&b);
	buf_free(&text);
	return done_testing();
}
