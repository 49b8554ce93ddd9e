/*
 * JWT verification key sets: PEM public keys or certificates, JWKS documents, HMAC secrets.
 *
 * Every public key, whatever it came as, is turned into an OpenSSL EVP_PKEY, checked (EC on
 * P-256, RSA of 2048..8192 bits), and written out again as a canonical "PUBLIC KEY" PEM: that
 * PEM, and nothing read from the input, is what libjwt is handed later. A set holds either
 * public keys or secrets, never both, so a public key's bytes can never be used as an HMAC
 * secret (the classic algorithm-confusion attack). Secrets are copied once and wiped when the
 * set is freed. Inputs are bounded: files and texts at 1 MiB, TB_JWT_MAX_KEYS keys per set.
 *
 * Each key also gets, at load, what tb_jwt_check needs to verify a signature itself before libjwt
 * does (libjwt re-reads the PEM on every call, which on OpenSSL 3 costs ~10x the verify): a
 * verify-initialised EVP_PKEY_CTX (SHA-256; PKCS#1 v1.5 padding for RSA) or an HMAC-SHA256
 * EVP_MAC_CTX keyed with the secret. Those are templates, dup'd per check. Each set gets a
 * generation number from a process-wide atomic counter, never reused, so the per-thread cache of
 * verified tokens can never mistake a new set for a freed one at the same address.
 * Sets are immutable once built, so threads may share them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "internal.h"
#include "tb/base64url.h"
#include "tb/error.h"

#define MAX_TEXT (1024 * 1024)
#define MIN_SECRET 32
#define MIN_RSA_BITS 2048
#define MAX_RSA_BITS 8192
#define MAX_RSA_N (MAX_RSA_BITS / 8 + 1) /* a leading zero byte is tolerated */
#define MAX_RSA_E 8

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* --- sets ----------------------------------------------------------------------------------- */

static atomic_uint_fast64_t last_gen; /* the last generation handed out; 0 is never used */

static struct tb_jwt_keys *set_new(int secret)
{
    struct tb_jwt_keys *k = calloc(1, sizeof(*k) + TB_JWT_MAX_KEYS * sizeof(struct tb_jwt_key));

    if (k != NULL) {
        k->secret = secret;
        k->gen = (uint64_t)atomic_fetch_add(&last_gen, 1) + 1;
    }
    return k;
}

void tb_jwt_keys_free(struct tb_jwt_keys *keys)
{
    size_t i;

    if (keys == NULL)
        return;
    for (i = 0; i < keys->n; i++) {
        OPENSSL_clear_free(keys->key[i].bytes, keys->key[i].len + 1);
        free(keys->key[i].kid);
        EVP_PKEY_CTX_free(keys->key[i].vctx);
        EVP_MAC_CTX_free(keys->key[i].mac); /* OpenSSL wipes the HMAC state */
    }
    free(keys);
}

unsigned tb_jwt_keys_algs(const struct tb_jwt_keys *keys)
{
    return keys != NULL ? keys->algs : 0;
}

int tb_jwt_kid_ok(const char *kid)
{
    size_t i, n = strlen(kid);

    if (n == 0 || n > TB_JWT_MAX_KID)
        return 0;
    for (i = 0; i < n; i++)
        if (kid[i] < 0x20 || kid[i] > 0x7e)
            return 0;
    return 1;
}

/*
 * Appends a key: takes bytes (len + 1 allocated) and the template t (an EVP_PKEY_CTX for public
 * keys, an EVP_MAC_CTX for a secret), copies kid. On failure frees bytes and t.
 */
