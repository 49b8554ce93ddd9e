/*
 * The token_binding TLS extension codec and negotiation rules (tb/tlsext.h, RFC 8472).
 *
 * tlsext::parse_* : exact parsing (every truncation and every extra byte of valid bodies is
 * refused, an empty list too, the longest list is taken); tlsext::encode_* : round trips and the
 * buffer bound; tlsext::server_select_* : the version the server answers for each offered
 * version and the key parameters it picks (its preference order, not the client's);
 * tlsext::client_check_* : what the client accepts, aborts on, or goes on without.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "tb/tb.h"

TestSuite(tlsext, .timeout = 30);

/* Valid bodies: 1.0 with the three known key parameters, a draft with one, 1.0 with one
 * unknown value, the longest list (255 values). */
static const uint8_t body_rfc3[] = {
    1, 0, 3, TB_KP_ECDSAP256, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};
static const uint8_t body_draft1[] = {0, 13, 1, TB_KP_ECDSAP256};
static const uint8_t body_unknown[] = {1, 0, 2, 0x7f, 0xff};

static size_t body_max(uint8_t *out)
{
    size_t i;

    out[0] = 1;
    out[1] = 0;
    out[2] = 255;
    for (i = 0; i < 255; i++)
        out[3 + i] = (uint8_t)(254 - i);
    return 3 + 255;
}

/* An offer (or answer) of major.minor with the n values given. */
static struct tb_ext_params mk(uint8_t major, uint8_t minor, size_t n, const uint8_t *kp)
{
    struct tb_ext_params p;

    memset(&p, 0xa5, sizeof(p)); /* garbage beyond n */
    p.major = major;
    p.minor = minor;
    p.n = n;
    memcpy(p.key_params, kp, n);
    return p;
}

static const uint8_t all3[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};

/* Parses body exactly as it is, then refuses each of its truncations and each extension by one
 * byte. */
static void check_exact(const char *what, const uint8_t *body, size_t len)
{
    uint8_t buf[TB_EXT_MAX_LEN + 8];
    struct tb_ext_params p;
    size_t cut;
    int x;

    cr_assert_leq(len, TB_EXT_MAX_LEN);
    memcpy(buf, body, len);
    cr_assert_eq(tb_ext_parse(buf, len, &p), 0, "%s: the valid body does not parse", what);
    cr_expect_eq(p.major, body[0], "%s: major", what);
    cr_expect_eq(p.minor, body[1], "%s: minor", what);
    cr_expect_eq(p.n, body[2], "%s: n", what);
    cr_expect(memcmp(p.key_params, body + 3, body[2]) == 0, "%s: key parameters", what);
    for (cut = 0; cut < len; cut++)
        cr_expect_eq(tb_ext_parse(buf, cut, &p), TB_EPARSE, "%s: truncated to %zu of %zu bytes",
                     what, cut, len);
    for (x = 0; x < 256; x += 85) { /* any trailing byte, 0 too */
        buf[len] = (uint8_t)x;
        cr_expect_eq(tb_ext_parse(buf, len + 1, &p), TB_EPARSE, "%s: trailing byte 0x%02x", what,
                     x);
        buf[len + 1] = 0;
        cr_expect_eq(tb_ext_parse(buf, len + 2, &p), TB_EPARSE, "%s: two trailing bytes", what);
    }
}

Test(tlsext, parse_exact_and_truncations)
{
    uint8_t max[TB_EXT_MAX_LEN];
    size_t n = body_max(max);

    check_exact("rfc3", body_rfc3, sizeof(body_rfc3));
    check_exact("draft1", body_draft1, sizeof(body_draft1));
    check_exact("unknown", body_unknown, sizeof(body_unknown));
    check_exact("max", max, n);
}

