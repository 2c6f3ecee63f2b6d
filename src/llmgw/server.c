#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <fcgios.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "conn.h"
#include "server.h"

#define ACCEPT_BURST	1024	/* taken from the backlog at once */
#define DRAIN_MAX	(1024 * 1024)	/* body left unread that we take */

/*
 * Worker stacks are small: our deepest path is libcurl plus cJSON, whose
 * nesting is bounded (REQ_MAX_DEPTH).  Sanitizers need far more.
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

/* A worker, for server_interrupt(): the connection it is serving. */
struct slot {
	struct slot	*next;
	struct slot	*prev;
	int		 fd;		/* -1: none */
};

struct server {
	struct server_opts	 opts;
	struct server_ops	 ops;
	int			 listen_fd;
	int			 epfd;		/* where idle workers wait */
	int			 wakefd;	/* eventfd: set when stopping,
						 * wakes every worker */

	pthread_mutex_t		 accept_lock;	/* accept() on listen_fd, and
						 * its close */
	int			 listen_closed;	/* under accept_lock */
	atomic_int		 closing;	/* a burst stops parking */
	pthread_mutex_t		 lock;		/* guards what follows */
	pthread_cond_t		 gone;		/* a worker exited */
	struct slot		*slots;		/* every worker's */
	long			 threads;	/* running or starting */
	long			 idle;		/* waiting in epfd */
	long			 starting;	/* started, not waiting yet */
	int			 stopping;
	int			 closed;	/* the listener is gone */
};

int
server_init(struct err *err)
{
	int	 rc;

	if ((rc = FCGX_Init()) != 0) {
		err_set(err, "FCGX_Init failed (%d)", rc);
		return -1;
	}
	/*
	 * libfcgi's OS_Close() clears the fd in fixed fd_sets (an abort for
	 * fds above 1023) and in a 16-entry table indexed by 2 * fd (a heap
	 * overrun above 7) while its OS layer counts as initialised.  We use
	 * none of that layer's async I/O, so switch it off: OS_Close() is
	 * then a plain shutdown and close.
	 */
	OS_LibShutdown();
	/*
	 * FCGX_Init() also put an empty handler on SIGPIPE, over our
	 * SIG_IGN.  A caught signal is delivered, and returned from, on
	 * every write to a web server that has hung up: lighttpd closes its
	 * connection once it has the body, before our end-of-request record.
	 */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}




static void
wake(struct server *s)
{
	uint64_t	 one = 1;

	if (write(s->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("server: wake the workers: %s", strerror(errno));
}

static void	*worker_main(void *);
static int	 park_locked(struct server *, int, int);

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

#define SPAWN_FANOUT	2	/* workers one thread starts itself */

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
static void
arm_listener(struct server *s)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.fd = s->listen_fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->listen_fd, &ev) == -1)
		log_error("server: epoll on the listening socket: %s",
		    strerror(errno));
}

static int
accept_one(struct server *s)
{
	int	 fd;

	do {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd == -1 && (errno == EINTR || errno == ECONNABORTED));
	if (fd != -1 && s->opts.read_timeout_ms > 0 &&
	    conn_socket_read_timeout(fd, s->opts.read_timeout_ms) == -1)
		log_error("server: a connection's read timeout: %s",
		    strerror(errno));
	return fd;
}

/*
 * Accept a connection for this worker, under accept_lock (so that
 * server_close() cannot close the socket under us) and not the server's
 * lock, which workers ending their requests need meanwhile.  The rest of
 * a burst is taken from the backlog at once too, into the epoll set, and
 * the caller starts workers for it: a backlog left full while workers
 * start one by one makes a web server's connect() fail (EAGAIN on a unix
 * socket, which nginx answers with 502).  Then the listener is armed
 * again.  Returns the connection or -1, and in "parked" how many more
 * went into the set.  Out of fds or memory, it waits 100 ms for requests
 * to finish before the listener is armed again.
 */
