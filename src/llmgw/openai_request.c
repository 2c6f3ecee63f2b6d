/*
 * OpenAI's chat completions request, translated to the Messages API's
 * (openai.h: openai_request()).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/str.h"
#include "store/conf.h"
#include "openai.h"
#include "request.h"

/* A 400 naming "param" (printf-style message). */
static int
refuse(struct openai_err *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct openai_err *err, const char *param, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	str_copy(err->param, sizeof(err->param), param);
	err->status = 400;
	return -1;
}

/* "data:image/png;base64,...." into a base64 image source; else NULL. */
static cJSON *
image_source(const char *url)
{
	const char	*semi, *comma;
	cJSON		*src;
	char		 type[64];

	if ((src = cJSON_CreateObject()) == NULL)
		return NULL;
	if (strncmp(url, "data:", 5) == 0) {
		semi = strchr(url, ';');
		comma = strchr(url, ',');
		if (semi == NULL || comma == NULL || comma < semi ||
		    strncmp(semi, ";base64,", 8) != 0 ||
		    (size_t)(semi - url - 5) >= sizeof(type)) {
			cJSON_Delete(src);
			return NULL;
		}
		snprintf(type, sizeof(type), "%.*s", (int)(semi - url - 5),
		    url + 5);
		if (cJSON_AddStringToObject(src, "type", "base64") == NULL ||
		    cJSON_AddStringToObject(src, "media_type", type) == NULL ||
		    cJSON_AddStringToObject(src, "data", comma + 1) == NULL) {
			cJSON_Delete(src);
			return NULL;
		}
		return src;
	}
	if (strncmp(url, "https://", 8) != 0 ||
	    cJSON_AddStringToObject(src, "type", "url") == NULL ||
	    cJSON_AddStringToObject(src, "url", url) == NULL) {
		cJSON_Delete(src);
		return NULL;
	}
	return src;
}

