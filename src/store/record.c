#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/str.h"
#include "record.h"

static int
add_str_or_null(struct buf *b, const char *name, const char *s)
{
	return buf_addf(b, ",\"%s\":", name) == -1 ||
	    json_add_cstr(b, s[0] != '\0' ? s : NULL) == -1 ? -1 : 0;
}

int
record_to_json(const struct record *r, struct buf *b)
{
	char	 when[80];	/* room for any year gmtime_r gives */
	int	 bad = 0;

	clock_iso8601(r->ts_ms, when, sizeof(when));
	bad |= buf_adds(b, "{\"id\":");
	bad |= json_add_cstr(b, r->id);
	bad |= buf_adds(b, ",\"request_id\":");
	bad |= json_add_cstr(b, r->request_id);
	bad |= buf_addf(b, ",\"time\":\"%s\",\"ts_ms\":%lld,\"end_ms\":%lld",
	    when, (long long)r->ts_ms, (long long)r->end_ms);
	bad |= add_str_or_null(b, "key", r->key);
	bad |= buf_adds(b, ",\"route\":");
	bad |= json_add_cstr(b, r->route);
	bad |= add_str_or_null(b, "model", r->model);
	bad |= buf_addf(b, ",\"status\":%d,\"input_tokens\":%ld,"
	    "\"output_tokens\":%ld,\"cache_creation_input_tokens\":%ld,"
	    "\"cache_read_input_tokens\":%ld", r->status, r->input_tokens,
	    r->output_tokens, r->cache_creation_input_tokens,
	    r->cache_read_input_tokens);
	if (r->ttft_ms >= 0)
		bad |= buf_addf(b, ",\"ttft_ms\":%ld", r->ttft_ms);
	else
		bad |= buf_adds(b, ",\"ttft_ms\":null");
	bad |= buf_addf(b, ",\"total_ms\":%ld,\"disconnected\":%s,"
	    "\"partial\":%s,\"retries\":%d,\"upstream\":%s", r->total_ms,
	    r->disconnected ? "true" : "false", r->partial ? "true" : "false",
	    r->retries, r->upstream ? "true" : "false");
	if (r->budget_exhausted)
		bad |= buf_adds(b, ",\"budget_exhausted\":true");
	if (r->upstream_status > 0)
		bad |= buf_addf(b, ",\"upstream_status\":%ld",
		    r->upstream_status);
	else
		bad |= buf_adds(b, ",\"upstream_status\":null");
	bad |= add_str_or_null(b, "upstream_error", r->upstream_error);
	bad |= add_str_or_null(b, "upstream_request_id",
	    r->upstream_request_id);
	if (r->max_tokens > 0)
		bad |= buf_addf(b, ",\"max_tokens\":%ld", r->max_tokens);
	if (r->response_id[0] != '\0')
		bad |= add_str_or_null(b, "response_id", r->response_id);
	if (r->finish_reason[0] != '\0')
		bad |= add_str_or_null(b, "finish_reason", r->finish_reason);
	if (r->trace_id[0] != '\0') {
		bad |= add_str_or_null(b, "trace_id", r->trace_id);
		bad |= add_str_or_null(b, "parent_span_id", r->parent_span_id);
	}
	if (r->prompt_bytes >= 0)
		bad |= buf_addf(b, ",\"prompt_bytes\":%ld", r->prompt_bytes);
	if (r->reply_bytes >= 0)
		bad |= buf_addf(b, ",\"reply_bytes\":%ld", r->reply_bytes);
	if (r->prompt != NULL) {
		bad |= buf_adds(b, ",\"prompt\":");
		bad |= json_add_str(b, r->prompt, r->prompt_len);
	}
	if (r->reply != NULL) {
		bad |= buf_adds(b, ",\"reply\":");
		bad |= json_add_str(b, r->reply, r->reply_len);
	}
	bad |= buf_addc(b, '}');
	return bad ? -1 : 0;
}

int
record_id_valid(const char *s)
{
	size_t	 n;

	n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
	return n > 0 && n <= RECORD_ID_MAX && s[n] == '\0' &&
	    strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* "" or exactly "n" lower-case hex digits. */
static int
hex_or_empty(const char *s, size_t n)
{
	size_t	 len = strlen(s);

	return len == 0 || (len == n &&
	    strspn(s, "0123456789abcdef") == n);
}

/* A whole number field: 0 and the value, or -1. */
static int
get_num(const cJSON *o, const char *name, int required, double lo, double hi,
    int64_t *out, struct err *err)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		err_set(err, "field \"%s\" is missing", name);
		return -1;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
	    v->valuedouble > hi) {
		err_set(err, "field \"%s\" is not a whole number from %.0f to "
		    "%.0f", name, lo, hi);
		return -1;
	}
	*out = (int64_t)v->valuedouble;
	return 0;
}

static int
get_str(const cJSON *o, const char *name, int required, char *out,
    size_t size, struct err *err)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		err_set(err, "field \"%s\" is missing", name);
		return -1;
	}
	if (!cJSON_IsString(v)) {
		err_set(err, "field \"%s\" is not a string", name);
		return -1;
	}
	if (strlen(v->valuestring) >= size) {
		err_set(err, "field \"%s\" is longer than %zu bytes", name,
		    size - 1);
		return -1;
	}
	str_copy(out, size, v->valuestring);
	return 0;
}

