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
 * by "kid" when the set has ids, and is never NULL. After libjwt accepts, jwt_get_alg must still
 * be the algorithm we chose, and the claims it verified (jwt_get_grants_json) are checked here
 * with jansson: types, exp (required) / nbf / iat with leeway, iss, aud, sub, then cnf.tbh
 * against the connection's tbh with CRYPTO_memcmp. Key sets live in jwt_keys.c.
 *
 * Speed without giving any of that up. libjwt re-reads the PEM key on every jwt_decode, which on
 * OpenSSL 3 costs about ten signature verifies, and the proxy checks a token on every request.
 * So, in front of libjwt:
 * - Our own signature check, with the templates jwt_keys.c built at load (ES256: JOSE R || S
 *   turned into DER; RS256: PKCS#1 v1.5; HS256: HMAC compared with CRYPTO_memcmp). A token it
 *   refuses is TB_ESIGNATURE and never reaches libjwt, so a forged token costs one verify. Only
 *   a token it accepted goes on to jwt_decode, with that one key: libjwt verifies again.
 * - A per-thread cache (LRU, TB_JWT_CACHE_ENTRIES tokens and TB_JWT_CACHE_BYTES token bytes;
 *   freed when the thread exits) of tokens whose signature both checks accepted, found by
 *   SHA-256 of the token's bytes and the key set's generation (unique for the process's life, so
 *   a set freed and another allocated at its address never share entries); the whole hash is
 *   compared. It holds the verified claims. A hit skips parsing, both signature checks and
 *   libjwt, but not the policy: the token's alg must be in this call's allowlist and every claim
 *   is checked again against this call's policy, tbh and clock, so expiry and binding are never
 *   cached. Tokens are cached even when their claims fail (expired, bound to another key): the
 *   claims are checked again anyway, and a replayed stolen or stale token is then refused for
 *   the price of a hash. Only tokens signed by a configured key enter, so garbage cannot evict.
 */
#include <errno.h>
#include <pthread.h>
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
#include <openssl/pem.h>

#include "internal.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/tbh.h"

#define MIN_SECRET 32
#define MAX_SUB 255
#define HS256_LEN 32
#define ES256_LEN 64
#define SHA256_LEN 32
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

/* --- the per-thread state: SHA-256, counters, the verified-token cache ----------------------- */

/*
 * One verified token. Found by (SHA-256 of the token's bytes, generation of the key set); holds
 * the claims exactly as the miss path checked them, so a hit runs the same check_claims on the
 * same JSON and returns what a miss would.
 */
struct centry {
    struct centry *chain;       /* next in the same bucket */
    struct tb_lru_node lru;     /* in tcache.lru */
    uint8_t hash[SHA256_LEN];   /* SHA-256 of the token */
    uint64_t gen;               /* tb_jwt_keys.gen of the set its signature verified under */
    enum tb_jwt_alg alg;        /* the token's algorithm */
    size_t cost;                /* the token's length, charged against TB_JWT_CACHE_BYTES */
    json_t *claims;             /* the verified payload (one reference, never modified) */
};

#define N_BUCKETS 512 /* a power of two, twice TB_JWT_CACHE_ENTRIES */

struct tcache {
    EVP_MD *sha256;    /* fetched once per thread */
    EVP_MD_CTX *mdctx; /* reused for every digest */
    struct centry *buckets[N_BUCKETS];
    struct tb_lru lru;               /* every entry, most recent first */
    struct tb_jwt_cache_stats stats; /* entries and bytes kept current */
};

static void centry_free(struct centry *e)
{
    json_decref(e->claims);
    free(e);
}

static void tcache_free(struct tcache *c)
{
    struct tb_lru_node *n, *next;

    if (c == NULL)
        return;
    for (n = c->lru.head; n != NULL; n = next) {
        next = n->next;
        centry_free(TB_LRU_ENTRY(n, struct centry, lru));
    }
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->sha256);
    free(c);
}

static struct tcache *tcache_new(void)
{
    struct tcache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    c->mdctx = EVP_MD_CTX_new();
    if (c->sha256 == NULL || c->mdctx == NULL) {
        tcache_free(c);
        return NULL;
    }
    return c;
}

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static int thread_key_ok;
static __thread struct tcache *thread_cache;

