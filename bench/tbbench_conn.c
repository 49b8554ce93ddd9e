/*
 * tbbench_conn: worker threads, their connection slots and the request schedule.
 *
 * Each worker thread runs one tbp_loop (src/proxy/loop.h: epoll, level-triggered, a timer heap)
 * over its share of the -c connections. A connection lives in a slot, which is allocated once
 * and reused for every connection it makes, so nothing is freed while the loop runs and a slot
 * reached from a stale epoll event is still valid memory. Sockets are only ever opened from a
 * slot's timer (armed with 0 ms for "now"): timers fire after every event of the turn has been
 * handled, so an event read for a slot's previous socket can never reach its new one.
 *
 * A slot goes IDLE -> CONNECTING -> HANDSHAKE -> READY [-> DRAINING] -> IDLE. At READY the
 * connection has negotiated its protocol by ALPN and, when it negotiated Token Binding (draft: a
 * TB ALPN id; rfc: the server's token_binding extension answer), signed one header over its own
 * channel value with the worker's key (generated before the run): draft Token-Binding over
 * tls_unique, rfc Sec-Token-Binding over the EKM; every request on the connection carries it.
 * The rfc offer is made per connection with the SSL (one small allocation beside SSL_new's);
 * requests allocate nothing either way.
 *
 * Two schedules. Closed loop (no --rate): a READY slot is kept full (1 request in flight for
 * HTTP/1.1, -m for HTTP/2), and with --new-conn every slot makes one connection per request,
 * back to back. Open loop (--rate R): request k of a worker is due at t0 + k / R_worker; a 1 ms
 * pacing timer and every completion hand the due requests to slots with room (round robin), and
 * latency runs from the due time, not from the send, so a server that falls behind is charged
 * for the queue it causes (no coordinated omission).
 *
 * Soak shapes: --idle sends one request per connection and then holds it open, idle, until the
 * run ends (the server's memory per idle connection); --ramp spreads the first connects of a
 * worker's slots over that many seconds (thousands of handshakes do not all land at once); -n
 * ends the run once the workers have their share of complete responses. With --hold, a worker
 * that has its share sends no more requests (but a new connection's first, so the server sees
 * its binding) and keeps its connections open until SIGINT/SIGTERM or -d; once every worker
 * holds, tbbench says "tbbench: holding ..." on stderr. Responses are no longer counted then (the
 * report's rates end there too); errors, handshakes and connections still are.
 *
 * Errors: connect, tls and tb count once per failed connection; io, protocol and timeout once
 * per request lost with the connection (at least once); 4xx / 5xx once per response. A failed
 * connection is retried after TBB_RETRY_MS. When the run ends, requests still in flight are
 * abandoned: counted apart, neither done nor failed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tbbench.h"

#define SWEEP_MS_MAX 100 /* timeouts and the interrupt flag are checked this often at most */
#define PACE_MS 1        /* --rate: the pacing timer's period */
#define INITIAL_WBUF 4096

/* conn_read / conn_write results besides a positive byte count. */
enum { IO_AGAIN = -1, IO_WANT_WRITE = -2, IO_WANT_READ = -3, IO_EOF = -4, IO_ERR = -5 };

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

volatile sig_atomic_t tbb_interrupted;

static void slot_close(struct tbb_slot *s, int kind, const char *msg);
static void dispatch(struct tbb_worker *w);

uint64_t tbb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *tbb_slot_state_to_str(enum tbb_slot_state s)
{
    switch (s) {
    case TBB_SLOT_IDLE:
        return "idle";
    case TBB_SLOT_CONNECTING:
        return "connecting";
    case TBB_SLOT_HANDSHAKE:
        return "handshake";
    case TBB_SLOT_READY:
        return "ready";
    case TBB_SLOT_DRAINING:
        return "draining";
    }
    return "unknown";
}

/* --- statistics ----------------------------------------------------------------------------- */

void tbb_error(struct tbb_worker *w, enum tbb_err_kind k, uint64_t n, const char *msg)
{
    w->stats.errors[k] += n;
    if (w->stats.first_err[k][0] == '\0' && msg != NULL && msg[0] != '\0')
        snprintf(w->stats.first_err[k], sizeof(w->stats.first_err[k]), "%s", msg);
}

