/*
 * bench-verify: how much does libtb add on top of the signature check itself?
 *
 * For P-256 and RSA-2048 (PKCS#1 v1.5), draft version, one provided binding over a fixed 12-byte
 * tls_unique, this measures verifies per second of:
 *   a   raw OpenSSL: EVP_DigestVerifyInit + EVP_DigestVerify over the 26 signed bytes with a
 *       prebuilt public EVP_PKEY and one reused EVP_MD_CTX (the floor for a cache hit);
 *   a'  raw OpenSSL with the key rebuilt from the TBID's public key every call
 *       (EVP_PKEY_fromdata with one reused EVP_PKEY_CTX), alternating between two keys
 *       (the floor for a cache miss);
 *   b   tb_verify_header on the full header value (base64url decode, parse, validate, verify)
 *       with a key-cache hit every call (one verifier, one header);
 *   c   tb_verify_header with a key-cache miss every call: a verifier of capacity 1 fed two
 *       headers (two keys) alternately, so each call evicts the other key and rebuilds its own.
 * a, b and the a, a' pair verify the very same DER signature (taken out of the built header).
 *
 * Then bound JWTs, ES256 (tb_jwt_check with one P-256 public key loaded from PEM, the policy the
 * proxy uses: ES256 allowlisted, cnf.tbh of the P-256 TBID above, exp in the future):
 *   d   a valid token never seen before: our own verify, then libjwt's jwt_decode (which re-reads
 *       the PEM key), then the claims; tokens cycle through a pool larger than the per-thread
 *       cache, so every call misses;
 *   e   the same valid token every call: a cache hit (SHA-256 of the token, claims re-checked);
 *   f   a forged token (one bit of the signature changed) every call: refused by our own verify,
 *       libjwt never runs, never cached.
 * Each is reported against a for P-256 (same rounds) as a time ratio: one check costs that many
 * raw verifies. The cache's counters are read around every d, e, f slice and must show d always
 * missing and reaching libjwt, e always hitting, f never reaching libjwt.
 *
 * Machine noise is cancelled by interleaving: the total time of each measurement (--seconds,
 * default 1) is cut into --rounds slices (default 10); each round runs every measurement of
 * every algorithm once, in a rotating order, and the table reports the median round (rates)
 * and the median of the per-round ratios b/a and c/a' (paired, so a slow round slows both).
 * Every verify result is checked; any failure aborts. --json prints one JSON object instead.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "../src/lib/internal.h" /* tb_jwt_cache_get_stats: to prove d, e, f are what they say */
#include "tb/tb.h"

#define MAX_ROUNDS 1000
#define CLOCK_EVERY 4       /* iterations between clock reads */
#define TARGET_RATIO 0.95   /* b/a must reach this */
#define WARMUP_SECONDS 0.05 /* per measurement, before the first round */
#define JWT_POOL 512        /* distinct tokens for d: twice the cache, so LRU always misses */

enum meas { M_A, M_A2, M_B, M_C, M_N };

static const char *const meas_key[M_N] = {"a", "a_prime", "b", "c"};
static const char *const meas_desc[M_N] = {
    "a   openssl, prebuilt key",
    "a'  openssl, key rebuilt each call",
    "b   tb_verify_header, cache hit",
    "c   tb_verify_header, cache miss",
};

struct alg {
    const char *name;   /* for the table */
    const char *json;   /* for --json */
    int kp;             /* enum tb_key_params, also the negotiated value */
    EVP_PKEY *priv[2];  /* generated key pairs */
    EVP_PKEY *pub;      /* (a): public-only key built once from binding 0 */
    EVP_PKEY_CTX *from; /* (a'): EVP_PKEY_fromdata context, reused */
    EVP_MD_CTX *mdctx;  /* (a): only ever initialised with pub (see op_openssl_rebuild) */
    struct tb_builder bld[2];
    struct tb_message msg[2]; /* slices into bld[i].buf */
    char hdr[2][TB_MAX_HEADER + 1];
    size_t hdr_len[2];
    struct tb_verifier *hit, *miss;
    double rate[M_N][MAX_ROUNDS];
    uint64_t iters[M_N];
};

