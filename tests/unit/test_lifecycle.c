/*
 * lifecycle: tbproxy as a process, started and stopped the way an operator (or systemd) does.
 *
 * - graceful stop under load: HTTP/1.1 and HTTP/2 clients run request loops, slow requests are
 *   in flight, SIGTERM arrives: every request either completed with 200 or never started (a
 *   kept-alive HTTP/1.1 connection closed before the request reached the proxy, an HTTP/2 stream
 *   past the GOAWAY's last stream id or refused), none is cut in the middle; the slow ones
 *   complete (the HTTP/1.1 one with "Connection: close", the HTTP/2 one before its connection's
 *   GOAWAY closes it); new connections are refused from the signal on; the exit status is 0;
 * - timeouts.shutdown cuts a request slower than it, and the log says how many were cut;
 * - SIGINT stops at once (alone, and in the middle of a graceful stop);
 * - -v prints the libraries' versions; --pid-file is written atomically once the sockets are
 *   bound and removed at exit; a pid file that cannot be written stops the start;
 * - sd_notify: READY=1, RELOADING=1 then READY=1 around SIGHUP (the proxy keeps serving),
 *   STOPPING=1, on a datagram socket the test passes in NOTIFY_SOCKET;
 * - SIGUSR1 reopens the log files (logrotate's rename, then the signal);
 * - `user`: the process runs as that user after binding (root only; skipped otherwise), and
 *   refuses to start when it is not root.
 *
 * Each test starts its own tbproxy from a config written here (beside the world's origin and
 * certificate) with its own free ports, the admin server's included, so tests run in parallel.
 * Load runs on threads that only count outcomes; every assertion is on the test's thread.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "h2test.h"
#include "proc.h"
#include "tlsclient.h"
#include "world.h"

static struct tbt_world w;

static void fini(void)
{
    tbt_world_teardown(&w);
}

TestSuite(lifecycle, .fini = fini, .timeout = 90);

/* --- a proxy started from a config written here ------------------------------------------------
 */

struct proxy {
    struct tbt_proc proc;
    int port;
    char name[64];
    char conf[1024];
};

/*
 * Writes <dir>/<name>.conf: two workers, one listener on a free port, the world's origin, one
 * route, the admin server on another free port, then `body` (timeouts, log, user, ...).
 */
static void write_conf(struct proxy *p, const char *body)
{
    char file[128], *text = NULL;
    int n, admin = tbt_port_free();

    cr_assert_gt(admin, 0);
    n = asprintf(&text,
                 "workers = 2;\n"
                 "listen = ( { address = \"127.0.0.1:%d\";\n"
                 "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                 "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; }; };\n"
                 "routes = ( { upstream = \"app\"; } );\n"
                 "admin = { listen = \"127.0.0.1:%d\"; };\n"
                 "%s\n",
                 p->port, w.origin_port, admin, body != NULL ? body : "");
    cr_assert(n > 0 && text != NULL);
    snprintf(file, sizeof(file), "%s.conf", p->name);
    cr_assert_eq(tbt_write_file(w.dir, file, text, (size_t)n), 0);
    free(text);
    snprintf(p->conf, sizeof(p->conf), "%s/%s", w.dir, file);
}

/* Starts `tbproxy -c <conf> [extra...]` and waits for its port; retried on a fresh port if it
 * exits first (the free port was taken meanwhile). */
static void proxy_start(struct proxy *p, const char *name, const char *body,
                        const char *const *extra)
{
    char err[TBT_PROC_ERRLEN];
    const char *args[16];
    int attempt, rc = -1;
    size_t n;

    if (w.dir[0] == '\0')
        tbt_world_start(&w, NULL);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(&p->proc);
        p->port = tbt_port_free();
        cr_assert_gt(p->port, 0);
        write_conf(p, body);
        n = 0;
        args[n++] = "-c";
        args[n++] = p->conf;
        for (; extra != NULL && *extra != NULL && n < 15; extra++)
            args[n++] = *extra;
        args[n] = NULL;
        rc = tbt_proc_start(&p->proc, tbt_world_bin(&w, "tbproxy"), args, w.dir, p->name, err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&p->proc, (uint16_t)p->port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc != 0 && tbt_proc_alive(&p->proc))
            break;
    }
    if (rc != 0) {
        char *log = tbt_proc_log(&p->proc, 4096);
        cr_assert_fail("%s: %s\n%s", p->name, err, log != NULL ? log : "");
    }
}

