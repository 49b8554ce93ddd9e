/*
 * Integration tests of tbproxy: the real daemon between a real TLS client and the demo origin.
 *
 * Every test starts its own world (tests/support/world.h) in a temporary directory: a
 * self-signed P-256 certificate, the demo origin `tborigin` and `tbproxy` on a free port, in
 * quick mode or from a config file written there (for the upstream read timeout of the 504
 * test). The test then drives the proxy with the support client (tests/support/tlsclient.h:
 * OpenSSL + libtb) and asserts on what the client negotiated and received and on what the
 * origin saw: /echo answers the method, path, query, headers (names lower-cased) and body hash
 * of the request it got.
 *
 * The .fini tears the world down (both daemons stopped, their logs checked for sanitizer
 * reports, the directory removed); the support registry and setpriv --pdeathsig make sure no
 * daemon outlives a test however it ends. Every network operation has a 10 s timeout and every
 * test a Criterion timeout.
 *
 * Binaries: $TB_BIN/{tbproxy,tborigin} (make test sets TB_BIN), else build/rel/bin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "proc.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 60
#define HDR_CAP (TB_MAX_HEADER + 1)

#define ALPN_TB_P256 "http/1.1_tb_p256,http/1.1"
#define ALPN_TB_RSA "http/1.1_tb_rsa2048,http/1.1"

/* One test's world (tests/support/world.h). Static so that the .fini finds it after a failed
 * assertion. */
static struct tbt_world w;

/* --- the world ------------------------------------------------------------------------------ */

static void world_start(const struct tbt_world_opts *o)
{
    tbt_world_start(&w, o);
}

static void world_start_default(void)
{
    tbt_world_start(&w, NULL);
}

/* The last part of the proxy's log, for failure messages (a static buffer). */
static const char *proxy_log(void)
{
    return tbt_world_proxy_log(&w);
}

static void teardown(void)
{
    tbt_world_teardown(&w);
}

TestSuite(proxy, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- client helpers ------------------------------------------------------------------------- */

static void connect_opts(struct tbt_tls *c, const struct tbt_tls_opts *o)
{
    int rc = tbt_tls_connect(c, (uint16_t)w.proxy_port, o);

    cr_assert_eq(rc, 0, "connect (ALPN %s): %s; proxy log: %s", o->alpn ? o->alpn : "none", c->err,
                 proxy_log());
}

static void connect_alpn(struct tbt_tls *c, const char *alpn)
{
    struct tbt_tls_opts o = {.alpn = alpn};

    connect_opts(c, &o);
}

/* A connection that negotiated Token Binding with the given ALPN id (and so TLS 1.2 + EMS). */
static void connect_tb(struct tbt_tls *c, const char *offer, const char *expect_id)
{
    connect_alpn(c, offer);
    cr_assert_str_eq(c->alpn, expect_id, "ALPN %s selected for offer %s", c->alpn, offer);
    cr_assert_eq(c->version, TLS1_2_VERSION, "TB connection is not TLS 1.2 (%#x)",
                 (unsigned)c->version);
    cr_assert(c->ems, "TB connection without EMS");
    cr_assert(c->has_tls_unique);
}

static EVP_PKEY *key_new(int kp)
{
    EVP_PKEY *k = NULL;

    cr_assert_eq(tb_key_generate(kp, &k), 0);
    return k;
}

/* The header value for a provided (and optional referred) binding on c's tls_unique. */
static void tb_header(struct tbt_tls *c, int kp, EVP_PKEY *key, int rkp, EVP_PKEY *rkey, char *out)
{
    int n = tbt_tls_tb_header(c, kp, key, rkp, rkey, out, HDR_CAP);

    cr_assert_gt(n, 0, "tbt_tls_tb_header: %s", c->err);
}

static void id_b64(int kp, EVP_PKEY *key, char *out, size_t cap)
{
    cr_assert_gt(tbt_tb_id_b64(kp, key, out, cap), 0);
}

/*
 * Formats a request: method, target, a Host header, `extra` header lines (each ending in CRLF,
 * may be NULL) and, for a body, Content-Length. Returns a malloc'd string.
 */
static char *request(const char *method, const char *target, const char *extra, const char *body)
{
    char *req = NULL;
    int n;

    if (body != NULL)
        n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: %zu\r\n\r\n%s",
                     method, target, extra != NULL ? extra : "", strlen(body), body);
    else
        n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", method, target,
                     extra != NULL ? extra : "");
    cr_assert_gt(n, 0);
    return req;
}

/* A GET of target with extra header lines; "Token-Binding: <tb>\r\n" is added when tb != NULL. */
static char *get_req(const char *target, const char *tb, const char *extra)
{
    char *lines = NULL, *req;

    cr_assert_gt(asprintf(&lines, "%s%s%s%s", tb != NULL ? "Token-Binding: " : "",
                          tb != NULL ? tb : "", tb != NULL ? "\r\n" : "",
                          extra != NULL ? extra : ""),
                 -1);
    req = request("GET", target, lines, NULL);
    free(lines);
    return req;
}

/* Sends req (freed here) and reads one response into r. */
static void exchange(struct tbt_tls *c, char *req, struct tbt_http_response *r)
{
    cr_assert_eq(tbt_tls_send_str(c, req), 0, "send: %s; proxy log: %s", c->err, proxy_log());
    free(req);
    cr_assert_eq(tbt_tls_read_response(c, r, 0, 0), 0, "reading the response: %s; proxy log: %s",
                 c->err, proxy_log());
}

