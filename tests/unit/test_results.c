/*
 * What the origin is told about TLS and Token Binding, and what a route demands (issue 9; spec
 * AUTH-RESULTS.md): the real daemon from a config file (tests/support/confproxy.h) in front of the
 * demo origin, whose /echo shows every header it got.
 *
 * - Route policy `token_binding`: "required" answers 403 with a one-line reason to a client
 *   without Token Binding and serves a bound one; "off" serves both and never forwards a binding
 *   header (the IDs are not sent, spoofed ones are stripped as always); "optional" (the default)
 *   forwards the IDs when there are some. HTTP/1.1 and HTTP/2; on h1 a 403 keeps the connection.
 * - Authentication-Results: the proxy's own header comes first, parsed with libtb's parser
 *   (tb/authres.h): authserv-id, tls=permerror "(no client certificate)" with tls.v, the IANA
 *   cipher suite name, key.length, key.strength; tokenbinding=pass with tb.version, tb.key,
 *   tb.referred, or tokenbinding=none without TB; not sent on a route that says
 *   authentication_results = false; a route with token_binding = "off" reports no tokenbinding.
 * - Spoofing: incoming Authentication-Results with the proxy's authserv-id are removed whatever
 *   their case, quoting or leading comment, also when repeated; others are kept, after ours; an
 *   obs-folded one never reaches the origin (400).
 * - In-process (tbp_results_value): the spec's example, quoting and refusals, the companion
 *   methods, an rfc binding's tb.version=rfc with the RFC's key names (tbp_results_set_binding),
 *   the authserv-id check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "confproxy.h"
#include "drive.h"
#include "h2test.h"
#include "proc.h"
#include "tb/authres.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 90
#define AUTHSERV "proxy.test"

#define COOKIE_KEYS "k1 ERERERERERERERERERERERERERERERERERERERERERE=\n"
#define CONFIG                                                                                     \
    "authserv_id = \"" AUTHSERV "\";\n"                                                            \
    "cookie_keys = \"cookie.keys\";\n"                                                             \
    "routes = (\n"                                                                                 \
    "  { host = \"ck.test\"; prefix = \"/\"; upstream = \"app\"; bind_cookies = [ \"session\" ]; " \
    "},\n"                                                                                         \
    "  { host = \"req.test\"; prefix = \"/\"; upstream = \"app\"; token_binding = \"required\"; "  \
    "},\n"                                                                                         \
    "  { host = \"off.test\"; prefix = \"/\"; upstream = \"app\"; token_binding = \"off\"; },\n"   \
    "  { host = \"noar.test\"; prefix = \"/\"; upstream = \"app\"; "                               \
    "authentication_results = false; },\n"                                                         \
    "  { host = \"*\"; prefix = \"/\"; upstream = \"app\"; }\n"                                    \
    ");\n"

static struct tbt_world w;
static struct tbt_confproxy px;
static struct tbt_tls conns[3];
static struct tbt_h2 h2s[2];
static EVP_PKEY *key_a;

static void teardown(void)
{
    size_t i;

    for (i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
        tbt_tls_close(&conns[i]);
    for (i = 0; i < sizeof(h2s) / sizeof(h2s[0]); i++)
        tbt_h2_close(&h2s[i]);
    EVP_PKEY_free(key_a);
    key_a = NULL;
    tbt_keep_free();
    tbt_confproxy_stop(&px);
    tbt_world_teardown(&w);
}

TestSuite(results, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- helpers ---------------------------------------------------------------------------------- */

static void start(const char *config)
{
    tbt_world_start(&w, NULL);
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &key_a), 0);
    cr_assert_eq(tbt_write_file(w.dir, "cookie.keys", COOKIE_KEYS, strlen(COOKIE_KEYS)), 0);
    tbt_confproxy_start(&w, &px, "results", 0, config);
}

/* The /echo document's headers object (kept alive by the returned doc; the caller decrefs). */
static json_t *echo_headers(const void *body, size_t len, json_t **doc)
{
    json_error_t e;

    *doc = json_loadb(body, len, 0, &e);
    cr_assert(json_is_object(*doc), "/echo body is not JSON (%s): %.*s", e.text, (int)len,
              (const char *)body);
    return json_object_get(*doc, "headers");
}

