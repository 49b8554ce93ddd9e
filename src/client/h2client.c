/*
 * h2client (see h2client.h): an nghttp2 client session driven by hand.
 *
 * nghttp2 does no I/O: nghttp2_session_mem_send() hands out frames, copied into obuf and written
 * with tbc_tls_write_some(); what tbc_tls_read_some() returns goes into
 * nghttp2_session_mem_recv(), which calls back. The callbacks only record what happened to the
 * one current stream (its head, its end, its close code) and pass body bytes on; decisions are
 * made in exchange_result() once the stream has closed.
 */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "errors.h"
#include "h2client.h"

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define OBUF_FILL (64 * 1024) /* pull frames until this many bytes wait to be written */
#define READ_BUF 16384

struct tbc_h2 {
    struct tbc_tls *c;
    nghttp2_session *s;
    unsigned char *obuf;
    size_t olen, ooff, ocap;
    int goaway, failed;
    /* the current exchange */
    int32_t id;
    const struct tbc_response_cb *cb;
    void *ctx;
    struct tbc_body *body;
    struct tbc_headers fields;
    size_t field_bytes;
    int status, got_head, ended, closed, cb_err, body_err;
    uint32_t close_code;
};

/* --- callbacks ------------------------------------------------------------------------------- */

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct tbc_h2 *h = user;

    (void)s;
    (void)flags;
    if (frame->hd.stream_id != h->id || frame->hd.type != NGHTTP2_HEADERS || h->got_head)
        return 0; /* not ours, or trailers */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        h->status = valuelen == 3 ? atoi((const char *)value) : 0;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    h->field_bytes += namelen + valuelen;
    if (h->field_bytes > TBC_MAX_FIELD_BYTES ||
        tbc_headers_add(&h->fields, (const char *)name, namelen, (const char *)value, valuelen) !=
            0) {
        h->cb_err = TBC_EH2;
        snprintf(h->c->err, sizeof(h->c->err), "response head over %d fields or %d bytes",
                 TBC_MAX_FIELDS, TBC_MAX_FIELD_BYTES);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* A complete HEADERS frame on our stream: an interim head is dropped, a final one delivered. */
static void head_done(struct tbc_h2 *h)
{
    struct tbc_response r = {h->status, 20, "", &h->fields};
    int rc;

    if (h->status < 200) {
        tbc_headers_dispose(&h->fields);
        h->field_bytes = 0;
        return;
    }
    h->got_head = 1;
    rc = h->cb->on_head != NULL ? h->cb->on_head(h->ctx, &r) : 0;
    if (rc < 0) {
        h->cb_err = rc;
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_CANCEL);
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct tbc_h2 *h = user;

    (void)s;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = 1;
        return 0;
    }
    if (frame->hd.stream_id != h->id || h->id <= 0)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !h->got_head && h->cb_err == 0)
        head_done(h);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && h->got_head)
        h->ended = 1;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    struct tbc_h2 *h = user;
    int rc;

    (void)flags;
    if (id != h->id || h->cb_err != 0 || !h->got_head || len == 0)
        return 0;
    rc = h->cb->on_body != NULL ? h->cb->on_body(h->ctx, (const char *)data, len) : 0;
    if (rc < 0) {
        h->cb_err = rc;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    struct tbc_h2 *h = user;

    (void)s;
    if (id == h->id) {
        h->closed = 1;
        h->close_code = code;
    }
    return 0;
}

/* The request body, read from its source as the window allows. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    struct tbc_h2 *h = user;
    struct tbc_body *b = src->ptr;
    ssize_t n;

    (void)s;
    (void)id;
    n = tbc_body_read(b, buf, len);
    if (n < 0) {
        h->body_err = (int)n;
        snprintf(h->c->err, sizeof(h->c->err), "cannot read the request body");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (n == 0 || (b->len >= 0 && (int64_t)b->done == b->len))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
}

/* --- session --------------------------------------------------------------------------------- */

int tbc_h2_new(struct tbc_h2 **out, struct tbc_tls *c)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    struct tbc_h2 *h = calloc(1, sizeof(*h));
    int rc = TBC_ENOMEM;

    *out = NULL;
    if (h == NULL || nghttp2_session_callbacks_new(&cbs) != 0)
        goto Fail;
    h->c = c;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_session_client_new(&h->s, cbs, h) != 0)
        goto Fail;
    rc = TBC_EH2;
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        goto Fail;
    nghttp2_session_callbacks_del(cbs);
    *out = h;
    return 0;
