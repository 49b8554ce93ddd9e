/*
 * Token Binding ID hashes and forwarded-ID items.
 */
#ifndef TB_TBH_H
#define TB_TBH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_TBH_LEN 43 /* base64url of a SHA-256 digest, no padding */

/* tbh = base64url(SHA-256(id)) into out (cap >= TB_TBH_LEN + 1). Returns TB_TBH_LEN. */
int tb_tbh(const uint8_t *id, size_t len, char *out, size_t cap);

/*
 * One Sec-Other-Token-Binding-ID item: the type as two lower-case hex digits, '.', then
 * base64url(id), NUL-terminated. Returns its length or TB_EINVAL if cap is too small.
 */
int tb_other_id_item(uint8_t type, const uint8_t *id, size_t len, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
