/*
 * What TLS told the proxy about a connection, as the `tls` method of the Authentication-Results
 * header reports it (shared/spec/AUTH-RESULTS.md, draft-martin-authentication-results-tls):
 * the result of the client certificate check, the protocol version, the cipher suite and its
 * strength, and the client certificate's subject, issuer, alternative names and fingerprint.
 *
 * tbp_tlsinfo_get() reads them from a connection whose handshake has finished. The cheap facts
 * (version, cipher, the verification result OpenSSL keeps) are read each call; the certificate's
 * strings are made once per connection, on the first call, and kept with the SSL (ex_data,
 * freed by SSL_free), so a connection without a client certificate costs no allocation at all
 * and one with a certificate costs one. A resumed session reports what the full handshake found:
 * OpenSSL keeps the peer certificate and the verification result in the session (tls.c keeps
 * sessions of listeners with other client-certificate settings from resuming).
 *
 * Every string is printable ASCII (0x20..0x7e), so it can go into a header once quoted; the
 * Authentication-Results builder does the quoting.
 */
#ifndef TBP_TLSINFO_H
#define TBP_TLSINFO_H

#include <stddef.h>

#include <openssl/ssl.h>

/* The `tls` method's results (spec table), in the order of the spec. */
enum tbp_tls_result {
    TBP_TLSR_NONE = 0,       /* "none": not encrypted (tbp_tlsinfo_get with ssl NULL) */
    TBP_TLSR_PASS = 1,       /* "pass": a client certificate verified against the CA file */
    TBP_TLSR_SELFSIGNED = 2, /* "selfsigned": the client certificate signs itself and is not a
                                configured trust anchor */
    TBP_TLSR_FAIL = 3,       /* "fail": presented, did not verify; reason says why */
    TBP_TLSR_TEMPERROR = 4,  /* "temperror": could not be verified now (CRL missing or out of
                                date); reason says which */
    TBP_TLSR_PERMERROR = 5,  /* "permerror": encrypted, but no client certificate (none
                                requested, or none presented); reason "no client certificate" */
};

/* `key.strength`. */
enum tbp_key_strength {
    TBP_KEY_LOW = 0,    /* "low": fewer than 128 symmetric bits */
    TBP_KEY_MEDIUM = 1, /* "medium": 128 bits or more, not AEAD */
    TBP_KEY_HIGH = 2,   /* "high": AEAD with 128 bits or more */
};

/* Caps on the certificate strings, bytes without the NUL (a longer one is cut; alternative
 * names are cut between names). */
#define TBP_TLSINFO_MAX_NAME 1024
#define TBP_TLSINFO_FINGERPRINT_LEN 95 /* 32 bytes as "AB:CD:...": 32 * 3 - 1 */

/* The client certificate's facts. Made once per connection; owned by the SSL. */
struct tbp_tlscert {
    const char *subject; /* `cert.client`: the subject, RFC 2253 ("CN=alice,O=Example") */
    const char *issuer;  /* `cert.clientissuer`: the issuer, RFC 2253 */
    const char *alt;     /* `cert.clientalt`: subject alternative names of type DNS, email and
                            URI, "DNS:a.example,email:alice@example.com,URI:spiffe://x/y" (a
                            ',' or byte outside 0x21..0x7e inside a name written %XX); "" when
                            there are none */
    const char *verif;   /* `cert.verif`: "CA" (verified against the CA file; the only way) */
    char fingerprint[TBP_TLSINFO_FINGERPRINT_LEN + 1]; /* `key.fingerprint`: SHA-256 of the
                                                          DER certificate, "AB:CD:..." (upper) */
};

/* One connection's facts. Strings are static or owned by the SSL: valid until SSL_free. */
struct tbp_tlsinfo {
    enum tbp_tls_result result;
    const char *reason;  /* the comment: X509_verify_cert_error_string() for fail and temperror
                            ("certificate has expired"), "no client certificate" for permerror,
                            NULL for pass, selfsigned and none */
    int verify_error;    /* the X509_V_ERR_* of the check (X509_V_OK: none, or no certificate) */
    const char *version; /* `tls.v`: "TLS1.2", "TLS1.3"; NULL for none */
    const char *ciphersuite;        /* `key.ciphersuite`: the IANA name
                                       ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"); NULL for none */
    int key_length;                 /* `key.length`: symmetric key bits (128, 256); 0 for none */
    enum tbp_key_strength strength; /* `key.strength` (none: TBP_KEY_LOW, not reported) */
    const struct tbp_tlscert *cert; /* the client certificate, NULL when none was presented */
};

/*
 * Fills *out for ssl, a server-side connection whose handshake has finished; ssl NULL gives
 * result none (a plain connection) and nothing else. Returns 0; TB_EINVAL when the handshake is
 * not finished; TB_ENOMEM when the certificate's strings could not be made (*out then holds
 * every other fact, cert NULL; a later call tries again). The first call with a certificate
 * allocates; later calls on the same connection only read. Not thread-safe per SSL (one worker
 * owns a connection).
 */
int tbp_tlsinfo_get(SSL *ssl, struct tbp_tlsinfo *out);

/* The result for a verification error: pass (X509_V_OK), selfsigned, temperror or fail. */
enum tbp_tls_result tbp_tlsinfo_classify(int x509_error);

/*
 * 1 when a verification error only says the check could not complete now (a CRL is missing,
 * not yet valid or expired: temperror), 0 when it says the certificate is bad.
 */
int tbp_tlsinfo_error_temporary(int x509_error);

/* "none", "pass", "selfsigned", "fail", "temperror", "permerror". */
const char *tbp_tls_result_name(enum tbp_tls_result r);
/* "low", "medium", "high". */
const char *tbp_key_strength_name(enum tbp_key_strength s);

#endif
