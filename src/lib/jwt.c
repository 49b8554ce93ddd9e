/*
 * Bound JWTs: tb_jwt_bind signs claims with cnf.tbh, tb_jwt_check verifies one under a policy.
 *
 * libjwt 1.10 does the JWS signing and verification, but nothing else is left to it, because
 * called naively it is unsafe: it takes the algorithm from the token (HS256 "signed" with a
 * public key's PEM bytes verifies), treats a NULL key as "do not verify", decodes base64
 * leniently, compares HMACs with strcmp and never looks at exp. So tb_jwt_check first takes
 * the token apart itself, strictly: three base64url segments (no padding, canonical), a header
 * and a payload that are JSON objects without duplicate members, at most TB_JWT_MAX_TOKEN
 * bytes. The header's "alg" must be in the policy's allowlist and be one the key set can verify
 * (a set is public keys or secrets, never both); the key comes from our configuration, chosen
 * by "kid" when the set has ids, and is never NULL. HS256 MACs are compared here in constant
 * time before libjwt sees the token. After libjwt accepts, jwt_get_alg must still be the
 * algorithm we chose, and the claims it verified (jwt_get_grants_json) are checked here with
 * jansson: types, exp (required) / nbf / iat with leeway, iss, aud, sub, then cnf.tbh against
 * the connection's tbh with CRYPTO_memcmp. Key sets live in jwt_keys.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "internal.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/tbh.h"

#define MIN_SECRET 32
#define MAX_SUB 255
#define HS256_LEN 32
#define ES256_LEN 64
/* NumericDate values are kept within +-2^62 so that leeway arithmetic cannot overflow */
#define MAX_DATE 4611686018427387904.0

static const struct {
    enum tb_jwt_alg alg;
    const char *name;
    jwt_alg_t jwt;
} algs[] = {
    {TB_JWT_ES256, "ES256", JWT_ALG_ES256},
    {TB_JWT_RS256, "RS256", JWT_ALG_RS256},
    {TB_JWT_HS256, "HS256", JWT_ALG_HS256},
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))
#define ALL_ALGS (TB_JWT_ES256 | TB_JWT_RS256 | TB_JWT_HS256)

const char *tb_jwt_alg_name(enum tb_jwt_alg alg)
{
    size_t i;

    for (i = 0; i < N_ALGS; i++)
        if (algs[i].alg == alg)
            return algs[i].name;
    return NULL;
}

int tb_jwt_alg_parse(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < N_ALGS; i++)
        if (strcmp(algs[i].name, name) == 0)
            return algs[i].alg;
    return TB_EALG;
}

static jwt_alg_t libjwt_alg(enum tb_jwt_alg alg)
{
    size_t i;

    for (i = 0; i < N_ALGS; i++)
        if (algs[i].alg == alg)
            return algs[i].jwt;
    return JWT_ALG_INVAL;
}

/* 1 if tbh is TB_TBH_LEN base64url characters encoding 32 bytes. */
static int tbh_ok(const char *tbh)
{
    uint8_t md[33];

    return tbh != NULL && strnlen(tbh, TB_TBH_LEN + 1) == TB_TBH_LEN &&
           tb_base64url_decode(tbh, TB_TBH_LEN, md, sizeof(md)) == 32;
}

/* --- signing -------------------------------------------------------------------------------- */

/* Never prompts for a passphrase: an encrypted key simply does not load. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/*
 * The PEM private key in key[0..len) checked against alg and written out again (PKCS#8, no
 * passphrase) into a malloc'd NUL-terminated *pem that the caller wipes and frees.
 */
static int private_pem(const uint8_t *key, size_t len, enum tb_jwt_alg alg, char **pem,
                       size_t *pem_len)
{
    BIO *in = NULL, *out = NULL;
    EVP_PKEY *pkey = NULL;
    char *data = NULL;
    long n;
    int ret = TB_ENOMEM;

    if (len > INT32_MAX)
        return TB_EINVAL;
    if ((in = BIO_new_mem_buf(key, (int)len)) == NULL || (out = BIO_new(BIO_s_secmem())) == NULL)
        goto Exit;
    ret = TB_EINVAL;
    if ((pkey = PEM_read_bio_PrivateKey(in, NULL, no_password, NULL)) == NULL ||
        tb_jwt_pkey_alg(pkey, NULL, 0) != (int)alg)
        goto Exit;
    ret = TB_ECRYPTO;
    if (PEM_write_bio_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        (n = BIO_get_mem_data(out, &data)) <= 0)
        goto Exit;
    ret = TB_ENOMEM;
    if ((*pem = malloc((size_t)n + 1)) == NULL)
        goto Exit;
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    *pem_len = (size_t)n;
    ret = 0;
Exit:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(out);
    return ret;
}

