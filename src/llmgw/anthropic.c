#include "config.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/str.h"
#include "anthropic.h"

int
anthropic_request(struct buf *b, const char *model, long max_tokens,
    const char *message, size_t message_len, int stream)
{
	if (buf_adds(b, "{\"model\":") == -1 ||
	    json_add_cstr(b, model) == -1 ||
	    (max_tokens > 0 &&
	    buf_addf(b, ",\"max_tokens\":%ld", max_tokens) == -1) ||
	    buf_addc(b, ',') == -1 ||
	    (stream && buf_adds(b, "\"stream\":true,") == -1) ||
	    buf_adds(b, "\"messages\":[{\"role\":\"user\",\"content\":") ==
	    -1 || json_add_str(b, message, message_len) == -1 ||
	    buf_adds(b, "}]}") == -1)
		return -1;
	return 0;
}

static long
get_long(const cJSON *obj, const char *name)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
	    v->valuedouble > 1e15)
		return -1;
	return (long)v->valuedouble;
}

/* Take the usage numbers present in "u"; absent ones stay as they are. */
static void
usage_merge(struct anthropic_usage *usage, const cJSON *u)
{
	long	 v;

	if (!cJSON_IsObject(u))
		return;
	if ((v = get_long(u, "input_tokens")) >= 0)
		usage->input_tokens = v;
	if ((v = get_long(u, "output_tokens")) >= 0 &&
	    v > usage->output_tokens)
		usage->output_tokens = v;
	if ((v = get_long(u, "cache_creation_input_tokens")) >= 0)
		usage->cache_creation_input_tokens = v;
	if ((v = get_long(u, "cache_read_input_tokens")) >= 0)
		usage->cache_read_input_tokens = v;
}

static void
copy_str(char *dst, size_t size, const cJSON *v)
{
	if (cJSON_IsString(v))
		str_copy(dst, size, v->valuestring);
}

static int
error_from(struct anthropic_error *err, const cJSON *e)
{
	if (!cJSON_IsObject(e))
		return -1;
	copy_str(err->type, sizeof(err->type),
	    cJSON_GetObjectItemCaseSensitive(e, "type"));
	copy_str(err->message, sizeof(err->message),
	    cJSON_GetObjectItemCaseSensitive(e, "message"));
	if (err->type[0] == '\0')
		snprintf(err->type, sizeof(err->type), "api_error");
	return 0;
}

/* "s" at "*p", moved past it: 1, or 0 if it is not there. */
static int
expect(const char **p, const char *end, const char *s)
{
	size_t	 n = strlen(s);

	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return 0;
	*p += n;
	return 1;
}

int
anthropic_text_delta(const char *data, size_t len, char *text, size_t size,
    size_t *text_len)
{
	static const char	 esc_in[] = "\"\\/bfnrt", esc_out[] =
				    "\"\\/\b\f\n\r\t";
	const char		*p = data, *end = data + len, *e;
	size_t			 n = 0;

	if (!expect(&p, end, "{\"type\":\"content_block_delta\",\"index\":"))
		return 0;
	for (e = p; p < end && *p >= '0' && *p <= '9'; p++)
		;
	if (p == e || (*e == '0' && p - e > 1) ||
	    !expect(&p, end, ",\"delta\":{\"type\":\"text_delta\",\"text\":\""))
		return 0;
	for (; p < end && *p != '"'; p++) {
		if (n == size)
			return 0;
		if ((unsigned char)*p < 0x20)
			return 0;	/* invalid JSON: cJSON says so */
		if (*p != '\\') {
			text[n++] = *p;
			continue;
		}
		/* \u (rare: the API sends UTF-8 as it is) is cJSON's. */
		if (++p == end || *p == '\0' ||
		    (e = strchr(esc_in, *p)) == NULL)
			return 0;
		text[n++] = esc_out[e - esc_in];
	}
	if (!expect(&p, end, "\"}}"))
		return 0;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	if (p != end)
		return 0;
	*text_len = n;
	return 1;
}

