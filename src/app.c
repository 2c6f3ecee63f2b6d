#include "config.h"

#include <stdlib.h>

#include "app.h"
#include "conf.h"
#include "err.h"
#include "openapi.h"
#include "spool.h"
#include "upstream.h"
#include "usage.h"

struct app *
app_new(struct conf *conf, struct err *err)
{
	struct app	*app;

	if ((app = calloc(1, sizeof(*app))) == NULL) {
		err_set(err, "out of memory");
		conf_free(conf);
		return NULL;
	}
	app->conf = conf;
	if ((app->usage = usage_new(conf->database)) == NULL ||
	    (app->spool = spool_open(conf->spool_dir, conf->spool_fsync)) ==
	    NULL) {
		err_set(err, "out of memory");
		goto fail;
	}
	if (openapi_build(conf, &app->openapi, &app->openapi_len, &app->docs,
	    &app->docs_len, err) == -1)
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
	usage_free(app->usage);
	spool_close(app->spool);
	free(app->openapi);
	free(app->docs);
	conf_free(app->conf);
	free(app);
}
