/*
 * reload: SIGHUP makes tbproxy load its configuration file again and put it in place without
 * dropping or refusing a connection (issue 7).
 *
 * - under load (HTTP/1.1 and HTTP/2 request loops on kept-alive connections), a reload that moves
 *   the upstream to a second origin and trusts the client's X-Forwarded-For: no request fails,
 *   connections made afterwards get the new configuration (their X-Forwarded-For is kept, the
 *   second origin answers them even once the first one is gone), a connection made before keeps
 *   the old one until it closes;
 * - a bad configuration (a syntax error, a missing certificate, a certificate that is not one, a
 *   new listener whose port is taken) changes nothing: the log says why (file:line for the
 *   syntax), the proxy keeps serving, tbproxy_config_reloads_total{result="failed"} counts it;
 * - certificates: the files replaced and SIGHUP: new handshakes get the new certificate (its
 *   SHA-256 compared), a kept-alive connection made before goes on working, and a session ticket
 *   from before the reload still resumes; quick mode (no file) reads its --cert and --key again;
 * - listeners: one added on reload accepts connections; one removed refuses them afterwards;
 * - 20 reloads in a row under light load: no descriptor is left behind (/proc/PID/fd), and the
 *   sanitizer build's leak check at exit finds nothing;
 * - the log files and the admin server follow the configuration: a new access-log path gets the
 *   next lines, a new admin address answers and the old one refuses; and, without a proxy, the
 *   descriptor moves behind that (logswitch.h: file to file, off and on again, to "-").
 *
 * Each test writes its own configuration (two workers, free ports, the admin server on a free
 * port) beside the world's origin; load runs on threads that only count, every assertion is on
 * the test's thread.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "h2test.h"
#include "logswitch.h"
#include "proc.h"
#include "tlsclient.h"
#include "world.h"

#define RELOAD_WAIT_MS 10000
#define OUTCOME_OK "SIGHUP: reload done"
#define OUTCOME_FAILED "SIGHUP: reload failed"

static struct tbt_world w;
static struct tbt_proc origin_b; /* a second origin, for the tests that move the upstream */

static void fini(void)
{
    tbt_proc_stop(&origin_b);
    tbt_world_teardown(&w);
}

TestSuite(reload, .fini = fini, .timeout = 180);

/* --- the proxy under test --------------------------------------------------------------------- */

/* What a configuration says; write_conf turns it into <dir>/<name>.conf. */
struct setup {
    int port;                  /* the first listener */
    int port2;                 /* a second listener, 0: none */
    int upstream;              /* the origin's port */
    int admin;                 /* the admin server's port, 0: disabled */
    const char *cert;          /* file names in the world's directory: "cert.pem" unless set */
    const char *key;           /* "key.pem" unless set */
    const char *upstream_opts; /* settings inside the upstream's group ("max_idle = 1;") */
    const char *extra;         /* top-level settings appended (trusted_proxies, log, ...) */
    const char *raw;           /* when set, the whole file instead (a broken configuration) */
};

struct proxy {
    struct tbt_proc proc;
    struct setup s;
    char name[64];
    char conf[1024];
    int outcomes; /* reload outcome lines seen so far */
};

static void write_conf(struct proxy *p)
{
    const struct setup *s = &p->s;
    char file[128], second[256] = "", admin[64] = "", *text = NULL;
    int n;

    if (s->port2 > 0)
        snprintf(second, sizeof(second),
                 ",\n           { address = \"127.0.0.1:%d\";\n"
                 "             tls = { cert = \"%s\"; key = \"%s\"; }; }",
                 s->port2, s->cert ? s->cert : "cert.pem", s->key ? s->key : "key.pem");
    if (s->admin > 0)
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", s->admin);
    if (s->raw != NULL)
        n = asprintf(&text, "%s", s->raw);
    else
        n = asprintf(&text,
                     "workers = 2;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "             tls = { cert = \"%s\"; key = \"%s\"; }; }%s );\n"
                     "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; %s }; };\n"
                     "routes = ( { upstream = \"app\"; } );\n"
                     "admin = { listen = \"%s\"; };\n"
                     "%s\n",
                     s->port, s->cert ? s->cert : "cert.pem", s->key ? s->key : "key.pem", second,
                     s->upstream, s->upstream_opts ? s->upstream_opts : "", admin,
                     s->extra ? s->extra : "");
    cr_assert(n > 0 && text != NULL);
    snprintf(file, sizeof(file), "%s.conf", p->name);
    cr_assert_eq(tbt_write_file(w.dir, file, text, (size_t)n), 0);
    free(text);
    snprintf(p->conf, sizeof(p->conf), "%s/%s", w.dir, file);
}

/* Starts `tbproxy -c <conf>` from p->s (port and admin chosen here, upstream: the world's
 * origin unless set) and waits until it serves; retried on fresh ports if it exits first. */
static void proxy_start(struct proxy *p, const char *name)
{
    char err[TBT_PROC_ERRLEN];
    int attempt, rc = -1;

    snprintf(p->name, sizeof(p->name), "%s", name);
    if (p->s.upstream == 0)
        p->s.upstream = w.origin_port;
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        const char *args[] = {"-c", p->conf, NULL};
        tbt_proc_stop(&p->proc);
        p->s.port = tbt_port_free();
        p->s.admin = tbt_port_free();
        cr_assert(p->s.port > 0 && p->s.admin > 0);
        write_conf(p);
        rc = tbt_proc_start(&p->proc, tbt_world_bin(&w, "tbproxy"), args, w.dir, p->name, err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&p->proc, (uint16_t)p->s.port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc != 0 && tbt_proc_alive(&p->proc))
            break;
    }
    if (rc != 0) {
        char *log = tbt_proc_log(&p->proc, 4096);
        cr_assert_fail("%s: %s\n%s", p->name, err, log != NULL ? log : "");
    }
    p->outcomes = 0;
}

