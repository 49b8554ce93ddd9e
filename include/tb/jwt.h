/*
 * JWT binding (spec "Bound tokens", RFC 8471 section 7 style): a JWT bound to a Token Binding ID
 * carries "cnf": {"tbh": "<base64url(SHA-256(TBID))>"}; a server accepts it only from the client
 * that proves that TBID.
 *
 * Built on libjwt 1.10, which is unsafe when called naively. This module never passes libjwt a
 * NULL key, chooses the key from its own configuration (never from the token), requires the
 * token's algorithm to be allowlisted AND to fit the key's type before verifying, re-checks
 * jwt_get_alg afterwards, checks exp / nbf / iat itself, reads cnf with jansson and compares tbh
 * with CRYPTO_memcmp. Public keys and HMAC secrets are different key sets (loaded by different
 * functions), so a public key's PEM bytes can never be used as an HMAC secret.
 *
 * Cost. libjwt re-reads its PEM key on every call (~10 signature verifies on OpenSSL 3), so
 * tb_jwt_check first verifies the signature itself with keys prepared at load, and a token that
 * fails there never reaches libjwt; a token that passes is verified by libjwt again. Tokens that
 * passed both are remembered per thread (TB_JWT_CACHE_ENTRIES-sized LRU, freed at thread exit),
 * so a client's repeated token costs a SHA-256 and the claim checks. Measured by
 * `make bench-verify` (bench/README.md): a forged ES256 token ~1 raw P-256 verify, a repeated
 * valid one ~0.01, a valid one seen for the first time ~10 (our verify + libjwt's decode).
 *
 * Key sets are immutable after loading and may be shared by threads.
 */
#ifndef TB_JWT_H
#define TB_JWT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_JWT_MAX_TOKEN 16384 /* bytes of a compact token: tb_jwt_check refuses longer ones */

/* Supported algorithms, as bits for allowlists. */
enum tb_jwt_alg {
    TB_JWT_ES256 = 1, /* ECDSA P-256 SHA-256: public keys */
    TB_JWT_RS256 = 2, /* RSASSA-PKCS1-v1_5 SHA-256, RSA >= 2048 bits: public keys */
    TB_JWT_HS256 = 4, /* HMAC SHA-256: secrets only */
};

/* "ES256", "RS256", "HS256"; NULL for anything else. */
const char *tb_jwt_alg_name(enum tb_jwt_alg alg);
/* The alg for a name (case-sensitive, as in JOSE), or TB_EALG ("none" included). */
int tb_jwt_alg_parse(const char *name);

struct tb_jwt_keys; /* opaque: a set of verification keys of one kind */

/*
 * Public verification keys from text: PEM (one or more "PUBLIC KEY" blocks or certificates) or a
 * JWKS document ({"keys": [...]} with "kty" "EC" (crv P-256) or "RSA" (>= 2048 bits); "kid" kept
 * when present; other keys, and any "oct" key, are an error). Returns 0 with a new set in *out, or
 * TB_EINVAL with a one-line message in err, TB_ENOMEM.
 */
int tb_jwt_keys_parse_public(const char *text, size_t len, struct tb_jwt_keys **out, char *err,
                             size_t errlen);
/* An HMAC secret (raw bytes, at least 32). */
int tb_jwt_keys_parse_secret(const uint8_t *secret, size_t len, struct tb_jwt_keys **out,
                             char *err, size_t errlen);
/* The same from files (at most 1 MiB); messages also name the path. A secret file's trailing
 * newline is not part of the secret. */
int tb_jwt_keys_load_public(const char *path, struct tb_jwt_keys **out, char *err, size_t errlen);
int tb_jwt_keys_load_secret(const char *path, struct tb_jwt_keys **out, char *err, size_t errlen);
void tb_jwt_keys_free(struct tb_jwt_keys *keys);
/* The algorithms these keys can verify (bits of enum tb_jwt_alg). */
unsigned tb_jwt_keys_algs(const struct tb_jwt_keys *keys);

/*
 * Signs claims_json (a JSON object) with cnf.tbh set to tbh (TB_TBH_LEN characters; other cnf
 * members are kept, an existing tbh replaced). key is a PEM private key (ES256: P-256, RS256:
 * RSA >= 2048) or, for HS256, the secret bytes (>= 32). kid, when not NULL, goes in the header.
 * Returns 0 with a new NUL-terminated token in *out (free with free()), or TB_EINVAL (bad JSON,
 * key that does not fit alg, encrypted PEM, a token over TB_JWT_MAX_TOKEN), TB_ECRYPTO, TB_ENOMEM;
 * *out is NULL on failure.
 */
int tb_jwt_bind(const char *claims_json, const char *tbh, enum tb_jwt_alg alg, const uint8_t *key,
                size_t key_len, const char *kid, char **out);

struct tb_jwt_policy {
    unsigned algs;                  /* allowed algorithms (bits of enum tb_jwt_alg), not 0 */
    const struct tb_jwt_keys *keys; /* not NULL */
    const char *issuer;             /* required "iss"; NULL: not checked */
    const char *audience;           /* required in "aud" (string or array); NULL: not checked */
    unsigned leeway_s;              /* clock skew allowed on exp / nbf / iat */
    int64_t now;                    /* seconds since the epoch; 0: time(NULL) */
};

/* What a valid token said. */
struct tb_jwt_result {
    char sub[256]; /* "sub", printable ASCII only, "" when absent (longer: TB_ECLAIM) */
    int64_t exp;
};

/*
 * Verifies token (len bytes, compact serialization) under policy p and requires cnf.tbh == tbh
 * (TB_TBH_LEN characters, not NULL). "exp" is required. Returns 0 with *res filled, or:
 * TB_EPARSE (not a JWT, bad JSON, oversized: > 16 KiB), TB_EALG (alg not allowed, "none", or not
 * one these keys can verify), TB_EKEYID (a kid no key has), TB_ESIGNATURE, TB_EEXPIRED,
 * TB_ENOTYET, TB_ECLAIM (iss, aud, sub, or a claim of the wrong type), TB_EUNBOUND (no cnf.tbh),
 * TB_EMISMATCH (tbh differs), TB_EINVAL, TB_ENOMEM.
 * Key choice: when the set has key ids (a JWKS with "kid"s), a token's "kid" must name one of them
 * (else TB_EKEYID; TB_EALG if that key is for another algorithm); a token without kid, or a set
 * without ids (PEM, secret), tries each key of the token's algorithm. Keys in the token's header
 * ("jwk", "jku", "x5c") are never used; a "crit" header, a "typ" other than JWT, padding or
 * non-canonical base64url are TB_EPARSE. res may be NULL; on failure *res is zeroed.
 * Thread-safe; each thread has its own cache of tokens whose signature verified under a given key
 * set (the cache never answers for another set, even one loaded from the same file or allocated
 * at a freed set's address). A cached token is still checked against this call's p->algs and
 * every claim against p, tbh and now: the verdict is always the one an uncached check would give.
 * A key set may be freed once no call is using it; its entries are then never used again and
 * age out of the caches.
 */
int tb_jwt_check(const char *token, size_t len, const struct tb_jwt_policy *p, const char *tbh,
                 struct tb_jwt_result *res);

#ifdef __cplusplus
}
#endif
#endif
