/*
 * Test support: a blocking HTTP/2 client on nghttp2 (see h2test.h for the contract).
 *
 * nghttp2 does no I/O: frames it wants sent are pulled with nghttp2_session_mem_send into
 * h->obuf (copied, since its pointer is only valid until the next call) and written with
 * SSL_write; bytes SSL_read returns go to nghttp2_session_mem_recv, whose callbacks fill the
 * streams. While the session runs the socket is non-blocking and one loop does it all, waiting
 * in poll() only when neither direction made progress, so a server that writes while it is not
 * reading (or the reverse) cannot deadlock the test; the deadline bounds every wait.
 *
 * Slow-reader mode turns off nghttp2's automatic WINDOW_UPDATE: DATA is counted in the stream's
 * `unconsumed`, and every tick gives back at most slow_read_bytes of it (nghttp2_session_consume
 * queues a WINDOW_UPDATE once half a window was given back).
 *
 * Stream records are heap objects in h->streams, found by id; nghttp2's stream user data points
 * to them. They live until tbt_h2_close, so results stay readable after the stream closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

#include "h2test.h"

#define OBUF_FILL (256 * 1024) /* frames pulled from nghttp2 per write round, at least */
#define READ_CHUNK 16384
#define SLOW_DEFAULT_WINDOW 16384
#define SLOW_DEFAULT_DELAY_MS 10

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int slow_mode(const struct tbt_h2 *h)
{
    return h->o.slow_read_bytes > 0;
}

struct tbt_h2_stream *tbt_h2_stream(struct tbt_h2 *h, int32_t id)
{
    size_t i;

    for (i = 0; i < h->n_streams; i++)
        if (h->streams[i]->id == id)
            return h->streams[i];
    return NULL;
}

static const char *find_field(const struct tbt_h2_stream *st, const char *name, int trailer)
{
    size_t i;

    for (i = 0; i < st->n_fields; i++)
        if (st->fields[i].trailer == trailer && strcasecmp(st->fields[i].name, name) == 0)
            return st->fields[i].value;
    return NULL;
}

const char *tbt_h2_header(const struct tbt_h2_stream *st, const char *name)
{
    return find_field(st, name, 0);
}

const char *tbt_h2_trailer(const struct tbt_h2_stream *st, const char *name)
{
    return find_field(st, name, 1);
}

/* --- nghttp2 callbacks (user data: the client) ---------------------------------------------- */

