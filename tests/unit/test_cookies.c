/*
 * cookies (src/proxy/cookies.c) and the companion edits of exchange.c on hand-made heads: the
 * request side (a listed cookie checked against the provided tbh and forwarded without its tag,
 * dropped for every reason: unbound, another TBID, altered, unknown key, no Token Binding under
 * both policies; unlisted cookies untouched; HTTP/2 crumbs joined; quoted values; many cookies;
 * no Cookie left means no Cookie field; truncations and every crumb split), key rotation, the
 * response side (Set-Cookie bound with attributes untouched and Secure added once, unparsable
 * or unlisted ones untouched, nothing without Token Binding, the round trip through a request),
 * refer_token_binding on redirects only (Include-Referred-Token-Binding-ID on rfc connections,
 * the draft's Include-Referer- on the others), the head-edit helpers of forward.c and the counters
 * each outcome goes to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "cookies.h"
#include "exchange.h"
#include "forward.h"
#include "heads.h"
#include "tb/tb.h"

/* 32 bytes each of 0x11, 0x22, 0x33 */
#define K1 "k1 ERERERERERERERERERERERERERERERERERERERERERE=\n"
#define K2 "k2 IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\n"
#define K3 "k3 MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=\n"

static struct tb_cookie_keyring *kr1, *kr12, *kr3;
static char tbh_a[TB_TBH_LEN + 1], tbh_b[TB_TBH_LEN + 1];

static const char *names[] = {"session", "sid"};
static struct tbp_route route;

static struct tb_cookie_keyring *keyring(const char *text)
{
    struct tb_cookie_keyring *kr = NULL;
    char err[256] = "";

    cr_assert_eq(tb_cookie_keyring_parse(text, strlen(text), &kr, err, sizeof(err)), 0, "%s", err);
    return kr;
}

static void setup(void)
{
    kr1 = keyring(K1);
    kr12 = keyring("# rotation: k2 is the newest\n" K1 K2);
    kr3 = keyring(K3);
    cr_assert_eq(tb_tbh((const uint8_t *)"id-a", 4, tbh_a, sizeof(tbh_a)), TB_TBH_LEN);
    cr_assert_eq(tb_tbh((const uint8_t *)"id-b", 4, tbh_b, sizeof(tbh_b)), TB_TBH_LEN);
    memset(&route, 0, sizeof(route));
    route.host = "*";
    route.prefix = "/";
    route.prefix_len = 1;
    route.bind_cookies = names;
    route.n_bind_cookies = 2;
}

static void teardown(void)
{
    tb_cookie_keyring_free(kr1);
    tb_cookie_keyring_free(kr12);
    tb_cookie_keyring_free(kr3);
}

TestSuite(cookies, .init = setup, .fini = teardown, .timeout = 30);

/* --- helpers ---------------------------------------------------------------------------------- */

/* value bound to name and tbh under kr, malloc'd. */
static char *bound(const struct tb_cookie_keyring *kr, const char *name, const char *value,
                   const char *tbh)
{
    char suffix[TB_COOKIE_SUFFIX_MAX + 1], *out = NULL;
    int n =
        tb_cookie_bind(kr, name, strlen(name), value, strlen(value), tbh, suffix, sizeof(suffix));

    cr_assert_gt(n, 0, "tb_cookie_bind: %s", tb_strerror(n));
    cr_assert_gt(asprintf(&out, "%s%s", value, suffix), 0);
    return out;
}

/* "session=" + the value "abc" bound to session and tbh_a under kr1 + rest, malloc'd. */
static char *bound_session(const char *rest)
{
    char *s = bound(kr1, "session", "abc", tbh_a), *c = NULL;

    cr_assert_gt(asprintf(&c, "session=%s%s", s, rest), 0);
    free(s);
    return c;
}

/* The request edit of exchange.c; e and co are zeroed here. */
static int edit_req(const struct tbp_route *r, const struct tb_cookie_keyring *kr, const char *tbh,
                    struct tbt_head *t, struct tbp_head_edit *e, const struct tbp_http_head **out,
                    struct tbp_companion *co)
{
    memset(e, 0, sizeof(*e));
    memset(co, 0, sizeof(*co));
    return tbp_exchange_request_edit(r, kr, tbh, 0, &t->h, e, out, co);
}

/* The response edit of exchange.c for a connection of Token Binding version `version`. */
static int edit_resp_v(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                       const char *tbh, int version, struct tbt_head *t, struct tbp_head_edit *e,
                       const struct tbp_http_head **out, struct tbp_companion *co)
{
    memset(e, 0, sizeof(*e));
    memset(co, 0, sizeof(*co));
    return tbp_exchange_response_edit(r, kr, tbh, version, &t->h, e, out, co);
}