/* claims_json parsed, with cnf.tbh set. */
static int bound_claims(const char *claims_json, const char *tbh, char **out)
{
    json_t *claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL), *cnf;
    int ret = TB_EINVAL;

    if (!json_is_object(claims))
        goto Exit;
    cnf = json_object_get(claims, "cnf");
    if (cnf == NULL) {
        cnf = json_object();
        if (cnf == NULL || json_object_set_new(claims, "cnf", cnf) != 0) {
            ret = TB_ENOMEM;
            goto Exit;
        }
    } else if (!json_is_object(cnf)) {
        goto Exit;
    }
    ret = TB_ENOMEM;
    if (json_object_set_new(cnf, "tbh", json_string(tbh)) != 0 ||
        (*out = json_dumps(claims, JSON_COMPACT)) == NULL)
        goto Exit;
    ret = 0;
Exit:
    json_decref(claims);
    return ret;
}

int tb_jwt_bind(const char *claims_json, const char *tbh, enum tb_jwt_alg alg, const uint8_t *key,
                size_t key_len, const char *kid, char **out)
{
    char *claims = NULL, *pem = NULL, *token = NULL;
    const uint8_t *k = key;
    size_t k_len = key_len, pem_len = 0;
    jwt_t *jwt = NULL;
    int ret = TB_EINVAL;

    if (out == NULL)
        return TB_EINVAL;
    *out = NULL;
    if (claims_json == NULL || !tbh_ok(tbh) || tb_jwt_alg_name(alg) == NULL || key == NULL ||
        key_len == 0 || key_len > INT32_MAX || (kid != NULL && !tb_jwt_kid_ok(kid)))
        return TB_EINVAL;
    if (alg == TB_JWT_HS256 && key_len < MIN_SECRET)
        return TB_EINVAL;
    if (alg != TB_JWT_HS256) {
        if ((ret = private_pem(key, key_len, alg, &pem, &pem_len)) != 0)
            return ret;
        k = (const uint8_t *)pem;
        k_len = pem_len;
    }
    if ((ret = bound_claims(claims_json, tbh, &claims)) != 0)
        goto Exit;
    ret = TB_ENOMEM;
    if (jwt_new(&jwt) != 0)
        goto Exit;
    ret = TB_EINVAL;
    if (jwt_add_grants_json(jwt, claims) != 0 ||
        jwt_set_alg(jwt, libjwt_alg(alg), k, (int)k_len) != 0 ||
        (kid != NULL && jwt_add_header(jwt, "kid", kid) != 0))
        goto Exit;
    ret = TB_ECRYPTO;
    if ((token = jwt_encode_str(jwt)) == NULL)
        goto Exit;
    ret = TB_EINVAL; /* claims too big for any verifier of ours */
    if (strlen(token) > TB_JWT_MAX_TOKEN)
        goto Exit;
    *out = token;
    token = NULL;
    ret = 0;
Exit:
    free(token);
    jwt_free(jwt);
    free(claims);
    if (pem != NULL)
        OPENSSL_clear_free(pem, pem_len + 1);
    return ret;
}

/* --- checking: the token taken apart -------------------------------------------------------- */

struct parts {
    const char *seg[3]; /* header, payload, signature: slices of the token */
    size_t seg_len[3];
    json_t *header; /* parsed, not yet verified */
    uint8_t *sig;   /* decoded signature */
    size_t sig_len;
    enum tb_jwt_alg alg;
    const char *kid; /* in header, or NULL */
};

