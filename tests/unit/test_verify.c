/*
 * The verifier: its key cache (hits, misses, LRU eviction, no entry for a key whose signature
 * failed), per-thread verifiers, invalid keys (a point off the curve, a bad RSA exponent),
 * unsupported keys, and the header-level checks of tb_verify_header.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "keys.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tb/sign.h"
#include "tb/verify.h"

static struct tbt_keyset fixed; /* the fixed keys, by the names the tests use */
#define p256_a (fixed.p256_a)
#define p256_b (fixed.p256_b)
#define rsa_a (fixed.rsa_a)
#define rsa_b (fixed.rsa_b)

static void setup(void)
{
    tbt_keyset_load(&fixed);
}

static void teardown(void)
{
    tbt_keyset_free(&fixed);
}

TestSuite(verify, .init = setup, .fini = teardown);

/* LeakSanitizer's on-demand check, present only in sanitizer builds. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static const uint8_t channel_draft[12] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6,
                                          0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c};
static const uint8_t channel_rfc[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t other_rfc[32] = {0xff};

static const uint8_t *channel_of(enum tb_version v, size_t *len)
{
    *len = v == TB_VERSION_DRAFT ? sizeof(channel_draft) : sizeof(channel_rfc);
    return v == TB_VERSION_DRAFT ? channel_draft : channel_rfc;
}

struct header {
    enum tb_version version;
    int negotiated;
    char value[TB_MAX_HEADER + 1];
    size_t len;
};

static void header_of(struct tb_builder *b, int negotiated, struct header *h)
{
    int n = tb_builder_header(b, h->value, sizeof(h->value));

    cr_assert_gt(n, 0);
    h->version = b->version;
    h->negotiated = negotiated;
    h->len = (size_t)n;
}

/* A header with one provided binding for key, signed over the version's channel. */
static void provided_header(enum tb_version v, int kp, EVP_PKEY *key, struct header *h)
{
    struct tb_builder b;
    size_t ch_len;
    const uint8_t *ch = channel_of(v, &ch_len);

    tb_builder_init(&b, v);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, kp, key, ch, ch_len), 0);
    header_of(&b, kp, h);
}

static int verify_with(struct tb_verifier *v, const struct header *h, const uint8_t *ch,
                       size_t ch_len)
{
    static struct tb_verified out;

    return tb_verify_header(v, h->version, h->negotiated, h->value, h->len, ch, ch_len, &out);
}

static int verify(struct tb_verifier *v, const struct header *h)
{
    size_t ch_len;
    const uint8_t *ch = channel_of(h->version, &ch_len);

    return verify_with(v, h, ch, ch_len);
}

#define EXPECT_STATS(v, h, m, ev, en)                                                              \
    do {                                                                                           \
        struct tb_verifier_stats s_;                                                               \
        tb_verifier_get_stats((v), &s_);                                                           \
        cr_expect_eq(s_.hits, (uint64_t)(h), "hits %llu, want %d", (unsigned long long)s_.hits,    \
                     (int)(h));                                                                    \
        cr_expect_eq(s_.misses, (uint64_t)(m), "misses %llu, want %d",                             \
                     (unsigned long long)s_.misses, (int)(m));                                     \
        cr_expect_eq(s_.evictions, (uint64_t)(ev), "evictions %llu, want %d",                      \
                     (unsigned long long)s_.evictions, (int)(ev));                                 \
        cr_expect_eq(s_.entries, (size_t)(en), "entries %zu, want %d", s_.entries, (int)(en));     \
    } while (0)

/* --- the key cache ------------------------------------------------------------------------- */

