/*
 * What fcgi.c (records in) and fcgi_out.c (records out) share: the
 * records that answer a peer's management records and refuse its extra
 * requests, queued in "ctl" while reading and written by fcgi_out.c.
 */
#ifndef LLMGW_FCGI_IMPL_H
#define LLMGW_FCGI_IMPL_H

#include <stddef.h>

struct fcgi;

/* Queue a record of "len" bytes of content (no padding) in "ctl". */
int	 fcgi_queue_record(struct fcgi *, int type, unsigned id,
	    const void *content, size_t len);
/* END_REQUEST for "id" with "app" status and protocol status "proto". */
int	 fcgi_queue_end(struct fcgi *, unsigned id, int app, int proto);
/* Write the queued answers to management records: 0, or -1. */
int	 fcgi_send_ctl(struct fcgi *);

#endif