static void proxy_signal(struct proxy *p, int sig)
{
    cr_assert_gt(p->proc.pid, 0, "%s is not running", p->name);
    cr_assert_eq(kill(p->proc.pid, sig), 0, "kill: %s", strerror(errno));
}

/* Waits for the proxy to exit and returns its status (-1 if it is still running). */
static int proxy_wait(struct proxy *p, int timeout_ms)
{
    int st = tbt_proc_wait_exit(&p->proc, timeout_ms);

    tbt_world_check_log(&p->proc);
    return st;
}

static char *proxy_log(const struct proxy *p)
{
    char *log = tbt_proc_log(&p->proc, 0);

    cr_assert_not_null(log);
    return log;
}

/* Polls the proxy's log (or the file `path` when not NULL) for `needle`, up to timeout_ms. */
static int wait_text(const struct proxy *p, const char *path, const char *needle, int timeout_ms)
{
    long long end = tbt_now_ms() + timeout_ms;

    for (;;) {
        char *text = NULL;
        int found;
        if (path == NULL) {
            text = proxy_log(p);
        } else {
            FILE *f = fopen(path, "r");
            size_t cap = 0;
            if (f != NULL) {
                if (getdelim(&text, &cap, '\0', f) == -1) {
                    /* an empty file (just reopened): the buffer holds no string */
                    free(text);
                    text = NULL;
                }
                fclose(f);
            }
        }
        found = text != NULL && strstr(text, needle) != NULL;
        free(text);
        if (found)
            return 1;
        if (tbt_now_ms() > end)
            return 0;
        usleep(20 * 1000);
    }
}

/* 0 when a TCP connection to 127.0.0.1:port is accepted, else the connect errno. */
static int tcp_connect_error(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;

    cr_assert_neq(fd, -1);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
        e = errno;
    close(fd);
    return e;
}

/* Waits up to timeout_ms for connections to the port to be refused. */
static int wait_refused(int port, int timeout_ms)
{
    long long end = tbt_now_ms() + timeout_ms;

    while (tcp_connect_error(port) != ECONNREFUSED) {
        if (tbt_now_ms() > end)
            return 0;
        usleep(5 * 1000);
    }
    return 1;
}

/* One HTTP/1.1 GET on a new connection; the response in r. 0 or -1 (c->err). */
static int h1_get(struct tbt_tls *c, int port, const char *path, struct tbt_http_response *r)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};
    char req[512];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (tbt_tls_connect(c, (uint16_t)port, &o) != 0 || tbt_tls_send_str(c, req) != 0)
        return -1;
    return tbt_tls_read_response(c, r, 0, 0);
}

/* --- load ----------------------------------------------------------------------------------------
 */

#define BODY_LEN 4096
#define BODY_PATH "/bytes/4096"

static atomic_int load_stop;     /* the test is done with the load */
static atomic_int load_signaled; /* SIGTERM was sent: a refused connect is expected from now */

struct load {
    pthread_t thread;
    int port;
    atomic_uint ok;       /* 200 with the whole body (read by the test while it runs) */
    unsigned not_started; /* never reached the proxy (or refused by it, HTTP/2) */
    unsigned bad;         /* anything else: a response cut, another status, a failed connect */
    char first_bad[256];
};

static void load_bad(struct load *l, const char *what, const char *why)
{
    if (l->bad++ == 0)
        snprintf(l->first_bad, sizeof(l->first_bad), "%s: %.200s", what, why);
}

/* A connect failed: the end of the run after the signal, a failure before it. */
static void load_connect_failed(struct load *l, const char *why)
{
    if (!atomic_load(&load_signaled))
        load_bad(l, "connect before the signal", why);
}

