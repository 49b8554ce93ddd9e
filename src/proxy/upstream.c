/*
 * Origin pools and the HTTP/1.1 upstream client (see upstream.h).
 *
 * Connection states: CONNECTING (non-blocking connect in progress), BUSY (an exchange owns it),
 * IDLE (in the pool's idle list, waiting for the next exchange), and closed (fd -1, waiting for
 * the deferred free after the loop turn). One timer per connection serves all states: connect
 * timeout, read timeout while waiting for the origin, idle timeout in the pool.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "h1parse.h"
#include "metrics.h"
#include "upstream.h"

#define OUT_SLACK (1024 * 1024) /* room past the high-water mark for what a writer appends */
#define REPLAY_MAX (96 * 1024)
#define RBUF_SIZE 16384

enum up_state {
    UP_CONNECTING, /* connect() in progress */
    UP_BUSY,       /* an exchange owns the connection */
    UP_IDLE,       /* kept alive in the pool */
    UP_CLOSED,     /* fd closed, freed after this loop turn */
};

struct server {
    uint64_t failed_until; /* loop ms; skip the server before that */
};

struct tbp_pool {
    struct tbp_loop *loop;
    struct tbp_pool_conf c;
    struct server *servers;
    size_t next;             /* round-robin cursor */
    struct tbp_upconn *idle; /* most recently used first */
    unsigned n_idle;
    struct tbp_pool_stats stats;
};

struct tbp_upconn {
    struct tbp_deferred defer;
    struct tbp_io io;
    struct tbp_pool *pool;
    struct tbp_upconn *idle_prev, *idle_next;
    enum up_state state;
    size_t server;
    size_t connect_tries; /* servers tried for this connection (connect refused or timed out) */
    int reused;           /* this exchange runs on a connection that served one before */
    int replayable;       /* the request has no body: may be sent again */
    int head_request;
    int req_done;     /* the whole request was queued */
    int resp_started; /* a response byte arrived */
    int resp_keep_alive;
    int complete;        /* the response ended (set in the parser callback) */
    int paused;          /* the sink asked to stop reading */
    int above_high;      /* the writer was told to wait for on_drain */
    uint64_t t_start_ns; /* CLOCK_MONOTONIC at tbp_upstream_start: the latency's start */
    struct tbp_buf out;
    struct tbp_buf replay; /* the request bytes, while replayable */
    struct tbp_h1_parser parser;
    char rbuf[RBUF_SIZE];
    size_t rlen, roff;
    const struct tbp_upstream_sink *sink;
    void *ctx;
    struct tbp_timer timer;
    struct tbp_post post; /* sends what was queued during a loop turn */
};

static void conn_io(struct tbp_io *io, uint32_t events);
static void conn_timer(struct tbp_timer *t);
static void conn_read(struct tbp_upconn *u);
static void conn_post_flush(struct tbp_post *p);

#define CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* --- pool ----------------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts one event of the pool in its worker's registry. */
static void count(struct tbp_pool *p, enum tbp_mpool_counter what)
{
    if (p->c.metrics != NULL)
        tbp_metrics_pool_inc(p->c.metrics, p->c.metrics_pool, what);
}

struct tbp_pool *tbp_pool_new(struct tbp_loop *l, const struct tbp_pool_conf *c)
{
    struct tbp_pool *p = calloc(1, sizeof(*p));
    size_t n, i;

    if (p == NULL)
        return NULL;
    p->loop = l;
    p->c = *c;
    if (p->c.high_water == 0)
        p->c.high_water = TBP_UPSTREAM_HIGH_WATER;
    n = c->n_servers ? c->n_servers : 1;
    p->servers = calloc(n, sizeof(*p->servers));
    p->c.addrs = calloc(n, sizeof(*p->c.addrs));
    p->c.addr_lens = calloc(n, sizeof(*p->c.addr_lens));
    p->c.addr_texts = calloc(n, sizeof(*p->c.addr_texts));
    if (p->servers == NULL || p->c.addrs == NULL || p->c.addr_lens == NULL ||
        p->c.addr_texts == NULL) {
        tbp_pool_free(p);
        return NULL;
    }
    for (i = 0; i < c->n_servers; i++) {
        p->c.addrs[i] = c->addrs[i];
        p->c.addr_lens[i] = c->addr_lens[i];
        p->c.addr_texts[i] = c->addr_texts[i];
    }
    return p;
}

