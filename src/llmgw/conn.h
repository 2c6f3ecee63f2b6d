/*
 * The client side of one request, whatever carries it: a FastCGI request
 * (fcgi.c), plain CGI (environment, stdin, stdout), or a test double.
 * Handlers see only this interface.
 *
 * A failed write means the client has gone (the web server closed the
 * connection, or aborted the request); "gone" is set and every later
 * write fails at once, so a handler can check it after a burst of writes.
 */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <sys/types.h>

struct conn;
struct fcgi;

struct conn_ops {
	/* A CGI variable ("PATH_INFO", "HTTP_AUTHORIZATION"), or NULL. */
	const char	*(*param)(struct conn *, const char *name);
	/* Read body bytes: the count, 0 at the end, -1 on error: errno
	 * ETIMEDOUT when it did not come within body_timeout, EFBIG when
	 * it is larger than body_limit (and was not read). */
	ssize_t		 (*read)(struct conn *, char *, size_t);
	/* Queue bytes for the client: 0, or -1 if the client is gone. */
	int		 (*write)(struct conn *, const char *, size_t);
	/* Push queued bytes to the web server now: 0 or -1. */
	int		 (*flush)(struct conn *);
	/* Whether the client is still there, without waiting: 0, or -1
	 * if the web server aborted the request or went away. */
	int		 (*check)(struct conn *);
	/* How many CGI variables the request carries. */
	size_t		 (*nparams)(struct conn *);
	/* 1 if "n" bytes written and flushed now would not wait. */
	int		 (*room)(struct conn *, size_t n);
};

struct conn {
	const struct conn_ops	*ops;
	void			*impl;
	int			 gone;		/* the client went away */
	size_t			 written;	/* bytes accepted so far */
	const char		*headers;	/* header lines every answer
						 * to it carries, or NULL */
};

const char	*conn_param(struct conn *, const char *name);
ssize_t		 conn_read(struct conn *, char *, size_t);
int		 conn_write(struct conn *, const char *, size_t);
int		 conn_puts(struct conn *, const char *);
int		 conn_flush(struct conn *);
int		 conn_check(struct conn *);
size_t		 conn_nparams(struct conn *);
int		 conn_room(struct conn *, size_t n);

/* A conn over a FastCGI request that fcgi_read() found whole (borrowed). */
void		 conn_init_fcgi(struct conn *, struct fcgi *);

/*
 * A conn over the CGI environment, stdin and stdout.  "*gone" (borrowed)
 * becomes non-zero when the web server says the client left (SIGTERM).
 */
void		 conn_init_cgi(struct conn *, const volatile int *gone);

#endif /* CONN_H */
