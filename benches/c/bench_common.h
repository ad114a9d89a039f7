/*
 * bench_common.h: shared helpers for the oxevent C comparison benchmarks.
 *
 * Everything here is `static` so each bench_*.c is a single translation unit:
 *   cc -O2 -o build/bench_pipes_libevent bench_pipes_libevent.c $(pkg-config --libs libevent)
 *
 * Output contract (see docs/BENCHMARKING.md): one line per figure,
 *   RESULT name=<metric> impl=<impl> cfg=<params> value=<number> unit=<unit> [key=value ...]
 * on stdout; diagnostics and -v per-round figures go to stderr.
 */
#ifndef OXEVENT_BENCH_COMMON_H
#define OXEVENT_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BC_UNUSED __attribute__((unused))

/* ------------------------------------------------------------------ */
/* errors                                                              */

BC_UNUSED static void bc_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* clocks                                                              */

/* Wall time, CLOCK_MONOTONIC, in nanoseconds. */
BC_UNUSED static uint64_t bc_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        bc_die("clock_gettime: %s", strerror(errno));
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system CPU time of this process, in milliseconds (getrusage). */
BC_UNUSED static double bc_cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        bc_die("getrusage: %s", strerror(errno));
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* ------------------------------------------------------------------ */
/* deterministic random numbers (splitmix64)                           */

static uint64_t bc_rng_state = 1;

BC_UNUSED static void bc_seed(uint64_t seed) { bc_rng_state = seed; }

BC_UNUSED static uint64_t bc_rand64(void)
{
    uint64_t z = (bc_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound). */
BC_UNUSED static uint64_t bc_rand_below(uint64_t bound)
{
    return bound ? bc_rand64() % bound : 0;
}

/* ------------------------------------------------------------------ */
/* statistics                                                          */

static int bc_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n); sorts a copy. */
BC_UNUSED static double bc_median(const double *v, int n)
{
    double *c, m;
    if (n <= 0)
        return 0.0;
    c = malloc(sizeof(double) * (size_t)n);
    if (!c)
        bc_die("out of memory");
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), bc_cmp_double);
    m = (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2.0;
    free(c);
    return m;
}

/* ------------------------------------------------------------------ */
/* numbers on the command line                                         */

BC_UNUSED static long bc_parse_long(const char *opt, const char *s, long min)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min)
        bc_die("bad value for %s: '%s' (want an integer >= %ld)", opt, s, min);
    return v;
}

/* Raise RLIMIT_NOFILE to at least `want` (best effort, like bench.c). */
BC_UNUSED static void bc_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        rl.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "warning: setrlimit(RLIMIT_NOFILE, %lu): %s\n",
                (unsigned long)want, strerror(errno));
}

/* ------------------------------------------------------------------ */
/* the pipe chain ("hot potato", libevent test/bench.c)                */

struct pipes_opts {
    long n;        /* -n: socketpairs                       (default 100) */
    long a;        /* -a: active pairs written each round   (default 1)   */
    long w;        /* -w: chained writes per round          (default n)   */
    long r;        /* -r: rounds                            (default 25)  */
    int timeouts;  /* -t: each add carries a 10 s + [0, 1 s) timeout     */
    uint64_t seed; /* -s: random seed for the timeouts      (default 1)   */
    int verbose;   /* -v: per-round figures on stderr                     */
};

BC_UNUSED static void pipes_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -n N -a A -w W -r R [-t] [-s SEED] [-v]\n"
            "  -n N     socketpairs (default 100)\n"
            "  -a A     active pairs written at the start of a round, spaced N/A apart (default 1)\n"
            "  -w W     chained writes per round (default N)\n"
            "  -r R     rounds; medians are printed (default 25)\n"
            "  -t       every add carries a random timeout of 10 s + [0, 1 s), re-armed on every event\n"
            "  -s SEED  seed for the random timeouts (default 1)\n"
            "  -v       print every round's figures on stderr\n",
            prog);
    exit(2);
}

BC_UNUSED static void pipes_parse(int argc, char **argv, struct pipes_opts *o)
{
    int c, w_set = 0;
    o->n = 100;
    o->a = 1;
    o->w = 0;
    o->r = 25;
    o->timeouts = 0;
    o->seed = 1;
    o->verbose = 0;
    while ((c = getopt(argc, argv, "n:a:w:r:ts:vh")) != -1) {
        switch (c) {
        case 'n': o->n = bc_parse_long("-n", optarg, 1); break;
        case 'a': o->a = bc_parse_long("-a", optarg, 1); break;
        case 'w': o->w = bc_parse_long("-w", optarg, 0); w_set = 1; break;
        case 'r': o->r = bc_parse_long("-r", optarg, 1); break;
        case 't': o->timeouts = 1; break;
        case 's': o->seed = (uint64_t)bc_parse_long("-s", optarg, 0); break;
        case 'v': o->verbose = 1; break;
        default: pipes_usage(argv[0]);
        }
    }
    if (optind != argc)
        pipes_usage(argv[0]);
    if (!w_set)
        o->w = o->n;
    if (o->a > o->n)
        bc_die("-a %ld is larger than -n %ld", o->a, o->n);
    bc_seed(o->seed);
}

