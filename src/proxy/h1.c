/*
 * The HTTP/1.1 front end: the protocol that runs on a client connection (conn.c) when ALPN
 * chose http/1.1 (or http/1.1_tb_*) or nothing.
 *
 * HTTP/1.1 is serial: one exchange at a time (enum h1_state). Pipelined requests wait, unparsed,
 * in the connection's read buffer until the exchange before them is over, so responses go out
 * in order. Bodies stream both ways with backpressure and never sit whole in memory: request
 * bytes go to the upstream connection's queue and the parser pauses while that queue is above
 * its high-water mark (on_drain resumes it); response bytes go to the connection's output and
 * the upstream stops reading while that is above the connection's high-water mark
 * (limits.max_buffer_bytes; drained resumes it).
 *
 * Timeouts (c->timer, one at a time): from the handshake to the first request's head,
 * timeouts.first_request; from the first byte of a request head to its end, timeouts.header_read,
 * a deadline that bytes trickling in do not move (slowloris); the head is then answered 408 and
 * the connection closed. Between two reads of a request body, timeouts.body_read (408, or a cut
 * once the response began). Between requests, timeouts.idle_keepalive (closed silently). The
 * send timeout (a client that reads nothing while its response waits) is the connection's
 * (conn.h). A request body is counted against the route's max_body_size as it arrives: a
 * Content-Length over it was refused before anything was forwarded (exchange.c); a chunked body
 * that grows past it is cut there: 413 when the response has not begun, else the connection is
 * closed, and the origin connection is dropped either way.
 *
 * Graceful stop (h1_drain): a kept-alive connection with nothing in flight closes at once; one
 * with a request in flight finishes it, with "Connection: close" when its response head has not
 * gone out yet, and closes after it. A connection that has not sent its first request yet (its
 * handshake may have just finished) gets that request served, with "Connection: close": closing
 * it would lose a request the client has every reason to think was accepted.
 *
 * Memory: a kept-alive connection between requests holds only struct h1 (and the connection's
 * own state, conn.c). The parser's buffer is released as soon as a request has been read whole
 * (tbp_h1_parser_release: the next request's first bytes allocate it again), and the access-log
 * record (h->x) lives from a request's head until the connection is idle again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "exchange.h"
#include "forward.h"
#include "h1parse.h"
#include "upstream.h"
#include "worker.h"

enum h1_state {
    H1_IDLE,     /* between requests, or reading a request head */
    H1_EXCHANGE, /* a request is being forwarded and its response relayed */
    H1_DONE,     /* the last response is queued: the connection closes after it */
};

struct h1 {
    struct tbp_conn *c;
    struct tbp_h1_parser parser;
    enum h1_state state;
    struct tbp_upconn *up;
    int body_paused;  /* request body reading paused: the upstream queue is full */
    int up_paused;    /* upstream reading paused: our output is full */
    int req_complete; /* the whole request was read from the client */
    int req_chunked;  /* the request body goes to the origin chunked */
    int resp_started; /* the response head is queued for the client */
    int resp_chunked; /* the response body goes to the client chunked */
    int head_request;
    int keep_alive;
    int head_started;              /* bytes of the next request head arrived: header_read runs */
    uint64_t t_open;               /* loop ms: the protocol started (first_request counts from) */
    uint64_t body_bytes;           /* request body bytes received (de-chunked) */
    unsigned requests;             /* request heads received on this connection */
    const struct tbp_route *route; /* the current request's, for the response (NULL: none) */
    struct tbp_xlog *x; /* the access-log record of the request being handled: from its head (or
                           the error that ended a headless one) until the connection is idle
                           again or closes; NULL in between (see "Memory" at the top) */
};

#define H1(c) ((struct h1 *)(c)->pd)

/* A fresh access-log record (h->x) for the request that begins. NULL when out of memory: the
 * connection is closed then. */
static struct tbp_xlog *xlog_new(struct h1 *h)
{
    if (h->x == NULL && (h->x = malloc(sizeof(*h->x))) == NULL) {
        tbp_conn_close(h->c);
        return NULL;
    }
    return h->x;
}

/* The request is over and its record written: an idle connection keeps none. */
static void xlog_free(struct h1 *h)
{
    free(h->x);
    h->x = NULL;
}

/* The connection will not carry another request: close once the output is sent. */
static void finish(struct h1 *h)
{
    h->state = H1_DONE;
    tbp_conn_linger(h->c);
}

