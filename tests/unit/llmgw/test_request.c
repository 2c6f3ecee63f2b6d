#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/conf.h"
#include "llmgw/request.h"
#include "../tap.h"

static struct conf	*conf;
static struct buf	 problems;
static struct chat_req	 req;

static int
parse(const char *body)
{
	struct buf	 b;
	int		 rc;

	buf_init(&b, 0);
	if (buf_adds(&b, body) == -1)
		abort();
	rc = chat_req_parse(conf, buf_str(&b), b.len, &req, &problems);
	buf_free(&b);
	return rc;
}

/* The problems must be a JSON array; return its entry "i"'s "field". */
static const char *
field(int i, const char *name)
{
	static char	 out[256];
	cJSON		*root, *e, *v;

	out[0] = '\0';
	if ((root = cJSON_Parse(buf_str(&problems))) == NULL)
		return "(not JSON)";
	e = cJSON_GetArrayItem(root, i);
	if ((v = cJSON_GetObjectItem(e, name)) != NULL) {
		char *s = cJSON_PrintUnformatted(v);

		snprintf(out, sizeof(out), "%s", s);
		cJSON_free(s);
	}
	cJSON_Delete(root);
	return out;
}

static int
count(void)
{
	cJSON	*root = cJSON_Parse(buf_str(&problems));
	int	 n = cJSON_GetArraySize(root);

	cJSON_Delete(root);
	return n;
}

