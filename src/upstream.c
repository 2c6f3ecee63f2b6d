#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "conf.h"
#include "err.h"
#include "upstream.h"
#include "str.h"

struct upstream {
	CURL	*curl;
	char	 errbuf[CURL_ERROR_SIZE];
};

/* What one call needs inside libcurl's callbacks. */
struct call {
	const struct conf		*conf;
	const struct upstream_sink	*sink;
	struct upstream_result		*res;
	long long			 t_start;	/* ms, monotonic */
	long long			 t_last;	/* last bytes received */
	int				 got_status;
	int				 stopped;	/* by the sink */
	const char			*timed_out;	/* which timeout */
};

static long long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct upstream *
upstream_new(struct err *err)
{
	struct upstream	*u;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(err, "upstream: out of memory");
		return NULL;
	}
	if ((u->curl = curl_easy_init()) == NULL) {
		err_set(err, "upstream: curl_easy_init failed");
		free(u);
		return NULL;
	}
	return u;
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	curl_easy_cleanup(u->curl);
	free(u);
}

void
upstream_result_init(struct upstream_result *r)
{
	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	buf_init(&r->ratelimit, 4096);
	buf_init(&r->errbody, UPSTREAM_ERRBODY_MAX);
}

void
upstream_result_free(struct upstream_result *r)
{
	buf_free(&r->ratelimit);
	buf_free(&r->errbody);
}

static void
result_clear(struct upstream_result *r)
{
	r->outcome = UP_EOTHER;
	r->status = 0;
	r->retry_after_ms = -1;
	r->request_id[0] = '\0';
	r->detail[0] = '\0';
	buf_reset(&r->ratelimit);
	buf_reset(&r->errbody);
}

