/*
 * Integration tests of tbproxy's operations surface (issue 7): the admin server wired into the
 * real daemon, its metrics counting real traffic, and its state during a graceful stop.
 *
 * One tbproxy (tests/support/confproxy.h: one worker, so every count is deterministic) in front
 * of the demo origin, with the admin server on a free port, read with a plain HTTP/1.1 client over
 * TCP. The routes: a catch-all, a host binding the "session" cookie, a host checking a JWT.
 *
 * - Known traffic moves each counter by exactly what it should: a /metrics scrape before and one
 *   after 3 HTTP/1.1 requests with Token Binding on one connection, 2 HTTP/2 ones on another, one
 *   request whose Token-Binding header was replayed from another connection (400, "signature"),
 *   and on a fourth connection a bound Set-Cookie, that cookie sent back, and a request without
 *   the route's JWT (401): connections by ALPN, handshakes, requests by protocol and class, Token
 *   Binding outcomes, verifies (histogram count), header-cache hits, key-cache hits and misses,
 *   cookie and JWT outcomes, upstream connects / reuses / latency count, bytes both ways, and the
 *   active-connections gauge back at 0.
 * - `promtool check metrics` (Debian's prometheus package) accepts a real scrape (skipped when
 *   promtool is not installed).
 * - /healthz 200, /readyz 200, /status JSON (version, workers, connections, config file, load
 *   time); then SIGTERM while a slow request is in flight: /readyz turns 503 and /status says
 *   draining while /healthz stays 200, the slow request still completes, the proxy exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h" /* TBP_VERSION */
#include "confproxy.h"
#include "h2test.h"
#include "proc.h"
#include "run.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 90
#define RUN_MS 15000
#define IO_MS 5000
#define HDR_CAP (TB_MAX_HEADER + 1)
#define ALPN_H1_TB "http/1.1_tb_p256,http/1.1"
#define ALPN_H2_TB "h2_tb_p256,h2"
#define COOKIE_KEYS "k1 ERERERERERERERERERERERERERERERERERERERERERE=\n"
#define ADMIN_MAX (4u << 20) /* bytes of an admin answer read at most */

#define CONFIG                                                                                     \
    "cookie_keys = \"cookie.keys\";\n"                                                             \
    "timeouts = { shutdown = \"20s\"; };\n"                                                        \
    "routes = (\n"                                                                                 \
    "  { host = \"ck.test\"; prefix = \"/\"; upstream = \"app\"; bind_cookies = [ \"session\" ]; " \
    "},\n"                                                                                         \
    "  { host = \"jwt.test\"; prefix = \"/\"; upstream = \"app\";\n"                               \
    "    jwt = { keys = \"jwt.pub\"; algs = [ \"ES256\" ]; }; },\n"                                \
    "  { host = \"*\"; prefix = \"/\"; upstream = \"app\"; }\n"                                    \
    ");\n"

/* What a test holds, where the .fini finds it after a failed assertion. */
static struct tbt_world w;
static struct tbt_confproxy px;
static struct tbt_tls conns[4];
static struct tbt_h2 h2;
static EVP_PKEY *key_a;
static char *texts[8]; /* scrapes and the like, freed by the .fini */

static void teardown(void)
{
    size_t i;

    for (i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
        tbt_tls_close(&conns[i]);
    tbt_h2_close(&h2);
    EVP_PKEY_free(key_a);
    key_a = NULL;
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        free(texts[i]);
        texts[i] = NULL;
    }
    tbt_confproxy_stop(&px);
    tbt_world_teardown(&w);
}

TestSuite(ops, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- set-up ----------------------------------------------------------------------------------- */

/* Keeps s (malloc'd) for the .fini; returns it. */
static char *keep(char *s)
{
    size_t i;

    cr_assert_not_null(s);
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i] == NULL)
            return texts[i] = s;
    }
    cr_assert_fail("too many kept texts");
    return NULL;
}

