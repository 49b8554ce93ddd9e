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

#endif