/* The same on a draft connection (or one without Token Binding). */
static int edit_resp(const struct tbp_route *r, const struct tb_cookie_keyring *kr, const char *tbh,
                     struct tbt_head *t, struct tbp_head_edit *e, const struct tbp_http_head **out,
                     struct tbp_companion *co)
{
    return edit_resp_v(r, kr, tbh, TB_VERSION_DRAFT, t, e, out, co);
}

/* The Cookie value the origin would get for one Cookie field `cookie`, on route, with kr and tbh;
 * NULL when no Cookie field is left. Outcomes in *co. */
static const char *forwarded(const struct tb_cookie_keyring *kr, const char *tbh,
                             const char *cookie, struct tbp_companion *co)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbt_head t;
    const char *v;

    tbt_head_req(&t, "Cookie", cookie, NULL);
    cr_assert_eq(edit_req(&route, kr, tbh, &t, &e, &out, co), 0);
    cr_assert_eq(out, &e.head);
    cr_assert_leq(tbt_head_count(out, "cookie"), 1);
    v = tbt_head_field(out, "cookie");
    tbp_head_edit_dispose(&e);
    return v;
}

/* --- request ---------------------------------------------------------------------------------- */

Test(cookies, valid_forwarded_without_tag)
{
    char *s = bound(kr1, "session", "abc123", tbh_a), *c = NULL;
    struct tbp_companion co;

    cr_assert_gt(asprintf(&c, "theme=dark; session=%s; lang=en", s), 0);
    cr_expect_str_eq(forwarded(kr1, tbh_a, c, &co), "theme=dark; session=abc123; lang=en");
    cr_expect_eq(co.ck.n[TBP_CK_OK], 1);
    cr_expect_eq(co.ck.kept, 1);
    cr_expect_eq(co.ck.dropped, 0);
    cr_expect(co.cookies);
    cr_expect_not(co.jwt);
    free(s);
    free(c);
}

/* Expects `Cookie: session=<value>` from tbh_a under kr1 dropped as reason. */
static void expect_dropped(const char *what, const char *value, enum tbp_cookie_outcome reason)
{
    struct tbp_companion co;
    char *c = NULL;

    cr_assert_gt(asprintf(&c, "session=%s", value), 0);
    cr_expect_null(forwarded(kr1, tbh_a, c, &co), "%s: passed", what);
    cr_expect_eq(co.ck.n[reason], 1, "%s: not counted as %s", what,
                 tbp_cookie_outcome_name(reason));
    cr_expect(co.ck.dropped == 1 && co.ck.kept == 0, "%s: dropped %u, kept %u", what, co.ck.dropped,
              co.ck.kept);
    free(c);
}

Test(cookies, dropped_for_every_reason)
{
    char *other = bound(kr1, "session", "abc", tbh_b);
    char *rename = bound(kr1, "sid", "abc", tbh_a);
    char *unknown = bound(kr3, "session", "abc", tbh_a);
    char *altered = bound(kr1, "session", "abc", tbh_a);

    altered[0] = 'x'; /* the value changed after binding */
    expect_dropped("unbound value", "abc", TBP_CK_UNBOUND);
    expect_dropped("another TBID", other, TBP_CK_MISMATCH);
    expect_dropped("bound under another name", rename, TBP_CK_MISMATCH);
    expect_dropped("a key id kr1 lacks", unknown, TBP_CK_KEYID);
    expect_dropped("altered", altered, TBP_CK_MISMATCH);
    free(other);
    free(rename);
    free(unknown);
    free(altered);
}

/* "=session=stolen" has no name: written back bare it would read as "session=stolen" at the
 * origin, unchecked (found by fuzz_request). Dropped on a route that binds cookies. */
Test(cookies, nameless_pair_dropped)
{
    struct tbp_companion co;

    cr_expect_str_eq(forwarded(kr1, tbh_a, "=session=stolen; a=1", &co), "a=1");
    cr_expect_eq(co.ck.dropped, 1);
    cr_expect_null(forwarded(kr1, tbh_a, "=session=stolen", &co));
    cr_expect_null(forwarded(kr1, NULL, "=a=b", &co), "also without Token Binding");
    cr_expect_null(forwarded(kr1, tbh_a, "=session", &co), "a bare listed name");
    cr_expect_str_eq(forwarded(kr1, tbh_a, "=plain", &co), "plain", "a bare value stays");
}

