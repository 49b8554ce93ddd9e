/*
 * tlsinfo (and tls.c's client certificates and key exchange groups), in process: a listener
 * context made by tbp_tls_new and a client, joined by a memory BIO pair, handshake to the end;
 * then tbp_tlsinfo_get on the server side. Every `tls` result of the spec from a real handshake (pass, selfsigned, fail for
 * an expired certificate, an unknown CA and a revoked one, temperror without a CRL, permerror
 * without a certificate, none without TLS), the properties (version, IANA cipher name, key length
 * and strength, subject, issuer, alternative names, fingerprint), required mode refusing what
 * optional mode reports, resumption carrying the result, session id contexts keeping sessions
 * from other client-certificate settings from resuming, Token Binding beside a client
 * certificate, and the context's errors for unusable CA and CRL files.
 *
 * The certificates come from tests/support/pki.h, written into a fresh temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "proc.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tls.h"
#include "tlsinfo.h"
#include "world.h"

static char dir[512];
static char path_server[600], path_key[600], path_ca[600], path_ca2[600], path_crl[600],
    path_other_crl[600];
static struct tbt_pki pki;

static void setup(void)
{
    X509 *server[] = {NULL, NULL}, *ca[] = {NULL, NULL}, *both[] = {NULL, NULL, NULL};

    cr_assert_eq(tbt_tempdir("tbp-test-tlsinfo-", dir, sizeof(dir)), 0);
    tbt_pki_make(&pki);
    server[0] = pki.server;
    ca[0] = pki.ca;
    both[0] = pki.ca;
    both[1] = pki.other_ca;
    tbt_pki_write(dir, "server.pem", server, NULL, NULL);
    tbt_pki_write(dir, "server.key", NULL, pki.server_key, NULL);
    tbt_pki_write(dir, "ca.pem", ca, NULL, NULL);
    tbt_pki_write(dir, "ca2.pem", both, NULL, NULL);
    tbt_pki_write(dir, "crl.pem", NULL, NULL, pki.crl);
    tbt_pki_write(dir, "other-crl.pem", NULL, NULL, pki.other_crl);
    snprintf(path_server, sizeof(path_server), "%s/server.pem", dir);
    snprintf(path_key, sizeof(path_key), "%s/server.key", dir);
    snprintf(path_ca, sizeof(path_ca), "%s/ca.pem", dir);
    snprintf(path_ca2, sizeof(path_ca2), "%s/ca2.pem", dir);
    snprintf(path_crl, sizeof(path_crl), "%s/crl.pem", dir);
    snprintf(path_other_crl, sizeof(path_other_crl), "%s/other-crl.pem", dir);
}

static void teardown(void)
{
    tbt_pki_free(&pki);
    if (dir[0] != '\0')
        tbt_rmdir_all(dir);
}

TestSuite(tlsinfo, .init = setup, .fini = teardown, .timeout = 60);

/* --- a listener and a client in one process ----------------------------------------------------
 */

/* A listener context: client_cert mode, CA file, CRL file (NULL: none), key exchange groups
 * (NULL: tls.c's default). */
static struct tbp_tls *listener_groups(int mode, const char *ca, const char *crl,
                                       const char *groups)
{
    struct tbp_tls_settings s = {
        .cert = path_server,
        .key = path_key,
        .tickets = 1,
        .ticket_rotation = 3600,
        .tb_enabled = 1,
        .n_tb_protocols = 2,
        .tb_protocols = {TBP_ALPN_H2, TBP_ALPN_H1},
        .n_tb_key_types = 2,
        .tb_key_types = {TB_KP_ECDSAP256, TB_KP_RSA2048_PKCS1},
        .client_cert = mode,
        .client_ca = ca,
        .client_crl = crl,
        .groups = groups,
    };
    char err[512] = "";
    struct tbp_tls *t = tbp_tls_new(&s, err, sizeof(err));

    cr_assert_not_null(t, "tbp_tls_new: %s", err);
    return t;
}

static struct tbp_tls *listener(int mode, const char *ca, const char *crl)
{
    return listener_groups(mode, ca, crl, NULL);
}

struct client {
    X509 *cert;          /* presented when asked, or NULL */
    int max_version;     /* 0: TLS 1.3 */
    const char *ciphers; /* TLS 1.2 list, or NULL */
    const char *alpn;    /* one id, or NULL */
    SSL_SESSION *resume; /* borrowed */
    const char *groups;  /* key exchange groups offered, or NULL: OpenSSL's default */
};

