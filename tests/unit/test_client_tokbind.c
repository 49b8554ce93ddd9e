/*
 * src/client/tokbind: the ALPN offer, reading the server's choice, and headers that libtb's
 * verifier (the proxy's) accepts, with the IDs -v prints.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "errors.h"
#include "tokbind.h"
#include "keys.h"
#include "tb/tb.h"

#define WIRE(s) ((const unsigned char *)(s)), (sizeof(s) - 1)

static void expect_alpn(enum tbc_proto proto, int kp, const unsigned char *want, size_t n)
{
    unsigned char out[TBC_ALPN_MAX];
    int len = tbc_tb_alpn(proto, kp, out, sizeof(out));

    cr_assert_eq(len, (int)n);
    cr_assert_arr_eq(out, want, n);
}

Test(client_tokbind, alpn_offers)
{
    expect_alpn(TBC_PROTO_ANY, TB_KP_ECDSAP256,
                WIRE("\x0ah2_tb_p256\x10http/1.1_tb_p256\x02h2\x08http/1.1"));
    expect_alpn(TBC_PROTO_H1, TB_KP_RSA2048_PKCS1, WIRE("\x13http/1.1_tb_rsa2048\x08http/1.1"));
    expect_alpn(TBC_PROTO_H2, TB_KP_ECDSAP256, WIRE("\x0ah2_tb_p256\x02h2"));
    expect_alpn(TBC_PROTO_ANY, -1, WIRE("\x02h2\x08http/1.1"));
    expect_alpn(TBC_PROTO_H2, -1, WIRE("\x02h2"));
}

Test(client_tokbind, alpn_small_buffer)
{
    unsigned char out[8];

    cr_assert_eq(tbc_tb_alpn(TBC_PROTO_ANY, TB_KP_ECDSAP256, out, sizeof(out)), TBC_EINTERNAL);
}

Test(client_tokbind, selected)
{
    int kp, h2;

    cr_assert_eq(tbc_tb_selected("h2_tb_p256", &kp, &h2), 1);
    cr_assert(kp == TB_KP_ECDSAP256 && h2 == 1);
    cr_assert_eq(tbc_tb_selected("http/1.1_tb_rsa2048", &kp, &h2), 1);
    cr_assert(kp == TB_KP_RSA2048_PKCS1 && h2 == 0);
    cr_assert_eq(tbc_tb_selected("h2", &kp, &h2), 0);
    cr_assert(kp == -1 && h2 == 1);
    cr_assert_eq(tbc_tb_selected("http/1.1", &kp, &h2), 0);
    cr_assert_eq(h2, 0);
    cr_assert_eq(tbc_tb_selected("", &kp, &h2), 0);
    cr_assert_eq(tbc_tb_selected("h2_tb_ecdsap256", &kp, &h2), 0);
    cr_assert_eq(tbc_tb_selected("h3_tb_p256", &kp, &h2), 0);
    cr_assert_eq(tbc_tb_selected("h2x_tb_p256", &kp, &h2), 0);
}

/* The header verifies as the proxy verifies it, and carries the IDs tbc_tb_describe names. */
static void round_trip(int kp, const char *pem_a, const char *pem_b)
{
    static const uint8_t channel[TB_TLS_UNIQUE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    EVP_PKEY *a = tbt_key_load(pem_a), *b = tbt_key_load(pem_b);
    static char header[TB_MAX_HEADER + 1];
    char id[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1], got[TBC_TB_MAX_ID_B64];
    static struct tb_verified v;
    struct tb_verifier *ver = tb_verifier_new(0);
    int n;

    n = tbc_tb_header(TB_VERSION_DRAFT, kp, a, kp, b, channel, sizeof(channel), header,
                      sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_DRAFT, kp, header, (size_t)n, channel,
                                  sizeof(channel), &v),
                 0);
    cr_assert_not_null(v.roles.referred);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, kp, a, id, tbh), 0);
    tb_base64url_encode(v.roles.provided->id.p, v.roles.provided->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    cr_assert_eq(tb_tbh(v.roles.provided->id.p, v.roles.provided->id.len, got, sizeof(got)),
                 TB_TBH_LEN);
    cr_assert_str_eq(got, tbh);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, kp, b, id, tbh), 0);
    tb_base64url_encode(v.roles.referred->id.p, v.roles.referred->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    /* provided only, and over another channel it fails */
    n = tbc_tb_header(TB_VERSION_DRAFT, kp, a, -1, NULL, channel, sizeof(channel), header,
                      sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_DRAFT, kp, header, (size_t)n, channel,
                                  sizeof(channel), &v),
                 0);
    cr_assert_null(v.roles.referred);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_DRAFT, kp, header, (size_t)n,
                                  (const uint8_t *)"other channe", 12, &v),
                 TB_ESIGNATURE);
    tb_verifier_free(ver);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

Test(client_tokbind, header_p256)
{
    round_trip(TB_KP_ECDSAP256, TBT_PEM_P256_A, TBT_PEM_P256_B);
}