static void *h1_load(void *arg)
{
    static const char req[] = "GET " BODY_PATH " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tbt_tls_opts o = {.alpn = "http/1.1", .timeout_ms = 5000};
    struct load *l = arg;

    while (!atomic_load(&load_stop)) {
        struct tbt_tls c = {.fd = -1};
        struct tbt_http_response r = {0};
        int k, closed = 0;

        if (tbt_tls_connect(&c, (uint16_t)l->port, &o) != 0) {
            load_connect_failed(l, c.err);
            tbt_tls_close(&c);
            break;
        }
        for (k = 0; k < 40 && !closed && !atomic_load(&load_stop); k++) {
            if (tbt_tls_send(&c, req, sizeof(req) - 1) != 0) {
                l->not_started++; /* the idle connection was closed under it */
                break;
            }
            if (tbt_tls_read_response(&c, &r, 0, 0) != 0) {
                if (r.status == 0 && c.rlen == 0 && c.eof)
                    l->not_started++; /* closed while idle: the request never arrived */
                else
                    load_bad(l, "h1 response", c.err);
                break;
            }
            if (r.status == 200 && r.body_len == BODY_LEN)
                l->ok++;
            else
                load_bad(l, "h1 response", r.head);
            closed = tbt_http_header_has(&r, "Connection", "close");
        }
        tbt_http_response_dispose(&r);
        tbt_tls_close(&c);
    }
    return NULL;
}

/* An HTTP/2 stream that did not complete: was it ever taken by the proxy? */
static int h2_never_started(const struct tbt_h2 *h, const struct tbt_h2_stream *st)
{
    if (st->status != 0 || st->body_total > 0)
        return 0;
    return st->close_error == NGHTTP2_REFUSED_STREAM || st->rst_error == NGHTTP2_REFUSED_STREAM ||
           (h->goaway && st->id > h->goaway_last_stream);
}

static void *h2_load(void *arg)
{
    struct tbt_h2_opts o = {.alpn = "h2", .timeout_ms = 5000};
    struct load *l = arg;

    while (!atomic_load(&load_stop)) {
        struct tbt_h2 h;
        int k;

        memset(&h, 0, sizeof(h));
        h.tls.fd = -1;
        if (tbt_h2_connect(&h, (uint16_t)l->port, &o) != 0) {
            load_connect_failed(l, h.err);
            tbt_h2_close(&h);
            break;
        }
        for (k = 0; k < 40 && !h.goaway && !h.eof && !atomic_load(&load_stop); k++) {
            int32_t ids[4];
            size_t n = 0, i;
            while (n < 4) {
                int32_t id = tbt_h2_submit(&h, "GET", BODY_PATH, NULL, NULL, 0);
                if (id < 0)
                    break;
                ids[n++] = id;
            }
            if (n == 0)
                break;
            (void)tbt_h2_run(&h, ids, n, 5000);
            for (i = 0; i < n; i++) {
                const struct tbt_h2_stream *st = tbt_h2_stream(&h, ids[i]);
                if (st != NULL && st->status == 200 && st->end_stream && st->body_total == BODY_LEN)
                    l->ok++;
                else if (st != NULL && st->closed && h2_never_started(&h, st))
                    l->not_started++;
                else
                    load_bad(l, "h2 stream", st == NULL ? "lost" : h.err);
            }
        }
        tbt_h2_close(&h);
    }
    return NULL;
}

static void load_start(struct load *l, int port, void *(*fn)(void *))
{
    memset(l, 0, sizeof(*l));
    atomic_init(&l->ok, 0);
    l->port = port;
    cr_assert_eq(pthread_create(&l->thread, NULL, fn, l), 0);
}

/* Waits until every load has completed a request (the load is really running). */
static int load_running(struct load *l, size_t n, int timeout_ms)
{
    long long end = tbt_now_ms() + timeout_ms;
    size_t i;

    for (i = 0; i < n; i++)
        while (atomic_load(&l[i].ok) == 0)
            if (tbt_now_ms() > end)
                return 0;
            else
                usleep(5 * 1000);
    return 1;
}

/* --- graceful stop ------------------------------------------------------------------------------
 */

