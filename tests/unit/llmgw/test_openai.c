/*
 * The OpenAI translator both ways: requests to the Messages API, a whole
 * reply and a stream's events back.
 */
#include "config.h"

#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/conf.h"
#include "llmgw/anthropic.h"
#include "llmgw/openai.h"
#include "llmgw/request.h"
#include "../tap.h"

static struct conf	*conf;

/* Translate "body": its upstream JSON, or the error's "status param:
 * message". */
static const char *
req(const char *body, struct buf *out)
{
	struct chat_req		 r;
	struct openai_err	 err;
	int			 stream, usage;

	buf_reset(out);
	if (openai_request(conf, body, strlen(body), &r, &stream, &usage, out,
	    &err) == -1) {
		buf_reset(out);
		if (buf_addf(out, "%d %s: %s", err.status, err.param,
		    err.message) == -1)
			return "?";
		return buf_str(out);
	}
	chat_req_free(&r);
	return buf_str(out);
}

int
main(void)
{
	struct openai_stream	 s;
	struct anthropic_usage	 u = { 10, 5, 2, 3 };
	struct buf		 b;
	struct err		 err;
	const char		*ev;

	conf = conf_load(NULL, 0, &err);
	buf_init(&b, 0);

	is_str(req("{\"model\":\"m\",\"messages\":[{\"role\":\"system\","
	    "\"content\":\"a\"},{\"role\":\"developer\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"b\"}]},{\"role\":\"user\",\"content\":\"hi\"}],"
	    "\"max_tokens\":7}", &b),
	    "{\"model\":\"m\",\"max_tokens\":7,\"messages\":[{\"role\":\"user\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"system\":"
	    "\"a\\n\\nb\"}", "system and developer messages: the system prompt");
	is_str(req("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	    "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\","
	    "\"tool_call_id\":\"c1\",\"content\":\"r1\"},{\"role\":\"tool\","
	    "\"tool_call_id\":\"c2\",\"content\":\"r2\"}],\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\"}}],"
	    "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
	    "\"stop\":\"x\",\"temperature\":1.7,\"user\":\"u\"}", &b),
	    "{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":1024,\"messages\":"
	    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]},"
	    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
	    "\"c1\",\"name\":\"f\",\"input\":{\"a\":1}}]},{\"role\":\"user\","
	    "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"r1\"}]},{\"type\":"
	    "\"tool_result\",\"tool_use_id\":\"c2\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"r2\"}]}]}],\"tools\":[{\"name\":\"f\",\"description\":\"d\","
	    "\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":"
	    "\"any\",\"disable_parallel_tool_use\":true},\"temperature\":1,"
	    "\"stop_sequences\":[\"x\"],\"metadata\":{\"user_id\":\"u\"}}",
	    "tool calls, tool results in one turn, tools, tool_choice, sampling");
	ok(strstr(req("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,QUJD\""
	    "}},{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"https://e.org/x.png\"}}]}]}", &b), "{\"type\":\"image\",\"source\":"
	    "{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"QUJD\"}},"
	    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
	    "\"https://e.org/x.png\"}}") != NULL, "images: base64 and URL");
	is_str(req("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"image_url\",\"image_url\":{\"url\":\"http://e.org/x.png\"}}]}]}",
	    &b), "400 messages[0].content[0]: an image must be a data: URL in "
	    "base64 or an https URL", "an http image URL: refused");
	is_str(req("{\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
	    &b), "400 n: n: only one choice can be made here", "n > 1");
	is_str(req("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}", &b),
	    "400 messages: messages needs a user message", "no turn at all");
	ok(strncmp(req("{\"model\":\"gpt-4o\",\"messages\":[]}", &b), "400 ",
	    4) == 0, "an empty list: 400");

	buf_reset(&b);
	{
		const char *r = "{\"model\":\"m\",\"content\":[{\"type\":\"text\","
		    "\"text\":\"a\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
		    "\"f\",\"input\":{\"x\":1}}],\"stop_reason\":\"tool_use\","
		    "\"usage\":{\"input_tokens\":3,\"output_tokens\":4,"
		    "\"cache_read_input_tokens\":2}}";

		ok(openai_reply(r, strlen(r), "chatcmpl-1", 9, &b) == 0,
		    "a reply with a tool call");
	}
	is_str(buf_str(&b), "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
	    "\"created\":9,\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"a\",\"refusal\":null,"
	    "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]},\"logprobs\":null,"
	    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":4,\"total_tokens\":9,\"prompt_tokens_details\":"
	    "{\"cached_tokens\":2}}}", "as a chat.completion");

	memset(&s, 0, sizeof(s));
	strcpy(s.id, "c");
	s.created = 1;
	buf_reset(&b);
	ev = "{\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}";
	ok(openai_stream_event(&s, ev, strlen(ev), &b) == 0 &&
	    strstr(buf_str(&b), "\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"\"}") != NULL, "message_start: the role");
	buf_reset(&b);
	ev = "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
	    "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}";
	ok(openai_stream_event(&s, ev, strlen(ev), &b) == 0 &&
	    strstr(buf_str(&b), "{\"tool_calls\":[{\"index\":0,\"id\":\"t\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"\"}}]}") != NULL, "a tool_use block: the call's first chunk, "
	    "index 0");
	buf_reset(&b);
	ev = "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
	    "\"input_json_delta\",\"partial_json\":\"{\\\"x\"}}";
	ok(openai_stream_event(&s, ev, strlen(ev), &b) == 0 &&
	    strstr(buf_str(&b), "{\"tool_calls\":[{\"index\":0,\"function\":"
	    "{\"arguments\":\"{\\\"x\"}}]}") != NULL, "its arguments, in pieces");
	buf_reset(&b);
	ev = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"max_tokens\"}}";
	ok(openai_stream_event(&s, ev, strlen(ev), &b) == 0 && b.len == 0,
	    "message_delta: nothing yet");
	ok(openai_stream_end(&s, &u, 1, &b) == 0, "the end");
	ok(strstr(buf_str(&b), "\"finish_reason\":\"length\"") != NULL &&
	    strstr(buf_str(&b), "\"choices\":[],\"usage\":{\"prompt_tokens\":15,"
	    "\"completion_tokens\":5") != NULL &&
	    strcmp(buf_str(&b) + b.len - 14, "data: [DONE]\n\n") == 0,
	    "finish_reason length, the usage chunk, [DONE]");

	buf_reset(&b);
	ok(openai_error(&b, 429, "slow down", NULL) == 0 &&
	    strcmp(buf_str(&b), "{\"error\":{\"message\":\"slow down\",\"type\":"
	    "\"rate_limit_error\",\"param\":null,\"code\":"
	    "\"rate_limit_exceeded\"}}") == 0, "an error: %s", buf_str(&b));
	buf_free(&b);
	conf_free(conf);
	return done_testing();
}