static int
get_bool(const cJSON *o, const char *name, int *out, struct err *err)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v)) {
		err_set(err, "field \"%s\" is not true or false", name);
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

int
record_from_json(const char *text, size_t len, struct record *r,
    struct err *err)
{
	static const double	 big = 9007199254740991.0;	/* 2^53 - 1 */
	cJSON			*root;
	const char		*end;
	int64_t			 n;
	int			 rc = -1;

	memset(r, 0, sizeof(*r));
	r->ttft_ms = -1;
	if (json_scan(text, len, 8, NULL) != JSON_SCAN_OK ||
	    (root = cJSON_ParseWithLengthOpts(text, len, &end, 0)) == NULL) {
		err_set(err, "not valid JSON");
		return -1;
	}
	/* One value: not the first of several (lines of a spool file). */
	while (end < text + len && strchr(" \t\r\n", *end) != NULL &&
	    *end != '\0')
		end++;
	if (end != text + len) {
		err_set(err, "more than one JSON value");
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		err_set(err, "not a JSON object");
		goto done;
	}
	if (get_str(root, "id", 1, r->id, sizeof(r->id), err) == -1 ||
	    get_str(root, "request_id", 1, r->request_id,
	    sizeof(r->request_id), err) == -1 ||
	    get_str(root, "route", 1, r->route, sizeof(r->route), err) ==
	    -1 ||
	    get_str(root, "key", 0, r->key, sizeof(r->key), err) == -1 ||
	    get_str(root, "model", 0, r->model, sizeof(r->model), err) ==
	    -1 ||
	    get_str(root, "upstream_error", 0, r->upstream_error,
	    sizeof(r->upstream_error), err) == -1 ||
	    get_str(root, "upstream_request_id", 0, r->upstream_request_id,
	    sizeof(r->upstream_request_id), err) == -1 ||
	    get_str(root, "response_id", 0, r->response_id,
	    sizeof(r->response_id), err) == -1 ||
	    get_str(root, "finish_reason", 0, r->finish_reason,
	    sizeof(r->finish_reason), err) == -1 ||
	    get_str(root, "trace_id", 0, r->trace_id, sizeof(r->trace_id),
	    err) == -1 ||
	    get_str(root, "parent_span_id", 0, r->parent_span_id,
	    sizeof(r->parent_span_id), err) == -1)
		goto done;
	/* They become the ids of spans: exactly so many hex digits. */
	if (!hex_or_empty(r->trace_id, sizeof(r->trace_id) - 1) ||
	    !hex_or_empty(r->parent_span_id, sizeof(r->parent_span_id) - 1) ||
	    (r->trace_id[0] == '\0') != (r->parent_span_id[0] == '\0')) {
		err_set(err, "fields \"trace_id\" and \"parent_span_id\" are "
		    "not 32 and 16 hex digits");
		goto done;
	}
	if (!record_id_valid(r->id)) {
		err_set(err, "field \"id\" is not a valid record id");
		goto done;
	}
#define NUM(name, req, lo, hi, field) do {				\
	n = 0;								\
	if (get_num(root, name, req, lo, hi, &n, err) == -1)		\
		goto done;						\
	field = n;							\
} while (0)
	NUM("ts_ms", 1, 0, big, r->ts_ms);
	NUM("end_ms", 0, 0, big, r->end_ms);
	NUM("status", 1, 100, 999, r->status);
	NUM("input_tokens", 0, 0, big, r->input_tokens);
	NUM("output_tokens", 0, 0, big, r->output_tokens);
	NUM("cache_creation_input_tokens", 0, 0, big,
	    r->cache_creation_input_tokens);
	NUM("cache_read_input_tokens", 0, 0, big, r->cache_read_input_tokens);
	n = -1;
	if (get_num(root, "ttft_ms", 0, 0, big, &n, err) == -1)
		goto done;
	r->ttft_ms = n;
	NUM("total_ms", 0, 0, big, r->total_ms);
	NUM("retries", 0, 0, 1000, r->retries);
	NUM("upstream_status", 0, 0, 999, r->upstream_status);
	NUM("max_tokens", 0, 0, big, r->max_tokens);
	n = -1;
	if (get_num(root, "prompt_bytes", 0, 0, big, &n, err) == -1)
		goto done;
	r->prompt_bytes = n;
	n = -1;
	if (get_num(root, "reply_bytes", 0, 0, big, &n, err) == -1)
		goto done;
	r->reply_bytes = n;
#undef NUM
	if (get_bool(root, "disconnected", &r->disconnected, err) == -1 ||
	    get_bool(root, "partial", &r->partial, err) == -1 ||
	    get_bool(root, "upstream", &r->upstream, err) == -1 ||
	    get_bool(root, "budget_exhausted", &r->budget_exhausted, err) ==
	    -1)
		goto done;
	rc = 0;
done:
	cJSON_Delete(root);
	return rc;
}