/* Answers with a short error response; the connection closes after it when `close`. */
static void answer_error(struct h1 *h, int status, const char *why, int close)
{
    struct tbp_buf msg;

    tbp_buf_init(&msg, 4096);
    tbp_xlog_status(h->x, h->c, status);
    if ((status == 401 ? tbp_forward_unauthorized(why, close, &msg)
                       : tbp_forward_error_response(status, why, close, &msg)) == 0)
        (void)tbp_conn_append(h->c, msg.p, msg.len);
    tbp_buf_dispose(&msg);
    if (h->c->state == TBP_CONN_CLOSED)
        return;
    tbp_xlog_write(h->x, h->c, "h1");
    if (close)
        finish(h);
}

/* --- the response (upstream sink; ctx is the struct h1) --------------------------------------- */

static void resp_head(void *ctx, const struct tbp_http_head *rh)
{
    struct h1 *h = ctx;
    enum tbp_body_framing f = rh->framing;
    const struct tbp_http_head *out;
    struct tbp_head_edit edit = {0};
    struct tbp_buf head;
    int ret;

    if (h->head_request || rh->status == 204 || rh->status == 304)
        f = TBP_BODY_NONE;
    else if (f == TBP_BODY_CHUNKED || f == TBP_BODY_UNTIL_CLOSE)
        f = h->keep_alive || h->x->version_minor >= 1 ? TBP_BODY_CHUNKED : TBP_BODY_UNTIL_CLOSE;
    h->resp_chunked = f == TBP_BODY_CHUNKED;
    if (f == TBP_BODY_UNTIL_CLOSE)
        h->keep_alive = 0;
    tbp_xlog_status(h->x, h->c, rh->status);
    h->x->t_upstream = tbp_loop_now(&h->c->w->loop);
    tbp_buf_init(&head, 128 * 1024);
    ret = tbp_exchange_response(h->c, h->route, rh, &edit, &out, h->x);
    if (ret == 0)
        ret = tbp_forward_response_head(out, h->keep_alive, f, rh->content_length, h->head_request,
                                        &head);
    tbp_head_edit_dispose(&edit);
    if (ret != 0) {
        tbp_buf_dispose(&head);
        tbp_conn_close(h->c); /* nothing sane to send: cut it */
        return;
    }
    h->resp_started = 1;
    (void)tbp_conn_append(h->c, head.p, head.len);
    tbp_buf_dispose(&head);
    tbp_conn_schedule_flush(h->c);
}

static int resp_body(void *ctx, const char *p, size_t n)
{
    struct h1 *h = ctx;
    struct tbp_conn *c = h->c;
    char chunk[32];
    int k;

    if (n == 0)
        return 0; /* an empty chunk would end the chunked body */
    h->x->resp_bytes += n;
    if (h->resp_chunked) {
        k = tbp_chunk_head(chunk, n);
        if (tbp_conn_append(c, chunk, (size_t)k) != 0)
            return 1;
    }
    if (tbp_conn_append(c, p, n) != 0 ||
        (h->resp_chunked && tbp_conn_append(c, TBP_CHUNK_END, 2) != 0))
        return 1;
    if (c->out.len >= TBP_CONN_RBUF && tbp_conn_flush(c) != 0)
        return 1; /* write as we go: the client gets bytes without waiting for the loop */
    if (c->out.len >= tbp_conn_high_water(c))
        h->up_paused = 1;
    tbp_conn_schedule_flush(c);
    return h->up_paused;
}

/* The exchange is over: next request, or close. */
static void exchange_done(struct h1 *h)
{
    tbp_xlog_write(h->x, h->c, "h1");
    h->up = NULL;
    h->up_paused = h->body_paused = 0;
    if (!h->req_complete || !h->keep_alive || h->c->w->draining) {
        finish(h); /* an unread request body cannot be skipped safely */
        return;
    }
    h->state = H1_IDLE;
    xlog_free(h);
    tbp_timer_set(&h->c->w->loop, &h->c->timer, h->c->cfg->timeouts.idle_keepalive_ms);
}

/* Ends a chunked body toward the client: the last chunk with the trailer fields, if any. */
static int end_chunked(struct tbp_conn *c, const struct tbp_header *trailers, size_t n)
{
    struct tbp_buf end;
    int ret;

    tbp_buf_init(&end, 128 * 1024);
    ret = tbp_forward_chunked_end(trailers, n, &end);
    if (ret == 0)
        ret = tbp_conn_append(c, end.p, end.len);
    tbp_buf_dispose(&end);
    return ret;
}