/* Copy a header value without surrounding space; drop CR/LF and controls. */
static void
header_value(char *dst, size_t size, const char *v, size_t n)
{
	size_t	 i, j = 0;

	while (n > 0 && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		n--;
	for (i = 0; i < n && j + 1 < size; i++)
		if ((unsigned char)v[i] >= 0x20 && v[i] != 0x7f)
			dst[j++] = v[i];
	dst[j] = '\0';
}

/* "HTTP/1.1 200 OK" or "HTTP/2 200": the status, or 0. */
static long
status_of(const char *p, size_t len)
{
	const char	*sp;
	long		 st = 0;
	size_t		 i;

	if ((sp = memchr(p, ' ', len)) == NULL)
		return 0;
	for (i = (size_t)(sp - p) + 1; i < len && isdigit((unsigned char)p[i]);
	    i++)
		st = st * 10 + (p[i] - '0');
	return st >= 100 && st <= 999 ? st : 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct call		*c = arg;
	struct upstream_result	*r = c->res;
	size_t			 len = size * n, nlen, i;
	const char		*colon;
	char			 value[256], *end;
	long			 secs;

	c->t_last = now_ms();
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response head (after a 100, say) replaces the old. */
		result_clear(r);
		r->status = status_of(p, len);
		c->got_status = 1;
		return len;
	}
	if ((colon = memchr(p, ':', len)) == NULL)
		return len;
	nlen = (size_t)(colon - p);
	header_value(value, sizeof(value), colon + 1, len - nlen - 1);
	if (nlen == 10 && strncasecmp(p, "request-id", nlen) == 0)
		str_copy(r->request_id, sizeof(r->request_id), value);
	else if (nlen == 11 && strncasecmp(p, "retry-after", nlen) == 0) {
		secs = strtol(value, &end, 10);
		if (end != value && *end == '\0' && secs >= 0 &&
		    secs < 86400)
			r->retry_after_ms = secs * 1000;
	} else if (nlen > 20 && nlen < 64 &&
	    strncasecmp(p, "anthropic-ratelimit-", 20) == 0) {
		/* Passed on to the client as they are, names lower case. */
		for (i = 0; i < nlen; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-')
				return len;
		for (i = 0; i < nlen; i++)
			buf_addc(&r->ratelimit,
			    (char)tolower((unsigned char)p[i]));
		buf_addf(&r->ratelimit, ": %s\r\n", value);
	}
	return len;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct call		*c = arg;
	struct upstream_result	*r = c->res;
	size_t			 len = size * n;

	c->t_last = now_ms();
	if (r->status >= 200 && r->status <= 299) {
		if (c->sink->on_data(c->sink->arg, p, len) == -1) {
			c->stopped = 1;
			return 0;	/* makes libcurl stop: CURLE_WRITE_ERROR */
		}
		return len;
	}
	/* An error body: keep the start, which says what went wrong. */
	if (r->errbody.len < UPSTREAM_ERRBODY_MAX)
		buf_add(&r->errbody, p, len < UPSTREAM_ERRBODY_MAX -
		    r->errbody.len ? len : UPSTREAM_ERRBODY_MAX -
		    r->errbody.len);
	return len;
}

/* Runs about once a second while idle, and as data flows. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct call	*c = arg;
	long long	 now = now_ms();

	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	if (!c->got_status &&
	    now - c->t_start > c->conf->first_byte_timeout_ms) {
		c->timed_out = "first_byte_timeout";
		return 1;
	}
	if (c->got_status && now - c->t_last > c->conf->idle_timeout_ms) {
		c->timed_out = "idle_timeout";
		return 1;
	}
	if (c->sink->on_tick != NULL && c->sink->on_tick(c->sink->arg) == -1) {
		c->stopped = 1;
		return 1;
	}
	return 0;
}

static struct curl_slist *
make_headers(const struct conf *conf, int stream)
{
	struct curl_slist	*h = NULL, *t;
	char			 line[1024];
	int			 n;

	/* No "Expect: 100-continue" round trip before large bodies. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto fail;
	h = t;
	if ((t = curl_slist_append(h, "Content-Type: application/json")) ==
	    NULL)
		goto fail;
	h = t;
	if ((t = curl_slist_append(h, stream ? "Accept: text/event-stream" :
	    "Accept: application/json")) == NULL)
		goto fail;
	h = t;
	n = snprintf(line, sizeof(line), "anthropic-version: %s",
	    conf->anthropic_version);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    (t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	if (conf->api_key != NULL) {
		n = snprintf(line, sizeof(line), "x-api-key: %s",
		    conf->api_key);
		if (n < 0 || (size_t)n >= sizeof(line) ||
		    (t = curl_slist_append(h, line)) == NULL)
			goto fail;
		h = t;
		explicit_bzero(line, sizeof(line));
	}
	return h;
fail:
	explicit_bzero(line, sizeof(line));
	curl_slist_free_all(h);
	return NULL;
}

static enum upstream_outcome
outcome_of(CURLcode rc, const struct call *c)
{
	switch (rc) {
	case CURLE_OK:
		return UP_DONE;
	case CURLE_WRITE_ERROR:
		return c->stopped ? UP_EABORTED : UP_EOTHER;
	case CURLE_ABORTED_BY_CALLBACK:
		return c->timed_out != NULL ? UP_ETIMEOUT : UP_EABORTED;
	case CURLE_OPERATION_TIMEDOUT:
		return UP_ETIMEOUT;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		return UP_ECONNECT;
	case CURLE_GOT_NOTHING:
		return c->got_status ? UP_ECUT : UP_ECONNECT;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return c->got_status ? UP_ECUT : UP_ECONNECT;
	default:
		return c->got_status ? UP_ECUT : UP_EOTHER;
	}
}

int
upstream_post(struct upstream *u, const struct conf *conf, const char *body,
    size_t len, int stream, const struct upstream_sink *sink,
    struct upstream_result *res)
{
	struct curl_slist	*headers;
	struct call		 c;
	char			 url[2048];
	CURLcode		 rc;
	CURL			*h = u->curl;
	int			 n;

	result_clear(res);
	memset(&c, 0, sizeof(c));
	c.conf = conf;
	c.sink = sink;
	c.res = res;
	c.t_start = c.t_last = now_ms();

	n = snprintf(url, sizeof(url), "%s%sv1/messages", conf->upstream_url,
	    conf->upstream_url[strlen(conf->upstream_url) - 1] == '/' ?
	    "" : "/");
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(res->detail, sizeof(res->detail),
		    "upstream_url is too long");
		return -1;
	}
	if ((headers = make_headers(conf, stream)) == NULL) {
		snprintf(res->detail, sizeof(res->detail),
		    "out of memory building request headers");
		return -1;
	}
	u->errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, u->errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conf->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, conf->total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

	rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);

	res->outcome = outcome_of(rc, &c);
	if (res->outcome == UP_DONE)
		return 0;
	if (res->outcome == UP_ETIMEOUT)
		snprintf(res->detail, sizeof(res->detail), "%s after %lld ms",
		    c.timed_out != NULL ? c.timed_out :
		    c.got_status ? "total_timeout" : "connect_timeout",
		    now_ms() - c.t_start);
	else if (res->outcome == UP_EABORTED)
		snprintf(res->detail, sizeof(res->detail), "stopped by llmgw");
	else
		str_copy(res->detail, sizeof(res->detail), u->errbuf[0] !=
		    '\0' ? u->errbuf : curl_easy_strerror(rc));
	return -1;
}
