/*
 * Telling a live process from a dead one whose pid was reused: a pid
 * together with its start time (clock ticks since boot) names one process.
 */
#ifndef PROC_H
#define PROC_H

/* The start time of process "pid", or 0 if there is none. */
unsigned long long	 proc_start(long pid);

/* This process's start time (read once). */
unsigned long long	 proc_self_start(void);

/* 1 if "pid" is running and started at "start". */
int			 proc_alive(long pid, unsigned long long start);

#endif /* PROC_H */