static void idle_remove(struct tbp_upconn *u)
{
    struct tbp_pool *p = u->pool;

    if (u->idle_prev)
        u->idle_prev->idle_next = u->idle_next;
    else
        p->idle = u->idle_next;
    if (u->idle_next)
        u->idle_next->idle_prev = u->idle_prev;
    u->idle_prev = u->idle_next = NULL;
    p->n_idle--;
}

static void conn_free(struct tbp_deferred *d)
{
    struct tbp_upconn *u = CONTAINER(d, struct tbp_upconn, defer);

    tbp_h1_parser_dispose(&u->parser);
    tbp_buf_dispose(&u->out);
    tbp_buf_dispose(&u->replay);
    free(u);
}

/* Closes u now and frees it after the loop turn. No sink callback. */
static void conn_close(struct tbp_upconn *u)
{
    struct tbp_loop *l = u->pool->loop;

    if (u->state == UP_CLOSED)
        return;
    if (u->state == UP_IDLE)
        idle_remove(u);
    u->state = UP_CLOSED;
    u->sink = NULL;
    tbp_timer_cancel(l, &u->timer);
    tbp_io_close(l, &u->io);
    tbp_loop_defer(l, &u->defer);
}

void tbp_pool_free(struct tbp_pool *p)
{
    if (p == NULL)
        return;
    while (p->idle != NULL)
        conn_close(p->idle);
    free(p->servers);
    free(p->c.addrs);
    free(p->c.addr_lens);
    free(p->c.addr_texts);
    free(p);
}

void tbp_pool_retire(struct tbp_pool *p, size_t metrics_pool)
{
    p->c.max_idle = 0;
    p->c.metrics_pool = metrics_pool;
    while (p->idle != NULL)
        conn_close(p->idle);
}

void tbp_pool_get_stats(const struct tbp_pool *p, struct tbp_pool_stats *out)
{
    *out = p->stats;
    out->idle = p->n_idle;
}

/* Round robin over the servers not marked failed; all failed: plain round robin. */
static size_t pick_server(struct tbp_pool *p)
{
    uint64_t now = tbp_loop_now(p->loop);
    size_t i, s;

    for (i = 0; i < p->c.n_servers; i++) {
        s = (p->next + i) % p->c.n_servers;
        if (p->servers[s].failed_until <= now) {
            p->next = s + 1;
            return s;
        }
    }
    s = p->next++ % p->c.n_servers;
    return s;
}

/* --- response parsing ------------------------------------------------------------------------ */

static int on_head(void *ctx, const struct tbp_http_head *h)
{
    struct tbp_upconn *u = ctx;

    if (h->status >= 100 && h->status < 200)
        return 0; /* interim response: the final one follows */
    u->resp_keep_alive = h->keep_alive;
    if (u->sink != NULL && u->pool->c.metrics != NULL)
        tbp_metrics_pool_observe(u->pool->c.metrics, u->pool->c.metrics_pool,
                                 mono_ns() - u->t_start_ns);
    if (u->sink != NULL)
        u->sink->on_head(u->ctx, h);
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    struct tbp_upconn *u = ctx;

    if (u->sink != NULL && u->sink->on_body(u->ctx, p, n) == 1) {
        u->paused = 1; /* the client is slow: not the origin's fault, no read timeout */
        tbp_timer_cancel(u->pool->loop, &u->timer);
        return TBP_H1_PAUSE;
    }
    return 0;
}

static int on_end(void *ctx)
{
    struct tbp_upconn *u = ctx;

    u->complete = 1;
    return 0; /* the parser stops at the message boundary by itself */
}

static const struct tbp_h1_callbacks response_cb = {on_head, on_body, on_end};

/* --- connections ----------------------------------------------------------------------------- */