/* The JSON document of an /echo response (200 expected); the caller decrefs it. */
static json_t *echo_doc(const struct tbt_http_response *r)
{
    json_error_t e;
    json_t *doc;

    cr_assert_eq(r->status, 200, "status %d, expected 200: %s %s; proxy log: %s", r->status,
                 r->head, (const char *)r->body, proxy_log());
    doc = json_loadb((const char *)r->body, r->body_len, 0, &e);
    cr_assert(json_is_object(doc), "/echo body is not a JSON object (%s): %s", e.text,
              (const char *)r->body);
    return doc;
}

/* The origin's view of header `name` (lower case): its string value, or NULL if absent. A
 * header that came more than once (an array) fails the test. */
static const char *origin_header(json_t *doc, const char *name)
{
    json_t *h = json_object_get(json_object_get(doc, "headers"), name);

    if (h == NULL)
        return NULL;
    cr_assert(json_is_string(h), "the origin got %s more than once or not as a string: %s", name,
              json_dumps(h, JSON_COMPACT));
    return json_string_value(h);
}

/* The request /echo reported carried the given provided and referred IDs (NULL: absent). */
static void expect_forwarded_ids(json_t *doc, const char *provided, const char *referred)
{
    const char *p = origin_header(doc, "sec-provided-token-binding-id");
    const char *r = origin_header(doc, "sec-referred-token-binding-id");

    if (provided == NULL)
        cr_expect_null(p, "origin got sec-provided-token-binding-id \"%s\"", p);
    else
        cr_expect(p != NULL && strcmp(p, provided) == 0,
                  "origin got sec-provided-token-binding-id \"%s\", expected \"%s\"",
                  p != NULL ? p : "(none)", provided);
    if (referred == NULL)
        cr_expect_null(r, "origin got sec-referred-token-binding-id \"%s\"", r);
    else
        cr_expect(r != NULL && strcmp(r, referred) == 0,
                  "origin got sec-referred-token-binding-id \"%s\", expected \"%s\"",
                  r != NULL ? r : "(none)", referred);
    cr_expect_null(origin_header(doc, "token-binding"), "Token-Binding reached the origin");
}

/* GET /echo with header tb on c: 200, the origin saw exactly these IDs. */
static void expect_ids_via(struct tbt_tls *c, const char *tb, const char *provided,
                           const char *referred)
{
    struct tbt_http_response r = {0};
    json_t *doc;

    exchange(c, get_req("/echo", tb, NULL), &r);
    doc = echo_doc(&r);
    expect_forwarded_ids(doc, provided, referred);
    json_decref(doc);
    tbt_http_response_dispose(&r);
}

/* Sends req (freed here) and expects 400, Connection: close and the connection closed. */
static void expect_rejected(struct tbt_tls *c, char *req, const char *what)
{
    struct tbt_http_response r = {0};
    int closed;

    cr_assert_eq(tbt_tls_send_str(c, req), 0, "%s: send: %s", what, c->err);
    free(req);
    cr_assert_eq(tbt_tls_read_response(c, &r, 0, 0), 0,
                 "%s: no response (expected 400): %s; proxy log: %s", what, c->err, proxy_log());
    cr_expect_eq(r.status, 400, "%s: status %d, expected 400: %s\n%s", what, r.status, r.head,
                 (const char *)r.body);
    cr_expect(tbt_http_header_has(&r, "Connection", "close"), "%s: no Connection: close in %s",
              what, r.head);
    closed = tbt_tls_peer_closed(c, 5000);
    cr_expect_eq(closed, 1, "%s: the proxy did not close the connection after the 400 (%s)", what,
                 closed == 0 ? "still open after 5 s" : "more data came");
    tbt_http_response_dispose(&r);
}

/* --- negotiation ---------------------------------------------------------------------------- */

Test(proxy, tb_negotiated_only_with_ems,
     .description = "a TB ALPN offer without EMS gets http/1.1; TLS 1.3 may be used")
{
    struct tbt_tls c;
    struct tbt_tls_opts no_ems = {.alpn = ALPN_TB_P256, .no_ems = 1};
    struct tbt_tls_opts no_ems12 = {
        .alpn = ALPN_TB_P256, .no_ems = 1, .max_version = TLS1_2_VERSION};
    struct tbt_http_response r = {0};

    world_start_default();
    connect_opts(&c, &no_ems);
    cr_expect_str_eq(c.alpn, "http/1.1", "no EMS offered, yet ALPN %s", c.alpn);
    exchange(&c, get_req("/echo", NULL, NULL), &r);
    cr_expect_eq(r.status, 200, "plain request without EMS: %d", r.status);
    tbt_tls_close(&c);

    /* The same client limited to TLS 1.2: still no Token Binding, and no EMS was negotiated. */
    connect_opts(&c, &no_ems12);
    cr_expect_eq(c.version, TLS1_2_VERSION);
    cr_expect_not(c.ems);
    cr_expect_str_eq(c.alpn, "http/1.1", "no EMS offered (TLS 1.2), yet ALPN %s", c.alpn);
    exchange(&c, get_req("/echo", NULL, NULL), &r);
    cr_expect_eq(r.status, 200, "plain request without EMS over TLS 1.2: %d", r.status);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
}