Test(tlsext, parse_list_length_mismatch)
{
    uint8_t b[8] = {1, 0, 2, 2, 1, 0};
    struct tb_ext_params p;

    /* the length byte says more than is there, or less */
    cr_expect_eq(tb_ext_parse(b, 4, &p), TB_EPARSE);
    cr_expect_eq(tb_ext_parse(b, 6, &p), TB_EPARSE);
    b[2] = 3;
    cr_expect_eq(tb_ext_parse(b, 6, &p), 0);
    cr_expect_eq(p.n, 3);
    b[2] = 255; /* 255 announced, 3 present */
    cr_expect_eq(tb_ext_parse(b, 6, &p), TB_EPARSE);
}

Test(tlsext, parse_empty_list)
{
    static const uint8_t b[] = {1, 0, 0};
    struct tb_ext_params p;

    cr_expect_eq(tb_ext_parse(b, sizeof(b), &p), TB_EPARSE);
    cr_expect_eq(tb_ext_parse(b, 0, &p), TB_EPARSE);
    cr_expect_eq(tb_ext_parse(NULL, 4, &p), TB_EPARSE);
    cr_expect_eq(tb_ext_parse(body_rfc3, sizeof(body_rfc3), NULL), TB_EPARSE);
}

Test(tlsext, parse_max_list)
{
    uint8_t b[TB_EXT_MAX_LEN];
    struct tb_ext_params p;
    size_t n = body_max(b), i;

    cr_assert_eq(n, TB_EXT_MAX_LEN);
    cr_assert_eq(tb_ext_parse(b, n, &p), 0);
    cr_expect_eq(p.n, 255);
    for (i = 0; i < 255; i++)
        cr_expect_eq(p.key_params[i], 254 - i, "key_params[%zu]", i);
}

Test(tlsext, parse_takes_any_version)
{
    /* version rules are negotiation's, not the codec's */
    static const uint8_t b[] = {7, 200, 1, 2};
    struct tb_ext_params p;

    cr_expect_eq(tb_ext_parse(b, sizeof(b), &p), 0);
    cr_expect(p.major == 7 && p.minor == 200 && p.n == 1 && p.key_params[0] == 2);
}

Test(tlsext, encode_round_trip)
{
    uint8_t max[TB_EXT_MAX_LEN], out[TB_EXT_MAX_LEN + 4];
    const uint8_t *bodies[] = {body_rfc3, body_draft1, body_unknown, max};
    size_t lens[] = {sizeof(body_rfc3), sizeof(body_draft1), sizeof(body_unknown), 0};
    struct tb_ext_params p, q;
    size_t i;
    int n;

    lens[3] = body_max(max);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(tb_ext_parse(bodies[i], lens[i], &p), 0, "body %zu", i);
        memset(out, 0xee, sizeof(out));
        n = tb_ext_encode(&p, out, lens[i]); /* the exact size is enough */
        cr_expect_eq(n, (int)lens[i], "body %zu: encode returned %d", i, n);
        cr_expect(memcmp(out, bodies[i], lens[i]) == 0, "body %zu: bytes differ", i);
        cr_expect_eq(out[lens[i]], 0xee, "body %zu: wrote past its length", i);
        cr_expect_eq(tb_ext_parse(out, (size_t)n, &q), 0);
        cr_expect(q.major == p.major && q.minor == p.minor && q.n == p.n &&
                      memcmp(q.key_params, p.key_params, p.n) == 0,
                  "body %zu: parse(encode(x)) != x", i);
    }
}

Test(tlsext, encode_cap_too_small)
{
    struct tb_ext_params p = mk(1, 0, 3, all3);
    uint8_t out[16];
    size_t cap;

    for (cap = 0; cap < 6; cap++) {
        memset(out, 0xee, sizeof(out));
        cr_expect_eq(tb_ext_encode(&p, out, cap), TB_EINVAL, "cap %zu", cap);
        cr_expect_eq(out[cap], 0xee, "cap %zu: wrote past the buffer", cap);
    }
    cr_expect_eq(tb_ext_encode(&p, out, 6), 6);
    cr_expect_eq(tb_ext_encode(&p, out, sizeof(out)), 6);
}

