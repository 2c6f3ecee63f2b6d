/*
 * The pool of workers (server.h): how many wait, how they are started,
 * what a worker does, and the server's start and stop.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "server_impl.h"

/*
 * Worker stacks are small: our deepest path is libcurl plus cJSON, whose
 * nesting is bounded (REQ_MAX_DEPTH), and a read of FCGI_READ_CHUNK.
 * Sanitizers need far more.
 */
#if defined(__SANITIZE_ADDRESS__)
#define WORKER_STACK	(8u * 1024 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WORKER_STACK	(8u * 1024 * 1024)
#endif
#endif
#ifndef WORKER_STACK
#define WORKER_STACK	(256u * 1024)
#endif
#define SPAWN_FANOUT	2	/* workers one thread starts itself */
#define TRIM_AFTER	1000	/* connections closed ... */
#define TRIM_BELOW	64	/* ... and this few left: memory back; as
				 * when this many workers went idle and
				 * the pool is back to min_threads */

static void	*worker_main(void *);
static void	 give_back_locked(struct server *);
static long	 want_waiters_locked(struct server *, long);

static void
wake(struct server *s)
{
	uint64_t	 one = 1;

	if (write(s->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("server: wake the workers: %s", strerror(errno));
}

/*
 * With the lock held: count in enough workers that "waiters" wait in the
 * epoll set or are on their way there, within max_threads.  A worker just
 * started counts as waiting, or every connection taken before it arrives
 * would start another.  Returns how many to start_workers() once the lock
 * is released: making a thread takes a while, and nobody should wait on
 * the lock for it.
 */
static long
want_waiters_locked(struct server *s, long waiters)
{
	long	 more;

	more = waiters - s->idle - s->starting;
	if (more > s->opts.max_threads - s->threads)
		more = s->opts.max_threads - s->threads;
	if (more <= 0)
		return 0;
	s->threads += more;
	s->starting += more;
	return more;
}

/*
 * What a new worker is handed: its server, and how many more workers it
 * is to start before it waits for connections.
 */
struct spawn {
	struct server	*s;
	long		 owed;
};

/*
 * Without the lock: start the "n" workers want_waiters_locked() counted.
 * A thread starts at most SPAWN_FANOUT of them, and hands each a share of
 * the rest to start in turn: a burst's hundred workers come in a few
 * rounds, on every CPU, and the worker that took the burst goes on to its
 * own request after a couple.  Returns how many it started or handed on;
 * those it could not are counted out again here.
 */
static long
start_workers(struct server *s, long n)
{
	pthread_attr_t	 attr;
	pthread_t	 t;
	struct spawn	*sp;
	long		 started = 0, k, i, owed;
	int		 rc = 0;

	k = n < SPAWN_FANOUT ? n : SPAWN_FANOUT;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (i = 0; i < k; i++) {
		if ((sp = malloc(sizeof(*sp))) == NULL) {
			rc = ENOMEM;
			break;
		}
		/* The new thread frees "sp", maybe before we go on. */
		sp->s = s;
		sp->owed = owed = (n - k) / k + (i < (n - k) % k);
		if ((rc = pthread_create(&t, &attr, worker_main, sp)) != 0) {
			free(sp);
			break;
		}
		started += 1 + owed;
	}
	pthread_attr_destroy(&attr);
	if (started == n)
		return started;
	n -= started;
	log_error("server: cannot start %ld worker thread%s: %s", n,
	    n == 1 ? "" : "s", strerror(rc));
	pthread_mutex_lock(&s->lock);
	s->threads -= n;
	s->starting -= n;
	pthread_cond_broadcast(&s->gone);
	pthread_mutex_unlock(&s->lock);
	return started;
}

/* With accept_lock held: arm the listener for the next connection. */
void
server_arm_listener(struct server *s)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.ptr = &s->tag_listen;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->listen_fd, &ev) == -1)
		log_error("server: epoll on the listening socket: %s",
		    strerror(errno));
}

long
server_drain(struct server *s, long timeout_ms)
{
	struct timespec	 until;
	long		 left;

	until = clock_after_ms(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&s->lock);
	while (s->threads > 0 &&
	    pthread_cond_timedwait(&s->gone, &s->lock, &until) == 0)
		;
	left = s->threads;
	pthread_mutex_unlock(&s->lock);
	return left;
}