static char *proxy_log(const struct proxy *p)
{
    char *log = tbt_proc_log(&p->proc, 0);

    cr_assert_not_null(log);
    return log;
}

static int count_text(const char *text, const char *needle)
{
    int n = 0;

    for (; (text = strstr(text, needle)) != NULL; text++)
        n++;
    return n;
}

/* The offset of the last occurrence of needle in text, or -1. */
static long last_hit(const char *text, const char *needle)
{
    const char *q, *hit = NULL;

    for (q = text; (q = strstr(q, needle)) != NULL; q++)
        hit = q;
    return hit != NULL ? (long)(hit - text) : -1;
}

/* The last line of text containing needle (copied into line), or 0 when there is none. */
static int last_line(const char *text, const char *needle, char *line, size_t cap)
{
    const char *hit = NULL, *q, *b, *e;

    for (q = text; (q = strstr(q, needle)) != NULL; q++)
        hit = q;
    if (hit == NULL)
        return 0;
    for (b = hit; b > text && b[-1] != '\n'; b--)
        ;
    e = strchr(hit, '\n');
    snprintf(line, cap, "%.*s", (int)(e != NULL ? e - b : (long)strlen(b)), b);
    return 1;
}

/*
 * Writes the configuration from p->s, sends SIGHUP and waits for the reload's outcome line
 * (copied into line when not NULL). Returns 1 when it says done, 0 when it says failed; fails
 * the test when neither comes.
 */
static int reload(struct proxy *p, char *line, size_t cap)
{
    long long end = tbt_now_ms() + RELOAD_WAIT_MS;
    char buf[2048];

    write_conf(p);
    cr_assert(tbt_proc_alive(&p->proc), "%s is not running", p->name);
    cr_assert_eq(kill(p->proc.pid, SIGHUP), 0, "kill: %s", strerror(errno));
    for (;;) {
        char *log = proxy_log(p);
        int ok = count_text(log, OUTCOME_OK), failed = count_text(log, OUTCOME_FAILED), last_ok;
        if (ok + failed > p->outcomes) {
            cr_assert_eq(ok + failed, p->outcomes + 1, "more reload outcomes than SIGHUPs:\n%s",
                         log);
            p->outcomes++;
            last_ok = last_hit(log, OUTCOME_OK) > last_hit(log, OUTCOME_FAILED);
            (void)last_line(log, last_ok ? OUTCOME_OK : OUTCOME_FAILED, buf, sizeof(buf));
            if (line != NULL)
                snprintf(line, cap, "%s", buf);
            free(log);
            return last_ok;
        }
        free(log);
        cr_assert(tbt_proc_alive(&p->proc), "%s exited on SIGHUP", p->name);
        cr_assert(tbt_now_ms() < end, "no reload outcome in the log:\n%s", tbt_world_proxy_log(&w));
        usleep(10 * 1000);
    }
}

/* --- clients ---------------------------------------------------------------------------------- */

/* One HTTP/1.1 request on c (connected first when it is not), the response in r. 0 or -1. */
static int h1_get(struct tbt_tls *c, int port, const char *path, const char *extra_headers,
                  struct tbt_http_response *r)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};
    char req[1024];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", path,
             extra_headers != NULL ? extra_headers : "");
    if (c->fd == -1 && tbt_tls_connect(c, (uint16_t)port, &o) != 0)
        return -1;
    if (tbt_tls_send_str(c, req) != 0)
        return -1;
    return tbt_tls_read_response(c, r, 0, 0);
}

/* A GET on a new connection that must answer 200; closed afterwards. */
static void expect_200(int port, const char *path)
{
    struct tbt_tls c = {.fd = -1};
    struct tbt_http_response r = {0};

    cr_assert_eq(h1_get(&c, port, path, NULL, &r), 0, "port %d %s: %s", port, path, c.err);
    cr_expect_eq(r.status, 200, "port %d %s: %s", port, path, r.head);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
}

/* The X-Forwarded-For the origin got for a request sent with "X-Forwarded-For: 203.0.113.7" on
 * connection c (connected first when it is not), into out. */
static void forwarded_for(struct tbt_tls *c, int port, char *out, size_t cap)
{
    struct tbt_http_response r = {0};
    json_error_t je;
    json_t *doc, *v;

    cr_assert_eq(h1_get(c, port, "/echo", "X-Forwarded-For: 203.0.113.7\r\n", &r), 0, "%s", c->err);
    cr_assert_eq(r.status, 200, "%s", r.head);
    doc = json_loadb((const char *)r.body, r.body_len, 0, &je);
    cr_assert_not_null(doc, "%s", je.text);
    v = json_object_get(json_object_get(doc, "headers"), "x-forwarded-for");
    snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "(none)");
    json_decref(doc);
    tbt_http_response_dispose(&r);
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

/*
 * GET path from the admin server on port (HTTP/1.0: it closes after the response). Returns the
 * status (0 when there is no answer) with the body, malloc'd, in *body when body is not NULL.
 */
