/*
 * A misbehaving HTTP/1.1 origin (see badorigin.h).
 *
 * One acceptor thread polls the listener (every 50 ms it also looks at the stop flag and joins
 * the connection threads that have ended); each connection gets a thread that reads requests
 * with blocking recv() under a 50 ms SO_RCVTIMEO, so it notices a stop or close_all within that
 * time, and writes with a 2 s SO_SNDTIMEO, so a proxy that stops reading cannot hang it.
 *
 * A connection's descriptor is closed only by its own thread, after it set the slot's fd to -1
 * under the mutex; close_all and stop only shutdown() descriptors under that mutex, so they can
 * never touch a number the kernel has handed out again. A shutdown done by us is flagged
 * (closing) so that the end of file it causes is not taken for the peer closing.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "badorigin.h"

#define RBUF_CAP (TBT_BAD_MAX_HEAD + 4096)
#define MAX_THREADS 2048 /* connections over the origin's life */

enum drop { DROP_NONE, DROP_FIN, DROP_RST };

/* One connection. */
struct slot {
    pthread_t th;
    int started;     /* th is a thread to join */
    int done;        /* the thread has finished (joinable at once) */
    int joined;      /* ... and was joined */
    int fd;          /* -1 once closed by its thread */
    int closing;     /* we shut it down: an end of file now is ours, not the peer's */
    int peer_closed; /* the peer closed or reset it while we read */
    unsigned id;     /* from 1 */
    struct tbt_badorigin *o;
};

struct tbt_badorigin {
    pthread_mutex_t mu;
    pthread_t acceptor;
    int acceptor_started;
    int lfd;
    enum tbt_bad_accept mode;
    int stop; /* read and written under mu */
    struct slot *slots[MAX_THREADS];
    size_t n_slots;
    size_t n_open;
    size_t n_rejected; /* connections closed at accept (TBT_BAD_ACCEPT_*) */
    struct tbt_bad_record *records;
    size_t n_records;
};

/* Reading state of one connection. */
struct rd {
    struct slot *s;
    char *buf;
    size_t len;
};

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int stopping(struct slot *s)
{
    int stop;

    pthread_mutex_lock(&s->o->mu);
    stop = s->o->stop || s->closing;
    pthread_mutex_unlock(&s->o->mu);
    return stop;
}

