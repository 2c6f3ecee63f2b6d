/*
 * What llmgw-admin does to a spool (see spool.h): count, retry and purge.
 */
#ifndef SPOOL_ADMIN_H
#define SPOOL_ADMIN_H

#include <stdint.h>

#include "spool.h"

struct err;

struct spool_stat {
	long	 count[SPOOL_NDIRS];
	int64_t	 oldest_ms[SPOOL_NDIRS];	/* Unix ms; 0: empty */
};

/* Count each folder's records and find the oldest. */
int	 spool_stat(struct spool *, struct spool_stat *, struct err *);

/* failed/ -> new/, attempts reset; returns how many, or -1. */
long	 spool_retry_failed(struct spool *, struct err *);
/* Delete failed/ records older than "age_ms"; returns how many, or -1. */
long	 spool_purge_failed(struct spool *, long age_ms, struct err *);

#endif /* SPOOL_ADMIN_H */
