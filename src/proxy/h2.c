/*
 * The HTTP/2 front end (nghttp2): the protocol that runs on a client connection when ALPN chose
 * h2 or h2_tb_*. Each stream is one exchange on the shared request path (exchange.c), forwarded
 * to an HTTP/1.1 origin connection of its own from the pool.
 *
 * Bytes: the connection's read buffer goes to nghttp2_session_mem_recv; frames nghttp2 wants to
 * send are pulled with nghttp2_session_mem_send into the connection's output (pump), which stops
 * above the connection's high-water mark (limits.max_buffer_bytes) and starts again when it
 * drains. limits.max_concurrent_streams is our SETTINGS_MAX_CONCURRENT_STREAMS.
 *
 * Flow control both ways, so a slow side never makes the proxy buffer without bound:
 * - request bodies: automatic WINDOW_UPDATEs are off; DATA bytes are "consumed" (which opens the
 *   client's window again) only once the origin connection took them below its high-water mark;
 * - response bodies: each stream has a small buffer that the DATA provider drains; above
 *   half the high-water mark the origin connection stops reading until the client's window lets
 *   it drain.
 *
 * Timeouts (one connection timer, c->timer, checked lazily): with no stream open, the connection
 * closes (GOAWAY) after timeouts.first_request from its start until a first request head came,
 * then after timeouts.idle_keepalive from when the last stream closed; frames that open no stream
 * (PING, SETTINGS, a frame trickled byte by byte) do not move that deadline. Per stream: its
 * HEADERS must be complete within timeouts.header_read of their first frame (else the
 * connection is closed: the header block is unfinished, nothing else can be read on it); its
 * request body must not stall for timeouts.body_read (408 on the stream, or RST_STREAM once the
 * response began); response bytes waiting for a window the client keeps shut are abandoned after
 * timeouts.send (RST_STREAM CANCEL). Events only move a stream's timestamps, or bring the timer
 * forward when a new deadline is earlier; when it fires, h2_timeout acts on what is due and sets
 * it for the next deadline.
 *
 * Request bodies are counted against the route's max_body_size: a content-length over it is
 * answered 413 (exchange.c), DATA that grows past it gets 413 when the response has not begun,
 * else RST_STREAM. A stream answered before its request ended (an error, an origin that answered
 * early) gets RST_STREAM NO_ERROR once its response is out (RFC 9113 section 8.1), so the client
 * stops sending a body nobody reads.
 *
 * Token Binding: every request is checked like an HTTP/1.1 one; a failure answers 400 on that
 * stream and then GOAWAY (spec "Validation": terminate the connection). A route's JWT check
 * failing is not a Token Binding failure: 401 on the stream only.
 *
 * Graceful stop (h2_drain), as RFC 9113 section 6.8 suggests: a GOAWAY with the largest stream
 * id (nghttp2's shutdown notice) tells the client to open no more streams while the ones it has
 * already sent still count; a PING follows, and its ACK (or DRAIN_GRACE_MS without one) proves
 * that a round trip has passed, so any stream sent before the notice arrived has arrived too.
 * Then the real GOAWAY with the last stream id processed; the streams in flight finish and the
 * connection closes once none is left (pump).
 *
 * Lifetime: a stream is freed in on_stream_close, which nghttp2 calls from inside mem_recv or
 * mem_send; its upstream exchange is aborted there, so no upstream callback reaches it later.
 * Upstream callbacks pump last, so nothing touches a stream after a pump.
 *
 * Memory of an idle connection (bench/soak measures it; streams are freed when they close):
 * nghttp2's session keeps about 10 KiB for good (its struct, the stream map, the two HPACK
 * tables) and a frame buffer of 16 KiB (NG_FRAMEBUF_LEN) that holds a frame only while it is
 * being written out. Our nghttp2 allocator gives that buffer whole pages of its own when the
 * session is created, and a connection with no stream open for IDLE_RELEASE_MS gives them back
 * (release_framebuf, MADV_DONTNEED: the next frame written there faults in fresh zeroed pages);
 * a busy connection pays nothing for it. Closed streams are not kept
 * (nghttp2_option_set_no_closed_streams: their only use, placing streams that depend on them in
 * the RFC 7540 priority tree, went with RFC 9113). The HPACK encoder's dynamic table (what we
 * index of response fields) is 512 bytes instead of 4096: room for the short fields an origin
 * repeats (content-type, server, cache-control) but not for long values, so at most about 1 KiB
 * per connection instead of about 5; the decoder's table, which the client fills (repeated
 * cookies and Token-Binding headers then cost a byte or two per request), keeps the default
 * 4096.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "conn.h"
#include "exchange.h"
#include "forward.h"
#include "upstream.h"
#include "worker.h"

#define WINDOW (256 * 1024)  /* initial stream window we advertise */
#define HEAD_MAX (64 * 1024) /* header block bytes kept per stream */
#define MAX_TRAILERS 32
/* graceful stop: the final GOAWAY at the latest this long after the shutdown notice, if the
 * PING that follows it is not answered */
#define DRAIN_GRACE_MS 1000

/* nghttp2's frame buffer: one chunk of frame header + pad length + the largest payload
 * (lib/nghttp2_int.h NGHTTP2_FRAMEBUF_CHUNKLEN), allocated when the session is created (see
 * "Memory" at the top). */
