/*
 * Limits and timeouts of tbproxy (issue 8), each through the real daemon, over HTTP/1.1 and
 * HTTP/2: limits.max_uri_bytes (414), routes[].max_body_size (413 before forwarding when
 * Content-Length says so; a chunked / DATA body cut as it grows past it), limits
 * .max_concurrent_streams (SETTINGS_MAX_CONCURRENT_STREAMS, enforced), limits.max_buffer_bytes
 * (how much of an origin's response the proxy holds for a client that reads nothing),
 * timeouts.first_request, timeouts.header_read as a deadline against slowloris (a client that
 * trickles one header byte per second), timeouts.body_read, timeouts.send against slow-read
 * clients (a tiny receive buffer, nothing read; an h2 window kept shut), and absolute-form request
 * targets (RFC 9112 section 3.2.2) routed and forwarded in origin-form.
 *
 * Three kinds of origin, all on 127.0.0.1: the demo origin tborigin of the world
 * (tests/support/world.h: /bytes/N, /echo, /healthz, with the world's own proxy configured through
 * extra_config), the recording origin (tests/support/recorigin.h: exactly what the proxy
 * forwarded, with a tbproxy from tests/support/confproxy.h in front for per-route settings), and
 * a one-connection scripted origin in this file (struct sorigin): "big" writes a response as fast
 * as the proxy reads it and counts what it got rid of before the proxy stopped reading; "early"
 * answers as soon as the request head arrives and counts the request body bytes that still reach
 * it.
 *
 * Timing checks are generous (the machine is shared, the proxy may run under ASan): a deadline
 * of T must not fire before about T and must fire well before T + 3 s. Every wait is bounded;
 * the .fini stops every daemon and thread however a test ends.
 *
 * Binaries: $TB_BIN/{tbproxy,tborigin} (make test sets TB_BIN), else build/rel/bin. The h2
 * concurrency test runs tests/h2/misbehave.py (python3-h2) from the repository root.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "confproxy.h"
#include "h2test.h"
#include "proc.h"
#include "recorigin.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 90
#define QUIET_MS 50
#define SETTLE_MAX_MS 3000
#define SLACK_MS 3000 /* how late a deadline may fire on a loaded machine (or under ASan) */

/* --- the scripted origin -------------------------------------------------------------------- */

enum sorigin_mode {
    SO_BIG,   /* answer 200 with big_len body bytes, written as fast as they are taken */
    SO_EARLY, /* answer a chunked 200 head and one chunk at once, then read the request to EOF */
};

#define SO_STALL_MS 1500 /* "big": the proxy took nothing for this long: it stopped reading */
#define SO_WAIT_MS 15000 /* the longest the origin waits for a connection or a request head */

struct sorigin {
    enum sorigin_mode mode;
    size_t big_len;
    int lfd, port, started;
    pthread_t th;
    /* results, read after sorigin_join */
    size_t written;  /* big: body bytes written */
    size_t received; /* early: request bytes received after the head */
    int eof;         /* early: the proxy closed the connection */
    int got_request; /* a request head arrived */
};

/* Waits for fd to be ready for events, at most ms. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;

    do
        r = poll(&p, 1, ms);
    while (r == -1 && errno == EINTR);
    return r < 0 ? -1 : r;
}

/* Reads up to the end of a request head. Returns the bytes read past the head, or -1. */
static long read_head(int fd)
{
    char buf[65536];
    size_t len = 0;
    char *end;
    ssize_t n;

    while (len < sizeof(buf) - 1) {
        if (wait_fd(fd, POLLIN, SO_WAIT_MS) != 1)
            return -1;
        if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) == -1 && errno == EAGAIN)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL)
            return (long)(len - (size_t)(end + 4 - buf));
    }
    return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    ssize_t k;

    while (n > 0) {
        if (wait_fd(fd, POLLOUT, SO_WAIT_MS) != 1)
            return -1;
        if ((k = write(fd, p, n)) == -1 && errno == EAGAIN)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void serve_big(struct sorigin *o, int fd)
{
    static char block[65536];
    char head[128];
    int small = 65536, n;
    ssize_t k;

    memset(block, 'x', sizeof(block));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    if (read_head(fd) < 0)
        return;
    o->got_request = 1;
    n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", o->big_len);
    if (write_all(fd, head, (size_t)n) != 0)
        return;
    while (o->written < o->big_len) {
        size_t want = o->big_len - o->written;
        if (wait_fd(fd, POLLOUT, SO_STALL_MS) != 1)
            return; /* stalled: the proxy stopped reading */
        k = write(fd, block, want < sizeof(block) ? want : sizeof(block));
        if (k == -1 && errno == EAGAIN)
            continue;
        if (k <= 0)
            return;
        o->written += (size_t)k;
    }
}

static void serve_early(struct sorigin *o, int fd)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n";
    char buf[65536];
    long extra = read_head(fd);
    ssize_t n;

    if (extra < 0)
        return;
    o->got_request = 1;
    o->received = (size_t)extra;
    if (write_all(fd, answer, sizeof(answer) - 1) != 0)
        return;
    while (wait_fd(fd, POLLIN, SO_WAIT_MS) == 1) {
        if ((n = read(fd, buf, sizeof(buf))) == -1 && errno == EAGAIN)
            continue;
        if (n <= 0) {
            o->eof = 1;
            return;
        }
        o->received += (size_t)n;
    }
}

