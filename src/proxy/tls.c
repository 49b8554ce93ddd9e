/*
 * Listener TLS: context, Token Binding negotiation (draft ALPN ids and the RFC 8472 token_binding
 * extension), ticket key rotation.
 *
 * Token Binding, per listener (settings.tb_versions): draft, rfc or both. The ClientHello
 * callback decides before anything else is negotiated:
 *   - rfc: the ClientHello carries extension 24 (registered as a custom extension, so OpenSSL
 *     collects it and SSL_client_hello_get0_ext finds it) that parses (else decode_error), plus
 *     Extended Master Secret (23) and renegotiation_info (0xff01, or the SCSV 0x00FF among the
 *     cipher suites, which is how OpenSSL clients say it on a first handshake). Then the answer
 *     is chosen (tb_ext_server_select: the version, the listener's first key type the client
 *     offered; "rsa2048" is rsa2048_pss, then rsa2048_pkcs1.5), kept in the connection's info,
 *     and the ServerHello callback sends it. Without EMS or renegotiation_info, or with nothing
 *     in common, the extension is not answered and the connection has no Token Binding (TLS 1.3
 *     stays allowed).
 *   - draft: only when rfc was not chosen: TB ALPN ids and EMS in the ClientHello let the ALPN
 *     callback pick a TB id. A "both" listener thus gives a client offering the extension rfc
 *     (its ALPN is then a plain id) and one offering only TB ALPN ids draft.
 * Either way the connection is pinned to TLS 1.2 (no tls_unique in 1.3, and RFC 8472 defines the
 * extension for TLS 1.2). tbp_tls_established() checks the preconditions again on the finished
 * handshake. A resumed session (id or ticket) negotiates again from its ClientHello: the answer
 * is sent again and the EKM is the resumed connection's own.
 *
 * Ticket keys: two slots, current and previous, each with a 16-byte name, an AES-256 key and an
 * HMAC-SHA256 key, all random. The current key encrypts new tickets for `ticket_rotation`
 * seconds; then it becomes the previous one (still accepted, and tickets under it are renewed)
 * and a fresh key takes over. The callback runs on every worker thread, hence the mutex. A
 * reload builds a new context per listener and hands it the old one's keys
 * (tbp_tls_inherit_tickets): tickets outlive reloads as they outlive connections.
 *
 * Client certificates (client_cert optional or required): the CA file is the context's whole
 * trust store (no system default paths) and its subjects are the CA names of the
 * CertificateRequest; a CRL file turns on X509_V_FLAG_CRL_CHECK (the client's certificate).
 * Verification is OpenSSL's; the verify callback only (1) keeps the first error of the chain
 * check as the result (OpenSSL would keep the last: an expired self-signed certificate must read
 * "self-signed", a missing CRL must not hide an expired certificate, so a definite error
 * replaces a temporary one, see tlsinfo.h) and (2) in optional mode accepts the handshake
 * whatever the error, so the result can be reported instead. Required mode fails the handshake
 * on any error and without a certificate. The result and the certificate live in the session,
 * so a resumed connection reports what its full handshake found; the session id context is a
 * digest of the client-certificate settings (mode, CA and CRL file contents), so a session or
 * ticket made under other settings (another mode, CA or CRL: a reload changed them, the ticket
 * keys being inherited) is not resumed but renegotiated in full.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tb/error.h"
#include "tb/message.h"
#include "tb/tlsext.h"
#include "tls.h"
#include "tlsinfo.h"

#define TLSEXT_TYPE_EMS 23
#define TLSEXT_TYPE_RENEGOTIATE 0xff01
#define TLS_EMPTY_RENEGOTIATION_INFO_SCSV 0x00ff

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t created;
    int valid;
};

struct tbp_tls {
    SSL_CTX *ctx;
    struct tbp_tls_settings s;
    pthread_mutex_t lock;
    struct ticket_key keys[2];    /* [0] current, [1] previous */
    unsigned char alpn_pref[128]; /* server preference, wire format */
    size_t alpn_pref_len;
    unsigned versions; /* TBP_TLS_TB_* this listener speaks; 0 when Token Binding is off */
    int rfc_prefs[4];  /* rfc key parameters, server preference first (from tb_key_types) */
    size_t n_rfc_prefs;
};

