/*
 * bench_pipes_libevent.c: the pipe chain ("hot potato", libevent test/bench.c) on C libevent 2.1.
 *
 *   bench_pipes_libevent -n N -a A -w W -r R [-t] [-s SEED] [-v]
 *
 * One persistent EV_READ event per socketpair read end. Each round:
 *   1. event_del + event_add every event (with -t the add carries 10 s + [0, 1 s)),
 *   2. write one byte into A pairs spaced N/A apart,
 *   3. event_base_loop(EVLOOP_ONCE | EVLOOP_NONBLOCK) until all A + W bytes are read.
 * The read callback reads one byte and, while the round's budget of W writes lasts, writes
 * one byte into pair (idx + 1) mod N; with -t it re-adds its event with a new random timeout.
 *
 * bench.c also re-assigns each event between del and add; event_assign on a non-pending event
 * only fills in fields, so we skip it to match the Rust side's "delete and re-add".
 * The base is created with event_base_new(), so EVENT_NOEPOLL and friends, and
 * EVENT_EPOLL_USE_CHANGELIST, are honoured from the environment; by default libevent 2.1 has
 * no changelist and calls epoll_ctl inside every event_del/event_add.
 */
#include "bench_common.h"

#include <event2/event.h>

static struct pipes_opts opts;
static int *fds;
static struct event **events;
static long reads, written, writes_left;

static struct timeval random_timeout(void)
{
    struct timeval tv;
    tv.tv_sec = 10;
    tv.tv_usec = pipes_rand_timeout_us();
    return tv;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    long idx = (long)(intptr_t)arg;
    if (what & EV_READ) {
        unsigned char ch;
        ssize_t k = recv(fd, &ch, 1, 0);
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
    }
    if (opts.timeouts) {
        struct timeval tv = random_timeout();
        event_add(events[idx], &tv);
    }
}

int main(int argc, char **argv)
{
    struct event_base *base;
    struct pipes_stats st;
    long i, round, space;

    pipes_parse(argc, argv, &opts);
    fds = pipes_make(opts.n);
    base = event_base_new();
    if (!base)
        bc_die("event_base_new failed");
    events = calloc((size_t)opts.n, sizeof(*events));
    if (!events)
        bc_die("out of memory");
    for (i = 0; i < opts.n; i++) {
        events[i] = event_new(base, fds[2 * i], EV_READ | EV_PERSIST, read_cb, (void *)(intptr_t)i);
        if (!events[i] || event_add(events[i], NULL) != 0)
            bc_die("event_new/event_add #%ld failed", i);
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
            event_del(events[i]);
            if (opts.timeouts) {
                struct timeval tv = random_timeout();
                event_add(events[i], &tv);
            } else {
                event_add(events[i], NULL);
            }
        }
        t1 = bc_now_ns();
        for (i = 0; i < opts.a; i++) {
            pipes_send(fds, i * space);
            written++;
        }
        t2 = bc_now_ns();
        while (reads < written) {
            if (event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK) < 0)
                bc_die("event_base_loop failed");
        }
        t3 = bc_now_ns();
        pipes_stats_record(&st, &opts, round, t0, t1, t2, t3, reads);
    }
    pipes_report("libevent", &opts, &st, event_base_get_method(base));

    for (i = 0; i < opts.n; i++)
        event_free(events[i]);
    event_base_free(base);
    pipes_close(fds, opts.n);
    return 0;
}