Test(proxy, tls12_pin_for_tb_offers_tls13_for_plain,
     .description = "TB offers with EMS: TLS 1.2 and a TB id in server order; others TLS 1.3")
{
    static const struct {
        const char *offer;
        const char *alpn;
        int version;
    } cases[] = {
        {ALPN_TB_P256, "http/1.1_tb_p256", TLS1_2_VERSION},
        {ALPN_TB_RSA, "http/1.1_tb_rsa2048", TLS1_2_VERSION},
        /* server preference (p256 first) wins over the client's order */
        {"http/1.1_tb_rsa2048,http/1.1_tb_p256,http/1.1", "http/1.1_tb_p256", TLS1_2_VERSION},
        {"http/1.1", "http/1.1", TLS1_3_VERSION},
        {"h2,http/1.1", "h2", TLS1_3_VERSION},
        /* h2 before http/1.1 among TB ids too (spec default preference) */
        {"http/1.1_tb_p256,h2_tb_p256,h2,http/1.1", "h2_tb_p256", TLS1_2_VERSION},
        {"h2_tb_rsa2048,http/1.1_tb_rsa2048", "h2_tb_rsa2048", TLS1_2_VERSION},
        {NULL, "", TLS1_3_VERSION},
    };
    size_t i;

    world_start_default();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *offer = cases[i].offer != NULL ? cases[i].offer : "(none)";
        struct tbt_tls c;
        struct tbt_http_response r = {0};

        connect_alpn(&c, cases[i].offer);
        cr_expect_str_eq(c.alpn, cases[i].alpn, "offer %s: ALPN \"%s\", expected \"%s\"", offer,
                         c.alpn, cases[i].alpn);
        cr_expect_eq(c.version, cases[i].version, "offer %s: TLS version %#x, expected %#x", offer,
                     (unsigned)c.version, (unsigned)cases[i].version);
        if (cases[i].version == TLS1_3_VERSION && strcmp(cases[i].alpn, "h2") != 0) {
            /* a plain HTTP/1.1 client can use the proxy */
            exchange(&c, get_req("/echo", NULL, NULL), &r);
            cr_expect_eq(r.status, 200, "offer %s: status %d", offer, r.status);
            tbt_http_response_dispose(&r);
        }
        tbt_tls_close(&c);
    }
}

/* --- valid bindings are forwarded ----------------------------------------------------------- */

Test(proxy, provided_id_forwarded,
     .description = "a valid provided binding: the origin sees its ID")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024];

    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    expect_ids_via(&c, tb, id, NULL);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, provided_and_referred_ids_forwarded,
     .description = "provided + referred: the origin sees both IDs (referred RSA and P-256)")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *rsa = key_new(TB_KP_RSA2048_PKCS1);
    EVP_PKEY *k2 = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024], rid[1024], rid2[1024];

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    id_b64(TB_KP_RSA2048_PKCS1, rsa, rid, sizeof(rid));
    id_b64(TB_KP_ECDSAP256, k2, rid2, sizeof(rid2));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, TB_KP_RSA2048_PKCS1, rsa, tb);
    expect_ids_via(&c, tb, id, rid);
    tb_header(&c, TB_KP_ECDSAP256, k, TB_KP_ECDSAP256, k2, tb);
    expect_ids_via(&c, tb, id, rid2);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(rsa);
}

Test(proxy, rsa2048_connection, .description = "an RSA-2048 provided key on an rsa2048 connection")
{
    struct tbt_tls c;
    EVP_PKEY *rsa = key_new(TB_KP_RSA2048_PKCS1);
    char tb[HDR_CAP], id[1024];

    world_start_default();
    connect_tb(&c, ALPN_TB_RSA, "http/1.1_tb_rsa2048");
    tb_header(&c, TB_KP_RSA2048_PKCS1, rsa, 0, NULL, tb);
    id_b64(TB_KP_RSA2048_PKCS1, rsa, id, sizeof(id));
    expect_ids_via(&c, tb, id, NULL);
    tbt_tls_close(&c);
    EVP_PKEY_free(rsa);
}

Test(proxy, repeated_header_keep_alive,
     .description = "the same header on 3 kept-alive requests, then another key's, then the first")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *k2 = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], tb2[HDR_CAP], id[1024], id2[1024];
    int i;

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    id_b64(TB_KP_ECDSAP256, k2, id2, sizeof(id2));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    tb_header(&c, TB_KP_ECDSAP256, k2, 0, NULL, tb2);
    for (i = 0; i < 3; i++)
        expect_ids_via(&c, tb, id, NULL);
    /* a cached header must not hand its IDs to a different header */
    expect_ids_via(&c, tb2, id2, NULL);
    expect_ids_via(&c, tb, id, NULL);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}

/* --- rejected requests: 400 and the connection closed --------------------------------------- */

Test(proxy, missing_header_on_tb_connection)
{
    struct tbt_tls c;

    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    expect_rejected(&c, get_req("/echo", NULL, NULL), "no Token-Binding on a TB connection");
    tbt_tls_close(&c);
}