struct pair {
    SSL_CTX *cctx;
    SSL *c, *s;
    struct tbp_tls_info info; /* the server SSL's app data, as conn.c has it */
    int ok;                   /* both sides finished the handshake */
};

/* One side's handshake step: 1 done, 0 wants more, -1 failed. */
static int step(SSL *ssl)
{
    int r, e;

    if (SSL_is_init_finished(ssl))
        return 1;
    ERR_clear_error();
    r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Connects a client made from cl to t over a BIO pair; p->ok says whether both sides finished.
 * A client of TLS 1.3 then reads the server's session tickets. */
static void pair_connect(struct pair *p, struct tbp_tls *t, const struct client *cl)
{
    BIO *cb = NULL, *sb = NULL;
    unsigned char alpn[64];
    int i, cs = 0, ss = 0;
    char buf[1];

    memset(p, 0, sizeof(*p));
    p->info.tb_key_params = -1;
    p->cctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(p->cctx);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(p->cctx, SSL_SESS_CACHE_OFF);
    cr_assert_eq(SSL_CTX_set_max_proto_version(p->cctx, cl->max_version), 1);
    if (cl->ciphers != NULL)
        cr_assert_eq(SSL_CTX_set_cipher_list(p->cctx, cl->ciphers), 1);
    if (cl->groups != NULL)
        cr_assert_eq(SSL_CTX_set1_groups_list(p->cctx, cl->groups), 1, "%s", cl->groups);
    if (cl->cert != NULL)
        cr_assert(SSL_CTX_use_certificate(p->cctx, cl->cert) == 1 &&
                  SSL_CTX_use_PrivateKey(p->cctx, pki.key) == 1);
    if (cl->alpn != NULL) {
        alpn[0] = (unsigned char)strlen(cl->alpn);
        memcpy(alpn + 1, cl->alpn, alpn[0]);
        cr_assert_eq(SSL_CTX_set_alpn_protos(p->cctx, alpn, alpn[0] + 1u), 0);
    }
    p->c = SSL_new(p->cctx);
    p->s = SSL_new(tbp_tls_ctx(t));
    cr_assert(p->c != NULL && p->s != NULL);
    cr_assert_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(p->c, cb, cb);
    SSL_set_bio(p->s, sb, sb);
    SSL_set_app_data(p->s, &p->info);
    SSL_set_connect_state(p->c);
    SSL_set_accept_state(p->s);
    if (cl->resume != NULL)
        cr_assert_eq(SSL_set_session(p->c, cl->resume), 1);
    for (i = 0; i < 100 && !((cs != 0) && (ss != 0)); i++) {
        if (cs == 0)
            cs = step(p->c);
        if (ss == 0)
            ss = step(p->s);
    }
    cr_assert(cs != 0 && ss != 0, "the handshake neither finished nor failed");
    p->ok = cs == 1 && ss == 1;
    if (p->ok && SSL_version(p->c) == TLS1_3_VERSION) {
        ERR_clear_error();
        i = SSL_read(p->c, buf, sizeof(buf)); /* takes the tickets; there is no data */
        cr_assert_leq(i, 0);
        cr_assert_eq(SSL_get_error(p->c, i), SSL_ERROR_WANT_READ);
    }
    ERR_clear_error();
}

/* Frees both sides; after a good handshake each sends close_notify first (an SSL freed without
 * it makes its session non-resumable). */
static void pair_free(struct pair *p)
{
    if (p->ok) {
        SSL_shutdown(p->c);
        SSL_shutdown(p->s);
        ERR_clear_error();
    }
    SSL_free(p->c);
    SSL_free(p->s);
    SSL_CTX_free(p->cctx);
    memset(p, 0, sizeof(*p));
}

/* The facts of a handshake of cl with t that must succeed. */
static void facts(struct tbp_tls *t, const struct client *cl, struct pair *p,
                  struct tbp_tlsinfo *ti)
{
    pair_connect(p, t, cl);
    cr_assert(p->ok, "handshake failed");
    cr_assert_eq(tbp_tlsinfo_get(p->s, ti), 0);
}

/* "AB:CD:..." of the SHA-256 of x's DER, computed here independently (lower-case hex from the
 * test support, then formatted). */
static void expect_fingerprint(X509 *x, const char *got)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der), i;
    char hex[65], want[96];

    cr_assert_gt(n, 0);
    tbt_world_sha256_hex(der, (size_t)n, hex);
    OPENSSL_free(der);
    for (i = 0; i < 32; i++)
        snprintf(want + 3 * i, sizeof(want) - 3 * (size_t)i, "%c%c%s", hex[2 * i], hex[2 * i + 1],
                 i < 31 ? ":" : "");
    cr_expect(strcasecmp(got, want) == 0, "fingerprint %s, want %s", got, want);
    for (i = 0; got[i] != '\0'; i++)
        cr_expect(got[i] == ':' || (got[i] >= '0' && got[i] <= '9') ||
                      (got[i] >= 'A' && got[i] <= 'F'),
                  "fingerprint %s: not upper-case hex pairs", got);
}

