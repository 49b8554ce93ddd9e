/*
 * The short soak (issue 8): the real proxy and origin under many Token Binding connections and
 * many requests, with tbbench as the client. The long one is bench/soak (`make soak`: 10,000
 * connections, 1,000,000 requests); this one runs in `make test` and, under SAN=1, against the
 * ASan+UBSan proxy (`make soak-ci` runs it alone): 45-80 s under ASan on a shared 2-core box.
 *
 * - soak: 1,000 connections at once, 500 HTTP/1.1 and 500 HTTP/2 (-m 4), every one negotiating
 *   Token Binding and sending its signed header (which the proxy verifies), carrying 100,000
 *   requests in all; each tbbench then holds its connections open (--hold) until the test has
 *   seen the proxy hold all 1,000 at once and interrupts it. Checked: the proxy never exits; each
 *   tbbench reports zero errors of every kind (a refused binding would be a 4xx), exactly its
 *   50,000 requests, one handshake per connection and every connection still open at its end
 *   (the proxy dropped none); the proxy held all 1,000 client sockets at the same time (waited
 *   for, not sampled by luck); afterwards its client sockets go back to 0, its other
 *   descriptors back to the count before the run, and its origin sockets stay within the pool
 *   (max_idle 64 per worker, 2 workers); its counters show no Token Binding failure and
 *   no 4xx/5xx; it exits 0 on SIGTERM and its log holds no sanitizer report (with ASan,
 *   LeakSanitizer runs at that exit: a leak fails the test here, and tests/run-tests fails on the
 *   marks too).
 * - idle_memory: 1,000 idle connections (handshake, one request, then idle) over h1+TB and then
 *   h2+TB, each against a fresh proxy after a warm-up; the proxy's VmRSS grows by at most
 *   TBT_SOAK_IDLE_MAX_KIB per connection (a gross regression: a buffer per idle connection). The
 *   figures are logged; bench/soak measures them with more connections for the README. Skipped
 *   under ASan (its allocator's redzones and quarantine say nothing about ours).
 *
 * The proxy runs from a config file of this test (proxy_start): 2 workers on any machine, and
 * timeouts a loaded machine cannot miss (TLS handshake, first request, origin connect: 60 s; on a
 * loaded 2-core box with ASan, 1,000 handshakes at once take up to ~20 s and the origin's accept
 * queue overflows, so the defaults of 10 s and 5 s would answer 504 or reset): what is checked is
 * that nothing is lost, not how fast.
 *
 * The descriptor limit is raised to its hard limit first (the children inherit it); the tests are
 * skipped when that is below what they need. Binaries: $TB_BIN (make test sets it), else
 * build/rel/bin.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proc.h"
#include "world.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define SUITE_TIMEOUT_S 240
#define CONNS 500       /* per tbbench: 500 h1 + 500 h2 */
#define REQUESTS 50000  /* per tbbench */
#define RUN_MS 150000   /* both tbbench runs, with slack for sanitizers */
#define SETTLE_MS 15000 /* descriptors back after the run */
#define HOLD_MS 30000   /* both tbbench done: the last connections still opening arrive */
#define HOLDING "tbbench: holding" /* tbbench --hold, on stderr, once its -n responses are in */
#define WORKERS 2                  /* the proxy's, on any machine (the origin pool is per worker) */
#define MAX_IDLE 64                /* the origin pool: idle connections kept per worker */
#define POOL_CAP (WORKERS * MAX_IDLE)
#define IDLE_CONNS 1000 /* idle_memory */
/* RSS per idle connection, KiB: about 14-19 (h1+TB) and 24-25 (h2+TB) on 2 cores (2026-11-30,
 * after the idle-memory work), varying by a few KiB from run to run with malloc's arenas; the
 * bound leaves room for that and still fails when an idle connection gets back a buffer of its
 * own (the 16 KiB frame buffer, a header buffer): bench/soak --phases rss for the figures */
#define TBT_SOAK_IDLE_MAX_KIB 32
#define NOFILE_NEED (2 * CONNS + IDLE_CONNS + 512)

