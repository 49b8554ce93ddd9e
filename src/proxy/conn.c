/*
 * Client connections: accept, TLS handshake, buffered I/O, the protocol chosen by ALPN, close.
 * See conn.h. A connection is freed only after the loop turn in which it was closed, so a
 * callback further up the stack never touches freed memory.
 *
 * Counted here (the worker's registry, metrics.h): connections accepted and open, handshakes
 * (full or resumed) with the ALPN protocol they chose, handshake failures by reason, and the TLS
 * payload bytes read and written. A handshake counts as done once the connection may carry
 * requests: one that completes but fails the Token Binding preconditions is a failure.
 *
 * Memory of an idle connection (bench/soak measures it): no read buffer and no output buffer.
 * Input is read into a scratch buffer of the worker thread and handed to the protocol from there;
 * only what the protocol does not take at once is copied into c->rbuf, which is freed as soon as
 * it has been taken. (A connection whose input runs while another one's input is being handled
 * on the same thread, from a callback, reads into its own c->rbuf instead.) The output buffer is
 * freed whenever it empties (a small one comes back from the allocator's per-thread cache at the
 * next response). OpenSSL's record buffers are released between records
 * (SSL_MODE_RELEASE_BUFFERS, tls.c). The protocols free their own per-request state between
 * requests (h1.c, h2.c: "Memory").
 *
 * Memory after a crowd has gone: glibc keeps freed memory in its arenas, so a burst of 10,000
 * connections would hold its peak RSS for good. Once a worker holds at most half the connections
 * of its last peak (TRIM_MIN_PEAK at least), a connection's free gives the freed heap back to the
 * system (malloc_trim), at most once per TRIM_INTERVAL_MS per worker, and once more when the last
 * one goes: a few trims as the crowd thins out, none under a steady load.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "conn.h"
#include "worker.h"

/*
 * Closing: CLOSING sends what is queued (LINGER_MS at most); then LINGERING (TLS close_notify,
 * then shutdown(SHUT_WR): the client sees the end) reads and discards what the client still
 * sends, until it closes, LINGER_IDLE_MS pass without a byte or LINGER_TOTAL_MS in all, as
 * nginx's lingering close does. Closing a socket with unread input makes the kernel send a reset
 * instead of a FIN, and a reset can destroy the response before the client has read it. Raw
 * bytes are discarded (no decryption): nothing read now is ever used. During a graceful stop, and
 * for a peer that broke the protocol (c->no_linger: a flood, say, whose unread bytes are better
 * answered with a reset), there is no lingering.
 */
#define LINGER_MS 5000
#define LINGER_IDLE_MS 2000
#define LINGER_TOTAL_MS 5000
#define LINGER_READS 16 /* per event: then other connections' turn (epoll is level-triggered) */
#define WRITE_SLICE 65536

#define CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The read scratch buffer of this worker thread, and whether a connection's input is being
 * handled from it right now (further up the stack). */
static _Thread_local char scratch[TBP_CONN_RBUF];
static _Thread_local int scratch_busy;
/* Where LINGERING input goes: never read back. */
static _Thread_local char sink[TBP_CONN_RBUF];

#define TRIM_MIN_PEAK 256
#define TRIM_INTERVAL_MS 1000

/* This worker thread's connections at their peak since the last trim, and when that was. */
static _Thread_local unsigned trim_peak;
static _Thread_local uint64_t trim_last;

/* After a free: trims the heap when the worker lost half its connections since the peak (or all
 * of them). */
static void maybe_trim(struct tbp_worker *w)
{
    uint64_t now = tbp_loop_now(&w->loop);

    if (trim_peak < TRIM_MIN_PEAK || w->n_clients > trim_peak / 2 ||
        (now - trim_last < TRIM_INTERVAL_MS && w->n_clients > 0))
        return;
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
    trim_peak = w->n_clients;
    trim_last = now;
}

static void conn_free(struct tbp_deferred *d)
{
    struct tbp_conn *c = CONTAINER(d, struct tbp_conn, defer);
    struct tbp_worker *w = c->w;

    if (c->proto != NULL && c->proto->dispose != NULL)
        c->proto->dispose(c);
    SSL_free(c->ssl);
    tbp_binding_dispose(&c->tb);
    tbp_buf_dispose(&c->out);
    free(c->rbuf);
    tbp_wgen_release(w, c->wg); /* last: the protocol state pointed into its config */
    free(c);
    maybe_trim(w);
}

