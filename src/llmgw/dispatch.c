/*
 * The dispatcher: a request begun, sent to its route, logged, and ended.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/store.h"
#include "store/conf.h"
#include "app.h"
#include "conn.h"
#include "dispatch.h"
#include "metrics.h"
#include "req.h"
#include "request.h"
#include "route.h"
#include "routes.h"
#include "upstream.h"
#include "usage.h"

#define SSE_EVENT_MAX		(1024 * 1024)	/* one upstream event */
#define ACCESS_LINE_MAX		2000		/* as log lines are cut */

struct worker {
	struct app	*app;
	struct scratch	 scratch;
	struct req	 req;		/* the one being served */
};

/* Every buffer of a struct scratch, for what is done to each. */
#define SCRATCH_BUFS(s)	{ &(s)->body, &(s)->upbody, &(s)->reply, \
	&(s)->out, &(s)->recjson, &(s)->line }

struct worker *
dispatch_worker_new(struct app *app, struct err *err)
{
	struct worker	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		err_set(err, "worker: out of memory");
		return NULL;
	}
	w->app = app;
	if ((w->scratch.up = upstream_new(app->loop, err)) == NULL) {
		free(w);
		return NULL;
	}
	sse_parser_init(&w->scratch.sse, SSE_EVENT_MAX);
	buf_init(&w->scratch.body, 0);
	buf_init(&w->scratch.upbody, 0);
	buf_init(&w->scratch.reply, 0);
	buf_init(&w->scratch.out, 0);
	buf_init(&w->scratch.recjson, 0);
	buf_init(&w->scratch.line, ACCESS_LINE_MAX);
	return w;
}

void
dispatch_worker_free(struct worker *w)
{
	size_t		 i;

	if (w == NULL)
		return;
	{
		struct buf	*bufs[] = SCRATCH_BUFS(&w->scratch);

		for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
			buf_free(bufs[i]);
	}
	upstream_free(w->scratch.up);
	sse_parser_free(&w->scratch.sse);
	free(w);
}

/* Keep memory bounded across requests: big buffers are not kept. */
static void
scratch_trim(struct scratch *s)
{
	struct buf	*bufs[] = SCRATCH_BUFS(s);
	size_t		 i;

	for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		buf_trim(bufs[i], BUF_KEEP);
}

/* A value for a key=value log line: quoted when it must be. */
static int
logfmt_value(struct buf *b, const char *v)
{
	const char	*p;
	int		 rc = 0;

	if (v[0] != '\0' && strcspn(v, " \"=\\") == strlen(v)) {
		for (p = v; *p != '\0'; p++)
			rc |= buf_addc(b, (unsigned char)*p < 0x20 ? '?' : *p);
		return rc;
	}
	rc |= buf_addc(b, '"');
	for (p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			rc |= buf_addc(b, '\\');
		rc |= buf_addc(b, (unsigned char)*p < 0x20 ? '?' : *p);
	}
	rc |= buf_addc(b, '"');
	return rc;
}

/*
 * One access-log line per request, key=value, on stderr: never a secret
 * nor message text.  The fields are listed in llmgw(8).
 */