/* The n-th value the origin got for name (lower case), kept; NULL when it has fewer. */
static const char *origin_value(json_t *headers, const char *name, size_t n)
{
    json_t *v = json_object_get(headers, name);

    if (json_is_string(v))
        return n == 0 ? tbt_keep(strdup(json_string_value(v))) : NULL;
    if (json_is_array(v) && n < json_array_size(v))
        return tbt_keep(strdup(json_string_value(json_array_get(v, n))));
    return NULL;
}

/* h1 GET /echo: 200 expected; the origin's headers in a doc the caller decrefs. */
static json_t *h1_echo(struct tbt_tls *c, const char *tb, const char *host, const char *extra,
                       json_t **doc)
{
    struct tbt_http_response r = {0};
    json_t *h;

    tbt_drive_h1_get(&px, c, tb, host, "/echo", extra, &r);
    cr_assert_eq(r.status, 200, "%s: status %d: %.*s; %s", host, r.status, (int)r.body_len,
                 (const char *)r.body, tbt_log_tail(&px.proc));
    h = echo_headers(r.body, r.body_len, doc);
    tbt_http_response_dispose(&r);
    return h;
}

/* --- route policy: token_binding -------------------------------------------------------------- */

Test(results, h1_token_binding_required_off_optional)
{
    struct tbt_http_response r = {0};
    json_t *doc, *hd;
    char *tb, *none;

    start(CONFIG);
    tbt_drive_h1_connect(&px, &conns[0], NULL, &none);
    tbt_drive_h1_get(&px, &conns[0], NULL, "req.test", "/echo", NULL, &r);
    cr_expect_eq(r.status, 403, "required, no TB: %d", r.status);
    cr_expect(r.body_len > 0 && memmem(r.body, r.body_len, "token binding required", 22) != NULL,
              "403 body: %.*s", (int)r.body_len, (const char *)r.body);
    tbt_http_response_dispose(&r);
    /* the 403 kept the connection: the next request on it is served */
    hd = h1_echo(&conns[0], NULL, "any.test", NULL, &doc);
    cr_expect_null(origin_value(hd, "sec-provided-token-binding-id", 0));
    json_decref(doc);

    tbt_drive_h1_connect(&px, &conns[1], key_a, &tb);
    hd = h1_echo(&conns[1], tb, "req.test", NULL, &doc);
    cr_expect_not_null(origin_value(hd, "sec-provided-token-binding-id", 0),
                       "required + TB: the ID reaches the origin");
    json_decref(doc);
    hd = h1_echo(&conns[1], tb, "off.test",
                 "Sec-Provided-Token-Binding-ID: AAAA\r\nSec_Referred_Token_Binding_ID: AAAA\r\n",
                 &doc);
    cr_expect_null(origin_value(hd, "sec-provided-token-binding-id", 0),
                   "off: no provided ID, not even a spoofed one");
    cr_expect_null(origin_value(hd, "sec-referred-token-binding-id", 0));
    cr_expect_null(origin_value(hd, "sec_referred_token_binding_id", 0));
    json_decref(doc);
    hd = h1_echo(&conns[1], tb, "any.test", NULL, &doc);
    cr_expect_not_null(origin_value(hd, "sec-provided-token-binding-id", 0), "optional + TB");
    json_decref(doc);
}

Test(results, h2_token_binding_required_off_optional)
{
    struct tbt_h2_stream *st;
    json_t *doc, *hd;
    char *tb, *none;

    start(CONFIG);
    tbt_drive_h2_connect(&px, &h2s[0], NULL, "req.test", &none);
    st = tbt_drive_h2_get(&px, &h2s[0], NULL, "/echo", NULL);
    cr_expect_eq(st->status, 403, "h2 required, no TB: %d", st->status);
    cr_expect(st->body_len > 0 && memmem(st->body, st->body_len, "token binding required", 22),
              "403 body: %.*s", (int)st->body_len, (const char *)st->body);

    tbt_drive_h2_connect(&px, &h2s[1], key_a, "off.test", &tb);
    st = tbt_drive_h2_get(&px, &h2s[1], tb, "/echo",
                          (const char *const[]){"sec-provided-token-binding-id", "AAAA", NULL});
    cr_assert_eq(st->status, 200, "h2 off + TB: %d; %s", st->status, tbt_log_tail(&px.proc));
    hd = echo_headers(st->body, st->body_len, &doc);
    cr_expect_null(origin_value(hd, "sec-provided-token-binding-id", 0), "h2 off: no ID");
    json_decref(doc);
}