Test(cookies, no_keyring_drops_as_error)
{
    char *c = bound_session("; a=1");
    struct tbp_companion co;

    cr_expect_str_eq(forwarded(NULL, tbh_a, c, &co), "a=1");
    cr_expect_eq(co.ck.n[TBP_CK_ERROR], 1);
    free(c);
}

Test(cookies, without_token_binding_drop_policy)
{
    char *c = bound_session("; sid=plain; a=1");
    struct tbp_companion co;

    cr_expect_str_eq(forwarded(kr1, NULL, c, &co), "a=1");
    cr_expect_eq(co.ck.n[TBP_CK_NO_TB], 2);
    cr_expect_str_eq(forwarded(kr1, "", c, &co), "a=1", "\"\" is no Token Binding too");
    free(c);
}

Test(cookies, without_token_binding_pass_policy)
{
    char *c = bound_session("; sid=plain; a=1");
    struct tbp_companion co;

    route.unbound_cookies = TBP_UNBOUND_PASS;
    cr_expect_str_eq(forwarded(kr1, NULL, c, &co), "sid=plain; a=1",
                     "pass: unbound values pass, bound ones are still dropped");
    cr_expect_eq(co.ck.n[TBP_CK_PASS], 1);
    cr_expect_eq(co.ck.n[TBP_CK_NO_TB], 1);
    cr_expect_eq(co.ck.kept, 1);
    cr_expect_eq(co.ck.dropped, 1);
    /* on a Token Binding connection the policy does not apply */
    cr_expect_str_eq(forwarded(kr1, tbh_a, c, &co), "session=abc; a=1");
    cr_expect_eq(co.ck.n[TBP_CK_UNBOUND], 1);
    free(c);
}

