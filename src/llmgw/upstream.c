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

#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/conf.h"
#include "upstream.h"

/* A worker's inbox: the loop pauses a transfer rather than grow it more. */
#define INBOX_MAX	(256 * 1024)

/*
 * libcurl's receive buffer per transfer.  SSE events are small; a large
 * buffer only costs memory per open stream.
 */
#define UPSTREAM_BUFFER	4096L
/*
 * Idle connections to the API kept for the next transfers.  libcurl's own
 * limit, four per transfer running at the moment one ends, closed and
 * reopened connections all the time under a steady load (3% of /chat
 * requests opened one: a TLS handshake each against the real API).
 */
#define IDLE_CONNECTIONS	256L
/* How often the loop looks for first-byte and idle timeouts. */
#define SCAN_MS		250
#define TICK_MS		1000

struct upstream_loop {
	CURLM		*multi;
	int		 epfd;
	int		 wakefd;		/* eventfd: workers wake the loop */
	pthread_t	 thread;
	long long	 timer_at;		/* libcurl's timer, as a
						 * clock_mono_ms() time; -1: none */
	struct call	*active;		/* in the multi handle */

	pthread_mutex_t	 lock;			/* guards what follows */
	struct call	*adds;			/* to start */
	struct call	*kicks;			/* to abort or resume */
	int		 stopping;
	int		 aborting;		/* end everything */
};

struct upstream {
	struct upstream_loop	*loop;
	CURL			*curl;
	char			 errbuf[CURL_ERROR_SIZE];
	/* The usual request headers, [0] for a whole body and [1] for a
	 * stream, built once for the configuration "headers_serial". */
	struct curl_slist	*headers[2];
	unsigned long		 headers_serial;
	/* A call's inbox and the buffer its worker takes it into, kept
	 * between calls while they are small. */
	struct buf		 inbox;
	struct buf		 take;
};

/*
 * One transfer, on the stack of the worker that waits for it.  The loop
 * thread owns the fields marked (loop); the worker reads res only once
 * "done" is set.  The loop never touches a call after setting "done",
 * but to wake its worker, which takes that wake-up before it leaves.
 */
struct call {
	struct upstream_loop		*loop;
	struct upstream			*up;
	const struct conf		*conf;
	struct upstream_result		*res;
	struct call			*next;		/* adds or active (loop) */
	struct call			*prev;		/* active (loop) */
	struct call			*knext;		/* kicks (loop lock) */
	int				 kicked;	/* (loop lock) */
	int				 finished;	/* (loop lock) no kicks now */
	int				 want_abort;	/* (loop lock) */
	int				 want_resume;	/* (loop lock) */
	long long			 t_start;	/* (loop) ms */
	long long			 t_last;	/* (loop) */
	int				 got_status;	/* (loop) */
	const char			*timed_out;	/* (loop) */
	int				 shut;		/* (loop) ended by a shutdown */

	int				 whole;		/* not a stream: the worker
							 * is woken for the end */

	pthread_mutex_t			 lock;		/* guards what follows */
	sem_t				 wake;		/* posted for a sleeper */
	int				 sleeping;	/* worker waits on wake */
	struct buf			 inbox;		/* 2xx body for the worker */
	int				 paused;	/* inbox full: loop paused */
	int				 stopped;	/* worker asked to stop */
	int				 done;
	CURLcode			 rc;
};

/*
 * With the call's lock held: whether its worker sleeps and is to be woken,
 * with call_wake() once the lock is released.  Woken under the lock, it
 * would only wait again for the lock (a futex and a context switch more).
 */
static int
take_sleeper_locked(struct call *c)
{
	int	 sleeping = c->sleeping;

	c->sleeping = 0;
	return sleeping;
}

static void
call_wake(struct call *c, int sleeping)
{
	if (sleeping && sem_post(&c->wake) == -1)
		log_error("upstream: wake a worker: %s", strerror(errno));
}