Fail:
    nghttp2_session_callbacks_del(cbs);
    tbc_h2_free(h);
    return rc;
}

/* Pulls frames into obuf when it is empty. 0 or TBC_EH2 / TBC_ENOMEM. */
static int pull_frames(struct tbc_h2 *h)
{
    const uint8_t *data;
    ssize_t n;

    if (h->ooff < h->olen)
        return 0;
    h->ooff = h->olen = 0;
    while (h->olen < OBUF_FILL && (n = nghttp2_session_mem_send(h->s, &data)) != 0) {
        if (n < 0) {
            snprintf(h->c->err, sizeof(h->c->err), "HTTP/2: %s", nghttp2_strerror((int)n));
            return TBC_EH2;
        }
        if (h->olen + (size_t)n > h->ocap) {
            size_t ncap = h->olen + (size_t)n + OBUF_FILL;
            unsigned char *p = realloc(h->obuf, ncap);

            if (p == NULL)
                return TBC_ENOMEM;
            h->obuf = p;
            h->ocap = ncap;
        }
        memcpy(h->obuf + h->olen, data, (size_t)n);
        h->olen += (size_t)n;
    }
    return 0;
}

/* Reads what there is into the session. 1 on progress, 0 when it would block or at EOF, or an
 * error code. */
static int read_some(struct tbc_h2 *h, unsigned char *buf)
{
    int progress = 0;

    for (;;) {
        int n = tbc_tls_read_some(h->c, buf, READ_BUF);
        ssize_t fed;

        if (n <= 0)
            return n < 0 ? n : progress;
        progress = 1;
        if ((fed = nghttp2_session_mem_recv(h->s, buf, (size_t)n)) < 0) {
            snprintf(h->c->err, sizeof(h->c->err), "HTTP/2: %s", nghttp2_strerror((int)fed));
            return TBC_EH2;
        }
    }
}

/* One turn of the loop: write, read, and wait when neither moved. 0 or an error code. */
static int turn(struct tbc_h2 *h, unsigned char *buf, long long deadline)
{
    int rc, progress = 0, events = POLLIN;

    if ((rc = pull_frames(h)) != 0)
        return rc;
    if (h->ooff < h->olen) {
        if ((rc = tbc_tls_write_some(h->c, h->obuf + h->ooff, h->olen - h->ooff)) < 0)
            return rc;
        h->ooff += (size_t)rc;
        progress |= rc > 0;
        if (rc == 0)
            events |= h->c->want;
    }
    if ((rc = read_some(h, buf)) < 0)
        return rc;
    progress |= rc;
    if (h->c->eof)
        return 0;
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) && h->ooff == h->olen)
        return 0; /* nothing left to do: the caller sees the stream's state */
    if (progress)
        return 0;
    return tbc_tls_wait(h->c, events, deadline);
}

/* The outcome once the loop stopped. */
static int exchange_result(struct tbc_h2 *h, int rc)
{
    if (h->body_err != 0)
        return h->body_err;
    if (h->cb_err != 0)
        return h->cb_err;
    if (rc != 0)
        return rc;
    if (h->got_head && h->ended)
        return 0;
    if (h->closed)
        snprintf(h->c->err, sizeof(h->c->err), "HTTP/2 stream %d reset by the server: %s%s",
                 (int)h->id, nghttp2_http2_strerror(h->close_code),
                 h->got_head ? " (inside the body)" : "");
    else
        snprintf(h->c->err, sizeof(h->c->err), "the server closed the connection%s%s",
                 h->goaway ? " after GOAWAY" : "", h->got_head ? " inside the body" : "");
    return h->closed || h->goaway ? TBC_EH2 : h->got_head ? TBC_EPARTIAL : TBC_EEMPTY;
}

/* Is this field one HTTP/2 forbids (connection-specific) or carries as a pseudo-header? */
static int skip_field(const struct tbc_header *f)
{
    static const char *const names[] = {"connection",        "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade",    "host"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(f->name, names[i]) == 0)
            return 1;
    return strcasecmp(f->name, "te") == 0 && strcasecmp(f->value, "trailers") != 0;
}