static const uint8_t channel[TB_TLS_UNIQUE_LEN] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6,
                                                   0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c};
static uint8_t tbs[14 + TB_TLS_UNIQUE_LEN]; /* "token binding\0" || tls_unique */
static EVP_MD *sha256;
static EVP_MD_CTX *mdctx;           /* (a') and the sanity check */
static struct tb_verified verified; /* too big for the stack of a loop body */

/* --- JWT ES256: d miss, e hit, f forged ------------------------------------------------------ */

enum jmeas { J_D, J_E, J_F, J_N };

static const char *const jmeas_key[J_N] = {"d", "e", "f"};
static const char *const jmeas_desc[J_N] = {
    "d   tb_jwt_check, miss (new token)",
    "e   tb_jwt_check, hit (same token)",
    "f   tb_jwt_check, forged signature",
};

struct jwt_bench {
    struct tb_jwt_keys *keys;
    struct tb_jwt_policy policy;
    char tbh[TB_TBH_LEN + 1];
    char *pool[JWT_POOL]; /* d */
    size_t pool_len[JWT_POOL];
    char *same;   /* e: one more valid token, not in the pool */
    char *forged; /* f: same with the first character of its signature changed */
    size_t forged_len, same_len;
    double rate[J_N][MAX_ROUNDS];
    uint64_t iters[J_N];
    struct tb_jwt_cache_stats seen[J_N]; /* counter increments over each measurement's slices */
};

