/*
 * GET /openapi.json, /docs and /healthz.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/store.h"
#include "store/spool.h"
#include "store/spool_writer.h"
#include "app.h"
#include "auth.h"
#include "conn.h"
#include "metrics.h"
#include "req.h"
#include "routes.h"
#include "resp.h"
#include "server.h"
#include "usage.h"

#define HEALTH_WAIT_MS	500	/* the database's part of an answer */

/*
 * The document, with "servers" naming the mount it was asked under, so
 * that generated clients resolve its paths there.
 */
void
meta_openapi(struct req *rq)
{
	const char	*info = conn_param(rq->conn, "PATH_INFO");
	const char	*mount = conn_param(rq->conn, "SCRIPT_NAME");
	struct buf	*b = &rq->scratch->out;

	if (info == NULL || *info == '\0' || mount == NULL || *mount == '\0')
		mount = "/";		/* mounted at the root, not split */
	buf_reset(b);
	b->max = BUF_NOCAP;
	if (buf_adds(b, "{\"servers\":[{\"url\":") == -1 ||
	    json_add_cstr(b, mount) == -1 || buf_adds(b, ",\"description\":"
	    "\"where the web server mounts llmgw\"}],") == -1 ||
	    buf_add(b, rq->gen->openapi + 1, rq->gen->openapi_len - 1) == -1) {
		req_error(rq, 500, NULL, "out of memory");
		return;
	}
	rq->status = 200;
	resp_body(rq->conn, 200, "application/json", rq->id, NULL, b->data,
	    b->len, rq->head_only);
}

void
meta_docs(struct req *rq)
{
	rq->status = 200;
	resp_body(rq->conn, 200, "text/html; charset=utf-8", rq->id, NULL,
	    rq->gen->docs, rq->gen->docs_len, rq->head_only);
}

/*
 * Whether this process can serve and record a request, within about
 * HEALTH_WAIT_MS whatever the database does: it proves the database takes
 * a write then, and the spool a file; and it says how many rows and
 * records wait in memory.  503 if either proof fails, or llmgw refuses
 * requests because too many wait.
 */
void
meta_healthz(struct req *rq)
{
	struct err		 dberr, sperr;
	struct usage_state	 us;
	struct spool_backlog	 sb;
	struct buf		*b = &rq->scratch->out;
	char			 last[256];
	unsigned long		 failures;
	int			 db_ok, spool_ok, refusing, rc;

	db_ok = store_probe(rq->gen->db, clock_mono_ms() + HEALTH_WAIT_MS,
	    &dberr) == 0;
	spool_ok = spool_check(rq->conf->spool_dir, &sperr) == 0;
	failures = spool_failures(rq->gen->spool, last, sizeof(last));
	usage_state(rq->gen->usage, &us);
	spool_backlog(rq->gen->spool, &sb);
	refusing = !rq->conf->serve_unrecorded && (us.full || sb.full);
	buf_reset(b);
	rc = buf_adds(b, db_ok && spool_ok && !refusing ?
	    "{\"status\":\"ok\"" : "{\"status\":\"unavailable\"");
	rc |= buf_adds(b, ",\"database\":");
	rc |= json_add_cstr(b, db_ok ? "ok" : dberr.msg);
	rc |= buf_adds(b, ",\"spool\":");
	rc |= json_add_cstr(b, spool_ok ? "ok" : sperr.msg);
	rc |= buf_addf(b, ",\"usage_backlog\":%zu,\"spool_backlog\":%zu,"
	    "\"refusing\":%s,\"spool_write_failures\":%lu", us.backlog,
	    sb.records, refusing ? "true" : "false", failures);
	if (us.failing_ms > 0) {
		rc |= buf_adds(b, ",\"usage_last_error\":");
		rc |= json_add_cstr(b, us.error);
	}
	if (failures > 0) {
		rc |= buf_adds(b, ",\"spool_last_error\":");
		rc |= json_add_cstr(b, last);
	}
	rc |= buf_addc(b, '}');
	if (rc == -1) {
		req_error(rq, 500, NULL, "out of memory");
		return;
	}
	if (!db_ok)
		log_warn("healthz: %s", dberr.msg);
	if (!spool_ok)
		log_warn("healthz: %s", sperr.msg);
	rq->status = db_ok && spool_ok && !refusing ? 200 : 503;
	resp_body(rq->conn, rq->status, "application/json", rq->id,
	    "Cache-Control: no-store\r\n", b->data, b->len, rq->head_only);
}

void
meta_metrics(struct req *rq)
{
	struct buf	*b = &rq->scratch->out;
	const char	*token;
	size_t		 len;
	struct metrics_now now = { 1, 1, 0, 0 };
	struct usage_state us;
	struct spool_backlog sb;

	/* The counters are the operator's: loopback peers only, unless a
	 * token is set, which is then always asked for. */
	if (rq->conf->metrics_token == NULL &&
	    !auth_loopback(conn_param(rq->conn, "REMOTE_ADDR"))) {
		req_error(rq, 403, NULL, "/metrics is answered to loopback "
		    "peers only, unless metrics_token is set");
		return;
	}
	if (rq->conf->metrics_token != NULL &&
	    (auth_bearer(conn_param(rq->conn, "HTTP_AUTHORIZATION"), &token,
	    &len) == -1 ||
	    !auth_token_equal(token, len, rq->conf->metrics_token))) {
		req_error(rq, 401, "WWW-Authenticate: Bearer\r\n",
		    "Not authenticated");
		return;
	}
	if (rq->app->server != NULL)
		server_counts(rq->app->server, &now.threads, &now.busy);
	usage_state(rq->gen->usage, &us);
	spool_backlog(rq->gen->spool, &sb);
	now.usage_backlog = us.backlog;
	now.spool_backlog = sb.records;
	buf_reset(b);
	b->max = 0;
	if (metrics_render(rq->app->metrics, &now, b) == -1) {
		req_error(rq, 500, NULL, "out of memory");
		return;
	}
	rq->status = 200;
	resp_body(rq->conn, 200, "text/plain; version=0.0.4; charset=utf-8",
	    rq->id, "Cache-Control: no-store\r\n", b->data, b->len,
	    rq->head_only);
}