static void thread_destroy(void *p)
{
    thread_cache = NULL; /* a later destructor that checks a token gets a new one */
    tcache_free(p);
}

static void thread_key_init(void)
{
    thread_key_ok = pthread_key_create(&thread_key, thread_destroy) == 0;
}

/* The calling thread's state, made on first use; NULL when out of memory. */
static struct tcache *tcache_get(void)
{
    if (thread_cache != NULL)
        return thread_cache;
    if (pthread_once(&thread_once, thread_key_init) != 0 || !thread_key_ok)
        return NULL; /* without a destructor the state would leak at thread exit */
    if ((thread_cache = tcache_new()) != NULL &&
        pthread_setspecific(thread_key, thread_cache) != 0) {
        tcache_free(thread_cache);
        thread_cache = NULL;
    }
    return thread_cache;
}

void tb_jwt_cache_get_stats(struct tb_jwt_cache_stats *out)
{
    if (thread_cache != NULL)
        *out = thread_cache->stats;
    else
        memset(out, 0, sizeof(*out));
}

void tb_jwt_cache_release(void)
{
    if (thread_cache == NULL)
        return;
    (void)pthread_setspecific(thread_key, NULL);
    tcache_free(thread_cache);
    thread_cache = NULL;
}

static int digest(struct tcache *c, const void *p, size_t n, uint8_t *out)
{
    unsigned int len = 0;

    if (EVP_DigestInit_ex(c->mdctx, c->sha256, NULL) != 1 ||
        EVP_DigestUpdate(c->mdctx, p, n) != 1 || EVP_DigestFinal_ex(c->mdctx, out, &len) != 1 ||
        len != SHA256_LEN)
        return TB_ECRYPTO;
    return 0;
}

static size_t bucket_of(const uint8_t *hash, uint64_t gen)
{
    uint64_t h;

    memcpy(&h, hash, sizeof(h)); /* SHA-256 output: already uniform */
    return (size_t)((h ^ (gen * 0x9e3779b97f4a7c15ull)) & (N_BUCKETS - 1));
}

/* The entry for (hash, gen), made the most recent; NULL if none. The whole hash is compared. */
static struct centry *cache_find(struct tcache *c, const uint8_t *hash, uint64_t gen)
{
    struct centry *e;

    for (e = c->buckets[bucket_of(hash, gen)]; e != NULL; e = e->chain) {
        if (e->gen == gen && CRYPTO_memcmp(e->hash, hash, SHA256_LEN) == 0) {
            tb_lru_touch(&c->lru, &e->lru);
            return e;
        }
    }
    return NULL;
}

static void cache_evict_tail(struct tcache *c)
{
    struct centry *e = TB_LRU_ENTRY(c->lru.tail, struct centry, lru);
    struct centry **pp = &c->buckets[bucket_of(e->hash, e->gen)];

    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    tb_lru_unlink(&c->lru, &e->lru);
    c->stats.entries--;
    c->stats.bytes -= e->cost;
    c->stats.evictions++;
    centry_free(e);
}

/* Remembers a token whose signature verified (ours and libjwt's). Best effort: without memory
 * the token is simply not cached. Takes a reference to claims. */
static void cache_insert(struct tcache *c, const uint8_t *hash, uint64_t gen, enum tb_jwt_alg alg,
                         size_t cost, json_t *claims)
{
    struct centry *e;
    size_t b;

    if (cost > TB_JWT_CACHE_BYTES || (e = calloc(1, sizeof(*e))) == NULL)
        return;
    while (c->lru.tail != NULL &&
           (c->stats.entries >= TB_JWT_CACHE_ENTRIES || c->stats.bytes + cost > TB_JWT_CACHE_BYTES))
        cache_evict_tail(c);
    memcpy(e->hash, hash, SHA256_LEN);
    e->gen = gen;
    e->alg = alg;
    e->cost = cost;
    e->claims = json_incref(claims);
    b = bucket_of(hash, gen);
    e->chain = c->buckets[b];
    c->buckets[b] = e;
    tb_lru_push_front(&c->lru, &e->lru);
    c->stats.entries++;
    c->stats.bytes += cost;
    c->stats.inserts++;
}

