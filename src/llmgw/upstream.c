/*
 * The workers' half of upstream.h: a worker's handle, and a call made
 * and waited for.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/conf.h"
#include "upstream.h"
#include "upstream_impl.h"

struct upstream *
upstream_new(struct upstream_loop *loop, struct err *err)
{
	struct upstream	*u;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(err, "upstream: out of memory");
		return NULL;
	}
	u->loop = loop;
	buf_init(&u->inbox, 0);
	buf_init(&u->take, 0);
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
	curl_slist_free_all(u->headers[0]);
	curl_slist_free_all(u->headers[1]);
	buf_free(&u->inbox);
	buf_free(&u->take);
	free(u);
}

void
upstream_result_init(struct upstream_result *r)
{
	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	buf_init(&r->ratelimit, UPSTREAM_RATELIMIT_MAX);
	buf_init(&r->errbody, UPSTREAM_ERRBODY_MAX);
}

void
upstream_result_free(struct upstream_result *r)
{
	buf_free(&r->ratelimit);
	buf_free(&r->errbody);
}

/* Worker thread: ask the loop to abort or resume "c". */
static void
kick(struct call *c, int abort_it)
{
	struct upstream_loop	*l = c->loop;
	int			 wake;

	if (abort_it) {
		pthread_mutex_lock(&c->lock);
		c->stopped = 1;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&l->lock);
	if (c->finished) {
		/* Over already; it may be done before we saw it. */
		pthread_mutex_unlock(&l->lock);
		return;
	}
	if (abort_it)
		c->want_abort = 1;
	else
		c->want_resume = 1;
	if (!c->kicked) {
		c->kicked = 1;
		c->knext = l->kicks;
		l->kicks = c;
	}
	wake = upstream_loop_wake_due_locked(l);
	pthread_mutex_unlock(&l->lock);
	if (wake)
		upstream_loop_wake(l);
}