/* Frees a text keep() holds before the .fini (a poll's scrape that is not used any more). */
static void forget(const char *s)
{
    size_t i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i] == s) {
            free(texts[i]);
            texts[i] = NULL;
            return;
        }
    }
}

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = NULL;

    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &k), 0);
    return k;
}

/* The world, the cookie key, a JWT verification key nobody signs with here, and the proxy. */
static void start(void)
{
    EVP_PKEY *idp;
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;

    tbt_world_start(&w, NULL);
    key_a = key_new();
    idp = key_new();
    cr_assert_not_null(b);
    cr_assert_eq(PEM_write_bio_PUBKEY(b, idp), 1);
    n = BIO_get_mem_data(b, &p);
    cr_assert_eq(tbt_write_file(w.dir, "jwt.pub", p, (size_t)n), 0);
    BIO_free(b);
    EVP_PKEY_free(idp);
    cr_assert_eq(tbt_write_file(w.dir, "cookie.keys", COOKIE_KEYS, strlen(COOKIE_KEYS)), 0);
    tbt_confproxy_start_admin(&w, &px, "ops", 0, CONFIG);
    cr_assert_gt(px.admin_port, 0);
}

static const char *plog(void)
{
    static char buf[4096];
    char *log = tbt_proc_log(&px.proc, sizeof(buf) - 1);

    snprintf(buf, sizeof(buf), "%s", log != NULL ? log : "");
    free(log);
    return buf;
}

/* --- the admin client ------------------------------------------------------------------------- */

struct admin_answer {
    int status;
    char *head; /* status line and header section, NUL-terminated (malloc'd, with body) */
    char *body; /* points into the same buffer, NUL-terminated */
};

/* GET path from the admin server ("Connection: close", read to EOF). 0, or -1 with err. */
static int admin_get(const char *path, struct admin_answer *a, char *err, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)px.admin_port)};
    char req[512], *buf = NULL, *sep;
    size_t len = 0, cap = 0;
    long long end = tbt_now_ms() + IO_MS;
    int fd, n, ret = -1;

    memset(a, 0, sizeof(*a));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "admin %s: %s", path, strerror(errno));
        goto Exit;
    }
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long long left = end - tbt_now_ms();
        ssize_t got;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            snprintf(err, errlen, "admin %s: no answer in %d ms", path, IO_MS);
            goto Exit;
        }
        if (cap - len < 4096) {
            char *nb;
            cap = cap ? cap * 2 : 65536;
            if (cap > ADMIN_MAX || (nb = realloc(buf, cap + 1)) == NULL) {
                snprintf(err, errlen, "admin %s: answer too large", path);
                goto Exit;
            }
            buf = nb;
        }
        got = recv(fd, buf + len, cap - len, 0);
        if (got == 0)
            break;
        if (got < 0) {
            snprintf(err, errlen, "admin %s: %s", path, strerror(errno));
            goto Exit;
        }
        len += (size_t)got;
    }
    if (buf == NULL || (buf[len] = '\0', sep = strstr(buf, "\r\n\r\n")) == NULL ||
        sscanf(buf, "HTTP/1.%*d %d", &a->status) != 1) {
        snprintf(err, errlen, "admin %s: not an HTTP answer", path);
        goto Exit;
    }
    *sep = '\0';
    a->head = buf;
    a->body = sep + 4;
    buf = NULL;
    ret = 0;
Exit:
    free(buf);
    if (fd != -1)
        close(fd);
    return ret;
}

/* The answer to GET path, asserted; the caller frees a->head. */
static void admin_fetch(const char *path, struct admin_answer *a)
{
    char err[512];

    cr_assert_eq(admin_get(path, a, err, sizeof(err)), 0, "%s; %s", err, plog());
}

/* A /metrics scrape (status 200 and the 0.0.4 content type asserted), kept for the .fini. */
static const char *scrape(void)
{
    struct admin_answer a;

    admin_fetch("/metrics", &a);
    cr_assert_eq(a.status, 200, "/metrics: %d %s", a.status, a.body);
    cr_assert(strcasestr(a.head, "\r\nContent-Type: text/plain; version=0.0.4") != NULL, "%s",
              a.head);
    memmove(a.head, a.body, strlen(a.body) + 1);
    return keep(a.head);
}

