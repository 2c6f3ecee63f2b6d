#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/record.h"
#include "metrics.h"

/* The routes we count; anything else is "other". */
static const char *const routes[] = { "/chat", "/chat/stream", "/chat/ui",
	"/v1/messages", "/v1/chat/completions", "/v1/models",
	"/v1/models/{model_id}", "/v1/messages/count_tokens", "/openapi.json",
	"/docs",
	"/healthz", "/metrics",
	"other" };
#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/* Status codes we send, and those the upstream may answer. */
static const int statuses[] = { 200, 400, 401, 403, 404, 405, 408, 413,
	415, 422, 429, 499, 500, 502, 503, 504, 529, 0 };
#define NSTATUS	(sizeof(statuses) / sizeof(statuses[0]))	/* 0: other */

/* Histogram bounds, in seconds. */
static const double ttft_bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	30 };
static const double total_bounds[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	60, 120, 300 };
#define NTTFT	(sizeof(ttft_bounds) / sizeof(ttft_bounds[0]))
#define NTOTAL	(sizeof(total_bounds) / sizeof(total_bounds[0]))

struct histogram {
	const double	*bounds;
	size_t		 n;
	atomic_ulong	 buckets[16];	/* non-cumulative; [n] is +Inf */
	atomic_ulong	 count;
	atomic_ullong	 sum_ms;
};

struct model_tokens {
	char		 name[64];
	unsigned long	 tokens[4];	/* input, output, cache creation, read */
};

struct metrics {
	atomic_ulong		 requests[NROUTES][NSTATUS];
	atomic_ulong		 upstream[NSTATUS];	/* by upstream status */
	atomic_ulong		 upstream_none;		/* no HTTP answer */
	atomic_ulong		 retries;
	atomic_ulong		 disconnects;
	atomic_long		 in_flight;
	atomic_long		 streams;
	atomic_ulong		 spool_failures;
	atomic_ulong		 usage_failures;
	atomic_ulong		 spool_lost;
	atomic_ulong		 usage_lost;
	struct histogram	 ttft;
	struct histogram	 total;
	pthread_mutex_t		 lock;
	struct model_tokens	 models[METRICS_MODELS + 1];	/* + "other" */
	size_t			 nmodels;
};