static struct tbt_world w;
static struct tbt_proc bench_h1, bench_h2;

static void teardown(void)
{
    tbt_proc_stop(&bench_h1);
    tbt_proc_stop(&bench_h2);
    tbt_world_teardown(&w);
}

TestSuite(soak, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- limits and what the proxy holds -------------------------------------------------------- */

/* Soft RLIMIT_NOFILE up to the hard limit; skips the test when that is below need. */
static void raise_nofile(rlim_t need)
{
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        cr_skip_test("descriptor hard limit %llu < %llu", (unsigned long long)rl.rlim_cur,
                     (unsigned long long)need);
}

/* One TCP socket of the proxy's network namespace: its inode and ports. */
struct sock {
    unsigned long inode;
    unsigned lport, rport;
};

static int sock_cmp(const void *a, const void *b)
{
    const struct sock *x = a, *y = b;

    return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Appends the sockets of /proc/PID/net/<name> to *v (n, cap). */
static void read_tcp(pid_t pid, const char *name, struct sock **v, size_t *n, size_t *cap)
{
    char path[64], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, name);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        struct sock s;
        if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %*x %*s %*s %*s %*d %*d %lu",
                   &s.lport, &s.rport, &s.inode) != 3)
            continue; /* the header line */
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            *v = realloc(*v, *cap * sizeof(**v));
            cr_assert_not_null(*v);
        }
        (*v)[(*n)++] = s;
    }
    fclose(f);
}

/* The proxy's descriptors: sockets of its client connections, of its origin connections, and
 * everything else (listeners, epoll, eventfds, logs). */
struct fds {
    int client, origin, other;
};

static struct fds proxy_fds(void)
{
    struct fds r = {0, 0, 0};
    struct sock *v = NULL, key, *hit;
    size_t n = 0, cap = 0;
    char dir[64], path[320], link[128];
    struct dirent *e;
    DIR *d;

    read_tcp(w.proxy.pid, "tcp", &v, &n, &cap);
    read_tcp(w.proxy.pid, "tcp6", &v, &n, &cap);
    if (n > 0)
        qsort(v, n, sizeof(*v), sock_cmp);
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)w.proxy.pid);
    d = opendir(dir);
    cr_assert_not_null(d, "cannot read %s", dir);
    while ((e = readdir(d)) != NULL) {
        ssize_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((len = readlink(path, link, sizeof(link) - 1)) <= 0)
            continue;
        link[len] = '\0';
        hit = NULL;
        if (n > 0 && sscanf(link, "socket:[%lu]", &key.inode) == 1)
            hit = bsearch(&key, v, n, sizeof(*v), sock_cmp);
        if (hit != NULL && hit->lport == (unsigned)w.proxy_port && hit->rport != 0)
            r.client++;
        else if (hit != NULL && hit->rport == (unsigned)w.origin_port)
            r.origin++;
        else
            r.other++;
    }
    closedir(d);
    free(v);
    return r;
}

/* VmRSS of the proxy, KiB. */
static long proxy_rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)w.proxy.pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}

/* Waits up to SETTLE_MS for the client sockets to be gone and the rest back to `base`. */
static struct fds settled(const struct fds *base)
{
    long long deadline = tbt_now_ms() + SETTLE_MS;
    struct fds f;

    for (;;) {
        f = proxy_fds();
        if ((f.client == 0 && f.other <= base->other && f.origin <= POOL_CAP) ||
            tbt_now_ms() > deadline)
            return f;
        usleep(200 * 1000);
    }
}

/* --- the proxy ------------------------------------------------------------------------------ */

/* The world (directory, certificate, origin), its quick-mode proxy replaced by one started from
 * this test's config file (see the file comment), on fresh ports, retried like the world's. */