Test(tlsext, encode_bad_count)
{
    struct tb_ext_params p = mk(1, 0, 3, all3);
    uint8_t out[TB_EXT_MAX_LEN + 16];

    p.n = 0;
    cr_expect_eq(tb_ext_encode(&p, out, sizeof(out)), TB_EINVAL);
    p.n = 256;
    cr_expect_eq(tb_ext_encode(&p, out, sizeof(out)), TB_EINVAL);
    p.n = 255;
    cr_expect_eq(tb_ext_encode(&p, out, sizeof(out)), TB_EXT_MAX_LEN);
    cr_expect_eq(out[2], 255);
    cr_expect_eq(tb_ext_encode(NULL, out, sizeof(out)), TB_EINVAL);
    cr_expect_eq(tb_ext_encode(&p, NULL, sizeof(out)), TB_EINVAL);
}

Test(tlsext, version_ok)
{
    int major, minor, want;

    for (major = 0; major < 256; major++) {
        for (minor = 0; minor < 256; minor++) {
            want = (major == 1 && minor == 0) || (major == 0 && minor >= 13 && minor <= 16);
            cr_expect_eq(tb_ext_version_ok((uint8_t)major, (uint8_t)minor), want, "%d.%d", major,
                         minor);
        }
    }
}

/* The server's answer to an offer of major.minor with all three key parameters, p256 first. */
static int select_version(uint8_t major, uint8_t minor, struct tb_ext_params *a)
{
    static const int prefs[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS};
    struct tb_ext_params o = mk(major, minor, 3, all3);

    memset(a, 0x5a, sizeof(*a));
    return tb_ext_server_select(&o, prefs, 2, a);
}

Test(tlsext, server_select_versions)
{
    static const struct {
        uint8_t major, minor;
        int ret;
        uint8_t amajor, aminor;
    } t[] = {
        {1, 0, 0, 1, 0},
        {1, 1, 0, 1, 0},
        {1, 255, 0, 1, 0},
        {2, 0, 0, 1, 0},
        {255, 255, 0, 1, 0},
        {0, 13, 0, 0, 13},
        {0, 14, 0, 0, 14},
        {0, 15, 0, 0, 15},
        {0, 16, 0, 0, 16},
        {0, 17, TB_EUNSUPPORTED, 0, 0},
        {0, 100, TB_EUNSUPPORTED, 0, 0},
        {0, 255, TB_EUNSUPPORTED, 0, 0},
        {0, 12, TB_EUNSUPPORTED, 0, 0},
        {0, 10, TB_EUNSUPPORTED, 0, 0},
        {0, 1, TB_EUNSUPPORTED, 0, 0},
        {0, 0, TB_EUNSUPPORTED, 0, 0},
    };
    struct tb_ext_params a;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ret = select_version(t[i].major, t[i].minor, &a);
        cr_expect_eq(ret, t[i].ret, "offer %u.%u: returned %d, expected %d", t[i].major, t[i].minor,
                     ret, t[i].ret);
        if (ret != 0 || t[i].ret != 0)
            continue;
        cr_expect(a.major == t[i].amajor && a.minor == t[i].aminor,
                  "offer %u.%u: answered %u.%u, expected %u.%u", t[i].major, t[i].minor, a.major,
                  a.minor, t[i].amajor, t[i].aminor);
        cr_expect_eq(a.n, 1, "offer %u.%u: answer with %zu values", t[i].major, t[i].minor, a.n);
        cr_expect_eq(a.key_params[0], TB_KP_ECDSAP256);
        cr_expect(tb_ext_version_ok(a.major, a.minor), "offer %u.%u: answered %u.%u", t[i].major,
                  t[i].minor, a.major, a.minor);
    }
}