static void
loop_wake(struct upstream_loop *l)
{
	uint64_t	 one = 1;

	if (write(l->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("upstream: wake the loop: %s", strerror(errno));
}

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

/* libcurl callbacks: these run in the loop thread. */

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct call		*c = arg;
	struct upstream_result	*r = c->res;
	size_t			 len = size * n, nlen, i;
	const char		*colon;
	char			 value[256], *end;
	long			 secs;

	c->t_last = clock_mono_ms();
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
	int			 sleeping = 0;

	c->t_last = clock_mono_ms();
	if (r->status < 200 || r->status > 299) {
		/* An error body: keep the start, which says what went wrong. */
		if (r->errbody.len < UPSTREAM_ERRBODY_MAX)
			buf_add(&r->errbody, p, len < UPSTREAM_ERRBODY_MAX -
			    r->errbody.len ? len : UPSTREAM_ERRBODY_MAX -
			    r->errbody.len);
		return len;
	}
	pthread_mutex_lock(&c->lock);
	if (c->stopped) {
		pthread_mutex_unlock(&c->lock);
		return 0;	/* CURLE_WRITE_ERROR ends it */
	}
	if (c->inbox.len > 0 && c->inbox.len + len > INBOX_MAX) {
		/* The worker is behind (a slow client): hold the transfer. */
		c->paused = 1;
		sleeping = take_sleeper_locked(c);
		pthread_mutex_unlock(&c->lock);
		call_wake(c, sleeping);
		return CURL_WRITEFUNC_PAUSE;
	}
	if (buf_add(&c->inbox, p, len) == -1) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	/* A stream's bytes go on at once; a whole body waits for its end
	 * (one wake-up, not one per read), unless it grows large. */
	if (!c->whole || c->inbox.len >= INBOX_MAX / 2)
		sleeping = take_sleeper_locked(c);
	pthread_mutex_unlock(&c->lock);
	call_wake(c, sleeping);
	return len;
}

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct upstream_loop	*l = arg;
	struct epoll_event	 ev;

	(void)easy;
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(l->multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (sockp == NULL) {
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1 &&
		    (errno != EEXIST ||
		    epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1))
			log_error("upstream: epoll add fd %d: %s", fd,
			    strerror(errno));
		curl_multi_assign(l->multi, fd, l);
	} else if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
		log_error("upstream: epoll mod fd %d: %s", fd, strerror(errno));
	return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct upstream_loop	*l = arg;

	(void)multi;
	l->timer_at = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	return 0;
}

/* Loop thread: the transfer is over, one way or another. */
static void
finish(struct upstream_loop *l, struct call *c, CURLcode rc)
{
	struct call	**pp;
	int		 sleeping;

	curl_multi_remove_handle(l->multi, c->up->curl);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->active = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	/* After this no kick can queue the call: it would outlive it. */
	pthread_mutex_lock(&l->lock);
	if (c->kicked)
		for (pp = &l->kicks; *pp != NULL; pp = &(*pp)->knext)
			if (*pp == c) {
				*pp = c->knext;
				break;
			}
	c->kicked = 0;
	c->finished = 1;
	pthread_mutex_unlock(&l->lock);

	pthread_mutex_lock(&c->lock);
	c->rc = rc;
	c->done = 1;
	sleeping = take_sleeper_locked(c);
	pthread_mutex_unlock(&c->lock);
	call_wake(c, sleeping);
	/* From here on the call belongs to its worker again. */
}

static void
reap(struct upstream_loop *l)
{
	CURLMsg		*m;
	struct call	*c;
	int		 left;

	while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &c) !=
		    CURLE_OK || c == NULL)
			continue;
		finish(l, c, m->data.result);
	}
}

