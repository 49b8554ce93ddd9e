/*
 * TLS posture and slow clients: the real tbproxy under testssl.sh and slowhttptest (both Debian
 * packages, in the Makefile's DEPS: a missing one fails the test, naming the package), plus our
 * own TLS clients where those tools cannot look. Two suites, so that the long testssl run (suite
 * posture, dispatched first) overlaps the slow-client tests (suite slow_clients) under
 * `--jobs 2`.
 *
 * posture:
 * - testssl.sh (protocols, cipher categories, forward secrecy, every vulnerability check, the
 *   renegotiation ones included; --nodns=none against 127.0.0.1 only, so neither DNS nor any
 *   other host is asked; JSON to a file of the world) reports no finding of severity HIGH,
 *   CRITICAL or FATAL that is not in tests/data/posture/testssl-allowed.txt, and specifically:
 *   SSLv2, SSLv3, TLS 1.0 and 1.1 not offered, TLS 1.2 offered (Token Binding needs it), no
 *   NULL / aNULL / EXPORT / LOW / 3DES / IDEA / CBC ("AVERAGE") / RC4 suites, forward secrecy,
 *   no client-initiated renegotiation, secure renegotiation (RFC 5746) supported. testssl exits
 *   0 (no error, nothing ambiguous). Its own waits for an answer are raised (TESTSSL_WAIT_S), so
 *   that a loaded machine makes it slower, not undecided. Certificate checks (-S) are left out:
 *   the world's certificate is a throwaway self-signed one and says nothing about the proxy.
 *   About a minute on a quiet machine, up to two on a loaded 2-core one with ASan.
 * - A Token Binding ALPN id is never selected without Extended Master Secret, whatever the
 *   client offers (each TB id alone, all of them, with plain fallbacks; TLS 1.2 only, 1.2-1.3,
 *   1.3 only) and however it gets there (a resumed session that was made without EMS); a TB id
 *   is only ever selected on TLS 1.2 with EMS. A client without EMS still gets its plain
 *   protocol. (tests/unit/test_proxy.c, proxy::tb_negotiated_only_with_ems, covers
 *   http/1.1_tb_p256 with a request; this covers every id and the resumption path.)
 * - Client-initiated renegotiation is refused on TLS 1.2 connections, TB (h1 and h2) or not: it
 *   would change tls_unique under a bound connection.
 *
 * slow_clients (proxies with 2-5 s timeouts: STALL_CONFIG, ATTACK_CONFIG):
 * - Stalled clients are cut: TCP connections that send nothing or half a ClientHello (the
 *   handshake timeout), TLS connections that send no request (h1 and h2: first_request), no
 *   sooner than the timeout and well before the defaults (10 s) would, while a normal client is
 *   still served.
 * - slowhttptest: slowloris (-H, a header line every second, so only a whole-head deadline cuts
 *   it) and slow read (-X, a tiny receive window read every 5 s, so timeouts.send cuts it). What
 *   must hold: the attack reached the proxy (it accepted every attack connection); the proxy
 *   cut at least CUT_SHARE of them itself, by a timeout, before the attack's time was up (its log
 *   lines "request header timeout" / "send timeout" plus its handshake-timeout counter on admin
 *   /metrics; for slowloris slowhttptest's CSV sees the connections go too, for slow read the
 *   proxy's open client connections on /metrics fall while slowhttptest still runs: a slow
 *   reader never reads far enough to see the close); slowhttptest's CSV says the service was
 *   available every second (its "Service Available" column is never 0: its probe, every
 *   SLOW_PROBE_S seconds, was answered within that time; slowhttptest itself exits 0 whatever
 *   happens); a Token Binding client probing every second got 200 every time, each within
 *   PROBE_MAX_MS; afterwards the proxy holds no client connection.
 *
 * Time bounds are generous on purpose (a 2-core machine shared with builds, ASan): what is
 * judged is that the proxy answers and cuts, not how fast. The slow-client tests take an
 * exclusive flock on one lock file, so that they never run at the same time as each other
 * (Criterion's parallel jobs, or another run of this file): each counts connections and cuts.
 * The test process raises its descriptor limit to the hard limit (the daemons and slowhttptest
 * inherit it) and scales the attacks down when that is too low. The figures measured (testssl's
 * time and lesser findings, attack connections and cuts, service availability, probe latencies,
 * the proxy's RSS) go to stderr as lines starting with "posture: ", so that `make test` shows
 * them without --verbose.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "proc.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define ALLOWED_FILE "tests/data/posture/testssl-allowed.txt"
/* One timeout for every test of the file (both suites): Criterion 2.4.1 leaks a watchdog entry
 * (48 bytes, flagged under SAN=1) when a test started later has an earlier deadline than one
 * still running, which mixed per-test timeouts cause. The longest: testssl's budget, or a
 * slow-client test waiting for the other two behind the lock. */
#define SUITE_TIMEOUT_S 330
#define TESTSSL_MS 270000       /* the whole testssl.sh run: 1-2 min */
#define TESTSSL_WAIT_S "30"     /* testssl's waits for a reply (HEADER_MAXSLEEP etc., 5-10 s) */
#define TESTSSL_OPENSSL_S "60"  /* --openssl-timeout, --connect-timeout: only a hang reaches it */
#define HANDSHAKE_WAIT_S 15     /* our own handshakes: receive / send timeout */
#define PROBE_MAX_MS 10000      /* a probe exchange, during an attack too */
#define PROBE_EVERY_MS 1000     /* one probe a second */
#define PROBES_MAX 256          /* probes of one attack (its seconds, plus slack) */
#define CUT_SHARE 0.9           /* of the attack connections, cut by the proxy */
#define SLOW_PROBE_S "10"       /* slowhttptest -p: its probe must be answered within this */
#define SETTLE_MS 15000         /* after an attack: no client connection left on the proxy */
#define STALL_HS_MS 5000        /* handshake timeout in STALL_CONFIG: silent TCP, half a hello */
#define STALL_FR_MS 3000        /* first_request in STALL_CONFIG: TLS without a request */
#define STALL_EARLY_MS 500      /* a stalled connection is not cut sooner than its timeout - this */
#define STALL_SLACK_MS 4000     /* ... nor later than its timeout + this (< the 10 s defaults) */
#define CSV_MAX_ROWS 4096       /* seconds of a slowhttptest CSV */
#define CSV_MAX_BYTES (1 << 20) /* its size */
#define METRICS_MAX (4 << 20)   /* an admin /metrics answer */
#define LOG_MAX (64 << 20)      /* the proxy's log, read to count its cuts */

/* Timeouts of the stall test: short, so that stalled connections go within seconds; the
 * handshake's a little longer than first_request, so that our own handshakes (a probe, the
 * TLS connections that then stall) complete in time on a loaded machine under ASan. */
#define STALL_CONFIG                                                                               \
    "timeouts = { handshake = \"5s\"; first_request = \"3s\"; header_read = \"3s\";\n"             \
    "             idle_keepalive = \"3s\"; body_read = \"3s\"; send = \"2s\"; };\n"
/* Timeouts of the attacks: the ones slowloris and slow read meet are short (first_request,
 * header_read, send), so that attack connections are cut within seconds; the handshake keeps
 * its default (10 s): neither attack is slow in the handshake, and a probe's (ours, or
 * slowhttptest's) must not be cut on a loaded machine. */
#define ATTACK_CONFIG                                                                              \
    "timeouts = { handshake = \"10s\"; first_request = \"3s\"; header_read = \"3s\";\n"            \
    "             idle_keepalive = \"3s\"; body_read = \"3s\"; send = \"2s\"; };\n"

