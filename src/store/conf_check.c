/*
 * The checks of a configuration that involve more than one key, or a
 * value's meaning (conf_impl.h).
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "conf.h"
#include "conf_impl.h"
#include "pg.h"

/*
 * Where a key was set, for messages about keys that disagree: the file
 * and line, or "configuration" for a built-in default.
 */
static void
conf_where(const struct conf *c, const unsigned long *seen, const char *a,
    const char *b, struct err *err)
{
	unsigned long	 la, lb, line;

	la = conf_line_of(seen, a);
	lb = conf_line_of(seen, b);
	line = la > lb ? la : lb;
	if (c->path != NULL && line != 0)
		err_prefix(err, "%s:%lu", c->path, line);
	else
		err_prefix(err, "%s", c->path != NULL ? c->path :
		    "configuration");
}

/* The sinks named must exist and have what they need. */
static int
conf_check_sinks(struct conf *c, const unsigned long *seen, struct err *err)
{
	/* Each sink and the setting it cannot do without. */
	const struct {
		const char	*sink, *key, *hint;
		const char	*value;
	} needs[] = {
		{ "webhook", "webhook_url", "", c->webhook_url },
		{ "otlp", "otlp_endpoint", "", c->otlp_endpoint },
		{ "langfuse", "langfuse_public_key", " (pk-lf-...)",
		    c->langfuse_public_key },
		{ "langfuse", "langfuse_secret_key_file",
		    " (a file holding sk-lf-...)", c->langfuse_secret_key_file },
		{ "jsonl", "jsonl_path", " (a file, or - for standard output)",
		    c->jsonl_path },
		{ "database", NULL, NULL, NULL },
		{ "sqlite", NULL, NULL, NULL },		/* database, before */
	};
	char	**p;
	size_t	  i, known;

	for (p = c->sinks; *p != NULL; p++) {
		known = 0;
		for (i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
			if (strcmp(*p, needs[i].sink) != 0)
				continue;
			known = 1;
			if (needs[i].key != NULL && needs[i].value == NULL) {
				err_set(err, "the %s sink needs %s%s",
				    needs[i].sink, needs[i].key,
				    needs[i].hint);
				conf_where(c, seen, "sinks", needs[i].key,
				    err);
				return -1;
			}
		}
		if (!known) {
			err_set(err, "sinks: unknown sink \"%s\" (database, "
			    "webhook, otlp, langfuse or jsonl)", *p);
			conf_where(c, seen, "sinks", "sinks", err);
			return -1;
		}
	}
	if (strcmp(c->spoold_log, "stderr") != 0 &&
	    strcmp(c->spoold_log, "syslog") != 0) {
		err_set(err, "spoold_log must be stderr or syslog");
		conf_where(c, seen, "spoold_log", "spoold_log", err);
		return -1;
	}
	return 0;
}

/* log_content, and log_bodies = yes, its older spelling of "full". */
static int
conf_check_content(struct conf *c, const unsigned long *seen,
    struct err *err)
{
	/* In enum log_content's order. */
	static const char *const levels[] = { "none", "metadata", "full" };
	const int		 nlevels = (int)(sizeof(levels) /
				    sizeof(levels[0]));
	int			 i;

	c->content = c->log_bodies ? LOG_CONTENT_FULL : LOG_CONTENT_NONE;
	if (c->log_content == NULL)
		return 0;
	for (i = 0; i < nlevels && strcmp(c->log_content, levels[i]) != 0;
	    i++)
		;
	if (i == nlevels) {
		err_set(err, "log_content must be none, metadata or full");
		conf_where(c, seen, "log_content", "log_content", err);
		return -1;
	}
	if (c->log_bodies && i != LOG_CONTENT_FULL) {
		err_set(err, "log_bodies = yes is the older spelling of "
		    "log_content = full; keep one of them");
		conf_where(c, seen, "log_bodies", "log_content", err);
		return -1;
	}
	c->content = i;
	return 0;
}

/* The words of keys that take one of a few, or have a shape. */
static int
conf_check_words(struct conf *c, const unsigned long *seen, struct err *err)
{
	char	**w, *colon, *end;
	long	 v;

	for (w = c->model_max_tokens; w != NULL && *w != NULL; w++) {
		colon = strchr(*w, ':');
		v = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
		if (colon == NULL || colon == *w || colon[1] == '\0' ||
		    *end != '\0' || v < 1 || v > 1000000) {
			err_set(err, "model_max_tokens: \"%s\" is not "
			    "model:tokens (1 to 1000000)", *w);
			conf_where(c, seen, "model_max_tokens",
			    "model_max_tokens", err);
			return -1;
		}
	}
	for (w = c->model_prices; w != NULL && *w != NULL; w++) {
		struct model_price	 price;

		colon = strchr(*w, ':');
		if (colon == NULL || colon == *w ||
		    conf_price_parse(colon + 1, &price) == -1) {
			err_set(err, "model_prices: \"%s\" is not model:input:"
			    "output or model:input:output:cache_write:"
			    "cache_read (USD per million tokens)", *w);
			conf_where(c, seen, "model_prices", "model_prices",
			    err);
			return -1;
		}
	}
	if (conf_check_content(c, seen, err) == -1)
		return -1;
	c->serve_unrecorded = strcmp(c->on_record_failure, "serve") == 0;
	if (!c->serve_unrecorded &&
	    strcmp(c->on_record_failure, "refuse") != 0) {
		err_set(err, "on_record_failure must be refuse or serve");
		conf_where(c, seen, "on_record_failure", "on_record_failure",
		    err);
		return -1;
	}
	return 0;
}

int
conf_check(struct conf *c, const unsigned long *seen, struct err *err)
{
	struct group	*g;

	c->file_gid = -1;
	if (c->file_group != NULL) {
		errno = 0;
		if ((g = getgrnam(c->file_group)) == NULL) {
			err_set(err, "file_group: %s", errno != 0 ?
			    strerror(errno) : "no such group");
			conf_where(c, seen, "file_group", "file_group", err);
			return -1;
		}
		c->file_gid = (long)g->gr_gid;
	}
	if (c->default_max_tokens > c->max_tokens_limit) {
		err_set(err, "default_max_tokens (%ld) is above "
		    "max_tokens_limit (%ld)", c->default_max_tokens,
		    c->max_tokens_limit);
		conf_where(c, seen, "default_max_tokens", "max_tokens_limit",
		    err);
		return -1;
	}
	if (c->threads > c->max_threads) {
		err_set(err, "threads (%ld) is above max_threads (%ld)",
		    c->threads, c->max_threads);
		conf_where(c, seen, "threads", "max_threads", err);
		return -1;
	}
#ifndef HAVE_POSTGRESQL
	if (pg_is_uri(c->database)) {
		err_set(err, "database: this llmgw was built without "
		    "PostgreSQL; a postgresql:// database needs a build with "
		    "the Debian package libpq-dev");
		conf_where(c, seen, "database", "database", err);
		return -1;
	}
#endif
	if (conf_check_sinks(c, seen, err) == -1 ||
	    conf_check_words(c, seen, err) == -1)
		return -1;
	if (!conf_model_allowed(c, c->default_model)) {
		err_set(err, "default_model \"%s\" is not in allowed_models",
		    c->default_model);
		conf_where(c, seen, "default_model", "allowed_models", err);
		return -1;
	}
	return 0;
}

