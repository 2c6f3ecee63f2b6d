/*
 * The otlp and langfuse sinks: each record as one span, exported with
 * OTLP/HTTP in its JSON encoding.  otlp posts to {otlp_endpoint}/v1/traces,
 * as any OpenTelemetry collector, Grafana Tempo or Jaeger takes traces;
 * langfuse to {langfuse_host}/api/public/otel/v1/traces, Langfuse v4's
 * ingestion, with its Basic auth and ingestion-version header, and the
 * attributes Langfuse reads (langfuse.observation.*).
 *
 * A span follows the GenAI semantic conventions (gen_ai.operation.name,
 * gen_ai.provider.name and the older gen_ai.system, gen_ai.request.*,
 * gen_ai.response.*, gen_ai.usage.*), with error.type and an ERROR status
 * on failures.  Its span id, and its trace id unless the client sent a
 * traceparent (then the span is a child of the client's), are hashes of
 * the record id, so that a batch sent twice (a consumer killed between
 * the POST and removing its records) is recognisably the same spans.
 * With log_content = full the record's texts are the span's input and
 * output.  Headers come from otlp_headers_file, one "Name: value" a line
 * (an Authorization header is a secret).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/sha256.h"
#include "store/conf.h"
#include "store/record.h"
#include "sink_impl.h"

#define OTLP_HEADER_MAX		8192	/* one header line from the file */
#define LANGFUSE_KEY_MAX	512	/* a key, as Langfuse makes them */

enum span_kind_client { SPAN_KIND_CLIENT = 3 };	/* trace.proto SpanKind */
enum status_code { STATUS_UNSET = 0, STATUS_ERROR = 2 };

