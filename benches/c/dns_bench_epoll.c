/*
 * dns_bench_epoll.c: the floor for the DNS resolver benchmark (issue 7): a
 * raw UDP + epoll client with no library: one connected UDP socket, query
 * ids = window slots, a minimal answer check. Same CLI and output as
 * benches/src/bin/dns_bench.rs (impl=epoll):
 *
 *   dns_bench_epoll -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T SECS] [-i IMPL]
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>

static uint64_t q_total, f_window, n_names, seed = 1, limit_s = 60;
static const char *impl = "epoll";
static uint64_t started, done_n, ok_n, errors_n;
static uint64_t *lat;
static uint64_t prng;
static int fd;

struct slot {
    int busy;
    uint64_t t0;
    uint32_t want;
    uint64_t i;
    unsigned char q[64];
    size_t qlen;
};
static struct slot *slots;

static uint64_t xs(void)
{
    uint64_t x = prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    prng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void send_query(uint16_t id)
{
    struct slot *s = &slots[id];
    char label[32];
    started++;
    s->busy = 1;
    s->i = xs() % n_names;
    s->want = 0x0A000000u + (uint32_t)s->i + 1;
    int n = snprintf(label, sizeof label, "name%llu", (unsigned long long)s->i);
    unsigned char *p = s->q;
    *p++ = id >> 8; *p++ = id & 0xff;
    *p++ = 0x01; *p++ = 0x00; /* RD */
    *p++ = 0; *p++ = 1; *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
    *p++ = (unsigned char)n; memcpy(p, label, n); p += n;
    *p++ = 5; memcpy(p, "bench", 5); p += 5;
    *p++ = 4; memcpy(p, "test", 4); p += 4;
    *p++ = 0;
    *p++ = 0; *p++ = 1; *p++ = 0; *p++ = 1;
    s->qlen = (size_t)(p - s->q);
    s->t0 = bc_now_ns();
    if (send(fd, s->q, s->qlen, 0) < 0)
        bc_die("send: %s", strerror(errno));
}

/* Skips a name; returns the offset after it, or 0 on error. */
static size_t skip_name(const unsigned char *m, size_t len, size_t pos)
{
    while (pos < len) {
        unsigned l = m[pos];
        if (l == 0) return pos + 1;
        if ((l & 0xC0) == 0xC0) return pos + 2 <= len ? pos + 2 : 0;
        pos += l + 1;
    }
    return 0;
}

static int check(const unsigned char *m, size_t len, struct slot *s)
{
    if (len < 12 || !(m[2] & 0x80) || (m[3] & 0x0f) != 0) return 0;
    if (m[4] != 0 || m[5] != 1 || m[6] != 0 || m[7] != 1) return 0;
    /* the question must be ours */
    if (len < s->qlen || memcmp(m + 12, s->q + 12, s->qlen - 12) != 0) return 0;
    size_t p = skip_name(m, len, s->qlen - 4 >= 12 ? 12 : 12);
    if (!p || p + 4 > len) return 0;
    p += 4;
    p = skip_name(m, len, p);
    if (!p || p + 10 > len) return 0;
    if (m[p] != 0 || m[p + 1] != 1 || m[p + 8] != 0 || m[p + 9] != 4 || p + 14 > len) return 0;
    uint32_t a = ((uint32_t)m[p + 10] << 24) | ((uint32_t)m[p + 11] << 16) |
                 ((uint32_t)m[p + 12] << 8) | m[p + 13];
    return a == s->want;
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
    fprintf(stderr, "usage: dns_bench_epoll -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T SECS] [-i IMPL]\n");
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
    if (argc % 2 == 0 || !server || !q_total || !f_window || !n_names || f_window > 65535)
        usage();
    char host[64];
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host) usage();
    memcpy(host, server, colon - server);
    host[colon - server] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) usage();
    prng = seed ? seed : 1;
    lat = calloc(q_total, sizeof *lat);
    slots = calloc(f_window, sizeof *slots);
    if (!lat || !slots) bc_die("out of memory");
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        bc_die("socket: %s", strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        bc_die("epoll: %s", strerror(errno));
    double cpu0 = bc_cpu_ms();
    uint64_t w0 = bc_now_ns();
    uint64_t deadline = w0 + limit_s * 1000000000ull;
    for (uint64_t k = 0; k < f_window && started < q_total; k++)
        send_query((uint16_t)k);
    unsigned char buf[4096];
    while (done_n < q_total) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, 1000);
        if (n < 0 && errno != EINTR) bc_die("epoll_wait: %s", strerror(errno));
        if (bc_now_ns() > deadline) break;
        if (n <= 0) continue;
        for (;;) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR || errno == ECONNREFUSED) continue;
                bc_die("recv: %s", strerror(errno));
            }
            if (r < 12) continue;
            uint16_t id = (uint16_t)((buf[0] << 8) | buf[1]);
            if (id >= f_window || !slots[id].busy) continue;
            struct slot *s = &slots[id];
            uint64_t ns = bc_now_ns() - s->t0;
            s->busy = 0;
            done_n++;
            if (check(buf, (size_t)r, s)) {
                lat[ok_n++] = ns;
            } else {
                errors_n++;
            }
            if (started < q_total) send_query(id);
        }
    }
    double wall = (bc_now_ns() - w0) / 1e9;
    double cpu = bc_cpu_ms() - cpu0;
    if (done_n < q_total) {
        fprintf(stderr, "stopped with %llu of %llu lookups done\n",
                (unsigned long long)done_n, (unsigned long long)q_total);
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
    return errors_n ? 1 : 0;
}