static void count_alpn(struct tbb_worker *w, const unsigned char *p, unsigned n)
{
    struct tbb_stats *st = &w->stats;
    char name[32];
    size_t i;

    if (n == 0 || n >= sizeof(name))
        snprintf(name, sizeof(name), "%s", n == 0 ? "(none)" : "(long)");
    else
        snprintf(name, sizeof(name), "%.*s", (int)n, (const char *)p);
    for (i = 0; i < st->n_alpn; i++) {
        if (strcmp(st->alpn_name[i], name) == 0) {
            st->alpn_count[i]++;
            return;
        }
    }
    if (st->n_alpn == TBB_ALPN_NAMES)
        return;
    snprintf(st->alpn_name[st->n_alpn], sizeof(st->alpn_name[0]), "%s", name);
    st->alpn_count[st->n_alpn++] = 1;
}

/* --- requests ------------------------------------------------------------------------------- */

struct tbb_req *tbb_req_get(struct tbb_slot *s, uint64_t start_ns)
{
    struct tbb_req *r = s->free_reqs;

    if (r == NULL)
        return NULL;
    s->free_reqs = r->next_free;
    r->next_free = NULL;
    r->in_use = 1;
    r->status = 0;
    r->start_ns = start_ns;
    r->sent_ns = tbb_now_ns();
    s->in_flight++;
    s->conn_reqs++;
    return r;
}

void tbb_req_put(struct tbb_slot *s, struct tbb_req *r)
{
    r->in_use = 0;
    r->next_free = s->free_reqs;
    s->free_reqs = r;
    s->in_flight--;
}

static void end_run(struct tbb_worker *w);

/* --hold: this worker's share of -n is in. */
static void start_holding(struct tbb_worker *w)
{
    w->holding = 1;
    w->stats.stop_ns = tbb_now_ns();
    if (__atomic_add_fetch(&w->run->holding, 1, __ATOMIC_ACQ_REL) == w->o->threads)
        fprintf(stderr,
                "tbbench: holding the connections open: %llu responses in, no more requests "
                "until SIGINT or SIGTERM\n",
                (unsigned long long)w->o->max_requests);
}

void tbb_req_done(struct tbb_slot *s, struct tbb_req *r)
{
    struct tbb_worker *w = s->w;
    struct tbb_stats *st = &w->stats;
    int cls = r->status / 100;
    char msg[64];

    if (w->running && (cls == 4 || cls == 5)) {
        snprintf(msg, sizeof(msg), "HTTP status %d", r->status);
        tbb_error(w, cls == 4 ? TBB_ERR_STATUS_4XX : TBB_ERR_STATUS_5XX, 1, msg);
    }
    if (w->running && !w->holding) {
        tbb_hist_record(&st->latency, tbb_now_ns() - r->start_ns);
        st->responses++;
        st->status[cls >= 1 && cls <= 5 ? cls : 0]++;
        if (w->max_responses > 0 && st->responses >= w->max_responses) {
            if (w->o->hold)
                start_holding(w);
            else
                end_run(w); /* -n: this worker's share is done */
        }
    }
    tbb_req_put(s, r);
}

void tbb_req_fail(struct tbb_slot *s, struct tbb_req *r, enum tbb_err_kind k, const char *msg)
{
    if (s->w->running)
        tbb_error(s->w, k, 1, msg);
    tbb_req_put(s, r);
}

void tbb_slot_fail_later(struct tbb_slot *s, enum tbb_err_kind k, const char *msg)
{
    if (s->fail_kind >= 0)
        return;
    s->fail_kind = (int)k;
    snprintf(s->fail_msg, sizeof(s->fail_msg), "%s", msg);
}

/* --- output --------------------------------------------------------------------------------- */

int tbb_out_append(struct tbb_slot *s, const void *p, size_t n)
{
    if (s->woff > 0 && s->woff == s->wlen)
        s->woff = s->wlen = 0;
    if (s->wlen + n > s->wcap) {
        size_t cap = s->wcap;
        uint8_t *b;
        while (cap < s->wlen + n)
            cap *= 2;
        if (cap > TBB_WBUF_MAX || (b = realloc(s->wbuf, cap)) == NULL) {
            tbb_slot_fail_later(s, TBB_ERR_PROTOCOL, "output buffer cap exceeded");
            return -1;
        }
        s->wbuf = b;
        s->wcap = cap;
    }
    memcpy(s->wbuf + s->wlen, p, n);
    s->wlen += n;
    return 0;
}

static void ssl_msg(char *msg, size_t cap, const char *what, int ssl_err)
{
    unsigned long e = ERR_peek_last_error();
    char buf[160] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    else if (ssl_err == SSL_ERROR_ZERO_RETURN)
        snprintf(buf, sizeof(buf), "connection closed by the server");
    else if (ssl_err == SSL_ERROR_SYSCALL)
        snprintf(buf, sizeof(buf), "%s", errno ? strerror(errno) : "connection closed");
    else
        snprintf(buf, sizeof(buf), "SSL error %d", ssl_err);
    snprintf(msg, cap, "%s: %s", what, buf);
    ERR_clear_error();
}

