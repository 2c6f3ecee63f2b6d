/* The FastCGI reader and writer, over a socketpair, whatever the peer sends. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fastcgi.h>

#include "llmgw/fcgi.h"
#include "../tap.h"

static int	 peer;		/* the web server's end */

/* A record: header and content, no padding unless "pad". */
static size_t
rec(unsigned char *out, int version, int type, unsigned id, const void *c,
    size_t len, int pad)
{
	out[0] = (unsigned char)version;
	out[1] = (unsigned char)type;
	out[2] = (unsigned char)(id >> 8);
	out[3] = (unsigned char)id;
	out[4] = (unsigned char)(len >> 8);
	out[5] = (unsigned char)len;
	out[6] = (unsigned char)pad;
	out[7] = 0;
	memcpy(out + 8, c, len);
	memset(out + 8 + len, 0xee, (size_t)pad);
	return 8 + len + (size_t)pad;
}

/* A name-value pair; long lengths as four bytes. */
static size_t
pair(unsigned char *out, const char *n, const char *v)
{
	size_t	 nl = strlen(n), vl = strlen(v), k = 0;

	if (nl < 128)
		out[k++] = (unsigned char)nl;
	else {
		out[k++] = (unsigned char)(0x80 | nl >> 24);
		out[k++] = (unsigned char)(nl >> 16);
		out[k++] = (unsigned char)(nl >> 8);
		out[k++] = (unsigned char)nl;
	}
	if (vl < 128)
		out[k++] = (unsigned char)vl;
	else {
		out[k++] = (unsigned char)(0x80 | vl >> 24);
		out[k++] = (unsigned char)(vl >> 16);
		out[k++] = (unsigned char)(vl >> 8);
		out[k++] = (unsigned char)vl;
	}
	memcpy(out + k, n, nl);
	memcpy(out + k + nl, v, vl);
	return k + nl + vl;
}

static size_t
begin(unsigned char *out, unsigned id, int role, int flags)
{
	unsigned char	 b[8] = { (unsigned char)(role >> 8),
	    (unsigned char)role, (unsigned char)flags, 0, 0, 0, 0, 0 };

	return rec(out, 1, FCGI_BEGIN_REQUEST, id, b, 8, 0);
}

