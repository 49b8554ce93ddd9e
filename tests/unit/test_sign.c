/*
 * Signing and the client side: sign -> header -> tb_verify_header for every key type of both
 * versions, IDs, PEM round trips, signatures checked independently with OpenSSL over the signed
 * bytes the spec defines, and every single-byte corruption of valid messages.
 *
 * Keys are fixed PEM constants (no RSA generation except in one test).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "keys.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tb/sign.h"
#include "tb/verify.h"

#define NONE (-2) /* no referred binding */

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

TestSuite(sign, .init = setup, .fini = teardown);

static EVP_PKEY *key_for(int kp, int referred)
{
    if (kp == TB_KP_ECDSAP256)
        return referred ? p256_b : p256_a;
    return referred ? rsa_b : rsa_a;
}

static const uint8_t channel_draft[12] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6,
                                          0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c};
static const uint8_t channel_rfc[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static const uint8_t *channel_of(enum tb_version v, size_t *len)
{
    *len = v == TB_VERSION_DRAFT ? sizeof(channel_draft) : sizeof(channel_rfc);
    return v == TB_VERSION_DRAFT ? channel_draft : channel_rfc;
}

struct combo {
    enum tb_version version;
    int provided, referred;
};

static const struct combo combos[] = {
    {TB_VERSION_DRAFT, TB_KP_ECDSAP256, NONE},
    {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, NONE},
    {TB_VERSION_DRAFT, TB_KP_ECDSAP256, TB_KP_RSA2048_PKCS1},
    {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
    {TB_VERSION_DRAFT, TB_KP_ECDSAP256, TB_KP_ECDSAP256},
    {TB_VERSION_RFC, TB_KP_ECDSAP256, NONE},
    {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, NONE},
    {TB_VERSION_RFC, TB_KP_RSA2048_PSS, NONE},
    {TB_VERSION_RFC, TB_KP_ECDSAP256, TB_KP_RSA2048_PSS},
    {TB_VERSION_RFC, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1},
    {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
    {TB_VERSION_RFC, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PSS},
};
#define N_COMBOS (sizeof(combos) / sizeof(combos[0]))

static void build_combo(struct tb_builder *b, const struct combo *c, const uint8_t *ch,
                        size_t ch_len)
{
    tb_builder_init(b, c->version);
    cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_PROVIDED, c->provided, key_for(c->provided, 0),
                                       ch, ch_len),
                 0);
    if (c->referred != NONE)
        cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_REFERRED, c->referred,
                                           key_for(c->referred, 1), ch, ch_len),
                     0);
}

static void expect_id(const struct tb_binding *x, enum tb_version v, int kp, EVP_PKEY *key)
{
    uint8_t id[600];
    int n = tb_id_encode(v, kp, key, id, sizeof(id));

    cr_assert_gt(n, 0);
    cr_assert_eq(x->id.len, (size_t)n);
    cr_expect_eq(memcmp(x->id.p, id, (size_t)n), 0, "role ID equals tb_id_encode");
}

/* --- round trips --------------------------------------------------------------------------- */

Test(sign, header_round_trip_verifies_for_every_key_type_and_version)
{
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;

    cr_assert_not_null(v);
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        char header[TB_MAX_HEADER + 1];
        size_t ch_len, len;
        const uint8_t *ch = channel_of(c->version, &ch_len);

        build_combo(&b, c, ch, ch_len);
        int n = tb_builder_header(&b, header, sizeof(header));
        cr_assert_gt(n, 0);
        cr_assert_eq(strlen(header), (size_t)n);
        cr_expect_null(strchr(header, '='), "header value has no padding");
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_expect_eq((size_t)n, tb_base64url_encoded_len(len));

        int ret = tb_verify_header(v, c->version, c->provided, header, (size_t)n, ch, ch_len, &out);
        cr_assert_eq(ret, 0, "combo %zu (%s, %d + %d): %s", i, tb_version_name(c->version),
                     c->provided, c->referred, tb_strerror(ret));
        cr_expect_eq(out.len, len);
        cr_expect_eq(memcmp(out.buf, wire, len), 0);
        cr_assert_not_null(out.roles.provided);
        cr_expect_eq(out.roles.provided->key_params, c->provided);
        expect_id(out.roles.provided, c->version, c->provided, key_for(c->provided, 0));
        if (c->referred == NONE) {
            cr_expect_null(out.roles.referred);
        } else {
            cr_assert_not_null(out.roles.referred);
            cr_expect_eq(out.roles.referred->key_params, c->referred);
            expect_id(out.roles.referred, c->version, c->referred, key_for(c->referred, 1));
        }
        cr_expect_eq(out.roles.n_other, 0u);
    }
    tb_verifier_free(v);
}

