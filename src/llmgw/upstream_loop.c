/*
 * The loop thread (upstream.h): one libcurl multi handle driven by epoll,
 * every transfer of the process on it, and libcurl's callbacks, which
 * hand a call's bytes to its worker.
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

#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/conf.h"
#include "upstream.h"
#include "upstream_impl.h"

int
upstream_take_sleeper_locked(struct call *c)
{
	int	 sleeping = c->sleeping;

	c->sleeping = 0;
	return sleeping;
}

void
upstream_call_wake(struct call *c, int sleeping)
{
	if (sleeping && sem_post(&c->wake) == -1)
		log_error("upstream: wake a worker: %s", strerror(errno));
}

int
upstream_loop_wake_due_locked(struct upstream_loop *l)
{
	int	 due = !l->wake_due;

	l->wake_due = 1;
	return due;
}

void
upstream_loop_wake(struct upstream_loop *l)
{
	uint64_t	 one = 1;

	if (write(l->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("upstream: wake the loop: %s", strerror(errno));
}

/* Copy a header value without surrounding space; drop CR/LF and controls. */
void
upstream_result_clear(struct upstream_result *r)
{
	r->outcome = UP_EOTHER;
	r->status = 0;
	r->retry_after_ms = -1;
	r->request_id[0] = '\0';
	r->detail[0] = '\0';
	buf_reset(&r->ratelimit);
	buf_reset(&r->errbody);
}

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
size_t
upstream_on_header(char *p, size_t size, size_t n, void *arg)
{
	struct call		*c = arg;
	struct upstream_result	*r = c->res;
	size_t			 len = size * n, nlen, i;
	const char		*colon;
	char			 value[256], name[64], *end;
	long			 secs;

	c->t_last = clock_mono_ms();
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response head (after a 100, say) replaces the old. */
		upstream_result_clear(r);
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
	} else if (c->conf->forward_upstream_ratelimit && nlen > 20 &&
	    nlen < 64 && strncasecmp(p, "anthropic-ratelimit-", 20) == 0) {
		/* The organisation's limits, not the key's: passed on only
		 * when asked, as they are, names lower case. */
		for (i = 0; i < nlen; i++) {
			if (!isalnum((unsigned char)p[i]) && p[i] != '-')
				return len;
			name[i] = (char)tolower((unsigned char)p[i]);
		}
		name[nlen] = '\0';
		if (buf_addf(&r->ratelimit, "%s: %s\r\n", name, value) == -1)
			log_debug("upstream: header %s not passed on: past "
			    "%d bytes of them", name, UPSTREAM_RATELIMIT_MAX);
	}
	return len;
}

/*
 * Loop thread, with the call's lock held (and again on return): give the
 * "len" bytes at "p" to the call's sink here (upstream.h), if its worker
 * sleeps with nothing waiting and the sink says they can go on at once.
 * 1 if they went (or the sink stopped the call), 0 if they are for the
 * inbox.  "*sleeping" says whether the worker waits for the sink and is to
 * be woken once the lock is released.
 */
static int
relay(struct call *c, const char *p, size_t len, int *sleeping)
{
	const struct upstream_sink	*s = c->sink;
	int				 went, failed = 0;

	if (c->whole || s == NULL || s->can_relay == NULL || !c->sleeping ||
	    c->inbox.len > 0 || c->relaying)
		return 0;
	c->relaying = 1;
	pthread_mutex_unlock(&c->lock);
	if ((went = s->can_relay(s->arg, len)))
		failed = s->on_data(s->arg, p, len) == -1;
	pthread_mutex_lock(&c->lock);
	c->relaying = 0;
	if (failed)
		c->stopped = 1;
	if (c->want_sink)
		*sleeping = upstream_take_sleeper_locked(c);
	return went;
}

size_t
upstream_on_write(char *p, size_t size, size_t n, void *arg)
{
	struct call		*c = arg;
	struct upstream_result	*r = c->res;
	size_t			 len = size * n;
	int			 sleeping = 0, stopped;

	c->t_last = clock_mono_ms();
	if (r->status < 200 || r->status > 299) {
		/* An error body: keep the start, which says what went wrong. */
		if (r->errbody.len < UPSTREAM_ERRBODY_MAX &&
		    buf_add(&r->errbody, p, len < UPSTREAM_ERRBODY_MAX -
		    r->errbody.len ? len : UPSTREAM_ERRBODY_MAX -
		    r->errbody.len) == -1)
			log_debug("upstream: error body not kept: out of "
			    "memory");
		return len;
	}
	pthread_mutex_lock(&c->lock);
	if (c->stopped) {
		pthread_mutex_unlock(&c->lock);
		return 0;	/* CURLE_WRITE_ERROR ends it */
	}
	if (relay(c, p, len, &sleeping)) {
		stopped = c->stopped;
		pthread_mutex_unlock(&c->lock);
		upstream_call_wake(c, sleeping);
		return stopped ? 0 : len;
	}
	if (c->inbox.len > 0 && c->inbox.len + len > INBOX_MAX) {
		/* The worker is behind (a slow client): hold the transfer. */
		c->paused = 1;
		sleeping |= upstream_take_sleeper_locked(c);
		pthread_mutex_unlock(&c->lock);
		upstream_call_wake(c, sleeping);
		return CURL_WRITEFUNC_PAUSE;
	}
	if (buf_add(&c->inbox, p, len) == -1) {
		pthread_mutex_unlock(&c->lock);
		upstream_call_wake(c, sleeping);
		return 0;
	}
	/* A stream's bytes go on at once; a whole body waits for its end
	 * (one wake-up, not one per read), unless it grows large. */
	if (!c->whole || c->inbox.len >= INBOX_MAX / 2)
		sleeping |= upstream_take_sleeper_locked(c);
	pthread_mutex_unlock(&c->lock);
	upstream_call_wake(c, sleeping);
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
	sleeping = upstream_take_sleeper_locked(c);
	pthread_mutex_unlock(&c->lock);
	upstream_call_wake(c, sleeping);
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

	/* The wakefd was read before: a call added from here on writes it
	 * again.  Kicks are taken below, until none is left. */
	pthread_mutex_lock(&l->lock);
	adds = l->adds;
	l->adds = NULL;
	l->wake_due = 0;
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
	upstream_loop_wake(l);
}

void
upstream_loop_stop(struct upstream_loop *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_mutex_unlock(&l->lock);
	upstream_loop_wake(l);
	pthread_join(l->thread, NULL);
	curl_multi_cleanup(l->multi);
	close(l->epfd);
	close(l->wakefd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
