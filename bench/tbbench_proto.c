/*
 * tbbench_proto: the HTTP side of a tbbench connection, HTTP/1.1 or HTTP/2.
 *
 * HTTP/1.1: one request in flight per connection (keep-alive, no pipelining). The request bytes
 * (GET, Host, User-Agent, -H headers, the connection's Token Binding header, and Connection:
 * close with --new-conn) are built once per connection and copied out for every request. The
 * response goes through the proxy's own strict parser (src/proxy/h1parse.h, llhttp underneath),
 * kept per slot and reset for each connection; a response that does not keep the connection
 * alive drains it.
 *
 * HTTP/2: an nghttp2 client session per connection, fed and drained by the caller (mem_recv /
 * mem_send, no I/O here). Up to -m streams in flight (fewer if the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS says so); windows of 2^30 - 1 like h2load's defaults, so flow
 * control never paces the download; headers are passed without copies (they live in the slot
 * for the connection's lifetime). A stream that closes with an error counts as a protocol error
 * without closing the connection; GOAWAY drains it.
 *
 * Callbacks never close a connection: they record the request's end, or ask for the connection
 * to be failed (tbb_slot_fail_later), and the caller acts once nghttp2 / the parser has returned.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tbbench.h"

#define H1_MAX_HEADER_BYTES (16 * 1024) /* a response head larger than this is an error */
#define H1_MAX_HEADERS 100
#define H2_WINDOW ((1 << 30) - 1)
#define USER_AGENT "tbbench/" TBB_VERSION

/* --- HTTP/1.1 ------------------------------------------------------------------------------- */

static int h1_on_head(void *ctx, const struct tbp_http_head *head)
{
    struct tbb_slot *s = ctx;

    if (s->h1_cur != NULL)
        s->h1_cur->status = head->status;
    if (head->status >= 200)
        s->h1_close = !head->keep_alive;
    return 0;
}

static int h1_on_end(void *ctx)
{
    struct tbb_slot *s = ctx;
    struct tbb_req *r = s->h1_cur;

    if (r == NULL)
        return -1;
    s->h1_cur = NULL;
    tbb_req_done(s, r);
    if (s->h1_close && s->state == TBB_SLOT_READY)
        s->state = TBB_SLOT_DRAINING;
    return 0;
}

/* The longest request this slot can build (the Token-Binding header at its largest). */
static size_t h1_request_cap(const struct tbb_opts *o)
{
    size_t i, n = 256 + strlen(o->path) + strlen(o->authority) + TBB_TB_HEADER_MAX;

    for (i = 0; i < o->n_headers; i++)
        n += strlen(o->headers[i].name) + strlen(o->headers[i].value) + 4;
    return n;
}

/* Appends formatted text at *len. -1 when it does not fit. */
static int appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

static int h1_build(struct tbb_slot *s)
{
    const struct tbb_opts *o = s->w->o;
    size_t i, len = 0, cap = s->h1_req_cap;
    char *b = s->h1_req;
    int rc;

    rc = appendf(b, cap, &len, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n",
                 o->path, o->authority, USER_AGENT);
    for (i = 0; rc == 0 && i < o->n_headers; i++)
        rc = appendf(b, cap, &len, "%s: %s\r\n", o->headers[i].name, o->headers[i].value);
    if (rc == 0 && s->tb_on)
        rc = appendf(b, cap, &len, "%s: %s\r\n", s->w->o->tb_field, s->tb_header);
    if (rc == 0 && o->new_conn)
        rc = appendf(b, cap, &len, "Connection: close\r\n");
    if (rc == 0)
        rc = appendf(b, cap, &len, "\r\n");
    s->h1_req_len = len;
    return rc;
}