static int admin_get(int port, const char *path, char **body)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = 0;
    long long end = tbt_now_ms() + 5000;
    size_t len = 0, cap = 1 << 16;
    char req[256], *buf = malloc(cap);
    const char *sep;

    cr_assert(fd != -1 && buf != NULL);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            ssize_t n;
            if (tbt_now_ms() > end || poll(&pfd, 1, 100) < 0)
                break;
            if (len + 1 >= cap && (buf = realloc(buf, cap *= 2)) == NULL)
                break;
            if (pfd.revents == 0)
                continue;
            if ((n = recv(fd, buf + len, cap - len - 1, 0)) <= 0)
                break;
            len += (size_t)n;
        }
    }
    close(fd);
    cr_assert_not_null(buf);
    buf[len] = '\0';
    if (len > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
        status = atoi(buf + 9);
    if (body != NULL) {
        sep = strstr(buf, "\r\n\r\n");
        *body = strdup(sep != NULL ? sep + 4 : "");
        cr_assert_not_null(*body);
    }
    free(buf);
    return status;
}

/* The value of one sample line ("name{labels} value") of a Prometheus scrape, or -1. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p;

    for (p = text; (p = strstr(p, series)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* --- certificates ----------------------------------------------------------------------------- */

/* A self-signed P-256 certificate for CN localhost, as PEM cert and key files in the world's
 * directory (each written beside its place and renamed over it, as a deployment would), and
 * the SHA-256 of the certificate (DER) in hex. */
static void make_certificate(const char *cert_name, const char *key_name, long serial, char fp[65])
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned char *der = NULL;
    int k, der_len;

    cr_assert(key != NULL && x != NULL);
    name = X509_get_subject_name(x);
    cr_assert(
        X509_set_version(x, 2) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(x), -60) != NULL &&
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL && X509_set_pubkey(x, key) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0) == 1 &&
        X509_set_issuer_name(x, name) == 1 && X509_sign(x, key, EVP_sha256()) != 0);
    for (k = 0; k < 2; k++) {
        BIO *b = BIO_new(BIO_s_mem());
        char tmp[128], from[700], to[700], *data;
        long len;
        cr_assert_not_null(b);
        cr_assert_eq(k == 0 ? PEM_write_bio_X509(b, x)
                            : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL),
                     1);
        len = BIO_get_mem_data(b, &data);
        snprintf(tmp, sizeof(tmp), "%s.new", k == 0 ? cert_name : key_name);
        cr_assert_eq(tbt_write_file(w.dir, tmp, data, (size_t)len), 0);
        snprintf(from, sizeof(from), "%s/%s", w.dir, tmp);
        snprintf(to, sizeof(to), "%s/%s", w.dir, k == 0 ? cert_name : key_name);
        cr_assert_eq(rename(from, to), 0, "%s", strerror(errno));
        BIO_free(b);
    }
    der_len = i2d_X509(x, &der);
    cr_assert_gt(der_len, 0);
    tbt_world_sha256_hex(der, (size_t)der_len, fp);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* The SHA-256 (hex) of the certificate the server presented on c. */
static void peer_fingerprint(struct tbt_tls *c, char fp[65])
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    unsigned char *der = NULL;
    int len;

    cr_assert_not_null(x, "no peer certificate");
    len = i2d_X509(x, &der);
    cr_assert_gt(len, 0);
    tbt_world_sha256_hex(der, (size_t)len, fp);
    OPENSSL_free(der);
    X509_free(x);
}

/* "AB:CD:..." of the first 8 bytes of a hex fingerprint, as tbproxy logs it. */
static void log_fingerprint(const char fp[65], char out[32])
{
    int i;

    for (i = 0; i < 8; i++) {
        out[3 * i] = (char)(fp[2 * i] >= 'a' ? fp[2 * i] - 'a' + 'A' : fp[2 * i]);
        out[3 * i + 1] = (char)(fp[2 * i + 1] >= 'a' ? fp[2 * i + 1] - 'a' + 'A' : fp[2 * i + 1]);
        out[3 * i + 2] = i < 7 ? ':' : '\0';
    }
}

/* --- load ------------------------------------------------------------------------------------- */

#define BODY_LEN 4096
#define BODY_PATH "/bytes/4096"

static atomic_int load_stop;

struct load {
    pthread_t thread;
    int port;
    int pause_ms;   /* between requests: light load */
    atomic_uint ok; /* 200 with the whole body */
    unsigned bad;   /* anything else: a failed connect, a cut or failed response, a closed idle
                       connection (nothing may close one during a reload) */
    char first_bad[256];
};

static void load_bad(struct load *l, const char *what, const char *why)
{
    if (l->bad++ == 0)
        snprintf(l->first_bad, sizeof(l->first_bad), "%s: %.200s", what, why);
}

static void *h1_load(void *arg)
{
    static const char req[] = "GET " BODY_PATH " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tbt_tls_opts o = {.alpn = "http/1.1", .timeout_ms = 10000};
    struct load *l = arg;

    while (!atomic_load(&load_stop)) {
        struct tbt_tls c = {.fd = -1};
        struct tbt_http_response r = {0};
        int k;

        if (tbt_tls_connect(&c, (uint16_t)l->port, &o) != 0) {
            load_bad(l, "h1 connect", c.err);
            tbt_tls_close(&c);
            usleep(50 * 1000);
            continue;
        }
        for (k = 0; k < 40 && !atomic_load(&load_stop); k++) {
            if (tbt_tls_send(&c, req, sizeof(req) - 1) != 0 ||
                tbt_tls_read_response(&c, &r, 0, 0) != 0) {
                load_bad(l, "h1 request", c.err);
                break;
            }
            if (r.status == 200 && r.body_len == BODY_LEN)
                l->ok++;
            else
                load_bad(l, "h1 response", r.head);
            if (l->pause_ms > 0)
                usleep((useconds_t)l->pause_ms * 1000);
        }
        tbt_http_response_dispose(&r);
        tbt_tls_close(&c);
    }
    return NULL;
}