void tbp_conn_close(struct tbp_conn *c)
{
    struct tbp_worker *w = c->w;

    if (c->state == TBP_CONN_CLOSED)
        return;
    if (c->proto != NULL && c->pd != NULL)
        c->proto->abort(c);
    if (c->state == TBP_CONN_OPEN || c->state == TBP_CONN_CLOSING)
        (void)SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
    ERR_clear_error();
    c->state = TBP_CONN_CLOSED;
    tbp_timer_cancel(&w->loop, &c->timer);
    tbp_timer_cancel(&w->loop, &c->send_timer);
    tbp_io_close(&w->loop, &c->io);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    __atomic_store_n(&w->n_clients, w->n_clients - 1, __ATOMIC_RELAXED);
    tbp_metrics_gauge_add(&w->metrics, TBP_G_CONN_ACTIVE, -1);
    tbp_loop_defer(&w->loop, &c->defer);
}

void tbp_client_close_all(struct tbp_worker *w)
{
    while (w->clients != NULL)
        tbp_conn_close(w->clients);
}

void tbp_client_drain_all(struct tbp_worker *w)
{
    struct tbp_conn *c = w->clients, *next;

    /* a drain closes at most its own connection, which keeps its next pointer */
    for (; c != NULL; c = next) {
        next = c->next;
        if (c->state == TBP_CONN_OPEN && c->proto->drain != NULL)
            c->proto->drain(c);
        else if (c->state == TBP_CONN_LINGERING)
            tbp_conn_close(c); /* a graceful stop does not wait for lingering clients */
    }
}

void tbp_conn_linger(struct tbp_conn *c)
{
    if (c->state == TBP_CONN_CLOSED || c->state == TBP_CONN_CLOSING ||
        c->state == TBP_CONN_LINGERING)
        return;
    c->state = TBP_CONN_CLOSING;
    tbp_timer_set(&c->w->loop, &c->timer, LINGER_MS);
}

int tbp_conn_append(struct tbp_conn *c, const void *p, size_t n)
{
    if (c->state == TBP_CONN_CLOSED || c->state == TBP_CONN_LINGERING)
        return -1;
    if (tbp_buf_append(&c->out, p, n) != 0) {
        tbp_conn_close(c);
        return -1;
    }
    return 0;
}

/* The send timeout: armed when output becomes pending, disarmed when it is all written; progress
 * in between only moves c->send_progress (the timer checks it when it fires). */
static void send_timer_update(struct tbp_conn *c, int progress)
{
    struct tbp_loop *l = &c->w->loop;

    if (c->out.len == 0) {
        if (c->send_timer.slot != 0)
            tbp_timer_cancel(l, &c->send_timer);
        return;
    }
    if (progress || c->send_timer.slot == 0)
        c->send_progress = tbp_loop_now(l);
    if (c->send_timer.slot == 0)
        (void)tbp_timer_set(l, &c->send_timer, c->cfg->timeouts.send_ms);
}

static void send_timeout(struct tbp_timer *t)
{
    struct tbp_conn *c = CONTAINER(t, struct tbp_conn, send_timer);
    uint64_t now = tbp_loop_now(&c->w->loop), due = c->send_progress + c->cfg->timeouts.send_ms;

    if (c->state == TBP_CONN_CLOSED || c->out.len == 0)
        return;
    if (now < due) {
        (void)tbp_timer_set(&c->w->loop, &c->send_timer, due - now); /* bytes went out since */
        return;
    }
    tbp_log_error(c->w->px, TBP_LOG_INFO,
                  "%s:%u: send timeout: %zu bytes unread by the client for %u ms: closed", c->ip,
                  c->port, c->out.len, c->cfg->timeouts.send_ms);
    tbp_conn_close(c);
}

/*
 * Reads and discards what the client sends while LINGERING (LINGER_READS reads at most, the rest
 * at the next event); closes at its end of the stream, on an error, or past linger_end.
 */
static void linger_read(struct tbp_conn *c)
{
    uint64_t now = tbp_loop_now(&c->w->loop);
    int i;

    for (i = 0; i < LINGER_READS; i++) {
        ssize_t n = recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT);

        if (n > 0)
            continue;
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        tbp_conn_close(c); /* the client closed (or reset): done */
        return;
    }
    if (now >= c->linger_end) {
        tbp_conn_close(c);
        return;
    }
    /* LINGER_IDLE_MS from the last input, never past linger_end */
    if (tbp_timer_set(&c->w->loop, &c->timer,
                      c->linger_end - now < LINGER_IDLE_MS ? c->linger_end - now
                                                            : LINGER_IDLE_MS) != 0)
        tbp_conn_close(c); /* no timer: do not linger unbounded */
}

