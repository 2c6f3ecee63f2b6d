/*
 * The FastCGI side of llmgw: the listening socket, the connections, and a
 * pool of worker threads.
 *
 * Idle workers wait in one epoll set, which holds the listening socket
 * and every connection not being served: one whose request is still
 * arriving, and one the web server keeps open between requests.  The
 * worker the kernel wakes for a connection reads what it sent, without
 * waiting (fcgi.c), and goes back to waiting unless that made a request
 * whole; then it serves the request itself, one at a time, so a slow
 * stream holds one worker and nothing else.  A connection still sending
 * its request holds no worker at all, only its bytes so far, and is
 * closed if the request is not whole within "request_ms" of its first
 * byte (a body cut short is answered 408).  Every entry is one-shot: an
 * event goes to one worker only, and is armed again when that worker is
 * done with it.
 *
 * The pool starts with "min_threads" workers and grows with the
 * connections that wait (up to "max_threads"): a worker that takes one
 * makes sure another waits, or is starting, for each connection a burst
 * left in the set and for the next (new workers start the rest of a
 * burst's between them, a few each).  A worker that has been idle for
 * "idle_ms" exits while more than "min_threads" remain.
 */
#ifndef SERVER_H
#define SERVER_H

struct conn;
struct err;
struct server;

struct server_ops {
	/* Per-thread state, made by and for each worker thread. */
	void	*(*thread_new)(void *arg, struct err *);
	void	 (*thread_free)(void *state);
	/* Serve one request; then the request is ended, then "after". */
	void	 (*serve)(void *state, struct conn *);
	void	 (*after)(void *state);
	void	*arg;
};

struct server_opts {
	long	 min_threads;
	long	 max_threads;
	long	 idle_ms;
	long	 request_ms;		/* for a request to arrive whole */
	long	 body_max;		/* a larger body is not read */
};

/* Start the first workers on "fd", which the server takes. */
struct server	*server_start(int fd, const struct server_opts *,
		    const struct server_ops *, struct err *);

/*
 * Stop accepting: the listening socket is closed, so connecting is
 * refused; connections already accepted are still served, and workers
 * leave as they become idle.
 */
void	 server_close(struct server *);

/*
 * Wait up to "timeout_ms" for every worker to leave (after server_close).
 * Returns how many are still serving.
 */
long	 server_drain(struct server *, long timeout_ms);

/* Make the I/O of requests still in progress fail (shutdown(2)). */
void	 server_interrupt(struct server *);

/* Close, wait for every worker however long, and free the server. */
void	 server_free(struct server *);

/* New pool sizes, after a reload. */
void	 server_set_opts(struct server *, const struct server_opts *);

/* Workers now, and how many are serving a request. */
void	 server_counts(struct server *, long *threads, long *busy);

#endif /* SERVER_H */
