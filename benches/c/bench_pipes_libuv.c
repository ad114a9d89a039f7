/*
 * bench_pipes_libuv.c: the pipe chain ("hot potato", libevent test/bench.c) on libuv 1.x.
 *
 *   bench_pipes_libuv -n N -a A -w W -r R [-t] [-s SEED] [-v]
 *
 * One uv_poll_t (UV_READABLE) on each socketpair read end, plus one uv_timer_t per pair with -t.
 * Each round:
 *   1. uv_poll_stop + uv_poll_start every poll handle (with -t also uv_timer_stop +
 *      uv_timer_start(10 000 ms + [0, 1000) ms); libuv timers have millisecond resolution),
 *   2. write one byte into A pairs spaced N/A apart,
 *   3. uv_run(loop, UV_RUN_NOWAIT) until all A + W bytes are read.
 * The poll callback reads one byte and, while the round's budget of W writes lasts, writes one
 * byte into pair (idx + 1) mod N; with -t it restarts its timer with a new random value.
 *
 * libuv 1.44 on Linux removes the fd from epoll inside uv_poll_stop and re-adds it at the next
 * uv_run, so part of the cost of step 1 lands in step 3.
 */
#include "bench_common.h"

#include <uv.h>

struct pair_watch {
    uv_poll_t poll;
    uv_timer_t timer;
    long idx;
};

static struct pipes_opts opts;
static int *fds;
static struct pair_watch *watches;
static long reads, written, writes_left;

static void timeout_cb(uv_timer_t *t);

static void rearm_timer(struct pair_watch *pw)
{
    uint64_t ms = 10000 + (uint64_t)(pipes_rand_timeout_us() / 1000);
    uv_timer_stop(&pw->timer);
    if (uv_timer_start(&pw->timer, timeout_cb, ms, 0) != 0)
        bc_die("uv_timer_start failed");
}

/* A timeout (10 s or more) never fires within a round; if it does, re-arm like libevent's
 * persistent event would. */
static void timeout_cb(uv_timer_t *t)
{
    rearm_timer(t->data);
}

static void poll_cb(uv_poll_t *h, int status, int revents)
{
    struct pair_watch *pw = h->data;
    long idx = pw->idx;
    unsigned char ch;
    ssize_t k;
    if (status < 0)
        bc_die("poll on pair %ld: %s", idx, uv_strerror(status));
    (void)revents;
    k = recv(fds[2 * idx], &ch, 1, 0);
    if (k == 1) {
        reads++;
        if (writes_left > 0) {
            writes_left--;
            written++;
            pipes_send(fds, (idx + 1) % opts.n);
        }
    } else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        bc_die("recv on pair %ld: %s", idx, k == 0 ? "EOF" : strerror(errno));
    }
    if (opts.timeouts)
        rearm_timer(pw);
}

static void close_noop(uv_handle_t *h) { (void)h; }

int main(int argc, char **argv)
{
    uv_loop_t loop;
    struct pipes_stats st;
    long i, round, space;
    int rc;

    pipes_parse(argc, argv, &opts);
    fds = pipes_make(opts.n);
    if ((rc = uv_loop_init(&loop)) != 0)
        bc_die("uv_loop_init: %s", uv_strerror(rc));
    watches = calloc((size_t)opts.n, sizeof(*watches));
    if (!watches)
        bc_die("out of memory");
    for (i = 0; i < opts.n; i++) {
        struct pair_watch *pw = &watches[i];
        pw->idx = i;
        if ((rc = uv_poll_init(&loop, &pw->poll, fds[2 * i])) != 0)
            bc_die("uv_poll_init #%ld: %s", i, uv_strerror(rc));
        pw->poll.data = pw;
        if ((rc = uv_timer_init(&loop, &pw->timer)) != 0)
            bc_die("uv_timer_init #%ld: %s", i, uv_strerror(rc));
        pw->timer.data = pw;
        if ((rc = uv_poll_start(&pw->poll, UV_READABLE, poll_cb)) != 0)
            bc_die("uv_poll_start #%ld: %s", i, uv_strerror(rc));
    }
    pipes_stats_init(&st, opts.r);
    space = opts.n / opts.a;

    for (round = 0; round < opts.r; round++) {
        uint64_t t0, t1, t2, t3;
        reads = 0;
        written = 0;
        writes_left = opts.w;

        t0 = bc_now_ns();
        for (i = 0; i < opts.n; i++) {
            struct pair_watch *pw = &watches[i];
            uv_poll_stop(&pw->poll);
            uv_poll_start(&pw->poll, UV_READABLE, poll_cb);
            if (opts.timeouts)
                rearm_timer(pw);
        }
        t1 = bc_now_ns();
        for (i = 0; i < opts.a; i++) {
            pipes_send(fds, i * space);
            written++;
        }
        t2 = bc_now_ns();
        while (reads < written)
            uv_run(&loop, UV_RUN_NOWAIT);
        t3 = bc_now_ns();
        pipes_stats_record(&st, &opts, round, t0, t1, t2, t3, reads);
    }
#if defined(__linux__)
    pipes_report("libuv", &opts, &st, "epoll");
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    pipes_report("libuv", &opts, &st, "kqueue");
#else
    pipes_report("libuv", &opts, &st, "unknown");
#endif

    for (i = 0; i < opts.n; i++) {
        uv_close((uv_handle_t *)&watches[i].poll, close_noop);
        uv_close((uv_handle_t *)&watches[i].timer, close_noop);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(watches);
    pipes_close(fds, opts.n);
    return 0;
}
