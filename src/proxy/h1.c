/*
 * The HTTP/1.1 front end: one client connection from accept to close.
 *
 * States (enum client_state): HANDSHAKE, then READING a request head, EXCHANGE while a request
 * is forwarded and its response relayed, CLOSING while the last bytes drain. HTTP/1.1 is
 * serial: pipelined requests wait, unparsed, in the read buffer until the exchange before them
 * is over, so responses go out in order.
 *
 * Bodies stream both ways with backpressure and never sit whole in memory: request bytes go to
 * the upstream connection's queue and the parser pauses while that queue is above its
 * high-water mark (on_drain resumes it); response bytes go to this connection's output buffer
 * and the upstream stops reading while that buffer is above HIGH_WATER.
 *
 * Lifetime: a client is freed only after the loop turn in which it was closed (deferred), so a
 * callback further up the stack never touches freed memory; after client_close() every path
 * checks c->state == C_CLOSED before using the SSL or the socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "binding.h"
#include "buf.h"
#include "forward.h"
#include "h1parse.h"
#include "upstream.h"
#include "worker.h"

#define RBUF_SIZE 16384
#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)
#define OUT_MAX (HIGH_WATER + 2 * 1024 * 1024)
#define LINGER_MS 5000
#define LOG_FIELD 256

#define CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum client_state {
    C_HANDSHAKE, /* TLS handshake in progress */
    C_READING,   /* between requests, or reading a request head */
    C_EXCHANGE,  /* a request is being forwarded and its response relayed */
    C_CLOSING,   /* sending what is left, then close */
    C_CLOSED,    /* closed; freed after this loop turn */
};

struct tbp_client {
    struct tbp_deferred defer;
    struct tbp_io io;
    struct tbp_worker *w;
    struct tbp_client *prev, *next;
    size_t listener;
    enum client_state state;
    SSL *ssl;
    struct tbp_tls_info tls;
    struct tbp_binding tb;
    struct tbp_h1_parser parser;
    char rbuf[RBUF_SIZE];
    size_t rlen, roff;
    struct tbp_buf out;
    struct tbp_timer timer;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    int trusted;
    int ssl_want_write; /* the last SSL_read/handshake asked for writability */
    /* the current exchange */
    struct tbp_upconn *up;
    int body_paused;  /* request body reading paused: the upstream queue is full */
    int up_paused;    /* upstream reading paused: our output buffer is full */
    int req_complete; /* the whole request was read from the client */
    int req_chunked;  /* request body goes to the origin chunked */
    int resp_started; /* response head queued for the client */
    int resp_chunked; /* response body goes to the client chunked */
    int head_request;
    int keep_alive;
    int status;
    const char *tb_outcome;
    uint64_t t_start, t_upstream, resp_bytes; /* t_upstream: response head from the origin */
    char log_req[LOG_FIELD], log_referer[LOG_FIELD], log_ua[LOG_FIELD];
    char log_upstream[64];
};

static void client_drive(struct tbp_client *c);
static void client_update_events(struct tbp_client *c);

/* --- lifetime --------------------------------------------------------------------------------- */

static void client_free(struct tbp_deferred *d)
{
    struct tbp_client *c = CONTAINER(d, struct tbp_client, defer);

    SSL_free(c->ssl);
    tbp_binding_dispose(&c->tb);
    tbp_h1_parser_dispose(&c->parser);
    tbp_buf_dispose(&c->out);
    free(c);
}

static void client_close(struct tbp_client *c)
{
    struct tbp_worker *w = c->w;

    if (c->state == C_CLOSED)
        return;
    if (c->up != NULL) {
        tbp_upstream_abort(c->up);
        c->up = NULL;
    }
    if (c->state != C_HANDSHAKE)
        (void)SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
    ERR_clear_error();
    c->state = C_CLOSED;
    tbp_timer_cancel(&w->loop, &c->timer);
    tbp_io_close(&w->loop, &c->io);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_clients--;
    tbp_loop_defer(&w->loop, &c->defer);
}

void tbp_client_close_all(struct tbp_worker *w)
{
    while (w->clients != NULL)
        client_close(w->clients);
}

/* --- logs ------------------------------------------------------------------------------------- */

