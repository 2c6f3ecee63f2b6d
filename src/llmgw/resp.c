#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "resp.h"

const char *
resp_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Unknown";
	}
}

int
resp_head(struct conn *c, int status, const char *ctype, const char *reqid,
    const char *extra, long long clen)
{
	char	 head[512];
	int	 n;

	if (clen >= 0)
		n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
		    "Content-Type: %s\r\nContent-Length: %lld\r\n"
		    "X-Request-Id: %s\r\n", status, resp_reason(status),
		    ctype, clen, reqid);
	else
		n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
		    "Content-Type: %s\r\nX-Request-Id: %s\r\n", status,
		    resp_reason(status), ctype, reqid);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (conn_write(c, head, (size_t)n) == -1)
		return -1;
	if (extra != NULL && conn_puts(c, extra) == -1)
		return -1;
	if (c->headers != NULL && conn_puts(c, c->headers) == -1)
		return -1;
	return conn_write(c, "\r\n", 2);
}

int
resp_body(struct conn *c, int status, const char *ctype, const char *reqid,
    const char *extra, const char *body, size_t len, int head_only)
{
	if (resp_head(c, status, ctype, reqid, extra, (long long)len) == -1)
		return -1;
	if (!head_only && conn_write(c, body, len) == -1)
		return -1;
	return 0;
}
