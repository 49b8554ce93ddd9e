/*
 * Integration tests of the companion module in tbproxy (issue 6): the real daemon, from a config
 * file with per-route settings (tests/support/confproxy.h), in front of the demo origin, driven
 * with the support clients (HTTP/1.1: tlsclient.h, HTTP/2: h2test.h, through drive.h) that sign
 * Token-Binding headers with keys the test holds.
 *
 * - Bound cookies: a cookie set through the proxy (/cookies/set) comes back bound to the client's
 *   key (Secure added, attributes untouched, unlisted cookies untouched); sent back from that key
 *   (on another connection too, and over the other HTTP version) the origin gets it without the
 *   tag; replayed from another key or from a client without Token Binding it is dropped. The
 *   `pass` policy lets unbound values through from clients without Token Binding.
 * - Bound JWTs: a token issued for the client's TBID (tb_jwt_bind) is accepted with its sub in
 *   the route's header (a spoofed one replaced), and every failure is a 401 with the Bearer
 *   challenge that keeps the connection (h1) or only ends the stream (h2, no GOAWAY): no token,
 *   "none", expired, bound to another TBID, signed by another key, no Token Binding, a stolen
 *   token presented from another key; the token read from a bound cookie.
 * - refer_token_binding: Include-Referer-Token-Binding-ID added to redirects (301, 302) of that
 *   route only.
 * - The access log says ck= / jwt= outcomes and never a tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "confproxy.h"
#include "drive.h"
#include "h2test.h"
#include "proc.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 90
#define COOKIE_KEYS "# test keys\nk1 ERERERERERERERERERERERERERERERERERERERERERE=\n"

#define CONFIG                                                                                     \
    "cookie_keys = \"cookie.keys\";\n"                                                             \
    "routes = (\n"                                                                                 \
    "  { host = \"pass.test\"; prefix = \"/\"; upstream = \"app\";\n"                              \
    "    bind_cookies = [ \"session\" ]; unbound_cookies = \"pass\"; },\n"                         \
    "  { host = \"jwt.test\"; prefix = \"/\"; upstream = \"app\";\n"                               \
    "    jwt = { keys = \"jwt.pub\"; algs = [ \"ES256\" ]; sub_header = \"X-Auth-Sub\"; }; },\n"   \
    "  { host = \"jwtc.test\"; prefix = \"/\"; upstream = \"app\"; bind_cookies = [ \"at\" ];\n"   \
    "    jwt = { from = \"cookie:at\"; keys = \"jwt.pub\"; algs = [ \"ES256\" ];\n"                \
    "            sub_header = \"X-Auth-Sub\"; }; },\n"                                             \
    "  { host = \"refer.test\"; prefix = \"/\"; upstream = \"app\"; refer_token_binding = true; "  \
    "},\n"                                                                                         \
    "  { host = \"*\"; prefix = \"/\"; upstream = \"app\"; bind_cookies = [ \"session\", "         \
    "\"sid\", \"at\" ]; }\n"                                                                       \
    ");\n"

/* What a test holds, where the .fini finds it after a failed assertion. */
static struct tbt_world w;
static struct tbt_confproxy px;
static struct tbt_tls conns[4];
static struct tbt_h2 h2s[3];
static EVP_PKEY *key_a, *key_b, *idp_key, *rogue_key;
static char *idp_pem, *rogue_pem;
static char tbh_a[TB_TBH_LEN + 1], tbh_b[TB_TBH_LEN + 1];

static void teardown(void)
{
    size_t i;

    for (i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
        tbt_tls_close(&conns[i]);
    for (i = 0; i < sizeof(h2s) / sizeof(h2s[0]); i++)
        tbt_h2_close(&h2s[i]);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(idp_key);
    EVP_PKEY_free(rogue_key);
    key_a = key_b = idp_key = rogue_key = NULL;
    free(idp_pem);
    free(rogue_pem);
    idp_pem = rogue_pem = NULL;
    tbt_keep_free();
    tbt_confproxy_stop(&px);
    tbt_world_teardown(&w);
}

TestSuite(companion, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- setup ------------------------------------------------------------------------------------ */

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = NULL;

    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &k), 0);
    return k;
}