/* Copies s into a log field: printable ASCII only, quotes and backslashes escaped, bounded. */
static void log_field(char *dst, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 5 < LOG_FIELD; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20 || ch > 0x7e) {
            o += (size_t)snprintf(dst + o, LOG_FIELD - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o] = '\0';
}

static void access_log(struct tbp_client *c)
{
    char line[2048], date[64];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (c->w->px->access_fd == -1)
        return;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    n = snprintf(line, sizeof(line),
                 "%s - - [%s] \"%s\" %d %llu \"%s\" \"%s\" tb=%s up=%s ut=%.3f rt=%.3f\n", c->ip,
                 date, c->log_req, c->status, (unsigned long long)c->resp_bytes,
                 c->log_referer[0] ? c->log_referer : "-", c->log_ua[0] ? c->log_ua : "-",
                 c->tb_outcome ? c->tb_outcome : "none", c->log_upstream[0] ? c->log_upstream : "-",
                 (double)(c->t_upstream - c->t_start) / 1000.0,
                 (double)(tbp_loop_now(&c->w->loop) - c->t_start) / 1000.0);
    if (n > 0)
        tbp_log_write(c->w->px->access_fd, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void count_status(struct tbp_client *c, int status)
{
    c->status = status;
    if (status >= 100 && status < 600)
        c->w->stats.responses[status / 100]++;
}

/* --- output ----------------------------------------------------------------------------------- */

static int out_append(struct tbp_client *c, const void *p, size_t n)
{
    if (tbp_buf_append(&c->out, p, n) != 0) {
        client_close(c);
        return -1;
    }
    return 0;
}

/* Writes queued output. 0, or -1 if the connection was closed. */
static int client_flush(struct tbp_client *c)
{
    int n;

    c->ssl_want_write = 0;
    while (c->out.len > 0) {
        ERR_clear_error();
        n = SSL_write(c->ssl, c->out.p, (int)(c->out.len > 65536 ? 65536 : c->out.len));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                break;
            client_close(c);
            return -1;
        }
        tbp_buf_consume(&c->out, (size_t)n);
    }
    if (c->up_paused && c->out.len < LOW_WATER && c->up != NULL) {
        c->up_paused = 0;
        tbp_upstream_resume(c->up); /* may call back into us */
        if (c->state == C_CLOSED)
            return -1;
    }
    if (c->state == C_CLOSING && c->out.len == 0) {
        client_close(c);
        return -1;
    }
    return 0;
}

/* Answers with a short error response; the connection closes after it when `close`. */
static void client_error(struct tbp_client *c, int status, const char *why, int close)
{
    struct tbp_buf msg;

    tbp_buf_init(&msg, 4096);
    count_status(c, status);
    if (tbp_forward_error_response(status, why, close, &msg) == 0)
        (void)out_append(c, msg.p, msg.len);
    tbp_buf_dispose(&msg);
    if (c->state == C_CLOSED)
        return;
    access_log(c);
    if (close)
        c->state = C_CLOSING;
}

/* --- the response (upstream sink) ------------------------------------------------------------- */

static void resp_head(void *ctx, const struct tbp_http_head *h)
{
    struct tbp_client *c = ctx;
    enum tbp_body_framing f = h->framing;
    struct tbp_buf head;

    if (c->head_request || h->status == 204 || h->status == 304)
        f = TBP_BODY_NONE;
    else if (f == TBP_BODY_CHUNKED || f == TBP_BODY_UNTIL_CLOSE)
        f = c->keep_alive ? TBP_BODY_CHUNKED : TBP_BODY_UNTIL_CLOSE;
    c->resp_chunked = f == TBP_BODY_CHUNKED;
    if (f == TBP_BODY_UNTIL_CLOSE)
        c->keep_alive = 0;
    count_status(c, h->status);
    c->t_upstream = tbp_loop_now(&c->w->loop);
    tbp_buf_init(&head, 128 * 1024);
    if (tbp_forward_response_head(h, c->keep_alive, f, h->content_length, c->head_request, &head) !=
        0) {
        tbp_buf_dispose(&head);
        client_close(c); /* nothing sane to send: cut it */
        return;
    }
    c->resp_started = 1;
    (void)out_append(c, head.p, head.len);
    tbp_buf_dispose(&head);
    client_update_events(c);
}

static int resp_body(void *ctx, const char *p, size_t n)
{
    struct tbp_client *c = ctx;
    char chunk[32];
    int k;

    if (c->state == C_CLOSED)
        return 1;
    if (n == 0)
        return 0; /* an empty chunk would end the chunked body */
    c->resp_bytes += n;
    if (c->resp_chunked) {
        k = tbp_chunk_head(chunk, n);
        if (out_append(c, chunk, (size_t)k) != 0)
            return 1;
    }
    if (out_append(c, p, n) != 0 || (c->resp_chunked && out_append(c, TBP_CHUNK_END, 2) != 0))
        return 1;
    if (c->out.len >= RBUF_SIZE && client_flush(c) != 0)
        return 1; /* write as we go: the client gets bytes without waiting for the loop */
    if (c->out.len >= HIGH_WATER) {
        c->up_paused = 1;
        client_update_events(c);
        return 1;
    }
    client_update_events(c);
    return 0;
}

/* The exchange is over: next request, or close. */
static void exchange_done(struct tbp_client *c)
{
    access_log(c);
    c->up = NULL;
    c->up_paused = c->body_paused = 0;
    if (!c->req_complete || !c->keep_alive || c->w->px->stopping) {
        c->state = C_CLOSING; /* an unread request body cannot be skipped safely */
    } else {
        c->state = C_READING;
        tbp_timer_set(&c->w->loop, &c->timer, c->w->px->cfg->timeouts.idle_keepalive_ms);
    }
}

static void resp_end(void *ctx)
{
    struct tbp_client *c = ctx;

    if (c->state == C_CLOSED)
        return;
    if (c->resp_chunked && out_append(c, TBP_CHUNK_LAST, 5) != 0)
        return;
    exchange_done(c);
    client_drive(c);
}

static void resp_error(void *ctx, int status, const char *why)
{
    struct tbp_client *c = ctx;

    c->up = NULL;
    if (c->state == C_CLOSED)
        return;
    tbp_log_error(c->w->px, TBP_LOG_WARN, "%s:%u: %s -> %d (%s)", c->ip, c->port, c->log_req,
                  status, why);
    if (c->resp_started) {
        client_close(c); /* the response was cut: the client must see it cut too */
        return;
    }
    client_error(c, status, status == 504 ? "origin timed out" : "origin unavailable",
                 !c->req_complete);
    if (c->state == C_EXCHANGE) {
        c->state = c->keep_alive ? C_READING : C_CLOSING;
        if (!c->keep_alive)
            c->state = C_CLOSING;
    }
    client_drive(c);
}

static void req_drain(void *ctx)
{
    struct tbp_client *c = ctx;

    if (!c->body_paused || c->state == C_CLOSED)
        return;
    c->body_paused = 0;
    tbp_h1_resume(&c->parser);
    client_drive(c);
}

static const struct tbp_upstream_sink sink = {resp_head, resp_body, resp_end, resp_error,
                                              req_drain};

/* --- the request (parser callbacks) ----------------------------------------------------------- */

/* The request's host (Host header; the parser guarantees exactly one) and path. */
static void request_route_keys(const struct tbp_http_head *h, struct tbp_str *host,
                               struct tbp_str *path)
{
    const struct tbp_header *hh = tbp_http_find(h, "host");
    size_t i;

    *host = hh ? hh->value : (struct tbp_str){"", 0};
    for (i = 0; i < host->len && host->p[i] != ':'; i++)
        ;
    if (host->len > 0 && host->p[0] != '[')
        host->len = i; /* without the port */
    *path = h->target;
    for (i = 0; i < path->len && path->p[i] != '?'; i++)
        ;
    path->len = i;
}

static void remember_for_log(struct tbp_client *c, const struct tbp_http_head *h)
{
    const struct tbp_header *ref = tbp_http_find(h, "referer"),
                            *ua = tbp_http_find(h, "user-agent");
    char line[LOG_FIELD];
    int n;

    n = snprintf(line, sizeof(line), "%.*s %.*s HTTP/%d.%d", (int)h->method.len, h->method.p,
                 (int)(h->target.len > 200 ? 200 : h->target.len), h->target.p, h->version_major,
                 h->version_minor);
    log_field(c->log_req, line, n > 0 ? (size_t)n : 0);
    log_field(c->log_referer, ref ? ref->value.p : "", ref ? ref->value.len : 0);
    log_field(c->log_ua, ua ? ua->value.p : "", ua ? ua->value.len : 0);
    c->log_upstream[0] = '\0';
}

/* Starts the exchange: route, upstream connection, rewritten head. 0, or -1 if answered. */
static int start_exchange(struct tbp_client *c, const struct tbp_http_head *h)
{
    const struct tbp_config *cfg = c->w->px->cfg;
    const char *other = c->tb.other;
    struct tbp_fwd_info fi = {0};
    const struct tbp_route *route;
    struct tbp_str host, path;
    struct tbp_buf head;
    int ret;

    request_route_keys(h, &host, &path);
    route = tbp_config_route(cfg, host.p, host.len, path.p, path.len);
    if (route == NULL) {
        client_error(c, 404, "no route", !c->req_complete);
        return -1;
    }
    c->up = tbp_upstream_start(tbp_worker_pool(c->w, route->upstream), &sink, c, c->head_request,
                               h->framing == TBP_BODY_NONE);
    if (c->up == NULL) {
        client_error(c, 502, "origin unavailable", 1);
        return -1;
    }
    snprintf(c->log_upstream, sizeof(c->log_upstream), "%s", tbp_upstream_addr(c->up));
    fi.client_ip = c->ip;
    fi.client_port = c->port;
    fi.peer_trusted = c->trusted;
    fi.scheme = "https";
    fi.host = tbp_http_find(h, "host") ? tbp_http_find(h, "host")->value : (struct tbp_str){"", 0};
    fi.provided_id = c->tb.key_params >= 0 ? c->tb.provided : NULL;
    fi.referred_id = c->tb.key_params >= 0 ? c->tb.referred : NULL;
    fi.other_ids = &other;
    fi.n_other_ids = c->tb.key_params >= 0 && other != NULL ? 1 : 0;
    fi.framing = h->framing == TBP_BODY_UNTIL_CLOSE ? TBP_BODY_NONE : h->framing;
    fi.content_length = h->content_length;
    fi.keep_alive = 1;
    c->req_chunked = h->framing == TBP_BODY_CHUNKED;
    tbp_buf_init(&head, (size_t)cfg->limits.max_header_bytes + 16384);
    ret = tbp_forward_request_head(h, &fi, &head);
    if (ret == 0)
        ret = tbp_upstream_write(c->up, head.p, head.len) < 0 ? -1 : 0;
    tbp_buf_dispose(&head);
    if (ret != 0) {
        if (c->up != NULL)
            tbp_upstream_abort(c->up);
        c->up = NULL;
        client_error(c, 400, "request cannot be forwarded", 1);
        return -1;
    }
    if (h->expect_continue && h->framing != TBP_BODY_NONE)
        (void)out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int req_head(void *ctx, const struct tbp_http_head *h)
{
    struct tbp_client *c = ctx;
    const char *reason = NULL;

    c->w->stats.requests++;
    c->t_start = c->t_upstream = tbp_loop_now(&c->w->loop);
    c->resp_bytes = 0;
    c->status = 0;
    c->req_complete = c->resp_started = c->resp_chunked = 0;
    c->head_request = tbp_http_name_eq(h->method, "head") && h->method.p[0] == 'H';
    c->keep_alive = h->keep_alive && !c->w->px->stopping;
    c->state = C_EXCHANGE;
    remember_for_log(c, h);
    if (tbp_binding_check(&c->tb, h, &reason) != 0) {
        c->tb_outcome = reason;
        c->w->stats.tb_failed++;
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: token binding rejected: %s", c->ip, c->port,
                      reason);
        client_error(c, 400, reason, 1);
        return -1;
    }
    if (c->tb.key_params >= 0) {
        c->tb_outcome = "ok";
        c->w->stats.tb_ok++;
    } else {
        c->tb_outcome = "none";
        if (c->w->px->cfg->tb.require) {
            client_error(c, 403, "token binding required", 1);
            return -1;
        }
    }
    tbp_timer_set(&c->w->loop, &c->timer, c->w->px->cfg->timeouts.body_read_ms);
    return start_exchange(c, h);
}

static int req_body(void *ctx, const char *p, size_t n)
{
    struct tbp_client *c = ctx;
    char chunk[32];
    int k, ret = 0;

    if (c->up == NULL || n == 0)
        return 0; /* answered already (error): the rest of the body is read and dropped */
    if (c->req_chunked) {
        k = tbp_chunk_head(chunk, n);
        ret = tbp_upstream_write(c->up, chunk, (size_t)k);
    }
    if (ret >= 0)
        ret = tbp_upstream_write(c->up, p, n);
    if (ret >= 0 && c->req_chunked)
        ret = tbp_upstream_write(c->up, TBP_CHUNK_END, 2);
    if (ret < 0)
        return -1; /* on_error has answered */
    if (ret == 1) {
        c->body_paused = 1;
        return TBP_H1_PAUSE;
    }
    return 0;
}

static int req_end(void *ctx)
{
    struct tbp_client *c = ctx;

    c->req_complete = 1;
    if (c->state == C_CLOSED)
        return 0;
    tbp_timer_cancel(&c->w->loop, &c->timer);
    if (c->up != NULL) {
        if (c->req_chunked && tbp_upstream_write(c->up, TBP_CHUNK_LAST, 5) < 0)
            return 0;
        if (c->up != NULL)
            tbp_upstream_request_done(c->up);
    } else if (c->state == C_EXCHANGE) {
        /* answered while the body was still arriving (e.g. the origin failed): done now */
        c->state = c->keep_alive ? C_READING : C_CLOSING;
    }
    return 0; /* the parser stops at the message boundary by itself */
}

static const struct tbp_h1_callbacks request_cb = {req_head, req_body, req_end};

/* --- reading ---------------------------------------------------------------------------------- */

static int want_input(const struct tbp_client *c)
{
    if (c->state == C_READING)
        return c->out.len < HIGH_WATER;
    return c->state == C_EXCHANGE && !c->req_complete && !c->body_paused;
}

/* Feeds buffered bytes to the parser. 0 to go on, -1 to stop reading for now. */
static int feed(struct tbp_client *c)
{
    size_t consumed = 0;
    int ret;

    ret = tbp_h1_feed(&c->parser, c->rbuf + c->roff, c->rlen - c->roff, &consumed);
    c->roff += consumed;
    if (c->state == C_CLOSED)
        return -1;
    if (ret < 0) {
        if (c->state != C_CLOSING) {
            tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: bad request: %s", c->ip, c->port,
                          tbp_h1_strerror(ret));
            if (c->up != NULL) {
                tbp_upstream_abort(c->up);
                c->up = NULL;
            }
            if (c->log_req[0] == '\0')
                snprintf(c->log_req, sizeof(c->log_req), "-");
            client_error(c, tbp_h1_error_status(ret), tbp_h1_strerror(ret), 1);
        }
        return -1;
    }
    return 0;
}

