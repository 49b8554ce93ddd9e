/*
 * admin: the admin server on 127.0.0.1 port 0 (the kernel picks a free one) with fake callbacks,
 * fetched with a plain socket: /healthz, /readyz (503 while draining, 200 again after), /metrics
 * (content type 0.0.4, the text of a real tbp_metrics scrape, 500 when the callback fails, 404
 * without one), /status (JSON fields, null config_file in quick mode), HEAD without a body, 405
 * with Allow for other methods (with and without a request body), 413 for a GET with a body, 404
 * for other paths, an oversized request head refused while the server keeps serving, two
 * requests on one kept-alive connection, a busy port and a bad address refused with a message,
 * IPv6 loopback, and the port closed after tbp_admin_stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "admin.h"
#include "metrics.h"

#define IO_TIMEOUT_MS 5000

static struct tbp_admin *adm;

static void fini(void)
{
    tbp_admin_stop(adm);
    adm = NULL;
}

TestSuite(admin, .fini = fini, .timeout = 30);

/* --- the fake daemon ------------------------------------------------------------------------ */

struct fake {
    struct tbp_metrics m;
    int fail_metrics;
    int quick_mode;
    int metrics_calls, status_calls;
};

static int fake_metrics(void *ctx, struct tbp_buf *out)
{
    struct fake *f = ctx;
    struct tbp_metrics *ms[1] = {&f->m};
    struct tbp_metrics_process p = {.version = "0.1.0", .workers = 3};

    __atomic_add_fetch(&f->metrics_calls, 1, __ATOMIC_RELAXED);
    if (f->fail_metrics)
        return TB_ENOMEM;
    return tbp_metrics_scrape(ms, 1, &p, out);
}

static void fake_status(void *ctx, struct tbp_admin_status *st)
{
    struct fake *f = ctx;

    __atomic_add_fetch(&f->status_calls, 1, __ATOMIC_RELAXED);
    snprintf(st->version, sizeof(st->version), "0.1.0");
    st->start_time = (int64_t)time(NULL) - 100;
    st->workers = 3;
    st->connections_active = 42;
    if (!f->quick_mode)
        snprintf(st->config_file, sizeof(st->config_file), "/etc/tbproxy/tbproxy.conf");
    st->config_loaded = 1700000000;
}

static struct fake fk;

/* Starts adm on 127.0.0.1:0 with fk's callbacks (metrics / status as asked). */
static void start(int with_metrics, int with_status)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct tbp_admin_ops ops = {.ctx = &fk,
                                .metrics = with_metrics ? fake_metrics : NULL,
                                .status = with_status ? fake_status : NULL};
    char err[256] = "";

    cr_assert_eq(tbp_metrics_init(&fk.m, NULL, 0), 0);
    adm = tbp_admin_start((struct sockaddr *)&sa, sizeof(sa), &ops, err, sizeof(err));
    cr_assert_not_null(adm, "admin did not start: %s", err);
    cr_assert_gt(tbp_admin_port(adm), 0);
}

/* --- a plain HTTP/1.1 client ---------------------------------------------------------------- */

struct resp {
    int status;
    char head[8192]; /* status line and header fields */
    char body[65536 * 4];
    size_t body_len;
    size_t raw_len; /* everything read */
};

static int connect_to(int family, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1);
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        s6->sin6_port = htons(port);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s4->sin_port = htons(port);
        sl = sizeof(*s4);
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    ssize_t k;

    while (n > 0) {
        k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server may close early (an answer before the body): not our test */
        p += k;
        n -= (size_t)k;
    }
}