/* The value of series `series` (a name and its labels, exactly as rendered) in a scrape; fails
 * the test when the series is not there. */
static double value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;
    char *end;
    double v;

    for (; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, &end);
            cr_assert(end != p + n + 1, "%s: no number", series);
            return v;
        }
    }
    cr_assert_fail("no series %s in the scrape:\n%.3000s", series, text);
    return 0;
}

/* How much a series moved between two scrapes. */
static double moved(const char *before, const char *after, const char *series)
{
    return value(after, series) - value(before, series);
}

/* Scrapes until fn says the scrape is settled, up to 5 s; returns the last scrape. */
static const char *scrape_until(int (*fn)(const char *), const char *what)
{
    long long end = tbt_now_ms() + 5000;
    const char *s;

    for (;;) {
        s = scrape();
        if (fn(s))
            return s;
        cr_assert_lt(tbt_now_ms(), end, "metrics never showed %s:\n%.3000s", what, s);
        forget(s); /* only the settled scrape is kept: polls do not fill texts[] */
        usleep(20 * 1000);
    }
}

/* The readiness probe of confproxy (a TCP connect, closed without a handshake) was accepted and
 * its connection is gone. */
static int probe_settled(const char *s)
{
    return value(s, "tbproxy_connections_accepted_total") >= 1 &&
           value(s, "tbproxy_connections_active") == 0;
}

static int no_connections(const char *s)
{
    return value(s, "tbproxy_connections_active") == 0;
}

/* --- clients ---------------------------------------------------------------------------------- */

/* An HTTP/1.1 connection with Token Binding (key_a); *hdr: its Token-Binding value (kept). */
static void h1_connect(struct tbt_tls *c, char **hdr)
{
    struct tbt_tls_opts o = {.alpn = ALPN_H1_TB};

    cr_assert_eq(tbt_tls_connect(c, (uint16_t)px.port, &o), 0, "connect: %s; %s", c->err, plog());
    cr_assert_str_eq(c->alpn, "http/1.1_tb_p256");
    *hdr = keep(malloc(HDR_CAP));
    cr_assert_gt(tbt_tls_tb_header(c, TB_KP_ECDSAP256, key_a, -1, NULL, *hdr, HDR_CAP), 0, "%s",
                 c->err);
}

/* GET target with Host host, the Token-Binding header tb and extra lines (each with its CRLF);
 * returns the status, the response in *r when r is not NULL (else disposed of). */
static int h1_get(struct tbt_tls *c, const char *tb, const char *host, const char *target,
                  const char *extra, struct tbt_http_response *r)
{
    struct tbt_http_response own = {0};
    char *req = NULL;
    int status;

    if (r == NULL)
        r = &own;
    cr_assert_gt(asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nToken-Binding: %s\r\n%s\r\n",
                          target, host, tb, extra ? extra : ""),
                 0);
    cr_assert_eq(tbt_tls_send_str(c, req), 0, "send: %s", c->err);
    free(req);
    cr_assert_eq(tbt_tls_read_response(c, r, 0, 0), 0, "%s %s: %s; %s", host, target, c->err,
                 plog());
    status = r->status;
    if (r == &own)
        tbt_http_response_dispose(&own);
    return status;
}

/* --- the metrics -------------------------------------------------------------------------------
 */

/* The expected moves of one series. */
struct move {
    const char *series;
    double by;
};