/* All output is sent: say so (close_notify, FIN) and linger; during a graceful stop, or for a
 * peer that broke the protocol (c->no_linger), close. Returns -1 (no more output is taken). */
static int linger_start(struct tbp_conn *c)
{
    if (c->w->draining || c->no_linger) {
        tbp_conn_close(c);
        return -1;
    }
    if (c->proto != NULL && c->pd != NULL)
        c->proto->abort(c); /* no exchange may queue output any more */
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl); /* close_notify: the output is empty, so it goes out now */
    ERR_clear_error();
    if (shutdown(c->io.fd, SHUT_WR) != 0) {
        tbp_conn_close(c);
        return -1;
    }
    c->state = TBP_CONN_LINGERING;
    c->linger_end = tbp_loop_now(&c->w->loop) + LINGER_TOTAL_MS;
    tbp_timer_cancel(&c->w->loop, &c->send_timer);
    linger_read(c);
    if (c->state == TBP_CONN_LINGERING)
        tbp_conn_update(c);
    return -1;
}

int tbp_conn_flush(struct tbp_conn *c)
{
    size_t before = c->out.len;
    int n, progress = 0;

    if (c->state == TBP_CONN_CLOSED || c->state == TBP_CONN_LINGERING)
        return -1;
    c->ssl_want_write = 0;
    while (c->out.len > 0) {
        ERR_clear_error();
        n = SSL_write(c->ssl, c->out.p, (int)(c->out.len > WRITE_SLICE ? WRITE_SLICE : c->out.len));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                c->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
                break;
            }
            tbp_conn_close(c);
            return -1;
        }
        tbp_buf_consume(&c->out, (size_t)n);
        tbp_metrics_add(&c->w->metrics, TBP_M_BYTES_OUT, 0, (uint64_t)n);
        progress = 1;
    }
    if (c->out.len == 0 && c->out.p != NULL)
        tbp_buf_dispose(&c->out); /* all sent: an idle connection holds no output buffer */
    send_timer_update(c, progress);
    if (before >= tbp_conn_low_water(c) && c->out.len < tbp_conn_low_water(c) &&
        c->state == TBP_CONN_OPEN && c->proto->drained != NULL) {
        c->proto->drained(c); /* may queue more, or close */
        if (c->state == TBP_CONN_CLOSED)
            return -1;
    }
    if (c->state == TBP_CONN_CLOSING && c->out.len == 0)
        return linger_start(c);
    return 0;
}

static void conn_post_flush(struct tbp_post *p)
{
    struct tbp_conn *c = CONTAINER(p, struct tbp_conn, post);

    if (c->state == TBP_CONN_CLOSED || c->state == TBP_CONN_HANDSHAKE ||
        c->state == TBP_CONN_LINGERING)
        return;
    if (tbp_conn_flush(c) == 0)
        tbp_conn_update(c);
}

void tbp_conn_schedule_flush(struct tbp_conn *c)
{
    if (c->state != TBP_CONN_CLOSED)
        tbp_loop_post(&c->w->loop, &c->post);
}

static int want_input(const struct tbp_conn *c)
{
    return c->state == TBP_CONN_OPEN && c->proto->want_input(c);
}

/* Frees the read buffer once the protocol has taken all of it. */
static void rbuf_release(struct tbp_conn *c)
{
    free(c->rbuf);
    c->rbuf = NULL;
    c->roff = c->rlen = 0;
}

/* Hands bytes to the protocol; what it does not take, from the scratch buffer, is copied into
 * c->rbuf (it is offered again when want_input says so). Returns the protocol's result, or -1
 * when the copy could not be made (c is closed then). */
static int feed(struct tbp_conn *c, const char *p, size_t n, size_t *consumed)
{
    int rc;

    *consumed = 0;
    if (p != scratch)
        return c->proto->input(c, p, n, consumed);
    scratch_busy = 1;
    rc = c->proto->input(c, p, n, consumed);
    scratch_busy = 0;
    if (*consumed < n && c->state == TBP_CONN_OPEN) {
        if ((c->rbuf = malloc(n - *consumed)) == NULL) {
            tbp_conn_close(c);
            return -1;
        }
        memcpy(c->rbuf, p + *consumed, n - *consumed);
        c->roff = 0;
        c->rlen = n - *consumed;
    }
    return rc;
}

/* Reads and hands input to the protocol while it wants some. c->rbuf is NULL on entry and on
 * return unless the protocol left bytes in it. */