/* --- each result ---------------------------------------------------------------------------- */

Test(tlsinfo, pass_ca_signed, .description = "a CA-signed certificate: pass, with every property")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = pki.alice};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PASS, "result %s", tbp_tls_result_name(ti.result));
    cr_expect_str_eq(tbp_tls_result_name(ti.result), "pass");
    cr_expect_null(ti.reason);
    cr_expect_eq(ti.verify_error, X509_V_OK);
    cr_expect_str_eq(ti.version, "TLS1.3");
    cr_expect_str_eq(ti.ciphersuite, SSL_CIPHER_standard_name(SSL_get_current_cipher(p.c)));
    cr_expect(strncmp(ti.ciphersuite, "TLS_AES_", 8) == 0 ||
                  strncmp(ti.ciphersuite, "TLS_CHACHA20_", 13) == 0,
              "TLS 1.3 suite %s", ti.ciphersuite);
    cr_expect_geq(ti.key_length, 128);
    cr_expect_eq(ti.strength, TBP_KEY_HIGH);
    cr_assert_not_null(ti.cert);
    cr_expect_str_eq(ti.cert->subject, "CN=alice,O=Example");
    cr_expect_str_eq(ti.cert->issuer, "CN=Test Client CA,O=Example");
    cr_expect_str_eq(ti.cert->alt, "DNS:alice.example.com,email:alice@example.com,"
                                   "URI:spiffe://example.com/alice");
    cr_expect_str_eq(ti.cert->verif, "CA");
    expect_fingerprint(pki.alice, ti.cert->fingerprint);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, selfsigned, .description = "a self-signed certificate: selfsigned")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = pki.selfsigned};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_SELFSIGNED, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    cr_expect_eq(ti.verify_error, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    cr_expect_null(ti.reason);
    cr_assert_not_null(ti.cert);
    cr_expect_str_eq(ti.cert->subject, "CN=mallory,O=Self");
    cr_expect_str_eq(ti.cert->issuer, "CN=mallory,O=Self");
    cr_expect_str_eq(ti.cert->alt, "");
    expect_fingerprint(pki.selfsigned, ti.cert->fingerprint);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, selfsigned_trust_anchor_passes,
     .description = "a self-signed certificate that is in the CA file: pass")
{
    X509 *both[] = {pki.ca, pki.selfsigned, NULL};
    char path[700];
    struct tbp_tls *t;
    struct client cl = {.cert = pki.selfsigned};
    struct tbp_tlsinfo ti;
    struct pair p;

    tbt_pki_write(dir, "ca-pinned.pem", both, NULL, NULL);
    snprintf(path, sizeof(path), "%s/ca-pinned.pem", dir);
    t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path, NULL);
    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PASS, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, fail_expired, .description = "an expired CA-signed certificate: fail, and why")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = pki.expired};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_FAIL, "result %s", tbp_tls_result_name(ti.result));
    cr_expect_eq(ti.verify_error, X509_V_ERR_CERT_HAS_EXPIRED);
    cr_assert_not_null(ti.reason);
    cr_expect_str_eq(ti.reason, "certificate has expired");
    cr_assert_not_null(ti.cert);
    cr_expect_str_eq(ti.cert->subject, "CN=bob,O=Example");
    cr_expect_str_eq(ti.cert->verif, "CA");
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, fail_unknown_ca, .description = "a certificate from another CA: fail, and why")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = pki.unknown};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_FAIL, "result %s", tbp_tls_result_name(ti.result));
    cr_expect_eq(ti.verify_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "error %d",
                 ti.verify_error);
    cr_assert_not_null(ti.reason);
    cr_expect_str_eq(ti.reason, "unable to get local issuer certificate");
    cr_assert_not_null(ti.cert);
    cr_expect_str_eq(ti.cert->issuer, "CN=Other CA,O=Elsewhere");
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, permerror_no_certificate, .description = "optional, none presented: permerror")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {0};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PERMERROR);
    cr_expect_str_eq(tbp_tls_result_name(ti.result), "permerror");
    cr_assert_not_null(ti.reason);
    cr_expect_str_eq(ti.reason, "no client certificate");
    cr_expect_null(ti.cert);
    cr_expect_str_eq(ti.version, "TLS1.3");
    cr_expect_not_null(ti.ciphersuite);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, permerror_when_off, .description = "off: none requested, a client's is not sent")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OFF, NULL, NULL);
    struct client cl = {.cert = pki.alice};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PERMERROR);
    cr_expect_str_eq(ti.reason, "no client certificate");
    cr_expect_null(ti.cert);
    cr_expect_null(SSL_get0_peer_certificate(p.s));
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, none_without_tls, .description = "no SSL: none; before the handshake: EINVAL")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct tbp_tlsinfo ti;
    SSL *s = SSL_new(tbp_tls_ctx(t));

    cr_assert_eq(tbp_tlsinfo_get(NULL, &ti), 0);
    cr_expect_eq(ti.result, TBP_TLSR_NONE);
    cr_expect_str_eq(tbp_tls_result_name(ti.result), "none");
    cr_expect_null(ti.version);
    cr_expect_null(ti.ciphersuite);
    cr_expect_null(ti.cert);
    cr_expect_null(ti.reason);
    cr_expect_eq(tbp_tlsinfo_get(s, &ti), TB_EINVAL);
    SSL_free(s);
    tbp_tls_free(t);
}

