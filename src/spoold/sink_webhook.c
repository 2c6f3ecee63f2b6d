/*
 * The webhook sink: records POSTed in batches, in llmgw's own format (an
 * envelope like an ingestion API's, but no service's schema):
 *   {"batch": [{"id": <record id>, "type": "llmgw-request",
 *               "timestamp": <ISO time>, "body": <record>}, ...]}
 * The record id doubles as an idempotency key for receivers, since a
 * consumer that dies after a POST and before removing its records sends
 * them again.  Any 2xx answer means the whole batch was delivered; what
 * a refusal means, sink_impl.h says.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "store/conf.h"
#include "store/record.h"
#include "sink_impl.h"

static int	build(const void *, const struct delivery *, size_t,
		    struct buf *);

static void *
webhook_open(const struct conf *c, struct err *err)
{
	struct http_sink	*s;

	if ((s = http_sink_new(c->webhook_url, c->webhook_timeout_ms,
	    (size_t)c->webhook_batch, build, NULL, err)) == NULL)
		return NULL;
	if (c->webhook_header != NULL) {
		if (strchr(c->webhook_header, ':') == NULL) {
			err_set(err, "webhook_header must be \"Name: value\"");
			http_sink_close(s);
			return NULL;
		}
		if (http_sink_header(s, c->webhook_header, err) == -1) {
			http_sink_close(s);
			return NULL;
		}
	}
	return s;
}

static int
build(const void *unused, const struct delivery *d, size_t n, struct buf *b)
{
	char		 when[80];
	size_t		 i;
	int		 bad = 0;

	(void)unused;
	bad |= buf_adds(b, "{\"batch\":[");
	for (i = 0; i < n; i++) {
		clock_iso8601(d[i].rec->ts_ms, when, sizeof(when));
		bad |= buf_adds(b, i == 0 ? "{\"id\":" : ",{\"id\":");
		bad |= json_add_cstr(b, d[i].rec->id);
		bad |= buf_addf(b, ",\"type\":\"llmgw-request\","
		    "\"timestamp\":\"%s\",\"body\":", when);
		bad |= buf_add(b, d[i].json, d[i].len);
		bad |= buf_addc(b, '}');
	}
	bad |= buf_adds(b, "]}");
	return bad ? -1 : 0;
}

const struct sink_ops sink_webhook_ops = {
	"webhook", webhook_open, http_sink_close, http_sink_deliver,
	http_sink_refusal
};