static void proxy_start(void)
{
    struct tbt_world_opts o = {.admin = 1};
    char err[TBT_PROC_ERRLEN] = "", path[600];
    const char *args[] = {"-c", path, NULL};
    int attempt, n, rc = -1;
    char *text;

    tbt_world_start(&w, &o);
    snprintf(path, sizeof(path), "%s/soak.conf", w.dir);
    for (attempt = 0; attempt < 3 && rc != 0; attempt++) {
        tbt_proc_stop(&w.proxy);
        w.proxy_port = tbt_port_free();
        w.admin_port = tbt_port_free();
        cr_assert(w.proxy_port > 0 && w.admin_port > 0, "no free port");
        n = asprintf(&text,
                     "workers = %d;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "             tls = { cert = \"%s\"; key = \"%s\"; }; } );\n"
                     "token_binding = { enabled = true; version = \"draft\";\n"
                     "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                     "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; max_idle = %d;\n"
                     "                      connect_timeout = \"60s\"; }; };\n"
                     "routes = ( { host = \"*\"; prefix = \"/\"; upstream = \"app\"; } );\n"
                     "timeouts = { handshake = \"60s\"; first_request = \"60s\"; };\n"
                     "log = { error = \"-\"; level = \"info\"; };\n"
                     "admin = { listen = \"127.0.0.1:%d\"; };\n",
                     WORKERS, w.proxy_port, w.cert, w.key, w.origin_port, MAX_IDLE, w.admin_port);
        cr_assert(n > 0 && text != NULL);
        cr_assert_eq(tbt_write_file(w.dir, "soak.conf", text, (size_t)n), 0);
        free(text);
        rc = tbt_proc_start(&w.proxy, tbt_world_bin(&w, "tbproxy"), args, w.dir, "tbproxy", err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&w.proxy, (uint16_t)w.proxy_port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc == 0) /* the admin server starts after the listeners (its port may be taken) */
            rc = tbt_world_wait_log(&w.proxy, " admin server on ", TBT_WORLD_START_TIMEOUT_MS, err,
                                    sizeof(err));
        if (rc != 0 && tbt_proc_alive(&w.proxy))
            break; /* running but not accepting: no point in another port */
    }
    cr_assert_eq(rc, 0, "%s", err);
}

/* --- tbbench --------------------------------------------------------------------------------- */

static void bench_start(struct tbt_proc *p, const char *name, const char *const *extra)
{
    const char *args[24];
    char url[96], err[TBT_PROC_ERRLEN];
    size_t n = 0;

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", w.proxy_port);
    args[n++] = "--json";
    args[n++] = "--timeout";
    args[n++] = "90s";
    while (*extra != NULL && n < 22)
        args[n++] = *extra++;
    args[n++] = url;
    args[n] = NULL;
    cr_assert_eq(
        tbt_proc_start(p, tbt_world_bin(&w, "tbbench"), args, w.dir, name, err, sizeof(err)), 0,
        "%s", err);
}

/* SIGINT: tbbench ends its run and reports. Not once reaped (pid 0 would signal our group). */
static void interrupt(struct tbt_proc *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGINT);
}

/* Waits for p to exit, returns its JSON report (the caller json_decref's it). */
static json_t *bench_report(struct tbt_proc *p, int timeout_ms)
{
    char *log, *brace;
    json_error_t je;
    json_t *doc;
    int st = tbt_proc_wait_exit(p, timeout_ms);

    log = tbt_proc_log(p, 0);
    cr_assert_not_null(log);
    cr_assert_eq(st, 0, "%s exit status %d: %.2000s; proxy: %s", p->name, st, log,
                 tbt_world_proxy_log(&w));
    brace = strchr(log, '{');
    cr_assert_not_null(brace, "no JSON from %s: %.2000s", p->name, log);
    doc = json_loads(brace, JSON_DISABLE_EOF_CHECK, &je);
    cr_assert_not_null(doc, "bad JSON from %s (%s): %.2000s", p->name, je.text, brace);
    free(log);
    return doc;
}

static long long num(json_t *doc, const char *a, const char *b)
{
    json_t *v = json_object_get(doc, a);

    if (b != NULL)
        v = json_object_get(v, b);
    cr_assert(json_is_number(v), "tbbench report: no number %s%s%s", a, b ? "." : "", b ? b : "");
    return (long long)json_number_value(v);
}

/* A run's figures: no error of any kind, every connection opened once and open at the end, and
 * (requests > 0) exactly that many complete requests. */