/* A text block. */
static cJSON *
text_block(const char *text)
{
	cJSON	*b;

	if ((b = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(b, "type", "text") == NULL ||
	    cJSON_AddStringToObject(b, "text", text) == NULL) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

/*
 * Message "i"'s content (a string, or text and image parts) as blocks
 * appended to "blocks"; its text's bytes added to "*bytes".  0, or -1
 * with "err" set.
 */
static int
content_blocks(const cJSON *content, int i, int images, cJSON *blocks,
    size_t *bytes, struct openai_err *err)
{
	const cJSON	*part, *type, *text, *url;
	cJSON		*b;
	char		 param[OPENAI_PARAM_MAX];
	int		 j = 0;

	if (cJSON_IsNull(content))
		return 0;
	if (cJSON_IsString(content)) {
		*bytes += strlen(content->valuestring);
		if (content->valuestring[0] == '\0')
			return 0;
		if ((b = text_block(content->valuestring)) == NULL ||
		    !cJSON_AddItemToArray(blocks, b))
			return refuse(err, "", "out of memory");
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		snprintf(param, sizeof(param), "messages[%d].content", i);
		return refuse(err, param, "content must be a string or a list "
		    "of parts");
	}
	cJSON_ArrayForEach(part, content) {
		snprintf(param, sizeof(param), "messages[%d].content[%d]", i,
		    j++);
		type = cJSON_GetObjectItemCaseSensitive(part, "type");
		text = cJSON_GetObjectItemCaseSensitive(part, "text");
		if (cJSON_IsString(type) && strcmp(type->valuestring, "text") ==
		    0 && cJSON_IsString(text)) {
			*bytes += strlen(text->valuestring);
			b = text_block(text->valuestring);
		} else if (images && cJSON_IsString(type) &&
		    strcmp(type->valuestring, "image_url") == 0) {
			url = cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(part, "image_url"),
			    "url");
			if (!cJSON_IsString(url) || (b = cJSON_CreateObject()) ==
			    NULL)
				return refuse(err, param, "image_url needs a url");
			if (cJSON_AddStringToObject(b, "type", "image") == NULL ||
			    !cJSON_AddItemToObject(b, "source",
			    image_source(url->valuestring)) ||
			    cJSON_GetObjectItemCaseSensitive(b, "source") ==
			    NULL) {
				cJSON_Delete(b);
				return refuse(err, param, "an image must be a "
				    "data: URL in base64 or an https URL");
			}
			*bytes += strlen(url->valuestring);
		} else
			return refuse(err, param, "llmgw passes on text%s parts "
			    "only, not %s", images ? " and image_url" : "",
			    cJSON_IsString(type) ? type->valuestring : "this");
		if (b == NULL || !cJSON_AddItemToArray(blocks, b))
			return refuse(err, "", "out of memory");
	}
	return 0;
}

/* An assistant's tool_calls as tool_use blocks. */
static int
tool_use_blocks(const cJSON *calls, int i, cJSON *blocks,
    struct openai_err *err)
{
	const cJSON	*call, *fn, *id, *name, *args;
	cJSON		*b, *input;
	char		 param[OPENAI_PARAM_MAX];
	int		 j = 0;

	cJSON_ArrayForEach(call, calls) {
		snprintf(param, sizeof(param), "messages[%d].tool_calls[%d]",
		    i, j++);
		fn = cJSON_GetObjectItemCaseSensitive(call, "function");
		id = cJSON_GetObjectItemCaseSensitive(call, "id");
		name = cJSON_GetObjectItemCaseSensitive(fn, "name");
		args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
		if (!cJSON_IsString(id) || !cJSON_IsString(name))
			return refuse(err, param, "a tool call needs an id and "
			    "a function name");
		input = cJSON_IsString(args) && args->valuestring[0] != '\0' ?
		    cJSON_Parse(args->valuestring) : cJSON_CreateObject();
		if (!cJSON_IsObject(input)) {
			cJSON_Delete(input);
			return refuse(err, param, "function.arguments must be a "
			    "JSON object");
		}
		if ((b = cJSON_CreateObject()) == NULL ||
		    cJSON_AddStringToObject(b, "type", "tool_use") == NULL ||
		    cJSON_AddStringToObject(b, "id", id->valuestring) == NULL ||
		    cJSON_AddStringToObject(b, "name", name->valuestring) ==
		    NULL || !cJSON_AddItemToObject(b, "input", input) ||
		    !cJSON_AddItemToArray(blocks, b)) {
			cJSON_Delete(b);
			return refuse(err, "", "out of memory");
		}
	}
	return 0;
}

/* A tool message as a tool_result block. */
static int
tool_result_block(const cJSON *m, int i, cJSON *blocks, size_t *bytes,
    struct openai_err *err)
{
	const cJSON	*id, *content;
	cJSON		*b, *inner;
	char		 param[OPENAI_PARAM_MAX];

	id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
	content = cJSON_GetObjectItemCaseSensitive(m, "content");
	snprintf(param, sizeof(param), "messages[%d]", i);
	if (!cJSON_IsString(id))
		return refuse(err, param, "a tool message needs tool_call_id");
	if ((b = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(b, "type", "tool_result") == NULL ||
	    cJSON_AddStringToObject(b, "tool_use_id", id->valuestring) ==
	    NULL || (inner = cJSON_AddArrayToObject(b, "content")) == NULL ||
	    !cJSON_AddItemToArray(blocks, b)) {
		cJSON_Delete(b);
		return refuse(err, "", "out of memory");
	}
	return content_blocks(content, i, 0, inner, bytes, err);
}

/*
 * The turn to add blocks of "role" to: the last one if it has that role
 * (the Messages API wants tool results, and consecutive turns of one
 * side, together), else a new one.  NULL if out of memory.
 */
static cJSON *
turn_for(cJSON *turns, const char *role)
{
	cJSON		*last = cJSON_GetArrayItem(turns,
			    cJSON_GetArraySize(turns) - 1), *t;
	const cJSON	*r = cJSON_GetObjectItemCaseSensitive(last, "role");

	if (cJSON_IsString(r) && strcmp(r->valuestring, role) == 0)
		return cJSON_GetObjectItemCaseSensitive(last, "content");
	if ((t = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(t, "role", role) == NULL ||
	    !cJSON_AddItemToArray(turns, t))
		return NULL;
	return cJSON_AddArrayToObject(t, "content");
}

/* The messages into "turns" and "system". */
static int
translate_messages(const cJSON *msgs, cJSON *turns, struct buf *system,
    size_t *bytes, struct openai_err *err)
{
	const cJSON	*m, *role, *content, *calls;
	cJSON		*blocks, *sys;
	const cJSON	*b;
	char		 param[OPENAI_PARAM_MAX];
	const char	*r;
	int		 i = 0;

	cJSON_ArrayForEach(m, msgs) {
		snprintf(param, sizeof(param), "messages[%d].role", i);
		role = cJSON_GetObjectItemCaseSensitive(m, "role");
		content = cJSON_GetObjectItemCaseSensitive(m, "content");
		r = cJSON_IsString(role) ? role->valuestring : "";
		if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
			if ((sys = cJSON_CreateArray()) == NULL)
				return refuse(err, "", "out of memory");
			if (content_blocks(content, i, 0, sys, bytes, err) ==
			    -1) {
				cJSON_Delete(sys);
				return -1;
			}
			cJSON_ArrayForEach(b, sys) {
				if ((system->len > 0 &&
				    buf_adds(system, "\n\n") == -1) ||
				    buf_adds(system, cJSON_GetObjectItem(b,
				    "text")->valuestring) == -1) {
					cJSON_Delete(sys);
					return refuse(err, "", "out of memory");
				}
			}
			cJSON_Delete(sys);
		} else if (strcmp(r, "user") == 0) {
			if ((blocks = turn_for(turns, "user")) == NULL ||
			    content_blocks(content, i, 1, blocks, bytes, err) ==
			    -1)
				return blocks == NULL ? refuse(err, "", "out of "
				    "memory") : -1;
		} else if (strcmp(r, "assistant") == 0) {
			calls = cJSON_GetObjectItemCaseSensitive(m,
			    "tool_calls");
			if ((blocks = turn_for(turns, "assistant")) == NULL ||
			    content_blocks(content, i, 0, blocks, bytes, err) ==
			    -1 || (calls != NULL &&
			    tool_use_blocks(calls, i, blocks, err) == -1))
				return blocks == NULL ? refuse(err, "", "out of "
				    "memory") : -1;
		} else if (strcmp(r, "tool") == 0) {
			if ((blocks = turn_for(turns, "user")) == NULL ||
			    tool_result_block(m, i, blocks, bytes, err) == -1)
				return blocks == NULL ? refuse(err, "", "out of "
				    "memory") : -1;
		} else
			return refuse(err, param, "role must be system, "
			    "developer, user, assistant or tool");
		i++;
	}
	if (cJSON_GetArraySize(turns) == 0)
		return refuse(err, "messages", "messages needs a user message");
	return 0;
}

/* tools and tool_choice, into the upstream body "up". */
static int
translate_tools(const cJSON *root, cJSON *up, struct openai_err *err)
{
	const cJSON	*tools, *t, *fn, *name, *desc, *params, *choice,
			*parallel;
	cJSON		*out, *tool, *tc = NULL;
	char		 param[OPENAI_PARAM_MAX];
	int		 i = 0;

	tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
	if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
		if ((out = cJSON_AddArrayToObject(up, "tools")) == NULL)
			return refuse(err, "", "out of memory");
		cJSON_ArrayForEach(t, tools) {
			snprintf(param, sizeof(param), "tools[%d]", i++);
			fn = cJSON_GetObjectItemCaseSensitive(t, "function");
			name = cJSON_GetObjectItemCaseSensitive(fn, "name");
			desc = cJSON_GetObjectItemCaseSensitive(fn,
			    "description");
			params = cJSON_GetObjectItemCaseSensitive(fn,
			    "parameters");
			if (!cJSON_IsString(name))
				return refuse(err, param, "a tool needs "
				    "function.name");
			if ((tool = cJSON_CreateObject()) == NULL ||
			    !cJSON_AddItemToArray(out, tool) ||
			    cJSON_AddStringToObject(tool, "name",
			    name->valuestring) == NULL ||
			    (cJSON_IsString(desc) && cJSON_AddStringToObject(
			    tool, "description", desc->valuestring) == NULL) ||
			    !cJSON_AddItemToObject(tool, "input_schema",
			    cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) :
			    cJSON_Parse("{\"type\":\"object\"}")))
				return refuse(err, "", "out of memory");
		}
	}
	choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
	parallel = cJSON_GetObjectItemCaseSensitive(root,
	    "parallel_tool_calls");
	if (choice == NULL && !cJSON_IsFalse(parallel))
		return 0;
	if ((tc = cJSON_AddObjectToObject(up, "tool_choice")) == NULL)
		return refuse(err, "", "out of memory");
	if (choice == NULL || (cJSON_IsString(choice) &&
	    strcmp(choice->valuestring, "auto") == 0))
		cJSON_AddStringToObject(tc, "type", "auto");
	else if (cJSON_IsString(choice) && strcmp(choice->valuestring,
	    "none") == 0)
		cJSON_AddStringToObject(tc, "type", "none");
	else if (cJSON_IsString(choice) && strcmp(choice->valuestring,
	    "required") == 0)
		cJSON_AddStringToObject(tc, "type", "any");
	else if (cJSON_IsString(name = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(choice, "function"), "name"))) {
		cJSON_AddStringToObject(tc, "type", "tool");
		cJSON_AddStringToObject(tc, "name", name->valuestring);
	} else
		return refuse(err, "tool_choice", "tool_choice must be auto, "
		    "none, required or a function");
	if (cJSON_IsFalse(parallel) &&
	    cJSON_AddTrueToObject(tc, "disable_parallel_tool_use") == NULL)
		return refuse(err, "", "out of memory");
	return 0;
}

