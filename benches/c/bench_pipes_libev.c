/*
 * bench_pipes_libev.c: the pipe chain ("hot potato", libevent test/bench.c) on libev 4.
 *
 *   bench_pipes_libev -n N -a A -w W -r R [-t] [-s SEED] [-v]
 *
 * One ev_io (EV_READ) per socketpair read end, plus one ev_timer per pair with -t (libev has
 * no timeout on an I/O watcher; this is how libev's own modified bench.c does it). Each round:
 *   1. ev_io_stop + ev_io_set + ev_io_start every watcher (with -t also ev_timer_stop +
 *      ev_timer_set(10 s + [0, 1 s)) + ev_timer_start),
 *   2. write one byte into A pairs spaced N/A apart,
 *   3. ev_run(loop, EVRUN_NOWAIT) until all A + W bytes are read.
 * The read callback reads one byte and, while the round's budget of W writes lasts, writes one
 * byte into pair (idx + 1) mod N; with -t it re-arms its timer with a new random value.
 *
 * The loop is ev_loop_new(EVFLAG_AUTO): LIBEV_FLAGS selects the backend (1 select, 2 poll,
 * 4 epoll). libev queues fd changes and applies them at the next iteration, so a stop+start of
 * the same fd costs no epoll_ctl; that cost (if any) lands in step 3, not step 1.
 */
#include "bench_common.h"

#include <ev.h>

struct pair_watch {
    ev_io io;
    ev_timer timer;
    long idx;
};

static struct pipes_opts opts;
static int *fds;
static struct pair_watch *watches;
static long reads, written, writes_left;

static ev_tstamp random_timeout(void)
{
    return 10.0 + (ev_tstamp)pipes_rand_timeout_us() / 1e6;
}

static void rearm_timer(struct ev_loop *loop, struct pair_watch *pw)
{
    ev_timer_stop(loop, &pw->timer);
    ev_timer_set(&pw->timer, random_timeout(), 0.);
    ev_timer_start(loop, &pw->timer);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pair_watch *pw = w->data;
    unsigned char ch;
    ssize_t k;
    (void)revents;
    k = recv(w->fd, &ch, 1, 0);
    if (k == 1) {
        reads++;
        if (writes_left > 0) {
            writes_left--;
            written++;
            pipes_send(fds, (pw->idx + 1) % opts.n);
        }
    } else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        bc_die("recv on pair %ld: %s", pw->idx, k == 0 ? "EOF" : strerror(errno));
    }
    if (opts.timeouts)
        rearm_timer(loop, pw);
}

/* A timeout (10 s or more) never fires within a round; if it does, re-arm like libevent's
 * persistent event would. */
static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    rearm_timer(loop, w->data);
}

static const char *backend_name(unsigned int b)
{
    switch (b) {
    case EVBACKEND_SELECT: return "select";
    case EVBACKEND_POLL: return "poll";
    case EVBACKEND_EPOLL: return "epoll";
    case EVBACKEND_KQUEUE: return "kqueue";
    case EVBACKEND_DEVPOLL: return "devpoll";
    case EVBACKEND_PORT: return "port";
#ifdef EVBACKEND_LINUXAIO
    case EVBACKEND_LINUXAIO: return "linuxaio";
#endif
#ifdef EVBACKEND_IOURING
    case EVBACKEND_IOURING: return "iouring";
#endif
    default: return "unknown";
    }
}

int main(int argc, char **argv)
{
    struct ev_loop *loop;
    struct pipes_stats st;
    long i, round, space;

    pipes_parse(argc, argv, &opts);
    fds = pipes_make(opts.n);
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        bc_die("ev_loop_new failed");
    watches = calloc((size_t)opts.n, sizeof(*watches));
    if (!watches)
        bc_die("out of memory");
    for (i = 0; i < opts.n; i++) {
        struct pair_watch *pw = &watches[i];
        pw->idx = i;
        ev_io_init(&pw->io, read_cb, fds[2 * i], EV_READ);
        pw->io.data = pw;
        ev_timer_init(&pw->timer, timeout_cb, 10., 0.);
        pw->timer.data = pw;
        ev_io_start(loop, &pw->io);
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
            ev_io_stop(loop, &pw->io);
            ev_io_set(&pw->io, fds[2 * i], EV_READ);
            ev_io_start(loop, &pw->io);
            if (opts.timeouts)
                rearm_timer(loop, pw);
        }
        t1 = bc_now_ns();
        for (i = 0; i < opts.a; i++) {
            pipes_send(fds, i * space);
            written++;
        }
        t2 = bc_now_ns();
        while (reads < written)
            ev_run(loop, EVRUN_NOWAIT);
        t3 = bc_now_ns();
        pipes_stats_record(&st, &opts, round, t0, t1, t2, t3, reads);
    }
    pipes_report("libev", &opts, &st, backend_name(ev_backend(loop)));

    for (i = 0; i < opts.n; i++) {
        ev_io_stop(loop, &watches[i].io);
        ev_timer_stop(loop, &watches[i].timer);
    }
    ev_loop_destroy(loop);
    free(watches);
    pipes_close(fds, opts.n);
    return 0;
}