Test(proxy, missing_header_after_valid_one,
     .description = "a valid request, then one without the header on the same connection")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024];

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_ids_via(&c, tb, id, NULL);
    expect_rejected(&c, get_req("/echo", NULL, NULL), "second request without Token-Binding");
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, header_on_non_tb_connection,
     .description = "Token-Binding on connections that did not negotiate it (TLS 1.2 and 1.3)")
{
    struct tbt_tls c;
    struct tbt_tls_opts plain12 = {.alpn = "http/1.1", .max_version = TLS1_2_VERSION};
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], err[256];
    uint8_t channel[TB_TLS_UNIQUE_LEN] = {1, 2, 3};

    world_start_default();
    /* TLS 1.2 without a TB id: a header correctly signed over this connection's tls_unique */
    connect_opts(&c, &plain12);
    cr_assert_str_eq(c.alpn, "http/1.1");
    cr_assert_eq(c.version, TLS1_2_VERSION);
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_rejected(&c, get_req("/echo", tb, NULL), "TB header on a plain TLS 1.2 connection");
    tbt_tls_close(&c);

    /* TLS 1.3 (no tls_unique at all) */
    connect_alpn(&c, "http/1.1");
    cr_assert_eq(c.version, TLS1_3_VERSION);
    cr_assert_gt(tbt_tb_header(TB_KP_ECDSAP256, k, 0, NULL, channel, sizeof(channel), tb,
                               sizeof(tb), err, sizeof(err)),
                 0, "%s", err);
    expect_rejected(&c, get_req("/echo", tb, NULL), "TB header on a TLS 1.3 connection");
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, bad_signature, .description = "a binding signed over another tls_unique")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], err[256];
    uint8_t wrong[TB_TLS_UNIQUE_LEN];

    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    memcpy(wrong, c.tls_unique, sizeof(wrong));
    wrong[TB_TLS_UNIQUE_LEN - 1] ^= 0x01;
    cr_assert_gt(tbt_tb_header(TB_KP_ECDSAP256, k, 0, NULL, wrong, sizeof(wrong), tb, sizeof(tb),
                               err, sizeof(err)),
                 0, "%s", err);
    expect_rejected(&c, get_req("/echo", tb, NULL), "signature over a wrong tls_unique");
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, bad_referred_signature,
     .description = "a valid provided binding with a referred one signed over another channel")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *r = key_new(TB_KP_ECDSAP256);
    struct tb_builder *b = malloc(sizeof(*b));
    uint8_t wrong[TB_TLS_UNIQUE_LEN];
    char tb[HDR_CAP];

    cr_assert_not_null(b);
    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    memcpy(wrong, c.tls_unique, sizeof(wrong));
    wrong[0] ^= 0x80;
    tb_builder_init(b, TB_VERSION_DRAFT);
    cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, k, c.tls_unique,
                                       sizeof(c.tls_unique)),
                 0);
    cr_assert_eq(
        tb_builder_add_signed(b, TB_TYPE_REFERRED, TB_KP_ECDSAP256, r, wrong, sizeof(wrong)), 0);
    cr_assert_gt(tb_builder_header(b, tb, sizeof(tb)), 0);
    expect_rejected(&c, get_req("/echo", tb, NULL), "referred signature over a wrong tls_unique");
    tbt_tls_close(&c);
    free(b);
    EVP_PKEY_free(k);
    EVP_PKEY_free(r);
}

Test(proxy, replay_on_another_connection,
     .description = "a header valid on one connection is rejected on another")
{
    struct tbt_tls a, b;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024];

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&a, ALPN_TB_P256, "http/1.1_tb_p256");
    connect_tb(&b, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&a, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_ids_via(&a, tb, id, NULL);
    expect_rejected(&b, get_req("/echo", tb, NULL), "header replayed on another connection");
    expect_ids_via(&a, tb, id, NULL); /* its own connection is unaffected */
    tbt_tls_close(&b);
    tbt_tls_close(&a);
    EVP_PKEY_free(k);
}

Test(proxy, key_params_mismatch,
     .description = "an RSA provided key on a p256 connection, a P-256 one on an rsa2048 one")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *rsa = key_new(TB_KP_RSA2048_PKCS1);
    char tb[HDR_CAP];

    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_RSA2048_PKCS1, rsa, 0, NULL, tb);
    expect_rejected(&c, get_req("/echo", tb, NULL), "rsa2048 key on a p256 connection");
    tbt_tls_close(&c);

    connect_tb(&c, ALPN_TB_RSA, "http/1.1_tb_rsa2048");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_rejected(&c, get_req("/echo", tb, NULL), "p256 key on an rsa2048 connection");
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
    EVP_PKEY_free(rsa);
}

Test(proxy, malformed_base64, .description = "header values that are not base64url of a message")
{
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    const char *fixed[] = {
        "!!!!",     /* outside the alphabet */
        "AAA",      /* decodes, but not a message */
        "A",        /* a length no encoding has */
        "AAAA====", /* wrong padding */
    };
    size_t i;

    world_start_default();
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]) + 3; i++) {
        struct tbt_tls c;
        char tb[HDR_CAP], what[128];
        size_t n;

        connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
        if (i < sizeof(fixed) / sizeof(fixed[0])) {
            snprintf(tb, sizeof(tb), "%s", fixed[i]);
        } else {
            tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
            n = strlen(tb);
            if (i == sizeof(fixed) / sizeof(fixed[0]))
                tb[n / 2] = '+'; /* base64, not base64url */
            else if (i == sizeof(fixed) / sizeof(fixed[0]) + 1)
                tb[n / 2] = '/';
            else
                snprintf(tb + n, sizeof(tb) - n, "%s", "*"); /* trailing garbage */
        }
        snprintf(what, sizeof(what), "malformed Token-Binding \"%.40s%s\"", tb,
                 strlen(tb) > 40 ? "..." : "");
        expect_rejected(&c, get_req("/echo", tb, NULL), what);
        tbt_tls_close(&c);
    }
    EVP_PKEY_free(k);
}

