/*
 * The API's other calls, as its SDKs make them: GET /v1/models and
 * GET /v1/models/{model_id} (the models a key may use), and POST
 * /v1/messages/count_tokens, passed through.  Keys come as on
 * /v1/messages; nothing is held of a budget, and no usage row is written,
 * since nothing is billed.
 *
 * A key may use the models of its own list, within allowed_models; with
 * neither, whatever the upstream lists.  They are answered in the shape
 * of the client's API: Anthropic's, paged by limit, after_id and
 * before_id, for a client that sends x-api-key or anthropic-version (as
 * the Anthropic SDKs do); else OpenAI's {"object": "list", "data": ...}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "store/conf.h"
#include "store/keys.h"
#include "conn.h"
#include "engine.h"
#include "req.h"
#include "request.h"
#include "resp.h"
#include "routes.h"

#define MODELS_REPLY_MAX	(1024 * 1024)	/* the upstream's list */
#define MODEL_ID_MAX		128
#define PAGE_DEFAULT		20		/* as the API pages */
#define PAGE_MAX		1000

static void
api_error(struct chat *ch, int status, const char *extra, const char *detail)
{
	req_error(ch->rq, status, extra, detail);
}

static const struct chat_hooks api_hooks = {
	.token_param = "HTTP_X_API_KEY",
	.error = api_error,
};

/* A header's value, or NULL if it is absent or empty. */
static const char *
header(struct req *rq, const char *name)
{
	const char	*v = conn_param(rq->conn, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* A client of OpenAI's API: it sends neither of the Anthropic SDKs'. */
static int
openai_client(struct req *rq)
{
	return header(rq, "HTTP_X_API_KEY") == NULL &&
	    header(rq, "HTTP_ANTHROPIC_VERSION") == NULL;
}

/* The client's anthropic-version and -beta, passed on: 0, or -1 (400). */
static int
versions(struct chat *ch)
{
	ch->version = header(ch->rq, "HTTP_ANTHROPIC_VERSION");
	ch->beta = header(ch->rq, "HTTP_ANTHROPIC_BETA");
	if (!request_header_ok(ch->version) || !request_header_ok(ch->beta)) {
		req_error(ch->rq, 400, NULL, "anthropic-version or "
		    "anthropic-beta is not a plain header value");
		return -1;
	}
	return 0;
}

/* Whether the key, and llmgw, let this client use "model". */
static int
may_use(const struct chat *ch, const char *model)
{
	return conf_model_allowed(ch->rq->conf, model) &&
	    key_allows_model(&ch->key, model);
}

/*
 * The models the key may use by name (its own list, else allowed_models),
 * as a cJSON array of strings; NULL when no list limits it (or out of
 * memory, which then lists the upstream's).
 */
static cJSON *
named_models(const struct chat *ch)
{
	const struct conf	*conf = ch->rq->conf;
	cJSON			*list;
	char			 one[MODEL_ID_MAX + 1];
	const char		*p, *end;
	char			**m;

	if (ch->key.models[0] == '\0' && conf->allowed_models == NULL)
		return NULL;
	if ((list = cJSON_CreateArray()) == NULL)
		return NULL;
	if (ch->key.models[0] == '\0') {
		for (m = conf->allowed_models; *m != NULL; m++)
			cJSON_AddItemToArray(list, cJSON_CreateString(*m));
		return list;
	}
	for (p = ch->key.models; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > MODEL_ID_MAX)
			continue;
		memcpy(one, p, (size_t)(end - p));
		one[end - p] = '\0';
		if (conf_model_allowed(conf, one))
			cJSON_AddItemToArray(list, cJSON_CreateString(one));
	}
	return list;
}

/* What the upstream says of a model it does not list: its id alone. */
static cJSON *
bare_model(const char *id)
{
	cJSON	*o;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "type", "model");
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "display_name", id);
	cJSON_AddStringToObject(o, "created_at", "1970-01-01T00:00:00Z");
	return o;
}

/* An RFC 3339 time ("2025-02-19T00:00:00Z") as Unix seconds; 0 if not. */
static long long
unix_time(const char *s)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm);
}