/* Reads until EOF (the requests say Connection: close) into raw; returns the bytes read. */
static size_t read_all(int fd, char *raw, size_t cap)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t n = 0;
    ssize_t k;

    while (n + 1 < cap) {
        cr_assert_eq(poll(&pfd, 1, IO_TIMEOUT_MS), 1, "the admin server did not answer in time");
        k = recv(fd, raw + n, cap - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    raw[n] = '\0';
    return n;
}

/* Splits raw[0..n) into r (one response; the body is whatever follows the head). */
static void parse(const char *raw, size_t n, struct resp *r)
{
    const char *end = strstr(raw, "\r\n\r\n");
    size_t hl;

    memset(r, 0, sizeof(*r));
    r->raw_len = n;
    if (end == NULL)
        return;
    hl = (size_t)(end - raw);
    cr_assert_lt(hl, sizeof(r->head));
    memcpy(r->head, raw, hl);
    r->status = atoi(raw + 9);
    r->body_len = n - hl - 4;
    cr_assert_lt(r->body_len, sizeof(r->body));
    memcpy(r->body, end + 4, r->body_len);
}

/* One request on a new connection; `extra` goes after the request line (header fields, each
 * ending in CRLF), `body` after the head. */
static void fetch_ex(uint16_t port, const char *method, const char *path, const char *extra,
                     const char *body, struct resp *r)
{
    static char raw[sizeof(r->body) + 8192];
    char req[70000];
    int fd = connect_to(AF_INET, port), n;
    size_t got;

    cr_assert_neq(fd, -1, "connect: %s", strerror(errno));
    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n%s", method, path,
                 extra ? extra : "", body ? body : "");
    cr_assert(n > 0 && (size_t)n < sizeof(req));
    send_all(fd, req, (size_t)n);
    got = read_all(fd, raw, sizeof(raw));
    close(fd);
    parse(raw, got, r);
}

static void fetch(const char *method, const char *path, struct resp *r)
{
    fetch_ex(tbp_admin_port(adm), method, path, NULL, NULL, r);
}

/* The value of header `name` in r (case-insensitive name), copied to out; "" when absent. */
static const char *header(const struct resp *r, const char *name, char *out, size_t cap)
{
    const char *p = r->head;
    size_t n = strlen(name), i;

    out[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            for (i = 0; i + 1 < cap && p[i] != '\0' && p[i] != '\r'; i++)
                out[i] = p[i];
            out[i] = '\0';
            return out;
        }
    }
    return out;
}

/* --- tests ---------------------------------------------------------------------------------- */