/* --- revocation ------------------------------------------------------------------------------ */

Test(tlsinfo, crl_revoked_fails, .description = "with a CRL: revoked fails, others still pass")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, path_crl);
    struct client rev = {.cert = pki.revoked}, ok = {.cert = pki.alice};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &rev, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_FAIL, "result %s", tbp_tls_result_name(ti.result));
    cr_expect_eq(ti.verify_error, X509_V_ERR_CERT_REVOKED, "error %d", ti.verify_error);
    cr_expect_str_eq(ti.reason, "certificate revoked");
    pair_free(&p);
    facts(t, &ok, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PASS, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, crl_unavailable_temperror,
     .description = "no CRL for the issuer: temperror; a definite error still wins")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, path_other_crl);
    struct client ok = {.cert = pki.alice}, exp = {.cert = pki.expired},
                  self = {.cert = pki.selfsigned};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &ok, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_TEMPERROR, "result %s", tbp_tls_result_name(ti.result));
    cr_expect_eq(ti.verify_error, X509_V_ERR_UNABLE_TO_GET_CRL);
    cr_expect_str_eq(ti.reason, "unable to get certificate CRL");
    cr_expect_str_eq(tbp_tls_result_name(ti.result), "temperror");
    pair_free(&p);
    /* the CRL is checked before the dates: the expiry must still be the result */
    facts(t, &exp, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_FAIL, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    cr_expect_eq(ti.verify_error, X509_V_ERR_CERT_HAS_EXPIRED);
    pair_free(&p);
    facts(t, &self, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_SELFSIGNED, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    pair_free(&p);
    tbp_tls_free(t);
}

Test(tlsinfo, first_error_is_the_result,
     .description = "an expired self-signed certificate reads selfsigned, not expired")
{
    X509 *old = tbt_pki_cert(pki.key, "eve", "Self", 30, -3 * 86400, -86400, NULL, NULL, 0, NULL);
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = old};
    struct tbp_tlsinfo ti;
    struct pair p;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_SELFSIGNED, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    pair_free(&p);
    tbp_tls_free(t);
    X509_free(old);
}

/* --- required mode --------------------------------------------------------------------------- */

Test(tlsinfo, required_refuses_what_optional_reports,
     .description = "required: no handshake without a certificate that verifies (1.2 and 1.3)")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_REQUIRED, path_ca, path_crl);
    X509 *bad[] = {NULL, pki.selfsigned, pki.expired, pki.unknown, pki.revoked};
    const char *what[] = {"no certificate", "self-signed", "expired", "unknown CA", "revoked"};
    int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION}, v;
    struct tbp_tlsinfo ti;
    struct pair p;
    size_t i;

    for (v = 0; v < 2; v++) {
        struct client good = {.cert = pki.alice, .max_version = versions[v]};

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct client cl = {.cert = bad[i], .max_version = versions[v]};
            pair_connect(&p, t, &cl);
            cr_expect_not(p.ok, "required accepted: %s (version %#x)", what[i],
                          (unsigned)versions[v]);
            cr_expect_not(SSL_is_init_finished(p.s), "server side finished: %s", what[i]);
            pair_free(&p);
        }
        facts(t, &good, &p, &ti);
        cr_expect_eq(ti.result, TBP_TLSR_PASS);
        cr_expect_str_eq(ti.version, versions[v] == TLS1_2_VERSION ? "TLS1.2" : "TLS1.3");
        pair_free(&p);
    }
    tbp_tls_free(t);
}

