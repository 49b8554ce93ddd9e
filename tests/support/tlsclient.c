/*
 * Test support: a blocking TLS + HTTP/1.1 test client (see tlsclient.h for the contract).
 *
 * The socket is blocking; before every SSL_read / SSL_write its SO_RCVTIMEO / SO_SNDTIMEO is set
 * to what is left of the operation's deadline, so OpenSSL sees EAGAIN when time runs out
 * (SSL_ERROR_WANT_READ / _WRITE on a blocking socket) and the loop gives up at the deadline.
 * SSL_OP_IGNORE_UNEXPECTED_EOF makes a plain FIN from the server an ordinary end of stream:
 * a proxy that drops a connection after a 400 need not send close_notify.
 *
 * Received bytes are kept in c->rbuf; the response reader consumes from its front, so bytes of
 * a pipelined next response stay for the next call. Each SSL_read takes at most READ_CHUNK bytes,
 * so what is moved on consumption stays small.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tb/base64url.h"
#include "tb/channel.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tb/sign.h"
#include "tb/tlsext.h"
#include "tlsclient.h"

#define READ_CHUNK 16384
#define MAX_LINE 4096 /* a chunk-size line or a trailer line */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets the socket's receive and send timeouts to what is left until deadline (at least 1 ms). */
static void set_timeouts(int fd, long long deadline)
{
    long long left = deadline - now_ms();
    struct timeval tv;

    if (left < 1)
        left = 1;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The reason on top of the OpenSSL error queue, or the errno text, or fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (r != NULL)
        return r;
    return errno != 0 ? strerror(errno) : fallback;
}

int tbt_alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t len = 0;

    while (*list != '\0') {
        const char *comma = strchr(list, ',');
        size_t n = comma != NULL ? (size_t)(comma - list) : strlen(list);

        if (n == 0 || n > 255 || len + 1 + n > cap)
            return -1;
        out[len++] = (unsigned char)n;
        memcpy(out + len, list, n);
        len += n;
        list += n + (comma != NULL);
    }
    return (int)len;
}