static int h1_input(struct tbb_slot *s, const uint8_t *p, size_t n)
{
    const char *c = (const char *)p;
    char msg[TBB_FIRST_ERR];
    size_t used;
    int rc;

    while (n > 0) {
        if (s->h1_cur == NULL) {
            tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, "bytes from the server with no request");
            return -1;
        }
        rc = tbp_h1_feed(&s->h1, c, n, &used);
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "bad HTTP/1.1 response: %s", tbp_h1_strerror(rc));
            tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, msg);
            return -1;
        }
        if (used == 0 && s->h1_cur != NULL) {
            tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, "HTTP/1.1 parser made no progress");
            return -1;
        }
        c += used;
        n -= used;
    }
    return 0;
}

/* --- HTTP/2 --------------------------------------------------------------------------------- */

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    struct tbb_req *r;
    size_t i;
    int st = 0;

    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    r = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (r == NULL)
        return 0;
    for (i = 0; i < valuelen && i < 3; i++)
        st = st * 10 + (value[i] - '0');
    r->status = valuelen == 3 ? st : 0;
    return 0;
}

static int h2_on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    struct tbb_slot *s = user_data;
    struct tbb_req *r = nghttp2_session_get_stream_user_data(ng, stream_id);
    char msg[TBB_FIRST_ERR];

    if (r == NULL || !r->in_use)
        return 0;
    nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
    if (error_code == NGHTTP2_NO_ERROR && r->status >= 200) {
        tbb_req_done(s, r);
        return 0;
    }
    snprintf(msg, sizeof(msg), "HTTP/2 stream closed: %s%s", nghttp2_http2_strerror(error_code),
             r->status < 200 ? " (no final response)" : "");
    tbb_req_fail(s, r, TBB_ERR_PROTOCOL, msg);
    return 0;
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    struct tbb_slot *s = user_data;

    (void)ng;
    if (frame->hd.type == NGHTTP2_GOAWAY && s->state == TBB_SLOT_READY)
        s->state = TBB_SLOT_DRAINING;
    return 0;
}

int tbb_h2_callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    *out = cb;
    return 0;
}

static void nv_add(struct tbb_slot *s, const char *name, const char *value)
{
    nghttp2_nv *nv = &s->nv[s->n_nv++];

    nv->name = (uint8_t *)(uintptr_t)name;
    nv->namelen = strlen(name);
    nv->value = (uint8_t *)(uintptr_t)value;
    nv->valuelen = strlen(value);
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
}

static int h2_start(struct tbb_slot *s, char *msg, size_t cap)
{
    const struct tbb_opts *o = s->w->o;
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
    };
    size_t i;
    int rc;

    if ((rc = nghttp2_session_client_new(&s->ng, s->w->ng_cbs, s)) != 0 ||
        (rc = nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, set, 2)) != 0 ||
        (rc = nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_WINDOW)) != 0) {
        snprintf(msg, cap, "HTTP/2 session: %s", nghttp2_strerror(rc));
        return -1;
    }
    s->n_nv = 0;
    nv_add(s, ":method", "GET");
    nv_add(s, ":scheme", o->use_tls ? "https" : "http");
    nv_add(s, ":authority", o->authority);
    nv_add(s, ":path", o->path);
    nv_add(s, "user-agent", USER_AGENT);
    nv_add(s, "accept", "*/*");
    for (i = 0; i < o->n_headers; i++)
        nv_add(s, o->headers[i].lower, o->headers[i].value);
    if (s->tb_on)
        nv_add(s, s->w->o->tb_field_lower, s->tb_header);
    return 0;
}

static int h2_send(struct tbb_slot *s, uint64_t start_ns)
{
    struct tbb_req *r = tbb_req_get(s, start_ns);
    char msg[TBB_FIRST_ERR];
    int32_t id;

    if (r == NULL) {
        tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, "no free request (internal)");
        return -1;
    }
    id = nghttp2_submit_request(s->ng, NULL, s->nv, s->n_nv, NULL, r);
    if (id < 0) {
        tbb_req_put(s, r);
        snprintf(msg, sizeof(msg), "HTTP/2 request: %s", nghttp2_strerror(id));
        tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, msg);
        return -1;
    }
    return 0;
}

/* --- the interface -------------------------------------------------------------------------- */

