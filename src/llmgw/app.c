#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/store.h"
#include "store/perm.h"
#include "store/spool.h"
#include "store/spool_writer.h"
#include "app.h"
#include "metrics.h"
#include "openapi.h"
#include "upstream.h"
#include "usage.h"

/* Guards app->gen while it is swapped and a reference is taken. */
static pthread_mutex_t	 gen_lock = PTHREAD_MUTEX_INITIALIZER;

static void
gen_free(struct gen *g)
{
	if (g == NULL)
		return;
	usage_close(g->usage);
	store_free(g->db);
	spool_close(g->spool);
	free(g->openapi);
	free(g->docs);
	conf_free(g->conf);
	free(g);
}

/* A generation from "conf", which it takes. */
static struct gen *
gen_new(struct conf *conf, struct metrics *metrics, struct err *err)
{
	struct gen	*g;
	struct err	 dberr;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		err_set(err, "out of memory");
		conf_free(conf);
		return NULL;
	}
	g->conf = conf;
	atomic_init(&g->refs, 1);
	if ((g->db = store_new(conf->database, "llmgw",
	    (int)conf->database_connections, err)) == NULL)
		goto fail;
	if ((g->spool = spool_open(conf->spool_dir, conf->spool_fsync)) ==
	    NULL) {
		err_set(err, "out of memory");
		goto fail;
	}
	spool_keep(g->spool, (size_t)conf->backlog_max);
	if ((g->usage = usage_open(g->db, metrics, (size_t)conf->backlog_max,
	    err)) == NULL)
		goto fail;
	if (openapi_build(conf, &g->openapi, &g->openapi_len, &g->docs,
	    &g->docs_len, err) == -1)
		goto fail;
	/* Create and migrate the database now, not in the first requests'
	 * race; if it cannot be opened, each request tries again. */
	if (store_open(g->db, 0, &dberr) == -1)
		log_warn("%s; every request will try again", dberr.msg);
	return g;
fail:
	gen_free(g);
	return NULL;
}

/* Apply --threads and single-worker mode to a configuration. */
static void
fix_threads(const struct app *app, struct conf *c)
{
	if (app->single) {
		c->threads = c->max_threads = 1;
		return;
	}
	if (app->threads > 0) {
		c->threads = app->threads;
		if (c->max_threads < app->threads)
			c->max_threads = app->threads;
	}
}

struct app *
app_new(struct conf *conf, const char *path, int required, long threads,
    int single, struct err *err)
{
	struct app	*app;

	if ((app = calloc(1, sizeof(*app))) == NULL) {
		err_set(err, "out of memory");
		conf_free(conf);
		return NULL;
	}
	app->conf_path = path;
	app->conf_required = required;
	app->threads = threads;
	app->single = single;
	fix_threads(app, conf);
	if ((app->metrics = metrics_new()) == NULL) {
		err_set(err, "out of memory");
		conf_free(conf);
		goto fail;
	}
	if ((app->gen = gen_new(conf, app->metrics, err)) == NULL)
		goto fail;
	if ((app->loop = upstream_loop_start(err)) == NULL)
		goto fail;
	return app;
fail:
	app_free(app);
	return NULL;
}

void
app_free(struct app *app)
{
	if (app == NULL)
		return;
	upstream_loop_stop(app->loop);
	app_drop(app->gen);
	metrics_free(app->metrics);
	free(app);
}

struct gen *
app_hold(struct app *app)
{
	struct gen	*g;

	pthread_mutex_lock(&gen_lock);
	g = app->gen;
	atomic_fetch_add(&g->refs, 1);
	pthread_mutex_unlock(&gen_lock);
	return g;
}

void
app_drop(struct gen *g)
{
	if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
		gen_free(g);
}

int
app_reload(struct app *app, struct err *err)
{
	struct conf	*conf;
	struct gen	*g, *old;

	if ((conf = conf_load(app->conf_path, app->conf_required, err)) ==
	    NULL)
		return -1;
	if (conf->warning[0] != '\0')
		log_warn("%s", conf->warning);
	fix_threads(app, conf);
	if ((g = gen_new(conf, app->metrics, err)) == NULL)
		return -1;
	pthread_mutex_lock(&gen_lock);
	old = app->gen;
	app->gen = g;
	pthread_mutex_unlock(&gen_lock);
	log_set_level((enum log_level)g->conf->log_level);
	perm_set(g->conf);
	app_drop(old);
	return 0;
}
