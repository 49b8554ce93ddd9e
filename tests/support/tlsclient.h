/*
 * Test support: a blocking TLS + HTTP/1.1 client for driving tbproxy, on OpenSSL and libtb.
 *
 * tbt_tls_connect() connects to 127.0.0.1:port and completes the handshake with the options the
 * Token Binding tests need (ALPN list, Extended Master Secret on or off, highest TLS version, a
 * session to resume, a client certificate; the server certificate is never verified). Afterwards
 * the connection says what was negotiated: version, ALPN id, whether the session was resumed, EMS,
 * and tls_unique (TLS 1.2 only) as tb_channel_tls_unique gives it, i.e. the first Finished of the
 * handshake. With opts.tb_ext the ClientHello offers the RFC 8472 token_binding extension
 * (libtb's client glue, tb/tlsext.h) and the connection says what the server answered, and its
 * EKM (RFC 8471, tb_channel_ekm), which rfc bindings sign.
 *
 * Reading is buffered on the connection, so pipelined responses are read one after the other
 * with tbt_tls_read_response(). Every read waits at most the connection's timeout (10 s unless
 * set, through SO_RCVTIMEO), every response is bounded (header section and body caps), so a
 * stuck or hostile server fails a test instead of hanging it.
 *
 * tbt_tb_header() builds a Token-Binding header value (draft version): a provided binding and
 * optionally a referred one, signed over a channel value (normally the connection's tls_unique);
 * tbt_tb_header_v() the same for either version (rfc: a Sec-Token-Binding value, normally over
 * the connection's EKM).
 *
 * Functions return 0 (or a positive count) on success and -1 on failure with a one-line reason
 * in the connection's `err` (or the caller's buffer); none of them calls Criterion. The first
 * connect makes the process ignore SIGPIPE (writes to a closed connection must fail, not kill).
 */
#ifndef TBT_TLSCLIENT_H
#define TBT_TLSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tb/channel.h"
#include "tb/message.h"
#include "tb/tlsext.h"

#define TBT_TLS_TIMEOUT_MS 10000             /* default per-operation timeout */
#define TBT_HTTP_MAX_HEAD (64 * 1024)        /* status line + header section of a response */
#define TBT_HTTP_MAX_HEADERS 128             /* header fields of a response */
#define TBT_HTTP_DEFAULT_MAX_BODY (8u << 20) /* body cap when the caller gives 0 */

struct tbt_tls_opts {
    const char *alpn;    /* comma-separated ids ("http/1.1_tb_p256,http/1.1"); NULL: no ALPN */
    int no_ems;          /* 1: do not offer Extended Master Secret */
    int max_version;     /* TLS1_2_VERSION, TLS1_3_VERSION; 0: the library's highest */
    SSL_SESSION *resume; /* a session to offer for resumption (borrowed), or NULL */
    int timeout_ms;      /* connect, handshake and each read/write; 0: TBT_TLS_TIMEOUT_MS */
    X509 *cert;          /* a client certificate to present when asked (borrowed), or NULL */
    EVP_PKEY *key;       /* its private key (borrowed); set together with cert */
    const struct tb_ext_params *tb_ext; /* the token_binding extension to offer (version and key
                                           parameters, copied), or NULL: none */
};

/* One client connection. Embedded; tbt_tls_connect fills it, tbt_tls_close empties it. */
struct tbt_tls {
    int fd; /* -1 when closed */
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_ms;
    /* after the handshake */
    int version;   /* TLS1_2_VERSION, TLS1_3_VERSION */
    char alpn[64]; /* the selected ALPN id, "" when none */
    int reused;    /* the session was resumed */
    int ems;       /* Extended Master Secret negotiated */
    int has_tls_unique;
    uint8_t tls_unique[TB_TLS_UNIQUE_LEN]; /* valid when has_tls_unique (TLS 1.2) */
    int reneg; /* secure renegotiation (renegotiation_info) negotiated */
    int has_ekm;
    uint8_t ekm[TB_EKM_LEN]; /* RFC 8471 EKM, valid when has_ekm (always after a handshake) */
    int tb_rfc_result;       /* with opts.tb_ext: tb_ext_client_result (0: rfc Token Binding on;
                                TB_EUNSUPPORTED: not answered; TB_EPARSE: answered where it must not) */
    int tb_rfc;              /* tb_rfc_result == 0 */
    struct tb_ext_params tb_answer; /* the server's answer when tb_rfc */
    /* reading */
    unsigned char *rbuf; /* received, not yet consumed bytes */
    size_t rlen, rcap;
    int eof;       /* the server closed (close_notify, FIN or reset) */
    char err[512]; /* the reason of the last failure */
};

/* One HTTP/1.1 response, read whole. Embedded; free its memory with tbt_http_response_dispose. */
struct tbt_http_response {
    int status; /* 100..599 */
    int minor;  /* HTTP/1.<minor> */
    char *head; /* the status line and header section as received, NUL-terminated */
    size_t n_headers;
    struct {
        char *name;  /* points into a private copy of head, NUL-terminated */
        char *value; /* trimmed of surrounding whitespace */
    } headers[TBT_HTTP_MAX_HEADERS];
    char *fields;        /* the private copy the names and values point into */
    unsigned char *body; /* NUL-terminated (not counted in body_len); never NULL after a read */
    size_t body_len;
    int chunked;     /* the body came with Transfer-Encoding: chunked */
    int until_close; /* the body was delimited by the server closing */
};

