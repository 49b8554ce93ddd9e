/*
 * The client side of Token Binding: keys, IDs, signatures, message building.
 *
 * Not on any server hot path: clarity over speed. Everything allocated here is freed here,
 * except the keys tb_key_generate / tb_key_load_pem hand to the caller.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "internal.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/sign.h"

#define DRAFT_HASH_SHA256 4
#define DRAFT_SIG_RSA 1
#define DRAFT_SIG_ECDSA 3
#define DRAFT_CURVE_P256 23
#define RSA_BYTES 256
#define MAX_ID 600
#define MAX_SIG 512

int tb_key_generate(int key_params, EVP_PKEY **out)
{
    if (key_params == TB_KP_ECDSAP256)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (key_params == TB_KP_RSA2048_PKCS1 || key_params == TB_KP_RSA2048_PSS)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else
        return TB_EINVAL;
    return *out != NULL ? 0 : TB_ECRYPTO;
}

int tb_key_load_pem(const char *pem, size_t len, EVP_PKEY **out)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);

    if (bio == NULL)
        return TB_ENOMEM;
    *out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return *out != NULL ? 0 : TB_EINVAL;
}

int tb_key_to_pem(EVP_PKEY *key, char *out, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    int ret = TB_ECRYPTO;

    if (bio == NULL)
        return TB_ENOMEM;
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        goto Exit;
    n = BIO_get_mem_data(bio, &data);
    ret = TB_EINVAL;
    if (n < 0 || (size_t)n + 1 > cap)
        goto Exit;
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    ret = (int)n;
Exit:
    BIO_free(bio);
    return ret;
}

/* --- IDs ---------------------------------------------------------------------------------- */

/* The uncompressed P-256 point of key, 0x04 || X || Y. */
static int ec_point(EVP_PKEY *key, uint8_t point[65])
{
    char group[32];
    size_t len = 0;

    if (!EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, "prime256v1") != 0)
        return TB_EKEYPARAMS;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, 65, &len) != 1 ||
        len != 65 || point[0] != 0x04)
        return TB_ECRYPTO;
    return 0;
}

/* Modulus (256 bytes) and exponent (minimal big-endian) of an RSA-2048 key. */
static int rsa_parts(EVP_PKEY *key, uint8_t mod[RSA_BYTES], uint8_t exp[8], size_t *exp_len)
{
    BIGNUM *n = NULL, *e = NULL;
    int ret = TB_EKEYPARAMS;

    if (!EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_bits(key) != 2048)
        goto Exit;
    ret = TB_ECRYPTO;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || BN_num_bytes(e) > 8 ||
        BN_bn2binpad(n, mod, RSA_BYTES) != RSA_BYTES)
        goto Exit;
    *exp_len = (size_t)BN_bn2bin(e, exp);
    ret = 0;
Exit:
    BN_free(n);
    BN_free(e);
    return ret;
}

int tb_id_encode(enum tb_version version, int key_params, EVP_PKEY *key, uint8_t *out, size_t cap)
{
    uint8_t point[65], mod[RSA_BYTES], exp[8], id[MAX_ID];
    size_t exp_len = 0, n = 0, key_len;
    int ret;

    if (key_params == TB_KP_ECDSAP256) {
        if ((ret = ec_point(key, point)) != 0)
            return ret;
        if (version == TB_VERSION_DRAFT) {
            id[n++] = DRAFT_HASH_SHA256;
            id[n++] = DRAFT_SIG_ECDSA;
            id[n++] = 0;
            id[n++] = DRAFT_CURVE_P256;
            id[n++] = 65;
            memcpy(id + n, point, 65);
            n += 65;
        } else {
            id[n++] = TB_KP_ECDSAP256;
            id[n++] = 0;
            id[n++] = 65; /* key_length: point_len byte + 64 */
            id[n++] = 64;
            memcpy(id + n, point + 1, 64);
            n += 64;
        }
    } else if (key_params == TB_KP_RSA2048_PKCS1 ||
               (key_params == TB_KP_RSA2048_PSS && version == TB_VERSION_RFC)) {
        if ((ret = rsa_parts(key, mod, exp, &exp_len)) != 0)
            return ret;
        key_len = 2 + RSA_BYTES + 1 + exp_len;
        if (version == TB_VERSION_DRAFT) {
            id[n++] = DRAFT_HASH_SHA256;
            id[n++] = DRAFT_SIG_RSA;
        } else {
            id[n++] = (uint8_t)key_params;
            id[n++] = (uint8_t)(key_len >> 8);
            id[n++] = (uint8_t)key_len;
        }
        id[n++] = RSA_BYTES >> 8;
        id[n++] = RSA_BYTES & 0xff;
        memcpy(id + n, mod, RSA_BYTES);
        n += RSA_BYTES;
        id[n++] = (uint8_t)exp_len;
        memcpy(id + n, exp, exp_len);
        n += exp_len;
    } else {
        return TB_EINVAL;
    }
    if (n > cap)
        return TB_EINVAL;
    memcpy(out, id, n);
    return (int)n;
}

