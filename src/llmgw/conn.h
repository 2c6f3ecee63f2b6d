/*
 * The client side of one request, whatever carries it: a FastCGI request
 * (libfcgi), plain CGI (environment, stdin, stdout), or a test double.
 * Handlers see only this interface.
 *
 * A failed write means the client has gone (the web server closed the
 * connection); "gone" is set and every later write fails at once, so a
 * handler can check it after a burst of writes.
 */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <sys/types.h>

struct conn;

struct conn_ops {
	/* A CGI variable ("PATH_INFO", "HTTP_AUTHORIZATION"), or NULL. */
	const char	*(*param)(struct conn *, const char *name);
	/* Read body bytes: the count, 0 at the end, -1 on error (errno
	 * EAGAIN when a read timeout ran out). */
	ssize_t		 (*read)(struct conn *, char *, size_t);
	/* Queue bytes for the client: 0, or -1 if the client is gone. */
	int		 (*write)(struct conn *, const char *, size_t);
	/* Push queued bytes to the web server now: 0 or -1. */
	int		 (*flush)(struct conn *);
	/* How long the next reads may wait, in ms, when that is less
	 * than the connection's own timeout (0: back to that): 0, or -1
	 * on error.  Plain CGI leaves it to the web server. */
	int		 (*read_timeout)(struct conn *, long ms);
	/* How many CGI variables the request carries. */
	size_t		 (*nparams)(struct conn *);
};

struct conn {
	const struct conn_ops	*ops;
	void			*impl;
	int			 gone;		/* a write or flush failed */
	int			 unread;	/* body left unread: the
						 * connection cannot be kept */
	size_t			 written;	/* bytes accepted so far */
	long			 read_timeout_ms;	/* the connection's own,
							 * for every read */
	int			 read_timeout_set;	/* a shorter one is on
							 * the socket now */
};

const char	*conn_param(struct conn *, const char *name);
ssize_t		 conn_read(struct conn *, char *, size_t);
int		 conn_write(struct conn *, const char *, size_t);
int		 conn_puts(struct conn *, const char *);
int		 conn_flush(struct conn *);
int		 conn_read_timeout(struct conn *, long ms);
size_t		 conn_nparams(struct conn *);

/* SO_RCVTIMEO on socket "fd", in ms (0: none): 0, or -1 with errno. */
int		 conn_socket_read_timeout(int fd, long ms);

struct FCGX_Request;

/*
 * A conn over an accepted libfcgi request; "req" is borrowed.  Reads on
 * its socket wait at most "read_timeout_ms" (SO_RCVTIMEO, set when the
 * connection was accepted; 0: none).
 */
void		 conn_init_fcgi(struct conn *, struct FCGX_Request *req,
		    long read_timeout_ms);

/* A conn over the CGI environment, stdin and stdout. */
void		 conn_init_cgi(struct conn *);

#endif /* CONN_H */
