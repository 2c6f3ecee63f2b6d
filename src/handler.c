#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "conf.h"
#include "conn.h"
#include "err.h"
#include "handler.h"
#include "log.h"
#include "req.h"
#include "resp.h"
#include "route.h"
#include "spool.h"
#include "upstream.h"
#include "usage.h"
#include "str.h"

/* Buffers that grew past this are freed after the request. */
#define WORKER_BUF_KEEP		(64 * 1024)
#define SSE_EVENT_MAX		(1024 * 1024)

struct worker *
worker_new(struct app *app, struct err *err)
{
	struct worker	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		err_set(err, "worker: out of memory");
		return NULL;
	}
	w->app = app;
	if ((w->up = upstream_new(app->loop, err)) == NULL) {
		free(w);
		return NULL;
	}
	sse_parser_init(&w->sse, SSE_EVENT_MAX);
	buf_init(&w->body, 0);
	buf_init(&w->upbody, 0);
	buf_init(&w->reply, 0);
	buf_init(&w->out, 0);
	return w;
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	upstream_free(w->up);
	sse_parser_free(&w->sse);
	buf_free(&w->body);
	buf_free(&w->upbody);
	buf_free(&w->reply);
	buf_free(&w->out);
	free(w);
}

int64_t
req_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
req_error(struct req_ctx *rq, int status, const char *extra,
    const char *detail)
{
	rq->status = status;
	if (resp_error(rq->conn, status, rq->id, extra, detail) == -1)
		log_debug("request %s: client went away before the %d "
		    "response", rq->id, status);
}

/* Keep memory bounded across requests: big buffers are not kept. */
static void
worker_trim(struct worker *w)
{
	struct buf	*bufs[] = { &w->body, &w->upbody, &w->reply, &w->out };
	size_t		 i;

	for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
		if (bufs[i]->cap > WORKER_BUF_KEEP)
			buf_free(bufs[i]);
		else
			buf_reset(bufs[i]);
	}
}

void
handler_serve(struct worker *w, struct conn *conn)
{
	struct req_ctx	 rq;
	const char	*path, *xid;
	char		 allow[64];

	memset(&rq, 0, sizeof(rq));
	rq.w = w;
	rq.app = w->app;
	rq.conf = w->app->conf;
	rq.conn = conn;
	rq.t0_ms = req_now_ms();
	rq.ts_ms = wall_ms();
	w->have_rec = 0;

	xid = conn_param(conn, "HTTP_X_REQUEST_ID");
	if (reqid_valid(xid))
		str_copy(rq.id, sizeof(rq.id), xid);
	else
		reqid_new(rq.id);
	if ((rq.method = conn_param(conn, "REQUEST_METHOD")) == NULL)
		rq.method = "GET";
	rq.head_only = strcmp(rq.method, "HEAD") == 0;
	path = route_path(conn_param(conn, "PATH_INFO"),
	    conn_param(conn, "SCRIPT_NAME"));

	switch (route_find(rq.method, path, &rq.route)) {
	case ROUTE_NOT_FOUND:
		req_error(&rq, 404, NULL, "Not Found");
		break;
	case ROUTE_BAD_METHOD:
		snprintf(allow, sizeof(allow), "Allow: %s\r\n",
		    rq.route->method);
		req_error(&rq, 405, allow, "Method Not Allowed");
		break;
	case ROUTE_FOUND:
		switch (rq.route->id) {
		case ROUTE_CHAT:
			chat_handle(&rq, 0);
			break;
		case ROUTE_CHAT_STREAM:
			chat_handle(&rq, 1);
			break;
		case ROUTE_OPENAPI:
			meta_openapi(&rq);
			break;
		case ROUTE_DOCS:
			meta_docs(&rq);
			break;
		case ROUTE_HEALTHZ:
			meta_healthz(&rq);
			break;
		}
		break;
	}
	log_debug("request %s: %s %s -> %d in %lld ms", rq.id, rq.method,
	    path, rq.status, (long long)(req_now_ms() - rq.t0_ms));
	worker_trim(w);
}

void
req_spool(struct req_ctx *rq)
{
	struct record	*r = &rq->w->rec;
	struct buf	 b;
	struct err	 err;
	char		 what[ERR_MAX + 16];

	r->end_ms = wall_ms();
	buf_init(&b, 0);
	if (record_to_json(r, &b) == -1) {
		log_error("request %s: out of memory writing its record",
		    r->request_id);
	} else if (spool_put(rq->app->spool, r->id, b.data, b.len, &err) ==
	    -1) {
		/* Not in the spool: then whole, in the log. */
		snprintf(what, sizeof(what), "%s; record", err.msg);
		log_error_blob(what, b.data, b.len);
	}
	buf_free(&b);
}

void
handler_after(struct worker *w)
{
	struct err	 err;
	struct buf	 b;
	char		 what[ERR_MAX + 128];

	if (!w->have_rec)
		return;
	w->have_rec = 0;
	if (!w->rec.upstream)
		return;		/* usage rows are for calls to the API */
	w->rec.prompt = w->rec.reply = NULL;
	if (usage_add(w->app->usage, &w->rec, &err) == -1) {
		buf_init(&b, 0);
		record_to_json(&w->rec, &b);
		snprintf(what, sizeof(what), "usage row for request %s not "
		    "stored: %s; record", w->rec.request_id, err.msg);
		log_error_blob(what, buf_str(&b), b.len);
		buf_free(&b);
	}
}