/* A model in OpenAI's shape, from one in Anthropic's. */
static cJSON *
openai_model(const cJSON *m)
{
	const cJSON	*id = cJSON_GetObjectItemCaseSensitive(m, "id");
	const cJSON	*at = cJSON_GetObjectItemCaseSensitive(m, "created_at");
	cJSON		*o;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", cJSON_IsString(id) ? id->valuestring :
	    "");
	cJSON_AddStringToObject(o, "object", "model");
	cJSON_AddNumberToObject(o, "created", (double)unix_time(
	    cJSON_IsString(at) ? at->valuestring : NULL));
	cJSON_AddStringToObject(o, "owned_by", "anthropic");
	return o;
}

/* Send "o" (freed here) as a 200 JSON answer. */
static void
answer(struct chat *ch, cJSON *o, const char *extra)
{
	char	*text;

	if (o == NULL || (text = cJSON_PrintUnformatted(o)) == NULL) {
		cJSON_Delete(o);
		req_error(ch->rq, 500, NULL, "out of memory");
		return;
	}
	ch->rq->status = 200;
	resp_body(ch->rq->conn, 200, "application/json", ch->rq->id, extra,
	    text, strlen(text), ch->rq->head_only);
	free(text);
	cJSON_Delete(o);
}

/*
 * A failed call to the upstream, answered: a model it does not know is
 * 404 as it said, another failure what a message's would be (verdict.h),
 * a 2xx that could not be read 502.
 */
static void
upstream_failed(struct chat *ch)
{
	struct anthropic_stream	 st;
	struct anthropic_error	 err;
	struct attempt		 a;
	struct verdict		 v;
	char			 extra[96];

	if (ch->res.outcome == UP_DONE && ch->res.status >= 200 &&
	    ch->res.status <= 299) {
		req_error(ch->rq, 502, NULL, "the upstream's answer is not "
		    "the JSON it should be");
		return;
	}
	if (ch->res.outcome == UP_DONE && ch->res.status == 404) {
		anthropic_parse_error(buf_str(&ch->res.errbody),
		    ch->res.errbody.len, &err);
		req_error_param(ch->rq, 404, NULL, err.message[0] != '\0' ?
		    err.message : "Not Found", "model");
		return;
	}
	memset(&st, 0, sizeof(st));
	a.res = &ch->res;
	a.stop = STOP_NONE;
	a.stream = 0;
	a.st = &st;
	verdict_judge(&a, &v);
	chat_failure_headers(ch, &v, extra, sizeof(extra));
	req_error(ch->rq, v.status, extra[0] != '\0' ? extra : NULL, v.detail);
}

/* The upstream's list (limit=1000: the API's most), parsed; or NULL. */
static cJSON *
upstream_models(struct chat *ch)
{
	const struct conf	*conf = ch->rq->conf;
	struct buf		*reply = &ch->w->reply;
	char			*url;
	cJSON			*root;
	int			 rc;

	if (asprintf(&url, "%s?limit=%d", conf->models_url, PAGE_MAX) == -1)
		return NULL;
	reply->max = MODELS_REPLY_MAX;
	rc = chat_fetch(ch, url, NULL, 0, reply);
	free(url);
	if (rc == -1 || (root = cJSON_ParseWithLength(buf_str(reply),
	    reply->len)) == NULL)
		return NULL;
	return root;
}

/* The value of "name" in the query string, decoded, in "out": 1, or 0. */
static int
query(struct req *rq, const char *name, char *out, size_t size)
{
	const char	*q = header(rq, "QUERY_STRING"), *p;
	size_t		 n = strlen(name), i = 0;
	unsigned int	 c;

	for (p = q; p != NULL && *p != '\0'; p = strchr(p, '&') != NULL ?
	    strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, n) != 0 || p[n] != '=')
			continue;
		for (p += n + 1; *p != '\0' && *p != '&' && i + 1 < size; p++) {
			if (*p == '%' && sscanf(p + 1, "%2x", &c) == 1) {
				out[i++] = (char)c;
				p += 2;
			} else
				out[i++] = *p == '+' ? ' ' : *p;
		}
		out[i] = '\0';
		return 1;
	}
	return 0;
}

/*
 * One page of "models" (an array of Anthropic model objects, taken) as
 * the API pages them: "limit" of them after "after_id" or before
 * "before_id".  NULL after answering an error.
 */
