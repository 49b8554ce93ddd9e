/*
 * Test support: certificates and CRLs made with the OpenSSL API (see pki.h). P-256 keys keep
 * this fast, under ASan too; nothing is read from disk.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    cr_assert_not_null(k, "P-256 key generation failed");
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(e, "extension %d = %s", nid, value);
    cr_assert_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

X509 *tbt_pki_cert(EVP_PKEY *key, const char *cn, const char *o, long serial, long not_before_s,
                   long not_after_s, X509 *issuer, EVP_PKEY *issuer_key, int ca, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name;

    cr_assert_not_null(x);
    name = X509_get_subject_name(x);
    cr_assert(X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1);
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), not_before_s) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), not_after_s) != NULL);
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    /* O first, then CN: RFC 2253 prints the most specific first, "CN=...,O=..." */
    if (o != NULL)
        cr_assert_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)o,
                                                -1, -1, 0),
                     1);
    cr_assert_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    cr_assert_eq(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
    if (ca) {
        add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer != NULL ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else if (issuer != NULL) {
        add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, issuer, NID_ext_key_usage, "clientAuth");
    }
    if (san != NULL)
        add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name, san);
    cr_assert_neq(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()), 0);
    return x;
}

X509_CRL *tbt_pki_crl(X509 *ca, EVP_PKEY *ca_key, X509 *revoked, long next_update_s)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = X509_gmtime_adj(NULL, -3600), *next = X509_gmtime_adj(NULL, next_update_s);

    cr_assert(crl != NULL && last != NULL && next != NULL);
    cr_assert(X509_CRL_set_version(crl, 1) == 1 &&
              X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1 &&
              X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        cr_assert(
            r != NULL && X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)) == 1 &&
            X509_REVOKED_set_revocationDate(r, last) == 1 && X509_CRL_add0_revoked(crl, r) == 1);
    }
    cr_assert(X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, ca_key, EVP_sha256()) != 0);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return crl;
}

void tbt_pki_make(struct tbt_pki *p)
{
    memset(p, 0, sizeof(*p));
    p->ca_key = p256();
    p->other_ca_key = p256();
    p->key = p256();
    p->server_key = p256();
    p->ca =
        tbt_pki_cert(p->ca_key, "Test Client CA", "Example", 1, -3600, 86400, NULL, NULL, 1, NULL);
    p->other_ca = tbt_pki_cert(p->other_ca_key, "Other CA", "Elsewhere", 1, -3600, 86400, NULL,
                               NULL, 1, NULL);
    p->alice = tbt_pki_cert(
        p->key, "alice", "Example", 10, -3600, 86400, p->ca, p->ca_key, 0,
        "DNS:alice.example.com,email:alice@example.com,URI:spiffe://example.com/alice");
    p->selfsigned = tbt_pki_cert(p->key, "mallory", "Self", 11, -3600, 86400, NULL, NULL, 0, NULL);
    p->expired =
        tbt_pki_cert(p->key, "bob", "Example", 12, -3 * 86400, -86400, p->ca, p->ca_key, 0, NULL);
    p->unknown = tbt_pki_cert(p->key, "carol", "Elsewhere", 13, -3600, 86400, p->other_ca,
                              p->other_ca_key, 0, NULL);
    p->revoked =
        tbt_pki_cert(p->key, "dave", "Example", 14, -3600, 86400, p->ca, p->ca_key, 0, NULL);
    p->server =
        tbt_pki_cert(p->server_key, "localhost", NULL, 20, -3600, 86400, NULL, NULL, 0, NULL);
    p->crl = tbt_pki_crl(p->ca, p->ca_key, p->revoked, 86400);
    p->other_crl = tbt_pki_crl(p->other_ca, p->other_ca_key, NULL, 86400);
}

void tbt_pki_free(struct tbt_pki *p)
{
    EVP_PKEY_free(p->ca_key);
    EVP_PKEY_free(p->other_ca_key);
    EVP_PKEY_free(p->key);
    EVP_PKEY_free(p->server_key);
    X509_free(p->ca);
    X509_free(p->other_ca);
    X509_free(p->alice);
    X509_free(p->selfsigned);
    X509_free(p->expired);
    X509_free(p->unknown);
    X509_free(p->revoked);
    X509_free(p->server);
    X509_CRL_free(p->crl);
    X509_CRL_free(p->other_crl);
    memset(p, 0, sizeof(*p));
}

void tbt_pki_write(const char *dir, const char *name, X509 *const *certs, EVP_PKEY *key,
                   X509_CRL *crl)
{
    char path[4096];
    BIO *b;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    b = BIO_new_file(path, "w");
    cr_assert_not_null(b, "cannot write %s", path);
    for (; certs != NULL && *certs != NULL; certs++)
        cr_assert_eq(PEM_write_bio_X509(b, *certs), 1);
    if (key != NULL)
        cr_assert_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    if (crl != NULL)
        cr_assert_eq(PEM_write_bio_X509_CRL(b, crl), 1);
    cr_assert_eq(BIO_free(b), 1);
}
