/*
 * Signature verification with a per-thread key cache.
 *
 * A tb_verifier owns what repeated verification can reuse: a pre-fetched SHA-256, one EVP_MD_CTX
 * and a bounded LRU cache of public keys keyed by (version, TBID bytes). A cached entry holds the
 * EVP_PKEY and an EVP_PKEY_CTX already initialised for verification with the right padding, so a
 * returning key costs one hash lookup. A verifier is not thread-safe: use one per thread, or
 * tb_verifier_thread(), which gives each thread its own.
 */
#ifndef TB_VERIFY_H
#define TB_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "tb/message.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_KEY_CACHE_DEFAULT 1024
#define TB_KEY_CACHE_MAX (1u << 24) /* larger capacities are clamped to this */

struct tb_verifier;

struct tb_verifier_stats {
    uint64_t hits;      /* key found in the cache */
    uint64_t misses;    /* key built (EVP_PKEY construction) */
    uint64_t evictions; /* least recently used key dropped to make room */
    size_t entries;     /* keys held now */
};

/* A verifier with room for `capacity` keys (0: TB_KEY_CACHE_DEFAULT). NULL on allocation failure.
 */
struct tb_verifier *tb_verifier_new(size_t capacity);
/* Frees v and its cached keys. tb_verifier_free(NULL) is a no-op. */
void tb_verifier_free(struct tb_verifier *v);
/*
 * This thread's verifier, created on first use with the default capacity and freed when the
 * thread exits (or by tb_verifier_thread_release()). NULL on allocation failure.
 */
struct tb_verifier *tb_verifier_thread(void);
void tb_verifier_thread_release(void);
void tb_verifier_get_stats(const struct tb_verifier *v, struct tb_verifier_stats *out);

/*
 * Verifies one binding's signature over the channel value (draft: tls_unique, rfc: EKM).
 * b must come from tb_message_parse (the cache is keyed by b->id and trusts that the key
 * fields were parsed from it).
 * Returns 0 if it verifies, TB_ESIGNATURE if it does not (or the key is invalid, e.g. a point
 * off the curve), TB_EUNSUPPORTED for an unsupported key, TB_ENOMEM / TB_ECRYPTO on failure.
 */
int tb_verify_binding(struct tb_verifier *v, enum tb_version version, const struct tb_binding *b,
                      const uint8_t *channel, size_t channel_len);

/* A verified header: the decoded bytes and what was found in them. Do not copy by value: the
 * slices in msg and the pointers in roles point into this struct. */
struct tb_verified {
    uint8_t buf[TB_MAX_MESSAGE];
    size_t len;
    struct tb_message msg;
    struct tb_roles roles;
};

/*
 * The whole server-side check of one header value (spec "Validation" 1-5): size bound, base64url
 * decode, parse, validate against `negotiated` key parameters, verify every signature of the
 * provided, referred and supported other bindings over the channel value. Returns 0 and fills
 * *out when the header is acceptable; otherwise the first error found (a TB_E* code, see
 * tb_strerror for the reason names).
 */
int tb_verify_header(struct tb_verifier *v, enum tb_version version, int negotiated,
                     const char *value, size_t value_len, const uint8_t *channel,
                     size_t channel_len, struct tb_verified *out);

#ifdef __cplusplus
}
#endif
#endif