Test(ops, metrics_count_known_traffic)
{
    static const struct move exact[] = {
        {"tbproxy_connections_accepted_total", 4},
        {"tbproxy_connections_alpn_total{alpn=\"http/1.1_tb_p256\"}", 3},
        {"tbproxy_connections_alpn_total{alpn=\"h2_tb_p256\"}", 1},
        {"tbproxy_connections_alpn_total{alpn=\"http/1.1\"}", 0},
        {"tbproxy_connections_alpn_total{alpn=\"h2\"}", 0},
        {"tbproxy_token_binding_connections_total{version=\"draft\",key=\"ecdsap256\"}", 4},
        {"tbproxy_token_binding_connections_total{version=\"rfc\",key=\"ecdsap256\"}", 0},
        {"tbproxy_tls_handshakes_total{type=\"full\"}", 4},
        {"tbproxy_tls_handshakes_total{type=\"resumed\"}", 0},
        {"tbproxy_tls_handshake_failures_total{reason=\"protocol\"}", 0},
        {"tbproxy_requests_total{protocol=\"h1\",class=\"2xx\"}", 5},
        {"tbproxy_requests_total{protocol=\"h1\",class=\"4xx\"}", 2},
        {"tbproxy_requests_total{protocol=\"h2\",class=\"2xx\"}", 2},
        {"tbproxy_requests_total{protocol=\"h2\",class=\"4xx\"}", 0},
        {"tbproxy_requests_total{protocol=\"h1\",class=\"5xx\"}", 0},
        {"tbproxy_token_binding_total{outcome=\"ok\"}", 8},
        {"tbproxy_token_binding_total{outcome=\"signature\"}", 1},
        {"tbproxy_token_binding_total{outcome=\"missing\"}", 0},
        {"tbproxy_token_binding_verify_seconds_count", 4},
        {"tbproxy_token_binding_verify_seconds_bucket{le=\"+Inf\"}", 4},
        {"tbproxy_token_binding_header_cache_hits_total", 5},
        {"tbproxy_token_binding_key_cache_total{result=\"miss\"}", 1},
        {"tbproxy_token_binding_key_cache_total{result=\"hit\"}", 3},
        {"tbproxy_cookies_bound_total", 1},
        {"tbproxy_cookies_total{outcome=\"ok\"}", 1},
        {"tbproxy_cookies_total{outcome=\"mismatch\"}", 0},
        {"tbproxy_jwt_total{outcome=\"missing\"}", 1},
        {"tbproxy_jwt_total{outcome=\"ok\"}", 0},
        {"tbproxy_upstream_connects_total{pool=\"app\"}", 1},
        {"tbproxy_upstream_reuses_total{pool=\"app\"}", 6},
        {"tbproxy_upstream_errors_total{pool=\"app\"}", 0},
        {"tbproxy_upstream_latency_seconds_count{pool=\"app\"}", 7},
        {"tbproxy_connections_active", 0},
    };
    struct tbt_http_response r = {0};
    const char *before, *after, *set;
    char *tb1, *tb3, *tb4, *hdr2 = NULL, *cookie = NULL;
    struct tbt_h2_opts o2 = {.alpn = ALPN_H2_TB};
    int32_t ids[2];
    size_t i;

    start();
    before = scrape_until(probe_settled, "the readiness probe gone");

    /* 3 HTTP/1.1 requests on one connection: one verify, then the header cache */
    h1_connect(&conns[0], &tb1);
    for (i = 0; i < 3; i++)
        cr_assert_eq(h1_get(&conns[0], tb1, "localhost", "/echo", NULL, NULL), 200, "%s", plog());

    /* 2 HTTP/2 requests on one connection: one verify (the key is in the cache now), one hit */
    cr_assert_eq(tbt_h2_connect(&h2, (uint16_t)px.port, &o2), 0, "%s; %s", h2.err, plog());
    cr_assert_str_eq(h2.tls.alpn, "h2_tb_p256");
    hdr2 = keep(malloc(HDR_CAP));
    cr_assert_gt(tbt_tls_tb_header(&h2.tls, TB_KP_ECDSAP256, key_a, -1, NULL, hdr2, HDR_CAP), 0);
    for (i = 0; i < 2; i++) {
        const char *const extra[] = {"token-binding", hdr2, NULL};
        ids[i] = tbt_h2_submit(&h2, "GET", "/echo", extra, NULL, 0);
        cr_assert_gt(ids[i], 0, "%s", h2.err);
        cr_assert_eq(tbt_h2_run(&h2, &ids[i], 1, RUN_MS), 0, "%s; %s", h2.err, plog());
        cr_assert_eq(tbt_h2_stream(&h2, ids[i])->status, 200, "%s", plog());
    }

    /* the first connection's header replayed on another: verified, refused (400) */
    h1_connect(&conns[1], &tb3);
    cr_assert_eq(h1_get(&conns[1], tb1, "localhost", "/echo", NULL, NULL), 400, "%s", plog());

    /* a bound cookie set, sent back, then a JWT route without a token (401, connection kept) */
    h1_connect(&conns[2], &tb4);
    cr_assert_eq(h1_get(&conns[2], tb4, "ck.test", "/cookies/set?session=abc", NULL, &r), 200);
    set = tbt_http_header(&r, "set-cookie");
    cr_assert(set != NULL && strncmp(set, "session=abc~tb1.k1~", 19) == 0, "Set-Cookie: %s",
              set ? set : "(none)");
    cr_assert_gt(asprintf(&cookie, "Cookie: %.*s\r\n", (int)strcspn(set, ";"), set), 0);
    keep(cookie);
    tbt_http_response_dispose(&r);
    cr_assert_eq(h1_get(&conns[2], tb4, "ck.test", "/echo", cookie, &r), 200);
    cr_assert(strstr((const char *)r.body, "session=abc\"") != NULL, "the origin got: %s",
              (const char *)r.body);
    tbt_http_response_dispose(&r);
    cr_assert_eq(h1_get(&conns[2], tb4, "jwt.test", "/echo", NULL, NULL), 401);

    for (i = 0; i < 3; i++)
        tbt_tls_close(&conns[i]);
    tbt_h2_close(&h2);
    after = scrape_until(no_connections, "every connection closed");

    for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        double m = moved(before, after, exact[i].series);
        cr_expect_eq(m, exact[i].by, "%s moved by %g, expected %g", exact[i].series, m,
                     exact[i].by);
    }
    cr_expect_gt(moved(before, after, "tbproxy_client_received_bytes_total"), 1000);
    cr_expect_gt(moved(before, after, "tbproxy_client_sent_bytes_total"), 1000);
    cr_expect_gt(moved(before, after, "tbproxy_token_binding_verify_seconds_sum"), 0);
    cr_expect_gt(moved(before, after, "tbproxy_upstream_latency_seconds_sum{pool=\"app\"}"), 0);
    cr_expect_eq(value(after, "tbproxy_workers"), 1);
    cr_expect_eq(value(after, "tbproxy_draining"), 0);
    cr_expect_eq(value(after, "tbproxy_build_info{version=\"" TBP_VERSION "\"}"), 1);
}