static void client_read(struct tbp_client *c)
{
    int n;

    while (want_input(c)) {
        if (c->roff < c->rlen) {
            if (feed(c) != 0)
                return;
            continue;
        }
        c->roff = c->rlen = 0;
        ERR_clear_error();
        n = SSL_read(c->ssl, c->rbuf, sizeof(c->rbuf));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                return;
            if (e == SSL_ERROR_WANT_WRITE) {
                c->ssl_want_write = 1;
                return;
            }
            client_close(c); /* EOF or error: nothing more will come */
            return;
        }
        c->rlen = (size_t)n;
        if (c->state == C_READING)
            tbp_timer_set(&c->w->loop, &c->timer, c->w->px->cfg->timeouts.header_read_ms);
        else if (c->state == C_EXCHANGE)
            tbp_timer_set(&c->w->loop, &c->timer, c->w->px->cfg->timeouts.body_read_ms);
    }
}

/* --- handshake -------------------------------------------------------------------------------- */

static void handshake(struct tbp_client *c)
{
    int n, e;

    ERR_clear_error();
    n = SSL_do_handshake(c->ssl);
    if (n != 1) {
        e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->ssl_want_write = 1;
            return;
        }
        c->w->stats.handshake_failures++;
        client_close(c);
        return;
    }
    c->w->stats.handshakes++;
    if (tbp_tls_established(c->ssl, &c->tls) != 0 ||
        tbp_binding_init(&c->tb, c->ssl, c->tls.tb_key_params) != 0) {
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: token binding without EMS/TLS 1.2: closed",
                      c->ip, c->port);
        c->w->stats.handshake_failures++;
        client_close(c);
        return;
    }
    c->state = C_READING;
    tbp_timer_set(&c->w->loop, &c->timer, c->w->px->cfg->timeouts.header_read_ms);
}