Test(admin, healthz_and_readyz_follow_draining)
{
    static struct resp r;
    char v[256];

    start(1, 1);
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "ok\n");
    cr_expect_str_eq(header(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=utf-8");
    cr_expect_str_eq(header(&r, "Cache-Control", v, sizeof(v)), "no-store");

    fetch("GET", "/readyz", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "ready\n");

    tbp_admin_set_draining(adm, 1);
    fetch("GET", "/readyz", &r);
    cr_expect_eq(r.status, 503);
    cr_expect_str_eq(r.body, "draining\n");
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200, "alive while draining");

    tbp_admin_set_draining(adm, 0);
    fetch("GET", "/readyz", &r);
    cr_expect_eq(r.status, 200);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, metrics_serves_the_scrape)
{
    static struct resp r;
    char v[256], len[32];

    start(1, 1);
    tbp_metrics_add(&fk.m, TBP_M_CONN_ACCEPTED, 0, 17);
    tbp_metrics_inc(&fk.m, TBP_M_TB, tbp_metrics_tb_label("signature"));
    fetch("GET", "/metrics", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(header(&r, "Content-Type", v, sizeof(v)),
                     "text/plain; version=0.0.4; charset=utf-8");
    cr_expect_not_null(strstr(r.body, "\ntbproxy_connections_accepted_total 17\n"), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\ntbproxy_token_binding_total{outcome=\"signature\"} 1\n"));
    cr_expect_not_null(strstr(r.body, "\ntbproxy_workers 3\n"));
    snprintf(len, sizeof(len), "%zu", r.body_len);
    cr_expect_str_eq(header(&r, "Content-Length", v, sizeof(v)), len);

    tbp_metrics_inc(&fk.m, TBP_M_CONN_ACCEPTED, 0);
    fetch("GET", "/metrics?name[]=x", &r); /* a query string does not matter */
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(strstr(r.body, "\ntbproxy_connections_accepted_total 18\n"));

    fk.fail_metrics = 1;
    fetch("GET", "/metrics", &r);
    cr_expect_eq(r.status, 500);
    cr_expect_str_eq(r.body, "metrics unavailable\n");
    fk.fail_metrics = 0;
    cr_expect_eq(__atomic_load_n(&fk.metrics_calls, __ATOMIC_RELAXED), 3);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, status_json)
{
    static struct resp r;
    json_error_t je;
    json_t *o;
    char v[256];

    start(1, 1);
    fetch("GET", "/status", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(header(&r, "Content-Type", v, sizeof(v)), "application/json");
    o = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert_not_null(o, "not JSON: %s (%s)", r.body, je.text);
    cr_expect_str_eq(json_string_value(json_object_get(o, "version")), "0.1.0");
    cr_expect_geq(json_integer_value(json_object_get(o, "uptime_seconds")), 100);
    cr_expect_leq(json_integer_value(json_object_get(o, "uptime_seconds")), 110);
    cr_expect_eq(json_integer_value(json_object_get(o, "workers")), 3);
    cr_expect_eq(json_integer_value(json_object_get(o, "connections_active")), 42);
    cr_expect_str_eq(json_string_value(json_object_get(o, "config_file")),
                     "/etc/tbproxy/tbproxy.conf");
    cr_expect_eq(json_integer_value(json_object_get(o, "config_loaded")), 1700000000);
    cr_expect(json_is_false(json_object_get(o, "draining")));
    cr_expect(json_is_integer(json_object_get(o, "start_time")));
    json_decref(o);

    fk.quick_mode = 1;
    tbp_admin_set_draining(adm, 1);
    fetch("GET", "/status", &r);
    o = json_loadb(r.body, r.body_len, 0, &je);
    cr_assert_not_null(o, "not JSON: %s", r.body);
    cr_expect(json_is_null(json_object_get(o, "config_file")), "quick mode: null config_file");
    cr_expect(json_is_true(json_object_get(o, "draining")));
    json_decref(o);
    fk.quick_mode = 0;
    tbp_metrics_dispose(&fk.m);
}

Test(admin, head_has_no_body)
{
    static struct resp r;
    char v[256];

    start(1, 1);
    fetch("HEAD", "/metrics", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, 0);
    cr_expect_str_eq(header(&r, "Content-Type", v, sizeof(v)),
                     "text/plain; version=0.0.4; charset=utf-8");
    fetch("HEAD", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, 0);
    fetch("HEAD", "/status", &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, 0);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, other_methods_get_405_other_paths_404)
{
    static struct resp r;
    char v[256];
    static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    static const char *const paths[] = {"/",        "/nope",        "/metrics/", "/healthz/x",
                                        "/METRICS", "/status.json", "//metrics"};
    size_t i;

    start(1, 1);
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        fetch(methods[i], "/metrics", &r);
        cr_expect_eq(r.status, 405, "%s /metrics", methods[i]);
        cr_expect_str_eq(header(&r, "Allow", v, sizeof(v)), "GET, HEAD", "%s", methods[i]);
    }
    fetch_ex(tbp_admin_port(adm), "POST", "/readyz", "Content-Length: 11\r\n", "hello world", &r);
    cr_expect_eq(r.status, 405, "POST with a body: %d", r.status);
    fetch_ex(tbp_admin_port(adm), "GET", "/metrics", "Content-Length: 5\r\n", "hello", &r);
    cr_expect_eq(r.status, 413, "GET with a body: %d", r.status);
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        fetch("GET", paths[i], &r);
        cr_expect_eq(r.status, 404, "GET %s", paths[i]);
        cr_expect_str_eq(r.body, "not found\n");
    }
    fetch("DELETE", "/nope", &r);
    cr_expect_eq(r.status, 404, "an unknown path is 404 whatever the method");
    cr_expect_eq(__atomic_load_n(&fk.metrics_calls, __ATOMIC_RELAXED), 0,
                 "no callback for refused requests");
    /* still serving */
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, missing_callbacks_are_404)
{
    static struct resp r;

    start(0, 0);
    fetch("GET", "/metrics", &r);
    cr_expect_eq(r.status, 404);
    fetch("GET", "/status", &r);
    cr_expect_eq(r.status, 404);
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, oversized_head_refused_and_server_keeps_serving)
{
    static struct resp r;
    static char big[TBP_ADMIN_CONN_MEMORY + 4096];
    char extra[sizeof(big) + 32];

    start(1, 1);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(extra, sizeof(extra), "X-Big: %s\r\n", big);
    fetch_ex(tbp_admin_port(adm), "GET", "/healthz", extra, NULL, &r);
    cr_expect(r.status == 431 || r.status == 413 || r.status == 400 || r.raw_len == 0, "status %d",
              r.status);
    cr_expect_eq(__atomic_load_n(&fk.metrics_calls, __ATOMIC_RELAXED), 0);
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    tbp_metrics_dispose(&fk.m);
}