/* --- Authentication-Results ------------------------------------------------------------------- */

static struct tb_authres *parsed[16];
static size_t n_parsed;

static void free_parsed(void)
{
    while (n_parsed > 0)
        tb_authres_free(parsed[--n_parsed]);
}

/* The n-th Authentication-Results the origin got, parsed (freed at the end of the test). */
static const struct tb_authres *origin_ar(json_t *headers, size_t n)
{
    const char *v = origin_value(headers, "authentication-results", n);
    struct tb_authres *ar = NULL;
    int ret;

    cr_assert_not_null(v, "the origin got no Authentication-Results #%zu", n);
    ret = tb_authres_parse(v, strlen(v), &ar);
    cr_assert_eq(ret, 0, "not RFC 8601 (%s): %s", tb_strerror(ret), v);
    cr_assert_lt(n_parsed, sizeof(parsed) / sizeof(parsed[0]));
    parsed[n_parsed++] = ar;
    return ar;
}

static const char *prop_of(const struct tb_authres_method *m, const char *ptype, const char *name)
{
    const struct tb_authres_prop *p = tb_authres_find_prop(m, ptype, name, NULL);

    return p != NULL ? p->value : NULL;
}

/* The checks every header of ours passes: authserv-id, a tls method with TLS facts and no
 * client certificate. Returns the tokenbinding method, NULL when absent. */
static const struct tb_authres_method *check_ours(const struct tb_authres *ar)
{
    const struct tb_authres_method *t = tb_authres_find_method(ar, "tls", NULL);
    const char *v, *cs, *len;

    cr_assert_str_eq(ar->authserv_id, AUTHSERV);
    cr_assert_not_null(t, "no tls method");
    cr_expect_str_eq(t->result, "permerror");
    cr_expect(t->n_comments == 1 && strcmp(t->comments[0], "no client certificate") == 0,
              "tls comment");
    v = prop_of(t, "tls", "v");
    cr_expect(v != NULL && (strcmp(v, "TLS1.2") == 0 || strcmp(v, "TLS1.3") == 0), "tls.v %s",
              v ? v : "(none)");
    cs = prop_of(t, "key", "ciphersuite");
    cr_expect(cs != NULL && strncmp(cs, "TLS_", 4) == 0, "key.ciphersuite %s", cs ? cs : "(none)");
    len = prop_of(t, "key", "length");
    cr_expect(len != NULL && (strcmp(len, "128") == 0 || strcmp(len, "256") == 0), "key.length %s",
              len ? len : "(none)");
    cr_expect_str_eq(prop_of(t, "key", "strength"), "high");
    cr_expect_null(prop_of(t, "cert", "client"), "no client certificate was sent");
    return tb_authres_find_method(ar, "tokenbinding", NULL);
}

