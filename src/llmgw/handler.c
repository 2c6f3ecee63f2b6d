#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/budget.h"
#include "store/conf.h"
#include "store/spool_writer.h"
#include "app.h"
#include "conn.h"
#include "handler.h"
#include "metrics.h"
#include "req.h"
#include "request.h"
#include "resp.h"
#include "route.h"
#include "upstream.h"
#include "usage.h"

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
	buf_init(&w->recjson, 0);
	buf_init(&w->line, 2000);	/* as log lines are cut */
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
	buf_free(&w->recjson);
	buf_free(&w->line);
	free(w);
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
	struct buf	*bufs[] = { &w->body, &w->upbody, &w->reply, &w->out,
	    &w->recjson, &w->line };
	size_t		 i;

	for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		buf_trim(bufs[i], BUF_KEEP);
}

/* A value for a key=value log line: quoted when it must be. */
static void
logfmt_value(struct buf *b, const char *v)
{
	const char	*p;

	if (v[0] != '\0' && strcspn(v, " \"=\\") == strlen(v)) {
		for (p = v; *p != '\0'; p++)
			buf_addc(b, (unsigned char)*p < 0x20 ? '?' : *p);
		return;
	}
	buf_addc(b, '"');
	for (p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_addc(b, '\\');
		buf_addc(b, (unsigned char)*p < 0x20 ? '?' : *p);
	}
	buf_addc(b, '"');
}

/*
 * One access-log line per request, key=value, on stderr: never a secret
 * nor message text.  The fields are listed in llmgw(8).
 */
static void
access_line(struct req_ctx *rq, const char *path)
{
	const struct record	*r = rq->w->have_rec ? &rq->w->rec : NULL;
	struct buf		*b = &rq->w->line;

	buf_reset(b);
	buf_addf(b, "id=%s method=", rq->id);
	logfmt_value(b, rq->method);
	buf_adds(b, " path=");
	logfmt_value(b, path);
	buf_addf(b, " status=%d total_ms=%lld", rq->status != 0 ?
	    rq->status : 499, (long long)(clock_mono_ms() - rq->t0_ms));
	if (r != NULL) {
		buf_addf(b, " key=%s", r->key[0] != '\0' ? r->key : "-");
		if (r->model[0] != '\0') {
			buf_adds(b, " model=");
			logfmt_value(b, r->model);
		}
		if (r->upstream)
			buf_addf(b, " input_tokens=%ld output_tokens=%ld "
			    "cache_creation_input_tokens=%ld "
			    "cache_read_input_tokens=%ld ttft_ms=%ld "
			    "disconnected=%d partial=%d retries=%d "
			    "upstream_status=%ld upstream_request_id=%s",
			    r->input_tokens, r->output_tokens,
			    r->cache_creation_input_tokens,
			    r->cache_read_input_tokens, r->ttft_ms,
			    r->disconnected, r->partial, r->retries,
			    r->upstream_status, r->upstream_request_id[0] !=
			    '\0' ? r->upstream_request_id : "-");
	}
	if (b->len > 0)
		log_access("%s", b->data);
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
	rq.gen = w->gen = app_hold(w->app);
	rq.conf = rq.gen->conf;
	rq.conn = conn;
	rq.t0_ms = clock_mono_ms();
	rq.ts_ms = clock_wall_ms();
	w->have_rec = 0;

	/* A well-formed X-Request-Id is kept; any other is replaced,
	 * unless it holds control characters: nothing honest sends those. */
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

	if (conn_nparams(conn) > REQ_PARAMS_MAX)
		req_error(&rq, 431, "Connection: close\r\n",
		    "Request has too many header fields");
	else if (xid != NULL && !request_header_ok(xid))
		req_error(&rq, 400, NULL, "X-Request-Id holds control "
		    "characters");
	else switch (route_find(rq.method, path, &rq.route)) {
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
		case ROUTE_METRICS:
			meta_metrics(&rq);
			break;
		case ROUTE_MESSAGES:
			messages_handle(&rq);
			break;
		}
		break;
	}
	if (!w->have_rec)
		metrics_route(w->app->metrics, rq.route != NULL ?
		    rq.route->path : "other", rq.status);
	if (rq.conf->access_log)
		access_line(&rq, path);
	worker_trim(w);
}

void
req_spool(struct req_ctx *rq)
{
	struct record	*r = &rq->w->rec;
	struct buf	*b = &rq->w->recjson;
	struct err	 err;
	char		 what[ERR_MAX + 16];

	r->end_ms = clock_wall_ms();
	buf_reset(b);
	if (record_to_json(r, b) == -1) {
		log_error("request %s: out of memory writing its record",
		    r->request_id);
	} else if (spool_put(rq->gen->spool, b->data, b->len, &err) ==
	    -1) {
		metrics_spool_failure(rq->app->metrics);
		/* Not in the spool: then whole, in the log. */
		snprintf(what, sizeof(what), "%s; record", err.msg);
		log_error_blob(what, b->data, b->len);
	}
	metrics_record(rq->app->metrics, r);
}

void
handler_after(struct worker *w)
{
	struct err	 err;

	if (w->resv.id[0] != '\0' && budget_settle(w->gen->db, &w->resv,
	    w->rec.input_tokens + w->rec.output_tokens +
	    w->rec.cache_creation_input_tokens + w->rec.cache_read_input_tokens,
	    &err) == -1)
		log_error("%s", err.msg);
	/* Usage rows are for requests that called the API. */
	if (w->have_rec && w->rec.upstream)
		usage_add(w->gen->usage, &w->rec);
	w->have_rec = 0;
	app_drop(w->gen);
	w->gen = NULL;
}