/* A whole request: BEGIN, the pairs "env", the body. */
static size_t
request(unsigned char *out, unsigned id, const char *const *env,
    const char *body, int keep)
{
	unsigned char	 params[4096];
	size_t		 n = 0, p = 0;

	n += begin(out, id, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	for (; *env != NULL; env += 2)
		p += pair(params + p, env[0], env[1]);
	n += rec(out + n, 1, FCGI_PARAMS, id, params, p, 3);
	n += rec(out + n, 1, FCGI_PARAMS, id, "", 0, 0);
	if (body[0] != '\0')
		n += rec(out + n, 1, FCGI_STDIN, id, body, strlen(body), 0);
	n += rec(out + n, 1, FCGI_STDIN, id, "", 0, 0);
	return n;
}

/* What the peer has been sent, without waiting. */
static size_t
peer_got(unsigned char *out, size_t size)
{
	ssize_t	 n = recv(peer, out, size, MSG_DONTWAIT);

	return n > 0 ? (size_t)n : 0;
}

static void
fresh(struct fcgi *f, size_t body_max)
{
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	peer = sv[0];
	fcgi_init(f, sv[1], body_max);
}

static void
done(struct fcgi *f)
{
	close(f->fd);
	close(peer);
	fcgi_free(f);
}

static void
a_request(void)
{
	static const char *const env[] = { "REQUEST_METHOD", "POST",
	    "PATH_INFO", "/chat", "CONTENT_LENGTH", "4", NULL };
	unsigned char	 b[8192], got[512];
	struct fcgi	 f;
	char		 body[16];
	size_t		 n, i;
	enum fcgi_result rc = FCGI_MORE;

	fresh(&f, 100);
	n = request(b, 7, env, "abcd", 1);
	for (i = 0; i < n && rc == FCGI_MORE; i++)
		rc = fcgi_parse(&f, (const char *)b + i, 1);
	ok(rc == FCGI_REQUEST && i == n, "a request fed a byte at a time is "
	    "whole at its last byte");
	is_str(fcgi_param(&f, "PATH_INFO"), "/chat", "its parameters");
	is_int(fcgi_nparams(&f), 3, "three of them");
	ok(fcgi_param(&f, "HTTP_X") == NULL, "no others");
	ok(fcgi_body_read(&f, body, sizeof(body)) == 4 &&
	    memcmp(body, "abcd", 4) == 0, "its body");
	is_int(fcgi_body_read(&f, body, sizeof(body)), 0, "then its end");
	ok(fcgi_out(&f, "Status: 200\r\n\r\nhi", 17) == 0 &&
	    fcgi_end(&f, 0) == 0, "answered");
	n = peer_got(got, sizeof(got));
	ok(n == 8 + 17 + 8 + 16 && got[1] == FCGI_STDOUT && got[3] == 7 &&
	    got[5] == 17 && got[26] == FCGI_STDOUT && got[29] == 0 &&
	    got[34] == FCGI_END_REQUEST && got[41 + 4] == 0,
	    "STDOUT, its end and END_REQUEST for id 7, in one write");
	ok(fcgi_reusable(&f), "a kept connection serves another");
	fcgi_reset(&f);
	n = request(b, 1, env, "wxyz", 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST &&
	    fcgi_body_read(&f, body, 8) == 4 && memcmp(body, "wxyz", 4) == 0,
	    "the next request on it");
	ok(fcgi_end(&f, 0) == 0 && !fcgi_reusable(&f), "without keep-conn, "
	    "not again");
	done(&f);
}

static void
lies(void)
{
	static unsigned char	 b[400000], v[65535];
	unsigned char		 p[64];
	struct fcgi		 f;
	size_t			 n, k;

	fresh(&f, 100);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	/* A name length of 2 GB, in a record of 10 bytes. */
	p[0] = 0xff; p[1] = 0xff; p[2] = 0xff; p[3] = 0xff; p[4] = 1;
	memcpy(p + 5, "ABCDE", 5);
	n += rec(b + n, 1, FCGI_PARAMS, 1, p, 10, 0);
	n += rec(b + n, 1, FCGI_PARAMS, 1, "", 0, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "a name length of 2 GB: refused, nothing allocated for it");
	done(&f);

	fresh(&f, 100);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	k = pair(p, "NAME", "value");
	p[1] = 40;	/* the value says 40, 5 follow */
	n += rec(b + n, 1, FCGI_PARAMS, 1, p, k, 0);
	n += rec(b + n, 1, FCGI_PARAMS, 1, "", 0, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "a value longer than what came: refused");
	done(&f);

	fresh(&f, 100);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	n += rec(b + n, 1, FCGI_PARAMS, 1, "\x03\x01" "A\0Bx", 6, 0);
	n += rec(b + n, 1, FCGI_PARAMS, 1, "", 0, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "a NUL in a name: refused");
	done(&f);

	fresh(&f, 100);
	n = rec(b, 2, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0\0", 8, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "version 2: refused");
	done(&f);

	fresh(&f, 100);
	n = begin(b, 0, FCGI_RESPONDER, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "BEGIN_REQUEST for id 0: refused");
	done(&f);

	fresh(&f, 100);
	n = rec(b, 1, FCGI_BEGIN_REQUEST, 1, "\0\1\0", 3, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "BEGIN_REQUEST of 3 bytes: refused");
	done(&f);

	fresh(&f, 100);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	n += rec(b + n, 1, FCGI_STDOUT, 1, "x", 1, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "STDOUT from the web server: refused");
	done(&f);

	/* Parameters past FCGI_PARAMS_MAX: whole, but too many. */
	fresh(&f, 100);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	memset(v, 'v', sizeof(v));
	for (k = 0; k < 5; k++)
		n += rec(b + n, 1, FCGI_PARAMS, 1, v, sizeof(v), 255);
	n += rec(b + n, 1, FCGI_PARAMS, 1, "", 0, 0);
	n += rec(b + n, 1, FCGI_STDIN, 1, "", 0, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST &&
	    fcgi_nparams(&f) > 1000 && f.params.len == 0,
	    "327 KB of parameters: kept none, counted as too many (431)");
	done(&f);
}

static void
others(void)
{
	static const char *const env[] = { "REQUEST_METHOD", "GET", NULL };
	unsigned char	 b[8192], got[512], p[512];
	struct fcgi	 f;
	size_t		 n, k, i;

	/* libfcgi formats its answer into 64 bytes however many names. */
	fresh(&f, 100);
	for (k = i = 0; i < 8; i++)
		k += pair(p + k, FCGI_MAX_CONNS, "");
	k += pair(p + k, FCGI_MPXS_CONNS, "");
	k += pair(p + k, "NOT_OURS", "");
	n = rec(b, 1, FCGI_GET_VALUES, 0, p, k, 5);
	is_int(fcgi_read(&f), FCGI_MORE, "nothing yet");
	if (write(peer, b, n) != (ssize_t)n)
		abort();
	is_int(fcgi_read(&f), FCGI_MORE, "GET_VALUES: no request");
	n = peer_got(got, sizeof(got));
	ok(n > 8 && got[1] == FCGI_GET_VALUES_RESULT &&
	    (size_t)(got[4] << 8 | got[5]) == n - 8 &&
	    memmem(got + 8, n - 8, FCGI_MPXS_CONNS "0", 16) != NULL &&
	    memmem(got + 8 + 20, n - 28, FCGI_MAX_CONNS, 14) == NULL,
	    "answered: each name once, ours only (%zu bytes)", n);
	n = rec(b, 1, 42, 0, "", 0, 0);
	if (write(peer, b, n) != (ssize_t)n)
		abort();
	ok(fcgi_read(&f) == FCGI_MORE && peer_got(got, sizeof(got)) == 16 &&
	    got[1] == FCGI_UNKNOWN_TYPE && got[8] == 42,
	    "an unknown management record: UNKNOWN_TYPE");

	n = begin(b, 2, FCGI_AUTHORIZER, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_MORE &&
	    f.ctl.len == 16 && f.ctl.data[1] == FCGI_END_REQUEST &&
	    f.ctl.data[12] == FCGI_UNKNOWN_ROLE, "another role: refused");
	buf_reset(&f.ctl);
	n = request(b, 3, env, "", 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_REQUEST,
	    "then a request");
	n = begin(b, 4, FCGI_RESPONDER, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST &&
	    f.ctl.len == 16 && f.ctl.data[3] == 4 &&
	    f.ctl.data[12] == FCGI_CANT_MPX_CONN,
	    "a second request while it is served: CANT_MPX_CONN");
	n = rec(b, 1, FCGI_PARAMS, 4, "\1\1ab", 4, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_REQUEST,
	    "its records are dropped");
	ok(!f.aborted, "not aborted yet");
	n = rec(b, 1, FCGI_ABORT_REQUEST, 3, "", 0, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST && f.aborted,
	    "ABORT_REQUEST: the request is aborted");
	ok(fcgi_out(&f, "x", 1) == -1, "and answers go nowhere");
	n = begin(b, 3, FCGI_RESPONDER, 0);
	is_int(fcgi_parse(&f, (const char *)b, n), FCGI_BAD,
	    "BEGIN_REQUEST again for it: refused");
	done(&f);

	fresh(&f, 100);
	n = begin(b, 5, FCGI_RESPONDER, 0);
	n += rec(b + n, 1, FCGI_PARAMS, 5, "", 0, 0);
	n += rec(b + n, 1, FCGI_ABORT_REQUEST, 5, "", 0, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST && f.aborted,
	    "ABORT_REQUEST before the body ended: aborted");
	done(&f);
}

static void
bodies(void)
{
	static const char *const big[] = { "CONTENT_LENGTH", "1000", NULL };
	static const char *const none[] = { "X", "1", NULL };
	unsigned char	 b[8192];
	struct fcgi	 f;
	char		 body[64];
	size_t		 n;

	fresh(&f, 10);
	n = request(b, 1, big, "", 0);
	ok(fcgi_parse(&f, (const char *)b, n - 8) == FCGI_REQUEST &&
	    f.body_state == FCGI_BODY_OVER, "Content-Length past the cap: "
	    "whole at once, the body not waited for");
	ok(fcgi_body_read(&f, body, 1) == -1 && errno == EFBIG,
	    "reading it says too big");
	ok(!fcgi_reusable(&f), "and the connection is not kept");
	done(&f);

	fresh(&f, 10);
	n = request(b, 1, none, "0123456789abcdef", 1);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_REQUEST &&
	    f.body_state == FCGI_BODY_OVER && f.body.len <= 10,
	    "a body past the cap with no Content-Length: cut");
	done(&f);

	fresh(&f, 10);
	n = request(b, 1, none, "abc", 1);
	ok(fcgi_parse(&f, (const char *)b, n - 8) == FCGI_MORE &&
	    fcgi_expire(&f) == FCGI_REQUEST, "a body late: whole, cut short");
	ok(fcgi_body_read(&f, body, sizeof(body)) == 3 &&
	    fcgi_body_read(&f, body, sizeof(body)) == -1 &&
	    errno == ETIMEDOUT, "what came, then late");
	done(&f);

	fresh(&f, 10);
	n = begin(b, 1, FCGI_RESPONDER, 0);
	ok(fcgi_parse(&f, (const char *)b, n) == FCGI_MORE &&
	    fcgi_expire(&f) == FCGI_BAD, "parameters late: refused");
	done(&f);
}

static void
output(void)
{
	static const char *const env[] = { "A", "b", NULL };
	unsigned char	 b[512], *got;
	struct fcgi	 f;
	char		*big;
	size_t		 n, total = 0, content = 0, want = 200000;
	ssize_t		 r;

	fresh(&f, 10);
	n = request(b, 9, env, "", 0);
	if (fcgi_parse(&f, (const char *)b, n) != FCGI_REQUEST ||
	    (big = malloc(want)) == NULL || (got = malloc(want + 100)) ==
	    NULL)
		abort();
	memset(big, 'x', want);
	ok(fcgi_out(&f, big, want) == 0 && fcgi_flush(&f) == 0,
	    "200 KB sent");
	while (total < want + 4 * 8 && (r = recv(peer, got + total,
	    want + 100 - total, 0)) > 0)
		total += (size_t)r;
	for (n = 0; n + 8 <= total; n += 8 + (size_t)(got[n + 4] << 8 |
	    got[n + 5]))
		content += (size_t)(got[n + 4] << 8 | got[n + 5]);
	ok(content == want && n == total, "as STDOUT records of at most 64 KB "
	    "(%zu bytes in %zu)", content, total);
	fcgi_end(&f, 0);
	free(big);
	free(got);
	close(peer);
	peer = -1;
	ok(fcgi_out(&f, "x", 1) == 0 && fcgi_flush(&f) == -1,
	    "a peer gone: a write fails");
	close(f.fd);
	fcgi_free(&f);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* as llmgw does */
	a_request();
	lies();
	others();
	bodies();
	output();
	return done_testing();
}