Test(cookies, nothing_left_no_cookie_field)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    tbt_head_req(&t, "Cookie", "session=forged", "Accept", "*/*", "cookie", "sid=x", NULL);
    cr_assert_eq(edit_req(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(tbt_head_count(out, "cookie"), 0);
    cr_expect_eq(out->n_headers, 2);
    cr_expect_str_eq(tbt_head_field(out, "accept"), "*/*");
    cr_expect_eq(co.ck.dropped, 2);
    tbp_head_edit_dispose(&e);
}

Test(cookies, no_cookie_field)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    tbt_head_req(&t, "Accept", "*/*", NULL);
    cr_assert_eq(edit_req(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h, "no Cookie field: the head itself, nothing allocated");
    cr_expect_null(e.head.headers);
    cr_expect(co.cookies);
    cr_expect_eq(out->n_headers, 2);
    cr_expect_eq(tbt_head_count(out, "cookie"), 0);
    cr_expect_eq(co.ck.kept + co.ck.dropped, 0);
    tbp_head_edit_dispose(&e);
}

Test(cookies, unlisted_untouched_and_odd_segments)
{
    struct tbp_companion co;

    /* empty segments skipped, spaces trimmed, a nameless cookie kept as a bare value */
    cr_expect_str_eq(forwarded(kr1, tbh_a, "a=1;;  b=2 ;novalue; c=", &co),
                     "a=1; b=2; novalue; c=");
    cr_expect_eq(co.ck.kept + co.ck.dropped, 0);
    cr_expect_str_eq(forwarded(kr1, tbh_a, "SESSION=x", &co), "SESSION=x",
                     "cookie names are case-sensitive");
}

Test(cookies, crumbs_joined_in_place)
{
    char *s = bound(kr1, "session", "v", tbh_a), *crumb = NULL;
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    /* HTTP/2 sends cookies as crumbs: one field each */
    cr_assert_gt(asprintf(&crumb, "session=%s", s), 0);
    tbt_head_req(&t, "accept", "*/*", "cookie", "a=1", "x-mid", "m", "cookie", crumb, "cookie",
                 "b=2", NULL);
    cr_assert_eq(edit_req(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(tbt_head_count(out, "cookie"), 1);
    cr_expect_str_eq(tbt_head_field(out, "cookie"), "a=1; session=v; b=2");
    /* the one Cookie field stands where the first crumb was */
    cr_expect_eq(out->n_headers, 4);
    cr_expect(out->headers[2].name.len == 6 && strncmp(out->headers[2].name.p, "cookie", 6) == 0);
    cr_expect(out->headers[3].name.len == 5 && strncmp(out->headers[3].name.p, "x-mid", 5) == 0);
    tbp_head_edit_dispose(&e);
    free(crumb);
    free(s);
}

Test(cookies, every_crumb_split_same_result)
{
    char *s = bound(kr1, "session", "abc", tbh_a), *all = NULL;
    const char *want = "a=1; session=abc; b=2; c=3"; /* sid=zz: listed, unbound */
    size_t cut1, cut2, len;

    cr_assert_gt(asprintf(&all, "a=1; session=%s; b=2; sid=zz; c=3", s), 0);
    len = strlen(all);
    /* split into up to three crumbs at every pair of "; " boundaries */
    for (cut1 = 0; cut1 <= len; cut1++) {
        if (cut1 != 0 && cut1 != len && all[cut1] != ';')
            continue;
        for (cut2 = cut1; cut2 <= len; cut2++) {
            struct tbp_head_edit e;
            const struct tbp_http_head *out;
            struct tbp_companion co;
            struct tbt_head t;
            const char *v;
            if (cut2 != cut1 && cut2 != len && all[cut2] != ';')
                continue;
            tbt_head_req(&t, NULL);
            t.f[t.h.n_headers++] = (struct tbp_header){{"cookie", 6}, {all, cut1}};
            t.f[t.h.n_headers++] = (struct tbp_header){{"cookie", 6}, {all + cut1, cut2 - cut1}};
            t.f[t.h.n_headers++] = (struct tbp_header){{"cookie", 6}, {all + cut2, len - cut2}};
            cr_assert_eq(edit_req(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
            v = tbt_head_field(out, "cookie");
            cr_expect(v != NULL && strcmp(v, want) == 0, "split at %zu, %zu: %s", cut1, cut2, v);
            cr_expect_eq(co.ck.n[TBP_CK_OK], 1);
            cr_expect_eq(co.ck.n[TBP_CK_UNBOUND], 1); /* sid=zz */
            tbp_head_edit_dispose(&e);
        }
    }
    free(all);
    free(s);
}

Test(cookies, every_truncation_dropped)
{
    char *s = bound(kr1, "session", "abc", tbh_a), *c = NULL;
    size_t len = strlen(s), n;
    struct tbp_companion co;

    for (n = 0; n < len; n++) {
        const char *v;
        cr_assert_gt(asprintf(&c, "session=%.*s; z=9", (int)n, s), 0);
        v = forwarded(kr1, tbh_a, c, &co);
        cr_expect_str_eq(v, "z=9", "a value truncated to %zu bytes was kept", n);
        cr_expect_eq(co.ck.dropped, 1);
        free(c);
    }
    free(s);
}

Test(cookies, quoted_value_round_trip)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;
    char *set, *c = NULL, *v;

    tbt_head_resp(&t, 200, "Set-Cookie", "session=\"quoted\"; Path=/", NULL);
    cr_assert_eq(edit_resp(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    set = strdup(tbt_head_field(out, "set-cookie"));
    tbp_head_edit_dispose(&e);
    cr_assert(strncmp(set, "session=\"quoted\"~tb1.k1~", 24) == 0, "%s", set);
    v = strchr(set, ';');
    cr_assert_not_null(v);
    cr_assert_gt(asprintf(&c, "%.*s", (int)(v - set), set), 0);
    cr_expect_str_eq(forwarded(kr1, tbh_a, c, &co), "session=\"quoted\"");
    free(c);
    free(set);
}

Test(cookies, many_cookies)
{
    char *s = bound(kr1, "sid", "s", tbh_a), *c, *want;
    size_t i, o = 0, w = 0, cap = 64 * 1024;
    struct tbp_companion co;

    c = malloc(cap);
    want = malloc(cap);
    cr_assert(c && want);
    for (i = 0; i < 300; i++) {
        o += (size_t)snprintf(c + o, cap - o, "%sc%zu=v%zu", i ? "; " : "", i, i);
        w += (size_t)snprintf(want + w, cap - w, "%sc%zu=v%zu", i ? "; " : "", i, i);
        if (i % 3 == 0) {
            o += (size_t)snprintf(c + o, cap - o, "; session=forged%zu; sid=%s", i, s);
            w += (size_t)snprintf(want + w, cap - w, "; sid=s");
        }
    }
    cr_expect_str_eq(forwarded(kr1, tbh_a, c, &co), want);
    cr_expect_eq(co.ck.n[TBP_CK_OK], 100);
    cr_expect_eq(co.ck.n[TBP_CK_UNBOUND], 100);
    free(c);
    free(want);
    free(s);
}

Test(cookies, bind_all)
{
    char *a = bound(kr1, "a", "1", tbh_a), *c = NULL;
    struct tbp_companion co;

    route.bind_all_cookies = 1;
    route.n_bind_cookies = 0;
    cr_assert_gt(asprintf(&c, "a=%s; b=2", a), 0);
    cr_expect_str_eq(forwarded(kr1, tbh_a, c, &co), "a=1");
    cr_expect_eq(co.ck.n[TBP_CK_OK], 1);
    cr_expect_eq(co.ck.n[TBP_CK_UNBOUND], 1);
    free(a);
    free(c);
}

Test(cookies, rotation)
{
    char *old = bound(kr1, "session", "o", tbh_a), *fresh = bound(kr12, "session", "n", tbh_a);
    char *c = NULL;
    struct tbp_companion co;

    cr_expect(strstr(fresh, "~tb1.k2~") != NULL, "the newest key binds: %s", fresh);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr12), "k2");
    cr_assert_gt(asprintf(&c, "session=%s; session=%s", old, fresh), 0);
    cr_expect_str_eq(forwarded(kr12, tbh_a, c, &co), "session=o; session=n",
                     "every listed key checks");
    free(c);
    cr_assert_gt(asprintf(&c, "session=%s", fresh), 0);
    cr_expect_null(forwarded(kr1, tbh_a, c, &co), "a key taken out of the ring no longer checks");
    cr_expect_eq(co.ck.n[TBP_CK_KEYID], 1);
    free(c);
    free(old);
    free(fresh);
}

Test(cookies, route_without_companion_untouched)
{
    struct tbp_route plain = {.host = "*", .prefix = "/", .prefix_len = 1};
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    tbt_head_req(&t, "Cookie", "session=forged", NULL);
    cr_expect_eq(edit_req(&plain, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h, "a route without companion features gets the head itself");
    cr_expect_null(e.head.headers, "and nothing is allocated");
    cr_expect_not(tbp_exchange_companion(&plain));
    cr_expect_not(co.cookies);
    tbp_head_edit_dispose(&e);
}

Test(cookies, find)
{
    struct tbp_str v;
    struct tbt_head t;

    tbt_head_req(&t, "Cookie", "a=1; tok=\"x\"", "Cookie", "tok=second", NULL);
    cr_assert(tbp_cookie_find(&t.h, "tok", &v));
    cr_expect(v.len == 3 && memcmp(v.p, "\"x\"", 3) == 0);
    cr_expect_not(tbp_cookie_find(&t.h, "to", &v));
    cr_expect_not(tbp_cookie_find(&t.h, "TOK", &v));
}

/* --- response --------------------------------------------------------------------------------- */

Test(cookies, set_cookie_bound_attributes_untouched)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;
    char *want = bound(kr1, "session", "abc", tbh_a), *line = NULL;

    tbt_head_resp(&t, 200, "Content-Type", "text/plain", "Set-Cookie",
                  "session=abc; Path=/; HttpOnly", "Set-Cookie", "theme=dark; Path=/", "set-cookie",
                  "sid=1; secure; Max-Age=60", "Set-Cookie", "noequals", "Set-Cookie", "=nameless",
                  NULL);
    cr_assert_eq(edit_resp(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_assert_eq(out, &e.head);
    cr_assert_eq(out->n_headers, 6);
    cr_assert_gt(asprintf(&line, "session=%s; Path=/; HttpOnly; Secure", want), 0);
    cr_expect_str_eq(tbt_head_field(out, "content-type"), "text/plain");
#define V(i) (out->headers[i].value)
    cr_expect(V(1).len == strlen(line) && memcmp(V(1).p, line, V(1).len) == 0, "got %.*s",
              (int)V(1).len, V(1).p);
    cr_expect(V(2).len == 18 && memcmp(V(2).p, "theme=dark; Path=/", 18) == 0, "unlisted");
    cr_expect(V(3).len > 25 && memcmp(V(3).p, "sid=1~tb1.k1~", 13) == 0, "%.*s", (int)V(3).len,
              V(3).p);
    cr_expect(V(3).len == 5 + 8 + TB_COOKIE_TAG_LEN + 20 &&
                  memcmp(V(3).p + V(3).len - 20, "; secure; Max-Age=60", 20) == 0,
              "Secure present already: not added again: %.*s", (int)V(3).len, V(3).p);
    cr_expect(V(4).len == 8 && memcmp(V(4).p, "noequals", 8) == 0, "unparsable: untouched");
    cr_expect(V(5).len == 9 && memcmp(V(5).p, "=nameless", 9) == 0, "no name: untouched");
#undef V
    cr_expect_eq(co.ck.bound, 2);
    cr_expect_not(co.refer_added);
    tbp_head_edit_dispose(&e);
    free(want);
    free(line);
}

Test(cookies, set_cookie_without_token_binding_unchanged)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    tbt_head_resp(&t, 200, "Set-Cookie", "session=abc", NULL);
    cr_expect_eq(edit_resp(&route, kr1, NULL, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    route.unbound_cookies = TBP_UNBOUND_PASS;
    cr_expect_eq(edit_resp(&route, kr1, "", &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    cr_expect_eq(co.ck.bound, 0);
    cr_expect_eq(edit_resp(NULL, kr1, tbh_a, &t, &e, &out, &co), 0, "no route");
    cr_expect_eq(out, &t.h);
}

Test(cookies, set_cookie_no_keyring_fails)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    tbt_head_resp(&t, 200, "Set-Cookie", "session=abc", NULL);
    cr_expect_lt(edit_resp(&route, NULL, tbh_a, &t, &e, &out, &co), 0,
                 "a listed Set-Cookie that cannot be bound is never sent unbound");
    tbp_head_edit_dispose(&e);
}

Test(cookies, set_cookie_round_trip_rotation)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;
    char *c = NULL;
    const char *v;

    tbt_head_resp(&t, 302, "Set-Cookie", "sid=42", "Location", "/x", NULL);
    cr_assert_eq(edit_resp(&route, kr12, tbh_b, &t, &e, &out, &co), 0);
    v = tbt_head_field(out, "set-cookie");
    cr_assert(strncmp(v, "sid=42~tb1.k2~", 14) == 0, "%s", v);
    cr_assert(strstr(v, "; Secure") != NULL);
    cr_assert_gt(asprintf(&c, "%.*s", (int)(strchr(v, ';') - v), v), 0);
    tbp_head_edit_dispose(&e);
    cr_expect_str_eq(forwarded(kr12, tbh_b, c, &co), "sid=42");
    cr_expect_null(forwarded(kr12, tbh_a, c, &co), "from another TBID");
    free(c);
}

/* A draft connection is asked on the redirects draft-balfanz names, 301 and 302, only. */
Test(cookies, refer_token_binding_on_redirects)
{
    static const int yes[] = {301, 302};
    static const int no[] = {200, 204, 300, 303, 304, 307, 308, 400, 404, 500};
    struct tbp_route r = {.host = "*", .prefix = "/", .prefix_len = 1, .refer_token_binding = 1};
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        tbt_head_resp(&t, yes[i], "Location", "https://idp/", NULL);
        cr_assert_eq(edit_resp(&r, NULL, NULL, &t, &e, &out, &co), 0);
        cr_expect_str_eq(tbt_head_field(out, "include-referer-token-binding-id"), "true", "%d",
                         yes[i]);
        cr_expect_str_eq(tbt_head_field(out, "location"), "https://idp/");
        cr_expect(co.refer_added);
        tbp_head_edit_dispose(&e);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        tbt_head_resp(&t, no[i], NULL);
        cr_assert_eq(edit_resp(&r, NULL, tbh_a, &t, &e, &out, &co), 0);
        cr_expect_eq(out, &t.h, "%d", no[i]);
        cr_expect_not(co.refer_added);
    }
    /* the origin asked already (either name): not added twice */
    tbt_head_resp(&t, 302, "Include-Referer-Token-Binding-ID", "true", NULL);
    cr_assert_eq(edit_resp(&r, NULL, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    tbt_head_resp(&t, 302, "include-referred-token-binding-id", "true", NULL);
    cr_assert_eq(edit_resp(&r, NULL, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    /* a route without the setting */
    tbt_head_resp(&t, 302, NULL);
    r.refer_token_binding = 0;
    cr_assert_eq(edit_resp(&r, NULL, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
}

/* An RFC 8471-8473 connection is asked with RFC 8473's name, and only that one: a draft-only
 * client ignores it, an rfc client would ignore the draft's; on any redirect (3xx but 304). */
Test(cookies, refer_token_binding_rfc_uses_referred_name)
{
    static const int yes[] = {300, 301, 302, 303, 307, 308};
    static const int no[] = {200, 204, 304, 400, 404, 500};
    static const char name[] = "Include-Referred-Token-Binding-ID";
    struct tbp_route r = {.host = "*", .prefix = "/", .prefix_len = 1, .refer_token_binding = 1};
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        const struct tbp_header *last;

        tbt_head_resp(&t, yes[i], "Location", "https://idp/", NULL);
        cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
        cr_assert_eq(out, &e.head, "%d", yes[i]);
        cr_expect_eq(out->n_headers, 2);
        last = &out->headers[out->n_headers - 1];
        cr_expect(last->name.len == strlen(name) && memcmp(last->name.p, name, last->name.len) == 0,
                  "%d: %.*s", yes[i], (int)last->name.len, last->name.p);
        cr_expect_str_eq(tbt_head_field(out, "include-referred-token-binding-id"), "true");
        cr_expect_null(tbt_head_field(out, "include-referer-token-binding-id"), "never both names");
        cr_expect_str_eq(tbt_head_field(out, "location"), "https://idp/");
        cr_expect(co.refer_added);
        tbp_head_edit_dispose(&e);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        tbt_head_resp(&t, no[i], NULL);
        cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
        cr_expect_eq(out, &t.h, "%d", no[i]);
        cr_expect_not(co.refer_added);
    }
    /* the origin asked already, with either name: nothing added */
    tbt_head_resp(&t, 303, "Include-Referer-Token-Binding-ID", "true", NULL);
    cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    cr_expect_not(co.refer_added);
    tbt_head_resp(&t, 303, "include-referred-token-binding-id", "true", NULL);
    cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
    /* the same redirect on a draft connection keeps the draft's name */
    tbt_head_resp(&t, 302, "Location", "https://idp/", NULL);
    cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_DRAFT, &t, &e, &out, &co), 0);
    cr_expect_str_eq(tbt_head_field(out, "include-referer-token-binding-id"), "true");
    cr_expect_null(tbt_head_field(out, "include-referred-token-binding-id"));
    tbp_head_edit_dispose(&e);
    /* a route without the setting */
    r.refer_token_binding = 0;
    cr_assert_eq(edit_resp_v(&r, NULL, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
    cr_expect_eq(out, &t.h);
}

Test(cookies, refer_and_bind_together_rfc)
{
    struct tbp_route rr = route;
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    rr.refer_token_binding = 1;
    tbt_head_resp(&t, 302, "Set-Cookie", "session=s", "Location", "/", NULL);
    cr_assert_eq(edit_resp_v(&rr, kr1, tbh_a, TB_VERSION_RFC, &t, &e, &out, &co), 0);
    cr_expect_eq(out->n_headers, 3);
    cr_expect(strncmp(tbt_head_field(out, "set-cookie"), "session=s~tb1.k1~", 17) == 0);
    cr_expect_str_eq(tbt_head_field(out, "include-referred-token-binding-id"), "true");
    cr_expect_eq(co.ck.bound, 1);
    tbp_head_edit_dispose(&e);
}

Test(cookies, refer_and_bind_together)
{
    struct tbp_head_edit e;
    const struct tbp_http_head *out;
    struct tbp_companion co;
    struct tbt_head t;

    route.refer_token_binding = 1;
    tbt_head_resp(&t, 302, "Set-Cookie", "session=s", "Location", "/", NULL);
    cr_assert_eq(edit_resp(&route, kr1, tbh_a, &t, &e, &out, &co), 0);
    cr_expect_eq(out->n_headers, 3);
    cr_expect(strncmp(tbt_head_field(out, "set-cookie"), "session=s~tb1.k1~", 17) == 0);
    cr_expect_str_eq(tbt_head_field(out, "include-referer-token-binding-id"), "true");
    tbp_head_edit_dispose(&e);
}

/* --- the head-edit helpers -------------------------------------------------------------------- */

Test(cookies, head_edit_helpers)
{
    struct tbp_head_edit e;
    struct tbt_head t;
    struct tbp_str v = {"new", 3};
    char *p;

    tbt_head_req(&t, "X-A", "1", "x-b", "2", "X-a", "3", NULL);
    cr_assert_eq(tbp_head_edit_init(&e, &t.h, 0, 8), 0);
    cr_expect_eq(e.head.n_headers, 4);
    cr_expect_neq(e.head.headers, t.h.headers, "a private copy of the list");
    cr_expect_eq(tbp_head_edit_set(&e, "x-a", &v), 0);
    cr_expect_eq(e.head.n_headers, 3);
    cr_expect_str_eq(tbt_head_field(&e.head, "x-a"), "new");
    cr_expect(e.head.headers[1].name.len == 3 && memcmp(e.head.headers[1].name.p, "x-a", 3) == 0,
              "in place of the first, under the name given");
    cr_expect_eq(tbp_head_edit_set(&e, "X-B", NULL), 0);
    cr_expect_eq(e.head.n_headers, 2);
    cr_expect_eq(tbp_head_edit_set(&e, "X-New", &v), 0, "added at the end");
    cr_expect_str_eq(tbt_head_field(&e.head, "x-new"), "new");
    cr_expect_eq(tbp_head_edit_add(&e, v, v), 0);
    cr_expect_eq(tbp_head_edit_add(&e, v, v), TBP_EBUF, "the list is full");
    cr_expect_not_null(p = tbp_head_edit_alloc(&e, 5));
    cr_expect_not_null(tbp_head_edit_alloc(&e, 3));
    cr_expect_null(tbp_head_edit_alloc(&e, 1), "the arena never grows");
    cr_expect_eq(t.h.n_headers, 4, "the original is untouched");
    tbp_head_edit_dispose(&e);
    tbp_head_edit_dispose(&e);
}

/* A client's "X_Auth_Sub" is the same field as "X-Auth-Sub" to a CGI-style origin: set and
 * remove take both spellings. */
Test(cookies, head_edit_underscore_spelling)
{
    struct tbp_head_edit e = {0};
    struct tbt_head t;
    struct tbp_str v = {"alice", 5};

    tbt_head_req(&t, "X_Auth_Sub", "admin", "x-auth_sub", "root", "X-Other", "1", NULL);
    cr_assert_eq(tbp_head_edit_init(&e, &t.h, 0, 8), 0);
    cr_expect_eq(tbp_head_edit_set(&e, "X-Auth-Sub", &v), 0);
    cr_expect_eq(e.head.n_headers, 3, "Host, X-Auth-Sub, X-Other");
    cr_expect_str_eq(tbt_head_field(&e.head, "x-auth-sub"), "alice");
    cr_expect_eq(tbp_head_edit_set(&e, "X-Auth-Sub", NULL), 0);
    cr_expect_eq(e.head.n_headers, 2, "Host, X-Other");
    cr_expect_str_eq(tbt_head_field(&e.head, "x-other"), "1");
    tbp_head_edit_dispose(&e);
}

Test(cookies, outcome_names)
{
    static const char *const want[TBP_CK_N] = {"ok",          "pass",  "unbound", "mismatch",
                                               "unknown_key", "no_tb", "error"};
    int i;

    for (i = 0; i < TBP_CK_N; i++)
        cr_expect_str_eq(tbp_cookie_outcome_name((enum tbp_cookie_outcome)i), want[i]);
    cr_expect_str_eq(tbp_cookie_outcome_name((enum tbp_cookie_outcome)99), "unknown");
}

Test(cookies, challenge_and_401)
{
    struct tbp_buf b;

    cr_expect_str_eq(tbp_forward_challenge(401), "Bearer error=\"invalid_token\"");
    cr_expect_null(tbp_forward_challenge(400));
    tbp_buf_init(&b, 4096);
    cr_assert_eq(tbp_forward_unauthorized("bearer token expired", 0, &b), 0);
    cr_expect_str_eq(b.p, "HTTP/1.1 401 Unauthorized\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
                          "Content-Length: 39\r\n"
                          "\r\n"
                          "401 Unauthorized: bearer token expired\n");
    tbp_buf_reset(&b);
    cr_expect_eq(tbp_forward_error_response(401, NULL, 0, &b), TBP_EFWD_INVALID,
                 "no 401 without its challenge");
    cr_expect_eq(tbp_forward_unauthorized("two\nlines", 0, &b), TBP_EFWD_INVALID);
    cr_expect_eq(b.len, 0);
    tbp_buf_dispose(&b);
}

/* The names of the dropped cookies (for Authentication-Results' tbcookie comment), never their
 * values; cut with "..." when they do not fit. */
Test(cookies, dropped_names_kept_for_the_results_header)
{
    struct tbp_companion co;
    char *c = NULL, *many = NULL;
    size_t i;

    cr_assert_gt(asprintf(&c, "session=s3cret; a=1; sid=other; =session=x"), 0);
    forwarded(kr1, tbh_a, c, &co);
    cr_expect_str_eq(co.ck.dropped_names, "session, sid, =");
    cr_expect_null(strstr(co.ck.dropped_names, "s3cret"));
    forwarded(kr1, tbh_a, "a=1", &co);
    cr_expect_str_eq(co.ck.dropped_names, "", "nothing dropped, no names");

    /* 40 listed cookies dropped: the list ends in "..." within its buffer */
    for (i = 0; i < 40; i++) {
        char *next = NULL;
        cr_assert_gt(asprintf(&next, "%s%ssession=v%zu", many ? many : "", many ? "; " : "", i), 0);
        free(many);
        many = next;
    }
    forwarded(kr1, tbh_a, many, &co);
    cr_expect_eq(co.ck.dropped, 40);
    cr_expect_lt(strlen(co.ck.dropped_names), sizeof(co.ck.dropped_names));
    cr_expect(strlen(co.ck.dropped_names) > 3 &&
                  strcmp(co.ck.dropped_names + strlen(co.ck.dropped_names) - 5, ", ...") == 0,
              "%s", co.ck.dropped_names);
    free(c);
    free(many);
}