/* Closes the connection (a reset when rst); the slot's fd becomes -1 first. */
static void slot_close(struct slot *s, int rst)
{
    int fd;

    pthread_mutex_lock(&s->o->mu);
    fd = s->fd;
    s->fd = -1;
    if (fd != -1)
        s->o->n_open--;
    pthread_mutex_unlock(&s->o->mu);
    if (fd == -1)
        return;
    if (rst) {
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
}

/* One recv() into the buffer. >0: bytes read; 0: end of file or reset (peer_closed set unless
 * we caused it); -1: stop, or the buffer is full. Retries the receive timeout until a stop. */
static int rd_fill(struct rd *r)
{
    ssize_t n;

    for (;;) {
        if (stopping(r->s) || r->len >= RBUF_CAP)
            return -1;
        n = recv(r->s->fd, r->buf + r->len, RBUF_CAP - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            return (int)n;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        pthread_mutex_lock(&r->s->o->mu);
        if (!r->s->closing)
            r->s->peer_closed = 1;
        pthread_mutex_unlock(&r->s->o->mu);
        return 0;
    }
}

static void rd_consume(struct rd *r, size_t n)
{
    if (n > r->len)
        n = r->len;
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

/* Offset of needle in the buffer, or -1. */
static long rd_find(const struct rd *r, const char *needle)
{
    size_t k = strlen(needle), i;

    for (i = 0; k <= r->len && i <= r->len - k; i++)
        if (memcmp(r->buf + i, needle, k) == 0)
            return (long)i;
    return -1;
}

/* Waits until the buffer holds needle; its offset, or -1. */
static long rd_until(struct rd *r, const char *needle)
{
    long at;

    while ((at = rd_find(r, needle)) < 0)
        if (rd_fill(r) <= 0)
            return -1;
    return at;
}

/* Reads and drops n bytes. 0 or -1. */
static int rd_skip(struct rd *r, size_t n)
{
    while (n > 0) {
        size_t k;
        if (r->len == 0 && rd_fill(r) <= 0)
            return -1;
        k = r->len < n ? r->len : n;
        rd_consume(r, k);
        n -= k;
    }
    return 0;
}

/* Reads and drops a chunked body without trailers. 0 or -1. */
static int rd_chunked(struct rd *r)
{
    for (;;) {
        long eol = rd_until(r, "\r\n");
        unsigned long size;
        char *end;

        if (eol < 0)
            return -1;
        r->buf[eol] = '\0';
        size = strtoul(r->buf, &end, 16);
        if (end == r->buf)
            return -1;
        rd_consume(r, (size_t)eol + 2);
        if (size == 0)
            return rd_until(r, "\r\n") == 0 ? (rd_consume(r, 2), 0) : -1;
        if (rd_skip(r, size + 2) != 0)
            return -1;
    }
}

/* The value of header `name` in head[0..len) (case-insensitive name, at a line start), copied
 * into out; 1 when found. */
static int head_field(const char *head, size_t len, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name), i = 0;

    while (i < len) {
        const char *nl = memchr(head + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - head) : len;
        if (end - i > k && strncasecmp(head + i, name, k) == 0 && head[i + k] == ':') {
            size_t v = i + k + 1, n;
            while (v < end && head[v] == ' ')
                v++;
            n = end - v;
            if (n > 0 && head[v + n - 1] == '\r')
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(out, head + v, n);
            out[n] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

static void record(struct slot *s, const char *method, size_t mlen, const char *target, size_t tlen,
                   unsigned nth)
{
    struct tbt_badorigin *o = s->o;

    pthread_mutex_lock(&o->mu);
    if (o->n_records < TBT_BAD_MAX_RECORDS) {
        struct tbt_bad_record *r = &o->records[o->n_records++];
        if (mlen >= sizeof(r->method))
            mlen = sizeof(r->method) - 1;
        if (tlen >= sizeof(r->target))
            tlen = sizeof(r->target) - 1;
        memcpy(r->method, method, mlen);
        r->method[mlen] = '\0';
        memcpy(r->target, target, tlen);
        r->target[tlen] = '\0';
        r->conn = s->id;
        r->nth = nth;
    }
    pthread_mutex_unlock(&o->mu);
}

/*
 * Reads one request (head and body), records it and copies its action (the last path segment)
 * into action. 0, or -1 when the connection ended or the request could not be read.
 */
static int read_request(struct rd *r, unsigned nth, char *action, size_t cap)
{
    char value[64];
    const char *sp1, *sp2, *seg, *q;
    long end = rd_until(r, "\r\n\r\n");
    size_t head_len, n;

    if (end < 0)
        return -1;
    head_len = (size_t)end + 4;
    sp1 = memchr(r->buf, ' ', head_len);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - r->buf)) : NULL;
    if (sp1 == NULL || sp2 == NULL)
        return -1;
    record(r->s, r->buf, (size_t)(sp1 - r->buf), sp1 + 1, (size_t)(sp2 - sp1 - 1), nth);
    for (q = sp1 + 1; q < sp2 && *q != '?'; q++)
        ;
    for (seg = q; seg > sp1 + 1 && seg[-1] != '/'; seg--)
        ;
    n = (size_t)(q - seg) < cap - 1 ? (size_t)(q - seg) : cap - 1;
    memcpy(action, seg, n);
    action[n] = '\0';
    if (strcmp(action, "early-413") == 0 || strcmp(action, "early-close") == 0) {
        rd_consume(r, head_len); /* answered before the body: the close then resets */
        return 0;
    }
    if (head_field(r->buf, head_len, "transfer-encoding", value, sizeof(value))) {
        rd_consume(r, head_len);
        return strcasecmp(value, "chunked") == 0 ? rd_chunked(r) : -1;
    }
    n = head_field(r->buf, head_len, "content-length", value, sizeof(value))
            ? strtoul(value, NULL, 10)
            : 0;
    rd_consume(r, head_len);
    return rd_skip(r, n);
}

static int send_all(struct slot *s, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = send(s->fd, c, n, MSG_NOSIGNAL);
        if (k == -1 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_str(struct slot *s, const char *str)
{
    return send_all(s, str, strlen(str));
}

/* Reads and drops whatever comes until the peer closes or we stop. */
static void stay_silent(struct rd *r)
{
    while (rd_fill(r) > 0)
        r->len = 0;
}

/* A head with Content-Length 100000 and 1000 bytes of body. */
static int send_partial_body(struct slot *s)
{
    char body[1000];

    memset(body, 'b', sizeof(body));
    if (send_str(s,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"))
        return -1;
    return send_all(s, body, sizeof(body));
}

/* A response whose head is one field of 128 KiB, or 1000 fields. */
static void send_big_head(struct slot *s, int many)
{
    char line[160];
    size_t i;

    if (send_str(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n") != 0)
        return;
    if (many) {
        for (i = 0; i < 1000; i++) {
            snprintf(line, sizeof(line), "X-Field-%zu: value\r\n", i);
            if (send_str(s, line) != 0)
                return;
        }
    } else {
        char *big = malloc(128 * 1024);
        int ret;
        if (big == NULL)
            return;
        memset(big, 'v', 128 * 1024);
        ret = send_str(s, "X-Big: ") == 0 ? send_all(s, big, 128 * 1024) : -1;
        free(big);
        if (ret != 0)
            return;
        (void)send_str(s, "\r\n");
    }
    (void)send_str(s, "\r\nok\n");
}

#define CLOSE_OK "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
#define KEEP_OK "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nka\n"

/* Fixed malformed responses, sent whole and followed by a close. */
static const struct {
    const char *action, *bytes;
} canned[] = {
    {"bad-status", "HTTP/1.1 2x0 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"},
    {"bad-proto", "HTTQ/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"},
    {"bad-header", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nNo colon here\r\n\r\nok\n"},
    {"space-colon", "HTTP/1.1 200 OK\r\nContent-Length : 3\r\nConnection: close\r\n\r\nok\n"},
    {"nul-header", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\0b\r\n\r\nok\n"},
    {"dup-cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nok\nx"},
    {"cl-te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nok\n\r\n0\r\n\r\n"},
    {"neg-cl", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\nConnection: close\r\n\r\nok\n"},
    {"switch", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\n\r\n"},
    {"long-body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                  "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"},
    {"204-body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"
                 "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"},
    {"bad-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "a\r\n0123456789\r\nzz\r\n0123456789\r\n0\r\n\r\n"},
    {"huge-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "a\r\n0123456789\r\nfffffffffffffffffff\r\n0123456789\r\n0\r\n\r\n"},
    {"early-413", "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n"},
};

/* Length of a canned response (one holds a NUL: measured up to its end marker). */
static size_t canned_len(const char *bytes, const char *action)
{
    if (strcmp(action, "nul-header") == 0)
        return strlen(bytes) + 1 + strlen(bytes + strlen(bytes) + 1);
    return strlen(bytes);
}

/*
 * Serves one request by its action. Returns 1 to read the next request on the connection
 * (*drop says what to do with it), 0 when the connection is finished (*rst: end with a reset).
 */
static int act(struct rd *r, const char *action, enum drop *drop, int *rst)
{
    struct slot *s = r->s;
    size_t i;

    *rst = 0;
    for (i = 0; i < sizeof(canned) / sizeof(canned[0]); i++)
        if (strcmp(action, canned[i].action) == 0) {
            (void)send_all(s, canned[i].bytes, canned_len(canned[i].bytes, action));
            pause_ms(TBT_BAD_PAUSE_MS);
            return 0;
        }
    if (strcmp(action, "ok") == 0) {
        (void)send_str(s, CLOSE_OK);
        return 0;
    }
    if (strcmp(action, "ka") == 0 || strcmp(action, "ka-drop") == 0 ||
        strcmp(action, "ka-drop-rst") == 0) {
        *drop = action[2] == '\0' ? DROP_NONE : action[7] == '\0' ? DROP_FIN : DROP_RST;
        return send_str(s, KEEP_OK) == 0;
    }
    if (strcmp(action, "ka-close") == 0) {
        (void)send_str(s, KEEP_OK);
        return 0;
    }
    if (strcmp(action, "silent") == 0) {
        stay_silent(r);
        return 0;
    }
    if (strcmp(action, "close") == 0 || strcmp(action, "early-close") == 0)
        return 0;
    if (strcmp(action, "reset") == 0) {
        *rst = 1;
        return 0;
    }
    if (strcmp(action, "huge-header") == 0 || strcmp(action, "many-headers") == 0) {
        send_big_head(s, action[0] == 'm');
        pause_ms(TBT_BAD_PAUSE_MS);
        return 0;
    }
    if (strcmp(action, "head-silent") == 0 || strcmp(action, "head-close") == 0) {
        if (send_str(s, "HTTP/1.1 200 OK\r\nContent-Ty") == 0 && action[5] == 's')
            stay_silent(r);
        pause_ms(TBT_BAD_PAUSE_MS);
        return 0;
    }
    if (strcmp(action, "rst-mid") == 0 || strcmp(action, "short-body") == 0 ||
        strcmp(action, "stall") == 0) {
        if (send_partial_body(s) == 0 && action[1] == 't')
            stay_silent(r);
        pause_ms(TBT_BAD_PAUSE_MS);
        *rst = action[0] == 'r';
        return 0;
    }
    if (strcmp(action, "chunk-cut") == 0) {
        (void)send_str(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n0123456789");
        pause_ms(TBT_BAD_PAUSE_MS);
        return 0;
    }
    if (strcmp(action, "eof-rst") == 0 || strcmp(action, "eof-ok") == 0) {
        char body[1000];
        memset(body, 'e', sizeof(body));
        if (send_str(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n") == 0)
            (void)send_all(s, body, sizeof(body));
        pause_ms(TBT_BAD_PAUSE_MS);
        *rst = action[4] == 'r';
        return 0;
    }
    (void)send_str(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 0;
}

static void *serve(void *arg)
{
    struct slot *s = arg;
    struct rd r = {s, malloc(RBUF_CAP), 0};
    enum drop drop = DROP_NONE;
    char action[64];
    unsigned nth = 0;
    int rst = 0;

    while (r.buf != NULL) {
        enum drop was = drop;
        if (read_request(&r, ++nth, action, sizeof(action)) != 0)
            break;
        if (was != DROP_NONE) {
            rst = was == DROP_RST;
            break;
        }
        if (act(&r, action, &drop, &rst) != 1)
            break;
    }
    free(r.buf);
    slot_close(s, rst);
    pthread_mutex_lock(&s->o->mu);
    s->done = 1;
    pthread_mutex_unlock(&s->o->mu);
    return NULL;
}

/* Joins the connection threads that have ended (called with mu not held). */
static void reap(struct tbt_badorigin *o, int all)
{
    size_t i, n;

    pthread_mutex_lock(&o->mu);
    n = o->n_slots;
    pthread_mutex_unlock(&o->mu);
    for (i = 0; i < n; i++) {
        struct slot *s = o->slots[i];
        int done;
        pthread_mutex_lock(&o->mu);
        done = s->done;
        pthread_mutex_unlock(&o->mu);
        if (s->started && !s->joined && (done || all)) {
            pthread_join(s->th, NULL);
            s->joined = 1;
        }
    }
}

static void accept_one(struct tbt_badorigin *o)
{
    struct timeval rcv = {0, 50000}, snd = {2, 0};
    struct slot *s;
    int fd = accept(o->lfd, NULL, NULL), one = 1;

    if (fd == -1)
        return;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->mode != TBT_BAD_SERVE) {
        struct linger lg = {1, 0};
        if (o->mode == TBT_BAD_ACCEPT_RESET)
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        pthread_mutex_lock(&o->mu);
        o->n_rejected++;
        pthread_mutex_unlock(&o->mu);
        return;
    }
    if (o->n_slots >= MAX_THREADS || (s = calloc(1, sizeof(*s))) == NULL) {
        close(fd);
        return;
    }
    s->o = o;
    s->fd = fd;
    pthread_mutex_lock(&o->mu);
    s->id = (unsigned)o->n_slots + 1;
    o->slots[o->n_slots++] = s;
    o->n_open++;
    pthread_mutex_unlock(&o->mu);
    if (pthread_create(&s->th, NULL, serve, s) == 0) {
        s->started = 1;
    } else {
        slot_close(s, 0);
        s->done = 1;
    }
}

static void *acceptor(void *arg)
{
    struct tbt_badorigin *o = arg;
    struct pollfd pfd = {o->lfd, POLLIN, 0};

    for (;;) {
        int stop;
        pthread_mutex_lock(&o->mu);
        stop = o->stop;
        pthread_mutex_unlock(&o->mu);
        if (stop)
            return NULL;
        if (poll(&pfd, 1, 50) == 1)
            accept_one(o);
        reap(o, 0);
    }
}

int tbt_badorigin_start(struct tbt_badorigin **out, enum tbt_bad_accept mode, int *port, char *err,
                        size_t errlen)
{
    struct tbt_badorigin *o = calloc(1, sizeof(*o));
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);

    *out = NULL;
    if (o == NULL || (o->records = calloc(TBT_BAD_MAX_RECORDS, sizeof(*o->records))) == NULL) {
        snprintf(err, errlen, "badorigin: out of memory");
        goto Exit;
    }
    pthread_mutex_init(&o->mu, NULL);
    o->mode = mode;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (o->lfd == -1 || bind(o->lfd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
        listen(o->lfd, 128) == -1 || getsockname(o->lfd, (struct sockaddr *)&a, &alen) == -1) {
        snprintf(err, errlen, "badorigin: listen: %s", strerror(errno));
        goto Exit;
    }
    if (pthread_create(&o->acceptor, NULL, acceptor, o) != 0) {
        snprintf(err, errlen, "badorigin: pthread_create failed");
        goto Exit;
    }
    o->acceptor_started = 1;
    *port = ntohs(a.sin_port);
    *out = o;
    return 0;
Exit:
    if (o != NULL) {
        if (o->lfd > 0)
            close(o->lfd);
        free(o->records);
        free(o);
    }
    return -1;
}

/* Shuts down every open connection (mu held). */
static void shutdown_all_locked(struct tbt_badorigin *o)
{
    size_t i;

    for (i = 0; i < o->n_slots; i++) {
        struct slot *s = o->slots[i];
        if (s->fd != -1) {
            s->closing = 1;
            (void)shutdown(s->fd, SHUT_RDWR);
        }
    }
}

void tbt_badorigin_stop(struct tbt_badorigin *o)
{
    size_t i;

    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_mutex_unlock(&o->mu);
    if (o->acceptor_started)
        pthread_join(o->acceptor, NULL);
    pthread_mutex_lock(&o->mu);
    shutdown_all_locked(o);
    pthread_mutex_unlock(&o->mu);
    reap(o, 1);
    close(o->lfd);
    for (i = 0; i < o->n_slots; i++)
        free(o->slots[i]);
    pthread_mutex_destroy(&o->mu);
    free(o->records);
    free(o);
}

void tbt_badorigin_close_all(struct tbt_badorigin *o)
{
    pthread_mutex_lock(&o->mu);
    shutdown_all_locked(o);
    pthread_mutex_unlock(&o->mu);
}

size_t tbt_badorigin_count(struct tbt_badorigin *o, const char *target)
{
    size_t i, n = 0;

    pthread_mutex_lock(&o->mu);
    for (i = 0; i < o->n_records; i++)
        n += strcmp(o->records[i].target, target) == 0;
    pthread_mutex_unlock(&o->mu);
    return n;
}

size_t tbt_badorigin_count_conns(struct tbt_badorigin *o, const char *target)
{
    size_t i, j, n = 0;

    pthread_mutex_lock(&o->mu);
    for (i = 0; i < o->n_records; i++) {
        int seen = 0;
        if (strcmp(o->records[i].target, target) != 0)
            continue;
        for (j = 0; j < i && !seen; j++)
            seen = strcmp(o->records[j].target, target) == 0 &&
                   o->records[j].conn == o->records[i].conn;
        n += !seen;
    }
    pthread_mutex_unlock(&o->mu);
    return n;
}

int tbt_badorigin_record(struct tbt_badorigin *o, size_t i, struct tbt_bad_record *r)
{
    int ret = -1;

    pthread_mutex_lock(&o->mu);
    if (i < o->n_records) {
        *r = o->records[i];
        ret = 0;
    }
    pthread_mutex_unlock(&o->mu);
    return ret;
}

size_t tbt_badorigin_accepted(struct tbt_badorigin *o)
{
    size_t n;

    pthread_mutex_lock(&o->mu);
    n = o->n_slots + o->n_rejected;
    pthread_mutex_unlock(&o->mu);
    return n;
}

size_t tbt_badorigin_open(struct tbt_badorigin *o)
{
    size_t n;

    pthread_mutex_lock(&o->mu);
    n = o->n_open;
    pthread_mutex_unlock(&o->mu);
    return n;
}

int tbt_badorigin_wait_peer_closed(struct tbt_badorigin *o, const char *target, int timeout_ms)
{
    struct timespec t0, t;
    unsigned conn = 0;
    size_t i;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int closed = 0;
        pthread_mutex_lock(&o->mu);
        for (i = 0; i < o->n_records && conn == 0; i++)
            if (strcmp(o->records[i].target, target) == 0)
                conn = o->records[i].conn;
        if (conn > 0 && conn <= o->n_slots)
            closed = o->slots[conn - 1]->peer_closed;
        pthread_mutex_unlock(&o->mu);
        if (closed)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
            return 0;
        pause_ms(10);
    }
}
