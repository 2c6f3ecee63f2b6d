/*
 * The Anthropic Messages API's formats: the request body we send, the
 * events of a streamed reply, a whole reply, and error bodies.  No I/O
 * here; upstream.c moves the bytes.
 */
#ifndef ANTHROPIC_H
#define ANTHROPIC_H

#include <stddef.h>

struct buf;

struct anthropic_usage {
	long	 input_tokens;
	long	 output_tokens;
	long	 cache_creation_input_tokens;
	long	 cache_read_input_tokens;
};

#define ANTHROPIC_ERR_TYPE_MAX	64
#define ANTHROPIC_ERR_MSG_MAX	256

struct anthropic_error {
	char	 type[ANTHROPIC_ERR_TYPE_MAX];	/* "overloaded_error" */
	char	 message[ANTHROPIC_ERR_MSG_MAX];
};

/*
 * Append the JSON body of a one-message request (with "max_tokens" 0,
 * the body count_tokens takes).  Returns 0, or -1 if the buffer is full.
 */
int	 anthropic_request(struct buf *, const char *model, long max_tokens,
	    const char *message, size_t message_len, int stream);

/* What one streamed event meant. */
enum anthropic_event {
	AEV_IGNORED = 0,	/* ping, block start/stop, other deltas */
	AEV_START,		/* message_start: input usage known */
	AEV_TOOL_USE,		/* a server tool's use begins */
	AEV_TEXT,		/* a text delta */
	AEV_USAGE,		/* message_delta: output usage */
	AEV_STOP,		/* message_stop: the reply is complete */
	AEV_ERROR,		/* an error event; "err" filled */
	AEV_MALFORMED		/* not JSON, or not the shape we know */
};

/*
 * The state of one streamed reply, updated event by event.  Usage only
 * grows: message_delta's output_tokens is cumulative, and its
 * input_tokens, when it has them, count what server tools brought in.
 */
struct anthropic_stream {
	struct anthropic_usage	 usage;
	struct anthropic_error	 err;
	long			 deltas;	/* text deltas seen */
	long			 server_tool_uses;	/* ... uses begun */
	int			 input_final;	/* message_delta gave the input,
						 * server tools' included */
	int			 started;	/* message_start seen */
	int			 stopped;	/* message_stop seen */
	char			 stop_reason[32];
	char			 message_id[128];	/* "msg_...", or "" */
};

typedef int	(*anthropic_text_fn)(void *arg, const char *text, size_t len);

/*
 * The text of a content_block_delta event of type text_delta, written as
 * the API writes it, decoded into "text" (at most "size" bytes; no NUL
 * added): 1 with "*text_len" set, or 0 for anything else (another event,
 * keys in another order, a \u escape, more text than "size"), which is
 * then for a JSON parser to read.  It reads only what a parser would read
 * the same way.
 */
#define ANTHROPIC_FAST_TEXT	1024
int	 anthropic_text_delta(const char *data, size_t len, char *text,
	    size_t size, size_t *text_len);

/*
 * Interpret one SSE event of a streamed reply.  For a text delta, "fn" is
 * called with the text (valid during the call); its -1 is passed back as
 * -1.  Otherwise returns the kind of event.
 */
int	 anthropic_stream_event(struct anthropic_stream *, const char *data,
	    size_t len, anthropic_text_fn fn, void *arg);

/*
 * Read a whole (non-streamed) reply: the text of all text blocks joined,
 * appended to "text"; its usage, stop reason and id into "st" as the
 * events of a stream would leave them.  Returns 0 or -1 if malformed.
 */
int	 anthropic_parse_reply(const char *body, size_t len, struct buf *text,
	    struct anthropic_stream *st);

/*
 * Read an error body {"type":"error","error":{"type":..,"message":..}}.
 * Returns 0, or -1 (with "err" holding a generic description) if the body
 * is not of that shape.
 */
int	 anthropic_parse_error(const char *body, size_t len,
	    struct anthropic_error *err);

/* The Messages API's error type for an HTTP status ("rate_limit_error"). */
const char	*anthropic_error_type(int status);

/*
 * The Messages API's error body for HTTP "status", appended to "b":
 * {"type":"error","error":{"type":..,"message":..}}.  0 or -1.
 */
int		 anthropic_error_body(struct buf *b, int status,
		    const char *message);

#endif /* ANTHROPIC_H */
