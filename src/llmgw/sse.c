#include "config.h"

#include <string.h>

#include "sse.h"

void
sse_parser_init(struct sse_parser *p, size_t max_event)
{
	buf_init(&p->line, max_event + 2);
	buf_init(&p->data, max_event + 2);
	p->max_event = max_event;
	sse_parser_reset(p);
}

void
sse_parser_reset(struct sse_parser *p)
{
	buf_reset(&p->line);
	buf_reset(&p->data);
	p->event[0] = '\0';
	p->after_cr = 0;
	p->has_data = 0;
}

void
sse_parser_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
}

/* Handle one whole line (without its ending). */
static enum sse_status
sse_line(struct sse_parser *p, const char *s, size_t n, sse_event_fn fn,
    void *arg)
{
	const char	*colon, *value;
	size_t		 flen, vlen;
	int		 rc;

	if (n == 0) {
		/* Blank line: dispatch, unless no data came. */
		if (p->has_data) {
			if (p->data.len > 0)	/* the last LF is not data */
				p->data.data[--p->data.len] = '\0';
			rc = fn(arg, p->event, buf_str(&p->data), p->data.len);
			buf_reset(&p->data);
			p->event[0] = '\0';
			p->has_data = 0;
			if (rc != 0)
				return SSE_ESTOPPED;
		} else
			p->event[0] = '\0';
		return SSE_OK;
	}
	if (s[0] == ':')
		return SSE_OK;		/* comment */
	if ((colon = memchr(s, ':', n)) != NULL) {
		flen = (size_t)(colon - s);
		value = colon + 1;
		vlen = n - flen - 1;
		if (vlen > 0 && *value == ' ') {
			value++;
			vlen--;
		}
	} else {
		flen = n;
		value = s + n;
		vlen = 0;
	}
	if (flen == 4 && memcmp(s, "data", 4) == 0) {
		if (buf_add(&p->data, value, vlen) == -1 ||
		    buf_addc(&p->data, '\n') == -1 ||
		    p->data.len > p->max_event + 1)
			return SSE_ETOOBIG;
		p->has_data = 1;
	} else if (flen == 5 && memcmp(s, "event", 5) == 0) {
		if (vlen > SSE_EVENT_NAME_MAX)
			vlen = SSE_EVENT_NAME_MAX;	/* not one we know */
		memcpy(p->event, value, vlen);
		p->event[vlen] = '\0';
	}
	/* "id", "retry" and unknown fields mean nothing to us. */
	return SSE_OK;
}

enum sse_status
sse_parser_feed(struct sse_parser *p, const char *s, size_t n,
    sse_event_fn fn, void *arg)
{
	const char	*end = s + n, *eol;
	enum sse_status	 st;

	while (s < end) {
		if (p->after_cr) {
			p->after_cr = 0;
			if (*s == '\n') {	/* the LF of a CRLF */
				s++;
				continue;
			}
		}
		for (eol = s; eol < end && *eol != '\n' && *eol != '\r'; eol++)
			;
		if (eol == end) {
			/* No line end yet: keep the piece for later. */
			if (buf_add(&p->line, s, (size_t)(end - s)) == -1)
				return SSE_ETOOBIG;
			return SSE_OK;
		}
		if (p->line.len > 0) {
			if (buf_add(&p->line, s, (size_t)(eol - s)) == -1)
				return SSE_ETOOBIG;
			st = sse_line(p, p->line.data, p->line.len, fn, arg);
			buf_reset(&p->line);
		} else
			st = sse_line(p, s, (size_t)(eol - s), fn, arg);
		if (st != SSE_OK)
			return st;
		p->after_cr = *eol == '\r';
		s = eol + 1;
	}
	return SSE_OK;
}

int
sse_encode(struct buf *b, const char *event, const char *data, size_t len)
{
	const char	*end = data + len, *eol;

	if (event != NULL && (buf_adds(b, "event: ") == -1 ||
	    buf_adds(b, event) == -1 || buf_addc(b, '\n') == -1))
		return -1;
	for (;;) {
		for (eol = data; eol < end && *eol != '\n' && *eol != '\r';
		    eol++)
			;
		if (buf_add(b, "data: ", 6) == -1 ||
		    buf_add(b, data, (size_t)(eol - data)) == -1 ||
		    buf_addc(b, '\n') == -1)
			return -1;
		if (eol == end)
			break;
		if (*eol == '\r' && eol + 1 < end && eol[1] == '\n')
			eol++;
		data = eol + 1;
	}
	return buf_addc(b, '\n');
}