static int
accept_burst(struct server *s, long *parked)
{
	struct timespec	 pause = {0, 100 * 1000000L};
	struct epoll_event ev;
	long		 extra = 0;
	int		 fd = -1, more;

	pthread_mutex_lock(&s->accept_lock);
	if (s->listen_closed)
		goto out;
	fd = accept_one(s);
	if (fd == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
		log_error("server: accept: %s; pausing 100 ms",
		    strerror(errno));
		nanosleep(&pause, NULL);
	}
	while (fd != -1 && extra < ACCEPT_BURST &&
	    (more = accept_one(s)) != -1) {
		if (atomic_load(&s->closing)) {
			close(more);	/* refused, as the rest will be */
			break;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
		ev.data.fd = more;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, more, &ev) == -1) {
			close(more);
			continue;
		}
		extra++;
	}
	arm_listener(s);
out:
	pthread_mutex_unlock(&s->accept_lock);
	*parked = extra;
	return fd;
}

/*
 * With the lock held: a connection waits in the epoll set until a request
 * comes.  One-shot: the event that hands the connection to a worker also
 * disarms it, so a connection that came from the set ("watched") is armed
 * again, and only one accepted by a worker added (closing it takes it
 * out).  0, or -1 if it cannot be.
 */
static int
park_locked(struct server *s, int fd, int watched)
{
	struct epoll_event	 ev;

	if (s->stopping)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.fd = fd;
	return epoll_ctl(s->epfd, watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
	    &ev);
}

/*
 * End the request without FCGX_Finish_r(), which may close the connection
 * through libfcgi's OS_Close(); the caller closes or parks it.  Returns 1
 * if the connection can serve another request.
 */
static int
end_request(FCGX_Request *req, const struct conn *conn)
{
	int	 bad;

	bad = FCGX_FClose(req->err) != 0;
	bad |= FCGX_FClose(req->out) != 0;
	bad |= FCGX_GetError(req->in) != 0;
	/* Unread body records would be taken for the next request. */
	bad |= !FCGX_HasSeenEOF(req->in);
	bad |= conn->gone | conn->unread;
	req->ipcFd = -1;
	FCGX_Free(req, 0);
	return !bad && req->keepConnection;
}

/*
 * Read what is left of the request's body, up to DRAIN_MAX, before
 * answering the end: web servers send the body (at least its empty end
 * record) after the parameters and would find the connection closed, and
 * an unread record would be taken for the next request on a kept one.
 */
static void
drain(FCGX_Request *req, const struct conn *conn)
{
	char	 scrap[1024];	/* a rare path: small, for a small stack */
	size_t	 total = 0;
	int	 n;

	while (!conn->gone && !conn->unread && !FCGX_HasSeenEOF(req->in) &&
	    total < DRAIN_MAX) {
		if ((n = FCGX_GetStr(scrap, sizeof(scrap), req->in)) <= 0)
			break;
		total += (size_t)n;
	}
}

/*
 * Serve one request on connection "fd".  Returns 1 if the web server keeps
 * the connection for more requests, 0 if it is to be closed, -1 if libfcgi
 * already closed it.
 */
static int
serve_connection(struct server *s, void *worker, int fd, long read_timeout_ms)
{
	FCGX_Request	 req;
	struct conn	 conn;
	int		 keep;

	if (FCGX_InitRequest(&req, -1, 0) != 0)
		return 0;
	/*
	 * Hand libfcgi the connection we accepted: with ipcFd set it skips
	 * its own accept(), and keepConnection stops the FCGX_Finish_r()
	 * that FCGX_Accept_r() begins with from closing it.
	 */
	req.ipcFd = fd;
	req.keepConnection = 1;
	if (FCGX_Accept_r(&req) < 0) {
		/* A protocol error or the peer left; libfcgi closed it. */
		req.ipcFd = -1;
		FCGX_Free(&req, 0);
		return -1;
	}
	conn_init_fcgi(&conn, &req, read_timeout_ms);
	s->ops.serve(worker, &conn);
	drain(&req, &conn);
	keep = end_request(&req, &conn);
	s->ops.after(worker);
	return keep;
}

/*
 * With the lock held: wait in the epoll set, idle, for a connection with
 * a request coming.  Returns its fd, with "watched" set if it came from
 * the set, and in "start" the workers to start_workers() so that every
 * connection waiting in the set, and the next one, finds one.  Returns -1
 * to leave (stopping, or idle too long with more than min_threads left).
 */
