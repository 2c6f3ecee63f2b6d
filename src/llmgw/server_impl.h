/*
 * What the two halves of server.h share: the pool (server.c) and the
 * connections' lives (server_conn.c).  Private to them.
 */
#ifndef SERVER_IMPL_H
#define SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fcgi.h"
#include "server.h"

/*
 * A connection.  Only the worker that took it from the epoll set ("busy")
 * reads, writes or frees it; the sweep only marks one past its deadline
 * and shuts its reading side, which wakes a worker for it.
 */
struct sconn {
	struct sconn	*next;		/* every open connection */
	struct sconn	*prev;
	struct fcgi	 f;
	int64_t		 deadline_ms;	/* its request must be whole by then;
					 * 0: none is arriving */
	int		 busy;
	int		 expired;	/* the sweep found it late */
	int		 in_set;	/* added to the epoll set */
	size_t		 draining;	/* answered; bytes dropped + 1 */
};

/* What becomes of a connection a worker is done with. */
enum fate {
	FATE_WAIT,		/* its request is arriving: back to the set */
	FATE_KEEP,		/* served; kept for the next request */
	FATE_DRAIN,		/* answered, the body still coming: dropped */
	FATE_CLOSE
};

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
	int			 timerfd;	/* when to look for late
						 * requests */
	/* The epoll data of the three above: their addresses. */
	char			 tag_listen, tag_wake, tag_timer;

	pthread_mutex_t		 accept_lock;	/* accept() on listen_fd, and
						 * its close */
	int			 listen_closed;	/* under accept_lock */
	atomic_int		 closing;	/* a burst stops parking */
	pthread_mutex_t		 lock;		/* guards what follows */
	pthread_cond_t		 gone;		/* a worker exited */
	struct slot		*slots;		/* every worker's */
	struct sconn		*conns;		/* every open connection */
	long			 threads;	/* running or starting */
	long			 idle;		/* waiting in epfd */
	long			 starting;	/* started, not waiting yet */
	int			 timer_armed;
	int			 stopping;
	int			 closed;	/* the listener is gone */
	long			 nconns;	/* open connections */
	long			 freed;		/* closed since memory was
						 * last given back */
	long			 left;		/* workers gone idle since */
};

/* With the lock held: watch "fd" for "tag" (EPOLL_CTL_ADD or _MOD). */
int	 server_watch(struct server *, int op, int fd, void *tag);
/* With accept_lock held: arm the listener for the next connection. */
void	 server_arm_listener(struct server *);
/* With the lock held: look for late requests SWEEP_MS from now. */
void	 server_arm_timer_locked(struct server *);

/* With the lock held: the sweep's timer went off (see server_conn.c). */
void	 sconn_sweep_locked(struct server *);
/*
 * Accept a connection for this worker, and the rest of a burst into the
 * set ("parked" of them); NULL if none.
 */
struct sconn	*sconn_accept_burst(struct server *, long *parked);
/* Read what came on "c" and serve its request if it is whole. */
enum fate	 sconn_handle(struct server *, void *worker, struct sconn *,
		    int expired);
/* With the lock held: "c" back to the set, or closed. */
void		 sconn_settle_locked(struct server *, struct sconn *,
		    enum fate);
/* With the lock held, by its owner: close and free "c". */
void		 sconn_close_locked(struct server *, struct sconn *);

#endif /* SERVER_IMPL_H */
