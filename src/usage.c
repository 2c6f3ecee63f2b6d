#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"
#include "err.h"
#include "record.h"
#include "usage.h"

#define USAGE_POOL_KEEP	16	/* idle connections kept open */

struct usage_conn {
	struct usage_conn	*next;
	sqlite3			*db;
	sqlite3_stmt		*insert;
	sqlite3_stmt		*health;
};

struct usage_db {
	pthread_mutex_t		 lock;
	char			*path;
	struct usage_conn	*idle;		/* free list */
	int			 nidle;
};

static const char insert_sql[] =
    "INSERT INTO usage (id, request_id, ts, route, model, status,"
    " input_tokens, output_tokens, cache_creation_input_tokens,"
    " cache_read_input_tokens, ttft_ms, total_ms, disconnected, partial,"
    " retries, upstream_status, upstream_error, upstream_request_id, key_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18, ?19)";

static const char health_sql[] =
    "INSERT OR REPLACE INTO health (id, ts) VALUES (1, ?1)";

struct usage_db *
usage_new(const char *path)
{
	struct usage_db	*u;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	if ((u->path = strdup(path)) == NULL) {
		free(u);
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	return u;
}

static void
conn_close(struct usage_conn *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->insert);
	sqlite3_finalize(c->health);
	sqlite3_close(c->db);
	free(c);
}

void
usage_free(struct usage_db *u)
{
	struct usage_conn	*c;

	if (u == NULL)
		return;
	while ((c = u->idle) != NULL) {
		u->idle = c->next;
		conn_close(c);
	}
	pthread_mutex_destroy(&u->lock);
	free(u->path);
	free(u);
}

static struct usage_conn *
conn_open(const char *path, struct err *err)
{
	struct usage_conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err_set(err, "database %s: out of memory", path);
		return NULL;
	}
	if ((c->db = db_open(path, err)) == NULL)
		goto fail;
	if (sqlite3_prepare_v3(c->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &c->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(c->db, health_sql, -1,
	    SQLITE_PREPARE_PERSISTENT, &c->health, NULL) != SQLITE_OK) {
		err_set(err, "database %s: prepare: %s", path,
		    sqlite3_errmsg(c->db));
		goto fail;
	}
	return c;
fail:
	conn_close(c);
	return NULL;
}

/* Take a connection from the pool, or open one. */
static struct usage_conn *
conn_get(struct usage_db *u, struct err *err)
{
	struct usage_conn	*c;

	pthread_mutex_lock(&u->lock);
	if ((c = u->idle) != NULL) {
		u->idle = c->next;
		u->nidle--;
	}
	pthread_mutex_unlock(&u->lock);
	if (c != NULL)
		return c;
	return conn_open(u->path, err);
}

/* Give a connection back; one that failed is closed, not reused. */
static void
conn_put(struct usage_db *u, struct usage_conn *c, int failed)
{
	if (!failed) {
		pthread_mutex_lock(&u->lock);
		if (u->nidle < USAGE_POOL_KEEP) {
			c->next = u->idle;
			u->idle = c;
			u->nidle++;
			c = NULL;
		}
		pthread_mutex_unlock(&u->lock);
	}
	conn_close(c);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Step a prepared statement to completion; reset it either way. */
static int
step_done(struct usage_conn *c, sqlite3_stmt *st, const char *path,
    struct err *err)
{
	int	 rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		err_set(err, "database %s: %s", path, sqlite3_errmsg(c->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
usage_add(struct usage_db *u, const struct record *r, struct err *err)
{
	struct usage_conn	*c;
	sqlite3_stmt		*st;
	int			 rc;

	if ((c = conn_get(u, err)) == NULL)
		return -1;
	st = c->insert;
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->request_id);
	sqlite3_bind_int64(st, 3, r->ts_ms);
	bind_text(st, 4, r->route);
	bind_text(st, 5, r->model);
	sqlite3_bind_int(st, 6, r->status);
	sqlite3_bind_int64(st, 7, r->input_tokens);
	sqlite3_bind_int64(st, 8, r->output_tokens);
	sqlite3_bind_int64(st, 9, r->cache_creation_input_tokens);
	sqlite3_bind_int64(st, 10, r->cache_read_input_tokens);
	if (r->ttft_ms >= 0)
		sqlite3_bind_int64(st, 11, r->ttft_ms);
	else
		sqlite3_bind_null(st, 11);
	sqlite3_bind_int64(st, 12, r->total_ms);
	sqlite3_bind_int(st, 13, r->disconnected);
	sqlite3_bind_int(st, 14, r->partial);
	sqlite3_bind_int(st, 15, r->retries);
	if (r->upstream_status > 0)
		sqlite3_bind_int64(st, 16, r->upstream_status);
	else
		sqlite3_bind_null(st, 16);
	bind_text(st, 17, r->upstream_error);
	bind_text(st, 18, r->upstream_request_id);
	bind_text(st, 19, r->key);
	rc = step_done(c, st, u->path, err);
	conn_put(u, c, rc == -1);
	return rc;
}

int
usage_check(struct usage_db *u, struct err *err)
{
	struct usage_conn	*c;
	int			 rc;

	if ((c = conn_get(u, err)) == NULL)
		return -1;
	sqlite3_bind_int64(c->health, 1, (sqlite3_int64)time(NULL));
	rc = step_done(c, c->health, u->path, err);
	conn_put(u, c, rc == -1);
	return rc;
}