/* --- signatures --------------------------------------------------------------------------- */

/* DER ECDSA-Sig-Value to R||S, 32 bytes each. */
static int der_to_raw(const uint8_t *der, size_t der_len, uint8_t *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r, *s;
    int ret = TB_ECRYPTO;

    if (sig == NULL)
        return TB_ECRYPTO;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32)
        ret = 64;
    ECDSA_SIG_free(sig);
    return ret;
}

int tb_sign(enum tb_version version, uint8_t type, int key_params, EVP_PKEY *key,
            const uint8_t *channel, size_t channel_len, uint8_t *sig, size_t cap)
{
    uint8_t tbs[TB_SIGNED_MAX], der[MAX_SIG];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = sizeof(der);
    int n, ret = TB_ECRYPTO;

    if (md == NULL)
        return TB_ENOMEM;
    if (key_params == TB_KP_RSA2048_PSS && version != TB_VERSION_RFC) {
        ret = TB_EINVAL; /* the draft has no PSS */
        goto Exit;
    }
    if ((n = tb_signed_bytes(version, type, key_params, channel, channel_len, tbs)) < 0) {
        ret = n;
        goto Exit;
    }
    if (EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, key, NULL) != 1)
        goto Exit;
    if (key_params == TB_KP_RSA2048_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
        goto Exit;
    if (EVP_DigestSign(md, der, &len, tbs, (size_t)n) != 1)
        goto Exit;
    if (version == TB_VERSION_RFC && key_params == TB_KP_ECDSAP256) {
        uint8_t raw[64];
        if ((ret = der_to_raw(der, len, raw)) < 0)
            goto Exit;
        memcpy(der, raw, 64);
        len = 64;
    }
    ret = TB_EINVAL;
    if (len > cap)
        goto Exit;
    memcpy(sig, der, len);
    ret = (int)len;
Exit:
    EVP_MD_CTX_free(md);
    return ret;
}

/* --- building messages -------------------------------------------------------------------- */

void tb_builder_init(struct tb_builder *b, enum tb_version version)
{
    b->version = version;
    b->len = 0;
}

int tb_builder_add(struct tb_builder *b, const struct tb_binding *binding)
{
    size_t len = b->len + 2;

    if (tb_binding_append(b->buf, &len, sizeof(b->buf), binding) != 0)
        return TB_ETOOLARGE;
    b->len = len - 2;
    return 0;
}

int tb_builder_add_signed(struct tb_builder *b, uint8_t type, int key_params, EVP_PKEY *key,
                          const uint8_t *channel, size_t channel_len)
{
    uint8_t id[MAX_ID], sig[MAX_SIG];
    struct tb_binding binding = {.type = type, .key_params = key_params};
    int n;

    if ((n = tb_id_encode(b->version, key_params, key, id, sizeof(id))) < 0)
        return n;
    binding.id = (struct tb_slice){id, (size_t)n};
    if ((n = tb_sign(b->version, type, key_params, key, channel, channel_len, sig, sizeof(sig))) <
        0)
        return n;
    binding.sig = (struct tb_slice){sig, (size_t)n};
    return tb_builder_add(b, &binding);
}

const uint8_t *tb_builder_bytes(struct tb_builder *b, size_t *len)
{
    b->buf[0] = (uint8_t)(b->len >> 8);
    b->buf[1] = (uint8_t)b->len;
    *len = b->len + 2;
    return b->buf;
}

int tb_builder_header(struct tb_builder *b, char *out, size_t cap)
{
    size_t len;
    const uint8_t *p = tb_builder_bytes(b, &len);

    return tb_base64url_encode(p, len, out, cap);
}