Test(proxy, two_token_binding_headers, .description = "more than one Token-Binding header: 400")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], *extra = NULL;

    world_start_default();
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    cr_assert_gt(asprintf(&extra, "Token-Binding: %s\r\n", tb), 0);
    expect_rejected(&c, get_req("/echo", tb, extra), "two Token-Binding headers");
    free(extra);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, message_rules, .description = "no provided binding, two provided, oversized: 400")
{
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *k2 = key_new(TB_KP_ECDSAP256);
    struct tb_builder *b = malloc(sizeof(*b));
    char *big = malloc(TB_MAX_HEADER + 64);
    int i;

    cr_assert(b != NULL && big != NULL);
    memset(big, 'A', TB_MAX_HEADER + 8);
    big[TB_MAX_HEADER + 8] = '\0';
    world_start_default();
    for (i = 0; i < 3; i++) {
        static const char *const what[] = {"a referred binding only", "two provided bindings",
                                           "a header over the size bound"};
        struct tbt_tls c;
        char tb[HDR_CAP];

        connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
        tb_builder_init(b, TB_VERSION_DRAFT);
        cr_assert_eq(tb_builder_add_signed(b, i == 0 ? TB_TYPE_REFERRED : TB_TYPE_PROVIDED,
                                           TB_KP_ECDSAP256, k, c.tls_unique, sizeof(c.tls_unique)),
                     0);
        if (i == 1)
            cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, k2,
                                               c.tls_unique, sizeof(c.tls_unique)),
                         0);
        cr_assert_gt(tb_builder_header(b, tb, sizeof(tb)), 0);
        expect_rejected(&c, get_req("/echo", i == 2 ? big : tb, NULL), what[i]);
        tbt_tls_close(&c);
    }
    free(big);
    free(b);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}

Test(proxy, pipelining_stops_at_rejected,
     .description = "pipelined valid, invalid, valid TB requests: 200, 400, then closed")
{
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024], *reqs = NULL, *x[3];
    json_t *doc;
    int i;

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    x[0] = get_req("/echo?n=1", tb, NULL);
    x[1] = get_req("/echo?n=2", NULL, NULL); /* no Token-Binding */
    x[2] = get_req("/echo?n=3", tb, NULL);
    cr_assert_gt(asprintf(&reqs, "%s%s%s", x[0], x[1], x[2]), 0);
    for (i = 0; i < 3; i++)
        free(x[i]);
    cr_assert_eq(tbt_tls_send_str(&c, reqs), 0, "%s", c.err);
    free(reqs);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "response 1: %s", c.err);
    doc = echo_doc(&r);
    expect_forwarded_ids(doc, id, NULL);
    json_decref(doc);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "response 2: %s", c.err);
    cr_expect_eq(r.status, 400, "response 2: status %d, expected 400", r.status);
    cr_expect(tbt_http_header_has(&r, "Connection", "close"),
              "response 2 without Connection: close");
    cr_expect_eq(tbt_tls_peer_closed(&c, 5000), 1,
                 "the connection went on after the 400 (a third response or still open)");
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

/* --- spoofed headers ------------------------------------------------------------------------ */

#define SPOOFED                                                                                    \
    "Sec-Provided-Token-Binding-ID: c3Bvb2ZlZA\r\n"                                                \
    "sec-referred-token-binding-id: c3Bvb2ZlZA\r\n"                                                \
    "SEC-OTHER-TOKEN-BINDING-ID: 02.c3Bvb2ZlZA\r\n"                                                \
    "Sec-Token-Binding-Context: spoofed\r\n"                                                       \
    "Sec-Token-Binding: c3Bvb2ZlZA\r\n"                                                            \
    "sEc-PrOvIdEd-ToKeN-bInDiNg-Id: c3Bvb2ZlZDI\r\n"

static void expect_no_spoofed(json_t *doc)
{
    static const char *const names[] = {"sec-other-token-binding-id", "sec-token-binding-context",
                                        "sec-token-binding", "token-binding"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *h = json_object_get(json_object_get(doc, "headers"), names[i]);

        cr_expect_null(h, "the origin got %s: %s", names[i], json_dumps(h, JSON_ENCODE_ANY));
    }
}

Test(proxy, spoofed_headers_stripped_tb, .description = "Sec-* IDs from the client never pass (TB)")
{
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024];
    json_t *doc;

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    exchange(&c, get_req("/echo", tb, SPOOFED), &r);
    doc = echo_doc(&r);
    expect_forwarded_ids(doc, id, NULL);
    expect_no_spoofed(doc);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

