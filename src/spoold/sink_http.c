/*
 * What the HTTP sinks (webhook, otlp) share: a connection, headers, and
 * delivery in batches of at most so many records, each one POST whose
 * answer counts by its status alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/record.h"
#include "sink_impl.h"

struct http_sink *
http_sink_new(const char *url, long timeout_ms, size_t batch,
    int (*build)(const void *, const struct delivery *, size_t, struct buf *),
    const void *build_arg, struct err *err)
{
	struct http_sink	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->url = strdup(url)) == NULL ||
	    (s->curl = curl_easy_init()) == NULL) {
		err_set(err, "out of memory");
		http_sink_close(s);
		return NULL;
	}
	s->timeout_ms = timeout_ms;
	s->batch = batch;
	s->build = build;
	s->build_arg = build_arg;
	if (http_sink_header(s, "Content-Type: application/json", err) == -1 ||
	    http_sink_header(s, "Expect:", err) == -1) {
		http_sink_close(s);
		return NULL;
	}
	return s;
}

int
http_sink_header(struct http_sink *s, const char *line, struct err *err)
{
	struct curl_slist	*t;

	if ((t = curl_slist_append(s->headers, line)) == NULL) {
		err_set(err, "out of memory");
		return -1;
	}
	s->headers = t;
	return 0;
}

void
http_sink_close(void *arg)
{
	struct http_sink	*s = arg;

	if (s == NULL)
		return;
	curl_easy_cleanup(s->curl);
	curl_slist_free_all(s->headers);
	free(s->url);
	free(s);
}

/* The receiver's answer is not read: only its status counts. */
static size_t
ignore(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* POST records d[0..n): their HTTP status, or 0 (err set) if none came. */
static long
post(struct http_sink *s, const struct delivery *d, size_t n,
    struct err *err)
{
	char		 errbuf[CURL_ERROR_SIZE];
	struct buf	 b;
	CURLcode	 rc;
	long		 status = 0;
	CURL		*h = s->curl;

	buf_init(&b, 0);
	if (s->build(s->build_arg, d, n, &b) == -1) {
		err_set(err, "out of memory");
		buf_free(&b);
		return 0;
	}
	errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, b.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ignore);
	rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	buf_free(&b);
	if (rc != CURLE_OK) {
		err_set(err, "POST %s: %s", s->url, errbuf[0] != '\0' ?
		    errbuf : curl_easy_strerror(rc));
		return 0;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299)
		err_set(err, "POST %s: HTTP %ld", s->url, status);
	return status;
}

/* The receiver says the request itself is at fault. */
static int
invalid(long status)
{
	return status == 400 || status == 413 || status == 422;
}

/*
 * Batches of at most s->batch records.  A batch refused as invalid is
 * halved until the record at fault is alone, so that the records around
 * it are not refused with it; after a batch goes through, full size
 * again.
 */
size_t
http_sink_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	struct http_sink	*s = arg;
	size_t			 done = 0, k, size = s->batch;
	long			 status;

	s->refusal = SINK_FAILED;
	while (done < n) {
		k = n - done < size ? n - done : size;
		status = post(s, d + done, k, err);
		if (status >= 200 && status <= 299) {
			done += k;
			size = s->batch;
			continue;
		}
		if (invalid(status) && k > 1) {
			size = k / 2;
			continue;
		}
		if (invalid(status)) {
			s->refusal = SINK_INVALID;
			err_prefix(err, "record %s refused as invalid, not "
			    "sent again", d[done].rec->id);
		} else if (status == 401 || status == 403) {
			s->refusal = SINK_DENIED;
			err_prefix(err, "credentials refused; records kept "
			    "until they are mended");
		}
		break;
	}
	return done;
}

enum sink_refusal
http_sink_refusal(void *arg)
{
	const struct http_sink	*s = arg;

	return s->refusal;
}
