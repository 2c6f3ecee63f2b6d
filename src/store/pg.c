#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/str.h"
#include "pg.h"
#include "record.h"

int
pg_is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0;
}

#ifndef HAVE_POSTGRESQL

int
pg_schema_version(void)
{
	return 0;
}

struct pg *
pg_open(const char *uri, const char *program, int migrate, struct err *err)
{
	(void)uri;
	(void)program;
	(void)migrate;
	err_set(err, "this llmgw was built without PostgreSQL (configure "
	    "found no libpq, or --without-postgresql): a postgresql:// "
	    "database needs a build with the Debian package libpq-dev");
	return NULL;
}

void
pg_close(struct pg *p)
{
	(void)p;
}

const char *
pg_name(const struct pg *p)
{
	(void)p;
	return "PostgreSQL";
}

int
pg_version(struct pg *p, int *version, struct err *err)
{
	(void)p;
	*version = 0;
	err_set(err, "built without PostgreSQL");
	return -1;
}

int
pg_migrate(struct pg *p, struct err *err)
{
	(void)p;
	err_set(err, "built without PostgreSQL");
	return -1;
}

int
pg_log_write(struct pg *p, const struct record *const *recs,
    const char *const *json, const size_t *len, size_t n, int64_t now,
    struct err *err)
{
	(void)p;
	(void)recs;
	(void)json;
	(void)len;
	(void)n;
	(void)now;
	err_set(err, "built without PostgreSQL");
	return -1;
}

int
pg_log_report(struct pg *p, enum pg_rows from, enum pg_group by,
    int64_t since, int64_t until, const char *key,
    int (*fn)(void *, const struct pg_log_row *), void *arg, struct err *err)
{
	(void)p;
	(void)from;
	(void)by;
	(void)since;
	(void)until;
	(void)key;
	(void)fn;
	(void)arg;
	err_set(err, "built without PostgreSQL");
	return -1;
}

#else /* HAVE_POSTGRESQL */

#include <libpq-fe.h>

#include "pg_impl.h"

/* Any number, the same in every llmgw: the lock migrations take. */
#define PG_MIGRATION_LOCK	"7083770101"
#define PG_CONNECT_TIMEOUT	"10"	/* seconds, unless the URI says */

