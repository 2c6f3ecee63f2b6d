/*
 * Messages API replies and streams translated to OpenAI's chat
 * completions, and OpenAI's errors (openai.h); the request is
 * openai_request.c's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/str.h"
#include "anthropic.h"
#include "openai.h"

const char *
openai_finish_reason(const char *stop)
{
	if (strcmp(stop, "max_tokens") == 0)
		return "length";
	if (strcmp(stop, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(stop, "refusal") == 0)
		return "content_filter";
	return "stop";
}

int
openai_usage(struct buf *b, const struct anthropic_usage *u)
{
	long	 prompt = u->input_tokens + u->cache_creation_input_tokens +
		    u->cache_read_input_tokens;

	return buf_addf(b, "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
	    "\"total_tokens\":%ld,\"prompt_tokens_details\":{\"cached_tokens\":"
	    "%ld}}", prompt, u->output_tokens, prompt + u->output_tokens,
	    u->cache_read_input_tokens);
}

/* The string field "name" of "o", or "". */
static const char *
str_of(const cJSON *o, const char *name)
{
	const char	*v = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(o, name));

	return v != NULL ? v : "";
}

/* The tool_use blocks of a reply's content as tool_calls, into "b". */
static int
tool_calls(const cJSON *content, struct buf *b)
{
	const cJSON	*blk, *type;
	char		*args;
	int		 rc = 0, n = 0;

	cJSON_ArrayForEach(blk, content) {
		type = cJSON_GetObjectItemCaseSensitive(blk, "type");
		if (!cJSON_IsString(type) ||
		    strcmp(type->valuestring, "tool_use") != 0)
			continue;
		args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
		    blk, "input"));
		rc |= buf_adds(b, n++ == 0 ? ",\"tool_calls\":[" : ",");
		rc |= buf_adds(b, "{\"id\":");
		rc |= json_add_cstr(b, str_of(blk, "id"));
		rc |= buf_adds(b, ",\"type\":\"function\",\"function\":"
		    "{\"name\":");
		rc |= json_add_cstr(b, str_of(blk, "name"));
		rc |= buf_adds(b, ",\"arguments\":");
		rc |= json_add_cstr(b, args != NULL ? args : "{}");
		rc |= buf_adds(b, "}}");
		cJSON_free(args);
	}
	if (n > 0)
		rc |= buf_addc(b, ']');
	return rc == 0 ? 0 : -1;
}

int
openai_reply(const char *reply, size_t len, const char *id, long created,
    struct buf *out)
{
	struct anthropic_stream	 st;
	struct buf		 text;
	cJSON			*root;
	const cJSON		*model, *content;
	int			 rc;

	memset(&st, 0, sizeof(st));
	buf_init(&text, BUF_NOCAP);
	if (anthropic_parse_reply(reply, len, &text, &st) == -1 || (root = cJSON_ParseWithLength(reply, len)) == NULL) {
		buf_free(&text);
		return -1;
	}
	model = cJSON_GetObjectItemCaseSensitive(root, "model");
	content = cJSON_GetObjectItemCaseSensitive(root, "content");
	rc = buf_adds(out, "{\"id\":");
	rc |= json_add_cstr(out, id);
	rc |= buf_addf(out, ",\"object\":\"chat.completion\",\"created\":%ld,"
	    "\"model\":", created);
	rc |= json_add_cstr(out, cJSON_IsString(model) ? model->valuestring :
	    "");
	rc |= buf_adds(out, ",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":");
	if (text.len > 0)
		rc |= json_add_str(out, text.data, text.len);
	else
		rc |= buf_adds(out, "null");
	rc |= buf_adds(out, ",\"refusal\":null");
	rc |= tool_calls(content, out);
	rc |= buf_addf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}],"
	    "\"usage\":", openai_finish_reason(st.stop_reason));
	rc |= openai_usage(out, &st.usage);
	rc |= buf_addc(out, '}');
	cJSON_Delete(root);
	buf_free(&text);
	return rc == 0 ? 0 : -1;
}

/* A chunk's event up to its choices: id, object, created and model. */
static int
chunk_head(const struct openai_stream *s, struct buf *out)
{
	int	 rc;

	rc = buf_adds(out, "data: {\"id\":");
	rc |= json_add_cstr(out, s->id);
	rc |= buf_addf(out, ",\"object\":\"chat.completion.chunk\","
	    "\"created\":%ld,\"model\":", s->created);
	rc |= json_add_cstr(out, s->model);
	return rc;
}

/* One chunk with "delta" (JSON text) and a finish reason or null. */
static int
chunk(const struct openai_stream *s, const char *delta, const char *finish,
    struct buf *out)
{
	int	 rc;

	rc = chunk_head(s, out);
	rc |= buf_adds(out, ",\"choices\":[{\"index\":0,\"delta\":");
	rc |= buf_adds(out, delta);
	if (finish != NULL)
		rc |= buf_addf(out, ",\"logprobs\":null,\"finish_reason\":\"%s\""
		    "}]}\n\n", finish);
	else
		rc |= buf_adds(out, ",\"logprobs\":null,\"finish_reason\":"
		    "null}]}\n\n");
	return rc == 0 ? 0 : -1;
}

/* A delta of JSON "prefix" + the string "s" as JSON + "suffix". */
static int
string_delta(const struct openai_stream *st, const char *prefix,
    const char *s, const char *suffix, struct buf *out)
{
	struct buf	 d;
	int		 rc;

	buf_init(&d, BUF_NOCAP);
	rc = buf_adds(&d, prefix) == -1 || json_add_cstr(&d, s) == -1 ||
	    buf_adds(&d, suffix) == -1 ? -1 : chunk(st, buf_str(&d), NULL, out);
	buf_free(&d);
	return rc;
}