static int set_add(struct tb_jwt_keys *k, enum tb_jwt_alg alg, uint8_t *bytes, size_t len, void *t,
                   const char *kid, char *err, size_t errlen)
{
    struct tb_jwt_key *key;
    size_t i;
    int ret = TB_EINVAL;

    if (k->n == TB_JWT_MAX_KEYS) {
        set_err(err, errlen, "more than %d keys", TB_JWT_MAX_KEYS);
        goto Exit;
    }
    for (i = 0; kid != NULL && i < k->n; i++) {
        if (k->key[i].kid != NULL && strcmp(k->key[i].kid, kid) == 0) {
            set_err(err, errlen, "two keys with kid \"%s\"", kid);
            goto Exit;
        }
    }
    key = &k->key[k->n];
    key->kid = kid != NULL ? strdup(kid) : NULL;
    if (kid != NULL && key->kid == NULL) {
        ret = TB_ENOMEM;
        goto Exit;
    }
    key->alg = alg;
    key->bytes = bytes;
    key->len = len;
    if (k->secret)
        key->mac = t;
    else
        key->vctx = t;
    k->algs |= (unsigned)alg;
    k->has_kids |= kid != NULL;
    k->n++;
    return 0;
Exit:
    OPENSSL_clear_free(bytes, len + 1);
    if (k->secret)
        EVP_MAC_CTX_free(t);
    else
        EVP_PKEY_CTX_free(t);
    return ret;
}

/* The template for verifying alg's signatures with pkey (SHA-256 digests): NULL on failure. */
static EVP_PKEY_CTX *verify_template(EVP_PKEY *pkey, enum tb_jwt_alg alg)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
        (alg == TB_JWT_RS256 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    ERR_clear_error();
    return ctx;
}

/* The template for HMAC-SHA256 under secret[0..len): NULL on failure. */
static EVP_MAC_CTX *mac_template(const uint8_t *secret, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_MAC_init(ctx, secret, len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    EVP_MAC_free(mac); /* the context keeps its own reference */
    ERR_clear_error();
    return ctx;
}

/* --- public keys ---------------------------------------------------------------------------- */

int tb_jwt_pkey_alg(EVP_PKEY *pkey, char *err, size_t errlen)
{
    char group[64];
    int bits;

    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
            set_err(err, errlen, "EC key not on P-256 (only ES256 is supported)");
            return TB_EINVAL;
        }
        return TB_JWT_ES256;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        bits = EVP_PKEY_get_bits(pkey);
        if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
            set_err(err, errlen, "RSA key of %d bits (%d..%d needed)", bits, MIN_RSA_BITS,
                    MAX_RSA_BITS);
            return TB_EINVAL;
        }
        return TB_JWT_RS256;
    }
    set_err(err, errlen, "unsupported key type %s (EC P-256 or RSA only)",
            EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey) : "?");
    return TB_EINVAL;
}

/* Checks pkey and adds it to the set as a canonical PEM. Does not take pkey. */
static int add_pkey(struct tb_jwt_keys *k, EVP_PKEY *pkey, const char *kid, char *err,
                    size_t errlen)
{
    EVP_PKEY_CTX *vctx = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    uint8_t *pem;
    long n;
    int alg, ret;

    if ((alg = tb_jwt_pkey_alg(pkey, err, errlen)) < 0)
        return alg;
    ret = TB_ENOMEM;
    if ((bio = BIO_new(BIO_s_mem())) == NULL)
        goto Exit;
    ret = TB_ECRYPTO;
    if (PEM_write_bio_PUBKEY(bio, pkey) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0 ||
        (vctx = verify_template(pkey, (enum tb_jwt_alg)alg)) == NULL)
        goto Exit;
    ret = TB_ENOMEM;
    if ((pem = malloc((size_t)n + 1)) == NULL)
        goto Exit;
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    ret = set_add(k, (enum tb_jwt_alg)alg, pem, (size_t)n, vctx, kid, err, errlen);
    vctx = NULL; /* set_add took it */
Exit:
    if (ret == TB_ECRYPTO)
        set_err(err, errlen, "cannot re-encode a public key");
    EVP_PKEY_CTX_free(vctx);
    BIO_free(bio);
    return ret;
}

/* One DER block of a PEM file: "PUBLIC KEY" or "CERTIFICATE" (its subject key). */
static int add_pem_block(struct tb_jwt_keys *k, const char *name, const unsigned char *der,
                         long len, char *err, size_t errlen)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    int ret = TB_EINVAL;

    if (strcmp(name, "PUBLIC KEY") == 0) {
        pkey = d2i_PUBKEY(NULL, &p, len);
    } else if (strcmp(name, "CERTIFICATE") == 0) {
        if ((cert = d2i_X509(NULL, &p, len)) != NULL)
            pkey = X509_get_pubkey(cert);
    } else {
        set_err(err, errlen,
                strstr(name, "PRIVATE") != NULL
                    ? "a private key where public keys are expected"
                    : "unexpected PEM block (PUBLIC KEY or CERTIFICATE expected)");
        goto Exit;
    }
    if (pkey == NULL || p != der + len) {
        set_err(err, errlen, "malformed %s block", name);
        goto Exit;
    }
    ret = add_pkey(k, pkey, NULL, err, errlen);