/* Microseconds of the random part of a timeout: uniform in [0, 1 s). */
BC_UNUSED static long pipes_rand_timeout_us(void)
{
    return (long)bc_rand_below(1000000);
}

/*
 * N AF_UNIX SOCK_STREAM socketpairs, both ends nonblocking.
 * fds[2*i] is the read end (watched), fds[2*i+1] the write end.
 */
BC_UNUSED static int *pipes_make(long n)
{
    long i;
    int *fds = malloc(sizeof(int) * 2 * (size_t)n);
    if (!fds)
        bc_die("out of memory");
    bc_raise_nofile((rlim_t)(2 * n + 50));
    for (i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
            bc_die("socketpair #%ld: %s", i, strerror(errno));
        fds[2 * i] = sv[0];
        fds[2 * i + 1] = sv[1];
    }
    return fds;
}

BC_UNUSED static void pipes_close(int *fds, long n)
{
    long i;
    for (i = 0; i < 2 * n; i++)
        close(fds[i]);
    free(fds);
}

/* Write the one-byte "potato" into pair `idx`. */
BC_UNUSED static void pipes_send(int *fds, long idx)
{
    ssize_t k = send(fds[2 * idx + 1], "e", 1, MSG_NOSIGNAL);
    if (k != 1)
        bc_die("send to pair %ld: %s", idx, k < 0 ? strerror(errno) : "short write");
}

/* Per-round figures, in microseconds. */
struct pipes_stats {
    double *setup, *dispatch, *total;
    long events; /* reads in the last round */
};

BC_UNUSED static void pipes_stats_init(struct pipes_stats *s, long rounds)
{
    s->setup = calloc((size_t)rounds, sizeof(double));
    s->dispatch = calloc((size_t)rounds, sizeof(double));
    s->total = calloc((size_t)rounds, sizeof(double));
    s->events = 0;
    if (!s->setup || !s->dispatch || !s->total)
        bc_die("out of memory");
}

/* t0: before step 1, t1: after step 1, t2: after step 2 (writes), t3: after step 3. */
BC_UNUSED static void pipes_stats_record(struct pipes_stats *s, const struct pipes_opts *o,
                                         long round, uint64_t t0, uint64_t t1, uint64_t t2,
                                         uint64_t t3, long reads)
{
    s->setup[round] = (double)(t1 - t0) / 1e3;
    s->dispatch[round] = (double)(t3 - t2) / 1e3;
    s->total[round] = (double)(t3 - t0) / 1e3;
    s->events = reads;
    if (reads != o->a + o->w)
        bc_die("round %ld: %ld reads, expected %ld", round, reads, o->a + o->w);
    if (o->verbose)
        fprintf(stderr, "round %ld: setup %.3f us, dispatch %.3f us, total %.3f us, reads %ld\n",
                round, s->setup[round], s->dispatch[round], s->total[round], reads);
}

BC_UNUSED static void pipes_report(const char *impl, const struct pipes_opts *o,
                                   const struct pipes_stats *s, const char *backend)
{
    char cfg[96];
    int r = (int)o->r;
    snprintf(cfg, sizeof cfg, "n%ld_a%ld_w%ld_t%d", o->n, o->a, o->w, o->timeouts);
    printf("RESULT name=pipes.setup impl=%s cfg=%s value=%.3f unit=us_per_round events=%ld "
           "rounds=%d method=%s\n", impl, cfg, bc_median(s->setup, r), s->events, r, backend);
    printf("RESULT name=pipes.dispatch impl=%s cfg=%s value=%.3f unit=us_per_round events=%ld "
           "rounds=%d method=%s\n", impl, cfg, bc_median(s->dispatch, r), s->events, r, backend);
    printf("RESULT name=pipes.total impl=%s cfg=%s value=%.3f unit=us_per_round events=%ld "
           "rounds=%d method=%s\n", impl, cfg, bc_median(s->total, r), s->events, r, backend);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* million timers (libuv benchmark-million-timers)                     */

struct timers_opts {
    long n;        /* -n: timers                (default 1000000) */
    long min_ms;   /* -m: shortest timeout, ms  (default 1)       */
    long max_ms;   /* -M: longest timeout, ms   (default 1000)    */
    long r;        /* -r: rounds; medians       (default 1)       */
    uint64_t seed; /* -s: seed                  (default 1)       */
    int verbose;   /* -v: per-round figures on stderr             */
};

BC_UNUSED static void timers_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -n K -m MIN_MS -M MAX_MS [-r R] [-s SEED] [-v]\n"
            "  -n K       timers (default 1000000)\n"
            "  -m MIN_MS  shortest timeout in ms (default 1)\n"
            "  -M MAX_MS  longest timeout in ms (default 1000)\n"
            "  -r R       rounds, each on a fresh loop; medians are printed (default 1)\n"
            "  -s SEED    seed of the timeout draw (default 1)\n"
            "  -v         print every round's figures on stderr\n",
            prog);
    exit(2);
}

