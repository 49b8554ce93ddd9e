/*
 * Per-connection TLS facts for the `tls` method of Authentication-Results (see tlsinfo.h).
 *
 * The verification result is OpenSSL's (SSL_get_verify_result), which tls.c's verify callback
 * makes the first error of the chain check rather than the last (so an expired self-signed
 * certificate reads "selfsigned", and a missing CRL does not hide an expired certificate), and
 * which OpenSSL stores in the session, so resumption reports it again. The certificate strings
 * are built into one heap block hung on the SSL with an ex_data index whose free callback
 * releases it with the SSL.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tb/error.h"
#include "tlsinfo.h"

static int cert_index = -1;
static pthread_once_t cert_index_once = PTHREAD_ONCE_INIT;

static void cert_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void cert_index_init(void)
{
    cert_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, cert_free);
}

/* --- names -------------------------------------------------------------------------------- */

const char *tbp_tls_result_name(enum tbp_tls_result r)
{
    switch (r) {
    case TBP_TLSR_NONE:
        return "none";
    case TBP_TLSR_PASS:
        return "pass";
    case TBP_TLSR_SELFSIGNED:
        return "selfsigned";
    case TBP_TLSR_FAIL:
        return "fail";
    case TBP_TLSR_TEMPERROR:
        return "temperror";
    case TBP_TLSR_PERMERROR:
        return "permerror";
    }
    return "unknown";
}

const char *tbp_key_strength_name(enum tbp_key_strength s)
{
    switch (s) {
    case TBP_KEY_LOW:
        return "low";
    case TBP_KEY_MEDIUM:
        return "medium";
    case TBP_KEY_HIGH:
        return "high";
    }
    return "unknown";
}

int tbp_tlsinfo_error_temporary(int e)
{
    return e == X509_V_ERR_UNABLE_TO_GET_CRL || e == X509_V_ERR_CRL_NOT_YET_VALID ||
           e == X509_V_ERR_CRL_HAS_EXPIRED;
}

enum tbp_tls_result tbp_tlsinfo_classify(int e)
{
    if (e == X509_V_OK)
        return TBP_TLSR_PASS;
    if (e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
        return TBP_TLSR_SELFSIGNED;
    return tbp_tlsinfo_error_temporary(e) ? TBP_TLSR_TEMPERROR : TBP_TLSR_FAIL;
}

/* --- certificate strings ------------------------------------------------------------------- */

/* A bounded string being built: what fits in TBP_TLSINFO_MAX_NAME bytes. */
struct text {
    char s[TBP_TLSINFO_MAX_NAME + 1];
    size_t len;
};

/* Appends n bytes, each outside printable ASCII replaced by '?'; cut at the cap. */
static void text_add(struct text *t, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && t->len < TBP_TLSINFO_MAX_NAME; i++)
        t->s[t->len++] = p[i] >= 0x20 && p[i] <= 0x7e ? p[i] : '?';
    t->s[t->len] = '\0';
}

/* The name in RFC 2253 form (escaped by OpenSSL: ASCII only). */
static void name_text(const X509_NAME *name, struct text *t)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;

    t->len = 0;
    t->s[0] = '\0';
    if (b == NULL)
        return;
    if (name != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(b, &p)) > 0)
        text_add(t, p, (size_t)n);
    BIO_free(b);
}

/* One alternative name, "DNS:value", with ',', '%' and bytes outside 0x21..0x7e as %XX. Added
 * whole or not at all (a name cut in half would be another name). */
static void alt_add(struct text *t, const char *type, const ASN1_IA5STRING *v)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = ASN1_STRING_get0_data(v);
    int n = ASN1_STRING_length(v), i;
    char buf[TBP_TLSINFO_MAX_NAME + 1];
    size_t len = 0;

    len += (size_t)snprintf(buf, sizeof(buf), "%s%s:", t->len > 0 ? "," : "", type);
    for (i = 0; i < n && len + 3 < sizeof(buf); i++) {
        if (p[i] > 0x20 && p[i] < 0x7f && p[i] != ',' && p[i] != '%') {
            buf[len++] = (char)p[i];
        } else {
            buf[len++] = '%';
            buf[len++] = hex[p[i] >> 4];
            buf[len++] = hex[p[i] & 15];
        }
    }
    if (i < n || t->len + len > TBP_TLSINFO_MAX_NAME)
        return;
    text_add(t, buf, len);
}

