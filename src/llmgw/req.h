/*
 * One request in flight, as the handlers (handler.c, chat.c, meta.c) see
 * it.  Private to them.
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
struct gen;
struct conn;
struct route;
struct upstream;

struct worker {
	struct app		*app;
	struct gen		*gen;		/* held from serve to after */
	struct upstream		*up;
	struct sse_parser	 sse;
	struct buf		 body;		/* the request body */
	struct buf		 upbody;	/* what we send upstream */
	struct buf		 reply;		/* a whole upstream reply */
	struct buf		 out;		/* output being built */
	struct buf		 recjson;	/* the record, serialized */
	struct buf		 line;		/* the access-log line */
	struct record		 rec;		/* this request's record */
	int			 have_rec;
	struct reservation	 resv;		/* budget held; settled after */
};

struct req_ctx {
	struct worker		*w;
	struct app		*app;
	struct gen		*gen;
	const struct conf	*conf;		/* gen->conf */
	struct conn		*conn;
	const struct route	*route;
	const char		*method;
	char			 id[REQID_MAX + 1];
	int64_t			 t0_ms;		/* monotonic, at the start */
	int64_t			 ts_ms;		/* Unix time, at the start */
	int			 status;	/* sent to the client; 0: none */
	int			 head_only;	/* HEAD: no body */
};

/*
 * With the response complete: write w->rec to the spool.  Its usage row
 * is stored by handler_after(), once the client has been let go.
 */
void	 req_spool(struct req_ctx *);

/* Send {"detail": ...} with "status"; "extra" as for resp_head(). */
void	 req_error(struct req_ctx *, int status, const char *extra,
	    const char *detail);

/* The route handlers. */
void	 chat_handle(struct req_ctx *, int stream);
void	 messages_handle(struct req_ctx *);	/* POST /v1/messages */
void	 meta_openapi(struct req_ctx *);
void	 meta_docs(struct req_ctx *);
void	 meta_healthz(struct req_ctx *);
void	 meta_metrics(struct req_ctx *);

#endif /* REQ_H */
