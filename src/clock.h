/*
 * Milliseconds, the unit every time in llmgw is kept in.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>

/* Since the epoch (CLOCK_REALTIME): for timestamps others read. */
int64_t	 clock_wall_ms(void);

/* From an arbitrary start (CLOCK_MONOTONIC): for durations and deadlines. */
int64_t	 clock_mono_ms(void);

#endif /* CLOCK_H */