Test(proxy, spoofed_headers_stripped_plain,
     .description = "Sec-* IDs from the client never pass (no TB, TLS 1.3 and 1.2)")
{
    struct tbt_tls_opts plain12 = {.alpn = "http/1.1", .max_version = TLS1_2_VERSION};
    int i;

    world_start_default();
    for (i = 0; i < 2; i++) {
        struct tbt_tls c;
        struct tbt_http_response r = {0};
        json_t *doc;

        if (i == 0)
            connect_alpn(&c, "http/1.1");
        else
            connect_opts(&c, &plain12);
        exchange(&c, get_req("/echo", NULL, SPOOFED), &r);
        doc = echo_doc(&r);
        expect_forwarded_ids(doc, NULL, NULL);
        expect_no_spoofed(doc);
        json_decref(doc);
        tbt_http_response_dispose(&r);
        tbt_tls_close(&c);
    }
}

/* --- resumption ----------------------------------------------------------------------------- */

Test(proxy, resumed_session_uses_server_finished,
     .description = "a resumed TB connection verifies over the server's Finished")
{
    struct tbt_tls c1, c2, c3;
    struct tbt_tls_opts resume = {.alpn = ALPN_TB_P256};
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024], err[256];
    uint8_t fin[64];
    size_t n;
    SSL_SESSION *sess;

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&c1, ALPN_TB_P256, "http/1.1_tb_p256");
    cr_assert_not(c1.reused);
    tb_header(&c1, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_ids_via(&c1, tb, id, NULL);
    sess = tbt_tls_session(&c1);
    cr_assert_not_null(sess);
    cr_assert(SSL_SESSION_is_resumable(sess), "the proxy gave no resumable session");
    tbt_tls_close(&c1);

    resume.resume = sess;
    connect_opts(&c2, &resume);
    cr_assert(c2.reused, "the session was not resumed");
    cr_assert_eq(c2.version, TLS1_2_VERSION);
    cr_assert_str_eq(c2.alpn, "http/1.1_tb_p256");
    cr_assert(c2.ems);
    /* on a resumed handshake tls_unique is the server's Finished, which came first */
    n = SSL_get_peer_finished(c2.ssl, fin, sizeof(fin));
    cr_assert_eq(n, TB_TLS_UNIQUE_LEN);
    cr_assert(memcmp(fin, c2.tls_unique, n) == 0);
    tb_header(&c2, TB_KP_ECDSAP256, k, 0, NULL, tb);
    expect_ids_via(&c2, tb, id, NULL);
    expect_ids_via(&c2, tb, id, NULL);
    tbt_tls_close(&c2);

    /* signed over the client's Finished of a resumed handshake: the wrong value, rejected */
    connect_opts(&c3, &resume);
    cr_assert(c3.reused, "the session was not resumed a second time");
    n = SSL_get_finished(c3.ssl, fin, sizeof(fin));
    cr_assert_eq(n, TB_TLS_UNIQUE_LEN);
    cr_assert_gt(
        tbt_tb_header(TB_KP_ECDSAP256, k, 0, NULL, fin, n, tb, sizeof(tb), err, sizeof(err)), 0,
        "%s", err);
    expect_rejected(&c3, get_req("/echo", tb, NULL),
                    "resumed connection, signed over the client's Finished");
    tbt_tls_close(&c3);
    SSL_SESSION_free(sess);
    EVP_PKEY_free(k);
}

/* --- upstream failures ---------------------------------------------------------------------- */

Test(proxy, origin_down_502, .description = "origin refusing connections: 502 with a short body")
{
    static const struct tbt_world_opts down = {.origin_down = 1};
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    long long t0;

    world_start(&down);
    connect_alpn(&c, "http/1.1");
    t0 = tbt_now_ms();
    exchange(&c, get_req("/echo", NULL, NULL), &r);
    cr_expect_eq(r.status, 502, "status %d, expected 502: %s", r.status, r.head);
    cr_expect_lt(r.body_len, 1024, "a 502 body of %zu bytes", r.body_len);
    cr_expect_lt(tbt_now_ms() - t0, 5000, "502 took %lld ms", tbt_now_ms() - t0);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
}

Test(proxy, slow_origin_504, .description = "no byte from the origin within read_timeout: 504")
{
    static const struct tbt_world_opts slow = {.config_file = 1, .read_timeout = "1s"};
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    long long t0, took;

    world_start(&slow);
    connect_alpn(&c, "http/1.1");
    t0 = tbt_now_ms();
    exchange(&c, get_req("/slow?ms=3000", NULL, NULL), &r);
    took = tbt_now_ms() - t0;
    cr_expect_eq(r.status, 504, "status %d after %lld ms, expected 504: %s", r.status, took,
                 r.head);
    cr_expect(took >= 900 && took < 2900, "504 after %lld ms with a 1 s read timeout", took);
    cr_expect_lt(r.body_len, 1024, "a 504 body of %zu bytes", r.body_len);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);

    /* the proxy still serves */
    connect_alpn(&c, "http/1.1");
    exchange(&c, get_req("/healthz", NULL, NULL), &r);
    cr_expect_eq(r.status, 200, "/healthz after the 504: %d", r.status);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
}

/* --- bodies --------------------------------------------------------------------------------- */

#define BIG_BYTES (256u * 1024 * 1024)

/*
 * Bodies stream: a 256 MiB upload and a 256 MiB download through the proxy raise its peak
 * memory by far less than the body (the buffers are capped at a few hundred KiB).
 */