static struct curl_slist *
make_headers(const struct conf *conf, int stream, const char *ver,
    const char *beta)
{
	struct curl_slist	*h = NULL, *t;
	char			 version[160], betas[512], key[512];
	const char		*lines[7];
	size_t			 i, n = 0;

	/* No "Expect: 100-continue" round trip before large bodies. */
	lines[n++] = "Expect:";
	lines[n++] = "Content-Type: application/json";
	lines[n++] = stream ? "Accept: text/event-stream" :
	    "Accept: application/json";
	if (snprintf(version, sizeof(version), "anthropic-version: %s",
	    ver != NULL ? ver : conf->anthropic_version) >= (int)sizeof(version))
		return NULL;
	lines[n++] = version;
	if (beta != NULL) {
		if (snprintf(betas, sizeof(betas), "anthropic-beta: %s", beta) >=
		    (int)sizeof(betas))
			return NULL;
		lines[n++] = betas;
	}
	if (conf->api_key != NULL) {
		if (snprintf(key, sizeof(key), "x-api-key: %s",
		    conf->api_key) >= (int)sizeof(key))
			goto fail;
		lines[n++] = key;
	}
	for (i = 0; i < n; i++) {
		if ((t = curl_slist_append(h, lines[i])) == NULL)
			goto fail;
		h = t;
	}
	explicit_bzero(key, sizeof(key));
	return h;
fail:
	explicit_bzero(key, sizeof(key));
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
	case CURLE_ABORTED_BY_CALLBACK:
		return c->stopped || c->shut ? UP_EABORTED : UP_EOTHER;
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

/*
 * Worker thread, with the call's lock held: sleep until the loop wakes us
 * or "until".  A wake-up the loop has promised (it cleared "sleeping") is
 * taken even after a time-out: it must not end a later sleep, nor come
 * once the call is gone.
 */
static void
sleep_on(struct call *c, const struct timespec *until)
{
	int	 rc;

	c->sleeping = 1;
	pthread_mutex_unlock(&c->lock);
	while ((rc = sem_timedwait(&c->wake, until)) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&c->lock);
	if (c->sleeping)
		c->sleeping = 0;
	else if (rc == -1) {
		pthread_mutex_unlock(&c->lock);
		while (sem_wait(&c->wake) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&c->lock);
	}
}

/*
 * Worker thread: wait for the transfer, feeding the sink as bytes come,
 * through "take".  Returns when the loop has finished the call.
 */
static void
wait_for(struct call *c, const struct upstream_sink *sink, struct buf *take)
{
	struct timespec	 until;
	long long	 next_tick = clock_mono_ms() + TICK_MS;
	int		 done, paused, asked_stop = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while ((c->inbox.len == 0 && !c->done &&
		    clock_mono_ms() < next_tick) || c->relaying) {
			/* The loop relays: it wakes us once it is through. */
			c->want_sink = c->relaying;
			until = clock_after_ms(CLOCK_REALTIME, TICK_MS);
			sleep_on(c, &until);
		}
		c->want_sink = 0;
		/* Swap buffers: the loop keeps filling while we write. */
		buf_reset(take);
		{
			struct buf t = *take;

			*take = c->inbox;
			c->inbox = t;
		}
		paused = c->paused;
		c->paused = 0;
		done = c->done;
		pthread_mutex_unlock(&c->lock);

		if (take->len > 0 && !asked_stop &&
		    sink->on_data(sink->arg, take->data, take->len) == -1) {
			kick(c, 1);
			asked_stop = 1;
		}
		if (paused && !asked_stop)
			kick(c, 0);
		if (clock_mono_ms() >= next_tick) {
			next_tick = clock_mono_ms() + TICK_MS;
			if (!asked_stop && sink->on_tick != NULL &&
			    sink->on_tick(sink->arg) == -1) {
				kick(c, 1);
				asked_stop = 1;
			}
		}
		pthread_mutex_lock(&c->lock);
		if (done && c->inbox.len == 0)
			break;
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * The request's headers: the worker's kept list when the client sets no
 * anthropic-version or -beta of its own (nearly always), built once per
 * configuration, or else a list for this request, which "own" says to
 * free.  NULL if out of memory.
 */
static struct curl_slist *
headers_for(struct upstream *u, const struct conf *conf, int stream,
    const char *ver, const char *beta, int *own)
{
	struct curl_slist	**kept = &u->headers[stream != 0];

	if ((*own = ver != NULL || beta != NULL))
		return make_headers(conf, stream, ver, beta);
	if (u->headers_serial != conf->serial) {
		curl_slist_free_all(u->headers[0]);
		curl_slist_free_all(u->headers[1]);
		u->headers[0] = u->headers[1] = NULL;
		u->headers_serial = conf->serial;
	}
	if (*kept == NULL)
		*kept = make_headers(conf, stream, NULL, NULL);
	return *kept;
}

/* The easy handle's options for call "c". */
static void
set_options(struct upstream *u, struct call *c, const struct conf *conf,
    const char *url, const char *body, size_t len,
    struct curl_slist *headers)
{
	CURL	*h = u->curl;

	u->errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, UPSTREAM_BUFFER);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, u->errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	} else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conf->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, conf->total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, upstream_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, upstream_on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
}

/* Hand "c" to the loop and wait for it; at once if the loop stops. */
static void
run_call(struct upstream *u, struct call *c, const struct upstream_sink *sink)
{
	struct upstream_loop	*l = u->loop;
	int			 wake;

	pthread_mutex_lock(&l->lock);
	if (l->stopping || l->aborting) {
		pthread_mutex_unlock(&l->lock);
		c->rc = CURLE_ABORTED_BY_CALLBACK;
		c->stopped = 1;
		return;
	}
	c->sink = sink;
	c->next = l->adds;
	l->adds = c;
	wake = upstream_loop_wake_due_locked(l);
	pthread_mutex_unlock(&l->lock);
	if (wake)
		upstream_loop_wake(l);
	wait_for(c, sink, &u->take);
}

/* How a finished call ended, in "res": 0 for a whole answer, else -1. */
static int
call_outcome(const struct upstream *u, const struct call *c,
    struct upstream_result *res)
{
	res->outcome = outcome_of(c->rc, c);
	if (res->outcome == UP_DONE)
		return 0;
	if (res->outcome == UP_ETIMEOUT)
		snprintf(res->detail, sizeof(res->detail), "%s after %lld ms",
		    c->timed_out != NULL ? c->timed_out :
		    c->got_status ? "total_timeout" : "connect_timeout",
		    clock_mono_ms() - c->t_start);
	else if (res->outcome == UP_EABORTED)
		str_copy(res->detail, sizeof(res->detail), "stopped by llmgw");
	else
		str_copy(res->detail, sizeof(res->detail), u->errbuf[0] !=
		    '\0' ? u->errbuf : curl_easy_strerror(c->rc));
	return -1;
}