Test(sign, different_channel_value_fails_signature)
{
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;

    cr_assert_not_null(v);
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        char header[TB_MAX_HEADER + 1];
        uint8_t other[64];
        size_t ch_len;
        const uint8_t *ch = channel_of(c->version, &ch_len);

        build_combo(&b, c, ch, ch_len);
        int n = tb_builder_header(&b, header, sizeof(header));
        cr_assert_gt(n, 0);
        /* first verify with the right channel, so the keys are cached: the hit path must fail too
         */
        cr_assert_eq(
            tb_verify_header(v, c->version, c->provided, header, (size_t)n, ch, ch_len, &out), 0);
        for (size_t bit = 0; bit < ch_len * 8; bit += 13) {
            memcpy(other, ch, ch_len);
            other[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int ret = tb_verify_header(v, c->version, c->provided, header, (size_t)n, other, ch_len,
                                       &out);
            cr_expect_eq(ret, TB_ESIGNATURE, "combo %zu channel bit %zu: %s", i, bit,
                         tb_strerror(ret));
        }
        /* a shorter or longer channel value */
        memcpy(other, ch, ch_len);
        other[ch_len] = 0;
        cr_expect_eq(tb_verify_header(v, c->version, c->provided, header, (size_t)n, other,
                                      ch_len - 1, &out),
                     TB_ESIGNATURE);
        cr_expect_eq(tb_verify_header(v, c->version, c->provided, header, (size_t)n, other,
                                      ch_len + 1, &out),
                     TB_ESIGNATURE);
    }
    tb_verifier_free(v);
}

Test(sign, version_mismatch_does_not_verify)
{
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;
    struct tb_builder b;
    char header[TB_MAX_HEADER + 1];

    cr_assert_not_null(v);
    build_combo(&b, &(struct combo){TB_VERSION_RFC, TB_KP_ECDSAP256, NONE}, channel_rfc, 32);
    int n = tb_builder_header(&b, header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_expect_neq(tb_verify_header(v, TB_VERSION_DRAFT, TB_KP_ECDSAP256, header, (size_t)n,
                                   channel_rfc, 32, &out),
                  0);
    build_combo(&b, &(struct combo){TB_VERSION_DRAFT, TB_KP_ECDSAP256, NONE}, channel_rfc, 32);
    n = tb_builder_header(&b, header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_expect_neq(tb_verify_header(v, TB_VERSION_RFC, TB_KP_ECDSAP256, header, (size_t)n,
                                   channel_rfc, 32, &out),
                  0);
    tb_verifier_free(v);
}

/* --- keys and IDs -------------------------------------------------------------------------- */

static void expect_same_ids(EVP_PKEY *a, EVP_PKEY *b, int is_ec)
{
    static const int ec_kps[] = {TB_KP_ECDSAP256};
    static const int rsa_kps[] = {TB_KP_RSA2048_PKCS1, TB_KP_RSA2048_PSS};
    const int *kps = is_ec ? ec_kps : rsa_kps;
    size_t n_kps = is_ec ? 1 : 2;

    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        for (size_t k = 0; k < n_kps; k++) {
            uint8_t ida[600], idb[600];
            if (v == TB_VERSION_DRAFT && kps[k] == TB_KP_RSA2048_PSS)
                continue;
            int na = tb_id_encode((enum tb_version)v, kps[k], a, ida, sizeof(ida));
            int nb = tb_id_encode((enum tb_version)v, kps[k], b, idb, sizeof(idb));
            cr_assert_gt(na, 0);
            cr_assert_eq(na, nb);
            cr_expect_eq(memcmp(ida, idb, (size_t)na), 0, "same ID after PEM round trip");
        }
    }
}

Test(sign, pem_round_trip_gives_same_id)
{
    EVP_PKEY *keys[] = {p256_a, p256_b, rsa_a, rsa_b};

    for (size_t i = 0; i < 4; i++) {
        char pem[8192];
        EVP_PKEY *back = NULL;
        int n = tb_key_to_pem(keys[i], pem, sizeof(pem));

        cr_assert_gt(n, 0);
        cr_expect_eq(strlen(pem), (size_t)n);
        cr_expect_eq(strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27), 0, "PKCS#8 PEM");
        cr_assert_eq(tb_key_load_pem(pem, (size_t)n, &back), 0);
        expect_same_ids(keys[i], back, i < 2);
        EVP_PKEY_free(back);
    }
}