Test(verify, first_verify_misses_second_hits)
{
    static const struct {
        enum tb_version v;
        int kp;
        int rsa;
    } cases[] = {
        {TB_VERSION_DRAFT, TB_KP_ECDSAP256, 0}, {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, 1},
        {TB_VERSION_RFC, TB_KP_ECDSAP256, 0},   {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, 1},
        {TB_VERSION_RFC, TB_KP_RSA2048_PSS, 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tb_verifier *v = tb_verifier_new(0);
        struct header h;

        cr_assert_not_null(v);
        EXPECT_STATS(v, 0, 0, 0, 0);
        provided_header(cases[i].v, cases[i].kp, cases[i].rsa ? rsa_a : p256_a, &h);
        cr_assert_eq(verify(v, &h), 0, "case %zu", i);
        EXPECT_STATS(v, 0, 1, 0, 1);
        cr_assert_eq(verify(v, &h), 0);
        EXPECT_STATS(v, 1, 1, 0, 1);
        cr_assert_eq(verify(v, &h), 0);
        EXPECT_STATS(v, 2, 1, 0, 1);
        tb_verifier_free(v);
    }
}

Test(verify, same_key_in_other_version_or_padding_is_another_entry)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header d, r, pss;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, rsa_a, &d);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, rsa_a, &r);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PSS, rsa_a, &pss);
    cr_assert_eq(verify(v, &d), 0);
    cr_assert_eq(verify(v, &r), 0);
    cr_assert_eq(verify(v, &pss), 0);
    EXPECT_STATS(v, 0, 3, 0, 3);
    cr_assert_eq(verify(v, &pss), 0);
    cr_assert_eq(verify(v, &d), 0);
    EXPECT_STATS(v, 2, 3, 0, 3);
    tb_verifier_free(v);
}

Test(verify, provided_and_referred_keys_each_cached)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct tb_builder b;
    struct header h;

    cr_assert_not_null(v);
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_rfc, 32), 0);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_REFERRED, TB_KP_RSA2048_PSS, rsa_b, channel_rfc, 32), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_assert_eq(verify(v, &h), 0);
    EXPECT_STATS(v, 0, 2, 0, 2);
    cr_assert_eq(verify(v, &h), 0);
    EXPECT_STATS(v, 2, 2, 0, 2);
    tb_verifier_free(v);
}

Test(verify, failed_signature_with_new_key_is_not_cached)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header h;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_a, &h);
    cr_expect_eq(verify_with(v, &h, other_rfc, 32), TB_ESIGNATURE);
    EXPECT_STATS(v, 0, 1, 0, 0);
    cr_expect_eq(verify_with(v, &h, other_rfc, 32), TB_ESIGNATURE);
    EXPECT_STATS(v, 0, 2, 0, 0);
    /* the good signature then builds the key again: it was not kept */
    cr_assert_eq(verify(v, &h), 0);
    EXPECT_STATS(v, 0, 3, 0, 1);
    /* a failed signature with a cached key keeps the entry */
    cr_expect_eq(verify_with(v, &h, other_rfc, 32), TB_ESIGNATURE);
    EXPECT_STATS(v, 1, 3, 0, 1);
    cr_assert_eq(verify(v, &h), 0);
    EXPECT_STATS(v, 2, 3, 0, 1);
    tb_verifier_free(v);
}

Test(verify, failed_rsa_signature_with_new_key_is_not_cached)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header h;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PSS, rsa_a, &h);
    cr_expect_eq(verify_with(v, &h, other_rfc, 32), TB_ESIGNATURE);
    EXPECT_STATS(v, 0, 1, 0, 0);
    provided_header(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, rsa_b, &h);
    cr_expect_eq(verify_with(v, &h, other_rfc, 12), TB_ESIGNATURE);
    EXPECT_STATS(v, 0, 2, 0, 0);
    tb_verifier_free(v);
}

Test(verify, capacity_two_evicts_least_recently_used)
{
    struct tb_verifier *v = tb_verifier_new(2);
    struct header a, b, c;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_a, &a);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_b, &b);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, rsa_a, &c);

    cr_assert_eq(verify(v, &a), 0); /* a */
    cr_assert_eq(verify(v, &b), 0); /* b a */
    EXPECT_STATS(v, 0, 2, 0, 2);
    cr_assert_eq(verify(v, &a), 0); /* a b: a is now the most recent */
    EXPECT_STATS(v, 1, 2, 0, 2);
    cr_assert_eq(verify(v, &c), 0); /* c a: b, the least recent, evicted */
    EXPECT_STATS(v, 1, 3, 1, 2);
    cr_assert_eq(verify(v, &a), 0); /* a c: a survived */
    EXPECT_STATS(v, 2, 3, 1, 2);
    cr_assert_eq(verify(v, &b), 0); /* b a: b is a miss again, c evicted */
    EXPECT_STATS(v, 2, 4, 2, 2);
    cr_assert_eq(verify(v, &c), 0); /* c b: c is a miss again, a evicted */
    EXPECT_STATS(v, 2, 5, 3, 2);
    cr_assert_eq(verify(v, &b), 0);
    EXPECT_STATS(v, 3, 5, 3, 2);
    tb_verifier_free(v);
}

