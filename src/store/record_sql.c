#include "config.h"

#include <sqlite3.h>

#include "record.h"
#include "record_sql.h"

void
record_sql_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

void
record_sql_bind(sqlite3_stmt *st, const struct record *r)
{
	record_sql_text(st, 1, r->id);
	record_sql_text(st, 2, r->request_id);
	sqlite3_bind_int64(st, 3, r->ts_ms);
	record_sql_text(st, 4, r->key);
	record_sql_text(st, 5, r->route);
	record_sql_text(st, 6, r->model);
	sqlite3_bind_int(st, 7, r->status);
	sqlite3_bind_int64(st, 8, r->input_tokens);
	sqlite3_bind_int64(st, 9, r->output_tokens);
	sqlite3_bind_int64(st, 10, r->cache_creation_input_tokens);
	sqlite3_bind_int64(st, 11, r->cache_read_input_tokens);
	if (r->ttft_ms >= 0)
		sqlite3_bind_int64(st, 12, r->ttft_ms);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_int64(st, 13, r->total_ms);
	sqlite3_bind_int(st, 14, r->disconnected);
	sqlite3_bind_int(st, 15, r->partial);
	sqlite3_bind_int(st, 16, r->retries);
	if (r->upstream_status > 0)
		sqlite3_bind_int64(st, 17, r->upstream_status);
	else
		sqlite3_bind_null(st, 17);
	record_sql_text(st, 18, r->upstream_error);
	record_sql_text(st, 19, r->upstream_request_id);
	sqlite3_bind_int(st, 20, r->budget_exhausted);
}