/* A tool_use block begins: the tool call's first chunk. */
static int
tool_start(struct openai_stream *s, const cJSON *block, struct buf *out)
{
	struct buf	 d;
	int		 rc;

	s->block_tool = ++s->tools;
	buf_init(&d, BUF_NOCAP);
	rc = buf_addf(&d, "{\"tool_calls\":[{\"index\":%d,\"id\":",
	    s->tools - 1) == -1 || json_add_cstr(&d, str_of(block, "id")) ==
	    -1 || buf_adds(&d, ",\"type\":\"function\",\"function\":"
	    "{\"name\":") == -1 || json_add_cstr(&d, str_of(block, "name")) ==
	    -1 || buf_adds(&d, ",\"arguments\":\"\"}}]}") == -1 ? -1 :
	    chunk(s, buf_str(&d), NULL, out);
	buf_free(&d);
	return rc;
}

int
openai_stream_event(struct openai_stream *s, const char *data, size_t len,
    struct buf *out)
{
	cJSON		*root;
	const cJSON	*type, *block, *delta, *dtype, *v, *msg;
	char		 prefix[96];
	int		 rc = 0;

	if ((root = cJSON_ParseWithLength(data, len)) == NULL)
		return -1;
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	block = cJSON_GetObjectItemCaseSensitive(root, "content_block");
	delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
	dtype = cJSON_GetObjectItemCaseSensitive(delta, "type");
	if (!cJSON_IsString(type))
		rc = -1;
	else if (strcmp(type->valuestring, "message_start") == 0) {
		msg = cJSON_GetObjectItemCaseSensitive(root, "message");
		if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(msg,
		    "model")))
			str_copy(s->model, sizeof(s->model), v->valuestring);
		rc = chunk(s, "{\"role\":\"assistant\",\"content\":\"\"}", NULL,
		    out);
	} else if (strcmp(type->valuestring, "content_block_start") == 0) {
		v = cJSON_GetObjectItemCaseSensitive(block, "type");
		s->block_tool = 0;
		if (cJSON_IsString(v) && strcmp(v->valuestring, "tool_use") ==
		    0)
			rc = tool_start(s, block, out);
	} else if (strcmp(type->valuestring, "content_block_delta") == 0 &&
	    cJSON_IsString(dtype)) {
		if (strcmp(dtype->valuestring, "text_delta") == 0 &&
		    cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(delta,
		    "text")))
			rc = string_delta(s, "{\"content\":", v->valuestring,
			    "}", out);
		else if (strcmp(dtype->valuestring, "input_json_delta") == 0 &&
		    s->block_tool > 0 && cJSON_IsString(v =
		    cJSON_GetObjectItemCaseSensitive(delta, "partial_json"))) {
			snprintf(prefix, sizeof(prefix), "{\"tool_calls\":"
			    "[{\"index\":%d,\"function\":{\"arguments\":",
			    s->block_tool - 1);
			rc = string_delta(s, prefix, v->valuestring, "}}]}",
			    out);
		}
	} else if (strcmp(type->valuestring, "content_block_stop") == 0)
		s->block_tool = 0;
	else if (strcmp(type->valuestring, "message_delta") == 0 &&
	    cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(delta,
	    "stop_reason")))
		str_copy(s->finish, sizeof(s->finish),
		    openai_finish_reason(v->valuestring));
	cJSON_Delete(root);
	return rc;
}

int
openai_stream_end(struct openai_stream *s, const struct anthropic_usage *u,
    int include_usage, struct buf *out)
{
	int	 rc;

	rc = chunk(s, "{}", s->finish[0] != '\0' ? s->finish : "stop", out);
	if (include_usage) {
		rc |= chunk_head(s, out);
		rc |= buf_adds(out, ",\"choices\":[],\"usage\":");
		rc |= openai_usage(out, u);
		rc |= buf_adds(out, "}\n\n");
	}
	rc |= buf_adds(out, "data: [DONE]\n\n");
	return rc == 0 ? 0 : -1;
}

int
openai_error(struct buf *out, int status, const char *message,
    const char *param)
{
	const char	*type, *code;
	int		 rc;

	switch (status) {
	case 401:
		type = "invalid_request_error";
		code = "invalid_api_key";
		break;
	case 403:
		type = "permission_error";
		code = "permission_denied";
		break;
	case 404:
		type = "invalid_request_error";
		code = param != NULL && strcmp(param, "model") == 0 ?
		    "model_not_found" : "not_found";
		break;
	case 429:
		type = "rate_limit_error";
		code = "rate_limit_exceeded";
		break;
	default:
		if (status >= 500) {
			type = "server_error";
			code = status == 503 ? "overloaded" : "server_error";
		} else {
			type = "invalid_request_error";
			code = "invalid_request";
		}
	}
	rc = buf_adds(out, "{\"error\":{\"message\":");
	rc |= json_add_cstr(out, message);
	rc |= buf_addf(out, ",\"type\":\"%s\",\"param\":", type);
	if (param != NULL && param[0] != '\0')
		rc |= json_add_cstr(out, param);
	else
		rc |= buf_adds(out, "null");
	rc |= buf_addf(out, ",\"code\":\"%s\"}}", code);
	return rc == 0 ? 0 : -1;
}