/* --- ciphers and versions --------------------------------------------------------------------- */

Test(tlsinfo, tls12_cipher_facts, .description = "TLS 1.2: IANA names, key length, strength")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct {
        const char *openssl, *iana;
        int bits;
    } cases[] = {
        {"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 128},
        {"ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 256},
        {"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 256},
    };
    struct tbp_tlsinfo ti;
    struct pair p;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client cl = {
            .cert = pki.alice, .max_version = TLS1_2_VERSION, .ciphers = cases[i].openssl};
        facts(t, &cl, &p, &ti);
        cr_expect_str_eq(ti.version, "TLS1.2");
        cr_expect_str_eq(ti.ciphersuite, cases[i].iana);
        cr_expect_eq(ti.key_length, cases[i].bits, "%s: %d bits", cases[i].iana, ti.key_length);
        cr_expect_eq(ti.strength, TBP_KEY_HIGH);
        cr_expect_str_eq(tbp_key_strength_name(ti.strength), "high");
        cr_expect_eq(ti.result, TBP_TLSR_PASS);
        pair_free(&p);
    }
    tbp_tls_free(t);
}

Test(tlsinfo, names_and_classes, .description = "result and strength names, error classes")
{
    cr_expect_str_eq(tbp_tls_result_name(TBP_TLSR_SELFSIGNED), "selfsigned");
    cr_expect_str_eq(tbp_tls_result_name(TBP_TLSR_FAIL), "fail");
    cr_expect_str_eq(tbp_key_strength_name(TBP_KEY_LOW), "low");
    cr_expect_str_eq(tbp_key_strength_name(TBP_KEY_MEDIUM), "medium");
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_OK), TBP_TLSR_PASS);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), TBP_TLSR_SELFSIGNED);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN), TBP_TLSR_FAIL,
                 "a chain to an unknown root is not a self-signed client certificate");
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_UNABLE_TO_GET_CRL), TBP_TLSR_TEMPERROR);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_CRL_HAS_EXPIRED), TBP_TLSR_TEMPERROR);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_CRL_NOT_YET_VALID), TBP_TLSR_TEMPERROR);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_CERT_REVOKED), TBP_TLSR_FAIL);
    cr_expect_eq(tbp_tlsinfo_classify(X509_V_ERR_CERT_HAS_EXPIRED), TBP_TLSR_FAIL);
}

/* --- certificate strings ------------------------------------------------------------------------
 */

/* alice's key, signed by the CA, with a URI alternative name holding raw bytes. */
static X509 *cert_with_raw_uri(const char *raw, size_t n, const char *cn)
{
    X509 *x = tbt_pki_cert(pki.key, cn, "Example", 40, -3600, 86400, pki.ca, pki.ca_key, 0,
                           "DNS:ok.example");
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    cr_assert(gens != NULL && g != NULL && s != NULL);
    cr_assert_eq(ASN1_STRING_set(s, raw, (int)n), 1);
    GENERAL_NAME_set0_value(g, GEN_URI, s);
    cr_assert_gt(sk_GENERAL_NAME_push(gens, g), 0);
    cr_assert_eq(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE), 1);
    GENERAL_NAMES_free(gens);
    cr_assert_neq(X509_sign(x, pki.ca_key, EVP_sha256()), 0);
    return x;
}

Test(tlsinfo, alt_names_are_header_safe,
     .description = "commas, CR LF and other bytes inside an alternative name come out %XX")
{
    static const char raw[] = "https://x.example/a,b c\r\nInjected: 1%";
    X509 *x = cert_with_raw_uri(raw, sizeof(raw) - 1, "alt\"quote");
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = x};
    struct tbp_tlsinfo ti;
    struct pair p;
    const char *s;

    facts(t, &cl, &p, &ti);
    cr_expect_eq(ti.result, TBP_TLSR_PASS, "result %s (%d)", tbp_tls_result_name(ti.result),
                 ti.verify_error);
    cr_assert_not_null(ti.cert);
    cr_expect_str_eq(ti.cert->alt,
                     "DNS:ok.example,URI:https://x.example/a%2Cb%20c%0D%0AInjected:%201%25");
    cr_expect_str_eq(ti.cert->subject, "CN=alt\\\"quote,O=Example");
    for (s = ti.cert->subject; *s != '\0'; s++)
        cr_expect(*s >= 0x20 && *s <= 0x7e);
    pair_free(&p);
    tbp_tls_free(t);
    X509_free(x);
}