static void read_input(struct tbp_conn *c)
{
    size_t consumed;
    char *buf;
    int n;

    while (want_input(c)) {
        if (c->roff < c->rlen) {
            n = feed(c, c->rbuf + c->roff, c->rlen - c->roff, &consumed);
            c->roff += consumed;
            if (c->roff == c->rlen)
                rbuf_release(c);
            if (n < 0 || c->state != TBP_CONN_OPEN)
                return;
            if (consumed == 0)
                return; /* the protocol takes nothing now: wait for want_input */
            continue;
        }
        /* the scratch buffer is taken when another connection's input called us */
        if (scratch_busy && c->rbuf == NULL && (c->rbuf = malloc(TBP_CONN_RBUF)) == NULL) {
            tbp_conn_close(c);
            return;
        }
        buf = scratch_busy ? c->rbuf : scratch;
        ERR_clear_error();
        n = SSL_read(c->ssl, buf, TBP_CONN_RBUF);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            rbuf_release(c);
            if (e == SSL_ERROR_WANT_READ)
                return;
            if (e == SSL_ERROR_WANT_WRITE) {
                c->ssl_want_write = 1;
                return;
            }
            tbp_conn_close(c); /* EOF or error: nothing more will come */
            return;
        }
        tbp_metrics_add(&c->w->metrics, TBP_M_BYTES_IN, 0, (uint64_t)n);
        if (buf == c->rbuf) {
            c->roff = 0;
            c->rlen = (size_t)n;
            continue; /* fed from c->rbuf at the top of the loop */
        }
        n = feed(c, scratch, (size_t)n, &consumed);
        if (n < 0 || c->state != TBP_CONN_OPEN)
            return;
        if (consumed == 0)
            return;
    }
}

static void conn_read(struct tbp_conn *c)
{
    if (c->reading)
        return; /* called back from our own input: the loop further up goes on reading */
    c->reading = 1;
    read_input(c);
    c->reading = 0;
}

/* The protocol ALPN chose: HTTP/2 for h2 and h2_tb_*; HTTP/1.1 otherwise (and without ALPN). */
static const struct tbp_protocol *alpn_proto(SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned n = 0;

    SSL_get0_alpn_selected(ssl, &p, &n);
    return n >= 2 && p[0] == 'h' && p[1] == '2' ? &tbp_proto_h2 : &tbp_proto_h1;
}

static void handshake(struct tbp_conn *c)
{
    struct tbp_metrics *m = &c->w->metrics;
    char alpn[32];
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
        tbp_metrics_inc(m, TBP_M_TLS_FAILURES, TBP_ML_TLSF_PROTOCOL);
        tbp_conn_close(c);
        return;
    }
    if (tbp_tls_established(c->ssl, &c->tls) != 0) {
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: token binding without EMS/TLS 1.2: closed",
                      c->ip, c->port);
        tbp_metrics_inc(m, TBP_M_TLS_FAILURES, TBP_ML_TLSF_NO_EMS);
        tbp_conn_close(c);
        return;
    }
    if (tbp_binding_init(&c->tb, c->ssl, &c->tls) != 0) {
        tbp_log_error(c->w->px, TBP_LOG_INFO,
                      "%s:%u: token binding channel value unreadable: closed", c->ip, c->port);
        tbp_metrics_inc(m, TBP_M_TLS_FAILURES, TBP_ML_TLSF_OTHER);
        tbp_conn_close(c);
        return;
    }
    tbp_metrics_inc(m, TBP_M_TLS_HANDSHAKES,
                    SSL_session_reused(c->ssl) ? TBP_ML_HS_RESUMED : TBP_ML_HS_FULL);
    if (c->tb.key_params >= 0)
        tbp_metrics_inc(m, TBP_M_TB_CONNS,
                        tbp_metrics_tb_conn_label(c->tb.version, c->tb.key_params));
    tbp_metrics_inc(m, TBP_M_CONN_ALPN,
                    tbp_metrics_alpn_label(tbp_tls_alpn(c->ssl, alpn, sizeof(alpn))));
    c->proto = alpn_proto(c->ssl);
    c->state = TBP_CONN_OPEN;
    tbp_timer_cancel(&c->w->loop, &c->timer);
    if (c->proto->start(c) != 0) {
        tbp_conn_close(c);
        return;
    }
    if (c->w->draining && c->proto->drain != NULL)
        c->proto->drain(c); /* the handshake ended during a graceful stop */
}

