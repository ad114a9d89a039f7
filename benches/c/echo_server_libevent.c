/*
 * echo_server_libevent.c: the echo benchmark's server on libevent 2.1 bufferevents.
 *
 *   echo_server_libevent -p PORT -T SECONDS
 *
 * Listens on 127.0.0.1:PORT only (0 = a free port; backlog 1024, the same as the Rust
 * servers), prints `READY port=PORT` (flushed) once listening, and exits on SIGTERM/SIGINT or
 * after SECONDS (default 60). Every accepted connection gets TCP_NODELAY and a
 * bufferevent_socket_new(BEV_OPT_CLOSE_ON_FREE) whose read callback moves the whole input
 * buffer to the output buffer with evbuffer_add_buffer (no copy: the chains move); the event
 * callback frees the bufferevent on EOF or error. This is libevent's own sample
 * (sample/le-proxy.c, the evconnlistener man page) reduced to an echo: the natural use of the API.
 *
 * RLIMIT_NOFILE is raised to 65536 (or the hard limit) for the idle-memory workload's 10,000
 * connections. The load client is the Rust `echo_client`; see docs/BENCHMARKING.md.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

/* RLIMIT_NOFILE soft limit up to `want`, capped at the hard limit (no privilege needed). */
static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        want = rl.rlim_max;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "warning: setrlimit(RLIMIT_NOFILE, %lu): %s\n", (unsigned long)want,
                strerror(errno));
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -p PORT -T SECONDS\n"
            "  -p PORT     port on 127.0.0.1 (0 = pick a free one; default 0)\n"
            "  -T SECONDS  exit after SECONDS (default 60); SIGTERM also stops the server\n",
            prog);
    exit(2);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev)) != 0)
        bc_die("evbuffer_add_buffer failed");
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer,
                      int peerlen, void *arg)
{
    struct event_base *base = arg;
    struct bufferevent *bev;
    int one = 1;
    (void)l;
    (void)peer;
    (void)peerlen;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        fprintf(stderr, "warning: TCP_NODELAY: %s\n", strerror(errno));
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        fprintf(stderr, "warning: bufferevent_socket_new failed\n");
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
    if (bufferevent_enable(bev, EV_READ) != 0) {
        fprintf(stderr, "warning: bufferevent_enable failed\n");
        bufferevent_free(bev);
    }
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;
    (void)arg;
    /* EMFILE & co.: report and go on, as libevent's samples do */
    fprintf(stderr, "warning: accept: %s\n", evutil_socket_error_to_string(err));
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *term, *intr;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    struct timeval limit;
    long port = 0, secs = 60;
    int c;

    while ((c = getopt(argc, argv, "p:T:h")) != -1) {
        switch (c) {
        case 'p': port = bc_parse_long("-p", optarg, 0); break;
        case 'T': secs = bc_parse_long("-T", optarg, 1); break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || port > 65535)
        usage(argv[0]);

    raise_nofile(65536);
    signal(SIGPIPE, SIG_IGN);

    base = event_base_new();
    if (!base)
        bc_die("event_base_new failed");

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = evconnlistener_new_bind(base, accept_cb, base,
                                       LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
                                       (struct sockaddr *)&sin, sizeof sin);
    if (!listener)
        bc_die("cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
    evconnlistener_set_error_cb(listener, accept_error_cb);
    if (getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&sin, &slen) != 0)
        bc_die("getsockname: %s", strerror(errno));

    term = evsignal_new(base, SIGTERM, stop_cb, base);
    intr = evsignal_new(base, SIGINT, stop_cb, base);
    if (!term || !intr || event_add(term, NULL) != 0 || event_add(intr, NULL) != 0)
        bc_die("cannot watch SIGTERM/SIGINT");
    limit.tv_sec = secs;
    limit.tv_usec = 0;
    event_base_loopexit(base, &limit);

    printf("READY port=%d\n", ntohs(sin.sin_port));
    fflush(stdout);

    if (event_base_dispatch(base) < 0)
        bc_die("event_base_dispatch failed");

    /* Connections still open are left to exit(): freeing them one by one is not the benchmark. */
    event_free(term);
    event_free(intr);
    evconnlistener_free(listener);
    return 0;
}