/* PEM of key: the private key (PKCS#8) or the public key, malloc'd. */
static char *pem(EVP_PKEY *k, int public)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    cr_assert_not_null(b);
    cr_assert_eq(public ? PEM_write_bio_PUBKEY(b, k)
                        : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL),
                 1);
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
    BIO_free(b);
    cr_assert_not_null(out);
    return out;
}

/* tbh of key's draft TBID, as the proxy computes it from the provided binding. */
static void tbh_of(EVP_PKEY *k, char *out)
{
    char id[1024];
    uint8_t raw[1024];
    int n = tbt_tb_id_b64(TB_KP_ECDSAP256, k, id, sizeof(id)), m;

    cr_assert_gt(n, 0);
    m = tb_base64url_decode(id, (size_t)n, raw, sizeof(raw));
    cr_assert_gt(m, 0);
    cr_assert_eq(tb_tbh(raw, (size_t)m, out, TB_TBH_LEN + 1), TB_TBH_LEN);
}

/* The world (origin, certificate), the key files, and the proxy from CONFIG. */
static void start(void)
{
    char *pub;

    tbt_world_start(&w, NULL);
    key_a = key_new();
    key_b = key_new();
    idp_key = key_new();
    rogue_key = key_new();
    idp_pem = pem(idp_key, 0);
    rogue_pem = pem(rogue_key, 0);
    tbh_of(key_a, tbh_a);
    tbh_of(key_b, tbh_b);
    pub = pem(idp_key, 1);
    cr_assert_eq(tbt_write_file(w.dir, "jwt.pub", pub, strlen(pub)), 0);
    free(pub);
    cr_assert_eq(tbt_write_file(w.dir, "cookie.keys", COOKIE_KEYS, strlen(COOKIE_KEYS)), 0);
    tbt_confproxy_start(&w, &px, "companion", 0, CONFIG);
}

/* --- HTTP/1.1 --------------------------------------------------------------------------------- */

/* The n-th Set-Cookie value of r, or NULL. */
static const char *set_cookie(const struct tbt_http_response *r, size_t n)
{
    size_t i;

    for (i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, "set-cookie") == 0 && n-- == 0)
            return r->headers[i].value;
    return NULL;
}

/* "name=value" of a Set-Cookie value (up to the first ';'), kept. */
static char *pair_of(const char *set)
{
    const char *semi = strchr(set, ';');

    return tbt_keep(strndup(set, semi != NULL ? (size_t)(semi - set) : strlen(set)));
}

/* The origin's view of header name in an /echo body (NULL: absent). */
static const char *origin_header(const char *body, size_t len, const char *name)
{
    json_error_t e;
    json_t *doc = json_loadb(body, len, 0, &e), *v;
    const char *s = NULL;

    cr_assert(json_is_object(doc), "/echo body is not JSON: %s", body);
    v = json_object_get(json_object_get(doc, "headers"), name);
    if (v != NULL) {
        cr_assert(json_is_string(v), "the origin got %s more than once", name);
        s = tbt_keep(strdup(json_string_value(v)));
    }
    json_decref(doc);
    return s;
}

/* GET /echo on c with a Cookie line; the Cookie the origin got (NULL: none). */
static const char *h1_echo_cookie(struct tbt_tls *c, const char *tb, const char *host,
                                  const char *cookie)
{
    struct tbt_http_response r = {0};
    const char *v;

    tbt_drive_h1_get(&px, c, tb, host, "/echo", tbt_fmt("Cookie: %s\r\n", cookie), &r);
    cr_assert_eq(r.status, 200, "status %d: %s; %s", r.status, (const char *)r.body,
                 tbt_log_tail(&px.proc));
    v = origin_header((const char *)r.body, r.body_len, "cookie");
    tbt_http_response_dispose(&r);
    return v;
}

