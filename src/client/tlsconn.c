/*
 * tlsconn (see tlsconn.h): TCP connect with a deadline, the TLS handshake, and the two I/O
 * styles (waiting and non-blocking) on one non-blocking socket.
 *
 * Waiting is poll() on the socket for the direction OpenSSL asked for (SSL_ERROR_WANT_READ /
 * _WANT_WRITE), bounded by the deadline. ERR_clear_error() comes before every SSL call, so the
 * error queue read after a failure belongs to that call. A failed handshake is a certificate
 * failure (TBC_ECERT) when verification was on and the verify result is not X509_V_OK; the
 * verify result's text then explains it ("self-signed certificate", "hostname mismatch").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "errors.h"
#include "tb/channel.h"
#include "tb/error.h"
#include "tlsconn.h"

long long tbc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reason on top of the OpenSSL error queue, else fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    return r != NULL ? r : fallback;
}

SSL_CTX *tbc_tls_ctx_new(const struct tbc_tls_ctx_opts *o, int *rc, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *rc = TBC_EINTERNAL;
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ssl_reason("failed"));
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto Fail;
    if (o->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->cafile != NULL && SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
            *rc = TBC_ECACERT;
            snprintf(err, errlen, "cannot load CA certificates from %s: %s", o->cafile,
                     ssl_reason("no certificate"));
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (o->cafile == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1)
            goto Fail;
    }
    if (o->tb_ext && tb_ext_client_ctx_init(ctx) != 0)
        goto Fail;
    *rc = 0;
    return ctx;
Fail:
    snprintf(err, errlen, "TLS context setup: %s", ssl_reason("failed"));
    SSL_CTX_free(ctx);
    return NULL;
}

/* --- waiting --------------------------------------------------------------------------------- */

/* poll() one descriptor until deadline (0: none). 0 when ready (or interrupted), -1 at the
 * deadline. */
static int wait_fd(int fd, int events, long long deadline)
{
    struct pollfd pfd = {.fd = fd, .events = (short)events};
    long long left = deadline > 0 ? deadline - tbc_now_ms() : -1;

    if (deadline > 0 && left <= 0)
        return -1;
    return poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) == 0 ? -1 : 0;
}

int tbc_tls_wait(struct tbc_tls *c, int events, long long deadline)
{
    if (wait_fd(c->fd, events, deadline) != 0) {
        snprintf(c->err, sizeof(c->err), "timeout");
        return TBC_ETIMEOUT;
    }
    return 0;
}

/* --- connecting ------------------------------------------------------------------------------ */

static void describe_peer(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    }
}

/* Connects one address before deadline. The socket, or -1 with the errno in *e. */
static int connect_one(struct tbc_tls *c, const struct addrinfo *ai, long long deadline, int *e)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol),
        one = 1, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd == -1) {
        *e = errno;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
        if (errno != EINPROGRESS) {
            *e = errno;
            close(fd);
            return -1;
        }
        if (wait_fd(fd, POLLOUT, deadline) != 0) {
            *e = ETIMEDOUT;
            close(fd);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 || soerr != 0) {
            *e = soerr != 0 ? soerr : errno;
            close(fd);
            return -1;
        }
    }
    describe_peer(ai->ai_addr, c->peer, sizeof(c->peer));
    return fd;
}

static int tcp_connect(struct tbc_tls *c, const struct tbc_url *u, long long deadline)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[8];
    int rc, e = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | (u->is_ip ? AI_NUMERICHOST : 0);
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    if ((rc = getaddrinfo(u->host, port, &hints, &res)) != 0) {
        snprintf(c->err, sizeof(c->err), "could not resolve host %s: %s", u->host,
                 gai_strerror(rc));
        return TBC_ERESOLVE;
    }
    for (ai = res; ai != NULL && c->fd == -1; ai = ai->ai_next) {
        c->fd = connect_one(c, ai, deadline, &e);
        if (c->fd == -1 && e == ETIMEDOUT && deadline > 0 && tbc_now_ms() >= deadline)
            break;
    }
    freeaddrinfo(res);
    if (c->fd != -1)
        return 0;
    snprintf(c->err, sizeof(c->err), "failed to connect to %s port %u: %s", u->host,
             (unsigned)u->port, strerror(e));
    return e == ETIMEDOUT ? TBC_ETIMEOUT : TBC_ECONNECT;
}

static int setup_ssl(struct tbc_tls *c, SSL_CTX *ctx, const struct tbc_url *u,
                     const unsigned char *alpn, size_t alpn_len,
                     const struct tb_ext_params *tb_offer)
{
    if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    if (!u->is_ip && SSL_set_tlsext_host_name(c->ssl, u->host) != 1)
        return -1;
    if (SSL_get_verify_mode(c->ssl) != SSL_VERIFY_NONE) {
        if (u->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host) != 1
                     : SSL_set1_host(c->ssl, u->host) != 1)
            return -1;
    }
    /* SSL_set_alpn_protos returns 0 on success */
    if (alpn != NULL && alpn_len > 0 && SSL_set_alpn_protos(c->ssl, alpn, (unsigned)alpn_len) != 0)
        return -1;
    if (tb_offer != NULL && tb_ext_client_offer(c->ssl, tb_offer) != 0)
        return -1;
    return 0;
}