/* promtool from PATH (Debian: /usr/bin/promtool), or NULL. */
static const char *find_promtool(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096], *save = NULL, *dir;

    snprintf(dirs, sizeof(dirs), "%s", path != NULL ? path : "/usr/bin:/bin");
    for (dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/promtool", dir);
        if (access(out, X_OK) == 0)
            return out;
    }
    return NULL;
}

Test(ops, promtool_accepts_a_real_scrape)
{
    const char *args[] = {"check", "metrics", NULL};
    struct tbt_run_result res = {0};
    char tool[4200], *tb;
    const char *text;
    int st;

    if (find_promtool(tool, sizeof(tool)) == NULL) {
        cr_skip_test("promtool not found (Debian package prometheus): not run");
        return;
    }
    start();
    h1_connect(&conns[0], &tb);
    cr_assert_eq(h1_get(&conns[0], tb, "localhost", "/echo", NULL, NULL), 200);
    cr_assert_eq(h1_get(&conns[0], tb, "localhost", "/status/503", NULL, NULL), 503);
    text = scrape();
    st = tbt_run(tool, args, text, strlen(text), 30000, &res);
    cr_expect_eq(st, 0, "promtool: %s%s%s", res.error, res.out ? res.out : "",
                 res.err ? res.err : "");
    cr_expect(res.out_len == 0 && res.err_len == 0, "promtool said: %s%s", res.out ? res.out : "",
              res.err ? res.err : "");
    tbt_run_result_dispose(&res);
}

/* --- health, readiness, status, draining ------------------------------------------------------ */

