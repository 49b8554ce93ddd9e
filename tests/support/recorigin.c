/*
 * Test support: the recording origin (see recorigin.h for the contract).
 *
 * The serving thread runs one poll loop over the listening socket, a wake-up pipe and the open
 * connections. Reads append to the connection's buffer (grown by doubling up to
 * TBT_REC_MAX_BYTES); after each read the bytes past `answered` are parsed with tbt_rec_parse
 * and every complete request gets TBT_REC_RESPONSE (a blocking write of 80 bytes to a loopback
 * peer that reads: it never blocks for long). Every change happens under the mutex and bumps
 * last_activity_ms. tbt_recorigin_settle waits until no socket has anything left for the thread
 * (a poll with no timeout, under the mutex) and nothing happened for a short quiet period: bytes
 * tbproxy wrote before it answered its client are already queued on the loopback socket when
 * the test gets that answer, so once they are all read the recorder has seen them, however late
 * a loaded machine schedules its thread.
 *
 * The parser walks a cursor over the bytes with one helper per element (line, field, chunk);
 * each returns 1 (done), 0 (the bytes end first) or -1 (not what tbproxy may write).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "recorigin.h"

#define POLL_MS 20
#define MAX_CL_DIGITS 18
#define MAX_CHUNK_DIGITS 15

/* --- the parser ------------------------------------------------------------------------------- */

struct cur {
    const unsigned char *p;
    size_t len, off;
    char *why;
    size_t whylen;
};

static int bad(struct cur *c, const char *what)
{
    if (c->why != NULL && c->whylen > 0)
        snprintf(c->why, c->whylen, "%s at byte %zu", what, c->off);
    return -1;
}

static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int is_hexdig(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    return (ch | 0x20) - 'a' + 10;
}

/* The next line (without its CRLF) as [*s, *s + *n); the cursor moves past the CRLF. A bare CR
 * or LF anywhere is an error, also in an unfinished line. */
static int line(struct cur *c, const unsigned char **s, size_t *n)
{
    const unsigned char *start = c->p + c->off;
    size_t left = c->len - c->off, i;

    for (i = 0; i < left; i++) {
        if (start[i] == '\n')
            return bad(c, "bare LF");
        if (start[i] != '\r')
            continue;
        if (i + 1 == left)
            return 0;
        if (start[i + 1] != '\n')
            return bad(c, "bare CR");
        *s = start;
        *n = i;
        c->off += i + 2;
        return 1;
    }
    return 0;
}