static void die(const char *alg, const char *what)
{
    fprintf(stderr, "bench-verify: %s: %s failed\n", alg, what);
    abort();
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A public-only EVP_PKEY from a parsed binding's key, the way a verifier must build it. */
static EVP_PKEY *pub_from_binding(EVP_PKEY_CTX *from, const struct tb_binding *b)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL, ec[3];
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY *pkey = NULL;
    char group[] = "prime256v1";
    uint8_t pub[65];

    if (EVP_PKEY_fromdata_init(from) != 1)
        return NULL;
    if (b->key_params == TB_KP_ECDSAP256) {
        pub[0] = 0x04;
        memcpy(pub + 1, b->point.p, 64);
        ec[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
        ec[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
        ec[2] = OSSL_PARAM_construct_end();
        if (EVP_PKEY_fromdata(from, &pkey, EVP_PKEY_PUBLIC_KEY, ec) != 1)
            pkey = NULL;
        return pkey;
    }
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        (n = BN_bin2bn(b->modulus.p, (int)b->modulus.len, NULL)) == NULL ||
        (e = BN_bin2bn(b->exponent.p, (int)b->exponent.len, NULL)) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        EVP_PKEY_fromdata(from, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

/* --- the four measured operations: one verify each, aborting on any failure ---------------- */

static void op_openssl(struct alg *a, uint64_t i)
{
    const struct tb_slice *sig = &a->msg[0].b[0].sig;

    (void)i;
    if (EVP_DigestVerifyInit(a->mdctx, NULL, sha256, NULL, a->pub) != 1 ||
        EVP_DigestVerify(a->mdctx, sig->p, sig->len, tbs, sizeof(tbs)) != 1)
        die(a->name, "a: EVP_DigestVerify");
}

static void op_openssl_rebuild(struct alg *a, uint64_t i)
{
    const struct tb_binding *b = &a->msg[i & 1].b[0];
    EVP_PKEY *pkey = pub_from_binding(a->from, b);
    int ok;

    /*
     * The reset is required: in OpenSSL 3.0 EVP_DigestVerifyInit on a used EVP_MD_CTX keeps the
     * EVP_PKEY_CTX (and so the key) of the previous init and silently ignores the new key.
     */
    ok = pkey != NULL && EVP_MD_CTX_reset(mdctx) == 1 &&
         EVP_DigestVerifyInit(mdctx, NULL, sha256, NULL, pkey) == 1 &&
         EVP_DigestVerify(mdctx, b->sig.p, b->sig.len, tbs, sizeof(tbs)) == 1;
    EVP_MD_CTX_reset(mdctx);
    EVP_PKEY_free(pkey);
    if (!ok)
        die(a->name, "a': rebuild + EVP_DigestVerify");
}

static void op_libtb_hit(struct alg *a, uint64_t i)
{
    (void)i;
    if (tb_verify_header(a->hit, TB_VERSION_DRAFT, a->kp, a->hdr[0], a->hdr_len[0], channel,
                         sizeof(channel), &verified) != 0)
        die(a->name, "b: tb_verify_header");
}

static void op_libtb_miss(struct alg *a, uint64_t i)
{
    if (tb_verify_header(a->miss, TB_VERSION_DRAFT, a->kp, a->hdr[i & 1], a->hdr_len[i & 1],
                         channel, sizeof(channel), &verified) != 0)
        die(a->name, "c: tb_verify_header");
}

typedef void (*op_fn)(struct alg *a, uint64_t i);
static const op_fn ops[M_N] = {op_openssl, op_openssl_rebuild, op_libtb_hit, op_libtb_miss};

/* The JWT operations take the jwt_bench as their struct alg * argument's stand-in (see run_jwt). */
static struct jwt_bench jb;
static uint64_t jwt_next; /* d's position in the pool, across slices */

static void op_jwt_miss(struct alg *a, uint64_t i)
{
    size_t k = (size_t)(jwt_next++ % JWT_POOL);

    (void)a;
    (void)i;
    if (tb_jwt_check(jb.pool[k], jb.pool_len[k], &jb.policy, jb.tbh, NULL) != 0)
        die("JWT ES256", "d: tb_jwt_check of a valid token");
}

static void op_jwt_hit(struct alg *a, uint64_t i)
{
    (void)a;
    (void)i;
    if (tb_jwt_check(jb.same, jb.same_len, &jb.policy, jb.tbh, NULL) != 0)
        die("JWT ES256", "e: tb_jwt_check of a valid token");
}

static void op_jwt_forged(struct alg *a, uint64_t i)
{
    (void)a;
    (void)i;
    if (tb_jwt_check(jb.forged, jb.forged_len, &jb.policy, jb.tbh, NULL) != TB_ESIGNATURE)
        die("JWT ES256", "f: tb_jwt_check did not refuse a forged signature");
}

static const op_fn jops[J_N] = {op_jwt_miss, op_jwt_hit, op_jwt_forged};

/* Runs op for `seconds` of wall time; returns verifies per second, adds the count to *total. */
static double run_for(op_fn op, struct alg *a, double seconds, uint64_t *total)
{
    double start = now(), deadline = start + seconds, t;
    uint64_t n = 0;
    int k;

    do {
        for (k = 0; k < CLOCK_EVERY; k++)
            op(a, n++);
        t = now();
    } while (t < deadline);
    *total += n;
    return (double)n / (t - start);
}

/* One slice of a JWT measurement, with the cache's counters added up around it. e is primed
 * first (untimed): d's slices push its token out of the cache. */
static double run_jwt(enum jmeas m, double seconds)
{
    struct tb_jwt_cache_stats s0, s1;
    struct tb_jwt_cache_stats *seen = &jb.seen[m];
    double rate;

    if (m == J_E)
        op_jwt_hit(NULL, 0);
    tb_jwt_cache_get_stats(&s0);
    rate = run_for(jops[m], NULL, seconds, &jb.iters[m]);
    tb_jwt_cache_get_stats(&s1);
    seen->hits += s1.hits - s0.hits;
    seen->misses += s1.misses - s0.misses;
    seen->decodes += s1.decodes - s0.decodes;
    seen->rejected += s1.rejected - s0.rejected;
    seen->inserts += s1.inserts - s0.inserts;
    return rate;
}

/* --- setup ---------------------------------------------------------------------------------- */

static void setup_alg(struct alg *a)
{
    int i, n;

    for (i = 0; i < 2; i++) {
        size_t len;
        const uint8_t *p;

        if (tb_key_generate(a->kp, &a->priv[i]) != 0)
            die(a->name, "tb_key_generate");
        tb_builder_init(&a->bld[i], TB_VERSION_DRAFT);
        if (tb_builder_add_signed(&a->bld[i], TB_TYPE_PROVIDED, a->kp, a->priv[i], channel,
                                  sizeof(channel)) != 0)
            die(a->name, "tb_builder_add_signed");
        n = tb_builder_header(&a->bld[i], a->hdr[i], sizeof(a->hdr[i]));
        if (n < 0)
            die(a->name, "tb_builder_header");
        a->hdr_len[i] = (size_t)n;
        p = tb_builder_bytes(&a->bld[i], &len);
        if (tb_message_parse(TB_VERSION_DRAFT, p, len, &a->msg[i]) != 0 || a->msg[i].count != 1 ||
            a->msg[i].b[0].key_params != a->kp)
            die(a->name, "tb_message_parse of the built message");
    }
    if ((a->from = EVP_PKEY_CTX_new_from_name(NULL, a->kp == TB_KP_ECDSAP256 ? "EC" : "RSA",
                                              NULL)) == NULL ||
        (a->pub = pub_from_binding(a->from, &a->msg[0].b[0])) == NULL ||
        (a->mdctx = EVP_MD_CTX_new()) == NULL)
        die(a->name, "building the public key");
    if ((a->hit = tb_verifier_new(0)) == NULL || (a->miss = tb_verifier_new(1)) == NULL)
        die(a->name, "tb_verifier_new");
}

/* The benchmark must not be measuring a verifier that accepts anything. */
static void sanity_check(struct alg *a)
{
    static char bad[TB_MAX_HEADER + 1];
    struct tb_verifier *v = tb_verifier_new(4);
    const struct tb_slice *sig = &a->msg[0].b[0].sig;
    uint8_t badsig[1024];
    size_t len = a->hdr_len[0];
    int rc;

    if (v == NULL || sig->len > sizeof(badsig))
        die(a->name, "sanity setup");
    /* raw: flip a bit of the last signature byte */
    memcpy(badsig, sig->p, sig->len);
    badsig[sig->len - 1] ^= 1;
    if (EVP_MD_CTX_reset(mdctx) != 1 ||
        EVP_DigestVerifyInit(mdctx, NULL, sha256, NULL, a->pub) != 1 ||
        EVP_DigestVerify(mdctx, badsig, sig->len, tbs, sizeof(tbs)) == 1)
        die(a->name, "sanity: raw OpenSSL did not reject a corrupted signature");
    EVP_MD_CTX_reset(mdctx); /* next init may use another key: see op_openssl_rebuild */
    memcpy(bad, a->hdr[0], len + 1);
    /* header: change the 5th character from the end, which encodes bits of the signature's
     * last bytes (the last 16 bits of the message are the empty extensions' length) */
    bad[len - 5] = bad[len - 5] == 'A' ? 'B' : 'A';
    rc =
        tb_verify_header(v, TB_VERSION_DRAFT, a->kp, bad, len, channel, sizeof(channel), &verified);
    if (rc != TB_ESIGNATURE)
        die(a->name, "sanity: libtb did not reject a corrupted header with TB_ESIGNATURE");
    tb_verifier_free(v);
}

/* PEM of key (private when priv, else public) in a malloc'd NUL-terminated string. */
static char *pem_of(EVP_PKEY *key, int priv, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    long n;

    if (bio == NULL ||
        (priv ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
              : PEM_write_bio_PUBKEY(bio, key)) != 1 ||
        (n = BIO_get_mem_data(bio, &data)) <= 0 || (out = malloc((size_t)n + 1)) == NULL)
        die("JWT ES256", "writing a PEM key");
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* Keys and tokens for d, e, f, bound to the P-256 bench key's TBID; priv signs them. */
static void setup_jwt(const struct alg *p256)
{
    const struct tb_slice *id = &p256->msg[0].b[0].id;
    size_t priv_len, pub_len, i;
    char *priv = pem_of(p256->priv[0], 1, &priv_len), *pub = pem_of(p256->priv[0], 0, &pub_len);
    char claims[160], err[256], *dot;

    if (tb_tbh(id->p, id->len, jb.tbh, sizeof(jb.tbh)) != TB_TBH_LEN ||
        tb_jwt_keys_parse_public(pub, pub_len, &jb.keys, err, sizeof(err)) != 0)
        die("JWT ES256", "tb_tbh / tb_jwt_keys_parse_public");
    jb.policy =
        (struct tb_jwt_policy){.algs = TB_JWT_ES256, .keys = jb.keys, .now = (int64_t)time(NULL)};
    for (i = 0; i < JWT_POOL + 1; i++) {
        char *t = NULL;
        snprintf(claims, sizeof(claims),
                 "{\"sub\":\"bench-user\",\"iss\":\"https://idp.example\",\"n\":%zu,"
                 "\"exp\":4102444800}",
                 i);
        if (tb_jwt_bind(claims, jb.tbh, TB_JWT_ES256, (const uint8_t *)priv, priv_len, NULL, &t) !=
            0)
            die("JWT ES256", "tb_jwt_bind");
        if (i < JWT_POOL) {
            jb.pool[i] = t;
            jb.pool_len[i] = strlen(t);
        } else {
            jb.same = t;
            jb.same_len = strlen(t);
        }
    }
    /* f: e's token with the first character of its signature changed (bits of R) */
    if ((jb.forged = strdup(jb.same)) == NULL || (dot = strrchr(jb.forged, '.')) == NULL)
        die("JWT ES256", "strdup");
    dot[1] = dot[1] == 'A' ? 'B' : 'A';
    jb.forged_len = jb.same_len;
    OPENSSL_clear_free(priv, priv_len + 1);
    free(pub);
}

static void free_jwt(void)
{
    size_t i;

    for (i = 0; i < JWT_POOL; i++)
        free(jb.pool[i]);
    free(jb.same);
    free(jb.forged);
    tb_jwt_keys_free(jb.keys);
}

static void free_alg(struct alg *a)
{
    tb_verifier_free(a->hit);
    tb_verifier_free(a->miss);
    EVP_PKEY_CTX_free(a->from);
    EVP_MD_CTX_free(a->mdctx);
    EVP_PKEY_free(a->pub);
    EVP_PKEY_free(a->priv[0]);
    EVP_PKEY_free(a->priv[1]);
}

/* --- statistics and output ------------------------------------------------------------------ */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;

    return (a > b) - (a < b);
}

static double median(const double *v, int n)
{
    double tmp[MAX_ROUNDS];

    memcpy(tmp, v, (size_t)n * sizeof(*v));
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double best(const double *v, int n)
{
    double m = v[0];
    int i;

    for (i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* Median over rounds of rate[num][r] / rate[den][r]. */
static double paired_ratio(const struct alg *a, enum meas num, enum meas den, int rounds)
{
    double r[MAX_ROUNDS];
    int i;

    for (i = 0; i < rounds; i++)
        r[i] = a->rate[num][i] / a->rate[den][i];
    return median(r, rounds);
}

/* Median over rounds of how many raw verifies (a, P-256) one JWT check m costs. */
static double jwt_cost(const struct alg *p256, enum jmeas m, int rounds)
{
    double r[MAX_ROUNDS];
    int i;

    for (i = 0; i < rounds; i++)
        r[i] = p256->rate[M_A][i] / jb.rate[m][i];
    return median(r, rounds);
}

static void print_jwt_table(const struct alg *p256, int rounds)
{
    int m;

    printf("\nJWT ES256: tb_jwt_check, one P-256 key from PEM, %zu-byte tokens bound to the P-256 "
           "TBID\n",
           jb.same_len);
    printf("d = %d valid tokens in turn (the cache holds %d: every call misses, libjwt runs)\n",
           JWT_POOL, TB_JWT_CACHE_ENTRIES);
    printf("e = one valid token (cache hit); f = e's token with its signature changed\n\n");
    printf("%-9s %-36s %12s %12s %10s\n", "alg", "measurement", "checks/s", "best/s", "us/check");
    for (m = 0; m < J_N; m++) {
        double med = median(jb.rate[m], rounds);
        printf("%-9s %-36s %12.0f %12.0f %10.2f\n", "ES256", jmeas_desc[m], med,
               best(jb.rate[m], rounds), 1e6 / med);
    }
    printf("\n%-9s %10s %10s %10s   %s\n", "alg", "d/a", "e/a", "f/a",
           "time of one check in raw P-256 verifies (a)");
    printf("%-9s %10.3f %10.3f %10.3f\n", "ES256", jwt_cost(p256, J_D, rounds),
           jwt_cost(p256, J_E, rounds), jwt_cost(p256, J_F, rounds));
}

static void print_table(struct alg *algs, int nalg, double seconds, int rounds)
{
    int i, m;

    printf("libtb verify benchmark (%s, libtb %s)\n", OpenSSL_version(OPENSSL_VERSION),
           TB_VERSION_STRING);
    printf("draft Token Binding, one provided binding, 12-byte tls_unique (26 signed bytes)\n");
    printf("%d rounds x %.3f s per measurement, interleaved; rates are the median round\n", rounds,
           seconds / rounds);
    printf("a' = EVP_PKEY_fromdata (reused EVP_PKEY_CTX) + EVP_MD_CTX_reset + DigestVerify\n");
    printf("c  = verifier of capacity 1, 2 keys/headers alternated: every call misses\n\n");
    printf("%-9s %-36s %12s %12s %10s\n", "alg", "measurement", "verifies/s", "best/s",
           "us/verify");
    for (i = 0; i < nalg; i++) {
        struct alg *a = &algs[i];
        for (m = 0; m < M_N; m++) {
            double med = median(a->rate[m], rounds);
            printf("%-9s %-36s %12.0f %12.0f %10.2f\n", a->name, meas_desc[m], med,
                   best(a->rate[m], rounds), 1e6 / med);
        }
    }
    printf("\n%-9s %10s %10s   %s\n", "alg", "b/a", "c/a'", "b/a >= 0.95 (target)");
    for (i = 0; i < nalg; i++) {
        double ba = paired_ratio(&algs[i], M_B, M_A, rounds);
        printf("%-9s %10.3f %10.3f   %s\n", algs[i].name, ba,
               paired_ratio(&algs[i], M_C, M_A2, rounds), ba >= TARGET_RATIO ? "yes" : "NO");
    }
    print_jwt_table(&algs[0], rounds);
}

static void print_json(struct alg *algs, int nalg, double seconds, int rounds)
{
    int i, m;

    printf("{\"openssl\":\"%s\",\"libtb\":\"%s\",\"version\":\"draft\",\"seconds\":%g,"
           "\"rounds\":%d,\"a_prime_method\":\"EVP_PKEY_fromdata\","
           "\"c_method\":\"verifier capacity 1, 2 headers alternated\",\"target_b_over_a\":%g,"
           "\"algs\":{",
           OpenSSL_version(OPENSSL_VERSION), TB_VERSION_STRING, seconds, rounds, TARGET_RATIO);
    for (i = 0; i < nalg; i++) {
        struct alg *a = &algs[i];
        double ba = paired_ratio(a, M_B, M_A, rounds);
        printf("%s\"%s\":{", i ? "," : "", a->json);
        for (m = 0; m < M_N; m++)
            printf("\"%s\":{\"median\":%.1f,\"best\":%.1f,\"iterations\":%llu},", meas_key[m],
                   median(a->rate[m], rounds), best(a->rate[m], rounds),
                   (unsigned long long)a->iters[m]);
        printf("\"b_over_a\":%.4f,\"c_over_a_prime\":%.4f,\"target_met\":%s}", ba,
               paired_ratio(a, M_C, M_A2, rounds), ba >= TARGET_RATIO ? "true" : "false");
    }
    printf("},\"jwt_es256\":{\"token_bytes\":%zu,\"pool\":%d,", jb.same_len, JWT_POOL);
    for (m = 0; m < J_N; m++)
        printf("\"%s\":{\"median\":%.1f,\"best\":%.1f,\"iterations\":%llu,"
               "\"cost_in_a\":%.4f},",
               jmeas_key[m], median(jb.rate[m], rounds), best(jb.rate[m], rounds),
               (unsigned long long)jb.iters[m], jwt_cost(&algs[0], (enum jmeas)m, rounds));
    printf("\"against\":\"p256.a\"}}\n");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-verify [--seconds N] [--rounds R] [--json]\n"
            "  --seconds N  wall time of each measurement (default 1)\n"
            "  --rounds R   interleaved rounds it is cut into (default 10, max %d)\n"
            "  --json       print one JSON object instead of the table\n",
            MAX_ROUNDS);
    exit(2);
}

int main(int argc, char **argv)
{
    static struct alg algs[] = {
        {.name = "P-256", .json = "p256", .kp = TB_KP_ECDSAP256},
        {.name = "RSA-2048", .json = "rsa2048", .kp = TB_KP_RSA2048_PKCS1},
    };
    const int nalg = (int)(sizeof(algs) / sizeof(algs[0]));
    double seconds = 1.0, slice;
    int rounds = 10, json = 0, i, r, k;
    char *end;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds > 0) || !isfinite(seconds))
                usage();
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = (int)strtol(argv[++i], &end, 10);
            if (*end != '\0' || rounds < 1 || rounds > MAX_ROUNDS)
                usage();
        } else {
            usage();
        }
    }
    slice = seconds / rounds;

    if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL || (mdctx = EVP_MD_CTX_new()) == NULL)
        die("setup", "EVP_MD_fetch / EVP_MD_CTX_new");
    memcpy(tbs, "token binding", 14); /* with its NUL */
    memcpy(tbs + 14, channel, sizeof(channel));
    for (i = 0; i < nalg; i++) {
        setup_alg(&algs[i]);
        sanity_check(&algs[i]);
    }
    setup_jwt(&algs[0]); /* algs[0] is P-256 */

    /* warm up every path (and fill the hit verifier's cache) before the first round */
    for (i = 0; i < nalg; i++) {
        for (k = 0; k < M_N; k++) {
            uint64_t ignored = 0;
            (void)run_for(ops[k], &algs[i], WARMUP_SECONDS, &ignored);
        }
    }
    for (k = 0; k < J_N; k++) {
        uint64_t ignored = 0;
        (void)run_for(jops[k], NULL, WARMUP_SECONDS, &ignored);
    }
    /* round r runs the nalg * M_N + J_N measurements starting at a rotating offset */
    for (r = 0; r < rounds; r++) {
        for (k = 0; k < nalg * M_N + J_N; k++) {
            int j = (k + r) % (nalg * M_N + J_N), ai = j / M_N, m = j % M_N;
            if (j >= nalg * M_N)
                jb.rate[j - nalg * M_N][r] = run_jwt((enum jmeas)(j - nalg * M_N), slice);
            else
                algs[ai].rate[m][r] = run_for(ops[m], &algs[ai], slice, &algs[ai].iters[m]);
        }
    }

    /* the cache behaved as labelled: b always hit, c always missed */
    for (i = 0; i < nalg; i++) {
        struct tb_verifier_stats hit, miss;
        tb_verifier_get_stats(algs[i].hit, &hit);
        tb_verifier_get_stats(algs[i].miss, &miss);
        if (hit.misses != 1 || miss.hits != 0 || miss.entries != 1)
            die(algs[i].name, "cache behaviour check (b: 1 miss, c: 0 hits)");
    }
    /* and the JWT cache: d always missed and ran libjwt, e always hit, f never reached libjwt */
    if (jb.seen[J_D].hits != 0 || jb.seen[J_D].decodes != jb.iters[J_D] ||
        jb.seen[J_E].misses != 0 || jb.seen[J_E].hits != jb.iters[J_E] ||
        jb.seen[J_F].decodes != 0 || jb.seen[J_F].rejected != jb.iters[J_F] ||
        jb.seen[J_F].inserts != 0)
        die("JWT ES256", "cache behaviour check (d: all misses, e: all hits, f: no libjwt)");

    if (json)
        print_json(algs, nalg, seconds, rounds);
    else
        print_table(algs, nalg, seconds, rounds);
    for (i = 0; i < nalg; i++)
        free_alg(&algs[i]);
    free_jwt();
    tb_jwt_cache_release();
    EVP_MD_CTX_free(mdctx);
    EVP_MD_free(sha256);
    return 0;
}