/* Decodes a strict base64url segment (no padding) into a malloc'd buffer. */
static int segment(const char *s, size_t n, uint8_t **out, size_t *len)
{
    size_t cap = tb_base64url_decoded_max(n) + 1;
    int r;

    *out = NULL;
    if (memchr(s, '=', n) != NULL)
        return TB_EPARSE;
    if ((*out = malloc(cap)) == NULL)
        return TB_ENOMEM;
    if ((r = tb_base64url_decode(s, n, *out, cap)) < 0) {
        free(*out);
        *out = NULL;
        return TB_EPARSE;
    }
    *len = (size_t)r;
    return 0;
}

/* A segment that must be a JSON object (members unique). */
static int json_segment(const char *s, size_t n, json_t **out)
{
    uint8_t *buf;
    size_t len = 0;
    int ret;

    *out = NULL;
    if (n == 0)
        return TB_EPARSE;
    if ((ret = segment(s, n, &buf, &len)) != 0)
        return ret;
    *out = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return TB_EPARSE;
    }
    return 0;
}

/* Splits token into exactly three segments. */
static int split(const char *token, size_t len, struct parts *t)
{
    size_t i, s = 0, start = 0;

    if (len == 0 || len > TB_JWT_MAX_TOKEN || memchr(token, '\0', len) != NULL)
        return TB_EPARSE;
    for (i = 0; i <= len; i++) {
        if (i < len && token[i] != '.')
            continue;
        if (s == 3)
            return TB_EPARSE;
        t->seg[s] = token + start;
        t->seg_len[s++] = i - start;
        start = i + 1;
    }
    return s == 3 ? 0 : TB_EPARSE;
}

/* The header's alg, typ, crit and kid, checked against the policy and the keys. */
static int check_header(struct parts *t, const struct tb_jwt_policy *p)
{
    json_t *alg = json_object_get(t->header, "alg"), *typ = json_object_get(t->header, "typ");
    json_t *kid = json_object_get(t->header, "kid");
    int a;

    if (alg == NULL)
        return TB_EALG;
    if (!json_is_string(alg))
        return TB_EPARSE;
    /* no extension is understood here, so none may be critical (RFC 7515 section 4.1.11) */
    if (json_object_get(t->header, "crit") != NULL)
        return TB_EPARSE;
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return TB_EPARSE;
    if (kid != NULL) {
        if (!json_is_string(kid) || !tb_jwt_kid_ok(json_string_value(kid)))
            return TB_EPARSE;
        t->kid = json_string_value(kid);
    }
    if ((a = tb_jwt_alg_parse(json_string_value(alg))) < 0)
        return TB_EALG;
    if (!(p->algs & (unsigned)a) || !(tb_jwt_keys_algs(p->keys) & (unsigned)a))
        return TB_EALG;
    t->alg = (enum tb_jwt_alg)a;
    return 0;
}

/* Parses everything before any key is used. */
static int take_apart(const char *token, size_t len, const struct tb_jwt_policy *p, struct parts *t)
{
    json_t *payload = NULL;
    int ret;

    if ((ret = split(token, len, t)) != 0 ||
        (ret = json_segment(t->seg[0], t->seg_len[0], &t->header)) != 0 ||
        (ret = check_header(t, p)) != 0)
        return ret;
    if ((ret = json_segment(t->seg[1], t->seg_len[1], &payload)) != 0)
        return ret;
    json_decref(payload);
    if ((ret = segment(t->seg[2], t->seg_len[2], &t->sig, &t->sig_len)) != 0)
        return ret;
    if (t->sig_len == 0 || (t->alg == TB_JWT_ES256 && t->sig_len != ES256_LEN) ||
        (t->alg == TB_JWT_HS256 && t->sig_len != HS256_LEN))
        return TB_ESIGNATURE;
    return 0;
}

/* --- checking: signature -------------------------------------------------------------------- */

/* HMAC-SHA256 over header.payload compared in constant time (libjwt uses strcmp). */
static int hmac_ok(const struct parts *t, const struct tb_jwt_key *k)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t si_len = t->seg_len[0] + 1 + t->seg_len[1];
    int ok;

    if (HMAC(EVP_sha256(), k->bytes, (int)k->len, (const unsigned char *)t->seg[0], si_len, md,
             &md_len) == NULL)
        return TB_ECRYPTO;
    ok = md_len == HS256_LEN && CRYPTO_memcmp(md, t->sig, HS256_LEN) == 0;
    OPENSSL_cleanse(md, sizeof(md));
    return ok ? 0 : TB_ESIGNATURE;
}