static ssize_t conn_read(struct tbb_slot *s, uint8_t *buf, size_t cap, char *msg, size_t mcap)
{
    ssize_t n;
    int e;

    if (s->ssl == NULL) {
        n = recv(s->io.fd, buf, cap, 0);
        if (n > 0)
            return n;
        if (n == 0)
            return IO_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return IO_AGAIN;
        snprintf(msg, mcap, "read: %s", strerror(errno));
        return IO_ERR;
    }
    ERR_clear_error();
    n = SSL_read(s->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    switch (e = SSL_get_error(s->ssl, (int)n)) {
    case SSL_ERROR_WANT_READ:
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        return IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return IO_EOF;
    default:
        ssl_msg(msg, mcap, "read", e);
        return IO_ERR;
    }
}

static ssize_t conn_write(struct tbb_slot *s, const uint8_t *p, size_t n, char *msg, size_t mcap)
{
    ssize_t w;
    int e;

    if (s->ssl == NULL) {
        w = send(s->io.fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return IO_AGAIN;
        snprintf(msg, mcap, "write: %s", strerror(errno));
        return IO_ERR;
    }
    ERR_clear_error();
    w = SSL_write(s->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (w > 0)
        return w;
    switch (e = SSL_get_error(s->ssl, (int)w)) {
    case SSL_ERROR_WANT_WRITE:
        return IO_AGAIN;
    case SSL_ERROR_WANT_READ:
        return IO_WANT_READ;
    default:
        ssl_msg(msg, mcap, "write", e);
        return IO_ERR;
    }
}

/* Writes what it can of s's output and sets the events the slot waits for. 0, or -1 when the
 * connection failed (and was closed). */
static int slot_flush(struct tbb_slot *s)
{
    char msg[TBB_FIRST_ERR];
    ssize_t n;

    s->want_out = 0;
    while (s->woff < s->wlen) {
        n = conn_write(s, s->wbuf + s->woff, s->wlen - s->woff, msg, sizeof(msg));
        if (n > 0) {
            s->woff += (size_t)n;
            if (s->w->running)
                s->w->stats.bytes_out += (uint64_t)n;
            continue;
        }
        if (n == IO_AGAIN) {
            s->want_out = 1;
            break;
        }
        if (n == IO_WANT_READ)
            break; /* EPOLLIN is always on: the next read event retries */
        slot_close(s, TBB_ERR_IO, msg);
        return -1;
    }
    if (s->woff == s->wlen)
        s->woff = s->wlen = 0;
    if (tbp_io_set(&s->w->loop, &s->io, EPOLLIN | (s->want_out ? EPOLLOUT : 0)) == -1) {
        snprintf(msg, sizeof(msg), "epoll_ctl: %s", strerror(errno));
        slot_close(s, TBB_ERR_IO, msg);
        return -1;
    }
    return 0;
}

/* Protocol output into the buffer, then to the socket. 0, or -1 when s was closed. */
static int slot_push(struct tbb_slot *s)
{
    if (tbb_proto_pull(s) != 0) {
        slot_close(s, s->fail_kind, s->fail_msg);
        return -1;
    }
    return slot_flush(s);
}

/* --- sending -------------------------------------------------------------------------------- */

/* One request on s (not yet pushed). 0, or -1 when s failed and was closed. */
static int send_one(struct tbb_slot *s, uint64_t start_ns)
{
    if (tbb_proto_send(s, start_ns) != 0) {
        slot_close(s, s->fail_kind >= 0 ? s->fail_kind : TBB_ERR_PROTOCOL, s->fail_msg);
        return -1;
    }
    if (s->w->o->new_conn)
        s->state = TBB_SLOT_DRAINING;
    return 0;
}

/* Closed loop: fills s up to its capacity. 0, or -1 when s was closed. */
static int fill(struct tbb_slot *s)
{
    uint64_t now = tbb_now_ns();

    while (s->state == TBB_SLOT_READY && tbb_proto_capacity(s) > 0) {
        if (send_one(s, now) != 0)
            return -1;
    }
    return 0;
}

static int slot_available(const struct tbb_worker *w, struct tbb_slot *s)
{
    if (w->o->new_conn)
        return s->state == TBB_SLOT_IDLE && s->timer.slot == 0 && s->carry_ns == 0;
    return s->state == TBB_SLOT_READY && tbb_proto_capacity(s) > 0;
}

/* Open loop: hands every due request to a slot with room, one per slot in turn. */
static void dispatch(struct tbb_worker *w)
{
    uint64_t now = tbb_now_ns(), due, start;
    unsigned tried = 0;

    if (!w->running || now < w->t0_ns)
        return;
    due = (uint64_t)((double)(now - w->t0_ns) / w->period_ns) + 1;
    while (w->next_k < due && tried < w->n_slots) {
        struct tbb_slot *s = &w->slots[w->rr];
        w->rr = (w->rr + 1) % w->n_slots;
        if (!slot_available(w, s)) {
            tried++;
            continue;
        }
        tried = 0;
        start = w->t0_ns + (uint64_t)((double)w->next_k * w->period_ns);
        w->next_k++;
        if (w->o->new_conn) {
            s->carry_ns = start; /* the slot's timer opens the connection (see the file comment) */
            tbp_timer_set(&w->loop, &s->timer, 0);
        } else if (send_one(s, start) == 0) {
            slot_push(s);
        }
    }
}

/* After input or a state change: fail, refill, close when drained, write. */
static void settle(struct tbb_slot *s)
{
    struct tbb_worker *w = s->w;

    if (s->fail_kind >= 0) {
        slot_close(s, s->fail_kind, s->fail_msg);
        return;
    }
    if (w->running && s->state == TBB_SLOT_READY) {
        if (w->o->rate > 0)
            dispatch(w);
        else if (fill(s) != 0)
            return;
        if (s->state == TBB_SLOT_IDLE)
            return; /* failed while sending */
    }
    if (s->state == TBB_SLOT_DRAINING && s->in_flight == 0) {
        slot_close(s, -1, NULL);
        return;
    }
    slot_push(s);
}

/* --- connection life ------------------------------------------------------------------------ */

/* Frees the connection of s (not the slot) and makes it IDLE. */
static void conn_release(struct tbb_slot *s, int graceful)
{
    size_t i, n = s->w->o->streams;

    tbb_proto_stop(s);
    if (s->ssl != NULL) {
        if (graceful) {
            ERR_clear_error();
            (void)SSL_shutdown(s->ssl); /* close_notify, best effort */
        }
        SSL_free(s->ssl);
        s->ssl = NULL;
        ERR_clear_error();
    }
    tbp_io_close(&s->w->loop, &s->io);
    s->free_reqs = NULL;
    for (i = n; i-- > 0;) {
        s->reqs[i].in_use = 0;
        s->reqs[i].next_free = s->free_reqs;
        s->free_reqs = &s->reqs[i];
    }
    s->in_flight = 0;
    s->conn_reqs = 0;
    s->wlen = s->woff = 0;
    s->want_out = 0;
    s->fail_kind = -1;
    s->fail_msg[0] = '\0';
    s->h2 = s->tb_on = 0;
    s->tb_kp = -1;
    OPENSSL_cleanse(s->tb_header, sizeof(s->tb_header));
    s->tb_header[0] = '\0';
    s->state = TBB_SLOT_IDLE;
}

/*
 * Ends s's connection: gracefully when kind < 0, else counting errors of that kind (see the
 * file comment), and schedules what the slot does next.
 */
static void slot_close(struct tbb_slot *s, int kind, const char *msg)
{
    struct tbb_worker *w = s->w;
    uint64_t n = 1;

    if (kind >= 0 && w->running) {
        if (kind != TBB_ERR_CONNECT && kind != TBB_ERR_TLS && kind != TBB_ERR_TB &&
            s->in_flight > 0)
            n = s->in_flight;
        tbb_error(w, (enum tbb_err_kind)kind, n, msg);
    }
    conn_release(s, kind < 0);
    s->carry_ns = 0;
    if (!w->running)
        return;
    if (w->o->rate > 0 && w->o->new_conn) {
        if (kind >= 0) /* back to the dispatcher after a pause */
            tbp_timer_set(&w->loop, &s->timer, TBB_RETRY_MS);
        else /* free now: a request may be waiting (dispatch only arms timers here) */
            dispatch(w);
        return;
    }
    tbp_timer_set(&w->loop, &s->timer, kind >= 0 ? TBB_RETRY_MS : 0);
}

/* Signs this connection's header over its channel value (draft: Token-Binding over tls_unique;
 * rfc: Sec-Token-Binding over the EKM). 0 or -1 with msg. */
static int sign_binding(struct tbb_slot *s, char *msg, size_t cap)
{
    struct tbb_worker *w = s->w;
    enum tb_version v = w->o->tb_version;
    uint8_t ch[TB_EKM_LEN];
    int n, rc;

    if (SSL_version(s->ssl) != TLS1_2_VERSION || SSL_get_extms_support(s->ssl) != 1) {
        snprintf(msg, cap, "Token Binding negotiated without TLS 1.2 + EMS");
        return -1;
    }
    n = v == TB_VERSION_RFC ? tb_channel_ekm(s->ssl, ch, sizeof(ch))
                            : tb_channel_tls_unique(s->ssl, ch, sizeof(ch));
    if (n < 0) {
        snprintf(msg, cap, "%s: %s", v == TB_VERSION_RFC ? "EKM" : "tls_unique", tb_strerror(n));
        return -1;
    }
    tb_builder_init(&w->builder, v);
    rc = tb_builder_add_signed(&w->builder, TB_TYPE_PROVIDED, s->tb_kp, w->key, ch, (size_t)n);
    if (rc >= 0)
        rc = tb_builder_header(&w->builder, s->tb_header, sizeof(s->tb_header));
    OPENSSL_cleanse(ch, sizeof(ch));
    if (rc < 0) {
        snprintf(msg, cap, "signing the %s header: %s", w->o->tb_field, tb_strerror(rc));
        return -1;
    }
    if (w->running)
        w->stats.tb_signed++;
    return 0;
}

/* rfc: the token_binding extension's outcome into s->tb_on / s->tb_kp. */
static int check_tb_ext(struct tbb_slot *s, int *kind, char *msg, size_t cap)
{
    struct tb_ext_params answer;
    int rc = tb_ext_client_result(s->ssl, &answer);

    *kind = TBB_ERR_TB;
    if (rc == TB_EPARSE) {
        snprintf(msg, cap,
                 "the server answered token_binding on a connection without TLS 1.2, "
                 "EMS and secure renegotiation");
        return -1;
    }
    if (rc != 0) {
        snprintf(msg, cap,
                 "Token Binding not negotiated (no token_binding extension in the "
                 "ServerHello): try --no-tb or --tb-version draft");
        return -1;
    }
    s->tb_on = 1;
    s->tb_kp = answer.key_params[0]; /* one of the offer's (tb_ext_client_check) */
    return 0;
}

/* Reads the ALPN result into s->h2 / s->tb_on and checks it against the options. */
static int check_alpn(struct tbb_slot *s, int *kind, char *msg, size_t cap)
{
    const struct tbb_opts *o = s->w->o;
    const unsigned char *p = NULL;
    unsigned n = 0;

    if (s->ssl != NULL)
        SSL_get0_alpn_selected(s->ssl, &p, &n);
    if (s->w->running)
        count_alpn(s->w, p, n);
    s->h2 = n == 0 ? (s->ssl == NULL && o->proto == TBB_PROTO_H2)
                   : (n >= 2 && p[0] == 'h' && p[1] == '2');
    if (o->proto == TBB_PROTO_H2 && !s->h2) {
        *kind = TBB_ERR_PROTOCOL;
        snprintf(msg, cap, "the server did not select h2 (ALPN \"%.*s\")", (int)n, (const char *)p);
        return -1;
    }
    if (o->tb && o->tb_version == TB_VERSION_RFC)
        return check_tb_ext(s, kind, msg, cap);
    s->tb_on = n > 4 && memmem(p, n, "_tb_", 4) != NULL;
    s->tb_kp = o->key_params;
    if (o->tb && !s->tb_on) {
        *kind = TBB_ERR_TB;
        snprintf(msg, cap, "Token Binding not negotiated (ALPN \"%.*s\"): try --no-tb", (int)n,
                 (const char *)p);
        return -1;
    }
    return 0;
}

/* The handshake is done: protocol, Token Binding, the first request(s). */
static void established(struct tbb_slot *s)
{
    struct tbb_worker *w = s->w;
    char msg[TBB_FIRST_ERR];
    int kind = TBB_ERR_PROTOCOL;

    if (check_alpn(s, &kind, msg, sizeof(msg)) != 0 ||
        (s->tb_on && (kind = TBB_ERR_TB, sign_binding(s, msg, sizeof(msg)) != 0)) ||
        (kind = TBB_ERR_PROTOCOL, tbb_proto_start(s, msg, sizeof(msg)) != 0)) {
        slot_close(s, kind, msg);
        return;
    }
    if (w->running) {
        w->stats.handshakes++;
        tbb_hist_record(&w->stats.connect, tbb_now_ns() - s->conn_start_ns);
    }
    s->state = TBB_SLOT_READY;
    if (w->o->new_conn) {
        if (send_one(s, s->carry_ns) != 0)
            return;
        slot_push(s);
        return;
    }
    settle(s);
}

static void handshake_step(struct tbb_slot *s)
{
    char msg[TBB_FIRST_ERR];
    int rc, e;

    ERR_clear_error();
    rc = SSL_do_handshake(s->ssl);
    if (rc == 1) {
        established(s);
        return;
    }
    e = SSL_get_error(s->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (tbp_io_set(&s->w->loop, &s->io, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) == 0)
            return;
        snprintf(msg, sizeof(msg), "epoll_ctl: %s", strerror(errno));
    } else {
        ssl_msg(msg, sizeof(msg), "TLS handshake", e);
    }
    slot_close(s, TBB_ERR_TLS, msg);
}

static void connected(struct tbb_slot *s)
{
    const struct tbb_opts *o = s->w->o;
    char msg[TBB_FIRST_ERR];
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        soerr = errno;
    if (soerr != 0) {
        snprintf(msg, sizeof(msg), "connect: %s", strerror(soerr));
        slot_close(s, TBB_ERR_CONNECT, msg);
        return;
    }
    if (!o->use_tls) {
        established(s);
        return;
    }
    if ((s->ssl = SSL_new(s->w->ctx)) == NULL || SSL_set_fd(s->ssl, s->io.fd) != 1 ||
        (o->sni && SSL_set_tlsext_host_name(s->ssl, o->host) != 1) ||
        (o->tb && o->tb_version == TB_VERSION_RFC &&
         tb_ext_client_offer(s->ssl, &o->tb_offer) != 0)) {
        ssl_msg(msg, sizeof(msg), "SSL_new", 0);
        slot_close(s, TBB_ERR_TLS, msg);
        return;
    }
    SSL_set_connect_state(s->ssl);
    s->state = TBB_SLOT_HANDSHAKE;
    handshake_step(s);
}

/* Opens a connection for s. Called from the slot's timer only (see the file comment). */
static void slot_connect(struct tbb_slot *s)
{
    const struct tbb_opts *o = s->w->o;
    char msg[TBB_FIRST_ERR];
    int one = 1, fd;

    s->conn_start_ns = tbb_now_ns();
    if (s->carry_ns == 0)
        s->carry_ns = s->conn_start_ns;
    fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(msg, sizeof(msg), "socket: %s", strerror(errno));
        slot_close(s, TBB_ERR_CONNECT, msg);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->io.fd = fd;
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) == -1 && errno != EINPROGRESS) {
        snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
        close(fd);
        s->io.fd = -1;
        slot_close(s, TBB_ERR_CONNECT, msg);
        return;
    }
    if (tbp_io_add(&s->w->loop, &s->io, EPOLLOUT) == -1) {
        snprintf(msg, sizeof(msg), "epoll_ctl: %s", strerror(errno));
        close(fd);
        s->io.fd = -1;
        slot_close(s, TBB_ERR_CONNECT, msg);
        return;
    }
    s->state = TBB_SLOT_CONNECTING;
}

/* --- events --------------------------------------------------------------------------------- */

/* READY / DRAINING: read everything there is, then settle. */
static void slot_drive(struct tbb_slot *s)
{
    struct tbb_worker *w = s->w;
    char msg[TBB_FIRST_ERR];
    ssize_t n;

    for (;;) {
        n = conn_read(s, w->rbuf, sizeof(w->rbuf), msg, sizeof(msg));
        if (n > 0) {
            if (w->running)
                w->stats.bytes_in += (uint64_t)n;
            if (tbb_proto_input(s, w->rbuf, (size_t)n) != 0 || s->fail_kind >= 0) {
                slot_close(s, s->fail_kind >= 0 ? s->fail_kind : TBB_ERR_PROTOCOL, s->fail_msg);
                return;
            }
            /* A short read with nothing buffered in OpenSSL: the socket is (most likely) empty;
             * skip the read that would say EAGAIN. Level-triggered epoll reports what is left. */
            if ((size_t)n < sizeof(w->rbuf) && (s->ssl == NULL || !SSL_has_pending(s->ssl)))
                break;
            continue;
        }
        if (n == IO_AGAIN || n == IO_WANT_WRITE)
            break;
        if (n == IO_EOF) {
            if (tbb_proto_eof(s) != 0 || s->in_flight > 0) {
                snprintf(msg, sizeof(msg),
                         "connection closed by the server with %u request%s in flight",
                         s->in_flight, s->in_flight == 1 ? "" : "s");
                slot_close(s, TBB_ERR_IO, msg);
            } else {
                slot_close(s, -1, NULL); /* idle connection closed: reconnect */
            }
            return;
        }
        slot_close(s, TBB_ERR_IO, msg);
        return;
    }
    settle(s);
}

static void slot_io_cb(struct tbp_io *io, uint32_t events)
{
    struct tbb_slot *s = CONTAINER(io, struct tbb_slot, io);

    (void)events;
    switch (s->state) {
    case TBB_SLOT_CONNECTING:
        connected(s);
        break;
    case TBB_SLOT_HANDSHAKE:
        handshake_step(s);
        break;
    case TBB_SLOT_READY:
    case TBB_SLOT_DRAINING:
        slot_drive(s);
        break;
    case TBB_SLOT_IDLE:
        break;
    }
}

static void slot_timer_cb(struct tbp_timer *t)
{
    struct tbb_slot *s = CONTAINER(t, struct tbb_slot, timer);
    struct tbb_worker *w = s->w;

    if (!w->running || s->state != TBB_SLOT_IDLE)
        return;
    if (w->o->rate > 0 && w->o->new_conn && s->carry_ns == 0) {
        dispatch(w); /* the retry pause is over: the slot can take a due request */
        return;
    }
    slot_connect(s);
}

/* The oldest request of s has waited longer than the timeout? */
static int timed_out(const struct tbb_slot *s, uint64_t now, uint64_t limit)
{
    size_t i;

    if (s->state == TBB_SLOT_CONNECTING || s->state == TBB_SLOT_HANDSHAKE)
        return now - s->conn_start_ns > limit;
    if (s->state == TBB_SLOT_IDLE)
        return 0;
    for (i = 0; i < s->w->o->streams; i++) {
        if (s->reqs[i].in_use && now - s->reqs[i].sent_ns > limit)
            return 1;
    }
    return 0;
}

static void end_run(struct tbb_worker *w)
{
    if (!w->running)
        return;
    if (!w->holding)
        w->stats.stop_ns = tbb_now_ns(); /* holding: measuring ended when it began */
    w->running = 0;
    tbp_loop_stop(&w->loop);
}

static void end_cb(struct tbp_timer *t)
{
    struct tbb_worker *w = CONTAINER(t, struct tbb_worker, end_timer);

    if (tbb_now_ns() < w->end_ns) { /* the loop's clock is in whole ms: never end early */
        tbp_timer_set(&w->loop, &w->end_timer, 1);
        return;
    }
    end_run(w);
}

static unsigned sweep_ms(const struct tbb_opts *o)
{
    unsigned ms = o->timeout_ms / 4;

    return ms < 1 ? 1 : ms > SWEEP_MS_MAX ? SWEEP_MS_MAX : ms;
}

static void sweep_cb(struct tbp_timer *t)
{
    struct tbb_worker *w = CONTAINER(t, struct tbb_worker, sweep_timer);
    uint64_t now = tbb_now_ns(), limit = (uint64_t)w->o->timeout_ms * 1000000u;
    char msg[TBB_FIRST_ERR];
    unsigned i;

    if (tbb_interrupted) {
        end_run(w);
        return;
    }
    for (i = 0; i < w->n_slots; i++) {
        struct tbb_slot *s = &w->slots[i];
        if (!timed_out(s, now, limit))
            continue;
        snprintf(msg, sizeof(msg), "no %s within %u ms",
                 s->state == TBB_SLOT_CONNECTING  ? "connection"
                 : s->state == TBB_SLOT_HANDSHAKE ? "TLS handshake"
                                                  : "response",
                 w->o->timeout_ms);
        slot_close(s, TBB_ERR_TIMEOUT, msg);
    }
    tbp_timer_set(&w->loop, &w->sweep_timer, sweep_ms(w->o));
}

static void pace_cb(struct tbp_timer *t)
{
    struct tbb_worker *w = CONTAINER(t, struct tbb_worker, pace_timer);

    dispatch(w);
    if (w->running)
        tbp_timer_set(&w->loop, &w->pace_timer, PACE_MS);
}

/* --- the worker ----------------------------------------------------------------------------- */

static int slot_init(struct tbb_worker *w, struct tbb_slot *s)
{
    size_t i, n = w->o->streams;

    s->w = w;
    s->io.fd = -1;
    s->io.cb = slot_io_cb;
    s->timer.cb = slot_timer_cb;
    s->fail_kind = -1;
    s->reqs = calloc(n, sizeof(*s->reqs));
    s->wbuf = malloc(INITIAL_WBUF);
    s->wcap = INITIAL_WBUF;
    if (s->reqs == NULL || s->wbuf == NULL || tbb_proto_slot_init(s) != 0)
        return -1;
    for (i = n; i-- > 0;) {
        s->reqs[i].next_free = s->free_reqs;
        s->free_reqs = &s->reqs[i];
    }
    return 0;
}

int tbb_worker_init(struct tbb_worker *w, const struct tbb_opts *o, SSL_CTX *ctx, unsigned id,
                    unsigned n_slots, double rate, char *err, size_t errlen)
{
    unsigned i;
    int rc;

    w->id = id;
    w->o = o;
    w->ctx = ctx;
    w->n_slots = n_slots;
    w->loop.epfd = -1;
    tbb_stats_init(&w->stats);
    w->period_ns = rate > 0 ? 1e9 / rate : 0;
    if (tbp_loop_init(&w->loop) != 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    if (o->tb && (rc = tb_key_generate(o->key_params, &w->key)) != 0) {
        snprintf(err, errlen, "generating a %s key: %s", o->key_name, tb_strerror(rc));
        return -1;
    }
    if (tbb_h2_callbacks_new(&w->ng_cbs) != 0 ||
        (w->slots = calloc(n_slots, sizeof(*w->slots))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n_slots; i++) {
        if (slot_init(w, &w->slots[i]) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    w->end_timer.cb = end_cb;
    w->sweep_timer.cb = sweep_cb;
    w->pace_timer.cb = pace_cb;
    return 0;
}

void tbb_worker_dispose(struct tbb_worker *w)
{
    unsigned i;

    if (w->o == NULL)
        return; /* never initialised (zeroed): nothing to free, no descriptor to close */
    if (w->slots != NULL) {
        for (i = 0; i < w->n_slots; i++) {
            struct tbb_slot *s = &w->slots[i];
            if (s->w == NULL)
                continue;
            if (s->reqs != NULL)
                conn_release(s, 0);
            tbb_proto_slot_dispose(s);
            free(s->reqs);
            free(s->wbuf);
        }
        free(w->slots);
        w->slots = NULL;
    }
    if (w->ng_cbs != NULL)
        nghttp2_session_callbacks_del(w->ng_cbs);
    w->ng_cbs = NULL;
    EVP_PKEY_free(w->key);
    w->key = NULL;
    if (w->loop.epfd != -1)
        tbp_loop_dispose(&w->loop);
    w->loop.epfd = -1;
}

/* After the loop: what was in flight is abandoned, what was due and unsent is counted. */
static void finish(struct tbb_worker *w)
{
    uint64_t due;
    unsigned i;

    for (i = 0; i < w->n_slots; i++) {
        struct tbb_slot *s = &w->slots[i];
        if (s->state == TBB_SLOT_READY || s->state == TBB_SLOT_DRAINING)
            w->stats.open_at_end++;
        if (s->in_flight > 0)
            w->stats.abandoned += s->in_flight;
        else if (w->o->new_conn && s->carry_ns != 0)
            w->stats.abandoned++; /* its request was waiting for its connection */
        tbp_timer_cancel(&w->loop, &s->timer);
        conn_release(s, 1);
    }
    if (w->o->rate > 0 && w->stats.stop_ns > w->t0_ns) {
        due = (uint64_t)((double)(w->stats.stop_ns - w->t0_ns) / w->period_ns) + 1;
        w->stats.unsent = due > w->next_k ? due - w->next_k : 0;
    }
    tbp_timer_cancel(&w->loop, &w->end_timer);
    tbp_timer_cancel(&w->loop, &w->sweep_timer);
    tbp_timer_cancel(&w->loop, &w->pace_timer);
}

void *tbb_worker_main(void *arg)
{
    struct tbb_thread_arg *a = arg;
    struct tbb_worker *w = a->w;
    uint64_t now_ns;
    unsigned i;

    pthread_barrier_wait(&a->run->start);
    w->t0_ns = a->run->t0_ns;
    w->run = a->run;
    w->loop.now = tbp_clock_ms();
    w->running = 1;
    now_ns = tbb_now_ns();
    w->end_ns = w->t0_ns + (uint64_t)(w->o->duration * 1e9);
    tbp_timer_set(&w->loop, &w->end_timer,
                  w->end_ns > now_ns ? (w->end_ns - now_ns + 999999) / 1000000 : 0);
    tbp_timer_set(&w->loop, &w->sweep_timer, sweep_ms(w->o));
    if (w->o->rate > 0)
        tbp_timer_set(&w->loop, &w->pace_timer, 0);
    if (!(w->o->rate > 0 && w->o->new_conn)) {
        for (i = 0; i < w->n_slots; i++)
            tbp_timer_set(&w->loop, &w->slots[i].timer,
                          (uint64_t)(w->o->ramp * 1000.0 * i / w->n_slots));
    }
    if (tbp_loop_run(&w->loop) != 0) {
        tbb_error(w, TBB_ERR_IO, 1, "epoll_wait failed");
        end_run(w);
    }
    finish(w);
    return NULL;
}
