/*
 * libFuzzer target: the proxy's HTTP/1.1 path beyond the parser, i.e. what the origin (and the
 * client) finally get. The wire bytes are parsed by h1parse as a pipelined stream; every head it
 * delivers goes through the same steps as in the daemon (exchange.c, h1.c), with a fixed
 * configuration built here:
 *   request:  route (tbp_config_route on Host and path, or a route named by the mode), the
 *             companion edits (tbp_exchange_request_edit: bound cookies, the JWT check), the head
 *             rewrite toward the origin (tbp_forward_request_head), and for a chunked body its
 *             trailers (tbp_forward_chunked_end);
 *   response: the companion edits (tbp_exchange_response_edit: Set-Cookie binding, the referral
 *             header on redirects) and the head toward the client (tbp_forward_response_head).
 * Every head written is parsed again by a fresh h1parse, which must see exactly one message
 * (nothing smuggled, nothing left over) and the fields the proxy decided on.
 *
 * Input: byte 0 = mode, byte 1 = options, the rest = the bytes on the wire.
 *   mode bit 0      the connection has Token Binding (provided ID with the fixed tbh)
 *   mode bit 1      the peer is a trusted proxy
 *   mode bits 2-4   route: 1..5 = routes[0..4], otherwise the route table decides
 *   mode bit 5      the bytes are responses from the origin, not requests
 *   mode bit 6      keep-alive (toward the origin; toward the client for responses)
 *   mode bit 7      requests: a referred and an "other" ID too; responses: answers to HEAD
 *   options bit 0   small parser limits (512 bytes, 12 fields)
 *   options bit 1   the client address is IPv6
 *
 * Routes (first match wins in the table):
 *   [0] "*" "/api/": JWT from Authorization (JWKS: ES256, RS256; issuer and audience), sub
 *       header X-Auth-Sub
 *   [1] "*" "/c/": binds cookies "session" and "tok"; JWT from cookie "tok" (HS256 secret), sub
 *       header X-User
 *   [2] "plain.test" "/": no companion setting
 *   [3] "*.example.com" "/": binds every cookie, unbound_cookies = pass, refer_token_binding
 *   [4] "*" "/": binds "session" and "id", unbound_cookies = drop
 * Keys, tbh and clock are those of fuzz_cookie and fuzz_jwt (tests/data/jwt), so their seeds'
 * bound cookies and tokens, pasted into requests, reach the accepting paths.
 *
 * Oracles (abort on violation), beyond the sanitizers:
 *  - request edit: 0 or 401; 401 only on a JWT route with an outcome; a JWT route never admits
 *    a request without Token Binding; the cookie tally adds up; listed cookies forwarded are
 *    exactly the kept ones, each the untagged value of a cookie that verified (Token Binding) or
 *    one without a tag (pass); unlisted cookies all pass;
 *  - request head: 0 or TBP_EFWD_INVALID (only without a Host value), never a buffer error, and
 *    the buffer unchanged on failure; parsed again: one request, all bytes consumed, same method
 *    and target, one Host (the client's), the framing and Connection decided, no client Token
 *    Binding or hop-by-hop field under any spelling ('_' for '-' included), the forwarding fields
 *    of this hop only (untrusted peer), at most one Cookie and one sub header, and every other
 *    client field passed in order, byte for byte;
 *  - trailers: "0" + fields + blank line that ends a chunked body exactly, no banned field;
 *  - response: the edit succeeds; as many Set-Cookie fields as the origin sent, the listed ones
 *    bound to the tbh (and Secure) with Token Binding, untouched without; the referral header
 *    exactly when due; the head toward the client parses again as one response with the same
 *    status and the framing decided.
 *
 * FUZZ_REQUEST_TRACE=1 in the environment prints one line per head (route, outcome, sizes) to
 * stderr: to check that seeds reach what they were written for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "cookies.h"
#include "exchange.h"
#include "forward.h"
#include "h1parse.h"
#include "jwtcheck.h"
#include "tb/tb.h"

#define NOW 1700000100
#define MAX_PAIRS 64 /* cookie pairs checked one by one (quadratic) */

static const char keys_text[] = "k1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n"
                                "k2 AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI\n"
                                "k3 AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM\n";
static const char tbh[] = "3-sBN79mNmcCh-jFk_PFsyrAvN8zRGnLCL8Y9acIsPw";
static const char provided_id[] = "AgBBBBp2M1J4aW5nX2ZvcmJpZGRlbl9jaGFyc19hcmVfbm90X2hlcmU";
static const char referred_id[] = "AgBBBHJlZmVycmVk";
static const char *const other_ids[] = {"05.AgBBBG90aGVy"};

