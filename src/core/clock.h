/*
 * Milliseconds, the unit every time in llmgw is kept in.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Since the epoch (CLOCK_REALTIME): for timestamps others read. */
int64_t	 clock_wall_ms(void);

/* From an arbitrary start (CLOCK_MONOTONIC): for durations and deadlines. */
int64_t	 clock_mono_ms(void);

/* "ms" from now on "clock", for the timed waits that take an absolute
 * time (pthread_cond_timedwait(), sem_timedwait()). */
struct timespec	 clock_after_ms(clockid_t clock, int64_t ms);

/* Unix time "ms" as ISO 8601 UTC with milliseconds,
 * "2026-12-04T11:04:00.123Z", for people and services reading it; ""
 * if it cannot be told. */
void	 clock_iso8601(int64_t ms, char *out, size_t size);

#endif /* CLOCK_H */