/* Each migration takes the schema from its index to the next version. */
static const char *const migrations[] = {
	/* 0 -> 1: the request log, as llmgw-spoold's database sink
	 * writes it (the record column: the record as spooled, text
	 * rather than jsonb, which refuses a NUL in a string). */
	"CREATE TABLE request_log ("
	"  id text PRIMARY KEY,"
	"  request_id text NOT NULL,"
	"  ts bigint NOT NULL,"
	"  end_ts bigint,"
	"  delivered_ts bigint NOT NULL,"
	"  key_id text,"
	"  route text NOT NULL,"
	"  model text,"
	"  status integer NOT NULL,"
	"  input_tokens bigint NOT NULL DEFAULT 0,"
	"  output_tokens bigint NOT NULL DEFAULT 0,"
	"  cache_creation_input_tokens bigint NOT NULL DEFAULT 0,"
	"  cache_read_input_tokens bigint NOT NULL DEFAULT 0,"
	"  ttft_ms bigint,"
	"  total_ms bigint NOT NULL DEFAULT 0,"
	"  disconnected boolean NOT NULL DEFAULT false,"
	"  partial boolean NOT NULL DEFAULT false,"
	"  retries integer NOT NULL DEFAULT 0,"
	"  upstream boolean NOT NULL DEFAULT false,"
	"  upstream_status integer,"
	"  upstream_error text,"
	"  upstream_request_id text,"
	"  budget_exhausted boolean NOT NULL DEFAULT false,"
	"  record text NOT NULL"
	");"
	"CREATE INDEX request_log_ts ON request_log (ts);"
	"CREATE INDEX request_log_request_id ON request_log (request_id);",

	/*
	 * 1 -> 2: the state every host shares (store.h): keys, tokens
	 * settled per key and period, the holds of running requests (each
	 * with the host and process that made it, and its lease), the
	 * requests of each key's last minute, a usage row per request that
	 * reached the upstream, and the row /healthz writes.
	 */
	"CREATE TABLE keys ("
	"  id text PRIMARY KEY,"
	"  name text NOT NULL UNIQUE,"
	"  hash text NOT NULL UNIQUE,"
	"  prefix text NOT NULL,"
	"  created bigint NOT NULL,"
	"  expires bigint,"
	"  revoked bigint,"
	"  budget_tokens bigint,"
	"  budget_period text CHECK (budget_period IN ('day', 'month')),"
	"  rpm bigint,"
	"  models text,"
	"  max_overshoot bigint NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE budget_use ("
	"  key_id text NOT NULL,"
	"  period text NOT NULL,"
	"  tokens bigint NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (key_id, period)"
	");"
	"CREATE TABLE reservations ("
	"  id text PRIMARY KEY,"
	"  key_id text NOT NULL,"
	"  period text NOT NULL,"
	"  tokens bigint NOT NULL,"
	"  host text NOT NULL,"
	"  pid bigint NOT NULL,"
	"  start bigint NOT NULL,"
	"  expires bigint NOT NULL,"
	"  ts bigint NOT NULL,"
	"  route text,"
	"  model text"
	");"
	"CREATE INDEX reservations_key ON reservations (key_id, period);"
	"CREATE INDEX reservations_host ON reservations (host);"
	"CREATE TABLE rate_hits (key_id text NOT NULL, ts bigint NOT NULL);"
	"CREATE INDEX rate_hits_key ON rate_hits (key_id, ts);"
	"CREATE TABLE usage ("
	"  id text PRIMARY KEY,"
	"  request_id text NOT NULL,"
	"  ts bigint NOT NULL,"
	"  key_id text,"
	"  route text NOT NULL,"
	"  model text,"
	"  status integer NOT NULL,"
	"  input_tokens bigint NOT NULL DEFAULT 0,"
	"  output_tokens bigint NOT NULL DEFAULT 0,"
	"  cache_creation_input_tokens bigint NOT NULL DEFAULT 0,"
	"  cache_read_input_tokens bigint NOT NULL DEFAULT 0,"
	"  ttft_ms bigint,"
	"  total_ms bigint NOT NULL DEFAULT 0,"
	"  disconnected boolean NOT NULL DEFAULT false,"
	"  partial boolean NOT NULL DEFAULT false,"
	"  retries integer NOT NULL DEFAULT 0,"
	"  upstream_status integer,"
	"  upstream_error text,"
	"  upstream_request_id text,"
	"  budget_exhausted boolean NOT NULL DEFAULT false,"
	"  hold_charged boolean NOT NULL DEFAULT false"
	");"
	"CREATE INDEX usage_ts ON usage (ts);"
	"CREATE TABLE health (id integer PRIMARY KEY, ts bigint NOT NULL);",
};

#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char insert_sql[] =
    "INSERT INTO request_log (id, request_id, ts, key_id, route, model,"
    " status, input_tokens, output_tokens, cache_creation_input_tokens,"
    " cache_read_input_tokens, ttft_ms, total_ms, disconnected, partial,"
    " retries, upstream_status, upstream_error, upstream_request_id,"
    " budget_exhausted, end_ts, delivered_ts, upstream, record) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    " $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    " ON CONFLICT (id) DO NOTHING";
#define INSERT_NPARAMS	24
/* The request log's insert, apart from pg_run()'s statements. */
#define PG_LOG_PREPARED	(UINT64_C(1) << 63)

int
pg_schema_version(void)
{
	return NMIGRATIONS;
}

/* libpq's NOTICEs ("relation exists") are not for the log. */
static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

void
pg_error(struct pg *p, const char *what, struct err *err)
{
	char	 msg[ERR_MAX];

	str_copy(msg, sizeof(msg), PQerrorMessage(p->conn));
	msg[strcspn(msg, "\n")] = '\0';
	err_set(err, "%s: %s: %s", p->name, what, msg);
}