Test(sign, pem_errors)
{
    char small[64];
    EVP_PKEY *k = NULL;
    static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

    cr_expect_eq(tb_key_to_pem(p256_a, small, sizeof(small)), TB_EINVAL);
    char pem[8192];
    int n = tb_key_to_pem(p256_a, pem, sizeof(pem));
    cr_assert_gt(n, 0);
    cr_expect_eq(tb_key_to_pem(p256_a, pem, (size_t)n), TB_EINVAL, "no room for the NUL");
    cr_expect_eq(tb_key_to_pem(p256_a, pem, (size_t)n + 1), n);

    cr_expect_eq(tb_key_load_pem(garbage, strlen(garbage), &k), TB_EINVAL);
    cr_expect_eq(tb_key_load_pem("", 0, &k), TB_EINVAL);
    cr_expect_eq(tb_key_load_pem("not a key", 9, &k), TB_EINVAL);
    /* a truncated PEM */
    cr_expect_eq(tb_key_load_pem(TBT_PEM_RSA_A, strlen(TBT_PEM_RSA_A) / 2, &k), TB_EINVAL);
}

Test(sign, id_encode_errors)
{
    uint8_t id[600];
    EVP_PKEY *rsa1024 = tbt_key_load(TBT_PEM_RSA_1024);

    cr_expect_eq(tb_id_encode(TB_VERSION_RFC, TB_KP_ECDSAP256, rsa_a, id, sizeof(id)),
                 TB_EKEYPARAMS);
    cr_expect_eq(tb_id_encode(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, p256_a, id, sizeof(id)),
                 TB_EKEYPARAMS);
    cr_expect_eq(tb_id_encode(TB_VERSION_RFC, TB_KP_RSA2048_PSS, p256_a, id, sizeof(id)),
                 TB_EKEYPARAMS);
    cr_expect_eq(tb_id_encode(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, rsa1024, id, sizeof(id)),
                 TB_EKEYPARAMS, "RSA-2048 only");
    cr_expect_eq(tb_id_encode(TB_VERSION_RFC, TB_KP_UNSUPPORTED, p256_a, id, sizeof(id)),
                 TB_EINVAL);
    cr_expect_eq(tb_id_encode(TB_VERSION_DRAFT, TB_KP_RSA2048_PSS, rsa_a, id, sizeof(id)),
                 TB_EINVAL, "the draft has no PSS");

    /* exact sizes: draft p256 2+2+1+65, rfc p256 1+2+1+64, RSA with e = 65537 */
    static const struct {
        enum tb_version v;
        int kp;
        int len;
    } sizes[] = {
        {TB_VERSION_DRAFT, TB_KP_ECDSAP256, 70},      {TB_VERSION_RFC, TB_KP_ECDSAP256, 68},
        {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, 264}, {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, 265},
        {TB_VERSION_RFC, TB_KP_RSA2048_PSS, 265},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        EVP_PKEY *key = key_for(sizes[i].kp, 0);
        cr_expect_eq(tb_id_encode(sizes[i].v, sizes[i].kp, key, id, sizeof(id)), sizes[i].len,
                     "size %zu", i);
        cr_expect_eq(tb_id_encode(sizes[i].v, sizes[i].kp, key, id, (size_t)sizes[i].len - 1),
                     TB_EINVAL, "cap one short, size %zu", i);
        cr_expect_eq(tb_id_encode(sizes[i].v, sizes[i].kp, key, id, (size_t)sizes[i].len),
                     sizes[i].len);
    }
    EVP_PKEY_free(rsa1024);
}

