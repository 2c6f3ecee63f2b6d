/*
 * The FastCGI protocol, strictly (fcgi.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fastcgi.h>

#include "core/str.h"
#include "fcgi.h"
#include "fcgi_impl.h"

#define MGMT_MAX	1024	/* of a GET_VALUES record kept; past it,
				 * none of its names is answered */

void
fcgi_init(struct fcgi *f, int fd, size_t body_max)
{
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->body_max = body_max;
	buf_init(&f->params, FCGI_PARAMS_MAX);
	buf_init(&f->body, body_max);
	buf_init(&f->mgmt, MGMT_MAX);
	buf_init(&f->ctl, FCGI_CTL_MAX);
	buf_init(&f->out, BUF_NOCAP);
}

void
fcgi_free(struct fcgi *f)
{
	buf_free(&f->params);
	buf_free(&f->body);
	buf_free(&f->mgmt);
	buf_free(&f->ctl);
	buf_free(&f->out);
	free(f->env);
}

/* The request's state, gone; the record being read is not touched. */
static void
forget_request(struct fcgi *f)
{
	f->state = FCGI_ST_IDLE;
	f->id = 0;
	f->keep_conn = 0;
	f->params_over = 0;
	f->nenv = 0;
	f->body_read = 0;
	f->body_state = FCGI_BODY_WHOLE;
	f->stdin_eof = 0;
	f->aborted = 0;
	buf_trim(&f->params, BUF_KEEP);
	buf_trim(&f->body, BUF_KEEP);
	buf_trim(&f->out, BUF_KEEP);
	if (f->env_cap > 64) {
		free(f->env);
		f->env = NULL;
		f->env_cap = 0;
	}
}

void
fcgi_reset(struct fcgi *f)
{
	forget_request(f);
	buf_trim(&f->mgmt, BUF_KEEP);
	buf_trim(&f->ctl, BUF_KEEP);
}

static enum fcgi_result
bad(struct fcgi *f, const char *why)
{
	str_copy(f->why, sizeof(f->why), why);
	return FCGI_BAD;
}

/*
 * A name-value pair's length at "p" (one byte, or four with the high bit
 * set), within "end": the length, with "*p" moved past it, or -1.
 */
static long
pair_len(const unsigned char **p, const unsigned char *end)
{
	const unsigned char	*q = *p;
	long			 n;

	if (q >= end)
		return -1;
	if ((*q & 0x80) == 0) {
		*p = q + 1;
		return *q;
	}
	if (end - q < 4)
		return -1;
	n = ((long)(q[0] & 0x7f) << 24) | ((long)q[1] << 16) |
	    ((long)q[2] << 8) | q[3];
	*p = q + 4;
	return n;
}

/*
 * Walk the pairs of "len" bytes at "data": each name and value, with
 * their lengths, to "fn" (which may be NULL, to check only).  Returns
 * the count of pairs, or -1 if a length does not fit in what is there.
 */
static long
walk_pairs(const unsigned char *data, size_t len,
    void (*fn)(void *, const unsigned char *, long, const unsigned char *,
    long), void *arg)
{
	const unsigned char	*p = data, *end = data + len;
	long			 nl, vl, n = 0;

	while (p < end) {
		if ((nl = pair_len(&p, end)) == -1 ||
		    (vl = pair_len(&p, end)) == -1 || nl == 0 ||
		    nl > end - p || vl > end - p - nl)
			return -1;
		if (fn != NULL)
			fn(arg, p, nl, p + nl, vl);
		p += nl + vl;
		n++;
	}
	return n;
}

/* GET_VALUES: the variables we know, each asked once, and their values. */
static void
answer_value(void *arg, const unsigned char *name, long nl,
    const unsigned char *value, long vl)
{
	static const char *const known[][2] = {
		{ FCGI_MAX_CONNS, "1000" },
		{ FCGI_MAX_REQS, "1000" },
		{ FCGI_MPXS_CONNS, "0" },
	};
	struct buf	*out = arg;
	size_t		 i, k;

	(void)value;
	(void)vl;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		k = strlen(known[i][0]);
		if ((size_t)nl != k || memcmp(name, known[i][0], k) != 0)
			continue;
		/* Asked twice: answered once. */
		if (memmem(buf_str(out), out->len, known[i][0], k) != NULL)
			return;
		if (buf_addc(out, (char)k) == -1 ||
		    buf_addc(out, (char)strlen(known[i][1])) == -1 ||
		    buf_adds(out, known[i][0]) == -1 ||
		    buf_adds(out, known[i][1]) == -1)
			return;
	}
}