static int ctx_index = -1;
static int verify_index = -1; /* X509_STORE_CTX: the first error of this verification */
static pthread_once_t ctx_index_once = PTHREAD_ONCE_INIT;

static void ctx_index_init(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    verify_index = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* --- ALPN ----------------------------------------------------------------------------------- */

/* The draft ALPN id of a protocol (0 http/1.1, 1 h2) and key type, e.g. "h2_tb_p256". */
static void tb_alpn_id(int proto, int key_params, char *out, size_t cap)
{
    snprintf(out, cap, "%s_tb_%s", proto == TBP_ALPN_H2 ? "h2" : "http/1.1",
             key_params == TB_KP_ECDSAP256 ? "p256" : "rsa2048");
}

static int is_tb_id(const unsigned char *p, size_t n)
{
    return n > 4 && memmem(p, n, "_tb_", 4) != NULL;
}

/* Appends one length-prefixed protocol id to the preference list. */
static void pref_add(struct tbp_tls *t, const char *id)
{
    size_t n = strlen(id);

    if (t->alpn_pref_len + 1 + n > sizeof(t->alpn_pref))
        return;
    t->alpn_pref[t->alpn_pref_len++] = (unsigned char)n;
    memcpy(t->alpn_pref + t->alpn_pref_len, id, n);
    t->alpn_pref_len += n;
}

/* Does the client's ALPN list (wire format) contain the id at pref[0..n)? */
static int offered(const unsigned char *in, unsigned inlen, const unsigned char *id, size_t n)
{
    unsigned i = 0;

    while (i < inlen) {
        unsigned len = in[i];
        if (i + 1 + len > inlen)
            return 0;
        if (len == n && memcmp(in + i + 1, id, n) == 0)
            return 1;
        i += 1 + len;
    }
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    struct tbp_tls *t = arg;
    struct tbp_tls_info *info = SSL_get_app_data(ssl);
    /* tb_offered is never set beside tb_rfc: an rfc connection gets a plain id */
    int tb_ok = info != NULL && info->tb_offered && SSL_version(ssl) == TLS1_2_VERSION;
    size_t i = 0;

    while (i < t->alpn_pref_len) {
        size_t n = t->alpn_pref[i];
        const unsigned char *id = t->alpn_pref + i + 1;
        if ((tb_ok || !is_tb_id(id, n)) && offered(in, inlen, id, n)) {
            *out = id;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK; /* no common protocol: carry on without ALPN (HTTP/1.1) */
}

/* Does the ClientHello's ALPN extension list a Token Binding id? */
static int hello_offers_tb(SSL *ssl)
{
    const unsigned char *ext;
    size_t len, i;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &len) != 1 ||
        len < 2)
        return 0;
    for (i = 2; i < len;) {
        size_t n = ext[i];
        if (i + 1 + n > len)
            return 0;
        if (is_tb_id(ext + i + 1, n))
            return 1;
        i += 1 + n;
    }
    return 0;
}

/* Does the ClientHello say renegotiation_info: the extension, or the SCSV among its suites? */
static int hello_has_reneg_info(SSL *ssl)
{
    const unsigned char *p;
    size_t len, i;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_RENEGOTIATE, &p, &len) == 1)
        return 1;
    len = SSL_client_hello_get0_ciphers(ssl, &p);
    for (i = 0; i + 1 < len; i += 2)
        if (((unsigned)p[i] << 8 | p[i + 1]) == TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
            return 1;
    return 0;
}

/*
 * The rfc offer of the ClientHello, if any: sets info->tb_rfc and info->tb_answer when it is
 * answered. Returns 0 (answered or not), or -1 with *alert set when the extension is malformed.
 */