Test(verify, capacity_one)
{
    struct tb_verifier *v = tb_verifier_new(1);
    struct header a, b;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p256_a, &a);
    provided_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p256_b, &b);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(verify(v, &a), 0);
        cr_assert_eq(verify(v, &b), 0);
    }
    EXPECT_STATS(v, 0, 6, 5, 1);
    cr_assert_eq(verify(v, &b), 0);
    EXPECT_STATS(v, 1, 6, 5, 1);
    tb_verifier_free(v);
}

Test(verify, many_keys_through_small_cache)
{
    /* more keys than the cache holds, several rounds: the counts must add up */
    enum { KEYS = 12, CAP = 5, ROUNDS = 3 };
    struct tb_verifier *v = tb_verifier_new(CAP);
    static struct header h[KEYS];
    EVP_PKEY *k[KEYS];

    cr_assert_not_null(v);
    for (int i = 0; i < KEYS; i++) {
        cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &k[i]), 0);
        provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, k[i], &h[i]);
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < KEYS; i++)
            cr_assert_eq(verify(v, &h[i]), 0);
    /* cyclic access larger than the cache: every access misses under LRU */
    EXPECT_STATS(v, 0, KEYS * ROUNDS, KEYS * ROUNDS - CAP, CAP);
    for (int i = KEYS - CAP; i < KEYS; i++)
        cr_assert_eq(verify(v, &h[i]), 0);
    EXPECT_STATS(v, CAP, KEYS * ROUNDS, KEYS * ROUNDS - CAP, CAP);
    for (int i = 0; i < KEYS; i++)
        EVP_PKEY_free(k[i]);
    tb_verifier_free(v);
}

Test(verify, free_null_is_a_noop)
{
    tb_verifier_free(NULL);
    struct tb_verifier *v = tb_verifier_new(0);
    cr_assert_not_null(v);
    tb_verifier_free(v);
}

/* --- per-thread verifiers ------------------------------------------------------------------ */

struct thread_result {
    const struct header *h;
    struct tb_verifier *first, *second;
    int verified;
    struct tb_verifier_stats stats;
};

static void *thread_main(void *arg)
{
    struct thread_result *r = arg;

    r->first = tb_verifier_thread();
    r->second = tb_verifier_thread();
    if (r->first != NULL) {
        /* leave keys in the cache: its entries must be freed with it at thread exit */
        r->verified = verify(r->first, r->h) == 0 && verify(r->first, r->h) == 0;
        tb_verifier_get_stats(r->first, &r->stats);
    }
    return NULL;
}

Test(verify, thread_verifier_is_per_thread_and_freed_at_exit)
{
    struct header h;
    struct thread_result r = {0};
    pthread_t t;

    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PSS, rsa_a, &h);
    r.h = &h;
    struct tb_verifier *m1 = tb_verifier_thread();
    struct tb_verifier *m2 = tb_verifier_thread();
    cr_assert_not_null(m1);
    cr_expect_eq(m1, m2, "same verifier twice on one thread");
    cr_assert_eq(verify(m1, &h), 0);

    cr_assert_eq(pthread_create(&t, NULL, thread_main, &r), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_not_null(r.first);
    cr_expect_eq(r.first, r.second, "same verifier twice on the other thread");
    cr_expect_neq(r.first, m1, "each thread has its own verifier");
    cr_expect(r.verified);
    cr_expect_eq(r.stats.misses, 1u, "the other thread's cache starts empty");
    cr_expect_eq(r.stats.hits, 1u);
    cr_expect_eq(r.stats.entries, 1u);

    /* the main thread's verifier is untouched by the other thread */
    struct tb_verifier_stats s;
    tb_verifier_get_stats(m1, &s);
    cr_expect_eq(s.misses, 1u);
    cr_expect_eq(s.hits, 0u);
    cr_expect_eq(tb_verifier_thread(), m1);

    /* the exited thread's verifier (and its cached key) must have been freed */
    if (__lsan_do_recoverable_leak_check != NULL)
        cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "no leak after thread exit");

    tb_verifier_thread_release();
    tb_verifier_thread_release(); /* twice is harmless */
}