/* A management record whose content is whole. */
static enum fcgi_result
management(struct fcgi *f, int type)
{
	unsigned char	 unknown[8];
	struct buf	 ans;
	int		 rc;

	if (type != FCGI_GET_VALUES) {
		memset(unknown, 0, sizeof(unknown));
		unknown[0] = (unsigned char)type;
		rc = fcgi_queue_record(f, FCGI_UNKNOWN_TYPE, 0, unknown,
		    sizeof(unknown));
	} else {
		buf_init(&ans, 256);
		/* A record too long to keep, or not pairs: no names. */
		if (f->mgmt.len < MGMT_MAX &&
		    walk_pairs((const unsigned char *)buf_str(&f->mgmt),
		    f->mgmt.len, NULL, NULL) >= 0)
			(void)walk_pairs((const unsigned char *)buf_str(
			    &f->mgmt), f->mgmt.len, answer_value, &ans);
		rc = fcgi_queue_record(f, FCGI_GET_VALUES_RESULT, 0, ans.data,
		    ans.len);
		buf_free(&ans);
	}
	buf_reset(&f->mgmt);
	return rc == -1 ? bad(f, "management records not read back") :
	    FCGI_MORE;
}

/*
 * The parameters are whole: check every length, then decode them in
 * place into strings, "name\0value\0" one after another.  A pair's two
 * lengths take two bytes at least, as many as its two NULs: the strings,
 * written from the start, never reach a byte not read yet.
 */
static enum fcgi_result
decode_params(struct fcgi *f)
{
	unsigned char	*data = (unsigned char *)(f->params.data != NULL ?
			    f->params.data : "");	/* none at all */
	const unsigned char *p = data, *end = data + f->params.len;
	unsigned char	*w = data;
	char		**env;
	long		 n, nl, vl;

	if (f->params_over)
		return FCGI_MORE;	/* fcgi_nparams() says too many */
	if ((n = walk_pairs(data, f->params.len, NULL, NULL)) == -1)
		return bad(f, "a parameter's length does not fit in the "
		    "record");
	if ((size_t)n * 2 + 1 > f->env_cap) {
		if ((env = reallocarray(f->env, (size_t)n * 2 + 1,
		    sizeof(*env))) == NULL)
			return bad(f, "out of memory for the parameters");
		f->env = env;
		f->env_cap = (size_t)n * 2 + 1;
	}
	for (f->nenv = 0; p < end; f->nenv++) {
		nl = pair_len(&p, end);
		vl = pair_len(&p, end);
		if (memchr(p, '\0', (size_t)(nl + vl)) != NULL)
			return bad(f, "a parameter holds a NUL byte");
		f->env[2 * f->nenv] = (char *)w;
		memmove(w, p, (size_t)nl);
		w += nl;
		*w++ = '\0';
		f->env[2 * f->nenv + 1] = (char *)w;
		memmove(w, p + nl, (size_t)vl);
		w += vl;
		*w++ = '\0';
		p += nl + vl;
	}
	f->env[2 * f->nenv] = NULL;
	return FCGI_MORE;
}

/* Where the content of the record just begun goes, or NULL to drop it. */
static struct buf *
content_target(struct fcgi *f)
{
	if (f->rec_id == 0)
		return f->rec_type == FCGI_GET_VALUES ? &f->mgmt : NULL;
	if (f->rec_id != f->id)
		return NULL;
	if (f->rec_type == FCGI_PARAMS && f->state == FCGI_ST_PARAMS)
		return f->params_over ? NULL : &f->params;
	if (f->rec_type == FCGI_STDIN && f->state == FCGI_ST_STDIN)
		return f->body_state == FCGI_BODY_WHOLE ? &f->body : NULL;
	return NULL;
}

/* A BEGIN_REQUEST whose body is whole ("b", 8 bytes). */
static enum fcgi_result
begin(struct fcgi *f, const unsigned char *b)
{
	int	 role = b[0] << 8 | b[1];

	if (f->rec_id == 0)
		return bad(f, "BEGIN_REQUEST with request id 0");
	if (f->state != FCGI_ST_IDLE) {
		if (f->rec_id == f->id)
			return bad(f, "BEGIN_REQUEST again for the request "
			    "in progress");
		/* Another request on this connection: one at a time. */
		return fcgi_queue_end(f, f->rec_id, 0,
		    FCGI_CANT_MPX_CONN) == -1 ?
		    bad(f, "refusals not read back") : FCGI_MORE;
	}
	if (role != FCGI_RESPONDER)
		return fcgi_queue_end(f, f->rec_id, 0,
		    FCGI_UNKNOWN_ROLE) == -1 ?
		    bad(f, "refusals not read back") : FCGI_MORE;
	f->id = f->rec_id;
	f->keep_conn = (b[2] & FCGI_KEEP_CONN) != 0;
	f->state = FCGI_ST_PARAMS;
	return FCGI_MORE;
}