static int rfc_hello(struct tbp_tls *t, SSL *ssl, struct tbp_tls_info *info, int *alert)
{
    struct tb_ext_params offer, answer;
    const unsigned char *p, *ems;
    size_t len, ems_len;

    if (SSL_client_hello_get0_ext(ssl, TB_EXT_TYPE, &p, &len) != 1)
        return 0;
    if (tb_ext_parse(p, len, &offer) != 0) {
        *alert = SSL_AD_DECODE_ERROR;
        return -1;
    }
    /* RFC 8472 section 4: without both, the server must not answer (no Token Binding) */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_EMS, &ems, &ems_len) != 1 ||
        !hello_has_reneg_info(ssl))
        return 0;
    if (tb_ext_server_select(&offer, t->rfc_prefs, t->n_rfc_prefs, &answer) != 0 ||
        tb_ext_encode(&answer, info->tb_answer, sizeof(info->tb_answer)) !=
            (int)sizeof(info->tb_answer))
        return 0;
    info->tb_rfc = 1;
    return 0;
}

static int client_hello(SSL *ssl, int *alert, void *arg)
{
    struct tbp_tls *t = arg;
    struct tbp_tls_info *info = SSL_get_app_data(ssl);
    const unsigned char *ems;
    size_t ems_len;

    if (info == NULL)
        return SSL_CLIENT_HELLO_SUCCESS;
    /* a fresh decision for every ClientHello (a HelloRetryRequest brings a second one) */
    info->tb_listener_versions = t->versions;
    info->tb_offered = info->tb_rfc = 0;
    if ((t->versions & TBP_TLS_TB_RFC) && rfc_hello(t, ssl, info, alert) != 0)
        return SSL_CLIENT_HELLO_ERROR;
    if (!info->tb_rfc && (t->versions & TBP_TLS_TB_DRAFT))
        info->tb_offered = hello_offers_tb(ssl) &&
                           SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_EMS, &ems, &ems_len) == 1;
    if (info->tb_offered || info->tb_rfc)
        SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* The extension in the TLS 1.2 ServerHello: the answer client_hello chose, or nothing. */
static int ext_add(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
                   size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    struct tbp_tls_info *info = SSL_get_app_data(ssl);

    (void)type, (void)x, (void)chainidx, (void)al, (void)arg;
    if (!(context & SSL_EXT_TLS1_2_SERVER_HELLO) || info == NULL || !info->tb_rfc)
        return 0;
    *out = info->tb_answer;
    *outlen = sizeof(info->tb_answer);
    return 1;
}

/* The ClientHello's extension was read by client_hello already. */
static int ext_parse(SSL *ssl, unsigned int type, unsigned int context, const unsigned char *in,
                     size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)ssl, (void)type, (void)context, (void)in, (void)inlen, (void)x, (void)chainidx, (void)al,
        (void)arg;
    return 1;
}

int tbp_tls_established(SSL *ssl, struct tbp_tls_info *info)
{
    const unsigned char *p = NULL;
    unsigned n = 0;

    info->tb_key_params = -1;
    info->tb_version = TB_VERSION_DRAFT;
    info->tb_major = info->tb_minor = 0;
    if (info->tb_rfc) {
        if (SSL_version(ssl) != TLS1_2_VERSION || SSL_get_extms_support(ssl) != 1 ||
            SSL_get_secure_renegotiation_support(ssl) != 1)
            return -1;
        info->tb_version = TB_VERSION_RFC;
        info->tb_major = info->tb_answer[0];
        info->tb_minor = info->tb_answer[1];
        info->tb_key_params = info->tb_answer[3];
        return 0;
    }
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (p == NULL || !is_tb_id(p, n))
        return 0;
    if (SSL_version(ssl) != TLS1_2_VERSION || SSL_get_extms_support(ssl) != 1)
        return -1;
    info->tb_key_params = memmem(p, n, "p256", 4) != NULL ? TB_KP_ECDSAP256 : TB_KP_RSA2048_PKCS1;
    return 0;
}

