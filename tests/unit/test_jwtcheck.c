/*
 * jwtcheck (src/proxy/jwtcheck.c) through the request edit of exchange.c, on hand-made heads: a
 * valid bound token forwarded with its sub in the route's header, and 401 with the right outcome
 * for each way a token fails: no Token Binding, missing, malformed, "none", another algorithm
 * (HS256 MACed with the public key's PEM bytes: algorithm confusion), wrong key, expired, not yet
 * valid (and the leeway), bound to another TBID, not bound at all (no cnf), wrong issuer. The
 * Authorization field's forms (scheme case, spaces, other schemes, two fields), the cookie
 * source (through a bound cookie: the token is read after the cookie tag is removed; quoted),
 * and the sub header: stripped from every request of the route whatever its case, set only from
 * verified claims.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/pem.h>

#include "exchange.h"
#include "heads.h"
#include "jwtcheck.h"
#include "keys.h"
#include "tb/tb.h"

#define NOW 1700000000LL
#define SECRET "0123456789abcdef0123456789abcdef-hmac"
#define K1 "k1 ERERERERERERERERERERERERERERERERERERERERERE=\n"

static char *pub_a; /* PEM public key of TBT_PEM_P256_A */
static struct tb_jwt_keys *keys_a, *keys_secret;
static struct tb_cookie_keyring *kr;
static char tbh_a[TB_TBH_LEN + 1], tbh_b[TB_TBH_LEN + 1];
static struct tbp_jwt_route jr;
static struct tbp_route route;

static char *public_pem(const char *priv)
{
    EVP_PKEY *k = tbt_key_load(priv);
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    cr_assert(b != NULL && PEM_write_bio_PUBKEY(b, k) == 1);
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(k);
    return out;
}