/* What the Messages API cannot do, refused by name. */
static int
untranslatable(const cJSON *root, struct openai_err *err)
{
	static const char *const legacy[] = { "functions", "function_call",
	    "audio", NULL };
	const cJSON		*v, *m;
	const char *const	*name;

	v = cJSON_GetObjectItemCaseSensitive(root, "n");
	if (cJSON_IsNumber(v) && v->valuedouble != 1)
		return refuse(err, "n", "n: only one choice can be made here");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "logprobs")) ||
	    cJSON_GetObjectItemCaseSensitive(root, "top_logprobs") != NULL)
		return refuse(err, "logprobs", "logprobs are not available "
		    "here");
	for (name = legacy; *name != NULL; name++)
		if (cJSON_GetObjectItemCaseSensitive(root, *name) != NULL)
			return refuse(err, *name, "%s is not supported here",
			    *name);
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root,
	    "modalities"))
		if (cJSON_IsString(m) && strcmp(m->valuestring, "text") != 0)
			return refuse(err, "modalities", "only text can be "
			    "produced here");
	v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    root, "response_format"), "type");
	if (cJSON_IsString(v) && strcmp(v->valuestring, "text") != 0)
		return refuse(err, "response_format", "response_format %s is "
		    "not supported here", v->valuestring);
	return 0;
}