static void resp_end(void *ctx, const struct tbp_header *trailers, size_t n_trailers)
{
    struct h1 *h = ctx;
    struct tbp_conn *c = h->c;

    h->up = NULL;
    if (c->state == TBP_CONN_CLOSED)
        return;
    if (h->resp_chunked && end_chunked(c, trailers, n_trailers) != 0)
        return;
    exchange_done(h);
    tbp_conn_drive(c);
}

static void resp_error(void *ctx, int status, const char *why)
{
    struct h1 *h = ctx;
    struct tbp_conn *c = h->c;

    h->up = NULL;
    if (c->state == TBP_CONN_CLOSED)
        return;
    tbp_log_error(c->w->px, TBP_LOG_WARN, "%s:%u: %s -> %d (%s)", c->ip, c->port, h->x->req, status,
                  why);
    if (h->resp_started) {
        tbp_xlog_write(h->x, c, "h1");
        /* the response was cut: the client must see it cut too, and a body delimited by the
         * close must not end with close_notify (that would make it look complete) */
        SSL_set_quiet_shutdown(c->ssl, 1);
        tbp_conn_close(c);
        return;
    }
    answer_error(h, status, status == 504 ? "origin timed out" : "origin unavailable",
                 !h->req_complete || !h->keep_alive);
    if (h->state == H1_EXCHANGE && h->req_complete) {
        h->state = H1_IDLE;
        xlog_free(h);
    }
    tbp_conn_drive(c);
}

static void req_drain(void *ctx)
{
    struct h1 *h = ctx;

    if (!h->body_paused || h->c->state == TBP_CONN_CLOSED)
        return;
    h->body_paused = 0;
    tbp_h1_resume(&h->parser);
    tbp_conn_drive(h->c);
}

static const struct tbp_upstream_sink sink = {resp_head, resp_body, resp_end, resp_error,
                                              req_drain};

/* --- the request (parser callbacks; ctx is the struct h1) ------------------------------------- */

static int req_head(void *ctx, const struct tbp_http_head *rh)
{
    struct h1 *h = ctx;
    struct tbp_conn *c = h->c;
    const char *why = NULL;
    int status;

    if (xlog_new(h) == NULL)
        return -1;
    tbp_xlog_begin(h->x, c, rh);
    h->requests++;
    h->head_started = 0;
    h->body_bytes = 0;
    h->req_complete = h->resp_started = h->resp_chunked = 0;
    h->head_request = rh->method.len == 4 && memcmp(rh->method.p, "HEAD", 4) == 0;
    h->keep_alive = rh->keep_alive && !c->w->draining;
    h->req_chunked = rh->framing == TBP_BODY_CHUNKED;
    h->state = H1_EXCHANGE;
    status = tbp_exchange_start(c, rh, h->head_request, rh->framing, &sink, h, h->x, &h->up,
                                &h->route, &why);
    if (status != 0) {
        /* Token Binding failures close the connection (spec "Validation"); so does anything
         * that leaves a request body unread, and so does a client that did not ask to keep the
         * connection (HTTP/1.0 without keep-alive, "Connection: close", a graceful stop). A 401
         * from a route's JWT check is an ordinary answer: the connection stays. */
        answer_error(h, status, why,
                     h->x->tb_failed || rh->framing != TBP_BODY_NONE || status == 502 ||
                         !h->keep_alive);
        return h->x->tb_failed ? -1 : 0;
    }
    if (rh->expect_continue && rh->framing != TBP_BODY_NONE)
        (void)tbp_conn_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    tbp_timer_set(&c->w->loop, &c->timer, c->cfg->timeouts.body_read_ms);
    return 0;
}

/* A request body grew past its route's max_body_size: not one more byte goes to the origin. */
static int body_too_large(struct h1 *h)
{
    struct tbp_conn *c = h->c;

    tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: %s: request body over max_body_size (%llu): cut",
                  c->ip, c->port, h->x->req, (unsigned long long)h->route->max_body_size);
    if (h->up != NULL) {
        tbp_upstream_abort(h->up); /* the origin sees its request cut */
        h->up = NULL;
    }
    if (h->resp_started) {
        tbp_conn_close(c); /* a response is under way: the client must see it cut */
        return -1;
    }
    answer_error(h, 413, "request body too large", 1);
    return -1; /* the parser stops: the rest of the body is never read */
}