static struct tbt_h2_stream *stream_of(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct tbt_h2_stream *st = stream_of(s, f->hd.stream_id);
    struct tbt_h2_field *fl;

    (void)flags;
    (void)user;
    if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = atoi((const char *)value); /* nghttp2 checked it: three digits */

        if (status >= 200)
            st->status = status;
        return 0;
    }
    if (st->status == 0) /* an informational response's fields */
        return 0;
    if (st->n_fields == TBT_H2_MAX_FIELDS) {
        st->fields_dropped++;
        return 0;
    }
    fl = &st->fields[st->n_fields];
    fl->name = strndup((const char *)name, namelen);
    fl->value = strndup((const char *)value, valuelen);
    if (fl->name == NULL || fl->value == NULL) {
        free(fl->name);
        free(fl->value);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    fl->trailer = f->headers.cat == NGHTTP2_HCAT_HEADERS;
    st->n_fields++;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    struct tbt_h2 *h = user;
    struct tbt_h2_stream *st = stream_of(s, id);
    size_t cap = h->o.max_body > 0 ? h->o.max_body : TBT_H2_DEFAULT_MAX_BODY, keep;

    (void)flags;
    if (st == NULL) {
        if (slow_mode(h))
            nghttp2_session_consume_connection(s, len);
        return 0;
    }
    keep = st->body_len < cap ? cap - st->body_len : 0;
    keep = keep < len ? keep : len;
    if (keep > 0 && st->body_len + keep + 1 > st->body_cap) {
        size_t ncap = st->body_cap * 2 > 65536 ? st->body_cap * 2 : 65536;
        unsigned char *p;

        if (ncap < st->body_len + keep + 1)
            ncap = st->body_len + keep + 1;
        if (ncap > cap + 1)
            ncap = cap + 1;
        if ((p = realloc(st->body, ncap)) == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->body = p;
        st->body_cap = ncap;
    }
    if (keep > 0) {
        memcpy(st->body + st->body_len, data, keep);
        st->body_len += keep;
        st->body[st->body_len] = '\0';
    }
    st->body_total += len;
    if (slow_mode(h))
        st->unconsumed += len;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct tbt_h2 *h = user;
    struct tbt_h2_stream *st = stream_of(s, f->hd.stream_id);

    switch (f->hd.type) {
    case NGHTTP2_GOAWAY:
        h->goaway = 1;
        h->goaway_error = f->goaway.error_code;
        h->goaway_last_stream = f->goaway.last_stream_id;
        break;
    case NGHTTP2_RST_STREAM:
        if (st != NULL) {
            st->rst_received = 1;
            st->rst_error = f->rst_stream.error_code;
        }
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if (st != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            st->end_stream = 1;
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
    struct tbt_h2_stream *st = stream_of(s, id);

    (void)user;
    if (st != NULL) {
        st->closed = 1;
        st->close_error = error_code;
    }
    return 0;
}

/* The request body provider: the stream's borrowed body, data_chunk bytes per frame at most. */
static ssize_t read_request(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct tbt_h2 *h = user;
    struct tbt_h2_stream *st = src->ptr;
    size_t n = st->req_len - st->req_off;

    (void)s;
    (void)id;
    if (n > len)
        n = len;
    if (h->o.data_chunk > 0 && n > h->o.data_chunk)
        n = h->o.data_chunk;
    memcpy(buf, st->req_body + st->req_off, n);
    st->req_off += n;
    if (st->req_off == st->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* --- connection ----------------------------------------------------------------------------- */

static int session_new(struct tbt_h2 *h)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    uint32_t window =
        slow_mode(h) ? (h->o.window > 0 ? h->o.window : SLOW_DEFAULT_WINDOW) : TBT_H2_WINDOW;
    int32_t conn_window =
        slow_mode(h) ? (window > 65535 ? (int32_t)window : 65535) : 4 * TBT_H2_WINDOW;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
    };
    int ret = -1;

    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
        snprintf(h->err, sizeof(h->err), "nghttp2: out of memory");
        goto Exit;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (slow_mode(h))
        nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_client_new2(&h->s, cbs, h, opt) != 0) {
        snprintf(h->err, sizeof(h->err), "nghttp2_session_client_new2 failed");
        goto Exit;
    }
    if ((ret = nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]))) !=
            0 ||
        (ret = nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, conn_window)) !=
            0) {
        snprintf(h->err, sizeof(h->err), "nghttp2 settings: %s", nghttp2_strerror(ret));
        ret = -1;
        goto Exit;
    }
    ret = 0;
Exit:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return ret;
}