/* model and max_tokens, as /v1/messages checks them. */
static int
model_and_max(const struct conf *c, const cJSON *root, struct chat_req *req,
    struct openai_err *err)
{
	const cJSON	*model, *max;
	double		 v;

	model = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (model != NULL && (!cJSON_IsString(model) ||
	    model->valuestring[0] == '\0' ||
	    strlen(model->valuestring) > REQ_MODEL_MAX))
		return refuse(err, "model", "model must be a model's name");
	if ((req->model = strdup(model != NULL ? model->valuestring :
	    c->default_model)) == NULL)
		return refuse(err, "", "out of memory");
	if (!conf_model_allowed(c, req->model)) {
		refuse(err, "model", "The model `%s` does not exist or you do "
		    "not have access to it.", req->model);
		err->status = 404;
		return -1;
	}
	max = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
	if (max == NULL || cJSON_IsNull(max))
		max = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
	if (max == NULL || cJSON_IsNull(max)) {
		req->max_tokens = c->default_max_tokens;
		return 0;
	}
	v = cJSON_IsNumber(max) ? max->valuedouble : 0;
	if (!cJSON_IsNumber(max) || !isfinite(v) || v != floor(v) || v < 1)
		return refuse(err, "max_tokens", "max_tokens must be a whole "
		    "number of at least 1");
	if (v > (double)conf_max_tokens(c, req->model))
		return refuse(err, "max_tokens", "max_tokens: at most %ld for "
		    "%s", conf_max_tokens(c, req->model), req->model);
	req->max_tokens = (long)v;
	return 0;
}