Test(lifecycle, graceful_stop_under_load)
{
    static const char slow_req[] = "GET /slow?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tbt_tls_opts o1 = {.alpn = "http/1.1"};
    struct tbt_h2_opts o2 = {.alpn = "h2"};
    struct load h1[3], h2[2];
    struct tbt_tls slow1 = {.fd = -1};
    struct tbt_http_response r = {0};
    const struct tbt_h2_stream *st;
    struct tbt_h2 slow2;
    unsigned i, ok1 = 0, ok2 = 0, skipped = 0;
    struct proxy p;
    int32_t sid;
    char *log;

    proxy_start(&p, "graceful", "timeouts = { shutdown = \"20s\"; };", NULL);
    atomic_store(&load_stop, 0);
    atomic_store(&load_signaled, 0);
    for (i = 0; i < 3; i++)
        load_start(&h1[i], p.port, h1_load);
    for (i = 0; i < 2; i++)
        load_start(&h2[i], p.port, h2_load);
    cr_assert(load_running(h1, 3, 10000), "the h1 load does not run");
    cr_assert(load_running(h2, 2, 10000), "the h2 load does not run");

    /* a slow request of each protocol, in flight when the signal comes */
    cr_assert_eq(tbt_tls_connect(&slow1, (uint16_t)p.port, &o1), 0, "%s", slow1.err);
    cr_assert_eq(tbt_tls_send_str(&slow1, slow_req), 0, "%s", slow1.err);
    memset(&slow2, 0, sizeof(slow2));
    cr_assert_eq(tbt_h2_connect(&slow2, (uint16_t)p.port, &o2), 0, "%s", slow2.err);
    sid = tbt_h2_submit(&slow2, "GET", "/slow?ms=1500", NULL, NULL, 0);
    cr_assert_gt(sid, 0, "%s", slow2.err);
    (void)tbt_h2_run(&slow2, &sid, 1, 300); /* sends it; the response takes 1.5 s */

    atomic_store(&load_signaled, 1);
    proxy_signal(&p, SIGTERM);
    cr_expect(wait_refused(p.port, 3000), "new connections still accepted after SIGTERM");
    cr_expect(tbt_proc_alive(&p.proc), "the proxy left before its slow requests were done");

    cr_assert_eq(tbt_tls_read_response(&slow1, &r, 0, 0), 0, "slow h1: %s", slow1.err);
    cr_expect_eq(r.status, 200);
    cr_expect(tbt_http_header_has(&r, "Connection", "close"), "%s", r.head);
    cr_expect_eq(tbt_tls_peer_closed(&slow1, 3000), 1, "the h1 connection stays open");
    tbt_http_response_dispose(&r);
    tbt_tls_close(&slow1);

    (void)tbt_h2_run(&slow2, &sid, 1, 5000);
    st = tbt_h2_stream(&slow2, sid);
    cr_assert_not_null(st);
    cr_expect_eq(st->status, 200, "slow h2: %s", slow2.err);
    cr_expect(st->end_stream, "slow h2 response cut: %s", slow2.err);
    cr_expect(slow2.goaway, "no GOAWAY on the h2 connection");
    cr_expect_geq(slow2.goaway_last_stream, sid, "the GOAWAY disowns the stream it served");
    cr_expect_eq(tbt_h2_wait_closed(&slow2, 3000), 1, "the h2 connection stays open");
    tbt_h2_close(&slow2);

    cr_assert_eq(proxy_wait(&p, 15000), 0, "exit status");
    atomic_store(&load_stop, 1);
    for (i = 0; i < 3; i++) {
        pthread_join(h1[i].thread, NULL);
        cr_expect_eq(h1[i].bad, 0, "h1 load %u: %u bad, first: %s", i, h1[i].bad, h1[i].first_bad);
        ok1 += h1[i].ok;
        skipped += h1[i].not_started;
    }
    for (i = 0; i < 2; i++) {
        pthread_join(h2[i].thread, NULL);
        cr_expect_eq(h2[i].bad, 0, "h2 load %u: %u bad, first: %s", i, h2[i].bad, h2[i].first_bad);
        ok2 += h2[i].ok;
        skipped += h2[i].not_started;
    }
    cr_expect_gt(ok1, 0, "no h1 request completed");
    cr_expect_gt(ok2, 0, "no h2 request completed");
    cr_log_info("graceful stop: %u h1 and %u h2 requests done, %u never started", ok1, ok2,
                skipped);
    log = proxy_log(&p);
    cr_expect(strstr(log, "SIGTERM: graceful stop") != NULL, "%s", log);
    cr_expect(strstr(log, "graceful stop: every connection done") != NULL, "%s", log);
    free(log);
}