static void *h2_load(void *arg)
{
    struct tbt_h2_opts o = {.alpn = "h2", .timeout_ms = 10000};
    struct load *l = arg;

    while (!atomic_load(&load_stop)) {
        struct tbt_h2 h;
        int k;

        memset(&h, 0, sizeof(h));
        h.tls.fd = -1;
        if (tbt_h2_connect(&h, (uint16_t)l->port, &o) != 0) {
            load_bad(l, "h2 connect", h.err);
            tbt_h2_close(&h);
            usleep(50 * 1000);
            continue;
        }
        for (k = 0; k < 40 && !atomic_load(&load_stop); k++) {
            int32_t ids[4];
            size_t n = 0, i;
            if (h.goaway || h.eof) {
                load_bad(l, "h2 connection", h.goaway ? "GOAWAY" : "closed");
                break;
            }
            while (n < 4) {
                int32_t id = tbt_h2_submit(&h, "GET", BODY_PATH, NULL, NULL, 0);
                if (id < 0)
                    break;
                ids[n++] = id;
            }
            if (n == 0) {
                load_bad(l, "h2 submit", h.err);
                break;
            }
            (void)tbt_h2_run(&h, ids, n, 10000);
            for (i = 0; i < n; i++) {
                const struct tbt_h2_stream *st = tbt_h2_stream(&h, ids[i]);
                if (st != NULL && st->status == 200 && st->end_stream && st->body_total == BODY_LEN)
                    l->ok++;
                else
                    load_bad(l, "h2 stream", st == NULL ? "lost" : h.err);
            }
            if (l->pause_ms > 0)
                usleep((useconds_t)l->pause_ms * 1000);
        }
        tbt_h2_close(&h);
    }
    return NULL;
}

static void load_start(struct load *l, int port, int pause_ms, void *(*fn)(void *))
{
    memset(l, 0, sizeof(*l));
    atomic_init(&l->ok, 0);
    l->port = port;
    l->pause_ms = pause_ms;
    cr_assert_eq(pthread_create(&l->thread, NULL, fn, l), 0);
}

/* Waits until every load has completed `more` requests beyond `base[i]` (base NULL: zero). */
static int load_progress(struct load *l, size_t n, const unsigned *base, unsigned more,
                         int timeout_ms)
{
    long long end = tbt_now_ms() + timeout_ms;
    size_t i;

    for (i = 0; i < n; i++)
        while (atomic_load(&l[i].ok) < (base != NULL ? base[i] : 0) + more)
            if (tbt_now_ms() > end)
                return 0;
            else
                usleep(5 * 1000);
    return 1;
}

/* Stops and joins the loads; every request must have succeeded. Returns the requests done. */
static unsigned load_finish(struct load *l, size_t n, const char *what)
{
    unsigned total = 0;
    size_t i;

    atomic_store(&load_stop, 1);
    for (i = 0; i < n; i++) {
        pthread_join(l[i].thread, NULL);
        cr_expect_eq(l[i].bad, 0, "%s load %zu: %u failed, first: %s", what, i, l[i].bad,
                     l[i].first_bad);
        total += atomic_load(&l[i].ok);
    }
    return total;
}

/* Descriptors open in process pid (/proc/PID/fd), or -1. */
static int count_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Starts the second origin; returns its port. */
static int start_origin_b(void)
{
    char err[TBT_PROC_ERRLEN];
    const char *args[] = {"--listen", "127.0.0.1:0", NULL};
    int port;

    cr_assert_eq(tbt_proc_start(&origin_b, tbt_world_bin(&w, "tborigin"), args, w.dir, "tborigin-b",
                                err, sizeof(err)),
                 0, "%s", err);
    port = tbt_proc_wait_listen_line(&origin_b, "tborigin listening on ",
                                     TBT_WORLD_START_TIMEOUT_MS, err, sizeof(err));
    cr_assert_gt(port, 0, "%s", err);
    return port;
}

/* --- under load ------------------------------------------------------------------------------- */