#define NG_FRAMEBUF_LEN (9 + 1 + 16384)
/* A connection with no stream open this long gives the pages of its frame buffer back */
#define IDLE_RELEASE_MS 500
/* Our HPACK encoder's dynamic table (nghttp2's default: 4096) */
#define DEFLATE_TABLE 512

/* The opaque data of the graceful-stop PING (8 bytes, no NUL). */
static const uint8_t drain_ping[8] = {'t', 'b', 'p', 'd', 'r', 'a', 'i', 'n'};

struct h2;

struct stream {
    struct h2 *h;
    int32_t id;
    struct stream *prev, *next;
    /* the request head, built from HEADERS */
    struct tbp_buf hbuf; /* names and values, NUL-separated */
    size_t n_fields;
    size_t field_off[2 * 128]; /* offsets of name, value pairs in hbuf */
    size_t field_len[2 * 128];
    int have_method, have_path, have_authority, have_host, too_many;
    size_t method, path, authority; /* field indexes of the pseudo-headers */
    int64_t content_length;         /* -1: none */
    int started;                    /* the exchange started (or was answered) */
    int in_trailers;                /* hbuf now holds the request's trailer fields */
    int req_complete;               /* END_STREAM from the client */
    int req_chunked;
    int head_request;
    int rst_after;       /* RST_STREAM NO_ERROR once the response's END_STREAM is sent */
    int body_timed_out;  /* the request body stalled: answered 408 or reset */
    int reset_sent;      /* we reset the stream: no deadline is checked any more */
    uint64_t t_begin;    /* loop ms: the first HEADERS frame */
    uint64_t t_body;     /* loop ms: the head, or the last request DATA (or a resumed pause) */
    uint64_t t_sent;     /* loop ms: response bytes became pending, or the last DATA sent */
    uint64_t body_bytes; /* request body bytes received */
    size_t unconsumed;   /* DATA bytes waiting for nghttp2_session_consume */
    int body_paused;     /* the origin queue is full */
    struct tbp_upconn *up;
    const struct tbp_route *route; /* for the response (NULL: none matched) */
    /* the response */
    int resp_submitted;
    int resp_eof;
    int up_paused;
    struct tbp_buf resp; /* body bytes waiting for the DATA provider */
    struct tbp_buf tbuf; /* trailer names and values */
    size_t n_trailers;
    size_t trailer_off[2 * MAX_TRAILERS], trailer_len[2 * MAX_TRAILERS];
    struct tbp_xlog x;
};

struct h2 {
    struct tbp_conn *c;
    nghttp2_session *s;
    struct stream *streams;
    unsigned n_streams;
    int goaway;   /* GOAWAY queued: close once it is sent */
    int draining; /* graceful stop: shutdown notice sent, final GOAWAY once drain_timer fires
                     or the PING is answered */
    struct tbp_timer drain_timer;
    int in_recv;     /* inside nghttp2_session_mem_recv: no mem_send now (h2_input pumps after) */
    int want_resume; /* some stream's origin reading can resume after the pump */
    int first_done;  /* a request head has been complete */
    uint64_t t_open; /* loop ms: the protocol started (first_request counts from it) */
    uint64_t t_idle; /* loop ms: the last stream closed (idle_keepalive counts from it) */
    size_t stream_high, stream_low; /* response bytes buffered per stream: the origin waits above
                                       high (half the connection's high-water mark), resumes
                                       below low */
    uint64_t flood_start;           /* loop ms: the current PING/SETTINGS counting window */
    unsigned flood_count;
    char *framebuf;    /* nghttp2's frame buffer (NG_FRAMEBUF_LEN bytes), NULL: not known */
    int in_new;        /* inside nghttp2_session_server_new3: the frame buffer is allocated */
    int framebuf_used; /* frames were written into it since its pages were last released */
};

#define H2(c) ((struct h2 *)(c)->pd)

static void pump(struct h2 *h);
static void timer_earlier(struct h2 *h, uint64_t due);
static uint64_t idle_timer_ms(const struct h2 *h, uint64_t ms);

/* --- streams ---------------------------------------------------------------------------------- */

static struct stream *stream_new(struct h2 *h, int32_t id)
{
    struct stream *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->h = h;
    st->id = id;
    st->content_length = -1;
    tbp_buf_init(&st->hbuf, HEAD_MAX);
    tbp_buf_init(&st->resp, h->stream_high + 64 * 1024 + TBP_CONN_RBUF);
    tbp_buf_init(&st->tbuf, HEAD_MAX);
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n_streams++;
    return st;
}

static void stream_free(struct stream *st)
{
    struct h2 *h = st->h;

    if (st->up != NULL)
        tbp_upstream_abort(st->up);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->n_streams--;
    tbp_buf_dispose(&st->hbuf);
    tbp_buf_dispose(&st->resp);
    tbp_buf_dispose(&st->tbuf);
    free(st);
}

static struct tbp_str field(const struct stream *st, size_t i)
{
    return (struct tbp_str){st->hbuf.p + st->field_off[i], st->field_len[i]};
}

static void submit_trailers(struct stream *st);

/* --- responses -------------------------------------------------------------------------------- */

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    struct stream *st = src->ptr;
    size_t n = st->resp.len < len ? st->resp.len : len;

    (void)s;
    (void)id;
    (void)user;
    if (n > 0) {
        memcpy(buf, st->resp.p, n);
        tbp_buf_consume(&st->resp, n);
        st->t_sent = tbp_loop_now(&st->h->c->w->loop);
    }
    if (st->resp.len == 0 && st->resp_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->n_trailers > 0) { /* the stream ends with the trailer HEADERS instead */
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            submit_trailers(st);
        }
    } else if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    if (st->up_paused && st->resp.len < st->h->stream_low)
        st->h->want_resume = 1; /* resumed after mem_send returns, never from inside it */
    st->x.resp_bytes += n;
    return (ssize_t)n;
}