static void *sorigin_main(void *arg)
{
    struct sorigin *o = arg;
    int fd;

    if (wait_fd(o->lfd, POLLIN, SO_WAIT_MS) != 1 ||
        (fd = accept4(o->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
        return NULL; /* non-blocking: a write takes what fits and never waits */
    if (o->mode == SO_BIG)
        serve_big(o, fd);
    else
        serve_early(o, fd);
    close(fd);
    return NULL;
}

/* Listens on a free 127.0.0.1 port and serves one connection from a thread. */
static void sorigin_start(struct sorigin *o, enum sorigin_mode mode, size_t big_len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);

    memset(o, 0, sizeof(*o));
    o->mode = mode;
    o->big_len = big_len;
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(o->lfd, -1);
    cr_assert_eq(bind(o->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(o->lfd, 4), 0);
    cr_assert_eq(getsockname(o->lfd, (struct sockaddr *)&a, &len), 0);
    o->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&o->th, NULL, sorigin_main, o), 0);
    o->started = 1;
}

/* Waits for the thread to finish (it always does, within its own timeouts) and closes. */
static void sorigin_join(struct sorigin *o)
{
    if (!o->started)
        return;
    pthread_join(o->th, NULL);
    close(o->lfd);
    o->started = 0;
}

/* --- the suite ------------------------------------------------------------------------------ */

static struct tbt_world w;
static struct tbt_recorigin rec;
static struct tbt_confproxy px, px2;
static struct sorigin so;
static struct tbt_tls c1 = {.fd = -1};
static struct tbt_http_response resp;
static struct tbt_h2 h2c;

static void teardown(void)
{
    tbt_h2_close(&h2c);
    tbt_http_response_dispose(&resp);
    tbt_tls_close(&c1);
    tbt_confproxy_stop(&px);
    tbt_confproxy_stop(&px2);
    tbt_recorigin_stop(&rec);
    tbt_world_teardown(&w); /* kills the proxies, so the scripted origin's waits end */
    sorigin_join(&so);
}

TestSuite(limits, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* A world with tborigin and its own proxy configured with `extra` (top-level settings). */
static void world_with(const char *extra)
{
    struct tbt_world_opts o = {.config_file = 1, .extra_config = extra};

    tbt_world_start(&w, &o);
}

/* A world without tborigin, a recording origin, and a proxy with `body` in front of it. */
static void recorded(const char *body)
{
    struct tbt_world_opts o = {.origin_down = 1};
    char err[256];

    tbt_world_start(&w, &o);
    cr_assert_eq(tbt_recorigin_start(&rec, err, sizeof(err)), 0, "%s", err);
    tbt_confproxy_start(&w, &px, "limits", rec.port, body);
}

static void h1_connect(struct tbt_tls *c, int port)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};

    cr_assert_eq(tbt_tls_connect(c, (uint16_t)port, &o), 0, "connect: %s; proxy log: %s", c->err,
                 tbt_world_proxy_log(&w));
}

static void h2_connect(struct tbt_h2 *h, int port, const struct tbt_h2_opts *o)
{
    cr_assert_eq(tbt_h2_connect(h, (uint16_t)port, o), 0, "h2 connect: %s", h->err);
}

static void send_str(struct tbt_tls *c, const char *s)
{
    cr_assert_eq(tbt_tls_send_str(c, s), 0, "send: %s", c->err);
}

/* Sends req on c and reads the response into resp. */
static int exchange(struct tbt_tls *c, const char *req)
{
    send_str(c, req);
    cr_assert_eq(tbt_tls_read_response(c, &resp, 0, 0), 0, "response: %s", c->err);
    return resp.status;
}

/* Waits up to ms for the proxy to close c; bytes that come meanwhile are appended to got (NUL-
 * terminated, truncated to cap). Returns 1 when closed, 0 when still open. */
static int wait_closed(struct tbt_tls *c, int ms, char *got, size_t cap)
{
    long long deadline = tbt_now_ms() + ms;
    size_t len = got != NULL ? strlen(got) : 0;
    int r;

    for (;;) {
        long long left = deadline - tbt_now_ms();
        if (left <= 0)
            return 0;
        r = tbt_tls_peer_closed(c, (int)left);
        if (r == 1)
            return 1;
        if (r == 0)
            return 0;
        if (got != NULL && len + 1 < cap) {
            size_t k = c->rlen < cap - 1 - len ? c->rlen : cap - 1 - len;
            memcpy(got + len, c->rbuf, k);
            len += k;
            got[len] = '\0';
        }
        c->rlen = 0; /* taken */
    }
}

/* The recorder's view once the origin settled. */
static void rec_view(struct tbt_rec_view *v)
{
    cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
    tbt_recorigin_view(&rec, v);
}

/* A request with a target of exactly n bytes ("/" + 'a'...), malloc'd. */
static char *long_target(size_t n)
{
    char *t = malloc(n + 1);

    cr_assert_not_null(t);
    t[0] = '/';
    memset(t + 1, 'a', n - 1);
    t[n] = '\0';
    return t;
}

/* --- max_uri_bytes ---------------------------------------------------------------------------- */

