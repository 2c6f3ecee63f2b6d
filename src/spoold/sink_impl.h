/*
 * The sinks' side of sink.h: each kind fills a struct sink_ops.  Private
 * to sink*.c.
 */
#ifndef SINK_IMPL_H
#define SINK_IMPL_H

#include <curl/curl.h>

#include "sink.h"

struct sink_ops {
	const char	*name;
	void		*(*open)(const struct conf *, struct err *);
	void		 (*close)(void *);
	size_t		 (*deliver)(void *, const struct delivery *, size_t,
			    struct err *);
};

/*
 * sink_http.c, what the sinks that POST share: the connection, the
 * headers, where to and how long.  An open function fills one; "build"
 * writes the body of a batch (-1: out of memory).  Any 2xx answer means the
 * batch was taken.
 */
struct buf;
struct http_sink {
	CURL			*curl;
	struct curl_slist	*headers;
	char			*url;
	long			 timeout_ms;
	size_t			 batch;
	int			(*build)(const struct delivery *, size_t,
				    struct buf *);
};

struct http_sink *http_sink_new(const char *url, long timeout_ms,
		    size_t batch, int (*build)(const struct delivery *,
		    size_t, struct buf *), struct err *);
int		 http_sink_header(struct http_sink *, const char *line,
		    struct err *);
void		 http_sink_close(void *);
size_t		 http_sink_deliver(void *, const struct delivery *, size_t,
		    struct err *);

extern const struct sink_ops	sink_sqlite_ops;
extern const struct sink_ops	sink_webhook_ops;
extern const struct sink_ops	sink_otlp_ops;
extern const struct sink_ops	sink_jsonl_ops;
extern const struct sink_ops	sink_usage_ops;

#endif /* SINK_IMPL_H */