/* A Content-Length that must not go out: a 1xx or 204 response has none (RFC 9110 8.6). */
static int no_length(const struct tbp_http_head *rh, const struct tbp_header *f)
{
    return (rh->status < 200 || rh->status == 204) && tbp_http_name_eq(f->name, "content-length");
}

/* Submits a response head (status + fields of rh, minus hop-by-hop) with a body provider. */
static int submit_head(struct stream *st, const struct tbp_http_head *rh, int has_body)
{
    nghttp2_nv nva[TBP_MAX_HEADERS_DEFAULT * 2 + 2];
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    char status[4], lower[256];
    struct tbp_buf names;
    size_t i, n = 0;
    int ret;

    snprintf(status, sizeof(status), "%d", rh->status);
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    tbp_buf_init(&names, 64 * 1024);
    /* lower-case names, collected first: the buffer may move while it grows */
    for (i = 0; i < rh->n_headers; i++) {
        const struct tbp_header *f = &rh->headers[i];
        size_t k;
        if (tbp_forward_is_hop(rh, f) || f->name.len >= sizeof(lower) || no_length(rh, f))
            continue;
        for (k = 0; k < f->name.len; k++)
            lower[k] = (char)((f->name.p[k] >= 'A' && f->name.p[k] <= 'Z') ? f->name.p[k] + 32
                                                                           : f->name.p[k]);
        if (tbp_buf_append(&names, lower, f->name.len) != 0)
            break;
    }
    for (i = 0, ret = 0; i < rh->n_headers && n < sizeof(nva) / sizeof(nva[0]); i++) {
        const struct tbp_header *f = &rh->headers[i];
        if (tbp_forward_is_hop(rh, f) || f->name.len >= sizeof(lower) || no_length(rh, f))
            continue;
        if ((size_t)ret + f->name.len > names.len)
            break;
        nva[n++] = (nghttp2_nv){(uint8_t *)names.p + ret, (uint8_t *)f->value.p, f->name.len,
                                f->value.len, NGHTTP2_NV_FLAG_NONE};
        ret += (int)f->name.len;
    }
    ret = nghttp2_submit_response(st->h->s, st->id, nva, n, has_body ? &prd : NULL);
    tbp_buf_dispose(&names);
    return ret;
}

/* A short error response on the stream (text/plain, one line; a 401 with its challenge). */
static void answer_error(struct stream *st, int status, const char *why)
{
    const char *challenge = tbp_forward_challenge(status);
    struct tbp_http_head rh = {0};
    struct tbp_header f[2];
    char body[256];
    int n;

    n = snprintf(body, sizeof(body), "%d %s\n", status, why ? why : "");
    f[0] = (struct tbp_header){{"content-type", 12}, {"text/plain", 10}};
    rh.status = status;
    rh.headers = f;
    rh.n_headers = 1;
    if (challenge != NULL)
        f[rh.n_headers++] =
            (struct tbp_header){{"www-authenticate", 16}, {challenge, strlen(challenge)}};
    tbp_xlog_status(&st->x, st->h->c, status);
    st->resp_submitted = 1;
    st->rst_after = !st->req_complete; /* the client need not send the rest of its request */
    tbp_buf_reset(&st->resp);
    if (n > 0)
        (void)tbp_buf_append(&st->resp, body, (size_t)n < sizeof(body) ? (size_t)n : 0);
    st->resp_eof = 1;
    st->t_sent = tbp_loop_now(&st->h->c->w->loop);
    timer_earlier(st->h, st->t_sent + st->h->c->cfg->timeouts.send_ms);
    if (submit_head(st, &rh, 1) != 0)
        nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    tbp_xlog_write(&st->x, st->h->c, "h2");
}

/* --- the upstream sink (ctx: the stream) ------------------------------------------------------ */

static void resp_head(void *ctx, const struct tbp_http_head *rh)
{
    struct stream *st = ctx;
    int body = !(st->head_request || rh->status == 204 || rh->status == 304);
    const struct tbp_http_head *out;
    struct tbp_head_edit edit = {0};

    tbp_xlog_status(&st->x, st->h->c, rh->status);
    st->x.t_upstream = tbp_loop_now(&st->h->c->w->loop);
    st->resp_submitted = 1;
    if (!body)
        st->resp_eof = 1;
    if (tbp_exchange_response(st->h->c, st->route, rh, &edit, &out, &st->x) != 0 ||
        submit_head(st, out, body) != 0)
        nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    tbp_head_edit_dispose(&edit); /* nghttp2_submit_response copied the fields */
}

static int resp_body(void *ctx, const char *p, size_t n)
{
    struct stream *st = ctx;

    if (st->resp.len == 0 && n > 0) { /* bytes pending from now: the send timeout runs */
        st->t_sent = tbp_loop_now(&st->h->c->w->loop);
        timer_earlier(st->h, st->t_sent + st->h->c->cfg->timeouts.send_ms);
    }
    if (tbp_buf_append(&st->resp, p, n) != 0) {
        nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return 1;
    }
    struct h2 *h = st->h;
    int paused;

    nghttp2_session_resume_data(h->s, st->id);
    if (st->resp.len >= h->stream_high)
        st->up_paused = 1;
    paused = st->up_paused;
    pump(h); /* last: the stream may be gone after it */
    return paused;
}

