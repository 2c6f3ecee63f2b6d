/*
 * The FastCGI side of llmgw: the listening socket and a pool of worker
 * threads.
 *
 * Idle workers wait in one epoll set, which holds the listening socket
 * and the idle keep-alive connections, and the worker the kernel wakes
 * serves the connection itself with libfcgi (no thread in between to
 * hand it over), one request at a time, so a slow stream holds one worker
 * and nothing else.  Every entry is one-shot: an event goes to one worker
 * only, and is armed again when that worker is done with it.  The pool
 * starts with "min_threads" workers and grows with the connections that
 * wait (up to "max_threads"): a worker that takes one makes sure another
 * waits, or is starting, for each connection a burst left in the set and
 * for the next (new workers start the rest of a burst's between them, a
 * few each).  A worker that has been idle for "idle_ms" exits while more
 * than "min_threads" remain.
 *
 * A connection the web server wants kept open (FCGI_KEEP_CONN: nginx
 * fastcgi_keep_conn, mod_proxy_fcgi enablereuse) goes back to the epoll
 * set between requests instead of pinning a worker.
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
	long	 read_timeout_ms;	/* every read from the web server
					 * (SO_RCVTIMEO); 0: none */
};

/* Set up libfcgi; once, before anything else here.  0 or -1 with "err". */
int	 server_init(struct err *);

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