/* temperature, top_p, stop, user into "up". */
static int
sampling(const cJSON *root, cJSON *up, struct openai_err *err)
{
	const cJSON	*temp, *top_p, *stop, *user, *s;
	cJSON		*seqs, *meta;

	temp = cJSON_GetObjectItemCaseSensitive(root, "temperature");
	top_p = cJSON_GetObjectItemCaseSensitive(root, "top_p");
	stop = cJSON_GetObjectItemCaseSensitive(root, "stop");
	user = cJSON_GetObjectItemCaseSensitive(root, "user");
	if (cJSON_IsNumber(temp) && cJSON_AddNumberToObject(up, "temperature",
	    temp->valuedouble > 1 ? 1 : temp->valuedouble < 0 ? 0 :
	    temp->valuedouble) == NULL)
		return refuse(err, "", "out of memory");
	if (cJSON_IsNumber(top_p) && cJSON_AddNumberToObject(up, "top_p",
	    top_p->valuedouble) == NULL)
		return refuse(err, "", "out of memory");
	if (cJSON_IsString(stop) || cJSON_IsArray(stop)) {
		if ((seqs = cJSON_AddArrayToObject(up, "stop_sequences")) ==
		    NULL)
			return refuse(err, "", "out of memory");
		if (cJSON_IsString(stop))
			cJSON_AddItemToArray(seqs,
			    cJSON_CreateString(stop->valuestring));
		else
			cJSON_ArrayForEach(s, stop)
				if (cJSON_IsString(s))
					cJSON_AddItemToArray(seqs,
					    cJSON_CreateString(s->valuestring));
	} else if (stop != NULL && !cJSON_IsNull(stop))
		return refuse(err, "stop", "stop must be a string or a list");
	if (cJSON_IsString(user) &&
	    ((meta = cJSON_AddObjectToObject(up, "metadata")) == NULL ||
	    cJSON_AddStringToObject(meta, "user_id", user->valuestring) ==
	    NULL))
		return refuse(err, "", "out of memory");
	return 0;
}

int
openai_request(const struct conf *c, const char *body, size_t len,
    struct chat_req *req, int *stream, int *include_usage, struct buf *up,
    struct openai_err *err)
{
	enum json_scan_result	 scan;
	cJSON			*root = NULL, *out = NULL, *turns;
	const cJSON		*msgs, *st;
	struct buf		 system;
	size_t			 where, bytes = 0;
	char			*text;
	int			 rc = -1;

	memset(req, 0, sizeof(*req));
	memset(err, 0, sizeof(*err));
	*stream = *include_usage = 0;
	buf_init(&system, BUF_NOCAP);
	if ((scan = json_scan(body, len, REQ_MAX_DEPTH, &where)) !=
	    JSON_SCAN_OK) {
		refuse(err, "", "the body is not JSON: %s at byte %zu",
		    json_scan_msg(scan), where);
		goto out;
	}
	if ((root = cJSON_ParseWithLengthOpts(body, len + 1, NULL, 1)) ==
	    NULL || !cJSON_IsObject(root)) {
		refuse(err, "", "the body must be a JSON object");
		goto out;
	}
	msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
	st = cJSON_GetObjectItemCaseSensitive(root, "stream");
	if (untranslatable(root, err) == -1 ||
	    model_and_max(c, root, req, err) == -1)
		goto out;
	if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
		refuse(err, "messages", "messages must be a list of at least "
		    "one message");
		goto out;
	}
	*stream = cJSON_IsTrue(st);
	*include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "stream_options"),
	    "include_usage"));
	if ((out = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(out, "model", req->model) == NULL ||
	    cJSON_AddNumberToObject(out, "max_tokens",
	    (double)req->max_tokens) == NULL ||
	    (*stream && cJSON_AddTrueToObject(out, "stream") == NULL) ||
	    (turns = cJSON_AddArrayToObject(out, "messages")) == NULL) {
		refuse(err, "", "out of memory");
		goto out;
	}
	if (translate_messages(msgs, turns, &system, &bytes, err) == -1 ||
	    translate_tools(root, out, err) == -1 ||
	    sampling(root, out, err) == -1)
		goto out;
	if (system.len > 0 && cJSON_AddStringToObject(out, "system",
	    buf_str(&system)) == NULL) {
		refuse(err, "", "out of memory");
		goto out;
	}
	if ((text = cJSON_PrintUnformatted(out)) == NULL) {
		refuse(err, "", "out of memory");
		goto out;
	}
	rc = buf_adds(up, text) == -1 ? refuse(err, "", "out of memory") : 0;
	cJSON_free(text);
	req->message_len = bytes;
out:
	cJSON_Delete(root);
	cJSON_Delete(out);
	buf_free(&system);
	if (rc == -1)
		chat_req_free(req);
	return rc;
}

