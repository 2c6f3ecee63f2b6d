/*
 * The log record of one request: what the usage table stores, what the
 * spool carries to llmgw-spoold, and what its sinks deliver.  In the spool
 * it is one JSON object (see record_to_json() for the fields); reading it
 * back checks every field, since a spool file may have been damaged.
 */
#ifndef RECORD_H
#define RECORD_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct err;

#define RECORD_ID_MAX		64

struct record {
	char		 id[RECORD_ID_MAX + 1];	/* unique per record */
	char		 request_id[RECORD_ID_MAX + 1];	/* X-Request-Id */
	int64_t		 ts_ms;		/* Unix ms when the request came */
	int64_t		 end_ms;	/* Unix ms when its response ended */
	char		 key[RECORD_ID_MAX + 1];	/* "static", a key id, or
						 * "" when not authenticated */
	char		 route[32];
	char		 model[129];	/* "" when not known */
	int		 status;	/* HTTP status sent; 499: client left */
	long		 input_tokens;
	long		 output_tokens;
	long		 cache_creation_input_tokens;
	long		 cache_read_input_tokens;
	long		 ttft_ms;	/* -1: no token was sent */
	long		 total_ms;
	int		 disconnected;	/* the client went away */
	int		 partial;	/* the reply did not complete */
	int		 retries;
	int		 upstream;	/* the request reached the upstream */
	int		 budget_exhausted;	/* ended: the key's budget was
						 * spent while it ran */
	long		 upstream_status;	/* 0: no HTTP answer */
	char		 upstream_error[256];	/* "": none */
	char		 upstream_request_id[128];
	long		 max_tokens;	/* asked for; 0: not known */
	char		 response_id[128];	/* the reply's id, or "" */
	char		 finish_reason[32];	/* its stop_reason, or "" */
	char		 trace_id[33];	/* the client's traceparent: its
					 * trace, 32 hex digits, or "" */
	char		 parent_span_id[17];	/* ... its span, 16, or "" */
	long		 prompt_bytes;	/* log_content metadata or full;
					 * -1: not recorded */
	long		 reply_bytes;	/* ... the reply text's size */
	/* Message texts, only with log_content = full; borrowed, may be
	 * NULL. */
	const char	*prompt;
	size_t		 prompt_len;
	const char	*reply;
	size_t		 reply_len;
};

/* Append the record as one JSON object.  0, or -1 if the buffer is full. */
int	 record_to_json(const struct record *, struct buf *);

/*
 * Read a record back from "len" bytes of JSON.  Returns 0, or -1 with
 * "err" saying what is wrong (nothing is trusted: a spool file may be
 * truncated or garbage).  prompt and reply are not read back.
 */
int	 record_from_json(const char *, size_t len, struct record *,
	    struct err *);

/* 1 if "s" can be a record id: 1 to 64 of [A-Za-z0-9._-]. */
int	 record_id_valid(const char *s);

#endif /* RECORD_H */