static void alt_text(X509 *x, struct text *t)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int i;

    t->len = 0;
    t->s[0] = '\0';
    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS)
            alt_add(t, "DNS", g->d.dNSName);
        else if (g->type == GEN_EMAIL)
            alt_add(t, "email", g->d.rfc822Name);
        else if (g->type == GEN_URI)
            alt_add(t, "URI", g->d.uniformResourceIdentifier);
    }
    GENERAL_NAMES_free(gens);
}

/* "AB:CD:..." of the SHA-256 of x's DER; "" if it cannot be computed. */
static void fingerprint(X509 *x, char out[TBP_TLSINFO_FINGERPRINT_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0, i;

    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    for (i = 0; i < n; i++) {
        out[3 * i] = hex[md[i] >> 4];
        out[3 * i + 1] = hex[md[i] & 15];
        out[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
}

/* The certificate's facts in one heap block (strings after the struct); NULL on no memory. */
static struct tbp_tlscert *cert_make(X509 *x)
{
    struct text *sub = malloc(3 * sizeof(struct text)), *iss, *alt;
    struct tbp_tlscert *c = NULL;
    char *p;

    if (sub == NULL)
        return NULL;
    iss = sub + 1;
    alt = sub + 2;
    name_text(X509_get_subject_name(x), sub);
    name_text(X509_get_issuer_name(x), iss);
    alt_text(x, alt);
    c = malloc(sizeof(*c) + sub->len + iss->len + alt->len + 3);
    if (c != NULL) {
        p = (char *)(c + 1);
        memcpy(p, sub->s, sub->len + 1);
        c->subject = p;
        p += sub->len + 1;
        memcpy(p, iss->s, iss->len + 1);
        c->issuer = p;
        p += iss->len + 1;
        memcpy(p, alt->s, alt->len + 1);
        c->alt = p;
        c->verif = "CA";
        fingerprint(x, c->fingerprint);
    }
    free(sub);
    ERR_clear_error();
    return c;
}

/* --- the facts ----------------------------------------------------------------------------- */

static const char *version_name(const SSL *ssl)
{
    switch (SSL_version(ssl)) {
    case TLS1_2_VERSION:
        return "TLS1.2";
    case TLS1_3_VERSION:
        return "TLS1.3";
    }
    return SSL_get_version(ssl); /* older versions are never negotiated (minimum TLS 1.2) */
}

static void cipher_facts(const SSL *ssl, struct tbp_tlsinfo *out)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int bits;

    if (c == NULL)
        return;
    out->ciphersuite = SSL_CIPHER_standard_name(c);
    if (out->ciphersuite == NULL)
        out->ciphersuite = SSL_CIPHER_get_name(c);
    bits = SSL_CIPHER_get_bits(c, NULL);
    out->key_length = bits > 0 ? bits : 0;
    if (bits < 128)
        out->strength = TBP_KEY_LOW;
    else
        out->strength = SSL_CIPHER_is_aead(c) ? TBP_KEY_HIGH : TBP_KEY_MEDIUM;
}

int tbp_tlsinfo_get(SSL *ssl, struct tbp_tlsinfo *out)
{
    struct tbp_tlscert *cert;
    X509 *peer;

    memset(out, 0, sizeof(*out));
    out->result = TBP_TLSR_NONE;
    out->verify_error = X509_V_OK;
    if (ssl == NULL)
        return 0;
    if (!SSL_is_init_finished(ssl))
        return TB_EINVAL;
    out->version = version_name(ssl);
    cipher_facts(ssl, out);
    if ((peer = SSL_get0_peer_certificate(ssl)) == NULL) {
        out->result = TBP_TLSR_PERMERROR;
        out->reason = "no client certificate";
        return 0;
    }
    out->verify_error = (int)SSL_get_verify_result(ssl);
    out->result = tbp_tlsinfo_classify(out->verify_error);
    if (out->result == TBP_TLSR_FAIL || out->result == TBP_TLSR_TEMPERROR)
        out->reason = X509_verify_cert_error_string(out->verify_error);
    if (pthread_once(&cert_index_once, cert_index_init) != 0 || cert_index < 0)
        return TB_ENOMEM;
    if ((cert = SSL_get_ex_data(ssl, cert_index)) == NULL) {
        if ((cert = cert_make(peer)) == NULL)
            return TB_ENOMEM;
        if (SSL_set_ex_data(ssl, cert_index, cert) != 1) {
            free(cert);
            ERR_clear_error();
            return TB_ENOMEM;
        }
    }
    out->cert = cert;
    return 0;
}