Test(verify, thread_release_then_new_verifier)
{
    struct header h;

    provided_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p256_a, &h);
    struct tb_verifier *v = tb_verifier_thread();
    cr_assert_not_null(v);
    cr_assert_eq(verify(v, &h), 0);
    tb_verifier_thread_release();
    v = tb_verifier_thread();
    cr_assert_not_null(v);
    struct tb_verifier_stats s;
    tb_verifier_get_stats(v, &s);
    cr_expect_eq(s.misses + s.hits + s.entries, 0u, "a fresh verifier after release");
    cr_assert_eq(verify(v, &h), 0);
    tb_verifier_thread_release();
}

static void *many_threads_main(void *arg)
{
    const struct header *h = arg;
    struct tb_verifier *v = tb_verifier_thread();

    return (void *)(intptr_t)(v != NULL && verify(v, h) == 0 && tb_verifier_thread() == v);
}

Test(verify, many_threads_each_get_a_verifier)
{
    enum { N = 8 };
    struct header h;
    pthread_t t[N];

    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_b, &h);
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, many_threads_main, &h), 0);
    for (int i = 0; i < N; i++) {
        void *ok = NULL;
        cr_assert_eq(pthread_join(t[i], &ok), 0);
        cr_expect_eq((intptr_t)ok, 1, "thread %d", i);
    }
    if (__lsan_do_recoverable_leak_check != NULL)
        cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "no leak after threads exit");
}

/* --- invalid and unsupported keys ---------------------------------------------------------- */

/* The first binding of a header's decoded message (parsed into the caller's storage). */
static void first_binding(const struct header *h, uint8_t *buf, struct tb_message *m)
{
    int n = tb_base64url_decode(h->value, h->len, buf, TB_MAX_MESSAGE);

    cr_assert_gt(n, 0);
    cr_assert_eq(tb_message_parse(h->version, buf, (size_t)n, m), 0);
}

/* A header of one provided binding made of raw parts. */
static void raw_header(enum tb_version v, int negotiated, const uint8_t *id, size_t id_len,
                       const struct tb_slice *sig, struct header *h)
{
    struct tb_builder b;
    struct tb_binding x;

    memset(&x, 0, sizeof(x));
    x.type = TB_TYPE_PROVIDED;
    x.id = (struct tb_slice){id, id_len};
    x.sig = *sig;
    x.ext = (struct tb_slice){(const uint8_t *)"", 0};
    tb_builder_init(&b, v);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    header_of(&b, negotiated, h);
}

Test(verify, point_off_the_curve_is_a_signature_error)
{
    for (int ver = TB_VERSION_DRAFT; ver <= TB_VERSION_RFC; ver++) {
        struct tb_verifier *v = tb_verifier_new(0);
        struct header good, bad;
        struct tb_message m;
        static uint8_t buf[TB_MAX_MESSAGE];
        uint8_t id[80];
        size_t n = 0;

        cr_assert_not_null(v);
        provided_header((enum tb_version)ver, TB_KP_ECDSAP256, p256_a, &good);
        first_binding(&good, buf, &m);
        if (ver == TB_VERSION_RFC) {
            id[n++] = TB_KP_ECDSAP256; /* built by hand: key_length 65, point_len 64 */
            id[n++] = 0;
            id[n++] = 65;
            id[n++] = 64;
        } else {
            id[n++] = 4; /* sha256, ecdsa, secp256r1, 65-byte uncompressed point */
            id[n++] = 3;
            id[n++] = 0;
            id[n++] = 23;
            id[n++] = 65;
            id[n++] = 0x04;
        }
        memcpy(id + n, m.b[0].point.p, 64);
        id[n + 63] ^= 0x01; /* Y changed: (X, Y^1) is not on P-256 */
        raw_header((enum tb_version)ver, TB_KP_ECDSAP256, id, n + 64, &m.b[0].sig, &bad);
        int ret = verify(v, &bad);
        cr_expect_eq(ret, TB_ESIGNATURE, "%s: off-curve point gave %s",
                     tb_version_name((enum tb_version)ver), tb_strerror(ret));
        EXPECT_STATS(v, 0, 1, 0, 0);

        /* (0, 0) and coordinates >= p are not points either */
        memset(id + n, 0x00, 64);
        raw_header((enum tb_version)ver, TB_KP_ECDSAP256, id, n + 64, &m.b[0].sig, &bad);
        cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
        memset(id + n, 0xff, 64);
        raw_header((enum tb_version)ver, TB_KP_ECDSAP256, id, n + 64, &m.b[0].sig, &bad);
        cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
        EXPECT_STATS(v, 0, 3, 0, 0);

        /* the untouched key still verifies */
        cr_expect_eq(verify(v, &good), 0);
        EXPECT_STATS(v, 0, 4, 0, 1);
        tb_verifier_free(v);
    }
}

