/*
 * Calls to the Messages API with libcurl.
 *
 * All transfers of the process run on one libcurl multi handle, driven by
 * one event-loop thread (struct upstream_loop, epoll and
 * curl_multi_socket_action), so an open stream costs one upstream socket
 * and the connections to the API are kept alive and shared by every
 * worker.  A worker sees a plain blocking call: upstream_post() hands the
 * transfer to the loop and then waits, calling the sink in the worker's
 * own thread with each piece of the body as it arrives.  When a client
 * reads slowly, the loop pauses that transfer (the worker's inbox is
 * bounded) instead of buffering without end.
 *
 * A stream's sink may let the loop relay: while the worker sleeps with
 * nothing in its inbox, and the sink's can_relay() says a piece can go on
 * at once (its client's socket has room), the loop thread calls on_data
 * itself, and the worker is not woken for it.  Waking a worker for every
 * delta of a reply, a futex and two context switches, was half of what
 * relaying a token cost.  Either thread runs the sink, never both: the
 * call's lock hands it over, in order.
 *
 * A struct upstream is one worker's easy handle, used by one thread at a
 * time.  upstream_post() makes exactly one attempt; retrying is the
 * caller's business, because only the caller knows whether the client has
 * already been sent something.
 */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#include <stddef.h>

#include "core/buf.h"

struct conf;
struct err;

#define UPSTREAM_ERRBODY_MAX	(64 * 1024)	/* kept of an error body */
#define UPSTREAM_REQID_MAX	128
#define UPSTREAM_RATELIMIT_MAX	4096	/* their headers, passed on */

enum upstream_outcome {
	UP_DONE = 0,	/* a whole HTTP response arrived, whatever its status */
	UP_ECONNECT,	/* no connection: refused, unresolvable, TLS failed */
	UP_ETIMEOUT,	/* connect, first byte, idle or total timeout */
	UP_ECUT,	/* the connection broke in the middle of the response */
	UP_EABORTED,	/* the sink or the tick callback stopped it */
	UP_EOTHER
};

struct upstream_sink {
	/* Body bytes of a 2xx response as they arrive; -1 stops. */
	int	 (*on_data)(void *arg, const char *, size_t);
	/* About once a second while waiting, in the worker's thread; -1
	 * stops.  May be NULL. */
	int	 (*on_tick)(void *arg);
	/*
	 * Whether on_data may take "len" bytes in the loop thread now: it
	 * must not block there (no database, no full socket).  NULL: never.
	 */
	int	 (*can_relay)(void *arg, size_t len);
	void	*arg;
};

struct upstream_result {
	enum upstream_outcome	 outcome;
	long			 status;	/* HTTP status; 0: none */
	long			 retry_after_ms;	/* -1: not sent */
	char			 request_id[UPSTREAM_REQID_MAX];
	struct buf		 ratelimit;	/* header lines to pass on */
	struct buf		 errbody;	/* body of a non-2xx reply */
	char			 detail[256];	/* for the log */
};

struct upstream_loop;

/* Start the event-loop thread.  Returns NULL with "err" set. */
struct upstream_loop	*upstream_loop_start(struct err *);
/*
 * Stop the loop: transfers still running are aborted (their callers see
 * UP_EABORTED), then the thread is joined.  NULL is fine.
 */
void			 upstream_loop_stop(struct upstream_loop *);

/*
 * End every transfer now, and any started later, as if the sink had
 * stopped it: callers see UP_EABORTED.  For the last stage of a shutdown.
 */
void			 upstream_loop_abort(struct upstream_loop *);

/* A worker's handle on "loop" (borrowed; it must outlive the handle). */
struct upstream	*upstream_new(struct upstream_loop *, struct err *);
void		 upstream_free(struct upstream *);	/* NULL is fine */

void	 upstream_result_init(struct upstream_result *);
void	 upstream_result_free(struct upstream_result *);

/*
 * POST "len" bytes of JSON to the configured API's /v1/messages, with
 * anthropic-version "version" (NULL: the configured one) and
 * anthropic-beta "beta" (NULL: none).  Bytes of a 2xx reply go to the
 * sink; the rest is described in "res", which the caller has initialised
 * (its previous contents are replaced).  Returns 0 when a whole response
 * arrived (see res->status), -1 otherwise (see res->outcome and
 * res->detail).
 */
int	 upstream_post(struct upstream *, const struct conf *,
	    const char *body, size_t len, int stream, const char *version,
	    const char *beta, const struct upstream_sink *,
	    struct upstream_result *);

/*
 * Another call to the API, its whole answer awaited: a GET of "url" when
 * "body" is NULL, else a POST of "len" bytes of JSON.  A 2xx body goes to
 * "reply" (reset first; at most its max, past which the call fails), any
 * other to res->errbody.  0 when a whole response arrived (see
 * res->status), -1 otherwise, as upstream_post().
 */
int	 upstream_fetch(struct upstream *, const struct conf *,
	    const char *url, const char *body, size_t len,
	    const char *version, const char *beta, struct buf *reply,
	    struct upstream_result *);

/*
 * The Messages API's count_tokens: POST "len" bytes of JSON (what
 * count_tokens takes) and read {"input_tokens": N}.  0 with "*tokens" set,
 * or -1 with "res" saying why (an HTTP status other than 200 included).
 */
#define COUNT_REPLY_MAX	4096
int	 upstream_count(struct upstream *, const struct conf *,
	    const char *body, size_t len, const char *version,
	    const char *beta, struct upstream_result *, long *tokens);

#endif /* UPSTREAM_H */