/* Every offered version: the answer is a version we speak. */
Test(tlsext, server_select_all_versions)
{
    struct tb_ext_params a, o;
    int major, minor, ret;

    for (major = 0; major < 256; major++) {
        for (minor = 0; minor < 256; minor++) {
            ret = select_version((uint8_t)major, (uint8_t)minor, &a);
            if (major == 0 && (minor < 13 || minor > 16)) {
                cr_expect_eq(ret, TB_EUNSUPPORTED, "offer %d.%d", major, minor);
                continue;
            }
            cr_expect_eq(ret, 0, "offer %d.%d", major, minor);
            cr_expect(tb_ext_version_ok(a.major, a.minor), "offer %d.%d: answer %u.%u", major,
                      minor, a.major, a.minor);
            /* a client of ours accepts it: never above what it offered */
            o = mk((uint8_t)major, (uint8_t)minor, 3, all3);
            cr_expect_eq(tb_ext_client_check(&o, &a), 0,
                         "offer %d.%d: the client's check of %u.%u", major, minor, a.major,
                         a.minor);
        }
    }
}

Test(tlsext, server_select_prefers_its_own_order)
{
    static const uint8_t client[] = {TB_KP_RSA2048_PKCS1, TB_KP_RSA2048_PSS, TB_KP_ECDSAP256};
    static const int p256_first[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};
    static const int pss_first[] = {TB_KP_RSA2048_PSS, TB_KP_ECDSAP256};
    struct tb_ext_params o = mk(1, 0, 3, client), a;

    cr_assert_eq(tb_ext_server_select(&o, p256_first, 3, &a), 0);
    cr_expect_eq(a.n, 1);
    cr_expect_eq(a.key_params[0], TB_KP_ECDSAP256, "the client's first choice won");
    cr_assert_eq(tb_ext_server_select(&o, pss_first, 2, &a), 0);
    cr_expect_eq(a.key_params[0], TB_KP_RSA2048_PSS);
    /* a preference the client did not offer is skipped */
    o = mk(1, 0, 1, client); /* pkcs1.5 only */
    cr_assert_eq(tb_ext_server_select(&o, p256_first, 3, &a), 0);
    cr_expect_eq(a.key_params[0], TB_KP_RSA2048_PKCS1);
}

Test(tlsext, server_select_nothing_in_common)
{
    static const uint8_t client[] = {TB_KP_RSA2048_PKCS1, TB_KP_RSA2048_PSS};
    static const int p256[] = {TB_KP_ECDSAP256};
    static const int odd[] = {-1, 256, 1000};
    struct tb_ext_params o = mk(1, 0, 2, client), a;

    cr_expect_eq(tb_ext_server_select(&o, p256, 1, &a), TB_EUNSUPPORTED);
    cr_expect_eq(tb_ext_server_select(&o, NULL, 0, &a), TB_EUNSUPPORTED);
    cr_expect_eq(tb_ext_server_select(&o, p256, 0, &a), TB_EUNSUPPORTED);
    /* preferences outside a byte never match a byte of the offer (256 is not 0) */
    cr_expect_eq(tb_ext_server_select(&o, odd, 3, &a), TB_EUNSUPPORTED);
    /* a draft version with nothing in common is not answered either */
    o = mk(0, 14, 2, client);
    cr_expect_eq(tb_ext_server_select(&o, p256, 1, &a), TB_EUNSUPPORTED);
}

Test(tlsext, server_select_ignores_unknown_values)
{
    static const uint8_t client[] = {0x7f, 3, 0xff, TB_KP_ECDSAP256, 200};
    static const int prefs[] = {TB_KP_RSA2048_PSS, TB_KP_ECDSAP256};
    static const uint8_t only_unknown[] = {3, 4, 0xff};
    struct tb_ext_params o = mk(1, 0, sizeof(client), client), a;

    cr_assert_eq(tb_ext_server_select(&o, prefs, 2, &a), 0);
    cr_expect_eq(a.n, 1);
    cr_expect_eq(a.key_params[0], TB_KP_ECDSAP256);
    cr_expect(a.major == 1 && a.minor == 0);
    o = mk(1, 0, sizeof(only_unknown), only_unknown);
    cr_expect_eq(tb_ext_server_select(&o, prefs, 2, &a), TB_EUNSUPPORTED);
}