Test(verify, point_off_the_curve_via_verify_binding)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header good;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];
    uint8_t point[64];

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_b, &good);
    first_binding(&good, buf, &m);
    cr_expect_eq(tb_verify_binding(v, TB_VERSION_RFC, &m.b[0], channel_rfc, 32), 0);
    struct tb_binding x = m.b[0];
    memcpy(point, x.point.p, 64);
    point[10] ^= 0x40;
    x.point = (struct tb_slice){point, 64};
    x.id = (struct tb_slice){point, 64}; /* a different cache key than the good binding */
    cr_expect_eq(tb_verify_binding(v, TB_VERSION_RFC, &x, channel_rfc, 32), TB_ESIGNATURE);
    tb_verifier_free(v);
}

Test(verify, unsupported_key_params_are_unsupported)
{
    static const uint8_t rfc_unknown_id[] = {0x09, 0x00, 0x03, 0xaa, 0xbb, 0xcc};
    struct tb_verifier *v = tb_verifier_new(0);
    struct header good, h;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];
    uint8_t sig[64] = {1};

    cr_assert_not_null(v);
    /* a binding the codec marked unsupported */
    raw_header(TB_VERSION_RFC, TB_KP_ECDSAP256, rfc_unknown_id, sizeof(rfc_unknown_id),
               &(struct tb_slice){sig, sizeof(sig)}, &h);
    first_binding(&h, buf, &m);
    cr_assert_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    cr_expect_eq(tb_verify_binding(v, TB_VERSION_RFC, &m.b[0], channel_rfc, 32), TB_EUNSUPPORTED);
    /* a valid binding with its key parameters overridden */
    provided_header(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, rsa_a, &good);
    first_binding(&good, buf, &m);
    struct tb_binding x = m.b[0];
    x.key_params = TB_KP_UNSUPPORTED;
    cr_expect_eq(tb_verify_binding(v, TB_VERSION_DRAFT, &x, channel_draft, 12), TB_EUNSUPPORTED);
    tb_verifier_free(v);
}

Test(verify, referred_with_unsupported_key_rejects_header)
{
    /* draft RSA-1024 (1-byte modulus here: only its length matters) as the referred key */
    static const uint8_t small_rsa[] = {4, 1, 0, 1, 0xab, 1, 3};
    struct tb_verifier *v = tb_verifier_new(0);
    struct tb_builder b;
    struct tb_binding x;
    struct header h;

    cr_assert_not_null(v);
    memset(&x, 0, sizeof(x));
    x.type = TB_TYPE_REFERRED;
    x.id = (struct tb_slice){small_rsa, sizeof(small_rsa)};
    x.sig = (struct tb_slice){small_rsa, 1};
    x.ext = (struct tb_slice){small_rsa, 0};
    tb_builder_init(&b, TB_VERSION_DRAFT);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_draft, 12), 0);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_expect_eq(verify(v, &h), TB_EUNSUPPORTED);
    tb_verifier_free(v);
}

/* Replaces the RSA exponent or modulus of a real binding and expects TB_ESIGNATURE. */
Test(verify, invalid_rsa_keys_are_signature_errors)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header good, bad;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];
    uint8_t id[600];

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, rsa_a, &good);
    first_binding(&good, buf, &m);
    const struct tb_binding *g = &m.b[0];
    size_t id_len = g->id.len;
    size_t e_off = (size_t)(g->exponent.p - g->id.p);
    size_t n_off = (size_t)(g->modulus.p - g->id.p);

    memcpy(id, g->id.p, id_len);
    id[e_off + 2] = 0x00; /* e = 65536: even */
    raw_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, id, id_len, &g->sig, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);

    memcpy(id, g->id.p, id_len);
    memset(id + e_off, 0, 3); /* e = 0 */
    raw_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, id, id_len, &g->sig, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);

    memcpy(id, g->id.p, id_len);
    id[n_off] = 0x00; /* a 256-byte modulus of fewer than 2048 bits */
    raw_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, id, id_len, &g->sig, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);

    memcpy(id, g->id.p, id_len);
    id[n_off + 255] ^= 0x01; /* an even modulus */
    raw_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, id, id_len, &g->sig, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);

    EXPECT_STATS(v, 0, 4, 0, 0);
    tb_verifier_free(v);
}

