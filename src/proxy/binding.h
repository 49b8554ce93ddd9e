/*
 * Token Binding state of one client connection: what was negotiated, the channel value
 * (tls_unique) captured once after the handshake, and the last header value that verified with
 * the IDs it yielded. A request whose header equals the last verified one (the common case: a
 * browser sends the same value on every request of a connection) costs one comparison. The tbh
 * of the provided ID, which bound cookies and JWTs are checked against, is computed once when a
 * new header verifies and kept with it.
 */
#ifndef TBP_BINDING_H
#define TBP_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "http.h"
#include "tls.h"
#include "tb/message.h"
#include "tb/tbh.h"

struct tbp_binding {
    int key_params; /* negotiated (enum tb_key_params), -1: this connection has no Token Binding */
    int version;    /* enum tb_version: which codec, channel value and header name */
    uint8_t major, minor; /* rfc: the negotiated extension version (for Sec-Token-Binding-Context) */
    unsigned listener_versions; /* TBP_TLS_TB_* of the listener (a connection without a binding
                                   refuses the headers of these versions) */
    uint8_t channel[TB_MAX_CHANNEL];
    size_t channel_len;
    char *value; /* last verified header value (heap), NULL before the first */
    size_t value_len;
    char *provided; /* base64url IDs of the last verified header (heap); NULL when absent */
    char *referred;
    char *other;              /* Sec-Other-Token-Binding-ID value ("09.<id>, ..."), or NULL */
    char tbh[TB_TBH_LEN + 1]; /* tbh of the provided ID (spec "Bound tokens"): bound cookies and
                                 JWTs are checked against it; "" while provided is NULL */
    uint64_t verifies, cache_hits; /* tbp_binding_check calls that ran tb_verify_header, and
                                      that matched the last verified value instead */
    uint64_t verify_ns;            /* the last tb_verify_header call: its CLOCK_MONOTONIC time */
};

/* Sets up b after the handshake from what tls.c negotiated (info->tb_key_params -1: a
 * connection without Token Binding): the channel value is tls_unique (draft) or the EKM (rfc).
 * Returns 0, or -1 if the channel value cannot be read (the connection must be closed). */
int tbp_binding_init(struct tbp_binding *b, SSL *ssl, const struct tbp_tls_info *info);

/* The same with a given channel value instead of one read from a connection (tests: the spec's
 * vectors through the proxy's path). -1 if channel_len exceeds TB_MAX_CHANNEL. */
int tbp_binding_init_channel(struct tbp_binding *b, const struct tbp_tls_info *info,
                             const uint8_t *channel, size_t channel_len);
void tbp_binding_dispose(struct tbp_binding *b);

/* The request header this connection's version uses: "token-binding" (draft) or
 * "sec-token-binding" (rfc), lower case. */
const char *tbp_binding_header(const struct tbp_binding *b);

/*
 * Sec-Token-Binding-Context for the origin (rfc connections; draft-ietf-tokbind-ttrp):
 * base64url of major, minor, key_parameters and the EKM (3 + 32 bytes), NUL-terminated into out.
 * Returns the length, or -1 (no rfc binding on this connection, or cap too small).
 */
int tbp_binding_context(const struct tbp_binding *b, char *out, size_t cap);

/*
 * Applies spec "Validation" to one request head. Returns 0 when the request may go on (b's
 * provided/referred/other/tbh then describe it, or are NULL / "" on a connection without Token
 * Binding),
 * or -1 with *reason set to a stable name: libtb's (tb_strerror) or "missing" (no header on a
 * Token Binding connection), "unexpected" (a header on a connection without), "multiple".
 */
int tbp_binding_check(struct tbp_binding *b, const struct tbp_http_head *h, const char **reason);

#endif