static struct tbp_upconn *conn_new(struct tbp_pool *p)
{
    struct tbp_upconn *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    u->pool = p;
    u->defer.free_cb = conn_free;
    u->io.fd = -1;
    u->io.cb = conn_io;
    u->timer.cb = conn_timer;
    u->post.cb = conn_post_flush;
    tbp_buf_init(&u->out, p->c.high_water + OUT_SLACK);
    tbp_buf_init(&u->replay, REPLAY_MAX);
    if (tbp_h1_parser_init(&u->parser, 0, NULL, &response_cb, u) != 0) {
        tbp_buf_dispose(&u->out);
        tbp_buf_dispose(&u->replay);
        free(u);
        return NULL;
    }
    return u;
}

/* Opens a connection to the next server. 0, or -1 (u unusable, not registered). */
static int conn_connect(struct tbp_upconn *u)
{
    struct tbp_pool *p = u->pool;
    const struct sockaddr_storage *sa;
    int fd, one = 1;

    u->server = pick_server(p);
    sa = &p->c.addrs[u->server];
    fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, p->c.addr_lens[u->server]) == -1 &&
        errno != EINPROGRESS) {
        /* refused at once (e.g. nothing listens on loopback): let the write path report it */
        p->servers[u->server].failed_until = tbp_loop_now(p->loop) + p->c.fail_timeout_ms;
    }
    u->io.fd = fd;
    u->state = UP_CONNECTING;
    p->stats.connects++;
    count(p, TBP_MP_CONNECTS);
    if (tbp_io_add(p->loop, &u->io, EPOLLOUT | EPOLLIN | EPOLLRDHUP) == -1) {
        close(fd);
        u->io.fd = -1;
        return -1;
    }
    tbp_timer_set(p->loop, &u->timer, p->c.connect_timeout_ms);
    return 0;
}

static void conn_fail(struct tbp_upconn *u, int status, const char *why);

/*
 * The connect to u->server failed (refused, reset or timed out; the server is marked failed):
 * connect to another server of the pool instead, as long as one is left untried. Nothing has
 * been sent yet (a connecting connection is never flushed), so the request bytes waiting in
 * u->out go to the next server whole. 1 when a new connect is under way, 0 when none is left.
 */
static int next_server(struct tbp_upconn *u)
{
    struct tbp_pool *p = u->pool;

    if (++u->connect_tries >= p->c.n_servers)
        return 0;
    tbp_timer_cancel(p->loop, &u->timer);
    tbp_io_close(p->loop, &u->io);
    p->stats.retries++;
    return conn_connect(u) == 0;
}

/*
 * The reused connection was dead: send the saved request bytes again on a fresh connection,
 * keeping the same handle (the exchange's owner holds a pointer to u). 0, or -1.
 */
static int replay(struct tbp_upconn *u)
{
    struct tbp_pool *p = u->pool;

    tbp_timer_cancel(p->loop, &u->timer);
    tbp_io_close(p->loop, &u->io);
    tbp_h1_parser_dispose(&u->parser);
    if (tbp_h1_parser_init(&u->parser, 0, NULL, &response_cb, u) != 0)
        return -1;
    if (u->head_request)
        tbp_h1_expect_no_body(&u->parser);
    tbp_buf_reset(&u->out);
    if (tbp_buf_append(&u->out, u->replay.p, u->replay.len) != 0)
        return -1;
    u->replayable = u->reused = 0; /* once */
    u->rlen = u->roff = 0;
    u->connect_tries = 0;
    p->stats.replays++;
    return conn_connect(u);
}

static void conn_fail(struct tbp_upconn *u, int status, const char *why)
{
    const struct tbp_upstream_sink *sink = u->sink;
    void *ctx = u->ctx;

    /* a kept-alive connection the origin had closed: not the origin's failure, send again */
    if (status == 502 && u->reused && u->replayable && !u->resp_started && replay(u) == 0)
        return;
    u->pool->stats.errors++;
    if (sink != NULL)
        count(u->pool, TBP_MP_ERRORS); /* an exchange answered 502/504 */
    conn_close(u);
    if (sink != NULL)
        sink->on_error(ctx, status, why);
}