/* /status as JSON (asserted to parse). */
static json_t *status_json(void)
{
    struct admin_answer a;
    json_error_t e;
    json_t *doc;

    admin_fetch("/status", &a);
    cr_assert_eq(a.status, 200, "/status: %d", a.status);
    cr_assert(strcasestr(a.head, "\r\nContent-Type: application/json") != NULL, "%s", a.head);
    doc = json_loads(a.body, 0, &e);
    cr_assert(json_is_object(doc), "/status: %s: %s", e.text, a.body);
    free(a.head);
    return doc;
}

static int admin_status_of(const char *path)
{
    struct admin_answer a;
    int st;

    admin_fetch(path, &a);
    st = a.status;
    free(a.head);
    return st;
}

Test(ops, health_ready_status_and_graceful_stop)
{
    struct tbt_http_response r = {0};
    char *tb, *req = NULL;
    long long end;
    json_t *doc;
    int st;

    start();
    cr_expect_eq(admin_status_of("/healthz"), 200);
    cr_expect_eq(admin_status_of("/readyz"), 200);
    doc = status_json();
    cr_expect_str_eq(json_string_value(json_object_get(doc, "version")), TBP_VERSION);
    cr_expect_eq(json_integer_value(json_object_get(doc, "workers")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "config_file")), px.conf);
    cr_expect_geq(json_integer_value(json_object_get(doc, "config_loaded")),
                  (json_int_t)time(NULL) - 60);
    cr_expect_leq(json_integer_value(json_object_get(doc, "config_loaded")),
                  (json_int_t)time(NULL));
    cr_expect(json_is_integer(json_object_get(doc, "uptime_seconds")));
    cr_expect(json_is_false(json_object_get(doc, "draining")));
    json_decref(doc);

    /* a slow request in flight keeps the proxy draining after SIGTERM */
    h1_connect(&conns[0], &tb);
    cr_assert_gt(asprintf(&req,
                          "GET /slow?ms=2500 HTTP/1.1\r\nHost: localhost\r\n"
                          "Token-Binding: %s\r\n\r\n",
                          tb),
                 0);
    keep(req);
    cr_assert_eq(tbt_tls_send_str(&conns[0], req), 0, "%s", conns[0].err);
    end = tbt_now_ms() + 5000;
    for (;;) { /* the request reached the proxy: the connection is counted, its request open */
        doc = status_json();
        st = (int)json_integer_value(json_object_get(doc, "connections_active"));
        json_decref(doc);
        if (st == 1)
            break;
        cr_assert_lt(tbt_now_ms(), end, "the connection never showed in /status");
        usleep(20 * 1000);
    }
    usleep(200 * 1000); /* the request head is read and forwarded */
    cr_assert_eq(kill(px.proc.pid, SIGTERM), 0);
    end = tbt_now_ms() + 5000;
    while (admin_status_of("/readyz") != 503) {
        cr_assert_lt(tbt_now_ms(), end, "/readyz never turned 503 after SIGTERM; %s", plog());
        usleep(20 * 1000);
    }
    cr_expect_eq(admin_status_of("/healthz"), 200, "alive while draining");
    doc = status_json();
    cr_expect(json_is_true(json_object_get(doc, "draining")), "/status while draining");
    cr_expect_eq(json_integer_value(json_object_get(doc, "connections_active")), 1);
    json_decref(doc);
    cr_expect_eq(value(scrape(), "tbproxy_draining"), 1);
    cr_expect(tbt_proc_alive(&px.proc), "the proxy left before its slow request was done");

    /* the slow request completes, then the proxy exits 0 */
    cr_assert_eq(tbt_tls_read_response(&conns[0], &r, 0, 0), 0, "%s; %s", conns[0].err, plog());
    cr_expect_eq(r.status, 200);
    cr_expect(tbt_http_header_has(&r, "Connection", "close"),
              "no Connection: close while draining");
    tbt_http_response_dispose(&r);
    cr_expect_eq(tbt_proc_wait_exit(&px.proc, 10000), 0, "%s", plog());
}
