#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fcgi.h"

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

int
conn_room(struct conn *c, size_t n)
{
	return !c->gone && c->ops->room(c, n);
}

int
conn_check(struct conn *c)
{
	if (c->gone)
		return -1;
	if (c->ops->check(c) == -1) {
		c->gone = 1;
		return -1;
	}
	return 0;
}

size_t
conn_nparams(struct conn *c)
{
	return c->ops->nparams(c);
}

/* FastCGI: the request fcgi.c read whole; the answer through it. */

static const char *
fcgi_conn_param(struct conn *c, const char *name)
{
	return fcgi_param(c->impl, name);
}

static ssize_t
fcgi_conn_read(struct conn *c, char *p, size_t n)
{
	return fcgi_body_read(c->impl, p, n);
}

static int
fcgi_conn_write(struct conn *c, const char *p, size_t n)
{
	return fcgi_out(c->impl, p, n);
}

static int
fcgi_conn_flush(struct conn *c)
{
	return fcgi_flush(c->impl);
}

/* What the web server sent meanwhile: an abort, or its leaving. */
static int
fcgi_conn_check(struct conn *c)
{
	struct fcgi	*f = c->impl;

	if (!f->aborted)
		(void)fcgi_read(f);
	return f->aborted ? -1 : 0;
}

static size_t
fcgi_conn_nparams(struct conn *c)
{
	return fcgi_nparams(c->impl);
}

static int
fcgi_conn_room(struct conn *c, size_t n)
{
	return fcgi_room(c->impl, n);
}

static const struct conn_ops fcgi_ops = {
	fcgi_conn_param, fcgi_conn_read, fcgi_conn_write, fcgi_conn_flush,
	fcgi_conn_check, fcgi_conn_nparams, fcgi_conn_room
};

void
conn_init_fcgi(struct conn *c, struct fcgi *f)
{
	memset(c, 0, sizeof(*c));
	c->ops = &fcgi_ops;
	c->impl = f;
	c->gone = f->aborted;
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

/* The web server sends SIGTERM when the client leaves. */
static int
cgi_check(struct conn *c)
{
	const volatile int	*gone = c->impl;

	return gone != NULL && *gone ? -1 : 0;
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

/* A pipe to the web server: no telling whether it has room. */
static int
cgi_room(struct conn *c, size_t n)
{
	(void)c;
	(void)n;
	return 0;
}

static const struct conn_ops cgi_ops = {
	cgi_param, cgi_read, cgi_write, cgi_flush, cgi_check, cgi_nparams,
	cgi_room
};

void
conn_init_cgi(struct conn *c, const volatile int *gone)
{
	memset(c, 0, sizeof(*c));
	c->ops = &cgi_ops;
	c->impl = (void *)(uintptr_t)gone;
}