Test(lifecycle, shutdown_timeout_cuts_what_is_slower)
{
    struct tbt_tls c = {.fd = -1};
    struct tbt_http_response r = {0};
    struct tbt_tls_opts o = {.alpn = "http/1.1"};
    struct proxy p;
    long long t0;
    char *log;

    proxy_start(&p, "cut", "timeouts = { shutdown = \"500ms\"; };", NULL);
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)p.port, &o), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_send_str(&c, "GET /slow?ms=8000 HTTP/1.1\r\nHost: localhost\r\n\r\n"), 0);
    usleep(200 * 1000);
    t0 = tbt_now_ms();
    proxy_signal(&p, SIGTERM);
    cr_assert_eq(proxy_wait(&p, 5000), 0, "exit status");
    cr_expect_lt(tbt_now_ms() - t0, 4000, "the shutdown timeout was not applied");
    cr_expect_neq(tbt_tls_read_response(&c, &r, 0, 0), 0, "the slow request completed");
    cr_expect_eq(r.status, 0);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    log = proxy_log(&p);
    cr_expect(strstr(log, "graceful stop: timeouts.shutdown ran out after") != NULL, "%s", log);
    cr_expect(strstr(log, "connections cut: 1") != NULL, "%s", log);
    free(log);
}

/* SIGINT: everything closed now, whether alone or during a graceful stop. */
Test(lifecycle, fast_stop)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};
    struct tbt_http_response r = {0};
    int round;

    for (round = 0; round < 2; round++) {
        struct tbt_tls c = {.fd = -1};
        struct proxy p;
        long long t0;
        char *log;

        proxy_start(&p, round == 0 ? "fast" : "fast-in-graceful", NULL, NULL);
        cr_assert_eq(tbt_tls_connect(&c, (uint16_t)p.port, &o), 0, "%s", c.err);
        cr_assert_eq(tbt_tls_send_str(&c, "GET /slow?ms=8000 HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                     0);
        usleep(200 * 1000);
        t0 = tbt_now_ms();
        if (round == 1) {
            proxy_signal(&p, SIGTERM);
            cr_assert(wait_text(&p, NULL, "SIGTERM: graceful stop", 3000));
            cr_expect(tbt_proc_alive(&p.proc), "the slow request was not waited for");
        }
        proxy_signal(&p, SIGINT);
        cr_assert_eq(proxy_wait(&p, 5000), 0, "exit status");
        cr_expect_lt(tbt_now_ms() - t0, 4000, "SIGINT did not stop at once");
        cr_expect_neq(tbt_tls_read_response(&c, &r, 0, 0), 0, "the slow request completed");
        tbt_http_response_dispose(&r);
        tbt_tls_close(&c);
        log = proxy_log(&p);
        if (round == 0)
            cr_expect(strstr(log, "SIGINT: fast stop: connections closed: 1") != NULL, "%s", log);
        else
            cr_expect(strstr(log, "graceful stop: SIGINT after") != NULL, "%s", log);
        free(log);
    }
}

/* --- command line: -v, --pid-file ----------------------------------------------------------------
 */

Test(lifecycle, version)
{
    static const char *const libs[] = {
        "  libtb ",   "  OpenSSL ", "  nghttp2 ", "  libmicrohttpd ", "  libconfig ",
        "  jansson ", "  libjwt ",  "  llhttp ",  "  libsystemd",     NULL};
    const char *args[] = {"-v", NULL};
    char *out = NULL;
    size_t i;

    tbt_world_start(&w, NULL);
    cr_assert_eq(tbt_world_run(&w, tbt_world_bin(&w, "tbproxy"), args, "version", 5000, &out), 0);
    cr_expect(strncmp(out, "tbproxy 0.1.0\n", 14) == 0, "%s", out);
    for (i = 0; libs[i] != NULL; i++)
        cr_expect(strstr(out, libs[i]) != NULL, "no \"%s\" in:\n%s", libs[i], out);
    free(out);
}

/* Names in dir ending with suffix. */
static int count_suffix(const char *dir, const char *suffix)
{
    size_t sl = strlen(suffix);
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l >= sl && strcmp(e->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

Test(lifecycle, pid_file)
{
    char path[700], *text = NULL, *out = NULL;
    const char *extra[] = {"--pid-file", path, NULL};
    struct stat sb;
    struct proxy p;
    size_t cap = 0;
    FILE *f;

    tbt_world_start(&w, NULL);
    snprintf(path, sizeof(path), "%s/tbproxy.pid", w.dir);
    proxy_start(&p, "pidfile", NULL, extra);
    /* the port accepts from listen(2) on; the pid file follows, before the workers start */
    cr_assert(wait_text(&p, NULL, " listening on ", 5000));
    f = fopen(path, "r");
    cr_assert_not_null(f, "no pid file once listening");
    cr_assert_gt(getline(&text, &cap, f), 0);
    fclose(f);
    cr_expect_eq(strtol(text, NULL, 10), (long)p.proc.pid, "pid file says %s", text);
    cr_expect_eq(text[strlen(text) - 1], '\n');
    free(text);
    cr_expect_eq(count_suffix(w.dir, ".tmp"), 0, "a temporary file was left");
    proxy_signal(&p, SIGTERM);
    cr_assert_eq(proxy_wait(&p, 5000), 0);
    cr_expect_neq(stat(path, &sb), 0, "the pid file outlived the process");

    /* a pid file that cannot be written: no start */
    {
        const char *args[] = {"-c", p.conf, "--pid-file", "/nonexistent-dir/tbproxy.pid", NULL};
        cr_expect_eq(
            tbt_world_run(&w, tbt_world_bin(&w, "tbproxy"), args, "pidfile-bad", 10000, &out), 1);
        cr_expect(strstr(out, "pid file /nonexistent-dir/tbproxy.pid.") != NULL, "%s", out);
        free(out);
    }
}

/* --- sd_notify
 * ------------------------------------------------------------------------------------ */

/* Receives datagrams, appending each (and a '|') to log, until one holds the line `want`. */
static int notify_wait(int fd, const char *want, int timeout_ms, char *log, size_t cap)
{
    long long end = tbt_now_ms() + timeout_ms;
    char buf[4096], line[256];

    snprintf(line, sizeof(line), "%s", want);
    for (;;) {
        struct timeval tv;
        long long left = end - tbt_now_ms();
        ssize_t n;
        char *p;

        if (left <= 0)
            return 0;
        tv.tv_sec = left / 1000;
        tv.tv_usec = (left % 1000) * 1000;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        snprintf(log + strlen(log), cap - strlen(log), "%s|", buf);
        for (p = strtok(buf, "\n"); p != NULL; p = strtok(NULL, "\n"))
            if (strcmp(p, line) == 0)
                return 1;
    }
}

Test(lifecycle, sd_notify)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct tbt_http_response r = {0};
    struct tbt_tls c = {.fd = -1};
    char log[8192] = "";
    struct proxy p;
    int fd;

    tbt_world_start(&w, NULL);
    cr_assert_lt(strlen(w.dir) + 16, sizeof(sa.sun_path));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/notify.sock", w.dir);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    proxy_start(&p, "notify", NULL, NULL);
    unsetenv("NOTIFY_SOCKET");

    cr_expect(notify_wait(fd, "READY=1", 5000, log, sizeof(log)), "no READY=1: %s", log);
    cr_expect(strstr(log, "STOPPING=1") == NULL, "%s", log);
    cr_expect(strstr(log, "STATUS=listening on 127.0.0.1:") != NULL, "%s", log);

    log[0] = '\0';
    proxy_signal(&p, SIGHUP);
    cr_expect(notify_wait(fd, "RELOADING=1", 5000, log, sizeof(log)), "no RELOADING=1: %s", log);
    cr_expect(strstr(log, "MONOTONIC_USEC=") != NULL, "%s", log);
    cr_expect(notify_wait(fd, "READY=1", 5000, log, sizeof(log)), "no READY=1 after: %s", log);
    cr_expect(wait_text(&p, NULL, "SIGHUP: reload done", 3000));
    cr_assert_eq(h1_get(&c, p.port, "/echo", &r), 0, "after SIGHUP: %s", c.err);
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);

    log[0] = '\0';
    proxy_signal(&p, SIGTERM);
    cr_expect(notify_wait(fd, "STOPPING=1", 5000, log, sizeof(log)), "no STOPPING=1: %s", log);
    cr_assert_eq(proxy_wait(&p, 5000), 0);
    close(fd);
}

/* --- logs
 * ------------------------------------------------------------------------------------------ */

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;

    if (f == NULL)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static int wait_lines(const char *path, int want, int timeout_ms)
{
    long long end = tbt_now_ms() + timeout_ms;

    while (count_lines(path) != want) {
        if (tbt_now_ms() > end)
            return 0;
        usleep(20 * 1000);
    }
    return 1;
}

Test(lifecycle, sigusr1_reopens_the_logs)
{
    char access[700], access1[700], error[700], error1[700];
    struct tbt_http_response r = {0};
    struct proxy p;
    int i;

    tbt_world_start(&w, NULL);
    snprintf(access, sizeof(access), "%s/access.log", w.dir);
    snprintf(access1, sizeof(access1), "%s/access.log.1", w.dir);
    snprintf(error, sizeof(error), "%s/error.log", w.dir);
    snprintf(error1, sizeof(error1), "%s/error.log.1", w.dir);
    proxy_start(&p, "reopen",
                "log = { access = \"access.log\"; error = \"error.log\"; level = \"info\"; };",
                NULL);
    for (i = 0; i < 2; i++) {
        struct tbt_tls c = {.fd = -1};
        cr_assert_eq(h1_get(&c, p.port, "/echo", &r), 0, "%s", c.err);
        cr_expect_eq(r.status, 200);
        tbt_http_response_dispose(&r);
        tbt_tls_close(&c);
        cr_assert(wait_lines(access, 1, 3000), "access log: %d lines", count_lines(access));
        if (i == 1)
            break;
        /* logrotate: rename, then SIGUSR1 */
        cr_assert_eq(rename(access, access1), 0);
        cr_assert_eq(rename(error, error1), 0);
        proxy_signal(&p, SIGUSR1);
        cr_assert(wait_text(&p, error, "reopened", 3000), "no reopen line in the new error log");
    }
    cr_expect_eq(count_lines(access1), 1, "the rotated access log changed");
    proxy_signal(&p, SIGTERM);
    cr_assert_eq(proxy_wait(&p, 5000), 0);
    cr_expect(wait_text(&p, error, "tbproxy stopped", 1000), "the stop was not logged");
}

/* --- user
 * ------------------------------------------------------------------------------------------ */

/* The four ids of a "Uid:" or "Gid:" line of /proc/PID/status. */
static int proc_ids(pid_t pid, const char *key, long ids[4])
{
    char path[64], line[256];
    size_t kl = strlen(key);
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, kl) == 0)
            n = sscanf(line + kl, "%ld %ld %ld %ld", &ids[0], &ids[1], &ids[2], &ids[3]);
    fclose(f);
    return n == 4 ? 0 : -1;
}

