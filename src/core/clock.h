/* clock.h - the two clocks choir reads, in milliseconds.
 *
 * Contract: clock_mono_ms is CLOCK_MONOTONIC (timeouts, rates, deadlines:
 * never jumps); clock_wall_ms is CLOCK_REALTIME (times shown to people and
 * written to journals and events: ms since the epoch). */
#ifndef CHOIR_CLOCK_H
#define CHOIR_CLOCK_H

#include <time.h>

static inline long long clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long clock_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static inline long long clock_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

#endif