static int req_body(void *ctx, const char *p, size_t n)
{
    struct h1 *h = ctx;
    char chunk[32];
    int k, ret = 0;

    h->body_bytes += n;
    if (h->up != NULL && h->route != NULL && h->route->max_body_size != 0 &&
        h->body_bytes > h->route->max_body_size)
        return body_too_large(h);
    if (h->up == NULL || n == 0)
        return 0; /* answered already: the rest of the body is read and dropped */
    if (h->req_chunked) {
        k = tbp_chunk_head(chunk, n);
        ret = tbp_upstream_write(h->up, chunk, (size_t)k);
    }
    if (ret >= 0)
        ret = tbp_upstream_write(h->up, p, n);
    if (ret >= 0 && h->req_chunked)
        ret = tbp_upstream_write(h->up, TBP_CHUNK_END, 2);
    if (ret < 0)
        return 0; /* on_error has answered; the rest is dropped */
    if (ret == 1) {
        h->body_paused = 1;
        return TBP_H1_PAUSE;
    }
    tbp_timer_set(&h->c->w->loop, &h->c->timer, h->c->cfg->timeouts.body_read_ms);
    return 0;
}

/* The last chunk of a chunked request body, with the client's trailer fields. */
static int write_request_end(struct h1 *h)
{
    const struct tbp_header *trailers;
    struct tbp_buf end;
    size_t n = 0;
    int ret;

    trailers = tbp_h1_trailers(&h->parser, &n);
    tbp_buf_init(&end, 128 * 1024);
    ret = tbp_forward_chunked_end(trailers, n, &end);
    if (ret == 0)
        ret = tbp_upstream_write(h->up, end.p, end.len);
    tbp_buf_dispose(&end);
    return ret;
}

static int req_end(void *ctx)
{
    struct h1 *h = ctx;

    h->req_complete = 1;
    if (h->c->state == TBP_CONN_CLOSED)
        return 0;
    tbp_timer_cancel(&h->c->w->loop, &h->c->timer);
    if (h->up != NULL) {
        if (h->req_chunked && write_request_end(h) < 0)
            return 0;
        if (h->up != NULL)
            tbp_upstream_request_done(h->up);
    } else if (h->state == H1_EXCHANGE) {
        h->state = H1_IDLE; /* answered while the body was arriving: done now */
        xlog_free(h);
        tbp_timer_set(&h->c->w->loop, &h->c->timer, h->c->cfg->timeouts.idle_keepalive_ms);
    }
    return 0; /* the parser stops at the message boundary by itself */
}

static const struct tbp_h1_callbacks request_cb = {req_head, req_body, req_end};

/* --- the protocol ----------------------------------------------------------------------------- */

static int h1_start(struct tbp_conn *c)
{
    const struct tbp_config *cfg = c->cfg;
    struct tbp_h1_limits lim = {0};
    struct h1 *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return -1;
    h->c = c;
    lim.max_header_bytes = cfg->limits.max_header_bytes;
    lim.max_headers = cfg->limits.max_headers;
    if (tbp_h1_parser_init(&h->parser, 1, &lim, &request_cb, h) != 0) {
        free(h);
        return -1;
    }
    tbp_h1_set_max_uri(&h->parser, cfg->limits.max_uri_bytes);
    c->pd = h;
    h->t_open = tbp_loop_now(&c->w->loop);
    tbp_timer_set(&c->w->loop, &c->timer, cfg->timeouts.first_request_ms);
    return 0;
}

static int h1_want_input(const struct tbp_conn *c)
{
    const struct h1 *h = H1(c);

    if (h->state == H1_IDLE)
        return c->out.len < tbp_conn_high_water(c);
    return h->state == H1_EXCHANGE && !h->req_complete && !h->body_paused;
}

/* The first bytes of a request head arrived: the head must be complete within header_read (and,
 * for the first request, by the end of first_request), however slowly the rest comes. */
