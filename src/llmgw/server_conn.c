/*
 * A connection's life (server.h): accepted, its request read as it comes,
 * served when whole, kept, drained or closed, and the sweep that ends
 * those whose request is late.
 */
#include "config.h"

#include <errno.h>
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
#include "conn.h"
#include "fcgi.h"
#include "server_impl.h"

#define ACCEPT_BURST	1024	/* taken from the backlog at once */
#define SWEEP_MS	250	/* how often late requests are looked for */
/*
 * A request answered before its body was read (413, 408) leaves the rest
 * of the body coming.  Closed at once, the connection would reset, and
 * the web server could lose the answer with it: what comes is read and
 * dropped first, this much at most, for this long at most.
 */
#define DRAIN_MAX	(1024 * 1024)
#define DRAIN_MS	2000

/* With the lock held: watch "fd" for "tag" (EPOLL_CTL_ADD or _MOD). */
int
server_watch(struct server *s, int op, int fd, void *tag)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = tag;
	return epoll_ctl(s->epfd, op, fd, &ev);
}

/* With the lock held: look for late requests SWEEP_MS from now. */
void
server_arm_timer_locked(struct server *s)
{
	struct itimerspec	 it;

	if (s->timer_armed)
		return;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_nsec = SWEEP_MS * 1000000L;
	if (timerfd_settime(s->timerfd, 0, &it, NULL) == -1 ||
	    server_watch(s, EPOLL_CTL_MOD, s->timerfd, &s->tag_timer) == -1) {
		log_error("server: the sweep's timer: %s", strerror(errno));
		return;
	}
	s->timer_armed = 1;
}

/*
 * With the lock held: the timer went off.  A connection past its
 * deadline is marked and its reading side shut: the worker the set then
 * wakes for it ends it (fcgi_expire()).  One being read now is its
 * worker's to judge.  The timer goes again while requests are arriving.
 */
void
sconn_sweep_locked(struct server *s)
{
	struct sconn	*c;
	uint64_t	 ticks;
	int64_t		 now = clock_mono_ms();
	int		 arriving = 0;

	if (read(s->timerfd, &ticks, sizeof(ticks)) == -1 && errno != EAGAIN)
		log_error("server: the sweep's timer: %s", strerror(errno));
	s->timer_armed = 0;
	for (c = s->conns; c != NULL; c = c->next) {
		if (c->deadline_ms == 0)
			continue;
		arriving = 1;
		if (c->busy || c->expired || c->deadline_ms > now)
			continue;
		c->expired = 1;
		if (shutdown(c->f.fd, SHUT_RD) == -1 && errno != ENOTCONN)
			log_error("server: shut a late connection: %s",
			    strerror(errno));
	}
	if (arriving)
		server_arm_timer_locked(s);
}

/* With the lock held: a new connection, its request due "request_ms"
 * from now.  NULL if out of memory (the caller closes "fd"). */