/*
 * A record header is whole: check it against the state.  Returns
 * FCGI_MORE to go on reading its content, or FCGI_BAD.
 */
static enum fcgi_result
header(struct fcgi *f)
{
	const unsigned char	*h = f->hdr;

	if (h[0] != FCGI_VERSION_1)
		return bad(f, "a record of an unknown version");
	f->rec_type = h[1];
	f->rec_id = (unsigned)h[2] << 8 | h[3];
	f->content_left = (size_t)h[4] << 8 | h[5];
	f->padding_left = h[6];
	f->rec_to = NULL;
	if (f->rec_type == FCGI_BEGIN_REQUEST) {
		if (f->content_left != 8)
			return bad(f, "BEGIN_REQUEST of the wrong length");
		f->rec_to = &f->mgmt;	/* its body, kept for begin() */
		buf_reset(&f->mgmt);
		return FCGI_MORE;
	}
	if (f->rec_id == 0) {
		buf_reset(&f->mgmt);
		f->rec_to = content_target(f);
		return FCGI_MORE;
	}
	if (f->rec_id != f->id || f->state == FCGI_ST_IDLE)
		return FCGI_MORE;	/* another's, or refused: dropped */
	switch (f->rec_type) {
	case FCGI_ABORT_REQUEST:
		return FCGI_MORE;	/* acted on at its end */
	case FCGI_PARAMS:
		if (f->state != FCGI_ST_PARAMS)
			return bad(f, "PARAMS after their end");
		break;
	case FCGI_STDIN:
		if (f->state != FCGI_ST_STDIN && !(f->state == FCGI_ST_READY &&
		    !f->stdin_eof))
			return bad(f, f->state == FCGI_ST_PARAMS ? "STDIN "
			    "before the end of PARAMS" : "STDIN after its "
			    "end");
		break;
	default:
		return bad(f, "a record of a type a responder never gets");
	}
	f->rec_to = content_target(f);
	return FCGI_MORE;
}

/* The body arrived, or need not: the request is whole. */
static enum fcgi_result
ready(struct fcgi *f)
{
	f->state = FCGI_ST_READY;
	return FCGI_REQUEST;
}

/* The parameters are whole: decoded; a body too large is not waited for. */
static enum fcgi_result
params_done(struct fcgi *f)
{
	const char	*cl;
	char		*end;
	unsigned long long v;

	if (decode_params(f) == FCGI_BAD)
		return FCGI_BAD;
	f->state = FCGI_ST_STDIN;
	if (f->params_over)
		return ready(f);	/* 431; the body is not read */
	cl = fcgi_param(f, "CONTENT_LENGTH");
	if (cl != NULL && *cl != '\0') {
		errno = 0;
		v = strtoull(cl, &end, 10);
		if (errno != 0 || *end != '\0' || *cl == '-' ||
		    v > f->body_max) {
			f->body_state = FCGI_BODY_OVER;
			return ready(f);
		}
	}
	return FCGI_MORE;
}

/* A record is whole, content and padding. */
static enum fcgi_result
record_done(struct fcgi *f)
{
	int	 empty = ((size_t)f->hdr[4] << 8 | f->hdr[5]) == 0;

	if (f->rec_type == FCGI_BEGIN_REQUEST)
		return begin(f, (const unsigned char *)buf_str(&f->mgmt));
	if (f->rec_id == 0)
		return management(f, f->rec_type);
	if (f->rec_id != f->id || f->state == FCGI_ST_IDLE)
		return FCGI_MORE;
	if (f->rec_type == FCGI_ABORT_REQUEST) {
		f->aborted = 1;
		return f->state == FCGI_ST_READY ? FCGI_REQUEST : ready(f);
	}
	if (f->rec_type == FCGI_PARAMS && empty)
		return params_done(f);
	if (f->rec_type == FCGI_STDIN && empty) {
		f->stdin_eof = 1;
		return f->state == FCGI_ST_READY ? FCGI_REQUEST : ready(f);
	}
	return f->state == FCGI_ST_READY ? FCGI_REQUEST : FCGI_MORE;
}

/* "n" bytes of the current record's content at "p", to where they go. */
static enum fcgi_result
content(struct fcgi *f, const char *p, size_t n)
{
	struct buf	*to = f->rec_to;

	if (to == NULL || buf_add(to, p, n) == 0)
		return FCGI_MORE;
	/* The cap: past it, what is kept says so. */
	f->rec_to = NULL;
	if (to == &f->params) {
		f->params_over = 1;
		buf_reset(&f->params);
	} else if (to == &f->body) {
		f->body_state = FCGI_BODY_OVER;
		return ready(f);	/* 413; the rest is not read */
	} else if (to == &f->mgmt)
		buf_reset(&f->mgmt);	/* answered with no names */
	return FCGI_MORE;
}