Test(lifecycle, user_switch)
{
    struct tbt_http_response r = {0};
    struct tbt_tls c = {.fd = -1};
    struct passwd *pw;
    long ids[4];
    struct proxy p;
    int k;

    if (geteuid() != 0)
        cr_skip_test("switching users needs root (uid %ld here)", (long)geteuid());
    pw = getpwnam("nobody");
    cr_assert_not_null(pw, "no user nobody");
    proxy_start(&p, "user", "user = \"nobody\";", NULL);
    /* the port accepts from listen(2) on, before the switch: wait for the line after it */
    cr_assert(wait_text(&p, NULL, "running as user nobody", 5000), "no switch logged");
    cr_assert(wait_text(&p, NULL, " listening on ", 5000));
    cr_assert_eq(proc_ids(p.proc.pid, "Uid:", ids), 0);
    for (k = 0; k < 4; k++)
        cr_expect_eq(ids[k], (long)pw->pw_uid, "uid %d: %ld", k, ids[k]);
    cr_assert_eq(proc_ids(p.proc.pid, "Gid:", ids), 0);
    for (k = 0; k < 4; k++)
        cr_expect_eq(ids[k], (long)pw->pw_gid, "gid %d: %ld", k, ids[k]);
    cr_assert_eq(h1_get(&c, p.port, "/echo", &r), 0, "%s", c.err);
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    proxy_signal(&p, SIGTERM);
    cr_assert_eq(proxy_wait(&p, 5000), 0);
}

