/*
 * Tests for tb/channel.h: the channel values of real OpenSSL connections.
 *
 * Each test runs client and server in one process: a self-signed P-256 certificate is made in
 * memory, the two SSLs talk over a non-blocking socketpair and the handshake is driven by calling
 * SSL_do_handshake on each side in turn (a bounded loop, so a stuck handshake fails the test
 * instead of hanging it). The values tb_channel_* give on both sides are checked against each
 * other, against what OpenSSL reports (SSL_get_finished, SSL_session_reused) and, end to end,
 * against tb_verify_header: a binding signed over the client's value must verify over the
 * server's value of the same connection, and over no other connection's.
 *
 * A struct env is one server and one client context (with the server's key and certificate); a
 * struct conn is one connection between them. Both are embedded in the test's stack frame:
 * env_init / env_dispose, conn_open / conn_close.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tb/channel.h"
#include "tb/error.h"
#include "tb/sign.h"
#include "tb/verify.h"

#define HANDSHAKE_STEPS 100 /* rounds of (client step, server step); a handshake needs < 10 */

struct env {
    EVP_PKEY *key; /* the server's P-256 key */
    X509 *cert;    /* self-signed with key */
    SSL_CTX *sctx;
    SSL_CTX *cctx;
};

struct conn {
    SSL *c;
    SSL *s;
    int fd[2]; /* fd[0] client, fd[1] server */
};

/* A self-signed certificate for key, valid for an hour. NULL on failure. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/*
 * Server and client contexts, both capped at max_version (0: the library's highest). The server
 * resumes sessions from its cache and, unless no_tickets, from tickets; client_opts are added to
 * the client's options (e.g. SSL_OP_NO_EXTENDED_MASTER_SECRET).
 */
static void env_init(struct env *e, int max_version, int no_tickets, uint64_t client_opts)
{
    static const unsigned char sid_ctx[] = "test_channel";

    memset(e, 0, sizeof(*e));
    e->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(e->key);
    e->cert = self_signed(e->key);
    cr_assert_not_null(e->cert);

    e->sctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(e->sctx);
    cr_assert_eq(SSL_CTX_use_certificate(e->sctx, e->cert), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(e->sctx, e->key), 1);
    cr_assert_eq(SSL_CTX_set_min_proto_version(e->sctx, TLS1_2_VERSION), 1);
    cr_assert_eq(SSL_CTX_set_max_proto_version(e->sctx, max_version), 1);
    SSL_CTX_set_session_cache_mode(e->sctx, SSL_SESS_CACHE_SERVER);
    cr_assert_eq(SSL_CTX_set_session_id_context(e->sctx, sid_ctx, sizeof(sid_ctx) - 1), 1);
    if (no_tickets)
        SSL_CTX_set_options(e->sctx, SSL_OP_NO_TICKET);

    e->cctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(e->cctx);
    cr_assert_eq(SSL_CTX_set_min_proto_version(e->cctx, TLS1_2_VERSION), 1);
    cr_assert_eq(SSL_CTX_set_max_proto_version(e->cctx, max_version), 1);
    SSL_CTX_set_verify(e->cctx, SSL_VERIFY_NONE, NULL); /* self-signed: trust is not the point */
    SSL_CTX_set_options(e->cctx, client_opts);
}

static void env_dispose(struct env *e)
{
    SSL_CTX_free(e->cctx);
    SSL_CTX_free(e->sctx);
    X509_free(e->cert);
    EVP_PKEY_free(e->key);
    memset(e, 0, sizeof(*e));
}