/* got is evaluated once (it may be a request) */
#define EXPECT_STR(got, want, ...)                                                                 \
    do {                                                                                           \
        const char *got_ = (got), *want_ = (want);                                                 \
        cr_expect(got_ != NULL && strcmp(got_, want_) == 0, "got \"%s\", expected \"%s\": %s",     \
                  got_ != NULL ? got_ : "(none)", want_, tbt_fmt(__VA_ARGS__));                    \
    } while (0)

/* --- HTTP/2 ----------------------------------------------------------------------------------- */

static const char *h2_field(const struct tbt_h2_stream *st, const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < st->n_fields; i++)
        if (!st->fields[i].trailer && strcmp(st->fields[i].name, name) == 0 && n-- == 0)
            return st->fields[i].value;
    return NULL;
}

/* --- bound cookies ---------------------------------------------------------------------------- */

/* The Set-Cookie for session=abc, bound to key_a over HTTP/1.1, as "session=<bound>". */
static const char *bound_session_h1(struct tbt_tls *c, const char *tb)
{
    struct tbt_http_response r = {0};
    const char *s0, *s1;
    char *pair;

    tbt_drive_h1_get(&px, c, tb, "localhost", "/cookies/set?session=abc&theme=dark", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", tbt_log_tail(&px.proc));
    s0 = set_cookie(&r, 0);
    s1 = set_cookie(&r, 1);
    cr_assert_not_null(s0);
    cr_assert_not_null(s1);
    cr_expect(strncmp(s0, "session=abc~tb1.k1~", 19) == 0, "not bound: %s", s0);
    cr_expect(strlen(s0) > 19 + TB_COOKIE_TAG_LEN &&
                  strcmp(s0 + 19 + TB_COOKIE_TAG_LEN, "; Path=/; HttpOnly; Secure") == 0,
              "attributes: %s", s0);
    cr_expect_str_eq(s1, "theme=dark; Path=/; HttpOnly", "an unlisted cookie is untouched");
    pair = pair_of(s0);
    tbt_http_response_dispose(&r);
    return pair;
}

Test(companion, cookie_h1_same_key_other_key_no_tb)
{
    const char *bound, *cookie;
    char *tb_a, *tb_a2, *tb_b, *none;
    struct tbt_http_response r = {0};
    char *log;

    start();
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_a);
    bound = bound_session_h1(&conns[0], tb_a);
    cookie = tbt_fmt("%s; theme=dark", bound);

    EXPECT_STR(h1_echo_cookie(&conns[0], tb_a, "localhost", cookie), "session=abc; theme=dark",
               "same key, same connection");
    tbt_drive_h1_connect(&px, &conns[1], key_a, &tb_a2);
    EXPECT_STR(h1_echo_cookie(&conns[1], tb_a2, "localhost", cookie), "session=abc; theme=dark",
               "same key, another connection");
    tbt_drive_h1_connect(&px, &conns[2], key_b, &tb_b);
    EXPECT_STR(h1_echo_cookie(&conns[2], tb_b, "localhost", cookie), "theme=dark",
               "replayed from another key");
    tbt_drive_h1_connect(&px, &conns[3], NULL, &none);
    EXPECT_STR(h1_echo_cookie(&conns[3], NULL, "localhost", cookie), "theme=dark",
               "replayed without Token Binding");
    cr_expect_null(h1_echo_cookie(&conns[3], NULL, "localhost", bound),
                   "nothing left: no Cookie field");

    /* a client without Token Binding gets Set-Cookie as the origin sent it */
    tbt_drive_h1_get(&px, &conns[3], NULL, "localhost", "/cookies/set?session=abc", NULL, &r);
    cr_expect_str_eq(set_cookie(&r, 0), "session=abc; Path=/; HttpOnly");
    tbt_http_response_dispose(&r);

    tbt_confproxy_stop(&px);
    log = tbt_keep(tbt_confproxy_log(&px));
    cr_expect(strstr(log, " setck=1") != NULL, "access log without setck=1: %s", log);
    cr_expect(strstr(log, " ck=1/0") != NULL, "access log without ck=1/0: %s", log);
    cr_expect(strstr(log, " ck=0/1") != NULL, "access log without ck=0/1: %s", log);
    cr_expect(strstr(log, bound + 8) == NULL, "a bound value reached the log: %s", log);
    cr_expect(strstr(log, "~tb1") == NULL, "a cookie tag reached the log: %s", log);
}

