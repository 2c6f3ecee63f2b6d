/*
 * Writing CGI responses: the head (Status and headers) and whole bodies.
 *
 * "extra" is NULL or preformatted header lines, each ending in "\r\n";
 * callers make sure no value in it holds CR or LF.
 */
#ifndef RESP_H
#define RESP_H

#include <stddef.h>

struct conn;

/* The reason phrase for "status" ("Not Found"). */
const char	*resp_reason(int status);

/*
 * Status, Content-Type, Content-Length unless "clen" is -1, X-Request-Id,
 * the extra lines, the conn's own (its key's limits), the blank line.
 */
int	 resp_head(struct conn *, int status, const char *ctype,
	    const char *reqid, const char *extra, long long clen);

/*
 * A whole response with a body of "len" bytes.  "head_only" for HEAD.
 * Queued, not flushed: it goes to the web server with the end of the
 * request, in one write (unless it is larger than libfcgi's buffer).
 */
int	 resp_body(struct conn *, int status, const char *ctype,
	    const char *reqid, const char *extra, const char *body,
	    size_t len, int head_only);

#endif /* RESP_H */
