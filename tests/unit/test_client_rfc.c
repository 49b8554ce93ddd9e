/*
 * src/client with --tb-version rfc (RFC 8471-8473) against a tiny in-process OpenSSL server that
 * speaks the token_binding extension: tbc_fetch offers the extension (and plain ALPN ids), signs
 * Sec-Token-Binding over the EKM, follows Include-Referred-Token-Binding-ID with a referred
 * binding, and refuses what RFC 8472 says a client must refuse.
 *
 * The server (one thread, 127.0.0.1, sequential connections, HTTP/1.1 with Connection: close)
 * answers the offer with the server side of libtb's codec (tb_ext_server_select), verifies the
 * Sec-Token-Binding header with tb_verify_header over its own EKM and puts the verdict and the
 * IDs in the body. Its misbehaviours (no answer, an answer without Extended Master Secret, key
 * parameters that were not offered) are per test. Bounded: every socket has a receive timeout
 * and the thread stops when the test does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "errors.h"
#include "fetch.h"
#include "pki.h"
#include "proc.h"
#include "tb/tb.h"

enum srv_mode {
    SRV_ANSWER = 0,   /* answer the offer as RFC 8472 says */
    SRV_SILENT = 1,   /* never answer: no Token Binding */
    SRV_NO_EMS = 2,   /* answer, on a connection without Extended Master Secret */
    SRV_WRONG_KP = 3, /* answer with key parameters the client did not offer */
};

static struct srv {
    enum srv_mode mode;
    SSL_CTX *ctx;
    EVP_PKEY *key;
    X509 *cert;
    int lfd, port, stop;
    pthread_t thread;
    int running;
    /* per connection, the server thread only */
    int offered;
    struct tb_ext_params offer, answer;
    uint8_t answer_wire[TB_EXT_MAX_LEN];
    size_t answer_len;
} S;

static char home[512];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void srv_stop(void)
{
    if (S.running) {
        S.stop = 1;
        pthread_join(S.thread, NULL);
        S.running = 0;
    }
    if (S.lfd > 0)
        close(S.lfd);
    SSL_CTX_free(S.ctx);
    EVP_PKEY_free(S.key);
    X509_free(S.cert);
    memset(&S, 0, sizeof(S));
    if (home[0] != '\0')
        nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    home[0] = '\0';
}

TestSuite(client_rfc, .fini = srv_stop, .timeout = 60);

/* --- the server's side of the extension ----------------------------------------------------- */

static int srv_parse_cb(SSL *ssl, unsigned int type, unsigned int context, const unsigned char *in,
                        size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    static const int prefs[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};

    (void)ssl, (void)type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
    if (tb_ext_parse(in, inlen, &S.offer) != 0)
        return 1; /* garbage: no answer */
    S.offered = 1;
    if (tb_ext_server_select(&S.offer, prefs, 3, &S.answer) != 0)
        return 1;
    if (S.mode == SRV_WRONG_KP)
        S.answer.key_params[0] =
            S.answer.key_params[0] == TB_KP_ECDSAP256 ? TB_KP_RSA2048_PSS : TB_KP_ECDSAP256;
    S.answer_len = (size_t)tb_ext_encode(&S.answer, S.answer_wire, sizeof(S.answer_wire));
    return 1;
}

static int srv_add_cb(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
                      size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)ssl, (void)type, (void)x, (void)chainidx, (void)al, (void)arg;
    if (!(context & SSL_EXT_TLS1_2_SERVER_HELLO) || S.mode == SRV_SILENT || S.answer_len == 0)
        return 0;
    *out = S.answer_wire;
    *outlen = S.answer_len;
    return 1;
}

/* --- HTTP ------------------------------------------------------------------------------------ */

/* The value of header `name` (case-insensitive, at a line start) in head, copied to out. */
static int header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = head;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t len;

            while (*v == ' ')
                v++;
            len = strcspn(v, "\r\n");
            if (len >= cap)
                return -1;
            memcpy(out, v, len);
            out[len] = '\0';
            return 0;
        }
    }
    return -1;
}