int
pg_connect(struct pg *p, struct err *err)
{
	const char	*keys[] = { "connect_timeout", "application_name",
			    "dbname", NULL };
	const char	*values[] = { PG_CONNECT_TIMEOUT, p->program, p->uri,
			    NULL };
	const char	*host;

	PQfinish(p->conn);
	p->prepared = 0;
	/* The URI comes last: its own settings win. */
	if ((p->conn = PQconnectdbParams(keys, values, 1)) == NULL) {
		err_set(err, "PostgreSQL: out of memory");
		return -1;
	}
	host = PQhost(p->conn);
	snprintf(p->name, sizeof(p->name), "PostgreSQL database %s on %s",
	    PQdb(p->conn) != NULL ? PQdb(p->conn) : "?",
	    host != NULL && *host != '\0' ? host : "the default socket");
	if (PQstatus(p->conn) != CONNECTION_OK) {
		pg_error(p, "connect", err);
		return -1;
	}
	PQsetNoticeProcessor(p->conn, quiet, NULL);
	return 0;
}

int
pg_exec(struct pg *p, const char *sql, const char *what, struct err *err)
{
	PGresult	*res;
	int		 ok;

	res = PQexec(p->conn, sql);
	ok = res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
	if (!ok)
		pg_error(p, what, err);
	return ok ? 0 : -1;
}

struct pg *
pg_open(const char *uri, const char *program, int migrate, struct err *err)
{
	struct pg	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->uri = strdup(uri)) == NULL) {
		free(p);
		err_set(err, "out of memory");
		return NULL;
	}
	str_copy(p->program, sizeof(p->program), program);
	str_copy(p->name, sizeof(p->name), "PostgreSQL");
	if (pg_connect(p, err) == -1 || (migrate && pg_migrate(p, err) == -1)) {
		pg_close(p);
		return NULL;
	}
	return p;
}

void
pg_close(struct pg *p)
{
	if (p == NULL)
		return;
	PQfinish(p->conn);
	if (p->uri != NULL)
		explicit_bzero(p->uri, strlen(p->uri));
	free(p->uri);
	free(p);
}

const char *
pg_name(const struct pg *p)
{
	return p->name;
}

/* The version in llmgw_schema, which must exist: 0, or -1. */
static int
read_version(struct pg *p, int *version, struct err *err)
{
	PGresult	*res;
	int		 ok;

	res = PQexec(p->conn, "SELECT max(version) FROM llmgw_schema");
	ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1;
	*version = ok && !PQgetisnull(res, 0, 0) ?
	    atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	if (!ok)
		pg_error(p, "read the schema version", err);
	return ok ? 0 : -1;
}

int
pg_version(struct pg *p, int *version, struct err *err)
{
	PGresult	*res;
	int		 exists;

	*version = 0;
	res = PQexec(p->conn, "SELECT to_regclass('llmgw_schema') IS NOT NULL");
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQntuples(res) != 1) {
		PQclear(res);
		pg_error(p, "read the schema version", err);
		return -1;
	}
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return exists ? read_version(p, version, err) : 0;
}

int
pg_migrate(struct pg *p, struct err *err)
{
	char	 set[64];
	int	 v, i;

	if (pg_exec(p, "BEGIN", "migrate", err) == -1)
		return -1;
	if (pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")",
	    "migrate", err) == -1 || pg_exec(p, "CREATE TABLE IF NOT EXISTS "
	    "llmgw_schema (version integer NOT NULL)", "migrate", err) == -1 ||
	    read_version(p, &v, err) == -1)
		goto fail;
	if (v > NMIGRATIONS) {
		err_set(err, "%s: schema version %d is newer than this "
		    "llmgw's (%d)", p->name, v, NMIGRATIONS);
		goto fail;
	}
	for (i = v; i < NMIGRATIONS; i++)
		if (pg_exec(p, migrations[i], "migrate", err) == -1)
			goto fail;
	snprintf(set, sizeof(set), "DELETE FROM llmgw_schema; INSERT INTO "
	    "llmgw_schema VALUES (%d)", NMIGRATIONS);
	if ((v < NMIGRATIONS && pg_exec(p, set, "migrate", err) == -1) ||
	    pg_exec(p, "COMMIT", "migrate", err) == -1)
		goto fail;
	return 0;