const char *tbp_tls_alpn(SSL *ssl, char *buf, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned n = 0;

    SSL_get0_alpn_selected(ssl, &p, &n);
    if (p == NULL || n + 1 > cap)
        n = 0;
    if (n > 0)
        memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* --- ticket keys ---------------------------------------------------------------------------- */

static int new_ticket_key(struct ticket_key *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->created = time(NULL);
    k->valid = 1;
    return 0;
}

/* Rotates if the current key is due. Called with t->lock held. */
static void rotate_keys(struct tbp_tls *t)
{
    struct ticket_key fresh;

    if (time(NULL) - t->keys[0].created < (time_t)t->s.ticket_rotation)
        return;
    if (new_ticket_key(&fresh) != 0)
        return; /* keep the old key rather than fail handshakes */
    OPENSSL_cleanse(&t->keys[1], sizeof(t->keys[1]));
    t->keys[1] = t->keys[0];
    t->keys[0] = fresh;
    OPENSSL_cleanse(&fresh, sizeof(fresh));
}

static int set_keys(const struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                    EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[2];
    char digest[] = "SHA256";

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) != 1 ||
        EVP_MAC_init(hctx, k->hmac, sizeof(k->hmac), params) != 1)
        return -1;
    return 0;
}

static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct tbp_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    struct ticket_key k;
    int ret = -1, i;

    pthread_mutex_lock(&t->lock);
    if (enc) {
        rotate_keys(t);
        k = t->keys[0];
        pthread_mutex_unlock(&t->lock);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            goto Exit;
        memcpy(name, k.name, sizeof(k.name));
        ret = set_keys(&k, iv, cctx, hctx, 1) == 0 ? 1 : -1;
        goto Exit;
    }
    for (i = 0; i < 2; i++) {
        if (t->keys[i].valid && memcmp(name, t->keys[i].name, sizeof(k.name)) == 0)
            break;
    }
    if (i == 2) {
        pthread_mutex_unlock(&t->lock);
        ret = 0; /* unknown key: full handshake */
        goto Exit;
    }
    k = t->keys[i];
    pthread_mutex_unlock(&t->lock);
    /* 2: valid, but issue a new ticket under the current key */
    ret = set_keys(&k, iv, cctx, hctx, 0) == 0 ? (i == 0 ? 1 : 2) : -1;
Exit:
    OPENSSL_cleanse(&k, sizeof(k));
    return ret;
}

/* --- client certificates -------------------------------------------------------------------- */

static void tls_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
             buf[0] ? buf : "failed");
    ERR_clear_error();
}

/*
 * Keeps the chain check's first error as its result (a definite error replaces a temporary one):
 * X509_verify_cert leaves the last error reported in the store context, and that is what
 * becomes SSL_get_verify_result. Returns what the callback should return in required mode.
 */
static int verify_record(int ok, X509_STORE_CTX *x)
{
    int first = (int)(intptr_t)X509_STORE_CTX_get_ex_data(x, verify_index);
    int e = X509_STORE_CTX_get_error(x);

    if (!ok && e != X509_V_OK &&
        (first == X509_V_OK ||
         (tbp_tlsinfo_error_temporary(first) && !tbp_tlsinfo_error_temporary(e)))) {
        first = e;
        X509_STORE_CTX_set_ex_data(x, verify_index, (void *)(intptr_t)e);
    }
    if (first != X509_V_OK)
        X509_STORE_CTX_set_error(x, first);
    return ok;
}

/* client_cert optional: every certificate completes the handshake; the result is reported. */
static int verify_optional(int ok, X509_STORE_CTX *x)
{
    verify_record(ok, x);
    return 1;
}

/* client_cert required: the first error fails the handshake. */
static int verify_required(int ok, X509_STORE_CTX *x)
{
    return verify_record(ok, x);
}

/* Feeds the contents of the file at path to md. 0, or -1 if it cannot be read. */
static int digest_file(EVP_MD_CTX *md, const char *path)
{
    unsigned char buf[4096];
    FILE *f = fopen(path, "rb");
    size_t n;
    int ret = 0;

    if (f == NULL)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1)
            ret = -1;
    if (ferror(f))
        ret = -1;
    fclose(f);
    return ret;
}

/*
 * The session id context: "tbproxy" without client certificates (as before they existed), else
 * SHA-256 over the mode and the CA and CRL files' contents (32 bytes, SSL_MAX_SID_CTX_LENGTH).
 */