static void head_begins(struct h1 *h)
{
    struct tbp_conn *c = h->c;
    uint64_t ms = c->cfg->timeouts.header_read_ms, now = tbp_loop_now(&c->w->loop);
    uint64_t first_due = h->t_open + c->cfg->timeouts.first_request_ms;

    h->head_started = 1;
    if (h->requests == 0)
        ms = first_due <= now ? 0 : first_due - now < ms ? first_due - now : ms;
    tbp_timer_set(&c->w->loop, &c->timer, ms);
}

/* The access-log record of a request that never got a complete head. -1: out of memory, the
 * connection was closed. */
static int xlog_headless(struct h1 *h)
{
    if (xlog_new(h) == NULL)
        return -1;
    memset(h->x, 0, sizeof(*h->x));
    h->x->tb = "none";
    h->x->t_start = tbp_loop_now(&h->c->w->loop);
    return 0;
}

static int h1_input(struct tbp_conn *c, const char *p, size_t n, size_t *consumed)
{
    struct h1 *h = H1(c);
    int ret;

    if (h->state == H1_IDLE && !h->head_started && n > 0)
        head_begins(h); /* empty lines before a request count too: they are its first bytes */
    ret = tbp_h1_feed(&h->parser, p, n, consumed);
    if (c->state == TBP_CONN_CLOSED)
        return -1;
    if (ret < 0) {
        if (h->state != H1_DONE) {
            tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: bad request: %s", c->ip, c->port,
                          tbp_h1_strerror(ret));
            if (h->up != NULL) {
                tbp_upstream_abort(h->up);
                h->up = NULL;
            }
            if (h->state == H1_IDLE && xlog_headless(h) != 0)
                return -1;
            answer_error(h, tbp_h1_error_status(ret), tbp_h1_strerror(ret), 1);
        }
        return -1;
    }
    /* between requests (the last one read whole, its response maybe still under way): the
     * parser's buffer goes, and the next request's first bytes allocate it again */
    tbp_h1_parser_release(&h->parser);
    return 0;
}

static void h1_drained(struct tbp_conn *c)
{
    struct h1 *h = H1(c);

    if (h->up_paused && h->up != NULL) {
        h->up_paused = 0;
        tbp_upstream_resume(h->up); /* may call back into us */
    }
}

static void h1_timeout(struct tbp_conn *c)
{
    struct h1 *h = H1(c);

    if (h->state == H1_EXCHANGE && h->up != NULL && !h->req_complete) {
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: %s: request body timeout", c->ip, c->port,
                      h->x->req);
        tbp_upstream_abort(h->up);
        h->up = NULL;
        if (h->resp_started)
            tbp_conn_close(c); /* the origin answered early: its response is cut */
        else
            answer_error(h, 408, "request body timeout", 1);
        return;
    }
    if (h->state == H1_IDLE && h->head_started) {
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: request header timeout (%s): closed", c->ip,
                      c->port, h->requests == 0 ? "first request" : "header_read");
        if (xlog_headless(h) == 0)
            answer_error(h, 408, "request header timeout", 1);
        return;
    }
    tbp_conn_close(c); /* idle keep-alive, or no first request: nothing to answer */
}

static void h1_drain(struct tbp_conn *c)
{
    struct h1 *h = H1(c);

    if (h->state == H1_IDLE && !tbp_h1_in_message(&h->parser) && c->roff == c->rlen) {
        if (h->requests > 0) { /* kept alive, nothing in flight: close (once output is out) */
            finish(h);
            tbp_conn_schedule_flush(c);
        }
        return; /* before the first request: serve it (req_head turns keep-alive off) */
    }
    if (h->state == H1_EXCHANGE && !h->resp_started)
        h->keep_alive = 0; /* the response head will say "Connection: close" */
    /* else the response is under way: exchange_done closes after it */
}

static void h1_abort(struct tbp_conn *c)
{
    struct h1 *h = H1(c);

    if (h->up != NULL) {
        tbp_upstream_abort(h->up);
        h->up = NULL;
    }
}

static void h1_dispose(struct tbp_conn *c)
{
    struct h1 *h = H1(c);

    if (h == NULL)
        return;
    tbp_h1_parser_dispose(&h->parser);
    free(h->x);
    free(h);
    c->pd = NULL;
}

const struct tbp_protocol tbp_proto_h1 = {
    .name = "h1",
    .start = h1_start,
    .input = h1_input,
    .want_input = h1_want_input,
    .drained = h1_drained,
    .timeout = h1_timeout,
    .drain = h1_drain,
    .abort = h1_abort,
    .dispose = h1_dispose,
};