static const char jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec-1\",\"use\":\"sig\",\"alg\":\"ES"
    "256\",\"x\":\"hdEE34wOZ5WnsSJzqCCC6B1WDxUK72Sb-q8v3-2_yp0\",\"y\":\"GVLT3M9piYyeZmCBDGzxiV"
    "aQHjYxTAuFpCD7kbKxLuw\"},{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS25"
    "6\",\"n\":\"uv7E6HlGQwtD_C4jHiL5Z_n9pZvyVyUWmr5r3T9VdWHPk_78KstUahnJ4zZROYoTQlOetbsiUij795"
    "ZUwdXmwADFkwce07yfNkGTcnvLeKnCWLVkFiZkU5Q1a_6AVhw2JNItNg859PjnyrR-_A7ikr_c4bW1Xay8gat0F1Ov"
    "wPKwzEUVo_thQxUg1A_ohlV0kQJvHWWeKFBMnZvP563-JV5fID_1DCkMtr_mm3qNsaQrFuuAm1ErqIDTan96x4KB4a"
    "SuyBBpBBSt5RnDRRyXgt2lMKh0h3kJV7uVTImhVguGlEywoHvPtoMx7gaknqZg8H2-ansIfqDlCukis5IQgQ\",\"e"
    "\":\"AQAB\"}]}";
static const char secret[] = "vSEA1uzQyoTfjfkqvLXVD9gLEiJrDGArPnfxLS_qOCT2UcGT";

/* Names the proxy manages on requests (forward.h), compared with '_' read as '-'. */
static const char *const tb_names[] = {
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
    "sec-token-binding-context",
    "token-binding",
    "sec-token-binding",
    NULL,
};
static const char *const hop_names[] = {
    "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade", NULL,
};
/* Added or rebuilt by the proxy: left out when comparing the client's fields in order. */
static const char *const written_names[] = {
    "host",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "connection",
    "content-length",
    "transfer-encoding",
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
    NULL,
};

/* --- the fixed configuration -------------------------------------------------------------- */

static struct tb_cookie_keyring *kr;
static struct tbp_upstream upstream = {.name = "app"};
static const char *cookies_c[] = {"session", "tok"};
static const char *cookies_root[] = {"session", "id"};
static struct tbp_jwt_route jwt_api, jwt_cookie;
static struct tbp_route routes[5];
static struct tbp_config cfg;

static void init(void)
{
    struct tb_jwt_keys *k_jwks = NULL, *k_secret = NULL;

    CHECK(tb_cookie_keyring_parse(keys_text, sizeof(keys_text) - 1, &kr, NULL, 0) == 0);
    CHECK(tb_jwt_keys_parse_public(jwks, sizeof(jwks) - 1, &k_jwks, NULL, 0) == 0);
    CHECK(tb_jwt_keys_parse_secret((const uint8_t *)secret, sizeof(secret) - 1, &k_secret, NULL,
                                   0) == 0);
    jwt_api = (struct tbp_jwt_route){.from = TBP_JWT_FROM_AUTHORIZATION,
                                     .keys = k_jwks,
                                     .algs = TB_JWT_ES256 | TB_JWT_RS256,
                                     .issuer = "https://idp.example",
                                     .audience = "https://rp.example",
                                     .leeway_s = 60,
                                     .sub_header = "X-Auth-Sub"};
    jwt_cookie = (struct tbp_jwt_route){.from = TBP_JWT_FROM_COOKIE,
                                        .cookie = "tok",
                                        .keys = k_secret,
                                        .algs = TB_JWT_HS256,
                                        .sub_header = "X-User"};
    routes[0] = (struct tbp_route){
        .host = "*", .prefix = "/api/", .prefix_len = 5, .upstream = &upstream, .jwt = &jwt_api};
    routes[1] = (struct tbp_route){.host = "*",
                                   .prefix = "/c/",
                                   .prefix_len = 3,
                                   .upstream = &upstream,
                                   .n_bind_cookies = 2,
                                   .bind_cookies = cookies_c,
                                   .jwt = &jwt_cookie};
    routes[2] = (struct tbp_route){
        .host = "plain.test", .prefix = "/", .prefix_len = 1, .upstream = &upstream};
    routes[3] = (struct tbp_route){.host = "*.example.com",
                                   .prefix = "/",
                                   .prefix_len = 1,
                                   .upstream = &upstream,
                                   .bind_all_cookies = 1,
                                   .unbound_cookies = TBP_UNBOUND_PASS,
                                   .refer_token_binding = 1};
    routes[4] = (struct tbp_route){.host = "*",
                                   .prefix = "/",
                                   .prefix_len = 1,
                                   .upstream = &upstream,
                                   .n_bind_cookies = 2,
                                   .bind_cookies = cookies_root,
                                   .unbound_cookies = TBP_UNBOUND_DROP};
    cfg.routes = routes;
    cfg.n_routes = sizeof(routes) / sizeof(routes[0]);
}

/* --- small helpers ------------------------------------------------------------------------ */

static int trace = -1; /* FUZZ_REQUEST_TRACE set */