static void setup(void)
{
    char err[256] = "";

    pub_a = public_pem(TBT_PEM_P256_A);
    cr_assert_eq(tb_jwt_keys_parse_public(pub_a, strlen(pub_a), &keys_a, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(tb_jwt_keys_parse_secret((const uint8_t *)SECRET, strlen(SECRET), &keys_secret,
                                          err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(tb_cookie_keyring_parse(K1, strlen(K1), &kr, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(tb_tbh((const uint8_t *)"id-a", 4, tbh_a, sizeof(tbh_a)), TB_TBH_LEN);
    cr_assert_eq(tb_tbh((const uint8_t *)"id-b", 4, tbh_b, sizeof(tbh_b)), TB_TBH_LEN);
    memset(&jr, 0, sizeof(jr));
    jr.from = TBP_JWT_FROM_AUTHORIZATION;
    jr.keys = keys_a;
    jr.algs = TB_JWT_ES256;
    jr.leeway_s = 60;
    jr.sub_header = "X-User";
    memset(&route, 0, sizeof(route));
    route.host = "*";
    route.prefix = "/";
    route.prefix_len = 1;
    route.jwt = &jr;
}

static void teardown(void)
{
    tb_jwt_keys_free(keys_a);
    tb_jwt_keys_free(keys_secret);
    tb_cookie_keyring_free(kr);
    free(pub_a);
}

TestSuite(jwtcheck, .init = setup, .fini = teardown, .timeout = 30);

/* --- tokens ----------------------------------------------------------------------------------- */

/* Claims with exp and nbf relative to NOW, sub and iss (NULL: left out). malloc'd. */
static char *claims(long exp_in, long nbf_in, const char *sub, const char *iss)
{
    char *c = NULL;

    cr_assert_gt(asprintf(&c, "{\"exp\":%lld,\"nbf\":%lld%s%s%s%s%s%s}", NOW + exp_in, NOW + nbf_in,
                          sub ? ",\"sub\":\"" : "", sub ? sub : "", sub ? "\"" : "",
                          iss ? ",\"iss\":\"" : "", iss ? iss : "", iss ? "\"" : ""),
                 0);
    return c;
}

/* tb_jwt_bind: the claims (freed here) bound to tbh, signed by key. */
static char *token(char *cl, const char *tbh, enum tb_jwt_alg alg, const char *key, size_t key_len)
{
    char *tok = NULL;
    int ret = tb_jwt_bind(cl, tbh, alg, (const uint8_t *)key, key_len, NULL, &tok);

    cr_assert_eq(ret, 0, "tb_jwt_bind: %s", tb_strerror(ret));
    free(cl);
    return tok;
}

static char *es256(char *cl, const char *tbh)
{
    return token(cl, tbh, TB_JWT_ES256, TBT_PEM_P256_A, strlen(TBT_PEM_P256_A));
}

/* A token signed by libjwt directly, with no cnf at all. */
static char *unbound_token(void)
{
    jwt_t *j = NULL;
    char *cl = claims(3600, 0, "alice", NULL), *out, *tok;

    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, cl), 0);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)TBT_PEM_P256_A,
                             (int)strlen(TBT_PEM_P256_A)),
                 0);
    cr_assert_not_null(out = jwt_encode_str(j));
    tok = strdup(out);
    free(out); /* libjwt 1.10 allocates with malloc */
    jwt_free(j);
    free(cl);
    return tok;
}

/* base64url of s, no padding (for hand-made tokens). */
static char *b64(const char *s)
{
    size_t cap = tb_base64url_encoded_len(strlen(s)) + 1;
    char *out = malloc(cap);

    cr_assert(out != NULL && tb_base64url_encode((const uint8_t *)s, strlen(s), out, cap) > 0);
    return out;
}

/* Runs the request edit for head t with tbh; returns the status (0: forwarded) and, for 0, the
 * sub header's value (NULL when absent) in *sub. */
static int run(struct tbt_head *t, const char *tbh, const char **sub, enum tbp_jwt_outcome *o)
{
    const struct tbp_http_head *out;
    struct tbp_head_edit e = {0};
    struct tbp_companion co = {0};
    int status = tbp_exchange_request_edit(&route, kr, tbh, NOW, &t->h, &e, &out, &co);

    cr_assert(co.jwt);
    *o = co.jwt_outcome;
    if (sub != NULL)
        *sub = NULL;
    if (status == 0) {
        cr_assert_eq(out, &e.head);
        cr_expect_leq(tbt_head_count(out, "x-user"), 1);
        if (sub != NULL)
            *sub = tbt_head_field(out, "x-user");
        cr_expect_not_null(tbt_head_field(out, "authorization"),
                           "the token still goes to the origin");
    }
    tbp_head_edit_dispose(&e);
    return status;
}

/* The outcome for "Authorization: Bearer tok" (tok freed here) from tbh. */
static enum tbp_jwt_outcome check_bearer(char *tok, const char *tbh)
{
    enum tbp_jwt_outcome o;
    struct tbt_head t;
    char *auth = NULL;
    int status;

    cr_assert_gt(asprintf(&auth, "Bearer %s", tok), 0);
    tbt_head_req(&t, "Authorization", auth, NULL);
    status = run(&t, tbh, NULL, &o);
    cr_expect_eq(status, o == TBP_JWT_OK ? 0 : 401, "status %d for outcome %s", status,
                 tbp_jwt_outcome_name(o));
    free(auth);
    free(tok);
    return o;
}

#define EXPECT_OUTCOME(got, want)                                                                  \
    cr_expect_eq((got), (want), "outcome %s, expected %s", tbp_jwt_outcome_name(got),              \
                 tbp_jwt_outcome_name(want))

/* --- valid ------------------------------------------------------------------------------------ */

Test(jwtcheck, valid_with_sub)
{
    char *tok = es256(claims(3600, -10, "alice", NULL), tbh_a), *auth = NULL;
    enum tbp_jwt_outcome o;
    const char *sub;
    struct tbt_head t;

    cr_assert_gt(asprintf(&auth, "Bearer %s", tok), 0);
    tbt_head_req(&t, "Authorization", auth, "Accept", "*/*", NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 0);
    EXPECT_OUTCOME(o, TBP_JWT_OK);
    cr_expect_str_eq(sub, "alice");
    free(auth);
    free(tok);
}

Test(jwtcheck, sub_header_spoofing)
{
    char *with = es256(claims(3600, 0, "alice", NULL), tbh_a);
    char *without = es256(claims(3600, 0, NULL, NULL), tbh_a), *auth = NULL;
    enum tbp_jwt_outcome o;
    const char *sub;
    struct tbt_head t;

    cr_assert_gt(asprintf(&auth, "Bearer %s", with), 0);
    tbt_head_req(&t, "x-user", "admin", "Authorization", auth, "X-USER", "root", NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 0);
    cr_expect_str_eq(sub, "alice", "only the verified sub, once");
    free(auth);
    cr_assert_gt(asprintf(&auth, "Bearer %s", without), 0);
    tbt_head_req(&t, "X-User", "admin", "Authorization", auth, NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 0);
    cr_expect_null(sub, "no sub in the token: no header, and the client's is gone");
    free(auth);
    free(with);
    free(without);
}

Test(jwtcheck, sub_header_stripped_on_failure_too)
{
    struct tbp_head_edit e = {0};
    const struct tbp_http_head *out;
    struct tbp_companion co = {0};
    struct tbt_head t;

    tbt_head_req(&t, "X-User", "admin", NULL);
    cr_expect_eq(tbp_jwt_request(&jr, tbh_a, NOW, (tbp_head_edit_init(&e, &t.h, 1, 256), &e)),
                 TBP_JWT_MISSING);
    cr_expect_eq(tbt_head_count(&e.head, "x-user"), 0);
    tbp_head_edit_dispose(&e);
    cr_expect_eq(tbp_exchange_request_edit(&route, kr, tbh_a, NOW, &t.h, &e, &out, &co), 401);
    tbp_head_edit_dispose(&e);
}

Test(jwtcheck, leeway)
{
    EXPECT_OUTCOME(check_bearer(es256(claims(-30, -100, "a", NULL), tbh_a), tbh_a), TBP_JWT_OK);
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 30, "a", NULL), tbh_a), tbh_a), TBP_JWT_OK);
    jr.leeway_s = 0;
    EXPECT_OUTCOME(check_bearer(es256(claims(-30, -100, "a", NULL), tbh_a), tbh_a),
                   TBP_JWT_EXPIRED);
}