static struct tbt_world w;
static EVP_PKEY *probe_key;

static void teardown(void)
{
    tbt_world_teardown(&w);
    EVP_PKEY_free(probe_key);
    probe_key = NULL;
}

TestSuite(posture, .fini = teardown, .timeout = SUITE_TIMEOUT_S);
TestSuite(slow_clients, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- shared helpers ------------------------------------------------------------------------- */

/* A measured figure: one line "posture: ..." on stderr (one write, so parallel tests do not mix).
 */
static void figure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void figure(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n = snprintf(line, sizeof(line), "posture: ");

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) == -1)
        return; /* nowhere to say so */
}

/*
 * Serialises the slow-client tests across Criterion's parallel workers (and concurrent runs of
 * this file): an exclusive flock on $TMPDIR/tbt-posture.lock, held until the worker exits.
 * testssl does not take it: it overlaps them, and only its wall time grows on a busy machine.
 */
static void heavy_lock(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/tbt-posture.lock", tmp != NULL && *tmp ? tmp : "/tmp");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_neq(fd, -1, "open %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) == -1)
        cr_assert_eq(errno, EINTR, "flock %s: %s", path, strerror(errno));
    /* fd stays open: the lock goes with the worker process */
}

/* Raises the soft descriptor limit to the hard one (capped at 65536). Returns the new limit. */
static long raise_nofile(void)
{
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536)
        rl.rlim_cur = 65536;
    else
        rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return (long)rl.rlim_cur;
}

/* Path of a program in PATH into out, or fails the test naming the package. */
static void need_program(const char *name, const char *package)
{
    const char *path = getenv("PATH");
    char buf[4096];

    while (path != NULL && *path != '\0') {
        const char *colon = strchr(path, ':');
        size_t n = colon != NULL ? (size_t)(colon - path) : strlen(path);

        if (n > 0 && n < sizeof(buf) - 2 - strlen(name)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return;
        }
        path = colon != NULL ? colon + 1 : NULL;
    }
    cr_assert_fail("%s is not installed: apt-get install %s (make deps does)", name, package);
}

/* A text file's content (under cap bytes, else the test fails), malloc'd: the caller frees it. */
static char *read_text(const char *path, size_t cap)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    char *buf;
    size_t n, size;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fstat(fileno(f), &st), 0, "%s: %s", path, strerror(errno));
    cr_assert_lt((size_t)st.st_size, cap, "%s: larger than %zu bytes", path, cap);
    size = (size_t)st.st_size + 4096; /* room for what is appended meanwhile (a log) */
    size = size < cap ? size : cap;
    buf = malloc(size + 1);
    cr_assert_not_null(buf);
    n = fread(buf, 1, size, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The proxy's log, malloc'd (the caller frees it). */
static char *proxy_log_text(void)
{
    return read_text(w.proxy.log, LOG_MAX);
}

static int is_tb_id(const char *alpn)
{
    return strstr(alpn, "_tb_") != NULL;
}

/* --- the probe: a Token Binding client ------------------------------------------------------- */

/*
 * One TB exchange: connect with http/1.1_tb_p256, GET /echo with a Token-Binding header over the
 * connection's tls_unique, read the response; each step waits at most PROBE_MAX_MS. Returns the
 * milliseconds it took when the answer was 200, else -1 with why.
 */
static long long probe_once(char *why, size_t cap)
{
    static char hdr[TB_MAX_HEADER + 1];
    struct tbt_tls_opts o = {.alpn = "http/1.1_tb_p256", .timeout_ms = PROBE_MAX_MS};
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    char *req = NULL;
    long long t0 = tbt_now_ms(), ms = -1;

    if (probe_key == NULL)
        cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &probe_key), 0);
    if (tbt_tls_connect(&c, (uint16_t)w.proxy_port, &o) != 0) {
        snprintf(why, cap, "connect: %.300s", c.err);
        goto Exit;
    }
    if (strcmp(c.alpn, "http/1.1_tb_p256") != 0 ||
        tbt_tls_tb_header(&c, TB_KP_ECDSAP256, probe_key, 0, NULL, hdr, sizeof(hdr)) <= 0) {
        snprintf(why, cap, "no Token Binding (ALPN \"%.60s\"): %.300s", c.alpn, c.err);
        goto Exit;
    }
    if (asprintf(&req, "GET /echo HTTP/1.1\r\nHost: localhost\r\nToken-Binding: %s\r\n\r\n", hdr) <
        0) {
        req = NULL;
        snprintf(why, cap, "out of memory");
        goto Exit;
    }
    if (tbt_tls_send_str(&c, req) != 0 || tbt_tls_read_response(&c, &r, 0, 0) != 0) {
        snprintf(why, cap, "exchange: %.300s", c.err);
        goto Exit;
    }
    if (r.status != 200) {
        snprintf(why, cap, "status %d", r.status);
        goto Exit;
    }
    ms = tbt_now_ms() - t0;
Exit:
    free(req);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    return ms;
}

/* A probe that must get 200 within PROBE_MAX_MS. */
static void expect_served(const char *when)
{
    char why[600] = "";
    long long ms = probe_once(why, sizeof(why));

    cr_expect(ms >= 0, "%s: a Token Binding client was not served: %s; proxy log: %s", when, why,
              tbt_world_proxy_log(&w));
    cr_expect(ms <= PROBE_MAX_MS, "%s: a Token Binding client waited %lld ms", when, ms);
}

/* --- what the proxy says: admin /metrics and its log ----------------------------------------- */

/*
 * The value of a series in the proxy's /metrics, named as it appears there (labels included:
 * "tbproxy_tls_handshake_failures_total{reason=\"timeout\"}"), or -1 when it cannot be read.
 */
static double metric(const char *series)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = PROBE_MAX_MS / 1000};
    size_t len = 0, cap = METRICS_MAX, sl = strlen(series);
    char *buf = malloc(cap + 1), *p;
    double v = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (buf == NULL || fd == -1)
        goto Exit;
    sin.sin_port = htons((uint16_t)w.admin_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
        send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
        goto Exit;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap)
            break;
    }
    buf[len] = '\0';
    for (p = buf; (p = strstr(p, series)) != NULL; p += sl)
        if ((p == buf || p[-1] == '\n') && p[sl] == ' ') {
            v = strtod(p + sl + 1, NULL);
            break;
        }
Exit:
    if (fd != -1)
        close(fd);
    free(buf);
    return v;
}

/* metric(), which must be readable: fails the test otherwise. */
static double metric_must(const char *series)
{
    double v = metric(series);

    cr_assert_geq(v, 0, "admin /metrics: no %s; proxy log: %s", series, tbt_world_proxy_log(&w));
    return v;
}

#define HS_TIMEOUTS "tbproxy_tls_handshake_failures_total{reason=\"timeout\"}"

/* Waits up to SETTLE_MS for the proxy to hold no client connection. Returns the last count. */
static double settle_connections(void)
{
    long long end = tbt_now_ms() + SETTLE_MS;
    double v;

    for (;;) {
        v = metric("tbproxy_connections_active");
        if (v == 0 || tbt_now_ms() >= end)
            return v;
        usleep(100 * 1000);
    }
}

/* How many lines of the proxy's log contain `marker`. */
static long log_count(const char *marker)
{
    char *text = proxy_log_text(), *p;
    long n = 0;

    for (p = text; (p = strstr(p, marker)) != NULL; p += strlen(marker))
        n++;
    free(text);
    return n;
}

