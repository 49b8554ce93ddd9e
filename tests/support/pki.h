/*
 * Test support: a small PKI made in memory for client-certificate (mTLS) tests.
 *
 * tbt_pki_make() builds, with fresh P-256 keys:
 *   ca          "CN=Test Client CA,O=Example", a CA (basicConstraints CA:TRUE, keyCertSign,
 *               cRLSign), valid from an hour ago for a day
 *   other_ca    "CN=Other CA,O=Elsewhere", the same kind of CA, never configured ("unknown CA")
 *   alice       "CN=alice,O=Example" signed by ca, clientAuth, alternative names
 *               DNS:alice.example.com, email:alice@example.com, URI:spiffe://example.com/alice
 *   selfsigned  "CN=mallory,O=Self" signed by its own key, no extensions
 *   expired     "CN=bob,O=Example" signed by ca, expired yesterday
 *   unknown     "CN=carol,O=Elsewhere" signed by other_ca
 *   revoked     "CN=dave,O=Example" signed by ca, listed in crl
 *   crl         ca's CRL (v2, valid for a day) revoking `revoked`
 *   other_crl   other_ca's CRL, empty (a CRL file that holds nothing for ca: "CRL unavailable")
 *   server      "CN=localhost" self-signed, the server certificate of in-process tests
 * Every leaf shares one key (key); the server has server_key.
 *
 * These call Criterion: a PKI that cannot be built fails the test.
 */
#ifndef TBT_PKI_H
#define TBT_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

struct tbt_pki {
    EVP_PKEY *ca_key, *other_ca_key, *key, *server_key;
    X509 *ca, *other_ca, *alice, *selfsigned, *expired, *unknown, *revoked, *server;
    X509_CRL *crl, *other_crl;
};

/* Builds the whole set (above) into *p. Free with tbt_pki_free. */
void tbt_pki_make(struct tbt_pki *p);
/* Frees everything; safe on a zeroed struct. */
void tbt_pki_free(struct tbt_pki *p);

/*
 * A certificate for key with subject "CN=cn,O=o" (o may be NULL), serial `serial`, valid from
 * now + not_before_s to now + not_after_s, signed by issuer / issuer_key (NULL: self-signed with
 * key). ca: basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign; else, when issuer is not
 * NULL, basicConstraints CA:FALSE and extendedKeyUsage clientAuth. san: a subjectAltName value in
 * OpenSSL's config syntax ("DNS:a.example,email:x@y"), or NULL.
 */
X509 *tbt_pki_cert(EVP_PKEY *key, const char *cn, const char *o, long serial, long not_before_s,
                   long not_after_s, X509 *issuer, EVP_PKEY *issuer_key, int ca, const char *san);

/* A CRL of ca revoking `revoked` (NULL: none), valid from an hour ago to now + next_update_s. */
X509_CRL *tbt_pki_crl(X509 *ca, EVP_PKEY *ca_key, X509 *revoked, long next_update_s);

/* Writes to dir/name, in order, as PEM: the certificates of certs (NULL-terminated, may be NULL),
 * then key (may be NULL), then crl (may be NULL). */
void tbt_pki_write(const char *dir, const char *name, X509 *const *certs, EVP_PKEY *key,
                   X509_CRL *crl);

#endif