/* Client and server SSLs over a fresh non-blocking socketpair; nothing sent yet. */
static void conn_new(struct conn *k, struct env *e, SSL_SESSION *resume)
{
    int i;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, k->fd), 0);
    for (i = 0; i < 2; i++) {
        int fl = fcntl(k->fd[i], F_GETFL);

        cr_assert_neq(fl, -1);
        cr_assert_neq(fcntl(k->fd[i], F_SETFL, fl | O_NONBLOCK), -1);
    }
    k->c = SSL_new(e->cctx);
    k->s = SSL_new(e->sctx);
    cr_assert(k->c != NULL && k->s != NULL);
    cr_assert_eq(SSL_set_fd(k->c, k->fd[0]), 1);
    cr_assert_eq(SSL_set_fd(k->s, k->fd[1]), 1);
    SSL_set_connect_state(k->c);
    SSL_set_accept_state(k->s);
    if (resume != NULL)
        cr_assert_eq(SSL_set_session(k->c, resume), 1);
}

/*
 * One handshake step of ssl: 1 when its handshake is complete, 0 when it waits for the peer.
 * Any other outcome fails the test.
 */
static int step(SSL *ssl, const char *who)
{
    const char *why;
    int r, err;

    if (SSL_is_init_finished(ssl))
        return 1;
    ERR_clear_error();
    r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    err = SSL_get_error(ssl, r);
    why = ERR_reason_error_string(ERR_peek_error());
    cr_assert(err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE,
              "%s: SSL_do_handshake failed: SSL_get_error %d, %s", who, err,
              why != NULL ? why : "no reason");
    return 0;
}

/* Drives both sides until both have finished the handshake, within HANDSHAKE_STEPS rounds. */
static void handshake(struct conn *k)
{
    int i, c_done = 0, s_done = 0;

    for (i = 0; i < HANDSHAKE_STEPS && !(c_done && s_done); i++) {
        c_done = step(k->c, "client");
        s_done = step(k->s, "server");
    }
    cr_assert(c_done && s_done, "handshake did not finish in %d rounds", HANDSHAKE_STEPS);
}

static void conn_open(struct conn *k, struct env *e, SSL_SESSION *resume)
{
    conn_new(k, e, resume);
    handshake(k);
}

/*
 * Closes both sides with close_notify when the handshake finished (an SSL freed without it
 * marks its session not resumable), frees both SSLs and closes the sockets.
 */
static void conn_close(struct conn *k)
{
    if (SSL_is_init_finished(k->c))
        SSL_shutdown(k->c);
    if (SSL_is_init_finished(k->s))
        SSL_shutdown(k->s);
    ERR_clear_error();
    SSL_free(k->c);
    SSL_free(k->s);
    cr_assert_eq(close(k->fd[0]), 0);
    cr_assert_eq(close(k->fd[1]), 0);
    memset(k, 0, sizeof(*k));
}

/* tls_unique of both sides of k: asserts each returns 12 bytes and that they agree. */
static void tls_unique_both(struct conn *k, uint8_t out[TB_TLS_UNIQUE_LEN])
{
    uint8_t c[TB_MAX_CHANNEL], s[TB_MAX_CHANNEL];

    cr_assert_eq(tb_channel_tls_unique(k->c, c, sizeof(c)), TB_TLS_UNIQUE_LEN);
    cr_assert_eq(tb_channel_tls_unique(k->s, s, sizeof(s)), TB_TLS_UNIQUE_LEN);
    cr_assert(memcmp(c, s, TB_TLS_UNIQUE_LEN) == 0, "client and server tls_unique differ");
    memcpy(out, c, TB_TLS_UNIQUE_LEN);
}

/* EKM of both sides of k: asserts each returns 32 bytes and that they agree. */
static void ekm_both(struct conn *k, uint8_t out[TB_EKM_LEN])
{
    uint8_t c[TB_MAX_CHANNEL], s[TB_MAX_CHANNEL];

    cr_assert_eq(tb_channel_ekm(k->c, c, sizeof(c)), TB_EKM_LEN);
    cr_assert_eq(tb_channel_ekm(k->s, s, sizeof(s)), TB_EKM_LEN);
    cr_assert(memcmp(c, s, TB_EKM_LEN) == 0, "client and server EKM differ");
    memcpy(out, c, TB_EKM_LEN);
}