/* Sends queued request bytes. */
static void conn_flush(struct tbp_upconn *u)
{
    ssize_t n;

    while (u->out.len > 0) {
        n = send(u->io.fd, u->out.p, u->out.len, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN)
            break;
        if (n <= 0) {
            conn_fail(u, 502, "origin write failed");
            return;
        }
        tbp_buf_consume(&u->out, (size_t)n);
    }
    tbp_io_set(u->pool->loop, &u->io,
               (u->paused ? 0 : EPOLLIN | EPOLLRDHUP) | (u->out.len ? EPOLLOUT : 0));
    if (u->above_high && u->out.len < u->pool->c.high_water / 4) {
        u->above_high = 0;
        if (u->sink != NULL)
            u->sink->on_drain(u->ctx);
    }
}

/* The response is complete: hand the connection back or close it. */
static void conn_complete(struct tbp_upconn *u)
{
    const struct tbp_upstream_sink *sink = u->sink;
    struct tbp_pool *p = u->pool;
    void *ctx = u->ctx;
    int reuse = u->req_done && u->resp_keep_alive && u->out.len == 0 && u->roff == u->rlen &&
                p->n_idle < p->c.max_idle && u->state == UP_BUSY;

    const struct tbp_header *trailers;
    size_t n_trailers = 0;

    trailers = tbp_h1_trailers(&u->parser, &n_trailers); /* valid until the next response */
    u->sink = NULL;
    tbp_timer_cancel(p->loop, &u->timer);
    if (reuse) {
        u->state = UP_IDLE;
        u->complete = u->resp_started = u->paused = u->above_high = 0;
        tbp_h1_resume(&u->parser); /* a pause on the last body bytes outlives on_end */
        u->reused = 1;
        tbp_buf_reset(&u->replay);
        u->idle_prev = NULL;
        u->idle_next = p->idle;
        if (p->idle)
            p->idle->idle_prev = u;
        p->idle = u;
        p->n_idle++;
        tbp_io_set(p->loop, &u->io, EPOLLIN | EPOLLRDHUP);
        tbp_timer_set(p->loop, &u->timer, p->c.idle_timeout_ms);
    } else {
        conn_close(u);
    }
    if (sink != NULL)
        sink->on_end(ctx, trailers, n_trailers);
}

/* Reads and parses response bytes until EAGAIN, a pause, or the end of the response. */
static void conn_read(struct tbp_upconn *u)
{
    size_t consumed;
    ssize_t n;
    int ret;

    for (;;) {
        if (u->roff == u->rlen) {
            u->roff = u->rlen = 0;
            n = recv(u->io.fd, u->rbuf, sizeof(u->rbuf), 0);
            if (n == -1 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n <= 0) {
                if (n == 0 && u->resp_started && tbp_h1_feed_eof(&u->parser) == 0 && u->complete)
                    conn_complete(u);
                else
                    conn_fail(u, 502, n == 0 ? "origin closed" : "origin read failed");
                return;
            }
            u->rlen = (size_t)n;
            u->resp_started = 1;
            tbp_timer_set(u->pool->loop, &u->timer, u->pool->c.read_timeout_ms);
        }
        consumed = 0;
        ret = tbp_h1_feed(&u->parser, u->rbuf + u->roff, u->rlen - u->roff, &consumed);
        u->roff += consumed;
        if (ret < 0) {
            conn_fail(u, 502, "bad response from origin");
            return;
        }
        if (u->complete) {
            conn_complete(u);
            return;
        }
        if (u->paused) {
            tbp_io_set(u->pool->loop, &u->io, u->out.len ? EPOLLOUT : 0);
            return;
        }
    }
}