int
main(void)
{
	struct err	 err;

	unsetenv("LLMGW_API_TOKEN");
	conf = conf_load(NULL, 0, &err);
	buf_init(&problems, 0);

	ok(parse("{\"message\":\"hi\"}") == 0, "message only");
	is_str(req.message, "hi", "message kept");
	is_str(req.model, "claude-sonnet-4-6", "model defaults");
	is_int(req.max_tokens, 1024, "max_tokens defaults");
	chat_req_free(&req);

	ok(parse(" {\"message\":\"a\\nb ü\",\"model\":\"m\","
	    "\"max_tokens\":5.0} ") == 0, "all fields; 5.0 is an integer");
	is_str(req.message, "a\nb ü", "escapes decoded");
	is_str(req.model, "m", "model taken");
	is_int(req.max_tokens, 5, "max_tokens taken");
	chat_req_free(&req);

	ok(parse("{\"message\":\"x\",\"message\":\"y\"}") == 0,
	    "duplicate keys accepted");
	is_str(req.message, "y", "the last one counts, as in Python");
	chat_req_free(&req);

	ok(parse("") == -1, "empty body");
	is_str(field(0, "type"), "\"missing\"", "is missing");
	is_str(field(0, "loc"), "[\"body\"]", "at the body");

	ok(parse("{}") == -1, "no message");
	is_str(field(0, "type"), "\"missing\"", "missing");
	is_str(field(0, "loc"), "[\"body\",\"message\"]", "located");
	is_str(field(0, "msg"), "\"Field required\"", "FastAPI's words");
	is_str(field(0, "input"), "{}", "input is the body");

	ok(parse("{\"message\":\"\"}") == -1, "empty message");
	is_str(field(0, "type"), "\"string_too_short\"", "too short");
	is_str(field(0, "ctx"), "{\"min_length\":1}", "with its ctx");

	ok(parse("{\"message\":\" \\n\\t \"}") == -1, "blank message");
	is_str(field(0, "type"), "\"value_error\"", "value error");

	ok(parse("{\"message\":5,\"model\":[],\"max_tokens\":\"9\"}") == -1,
	    "three wrong types");
	is_int(count(), 3, "one problem each");
	is_str(field(0, "type"), "\"string_type\"", "message not a string");
	is_str(field(0, "input"), "5", "with the input");
	is_str(field(1, "type"), "\"string_type\"", "model not a string");
	is_str(field(2, "type"), "\"int_type\"", "max_tokens not a number");

	ok(parse("{\"message\":\"x\",\"max_tokens\":0}") == -1, "0 tokens");
	is_str(field(0, "type"), "\"greater_than_equal\"", "too small");
	ok(parse("{\"message\":\"x\",\"max_tokens\":128001}") == -1,
	    "over the default model's ceiling");
	is_str(field(0, "type"), "\"less_than_equal\"", "too big");
	is_str(field(0, "ctx"), "{\"le\":128000}", "says the ceiling");
	ok(parse("{\"message\":\"x\",\"model\":\"claude-x\","
	    "\"max_tokens\":8193}") == -1, "a model llmgw does not know: "
	    "max_tokens_limit");
	ok(parse("{\"message\":\"x\",\"max_tokens\":1.5}") == -1, "fraction");
	is_str(field(0, "type"), "\"int_from_float\"", "fraction named");
	ok(parse("{\"message\":\"x\",\"max_tokens\":1e400}") == -1, "huge");
	ok(parse("{\"message\":\"x\",\"max_tokens\":true}") == -1,
	    "booleans are not integers");

	ok(parse("{\"message\":\"x\",\"temperature\":1}") == -1,
	    "unknown field");
	is_str(field(0, "type"), "\"extra_forbidden\"", "extra forbidden");
	is_str(field(0, "loc"), "[\"body\",\"temperature\"]", "named");

	ok(parse("[1]") == -1, "an array body");
	is_str(field(0, "type"), "\"model_attributes_type\"", "not an object");
	ok(parse("\"hi\"") == -1, "a string body");

	ok(parse("{\"message\":") == -1, "truncated JSON");
	is_str(field(0, "type"), "\"json_invalid\"", "json_invalid");
	ok(parse("{\"message\":\"x\"} extra") == -1, "trailing garbage");
	is_str(field(0, "type"), "\"json_invalid\"", "json_invalid");
	ok(parse("{\"message\":\"\xff\"}") == -1, "invalid UTF-8");
	is_str(field(0, "type"), "\"json_invalid\"", "json_invalid");
	is_str(field(0, "loc"), "[\"body\",12]", "at the bad byte");
	ok(parse("{\"message\":\"a\\u0000b\"}") == -1, "NUL escape");
	ok(parse("{\"message\":\"" "\x01" "\"}") == -1, "raw control byte");
	{
		char	 deep[200002];

		memset(deep, '[', 100000);
		memset(deep + 100000, ']', 100000);
		deep[200000] = '\0';
		ok(parse(deep) == -1, "100000 levels deep");
		is_str(field(0, "type"), "\"json_invalid\"", "json_invalid");
	}

	conf_free(conf);
	setenv("LLMGW_API_TOKEN", "t", 1);
	{
		FILE *fp = fopen("/tmp/llmgw-test-request.conf", "w");

		fputs("allowed_models = a b c\ndefault_model = a\n", fp);
		fclose(fp);
	}
	conf = conf_load("/tmp/llmgw-test-request.conf", 1, &err);
	unlink("/tmp/llmgw-test-request.conf");
	ok(parse("{\"message\":\"x\",\"model\":\"z\"}") == -1,
	    "a model not allowed");
	is_str(field(0, "type"), "\"literal_error\"", "literal_error");
	is_str(field(0, "msg"), "\"Input should be 'a', 'b' or 'c'\"",
	    "lists the choices as Pydantic does");
	ok(parse("{\"message\":\"x\",\"model\":\"b\"}") == 0, "an allowed one");
	chat_req_free(&req);

	{
		struct chat_req	 mr;
		struct buf	 cb;
		char		 why[256];
		int		 stream;
		const char	*body = "{\"model\":\"b\","
		    "\"max_tokens\":9,\"stream\":true,\"system\":\"s\","
		    "\"messages\":[],\"tools\":[{\"type\":"
		    "\"web_search_20250305\",\"name\":\"w\",\"max_uses\":3},"
		    "{\"type\":\"web_fetch_20250910\",\"name\":\"f\"},"
		    "{\"name\":\"mine\",\"input_schema\":{}},{\"type\":"
		    "\"bash_20250124\",\"name\":\"bash\"}]}";

		why[0] = '\0';
		ok(messages_req_parse(conf, body, strlen(body), &mr, &stream,
		    why, sizeof(why)) == 0, "a body with tools %s", why);
		is_int(mr.server_tools, 2, "two of them the API runs itself");
		is_int(mr.server_tool_uses, 3 + conf->server_tool_uses,
		    "their uses: max_uses, or server_tool_uses without");
		chat_req_free(&mr);
		buf_init(&cb, 0);
		ok(messages_count_body(body, strlen(body), &cb) == 0 &&
		    strstr(buf_str(&cb), "max_tokens") == NULL &&
		    strstr(buf_str(&cb), "stream") == NULL &&
		    strstr(buf_str(&cb), "\"system\":\"s\"") != NULL &&
		    strstr(buf_str(&cb), "web_fetch") != NULL,
		    "count_tokens gets model, messages, system and tools only");
		buf_free(&cb);
	}

	{
		struct chat_req	 ur;
		struct buf	 up, pr;
		const char	*ui = "{\"id\":\"c\",\"trigger\":\"submit-message\","
		    "\"messages\":[{\"id\":\"s\",\"role\":\"system\",\"parts\":"
		    "[{\"type\":\"text\",\"text\":\"Be brief.\"}]},{\"id\":\"1\","
		    "\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"text\":\"Hi "
		    "\"},{\"type\":\"text\",\"text\":\"there\"}]},{\"role\":"
		    "\"assistant\",\"parts\":[{\"type\":\"step-start\"},{\"type\":"
		    "\"text\",\"text\":\"Hello\"}]},{\"role\":\"user\",\"parts\":"
		    "[{\"type\":\"text\",\"text\":\"Again\"}]}],\"model\":\"a\"}";
		const char	*bad = "{\"messages\":[{\"role\":\"user\","
		    "\"parts\":[{\"type\":\"file\",\"url\":\"x\"}]},{\"role\":"
		    "\"robot\",\"parts\":[]}],\"extra\":1}";

		buf_init(&up, 0);
		buf_init(&pr, 0);
		ok(ui_req_parse(conf, ui, strlen(ui), &ur, &up, &pr) == 0,
		    "a useChat body: %s", buf_str(&pr));
		is_str(buf_str(&up), "{\"model\":\"a\",\"max_tokens\":1024,"
		    "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
		    "\"Hi there\"},{\"role\":\"assistant\",\"content\":\"Hello\"},"
		    "{\"role\":\"user\",\"content\":\"Again\"}],\"system\":"
		    "\"Be brief.\"}", "the conversation, its system prompt apart");
		is_int(ur.message_len, 27, "its text's bytes, for the budget");
		chat_req_free(&ur);
		buf_reset(&up);
		ok(ui_req_parse(conf, bad, strlen(bad), &ur, &up, &pr) == -1,
		    "parts and roles llmgw cannot pass on");
		ok(strstr(buf_str(&pr), "[\"body\",\"messages\",0,\"parts\",0]") &&
		    strstr(buf_str(&pr), "[\"body\",\"messages\",1,\"role\"]") &&
		    strstr(buf_str(&pr), "[\"body\",\"extra\"]"),
		    "each located: %s", buf_str(&pr));
		is_int(up.len, 0, "and nothing goes upstream");
		buf_free(&up);
		buf_free(&pr);
	}

	ok(request_is_json("application/json"), "application/json");
	ok(request_is_json("Application/JSON; charset=utf-8"),
	    "with parameters, any case");
	ok(!request_is_json("application/jsonx"), "not a prefix match");
	ok(!request_is_json("text/plain"), "text/plain");
	ok(!request_is_json(NULL), "none");
	ok(request_is_json_lax(NULL) && request_is_json_lax(""),
	    "FastAPI's rules: none is JSON");
	ok(request_is_json_lax("application/vnd.api+json") &&
	    request_is_json_lax("Application/JSON; charset=utf-8") &&
	    request_is_json_lax("application/merge-patch+json"),
	    "application/json and application/<anything>+json");
	ok(!request_is_json_lax("text/plain") &&
	    !request_is_json_lax("application/jsonx") &&
	    !request_is_json_lax("application/x-www-form-urlencoded") &&
	    !request_is_json_lax("application/+json"),
	    "not other types");

	conf_free(conf);
	buf_free(&problems);
	return done_testing();
}