/* A Finished message of ssl (mine: its own, else the peer's); asserts it is 12 bytes. */
static void finished(SSL *ssl, int mine, uint8_t out[TB_TLS_UNIQUE_LEN])
{
    uint8_t buf[64];
    size_t n = mine ? SSL_get_finished(ssl, buf, sizeof(buf))
                    : SSL_get_peer_finished(ssl, buf, sizeof(buf));

    cr_assert_eq(n, TB_TLS_UNIQUE_LEN);
    memcpy(out, buf, TB_TLS_UNIQUE_LEN);
}

/* --- tls_unique ----------------------------------------------------------------------------- */

Test(channel, tls12_full_handshake_is_client_finished)
{
    struct env e;
    struct conn k;
    uint8_t tu[TB_TLS_UNIQUE_LEN], fin[TB_TLS_UNIQUE_LEN], peer[TB_TLS_UNIQUE_LEN];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k, &e, NULL);
    cr_assert_eq(SSL_version(k.c), TLS1_2_VERSION);
    cr_assert_eq(SSL_version(k.s), TLS1_2_VERSION);
    cr_assert_not(SSL_session_reused(k.c));
    cr_assert_not(SSL_session_reused(k.s));

    tls_unique_both(&k, tu);
    finished(k.c, 1, fin); /* the client's Finished, as the client sent it */
    cr_assert(memcmp(tu, fin, sizeof(tu)) == 0, "tls_unique is not the client's Finished");
    finished(k.s, 0, peer); /* ... and as the server received it */
    cr_assert(memcmp(tu, peer, sizeof(tu)) == 0);
    finished(k.s, 1, fin); /* the server's Finished came second: not it */
    cr_assert(memcmp(tu, fin, sizeof(tu)) != 0);

    conn_close(&k);
    env_dispose(&e);
}

/* A full handshake, then one resuming its session: tls_unique is the server's Finished. */
static void check_resumed(int no_tickets)
{
    struct env e;
    struct conn k1, k2;
    SSL_SESSION *sess;
    uint8_t tu1[TB_TLS_UNIQUE_LEN], tu2[TB_TLS_UNIQUE_LEN], fin[TB_TLS_UNIQUE_LEN];

    env_init(&e, TLS1_2_VERSION, no_tickets, 0);
    conn_open(&k1, &e, NULL);
    cr_assert_not(SSL_session_reused(k1.s));
    tls_unique_both(&k1, tu1);
    sess = SSL_get1_session(k1.c);
    cr_assert_not_null(sess);
    cr_assert(SSL_SESSION_is_resumable(sess));
    conn_close(&k1);

    conn_open(&k2, &e, sess);
    cr_assert_eq(SSL_version(k2.c), TLS1_2_VERSION);
    cr_assert(SSL_session_reused(k2.c), "client did not resume");
    cr_assert(SSL_session_reused(k2.s), "server did not resume");

    tls_unique_both(&k2, tu2);
    finished(k2.s, 1, fin); /* the server's Finished, as the server sent it */
    cr_assert(memcmp(tu2, fin, sizeof(tu2)) == 0, "tls_unique is not the server's Finished");
    finished(k2.c, 0, fin); /* ... and as the client received it */
    cr_assert(memcmp(tu2, fin, sizeof(tu2)) == 0);
    finished(k2.c, 1, fin); /* the client's Finished came second: not it */
    cr_assert(memcmp(tu2, fin, sizeof(tu2)) != 0);
    cr_assert(memcmp(tu1, tu2, sizeof(tu1)) != 0, "resumed tls_unique equals the full one");

    conn_close(&k2);
    SSL_SESSION_free(sess);
    env_dispose(&e);
}

Test(channel, tls12_resumed_with_ticket_is_server_finished)
{
    check_resumed(0);
}