static int set_sid_ctx(struct tbp_tls *t, char *err, size_t errlen)
{
    static const char label[] = "tbproxy client certificates";
    unsigned char md[EVP_MAX_MD_SIZE], mode = (unsigned char)t->s.client_cert;
    EVP_MD_CTX *m = NULL;
    unsigned n = 0;
    int ret = -1;

    if (t->s.client_cert == TBP_TLS_CLIENT_CERT_OFF)
        return SSL_CTX_set_session_id_context(t->ctx, (const unsigned char *)"tbproxy", 7) == 1
                   ? 0
                   : -1;
    if ((m = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(m, label, sizeof(label)) != 1 || EVP_DigestUpdate(m, &mode, 1) != 1 ||
        digest_file(m, t->s.client_ca) != 0 || EVP_DigestUpdate(m, "\0crl", 4) != 1 ||
        (t->s.client_crl != NULL && digest_file(m, t->s.client_crl) != 0) ||
        EVP_DigestFinal_ex(m, md, &n) != 1 || n > SSL_MAX_SID_CTX_LENGTH ||
        SSL_CTX_set_session_id_context(t->ctx, md, n) != 1) {
        tls_error(err, errlen, "client certificates: session id context", NULL);
        goto Exit;
    }
    ret = 0;
Exit:
    EVP_MD_CTX_free(m);
    return ret;
}

/* Trust store, CA names, CRLs and verify mode for client_cert optional / required. */
static int client_cert_setup(struct tbp_tls *t, char *err, size_t errlen)
{
    const struct tbp_tls_settings *s = &t->s;
    int required = s->client_cert == TBP_TLS_CLIENT_CERT_REQUIRED;
    STACK_OF(X509_NAME) * names;
    X509_LOOKUP *lu;

    if (s->client_cert == TBP_TLS_CLIENT_CERT_OFF)
        return 0;
    if (s->client_cert != TBP_TLS_CLIENT_CERT_OPTIONAL && !required) {
        snprintf(err, errlen, "client certificates: unknown mode %d", s->client_cert);
        return -1;
    }
    if (s->client_ca == NULL) {
        snprintf(err, errlen, "client certificates: no client CA file");
        return -1;
    }
    if (SSL_CTX_load_verify_locations(t->ctx, s->client_ca, NULL) != 1) {
        tls_error(err, errlen, "client CA file", s->client_ca);
        return -1;
    }
    names = SSL_load_client_CA_file(s->client_ca);
    if (names == NULL || sk_X509_NAME_num(names) == 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ERR_clear_error();
        snprintf(err, errlen, "client CA file %s: no certificate", s->client_ca);
        return -1;
    }
    SSL_CTX_set_client_CA_list(t->ctx, names);
    if (s->client_crl != NULL) {
        lu = X509_STORE_add_lookup(SSL_CTX_get_cert_store(t->ctx), X509_LOOKUP_file());
        if (lu == NULL || X509_load_crl_file(lu, s->client_crl, X509_FILETYPE_PEM) <= 0) {
            tls_error(err, errlen, "client CRL file", s->client_crl);
            return -1;
        }
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(t->ctx), X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | (required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       required ? verify_required : verify_optional);
    return 0;
}

/* --- context -------------------------------------------------------------------------------- */

/* rfc: the key parameters in server preference and the extension's callbacks. */
static int rfc_setup(struct tbp_tls *t, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < t->s.n_tb_key_types && i < 2 && t->n_rfc_prefs + 2 <= 4; i++) {
        if (t->s.tb_key_types[i] == TB_KP_ECDSAP256) {
            t->rfc_prefs[t->n_rfc_prefs++] = TB_KP_ECDSAP256;
        } else {
            t->rfc_prefs[t->n_rfc_prefs++] = TB_KP_RSA2048_PSS;
            t->rfc_prefs[t->n_rfc_prefs++] = TB_KP_RSA2048_PKCS1;
        }
    }
    if (SSL_CTX_add_custom_ext(t->ctx, TB_EXT_TYPE,
                               SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO, ext_add, NULL,
                               NULL, ext_parse, NULL) != 1) {
        tls_error(err, errlen, "token_binding extension", NULL);
        return -1;
    }
    return 0;
}

struct tbp_tls *tbp_tls_new(const struct tbp_tls_settings *s, char *err, size_t errlen)
{
    struct tbp_tls *t = calloc(1, sizeof(*t));
    SSL_CTX *ctx = NULL;
    size_t i, p;
    char id[32];

    if (t == NULL || pthread_once(&ctx_index_once, ctx_index_init) != 0 || ctx_index < 0 ||
        verify_index < 0) {
        snprintf(err, errlen, "out of memory");
        free(t);
        return NULL;
    }
    t->s = *s;
    t->versions = !s->tb_enabled ? 0 : s->tb_versions != 0 ? s->tb_versions : TBP_TLS_TB_DRAFT;
    if (t->s.ticket_rotation == 0)
        t->s.ticket_rotation = 3600;
    pthread_mutex_init(&t->lock, NULL);
    ctx = t->ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_error(err, errlen, "SSL_CTX_new", NULL);
        goto Fail;
    }
    SSL_CTX_set_ex_data(ctx, ctx_index, t);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET * !s->tickets);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, s->ciphers ? s->ciphers : TBP_TLS12_CIPHERS) != 1) {
        tls_error(err, errlen, "cipher list", NULL);
        goto Fail;
    }
    if (SSL_CTX_set1_groups_list(ctx, s->groups ? s->groups : TBP_TLS_GROUPS) != 1) {
        tls_error(err, errlen, "groups", NULL);
        goto Fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1) {
        tls_error(err, errlen, "certificate", s->cert);
        goto Fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errlen, "private key", s->key);
        goto Fail;
    }
    if (client_cert_setup(t, err, errlen) != 0 || set_sid_ctx(t, err, errlen) != 0)
        goto Fail;
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    if (s->tickets) {
        if (new_ticket_key(&t->keys[0]) != 0 ||
            SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
            tls_error(err, errlen, "session tickets", NULL);
            goto Fail;
        }
    }
    if (s->tb_enabled && (t->versions & TBP_TLS_TB_DRAFT)) {
        for (p = 0; p < s->n_tb_protocols && p < 2; p++) {
            for (i = 0; i < s->n_tb_key_types && i < 2; i++) {
                tb_alpn_id(s->tb_protocols[p], s->tb_key_types[i], id, sizeof(id));
                pref_add(t, id);
            }
        }
    }
    if ((t->versions & TBP_TLS_TB_RFC) && rfc_setup(t, err, errlen) != 0)
        goto Fail;
    pref_add(t, "h2");
    pref_add(t, "http/1.1");
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, t);
    SSL_CTX_set_client_hello_cb(ctx, client_hello, t);
    return t;
