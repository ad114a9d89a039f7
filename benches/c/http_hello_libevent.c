/*
 * http_hello_libevent.c: the HTTP benchmark's server on libevent's evhttp.
 *
 * http_hello_libevent -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]
 *
 * The same program as benches/src/bin/http_hello.rs: 127.0.0.1 only, backlog 1024,
 * GET / -> the 13-byte "Hello, World!" as text/plain, GET /large -> LARGE_BYTES of 'x'
 * (added by reference from one shared array: no copy per request), 404 otherwise.
 * -N sets TCP_NODELAY on accepted sockets (inherited from the listening socket on Linux). -j runs one
 * event base and evhttp per thread, sharing the port through SO_REUSEPORT. Prints
 * READY port=PORT once listening; exits on SIGTERM/SIGINT or after SECONDS.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

static const char HELLO[] = "Hello, World!";
static char *large_data;
static size_t large_len = 1 << 20;
static int nodelay;
static int port;
static long secs = 60;

static void hello_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_reference(out, HELLO, sizeof(HELLO) - 1, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void large_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_reference(out, large_data, large_len, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void notfound_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, NULL);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
    (void)arg;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

struct worker {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
};

static struct evhttp *make_server(struct event_base *base, int reuseport, int *bound_port)
{
    struct evhttp *http = evhttp_new(base);
    if (!http)
        bc_die("evhttp_new");
    evhttp_set_cb(http, "/", hello_cb, NULL);
    evhttp_set_cb(http, "/large", large_cb, NULL);
    evhttp_set_gencb(http, notfound_cb, NULL);
    evhttp_set_bevcb(http, bev_cb, NULL);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)*bound_port);
    unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE;
    if (reuseport)
        flags |= LEV_OPT_REUSEABLE_PORT;
    struct evconnlistener *lis = evconnlistener_new_bind(base, NULL, NULL, flags, 1024,
                                                         (struct sockaddr *)&sin, sizeof(sin));
    if (!lis)
        bc_die("cannot listen on 127.0.0.1:%d: %s", *bound_port, strerror(errno));
    if (nodelay) {
        /* Linux: accepted sockets inherit TCP_NODELAY from the listening socket (evhttp
         * gives no hook between accept and the first read). */
        int one = 1;
        setsockopt(evconnlistener_get_fd(lis), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (!evhttp_bind_listener(http, lis))
        bc_die("evhttp_bind_listener");
    socklen_t len = sizeof(sin);
    getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&sin, &len);
    *bound_port = ntohs(sin.sin_port);
    return http;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int main(int argc, char **argv)
{
    int c, threads = 1;
    while ((c = getopt(argc, argv, "p:b:T:Nj:h")) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'b': large_len = (size_t)atol(optarg); break;
        case 'T': secs = atol(optarg); break;
        case 'N': nodelay = 1; break;
        case 'j': threads = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: http_hello_libevent -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (secs < 1)
        secs = 1;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536) {
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    large_data = malloc(large_len ? large_len : 1);
    if (!large_data)
        bc_die("malloc");
    memset(large_data, 'x', large_len);

    struct worker *workers = calloc((size_t)threads, sizeof(*workers));
    if (!workers)
        bc_die("calloc");
    /* Threads other than the first: signals go to the main thread, which exits. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (threads > 1)
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    int bound = port;
    struct timeval tv = {secs, 0};
    for (int i = 0; i < threads; i++) {
        workers[i].base = event_base_new();
        if (!workers[i].base)
            bc_die("event_base_new");
        workers[i].http = make_server(workers[i].base, threads > 1, &bound);
        event_base_loopexit(workers[i].base, &tv);
    }
    if (threads == 1) {
        struct event *term = evsignal_new(workers[0].base, SIGTERM, stop_cb, workers[0].base);
        struct event *intr = evsignal_new(workers[0].base, SIGINT, stop_cb, workers[0].base);
        event_add(term, NULL);
        event_add(intr, NULL);
        printf("READY port=%d\n", bound);
        fflush(stdout);
        event_base_dispatch(workers[0].base);
        return 0;
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]);
    printf("READY port=%d\n", bound);
    fflush(stdout);
    /* Wait for a signal or the time limit, then leave (the workers die with the process). */
    struct timespec ts = {secs, 0};
    sigtimedwait(&set, NULL, &ts);
    return 0;
}