/* Keeps the origin's trailer fields (lower-cased, hop-by-hop and framing ones dropped) to send
 * as a HEADERS frame once the body is out. */
static void keep_trailers(struct stream *st, const struct tbp_header *t, size_t n)
{
    size_t i, k;

    for (i = 0; i < n && st->n_trailers < MAX_TRAILERS; i++) {
        struct tbp_str name = t[i].name;
        if (tbp_http_name_eq(name, "content-length") || tbp_http_name_eq(name, "host") ||
            tbp_http_name_eq(name, "trailer") || tbp_http_name_eq(name, "connection") ||
            tbp_http_name_eq(name, "transfer-encoding") || tbp_http_name_eq(name, "te") ||
            tbp_http_name_eq(name, "keep-alive") || tbp_http_name_eq(name, "upgrade") ||
            tbp_http_name_eq(name, "proxy-connection"))
            continue;
        st->trailer_off[2 * st->n_trailers] = st->tbuf.len;
        st->trailer_len[2 * st->n_trailers] = name.len;
        for (k = 0; k < name.len; k++) {
            char ch = name.p[k] >= 'A' && name.p[k] <= 'Z' ? (char)(name.p[k] + 32) : name.p[k];
            if (tbp_buf_append(&st->tbuf, &ch, 1) != 0)
                return;
        }
        st->trailer_off[2 * st->n_trailers + 1] = st->tbuf.len;
        st->trailer_len[2 * st->n_trailers + 1] = t[i].value.len;
        if (tbp_buf_append(&st->tbuf, t[i].value.p, t[i].value.len) != 0)
            return;
        st->n_trailers++;
    }
}