/* Current resident memory of a process (VmRSS, KiB), or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* --- our own handshakes --------------------------------------------------------------------- */

/* What one handshake gave. */
struct hs {
    int ok;        /* the handshake completed */
    int version;   /* TLS1_2_VERSION, TLS1_3_VERSION */
    char alpn[64]; /* selected, "" for none */
    int ems;       /* Extended Master Secret negotiated */
    char err[256]; /* why it failed */
};

/*
 * A handshake with the proxy offering ALPN list `alpn`, TLS versions min_v..max_v and EMS unless
 * no_ems (tlsclient.h has no lowest version: a TLS 1.3-only client needs this). The connection is
 * closed again; *r says what was negotiated.
 */
static void handshake(const char *alpn, int min_v, int max_v, int no_ems, struct hs *r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    unsigned char wire[512];
    const unsigned char *sel = NULL;
    unsigned sel_len = 0;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = HANDSHAKE_WAIT_S};
    int fd = -1, wl = tbt_alpn_wire(alpn, wire, sizeof(wire));
    unsigned long e;

    memset(r, 0, sizeof(*r));
    cr_assert_not_null(ctx);
    cr_assert_gt(wl, 0, "bad ALPN list %s", alpn);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, no_ems ? SSL_OP_NO_EXTENDED_MASTER_SECRET : 0);
    cr_assert_eq(SSL_CTX_set_min_proto_version(ctx, min_v), 1);
    cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, max_v), 1);
    cr_assert_eq(SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)wl), 0);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    sin.sin_port = htons((uint16_t)w.proxy_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %s",
                 strerror(errno));
    ssl = SSL_new(ctx);
    cr_assert_not_null(ssl);
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    if (SSL_connect(ssl) == 1) {
        r->ok = 1;
        r->version = SSL_version(ssl);
        SSL_get0_alpn_selected(ssl, &sel, &sel_len);
        if (sel_len >= sizeof(r->alpn))
            sel_len = sizeof(r->alpn) - 1;
        if (sel_len > 0)
            memcpy(r->alpn, sel, sel_len);
        r->alpn[sel_len] = '\0';
        r->ems = SSL_get_extms_support(ssl) == 1;
        SSL_shutdown(ssl);
    } else {
        e = ERR_peek_error();
        snprintf(r->err, sizeof(r->err), "%s",
                 e != 0 ? ERR_reason_error_string(e) : "connection closed");
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

static const char *vname(int v)
{
    return v == TLS1_3_VERSION ? "TLS1.3" : v == TLS1_2_VERSION ? "TLS1.2" : "?";
}

/* The invariant: a TB id only on TLS 1.2 with EMS. */
static void expect_sound(const char *what, int ok, int version, const char *alpn, int ems)
{
    if (ok && is_tb_id(alpn))
        cr_expect(version == TLS1_2_VERSION && ems,
                  "%s: Token Binding id %s selected on %s with EMS %s", what, alpn, vname(version),
                  ems ? "on" : "off");
}

/* --- TB never without EMS ------------------------------------------------------------------- */

Test(posture, tb_alpn_needs_ems,
     .description = "no EMS offered: never a TB ALPN id, whatever the offer and TLS versions")
{
    static const struct {
        const char *offer;
        const char *plain; /* what a client without EMS must get */
    } offers[] = {
        {"h2_tb_p256", ""},
        {"h2_tb_rsa2048", ""},
        {"http/1.1_tb_p256", ""},
        {"http/1.1_tb_rsa2048", ""},
        {"h2_tb_p256,h2_tb_rsa2048,http/1.1_tb_p256,http/1.1_tb_rsa2048", ""},
        {"h2_tb_p256,h2,http/1.1", "h2"},
        {"h2_tb_rsa2048,h2_tb_p256,http/1.1", "http/1.1"},
        {"http/1.1_tb_p256,http/1.1_tb_rsa2048,http/1.1", "http/1.1"},
    };
    static const int versions[][2] = {
        {TLS1_2_VERSION, TLS1_2_VERSION},
        {TLS1_2_VERSION, TLS1_3_VERSION},
        {TLS1_3_VERSION, TLS1_3_VERSION},
    };
    struct hs r;
    size_t i, v;

    tbt_world_start(&w, NULL);
    /* the control: with EMS, the proxy does pick a TB id (so this test can see one) */
    handshake("h2_tb_p256,h2,http/1.1", TLS1_2_VERSION, TLS1_3_VERSION, 0, &r);
    cr_assert(r.ok, "control handshake: %s", r.err);
    cr_assert_str_eq(r.alpn, "h2_tb_p256", "control: with EMS the proxy picked %s", r.alpn);
    cr_assert(r.version == TLS1_2_VERSION && r.ems);

    for (i = 0; i < sizeof(offers) / sizeof(offers[0]); i++)
        for (v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
            char what[256];

            snprintf(what, sizeof(what), "offer %s, %s-%s, no EMS", offers[i].offer,
                     vname(versions[v][0]), vname(versions[v][1]));
            handshake(offers[i].offer, versions[v][0], versions[v][1], 1, &r);
            /* a plain client is served whatever it offers: the handshake must complete */
            cr_expect(r.ok, "%s: handshake failed: %s", what, r.err);
            cr_expect(!is_tb_id(r.alpn), "%s: Token Binding id %s selected", what, r.alpn);
            cr_expect_str_eq(r.alpn, offers[i].plain, "%s: ALPN \"%s\", expected \"%s\"", what,
                             r.alpn, offers[i].plain);
            cr_expect(!r.ems, "%s: EMS negotiated although not offered", what);

            /* the same offer with EMS but TLS 1.3 only: TB ids are TLS 1.2 only (tls_unique) */
            if (versions[v][0] == TLS1_3_VERSION) {
                snprintf(what, sizeof(what), "offer %s, TLS1.3 only, EMS", offers[i].offer);
                handshake(offers[i].offer, TLS1_3_VERSION, TLS1_3_VERSION, 0, &r);
                cr_expect(!r.ok || !is_tb_id(r.alpn), "%s: Token Binding id %s on %s", what, r.alpn,
                          vname(r.version));
            }
        }
}

Test(posture, tb_alpn_not_on_resumed_non_ems_session,
     .description = "a session made without EMS, resumed with a TB offer: no TB id; "
                    "an EMS session resumed without EMS: no TB id either")
{
    struct tbt_tls c;
    struct tbt_tls_opts plain12 = {.alpn = "http/1.1", .no_ems = 1, .max_version = TLS1_2_VERSION};
    struct tbt_tls_opts tb12 = {.alpn = "h2_tb_p256,http/1.1_tb_p256,h2,http/1.1",
                                .max_version = TLS1_2_VERSION};
    SSL_SESSION *s;
    int resumed_any = 0;

    tbt_world_start(&w, NULL);

    /* 1. a TLS 1.2 session without EMS */
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &plain12), 0, "%s", c.err);
    cr_assert_not(c.ems);
    s = tbt_tls_session(&c);
    tbt_tls_close(&c);
    cr_assert_not_null(s);

    /* resumed, still without EMS, offering TB: plain h2 */
    tb12.no_ems = 1;
    tb12.resume = s;
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &tb12), 0, "%s", c.err);
    cr_expect(!is_tb_id(c.alpn), "resumed non-EMS session: TB id %s selected (resumed %d)", c.alpn,
              c.reused);
    cr_expect_str_eq(c.alpn, "h2");
    resumed_any |= c.reused;
    expect_sound("non-EMS session resumed without EMS", 1, c.version, c.alpn, c.ems);
    tbt_tls_close(&c);

    /* offered with EMS this time: the server must not resume (RFC 7627 5.3); if it picks TB,
     * the handshake was a full one with EMS */
    tb12.no_ems = 0;
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &tb12), 0, "%s", c.err);
    expect_sound("non-EMS session offered with EMS", 1, c.version, c.alpn, c.ems);
    cr_expect(!(c.reused && !c.ems), "a non-EMS session resumed for an EMS offer");
    tbt_tls_close(&c);
    SSL_SESSION_free(s);

    /* 2. a TB session with EMS, offered for resumption without EMS */
    tb12.resume = NULL;
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &tb12), 0, "%s", c.err);
    cr_assert_str_eq(c.alpn, "h2_tb_p256");
    cr_assert(c.ems);
    s = tbt_tls_session(&c);
    tbt_tls_close(&c);
    cr_assert_not_null(s);
    tb12.no_ems = 1;
    tb12.resume = s;
    if (tbt_tls_connect(&c, (uint16_t)w.proxy_port, &tb12) == 0) {
        cr_expect(!is_tb_id(c.alpn), "EMS session resumed without EMS: TB id %s (resumed %d)",
                  c.alpn, c.reused);
        expect_sound("EMS session offered without EMS", 1, c.version, c.alpn, c.ems);
        resumed_any |= c.reused;
    }
    /* else: the handshake was refused (RFC 7627 allows aborting it): no TB either */
    tbt_tls_close(&c);
    SSL_SESSION_free(s);
    figure("non-EMS resumption %s", resumed_any ? "resumed" : "never resumed");
    expect_served("after the resumption attempts");
}

