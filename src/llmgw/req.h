/*
 * One request in flight: everything the dispatcher and a route know of
 * it, from the moment the dispatcher takes it until its usage is
 * recorded.
 *
 * The dispatcher owns it (dispatch.c).  dispatch_serve() begins it (holds
 * the configuration's generation, gives it an id, finds its route) and
 * hands it to the route.  The route answers; a chat route also fills
 * "rec", and "resv" when it held some of a key's budget, and writes the
 * record to the spool with req_spool() before the end of its response
 * leaves.  Then the server lets the connection go, and dispatch_after()
 * settles the budget, queues the usage row and ends the request.
 *
 * Routes borrow the worker thread's reusable buffers and upstream handle
 * through "scratch"; none of it outlives the request.
 */
#ifndef REQ_H
#define REQ_H

#include <stdint.h>

#include "core/buf.h"
#include "core/reqid.h"
#include "store/budget.h"
#include "store/record.h"
#include "sse.h"

struct app;
struct conf;
struct conn;
struct gen;
struct route;
struct upstream;

/* A worker thread's: kept between its requests, trimmed after each. */
struct scratch {
	struct upstream		*up;		/* its libcurl handle */
	struct sse_parser	 sse;		/* the upstream's events */
	struct buf		 body;		/* the request body */
	struct buf		 upbody;	/* what we send upstream */
	struct buf		 reply;		/* a whole upstream reply */
	struct buf		 out;		/* output being built */
	struct buf		 recjson;	/* the record, serialized */
	struct buf		 line;		/* the access-log line */
};

/* The shape of an error body: the one the route's clients read. */
enum req_errors {
	ERRORS_DETAIL,		/* FastAPI's {"detail": ...} */
	ERRORS_ANTHROPIC,	/* the Messages API's, on /v1/ */
	ERRORS_OPENAI		/* OpenAI's, on /v1/chat/completions and
				 * to OpenAI clients of /v1/models */
};

struct req {
	struct app		*app;
	struct gen		*gen;		/* held from begin to end */
	const struct conf	*conf;		/* gen->conf */
	struct conn		*conn;
	struct scratch		*scratch;	/* the worker's; borrowed */
	const struct route	*route;		/* NULL: none matched */
	const char		*method;
	enum req_errors		 errors;	/* by path; a route may say */
	char			 id[REQID_MAX + 1];
	int64_t			 t0_ms;		/* monotonic, at the start */
	int64_t			 ts_ms;		/* Unix time, at the start */
	int			 status;	/* sent to the client; 0: none */
	int			 head_only;	/* HEAD: no body */
	struct record		 rec;		/* a chat route's record */
	int			 have_rec;	/* ... filled and spooled */
	struct reservation	 resv;		/* budget held; settled after */
};

/*
 * Answer "status" with an error body in the request's shape saying
 * "detail"; "extra" as for resp_head().  req_error_param() names the
 * parameter at fault too, where the shape has room for it (OpenAI's).
 */
void	 req_error(struct req *, int status, const char *extra,
	    const char *detail);
void	 req_error_param(struct req *, int status, const char *extra,
	    const char *detail, const char *param);

/* 422 with a validator's problems (a JSON list): {"detail": [...]}. */
void	 req_unprocessable(struct req *, const struct buf *problems);

/*
 * With the response complete but for its end: write rq->rec to the
 * spool (or, failing that, whole to the log), count it in the metrics,
 * and mark the request as having a record.  Its usage row is queued by
 * dispatch_after(), once the client has been let go.
 */
void	 req_spool(struct req *);

#endif /* REQ_H */
