/*
 * Signature verification and the per-thread key cache.
 *
 * The cache maps (version, TBID bytes) to a ready-to-use verification context: the EVP_PKEY built
 * from the ID and an EVP_PKEY_CTX on which EVP_PKEY_verify_init and the padding / digest settings
 * have already been done. A hit therefore costs a seeded hash of the ID, one memcmp and the
 * signature operation itself. Chained hash table (power-of-two buckets, twice the capacity) plus
 * an intrusive LRU list; a key enters the cache only after a signature made with it verified, so
 * a flood of garbage keys cannot evict the keys of real clients.
 *
 * The signed bytes are hashed with a SHA-256 fetched once per verifier and one EVP_MD_CTX reused
 * for every digest; EVP_PKEY_verify then checks the signature over that digest.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "internal.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/verify.h"

#define PSS_SALT_LEN 32
#define SHA256_LEN 32

struct entry {
    struct entry *chain;       /* next in the same bucket */
    struct tb_lru_node lru;    /* in tb_verifier.lru */
    uint64_t hash;
    uint8_t version;
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *pctx; /* verify-initialised, padding set */
    size_t id_len;
    uint8_t id[];
};

struct tb_verifier {
    EVP_MD *sha256;
    EVP_MD_CTX *mdctx;
    EVP_PKEY_CTX *ec_from; /* EVP_PKEY_fromdata contexts, one per key type */
    EVP_PKEY_CTX *rsa_from;
    uint64_t seed;
    size_t capacity, count, mask;
    struct entry **buckets;
    struct tb_lru lru; /* every entry, most recent first */
    struct tb_verifier_stats stats;
};

/* --- the cache ---------------------------------------------------------------------------- */

static uint64_t hash_id(uint64_t seed, uint8_t version, const uint8_t *p, size_t n)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull ^ version;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    EVP_PKEY_CTX_free(e->pctx);
    EVP_PKEY_free(e->pkey);
    free(e);
}

static struct entry *cache_find(struct tb_verifier *v, uint8_t version, const struct tb_slice *id,
                                uint64_t hash)
{
    struct entry *e;

    for (e = v->buckets[hash & v->mask]; e != NULL; e = e->chain) {
        if (e->hash == hash && e->version == version && e->id_len == id->len &&
            memcmp(e->id, id->p, id->len) == 0)
            return e;
    }
    return NULL;
}

static void cache_remove(struct tb_verifier *v, struct entry *e)
{
    struct entry **pp = &v->buckets[e->hash & v->mask];

    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    tb_lru_unlink(&v->lru, &e->lru);
    v->count--;
}

static void cache_insert(struct tb_verifier *v, struct entry *e)
{
    if (v->count == v->capacity) {
        struct entry *old = TB_LRU_ENTRY(v->lru.tail, struct entry, lru);
        cache_remove(v, old);
        entry_free(old);
        v->stats.evictions++;
    }
    e->chain = v->buckets[e->hash & v->mask];
    v->buckets[e->hash & v->mask] = e;
    tb_lru_push_front(&v->lru, &e->lru);
    v->count++;
}

struct tb_verifier *tb_verifier_new(size_t capacity)
{
    struct tb_verifier *v = calloc(1, sizeof(*v));
    size_t nb = 16;

    if (v == NULL)
        return NULL;
    v->capacity = capacity ? capacity : TB_KEY_CACHE_DEFAULT;
    if (v->capacity > TB_KEY_CACHE_MAX)
        v->capacity = TB_KEY_CACHE_MAX;
    while (nb < 2 * v->capacity)
        nb <<= 1;
    v->mask = nb - 1;
    v->buckets = calloc(nb, sizeof(*v->buckets));
    v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    v->mdctx = EVP_MD_CTX_new();
    v->ec_from = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    v->rsa_from = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (v->buckets == NULL || v->sha256 == NULL || v->mdctx == NULL || v->ec_from == NULL ||
        v->rsa_from == NULL || RAND_bytes((unsigned char *)&v->seed, sizeof(v->seed)) != 1) {
        tb_verifier_free(v);
        return NULL;
    }
    return v;
}

void tb_verifier_free(struct tb_verifier *v)
{
    struct tb_lru_node *n, *next;

    if (v == NULL)
        return;
    for (n = v->lru.head; n != NULL; n = next) {
        next = n->next;
        entry_free(TB_LRU_ENTRY(n, struct entry, lru));
    }
    free(v->buckets);
    EVP_PKEY_CTX_free(v->rsa_from);
    EVP_PKEY_CTX_free(v->ec_from);
    EVP_MD_CTX_free(v->mdctx);
    EVP_MD_free(v->sha256);
    free(v);
}