/* `user` set, not root: refused with a message, whoever runs it. */
Test(lifecycle, user_needs_root)
{
    char dir[512], conf[700], *out = NULL, *text = NULL;
    const char *bin;
    struct proxy p;
    int n, st;

    tbt_world_start(&w, NULL);
    bin = tbt_world_bin(&w, "tbproxy");
    if (geteuid() != 0) {
        const char *args[] = {"-c", conf, NULL};
        proxy_start(&p, "user-probe", NULL, NULL); /* a config with free ports, then edited */
        tbt_proc_stop(&p.proc);
        snprintf(conf, sizeof(conf), "%.690s", p.conf);
        write_conf(&p, "user = \"root\";");
        st = tbt_world_run(&w, bin, args, "user-refused", 10000, &out);
    } else {
        /* root: run it as nobody (setpriv), from a directory nobody can read */
        const char *args[] = {
            "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-c", conf, NULL};
        static const char *const files[] = {"cert.pem", "key.pem"};
        size_t i;

        if (access("/usr/bin/setpriv", X_OK) != 0)
            cr_skip_test("no /usr/bin/setpriv to run tbproxy as another user");
        cr_assert_eq(tbt_tempdir("tbp-lifecycle-", dir, sizeof(dir)), 0);
        cr_assert_eq(chmod(dir, 0755), 0);
        for (i = 0; i < 2; i++) {
            char from[700], *data = NULL;
            size_t cap = 0;
            ssize_t len;
            FILE *f;
            snprintf(from, sizeof(from), "%s/%s", w.dir, files[i]);
            cr_assert_not_null(f = fopen(from, "r"));
            len = getdelim(&data, &cap, '\0', f);
            fclose(f);
            cr_assert_gt(len, 0);
            cr_assert_eq(tbt_write_file(dir, files[i], data, (size_t)len), 0);
            free(data);
            snprintf(from, sizeof(from), "%s/%s", dir, files[i]);
            cr_assert_eq(chmod(from, 0644), 0);
        }
        n = asprintf(&text,
                     "workers = 1;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "  tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                     "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; }; };\n"
                     "routes = ( { upstream = \"app\"; } );\n"
                     "admin = { listen = \"\"; };\n"
                     "user = \"nobody\";\n",
                     tbt_port_free(), w.origin_port);
        cr_assert_gt(n, 0);
        cr_assert_eq(tbt_write_file(dir, "tbproxy.conf", text, (size_t)n), 0);
        free(text);
        snprintf(conf, sizeof(conf), "%s/tbproxy.conf", dir);
        cr_assert_eq(chmod(conf, 0644), 0);
        st = tbt_world_run(&w, "/usr/bin/setpriv", args, "user-refused", 10000, &out);
        tbt_rmdir_all(dir);
    }
    cr_expect_eq(st, 1, "exit status %d: %s", st, out);
    cr_expect(strstr(out, "needs root") != NULL, "%s", out);
    free(out);
}