/* --- the driver ------------------------------------------------------------------------------- */

static void client_update_events(struct tbp_client *c)
{
    uint32_t ev = 0;

    if (c->state == C_CLOSED)
        return;
    if (c->state == C_HANDSHAKE)
        ev = c->ssl_want_write ? EPOLLOUT : EPOLLIN;
    else {
        if (want_input(c) && c->roff == c->rlen)
            ev |= EPOLLIN;
        if (c->out.len > 0 || c->ssl_want_write)
            ev |= EPOLLOUT;
    }
    tbp_io_set(&c->w->loop, &c->io, ev);
}

/* Does everything that can be done now: handshake, write, read and parse, write again. */
static void client_drive(struct tbp_client *c)
{
    if (c->state == C_HANDSHAKE) {
        c->ssl_want_write = 0;
        handshake(c);
        if (c->state == C_HANDSHAKE || c->state == C_CLOSED) {
            client_update_events(c);
            return;
        }
    }
    if (client_flush(c) != 0)
        return;
    client_read(c);
    if (c->state == C_CLOSED)
        return;
    if (client_flush(c) != 0)
        return;
    client_update_events(c);
}

static void client_io(struct tbp_io *io, uint32_t events)
{
    struct tbp_client *c = CONTAINER(io, struct tbp_client, io);

    (void)events;
    client_drive(c);
}