/* "Name: value" lines; blank lines and # comments are skipped. */
static int
read_headers(struct http_sink *s, const char *path, struct err *err)
{
	FILE		*f;
	char		 line[OTLP_HEADER_MAX];
	unsigned long	 n = 0;
	size_t		 len;
	int		 rc = 0;

	if ((f = fopen(path, "re")) == NULL) {
		err_set(err, "otlp_headers_file %s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		n++;
		len = strlen(line);
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			err_set(err, "%s:%lu: a header line over %d bytes",
			    path, n, OTLP_HEADER_MAX - 2);
			rc = -1;
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[strspn(line, " \t")] == '\0' ||
		    line[strspn(line, " \t")] == '#')
			continue;
		if (strchr(line, ':') == NULL || line[0] == ':' ||
		    strchr(line, ' ') < strchr(line, ':')) {
			err_set(err, "%s:%lu: not a header (Name: value)",
			    path, n);
			rc = -1;
		} else
			rc = http_sink_header(s, line, err);
	}
	if (rc == 0 && ferror(f)) {
		err_set(err, "otlp_headers_file %s: %s", path, strerror(errno));
		rc = -1;
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	return rc;
}

static int	build_otlp(const void *, const struct delivery *, size_t,
		    struct buf *);
static int	build_langfuse(const void *, const struct delivery *, size_t,
		    struct buf *);

/* An HTTP sink posting to "base" (its trailing slashes dropped) + "path". */
static struct http_sink *
open_at(const char *base, const char *path, const struct conf *c,
    int (*build)(const void *, const struct delivery *, size_t,
    struct buf *), struct err *err)
{
	struct http_sink	*s;
	char			*url;
	size_t			 n, plen = strlen(path);

	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if ((url = malloc(n + plen + 1)) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
	memcpy(url, base, n);
	memcpy(url + n, path, plen + 1);
	s = http_sink_new(url, c->otlp_timeout_ms, (size_t)c->otlp_batch,
	    build, c, err);
	free(url);
	return s;
}

static void *
otlp_open(const struct conf *c, struct err *err)
{
	struct http_sink	*s;

	s = open_at(c->otlp_endpoint, "/v1/traces", c, build_otlp, err);
	if (s != NULL && c->otlp_headers_file != NULL &&
	    read_headers(s, c->otlp_headers_file, err) == -1) {
		http_sink_close(s);
		return NULL;
	}
	return s;
}

/* The secret key: the first line of "path", without blanks around it. */
static int
read_secret(const char *path, char *key, size_t size, struct err *err)
{
	FILE	*f;
	size_t	 a, len;
	int	 rc = -1;

	if ((f = fopen(path, "re")) == NULL) {
		err_set(err, "langfuse_secret_key_file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fgets(key, (int)size, f) == NULL)
		err_set(err, "langfuse_secret_key_file %s: %s", path,
		    ferror(f) ? strerror(errno) : "empty");
	else {
		len = strcspn(key, "\r\n");
		if (key[len] == '\0' && !feof(f))
			err_set(err, "langfuse_secret_key_file %s: a first "
			    "line over %zu bytes", path, size - 2);
		else {
			while (len > 0 && strchr(" \t", key[len - 1]) != NULL)
				len--;
			key[len] = '\0';
			a = strspn(key, " \t");
			memmove(key, key + a, len - a + 1);
			if (key[0] == '\0')
				err_set(err, "langfuse_secret_key_file %s: "
				    "the first line is empty", path);
			else
				rc = 0;
		}
	}
	fclose(f);
	return rc;
}

/*
 * Langfuse's project keys as Basic auth, and the header that selects its
 * v4 ingestion (without it data may be delayed by minutes).
 */
static void *
langfuse_open(const struct conf *c, struct err *err)
{
	struct http_sink	*s;
	char			 secret[LANGFUSE_KEY_MAX + 2];
	char			 pair[2 * LANGFUSE_KEY_MAX + 2];
	char			 line[sizeof("Authorization: Basic ") +
				    BASE64_SIZE(sizeof(pair))];
	int			 n, rc = -1;

	if (read_secret(c->langfuse_secret_key_file, secret, sizeof(secret),
	    err) == -1)
		return NULL;
	n = snprintf(pair, sizeof(pair), "%s:%s", c->langfuse_public_key,
	    secret);
	if (n < 0 || (size_t)n >= sizeof(pair)) {
		err_set(err, "langfuse_public_key is over %d bytes",
		    LANGFUSE_KEY_MAX);
		goto done;
	}
	memcpy(line, "Authorization: Basic ", 21);
	base64_encode(pair, (size_t)n, line + 21, BASE64_STD);
	s = open_at(c->langfuse_host, "/api/public/otel/v1/traces", c,
	    build_langfuse, err);
	if (s == NULL)
		goto done;
	if (http_sink_header(s, line, err) == -1 ||
	    http_sink_header(s, "x-langfuse-ingestion-version: 4", err) ==
	    -1 || http_sink_header(s, "x-langfuse-sdk-name: llmgw", err) ==
	    -1 || http_sink_header(s, "x-langfuse-sdk-version: "
	    PACKAGE_VERSION, err) == -1)
		http_sink_close(s);
	else
		rc = 0;
done:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(pair, sizeof(pair));
	explicit_bzero(line, sizeof(line));
	return rc == 0 ? s : NULL;
}

/* Lower-case hex of the first "n" bytes of SHA-256(prefix, id). */
static void
derive_id(const char *prefix, const char *id, size_t n, char *hex)
{
	char	 text[32 + RECORD_ID_MAX + 1], full[2 * SHA256_LEN + 1];
	int	 len;

	len = snprintf(text, sizeof(text), "%s%s", prefix, id);
	sha256_hex(text, (size_t)len, full);
	memcpy(hex, full, 2 * n);
	hex[2 * n] = '\0';
}

/* The span's attributes, written one by one. */
struct attrs {
	struct buf	*b;
	int		 first;
	int		 bad;
};

static void
attr_key(struct attrs *a, const char *key)
{
	a->bad |= buf_adds(a->b, a->first ? "{\"key\":" : ",{\"key\":");
	a->bad |= json_add_cstr(a->b, key);
	a->first = 0;
}

/* A string attribute of "len" bytes; none if NULL or empty. */
static void
attr_text(struct attrs *a, const char *key, const char *v, size_t len)
{
	if (v == NULL || len == 0)
		return;
	attr_key(a, key);
	a->bad |= buf_adds(a->b, ",\"value\":{\"stringValue\":");
	a->bad |= json_add_str(a->b, v, len);
	a->bad |= buf_adds(a->b, "}}");
}

static void
attr_str(struct attrs *a, const char *key, const char *v)
{
	attr_text(a, key, v, v != NULL ? strlen(v) : 0);
}

/* int64 values are JSON strings in the protobuf JSON mapping. */
static void
attr_int(struct attrs *a, const char *key, long long v)
{
	attr_key(a, key);
	a->bad |= buf_addf(a->b, ",\"value\":{\"intValue\":\"%lld\"}}", v);
}

/* An array of one string. */
static void
attr_list1(struct attrs *a, const char *key, const char *v)
{
	if (*v == '\0')
		return;
	attr_key(a, key);
	a->bad |= buf_adds(a->b, ",\"value\":{\"arrayValue\":{\"values\":"
	    "[{\"stringValue\":");
	a->bad |= json_add_cstr(a->b, v);
	a->bad |= buf_adds(a->b, "}]}}}");
}

/* What went wrong, in few words (error.type), or NULL. */
static const char *
error_type(const struct record *r, char *tmp, size_t size)
{
	if (r->budget_exhausted)
		return "budget_exhausted";
	if (r->disconnected)
		return "client_disconnected";
	if (r->status >= 400) {
		snprintf(tmp, size, "%d", r->status);
		return tmp;
	}
	if (r->partial)
		return "incomplete";
	return NULL;
}

/* Whether the record has usage to tell: a reply, or tokens spent. */
static int
has_usage(const struct record *r)
{
	return r->upstream_status == 200 || r->input_tokens > 0 ||
	    r->output_tokens > 0;
}

/* The texts of a record made with log_content = full, or NULL. */
struct texts {
	cJSON		*root;
	const char	*prompt, *reply;
};

static void
texts_read(const struct delivery *d, struct texts *t)
{
	const cJSON	*p, *r;

	memset(t, 0, sizeof(*t));
	if (d->rec->prompt_bytes < 0 ||
	    (t->root = cJSON_ParseWithLength(d->json, d->len)) == NULL)
		return;
	p = cJSON_GetObjectItemCaseSensitive(t->root, "prompt");
	r = cJSON_GetObjectItemCaseSensitive(t->root, "reply");
	t->prompt = cJSON_IsString(p) ? p->valuestring : NULL;
	t->reply = cJSON_IsString(r) ? r->valuestring : NULL;
}

/* The routes whose record's prompt is the user's message text; on the
 * others it is the request body. */
static int
prompt_is_text(const struct record *r)
{
	return strcmp(r->route, "/chat") == 0 ||
	    strcmp(r->route, "/chat/stream") == 0;
}

/* A JSON value in an attribute: its text, built in "tmp". */
static void
attr_json(struct attrs *a, const char *key, struct buf *tmp)
{
	if (tmp->len > 0 && !a->bad)
		attr_text(a, key, tmp->data, tmp->len);
	buf_reset(tmp);
}

/*
 * The GenAI conventions' messages: gen_ai.input.messages where the prompt
 * is a message text, gen_ai.output.messages from the reply.
 */
static void
gen_ai_messages(struct attrs *a, const struct record *r,
    const struct texts *t, struct buf *tmp)
{
	int	 bad = 0;

	if (t->prompt != NULL && prompt_is_text(r)) {
		bad |= buf_adds(tmp, "[{\"role\":\"user\",\"parts\":[{\"type\":"
		    "\"text\",\"content\":");
		bad |= json_add_cstr(tmp, t->prompt);
		bad |= buf_adds(tmp, "}]}]");
		a->bad |= bad;
		attr_json(a, "gen_ai.input.messages", tmp);
	}
	if (t->reply != NULL) {
		bad |= buf_adds(tmp, "[{\"role\":\"assistant\",\"parts\":[{"
		    "\"type\":\"text\",\"content\":");
		bad |= json_add_cstr(tmp, t->reply);
		bad |= buf_adds(tmp, "}]");
		if (r->finish_reason[0] != '\0') {
			bad |= buf_adds(tmp, ",\"finish_reason\":");
			bad |= json_add_cstr(tmp, r->finish_reason);
		}
		bad |= buf_adds(tmp, "}]");
		a->bad |= bad;
		attr_json(a, "gen_ai.output.messages", tmp);
	}
}

/* What the usage cost in USD, by model_prices; nothing for a model it
 * has no prices for. */
static void
cost_details(struct attrs *a, const struct conf *c, const struct record *r,
    struct buf *tmp)
{
	struct model_price	 p;
	double			 in, out, cw, cr;

	if (conf_model_price(c, r->model, &p) == -1)
		return;
	in = (double)r->input_tokens * p.input / 1e6;
	out = (double)r->output_tokens * p.output / 1e6;
	cw = (double)r->cache_creation_input_tokens * p.cache_write / 1e6;
	cr = (double)r->cache_read_input_tokens * p.cache_read / 1e6;
	a->bad |= buf_addf(tmp, "{\"input\":%.9g,\"output\":%.9g,"
	    "\"cache_creation_input_tokens\":%.9g,"
	    "\"cache_read_input_tokens\":%.9g,\"total\":%.9g}", in, out, cw,
	    cr, in + out + cw + cr);
	attr_json(a, "langfuse.observation.cost_details", tmp);
}

/* What Langfuse v4 reads of a generation (its attribute list: Langfuse's
 * packages/shared/src/server/otel/attributes.ts). */
static void
langfuse_attrs(struct attrs *a, const struct conf *c, const struct record *r,
    const char *etype, const struct texts *t, struct buf *tmp)
{
	char	 when[80];
	int64_t	 first;
	int	 bad = 0;

	attr_str(a, "langfuse.observation.type", "generation");
	attr_str(a, "langfuse.observation.model.name", r->model);
	if (r->max_tokens > 0) {
		bad |= buf_addf(tmp, "{\"max_tokens\":%ld}", r->max_tokens);
		attr_json(a, "langfuse.observation.model.parameters", tmp);
	}
	if (has_usage(r)) {
		bad |= buf_addf(tmp, "{\"input\":%ld,\"output\":%ld,"
		    "\"cache_creation_input_tokens\":%ld,"
		    "\"cache_read_input_tokens\":%ld}", r->input_tokens,
		    r->output_tokens, r->cache_creation_input_tokens,
		    r->cache_read_input_tokens);
		attr_json(a, "langfuse.observation.usage_details", tmp);
		cost_details(a, c, r, tmp);
	}
	if (r->ttft_ms >= 0) {
		/* Within the span: the first token's time is monotonic, the
		 * span's ends are wall-clock, each cut to the millisecond. */
		first = r->ts_ms + r->ttft_ms;
		if (r->end_ms >= r->ts_ms && first > r->end_ms)
			first = r->end_ms;
		clock_iso8601(first, when, sizeof(when));
		attr_str(a, "langfuse.observation.completion_start_time",
		    when);
	}
	attr_str(a, "langfuse.observation.level", etype != NULL ? "ERROR" :
	    "DEFAULT");
	if (etype != NULL)
		attr_str(a, "langfuse.observation.status_message",
		    r->upstream_error[0] != '\0' ? r->upstream_error : etype);
	attr_str(a, "user.id", r->key);
	attr_str(a, "langfuse.environment", c->langfuse_environment);
	attr_str(a, "langfuse.observation.metadata.route", r->route);
	attr_str(a, "langfuse.observation.metadata.request_id",
	    r->request_id);
	attr_str(a, "langfuse.observation.metadata.upstream_request_id",
	    r->upstream_request_id);
	if (t->prompt != NULL) {
		/* A message text as a JSON string; a body is JSON already. */
		if (prompt_is_text(r))
			bad |= json_add_cstr(tmp, t->prompt);
		else
			bad |= buf_adds(tmp, t->prompt);
		attr_json(a, "langfuse.observation.input", tmp);
	}
	if (t->reply != NULL) {
		bad |= json_add_cstr(tmp, t->reply);
		attr_json(a, "langfuse.observation.output", tmp);
	}
	a->bad |= bad;
}

static int
add_span(struct buf *b, const struct delivery *d, const struct conf *c,
    int langfuse)
{
	const struct record	*r = d->rec;
	struct attrs		 a = { b, 1, 0 };
	struct texts		 t;
	struct buf		 tmp;
	char			 trace[33], span[17], status[16];
	const char		*etype;

	buf_init(&tmp, 0);
	texts_read(d, &t);
	if (r->trace_id[0] != '\0')
		memcpy(trace, r->trace_id, sizeof(trace));
	else
		derive_id("llmgw trace ", r->id, 16, trace);
	derive_id("llmgw span ", r->id, 8, span);
	etype = error_type(r, status, sizeof(status));
	a.bad |= buf_addf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\",", trace,
	    span);
	if (r->parent_span_id[0] != '\0')
		a.bad |= buf_addf(b, "\"parentSpanId\":\"%s\",",
		    r->parent_span_id);
	a.bad |= buf_adds(b, "\"name\":");
	if (r->model[0] != '\0')
		a.bad |= buf_addf(b, "\"chat %s\"", r->model);
	else
		a.bad |= buf_adds(b, "\"chat\"");
	a.bad |= buf_addf(b, ",\"kind\":%d,\"startTimeUnixNano\":"
	    "\"%lld000000\",\"endTimeUnixNano\":\"%lld000000\","
	    "\"attributes\":[", SPAN_KIND_CLIENT, (long long)r->ts_ms,
	    (long long)(r->end_ms >= r->ts_ms ? r->end_ms : r->ts_ms));
	attr_str(&a, "gen_ai.operation.name", "chat");
	attr_str(&a, "gen_ai.provider.name", "anthropic");
	attr_str(&a, "gen_ai.system", "anthropic");
	attr_str(&a, "gen_ai.request.model", r->model);
	if (r->max_tokens > 0)
		attr_int(&a, "gen_ai.request.max_tokens", r->max_tokens);
	attr_str(&a, "gen_ai.response.id", r->response_id);
	attr_list1(&a, "gen_ai.response.finish_reasons", r->finish_reason);
	if (has_usage(r)) {
		attr_int(&a, "gen_ai.usage.input_tokens", r->input_tokens +
		    r->cache_creation_input_tokens +
		    r->cache_read_input_tokens);
		attr_int(&a, "gen_ai.usage.output_tokens", r->output_tokens);
		attr_int(&a, "gen_ai.usage.cache_creation.input_tokens",
		    r->cache_creation_input_tokens);
		attr_int(&a, "gen_ai.usage.cache_read.input_tokens",
		    r->cache_read_input_tokens);
	}
	attr_int(&a, "http.response.status_code", r->status);
	attr_str(&a, "error.type", etype);
	attr_str(&a, "llmgw.request_id", r->request_id);
	attr_str(&a, "llmgw.route", r->route);
	attr_str(&a, "llmgw.key", r->key);
	attr_str(&a, "llmgw.upstream_request_id", r->upstream_request_id);
	if (r->ttft_ms >= 0)
		attr_int(&a, "llmgw.ttft_ms", r->ttft_ms);
	attr_int(&a, "llmgw.retries", r->retries);
	if (r->prompt_bytes >= 0)
		attr_int(&a, "llmgw.prompt_bytes", r->prompt_bytes);
	if (r->reply_bytes >= 0)
		attr_int(&a, "llmgw.reply_bytes", r->reply_bytes);
	if (langfuse)
		langfuse_attrs(&a, c, r, etype, &t, &tmp);
	else
		gen_ai_messages(&a, r, &t, &tmp);
	a.bad |= buf_adds(b, "],\"status\":{");
	if (etype != NULL) {
		a.bad |= buf_addf(b, "\"code\":%d,\"message\":", STATUS_ERROR);
		a.bad |= json_add_cstr(b, r->upstream_error[0] != '\0' ?
		    r->upstream_error : etype);
	} else
		a.bad |= buf_addf(b, "\"code\":%d", STATUS_UNSET);
	a.bad |= buf_adds(b, "}}");
	cJSON_Delete(t.root);
	buf_free(&tmp);
	return a.bad;
}

static int
build(const struct conf *c, const struct delivery *d, size_t n,
    struct buf *b, int langfuse)
{
	size_t	 i;
	int	 bad = 0;

	bad |= buf_adds(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":"
	    "[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"llmgw\"}},"
	    "{\"key\":\"service.version\",\"value\":{\"stringValue\":\""
	    PACKAGE_VERSION "\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
	    "\"llmgw\",\"version\":\"" PACKAGE_VERSION "\"},\"spans\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			bad |= buf_addc(b, ',');
		bad |= add_span(b, &d[i], c, langfuse);
	}
	bad |= buf_adds(b, "]}]}]}");
	return bad ? -1 : 0;
}

static int
build_otlp(const void *c, const struct delivery *d, size_t n, struct buf *b)
{
	return build(c, d, n, b, 0);
}

static int
build_langfuse(const void *c, const struct delivery *d, size_t n,
    struct buf *b)
{
	return build(c, d, n, b, 1);
}

const struct sink_ops sink_otlp_ops = {
	"otlp", otlp_open, http_sink_close, http_sink_deliver,
	http_sink_refusal
};

const struct sink_ops sink_langfuse_ops = {
	"langfuse", langfuse_open, http_sink_close, http_sink_deliver,
	http_sink_refusal
};