/* --- checking: signature, ours first, then libjwt's ------------------------------------------ */

/* DER INTEGER of an unsigned big-endian number: minimal, with a 0x00 when the top bit is set. */
static size_t der_uint(uint8_t *out, const uint8_t *x, size_t n)
{
    size_t pad;

    while (n > 1 && x[0] == 0) {
        x++;
        n--;
    }
    pad = (x[0] & 0x80) ? 1 : 0;
    out[0] = 0x02;
    out[1] = (uint8_t)(n + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, x, n);
    return 2 + pad + n;
}

/* A JOSE ES256 signature (R || S, 32 bytes each) as the ECDSA-Sig-Value DER OpenSSL verifies:
 * at most 2 + 2 * 35 bytes into der. */
#define ES256_DER_MAX (2 + 2 * 35)
static size_t es256_der(const uint8_t *rs, uint8_t *der)
{
    size_t n = der_uint(der + 2, rs, 32);

    n += der_uint(der + 2 + n, rs + 32, 32);
    der[0] = 0x30;
    der[1] = (uint8_t)n;
    return n + 2;
}

/* HMAC-SHA256 over header.payload with k's template, compared in constant time (libjwt uses
 * strcmp). */
static int hmac_ok(const struct parts *t, const struct tb_jwt_key *k)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len = 0, si_len = t->seg_len[0] + 1 + t->seg_len[1];
    EVP_MAC_CTX *ctx;
    int ok;

    if (k->mac == NULL) /* never "no check" */
        return TB_EINVAL;
    if ((ctx = EVP_MAC_CTX_dup(k->mac)) == NULL)
        return TB_ENOMEM;
    ok = EVP_MAC_update(ctx, (const unsigned char *)t->seg[0], si_len) == 1 &&
         EVP_MAC_final(ctx, md, &md_len, sizeof(md)) == 1;
    EVP_MAC_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(md, sizeof(md));
        return TB_ECRYPTO;
    }
    ok = md_len == HS256_LEN && CRYPTO_memcmp(md, t->sig, HS256_LEN) == 0;
    OPENSSL_cleanse(md, sizeof(md));
    return ok ? 0 : TB_ESIGNATURE;
}

/* sig (DER for ES256) over the signing input's digest md, with k's verify template. */
static int pkey_ok(const struct tb_jwt_key *k, const uint8_t *sig, size_t sig_len,
                   const uint8_t *md)
{
    EVP_PKEY_CTX *ctx;
    int r;

    if (k->vctx == NULL)
        return TB_EINVAL;
    if ((ctx = EVP_PKEY_CTX_dup(k->vctx)) == NULL)
        return TB_ENOMEM;
    r = EVP_PKEY_verify(ctx, sig, sig_len, md, SHA256_LEN);
    EVP_PKEY_CTX_free(ctx);
    return r == 1 ? 0 : TB_ESIGNATURE;
}

/*
 * Our own signature check, with the keys that may have signed the token: with a kid and a set
 * that has ids, only the key of that id (TB_EKEYID if none, TB_EALG if it is for another
 * algorithm); otherwise each key of the token's algorithm. Returns 0 with the key that verified
 * in *out, or the error (TB_ESIGNATURE when no key did).
 */
static int preverify(struct tcache *c, const struct parts *t, const struct tb_jwt_keys *keys,
                     const struct tb_jwt_key **out)
{
    uint8_t md[SHA256_LEN], der[ES256_DER_MAX];
    const uint8_t *sig = t->sig;
    size_t sig_len = t->sig_len, i;
    int named = 0, tried = 0, r;

    if (t->alg != TB_JWT_HS256 &&
        (r = digest(c, t->seg[0], t->seg_len[0] + 1 + t->seg_len[1], md)) != 0)
        return r;
    if (t->alg == TB_JWT_ES256) { /* take_apart made sure it is 64 bytes */
        sig_len = es256_der(t->sig, der);
        sig = der;
    }
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
        r = k->alg == TB_JWT_HS256 ? hmac_ok(t, k) : pkey_ok(k, sig, sig_len, md);
        if (r == 0) {
            *out = k;
            return 0;
        }
        if (r != TB_ESIGNATURE)
            return r;
    }
    if (t->kid != NULL && keys->has_kids && !named)
        return TB_EKEYID;
    return tried ? TB_ESIGNATURE : TB_EALG;
}

