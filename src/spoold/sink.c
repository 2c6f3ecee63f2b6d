#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/conf.h"
#include "store/pg.h"
#include "sink_impl.h"

struct sink {
	const struct sink_ops	*ops;
	void			*impl;
};

static const struct sink_ops *const kinds[] = {
	&sink_sqlite_ops, &sink_webhook_ops, &sink_otlp_ops,
	&sink_langfuse_ops, &sink_jsonl_ops, &sink_usage_ops
};

struct sink *
sink_open(const char *name, const struct conf *conf, struct err *err)
{
	struct sink	*s;
	size_t		 i;

	if (strcmp(name, "sqlite") == 0)	/* its older name */
		name = "database";
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0])) {
		err_set(err, "unknown sink \"%s\"", name);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
	s->ops = kinds[i];
	/* The database sink (sqlite its older name) on the backend its
	 * database names. */
	if (kinds[i] == &sink_sqlite_ops && pg_is_uri(conf->sink_database !=
	    NULL ? conf->sink_database : conf->database))
		s->ops = &sink_pg_ops;
	if ((s->impl = s->ops->open(conf, err)) == NULL) {
		err_prefix(err, "%s sink", name);
		free(s);
		return NULL;
	}
	return s;
}

void
sink_close(struct sink *s)
{
	if (s == NULL)
		return;
	s->ops->close(s->impl);
	free(s);
}

size_t
sink_deliver(struct sink *s, const struct delivery *d, size_t n,
    enum sink_refusal *why, struct err *err)
{
	size_t	 done;

	*why = SINK_FAILED;
	done = s->ops->deliver(s->impl, d, n, err);
	if (done < n) {
		err_prefix(err, "%s sink", s->ops->name);
		if (s->ops->refusal != NULL)
			*why = s->ops->refusal(s->impl);
	}
	return done;
}
