/*
 * The database sink on PostgreSQL: request_log rows, one per record, in
 * one transaction per batch, for when sink_database (or database) is a
 * postgresql:// URI, so that the request logs of several hosts meet in
 * one place.  ON CONFLICT DO NOTHING on the record id makes a redelivery
 * (after a consumer died between delivering and removing) a no-op.
 */
#include "config.h"

#include <stdlib.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/conf.h"
#include "store/pg.h"
#include "store/record.h"
#include "sink_impl.h"

#define PG_BATCH	256	/* records in one transaction */

static void *
pg_sink_open(const struct conf *c, struct err *err)
{
	return pg_open(c->sink_database != NULL ? c->sink_database :
	    c->database, "llmgw-spoold", 1, err);
}

static void
pg_sink_close(void *arg)
{
	pg_close(arg);
}

static size_t
pg_sink_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	const struct record	*recs[PG_BATCH];
	const char		*json[PG_BATCH];
	size_t			 len[PG_BATCH], done = 0, k, i;
	int64_t			 now = clock_wall_ms();

	while (done < n) {
		k = n - done < PG_BATCH ? n - done : PG_BATCH;
		for (i = 0; i < k; i++) {
			recs[i] = d[done + i].rec;
			json[i] = d[done + i].json;
			len[i] = d[done + i].len;
		}
		if (pg_log_write(arg, recs, json, len, k, now, err) == -1)
			break;
		done += k;
	}
	return done;
}

const struct sink_ops sink_pg_ops = {
	"database", pg_sink_open, pg_sink_close, pg_sink_deliver, NULL
};