/* Reads one response with a Content-Length body from fd into raw (NUL-terminated). */
static void read_one(int fd, char *raw, size_t cap)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    const char *end, *cl;
    size_t n = 0;
    ssize_t k;

    for (;;) {
        raw[n] = '\0';
        end = strstr(raw, "\r\n\r\n");
        cl = strcasestr(raw, "\r\ncontent-length:");
        if (end != NULL && cl != NULL && n >= (size_t)(end + 4 - raw) + (size_t)atoi(cl + 17))
            return;
        cr_assert_lt(n + 1, cap);
        cr_assert_eq(poll(&pfd, 1, IO_TIMEOUT_MS), 1, "no answer in time");
        k = recv(fd, raw + n, cap - 1 - n, 0);
        cr_assert_gt(k, 0, "the server closed a kept-alive connection: %s", raw);
        n += (size_t)k;
    }
}

Test(admin, keep_alive_serves_two_requests)
{
    static char raw[65536];
    const char *r1 = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *r2 = "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n";
    int fd;

    start(1, 1);
    fd = connect_to(AF_INET, tbp_admin_port(adm));
    cr_assert_neq(fd, -1);
    send_all(fd, r1, strlen(r1));
    read_one(fd, raw, sizeof(raw));
    cr_expect_eq(strncmp(raw, "HTTP/1.1 200", 12), 0, "%s", raw);
    cr_expect_null(strcasestr(raw, "connection: close"), "%s", raw);
    send_all(fd, r2, strlen(r2));
    read_one(fd, raw, sizeof(raw));
    cr_expect_eq(strncmp(raw, "HTTP/1.1 200", 12), 0, "%s", raw);
    cr_expect_not_null(strstr(raw, "\r\n\r\nready\n"), "%s", raw);
    close(fd);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, busy_port_and_bad_address_refused)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_un_like {
        sa_family_t family;
        char path[32];
    } bad = {.family = AF_UNIX};
    struct tbp_admin_ops ops = {.ctx = &fk, .metrics = fake_metrics, .status = fake_status};
    socklen_t sl = sizeof(sa);
    char err[256] = "";
    int fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    adm = tbp_admin_start((struct sockaddr *)&sa, sizeof(sa), &ops, err, sizeof(err));
    cr_expect_null(adm);
    cr_expect_not_null(strstr(err, "Address already in use"), "%s", err);
    cr_expect_eq(strncmp(err, "admin 127.0.0.1:", 16), 0, "%s", err);
    close(fd);

    err[0] = '\0';
    adm = tbp_admin_start((struct sockaddr *)&bad, sizeof(bad), &ops, err, sizeof(err));
    cr_expect_null(adm);
    cr_expect_str_eq(err, "admin: bad listen address");
    adm = tbp_admin_start((struct sockaddr *)&sa, 4, &ops, err, sizeof(err));
    cr_expect_null(adm, "a truncated address is refused");
    tbp_admin_stop(NULL); /* no-op */
}

Test(admin, ipv6_loopback)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct tbp_admin_ops ops = {.ctx = &fk, .metrics = fake_metrics, .status = fake_status};
    static char raw[65536];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char err[256] = "";
    int fd;

    cr_assert_eq(tbp_metrics_init(&fk.m, NULL, 0), 0);
    adm = tbp_admin_start((struct sockaddr *)&sa, sizeof(sa), &ops, err, sizeof(err));
    if (adm == NULL && strstr(err, "Cannot assign requested address") != NULL) {
        tbp_metrics_dispose(&fk.m);
        cr_skip_test("no IPv6 loopback here: %s", err);
        return;
    }
    cr_assert_not_null(adm, "%s", err);
    fd = connect_to(AF_INET6, tbp_admin_port(adm));
    cr_assert_neq(fd, -1);
    send_all(fd, req, strlen(req));
    read_all(fd, raw, sizeof(raw));
    close(fd);
    cr_expect_eq(strncmp(raw, "HTTP/1.1 200", 12), 0, "%s", raw);
    tbp_metrics_dispose(&fk.m);
}

Test(admin, stop_closes_the_port)
{
    static struct resp r;
    uint16_t port;
    int fd;

    start(1, 1);
    port = tbp_admin_port(adm);
    fetch("GET", "/healthz", &r);
    cr_expect_eq(r.status, 200);
    tbp_admin_stop(adm);
    adm = NULL;
    fd = connect_to(AF_INET, port);
    cr_expect_eq(fd, -1, "the admin port still accepts after stop");
    if (fd != -1)
        close(fd);
    tbp_metrics_dispose(&fk.m);
}