Test(sign, generated_keys_sign_and_verify)
{
    static const int kps[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS};
    struct tb_verifier *v = tb_verifier_new(0);
    static struct tb_verified out;
    EVP_PKEY *k = NULL;

    cr_assert_not_null(v);
    cr_expect_eq(tb_key_generate(TB_KP_UNSUPPORTED, &k), TB_EINVAL);
    cr_expect_eq(tb_key_generate(7, &k), TB_EINVAL);
    for (size_t i = 0; i < 2; i++) {
        struct tb_builder b;
        char header[TB_MAX_HEADER + 1];

        cr_assert_eq(tb_key_generate(kps[i], &k), 0);
        tb_builder_init(&b, TB_VERSION_RFC);
        cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, kps[i], k, channel_rfc, 32), 0);
        int n = tb_builder_header(&b, header, sizeof(header));
        cr_assert_gt(n, 0);
        cr_expect_eq(
            tb_verify_header(v, TB_VERSION_RFC, kps[i], header, (size_t)n, channel_rfc, 32, &out),
            0);
        expect_id(out.roles.provided, TB_VERSION_RFC, kps[i], k);
        if (kps[i] != TB_KP_ECDSAP256) {
            cr_expect_eq(EVP_PKEY_get_bits(k), 2048);
            cr_expect_eq(out.roles.provided->exponent.len, 3u, "e = 65537");
        }
        EVP_PKEY_free(k);
    }
    tb_verifier_free(v);
}

/* --- signatures checked with OpenSSL directly ---------------------------------------------- */

/* The signed bytes as the spec defines them, built here independently of the library. */
static size_t spec_signed_bytes(enum tb_version v, uint8_t type, int kp, const uint8_t *ch,
                                size_t ch_len, uint8_t *out)
{
    if (v == TB_VERSION_DRAFT) {
        memcpy(out, "token binding", 14); /* with its NUL */
        memcpy(out + 14, ch, ch_len);
        return 14 + ch_len;
    }
    out[0] = type;
    out[1] = (uint8_t)kp;
    memcpy(out + 2, ch, ch_len);
    return 2 + ch_len;
}

/* R||S to a DER ECDSA-Sig-Value; returns its length. */
static size_t raw_to_der(const uint8_t *raw, uint8_t *der)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *ss = BN_bin2bn(raw + 32, 32, NULL);
    unsigned char *p = der;

    cr_assert(s != NULL && r != NULL && ss != NULL);
    cr_assert_eq(ECDSA_SIG_set0(s, r, ss), 1);
    int n = i2d_ECDSA_SIG(s, &p);
    ECDSA_SIG_free(s);
    cr_assert_gt(n, 0);
    return (size_t)n;
}

static int openssl_verify(EVP_PKEY *key, enum tb_version v, int kp, const uint8_t *tbs,
                          size_t tbs_len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t der[80];
    int ok;

    cr_assert_not_null(md);
    if (v == TB_VERSION_RFC && kp == TB_KP_ECDSAP256) {
        cr_assert_eq(sig_len, 64u);
        sig_len = raw_to_der(sig, der);
        sig = der;
    }
    cr_assert_eq(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key), 1);
    if (kp == TB_KP_RSA2048_PSS) {
        cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        cr_assert_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
        cr_assert_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
    } else if (kp == TB_KP_RSA2048_PKCS1) {
        cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
    }
    ok = EVP_DigestVerify(md, sig, sig_len, tbs, tbs_len);
    EVP_MD_CTX_free(md);
    return ok;
}

Test(sign, signatures_verify_with_openssl_over_spec_signed_bytes)
{
    static const struct {
        enum tb_version v;
        int kp;
    } cases[] = {
        {TB_VERSION_DRAFT, TB_KP_ECDSAP256}, {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1},
        {TB_VERSION_RFC, TB_KP_ECDSAP256},   {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1},
        {TB_VERSION_RFC, TB_KP_RSA2048_PSS},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (uint8_t type = 0; type < 3; type++) {
            uint8_t sig[512], tbs[128];
            size_t ch_len;
            const uint8_t *ch = channel_of(cases[i].v, &ch_len);
            EVP_PKEY *key = key_for(cases[i].kp, 0);
            int n = tb_sign(cases[i].v, type, cases[i].kp, key, ch, ch_len, sig, sizeof(sig));

            cr_assert_gt(n, 0, "case %zu type %u: %d", i, type, n);
            if (cases[i].kp != TB_KP_ECDSAP256)
                cr_expect_eq(n, 256);
            else if (cases[i].v == TB_VERSION_RFC)
                cr_expect_eq(n, 64, "rfc ECDSA is R||S");
            else
                cr_expect(n >= 8 && n <= 72 && sig[0] == 0x30, "draft ECDSA is DER");
            size_t t = spec_signed_bytes(cases[i].v, type, cases[i].kp, ch, ch_len, tbs);
            cr_expect_eq(openssl_verify(key, cases[i].v, cases[i].kp, tbs, t, sig, (size_t)n), 1,
                         "case %zu type %u verifies over the spec's signed bytes", i, type);
            /* the rfc binds type and key parameters: another type's bytes do not verify */
            if (cases[i].v == TB_VERSION_RFC) {
                t = spec_signed_bytes(cases[i].v, (uint8_t)(type + 1), cases[i].kp, ch, ch_len,
                                      tbs);
                cr_expect_neq(openssl_verify(key, cases[i].v, cases[i].kp, tbs, t, sig, (size_t)n),
                              1);
            }
            /* signature buffer one byte short */
            if (cases[i].kp != TB_KP_ECDSAP256 || cases[i].v == TB_VERSION_RFC)
                cr_expect_lt(
                    tb_sign(cases[i].v, type, cases[i].kp, key, ch, ch_len, sig, (size_t)n - 1), 0);
        }
    }
}

