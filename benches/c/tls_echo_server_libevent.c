/*
 * tls_echo_server_libevent.c: the TLS echo benchmark's server on libevent 2.1's
 * bufferevent_openssl.
 *
 *   tls_echo_server_libevent -p PORT -T SECONDS -c CERT -k KEY
 *
 * Listens on 127.0.0.1:PORT only (0 = a free port; backlog 1024), prints `READY port=PORT`
 * (flushed) once listening, and exits on SIGTERM/SIGINT or after SECONDS (default 60). Every
 * accepted connection gets TCP_NODELAY and a bufferevent_openssl_socket_new(...,
 * BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) whose read callback moves the whole input
 * to the output with evbuffer_add_buffer; the event callback frees it on EOF or error.
 *
 * The OpenSSL context is the one of the two Rust servers: TLS 1.3 only, the one cipher suite
 * TLS_AES_128_GCM_SHA256, SSL_MODE_RELEASE_BUFFERS, no renegotiation, the PEM chain and key.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

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
        fprintf(stderr, "warning: setrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -p PORT -T SECONDS -c CERT -k KEY\n"
            "  -p PORT     port on 127.0.0.1 (0 = pick a free one; default 0)\n"
            "  -T SECONDS  exit after SECONDS (default 60); SIGTERM also stops the server\n"
            "  -c CERT     PEM certificate chain\n"
            "  -k KEY      PEM private key\n",
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

struct server {
    struct event_base *base;
    SSL_CTX *ctx;
};

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer,
                      int peerlen, void *arg)
{
    struct server *srv = arg;
    struct bufferevent *bev;
    SSL *ssl;
    int one = 1;
    (void)l;
    (void)peer;
    (void)peerlen;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        fprintf(stderr, "warning: TCP_NODELAY: %s\n", strerror(errno));
    ssl = SSL_new(srv->ctx);
    if (!ssl) {
        evutil_closesocket(fd);
        return;
    }
    bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        fprintf(stderr, "warning: bufferevent_openssl_socket_new failed\n");
        SSL_free(ssl);
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
    fprintf(stderr, "warning: accept: %s\n", evutil_socket_error_to_string(err));
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static SSL_CTX *make_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        bc_die("SSL_CTX_new failed");
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256"))
        bc_die("cannot pin TLS 1.3 / TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        bc_die("cannot load %s", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        bc_die("cannot load %s", key);
    return ctx;
}

int main(int argc, char **argv)
{
    struct server srv;
    struct evconnlistener *listener;
    struct event *term, *intr;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    struct timeval limit;
    long port = 0, secs = 60;
    const char *cert = NULL, *key = NULL;
    int c;

    while ((c = getopt(argc, argv, "p:T:c:k:h")) != -1) {
        switch (c) {
        case 'p': port = bc_parse_long("-p", optarg, 0); break;
        case 'T': secs = bc_parse_long("-T", optarg, 1); break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || port > 65535 || !cert || !key)
        usage(argv[0]);

    raise_nofile(65536);
    signal(SIGPIPE, SIG_IGN);

    srv.ctx = make_ctx(cert, key);
    srv.base = event_base_new();
    if (!srv.base)
        bc_die("event_base_new failed");

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = evconnlistener_new_bind(srv.base, accept_cb, &srv,
                                       LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
                                       (struct sockaddr *)&sin, sizeof sin);
    if (!listener)
        bc_die("cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
    evconnlistener_set_error_cb(listener, accept_error_cb);
    if (getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&sin, &slen) != 0)
        bc_die("getsockname: %s", strerror(errno));

    term = evsignal_new(srv.base, SIGTERM, stop_cb, srv.base);
    intr = evsignal_new(srv.base, SIGINT, stop_cb, srv.base);
    if (!term || !intr || event_add(term, NULL) != 0 || event_add(intr, NULL) != 0)
        bc_die("cannot watch SIGTERM/SIGINT");
    limit.tv_sec = secs;
    limit.tv_usec = 0;
    event_base_loopexit(srv.base, &limit);

    printf("READY port=%d\n", ntohs(sin.sin_port));
    fflush(stdout);

    if (event_base_dispatch(srv.base) < 0)
        bc_die("event_base_dispatch failed");

    event_free(term);
    event_free(intr);
    evconnlistener_free(listener);
    SSL_CTX_free(srv.ctx);
    return 0;
}