static void client_timer(struct tbp_timer *t)
{
    struct tbp_client *c = CONTAINER(t, struct tbp_client, timer);

    if (c->state == C_EXCHANGE && c->up != NULL && !c->req_complete) {
        client_error(c, 408, "request body timeout", 1);
        tbp_upstream_abort(c->up);
        c->up = NULL;
        client_drive(c);
        return;
    }
    client_close(c); /* handshake, header, idle or linger timeout */
}

int tbp_client_accept(struct tbp_worker *w, int fd, size_t listener,
                      const struct sockaddr_storage *peer)
{
    const struct tbp_config *cfg = w->px->cfg;
    struct tbp_h1_limits lim = {0};
    struct tbp_client *c;

    if (w->n_clients >= cfg->limits.max_connections_per_worker ||
        (c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return -1;
    }
    c->w = w;
    c->defer.free_cb = client_free;
    c->listener = listener;
    c->io.fd = fd;
    c->io.cb = client_io;
    c->timer.cb = client_timer;
    c->state = C_HANDSHAKE;
    c->tls.tb_key_params = -1;
    c->tb.key_params = -1;
    tbp_buf_init(&c->out, OUT_MAX);
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)peer;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
        c->port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const void *)peer;
        inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
        c->port = ntohs(s4->sin_port);
    }
    c->trusted = tbp_config_trusted(cfg, (const struct sockaddr *)peer);
    lim.max_header_bytes = cfg->limits.max_header_bytes;
    lim.max_headers = cfg->limits.max_headers;
    c->ssl = SSL_new(tbp_tls_ctx(w->px->tls[listener]));
    if (c->ssl == NULL || tbp_h1_parser_init(&c->parser, 1, &lim, &request_cb, c) != 0) {
        SSL_free(c->ssl);
        tbp_buf_dispose(&c->out);
        free(c);
        close(fd);
        return -1;
    }
    SSL_set_app_data(c->ssl, &c->tls);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->n_clients++;
    w->stats.accepted++;
    if (tbp_io_add(&w->loop, &c->io, EPOLLIN) == -1) {
        client_close(c);
        return -1;
    }
    tbp_timer_set(&w->loop, &c->timer, cfg->timeouts.handshake_ms);
    return 0;
}
