/*
 * The chat engine: what every route that calls the Messages API does.
 * It authenticates the client (the static token or a key), holds what the
 * request can cost of the key's budget, calls the upstream (again, while
 * nothing has been sent and a failure is worth it), relays a stream event
 * by event or a whole reply, answers a failure, and writes the request's
 * record.  A route says what differs in a table of hooks (struct
 * chat_hooks): how it reads its request and what it sends upstream, and
 * the shape of its answers, events and errors.  lighttpd's mod_fastcgi
 * over gw_backend is the model: the protocol thin, the engine shared.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/keys.h"
#include "anthropic.h"
#include "meter.h"
#include "openai.h"
#include "request.h"
#include "upstream.h"
#include "verdict.h"

struct chat;
struct req;
struct scratch;

struct chat_hooks {
	/* A header whose whole value is the client's token, looked at
	 * before Authorization: Bearer ("HTTP_X_API_KEY"); NULL: none. */
	const char	*token_param;
	/* Pass the upstream's request-id header on to the client. */
	int		 pass_request_id;
	/* Header lines ("Name: value\r\n") a stream's head carries too;
	 * NULL: none. */
	const char	*stream_headers;
	/* Answer an error, in the route's shape. */
	void	(*error)(struct chat *, int status, const char *extra,
		    const char *detail);
	/*
	 * Read and check the request (chat_read_body() reads the body),
	 * fill ch->req (the model, max_tokens and the message's length
	 * bound what the request can cost) and point ch->body at what goes
	 * upstream.  0, or -1 after answering.
	 */
	int	(*prepare)(struct chat *);
	/* The body count_tokens takes for this request, appended to "b":
	 * 0, or -1 if out of memory. */
	int	(*count_body)(struct chat *, struct buf *b);
	/* A text delta of a streamed reply: 0, or -1 if the client is
	 * gone (chat_send() says so). */
	int	(*text)(struct chat *, const char *text, size_t len);
	/* Each event of a streamed reply once the engine has read it
	 * ("kind": enum anthropic_event; AEV_ERROR before the engine stops
	 * the transfer).  0 or -1, as "text".  May be NULL. */
	int	(*event)(struct chat *, int kind, const char *event,
		    const char *data, size_t len);
	/* The stream ended well: its end, queued, not flushed (it goes
	 * with the end of the request, after the record). */
	void	(*stream_end)(struct chat *);
	/* The stream failed once it had begun: an error event. */
	void	(*stream_error)(struct chat *, const struct verdict *);
	/* A whole reply came: the answer (status 200).  0, or -1 if the
	 * client is gone. */
	int	(*reply)(struct chat *);
	/* The call failed before anything was sent: the answer. */
	void	(*http_error)(struct chat *, const struct verdict *);
};

/* Everything about one chat request while it runs. */
struct chat {
	struct req		*rq;
	struct scratch		*w;		/* the worker's buffers */
	const struct chat_hooks	*hooks;
	struct chat_req		 req;
	int			 stream;	/* the reply is SSE */
	const struct buf	*body;		/* what goes upstream */
	const char		*version;	/* its anthropic-version, or
						 * NULL: the configured one */
	const char		*beta;		/* its anthropic-beta, or NULL */
	struct key		 key;		/* who asks; id "static" for the
						 * static token, "" for nobody */
	int			 keyed;		/* a key from the key table */
	int64_t			 db_deadline;	/* monotonic: its database
						 * waits end then */
	struct meter		 meter;		/* its cost against its hold */
	char			 limits[320];	/* x-ratelimit-* lines of its
						 * key (rq->conn->headers) */
	struct openai_stream	 openai;	/* /v1/chat/completions' stream,
						 * translated so far */
	struct upstream_result	 res;		/* the last attempt's */
	struct anthropic_stream	 st;		/* ... and its events */
	enum stop_reason	 stop;		/* why we stopped it */
	int			 called;	/* the upstream was asked */
	int			 retries;
	int			 head_sent;	/* SSE head went out */
	int			 began;		/* the route's: its own stream
						 * framing began */
	int64_t			 ttft_ms;	/* -1 until the first token */
	int64_t			 last_write_ms;	/* for keep-alives */
	int			 batching;	/* events of one read of the
						 * upstream: sent at its end */
	int			 unsent;	/* ... and some wait */
	struct buf		 text;		/* the reply's text, for
						 * log_content = full */
	int			 text_cut;	/* ... and it did not fit */
	long			 text_bytes;	/* its size, kept or not */
};

/* Answer the request "rq" with the route "hooks"; "stream" as asked. */
void	 chat_run(struct req *rq, const struct chat_hooks *hooks,
	    int stream);

/*
 * For routes that ask the API something other than a message (its
 * models, count_tokens), in chat_run()'s steps.  chat_begin() sets "ch"
 * up and checks who asks (only "token_param" and "error" of the hooks are
 * needed): 0 with ch->key set, or -1 after answering; chat_end() follows
 * it in either case.  chat_fetch() calls the API at "url" (a GET when
 * "body" is NULL), retried as a message's call is: 0 with the 2xx body in
 * "reply", or -1 with ch->res saying why.
 */
int	 chat_begin(struct chat *, struct req *, const struct chat_hooks *,
	    int stream);
int	 chat_fetch(struct chat *, const char *url, const char *body,
	    size_t len, struct buf *reply);
void	 chat_end(struct chat *);

/*
 * For the hooks.  chat_read_body() reads the body into ch->w->body, at
 * most body_limit bytes within body_timeout: 0, or -1 after answering
 * 413, 408 or 400.  chat_stream_head() sends the SSE head unless it went
 * already; chat_send() writes to the client and flushes.  Each returns 0,
 * or -1 with ch->stop set: the client is gone.  chat_event() sends one
 * SSE event (named "event" unless NULL) so.  chat_keep_text() keeps
 * reply text for log_bodies.  chat_failure_headers() formats the header
 * lines of an answer to a failed call ("" when there are none): a
 * Retry-After for a 429, and x-should-retry: false once the upstream was
 * called, since llmgw has spent its own retries.
 */
int	 chat_read_body(struct chat *);
int	 chat_stream_head(struct chat *);
int	 chat_send(struct chat *, const char *, size_t);
int	 chat_event(struct chat *, const char *event, const char *data,
	    size_t len);
void	 chat_keep_text(struct chat *, const char *, size_t);
void	 chat_failure_headers(const struct chat *, const struct verdict *,
	    char *extra, size_t size);

#endif /* ENGINE_H */
