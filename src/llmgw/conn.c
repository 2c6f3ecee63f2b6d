#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "conn.h"

const char *
conn_param(struct conn *c, const char *name)
{
	return c->ops->param(c, name);
}

ssize_t
conn_read(struct conn *c, char *p, size_t n)
{
	return c->ops->read(c, p, n);
}

int
conn_write(struct conn *c, const char *p, size_t n)
{
	if (c->gone)
		return -1;
	if (c->ops->write(c, p, n) == -1) {
		c->gone = 1;
		return -1;
	}
	c->written += n;
	return 0;
}

int
conn_puts(struct conn *c, const char *s)
{
	return conn_write(c, s, strlen(s));
}

int
conn_read_timeout(struct conn *c, long ms)
{
	return c->ops->read_timeout(c, ms);
}

size_t
conn_nparams(struct conn *c)
{
	return c->ops->nparams(c);
}

int
conn_flush(struct conn *c)
{
	if (c->gone)
		return -1;
	if (c->ops->flush(c) == -1) {
		c->gone = 1;
		return -1;
	}
	return 0;
}

/* FastCGI, through libfcgi. */

static const char *
fcgi_param(struct conn *c, const char *name)
{
	FCGX_Request	*r = c->impl;

	return FCGX_GetParam(name, r->envp);
}

static ssize_t
fcgi_read(struct conn *c, char *p, size_t n)
{
	FCGX_Request	*r = c->impl;
	ptrdiff_t	 avail;
	int		 got;

	/*
	 * Like read(2): what has arrived, or wait for at least a byte.
	 * FCGX_GetStr() itself waits until it has all "n", which would
	 * keep a body that drips in out of the caller's deadline.
	 */
	avail = r->in->stop - r->in->rdNext;
	if (n > (size_t)(avail > 0 ? avail : 1))
		n = (size_t)(avail > 0 ? avail : 1);
	got = FCGX_GetStr(p, (int)n, r->in);
	if (got == 0 && FCGX_GetError(r->in) != 0) {
		/* libfcgi keeps the errno of a failed read(). */
		errno = FCGX_GetError(r->in) > 0 ? FCGX_GetError(r->in) : EIO;
		return -1;
	}
	return got;
}

static int
fcgi_write(struct conn *c, const char *p, size_t n)
{
	FCGX_Request	*r = c->impl;

	while (n > 0) {
		int chunk = n > INT32_MAX ? INT32_MAX : (int)n;

		if (FCGX_PutStr(p, chunk, r->out) != chunk)
			return -1;
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

static int
fcgi_flush(struct conn *c)
{
	FCGX_Request	*r = c->impl;

	return FCGX_FFlush(r->out) == 0 ? 0 : -1;
}

/*
 * On the socket to the web server, for a body that comes slowly.  A read
 * of bytes libfcgi holds already needs none, and the connection's own
 * timeout needs no restoring if it was never shortened: most bodies come
 * with the request's parameters, and this spares a system call or two
 * per request.
 */
static int
fcgi_read_timeout(struct conn *c, long ms)
{
	FCGX_Request	*r = c->impl;

	if (ms > 0 && r->in->stop > r->in->rdNext)
		return 0;
	if (ms == 0 && !c->read_timeout_set)
		return 0;
	if (conn_socket_read_timeout(r->ipcFd,
	    ms > 0 ? ms : c->read_timeout_ms) == -1)
		return -1;
	c->read_timeout_set = ms > 0;
	return 0;
}

int
conn_socket_read_timeout(int fd, long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = ms % 1000 * 1000;
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static size_t
fcgi_nparams(struct conn *c)
{
	FCGX_Request	*r = c->impl;
	size_t		 n = 0;

	while (r->envp[n] != NULL)
		n++;
	return n;
}

static const struct conn_ops fcgi_ops = {
	fcgi_param, fcgi_read, fcgi_write, fcgi_flush, fcgi_read_timeout,
	fcgi_nparams
};

void
conn_init_fcgi(struct conn *c, struct FCGX_Request *req, long read_timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->ops = &fcgi_ops;
	c->impl = req;
	c->read_timeout_ms = read_timeout_ms;
}

/* Plain CGI: one request per process, unbuffered output. */

static const char *
cgi_param(struct conn *c, const char *name)
{
	(void)c;
	return getenv(name);
}

static ssize_t
cgi_read(struct conn *c, char *p, size_t n)
{
	ssize_t	 got;

	(void)c;
	do {
		got = read(STDIN_FILENO, p, n);
	} while (got == -1 && errno == EINTR);
	return got;
}

static int
cgi_write(struct conn *c, const char *p, size_t n)
{
	ssize_t	 w;

	(void)c;
	while (n > 0) {
		w = write(STDOUT_FILENO, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cgi_flush(struct conn *c)
{
	(void)c;
	return 0;	/* nothing is held back */
}

/* A CGI's stdin is a pipe from the web server, which times it out. */
static int
cgi_read_timeout(struct conn *c, long ms)
{
	(void)c;
	(void)ms;
	return 0;
}

static size_t
cgi_nparams(struct conn *c)
{
	extern char	**environ;
	size_t		  n = 0;

	(void)c;
	while (environ[n] != NULL)
		n++;
	return n;
}

static const struct conn_ops cgi_ops = {
	cgi_param, cgi_read, cgi_write, cgi_flush, cgi_read_timeout,
	cgi_nparams
};

void
conn_init_cgi(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->ops = &cgi_ops;
}