fail:
	pg_rollback(p);
	return -1;
}

const char *
pg_num(char *buf, long long v)
{
	snprintf(buf, 24, "%lld", v);
	return buf;
}

static const char *
text_or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

static const char *
boolean(int v)
{
	return v ? "true" : "false";
}

void
pg_record_params(const struct record *r, const char *v[PG_RECORD_NPARAMS],
    char n[PG_RECORD_NPARAMS][24])
{
	v[0] = r->id;
	v[1] = r->request_id;
	v[2] = pg_num(n[2], r->ts_ms);
	v[3] = text_or_null(r->key);
	v[4] = r->route;
	v[5] = text_or_null(r->model);
	v[6] = pg_num(n[6], r->status);
	v[7] = pg_num(n[7], r->input_tokens);
	v[8] = pg_num(n[8], r->output_tokens);
	v[9] = pg_num(n[9], r->cache_creation_input_tokens);
	v[10] = pg_num(n[10], r->cache_read_input_tokens);
	v[11] = r->ttft_ms >= 0 ? pg_num(n[11], r->ttft_ms) : NULL;
	v[12] = pg_num(n[12], r->total_ms);
	v[13] = boolean(r->disconnected);
	v[14] = boolean(r->partial);
	v[15] = pg_num(n[15], r->retries);
	v[16] = r->upstream_status > 0 ? pg_num(n[16], r->upstream_status) :
	    NULL;
	v[17] = text_or_null(r->upstream_error);
	v[18] = text_or_null(r->upstream_request_id);
	v[19] = boolean(r->budget_exhausted);
}

void
pg_rollback(struct pg *p)
{
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

PGresult *
pg_run(struct pg *p, const struct pg_stmt *stmts, enum pg_stmt_id n,
    const char *const *v, struct err *err)
{
	const struct pg_stmt	*st = &stmts[n];
	PGresult		*res;
	char			 what[96];

	if (!(p->prepared & (UINT64_C(1) << n))) {
		res = PQprepare(p->conn, st->name, st->sql, st->nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			snprintf(what, sizeof(what), "prepare %s", st->name);
			pg_error(p, what, err);
			return NULL;
		}
		PQclear(res);
		p->prepared |= UINT64_C(1) << n;
	}
	res = PQexecPrepared(p->conn, st->name, st->nparams, v, NULL, NULL, 0);
	if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)) {
		PQclear(res);
		pg_error(p, st->name, err);
		return NULL;
	}
	return res;
}

/* One record's row, inside the open transaction: 0, or -1. */
static int
insert(struct pg *p, const struct record *r, const char *json, size_t len,
    int64_t now, struct err *err)
{
	const char	*v[INSERT_NPARAMS];
	int		 lengths[INSERT_NPARAMS] = { 0 };
	int		 formats[INSERT_NPARAMS] = { 0 };
	char		 n[INSERT_NPARAMS][24];
	PGresult	*res;
	int		 ok;

	pg_record_params(r, v, n);
	v[20] = r->end_ms > 0 ? pg_num(n[20], r->end_ms) : NULL;
	v[21] = pg_num(n[21], now);
	v[22] = boolean(r->upstream);
	/* The record is a line of a spool file, not NUL-terminated: passed
	 * in binary form, which for text is its bytes. */
	v[23] = json;
	lengths[23] = (int)len;
	formats[23] = 1;
	res = PQexecPrepared(p->conn, "llmgw_log_insert", INSERT_NPARAMS, v,
	    lengths, formats, 0);
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		pg_error(p, "insert into request_log", err);
	return ok ? 0 : -1;
}

