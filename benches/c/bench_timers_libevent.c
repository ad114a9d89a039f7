/*
 * bench_timers_libevent.c: million timers (after libuv's benchmark-million-timers) on libevent 2.1.
 *
 *   bench_timers_libevent -n K -m MIN_MS -M MAX_MS [-r R] [-s SEED] [-v]
 *
 * Before timing: K timeouts are drawn uniformly in [MIN_MS, MAX_MS] (fixed seed), a fresh
 * event_base is created and the memory for K events is allocated in one block
 * (event_get_struct_event_size() each); libevent lets us pre-allocate through event_assign.
 * Timed "insert": evtimer_assign + event_add for every timer.
 * Timed "dispatch": one event_base_dispatch, which returns once no event is left; the number of
 * callbacks must be K. dispatch_cpu is user+sys CPU (getrusage) over the dispatch.
 * Wall-clock dispatch is bounded below by MAX_MS; the CPU figure is the one to compare.
 */
#include "bench_common.h"

#include <event2/event.h>
#include <event2/event_struct.h>

static long fired;

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fired++;
}

int main(int argc, char **argv)
{
    struct timers_opts opts;
    struct timers_stats st;
    size_t stride;
    char *mem;
    long *ms, i, round;
    const char *method = "unknown";

    timers_parse(argc, argv, &opts);
    ms = timers_draw(&opts);
    stride = event_get_struct_event_size();
    mem = calloc((size_t)opts.n, stride);
    if (!mem)
        bc_die("out of memory");
    timers_stats_init(&st, opts.r);

    for (round = 0; round < opts.r; round++) {
        uint64_t t0, t1, t2;
        double cpu0, cpu1;
        struct event_base *base = event_base_new();
        if (!base)
            bc_die("event_base_new failed");
        method = event_base_get_method(base);
        memset(mem, 0, (size_t)opts.n * stride);
        fired = 0;

        t0 = bc_now_ns();
        for (i = 0; i < opts.n; i++) {
            struct event *ev = (struct event *)(mem + (size_t)i * stride);
            struct timeval tv;
            tv.tv_sec = ms[i] / 1000;
            tv.tv_usec = (ms[i] % 1000) * 1000;
            evtimer_assign(ev, base, timer_cb, NULL);
            if (event_add(ev, &tv) != 0)
                bc_die("event_add #%ld failed", i);
        }
        t1 = bc_now_ns();
        cpu0 = bc_cpu_ms();
        if (event_base_dispatch(base) < 0)
            bc_die("event_base_dispatch failed");
        cpu1 = bc_cpu_ms();
        t2 = bc_now_ns();
        timers_stats_record(&st, &opts, round, t0, t1, t2, cpu0, cpu1, fired);
        event_base_free(base);
    }
    timers_report("libevent", &opts, &st, method);
    free(mem);
    free(ms);
    return 0;
}