Test(results, h1_header_tls_and_token_binding, .fini = free_parsed)
{
    const struct tb_authres_method *tbm;
    const struct tb_authres *ar;
    json_t *doc, *hd;
    char *tb, *none;

    start(CONFIG);
    tbt_drive_h1_connect(&px, &conns[0], NULL, &none);
    hd = h1_echo(&conns[0], NULL, "any.test", NULL, &doc);
    tbm = check_ours(origin_ar(hd, 0));
    cr_assert_not_null(tbm, "no tokenbinding method");
    cr_expect_str_eq(tbm->result, "none");
    cr_expect_eq(tbm->n_props, 0);
    cr_expect_null(origin_value(hd, "authentication-results", 1), "one header only");
    json_decref(doc);

    tbt_drive_h1_connect(&px, &conns[1], key_a, &tb);
    hd = h1_echo(&conns[1], tb, "any.test", NULL, &doc);
    ar = origin_ar(hd, 0);
    tbm = check_ours(ar);
    cr_assert_not_null(tbm);
    cr_expect_str_eq(tbm->result, "pass");
    cr_expect_str_eq(prop_of(tbm, "tb", "version"), "draft");
    cr_expect_str_eq(prop_of(tbm, "tb", "key"), "p256");
    cr_expect_str_eq(prop_of(tbm, "tb", "referred"), "no");
    cr_expect_str_eq(prop_of(tb_authres_find_method(ar, "tls", NULL), "tls", "v"), "TLS1.2",
                     "Token Binding is TLS 1.2 only");
    cr_expect_null(tb_authres_find_method(ar, "tbcookie", NULL), "no cookie binding here");
    json_decref(doc);

    /* token_binding = "off": no tokenbinding method; authentication_results = false: no header */
    hd = h1_echo(&conns[1], tb, "off.test", NULL, &doc);
    cr_expect_null(check_ours(origin_ar(hd, 0)), "off: no tokenbinding method");
    json_decref(doc);
    hd = h1_echo(&conns[1], tb, "noar.test", "Authentication-Results: " AUTHSERV "; tls=pass\r\n",
                 &doc);
    cr_expect_null(origin_value(hd, "authentication-results", 0),
                   "authentication_results = false: none, and a spoofed one still removed");
    json_decref(doc);
}

Test(results, h1_spoofed_headers_removed_others_kept_after_ours, .fini = free_parsed)
{
    struct tbt_http_response r = {0};
    const struct tb_authres *ar;
    json_t *doc, *hd;
    char *tb;

    start(CONFIG);
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb);
    hd = h1_echo(&conns[0], tb, "any.test",
                 "Authentication-Results: other.example; spf=pass smtp.mailfrom=example.net\r\n"
                 "Authentication-Results: " AUTHSERV "; tokenbinding=pass tb.key=p256\r\n"
                 "authentication-results: PROXY.Test; tls=pass\r\n"
                 "Authentication-Results: \"proxy.test\"; tls=pass\r\n"
                 "Authentication-Results: (forged) (really) proxy.test; tls=pass\r\n"
                 "Authentication_Results: proxy.test; tls=pass\r\n"
                 "Authentication-Results: (unclosed proxy.test; tls=pass\r\n"
                 "Authentication-Results: proxy.test.evil; tls=pass\r\n",
                 &doc);
    ar = origin_ar(hd, 0);
    cr_expect_str_eq(ar->authserv_id, AUTHSERV, "ours comes first");
    cr_expect_str_eq(tb_authres_find_method(ar, "tokenbinding", NULL)->result, "pass");
    ar = origin_ar(hd, 1);
    cr_expect_str_eq(ar->authserv_id, "other.example");
    ar = origin_ar(hd, 2);
    cr_expect_str_eq(ar->authserv_id, "proxy.test.evil", "another id is not ours");
    cr_expect_null(origin_value(hd, "authentication-results", 3),
                   "every header claiming " AUTHSERV " removed");
    cr_expect_null(origin_value(hd, "authentication_results", 0));
    json_decref(doc);

    /* obs-fold never reaches the origin */
    tbt_drive_h1_get(&px, &conns[0], tb, "any.test", "/echo",
                     "Authentication-Results: other.example;\r\n proxy.test; tls=pass\r\n", &r);
    cr_expect_eq(r.status, 400, "folded field: %d", r.status);
    tbt_http_response_dispose(&r);
}