static struct sconn *
conn_new_locked(struct server *s, int fd)
{
	struct sconn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	fcgi_init(&c->f, fd, (size_t)s->opts.body_max);
	c->deadline_ms = clock_mono_ms() + s->opts.request_ms;
	if ((c->next = s->conns) != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	server_arm_timer_locked(s);
	return c;
}

/* With the lock held, by its owner: close and free "c". */
void
sconn_close_locked(struct server *s, struct sconn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	s->freed++;
	/* Closing it takes it out of the epoll set. */
	if (close(c->f.fd) == -1)
		log_error("server: close a connection: %s", strerror(errno));
	fcgi_free(&c->f);
	free(c);
}

static int
accept_one(struct server *s)
{
	int	 fd;

	do {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd == -1 && (errno == EINTR || errno == ECONNABORTED));
	return fd;
}

/*
 * A new connection from the backlog: into the set ("park"), or, for the
 * first of a burst, the caller's.  NULL (and "fd" closed) if it cannot.
 */
static struct sconn *
take_conn(struct server *s, int fd, int park)
{
	struct sconn	*c;

	pthread_mutex_lock(&s->lock);
	if ((c = conn_new_locked(s, fd)) == NULL) {
		pthread_mutex_unlock(&s->lock);
		log_error("server: out of memory for a connection");
		close(fd);
		return NULL;
	}
	if (park && server_watch(s, EPOLL_CTL_ADD, fd, c) == -1) {
		log_error("server: watch a connection: %s", strerror(errno));
		sconn_close_locked(s, c);
		c = NULL;
	} else if (park)
		c->in_set = 1;
	if (c != NULL && !park)
		c->busy = 1;
	pthread_mutex_unlock(&s->lock);
	return c;
}

/*
 * Accept a connection for this worker, under accept_lock (so that
 * server_close() cannot close the socket under us) and not the server's
 * lock, which workers ending their requests need meanwhile.  The rest of
 * a burst is taken from the backlog at once too, into the epoll set, and
 * the caller starts workers for it: a backlog left full while workers
 * start one by one makes a web server's connect() fail (EAGAIN on a unix
 * socket, which nginx answers with 502).  Then the listener is armed
 * again.  Returns the connection (busy) or NULL, and in "parked" how many
 * more went into the set.  Out of fds or memory, it waits 100 ms for
 * requests to finish before the listener is armed again.
 */
struct sconn *
sconn_accept_burst(struct server *s, long *parked)
{
	struct timespec	 pause = {0, 100 * 1000000L};
	struct sconn	*c = NULL;
	long		 extra = 0;
	int		 fd, more;

	pthread_mutex_lock(&s->accept_lock);
	if (s->listen_closed)
		goto out;
	fd = accept_one(s);
	if (fd == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
		log_error("server: accept: %s; pausing 100 ms",
		    strerror(errno));
		nanosleep(&pause, NULL);
	}
	if (fd != -1)
		c = take_conn(s, fd, 0);
	while (fd != -1 && extra < ACCEPT_BURST &&
	    (more = accept_one(s)) != -1) {
		if (atomic_load(&s->closing)) {
			close(more);	/* refused, as the rest will be */
			break;
		}
		if (take_conn(s, more, 1) != NULL)
			extra++;
	}
	server_arm_listener(s);
out:
	pthread_mutex_unlock(&s->accept_lock);
	*parked = extra;
	return c;
}

/* Serve the whole request on "c", end it, then the "after" hook. */
static void
serve_request(struct server *s, void *worker, struct sconn *c)
{
	struct conn	 conn;

	if (c->f.aborted) {
		/* The web server gave up on it before it was whole. */
		(void)fcgi_end(&c->f, 0);
		return;
	}
	conn_init_fcgi(&conn, &c->f);
	s->ops.serve(worker, &conn);
	(void)fcgi_end(&c->f, 0);
	s->ops.after(worker);
}

/* Read and drop what the web server still sends on an answered request. */
static enum fate
drain(struct sconn *c, int expired)
{
	char	 scrap[4096];
	ssize_t	 n;

	while (!expired && c->draining <= DRAIN_MAX) {
		n = recv(c->f.fd, scrap, sizeof(scrap), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return FATE_DRAIN;
		if (n <= 0)
			break;
		c->draining += (size_t)n;
	}
	return FATE_CLOSE;
}

/*
 * Read what the web server sent on "c" ("expired": past its deadline),
 * and serve the request if that made it whole.
 */
enum fate
sconn_handle(struct server *s, void *worker, struct sconn *c, int expired)
{
	enum fcgi_result	 r;

	if (c->draining)
		return drain(c, expired);
	r = fcgi_read(&c->f);
	if (expired && (r == FCGI_MORE || r == FCGI_CLOSED))
		r = fcgi_expire(&c->f);
	switch (r) {
	case FCGI_MORE:
		return FATE_WAIT;
	case FCGI_CLOSED:
		return FATE_CLOSE;
	case FCGI_BAD:
		log_warn("fastcgi: %s; connection closed", c->f.why);
		return FATE_CLOSE;
	case FCGI_REQUEST:
		break;
	}
	serve_request(s, worker, c);
	if (fcgi_reusable(&c->f))
		return FATE_KEEP;
	if (c->f.stdin_eof || c->f.aborted)
		return FATE_CLOSE;
	/* The answer is out: say so, then take what still comes. */
	if (shutdown(c->f.fd, SHUT_WR) == -1)
		return FATE_CLOSE;
	c->draining = 1;
	return drain(c, 0);
}

/* With the lock held: "c" back to the set, or closed. */
void
sconn_settle_locked(struct server *s, struct sconn *c, enum fate fate)
{
	c->busy = 0;
	if (fate == FATE_KEEP) {
		fcgi_reset(&c->f);
		c->deadline_ms = 0;
	} else if (fate == FATE_DRAIN && c->draining == 1) {
		c->deadline_ms = clock_mono_ms() + DRAIN_MS;
		server_arm_timer_locked(s);
	} else if (fate == FATE_WAIT && c->deadline_ms == 0 &&
	    (c->f.state != FCGI_ST_IDLE || c->f.hdr_len > 0)) {
		/* A kept connection's next request began. */
		c->deadline_ms = clock_mono_ms() + s->opts.request_ms;
		server_arm_timer_locked(s);
	}
	if (fate == FATE_CLOSE || s->stopping || server_watch(s, c->in_set ?
	    EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->f.fd, c) == -1)
		sconn_close_locked(s, c);
	else
		c->in_set = 1;
}
