/*
 * dns_bench_libevent.c: the DNS resolver benchmark client (issue 7) against
 * libevent's evdns. Same CLI and output as benches/src/bin/dns_bench.rs:
 *
 *   dns_bench_libevent -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T SECS] [-i IMPL]
 *
 * One base, one evdns_base with that nameserver only (no resolv.conf, no
 * hosts, no search list), max-inflight raised to F; Q lookups of
 * name<i>.bench.test, i from xorshift64* below NAMES, F in flight. A lookup
 * is ok when it is NOERROR with exactly one A record equal to 10.0.0.0+i+1.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>

static uint64_t q_total, f_window, n_names, seed = 1, limit_s = 60;
static const char *impl = "libevent";
static uint64_t started, done_n, ok_n, errors_n;
static uint64_t *lat;
static uint64_t prng;
static struct event_base *base;
static struct evdns_base *dns;

struct lookup {
    uint64_t t0;
    uint32_t want; /* network order */
    uint64_t i;
};

static uint64_t xs(void)
{
    uint64_t x = prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    prng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void launch(void);

static void on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct lookup *l = arg;
    (void)ttl;
    uint64_t ns = bc_now_ns() - l->t0;
    done_n++;
    if (result == DNS_ERR_NONE && type == DNS_IPv4_A && count == 1 &&
        ((uint32_t *)addresses)[0] == l->want) {
        lat[ok_n++] = ns;
    } else {
        errors_n++;
        if (errors_n <= 5)
            fprintf(stderr, "lookup of name%llu.bench.test failed: %s\n",
                    (unsigned long long)l->i, evdns_err_to_string(result));
    }
    free(l);
    if (done_n == q_total) {
        event_base_loopbreak(base);
        return;
    }
    launch();
}

static void launch(void)
{
    while (started < q_total && started - done_n < f_window) {
        char name[64];
        struct lookup *l = malloc(sizeof *l);
        if (!l)
            bc_die("out of memory");
        started++;
        l->i = xs() % n_names;
        l->want = htonl(0x0A000000u + (uint32_t)l->i + 1);
        snprintf(name, sizeof name, "name%llu.bench.test", (unsigned long long)l->i);
        l->t0 = bc_now_ns();
        if (!evdns_base_resolve_ipv4(dns, name, DNS_QUERY_NO_SEARCH, on_answer, l)) {
            free(l);
            done_n++;
            errors_n++;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (ok_n == 0)
        return 0;
    size_t idx = (size_t)((double)(ok_n - 1) * p + 0.5);
    if (idx >= ok_n)
        idx = ok_n - 1;
    return lat[idx] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: dns_bench_libevent -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T SECS] [-i IMPL]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *server = NULL;
    for (int k = 1; k + 1 < argc; k += 2) {
        const char *o = argv[k], *v = argv[k + 1];
        if (!strcmp(o, "-s")) server = v;
        else if (!strcmp(o, "-q")) q_total = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-f")) f_window = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-n")) n_names = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-S")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-T")) limit_s = strtoull(v, NULL, 10);
        else if (!strcmp(o, "-i")) impl = v;
        else usage();
    }
    if (argc % 2 == 0 || !server || !q_total || !f_window || !n_names)
        usage();
    prng = seed ? seed : 1;
    lat = calloc(q_total, sizeof *lat);
    base = event_base_new();
    dns = evdns_base_new(base, 0);
    if (!lat || !base || !dns)
        bc_die("setup failed");
    if (evdns_base_nameserver_ip_add(dns, server) != 0)
        bc_die("bad nameserver %s", server);
    char f[32];
    snprintf(f, sizeof f, "%llu", (unsigned long long)f_window);
    if (evdns_base_set_option(dns, "max-inflight:", f) != 0)
        bc_die("max-inflight");
    struct timeval tv = {(time_t)limit_s, 0};
    event_base_loopexit(base, &tv);
    double cpu0 = bc_cpu_ms();
    uint64_t w0 = bc_now_ns();
    launch();
    event_base_dispatch(base);
    double wall = (bc_now_ns() - w0) / 1e9;
    double cpu = bc_cpu_ms() - cpu0;
    if (done_n < q_total) {
        fprintf(stderr, "stopped after %llu s with %llu of %llu lookups done\n",
                (unsigned long long)limit_s, (unsigned long long)done_n,
                (unsigned long long)q_total);
        errors_n += q_total - done_n;
    }
    qsort(lat, ok_n, sizeof *lat, cmp_u64);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "q%llu_f%llu", (unsigned long long)q_total,
             (unsigned long long)f_window);
    printf("RESULT name=dns.resolve.rate impl=%s cfg=%s value=%.0f unit=per_s errors=%llu ok=%llu\n",
           impl, cfg, ok_n / wall, (unsigned long long)errors_n, (unsigned long long)ok_n);
    printf("RESULT name=dns.resolve.p50 impl=%s cfg=%s value=%.1f unit=us\n", impl, cfg, pct(0.50));
    printf("RESULT name=dns.resolve.p99 impl=%s cfg=%s value=%.1f unit=us\n", impl, cfg, pct(0.99));
    printf("RESULT name=dns.resolve.client_cpu impl=%s cfg=%s value=%.0f unit=ns\n", impl, cfg,
           ok_n ? cpu * 1e6 / ok_n : 0.0);
    evdns_base_free(dns, 0);
    event_base_free(base);
    free(lat);
    return errors_n ? 1 : 0;
}
