/*
 * Milliseconds, the unit every time in llmgw is kept in.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>
#include <time.h>

/* Since the epoch (CLOCK_REALTIME): for timestamps others read. */
int64_t	 clock_wall_ms(void);

/* From an arbitrary start (CLOCK_MONOTONIC): for durations and deadlines. */
int64_t	 clock_mono_ms(void);

/* A clock_mono_ms() time as a timespec, for pthread_cond_timedwait() on a
 * condition that uses CLOCK_MONOTONIC. */
struct timespec	 clock_mono_timespec(int64_t ms);

#endif /* CLOCK_H */