Test(proxy, large_bodies_in_bounded_memory)
{
    static unsigned char block[65536];
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    char line[128], target[64];
    long before, after;
    size_t sent;
    json_t *doc;

    memset(block, 'x', sizeof(block));
    /* under ASan, freed memory waits in a 256 MiB quarantine: OpenSSL's per-record buffers
     * would look like growth. A small quarantine measures the proxy's own buffering. */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=8:thread_local_quarantine_size_kb=256", 1);
    world_start_default();
    connect_alpn(&c, "http/1.1");
    cr_assert_eq(tbt_tls_send_str(&c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"), 0);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s", c.err);
    tbt_http_response_dispose(&r);
    before = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_assert_gt(before, 0);
    snprintf(line, sizeof(line),
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %u\r\n\r\n", BIG_BYTES);
    cr_assert_eq(tbt_tls_send_str(&c, line), 0, "%s", c.err);
    for (sent = 0; sent < BIG_BYTES; sent += sizeof(block))
        cr_assert_eq(tbt_tls_send(&c, block, sizeof(block)), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s; proxy log: %s", c.err, proxy_log());
    doc = echo_doc(&r);
    cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), (json_int_t)BIG_BYTES);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    after = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_expect_lt(after - before, 64 * 1024, "upload: proxy peak memory grew by %ld KiB",
                 after - before);
    tbt_tls_close(&c);

    /* the download (the test client holds it whole; the proxy must not) */
    connect_alpn(&c, "http/1.1");
    snprintf(target, sizeof(target), "/bytes/%u", BIG_BYTES / 4);
    snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target);
    cr_assert_eq(tbt_tls_send_str(&c, line), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, BIG_BYTES), 0, "%s; proxy log: %s", c.err,
                 proxy_log());
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, (size_t)(BIG_BYTES / 4));
    tbt_http_response_dispose(&r);
    before = after;
    after = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_expect_lt(after - before, 64 * 1024, "download: proxy peak memory grew by %ld KiB",
                 after - before);
    tbt_tls_close(&c);
}

Test(proxy, chunked_upload, .description = "a chunked POST of uneven chunks: length and SHA-256")
{
    static const size_t sizes[] = {1, 7, 4096, 65536, 100000, 3, 131072};
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    size_t total = 0, off = 0, i;
    unsigned char *body;
    char hex[65], line[64];
    json_t *doc;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        total += sizes[i];
    body = malloc(total);
    cr_assert_not_null(body);
    cr_assert_eq(RAND_bytes(body, (int)total), 1);
    tbt_world_sha256_hex(body, total, hex);

    world_start_default();
    connect_alpn(&c, "http/1.1");
    cr_assert_eq(tbt_tls_send_str(&c, "POST /echo?upload=1 HTTP/1.1\r\nHost: localhost\r\n"
                                      "Content-Type: application/octet-stream\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"),
                 0, "%s", c.err);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(line, sizeof(line), "%zx\r\n", sizes[i]);
        cr_assert_eq(tbt_tls_send_str(&c, line), 0, "%s", c.err);
        cr_assert_eq(tbt_tls_send(&c, body + off, sizes[i]), 0, "%s", c.err);
        cr_assert_eq(tbt_tls_send_str(&c, "\r\n"), 0, "%s", c.err);
        off += sizes[i];
    }
    cr_assert_eq(tbt_tls_send_str(&c, "0\r\n\r\n"), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s; proxy log: %s", c.err, proxy_log());
    doc = echo_doc(&r);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "method")), "POST");
    cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), (json_int_t)total,
                 "origin got %lld bytes, sent %zu",
                 (long long)json_integer_value(json_object_get(doc, "body_length")), total);
    cr_expect(json_is_string(json_object_get(doc, "body_sha256")) &&
                  strcmp(json_string_value(json_object_get(doc, "body_sha256")), hex) == 0,
              "origin body sha256 %s, sent %s",
              json_string_value(json_object_get(doc, "body_sha256")), hex);
    json_decref(doc);
    tbt_http_response_dispose(&r);

    /* the connection is still usable after the chunked body */
    exchange(&c, request("POST", "/echo", NULL, "hello"), &r);
    doc = echo_doc(&r);
    cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), 5);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    free(body);
}

Test(proxy, chunked_download, .description = "/bytes/1000000 (chunked from the origin): every byte")
{
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    size_t i, bad = 0;

    world_start_default();
    connect_alpn(&c, "http/1.1");
    exchange(&c, get_req("/bytes/1000000", NULL, NULL), &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.head);
    cr_assert_eq(r.body_len, 1000000, "got %zu bytes, expected 1000000 (%s)", r.body_len,
                 r.chunked       ? "chunked"
                 : r.until_close ? "until close"
                                 : "content-length");
    for (i = 0; i < r.body_len; i++)
        bad += r.body[i] != (unsigned char)('a' + i % 26);
    cr_expect_eq(bad, 0, "%zu bytes differ from the pattern", bad);
    tbt_http_response_dispose(&r);

    /* and the connection goes on */
    exchange(&c, get_req("/healthz", NULL, NULL), &r);
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
}

/* --- pipelining ----------------------------------------------------------------------------- */

