/*
 * Server-Sent Events, both ways.
 *
 * The parser reads the upstream's event stream as it arrives, in chunks of
 * any size (libcurl hands over anything from one byte to 16 KB), and calls
 * back once per complete event, following the WHATWG rules: lines end in
 * CR, LF or CRLF; "data" lines are joined with LF; comments and unknown
 * fields are skipped; an event ends at a blank line.
 *
 * The encoder writes events for our clients: text is split on line breaks
 * so that every line becomes a "data:" line of one event, which a standard
 * SSE client joins back into exactly the text (minus CRs, which SSE
 * cannot carry).
 */
#ifndef SSE_H
#define SSE_H

#include <stddef.h>

#include "core/buf.h"

#define SSE_EVENT_NAME_MAX	64

enum sse_status {
	SSE_OK = 0,
	SSE_ETOOBIG,		/* one event exceeds the limit */
	SSE_ESTOPPED		/* the callback asked to stop */
};

/*
 * Called for each event.  "data" is NUL-terminated and valid only during
 * the call; "event" is "" when the stream named none.  Return 0 to go on,
 * -1 to stop.
 */
typedef int	(*sse_event_fn)(void *arg, const char *event,
		    const char *data, size_t len);

struct sse_parser {
	struct buf	 line;		/* a line not yet ended */
	struct buf	 data;		/* the event being built */
	char		 event[SSE_EVENT_NAME_MAX + 1];
	size_t		 max_event;
	int		 after_cr;	/* the last byte seen was CR */
	int		 has_data;
};

/* "max_event" bounds one event's size in bytes. */
void		 sse_parser_init(struct sse_parser *, size_t max_event);
void		 sse_parser_free(struct sse_parser *);
/* Forget any partial event, keeping memory: for the next stream. */
void		 sse_parser_reset(struct sse_parser *);
enum sse_status	 sse_parser_feed(struct sse_parser *, const char *, size_t,
		    sse_event_fn, void *arg);

/*
 * Append one event to "b": "event: <name>" when "event" is not NULL, a
 * "data:" line per line of the "len" bytes at "data", then a blank line.
 * Returns 0, or -1 if the buffer is full.
 */
int		 sse_encode(struct buf *b, const char *event, const char *data,
		    size_t len);

#endif /* SSE_H */