/* Loop thread: start new transfers, abort or resume others. */
static void
take_requests(struct upstream_loop *l)
{
	struct call	*adds, *kicks, *c, *next;
	int		 running, abort_it, resume;

	pthread_mutex_lock(&l->lock);
	adds = l->adds;
	l->adds = NULL;
	pthread_mutex_unlock(&l->lock);
	for (c = adds; c != NULL; c = next) {
		next = c->next;
		c->t_start = c->t_last = clock_mono_ms();
		c->prev = NULL;
		c->next = l->active;
		if (l->active != NULL)
			l->active->prev = c;
		l->active = c;
		if (curl_multi_add_handle(l->multi, c->up->curl) != CURLM_OK)
			finish(l, c, CURLE_FAILED_INIT);
	}
	if (adds != NULL)
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0,
		    &running);

	for (;;) {
		pthread_mutex_lock(&l->lock);
		if ((c = kicks = l->kicks) != NULL) {
			l->kicks = c->knext;
			c->kicked = 0;
			abort_it = c->want_abort;
			resume = c->want_resume;
			c->want_resume = 0;
		}
		pthread_mutex_unlock(&l->lock);
		if (c == NULL)
			break;
		if (abort_it)
			finish(l, c, CURLE_ABORTED_BY_CALLBACK);
		else if (resume)
			curl_easy_pause(c->up->curl, CURLPAUSE_CONT);
	}
}

/* Loop thread: first-byte and idle timeouts, which libcurl does not do. */
static void
scan_timeouts(struct upstream_loop *l)
{
	struct call	*c, *next;
	long long	 now = clock_mono_ms();
	int		 paused;

	for (c = l->active; c != NULL; c = next) {
		next = c->next;
		if (!c->got_status &&
		    now - c->t_start > c->conf->first_byte_timeout_ms)
			c->timed_out = "first_byte_timeout";
		else if (c->got_status &&
		    now - c->t_last > c->conf->idle_timeout_ms) {
			/* A paused transfer waits for the client, not the API. */
			pthread_mutex_lock(&c->lock);
			paused = c->paused;
			pthread_mutex_unlock(&c->lock);
			if (paused) {
				c->t_last = now;
				continue;
			}
			c->timed_out = "idle_timeout";
		} else
			continue;
		finish(l, c, CURLE_OPERATION_TIMEDOUT);
	}
}

