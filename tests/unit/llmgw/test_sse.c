#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "llmgw/sse.h"
#include "../tap.h"

static struct buf	 seen;	/* "event|data;" per event */
static int		 stop_after = -1, nevents;

static int
record(void *arg, const char *event, const char *data, size_t len)
{
	(void)arg;
	if (buf_adds(&seen, event) == -1 || buf_addc(&seen, '|') == -1 ||
	    buf_add(&seen, data, len) == -1 || buf_addc(&seen, ';') == -1)
		abort();
	return ++nevents == stop_after ? -1 : 0;
}

/* Feed "s" in pieces of "chunk" bytes; return what was seen. */
static const char *
feed(const char *s, size_t chunk, enum sse_status *st)
{
	struct sse_parser	 p;
	size_t			 n = strlen(s), i, k;
	enum sse_status		 rc = SSE_OK;

	buf_reset(&seen);
	nevents = 0;
	sse_parser_init(&p, 64);
	for (i = 0; i < n && rc == SSE_OK; i += k) {
		k = n - i < chunk ? n - i : chunk;
		rc = sse_parser_feed(&p, s + i, k, record, NULL);
	}
	sse_parser_free(&p);
	if (st != NULL)
		*st = rc;
	return buf_str(&seen);
}

int
main(void)
{
	const char	*stream = "event: message_start\ndata: {\"a\":1}\n\n"
	    ": a comment\nevent: ping\ndata: {}\n\n"
	    "data: line one\ndata: line two\n\n"
	    "data:no space\r\n\r\n"
	    "id: 7\nretry: 10\ndata:  two spaces\rdata\r\r"
	    "event: lonely\n\n"
	    "data: last\n\n";
	const char	*want = "message_start|{\"a\":1};ping|{};"
	    "|line one\nline two;|no space;| two spaces\n;|last;";
	struct buf	 b;
	enum sse_status	 st;
	size_t		 chunk;
	int		 all_same = 1;
	char		 big[200];

	buf_init(&seen, 0);
	is_str(feed(stream, 4096, NULL), want, "whole stream at once");
	for (chunk = 1; chunk < 64; chunk++)
		if (strcmp(feed(stream, chunk, NULL), want) != 0) {
			all_same = 0;
			diag("chunk %zu: %s", chunk, buf_str(&seen));
		}
	ok(all_same, "the same events for every chunk size from 1 to 63");

	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);
	big[sizeof(big) - 3] = '\n';
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	feed(big, 7, &st);
	is_int(st, SSE_ETOOBIG, "an event over the limit is refused");

	stop_after = 1;
	feed(stream, 5, &st);
	is_int(st, SSE_ESTOPPED, "the callback can stop the parser");
	stop_after = -1;

	buf_init(&b, 0);
	sse_encode(&b, NULL, "hello", 5);
	is_str(buf_str(&b), "data: hello\n\n", "one line");
	buf_reset(&b);
	sse_encode(&b, NULL, "a\nb", 3);
	is_str(buf_str(&b), "data: a\ndata: b\n\n",
	    "each line gets its own data field");
	buf_reset(&b);
	sse_encode(&b, NULL, "line0\n\nnext0\n", 13);
	is_str(buf_str(&b), "data: line0\ndata: \ndata: next0\ndata: \n\n",
	    "blank lines and a trailing newline survive");
	is_str(feed(buf_str(&b), 3, NULL), "|line0\n\nnext0\n;",
	    "and decode back to exactly the text");
	buf_reset(&b);
	sse_encode(&b, NULL, "a\r\nb\rc", 6);
	is_str(buf_str(&b), "data: a\ndata: b\ndata: c\n\n",
	    "CRLF and CR break lines too");
	buf_reset(&b);
	sse_encode(&b, "error", " {\"x\":1}", 8);
	is_str(buf_str(&b), "event: error\ndata:  {\"x\":1}\n\n",
	    "named event; a leading space is kept");
	buf_free(&b);
	buf_free(&seen);
	return done_testing();
}
