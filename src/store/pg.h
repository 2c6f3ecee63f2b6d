/*
 * PostgreSQL, through libpq, for state that several hosts share.  A
 * database named by a postgresql:// (or postgres://) URI, libpq's own
 * form, is PostgreSQL; anything else is a SQLite path (db.h).
 *
 * PostgreSQL holds the request log (llmgw-spoold's database sink) and,
 * through store.h, the keys, budgets, rates and usage rows of every host;
 * its schema is versioned like SQLite's, in the table llmgw_schema, and
 * each migration runs in one transaction under an advisory lock, so that
 * several hosts starting at once do not trip over each other.
 *
 * A URI may hold a password: messages name the database and host libpq
 * reports, never the URI.  Built without libpq (configure
 * --without-postgresql), pg_open() fails saying so.
 */
#ifndef PG_H
#define PG_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct pg;
struct record;

/* 1 if "database" names a PostgreSQL database. */
int		 pg_is_uri(const char *database);

/* The schema version this build writes. */
int		 pg_schema_version(void);

/*
 * Connect to "uri" as "program" (its application_name); with "migrate",
 * bring the schema up to date.  NULL with "err" set if it cannot.
 */
struct pg	*pg_open(const char *uri, const char *program, int migrate,
		    struct err *);
void		 pg_close(struct pg *);	/* NULL is fine */

/* "database <name> on <host>", for messages. */
const char	*pg_name(const struct pg *);

/* The schema version of the database (0: none yet): 0, or -1. */
int		 pg_version(struct pg *, int *version, struct err *);

/* Bring the schema up to date: 0, or -1 with "err" set. */
int		 pg_migrate(struct pg *, struct err *);

/*
 * Write "n" records to request_log in one transaction, with "json[i]"
 * ("len[i]" bytes) as each one's record column and "now" (Unix ms) as its
 * delivery time; one already there is left as it is.  0, or -1 with
 * "err" set (then none was written).  A lost connection is made again
 * on the next call.
 */
int		 pg_log_write(struct pg *, const struct record *const *recs,
		    const char *const *json, const size_t *len, size_t n,
		    int64_t now, struct err *);

/* One request of the request log, for a report. */
struct pg_log_row {
	const char	*group;		/* the value grouped by */
	int		 status;
	long		 input_tokens;
	long		 output_tokens;
	long		 total_ms;
	long		 ttft_ms;	/* -1: no first token */
};

/* What a report groups the request log by. */
enum pg_group { PG_BY_KEY, PG_BY_MODEL, PG_BY_DAY, PG_BY_ROUTE };

/* Which rows a report reads: the request log's, or the usage rows. */
enum pg_rows { PG_REQUEST_LOG, PG_USAGE };

/*
 * The requests of "from" that reached the upstream, from
 * "since" to before "until" (Unix ms), of key id "key" (NULL: all), in
 * order of their group, each passed to "fn"; its -1 stops them.  0, or -1
 * with "err" set.
 */
int		 pg_log_report(struct pg *, enum pg_rows from, enum pg_group,
		    int64_t since, int64_t until, const char *key,
		    int (*fn)(void *, const struct pg_log_row *), void *arg,
		    struct err *);

#endif /* PG_H */