Test(channel, tls12_resumed_from_session_cache_is_server_finished)
{
    check_resumed(1);
}

Test(channel, tls13_has_no_tls_unique)
{
    struct env e;
    struct conn k;
    uint8_t out[TB_MAX_CHANNEL];

    env_init(&e, 0, 0, 0);
    conn_open(&k, &e, NULL);
    cr_assert_eq(SSL_version(k.c), TLS1_3_VERSION);
    cr_assert_eq(SSL_version(k.s), TLS1_3_VERSION);
    cr_assert_eq(tb_channel_tls_unique(k.c, out, sizeof(out)), TB_ECHANNEL);
    cr_assert_eq(tb_channel_tls_unique(k.s, out, sizeof(out)), TB_ECHANNEL);
    conn_close(&k);
    env_dispose(&e);
}

/*
 * No channel value on a side whose handshake has not finished. Returns 1 if that side had
 * already sent its Finished (the moment a missing "finished" check would give a value away).
 */
static int check_unfinished(SSL *ssl)
{
    uint8_t out[TB_MAX_CHANNEL];

    if (SSL_is_init_finished(ssl))
        return 0;
    cr_assert_eq(tb_channel_tls_unique(ssl, out, sizeof(out)), TB_ECHANNEL);
    cr_assert_eq(tb_channel_ekm(ssl, out, sizeof(out)), TB_ECHANNEL);
    return SSL_get_finished(ssl, out, sizeof(out)) > 0;
}

/* check_unfinished on both sides; returns its result for `early`. */
static int check_both(struct conn *k, SSL *early)
{
    int c = check_unfinished(k->c), s = check_unfinished(k->s);

    return early == k->c ? c : s;
}

/*
 * Drives the handshake of k one side at a time, checking after every step that an unfinished
 * side gives no channel value; `early` (the side that sends Finished first) must have been seen
 * unfinished with its Finished already sent, so the check covered that window.
 */
static void handshake_checking(struct conn *k, SSL *early)
{
    int i, seen = check_both(k, early);

    for (i = 0; i < HANDSHAKE_STEPS; i++) {
        step(k->c, "client");
        seen |= check_both(k, early);
        step(k->s, "server");
        seen |= check_both(k, early);
        if (SSL_is_init_finished(k->c) && SSL_is_init_finished(k->s))
            break;
    }
    cr_assert(SSL_is_init_finished(k->c) && SSL_is_init_finished(k->s),
              "handshake did not finish in %d rounds", HANDSHAKE_STEPS);
    cr_assert(seen, "never saw the first Finished sent before its sender finished");
}

Test(channel, no_channel_value_before_handshake_finished)
{
    struct env e;
    struct conn k1, k2;
    SSL_SESSION *sess;
    uint8_t out[TB_MAX_CHANNEL];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_new(&k1, &e, NULL);
    cr_assert_eq(tb_channel_ems(k1.c), 0); /* nothing negotiated yet */
    cr_assert_eq(tb_channel_ems(k1.s), 0);
    handshake_checking(&k1, k1.c); /* full: the client's Finished is sent first */
    cr_assert_eq(tb_channel_tls_unique(k1.c, out, sizeof(out)), TB_TLS_UNIQUE_LEN);
    cr_assert_eq(tb_channel_ekm(k1.s, out, sizeof(out)), TB_EKM_LEN);

    sess = SSL_get1_session(k1.c);
    cr_assert_not_null(sess);
    conn_new(&k2, &e, sess);
    handshake_checking(&k2, k2.s); /* resumed: the server's Finished is sent first */
    cr_assert(SSL_session_reused(k2.s));
    cr_assert_eq(tb_channel_tls_unique(k2.s, out, sizeof(out)), TB_TLS_UNIQUE_LEN);

    conn_close(&k2);
    SSL_SESSION_free(sess);
    conn_close(&k1);
    env_dispose(&e);
}