static int eq_nocase(const unsigned char *s, size_t n, const char *lower)
{
    size_t i;

    if (strlen(lower) != n)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        if (ch != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* "name: value" with a token name, value bytes HTAB / SP / VCHAR / obs-text, optional OWS. */
static int field(struct cur *c, const unsigned char *s, size_t n, const unsigned char **name,
                 size_t *name_len, const unsigned char **value, size_t *value_len)
{
    size_t i = 0, end;

    while (i < n && is_tchar(s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ':')
        return bad(c, "field name");
    *name = s;
    *name_len = i;
    for (i++; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    for (end = n; end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'); end--)
        ;
    *value = s + i;
    *value_len = end - i;
    for (; i < n; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return bad(c, "control byte in a field value");
    return 1;
}

static int request_line(struct cur *c, struct tbt_rec_request *rq)
{
    static const char version[] = " HTTP/1.1";
    const unsigned char *s;
    size_t n, i = 0, t;
    int rc = line(c, &s, &n);

    if (rc <= 0)
        return rc;
    while (i < n && is_tchar(s[i]))
        i++;
    if (i == 0 || i == n || s[i] != ' ')
        return bad(c, "method");
    snprintf(rq->method, sizeof(rq->method), "%.*s", (int)i, (const char *)s);
    t = ++i;
    while (i < n && s[i] > 0x20 && s[i] < 0x7f)
        i++;
    if (i == t)
        return bad(c, "request-target");
    snprintf(rq->target, sizeof(rq->target), "%.*s", (int)(i - t), (const char *)s + t);
    if (n - i != sizeof(version) - 1 || memcmp(s + i, version, n - i) != 0)
        return bad(c, "not \" HTTP/1.1\" after the target");
    return 1;
}

/* Framing fields of the head: exactly one Host, at most one Content-Length (digits) and one
 * Transfer-Encoding ("chunked"), not both. */
struct framing {
    size_t hosts, lengths, codings;
    unsigned long long length;
};

static int framing_field(struct cur *c, struct framing *f, const unsigned char *name,
                         size_t name_len, const unsigned char *v, size_t vn)
{
    size_t i;

    if (eq_nocase(name, name_len, "host")) {
        f->hosts++;
        return 1;
    }
    if (eq_nocase(name, name_len, "transfer-encoding")) {
        f->codings++;
        if (vn != 7 || memcmp(v, "chunked", 7) != 0)
            return bad(c, "Transfer-Encoding other than \"chunked\"");
        return 1;
    }
    if (!eq_nocase(name, name_len, "content-length"))
        return 1;
    f->lengths++;
    if (vn == 0 || vn > MAX_CL_DIGITS)
        return bad(c, "Content-Length");
    f->length = 0;
    for (i = 0; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9')
            return bad(c, "Content-Length");
        f->length = f->length * 10 + (unsigned)(v[i] - '0');
    }
    return 1;
}

/* Field lines up to the empty line. head: apply the framing rules; else (trailers): no framing
 * or routing field at all. */
static int fields(struct cur *c, int head, struct framing *f, size_t *count)
{
    for (;;) {
        const unsigned char *s, *name, *value;
        size_t n, name_len, value_len;
        int rc = line(c, &s, &n);

        if (rc <= 0)
            return rc;
        if (n == 0)
            return 1;
        if (field(c, s, n, &name, &name_len, &value, &value_len) < 0)
            return -1;
        (*count)++;
        if (head && framing_field(c, f, name, name_len, value, value_len) < 0)
            return -1;
        if (!head &&
            (eq_nocase(name, name_len, "content-length") ||
             eq_nocase(name, name_len, "transfer-encoding") || eq_nocase(name, name_len, "host")))
            return bad(c, "framing or routing field in trailers");
    }
}

/* A chunked body, trailers included. */
static int chunked_body(struct cur *c, struct tbt_rec_request *rq)
{
    for (;;) {
        const unsigned char *s;
        unsigned long long size = 0;
        size_t n, i;
        int rc = line(c, &s, &n);

        if (rc <= 0)
            return rc;
        if (n == 0 || n > MAX_CHUNK_DIGITS)
            return bad(c, "chunk size");
        for (i = 0; i < n; i++) {
            if (!is_hexdig(s[i]))
                return bad(c, "chunk size (extension or whitespace)");
            size = size * 16 + (unsigned)hexval(s[i]);
        }
        if (size == 0) {
            rq->trailers_off = c->off;
            rc = fields(c, 0, NULL, &rq->n_trailers);
            rq->trailers_len = rc > 0 ? c->off - 2 - rq->trailers_off : 0;
            return rc;
        }
        if (c->len - c->off < size + 2)
            return 0;
        c->off += size;
        rq->body_len += size;
        if (c->p[c->off] != '\r' || c->p[c->off + 1] != '\n')
            return bad(c, "no CRLF after chunk data");
        c->off += 2;
    }
}

long tbt_rec_parse(const unsigned char *data, size_t len, struct tbt_rec_request *rq, char *why,
                   size_t whylen)
{
    struct cur c = {data, len, 0, why, whylen};
    struct framing f = {0};
    int rc;

    memset(rq, 0, sizeof(*rq));
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if ((rc = request_line(&c, rq)) <= 0 || (rc = fields(&c, 1, &f, &rq->n_fields)) <= 0)
        return rc;
    rq->head_len = c.off;
    if (f.hosts != 1)
        return bad(&c, "not exactly one Host");
    if (f.lengths > 1 || f.codings > 1 || (f.lengths > 0 && f.codings > 0))
        return bad(&c, "more than one framing field");
    if (f.codings > 0) {
        rq->chunked = 1;
        rc = chunked_body(&c, rq);
        return rc <= 0 ? rc : (long)c.off;
    }
    if (f.lengths > 0) {
        rq->has_length = 1;
        if (f.length > len - c.off)
            return 0;
        rq->body_len = (size_t)f.length;
        c.off += (size_t)f.length;
    }
    return (long)c.off;
}

int tbt_rec_has_field(const char *text, size_t len, const char *name)
{
    size_t off = 0, n = strlen(name);

    while (off < len) {
        const char *eol = memchr(text + off, '\n', len - off);
        size_t end = eol != NULL ? (size_t)(eol - text) : len, i;

        for (i = 0; i < n && off + i < end; i++) {
            char a = text[off + i], b = name[i];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            if (a != b)
                break;
        }
        if (i == n && off + n < end && text[off + n] == ':')
            return 1;
        off = end + 1;
    }
    return 0;
}

/* --- the serving thread ----------------------------------------------------------------------- */

static void touch(struct tbt_recorigin *r)
{
    r->last_activity_ms = tbt_now_ms();
}

static void conn_close(struct tbt_rec_conn *k)
{
    if (k->fd != -1) {
        close(k->fd);
        k->fd = -1;
    }
}

static void conn_bad(struct tbt_rec_conn *k, const char *why)
{
    if (!k->bad) {
        k->bad = 1;
        snprintf(k->why, sizeof(k->why), "%s", why);
    }
    conn_close(k);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the proxy went away: its problem, seen in the view */
        p += w;
        n -= (size_t)w;
    }
}

/* Answer every complete request past `answered`; close on bytes that are not a request. */
static void answer(struct tbt_rec_conn *k)
{
    struct tbt_rec_request rq;
    char why[128];

    while (k->fd != -1 && k->answered < k->len) {
        long n = tbt_rec_parse(k->buf + k->answered, k->len - k->answered, &rq, why, sizeof(why));

        if (n == 0)
            return;
        if (n < 0) {
            conn_bad(k, why);
            return;
        }
        k->answered += (size_t)n;
        write_all(k->fd, TBT_REC_RESPONSE, sizeof(TBT_REC_RESPONSE) - 1);
    }
}

static void conn_read(struct tbt_rec_conn *k)
{
    ssize_t n;

    if (k->cap - k->len < 4096) {
        size_t ncap = k->cap == 0 ? 16384 : k->cap * 2;
        unsigned char *p;

        if (ncap > TBT_REC_MAX_BYTES) {
            conn_bad(k, "more bytes than the recorder keeps");
            return;
        }
        if ((p = realloc(k->buf, ncap)) == NULL) {
            conn_bad(k, "out of memory");
            return;
        }
        k->buf = p;
        k->cap = ncap;
    }
    n = recv(k->fd, k->buf + k->len, k->cap - k->len, 0);
    if (n == -1 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        conn_close(k);
        return;
    }
    k->len += (size_t)n;
    answer(k);
}

static void do_accept(struct tbt_recorigin *r)
{
    int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
    struct tbt_rec_conn *k;

    if (fd == -1)
        return;
    if (r->n_conns == TBT_REC_MAX_CONNS) {
        close(fd);
        r->refused++;
        return;
    }
    k = &r->conns[r->n_conns++];
    memset(k, 0, sizeof(*k));
    k->fd = fd;
}

/* The connection reading from fd (mark() may have moved it since the poll set was built). */
static struct tbt_rec_conn *by_fd(struct tbt_recorigin *r, int fd)
{
    size_t i;

    for (i = 0; i < r->n_conns; i++)
        if (r->conns[i].fd == fd)
            return &r->conns[i];
    return NULL;
}

static void *serve(void *arg)
{
    struct tbt_recorigin *r = arg;
    struct pollfd pfd[TBT_REC_MAX_CONNS + 2];

    for (;;) {
        size_t n = 2, i;

        pthread_mutex_lock(&r->mu);
        pfd[0] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
        for (i = 0; i < r->n_conns; i++)
            if (r->conns[i].fd != -1)
                pfd[n++] = (struct pollfd){.fd = r->conns[i].fd, .events = POLLIN};
        pthread_mutex_unlock(&r->mu);
        if (poll(pfd, n, POLL_MS) == -1 && errno != EINTR)
            return NULL;
        if (pfd[0].revents != 0)
            return NULL;
        pthread_mutex_lock(&r->mu);
        for (i = 2; i < n; i++) {
            struct tbt_rec_conn *k = pfd[i].revents != 0 ? by_fd(r, pfd[i].fd) : NULL;

            if (k != NULL) {
                conn_read(k);
                touch(r);
            }
        }
        if (pfd[1].revents != 0) {
            do_accept(r);
            touch(r);
        }
        pthread_mutex_unlock(&r->mu);
    }
}

/* --- the test's side -------------------------------------------------------------------------- */

int tbt_recorigin_start(struct tbt_recorigin *r, char *err, size_t errlen)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int ret = -1;

    memset(r, 0, sizeof(*r));
    r->lfd = r->wake[0] = r->wake[1] = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(r->lfd, 128) == -1 ||
        getsockname(r->lfd, (struct sockaddr *)&a, &alen) == -1 ||
        pipe2(r->wake, O_CLOEXEC) == -1) {
        snprintf(err, errlen, "recording origin: %s", strerror(errno));
        goto Exit;
    }
    r->port = ntohs(a.sin_port);
    pthread_mutex_init(&r->mu, NULL);
    touch(r);
    if (pthread_create(&r->thread, NULL, serve, r) != 0) {
        snprintf(err, errlen, "recording origin: pthread_create failed");
        pthread_mutex_destroy(&r->mu);
        goto Exit;
    }
    r->running = 1;
    ret = 0;
Exit:
    if (ret != 0) {
        if (r->lfd != -1)
            close(r->lfd);
        if (r->wake[0] != -1)
            close(r->wake[0]);
        if (r->wake[1] != -1)
            close(r->wake[1]);
        memset(r, 0, sizeof(*r));
    }
    return ret;
}

void tbt_recorigin_stop(struct tbt_recorigin *r)
{
    size_t i;

    if (!r->running)
        return;
    (void)!write(r->wake[1], "x", 1);
    pthread_join(r->thread, NULL);
    for (i = 0; i < r->n_conns; i++) {
        conn_close(&r->conns[i]);
        free(r->conns[i].buf);
    }
    close(r->lfd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    memset(r, 0, sizeof(*r));
}

void tbt_recorigin_mark(struct tbt_recorigin *r)
{
    size_t i, kept = 0;

    pthread_mutex_lock(&r->mu);
    for (i = 0; i < r->n_conns; i++) {
        struct tbt_rec_conn *k = &r->conns[i];

        if (k->fd == -1) {
            free(k->buf);
            continue;
        }
        k->mark = k->len;
        r->conns[kept++] = *k;
    }
    r->n_conns = kept;
    r->refused = 0;
    pthread_mutex_unlock(&r->mu);
}

/* Bytes, a FIN or a connection wait in the kernel for the serving thread. Called with the mutex
 * held: the thread reads under it, so what it has taken from a socket is in our buffers. */
static int kernel_busy(struct tbt_recorigin *r)
{
    struct pollfd pfd[TBT_REC_MAX_CONNS + 1];
    size_t n = 0, i;

    pfd[n++] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
    for (i = 0; i < r->n_conns; i++)
        if (r->conns[i].fd != -1)
            pfd[n++] = (struct pollfd){.fd = r->conns[i].fd, .events = POLLIN};
    return poll(pfd, n, 0) != 0;
}

int tbt_recorigin_settle(struct tbt_recorigin *r, int quiet_ms, int max_ms)
{
    long long start = tbt_now_ms();
    struct timespec nap = {0, 2 * 1000 * 1000};

    for (;;) {
        long long now = tbt_now_ms(), last;
        int busy;

        pthread_mutex_lock(&r->mu);
        last = r->last_activity_ms;
        busy = kernel_busy(r);
        pthread_mutex_unlock(&r->mu);
        if (!busy && now - last >= quiet_ms)
            return 0;
        if (now - start >= max_ms)
            return -1;
        nanosleep(&nap, NULL);
    }
}

/* Printable text of data[0..n) into out (cap > 0): bytes outside 0x20..0x7e as \xHH. */
static void escape(char *out, size_t cap, const unsigned char *data, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 5 < cap; i++) {
        if (data[i] >= 0x20 && data[i] < 0x7f && data[i] != '\\')
            out[o++] = (char)data[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", data[i]);
    }
    out[o] = '\0';
}

/* Add one connection's bytes since its mark to the view. */
static void view_conn(const struct tbt_rec_conn *k, struct tbt_rec_view *v)
{
    size_t off = k->mark;
    char why[128];

    if (k->len == k->mark)
        return;
    v->n_conns++;
    v->total_bytes += k->len - k->mark;
    while (off < k->len) {
        struct tbt_rec_request rq;
        long n = tbt_rec_parse(k->buf + off, k->len - off, &rq, why, sizeof(why));

        if (n < 0) {
            v->n_bad++;
            if (v->why[0] == '\0')
                snprintf(v->why, sizeof(v->why), "byte %zu of the view: %s", off - k->mark, why);
            return;
        }
        if (n == 0) {
            if (v->n_incomplete == 0)
                escape(v->unfinished, sizeof(v->unfinished), k->buf + off, k->len - off);
            v->n_incomplete++;
            v->incomplete_open += k->fd != -1;
            return;
        }
        if (!v->has_first) {
            size_t hl =
                rq.head_len < sizeof(v->first_head) ? rq.head_len : sizeof(v->first_head) - 1;
            size_t tl = rq.trailers_len < sizeof(v->first_trailers) ? rq.trailers_len
                                                                    : sizeof(v->first_trailers) - 1;

            v->has_first = 1;
            v->first = rq;
            memcpy(v->first_head, k->buf + off, hl);
            v->first_head[hl] = '\0';
            memcpy(v->first_trailers, k->buf + off + rq.trailers_off, tl);
            v->first_trailers[tl] = '\0';
        }
        v->n_requests++;
        off += (size_t)n;
    }
    if (k->bad && v->why[0] == '\0') {
        v->n_bad++;
        snprintf(v->why, sizeof(v->why), "%s", k->why);
    }
}

void tbt_recorigin_view(struct tbt_recorigin *r, struct tbt_rec_view *v)
{
    size_t i;

    memset(v, 0, sizeof(*v));
    pthread_mutex_lock(&r->mu);
    for (i = 0; i < r->n_conns; i++)
        view_conn(&r->conns[i], v);
    v->refused = r->refused;
    pthread_mutex_unlock(&r->mu);
}