static void submit_trailers(struct stream *st)
{
    nghttp2_nv nva[MAX_TRAILERS];
    size_t i;

    for (i = 0; i < st->n_trailers; i++)
        nva[i] =
            (nghttp2_nv){(uint8_t *)st->tbuf.p + st->trailer_off[2 * i],
                         (uint8_t *)st->tbuf.p + st->trailer_off[2 * i + 1], st->trailer_len[2 * i],
                         st->trailer_len[2 * i + 1], NGHTTP2_NV_FLAG_NONE};
    if (nghttp2_submit_trailer(st->h->s, st->id, nva, st->n_trailers) != 0)
        nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

static void resp_end(void *ctx, const struct tbp_header *trailers, size_t n_trailers)
{
    struct stream *st = ctx;
    struct h2 *h = st->h;

    st->up = NULL;
    if (!st->head_request)
        keep_trailers(st, trailers, n_trailers);
    st->resp_eof = 1;
    st->rst_after = !st->req_complete; /* the origin answered before the request ended */
    tbp_xlog_write(&st->x, h->c, "h2");
    nghttp2_session_resume_data(h->s, st->id);
    pump(h);
}

static void resp_error(void *ctx, int status, const char *why)
{
    struct stream *st = ctx;
    struct h2 *h = st->h;

    st->up = NULL;
    tbp_log_error(h->c->w->px, TBP_LOG_WARN, "%s:%u: %s -> %d (%s)", h->c->ip, h->c->port,
                  st->x.req, status, why);
    if (st->resp_submitted) {
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        tbp_xlog_write(&st->x, h->c, "h2");
    } else
        answer_error(st, status, status == 504 ? "origin timed out" : "origin unavailable");
    pump(h);
}

static void req_drain(void *ctx)
{
    struct stream *st = ctx;
    struct h2 *h = st->h;

    if (!st->body_paused)
        return;
    st->body_paused = 0;
    st->t_body = tbp_loop_now(&h->c->w->loop); /* the wait was the origin's, not the client's */
    timer_earlier(h, st->t_body + h->c->cfg->timeouts.body_read_ms);
    nghttp2_session_consume(h->s, st->id, st->unconsumed);
    st->unconsumed = 0;
    pump(h);
}

static const struct tbp_upstream_sink sink = {resp_head, resp_body, resp_end, resp_error,
                                              req_drain};

/* --- requests --------------------------------------------------------------------------------- */

/* The request head of st as the shared model: :method, :path, and host from :authority. */
static int build_head(struct stream *st, struct tbp_http_head *rh, struct tbp_header *fields)
{
    size_t i, n = 0;

    memset(rh, 0, sizeof(*rh));
    rh->is_request = 1;
    rh->version_major = 2;
    rh->method = field(st, st->method * 2 + 1);
    rh->target = field(st, st->path * 2 + 1);
    if (st->have_authority && !st->have_host)
        fields[n++] = (struct tbp_header){{"host", 4}, field(st, st->authority * 2 + 1)};
    for (i = 0; i < st->n_fields; i++) {
        struct tbp_str name = field(st, 2 * i);
        if (name.len > 0 && name.p[0] == ':')
            continue;
        fields[n++] = (struct tbp_header){name, field(st, 2 * i + 1)};
    }
    rh->headers = fields;
    rh->n_headers = n;
    rh->keep_alive = 1;
    if (st->req_complete)
        rh->framing = TBP_BODY_NONE;
    else if (st->content_length >= 0)
        rh->framing = TBP_BODY_LENGTH;
    else
        rh->framing = TBP_BODY_CHUNKED;
    rh->content_length = st->content_length >= 0 ? (uint64_t)st->content_length : 0;
    return 0;
}

static void start_stream(struct stream *st)
{
    struct h2 *h = st->h;
    struct tbp_header fields[130];
    struct tbp_http_head rh;
    const char *why = NULL;
    int status;

    st->started = 1;
    h->first_done = 1;
    st->t_body = tbp_loop_now(&h->c->w->loop);
    if (!st->req_complete)
        timer_earlier(h, st->t_body + h->c->cfg->timeouts.body_read_ms);
    build_head(st, &rh, fields);
    tbp_xlog_begin(&st->x, h->c, &rh);
    st->head_request = rh.method.len == 4 && memcmp(rh.method.p, "HEAD", 4) == 0;
    st->req_chunked = rh.framing == TBP_BODY_CHUNKED;
    if (!st->have_method || !st->have_path || (!st->have_authority && !st->have_host) ||
        st->too_many) {
        answer_error(st, 400, "malformed request");
        return;
    }
    status = tbp_exchange_start(h->c, &rh, st->head_request, rh.framing, &sink, st, &st->x, &st->up,
                                &st->route, &why);
    if (status == 0) {
        if (st->req_complete)
            tbp_upstream_request_done(st->up);
        return;
    }
    answer_error(st, status, why);
    if (st->x.tb_failed && !h->goaway) {
        /* spec "Validation": terminate the connection once this answer is out */
        nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR, NULL, 0);
        h->goaway = 1;
    }
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct h2 *h = user;
    struct stream *st;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h->goaway)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST: we are closing */
    if ((st = stream_new(h, f->hd.stream_id)) == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    st->t_begin = tbp_loop_now(&h->c->w->loop);
    timer_earlier(h, st->t_begin + h->c->cfg->timeouts.header_read_ms);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    size_t i;

    (void)flags;
    (void)user;
    if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (st->started) {
        if (f->headers.cat != NGHTTP2_HCAT_HEADERS)
            return 0;
        if (!st->in_trailers) { /* the request head was forwarded: its storage holds these */
            st->in_trailers = 1;
            tbp_buf_reset(&st->hbuf);
            st->n_fields = 0;
        }
    } else if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    if (st->n_fields == sizeof(st->field_off) / sizeof(st->field_off[0]) / 2) {
        st->too_many = 1;
        return 0;
    }
    i = st->n_fields;
    st->field_off[2 * i] = st->hbuf.len;
    st->field_len[2 * i] = namelen;
    if (tbp_buf_append(&st->hbuf, name, namelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* over HEAD_MAX: RST the stream */
    st->field_off[2 * i + 1] = st->hbuf.len;
    st->field_len[2 * i + 1] = valuelen;
    if (tbp_buf_append(&st->hbuf, value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->n_fields++;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        st->have_method = 1, st->method = i;
    else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        st->have_path = 1, st->path = i;
    else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
        st->have_authority = 1, st->authority = i;
    else if (namelen == 4 && memcmp(name, "host", 4) == 0)
        st->have_host = 1;
    else if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        st->content_length = strtoll((const char *)value, NULL, 10); /* nghttp2 checked it */
    return 0;
}

/* :authority and Host must name the same thing (RFC 9113 section 8.3.1). */
static int authority_matches_host(const struct stream *st)
{
    size_t i;

    if (!st->have_authority || !st->have_host)
        return 1;
    for (i = 0; i < st->n_fields; i++) {
        struct tbp_str n = field(st, 2 * i), v = field(st, 2 * i + 1),
                       a = field(st, 2 * st->authority + 1);
        if (n.len == 4 && memcmp(n.p, "host", 4) == 0 &&
            (v.len != a.len || strncasecmp(v.p, a.p, a.len) != 0))
            return 0;
    }
    return 1;
}

/* The last chunk of the request body toward the origin, with the client's trailer fields. */
static int write_request_end(struct stream *st)
{
    struct tbp_header fields[128];
    struct tbp_buf end;
    size_t i, n = 0;
    int ret;

    for (i = 0; st->in_trailers && i < st->n_fields && n < 128; i++)
        fields[n++] = (struct tbp_header){field(st, 2 * i), field(st, 2 * i + 1)};
    tbp_buf_init(&end, HEAD_MAX + 1024);
    ret = tbp_forward_chunked_end(fields, n, &end);
    if (ret == 0)
        ret = tbp_upstream_write(st->up, end.p, end.len);
    tbp_buf_dispose(&end);
    return ret;
}

/*
 * PING and SETTINGS a client may send per FLOOD_WINDOW_MS. nghttp2's own limit counts only the
 * acks still queued inside it, and pump() keeps that queue short by moving them to the output:
 * so the proxy counts what it receives, and ends a flood with GOAWAY ENHANCE_YOUR_CALM.
 */
#define FLOOD_WINDOW_MS 10000
#define FLOOD_MAX 1000

static int flooded(struct h2 *h, const nghttp2_frame *f)
{
    uint64_t now = tbp_loop_now(&h->c->w->loop);

    if ((f->hd.type != NGHTTP2_PING && f->hd.type != NGHTTP2_SETTINGS) ||
        (f->hd.flags & NGHTTP2_FLAG_ACK))
        return 0;
    if (now - h->flood_start > FLOOD_WINDOW_MS) {
        h->flood_start = now;
        h->flood_count = 0;
    }
    return ++h->flood_count > FLOOD_MAX;
}

static void final_goaway(struct h2 *h);
static void drain_timeout(struct tbp_timer *t);

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    struct h2 *h = user;

    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) && h->draining &&
        memcmp(f->ping.opaque_data, drain_ping, sizeof(drain_ping)) == 0) {
        final_goaway(h); /* a round trip since the shutdown notice */
        return 0;
    }
    if (flooded(h, f)) {
        tbp_log_error(h->c->w->px, TBP_LOG_WARN, "%s:%u: h2: PING/SETTINGS flood", h->c->ip,
                      h->c->port);
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    if (st == NULL)
        return 0;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        st->req_complete = 1;
    if (f->hd.type == NGHTTP2_HEADERS && !st->started) {
        if (!authority_matches_host(st)) {
            st->started = 1;
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
            return 0;
        }
        start_stream(st);
        return 0;
    }
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->up != NULL) {
        if (st->req_chunked && write_request_end(st) < 0)
            return 0;
        if (st->up != NULL)
            tbp_upstream_request_done(st->up);
    }
    return 0;
}

/* The request body grew past the route's max_body_size: not one more byte goes to the origin. */
static void body_too_large(struct stream *st)
{
    struct tbp_conn *c = st->h->c;

    tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: %s: request body over max_body_size (%llu): cut",
                  c->ip, c->port, st->x.req, (unsigned long long)st->route->max_body_size);
    tbp_upstream_abort(st->up); /* the origin sees its request cut */
    st->up = NULL;
    if (st->resp_submitted)
        nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    else
        answer_error(st, 413, "request body too large"); /* then RST_STREAM NO_ERROR */
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    char chunk[32];
    int k, ret = 0;

    (void)flags;
    (void)user;
    if (st != NULL) {
        st->t_body = tbp_loop_now(&st->h->c->w->loop);
        st->body_bytes += len;
        if (st->up != NULL && st->route != NULL && st->route->max_body_size != 0 &&
            st->body_bytes > st->route->max_body_size)
            body_too_large(st);
    }
    if (st == NULL || st->up == NULL || len == 0) {
        nghttp2_session_consume(s, id, len); /* nobody takes it: drop, keep windows open */
        return 0;
    }
    if (st->req_chunked) {
        k = tbp_chunk_head(chunk, len);
        ret = tbp_upstream_write(st->up, chunk, (size_t)k);
    }
    if (ret >= 0)
        ret = tbp_upstream_write(st->up, data, len);
    if (ret >= 0 && st->req_chunked)
        ret = tbp_upstream_write(st->up, TBP_CHUNK_END, 2);
    if (ret == 1 || st->body_paused) {
        st->body_paused = 1;
        st->unconsumed += len; /* the client's window stays shut until the origin catches up */
    } else {
        nghttp2_session_consume(s, id, len);
    }
    return 0;
}