/* --- renegotiation -------------------------------------------------------------------------- */

/*
 * On a fresh h2 connection: sends the client preface and an empty SETTINGS, then reads frames
 * until both the server's SETTINGS and its ACK of ours have come (at most HANDSHAKE_WAIT_S), so
 * that the answer to a ClientHello sent next is the next record on the wire.
 */
static void h2_settle(struct tbt_tls *c)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    unsigned char buf[16384];
    size_t len = 0, off = 0;
    int settings = 0, ack = 0;

    cr_assert_eq(tbt_tls_send(c, preface, sizeof(preface) - 1), 0, "%s", c->err);
    while (!settings || !ack) {
        int n;

        if (len - off >= 9) { /* a frame header: length (24), type, flags, stream id */
            size_t flen = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];

            if (len - off >= 9 + flen) {
                if (buf[off + 3] == 0x4) { /* SETTINGS */
                    settings |= !(buf[off + 4] & 1);
                    ack |= buf[off + 4] & 1;
                }
                off += 9 + flen;
                continue;
            }
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        off = 0;
        cr_assert_lt(len, sizeof(buf), "h2: a frame larger than %zu bytes", sizeof(buf));
        ERR_clear_error();
        n = SSL_read(c->ssl, buf + len, (int)(sizeof(buf) - len));
        cr_assert_gt(n, 0, "h2: no SETTINGS %s from the proxy within %d s",
                     settings ? "ACK" : "frame", HANDSHAKE_WAIT_S);
        len += (size_t)n;
    }
}

Test(posture, no_client_renegotiation,
     .description = "a TLS 1.2 client asking to renegotiate (TB h1, TB h2, plain) is refused")
{
    static const char *const offers[] = {"http/1.1_tb_p256", "h2_tb_p256", "http/1.1"};
    static char hdr[TB_MAX_HEADER + 1];
    EVP_PKEY *key = NULL;
    size_t i;

    tbt_world_start(&w, NULL);
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &key), 0);
    for (i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        struct tbt_tls_opts o = {.alpn = offers[i],
                                 .max_version = TLS1_2_VERSION,
                                 .timeout_ms = HANDSHAKE_WAIT_S * 1000};
        struct tbt_tls c;
        int renegotiated, rc = 0, saved;
        unsigned long e;

        cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &o), 0, "%s", c.err);
        cr_assert_str_eq(c.alpn, offers[i]);
        cr_assert(c.has_tls_unique);
        if (strcmp(offers[i], "http/1.1_tb_p256") == 0) {
            /* a bound request first, so that the connection holds a verified binding */
            struct tbt_http_response r = {0};
            char *req = NULL;

            cr_assert_gt(tbt_tls_tb_header(&c, TB_KP_ECDSAP256, key, 0, NULL, hdr, sizeof(hdr)), 0);
            cr_assert_gt(
                asprintf(&req, "GET /echo HTTP/1.1\r\nHost: localhost\r\nToken-Binding: %s\r\n\r\n",
                         hdr),
                0);
            cr_assert_eq(tbt_tls_send_str(&c, req), 0, "%s", c.err);
            free(req);
            cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s", c.err);
            cr_assert_eq(r.status, 200);
            tbt_http_response_dispose(&r);
        }
        if (strcmp(offers[i], "h2_tb_p256") == 0)
            h2_settle(&c);
        ERR_clear_error();
        /* SSL_renegotiate queues it; SSL_do_handshake sends the ClientHello and waits for the
         * answer: a no_renegotiation alert (fatal for the client that asked), the connection
         * closed, or nothing (the connection's receive timeout, HANDSHAKE_WAIT_S). Only 1 means
         * a new handshake completed. */
        errno = 0;
        renegotiated = SSL_renegotiate(c.ssl) == 1 && (rc = SSL_do_handshake(c.ssl)) == 1;
        saved = errno;
        cr_expect_not(renegotiated, "%s: the proxy accepted a client-initiated renegotiation",
                      offers[i]);
        e = ERR_peek_error();
        figure("renegotiation on %s refused (%s)", offers[i],
               e != 0 ? ERR_reason_error_string(e)
               : SSL_get_error(c.ssl, rc) == SSL_ERROR_SYSCALL &&
                       (saved == EAGAIN || saved == EWOULDBLOCK)
                   ? "no answer"
                   : "connection closed");
        ERR_clear_error();
        c.eof = 1; /* no close_notify on a connection the handshake failure broke */
        tbt_tls_close(&c);
        cr_assert(tbt_proc_alive(&w.proxy), "the proxy died: %s", tbt_world_proxy_log(&w));
    }
    EVP_PKEY_free(key);
    expect_served("after the renegotiation attempts");
}

/* --- testssl.sh ----------------------------------------------------------------------------- */

/* An expected testssl finding: the JSON entry `id` exists and its finding starts with `prefix`. */
struct expectation {
    const char *id;
    const char *prefix;
};

static const struct expectation expected[] = {
    {"SSLv2", "not offered"},
    {"SSLv3", "not offered"},
    {"TLS1", "not offered"},
    {"TLS1_1", "not offered"},
    {"TLS1_2", "offered"}, /* Token Binding (draft) needs TLS 1.2 */
    {"cipherlist_NULL", "not offered"},
    {"cipherlist_aNULL", "not offered"},
    {"cipherlist_EXPORT", "not offered"},
    {"cipherlist_LOW", "not offered"}, /* 64 bit, DES, RC2, RC4 */
    {"cipherlist_3DES_IDEA", "not offered"},
    {"cipherlist_AVERAGE", "not offered"}, /* obsolete CBC suites */
    {"cipherlist_STRONG", "offered"},      /* AEAD */
    {"PFS", "offered"},
    {"secure_renego", "supported"},             /* RFC 5746 */
    {"secure_client_renego", "not vulnerable"}, /* client-initiated renegotiation refused */
    {"heartbleed", "not vulnerable"},
    {"CCS", "not vulnerable"},
    {"ticketbleed", "not vulnerable"},
    {"ROBOT", "not vulnerable"},
    {"CRIME_TLS", "not vulnerable"},
    {"POODLE_SSL", "not vulnerable"},
    {"SWEET32", "not vulnerable"},
    {"FREAK", "not vulnerable"},
    {"DROWN", "not vulnerable"},
    {"LOGJAM", "not vulnerable"},
    {"BEAST", "not vulnerable"},
    {"LUCKY13", "not vulnerable"},
    {"RC4", "not vulnerable"},
};

