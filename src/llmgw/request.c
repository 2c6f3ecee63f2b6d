#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/json.h"
#include "store/conf.h"
#include "request.h"
#include "request_impl.h"

void
req_problem_at(struct problems *p, const char *type, const char *loc,
    const char *msg, const char *input, const char *ctx)
{
	struct buf	*b = p->b;
	int		 rc;

	rc = buf_adds(b, b->len == 0 ? "[" : ",");
	rc |= buf_adds(b, "{\"type\":");
	rc |= json_add_cstr(b, type);
	rc |= buf_adds(b, ",\"loc\":[\"body\"");
	if (loc != NULL) {
		rc |= buf_addc(b, ',');
		rc |= buf_adds(b, loc);
	}
	rc |= buf_adds(b, "],\"msg\":");
	rc |= json_add_cstr(b, msg);
	rc |= buf_adds(b, ",\"input\":");
	rc |= buf_adds(b, input != NULL ? input : "null");
	if (ctx != NULL) {
		rc |= buf_adds(b, ",\"ctx\":");
		rc |= buf_adds(b, ctx);
	}
	rc |= buf_addc(b, '}');
	p->failed |= rc == -1;
}

void
req_problem_item_at(struct problems *p, const char *type, const char *loc,
    const char *msg, const cJSON *item, const char *ctx)
{
	char	*input;

	input = cJSON_PrintUnformatted(item);
	p->failed |= input == NULL;
	req_problem_at(p, type, loc, msg, input != NULL ? input : "null", ctx);
	cJSON_free(input);
}

const char *
req_loc_of(const char *field, char *out, size_t size)
{
	struct buf	 b;

	if (field == NULL)
		return NULL;
	buf_init(&b, size - 1);
	if (json_add_cstr(&b, field) == -1) {
		buf_free(&b);
		snprintf(out, size, "\"?\"");
		return out;
	}
	snprintf(out, size, "%s", buf_str(&b));
	buf_free(&b);
	return out;
}

/*
 * Append one problem at top-level field "field" (NULL: the body); "input"
 * is JSON text or NULL for null; "ctx" is a JSON object's text or NULL.
 */
static void
problem(struct problems *p, const char *type, const char *field,
    const char *msg, const char *input, const char *ctx)
{
	char	 loc[256];

	req_problem_at(p, type, req_loc_of(field, loc, sizeof(loc)), msg, input,
	    ctx);
}

/* As problem(), with the offending cJSON value as "input". */
static void
problem_item(struct problems *p, const char *type, const char *field,
    const char *msg, const cJSON *item, const char *ctx)
{
	char	 loc[256];

	req_problem_item_at(p, type, req_loc_of(field, loc, sizeof(loc)), msg,
	    item, ctx);
}

int
req_problems_end(struct problems *p)
{
	static const char	 oom[] = "[{\"type\":\"internal\",\"loc\":"
	    "[\"body\"],\"msg\":\"out of memory\",\"input\":null}]";

	if (!p->failed && p->b->len == 0)
		return 0;
	if (p->failed || buf_addc(p->b, ']') == -1) {
		buf_reset(p->b);
		if (buf_adds(p->b, oom) == -1)
			buf_reset(p->b);	/* the caller answers 500 */
	}
	return -1;
}

static int
all_space(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return 0;
	return 1;
}

static void
check_message(const cJSON *item, struct chat_req *req, struct problems *p)
{
	if (item == NULL) {
		problem(p, "missing", "message", "Field required", NULL, NULL);
		return;
	}
	if (!cJSON_IsString(item)) {
		problem_item(p, "string_type", "message",
		    "Input should be a valid string", item, NULL);
		return;
	}
	if (item->valuestring[0] == '\0') {
		problem_item(p, "string_too_short", "message",
		    "String should have at least 1 character", item,
		    "{\"min_length\":1}");
		return;
	}
	if (all_space(item->valuestring)) {
		problem_item(p, "value_error", "message",
		    "Value error, message must contain non-whitespace text",
		    item, NULL);
		return;
	}
	req->message_len = strlen(item->valuestring);
	if ((req->message = strdup(item->valuestring)) == NULL)
		p->failed = 1;
}

/*
 * A model not in allowed_models: Pydantic's literal_error, which words
 * them "'a', 'b' or 'c'".
 */
