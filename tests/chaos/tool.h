/*
 * tool.h — what cwriter and creader share: the stop flag their SIGTERM and
 * SIGINT handler sets, the two clocks, and an interruptible sleep.
 */
#ifndef MK_CHAOS_TOOL_H
#define MK_CHAOS_TOOL_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static inline void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* CLOCK_REALTIME in ns: the clock of every log line (and of the driver's). */
static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps ns nanoseconds; a signal ends the sleep early (the caller looks at
 * stop_requested). */
static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

#endif