static void *
loop_main(void *arg)
{
	struct upstream_loop	*l = arg;
	struct epoll_event	 evs[64];
	long long		 next_scan = clock_mono_ms() + SCAN_MS, now;
	uint64_t		 n;
	int			 i, nev, running, wait, flags, stopping;
	int			 aborting;

	(void)pthread_setname_np(pthread_self(), "llmgw-upstream");
	for (;;) {
		wait = SCAN_MS;
		if (l->timer_at >= 0) {
			now = clock_mono_ms();
			wait = l->timer_at <= now ? 0 :
			    l->timer_at - now < SCAN_MS ?
			    (int)(l->timer_at - now) : SCAN_MS;
		}
		nev = epoll_wait(l->epfd, evs, 64, wait);
		if (nev == -1 && errno != EINTR)
			log_error("upstream: epoll_wait: %s", strerror(errno));
		for (i = 0; i < nev; i++) {
			if (evs[i].data.fd == l->wakefd) {
				if (read(l->wakefd, &n, sizeof(n)) == -1 &&
				    errno != EAGAIN)
					log_error("upstream: read wake: %s",
					    strerror(errno));
				continue;
			}
			flags = 0;
			if (evs[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(l->multi, evs[i].data.fd,
			    flags, &running);
		}
		/*
		 * The timer fires once: libcurl sets the next one, if any,
		 * from inside the call.  Waiting on an old value would wake
		 * the loop every millisecond for nothing.
		 */
		if (l->timer_at >= 0 && clock_mono_ms() >= l->timer_at) {
			l->timer_at = -1;
			curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT,
			    0, &running);
		}
		take_requests(l);
		reap(l);
		now = clock_mono_ms();
		if (now >= next_scan) {
			scan_timeouts(l);
			next_scan = now + SCAN_MS;
		}
		pthread_mutex_lock(&l->lock);
		stopping = l->stopping;
		aborting = l->aborting;
		pthread_mutex_unlock(&l->lock);
		if (aborting || stopping)
			while (l->active != NULL) {
				l->active->shut = 1;
				finish(l, l->active,
				    CURLE_ABORTED_BY_CALLBACK);
			}
		if (stopping) {
			take_requests(l);
			if (l->active == NULL && l->adds == NULL)
				break;
		}
	}
	return NULL;
}

struct upstream_loop *
upstream_loop_start(struct err *err)
{
	struct upstream_loop	*l;
	struct epoll_event	 ev;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		err_set(err, "upstream: out of memory");
		return NULL;
	}
	l->timer_at = -1;
	l->epfd = l->wakefd = -1;
	pthread_mutex_init(&l->lock, NULL);
	if ((l->multi = curl_multi_init()) == NULL) {
		err_set(err, "upstream: curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, IDLE_CONNECTIONS);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		err_set(err, "upstream: %s", strerror(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = l->wakefd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) == -1) {
		err_set(err, "upstream: epoll: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
		err_set(err, "upstream: cannot start the loop thread");
		goto fail;
	}
	return l;
fail:
	if (l->multi != NULL)
		curl_multi_cleanup(l->multi);
	if (l->epfd != -1)
		close(l->epfd);
	if (l->wakefd != -1)
		close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return NULL;
}

void
upstream_loop_abort(struct upstream_loop *l)
{
	pthread_mutex_lock(&l->lock);
	l->aborting = 1;
	pthread_mutex_unlock(&l->lock);
	loop_wake(l);
}

void
upstream_loop_stop(struct upstream_loop *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_mutex_unlock(&l->lock);
	loop_wake(l);
	pthread_join(l->thread, NULL);
	curl_multi_cleanup(l->multi);
	close(l->epfd);
	close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Worker thread: ask the loop to abort or resume "c". */
static void
kick(struct call *c, int abort_it)
{
	struct upstream_loop	*l = c->loop;

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
	pthread_mutex_unlock(&l->lock);
	loop_wake(l);
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
		while (c->inbox.len == 0 && !c->done &&
		    clock_mono_ms() < next_tick) {
			until = clock_after_ms(CLOCK_REALTIME, TICK_MS);
			sleep_on(c, &until);
		}
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

int
upstream_post(struct upstream *u, const struct conf *conf, const char *body,
    size_t len, int stream, const char *version, const char *beta,
    const struct upstream_sink *sink, struct upstream_result *res)
{
	struct upstream_loop	*l = u->loop;
	struct curl_slist	*headers;
	struct call		 c;
	CURL			*h = u->curl;
	int			 own;

	result_clear(res);
	if ((headers = headers_for(u, conf, stream, version, beta, &own)) ==
	    NULL) {
		str_copy(res->detail, sizeof(res->detail),
		    "out of memory building request headers");
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.loop = l;
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

	u->errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_PRIVATE, &c);
	curl_easy_setopt(h, CURLOPT_URL, conf->messages_url);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, UPSTREAM_BUFFER);
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

	pthread_mutex_lock(&l->lock);
	if (l->stopping || l->aborting) {
		pthread_mutex_unlock(&l->lock);
		c.rc = CURLE_ABORTED_BY_CALLBACK;
		c.stopped = 1;
	} else {
		c.next = l->adds;
		l->adds = &c;
		pthread_mutex_unlock(&l->lock);
		loop_wake(l);
		wait_for(&c, sink, &u->take);
	}

	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
	if (own)
		curl_slist_free_all(headers);
	u->inbox = c.inbox;
	buf_trim(&u->inbox, BUF_KEEP);
	buf_trim(&u->take, BUF_KEEP);
	pthread_mutex_destroy(&c.lock);
	sem_destroy(&c.wake);

	res->outcome = outcome_of(c.rc, &c);
	if (res->outcome == UP_DONE)
		return 0;
	if (res->outcome == UP_ETIMEOUT)
		snprintf(res->detail, sizeof(res->detail), "%s after %lld ms",
		    c.timed_out != NULL ? c.timed_out :
		    c.got_status ? "total_timeout" : "connect_timeout",
		    clock_mono_ms() - c.t_start);
	else if (res->outcome == UP_EABORTED)
		str_copy(res->detail, sizeof(res->detail), "stopped by llmgw");
	else
		str_copy(res->detail, sizeof(res->detail), u->errbuf[0] !=
		    '\0' ? u->errbuf : curl_easy_strerror(c.rc));
	return -1;
}