/* The verdict on the request's Sec-Token-Binding header, as the body says it. */
static void verdict(SSL *ssl, const char *head, char *body, size_t cap)
{
    static char value[TB_MAX_HEADER + 1];
    static struct tb_verified v;
    char pid[TBC_TB_MAX_ID_B64] = "none", rid[TBC_TB_MAX_ID_B64] = "none";
    uint8_t ekm[TB_EKM_LEN];
    struct tb_verifier *ver;
    int rc;

    if (header_value(head, "sec-token-binding", value, sizeof(value)) != 0) {
        snprintf(body, cap, "tb=none draft=%s\n",
                 header_value(head, "token-binding", value, sizeof(value)) == 0 ? "yes" : "no");
        return;
    }
    ver = tb_verifier_new(0);
    if (!S.offered || S.answer_len == 0 || ver == NULL ||
        tb_channel_ekm(ssl, ekm, sizeof(ekm)) != TB_EKM_LEN) {
        snprintf(body, cap, "tb=unexpected\n");
        tb_verifier_free(ver);
        return;
    }
    rc = tb_verify_header(ver, TB_VERSION_RFC, S.answer.key_params[0], value, strlen(value), ekm,
                          sizeof(ekm), &v);
    if (rc == 0) {
        tb_base64url_encode(v.roles.provided->id.p, v.roles.provided->id.len, pid, sizeof(pid));
        if (v.roles.referred != NULL)
            tb_base64url_encode(v.roles.referred->id.p, v.roles.referred->id.len, rid, sizeof(rid));
    }
    snprintf(body, cap, "tb=%s\nprovided=%s\nreferred=%s\n", rc == 0 ? "ok" : tb_strerror(rc), pid,
             rid);
    tb_verifier_free(ver);
}

static void serve_one(int fd)
{
    char head[16384] = "", body[2048], resp[4096], target[256] = "", loc[300];
    SSL *ssl = SSL_new(S.ctx);
    size_t len = 0;
    int n;

    S.offered = 0;
    S.answer_len = 0;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
        goto Exit;
    while (len < sizeof(head) - 1 && strstr(head, "\r\n\r\n") == NULL) {
        if ((n = SSL_read(ssl, head + len, (int)(sizeof(head) - 1 - len))) <= 0)
            goto Exit;
        len += (size_t)n;
        head[len] = '\0';
    }
    sscanf(head, "GET %255s", target);
    if (strncmp(target, "/redirect", 9) == 0) {
        /* to the other name of this server: another origin, its own key */
        snprintf(loc, sizeof(loc), "https://127.0.0.1:%d/echo", S.port);
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\nLocation: %s\r\n%s: true\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     strcmp(target, "/redirect-307") == 0 ? "307 Temporary Redirect" : "302 Found",
                     loc,
                     strcmp(target, "/redirect-draft") == 0 ? "Include-Referer-Token-Binding-ID"
                                                            : "Include-Referred-Token-Binding-ID");
    } else {
        verdict(ssl, head, body, sizeof(body));
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
    }
    SSL_write(ssl, resp, n);
    SSL_shutdown(ssl);
Exit:
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

static void *srv_main(void *arg)
{
    (void)arg;
    while (!S.stop) {
        struct pollfd p = {.fd = S.lfd, .events = POLLIN};
        struct timeval tv = {.tv_sec = 5};
        int fd;

        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((fd = accept(S.lfd, NULL, NULL)) == -1)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        serve_one(fd);
    }
    return NULL;
}

static void srv_start(enum srv_mode mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    char dir[600];

    signal(SIGPIPE, SIG_IGN); /* as tbclient: a peer gone is an error code, not a signal */
    S.mode = mode;
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &S.key), 0);
    S.cert = tbt_pki_cert(S.key, "localhost", NULL, 1, -3600, 86400, NULL, NULL, 0, NULL);
    cr_assert_not_null(S.cert);
    S.ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(S.ctx);
    cr_assert_eq(SSL_CTX_use_certificate(S.ctx, S.cert), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(S.ctx, S.key), 1);
    /* a Token Binding server pins TLS 1.2 (the extension is a TLS 1.2 ServerHello one here) */
    SSL_CTX_set_max_proto_version(S.ctx, TLS1_2_VERSION);
    if (mode == SRV_NO_EMS)
        SSL_CTX_set_options(S.ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    cr_assert_eq(SSL_CTX_add_custom_ext(S.ctx, TB_EXT_TYPE,
                                        SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO,
                                        srv_add_cb, NULL, NULL, srv_parse_cb, NULL),
                 1);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(S.lfd > 0);
    cr_assert_eq(bind(S.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(S.lfd, 16), 0);
    cr_assert_eq(getsockname(S.lfd, (struct sockaddr *)&a, &al), 0);
    S.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&S.thread, NULL, srv_main, NULL), 0);
    S.running = 1;
    cr_assert_eq(tbt_tempdir("tbclient-rfc", home, sizeof(home)), 0);
    snprintf(dir, sizeof(dir), "%s/tb", home);
    cr_assert_eq(setenv("TBCLIENT_HOME", dir, 1), 0);
}