struct fz {
    struct tbp_h1_parser p;
    int tb, trusted, route_sel, keep_alive, extra, ipv6;
    unsigned heads;
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* name equals `lower_name` with '_' read as '-' (how CGI-style origins see it) */
static int alias_eq(struct tbp_str name, const char *lower_name)
{
    size_t i;

    if (name.len != strlen(lower_name))
        return 0;
    for (i = 0; i < name.len; i++) {
        char c = name.p[i] == '_' ? '-' : lower(name.p[i]);
        if (c != lower_name[i])
            return 0;
    }
    return 1;
}

static int in_list(struct tbp_str name, const char *const *list, int alias)
{
    for (; *list != NULL; list++)
        if (alias ? alias_eq(name, *list) : tbp_http_name_eq(name, *list))
            return 1;
    return 0;
}

static int str_eq(struct tbp_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.p, b, a.len) == 0;
}

static int slice_eq(struct tbp_str a, struct tbp_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int has_ctl(struct tbp_str s)
{
    size_t i;

    for (i = 0; i < s.len; i++)
        if (((unsigned char)s.p[i] < 0x20 && s.p[i] != '\t') || s.p[i] == 0x7f)
            return 1;
    return 0;
}

static int is_forwarding(struct tbp_str name)
{
    return (name.len > 12 && alias_eq((struct tbp_str){name.p, 12}, "x-forwarded-")) ||
           alias_eq(name, "forwarded") || alias_eq(name, "x-real-ip");
}

/* Does a comma-separated token of a Connection field of h equal `name` exactly (ci), or, when
 * name holds '_', its '-' spelling? */
static int named_by_connection(const struct tbp_http_head *h, struct tbp_str name)
{
    size_t i;

    for (i = 0; i < h->n_headers; i++) {
        const char *p, *end;
        if (!tbp_http_name_eq(h->headers[i].name, "connection"))
            continue;
        p = h->headers[i].value.p;
        end = p + h->headers[i].value.len;
        while (p < end) {
            const char *tok, *te;
            size_t k;
            /* forward.c reads '_' as '-' in names of up to 256 bytes */
            int exact = 1, alias = name.len <= 256 && memchr(name.p, '_', name.len) != NULL;
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            for (tok = p; p < end && *p != ','; p++)
                ;
            for (te = p; te > tok && (te[-1] == ' ' || te[-1] == '\t'); te--)
                ;
            if ((size_t)(te - tok) != name.len || name.len == 0)
                continue;
            for (k = 0; k < name.len; k++) {
                char a = lower(tok[k]), b = lower(name.p[k]);
                exact &= a == b;
                alias &= a == (b == '_' ? '-' : b);
            }
            if (exact || alias)
                return 1;
        }
    }
    return 0;
}

/* Does the proxy drop the client's field `name` on the way to the origin (forward.h)? */
static int dropped(const struct tbp_http_head *h, struct tbp_str name, int trusted)
{
    if (in_list(name, tb_names, 1) || in_list(name, hop_names, 1) || alias_eq(name, "host") ||
        alias_eq(name, "content-length") || named_by_connection(h, name))
        return 1;
    if (is_forwarding(name))
        return !trusted || alias_eq(name, "x-forwarded-for") || alias_eq(name, "forwarded");
    return 0;
}

/* A re-parse of bytes the proxy wrote: exactly one message, all bytes consumed. */
struct reparse {
    struct fz *f;
    int (*check)(void *ctx, const struct tbp_http_head *h);
    void *ctx;
    unsigned heads, ends;
    size_t n_trailers, trailers_max;
};

static int re_head(void *ctx, const struct tbp_http_head *h)
{
    struct reparse *r = ctx;

    r->heads++;
    return r->check != NULL ? r->check(r->ctx, h) : 0;
}

static int re_end(void *ctx)
{
    struct reparse *r = ctx;

    r->ends++;
    return 0;
}

static const struct tbp_h1_callbacks re_cb = {re_head, NULL, re_end};

static size_t count_lines(const char *p, size_t n)
{
    size_t i, lines = 1;

    for (i = 0; i < n; i++)
        lines += p[i] == '\n';
    return lines;
}

/* Parses out[0..n) as one message; returns the parser state after it (checked by the caller). */
static void reparse(const char *out, size_t n, int is_request, int no_body, struct reparse *r,
                    int *in_message)
{
    struct tbp_h1_limits lim = {n < 1024 ? 1024 : n, count_lines(out, n)};
    struct tbp_h1_parser p;
    size_t consumed = 0;

    CHECK(tbp_h1_parser_init(&p, is_request, &lim, &re_cb, r) == 0);
    if (no_body)
        tbp_h1_expect_no_body(&p);
    CHECK(tbp_h1_feed(&p, out, n, &consumed) == 0);
    CHECK(consumed == n);
    CHECK(r->heads == 1);
    *in_message = tbp_h1_in_message(&p);
    tbp_h1_parser_dispose(&p);
}

/* --- cookies ------------------------------------------------------------------------------ */

struct pair_counts {
    unsigned listed, unlisted, fields;
};

static void count_pairs(const struct tbp_route *r, const struct tbp_http_head *h,
                        struct pair_counts *c)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < h->n_headers; i++) {
        struct tb_cookie_pair pr;
        size_t pos = 0;
        if (!tbp_http_name_eq(h->headers[i].name, "cookie"))
            continue;
        c->fields++;
        while (tb_cookie_next(h->headers[i].value.p, h->headers[i].value.len, &pos, &pr)) {
            /* judged like a listed cookie: a listed name, or a nameless pair that would read as
             * one at the origin ("=session=x", "=session"), which the proxy drops */
            if (tbp_cookies_listed(r, pr.name, pr.name_len) ||
                (pr.name_len == 0 && (memchr(pr.value, '=', pr.value_len) != NULL ||
                                      tbp_cookies_listed(r, pr.value, pr.value_len))))
                c->listed++;
            else
                c->unlisted++;
        }
    }
}

