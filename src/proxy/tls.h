/*
 * TLS for the proxy's listeners: one SSL_CTX shared by every worker (SSL_CTX is thread-safe
 * for SSL_new and its session cache is locked), Token Binding negotiation, session tickets with
 * rotating keys, renegotiation refused.
 *
 * Negotiation (spec "Negotiation (draft)" and RFC 8472), per listener (settings.tb_versions):
 *   - rfc: the token_binding extension (24). A ClientHello offering it with Extended Master
 *     Secret and renegotiation_info (extension or SCSV) is answered in the ServerHello (version
 *     and one key parameters value, tb/tlsext.h) and the connection pinned to TLS 1.2; a
 *     malformed extension fails the handshake (decode_error); without EMS or renegotiation_info
 *     it is not answered (no Token Binding, TLS 1.3 allowed).
 *   - draft: a ClientHello with Token Binding ALPN ids and EMS caps the connection at TLS 1.2
 *     (tls_unique does not exist in 1.3) and lets the ALPN callback pick a Token Binding id, in
 *     the server's preference order.
 *   - both: rfc when the ClientHello offers the extension acceptably (the ALPN id is then a plain
 *     one), else draft.
 * Everyone else negotiates as a plain HTTPS server (TLS 1.3 included). After the handshake
 * tbp_tls_established() re-checks the preconditions. Resumed sessions negotiate again.
 *
 * Certificates are read when the context is built: a reload (SIGHUP) builds new contexts from the
 * files as they are then, and new handshakes use those; connections made earlier keep theirs.
 *
 * Client certificates (settings.client_cert): off, optional (asked for; every outcome completes
 * the handshake and is reported) or required (no handshake without one that verifies against
 * client_ca and client_crl). The outcome and the certificate's facts, for the origin, are read
 * with tbp_tlsinfo_get() (tlsinfo.h) once the handshake is done.
 */
#ifndef TBP_TLS_H
#define TBP_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define TBP_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Key exchange groups: no finite-field (ffdhe) group, which TLS 1.3 would otherwise let a client
 * choose and make the server compute (ffdhe8192: a CPU cost for each handshake). */
#define TBP_TLS_GROUPS "X25519:P-256:P-384"

#define TBP_ALPN_H1 0
#define TBP_ALPN_H2 1

struct tbp_tls_settings {
    const char *cert;         /* PEM, leaf first then chain */
    const char *key;          /* PEM private key */
    const char *ciphers;      /* TLS 1.2 cipher list; NULL: TBP_TLS12_CIPHERS */
    const char *groups;       /* key exchange groups, preference first; NULL: TBP_TLS_GROUPS */
    int tickets;              /* session tickets on */
    unsigned ticket_rotation; /* seconds a ticket key encrypts before the next one takes over */
    int tb_enabled;
    unsigned tb_versions; /* TBP_TLS_TB_DRAFT | TBP_TLS_TB_RFC: which versions this listener
                             speaks (with tb_enabled); 0 is taken as TBP_TLS_TB_DRAFT */
    size_t n_tb_protocols;
    int tb_protocols[2]; /* TBP_ALPN_H1 / TBP_ALPN_H2, in preference order */
    size_t n_tb_key_types;
    int tb_key_types[2];    /* enum tb_key_params, in preference order */
    int client_cert;        /* TBP_TLS_CLIENT_CERT_*: off (0), optional, required */
    const char *client_ca;  /* PEM CA certificates (trust store and the CA names sent in the
                               CertificateRequest); required unless client_cert is off */
    const char *client_crl; /* PEM CRLs checked for the client's certificate; NULL: none */
};

/* tbp_tls_settings.tb_versions bits (the values of TBP_TBV_* in config.h). */
#define TBP_TLS_TB_DRAFT 1u /* draft: ALPN ids, tls_unique, Token-Binding */
#define TBP_TLS_TB_RFC 2u   /* RFC 8471-8473: extension 24, EKM, Sec-Token-Binding */

/* tbp_tls_settings.client_cert (the values of enum tbp_client_cert in config.h). */
#define TBP_TLS_CLIENT_CERT_OFF 0      /* no CertificateRequest */
#define TBP_TLS_CLIENT_CERT_OPTIONAL 1 /* requested; every outcome completes the handshake */
#define TBP_TLS_CLIENT_CERT_REQUIRED 2 /* a certificate that verifies, or no handshake */

/* Per-connection TLS facts, embedded in the connection; SSL_set_app_data(ssl, info). */
struct tbp_tls_info {
    int tb_offered;    /* draft: the ClientHello offered a Token Binding id and EMS (and rfc was
                          not chosen): pinned to TLS 1.2 */
    int tb_key_params; /* negotiated key parameters (enum tb_key_params), -1 if no TB */
    int tb_version;    /* enum tb_version of the negotiated binding (meaningful when
                          tb_key_params >= 0) */
    uint8_t tb_major, tb_minor; /* rfc: the extension's version (1.0, or 0.13..0.16); draft: 0 */
    unsigned tb_listener_versions; /* TBP_TLS_TB_* the listener speaks (tls.c sets it in the
                                      ClientHello callback; 0 when Token Binding is off) */
    /* rfc negotiation state (tls.c): the ClientHello's offer accepted, and the answer sent */
    int tb_rfc;                   /* the extension was answered: pinned to TLS 1.2 */
    uint8_t tb_answer[3 + 1];     /* the ServerHello extension body (one key parameters value) */
};

struct tbp_tls;

/* Builds the listener TLS context. NULL with a message in err on failure. */
struct tbp_tls *tbp_tls_new(const struct tbp_tls_settings *s, char *err, size_t errlen);
void tbp_tls_free(struct tbp_tls *t);
SSL_CTX *tbp_tls_ctx(struct tbp_tls *t);

/*
 * Reload: t (new, not yet in use) takes over the session ticket keys of `from` (the context the
 * same listener had before), so tickets issued before the reload still resume. A no-op unless
 * both have tickets on. Any thread; takes from's lock.
 */
void tbp_tls_inherit_tickets(struct tbp_tls *t, struct tbp_tls *from);

/*
 * A one-line description of t's certificate for the logs: "sha256 AB:CD:...:EF (first 8 bytes),
 * expires YYYY-MM-DD" into buf (NUL-terminated, truncated to cap). Returns buf.
 */
const char *tbp_tls_cert_info(struct tbp_tls *t, char *buf, size_t cap);

/*
 * After the handshake: fills info->tb_key_params, tb_version and (rfc) tb_major / tb_minor from
 * the extension's answer (rfc) or the selected ALPN id (draft), and checks the Token Binding
 * preconditions again (TLS 1.2, EMS negotiated; rfc: secure renegotiation too). Returns 0, or -1
 * when the connection negotiated Token Binding without them and must be closed.
 */
int tbp_tls_established(SSL *ssl, struct tbp_tls_info *info);

/* "http/1.1", "http/1.1_tb_p256", ... the selected ALPN id or "" (none). Borrowed from ssl. */
const char *tbp_tls_alpn(SSL *ssl, char *buf, size_t cap);

#endif