Test(results, h1_tbcookie, .fini = free_parsed)
{
    const struct tb_authres_method *m;
    const struct tb_authres *ar;
    json_t *doc, *hd;
    char *tb;

    start(CONFIG);
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb);
    hd = h1_echo(&conns[0], tb, "ck.test", NULL, &doc);
    m = tb_authres_find_method(origin_ar(hd, 0), "tbcookie", NULL);
    cr_assert_not_null(m, "a bind_cookies route reports tbcookie");
    cr_expect_str_eq(m->result, "none");
    json_decref(doc);
    /* an untagged session cookie on a Token Binding connection is dropped: named, never its value
     */
    hd = h1_echo(&conns[0], tb, "ck.test", "Cookie: session=s3cr3t; other=1\r\n", &doc);
    ar = origin_ar(hd, 0);
    m = tb_authres_find_method(ar, "tbcookie", NULL);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->result, "fail");
    cr_expect(m->n_comments == 1 && strcmp(m->comments[0], "session") == 0, "comment: %s",
              m->n_comments ? m->comments[0] : "(none)");
    cr_expect_null(strstr(origin_value(hd, "authentication-results", 0), "s3cr3t"));
    json_decref(doc);
}

Test(results, h2_header_and_spoofing, .fini = free_parsed)
{
    const struct tb_authres_method *tbm;
    struct tbt_h2_stream *st;
    const struct tb_authres *ar;
    json_t *doc, *hd;
    char *tb;

    start(CONFIG);
    tbt_drive_h2_connect(&px, &h2s[0], key_a, "any.test", &tb);
    st = tbt_drive_h2_get(&px, &h2s[0], tb, "/echo",
                          (const char *const[]){"authentication-results", "Proxy.Test; tls=pass",
                                                "authentication-results",
                                                "other.example; dkim=pass", NULL});
    cr_assert_eq(st->status, 200, "h2: %d; %s", st->status, tbt_log_tail(&px.proc));
    hd = echo_headers(st->body, st->body_len, &doc);
    ar = origin_ar(hd, 0);
    tbm = check_ours(ar);
    cr_assert_not_null(tbm);
    cr_expect_str_eq(tbm->result, "pass");
    cr_expect_str_eq(prop_of(tbm, "tb", "key"), "p256");
    cr_expect_str_eq(origin_ar(hd, 1)->authserv_id, "other.example");
    cr_expect_null(origin_value(hd, "authentication-results", 2));
    json_decref(doc);
}

/* --- tbp_results_value / tbp_results_is_ours, in-process ------------------------------------- */

#include "results.h"

TestSuite(results_value, .timeout = SUITE_TIMEOUT_S);

static struct tb_authres *parse_ok(const char *v)
{
    struct tb_authres *ar = NULL;
    int ret = tb_authres_parse(v, strlen(v), &ar);

    cr_assert_eq(ret, 0, "%s: %s", tb_strerror(ret), v);
    return ar;
}

Test(results_value, spec_example_with_a_client_certificate)
{
    struct tbp_tlscert cert = {.subject = "CN=alice,O=Example",
                               .issuer = "CN=Example CA",
                               .alt = "DNS:alice.example,email:alice@example.com",
                               .verif = "CA",
                               .fingerprint = "AB:CD:EF"};
    struct tbp_tlsinfo ti = {.result = TBP_TLSR_PASS,
                             .version = "TLS1.2",
                             .ciphersuite = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                             .key_length = 128,
                             .strength = TBP_KEY_HIGH,
                             .cert = &cert};
    struct tbp_results_req rq = {.tls = &ti,
                                 .report_cert = 1,
                                 .report_tb = 1,
                                 .tb = 1,
                                 .tb_version = "draft",
                                 .tb_key = "p256",
                                 .tb_referred = 1};
    char buf[TBP_RESULTS_MAX];
    const struct tb_authres_method *m;
    struct tb_authres *ar;
    int n = tbp_results_value("proxy.example.com", &rq, buf, sizeof(buf));

    cr_assert_gt(n, 0, "%s", tb_strerror(n));
    cr_expect_eq(strlen(buf), (size_t)n);
    cr_expect_str_eq(buf,
                     "proxy.example.com; tls=pass cert.verif=CA cert.client=\"CN=alice,O=Example\" "
                     "cert.clientissuer=\"CN=Example CA\" "
                     "cert.clientalt=\"DNS:alice.example,email:alice@example.com\" tls.v=TLS1.2 "
                     "key.ciphersuite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 key.length=128 "
                     "key.strength=high key.fingerprint=\"AB:CD:EF\"; tokenbinding=pass "
                     "tb.version=draft tb.key=p256 tb.referred=yes");
    ar = parse_ok(buf);
    m = tb_authres_find_method(ar, "tls", NULL);
    cr_assert_not_null(m);
    cr_expect_str_eq(prop_of(m, "cert", "client"), "CN=alice,O=Example");
    tb_authres_free(ar);

    /* client_certificate = "off" on the route: no cert.*, reported as no certificate */
    rq.report_cert = 0;
    cr_assert_gt(tbp_results_value("p", &rq, buf, sizeof(buf)), 0);
    cr_expect_null(strstr(buf, "cert."), "%s", buf);
    cr_expect_null(strstr(buf, "fingerprint"), "%s", buf);
    cr_expect(strncmp(buf, "p; tls=permerror (no client certificate) tls.v=",
                      strlen("p; tls=permerror (no client certificate) tls.v=")) == 0,
              "%s", buf);
}

