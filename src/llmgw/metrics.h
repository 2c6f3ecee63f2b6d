/*
 * Counters for GET /metrics, in the Prometheus text format.  Shared by all
 * threads of a process: counters with a fixed set of labels are atomics,
 * per-model token counts sit behind a mutex in a small table (at most
 * METRICS_MODELS models; more are counted as "other", so a client cannot
 * grow it without end).  Everything counts from the process's start.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

struct buf;
struct metrics;
struct record;

#define METRICS_MODELS	64

struct metrics	*metrics_new(void);
void		 metrics_free(struct metrics *);	/* NULL is fine */

/* A request began (stream: on /chat/stream) or ended. */
void	 metrics_request_begin(struct metrics *, int stream);
void	 metrics_request_end(struct metrics *, int stream);

/* A finished request: status, tokens, times, retries, from its record. */
void	 metrics_record(struct metrics *, const struct record *);
/* A request on a route that is not a chat route. */
void	 metrics_route(struct metrics *, const char *route, int status);

/* A write that failed (the row or record then waits), or one given up. */
void	 metrics_spool_failure(struct metrics *);
void	 metrics_usage_failure(struct metrics *);
void	 metrics_spool_lost(struct metrics *);
void	 metrics_usage_lost(struct metrics *);

/* Gauges the caller reads from elsewhere. */
struct metrics_now {
	long	 threads;		/* worker threads */
	long	 busy;			/* ... busy with a request */
	size_t	 usage_backlog;		/* rows waiting in memory */
	size_t	 spool_backlog;		/* records waiting in memory */
};

/*
 * Append the exposition: every metric with HELP and TYPE lines.  Returns
 * 0 or -1 if the buffer is full.
 */
int	 metrics_render(struct metrics *, const struct metrics_now *,
	    struct buf *);

#endif /* METRICS_H */