/*
 * A GOAWAY with an error code (ours or nghttp2's: a flood, a protocol error): the connection
 * closes without lingering once it is out (conn.c). A response that ended before its request
 * did: ask the client to stop (RFC 9113 section 8.1).
 */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct h2 *h = user;
    struct stream *st;

    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
        h->c->no_linger = 1;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st != NULL && st->rst_after && !st->req_complete)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    struct h2 *h = user;

    (void)err;
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(st);
    }
    if (h->n_streams == 0 && h->c->state == TBP_CONN_OPEN) { /* idle from now on */
        h->t_idle = tbp_loop_now(&h->c->w->loop);
        tbp_timer_set(&h->c->w->loop, &h->c->timer,
                      idle_timer_ms(h, h->c->cfg->timeouts.idle_keepalive_ms));
    }
    return 0;
}

/* --- memory (see the top) -------------------------------------------------------------------- */

/* nghttp2's allocator: the C library's, and the frame buffer's address noted when the session
 * allocates it (nghttp2_buf_reserve: a realloc from NULL). */
static void *ng_malloc(size_t n, void *ud)
{
    (void)ud;
    return malloc(n);
}

static void ng_free(void *p, void *ud)
{
    struct h2 *h = ud;

    if (p != NULL && p == (void *)h->framebuf)
        h->framebuf = NULL;
    free(p);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return calloc(n, size);
}

/* The page size (0: unknown). */
static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);

    return page > 0 && (page & (page - 1)) == 0 ? (size_t)page : 0;
}

/* The frame buffer's allocation: whole pages (0: the page size is unknown). */
static size_t framebuf_span(void)
{
    size_t page = page_size();

    return page == 0 ? 0 : (NG_FRAMEBUF_LEN + page - 1) & ~(page - 1);
}

static void *ng_realloc(void *p, size_t n, void *ud)
{
    struct h2 *h = ud;
    size_t span;
    void *q;

    if (p == NULL && n == NG_FRAMEBUF_LEN && h->in_new && h->framebuf == NULL &&
        (span = framebuf_span()) != 0) {
        /* the frame buffer: whole pages of its own, so that all of them can be released */
        if (posix_memalign(&q, page_size(), span) != 0)
            return NULL;
        h->framebuf = q;
        return q;
    }
    if (p != NULL && p == (void *)h->framebuf) {
        if ((q = realloc(p, n)) != NULL)
            h->framebuf = NULL; /* not the buffer we know any more */
        return q;
    }
    return realloc(p, n);
}

/* The connection timer for a connection with no stream: the idle deadline (ms from now), or the
 * release of the frame buffer's pages if that comes first. */