Test(results_value, failures_quoting_and_companion_methods)
{
    struct tbp_tlscert cert = {.subject = "CN=\"mallory\"\\,O=(x)",
                               .issuer = "CN=bad\x01issuer",
                               .alt = "",
                               .verif = "CA",
                               .fingerprint = "00:11"};
    struct tbp_tlsinfo ti = {.result = TBP_TLSR_FAIL,
                             .reason = "certificate has expired",
                             .version = "TLS1.3",
                             .ciphersuite = "TLS_AES_256_GCM_SHA384",
                             .key_length = 256,
                             .strength = TBP_KEY_HIGH,
                             .cert = &cert};
    struct tbp_results_req rq = {.tls = &ti,
                                 .report_cert = 1,
                                 .report_tb = 1,
                                 .tbcookie = TBP_RES_FAIL,
                                 .tbcookie_dropped = "session, sid",
                                 .tbjwt = TBP_RES_PASS};
    char buf[TBP_RESULTS_MAX], small[40];
    const struct tb_authres_method *m;
    struct tb_authres *ar;

    cr_assert_gt(tbp_results_value("proxy", &rq, buf, sizeof(buf)), 0);
    ar = parse_ok(buf);
    m = tb_authres_find_method(ar, "tls", NULL);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->result, "fail");
    cr_expect(m->n_comments == 1 && strcmp(m->comments[0], "certificate has expired") == 0);
    cr_expect_null(prop_of(m, "cert", "verif"), "only a verified certificate has cert.verif");
    cr_expect_str_eq(prop_of(m, "cert", "client"), "CN=\"mallory\"\\,O=(x)", "quoted and back");
    cr_expect_null(prop_of(m, "cert", "clientissuer"), "a control byte: left out, not written");
    cr_expect_null(prop_of(m, "cert", "clientalt"), "no alternative names: no property");
    cr_expect_str_eq(tb_authres_find_method(ar, "tokenbinding", NULL)->result, "none");
    m = tb_authres_find_method(ar, "tbcookie", NULL);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->result, "fail");
    cr_expect(m->n_comments == 1 && strcmp(m->comments[0], "session, sid") == 0);
    cr_expect_str_eq(tb_authres_find_method(ar, "tbjwt", NULL)->result, "pass");
    tb_authres_free(ar);

    /* no TLS (a plain listener), nothing else: "tls=none" */
    cr_assert_gt(tbp_results_value("p", &(struct tbp_results_req){0}, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "p; tls=none");
    /* too small: an error, never a cut value */
    cr_expect_eq(tbp_results_value("proxy", &rq, small, sizeof(small)), TB_ETOOLARGE);
    cr_expect_eq(tbp_results_value(NULL, &rq, buf, sizeof(buf)), TB_EINVAL);
}

/* An RFC 8471-8473 binding: tb.version=rfc, the key named the RFC's way (RFC 8471 section 3),
 * every one of them a value RFC 8601 parsers read back; a draft one keeps its names. */