Test(companion, cookie_h2_crumbs_and_across_versions)
{
    const char *set, *bound, *cookie;
    struct tbt_h2_stream *st;
    char *tb_a, *tb_b, *none, *tb_h1;

    start();
    tbt_drive_h2_connect(&px, &h2s[0], key_a, NULL, &tb_a);
    st = tbt_drive_h2_get(&px, &h2s[0], tb_a, "/cookies/set?sid=h2v&theme=dark", NULL);
    cr_assert_eq(st->status, 200, "%s", tbt_log_tail(&px.proc));
    set = h2_field(st, "set-cookie", 0);
    cr_assert_not_null(set);
    cr_expect(strncmp(set, "sid=h2v~tb1.k1~", 15) == 0, "not bound: %s", set);
    cr_expect(strstr(set, "; Secure") != NULL, "%s", set);
    EXPECT_STR(h2_field(st, "set-cookie", 1), "theme=dark; Path=/; HttpOnly", "unlisted");
    bound = pair_of(set);

    /* crumbs: one cookie field each */
    {
        const char *const extra[] = {"cookie", "theme=dark", "cookie", bound, NULL};
        st = tbt_drive_h2_get(&px, &h2s[0], tb_a, "/echo", extra);
        cr_assert_eq(st->status, 200);
        EXPECT_STR(origin_header((const char *)st->body, st->body_len, "cookie"),
                   "theme=dark; sid=h2v", "h2 crumbs, same key");
    }
    {
        const char *const extra[] = {"cookie", bound, NULL};
        tbt_drive_h2_connect(&px, &h2s[1], key_b, NULL, &tb_b);
        st = tbt_drive_h2_get(&px, &h2s[1], tb_b, "/echo", extra);
        cr_assert_eq(st->status, 200);
        cr_expect_null(origin_header((const char *)st->body, st->body_len, "cookie"),
                       "replayed from another key over h2");
        tbt_drive_h2_connect(&px, &h2s[2], NULL, NULL, &none);
        st = tbt_drive_h2_get(&px, &h2s[2], NULL, "/echo", extra);
        cr_assert_eq(st->status, 200);
        cr_expect_null(origin_header((const char *)st->body, st->body_len, "cookie"),
                       "replayed without Token Binding over h2");
    }
    /* bound to the key, not to the connection or the protocol */
    cookie = tbt_fmt("%s; x=1", bound);
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_h1);
    EXPECT_STR(h1_echo_cookie(&conns[0], tb_h1, "localhost", cookie), "sid=h2v; x=1",
               "set over h2, sent over HTTP/1.1 with the same key");
}

Test(companion, cookie_pass_policy)
{
    const char *bound;
    char *tb_a, *none;

    start();
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_a);
    bound = bound_session_h1(&conns[0], tb_a); /* bound on the default route: same key file */
    tbt_drive_h1_connect(&px, &conns[1], NULL, &none);
    EXPECT_STR(h1_echo_cookie(&conns[1], NULL, "pass.test", "session=plain; a=1"),
               "session=plain; a=1", "pass: an unbound value from a client without TB");
    EXPECT_STR(h1_echo_cookie(&conns[1], NULL, "pass.test", tbt_fmt("%s; a=1", bound)), "a=1",
               "pass: a bound value from a client without TB is still dropped");
    EXPECT_STR(h1_echo_cookie(&conns[0], tb_a, "pass.test", tbt_fmt("%s; a=1", bound)),
               "session=abc; a=1", "with TB the tag is checked as anywhere");
    EXPECT_STR(h1_echo_cookie(&conns[0], tb_a, "pass.test", "session=plain; a=1"), "a=1",
               "with TB an unbound value is dropped");
}