/* The name/value list of rq, with lower-cased copies of the names in *names (caller frees). */
static int build_nva(const struct tbc_request *rq, nghttp2_nv *nva, size_t *n, char **names)
{
    size_t i, k, total = 0, off = 0;

#define NV(nm, nl, val)                                                                            \
    ((nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), (nl), strlen(val), NGHTTP2_NV_FLAG_NONE})
    *n = 0;
    nva[(*n)++] = NV(":method", 7, rq->method);
    nva[(*n)++] = NV(":scheme", 7, "https");
    nva[(*n)++] = NV(":authority", 10, rq->authority);
    nva[(*n)++] = NV(":path", 5, rq->target);
    for (i = 0; i < rq->headers->n; i++)
        total += strlen(rq->headers->h[i].name) + 1;
    if ((*names = malloc(total + 1)) == NULL)
        return TBC_ENOMEM;
    for (i = 0; i < rq->headers->n; i++) {
        const struct tbc_header *f = &rq->headers->h[i];
        size_t len = strlen(f->name);

        if (skip_field(f))
            continue;
        for (k = 0; k < len; k++)
            (*names)[off + k] = (char)tolower((unsigned char)f->name[k]);
        nva[(*n)++] = NV(*names + off, len, f->value);
        off += len + 1;
    }
#undef NV
    return 0;
}

static void reset_exchange(struct tbc_h2 *h, const struct tbc_response_cb *cb, void *ctx,
                           struct tbc_body *body)
{
    tbc_headers_dispose(&h->fields);
    h->id = 0;
    h->cb = cb;
    h->ctx = ctx;
    h->body = body;
    h->field_bytes = 0;
    h->status = h->got_head = h->ended = h->closed = h->cb_err = h->body_err = 0;
    h->close_code = 0;
}

int tbc_h2_exchange(struct tbc_h2 *h, const struct tbc_request *rq,
                    const struct tbc_response_cb *cb, void *ctx, long long deadline)
{
    struct tbc_body *body = rq->body != NULL && rq->body->kind != TBC_BODY_NONE ? rq->body : NULL;
    nghttp2_nv nva[4 + TBC_MAX_FIELDS];
    nghttp2_data_provider prd;
    unsigned char *buf = malloc(READ_BUF);
    char *names = NULL;
    size_t n;
    int rc;

    reset_exchange(h, cb, ctx, body);
    if (buf == NULL || (rc = build_nva(rq, nva, &n, &names)) != 0) {
        rc = TBC_ENOMEM;
        goto Exit;
    }
    prd.source.ptr = body;
    prd.read_callback = read_body;
    h->id = nghttp2_submit_request(h->s, NULL, nva, n, body != NULL ? &prd : NULL, h);
    if (h->id < 0) {
        snprintf(h->c->err, sizeof(h->c->err), "HTTP/2: %s", nghttp2_strerror(h->id));
        rc = TBC_EH2;
        goto Exit;
    }
    rc = 0;
    while (
        rc == 0 && !h->closed && !h->c->eof &&
        (nghttp2_session_want_read(h->s) || nghttp2_session_want_write(h->s) || h->ooff < h->olen))
        rc = turn(h, buf, deadline);
    rc = exchange_result(h, rc);
Exit:
    h->failed |= rc != 0;
    free(names);
    free(buf);
    return rc;
}

int tbc_h2_reusable(const struct tbc_h2 *h)
{
    return h != NULL && !h->failed && !h->goaway && !h->c->eof && nghttp2_session_want_read(h->s);
}

void tbc_h2_free(struct tbc_h2 *h)
{
    if (h == NULL)
        return;
    if (h->s != NULL && h->c != NULL && h->c->ssl != NULL && !h->c->eof &&
        nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR) == 0 && pull_frames(h) == 0 &&
        h->ooff < h->olen)
        (void)tbc_tls_write_some(h->c, h->obuf + h->ooff, h->olen - h->ooff);
    nghttp2_session_del(h->s);
    tbc_headers_dispose(&h->fields);
    free(h->obuf);
    free(h);
}