Test(proxy, pipelining, .description = "three requests in one write, answered in order")
{
    static const char *const queries[] = {"n=1", "ms=300", "n=3"};
    struct tbt_tls c;
    char *reqs = NULL, *a = get_req("/echo?n=1", NULL, NULL),
         *b = get_req("/slow?ms=300", NULL, NULL), *d = get_req("/echo?n=3", NULL, NULL);
    int i;

    cr_assert_gt(asprintf(&reqs, "%s%s%s", a, b, d), 0);
    free(a);
    free(b);
    free(d);
    world_start_default();
    connect_alpn(&c, "http/1.1");
    cr_assert_eq(tbt_tls_send_str(&c, reqs), 0, "%s", c.err);
    free(reqs);
    for (i = 0; i < 3; i++) {
        struct tbt_http_response r = {0};

        cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "response %d: %s; proxy log: %s",
                     i + 1, c.err, proxy_log());
        cr_assert_eq(r.status, 200, "response %d: status %d", i + 1, r.status);
        if (i == 1) { /* /slow answers text, not JSON */
            cr_expect_null(strchr((const char *)r.body, '{'), "response 2 is an /echo: %s",
                           (const char *)r.body);
        } else {
            json_t *doc = echo_doc(&r);
            const char *q = json_string_value(json_object_get(doc, "query"));

            cr_expect(q != NULL && strcmp(q, queries[i]) == 0,
                      "response %d answers query %s, expected %s", i + 1, q ? q : "(null)",
                      queries[i]);
            json_decref(doc);
        }
        tbt_http_response_dispose(&r);
    }
    tbt_tls_close(&c);
}

Test(proxy, pipelining_tb, .description = "three TB requests in one write, answered in order")
{
    struct tbt_tls c;
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[1024], *reqs = NULL, *x[3];
    int i;

    world_start_default();
    id_b64(TB_KP_ECDSAP256, k, id, sizeof(id));
    connect_tb(&c, ALPN_TB_P256, "http/1.1_tb_p256");
    tb_header(&c, TB_KP_ECDSAP256, k, 0, NULL, tb);
    x[0] = get_req("/echo?n=1", tb, NULL);
    x[1] = get_req("/echo?n=2", tb, NULL);
    x[2] = get_req("/echo?n=3", tb, NULL);
    cr_assert_gt(asprintf(&reqs, "%s%s%s", x[0], x[1], x[2]), 0);
    for (i = 0; i < 3; i++)
        free(x[i]);
    cr_assert_eq(tbt_tls_send_str(&c, reqs), 0, "%s", c.err);
    free(reqs);
    for (i = 0; i < 3; i++) {
        struct tbt_http_response r = {0};
        char want[8];
        json_t *doc;
        const char *q;

        cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "response %d: %s; proxy log: %s",
                     i + 1, c.err, proxy_log());
        doc = echo_doc(&r);
        snprintf(want, sizeof(want), "n=%d", i + 1);
        q = json_string_value(json_object_get(doc, "query"));
        cr_expect(q != NULL && strcmp(q, want) == 0, "response %d answers %s", i + 1,
                  q ? q : "(null)");
        expect_forwarded_ids(doc, id, NULL);
        json_decref(doc);
        tbt_http_response_dispose(&r);
    }
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

/* --- other clients and the daemon's life ---------------------------------------------------- */

/* The whole file at path (up to 1 MiB), NUL-terminated, malloc'd; NULL if it cannot be read. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc((1u << 20) + 1);

    *len = 0;
    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, 1u << 20, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

Test(proxy, curl_plain, .description = "curl -sk https://127.0.0.1:PORT/echo through the proxy")
{
    char url[128], out[700], *log, *body;
    const char *args[] = {
        "-sS", "-k", "--max-time",      "10", "-o",
        out,   "-w", "%{http_code}\\n", "-H", "Sec-Provided-Token-Binding-ID: c3Bvb2ZlZA",
        url,   NULL};
    json_t *doc;
    json_error_t je;
    size_t len;
    int st;

    world_start_default();
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo?from=curl", w.proxy_port);
    snprintf(out, sizeof(out), "%s/curl.out", w.dir);
    st = tbt_world_run(&w, "curl", args, "curl", 15000, &log);
    cr_assert_eq(st, 0, "curl exit status %d: %s; proxy log: %s", st, log, proxy_log());
    cr_expect_str_eq(log, "200\n", "curl: %s", log);
    free(log);

    body = read_text(out, &len);
    cr_assert_not_null(body, "%s: %s", out, strerror(errno));
    doc = json_loadb(body, len, 0, &je);
    cr_assert(json_is_object(doc), "curl got no JSON: %s", body);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "query")), "from=curl");
    cr_expect_null(
        json_object_get(json_object_get(doc, "headers"), "sec-provided-token-binding-id"),
        "a spoofed ID from curl reached the origin");
    json_decref(doc);
    free(body);
}

Test(proxy, sigterm_stops_cleanly, .description = "SIGTERM: the proxy exits 0 within 3 s")
{
    struct tbt_tls c;
    struct tbt_http_response r = {0};
    int st;

    world_start_default();
    connect_alpn(&c, "http/1.1");
    exchange(&c, get_req("/healthz", NULL, NULL), &r); /* an idle kept-alive connection stays */
    cr_expect_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    st = tbt_proc_stop(&w.proxy);
    cr_expect_eq(st, 0, "tbproxy exit status %d after SIGTERM (137 = needed SIGKILL); log: %s", st,
                 proxy_log());
    tbt_tls_close(&c);
}