int
anthropic_stream_event(struct anthropic_stream *st, const char *data,
    size_t len, anthropic_text_fn fn, void *arg)
{
	cJSON		*root;
	const cJSON	*type, *delta, *dtype, *text, *msg;
	char		 fast[ANTHROPIC_FAST_TEXT];
	size_t		 n;
	int		 rc = AEV_MALFORMED;

	/* Nearly every event: a text delta, read without a parse tree. */
	if (anthropic_text_delta(data, len, fast, sizeof(fast), &n)) {
		st->deltas++;
		return fn != NULL && fn(arg, fast, n) == -1 ? -1 : AEV_TEXT;
	}
	if ((root = cJSON_ParseWithLength(data, len)) == NULL)
		return AEV_MALFORMED;
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!cJSON_IsString(type))
		goto done;
	if (strcmp(type->valuestring, "content_block_delta") == 0) {
		delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
		dtype = cJSON_GetObjectItemCaseSensitive(delta, "type");
		if (!cJSON_IsString(dtype))
			goto done;
		if (strcmp(dtype->valuestring, "text_delta") != 0) {
			/* input_json, thinking, signature: not for /chat */
			rc = AEV_IGNORED;
			goto done;
		}
		text = cJSON_GetObjectItemCaseSensitive(delta, "text");
		if (!cJSON_IsString(text))
			goto done;
		st->deltas++;
		rc = AEV_TEXT;
		if (fn != NULL && fn(arg, text->valuestring,
		    strlen(text->valuestring)) == -1)
			rc = -1;
	} else if (strcmp(type->valuestring, "message_start") == 0) {
		msg = cJSON_GetObjectItemCaseSensitive(root, "message");
		if (!cJSON_IsObject(msg))
			goto done;
		usage_merge(&st->usage,
		    cJSON_GetObjectItemCaseSensitive(msg, "usage"));
		copy_str(st->message_id, sizeof(st->message_id),
		    cJSON_GetObjectItemCaseSensitive(msg, "id"));
		st->started = 1;
		rc = AEV_START;
	} else if (strcmp(type->valuestring, "message_delta") == 0) {
		msg = cJSON_GetObjectItemCaseSensitive(root, "usage");
		usage_merge(&st->usage, msg);
		if (get_long(msg, "input_tokens") >= 0)
			st->input_final = 1;
		delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
		copy_str(st->stop_reason, sizeof(st->stop_reason),
		    cJSON_GetObjectItemCaseSensitive(delta, "stop_reason"));
		rc = AEV_USAGE;
	} else if (strcmp(type->valuestring, "message_stop") == 0) {
		st->stopped = 1;
		rc = AEV_STOP;
	} else if (strcmp(type->valuestring, "content_block_start") == 0) {
		rc = AEV_IGNORED;
		dtype = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(root, "content_block"),
		    "type");
		if (cJSON_IsString(dtype) &&
		    strcmp(dtype->valuestring, "server_tool_use") == 0) {
			st->server_tool_uses++;
			rc = AEV_TOOL_USE;
		}
	} else if (strcmp(type->valuestring, "error") == 0) {
		if (error_from(&st->err, cJSON_GetObjectItemCaseSensitive(root,
		    "error")) == 0)
			rc = AEV_ERROR;
	} else
		rc = AEV_IGNORED;	/* ping, content_block_stop, .. */
done:
	cJSON_Delete(root);
	return rc;
}

int
anthropic_parse_reply(const char *body, size_t len, struct buf *text,
    struct anthropic_stream *st)
{
	cJSON		*root;
	const cJSON	*content, *block, *type, *t;
	int		 rc = -1;

	if ((root = cJSON_ParseWithLength(body, len)) == NULL)
		return -1;
	content = cJSON_GetObjectItemCaseSensitive(root, "content");
	if (!cJSON_IsArray(content))
		goto done;
	cJSON_ArrayForEach(block, content) {
		type = cJSON_GetObjectItemCaseSensitive(block, "type");
		if (!cJSON_IsString(type) ||
		    strcmp(type->valuestring, "text") != 0)
			continue;
		t = cJSON_GetObjectItemCaseSensitive(block, "text");
		if (cJSON_IsString(t) && buf_adds(text, t->valuestring) == -1)
			goto done;
	}
	memset(&st->usage, 0, sizeof(st->usage));
	usage_merge(&st->usage, cJSON_GetObjectItemCaseSensitive(root,
	    "usage"));
	copy_str(st->stop_reason, sizeof(st->stop_reason),
	    cJSON_GetObjectItemCaseSensitive(root, "stop_reason"));
	copy_str(st->message_id, sizeof(st->message_id),
	    cJSON_GetObjectItemCaseSensitive(root, "id"));
	st->started = 1;
	st->stopped = 1;
	rc = 0;
done:
	cJSON_Delete(root);
	return rc;
}

int
anthropic_parse_error(const char *body, size_t len,
    struct anthropic_error *err)
{
	cJSON	*root;
	int	 rc = -1;

	memset(err, 0, sizeof(*err));
	if ((root = cJSON_ParseWithLength(body, len)) != NULL)
		rc = error_from(err,
		    cJSON_GetObjectItemCaseSensitive(root, "error"));
	cJSON_Delete(root);
	if (rc == -1) {
		snprintf(err->type, sizeof(err->type), "api_error");
		snprintf(err->message, sizeof(err->message),
		    "unrecognised error body");
	}
	return rc;
}

const char *
anthropic_error_type(int status)
{
	switch (status) {
	case 400:
	case 415:
	case 422:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 504:
		return "timeout_error";
	default:
		return "api_error";
	}
}

int
anthropic_error_body(struct buf *b, int status, const char *message)
{
	if (buf_addf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
	    "\"message\":", anthropic_error_type(status)) == -1 ||
	    json_add_cstr(b, message) == -1 || buf_adds(b, "}}") == -1)
		return -1;
	return 0;
}
