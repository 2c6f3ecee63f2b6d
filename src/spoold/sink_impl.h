/*
 * The sinks' side of sink.h: each kind fills a struct sink_ops.  Private
 * to sink*.c.
 */
#ifndef SINK_IMPL_H
#define SINK_IMPL_H

#include "sink.h"

struct sink_ops {
	const char	*name;
	void		*(*open)(const struct conf *, struct err *);
	void		 (*close)(void *);
	size_t		 (*deliver)(void *, const struct delivery *, size_t,
			    struct err *);
};

extern const struct sink_ops	sink_sqlite_ops;
extern const struct sink_ops	sink_webhook_ops;
extern const struct sink_ops	sink_jsonl_ops;
extern const struct sink_ops	sink_usage_ops;

#endif /* SINK_IMPL_H */