/* --- every single-byte corruption ---------------------------------------------------------- */

struct range {
    size_t start, len;
};

static int in_any(size_t off, const struct range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (off >= r[i].start && off < r[i].start + r[i].len)
            return 1;
    return 0;
}

Test(sign, single_byte_corruptions_of_signatures_and_keys_never_verify, .timeout = 120)
{
    static const struct combo two[] = {
        {TB_VERSION_DRAFT, TB_KP_ECDSAP256, TB_KP_RSA2048_PKCS1},
        {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
        {TB_VERSION_RFC, TB_KP_ECDSAP256, TB_KP_RSA2048_PSS},
        {TB_VERSION_RFC, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1},
        {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
    };
    static const uint8_t masks[] = {0x01, 0x80};
    static struct tb_verified out;
    /* one verifier for everything: its cache sees every bad key */
    struct tb_verifier *v = tb_verifier_new(0);
    size_t protected_checked = 0, other_ok = 0;

    cr_assert_not_null(v);
    for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
        const struct combo *c = &two[i];
        struct tb_builder b;
        struct tb_message m;
        struct range r[2 * TB_MAX_BINDINGS];
        size_t nr = 0, ch_len, len;
        uint8_t buf[TB_MAX_MESSAGE];
        char header[TB_MAX_HEADER + 1];
        const uint8_t *ch = channel_of(c->version, &ch_len);

        build_combo(&b, c, ch, ch_len);
        int n = tb_builder_header(&b, header, sizeof(header));
        cr_assert_gt(n, 0);
        /* the decoded message, and the ranges of its signature and key (ID) bytes */
        int dlen = tb_base64url_decode(header, (size_t)n, buf, sizeof(buf));
        cr_assert_gt(dlen, 0);
        len = (size_t)dlen;
        cr_assert_eq(
            tb_verify_header(v, c->version, c->provided, header, (size_t)n, ch, ch_len, &out), 0);
        cr_assert_eq(tb_message_parse(c->version, buf, len, &m), 0);
        for (size_t j = 0; j < m.count; j++) {
            r[nr++] = (struct range){(size_t)(m.b[j].id.p - buf), m.b[j].id.len};
            r[nr++] = (struct range){(size_t)(m.b[j].sig.p - buf), m.b[j].sig.len};
        }
        for (size_t off = 0; off < len; off++) {
            for (size_t k = 0; k < sizeof(masks); k++) {
                uint8_t bad[TB_MAX_MESSAGE];
                char bad_header[TB_MAX_HEADER + 1];

                memcpy(bad, buf, len);
                bad[off] ^= masks[k];
                int hn = tb_base64url_encode(bad, len, bad_header, sizeof(bad_header));
                cr_assert_eq(hn, n);
                int ret = tb_verify_header(v, c->version, c->provided, bad_header, (size_t)hn, ch,
                                           ch_len, &out);
                if (in_any(off, r, nr)) {
                    protected_checked++;
                    cr_assert_neq(ret, 0,
                                  "combo %zu (%s): byte %zu ^ 0x%02x in a key or signature "
                                  "still verifies",
                                  i, tb_version_name(c->version), off, masks[k]);
                } else if (ret == 0) {
                    other_ok++;
                }
            }
        }
    }
    cr_expect_gt(protected_checked, 5000u);
    cr_log_info("%zu corruptions of key or signature bytes rejected; %zu elsewhere accepted",
                protected_checked, other_ok);
    tb_verifier_free(v);
}
