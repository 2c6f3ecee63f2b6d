/*
 * The otlp sink: each record as one span, exported with OTLP/HTTP in its
 * JSON encoding to {otlp_endpoint}/v1/traces, as any OpenTelemetry
 * collector, Grafana Tempo, Jaeger or Langfuse v4 takes traces.
 *
 * A span follows the GenAI semantic conventions (gen_ai.operation.name,
 * gen_ai.provider.name and the older gen_ai.system, gen_ai.request.model,
 * gen_ai.usage.*), with error.type and an ERROR status on failures.  Its
 * trace and span ids are hashes of the record id, so that a batch sent
 * twice (a consumer killed between the POST and removing its records) is
 * recognisably the same spans.  Headers come from otlp_headers_file, one
 * "Name: value" a line (an Authorization header is a secret).  Any 2xx
 * means the batch was taken; anything else is retried by the courier, and
 * after spool_attempts the records go to failed/.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/sha256.h"
#include "store/conf.h"
#include "store/record.h"
#include "sink_impl.h"

#define OTLP_HEADER_MAX		8192	/* one header line from the file */

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
	return rc;
}

static int	build(const struct delivery *, size_t, struct buf *);

static void *
otlp_open(const struct conf *c, struct err *err)
{
	struct http_sink	*s;
	char			*url;
	size_t			 n;

	n = strlen(c->otlp_endpoint);
	while (n > 0 && c->otlp_endpoint[n - 1] == '/')
		n--;
	if ((url = malloc(n + sizeof("/v1/traces"))) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
	memcpy(url, c->otlp_endpoint, n);
	memcpy(url + n, "/v1/traces", sizeof("/v1/traces"));
	s = http_sink_new(url, c->otlp_timeout_ms, (size_t)c->otlp_batch,
	    build, err);
	free(url);
	if (s != NULL && c->otlp_headers_file != NULL &&
	    read_headers(s, c->otlp_headers_file, err) == -1) {
		http_sink_close(s);
		return NULL;
	}
	return s;
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

static int
attr_str(struct buf *b, int *first, const char *key, const char *v)
{
	int	 bad = 0;

	if (v == NULL || *v == '\0')
		return 0;
	bad |= buf_adds(b, *first ? "{\"key\":" : ",{\"key\":");
	bad |= json_add_cstr(b, key);
	bad |= buf_adds(b, ",\"value\":{\"stringValue\":");
	bad |= json_add_cstr(b, v);
	bad |= buf_adds(b, "}}");
	*first = 0;
	return bad;
}

/* int64 values are JSON strings in the protobuf JSON mapping. */
static int
attr_int(struct buf *b, int *first, const char *key, long long v)
{
	int	 bad = 0;

	bad |= buf_adds(b, *first ? "{\"key\":" : ",{\"key\":");
	bad |= json_add_cstr(b, key);
	bad |= buf_addf(b, ",\"value\":{\"intValue\":\"%lld\"}}", v);
	*first = 0;
	return bad;
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

static int
add_span(struct buf *b, const struct record *r)
{
	char		 trace[33], span[17], status[16];
	const char	*etype;
	int		 bad = 0, first = 1;

	derive_id("llmgw trace ", r->id, 16, trace);
	derive_id("llmgw span ", r->id, 8, span);
	etype = error_type(r, status, sizeof(status));
	bad |= buf_addf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"name\":",
	    trace, span);
	if (r->model[0] != '\0')
		bad |= buf_addf(b, "\"chat %s\"", r->model);
	else
		bad |= buf_adds(b, "\"chat\"");
	bad |= buf_addf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld000000\","
	    "\"endTimeUnixNano\":\"%lld000000\",\"attributes\":[",
	    SPAN_KIND_CLIENT, (long long)r->ts_ms,
	    (long long)(r->end_ms >= r->ts_ms ? r->end_ms : r->ts_ms));
	bad |= attr_str(b, &first, "gen_ai.operation.name", "chat");
	bad |= attr_str(b, &first, "gen_ai.provider.name", "anthropic");
	bad |= attr_str(b, &first, "gen_ai.system", "anthropic");
	bad |= attr_str(b, &first, "gen_ai.request.model", r->model);
	if (r->upstream_status == 200 || r->input_tokens > 0 ||
	    r->output_tokens > 0) {
		bad |= attr_int(b, &first, "gen_ai.usage.input_tokens",
		    r->input_tokens + r->cache_creation_input_tokens +
		    r->cache_read_input_tokens);
		bad |= attr_int(b, &first, "gen_ai.usage.output_tokens",
		    r->output_tokens);
		bad |= attr_int(b, &first,
		    "gen_ai.usage.cache_creation.input_tokens",
		    r->cache_creation_input_tokens);
		bad |= attr_int(b, &first,
		    "gen_ai.usage.cache_read.input_tokens",
		    r->cache_read_input_tokens);
	}
	bad |= attr_int(b, &first, "http.response.status_code", r->status);
	bad |= attr_str(b, &first, "error.type", etype);
	bad |= attr_str(b, &first, "llmgw.request_id", r->request_id);
	bad |= attr_str(b, &first, "llmgw.route", r->route);
	bad |= attr_str(b, &first, "llmgw.key", r->key);
	bad |= attr_str(b, &first, "llmgw.upstream_request_id",
	    r->upstream_request_id);
	if (r->ttft_ms >= 0)
		bad |= attr_int(b, &first, "llmgw.ttft_ms", r->ttft_ms);
	bad |= attr_int(b, &first, "llmgw.retries", r->retries);
	bad |= buf_adds(b, "],\"status\":{");
	if (etype != NULL) {
		bad |= buf_addf(b, "\"code\":%d,\"message\":", STATUS_ERROR);
		bad |= json_add_cstr(b, r->upstream_error[0] != '\0' ?
		    r->upstream_error : etype);
	} else
		bad |= buf_addf(b, "\"code\":%d", STATUS_UNSET);
	bad |= buf_adds(b, "}}");
	return bad;
}

static int
build(const struct delivery *d, size_t n, struct buf *b)
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
		bad |= add_span(b, d[i].rec);
	}
	bad |= buf_adds(b, "]}]}]}");
	return bad ? -1 : 0;
}

const struct sink_ops sink_otlp_ops = {
	"otlp", otlp_open, http_sink_close, http_sink_deliver
};