static void bench_ok(json_t *doc, const char *name, long long conns, long long requests)
{
    char *text = json_dumps(json_object_get(doc, "first_errors"), JSON_COMPACT);

    cr_expect_eq(num(doc, "errors", "total"), 0, "%s: errors: %s; proxy: %s", name,
                 text ? text : "?", tbt_world_proxy_log(&w));
    free(text);
    cr_expect_eq(num(doc, "handshakes", NULL), conns, "%s: %lld handshakes for %lld connections",
                 name, num(doc, "handshakes", NULL), conns);
    cr_expect_eq(num(doc, "open_at_end", NULL), conns,
                 "%s: %lld of %lld connections open at the end", name,
                 num(doc, "open_at_end", NULL), conns);
    cr_expect_eq(num(doc, "tb_signatures", NULL), conns, "%s: %lld Token-Binding signatures", name,
                 num(doc, "tb_signatures", NULL));
    if (requests > 0)
        cr_expect_eq(num(doc, "requests", NULL), requests, "%s: %lld of %lld requests", name,
                     num(doc, "requests", NULL), requests);
}

/* --- the admin server ------------------------------------------------------------------------ */

/* GET /metrics from the admin server; malloc'd text (headers and body). */
static char *scrape(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)w.admin_port)};
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    struct pollfd pfd;
    ssize_t n;
    int fd;

    cr_assert_not_null(buf);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_neq(fd, -1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "admin connect");
    cr_assert_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    pfd.fd = fd;
    pfd.events = POLLIN;
    while (poll(&pfd, 1, 5000) == 1 && (n = recv(fd, buf + len, cap - len, 0)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* Sum of the samples of metric `name` whose labels contain `with` (NULL: all) and not `without`
 * (NULL: none). */
static double metric(const char *text, const char *name, const char *with, const char *without)
{
    size_t nl = strlen(name), len;
    const char *p, *end;
    double sum = 0;

    for (p = text; *p != '\0'; p = *end ? end + 1 : end) {
        const char *labels_end;
        char line[512];

        end = strchr(p, '\n');
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (len >= sizeof(line) || strncmp(p, name, nl) != 0 || (p[nl] != '{' && p[nl] != ' '))
            continue;
        memcpy(line, p, len);
        line[len] = '\0';
        labels_end = p[nl] == '{' ? strchr(line, '}') : line + nl;
        if (labels_end == NULL)
            continue;
        if (with != NULL && (strstr(line, with) == NULL || strstr(line, with) > labels_end))
            continue;
        if (without != NULL && strstr(line, without) != NULL && strstr(line, without) < labels_end)
            continue;
        sum += strtod(labels_end + 1, NULL);
    }
    return sum;
}

/* --- tests ----------------------------------------------------------------------------------- */

/* tbbench --hold has all its responses in and holds its connections open: it said so. */
static int holding(const struct tbt_proc *p)
{
    char *log = tbt_proc_log(p, 0);
    int yes = log != NULL &&
              (strncmp(log, HOLDING, strlen(HOLDING)) == 0 || strstr(log, "\n" HOLDING) != NULL);

    free(log);
    return yes;
}

Test(soak, soak,
     .description = "1,000 TB connections (h1 + h2) carry 100,000 requests; nothing "
                    "lost, nothing left, clean exit")
{
    static const char *const h1[] = {"--http1.1", "-c",     "500", "-n", "50000",
                                     "--hold",    "--ramp", "2s",  NULL};
    static const char *const h2[] = {"--http2", "-c",     "500",    "-m", "4", "-n",
                                     "50000",   "--hold", "--ramp", "2s", NULL};
    long long t0, t_load = -1, deadline;
    struct fds base, f = {0, 0, 0}, end;
    int peak = 0, st, held = 0;
    json_t *d1, *d2;
    long rss0, rss_peak = 0, rss;
    char *m0, *m1;

    raise_nofile(NOFILE_NEED);
    proxy_start();
    base = proxy_fds();
    rss0 = proxy_rss_kib();
    m0 = scrape();
    bench_start(&bench_h1, "tbbench-h1", h1);
    bench_start(&bench_h2, "tbbench-h2", h2);
    t0 = tbt_now_ms();
    deadline = t0 + RUN_MS;
    /* Both carry their 50,000 requests, then hold their connections open (--hold) until
     * SIGINT: the proxy must then hold all 1,000 at once, however fast or slow the machine. A
     * connection still opening when its tbbench is done gets HOLD_MS more to arrive. */
    for (;;) {
        cr_assert(tbt_proc_alive(&w.proxy), "the proxy exited (status %d): %s", w.proxy.status,
                  tbt_world_proxy_log(&w));
        f = proxy_fds();
        peak = f.client > peak ? f.client : peak;
        rss = proxy_rss_kib();
        rss_peak = rss > rss_peak ? rss : rss_peak;
        held = holding(&bench_h1) + holding(&bench_h2);
        if (held == 2 && t_load < 0)
            t_load = tbt_now_ms();
        if ((held == 2 && f.client == 2 * CONNS) || tbt_now_ms() > deadline ||
            (t_load >= 0 && tbt_now_ms() > t_load + HOLD_MS) ||
            tbt_proc_alive(&bench_h1) + tbt_proc_alive(&bench_h2) < 2)
            break;
        usleep(200 * 1000);
    }
    cr_expect_eq(held, 2, "after %lld ms: tbbench h1 %s, h2 %s with their 50,000 requests",
                 tbt_now_ms() - t0, holding(&bench_h1) ? "done" : "not done",
                 holding(&bench_h2) ? "done" : "not done");
    cr_expect_eq(f.client, 2 * CONNS,
                 "the proxy holds %d client connections, not all %d (at most %d so far)", f.client,
                 2 * CONNS, peak);
    interrupt(&bench_h1);
    interrupt(&bench_h2);
    d1 = bench_report(&bench_h1, 30000);
    d2 = bench_report(&bench_h2, 30000);
    cr_log_info("soak: %lld ms to carry the requests; h1: %lld requests, %.0f/s; h2: %lld "
                "requests, %.0f/s; peak %d client sockets; proxy RSS %ld KiB before, peak %ld KiB",
                (t_load >= 0 ? t_load : tbt_now_ms()) - t0, num(d1, "requests", NULL),
                json_number_value(json_object_get(d1, "requests_per_s")), num(d2, "requests", NULL),
                json_number_value(json_object_get(d2, "requests_per_s")), peak, rss0, rss_peak);
    bench_ok(d1, "h1+TB", CONNS, REQUESTS);
    bench_ok(d2, "h2+TB", CONNS, REQUESTS);
    json_decref(d1);
    json_decref(d2);

    end = settled(&base);
    cr_log_info("soak: after the run: proxy RSS %ld KiB; descriptors: %d client, %d origin, %d "
                "other (%d before)",
                proxy_rss_kib(), end.client, end.origin, end.other, base.other);
    cr_expect_eq(end.client, 0, "client sockets left: %d", end.client);
    cr_expect_eq(end.other, base.other, "other descriptors: %d, %d before", end.other, base.other);
    cr_expect_leq(end.origin, POOL_CAP, "origin sockets: %d (pool: %d)", end.origin, POOL_CAP);
    m1 = scrape();
    cr_expect_eq(metric(m1, "tbproxy_token_binding_total", NULL, "outcome=\"ok\""),
                 metric(m0, "tbproxy_token_binding_total", NULL, "outcome=\"ok\""),
                 "Token Binding failures counted");
    cr_expect_geq(metric(m1, "tbproxy_token_binding_total", "outcome=\"ok\"", NULL) -
                      metric(m0, "tbproxy_token_binding_total", "outcome=\"ok\"", NULL),
                  2.0 * CONNS, "Token Binding verifications");
    cr_expect_eq(metric(m1, "tbproxy_requests_total", "class=\"4xx\"", NULL) +
                     metric(m1, "tbproxy_requests_total", "class=\"5xx\"", NULL),
                 0, "4xx/5xx answered");
    cr_expect_eq(metric(m1, "tbproxy_upstream_errors_total", NULL, NULL), 0, "upstream errors");
    free(m0);
    free(m1);

    st = tbt_proc_stop(&w.proxy);
    cr_expect_eq(st, 0, "the proxy's exit status on SIGTERM: %d; %s", st, tbt_world_proxy_log(&w));
    tbt_world_check_log(&w.proxy); /* LeakSanitizer reports at that exit */
}

/* RSS growth per connection of `conns` idle connections with tbbench options `mode`, against a
 * fresh world. */
static double idle_kib(const char *const *mode, const char *name)
{
    const char *warm[8], *idle[12];
    char conns[16];
    double answered0, answered = 0;
    struct fds f;
    long r0, r1;
    size_t n = 0, k;
    long long deadline;
    json_t *doc;
    char *m;
    int st;

    proxy_start();
    for (k = 0; mode[k] != NULL; k++)
        warm[n++] = mode[k];
    warm[n++] = "-c";
    warm[n++] = "20";
    warm[n++] = "-d";
    warm[n++] = "1";
    warm[n] = NULL;
    bench_start(&bench_h1, "tbbench-warm", warm);
    json_decref(bench_report(&bench_h1, 30000));
    usleep(500 * 1000);
    r0 = proxy_rss_kib();
    m = scrape();
    answered0 = metric(m, "tbproxy_requests_total", NULL, NULL);
    free(m);

    snprintf(conns, sizeof(conns), "%d", IDLE_CONNS);
    n = 0;
    for (k = 0; mode[k] != NULL; k++)
        idle[n++] = mode[k];
    idle[n++] = "--idle";
    idle[n++] = "-c";
    idle[n++] = conns;
    idle[n++] = "--ramp";
    idle[n++] = "2s";
    idle[n++] = "-d";
    idle[n++] = "60s";
    idle[n] = NULL;
    bench_start(&bench_h2, "tbbench-idle", idle);
    /* every connection made its handshake and got its one answer: idle now */
    deadline = tbt_now_ms() + 60000;
    do {
        usleep(250 * 1000);
        m = scrape();
        answered = metric(m, "tbproxy_requests_total", NULL, NULL) - answered0;
        free(m);
        f = proxy_fds();
    } while ((answered < IDLE_CONNS || f.client != IDLE_CONNS) && tbt_now_ms() < deadline &&
             tbt_proc_alive(&bench_h2));
    cr_assert_eq(f.client, IDLE_CONNS,
                 "%s: the proxy holds %d of %d connections (%.0f answered); %s", name, f.client,
                 IDLE_CONNS, answered, tbt_world_proxy_log(&w));
    usleep(1000 * 1000);
    r1 = proxy_rss_kib();
    interrupt(&bench_h2);
    doc = bench_report(&bench_h2, 20000);
    bench_ok(doc, name, IDLE_CONNS, IDLE_CONNS);
    json_decref(doc);
    st = tbt_proc_stop(&w.proxy);
    cr_expect_eq(st, 0, "exit status %d", st);
    tbt_world_teardown(&w);
    return (double)(r1 - r0) / IDLE_CONNS;
}

Test(soak, idle_memory, .description = "RSS per idle connection (h1+TB, h2+TB) stays bounded")
{
    static const char *const h1[] = {"--http1.1", NULL};
    static const char *const h2[] = {"--http2", NULL};
    double k1, k2;

    if (UNDER_ASAN)
        cr_skip_test("RSS under ASan says nothing about the proxy's own memory");
    raise_nofile(NOFILE_NEED);
    k1 = idle_kib(h1, "h1+TB");
    k2 = idle_kib(h2, "h2+TB");
    cr_log_info("RSS per idle connection: h1+TB %.1f KiB, h2+TB %.1f KiB (%d connections)", k1, k2,
                IDLE_CONNS);
    cr_expect_leq(k1, TBT_SOAK_IDLE_MAX_KIB, "h1+TB: %.1f KiB per idle connection", k1);
    cr_expect_leq(k2, TBT_SOAK_IDLE_MAX_KIB, "h2+TB: %.1f KiB per idle connection", k2);
}