Test(channel, small_buffer_is_einval)
{
    struct env e;
    struct conn k;
    uint8_t out[TB_MAX_CHANNEL];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k, &e, NULL);
    cr_assert_eq(tb_channel_tls_unique(k.c, out, TB_TLS_UNIQUE_LEN - 1), TB_EINVAL);
    cr_assert_eq(tb_channel_tls_unique(k.s, out, TB_TLS_UNIQUE_LEN - 1), TB_EINVAL);
    cr_assert_eq(tb_channel_tls_unique(k.s, out, 0), TB_EINVAL);
    cr_assert_eq(tb_channel_tls_unique(k.s, out, TB_TLS_UNIQUE_LEN), TB_TLS_UNIQUE_LEN);
    cr_assert_eq(tb_channel_ekm(k.c, out, TB_EKM_LEN - 1), TB_EINVAL);
    cr_assert_eq(tb_channel_ekm(k.s, out, TB_EKM_LEN - 1), TB_EINVAL);
    cr_assert_eq(tb_channel_ekm(k.s, out, TB_EKM_LEN), TB_EKM_LEN);
    conn_close(&k);
    env_dispose(&e);
}

/* --- EKM and EMS ---------------------------------------------------------------------------- */

Test(channel, ekm_agrees_and_differs_between_connections)
{
    struct env e;
    struct conn k1, k2;
    uint8_t a[TB_EKM_LEN], b[TB_EKM_LEN], a2[TB_EKM_LEN];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k1, &e, NULL);
    conn_open(&k2, &e, NULL);
    ekm_both(&k1, a);
    ekm_both(&k2, b);
    cr_assert(memcmp(a, b, sizeof(a)) != 0, "two connections have the same EKM");
    ekm_both(&k1, a2); /* stable for the life of the connection */
    cr_assert(memcmp(a, a2, sizeof(a)) == 0);
    /* The spec's exporter, spelled out: label "EXPORTER-Token-Binding", no context, 32 bytes. */
    cr_assert_eq(
        SSL_export_keying_material(k1.s, a2, sizeof(a2), "EXPORTER-Token-Binding", 22, NULL, 0, 0),
        1);
    cr_assert(memcmp(a, a2, sizeof(a)) == 0, "EKM is not the spec's exporter output");
    conn_close(&k1);
    conn_close(&k2);
    env_dispose(&e);
}

Test(channel, ems_negotiated_by_default)
{
    struct env e;
    struct conn k;

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k, &e, NULL);
    cr_assert_eq(tb_channel_ems(k.c), 1);
    cr_assert_eq(tb_channel_ems(k.s), 1);
    conn_close(&k);
    env_dispose(&e);
}

