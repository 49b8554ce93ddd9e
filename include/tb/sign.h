/*
 * The client side: keys, Token Binding IDs, signatures and message building.
 *
 * Used by tbclient, tbbench and the tests. Keys are OpenSSL EVP_PKEYs; the caller owns (and
 * frees with EVP_PKEY_free) every key these functions return.
 */
#ifndef TB_SIGN_H
#define TB_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tb/message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Generates a key for key_params (P-256, or RSA-2048 with e = 65537). */
int tb_key_generate(int key_params, EVP_PKEY **out);
/* Loads a private key from PEM text (PKCS#8 or traditional). TB_EINVAL if it does not parse. */
int tb_key_load_pem(const char *pem, size_t len, EVP_PKEY **out);
/* Writes key as PKCS#8 PEM into out (NUL-terminated). Returns the length, or TB_EINVAL. */
int tb_key_to_pem(EVP_PKEY *key, char *out, size_t cap);

/*
 * Encodes the TBID of key for version and key_params (draft: TokenBindingID' without the type
 * byte; rfc: TokenBindingID). Returns its length, TB_EKEYPARAMS if the key does not fit
 * key_params, TB_EINVAL if cap is too small.
 */
int tb_id_encode(enum tb_version version, int key_params, EVP_PKEY *key, uint8_t *out, size_t cap);

/*
 * Signs the bytes a binding of `type` signs over the channel value. Returns the signature length
 * (draft ECDSA: DER; rfc ECDSA: R||S; RSA: 256 bytes), or a negative code.
 */
int tb_sign(enum tb_version version, uint8_t type, int key_params, EVP_PKEY *key,
            const uint8_t *channel, size_t channel_len, uint8_t *sig, size_t cap);

/* Builds a TokenBindingMessage binding by binding. Embedded: tb_builder_init, no dispose. */
struct tb_builder {
    enum tb_version version;
    size_t len; /* bytes of bindings in buf, after the 2-byte length prefix */
    uint8_t buf[TB_MAX_MESSAGE];
};

void tb_builder_init(struct tb_builder *b, enum tb_version version);
/* Appends a binding from its parts as given (id, sig, ext used as is): for tests and relays. */
int tb_builder_add(struct tb_builder *b, const struct tb_binding *binding);
/* Appends a binding of `type` for key, signed over the channel value. */
int tb_builder_add_signed(struct tb_builder *b, uint8_t type, int key_params, EVP_PKEY *key,
                          const uint8_t *channel, size_t channel_len);
/* The message bytes (with length prefix): a pointer into b and its length. */
const uint8_t *tb_builder_bytes(struct tb_builder *b, size_t *len);
/* The header value (base64url of the message) into out, NUL-terminated. Returns its length. */
int tb_builder_header(struct tb_builder *b, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