Exit:
    EVP_PKEY_free(pkey);
    X509_free(cert);
    return ret;
}

static int parse_pem(struct tb_jwt_keys *k, const char *text, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    unsigned long e;
    int ret = TB_ENOMEM;

    if (bio == NULL)
        return TB_ENOMEM;
    ERR_clear_error();
    for (;;) {
        if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
            e = ERR_peek_last_error();
            ret = 0;
            if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
                set_err(err, errlen, "malformed PEM");
                ret = TB_EINVAL;
            }
            ERR_clear_error();
            break;
        }
        ret = add_pem_block(k, name, der, der_len, err, errlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        name = header = NULL;
        der = NULL;
        if (ret != 0)
            break;
    }
    if (ret == 0 && k->n == 0) {
        set_err(err, errlen, "no PUBLIC KEY or CERTIFICATE block");
        ret = TB_EINVAL;
    }
    BIO_free(bio);
    return ret;
}

/* A base64url member of a JWK, decoded into out: exactly want bytes, or 1..cap when want = 0. */
static int jwk_bytes(json_t *jwk, const char *member, uint8_t *out, size_t cap, size_t want,
                     char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(jwk, member));
    int n;

    if (s == NULL) {
        set_err(err, errlen, "JWK without \"%s\"", member);
        return TB_EINVAL;
    }
    if (strchr(s, '=') != NULL || strlen(s) > 2 * cap + 4 ||
        (n = tb_base64url_decode(s, strlen(s), out, cap)) <= 0 ||
        (want != 0 && (size_t)n != want)) {
        set_err(err, errlen, "JWK \"%s\" is not %s", member,
                want != 0 ? "the right length of base64url" : "base64url of a sane size");
        return TB_EINVAL;
    }
    return n;
}

/* EVP_PKEY from a parameter list built by the caller. */
static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL), *check = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY *pkey = NULL;

    if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto Exit;
    /* the point is on the curve, the modulus is odd and so on */
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
        EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
Exit:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    ERR_clear_error();
    return pkey;
}

static int jwk_ec(json_t *jwk, EVP_PKEY **out, char *err, size_t errlen)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    uint8_t point[65];
    OSSL_PARAM_BLD *bld;
    int ret;

    if (crv == NULL || strcmp(crv, "P-256") != 0) {
        set_err(err, errlen, "EC JWK not on P-256");
        return TB_EINVAL;
    }
    point[0] = 0x04;
    if ((ret = jwk_bytes(jwk, "x", point + 1, 32, 32, err, errlen)) < 0 ||
        (ret = jwk_bytes(jwk, "y", point + 33, 32, 32, err, errlen)) < 0)
        return ret;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL)
        return TB_ENOMEM;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
        *out = pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (*out == NULL) {
        set_err(err, errlen, "EC JWK: x, y is not a point on P-256");
        return TB_EINVAL;
    }
    return 0;
}

static int jwk_rsa(json_t *jwk, EVP_PKEY **out, char *err, size_t errlen)
{
    uint8_t n_bytes[MAX_RSA_N], e_bytes[MAX_RSA_E];
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    int n_len, e_len, ret;

    if ((n_len = jwk_bytes(jwk, "n", n_bytes, sizeof(n_bytes), 0, err, errlen)) < 0)
        return n_len;
    if ((e_len = jwk_bytes(jwk, "e", e_bytes, sizeof(e_bytes), 0, err, errlen)) < 0)
        return e_len;
    ret = TB_ENOMEM;
    n = BN_bin2bn(n_bytes, n_len, NULL);
    e = BN_bin2bn(e_bytes, e_len, NULL);
    if (n == NULL || e == NULL || (bld = OSSL_PARAM_BLD_new()) == NULL)
        goto Exit;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
        *out = pkey_fromdata("RSA", bld);
    ret = 0;
    if (*out == NULL) {
        set_err(err, errlen, "RSA JWK: n, e do not make a public key");
        ret = TB_EINVAL;
    }
Exit:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return ret;
}