Test(channel, ems_absent_when_client_does_not_offer_it)
{
    struct env e;
    struct conn k;

    env_init(&e, TLS1_2_VERSION, 0, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    conn_open(&k, &e, NULL);
    cr_assert_eq(SSL_version(k.s), TLS1_2_VERSION);
    cr_assert_eq(tb_channel_ems(k.c), 0);
    cr_assert_eq(tb_channel_ems(k.s), 0);
    conn_close(&k);
    env_dispose(&e);
}

/* --- end to end: sign on the client, verify on the server ------------------------------------ */

/*
 * The client of `own` signs a provided P-256 binding over its channel value `cv` (len bytes);
 * the server verifies the header over its own value `sv` → 0, and over `other` (another
 * connection's value) → TB_ESIGNATURE.
 */
static void sign_and_verify(enum tb_version version, const uint8_t *cv, const uint8_t *sv,
                            const uint8_t *other, size_t len)
{
    struct tb_builder b;
    struct tb_verifier *v;
    struct tb_verified *out;
    EVP_PKEY *key = NULL;
    uint8_t id[TB_MAX_MESSAGE];
    char hdr[TB_MAX_HEADER + 1];
    int n, idlen;

    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &key), 0);
    tb_builder_init(&b, version);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, key, cv, len), 0);
    n = tb_builder_header(&b, hdr, sizeof(hdr));
    cr_assert_gt(n, 0);
    idlen = tb_id_encode(version, TB_KP_ECDSAP256, key, id, sizeof(id));
    cr_assert_gt(idlen, 0);

    v = tb_verifier_new(0);
    out = calloc(1, sizeof(*out));
    cr_assert(v != NULL && out != NULL);
    cr_assert_eq(tb_verify_header(v, version, TB_KP_ECDSAP256, hdr, (size_t)n, sv, len, out), 0);
    cr_assert_not_null(out->roles.provided);
    cr_assert_eq(out->roles.provided->id.len, (size_t)idlen);
    cr_assert(memcmp(out->roles.provided->id.p, id, (size_t)idlen) == 0);
    cr_assert_eq(tb_verify_header(v, version, TB_KP_ECDSAP256, hdr, (size_t)n, other, len, out),
                 TB_ESIGNATURE);

    free(out);
    tb_verifier_free(v);
    EVP_PKEY_free(key);
}

Test(channel, draft_binding_verifies_over_its_own_tls_unique_only)
{
    struct env e;
    struct conn k1, k2, k3;
    SSL_SESSION *sess;
    uint8_t c1[TB_MAX_CHANNEL], s1[TB_MAX_CHANNEL], u2[TB_TLS_UNIQUE_LEN];
    uint8_t c3[TB_MAX_CHANNEL], s3[TB_MAX_CHANNEL];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k1, &e, NULL);
    conn_open(&k2, &e, NULL);
    cr_assert_eq(tb_channel_tls_unique(k1.c, c1, sizeof(c1)), TB_TLS_UNIQUE_LEN);
    cr_assert_eq(tb_channel_tls_unique(k1.s, s1, sizeof(s1)), TB_TLS_UNIQUE_LEN);
    tls_unique_both(&k2, u2);
    sign_and_verify(TB_VERSION_DRAFT, c1, s1, u2, TB_TLS_UNIQUE_LEN);

    /* The same over a resumed connection, where the first Finished is the server's. */
    sess = SSL_get1_session(k1.c);
    cr_assert_not_null(sess);
    conn_open(&k3, &e, sess);
    cr_assert(SSL_session_reused(k3.s));
    cr_assert_eq(tb_channel_tls_unique(k3.c, c3, sizeof(c3)), TB_TLS_UNIQUE_LEN);
    cr_assert_eq(tb_channel_tls_unique(k3.s, s3, sizeof(s3)), TB_TLS_UNIQUE_LEN);
    sign_and_verify(TB_VERSION_DRAFT, c3, s3, s1, TB_TLS_UNIQUE_LEN);

    conn_close(&k3);
    SSL_SESSION_free(sess);
    conn_close(&k2);
    conn_close(&k1);
    env_dispose(&e);
}

Test(channel, rfc_binding_verifies_over_its_own_ekm_only)
{
    struct env e;
    struct conn k1, k2;
    uint8_t c1[TB_MAX_CHANNEL], s1[TB_MAX_CHANNEL], u2[TB_EKM_LEN];

    env_init(&e, TLS1_2_VERSION, 0, 0);
    conn_open(&k1, &e, NULL);
    conn_open(&k2, &e, NULL);
    cr_assert_eq(tb_channel_ekm(k1.c, c1, sizeof(c1)), TB_EKM_LEN);
    cr_assert_eq(tb_channel_ekm(k1.s, s1, sizeof(s1)), TB_EKM_LEN);
    ekm_both(&k2, u2);
    sign_and_verify(TB_VERSION_RFC, c1, s1, u2, TB_EKM_LEN);
    conn_close(&k2);
    conn_close(&k1);
    env_dispose(&e);
}