/*
 * Connects to 127.0.0.1:port and completes the TLS handshake. Returns 0, or -1 with c->err
 * filled (the connection is then closed; tbt_tls_close is still safe to call).
 */
int tbt_tls_connect(struct tbt_tls *c, uint16_t port, const struct tbt_tls_opts *opts);

/* "h1,h2" → ALPN wire format in out. Returns its length, or -1 if an id is empty or too long. */
int tbt_alpn_wire(const char *list, unsigned char *out, size_t cap);

/*
 * Sends close_notify when the connection is still healthy (an SSL freed without it makes its
 * session non-resumable), frees everything and closes the socket. Safe on a closed or zeroed
 * connection.
 */
void tbt_tls_close(struct tbt_tls *c);

/* The connection's session, for a later tbt_tls_opts.resume; the caller frees it. */
SSL_SESSION *tbt_tls_session(struct tbt_tls *c);

/* Sends all of buf. Returns 0, or -1 (c->err) on error or timeout. */
int tbt_tls_send(struct tbt_tls *c, const void *buf, size_t len);
int tbt_tls_send_str(struct tbt_tls *c, const char *s);

/*
 * Reads one response (after a HEAD request pass head_request = 1: no body). The body is
 * delimited by Content-Length, chunked coding (trailers read and dropped) or the server closing;
 * 1xx responses are skipped. max_body caps the body (0: TBT_HTTP_DEFAULT_MAX_BODY). Returns 0, or
 * -1 (c->err) on timeout, a framing error, a cap exceeded or a close before the response ended;
 * r is disposed of and zeroed first, and is safe to dispose of after a failure.
 */
int tbt_tls_read_response(struct tbt_tls *c, struct tbt_http_response *r, int head_request,
                          size_t max_body);

/*
 * Whether the server has closed the connection, waiting up to timeout_ms for it. Returns 1 when
 * it has (close_notify, FIN or reset), 0 when it is still open at the end of the wait, -1 when
 * data arrived instead (kept in the buffer for the next read).
 */
int tbt_tls_peer_closed(struct tbt_tls *c, int timeout_ms);

void tbt_http_response_dispose(struct tbt_http_response *r);

/* The value of the first header field named name (case-insensitive), or NULL. */
const char *tbt_http_header(const struct tbt_http_response *r, const char *name);

/* How many header fields are named name (case-insensitive). */
size_t tbt_http_header_count(const struct tbt_http_response *r, const char *name);

/*
 * 1 if the comma-separated list value of header `name` contains `token` (case-insensitive),
 * e.g. tbt_http_header_has(r, "Connection", "close").
 */
int tbt_http_header_has(const struct tbt_http_response *r, const char *name, const char *token);

/*
 * A Token-Binding header value (draft): a provided binding of key (key_params, an enum
 * tb_key_params) and, when referred_key is not NULL, a referred binding of referred_key,
 * each signed over channel[0..channel_len). Returns the length written into out (NUL-terminated)
 * or -1 with err filled.
 */
int tbt_tb_header(int key_params, EVP_PKEY *key, int referred_params, EVP_PKEY *referred_key,
                  const uint8_t *channel, size_t channel_len, char *out, size_t cap, char *err,
                  size_t errlen);

/* tbt_tb_header over the connection's tls_unique (-1 when it has none: not TLS 1.2). */
int tbt_tls_tb_header(struct tbt_tls *c, int key_params, EVP_PKEY *key, int referred_params,
                      EVP_PKEY *referred_key, char *out, size_t cap);

/*
 * tbt_tb_header for either version: a Token-Binding (draft) or Sec-Token-Binding (rfc) value.
 */
int tbt_tb_header_v(enum tb_version version, int key_params, EVP_PKEY *key, int referred_params,
                    EVP_PKEY *referred_key, const uint8_t *channel, size_t channel_len, char *out,
                    size_t cap, char *err, size_t errlen);

/* A Sec-Token-Binding value (rfc) over the connection's EKM. */
int tbt_tls_tb_header_rfc(struct tbt_tls *c, int key_params, EVP_PKEY *key, int referred_params,
                          EVP_PKEY *referred_key, char *out, size_t cap);

/* base64url (no padding) of key's TBID of either version (rfc: TokenBindingID). Its length or
 * -1. */
int tbt_tb_id_b64_v(enum tb_version version, int key_params, EVP_PKEY *key, char *out, size_t cap);

/*
 * base64url (no padding) of the draft TBID of key, as tbproxy forwards it in
 * Sec-Provided-Token-Binding-ID / Sec-Referred-Token-Binding-ID. Returns its length or -1.
 */
int tbt_tb_id_b64(int key_params, EVP_PKEY *key, char *out, size_t cap);

#endif
