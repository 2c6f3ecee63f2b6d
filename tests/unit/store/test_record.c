#include "config.h"

#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/record.h"
#include "../tap.h"

static struct err	 err;

static int
parse(const char *json, struct record *r)
{
	return record_from_json(json, strlen(json), r, &err);
}

int
main(void)
{
	struct record	 r, back;
	struct buf	 b;

	memset(&r, 0, sizeof(r));
	strcpy(r.id, "01a2b3c4");
	strcpy(r.request_id, "client \"id\"");
	r.ts_ms = 1764000000123LL;
	r.end_ms = 1764000000456LL;
	strcpy(r.key, "static");
	strcpy(r.route, "/chat/stream");
	strcpy(r.model, "claude-sonnet-4-6");
	r.status = 200;
	r.input_tokens = 10;
	r.output_tokens = 20;
	r.cache_creation_input_tokens = 3;
	r.cache_read_input_tokens = 4;
	r.ttft_ms = -1;
	r.total_ms = 333;
	r.disconnected = 1;
	r.partial = 1;
	r.retries = 2;
	r.upstream = 1;
	r.upstream_status = 529;
	strcpy(r.upstream_error, "HTTP 529 overloaded_error: Overloaded");
	r.prompt = "hi\n";
	r.prompt_len = 3;
	r.max_tokens = 300;
	strcpy(r.response_id, "msg_01X");
	strcpy(r.finish_reason, "end_turn");
	strcpy(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	strcpy(r.parent_span_id, "00f067aa0ba902b7");
	r.prompt_bytes = 3;
	r.reply_bytes = 0;

	buf_init(&b, 0);
	ok(record_to_json(&r, &b) == 0, "serialise");
	ok(strstr(buf_str(&b), "\"time\":\"2025-11-24T16:00:00.123Z\"") !=
	    NULL, "a readable time: %s", buf_str(&b));
	ok(strstr(buf_str(&b), "\"ttft_ms\":null") != NULL, "no token: null");
	ok(strstr(buf_str(&b), "\"prompt\":\"hi\\n\"") != NULL,
	    "the prompt when given");
	ok(strstr(buf_str(&b), "\"reply\"") == NULL, "no reply when none");
	ok(record_from_json(b.data, b.len, &back, &err) == 0,
	    "read back: %s", err.msg);
	is_str(back.id, r.id, "id");
	is_str(back.request_id, r.request_id, "request id with quotes");
	ok(back.ts_ms == r.ts_ms && back.end_ms == r.end_ms, "times");
	is_str(back.key, "static", "key");
	is_str(back.route, "/chat/stream", "route");
	is_str(back.model, r.model, "model");
	is_int(back.status, 200, "status");
	ok(back.input_tokens == 10 && back.output_tokens == 20 &&
	    back.cache_creation_input_tokens == 3 &&
	    back.cache_read_input_tokens == 4, "tokens");
	is_int(back.ttft_ms, -1, "ttft absent");
	ok(back.disconnected && back.partial && back.upstream, "flags");
	is_int(back.retries, 2, "retries");
	is_int(back.upstream_status, 529, "upstream status");
	is_str(back.upstream_error, r.upstream_error, "upstream error");
	ok(back.max_tokens == 300 && strcmp(back.response_id, "msg_01X") ==
	    0 && strcmp(back.finish_reason, "end_turn") == 0,
	    "max_tokens, the reply's id and finish reason");
	ok(strcmp(back.trace_id, r.trace_id) == 0 &&
	    strcmp(back.parent_span_id, r.parent_span_id) == 0,
	    "the client's trace and span");
	ok(back.prompt_bytes == 3 && back.reply_bytes == 0, "texts' sizes");
	buf_free(&b);

	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":401}", &back) == 0, "the least a record has");
	is_str(back.key, "", "no key");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":401}\n", &back) == 0,
	    "a line's end is fine");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":401}\n{}", &back) == -1,
	    "two values: refused (not taken for the first)");
	is_str(err.msg, "more than one JSON value", "saying so");
	ok(parse("", &back) == -1, "empty: refused");
	is_str(err.msg, "not valid JSON", "saying so");
	ok(parse("[1]", &back) == -1, "an array: refused");
	ok(parse("{\"id\":\"a\",\"route\":\"/chat\",\"ts_ms\":1,\"status\":200}",
	    &back) == -1, "no request_id: refused");
	is_str(err.msg, "field \"request_id\" is missing", "naming the field");
	ok(parse("{\"id\":\"../etc/passwd\",\"request_id\":\"b\",\"route\":"
	    "\"/chat\",\"ts_ms\":1,\"status\":200}", &back) == -1,
	    "an id that is a path: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":\"200\"}", &back) == -1,
	    "a string status: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200,\"input_tokens\":-5}", &back) == -1,
	    "negative tokens: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1.5,\"status\":200}", &back) == -1,
	    "a fraction of a millisecond: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200,\"partial\":1}", &back) == -1,
	    "a number for a flag: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200", &back) == -1, "truncated: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200}", &back) == 0 &&
	    back.prompt_bytes == -1 && back.trace_id[0] == '\0',
	    "without them: sizes not recorded, no trace");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200,\"trace_id\":\"xyz\",\"parent_span_id\":"
	    "\"00f067aa0ba902b7\"}", &back) == -1,
	    "a trace id that is not 32 hex digits: refused");
	ok(parse("{\"id\":\"a\",\"request_id\":\"b\",\"route\":\"/chat\","
	    "\"ts_ms\":1,\"status\":200,\"trace_id\":"
	    "\"4bf92f3577b34da6a3ce929d0e0e4736\"}", &back) == -1,
	    "a trace id without its span: refused");
	ok(record_id_valid("01a2-b_c.d"), "ids: letters, digits, -_.");
	ok(!record_id_valid("a/b") && !record_id_valid("..") &&
	    !record_id_valid(""), "no slashes, dot-dot or empty");
	return done_testing();
}