Test(tlsext, server_select_bad_offer)
{
    static const int prefs[] = {TB_KP_ECDSAP256};
    struct tb_ext_params o = mk(1, 0, 3, all3), a;

    o.n = 0;
    cr_expect_eq(tb_ext_server_select(&o, prefs, 1, &a), TB_EUNSUPPORTED);
    o.n = 256;
    cr_expect_eq(tb_ext_server_select(&o, prefs, 1, &a), TB_EUNSUPPORTED);
    cr_expect_eq(tb_ext_server_select(NULL, prefs, 1, &a), TB_EUNSUPPORTED);
    o.n = 3;
    cr_expect_eq(tb_ext_server_select(&o, prefs, 1, NULL), TB_EUNSUPPORTED);
}

Test(tlsext, client_check_accepts)
{
    static const uint8_t p256[] = {TB_KP_ECDSAP256}, pss[] = {TB_KP_RSA2048_PSS};
    struct tb_ext_params o = mk(1, 0, 3, all3), a;

    a = mk(1, 0, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
    a = mk(1, 0, 1, pss); /* not the client's first choice: the server decides */
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
    a = mk(0, 16, 1, p256); /* a lower version the client speaks */
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
    a = mk(0, 13, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
    o = mk(0, 15, 3, all3);
    a = mk(0, 15, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
    a = mk(0, 14, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), 0);
}

Test(tlsext, client_check_aborts)
{
    static const uint8_t two[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS};
    static const uint8_t pkcs1[] = {TB_KP_RSA2048_PKCS1}, p256[] = {TB_KP_ECDSAP256};
    static const uint8_t unknown[] = {0x7f};
    struct tb_ext_params o = mk(1, 0, 2, two), a;

    a = mk(1, 0, 2, two); /* two values */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(1, 0, 0, two); /* none */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(1, 0, 1, pkcs1); /* not offered */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(1, 0, 1, unknown);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(1, 1, 1, p256); /* higher versions */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(2, 0, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    o = mk(0, 14, 2, two);
    a = mk(0, 15, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    a = mk(1, 0, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    /* a higher unsupported version is still an abort, not "go on without" */
    a = mk(0, 200, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    cr_expect_eq(tb_ext_client_check(NULL, &a), TB_EPARSE);
    cr_expect_eq(tb_ext_client_check(&o, NULL), TB_EPARSE);
}

Test(tlsext, client_check_unsupported_lower_version)
{
    static const uint8_t p256[] = {TB_KP_ECDSAP256};
    struct tb_ext_params o = mk(1, 0, 3, all3), a;

    a = mk(0, 10, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EUNSUPPORTED);
    a = mk(0, 12, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EUNSUPPORTED);
    a = mk(0, 0, 1, p256);
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EUNSUPPORTED);
    a = mk(0, 17, 1, p256); /* below 1.0, above the drafts: not a version anyone speaks */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EUNSUPPORTED);
    /* but a bad key parameters value is still an abort, whatever the version */
    a = mk(0, 10, 1, (const uint8_t[]){0x7f});
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
}

/* An offer whose n is out of range (a caller's bug) is refused, not read past its array. */
Test(tlsext, client_check_bad_offer)
{
    static const uint8_t p256[] = {TB_KP_ECDSAP256};
    struct tb_ext_params o = mk(1, 0, 3, all3), a = mk(1, 0, 1, p256);

    o.n = 0;
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
    o.n = 1000;
    memset(o.key_params, 0x7f, sizeof(o.key_params)); /* p256 is not among the real entries */
    cr_expect_eq(tb_ext_client_check(&o, &a), TB_EPARSE);
}
