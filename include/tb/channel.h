/*
 * Channel values from an OpenSSL connection: what Token Binding signatures are bound to.
 */
#ifndef TB_CHANNEL_H
#define TB_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_TLS_UNIQUE_LEN 12
#define TB_EKM_LEN 32
#define TB_EKM_LABEL "EXPORTER-Token-Binding"

/*
 * tls_unique (RFC 5929) of a finished TLS 1.2 handshake: the first Finished message, i.e. the
 * client's for a full handshake and the server's for a resumed one, from either side. Writes
 * TB_TLS_UNIQUE_LEN bytes into out and returns that count; TB_ECHANNEL for TLS 1.3 or when the
 * handshake has not finished; TB_EINVAL if cap is too small.
 */
int tb_channel_tls_unique(SSL *ssl, uint8_t *out, size_t cap);

/* RFC 8471 EKM: exporter label TB_EKM_LABEL, no context, TB_EKM_LEN bytes. Returns the count. */
int tb_channel_ekm(SSL *ssl, uint8_t *out, size_t cap);

/* 1 if the connection negotiated Extended Master Secret (RFC 7627), else 0. */
int tb_channel_ems(SSL *ssl);

#ifdef __cplusplus
}
#endif
#endif