/* One key: libjwt verifies, then the algorithm it used must be the one we chose. */
static int verify_key(const char *token_z, const struct parts *t, const struct tb_jwt_key *k,
                      jwt_t **out)
{
    jwt_t *jwt = NULL;
    int r;

    if (k->bytes == NULL || k->len == 0 || k->len > INT32_MAX) /* libjwt: NULL means no check */
        return TB_EINVAL;
    if (t->alg == TB_JWT_HS256 && (r = hmac_ok(t, k)) != 0)
        return r;
    if ((r = jwt_decode(&jwt, token_z, k->bytes, (int)k->len)) != 0)
        return r == ENOMEM ? TB_ENOMEM : TB_ESIGNATURE;
    if (jwt_get_alg(jwt) != libjwt_alg(t->alg)) {
        jwt_free(jwt);
        return TB_EALG;
    }
    *out = jwt;
    return 0;
}

/*
 * Tries the keys that may have signed the token: with a kid and a set that has ids, only the
 * key of that id (TB_EKEYID if none, TB_EALG if it is for another algorithm); otherwise each
 * key of the token's algorithm. Returns 0 with the verified *out, or the error.
 */
static int verify(const char *token_z, const struct parts *t, const struct tb_jwt_keys *keys,
                  jwt_t **out)
{
    int named = 0, tried = 0, r;
    size_t i;

    for (i = 0; i < keys->n; i++) {
        const struct tb_jwt_key *k = &keys->key[i];
        if (t->kid != NULL && keys->has_kids) {
            if (k->kid == NULL || strcmp(k->kid, t->kid) != 0)
                continue;
            named = 1;
        }
        if (k->alg != t->alg)
            continue;
        tried = 1;
        if ((r = verify_key(token_z, t, k, out)) == 0)
            return 0;
        if (r != TB_ESIGNATURE)
            return r;
    }
    if (t->kid != NULL && keys->has_kids && !named)
        return TB_EKEYID;
    return tried ? TB_ESIGNATURE : TB_EALG;
}

/* --- checking: claims ----------------------------------------------------------------------- */

/* A NumericDate claim: 1 if absent, 0 with *out, or TB_ECLAIM. Fractions round towards the
 * stricter side (up for nbf / iat, down for exp). */
static int numeric_date(json_t *v, int round_up, int64_t *out)
{
    double d;

    if (v == NULL)
        return 1;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > (json_int_t)MAX_DATE || i < -(json_int_t)MAX_DATE)
            return TB_ECLAIM;
        *out = (int64_t)i;
        return 0;
    }
    if (!json_is_real(v))
        return TB_ECLAIM;
    d = json_real_value(v);
    if (!(d <= MAX_DATE && d >= -MAX_DATE)) /* NaN and infinities too */
        return TB_ECLAIM;
    *out = (int64_t)d; /* towards zero, then to the stricter side */
    if (round_up && (double)*out < d)
        (*out)++;
    if (!round_up && (double)*out > d)
        (*out)--;
    return 0;
}

/* 1 if s is 0..MAX_SUB printable ASCII characters. */
static int sub_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n > MAX_SUB)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* "aud": a string or an array of strings; 1 if it names audience. TB_ECLAIM on a bad type. */
static int aud_has(json_t *aud, const char *audience)
{
    json_t *v;
    size_t i;
    int found = 0;

    if (json_is_string(aud))
        return audience != NULL && strcmp(json_string_value(aud), audience) == 0;
    if (!json_is_array(aud))
        return TB_ECLAIM;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return TB_ECLAIM;
        if (audience != NULL && strcmp(json_string_value(v), audience) == 0)
            found = 1;
    }
    return found;
}

struct dates {
    int64_t exp, nbf, iat;
    int has_nbf, has_iat;
};