Test(client_tokbind, header_rsa2048)
{
    round_trip(TB_KP_RSA2048_PKCS1, TBT_PEM_RSA_A, TBT_PEM_RSA_B);
}

/* The referred key keeps the type it was made for with the referring origin. */
Test(client_tokbind, referred_of_another_key_type)
{
    static const uint8_t channel[TB_TLS_UNIQUE_LEN] = {9, 8, 7};
    EVP_PKEY *p = tbt_key_load(TBT_PEM_P256_A), *r = tbt_key_load(TBT_PEM_RSA_A);
    static char header[TB_MAX_HEADER + 1];
    char id[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1], got[TBC_TB_MAX_ID_B64];
    static struct tb_verified v;
    struct tb_verifier *ver = tb_verifier_new(0);
    int n;

    n = tbc_tb_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p, TB_KP_RSA2048_PKCS1, r, channel,
                      sizeof(channel), header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_DRAFT, TB_KP_ECDSAP256, header, (size_t)n,
                                  channel, sizeof(channel), &v),
                 0);
    cr_assert_not_null(v.roles.referred);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, r, id, tbh), 0);
    tb_base64url_encode(v.roles.referred->id.p, v.roles.referred->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    /* the referred key given with the provided key's type does not fit */
    cr_assert_eq(tbc_tb_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p, TB_KP_ECDSAP256, r, channel,
                               sizeof(channel), header, sizeof(header)),
                 TBC_EKEY);
    tb_verifier_free(ver);
    EVP_PKEY_free(p);
    EVP_PKEY_free(r);
}

Test(client_tokbind, key_of_the_wrong_type)
{
    static const uint8_t channel[TB_TLS_UNIQUE_LEN];
    EVP_PKEY *p = tbt_key_load(TBT_PEM_P256_A);
    char header[TB_MAX_HEADER + 1], id[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1];

    cr_assert_eq(tbc_tb_header(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, p, -1, NULL, channel,
                               sizeof(channel), header, sizeof(header)),
                 TBC_EKEY);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, p, id, tbh), TBC_EKEY);
    EVP_PKEY_free(p);
}

/* --- RFC 8471 ------------------------------------------------------------------------------- */

/* An rfc header over an EKM verifies with libtb's verifier (the proxy's), rfc TBIDs. */
static void rfc_round_trip(int kp, const char *pem_a, const char *pem_b)
{
    uint8_t ekm[TB_EKM_LEN];
    EVP_PKEY *a = tbt_key_load(pem_a), *b = tbt_key_load(pem_b);
    static char header[TB_MAX_HEADER + 1];
    char id[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1], got[TBC_TB_MAX_ID_B64];
    static struct tb_verified v;
    struct tb_verifier *ver = tb_verifier_new(0);
    size_t i;
    int n;

    for (i = 0; i < sizeof(ekm); i++)
        ekm[i] = (uint8_t)(0xa0 + i);
    n = tbc_tb_header(TB_VERSION_RFC, kp, a, kp, b, ekm, sizeof(ekm), header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_RFC, kp, header, (size_t)n, ekm, sizeof(ekm), &v),
                 0, "kp %d", kp);
    cr_assert_not_null(v.roles.referred);
    cr_assert_eq(v.roles.provided->key_params, kp);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_RFC, kp, a, id, tbh), 0);
    tb_base64url_encode(v.roles.provided->id.p, v.roles.provided->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    tb_tbh(v.roles.provided->id.p, v.roles.provided->id.len, got, sizeof(got));
    cr_assert_str_eq(got, tbh);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_RFC, kp, b, id, tbh), 0);
    tb_base64url_encode(v.roles.referred->id.p, v.roles.referred->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    /* the rfc TBID is not the draft one (key_parameters byte in front) */
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, TB_KP_ECDSAP256, a, got, tbh),
                 kp == TB_KP_ECDSAP256 ? 0 : TBC_EKEY);
    if (kp == TB_KP_ECDSAP256)
        cr_assert_str_neq(got, id);
    /* over another EKM, as a draft message, or under other key parameters: refused */
    n = tbc_tb_header(TB_VERSION_RFC, kp, a, -1, NULL, ekm, sizeof(ekm), header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_RFC, kp, header, (size_t)n, ekm, sizeof(ekm), &v),
                 0);
    cr_assert_null(v.roles.referred);
    ekm[0] ^= 1;
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_RFC, kp, header, (size_t)n, ekm, sizeof(ekm), &v),
                 TB_ESIGNATURE);
    ekm[0] ^= 1;
    cr_assert_neq(tb_verify_header(ver, TB_VERSION_DRAFT,
                                   kp == TB_KP_RSA2048_PSS ? TB_KP_RSA2048_PKCS1 : kp, header,
                                   (size_t)n, ekm, sizeof(ekm), &v),
                  0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_RFC,
                                  kp == TB_KP_ECDSAP256 ? TB_KP_RSA2048_PSS : TB_KP_ECDSAP256,
                                  header, (size_t)n, ekm, sizeof(ekm), &v),
                 TB_EKEYPARAMS);
    tb_verifier_free(ver);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