static SSL_CTX *make_ctx(const struct tbt_tls_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    unsigned char alpn[512];
    int alen;

    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ssl_reason("failed"));
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (o->no_ems ? SSL_OP_NO_EXTENDED_MASTER_SECRET : 0));
    /* no client-side cache: freeing a context flushes its cache, and a flushed session is marked
     * not resumable, which would spoil the session a test keeps for a later connection */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1) {
        snprintf(err, errlen, "bad TLS version %#x", (unsigned)o->max_version);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->cert != NULL &&
        (SSL_CTX_use_certificate(ctx, o->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, o->key) != 1)) {
        snprintf(err, errlen, "client certificate: %s", ssl_reason("does not load"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->tb_ext != NULL && tb_ext_client_ctx_init(ctx) != 0) {
        snprintf(err, errlen, "tb_ext_client_ctx_init failed");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->alpn != NULL) {
        alen = tbt_alpn_wire(o->alpn, alpn, sizeof(alpn));
        /* SSL_CTX_set_alpn_protos returns 0 on success */
        if (alen <= 0 || SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alen) != 0) {
            snprintf(err, errlen, "bad ALPN list \"%s\"", o->alpn);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

static int tcp_connect(uint16_t port, long long deadline, char *err, size_t errlen)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    set_timeouts(fd, deadline);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
        snprintf(err, errlen, "connect 127.0.0.1:%u: %s", (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int handshake(struct tbt_tls *c, long long deadline)
{
    for (;;) {
        int r, e;

        ERR_clear_error();
        errno = 0;
        set_timeouts(c->fd, deadline);
        r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && now_ms() < deadline)
            continue;
        snprintf(c->err, sizeof(c->err), "TLS handshake failed: %s (SSL_get_error %d)",
                 e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                     ? "timeout"
                     : ssl_reason("connection closed"),
                 e);
        return -1;
    }
}

static void record_negotiated(struct tbt_tls *c)
{
    const unsigned char *alpn = NULL;
    unsigned alen = 0;

    c->version = SSL_version(c->ssl);
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen >= sizeof(c->alpn))
        alen = sizeof(c->alpn) - 1;
    if (alen > 0)
        memcpy(c->alpn, alpn, alen);
    c->alpn[alen] = '\0';
    c->reused = SSL_session_reused(c->ssl) ? 1 : 0;
    c->ems = SSL_get_extms_support(c->ssl) == 1;
    c->has_tls_unique =
        tb_channel_tls_unique(c->ssl, c->tls_unique, sizeof(c->tls_unique)) == TB_TLS_UNIQUE_LEN;
    c->reneg = SSL_get_secure_renegotiation_support(c->ssl) == 1;
    c->has_ekm = tb_channel_ekm(c->ssl, c->ekm, sizeof(c->ekm)) == TB_EKM_LEN;
    c->tb_rfc_result = tb_ext_client_result(c->ssl, &c->tb_answer);
    c->tb_rfc = c->tb_rfc_result == 0;
    ERR_clear_error();
}

int tbt_tls_connect(struct tbt_tls *c, uint16_t port, const struct tbt_tls_opts *opts)
{
    static const struct tbt_tls_opts defaults;
    const struct tbt_tls_opts *o = opts != NULL ? opts : &defaults;
    long long deadline;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : TBT_TLS_TIMEOUT_MS;
    deadline = now_ms() + c->timeout_ms;
    signal(SIGPIPE, SIG_IGN);
    if ((c->ctx = make_ctx(o, c->err, sizeof(c->err))) == NULL)
        return -1;
    if ((c->fd = tcp_connect(port, deadline, c->err, sizeof(c->err))) == -1)
        goto Fail;
    if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, "localhost") != 1 ||
        (o->resume != NULL && SSL_set_session(c->ssl, o->resume) != 1) ||
        (o->tb_ext != NULL && tb_ext_client_offer(c->ssl, o->tb_ext) != 0)) {
        snprintf(c->err, sizeof(c->err), "SSL setup: %s", ssl_reason("failed"));
        goto Fail;
    }
    if (handshake(c, deadline) != 0)
        goto Fail;
    record_negotiated(c);
    return 0;
Fail : {
    char keep[sizeof(c->err)];

    memcpy(keep, c->err, sizeof(keep));
    SSL_free(c->ssl);
    c->ssl = NULL;
    tbt_tls_close(c);
    memcpy(c->err, keep, sizeof(keep));
}
    return -1;
}

void tbt_tls_close(struct tbt_tls *c)
{
    if (c->ssl != NULL) {
        if (!c->eof && SSL_is_init_finished(c->ssl)) {
            set_timeouts(c->fd, now_ms() + 1000);
            ERR_clear_error();
            SSL_shutdown(c->ssl); /* close_notify; the peer's is not awaited */
        }
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    /* a zeroed struct (never connected) has fd 0: only close what a connect opened */
    if (c->fd != -1 && (c->ctx != NULL || c->ssl != NULL))
        close(c->fd);
    SSL_CTX_free(c->ctx);
    free(c->rbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

SSL_SESSION *tbt_tls_session(struct tbt_tls *c)
{
    return c->ssl != NULL ? SSL_get1_session(c->ssl) : NULL;
}

int tbt_tls_send(struct tbt_tls *c, const void *buf, size_t len)
{
    long long deadline = now_ms() + c->timeout_ms;
    const unsigned char *p = buf;

    if (c->ssl == NULL) {
        snprintf(c->err, sizeof(c->err), "send on a closed connection");
        return -1;
    }
    while (len > 0) {
        int chunk = len > (1u << 20) ? (1 << 20) : (int)len, r, e;

        ERR_clear_error();
        errno = 0;
        set_timeouts(c->fd, deadline);
        r = SSL_write(c->ssl, p, chunk);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && now_ms() < deadline)
            continue; /* same arguments again, as OpenSSL requires */
        snprintf(c->err, sizeof(c->err), "send: %s",
                 e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                     ? "timeout"
                     : ssl_reason("connection closed"));
        return -1;
    }
    return 0;
}

int tbt_tls_send_str(struct tbt_tls *c, const char *s)
{
    return tbt_tls_send(c, s, strlen(s));
}

/* --- reading ---------------------------------------------------------------------------------- */

/*
 * Reads more bytes into c->rbuf, waiting until deadline. Returns the count (> 0), 0 at end of
 * stream (c->eof set: close_notify, FIN, reset or a fatal alert; c->err says which), -1 on
 * timeout or when the buffer would exceed cap bytes (c->err).
 */
static int fill(struct tbt_tls *c, long long deadline, size_t cap)
{
    if (c->eof)
        return 0;
    if (c->ssl == NULL) {
        snprintf(c->err, sizeof(c->err), "read on a closed connection");
        return -1;
    }
    if (c->rlen >= cap) {
        snprintf(c->err, sizeof(c->err), "more than %zu bytes buffered", cap);
        return -1;
    }
    if (c->rcap - c->rlen < READ_CHUNK) {
        size_t ncap = c->rlen + READ_CHUNK + 1;
        unsigned char *p = realloc(c->rbuf, ncap);

        if (p == NULL) {
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
        c->rbuf = p;
        c->rcap = ncap;
    }
    for (;;) {
        int r, e;

        ERR_clear_error();
        errno = 0;
        set_timeouts(c->fd, deadline);
        r = SSL_read(c->ssl, c->rbuf + c->rlen, READ_CHUNK);
        if (r > 0) {
            c->rlen += (size_t)r;
            return r;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
            (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            if (now_ms() < deadline)
                continue;
            snprintf(c->err, sizeof(c->err), "timeout");
            return -1;
        }
        c->eof = 1;
        if (e == SSL_ERROR_ZERO_RETURN)
            snprintf(c->err, sizeof(c->err), "closed by the server");
        else if (e == SSL_ERROR_SYSCALL)
            snprintf(c->err, sizeof(c->err), "closed by the server (%s)",
                     errno != 0 ? strerror(errno) : "EOF");
        else
            snprintf(c->err, sizeof(c->err), "TLS error: %s", ssl_reason("unknown"));
        return 0;
    }
}

static void consume(struct tbt_tls *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

/* Waits until at least n bytes are buffered. 0, or -1 (c->err). */
static int need(struct tbt_tls *c, size_t n, long long deadline)
{
    while (c->rlen < n) {
        int r = fill(c, deadline, n + READ_CHUNK);

        if (r == 0) {
            snprintf(c->err + strlen(c->err), sizeof(c->err) - strlen(c->err),
                     " before the response ended");
            return -1;
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

/*
 * Offset of the first occurrence of pat in the buffer, waiting for it up to max bytes.
 * Returns the offset, or -1 (c->err).
 */
static long find(struct tbt_tls *c, const char *pat, size_t max, long long deadline)
{
    size_t plen = strlen(pat), from = 0;

    for (;;) {
        const unsigned char *hit = NULL;
        int r;

        if (c->rlen >= plen)
            hit = memmem(c->rbuf + from, c->rlen - from, pat, plen);
        if (hit != NULL)
            return (long)(hit - c->rbuf);
        if (c->rlen >= max) {
            snprintf(c->err, sizeof(c->err), "no end of line / header section within %zu bytes",
                     max);
            return -1;
        }
        from = c->rlen >= plen ? c->rlen - plen + 1 : 0;
        r = fill(c, deadline, max + READ_CHUNK);
        if (r == 0) {
            snprintf(c->err + strlen(c->err), sizeof(c->err) - strlen(c->err),
                     " before the response ended");
            return -1;
        }
        if (r < 0)
            return -1;
    }
}

void tbt_http_response_dispose(struct tbt_http_response *r)
{
    free(r->head);
    free(r->fields);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Parses r->head (status line + fields, CRLF separated, without the final empty line). */
static int parse_head(struct tbt_http_response *r, char *err, size_t errlen)
{
    char *line, *next, *colon;
    int n = 0;

    if (sscanf(r->head, "HTTP/1.%d %3d%n", &r->minor, &r->status, &n) != 2 || n != 12 ||
        r->status < 100 || r->status > 599 || (r->head[n] != ' ' && r->head[n] != '\r')) {
        snprintf(err, errlen, "bad status line: %.80s", r->head);
        return -1;
    }
    if ((r->fields = strdup(r->head)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    line = strstr(r->fields, "\r\n");
    for (line = line != NULL ? line + 2 : NULL; line != NULL && *line != '\0'; line = next) {
        next = strstr(line, "\r\n");
        if (next != NULL) {
            *next = '\0';
            next += 2;
        }
        colon = strchr(line, ':');
        if (colon == NULL || colon == line || strcspn(line, " \t") < (size_t)(colon - line)) {
            snprintf(err, errlen, "bad header field: %.80s", line);
            return -1;
        }
        if (r->n_headers == TBT_HTTP_MAX_HEADERS) {
            snprintf(err, errlen, "more than %d header fields", TBT_HTTP_MAX_HEADERS);
            return -1;
        }
        *colon = '\0';
        r->headers[r->n_headers].name = line;
        r->headers[r->n_headers].value = trim(colon + 1);
        r->n_headers++;
    }
    return 0;
}

const char *tbt_http_header(const struct tbt_http_response *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t tbt_http_header_count(const struct tbt_http_response *r, const char *name)
{
    size_t i, n = 0;

    for (i = 0; i < r->n_headers; i++)
        n += strcasecmp(r->headers[i].name, name) == 0;
    return n;
}

int tbt_http_header_has(const struct tbt_http_response *r, const char *name, const char *token)
{
    size_t i, tlen = strlen(token);

    for (i = 0; i < r->n_headers; i++) {
        const char *v = r->headers[i].value;

        if (strcasecmp(r->headers[i].name, name) != 0)
            continue;
        while (*v != '\0') {
            size_t n;

            while (*v == ' ' || *v == '\t' || *v == ',')
                v++;
            n = strcspn(v, ",");
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (n == tlen && strncasecmp(v, token, tlen) == 0)
                return 1;
            v += strcspn(v, ",");
        }
    }
    return 0;
}

/* Appends n bytes to the body, keeping it NUL-terminated and within max. */
static int body_append(struct tbt_http_response *r, size_t *cap, const void *p, size_t n,
                       size_t max, char *err, size_t errlen)
{
    if (r->body_len + n > max) {
        snprintf(err, errlen, "body over %zu bytes", max);
        return -1;
    }
    if (r->body_len + n + 1 > *cap) {
        size_t ncap = (*cap ? *cap : 4096);
        unsigned char *b;

        while (ncap < r->body_len + n + 1)
            ncap *= 2;
        if ((b = realloc(r->body, ncap)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        r->body = b;
        *cap = ncap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static int read_fixed(struct tbt_tls *c, struct tbt_http_response *r, size_t *cap,
                      unsigned long long len, size_t max, long long deadline)
{
    if (len > max) {
        snprintf(c->err, sizeof(c->err), "Content-Length %llu over the cap %zu", len, max);
        return -1;
    }
    while (len > 0) {
        size_t n;

        if (c->rlen == 0 && need(c, 1, deadline) != 0)
            return -1;
        n = c->rlen < len ? c->rlen : (size_t)len;
        if (body_append(r, cap, c->rbuf, n, max, c->err, sizeof(c->err)) != 0)
            return -1;
        consume(c, n);
        len -= n;
    }
    return 0;
}

static int read_chunked(struct tbt_tls *c, struct tbt_http_response *r, size_t *cap, size_t max,
                        long long deadline)
{
    for (;;) {
        char line[MAX_LINE], *end;
        unsigned long long size;
        long eol = find(c, "\r\n", MAX_LINE, deadline);

        if (eol < 0)
            return -1;
        memcpy(line, c->rbuf, (size_t)eol);
        line[eol] = '\0';
        consume(c, (size_t)eol + 2);
        errno = 0;
        size = strtoull(line, &end, 16);
        if (end == line || errno != 0 || (*end != '\0' && *end != ';' && *end != ' ')) {
            snprintf(c->err, sizeof(c->err), "bad chunk size line \"%.40s\"", line);
            return -1;
        }
        if (size == 0)
            break;
        if (size > max || read_fixed(c, r, cap, size, max, deadline) != 0) {
            if (size > max)
                snprintf(c->err, sizeof(c->err), "chunk of %llu bytes over the cap", size);
            return -1;
        }
        if (need(c, 2, deadline) != 0)
            return -1;
        if (memcmp(c->rbuf, "\r\n", 2) != 0) {
            snprintf(c->err, sizeof(c->err), "chunk data not followed by CRLF");
            return -1;
        }
        consume(c, 2);
    }
    for (;;) { /* trailer fields, up to the empty line */
        long eol = find(c, "\r\n", MAX_LINE, deadline);

        if (eol < 0)
            return -1;
        consume(c, (size_t)eol + 2);
        if (eol == 0)
            return 0;
    }
}

static int read_until_close(struct tbt_tls *c, struct tbt_http_response *r, size_t *cap, size_t max,
                            long long deadline)
{
    for (;;) {
        int n;

        if (c->rlen > 0) {
            if (body_append(r, cap, c->rbuf, c->rlen, max, c->err, sizeof(c->err)) != 0)
                return -1;
            consume(c, c->rlen);
        }
        n = fill(c, deadline, READ_CHUNK + 1);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
    }
}

/* Reads the body that r's header section announces. */
static int read_body(struct tbt_tls *c, struct tbt_http_response *r, int head_request, size_t max,
                     long long deadline)
{
    const char *te = tbt_http_header(r, "Transfer-Encoding");
    const char *cl = tbt_http_header(r, "Content-Length");
    size_t cap = 0;
    unsigned char empty = 0;

    if (body_append(r, &cap, &empty, 0, max, c->err, sizeof(c->err)) != 0)
        return -1; /* an empty, NUL-terminated body to start with */
    if (head_request || r->status == 204 || r->status == 304 || r->status < 200)
        return 0;
    if (te != NULL) {
        if (!tbt_http_header_has(r, "Transfer-Encoding", "chunked")) {
            snprintf(c->err, sizeof(c->err), "Transfer-Encoding \"%s\" without chunked", te);
            return -1;
        }
        if (cl != NULL) {
            snprintf(c->err, sizeof(c->err), "both Transfer-Encoding and Content-Length");
            return -1;
        }
        r->chunked = 1;
        return read_chunked(c, r, &cap, max, deadline);
    }
    if (cl != NULL) {
        char *end;
        unsigned long long len;

        errno = 0;
        len = strtoull(cl, &end, 10);
        if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-' ||
            tbt_http_header_count(r, "Content-Length") != 1) {
            snprintf(c->err, sizeof(c->err), "bad Content-Length \"%s\"", cl);
            return -1;
        }
        return read_fixed(c, r, &cap, len, max, deadline);
    }
    r->until_close = 1;
    return read_until_close(c, r, &cap, max, deadline);
}

int tbt_tls_read_response(struct tbt_tls *c, struct tbt_http_response *r, int head_request,
                          size_t max_body)
{
    long long deadline = now_ms() + c->timeout_ms;
    size_t max = max_body > 0 ? max_body : TBT_HTTP_DEFAULT_MAX_BODY;

    for (;;) {
        long end;

        tbt_http_response_dispose(r);
        if ((end = find(c, "\r\n\r\n", TBT_HTTP_MAX_HEAD, deadline)) < 0)
            return -1;
        if ((r->head = malloc((size_t)end + 1)) == NULL) {
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
        memcpy(r->head, c->rbuf, (size_t)end);
        r->head[end] = '\0';
        consume(c, (size_t)end + 4);
        if (strlen(r->head) != (size_t)end) {
            snprintf(c->err, sizeof(c->err), "NUL byte in the header section");
            return -1;
        }
        if (parse_head(r, c->err, sizeof(c->err)) != 0)
            return -1;
        if (r->status >= 200 || r->status == 101)
            break;
    }
    return read_body(c, r, head_request, max, deadline);
}

int tbt_tls_peer_closed(struct tbt_tls *c, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int r;

    if (c->rlen > 0)
        return -1;
    r = fill(c, deadline, READ_CHUNK + 1);
    if (r > 0)
        return -1;
    return r == 0 ? 1 : 0;
}

/* --- Token Binding ---------------------------------------------------------------------------- */

int tbt_tb_header(int key_params, EVP_PKEY *key, int referred_params, EVP_PKEY *referred_key,
                  const uint8_t *channel, size_t channel_len, char *out, size_t cap, char *err,
                  size_t errlen)
{
    return tbt_tb_header_v(TB_VERSION_DRAFT, key_params, key, referred_params, referred_key,
                           channel, channel_len, out, cap, err, errlen);
}

int tbt_tb_header_v(enum tb_version version, int key_params, EVP_PKEY *key, int referred_params,
                    EVP_PKEY *referred_key, const uint8_t *channel, size_t channel_len, char *out,
                    size_t cap, char *err, size_t errlen)
{
    struct tb_builder *b = malloc(sizeof(*b));
    int rc, n = -1;

    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tb_builder_init(b, version);
    rc = tb_builder_add_signed(b, TB_TYPE_PROVIDED, key_params, key, channel, channel_len);
    if (rc == 0 && referred_key != NULL)
        rc = tb_builder_add_signed(b, TB_TYPE_REFERRED, referred_params, referred_key, channel,
                                   channel_len);
    if (rc != 0) {
        snprintf(err, errlen, "tb_builder_add_signed: %s", tb_strerror(rc));
        goto Exit;
    }
    n = tb_builder_header(b, out, cap);
    if (n < 0) {
        snprintf(err, errlen, "tb_builder_header: %s", tb_strerror(n));
        n = -1;
    }
Exit:
    free(b);
    return n;
}

int tbt_tls_tb_header(struct tbt_tls *c, int key_params, EVP_PKEY *key, int referred_params,
                      EVP_PKEY *referred_key, char *out, size_t cap)
{
    if (!c->has_tls_unique) {
        snprintf(c->err, sizeof(c->err), "no tls_unique on this connection (TLS %#x)",
                 (unsigned)c->version);
        return -1;
    }
    return tbt_tb_header(key_params, key, referred_params, referred_key, c->tls_unique,
                         sizeof(c->tls_unique), out, cap, c->err, sizeof(c->err));
}

int tbt_tls_tb_header_rfc(struct tbt_tls *c, int key_params, EVP_PKEY *key, int referred_params,
                          EVP_PKEY *referred_key, char *out, size_t cap)
{
    if (!c->has_ekm) {
        snprintf(c->err, sizeof(c->err), "no EKM on this connection");
        return -1;
    }
    return tbt_tb_header_v(TB_VERSION_RFC, key_params, key, referred_params, referred_key, c->ekm,
                           sizeof(c->ekm), out, cap, c->err, sizeof(c->err));
}

int tbt_tb_id_b64(int key_params, EVP_PKEY *key, char *out, size_t cap)
{
    return tbt_tb_id_b64_v(TB_VERSION_DRAFT, key_params, key, out, cap);
}

int tbt_tb_id_b64_v(enum tb_version version, int key_params, EVP_PKEY *key, char *out, size_t cap)
{
    uint8_t id[1024];
    int n = tb_id_encode(version, key_params, key, id, sizeof(id));

    if (n <= 0)
        return -1;
    n = tb_base64url_encode(id, (size_t)n, out, cap);
    return n > 0 ? n : -1;
}