static int handshake(struct tbc_tls *c, long long deadline)
{
    for (;;) {
        int r, e;
        long vr;

        ERR_clear_error();
        errno = 0;
        if ((r = SSL_connect(c->ssl)) == 1)
            return 0;
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (tbc_tls_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0) {
                snprintf(c->err, sizeof(c->err), "TLS handshake timed out");
                return TBC_ETIMEOUT;
            }
            continue;
        }
        vr = SSL_get_verify_result(c->ssl);
        if (SSL_get_verify_mode(c->ssl) != SSL_VERIFY_NONE && vr != X509_V_OK) {
            snprintf(c->err, sizeof(c->err), "server certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
            return TBC_ECERT;
        }
        snprintf(c->err, sizeof(c->err), "TLS handshake failed: %s",
                 e == SSL_ERROR_SYSCALL && errno != 0 ? strerror(errno)
                 : e == SSL_ERROR_SYSCALL             ? "connection closed by the server"
                                                      : ssl_reason("unknown error"));
        return TBC_ETLS;
    }
}

/* The token_binding extension's outcome. 0, or TBC_ETLS: the server answered on a connection
 * that cannot carry Token Binding (RFC 8472 section 4: the client must close it). */
static int record_tb(struct tbc_tls *c)
{
    int rc = tb_ext_client_result(c->ssl, &c->tb_answer);

    if (rc == TB_EPARSE) {
        snprintf(c->err, sizeof(c->err),
                 "the server negotiated Token Binding (token_binding extension) on a connection "
                 "without TLS 1.2, Extended Master Secret and secure renegotiation: closed");
        return TBC_ETLS;
    }
    if (rc != 0)
        return 0; /* not negotiated: a plain connection */
    if (tb_channel_ekm(c->ssl, c->ekm, sizeof(c->ekm)) != TB_EKM_LEN) {
        snprintf(c->err, sizeof(c->err), "Token Binding negotiated but no EKM: %s",
                 ssl_reason("exporter failed"));
        return TBC_ETLS;
    }
    c->tb_rfc = c->has_ekm = 1;
    return 0;
}

static void record_negotiated(struct tbc_tls *c)
{
    const unsigned char *p = NULL;
    unsigned n = 0;

    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (n >= sizeof(c->alpn))
        n = 0;
    if (n > 0)
        memcpy(c->alpn, p, n);
    c->alpn[n] = '\0';
    c->version = SSL_version(c->ssl);
    c->ems = SSL_get_extms_support(c->ssl) == 1;
    c->has_tls_unique =
        tb_channel_tls_unique(c->ssl, c->tls_unique, sizeof(c->tls_unique)) == TB_TLS_UNIQUE_LEN;
}

int tbc_tls_connect(struct tbc_tls *c, SSL_CTX *ctx, const struct tbc_url *u,
                    const unsigned char *alpn, size_t alpn_len,
                    const struct tb_ext_params *tb_offer, long long connect_deadline)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if ((rc = tcp_connect(c, u, connect_deadline)) != 0)
        goto Fail;
    if (setup_ssl(c, ctx, u, alpn, alpn_len, tb_offer) != 0) {
        snprintf(c->err, sizeof(c->err), "TLS setup: %s", ssl_reason("failed"));
        rc = TBC_EINTERNAL;
        goto Fail;
    }
    if ((rc = handshake(c, connect_deadline)) != 0)
        goto Fail;
    record_negotiated(c);
    if (tb_offer != NULL && (rc = record_tb(c)) != 0)
        goto Fail;
    return 0;
Fail : {
    char keep[sizeof(c->err)];

    memcpy(keep, c->err, sizeof(keep));
    c->eof = 1; /* no close_notify after a failed handshake */
    tbc_tls_close(c);
    memcpy(c->err, keep, sizeof(keep));
}
    return rc;
}

void tbc_tls_close(struct tbc_tls *c)
{
    if (c->ssl != NULL) {
        if (!c->eof && SSL_is_init_finished(c->ssl)) {
            ERR_clear_error();
            SSL_shutdown(c->ssl); /* one attempt, non-blocking: close_notify if it fits */
        }
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    if (c->fd != -1)
        close(c->fd);
    OPENSSL_cleanse(c->ekm, sizeof(c->ekm));
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* --- I/O ------------------------------------------------------------------------------------- */

int tbc_tls_read_some(struct tbc_tls *c, void *buf, size_t cap)
{
    int r, e;

    c->want = 0;
    if (c->eof || c->ssl == NULL)
        return 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (r > 0)
        return r;
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
        c->eof = 1;
        return 0;
    }
    c->eof = 1;
    snprintf(c->err, sizeof(c->err), "receive failed: %s",
             e == SSL_ERROR_SYSCALL ? strerror(errno) : ssl_reason("TLS error"));
    return TBC_ERECV;
}

int tbc_tls_write_some(struct tbc_tls *c, const void *buf, size_t len)
{
    int r, e;

    c->want = 0;
    if (c->ssl == NULL) {
        snprintf(c->err, sizeof(c->err), "send on a closed connection");
        return TBC_ESEND;
    }
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0)
        return r;
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    snprintf(c->err, sizeof(c->err), "send failed: %s",
             e == SSL_ERROR_SYSCALL ? (errno != 0 ? strerror(errno) : "connection closed")
                                    : ssl_reason("TLS error"));
    return TBC_ESEND;
}

int tbc_tls_read(struct tbc_tls *c, void *buf, size_t cap, long long deadline)
{
    for (;;) {
        int r = tbc_tls_read_some(c, buf, cap);

        if (r != 0 || c->eof)
            return r;
        if (tbc_tls_wait(c, c->want, deadline) != 0) {
            snprintf(c->err, sizeof(c->err), "timeout while receiving");
            return TBC_ETIMEOUT;
        }
    }
}

int tbc_tls_write(struct tbc_tls *c, const void *buf, size_t len, long long deadline)
{
    const char *p = buf;

    while (len > 0) {
        int r = tbc_tls_write_some(c, p, len);

        if (r < 0)
            return r;
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (tbc_tls_wait(c, c->want, deadline) != 0) {
            snprintf(c->err, sizeof(c->err), "timeout while sending");
            return TBC_ETIMEOUT;
        }
    }
    return 0;
}