Test(reload, under_load_new_route_and_settings)
{
    static const char slow_req[] = "GET /slow?ms=1000 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tbt_tls_opts o1 = {.alpn = "http/1.1"};
    struct tbt_h2_opts o2 = {.alpn = "h2"};
    struct load h1[2], h2[2];
    unsigned base1[2], base2[2], i, n1, n2;
    struct tbt_tls old = {.fd = -1}, fresh = {.fd = -1}, slow1 = {.fd = -1};
    struct tbt_http_response r = {0};
    const struct tbt_h2_stream *st;
    char xff[256], line[2048];
    struct proxy p = {0};
    struct tbt_h2 slow2;
    int32_t sid;
    int port_b;

    tbt_world_start(&w, NULL);
    port_b = start_origin_b();
    proxy_start(&p, "under-load");

    /* before: the client's X-Forwarded-For is not trusted */
    forwarded_for(&old, p.s.port, xff, sizeof(xff));
    cr_expect_str_eq(xff, "127.0.0.1");

    atomic_store(&load_stop, 0);
    for (i = 0; i < 2; i++) {
        load_start(&h1[i], p.s.port, 0, h1_load);
        load_start(&h2[i], p.s.port, 0, h2_load);
    }
    cr_assert(load_progress(h1, 2, NULL, 20, 20000), "the h1 load does not run");
    cr_assert(load_progress(h2, 2, NULL, 20, 20000), "the h2 load does not run");

    /* a slow request of each protocol in flight across the reload, on the old origin */
    cr_assert_eq(tbt_tls_connect(&slow1, (uint16_t)p.s.port, &o1), 0, "%s", slow1.err);
    cr_assert_eq(tbt_tls_send_str(&slow1, slow_req), 0, "%s", slow1.err);
    memset(&slow2, 0, sizeof(slow2));
    cr_assert_eq(tbt_h2_connect(&slow2, (uint16_t)p.s.port, &o2), 0, "%s", slow2.err);
    sid = tbt_h2_submit(&slow2, "GET", "/slow?ms=1000", NULL, NULL, 0);
    cr_assert_gt(sid, 0, "%s", slow2.err);
    (void)tbt_h2_run(&slow2, &sid, 1, 200); /* sent; the answer takes a second */

    /* the upstream moves to the second origin; 127.0.0.1 becomes a trusted proxy */
    p.s.upstream = port_b;
    p.s.extra = "trusted_proxies = [ \"127.0.0.1/32\" ];";
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    cr_expect(strstr(line, p.conf) != NULL, "%s", line);

    /* the slow ones finish on the old configuration's pools */
    cr_assert_eq(tbt_tls_read_response(&slow1, &r, 0, 0), 0, "slow h1: %s", slow1.err);
    cr_expect_eq(r.status, 200, "%s", r.head);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&slow1);
    (void)tbt_h2_run(&slow2, &sid, 1, 5000);
    st = tbt_h2_stream(&slow2, sid);
    cr_assert_not_null(st);
    cr_expect(st->status == 200 && st->end_stream, "slow h2: %d %s", st->status, slow2.err);
    tbt_h2_close(&slow2);

    /* the load goes on through and after it */
    for (i = 0; i < 2; i++) {
        base1[i] = atomic_load(&h1[i].ok);
        base2[i] = atomic_load(&h2[i].ok);
    }
    cr_expect(load_progress(h1, 2, base1, 50, 20000), "the h1 load stalled after the reload");
    cr_expect(load_progress(h2, 2, base2, 50, 20000), "the h2 load stalled after the reload");

    /* a connection made now has the new settings; the one from before keeps the old ones */
    forwarded_for(&fresh, p.s.port, xff, sizeof(xff));
    cr_expect_str_eq(xff, "203.0.113.7, 127.0.0.1");
    forwarded_for(&old, p.s.port, xff, sizeof(xff));
    cr_expect_str_eq(xff, "127.0.0.1", "the old connection got the new configuration");

    n1 = load_finish(h1, 2, "h1");
    n2 = load_finish(h2, 2, "h2");
    cr_log_info("reload under load: %u h1 and %u h2 requests, none failed", n1, n2);

    /* the first origin gone: new requests are the second origin's (the new pools) */
    tbt_tls_close(&old);
    tbt_proc_stop(&w.origin);
    forwarded_for(&fresh, p.s.port, xff, sizeof(xff));
    expect_200(p.s.port, "/echo");
    tbt_tls_close(&fresh);

    tbt_proc_stop(&p.proc);
    tbt_world_check_log(&p.proc);
}

/* --- bad configurations ----------------------------------------------------------------------- */

/* A reload that must fail: its log line contains `why` (and `why2` unless NULL); the proxy
 * still serves. */
static void expect_failed(struct proxy *p, const char *why, const char *why2)
{
    char line[2048];

    cr_expect_not(reload(p, line, sizeof(line)), "a bad configuration was taken: %s", line);
    cr_expect(strstr(line, why) != NULL, "\"%s\" not in: %s", why, line);
    cr_expect(why2 == NULL || strstr(line, why2) != NULL, "\"%s\" not in: %s", why2, line);
    expect_200(p->s.port, "/echo");
}

