/* Internal to libtb: shared between its modules, not installed, not for applications. */
#ifndef TB_INTERNAL_H
#define TB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tb/message.h"

/* Appends the wire form of b (type || id || sig<2> || ext<2>) to buf[*len..cap). */
int tb_binding_append(uint8_t *buf, size_t *len, size_t cap, const struct tb_binding *b);

/* The bytes a binding signs: draft "token binding\0" || channel; rfc type || key_params || EKM.
 * Returns their length (at most TB_SIGNED_MAX) or TB_EINVAL. */
#define TB_SIGNED_MAX (14 + TB_MAX_CHANNEL)
int tb_signed_bytes(enum tb_version version, uint8_t type, int key_params, const uint8_t *channel,
                    size_t channel_len, uint8_t *out);

/* --- JWT key sets (jwt_keys.c builds them, jwt.c uses them) ------------------------------- */
#include "tb/jwt.h"

#define TB_JWT_MAX_KEYS 64 /* keys in one set (PEM blocks or JWKS entries) */
#define TB_JWT_MAX_KID 255 /* bytes of a "kid" */

struct evp_pkey_ctx_st;
struct evp_mac_ctx_st;

struct tb_jwt_key {
    enum tb_jwt_alg alg; /* the one algorithm this key verifies */
    char *kid;           /* NUL-terminated, or NULL when the key has no id */
    uint8_t *bytes;      /* what libjwt is given: a NUL-terminated PEM public key, or a secret */
    size_t len;          /* bytes in bytes, without the PEM's NUL */
    /* Templates for our own check before libjwt's, built once at load and never changed after:
     * tb_jwt_check EVP_PKEY_CTX_dup's / EVP_MAC_CTX_dup's them per check (a dup only reads the
     * template, so threads may dup one concurrently) and never uses them directly. */
    struct evp_pkey_ctx_st *vctx; /* ES256 / RS256: EVP_PKEY_verify_init'd, SHA-256, padding */
    struct evp_mac_ctx_st *mac;   /* HS256: HMAC-SHA256 initialised with the secret */
};

/* 1 if kid is 1..TB_JWT_MAX_KID printable ASCII characters. */
int tb_jwt_kid_ok(const char *kid);

/* The algorithm an OpenSSL key can sign or verify for (EC P-256: TB_JWT_ES256, RSA of
 * 2048..8192 bits: TB_JWT_RS256), or TB_EINVAL with a one-line reason in err. */
struct evp_pkey_st;
int tb_jwt_pkey_alg(struct evp_pkey_st *pkey, char *err, size_t errlen);

struct tb_jwt_keys {
    /* unique for the process's life (never reused, even after a free): names the set in
     * tb_jwt_check's verified-token cache */
    uint64_t gen;
    unsigned algs;   /* union of key[i].alg */
    int secret;      /* 1: HMAC secrets (HS256), 0: public keys (ES256 / RS256) */
    int has_kids;    /* 1 if any key has a kid: a token's kid must then name one */
    size_t n;        /* 1..TB_JWT_MAX_KEYS */
    struct tb_jwt_key key[];
};

/* --- the verified-token cache of tb_jwt_check (jwt.c), per thread ------------------------- */

#define TB_JWT_CACHE_ENTRIES 256         /* tokens remembered per thread */
#define TB_JWT_CACHE_BYTES (1024 * 1024) /* and at most this many token bytes per thread */

/* The calling thread's counters (all zero if it never checked a token). For tests and benches. */
struct tb_jwt_cache_stats {
    uint64_t hits;      /* checks answered from the cache (claims still checked) */
    uint64_t misses;    /* checks that were not */
    uint64_t inserts;   /* tokens added after their signature verified twice */
    uint64_t evictions; /* entries dropped for room */
    uint64_t rejected;  /* signatures our own check refused (libjwt never called) */
    uint64_t decodes;   /* jwt_decode calls */
    size_t entries;     /* in the cache now */
    size_t bytes;       /* token bytes they stand for */
};
void tb_jwt_cache_get_stats(struct tb_jwt_cache_stats *out);

/* Frees the calling thread's cache and counters now (threads that exit have theirs freed). */
void tb_jwt_cache_release(void);

/* --- an intrusive LRU list (verify.c's key cache, jwt.c's token cache) --------------------- */

struct tb_lru_node {
    struct tb_lru_node *prev, *next;
};

struct tb_lru {
    struct tb_lru_node *head, *tail; /* most recent at head; both NULL when empty */
};

/* The entry of type `type` whose member `member` is node n. */
#define TB_LRU_ENTRY(n, type, member) ((type *)((char *)(n)-offsetof(type, member)))

static inline void tb_lru_unlink(struct tb_lru *l, struct tb_lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static inline void tb_lru_push_front(struct tb_lru *l, struct tb_lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (l->tail == NULL)
        l->tail = n;
}

/* n (in l) becomes the most recent. */
static inline void tb_lru_touch(struct tb_lru *l, struct tb_lru_node *n)
{
    if (l->head != n) {
        tb_lru_unlink(l, n);
        tb_lru_push_front(l, n);
    }
}

#endif