struct metrics *
metrics_new(void)
{
	struct metrics	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->ttft.bounds = ttft_bounds;
	m->ttft.n = NTTFT;
	m->total.bounds = total_bounds;
	m->total.n = NTOTAL;
	pthread_mutex_init(&m->lock, NULL);
	str_copy(m->models[METRICS_MODELS].name,
	    sizeof(m->models[METRICS_MODELS].name), "other");
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static size_t
route_index(const char *route)
{
	size_t	 i;

	for (i = 0; i < NROUTES - 1; i++)
		if (strcmp(routes[i], route) == 0)
			return i;
	return NROUTES - 1;
}

static size_t
status_index(long status)
{
	size_t	 i;

	for (i = 0; i < NSTATUS - 1; i++)
		if (statuses[i] == status)
			return i;
	return NSTATUS - 1;
}

static void
observe(struct histogram *h, long ms)
{
	size_t	 i;

	for (i = 0; i < h->n && (double)ms / 1000.0 > h->bounds[i]; i++)
		;
	atomic_fetch_add(&h->buckets[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_ms, (unsigned long long)(ms > 0 ? ms : 0));
}

void
metrics_request_begin(struct metrics *m, int stream)
{
	atomic_fetch_add(&m->in_flight, 1);
	if (stream)
		atomic_fetch_add(&m->streams, 1);
}

void
metrics_request_end(struct metrics *m, int stream)
{
	atomic_fetch_sub(&m->in_flight, 1);
	if (stream)
		atomic_fetch_sub(&m->streams, 1);
}

void
metrics_route(struct metrics *m, const char *route, int status)
{
	atomic_fetch_add(&m->requests[route_index(route)][status_index(status)],
	    1);
}

void
metrics_record(struct metrics *m, const struct record *r)
{
	struct model_tokens	*mt = NULL;
	size_t			 i;

	metrics_route(m, r->route, r->status);
	if (r->disconnected)
		atomic_fetch_add(&m->disconnects, 1);
	if (!r->upstream)
		return;
	atomic_fetch_add(&m->retries, (unsigned long)r->retries);
	if (r->upstream_status > 0)
		atomic_fetch_add(&m->upstream[status_index(r->upstream_status)],
		    1);
	else
		atomic_fetch_add(&m->upstream_none, 1);
	if (r->ttft_ms >= 0)
		observe(&m->ttft, r->ttft_ms);
	observe(&m->total, r->total_ms);
	if (r->input_tokens + r->output_tokens +
	    r->cache_creation_input_tokens + r->cache_read_input_tokens == 0)
		return;		/* unknown models that cost nothing: no label */
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nmodels; i++)
		if (strcmp(m->models[i].name, r->model) == 0) {
			mt = &m->models[i];
			break;
		}
	if (mt == NULL) {
		if (m->nmodels < METRICS_MODELS) {
			mt = &m->models[m->nmodels++];
			str_copy(mt->name, sizeof(mt->name), r->model);
		} else
			mt = &m->models[METRICS_MODELS];
	}
	mt->tokens[0] += (unsigned long)r->input_tokens;
	mt->tokens[1] += (unsigned long)r->output_tokens;
	mt->tokens[2] += (unsigned long)r->cache_creation_input_tokens;
	mt->tokens[3] += (unsigned long)r->cache_read_input_tokens;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_spool_failure(struct metrics *m)
{
	atomic_fetch_add(&m->spool_failures, 1);
}

void
metrics_usage_failure(struct metrics *m)
{
	atomic_fetch_add(&m->usage_failures, 1);
}

void
metrics_spool_lost(struct metrics *m)
{
	atomic_fetch_add(&m->spool_lost, 1);
}

void
metrics_usage_lost(struct metrics *m)
{
	atomic_fetch_add(&m->usage_lost, 1);
}

static int
head(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* A metric without labels: its head and its one sample. */
static int
counter(struct buf *b, const char *name, const char *help, unsigned long v)
{
	int	 rc = 0;

	rc |= head(b, name, "counter", help);
	rc |= buf_addf(b, "%s %lu\n", name, v);
	return rc;
}

static int
gauge(struct buf *b, const char *name, const char *help, long v)
{
	int	 rc = 0;

	rc |= head(b, name, "gauge", help);
	rc |= buf_addf(b, "%s %ld\n", name, v);
	return rc;
}

/* The status label of slot "s", then the sample's value. */
static int
status_sample(struct buf *b, size_t s, unsigned long v)
{
	int	 rc = 0;

	if (statuses[s] != 0)
		rc |= buf_addf(b, "%d", statuses[s]);
	else
		rc |= buf_adds(b, "other");
	rc |= buf_addf(b, "\"} %lu\n", v);
	return rc;
}

/* A label value, escaped as the text format wants: \\, \" and \n. */
static int
label(struct buf *b, const char *s)
{
	int	 rc = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			rc |= buf_addc(b, '\\');
		if (*s == '\n')
			rc |= buf_adds(b, "\\n");
		else
			rc |= buf_addc(b, *s);
	}
	return rc;
}

static int
histogram(struct buf *b, const char *name, const char *help,
    struct histogram *h)
{
	unsigned long	 cum = 0;
	size_t		 i;
	int		 rc = 0;

	rc |= head(b, name, "histogram", help);
	for (i = 0; i <= h->n; i++) {
		cum += atomic_load(&h->buckets[i]);
		if (i < h->n)
			rc |= buf_addf(b, "%s_bucket{le=\"%g\"} %lu\n", name,
			    h->bounds[i], cum);
		else
			rc |= buf_addf(b, "%s_bucket{le=\"+Inf\"} %lu\n", name,
			    cum);
	}
	rc |= buf_addf(b, "%s_sum %.3f\n%s_count %lu\n", name,
	    (double)atomic_load(&h->sum_ms) / 1000.0, name,
	    atomic_load(&h->count));
	return rc;
}

int
metrics_render(struct metrics *m, const struct metrics_now *now,
    struct buf *b)
{
	static const char *const kinds[] = { "input", "output",
	    "cache_creation", "cache_read" };
	unsigned long	 v;
	size_t		 r, s, i, k;
	int		 rc;

	rc = head(b, "llmgw_build_info", "gauge", "The llmgw version running.");
	rc |= buf_addf(b, "llmgw_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	rc |= head(b, "llmgw_requests_total", "counter",
	    "Requests answered, by route and HTTP status (499: the client "
	    "went away first).");
	for (r = 0; r < NROUTES; r++)
		for (s = 0; s < NSTATUS; s++)
			if ((v = atomic_load(&m->requests[r][s])) > 0) {
				rc |= buf_addf(b, "llmgw_requests_total{"
				    "route=\"%s\",status=\"", routes[r]);
				rc |= status_sample(b, s, v);
			}
	rc |= head(b, "llmgw_upstream_responses_total", "counter",
	    "Final upstream answers, by HTTP status (none: no answer).");
	for (s = 0; s < NSTATUS; s++)
		if ((v = atomic_load(&m->upstream[s])) > 0) {
			rc |= buf_adds(b, "llmgw_upstream_responses_total"
			    "{status=\"");
			rc |= status_sample(b, s, v);
		}
	rc |= buf_addf(b, "llmgw_upstream_responses_total{status=\"none\"} "
	    "%lu\n", atomic_load(&m->upstream_none));
	rc |= counter(b, "llmgw_upstream_retries_total",
	    "Upstream attempts that were retries.", atomic_load(&m->retries));
	rc |= counter(b, "llmgw_client_disconnects_total",
	    "Requests whose client went away before the end.",
	    atomic_load(&m->disconnects));
	rc |= gauge(b, "llmgw_requests_in_flight",
	    "Chat requests being served now.", atomic_load(&m->in_flight));
	rc |= gauge(b, "llmgw_streams_in_flight",
	    "Streams (POST /chat/stream) being served now.",
	    atomic_load(&m->streams));
	rc |= head(b, "llmgw_tokens_total", "counter",
	    "Tokens used, by model and kind (input, output, cache_creation, "
	    "cache_read); models past the first 64 count as other.");
	pthread_mutex_lock(&m->lock);
	for (i = 0; i <= METRICS_MODELS; i++) {
		if (i >= m->nmodels && i < METRICS_MODELS)
			continue;
		for (k = 0; k < 4; k++) {
			if (i == METRICS_MODELS && m->models[i].tokens[k] == 0)
				continue;
			rc |= buf_adds(b, "llmgw_tokens_total{model=\"");
			rc |= label(b, m->models[i].name);
			rc |= buf_addf(b, "\",kind=\"%s\"} %lu\n", kinds[k],
			    m->models[i].tokens[k]);
		}
	}
	pthread_mutex_unlock(&m->lock);
	rc |= histogram(b, "llmgw_time_to_first_token_seconds",
	    "From request to the first token sent (the whole reply for "
	    "/chat).", &m->ttft);
	rc |= histogram(b, "llmgw_request_duration_seconds",
	    "Whole chat requests that reached the upstream.", &m->total);
	rc |= counter(b, "llmgw_spool_write_failures_total",
	    "Writes of records to the spool that failed (the records then "
	    "wait in memory).", atomic_load(&m->spool_failures));
	rc |= counter(b, "llmgw_usage_write_failures_total",
	    "Writes of usage rows to the database that failed (the rows then "
	    "wait in memory).", atomic_load(&m->usage_failures));
	rc |= gauge(b, "llmgw_spool_backlog",
	    "Records waiting in memory for the spool.",
	    (long)now->spool_backlog);
	rc |= gauge(b, "llmgw_usage_backlog",
	    "Usage rows waiting in memory for the database.",
	    (long)now->usage_backlog);
	rc |= counter(b, "llmgw_spool_records_lost_total",
	    "Records not kept (past twice backlog_max, or at exit): whole in "
	    "the log instead.", atomic_load(&m->spool_lost));
	rc |= counter(b, "llmgw_usage_rows_lost_total",
	    "Usage rows not kept (past twice backlog_max, or at exit): whole "
	    "in the log, and in the spool record for llmgw-spoold.",
	    atomic_load(&m->usage_lost));
	rc |= head(b, "llmgw_worker_threads", "gauge",
	    "Worker threads, busy with a request or idle.");
	rc |= buf_addf(b, "llmgw_worker_threads{state=\"busy\"} %ld\n",
	    now->busy);
	rc |= buf_addf(b, "llmgw_worker_threads{state=\"idle\"} %ld\n",
	    now->threads - now->busy);
	return rc;
}