Test(tlsinfo, long_subject_is_capped, .description = "a subject over the cap is cut to it")
{
    char cn[60];
    X509 *x;
    X509_NAME *name;
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {0};
    struct tbp_tlsinfo ti;
    struct pair p;
    int i;

    x = tbt_pki_cert(pki.key, "long", "Example", 41, -3600, 86400, pki.ca, pki.ca_key, 0, NULL);
    name = X509_get_subject_name(x);
    memset(cn, 'a', sizeof(cn) - 1);
    cn[sizeof(cn) - 1] = '\0';
    for (i = 0; i < 40; i++) /* 40 OU entries of 60 bytes: ~2.6 KB in RFC 2253 */
        cr_assert_eq(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char *)cn,
                                                -1, -1, 0),
                     1);
    cr_assert_neq(X509_sign(x, pki.ca_key, EVP_sha256()), 0);
    cl.cert = x;
    facts(t, &cl, &p, &ti);
    cr_assert_not_null(ti.cert);
    cr_expect_eq(strlen(ti.cert->subject), TBP_TLSINFO_MAX_NAME);
    cr_expect(strncmp(ti.cert->subject, "OU=aaaa", 7) == 0, "%.40s", ti.cert->subject);
    pair_free(&p);
    tbp_tls_free(t);
    X509_free(x);
}

Test(tlsinfo, computed_once_per_connection,
     .description = "the certificate strings are made once and kept with the connection")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    struct client cl = {.cert = pki.alice};
    struct tbp_tlsinfo a, b;
    struct pair p;

    facts(t, &cl, &p, &a);
    cr_assert_eq(tbp_tlsinfo_get(p.s, &b), 0);
    cr_assert_not_null(a.cert);
    cr_expect_eq(a.cert, b.cert, "a second call made the strings again");
    cr_expect_eq(a.result, b.result);
    cr_expect_eq(a.ciphersuite, b.ciphersuite);
    pair_free(&p);
    tbp_tls_free(t);
}

/* --- resumption ---------------------------------------------------------------------------- */

/* A session of cl's full handshake with t (the caller frees it). */
static SSL_SESSION *session_of(struct tbp_tls *t, const struct client *cl)
{
    struct pair p;
    SSL_SESSION *s;

    pair_connect(&p, t, cl);
    cr_assert(p.ok, "handshake failed");
    s = SSL_get1_session(p.c);
    cr_assert(s != NULL && SSL_SESSION_is_resumable(s), "no resumable session");
    pair_free(&p);
    return s;
}

Test(tlsinfo, resumed_session_keeps_the_result,
     .description = "a resumed connection reports its full handshake's result and certificate")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
    int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION}, v;
    X509 *certs[] = {pki.expired, pki.alice, pki.selfsigned};
    enum tbp_tls_result want[] = {TBP_TLSR_FAIL, TBP_TLSR_PASS, TBP_TLSR_SELFSIGNED};
    const char *subject[] = {"CN=bob,O=Example", "CN=alice,O=Example", "CN=mallory,O=Self"};
    struct tbp_tlsinfo ti;
    struct pair p;
    size_t i;

    for (v = 0; v < 2; v++) {
        for (i = 0; i < 3; i++) {
            struct client full = {.cert = certs[i], .max_version = versions[v]};
            SSL_SESSION *s = session_of(t, &full);
            /* the resuming client has no certificate at all: the facts come from the session */
            struct client again = {.max_version = versions[v], .resume = s};

            facts(t, &again, &p, &ti);
            cr_expect(SSL_session_reused(p.s), "not resumed (version %#x, %s)",
                      (unsigned)versions[v], subject[i]);
            cr_expect_eq(ti.result, want[i], "resumed: %s, want %s (%s)",
                         tbp_tls_result_name(ti.result), tbp_tls_result_name(want[i]), subject[i]);
            cr_assert_not_null(ti.cert, "resumed without the certificate (%s)", subject[i]);
            cr_expect_str_eq(ti.cert->subject, subject[i]);
            expect_fingerprint(certs[i], ti.cert->fingerprint);
            if (want[i] == TBP_TLSR_FAIL)
                cr_expect_str_eq(ti.reason, "certificate has expired");
            pair_free(&p);
            SSL_SESSION_free(s);
        }
    }
    tbp_tls_free(t);
}

/* Resumes s (a session of `from`) on a context `to` that took over from's ticket keys. */
static void resume_on(struct tbp_tls *to, struct tbp_tls *from, SSL_SESSION *s, int version,
                      X509 *cert, struct pair *p)
{
    struct client cl = {.cert = cert, .max_version = version, .resume = s};

    tbp_tls_inherit_tickets(to, from);
    pair_connect(p, to, &cl);
}

