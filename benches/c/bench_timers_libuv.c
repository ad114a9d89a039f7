/*
 * bench_timers_libuv.c: million timers (after libuv's benchmark-million-timers) on libuv 1.x.
 *
 *   bench_timers_libuv -n K -m MIN_MS -M MAX_MS [-r R] [-s SEED] [-v]
 *
 * Before timing: K timeouts are drawn uniformly in [MIN_MS, MAX_MS] (fixed seed), a fresh loop is
 * initialised, K uv_timer_t structures are allocated in one array (libuv never allocates handles
 * itself), and uv_update_time refreshes the cached time.
 * Timed "insert": uv_timer_init + uv_timer_start for every timer (libuv's binary heap).
 * Timed "dispatch": one uv_run(UV_RUN_DEFAULT), which returns once no active handle is left; the
 * number of callbacks must be K. dispatch_cpu is user+sys CPU (getrusage) over the dispatch.
 * Closing the K handles afterwards (uv_close + uv_run) is not timed.
 */
#include "bench_common.h"

#include <uv.h>

static long fired;

static void timer_cb(uv_timer_t *t)
{
    (void)t;
    fired++;
}

static void close_noop(uv_handle_t *h) { (void)h; }

int main(int argc, char **argv)
{
    struct timers_opts opts;
    struct timers_stats st;
    uv_timer_t *timers;
    long *ms, i, round;

    timers_parse(argc, argv, &opts);
    ms = timers_draw(&opts);
    timers = calloc((size_t)opts.n, sizeof(*timers));
    if (!timers)
        bc_die("out of memory");
    timers_stats_init(&st, opts.r);

    for (round = 0; round < opts.r; round++) {
        uint64_t t0, t1, t2;
        double cpu0, cpu1;
        uv_loop_t loop;
        int rc;
        if ((rc = uv_loop_init(&loop)) != 0)
            bc_die("uv_loop_init: %s", uv_strerror(rc));
        memset(timers, 0, (size_t)opts.n * sizeof(*timers));
        fired = 0;
        uv_update_time(&loop);

        t0 = bc_now_ns();
        for (i = 0; i < opts.n; i++) {
            uv_timer_init(&loop, &timers[i]);
            if (uv_timer_start(&timers[i], timer_cb, (uint64_t)ms[i], 0) != 0)
                bc_die("uv_timer_start #%ld failed", i);
        }
        t1 = bc_now_ns();
        cpu0 = bc_cpu_ms();
        uv_run(&loop, UV_RUN_DEFAULT);
        cpu1 = bc_cpu_ms();
        t2 = bc_now_ns();
        timers_stats_record(&st, &opts, round, t0, t1, t2, cpu0, cpu1, fired);

        for (i = 0; i < opts.n; i++)
            uv_close((uv_handle_t *)&timers[i], close_noop);
        uv_run(&loop, UV_RUN_DEFAULT);
        if ((rc = uv_loop_close(&loop)) != 0)
            bc_die("uv_loop_close: %s", uv_strerror(rc));
    }
#if defined(__linux__)
    timers_report("libuv", &opts, &st, "epoll");
#else
    timers_report("libuv", &opts, &st, "auto");
#endif
    free(timers);
    free(ms);
    return 0;
}