Test(results_value, rfc_binding_version_and_key_names)
{
    static const struct {
        int version, kp;
        const char *tb_version, *tb_key;
    } cases[] = {
        {TB_VERSION_RFC, TB_KP_ECDSAP256, "rfc", "ecdsap256"},
        {TB_VERSION_RFC, TB_KP_RSA2048_PSS, "rfc", "rsa2048_pss"},
        {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, "rfc", "rsa2048_pkcs1.5"},
        {TB_VERSION_DRAFT, TB_KP_ECDSAP256, "draft", "p256"},
        {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, "draft", "rsa2048"},
    };
    struct tbp_tlsinfo ti = {.result = TBP_TLSR_PERMERROR,
                             .reason = "no client certificate",
                             .version = "TLS1.3",
                             .ciphersuite = "TLS_AES_128_GCM_SHA256",
                             .key_length = 128,
                             .strength = TBP_KEY_HIGH};
    char buf[TBP_RESULTS_MAX], want[256];
    const struct tb_authres_method *m;
    struct tb_authres *ar;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tbp_results_req rq = {.tls = &ti, .report_tb = 1, .tb = 1, .tb_referred = 1};

        tbp_results_set_binding(&rq, cases[i].version, cases[i].kp);
        cr_assert_str_eq(rq.tb_version, cases[i].tb_version);
        cr_assert_not_null(rq.tb_key);
        cr_assert_str_eq(rq.tb_key, cases[i].tb_key);
        cr_assert_gt(tbp_results_value("proxy.test", &rq, buf, sizeof(buf)), 0);
        snprintf(want, sizeof(want), "; tokenbinding=pass tb.version=%s tb.key=%s tb.referred=yes",
                 cases[i].tb_version, cases[i].tb_key);
        cr_expect_not_null(strstr(buf, want), "%s\n  want ...%s", buf, want);
        ar = parse_ok(buf);
        m = tb_authres_find_method(ar, "tokenbinding", NULL);
        cr_assert_not_null(m);
        cr_expect_str_eq(m->result, "pass");
        cr_expect_str_eq(prop_of(m, "tb", "version"), cases[i].tb_version);
        cr_expect_str_eq(prop_of(m, "tb", "key"), cases[i].tb_key);
        tb_authres_free(ar);
    }
    /* key parameters the draft does not know (rsa2048_pss): no tb.key, the rest as usual */
    {
        struct tbp_results_req rq = {.tls = &ti, .report_tb = 1, .tb = 1};

        tbp_results_set_binding(&rq, TB_VERSION_DRAFT, TB_KP_RSA2048_PSS);
        cr_expect_str_eq(rq.tb_version, "draft");
        cr_expect_null(rq.tb_key);
        cr_assert_gt(tbp_results_value("proxy.test", &rq, buf, sizeof(buf)), 0);
        cr_expect_not_null(strstr(buf, "; tokenbinding=pass tb.version=draft tb.referred=no"), "%s",
                           buf);
    }
    /* anything but rfc is read as draft (the binding's default) */
    {
        struct tbp_results_req rq = {0};

        tbp_results_set_binding(&rq, 7, TB_KP_ECDSAP256);
        cr_expect_str_eq(rq.tb_version, "draft");
        cr_expect_str_eq(rq.tb_key, "p256");
    }
}

Test(results_value, is_ours)
{
    static const char *const ours[] = {
        "proxy.test; tls=pass",
        "PROXY.TEST; tls=pass",
        "\"proxy.test\"; none",
        "(c) (d (nested)) proxy.test; x=y",
        " proxy.test ; tls=pass",
        "proxy.test",
        "(unclosed proxy.test; tls=pass",
        "",
        ";",
        "\"unclosed",
    };
    static const char *const others[] = {"other.example; spf=pass", "proxy.test.evil; none",
                                         "proxy.tes; none", "\"proxy test\"; none"};
    size_t i;

    for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        cr_expect_eq(tbp_results_is_ours(ours[i], strlen(ours[i]), "proxy.test"), 1, "%s", ours[i]);
    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        cr_expect_eq(tbp_results_is_ours(others[i], strlen(others[i]), "proxy.test"), 0, "%s",
                     others[i]);
}