/* Types of the registered claims this module reads; exp required. */
static int claim_types(json_t *c, struct dates *d)
{
    json_t *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
    json_t *aud = json_object_get(c, "aud"), *cnf = json_object_get(c, "cnf");
    int r;

    if (numeric_date(json_object_get(c, "exp"), 0, &d->exp) != 0)
        return TB_ECLAIM; /* absent or not a number */
    if ((r = numeric_date(json_object_get(c, "nbf"), 1, &d->nbf)) < 0)
        return TB_ECLAIM;
    d->has_nbf = r == 0;
    if ((r = numeric_date(json_object_get(c, "iat"), 1, &d->iat)) < 0)
        return TB_ECLAIM;
    d->has_iat = r == 0;
    if ((iss != NULL && !json_is_string(iss)) || (aud != NULL && aud_has(aud, NULL) < 0))
        return TB_ECLAIM;
    if (sub != NULL && (!json_is_string(sub) || !sub_ok(json_string_value(sub))))
        return TB_ECLAIM;
    if (cnf != NULL && (!json_is_object(cnf) || (json_object_get(cnf, "tbh") != NULL &&
                                                 !json_is_string(json_object_get(cnf, "tbh")))))
        return TB_ECLAIM;
    return 0;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static int check_claims(json_t *c, const struct tb_jwt_policy *p, const char *tbh,
                        struct tb_jwt_result *res)
{
    int64_t now = p->now != 0 ? p->now : (int64_t)time(NULL), leeway = p->leeway_s;
    json_t *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
    json_t *cnf = json_object_get(c, "cnf"), *claim_tbh;
    struct dates d = {0};
    int r;

    if ((r = claim_types(c, &d)) != 0)
        return r;
    /* RFC 7519: valid before exp, from nbf on; an iat in the future is not yet valid either */
    if (add_sat(now, -leeway) >= d.exp)
        return TB_EEXPIRED;
    if ((d.has_nbf && add_sat(now, leeway) < d.nbf) || (d.has_iat && add_sat(now, leeway) < d.iat))
        return TB_ENOTYET;
    if (p->issuer != NULL && (iss == NULL || strcmp(json_string_value(iss), p->issuer) != 0))
        return TB_ECLAIM;
    if (p->audience != NULL && aud_has(json_object_get(c, "aud"), p->audience) != 1)
        return TB_ECLAIM;
    if (cnf == NULL || (claim_tbh = json_object_get(cnf, "tbh")) == NULL)
        return TB_EUNBOUND;
    if (json_string_length(claim_tbh) != TB_TBH_LEN ||
        CRYPTO_memcmp(json_string_value(claim_tbh), tbh, TB_TBH_LEN) != 0)
        return TB_EMISMATCH;
    if (res != NULL) {
        snprintf(res->sub, sizeof(res->sub), "%s", sub != NULL ? json_string_value(sub) : "");
        res->exp = d.exp;
    }
    return 0;
}

static int policy_ok(const struct tb_jwt_policy *p)
{
    return p != NULL && p->keys != NULL && p->algs != 0 && (p->algs & ~(unsigned)ALL_ALGS) == 0;
}

int tb_jwt_check(const char *token, size_t len, const struct tb_jwt_policy *p, const char *tbh,
                 struct tb_jwt_result *res)
{
    struct parts t = {0};
    char *token_z = NULL, *grants = NULL;
    json_t *claims = NULL;
    jwt_t *jwt = NULL;
    int ret;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if ((token == NULL && len > 0) || !policy_ok(p) || !tbh_ok(tbh))
        return TB_EINVAL;
    if ((ret = take_apart(token, len, p, &t)) != 0)
        goto Exit;
    ret = TB_ENOMEM;
    if ((token_z = malloc(len + 1)) == NULL)
        goto Exit;
    memcpy(token_z, token, len);
    token_z[len] = '\0';
    if ((ret = verify(token_z, &t, p->keys, &jwt)) != 0)
        goto Exit;
    /* the claims as libjwt verified them; the same bytes parsed without duplicates above */
    ret = TB_ENOMEM;
    if ((grants = jwt_get_grants_json(jwt, NULL)) == NULL)
        goto Exit;
    ret = TB_EPARSE;
    if ((claims = json_loads(grants, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(claims))
        goto Exit;
    ret = check_claims(claims, p, tbh, res);
Exit:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    free(token_z);
    free(t.sig);
    json_decref(t.header);
    return ret;
}