Test(reload, bad_configuration_keeps_the_running_one)
{
    struct tbt_tls kept = {.fd = -1};
    struct tbt_http_response r = {0};
    char want[1200], *body = NULL;
    struct proxy p = {0};
    int taken_fd, taken;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);

    tbt_world_start(&w, NULL);
    proxy_start(&p, "bad");
    cr_assert_eq(h1_get(&kept, p.s.port, "/echo", NULL, &r), 0, "%s", kept.err);

    /* a syntax error: file and line */
    p.s.raw = "workers = 2;\nlisten = ( { address = \"127.0.0.1:1\"; }\nroutes = ;\n";
    snprintf(want, sizeof(want), "%s.conf:3: syntax error", p.name);
    expect_failed(&p, want, NULL);
    p.s.raw = NULL;

    /* a certificate file that is not there: the setting and the file */
    p.s.cert = "missing.pem";
    expect_failed(&p, "listen[0].tls.cert: cannot read \"missing.pem\"", NULL);

    /* a file that is there but holds no certificate: the TLS context cannot be built */
    cr_assert_eq(tbt_write_file(w.dir, "garbage.pem", "not a certificate\n", 18), 0);
    p.s.cert = "garbage.pem";
    expect_failed(&p, "certificate ", "garbage.pem");
    p.s.cert = NULL;

    /* a new listener on a port another socket holds: the reload fails as a whole */
    taken_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(taken_fd, -1);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(taken_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(taken_fd, 4), 0);
    cr_assert_eq(getsockname(taken_fd, (struct sockaddr *)&sin, &sl), 0);
    taken = ntohs(sin.sin_port);
    p.s.port2 = taken;
    snprintf(want, sizeof(want), "listen 127.0.0.1:%d: ", taken);
    expect_failed(&p, want, "in use");
    close(taken_fd);
    p.s.port2 = 0;

    /* the connection from before went on working, and nothing was applied */
    cr_assert_eq(h1_get(&kept, p.s.port, "/echo", NULL, &r), 0, "%s", kept.err);
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&kept);
    cr_expect_eq(admin_get(p.s.admin, "/metrics", &body), 200);
    cr_expect_eq(metric(body, "tbproxy_config_reloads_total{result=\"failed\"}"), 4, "%s", body);
    cr_expect_eq(metric(body, "tbproxy_config_reloads_total{result=\"ok\"}"), 0, "%s", body);
    free(body);

    /* and a good one after all that is taken */
    cr_expect(reload(&p, NULL, 0), "a good configuration was refused");
    expect_200(p.s.port, "/echo");
    cr_expect_eq(admin_get(p.s.admin, "/metrics", &body), 200);
    cr_expect_eq(metric(body, "tbproxy_config_reloads_total{result=\"ok\"}"), 1, "%s", body);
    free(body);

    tbt_proc_stop(&p.proc);
    tbt_world_check_log(&p.proc);
}

/* --- certificates ----------------------------------------------------------------------------- */

Test(reload, new_certificate_for_new_handshakes)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1", .max_version = TLS1_2_VERSION};
    struct tbt_tls kept = {.fd = -1}, c = {.fd = -1}, resumed = {.fd = -1};
    struct tbt_http_response r = {0};
    char fp1[65], fp2[65], seen[65], logged[32], line[2048];
    SSL_SESSION *sess;
    struct proxy p = {0};

    tbt_world_start(&w, NULL);
    make_certificate("site.pem", "site.key", 1, fp1);
    p.s.cert = "site.pem";
    p.s.key = "site.key";
    proxy_start(&p, "cert");

    cr_assert_eq(tbt_tls_connect(&kept, (uint16_t)p.s.port, &o), 0, "%s", kept.err);
    peer_fingerprint(&kept, seen);
    cr_expect_str_eq(seen, fp1);
    cr_assert_eq(h1_get(&kept, p.s.port, "/echo", NULL, &r), 0, "%s", kept.err);
    sess = tbt_tls_session(&kept);
    cr_assert_not_null(sess);

    /* the files replaced (a renewal), then SIGHUP */
    make_certificate("site.pem", "site.key", 2, fp2);
    cr_assert_str_neq(fp1, fp2);
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    log_fingerprint(fp2, logged);
    {
        char *log = proxy_log(&p);
        cr_expect(strstr(log, logged) != NULL, "the new certificate (%s) is not logged:\n%s",
                  logged, log);
        free(log);
    }

    /* a new handshake sees the new certificate */
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)p.s.port, &o), 0, "%s", c.err);
    peer_fingerprint(&c, seen);
    cr_expect_str_eq(seen, fp2, "a handshake after the reload got the old certificate");
    cr_assert_eq(h1_get(&c, p.s.port, "/echo", NULL, &r), 0, "%s", c.err);
    cr_expect_eq(r.status, 200);
    tbt_tls_close(&c);

    /* the connection from before goes on, on the old certificate */
    cr_assert_eq(h1_get(&kept, p.s.port, "/echo", NULL, &r), 0, "%s", kept.err);
    cr_expect_eq(r.status, 200);
    peer_fingerprint(&kept, seen);
    cr_expect_str_eq(seen, fp1);

    /* a ticket issued before the reload still resumes */
    o.resume = sess;
    cr_assert_eq(tbt_tls_connect(&resumed, (uint16_t)p.s.port, &o), 0, "%s", resumed.err);
    cr_expect(resumed.reused, "a session ticket from before the reload was refused");
    cr_assert_eq(h1_get(&resumed, p.s.port, "/echo", NULL, &r), 0, "%s", resumed.err);
    cr_expect_eq(r.status, 200);
    SSL_SESSION_free(sess);

    tbt_http_response_dispose(&r);
    tbt_tls_close(&resumed);
    tbt_tls_close(&kept);
    tbt_proc_stop(&p.proc);
    tbt_world_check_log(&p.proc);
}

/* Quick mode has no file, but its --cert and --key are read again. */
Test(reload, quick_mode_reloads_its_certificate)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};
    struct tbt_tls c = {.fd = -1};
    char fp[65], seen[65];
    long long end = tbt_now_ms() + RELOAD_WAIT_MS;
    char *log = NULL;

    tbt_world_start(&w, NULL); /* quick mode, with the world's cert.pem and key.pem */
    make_certificate("cert.pem", "key.pem", 7, fp);
    cr_assert_eq(kill(w.proxy.pid, SIGHUP), 0);
    for (;;) {
        log = tbt_proc_log(&w.proxy, 0);
        cr_assert_not_null(log);
        if (strstr(log, OUTCOME_OK) != NULL || strstr(log, OUTCOME_FAILED) != NULL)
            break;
        free(log);
        cr_assert(tbt_now_ms() < end, "no reload outcome:\n%s", tbt_world_proxy_log(&w));
        usleep(10 * 1000);
    }
    cr_expect(strstr(log, "SIGHUP: reload done: generation 2 from the command line") != NULL, "%s",
              log);
    free(log);
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &o), 0, "%s", c.err);
    peer_fingerprint(&c, seen);
    cr_expect_str_eq(seen, fp);
    tbt_tls_close(&c);
}

