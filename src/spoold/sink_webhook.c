/*
 * The webhook sink: records POSTed in batches, in llmgw's own format (an
 * envelope like an ingestion API's, but no service's schema):
 *   {"batch": [{"id": <record id>, "type": "llmgw-request",
 *               "timestamp": <ISO time>, "body": <record>}, ...]}
 * The record id doubles as an idempotency key for receivers, since a
 * consumer that dies after a POST and before removing its records sends
 * them again.  Any 2xx answer means the whole batch was delivered.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "store/conf.h"
#include "store/record.h"
#include "sink_impl.h"

struct webhook_sink {
	CURL			*curl;
	struct curl_slist	*headers;
	char			*url;
	long			 timeout_ms;
	size_t			 batch;
	char			 errbuf[CURL_ERROR_SIZE];
};

static void
webhook_close(void *arg)
{
	struct webhook_sink	*s = arg;

	if (s == NULL)
		return;
	curl_easy_cleanup(s->curl);
	curl_slist_free_all(s->headers);
	free(s->url);
	free(s);
}

static void *
webhook_open(const struct conf *c, struct err *err)
{
	struct webhook_sink	*s;
	struct curl_slist	*t;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->url = strdup(c->webhook_url)) == NULL) {
		free(s);
		err_set(err, "out of memory");
		return NULL;
	}
	s->timeout_ms = c->webhook_timeout_ms;
	s->batch = (size_t)c->webhook_batch;
	if ((s->curl = curl_easy_init()) == NULL ||
	    (t = curl_slist_append(NULL, "Content-Type: application/json")) ==
	    NULL) {
		err_set(err, "out of memory");
		goto fail;
	}
	s->headers = t;
	if ((t = curl_slist_append(s->headers, "Expect:")) == NULL)
		goto nomem;
	s->headers = t;
	if (c->webhook_header != NULL) {
		if (strchr(c->webhook_header, ':') == NULL) {
			err_set(err, "webhook_header must be \"Name: value\"");
			goto fail;
		}
		if ((t = curl_slist_append(s->headers, c->webhook_header)) ==
		    NULL)
			goto nomem;
		s->headers = t;
	}
	return s;
nomem:
	err_set(err, "out of memory");
fail:
	webhook_close(s);
	return NULL;
}

static int
build(const struct delivery *d, size_t n, struct buf *b)
{
	char		 when[32];
	struct tm	 tm;
	time_t		 t;
	size_t		 i;
	int		 bad = 0;

	bad |= buf_adds(b, "{\"batch\":[");
	for (i = 0; i < n; i++) {
		t = (time_t)(d[i].rec->ts_ms / 1000);
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		bad |= buf_adds(b, i == 0 ? "{\"id\":" : ",{\"id\":");
		bad |= json_add_cstr(b, d[i].rec->id);
		bad |= buf_addf(b, ",\"type\":\"llmgw-request\","
		    "\"timestamp\":\"%s.%03dZ\",\"body\":", when,
		    (int)(d[i].rec->ts_ms % 1000));
		bad |= buf_add(b, d[i].json, d[i].len);
		bad |= buf_addc(b, '}');
	}
	bad |= buf_adds(b, "]}");
	return bad ? -1 : 0;
}

/* Discard the receiver's answer; only its status counts. */
static size_t
ignore(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
post(struct webhook_sink *s, const struct delivery *d, size_t n,
    struct err *err)
{
	struct buf	 b;
	CURLcode	 rc;
	long		 status = 0;
	CURL		*h = s->curl;

	buf_init(&b, 0);
	if (build(d, n, &b) == -1) {
		err_set(err, "out of memory");
		buf_free(&b);
		return -1;
	}
	s->errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, b.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ignore);
	rc = curl_easy_perform(h);
	buf_free(&b);
	if (rc != CURLE_OK) {
		err_set(err, "POST %s: %s", s->url, s->errbuf[0] != '\0' ?
		    s->errbuf : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		err_set(err, "POST %s: HTTP %ld", s->url, status);
		return -1;
	}
	return 0;
}

static size_t
webhook_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	struct webhook_sink	*s = arg;
	size_t			 done = 0, k;

	while (done < n) {
		k = n - done < s->batch ? n - done : s->batch;
		if (post(s, d + done, k, err) == -1)
			break;
		done += k;
	}
	return done;
}

const struct sink_ops sink_webhook_ops = {
	"webhook", webhook_open, webhook_close, webhook_deliver
};