/* Is "id severity" listed in the allowlist text (lines "<id> <severity> [# why]")? */
static int allowed(const char *list, const char *id, const char *severity)
{
    const char *line = list;

    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t n = end != NULL ? (size_t)(end - line) : strlen(line), il = strlen(id),
               sl = strlen(severity);
        const char *p = line;

        while (p < line + n && (*p == ' ' || *p == '\t'))
            p++;
        if (p + il < line + n && strncmp(p, id, il) == 0 && (p[il] == ' ' || p[il] == '\t')) {
            p += il;
            while (p < line + n && (*p == ' ' || *p == '\t'))
                p++;
            if (p + sl <= line + n && strncmp(p, severity, sl) == 0 &&
                (p + sl == line + n || p[sl] == ' ' || p[sl] == '\t' || p[sl] == '#'))
                return 1;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/* The testssl JSON entry named id, or NULL. */
static json_t *finding(json_t *doc, const char *id)
{
    size_t i;
    json_t *e;

    json_array_foreach(doc, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (eid != NULL && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

/* Appends " id=SEVERITY" (or with the finding when `what`) to a bounded list. */
static void list_add(char *list, size_t cap, const char *id, const char *sev, const char *what)
{
    size_t len = strlen(list);

    if (what != NULL)
        snprintf(list + len, cap - len, "\n  %s %s: %s", id, sev, what);
    else
        snprintf(list + len, cap - len, " %s=%s", id, sev);
}

Test(posture, testssl,
     .description = "testssl.sh: no HIGH/CRITICAL finding, no old protocol, weak cipher or "
                    "client renegotiation")
{
    char json_path[700], target[64], *log = NULL, *allow, bad[8192] = "", notes[4096] = "";
    char unsure[4096] = "";
    const char *tail;
    /* -p protocols, -s cipher categories, -f forward secrecy, -U every vulnerability check */
    const char *args[] = {"--quiet",
                          "--nodns=none",
                          "--color",
                          "0",
                          "--warnings",
                          "off",
                          "--connect-timeout",
                          TESTSSL_OPENSSL_S,
                          "--openssl-timeout",
                          TESTSSL_OPENSSL_S,
                          "--jsonfile",
                          json_path,
                          "-p",
                          "-s",
                          "-f",
                          "-U",
                          target,
                          NULL};
    static const char *const waits[] = {"HEADER_MAXSLEEP", "MAX_WAITSOCK", "CCS_MAX_WAITSOCK",
                                        "HEARTBLEED_MAX_WAITSOCK"};
    json_error_t je;
    json_t *doc, *e;
    size_t i, nbad = 0;
    long long t0, took;
    int rc;

    need_program("testssl", "testssl.sh");
    /* testssl's waits for a reply (5-10 s): a reply that comes later on a loaded machine would
     * make a check undecided ("likely not vulnerable (timed out)") or a probe count as failed.
     * They only cost time when nothing answers. */
    for (i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
        cr_assert_eq(setenv(waits[i], TESTSSL_WAIT_S, 1), 0);
    tbt_world_start(&w, NULL);
    snprintf(json_path, sizeof(json_path), "%s/testssl.json", w.dir);
    snprintf(target, sizeof(target), "127.0.0.1:%d", w.proxy_port);
    t0 = tbt_now_ms();
    rc = tbt_world_run(&w, "testssl", args, "testssl", TESTSSL_MS, &log);
    took = tbt_now_ms() - t0;
    cr_assert_not_null(log);
    tail = strlen(log) > 3000 ? log + strlen(log) - 3000 : log;
    cr_assert_neq(rc, -1,
                  "testssl still running after %lld s, its budget: stopped; its output "
                  "ends: %s",
                  took / 1000, tail);
    cr_expect_eq(rc, 0,
                 "testssl exited %d after %lld s (0: no error, nothing ambiguous); its "
                 "output ends: %s",
                 rc, took / 1000, tail);
    free(log);
    cr_expect(tbt_proc_alive(&w.proxy), "the proxy died under testssl: %s",
              tbt_world_proxy_log(&w));

    doc = json_load_file(json_path, JSON_REJECT_DUPLICATES, &je);
    cr_assert(json_is_array(doc), "%s: %s (line %d)", json_path, je.text, je.line);
    cr_assert_gt(json_array_size(doc), 20, "testssl reported only %zu findings",
                 json_array_size(doc));
    allow = read_text(ALLOWED_FILE, 64 * 1024);

    /* the gate: HIGH, CRITICAL (and testssl's own FATAL) unless allowed */
    json_array_foreach(doc, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *sev = json_string_value(json_object_get(e, "severity"));
        const char *what = json_string_value(json_object_get(e, "finding"));

        cr_assert(id != NULL && sev != NULL, "a testssl entry without id or severity");
        if (strcmp(sev, "HIGH") == 0 || strcmp(sev, "CRITICAL") == 0 || strcmp(sev, "FATAL") == 0) {
            if (allowed(allow, id, sev))
                continue;
            nbad++;
            list_add(bad, sizeof(bad), id, sev, what != NULL ? what : "");
        } else if (strcmp(sev, "LOW") == 0 || strcmp(sev, "MEDIUM") == 0) {
            list_add(notes, sizeof(notes), id, sev, NULL);
        } else if (strcmp(sev, "WARN") == 0 || strcmp(sev, "DEBUG") == 0) {
            list_add(unsure, sizeof(unsure), id, sev, what != NULL ? what : "");
        }
    }
    cr_expect_eq(nbad, 0, "testssl: %zu finding(s) of severity HIGH/CRITICAL/FATAL not in %s:%s",
                 nbad, ALLOWED_FILE, bad);
    figure("testssl -p -s -f -U: %zu findings in %lld s; LOW/MEDIUM:%s; WARN/DEBUG (checks "
           "testssl could not complete):%s",
           json_array_size(doc), took / 1000, notes[0] != '\0' ? notes : " none",
           unsure[0] != '\0' ? unsure : " none");

    /* the specific checks: each present, each with the expected outcome */
    for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        json_t *f = finding(doc, expected[i].id);
        const char *what = json_string_value(json_object_get(f, "finding"));

        cr_expect_not_null(f, "testssl did not report %s", expected[i].id);
        if (f != NULL)
            cr_expect(what != NULL &&
                          strncmp(what, expected[i].prefix, strlen(expected[i].prefix)) == 0,
                      "testssl %s: \"%s\", expected \"%s...\"", expected[i].id,
                      what != NULL ? what : "(none)", expected[i].prefix);
    }
    json_decref(doc);
    free(allow);
}

/* --- stalled connections -------------------------------------------------------------------- */

#define STALL_RAW 100     /* TCP connections that send nothing */
#define STALL_PARTIAL 100 /* ... that send the first 11 bytes of a ClientHello */
#define STALL_TLS 40      /* TLS (http/1.1) connections that send no request */
#define STALL_H2 40       /* TLS (h2) connections that send no preface */
#define STALL_ALL (STALL_RAW + STALL_PARTIAL + STALL_TLS + STALL_H2)

static int tcp_open(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1, "socket: %s", strerror(errno));
    sin.sin_port = htons((uint16_t)w.proxy_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

/* Reads and drops what is there; 1 when the peer has closed (EOF or reset), else 0. */
static int drained_to_eof(int fd)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return 1;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
    }
}

/* One stalled connection: when it was opened, the last time it was seen open and when its close
 * was seen (the proxy cut it in between), and the timeout that should cut it. */
struct stalled {
    int fd; /* -1 once closed */
    long long opened, seen_open, cut;
    int limit_ms;
};

/*
 * Looks at every open stalled connection (poll, waiting at most wait_ms): a closed one gets its
 * cut time (and its descriptor closed, unless it belongs to a tbt_tls), the others their
 * seen_open time. Called after each connection is opened too, so that the cut time of each is
 * bracketed, however long the test spent elsewhere (a handshake, a probe).
 */
static void stall_sweep(struct stalled *s, int n, int n_raw, int *open_n, int wait_ms)
{
    static struct pollfd pfd[1024];
    static int idx[1024];
    long long now;
    int k, m = 0, i;

    for (i = 0; i < n; i++)
        if (s[i].fd != -1) {
            cr_assert_lt(m, 1024);
            pfd[m] = (struct pollfd){.fd = s[i].fd, .events = POLLIN};
            idx[m++] = i;
        }
    cr_assert_neq(poll(pfd, (nfds_t)m, wait_ms), -1, "poll: %s", strerror(errno));
    now = tbt_now_ms();
    for (k = 0; k < m; k++) {
        struct stalled *c = &s[idx[k]];

        if (pfd[k].revents == 0 || !drained_to_eof(c->fd)) {
            c->seen_open = now;
            continue;
        }
        c->cut = now;
        if (idx[k] < n_raw)
            close(c->fd); /* the TLS ones are closed with their tbt_tls */
        c->fd = -1;
        (*open_n)--;
    }
}

Test(slow_clients, stalled,
     .description = "silent TCP, half a ClientHello, TLS without a request (h1, h2): all cut "
                    "after the handshake / first_request timeout; others served meanwhile")
{
    /* record header (handshake, 0x0200 bytes) + ClientHello header: the rest never comes */
    static const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                            0x00, 0x01, 0xfc, 0x03, 0x03};
    static struct tbt_tls tls[STALL_TLS + STALL_H2];
    static struct stalled s[STALL_ALL];
    struct tbt_world_opts o = {.config_file = 1, .extra_config = STALL_CONFIG, .admin = 1};
    const int n_raw = STALL_RAW + STALL_PARTIAL;
    long long deadline = 0, took[2][2] = {{-1, 0}, {-1, 0}}, lag_max = 0;
    int open_n = 0, early = 0, late = 0, i;
    char early_s[256] = "", late_s[256] = "";

    for (i = 0; i < STALL_ALL; i++)
        s[i].fd = -1;
    heavy_lock();
    cr_assert_gt(raise_nofile(), STALL_ALL + 64);
    tbt_world_start(&w, &o);
    /* the TLS ones first (their handshakes take the time), then the raw ones; each connection
     * is looked at again after every open */
    for (i = n_raw; i < STALL_ALL; i++) {
        struct tbt_tls_opts to = {.alpn = i < n_raw + STALL_TLS ? "http/1.1" : "h2"};
        struct tbt_tls *t = &tls[i - n_raw];

        cr_assert_eq(tbt_tls_connect(t, (uint16_t)w.proxy_port, &to), 0, "stalled TLS %d: %s",
                     i - n_raw, t->err);
        s[i] = (struct stalled){.fd = t->fd, .opened = tbt_now_ms(), .limit_ms = STALL_FR_MS};
        s[i].seen_open = s[i].opened;
        open_n++;
        stall_sweep(s + n_raw, i + 1 - n_raw, 0, &open_n, 0);
    }
    for (i = 0; i < n_raw; i++) {
        s[i] = (struct stalled){.fd = tcp_open(), .limit_ms = STALL_HS_MS};
        s[i].opened = s[i].seen_open = tbt_now_ms();
        open_n++;
        if (i >= STALL_RAW)
            cr_assert_eq(send(s[i].fd, partial, sizeof(partial), MSG_NOSIGNAL),
                         (ssize_t)sizeof(partial));
        stall_sweep(s, STALL_ALL, n_raw, &open_n, 0);
    }
    figure("stalled: %d connections open, %.0f on the proxy", STALL_ALL,
           metric("tbproxy_connections_active"));
    expect_served("with stalled connections open");

    for (i = 0; i < STALL_ALL; i++)
        if (s[i].opened + s[i].limit_ms + STALL_SLACK_MS > deadline)
            deadline = s[i].opened + s[i].limit_ms + STALL_SLACK_MS;
    while (open_n > 0 && tbt_now_ms() < deadline)
        stall_sweep(s, STALL_ALL, n_raw, &open_n, 100);
    stall_sweep(s, STALL_ALL, n_raw, &open_n, 0);

    /* each cut happened in (seen_open, cut]: too early or too late only when surely so */
    for (i = 0; i < STALL_ALL; i++) {
        long long *t = took[i < n_raw ? 0 : 1], after = s[i].cut - s[i].opened;
        size_t len;

        if (s[i].fd != -1 || s[i].seen_open - s[i].opened > s[i].limit_ms + STALL_SLACK_MS) {
            len = strlen(late_s);
            if (late++ < 8)
                snprintf(late_s + len, sizeof(late_s) - len, " #%d (%s)", i,
                         s[i].fd != -1 ? "never" : "late");
            continue;
        }
        if (after < s[i].limit_ms - STALL_EARLY_MS) {
            len = strlen(early_s);
            if (early++ < 8)
                snprintf(early_s + len, sizeof(early_s) - len, " #%d after %lld ms", i, after);
        }
        t[0] = t[0] < 0 || after < t[0] ? after : t[0];
        t[1] = after > t[1] ? after : t[1];
        if (s[i].cut - s[i].seen_open > lag_max)
            lag_max = s[i].cut - s[i].seen_open;
    }
    cr_expect_eq(late, 0,
                 "%d of %d stalled connections still open more than %d ms after their timeout "
                 "(handshake %d ms, first_request %d ms):%s",
                 late, STALL_ALL, STALL_SLACK_MS, STALL_HS_MS, STALL_FR_MS, late_s);
    cr_expect_eq(early, 0, "%d stalled connections cut before their timeout:%s", early, early_s);
    figure("stalled: %d silent TCP + %d half ClientHello cut after %lld-%lld ms (handshake "
           "timeout %d ms); %d TLS h1 + %d h2 without a request cut after %lld-%lld ms "
           "(first_request %d ms); seen to within %lld ms",
           STALL_RAW, STALL_PARTIAL, took[0][0], took[0][1], STALL_HS_MS, STALL_TLS, STALL_H2,
           took[1][0], took[1][1], STALL_FR_MS, lag_max);
    for (i = 0; i < n_raw; i++)
        if (s[i].fd != -1)
            close(s[i].fd);
    for (i = 0; i < STALL_TLS + STALL_H2; i++) {
        tls[i].eof = 1;
        tbt_tls_close(&tls[i]);
    }
    expect_served("after the stalled connections");
    cr_expect_eq(settle_connections(), 0, "client connections left on the proxy");
}

/* --- slowhttptest --------------------------------------------------------------------------- */

/* One second of a slowhttptest CSV ("Seconds,Closed,Pending,Connected,Service Available"). */
struct csv_row {
    long sec, closed, pending, connected, available;
};

/* What one attack gave. */
struct attack {
    struct csv_row rows[CSV_MAX_ROWS];
    size_t n_rows;
    int probes, probe_failures;
    long long lat_ms[PROBES_MAX]; /* the probes served, in order */
    int n_lat;
    char probe_error[600]; /* the first failure */
    long rss_max_kib;      /* the proxy's VmRSS, sampled with each probe */
    double active_max;     /* the proxy's client connections (admin /metrics), sampled too */
    double active_low;     /* ... the fewest sampled after that peak, slowhttptest running */
    double accepted;       /* connections the proxy accepted during the attack */
    long cut_header;       /* proxy log: "request header timeout" during the attack */
    long cut_send;         /* proxy log: "send timeout" */
    double cut_handshake;  /* admin /metrics: handshake timeouts */
    int none_left;         /* slowhttptest stopped early: "No open connections left" */
};

/* Parses the CSV at path into a->rows. Fails the test on a malformed file. */
static void csv_load(const char *path, struct attack *a)
{
    char *text = read_text(path, CSV_MAX_BYTES), *line = text, *next;

    a->n_rows = 0;
    for (; line != NULL && *line != '\0'; line = next) {
        struct csv_row *r = &a->rows[a->n_rows];
        long *f[5] = {&r->sec, &r->closed, &r->pending, &r->connected, &r->available};
        char *p = line;
        int k;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (*line == '\0' || strncmp(line, "Seconds", 7) == 0)
            continue;
        cr_assert_lt(a->n_rows, CSV_MAX_ROWS, "%s: too many rows", path);
        for (k = 0; k < 5; k++) {
            char *end;
            errno = 0;
            *f[k] = strtol(p, &end, 10);
            cr_assert(end != p && errno == 0 && *f[k] >= 0 &&
                          (*end == (k < 4 ? ',' : '\0') || (k == 4 && *end == '\r')),
                      "%s: bad row \"%s\"", path, line);
            p = end + 1;
        }
        a->n_rows++;
    }
    free(text);
    cr_assert_gt(a->n_rows, 1, "%s: no statistics", path);
}

/* One probe of the attack's series, with the proxy's RSS and open connections. */
static void probe_tick(struct attack *a)
{
    char why[600] = "";
    long long ms = probe_once(why, sizeof(why));
    long rss = rss_kib(w.proxy.pid);
    double active = metric("tbproxy_connections_active");

    a->probes++;
    if (active > a->active_max)
        a->active_max = a->active_low = active;
    else if (active >= 0 && active < a->active_low)
        a->active_low = active;
    if (rss > a->rss_max_kib)
        a->rss_max_kib = rss;
    if (ms < 0 || ms > PROBE_MAX_MS) {
        if (a->probe_failures++ == 0) {
            if (ms < 0)
                snprintf(a->probe_error, sizeof(a->probe_error), "%s", why);
            else
                snprintf(a->probe_error, sizeof(a->probe_error), "200 after %lld ms", ms);
        }
        return;
    }
    if (a->n_lat < PROBES_MAX)
        a->lat_ms[a->n_lat++] = ms;
}

/*
 * Runs slowhttptest (mode arguments, conns connections, at most seconds, its probe every
 * SLOW_PROBE_S) against path on the proxy, probing every PROBE_EVERY_MS while it runs; then
 * reads its CSV into *a and counts what the proxy cut meanwhile.
 */
static void attack(const char *name, const char *const *mode, int conns, int seconds,
                   const char *path, struct attack *a)
{
    char url[128], prefix[700], csv[720], c_s[16], l_s[16], err[TBT_PROC_ERRLEN], *log;
    const char *args[48];
    struct tbt_proc p = {0};
    long long deadline;
    size_t n = 0;

    memset(a, 0, sizeof(*a));
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", w.proxy_port, path);
    snprintf(prefix, sizeof(prefix), "%s/%s", w.dir, name);
    snprintf(csv, sizeof(csv), "%s.csv", prefix);
    snprintf(c_s, sizeof(c_s), "%d", conns);
    snprintf(l_s, sizeof(l_s), "%d", seconds);
    while (*mode != NULL && n < 30)
        args[n++] = *mode++;
    args[n++] = "-c", args[n++] = c_s, args[n++] = "-l", args[n++] = l_s;
    args[n++] = "-p", args[n++] = SLOW_PROBE_S, args[n++] = "-g", args[n++] = "-o";
    args[n++] = prefix, args[n++] = "-u", args[n++] = url, args[n] = NULL;
    a->accepted = metric_must("tbproxy_connections_accepted_total");
    a->cut_handshake = metric_must(HS_TIMEOUTS);
    a->cut_header = log_count("request header timeout");
    a->cut_send = log_count(": send timeout: ");
    cr_assert_eq(tbt_proc_start(&p, "slowhttptest", args, w.dir, name, err, sizeof(err)), 0, "%s",
                 err);
    deadline = tbt_now_ms() + (seconds + 30) * 1000LL;
    while (tbt_proc_alive(&p)) {
        long long next = tbt_now_ms() + PROBE_EVERY_MS;

        if (tbt_now_ms() > deadline) {
            tbt_proc_stop(&p);
            cr_assert_fail("%s: slowhttptest still running after %d s", name, seconds + 30);
        }
        probe_tick(a);
        while (tbt_now_ms() < next && tbt_proc_alive(&p))
            usleep(50 * 1000);
    }
    /* what the proxy did while the attack ran: slowhttptest's connections close when it exits,
     * so whatever the proxy cut is counted by now */
    a->accepted = metric_must("tbproxy_connections_accepted_total") - a->accepted;
    a->cut_handshake = metric_must(HS_TIMEOUTS) - a->cut_handshake;
    a->cut_header = log_count("request header timeout") - a->cut_header;
    a->cut_send = log_count(": send timeout: ") - a->cut_send;
    log = tbt_proc_log(&p, 0);
    cr_assert_not_null(log);
    cr_assert_eq(p.status, 0, "%s: slowhttptest exited %d: %s", name, p.status,
                 strlen(log) > 2000 ? log + strlen(log) - 2000 : log);
    a->none_left = strstr(log, "No open connections left") != NULL;
    free(log);
    csv_load(csv, a);
}

static int cmp_ll(const void *x, const void *y)
{
    long long a = *(const long long *)x, b = *(const long long *)y;

    return (a > b) - (a < b);
}

/* The q-quantile (0..1) of the served probes' latencies, or -1 when none was served. */
static long long latency_q(const struct attack *a, double q)
{
    static long long sorted[PROBES_MAX];
    int i;

    if (a->n_lat == 0)
        return -1;
    memcpy(sorted, a->lat_ms, (size_t)a->n_lat * sizeof(sorted[0]));
    qsort(sorted, (size_t)a->n_lat, sizeof(sorted[0]), cmp_ll);
    i = (int)(q * (a->n_lat - 1) + 0.5);
    return sorted[i];
}

/*
 * What every attack must show:
 * - it reached the proxy: the proxy accepted at least conns connections meanwhile;
 * - the proxy cut at least CUT_SHARE of them itself, by a timeout, before the attack's time
 *   was up (its log's header and send timeouts, its handshake-timeout counter), and the attack
 *   saw them go: when csv_sees_cuts, slowhttptest stopped before its time because it had no
 *   connection left ("No open connections left"), or its "Connected" column fell from its peak
 *   to at most 1 - CUT_SHARE of conns before the time was up (slowloris connections are never
 *   closed by the attacker); otherwise (a slow reader never reads far enough to see the close)
 *   the proxy's open client connections, sampled every second while slowhttptest runs, fall
 *   from their peak to at most that many;
 * - the service stayed available: slowhttptest's CSV says so every second (its probe answered
 *   within SLOW_PROBE_S), every one of our probes got 200 within PROBE_MAX_MS;
 * - the proxy lives and afterwards holds no client connection.
 */
static void judge(const char *name, const struct attack *a, int conns, int seconds,
                  int csv_sees_cuts)
{
    long closed_max = 0, cut_at = -1, conn_max = 0;
    double cuts = (double)a->cut_header + (double)a->cut_send + a->cut_handshake;
    size_t i, peak = 0, down = 0;
    char down_s[512] = "", cut_s[32] = "never";

    for (i = 0; i < a->n_rows; i++) {
        const struct csv_row *r = &a->rows[i];

        if (r->closed > closed_max)
            closed_max = r->closed;
        if (r->connected > conn_max) {
            conn_max = r->connected;
            peak = i;
        }
        if (r->available == 0) {
            size_t len = strlen(down_s);
            down++;
            snprintf(down_s + len, sizeof(down_s) - len, " %ld", r->sec);
        }
    }
    for (i = peak; i < a->n_rows && cut_at < 0; i++)
        if (a->rows[i].connected <= (long)((1 - CUT_SHARE) * conns))
            cut_at = a->rows[i].sec;
    if (cut_at >= 0)
        snprintf(cut_s, sizeof(cut_s), "at %ld s", cut_at);
    figure("%s: %d attack connections for %ld s; the proxy accepted %.0f, cut %.0f (%.0f%%: "
           "%ld header timeouts, %ld send timeouts, %.0f handshake timeouts), held at most %.0f "
           "open, down to %.0f while it ran; slowhttptest: at most %ld open, %ld seen closed, "
           "open ones down to %.0f%% %s, %s; service available %zu of %zu s (its probe every %s "
           "s); Token Binding probes %d, failed %d, latency median %lld ms, 95%% %lld ms, max "
           "%lld ms; proxy RSS max %ld KiB",
           name, conns, a->n_rows > 0 ? a->rows[a->n_rows - 1].sec : 0L, a->accepted, cuts,
           100 * cuts / conns, a->cut_header, a->cut_send, a->cut_handshake, a->active_max,
           a->active_low, conn_max, closed_max, (1 - CUT_SHARE) * 100, cut_s,
           a->none_left ? "stopped early: none left open" : "ran its time", a->n_rows - down,
           a->n_rows, SLOW_PROBE_S, a->probes, a->probe_failures, latency_q(a, 0.5),
           latency_q(a, 0.95), latency_q(a, 1), a->rss_max_kib);
    cr_expect_geq(a->accepted, conns, "%s: the proxy accepted only %.0f of %d attack connections",
                  name, a->accepted, conns);
    cr_expect_geq(cuts, CUT_SHARE * conns,
                  "%s: the proxy cut only %.0f of %d attack connections by a timeout (%ld header, "
                  "%ld send, %.0f handshake); proxy log: %s",
                  name, cuts, conns, a->cut_header, a->cut_send, a->cut_handshake,
                  tbt_world_proxy_log(&w));
    if (csv_sees_cuts)
        cr_expect(conn_max > 0 && (a->none_left || (cut_at >= 0 && cut_at < seconds)),
                  "%s: slowhttptest still had more than %.0f%% of its %d connections open at the "
                  "end (%ld open at most, %ld seen closed); proxy log: %s",
                  name, (1 - CUT_SHARE) * 100, conns, conn_max, closed_max,
                  tbt_world_proxy_log(&w));
    else
        cr_expect_leq(a->active_low, (1 - CUT_SHARE) * conns,
                      "%s: the proxy's open client connections never fell below %.0f during the "
                      "attack (of %d, at most %.0f at once); proxy log: %s",
                      name, a->active_low, conns, a->active_max, tbt_world_proxy_log(&w));
    cr_expect_eq(down, 0, "%s: slowhttptest found the service unavailable at second(s)%s", name,
                 down_s);
    cr_expect_geq(a->probes, 3, "%s: only %d probes", name, a->probes);
    cr_expect_eq(a->probe_failures, 0,
                 "%s: %d of %d probes failed or took over %d ms (first: %s); proxy log: %s", name,
                 a->probe_failures, a->probes, PROBE_MAX_MS, a->probe_error,
                 tbt_world_proxy_log(&w));
    cr_assert(tbt_proc_alive(&w.proxy), "%s: the proxy died: %s", name, tbt_world_proxy_log(&w));
    expect_served("after the attack");
    cr_expect_eq(settle_connections(), 0, "%s: client connections left on the proxy %d ms after",
                 name, SETTLE_MS);
}

static struct attack result; /* large: not on the stack */

Test(slow_clients, slowloris,
     .description = "slowhttptest -H (a header line a second): connections cut by header_read, "
                    "service available throughout")
{
    static const char *const mode[] = {"-H", "-i", "1", "-r", "100", "-x", "24", NULL};
    struct tbt_world_opts o = {.config_file = 1, .extra_config = ATTACK_CONFIG, .admin = 1};
    int conns = 400, seconds = 20;
    long nofile;

    need_program("slowhttptest", "slowhttptest");
    heavy_lock();
    nofile = raise_nofile();
    if (conns > (nofile - 200) / 2)
        conns = (int)((nofile - 200) / 2);
    cr_assert_geq(conns, 100, "descriptor limit %ld too low for the attack", nofile);
    tbt_world_start(&w, &o);
    expect_served("before the attack");
    attack("slowloris", mode, conns, seconds, "/echo", &result);
    judge("slowloris", &result, conns, seconds, 1);
}

Test(slow_clients, slow_read,
     .description = "slowhttptest -X (tiny window, a read every 5 s): connections cut by "
                    "timeouts.send, service available throughout")
{
    static const char *const mode[] = {"-X", "-r", "25", "-k", "1",  "-n", "5",
                                       "-w", "1",  "-y", "64", "-z", "32", NULL};
    struct tbt_world_opts o = {.config_file = 1, .extra_config = ATTACK_CONFIG, .admin = 1};
    int conns = 200, seconds = 20;
    long nofile;

    need_program("slowhttptest", "slowhttptest");
    heavy_lock();
    nofile = raise_nofile();
    if (conns > (nofile - 200) / 3)
        conns = (int)((nofile - 200) / 3);
    cr_assert_geq(conns, 100, "descriptor limit %ld too low for the attack", nofile);
    tbt_world_start(&w, &o);
    expect_served("before the attack");
    /* 16 MiB: far more than the proxy's output buffer (256 KiB) plus what its kernel send
     * buffer takes for a client whose window stays shut (at most tcp_wmem's maximum, 4 MiB by
     * default; about 1.3 MiB on loopback here), so the proxy always has bytes waiting and its
     * send timeout is what cuts. The origin only produces what the proxy reads. */
    attack("slowread", mode, conns, seconds, "/bytes/16777216", &result);
    judge("slow read", &result, conns, seconds, 0);
}