/* Is there, among h's cookies, a listed one called name whose value is `value` + a valid tag for
 * tbh (tb) / exactly `value` without a tag (no tb)? */
static int came_from(const struct tbp_route *r, const struct tbp_http_head *h, int tb,
                     const struct tb_cookie_pair *out)
{
    size_t i;

    for (i = 0; i < h->n_headers; i++) {
        struct tb_cookie_pair pr;
        size_t pos = 0, orig = 0;
        if (!tbp_http_name_eq(h->headers[i].name, "cookie"))
            continue;
        while (tb_cookie_next(h->headers[i].value.p, h->headers[i].value.len, &pos, &pr)) {
            int ok;
            if (pr.name_len != out->name_len || memcmp(pr.name, out->name, pr.name_len) != 0 ||
                !tbp_cookies_listed(r, pr.name, pr.name_len))
                continue;
            if (tb) /* verified: forwarded without its suffix */
                ok = tb_cookie_check(kr, pr.name, pr.name_len, pr.value, pr.value_len, tbh,
                                     &orig) == 0;
            else /* passed: no suffix at all */
                ok = tb_cookie_split(pr.value, pr.value_len, &orig) == 0;
            if (ok && orig == out->value_len && memcmp(pr.value, out->value, orig) == 0)
                return 1;
        }
    }
    return 0;
}

static void check_cookies(const struct tbp_route *r, int tb, const struct tbp_http_head *in,
                          const struct tbp_http_head *fh, const struct tbp_companion *co)
{
    const struct tbp_cookie_tally *t = &co->ck;
    struct pair_counts ci, cf;
    unsigned i, sum = 0;
    size_t k;

    for (i = 0; i < TBP_CK_N; i++)
        sum += t->n[i];
    CHECK(sum == t->kept + t->dropped);
    CHECK(t->kept == t->n[TBP_CK_OK] + t->n[TBP_CK_PASS]);
    CHECK(t->n[TBP_CK_ERROR] == 0);
    if (tb)
        CHECK(t->n[TBP_CK_PASS] == 0 && t->n[TBP_CK_NO_TB] == 0);
    else
        CHECK(t->n[TBP_CK_OK] == 0 && t->n[TBP_CK_UNBOUND] == 0 && t->n[TBP_CK_MISMATCH] == 0 &&
              t->n[TBP_CK_KEYID] == 0);
    if (!tb && r->unbound_cookies == TBP_UNBOUND_DROP)
        CHECK(t->kept == 0);
    count_pairs(r, in, &ci);
    if (fh == in) { /* nothing was done: no Cookie field at all */
        CHECK(ci.fields == 0 && sum == 0);
        return;
    }
    count_pairs(r, fh, &cf);
    CHECK(cf.fields <= 1);
    CHECK(ci.listed == sum);
    CHECK(cf.listed == t->kept);
    CHECK(cf.unlisted == ci.unlisted);
    if (cf.listed > MAX_PAIRS || ci.listed > MAX_PAIRS)
        return;
    for (k = 0; k < fh->n_headers; k++) {
        struct tb_cookie_pair pr;
        size_t pos = 0;
        if (!tbp_http_name_eq(fh->headers[k].name, "cookie"))
            continue;
        while (tb_cookie_next(fh->headers[k].value.p, fh->headers[k].value.len, &pos, &pr))
            if (tbp_cookies_listed(r, pr.name, pr.name_len))
                CHECK(came_from(r, in, tb, &pr));
    }
}

/* --- requests ----------------------------------------------------------------------------- */

struct req_ctx {
    struct fz *f;
    const struct tbp_route *r;
    const struct tbp_http_head *fh;
    const struct tbp_fwd_info *fi;
};

static size_t count_alias(const struct tbp_http_head *h, const char *name)
{
    size_t i, n = 0;

    for (i = 0; i < h->n_headers; i++)
        n += alias_eq(h->headers[i].name, name);
    return n;
}

static void check_one(const struct tbp_http_head *g, const char *name, const char *value)
{
    const struct tbp_header *h;

    CHECK(count_alias(g, name) == (value != NULL));
    if (value != NULL) {
        h = tbp_http_find(g, name);
        CHECK(h != NULL && str_eq(h->value, value));
    }
}