/* Members that only a private or symmetric JWK has. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

/* One member of "keys": checked, converted, added. */
static int add_jwk(struct tb_jwt_keys *k, json_t *jwk, char *err, size_t errlen)
{
    const char *kty, *use, *alg, *kid = NULL, *want_alg;
    json_t *kid_v = json_object_get(jwk, "kid");
    EVP_PKEY *pkey = NULL;
    size_t i;
    int ret;

    if (!json_is_object(jwk) || (kty = json_string_value(json_object_get(jwk, "kty"))) == NULL) {
        set_err(err, errlen, "a JWK that is not an object with \"kty\"");
        return TB_EINVAL;
    }
    for (i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        if (json_object_get(jwk, private_members[i]) != NULL) {
            set_err(err, errlen, "JWK with private or secret member \"%s\"", private_members[i]);
            return TB_EINVAL;
        }
    }
    if (kid_v != NULL && ((kid = json_string_value(kid_v)) == NULL || !tb_jwt_kid_ok(kid))) {
        set_err(err, errlen, "JWK \"kid\" is not 1..%d printable characters", TB_JWT_MAX_KID);
        return TB_EINVAL;
    }
    use = json_string_value(json_object_get(jwk, "use"));
    if (json_object_get(jwk, "use") != NULL && (use == NULL || strcmp(use, "sig") != 0)) {
        set_err(err, errlen, "JWK \"use\" is not \"sig\"");
        return TB_EINVAL;
    }
    if (strcmp(kty, "EC") == 0) {
        want_alg = "ES256";
        ret = jwk_ec(jwk, &pkey, err, errlen);
    } else if (strcmp(kty, "RSA") == 0) {
        want_alg = "RS256";
        ret = jwk_rsa(jwk, &pkey, err, errlen);
    } else {
        set_err(err, errlen, "JWK \"kty\" \"%.16s\" (EC or RSA only)", kty);
        return TB_EINVAL;
    }
    if (ret != 0)
        return ret;
    alg = json_string_value(json_object_get(jwk, "alg"));
    if (json_object_get(jwk, "alg") != NULL && (alg == NULL || strcmp(alg, want_alg) != 0)) {
        set_err(err, errlen, "JWK \"alg\" does not fit kty %s (%s only)", kty, want_alg);
        ret = TB_EINVAL;
    } else {
        ret = add_pkey(k, pkey, kid, err, errlen);
    }
    EVP_PKEY_free(pkey);
    return ret;
}

static int parse_jwks(struct tb_jwt_keys *k, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *list, *jwk;
    size_t i;
    int ret = TB_EINVAL;

    if (doc == NULL) {
        set_err(err, errlen, "JWKS line %d: %s", jerr.line, jerr.text);
        return TB_EINVAL;
    }
    list = json_object_get(doc, "keys");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        set_err(err, errlen, "JWKS without a non-empty \"keys\" array");
        goto Exit;
    }
    json_array_foreach(list, i, jwk)
    {
        if ((ret = add_jwk(k, jwk, err, errlen)) != 0) {
            size_t used = err != NULL ? strnlen(err, errlen) : 0;
            char msg[256];
            if (used > 0 && used < sizeof(msg)) {
                memcpy(msg, err, used + 1);
                set_err(err, errlen, "JWKS key %zu: %s", i, msg);
            }
            goto Exit;
        }
    }
Exit:
    json_decref(doc);
    return ret;
}