Test(tlsinfo, sessions_stay_with_their_settings,
     .description = "a session or ticket of other client-certificate settings is not resumed")
{
    int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION}, v;

    for (v = 0; v < 2; v++) {
        struct tbp_tls *opt = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
        struct tbp_tls *same = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, NULL);
        struct tbp_tls *req = listener(TBP_TLS_CLIENT_CERT_REQUIRED, path_ca, NULL);
        struct tbp_tls *ca2 = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca2, NULL);
        struct tbp_tls *crl = listener(TBP_TLS_CLIENT_CERT_OPTIONAL, path_ca, path_crl);
        struct tbp_tls *off = listener(TBP_TLS_CLIENT_CERT_OFF, NULL, NULL);
        struct client nocert = {.max_version = versions[v]};
        SSL_SESSION *s = session_of(opt, &nocert);
        struct tbp_tlsinfo ti;
        struct pair p;

        /* control: same settings and keys (a reload that changed nothing) resume */
        resume_on(same, opt, s, versions[v], NULL, &p);
        cr_expect(p.ok && SSL_session_reused(p.s), "same settings: not resumed (%#x)",
                  (unsigned)versions[v]);
        pair_free(&p);
        /* required now: the certificate-less session must not get in */
        resume_on(req, opt, s, versions[v], NULL, &p);
        cr_expect_not(p.ok, "required accepted a session made without a certificate (%#x)",
                      (unsigned)versions[v]);
        pair_free(&p);
        resume_on(req, opt, s, versions[v], pki.alice, &p);
        cr_assert(p.ok);
        cr_expect_not(SSL_session_reused(p.s), "resumed across modes (%#x)", (unsigned)versions[v]);
        cr_assert_eq(tbp_tlsinfo_get(p.s, &ti), 0);
        cr_expect_eq(ti.result, TBP_TLSR_PASS);
        pair_free(&p);
        /* another CA file, a CRL added, client certificates off: full handshakes */
        resume_on(ca2, opt, s, versions[v], NULL, &p);
        cr_expect(p.ok && !SSL_session_reused(p.s), "resumed across CA files (%#x)",
                  (unsigned)versions[v]);
        pair_free(&p);
        resume_on(crl, opt, s, versions[v], NULL, &p);
        cr_expect(p.ok && !SSL_session_reused(p.s), "resumed across CRL settings (%#x)",
                  (unsigned)versions[v]);
        pair_free(&p);
        resume_on(off, opt, s, versions[v], NULL, &p);
        cr_expect(p.ok && !SSL_session_reused(p.s), "resumed across off/optional (%#x)",
                  (unsigned)versions[v]);
        pair_free(&p);
        SSL_SESSION_free(s);
        tbp_tls_free(opt);
        tbp_tls_free(same);
        tbp_tls_free(req);
        tbp_tls_free(ca2);
        tbp_tls_free(crl);
        tbp_tls_free(off);
    }
}

/* --- Token Binding beside a client certificate -------------------------------------------------
 */

Test(tlsinfo, token_binding_with_client_certificate,
     .description = "a TB ALPN id is still negotiated (TLS 1.2, EMS) with a client certificate")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_REQUIRED, path_ca, NULL);
    struct client cl = {.cert = pki.alice, .alpn = "http/1.1_tb_p256"};
    struct tbp_tlsinfo ti;
    struct pair p;
    char alpn[32];

    facts(t, &cl, &p, &ti);
    cr_expect_str_eq(tbp_tls_alpn(p.s, alpn, sizeof(alpn)), "http/1.1_tb_p256");
    cr_expect(p.info.tb_offered);
    cr_expect_eq(tbp_tls_established(p.s, &p.info), 0);
    cr_expect_eq(p.info.tb_key_params, TB_KP_ECDSAP256);
    cr_expect_eq(SSL_get_extms_support(p.s), 1);
    cr_expect_str_eq(ti.version, "TLS1.2");
    cr_expect_eq(ti.result, TBP_TLSR_PASS);
    cr_expect_str_eq(ti.cert->subject, "CN=alice,O=Example");
    pair_free(&p);
    tbp_tls_free(t);
}

/* --- unusable files ------------------------------------------------------------------------------
 */