/* The client's fields that pass (in order), compared with those of the head sent. */
static void check_passed(const struct req_ctx *c, const struct tbp_http_head *g)
{
    const struct tbp_http_head *fh = c->fh;
    size_t i = 0, j = 0;

    for (;;) {
        while (i < fh->n_headers && (dropped(fh, fh->headers[i].name, c->fi->peer_trusted) ||
                                     in_list(fh->headers[i].name, written_names, 0)))
            i++;
        while (j < g->n_headers && in_list(g->headers[j].name, written_names, 0))
            j++;
        if (i == fh->n_headers || j == g->n_headers)
            break;
        CHECK(slice_eq(fh->headers[i].name, g->headers[j].name));
        CHECK(slice_eq(fh->headers[i].value, g->headers[j].value));
        i++;
        j++;
    }
    CHECK(i == fh->n_headers && j == g->n_headers);
}

static int check_request_sent(void *ctx, const struct tbp_http_head *g)
{
    const struct req_ctx *c = ctx;
    const struct tbp_fwd_info *fi = c->fi;
    const struct tbp_header *h;
    size_t i;

    CHECK(g->is_request && g->version_major == 1 && g->version_minor == 1);
    CHECK(slice_eq(g->method, c->fh->method) && slice_eq(g->target, c->fh->target));
    CHECK(count_alias(g, "host") == 1 && slice_eq(tbp_http_find(g, "host")->value, fi->host));
    CHECK(g->framing == fi->framing);
    CHECK(g->framing != TBP_BODY_LENGTH || g->content_length == fi->content_length);
    CHECK(count_alias(g, "content-length") == (fi->framing == TBP_BODY_LENGTH));
    check_one(g, "transfer-encoding", fi->framing == TBP_BODY_CHUNKED ? "chunked" : NULL);
    check_one(g, "connection", fi->keep_alive ? "keep-alive" : "close");
    CHECK(g->keep_alive == (fi->keep_alive != 0));
    for (i = 1; hop_names[i] != NULL; i++)
        if (strcmp(hop_names[i], "transfer-encoding") != 0)
            CHECK(count_alias(g, hop_names[i]) == 0);
    check_one(g, "sec-provided-token-binding-id", fi->provided_id);
    check_one(g, "sec-referred-token-binding-id", fi->referred_id);
    check_one(g, "sec-other-token-binding-id", fi->n_other_ids ? fi->other_ids[0] : NULL);
    for (i = 3; tb_names[i] != NULL; i++)
        CHECK(count_alias(g, tb_names[i]) == 0);
    CHECK(count_alias(g, "x-forwarded-for") == 1 && count_alias(g, "forwarded") == 1);
    h = tbp_http_find(g, "x-forwarded-for");
    CHECK(h != NULL && h->value.len >= strlen(fi->client_ip));
    CHECK(memcmp(h->value.p + h->value.len - strlen(fi->client_ip), fi->client_ip,
                 strlen(fi->client_ip)) == 0);
    if (!fi->peer_trusted) {
        CHECK(str_eq(h->value, fi->client_ip));
        check_one(g, "x-forwarded-proto", "https");
        CHECK(count_alias(g, "x-real-ip") == 0);
        for (i = 0; i < g->n_headers; i++)
            if (is_forwarding(g->headers[i].name))
                CHECK(alias_eq(g->headers[i].name, "x-forwarded-for") ||
                      alias_eq(g->headers[i].name, "x-forwarded-proto") ||
                      alias_eq(g->headers[i].name, "forwarded"));
    }
    CHECK(count_alias(g, "cookie") <= 1);
    if (c->r->jwt != NULL && c->r->jwt->sub_header != NULL) {
        char sub[64];
        size_t n = strlen(c->r->jwt->sub_header);
        for (i = 0; i < n && i < sizeof(sub) - 1; i++)
            sub[i] = lower(c->r->jwt->sub_header[i]);
        sub[i] = '\0';
        /* the verified sub, written by the proxy: never the client's, under any spelling */
        CHECK(tbp_http_count(g, sub) <= 1);
        for (i = 0; i < g->n_headers; i++)
            if (alias_eq(g->headers[i].name, sub))
                CHECK(tbp_http_name_eq(g->headers[i].name, sub));
    }
    check_passed(c, g);
    return 0;
}

/* The route for request h: the table's choice (host without port, path without query: as
 * exchange.c does), or the one the mode names. */
static const struct tbp_route *pick_route(const struct fz *f, const struct tbp_http_head *h)
{
    const struct tbp_header *hh;
    struct tbp_str host = {"", 0}, path;
    size_t i;

    if (f->route_sel >= 1 && f->route_sel <= 5)
        return &routes[f->route_sel - 1];
    if ((hh = tbp_http_find(h, "host")) != NULL)
        host = hh->value;
    for (i = 0; i < host.len && host.p[i] != ':'; i++)
        ;
    if (host.len > 0 && host.p[0] != '[')
        host.len = i;
    path = h->target;
    for (i = 0; i < path.len && path.p[i] != '?'; i++)
        ;
    path.len = i;
    return tbp_config_route(&cfg, host.p, host.len, path.p, path.len);
}