static void
model_not_allowed(const struct conf *c, const cJSON *item,
    struct problems *p)
{
	struct buf	 words, msg, ctx;
	char		**m;
	int		 rc = 0;

	buf_init(&words, BUF_NOCAP);
	buf_init(&msg, BUF_NOCAP);
	buf_init(&ctx, BUF_NOCAP);
	for (m = c->allowed_models; *m != NULL; m++) {
		if (m != c->allowed_models)
			rc |= buf_adds(&words, m[1] == NULL ? " or " : ", ");
		rc |= buf_addf(&words, "'%s'", *m);
	}
	rc |= buf_addf(&msg, "Input should be %s", buf_str(&words));
	rc |= buf_adds(&ctx, "{\"expected\":");
	rc |= json_add_str(&ctx, buf_str(&words), words.len);
	rc |= buf_addc(&ctx, '}');
	if (rc == 0)
		problem_item(p, "literal_error", "model", buf_str(&msg), item,
		    buf_str(&ctx));
	p->failed |= rc == -1;
	buf_free(&words);
	buf_free(&msg);
	buf_free(&ctx);
}

void
req_check_model(const struct conf *c, const cJSON *item, struct chat_req *req,
    struct problems *p)
{
	char		 msg[64], ctx[32];
	const char	*model;

	if (item == NULL) {
		model = c->default_model;
	} else if (!cJSON_IsString(item)) {
		problem_item(p, "string_type", "model",
		    "Input should be a valid string", item, NULL);
		return;
	} else if (item->valuestring[0] == '\0') {
		problem_item(p, "string_too_short", "model",
		    "String should have at least 1 character", item,
		    "{\"min_length\":1}");
		return;
	} else if (strlen(item->valuestring) > REQ_MODEL_MAX) {
		snprintf(ctx, sizeof(ctx), "{\"max_length\":%d}",
		    REQ_MODEL_MAX);
		snprintf(msg, sizeof(msg), "String should have at most %d "
		    "characters", REQ_MODEL_MAX);
		problem_item(p, "string_too_long", "model", msg, item, ctx);
		return;
	} else
		model = item->valuestring;
	if (!conf_model_allowed(c, model)) {
		model_not_allowed(c, item, p);
		return;
	}
	if ((req->model = strdup(model)) == NULL)
		p->failed = 1;
}

void
req_check_max_tokens(const struct conf *c, const cJSON *item,
    struct chat_req *req, struct problems *p)
{
	char	 msg[64], ctx[32];
	double	 v;
	long	 limit;

	if (item == NULL) {
		req->max_tokens = c->default_max_tokens;
		return;
	}
	if (!cJSON_IsNumber(item)) {
		problem_item(p, "int_type", "max_tokens",
		    "Input should be a valid integer", item, NULL);
		return;
	}
	v = item->valuedouble;
	if (!isfinite(v) || v != floor(v)) {
		problem_item(p, "int_from_float", "max_tokens",
		    "Input should be a valid integer, got a number with a "
		    "fractional part", item, NULL);
		return;
	}
	if (v < 1) {
		problem_item(p, "greater_than_equal", "max_tokens",
		    "Input should be greater than or equal to 1", item,
		    "{\"ge\":1}");
		return;
	}
	limit = conf_max_tokens(c, req->model != NULL ? req->model :
	    c->default_model);
	if (v > (double)limit) {
		snprintf(msg, sizeof(msg), "Input should be less than or "
		    "equal to %ld", limit);
		snprintf(ctx, sizeof(ctx), "{\"le\":%ld}", limit);
		problem_item(p, "less_than_equal", "max_tokens", msg, item,
		    ctx);
		return;
	}
	req->max_tokens = (long)v;
}

static void
check_include_usage(const cJSON *item, struct chat_req *req,
    struct problems *p)
{
	if (item == NULL)
		return;
	if (!cJSON_IsBool(item)) {
		problem_item(p, "bool_type", "include_usage",
		    "Input should be a valid boolean", item, NULL);
		return;
	}
	req->include_usage = cJSON_IsTrue(item);
}

/* The body is not JSON: where, and why (Python's json module's words). */
static void
json_invalid(struct problems *p, size_t pos, const char *why)
{
	struct buf	*b = p->b;
	int		 rc;

	rc = buf_adds(b, b->len == 0 ? "[" : ",");
	rc |= buf_addf(b, "{\"type\":\"json_invalid\",\"loc\":[\"body\",%zu],"
	    "\"msg\":\"JSON decode error\",\"input\":{},\"ctx\":{\"error\":",
	    pos);
	rc |= json_add_cstr(b, why);
	rc |= buf_adds(b, "}}");
	p->failed |= rc == -1;
}