/* --- listeners -------------------------------------------------------------------------------- */

Test(reload, listener_added_then_removed)
{
    struct tbt_tls kept = {.fd = -1};
    struct tbt_http_response r = {0};
    struct proxy p = {0};
    char line[2048];
    long long end;
    int first;

    tbt_world_start(&w, NULL);
    proxy_start(&p, "listeners");
    first = p.s.port;
    cr_assert_eq(h1_get(&kept, first, "/echo", NULL, &r), 0, "%s", kept.err);

    /* added */
    p.s.port2 = tbt_port_free();
    cr_assert_gt(p.s.port2, 0);
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    expect_200(p.s.port2, "/echo");
    expect_200(first, "/echo");

    /* the first one removed: the second (now the only one) keeps serving */
    p.s.port = p.s.port2;
    p.s.port2 = 0;
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    end = tbt_now_ms() + 3000;
    while (tcp_connect_error(first) != ECONNREFUSED && tbt_now_ms() < end)
        usleep(10 * 1000);
    cr_expect_eq(tcp_connect_error(first), ECONNREFUSED, "the removed listener still accepts");
    expect_200(p.s.port, "/echo");

    /* a connection accepted on the removed listener is not cut by its removal */
    cr_assert_eq(h1_get(&kept, first, "/echo", NULL, &r), 0, "%s", kept.err);
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&kept);

    tbt_proc_stop(&p.proc);
    tbt_world_check_log(&p.proc);
}

/* --- many reloads ----------------------------------------------------------------------------- */

/* Waits up to 5 s for the proxy to hold at most `most` descriptors; returns how many it holds. */
static int settle_fds(pid_t pid, int most)
{
    long long end = tbt_now_ms() + 5000;
    int n;

    while ((n = count_fds(pid)) > most && tbt_now_ms() < end)
        usleep(50 * 1000);
    return n;
}

/*
 * 20 reloads under light load, each with a client connection made just before it that stays open
 * (so 20 generations stay in use): the old generations' idle origin connections close at the
 * reload, each old connection still works, and once they close every generation is gone.
 */
Test(reload, twenty_in_a_row_leave_nothing_behind)
{
    struct tbt_tls held[20];
    struct tbt_http_response r = {0};
    struct load h1, h2;
    struct proxy p = {0};
    int i, before, now;
    unsigned base[1];
    char line[2048];

    tbt_world_start(&w, NULL);
    for (i = 0; i < 20; i++)
        held[i].fd = -1;
    p.s.upstream_opts = "max_idle = 1;"; /* at most one idle origin connection per worker */
    proxy_start(&p, "many");
    expect_200(p.s.port, "/echo");
    usleep(300 * 1000);
    before = count_fds(p.proc.pid);
    cr_assert_gt(before, 0);

    atomic_store(&load_stop, 0);
    load_start(&h1, p.s.port, 5, h1_load);
    load_start(&h2, p.s.port, 5, h2_load);
    cr_assert(load_progress(&h1, 1, NULL, 1, 10000), "the h1 load does not run");
    cr_assert(load_progress(&h2, 1, NULL, 1, 10000), "the h2 load does not run");
    for (i = 0; i < 20; i++) {
        cr_assert_eq(h1_get(&held[i], p.s.port, "/echo", NULL, &r), 0, "%s", held[i].err);
        cr_assert_eq(r.status, 200);
        /* alternate between two settings so that every reload changes something */
        p.s.extra = i % 2 == 0 ? "trusted_proxies = [ \"127.0.0.1/32\" ];" : NULL;
        cr_assert(reload(&p, line, sizeof(line)), "reload %d: %s", i, line);
    }
    base[0] = atomic_load(&h1.ok);
    cr_expect(load_progress(&h1, 1, base, 5, 10000), "the load stalled after the reloads");
    (void)load_finish(&h1, 1, "h1");
    (void)load_finish(&h2, 1, "h2");

    /* every held connection still works on its own generation, whose pool keeps nothing idle */
    for (i = 0; i < 20; i++) {
        cr_assert_eq(h1_get(&held[i], p.s.port, "/echo", NULL, &r), 0, "%d: %s", i, held[i].err);
        cr_expect_eq(r.status, 200);
    }
    tbt_http_response_dispose(&r);
    /* the 20 client connections, and at most the current pools' idle origin connections */
    now = settle_fds(p.proc.pid, before + 20 + 2);
    cr_expect_leq(now, before + 20 + 2, "descriptors: %d before, %d with 20 generations held",
                  before, now);

    /* closed: the generations go with them */
    for (i = 0; i < 20; i++)
        tbt_tls_close(&held[i]);
    expect_200(p.s.port, "/echo");
    now = settle_fds(p.proc.pid, before + 2);
    cr_expect_leq(now, before + 2, "descriptors: %d before 20 reloads, %d after", before, now);

    cr_assert_eq(kill(p.proc.pid, SIGTERM), 0);
    cr_expect_eq(tbt_proc_wait_exit(&p.proc, 10000), 0, "exit status");
    tbt_world_check_log(&p.proc); /* LeakSanitizer's report, under SAN=1 */
}

/* --- logs and the admin server ---------------------------------------------------------------- */

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

    while (count_lines(path) < want) {
        if (tbt_now_ms() > end)
            return 0;
        usleep(20 * 1000);
    }
    return 1;
}

