/*
 * The usage sink, which llmgw-spoold runs before the configured ones:
 * the usage row of every record that reached the upstream (store/ledger.h),
 * so that a row llmgw did not get to write (it was killed before its
 * writer committed, or its database was down until it stopped) is in the
 * database once the record is delivered, its budget settled.  A row llmgw
 * wrote is found there and left alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/store.h"
#include "store/record.h"
#include "sink_impl.h"

struct usage_sink {
	struct store	*db;
	struct record	*rows;		/* a batch, side by side */
	size_t		 cap;
};

static void *
usage_open(const struct conf *c, struct err *err)
{
	struct usage_sink	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
	if ((s->db = store_new(c->database, "llmgw-spoold",
	    (int)c->database_connections, err)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

static void
usage_close(void *arg)
{
	struct usage_sink	*s = arg;

	store_free(s->db);
	free(s->rows);
	free(s);
}

static size_t
usage_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	struct usage_sink	*s = arg;
	struct record		*rows;
	size_t			 i;
	long			 added;

	if (n > s->cap) {
		if ((rows = reallocarray(s->rows, n, sizeof(*rows))) == NULL) {
			err_set(err, "out of memory");
			return 0;
		}
		s->rows = rows;
		s->cap = n;
	}
	for (i = 0; i < n; i++)
		s->rows[i] = *d[i].rec;
	if ((added = store_ledger_write(s->db, s->rows, n, 0, err)) == -1)
		return 0;
	if (added > 0)
		log_info("usage: %ld rows written from the spool, which llmgw "
		    "had not written", added);
	return n;
}

const struct sink_ops sink_usage_ops = {
	"usage", usage_open, usage_close, usage_deliver, NULL
};
