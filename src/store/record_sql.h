/*
 * The record (record.h) as a row: the columns the usage table and
 * request_log share, in one order, and their one SQLite binding.  A
 * statement lists RECORD_SQL_COLUMNS first, as ?1 to ?RECORD_SQL_NCOLUMNS,
 * and its own columns after them.
 */
#ifndef RECORD_SQL_H
#define RECORD_SQL_H

struct record;
struct sqlite3_stmt;

#define RECORD_SQL_COLUMNS \
	"id, request_id, ts, key_id, route, model, status, input_tokens," \
	" output_tokens, cache_creation_input_tokens, cache_read_input_tokens," \
	" ttft_ms, total_ms, disconnected, partial, retries, upstream_status," \
	" upstream_error, upstream_request_id, budget_exhausted"
#define RECORD_SQL_NCOLUMNS	20
#define RECORD_SQL_PARAMS \
	"?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15," \
	" ?16, ?17, ?18, ?19, ?20"

/*
 * Bind "r" (borrowed until the statement is stepped) to parameters 1 to
 * RECORD_SQL_NCOLUMNS: empty strings, an unknown ttft_ms (-1) and no
 * upstream status (0) as NULL.
 */
void	 record_sql_bind(struct sqlite3_stmt *, const struct record *r);

/* Bind "s" to parameter "i": "" as NULL. */
void	 record_sql_text(struct sqlite3_stmt *, int i, const char *s);

#endif /* RECORD_SQL_H */