/* --- bound JWTs ------------------------------------------------------------------------------- */

/* A token for tbh signed by pem_key, expiring exp_in seconds from now. Kept. */
static char *jwt_for(const char *tbh, const char *pem_key, long exp_in, const char *sub)
{
    char *claims = tbt_fmt("{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld}", sub,
                           (long long)time(NULL) + exp_in, (long long)time(NULL) - 120);
    char *tok = NULL;
    int ret = tb_jwt_bind(claims, tbh, TB_JWT_ES256, (const uint8_t *)pem_key, strlen(pem_key),
                          NULL, &tok);

    cr_assert_eq(ret, 0, "tb_jwt_bind: %s", tb_strerror(ret));
    return tbt_keep(tok);
}

/* An unsigned token ("alg": "none") for tbh. */
static char *jwt_none(const char *tbh)
{
    const char *h = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    char *c = tbt_fmt("{\"sub\":\"alice\",\"exp\":%lld,\"cnf\":{\"tbh\":\"%s\"}}",
                      (long long)time(NULL) + 3600, tbh);
    char *hb = tbt_keep(malloc(256)), *cb = tbt_keep(malloc(512));

    cr_assert_gt(tb_base64url_encode((const uint8_t *)h, strlen(h), hb, 256), 0);
    cr_assert_gt(tb_base64url_encode((const uint8_t *)c, strlen(c), cb, 512), 0);
    return tbt_fmt("%s.%s.", hb, cb);
}

/* GET /echo on jwt.test with "Authorization: Bearer tok" (none when tok is NULL) and a spoofed
 * sub header; expects `status` (with the Bearer challenge for 401, whose body names `reason`).
 * Returns the sub the origin got for a 200. */
static const char *h1_jwt(struct tbt_tls *c, const char *tb, const char *tok, int status,
                          const char *reason)
{
    struct tbt_http_response r = {0};
    const char *sub = NULL;

    tbt_drive_h1_get(&px, c, tb, "jwt.test", "/echo",
                     tbt_fmt("X-Auth-Sub: admin\r\n%s%s%s", tok ? "Authorization: Bearer " : "",
                             tok ? tok : "", tok ? "\r\n" : ""),
                     &r);
    cr_expect_eq(r.status, status, "status %d, expected %d (%s): %s", r.status, status,
                 reason ? reason : "", (const char *)r.body);
    if (r.status == 200) {
        sub = origin_header((const char *)r.body, r.body_len, "x-auth-sub");
        cr_expect_not_null(origin_header((const char *)r.body, r.body_len, "authorization"));
    } else if (r.status == 401) {
        EXPECT_STR(tbt_http_header(&r, "WWW-Authenticate"), "Bearer error=\"invalid_token\"",
                   "401 challenge");
        cr_expect(reason == NULL || strstr((const char *)r.body, reason) != NULL,
                  "401 body \"%s\" does not say \"%s\"", (const char *)r.body, reason);
        cr_expect(tok == NULL || strstr((const char *)r.body, tok) == NULL, "token echoed");
        cr_expect_not(tbt_http_header_has(&r, "Connection", "close"), "a 401 keeps the connection");
    }
    tbt_http_response_dispose(&r);
    return sub;
}

