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
#include "tb/message.h"
#include "tb/tbh.h"

struct tbp_binding {
    int key_params; /* negotiated (enum tb_key_params), -1: this connection has no Token Binding */
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

/* Sets up b after the handshake. key_params -1 for a connection without Token Binding.
 * Returns 0, or -1 if the channel value cannot be read (the connection must be closed). */
int tbp_binding_init(struct tbp_binding *b, SSL *ssl, int key_params);
void tbp_binding_dispose(struct tbp_binding *b);

/*
 * Applies spec "Validation" to one request head. Returns 0 when the request may go on (b's
 * provided/referred/other/tbh then describe it, or are NULL / "" on a connection without Token
 * Binding),
 * or -1 with *reason set to a stable name: libtb's (tb_strerror) or "missing" (no header on a
 * Token Binding connection), "unexpected" (a header on a connection without), "multiple".
 */
int tbp_binding_check(struct tbp_binding *b, const struct tbp_http_head *h, const char **reason);

#endif