static void conn_io(struct tbp_io *io, uint32_t events)
{
    struct tbp_upconn *u = CONTAINER(io, struct tbp_upconn, io);
    struct tbp_pool *p = u->pool;
    int err = 0;
    socklen_t len = sizeof(err);

    if (u->state == UP_IDLE) {
        conn_close(u); /* the origin closed it, or sent bytes nobody asked for */
        return;
    }
    if (u->state == UP_CONNECTING) {
        if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0 ||
            (events & (EPOLLERR | EPOLLHUP))) {
            p->servers[u->server].failed_until = tbp_loop_now(p->loop) + p->c.fail_timeout_ms;
            if (!next_server(u))
                conn_fail(u, 502, "origin refused the connection");
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        u->state = UP_BUSY;
        p->servers[u->server].failed_until = 0;
        tbp_timer_set(p->loop, &u->timer, p->c.read_timeout_ms);
    }
    if (events & EPOLLOUT) {
        conn_flush(u);
        if (u->state == UP_CLOSED)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(u);
}

static void conn_timer(struct tbp_timer *t)
{
    struct tbp_upconn *u = CONTAINER(t, struct tbp_upconn, timer);
    struct tbp_pool *p = u->pool;

    if (u->state == UP_IDLE) {
        conn_close(u);
    } else if (u->state == UP_CONNECTING) {
        p->servers[u->server].failed_until = tbp_loop_now(p->loop) + p->c.fail_timeout_ms;
        if (!next_server(u))
            conn_fail(u, 504, "origin connect timeout");
    } else {
        conn_fail(u, 504, "origin read timeout");
    }
}

static void conn_post_flush(struct tbp_post *p)
{
    struct tbp_upconn *u = CONTAINER(p, struct tbp_upconn, post);

    if (u->state == UP_BUSY && u->out.len > 0)
        conn_flush(u);
}

/* --- exchanges ------------------------------------------------------------------------------- */

struct tbp_upconn *tbp_upstream_start(struct tbp_pool *p, const struct tbp_upstream_sink *sink,
                                      void *ctx, int head_request, int replayable)
{
    struct tbp_upconn *u = p->idle;

    if (p->c.n_servers == 0)
        return NULL;
    if (u != NULL) {
        idle_remove(u);
        u->state = UP_BUSY;
        p->stats.reuses++;
        count(p, TBP_MP_REUSES);
        tbp_timer_set(p->loop, &u->timer, p->c.read_timeout_ms);
    } else {
        if ((u = conn_new(p)) == NULL)
            return NULL;
        if (conn_connect(u) != 0) {
            conn_free(&u->defer);
            return NULL;
        }
    }
    u->sink = sink;
    u->ctx = ctx;
    u->head_request = head_request;
    u->replayable = replayable && u->reused;
    u->req_done = u->complete = u->resp_started = u->paused = u->above_high = 0;
    u->resp_keep_alive = 0;
    u->t_start_ns = mono_ns();
    if (head_request)
        tbp_h1_expect_no_body(&u->parser);
    return u;
}

int tbp_upstream_write(struct tbp_upconn *u, const void *p, size_t n)
{
    if (u->state == UP_CLOSED)
        return -1;
    if (tbp_buf_append(&u->out, p, n) != 0) {
        conn_fail(u, 502, "request buffer full");
        return -1;
    }
    if (u->replayable && tbp_buf_append(&u->replay, p, n) != 0)
        u->replayable = 0;
    if (u->state == UP_BUSY)
        tbp_loop_post(u->pool->loop, &u->post); /* one send for all written this turn */
    if (u->out.len >= u->pool->c.high_water) {
        u->above_high = 1;
        return 1;
    }
    return 0;
}

void tbp_upstream_request_done(struct tbp_upconn *u)
{
    u->req_done = 1;
}

void tbp_upstream_resume(struct tbp_upconn *u)
{
    if (!u->paused || u->state != UP_BUSY)
        return;
    u->paused = 0;
    tbp_h1_resume(&u->parser);
    tbp_timer_set(u->pool->loop, &u->timer, u->pool->c.read_timeout_ms);
    tbp_io_set(u->pool->loop, &u->io, EPOLLIN | EPOLLRDHUP | (u->out.len ? EPOLLOUT : 0));
    conn_read(u); /* bytes may be waiting in rbuf already */
}

void tbp_upstream_abort(struct tbp_upconn *u)
{
    conn_close(u);
}

const char *tbp_upstream_addr(const struct tbp_upconn *u)
{
    return u->pool->c.addr_texts[u->server];
}
