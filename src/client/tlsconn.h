/*
 * tlsconn: one client TLS connection over TCP, with the properties Token Binding needs.
 *
 * The context (tbc_tls_ctx_new) is TLS 1.2 or 1.3, offers Extended Master Secret (RFC 7627; a
 * draft Token Binding server selects a TB protocol only when it was offered, and caps the
 * connection at TLS 1.2 so that tls_unique exists), refuses renegotiation, and verifies the
 * server by default: the system trust store (or --cacert) and the host name (or IP address) of
 * the URL. With tb_ext it also carries libtb's token_binding extension (RFC 8472) for the
 * connections that offer it (tbc_tls_connect's tb_offer); the server's answer is checked as it
 * arrives (an answer the client must reject aborts the handshake) and again after it (Token
 * Binding only on TLS 1.2 with EMS and secure renegotiation). A plain FIN from the server counts as
 * the end of the stream: message framing (Content-Length, chunked, HTTP/2 END_STREAM) is what
 * detects a truncated response.
 *
 * I/O is non-blocking underneath. tbc_tls_read / tbc_tls_write wait with poll() up to an
 * absolute deadline (tbc_now_ms() clock; 0 means no deadline) for the blocking style of
 * HTTP/1.1; tbc_tls_read_some / tbc_tls_write_some never wait, for the HTTP/2 event loop, which
 * waits with tbc_tls_wait. Functions return 0 (or a count) or a negative TBC_E* code with a
 * one-line reason in c->err.
 */
#ifndef TBC_TLSCONN_H
#define TBC_TLSCONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tb/channel.h"
#include "tb/tlsext.h"
#include "url.h"

struct tbc_tls_ctx_opts {
    int insecure;       /* -k: no certificate or name check */
    const char *cafile; /* --cacert: trust anchors instead of the system store */
    int tb_ext;         /* register the token_binding extension (--tb-version rfc) */
};

/*
 * A client context. Returns it, or NULL with *rc = TBC_ECACERT (the CA file cannot be loaded)
 * or TBC_EINTERNAL and a reason in err. Free with SSL_CTX_free.
 */
SSL_CTX *tbc_tls_ctx_new(const struct tbc_tls_ctx_opts *o, int *rc, char *err, size_t errlen);

/* One connection. Embedded; tbc_tls_connect fills it, tbc_tls_close empties it. */
struct tbc_tls {
    int fd;   /* -1 when closed */
    SSL *ssl; /* NULL when closed */
    int eof;  /* the server ended the stream (close_notify or FIN) */
    int want; /* after a _some call returned 0: POLLIN or POLLOUT, what to wait for */
    /* what the handshake gave (after tbc_tls_connect) */
    char peer[64];      /* "127.0.0.1:8443", "[::1]:8443" */
    char alpn[256];     /* selected ALPN protocol, "" when none */
    int version;        /* TLS1_2_VERSION, TLS1_3_VERSION */
    int ems;            /* Extended Master Secret negotiated */
    int has_tls_unique; /* TLS 1.2: tls_unique is defined */
    uint8_t tls_unique[12];
    int tb_rfc;                     /* the server answered the token_binding extension */
    struct tb_ext_params tb_answer; /* its answer (version, one key parameters) when tb_rfc */
    int has_ekm;                    /* tb_rfc: the EKM below is the channel value */
    uint8_t ekm[TB_EKM_LEN];
    char err[512];
};

/* Milliseconds from a monotonic clock: the time base of every deadline. */
long long tbc_now_ms(void);

/*
 * Resolves u->host, connects to its port (each address in turn until one accepts) and runs the
 * handshake, offering alpn (wire format: length-prefixed ids; NULL/0: no ALPN) and, when
 * tb_offer is not NULL (ctx made with tb_ext), the token_binding extension; c->tb_rfc then says
 * whether the server answered it (with c->tb_answer and c->ekm). The TCP connect and the
 * handshake end by connect_deadline. Returns 0, or TBC_ERESOLVE, TBC_ECONNECT, TBC_ETIMEOUT,
 * TBC_ECERT (verification failed: c->err says why), TBC_ETLS (also a Token Binding answer on a
 * connection that cannot carry it), TBC_ENOMEM. On failure the connection is closed.
 */
int tbc_tls_connect(struct tbc_tls *c, SSL_CTX *ctx, const struct tbc_url *u,
                    const unsigned char *alpn, size_t alpn_len,
                    const struct tb_ext_params *tb_offer, long long connect_deadline);

/* Sends close_notify (without waiting for the server's) and frees everything. Idempotent on a
 * zeroed or closed connection (fd -1). */
void tbc_tls_close(struct tbc_tls *c);

/* Reads up to cap bytes, waiting until deadline. Returns the count, 0 at the end of the stream,
 * TBC_ETIMEOUT or TBC_ERECV. */
int tbc_tls_read(struct tbc_tls *c, void *buf, size_t cap, long long deadline);

/* Writes all len bytes, waiting until deadline. 0, TBC_ETIMEOUT or TBC_ESEND. */
int tbc_tls_write(struct tbc_tls *c, const void *buf, size_t len, long long deadline);

/* Non-blocking read: the count, 0 when it would block (c->want set) or at the end of the stream
 * (c->eof set), or TBC_ERECV. */
int tbc_tls_read_some(struct tbc_tls *c, void *buf, size_t cap);

/* Non-blocking write (partial writes allowed): the count, 0 when it would block (c->want set),
 * or TBC_ESEND. The same buffer must be passed again after a 0 (OpenSSL's retry rule, relaxed
 * by SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER to "the same bytes"). */
int tbc_tls_write_some(struct tbc_tls *c, const void *buf, size_t len);

/* Waits until the socket is ready for events (POLLIN | POLLOUT) or deadline (0: none).
 * Returns 0 (ready or interrupted), or TBC_ETIMEOUT. */
int tbc_tls_wait(struct tbc_tls *c, int events, long long deadline);

#endif
