/*
 * bench_pipes_epoll.c: the pipe chain ("hot potato", libevent test/bench.c) on raw epoll with
 * no library: the floor the libraries are measured against.
 *
 *   bench_pipes_epoll -n N -a A -w W -r R [-t] [-s SEED] [-v]
 *
 * Each round:
 *   1. "delete and re-add" every read event. The interest does not change, so the least a
 *      program can do is nothing at all: every read end stays registered (EPOLLIN,
 *      level-triggered) from the start, and no syscall is made. This is the floor: the work no
 *      library can avoid (with -t, only the timeout re-arming is done here). A library that
 *      issues epoll_ctl for each delete and add (libevent without a changelist, libuv) pays
 *      two syscalls per fd per round on top of it.
 *   2. write one byte into A pairs spaced N/A apart,
 *   3. epoll_wait(timeout 0) iterations until all A + W bytes are read.
 *
 * -t: a minimal event loop's timer support, hand-written: a binary min-heap of deadlines with the
 * heap position stored per pair (O(log n) removal). Step 1 removes and re-inserts each pair's
 * deadline (now + 10 s + [0, 1 s)); each read re-inserts it with a new random value; each
 * iteration of step 3 reads CLOCK_MONOTONIC once (the loop's cached "now") and expires due
 * deadlines. No timeout ever expires within a round; the cost measured is the heap maintenance.
 */
#include "bench_common.h"

#include <sys/epoll.h>

static struct pipes_opts opts;
static int *fds;
static long reads, written, writes_left;

/* ---- deadline heap (only with -t) ---- */
static long *heap;         /* heap[k] = pair index */
static long *heap_pos;     /* heap_pos[idx] = k, or -1 */
static uint64_t *deadline; /* deadline[idx] in ns */
static long heap_len;
static uint64_t loop_now; /* cached per iteration */

static void heap_swap(long a, long b)
{
    long x = heap[a];
    heap[a] = heap[b];
    heap[b] = x;
    heap_pos[heap[a]] = a;
    heap_pos[heap[b]] = b;
}

static void heap_up(long k)
{
    while (k > 0) {
        long parent = (k - 1) / 2;
        if (deadline[heap[parent]] <= deadline[heap[k]])
            break;
        heap_swap(parent, k);
        k = parent;
    }
}

static void heap_down(long k)
{
    for (;;) {
        long l = 2 * k + 1, r = l + 1, m = k;
        if (l < heap_len && deadline[heap[l]] < deadline[heap[m]])
            m = l;
        if (r < heap_len && deadline[heap[r]] < deadline[heap[m]])
            m = r;
        if (m == k)
            return;
        heap_swap(k, m);
        k = m;
    }
}

static void heap_remove(long idx)
{
    long k = heap_pos[idx];
    if (k < 0)
        return;
    heap_pos[idx] = -1;
    heap_len--;
    if (k != heap_len) {
        heap[k] = heap[heap_len];
        heap_pos[heap[k]] = k;
        heap_down(k);
        heap_up(k);
    }
}

static void heap_insert(long idx, uint64_t when)
{
    deadline[idx] = when;
    heap[heap_len] = idx;
    heap_pos[idx] = heap_len;
    heap_len++;
    heap_up(heap_len - 1);
}

static void arm_timeout(long idx, uint64_t now)
{
    heap_remove(idx);
    heap_insert(idx, now + 10000000000ull + (uint64_t)pipes_rand_timeout_us() * 1000u);
}

/* ---- the chain ---- */

static void on_readable(long idx)
{
    unsigned char ch;
    ssize_t k = recv(fds[2 * idx], &ch, 1, 0);
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
        arm_timeout(idx, loop_now);
}

static void add_fd(int ep, long idx)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)idx;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[2 * idx], &ev) != 0)
        bc_die("EPOLL_CTL_ADD #%ld: %s", idx, strerror(errno));
}

int main(int argc, char **argv)
{
    struct pipes_stats st;
    struct epoll_event *evs;
    long i, round, space;
    int ep, maxev;

    pipes_parse(argc, argv, &opts);
    fds = pipes_make(opts.n);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bc_die("epoll_create1: %s", strerror(errno));
    maxev = opts.n < 4096 ? (int)opts.n : 4096;
    evs = calloc((size_t)maxev, sizeof(*evs));
    heap = calloc((size_t)opts.n, sizeof(*heap));
    heap_pos = malloc(sizeof(*heap_pos) * (size_t)opts.n);
    deadline = calloc((size_t)opts.n, sizeof(*deadline));
    if (!evs || !heap || !heap_pos || !deadline)
        bc_die("out of memory");
    for (i = 0; i < opts.n; i++) {
        heap_pos[i] = -1;
        add_fd(ep, i);
    }
    pipes_stats_init(&st, opts.r);
    space = opts.n / opts.a;

    for (round = 0; round < opts.r; round++) {
        uint64_t t0, t1, t2, t3;
        reads = 0;
        written = 0;
        writes_left = opts.w;

        t0 = bc_now_ns();
        if (opts.timeouts)
            loop_now = t0;
        /* The interest is unchanged: every fd stays registered (see step 1 above). */
        if (opts.timeouts)
            for (i = 0; i < opts.n; i++)
                arm_timeout(i, loop_now);
        t1 = bc_now_ns();
        for (i = 0; i < opts.a; i++) {
            pipes_send(fds, i * space);
            written++;
        }
        t2 = bc_now_ns();
        while (reads < written) {
            int k, n = epoll_wait(ep, evs, maxev, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                bc_die("epoll_wait: %s", strerror(errno));
            }
            if (opts.timeouts) {
                loop_now = bc_now_ns();
                while (heap_len > 0 && deadline[heap[0]] <= loop_now)
                    arm_timeout(heap[0], loop_now); /* expired: re-arm, as a persistent event */
            }
            for (k = 0; k < n; k++)
                on_readable((long)evs[k].data.u64);
        }
        t3 = bc_now_ns();
        pipes_stats_record(&st, &opts, round, t0, t1, t2, t3, reads);
    }
    pipes_report("epoll", &opts, &st, "epoll");

    close(ep);
    free(evs);
    free(heap);
    free(heap_pos);
    free(deadline);
    pipes_close(fds, opts.n);
    return 0;
}