static int
next_connection_locked(struct server *s, int *watched, long *start)
{
	struct epoll_event	 ev;
	long			 parked = 0;
	int			 n, fd, timeout;

	for (;;) {
		if (s->stopping)
			return -1;
		timeout = s->opts.idle_ms > INT32_MAX ? INT32_MAX :
		    (int)s->opts.idle_ms;
		s->idle++;
		pthread_mutex_unlock(&s->lock);
		n = epoll_wait(s->epfd, &ev, 1, timeout);
		pthread_mutex_lock(&s->lock);
		s->idle--;
		if (s->stopping)
			return -1;
		if (n == 0) {
			/* Idle too long; but never leave the set unwatched
			 * while others are busy. */
			if (s->threads > s->opts.min_threads && s->idle > 0)
				return -1;
			continue;
		}
		if (n == -1) {
			if (errno != EINTR)
				log_error("server: epoll_wait: %s",
				    strerror(errno));
			continue;
		}
		fd = ev.data.fd;
		if (fd == s->wakefd)
			continue;
		*watched = fd != s->listen_fd;
		if (fd == s->listen_fd) {
			pthread_mutex_unlock(&s->lock);
			fd = accept_burst(s, &parked);
			pthread_mutex_lock(&s->lock);
			if (fd != -1 && s->stopping) {
				close(fd);
				fd = -1;
			}
			if (fd == -1)
				continue;
		} else if ((ev.events & EPOLLIN) == 0) {
			/* A parked connection's goodbye. */
			close(fd);
			continue;
		}
		*start = want_waiters_locked(s, parked + 1);
		return fd;
	}
}

static void *
worker_main(void *arg)
{
	struct spawn	*sp = arg;
	struct server	*s = sp->s;
	struct slot	 slot;
	struct err	 err;
	void		*worker;
	long		 start = sp->owed, read_timeout_ms;
	int		 fd, keep, watched = 0;

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
	    (fd = next_connection_locked(s, &watched, &start)) != -1) {
		slot.fd = fd;
		read_timeout_ms = s->opts.read_timeout_ms;
		pthread_mutex_unlock(&s->lock);
		if (start > 0)
			start_workers(s, start);

		keep = serve_connection(s, worker, fd, read_timeout_ms);

		/* Out of the slot before close: the number may be reused. */
		pthread_mutex_lock(&s->lock);
		slot.fd = -1;
		if (keep == 0 ||
		    (keep == 1 && park_locked(s, fd, watched) == -1))
			close(fd);
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
	pthread_cond_broadcast(&s->gone);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct server *
server_start(int fd, const struct server_opts *opts,
    const struct server_ops *ops, struct err *err)
{
	struct server		*s;
	struct epoll_event	 ev;
	long			 n;
	int			 flags;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(err, "server: out of memory");
		close(fd);
		return NULL;
	}
	s->opts = *opts;
	s->ops = *ops;
	s->listen_fd = fd;
	s->epfd = s->wakefd = -1;
	pthread_mutex_init(&s->accept_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->gone, NULL);

	/* A worker woken for a connection another took finds none. */
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		err_set(err, "server: listening socket: %s", strerror(errno));
		goto fail;
	}
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		err_set(err, "server: %s", strerror(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.fd = fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		err_set(err, "server: epoll on the listening socket: %s",
		    strerror(errno));
		goto fail;
	}
	/* Level-triggered and never read: once set, it wakes everyone. */
	ev.events = EPOLLIN;
	ev.data.fd = s->wakefd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) == -1) {
		err_set(err, "server: epoll: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_lock(&s->lock);
	n = want_waiters_locked(s, s->opts.min_threads);
	pthread_mutex_unlock(&s->lock);
	if (start_workers(s, n) == 0) {
		err_set(err, "server: could not start any worker thread");
		goto fail;
	}
	return s;
fail:
	if (s->epfd != -1)
		close(s->epfd);
	if (s->wakefd != -1)
		close(s->wakefd);
	close(fd);
	pthread_mutex_destroy(&s->accept_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->gone);
	free(s);
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
server_free(struct server *s)
{
	server_close(s);
	pthread_mutex_lock(&s->lock);
	while (s->threads > 0)
		pthread_cond_wait(&s->gone, &s->lock);
	pthread_mutex_unlock(&s->lock);

	close(s->epfd);
	close(s->wakefd);
	pthread_mutex_destroy(&s->accept_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->gone);
	free(s);
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
