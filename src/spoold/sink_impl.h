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
	/* After a short delivery, what kind of refusal it was; NULL: a
	 * failure, to be tried again. */
	enum sink_refusal (*refusal)(void *);
};

/*
 * sink_http.c, what the sinks that POST share: the connection, the
 * headers, where to and how long.  An open function fills one; "build"
 * writes the body of a batch (-1: out of memory), given "build_arg".  Any
 * 2xx answer means the batch was taken.  400, 413 and 422 mean something
 * in it is invalid: the batch is halved until the record at fault is
 * alone, and refused as SINK_INVALID; 401 and 403 are SINK_DENIED;
 * anything else SINK_FAILED.
 */
struct buf;
struct http_sink {
	CURL			*curl;
	struct curl_slist	*headers;
	char			*url;
	long			 timeout_ms;
	size_t			 batch;
	enum sink_refusal	 refusal;	/* of the last short delivery */
	int			(*build)(const void *,
				    const struct delivery *, size_t,
				    struct buf *);
	const void		*build_arg;	/* borrowed */
};

struct http_sink *http_sink_new(const char *url, long timeout_ms,
		    size_t batch, int (*build)(const void *,
		    const struct delivery *, size_t, struct buf *),
		    const void *build_arg, struct err *);
int		 http_sink_header(struct http_sink *, const char *line,
		    struct err *);
void		 http_sink_close(void *);
size_t		 http_sink_deliver(void *, const struct delivery *, size_t,
		    struct err *);
enum sink_refusal http_sink_refusal(void *);

extern const struct sink_ops	sink_sqlite_ops;
extern const struct sink_ops	sink_pg_ops;
extern const struct sink_ops	sink_webhook_ops;
extern const struct sink_ops	sink_otlp_ops;
extern const struct sink_ops	sink_langfuse_ops;
extern const struct sink_ops	sink_jsonl_ops;
extern const struct sink_ops	sink_usage_ops;

#endif /* SINK_IMPL_H */