static cJSON *
page(struct chat *ch, cJSON *models)
{
	char		 after[MODEL_ID_MAX + 1], before[MODEL_ID_MAX + 1];
	char		 lim[16], *end;
	long		 limit = PAGE_DEFAULT;
	int		 n = cJSON_GetArraySize(models), from = 0, to, i;
	int		 has_after, has_before;
	const cJSON	*id;
	cJSON		*out, *data;

	if (query(ch->rq, "limit", lim, sizeof(lim)) &&
	    ((limit = strtol(lim, &end, 10)) < 1 || limit > PAGE_MAX ||
	    *end != '\0')) {
		cJSON_Delete(models);
		req_error(ch->rq, 400, NULL, "limit: must be from 1 to 1000");
		return NULL;
	}
	has_after = query(ch->rq, "after_id", after, sizeof(after));
	has_before = query(ch->rq, "before_id", before, sizeof(before));
	to = n;
	for (i = 0; i < n; i++) {
		id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models,
		    i), "id");
		if (!cJSON_IsString(id))
			continue;
		if (has_after && strcmp(id->valuestring, after) == 0)
			from = i + 1;
		if (has_before && strcmp(id->valuestring, before) == 0)
			to = i;
	}
	if (has_before && !has_after && to - from > limit)
		from = to - (int)limit;
	else if (to - from > limit)
		to = from + (int)limit;
	if ((out = cJSON_CreateObject()) == NULL ||
	    (data = cJSON_AddArrayToObject(out, "data")) == NULL) {
		cJSON_Delete(out);
		cJSON_Delete(models);
		req_error(ch->rq, 500, NULL, "out of memory");
		return NULL;
	}
	for (i = from; i < to; i++)
		cJSON_AddItemToArray(data, cJSON_Duplicate(
		    cJSON_GetArrayItem(models, i), 1));
	cJSON_AddBoolToObject(out, "has_more", has_before && !has_after ?
	    from > 0 : to < n);
	if (from < to) {
		cJSON_AddItemToObject(out, "first_id", cJSON_Duplicate(
		    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		    models, from), "id"), 0));
		cJSON_AddItemToObject(out, "last_id", cJSON_Duplicate(
		    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		    models, to - 1), "id"), 0));
	} else {
		cJSON_AddNullToObject(out, "first_id");
		cJSON_AddNullToObject(out, "last_id");
	}
	cJSON_Delete(models);
	return out;
}

/* The upstream's model "id" in the list "up" (may be NULL), or NULL. */
static const cJSON *
listed(const cJSON *up, const char *id)
{
	const cJSON	*m, *mid;

	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(up, "data")) {
		mid = cJSON_GetObjectItemCaseSensitive(m, "id");
		if (cJSON_IsString(mid) && strcmp(mid->valuestring, id) == 0)
			return m;
	}
	return NULL;
}

/* GET /v1/models: every model the key may use. */
static void
list_models(struct chat *ch)
{
	cJSON		*named = named_models(ch), *up, *models, *out;
	const cJSON	*m, *id;
	int		 oa = openai_client(ch->rq);

	up = upstream_models(ch);
	if (up == NULL && named == NULL) {
		upstream_failed(ch);
		return;
	}
	models = cJSON_CreateArray();
	if (named != NULL) {
		/* The names, as the upstream describes them if it can. */
		cJSON_ArrayForEach(m, named) {
			const cJSON *u = listed(up, m->valuestring);

			cJSON_AddItemToArray(models, u != NULL ?
			    cJSON_Duplicate(u, 1) : bare_model(m->valuestring));
		}
	} else {
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(up,
		    "data")) {
			id = cJSON_GetObjectItemCaseSensitive(m, "id");
			if (cJSON_IsString(id) && may_use(ch, id->valuestring))
				cJSON_AddItemToArray(models,
				    cJSON_Duplicate(m, 1));
		}
	}
	cJSON_Delete(named);
	cJSON_Delete(up);
	if (models == NULL) {
		req_error(ch->rq, 500, NULL, "out of memory");
		return;
	}
	if (!oa) {
		if ((out = page(ch, models)) != NULL)
			answer(ch, out, NULL);
		return;
	}
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "object", "list");
	cJSON_AddItemToObject(out, "data", cJSON_CreateArray());
	cJSON_ArrayForEach(m, models)
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(out,
		    "data"), openai_model(m));
	cJSON_Delete(models);
	answer(ch, out, NULL);
}