static void
access_line(struct req *rq, const char *path)
{
	const struct record	*r = rq->have_rec ? &rq->rec : NULL;
	struct buf		*b = &rq->scratch->line;
	int			 rc;

	buf_reset(b);
	rc = buf_addf(b, "id=%s method=", rq->id);
	rc |= logfmt_value(b, rq->method);
	rc |= buf_adds(b, " path=");
	rc |= logfmt_value(b, path);
	rc |= buf_addf(b, " status=%d total_ms=%lld", rq->status != 0 ?
	    rq->status : 499, (long long)(clock_mono_ms() - rq->t0_ms));
	if (r != NULL) {
		rc |= buf_addf(b, " key=%s", r->key[0] != '\0' ? r->key : "-");
		if (r->model[0] != '\0') {
			rc |= buf_adds(b, " model=");
			rc |= logfmt_value(b, r->model);
		}
		if (r->upstream)
			rc |= buf_addf(b, " input_tokens=%ld output_tokens=%ld "
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
	/* Past ACCESS_LINE_MAX, the line goes out as far as it got. */
	if (b->len > 0)
		log_access("%s%s", b->data, rc == -1 ? " ..." : "");
}

/*
 * Begin the request: hold the generation, take its id (a well-formed
 * X-Request-Id is kept; any other is replaced), method and path.
 */
static const char *
req_begin(struct worker *w, struct conn *conn)
{
	struct req	*rq = &w->req;
	const char	*xid, *path;

	memset(rq, 0, sizeof(*rq));
	rq->app = w->app;
	rq->gen = app_hold(w->app);
	rq->conf = rq->gen->conf;
	rq->conn = conn;
	rq->scratch = &w->scratch;
	rq->t0_ms = clock_mono_ms();
	rq->ts_ms = clock_wall_ms();
	xid = conn_param(conn, "HTTP_X_REQUEST_ID");
	if (reqid_valid(xid))
		str_copy(rq->id, sizeof(rq->id), xid);
	else
		reqid_new(rq->id);
	if ((rq->method = conn_param(conn, "REQUEST_METHOD")) == NULL)
		rq->method = "GET";
	rq->head_only = strcmp(rq->method, "HEAD") == 0;
	path = route_path(conn_param(conn, "PATH_INFO"),
	    conn_param(conn, "SCRIPT_NAME"));
	/* Errors on the API's paths, 404 included, in its clients' shape. */
	if (strcmp(path, "/v1/chat/completions") == 0)
		rq->errors = ERRORS_OPENAI;
	else if (strncmp(path, "/v1/", 4) == 0)
		rq->errors = ERRORS_ANTHROPIC;
	return path;
}

/* Refuse what no route should see, or send the request to its route. */
static void
route(struct req *rq, const char *path)
{
	const char	*xid = conn_param(rq->conn, "HTTP_X_REQUEST_ID");
	char		 allow[64];

	/* Nothing honest sends control characters in X-Request-Id. */
	if (conn_nparams(rq->conn) > REQ_PARAMS_MAX) {
		req_error(rq, 431, "Connection: close\r\n",
		    "Request has too many header fields");
		return;
	}
	if (xid != NULL && !request_header_ok(xid)) {
		req_error(rq, 400, NULL, "X-Request-Id holds control "
		    "characters");
		return;
	}
	switch (route_find(rq->method, path, &rq->route)) {
	case ROUTE_NOT_FOUND:
		req_error(rq, 404, NULL, "Not Found");
		return;
	case ROUTE_BAD_METHOD:
		snprintf(allow, sizeof(allow), "Allow: %s\r\n",
		    rq->route->method);
		req_error(rq, 405, allow, "Method Not Allowed");
		return;
	case ROUTE_FOUND:
		break;
	}
	switch (rq->route->id) {
	case ROUTE_CHAT:
		chat_handle(rq, 0);
		break;
	case ROUTE_CHAT_STREAM:
		chat_handle(rq, 1);
		break;
	case ROUTE_OPENAPI:
		meta_openapi(rq);
		break;
	case ROUTE_DOCS:
		meta_docs(rq);
		break;
	case ROUTE_HEALTHZ:
		meta_healthz(rq);
		break;
	case ROUTE_METRICS:
		meta_metrics(rq);
		break;
	case ROUTE_MESSAGES:
		messages_handle(rq);
		break;
	case ROUTE_CHAT_UI:
		ui_handle(rq);
		break;
	case ROUTE_CHAT_COMPLETIONS:
		openai_handle(rq);
		break;
	case ROUTE_MODELS:
		models_handle(rq, NULL);
		break;
	case ROUTE_MODEL:
		models_handle(rq, strrchr(path, '/') + 1);
		break;
	case ROUTE_COUNT_TOKENS:
		count_handle(rq);
		break;
	}
}

void
dispatch_serve(struct worker *w, struct conn *conn)
{
	struct req	*rq = &w->req;
	const char	*path;

	path = req_begin(w, conn);
	route(rq, path);
	if (!rq->have_rec)
		metrics_route(rq->app->metrics, rq->route != NULL ?
		    rq->route->path : "other", rq->status);
	if (rq->conf->access_log)
		access_line(rq, path);
	scratch_trim(&w->scratch);
}

void
dispatch_after(struct worker *w)
{
	struct req	*rq = &w->req;
	struct record	*r = &rq->rec;
	struct err	 err;

	/* Usage rows are for requests that called the API; the row settles
	 * what the request held of its key's budget. */
	if (rq->have_rec && r->upstream)
		usage_add(rq->gen->usage, r);
	else if (store_release(rq->gen->db, &rq->resv, &err) == -1)
		log_error("%s", err.msg);
	app_drop(rq->gen);
	memset(rq, 0, sizeof(*rq));
}