Test(jwtcheck, hs256_with_secret)
{
    jr.keys = keys_secret;
    jr.algs = TB_JWT_HS256;
    EXPECT_OUTCOME(
        check_bearer(token(claims(3600, 0, "a", NULL), tbh_a, TB_JWT_HS256, SECRET, strlen(SECRET)),
                     tbh_a),
        TBP_JWT_OK);
}

/* --- 401 for every reason --------------------------------------------------------------------- */

Test(jwtcheck, expired)
{
    EXPECT_OUTCOME(check_bearer(es256(claims(-3600, -7200, "a", NULL), tbh_a), tbh_a),
                   TBP_JWT_EXPIRED);
}

Test(jwtcheck, not_yet_valid)
{
    EXPECT_OUTCOME(check_bearer(es256(claims(7200, 3600, "a", NULL), tbh_a), tbh_a),
                   TBP_JWT_NOTYET);
}

Test(jwtcheck, other_tbid)
{
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 0, "a", NULL), tbh_b), tbh_a), TBP_JWT_MISMATCH);
}

Test(jwtcheck, missing_cnf)
{
    EXPECT_OUTCOME(check_bearer(unbound_token(), tbh_a), TBP_JWT_UNBOUND);
}

Test(jwtcheck, wrong_key)
{
    EXPECT_OUTCOME(check_bearer(token(claims(3600, 0, "a", NULL), tbh_a, TB_JWT_ES256,
                                      TBT_PEM_P256_B, strlen(TBT_PEM_P256_B)),
                                tbh_a),
                   TBP_JWT_SIGNATURE);
}

Test(jwtcheck, algorithm_confusion)
{
    /* HS256 with the public key's PEM bytes as the secret: anyone holding the public key could
     * make these */
    EXPECT_OUTCOME(
        check_bearer(token(claims(3600, 0, "a", NULL), tbh_a, TB_JWT_HS256, pub_a, strlen(pub_a)),
                     tbh_a),
        TBP_JWT_ALG);
    /* and an algorithm the route does not allow, even with the right kind of key */
    jr.keys = keys_secret;
    jr.algs = TB_JWT_HS256;
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 0, "a", NULL), tbh_a), tbh_a), TBP_JWT_ALG);
}