static uint64_t idle_timer_ms(const struct h2 *h, uint64_t ms)
{
    return h->framebuf != NULL && IDLE_RELEASE_MS < ms ? IDLE_RELEASE_MS : ms;
}

/* Between frames the frame buffer holds nothing: the whole pages inside it go back to the system
 * (MADV_DONTNEED: the next frame written there gets fresh zeroed pages). Only with nothing queued
 * for sending, so that no frame is half-way through it. */
static void release_framebuf(struct h2 *h)
{
    if (h->framebuf == NULL || !h->framebuf_used || nghttp2_session_want_write(h->s))
        return;
    (void)madvise(h->framebuf, framebuf_span(), MADV_DONTNEED);
    h->framebuf_used = 0;
}

/* --- the session ------------------------------------------------------------------------------ */

/* Moves frames from nghttp2 to the connection's output, up to the high-water mark. */
static void pump(struct h2 *h)
{
    struct tbp_conn *c = h->c;
    const uint8_t *data;
    ssize_t n;

    if (h->in_recv)
        return; /* nghttp2 is not reentrant: h2_input pumps once mem_recv returns */

    while (c->state != TBP_CONN_CLOSED && c->out.len < tbp_conn_high_water(c)) {
        n = nghttp2_session_mem_send(h->s, &data);
        if (n < 0) {
            tbp_conn_close(c);
            return;
        }
        if (n == 0)
            break;
        h->framebuf_used = 1;
        if (tbp_conn_append(c, data, (size_t)n) != 0)
            return;
    }
    while (h->want_resume) {
        struct stream *st;
        h->want_resume = 0;
        for (st = h->streams; st != NULL; st = st->next)
            if (st->up_paused && st->resp.len < h->stream_low && st->up != NULL)
                break;
        if (st == NULL)
            break;
        st->up_paused = 0;
        h->want_resume = 1;          /* scan again: the resume may free streams (on_stream_close) */
        tbp_upstream_resume(st->up); /* may call back: resp_body pumps again */
        if (c->state == TBP_CONN_CLOSED)
            return;
    }
    if ((!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) ||
        (h->goaway && h->n_streams == 0))
        tbp_conn_linger(c); /* GOAWAY sent and its streams done: close once all is out */
    tbp_conn_schedule_flush(c);
}

static int h2_start(struct tbp_conn *c)
{
    const struct tbp_config *cfg = c->cfg;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_mem mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->limits.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->limits.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    struct h2 *h = calloc(1, sizeof(*h));
    int ret = -1, rv;

    if (h == NULL || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto Exit;
    h->c = c;
    h->drain_timer.cb = drain_timeout;
    h->t_open = tbp_loop_now(&c->w->loop);
    h->stream_high = tbp_conn_high_water(c) / 2;
    h->stream_low = h->stream_high / 4;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);                  /* SETTINGS flood */
    nghttp2_option_set_max_outbound_ack(opt, 1000);            /* PING / SETTINGS ack flood */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33); /* rapid reset */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, DEFLATE_TABLE);
    mem.mem_user_data = h;
    h->in_new = 1;
    rv = nghttp2_session_server_new3(&h->s, cbs, h, opt, &mem);
    h->in_new = 0;
    if (rv != 0)
        goto Exit;
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, 4 * WINDOW) != 0)
        goto Exit;
    c->pd = h;
    h = NULL;
    pump(c->pd);
    tbp_timer_set(&c->w->loop, &c->timer, idle_timer_ms(c->pd, cfg->timeouts.first_request_ms));
    ret = 0;
Exit:
    if (h != NULL) {
        nghttp2_session_del(h->s);
        free(h);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return ret;
}

static int h2_want_input(const struct tbp_conn *c)
{
    const struct h2 *h = H2(c);

    return c->out.len < tbp_conn_high_water(c) && nghttp2_session_want_read(h->s);
}

static int h2_input(struct tbp_conn *c, const char *p, size_t n, size_t *consumed)
{
    struct h2 *h = H2(c);
    ssize_t r;

    h->in_recv = 1;
    r = nghttp2_session_mem_recv(h->s, (const uint8_t *)p, n);
    h->in_recv = 0;

    if (c->state == TBP_CONN_CLOSED)
        return -1;
    if (r < 0) {
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: h2: %s", c->ip, c->port,
                      nghttp2_strerror((int)r));
        nghttp2_session_terminate_session(h->s, NGHTTP2_PROTOCOL_ERROR);
        pump(h);
        tbp_conn_linger(c);
        return -1;
    }
    *consumed = (size_t)r;
    pump(h); /* no timer here: input alone never moves a deadline later (see the top) */
    return c->state == TBP_CONN_OPEN ? 0 : -1;
}

static void h2_drained(struct tbp_conn *c)
{
    pump(H2(c));
}

/* --- timeouts (see the top of the file) ------------------------------------------------------ */

