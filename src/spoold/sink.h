/*
 * Where llmgw-spoold delivers log records.  Each sink takes a batch and
 * says how many of its records, from the first, it has accepted; the
 * consumer tracks that per record and sink, so a record another sink
 * failed on is not sent again to one that has it.
 *
 *   database rows in request_log, idempotent on the record id, on the
 *            SQLite file or PostgreSQL URI of sink_database or database
 *            ("sqlite" is its older name)
 *   webhook  HTTP POST {"batch": [...]} in llmgw's own format, for a
 *            receiver of one's own; any 2xx means delivered
 *   otlp     one span per record, OTLP/HTTP JSON to .../v1/traces
 *   langfuse the same spans with Langfuse v4's attributes, to a Langfuse
 *            server's OTLP endpoint
 *   jsonl    one JSON line per record, appended to a file or stdout
 *   usage    the record's usage row, if llmgw did not write it; always
 *            the first, not configured
 */
#ifndef SINK_H
#define SINK_H

#include <stddef.h>

struct conf;
struct err;
struct record;
struct sink;

struct delivery {
	const char		*json;	/* the record as spooled */
	size_t			 len;
	const struct record	*rec;	/* the same, read */
};

/* Open the sink called "name" with settings from "conf" (borrowed). */
struct sink	*sink_open(const char *name, const struct conf *,
		    struct err *);
void		 sink_close(struct sink *);	/* NULL is fine */

/* Why a sink did not take a record. */
enum sink_refusal {
	SINK_FAILED,	/* it could not now: try again later */
	SINK_INVALID,	/* the receiver refuses this record as invalid:
			 * sending it again cannot help */
	SINK_DENIED	/* the receiver refuses our credentials: keep it,
			 * and try again once they may have been mended */
};

/*
 * Deliver "n" records.  Returns how many, from the first, were accepted;
 * if fewer than "n", "err" says why the next one was not and "why" what
 * kind of refusal that was.
 */
size_t		 sink_deliver(struct sink *, const struct delivery *, size_t n,
		    enum sink_refusal *why, struct err *);

#endif /* SINK_H */
