/*
 * bench_buffer.c: the workloads of benches/src/bin/bench_buffer.rs against
 * libevent's evbuffer, printing the same RESULT lines with impl=libevent.
 *
 * Build and run (Debian: apt-get install libevent-dev pkg-config):
 *
 *   cc -O2 bench_buffer.c $(pkg-config --cflags --libs libevent_core) -o /tmp/bench_buffer_c
 *   /tmp/bench_buffer_c
 *
 * - buffer.add_drain: add 64 chunks of 16 B (cfg=chunk16) or 16 KiB
 *   (cfg=chunk16384), then drain them one chunk at a time; the figure is the
 *   time of one add plus one drain.
 * - buffer.readln: evbuffer_readln(EVBUFFER_EOL_CRLF) over a 1 MiB buffer of
 *   80-byte lines (78 bytes and CR LF), built by adding the lines one by one
 *   (building is not timed); each line is freed as the Rust side drops it.
 * - buffer.move: evbuffer_add_buffer of a 64 MiB buffer (4096 adds of
 *   16 KiB) into an empty buffer, back and forth.
 *
 * Each figure is the median of 7 runs.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#define RUNS 7
#define BATCH 64

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof(double), cmp_double);
    return v[RUNS / 2];
}

static void result(const char *name, const char *cfg, double value, const char *unit)
{
    printf("RESULT name=%s impl=libevent cfg=%s value=%.3f unit=%s\n", name, cfg, value, unit);
}

static volatile size_t sink;

static double add_drain(size_t chunk, size_t total_ops)
{
    char *data = malloc(chunk);
    struct evbuffer *buf = evbuffer_new();
    size_t rounds = total_ops / BATCH, r, i;
    double t;
    memset(data, 'x', chunk);
    t = now_ns();
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < BATCH; i++)
            evbuffer_add(buf, data, chunk);
        for (i = 0; i < BATCH; i++)
            evbuffer_drain(buf, chunk);
    }
    t = now_ns() - t;
    assert(evbuffer_get_length(buf) == 0);
    evbuffer_free(buf);
    free(data);
    return t / (double)(rounds * BATCH);
}

static double readln(void)
{
    char line[80];
    struct evbuffer *buf = evbuffer_new();
    size_t n = 0, expect, len;
    char *l;
    double t;
    memset(line, 'a', 78);
    line[78] = '\r';
    line[79] = '\n';
    while (evbuffer_get_length(buf) + sizeof(line) <= (1u << 20))
        evbuffer_add(buf, line, sizeof(line));
    expect = evbuffer_get_length(buf) / sizeof(line);
    t = now_ns();
    while ((l = evbuffer_readln(buf, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        sink += len;
        free(l);
        n++;
    }
    t = now_ns() - t;
    assert(n == expect);
    evbuffer_free(buf);
    return t / 1e6;
}

static double move_64mib(void)
{
    static char chunk[16 * 1024];
    struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
    int i, moves = 10000;
    double t;
    memset(chunk, 'm', sizeof(chunk));
    for (i = 0; i < 4096; i++)
        evbuffer_add(a, chunk, sizeof(chunk));
    t = now_ns();
    for (i = 0; i < moves / 2; i++) {
        evbuffer_add_buffer(b, a);
        evbuffer_add_buffer(a, b);
    }
    t = now_ns() - t;
    assert(evbuffer_get_length(a) == (size_t)64 << 20);
    evbuffer_free(a);
    evbuffer_free(b);
    return t / 1e3 / moves;
}

int main(void)
{
    double v[RUNS];
    int i;
    for (i = 0; i < RUNS; i++)
        v[i] = add_drain(16, 1u << 22);
    result("buffer.add_drain", "chunk16", median(v), "ns_per_op");
    for (i = 0; i < RUNS; i++)
        v[i] = add_drain(16 * 1024, 1u << 15);
    result("buffer.add_drain", "chunk16384", median(v), "ns_per_op");
    for (i = 0; i < RUNS; i++)
        v[i] = readln();
    result("buffer.readln", "lines80_1MiB", median(v), "ms");
    for (i = 0; i < RUNS; i++)
        v[i] = move_64mib();
    result("buffer.move", "64MiB", median(v), "us");
    return 0;
}