/* GET /v1/models/{model_id}: one of them. */
static void
get_model(struct chat *ch, const char *id)
{
	const struct conf	*conf = ch->rq->conf;
	struct buf		*reply = &ch->w->reply;
	cJSON			*named, *o = NULL;
	const cJSON		*m;
	char			 detail[MODEL_ID_MAX + 64], *url;
	int			 in_list = 0, rc;

	if (strlen(id) > MODEL_ID_MAX || strspn(id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:@") != strlen(id) ||
	    !may_use(ch, id)) {
		snprintf(detail, sizeof(detail), "model: %.*s", MODEL_ID_MAX,
		    id);
		req_error_param(ch->rq, 404, NULL, detail, "model");
		return;
	}
	if ((named = named_models(ch)) != NULL) {
		cJSON_ArrayForEach(m, named)
			in_list |= strcmp(m->valuestring, id) == 0;
		cJSON_Delete(named);
	}
	if (asprintf(&url, "%s/%s", conf->models_url, id) == -1) {
		req_error(ch->rq, 500, NULL, "out of memory");
		return;
	}
	reply->max = MODELS_REPLY_MAX;
	rc = chat_fetch(ch, url, NULL, 0, reply);
	free(url);
	if (rc == 0)
		o = cJSON_ParseWithLength(buf_str(reply), reply->len);
	else if (in_list)
		o = bare_model(id);	/* named here, if not known there */
	if (o == NULL) {
		upstream_failed(ch);
		return;
	}
	if (openai_client(ch->rq)) {
		m = o;
		o = openai_model(m);
		cJSON_Delete((cJSON *)m);
	}
	answer(ch, o, NULL);
}

void
models_handle(struct req *rq, const char *id)
{
	struct chat	 ch;

	if (openai_client(rq))
		rq->errors = ERRORS_OPENAI;
	if (chat_begin(&ch, rq, &api_hooks, 0) == 0 && versions(&ch) == 0) {
		if (id == NULL)
			list_models(&ch);
		else
			get_model(&ch, id);
	}
	chat_end(&ch);
}

/*
 * The body count_tokens takes, checked only as far as llmgw must: a model
 * the key may use.  0, or -1 after answering.
 */
static int
count_check(struct chat *ch)
{
	const struct buf	*b = &ch->w->body;
	const cJSON		*model;
	cJSON			*root;
	char			 detail[MODEL_ID_MAX + 64];
	int			 status = 0;

	if ((root = cJSON_ParseWithLength(buf_str(b), b->len)) == NULL ||
	    !cJSON_IsObject(root)) {
		status = 400;
		snprintf(detail, sizeof(detail), "the body is not a JSON "
		    "object");
	} else if (!cJSON_IsString(model = cJSON_GetObjectItemCaseSensitive(
	    root, "model")) || model->valuestring[0] == '\0') {
		status = 400;
		snprintf(detail, sizeof(detail), "model: Field required");
	} else if (!conf_model_allowed(ch->rq->conf, model->valuestring)) {
		status = 400;
		snprintf(detail, sizeof(detail), "model: %.*s is not allowed "
		    "here", MODEL_ID_MAX, model->valuestring);
	} else if (!key_allows_model(&ch->key, model->valuestring)) {
		status = 403;
		snprintf(detail, sizeof(detail), "this key may not use model "
		    "%.*s", MODEL_ID_MAX, model->valuestring);
	}
	cJSON_Delete(root);
	if (status != 0)
		req_error(ch->rq, status, NULL, detail);
	return status != 0 ? -1 : 0;
}

void
count_handle(struct req *rq)
{
	struct chat	 ch;
	struct buf	*reply = &rq->scratch->reply;
	char		 extra[160];

	if (chat_begin(&ch, rq, &api_hooks, 0) == 0 && versions(&ch) == 0) {
		if (!request_is_json(conn_param(rq->conn, "CONTENT_TYPE")))
			req_error(rq, 400, NULL, "Content-Type must be "
			    "application/json");
		else if (chat_read_body(&ch) == 0 && count_check(&ch) == 0) {
			reply->max = COUNT_REPLY_MAX;
			if (chat_fetch(&ch, rq->conf->count_url,
			    ch.w->body.data, ch.w->body.len, reply) == -1)
				upstream_failed(&ch);
			else {
				extra[0] = '\0';
				if (ch.res.request_id[0] != '\0')
					snprintf(extra, sizeof(extra),
					    "request-id: %s\r\n",
					    ch.res.request_id);
				rq->status = 200;
				resp_body(rq->conn, 200, "application/json",
				    rq->id, extra, reply->data, reply->len, 0);
			}
		}
	}
	chat_end(&ch);
}