BC_UNUSED static void timers_parse(int argc, char **argv, struct timers_opts *o)
{
    int c;
    o->n = 1000000;
    o->min_ms = 1;
    o->max_ms = 1000;
    o->r = 1;
    o->seed = 1;
    o->verbose = 0;
    while ((c = getopt(argc, argv, "n:m:M:r:s:vh")) != -1) {
        switch (c) {
        case 'n': o->n = bc_parse_long("-n", optarg, 1); break;
        case 'm': o->min_ms = bc_parse_long("-m", optarg, 0); break;
        case 'M': o->max_ms = bc_parse_long("-M", optarg, 0); break;
        case 'r': o->r = bc_parse_long("-r", optarg, 1); break;
        case 's': o->seed = (uint64_t)bc_parse_long("-s", optarg, 0); break;
        case 'v': o->verbose = 1; break;
        default: timers_usage(argv[0]);
        }
    }
    if (optind != argc)
        timers_usage(argv[0]);
    if (o->min_ms > o->max_ms)
        bc_die("-m %ld is larger than -M %ld", o->min_ms, o->max_ms);
    bc_seed(o->seed);
}

/* K timeouts in ms, uniform in [min_ms, max_ms], drawn before any timing. */
BC_UNUSED static long *timers_draw(const struct timers_opts *o)
{
    long i, *ms = malloc(sizeof(long) * (size_t)o->n);
    if (!ms)
        bc_die("out of memory");
    for (i = 0; i < o->n; i++)
        ms[i] = o->min_ms + (long)bc_rand_below((uint64_t)(o->max_ms - o->min_ms + 1));
    return ms;
}

struct timers_stats {
    double *insert_ms, *dispatch_ms, *dispatch_cpu_ms, *total_ms;
};

BC_UNUSED static void timers_stats_init(struct timers_stats *s, long rounds)
{
    s->insert_ms = calloc((size_t)rounds, sizeof(double));
    s->dispatch_ms = calloc((size_t)rounds, sizeof(double));
    s->dispatch_cpu_ms = calloc((size_t)rounds, sizeof(double));
    s->total_ms = calloc((size_t)rounds, sizeof(double));
    if (!s->insert_ms || !s->dispatch_ms || !s->dispatch_cpu_ms || !s->total_ms)
        bc_die("out of memory");
}

/* t0: before insert, t1: after insert, t2: after dispatch; cpu0/cpu1 around dispatch. */
BC_UNUSED static void timers_stats_record(struct timers_stats *s, const struct timers_opts *o,
                                          long round, uint64_t t0, uint64_t t1, uint64_t t2,
                                          double cpu0, double cpu1, long fired)
{
    s->insert_ms[round] = (double)(t1 - t0) / 1e6;
    s->dispatch_ms[round] = (double)(t2 - t1) / 1e6;
    s->dispatch_cpu_ms[round] = cpu1 - cpu0;
    s->total_ms[round] = (double)(t2 - t0) / 1e6;
    if (fired != o->n)
        bc_die("round %ld: %ld timers fired, expected %ld", round, fired, o->n);
    if (o->verbose)
        fprintf(stderr, "round %ld: insert %.3f ms, dispatch %.3f ms (cpu %.3f ms), total %.3f ms\n",
                round, s->insert_ms[round], s->dispatch_ms[round], s->dispatch_cpu_ms[round],
                s->total_ms[round]);
}

BC_UNUSED static void timers_report(const char *impl, const struct timers_opts *o,
                                    const struct timers_stats *s, const char *backend)
{
    char cfg[96];
    int r = (int)o->r;
    double insert = bc_median(s->insert_ms, r);
    snprintf(cfg, sizeof cfg, "n%ld_ms%ld-%ld", o->n, o->min_ms, o->max_ms);
    printf("RESULT name=timers.insert impl=%s cfg=%s value=%.3f unit=ms fired=%ld rounds=%d "
           "method=%s\n", impl, cfg, insert, o->n, r, backend);
    printf("RESULT name=timers.dispatch impl=%s cfg=%s value=%.3f unit=ms fired=%ld rounds=%d "
           "method=%s\n", impl, cfg, bc_median(s->dispatch_ms, r), o->n, r, backend);
    printf("RESULT name=timers.dispatch_cpu impl=%s cfg=%s value=%.3f unit=ms fired=%ld rounds=%d "
           "method=%s\n", impl, cfg, bc_median(s->dispatch_cpu_ms, r), o->n, r, backend);
    printf("RESULT name=timers.total impl=%s cfg=%s value=%.3f unit=ms fired=%ld rounds=%d "
           "method=%s\n", impl, cfg, bc_median(s->total_ms, r), o->n, r, backend);
    /* per timer: the median insert time divided by K */
    printf("RESULT name=timers.insert_per_timer impl=%s cfg=%s value=%.2f unit=ns fired=%ld "
           "rounds=%d method=%s\n", impl, cfg, insert * 1e6 / (double)o->n, o->n, r, backend);
    fflush(stdout);
}

#endif /* OXEVENT_BENCH_COMMON_H */