cJSON *
req_parse_object(const char *body, size_t len, struct problems *p)
{
	cJSON			*root;
	const char		*end = NULL;
	enum json_scan_result	 scan;
	size_t			 where;

	if (len == 0 || all_space(body)) {
		problem(p, "missing", NULL, "Field required", NULL, NULL);
		return NULL;
	}
	if ((scan = json_scan(body, len, REQ_MAX_DEPTH, &where)) !=
	    JSON_SCAN_OK) {
		json_invalid(p, where, json_scan_msg(scan));
		return NULL;
	}
	/* The length includes the NUL so that cJSON can check for it. */
	if ((root = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1)) ==
	    NULL) {
		where = end != NULL && end >= body && end <= body + len ?
		    (size_t)(end - body) : 0;
		json_invalid(p, where, "Expecting value");
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		problem_item(p, "model_attributes_type", NULL,
		    "Input should be a valid dictionary or object to extract "
		    "fields from", root, NULL);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static const char *const chat_fields[] = {
	"message", "model", "max_tokens", "include_usage", NULL
};

/* Check each field of "root" into "req", problems appended. */
static void
check_fields(const struct conf *c, const cJSON *root, struct chat_req *req,
    struct problems *p)
{
	const cJSON		*it, *field[4] = { NULL, NULL, NULL, NULL };
	const char *const	*name;
	char			*input;

	/* Like Python's json module, the last of duplicate keys counts. */
	cJSON_ArrayForEach(it, root) {
		for (name = chat_fields; *name != NULL; name++)
			if (strcmp(it->string, *name) == 0)
				break;
		if (*name != NULL)
			field[name - chat_fields] = it;
	}
	if (field[0] == NULL) {
		input = cJSON_PrintUnformatted(root);
		p->failed |= input == NULL;
		problem(p, "missing", "message", "Field required", input,
		    NULL);
		cJSON_free(input);
	} else
		check_message(field[0], req, p);
	req_check_model(c, field[1], req, p);
	req_check_max_tokens(c, field[2], req, p);
	check_include_usage(field[3], req, p);
	cJSON_ArrayForEach(it, root) {
		for (name = chat_fields; *name != NULL; name++)
			if (strcmp(it->string, *name) == 0)
				break;
		if (*name == NULL)
			problem_item(p, "extra_forbidden", it->string,
			    "Extra inputs are not permitted", it, NULL);
	}
}

int
chat_req_parse(const struct conf *c, const char *body, size_t len,
    struct chat_req *req, struct buf *problems)
{
	struct problems	 p = { problems, 0 };
	cJSON		*root;

	memset(req, 0, sizeof(*req));
	buf_reset(problems);
	if ((root = req_parse_object(body, len, &p)) != NULL) {
		check_fields(c, root, req, &p);
		cJSON_Delete(root);
	}
	if (req_problems_end(&p) == 0)
		return 0;
	chat_req_free(req);
	return -1;
}

void
chat_req_free(struct chat_req *req)
{
	free(req->message);
	free(req->model);
	memset(req, 0, sizeof(*req));
}

int
request_is_json_lax(const char *ct)
{
	size_t	 n;

	if (ct == NULL)
		return 1;
	while (*ct == ' ')
		ct++;
	if (*ct == '\0')
		return 1;		/* none: read as JSON, as FastAPI does */
	if (strncasecmp(ct, "application/", 12) != 0)
		return 0;
	ct += 12;
	n = strcspn(ct, "; ");
	return (n == 4 && strncasecmp(ct, "json", 4) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

int
request_is_json(const char *ct)
{
	size_t	 n = strlen("application/json");

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * The tools the API runs itself, which bill what they bring in as input:
 * web search, web fetch, code execution (client tools, and the tools of
 * the computer use family, cost the client's next request instead).
 */
static void
server_tools(const struct conf *c, const cJSON *tools, struct chat_req *req)
{
	static const char *const kinds[] = { "web_search", "web_fetch",
	    "code_execution" };
	const cJSON	*t, *type, *uses;
	size_t		 i;

	cJSON_ArrayForEach(t, tools) {
		type = cJSON_GetObjectItemCaseSensitive(t, "type");
		if (!cJSON_IsString(type))
			continue;
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strncmp(type->valuestring, kinds[i],
			    strlen(kinds[i])) == 0)
				break;
		if (i == sizeof(kinds) / sizeof(kinds[0]))
			continue;
		uses = cJSON_GetObjectItemCaseSensitive(t, "max_uses");
		req->server_tools++;
		req->server_tool_uses += cJSON_IsNumber(uses) &&
		    uses->valuedouble >= 0 && uses->valuedouble <= 1000 ?
		    (long)uses->valuedouble : c->server_tool_uses;
	}
}

int
messages_count_body(const char *body, size_t len, struct buf *out)
{
	static const char *const keep[] = { "model", "messages", "system",
	    "tools", "tool_choice", "thinking" };
	cJSON		*root, *count;
	const cJSON	*v;
	char		*text;
	size_t		 i;
	int		 rc = -1;

	if ((root = cJSON_ParseWithLengthOpts(body, len + 1, NULL, 1)) == NULL)
		return -1;
	if ((count = cJSON_CreateObject()) == NULL)
		goto out;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		if ((v = cJSON_GetObjectItemCaseSensitive(root, keep[i])) ==
		    NULL)
			continue;
		if (!cJSON_AddItemReferenceToObject(count, keep[i],
		    (cJSON *)v))
			goto out;
	}
	if ((text = cJSON_PrintUnformatted(count)) == NULL)
		goto out;
	rc = buf_adds(out, text);
	cJSON_free(text);
out:
	cJSON_Delete(count);
	cJSON_Delete(root);
	return rc;
}

int
messages_req_parse(const struct conf *c, const char *body, size_t len,
    struct chat_req *req, int *stream, char *why, size_t whylen)
{
	cJSON			*root = NULL;
	const cJSON		*model, *max, *msgs, *st;
	enum json_scan_result	 scan;
	size_t			 where;
	double			 v;

	memset(req, 0, sizeof(*req));
	*stream = 0;
	if ((scan = json_scan(body, len, 64, &where)) != JSON_SCAN_OK) {
		snprintf(why, whylen, "body: %s at byte %zu",
		    json_scan_msg(scan), where);
		return -1;
	}
	if ((root = cJSON_ParseWithLengthOpts(body, len + 1, NULL, 1)) == NULL ||
	    !cJSON_IsObject(root)) {
		snprintf(why, whylen, "body: not a JSON object");
		goto fail;
	}
	model = cJSON_GetObjectItemCaseSensitive(root, "model");
	max = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
	msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
	st = cJSON_GetObjectItemCaseSensitive(root, "stream");
	if (!cJSON_IsString(model) || model->valuestring[0] == '\0' ||
	    strlen(model->valuestring) > REQ_MODEL_MAX) {
		snprintf(why, whylen, "model: a model name is required");
		goto fail;
	}
	if (!conf_model_allowed(c, model->valuestring)) {
		snprintf(why, whylen, "model: %s is not allowed here",
		    model->valuestring);
		goto fail;
	}
	v = cJSON_IsNumber(max) ? max->valuedouble : 0;
	if (!cJSON_IsNumber(max) || !isfinite(v) || v != floor(v) || v < 1) {
		snprintf(why, whylen, "max_tokens: a whole number of at least "
		    "1 is required");
		goto fail;
	}
	if (v > (double)conf_max_tokens(c, model->valuestring)) {
		snprintf(why, whylen, "max_tokens: at most %ld for %s",
		    conf_max_tokens(c, model->valuestring), model->valuestring);
		goto fail;
	}
	if (!cJSON_IsArray(msgs)) {
		snprintf(why, whylen, "messages: a list of messages is "
		    "required");
		goto fail;
	}
	if (st != NULL && !cJSON_IsBool(st)) {
		snprintf(why, whylen, "stream: must be true or false");
		goto fail;
	}
	*stream = cJSON_IsTrue(st);
	server_tools(c, cJSON_GetObjectItemCaseSensitive(root, "tools"), req);
	req->max_tokens = (long)v;
	/* For the budget: a token per byte of the body at most. */
	req->message_len = len;
	if ((req->model = strdup(model->valuestring)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	return -1;
}

int
request_header_ok(const char *v)
{
	const char	*p;

	if (v == NULL)
		return 1;
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return p - v <= REQ_HEADER_MAX;
}
