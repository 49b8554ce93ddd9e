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

    n = tbc_tb_header(TB_VERSION_DRAFT, kp, a, kp, b, channel, sizeof(channel), header, sizeof(header));
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
    n = tbc_tb_header(TB_VERSION_DRAFT, kp, a, -1, NULL, channel, sizeof(channel), header, sizeof(header));
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

    n = tbc_tb_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p, TB_KP_RSA2048_PKCS1, r, channel, sizeof(channel), header,
                      sizeof(header));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_verify_header(ver, TB_VERSION_DRAFT, TB_KP_ECDSAP256, header, (size_t)n,
                                  channel, sizeof(channel), &v),
                 0);
    cr_assert_not_null(v.roles.referred);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, r, id, tbh), 0);
    tb_base64url_encode(v.roles.referred->id.p, v.roles.referred->id.len, got, sizeof(got));
    cr_assert_str_eq(got, id);
    /* the referred key given with the provided key's type does not fit */
    cr_assert_eq(tbc_tb_header(TB_VERSION_DRAFT, TB_KP_ECDSAP256, p, TB_KP_ECDSAP256, r, channel, sizeof(channel),
                               header, sizeof(header)),
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

    cr_assert_eq(tbc_tb_header(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, p, -1, NULL, channel, sizeof(channel), header,
                               sizeof(header)),
                 TBC_EKEY);
    cr_assert_eq(tbc_tb_describe(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, p, id, tbh), TBC_EKEY);
    EVP_PKEY_free(p);
}