Test(jwtcheck, alg_none)
{
    char *h = b64("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *cl = NULL, *p, *tok = NULL;

    cr_assert_gt(
        asprintf(&cl, "{\"exp\":%lld,\"sub\":\"a\",\"cnf\":{\"tbh\":\"%s\"}}", NOW + 3600, tbh_a),
        0);
    p = b64(cl);
    cr_assert_gt(asprintf(&tok, "%s.%s.", h, p), 0);
    EXPECT_OUTCOME(check_bearer(tok, tbh_a), TBP_JWT_ALG);
    free(h);
    free(cl);
    free(p);
}

Test(jwtcheck, issuer)
{
    jr.issuer = "https://idp.example";
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 0, "a", "https://idp.example"), tbh_a), tbh_a),
                   TBP_JWT_OK);
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 0, "a", "https://evil.example"), tbh_a), tbh_a),
                   TBP_JWT_CLAIM);
    EXPECT_OUTCOME(check_bearer(es256(claims(3600, 0, "a", NULL), tbh_a), tbh_a), TBP_JWT_CLAIM);
}

Test(jwtcheck, malformed)
{
    EXPECT_OUTCOME(check_bearer(strdup("not-a-jwt"), tbh_a), TBP_JWT_PARSE);
    EXPECT_OUTCOME(check_bearer(strdup("a.b.c"), tbh_a), TBP_JWT_PARSE);
}

Test(jwtcheck, no_token_binding)
{
    char *tok = es256(claims(3600, 0, "a", NULL), tbh_a);

    EXPECT_OUTCOME(check_bearer(strdup(tok), NULL), TBP_JWT_NO_TB);
    EXPECT_OUTCOME(check_bearer(tok, ""), TBP_JWT_NO_TB);
}

Test(jwtcheck, every_truncation_refused)
{
    char *tok = es256(claims(3600, 0, "a", NULL), tbh_a);
    size_t n, len = strlen(tok);

    for (n = 1; n < len; n++) {
        char *cut = strndup(tok, n);
        enum tbp_jwt_outcome o = check_bearer(cut, tbh_a);
        cr_expect_neq(o, TBP_JWT_OK, "a token cut to %zu bytes passed", n);
    }
    EXPECT_OUTCOME(check_bearer(tok, tbh_a), TBP_JWT_OK);
}

/* --- Authorization forms ---------------------------------------------------------------------- */

static enum tbp_jwt_outcome with_auth(const char *a1, const char *a2)
{
    enum tbp_jwt_outcome o;
    struct tbt_head t;

    if (a1 == NULL)
        tbt_head_req(&t, "Accept", "*/*", NULL);
    else if (a2 == NULL)
        tbt_head_req(&t, "authorization", a1, NULL);
    else
        tbt_head_req(&t, "Authorization", a1, "AUTHORIZATION", a2, NULL);
    (void)run(&t, tbh_a, NULL, &o);
    return o;
}

Test(jwtcheck, authorization_forms)
{
    char *tok = es256(claims(3600, 0, "a", NULL), tbh_a), *v = NULL;

    EXPECT_OUTCOME(with_auth(NULL, NULL), TBP_JWT_MISSING);
    cr_assert_gt(asprintf(&v, "bEaReR   %s \t", tok), 0);
    EXPECT_OUTCOME(with_auth(v, NULL), TBP_JWT_OK);
    EXPECT_OUTCOME(with_auth(v, v), TBP_JWT_PARSE);
    free(v);
    cr_assert_gt(asprintf(&v, "Bearer%s", tok), 0);
    EXPECT_OUTCOME(with_auth(v, NULL), TBP_JWT_MISSING);
    free(v);
    EXPECT_OUTCOME(with_auth("Basic YWxhZGRpbjpvcGVuc2VzYW1l", NULL), TBP_JWT_MISSING);
    EXPECT_OUTCOME(with_auth("Bearer", NULL), TBP_JWT_PARSE);
    EXPECT_OUTCOME(with_auth("Bearer   ", NULL), TBP_JWT_PARSE);
    free(tok);
}

/* --- from a cookie ---------------------------------------------------------------------------- */