/* --- the client ------------------------------------------------------------------------------ */

struct got {
    char body[4096];
    size_t len;
    int redirects;
    char *verbose; /* -v output */
    size_t vlen;
};

static int on_body(void *ctx, const char *p, size_t n)
{
    struct got *g = ctx;

    if (g->len + n >= sizeof(g->body))
        return TBC_EWRITE;
    memcpy(g->body + g->len, p, n);
    g->len += n;
    g->body[g->len] = '\0';
    return 0;
}

/* GET https://host:port/path with rfc Token Binding of key_type; returns tbc_fetch's result. */
static int fetch(const char *host, const char *path, const char *key_type, struct got *g, char *err,
                 size_t errlen)
{
    struct tbc_fetch_opts o;
    struct tbc_fetch_result *res = calloc(1, sizeof(*res));
    FILE *vf;
    char url[512];
    int rc;

    memset(g, 0, sizeof(*g));
    memset(&o, 0, sizeof(o));
    cr_assert_not_null(res);
    vf = open_memstream(&g->verbose, &g->vlen);
    cr_assert_not_null(vf);
    snprintf(url, sizeof(url), "https://%s:%d%s", host, S.port, path);
    o.url = url;
    o.tb = 1;
    o.tb_version = TB_VERSION_RFC;
    o.key_params = tbc_tb_key_type(TB_VERSION_RFC, key_type);
    cr_assert_geq(o.key_params, 0, "%s", key_type);
    o.tls.insecure = 1;
    o.follow = 1;
    o.max_redirs = 5;
    o.connect_timeout_ms = 10000;
    o.max_time_ms = 20000;
    o.verbose = vf;
    o.cb.on_body = on_body;
    o.ctx = g;
    rc = tbc_fetch(&o, res);
    fclose(vf);
    g->redirects = res->redirects;
    snprintf(err, errlen, "%s", res->err);
    free(res);
    return rc;
}