Test(companion, jwt_h1)
{
    char *tb_a, *tb_b, *none;
    const char *good, *log;

    start();
    good = jwt_for(tbh_a, idp_pem, 3600, "alice");
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_a);
    EXPECT_STR(h1_jwt(&conns[0], tb_a, good, 200, NULL), "alice",
               "the verified sub replaces the spoofed one");
    /* every failure is an ordinary 401: the same connection goes on */
    h1_jwt(&conns[0], tb_a, NULL, 401, "missing");
    h1_jwt(&conns[0], tb_a, jwt_none(tbh_a), 401, "algorithm");
    h1_jwt(&conns[0], tb_a, jwt_for(tbh_a, idp_pem, -3600, "alice"), 401, "expired");
    h1_jwt(&conns[0], tb_a, jwt_for(tbh_b, idp_pem, 3600, "alice"), 401, "another key");
    h1_jwt(&conns[0], tb_a, jwt_for(tbh_a, rogue_pem, 3600, "alice"), 401, "signature");
    EXPECT_STR(h1_jwt(&conns[0], tb_a, good, 200, NULL), "alice", "still open after the 401s");
    /* the stolen token: from another key, and without Token Binding */
    tbt_drive_h1_connect(&px, &conns[1], key_b, &tb_b);
    h1_jwt(&conns[1], tb_b, good, 401, "another key");
    tbt_drive_h1_connect(&px, &conns[2], NULL, &none);
    h1_jwt(&conns[2], NULL, good, 401, "token binding");

    tbt_confproxy_stop(&px);
    log = tbt_keep(tbt_confproxy_log(&px));
    cr_expect(strstr(log, " jwt=ok") != NULL, "%s", log);
    cr_expect(strstr(log, " jwt=expired") != NULL, "%s", log);
    cr_expect(strstr(log, " jwt=mismatch") != NULL, "%s", log);
    cr_expect(strstr(log, " jwt=no_tb") != NULL, "%s", log);
    cr_expect(strstr(log, good) == NULL, "the token reached the log");
}

Test(companion, jwt_h2_401_on_the_stream_only)
{
    struct tbt_h2_stream *st;
    const char *good;
    char *tb_a;

    start();
    good = jwt_for(tbh_a, idp_pem, 3600, "bob");
    tbt_drive_h2_connect(&px, &h2s[0], key_a, "jwt.test", &tb_a);
    {
        const char *const extra[] = {"authorization", tbt_fmt("Bearer %s", good), "x-auth-sub",
                                     "root", NULL};
        st = tbt_drive_h2_get(&px, &h2s[0], tb_a, "/echo", extra);
        cr_assert_eq(st->status, 200, "%s", (const char *)st->body);
        EXPECT_STR(origin_header((const char *)st->body, st->body_len, "x-auth-sub"), "bob",
                   "h2 sub");
    }
    {
        const char *const extra[] = {
            "authorization", tbt_fmt("Bearer %s", jwt_for(tbh_a, idp_pem, -3600, "bob")), NULL};
        st = tbt_drive_h2_get(&px, &h2s[0], tb_a, "/echo", extra);
        cr_expect_eq(st->status, 401);
        EXPECT_STR(h2_field(st, "www-authenticate", 0), "Bearer error=\"invalid_token\"",
                   "h2 challenge");
        cr_expect(strstr((const char *)st->body, "expired") != NULL, "%s", (const char *)st->body);
    }
    cr_expect_not(h2s[0].goaway, "a JWT failure is not a Token Binding failure: no GOAWAY");
    {
        const char *const extra[] = {"authorization", tbt_fmt("Bearer %s", good), NULL};
        st = tbt_drive_h2_get(&px, &h2s[0], tb_a, "/echo", extra);
        cr_expect_eq(st->status, 200, "the connection goes on");
    }
}