Test(client_tokbind, rfc_header_ecdsap256)
{
    rfc_round_trip(TB_KP_ECDSAP256, TBT_PEM_P256_A, TBT_PEM_P256_B);
}

Test(client_tokbind, rfc_header_rsa2048_pss)
{
    rfc_round_trip(TB_KP_RSA2048_PSS, TBT_PEM_RSA_A, TBT_PEM_RSA_B);
}

/* One RSA key signs for both paddings: its two rfc IDs differ only in key_parameters. */
Test(client_tokbind, rfc_header_rsa2048_pkcs1)
{
    EVP_PKEY *k = tbt_key_load(TBT_PEM_RSA_A);
    char pss[TBC_TB_MAX_ID_B64], pkcs[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1];

    rfc_round_trip(TB_KP_RSA2048_PKCS1, TBT_PEM_RSA_A, TBT_PEM_RSA_B);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_RFC, TB_KP_RSA2048_PSS, k, pss, tbh), 0);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, k, pkcs, tbh), 0);
    cr_assert_str_neq(pss, pkcs);
    cr_assert_str_eq(pss + 4, pkcs + 4, "same modulus and exponent after the first 3 bytes");
    EVP_PKEY_free(k);
}

/* The referred key keeps its own key parameters, the provided ones are the negotiated. */
Test(client_tokbind, rfc_referred_of_another_key_type)
{
    static const uint8_t ekm[TB_EKM_LEN] = {7, 7, 7};
    EVP_PKEY *p = tbt_key_load(TBT_PEM_P256_A), *r = tbt_key_load(TBT_PEM_RSA_A);
    static char header[TB_MAX_HEADER + 1];
    static struct tb_verified v;
    struct tb_verifier *ver = tb_verifier_new(0);
    int n;

    n = tbc_tb_header(TB_VERSION_RFC, TB_KP_ECDSAP256, p, TB_KP_RSA2048_PSS, r, ekm, sizeof(ekm),
                      header, sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_RFC, TB_KP_ECDSAP256, header, (size_t)n, ekm,
                                  sizeof(ekm), &v),
                 0);
    cr_assert_eq(v.roles.referred->key_params, TB_KP_RSA2048_PSS);
    cr_assert_eq(tbc_tb_header(TB_VERSION_RFC, TB_KP_RSA2048_PSS, p, -1, NULL, ekm, sizeof(ekm),
                               header, sizeof(header)),
                 TBC_EKEY);
    tb_verifier_free(ver);
    EVP_PKEY_free(p);
    EVP_PKEY_free(r);
}

Test(client_tokbind, key_type_names)
{
    /* draft: its two names only */
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_DRAFT, "p256"), TB_KP_ECDSAP256);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_DRAFT, "rsa2048"), TB_KP_RSA2048_PKCS1);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_DRAFT, "ecdsap256"), TBC_EUSAGE);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_DRAFT, "rsa2048_pss"), TBC_EUSAGE);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_DRAFT, "rsa2048_pkcs1.5"), TBC_EUSAGE);
    /* rfc: the draft names (rsa2048 is PSS) and the RFC names */
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "p256"), TB_KP_ECDSAP256);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "rsa2048"), TB_KP_RSA2048_PSS);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "ecdsap256"), TB_KP_ECDSAP256);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "rsa2048_pss"), TB_KP_RSA2048_PSS);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "rsa2048_pkcs1.5"), TB_KP_RSA2048_PKCS1);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "rsa2048_pkcs1"), TBC_EUSAGE);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, "P256"), TBC_EUSAGE);
    cr_expect_eq(tbc_tb_key_type(TB_VERSION_RFC, ""), TBC_EUSAGE);
    cr_expect_str_eq(tbc_tb_key_name(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1), "rsa2048_pkcs1.5");
    cr_expect_str_eq(tbc_tb_key_name(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1), "rsa2048");
    cr_expect_str_eq(tbc_tb_header_name(TB_VERSION_RFC), "Sec-Token-Binding");
    cr_expect_str_eq(tbc_tb_header_name(TB_VERSION_DRAFT), "Token-Binding");
}

Test(client_tokbind, rfc_offer)
{
    struct tb_ext_params o, back;
    uint8_t wire[TB_EXT_MAX_LEN];
    int n;

    tbc_tb_offer(TB_KP_RSA2048_PSS, &o);
    n = tb_ext_encode(&o, wire, sizeof(wire));
    cr_assert_eq(n, 4);
    cr_assert_arr_eq(wire, ((const uint8_t[]){1, 0, 1, TB_KP_RSA2048_PSS}), 4);
    cr_assert_eq(tb_ext_parse(wire, (size_t)n, &back), 0);
    tbc_tb_offer(TB_KP_ECDSAP256, &o);
    cr_assert(o.major == 1 && o.minor == 0 && o.n == 1 && o.key_params[0] == TB_KP_ECDSAP256);
}