Test(reload, logs_and_admin_follow_the_configuration)
{
    char a1[700], a2[700], line[2048];
    struct proxy p = {0};
    int old_admin;
    long long end;

    tbt_world_start(&w, NULL);
    snprintf(a1, sizeof(a1), "%s/access-1.log", w.dir);
    snprintf(a2, sizeof(a2), "%s/access-2.log", w.dir);
    p.s.extra = "log = { access = \"access-1.log\"; };";
    proxy_start(&p, "logs");
    expect_200(p.s.port, "/echo");
    cr_assert(wait_lines(a1, 1, 3000), "access-1.log: %d lines", count_lines(a1));
    cr_expect_eq(admin_get(p.s.admin, "/healthz", NULL), 200);

    /* a new access-log path and a new admin address */
    old_admin = p.s.admin;
    p.s.admin = tbt_port_free();
    cr_assert_gt(p.s.admin, 0);
    p.s.extra = "log = { access = \"access-2.log\"; };";
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    expect_200(p.s.port, "/echo");
    cr_expect(wait_lines(a2, 1, 3000), "access-2.log: %d lines", count_lines(a2));
    cr_expect_eq(count_lines(a1), 1, "the old access log still grows");
    cr_expect_eq(admin_get(p.s.admin, "/healthz", NULL), 200, "the new admin address");
    end = tbt_now_ms() + 3000;
    while (tcp_connect_error(old_admin) != ECONNREFUSED && tbt_now_ms() < end)
        usleep(10 * 1000);
    cr_expect_eq(tcp_connect_error(old_admin), ECONNREFUSED, "the old admin address still answers");

    /* the access log off, then on again at the first path */
    p.s.extra = "log = { access = \"\"; };";
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    expect_200(p.s.port, "/echo");
    p.s.extra = "log = { access = \"access-1.log\"; };";
    cr_assert(reload(&p, line, sizeof(line)), "%s", line);
    expect_200(p.s.port, "/echo");
    cr_expect(wait_lines(a1, 2, 3000), "access-1.log: %d lines", count_lines(a1));
    cr_expect_eq(count_lines(a2), 1, "access-2.log: %d lines", count_lines(a2));

    tbt_proc_stop(&p.proc);
    tbt_world_check_log(&p.proc);
}

/* --- the log switch itself (logswitch.h), without a proxy ------------------------------------- */

/* Writes s to fd and returns the lines of the file at path. */
static int write_and_count(int fd, const char *s, const char *path)
{
    if (fd != -1)
        cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s), "%s", strerror(errno));
    return count_lines(path);
}

/* Switches *fd from old to new (committed); returns the prepare result. */
static int log_switch(int *fd, int *spare, int std_fd, const char *old, const char *new, char *err,
                      size_t errlen)
{
    struct tbp_log_switch ls;

    if (tbp_log_switch_prepare(&ls, fd, spare, std_fd, old, new, "log.access", err, errlen) != 0)
        return -1;
    cr_assert_eq(tbp_log_switch_commit(&ls), 0, "%s", strerror(errno));
    tbp_log_switch_cancel(&ls);
    return 0;
}

Test(reload, log_switch_transitions)
{
    char dir[512], a[700], b[700], bad[700], err[256] = "", buf[16];
    int fd = -1, spare = -1, pipefd[2], number;

    cr_assert_eq(tbt_tempdir("tbp-logswitch-", dir, sizeof(dir)), 0);
    snprintf(a, sizeof(a), "%s/a.log", dir);
    snprintf(b, sizeof(b), "%s/b.log", dir);
    snprintf(bad, sizeof(bad), "%s/no-such-dir/c.log", dir);
    cr_assert_eq(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);

    /* off to a file: a new descriptor */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], "", a, err, sizeof(err)), 0, "%s", err);
    cr_assert_neq(fd, -1);
    number = fd;
    cr_expect_eq(write_and_count(fd, "1\n", a), 1);
    /* the same path: nothing happens */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], a, a, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fd, number);
    /* file to file: the same number, the new file behind it */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], a, b, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fd, number);
    cr_expect_eq(write_and_count(fd, "2\n", b), 1);
    cr_expect_eq(count_lines(a), 1);
    /* off: -1, and the old number now writes nowhere (kept as the spare) */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], b, "", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fd, -1);
    cr_expect_eq(spare, number);
    cr_expect_eq(write_and_count(number, "late\n", b), 1, "a late write reached the old file");
    /* on again: the spare number is used */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], "", a, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fd, number);
    cr_expect_eq(spare, -1);
    cr_expect_eq(write_and_count(fd, "3\n", a), 2);
    /* to "-": the number now writes to the standard stream (a pipe here) */
    cr_assert_eq(log_switch(&fd, &spare, pipefd[1], a, "-", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fd, number);
    cr_expect_eq(write_and_count(fd, "4\n", a), 2);
    cr_expect_eq(read(pipefd[0], buf, sizeof(buf)), 2);
    /* a file that cannot be opened: refused before anything changes */
    cr_expect_eq(log_switch(&fd, &spare, pipefd[1], "-", bad, err, sizeof(err)), -1);
    cr_expect(strstr(err, "log.access: ") != NULL && strstr(err, "c.log") != NULL, "%s", err);
    cr_expect_eq(fd, number);

    close(number);
    close(pipefd[0]);
    close(pipefd[1]);
    tbt_rmdir_all(dir);
}