Test(companion, jwt_from_bound_cookie)
{
    struct tbt_http_response r = {0};
    const char *tok, *set, *bound;
    char *tb_a, *tb_b;

    start();
    tok = jwt_for(tbh_a, idp_pem, 3600, "carol");
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_a);
    tbt_drive_h1_get(&px, &conns[0], tb_a, "jwtc.test", "/echo", NULL, &r);
    cr_expect_eq(r.status, 401, "no cookie yet (%d)", r.status);
    tbt_http_response_dispose(&r);
    /* a login route (here the default one, which lists "at" too) sets the token as a cookie and
     * the proxy binds it: one key file, so the tag is good on every route */
    tbt_drive_h1_get(&px, &conns[0], tb_a, "localhost", tbt_fmt("/cookies/set?at=%s", tok), NULL,
                     &r);
    cr_assert_eq(r.status, 200, "%s", (const char *)r.body);
    set = set_cookie(&r, 0);
    cr_assert_not_null(set);
    cr_assert(strncmp(set, tbt_fmt("at=%s~tb1.k1~", tok), strlen(tok) + 11) == 0, "not bound: %s",
              set);
    bound = pair_of(set);
    tbt_http_response_dispose(&r);

    tbt_drive_h1_get(&px, &conns[0], tb_a, "jwtc.test", "/echo",
                     tbt_fmt("Cookie: %s; x=1\r\n", bound), &r);
    cr_expect_eq(r.status, 200, "%s", (const char *)r.body);
    if (r.status == 200) {
        EXPECT_STR(origin_header((const char *)r.body, r.body_len, "x-auth-sub"), "carol",
                   "sub from the cookie's token");
        EXPECT_STR(origin_header((const char *)r.body, r.body_len, "cookie"),
                   tbt_fmt("at=%s; x=1", tok), "the cookie arrives without its tag");
    }
    tbt_http_response_dispose(&r);
    tbt_drive_h1_connect(&px, &conns[1], key_b, &tb_b);
    tbt_drive_h1_get(&px, &conns[1], tb_b, "jwtc.test", "/echo", tbt_fmt("Cookie: %s\r\n", bound),
                     &r);
    cr_expect_eq(r.status, 401, "the cookie replayed from another key");
    cr_expect(strstr((const char *)r.body, "missing") != NULL, "%s", (const char *)r.body);
    tbt_http_response_dispose(&r);
}

/* --- refer_token_binding ---------------------------------------------------------------------- */

/* The Include-Referer-Token-Binding-ID values of GET host target over HTTP/1.1 (TB): how many. */
static size_t refer_count(struct tbt_tls *c, const char *tb, const char *host, const char *target,
                          int status)
{
    struct tbt_http_response r = {0};
    size_t n;

    tbt_drive_h1_get(&px, c, tb, host, target, NULL, &r);
    cr_expect_eq(r.status, status, "%s %s", host, target);
    n = tbt_http_header_count(&r, "Include-Referer-Token-Binding-ID");
    if (n > 0)
        EXPECT_STR(tbt_http_header(&r, "Include-Referer-Token-Binding-ID"), "true", "%s", target);
    tbt_http_response_dispose(&r);
    return n;
}

Test(companion, refer_token_binding_on_redirects_only)
{
    struct tbt_h2_stream *st;
    char *tb_a, *tb_h2;

    start();
    tbt_drive_h1_connect(&px, &conns[0], key_a, &tb_a);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/302", 302), 1);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/301", 301), 1);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/307", 307), 0,
                 "draft-balfanz asks on 301 and 302 only");
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/303", 303), 0);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/200", 200), 0);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/status/404", 404), 0);
    cr_expect_eq(refer_count(&conns[0], tb_a, "refer.test", "/redirect?to=/echo", 302), 1,
                 "the origin's own header is not doubled");
    cr_expect_eq(refer_count(&conns[0], tb_a, "localhost", "/status/302", 302), 0,
                 "a route without refer_token_binding");
    tbt_drive_h2_connect(&px, &h2s[0], key_a, "refer.test", &tb_h2);
    st = tbt_drive_h2_get(&px, &h2s[0], tb_h2, "/status/301", NULL);
    cr_expect_eq(st->status, 301);
    EXPECT_STR(h2_field(st, "include-referer-token-binding-id", 0), "true", "h2 redirect");
}