int tb_jwt_keys_parse_public(const char *text, size_t len, struct tb_jwt_keys **out, char *err,
                             size_t errlen)
{
    struct tb_jwt_keys *k;
    size_t i = 0;
    int ret;

    set_err(err, errlen, "%s", "");
    if (out == NULL || (text == NULL && len > 0))
        return TB_EINVAL;
    *out = NULL;
    if (len > MAX_TEXT) {
        set_err(err, errlen, "key text over %d bytes", MAX_TEXT);
        return TB_EINVAL;
    }
    if ((k = set_new(0)) == NULL)
        return TB_ENOMEM;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i < len && text[i] == '{')
        ret = parse_jwks(k, text, len, err, errlen);
    else
        ret = parse_pem(k, text, len, err, errlen);
    if (ret != 0) {
        if (ret == TB_ENOMEM)
            set_err(err, errlen, "out of memory");
        tb_jwt_keys_free(k);
        return ret;
    }
    *out = k;
    return 0;
}

int tb_jwt_keys_parse_secret(const uint8_t *secret, size_t len, struct tb_jwt_keys **out, char *err,
                             size_t errlen)
{
    struct tb_jwt_keys *k;
    EVP_MAC_CTX *mac;
    uint8_t *copy;
    int ret;

    set_err(err, errlen, "%s", "");
    if (out == NULL || (secret == NULL && len > 0))
        return TB_EINVAL;
    *out = NULL;
    if (len < MIN_SECRET || len > MAX_TEXT) {
        set_err(err, errlen, "HMAC secret of %zu bytes (%d..%d needed)", len, MIN_SECRET, MAX_TEXT);
        return TB_EINVAL;
    }
    if ((k = set_new(1)) == NULL || (copy = malloc(len + 1)) == NULL) {
        free(k);
        set_err(err, errlen, "out of memory");
        return TB_ENOMEM;
    }
    memcpy(copy, secret, len);
    copy[len] = '\0';
    if ((mac = mac_template(copy, len)) == NULL) {
        OPENSSL_clear_free(copy, len + 1);
        free(k);
        set_err(err, errlen, "cannot set up HMAC-SHA256");
        return TB_ECRYPTO;
    }
    if ((ret = set_add(k, TB_JWT_HS256, copy, len, mac, NULL, err, errlen)) != 0) {
        tb_jwt_keys_free(k);
        return ret;
    }
    *out = k;
    return 0;
}

/* --- files ---------------------------------------------------------------------------------- */

/* Reads a whole file of at most MAX_TEXT bytes into a malloc'd buffer (NUL-terminated). */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd, ret = TB_EINVAL;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return TB_EINVAL;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > MAX_TEXT) {
        set_err(err, errlen, "%s: not a regular file of at most %d bytes", path, MAX_TEXT);
        goto Exit;
    }
    ret = TB_ENOMEM;
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        goto Exit;
    while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) != 0) {
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            set_err(err, errlen, "%s: %s", path, strerror(errno));
            ret = TB_EINVAL;
            goto Exit;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    ret = 0;
Exit:
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)st.st_size + 1);
    close(fd);
    return ret;
}

/* Prefixes err (already set by a parser) with the path. */
static void name_path(const char *path, char *err, size_t errlen)
{
    char msg[512];
    size_t used = err != NULL ? strnlen(err, errlen) : 0;

    if (used == 0 || used >= sizeof(msg))
        return;
    memcpy(msg, err, used + 1);
    set_err(err, errlen, "%s: %s", path, msg);
}

int tb_jwt_keys_load_public(const char *path, struct tb_jwt_keys **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int ret;

    if (path == NULL || out == NULL)
        return TB_EINVAL;
    *out = NULL;
    if ((ret = read_file(path, &text, &len, err, errlen)) != 0)
        return ret;
    if ((ret = tb_jwt_keys_parse_public(text, len, out, err, errlen)) != 0)
        name_path(path, err, errlen);
    free(text);
    return ret;
}

int tb_jwt_keys_load_secret(const char *path, struct tb_jwt_keys **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0, full;
    int ret;

    if (path == NULL || out == NULL)
        return TB_EINVAL;
    *out = NULL;
    if ((ret = read_file(path, &text, &len, err, errlen)) != 0)
        return ret;
    full = len;
    if (len > 0 && text[len - 1] == '\n') {
        len--;
        if (len > 0 && text[len - 1] == '\r')
            len--;
    }
    if ((ret = tb_jwt_keys_parse_secret((const uint8_t *)text, len, out, err, errlen)) != 0)
        name_path(path, err, errlen);
    OPENSSL_clear_free(text, full + 1);
    return ret;
}