void tb_verifier_get_stats(const struct tb_verifier *v, struct tb_verifier_stats *out)
{
    *out = v->stats;
    out->entries = v->count;
}

/* --- per-thread verifier ------------------------------------------------------------------ */

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static __thread struct tb_verifier *thread_verifier;

static void thread_destroy(void *p)
{
    thread_verifier = NULL; /* a later destructor calling tb_verifier_thread() gets a new one */
    tb_verifier_free(p);
}

static void thread_key_init(void)
{
    (void)pthread_key_create(&thread_key, thread_destroy);
}

struct tb_verifier *tb_verifier_thread(void)
{
    if (thread_verifier != NULL)
        return thread_verifier;
    if (pthread_once(&thread_once, thread_key_init) != 0)
        return NULL;
    thread_verifier = tb_verifier_new(0);
    if (thread_verifier != NULL)
        (void)pthread_setspecific(thread_key, thread_verifier);
    return thread_verifier;
}

void tb_verifier_thread_release(void)
{
    if (thread_verifier == NULL)
        return;
    (void)pthread_setspecific(thread_key, NULL);
    tb_verifier_free(thread_verifier);
    thread_verifier = NULL;
}

/* --- building keys ------------------------------------------------------------------------ */

static EVP_PKEY *build_ec_key(struct tb_verifier *v, const struct tb_slice *point)
{
    uint8_t pub[1 + 64];
    char group[] = "prime256v1";
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[3];

    pub[0] = 0x04;
    memcpy(pub + 1, point->p, 64);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata_init(v->ec_from) != 1 ||
        EVP_PKEY_fromdata(v->ec_from, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return NULL; /* includes a point that is not on the curve */
    return pkey;
}

static EVP_PKEY *build_rsa_key(struct tb_verifier *v, const struct tb_binding *b)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = BN_bin2bn(b->modulus.p, (int)b->modulus.len, NULL);
    BIGNUM *e = BN_bin2bn(b->exponent.p, (int)b->exponent.len, NULL);
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;

    if (bld == NULL || n == NULL || e == NULL || BN_num_bits(n) != 2048 || BN_num_bits(e) > 32 ||
        BN_get_word(e) < 3 || !BN_is_odd(e)) /* e = 1 would let anyone "sign" */
        goto Exit;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto Exit;
    if (EVP_PKEY_fromdata_init(v->rsa_from) != 1 ||
        EVP_PKEY_fromdata(v->rsa_from, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
Exit:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

/* A new (uncached) entry for b: its key and a verify-ready context. */
static int entry_new(struct tb_verifier *v, enum tb_version version, const struct tb_binding *b,
                     uint64_t hash, struct entry **out)
{
    struct entry *e = calloc(1, sizeof(*e) + b->id.len);
    int ret = TB_ENOMEM;

    if (e == NULL)
        goto Exit;
    e->hash = hash;
    e->version = (uint8_t)version;
    e->id_len = b->id.len;
    memcpy(e->id, b->id.p, b->id.len);
    e->pkey = b->key_params == TB_KP_ECDSAP256 ? build_ec_key(v, &b->point) : build_rsa_key(v, b);
    if (e->pkey == NULL) {
        ret = TB_ESIGNATURE; /* not a usable public key: nothing can verify with it */
        goto Exit;
    }
    ret = TB_ECRYPTO;
    if ((e->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, e->pkey, NULL)) == NULL ||
        EVP_PKEY_verify_init(e->pctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(e->pctx, v->sha256) != 1)
        goto Exit;
    if (b->key_params == TB_KP_RSA2048_PKCS1 &&
        EVP_PKEY_CTX_set_rsa_padding(e->pctx, RSA_PKCS1_PADDING) != 1)
        goto Exit;
    if (b->key_params == TB_KP_RSA2048_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(e->pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(e->pctx, v->sha256) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(e->pctx, PSS_SALT_LEN) != 1))
        goto Exit;
    *out = e;
    e = NULL;
    ret = 0;
Exit:
    entry_free(e);
    return ret;
}

/* --- verifying ---------------------------------------------------------------------------- */

int tb_signed_bytes(enum tb_version version, uint8_t type, int key_params, const uint8_t *channel,
                    size_t channel_len, uint8_t *out)
{
    static const char label[] = "token binding"; /* 13 characters and its NUL: 14 bytes */

    if (channel_len > TB_MAX_CHANNEL || (channel == NULL && channel_len > 0))
        return TB_EINVAL;
    if (version == TB_VERSION_DRAFT) {
        memcpy(out, label, sizeof(label));
        memcpy(out + sizeof(label), channel, channel_len);
        return (int)(sizeof(label) + channel_len);
    }
    out[0] = type;
    out[1] = (uint8_t)key_params;
    memcpy(out + 2, channel, channel_len);
    return (int)(2 + channel_len);
}

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

/* rfc ECDSA signatures are R||S (32 bytes each); OpenSSL wants ECDSA-Sig-Value DER. */
static int raw_to_der(const struct tb_slice *sig, uint8_t *der, size_t *der_len)
{
    size_t n;

    if (sig->len != 64)
        return TB_ESIGNATURE;
    n = der_uint(der + 2, sig->p, 32);
    n += der_uint(der + 2 + n, sig->p + 32, 32);
    der[0] = 0x30;
    der[1] = (uint8_t)n;
    *der_len = n + 2;
    return 0;
}

static int digest(struct tb_verifier *v, const uint8_t *p, size_t n, uint8_t *out)
{
    unsigned int len = 0;

    if (EVP_DigestInit_ex(v->mdctx, v->sha256, NULL) != 1 ||
        EVP_DigestUpdate(v->mdctx, p, n) != 1 || EVP_DigestFinal_ex(v->mdctx, out, &len) != 1)
        return TB_ECRYPTO;
    return 0;
}

int tb_verify_binding(struct tb_verifier *v, enum tb_version version, const struct tb_binding *b,
                      const uint8_t *channel, size_t channel_len)
{
    uint8_t tbs[TB_SIGNED_MAX], md[SHA256_LEN], der[2 + 2 * 35];
    const uint8_t *sig = b->sig.p;
    size_t sig_len = b->sig.len;
    struct entry *e, *fresh = NULL;
    uint64_t hash;
    int n, ret;

    if (b->key_params == TB_KP_UNSUPPORTED)
        return TB_EUNSUPPORTED;
    if (version == TB_VERSION_RFC && b->key_params == TB_KP_ECDSAP256) {
        if ((ret = raw_to_der(&b->sig, der, &sig_len)) != 0)
            return ret;
        sig = der;
    }
    if ((n = tb_signed_bytes(version, b->type, b->key_params, channel, channel_len, tbs)) < 0)
        return n;
    if ((ret = digest(v, tbs, (size_t)n, md)) != 0)
        return ret;
    hash = hash_id(v->seed, (uint8_t)version, b->id.p, b->id.len);
    e = cache_find(v, (uint8_t)version, &b->id, hash);
    if (e != NULL) {
        v->stats.hits++;
        tb_lru_touch(&v->lru, &e->lru);
    } else {
        v->stats.misses++;
        if ((ret = entry_new(v, version, b, hash, &fresh)) != 0)
            return ret;
        e = fresh;
    }
    ret = EVP_PKEY_verify(e->pctx, sig, sig_len, md, sizeof(md)) == 1 ? 0 : TB_ESIGNATURE;
    if (fresh != NULL) {
        if (ret == 0)
            cache_insert(v, fresh);
        else
            entry_free(fresh);
    }
    return ret;
}

/* --- the whole header --------------------------------------------------------------------- */

int tb_verify_header(struct tb_verifier *v, enum tb_version version, int negotiated,
                     const char *value, size_t value_len, const uint8_t *channel,
                     size_t channel_len, struct tb_verified *out)
{
    const struct tb_roles *r = &out->roles;
    int n, ret;
    size_t i;

    out->len = 0;
    memset(&out->roles, 0, sizeof(out->roles));
    if (v == NULL || (value == NULL && value_len > 0))
        return TB_EINVAL;
    if (value_len > TB_MAX_HEADER)
        return TB_ETOOLARGE;
    n = tb_base64url_decode(value, value_len, out->buf, sizeof(out->buf));
    if (n < 0)
        return n == TB_EINVAL ? TB_ETOOLARGE : n;
    out->len = (size_t)n;
    if ((ret = tb_message_parse(version, out->buf, out->len, &out->msg)) != 0 ||
        (ret = tb_message_validate(&out->msg, negotiated, &out->roles)) != 0)
        return ret;
    if ((ret = tb_verify_binding(v, version, r->provided, channel, channel_len)) != 0)
        return ret;
    if (r->referred != NULL &&
        (ret = tb_verify_binding(v, version, r->referred, channel, channel_len)) != 0)
        return ret;
    for (i = 0; i < r->n_other; i++) {
        if ((ret = tb_verify_binding(v, version, r->other[i], channel, channel_len)) != 0)
            return ret;
    }
    return 0;
}