static void on_request(struct fz *f, const struct tbp_http_head *h)
{
    const struct tbp_route *r = pick_route(f, h);
    const struct tbp_header *host = tbp_http_find(h, "host");
    const struct tbp_http_head *fh = NULL;
    struct tbp_head_edit e = {0};
    struct tbp_companion co;
    struct tbp_fwd_info fi = {0};
    struct req_ctx rc = {f, r, NULL, &fi};
    struct reparse rp = {f, check_request_sent, &rc, 0, 0, 0, 0};
    struct tbp_buf out;
    int st, ret, in_msg;

    if (r == NULL)
        return; /* 404 */
    memset(&co, 0, sizeof(co));
    st = tbp_exchange_request_edit(r, kr, f->tb ? tbh : NULL, NOW, h, &e, &fh, &co);
    CHECK(st == 0 || st == 401);
    CHECK(fh != NULL);
    if (!tbp_exchange_companion(r))
        CHECK(st == 0 && fh == h);
    if (st == 401)
        CHECK(r->jwt != NULL && co.jwt && co.jwt_outcome != TBP_JWT_OK);
    if (r->jwt != NULL && !f->tb)
        CHECK(st == 401 && co.jwt_outcome == TBP_JWT_NO_TB);
    if (st == 0 && r->jwt != NULL)
        CHECK(co.jwt && co.jwt_outcome == TBP_JWT_OK);
    if (trace)
        fprintf(stderr, "request: route %d status %d jwt %s cookies kept %u dropped %u\n",
                (int)(r - routes), st, co.jwt ? tbp_jwt_outcome_name(co.jwt_outcome) : "-",
                co.ck.kept, co.ck.dropped);
    if (st != 0)
        goto Exit;
    if (co.cookies)
        check_cookies(r, f->tb, h, fh, &co);

    fi.client_ip = f->ipv6 ? "2001:db8::7" : "192.0.2.7";
    fi.client_port = 4711;
    fi.peer_trusted = f->trusted;
    fi.scheme = "https";
    fi.host = host != NULL ? host->value : (struct tbp_str){"", 0};
    fi.provided_id = f->tb ? provided_id : NULL;
    fi.referred_id = f->tb && f->extra ? referred_id : NULL;
    fi.other_ids = other_ids;
    fi.n_other_ids = f->tb && f->extra ? 1 : 0;
    fi.framing = h->framing;
    fi.content_length = h->content_length;
    fi.keep_alive = f->keep_alive;
    rc.fh = fh;
    tbp_buf_init(&out, f->p.max_header_bytes + 16384);
    ret = tbp_forward_request_head(fh, &fi, &out);
    if (trace)
        fprintf(stderr, "request: forwarded %d, %zu bytes\n", ret, out.len);
    CHECK(ret == 0 || ret == TBP_EFWD_INVALID);
    if (ret != 0) {
        CHECK(out.len == 0);
        CHECK(fi.host.len == 0); /* whatever the parser accepted can be written */
    } else {
        reparse(out.p, out.len, 1, 0, &rp, &in_msg);
        CHECK(in_msg == (fi.framing == TBP_BODY_CHUNKED ||
                         (fi.framing == TBP_BODY_LENGTH && fi.content_length > 0)));
    }
    tbp_buf_dispose(&out);
Exit:
    tbp_head_edit_dispose(&e);
}

/* The end of a chunked request body: its trailers as the proxy forwards them. */
static int check_trailers_sent(void *ctx, const struct tbp_http_head *g)
{
    (void)ctx;
    CHECK(g->framing == TBP_BODY_CHUNKED);
    return 0;
}