Test(jwtcheck, from_bound_cookie)
{
    static const char *names[] = {"at"};
    char *tok = es256(claims(3600, 0, "carol", NULL), tbh_a), *c = NULL;
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    const struct tbp_http_head *out;
    struct tbp_head_edit e = {0};
    struct tbp_companion co = {0};
    struct tbt_head t;

    jr.from = TBP_JWT_FROM_COOKIE;
    jr.cookie = "at";
    route.bind_cookies = names;
    route.n_bind_cookies = 1;
    cr_assert_gt(tb_cookie_bind(kr, "at", 2, tok, strlen(tok), tbh_a, suffix, sizeof(suffix)), 0);
    cr_assert_gt(asprintf(&c, "x=1; at=%s%s", tok, suffix), 0);
    tbt_head_req(&t, "Cookie", c, NULL);
    cr_assert_eq(tbp_exchange_request_edit(&route, kr, tbh_a, NOW, &t.h, &e, &out, &co), 0);
    EXPECT_OUTCOME(co.jwt_outcome, TBP_JWT_OK);
    cr_expect_str_eq(tbt_head_field(out, "x-user"), "carol");
    cr_expect(strstr(tbt_head_field(out, "cookie"), "~tb1") == NULL,
              "the tag never reaches the origin");
    cr_expect_eq(co.ck.n[TBP_CK_OK], 1);
    tbp_head_edit_dispose(&e);

    /* the same cookie from another TBID: dropped, so no token at all */
    memset(&co, 0, sizeof(co));
    cr_expect_eq(tbp_exchange_request_edit(&route, kr, tbh_b, NOW, &t.h, &e, &out, &co), 401);
    EXPECT_OUTCOME(co.jwt_outcome, TBP_JWT_MISSING);
    cr_expect_eq(co.ck.n[TBP_CK_MISMATCH], 1);
    tbp_head_edit_dispose(&e);
    free(c);
    free(tok);
}

Test(jwtcheck, from_plain_cookie_quoted)
{
    char *tok = es256(claims(3600, 0, "dave", NULL), tbh_a), *c = NULL;
    enum tbp_jwt_outcome o;
    const char *sub;
    struct tbt_head t;

    jr.from = TBP_JWT_FROM_COOKIE;
    jr.cookie = "at";
    cr_assert_gt(asprintf(&c, "at=\"%s\"", tok), 0);
    tbt_head_req(&t, "Cookie", "a=1", "Cookie", c, "Authorization", "Bearer ignored", NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 0);
    EXPECT_OUTCOME(o, TBP_JWT_OK);
    cr_expect_str_eq(sub, "dave");
    tbt_head_req(&t, "Cookie", "at=\"\"", "Authorization", "Bearer x", NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 401);
    EXPECT_OUTCOME(o, TBP_JWT_MISSING);
    tbt_head_req(&t, "Cookie", "other=1", "Authorization", "Bearer x", NULL);
    cr_expect_eq(run(&t, tbh_a, &sub, &o), 401);
    EXPECT_OUTCOME(o, TBP_JWT_MISSING);
    free(c);
    free(tok);
}

/* --- names ------------------------------------------------------------------------------------ */

Test(jwtcheck, outcome_names_and_mapping)
{
    static const char *const want[TBP_JWT_N] = {
        "ok",      "no_tb",         "missing", "parse",   "alg",      "unknown_key", "signature",
        "expired", "not_yet_valid", "claim",   "unbound", "mismatch", "error"};
    int i;

    for (i = 0; i < TBP_JWT_N; i++) {
        const char *text = tbp_jwt_outcome_text((enum tbp_jwt_outcome)i);
        cr_expect_str_eq(tbp_jwt_outcome_name((enum tbp_jwt_outcome)i), want[i]);
        cr_expect(text != NULL && strlen(text) < 128, "401 body text for %s", want[i]);
    }
    /* every outcome after the first three is tb_strerror's name for its error */
    cr_expect_str_eq(tbp_jwt_outcome_name(tbp_jwt_outcome_of(TB_EEXPIRED)),
                     tb_strerror(TB_EEXPIRED));
    cr_expect_str_eq(tbp_jwt_outcome_name(tbp_jwt_outcome_of(TB_EKEYID)), tb_strerror(TB_EKEYID));
    cr_expect_str_eq(tbp_jwt_outcome_name(tbp_jwt_outcome_of(TB_ENOTYET)), tb_strerror(TB_ENOTYET));
    cr_expect_str_eq(tbp_jwt_outcome_name(tbp_jwt_outcome_of(TB_ESIGNATURE)),
                     tb_strerror(TB_ESIGNATURE));
    cr_expect_eq(tbp_jwt_outcome_of(TB_ENOMEM), TBP_JWT_ERROR);
}