/* One POST of "body" to "url" (a GET if it is NULL); see upstream_post(). */
static int
post(struct upstream *u, const struct conf *conf, const char *url,
    const char *body, size_t len, int stream, const char *version,
    const char *beta, const struct upstream_sink *sink,
    struct upstream_result *res)
{
	struct curl_slist	*headers;
	struct call		 c;
	int			 own;

	upstream_result_clear(res);
	if ((headers = headers_for(u, conf, stream, version, beta, &own)) ==
	    NULL) {
		str_copy(res->detail, sizeof(res->detail),
		    "out of memory building request headers");
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.loop = u->loop;
	c.up = u;
	c.conf = conf;
	c.res = res;
	c.whole = !stream;
	pthread_mutex_init(&c.lock, NULL);
	if (sem_init(&c.wake, 0, 0) == -1) {
		pthread_mutex_destroy(&c.lock);
		if (own)
			curl_slist_free_all(headers);
		snprintf(res->detail, sizeof(res->detail), "semaphore: %s",
		    strerror(errno));
		return -1;
	}
	c.inbox = u->inbox;	/* empty: trimmed after the last call */
	set_options(u, &c, conf, url, body, len, headers);
	run_call(u, &c, sink);
	curl_easy_setopt(u->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(u->curl, CURLOPT_PRIVATE, NULL);
	if (own)
		curl_slist_free_all(headers);
	u->inbox = c.inbox;
	buf_trim(&u->inbox, BUF_KEEP);
	buf_trim(&u->take, BUF_KEEP);
	pthread_mutex_destroy(&c.lock);
	sem_destroy(&c.wake);
	return call_outcome(u, &c, res);
}

int
upstream_post(struct upstream *u, const struct conf *conf, const char *body,
    size_t len, int stream, const char *version, const char *beta,
    const struct upstream_sink *sink, struct upstream_result *res)
{
	return post(u, conf, conf->messages_url, body, len, stream, version,
	    beta, sink, res);
}

static int
keep_reply(void *arg, const char *p, size_t n)
{
	return buf_add(arg, p, n);
}

int
upstream_fetch(struct upstream *u, const struct conf *conf, const char *url,
    const char *body, size_t len, const char *version, const char *beta,
    struct buf *reply, struct upstream_result *res)
{
	struct upstream_sink	 sink;

	buf_reset(reply);
	sink.on_data = keep_reply;
	sink.on_tick = NULL;
	sink.can_relay = NULL;
	sink.arg = reply;
	return post(u, conf, url, body, len, 0, version, beta, &sink, res);
}

int
upstream_count(struct upstream *u, const struct conf *conf, const char *body,
    size_t len, const char *version, const char *beta,
    struct upstream_result *res, long *tokens)
{
	struct buf		 reply;
	cJSON			*root;
	const cJSON		*n;
	int			 rc = -1;

	buf_init(&reply, COUNT_REPLY_MAX);
	if (upstream_fetch(u, conf, conf->count_url, body, len, version, beta,
	    &reply, res) == -1)
		goto out;
	if (res->status != 200) {
		snprintf(res->detail, sizeof(res->detail), "count_tokens: HTTP "
		    "%ld", res->status);
		goto out;
	}
	if ((root = cJSON_ParseWithLength(reply.data != NULL ? reply.data :
	    "", reply.len)) == NULL) {
		str_copy(res->detail, sizeof(res->detail), "count_tokens: "
		    "not JSON");
		goto out;
	}
	n = cJSON_GetObjectItemCaseSensitive(root, "input_tokens");
	if (cJSON_IsNumber(n) && n->valuedouble >= 0 &&
	    n->valuedouble < 1e12) {
		*tokens = (long)n->valuedouble;
		rc = 0;
	} else
		str_copy(res->detail, sizeof(res->detail), "count_tokens: no "
		    "input_tokens");
	cJSON_Delete(root);
out:
	buf_free(&reply);
	return rc;
}