static void on_request_end(struct fz *f)
{
    static const char prefix[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct reparse rp = {f, check_trailers_sent, NULL, 0, 0, 0, 0};
    const struct tbp_header *t;
    struct tbp_h1_limits lim;
    struct tbp_h1_parser p;
    struct tbp_buf out;
    size_t n, i, consumed = 0;

    if (f->p.head.framing != TBP_BODY_CHUNKED)
        return;
    t = tbp_h1_trailers(&f->p, &n);
    tbp_buf_init(&out, f->p.max_header_bytes + 16384);
    CHECK(tbp_buf_append_str(&out, prefix) == 0);
    CHECK(tbp_forward_chunked_end(t, n, &out) == 0);
    CHECK(out.len >= sizeof(prefix) - 1 + 5);
    CHECK(memcmp(out.p + sizeof(prefix) - 1, "0\r\n", 3) == 0);
    CHECK(memcmp(out.p + out.len - 2, "\r\n", 2) == 0);
    lim.max_header_bytes = out.len;
    lim.max_headers = count_lines(out.p, out.len);
    CHECK(tbp_h1_parser_init(&p, 1, &lim, &re_cb, &rp) == 0);
    CHECK(tbp_h1_feed(&p, out.p, out.len, &consumed) == 0);
    CHECK(consumed == out.len && rp.heads == 1 && rp.ends == 1);
    t = tbp_h1_trailers(&p, &rp.n_trailers);
    CHECK(rp.n_trailers <= n);
    /* names compared exactly: trailers reach no CGI-style environment */
    for (i = 0; i < rp.n_trailers; i++) {
        CHECK(!in_list(t[i].name, tb_names, 0) && !in_list(t[i].name, hop_names, 0));
        CHECK(!tbp_http_name_eq(t[i].name, "content-length") &&
              !tbp_http_name_eq(t[i].name, "host") && !tbp_http_name_eq(t[i].name, "trailer"));
        CHECK(!tbp_http_name_eq(t[i].name, "forwarded") &&
              !tbp_http_name_eq(t[i].name, "x-real-ip") &&
              !(t[i].name.len > 12 &&
                tbp_http_name_eq((struct tbp_str){t[i].name.p, 12}, "x-forwarded-")));
    }
    tbp_h1_parser_dispose(&p);
    tbp_buf_dispose(&out);
}

/* --- responses ---------------------------------------------------------------------------- */

struct resp_ctx {
    const struct tbp_http_head *rh, *fh;
    int keep_alive, head_request;
    enum tbp_body_framing f;
};

static size_t count_name(const struct tbp_http_head *h, const char *name)
{
    return tbp_http_count(h, name);
}

static int check_response_sent(void *ctx, const struct tbp_http_head *g)
{
    const struct resp_ctx *c = ctx;
    size_t i;

    CHECK(!g->is_request && g->status == c->rh->status);
    CHECK(count_name(g, "set-cookie") == count_name(c->fh, "set-cookie"));
    for (i = 1; hop_names[i] != NULL; i++)
        if (strcmp(hop_names[i], "transfer-encoding") != 0)
            CHECK(count_alias(g, hop_names[i]) == 0);
    if (g->status < 200)
        return 0;
    CHECK(count_alias(g, "connection") <= 1);
    CHECK((count_alias(g, "connection") == 1) == !c->keep_alive);
    if (c->head_request || g->status == 204 || g->status == 304) {
        CHECK(count_alias(g, "transfer-encoding") == 0);
        return 0;
    }
    switch (c->f) {
    case TBP_BODY_LENGTH:
        CHECK(g->framing == TBP_BODY_LENGTH && g->content_length == c->rh->content_length);
        break;
    case TBP_BODY_CHUNKED:
        CHECK(g->framing == TBP_BODY_CHUNKED);
        break;
    case TBP_BODY_NONE:
        CHECK(g->framing == TBP_BODY_LENGTH && g->content_length == 0);
        break;
    case TBP_BODY_UNTIL_CLOSE:
        CHECK(g->framing == TBP_BODY_UNTIL_CLOSE && !c->keep_alive);
        break;
    }
    return 0;
}

static void check_set_cookies(const struct fz *f, const struct tbp_route *r,
                              const struct tbp_http_head *rh, const struct tbp_http_head *fh,
                              const struct tbp_companion *co)
{
    unsigned bound = 0;
    size_t i, j = 0;

    CHECK(count_name(fh, "set-cookie") == count_name(rh, "set-cookie"));
    for (i = 0; i < fh->n_headers; i++) {
        const struct tbp_header *h = &fh->headers[i], *o;
        struct tb_set_cookie sc, osc;
        size_t orig = 0;
        if (!tbp_http_name_eq(h->name, "set-cookie"))
            continue;
        while (!tbp_http_name_eq(rh->headers[j].name, "set-cookie"))
            j++;
        o = &rh->headers[j++];
        if (!f->tb || !tbp_cookies_enabled(r) ||
            tb_set_cookie_parse(o->value.p, o->value.len, &osc) != 0 ||
            !tbp_cookies_listed(r, osc.name, osc.name_len)) {
            CHECK(slice_eq(h->value, o->value)); /* passed untouched */
            continue;
        }
        CHECK(tb_set_cookie_parse(h->value.p, h->value.len, &sc) == 0);
        CHECK(sc.name_len == osc.name_len && memcmp(sc.name, osc.name, sc.name_len) == 0);
        CHECK(tb_cookie_check(kr, sc.name, sc.name_len, sc.value, sc.value_len, tbh, &orig) == 0);
        CHECK(orig == osc.value_len && memcmp(sc.value, osc.value, orig) == 0);
        CHECK(sc.secure);
        bound++;
    }
    CHECK(bound == co->ck.bound);
}

static void on_response(struct fz *f, const struct tbp_http_head *rh)
{
    const struct tbp_route *r =
        f->route_sel >= 1 && f->route_sel <= 5 ? &routes[f->route_sel - 1] : NULL;
    const struct tbp_http_head *fh = NULL;
    struct tbp_head_edit e = {0};
    struct tbp_companion co;
    struct resp_ctx rc = {rh, NULL, f->keep_alive, f->extra, rh->framing};
    struct reparse rp = {f, check_response_sent, &rc, 0, 0, 0, 0};
    struct tbp_buf out;
    /* the connection's version from the parity of the status plus the heads so far: both names
     * of the referral get fuzzed, each with every status */
    int ver = ((unsigned)rh->status + f->heads) & 1 ? TB_VERSION_RFC : TB_VERSION_DRAFT;
    const char *refer = ver == TB_VERSION_RFC ? "include-referred-token-binding-id"
                                              : "include-referer-token-binding-id";
    int ret, in_msg, due;

    memset(&co, 0, sizeof(co));
    ret = tbp_exchange_response_edit(r, kr, f->tb ? tbh : NULL, ver, rh, &e, &fh, &co);
    CHECK(ret == 0 && fh != NULL);
    check_set_cookies(f, r, rh, fh, &co);
    /* rfc asks on any redirect (3xx but 304), the draft on 301 and 302 only */
    due = r != NULL && r->refer_token_binding &&
          (ver == TB_VERSION_RFC ? rh->status / 100 == 3 && rh->status != 304
                                 : rh->status == 301 || rh->status == 302) &&
          tbp_http_find(rh, "include-referer-token-binding-id") == NULL &&
          tbp_http_find(rh, "include-referred-token-binding-id") == NULL;
    CHECK(co.refer_added == due);
    if (due) {
        const struct tbp_header *h = tbp_http_find(fh, refer);
        CHECK(count_name(fh, refer) == 1 && str_eq(h->value, "true"));
    }

    /* the framing toward the client, as h1.c decides it */
    if (f->extra || rh->status == 204 || rh->status == 304)
        rc.f = TBP_BODY_NONE;
    else if (rc.f == TBP_BODY_CHUNKED || rc.f == TBP_BODY_UNTIL_CLOSE)
        rc.f = f->keep_alive ? TBP_BODY_CHUNKED : TBP_BODY_UNTIL_CLOSE;
    rc.fh = fh;
    tbp_buf_init(&out, 128 * 1024);
    ret = tbp_forward_response_head(fh, f->keep_alive, rc.f, rh->content_length, f->extra, &out);
    if (trace)
        fprintf(stderr, "response %d: route %d bound %u refer %d, sent %d, %zu bytes\n", rh->status,
                r != NULL ? (int)(r - routes) : -1, co.ck.bound, co.refer_added, ret, out.len);
    /* h1parse lets control characters through in a reason phrase; forward refuses to write
     * them (h1.c then closes the client connection): the only refusal expected */
    CHECK(ret == 0 || (ret == TBP_EFWD_INVALID && has_ctl(rh->reason)));
    if (ret == 0)
        reparse(out.p, out.len, 0, f->extra, &rp, &in_msg);
    else
        CHECK(out.len == 0);
    tbp_buf_dispose(&out);
    tbp_head_edit_dispose(&e);
}

/* --- the stream --------------------------------------------------------------------------- */

static int fz_head(void *ctx, const struct tbp_http_head *h)
{
    struct fz *f = ctx;

    f->heads++;
    if (h->is_request)
        on_request(f, h);
    else
        on_response(f, h);
    return 0;
}

static int fz_end(void *ctx)
{
    struct fz *f = ctx;

    if (f->p.is_request)
        on_request_end(f);
    else if (f->extra)
        tbp_h1_expect_no_body(&f->p); /* the next response answers a HEAD too */
    return 0;
}

static const struct tbp_h1_callbacks fz_cb = {fz_head, NULL, fz_end};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tbp_h1_limits small = {512, 12};
    struct fz f;
    size_t off = 0, consumed;
    char *copy;
    int rc = 0, mode, opts;

    if (size < 2)
        return 0;
    if (kr == NULL)
        init();
    if (trace < 0)
        trace = getenv("FUZZ_REQUEST_TRACE") != NULL;
    mode = data[0];
    opts = data[1];
    data += 2;
    size -= 2;
    memset(&f, 0, sizeof(f));
    f.tb = mode & 1;
    f.trusted = (mode >> 1) & 1;
    f.route_sel = (mode >> 2) & 7;
    f.keep_alive = (mode >> 6) & 1;
    f.extra = (mode >> 7) & 1;
    f.ipv6 = (opts >> 1) & 1;
    CHECK(tbp_h1_parser_init(&f.p, !(mode & 0x20), (opts & 1) ? &small : NULL, &fz_cb, &f) == 0);
    if ((mode & 0x20) && f.extra)
        tbp_h1_expect_no_body(&f.p);
    /* a heap copy of exactly size bytes: ASan sees any read past the end */
    CHECK((copy = malloc(size ? size : 1)) != NULL);
    memcpy(copy, data, size);
    while (off < size && rc == 0) {
        rc = tbp_h1_feed(&f.p, copy + off, size - off, &consumed);
        if (rc == 0) {
            CHECK(consumed <= size - off);
            if (consumed == 0)
                break; /* a boundary that consumed nothing: the stream is done */
            off += consumed;
        }
    }
    free(copy);
    tbp_h1_parser_dispose(&f.p);
    return 0;
}