static void expect_new_fails(int mode, const char *ca, const char *crl, const char *want)
{
    struct tbp_tls_settings s = {.cert = path_server,
                                 .key = path_key,
                                 .tickets = 1,
                                 .client_cert = mode,
                                 .client_ca = ca,
                                 .client_crl = crl};
    char err[512] = "";
    struct tbp_tls *t = tbp_tls_new(&s, err, sizeof(err));

    cr_expect_null(t, "tbp_tls_new accepted %s / %s", ca ? ca : "(no CA)", crl ? crl : "(no CRL)");
    tbp_tls_free(t);
    cr_expect(strstr(err, want) != NULL, "error \"%s\", want \"%s\"", err, want);
}

Test(tlsinfo, unusable_files,
     .description = "a CA file without certificates, a CRL file without "
                    "CRLs, no CA file: tbp_tls_new fails, naming it")
{
    char junk[700], nocrl[700];
    X509 *ca[] = {pki.ca, NULL};

    cr_assert_eq(tbt_write_file(dir, "junk.pem", "not a certificate\n", 18), 0);
    snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
    tbt_pki_write(dir, "ca-only.pem", ca, NULL, NULL);
    snprintf(nocrl, sizeof(nocrl), "%s/ca-only.pem", dir);
    expect_new_fails(TBP_TLS_CLIENT_CERT_OPTIONAL, junk, NULL, "client CA file");
    expect_new_fails(TBP_TLS_CLIENT_CERT_OPTIONAL, junk, NULL, junk);
    expect_new_fails(TBP_TLS_CLIENT_CERT_REQUIRED, path_ca, nocrl, "client CRL file");
    expect_new_fails(TBP_TLS_CLIENT_CERT_REQUIRED, path_ca, junk, junk);
    expect_new_fails(TBP_TLS_CLIENT_CERT_OPTIONAL, NULL, NULL, "no client CA file");
    expect_new_fails(7, path_ca, NULL, "unknown mode");
}

/* --- key exchange groups (tls.c) ------------------------------------------------------------- */

/* The group a handshake of a client offering `offered` (TLS 1.3, or 1.2) agrees on with t, or
 * NID_undef when the handshake fails. */
static int agreed_group(struct tbp_tls *t, const char *offered, int max_version)
{
    struct client cl = {.max_version = max_version, .groups = offered};
    struct pair p;
    int nid;

    pair_connect(&p, t, &cl);
    nid = p.ok ? SSL_get_negotiated_group(p.s) : NID_undef;
    pair_free(&p);
    return nid;
}

Test(tlsinfo, groups_default_has_no_ffdhe,
     .description = "by default no finite-field group: a client offering only ffdhe fails, one "
                    "that also offers X25519 gets it; P-256 and P-384 are taken, X448 not")
{
    struct tbp_tls *t = listener(TBP_TLS_CLIENT_CERT_OFF, NULL, NULL);

    cr_expect_eq(agreed_group(t, "ffdhe2048", 0), NID_undef);
    cr_expect_eq(agreed_group(t, "ffdhe8192:ffdhe2048", 0), NID_undef);
    cr_expect_eq(agreed_group(t, "ffdhe2048:X25519", 0), NID_X25519);
    cr_expect_eq(agreed_group(t, "P-256", 0), NID_X9_62_prime256v1);
    cr_expect_eq(agreed_group(t, "P-384", 0), NID_secp384r1);
    cr_expect_eq(agreed_group(t, "X448", 0), NID_undef);
    /* TLS 1.2: the server's preference (a client's list must hold P-256 there anyway: the
     * curve of the ECDSA certificate) */
    cr_expect_eq(agreed_group(t, "P-384:P-256", TLS1_2_VERSION), NID_X9_62_prime256v1);
    tbp_tls_free(t);
}

Test(tlsinfo, groups_configured,
     .description = "tls.groups replaces the list: what it names is taken (ffdhe too, when "
                    "asked for), what it leaves out is not; an unknown name fails the context")
{
    struct tbp_tls_settings s = {.cert = path_server, .key = path_key, .groups = "P-256:P-255"};
    struct tbp_tls *t = listener_groups(TBP_TLS_CLIENT_CERT_OFF, NULL, NULL, "P-521:ffdhe2048");
    char err[512] = "";

    cr_expect_eq(agreed_group(t, "ffdhe2048", 0), NID_ffdhe2048);
    cr_expect_eq(agreed_group(t, "P-521:X25519", 0), NID_secp521r1);
    cr_expect_eq(agreed_group(t, "X25519", 0), NID_undef);
    tbp_tls_free(t);
    cr_expect_null(tbp_tls_new(&s, err, sizeof(err)));
    cr_expect(strncmp(err, "groups", 6) == 0, "%s", err);
}