Test(limits, uri_too_long,
     .description = "limits.max_uri_bytes: a target one byte over gets 414 (h1: closed; h2: the "
                    "stream), never forwarded; one of exactly the limit passes")
{
    char *ok = long_target(1024), *over = long_target(1025), *req;
    struct tbt_rec_view v;
    struct tbt_h2_stream *st;
    int32_t id;

    recorded("routes = ( { upstream = \"app\"; } );\nlimits = { max_uri_bytes = 1024; };\n");
    h1_connect(&c1, px.port);
    tbt_recorigin_mark(&rec);
    cr_assert_gt(asprintf(&req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", ok), 1024);
    cr_expect_eq(exchange(&c1, req), 200);
    free(req);
    rec_view(&v);
    cr_expect_eq(v.n_requests, 1);
    cr_expect(v.has_first && strncmp(v.first_head, "GET /aaa", 8) == 0, "%s", v.first_head);

    tbt_recorigin_mark(&rec);
    cr_assert_gt(asprintf(&req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", over), 0);
    cr_expect_eq(exchange(&c1, req), 414, "%s", resp.body);
    free(req);
    cr_expect(tbt_http_header_has(&resp, "Connection", "close"));
    cr_expect_eq(wait_closed(&c1, 3000, NULL, 0), 1, "still open after the 414");
    rec_view(&v);
    cr_expect_eq(v.total_bytes, 0, "the origin got %zu bytes", v.total_bytes);
    tbt_tls_close(&c1);

    h2_connect(&h2c, px.port, NULL);
    tbt_recorigin_mark(&rec);
    id = tbt_h2_submit(&h2c, "GET", over, NULL, NULL, 0);
    cr_assert_gt(id, 0, "%s", h2c.err);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    st = tbt_h2_stream(&h2c, id);
    cr_expect_eq(st->status, 414, "h2: %d", st->status);
    id = tbt_h2_submit(&h2c, "GET", ok, NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(tbt_h2_stream(&h2c, id)->status, 200, "h2: the connection goes on");
    rec_view(&v);
    cr_expect_eq(v.n_requests, 1, "h2: only the request within the limit was forwarded");
    free(ok);
    free(over);
}

/* --- absolute-form --------------------------------------------------------------------------- */

Test(limits, absolute_form,
     .description = "absolute-form targets are routed and forwarded as origin-form with Host from "
                    "the authority; another scheme or a Host that disagrees gets 400")
{
    struct tbt_rec_view v;

    /* only /abs/ is routed: before, the raw target "http://..." matched no route (404) */
    recorded("routes = ( { prefix = \"/abs/\"; upstream = \"app\"; } );\n");
    h1_connect(&c1, px.port);
    tbt_recorigin_mark(&rec);
    cr_expect_eq(
        exchange(&c1, "GET http://localhost/abs/x?q=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
    rec_view(&v);
    cr_assert_eq(v.n_requests, 1);
    cr_expect_str_eq(v.first.target, "/abs/x?q=1");
    cr_expect(strstr(v.first_head, "\r\nHost: localhost\r\n") != NULL, "%s", v.first_head);

    tbt_recorigin_mark(&rec);
    cr_expect_eq(exchange(&c1, "GET HTTPS://LocalHost/abs/y HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                 200);
    cr_expect_eq(exchange(&c1, "GET http://localhost/other HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                 404);
    cr_expect_eq(exchange(&c1, "GET http://evil.example/abs/ HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                 400, "a Host that is not the target's authority");
    cr_expect_eq(exchange(&c1, "GET ftp://localhost/abs/ HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                 400);
    cr_expect_eq(exchange(&c1, "GET abs/x HTTP/1.1\r\nHost: localhost\r\n\r\n"), 400);
    rec_view(&v);
    cr_expect_eq(v.n_requests, 1, "only the https one was forwarded");
    cr_expect_str_eq(v.first.target, "/abs/y");
    tbt_tls_close(&c1);

    /* HTTP/1.0 without Host: the authority becomes the Host */
    h1_connect(&c1, px.port);
    tbt_recorigin_mark(&rec);
    cr_expect_eq(exchange(&c1, "GET http://localhost:8443/abs/z HTTP/1.0\r\n\r\n"), 200);
    rec_view(&v);
    cr_assert_eq(v.n_requests, 1);
    cr_expect_str_eq(v.first.target, "/abs/z");
    cr_expect(strstr(v.first_head, "\r\nHost: localhost:8443\r\n") != NULL, "%s", v.first_head);
}

/* --- max_body_size ---------------------------------------------------------------------------- */

#define BODY_ROUTES                                                                                \
    "routes = ( { prefix = \"/small/\"; upstream = \"app\"; max_body_size = 1000; },\n"            \
    "           { upstream = \"app\"; } );\n"

static char *post(const char *target, size_t len, const char *extra)
{
    char *body = malloc(len + 1), *req;

    cr_assert_not_null(body);
    memset(body, 'b', len);
    body[len] = '\0';
    cr_assert_gt(asprintf(&req,
                          "POST %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: %zu\r\n\r\n%s",
                          target, extra, len, body),
                 0);
    free(body);
    return req;
}

/* A chunked body of the given chunk sizes ('c' bytes), last chunk included, malloc'd. */
static char *chunks(const size_t *sizes, size_t n)
{
    size_t cap = 64, len = 0, i;
    char *out;

    for (i = 0; i < n; i++)
        cap += sizes[i] + 32;
    out = malloc(cap);
    cr_assert_not_null(out);
    for (i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%zx\r\n", sizes[i]);
        memset(out + len, 'c', sizes[i]);
        len += sizes[i];
        memcpy(out + len, "\r\n", 2);
        len += 2;
    }
    memcpy(out + len, "0\r\n\r\n", 6);
    return out;
}

Test(limits, body_size_h1,
     .description = "max_body_size over HTTP/1.1: a Content-Length over it gets 413 and nothing is "
                    "forwarded; a chunked body is cut at the limit (413, the origin's request "
                    "never completes); other routes are not limited")
{
    static const size_t ok_sizes[] = {400, 600}, over_sizes[] = {600, 600};
    struct tbt_rec_view v;
    char *req, *body;

    recorded(BODY_ROUTES);
    h1_connect(&c1, px.port);
    tbt_recorigin_mark(&rec);
    req = post("/small/x", 1000, "");
    cr_expect_eq(exchange(&c1, req), 200);
    free(req);
    rec_view(&v);
    cr_expect(v.n_requests == 1 && v.first.body_len == 1000, "the origin got %zu requests",
              v.n_requests);

    tbt_recorigin_mark(&rec);
    req = post("/big/x", 5000, "");
    cr_expect_eq(exchange(&c1, req), 200, "a route without max_body_size");
    free(req);
    body = chunks(ok_sizes, 2);
    cr_assert_gt(asprintf(&req,
                          "POST /small/c HTTP/1.1\r\nHost: localhost\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n%s",
                          body),
                 0);
    cr_expect_eq(exchange(&c1, req), 200, "a chunked body of exactly the limit");
    free(req);
    free(body);
    rec_view(&v);
    cr_expect_eq(v.n_requests, 2);

    tbt_recorigin_mark(&rec);
    req = post("/small/x", 1001, "");
    cr_expect_eq(exchange(&c1, req), 413, "%s", resp.body);
    free(req);
    cr_expect(tbt_http_header_has(&resp, "Connection", "close"));
    cr_expect_eq(wait_closed(&c1, 3000, NULL, 0), 1);
    rec_view(&v);
    cr_expect_eq(v.total_bytes, 0, "a refused Content-Length: the origin got %zu bytes",
                 v.total_bytes);
    tbt_tls_close(&c1);

    h1_connect(&c1, px.port);
    tbt_recorigin_mark(&rec);
    body = chunks(over_sizes, 2);
    cr_assert_gt(asprintf(&req,
                          "POST /small/c HTTP/1.1\r\nHost: localhost\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n%s",
                          body),
                 0);
    cr_expect_eq(exchange(&c1, req), 413, "%s", resp.body);
    free(req);
    free(body);
    cr_expect_eq(wait_closed(&c1, 3000, NULL, 0), 1);
    rec_view(&v);
    cr_expect_eq(v.n_requests, 0, "a cut body must never look complete to the origin");
    cr_expect_eq(v.incomplete_open, 0, "the origin connection of a cut request stays open");
    cr_expect_lt(v.total_bytes, 1000 + 512, "more than the limit reached the origin (%zu bytes)",
                 v.total_bytes);
}

/*
 * 1 when the proxy's socket is gone (closed, not lingering): a byte sent raw on it is answered
 * with a reset, which the next send reports. 0 while the proxy still reads (and discards).
 */
static int proxy_socket_gone(int fd)
{
    int i;

    for (i = 0; i < 3; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) == -1)
            return errno == EPIPE || errno == ECONNRESET;
        usleep(100 * 1000);
    }
    return 0;
}

#define UPLOAD_BYTES (4u << 20)
#define LINGER_IDLE_MS 2000 /* conn.c */

/*
 * The 413 comes while the client is still sending: the proxy sends it, ends its side (TLS
 * close_notify and FIN) and reads and discards the rest, so the client's sends all succeed (a
 * socket closed on unread input resets the connection: the client's send fails, its response
 * may be lost). Once the client stays silent for the linger time, the proxy closes.
 */
Test(limits, body_size_h1_lingering_close,
     .description = "max_body_size over HTTP/1.1 with the upload still coming: every send "
                    "succeeds, then 413 and the end of the stream; the proxy closes once the "
                    "client is silent for its linger time")
{
    static unsigned char block[64 * 1024];
    char head[256];
    size_t sent = 0;

    memset(block, 'u', sizeof(block));
    recorded(BODY_ROUTES);
    h1_connect(&c1, px.port);
    snprintf(head, sizeof(head),
             "POST /small/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: %u\r\n\r\n",
             UPLOAD_BYTES);
    send_str(&c1, head);
    while (sent < UPLOAD_BYTES) {
        cr_assert_eq(tbt_tls_send(&c1, block, sizeof(block)), 0,
                     "send failed after %zu of %u body bytes: %s", sent, UPLOAD_BYTES, c1.err);
        sent += sizeof(block);
    }
    cr_assert_eq(tbt_tls_read_response(&c1, &resp, 0, 0), 0, "response: %s", c1.err);
    cr_expect_eq(resp.status, 413);
    cr_expect(tbt_http_header_has(&resp, "Connection", "close"));
    cr_expect_eq(wait_closed(&c1, 3000, NULL, 0), 1, "no end of stream after the 413");
    cr_expect_eq(proxy_socket_gone(c1.fd), 0, "the proxy closed without lingering");
    usleep((LINGER_IDLE_MS + SLACK_MS) * 1000);
    cr_expect_eq(proxy_socket_gone(c1.fd), 1, "still lingering %d ms after the last byte",
                 LINGER_IDLE_MS + SLACK_MS);
}

/* The response head arrived (and the one chunk), the proxy is cut off by the body. */
Test(limits, body_size_h1_after_response,
     .description = "max_body_size over HTTP/1.1 once the origin's response began: the client "
                    "connection is cut, the origin sees its request end")
{
    char got[4096] = "";
    size_t sizes[] = {800};
    char *body;

    tbt_world_start(&w, &(struct tbt_world_opts){.origin_down = 1});
    sorigin_start(&so, SO_EARLY, 0);
    tbt_confproxy_start(&w, &px, "early", so.port, BODY_ROUTES);
    h1_connect(&c1, px.port);
    send_str(&c1,
             "POST /small/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    body = chunks(sizes, 1);
    body[strlen(body) - 5] = '\0'; /* no last chunk yet */
    send_str(&c1, body);
    cr_expect_eq(wait_closed(&c1, 1500, got, sizeof(got)), 0, "closed within the limit");
    cr_expect(strstr(got, "HTTP/1.1 200 OK") == got && strstr(got, "hello") != NULL,
              "the origin's early answer: %s", got);
    send_str(&c1, body); /* 1600 bytes in all: over */
    free(body);
    cr_expect_eq(wait_closed(&c1, 5000, got, sizeof(got)), 1, "not cut: %s", got);
    cr_expect(strstr(got, "0\r\n\r\n") == NULL, "the cut response looked complete: %s", got);
    sorigin_join(&so);
    cr_expect(so.eof, "the origin connection was not closed");
    cr_expect(so.received >= 800 && so.received < 1000 + 64,
              "the origin got %zu body bytes (the limit is 1000)", so.received);
}

/* A stream left open: HEADERS without END_STREAM (a POST whose body never comes). */
static int32_t open_stream(struct tbt_h2 *h, const char *path, const char *content_length)
{
    nghttp2_nv nva[6];
    struct tbt_h2_stream *st = calloc(1, sizeof(*st));
    size_t n = 0;
    int32_t id;

#define NV(nm, val)                                                                                \
    ((nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val), NGHTTP2_NV_FLAG_NONE})
    nva[n++] = NV(":method", "POST");
    nva[n++] = NV(":scheme", "https");
    nva[n++] = NV(":authority", "localhost");
    nva[n++] = NV(":path", path);
    if (content_length != NULL)
        nva[n++] = NV("content-length", content_length);
#undef NV
    cr_assert_not_null(st);
    st->body = calloc(1, 1);
    st->body_cap = 1;
    cr_assert_not_null(st->body);
    id = nghttp2_submit_headers(h->s, NGHTTP2_FLAG_NONE, -1, NULL, nva, n, st);
    cr_assert_gt(id, 0, "%s", nghttp2_strerror(id));
    st->id = id;
    h->streams[h->n_streams++] = st;
    return id;
}

struct data_src {
    size_t left;
};

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    struct data_src *d = src->ptr;
    size_t n = d->left < len ? d->left : len;

    (void)s;
    (void)id;
    (void)user;
    memset(buf, 'd', n);
    d->left -= n;
    if (d->left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    return (ssize_t)n;
}

/* Sends n body bytes on an open stream (the stream stays open); its HEADERS, and any DATA
 * submitted before, go out first. */
static void send_data(struct tbt_h2 *h, int32_t id, struct data_src *d, size_t n)
{
    nghttp2_data_provider prd = {.source.ptr = d, .read_callback = data_read};
    int rc;

    (void)tbt_h2_run(h, &id, 1, 300); /* the stream stays open: the run times out */
    d->left = n;
    rc = nghttp2_submit_data(h->s, NGHTTP2_FLAG_NONE, id, &prd);
    cr_assert_eq(rc, 0, "nghttp2_submit_data: %s", nghttp2_strerror(rc));
}

Test(limits, body_size_h2,
     .description = "max_body_size over HTTP/2: a content-length over it gets 413 on the stream, "
                    "DATA past it gets 413 and RST_STREAM; the connection goes on")
{
    static char body[1001];
    struct tbt_rec_view v;
    struct tbt_h2_stream *st;
    int32_t id;

    memset(body, 'e', sizeof(body));
    recorded(BODY_ROUTES);
    h2_connect(&h2c, px.port, NULL);
    tbt_recorigin_mark(&rec);
    id = tbt_h2_submit(&h2c, "POST", "/small/a", NULL, body, 1000);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(tbt_h2_stream(&h2c, id)->status, 200, "exactly the limit");
    rec_view(&v);
    cr_expect(v.n_requests == 1 && v.first.body_len == 1000);

    tbt_recorigin_mark(&rec);
    id = tbt_h2_submit(&h2c, "POST", "/small/b", NULL, body, 1001); /* DATA, no content-length */
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    st = tbt_h2_stream(&h2c, id);
    cr_expect_eq(st->status, 413, "DATA over the limit: %d", st->status);
    rec_view(&v);
    cr_expect_eq(v.n_requests, 0, "a cut body must never look complete to the origin");
    cr_expect_eq(v.incomplete_open, 0);

    tbt_recorigin_mark(&rec);
    id = open_stream(&h2c, "/small/c", "1001"); /* answered before any DATA is sent */
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    st = tbt_h2_stream(&h2c, id);
    cr_expect_eq(st->status, 413, "content-length over the limit: %d", st->status);
    cr_expect(st->rst_received && st->rst_error == NGHTTP2_NO_ERROR,
              "no RST_STREAM NO_ERROR after the 413 (rst %d, code %u)", st->rst_received,
              (unsigned)st->rst_error);
    rec_view(&v);
    cr_expect_eq(v.total_bytes, 0, "a refused content-length: the origin got %zu bytes",
                 v.total_bytes);

    id = tbt_h2_submit(&h2c, "GET", "/ok", NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(tbt_h2_stream(&h2c, id)->status, 200, "the connection goes on");
    cr_expect_not(h2c.goaway);
}

Test(limits, body_size_h2_after_response,
     .description = "max_body_size over HTTP/2 once the origin's response began: RST_STREAM")
{
    struct tbt_h2_stream *st;
    struct data_src d;
    int32_t id;

    tbt_world_start(&w, &(struct tbt_world_opts){.origin_down = 1});
    sorigin_start(&so, SO_EARLY, 0);
    tbt_confproxy_start(&w, &px, "early", so.port, BODY_ROUTES);
    h2_connect(&h2c, px.port, NULL);
    id = open_stream(&h2c, "/small/x", NULL);
    send_data(&h2c, id, &d, 800);
    (void)tbt_h2_run(&h2c, &id, 1, 1500); /* the stream stays open: the run times out */
    st = tbt_h2_stream(&h2c, id);
    cr_assert_eq(st->status, 200, "the origin's early answer: %d (%s)", st->status, h2c.err);
    cr_expect_not(st->closed);
    send_data(&h2c, id, &d, 800);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect(st->rst_received && st->rst_error == NGHTTP2_CANCEL,
              "no RST_STREAM CANCEL (rst %d, code %u)", st->rst_received, (unsigned)st->rst_error);
    cr_expect_not(st->end_stream, "the cut response looked complete");
    sorigin_join(&so);
    cr_expect(so.eof, "the origin connection was not closed");
    cr_expect(so.received >= 800 && so.received < 1000 + 64,
              "the origin got %zu body bytes (the limit is 1000)", so.received);
}

/* --- max_concurrent_streams ------------------------------------------------------------------- */

Test(limits, max_concurrent_streams,
     .description = "limits.max_concurrent_streams is the SETTINGS value and is enforced")
{
    const char *args[] = {"tests/h2/misbehave.py", "too_many_streams", NULL, NULL};
    char port[16], *log = NULL;
    int32_t id;
    int st;

    world_with("limits = { max_concurrent_streams = 5; };");
    h2_connect(&h2c, w.proxy_port, NULL);
    id = tbt_h2_submit(&h2c, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(
        nghttp2_session_get_remote_settings(h2c.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 5);
    tbt_h2_close(&h2c);
    /* six streams that never finish against a limit of five: the sixth is refused */
    snprintf(port, sizeof(port), "%d", w.proxy_port);
    args[2] = port;
    st = tbt_world_run(&w, "/usr/bin/python3", args, "misbehave", 20000, &log);
    cr_log_info("misbehave too_many_streams: %s", log != NULL ? log : "");
    cr_expect_eq(st, 0, "the limit was not enforced: %s", log != NULL ? log : "");
    cr_expect(log != NULL && strstr(log, "\"limit\": 5") != NULL, "%s", log != NULL ? log : "");
    free(log);
}

/* --- max_buffer_bytes ------------------------------------------------------------------------- */

#define BIG_BODY (256u << 20) /* more than any buffer holds */

/* How much of a big response the origin got rid of while a client read nothing (h1) or kept its
 * stream window shut (h2), through a proxy with max_buffer_bytes = buffer. */
static size_t held(const char *name, unsigned buffer, int h2)
{
    char body[256];
    struct tbt_confproxy *p = h2 ? &px2 : &px;
    int small = 4096;
    int32_t id;

    snprintf(body, sizeof(body),
             "routes = ( { upstream = \"app\"; } );\nlimits = { max_buffer_bytes = %u; };\n",
             buffer);
    sorigin_start(&so, SO_BIG, BIG_BODY);
    tbt_confproxy_start(&w, p, name, so.port, body);
    if (h2) {
        struct tbt_h2_opts o = {.slow_read_bytes = 1, .slow_read_delay_ms = 600000};
        h2_connect(&h2c, p->port, &o);
        id = tbt_h2_submit(&h2c, "GET", "/big", NULL, NULL, 0);
        cr_assert_gt(id, 0);
        (void)tbt_h2_run(&h2c, &id, 1, SO_STALL_MS + 1500); /* reads, but the window stays shut */
    } else {
        h1_connect(&c1, p->port);
        (void)setsockopt(c1.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        send_str(&c1, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }
    sorigin_join(&so); /* it stops SO_STALL_MS after the proxy stopped reading */
    cr_expect(so.got_request, "%s: no request reached the origin", name);
    cr_log_info("max_buffer_bytes %u, %s: the origin wrote %zu bytes", buffer, h2 ? "h2" : "h1",
                so.written);
    tbt_h2_close(&h2c);
    tbt_tls_close(&c1);
    tbt_confproxy_stop(p);
    return so.written;
}

Test(limits, max_buffer_bytes,
     .description = "limits.max_buffer_bytes bounds what the proxy holds for a client that does "
                    "not read (h1: its output; h2: half of it per stream)")
{
    size_t small1, big1, small2, big2;

    tbt_world_start(&w, &(struct tbt_world_opts){.origin_down = 1});
    small1 = held("h1-small", 16384, 0);
    big1 = held("h1-big", 32u << 20, 0);
    small2 = held("h2-small", 16384, 1);
    big2 = held("h2-big", 32u << 20, 1);
    /* kernel socket buffers hold a few MiB either way (the client's is made tiny) */
    cr_expect_lt(small1, 12u << 20, "h1, 16 KiB: the origin wrote %zu bytes", small1);
    cr_expect_geq(big1, 32u << 20, "h1, 32 MiB: the origin wrote only %zu bytes", big1);
    cr_expect_lt(small2, 12u << 20, "h2, 16 KiB: the origin wrote %zu bytes", small2);
    cr_expect_geq(big2, 16u << 20, "h2, 32 MiB (16 MiB per stream): the origin wrote only %zu",
                  big2);
}

/* --- first_request, header_read -------------------------------------------------------------- */

/* Sends s one byte every step_ms until the proxy closes (up to max_ms). Returns the ms from the
 * first byte to the close, or -1; what the proxy sent is in got. */
static long long trickle(struct tbt_tls *c, const char *s, size_t n, int step_ms, int max_ms,
                         char *got, size_t cap)
{
    long long t0 = tbt_now_ms();
    size_t i = 0;

    got[0] = '\0';
    while (tbt_now_ms() - t0 < max_ms) {
        if (i < n && tbt_tls_send(c, s + i, 1) == 0)
            i++;
        if (wait_closed(c, step_ms, got, cap) == 1)
            return tbt_now_ms() - t0;
    }
    return -1;
}

/* The offset of the HEADERS frame in what a client session queued (the connection preface, then
 * frames: 3 bytes of length, type, flags, stream id). */
static size_t headers_frame(const unsigned char *buf, size_t len)
{
    size_t off = 24, hdr = 0, flen;

    while (off + 9 <= len) {
        flen = ((size_t)buf[off] << 16) | ((size_t)buf[off + 1] << 8) | buf[off + 2];
        if (buf[off + 3] == NGHTTP2_HEADERS)
            hdr = off;
        off += 9 + flen;
    }
    cr_assert_gt(hdr, 0, "no HEADERS frame in %zu bytes", len);
    return hdr;
}

#define SLOW_REQ                                                                                   \
    "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"

Test(limits, first_request,
     .description = "timeouts.first_request: a connection that sends no request is closed after "
                    "it (h1: silently, or 408 with part of a head; h2: GOAWAY), even when bytes "
                    "trickle in; a connection that sent one is not")
{
    unsigned char buf[4096];
    const uint8_t *d;
    char got[4096];
    long long t0, took;
    ssize_t n;
    int closed;

    world_with("timeouts = { first_request = \"1s\"; header_read = \"30s\"; "
               "idle_keepalive = \"30s\"; };");
    h1_connect(&c1, w.proxy_port);
    t0 = tbt_now_ms();
    got[0] = '\0';
    closed = wait_closed(&c1, 1000 + SLACK_MS, got, sizeof(got));
    took = tbt_now_ms() - t0;
    cr_expect(closed && took >= 800, "h1 silent: closed %d after %lld ms", closed, took);
    cr_expect_str_eq(got, "", "a connection that sent nothing gets nothing");
    tbt_tls_close(&c1);

    h1_connect(&c1, w.proxy_port);
    took = trickle(&c1, SLOW_REQ, sizeof(SLOW_REQ) - 1, 300, 1000 + SLACK_MS, got, sizeof(got));
    cr_expect(took >= 500 && took < 1000 + SLACK_MS, "h1 trickled: closed after %lld ms", took);
    cr_expect(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "h1 trickled: %s", got);
    tbt_tls_close(&c1);

    h1_connect(&c1, w.proxy_port);
    cr_expect_eq(exchange(&c1, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
    cr_expect_eq(wait_closed(&c1, 2000, NULL, 0), 0, "closed after its first request");
    tbt_tls_close(&c1);

    /* h2: the preface and SETTINGS, then one byte of a frame header every 500 ms: frames that
     * open no stream do not keep the connection */
    h2_connect(&h2c, w.proxy_port, NULL);
    n = nghttp2_session_mem_send(h2c.s, &d);
    cr_assert_gt(n, 0);
    memcpy(buf, d, (size_t)n);
    cr_assert_eq(tbt_tls_send(&h2c.tls, buf, (size_t)n), 0);
    took =
        trickle(&h2c.tls, "\0\0\x10\x01\x05\0\0\0\x01", 9, 500, 1000 + SLACK_MS, got, sizeof(got));
    cr_expect(took >= 0 && took < 1000 + SLACK_MS, "h2 trickled: closed after %lld ms", took);
    tbt_h2_close(&h2c);
}

Test(limits, header_read_slowloris,
     .description = "timeouts.header_read is a deadline for the whole head: a client trickling one "
                    "byte per second is cut at it (h1: 408, first request or not; h2: closed)")
{
    unsigned char buf[4096];
    const uint8_t *d;
    char got[4096];
    long long took;
    ssize_t n;
    size_t len = 0, hdr;
    int32_t id;

    world_with("timeouts = { first_request = \"20s\"; header_read = \"3s\"; };");
    h1_connect(&c1, w.proxy_port);
    took = trickle(&c1, SLOW_REQ, sizeof(SLOW_REQ) - 1, 1000, 3000 + SLACK_MS, got, sizeof(got));
    cr_expect(took >= 2500 && took < 3000 + SLACK_MS, "h1: closed after %lld ms", took);
    cr_expect(strncmp(got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "h1: %s", got);
    cr_expect(strstr(got, "Connection: close\r\n") != NULL, "%s", got);
    tbt_tls_close(&c1);

    /* the next request on a kept-alive connection: the same deadline from its first byte */
    h1_connect(&c1, w.proxy_port);
    cr_expect_eq(exchange(&c1, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
    took = trickle(&c1, SLOW_REQ, sizeof(SLOW_REQ) - 1, 1000, 3000 + SLACK_MS, got, sizeof(got));
    cr_expect(took >= 2500 && took < 3000 + SLACK_MS, "h1 second request: closed after %lld ms",
              took);
    cr_expect(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "h1 second request: %s", got);
    tbt_tls_close(&c1);

    /* h2: a HEADERS frame whose header block trickles in */
    h2_connect(&h2c, w.proxy_port, NULL);
    id = tbt_h2_submit(&h2c, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_gt(id, 0);
    while ((n = nghttp2_session_mem_send(h2c.s, &d)) > 0) {
        cr_assert_leq(len + (size_t)n, sizeof(buf));
        memcpy(buf + len, d, (size_t)n);
        len += (size_t)n;
    }
    /* everything but the header block goes now: the preface, SETTINGS, WINDOW_UPDATE and the
     * HEADERS frame's 9-byte header (the frame is last) */
    hdr = headers_frame(buf, len);
    cr_assert_eq(tbt_tls_send(&h2c.tls, buf, hdr + 9), 0);
    took = trickle(&h2c.tls, (const char *)buf + hdr + 9, len - hdr - 9, 1000, 3000 + SLACK_MS, got,
                   sizeof(got));
    cr_expect(took >= 2500 && took < 3000 + SLACK_MS, "h2: closed after %lld ms", took);
    tbt_h2_close(&h2c);
}

/* --- body_read -------------------------------------------------------------------------------- */

Test(limits, body_read,
     .description = "timeouts.body_read: a request body that stalls gets 408 (h1: and a close; "
                    "h2: on the stream, the connection goes on)")
{
    char got[4096] = "";
    struct tbt_h2_stream *st;
    long long t0, took;
    int32_t id;

    world_with("timeouts = { body_read = \"2s\"; };");
    h1_connect(&c1, w.proxy_port);
    send_str(&c1, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nhello");
    t0 = tbt_now_ms();
    cr_expect_eq(wait_closed(&c1, 2000 + SLACK_MS, got, sizeof(got)), 1);
    took = tbt_now_ms() - t0;
    cr_expect(took >= 1500, "h1: closed after %lld ms", took);
    cr_expect(strncmp(got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "h1: %s", got);
    tbt_tls_close(&c1);

    h2_connect(&h2c, w.proxy_port, NULL);
    id = open_stream(&h2c, "/echo", NULL);
    t0 = tbt_now_ms();
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 2000 + SLACK_MS), 0, "%s", h2c.err);
    took = tbt_now_ms() - t0;
    st = tbt_h2_stream(&h2c, id);
    cr_expect_eq(st->status, 408, "h2: %d", st->status);
    cr_expect(took >= 1500, "h2: answered after %lld ms", took);
    id = tbt_h2_submit(&h2c, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(tbt_h2_stream(&h2c, id)->status, 200, "h2: the connection goes on");
}

/* --- send ------------------------------------------------------------------------------------- */

#define HUGE_BODY (64u << 20)

/* Reads whatever c has until EOF or an error (at most ms). Returns the bytes read. */
static size_t drain(struct tbt_tls *c, int ms)
{
    static char buf[1 << 16];
    long long deadline = tbt_now_ms() + ms;
    size_t total = c->rlen;
    struct timeval tv = {.tv_sec = 1};
    int n;

    c->rlen = 0;
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (tbt_now_ms() < deadline) {
        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ && errno == EAGAIN)
                continue; /* the 1 s receive timeout */
            break;
        }
        total += (size_t)n;
    }
    return total;
}

Test(limits, send_timeout_h1,
     .description = "timeouts.send: a client with a tiny receive buffer that never reads a large "
                    "body is closed after it; a client that reads slowly but steadily is not")
{
    char err[512], req[128];
    int small = 4096;
    long long t0, took;
    size_t got, want = 8u << 20, head = 0, total = 0;
    static char buf[1 << 16];

    world_with("timeouts = { send = \"2s\"; };");
    h1_connect(&c1, w.proxy_port);
    (void)setsockopt(c1.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    snprintf(req, sizeof(req), "GET /bytes/%u HTTP/1.1\r\nHost: localhost\r\n\r\n", HUGE_BODY);
    send_str(&c1, req);
    t0 = tbt_now_ms();
    cr_assert_eq(tbt_world_wait_log(&w.proxy, "send timeout", 2000 + 8000, err, sizeof(err)), 0,
                 "%s", err);
    took = tbt_now_ms() - t0;
    cr_expect_geq(took, 1800, "send timeout after %lld ms (timeouts.send 2s)", took);
    got = drain(&c1, 20000);
    cr_expect_lt(got, HUGE_BODY, "the whole body arrived: the connection was not cut");
    tbt_tls_close(&c1);

    /* a steady reader: 1 MiB every 400 ms, never 2 s without progress */
    h1_connect(&c1, w.proxy_port);
    snprintf(req, sizeof(req), "GET /bytes/%zu HTTP/1.1\r\nHost: localhost\r\n\r\n", want);
    send_str(&c1, req);
    while (head == 0 || total < head + want) {
        size_t burst = 0;
        int n = 0;
        usleep(400 * 1000);
        while (burst < (1u << 20) && (n = SSL_read(c1.ssl, buf, sizeof(buf))) > 0) {
            burst += (size_t)n;
            total += (size_t)n;
            if (head == 0 && total >= 4) {
                char *e = memmem(buf, (size_t)n, "\r\n\r\n", 4);
                if (e != NULL)
                    head = total - (size_t)n + (size_t)(e + 4 - buf);
            }
            if (head != 0 && total >= head + want)
                break;
        }
        if (n <= 0)
            break;
    }
    /* chunked: the body's framing adds bytes; all that matters is that it was not cut */
    cr_expect_geq(total, want, "a steady reader was cut after %zu bytes", total);
}

Test(limits, send_timeout_h2,
     .description = "timeouts.send over HTTP/2: a client that reads nothing is closed; a stream "
                    "whose window the client keeps shut is reset (RST_STREAM CANCEL), and the "
                    "connection goes on")
{
    struct tbt_h2_opts slow = {.slow_read_bytes = 1, .slow_read_delay_ms = 600000};
    char err[512], path[64];
    int small = 4096;
    struct tbt_h2_stream *st;
    long long t0, took;
    int32_t id;

    world_with("timeouts = { send = \"2s\"; };");
    snprintf(path, sizeof(path), "/bytes/%u", HUGE_BODY);
    h2_connect(&h2c, w.proxy_port, NULL);
    (void)setsockopt(h2c.tls.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    id = tbt_h2_submit(&h2c, "GET", path, NULL, NULL, 0);
    cr_assert_gt(id, 0);
    (void)tbt_h2_run(&h2c, &id, 1, 300); /* the request goes out; then nothing is read */
    t0 = tbt_now_ms();
    /* the stream's window (1 MiB) runs out before the kernel's buffers do: either timeout may
     * come first, the stream's ("send timeout (the client's window ...") or the connection's */
    cr_assert_eq(tbt_world_wait_log(&w.proxy, "send timeout", 2000 + 8000, err, sizeof(err)), 0,
                 "%s", err);
    took = tbt_now_ms() - t0;
    cr_expect_geq(took, 1500, "send timeout after %lld ms", took);
    tbt_h2_close(&h2c);

    h2_connect(&h2c, w.proxy_port, &slow);
    id = tbt_h2_submit(&h2c, "GET", path, NULL, NULL, 0);
    cr_assert_gt(id, 0);
    t0 = tbt_now_ms();
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 2000 + SLACK_MS + 2000), 0, "not reset: %s", h2c.err);
    took = tbt_now_ms() - t0;
    st = tbt_h2_stream(&h2c, id);
    cr_expect(st->rst_received && st->rst_error == NGHTTP2_CANCEL, "rst %d, code %u",
              st->rst_received, (unsigned)st->rst_error);
    cr_expect(took >= 1800, "reset after %lld ms (timeouts.send 2s)", took);
    id = tbt_h2_submit(&h2c, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(&h2c, &id, 1, 10000), 0, "%s", h2c.err);
    cr_expect_eq(tbt_h2_stream(&h2c, id)->status, 200, "the connection goes on");
}