/*
 * With e = 1 the "signature" is the PKCS#1 v1.5 encoding of the digest itself: anyone could
 * make it for any modulus. Such a key must never verify.
 */
Test(verify, rsa_exponent_one_is_rejected)
{
    static const uint8_t digest_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
    struct tb_verifier *v = tb_verifier_new(0);
    struct header good, bad;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];
    uint8_t id[600], tbs[2 + 32], em[256];
    unsigned int md_len = 0;
    size_t ch_len, n = 0;
    const uint8_t *ch = channel_of(TB_VERSION_RFC, &ch_len);

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, rsa_a, &good);
    first_binding(&good, buf, &m);
    const struct tb_binding *g = &m.b[0];
    /* the same modulus with a 1-byte exponent of 1 (key_length shrinks by 2) */
    size_t e_off = (size_t)(g->exponent.p - g->id.p);
    memcpy(id, g->id.p, e_off - 1);
    n = e_off - 1;
    id[n++] = 1;
    id[n++] = 1;
    id[1] = (uint8_t)((n - 3) >> 8);
    id[2] = (uint8_t)(n - 3);
    /* EM = 00 01 ff..ff 00 || DigestInfo || SHA-256(type || key_params || EKM) */
    tbs[0] = TB_TYPE_PROVIDED;
    tbs[1] = TB_KP_RSA2048_PKCS1;
    memcpy(tbs + 2, ch, ch_len);
    memset(em, 0xff, sizeof(em));
    em[0] = 0x00;
    em[1] = 0x01;
    em[256 - 32 - sizeof(digest_info) - 1] = 0x00;
    memcpy(em + 256 - 32 - sizeof(digest_info), digest_info, sizeof(digest_info));
    cr_assert_eq(EVP_Digest(tbs, 2 + ch_len, em + 256 - 32, &md_len, EVP_sha256(), NULL), 1);
    struct tb_slice sig = {em, sizeof(em)};
    raw_header(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, id, n, &sig, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
    tb_verifier_free(v);
}

Test(verify, rfc_ecdsa_signature_must_be_64_bytes)
{
    struct tb_verifier *v = tb_verifier_new(0);
    struct header good, bad;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];
    uint8_t sig[80];

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_a, &good);
    first_binding(&good, buf, &m);
    memcpy(sig, m.b[0].sig.p, 64);
    sig[64] = 0;
    for (size_t len = 0; len <= 65; len++) {
        if (len == 64)
            continue;
        raw_header(TB_VERSION_RFC, TB_KP_ECDSAP256, m.b[0].id.p, m.b[0].id.len,
                   &(struct tb_slice){sig, len}, &bad);
        cr_expect_eq(verify(v, &bad), TB_ESIGNATURE, "signature of %zu bytes", len);
    }
    /* R or S zero */
    memset(sig, 0, 32);
    raw_header(TB_VERSION_RFC, TB_KP_ECDSAP256, m.b[0].id.p, m.b[0].id.len,
               &(struct tb_slice){sig, 64}, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
    memset(sig, 0, 64);
    raw_header(TB_VERSION_RFC, TB_KP_ECDSAP256, m.b[0].id.p, m.b[0].id.len,
               &(struct tb_slice){sig, 64}, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
    memset(sig, 0xff, 64);
    raw_header(TB_VERSION_RFC, TB_KP_ECDSAP256, m.b[0].id.p, m.b[0].id.len,
               &(struct tb_slice){sig, 64}, &bad);
    cr_expect_eq(verify(v, &bad), TB_ESIGNATURE);
    tb_verifier_free(v);
}

/* --- the whole header ---------------------------------------------------------------------- */

Test(verify, other_types_with_supported_keys_are_verified)
{
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;
    struct tb_builder b;
    struct header h;

    cr_assert_not_null(v);
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_rfc, 32), 0);
    cr_assert_eq(tb_builder_add_signed(&b, 0x07, TB_KP_RSA2048_PSS, rsa_b, channel_rfc, 32), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_assert_eq(
        tb_verify_header(v, h.version, h.negotiated, h.value, h.len, channel_rfc, 32, &out), 0);
    cr_expect_eq(out.roles.n_other, 1u);
    EXPECT_STATS(v, 0, 2, 0, 2);

    /* an other-type binding signed over another channel fails the header */
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_rfc, 32), 0);
    cr_assert_eq(tb_builder_add_signed(&b, 0x07, TB_KP_ECDSAP256, p256_b, other_rfc, 32), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_expect_eq(verify(v, &h), TB_ESIGNATURE);

    /* and a referred one too */
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_rfc, 32), 0);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_REFERRED, TB_KP_ECDSAP256, p256_b, other_rfc, 32), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_expect_eq(verify(v, &h), TB_ESIGNATURE);
    tb_verifier_free(v);
}