enum fcgi_result
fcgi_parse(struct fcgi *f, const char *p, size_t n)
{
	enum fcgi_result	 rc = f->state == FCGI_ST_READY ? FCGI_REQUEST :
				    FCGI_MORE, r;
	size_t			 k;

	while (n > 0) {
		if (f->hdr_len < sizeof(f->hdr)) {
			k = sizeof(f->hdr) - f->hdr_len;
			k = k < n ? k : n;
			memcpy(f->hdr + f->hdr_len, p, k);
			f->hdr_len += k;
			p += k;
			n -= k;
			if (f->hdr_len < sizeof(f->hdr))
				break;
			if (header(f) == FCGI_BAD)
				return FCGI_BAD;
		}
		k = f->content_left < n ? f->content_left : n;
		if (k > 0 && (r = content(f, p, k)) != FCGI_MORE)
			rc = r;
		f->content_left -= k;
		p += k;
		n -= k;
		k = f->padding_left < n ? f->padding_left : n;
		f->padding_left -= k;
		p += k;
		n -= k;
		if (f->content_left > 0 || f->padding_left > 0)
			break;
		f->hdr_len = 0;
		if ((r = record_done(f)) == FCGI_BAD)
			return FCGI_BAD;
		if (r != FCGI_MORE)
			rc = r;
	}
	return rc;
}

enum fcgi_result
fcgi_read(struct fcgi *f)
{
	char			 chunk[FCGI_READ_CHUNK];
	enum fcgi_result	 rc = f->state == FCGI_ST_READY ? FCGI_REQUEST :
				    FCGI_MORE;
	ssize_t			 n;

	for (;;) {
		n = recv(f->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* While a request is served, the peer's leaving is
			 * the client's: the request ends as for an abort. */
			if (f->state == FCGI_ST_READY)
				f->aborted = 1;
			if (n == 0 || errno == ECONNRESET)
				return FCGI_CLOSED;
			snprintf(f->why, sizeof(f->why), "read: %s",
			    strerror(errno));
			return FCGI_BAD;
		}
		if ((rc = fcgi_parse(f, chunk, (size_t)n)) == FCGI_BAD)
			return FCGI_BAD;
		if (f->ctl.len > 0 && fcgi_send_ctl(f) == -1) {
			snprintf(f->why, sizeof(f->why), "write: %s",
			    strerror(errno));
			return FCGI_BAD;
		}
		/* A whole request is served before more is read. */
		if (rc == FCGI_REQUEST || (size_t)n < sizeof(chunk))
			break;
	}
	return rc;
}

enum fcgi_result
fcgi_expire(struct fcgi *f)
{
	switch (f->state) {
	case FCGI_ST_STDIN:
		f->body_state = FCGI_BODY_LATE;
		return ready(f);
	case FCGI_ST_READY:
		return FCGI_REQUEST;
	default:
		return bad(f, f->state == FCGI_ST_IDLE && f->hdr_len == 0 ?
		    "nothing came within the deadline" : "the request's "
		    "parameters did not come within the deadline");
	}
}

const char *
fcgi_param(const struct fcgi *f, const char *name)
{
	size_t	 i;

	if (f->env == NULL)
		return NULL;
	for (i = 0; i < f->nenv; i++)
		if (strcmp(f->env[2 * i], name) == 0)
			return f->env[2 * i + 1];
	return NULL;
}

size_t
fcgi_nparams(const struct fcgi *f)
{
	return f->params_over ? FCGI_PARAMS_MAX : f->nenv;
}

ssize_t
fcgi_body_read(struct fcgi *f, char *p, size_t n)
{
	size_t	 left = f->body.len - f->body_read;

	if (left == 0) {
		switch (f->body_state) {
		case FCGI_BODY_WHOLE:
			return 0;
		case FCGI_BODY_OVER:
			errno = EFBIG;
			return -1;
		case FCGI_BODY_LATE:
			errno = ETIMEDOUT;
			return -1;
		}
	}
	if (n > left)
		n = left;
	memcpy(p, f->body.data + f->body_read, n);
	f->body_read += n;
	return (ssize_t)n;
}

int
fcgi_reusable(const struct fcgi *f)
{
	return f->keep_conn && !f->aborted && f->stdin_eof &&
	    f->body_state == FCGI_BODY_WHOLE && f->state != FCGI_ST_ENDED &&
	    f->hdr_len == 0;
}