Fail:
    tbp_tls_free(t);
    return NULL;
}

void tbp_tls_free(struct tbp_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    free(t);
}

SSL_CTX *tbp_tls_ctx(struct tbp_tls *t)
{
    return t->ctx;
}

void tbp_tls_inherit_tickets(struct tbp_tls *t, struct tbp_tls *from)
{
    if (t == NULL || from == NULL || !t->s.tickets || !from->s.tickets)
        return;
    pthread_mutex_lock(&from->lock);
    pthread_mutex_lock(&t->lock);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    memcpy(t->keys, from->keys, sizeof(t->keys));
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_unlock(&from->lock);
}

const char *tbp_tls_cert_info(struct tbp_tls *t, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, i;
    char fp[8 * 3];
    struct tm tm;

    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (x == NULL || X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen < 8) {
        ERR_clear_error();
        return buf;
    }
    for (i = 0; i < 8; i++) {
        fp[3 * i] = hex[md[i] >> 4];
        fp[3 * i + 1] = hex[md[i] & 15];
        fp[3 * i + 2] = i < 7 ? ':' : '\0';
    }
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        snprintf(buf, cap, "sha256 %s..., expires %04d-%02d-%02d", fp, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
    else
        snprintf(buf, cap, "sha256 %s...", fp);
    ERR_clear_error();
    return buf;
}