/* Brings the connection timer forward to `due` (loop ms) when it is set later, or not at all. */
static void timer_earlier(struct h2 *h, uint64_t due)
{
    struct tbp_loop *l = &h->c->w->loop;
    uint64_t now = tbp_loop_now(l);

    if (h->c->state != TBP_CONN_OPEN || (h->c->timer.slot != 0 && h->c->timer.deadline <= due))
        return;
    tbp_timer_set(l, &h->c->timer, due > now ? due - now : 0);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* The next deadline of a stream (loop ms), UINT64_MAX when it has none now. */
static uint64_t stream_due(const struct h2 *h, const struct stream *st)
{
    const struct tbp_timeouts *t = &h->c->cfg->timeouts;
    uint64_t due = UINT64_MAX;

    if (st->reset_sent)
        return due;
    if (!st->started) {
        due = st->t_begin + t->header_read_ms;
        return h->first_done ? due : min_u64(due, h->t_open + t->first_request_ms);
    }
    if (!st->req_complete && !st->body_paused && !st->body_timed_out)
        due = st->t_body + t->body_read_ms;
    if (st->resp.len > 0)
        due = min_u64(due, st->t_sent + t->send_ms);
    return due;
}

/* A stream's request body stalled (408, or a reset once the response began), or its response
 * waited too long for the client's window (a 408 too: then the stream is reset). */
static void stream_timed_out(struct h2 *h, struct stream *st, uint64_t now)
{
    struct tbp_conn *c = h->c;
    int body = !st->req_complete && !st->body_paused && !st->body_timed_out &&
               now >= st->t_body + c->cfg->timeouts.body_read_ms;

    tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: h2 stream %d: %s: %s", c->ip, c->port,
                  (int)st->id, st->x.req,
                  body ? "request body timeout" : "send timeout (the client's window stays shut)");
    if (st->up != NULL) {
        tbp_upstream_abort(st->up);
        st->up = NULL;
    }
    if (body) {
        st->body_timed_out = 1;
        if (!st->resp_submitted) {
            answer_error(st, 408, "request body timeout"); /* then RST_STREAM NO_ERROR */
            return;
        }
    }
    st->reset_sent = 1;
    nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

static void h2_timeout(struct tbp_conn *c)
{
    struct h2 *h = H2(c);
    const struct tbp_timeouts *t = &c->cfg->timeouts;
    uint64_t now = tbp_loop_now(&c->w->loop), next = UINT64_MAX, due;
    struct stream *st;

    if (h->n_streams == 0) {
        uint64_t since = h->first_done ? h->t_idle : h->t_open;
        due = since + (h->first_done ? t->idle_keepalive_ms : t->first_request_ms);
        if (now < due) {
            if (h->framebuf_used && now >= since + IDLE_RELEASE_MS)
                release_framebuf(h);
            else if (h->framebuf_used && since + IDLE_RELEASE_MS < due)
                due = since + IDLE_RELEASE_MS;
            tbp_timer_set(&c->w->loop, &c->timer, due - now);
            return;
        }
        nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR); /* idle: GOAWAY and close */
        pump(h);
        tbp_conn_linger(c);
        return;
    }
    for (st = h->streams; st != NULL; st = st->next) {
        if ((due = stream_due(h, st)) > now) {
            next = min_u64(next, due);
        } else if (!st->started) {
            /* an unfinished header block: the connection cannot carry anything else */
            tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: h2: request header timeout: closed",
                          c->ip, c->port);
            nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
            pump(h);
            tbp_conn_linger(c);
            return;
        } else {
            stream_timed_out(h, st, now); /* frees nothing: streams close in pump */
        }
    }
    if (next != UINT64_MAX)
        tbp_timer_set(&c->w->loop, &c->timer, next - now);
    pump(h);
}

/* The GOAWAY with the last stream processed: nothing newer will be; close once none is left. */
static void final_goaway(struct h2 *h)
{
    tbp_timer_cancel(&h->c->w->loop, &h->drain_timer);
    if (h->goaway)
        return;
    h->goaway = 1;
    if (nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->s), NGHTTP2_NO_ERROR, NULL,
                              0) != 0) {
        tbp_conn_close(h->c);
        return;
    }
    pump(h); /* a no-op inside mem_recv: h2_input pumps after it */
}

static void drain_timeout(struct tbp_timer *t)
{
    struct h2 *h = (struct h2 *)((char *)t - offsetof(struct h2, drain_timer));

    if (h->c->state == TBP_CONN_OPEN)
        final_goaway(h);
}

static void h2_drain(struct tbp_conn *c)
{
    struct h2 *h = H2(c);

    if (h->goaway || h->draining)
        return;
    h->draining = 1;
    if (nghttp2_submit_shutdown_notice(h->s) != 0 ||
        nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, drain_ping) != 0 ||
        tbp_timer_set(&c->w->loop, &h->drain_timer, DRAIN_GRACE_MS) != 0) {
        final_goaway(h);
        return;
    }
    pump(h);
}

static void h2_abort(struct tbp_conn *c)
{
    struct h2 *h = H2(c);
    struct stream *st;

    tbp_timer_cancel(&c->w->loop, &h->drain_timer);
    for (st = h->streams; st != NULL; st = st->next) {
        if (st->up != NULL) {
            tbp_upstream_abort(st->up);
            st->up = NULL;
        }
    }
}

static void h2_dispose(struct tbp_conn *c)
{
    struct h2 *h = H2(c);

    if (h == NULL)
        return;
    tbp_timer_cancel(&c->w->loop, &h->drain_timer);
    while (h->streams != NULL) {
        nghttp2_session_set_stream_user_data(h->s, h->streams->id, NULL);
        stream_free(h->streams);
    }
    nghttp2_session_del(h->s);
    free(h);
    c->pd = NULL;
}

const struct tbp_protocol tbp_proto_h2 = {
    .name = "h2",
    .start = h2_start,
    .input = h2_input,
    .want_input = h2_want_input,
    .drained = h2_drained,
    .timeout = h2_timeout,
    .drain = h2_drain,
    .abort = h2_abort,
    .dispose = h2_dispose,
};