int
pg_log_write(struct pg *p, const struct record *const *recs,
    const char *const *json, const size_t *len, size_t n, int64_t now,
    struct err *err)
{
	PGresult	*res;
	size_t		 i;

	if (PQstatus(p->conn) != CONNECTION_OK && pg_connect(p, err) == -1)
		return -1;
	if (!(p->prepared & PG_LOG_PREPARED)) {
		res = PQprepare(p->conn, "llmgw_log_insert", insert_sql,
		    INSERT_NPARAMS, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			pg_error(p, "prepare", err);
			return -1;
		}
		PQclear(res);
		p->prepared |= PG_LOG_PREPARED;
	}
	if (pg_exec(p, "BEGIN", "begin", err) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (insert(p, recs[i], json[i], len[i], now, err) == -1) {
			err_prefix(err, "record %s", recs[i]->id);
			pg_rollback(p);
			return -1;
		}
	if (pg_exec(p, "COMMIT", "commit", err) == -1) {
		pg_rollback(p);
		return -1;
	}
	return 0;
}

int
pg_log_report(struct pg *p, enum pg_rows from, enum pg_group by,
    int64_t since, int64_t until, const char *key,
    int (*fn)(void *, const struct pg_log_row *), void *arg, struct err *err)
{
	static const char *const groups[] = {
		[PG_BY_KEY] = "coalesce(u.key_id, '-')",
		[PG_BY_MODEL] = "coalesce(u.model, '-')",
		[PG_BY_DAY] = "to_char(to_timestamp(u.ts / 1000.0) AT TIME "
		    "ZONE 'UTC', 'YYYY-MM-DD')",
		[PG_BY_ROUTE] = "u.route",
	};
	struct pg_log_row	 row;
	const char		*v[3];
	char			 sql[640], a[24], b[24];
	PGresult		*res;
	int			 i, n, rc = 0;

	if (PQstatus(p->conn) != CONNECTION_OK && pg_connect(p, err) == -1)
		return -1;
	/*
	 * The usage rows are in the database of the keys, which name them
	 * as SQLite's report does; the request log may be in another, and
	 * names keys by id.  The usage table has rows of requests that
	 * reached the upstream only.
	 */
	snprintf(sql, sizeof(sql), "SELECT %s, u.status, u.input_tokens,"
	    " u.output_tokens, u.total_ms, u.ttft_ms FROM %s WHERE %su.ts >= $1"
	    " AND u.ts < $2%s ORDER BY 1", by == PG_BY_KEY && from == PG_USAGE ?
	    "coalesce(k.name, u.key_id, '-')" : groups[by], from == PG_USAGE ?
	    "usage u LEFT JOIN keys k ON k.id = u.key_id" : "request_log u",
	    from == PG_USAGE ? "" : "u.upstream AND ", key == NULL ? "" :
	    from == PG_USAGE ? " AND (k.name = $3 OR u.key_id = $3)" :
	    " AND u.key_id = $3");
	v[0] = pg_num(a, since);
	v[1] = pg_num(b, until);
	v[2] = key;
	res = PQexecParams(p->conn, sql, key != NULL ? 3 : 2, NULL, v, NULL,
	    NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		pg_error(p, from == PG_USAGE ? "read usage" :
		    "read request_log", err);
		return -1;
	}
	n = PQntuples(res);
	for (i = 0; i < n && rc == 0; i++) {
		row.group = PQgetvalue(res, i, 0);
		row.status = atoi(PQgetvalue(res, i, 1));
		row.input_tokens = atol(PQgetvalue(res, i, 2));
		row.output_tokens = atol(PQgetvalue(res, i, 3));
		row.total_ms = atol(PQgetvalue(res, i, 4));
		row.ttft_ms = PQgetisnull(res, i, 5) ? -1 :
		    atol(PQgetvalue(res, i, 5));
		if (fn(arg, &row) == -1) {
			err_set(err, "out of memory");
			rc = -1;
		}
	}
	PQclear(res);
	return rc;
}

#endif /* HAVE_POSTGRESQL */
