/*
 * base64url (RFC 4648 section 5), as Token Binding uses it.
 *
 * Encoding never writes padding. Decoding accepts either no padding or exactly the correct
 * padding, and rejects everything else: characters outside the URL-safe alphabet (including
 * '+', '/' and whitespace), a length that no encoding can have, padding in the middle, and
 * non-zero bits in the last character beyond the encoded data (non-canonical input).
 */
#ifndef TB_BASE64URL_H
#define TB_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Characters needed to encode n bytes, without padding and without the terminating NUL. */
static inline size_t tb_base64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

/* An upper bound on the bytes decoded from n characters. */
static inline size_t tb_base64url_decoded_max(size_t n)
{
    return (n / 4) * 3 + 2;
}

/*
 * Encodes in[0..n) into out, NUL-terminated. Returns the number of characters written (without
 * the NUL), or TB_EINVAL if cap < tb_base64url_encoded_len(n) + 1.
 */
int tb_base64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/*
 * Decodes in[0..n) into out. Returns the number of bytes written, TB_EBASE64 on invalid input,
 * or TB_EINVAL if cap is too small for the decoded bytes.
 */
int tb_base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