int tbb_proto_slot_init(struct tbb_slot *s)
{
    const struct tbb_opts *o = s->w->o;
    struct tbp_h1_limits lim = {.max_header_bytes = H1_MAX_HEADER_BYTES,
                                .max_headers = H1_MAX_HEADERS};
    struct tbp_h1_callbacks cb = {h1_on_head, NULL, h1_on_end};

    if (o->proto == TBB_PROTO_H2)
        return 0;
    s->h1_req_cap = h1_request_cap(o);
    if ((s->h1_req = malloc(s->h1_req_cap)) == NULL)
        return -1;
    return tbp_h1_parser_init(&s->h1, 0, &lim, &cb, s) == 0 ? 0 : -1;
}

void tbb_proto_slot_dispose(struct tbb_slot *s)
{
    if (s->h1_req != NULL) {
        tbp_h1_parser_dispose(&s->h1);
        free(s->h1_req);
        s->h1_req = NULL;
    }
}

int tbb_proto_start(struct tbb_slot *s, char *msg, size_t cap)
{
    if (s->h2)
        return h2_start(s, msg, cap);
    if (s->h1_req == NULL) {
        snprintf(msg, cap, "HTTP/1.1 negotiated with --http2");
        return -1;
    }
    tbp_h1_parser_reset(&s->h1);
    s->h1_cur = NULL;
    s->h1_close = 0;
    if (h1_build(s) != 0) {
        snprintf(msg, cap, "request too long");
        return -1;
    }
    return 0;
}

void tbb_proto_stop(struct tbb_slot *s)
{
    if (s->ng != NULL)
        nghttp2_session_del(s->ng);
    s->ng = NULL;
    s->h1_cur = NULL;
    s->h1_close = 0;
}

unsigned tbb_proto_capacity(struct tbb_slot *s)
{
    uint32_t lim;

    if (s->state != TBB_SLOT_READY || ((s->w->o->idle || s->w->holding) && s->conn_reqs > 0))
        return 0;
    if (!s->h2)
        return s->in_flight == 0 && !s->h1_close ? 1 : 0;
    if (!nghttp2_session_check_request_allowed(s->ng))
        return 0;
    lim = nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (lim > s->w->o->streams)
        lim = s->w->o->streams;
    return lim > s->in_flight ? lim - s->in_flight : 0;
}

int tbb_proto_send(struct tbb_slot *s, uint64_t start_ns)
{
    if (s->h2)
        return h2_send(s, start_ns);
    if ((s->h1_cur = tbb_req_get(s, start_ns)) == NULL) {
        tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, "no free request (internal)");
        return -1;
    }
    return tbb_out_append(s, s->h1_req, s->h1_req_len);
}

int tbb_proto_input(struct tbb_slot *s, const uint8_t *p, size_t n)
{
    char msg[TBB_FIRST_ERR];
    ssize_t rc;

    if (!s->h2)
        return h1_input(s, p, n);
    rc = nghttp2_session_mem_recv(s->ng, p, n);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "HTTP/2: %s", nghttp2_strerror((int)rc));
        tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, msg);
        return -1;
    }
    return s->fail_kind >= 0 ? -1 : 0;
}

int tbb_proto_eof(struct tbb_slot *s)
{
    if (!s->h2 && s->h1_cur != NULL && tbp_h1_feed_eof(&s->h1) != 0)
        return -1;
    return s->in_flight == 0 ? 0 : -1;
}

int tbb_proto_pull(struct tbb_slot *s)
{
    const uint8_t *data;
    char msg[TBB_FIRST_ERR];
    ssize_t n;

    if (!s->h2 || s->ng == NULL)
        return 0;
    while ((n = nghttp2_session_mem_send(s->ng, &data)) > 0) {
        if (tbb_out_append(s, data, (size_t)n) != 0)
            return -1;
    }
    if (n < 0) {
        snprintf(msg, sizeof(msg), "HTTP/2: %s", nghttp2_strerror((int)n));
        tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, msg);
        return -1;
    }
    return 0;
}
