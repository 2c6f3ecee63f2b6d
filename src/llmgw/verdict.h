/*
 * How one attempt at the upstream ended, as the client should see it:
 * the status, the error's type and detail, whether another attempt is
 * worth it, and a line for the operator.  Pure: it reads what the attempt
 * left (struct attempt) and decides; it sends and logs nothing.
 */
#ifndef VERDICT_H
#define VERDICT_H

#include <stddef.h>

#include "anthropic.h"

struct upstream_result;

/* Why llmgw stopped a transfer itself. */
enum stop_reason {
	STOP_NONE = 0,
	STOP_CLIENT_GONE,	/* a write to the client failed */
	STOP_ERROR_EVENT,	/* the upstream sent an error event */
	STOP_MALFORMED,		/* ... an event we cannot read */
	STOP_TOO_BIG,		/* ... more than we take */
	STOP_BUDGET		/* the key's budget has no room for more */
};

/* What an attempt left behind. */
struct attempt {
	const struct upstream_result	*res;
	enum stop_reason		 stop;
	int				 stream;	/* an SSE reply */
	const struct anthropic_stream	*st;		/* its events so far */
};

#define VERDICT_LOG_MAX	(ANTHROPIC_ERR_MSG_MAX + ANTHROPIC_ERR_TYPE_MAX + 32)

struct verdict {
	int	 ok;		/* a whole, good reply */
	int	 retry;		/* worth another attempt */
	int	 status;	/* HTTP status for the client; 499: client left */
	char	 type[ANTHROPIC_ERR_TYPE_MAX];	/* "overloaded_error" */
	char	 detail[ANTHROPIC_ERR_MSG_MAX];	/* for the client */
	char	 log[VERDICT_LOG_MAX];		/* for the operator */
};

/*
 * Judge an attempt: an upstream 529 or overloaded error is 503, its 429
 * is 429, its 400, 404 and 413 the client's problem with the upstream's
 * message, its 401 and 403 a 502 (the gateway's credentials, not the
 * client's), other failures 502, timeouts 504.  A streamed 2xx reply is
 * ok only once message_stop came; a whole one is judged ok here and read
 * by the caller (verdict_set() if it cannot be).
 */
void	 verdict_judge(const struct attempt *, struct verdict *);

/* Set a verdict's status, retry, type and detail (the log line too). */
void	 verdict_set(struct verdict *, int status, int retry,
	    const char *type, const char *detail);

#endif /* VERDICT_H */