int tbt_h2_connect(struct tbt_h2 *h, uint16_t port, const struct tbt_h2_opts *opts)
{
    static const struct tbt_h2_opts defaults;
    struct tbt_tls_opts to = {0};
    int fl;

    memset(h, 0, sizeof(*h));
    h->tls.fd = -1;
    h->o = opts != NULL ? *opts : defaults;
    snprintf(h->authority, sizeof(h->authority), "%s",
             h->o.authority != NULL ? h->o.authority : "localhost");
    h->o.authority = NULL; /* the caller's string need not outlive the call */
    to.alpn = h->o.alpn != NULL ? h->o.alpn : "h2";
    h->o.alpn = NULL;
    to.max_version = h->o.max_version;
    to.cert = h->o.cert;
    to.key = h->o.key;
    to.no_ems = h->o.no_ems;
    to.tb_ext = h->o.tb_ext;
    h->o.tb_ext = NULL; /* copied by the offer; the caller's need not outlive the call */
    to.timeout_ms = h->o.timeout_ms;
    if (tbt_tls_connect(&h->tls, port, &to) != 0) {
        snprintf(h->err, sizeof(h->err), "%s", h->tls.err);
        return -1;
    }
    if (strcmp(h->tls.alpn, "h2") != 0 && strncmp(h->tls.alpn, "h2_tb_", 6) != 0) {
        snprintf(h->err, sizeof(h->err), "the server selected ALPN \"%s\" for the offer \"%s\"",
                 h->tls.alpn, to.alpn);
        goto Fail;
    }
    SSL_set_mode(h->tls.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if ((fl = fcntl(h->tls.fd, F_GETFL)) == -1 ||
        fcntl(h->tls.fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        snprintf(h->err, sizeof(h->err), "fcntl: %s", strerror(errno));
        goto Fail;
    }
    if (session_new(h) != 0)
        goto Fail;
    return 0;
Fail : {
    char keep[sizeof(h->err)];

    memcpy(keep, h->err, sizeof(keep));
    tbt_h2_close(h);
    memcpy(h->err, keep, sizeof(keep));
}
    return -1;
}

void tbt_h2_close(struct tbt_h2 *h)
{
    size_t i, k;

    nghttp2_session_del(h->s);
    h->s = NULL;
    for (i = 0; i < h->n_streams; i++) {
        struct tbt_h2_stream *st = h->streams[i];

        for (k = 0; k < st->n_fields; k++) {
            free(st->fields[k].name);
            free(st->fields[k].value);
        }
        free(st->body);
        free(st);
    }
    if (h->tls.ctx != NULL) { /* connected (a zeroed or closed client has no context) */
        int fl = h->tls.fd != -1 ? fcntl(h->tls.fd, F_GETFL) : -1;

        if (fl != -1) /* blocking again, so close_notify gets its bounded wait */
            fcntl(h->tls.fd, F_SETFL, fl & ~O_NONBLOCK);
        if (h->eof)
            h->tls.eof = 1; /* no close_notify into a closed connection */
        tbt_tls_close(&h->tls);
    }
    free(h->obuf);
    memset(h, 0, sizeof(*h));
    h->tls.fd = -1;
}

int32_t tbt_h2_submit(struct tbt_h2 *h, const char *method, const char *path,
                      const char *const *extra, const void *body, size_t body_len)
{
    nghttp2_nv nva[4 + 128];
    nghttp2_data_provider prd;
    struct tbt_h2_stream *st;
    size_t n = 0, i;
    int32_t id;

#define NV(nm, val)                                                                                \
    ((nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val), NGHTTP2_NV_FLAG_NONE})
    if (h->s == NULL || h->n_streams == TBT_H2_MAX_STREAMS) {
        snprintf(h->err, sizeof(h->err), h->s == NULL ? "no session" : "too many streams");
        return -1;
    }
    nva[n++] = NV(":method", method);
    nva[n++] = NV(":scheme", "https");
    nva[n++] = NV(":authority", h->authority);
    nva[n++] = NV(":path", path);
    for (i = 0; extra != NULL && extra[i] != NULL && extra[i + 1] != NULL; i += 2) {
        if (n == sizeof(nva) / sizeof(nva[0])) {
            snprintf(h->err, sizeof(h->err), "too many header fields");
            return -1;
        }
        nva[n++] = NV(extra[i], extra[i + 1]);
    }
#undef NV
    if ((st = calloc(1, sizeof(*st))) == NULL || (st->body = calloc(1, 1)) == NULL) {
        free(st);
        snprintf(h->err, sizeof(h->err), "out of memory");
        return -1;
    }
    st->body_cap = 1;
    st->req_body = body;
    st->req_len = body != NULL ? body_len : 0;
    prd.source.ptr = st;
    prd.read_callback = read_request;
    id = nghttp2_submit_request(h->s, NULL, nva, n, body != NULL ? &prd : NULL, st);
    if (id < 0) {
        snprintf(h->err, sizeof(h->err), "nghttp2_submit_request: %s", nghttp2_strerror(id));
        free(st->body);
        free(st);
        return -1;
    }
    st->id = id;
    h->streams[h->n_streams++] = st;
    return id;
}

int tbt_h2_window_update(struct tbt_h2 *h, int32_t id, int32_t increment)
{
    int ret;

    if (h->s == NULL) {
        snprintf(h->err, sizeof(h->err), "no session");
        return -1;
    }
    if ((ret = nghttp2_submit_window_update(h->s, NGHTTP2_FLAG_NONE, id, increment)) != 0) {
        snprintf(h->err, sizeof(h->err), "nghttp2_submit_window_update: %s", nghttp2_strerror(ret));
        return -1;
    }
    return 0;
}

/* --- the loop ------------------------------------------------------------------------------- */

/* Pulls frames from nghttp2 into obuf (when it is empty). 0, or -1 (h->err). */
static int pull_frames(struct tbt_h2 *h)
{
    const uint8_t *data;
    ssize_t n;

    if (h->ooff < h->olen)
        return 0;
    h->ooff = h->olen = 0;
    while (h->olen < OBUF_FILL && (n = nghttp2_session_mem_send(h->s, &data)) != 0) {
        if (n < 0) {
            snprintf(h->err, sizeof(h->err), "nghttp2_session_mem_send: %s",
                     nghttp2_strerror((int)n));
            return -1;
        }
        if (h->olen + (size_t)n > h->ocap) {
            size_t ncap = h->olen + (size_t)n + OBUF_FILL;
            unsigned char *p = realloc(h->obuf, ncap);

            if (p == NULL) {
                snprintf(h->err, sizeof(h->err), "out of memory");
                return -1;
            }
            h->obuf = p;
            h->ocap = ncap;
        }
        memcpy(h->obuf + h->olen, data, (size_t)n);
        h->olen += (size_t)n;
    }
    return 0;
}

/* The connection ended: eof, and io_error with the reason when it was not a clean close. */
static void set_eof(struct tbt_h2 *h, int ssl_error, const char *what)
{
    unsigned long e = ERR_peek_error();

    h->eof = 1;
    if (ssl_error == SSL_ERROR_ZERO_RETURN)
        return;
    if (ssl_error == SSL_ERROR_SYSCALL && errno == 0 && e == 0)
        return; /* a plain FIN */
    h->io_error = 1;
    snprintf(h->err, sizeof(h->err), "%s: %s", what,
             e != 0       ? ERR_reason_error_string(e)
             : errno != 0 ? strerror(errno)
                          : "failed");
}

/* Writes what obuf holds. Returns 1 on progress, 0 if the socket would block, -1 on eof. */
static int write_some(struct tbt_h2 *h, int *want_in)
{
    int r, e;

    if (h->ooff == h->olen)
        return 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_write(h->tls.ssl, h->obuf + h->ooff, (int)(h->olen - h->ooff));
    if (r > 0) {
        h->ooff += (size_t)r;
        return 1;
    }
    e = SSL_get_error(h->tls.ssl, r);
    if (e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_WANT_READ) {
        *want_in = 1;
        return 0;
    }
    set_eof(h, e, "write");
    return -1;
}

/* Reads what is there and feeds it to nghttp2. 1 on progress, 0 would block, -1 eof/failure. */
static int read_some(struct tbt_h2 *h)
{
    unsigned char buf[READ_CHUNK];
    int progress = 0;

    for (;;) {
        ssize_t fed;
        int r, e;

        ERR_clear_error();
        errno = 0;
        r = SSL_read(h->tls.ssl, buf, sizeof(buf));
        if (r <= 0) {
            e = SSL_get_error(h->tls.ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return progress;
            set_eof(h, e, "read");
            return -1;
        }
        progress = 1;
        fed = nghttp2_session_mem_recv(h->s, buf, (size_t)r);
        if (fed < 0) {
            snprintf(h->err, sizeof(h->err), "nghttp2_session_mem_recv: %s",
                     nghttp2_strerror((int)fed));
            h->io_error = 1;
            return -1;
        }
    }
}

/* Slow mode: gives back at most slow_read_bytes of window once the tick is due. */
static void give_back(struct tbt_h2 *h, long long now)
{
    size_t budget = h->o.slow_read_bytes, i;
    int delay = h->o.slow_read_delay_ms > 0 ? h->o.slow_read_delay_ms : SLOW_DEFAULT_DELAY_MS;

    if (now < h->next_tick)
        return;
    h->next_tick = now + delay;
    for (i = 0; i < h->n_streams && budget > 0; i++) {
        struct tbt_h2_stream *st = h->streams[i];
        size_t n = st->unconsumed < budget ? st->unconsumed : budget;

        if (n == 0)
            continue;
        nghttp2_session_consume(h->s, st->id, n);
        st->unconsumed -= n;
        budget -= n;
    }
}

static int slow_pending(const struct tbt_h2 *h)
{
    size_t i;

    for (i = 0; slow_mode(h) && i < h->n_streams; i++)
        if (h->streams[i]->unconsumed > 0)
            return 1;
    return 0;
}

/* Are the streams of ids[0..n) (n == 0: all) closed? Sets h->err to the first one open. */
static int streams_done(struct tbt_h2 *h, const int32_t *ids, size_t n)
{
    size_t i, count = n > 0 ? n : h->n_streams;

    for (i = 0; i < count; i++) {
        int32_t id = n > 0 ? ids[i] : h->streams[i]->id;
        struct tbt_h2_stream *st = tbt_h2_stream(h, id);

        if (st == NULL) {
            snprintf(h->err, sizeof(h->err), "no stream %d", (int)id);
            return -1;
        }
        if (!st->closed) {
            snprintf(h->err, sizeof(h->err), "stream %d still open (status %d, %zu body bytes)",
                     (int)id, st->status, st->body_total);
            return 0;
        }
    }
    return 1;
}

/*
 * The loop. Without until_closed: returns 0 once the streams of ids[0..n) (n == 0: all) are
 * closed, -1 when the connection ends or the session has nothing more to do before that, or at
 * the deadline. With until_closed: returns 0 once the server closed the connection, -1 at the
 * deadline or when nghttp2 fails. h->err says why on -1.
 */
static int drive(struct tbt_h2 *h, const int32_t *ids, size_t n, int until_closed, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    char why[sizeof(h->err)];

    if (h->s == NULL) {
        snprintf(h->err, sizeof(h->err), "no session");
        return -1;
    }
    for (;;) {
        long long now = now_ms(), wake;
        int progress = 0, want_in = 0, r, d;
        struct pollfd pfd;

        if (!until_closed && (d = streams_done(h, ids, n)) != 0)
            return d > 0 ? 0 : -1;
        if (h->eof) {
            if (until_closed)
                return 0;
            snprintf(why, sizeof(why), "%s", h->err);
            snprintf(h->err, sizeof(h->err), "the server closed the connection (%.400s)%s%s", why,
                     h->goaway ? ", after GOAWAY" : "", h->io_error ? "" : " cleanly");
            return -1;
        }
        if (slow_mode(h))
            give_back(h, now);
        if (pull_frames(h) != 0)
            return -1;
        if ((r = write_some(h, &want_in)) < 0)
            continue; /* eof: reported above */
        progress |= r;
        if ((r = read_some(h)) < 0) {
            if (!h->eof)
                return -1; /* nghttp2 failed */
            continue;
        }
        progress |= r;
        if (!until_closed && !nghttp2_session_want_read(h->s) &&
            !nghttp2_session_want_write(h->s) && h->ooff == h->olen) {
            h->session_end = 1;
            if (streams_done(h, ids, n) > 0)
                return 0;
            snprintf(why, sizeof(why), "%s", h->err);
            snprintf(h->err, sizeof(h->err), "the session ended (%.400s)%s", why,
                     h->goaway ? " after GOAWAY" : "");
            return -1;
        }
        if (progress)
            continue;
        if (now >= deadline) {
            snprintf(why, sizeof(why), "%s", h->err);
            snprintf(h->err, sizeof(h->err), "timeout after %d ms%s%.400s", timeout_ms,
                     until_closed ? "" : ": ", until_closed ? "" : why);
            return -1;
        }
        wake = deadline;
        if (slow_pending(h) && h->next_tick < wake)
            wake = h->next_tick;
        pfd.fd = h->tls.fd;
        pfd.events = (short)(POLLIN | (h->ooff < h->olen && !want_in ? POLLOUT : 0));
        pfd.revents = 0;
        if (wake > now)
            (void)poll(&pfd, 1, (int)(wake - now));
    }
}

int tbt_h2_run(struct tbt_h2 *h, const int32_t *ids, size_t n, int timeout_ms)
{
    return drive(h, ids, n, 0, timeout_ms);
}

int tbt_h2_wait_closed(struct tbt_h2 *h, int timeout_ms)
{
    int r = drive(h, NULL, 0, 1, timeout_ms);

    if (r == 0)
        return 1;
    return h->eof ? 1 : strncmp(h->err, "timeout", 7) == 0 ? 0 : -1;
}