/* libjwt verifies again with the key ours accepted; the algorithm it used must be ours. */
static int libjwt_verify(struct tcache *c, const char *token_z, const struct parts *t,
                         const struct tb_jwt_key *k, jwt_t **out)
{
    jwt_t *jwt = NULL;
    int r;

    if (k->bytes == NULL || k->len == 0 || k->len > INT32_MAX) /* libjwt: NULL means no check */
        return TB_EINVAL;
    c->stats.decodes++;
    if ((r = jwt_decode(&jwt, token_z, k->bytes, (int)k->len)) != 0)
        return r == ENOMEM ? TB_ENOMEM : TB_ESIGNATURE;
    if (jwt_get_alg(jwt) != libjwt_alg(t->alg)) {
        jwt_free(jwt);
        return TB_EALG;
    }
    *out = jwt;
    return 0;
}

static int policy_ok(const struct tb_jwt_policy *p)
{
    return p != NULL && p->keys != NULL && p->algs != 0 && (p->algs & ~(unsigned)ALL_ALGS) == 0;
}

/*
 * A token found in the cache: its bytes took the miss path before under this very key set, so
 * everything that depends only on them and the set (syntax, header, kid, signature) would come
 * out the same again. What depends on the call is checked again: the policy's allowlist, then
 * every claim against this policy, this tbh and this now.
 */
static int check_cached(const struct centry *e, const struct tb_jwt_policy *p, const char *tbh,
                        struct tb_jwt_result *res)
{
    if (!(p->algs & (unsigned)e->alg))
        return TB_EALG;
    return check_claims(e->claims, p, tbh, res);
}

int tb_jwt_check(const char *token, size_t len, const struct tb_jwt_policy *p, const char *tbh,
                 struct tb_jwt_result *res)
{
    const struct tb_jwt_key *key = NULL;
    uint8_t hash[SHA256_LEN];
    struct parts t = {0};
    struct tcache *c;
    struct centry *e;
    char *token_z = NULL, *grants = NULL;
    json_t *claims = NULL;
    jwt_t *jwt = NULL;
    int ret;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if ((token == NULL && len > 0) || !policy_ok(p) || !tbh_ok(tbh))
        return TB_EINVAL;
    if (len == 0 || len > TB_JWT_MAX_TOKEN) /* before hashing anything */
        return TB_EPARSE;
    if ((c = tcache_get()) == NULL)
        return TB_ENOMEM;
    if ((ret = digest(c, token, len, hash)) != 0)
        return ret;
    if ((e = cache_find(c, hash, p->keys->gen)) != NULL) {
        c->stats.hits++;
        return check_cached(e, p, tbh, res);
    }
    c->stats.misses++;
    if ((ret = take_apart(token, len, p, &t)) != 0)
        goto Exit;
    if ((ret = preverify(c, &t, p->keys, &key)) != 0) {
        c->stats.rejected += ret == TB_ESIGNATURE;
        goto Exit;
    }
    ret = TB_ENOMEM;
    if ((token_z = malloc(len + 1)) == NULL)
        goto Exit;
    memcpy(token_z, token, len);
    token_z[len] = '\0';
    if ((ret = libjwt_verify(c, token_z, &t, key, &jwt)) != 0)
        goto Exit;
    /* the claims as libjwt verified them; the same bytes parsed without duplicates above */
    ret = TB_ENOMEM;
    if ((grants = jwt_get_grants_json(jwt, NULL)) == NULL)
        goto Exit;
    ret = TB_EPARSE;
    if ((claims = json_loads(grants, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(claims))
        goto Exit;
    /* cached whatever the claims say: they are checked again on every hit */
    cache_insert(c, hash, p->keys->gen, t.alg, len, claims);
    ret = check_claims(claims, p, tbh, res);
Exit:
    if (ret != 0)
        ERR_clear_error(); /* failed verifies leave OpenSSL errors behind */
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    free(token_z);
    free(t.sig);
    json_decref(t.header);
    return ret;
}