void
server_interrupt(struct server *s)
{
	struct slot	*sl;

	pthread_mutex_lock(&s->lock);
	for (sl = s->slots; sl != NULL; sl = sl->next)
		if (sl->fd != -1)
			shutdown(sl->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
}

void
server_set_opts(struct server *s, const struct server_opts *opts)
{
	pthread_mutex_lock(&s->lock);
	s->opts = *opts;
	pthread_mutex_unlock(&s->lock);
}

void
server_counts(struct server *s, long *threads, long *busy)
{
	pthread_mutex_lock(&s->lock);
	*threads = s->threads;
	*busy = s->threads - s->idle;
	pthread_mutex_unlock(&s->lock);
}

/*
 * With the lock held: wait in the epoll set, idle, for a connection with
 * something to read.  Returns it, busy, with "expired" if the sweep found
 * it late, and in "start" the workers to start_workers() so that every
 * connection waiting in the set, and the next one, finds one.  Returns
 * NULL to leave (stopping, or idle too long with more than min_threads
 * left).
 */
static struct sconn *
next_connection_locked(struct server *s, int *expired, long *start)
{
	struct epoll_event	 ev;
	struct sconn		*c;
	long			 parked = 0;
	int			 n, timeout;

	for (;;) {
		if (s->stopping)
			return NULL;
		timeout = s->opts.idle_ms > INT32_MAX ? INT32_MAX :
		    (int)s->opts.idle_ms;
		s->idle++;
		pthread_mutex_unlock(&s->lock);
		n = epoll_wait(s->epfd, &ev, 1, timeout);
		pthread_mutex_lock(&s->lock);
		s->idle--;
		if (s->stopping)
			return NULL;
		if (n == 0) {
			/* Idle too long; but never leave the set unwatched
			 * while others are busy. */
			if (s->threads > s->opts.min_threads && s->idle > 0)
				return NULL;
			continue;
		}
		if (n == -1) {
			if (errno != EINTR)
				log_error("server: epoll_wait: %s",
				    strerror(errno));
			continue;
		}
		if (ev.data.ptr == &s->tag_wake)
			continue;
		if (ev.data.ptr == &s->tag_timer) {
			sconn_sweep_locked(s);
			continue;
		}
		*expired = 0;
		if (ev.data.ptr == &s->tag_listen) {
			pthread_mutex_unlock(&s->lock);
			c = sconn_accept_burst(s, &parked);
			pthread_mutex_lock(&s->lock);
			if (c == NULL)
				continue;
			if (s->stopping) {
				sconn_close_locked(s, c);
				continue;
			}
		} else {
			c = ev.data.ptr;
			c->busy = 1;
			*expired = c->expired;
			c->expired = 0;
		}
		*start = want_waiters_locked(s, parked + 1);
		return c;
	}
}

/*
 * With the lock held: once many connections have come and gone and few
 * are left (a burst of peers that never sent their requests, say), give
 * the memory they held back to the system.  Each worker thread has its
 * own malloc arena, which keeps freed memory for its next allocations;
 * without this, RSS would stay at the burst's height.
 */
static void
give_back_locked(struct server *s)
{
	if (s->freed < TRIM_AFTER || s->nconns > TRIM_BELOW)
		return;
	s->freed = 0;
	s->left = 0;
	pthread_mutex_unlock(&s->lock);
	(void)malloc_trim(0);
	pthread_mutex_lock(&s->lock);
}

static void *
worker_main(void *arg)
{
	struct spawn	*sp = arg;
	struct server	*s = sp->s;
	struct sconn	*c;
	struct slot	 slot;
	struct err	 err;
	void		*worker;
	long		 start = sp->owed;
	int		 expired, trim;
	enum fate	 fate;

	free(sp);
	/* What top -H and ps -L show; a name this short cannot fail. */
	(void)pthread_setname_np(pthread_self(), "llmgw-worker");
	if (start > 0)
		start_workers(s, start);	/* our share, first */
	start = 0;
	worker = s->ops.thread_new(s->ops.arg, &err);
	if (worker == NULL)
		log_error("server: worker: %s", err.msg);
	pthread_mutex_lock(&s->lock);
	s->starting--;
	slot.fd = -1;
	slot.prev = NULL;
	if ((slot.next = s->slots) != NULL)
		s->slots->prev = &slot;
	s->slots = &slot;
	while (worker != NULL &&
	    (c = next_connection_locked(s, &expired, &start)) != NULL) {
		slot.fd = c->f.fd;
		pthread_mutex_unlock(&s->lock);
		if (start > 0)
			start_workers(s, start);

		fate = sconn_handle(s, worker, c, expired);

		/* Out of the slot before close: the number may be reused. */
		pthread_mutex_lock(&s->lock);
		slot.fd = -1;
		sconn_settle_locked(s, c, fate);
		give_back_locked(s);
	}
	if (slot.prev != NULL)
		slot.prev->next = slot.next;
	else
		s->slots = slot.next;
	if (slot.next != NULL)
		slot.next->prev = slot.prev;
	pthread_mutex_unlock(&s->lock);
	/* Free first: server_free() may free "s" once we are counted out. */
	if (worker != NULL)
		s->ops.thread_free(worker);
	pthread_mutex_lock(&s->lock);
	s->threads--;
	/*
	 * The last of a wave of workers to go idle gives back what they freed
	 * as they left (libcurl handles, buffers): give_back_locked() ran
	 * when their connections closed, while they were still there.
	 */
	trim = !s->stopping && ++s->left >= TRIM_BELOW &&
	    s->threads <= s->opts.min_threads;
	if (trim)
		s->left = s->freed = 0;
	pthread_cond_broadcast(&s->gone);
	pthread_mutex_unlock(&s->lock);
	if (trim)
		(void)malloc_trim(0);
	return NULL;
}

/* The epoll set, with the listener, the wake-up and the sweep's timer. */
static int
make_set(struct server *s, struct err *err)
{
	struct epoll_event	 ev;
	int			 flags;

	/* A worker woken for a connection another took finds none. */
	if ((flags = fcntl(s->listen_fd, F_GETFL)) == -1 ||
	    fcntl(s->listen_fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		err_set(err, "server: listening socket: %s", strerror(errno));
		return -1;
	}
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1) {
		err_set(err, "server: %s", strerror(errno));
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.ptr = &s->tag_listen;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev) == -1) {
		err_set(err, "server: epoll on the listening socket: %s",
		    strerror(errno));
		return -1;
	}
	ev.data.ptr = &s->tag_timer;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->timerfd, &ev) == -1) {
		err_set(err, "server: epoll: %s", strerror(errno));
		return -1;
	}
	/* Level-triggered and never read: once set, it wakes everyone. */
	ev.events = EPOLLIN;
	ev.data.ptr = &s->tag_wake;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) == -1) {
		err_set(err, "server: epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void
server_destroy(struct server *s)
{
	if (s->epfd != -1)
		close(s->epfd);
	if (s->wakefd != -1)
		close(s->wakefd);
	if (s->timerfd != -1)
		close(s->timerfd);
	pthread_mutex_destroy(&s->accept_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->gone);
	free(s);
}

struct server *
server_start(int fd, const struct server_opts *opts,
    const struct server_ops *ops, struct err *err)
{
	struct server	*s;
	long		 n;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(err, "server: out of memory");
		close(fd);
		return NULL;
	}
	s->opts = *opts;
	s->ops = *ops;
	s->listen_fd = fd;
	s->epfd = s->wakefd = s->timerfd = -1;
	pthread_mutex_init(&s->accept_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->gone, NULL);
	if (make_set(s, err) == -1)
		goto fail;
	pthread_mutex_lock(&s->lock);
	n = want_waiters_locked(s, s->opts.min_threads);
	pthread_mutex_unlock(&s->lock);
	if (start_workers(s, n) == 0) {
		err_set(err, "server: could not start any worker thread");
		goto fail;
	}
	return s;
fail:
	close(fd);
	server_destroy(s);
	return NULL;
}

void
server_close(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->stopping = 1;
	s->closed = 1;
	atomic_store(&s->closing, 1);
	pthread_mutex_unlock(&s->lock);
	/*
	 * No new connections from here on: connecting gets a refusal.
	 * Workers accept only with accept_lock held, and not once closed.
	 */
	pthread_mutex_lock(&s->accept_lock);
	s->listen_closed = 1;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
	close(s->listen_fd);
	pthread_mutex_unlock(&s->accept_lock);
	/* Idle workers leave; busy ones finish first. */
	wake(s);
}

void
server_free(struct server *s)
{
	server_close(s);
	pthread_mutex_lock(&s->lock);
	while (s->threads > 0)
		pthread_cond_wait(&s->gone, &s->lock);
	/* No worker is left: what is in the set is nobody's. */
	while (s->conns != NULL)
		sconn_close_locked(s, s->conns);
	pthread_mutex_unlock(&s->lock);
	server_destroy(s);
}
