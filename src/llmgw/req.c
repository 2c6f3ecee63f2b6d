/*
 * What every route does with its request: answer an error, and write the
 * request's record.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "store/spool_writer.h"
#include "anthropic.h"
#include "app.h"
#include "metrics.h"
#include "openai.h"
#include "req.h"
#include "resp.h"

/* What a client gets when even an error will not fit in memory. */
static const char *const oom_bodies[] = {
	[ERRORS_DETAIL] = "{\"detail\":\"out of memory\"}",
	[ERRORS_ANTHROPIC] = "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"api_error\",\"message\":\"out of memory\"}}",
	[ERRORS_OPENAI] = "{\"error\":{\"message\":\"out of memory\","
	    "\"type\":\"server_error\",\"param\":null,\"code\":"
	    "\"server_error\"}}",
};

void
req_error_param(struct req *rq, int status, const char *extra,
    const char *detail, const char *param)
{
	struct buf	 b;
	int		 rc;

	buf_init(&b, 0);
	switch (rq->errors) {
	case ERRORS_ANTHROPIC:
		rc = anthropic_error_body(&b, status, detail);
		break;
	case ERRORS_OPENAI:
		rc = openai_error(&b, status, detail, param);
		break;
	default:
		rc = buf_adds(&b, "{\"detail\":") | json_add_cstr(&b, detail) |
		    buf_addc(&b, '}');
		break;
	}
	if (rc != 0) {
		status = 500;
		rc = resp_body(rq->conn, status, "application/json", rq->id,
		    NULL, oom_bodies[rq->errors],
		    strlen(oom_bodies[rq->errors]), 0);
	} else
		rc = resp_body(rq->conn, status, "application/json", rq->id,
		    extra, b.data, b.len, 0);
	rq->status = status;
	if (rc == -1)
		log_debug("request %s: client went away before the %d "
		    "response", rq->id, status);
	buf_free(&b);
}

void
req_error(struct req *rq, int status, const char *extra, const char *detail)
{
	req_error_param(rq, status, extra, detail, NULL);
}

void
req_unprocessable(struct req *rq, const struct buf *problems)
{
	struct buf	*b = &rq->scratch->upbody;

	buf_reset(b);
	if (problems->len == 0 || buf_adds(b, "{\"detail\":") == -1 ||
	    buf_add(b, problems->data, problems->len) == -1 ||
	    buf_addc(b, '}') == -1) {
		req_error(rq, 500, NULL, "out of memory");
		return;
	}
	rq->status = 422;
	resp_body(rq->conn, 422, "application/json", rq->id, NULL, b->data,
	    b->len, 0);
}

void
req_spool(struct req *rq)
{
	struct record	*r = &rq->rec;
	struct buf	*b = &rq->scratch->recjson;
	struct err	 err;
	char		 what[ERR_MAX + 16];

	r->end_ms = clock_wall_ms();
	buf_reset(b);
	if (record_to_json(r, b) == -1) {
		log_error("request %s: out of memory writing its record",
		    r->request_id);
	} else switch (spool_put(rq->gen->spool, b->data, b->len, &err)) {
	case 0:
		break;
	case 1:			/* waits in memory for the spool */
		metrics_spool_failure(rq->app->metrics);
		break;
	default:
		metrics_spool_lost(rq->app->metrics);
		/* Not kept: then whole, in the log. */
		snprintf(what, sizeof(what), "%s; record", err.msg);
		log_error_blob(what, b->data, b->len);
		break;
	}
	metrics_record(rq->app->metrics, r);
	rq->have_rec = 1;
}