void tbp_conn_update(struct tbp_conn *c)
{
    uint32_t ev = 0;

    if (c->state == TBP_CONN_CLOSED)
        return;
    if (c->state == TBP_CONN_HANDSHAKE) {
        ev = c->ssl_want_write ? EPOLLOUT : EPOLLIN;
    } else if (c->state == TBP_CONN_LINGERING) {
        ev = EPOLLIN;
    } else {
        if (want_input(c) && c->roff == c->rlen)
            ev |= EPOLLIN;
        else if (!want_input(c))
            ev |= EPOLLRDHUP; /* not reading the client: still hear it leave (conn_io) */
        if (c->out.len > 0 || c->ssl_want_write)
            ev |= EPOLLOUT;
    }
    tbp_io_set(&c->w->loop, &c->io, ev);
}

void tbp_conn_drive(struct tbp_conn *c)
{
    if (c->state == TBP_CONN_LINGERING) {
        linger_read(c);
        return;
    }
    if (c->state == TBP_CONN_HANDSHAKE) {
        c->ssl_want_write = 0;
        handshake(c);
        if (c->state != TBP_CONN_OPEN) {
            tbp_conn_update(c);
            return;
        }
    }
    if (tbp_conn_flush(c) != 0)
        return;
    conn_read(c);
    if (tbp_conn_flush(c) != 0)
        return;
    tbp_conn_update(c);
}

static void conn_io(struct tbp_io *io, uint32_t events)
{
    struct tbp_conn *c = CONTAINER(io, struct tbp_conn, io);

    /* The client reset or left while the protocol takes no input (an exchange in flight): close
     * now, which aborts the exchange; HUP and ERR are level-triggered and would otherwise come
     * back every loop turn until the exchange ends. */
    if ((events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && c->state == TBP_CONN_OPEN &&
        !want_input(c)) {
        tbp_conn_close(c);
        return;
    }
    tbp_conn_drive(c);
}

static void conn_timer(struct tbp_timer *t)
{
    struct tbp_conn *c = CONTAINER(t, struct tbp_conn, timer);

    if (c->state == TBP_CONN_OPEN && c->proto->timeout != NULL) {
        c->proto->timeout(c);
        if (c->state != TBP_CONN_CLOSED)
            tbp_conn_drive(c);
        return;
    }
    if (c->state == TBP_CONN_HANDSHAKE)
        tbp_metrics_inc(&c->w->metrics, TBP_M_TLS_FAILURES, TBP_ML_TLSF_TIMEOUT);
    tbp_conn_close(c); /* handshake, linger or lingering timeout */
}

static void peer_text(struct tbp_conn *c, const struct sockaddr_storage *peer)
{
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)peer;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
        c->port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const void *)peer;
        inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
        c->port = ntohs(s4->sin_port);
    }
}

int tbp_client_accept(struct tbp_worker *w, int fd, size_t listener,
                      const struct sockaddr_storage *peer)
{
    struct tbp_wgen *wg = w->cur;
    const struct tbp_config *cfg = wg->gen->cfg;
    struct tbp_conn *c;

    if (w->n_clients >= cfg->limits.max_connections_per_worker ||
        (c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return -1;
    }
    c->w = w;
    c->defer.free_cb = conn_free;
    c->listener = listener;
    c->io.fd = fd;
    c->io.cb = conn_io;
    c->timer.cb = conn_timer;
    c->send_timer.cb = send_timeout;
    c->post.cb = conn_post_flush;
    c->state = TBP_CONN_HANDSHAKE;
    c->tls.tb_key_params = -1;
    c->tb.key_params = -1;
    tbp_buf_init(&c->out, (size_t)cfg->limits.max_buffer_bytes + TBP_CONN_OUT_SLACK);
    peer_text(c, peer);
    c->trusted = tbp_config_trusted(cfg, (const struct sockaddr *)peer);
    c->ssl = SSL_new(tbp_tls_ctx(wg->gen->tls[listener]));
    if (c->ssl == NULL) {
        tbp_buf_dispose(&c->out);
        free(c);
        close(fd);
        return -1;
    }
    c->wg = wg; /* released by conn_free */
    c->cfg = cfg;
    wg->users++;
    SSL_set_app_data(c->ssl, &c->tls);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    __atomic_store_n(&w->n_clients, w->n_clients + 1, __ATOMIC_RELAXED);
    if (w->n_clients > trim_peak)
        trim_peak = w->n_clients;
    tbp_metrics_inc(&w->metrics, TBP_M_CONN_ACCEPTED, 0);
    tbp_metrics_gauge_add(&w->metrics, TBP_G_CONN_ACTIVE, 1);
    if (tbp_io_add(&w->loop, &c->io, EPOLLIN) == -1) {
        tbp_conn_close(c);
        return -1;
    }
    tbp_timer_set(&w->loop, &c->timer, cfg->timeouts.handshake_ms);
    return 0;
}
