/*
 * bench_timers_libev.c: million timers (after libuv's benchmark-million-timers) on libev 4.
 *
 *   bench_timers_libev -n K -m MIN_MS -M MAX_MS [-r R] [-s SEED] [-v]
 *
 * Before timing: K timeouts are drawn uniformly in [MIN_MS, MAX_MS] (fixed seed), a fresh loop
 * is created (ev_loop_new(EVFLAG_AUTO)), K ev_timer structures are allocated in one array
 * (libev never allocates watchers itself), and ev_now_update refreshes the cached time.
 * Timed "insert": ev_timer_init + ev_timer_start for every timer (libev's 4-ary heap).
 * Timed "dispatch": one ev_run(loop, 0), which returns once no active watcher is left; the number
 * of callbacks must be K. dispatch_cpu is user+sys CPU (getrusage) over the dispatch.
 */
#include "bench_common.h"

#include <ev.h>

static long fired;

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fired++;
}

static const char *backend_name(unsigned int b)
{
    switch (b) {
    case EVBACKEND_SELECT: return "select";
    case EVBACKEND_POLL: return "poll";
    case EVBACKEND_EPOLL: return "epoll";
    case EVBACKEND_KQUEUE: return "kqueue";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    struct timers_opts opts;
    struct timers_stats st;
    ev_timer *timers;
    long *ms, i, round;
    const char *method = "unknown";

    timers_parse(argc, argv, &opts);
    ms = timers_draw(&opts);
    timers = calloc((size_t)opts.n, sizeof(*timers));
    if (!timers)
        bc_die("out of memory");
    timers_stats_init(&st, opts.r);

    for (round = 0; round < opts.r; round++) {
        uint64_t t0, t1, t2;
        double cpu0, cpu1;
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        if (!loop)
            bc_die("ev_loop_new failed");
        method = backend_name(ev_backend(loop));
        memset(timers, 0, (size_t)opts.n * sizeof(*timers));
        fired = 0;
        ev_now_update(loop);

        t0 = bc_now_ns();
        for (i = 0; i < opts.n; i++) {
            ev_timer_init(&timers[i], timer_cb, (ev_tstamp)ms[i] / 1e3, 0.);
            ev_timer_start(loop, &timers[i]);
        }
        t1 = bc_now_ns();
        cpu0 = bc_cpu_ms();
        ev_run(loop, 0);
        cpu1 = bc_cpu_ms();
        t2 = bc_now_ns();
        timers_stats_record(&st, &opts, round, t0, t1, t2, cpu0, cpu1, fired);
        ev_loop_destroy(loop);
    }
    timers_report("libev", &opts, &st, method);
    free(timers);
    free(ms);
    return 0;
}