/* The rest of the line after prefix in text, into out ("" when absent). */
static void line_after(const char *text, const char *prefix, char *out, size_t cap)
{
    const char *p = text != NULL ? strstr(text, prefix) : NULL;
    size_t n;

    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(prefix);
    n = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static void expect_bound(const char *key_type, int kp)
{
    struct got g;
    char err[1024], id[512], want[600];

    srv_start(SRV_ANSWER);
    cr_assert_eq(fetch("localhost", "/echo", key_type, &g, err, sizeof(err)), 0, "%s", err);
    cr_assert(S.offer.major == 1 && S.offer.minor == 0 && S.offer.n == 1, "the offer: 1.0, one");
    cr_assert_eq(S.offer.key_params[0], kp);
    cr_assert_not_null(strstr(g.body, "tb=ok\n"), "%s\n%s", g.body, g.verbose);
    line_after(g.verbose, "* Token Binding provided ID: ", id, sizeof(id));
    cr_assert_neq(id[0], '\0', "%s", g.verbose);
    snprintf(want, sizeof(want), "provided=%s\n", id);
    cr_assert_not_null(strstr(g.body, want), "-v shows the rfc TBID the server got: %s", g.body);
    cr_assert_not_null(strstr(g.body, "referred=none\n"));
    cr_assert_not_null(strstr(g.verbose, "RFC 8471 version 1.0"), "%s", g.verbose);
    cr_assert_not_null(strstr(g.verbose, "> Sec-Token-Binding: ["), "%s", g.verbose);
    cr_assert_null(strstr(g.verbose, "_tb_"), "no draft ALPN ids: %s", g.verbose);
    free(g.verbose);
}

Test(client_rfc, ecdsap256_signed_over_the_ekm)
{
    expect_bound("ecdsap256", TB_KP_ECDSAP256);
}

Test(client_rfc, p256_means_ecdsap256)
{
    expect_bound("p256", TB_KP_ECDSAP256);
}

Test(client_rfc, rsa2048_means_pss)
{
    expect_bound("rsa2048", TB_KP_RSA2048_PSS);
}

Test(client_rfc, rsa2048_pkcs1_5)
{
    expect_bound("rsa2048_pkcs1.5", TB_KP_RSA2048_PKCS1);
}

/* One RSA key per origin for both paddings: the second run loads the first's file. */
Test(client_rfc, rsa_paddings_share_the_origin_key)
{
    struct got g;
    char err[1024], key[700];
    struct stat st;

    srv_start(SRV_ANSWER);
    cr_assert_eq(fetch("localhost", "/echo", "rsa2048_pss", &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(strstr(g.verbose, ".rsa2048.pem (created)"), "%s", g.verbose);
    free(g.verbose);
    cr_assert_eq(fetch("localhost", "/echo", "rsa2048_pkcs1.5", &g, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_not_null(strstr(g.verbose, ".rsa2048.pem (loaded)"), "%s", g.verbose);
    cr_assert_not_null(strstr(g.body, "tb=ok\n"), "%s", g.body);
    free(g.verbose);
    snprintf(key, sizeof(key), "%s/tb/keys/localhost:%d.rsa2048.pem", home, S.port);
    cr_assert_eq(stat(key, &st), 0, "%s", key);
    cr_assert_eq(st.st_mode & 0777, 0600);
}

/* A redirect with Include-Referred-Token-Binding-ID: the next origin gets a referred binding
 * for the redirecting origin's key. */
Test(client_rfc, redirect_carries_referred_binding)
{
    struct got g;
    char err[1024], first[512], want[600];

    srv_start(SRV_ANSWER);
    cr_assert_eq(fetch("localhost", "/echo", "ecdsap256", &g, err, sizeof(err)), 0, "%s", err);
    line_after(g.verbose, "* Token Binding provided ID: ", first, sizeof(first));
    free(g.verbose);
    cr_assert_neq(first[0], '\0');
    cr_assert_eq(fetch("localhost", "/redirect", "ecdsap256", &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g.redirects, 1, "%s", g.verbose);
    cr_assert_not_null(strstr(g.body, "tb=ok\n"), "%s\n%s", g.body, g.verbose);
    snprintf(want, sizeof(want), "referred=%s\n", first);
    cr_assert_not_null(strstr(g.body, want), "%s\n%s", g.body, g.verbose);
    snprintf(want, sizeof(want), "provided=%s\n", first);
    cr_assert_null(strstr(g.body, want), "127.0.0.1 is another origin, another key: %s", g.body);
    cr_assert_null(strstr(g.body, "provided=none"));
    cr_assert_not_null(strstr(g.verbose, "* Token Binding referred ID: "), "%s", g.verbose);
    free(g.verbose);
    /* on any redirect (RFC 8473 section 5.3), not only 301 and 302 as the draft */
    cr_assert_eq(fetch("localhost", "/redirect-307", "ecdsap256", &g, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(g.redirects, 1, "%s", g.verbose);
    snprintf(want, sizeof(want), "referred=%s\n", first);
    cr_assert_not_null(strstr(g.body, want), "%s\n%s", g.body, g.verbose);
    free(g.verbose);
    /* the draft header does not ask an rfc client for anything */
    cr_assert_eq(fetch("localhost", "/redirect-draft", "ecdsap256", &g, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_not_null(strstr(g.body, "tb=ok\n"), "%s", g.body);
    cr_assert_not_null(strstr(g.body, "referred=none\n"), "%s", g.body);
    free(g.verbose);
}

Test(client_rfc, no_answer_is_a_plain_connection)
{
    struct got g;
    char err[1024];

    srv_start(SRV_SILENT);
    cr_assert_eq(fetch("localhost", "/echo", "ecdsap256", &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(S.offered, 1, "the offer was made");
    cr_assert_str_eq(g.body, "tb=none draft=no\n");
    cr_assert_not_null(strstr(g.verbose, "did not answer the token_binding extension"), "%s",
                       g.verbose);
    free(g.verbose);
}

/* RFC 8472 section 4: Token Binding without EMS must not be used: the client closes. */
Test(client_rfc, answer_without_ems_is_refused)
{
    struct got g;
    char err[1024];

    srv_start(SRV_NO_EMS);
    cr_assert_eq(fetch("localhost", "/echo", "ecdsap256", &g, err, sizeof(err)), TBC_ETLS, "%s",
                 err);
    cr_assert_not_null(strstr(err, "Extended Master Secret"), "%s", err);
    cr_assert_eq(g.len, 0);
    free(g.verbose);
}

/* Key parameters the client did not offer: the handshake is aborted. */
Test(client_rfc, answer_not_offered_aborts)
{
    struct got g;
    char err[1024];

    srv_start(SRV_WRONG_KP);
    cr_assert_eq(fetch("localhost", "/echo", "ecdsap256", &g, err, sizeof(err)), TBC_ETLS, "%s",
                 err);
    cr_assert_not_null(strstr(err, "TLS handshake failed"), "%s", err);
    free(g.verbose);
}