Test(verify, rfc_signature_binds_the_binding_type)
{
    /* a provided signature relabelled as referred must not verify (type is signed in the rfc) */
    struct tb_verifier *v = tb_verifier_new(0);
    struct tb_builder b;
    struct header good, h;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_b, &good);
    first_binding(&good, buf, &m);
    struct tb_binding x = m.b[0];
    x.type = TB_TYPE_REFERRED;
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(
        tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, channel_rfc, 32), 0);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_expect_eq(verify(v, &h), TB_ESIGNATURE);
    tb_verifier_free(v);
}

Test(verify, header_errors)
{
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;
    static char big[TB_MAX_HEADER + 8];
    struct header h;

    cr_assert_not_null(v);
    provided_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p256_a, &h);

    /* padded spelling accepted */
    char padded[TB_MAX_HEADER + 4];
    memcpy(padded, h.value, h.len);
    size_t plen = h.len;
    while (plen % 4)
        padded[plen++] = '=';
    cr_expect_eq(
        tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, padded, plen, channel_rfc, 32, &out),
        0);
    /* not base64url */
    char bad[TB_MAX_HEADER + 1];
    memcpy(bad, h.value, h.len);
    bad[5] = '+';
    cr_expect_eq(
        tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, bad, h.len, channel_rfc, 32, &out),
        TB_EBASE64);
    bad[5] = ' ';
    cr_expect_eq(
        tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, bad, h.len, channel_rfc, 32, &out),
        TB_EBASE64);
    /* wrong negotiated key parameters */
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_RSA2048_PSS, h.value, h.len, channel_rfc,
                                  32, &out),
                 TB_EKEYPARAMS);
    /* empty value */
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, "", 0, channel_rfc, 32, &out),
                 TB_EPARSE);
    /* over the header bound; and within it but decoding to more than TB_MAX_MESSAGE bytes */
    memset(big, 'A', sizeof(big));
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, big, TB_MAX_HEADER + 4,
                                  channel_rfc, 32, &out),
                 TB_ETOOLARGE);
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, big, TB_MAX_HEADER,
                                  channel_rfc, 32, &out),
                 TB_ETOOLARGE);
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, big,
                                  tb_base64url_encoded_len(TB_MAX_MESSAGE + 1), channel_rfc, 32,
                                  &out),
                 TB_ETOOLARGE);
    /* no verifier */
    cr_expect_eq(tb_verify_header(NULL, TB_VERSION_RFC, TB_KP_ECDSAP256, h.value, h.len,
                                  channel_rfc, 32, &out),
                 TB_EINVAL);
    /* a channel value longer than any the library knows */
    static const uint8_t long_channel[TB_MAX_CHANNEL + 1];
    cr_expect_eq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, h.value, h.len, long_channel,
                                  sizeof(long_channel), &out),
                 TB_EINVAL);
    tb_verifier_free(v);
}

Test(verify, extensions_do_not_affect_verification)
{
    static const uint8_t ext[] = {0x42, 0x00, 0x02, 'h', 'i'};
    struct tb_verifier *v = tb_verifier_new(0);
    struct tb_builder b;
    struct header good, h;
    struct tb_message m;
    static uint8_t buf[TB_MAX_MESSAGE];

    cr_assert_not_null(v);
    provided_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p256_a, &good);
    first_binding(&good, buf, &m);
    struct tb_binding x = m.b[0];
    x.ext = (struct tb_slice){ext, sizeof(ext)};
    tb_builder_init(&b, TB_VERSION_DRAFT);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    header_of(&b, TB_KP_ECDSAP256, &h);
    cr_expect_eq(verify(v, &h), 0);
    tb_verifier_free(v);
}
