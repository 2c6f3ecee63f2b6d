/*
 * The W3C Trace Context "traceparent" header a client may send, so that
 * its own trace goes on through llmgw: the record carries the client's
 * trace id and its span as the parent of llmgw's.
 * https://www.w3.org/TR/trace-context/#traceparent-header
 */
#ifndef TRACEPARENT_H
#define TRACEPARENT_H

#define TRACE_ID_HEX	32
#define SPAN_ID_HEX	16

/*
 * Read "value" (NULL: no header).  If it is a valid traceparent, its
 * trace id and parent id go to "trace_id" and "span_id" (lower-case hex,
 * NUL-terminated) and 0 is returned; otherwise both are "" and -1 is
 * returned, and the request starts a trace of its own, as the standard
 * says a receiver does with a header it cannot read.
 */
int	 traceparent_parse(const char *value,
	    char trace_id[TRACE_ID_HEX + 1], char span_id[SPAN_ID_HEX + 1]);

#endif /* TRACEPARENT_H */
